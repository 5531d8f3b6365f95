//! The GraphQL query API for client apps (async-graphql on axum, default `:8090`, endpoint
//! `/graphql`, GraphiQL at `/`). It reads the read models in Postgres only, never the write
//! path's tables except the partition heads (to report projection lag).
//!
//! Read-your-writes: every query field takes an optional `minPosition` — the
//! `{partition, sequence}` the command API returned — and waits, up to a timeout, until the
//! projection has applied it; a timeout is a GraphQL error with code `POSITION_NOT_REACHED`.
//!
//! Authorisation: a bearer JWT in `Authorization` ([`auth`]); clients read only their own data.
//!
//! Still to come with the read side: applications and loans, the client timeline,
//! subscriptions, DataLoaders.

pub mod auth;

use async_graphql::connection::{Connection, Edge, EmptyFields};
use async_graphql::http::GraphiQLSource;
use async_graphql::{
    Context, EmptyMutation, EmptySubscription, InputObject, Object, Schema, SimpleObject,
};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use axum::Router;
use sqlx::PgPool;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use auth::{error, may_read, viewer, Access, Keys};

pub type QuerySchema = Schema<Query, EmptyMutation, EmptySubscription>;

/// The projection the wallet fields read.
const PROJECTION: &str = "wallets";

/// Builds the schema with depth and complexity limits.
pub fn schema(pool: PgPool) -> QuerySchema {
    Schema::build(Query, EmptyMutation, EmptySubscription)
        .data(pool)
        .limit_depth(12)
        .limit_complexity(2_000)
        .finish()
}

pub fn router(pool: PgPool, keys: Keys) -> Router {
    let schema = schema(pool);
    Router::new()
        .route("/", get(graphiql))
        .route("/graphql", get(graphiql).post(graphql))
        .with_state((schema, keys))
}

/// Executes a request with the caller's access (from the bearer token) in its context.
async fn graphql(
    State((schema, keys)): State<(QuerySchema, Keys)>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let access = match headers.get("authorization").map(|v| v.to_str()) {
        None => Access::Denied("a bearer token is required".into()),
        Some(Err(_)) => Access::Denied("the Authorization header is not text".into()),
        Some(Ok(value)) => match value.strip_prefix("Bearer ") {
            None => Access::Denied("expected `Authorization: Bearer <token>`".into()),
            Some(token) => match keys.verify(token.trim()) {
                Ok(viewer) => Access::Granted(viewer),
                Err(e) => Access::Denied(e.to_string()),
            },
        },
    };
    schema
        .execute(request.into_inner().data(access))
        .await
        .into()
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

fn store(e: sqlx::Error) -> async_graphql::Error {
    error("UNAVAILABLE", format!("read model unavailable: {e}"))
}

/// A log position returned by the command API.
#[derive(InputObject, Clone, Copy)]
pub struct PositionInput {
    pub partition: i32,
    pub sequence: i64,
}

/// Waits until the projection has applied `position` (bounded).
async fn reach(pool: &PgPool, position: Option<PositionInput>) -> async_graphql::Result<()> {
    let Some(p) = position else { return Ok(()) };
    if p.partition < 0 || p.sequence < 0 {
        return Err(error("BAD_USER_INPUT", "minPosition must be non-negative"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT sequence FROM projection_checkpoints WHERE projection = $1 AND partition = $2",
        )
        .bind(PROJECTION)
        .bind(p.partition)
        .fetch_optional(pool)
        .await
        .map_err(store)?;
        if at.is_some_and(|s| s >= p.sequence) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(error(
                "POSITION_NOT_REACHED",
                format!(
                    "the read model has not reached partition {} sequence {} within 5 s (at {:?})",
                    p.partition, p.sequence, at
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pool<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a PgPool> {
    ctx.data::<PgPool>()
}

#[derive(SimpleObject, sqlx::FromRow)]
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
}

#[derive(SimpleObject, sqlx::FromRow)]
pub struct StatusChange {
    pub event_type: String,
    /// Lifecycle status code 0–9.
    pub status_code: Option<i16>,
    pub status: String,
    pub partition: i32,
    pub sequence: i64,
    pub occurred_at: OffsetDateTime,
}

#[derive(SimpleObject, sqlx::FromRow)]
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
}

#[async_graphql::ComplexObject]
impl Operation {
    /// Every status the operation went through, in log order.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<StatusChange>> {
        sqlx::query_as(
            "SELECT event_type, status_code, status, partition, sequence, occurred_at FROM rm_payment_history WHERE payment_id = $1 ORDER BY partition, sequence",
        )
        .bind(self.payment_id)
        .fetch_all(pool(ctx)?)
        .await
        .map_err(store)
    }
}

#[derive(SimpleObject, sqlx::FromRow)]
#[graphql(complex)]
pub struct Client {
    pub client_id: Uuid,
    pub events: i64,
    pub first_event_at: OffsetDateTime,
    pub last_event_at: OffsetDateTime,
}

#[async_graphql::ComplexObject]
impl Client {
    async fn wallets(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Wallet>> {
        sqlx::query_as(&format!(
            "{WALLET_SELECT} WHERE client_id = $1 ORDER BY opened_at, wallet_id"
        ))
        .bind(self.client_id)
        .fetch_all(pool(ctx)?)
        .await
        .map_err(store)
    }
}

#[derive(SimpleObject, sqlx::FromRow)]
pub struct ProjectionPartition {
    pub projection: String,
    pub partition: i32,
    /// Last sequence applied.
    pub sequence: i64,
    /// Last sequence committed on the write side.
    pub head: i64,
    /// Events committed but not yet applied.
    pub lag: i64,
}

const WALLET_SELECT: &str = "SELECT wallet_id, client_id, currency, status, balance::text AS balance, held::text AS held, available::text AS available, version, opened_at, updated_at FROM rm_wallets";
const OPERATION_SELECT: &str = "SELECT payment_id, wallet_id, client_id, amount::text AS amount, currency, service_id, status_code, status, provider_reference, failure_reason, created_at, updated_at FROM rm_payments";

/// Filter of `operations`.
#[derive(InputObject, Default)]
pub struct OperationFilter {
    /// Only operations with this lifecycle status code (0–9).
    pub status_code: Option<i16>,
    pub service_id: Option<String>,
}

pub struct Query;

#[Object]
impl Query {
    async fn wallet(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Option<Wallet>> {
        viewer(ctx)?;
        let pool = pool(ctx)?;
        reach(pool, min_position).await?;
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
        reach(pool, min_position).await?;
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
        reach(pool, min_position).await?;
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
        reach(pool, min_position).await?;
        let owner: Option<Uuid> =
            sqlx::query_scalar("SELECT client_id FROM rm_wallets WHERE wallet_id = $1")
                .bind(wallet_id)
                .fetch_optional(pool)
                .await
                .map_err(store)?;
        if let Some(owner) = owner {
            may_read(ctx, owner)?;
        }
        let first = first.unwrap_or(20);
        if !(1..=100).contains(&first) {
            return Err(error("BAD_USER_INPUT", "first must be between 1 and 100"));
        }
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
        .bind(i64::from(first) + 1)
        .fetch_all(pool)
        .await
        .map_err(store)?;
        let has_next = rows.len() > usize::try_from(first).unwrap_or(0);
        let mut connection = Connection::new(after.is_some(), has_next);
        for op in rows.into_iter().take(usize::try_from(first).unwrap_or(0)) {
            let cursor = format!("{}:{}", op.created_at.unix_timestamp_nanos(), op.payment_id);
            connection.edges.push(Edge::new(cursor, op));
        }
        Ok(connection)
    }

    /// How far each projection is behind the write side, per partition.
    async fn projection_status(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ProjectionPartition>> {
        viewer(ctx)?;
        sqlx::query_as(
            "SELECT $1::text AS projection, h.partition, COALESCE(c.sequence, 0) AS sequence, h.sequence AS head, \
             h.sequence - COALESCE(c.sequence, 0) AS lag \
             FROM partition_heads h LEFT JOIN projection_checkpoints c ON c.partition = h.partition AND c.projection = $1 ORDER BY h.partition",
        )
        .bind(PROJECTION)
        .fetch_all(pool(ctx)?)
        .await
        .map_err(store)
    }
}
