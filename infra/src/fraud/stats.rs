//! Request statistics (e-wallet spec §8.3): every request an API answers is counted in
//! memory by hour, API, interface type, level, peer address, token subject, route template
//! and status class ([`Stats::count`]); [`Stats::flush`] adds what was counted since the last
//! flush to `api_request_stats` in one upsert (`flush_stats.sql`). Nothing is written per
//! request.

use etr_domain::fraud::{InterfaceType, Level};
use sqlx::PgPool;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use time::OffsetDateTime;

use super::Api;
use crate::error::Error;

/// The most distinct rows kept in memory between two flushes; counts for further rows are
/// dropped (and logged) until a flush makes room.
pub const MAX_PENDING: usize = 100_000;

/// The route of a request no route serves.
pub const NO_ROUTE: &str = "(no route)";

/// One answered request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// When it arrived (its hour is kept).
    pub at: OffsetDateTime,
    pub api: Api,
    pub interface: InterfaceType,
    pub level: Level,
    pub ip: Option<IpAddr>,
    /// The bearer token's subject (authenticated requests).
    pub client: Option<String>,
    /// The route template, or [`NO_ROUTE`].
    pub route: String,
    /// The HTTP status answered.
    pub status: u16,
    /// Whether a fraud rule refused it.
    pub refused: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Row {
    hour: i64,
    api: Api,
    interface: InterfaceType,
    level: Level,
    ip: Option<IpAddr>,
    client: Option<String>,
    route: String,
    status_class: u8,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    requests: i64,
    refused: i64,
}

/// The counts of one process since its last flush.
#[derive(Debug, Default)]
pub struct Stats {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    rows: HashMap<Row, Counts>,
    dropped: u64,
}

/// The status class `1xx` … `5xx` of a status code (anything outside 100–599 counts as
/// `5xx`).
pub fn status_class(status: u16) -> u8 {
    match status / 100 {
        c @ 1..=5 => u8::try_from(c).unwrap_or(5),
        _ => 5,
    }
}

impl Stats {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        match self.pending.lock() {
            Ok(p) => p,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts one request.
    pub fn count(&self, sample: Sample) {
        let unix = sample.at.unix_timestamp();
        let row = Row {
            hour: unix - unix.rem_euclid(3600),
            api: sample.api,
            interface: sample.interface,
            level: sample.level,
            ip: sample.ip,
            client: sample.client,
            route: sample.route,
            status_class: status_class(sample.status),
        };
        let mut pending = self.lock();
        let room = pending.rows.len() < MAX_PENDING;
        match pending.rows.get_mut(&row) {
            Some(c) => {
                c.requests += 1;
                c.refused += i64::from(sample.refused);
            }
            None if room => {
                pending.rows.insert(
                    row,
                    Counts {
                        requests: 1,
                        refused: i64::from(sample.refused),
                    },
                );
            }
            None => pending.dropped += 1,
        }
    }

    /// Distinct rows waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.lock().rows.len()
    }

    /// Adds everything counted since the last flush to `api_request_stats` in one upsert and
    /// returns the number of rows written. When the statement fails the counts are kept for
    /// the next flush.
    ///
    /// Errors: Postgres.
    pub async fn flush(&self, pool: &PgPool) -> Result<usize, Error> {
        let (taken, dropped) = {
            let mut pending = self.lock();
            let dropped = std::mem::take(&mut pending.dropped);
            (std::mem::take(&mut pending.rows), dropped)
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "request statistics: more than {MAX_PENDING} distinct rows between two flushes; counts dropped"
            );
        }
        if taken.is_empty() {
            return Ok(0);
        }
        // Sorted, so that two processes adding to the same rows lock them in the same order.
        let mut rows: Vec<(Row, Counts)> = taken.into_iter().collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        let n = rows.len();
        let mut hours = Vec::with_capacity(n);
        let mut apis = Vec::with_capacity(n);
        let mut interfaces = Vec::with_capacity(n);
        let mut levels = Vec::with_capacity(n);
        let mut ips = Vec::with_capacity(n);
        let mut clients = Vec::with_capacity(n);
        let mut routes = Vec::with_capacity(n);
        let mut classes = Vec::with_capacity(n);
        let mut requests = Vec::with_capacity(n);
        let mut refused = Vec::with_capacity(n);
        for (row, counts) in &rows {
            hours.push(
                OffsetDateTime::from_unix_timestamp(row.hour).unwrap_or(OffsetDateTime::UNIX_EPOCH),
            );
            apis.push(row.api.as_str());
            interfaces.push(row.interface.as_str());
            levels.push(row.level.as_str());
            ips.push(row.ip.map(|ip| ip.to_string()));
            clients.push(row.client.clone());
            routes.push(row.route.clone());
            classes.push(format!("{}xx", row.status_class));
            requests.push(counts.requests);
            refused.push(counts.refused);
        }
        let written = sqlx::query(include_str!("flush_stats.sql"))
            .bind(&hours)
            .bind(&apis)
            .bind(&interfaces)
            .bind(&levels)
            .bind(&ips)
            .bind(&clients)
            .bind(&routes)
            .bind(&classes)
            .bind(&requests)
            .bind(&refused)
            .execute(pool)
            .await;
        match written {
            Ok(_) => Ok(n),
            Err(e) => {
                self.put_back(rows);
                Err(e.into())
            }
        }
    }

    /// Returns the counts of a failed flush to the pending ones.
    fn put_back(&self, rows: Vec<(Row, Counts)>) {
        let mut pending = self.lock();
        for (row, counts) in rows {
            let room = pending.rows.len() < MAX_PENDING;
            match pending.rows.get_mut(&row) {
                Some(c) => {
                    c.requests += counts.requests;
                    c.refused += counts.refused;
                }
                None if room => {
                    pending.rows.insert(row, counts);
                }
                None => pending.dropped += u64::try_from(counts.requests).unwrap_or(0),
            }
        }
    }
}

/// Deletes the statistics of hours that ended more than `retention` ago; returns the number
/// of rows deleted.
///
/// Errors: Postgres.
pub async fn prune(pool: &PgPool, retention: std::time::Duration) -> Result<u64, Error> {
    let secs = i64::try_from(retention.as_secs()).unwrap_or(i64::MAX);
    let done = sqlx::query(
        "DELETE FROM api_request_stats WHERE hour < now() - $1::bigint * interval '1 second'",
    )
    .bind(secs)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(status_class(200), 2);
        assert_eq!(status_class(429), 4);
        assert_eq!(status_class(503), 5);
        assert_eq!(status_class(101), 1);
        assert_eq!(status_class(99), 5);
    }

    #[test]
    fn requests_of_one_hour_and_kind_are_counted_together() {
        let stats = Stats::default();
        let at = time::macros::datetime!(2026-12-03 10:15:00 UTC);
        let sample = Sample {
            at,
            api: Api::Command,
            interface: InterfaceType::Web,
            level: Level::Authenticated,
            ip: Some("127.0.0.1".parse().unwrap()),
            client: Some("c1".into()),
            route: "/v1/clients/{client_id}/wallets".into(),
            status: 201,
            refused: false,
        };
        stats.count(sample.clone());
        stats.count(Sample {
            at: time::macros::datetime!(2026-12-03 10:59:59 UTC),
            status: 200,
            ..sample.clone()
        });
        assert_eq!(stats.pending(), 1);
        stats.count(Sample {
            at: time::macros::datetime!(2026-12-03 11:00:00 UTC),
            ..sample.clone()
        });
        stats.count(Sample {
            status: 429,
            refused: true,
            ..sample
        });
        assert_eq!(stats.pending(), 3);
    }
}
