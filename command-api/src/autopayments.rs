//! Payment templates and autopayments (e-wallet spec §3.2) over REST, for the client (its own
//! token) or an operator:
//!
//! - `POST /v1/clients/{client_id}/templates` — save an operation's details as a template;
//!   `…/templates/{template_id}/delete` removes one no autopayment runs;
//! - `POST /v1/clients/{client_id}/autopayments` — run a template every `count` `unit`s from
//!   `first_run_at`, pausing after `max_failures` failed runs in a row;
//!   `…/autopayments/{autopayment_id}/pause|resume|cancel`.
//!
//! Runs are made by the autopayment runner (`etr_sagas::autopayments`); GraphQL's
//! `customer { templates autopayments { runs } }` shows them.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use etr_domain::autopayment::{Schedule, Template, Unit};
use etr_domain::client;
use etr_domain::{ClientId, Command, Money};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{meta, minted_id, parse_body, path_ids, ApiError, App};
use crate::lending::respond;

const TEMPLATES: &str = "/v1/clients/{client_id}/templates";
const TEMPLATE_DELETE: &str = "/v1/clients/{client_id}/templates/{template_id}/delete";
const AUTOPAYMENTS: &str = "/v1/clients/{client_id}/autopayments";
/// An action on an autopayment (the route of its idempotency fingerprint).
const AUTOPAYMENT_ACTION: &str = "/v1/clients/{client_id}/autopayments/{autopayment_id}/{action}";
/// An autopayment: its actions are routed under it.
const AUTOPAYMENT: &str = "/v1/clients/{client_id}/autopayments/{autopayment_id}";

pub(crate) fn routes() -> Router<Arc<App>> {
    let router = Router::new()
        .route(TEMPLATES, post(save_template))
        .route(TEMPLATE_DELETE, post(delete_template))
        .route(AUTOPAYMENTS, post(create_autopayment));
    action_routes(router, AUTOPAYMENT)
}

/// An operation's details: the wallet it is paid from, the service, the amount (decimal
/// string in the wallet's currency) and the payment's attributes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateRequest {
    #[schema(example = "Мобильный")]
    pub name: String,
    pub wallet_id: Uuid,
    #[schema(example = "mobile")]
    pub service_id: String,
    #[schema(example = "300.00")]
    pub amount: String,
    #[schema(example = "RUB")]
    pub currency: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// How often an autopayment runs.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EveryRequest {
    /// `second` (at least 5), `minute`, `hour`, `day`, `week` or `month`.
    #[schema(example = "month", pattern = "^(?:second|minute|hour|day|week|month)$")]
    pub unit: String,
    /// 1–1000.
    #[schema(example = 1)]
    pub count: u32,
}

/// An autopayment of a saved template.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutopaymentRequest {
    pub template_id: Uuid,
    pub every: EveryRequest,
    /// RFC 3339; the first run (now when absent).
    #[schema(format = DateTime)]
    pub first_run_at: Option<String>,
    /// Failed runs in a row after which it pauses: 1–10, default 3.
    pub max_failures: Option<u32>,
}

/// A reason, for a pause; the body may be left empty.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionRequest {
    /// Why, for the record (a pause only; ignored by resume and cancel).
    pub reason: Option<String>,
}

/// A client command made from a request, the ids its answer names and the status of an
/// accepted one.
type Made = (client::Command, serde_json::Value, StatusCode);

async fn client_command(
    app: &App,
    headers: &HeaderMap,
    client: ClientId,
    route: &str,
    params: &[&str],
    body: &Bytes,
    make: impl FnOnce(&crate::handler::Meta) -> Result<Made, ApiError>,
) -> Result<Response, ApiError> {
    let meta = meta(&app.keys, headers, client, route, params, body)?;
    let (command, ids, status) = make(&meta)?;
    let handled = app
        .handler
        .handle(
            meta,
            Command::Client {
                client_id: client,
                command,
            },
        )
        .await?;
    Ok(respond(handled, status, ids).await)
}

/// Saves a template; `201` with `template_id`. Errors: the amount's refusals (400), a name or
/// service id of 1–100 characters, at most 50 templates (422 `invalid`).
#[utoipa::path(post, path = "/v1/clients/{client_id}/templates", request_body = TemplateRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn save_template(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = ClientId(path_ids(path)?);
    client_command(
        &app,
        &headers,
        client,
        TEMPLATES,
        &[&client.to_string()],
        &body,
        |meta| {
            let req: TemplateRequest = parse_body(&body)?;
            let amount = Money::parse_positive(&req.amount, &req.currency)?;
            let template_id = minted_id(meta, "template");
            Ok((
                client::Command::SaveTemplate {
                    template_id,
                    template: Template {
                        name: req.name,
                        wallet_id: req.wallet_id,
                        service_id: req.service_id,
                        amount,
                        attributes: req.attributes,
                    },
                },
                serde_json::json!({ "template_id": template_id }),
                StatusCode::CREATED,
            ))
        },
    )
    .await
}

/// Deletes a template no active or paused autopayment runs.
#[utoipa::path(post, path = "/v1/clients/{client_id}/templates/{template_id}/delete",
    params(("client_id" = Uuid, Path), ("template_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn delete_template(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, template_id) = path_ids(path)?;
    let client = ClientId(client);
    let params = [client.to_string(), template_id.to_string()];
    client_command(
        &app,
        &headers,
        client,
        TEMPLATE_DELETE,
        &[&params[0], &params[1]],
        &body,
        |_| {
            Ok((
                client::Command::DeleteTemplate { template_id },
                serde_json::json!({ "template_id": template_id }),
                StatusCode::OK,
            ))
        },
    )
    .await
}

/// Creates an autopayment; `201` with `autopayment_id`. Errors: 400 `invalid_schedule` (an
/// unknown unit, a bad `first_run_at`), 422 for a missing template, a count outside 1–1000,
/// runs more often than every 5 s, `max_failures` outside 1–10, more than 20 autopayments.
#[utoipa::path(post, path = "/v1/clients/{client_id}/autopayments", request_body = AutopaymentRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn create_autopayment(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = ClientId(path_ids(path)?);
    client_command(
        &app,
        &headers,
        client,
        AUTOPAYMENTS,
        &[&client.to_string()],
        &body,
        |meta| {
            let req: AutopaymentRequest = parse_body(&body)?;
            let unit = Unit::parse(&req.every.unit).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_schedule",
                    "every.unit is second, minute, hour, day, week or month",
                )
            })?;
            let first_run_at = match &req.first_run_at {
                None => OffsetDateTime::now_utc(),
                Some(t) => OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        ApiError::bad_request("invalid_schedule", "first_run_at: expected RFC 3339")
                    })?,
            };
            let autopayment_id = minted_id(meta, "autopayment");
            Ok((
                client::Command::CreateAutopayment {
                    autopayment_id,
                    template_id: req.template_id,
                    schedule: Schedule {
                        unit,
                        count: req.every.count,
                        first_run_at,
                    },
                    max_failures: req.max_failures.unwrap_or(3),
                },
                serde_json::json!({ "autopayment_id": autopayment_id }),
                StatusCode::CREATED,
            ))
        },
    )
    .await
}

crate::api::action_operations! {
    dispatch: act, path: (Uuid, Uuid), routes: action_routes,
    params: (("client_id" = Uuid, Path), ("autopayment_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses: [(status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)];
    /// Pauses an autopayment: no run until it is resumed. 422 `invalid_transition` unless
    /// active.
    pause_autopayment: "pause", "/v1/clients/{client_id}/autopayments/{autopayment_id}/pause", ActionRequest, (status = 200, body = crate::api::CommandResponse);
    /// Resumes a paused autopayment: the next run is the first scheduled after now. 422
    /// `invalid_transition` unless paused.
    resume_autopayment: "resume", "/v1/clients/{client_id}/autopayments/{autopayment_id}/resume", ActionRequest, (status = 200, body = crate::api::CommandResponse);
    /// Cancels an autopayment for good. 422 `invalid_transition` once cancelled.
    cancel_autopayment: "cancel", "/v1/clients/{client_id}/autopayments/{autopayment_id}/cancel", ActionRequest, (status = 200, body = crate::api::CommandResponse);
}

/// An action on an autopayment, by name (the operations above).
async fn act(
    AxumState(app): AxumState<Arc<App>>,
    _uri: axum::http::Uri,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    action: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, autopayment_id) = path_ids(path)?;
    let client = ClientId(client);
    let params = [
        client.to_string(),
        autopayment_id.to_string(),
        action.to_owned(),
    ];
    client_command(
        &app,
        &headers,
        client,
        AUTOPAYMENT_ACTION,
        &[&params[0], &params[1], &params[2]],
        &body,
        |_| {
            let req: ActionRequest = if body.is_empty() {
                ActionRequest::default()
            } else {
                parse_body(&body)?
            };
            let command = match action {
                "pause" => client::Command::PauseAutopayment {
                    autopayment_id,
                    reason: req.reason.unwrap_or_default(),
                },
                "resume" => client::Command::ResumeAutopayment { autopayment_id },
                "cancel" => client::Command::CancelAutopayment { autopayment_id },
                _ => {
                    return Err(ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        "the action is pause, resume or cancel",
                    ))
                }
            };
            Ok((
                command,
                serde_json::json!({ "autopayment_id": autopayment_id }),
                StatusCode::OK,
            ))
        },
    )
    .await
}
