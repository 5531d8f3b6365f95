//! The advertising module operators manage (e-wallet spec §6), kept in Postgres
//! ([`etr_infra::advertising`]); the rules are [`etr_domain::advertising`]'s.
//!
//! - `GET|POST /v1/operator/advertising/places`, `PUT …/places/{place_id}` — advertising
//!   places per interface type (`web_application`, `email_receipt`);
//! - `GET|POST /v1/operator/advertising/campaigns`, `PUT …/campaigns/{campaign_id}` —
//!   campaigns with their period `[active_from, active_to)` (no end: for ever) and active
//!   flag;
//! - `GET|POST /v1/operator/advertising/banners`, `PUT …/banners/{banner_id}` — banners with
//!   their content, weight and selection conditions (services, menu items, amount range
//!   `[amount_from, amount_to)`, regular expressions over attributes);
//! - `PUT /v1/operator/advertising/banners/{banner_id}/image` — the banner's image: the
//!   request body is the image (PNG, JPEG, GIF or WebP, at most 256 KiB), its type in
//!   `Content-Type`;
//! - `GET /advertising/banners/{banner_id}/image` — the image, for any page of this site
//!   (no token: receipts show it).
//!
//! Lists page by id: `?after=<last id>&limit=1..100` (default 20). Operator tokens only. A
//! field of the wrong form is answered 400 with its code (`invalid_advertising_id`,
//! `invalid_name`, `invalid_interface_type`, `invalid_time`, `empty_period`,
//! `invalid_amount_bound`, `empty_amount_range`, `invalid_regex`, `invalid_weight`,
//! `invalid_link`, … or a body code of [`crate::body`]); a banner naming a place or campaign
//! that does not exist 422 (`unknown_place`, `unknown_campaign`); a taken id 409
//! (`advertising_place_exists`, …); a path naming nothing 404.

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use etr_domain::advertising::{
    format_amount, image_path, AdError, Banner, BannerId, Campaign, CampaignId, Conditions,
    Content, ImageType, Period, Place, Weight,
};
use etr_infra::advertising::{Advertising, Stamp, StoredBanner, StoredCampaign, StoredPlace};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::api::{parse_body, path_ids, ApiError, App};
use crate::lending::{internal, operator};

pub(crate) const PLACES: &str = "/v1/operator/advertising/places";
pub(crate) const PLACE: &str = "/v1/operator/advertising/places/{place_id}";
pub(crate) const CAMPAIGNS: &str = "/v1/operator/advertising/campaigns";
pub(crate) const CAMPAIGN: &str = "/v1/operator/advertising/campaigns/{campaign_id}";
pub(crate) const BANNERS: &str = "/v1/operator/advertising/banners";
pub(crate) const BANNER: &str = "/v1/operator/advertising/banners/{banner_id}";
pub(crate) const BANNER_IMAGE: &str = "/v1/operator/advertising/banners/{banner_id}/image";
/// Where a banner's image is served (the path of [`image_path`]).
pub(crate) const PUBLIC_IMAGE: &str = "/advertising/banners/{banner_id}/image";

pub(crate) fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(PLACES, get(list_places).post(create_place))
        .route(PLACE, put(update_place))
        .route(CAMPAIGNS, get(list_campaigns).post(create_campaign))
        .route(CAMPAIGN, put(update_campaign))
        .route(BANNERS, get(list_banners).post(create_banner))
        .route(BANNER, put(update_banner))
        .route(BANNER_IMAGE, put(upload_image))
        .route(PUBLIC_IMAGE, get(image))
}

fn store(app: &App) -> Advertising {
    Advertising::new(app.pool.clone())
}

/// A name of something that does not exist, an empty period or amount range, a regular
/// expression that does not compile and an image that is empty or not of its type are
/// refused with 422 (rules between fields, or beyond what the document's patterns say); a
/// malformed value with 400.
fn refused(e: AdError) -> ApiError {
    let status = if e.is_unknown()
        || matches!(
            e,
            AdError::EmptyPeriod { .. }
                | AdError::EmptyAmountRange { .. }
                | AdError::Regex { .. }
                | AdError::ImageEmpty
                | AdError::ImageContent(_)
        ) {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::BAD_REQUEST
    };
    ApiError::new(status, e.code(), e.to_string())
}

fn failed(e: etr_infra::Error) -> ApiError {
    match e {
        etr_infra::Error::Advertising(e) => refused(e),
        other => internal(other),
    }
}

fn not_found(code: &'static str, what: &str, id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code, format!("no {what} `{id}`"))
}

fn exists(code: &'static str, what: &str, id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        code,
        format!("a {what} `{id}` exists; change it with PUT"),
    )
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

fn time(raw: &str, field: &str) -> Result<OffsetDateTime, ApiError> {
    OffsetDateTime::parse(raw, &Rfc3339).map_err(|_| {
        ApiError::bad_request(
            "invalid_time",
            format!("{field}: `{raw}` is not an RFC 3339 time such as 2026-12-01T00:00:00Z"),
        )
    })
}

/// A page of a list: `after` the last id of the previous page, `limit` 1–100 (default 20).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub after: Option<String>,
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<i64>,
    /// Banners only: those of this place.
    pub place_id: Option<String>,
    /// Banners only: those of this campaign.
    pub campaign_id: Option<String>,
}

fn list_query(q: Result<Query<ListQuery>, QueryRejection>) -> Result<ListQuery, ApiError> {
    let Query(q) = q.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    if q.limit.is_some_and(|l| !(1..=100).contains(&l)) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            "limit must be between 1 and 100",
        ));
    }
    Ok(q)
}

// ---- places ----------------------------------------------------------------------------

/// A new advertising place.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPlace {
    /// 1–40 characters of a-z, 0-9, _ and -; the name a receipt template gives in
    /// `$adv.getBannerHtml($operation, 'content')`.
    #[schema(example = "content", extensions(("x-text" = json!("advertising-id"))))]
    pub id: String,
    /// At most 120 characters, not blank, no control characters.
    #[schema(example = "Receipt footer", max_length = 120, extensions(("x-text" = json!("display-name"))))]
    pub name: String,
    /// `web_application` (receipts on the site) or `email_receipt` (receipts by e-mail).
    #[schema(
        example = "web_application",
        pattern = "^(?:web_application|email_receipt)$"
    )]
    pub interface_type: String,
}

/// A place's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceBody {
    /// At most 120 characters, not blank, no control characters.
    #[schema(max_length = 120, extensions(("x-text" = json!("display-name"))))]
    pub name: String,
    /// `web_application` or `email_receipt`.
    #[schema(pattern = "^(?:web_application|email_receipt)$")]
    pub interface_type: String,
}

/// A place as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlaceView {
    pub id: String,
    pub name: String,
    pub interface_type: String,
    /// 1 when created, one more at every change.
    pub version: i64,
    pub updated_at: String,
    pub updated_by: String,
}

fn place_view(s: &StoredPlace) -> PlaceView {
    PlaceView {
        id: s.place.id.to_string(),
        name: s.place.name.as_str().to_owned(),
        interface_type: s.place.interface.as_str().to_owned(),
        version: s.stamp.version,
        updated_at: rfc3339(s.stamp.updated_at),
        updated_by: s.stamp.updated_by.clone(),
    }
}

fn by(actor: &etr_domain::Actor) -> String {
    format!("operator:{}", actor.id)
}

#[utoipa::path(get, path = "/v1/operator/advertising/places", params(ListQuery),
    responses((status = 200, body = [PlaceView]), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list_places(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let q = list_query(q)?;
    let places = store(&app)
        .places(None, q.after.as_deref(), q.limit.unwrap_or(20))
        .await
        .map_err(failed)?;
    Ok(Json(places.iter().map(place_view).collect::<Vec<_>>()).into_response())
}

/// Creates an advertising place (with an empty playlist).
#[utoipa::path(post, path = "/v1/operator/advertising/places", request_body = NewPlace,
    responses((status = 201, body = PlaceView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody)))]
pub(crate) async fn create_place(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let req: NewPlace = parse_body(&body)?;
    let place = Place::parse(&req.id, &req.name, &req.interface_type).map_err(refused)?;
    let created = store(&app)
        .create_place(&place, &by(&actor))
        .await
        .map_err(failed)?
        .ok_or_else(|| exists("advertising_place_exists", "place", &req.id))?;
    Ok((StatusCode::CREATED, Json(place_view(&created))).into_response())
}

/// Renames a place or changes its interface type.
#[utoipa::path(put, path = "/v1/operator/advertising/places/{place_id}", request_body = PlaceBody,
    params(("place_id" = String, Path)),
    responses((status = 200, body = PlaceView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody)))]
pub(crate) async fn update_place(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let id = path_ids(path)?;
    // An id no place can have names no place: 404 like an unknown one.
    if etr_domain::advertising::PlaceId::parse(&id).is_err() {
        return Err(not_found("unknown_place", "advertising place", &id));
    }
    let req: PlaceBody = parse_body(&body)?;
    let place = Place::parse(&id, &req.name, &req.interface_type).map_err(refused)?;
    let updated = store(&app)
        .update_place(&place, &by(&actor))
        .await
        .map_err(failed)?
        .ok_or_else(|| not_found("unknown_place", "advertising place", &id))?;
    Ok(Json(place_view(&updated)).into_response())
}

// ---- campaigns -------------------------------------------------------------------------

/// A new campaign.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// 1–40 characters of a-z, 0-9, _ and -.
    #[schema(example = "winter-2026", extensions(("x-text" = json!("advertising-id"))))]
    pub id: String,
    /// At most 120 characters, not blank, no control characters.
    #[schema(example = "Winter sale", max_length = 120, extensions(("x-text" = json!("display-name"))))]
    pub name: String,
    /// RFC 3339; the campaign runs from this time (included).
    #[schema(example = "2026-12-01T00:00:00Z", format = DateTime)]
    pub active_from: String,
    /// RFC 3339; until this time (excluded), after `active_from` (else 422 `empty_period`);
    /// absent: for ever.
    #[schema(format = DateTime)]
    pub active_to: Option<String>,
    /// Default true.
    pub active: Option<bool>,
}

/// A campaign's settings.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignBody {
    /// At most 120 characters, not blank, no control characters.
    #[schema(max_length = 120, extensions(("x-text" = json!("display-name"))))]
    pub name: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub active_from: String,
    /// RFC 3339, after `active_from` (else 422 `empty_period`).
    #[schema(format = DateTime)]
    pub active_to: Option<String>,
    pub active: Option<bool>,
}

/// A campaign as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignView {
    pub id: String,
    pub name: String,
    pub active_from: String,
    pub active_to: Option<String>,
    pub active: bool,
    pub version: i64,
    pub updated_at: String,
    pub updated_by: String,
}

fn campaign_view(s: &StoredCampaign) -> CampaignView {
    let c = &s.campaign;
    CampaignView {
        id: c.id.to_string(),
        name: c.name.as_str().to_owned(),
        active_from: rfc3339(c.period.from),
        active_to: c.period.to.map(rfc3339),
        active: c.active,
        version: s.stamp.version,
        updated_at: rfc3339(s.stamp.updated_at),
        updated_by: s.stamp.updated_by.clone(),
    }
}

fn parse_campaign(id: &str, body: &CampaignBody) -> Result<Campaign, ApiError> {
    let from = time(&body.active_from, "active_from")?;
    let to = body
        .active_to
        .as_deref()
        .map(|t| time(t, "active_to"))
        .transpose()?;
    Ok(Campaign {
        id: CampaignId::parse(id).map_err(refused)?,
        name: etr_domain::advertising::Name::parse(&body.name, "name").map_err(refused)?,
        period: Period::new(from, to).map_err(refused)?,
        active: body.active.unwrap_or(true),
    })
}

#[utoipa::path(get, path = "/v1/operator/advertising/campaigns", params(ListQuery),
    responses((status = 200, body = [CampaignView]), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list_campaigns(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let q = list_query(q)?;
    let campaigns = store(&app)
        .campaigns(q.after.as_deref(), q.limit.unwrap_or(20))
        .await
        .map_err(failed)?;
    Ok(Json(campaigns.iter().map(campaign_view).collect::<Vec<_>>()).into_response())
}

/// Creates a campaign.
#[utoipa::path(post, path = "/v1/operator/advertising/campaigns", request_body = NewCampaign,
    responses((status = 201, body = CampaignView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody), (status = 422, description = "`empty_period`: `active_until` is not after `active_from`.", body = crate::api::ErrorBody)))]
pub(crate) async fn create_campaign(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let req: NewCampaign = parse_body(&body)?;
    let settings = CampaignBody {
        name: req.name,
        active_from: req.active_from,
        active_to: req.active_to,
        active: req.active,
    };
    let campaign = parse_campaign(&req.id, &settings)?;
    let created = store(&app)
        .create_campaign(&campaign, &by(&actor))
        .await
        .map_err(failed)?
        .ok_or_else(|| exists("advertising_campaign_exists", "campaign", &req.id))?;
    Ok((StatusCode::CREATED, Json(campaign_view(&created))).into_response())
}

/// Changes a campaign; the playlists of the places its banners are at are rebuilt.
#[utoipa::path(put, path = "/v1/operator/advertising/campaigns/{campaign_id}", request_body = CampaignBody,
    params(("campaign_id" = String, Path)),
    responses((status = 200, body = CampaignView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, description = "`empty_period`: `active_until` is not after `active_from`.", body = crate::api::ErrorBody)))]
pub(crate) async fn update_campaign(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let id = path_ids(path)?;
    if CampaignId::parse(&id).is_err() {
        return Err(not_found("unknown_campaign", "campaign", &id));
    }
    let req: CampaignBody = parse_body(&body)?;
    let campaign = parse_campaign(&id, &req)?;
    let updated = store(&app)
        .update_campaign(&campaign, &by(&actor))
        .await
        .map_err(failed)?
        .ok_or_else(|| not_found("unknown_campaign", "campaign", &id))?;
    Ok(Json(campaign_view(&updated)).into_response())
}

// ---- banners ---------------------------------------------------------------------------

/// A new banner: its id and the fields of [`BannerBody`].
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBanner {
    /// 1–40 characters of a-z, 0-9, _ and -.
    #[schema(example = "winter-mobile", extensions(("x-text" = json!("advertising-id"))))]
    pub id: String,
    #[schema(example = "winter-2026", extensions(("x-text" = json!("advertising-id"))))]
    pub campaign_id: String,
    #[schema(example = "content", extensions(("x-text" = json!("advertising-id"))))]
    pub place_id: String,
    /// At most 120 characters, not blank, no control characters.
    #[schema(example = "10% back on mobile top-ups", max_length = 120, extensions(("x-text" = json!("display-name"))))]
    pub title: String,
    /// Up to 1,000 characters, no control characters but line breaks.
    #[schema(max_length = 1000, extensions(("x-text" = json!("banner-text"))))]
    pub text: Option<String>,
    /// An http:// or https:// URL, or a path on this site (`/offers`), at most 2,000
    /// characters, without white space, control characters, quotes, `<`, `>` or `` ` ``;
    /// opened with rel="noopener".
    #[schema(example = "/offers/winter", max_length = 2000, extensions(("x-text" = json!("link"))))]
    pub link: String,
    /// 1–1,000: the banner is this many times in its place's playlist.
    #[schema(example = 3, minimum = 1, maximum = 1000)]
    pub weight: i64,
    /// Shown only for these services (at most 50).
    #[schema(max_items = 50, extensions(("x-text" = json!("condition"))))]
    pub service_ids: Option<Vec<String>>,
    /// Shown only for these menu items (service categories; at most 50).
    #[schema(max_items = 50, extensions(("x-text" = json!("condition"))))]
    pub menu_item_ids: Option<Vec<String>>,
    /// Shown only for amounts from this (included), e.g. "100.00"; zero allowed.
    #[schema(extensions(("x-text" = json!("amount-bound"))))]
    pub amount_from: Option<String>,
    /// Shown only for amounts below this (excluded); above `amount_from` (else 422
    /// `empty_amount_range`).
    #[schema(extensions(("x-text" = json!("amount-bound"))))]
    pub amount_to: Option<String>,
    /// Attribute name (as a condition's value) → regular expression of at most 500
    /// characters the attribute must match as a whole (one that does not compile: 422
    /// `invalid_regex`); at most 50.
    #[schema(schema_with = attribute_patterns_schema)]
    pub attribute_patterns: Option<BTreeMap<String, String>>,
}

impl NewBanner {
    fn split(self) -> (String, BannerBody) {
        (
            self.id,
            BannerBody {
                campaign_id: self.campaign_id,
                place_id: self.place_id,
                title: self.title,
                text: self.text,
                link: self.link,
                weight: self.weight,
                service_ids: self.service_ids,
                menu_item_ids: self.menu_item_ids,
                amount_from: self.amount_from,
                amount_to: self.amount_to,
                attribute_patterns: self.attribute_patterns,
            },
        )
    }
}

/// A banner's settings. Every condition given must hold for the banner to be shown; an
/// absent one holds for any operation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BannerBody {
    #[schema(example = "winter-2026", extensions(("x-text" = json!("advertising-id"))))]
    pub campaign_id: String,
    #[schema(example = "content", extensions(("x-text" = json!("advertising-id"))))]
    pub place_id: String,
    /// At most 120 characters, not blank, no control characters.
    #[schema(example = "10% back on mobile top-ups", max_length = 120, extensions(("x-text" = json!("display-name"))))]
    pub title: String,
    /// Up to 1,000 characters, no control characters but line breaks.
    #[schema(max_length = 1000, extensions(("x-text" = json!("banner-text"))))]
    pub text: Option<String>,
    /// An http:// or https:// URL, or a path on this site (`/offers`), at most 2,000
    /// characters, without white space, control characters, quotes, `<`, `>` or `` ` ``;
    /// opened with rel="noopener".
    #[schema(example = "/offers/winter", max_length = 2000, extensions(("x-text" = json!("link"))))]
    pub link: String,
    /// 1–1,000: the banner is this many times in its place's playlist.
    #[schema(example = 3, minimum = 1, maximum = 1000)]
    pub weight: i64,
    /// Shown only for these services (at most 50).
    #[schema(max_items = 50, extensions(("x-text" = json!("condition"))))]
    pub service_ids: Option<Vec<String>>,
    /// Shown only for these menu items (service categories; at most 50).
    #[schema(max_items = 50, extensions(("x-text" = json!("condition"))))]
    pub menu_item_ids: Option<Vec<String>>,
    /// Shown only for amounts from this (included), e.g. "100.00"; zero allowed.
    #[schema(extensions(("x-text" = json!("amount-bound"))))]
    pub amount_from: Option<String>,
    /// Shown only for amounts below this (excluded); above `amount_from` (else 422
    /// `empty_amount_range`).
    #[schema(extensions(("x-text" = json!("amount-bound"))))]
    pub amount_to: Option<String>,
    /// Attribute name (as a condition's value) → regular expression of at most 500
    /// characters the attribute must match as a whole (one that does not compile: 422
    /// `invalid_regex`); at most 50.
    #[schema(schema_with = attribute_patterns_schema)]
    pub attribute_patterns: Option<BTreeMap<String, String>>,
}

/// A banner's `attribute_patterns`: at most 50, named like a condition's value, each a
/// regular expression of at most 500 characters.
fn attribute_patterns_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::SchemaType;
    use utoipa::openapi::{ObjectBuilder, Type};
    let name = crate::contract::text_rule("condition").unwrap_or_default();
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(50))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(name)),
        ))
        .additional_properties(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(500)),
        ))
        .build()
}

/// A banner as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct BannerView {
    pub id: String,
    pub campaign_id: String,
    pub place_id: String,
    pub title: String,
    pub text: String,
    pub link: String,
    /// This site's path of the banner's image, when it has one.
    pub image_url: Option<String>,
    pub image_type: Option<String>,
    pub weight: u32,
    pub service_ids: Vec<String>,
    pub menu_item_ids: Vec<String>,
    pub amount_from: Option<String>,
    pub amount_to: Option<String>,
    pub attribute_patterns: BTreeMap<String, String>,
    pub version: i64,
    pub updated_at: String,
    pub updated_by: String,
}

fn banner_view(s: &StoredBanner) -> BannerView {
    let b = &s.banner;
    let c = &b.conditions;
    let Stamp {
        version,
        updated_at,
        updated_by,
    } = &s.stamp;
    BannerView {
        id: b.id.to_string(),
        campaign_id: b.campaign.to_string(),
        place_id: b.place.to_string(),
        title: b.content.title.as_str().to_owned(),
        text: b.content.text.clone(),
        link: b.content.link.as_str().to_owned(),
        image_url: b.content.image.map(|_| image_path(&b.id)),
        image_type: b.content.image.map(|i| i.content_type().to_owned()),
        weight: b.weight.get(),
        service_ids: c.services.iter().cloned().collect(),
        menu_item_ids: c.menu_items.iter().cloned().collect(),
        amount_from: c.amount.and_then(|a| a.from).map(format_amount),
        amount_to: c.amount.and_then(|a| a.to).map(format_amount),
        attribute_patterns: c
            .attributes
            .iter()
            .map(|(k, p)| (k.clone(), p.as_str().to_owned()))
            .collect(),
        version: *version,
        updated_at: rfc3339(*updated_at),
        updated_by: updated_by.clone(),
    }
}

fn parse_banner(id: &str, body: &BannerBody) -> Result<Banner, ApiError> {
    let conditions = Conditions::parse(
        body.service_ids.as_deref().unwrap_or_default(),
        body.menu_item_ids.as_deref().unwrap_or_default(),
        body.amount_from.as_deref(),
        body.amount_to.as_deref(),
        &body.attribute_patterns.clone().unwrap_or_default(),
    )
    .map_err(refused)?;
    Ok(Banner {
        id: BannerId::parse(id).map_err(refused)?,
        campaign: CampaignId::parse(&body.campaign_id).map_err(refused)?,
        place: etr_domain::advertising::PlaceId::parse(&body.place_id).map_err(refused)?,
        content: Content::parse(
            &body.title,
            body.text.as_deref().unwrap_or(""),
            &body.link,
            None,
        )
        .map_err(refused)?,
        weight: Weight::parse(body.weight).map_err(refused)?,
        conditions,
    })
}

#[utoipa::path(get, path = "/v1/operator/advertising/banners", params(ListQuery),
    responses((status = 200, body = [BannerView]), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody)))]
pub(crate) async fn list_banners(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    operator(&app, &headers)?;
    let q = list_query(q)?;
    let banners = store(&app)
        .banners(
            q.place_id.as_deref(),
            q.campaign_id.as_deref(),
            q.after.as_deref(),
            q.limit.unwrap_or(20),
        )
        .await
        .map_err(failed)?;
    Ok(Json(banners.iter().map(banner_view).collect::<Vec<_>>()).into_response())
}

/// Creates a banner; its place's playlist is rebuilt.
#[utoipa::path(post, path = "/v1/operator/advertising/banners", request_body = NewBanner,
    responses((status = 201, body = BannerView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 409, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn create_banner(
    AxumState(app): AxumState<Arc<App>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let req: NewBanner = parse_body(&body)?;
    let (id, settings) = req.split();
    let banner = parse_banner(&id, &settings)?;
    let created = store(&app)
        .create_banner(&banner, &by(&actor))
        .await
        .map_err(failed)?
        .ok_or_else(|| exists("advertising_banner_exists", "banner", &id))?;
    Ok((StatusCode::CREATED, Json(banner_view(&created))).into_response())
}

/// Replaces a banner's settings (its image is kept); the playlists of its old and new place
/// are rebuilt.
#[utoipa::path(put, path = "/v1/operator/advertising/banners/{banner_id}", request_body = BannerBody,
    params(("banner_id" = String, Path)),
    responses((status = 200, body = BannerView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn update_banner(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let id = path_ids(path)?;
    if BannerId::parse(&id).is_err() {
        return Err(not_found("unknown_banner", "banner", &id));
    }
    let req: BannerBody = parse_body(&body)?;
    let banner = parse_banner(&id, &req)?;
    let updated = store(&app)
        .update_banner(&banner, &by(&actor))
        .await
        .map_err(failed)?
        .ok_or_else(|| not_found("unknown_banner", "banner", &id))?;
    Ok(Json(banner_view(&updated)).into_response())
}

/// Sets a banner's image: the body is the image (PNG, JPEG, GIF or WebP, at most 256 KiB),
/// its type in `Content-Type`. Refusals: 400 `invalid_image_type`; 404 `unknown_banner`; 413
/// `image_too_large`; 422 `image_empty`, `image_content_mismatch`.
#[utoipa::path(put, path = "/v1/operator/advertising/banners/{banner_id}/image",
    request_body(content = Vec<u8>, content_type = "image/png"),
    params(("banner_id" = String, Path)),
    responses((status = 200, body = BannerView), (status = 400, body = crate::api::ErrorBody), (status = 401, body = crate::api::ErrorBody), (status = 403, body = crate::api::ErrorBody), (status = 404, body = crate::api::ErrorBody), (status = 422, body = crate::api::ErrorBody)))]
pub(crate) async fn upload_image(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let actor = operator(&app, &headers)?;
    let raw = path_ids::<String>(path)?;
    let id = BannerId::parse(&raw).map_err(|_| not_found("unknown_banner", "banner", &raw))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let kind = ImageType::parse(content_type).map_err(refused)?;
    let updated = store(&app)
        .set_image(&id, kind, &body, &by(&actor))
        .await
        .map_err(failed)?
        .ok_or_else(|| not_found("unknown_banner", "banner", id.as_str()))?;
    Ok(Json(banner_view(&updated)).into_response())
}

/// A banner's image (no token needed: receipts and pages of this site show it).
pub(crate) async fn image(
    AxumState(app): AxumState<Arc<App>>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = path_ids(path)?;
    let (kind, bytes) = store(&app)
        .image(&id)
        .await
        .map_err(failed)?
        .ok_or_else(|| not_found("image_not_found", "image of banner", &id))?;
    Ok(image_response(kind, bytes))
}

/// The image with its type, never sniffed, cached briefly (an upload replaces it).
pub fn image_response(kind: ImageType, bytes: Vec<u8>) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type()),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}
