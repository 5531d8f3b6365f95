//! API request statistics for operators (e-wallet spec §8.3): what both APIs counted per hour
//! (`api_request_stats`, written by `etr_infra::fraud`), so that an operator can spot
//! suspicious callers and write fraud rules against them.
//!
//! - `apiRequestStatsLive(filter, limit)` — the last 24 hours (the current hour and the 23
//!   before it), one row per hour, API, interface type, level, address, client, route and
//!   status class, newest hour first;
//! - `apiRequestStatsByDay(from, to, filter)` — totals per UTC day from `from` to `to`
//!   inclusive (at most 366 days; days without requests included, as zeros);
//! - `apiRequestStatsByClient(clientId, from, to, limit)` — the rows of one client (a bearer
//!   token's subject: a client's id, or a partner's or employee's) from `from` (default 24
//!   hours ago) until `to` (default now), at most 31 days.
//!
//! `refused` counts the requests a fraud rule refused (HTTP 429); they are in `requests` too.
//! Operators only: any other token gets `FORBIDDEN`, none `UNAUTHENTICATED`. Other refusals:
//! `PERIOD_INVERTED`, `PERIOD_TOO_LONG`, `BAD_USER_INPUT`, `UNAVAILABLE`.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use sqlx::postgres::PgArguments;
use sqlx::query::QueryAs;
use sqlx::Postgres;
use time::{Date, OffsetDateTime};

use crate::auth::{error, viewer, Role};
use crate::{pool, store};

/// The most rows `apiRequestStatsLive` and `apiRequestStatsByClient` answer with.
pub const MAX_ROWS: i32 = 10_000;

/// Which API was asked.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ApiKind {
    /// The REST command API.
    Command,
    /// The GraphQL query API.
    Query,
}

impl ApiKind {
    fn as_str(self) -> &'static str {
        match self {
            ApiKind::Command => "command",
            ApiKind::Query => "query",
        }
    }
}

/// The two levels of fraud monitoring.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum RequestLevel {
    /// Without a valid bearer token.
    Unauthenticated,
    /// With a valid bearer token.
    Authenticated,
}

impl RequestLevel {
    fn as_str(self) -> &'static str {
        match self {
            RequestLevel::Unauthenticated => "unauthenticated",
            RequestLevel::Authenticated => "authenticated",
        }
    }
}

/// The application a request came from (`X-Interface-Type`; `OTHER` without the header).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum InterfaceKind {
    Web,
    Android,
    Ios,
    Terminal,
    PartnerApi,
    Other,
}

impl InterfaceKind {
    const ALL: [InterfaceKind; 6] = [
        InterfaceKind::Web,
        InterfaceKind::Android,
        InterfaceKind::Ios,
        InterfaceKind::Terminal,
        InterfaceKind::PartnerApi,
        InterfaceKind::Other,
    ];

    fn as_str(self) -> &'static str {
        match self {
            InterfaceKind::Web => "web",
            InterfaceKind::Android => "android",
            InterfaceKind::Ios => "ios",
            InterfaceKind::Terminal => "terminal",
            InterfaceKind::PartnerApi => "partner-api",
            InterfaceKind::Other => "other",
        }
    }

    fn parse(raw: &str) -> InterfaceKind {
        InterfaceKind::ALL
            .into_iter()
            .find(|k| k.as_str() == raw)
            .unwrap_or(InterfaceKind::Other)
    }
}

/// Narrows the statistics; every field given must match.
#[derive(InputObject, Default, Debug, Clone)]
pub struct ApiRequestFilter {
    pub api: Option<ApiKind>,
    pub interface_type: Option<InterfaceKind>,
    pub level: Option<RequestLevel>,
    /// The peer address, e.g. "203.0.113.7".
    pub ip: Option<String>,
    /// The bearer token's subject.
    pub client_id: Option<String>,
    /// The route template, e.g. "/v1/clients/{client_id}/wallets/{wallet_id}/top-ups".
    pub route: Option<String>,
    /// "1xx" … "5xx".
    pub status_class: Option<String>,
    /// Only rows with refused requests.
    #[graphql(default)]
    pub refused_only: bool,
}

/// Requests of one hour with the same API, interface type, level, address, client, route
/// and status class.
#[derive(SimpleObject, Debug, Clone)]
pub struct ApiRequestStat {
    /// The hour's start (UTC).
    pub hour: OffsetDateTime,
    pub api: ApiKind,
    pub interface_type: InterfaceKind,
    pub level: RequestLevel,
    /// The peer address; null when the server did not learn it.
    pub ip: Option<String>,
    /// The bearer token's subject; null for unauthenticated requests.
    pub client_id: Option<String>,
    /// The route template, "(no route)" for a path no route serves.
    pub route: String,
    pub status_class: String,
    pub requests: i64,
    /// Of `requests`, those a fraud rule refused (HTTP 429).
    pub refused: i64,
}

/// The requests of one UTC day.
#[derive(SimpleObject, Debug, Clone)]
pub struct ApiRequestDay {
    pub day: Date,
    pub requests: i64,
    /// Refused by a fraud rule (HTTP 429; counted in `clientErrors` too).
    pub refused: i64,
    /// Answered 1xx, 2xx or 3xx.
    pub successful: i64,
    /// Answered 4xx.
    pub client_errors: i64,
    /// Answered 5xx.
    pub server_errors: i64,
}

type StatRow = (
    OffsetDateTime,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
);

fn stat(row: StatRow) -> ApiRequestStat {
    let (hour, api, interface, level, ip, client_id, route, status_class, requests, refused) = row;
    ApiRequestStat {
        hour,
        api: if api == "query" {
            ApiKind::Query
        } else {
            ApiKind::Command
        },
        interface_type: InterfaceKind::parse(&interface),
        level: if level == "authenticated" {
            RequestLevel::Authenticated
        } else {
            RequestLevel::Unauthenticated
        },
        ip,
        client_id,
        route,
        status_class,
        requests,
        refused,
    }
}

const STAT_COLUMNS: &str =
    "s.hour, s.api, s.interface_type, s.level, s.ip, s.client_id, s.route, s.status_class, s.requests, s.refused";

/// The filter's conditions on `s`, its parameters numbered from `first` (8 of them).
fn filter_sql(first: usize) -> String {
    let p = |i: usize| first + i;
    format!(
        "(${a}::text IS NULL OR s.api = ${a}) AND (${b}::text IS NULL OR s.interface_type = ${b}) \
         AND (${c}::text IS NULL OR s.level = ${c}) AND (${d}::text IS NULL OR s.ip = ${d}) \
         AND (${e}::text IS NULL OR s.client_id = ${e}) AND (${f}::text IS NULL OR s.route = ${f}) \
         AND (${g}::text IS NULL OR s.status_class = ${g}) AND (NOT ${h}::bool OR s.refused > 0)",
        a = p(0),
        b = p(1),
        c = p(2),
        d = p(3),
        e = p(4),
        f = p(5),
        g = p(6),
        h = p(7),
    )
}

fn bind_filter<'q, O>(
    query: QueryAs<'q, Postgres, O, PgArguments>,
    filter: &ApiRequestFilter,
) -> QueryAs<'q, Postgres, O, PgArguments> {
    query
        .bind(filter.api.map(ApiKind::as_str))
        .bind(filter.interface_type.map(InterfaceKind::as_str))
        .bind(filter.level.map(RequestLevel::as_str))
        .bind(filter.ip.clone())
        .bind(filter.client_id.clone())
        .bind(filter.route.clone())
        .bind(filter.status_class.clone())
        .bind(filter.refused_only)
}

/// Operators only.
fn operator(ctx: &Context<'_>) -> async_graphql::Result<()> {
    if viewer(ctx)?.role != Role::Operator {
        return Err(error(
            "FORBIDDEN",
            "API request statistics are for operators",
        ));
    }
    Ok(())
}

/// The cost of up to `limit` flat statistics rows (default 1,000): counted in blocks of a
/// hundred rows, because a row is a handful of scalars read in one statement.
pub(crate) fn rows_cost(limit: Option<i32>, child: usize) -> usize {
    let rows = usize::try_from(limit.unwrap_or(1_000).clamp(1, MAX_ROWS)).unwrap_or(1);
    rows.div_ceil(100).saturating_mul(child).saturating_add(1)
}

fn row_limit(limit: Option<i32>) -> async_graphql::Result<i64> {
    let limit = limit.unwrap_or(1_000);
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(error(
            "BAD_USER_INPUT",
            format!("limit must be between 1 and {MAX_ROWS}"),
        ));
    }
    Ok(i64::from(limit))
}

#[derive(Default)]
pub struct FraudQuery;

#[Object]
impl FraudQuery {
    /// Requests of the last 24 hours (the current hour and the 23 before it), newest hour
    /// first, then the most requests first. Operators only.
    #[graphql(complexity = "crate::fraud::rows_cost(limit, child_complexity)")]
    async fn api_request_stats_live(
        &self,
        ctx: &Context<'_>,
        filter: Option<ApiRequestFilter>,
        #[graphql(desc = "At most this many rows, 1–10000 (default 1000)")] limit: Option<i32>,
    ) -> async_graphql::Result<Vec<ApiRequestStat>> {
        operator(ctx)?;
        let limit = row_limit(limit)?;
        let filter = filter.unwrap_or_default();
        let sql = format!(
            "SELECT {STAT_COLUMNS} FROM api_request_stats s \
             WHERE s.hour > now() - interval '24 hours' AND {} \
             ORDER BY s.hour DESC, s.requests DESC, s.api, s.route, s.status_class LIMIT $1",
            filter_sql(2)
        );
        let rows: Vec<StatRow> = bind_filter(sqlx::query_as(&sql).bind(limit), &filter)
            .fetch_all(pool(ctx)?)
            .await
            .map_err(store)?;
        Ok(rows.into_iter().map(stat).collect())
    }

    /// Totals per UTC day from `from` to `to` inclusive (at most 366 days; days without
    /// requests as zeros). Operators only.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn api_request_stats_by_day(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
        filter: Option<ApiRequestFilter>,
    ) -> async_graphql::Result<Vec<ApiRequestDay>> {
        operator(ctx)?;
        if to < from {
            return Err(error("PERIOD_INVERTED", "`to` is before `from`"));
        }
        if (to - from).whole_days() >= 366 {
            return Err(error("PERIOD_TOO_LONG", "at most 366 days"));
        }
        let filter = filter.unwrap_or_default();
        let sql = format!(
            "SELECT (d.start AT TIME ZONE 'UTC')::date AS day, \
             COALESCE(sum(s.requests), 0)::bigint, COALESCE(sum(s.refused), 0)::bigint, \
             COALESCE(sum(s.requests) FILTER (WHERE s.status_class IN ('1xx', '2xx', '3xx')), 0)::bigint, \
             COALESCE(sum(s.requests) FILTER (WHERE s.status_class = '4xx'), 0)::bigint, \
             COALESCE(sum(s.requests) FILTER (WHERE s.status_class = '5xx'), 0)::bigint \
             FROM generate_series($1::date::timestamp AT TIME ZONE 'UTC', $2::date::timestamp AT TIME ZONE 'UTC', interval '1 day') AS d(start) \
             LEFT JOIN api_request_stats s ON s.hour >= d.start AND s.hour < d.start + interval '1 day' AND {} \
             GROUP BY d.start ORDER BY d.start",
            filter_sql(3)
        );
        let rows: Vec<(Date, i64, i64, i64, i64, i64)> =
            bind_filter(sqlx::query_as(&sql).bind(from).bind(to), &filter)
                .fetch_all(pool(ctx)?)
                .await
                .map_err(store)?;
        Ok(rows
            .into_iter()
            .map(
                |(day, requests, refused, successful, client_errors, server_errors)| {
                    ApiRequestDay {
                        day,
                        requests,
                        refused,
                        successful,
                        client_errors,
                        server_errors,
                    }
                },
            )
            .collect())
    }

    /// One client's requests (a bearer token's subject) by hour from `from` (default 24
    /// hours ago) until `to` (default now), at most 31 days, newest hour first. Operators
    /// only.
    #[graphql(complexity = "crate::fraud::rows_cost(limit, child_complexity)")]
    async fn api_request_stats_by_client(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        #[graphql(desc = "At most this many rows, 1–10000 (default 1000)")] limit: Option<i32>,
    ) -> async_graphql::Result<Vec<ApiRequestStat>> {
        operator(ctx)?;
        let limit = row_limit(limit)?;
        let to = to.unwrap_or_else(OffsetDateTime::now_utc);
        let from = from.unwrap_or(to - time::Duration::hours(24));
        if to < from {
            return Err(error("PERIOD_INVERTED", "`to` is before `from`"));
        }
        if to - from > time::Duration::days(31) {
            return Err(error("PERIOD_TOO_LONG", "at most 31 days"));
        }
        let rows: Vec<StatRow> = sqlx::query_as(&format!(
            "SELECT {STAT_COLUMNS} FROM api_request_stats s \
             WHERE s.client_id = $1 AND s.hour > $2 - interval '1 hour' AND s.hour < $3 \
             ORDER BY s.hour DESC, s.requests DESC, s.api, s.route, s.status_class LIMIT $4"
        ))
        .bind(client_id)
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(pool(ctx)?)
        .await
        .map_err(store)?;
        Ok(rows.into_iter().map(stat).collect())
    }
}
