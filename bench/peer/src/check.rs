//! After a measurement: the wallets' balances as stored, folded with the aggregate's own
//! `apply`, to compare with what the callers were told succeeded.

use cqrs_es::Aggregate;
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgPool, Row};
use std::collections::HashMap;

use crate::drive::{PAYMENT, TOP_UP};
use crate::wallet::{Event, Wallet, AGGREGATE_TYPE};
use crate::{Error, Workload};

/// Balances found in a workload's database, in roubles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// Streams with an `Opened` event (or row).
    pub wallets: u64,
    /// Events (rows for the raw baseline) read.
    pub events: u64,
    /// Σ balance over the wallets folded from their events (rows).
    pub folded: Decimal,
    /// Σ balance over the peer's stored aggregates (`snapshots`); aggregate store only.
    pub stored: Option<Decimal>,
    /// Wallets whose stored state is not the one folded from their events (or that have only
    /// one of the two); aggregate store only, else 0.
    pub differing: u64,
}

/// Σ balance after `top_ups` top-ups of [`TOP_UP`] and `payments` payments of [`PAYMENT`].
pub fn expected_total(top_ups: u64, payments: u64) -> Decimal {
    TOP_UP * Decimal::from(top_ups) - PAYMENT * Decimal::from(payments)
}

/// Reads the balances a workload left in `pool`'s database.
///
/// Errors: [`Error::Database`], or [`Error::Json`] when a stored payload is not a wallet
/// event (state).
pub async fn balances(pool: &PgPool, workload: Workload) -> Result<Balances, Error> {
    let rows = match workload {
        Workload::PeerEventStore | Workload::PeerAggregateStore => {
            sqlx::query(include_str!("folded_events.sql"))
                .bind(AGGREGATE_TYPE)
                .fetch_all(pool)
                .await?
        }
        Workload::RawInsert => {
            sqlx::query(include_str!("folded_raw.sql"))
                .fetch_all(pool)
                .await?
        }
    };
    let mut wallets: HashMap<String, Wallet> = HashMap::new();
    for row in &rows {
        let stream: String = row.try_get("stream")?;
        let payload: serde_json::Value = row.try_get("payload")?;
        let event: Event = serde_json::from_value(payload)?;
        wallets.entry(stream).or_default().apply(event);
    }
    let (stored, differing) = match workload {
        Workload::PeerAggregateStore => {
            let states = sqlx::query(include_str!("stored_aggregates.sql"))
                .bind(AGGREGATE_TYPE)
                .fetch_all(pool)
                .await?;
            let mut total = Decimal::ZERO;
            let mut same = 0;
            for row in &states {
                let stream: String = row.try_get("stream")?;
                let payload: serde_json::Value = row.try_get("payload")?;
                let state: Wallet = serde_json::from_value(payload)?;
                total += state.balance;
                same += u64::from(wallets.get(&stream) == Some(&state));
            }
            let differing = (states.len().max(wallets.len()) as u64) - same;
            (Some(total), differing)
        }
        Workload::PeerEventStore | Workload::RawInsert => (None, 0),
    };
    Ok(Balances {
        wallets: wallets.values().filter(|w| w.open).count() as u64,
        events: rows.len() as u64,
        folded: wallets.values().map(|w| w.balance).sum(),
        stored,
        differing,
    })
}
