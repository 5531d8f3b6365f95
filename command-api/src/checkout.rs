//! Merchant checkout (e-wallet spec §7.2):
//!
//! - `POST /v1/operator/merchants` — an operator registers a partner shop as a merchant: its
//!   settlement wallet is opened and the callback key returned once; `GET` lists merchants
//!   (without keys).
//! - `POST /v1/partner/orders` — the merchant (partner token) creates an order (number,
//!   amount, return URL) and gets the checkout link; `GET /v1/partner/orders/{order_id}` reads
//!   it back.
//! - `GET /checkout/{order_id}?key=` — the checkout page (`assets/checkout.html`, its own
//!   script, nothing from another host); it reads `GET /v1/checkout/orders/{order_id}?key=`
//!   and pays through `POST …/wallet-payment` (the buyer signed in: a client token; a transfer
//!   to the merchant's settlement wallet naming the order, the OTP above the group's
//!   threshold as for any payment) or `POST …/card-payment` (not signed in: the card is
//!   authorised at the bank-system port, then the order records the payment; an order paid
//!   meanwhile releases the authorisation). `GET …/wallets` lists the signed-in buyer's
//!   wallets the order can be paid from.
//!
//! - `GET /checkout/{order_id}/receipt?key=` — the printable receipt of a paid order, rendered
//!   from the receipt template of the merchant's service (the processing centre's default
//!   template otherwise, `etr_domain::receipt`) with the next advertising banner of the place
//!   the template names (`etr_infra::advertising`); 404 `order_not_paid` before payment.
//!
//! The checkout key (`?key=`, [`etr_infra::merchants::checkout_key`]) guards every checkout
//! route: a wrong or missing key is 404 `order_not_found`, as for an order that does not
//! exist. Card numbers, expiry and CVC go to the bank only; the order keeps the masked number.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use etr_domain::card::{CardError, CardNumber, Cvc, Expiry};
use etr_domain::ids::{client_command_id, platform_command_id};
use etr_domain::merchant_order::{self as order, Order, OrderNumber, WebUrl};
use etr_domain::payment::{self, FraudVerdict};
use etr_domain::ports::{Answer, CardCredentials, CardDetails, CardPayment, PaymentOrder};
use etr_domain::{Actor, AggregateKind, AggregateRef, ClientId, Command, Currency, Money, State};
use etr_infra::merchants::{self, Merchant};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::{
    correlation_id, idempotency_key, meta, parse_body, path_ids, viewer, ApiError, App,
};
use crate::handler::{request_fingerprint, Meta, Outcome};
use crate::lending::{internal, operator, respond};

pub(crate) const MERCHANTS: &str = "/v1/operator/merchants";
pub(crate) const ORDERS: &str = "/v1/partner/orders";
pub(crate) const ORDER: &str = "/v1/partner/orders/{order_id}";
pub(crate) const CHECKOUT_ORDER: &str = "/v1/checkout/orders/{order_id}";
pub(crate) const CHECKOUT_WALLETS: &str = "/v1/checkout/orders/{order_id}/wallets";
pub(crate) const WALLET_PAYMENT: &str = "/v1/checkout/orders/{order_id}/wallet-payment";
pub(crate) const CARD_PAYMENT: &str = "/v1/checkout/orders/{order_id}/card-payment";

/// The checkout page.
pub const CHECKOUT_HTML: &str = include_str!("../assets/checkout.html");

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(MERCHANTS, get(list_merchants).post(register_merchant))
        .route(ORDERS, post(create_order))
        .route(ORDER, get(partner_order))
        .route(CHECKOUT_ORDER, get(checkout_order))
        .route(CHECKOUT_WALLETS, get(checkout_wallets))
        .route(WALLET_PAYMENT, post(pay_with_wallet))
        .route(CARD_PAYMENT, post(pay_with_card))
        .route("/checkout/{order_id}", get(checkout_page))
        .route("/checkout/{order_id}/receipt", get(receipt_page))
}

// ---- merchants ---------------------------------------------------------------------------

/// A partner shop to register as a merchant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMerchant {
    /// The subject of the shop's partner token: 1–100 characters of `A–Z a–z 0–9 . _ -`.
    #[schema(example = "shop-42", pattern = "^[A-Za-z0-9._-]{1,100}$")]
    pub partner_id: String,
    /// Shown to buyers on the checkout page and the receipt; 1–200 characters, not blank.
    #[schema(example = "Электроника у дома", max_length = 200, extensions(("x-text" = json!("not-blank"))))]
    pub name: String,
    /// Where paid orders are reported (absolute http/https URL with a host and no
    /// credentials, at most 2000 bytes; else 422 `invalid_callback_url`): a signed POST,
    /// retried with backoff until answered 2xx.
    pub callback_url: String,
    /// The processing centre's service whose receipt template the receipts use (the default
    /// template when absent); at most 100 characters.
    #[schema(max_length = 100)]
    pub service_id: Option<String>,
    /// The settlement wallet's currency: RUB (default), USD or EUR.
    pub currency: Option<String>,
}

/// A registered merchant.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantView {
    pub merchant_id: Uuid,
    pub partner_id: String,
    pub name: String,
    pub callback_url: String,
    pub service_id: String,
    pub settlement_wallet_id: Uuid,
    pub currency: String,
    /// Only in the registration's answer: the HMAC-SHA256 key of the callbacks'
    /// `X-ETR-Signature` (`t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callback_secret: Option<String>,
}

fn merchant_view(m: Merchant, with_secret: bool) -> MerchantView {
    MerchantView {
        merchant_id: m.merchant_id.0,
        partner_id: m.partner_id,
        name: m.name,
        callback_url: m.callback_url,
        service_id: m.service_id,
        settlement_wallet_id: m.settlement_wallet_id,
        currency: m.currency.code().into(),
        callback_secret: with_secret.then_some(m.callback_secret),
    }
}

/// Registers a partner shop as a merchant: opens its settlement wallet and answers `201` with
/// the callback key (shown only here). Operator tokens only.
///
/// Errors: 400 `invalid_partner_id`, `invalid_name`, `invalid_service_id`,
/// `unknown_currency` or a body code; 409 `merchant_exists`; 422 `invalid_callback_url`.
#[utoipa::path(post, path = "/v1/operator/merchants", request_body = NewMerchant,
    responses((status = 201, body = MerchantView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn register_merchant(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let by = operator(&app, &headers)?;
    let req: NewMerchant = parse_body(&body)?;
    let partner_ok = (1..=100).contains(&req.partner_id.len())
        && req
            .partner_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !partner_ok {
        return Err(ApiError::bad_request(
            "invalid_partner_id",
            "partner_id is 1–100 characters of A–Z, a–z, 0–9, '.', '_', '-'",
        ));
    }
    let name = req.name.trim();
    if name.is_empty() || req.name.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "invalid_name",
            "name is 1–200 characters",
        ));
    }
    let callback_url = WebUrl::parse(&req.callback_url).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_callback_url",
            e.to_string(),
        )
    })?;
    let service_id = req.service_id.unwrap_or_default();
    if service_id.chars().count() > 100 {
        return Err(ApiError::bad_request(
            "invalid_service_id",
            "service_id is at most 100 characters",
        ));
    }
    let currency = match req.currency.as_deref() {
        None => Currency::Rub,
        Some(c) => c.parse::<Currency>().map_err(ApiError::from)?,
    };
    if merchants::by_partner(&app.pool, &req.partner_id)
        .await
        .map_err(internal)?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "merchant_exists",
            format!("partner {} is a merchant already", req.partner_id),
        ));
    }
    let merchant_id = merchants::merchant_id_of(&req.partner_id);
    let wallet_id = merchants::settlement_wallet_of(merchant_id);
    // The settlement wallet first: a merchant row always has its wallet. The command id is
    // the merchant's, so a repeated registration opens it once.
    let opened = app
        .handler
        .handle(
            Meta {
                command_id: platform_command_id("merchants", merchant_id.0, "settlement-wallet"),
                correlation_id: correlation_id(&headers, &req.partner_id),
                actor: by.clone(),
                request_hash: request_fingerprint("POST", MERCHANTS, &[], &body),
            },
            Command::Wallet {
                client_id: merchant_id,
                wallet_id,
                command: etr_domain::wallet::Command::OpenWallet { currency },
            },
        )
        .await?;
    if let Outcome::Rejected { code, message, .. } = &opened.outcome {
        if code != "wallet_already_exists" {
            return Err(internal(format!(
                "settlement wallet refused: {code}: {message}"
            )));
        }
    }
    let merchant = Merchant {
        merchant_id,
        partner_id: req.partner_id.clone(),
        name: name.to_owned(),
        callback_url: callback_url.as_str().to_owned(),
        callback_secret: merchants::new_callback_secret().map_err(internal)?,
        service_id,
        settlement_wallet_id: wallet_id,
        currency,
    };
    if !merchants::insert(&app.pool, &merchant, &by.id)
        .await
        .map_err(internal)?
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "merchant_exists",
            format!("partner {} is a merchant already", req.partner_id),
        ));
    }
    Ok((StatusCode::CREATED, Json(merchant_view(merchant, true))).into_response())
}

/// Every merchant, by partner id (without callback keys). Operator tokens only.
#[utoipa::path(get, path = "/v1/operator/merchants",
    responses((status = 200, body = Vec<MerchantView>), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list_merchants(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let all = merchants::all(&app.pool).await.map_err(internal)?;
    Ok(Json(
        all.into_iter()
            .map(|m| merchant_view(m, false))
            .collect::<Vec<_>>(),
    )
    .into_response())
}

/// The merchant the partner token names. Errors: 401; 403 `not_a_merchant`.
async fn calling_merchant(app: &App, headers: &HeaderMap) -> Result<Merchant, ApiError> {
    let v = viewer(&app.keys, headers)?;
    if v.role != etr_infra::auth::Role::Partner {
        return Err(ApiError::forbidden("this route takes a partner token"));
    }
    merchants::by_partner(&app.pool, &v.sub)
        .await
        .map_err(internal)?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                "not_a_merchant",
                "this partner is not registered as a merchant",
            )
        })
}

// ---- orders ------------------------------------------------------------------------------

/// A merchant's new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// The shop's order number, unique per merchant: 1–64 characters of
    /// `A–Z a–z 0–9 - _ . /`.
    #[schema(example = "2026-000123")]
    pub number: String,
    /// Positive decimal string, at most 2 digits after the point.
    #[schema(example = "1299.00")]
    pub amount: String,
    /// The merchant's settlement currency.
    #[schema(example = "RUB")]
    pub currency: String,
    /// Shown to the buyer; at most 500 characters.
    pub description: Option<String>,
    /// Where the checkout sends the buyer back (absolute http/https URL).
    pub return_url: String,
    /// How long the order may be paid, 60 … 2,592,000 seconds (default a day).
    pub lifetime_seconds: Option<i64>,
}

/// An order as the merchant and the checkout page see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: Uuid,
    pub merchant: String,
    pub number: String,
    pub amount: String,
    pub currency: String,
    pub description: String,
    /// `awaiting_payment`, `paid`, `notified` (the merchant acknowledged the callback).
    pub status: String,
    pub return_url: String,
    #[serde(with = "etr_domain::time_serde::rfc3339_option")]
    pub expires_at: Option<OffsetDateTime>,
    pub expired: bool,
    /// Set once paid.
    pub payment: Option<OrderPaymentView>,
    /// The checkout page (with its key).
    pub checkout_url: String,
    /// The printable receipt, once paid.
    pub receipt_url: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPaymentView {
    pub payment_id: Uuid,
    /// `wallet` or `card`.
    pub source: String,
    pub masked_pan: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub paid_at: OffsetDateTime,
}

fn order_view(merchant: &Merchant, o: &Order, now: OffsetDateTime) -> OrderView {
    let key = merchants::checkout_key(&merchant.callback_secret, o.id);
    let paid = o.payment.is_some();
    OrderView {
        order_id: o.id,
        merchant: merchant.name.clone(),
        number: o.number.as_ref().map_or("", |n| n.as_str()).to_owned(),
        amount: o.amount.map(|m| m.amount.to_string()).unwrap_or_default(),
        currency: o
            .amount
            .map(|m| m.currency.code().to_owned())
            .unwrap_or_default(),
        description: o.description.clone(),
        status: o.status.as_str().into(),
        return_url: o.return_url.as_ref().map_or("", |u| u.as_str()).to_owned(),
        expires_at: o.expires_at,
        expired: !paid && o.expires_at.is_some_and(|t| now >= t),
        payment: o.payment.as_ref().map(|p| OrderPaymentView {
            payment_id: p.payment_id,
            source: match p.source {
                order::Source::Wallet => "wallet".into(),
                order::Source::Card => "card".into(),
            },
            masked_pan: p.masked_pan.clone(),
            paid_at: p.paid_at,
        }),
        checkout_url: format!("/checkout/{}?key={key}", o.id),
        receipt_url: paid.then(|| format!("/checkout/{}/receipt?key={key}", o.id)),
    }
}

/// Creates an order (`201`, with its `checkout_url` to send the buyer to) and raises the
/// `invoice.issued` alert; a repeated Idempotency-Key answers the first outcome. Partner tokens of a registered merchant only.
///
/// Errors: 400 `invalid_order_number`, an amount code, or a body code; 403
/// `not_a_merchant`; 422 `invalid_return_url`, `order_already_exists` (the number is
/// taken), `currency_mismatch`, `invalid_command`.
#[utoipa::path(post, path = "/v1/partner/orders", request_body = NewOrder,
    params(("Idempotency-Key" = String, Header)),
    responses((status = 201, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn create_order(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let merchant = calling_merchant(&app, &headers).await?;
    let key = idempotency_key(&headers)?;
    let req: NewOrder = parse_body(&body)?;
    let number = OrderNumber::parse(&req.number)
        .map_err(|e| ApiError::bad_request("invalid_order_number", e.to_string()))?;
    let amount = Money::parse_positive(&req.amount, &req.currency)?;
    amount.ensure_currency(merchant.currency)?;
    let return_url = WebUrl::parse(&req.return_url).map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_return_url",
            e.to_string(),
        )
    })?;
    let order_id = order::order_id(merchant.merchant_id, &number);
    let meta = Meta {
        command_id: client_command_id(merchant.merchant_id, &format!("orders/{key}")),
        correlation_id: correlation_id(&headers, &key),
        actor: Actor {
            kind: "partner".into(),
            id: merchant.partner_id.clone(),
        },
        request_hash: request_fingerprint("POST", ORDERS, &[], &body),
    };
    let handled = app
        .handler
        .handle(
            meta,
            Command::MerchantOrder {
                merchant_id: merchant.merchant_id,
                order_id,
                command: order::Command::Create {
                    number,
                    amount,
                    description: req.description.unwrap_or_default(),
                    return_url,
                    lifetime_seconds: req.lifetime_seconds,
                },
            },
        )
        .await?;
    if !handled.replayed && matches!(handled.outcome, Outcome::Accepted { .. }) {
        crate::alerts::record(
            &app,
            format!("invoice/{order_id}"),
            etr_domain::alerts::Alert::InvoiceIssued {
                invoice_id: order_id,
                amount,
            },
            Some(merchant.merchant_id),
        );
    }
    let checkout_url = format!(
        "/checkout/{order_id}?key={}",
        merchants::checkout_key(&merchant.callback_secret, order_id)
    );
    Ok(respond(
        handled,
        StatusCode::CREATED,
        serde_json::json!({ "order_id": order_id, "checkout_url": checkout_url }),
    )
    .await)
}

/// An order of the calling merchant. Errors: 401, 403; 404 `order_not_found`.
#[utoipa::path(get, path = "/v1/partner/orders/{order_id}", params(("order_id" = Uuid, Path)),
    responses((status = 200, body = OrderView), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn partner_order(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let merchant = calling_merchant(&app, &headers).await?;
    let order_id = path_ids(path)?;
    let o = committed_order(&app, order_id).await?;
    if o.merchant_id != Some(merchant.merchant_id) {
        return Err(order_not_found(order_id));
    }
    Ok(Json(order_view(&merchant, &o, OffsetDateTime::now_utc())).into_response())
}

fn order_not_found(order_id: Uuid) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "order_not_found",
        format!("merchant order {order_id} does not exist"),
    )
}

async fn committed_order(app: &App, order_id: Uuid) -> Result<Order, ApiError> {
    match app
        .handler
        .committed_state(AggregateRef::merchant_order(order_id))
        .await?
    {
        Some(State::MerchantOrder(o)) => Ok(o),
        _ => Err(order_not_found(order_id)),
    }
}

// ---- checkout ----------------------------------------------------------------------------

/// The checkout key of a link.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckoutKey {
    /// The key the checkout link carries.
    pub key: Option<String>,
    /// For payments: wait up to this many seconds (≤ 30) for the final status.
    #[param(maximum = 30)]
    pub wait: Option<u64>,
}

/// The order a checkout link names and its merchant; 404 for a wrong key as for no order.
pub(crate) async fn checkout_target(
    app: &App,
    order_id: Uuid,
    key: Option<&str>,
) -> Result<(Order, Merchant), ApiError> {
    let o = committed_order(app, order_id).await?;
    let merchant = match o.merchant_id {
        Some(m) => merchants::by_id(&app.pool, m).await.map_err(internal)?,
        None => None,
    }
    .ok_or_else(|| order_not_found(order_id))?;
    match key {
        Some(k) if merchants::checkout_key_matches(&merchant.callback_secret, order_id, k) => {
            Ok((o, merchant))
        }
        _ => Err(order_not_found(order_id)),
    }
}

fn checkout_query(
    query: Result<Query<CheckoutKey>, QueryRejection>,
) -> Result<CheckoutKey, ApiError> {
    let q = query
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?
        .0;
    if q.wait.is_some_and(|w| w > 30) {
        return Err(ApiError::bad_request(
            "invalid_wait",
            "wait is at most 30 seconds",
        ));
    }
    Ok(q)
}

/// The checkout page of an order.
pub(crate) async fn checkout_page() -> Response {
    etr_infra::web::page(CHECKOUT_HTML)
}

/// The order as the checkout page shows it (no token: the link's key). Errors: 404
/// `order_not_found` (also for a wrong key).
#[utoipa::path(get, path = "/v1/checkout/orders/{order_id}", params(("order_id" = Uuid, Path), CheckoutKey),
    security(()),
    responses((status = 200, body = OrderView), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn checkout_order(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<CheckoutKey>, QueryRejection>,
) -> Result<Response, ApiError> {
    let order_id = path_ids(path)?;
    let q = checkout_query(query)?;
    let (o, merchant) = checkout_target(&app, order_id, q.key.as_deref()).await?;
    Ok(Json(order_view(&merchant, &o, OffsetDateTime::now_utc())).into_response())
}

/// A wallet the buyer may pay from.
#[derive(Debug, Serialize, ToSchema)]
pub struct BuyerWallet {
    pub wallet_id: Uuid,
    pub currency: String,
    /// Balance less holds, decimal string.
    pub available: String,
}

/// The signed-in buyer's open wallets in the order's currency (client token).
#[utoipa::path(get, path = "/v1/checkout/orders/{order_id}/wallets", params(("order_id" = Uuid, Path), CheckoutKey),
    responses((status = 200, body = Vec<BuyerWallet>), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn checkout_wallets(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<CheckoutKey>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let order_id = path_ids(path)?;
    let q = checkout_query(query)?;
    let buyer = buyer(&app, &headers)?;
    let (o, _) = checkout_target(&app, order_id, q.key.as_deref()).await?;
    let currency = o.amount.map(|m| m.currency);
    let wallets = app
        .handler
        .committed_states_of(buyer, AggregateKind::WalletAccount)
        .await?
        .into_iter()
        .filter_map(|s| match s {
            State::Wallet(w)
                if w.status == etr_domain::wallet::Status::Open && w.currency == currency =>
            {
                Some(BuyerWallet {
                    wallet_id: w.id,
                    currency: w.currency.map(|c| c.code().to_owned()).unwrap_or_default(),
                    available: w.available().to_string(),
                })
            }
            _ => None,
        })
        .collect::<Vec<_>>();
    Ok(Json(wallets).into_response())
}

fn buyer(app: &App, headers: &HeaderMap) -> Result<ClientId, ApiError> {
    let v = viewer(&app.keys, headers)?;
    match (v.role, v.client) {
        (etr_infra::auth::Role::Client, Some(c)) => Ok(ClientId(c)),
        _ => Err(ApiError::forbidden(
            "paying with a wallet takes a client token",
        )),
    }
}

/// The wallet the buyer pays from.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletPaymentRequest {
    pub wallet_id: Uuid,
}

/// Pays the order from the signed-in buyer's wallet: a transfer to the merchant's
/// settlement wallet that names the order — the same statuses, limits and OTP confirmation
/// as any payment (`202` in status 0 with the code sent when confirmation is needed, the
/// confirmation through `/v1/clients/{client_id}/wallets/{wallet_id}/payments/{payment_id}/confirmation`).
/// The credit pays the order; if it was paid or expired meanwhile, the buyer is refunded.
/// `?wait=S` waits for the final status.
///
/// Errors: 401, 403 (not a client token); 404 `order_not_found`; 422 `order_not_payable`,
/// `order_expired`, the wallet's refusals (insufficient funds, limits).
#[utoipa::path(post, path = "/v1/checkout/orders/{order_id}/wallet-payment", request_body = WalletPaymentRequest,
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = String, Header), CheckoutKey),
    responses((status = 200, body = crate::api::CommandResponse), (status = 201, body = crate::api::CommandResponse), (status = 202, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn pay_with_wallet(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<CheckoutKey>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let order_id = path_ids(path)?;
    let q = checkout_query(query)?;
    let client = buyer(&app, &headers)?;
    let meta = meta(
        &app.keys,
        &headers,
        client,
        WALLET_PAYMENT,
        &[&order_id.to_string()],
        &body,
    )?;
    let req: WalletPaymentRequest = parse_body(&body)?;
    let (o, merchant) = checkout_target(&app, order_id, q.key.as_deref()).await?;
    let amount = o.amount.ok_or_else(|| order_not_found(order_id))?;
    // Refuse early what the credit would refuse anyway (a paid or expired order).
    o.ensure_payable(amount, OffsetDateTime::now_utc())
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string()))?;
    let payment_id = crate::api::minted_id(&meta, "payment");
    let fraud: FraudVerdict = app
        .fraud
        .assess(&PaymentOrder {
            client_id: client,
            wallet_id: req.wallet_id,
            payment_id,
            amount,
            service_id: payment::TRANSFER_SERVICE.into(),
        })
        .await;
    let attributes = [
        ("merchant".to_owned(), merchant.name.clone()),
        ("merchant_order_id".to_owned(), order_id.to_string()),
        (
            "order_number".to_owned(),
            o.number.as_ref().map_or("", |n| n.as_str()).to_owned(),
        ),
    ]
    .into_iter()
    .collect();
    let start = payment::Command::StartTransfer {
        amount,
        recipient: payment::Recipient {
            client_id: merchant.merchant_id,
            wallet_id: merchant.settlement_wallet_id,
            order_id: Some(order_id),
        },
        attributes,
        fraud,
    };
    let order = PaymentOrder {
        client_id: client,
        wallet_id: req.wallet_id,
        payment_id,
        amount,
        service_id: payment::TRANSFER_SERVICE.into(),
    };
    crate::api::start_operation(&app, meta, &order, start, q.wait.unwrap_or(0)).await
}

/// The card the buyer types on the checkout page.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardPaymentRequest {
    /// 13–19 digits, spaces allowed anywhere; a wrong Luhn check digit is refused with 422
    /// `card_number_checksum`.
    #[schema(example = "4111 1111 1111 1111", pattern = r"^ *(?:[0-9] *){13,19}$")]
    pub number: String,
    /// `MM/YY`; a month that has passed is refused with 422 `card_expired`.
    #[schema(example = "12/29", pattern = r"^(?:0[1-9]|1[0-2])/[0-9]{2}$")]
    pub expiry: String,
    /// 3 or 4 digits.
    #[schema(example = "123", pattern = r"^[0-9]{3,4}$")]
    pub cvc: String,
}

/// A card the request's schema admits but that is not valid — a wrong Luhn check digit, an
/// expiry month that has passed — is refused with 422; a malformed one with 400.
pub(crate) fn card_error(e: CardError) -> ApiError {
    match e {
        CardError::NumberChecksum | CardError::Expired => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code(), e.to_string())
        }
        CardError::NumberFormat | CardError::ExpiryFormat | CardError::CvcFormat => {
            ApiError::bad_request(e.code(), e.to_string())
        }
    }
}

/// Pays the order with a card, without signing in: the amount is authorised at the card
/// through the bank-system port, the order records the payment (`201`) and the checkout
/// process captures it and notifies the merchant. An order paid meanwhile refuses it and the
/// authorisation is released. A repeated Idempotency-Key answers the first outcome.
///
/// Errors: 400 `card_number_format`, `card_expiry_format`, `card_cvc_format`, or a body
/// code; 404 `order_not_found`; 402 `card_declined` (with the bank's reason); 422
/// `card_number_checksum`, `card_expired`, `order_not_payable`, `order_expired`; 503
/// `bank_unavailable`.
#[utoipa::path(post, path = "/v1/checkout/orders/{order_id}/card-payment", request_body = CardPaymentRequest,
    params(("order_id" = Uuid, Path), ("Idempotency-Key" = String, Header), CheckoutKey),
    security(()),
    responses((status = 201, body = crate::api::CommandResponse), (status = 400, body = crate::api::ErrorBody), (status = 402, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::CommandResponse), (status = 503, body = crate::api::ErrorBody)))]
pub(crate) async fn pay_with_card(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<CheckoutKey>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let order_id = path_ids(path)?;
    let q = checkout_query(query)?;
    let key = idempotency_key(&headers)?;
    let req: CardPaymentRequest = parse_body(&body)?;
    let number = CardNumber::parse(&req.number).map_err(card_error)?;
    let now = OffsetDateTime::now_utc();
    let expiry = Expiry::parse(&req.expiry, now.date()).map_err(card_error)?;
    let cvc = Cvc::parse(&req.cvc).map_err(card_error)?;
    let (o, merchant) = checkout_target(&app, order_id, q.key.as_deref()).await?;
    let amount = o.amount.ok_or_else(|| order_not_found(order_id))?;
    let meta = Meta {
        command_id: client_command_id(
            merchant.merchant_id,
            &format!("checkout/{order_id}/card/{key}"),
        ),
        correlation_id: correlation_id(&headers, &key),
        actor: Actor {
            kind: "buyer".into(),
            id: "card".into(),
        },
        request_hash: request_fingerprint("POST", CARD_PAYMENT, &[&order_id.to_string()], &body),
    };
    // A repeated key answers its first outcome without asking the bank again.
    if let Some(first) = app.handler.recorded_outcome(&meta.command_id).await? {
        return Ok(respond(
            crate::handler::Handled {
                outcome: first,
                replayed: true,
            },
            StatusCode::CREATED,
            serde_json::json!({ "order_id": order_id }),
        )
        .await);
    }
    if let Err(e) = o.ensure_payable(amount, now) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            e.code(),
            e.to_string(),
        ));
    }
    let payment_id = etr_domain::ids::derived_id(order_id, &format!("card/{key}"));
    let masked_pan = number.masked();
    let authorisation = app
        .bank
        .authorise(&CardPayment {
            payment_id,
            card: CardCredentials::Entered(CardDetails {
                number,
                expiry,
                cvc,
            }),
            amount,
        })
        .await;
    let authorisation_id = match authorisation {
        Answer::Done(id) => id,
        Answer::Refused(reason) => {
            return Err(ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
                format!("the bank declined the card: {reason}"),
            ))
        }
        Answer::Unavailable(reason) => {
            tracing::warn!(order = %order_id, reason, "the bank did not answer an authorisation");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "bank_unavailable",
                "the bank did not answer; retry with the same Idempotency-Key",
            ));
        }
    };
    let handled = app
        .handler
        .handle(
            meta,
            Command::MerchantOrder {
                merchant_id: merchant.merchant_id,
                order_id,
                command: order::Command::RecordCardPayment {
                    payment_id,
                    authorisation_id: authorisation_id.clone(),
                    masked_pan,
                    amount,
                },
            },
        )
        .await;
    let refused = match &handled {
        Ok(h) => matches!(h.outcome, Outcome::Rejected { .. }),
        Err(_) => false,
    };
    if refused {
        // Paid (or expired) meanwhile: the money goes back to the card.
        if let Answer::Refused(r) | Answer::Unavailable(r) =
            app.bank.release(&authorisation_id).await
        {
            tracing::warn!(order = %order_id, reason = r, "releasing a refused card payment failed");
        }
    }
    Ok(respond(
        handled?,
        StatusCode::CREATED,
        serde_json::json!({ "order_id": order_id, "payment_id": payment_id }),
    )
    .await)
}

/// The moment a receipt shows: Moscow time, `DD.MM.YYYY HH:MM:SS (МСК)`.
fn receipt_time(at: OffsetDateTime) -> String {
    let at = at.to_offset(etr_domain::limits::MOSCOW);
    format!(
        "{:02}.{:02}.{} {:02}:{:02}:{:02} (МСК)",
        at.day(),
        u8::from(at.month()),
        at.year(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The printable receipt of a paid order (see the module's docs).
pub(crate) async fn receipt_page(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<Uuid>, PathRejection>,
    query: Result<Query<CheckoutKey>, QueryRejection>,
) -> Result<Response, ApiError> {
    let order_id = path_ids(path)?;
    let q = checkout_query(query)?;
    let (o, merchant) = checkout_target(&app, order_id, q.key.as_deref()).await?;
    let (Some(paid), Some(amount)) = (o.payment.as_ref(), o.amount) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "order_not_paid",
            format!("merchant order {order_id} is not paid: it has no receipt"),
        ));
    };
    let current = app
        .processing
        .catalogues
        .current(&app.pool)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal("no processing dictionaries"))?;
    let catalogue = &current.catalogue;
    let service = etr_domain::dictionaries::ServiceId::parse(&merchant.service_id)
        .ok()
        .and_then(|id| catalogue.services().find(|s| s.id == id).cloned());
    let body = service
        .as_ref()
        .and_then(|s| catalogue.receipt_template(&s.id).map(|(_, body)| body))
        .or_else(|| {
            catalogue
                .receipt_templates
                .get(&etr_domain::dictionaries::TemplateName::default_template())
        })
        .ok_or_else(|| internal("no default receipt template"))?;
    let template = etr_domain::receipt::Template::parse(body).map_err(internal)?;
    let number = o.number.as_ref().map_or("", |n| n.as_str()).to_owned();
    let mut attributes = std::collections::BTreeMap::from([
        ("Магазин".to_owned(), merchant.name.clone()),
        ("Заказ".to_owned(), number),
    ]);
    attributes.insert(
        "Способ оплаты".to_owned(),
        match (&paid.source, &paid.masked_pan) {
            (order::Source::Card, Some(pan)) => format!("карта {pan}"),
            _ => "электронный кошелёк".to_owned(),
        },
    );
    let mut shown = amount.amount;
    shown.rescale(2);
    let data = etr_domain::receipt::ReceiptData {
        operation_id: paid.payment_id.to_string(),
        date: receipt_time(paid.paid_at),
        service_name: service.map_or_else(|| merchant.name.clone(), |s| s.name),
        amount: shown.to_string(),
        commission: "0.00".into(),
        total: shown.to_string(),
        currency: amount.currency.code().into(),
        attributes: attributes.clone(),
        agent: "ETR".into(),
    };
    let banner = match template.banner_place() {
        None => None,
        Some(place) => {
            let operation = etr_domain::advertising::Operation {
                service_id: Some(merchant.service_id.clone()).filter(|s| !s.is_empty()),
                menu_item_id: None,
                amount: Some(amount.amount),
                attributes,
            };
            match etr_infra::advertising::Advertising::new(app.pool.clone())
                .next_banner(place.as_str(), &operation, OffsetDateTime::now_utc())
                .await
            {
                Ok(banner) => banner,
                Err(e) => {
                    tracing::info!(place = place.as_str(), error = %e, "no banner for a receipt");
                    None
                }
            }
        }
    };
    let receipt = template.render(&data, banner.as_ref());
    Ok(etr_infra::web::page(format!(
        "<!doctype html>\n<html lang=\"ru\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Чек по заказу {} — {}</title>\n<link rel=\"icon\" href=\"data:,\">\n\
         <link rel=\"stylesheet\" href=\"/assets/etr/checkout-page.css\">\n</head>\n\
         <body>\n<main id=\"receipt\">\n{receipt}\n</main>\n</body>\n</html>\n",
        escape(o.number.as_ref().map_or("", |n| n.as_str())),
        escape(&merchant.name),
    )))
}
