//! The fraud-monitoring rules operators manage (e-wallet spec §8.3), kept in Postgres
//! ([`etr_infra::fraud::store`]) and applied by every API process within a second
//! ([`etr_infra::fraud::Monitor`]):
//!
//! - `GET /v1/operator/fraud-rules` — the rules in force (the built-in defaults, marked
//!   `built_in`, while none is stored);
//! - `POST /v1/operator/fraud-rules` — create a rule (409 `fraud_rule_exists` for a taken id);
//! - `PUT /v1/operator/fraud-rules/{rule_id}` — replace a rule (404 `fraud_rule_not_found`);
//! - `DELETE /v1/operator/fraud-rules/{rule_id}` — delete a rule (204; 404 when there is none).
//!
//! Operator tokens only. A field of the wrong form is answered 400 with its code
//! (`invalid_fraud_rule_id`, `invalid_level`, `invalid_interface_type`, `invalid_key`,
//! `invalid_route_prefix`, `invalid_client_filter`, or a body code of [`crate::body`]); a
//! limit or period out of range or fields that do not go together 422 (`invalid_limit`,
//! `invalid_period`, `client_key_needs_authentication`,
//! `client_filter_needs_authentication`).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use etr_domain::fraud::{self, InterfaceType, Key, Level, RoutePrefix, Rule, RuleError, RuleId};
use etr_infra::fraud::store::{self, StoredRule};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

use crate::api::{parse_body, path_ids, ApiError, App};
use crate::lending::{internal, operator};

pub(crate) const RULES: &str = "/v1/operator/fraud-rules";
pub(crate) const RULE: &str = "/v1/operator/fraud-rules/{rule_id}";

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(RULES, get(list_rules).post(create_rule))
        .route(RULE, axum::routing::put(replace_rule).delete(delete_rule))
}

/// A new rule: requests of `level` (and of `interface_type`, under `route_prefix`, of
/// `client_id`, those given) are counted by `key`; beyond `limit` in `period_secs` they are
/// refused with HTTP 429 and the rule's id as the reason.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFraudRule {
    /// 1–40 characters of a-z, 0-9, _ and -; also the reason a refused request is given.
    #[schema(example = "topups_per_client")]
    pub id: String,
    /// As in [`FraudRuleBody`].
    #[schema(example = "authenticated")]
    pub level: String,
    pub interface_type: Option<String>,
    #[schema(example = "client")]
    pub key: String,
    #[schema(example = 3)]
    pub limit: i64,
    #[schema(example = 60)]
    pub period_secs: i64,
    #[schema(example = "/v1/clients/")]
    pub route_prefix: Option<String>,
    pub client_id: Option<String>,
    pub active: Option<bool>,
}

impl NewFraudRule {
    fn split(self) -> (String, FraudRuleBody) {
        (
            self.id,
            FraudRuleBody {
                level: self.level,
                interface_type: self.interface_type,
                key: self.key,
                limit: self.limit,
                period_secs: self.period_secs,
                route_prefix: self.route_prefix,
                client_id: self.client_id,
                active: self.active,
            },
        )
    }
}

/// A rule's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FraudRuleBody {
    /// `unauthenticated` (no valid bearer token) or `authenticated`.
    #[schema(example = "authenticated")]
    pub level: String,
    /// Only requests whose `X-Interface-Type` is this: `web`, `android`, `ios`, `terminal`,
    /// `partner-api` or `other` (requests without the header); every type when absent.
    #[schema(example = "android")]
    pub interface_type: Option<String>,
    /// What requests are counted by: `ip` (the peer address), `client` (the token's
    /// subject; authenticated only) or `interface` (the interface type).
    #[schema(example = "client")]
    pub key: String,
    /// Requests admitted per period and counter, 1–1,000,000.
    #[schema(example = 3)]
    pub limit: i64,
    /// The period in seconds, 1 (a second) to 86,400 (a day).
    #[schema(example = 60)]
    pub period_secs: i64,
    /// Only requests whose path starts with this (e.g. `/v1/clients/`); every path when
    /// absent.
    #[schema(example = "/v1/clients/")]
    pub route_prefix: Option<String>,
    /// Only requests of this client (the token's subject); authenticated only.
    pub client_id: Option<String>,
    /// Default true; an inactive rule is kept but applies to nothing.
    pub active: Option<bool>,
}

/// A rule as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct FraudRuleView {
    pub id: String,
    pub level: String,
    pub interface_type: Option<String>,
    pub key: String,
    pub limit: u32,
    pub period_secs: u32,
    pub route_prefix: Option<String>,
    pub client_id: Option<String>,
    pub active: bool,
    /// A built-in default, in force only while no rule is stored.
    pub built_in: bool,
    /// 1 when created, one more at every change (0 for built-in rules).
    pub version: i64,
    pub updated_at: Option<String>,
    pub updated_by: Option<String>,
}

fn view(rule: &Rule, stored: Option<&StoredRule>) -> FraudRuleView {
    FraudRuleView {
        id: rule.id.to_string(),
        level: rule.level.as_str().to_owned(),
        interface_type: rule.interface.map(|i| i.as_str().to_owned()),
        key: rule.key.as_str().to_owned(),
        limit: rule.limit,
        period_secs: rule.period_secs,
        route_prefix: rule.route_prefix.as_ref().map(|p| p.as_str().to_owned()),
        client_id: rule.client.clone(),
        active: rule.active,
        built_in: stored.is_none(),
        version: stored.map_or(0, |s| s.version),
        updated_at: stored.map(|s| {
            s.updated_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        }),
        updated_by: stored.map(|s| s.updated_by.clone()),
    }
}

fn refused(e: RuleError) -> ApiError {
    let status = if e.is_inconsistent() || matches!(e, RuleError::Limit(_) | RuleError::Period(_)) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.code(), e.to_string())
}

/// Parses a rule's body into the domain's rule, checking every rule of it.
fn parse_rule(id: RuleId, body: &FraudRuleBody) -> Result<Rule, ApiError> {
    let number = |n: i64, bad: fn(i64) -> RuleError| u32::try_from(n).map_err(|_| refused(bad(n)));
    let rule = Rule {
        id,
        level: Level::parse(&body.level).map_err(refused)?,
        interface: body
            .interface_type
            .as_deref()
            .map(InterfaceType::parse)
            .transpose()
            .map_err(refused)?,
        key: Key::parse(&body.key).map_err(refused)?,
        limit: number(body.limit, RuleError::Limit)?,
        period_secs: number(body.period_secs, RuleError::Period)?,
        route_prefix: body
            .route_prefix
            .as_deref()
            .map(RoutePrefix::parse)
            .transpose()
            .map_err(refused)?,
        client: body.client_id.clone(),
        active: body.active.unwrap_or(true),
    };
    rule.validate().map_err(refused)?;
    Ok(rule)
}

fn rule_id(path: Result<Path<String>, PathRejection>) -> Result<RuleId, ApiError> {
    RuleId::parse(&path_ids(path)?).map_err(refused)
}

fn not_found(id: &RuleId) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "fraud_rule_not_found",
        format!("no fraud rule `{id}` is stored"),
    )
}

#[utoipa::path(get, path = "/v1/operator/fraud-rules",
    responses((status = 200, body = [FraudRuleView]), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list_rules(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let stored = store::list(&app.pool).await.map_err(internal)?;
    let views: Vec<FraudRuleView> = if stored.is_empty() {
        fraud::defaults().iter().map(|r| view(r, None)).collect()
    } else {
        stored.iter().map(|s| view(&s.rule, Some(s))).collect()
    };
    Ok(Json(views).into_response())
}

/// Creates a rule. It applies within a second in every process; the built-in defaults stop
/// applying once any rule is stored.
#[utoipa::path(post, path = "/v1/operator/fraud-rules", request_body = NewFraudRule,
    responses((status = 201, body = FraudRuleView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn create_rule(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let req: NewFraudRule = parse_body(&body)?;
    let (id, settings) = req.split();
    let id = RuleId::parse(&id).map_err(refused)?;
    let rule = parse_rule(id, &settings)?;
    let created = store::create(&app.pool, &rule, &format!("operator:{}", actor.id))
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "fraud_rule_exists",
                format!("a fraud rule `{}` exists; replace it with PUT", rule.id),
            )
        })?;
    Ok((
        StatusCode::CREATED,
        Json(view(&created.rule, Some(&created))),
    )
        .into_response())
}

/// Replaces a rule (its counters start afresh). It applies within a second in every process.
#[utoipa::path(put, path = "/v1/operator/fraud-rules/{rule_id}", request_body = FraudRuleBody,
    params(("rule_id" = String, Path, description = "1–40 characters of a-z, 0-9, _ and -")),
    responses((status = 200, body = FraudRuleView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn replace_rule(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let id = rule_id(path)?;
    let req: FraudRuleBody = parse_body(&body)?;
    let rule = parse_rule(id, &req)?;
    let replaced = store::replace(&app.pool, &rule, &format!("operator:{}", actor.id))
        .await
        .map_err(internal)?
        .ok_or_else(|| not_found(&rule.id))?;
    Ok(Json(view(&replaced.rule, Some(&replaced))).into_response())
}

/// Deletes a rule. Once none is stored, the built-in defaults apply again.
#[utoipa::path(delete, path = "/v1/operator/fraud-rules/{rule_id}",
    params(("rule_id" = String, Path)),
    responses((status = 204), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn delete_rule(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let id = rule_id(path)?;
    if !store::delete(&app.pool, &id).await.map_err(internal)? {
        return Err(not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
