//! REST API for partners and clients (default `:8080`). Every POST takes an `Idempotency-Key`;
//! amounts are decimal strings; every error is a JSON body `{"error": {"code", "message"}}`
//! with a 4xx status, or a rejected outcome `{"status": "rejected", "code", ...}`.
//! All error mapping happens in [`ApiError::into_response`] and [`outcome_response`].

use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use etr_domain::ids::client_command_id;
use etr_domain::payment::FraudVerdict;
use etr_domain::payment_execution::ending_command_ids;
use etr_domain::ports::{FraudControl, PaymentOrder};
use etr_domain::{payment, Actor, AggregateRef, ClientId, Command, Currency, Money, State};
use etr_infra::auth::{Keys, Role};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, OpenApi, ToSchema};
use uuid::Uuid;

use crate::docs::DocumentSettings;
use crate::handler::{
    request_fingerprint, Handled, Handler, Meta, Outcome, Position, WrittenEvent,
};

/// What the API needs: the command handler and the external systems it asks.
pub struct App {
    pub handler: Handler,
    /// The platform's database (application routing, operator tasks).
    pub pool: sqlx::PgPool,
    /// Seals and opens personal data, searches the registry.
    pub vault: etr_infra::vault::Vault,
    /// One-time passwords for signatures.
    pub otp: crate::otp::Otp,
    /// The validation rules of client documents (configuration).
    pub document_rules: etr_domain::documents::Rules,
    /// Where client documents are kept (sealed with the client's key).
    pub documents: etr_documents::DocumentStore,
    pub fraud: Arc<dyn FraudControl>,
    /// The bank system: card authorisations at the merchant checkout.
    pub bank: Arc<dyn etr_domain::ports::BankSystem>,
    /// The client group catalogue (shared with the handler's writers).
    pub groups: crate::groups::Groups,
    /// The processing centre and the current dictionaries (menu, commissions).
    pub processing: crate::dictionaries::Processing,
    /// Verifies the bearer tokens commands come with.
    pub keys: Keys,
    /// Forwards a command to the process that writes its partition.
    pub forwarder: reqwest::Client,
    /// Operators may close business days that have not ended (`ETR_SIMULATED_DAYS=1`: demos
    /// and tests that run a loan through weeks in minutes). Off in service.
    pub simulated_days: bool,
}

/// The header a forwarded request carries, so that it is forwarded at most once.
const FORWARDED: &str = "x-etr-forwarded";
/// The largest request body the API reads.
const MAX_BODY: usize = 256 * 1024;

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(crate::docs::docs))
        .route("/assets/{*path}", get(crate::docs::asset))
        .route(WALLETS, post(open_wallet))
        .route(TOP_UPS, post(top_up))
        .route(PAYMENTS, post(pay))
        .route(TRANSFERS, post(transfer))
        .route(CLIENT_TRANSFERS, post(transfer_to_client))
        .route(CONFIRMATION, post(confirm_payment))
        .route(CONFIRMATION_CODE, post(resend_payment_code))
        .route(CANCELLATION_REQUESTS, post(request_cancellation))
        .merge(crate::lending::routes())
        .merge(crate::groups::routes())
        .merge(crate::registration::routes())
        .merge(crate::autopayments::routes())
        .merge(crate::cards::routes())
        .merge(crate::loans::routes())
        .merge(crate::fraud_rules::routes())
        .merge(crate::dictionaries::routes())
        .merge(crate::checkout::routes())
        .merge(crate::alerts::routes())
        .merge(crate::advertising::routes())
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(middleware::from_fn_with_state(
            app.clone(),
            crate::alerts::observe,
        ))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            forward_to_writer,
        ))
        .layer(middleware::from_fn(refuse_nul_in_uri))
        .with_state(app)
}

/// Refuses a request whose path or query string holds U+0000 (`%00`) with 400
/// `nul_character`, before any route reads it: no text of the platform may contain the
/// character (bodies are checked the same way by [`crate::body`]).
async fn refuse_nul_in_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let holds_nul = |s: &str| s.contains("%00") || s.contains('\0');
    if holds_nul(uri.path()) || uri.query().is_some_and(holds_nul) {
        return ApiError::bad_request(
            "nul_character",
            "the path or query contains the NUL character U+0000 (%00), which no text may contain",
        )
        .into_response();
    }
    next.run(request).await
}

/// Why a request body could not be read: 413 `body_too_large` beyond [`MAX_BODY`] bytes, else
/// 408 `body_not_received` — it did not arrive in full within the server's body read timeout
/// (`ETR_BODY_READ_TIMEOUT_MS`) or the client cut it off.
fn body_not_read(e: axum::Error) -> ApiError {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies are at most {MAX_BODY} bytes"),
            );
        }
        cause = c.source();
    }
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "body_not_received",
        "the request body did not arrive in full in time",
    )
}

/// Marks a response whose command belongs to a partition another process writes.
#[derive(Clone)]
struct ForwardTo(Option<String>);

/// Sends a command whose partition another process writes to that process, once, and
/// answers with its response; without a known holder (or when already forwarded), answers
/// 503 `not_partition_owner` with `Retry-After`. Nothing was written here in either case.
async fn forward_to_writer(
    AxumState(app): AxumState<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => return body_not_read(e).into_response(),
    };
    let forwarded = parts.headers.contains_key(FORWARDED);
    let response = next
        .run(Request::from_parts(
            parts.clone(),
            Body::from(bytes.clone()),
        ))
        .await;
    let Some(ForwardTo(holder)) = response.extensions().get::<ForwardTo>().cloned() else {
        return response;
    };
    let unavailable = || {
        let mut r = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_partition_owner",
            "another process writes this client's partition; retry with the same Idempotency-Key",
        )
        .into_response();
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
        r
    };
    let Some(holder) = holder.filter(|_| !forwarded) else {
        return unavailable();
    };
    let url = format!(
        "http://{holder}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut outgoing = app
        .forwarder
        .request(parts.method.clone(), url)
        .header(FORWARDED, "1")
        .body(bytes);
    for (name, value) in &parts.headers {
        if name != axum::http::header::HOST && name != axum::http::header::CONTENT_LENGTH {
            outgoing = outgoing.header(name, value);
        }
    }
    match outgoing.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            match answer.bytes().await {
                Ok(body) => {
                    let mut r = (status, body).into_response();
                    for (name, value) in &headers {
                        if name != axum::http::header::CONTENT_LENGTH
                            && name != axum::http::header::TRANSFER_ENCODING
                        {
                            r.headers_mut().insert(name, value.clone());
                        }
                    }
                    r
                }
                Err(_) => unavailable(),
            }
        }
        Err(e) => {
            tracing::warn!(%holder, error = %e, "forwarding a command failed");
            unavailable()
        }
    }
}

// ---- request and response bodies --------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenWalletRequest {
    /// ISO 4217 code: RUB, USD or EUR.
    pub currency: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRequest {
    /// Positive decimal string, at most 2 digits after the point, e.g. "100.50".
    pub amount: String,
    pub currency: String,
    /// Where the money comes from (e.g. "card", "cash", "bank_transfer").
    pub source: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentRequest {
    pub amount: String,
    pub currency: String,
    /// The service paid for: 1–100 characters, not blank.
    #[schema(max_length = 100, extensions(("x-text" = json!("not-blank"))))]
    pub service_id: String,
    /// The provider's attributes (a phone number, an account): at most 50, names of at most
    /// 100 characters, values of at most 1,000.
    #[serde(default)]
    #[schema(schema_with = attributes_schema)]
    pub attributes: BTreeMap<String, String>,
    /// Pay from this bound card (`POST /v1/clients/{client_id}/cards`) instead of the
    /// wallet: the card is authorised at the bank and the wallet's balance does not move.
    #[serde(default)]
    pub card_id: Option<Uuid>,
}

/// A payment's `attributes`: at most 50, names of at most 100 characters, string values of
/// at most 1,000 (what `check_attributes` allows).
fn attributes_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::{ObjectBuilder, Type};
    let text = |max: usize| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(max))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .max_properties(Some(50))
        .property_names(Some(text(100)))
        .additional_properties(Some(text(1000)))
        .build()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    pub to_wallet_id: Uuid,
    pub amount: String,
    pub currency: String,
}

/// A transfer to another client's wallet: the recipient client and its wallet, and the
/// amount as a decimal string in the sender's wallet currency (which the recipient's wallet
/// must share).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientTransferRequest {
    pub to_client_id: Uuid,
    pub to_wallet_id: Uuid,
    #[schema(example = "150.00")]
    pub amount: String,
    #[schema(example = "RUB")]
    pub currency: String,
    /// Free-form details shown with the operation (at most 50; keys ≤ 100, values ≤ 1000
    /// characters).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WalletView {
    pub wallet_id: Uuid,
    pub currency: Option<String>,
    pub status: String,
    /// Decimal strings.
    pub balance: String,
    pub held: String,
    pub available: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentView {
    pub payment_id: Uuid,
    pub wallet_id: Uuid,
    /// Lifecycle status code 0–9 of the e-wallet spec.
    pub status_code: Option<u8>,
    pub status: String,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub provider_reference: Option<String>,
    pub failure_reason: Option<String>,
    /// `wallet`, or `card` for a payment from a bound card.
    pub source: &'static str,
    /// The card's first six and last four digits, for a payment from a card.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub card_masked_pan: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandResponse {
    Accepted {
        command_id: String,
        events: Vec<WrittenEvent>,
        /// Log position of the last event written; readers may wait for it.
        position: Position,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        wallets: Vec<WalletView>,
        #[serde(skip_serializing_if = "Option::is_none")]
        payment: Option<Box<PaymentView>>,
    },
    Rejected {
        command_id: String,
        code: String,
        message: String,
    },
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

// ---- errors ------------------------------------------------------------------------------

pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    forward_to: Option<ForwardTo>,
}

impl ApiError {
    pub(crate) fn code(&self) -> &'static str {
        self.code
    }
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            forward_to: None,
        }
    }
    pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub(crate) fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::IdempotencyKeyReused(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                e.to_string(),
            ),
            crate::Error::NotOwner { holder, .. } => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "not_partition_owner",
                message: "another process writes this client's partition".into(),
                forward_to: Some(ForwardTo(holder)),
            },
            other => {
                tracing::error!(error = %other, "command failed");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the platform could not commit the command; retry with the same Idempotency-Key")
            }
        }
    }
}

impl From<etr_domain::MoneyError> for ApiError {
    fn from(e: etr_domain::MoneyError) -> Self {
        let code = etr_domain::Error::Money(e.clone()).code();
        ApiError::bad_request(code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(forward) = self.forward_to {
            response.extensions_mut().insert(forward);
        }
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        response
    }
}

/// Maps a command outcome (first or replayed) to the HTTP response.
pub(crate) fn outcome_response(handled: Handled, accepted_status: StatusCode) -> Response {
    let Handled { outcome, replayed } = handled;
    let (status, body) = match outcome {
        Outcome::Accepted {
            command_id,
            events,
            position,
            states,
        } => {
            let wallets = states
                .iter()
                .filter_map(|(r, s)| match s {
                    State::Wallet(w) => Some(wallet_view(r.id, w)),
                    _ => None,
                })
                .collect();
            let payment = states.iter().find_map(|(r, s)| match s {
                State::Payment(p) => Some(Box::new(payment_view(r.id, p))),
                _ => None,
            });
            (
                accepted_status,
                CommandResponse::Accepted {
                    command_id,
                    events,
                    position,
                    wallets,
                    payment,
                },
            )
        }
        Outcome::Rejected {
            command_id,
            code,
            message,
        } => {
            let status = if code.ends_with("_not_found") {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            (
                status,
                CommandResponse::Rejected {
                    command_id,
                    code,
                    message,
                },
            )
        }
    };
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

fn wallet_view(id: Uuid, w: &etr_domain::wallet::Wallet) -> WalletView {
    WalletView {
        wallet_id: id,
        currency: w.currency.map(|c| c.code().to_owned()),
        status: format!("{:?}", w.status).to_lowercase(),
        balance: w.balance.to_string(),
        held: w.held().to_string(),
        available: w.available().to_string(),
    }
}

fn payment_view(id: Uuid, p: &payment::Payment) -> PaymentView {
    PaymentView {
        payment_id: id,
        wallet_id: p.wallet_id,
        status_code: p.status.code(),
        status: p.status.label().to_owned(),
        amount: p.amount.map(|m| m.amount.to_string()),
        currency: p.amount.map(|m| m.currency.code().to_owned()),
        provider_reference: p.provider_reference.clone(),
        failure_reason: p.failure_reason.clone(),
        source: p.source().label(),
        card_masked_pan: p.card.as_ref().map(|c| c.masked_pan.clone()),
    }
}

// ---- extraction --------------------------------------------------------------------------

pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    crate::body::parse(body).map_err(|e| ApiError::bad_request(e.code(), e.to_string()))
}

/// Declares one operation per action of a resource — `POST <resource>/<action>`, each with
/// its own body in the document — served by one dispatching handler, `$dispatch(state, uri,
/// path, action, headers, body)`; and `$routes(router, resource)`, which routes every action
/// under a resource's path (an action not declared is 404 `not_found`).
macro_rules! action_operations {
    (
        dispatch: $dispatch:ident, path: $path_type:ty, routes: $routes:ident,
        params: $params:tt, responses: $responses:tt;
        $( $(#[doc = $doc:literal])* $handler:ident: $action:tt, $route:tt, $body:tt, $ok:tt; )+
    ) => {
        $(
            $crate::api::action_operations!(@operation $dispatch, $path_type, $params,
                $responses, [$(#[doc = $doc])*], $handler, $action, $route, $body, $ok);
        )+

        /// Routes every action under `resource`.
        fn $routes(
            mut router: ::axum::Router<::std::sync::Arc<$crate::api::App>>,
            resource: &str,
        ) -> ::axum::Router<::std::sync::Arc<$crate::api::App>> {
            $(
                router = router.route(
                    &format!("{resource}/{}", $action),
                    ::axum::routing::post($handler),
                );
            )+
            router
        }
    };
    (@operation $dispatch:ident, $path_type:ty, $params:tt, [$($responses:tt)*],
        [$($doc:tt)*], $handler:ident, $action:tt, $route:tt, $body:tt, $ok:tt) => {
        $($doc)*
        #[utoipa::path(post, path = $route, request_body = $body, params $params,
            responses($ok, $($responses)*))]
        pub(crate) async fn $handler(
            state: ::axum::extract::State<::std::sync::Arc<$crate::api::App>>,
            uri: ::axum::http::Uri,
            path: ::std::result::Result<
                ::axum::extract::Path<$path_type>,
                ::axum::extract::rejection::PathRejection,
            >,
            headers: ::axum::http::HeaderMap,
            body: ::axum::body::Bytes,
        ) -> ::std::result::Result<::axum::response::Response, $crate::api::ApiError> {
            $dispatch(state, uri, path, $action, headers, body).await
        }
    };
}
pub(crate) use action_operations;

pub(crate) fn path_ids<T>(path: Result<Path<T>, PathRejection>) -> Result<T, ApiError> {
    path.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))
}

/// Who may send a command for `client`, and as which actor: the client itself (its own
/// token), a partner shop or an operator (their tokens name them); auditors only read.
pub(crate) fn actor(keys: &Keys, headers: &HeaderMap, client: ClientId) -> Result<Actor, ApiError> {
    let viewer = viewer(keys, headers)?;
    match viewer.role {
        Role::Client if viewer.client == Some(client.0) => Ok(Actor::client(client)),
        Role::Client => Err(ApiError::forbidden(
            "a client may send commands only for itself",
        )),
        Role::Partner => Ok(Actor {
            kind: "partner".into(),
            id: viewer.sub,
        }),
        Role::Operator => Ok(Actor {
            kind: "operator".into(),
            id: viewer.sub,
        }),
        Role::Auditor => Err(ApiError::forbidden("auditors read; they send no commands")),
    }
}

/// Builds the command metadata from the headers (the bearer token first: nothing else is
/// looked at for an unauthenticated or forbidden request). The command id is the client's
/// namespace ([`client_command_id`]); the fingerprint covers the method, the route, every
/// path parameter and the body ([`request_fingerprint`]).
pub(crate) fn meta(
    keys: &Keys,
    headers: &HeaderMap,
    client: ClientId,
    route: &str,
    path_params: &[&str],
    body: &Bytes,
) -> Result<Meta, ApiError> {
    let actor = actor(keys, headers, client)?;
    let key = idempotency_key(headers)?;
    let correlation_id = correlation_id(headers, &key);
    Ok(Meta {
        command_id: client_command_id(client, &key),
        correlation_id,
        actor,
        request_hash: request_fingerprint("POST", route, path_params, body),
    })
}

/// The `X-Correlation-Id` header (1–200 characters), or the Idempotency-Key.
pub(crate) fn correlation_id(headers: &HeaderMap, key: &str) -> String {
    headers
        .get("x-correlation-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 200)
        .map_or_else(|| key.to_owned(), str::to_owned)
}

/// The bearer token's viewer. Errors: 401 `unauthenticated`.
pub(crate) fn viewer(
    keys: &Keys,
    headers: &HeaderMap,
) -> Result<etr_infra::auth::Viewer, ApiError> {
    let authorization = match headers.get("authorization").map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return Err(ApiError::unauthenticated(
                "the Authorization header is not text",
            ))
        }
    };
    keys.verify_header(authorization)
        .map_err(|e| ApiError::unauthenticated(e.to_string()))
}

/// The `Idempotency-Key` header: 1–200 visible ASCII characters.
/// Errors: 400 `missing_idempotency_key`, `invalid_idempotency_key`.
pub(crate) fn idempotency_key(headers: &HeaderMap) -> Result<String, ApiError> {
    let key = headers
        .get("idempotency-key")
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing_idempotency_key",
                "the Idempotency-Key header is required",
            )
        })?
        .to_str()
        .map_err(|_| {
            ApiError::bad_request(
                "invalid_idempotency_key",
                "Idempotency-Key must be visible ASCII",
            )
        })?
        .trim();
    if key.is_empty() || key.len() > 200 || !key.chars().all(|c| c.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1–200 visible ASCII characters",
        ));
    }
    Ok(key.to_owned())
}

/// A deterministic id minted for a command (a retried command mints the same one).
pub(crate) fn minted_id(meta: &Meta, label: &str) -> Uuid {
    etr_domain::ids::derived_id(
        Uuid::new_v5(&Uuid::NAMESPACE_OID, meta.command_id.as_bytes()),
        label,
    )
}

const WALLETS: &str = "/v1/clients/{client_id}/wallets";
const TOP_UPS: &str = "/v1/clients/{client_id}/wallets/{wallet_id}/top-ups";
const PAYMENTS: &str = "/v1/clients/{client_id}/wallets/{wallet_id}/payments";
const TRANSFERS: &str = "/v1/clients/{client_id}/wallets/{wallet_id}/transfers";
const CLIENT_TRANSFERS: &str = "/v1/clients/{client_id}/wallets/{wallet_id}/client-transfers";
const CONFIRMATION: &str =
    "/v1/clients/{client_id}/wallets/{wallet_id}/payments/{payment_id}/confirmation";
const CANCELLATION_REQUESTS: &str =
    "/v1/clients/{client_id}/wallets/{wallet_id}/payments/{payment_id}/cancellation-requests";
const CONFIRMATION_CODE: &str =
    "/v1/clients/{client_id}/wallets/{wallet_id}/payments/{payment_id}/confirmation-code";

// ---- handlers ----------------------------------------------------------------------------

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// The document, completed with what every route shares ([`crate::contract`]).
async fn openapi() -> Json<serde_json::Value> {
    Json(crate::contract::document())
}

#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets", request_body = OpenWalletRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = CommandResponse), (status = 503, body = ErrorBody)))]
async fn open_wallet(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = ClientId(path_ids(path)?);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        WALLETS,
        &[&client.to_string()],
        &body,
    )?;
    let req: OpenWalletRequest = parse_body(&body)?;
    let currency = Currency::from_str(&req.currency)?;
    let command = Command::Wallet {
        client_id: client,
        wallet_id: minted_id(&meta, "wallet"),
        command: etr_domain::wallet::Command::OpenWallet { currency },
    };
    Ok(outcome_response(
        app.handler.handle(meta, command).await?,
        StatusCode::CREATED,
    ))
}

#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/top-ups", request_body = TopUpRequest,
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = CommandResponse), (status = 422, body = CommandResponse), (status = 503, body = ErrorBody)))]
async fn top_up(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, wallet_id) = path_ids(path)?;
    let client = ClientId(client);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        TOP_UPS,
        &[&client.to_string(), &wallet_id.to_string()],
        &body,
    )?;
    let req: TopUpRequest = parse_body(&body)?;
    let amount = Money::parse_positive(&req.amount, &req.currency)?;
    let command = Command::Wallet {
        client_id: client,
        wallet_id,
        command: etr_domain::wallet::Command::TopUp {
            operation_id: minted_id(&meta, "top-up"),
            amount,
            source: req.source,
        },
    };
    Ok(outcome_response(
        app.handler.handle(meta, command).await?,
        StatusCode::OK,
    ))
}

/// `?wait=SECONDS` on a payment: how long the request may wait for the final status.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PaymentWait {
    /// Seconds to wait for the payment's final status (0–30, default 0: answer at once).
    #[param(maximum = 30)]
    pub wait: Option<u64>,
}

/// `?wait=` in seconds, 0–30.
fn wait_seconds(wait: Result<Query<PaymentWait>, QueryRejection>) -> Result<u64, ApiError> {
    let wait = wait
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?
        .0
        .wait
        .unwrap_or(0);
    if wait > 30 {
        return Err(ApiError::bad_request(
            "invalid_wait",
            "wait is at most 30 seconds",
        ));
    }
    Ok(wait)
}

/// Starts a payment: its commission from the processing dictionaries (`commission` in the
/// payment; none for a service outside the menu), then fraud control, lock, balance check and
/// reserve of the amount plus the commission (statuses 0–3) are committed and the request answers `202 Accepted` with the payment in status 3 (or `201`
/// when it already ended, e.g. declined by fraud control: status 9). The payment processor
/// then has the provider execute it and records the result (6 captured, or 8 released).
/// With `card_id` the payment is paid from that bound card: the all-sources spend limits
/// count it, the bank authorises the card (status 2 until it answers; 8 when declined), and
/// after execution the authorisation is captured (6) or released (8); the wallet's balance
/// does not move. 404 `card_not_found` for a card the client has not bound.
/// `?wait=SECONDS` waits up to that long for the final status and answers `200` with the
/// payment as it then is (`202` if it is still in flight). A repeated key answers the first
/// response of the start again; `?wait` applies to the repeat as well.
#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/payments", request_body = PaymentRequest,
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path), ("Idempotency-Key" = String, Header), PaymentWait),
    responses((status = 200, body = CommandResponse), (status = 201, body = CommandResponse), (status = 202, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = CommandResponse), (status = 422, body = CommandResponse), (status = 503, body = ErrorBody)))]
async fn pay(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    wait: Result<Query<PaymentWait>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, wallet_id) = path_ids(path)?;
    let client = ClientId(client);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        PAYMENTS,
        &[&client.to_string(), &wallet_id.to_string()],
        &body,
    )?;
    let wait = wait_seconds(wait)?;
    let req: PaymentRequest = parse_body(&body)?;
    let amount = Money::parse_positive(&req.amount, &req.currency)?;
    if req.service_id.trim().is_empty() || req.service_id.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_service_id",
            "service_id must be 1–100 characters",
        ));
    }
    check_attributes(&req.attributes)?;
    let order = PaymentOrder {
        client_id: client,
        wallet_id,
        payment_id: minted_id(&meta, "payment"),
        amount,
        service_id: req.service_id.clone(),
    };
    let source = match req.card_id {
        Some(_) => etr_domain::limits::Source::Card,
        None => etr_domain::limits::Source::Wallet,
    };
    // The commission is the dictionaries' (spec §1.3): held and charged with the amount.
    let commission =
        crate::dictionaries::payment_commission(&app, &req.service_id, amount, source).await?;
    let fraud: FraudVerdict = app.fraud.assess(&order).await;
    let start = match req.card_id {
        Some(card_id) => etr_domain::payment::Command::StartFromCard {
            commission,
            amount,
            service_id: req.service_id,
            attributes: req.attributes,
            fraud,
            card_id,
        },
        None => etr_domain::payment::Command::Start {
            commission,
            amount,
            service_id: req.service_id,
            attributes: req.attributes,
            fraud,
            autopayment_run: None,
        },
    };
    start_operation(&app, meta, &order, start, wait).await
}

/// Starts a transfer to another client's wallet: the same statuses 0–3, limits and OTP
/// confirmation as a payment (`202`, or `201` when it already ended), then the transfer
/// process debits this wallet, credits the recipient's on its own partition and records the
/// outcome — 6, or 8 with this wallet refunded when the recipient's wallet refused the credit
/// (closed, another client's, another currency, blocked client, above its maximum balance).
/// The response names the operation (`payment_id`); `?wait=SECONDS` waits for the final
/// status as for a payment.
#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/client-transfers", request_body = ClientTransferRequest,
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path), ("Idempotency-Key" = String, Header), PaymentWait),
    responses((status = 200, body = CommandResponse), (status = 201, body = CommandResponse), (status = 202, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = CommandResponse), (status = 422, body = CommandResponse), (status = 503, body = ErrorBody)))]
async fn transfer_to_client(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    wait: Result<Query<PaymentWait>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, wallet_id) = path_ids(path)?;
    let client = ClientId(client);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        CLIENT_TRANSFERS,
        &[&client.to_string(), &wallet_id.to_string()],
        &body,
    )?;
    let wait = wait_seconds(wait)?;
    let req: ClientTransferRequest = parse_body(&body)?;
    let amount = Money::parse_positive(&req.amount, &req.currency)?;
    check_attributes(&req.attributes)?;
    let order = PaymentOrder {
        client_id: client,
        wallet_id,
        payment_id: minted_id(&meta, "payment"),
        amount,
        service_id: etr_domain::payment::TRANSFER_SERVICE.into(),
    };
    let fraud: FraudVerdict = app.fraud.assess(&order).await;
    let start = etr_domain::payment::Command::StartTransfer {
        amount,
        recipient: etr_domain::payment::Recipient {
            client_id: ClientId(req.to_client_id),
            wallet_id: req.to_wallet_id,
            order_id: None,
        },
        attributes: req.attributes,
        fraud,
    };
    start_operation(&app, meta, &order, start, wait).await
}

/// At most 50 attributes, keys ≤ 100 and values ≤ 1000 characters.
fn check_attributes(attributes: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if attributes.len() > 50
        || attributes
            .iter()
            .any(|(k, v)| k.chars().count() > 100 || v.chars().count() > 1000)
    {
        return Err(ApiError::bad_request(
            "invalid_attributes",
            "at most 50 attributes, keys ≤ 100 and values ≤ 1000 characters",
        ));
    }
    Ok(())
}

/// Commits the start of a payment or transfer (`start`, for `order`) and answers: above the
/// group's warning threshold `202` in status 0 with the code sent to the client, otherwise as
/// [`wait_for_execution`].
pub(crate) async fn start_operation(
    app: &App,
    meta: Meta,
    order: &PaymentOrder,
    start: etr_domain::payment::Command,
    wait: u64,
) -> Result<Response, ApiError> {
    let client = order.client_id;
    let payment_id = order.payment_id;
    let start = Command::Payment {
        client_id: client,
        wallet_id: order.wallet_id,
        payment_id,
        command: start,
    };
    let started = app.handler.handle(meta, start).await?;
    if awaits_confirmation(&started, payment_id) {
        // Above the group's warning threshold: nothing is reserved until the client enters
        // the code sent now (a repeated request does not send another one).
        let confirmation = if started.replayed {
            serde_json::json!({ "required": true })
        } else {
            match crate::lending::send_client_code(app, client, &payment_purpose(payment_id)).await
            {
                Ok(masked) => serde_json::json!({ "required": true, "sent_to": masked }),
                Err(e) => serde_json::json!({
                    "required": true,
                    "sent": false,
                    "error": { "code": e.code(), "message": e.message() },
                }),
            }
        };
        return Ok(crate::lending::respond(
            started,
            StatusCode::ACCEPTED,
            serde_json::json!({ "payment_id": payment_id, "confirmation": confirmation }),
        )
        .await);
    }
    wait_for_execution(app, started, payment_id, wait).await
}

/// Whether the payment `payment_id` of an accepted command waits for the client's OTP.
fn awaits_confirmation(handled: &Handled, payment_id: Uuid) -> bool {
    matches!(
        handled.outcome.state(&AggregateRef::payment(payment_id)),
        Some(State::Payment(p)) if p.status == etr_domain::payment::Status::AwaitingConfirmation
    )
}

/// The OTP purpose that confirms a payment.
fn payment_purpose(payment_id: Uuid) -> String {
    format!("payment:{payment_id}")
}

/// Answers a payment's start or confirmation: `201` when it already ended, `202` while in
/// flight — after waiting up to `wait` seconds for the payment processor's execution step,
/// `200` with both steps' events, the position of the last one and the states it left.
async fn wait_for_execution(
    app: &App,
    mut started: Handled,
    payment_id: Uuid,
    wait: u64,
) -> Result<Response, ApiError> {
    let target = AggregateRef::payment(payment_id);
    let in_flight =
        |s: Option<&State>| !matches!(s, Some(State::Payment(p)) if p.status.is_final());
    let status = if in_flight(started.outcome.state(&target)) {
        StatusCode::ACCEPTED
    } else {
        StatusCode::CREATED
    };
    if wait == 0 || status != StatusCode::ACCEPTED {
        return Ok(outcome_response(started, status));
    }
    // Wait for the payment processor's steps to end the payment: the answer then reports
    // every step's events, the position of the last one and the states they left.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(wait);
    loop {
        // The state first: if it is final because of a step, that step's outcome (committed
        // in the same statement) is visible to the reads that follow.
        let settled = app.handler.committed_state(target).await?;
        if !in_flight(settled.as_ref()) {
            let mut reported = false;
            for step in ending_command_ids(payment_id) {
                if let Some(Outcome::Accepted {
                    events,
                    position,
                    states,
                    ..
                }) = app.handler.recorded_outcome(&step).await?
                {
                    if let Outcome::Accepted {
                        events: first,
                        position: last,
                        states: first_states,
                        ..
                    } = &mut started.outcome
                    {
                        first.extend(events);
                        *last = position;
                        for (r, s) in states {
                            match first_states.iter_mut().find(|(known, _)| *known == r) {
                                Some(entry) => entry.1 = s,
                                None => first_states.push((r, s)),
                            }
                        }
                    }
                    reported = true;
                }
            }
            if reported {
                return Ok(outcome_response(started, StatusCode::OK));
            }
        }
        if !in_flight(settled.as_ref()) || tokio::time::Instant::now() >= deadline {
            // Cancelled meanwhile, or still in flight: report the payment as it is now.
            if let (Some(now), Outcome::Accepted { states, .. }) = (settled, &mut started.outcome) {
                for (r, s) in states.iter_mut() {
                    if *r == target {
                        *s = now.clone();
                    }
                }
            }
            return Ok(outcome_response(started, StatusCode::ACCEPTED));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The code the client received for a payment above its group's warning threshold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmationRequest {
    /// The one-time code from the SMS.
    #[schema(example = "123456")]
    pub code: String,
}

/// Confirms a payment waiting for the client's OTP (status 0): the code is checked, then
/// lock, balance check and reservation follow under the client's limits as they are now
/// (`202`, status 3; `?wait=SECONDS` as for a new payment). A repeated key answers the first
/// outcome without checking the code again.
#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/payments/{payment_id}/confirmation", request_body = ConfirmationRequest,
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path), ("payment_id" = Uuid, Path), ("Idempotency-Key" = String, Header), PaymentWait),
    responses((status = 200, body = CommandResponse), (status = 201, body = CommandResponse), (status = 202, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = CommandResponse), (status = 422, body = CommandResponse), (status = 429, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn confirm_payment(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid, Uuid)>, PathRejection>,
    wait: Result<Query<PaymentWait>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, wallet_id, payment_id) = path_ids(path)?;
    let client = ClientId(client);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        CONFIRMATION,
        &[
            &client.to_string(),
            &wallet_id.to_string(),
            &payment_id.to_string(),
        ],
        &body,
    )?;
    let wait = wait_seconds(wait)?;
    let req: ConfirmationRequest = parse_body(&body)?;
    let command_id = meta.command_id.clone();
    let confirm = Command::Payment {
        client_id: client,
        wallet_id,
        payment_id,
        command: etr_domain::payment::Command::Confirm,
    };
    // A repeated request answers its first outcome (the code is spent by then).
    let handled = match app.handler.recorded_outcome(&command_id).await? {
        Some(_) => app.handler.handle(meta, confirm).await?,
        None => {
            let awaiting = matches!(
                app.handler.committed_state(AggregateRef::payment(payment_id)).await?,
                Some(State::Payment(p)) if p.client_id == Some(client) && p.wallet_id == wallet_id
                    && p.status == etr_domain::payment::Status::AwaitingConfirmation
            );
            if awaiting {
                crate::lending::verify_client_code(
                    &app,
                    client,
                    &payment_purpose(payment_id),
                    &req.code,
                    &command_id,
                )
                .await?;
            }
            // Not awaiting: the command is refused with the payment's own reason.
            app.handler.handle(meta, confirm).await?
        }
    };
    wait_for_execution(&app, handled, payment_id, wait).await
}

/// Why a successful payment should be cancelled.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancellationRequestBody {
    /// 1–500 characters.
    #[schema(example = "the service was not provided")]
    pub reason: String,
}

/// Requests the cancellation of a successful payment (e-wallet spec §3.4). Refused (`422
/// cancellation_in_progress`) while another request for it is new or sent to processing;
/// otherwise the request is recorded and checked at once: `201` with
/// `cancellation.status` `sent_to_processing` (the payment processor asks the processing
/// centre to reverse the payment; on success the wallet is refunded and the request becomes
/// `succeeded`, otherwise `processing_error`) or `rejected` with the failed check in
/// `cancellation.error`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/payments/{payment_id}/cancellation-requests", request_body = CancellationRequestBody,
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path), ("payment_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = CommandResponse), (status = 422, body = CommandResponse), (status = 503, body = ErrorBody)))]
async fn request_cancellation(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, wallet_id, payment_id) = path_ids(path)?;
    let client = ClientId(client);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        CANCELLATION_REQUESTS,
        &[
            &client.to_string(),
            &wallet_id.to_string(),
            &payment_id.to_string(),
        ],
        &body,
    )?;
    let req: CancellationRequestBody = parse_body(&body)?;
    let request_id = minted_id(&meta, "cancellation");
    let handled = app
        .handler
        .handle(
            meta,
            Command::Payment {
                client_id: client,
                wallet_id,
                payment_id,
                command: etr_domain::payment::Command::RequestCancellation {
                    request_id,
                    reason: req.reason,
                },
            },
        )
        .await?;
    let cancellation = match handled.outcome.state(&AggregateRef::payment(payment_id)) {
        Some(State::Payment(p)) => p
            .cancellations
            .iter()
            .find(|c| c.request_id == request_id)
            .map(|c| {
                serde_json::json!({
                    "request_id": c.request_id,
                    "status": c.status.label(),
                    "error": c.error,
                })
            }),
        _ => None,
    };
    Ok(crate::lending::respond(
        handled,
        StatusCode::CREATED,
        serde_json::json!({ "payment_id": payment_id, "cancellation": cancellation }),
    )
    .await)
}

/// Sends a new code for a payment waiting for the client's OTP (the OTP rules limit how
/// often: `otp_resend_too_soon`, `otp_locked_out`).
#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/payments/{payment_id}/confirmation-code",
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path), ("payment_id" = Uuid, Path)),
    responses((status = 202, body = Object), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn resend_payment_code(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (client, wallet_id, payment_id) = path_ids(path)?;
    let client = ClientId(client);
    actor(&app.keys, &headers, client)?;
    let awaiting = match app
        .handler
        .committed_state(AggregateRef::payment(payment_id))
        .await?
    {
        Some(State::Payment(p)) if p.client_id == Some(client) && p.wallet_id == wallet_id => {
            p.status == etr_domain::payment::Status::AwaitingConfirmation
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "payment_not_found",
                format!("payment {payment_id} does not exist"),
            ))
        }
    };
    if !awaiting {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "confirmation_not_awaited",
            format!("payment {payment_id} awaits no confirmation"),
        ));
    }
    let masked =
        crate::lending::send_client_code(&app, client, &payment_purpose(payment_id)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({ "payment_id": payment_id, "status": "sent", "sent_to": masked })),
    )
        .into_response())
}

#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/transfers", request_body = TransferRequest,
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = CommandResponse), (status = 422, body = CommandResponse), (status = 503, body = ErrorBody)))]
async fn transfer(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, wallet_id) = path_ids(path)?;
    let client = ClientId(client);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        TRANSFERS,
        &[&client.to_string(), &wallet_id.to_string()],
        &body,
    )?;
    let req: TransferRequest = parse_body(&body)?;
    let amount = Money::parse_positive(&req.amount, &req.currency)?;
    let command = Command::Wallet {
        client_id: client,
        wallet_id,
        command: etr_domain::wallet::Command::Transfer {
            to_wallet_id: req.to_wallet_id,
            transfer_id: minted_id(&meta, "transfer"),
            amount,
        },
    };
    Ok(outcome_response(
        app.handler.handle(meta, command).await?,
        StatusCode::OK,
    ))
}

#[derive(OpenApi)]
#[openapi(
    modifiers(&DocumentSettings),
    info(
        title = "ETR command API",
        description = "Commands of partners, clients and operators: wallets, top-ups, payments, transfers; the loan conveyor (client registration, applications from creation to disbursement, operator reviews). The application routes documented under /v1/partner/applications (partner token: the partner's own applications) are served the same under /v1/me/applications with a client token (the client is the token's subject; `client_id` is then not given). Every POST takes an Idempotency-Key; amounts are decimal strings. Any request may be refused by a fraud-monitoring rule (/v1/operator/fraud-rules) with 429, `Retry-After` in seconds and `{\"error\": {\"code\": \"rate_limited\", \"reason\": <rule id>, \"message\", \"retry_after\"}}`; the optional `X-Interface-Type` header (web, android, ios, terminal, partner-api, other) names the client application."
    ),
    paths(
        open_wallet,
        top_up,
        pay,
        transfer_to_client,
        confirm_payment,
        resend_payment_code,
        request_cancellation,
        transfer,
        crate::groups::list_groups,
        crate::groups::put_group,
        crate::groups::move_client,
        crate::groups::change_time_zone,
        crate::autopayments::save_template,
        crate::autopayments::delete_template,
        crate::autopayments::create_autopayment,
        crate::autopayments::pause_autopayment,
        crate::autopayments::resume_autopayment,
        crate::autopayments::cancel_autopayment,
        crate::registration::apply,
        crate::registration::login,
        crate::registration::review_registration,
        crate::registration::review_data_change,
        crate::registration::get_settings,
        crate::registration::put_settings,
        crate::fraud_rules::list_rules,
        crate::fraud_rules::create_rule,
        crate::fraud_rules::replace_rule,
        crate::fraud_rules::delete_rule,
        crate::alerts::list_subscriptions,
        crate::alerts::subscribe,
        crate::alerts::change_subscription,
        crate::alerts::unsubscribe,
        crate::dictionaries::import,
        crate::dictionaries::sync,
        crate::dictionaries::versions,
        crate::dictionaries::quote,
        crate::checkout::register_merchant,
        crate::checkout::list_merchants,
        crate::checkout::create_order,
        crate::checkout::partner_order,
        crate::checkout::checkout_order,
        crate::checkout::checkout_wallets,
        crate::checkout::pay_with_wallet,
        crate::checkout::pay_with_card,
        crate::cards::bind_card,
        crate::loans::repay,
        crate::loans::quote,
        crate::loans::repay_early,
        crate::loans::prolong,
        crate::loans::stop_accrual,
        crate::loans::resume_accrual,
        crate::loans::write_off,
        crate::loans::close_days,
        crate::advertising::list_places,
        crate::advertising::create_place,
        crate::advertising::update_place,
        crate::advertising::list_campaigns,
        crate::advertising::create_campaign,
        crate::advertising::update_campaign,
        crate::advertising::list_banners,
        crate::advertising::create_banner,
        crate::advertising::update_banner,
        crate::advertising::upload_image,
        crate::lending::register_by_partner,
        crate::lending::register_self,
        crate::lending::create_application,
        crate::lending::get_application,
        crate::lending::get_cart,
        crate::lending::submit_application,
        crate::lending::choose_offer,
        crate::lending::send_signing_code,
        crate::lending::sign_contract,
        crate::lending::bind_card,
        crate::lending::confirm_goods_handed_over,
        crate::lending::cancel_application,
        crate::lending::review,
        crate::lending::block,
        crate::lending::unblock,
        crate::lending::erase,
        crate::lending::tag,
        crate::lending::untag,
        crate::lending::search,
        crate::lending::partner_document,
        crate::lending::my_document,
        crate::lending::change_my_personal_data,
        crate::lending::change_personal_data_by_partner
    ),
    components(schemas(
        crate::lending::ClientSearch,
        crate::loans::RepaymentRequest,
        crate::loans::EarlyRepaymentRequest,
        crate::loans::ProlongationRequest,
        crate::loans::CloseDaysRequest,
        crate::loans::QuoteView,
        crate::loans::DebtView,
        crate::lending::RegistrationRequest,
        crate::lending::PassportInput,
        crate::lending::EmploymentInput,
        crate::lending::GuarantorInput,
        crate::lending::ApplicationRequest,
        crate::lending::CartItemInput,
        crate::lending::ApplicationView,
        crate::lending::ChooseOfferRequest,
        crate::lending::SignRequest,
        crate::lending::CardRequest,
        crate::lending::ReasonRequest,
        crate::lending::ReviewRequest,
        crate::lending::EmptyRequest,
        crate::lending::TagRequest,
        crate::lending::DocumentRequest,
        crate::groups::GroupBody,
        crate::groups::CurrencyLimitsBody,
        crate::groups::PeriodLimitsBody,
        crate::groups::GroupView,
        crate::groups::MoveClientRequest,
        crate::groups::TimeZoneRequest,
        crate::fraud_rules::NewFraudRule,
        crate::fraud_rules::FraudRuleBody,
        crate::fraud_rules::FraudRuleView,
        crate::alerts::AlertSubscriptionBody,
        crate::alerts::AlertSubscriptionView,
        crate::dictionaries::QuoteBody,
        crate::dictionaries::QuoteView,
        crate::dictionaries::NamedView,
        crate::dictionaries::MenuItemView,
        crate::dictionaries::VersionView,
        crate::dictionaries::RefusalBody,
        crate::dictionaries::RefusalDetail,
        crate::checkout::NewMerchant,
        crate::checkout::MerchantView,
        crate::checkout::NewOrder,
        crate::checkout::OrderView,
        crate::checkout::OrderPaymentView,
        crate::checkout::BuyerWallet,
        crate::checkout::WalletPaymentRequest,
        crate::checkout::CardPaymentRequest,
        crate::advertising::NewPlace,
        crate::advertising::PlaceBody,
        crate::advertising::PlaceView,
        crate::advertising::NewCampaign,
        crate::advertising::CampaignBody,
        crate::advertising::CampaignView,
        crate::advertising::NewBanner,
        crate::advertising::BannerBody,
        crate::advertising::BannerView,
        ConfirmationRequest,
        CancellationRequestBody,
        OpenWalletRequest,
        TopUpRequest,
        PaymentRequest,
        TransferRequest,
        CommandResponse,
        WalletView,
        PaymentView,
        WrittenEvent,
        Position,
        ErrorBody,
        ErrorDetail
    ))
)]
pub struct ApiDoc;
