//! Servicing of an issued loan over REST (seed 000 §6.13.1):
//!
//! - `POST /v1/clients/{client_id}/loans/{loan_id}/repayments` — repay from the client's
//!   wallet (`Repay`): allocated fees → penalties → overdue interest → interest → overdue
//!   principal → principal, an excess kept as credit; or from a bound card (`card_id`): the
//!   request is recorded and the card-repayment process has the bank authorise and capture
//!   it before it is allocated (`RepaymentAllocated` with the card, or
//!   `CardRepaymentDeclined`);
//! - `GET  /v1/clients/{client_id}/loans/{loan_id}/early-repayment-quote` — the debt by
//!   component and the payoff of the open business day, valid until the day closes;
//! - `POST /v1/clients/{client_id}/loans/{loan_id}/early-repayments` — repay early from the
//!   wallet, in part (`amount`, `recalculate`: `instalment` or `term`) or in full (no
//!   `amount`: the quote's payoff, which closes the loan with zero debt);
//! - `POST /v1/clients/{client_id}/loans/{loan_id}/prolongations` — extend by `months`;
//! - `POST /v1/operator/clients/{client_id}/loans/{loan_id}/{action}` — operator only:
//!   `stop-accrual`, `resume-accrual`, `write-off` (each with a `reason`) and `close-days`
//!   (`through`: accrue every day before it; a day that has not ended in Moscow is refused
//!   unless the platform runs with simulated days).
//!
//! A repayment and the wallet's debit are one commit (both are in the client's partition).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use etr_domain::loan::{self, Loan};
use etr_domain::servicing::Recalculate;
use etr_domain::{AggregateKind, AggregateRef, ClientId, Command, Currency, Money, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{actor, meta, minted_id, parse_body, path_ids, ApiError, App};
use crate::lending::{respond, ReasonRequest};

const REPAYMENTS: &str = "/v1/clients/{client_id}/loans/{loan_id}/repayments";
const QUOTE: &str = "/v1/clients/{client_id}/loans/{loan_id}/early-repayment-quote";
const EARLY: &str = "/v1/clients/{client_id}/loans/{loan_id}/early-repayments";
const PROLONGATIONS: &str = "/v1/clients/{client_id}/loans/{loan_id}/prolongations";
/// An operator's action on a loan (the route of its idempotency fingerprint).
const OPERATOR: &str = "/v1/operator/clients/{client_id}/loans/{loan_id}/{action}";
/// The loan an operator acts on: its actions are routed under it.
const OPERATOR_LOAN: &str = "/v1/operator/clients/{client_id}/loans/{loan_id}";

pub(crate) fn routes() -> Router<Arc<App>> {
    let router = Router::new()
        .route(REPAYMENTS, post(repay))
        .route(QUOTE, get(quote))
        .route(EARLY, post(repay_early))
        .route(PROLONGATIONS, post(prolong));
    operator_routes(router, OPERATOR_LOAN)
}

/// A repayment from the client's wallet or one of its bound cards (exactly one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RepaymentRequest {
    /// The client's wallet the money comes from (roubles).
    #[schema(extensions(("x-exactly-one-of" = json!("source"))))]
    pub wallet_id: Option<Uuid>,
    /// The client's bound card (`POST /v1/clients/{client_id}/cards`): the bank is asked and
    /// the repayment is applied once it has the money (`202`).
    #[schema(extensions(("x-exactly-one-of" = json!("source"))))]
    pub card_id: Option<Uuid>,
    /// Positive decimal string in roubles, at most 2 decimals, e.g. "1500.00".
    pub amount: String,
}

/// An early repayment: in part with `amount`, in full without.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EarlyRepaymentRequest {
    /// The client's wallet the money comes from (roubles); exactly one of `wallet_id` and
    /// `card_id`.
    #[schema(extensions(("x-exactly-one-of" = json!("source"))))]
    pub wallet_id: Option<Uuid>,
    /// The client's bound card.
    #[schema(extensions(("x-exactly-one-of" = json!("source"))))]
    pub card_id: Option<Uuid>,
    /// Positive decimal string in roubles; absent: the payoff of the open day (in full).
    pub amount: Option<String>,
    /// `instalment` (same dates, lower instalments) or `term` (same instalment, fewer dates);
    /// `term` when absent.
    #[schema(value_type = Option<String>, pattern = "^(?:instalment|term)$")]
    pub recalculate: Option<Recalculate>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProlongationRequest {
    /// 1 to 12.
    pub months: u32,
}

/// Closing a loan's days: accrual of every day through `through` is final.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseDaysRequest {
    /// The last day to close, YYYY-MM-DD: at most yesterday in Moscow (else 422
    /// `day_not_ended`).
    #[schema(extensions(("x-text" = json!("date"))))]
    pub through: String,
}

/// What the client owes now, by component, roubles with kopecks as decimal strings.
#[derive(Debug, Serialize, ToSchema)]
pub struct DebtView {
    pub fees: String,
    pub penalties: String,
    pub overdue_interest: String,
    pub interest: String,
    pub overdue_principal: String,
    pub principal: String,
    pub total: String,
}

/// The early-repayment quote of the open business day.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = EarlyRepaymentQuote)]
pub struct QuoteView {
    pub loan_id: Uuid,
    /// The open business day (YYYY-MM-DD) the quote is for.
    pub business_date: String,
    /// Repays the loan in full on the business day: debt total, roubles.
    pub payoff: String,
    /// RFC 3339: the end of the business day in Moscow; the day-close then accrues the day.
    pub valid_until: String,
    pub debt: DebtView,
    /// The smallest partial early repayment must exceed this (everything owed but current
    /// principal), roubles.
    pub partial_above: String,
    /// The client's credit (overpaid), roubles.
    pub credit: String,
    pub prolongation_fee: String,
    pub accrual_stopped: bool,
}

fn money_text(d: rust_decimal::Decimal) -> String {
    etr_domain::money::round_minor(d, Currency::Rub).to_string()
}

async fn loan_state(app: &App, client: ClientId, loan_id: Uuid) -> Result<Loan, ApiError> {
    let state = app
        .handler
        .committed_state(AggregateRef {
            kind: AggregateKind::Loan,
            id: loan_id,
        })
        .await?;
    match state {
        Some(State::Loan(l)) if l.client_id == Some(client) => Ok(l),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "loan_not_found",
            format!("loan {loan_id} does not exist"),
        )),
    }
}

async fn send(
    app: &App,
    meta: crate::handler::Meta,
    client: ClientId,
    loan_id: Uuid,
    command: loan::Command,
    ids: serde_json::Value,
) -> Result<Response, ApiError> {
    let handled = app
        .handler
        .handle(
            meta,
            Command::Loan {
                client_id: client,
                loan_id,
                command,
            },
        )
        .await?;
    Ok(respond(handled, StatusCode::OK, ids).await)
}

/// The client and loan a client's request names, and its command's meta (the caller may
/// act for the client).
fn client_request(
    app: &App,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: &HeaderMap,
    route: &str,
    body: &Bytes,
) -> Result<(ClientId, Uuid, crate::handler::Meta), ApiError> {
    let (client, loan_id) = path_ids(path)?;
    let client = ClientId(client);
    let meta = meta(
        &app.keys,
        headers,
        client,
        route,
        &[&client.to_string(), &loan_id.to_string()],
        body,
    )?;
    Ok((client, loan_id, meta))
}

fn rub(text: &str) -> Result<Money, ApiError> {
    Ok(Money::parse_positive(text, "RUB")?)
}

/// Where a repayment comes from.
enum Source {
    Wallet(Uuid),
    Card(Uuid),
}

fn source(wallet_id: Option<Uuid>, card_id: Option<Uuid>) -> Result<Source, ApiError> {
    match (wallet_id, card_id) {
        (Some(w), None) => Ok(Source::Wallet(w)),
        (None, Some(c)) => Ok(Source::Card(c)),
        _ => Err(ApiError::bad_request(
            "repayment_source",
            "give exactly one of `wallet_id` and `card_id`",
        )),
    }
}

/// Repays the loan from the client's wallet on the open business day: `200` with
/// `repayment_id` and the events (`RepaymentAllocated` shows the allocation, `LoanClosed`
/// when nothing is owed any more).
///
/// Errors: 400 an amount's code, `repayment_source` (not exactly one of wallet and card) or a
/// body code; 401; 403 another client's token; 404 `loan_not_found`, `wallet_not_found`,
/// `card_not_found`; 422 `repayment_in_progress` (a card repayment is with the bank),
/// `insufficient_funds`, `currency_mismatch`,
/// `invalid_transition` (the loan is closed or written off), `invalid_command` (a loan the
/// platform does not service).
#[utoipa::path(post, path = "/v1/clients/{client_id}/loans/{loan_id}/repayments", request_body = RepaymentRequest,
    params(("client_id" = Uuid, Path), ("loan_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn repay(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, loan_id, meta) = client_request(&app, path, &headers, REPAYMENTS, &body)?;
    let req: RepaymentRequest = parse_body(&body)?;
    let amount = rub(&req.amount)?;
    let repayment_id = minted_id(&meta, "repayment");
    let command = match source(req.wallet_id, req.card_id)? {
        Source::Wallet(wallet_id) => loan::Command::Repay {
            repayment_id,
            wallet_id,
            amount,
        },
        Source::Card(card_id) => loan::Command::RequestCardRepayment {
            repayment_id,
            card_id,
            amount: Some(amount),
            early: None,
        },
    };
    send(
        &app,
        meta,
        client,
        loan_id,
        command,
        serde_json::json!({ "repayment_id": repayment_id }),
    )
    .await
}

/// The early-repayment quote: the debt by component and the payoff of the open business
/// day, valid until the day ends (Moscow time).
///
/// Errors: 401; 403 another client's token; 404 `loan_not_found`; 422 `invalid_command` (a
/// loan the platform does not service), `loan_not_open`.
#[utoipa::path(get, path = "/v1/clients/{client_id}/loans/{loan_id}/early-repayment-quote",
    params(("client_id" = Uuid, Path), ("loan_id" = Uuid, Path)),
    responses((status = 200, body = QuoteView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn quote(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (client, loan_id) = path_ids(path)?;
    let client = ClientId(client);
    actor(&app.keys, &headers, client)?;
    let state = loan_state(&app, client, loan_id).await?;
    let unserviced = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_command",
            format!("loan {loan_id} is not serviced by the platform"),
        )
    };
    let ledger = state.ledger.as_ref().ok_or_else(unserviced)?;
    let day = ledger.accrued_until;
    let payoff = ledger
        .payoff(day)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    let d = &ledger.debt;
    let end = loan::business_day_end(day);
    let fee = state.prolongation_fee();
    let view = QuoteView {
        loan_id,
        business_date: day.to_string(),
        payoff: money_text(payoff),
        valid_until: end
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(crate::lending::internal)?,
        debt: DebtView {
            fees: money_text(d.fees),
            penalties: money_text(d.penalties),
            overdue_interest: money_text(d.overdue_interest),
            interest: money_text(d.interest),
            overdue_principal: money_text(d.overdue_principal),
            principal: money_text(d.principal),
            total: money_text(d.total()),
        },
        partial_above: money_text(d.total() - d.principal),
        credit: money_text(ledger.credit),
        prolongation_fee: money_text(fee),
        accrual_stopped: ledger.accrual_stopped,
    };
    Ok((StatusCode::OK, Json(view)).into_response())
}

/// Repays early from the wallet on the open business day: in part (`amount`; what is owed
/// besides current principal is paid first, the rest repays principal and the remaining
/// instalments are recalculated) or in full (no `amount`: the payoff; the loan closes with
/// zero debt and no overpayment). `200` with `repayment_id`.
///
/// Errors: 400 an amount's code, `invalid_field` (recalculate), `repayment_source`, a body
/// code; 401; 403; 404 `loan_not_found`, `wallet_not_found`, `card_not_found`; 422
/// `repayment_in_progress`, `early_repayment_too_small`,
/// `insufficient_funds`, `invalid_transition`, `invalid_command`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/loans/{loan_id}/early-repayments", request_body = EarlyRepaymentRequest,
    params(("client_id" = Uuid, Path), ("loan_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn repay_early(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, loan_id, meta) = client_request(&app, path, &headers, EARLY, &body)?;
    let req: EarlyRepaymentRequest = parse_body(&body)?;
    let amount = req.amount.as_deref().map(rub).transpose()?;
    let repayment_id = minted_id(&meta, "repayment");
    let recalculate = req.recalculate.unwrap_or(Recalculate::Term);
    let command = match source(req.wallet_id, req.card_id)? {
        Source::Wallet(wallet_id) => loan::Command::RepayEarly {
            repayment_id,
            wallet_id,
            amount,
            recalculate,
        },
        Source::Card(card_id) => loan::Command::RequestCardRepayment {
            repayment_id,
            card_id,
            amount,
            early: Some(recalculate),
        },
    };
    send(
        &app,
        meta,
        client,
        loan_id,
        command,
        serde_json::json!({ "repayment_id": repayment_id }),
    )
    .await
}

/// Prolongs the loan by `months` (1–12) on the open business day: the remaining principal is
/// rescheduled over the remaining and the added months, the product's fee is charged.
///
/// Errors: 400 a body code; 401; 403; 404 `loan_not_found`; 422 `invalid_command` (months out
/// of range, a loan the platform does not service), `nothing_to_reschedule`,
/// `invalid_transition`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/loans/{loan_id}/prolongations", request_body = ProlongationRequest,
    params(("client_id" = Uuid, Path), ("loan_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn prolong(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, loan_id, meta) = client_request(&app, path, &headers, PROLONGATIONS, &body)?;
    let req: ProlongationRequest = parse_body(&body)?;
    send(
        &app,
        meta,
        client,
        loan_id,
        loan::Command::ExtendTerm { months: req.months },
        serde_json::json!({}),
    )
    .await
}

/// The last day an operator may close: yesterday in Moscow, so `through` is at most today;
/// with simulated days any day.
fn check_closable(through: Date, simulated: bool, now: OffsetDateTime) -> Result<(), ApiError> {
    let today = now.to_offset(etr_domain::limits::MOSCOW).date();
    if !simulated && through > today {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "day_not_ended",
            format!("the days before {through} have not all ended in Moscow (today is {today})"),
        ));
    }
    Ok(())
}

crate::api::action_operations! {
    dispatch: operator_action, path: (Uuid, Uuid), routes: operator_routes,
    params: (("client_id" = Uuid, Path), ("loan_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses: [(status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)];
    /// Stops interest and penalty accrual (a court case, a client's death, …). 422
    /// `invalid_transition` if stopped already or the loan is closed.
    stop_accrual: "stop-accrual", "/v1/operator/clients/{client_id}/loans/{loan_id}/stop-accrual", ReasonRequest, (status = 200, body = crate::api::CommandResponse);
    /// Resumes a stopped accrual. 422 `invalid_transition` if it is running.
    resume_accrual: "resume-accrual", "/v1/operator/clients/{client_id}/loans/{loan_id}/resume-accrual", ReasonRequest, (status = 200, body = crate::api::CommandResponse);
    /// Writes the loan's debt off and closes it.
    write_off: "write-off", "/v1/operator/clients/{client_id}/loans/{loan_id}/write-off", ReasonRequest, (status = 200, body = crate::api::CommandResponse);
    /// Closes the loan's days through a date (the end-of-day accrual, when days are run by
    /// hand). 422 `day_not_ended`.
    close_days: "close-days", "/v1/operator/clients/{client_id}/loans/{loan_id}/close-days", CloseDaysRequest, (status = 200, body = crate::api::CommandResponse);
}

/// An operator's action on a loan, by name (the operations above); `200` with the events.
///
/// Errors: 400 `missing_field`, `invalid_date`, a body code; 401; 403 not an operator; 404
/// `loan_not_found`; 422 `day_not_ended`, `invalid_transition` (stopping a stopped accrual,
/// resuming a running one, a closed loan), `invalid_command` (a blank reason).
async fn operator_action(
    AxumState(app): AxumState<Arc<App>>,
    _uri: axum::http::Uri,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    action: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, loan_id) = path_ids(path)?;
    let client = ClientId(client);
    let actor = crate::lending::operator(&app, &headers)?;
    let meta = crate::lending::meta(
        &headers,
        client,
        actor,
        OPERATOR,
        &[&client.to_string(), &loan_id.to_string(), action],
        &body,
    )?;
    let reason = || parse_body::<ReasonRequest>(&body).map(|r| r.reason);
    let command = match action {
        "stop-accrual" => loan::Command::StopAccrual { reason: reason()? },
        "resume-accrual" => loan::Command::ResumeAccrual { reason: reason()? },
        "write-off" => loan::Command::WriteOff { reason: reason()? },
        "close-days" => {
            let text = parse_body::<CloseDaysRequest>(&body)?.through;
            let through = Date::parse(&text, &time::format_description::well_known::Iso8601::DATE)
                .map_err(|_| {
                    ApiError::bad_request("invalid_date", "through: expected YYYY-MM-DD")
                })?;
            check_closable(through, app.simulated_days, OffsetDateTime::now_utc())?;
            loan::Command::CloseDays { through }
        }
        other => {
            return Err(ApiError::bad_request(
                "unknown_action",
                format!("`{other}` is not stop-accrual, resume-accrual, write-off or close-days"),
            ))
        }
    };
    send(&app, meta, client, loan_id, command, serde_json::json!({})).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn a_day_closes_only_once_it_has_ended_in_moscow() {
        // 22:30 UTC is 01:30 the next day in Moscow.
        let now = datetime!(2026-12-01 22:30 UTC);
        assert!(check_closable(date!(2026 - 12 - 02), false, now).is_ok());
        assert!(check_closable(date!(2026 - 12 - 03), false, now).is_err());
        assert!(check_closable(date!(2027 - 01 - 03), true, now).is_ok());
    }
}
