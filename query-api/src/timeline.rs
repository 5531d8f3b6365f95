//! The client timeline (`clientTimeline`) and the client's state at a time
//! (`clientStateAsOf`, the events up to then folded with the domain's own `evolve`): the
//! `timeline` projection's table. Readable by the client itself, operators and auditors.

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::{Context, Json, Object, SimpleObject};
use etr_domain::money::format_fixed;
use etr_domain::{evolve, AggregateKind, AggregateRef, ClientId, Currency, Event, State};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{error, may_read_timeline};
use crate::{pool, reach, store, PositionInput, TIMELINE};

/// One event of a client, with who caused it, why, and its place in the hash chain.
#[derive(SimpleObject, sqlx::FromRow, Clone)]
pub struct TimelineEvent {
    pub partition: i32,
    pub sequence: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: i32,
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub aggregate_version: i64,
    /// client, partner, operator or system.
    pub actor_kind: String,
    pub actor_id: String,
    pub command_id: String,
    pub correlation_id: String,
    pub occurred_at: OffsetDateTime,
    pub prev_hash: String,
    pub hash: String,
    /// The event's own fields, as the domain defines them (amounts are decimal strings).
    pub event: serde_json::Value,
}

/// A wallet as it was at the requested time.
#[derive(SimpleObject)]
pub struct WalletAsOf {
    pub wallet_id: Uuid,
    pub currency: Option<String>,
    pub status: String,
    /// Decimal strings, exact.
    pub balance: String,
    pub held: String,
    pub available: String,
    pub version: i64,
}

/// Any aggregate of the client as it was at the requested time.
#[derive(SimpleObject)]
pub struct AggregateAsOf {
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub version: i64,
    pub status: String,
    /// The folded state, as the domain serialises it.
    pub state: Json<serde_json::Value>,
}

#[derive(SimpleObject)]
pub struct ClientStateAsOf {
    pub client_id: Uuid,
    pub at: OffsetDateTime,
    /// How many of the client's events were folded (the log prefix before the first event
    /// after `at`).
    pub events: i64,
    pub wallets: Vec<WalletAsOf>,
    pub aggregates: Vec<AggregateAsOf>,
}

const TIMELINE_COLUMNS: &str = "partition, sequence, event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version, actor_kind, actor_id, command_id, correlation_id, occurred_at, prev_hash, hash, event";

fn status_of(state: &State) -> String {
    match state {
        State::Wallet(w) => match w.status {
            etr_domain::wallet::Status::NotOpened => "not_opened".into(),
            etr_domain::wallet::Status::Open => "open".into(),
            etr_domain::wallet::Status::Closed => "closed".into(),
        },
        State::Payment(p) => p.status.label().into(),
        State::Client(c) => c.status.label().into(),
        State::Application(a) => a.status.label().into(),
        State::Loan(l) => l.status.label().into(),
        State::MerchantOrder(o) => o.status.as_str().into(),
    }
}

#[derive(Default)]
pub struct TimelineQuery;

#[Object]
impl TimelineQuery {
    /// Every event of a client across all aggregates, in log order, optionally within
    /// `[from, to)` by occurred-at, with Relay cursor pagination (`first` ≤ 100).
    #[allow(clippy::too_many_arguments)]
    #[graphql(
        complexity = "crate::page_cost(first, crate::DEFAULT_PAGE, crate::MAX_PAGE, child_complexity)"
    )]
    async fn client_timeline(
        &self,
        ctx: &Context<'_>,
        client_id: Uuid,
        from: Option<OffsetDateTime>,
        to: Option<OffsetDateTime>,
        first: Option<i32>,
        after: Option<String>,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Connection<String, TimelineEvent, EmptyFields, EmptyFields>> {
        may_read_timeline(ctx, client_id)?;
        let pool = pool(ctx)?;
        reach(pool, TIMELINE, min_position).await?;
        let first = crate::page_size(first)?;
        // Cursor: "<partition>:<sequence>" of the last edge seen.
        let after = after
            .map(|c| {
                c.split_once(':')
                    .and_then(|(p, s)| Some((p.parse::<i32>().ok()?, s.parse::<i64>().ok()?)))
                    .ok_or_else(|| error("BAD_USER_INPUT", "malformed cursor"))
            })
            .transpose()?;
        let rows: Vec<TimelineEvent> = sqlx::query_as(&format!(
            "SELECT {TIMELINE_COLUMNS} FROM rm_timeline WHERE client_id = $1 \
             AND ($2::timestamptz IS NULL OR occurred_at >= $2) AND ($3::timestamptz IS NULL OR occurred_at < $3) \
             AND ($4::int IS NULL OR (partition, sequence) > ($4, $5)) \
             ORDER BY partition, sequence LIMIT $6"
        ))
        .bind(client_id)
        .bind(from)
        .bind(to)
        .bind(after.map(|a| a.0))
        .bind(after.map(|a| a.1))
        .bind(i64::try_from(first).unwrap_or(100) + 1)
        .fetch_all(pool)
        .await
        .map_err(store)?;
        let has_next = rows.len() > first;
        let mut connection = Connection::new(after.is_some(), has_next);
        for e in rows.into_iter().take(first) {
            let cursor = format!("{}:{}", e.partition, e.sequence);
            connection.edges.push(Edge::new(cursor, e));
        }
        Ok(connection)
    }

    /// The client's aggregates as they were at `at`: its events in log order up to the first
    /// one that occurred after `at`, folded (a prefix of the log, so a state that existed).
    async fn client_state_as_of(
        &self,
        ctx: &Context<'_>,
        client_id: Uuid,
        at: OffsetDateTime,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<ClientStateAsOf> {
        may_read_timeline(ctx, client_id)?;
        let pool = pool(ctx)?;
        reach(pool, TIMELINE, min_position).await?;
        let rows: Vec<(String, Uuid, i64, serde_json::Value)> = sqlx::query_as(
            "SELECT aggregate_type, aggregate_id, aggregate_version, event FROM rm_timeline \
             WHERE client_id = $1 AND sequence < COALESCE( \
               (SELECT min(sequence) FROM rm_timeline WHERE client_id = $1 AND occurred_at > $2), 9223372036854775807) \
             ORDER BY partition, sequence",
        )
        .bind(client_id)
        .bind(at)
        .fetch_all(pool)
        .await
        .map_err(store)?;
        let events = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let mut states: BTreeMap<AggregateRef, (i64, State)> = BTreeMap::new();
        for (kind, id, version, json) in rows {
            let kind = AggregateKind::parse(&kind)
                .ok_or_else(|| error("UNAVAILABLE", format!("unknown aggregate type `{kind}`")))?;
            let event: Event = serde_json::from_value(json)
                .map_err(|e| error("UNAVAILABLE", format!("undecodable event: {e}")))?;
            let target = AggregateRef { kind, id };
            let (_, state) = states
                .remove(&target)
                .unwrap_or_else(|| (0, State::initial(target)));
            states.insert(
                target,
                (version, evolve(state, ClientId(client_id), &event)),
            );
        }
        let mut wallets = Vec::new();
        let mut aggregates = Vec::new();
        for (target, (version, state)) in states {
            if let State::Wallet(w) = &state {
                // Not `{:.2}`: it writes -0.001 as "-0.00".
                let digits = w.currency.map_or(2, Currency::minor_digits);
                wallets.push(WalletAsOf {
                    wallet_id: w.id,
                    currency: w.currency.map(|c| c.code().to_owned()),
                    status: status_of(&state),
                    balance: format_fixed(w.balance, digits),
                    held: format_fixed(w.held(), digits),
                    available: format_fixed(w.available(), digits),
                    version,
                });
            }
            aggregates.push(AggregateAsOf {
                aggregate_type: target.kind.as_str().to_owned(),
                aggregate_id: target.id,
                version,
                status: status_of(&state),
                state: Json(
                    serde_json::to_value(&state)
                        .map_err(|e| error("UNAVAILABLE", format!("unserialisable state: {e}")))?,
                ),
            });
        }
        Ok(ClientStateAsOf {
            client_id,
            at,
            events,
            wallets,
            aggregates,
        })
    }
}
