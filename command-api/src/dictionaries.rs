//! The processing dictionaries (e-wallet spec §1.3, §3.1) over REST, and the commission of a
//! payment before the client confirms it:
//!
//! - `POST /v1/operator/dictionaries/import` — an operator imports a document (the body, the
//!   format of `docs/dictionaries.md`) as the next version (201); a document that breaks a
//!   rule is refused (422) with the rule's code and the item it names, and nothing is written;
//! - `POST /v1/operator/dictionaries/sync` — the same with the processing centre's document
//!   (503 `processing_centre_unavailable` when it does not answer);
//! - `GET /v1/operator/dictionaries` — the stored versions, newest first;
//! - `POST /v1/clients/{client_id}/wallets/{wallet_id}/payments/quote` — the commission of a
//!   payment from the current dictionaries ([`etr_domain::dictionaries::Catalogue::quote`]):
//!   the menu item and service, the amount, the commission and the total. Nothing is written,
//!   so no `Idempotency-Key` is needed.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use etr_domain::dictionaries::{
    Dictionaries, DictionaryError, Document, ItemRef, MenuItemId, OperationType, ProcessingCentre,
    Quote, QuoteRequest, ServiceId, SourceId,
};
use etr_domain::money::format_amount;
use etr_domain::{AggregateRef, ClientId, Money, State};
use etr_infra::dictionaries::{self as store, Catalogues};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::api::{actor, parse_body, path_ids, ApiError, App};
use crate::lending::{internal, operator};

pub(crate) const IMPORT: &str = "/v1/operator/dictionaries/import";
pub(crate) const SYNC: &str = "/v1/operator/dictionaries/sync";
pub(crate) const VERSIONS: &str = "/v1/operator/dictionaries";
pub(crate) const QUOTE: &str = "/v1/clients/{client_id}/wallets/{wallet_id}/payments/quote";

/// The processing centre the dictionaries are synchronised from, and the current catalogue
/// (read once per version) quotes are computed from. Cloning shares the cache.
#[derive(Clone)]
pub struct Processing {
    pub centre: Arc<dyn ProcessingCentre>,
    pub catalogues: Catalogues,
}

impl Processing {
    pub fn new(centre: Arc<dyn ProcessingCentre>) -> Processing {
        Processing {
            centre,
            catalogues: Catalogues::default(),
        }
    }
}

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(IMPORT, post(import))
        .route(SYNC, post(sync))
        .route(VERSIONS, get(versions))
        .route(QUOTE, post(quote))
}

/// A refusal of a document or a quote: `{"error": {"code", "message", "item"}}`, `item`
/// naming the dictionary item (`dictionary`, `id`, `path`) when the refusal is of one.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusalBody {
    pub error: RefusalDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefusalDetail {
    pub code: String,
    pub message: String,
    #[schema(value_type = Option<Object>)]
    pub item: Option<ItemRef>,
}

/// The one place a refusal of the dictionaries becomes a response: 422 with its code.
fn refused(e: &DictionaryError) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(RefusalBody {
            error: RefusalDetail {
                code: e.code().to_owned(),
                message: e.to_string(),
                item: e.item().cloned(),
            },
        }),
    )
        .into_response()
}

/// A stored version of the dictionaries.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionView {
    pub version: i64,
    /// `processing-centre`, `rest`, `file:<name>`.
    pub source: String,
    pub imported_by: String,
    /// RFC 3339.
    pub imported_at: String,
    /// Items per dictionary.
    #[schema(value_type = Object)]
    pub counts: etr_domain::dictionaries::Counts,
}

impl From<store::Version> for VersionView {
    fn from(v: store::Version) -> Self {
        VersionView {
            version: v.version,
            source: v.source,
            imported_by: v.imported_by,
            imported_at: v
                .imported_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            counts: v.counts,
        }
    }
}

async fn stored(app: &App, version: i64) -> Result<Response, ApiError> {
    let v = store::version(&app.pool, version)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal(format!("dictionary version {version} vanished")))?;
    Ok((StatusCode::CREATED, Json(VersionView::from(v))).into_response())
}

/// Imports every dictionary from the body as the next version: the previous versions are
/// kept, the current one is the new. Refused (422, nothing written) with the code of the rule
/// broken and `error.item` naming the item — a menu item by its path of ids from the root.
#[utoipa::path(post, path = "/v1/operator/dictionaries/import",
    request_body(content = Document, description = "The dictionaries document: services, payment_sources, commission_profiles, menu, receipt_templates, currency_rates, map_points, phone_ranges (docs/dictionaries.md). A document that reads but whose dictionaries do not hold together is refused with 422 naming the item."),
    responses((status = 201, body = VersionView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = RefusalBody)))]
pub(crate) async fn import(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let document: Document = parse_body(&body)?;
    let dictionaries = match Dictionaries::parse(&document) {
        Ok(d) => d,
        Err(e) => return Ok(refused(&e)),
    };
    let imported = store::import(
        &app.pool,
        &dictionaries,
        "rest",
        &format!("operator:{}", actor.id),
    )
    .await
    .map_err(internal)?;
    stored(&app, imported.version).await
}

/// Synchronises every dictionary from the processing centre as the next version.
#[utoipa::path(post, path = "/v1/operator/dictionaries/sync",
    responses((status = 201, body = VersionView), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = RefusalBody), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn sync(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let by = format!("operator:{}", actor.id);
    match store::sync(&app.pool, &*app.processing.centre, &by).await {
        Ok(imported) => stored(&app, imported.version).await,
        Err(etr_infra::Error::Dictionary(e)) => Ok(refused(&e)),
        Err(etr_infra::Error::Unavailable { reason, .. }) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "processing_centre_unavailable",
            format!("the processing centre did not answer: {reason}"),
        )),
        Err(e) => Err(internal(e)),
    }
}

/// The stored versions of the dictionaries, newest first (at most 100).
#[utoipa::path(get, path = "/v1/operator/dictionaries",
    responses((status = 200, body = [VersionView]), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn versions(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let versions = store::versions(&app.pool, 100).await.map_err(internal)?;
    Ok(Json(
        versions
            .into_iter()
            .map(VersionView::from)
            .collect::<Vec<_>>(),
    )
    .into_response())
}

/// What a payment's commission is quoted for.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteBody {
    /// The service's id, e.g. "mts": 1–64 characters of A–Z, a–z, 0–9, `_`, `.` and `-`.
    #[schema(example = "mts", pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub service: String,
    /// Positive decimal string in the wallet's currency, at most 2 digits after the point.
    #[schema(example = "1000.00")]
    pub amount: String,
    /// The payment source's id, e.g. "wallet" or "card": 1–40 characters of A–Z, a–z, 0–9,
    /// `_`, `.` and `-`.
    #[schema(example = "card", pattern = "^[A-Za-z0-9_.-]{1,40}$")]
    pub source: String,
    /// The menu item the client chose, when the service is in more than one.
    #[schema(pattern = "^[A-Za-z0-9_.-]{1,64}$")]
    pub menu_item: Option<String>,
}

/// A named thing of the dictionaries.
#[derive(Debug, Serialize, ToSchema)]
pub struct NamedView {
    pub id: String,
    pub name: String,
}

/// The menu item a payment goes through.
#[derive(Debug, Serialize, ToSchema)]
pub struct MenuItemView {
    pub id: String,
    /// Its path of ids from the root, e.g. "payment/payment-mobile/payment-mobile-mts".
    pub path: String,
    pub name: String,
}

/// A commission quote: amounts are exact decimal strings in `currency`; the commission is
/// rounded to kopecks half to even; `total = amount + commission`.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = CommissionQuote)]
pub struct QuoteView {
    /// `payment`.
    pub operation: String,
    pub service: NamedView,
    pub menu_item: MenuItemView,
    pub commission_profile: String,
    pub source: String,
    pub amount: String,
    pub commission: String,
    pub total: String,
    pub currency: String,
    /// The version of the dictionaries the quote comes from.
    pub dictionaries_version: i64,
}

impl QuoteView {
    fn new(q: Quote, version: i64) -> QuoteView {
        QuoteView {
            operation: q.operation.code().to_owned(),
            service: NamedView {
                id: q.service.to_string(),
                name: q.service_name,
            },
            menu_item: MenuItemView {
                id: q.menu_item.to_string(),
                path: q.menu_path,
                name: q.menu_name,
            },
            commission_profile: q.commission_profile.to_string(),
            source: q.source.to_string(),
            amount: format_amount(q.amount.amount),
            commission: format_amount(q.commission.amount),
            total: format_amount(q.total.amount),
            currency: q.amount.currency.code().to_owned(),
            dictionaries_version: version,
        }
    }
}

fn field<T>(
    name: &str,
    parsed: Result<T, etr_domain::dictionaries::IdError>,
) -> Result<T, ApiError> {
    parsed.map_err(|e| ApiError::bad_request("invalid_field", format!("{name}: {e}")))
}

/// The commission of a payment from the wallet's client, shown before it is confirmed: the
/// menu item of the service under the Payment root (the first one, or `menu_item`), its
/// commission profile's rule for the amount and source. The client itself, a partner or an
/// operator may ask. Refusals (422): `service_not_in_menu`, `menu_item_not_found`,
/// `unknown_payment_source`, `source_not_available`, `commission_no_rule`,
/// `commission_currency_mismatch`, `dictionaries_not_loaded`, `wallet_closed`.
#[utoipa::path(post, path = "/v1/clients/{client_id}/wallets/{wallet_id}/payments/quote", request_body = QuoteBody,
    params(("client_id" = Uuid, Path), ("wallet_id" = Uuid, Path)),
    responses((status = 200, body = QuoteView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = RefusalBody)))]
pub(crate) async fn quote(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<(Uuid, Uuid)>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (client, wallet_id) = path_ids(path)?;
    let client = ClientId(client);
    actor(&app.keys, &headers, client)?;
    let req: QuoteBody = parse_body(&body)?;
    let service = field("service", ServiceId::parse(&req.service))?;
    let source = field("source", SourceId::parse(&req.source))?;
    let menu_item = req
        .menu_item
        .as_deref()
        .map(|m| field("menu_item", MenuItemId::parse(m)))
        .transpose()?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "wallet_not_found",
            format!("wallet {wallet_id} does not exist"),
        )
    };
    let wallet = match app
        .handler
        .committed_state(AggregateRef::wallet(wallet_id))
        .await?
    {
        Some(State::Wallet(w)) if w.client_id == Some(client) => w,
        _ => return Err(not_found()),
    };
    if wallet.status == etr_domain::wallet::Status::Closed {
        let e = etr_domain::Error::WalletClosed(wallet_id);
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            e.to_string(),
        ));
    }
    let currency = wallet.currency.ok_or_else(not_found)?;
    let amount = Money::parse_positive(&req.amount, currency.code())?;
    let Some(current) = app
        .processing
        .catalogues
        .current(&app.pool)
        .await
        .map_err(internal)?
    else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "dictionaries_not_loaded",
            "no dictionaries are stored yet: sync them from the processing centre or import a file",
        ));
    };
    let quoted = current.catalogue.quote(&QuoteRequest {
        operation: OperationType::Payment,
        service: &service,
        menu_item: menu_item.as_ref(),
        amount,
        source: &source,
    });
    Ok(match quoted {
        Ok(q) => Json(QuoteView::new(q, current.version)).into_response(),
        Err(e) => refused(&e),
    })
}

/// The commission a payment of `amount` to `service` from `source` is charged under the current
/// dictionaries ([`etr_domain::dictionaries::Catalogue::payment_commission`]); none before
/// the first sync or for a service not in the menu.
///
/// Errors: 422 with the dictionary's code when no commission rule holds the amount; 503 when
/// the dictionaries cannot be read.
pub(crate) async fn payment_commission(
    app: &App,
    service: &str,
    amount: Money,
    source: etr_domain::limits::Source,
) -> Result<Option<Money>, ApiError> {
    let Some(current) = app
        .processing
        .catalogues
        .current(&app.pool)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    current
        .catalogue
        .payment_commission(service, amount, source)
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))
}
