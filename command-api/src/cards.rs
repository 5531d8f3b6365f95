//! Bank cards a wallet client binds as a payment source (e-wallet spec §3.3, §7.1):
//!
//! - `POST /v1/clients/{client_id}/cards` — the card's number, expiry and CVC go to the bank
//!   through the bank-system port, which verifies the card and returns its token; the client
//!   records the bound card (`CardBound`: the token and the masked number, never the number).
//!
//! A payment names the bound card with `card_id` (`POST …/wallets/{wallet_id}/payments`).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use etr_domain::card::{CardNumber, Cvc, Expiry};
use etr_domain::client::{self, BoundCard};
use etr_domain::ports::{Answer, CardDetails};
use etr_domain::{ClientId, Command};
use std::sync::Arc;
use time::OffsetDateTime;

use crate::api::{meta, minted_id, parse_body, path_ids, ApiError, App};
use crate::checkout::{card_error, CardPaymentRequest};
use crate::lending::respond;

const CARDS: &str = "/v1/clients/{client_id}/cards";

/// The provider name bound cards are recorded under.
pub const BANK: &str = "bank";

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new().route(CARDS, post(bind_card))
}

/// Binds a bank card to the client: `201` with `card_id` and `masked_pan`. A repeated
/// Idempotency-Key answers the first response.
///
/// Errors: 400 `card_number_format`, `card_expiry_format`, `card_cvc_format`, or a body
/// code; 402 `card_declined` (the bank refused the card, with its reason); 404
/// `client_not_found`; 422 `card_number_checksum`, `card_expired`, `client_blocked`,
/// `invalid_command` (the card is already bound, or 10 cards are); 503 `bank_unavailable`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/cards", request_body = CardPaymentRequest,
    params(("client_id" = uuid::Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 402, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn bind_card(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<uuid::Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = ClientId(path_ids(path)?);
    let meta = meta(
        &app.keys,
        &headers,
        client,
        CARDS,
        &[&client.to_string()],
        &body,
    )?;
    let req: CardPaymentRequest = parse_body(&body)?;
    let details = CardDetails {
        number: CardNumber::parse(&req.number).map_err(card_error)?,
        expiry: Expiry::parse(&req.expiry, OffsetDateTime::now_utc().date()).map_err(card_error)?,
        cvc: Cvc::parse(&req.cvc).map_err(card_error)?,
    };
    let bound = match app.bank.bind(&details).await {
        Answer::Done(bound) => bound,
        Answer::Refused(reason) => {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
                format!("the bank refused the card: {reason}"),
            ))
        }
        Answer::Unavailable(reason) => {
            tracing::warn!(client = %client, reason, "the bank did not answer a card binding");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bank_unavailable",
                "the bank did not answer; retry with the same Idempotency-Key",
            ));
        }
    };
    let card_id = minted_id(&meta, "card");
    let ids = serde_json::json!({ "card_id": card_id, "masked_pan": bound.masked_pan });
    let handled = app
        .handler
        .handle(
            meta,
            Command::Client {
                client_id: client,
                command: client::Command::BindCard {
                    card: BoundCard {
                        card_id,
                        provider: BANK.into(),
                        token: bound.token,
                        masked_pan: bound.masked_pan,
                    },
                },
            },
        )
        .await?;
    Ok(respond(handled, StatusCode::CREATED, ids).await)
}
