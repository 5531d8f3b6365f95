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
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COST)
        .finish()
}

/// The largest request body the query API reads, in bytes (a query with its variables);
/// a larger one is answered 413 before it is read.
pub const MAX_BODY: usize = 256 * 1024;

pub fn router(pool: PgPool, keys: Keys) -> Router {
    let schema = schema(pool.clone());
    let router = Router::new()
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
        );
    router.layer(tower_http::limit::RequestBodyLimitLayer::new(MAX_BODY))
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
    let request = request.into_inner();
    if let Err(e) = nul_free(&request) {
        return async_graphql::Response::from_errors(vec![e]).into();
    }
    let mut response = schema.execute(request.data(access)).await;
    coded(&mut response);
    response.into()
}

/// Refuses a request whose query text or variables hold the NUL character U+0000 (as a
/// `\u0000` or `\u{0}` escape in a string of the query, or in a variable's string), with
/// `BAD_USER_INPUT`: no text of the platform may contain it (Postgres text cannot store it),
/// and it is refused here once rather than by whichever statement would meet it.
pub fn nul_free(request: &async_graphql::Request) -> Result<(), async_graphql::ServerError> {
    fn value_has_nul(v: &async_graphql::Value) -> bool {
        use async_graphql::Value;
        match v {
            Value::String(s) => s.contains('\0'),
            Value::Enum(name) => name.as_str().contains('\0'),
            Value::List(items) => items.iter().any(value_has_nul),
            Value::Object(fields) => fields
                .iter()
                .any(|(k, v)| k.contains('\0') || value_has_nul(v)),
            _ => false,
        }
    }
    let in_variables = request
        .variables
        .iter()
        .any(|(k, v)| k.contains('\0') || value_has_nul(v));
    if in_variables || escapes_nul(&request.query) {
        let mut e =
            async_graphql::ServerError::new("text may not contain the NUL character U+0000", None);
        e.extensions
            .get_or_insert_with(Default::default)
            .set("code", "BAD_USER_INPUT");
        return Err(e);
    }
    Ok(())
}

/// Whether a GraphQL document holds U+0000 itself or as an escape (`\u0000`, `\u{0}`) —
/// an escape only where the backslash is not itself escaped.
fn escapes_nul(query: &str) -> bool {
    if query.contains('\0') {
        return true;
    }
    let bytes = query.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let rest = &query[i + 1..];
            if rest.starts_with("u0000") {
                return true;
            }
            if let Some(braced) = rest.strip_prefix("u{") {
                let digits: String = braced.chars().take_while(|c| *c != '}').collect();
                if !digits.is_empty() && digits.chars().all(|c| c == '0') {
                    return true;
                }
            }
            // Skip the escaped character, so `\\u0000` is a backslash and text.
            i += 2;
            continue;
        }
        i += 1;
    }
    false
}

/// Gives every error of a response a machine-readable `extensions.code`: the resolvers'
/// errors carry theirs; what async-graphql refuses before anything runs gets
/// `QUERY_TOO_COMPLEX` (above [`MAX_COST`]), `QUERY_TOO_DEEP` (above [`MAX_DEPTH`]),
/// `GRAPHQL_PARSE_FAILED` (not GraphQL) or `GRAPHQL_VALIDATION_FAILED` (not valid against
/// the schema: an unknown field, a wrong argument type, …); an argument that fails to parse
/// while the query runs (a malformed UUID or date) gets `BAD_USER_INPUT`, anything else
/// without a code `INTERNAL`.
pub fn coded(response: &mut async_graphql::Response) {
    for e in &mut response.errors {
        let has_code = e
            .extensions
            .as_ref()
            .is_some_and(|x| x.get("code").is_some());
        if has_code {
            continue;
        }
        let code = if e.message.contains("too complex") {
            "QUERY_TOO_COMPLEX"
        } else if e.message.contains("too deep") {
            "QUERY_TOO_DEEP"
        } else if e.path.is_empty() && e.message.trim_start().starts_with("-->") {
            "GRAPHQL_PARSE_FAILED"
        } else if e.path.is_empty() {
            "GRAPHQL_VALIDATION_FAILED"
        } else if e.message.starts_with("Failed to parse") || e.message.starts_with("Invalid value")
        {
            "BAD_USER_INPUT"
        } else {
            "INTERNAL"
        };
        e.extensions
            .get_or_insert_with(Default::default)
            .set("code", code);
    }
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

/// The deepest selection a query may nest.
pub const MAX_DEPTH: usize = 12;

/// The most a query may cost, counted before it runs (async-graphql's complexity): every
/// selected field costs 1 — each alias and each field a fragment spreads is a selection of
/// its own —, a page costs 1 plus its selections times the page size asked ([`page_cost`]),
/// a list without paging 1 plus its selections times [`LIST_ESTIMATE`]. A query above it is
/// refused whole with the message "Query is too complex." and nothing is read.
pub const MAX_COST: usize = 10_000;

/// What a list without paging (a client's wallets, an operation's status history, a
/// dictionary) counts as, in items, in a query's cost.
pub const LIST_ESTIMATE: usize = 10;

/// The default page size of a connection.
pub const DEFAULT_PAGE: i32 = 20;

/// The largest page size of a connection.
pub const MAX_PAGE: i32 = 100;

/// The cost of a page of `first` items (`default` when absent) with `child` per item. The
/// size is clamped to 1..=`max` here, so an invalid size is refused by its resolver with
/// `BAD_USER_INPUT`, not by the cost.
pub(crate) fn page_cost(first: Option<i32>, default: i32, max: i32, child: usize) -> usize {
    let items = usize::try_from(first.unwrap_or(default).clamp(1, max)).unwrap_or(1);
    items.saturating_mul(child).saturating_add(1)
}

/// The cost of a list without paging: [`LIST_ESTIMATE`] items of `child` each.
pub(crate) fn list_cost(child: usize) -> usize {
    LIST_ESTIMATE.saturating_mul(child).saturating_add(1)
}

/// `first` of a connection: 1 to 100, default 20.
pub(crate) fn page_size(first: Option<i32>) -> async_graphql::Result<usize> {
    let first = first.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&first) {
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
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
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

#[cfg(test)]
mod cost {
    //! The query cost counts what a query selects before anything runs: aliases, fragments
    //! and page sizes included.

    use super::*;

    /// Runs `query` against the schema with no viewer and no database behind it: only the
    /// checks made before execution can pass or refuse it.
    async fn codes(query: &str) -> Vec<String> {
        let Ok(pool) = sqlx::PgPool::connect_lazy("postgres://nobody@127.0.0.1:1/none") else {
            panic!("a lazy pool needs no server");
        };
        let mut response = schema(pool).execute(query).await;
        coded(&mut response);
        response
            .errors
            .iter()
            .filter_map(|e| {
                e.extensions
                    .as_ref()
                    .and_then(|x| x.get("code"))
                    .map(|c| c.to_string().trim_matches('"').to_owned())
            })
            .collect()
    }

    const WALLET: &str = "00000000-0000-0000-0000-000000000001";

    /// `n` aliases of a page of 100 operations, each selecting `fields` per node.
    fn aliased_pages(n: usize, fields: &str) -> String {
        let pages: String = (0..n)
            .map(|i| {
                format!(
                    "p{i}: operations(walletId: \"{WALLET}\", first: 100) {{ edges {{ node {{ {fields} }} }} }} "
                )
            })
            .collect();
        format!("fragment F on Operation {{ amount }} {{ {pages} }}")
    }

    #[tokio::test]
    async fn aliases_fragments_and_page_sizes_all_count() {
        // A page of 100 with two fields per node: 1 + 100 × (edges 1 + node 1 + 2) = 401.
        // 24 such aliases (9,624) pass the cost check (the query then fails for want of a
        // viewer), 25 (10,025) are refused before anything runs.
        let under = codes(&aliased_pages(24, "paymentId status")).await;
        assert!(
            !under.contains(&"QUERY_TOO_COMPLEX".to_owned()),
            "{under:?}"
        );
        assert_eq!(
            codes(&aliased_pages(25, "paymentId status")).await,
            ["QUERY_TOO_COMPLEX"]
        );
        // The same 24 aliases with a fragment adding one field per node: 24 × 501.
        assert_eq!(
            codes(&aliased_pages(24, "paymentId status ...F")).await,
            ["QUERY_TOO_COMPLEX"]
        );
        // The page size counts: 24 aliases of 100 pass, so do 100 of 20, not 100 of 100.
        let small: String = (0..100)
            .map(|i| format!("p{i}: operations(walletId: \"{WALLET}\", first: 20) {{ edges {{ node {{ paymentId }} }} }} "))
            .collect();
        let small_codes = codes(&format!("{{ {small} }}")).await;
        assert!(
            !small_codes.contains(&"QUERY_TOO_COMPLEX".to_owned()),
            "{small_codes:?}"
        );
        let big = small.replace("first: 20", "first: 100");
        assert_eq!(codes(&format!("{{ {big} }}")).await, ["QUERY_TOO_COMPLEX"]);
    }

    #[test]
    fn the_nul_character_is_found_wherever_a_query_can_hold_it() {
        assert!(escapes_nul(r#"{ a(x: "\u0000") }"#));
        assert!(escapes_nul(r#"{ a(x: "ab\u{00}c") }"#));
        assert!(escapes_nul("{ a(x: \"\0\") }"));
        assert!(!escapes_nul(r#"{ a(x: "\\u0000") }"#));
        assert!(!escapes_nul(r#"{ a(x: "\u0041") }"#));
        let variables =
            async_graphql::Variables::from_json(serde_json::json!({"p": {"q": ["a\u{0}"]}}));
        let request = async_graphql::Request::new("{ a }").variables(variables);
        assert!(nul_free(&request).is_err());
    }

    #[tokio::test]
    async fn refusals_before_execution_carry_codes() {
        assert_eq!(codes("{ nope }").await, ["GRAPHQL_VALIDATION_FAILED"]);
        assert_eq!(codes("{ operations(").await, ["GRAPHQL_PARSE_FAILED"]);
    }
}
