//! Advertising over GraphQL (e-wallet spec §6), through [`etr_infra::advertising`]:
//!
//! - `advertisingPlaces(first, after)`, `advertisingCampaigns(first, after)`,
//!   `advertisingBanners(placeId, campaignId, first, after)` — what operators configured,
//!   by id, `first` 1–100 (default 20) after the cursor `after` (the last id of the previous
//!   page); operators only;
//! - `banner(placeId, serviceId, menuItemId, amount, attributes)` — the next banner of a
//!   place of the web application for an operation (its service, menu item, amount debited
//!   as a decimal string, attributes), served round-robin from the place's shuffled playlist
//!   (the place's one cursor moves: this field writes); `null` when no banner of the place
//!   matches. Any authenticated caller.
//!
//! A banner's image is served same-origin at `GET /advertising/banners/{id}/image` (no
//! token). Refusals: `UNAUTHENTICATED`, `FORBIDDEN`, `BAD_USER_INPUT`, the domain's code
//! upper-cased (`UNKNOWN_PLACE`, `INVALID_ADVERTISING_ID`, `AMOUNT_TOO_PRECISE`, …),
//! `PLACE_NOT_FOR_WEB_APPLICATION`, `UNAVAILABLE`.

use async_graphql::{Context, ErrorExtensions, InputObject, Object, SimpleObject};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use etr_domain::advertising::{
    banner_html, format_amount, image_path, Banner, InterfaceType, Operation,
};
use etr_domain::Money;
use etr_infra::advertising::{Advertising, StoredBanner, StoredCampaign, StoredPlace};
use sqlx::PgPool;
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::auth::{error, viewer, Role};
use crate::{page_size, pool};

fn operator(ctx: &Context<'_>) -> async_graphql::Result<()> {
    if viewer(ctx)?.role != Role::Operator {
        return Err(error("FORBIDDEN", "advertising settings are for operators"));
    }
    Ok(())
}

fn failed(e: etr_infra::Error) -> async_graphql::Error {
    match e {
        etr_infra::Error::Advertising(e) => {
            let code = e.code().to_ascii_uppercase();
            async_graphql::Error::new(e.to_string()).extend_with(|_, x| x.set("code", code.clone()))
        }
        other => error("UNAVAILABLE", format!("advertising unavailable: {other}")),
    }
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// An advertising place.
#[derive(SimpleObject)]
pub struct AdPlace {
    pub id: String,
    pub name: String,
    /// `web_application` or `email_receipt`.
    pub interface_type: String,
    pub version: i64,
    pub updated_at: String,
}

impl From<&StoredPlace> for AdPlace {
    fn from(s: &StoredPlace) -> AdPlace {
        AdPlace {
            id: s.place.id.to_string(),
            name: s.place.name.as_str().to_owned(),
            interface_type: s.place.interface.as_str().to_owned(),
            version: s.stamp.version,
            updated_at: rfc3339(s.stamp.updated_at),
        }
    }
}

/// A campaign: it shows its banners while active and in `[activeFrom, activeTo)`.
#[derive(SimpleObject)]
pub struct AdCampaign {
    pub id: String,
    pub name: String,
    pub active_from: String,
    /// None: for ever.
    pub active_to: Option<String>,
    pub active: bool,
    pub version: i64,
}

impl From<&StoredCampaign> for AdCampaign {
    fn from(s: &StoredCampaign) -> AdCampaign {
        let c = &s.campaign;
        AdCampaign {
            id: c.id.to_string(),
            name: c.name.as_str().to_owned(),
            active_from: rfc3339(c.period.from),
            active_to: c.period.to.map(rfc3339),
            active: c.active,
            version: s.stamp.version,
        }
    }
}

/// An attribute pattern of a banner: the attribute must match the regular expression as a
/// whole.
#[derive(SimpleObject)]
pub struct AttributePattern {
    pub attribute: String,
    pub pattern: String,
}

/// A banner with its settings (operators).
#[derive(SimpleObject)]
pub struct AdBanner {
    pub id: String,
    pub campaign_id: String,
    pub place_id: String,
    pub title: String,
    pub text: String,
    pub link: String,
    pub image_url: Option<String>,
    pub weight: i32,
    pub service_ids: Vec<String>,
    pub menu_item_ids: Vec<String>,
    /// Decimal string, included.
    pub amount_from: Option<String>,
    /// Decimal string, excluded.
    pub amount_to: Option<String>,
    pub attribute_patterns: Vec<AttributePattern>,
    pub version: i64,
}

impl From<&StoredBanner> for AdBanner {
    fn from(s: &StoredBanner) -> AdBanner {
        let b = &s.banner;
        let c = &b.conditions;
        AdBanner {
            id: b.id.to_string(),
            campaign_id: b.campaign.to_string(),
            place_id: b.place.to_string(),
            title: b.content.title.as_str().to_owned(),
            text: b.content.text.clone(),
            link: b.content.link.as_str().to_owned(),
            image_url: b.content.image.map(|_| image_path(&b.id)),
            weight: i32::try_from(b.weight.get()).unwrap_or(i32::MAX),
            service_ids: c.services.iter().cloned().collect(),
            menu_item_ids: c.menu_items.iter().cloned().collect(),
            amount_from: c.amount.and_then(|a| a.from).map(format_amount),
            amount_to: c.amount.and_then(|a| a.to).map(format_amount),
            attribute_patterns: c
                .attributes
                .iter()
                .map(|(k, p)| AttributePattern {
                    attribute: k.clone(),
                    pattern: p.as_str().to_owned(),
                })
                .collect(),
            version: s.stamp.version,
        }
    }
}

/// A banner served for an operation.
#[derive(SimpleObject)]
pub struct ServedBanner {
    pub id: String,
    pub campaign_id: String,
    pub title: String,
    pub text: String,
    /// Where the banner leads (open it with rel="noopener").
    pub link: String,
    /// This site's path of the banner's image, when it has one.
    pub image_url: Option<String>,
    /// The banner as safe HTML (every value escaped, fixed markup).
    pub html: String,
}

impl From<&Banner> for ServedBanner {
    fn from(b: &Banner) -> ServedBanner {
        ServedBanner {
            id: b.id.to_string(),
            campaign_id: b.campaign.to_string(),
            title: b.content.title.as_str().to_owned(),
            text: b.content.text.clone(),
            link: b.content.link.as_str().to_owned(),
            image_url: b.content.image.map(|_| image_path(&b.id)),
            html: banner_html(b),
        }
    }
}

/// One page of places.
#[derive(SimpleObject)]
pub struct AdPlacePage {
    pub nodes: Vec<AdPlace>,
    /// The last id of the page: `after` of the next page.
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

/// One page of campaigns.
#[derive(SimpleObject)]
pub struct AdCampaignPage {
    pub nodes: Vec<AdCampaign>,
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

/// One page of banners.
#[derive(SimpleObject)]
pub struct AdBannerPage {
    pub nodes: Vec<AdBanner>,
    pub end_cursor: Option<String>,
    pub has_next_page: bool,
}

/// An operation attribute (`phone`, `account`, …).
#[derive(InputObject)]
pub struct AttributeInput {
    pub name: String,
    pub value: String,
}

/// Rows of one page and whether more follow (one more row is read than shown).
fn split_page<T>(mut rows: Vec<T>, size: usize) -> (Vec<T>, bool) {
    let more = rows.len() > size;
    rows.truncate(size);
    (rows, more)
}

fn store(ctx: &Context<'_>) -> async_graphql::Result<Advertising> {
    Ok(Advertising::new(pool(ctx)?.clone()))
}

fn limit(size: usize) -> i64 {
    i64::try_from(size).unwrap_or(100) + 1
}

#[derive(Default)]
pub struct AdvertisingQuery;

#[Object]
impl AdvertisingQuery {
    /// Advertising places by id (operators).
    #[graphql(
        complexity = "crate::page_cost(first, crate::DEFAULT_PAGE, crate::MAX_PAGE, child_complexity)"
    )]
    async fn advertising_places(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AdPlacePage> {
        operator(ctx)?;
        let size = page_size(first)?;
        let rows = store(ctx)?
            .places(None, after.as_deref(), limit(size))
            .await
            .map_err(failed)?;
        let (rows, more) = split_page(rows, size);
        Ok(AdPlacePage {
            end_cursor: rows.last().map(|r| r.place.id.to_string()),
            nodes: rows.iter().map(AdPlace::from).collect(),
            has_next_page: more,
        })
    }

    /// Campaigns by id (operators).
    #[graphql(
        complexity = "crate::page_cost(first, crate::DEFAULT_PAGE, crate::MAX_PAGE, child_complexity)"
    )]
    async fn advertising_campaigns(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AdCampaignPage> {
        operator(ctx)?;
        let size = page_size(first)?;
        let rows = store(ctx)?
            .campaigns(after.as_deref(), limit(size))
            .await
            .map_err(failed)?;
        let (rows, more) = split_page(rows, size);
        Ok(AdCampaignPage {
            end_cursor: rows.last().map(|r| r.campaign.id.to_string()),
            nodes: rows.iter().map(AdCampaign::from).collect(),
            has_next_page: more,
        })
    }

    /// Banners by id, optionally of one place and one campaign (operators).
    #[graphql(
        complexity = "crate::page_cost(first, crate::DEFAULT_PAGE, crate::MAX_PAGE, child_complexity)"
    )]
    async fn advertising_banners(
        &self,
        ctx: &Context<'_>,
        place_id: Option<String>,
        campaign_id: Option<String>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<AdBannerPage> {
        operator(ctx)?;
        let size = page_size(first)?;
        let rows = store(ctx)?
            .banners(
                place_id.as_deref(),
                campaign_id.as_deref(),
                after.as_deref(),
                limit(size),
            )
            .await
            .map_err(failed)?;
        let (rows, more) = split_page(rows, size);
        Ok(AdBannerPage {
            end_cursor: rows.last().map(|r| r.banner.id.to_string()),
            nodes: rows.iter().map(AdBanner::from).collect(),
            has_next_page: more,
        })
    }

    /// The next banner of a web-application place for an operation (spec §6): round-robin
    /// over the place's shuffled playlist, skipping banners whose conditions the operation
    /// does not meet or whose campaign does not run now; `null` when none does. `amount` is
    /// the amount debited, a decimal string with at most two digits after the point.
    async fn banner(
        &self,
        ctx: &Context<'_>,
        place_id: String,
        service_id: Option<String>,
        menu_item_id: Option<String>,
        amount: Option<String>,
        attributes: Option<Vec<AttributeInput>>,
    ) -> async_graphql::Result<Option<ServedBanner>> {
        viewer(ctx)?;
        let amount = amount
            .map(|a| {
                Money::parse_positive(&a, "RUB")
                    .map(|m| m.amount)
                    .map_err(|e| error("BAD_USER_INPUT", format!("amount: {e} ({})", e.code())))
            })
            .transpose()?;
        let mut attrs = BTreeMap::new();
        for a in attributes.unwrap_or_default() {
            if attrs.insert(a.name.clone(), a.value).is_some() {
                return Err(error(
                    "BAD_USER_INPUT",
                    format!("attribute `{}` is given twice", a.name),
                ));
            }
        }
        let ads = store(ctx)?;
        let place = ads.place(&place_id).await.map_err(failed)?.ok_or_else(|| {
            let e = etr_domain::advertising::AdError::UnknownPlace(place_id.clone());
            failed(e.into())
        })?;
        if place.place.interface != InterfaceType::WebApplication {
            return Err(error(
                "PLACE_NOT_FOR_WEB_APPLICATION",
                format!(
                    "place `{place_id}` is for {}; this field serves web-application places",
                    place.place.interface.as_str()
                ),
            ));
        }
        let op = Operation {
            service_id,
            menu_item_id,
            amount,
            attributes: attrs,
        };
        let banner = ads
            .next_banner(&place_id, &op, OffsetDateTime::now_utc())
            .await
            .map_err(failed)?;
        Ok(banner.as_ref().map(ServedBanner::from))
    }
}

/// `GET /advertising/banners/{banner_id}/image`: a banner's image, same-origin for the
/// pages that show the banner; no token needed.
pub(crate) async fn image(State(pool): State<PgPool>, Path(id): Path<String>) -> Response {
    match Advertising::new(pool).image(&id).await {
        Ok(Some((kind, bytes))) => {
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
        Ok(None) => (StatusCode::NOT_FOUND, "no such image").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "banner image unavailable");
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable").into_response()
        }
    }
}
