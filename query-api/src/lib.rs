//! The GraphQL query API for client apps (async-graphql on axum, default `:8090`, endpoint
//! `/graphql`, GraphiQL at `/` with its assets under `/assets/`: [`pages`]). It reads the
//! read models in Postgres only, never the write path's tables except the partition heads
//! (to report projection lag).
//!
//! Read-your-writes: every query field takes an optional `minPosition` — the
//! `{partition, sequence}` the command API returned — and waits, up to a timeout, until the
//! projection has applied it; a timeout is a GraphQL error with code `POSITION_NOT_REACHED`.
//!
//! Authorisation: a bearer JWT in `Authorization` ([`auth`]); clients read only their own data.
//! Subscriptions (`operationStatusChanged`) run over a websocket at `/graphql/ws`
//! (graphql-transport-ws or graphql-ws), the token in the `connection_init` payload as
//! `{"Authorization": "Bearer …"}`. Children of a parent (a client's wallets, an
//! operation's history, …) come through DataLoaders, one query per kind and response.
//! `/metrics` exposes every projection's lag in the Prometheus text format. Balance reports:
//! `turnoverSheet`, `dailyBalances`, `balanceChart` and their files from
//! `GET /reports/<report>.<format>` ([`reports`]). API request statistics for operators:
//! `apiRequestStatsLive`, `apiRequestStatsByDay`, `apiRequestStatsByClient` ([`fraud`]). The
//! processing dictionaries — menu, services, commission profiles, rates, map points, a phone
//! number's operator and a payment's commission quote — from their current version
//! ([`dictionaries`]). Advertising: places, campaigns and banners for operators, and the
//! next banner of a web-application place for an operation ([`advertising`]).

pub mod advertising;
pub mod alerts;
pub mod auth;
pub mod customers;
pub mod dictionaries;
pub mod fraud;
pub mod lending;
mod loaders;
mod metrics;
pub mod pages;
pub mod reports;
pub mod subscription;
pub mod timeline;
pub mod wallets;

use async_graphql::{
    Context, Data, EmptyMutation, InputObject, MergedObject, Object, Schema, SimpleObject,
};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use sqlx::PgPool;
use std::time::Duration;

use auth::{error, viewer, Access, Keys};
use loaders::Children;
use subscription::{Announcements, ClientChanges, Subscription};

pub type QuerySchema = Schema<Query, EmptyMutation, Subscription>;

/// The projections and the fields they serve: `wallets` (clients, wallets, operations,
/// balance reports),
/// `lending` (applications, loans), `timeline` (clientTimeline, clientStateAsOf).
pub const WALLETS: &str = "wallets";
pub const LENDING: &str = "lending";
pub const TIMELINE: &str = "timeline";
pub const PROJECTIONS: [&str; 3] = [WALLETS, LENDING, TIMELINE];

/// Every query field.
#[derive(MergedObject, Default)]
pub struct Query(
    wallets::WalletQuery,
    lending::LendingQuery,
    customers::CustomerQuery,
    timeline::TimelineQuery,
    reports::ReportQuery,
    fraud::FraudQuery,
    dictionaries::DictionaryQuery,
    alerts::AlertQuery,
    advertising::AdvertisingQuery,
    StatusQuery,
);

/// Builds the schema with depth and complexity limits, the DataLoaders and the fan-out of
/// status changes (started here; needs a Tokio runtime).
pub fn schema(pool: PgPool) -> QuerySchema {
    Schema::build(Query::default(), EmptyMutation, Subscription)
        .data(Children::<wallets::Wallet>::loader(
            pool.clone(),
            wallets::WALLETS_OF_CLIENTS,
        ))
        .data(Children::<wallets::StatusChange>::loader(
            pool.clone(),
            wallets::HISTORY_OF_PAYMENTS,
        ))
        .data(Children::<lending::Application>::loader(
            pool.clone(),
            lending::APPLICATIONS_OF_CLIENTS,
        ))
        .data(Children::<lending::Loan>::loader(
            pool.clone(),
            lending::LOANS_OF_CLIENTS,
        ))
        .data(Children::<lending::LoanMovement>::loader(
            pool.clone(),
            lending::MOVEMENTS_OF_LOANS,
        ))
        .data(Announcements::listen(pool.clone(), subscription::CHANNEL))
        .data(ClientChanges::listen(
            pool.clone(),
            subscription::CLIENT_CHANNEL,
        ))
        .data(etr_infra::dictionaries::Catalogues::default())
        .data(pool)
        .limit_depth(12)
        .limit_complexity(2_000)
        .finish()
}

pub fn router(pool: PgPool, keys: Keys) -> Router {
    let schema = schema(pool.clone());
    Router::new()
        .route("/", get(pages::graphiql))
        .route("/graphql", get(pages::graphiql).post(graphql))
        .route("/graphql/ws", get(websocket))
        .route("/graphql/introspection", get(pages::introspection))
        .route("/assets/{*path}", get(pages::asset))
        .with_state((schema, keys.clone()))
        .merge(
            Router::new()
                .route("/reports/{file}", get(reports::download))
                .with_state((pool.clone(), keys)),
        )
        .merge(
            Router::new()
                .route("/metrics", get(metrics::metrics))
                .route(
                    "/advertising/banners/{banner_id}/image",
                    get(advertising::image),
                )
                .with_state(pool),
        )
}

/// The caller's access from an `Authorization` value.
fn access(keys: &Keys, authorization: Option<&str>) -> Access {
    match keys.verify_header(authorization) {
        Ok(viewer) => Access::Granted(viewer),
        Err(e) => Access::Denied(e.to_string()),
    }
}

/// Executes a request with the caller's access (from the bearer token) in its context.
async fn graphql(
    State((schema, keys)): State<(QuerySchema, Keys)>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let access = match headers.get("authorization").map(|v| v.to_str()) {
        Some(Err(_)) => Access::Denied("the Authorization header is not text".into()),
        other => access(&keys, other.and_then(Result::ok)),
    };
    schema
        .execute(request.into_inner().data(access))
        .await
        .into()
}

/// Subscriptions over a websocket (`graphql-transport-ws` or the older `graphql-ws`, as the
/// client's `Sec-WebSocket-Protocol` asks); the bearer token comes in the `connection_init`
/// payload (`Authorization` or `authorization`), or else the upgrade request's header. When
/// the token expires the server closes the socket with code 4401 and reason `token expired`:
/// the client reconnects with a fresh token (and resumes with `fromPosition`).
async fn websocket(
    State((schema, keys)): State<(QuerySchema, Keys)>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    use axum::response::IntoResponse as _;
    use std::str::FromStr as _;
    let header = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let protocol = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|list| {
            list.split(',')
                .find_map(|p| async_graphql::http::WebSocketProtocols::from_str(p.trim()).ok())
        });
    let Some(protocol) = protocol else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "Sec-WebSocket-Protocol must name graphql-transport-ws or graphql-ws",
        )
            .into_response();
    };
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| serve_socket(socket, schema, protocol, keys, header))
}

/// Runs one subscription socket until either side ends it or its token expires.
async fn serve_socket(
    socket: axum::extract::ws::WebSocket,
    schema: QuerySchema,
    protocol: async_graphql::http::WebSocketProtocols,
    keys: Keys,
    header: Option<String>,
) {
    use axum::extract::ws::{CloseFrame, Message};
    use futures::{SinkExt as _, StreamExt as _};
    let (sink, stream) = socket.split();
    // The token's expiry, known once the connection is initialised.
    let (expiry_tx, mut expiry_rx) = tokio::sync::watch::channel::<Option<i64>>(None);
    let input = stream
        .take_while(|m| futures::future::ready(m.is_ok()))
        .filter_map(|m| {
            futures::future::ready(match m {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => Some(m.into_data()),
                _ => None,
            })
        });
    let outgoing = async_graphql::http::WebSocket::new(schema, input, protocol)
        .on_connection_init(move |payload| async move {
            let from_payload = ["Authorization", "authorization"]
                .iter()
                .find_map(|k| payload.get(k).and_then(|v| v.as_str()).map(str::to_owned));
            let access = access(&keys, from_payload.or(header).as_deref());
            if let Access::Granted(viewer) = &access {
                expiry_tx.send_replace(Some(viewer.expires_at));
            }
            let mut data = Data::default();
            data.insert(access);
            Ok(data)
        })
        .map(|m| match m {
            async_graphql::http::WsMessage::Text(text) => Message::Text(text.into()),
            async_graphql::http::WsMessage::Close(code, reason) => {
                Message::Close(Some(CloseFrame {
                    code,
                    reason: reason.into(),
                }))
            }
        });
    futures::pin_mut!(outgoing, sink);
    let mut watching = true;
    loop {
        let expires = *expiry_rx.borrow();
        let expiry = async move {
            match expires {
                Some(at) => {
                    let left = at.saturating_sub(time::OffsetDateTime::now_utc().unix_timestamp());
                    tokio::time::sleep(Duration::from_secs(u64::try_from(left).unwrap_or(0))).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            item = outgoing.next() => match item {
                Some(m) => {
                    if sink.send(m).await.is_err() {
                        break;
                    }
                }
                None => break,
            },
            () = expiry => {
                let close = Message::Close(Some(CloseFrame {
                    code: 4401,
                    reason: "token expired".into(),
                }));
                drop(sink.send(close).await);
                break;
            }
            changed = expiry_rx.changed(), if watching => {
                // The initialisation is over (its sender is dropped): the expiry is final.
                if changed.is_err() {
                    watching = false;
                }
            }
        }
    }
}

/// `first` of a connection: 1 to 100, default 20.
pub(crate) fn page_size(first: Option<i32>) -> async_graphql::Result<usize> {
    let first = first.unwrap_or(20);
    if !(1..=100).contains(&first) {
        return Err(error("BAD_USER_INPUT", "first must be between 1 and 100"));
    }
    Ok(usize::try_from(first).unwrap_or(20))
}

pub(crate) fn store(e: sqlx::Error) -> async_graphql::Error {
    error("UNAVAILABLE", format!("read model unavailable: {e}"))
}

/// A log position returned by the command API.
#[derive(InputObject, Clone, Copy)]
pub struct PositionInput {
    pub partition: i32,
    pub sequence: i64,
}

/// Waits until `projection` has applied `position` (bounded).
pub(crate) async fn reach(
    pool: &PgPool,
    projection: &str,
    position: Option<PositionInput>,
) -> async_graphql::Result<()> {
    let Some(p) = position else { return Ok(()) };
    if p.partition < 0 || p.sequence < 0 {
        return Err(error("BAD_USER_INPUT", "minPosition must be non-negative"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT sequence FROM projection_checkpoints WHERE projection = $1 AND partition = $2",
        )
        .bind(projection)
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
                    "the {projection} read model has not reached partition {} sequence {} within 5 s (at {:?})",
                    p.partition, p.sequence, at
                ),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub(crate) fn pool<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a PgPool> {
    ctx.data::<PgPool>()
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

#[derive(Default)]
pub struct StatusQuery;

#[Object]
impl StatusQuery {
    /// How far each projection is behind the write side, per partition.
    async fn projection_status(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<ProjectionPartition>> {
        viewer(ctx)?;
        sqlx::query_as(
            "SELECT p.projection, h.partition, COALESCE(c.sequence, 0) AS sequence, h.sequence AS head, \
             GREATEST(h.sequence - COALESCE(c.sequence, 0), 0) AS lag \
             FROM unnest($1::text[]) AS p(projection) CROSS JOIN partition_heads h \
             LEFT JOIN projection_checkpoints c ON c.partition = h.partition AND c.projection = p.projection \
             ORDER BY p.projection, h.partition",
        )
        .bind(PROJECTIONS)
        .fetch_all(pool(ctx)?)
        .await
        .map_err(store)
    }
}
