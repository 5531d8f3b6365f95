//! Clients, wallets and operations (payments) with their status history: the `wallets`
//! projection's tables.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{ComplexObject, Context, InputObject, Object, SimpleObject};
use etr_domain::money::{format_amount, format_fixed, Currency};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{error, may_read, viewer};
use crate::lending::{Application, Loan};
use crate::loaders::children;
use crate::{pool, reach, store, PositionInput, WALLETS};

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Wallet {
    pub wallet_id: Uuid,
    pub client_id: Uuid,
    pub currency: Option<String>,
    pub status: String,
    /// Decimal strings, exact.
    pub balance: String,
    pub held: String,
    pub available: String,
    pub version: i64,
    pub opened_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    #[graphql(skip)]
    pub holds: Option<sqlx::types::Json<BTreeMap<Uuid, HoldAmount>>>,
}

/// One open hold on a wallet: funds reserved for a payment until it is captured or released.
#[derive(SimpleObject, serde::Deserialize, Clone)]
pub struct Hold {
    pub payment_id: Uuid,
    /// Decimal string, exact.
    pub amount: String,
    pub currency: String,
}

#[derive(serde::Deserialize, Clone)]
pub struct HoldAmount {
    amount: String,
    currency: String,
}

/// A wallet's limits — its client group's, in the wallet's currency, as they apply to the
/// next operation (e-wallet spec §2) — and how much of them is used.
#[derive(SimpleObject)]
pub struct WalletLimits {
    /// The client's group.
    pub group: String,
    /// Decimal strings, exact.
    pub min_operation: String,
    pub max_operation: String,
    pub max_balance: String,
    /// How much more the balance may grow: max balance − balance.
    pub balance_headroom: String,
    /// The largest single operation possible now: the least of max operation, available and
    /// what every spend limit has left.
    pub max_payment_now: String,
    /// A payment above this amount needs the client's OTP confirmation; null: never.
    pub warning_threshold: Option<String>,
    /// The UTC offset (`±HH:MM`) the client's calendar periods are counted in.
    pub utc_offset: String,
    /// Each spend limit with what the current local day, week or month has used.
    pub spend_limits: Vec<SpendLimit>,
}

/// One spend limit and its usage in the current period (reservations count until released).
#[derive(SimpleObject)]
pub struct SpendLimit {
    /// `wallet_source` or `all_sources`.
    pub scope: String,
    /// `day`, `week` (from Monday) or `month`.
    pub period: String,
    /// The first local day of the current period, ISO date.
    pub period_start: String,
    /// Decimal strings, exact.
    pub limit: String,
    pub used: String,
    pub remaining: String,
}

#[ComplexObject]
impl Wallet {
    /// The open holds, by payment.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn holds(&self) -> Vec<Hold> {
        self.holds
            .iter()
            .flat_map(|h| h.0.iter())
            .map(|(payment_id, m)| Hold {
                payment_id: *payment_id,
                amount: amount_text(&m.amount),
                currency: m.currency.clone(),
            })
            .collect()
    }

    /// The wallet's limits (none before it is opened, or in a currency the client's group
    /// has no limits for). Usage is counted as of now in the client's UTC offset.
    async fn limits(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<WalletLimits>> {
        let Some(currency) = self
            .currency
            .as_deref()
            .and_then(|c| Currency::from_str(c).ok())
        else {
            return Ok(None);
        };
        let pool = crate::pool(ctx)?;
        let catalogue = etr_infra::client_groups::read(pool)
            .await
            .map_err(|e| error("UNAVAILABLE", e.to_string()))?;
        let client: Option<sqlx::types::Json<etr_domain::client::Client>> =
            sqlx::query_scalar("SELECT state FROM rm_client_limits WHERE client_id = $1")
                .bind(self.client_id)
                .fetch_optional(pool)
                .await?;
        let client = client.map(|c| c.0).unwrap_or_default();
        let Ok(group) = catalogue.group_of(client.group.as_ref()) else {
            return Ok(None);
        };
        let Ok(limits) = group.limits_in(currency) else {
            return Ok(None);
        };
        let number = |s: &str| {
            Decimal::from_str_exact(s)
                .map_err(|e| error("UNAVAILABLE", format!("unreadable amount {s}: {e}")))
        };
        let digits = currency.minor_digits();
        let text = |d: Decimal| format_fixed(d, digits);
        let balance = number(&self.balance)?;
        let available = number(&self.available)?;
        let offset = client.offset();
        let today = etr_domain::limits::local_day(OffsetDateTime::now_utc(), offset);
        let mut spend_limits = Vec::new();
        let mut headroom = limits.max_operation.min(available);
        for (scope, periods) in [
            (
                etr_domain::limits::Scope::WalletSource,
                &limits.wallet_source,
            ),
            (etr_domain::limits::Scope::AllSources, &limits.all_sources),
        ] {
            for period in etr_domain::limits::Period::ALL {
                let Some(limit) = periods.get(period) else {
                    continue;
                };
                let used = client.spending.used(currency, scope, period, today);
                let remaining = (limit - used).max(Decimal::ZERO);
                headroom = headroom.min(remaining);
                spend_limits.push(SpendLimit {
                    scope: scope.label().into(),
                    period: period.label().into(),
                    period_start: period.start(today).to_string(),
                    limit: text(limit),
                    used: text(used),
                    remaining: text(remaining),
                });
            }
        }
        Ok(Some(WalletLimits {
            group: group.id.to_string(),
            min_operation: text(limits.min_operation),
            max_operation: text(limits.max_operation),
            max_balance: text(limits.max_balance),
            balance_headroom: text((limits.max_balance - balance).max(Decimal::ZERO)),
            max_payment_now: text(headroom.max(Decimal::ZERO)),
            warning_threshold: limits.warning_threshold.map(text),
            utc_offset: etr_domain::limits::format_utc_offset(offset),
            spend_limits,
        }))
    }
}

/// An amount read as text from a read model's JSON (holds, limits, offers), written out
/// exactly but never as a negative zero (`-0.00` → `0.00`, through
/// [`etr_domain::money::format_amount`]); text that is not a decimal is passed on as it is.
/// Amounts read as `numeric::text` need no such step: Postgres has no negative zero.
pub(crate) fn amount_text(text: &str) -> String {
    Decimal::from_str_exact(text).map_or_else(|_| text.to_owned(), format_amount)
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
pub struct StatusChange {
    pub event_type: String,
    /// Lifecycle status code 0–9.
    pub status_code: Option<i16>,
    pub status: String,
    pub partition: i32,
    pub sequence: i64,
    pub occurred_at: OffsetDateTime,
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Operation {
    pub payment_id: Uuid,
    pub wallet_id: Uuid,
    pub client_id: Uuid,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub service_id: String,
    pub status_code: Option<i16>,
    pub status: String,
    pub provider_reference: Option<String>,
    pub failure_reason: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    #[graphql(skip)]
    pub cancellations: Option<sqlx::types::Json<Vec<etr_domain::payment::CancellationRequest>>>,
    /// The amount refunded to the wallet by a cancellation that succeeded (decimal string).
    pub refunded: Option<String>,
    /// The commission charged on top of the amount (decimal string, the amount's currency);
    /// null when the operation has none.
    pub commission: Option<String>,
    /// Where the money comes from: `wallet`, or `card` (a bound bank card, authorised at the
    /// bank; the wallet's balance does not move).
    pub source: String,
    /// The card's first six and last four digits, for a payment from a card.
    pub card_masked_pan: Option<String>,
}

/// A request to cancel a successful operation (e-wallet spec §3.4).
#[derive(SimpleObject)]
pub struct CancellationRequest {
    pub request_id: Uuid,
    /// `new`, `sent_to_processing`, `rejected`, `succeeded` or `processing_error`.
    pub status: String,
    pub reason: String,
    /// The failed check, or the processing centre's error.
    pub error: Option<String>,
    /// The reversal's reference at the processing centre.
    pub reference: Option<String>,
}

#[ComplexObject]
impl Operation {
    /// The cancellation requests of the operation, oldest first.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn cancellation_requests(&self) -> Vec<CancellationRequest> {
        self.cancellations
            .iter()
            .flat_map(|c| c.0.iter())
            .map(|c| CancellationRequest {
                request_id: c.request_id,
                status: c.status.label().into(),
                reason: c.reason.clone(),
                error: c.error.clone(),
                reference: c.reference.clone(),
            })
            .collect()
    }

    /// Every status the operation went through, in log order.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StatusChange>> {
        children(ctx, self.payment_id).await
    }
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Client {
    pub client_id: Uuid,
    pub events: i64,
    pub first_event_at: OffsetDateTime,
    pub last_event_at: OffsetDateTime,
}

#[ComplexObject]
impl Client {
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn wallets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Wallet>> {
        children(ctx, self.client_id).await
    }

    /// The client's loan applications, newest first.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn applications(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Application>> {
        children(ctx, self.client_id).await
    }

    /// The client's loans, newest first.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn loans(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Loan>> {
        children(ctx, self.client_id).await
    }
}

const WALLET_SELECT: &str = "SELECT wallet_id, client_id, currency, status, balance::text AS balance, held::text AS held, available::text AS available, version, opened_at, updated_at, \
     state->'holds' AS holds FROM rm_wallets";
pub(crate) const OPERATION_SELECT: &str = "SELECT payment_id, wallet_id, client_id, amount::text AS amount, currency, service_id, status_code, status, provider_reference, failure_reason, created_at, updated_at, \
     state->'cancellations' AS cancellations, state->'refunded'->>'amount' AS refunded, \
     state->'commission'->>'amount' AS commission, \
     CASE WHEN jsonb_typeof(state->'card') = 'object' THEN 'card' ELSE 'wallet' END AS source, \
     state->'card'->>'masked_pan' AS card_masked_pan FROM rm_payments";

/// Loader queries (see [`crate::loaders::Children`]).
pub(crate) const WALLETS_OF_CLIENTS: &str = "SELECT client_id AS group_key, wallet_id, client_id, currency, status, balance::text AS balance, held::text AS held, available::text AS available, version, opened_at, updated_at, \
     state->'holds' AS holds FROM rm_wallets WHERE client_id = ANY($1) ORDER BY opened_at, wallet_id";
pub(crate) const HISTORY_OF_PAYMENTS: &str = "SELECT payment_id AS group_key, event_type, status_code, status, partition, sequence, occurred_at \
     FROM rm_payment_history WHERE payment_id = ANY($1) ORDER BY partition, sequence";

/// Filter of `operations`.
#[derive(InputObject, Default)]
pub struct OperationFilter {
    /// Only operations with this lifecycle status code (0–9).
    pub status_code: Option<i16>,
    pub service_id: Option<String>,
}

#[derive(Default)]
pub struct WalletQuery;

#[Object]
impl WalletQuery {
    async fn wallet(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Option<Wallet>> {
        viewer(ctx)?;
        let pool = pool(ctx)?;
        reach(pool, WALLETS, min_position).await?;
        let wallet: Option<Wallet> =
            sqlx::query_as(&format!("{WALLET_SELECT} WHERE wallet_id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(store)?;
        if let Some(w) = &wallet {
            may_read(ctx, w.client_id)?;
        }
        Ok(wallet)
    }

    async fn client(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Option<Client>> {
        may_read(ctx, id)?;
        let pool = pool(ctx)?;
        reach(pool, WALLETS, min_position).await?;
        reach(pool, crate::LENDING, min_position).await?;
        sqlx::query_as("SELECT client_id, events, first_event_at, last_event_at FROM rm_clients WHERE client_id = $1")
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(store)
    }

    async fn operation(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Option<Operation>> {
        viewer(ctx)?;
        let pool = pool(ctx)?;
        reach(pool, WALLETS, min_position).await?;
        let op: Option<Operation> =
            sqlx::query_as(&format!("{OPERATION_SELECT} WHERE payment_id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
                .map_err(store)?;
        if let Some(o) = &op {
            may_read(ctx, o.client_id)?;
        }
        Ok(op)
    }

    /// A wallet's operations, newest first, with Relay cursor pagination (`first` ≤ 100).
    #[graphql(
        complexity = "crate::page_cost(first, crate::DEFAULT_PAGE, crate::MAX_PAGE, child_complexity)"
    )]
    async fn operations(
        &self,
        ctx: &Context<'_>,
        wallet_id: Uuid,
        filter: Option<OperationFilter>,
        first: Option<i32>,
        after: Option<String>,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Connection<String, Operation, EmptyFields, EmptyFields>> {
        viewer(ctx)?;
        let pool = pool(ctx)?;
        reach(pool, WALLETS, min_position).await?;
        let owner: Option<Uuid> =
            sqlx::query_scalar("SELECT client_id FROM rm_wallets WHERE wallet_id = $1")
                .bind(wallet_id)
                .fetch_optional(pool)
                .await
                .map_err(store)?;
        let Some(owner) = owner else {
            // No such wallet (yet): no operations, and nothing said about other clients'.
            return Ok(Connection::new(false, false));
        };
        may_read(ctx, owner)?;
        let first = crate::page_size(first)?;
        // Cursor: "<created_at unix nanos>:<payment id>" of the last edge seen.
        let after = match after {
            None => None,
            Some(c) => {
                let (nanos, id) = c
                    .split_once(':')
                    .and_then(|(n, i)| Some((n.parse::<i128>().ok()?, Uuid::parse_str(i).ok()?)))
                    .ok_or_else(|| error("BAD_USER_INPUT", "malformed cursor"))?;
                let at = OffsetDateTime::from_unix_timestamp_nanos(nanos)
                    .map_err(|_| error("BAD_USER_INPUT", "malformed cursor"))?;
                Some((at, id))
            }
        };
        let filter = filter.unwrap_or_default();
        let rows: Vec<Operation> = sqlx::query_as(&format!(
            "{OPERATION_SELECT} WHERE wallet_id = $1 \
             AND ($2::timestamptz IS NULL OR (created_at, payment_id) < ($2, $3)) \
             AND ($4::smallint IS NULL OR status_code = $4) AND ($5::text IS NULL OR service_id = $5) \
             ORDER BY created_at DESC, payment_id DESC LIMIT $6"
        ))
        .bind(wallet_id)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(filter.status_code)
        .bind(filter.service_id)
        .bind(i64::try_from(first).unwrap_or(100) + 1)
        .fetch_all(pool)
        .await
        .map_err(store)?;
        let has_next = rows.len() > first;
        let mut connection = Connection::new(after.is_some(), has_next);
        for op in rows.into_iter().take(first) {
            let cursor = format!("{}:{}", op.created_at.unix_timestamp_nanos(), op.payment_id);
            connection.edges.push(Edge::new(cursor, op));
        }
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::amount_text;

    #[test]
    fn amounts_from_read_model_json_never_show_a_negative_zero() {
        assert_eq!(amount_text("-0.00"), "0.00");
        assert_eq!(amount_text("-0"), "0");
        assert_eq!(amount_text("0.00"), "0.00");
        assert_eq!(amount_text("100.50"), "100.50");
        assert_eq!(amount_text("-0.50"), "-0.50");
        assert_eq!(amount_text("not a number"), "not a number");
    }
}
