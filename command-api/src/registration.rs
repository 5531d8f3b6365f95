//! Wallet registration (e-wallet spec §2) and the system settings that steer it:
//!
//! - `POST /v1/me/wallet-registration` — the client applies for a wallet with an account in a
//!   currency, giving its personal data (sealed before the command exists); approved at once
//!   or left for an operator, as the `wallet_registration_approval` setting says;
//! - `POST /v1/me/login` — the client's login: the first one after the approval opens the
//!   account (`WalletOpened` + `WalletRegistrationCompleted`); later ones answer the account;
//! - `POST /v1/operator/clients/{client_id}/wallet-registration/review` — an operator approves
//!   or rejects a submitted registration;
//! - `POST /v1/operator/clients/{client_id}/personal-data-change-requests/{request_id}/review`
//!   — an operator approves (the data changes, the search index follows) or rejects a
//!   client's personal-data change request (`POST /v1/me/personal-data` makes one);
//! - `GET` / `PUT /v1/operator/settings` — the approval settings (`automatic` | `manual`).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use etr_domain::client::{self, Approval, RequestStatus};
use etr_domain::ids::{client_command_id, derived_id};
use etr_domain::{AggregateRef, ClientId, Command, Currency, State};
use etr_infra::auth::Role;
use etr_infra::settings::{self, Setting};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{parse_body, viewer, ApiError, App};
use crate::handler::{request_fingerprint, Meta, Outcome};
use crate::lending::{internal, meta, operator, operator_command, personal_data, respond};

pub(crate) const ME_WALLET_REGISTRATION: &str = "/v1/me/wallet-registration";
pub(crate) const ME_LOGIN: &str = "/v1/me/login";
pub(crate) const REGISTRATION_REVIEW: &str =
    "/v1/operator/clients/{client_id}/wallet-registration/review";
pub(crate) const DATA_CHANGE_REVIEW: &str =
    "/v1/operator/clients/{client_id}/personal-data-change-requests/{request_id}/review";
pub(crate) const SETTINGS: &str = "/v1/operator/settings";

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(ME_WALLET_REGISTRATION, post(apply))
        .route(ME_LOGIN, post(login))
        .route(REGISTRATION_REVIEW, post(review_registration))
        .route(DATA_CHANGE_REVIEW, post(review_data_change))
        .route(SETTINGS, get(get_settings).put(put_settings))
}

/// The account a client's wallet registration opens: one per client, derived from its id.
pub fn registration_wallet_id(client: ClientId) -> Uuid {
    derived_id(client.0, "wallet-registration-account")
}

fn client_caller(app: &App, headers: &HeaderMap) -> Result<ClientId, ApiError> {
    let v = viewer(&app.keys, headers)?;
    match (v.role, v.client) {
        (Role::Client, Some(c)) => Ok(ClientId(c)),
        _ => Err(ApiError::forbidden("this route takes a client token")),
    }
}

/// An application for a wallet: the account's currency and the client's personal data (as
/// at registration: names, birth date, phone, optionally e-mail and documents).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletRegistrationRequest {
    /// ISO 4217: `RUB`, `USD` or `EUR`.
    #[schema(example = "RUB")]
    pub currency: String,
    pub personal: crate::lending::RegistrationRequest,
}

/// Applies for a wallet. `201` with `status` `approved` (automatic approval: the account
/// opens at the first login) or `submitted` (an operator decides). Refused while an earlier
/// application is pending, approved or completed (`invalid_transition`), for a blocked client,
/// or for a currency the client's group has no limits in.
#[utoipa::path(post, path = "/v1/me/wallet-registration", request_body = WalletRegistrationRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn apply(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = client_caller(&app, &headers)?;
    let meta = meta(
        &headers,
        client,
        etr_domain::Actor::client(client),
        ME_WALLET_REGISTRATION,
        &[],
        &body,
    )?;
    let req: WalletRegistrationRequest = parse_body(&body)?;
    let currency: Currency = req
        .currency
        .parse()
        .map_err(|e| ApiError::bad_request("invalid_currency", format!("currency: {e}")))?;
    let data = personal_data(req.personal, OffsetDateTime::now_utc().date())?;
    let approval = settings::approval(&app.pool, Setting::WalletRegistrationApproval)
        .await
        .map_err(internal)?;
    let personal = app.vault.seal(client, &data).await.map_err(internal)?;
    let wallet_id = registration_wallet_id(client);
    let handled = app
        .handler
        .handle(
            meta,
            Command::Client {
                client_id: client,
                command: client::Command::ApplyForWallet {
                    personal,
                    currency,
                    wallet_id,
                    approval,
                },
            },
        )
        .await?;
    if approval == Approval::Automatic && matches!(handled.outcome, Outcome::Accepted { .. }) {
        app.vault.index(client, &data).await.map_err(internal)?;
    }
    let status = match approval {
        Approval::Automatic => RequestStatus::Approved,
        Approval::Manual => RequestStatus::Submitted,
    };
    Ok(respond(
        handled,
        StatusCode::CREATED,
        serde_json::json!({
            "client_id": client,
            "wallet_id": wallet_id,
            "registration_status": status.label(),
        }),
    )
    .await)
}

/// Where the client's wallet registration stands after a login.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginView {
    pub client_id: Uuid,
    /// `submitted`, `approved`, `rejected` or `completed`.
    pub registration_status: String,
    /// The account, once open.
    pub wallet_id: Option<Uuid>,
    /// Whether this login opened it.
    pub opened_now: bool,
    /// The operator's reason of a rejection.
    pub reason: Option<String>,
}

/// The client's login. The first one after the registration's approval opens the account in
/// the currency applied for (`201`, the command's events and position); any other answers
/// `200` with the registration's status. Errors: `404 not_registered` without an application,
/// `403 registration_pending` while an operator has not decided, `403
/// registration_rejected` with the reason.
#[utoipa::path(post, path = "/v1/me/login",
    responses((status = 200, body = LoginView), (status = 201, body = crate::api::CommandResponse), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn login(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let client = client_caller(&app, &headers)?;
    let state = app
        .handler
        .committed_state(AggregateRef::client(client))
        .await?;
    let registration = match state {
        Some(State::Client(c)) => c.wallet_registration,
        _ => None,
    };
    let Some(registration) = registration else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_registered",
            "the client has not applied for a wallet",
        ));
    };
    let view = |opened_now| LoginView {
        client_id: client.0,
        registration_status: registration.status.label().into(),
        wallet_id: (registration.status == RequestStatus::Completed)
            .then_some(registration.wallet_id),
        opened_now,
        reason: registration.reason.clone(),
    };
    match registration.status {
        RequestStatus::Submitted => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "registration_pending",
            "the wallet registration waits for an operator's approval",
        )),
        RequestStatus::Rejected => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "registration_rejected",
            format!(
                "the wallet registration was rejected: {}",
                registration.reason.as_deref().unwrap_or("no reason given")
            ),
        )),
        RequestStatus::Completed => Ok((StatusCode::OK, Json(view(false))).into_response()),
        RequestStatus::Approved => {
            // One command per client whatever the number of logins racing for it: the
            // command id is the client's own, so a repeat answers the first outcome.
            let key = "first-login";
            let meta = Meta {
                command_id: client_command_id(client, key),
                correlation_id: client_command_id(client, key),
                actor: etr_domain::Actor::client(client),
                request_hash: request_fingerprint("POST", ME_LOGIN, &[], b""),
            };
            let handled = app
                .handler
                .handle(
                    meta,
                    Command::Wallet {
                        client_id: client,
                        wallet_id: registration.wallet_id,
                        command: etr_domain::wallet::Command::OpenAtFirstLogin,
                    },
                )
                .await?;
            Ok(respond(
                handled,
                StatusCode::CREATED,
                serde_json::json!({
                    "client_id": client,
                    "wallet_id": registration.wallet_id,
                    "registration_status": RequestStatus::Completed.label(),
                    "opened_now": true,
                }),
            )
            .await)
        }
    }
}

/// An operator's decision on a request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub approve: bool,
    /// Required, shown to the client on a rejection.
    pub reason: String,
}

/// Approves or rejects a submitted wallet registration. Errors: `invalid_transition` when it
/// is not waiting for an operator, `client_not_found` without one.
#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/wallet-registration/review", request_body = ReviewRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn review_registration(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let client = ClientId(crate::api::path_ids(path)?);
    let req: ReviewRequest = parse_body(&body)?;
    let handled = operator_command(
        &app,
        &headers,
        client,
        REGISTRATION_REVIEW,
        &[&client.to_string()],
        &body,
        client::Command::ReviewWalletRegistration {
            approve: req.approve,
            reason: req.reason,
        },
    )
    .await?;
    // The approved data joins the search index (duplicates, lookups).
    if req.approve {
        index_client(&app, client).await?;
    }
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "client_id": client }),
    )
    .await)
}

/// Approves (the personal data changes) or rejects a submitted personal-data change request.
#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/personal-data-change-requests/{request_id}/review", request_body = ReviewRequest,
    params(("client_id" = Uuid, Path), ("request_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn review_data_change(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let (client, request_id) = crate::api::path_ids(path)?;
    let client = ClientId(client);
    let req: ReviewRequest = parse_body(&body)?;
    let handled = operator_command(
        &app,
        &headers,
        client,
        DATA_CHANGE_REVIEW,
        &[&client.to_string(), &request_id.to_string()],
        &body,
        client::Command::ReviewPersonalDataChange {
            request_id,
            approve: req.approve,
            reason: req.reason,
        },
    )
    .await?;
    if req.approve {
        index_client(&app, client).await?;
    }
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "client_id": client, "request_id": request_id }),
    )
    .await)
}

/// Indexes the client's current personal data for search, if it has any that opens.
async fn index_client(app: &App, client: ClientId) -> Result<(), ApiError> {
    let Some(State::Client(c)) = app
        .handler
        .committed_state(AggregateRef::client(client))
        .await?
    else {
        return Ok(());
    };
    let Some(sealed) = c.personal else {
        return Ok(());
    };
    match app.vault.open(client, &sealed).await {
        Ok(data) => app.vault.index(client, &data).await.map_err(internal),
        Err(etr_infra::Error::Erased(_)) => Ok(()),
        Err(e) => Err(internal(e)),
    }
}

/// The approval settings: each `automatic` or `manual`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsBody {
    /// How wallet registrations are approved.
    #[schema(example = "manual", pattern = "^(?:automatic|manual)$")]
    pub wallet_registration_approval: Option<String>,
    /// How personal-data change requests are approved.
    #[schema(example = "automatic", pattern = "^(?:automatic|manual)$")]
    pub personal_data_change_approval: Option<String>,
}

async fn settings_view(app: &App) -> Result<Response, ApiError> {
    let all = settings::all(&app.pool).await.map_err(internal)?;
    let map: serde_json::Map<String, serde_json::Value> = all
        .into_iter()
        .map(|(s, a)| (s.key().to_owned(), serde_json::Value::from(a.label())))
        .collect();
    Ok((StatusCode::OK, Json(serde_json::Value::Object(map))).into_response())
}

/// The approval settings now.
#[utoipa::path(get, path = "/v1/operator/settings",
    responses((status = 200, body = SettingsBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn get_settings(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    settings_view(&app).await
}

/// Changes the approval settings given (the others stay); applies to requests from now on.
/// Errors: `400 invalid_setting` for a value other than `automatic` or `manual`.
#[utoipa::path(put, path = "/v1/operator/settings", request_body = SettingsBody,
    responses((status = 200, body = SettingsBody), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn put_settings(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let req: SettingsBody = parse_body(&body)?;
    let mut changes = Vec::new();
    for (setting, value) in [
        (
            Setting::WalletRegistrationApproval,
            &req.wallet_registration_approval,
        ),
        (
            Setting::PersonalDataChangeApproval,
            &req.personal_data_change_approval,
        ),
    ] {
        if let Some(v) = value {
            let approval = Approval::parse(v).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_setting",
                    format!("{}: expected `automatic` or `manual`", setting.key()),
                )
            })?;
            changes.push((setting, approval));
        }
    }
    for (setting, approval) in changes {
        settings::set(&app.pool, setting, approval, &actor.id)
            .await
            .map_err(internal)?;
    }
    settings_view(&app).await
}
