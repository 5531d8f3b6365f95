//! The loan conveyor over REST (seed 000, 6.8.2 partner facade and the client's own flow):
//! register a client, create and submit an application, read its status and offers, choose
//! an offer, receive and enter the signing code, bind a card, confirm the goods handed over,
//! cancel; operators resolve referrals and block clients.
//!
//! - `/v1/partner/…` takes a partner token; a partner sees only the applications it created.
//! - `/v1/me/…` takes a client token; the client is the token's subject.
//! - `/v1/operator/…` takes an operator token.
//!
//! Every POST takes an `Idempotency-Key`; a repeated key answers the first response. Input is
//! parsed once into the domain's newtypes (`Inn`, `Snils`, `PassportNumber`, `PhoneE164`,
//! `Email`, `Money`) and refused with a 400 and a code otherwise. Personal data is sealed
//! with the client's key before the command is built: it never reaches the log in clear.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use etr_domain::application::{self, Application, CartItem};
use etr_domain::identity::{Email, Inn, PassportNumber, PhoneE164, Snils};
use etr_domain::ids::client_command_id;
use etr_domain::otp::Verification;
use etr_domain::personal::{Employment, Guarantor, Passport, PersonalData};
use etr_domain::{client, Actor, AggregateRef, ClientId, Command, Money, State};
use etr_infra::auth::Role;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::{Date, OffsetDateTime};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{
    correlation_id, idempotency_key, outcome_response, parse_body, path_ids, viewer, ApiError, App,
};
use crate::handler::{request_fingerprint, Meta};

pub(crate) const PARTNER_CLIENTS: &str = "/v1/partner/clients";
pub(crate) const PARTNER_APPLICATIONS: &str = "/v1/partner/applications";
pub(crate) const ME_REGISTRATION: &str = "/v1/me/registration";
pub(crate) const ME_APPLICATIONS: &str = "/v1/me/applications";
pub(crate) const REVIEW: &str = "/v1/operator/applications/{application_id}/review";
pub(crate) const BLOCK: &str = "/v1/operator/clients/{client_id}/block";
pub(crate) const UNBLOCK: &str = "/v1/operator/clients/{client_id}/unblock";
pub(crate) const ERASE: &str = "/v1/operator/clients/{client_id}/erase";
pub(crate) const TAGS: &str = "/v1/operator/clients/{client_id}/tags";
pub(crate) const UNTAG: &str = "/v1/operator/clients/{client_id}/tags/{tag}/remove";
pub(crate) const SEARCH: &str = "/v1/operator/clients";
pub(crate) const PARTNER_DOCUMENTS: &str = "/v1/partner/clients/{client_id}/documents";
pub(crate) const ME_DOCUMENTS: &str = "/v1/me/documents";
pub(crate) const ME_PERSONAL_DATA: &str = "/v1/me/personal-data";
pub(crate) const PARTNER_PERSONAL_DATA: &str = "/v1/partner/clients/{client_id}/personal-data";

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<App>> {
    let mut router = Router::new()
        .route(PARTNER_CLIENTS, post(register_by_partner))
        .route(ME_REGISTRATION, post(register_self))
        .route(REVIEW, post(review))
        .route(BLOCK, post(block))
        .route(UNBLOCK, post(unblock))
        .route(ERASE, post(erase))
        .route(TAGS, post(tag))
        .route(UNTAG, post(untag))
        .route(SEARCH, get(search))
        .route(PARTNER_DOCUMENTS, post(partner_document))
        .route(ME_DOCUMENTS, post(my_document))
        .route(ME_PERSONAL_DATA, post(change_my_personal_data))
        .route(PARTNER_PERSONAL_DATA, post(change_personal_data_by_partner));
    for base in [PARTNER_APPLICATIONS, ME_APPLICATIONS] {
        router = router
            .route(base, post(create_application))
            .route(&format!("{base}/{{application_id}}"), get(get_application))
            .route(&format!("{base}/{{application_id}}/cart"), get(get_cart));
        router = action_routes(router, &format!("{base}/{{application_id}}"));
    }
    router
}

// ---- callers -------------------------------------------------------------------------------

/// Who calls, from the token and the route's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Caller {
    Partner(String),
    Client(ClientId),
}

impl Caller {
    fn actor(&self) -> Actor {
        match self {
            Caller::Partner(id) => Actor {
                kind: "partner".into(),
                id: id.clone(),
            },
            Caller::Client(c) => Actor::client(*c),
        }
    }

    fn channel(&self) -> &'static str {
        match self {
            Caller::Partner(_) => "partner",
            Caller::Client(_) => "web",
        }
    }
}

fn caller(app: &App, headers: &HeaderMap, partner_route: bool) -> Result<Caller, ApiError> {
    let v = viewer(&app.keys, headers)?;
    match (partner_route, v.role, v.client) {
        (true, Role::Partner, _) => Ok(Caller::Partner(v.sub)),
        (false, Role::Client, Some(c)) => Ok(Caller::Client(ClientId(c))),
        (true, _, _) => Err(ApiError::forbidden("this route takes a partner token")),
        (false, _, _) => Err(ApiError::forbidden("this route takes a client token")),
    }
}

pub(crate) fn operator(app: &App, headers: &HeaderMap) -> Result<Actor, ApiError> {
    let v = viewer(&app.keys, headers)?;
    if v.role != Role::Operator {
        return Err(ApiError::forbidden("this route takes an operator token"));
    }
    Ok(Actor {
        kind: "operator".into(),
        id: v.sub,
    })
}

pub(crate) fn meta(
    headers: &HeaderMap,
    client: ClientId,
    actor: Actor,
    route: &str,
    path_params: &[&str],
    body: &[u8],
) -> Result<Meta, ApiError> {
    let key = idempotency_key(headers)?;
    let correlation_id = correlation_id(headers, &key);
    Ok(Meta {
        command_id: client_command_id(client, &key),
        correlation_id,
        actor,
        request_hash: request_fingerprint("POST", route, path_params, body),
    })
}

pub(crate) fn minted(meta: &Meta, label: &str) -> Uuid {
    etr_domain::ids::derived_id(
        Uuid::new_v5(&Uuid::NAMESPACE_OID, meta.command_id.as_bytes()),
        label,
    )
}

pub(crate) fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "lending request failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "the platform could not complete the request; retry with the same Idempotency-Key",
    )
}

/// A malformed identifier is refused with 400; a well-formed one that cannot be valid — a
/// wrong INN or SNILS check digit, a passport series or number of zeros — with 422.
fn identity_error(field: &str, e: etr_domain::identity::IdentityError) -> ApiError {
    use etr_domain::identity::IdentityError as E;
    let message = format!("{field}: {e}");
    match e {
        E::InnChecksum | E::SnilsChecksum | E::PassportNotIssued => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), message)
        }
        E::InnFormat | E::SnilsFormat | E::PassportFormat | E::PhoneFormat | E::EmailFormat => {
            ApiError::bad_request(e.code(), message)
        }
    }
}

/// An accepted or refused command's response, with the ids the caller needs next.
pub(crate) async fn respond(
    handled: crate::handler::Handled,
    status: StatusCode,
    ids: serde_json::Value,
) -> Response {
    let response = outcome_response(handled, status);
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return internal("reading a response body").into_response();
    };
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return internal("a response body is not JSON").into_response();
    };
    // A refusal names nothing the command would have created.
    if !parts.status.is_success() {
        return (parts, Json(value)).into_response();
    }
    // The ids are added beside the command response's own fields, never over one (a
    // `status` of the request must not replace the command's `status`).
    if let (Some(map), serde_json::Value::Object(extra)) = (value.as_object_mut(), ids) {
        for (k, v) in extra {
            map.entry(k).or_insert(v);
        }
    }
    (parts, Json(value)).into_response()
}

// ---- registration ------------------------------------------------------------------------

/// A passport as the client gives it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PassportInput {
    /// Series and number, 10 digits, spaces allowed, e.g. "4510 123456"; a series or number
    /// of zeros only is refused with 422 `passport_not_issued`.
    #[schema(extensions(("x-text" = json!("passport"))))]
    pub number: String,
    /// ISO date, `YYYY-MM-DD`.
    #[schema(extensions(("x-text" = json!("date"))))]
    pub issued_on: String,
    /// "NNN-NNN".
    #[schema(pattern = r"^[0-9]{3}-[0-9]{3}$")]
    pub department_code: String,
    /// 1–100 characters, not blank.
    #[schema(max_length = 100, extensions(("x-text" = json!("not-blank"))))]
    pub issued_by: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmploymentInput {
    pub employer: String,
    pub position: String,
    pub months_employed: u32,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GuarantorInput {
    /// 1–100 characters, not blank.
    #[schema(max_length = 100, extensions(("x-text" = json!("not-blank"))))]
    pub full_name: String,
    #[schema(extensions(("x-text" = json!("phone"))))]
    pub phone: String,
    pub relation: String,
}

/// A client's personal data. Identifiers are checked (INN and SNILS check digits, passport
/// series and number, E.164 phone); each refusal has its own code.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRequest {
    /// 1–100 characters, not blank.
    #[schema(max_length = 100, extensions(("x-text" = json!("not-blank"))))]
    pub last_name: String,
    /// 1–100 characters, not blank.
    #[schema(max_length = 100, extensions(("x-text" = json!("not-blank"))))]
    pub first_name: String,
    /// At most 100 characters; blank means none.
    #[schema(max_length = 100)]
    pub middle_name: Option<String>,
    /// ISO date, e.g. "1990-04-12"; a date in the future or more than 120 years ago is
    /// refused with 422 `invalid_birth_date`.
    #[schema(extensions(("x-text" = json!("date"))))]
    pub birth_date: String,
    /// "+79161234567" or "89161234567".
    #[schema(extensions(("x-text" = json!("phone"))))]
    pub phone: String,
    /// E-mail address, e.g. "client@example.com": at most 254 characters, one `@`; a domain
    /// of dot-separated labels (internationalised domains as written). 400 `email_format`.
    #[schema(max_length = 254, extensions(("x-text" = json!("email"))))]
    pub email: Option<String>,
    pub passport: Option<PassportInput>,
    /// 11 digits, with or without separators; a wrong check number is refused with 422
    /// `snils_checksum`.
    #[schema(extensions(("x-text" = json!("snils"))))]
    pub snils: Option<String>,
    /// 12 digits for a person (10 for an organisation); wrong check digits are refused with
    /// 422 `inn_checksum`.
    #[schema(extensions(("x-text" = json!("inn"))))]
    pub inn: Option<String>,
    pub registration_address: Option<String>,
    pub employment: Option<EmploymentInput>,
    /// Average monthly income, decimal string in roubles, e.g. "85000.00".
    #[schema(extensions(("x-text" = json!("amount"))))]
    pub monthly_income: Option<String>,
    #[serde(default)]
    pub guarantors: Vec<GuarantorInput>,
}

/// A calendar date written `YYYY-MM-DD` exactly. Errors: 400 `invalid_date`.
pub(crate) fn date(field: &str, text: &str) -> Result<Date, ApiError> {
    let refuse = || ApiError::bad_request("invalid_date", format!("{field}: expected YYYY-MM-DD"));
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return Err(refuse());
    }
    let number =
        |range: std::ops::Range<usize>| text.get(range).and_then(|t| t.parse::<u16>().ok());
    let (Some(year), Some(month), Some(day)) = (number(0..4), number(5..7), number(8..10)) else {
        return Err(refuse());
    };
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| time::Month::try_from(m).ok())
        .ok_or_else(refuse)?;
    let day = u8::try_from(day).map_err(|_| refuse())?;
    Date::from_calendar_date(i32::from(year), month, day).map_err(|_| refuse())
}

/// A name: 1–100 characters, not blank; kept trimmed. Errors: 400 `invalid_name`.
fn name(field: &str, text: &str) -> Result<String, ApiError> {
    let t = text.trim();
    if t.is_empty() || text.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_name",
            format!("{field}: 1–100 characters"),
        ));
    }
    Ok(t.to_owned())
}

/// Parses the request into [`PersonalData`] (the edge: once, into newtypes).
pub(crate) fn personal_data(
    req: RegistrationRequest,
    today: Date,
) -> Result<PersonalData, ApiError> {
    let birth_date = date("birth_date", &req.birth_date)?;
    if birth_date > today || today.year() - birth_date.year() > 120 {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_birth_date",
            "birth_date must be a past date within 120 years",
        ));
    }
    let passport = req
        .passport
        .map(|p| -> Result<Passport, ApiError> {
            let department_ok = p.department_code.len() == 7
                && p.department_code.bytes().enumerate().all(|(i, b)| {
                    if i == 3 {
                        b == b'-'
                    } else {
                        b.is_ascii_digit()
                    }
                });
            if !department_ok {
                return Err(ApiError::bad_request(
                    "department_code_format",
                    "passport.department_code: expected NNN-NNN",
                ));
            }
            Ok(Passport {
                number: PassportNumber::parse(&p.number)
                    .map_err(|e| identity_error("passport.number", e))?,
                issued_on: date("passport.issued_on", &p.issued_on)?,
                department_code: p.department_code,
                issued_by: name("passport.issued_by", &p.issued_by)?,
            })
        })
        .transpose()?;
    let monthly_income = req
        .monthly_income
        .map(|i| Money::parse_positive(&i, "RUB").map(|m| m.amount))
        .transpose()
        .map_err(|e| {
            ApiError::bad_request(
                etr_domain::Error::Money(e.clone()).code(),
                format!("monthly_income: {e}"),
            )
        })?;
    Ok(PersonalData {
        last_name: name("last_name", &req.last_name)?,
        first_name: name("first_name", &req.first_name)?,
        middle_name: match req.middle_name {
            Some(m) if m.chars().count() > 100 => {
                return Err(ApiError::bad_request(
                    "invalid_name",
                    "middle_name: at most 100 characters",
                ))
            }
            Some(m) if !m.trim().is_empty() => Some(name("middle_name", &m)?),
            _ => None,
        },
        birth_date,
        phone: PhoneE164::parse(&req.phone).map_err(|e| identity_error("phone", e))?,
        email: req
            .email
            .map(|e| Email::parse(&e))
            .transpose()
            .map_err(|e| identity_error("email", e))?,
        passport,
        snils: req
            .snils
            .map(|s| Snils::parse(&s))
            .transpose()
            .map_err(|e| identity_error("snils", e))?,
        inn: req
            .inn
            .map(|s| Inn::parse(&s))
            .transpose()
            .map_err(|e| identity_error("inn", e))?,
        registration_address: req.registration_address.filter(|a| !a.trim().is_empty()),
        employment: req.employment.map(|e| Employment {
            employer: e.employer,
            position: e.position,
            months_employed: e.months_employed,
        }),
        monthly_income,
        guarantors: req
            .guarantors
            .into_iter()
            .map(|g| {
                Ok(Guarantor {
                    full_name: name("guarantors.full_name", &g.full_name)?,
                    phone: PhoneE164::parse(&g.phone)
                        .map_err(|e| identity_error("guarantors.phone", e))?,
                    relation: g.relation,
                })
            })
            .collect::<Result<_, ApiError>>()?,
    })
}

async fn register(
    app: &App,
    headers: &HeaderMap,
    client: ClientId,
    actor: Actor,
    registered_by: String,
    route: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    let meta = meta(headers, client, actor, route, &[], body)?;
    let req: RegistrationRequest = parse_body(body)?;
    let data = personal_data(req, OffsetDateTime::now_utc().date())?;
    let personal = app.vault.seal(client, &data).await.map_err(internal)?;
    let handled = app
        .handler
        .handle(
            meta,
            Command::Client {
                client_id: client,
                command: client::Command::RegisterClient {
                    personal,
                    registered_by,
                },
            },
        )
        .await?;
    if matches!(handled.outcome, crate::handler::Outcome::Accepted { .. }) {
        app.vault.index(client, &data).await.map_err(internal)?;
    }
    Ok(respond(
        handled,
        StatusCode::CREATED,
        serde_json::json!({ "client_id": client }),
    )
    .await)
}

#[utoipa::path(post, path = "/v1/partner/clients", request_body = RegistrationRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, description = "registered; the body carries `client_id`"), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
async fn register_by_partner(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Caller::Partner(partner) = caller(&app, &headers, true)? else {
        return Err(ApiError::forbidden("this route takes a partner token"));
    };
    let key = idempotency_key(&headers)?;
    // The partner's key names the client: a retry registers the same client.
    let client = ClientId(Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("partner:{partner}/{key}").as_bytes(),
    ));
    let actor = Caller::Partner(partner.clone()).actor();
    register(
        &app,
        &headers,
        client,
        actor,
        partner,
        PARTNER_CLIENTS,
        &body,
    )
    .await
}

#[utoipa::path(post, path = "/v1/me/registration", request_body = RegistrationRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, description = "registered"), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
async fn register_self(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Caller::Client(client) = caller(&app, &headers, false)? else {
        return Err(ApiError::forbidden("this route takes a client token"));
    };
    register(
        &app,
        &headers,
        client,
        Actor::client(client),
        "self".into(),
        ME_REGISTRATION,
        &body,
    )
    .await
}

// ---- applications ------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CartItemInput {
    pub name: String,
    pub quantity: u32,
    /// Price of one item, decimal string.
    pub price: String,
}

/// A new application. A partner names the client; a client applies for itself.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplicationRequest {
    /// Required on partner routes, refused on client routes.
    pub client_id: Option<Uuid>,
    /// Decimal string, roubles.
    pub amount: String,
    /// "RUB".
    pub currency: String,
    /// Days or months, as the product counts them: 1–1000.
    #[schema(minimum = 1, maximum = 1000)]
    pub term: u32,
    pub product_id: Option<String>,
    #[serde(default)]
    pub cart: Vec<CartItemInput>,
    /// Submit at once (default) or keep a draft.
    pub submit: Option<bool>,
}

/// The caller's route prefix: partner routes start with `/v1/partner/`.
fn partner_route(uri: &axum::http::Uri) -> bool {
    uri.path().starts_with("/v1/partner/")
}

#[utoipa::path(post, path = "/v1/partner/applications", request_body = ApplicationRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, description = "created; the body carries `application_id`"), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
async fn create_application(
    AxumState(app): AxumState<Arc<App>>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let partner = partner_route(&uri);
    let caller = caller(&app, &headers, partner)?;
    let req: ApplicationRequest = parse_body(&body)?;
    let client = match (&caller, req.client_id) {
        (Caller::Partner(_), Some(c)) => ClientId(c),
        (Caller::Partner(_), None) => {
            return Err(ApiError::bad_request(
                "missing_field",
                "client_id is required on partner routes",
            ))
        }
        (Caller::Client(c), None) => *c,
        (Caller::Client(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "unknown_field",
                "client_id is given by the token on client routes",
            ))
        }
    };
    let route = if partner {
        PARTNER_APPLICATIONS
    } else {
        ME_APPLICATIONS
    };
    let meta = meta(&headers, client, caller.actor(), route, &[], &body)?;
    let requested = Money::parse_positive(&req.amount, &req.currency)?;
    if req.term == 0 || req.term > 1_000 {
        return Err(ApiError::bad_request("invalid_term", "term must be 1–1000"));
    }
    let cart = req
        .cart
        .into_iter()
        .map(|item| {
            Ok(CartItem {
                name: name("cart.name", &item.name)?,
                quantity: item.quantity,
                price: Money::parse_positive(&item.price, &req.currency)?,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let application_id = minted(&meta, "application");
    let partner_id = match &caller {
        Caller::Partner(p) => Some(p.clone()),
        Caller::Client(_) => None,
    };
    sqlx::query(
        "INSERT INTO application_routes (application_id, client_id, partner_id) VALUES ($1, $2, $3) \
         ON CONFLICT (application_id) DO NOTHING",
    )
    .bind(application_id)
    .bind(client.0)
    .bind(&partner_id)
    .execute(&app.pool)
    .await
    .map_err(internal)?;
    let handled = app
        .handler
        .handle(
            meta,
            Command::Application {
                client_id: client,
                application_id,
                command: application::Command::CreateApplication {
                    product_id: req.product_id,
                    requested,
                    term: req.term,
                    partner_id,
                    channel: caller.channel().into(),
                    cart,
                    submit: req.submit.unwrap_or(true),
                },
            },
        )
        .await?;
    Ok(respond(
        handled,
        StatusCode::CREATED,
        serde_json::json!({ "application_id": application_id, "client_id": client }),
    )
    .await)
}

/// The application's client, once the caller may see it. Errors: 404 `application_not_found`
/// (also for an application of another partner or client).
async fn route_of(app: &App, caller: &Caller, id: Uuid) -> Result<ClientId, ApiError> {
    let row: Option<(Uuid, Option<String>)> = sqlx::query_as(
        "SELECT client_id, partner_id FROM application_routes WHERE application_id = $1",
    )
    .bind(id)
    .fetch_optional(&app.pool)
    .await
    .map_err(internal)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "application_not_found",
            format!("application {id} does not exist"),
        )
    };
    let (client, partner) = row.ok_or_else(not_found)?;
    let allowed = match caller {
        Caller::Partner(p) => partner.as_deref() == Some(p.as_str()),
        Caller::Client(c) => c.0 == client,
    };
    if !allowed {
        return Err(not_found());
    }
    Ok(ClientId(client))
}

async fn application_state(app: &App, id: Uuid) -> Result<Application, ApiError> {
    match app
        .handler
        .committed_state(AggregateRef::application(id))
        .await?
    {
        Some(State::Application(a)) => Ok(*a),
        _ => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "application_not_found",
            format!("application {id} does not exist"),
        )),
    }
}

/// An application as its partner or client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApplicationView {
    pub application_id: Uuid,
    pub client_id: Option<Uuid>,
    /// draft, submitted, identified, checked, manual_review, approved, offer_chosen,
    /// contract_generated, signed, card_binding, card_bound, disbursed, declined, cancelled,
    /// expired, failed.
    pub status: String,
    /// Where the conveyor's run stands: identification, legal_checks, scoring,
    /// awaiting_operator, awaiting_offer_choice, contract_generation, awaiting_signature,
    /// awaiting_card, card_binding, disbursement, done, parked.
    pub process_step: Option<String>,
    /// Until when an approval waits for the signature (RFC 3339).
    pub expires_at: Option<String>,
    /// The offers with their schedules and PSK (as the domain serialises them; amounts are
    /// decimal strings).
    #[schema(value_type = Object)]
    pub offers: serde_json::Value,
    pub chosen_offer_id: Option<Uuid>,
    /// SHA-256 (hex) of the contract the client signs, once generated.
    pub contract_sha256: Option<String>,
    pub signed: bool,
    pub card_masked_pan: Option<String>,
    pub loan_id: Option<Uuid>,
    pub score: Option<u32>,
    /// PDN in percent with 1 decimal.
    pub pdn_percent: Option<String>,
    pub reasons: Vec<String>,
}

async fn view(app: &App, a: &Application) -> Result<ApplicationView, ApiError> {
    let step: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT state FROM process_instances WHERE process = $1 AND instance_id = $2",
    )
    .bind(etr_domain::conveyor::PROCESS)
    .bind(a.id)
    .fetch_optional(&app.pool)
    .await
    .map_err(internal)?;
    let process_step = step
        .and_then(|s| serde_json::from_value::<etr_domain::conveyor::State>(s).ok())
        .map(|s| s.stage.label().to_owned());
    Ok(ApplicationView {
        application_id: a.id,
        client_id: a.client_id.map(|c| c.0),
        status: a.status.label().into(),
        process_step,
        expires_at: a.expires_at.and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        }),
        offers: serde_json::to_value(&a.offers).map_err(internal)?,
        chosen_offer_id: a.chosen_offer,
        contract_sha256: a.contract.as_ref().map(|c| c.document_sha256.clone()),
        signed: a.signed,
        card_masked_pan: a.card.as_ref().map(|c| c.masked_pan.clone()),
        loan_id: a.loan_id,
        score: a.score,
        pdn_percent: a.pdn_percent.map(|p| p.to_string()),
        reasons: a.reasons.clone(),
    })
}

#[utoipa::path(get, path = "/v1/partner/applications/{application_id}",
    params(("application_id" = Uuid, Path)),
    responses((status = 200, body = ApplicationView), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
async fn get_application(
    AxumState(app): AxumState<Arc<App>>,
    uri: axum::http::Uri,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&app, &headers, partner_route(&uri))?;
    let id = path_ids(path)?;
    route_of(&app, &caller, id).await?;
    let a = application_state(&app, id).await?;
    Ok(Json(view(&app, &a).await?).into_response())
}

#[utoipa::path(get, path = "/v1/partner/applications/{application_id}/cart",
    params(("application_id" = Uuid, Path)),
    responses((status = 200, description = "the cart's items and total"), (status = 401, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
async fn get_cart(
    AxumState(app): AxumState<Arc<App>>,
    uri: axum::http::Uri,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let caller = caller(&app, &headers, partner_route(&uri))?;
    let id = path_ids(path)?;
    route_of(&app, &caller, id).await?;
    let a = application_state(&app, id).await?;
    let total: rust_decimal::Decimal = a
        .cart
        .iter()
        .map(|i| i.price.amount * rust_decimal::Decimal::from(i.quantity))
        .sum();
    Ok(Json(serde_json::json!({
        "application_id": id,
        "items": a.cart,
        "total": format!("{total:.2}"),
        "currency": a.requested.map(|m| m.currency.code()),
    }))
    .into_response())
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChooseOfferRequest {
    pub offer_id: Uuid,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// The code from the SMS.
    pub code: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardRequest {
    /// sbc, tinkoff or elecsnet (else 400 `unknown_provider`).
    #[schema(pattern = "^(?:sbc|tinkoff|elecsnet)$")]
    pub provider: String,
    /// The token the provider's card form returned (never the card number): 1–200
    /// characters, not blank (else 400 `invalid_card_token`).
    #[schema(max_length = 200, extensions(("x-text" = json!("not-blank"))))]
    pub card_token: String,
    /// First six and last four digits, e.g. "220220******1234" (else 400
    /// `masked_pan_format`).
    #[schema(pattern = "^[0-9]{6}[*]{6}[0-9]{4}$")]
    pub masked_pan: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonRequest {
    /// Why, for the record: not blank (else 422 `invalid_command`).
    #[schema(extensions(("x-text" = json!("not-blank"))))]
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmptyRequest {}

const PROVIDERS: [&str; 3] = ["sbc", "tinkoff", "elecsnet"];

fn masked_pan_ok(pan: &str) -> bool {
    let b = pan.as_bytes();
    b.len() == 16
        && b[..6].iter().all(u8::is_ascii_digit)
        && b[6..12].iter().all(|c| *c == b'*')
        && b[12..].iter().all(u8::is_ascii_digit)
}

/// The signing code's purpose: bound to the application and the document's hash, so a code
/// sent for one document never signs another.
fn signing_purpose(id: Uuid, sha256: &str) -> String {
    format!("sign:{id}:{sha256}")
}

crate::api::action_operations! {
    dispatch: act, path: Uuid, routes: action_routes,
    params: (("application_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses: [(status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse), (status = 429, body = crate::api::ErrorBody)];
    /// Submits the application for scoring. Body `{}`.
    submit_application: "submit", "/v1/partner/applications/{application_id}/submit", EmptyRequest, (status = 200, body = crate::api::CommandResponse);
    /// Chooses one of the offers the scoring made.
    choose_offer: "offer", "/v1/partner/applications/{application_id}/offer", ChooseOfferRequest, (status = 200, body = crate::api::CommandResponse);
    /// Sends the contract-signing code by SMS to the client's phone. Body `{}`.
    send_signing_code: "otp", "/v1/partner/applications/{application_id}/otp", EmptyRequest, (status = 202, description = "The code was sent.");
    /// Signs the contract with the code from the SMS (a simple electronic signature).
    sign_contract: "sign", "/v1/partner/applications/{application_id}/sign", SignRequest, (status = 200, body = crate::api::CommandResponse);
    /// Binds the card the loan is paid out to (a provider's token, never the card number).
    bind_card: "card", "/v1/partner/applications/{application_id}/card", CardRequest, (status = 200, body = crate::api::CommandResponse);
    /// Confirms the goods were handed over to the client (a goods loan). Body `{}`.
    confirm_goods_handed_over: "goods-handed-over", "/v1/partner/applications/{application_id}/goods-handed-over", EmptyRequest, (status = 200, body = crate::api::CommandResponse);
    /// Cancels the application.
    cancel_application: "cancel", "/v1/partner/applications/{application_id}/cancel", ReasonRequest, (status = 200, body = crate::api::CommandResponse);
}

/// An application action, by name (the operations above), under `/v1/partner/applications`
/// with a partner's token or `/v1/me/applications` with the client's.
async fn act(
    AxumState(app): AxumState<Arc<App>>,
    uri: axum::http::Uri,
    path: Result<Path<Uuid>, PathRejection>,
    action: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let partner = partner_route(&uri);
    let caller = caller(&app, &headers, partner)?;
    let id = path_ids(path)?;
    let client = route_of(&app, &caller, id).await?;
    let route = format!(
        "{}/{{application_id}}/{action}",
        if partner {
            PARTNER_APPLICATIONS
        } else {
            ME_APPLICATIONS
        }
    );
    let meta = meta(
        &headers,
        client,
        caller.actor(),
        &route,
        &[&id.to_string()],
        &body,
    )?;
    let command = match action {
        "submit" => {
            let _: EmptyRequest = parse_body(&body)?;
            application::Command::SubmitApplication
        }
        "offer" => {
            let req: ChooseOfferRequest = parse_body(&body)?;
            application::Command::ChooseOffer {
                offer_id: req.offer_id,
            }
        }
        "goods-handed-over" => {
            let _: EmptyRequest = parse_body(&body)?;
            application::Command::ConfirmGoodsHandedOver
        }
        "cancel" => {
            let req: ReasonRequest = parse_body(&body)?;
            application::Command::CancelApplication { reason: req.reason }
        }
        "card" => {
            let req: CardRequest = parse_body(&body)?;
            if !PROVIDERS.contains(&req.provider.as_str()) {
                return Err(ApiError::bad_request(
                    "unknown_provider",
                    format!("provider must be one of {}", PROVIDERS.join(", ")),
                ));
            }
            if !masked_pan_ok(&req.masked_pan) {
                return Err(ApiError::bad_request(
                    "masked_pan_format",
                    "masked_pan: six digits, six asterisks, four digits",
                ));
            }
            if req.card_token.trim().is_empty() || req.card_token.chars().count() > 200 {
                return Err(ApiError::bad_request(
                    "invalid_card_token",
                    "card_token: 1–200 characters",
                ));
            }
            application::Command::BindCard {
                binding_id: minted(&meta, "card-binding"),
                provider: req.provider,
                card_token: req.card_token,
                masked_pan: req.masked_pan,
            }
        }
        "otp" => {
            let _: EmptyRequest = parse_body(&body)?;
            return send_code(&app, client, id).await;
        }
        "sign" => {
            let req: SignRequest = parse_body(&body)?;
            // A repeated request answers its first outcome (the code is spent by then).
            if let Some(outcome) = app.handler.recorded_outcome(&meta.command_id).await? {
                return Ok(outcome_response(
                    crate::handler::Handled {
                        outcome,
                        replayed: true,
                    },
                    StatusCode::OK,
                ));
            }
            let a = application_state(&app, id).await?;
            let Some(contract) = a.contract.as_ref() else {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_contract",
                    "the contract has not been generated yet",
                ));
            };
            let purpose = signing_purpose(id, &contract.document_sha256);
            verify_client_code(&app, client, &purpose, &req.code, &meta.command_id).await?;
            application::Command::SignContract {
                document_sha256: contract.document_sha256.clone(),
                otp_purpose: purpose,
            }
        }
        other => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!(
                "no action `{other}`: submit, offer, otp, sign, card, goods-handed-over, cancel"
            ),
            ))
        }
    };
    let signature = match &command {
        application::Command::SignContract {
            document_sha256,
            otp_purpose,
        } => Some(serde_json::json!({
            "application_id": id,
            "client_id": client,
            "document_sha256": document_sha256,
            "signature": "simple electronic signature: a one-time code sent by SMS, verified",
            "otp_purpose": otp_purpose,
            "command_id": meta.command_id,
            "signed_by": caller.actor(),
            "signed_at": OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
        })),
        _ => None,
    };
    let handled = app
        .handler
        .handle(
            meta,
            Command::Application {
                client_id: client,
                application_id: id,
                command,
            },
        )
        .await?;
    // The signed agreement: the signature record is stored next to the document it signs.
    if let (Some(record), crate::handler::Outcome::Accepted { .. }) = (signature, &handled.outcome)
    {
        let sha = record["document_sha256"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        app.documents
            .put(
                &format!("{}.signature.json", etr_documents::agreement_key(id, &sha)),
                serde_json::to_vec_pretty(&record).map_err(internal)?,
            )
            .await
            .map_err(internal)?;
    }
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "application_id": id }),
    )
    .await)
}

/// Sends a one-time code for `purpose` to the client's phone (from its sealed personal data)
/// and answers the phone number masked, e.g. `+799***67`.
///
/// Errors: `no_personal_data` (no phone on record), `personal_data_erased`, the OTP rules'
/// refusals (429), `sms_failed`.
pub(crate) async fn send_client_code(
    app: &App,
    client: ClientId,
    purpose: &str,
) -> Result<String, ApiError> {
    let personal = match app
        .handler
        .committed_state(AggregateRef::client(client))
        .await?
    {
        Some(State::Client(c)) => c.personal,
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_personal_data",
            "the client has no phone on record",
        )
    })?;
    let data = app
        .vault
        .open(client, &personal)
        .await
        .map_err(|e| match e {
            etr_infra::Error::Erased(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "personal_data_erased",
                "the client's personal data was erased",
            ),
            other => internal(other),
        })?;
    app.otp
        .send(client, purpose, &data.phone, OffsetDateTime::now_utc())
        .await
        .map_err(|e| match e {
            crate::otp::Error::Rule(rule) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, rule.code(), rule.to_string())
            }
            crate::otp::Error::Sms(reason) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sms_failed",
                format!("the SMS gateway refused: {reason}"),
            ),
            other => internal(other),
        })?;
    let phone = data.phone.as_str();
    Ok(format!(
        "{}***{}",
        &phone[..phone.len().min(4)],
        &phone[phone.len().saturating_sub(2)..]
    ))
}

/// Checks the client's `code` for `purpose`: `Ok` when it is right, else the refusal
/// (`otp_not_sent`, `otp_wrong` with the attempts left, `otp_locked_out` 429, `otp_expired`,
/// `otp_used`). The code is spent by `command_id`: the same command sent again verifies
/// again, so a retry after a crash between spending the code and committing the command
/// still goes through.
pub(crate) async fn verify_client_code(
    app: &App,
    client: ClientId,
    purpose: &str,
    code: &str,
    command_id: &str,
) -> Result<(), ApiError> {
    let verification = app
        .otp
        .verify(
            client,
            purpose,
            code.trim(),
            command_id,
            OffsetDateTime::now_utc(),
        )
        .await
        .map_err(|e| match e {
            crate::otp::Error::NotSent(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "otp_not_sent",
                "no code was sent for this",
            ),
            other => internal(other),
        })?;
    match verification {
        Verification::Verified => Ok(()),
        Verification::Wrong { attempts_left } => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "otp_wrong",
            format!("wrong code; {attempts_left} attempts left"),
        )),
        Verification::LockedOut { until } => Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "otp_locked_out",
            format!("too many wrong codes; locked until {until}"),
        )),
        Verification::Expired => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "otp_expired",
            "the code expired; request a new one",
        )),
        Verification::AlreadyUsed => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "otp_used",
            "the code was already used; request a new one",
        )),
    }
}

/// Sends the signing code to the client's phone (from its sealed personal data).
async fn send_code(app: &App, client: ClientId, id: Uuid) -> Result<Response, ApiError> {
    let a = application_state(app, id).await?;
    let Some(contract) = a
        .contract
        .as_ref()
        .filter(|_| a.status == application::Status::ContractGenerated)
    else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_contract",
            format!(
                "a signing code is sent once the contract is generated; the application is {}",
                a.status.label()
            ),
        ));
    };
    let purpose = signing_purpose(id, &contract.document_sha256);
    let masked = send_client_code(app, client, &purpose).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({
            "status": "sent",
            "application_id": id,
            "sent_to": masked,
            "document_sha256": contract.document_sha256,
        })),
    )
        .into_response())
}

// ---- operators ---------------------------------------------------------------------------

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewRequest {
    pub approve: bool,
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/operator/applications/{application_id}/review", request_body = ReviewRequest,
    params(("application_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
async fn review(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let id = path_ids(path)?;
    let client: Uuid =
        sqlx::query_scalar("SELECT client_id FROM application_routes WHERE application_id = $1")
            .bind(id)
            .fetch_optional(&app.pool)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "application_not_found",
                    format!("application {id} does not exist"),
                )
            })?;
    let client = ClientId(client);
    let operator_id = actor.id.clone();
    let meta = meta(&headers, client, actor, REVIEW, &[&id.to_string()], &body)?;
    let req: ReviewRequest = parse_body(&body)?;
    let handled = app
        .handler
        .handle(
            meta,
            Command::Application {
                client_id: client,
                application_id: id,
                command: application::Command::ResolveReview {
                    approve: req.approve,
                    reason: req.reason.clone(),
                },
            },
        )
        .await?;
    if matches!(handled.outcome, crate::handler::Outcome::Accepted { .. }) {
        sqlx::query(
            "UPDATE operator_tasks SET resolved_at = clock_timestamp(), resolved_by = $2, resolution = $3 \
             WHERE application_id = $1 AND resolved_at IS NULL",
        )
        .bind(id)
        .bind(operator_id)
        .bind(format!(
            "{}: {}",
            if req.approve { "approved" } else { "declined" },
            req.reason
        ))
        .execute(&app.pool)
        .await
        .map_err(internal)?;
    }
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "application_id": id }),
    )
    .await)
}

async fn block_or_unblock(
    app: &App,
    path: Result<Path<Uuid>, PathRejection>,
    headers: &HeaderMap,
    body: &Bytes,
    block: bool,
) -> Result<Response, ApiError> {
    operator(app, headers)?;
    let client = ClientId(path_ids(path)?);
    let command = if block {
        let req: ReasonRequest = parse_body(body)?;
        client::Command::BlockClient { reason: req.reason }
    } else {
        let _: EmptyRequest = parse_body(body)?;
        client::Command::UnblockClient
    };
    let route = if block { BLOCK } else { UNBLOCK };
    let handled = operator_command(
        app,
        headers,
        client,
        route,
        &[&client.to_string()],
        body,
        command,
    )
    .await?;
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "client_id": client }),
    )
    .await)
}

#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/block", request_body = ReasonRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
async fn block(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    block_or_unblock(&app, path, &headers, &body, true).await
}

#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/unblock", request_body = EmptyRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
async fn unblock(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    block_or_unblock(&app, path, &headers, &body, false).await
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TagRequest {
    /// 1–64 characters of a-z, 0-9, _ and -.
    pub tag: String,
    pub reason: String,
}

/// Sends a registry command as an operator; `client` names the partition.
pub(crate) async fn operator_command(
    app: &App,
    headers: &HeaderMap,
    client: ClientId,
    route: &str,
    path_params: &[&str],
    body: &Bytes,
    command: client::Command,
) -> Result<crate::handler::Handled, ApiError> {
    let actor = operator(app, headers)?;
    let meta = meta(headers, client, actor, route, path_params, body)?;
    Ok(app
        .handler
        .handle(
            meta,
            Command::Client {
                client_id: client,
                command,
            },
        )
        .await?)
}

#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/erase", request_body = ReasonRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
async fn erase(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let client = ClientId(path_ids(path)?);
    let req: ReasonRequest = parse_body(&body)?;
    let handled = operator_command(
        &app,
        &headers,
        client,
        ERASE,
        &[&client.to_string()],
        &body,
        client::Command::ErasePersonalData { reason: req.reason },
    )
    .await?;
    // Recorded first, then the key is destroyed; a retry with the same key destroys it
    // again (idempotent) if the process stopped in between.
    if matches!(handled.outcome, crate::handler::Outcome::Accepted { .. }) {
        app.vault.erase(client).await.map_err(internal)?;
    }
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "client_id": client }),
    )
    .await)
}

#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/tags", request_body = TagRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
async fn tag(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let client = ClientId(path_ids(path)?);
    let req: TagRequest = parse_body(&body)?;
    let handled = operator_command(
        &app,
        &headers,
        client,
        TAGS,
        &[&client.to_string()],
        &body,
        client::Command::TagClient {
            tag: req.tag,
            reason: req.reason,
        },
    )
    .await?;
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "client_id": client }),
    )
    .await)
}

#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/tags/{tag}/remove", request_body = ReasonRequest,
    params(("client_id" = Uuid, Path), ("tag" = String, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
async fn untag(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, String)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let (client, tag) = path_ids(path)?;
    let client = ClientId(client);
    let req: ReasonRequest = parse_body(&body)?;
    let handled = operator_command(
        &app,
        &headers,
        client,
        UNTAG,
        &[&client.to_string(), &tag],
        &body,
        client::Command::UntagClient {
            tag: tag.clone(),
            reason: req.reason,
        },
    )
    .await?;
    Ok(respond(
        handled,
        StatusCode::OK,
        serde_json::json!({ "client_id": client }),
    )
    .await)
}

/// The search's query: exactly one criterion, `phone`, `passport`, `inn` or `snils`
/// (`?inn=500100732259`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, max_properties = 1)]
pub struct ClientSearch {
    #[schema(extensions(("x-text" = json!("phone"))))]
    pub phone: Option<String>,
    #[schema(extensions(("x-text" = json!("passport"))))]
    pub passport: Option<String>,
    #[schema(extensions(("x-text" = json!("inn"))))]
    pub inn: Option<String>,
    #[schema(extensions(("x-text" = json!("snils"))))]
    pub snils: Option<String>,
}

/// Clients matching one identifier (by its blind index: the identifier is parsed into its
/// canonical form, keyed-hashed and looked up; nothing is compared in clear). The query is
/// one criterion, written as `?phone=…`, `?passport=…`, `?inn=…` or `?snils=…`.
///
/// Errors: 400 `invalid_query`, `one_criterion`, an identifier's format code; 422
/// `inn_checksum`, `snils_checksum`, `passport_not_issued`.
#[utoipa::path(get, path = "/v1/operator/clients",
    params(("criterion" = ClientSearch, Query, style = Form, explode, description = "Exactly one criterion, each its own query parameter.")),
    responses((status = 200, description = "`{\"client_ids\": [...]}`"), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
async fn search(
    AxumState(app): AxumState<Arc<App>>,
    query: Result<axum::extract::Query<ClientSearch>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use etr_infra::vault::Lookup;
    operator(&app, &headers)?;
    let axum::extract::Query(q) =
        query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let criterion = match (q.phone, q.passport, q.inn, q.snils) {
        (Some(p), None, None, None) => (
            Lookup::Phone,
            PhoneE164::parse(&p)
                .map_err(|e| identity_error("phone", e))?
                .as_str()
                .to_owned(),
        ),
        (None, Some(p), None, None) => (
            Lookup::Passport,
            PassportNumber::parse(&p)
                .map_err(|e| identity_error("passport", e))?
                .as_str()
                .to_owned(),
        ),
        (None, None, Some(i), None) => (
            Lookup::Inn,
            Inn::parse(&i)
                .map_err(|e| identity_error("inn", e))?
                .as_str()
                .to_owned(),
        ),
        (None, None, None, Some(s)) => (
            Lookup::Snils,
            Snils::parse(&s)
                .map_err(|e| identity_error("snils", e))?
                .as_str()
                .to_owned(),
        ),
        _ => {
            return Err(ApiError::bad_request(
                "one_criterion",
                "give exactly one of phone, passport, inn, snils",
            ))
        }
    };
    let found = app
        .vault
        .find(criterion.0, &criterion.1)
        .await
        .map_err(internal)?;
    Ok(Json(serde_json::json!({ "client_ids": found })).into_response())
}

/// A document file (at most what the request body allows: 256 KiB in all).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DocumentRequest {
    /// A configured document type, e.g. `passport_photo`, `selfie`, `income_statement`; the
    /// types, their content types, sizes and numbers are configuration: a document they do
    /// not admit is refused with 422 (`unknown_document_type`, `document_content_type`,
    /// `document_empty`, `document_too_large`, `document_number`).
    pub kind: String,
    /// MIME type, e.g. `image/jpeg`.
    pub content_type: String,
    /// The file, base64 (standard alphabet, padded).
    #[schema(extensions(("x-text" = json!("base64"))))]
    pub content_base64: String,
    /// The document's number, for types that carry one.
    pub number: Option<String>,
}

async fn file_document(
    app: &App,
    headers: &HeaderMap,
    client: ClientId,
    actor: Actor,
    route: &str,
    path_params: &[&str],
    body: &Bytes,
) -> Result<Response, ApiError> {
    use base64::Engine as _;
    let meta = meta(headers, client, actor, route, path_params, body)?;
    let req: DocumentRequest = parse_body(body)?;
    let file = base64::engine::general_purpose::STANDARD
        .decode(req.content_base64.trim())
        .map_err(|e| ApiError::bad_request("invalid_base64", format!("content_base64: {e}")))?;
    let number = app
        .document_rules
        .check(
            &req.kind,
            &req.content_type,
            u64::try_from(file.len()).unwrap_or(u64::MAX),
            req.number.as_deref(),
        )
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    let document_id = minted(&meta, "document");
    let sealed_file = app
        .vault
        .seal_bytes(client, &file)
        .await
        .map_err(|e| match e {
            etr_infra::Error::Erased(_) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "personal_data_erased",
                "the client's personal data was erased",
            ),
            other => internal(other),
        })?;
    let location = app
        .documents
        .put(
            &format!("documents/{client}/{document_id}"),
            serde_json::to_vec(&sealed_file).map_err(internal)?,
        )
        .await
        .map_err(internal)?;
    let number = match number {
        Some(n) => Some(
            app.vault
                .seal_bytes(client, n.as_bytes())
                .await
                .map_err(internal)?,
        ),
        None => None,
    };
    let handled = app
        .handler
        .handle(
            meta,
            Command::Client {
                client_id: client,
                command: client::Command::AddDocument {
                    document: etr_domain::documents::Document {
                        document_id,
                        kind: req.kind,
                        content_type: req.content_type,
                        size_bytes: u64::try_from(file.len()).unwrap_or(u64::MAX),
                        location,
                        number,
                    },
                },
            },
        )
        .await?;
    Ok(respond(
        handled,
        StatusCode::CREATED,
        serde_json::json!({ "client_id": client, "document_id": document_id }),
    )
    .await)
}

/// A partner files a document of a client it registered.
#[utoipa::path(post, path = "/v1/partner/clients/{client_id}/documents", request_body = DocumentRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 201, description = "filed; the body carries `document_id`"), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
async fn partner_document(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caller, client) = registered_client(&app, &headers, path).await?;
    file_document(
        &app,
        &headers,
        client,
        caller.actor(),
        PARTNER_DOCUMENTS,
        &[&client.to_string()],
        &body,
    )
    .await
}

/// A client files one of its own documents.
#[utoipa::path(post, path = "/v1/me/documents", request_body = DocumentRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, description = "filed; the body carries `document_id`"), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
async fn my_document(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let caller = caller(&app, &headers, false)?;
    let Caller::Client(client) = caller else {
        return Err(ApiError::forbidden("this route takes a client token"));
    };
    file_document(
        &app,
        &headers,
        client,
        caller.actor(),
        ME_DOCUMENTS,
        &[],
        &body,
    )
    .await
}

/// Replaces the client's personal data (the whole set, as at registration), sealed again,
/// and its search index. The client's own change is a request (spec §2), approved at once
/// or by an operator as the system setting says; a partner's is recorded directly.
async fn change_personal_data(
    app: &App,
    headers: &HeaderMap,
    client: ClientId,
    actor: Actor,
    route: &str,
    path_params: &[&str],
    body: &Bytes,
) -> Result<Response, ApiError> {
    let as_request = actor.kind == "client";
    let meta = meta(headers, client, actor, route, path_params, body)?;
    let req: RegistrationRequest = parse_body(body)?;
    let data = personal_data(req, OffsetDateTime::now_utc().date())?;
    let personal = app.vault.seal(client, &data).await.map_err(|e| match e {
        etr_infra::Error::Erased(_) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "personal_data_erased",
            "the client's personal data was erased",
        ),
        other => internal(other),
    })?;
    let (command, ids, applies_now) = if as_request {
        let approval = etr_infra::settings::approval(
            &app.pool,
            etr_infra::settings::Setting::PersonalDataChangeApproval,
        )
        .await
        .map_err(internal)?;
        let request_id = minted(&meta, "personal-data-change");
        (
            client::Command::RequestPersonalDataChange {
                request_id,
                personal,
                approval,
            },
            serde_json::json!({
                "client_id": client,
                "request_id": request_id,
                "request_status": match approval {
                    client::Approval::Automatic => "approved",
                    client::Approval::Manual => "submitted",
                },
            }),
            approval == client::Approval::Automatic,
        )
    } else {
        (
            client::Command::ChangePersonalData { personal },
            serde_json::json!({ "client_id": client }),
            true,
        )
    };
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
    if applies_now && matches!(handled.outcome, crate::handler::Outcome::Accepted { .. }) {
        app.vault.index(client, &data).await.map_err(internal)?;
    }
    Ok(respond(handled, StatusCode::OK, ids).await)
}

#[utoipa::path(post, path = "/v1/me/personal-data", request_body = RegistrationRequest,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse, description = "Accepted, with `client_id`, the change's `request_id` and its `request_status`: `approved` (applied now) or `submitted` (waiting for an operator)."), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse)))]
async fn change_my_personal_data(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let Caller::Client(client) = caller(&app, &headers, false)? else {
        return Err(ApiError::forbidden("this route takes a client token"));
    };
    change_personal_data(
        &app,
        &headers,
        client,
        Actor::client(client),
        ME_PERSONAL_DATA,
        &[],
        &body,
    )
    .await
}

#[utoipa::path(post, path = "/v1/partner/clients/{client_id}/personal-data", request_body = RegistrationRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
async fn change_personal_data_by_partner(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (caller, client) = registered_client(&app, &headers, path).await?;
    change_personal_data(
        &app,
        &headers,
        client,
        caller.actor(),
        PARTNER_PERSONAL_DATA,
        &[&client.to_string()],
        &body,
    )
    .await
}

/// The partner calling and the client of the path, when that partner registered the client.
/// Errors: 401 / 403 for the token; 404 `client_not_found` for a client of another partner
/// or none.
async fn registered_client(
    app: &App,
    headers: &HeaderMap,
    path: Result<Path<Uuid>, PathRejection>,
) -> Result<(Caller, ClientId), ApiError> {
    let caller = caller(app, headers, true)?;
    let Caller::Partner(partner) = &caller else {
        return Err(ApiError::forbidden("this route takes a partner token"));
    };
    let client = ClientId(path_ids(path)?);
    let registered_by = match app
        .handler
        .committed_state(AggregateRef::client(client))
        .await?
    {
        Some(State::Client(c)) => c.registered_by,
        _ => None,
    };
    if registered_by.as_deref() != Some(partner.as_str()) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "client_not_found",
            format!("client {client} is not one this partner registered"),
        ));
    }
    Ok((caller, client))
}
