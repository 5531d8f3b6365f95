//! The alert system at the REST edge (e-wallet spec §4).
//!
//! Operators' subscriptions, kept by [`etr_infra::alerts`]:
//!
//! - `GET /v1/operator/alert-subscriptions` — every subscription;
//! - `POST /v1/operator/alert-subscriptions` — subscribe the calling operator to alert types
//!   (codes of the catalogue, e.g. `client.blocked`) through channels (`sms`, `email`,
//!   `push`, `web`), optionally about one client (201); it applies to alerts that occur from
//!   then on;
//! - `PUT /v1/operator/alert-subscriptions/{subscription_id}` — change its types, channels
//!   and client filter (404 `alert_subscription_not_found`);
//! - `DELETE /v1/operator/alert-subscriptions/{subscription_id}` — remove it (204).
//!
//! Operator tokens only. Refusals: 400 `unknown_alert_type`, `unknown_channel`,
//! `invalid_client_filter`, `invalid_subscription_id` or a body code of [`crate::body`];
//! 422 `no_alert_types`, `no_channels`, `no_common_channel` (a type none of the channels
//! named can deliver).
//!
//! [`observe`] is the edge's observer of what has no event on the log: a command a group's
//! limit refused (a refused command writes no event) raises `limit.reached` about its client,
//! keyed by the command's id so a replayed answer raises nothing new; a refused login
//! (`POST /v1/me/login` answered 401) raises `security.failed_login`. Both are recorded
//! through [`etr_infra::alerts::raise`] after the answer is on its way, never delaying it.

use axum::body::{Body, Bytes};
use axum::extract::rejection::PathRejection;
use axum::extract::{MatchedPath, Path, Request, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use etr_domain::alerts::{self, Alert, AlertType, Channel, Subscription, SubscriptionError};
use etr_domain::ClientId;
use etr_infra::alerts::{self as store, Raised, StoredSubscription};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{parse_body, path_ids, ApiError, App};
use crate::lending::{internal, operator};

pub(crate) const SUBSCRIPTIONS: &str = "/v1/operator/alert-subscriptions";
pub(crate) const SUBSCRIPTION: &str = "/v1/operator/alert-subscriptions/{subscription_id}";

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(SUBSCRIPTIONS, get(list_subscriptions).post(subscribe))
        .route(
            SUBSCRIPTION,
            axum::routing::put(change_subscription).delete(unsubscribe),
        )
}

/// What to be alerted of and how.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSubscriptionBody {
    /// Alert type codes of the catalogue (GraphQL `alertCatalogue`), at least one.
    #[schema(schema_with = alert_types_schema, example = json!(["client.blocked", "payment.large"]))]
    pub alert_types: Vec<String>,
    /// `sms`, `email`, `push` or `web`, at least one; each type is delivered through those of
    /// them it supports.
    #[schema(schema_with = channels_schema, example = json!(["email", "web"]))]
    pub channels: Vec<String>,
    /// Only alerts about this client (a UUID); every client when absent.
    #[schema(format = Uuid)]
    pub client_id: Option<String>,
}

/// A non-empty list of codes, each one of `codes` (400 `unknown_…` for another; an empty
/// list is 422).
fn codes_schema(codes: impl Iterator<Item = &'static str>) -> utoipa::openapi::Array {
    use utoipa::openapi::{ArrayBuilder, ObjectBuilder, Type};
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(codes)),
        )
        .min_items(Some(1))
        .build()
}

/// The catalogue's alert type codes.
fn alert_types_schema() -> utoipa::openapi::Array {
    codes_schema(AlertType::ALL.iter().map(|t| t.code()))
}

/// The delivery channels.
fn channels_schema() -> utoipa::openapi::Array {
    codes_schema(Channel::ALL.into_iter().map(Channel::as_str))
}

/// A subscription as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertSubscriptionView {
    pub id: Uuid,
    /// The operator who subscribed: the deliveries' recipient.
    pub operator: String,
    pub alert_types: Vec<String>,
    pub channels: Vec<String>,
    pub client_id: Option<Uuid>,
    /// 1 when created, one more at every change.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn view(s: &StoredSubscription) -> AlertSubscriptionView {
    AlertSubscriptionView {
        id: s.id,
        operator: s.operator.clone(),
        alert_types: s
            .subscription
            .types
            .iter()
            .map(|t| t.code().to_owned())
            .collect(),
        channels: s
            .subscription
            .channels
            .iter()
            .map(|c| c.as_str().to_owned())
            .collect(),
        client_id: s.subscription.client.map(|c| c.0),
        version: s.version,
        created_at: rfc3339(s.created_at),
        updated_at: rfc3339(s.updated_at),
    }
}

fn refused(e: SubscriptionError) -> ApiError {
    let status = match e {
        SubscriptionError::NoTypes
        | SubscriptionError::NoChannels
        | SubscriptionError::NoCommonChannel(_) => StatusCode::UNPROCESSABLE_ENTITY,
        SubscriptionError::UnknownType(_)
        | SubscriptionError::UnknownChannel(_)
        | SubscriptionError::ClientFilter(_) => StatusCode::BAD_REQUEST,
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn parse(body: &Bytes) -> Result<Subscription, ApiError> {
    let req: AlertSubscriptionBody = parse_body(body)?;
    Subscription::parse(&req.alert_types, &req.channels, req.client_id.as_deref()).map_err(refused)
}

fn subscription_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, ApiError> {
    let raw = path_ids(path)?;
    Uuid::parse_str(&raw).map_err(|_| {
        ApiError::bad_request(
            "invalid_subscription_id",
            format!("`{raw}` is not a subscription id (a UUID)"),
        )
    })
}

fn not_found(id: Uuid) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "alert_subscription_not_found",
        format!("no alert subscription {id}"),
    )
}

#[utoipa::path(get, path = "/v1/operator/alert-subscriptions",
    responses((status = 200, body = [AlertSubscriptionView]), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list_subscriptions(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let stored = store::list(&app.pool).await.map_err(internal)?;
    Ok(Json(stored.iter().map(view).collect::<Vec<_>>()).into_response())
}

/// Subscribes the calling operator; alerts that occur from now on are delivered to it.
#[utoipa::path(post, path = "/v1/operator/alert-subscriptions", request_body = AlertSubscriptionBody,
    responses((status = 201, body = AlertSubscriptionView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn subscribe(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let subscription = parse(&body)?;
    let stored = store::create(&app.pool, &actor.id, &subscription)
        .await
        .map_err(internal)?;
    Ok((StatusCode::CREATED, Json(view(&stored))).into_response())
}

/// Changes a subscription's types, channels and client filter.
#[utoipa::path(put, path = "/v1/operator/alert-subscriptions/{subscription_id}", request_body = AlertSubscriptionBody,
    params(("subscription_id" = Uuid, Path)),
    responses((status = 200, body = AlertSubscriptionView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn change_subscription(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let id = subscription_id(path)?;
    let subscription = parse(&body)?;
    let stored = store::replace(&app.pool, id, &subscription)
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(id))?;
    Ok(Json(view(&stored)).into_response())
}

/// Removes a subscription; deliveries already queued for it are still sent.
#[utoipa::path(delete, path = "/v1/operator/alert-subscriptions/{subscription_id}",
    params(("subscription_id" = Uuid, Path)),
    responses((status = 204), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn unsubscribe(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let id = subscription_id(path)?;
    if !store::delete(&app.pool, id).await.map_err(internal)? {
        return Err(not_found(id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The largest refusal body the observer reads.
const MAX_REFUSAL: usize = 64 * 1024;

/// The client a `/v1/clients/{client_id}/…` path names.
fn client_of(path: &str) -> Option<ClientId> {
    let rest = path.strip_prefix("/v1/clients/")?;
    let id = rest.split('/').next()?;
    Uuid::parse_str(id).ok().map(ClientId)
}

/// Observes the edge's answers and raises the alerts that have no event on the log (see the
/// module's documentation). The answer itself is passed on unchanged.
pub(crate) async fn observe(
    AxumState(app): AxumState<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| path.clone(), |m| m.as_str().to_owned());
    let is_post = request.method() == axum::http::Method::POST;
    let response = next.run(request).await;
    let status = response.status();
    if is_post && status == StatusCode::UNAUTHORIZED && route == crate::registration::ME_LOGIN {
        let alert = Alert::FailedLogin {
            route,
            reason: "unauthenticated".into(),
        };
        record(&app, format!("edge/{}", Uuid::new_v4()), alert, None);
        return response;
    }
    if status != StatusCode::UNPROCESSABLE_ENTITY {
        return response;
    }
    let Some(client) = client_of(&path) else {
        return response;
    };
    let (parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_REFUSAL).await {
        Ok(bytes) => bytes,
        Err(e) => {
            tracing::warn!(error = %e, "refusal body unreadable");
            return (StatusCode::INTERNAL_SERVER_ERROR, "refusal body unreadable").into_response();
        }
    };
    if let Ok(refusal) = serde_json::from_slice::<Refusal>(&bytes) {
        if let Some(alert) = alerts::limit_reached(&refusal.code, &route) {
            let key = refusal
                .command_id
                .unwrap_or_else(|| Uuid::new_v4().to_string());
            record(&app, format!("edge/{key}"), alert, Some(client));
        }
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// The fields of a refused command's answer the observer reads.
#[derive(Deserialize)]
struct Refusal {
    code: String,
    command_id: Option<String>,
}

/// Records an edge alert in the background (a failure is logged; the answer never waits).
pub(crate) fn record(app: &Arc<App>, key: String, alert: Alert, client: Option<ClientId>) {
    let pool = app.pool.clone();
    tokio::spawn(async move {
        let raised = Raised {
            key,
            alert: &alert,
            client,
            occurred_at: OffsetDateTime::now_utc(),
            event_id: None,
        };
        if let Err(e) = store::raise(&pool, &raised).await {
            tracing::warn!(error = %e, alert = alert.alert_type().code(), "edge alert not recorded");
        }
    });
}
