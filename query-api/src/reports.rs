//! Balance reports of the e-wallet (seed 003, «ОТЧЕТНОСТЬ»), computed by `etr-reports` from
//! the `wallets` projection's movements: `turnoverSheet`, `dailyBalances` and `balanceChart`
//! as GraphQL data, and the files (CSV, XLSX, PNG, SVG) from `GET /reports/<report>.<format>`.
//!
//! Who may read: operators and auditors any accounts; a client only its own (a client token
//! asking for another client or another client's wallet is `FORBIDDEN`); partners none.
//! Refusals carry a code in `extensions.code` (GraphQL) or `error.code` (HTTP):
//! `PERIOD_INVERTED`, `PERIOD_TOO_LONG`, `REPORT_TOO_LARGE`, `BAD_USER_INPUT`, `NOT_FOUND`,
//! `FORBIDDEN`, `UNAUTHENTICATED`, `UNAVAILABLE`. Amounts are exact decimal strings with two
//! places; days are counted in `utcOffset` (default `+03:00`, Moscow time).

use async_graphql::{Context, Enum, ErrorExtensions, Object, SimpleObject};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use etr_reports::export::amount;
use etr_reports::{ChartBy, Kind, Period, Scope};
use sqlx::PgPool;
use time::{Date, UtcOffset};
use uuid::Uuid;

use crate::auth::{viewer, Keys, Role, Viewer};
use crate::{pool, reach, PositionInput, WALLETS};

/// The most rows (days × accounts) `dailyBalances` answers with, and the most accounts
/// `turnoverSheet` does; larger reports are downloaded as files.
pub const MAX_GRAPHQL_DAILY_ROWS: usize = 20_000;

/// A refusal: its code, HTTP status and message.
#[derive(Debug)]
pub struct Refusal {
    pub code: &'static str,
    pub status: StatusCode,
    pub message: String,
}

impl Refusal {
    fn new(code: &'static str, status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            code,
            status,
            message: message.into(),
        }
    }

    fn graphql(self) -> async_graphql::Error {
        let code = self.code;
        async_graphql::Error::new(self.message).extend_with(|_, e| e.set("code", code))
    }

    fn http(self) -> Response {
        let body = serde_json::json!({"error": {"code": self.code, "message": self.message}});
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<etr_reports::Error> for Refusal {
    fn from(e: etr_reports::Error) -> Self {
        use etr_reports::Error as E;
        match e {
            E::PeriodInverted { .. } => {
                Refusal::new("PERIOD_INVERTED", StatusCode::BAD_REQUEST, e.to_string())
            }
            E::PeriodTooLong { .. } => {
                Refusal::new("PERIOD_TOO_LONG", StatusCode::BAD_REQUEST, e.to_string())
            }
            E::TooLarge { .. } => {
                Refusal::new("REPORT_TOO_LARGE", StatusCode::BAD_REQUEST, e.to_string())
            }
            E::Invalid(_) => Refusal::new("BAD_USER_INPUT", StatusCode::BAD_REQUEST, e.to_string()),
            E::Database(_) => {
                tracing::warn!(error = %e, "report: read model unavailable");
                Refusal::new(
                    "UNAVAILABLE",
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the read model is unavailable",
                )
            }
            other => {
                tracing::error!(error = %other, "report failed");
                Refusal::new(
                    "INTERNAL",
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the report could not be produced",
                )
            }
        }
    }
}

/// The accounts `viewer` may have a report of, given the client and wallet asked for.
///
/// Errors: `FORBIDDEN` (a partner; a client asking for another client or its wallet),
/// `NOT_FOUND` (a wallet the read model does not know), `UNAVAILABLE`.
pub async fn scope_for(
    pool: &PgPool,
    viewer: &Viewer,
    client: Option<Uuid>,
    wallet: Option<Uuid>,
) -> Result<Scope, Refusal> {
    let forbidden = |m: &str| Refusal::new("FORBIDDEN", StatusCode::FORBIDDEN, m);
    let client = match viewer.role {
        Role::Partner => {
            return Err(forbidden(
                "balance reports are for operators, auditors and the client itself",
            ))
        }
        Role::Client => {
            let own = viewer
                .client
                .ok_or_else(|| forbidden("the client token names no client"))?;
            if client.is_some_and(|c| c != own) {
                return Err(forbidden("a client may read only its own data"));
            }
            Some(own)
        }
        Role::Operator | Role::Auditor => client,
    };
    if let Some(w) = wallet {
        let owner = etr_reports::store::wallet_owner(pool, w)
            .await
            .map_err(Refusal::from)?
            .ok_or_else(|| {
                Refusal::new("NOT_FOUND", StatusCode::NOT_FOUND, format!("no wallet {w}"))
            })?;
        if client.is_some_and(|c| c != owner) {
            return Err(if viewer.role == Role::Client {
                forbidden("a client may read only its own data")
            } else {
                Refusal::new(
                    "BAD_USER_INPUT",
                    StatusCode::BAD_REQUEST,
                    format!("wallet {w} is not the client's"),
                )
            });
        }
    }
    Ok(Scope { client, wallet })
}

fn offset(text: Option<&str>) -> Result<UtcOffset, Refusal> {
    text.map_or(Ok(etr_reports::MOSCOW), etr_reports::period::parse_offset)
        .map_err(Refusal::from)
}

/// One account's line of the turnover sheet. Amounts: decimal strings, two places.
#[derive(SimpleObject)]
pub struct TurnoverRow {
    pub wallet_id: Uuid,
    pub client_id: Uuid,
    pub currency: String,
    /// Balance at the start of the period.
    pub opening: String,
    /// Money out during the period.
    pub debit: String,
    /// Money in during the period.
    pub credit: String,
    /// Balance at the end: opening + credit − debit.
    pub closing: String,
    /// Movements in the period.
    pub movements: i64,
}

/// The sheet's sums in one currency.
#[derive(SimpleObject)]
pub struct TurnoverTotals {
    pub currency: String,
    pub accounts: i64,
    pub opening: String,
    pub debit: String,
    pub credit: String,
    pub closing: String,
    pub movements: i64,
}

/// The turnover balance sheet («оборотно-сальдовая ведомость»).
#[derive(SimpleObject)]
pub struct TurnoverSheet {
    pub from: Date,
    pub to: Date,
    /// The offset the days are counted in, e.g. `+03:00`.
    pub utc_offset: String,
    pub rows: Vec<TurnoverRow>,
    pub totals: Vec<TurnoverTotals>,
}

/// One account's day.
#[derive(SimpleObject)]
pub struct DailyBalance {
    pub date: Date,
    pub wallet_id: Uuid,
    pub client_id: Uuid,
    pub currency: String,
    pub opening: String,
    pub debit: String,
    pub credit: String,
    /// Balance at the end of the day.
    pub closing: String,
}

/// Closing balances of every account on every day of the period, days without movements
/// included.
#[derive(SimpleObject)]
pub struct DailyBalances {
    pub from: Date,
    pub to: Date,
    pub utc_offset: String,
    /// By date, then client, then wallet.
    pub rows: Vec<DailyBalance>,
}

/// How the balance chart samples the period.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum ChartSampling {
    /// Every day's closing balance.
    Day,
    /// The closing balance of every month's last day (and of the period's last day).
    Month,
}

/// A point of the balance chart.
#[derive(SimpleObject)]
pub struct BalancePoint {
    pub date: Date,
    /// The accounts' summed closing balance that day, two places.
    pub balance: String,
}

/// One line of the balance chart: the accounts of one currency.
#[derive(SimpleObject)]
pub struct BalanceSeries {
    pub currency: String,
    pub points: Vec<BalancePoint>,
}

#[derive(Default)]
pub struct ReportQuery;

/// The viewer's scope and the period, as every report field starts.
#[allow(clippy::too_many_arguments)]
async fn prepare(
    ctx: &Context<'_>,
    client_id: Option<Uuid>,
    wallet_id: Option<Uuid>,
    from: Date,
    to: Date,
    utc_offset: Option<String>,
    max_days: i64,
    min_position: Option<PositionInput>,
) -> async_graphql::Result<(Scope, Period)> {
    let v = viewer(ctx)?;
    let pool = pool(ctx)?;
    let scope = scope_for(pool, v, client_id, wallet_id)
        .await
        .map_err(Refusal::graphql)?;
    let offset = offset(utc_offset.as_deref()).map_err(Refusal::graphql)?;
    let period = Period::new(from, to, offset, max_days).map_err(|e| Refusal::from(e).graphql())?;
    reach(pool, WALLETS, min_position).await?;
    Ok((scope, period))
}

async fn ledger(
    ctx: &Context<'_>,
    scope: Scope,
    period: Period,
) -> async_graphql::Result<etr_reports::Ledger> {
    etr_reports::store::ledger(pool(ctx)?, scope, period)
        .await
        .map_err(|e| Refusal::from(e).graphql())
}

#[Object]
impl ReportQuery {
    /// The turnover balance sheet of the wallet accounts (all of them, a client's, or one
    /// wallet) for the days `from ..= to` (at most 3,660 days and 20,000 accounts; more
    /// come from the download endpoint).
    #[allow(clippy::too_many_arguments)]
    async fn turnover_sheet(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
        client_id: Option<Uuid>,
        wallet_id: Option<Uuid>,
        #[graphql(desc = "UTC offset of the days, e.g. +03:00 (the default, Moscow time)")]
        utc_offset: Option<String>,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<TurnoverSheet> {
        let (scope, period) = prepare(
            ctx,
            client_id,
            wallet_id,
            from,
            to,
            utc_offset,
            etr_reports::period::MAX_TURNOVER_DAYS,
            min_position,
        )
        .await?;
        let ledger = ledger(ctx, scope, period).await?;
        if ledger.accounts.len() > MAX_GRAPHQL_DAILY_ROWS {
            return Err(Refusal::from(etr_reports::Error::TooLarge {
                rows: ledger.accounts.len(),
                max: MAX_GRAPHQL_DAILY_ROWS,
            })
            .graphql());
        }
        let sheet = ledger.turnover();
        Ok(TurnoverSheet {
            from,
            to,
            utc_offset: etr_reports::period::format_offset(period.offset()),
            rows: sheet
                .rows
                .into_iter()
                .map(|r| TurnoverRow {
                    wallet_id: r.wallet_id,
                    client_id: r.client_id,
                    currency: r.currency,
                    opening: amount(r.opening),
                    debit: amount(r.debit),
                    credit: amount(r.credit),
                    closing: amount(r.closing),
                    movements: i64::try_from(r.movements).unwrap_or(i64::MAX),
                })
                .collect(),
            totals: sheet
                .totals
                .into_iter()
                .map(|t| TurnoverTotals {
                    currency: t.currency,
                    accounts: i64::try_from(t.accounts).unwrap_or(i64::MAX),
                    opening: amount(t.opening),
                    debit: amount(t.debit),
                    credit: amount(t.credit),
                    closing: amount(t.closing),
                    movements: i64::try_from(t.movements).unwrap_or(i64::MAX),
                })
                .collect(),
        })
    }

    /// The closing balance of every account on every calendar day `from ..= to` (at most
    /// 366 days and 20,000 rows; larger reports come from the download endpoint).
    #[allow(clippy::too_many_arguments)]
    async fn daily_balances(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
        client_id: Option<Uuid>,
        wallet_id: Option<Uuid>,
        utc_offset: Option<String>,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<DailyBalances> {
        let (scope, period) = prepare(
            ctx,
            client_id,
            wallet_id,
            from,
            to,
            utc_offset,
            etr_reports::period::MAX_DAILY_DAYS,
            min_position,
        )
        .await?;
        let ledger = ledger(ctx, scope, period).await?;
        let rows = usize::try_from(period.days())
            .unwrap_or(usize::MAX)
            .saturating_mul(ledger.accounts.len());
        if rows > MAX_GRAPHQL_DAILY_ROWS {
            return Err(Refusal::from(etr_reports::Error::TooLarge {
                rows,
                max: MAX_GRAPHQL_DAILY_ROWS,
            })
            .graphql());
        }
        let daily = ledger.daily().map_err(|e| Refusal::from(e).graphql())?;
        Ok(DailyBalances {
            from,
            to,
            utc_offset: etr_reports::period::format_offset(period.offset()),
            rows: daily
                .rows
                .into_iter()
                .map(|r| DailyBalance {
                    date: r.date,
                    wallet_id: r.wallet_id,
                    client_id: r.client_id,
                    currency: r.currency,
                    opening: amount(r.opening),
                    debit: amount(r.debit),
                    credit: amount(r.credit),
                    closing: amount(r.closing),
                })
                .collect(),
        })
    }

    /// The balance-change chart's data: per currency, the accounts' summed closing balance
    /// on every day, or on every month's last day (the image: `/reports/balance-chart.png`).
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn balance_chart(
        &self,
        ctx: &Context<'_>,
        from: Date,
        to: Date,
        by: Option<ChartSampling>,
        client_id: Option<Uuid>,
        wallet_id: Option<Uuid>,
        utc_offset: Option<String>,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Vec<BalanceSeries>> {
        let by = match by.unwrap_or(ChartSampling::Day) {
            ChartSampling::Day => ChartBy::Day,
            ChartSampling::Month => ChartBy::Month,
        };
        let kind = Kind::Chart(by, etr_reports::chart::ImageFormat::Png);
        let (scope, period) = prepare(
            ctx,
            client_id,
            wallet_id,
            from,
            to,
            utc_offset,
            kind.max_days(),
            min_position,
        )
        .await?;
        Ok(ledger(ctx, scope, period)
            .await?
            .series(by)
            .into_iter()
            .map(|s| BalanceSeries {
                currency: s.currency,
                points: s
                    .points
                    .into_iter()
                    .map(|(date, b)| BalancePoint {
                        date,
                        balance: amount(b),
                    })
                    .collect(),
            })
            .collect())
    }
}

/// The query string of a report download.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DownloadParams {
    pub from: String,
    pub to: String,
    pub client_id: Option<Uuid>,
    pub wallet_id: Option<Uuid>,
    pub utc_offset: Option<String>,
    /// `day` or `month` (charts only).
    pub by: Option<String>,
}

/// `GET /reports/{turnover|daily-balances|balance-chart}.{csv|xlsx|png|svg}?from=YYYY-MM-DD&to=YYYY-MM-DD[&clientId=…][&walletId=…][&utcOffset=+03:00][&by=day|month]`
/// with a bearer token: the report file, `Content-Disposition: attachment`.
pub async fn download(
    State((pool, keys)): State<(PgPool, Keys)>,
    Path(file): Path<String>,
    headers: HeaderMap,
    params: Result<Query<DownloadParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    match file_response(&pool, &keys, &file, &headers, params).await {
        Ok(r) => r,
        Err(refusal) => refusal.http(),
    }
}

async fn file_response(
    pool: &PgPool,
    keys: &Keys,
    file: &str,
    headers: &HeaderMap,
    params: Result<Query<DownloadParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Refusal> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let viewer = keys
        .verify_header(authorization)
        .map_err(|e| Refusal::new("UNAUTHENTICATED", StatusCode::UNAUTHORIZED, e.to_string()))?;
    let Query(params) = params
        .map_err(|e| Refusal::new("BAD_USER_INPUT", StatusCode::BAD_REQUEST, e.body_text()))?;
    let (report, format) = file
        .rsplit_once('.')
        .ok_or_else(|| Refusal::new("NOT_FOUND", StatusCode::NOT_FOUND, "no such report"))?;
    let report = match report {
        "turnover" => "turnover",
        "daily-balances" => "daily",
        "balance-chart" => "chart",
        _ => {
            return Err(Refusal::new(
                "NOT_FOUND",
                StatusCode::NOT_FOUND,
                "no such report",
            ))
        }
    };
    if report != "chart" && params.by.is_some() {
        return Err(Refusal::new(
            "BAD_USER_INPUT",
            StatusCode::BAD_REQUEST,
            "`by` is a chart's parameter",
        ));
    }
    let scope = scope_for(pool, &viewer, params.client_id, params.wallet_id).await?;
    let request = etr_reports::Request {
        kind: Kind::parse(report, format, params.by.as_deref())?,
        scope,
        from: etr_reports::period::parse_date(&params.from)?,
        to: etr_reports::period::parse_date(&params.to)?,
        offset: offset(params.utc_offset.as_deref())?,
    };
    let file = etr_reports::render(pool, &request).await?;
    Ok((
        [
            (header::CONTENT_TYPE, file.content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file.name),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        file.bytes,
    )
        .into_response())
}
