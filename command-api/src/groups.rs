//! Client groups and their limits (e-wallet spec §2) as configuration: the catalogue kept in
//! Postgres ([`etr_infra::client_groups`]), the copy each
//! process decides commands under ([`Groups`], refreshed every second and at once after a
//! change made through this process), and the routes that manage them:
//!
//! - `GET /v1/operator/client-groups` — the catalogue;
//! - `PUT /v1/operator/client-groups/{group_id}` — create or replace a group (operator);
//! - `POST /v1/operator/clients/{client_id}/group` — move a client to a group (an event of
//!   the client: it applies from the client's next operation);
//! - `POST /v1/clients/{client_id}/time-zone` — the UTC offset the client's calendar limits
//!   are counted in (the client itself, or an operator).

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use etr_domain::limits::{Catalogue, CurrencyLimits, Group, GroupId, PeriodLimits};
use etr_domain::{client, ClientId, Command, Currency, Money};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use utoipa::ToSchema;
use uuid::Uuid;

use etr_infra::client_groups;

use crate::api::{parse_body, path_ids, ApiError, App};
use crate::lending::{internal, operator, operator_command, respond};

pub(crate) const GROUPS: &str = "/v1/operator/client-groups";
pub(crate) const GROUP: &str = "/v1/operator/client-groups/{group_id}";
pub(crate) const CLIENT_GROUP: &str = "/v1/operator/clients/{client_id}/group";
pub(crate) const TIME_ZONE: &str = "/v1/clients/{client_id}/time-zone";

/// The catalogue this process decides commands under. Cloning shares it.
#[derive(Clone, Debug)]
pub struct Groups(Arc<RwLock<Arc<Catalogue>>>);

impl Default for Groups {
    fn default() -> Self {
        Groups::new(Catalogue::default())
    }
}

impl Groups {
    pub fn new(catalogue: Catalogue) -> Groups {
        Groups(Arc::new(RwLock::new(Arc::new(catalogue))))
    }

    /// The current catalogue.
    pub fn current(&self) -> Arc<Catalogue> {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, catalogue: Catalogue) {
        let mut slot = match self.0.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if **slot != catalogue {
            *slot = Arc::new(catalogue);
        }
    }

    /// Reads the catalogue from Postgres (writing the default groups first when there are
    /// none) and keeps it.
    ///
    /// Errors: Postgres; a stored group that no longer parses.
    pub async fn load(&self, pool: &PgPool) -> Result<(), crate::Error> {
        client_groups::ensure_defaults(pool).await?;
        self.replace(client_groups::read(pool).await?);
        Ok(())
    }

    /// Reloads the catalogue every `every` until the process ends; a failed reload keeps the
    /// previous catalogue and is logged.
    pub fn refresh_every(&self, pool: PgPool, every: Duration) -> tokio::task::JoinHandle<()> {
        let groups = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = groups.load(&pool).await {
                    tracing::warn!(error = %e, "client groups not reloaded");
                }
            }
        })
    }
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(GROUPS, get(list_groups))
        .route(GROUP, put(put_group))
        .route(CLIENT_GROUP, post(move_client))
        .route(TIME_ZONE, post(change_time_zone))
}

/// Spend limits per calendar period as decimal strings; an absent one is no limit.
#[derive(Debug, Default, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodLimitsBody {
    #[schema(example = "5000.00", extensions(("x-text" = json!("amount"))))]
    pub day: Option<String>,
    #[schema(extensions(("x-text" = json!("amount"))))]
    pub week: Option<String>,
    #[schema(extensions(("x-text" = json!("amount"))))]
    pub month: Option<String>,
}

/// A group's limits in one currency (spec §2): amounts are decimal strings with at most two
/// decimals.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CurrencyLimitsBody {
    #[schema(example = "1.00", extensions(("x-text" = json!("amount"))))]
    pub min_operation: String,
    #[schema(example = "100000.00", extensions(("x-text" = json!("amount"))))]
    pub max_operation: String,
    #[schema(example = "600000.00", extensions(("x-text" = json!("amount"))))]
    pub max_balance: String,
    /// Spending from the wallet account.
    #[serde(default)]
    pub wallet_source: PeriodLimitsBody,
    /// Spending from every source together (wallet and cards).
    #[serde(default)]
    pub all_sources: PeriodLimitsBody,
    /// A payment above this amount needs the client's OTP confirmation.
    #[schema(extensions(("x-text" = json!("amount"))))]
    pub warning_threshold: Option<String>,
}

/// A client group: its name, whether new clients join it, and its limits by ISO 4217
/// currency (an operation in a currency the group has no limits for is refused).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    pub name: String,
    /// Make this the group of clients not moved to another (default false; the default
    /// group cannot be unset, only replaced by another).
    #[serde(default)]
    pub default: bool,
    /// By ISO 4217 currency code.
    #[schema(extensions(("x-keys" = json!("currency"))))]
    pub limits: BTreeMap<String, CurrencyLimitsBody>,
}

/// The catalogue: every group and its current version.
#[derive(Debug, Serialize, ToSchema)]
pub struct GroupView {
    pub group_id: String,
    pub name: String,
    pub default: bool,
    pub version: i64,
    pub updated_at: String,
    pub updated_by: String,
    #[schema(value_type = Object)]
    pub limits: serde_json::Value,
}

fn amount(field: &str, raw: &str, currency: Currency) -> Result<Decimal, ApiError> {
    Money::parse_positive(raw, currency.code())
        .map(|m| m.amount)
        .map_err(|e| {
            let code = etr_domain::Error::Money(e.clone()).code();
            ApiError::bad_request(code, format!("{}.{field}: {e}", currency.code()))
        })
}

fn optional(
    field: &str,
    raw: &Option<String>,
    currency: Currency,
) -> Result<Option<Decimal>, ApiError> {
    raw.as_deref()
        .map(|r| amount(field, r, currency))
        .transpose()
}

fn periods(
    prefix: &str,
    body: &PeriodLimitsBody,
    currency: Currency,
) -> Result<PeriodLimits, ApiError> {
    Ok(PeriodLimits {
        day: optional(&format!("{prefix}.day"), &body.day, currency)?,
        week: optional(&format!("{prefix}.week"), &body.week, currency)?,
        month: optional(&format!("{prefix}.month"), &body.month, currency)?,
    })
}

/// Parses a group's body into the domain's group, checking every rule.
fn parse_group(id: GroupId, body: &GroupBody) -> Result<Group, ApiError> {
    let mut limits = BTreeMap::new();
    for (code, l) in &body.limits {
        let currency = Currency::from_str(code)?;
        limits.insert(
            currency,
            CurrencyLimits {
                min_operation: amount("min_operation", &l.min_operation, currency)?,
                max_operation: amount("max_operation", &l.max_operation, currency)?,
                max_balance: amount("max_balance", &l.max_balance, currency)?,
                wallet_source: periods("wallet_source", &l.wallet_source, currency)?,
                all_sources: periods("all_sources", &l.all_sources, currency)?,
                warning_threshold: optional("warning_threshold", &l.warning_threshold, currency)?,
            },
        );
    }
    let group = Group {
        id,
        name: body.name.trim().to_owned(),
        limits,
    };
    group.validate().map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_group",
            e.to_string(),
        )
    })?;
    Ok(group)
}

#[utoipa::path(get, path = "/v1/operator/client-groups",
    responses((status = 200, body = [GroupView]), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list_groups(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let rows: Vec<(String, String, bool, i64, time::OffsetDateTime, String, serde_json::Value)> =
        sqlx::query_as(
            "SELECT group_id, name, is_default, version, updated_at, updated_by, limits FROM client_groups ORDER BY group_id",
        )
        .fetch_all(&app.pool)
        .await
        .map_err(internal)?;
    let groups: Vec<GroupView> = rows
        .into_iter()
        .map(
            |(group_id, name, default, version, at, updated_by, limits)| GroupView {
                group_id,
                name,
                default,
                version,
                updated_at: at
                    .format(&time::format_description::well_known::Rfc3339)
                    .unwrap_or_default(),
                updated_by,
                limits,
            },
        )
        .collect();
    Ok(Json(groups).into_response())
}

/// Creates or replaces a group. Its limits apply to every client in it from their next
/// operation (within a second in every process).
#[utoipa::path(put, path = "/v1/operator/client-groups/{group_id}", request_body = GroupBody,
    params(("group_id" = String, Path, pattern = "^[a-z0-9_-]{1,40}$", description = "1–40 characters of a-z, 0-9, _ and -")),
    responses((status = 200, body = GroupView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn put_group(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let id = GroupId::parse(&path_ids(path)?)
        .map_err(|e| ApiError::bad_request("invalid_group_id", e.to_string()))?;
    let req: GroupBody = parse_body(&body)?;
    let group = parse_group(id, &req)?;
    let mut tx = app.pool.begin().await.map_err(internal)?;
    // One change of the catalogue at a time.
    sqlx::query("LOCK TABLE client_groups IN SHARE ROW EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    client_groups::save(
        &mut tx,
        &group,
        req.default,
        &format!("operator:{}", actor.id),
    )
    .await
    .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    app.groups.load(&app.pool).await.map_err(internal)?;
    let row: (bool, i64, time::OffsetDateTime, String, serde_json::Value) = sqlx::query_as(
        "SELECT is_default, version, updated_at, updated_by, limits FROM client_groups WHERE group_id = $1",
    )
    .bind(group.id.as_str())
    .fetch_one(&app.pool)
    .await
    .map_err(internal)?;
    Ok(Json(GroupView {
        group_id: group.id.to_string(),
        name: group.name,
        default: row.0,
        version: row.1,
        updated_at: row
            .2
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        updated_by: row.3,
        limits: row.4,
    })
    .into_response())
}

/// Moves a client to a group.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveClientRequest {
    /// The group's id: 1–40 characters of a-z, 0-9, _ and -.
    #[schema(pattern = "^[a-z0-9_-]{1,40}$")]
    pub group: String,
    pub reason: String,
}

#[utoipa::path(post, path = "/v1/operator/clients/{client_id}/group", request_body = MoveClientRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse)))]
pub(crate) async fn move_client(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let client = ClientId(path_ids(path)?);
    let req: MoveClientRequest = parse_body(&body)?;
    let group = GroupId::parse(&req.group)
        .map_err(|e| ApiError::bad_request("invalid_group_id", e.to_string()))?;
    let handled = operator_command(
        &app,
        &headers,
        client,
        CLIENT_GROUP,
        &[&client.to_string()],
        &body,
        client::Command::ChangeGroup {
            group,
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

/// The UTC offset a client's calendar limits are counted in.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeZoneRequest {
    /// `±HH:MM` between −12:00 and +14:00 in steps of 15 minutes, e.g. "+05:00".
    #[schema(
        example = "+05:00",
        pattern = r"^(?:\+(?:(?:0[0-9]|1[0-3]):(?:[03]0|[14]5)|14:00)|-(?:(?:0[0-9]|1[01]):(?:[03]0|[14]5)|12:00))$"
    )]
    pub utc_offset: String,
}

#[utoipa::path(post, path = "/v1/clients/{client_id}/time-zone", request_body = TimeZoneRequest,
    params(("client_id" = Uuid, Path), ("Idempotency-Key" = String, Header)),
    responses((status = 200, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::CommandResponse), (status = 422, body = crate::api::CommandResponse), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn change_time_zone(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let client = ClientId(path_ids(path)?);
    let meta = crate::api::meta(
        &app.keys,
        &headers,
        client,
        TIME_ZONE,
        &[&client.to_string()],
        &body,
    )?;
    let req: TimeZoneRequest = parse_body(&body)?;
    etr_domain::limits::parse_utc_offset(&req.utc_offset)
        .map_err(|e| ApiError::bad_request("invalid_utc_offset", e.to_string()))?;
    let handled = app
        .handler
        .handle(
            meta,
            Command::Client {
                client_id: client,
                command: client::Command::ChangeTimeZone {
                    utc_offset: req.utc_offset,
                },
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
