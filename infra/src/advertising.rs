//! The advertising module's storage (e-wallet spec §6): places, campaigns and banners in
//! `ad_places`, `ad_campaigns`, `ad_banners` (a banner's image — PNG, JPEG, GIF or WebP, at
//! most 256 KiB — in its row), and each place's playlist with its cursor in `ad_playlists`.
//! The rules are the domain's ([`etr_domain::advertising`]); this module stores them and
//! serves the next banner.
//!
//! The playlist is rebuilt in the transaction that changes one of the place's banners or
//! one of their campaigns: every banner of the place whose campaign is active, `weight`
//! times, shuffled with the seed of the playlist's next version
//! ([`etr_domain::advertising::playlist_seed`]), the cursor back at 0. Serving
//! ([`Advertising::next_banner`]) locks the place's playlist row, picks the next entry whose
//! banner matches the operation and whose campaign runs at the request's time, and moves
//! the cursor past it with an `UPDATE … RETURNING` in the same transaction — so every
//! process serving the place shares one cursor and no entry is served twice in a lap.

use etr_domain::advertising::{
    playlist_seed, serve, AdError, AmountRange, Banner, BannerId, Campaign, CampaignId, Candidate,
    Conditions, Content, ImageType, InterfaceType, Link, Name, Operation, Pattern, Period, Place,
    PlaceId, Playlist, Weight,
};
use rust_decimal::Decimal;
use sqlx::types::Json;
use sqlx::{PgPool, Postgres, Transaction};
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

use crate::error::Error;

/// The most rows one page of a listing holds.
pub const MAX_PAGE: i64 = 100;

/// Who changed a stored item last, when, and its version (1 when created, one more at every
/// change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub version: i64,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlace {
    pub place: Place,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCampaign {
    pub campaign: Campaign,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBanner {
    pub banner: Banner,
    pub stamp: Stamp,
}

/// A place's playlist as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPlaylist {
    pub playlist: Playlist,
    pub version: i64,
    pub seed: i64,
    /// The index of the entry the next request starts from.
    pub position: i64,
}

/// The advertising store and server. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Advertising {
    pool: PgPool,
}

type PlaceRow = (String, String, String, i64, OffsetDateTime, String);
const PLACE_COLUMNS: &str = "place_id, name, interface_type, version, updated_at, updated_by";

type CampaignRow = (
    String,
    String,
    OffsetDateTime,
    Option<OffsetDateTime>,
    bool,
    i64,
    OffsetDateTime,
    String,
);
const CAMPAIGN_COLUMNS: &str =
    "campaign_id, name, active_from, active_to, active, version, updated_at, updated_by";

#[derive(sqlx::FromRow)]
struct BannerRow {
    banner_id: String,
    campaign_id: String,
    place_id: String,
    title: String,
    body: String,
    link: String,
    weight: i32,
    service_ids: Vec<String>,
    menu_item_ids: Vec<String>,
    amount_from: Option<Decimal>,
    amount_to: Option<Decimal>,
    attribute_patterns: Json<BTreeMap<String, String>>,
    image_type: Option<String>,
    version: i64,
    updated_at: OffsetDateTime,
    updated_by: String,
}
const BANNER_COLUMNS: &str = "banner_id, campaign_id, place_id, title, body, link, weight, \
     service_ids, menu_item_ids, amount_from, amount_to, attribute_patterns, image_type, \
     version, updated_at, updated_by";

/// A stored value that no longer parses is a configuration fault, not the caller's.
fn stored<'a>(what: &'static str, id: &'a str) -> impl Fn(AdError) -> Error + 'a {
    move |e| Error::Config(format!("stored {what} `{id}`: {e}"))
}

fn place_of(row: PlaceRow) -> Result<StoredPlace, Error> {
    let (id, name, interface, version, updated_at, updated_by) = row;
    let bad = stored("advertising place", &id);
    Ok(StoredPlace {
        place: Place::parse(&id, &name, &interface).map_err(&bad)?,
        stamp: Stamp {
            version,
            updated_at,
            updated_by,
        },
    })
}

fn campaign_of(row: CampaignRow) -> Result<StoredCampaign, Error> {
    let (id, name, from, to, active, version, updated_at, updated_by) = row;
    let bad = stored("campaign", &id);
    Ok(StoredCampaign {
        campaign: Campaign {
            id: CampaignId::parse(&id).map_err(&bad)?,
            name: Name::parse(&name, "name").map_err(&bad)?,
            period: Period::new(from, to).map_err(&bad)?,
            active,
        },
        stamp: Stamp {
            version,
            updated_at,
            updated_by,
        },
    })
}

fn banner_of(row: BannerRow) -> Result<StoredBanner, Error> {
    let bad = stored("banner", &row.banner_id);
    let image = row
        .image_type
        .as_deref()
        .map(ImageType::parse)
        .transpose()
        .map_err(&bad)?;
    let attributes = row
        .attribute_patterns
        .0
        .iter()
        .map(|(name, source)| Ok((name.clone(), Pattern::parse(name, source)?)))
        .collect::<Result<BTreeMap<_, _>, AdError>>()
        .map_err(&bad)?;
    let amount = (row.amount_from.is_some() || row.amount_to.is_some()).then_some(AmountRange {
        from: row.amount_from,
        to: row.amount_to,
    });
    let banner = Banner {
        id: BannerId::parse(&row.banner_id).map_err(&bad)?,
        campaign: CampaignId::parse(&row.campaign_id).map_err(&bad)?,
        place: PlaceId::parse(&row.place_id).map_err(&bad)?,
        content: Content {
            title: Name::parse(&row.title, "title").map_err(&bad)?,
            text: row.body,
            link: Link::parse(&row.link).map_err(&bad)?,
            image,
        },
        weight: Weight::parse(row.weight.into()).map_err(&bad)?,
        conditions: Conditions {
            services: row.service_ids.into_iter().collect::<BTreeSet<_>>(),
            menu_items: row.menu_item_ids.into_iter().collect::<BTreeSet<_>>(),
            amount,
            attributes,
        },
    };
    Ok(StoredBanner {
        banner,
        stamp: Stamp {
            version: row.version,
            updated_at: row.updated_at,
            updated_by: row.updated_by,
        },
    })
}

fn page(limit: i64) -> i64 {
    limit.clamp(1, MAX_PAGE)
}

/// Rebuilds the playlist of each place (in id order, so two rebuilds never wait on each
/// other in a cycle): the next version, its seed, the cursor at 0.
async fn rebuild(tx: &mut Transaction<'_, Postgres>, places: &[String]) -> Result<(), Error> {
    let places: BTreeSet<&String> = places.iter().collect();
    for place in places {
        let id = PlaceId::parse(place).map_err(stored("advertising place", place))?;
        let current: Option<i64> =
            sqlx::query_scalar("SELECT version FROM ad_playlists WHERE place_id = $1 FOR UPDATE")
                .bind(place)
                .fetch_optional(&mut **tx)
                .await?;
        let version = current.unwrap_or(0) + 1;
        let rows: Vec<(String, i32)> = sqlx::query_as(
            "SELECT b.banner_id, b.weight FROM ad_banners b \
             JOIN ad_campaigns c ON c.campaign_id = b.campaign_id \
             WHERE b.place_id = $1 AND c.active ORDER BY b.banner_id",
        )
        .bind(place)
        .fetch_all(&mut **tx)
        .await?;
        let weights = rows
            .iter()
            .map(|(b, w)| Ok((BannerId::parse(b)?, Weight::parse((*w).into())?)))
            .collect::<Result<Vec<_>, AdError>>()
            .map_err(stored("playlist of place", place))?;
        let seed = playlist_seed(&id, version);
        let playlist = Playlist::build(&weights, seed);
        let entries: Vec<&str> = playlist.entries().iter().map(BannerId::as_str).collect();
        sqlx::query(
            "INSERT INTO ad_playlists (place_id, version, seed, entries, position) \
             VALUES ($1, $2, $3, $4, 0) \
             ON CONFLICT (place_id) DO UPDATE SET version = EXCLUDED.version, \
             seed = EXCLUDED.seed, entries = EXCLUDED.entries, position = 0, \
             rebuilt_at = clock_timestamp()",
        )
        .bind(place)
        .bind(version)
        .bind(i64::from_be_bytes(seed.to_be_bytes()))
        .bind(&entries)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn exists(
    tx: &mut Transaction<'_, Postgres>,
    sql: &str,
    id: &str,
) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(sql).bind(id).fetch_one(&mut **tx).await
}

impl Advertising {
    pub fn new(pool: PgPool) -> Advertising {
        Advertising { pool }
    }

    // ---- places ------------------------------------------------------------------------

    /// Stores a new place with an empty playlist; `None` when a place with its id exists.
    ///
    /// Errors: Postgres.
    pub async fn create_place(
        &self,
        place: &Place,
        by: &str,
    ) -> Result<Option<StoredPlace>, Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<PlaceRow> = sqlx::query_as(&format!(
            "INSERT INTO ad_places (place_id, name, interface_type, updated_by) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (place_id) DO NOTHING RETURNING {PLACE_COLUMNS}"
        ))
        .bind(place.id.as_str())
        .bind(place.name.as_str())
        .bind(place.interface.as_str())
        .bind(by)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            rebuild(&mut tx, &[place.id.to_string()]).await?;
        }
        tx.commit().await?;
        row.map(place_of).transpose()
    }

    /// Renames a place or changes its interface type; `None` when there is none.
    ///
    /// Errors: Postgres.
    pub async fn update_place(
        &self,
        place: &Place,
        by: &str,
    ) -> Result<Option<StoredPlace>, Error> {
        let row: Option<PlaceRow> = sqlx::query_as(&format!(
            "UPDATE ad_places SET name = $2, interface_type = $3, updated_by = $4, \
             version = version + 1, updated_at = clock_timestamp() \
             WHERE place_id = $1 RETURNING {PLACE_COLUMNS}"
        ))
        .bind(place.id.as_str())
        .bind(place.name.as_str())
        .bind(place.interface.as_str())
        .bind(by)
        .fetch_optional(&self.pool)
        .await?;
        row.map(place_of).transpose()
    }

    /// The place `id`, if stored. Errors: Postgres.
    pub async fn place(&self, id: &str) -> Result<Option<StoredPlace>, Error> {
        let row: Option<PlaceRow> = sqlx::query_as(&format!(
            "SELECT {PLACE_COLUMNS} FROM ad_places WHERE place_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(place_of).transpose()
    }

    /// Places by id after `after`, at most `limit` (1–100), optionally of one interface
    /// type. Errors: Postgres.
    pub async fn places(
        &self,
        interface: Option<InterfaceType>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredPlace>, Error> {
        let rows: Vec<PlaceRow> = sqlx::query_as(&format!(
            "SELECT {PLACE_COLUMNS} FROM ad_places \
             WHERE ($1::text IS NULL OR interface_type = $1) AND ($2::text IS NULL OR place_id > $2) \
             ORDER BY place_id LIMIT $3"
        ))
        .bind(interface.map(InterfaceType::as_str))
        .bind(after)
        .bind(page(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(place_of).collect()
    }

    // ---- campaigns ---------------------------------------------------------------------

    /// Stores a new campaign; `None` when a campaign with its id exists. Errors: Postgres.
    pub async fn create_campaign(
        &self,
        campaign: &Campaign,
        by: &str,
    ) -> Result<Option<StoredCampaign>, Error> {
        let row: Option<CampaignRow> = sqlx::query_as(&format!(
            "INSERT INTO ad_campaigns (campaign_id, name, active_from, active_to, active, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (campaign_id) DO NOTHING \
             RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(campaign.id.as_str())
        .bind(campaign.name.as_str())
        .bind(campaign.period.from)
        .bind(campaign.period.to)
        .bind(campaign.active)
        .bind(by)
        .fetch_optional(&self.pool)
        .await?;
        row.map(campaign_of).transpose()
    }

    /// Replaces a campaign's name, period and active flag, rebuilding the playlists of the
    /// places its banners are at; `None` when there is none. Errors: Postgres.
    pub async fn update_campaign(
        &self,
        campaign: &Campaign,
        by: &str,
    ) -> Result<Option<StoredCampaign>, Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<CampaignRow> = sqlx::query_as(&format!(
            "UPDATE ad_campaigns SET name = $2, active_from = $3, active_to = $4, active = $5, \
             updated_by = $6, version = version + 1, updated_at = clock_timestamp() \
             WHERE campaign_id = $1 RETURNING {CAMPAIGN_COLUMNS}"
        ))
        .bind(campaign.id.as_str())
        .bind(campaign.name.as_str())
        .bind(campaign.period.from)
        .bind(campaign.period.to)
        .bind(campaign.active)
        .bind(by)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            let places: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT place_id FROM ad_banners WHERE campaign_id = $1",
            )
            .bind(campaign.id.as_str())
            .fetch_all(&mut *tx)
            .await?;
            rebuild(&mut tx, &places).await?;
        }
        tx.commit().await?;
        row.map(campaign_of).transpose()
    }

    /// The campaign `id`, if stored. Errors: Postgres.
    pub async fn campaign(&self, id: &str) -> Result<Option<StoredCampaign>, Error> {
        let row: Option<CampaignRow> = sqlx::query_as(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM ad_campaigns WHERE campaign_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(campaign_of).transpose()
    }

    /// Campaigns by id after `after`, at most `limit` (1–100). Errors: Postgres.
    pub async fn campaigns(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredCampaign>, Error> {
        let rows: Vec<CampaignRow> = sqlx::query_as(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM ad_campaigns WHERE ($1::text IS NULL OR campaign_id > $1) \
             ORDER BY campaign_id LIMIT $2"
        ))
        .bind(after)
        .bind(page(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(campaign_of).collect()
    }

    // ---- banners -----------------------------------------------------------------------

    /// Checks the banner's place and campaign exist. Errors: `unknown_place`,
    /// `unknown_campaign` ([`Error::Advertising`]), Postgres.
    async fn check_refs(tx: &mut Transaction<'_, Postgres>, banner: &Banner) -> Result<(), Error> {
        if !exists(
            tx,
            "SELECT EXISTS (SELECT 1 FROM ad_places WHERE place_id = $1)",
            banner.place.as_str(),
        )
        .await?
        {
            return Err(AdError::UnknownPlace(banner.place.to_string()).into());
        }
        if !exists(
            tx,
            "SELECT EXISTS (SELECT 1 FROM ad_campaigns WHERE campaign_id = $1)",
            banner.campaign.as_str(),
        )
        .await?
        {
            return Err(AdError::UnknownCampaign(banner.campaign.to_string()).into());
        }
        Ok(())
    }

    /// Stores a new banner (its image, if any, comes with [`Advertising::set_image`]) and
    /// rebuilds its place's playlist; `None` when a banner with its id exists.
    ///
    /// Errors: `unknown_place`, `unknown_campaign` ([`Error::Advertising`]), Postgres.
    pub async fn create_banner(
        &self,
        banner: &Banner,
        by: &str,
    ) -> Result<Option<StoredBanner>, Error> {
        let mut tx = self.pool.begin().await?;
        Self::check_refs(&mut tx, banner).await?;
        let c = &banner.conditions;
        let row: Option<BannerRow> = sqlx::query_as(&format!(
            "INSERT INTO ad_banners (banner_id, campaign_id, place_id, title, body, link, weight, \
             service_ids, menu_item_ids, amount_from, amount_to, attribute_patterns, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
             ON CONFLICT (banner_id) DO NOTHING RETURNING {BANNER_COLUMNS}"
        ))
        .bind(banner.id.as_str())
        .bind(banner.campaign.as_str())
        .bind(banner.place.as_str())
        .bind(banner.content.title.as_str())
        .bind(&banner.content.text)
        .bind(banner.content.link.as_str())
        .bind(i32::try_from(banner.weight.get()).unwrap_or(i32::MAX))
        .bind(c.services.iter().collect::<Vec<_>>())
        .bind(c.menu_items.iter().collect::<Vec<_>>())
        .bind(c.amount.and_then(|a| a.from))
        .bind(c.amount.and_then(|a| a.to))
        .bind(Json(patterns(c)))
        .bind(by)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            rebuild(&mut tx, &[banner.place.to_string()]).await?;
        }
        tx.commit().await?;
        row.map(banner_of).transpose()
    }

    /// Replaces a banner's campaign, place, content (its image is kept), weight and
    /// conditions, rebuilding the playlists of its old and new place; `None` when there is
    /// none.
    ///
    /// Errors: `unknown_place`, `unknown_campaign` ([`Error::Advertising`]), Postgres.
    pub async fn update_banner(
        &self,
        banner: &Banner,
        by: &str,
    ) -> Result<Option<StoredBanner>, Error> {
        let mut tx = self.pool.begin().await?;
        Self::check_refs(&mut tx, banner).await?;
        let old_place: Option<String> =
            sqlx::query_scalar("SELECT place_id FROM ad_banners WHERE banner_id = $1 FOR UPDATE")
                .bind(banner.id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(old_place) = old_place else {
            return Ok(None);
        };
        let c = &banner.conditions;
        let row: BannerRow = sqlx::query_as(&format!(
            "UPDATE ad_banners SET campaign_id = $2, place_id = $3, title = $4, body = $5, \
             link = $6, weight = $7, service_ids = $8, menu_item_ids = $9, amount_from = $10, \
             amount_to = $11, attribute_patterns = $12, updated_by = $13, version = version + 1, \
             updated_at = clock_timestamp() WHERE banner_id = $1 RETURNING {BANNER_COLUMNS}"
        ))
        .bind(banner.id.as_str())
        .bind(banner.campaign.as_str())
        .bind(banner.place.as_str())
        .bind(banner.content.title.as_str())
        .bind(&banner.content.text)
        .bind(banner.content.link.as_str())
        .bind(i32::try_from(banner.weight.get()).unwrap_or(i32::MAX))
        .bind(c.services.iter().collect::<Vec<_>>())
        .bind(c.menu_items.iter().collect::<Vec<_>>())
        .bind(c.amount.and_then(|a| a.from))
        .bind(c.amount.and_then(|a| a.to))
        .bind(Json(patterns(c)))
        .bind(by)
        .fetch_one(&mut *tx)
        .await?;
        rebuild(&mut tx, &[old_place, banner.place.to_string()]).await?;
        tx.commit().await?;
        banner_of(row).map(Some)
    }

    /// Sets a banner's image (checked by [`ImageType::check`]); `None` when there is no
    /// banner `id`. The playlist is unchanged.
    ///
    /// Errors: `image_empty`, `image_too_large`, `image_content_mismatch`
    /// ([`Error::Advertising`]), Postgres.
    pub async fn set_image(
        &self,
        id: &BannerId,
        image: ImageType,
        bytes: &[u8],
        by: &str,
    ) -> Result<Option<StoredBanner>, Error> {
        image.check(bytes)?;
        let row: Option<BannerRow> = sqlx::query_as(&format!(
            "UPDATE ad_banners SET image = $2, image_type = $3, updated_by = $4, \
             version = version + 1, updated_at = clock_timestamp() \
             WHERE banner_id = $1 RETURNING {BANNER_COLUMNS}"
        ))
        .bind(id.as_str())
        .bind(bytes)
        .bind(image.content_type())
        .bind(by)
        .fetch_optional(&self.pool)
        .await?;
        row.map(banner_of).transpose()
    }

    /// A banner's image and its type; `None` without a banner `id` or without an image.
    ///
    /// Errors: Postgres.
    pub async fn image(&self, id: &str) -> Result<Option<(ImageType, Vec<u8>)>, Error> {
        let row: Option<(Option<String>, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT image_type, image FROM ad_banners WHERE banner_id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            Some((Some(kind), Some(bytes))) => Ok(Some((
                ImageType::parse(&kind).map_err(stored("banner", id))?,
                bytes,
            ))),
            _ => Ok(None),
        }
    }

    /// The banner `id`, if stored. Errors: Postgres.
    pub async fn banner(&self, id: &str) -> Result<Option<StoredBanner>, Error> {
        let row: Option<BannerRow> = sqlx::query_as(&format!(
            "SELECT {BANNER_COLUMNS} FROM ad_banners WHERE banner_id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(banner_of).transpose()
    }

    /// Banners by id after `after`, at most `limit` (1–100), optionally of one place and
    /// one campaign. Errors: Postgres.
    pub async fn banners(
        &self,
        place: Option<&str>,
        campaign: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StoredBanner>, Error> {
        let rows: Vec<BannerRow> = sqlx::query_as(&format!(
            "SELECT {BANNER_COLUMNS} FROM ad_banners \
             WHERE ($1::text IS NULL OR place_id = $1) AND ($2::text IS NULL OR campaign_id = $2) \
             AND ($3::text IS NULL OR banner_id > $3) ORDER BY banner_id LIMIT $4"
        ))
        .bind(place)
        .bind(campaign)
        .bind(after)
        .bind(page(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(banner_of).collect()
    }

    /// The playlist of place `id` as stored, if the place exists. Errors: Postgres.
    pub async fn playlist(&self, id: &str) -> Result<Option<StoredPlaylist>, Error> {
        let row: Option<(Vec<String>, i64, i64, i64)> = sqlx::query_as(
            "SELECT entries, version, seed, position FROM ad_playlists WHERE place_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(entries, version, seed, position)| {
            Ok(StoredPlaylist {
                playlist: Playlist::from_entries(&entries)
                    .map_err(stored("playlist of place", id))?,
                version,
                seed,
                position,
            })
        })
        .transpose()
    }

    // ---- serving -----------------------------------------------------------------------

    /// The next banner of place `place_id` for `op` at `at` (spec §6): the next entry of the
    /// place's playlist from its cursor whose banner's conditions match `op` and whose
    /// campaign is active with `at` in its period, walking at most one lap; the cursor moves
    /// past it. `None` when no entry matches (the cursor stays).
    ///
    /// Errors: `invalid_advertising_id`, `unknown_place` ([`Error::Advertising`]); Postgres.
    pub async fn next_banner(
        &self,
        place_id: &str,
        op: &Operation,
        at: OffsetDateTime,
    ) -> Result<Option<Banner>, Error> {
        let place = PlaceId::parse(place_id)?;
        let mut tx = self.pool.begin().await?;
        let row: Option<(Vec<String>, i64)> = sqlx::query_as(
            "SELECT entries, position FROM ad_playlists WHERE place_id = $1 FOR UPDATE",
        )
        .bind(place.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((entries, position)) = row else {
            return Err(AdError::UnknownPlace(place.to_string()).into());
        };
        if entries.is_empty() {
            return Ok(None);
        }
        let playlist =
            Playlist::from_entries(&entries).map_err(stored("playlist of place", place_id))?;
        let candidates = self.candidates(&mut tx, &place).await?;
        let cursor = usize::try_from(position).unwrap_or(0);
        let Some((pick, banner)) = serve(&playlist, cursor, &candidates, op, at) else {
            return Ok(None);
        };
        let moved: i64 = sqlx::query_scalar(
            "UPDATE ad_playlists SET position = $2 WHERE place_id = $1 RETURNING position",
        )
        .bind(place.as_str())
        .bind(i64::try_from(pick.next_cursor).unwrap_or(0))
        .fetch_one(&mut *tx)
        .await?;
        tracing::debug!(place = %place, banner = %banner.id, cursor = moved, "banner served");
        let banner = banner.clone();
        tx.commit().await?;
        Ok(Some(banner))
    }

    /// The banners of a place with their campaigns.
    async fn candidates(
        &self,
        tx: &mut Transaction<'_, Postgres>,
        place: &PlaceId,
    ) -> Result<BTreeMap<BannerId, Candidate>, Error> {
        let banners: Vec<BannerRow> = sqlx::query_as(&format!(
            "SELECT {BANNER_COLUMNS} FROM ad_banners WHERE place_id = $1"
        ))
        .bind(place.as_str())
        .fetch_all(&mut **tx)
        .await?;
        let campaigns: Vec<CampaignRow> = sqlx::query_as(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM ad_campaigns WHERE campaign_id IN \
             (SELECT campaign_id FROM ad_banners WHERE place_id = $1)"
        ))
        .bind(place.as_str())
        .fetch_all(&mut **tx)
        .await?;
        let campaigns: BTreeMap<CampaignId, Campaign> = campaigns
            .into_iter()
            .map(|r| campaign_of(r).map(|c| (c.campaign.id.clone(), c.campaign)))
            .collect::<Result<_, _>>()?;
        let mut out = BTreeMap::new();
        for row in banners {
            let banner = banner_of(row)?.banner;
            if let Some(campaign) = campaigns.get(&banner.campaign) {
                out.insert(
                    banner.id.clone(),
                    Candidate {
                        banner,
                        campaign: campaign.clone(),
                    },
                );
            }
        }
        Ok(out)
    }
}

fn patterns(c: &Conditions) -> BTreeMap<String, String> {
    c.attributes
        .iter()
        .map(|(k, p)| (k.clone(), p.as_str().to_owned()))
        .collect()
}
