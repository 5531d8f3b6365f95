//! The processing dictionaries (e-wallet spec §1.3, §3.1) in Postgres: every sync from the
//! processing centre and every import of a file is one version — all dictionaries written in
//! one transaction under the next version number, recorded in `dictionary_versions` with its
//! source, who imported it and how many items each dictionary holds — and the current version
//! is the highest. Earlier versions are kept. What the dictionaries must be is the domain's
//! ([`etr_domain::dictionaries`]): a document is parsed into [`Dictionaries`] before anything
//! is written, so a refused one writes nothing.
//!
//! Reads: the current version's [`Catalogue`] (cached per version by [`Catalogues`]), its
//! currency rates, map points and a phone number's capacity range (looked up by index, the
//! ranges are never loaded whole).

use etr_domain::dictionaries::{
    Catalogue, CommissionProfileDocument, CommissionRuleDocument, Counts, Dictionaries, Document,
    MenuItemDocument, PaymentSourceDocument, ProcessingCentre, ReceiptTemplateDocument,
    ServiceDocument, MAX_DEPTH,
};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use time::OffsetDateTime;

use crate::error::Error;

/// The `source` of a version synchronised from the processing centre.
pub const FROM_PROCESSING_CENTRE: &str = "processing-centre";

/// Rows of the capacity ranges written per statement.
const RANGE_CHUNK: usize = 50_000;

/// A version just written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Imported {
    pub version: i64,
    pub counts: Counts,
}

/// A stored version: where it came from, who imported it, when, and its counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
    pub version: i64,
    pub source: String,
    pub imported_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub imported_at: OffsetDateTime,
    pub counts: Counts,
}

/// Writes `dictionaries` as the next version, in one transaction (one import at a time).
///
/// Errors: Postgres (nothing is written).
pub async fn import(
    pool: &PgPool,
    dictionaries: &Dictionaries,
    source: &str,
    by: &str,
) -> Result<Imported, Error> {
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    let version = write(&mut tx, dictionaries, source, by).await?;
    tx.commit().await?;
    Ok(Imported {
        version,
        counts: dictionaries.counts(),
    })
}

/// Parses `document` and writes it as the next version.
///
/// Errors: [`Error::Dictionary`] when the domain refuses it (nothing is written); Postgres.
pub async fn import_document(
    pool: &PgPool,
    document: &Document,
    source: &str,
    by: &str,
) -> Result<Imported, Error> {
    let dictionaries = Dictionaries::parse(document)?;
    import(pool, &dictionaries, source, by).await
}

/// Fetches the dictionaries from the processing centre and writes them as the next version
/// (source [`FROM_PROCESSING_CENTRE`]).
///
/// Errors: [`Error::Unavailable`] when the processing centre does not answer;
/// [`Error::Dictionary`] when its document is refused (nothing is written); Postgres.
pub async fn sync(
    pool: &PgPool,
    centre: &dyn ProcessingCentre,
    by: &str,
) -> Result<Imported, Error> {
    let document = fetch(centre).await?;
    import_document(pool, &document, FROM_PROCESSING_CENTRE, by).await
}

/// Synchronises from the processing centre when no version is stored yet (a fresh platform
/// then has a menu); `None` when there already was one. Two processes starting together
/// write one version.
///
/// Errors: as [`sync`].
pub async fn ensure(
    pool: &PgPool,
    centre: &dyn ProcessingCentre,
) -> Result<Option<Imported>, Error> {
    if current_version(pool).await?.is_some() {
        return Ok(None);
    }
    let dictionaries = Dictionaries::parse(&fetch(centre).await?)?;
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    let any: Option<i64> = sqlx::query_scalar("SELECT version FROM dictionary_versions LIMIT 1")
        .fetch_optional(&mut *tx)
        .await?;
    if any.is_some() {
        return Ok(None);
    }
    let version = write(&mut tx, &dictionaries, FROM_PROCESSING_CENTRE, "platform").await?;
    tx.commit().await?;
    Ok(Some(Imported {
        version,
        counts: dictionaries.counts(),
    }))
}

async fn fetch(centre: &dyn ProcessingCentre) -> Result<Document, Error> {
    centre
        .dictionaries()
        .await
        .map_err(|reason| Error::Unavailable {
            system: "the processing centre",
            reason,
        })
}

/// One import at a time; readers are not blocked.
async fn lock(tx: &mut PgConnection) -> Result<(), Error> {
    sqlx::query("LOCK TABLE dictionary_versions IN SHARE ROW EXCLUSIVE MODE")
        .execute(tx)
        .await?;
    Ok(())
}

fn position(i: usize) -> Result<i32, Error> {
    i32::try_from(i).map_err(|_| Error::Invalid(format!("more than {} items", i32::MAX)))
}

fn positions(n: usize) -> Result<Vec<i32>, Error> {
    (0..n).map(position).collect()
}

/// Writes every dictionary under the next version; returns it.
async fn write(
    tx: &mut PgConnection,
    d: &Dictionaries,
    source: &str,
    by: &str,
) -> Result<i64, Error> {
    let version: i64 =
        sqlx::query_scalar("SELECT COALESCE(max(version), 0) + 1 FROM dictionary_versions")
            .fetch_one(&mut *tx)
            .await?;
    let counts = serde_json::to_value(d.counts()).map_err(|e| Error::Invalid(e.to_string()))?;
    sqlx::query(
        "INSERT INTO dictionary_versions (version, source, imported_by, counts) VALUES ($1, $2, $3, $4)",
    )
    .bind(version)
    .bind(source)
    .bind(by)
    .bind(counts)
    .execute(&mut *tx)
    .await?;
    let c = &d.catalogue;

    let services: Vec<_> = c.services().collect();
    sqlx::query(
        "INSERT INTO dictionary_services (version, position, service_id, name, receipt_template, logo) \
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::text[], $6::text[])",
    )
    .bind(version)
    .bind(positions(services.len())?)
    .bind(services.iter().map(|s| s.id.to_string()).collect::<Vec<_>>())
    .bind(services.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
    .bind(
        services
            .iter()
            .map(|s| s.receipt_template.as_ref().map(ToString::to_string))
            .collect::<Vec<_>>(),
    )
    .bind(services.iter().map(|s| s.logo.clone()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;

    let sources: Vec<_> = c.payment_sources().collect();
    sqlx::query(
        "INSERT INTO dictionary_payment_sources (version, position, source_id, name) \
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[])",
    )
    .bind(version)
    .bind(positions(sources.len())?)
    .bind(sources.iter().map(|s| s.id.to_string()).collect::<Vec<_>>())
    .bind(sources.iter().map(|s| s.name.clone()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;

    let profiles: Vec<_> = c.commission_profiles().collect();
    sqlx::query(
        "INSERT INTO dictionary_commission_profiles (version, position, profile_id, name, currency) \
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::text[])",
    )
    .bind(version)
    .bind(positions(profiles.len())?)
    .bind(profiles.iter().map(|p| p.id.to_string()).collect::<Vec<_>>())
    .bind(profiles.iter().map(|p| p.name.clone()).collect::<Vec<_>>())
    .bind(profiles.iter().map(|p| p.currency.code().to_owned()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    let rules: Vec<_> = profiles
        .iter()
        .flat_map(|p| p.rules.iter().map(move |r| (p, r)))
        .collect();
    sqlx::query(
        "INSERT INTO dictionary_commission_rules \
           (version, profile_id, position, source_id, amount_from, amount_to, fixed, percent, min, max) \
         SELECT $1, * FROM UNNEST($2::text[], $3::int[], $4::text[], $5::numeric[], $6::numeric[], \
           $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[])",
    )
    .bind(version)
    .bind(rules.iter().map(|(p, _)| p.id.to_string()).collect::<Vec<_>>())
    .bind(
        rules
            .iter()
            .map(|(_, r)| position(r.index))
            .collect::<Result<Vec<_>, _>>()?,
    )
    .bind(rules.iter().map(|(_, r)| r.source.to_string()).collect::<Vec<_>>())
    .bind(rules.iter().map(|(_, r)| r.from).collect::<Vec<Decimal>>())
    .bind(rules.iter().map(|(_, r)| r.to).collect::<Vec<Option<Decimal>>>())
    .bind(rules.iter().map(|(_, r)| r.fixed).collect::<Vec<Decimal>>())
    .bind(rules.iter().map(|(_, r)| r.percent).collect::<Vec<Decimal>>())
    .bind(rules.iter().map(|(_, r)| r.min).collect::<Vec<Decimal>>())
    .bind(rules.iter().map(|(_, r)| r.max).collect::<Vec<Option<Decimal>>>())
    .execute(&mut *tx)
    .await?;

    let items = c.menu.walk();
    sqlx::query(
        "INSERT INTO dictionary_menu_items \
           (version, item_id, parent_id, position, path, name, operation, service_id, commission_profile) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::int[], $5::text[], $6::text[], \
           $7::text[], $8::text[], $9::text[])",
    )
    .bind(version)
    .bind(items.iter().map(|p| p.item.id.to_string()).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|p| p.parent.map(ToString::to_string))
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|p| position(p.position))
            .collect::<Result<Vec<_>, _>>()?,
    )
    .bind(items.iter().map(|p| p.item.path.clone()).collect::<Vec<_>>())
    .bind(items.iter().map(|p| p.item.name.clone()).collect::<Vec<_>>())
    .bind(
        items
            .iter()
            .map(|p| p.item.operation.code().to_owned())
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|p| p.item.service().map(|(s, _)| s.to_string()))
            .collect::<Vec<_>>(),
    )
    .bind(
        items
            .iter()
            .map(|p| p.item.service().map(|(_, profile)| profile.to_string()))
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;

    let templates: Vec<_> = c.receipt_templates.iter().collect();
    sqlx::query(
        "INSERT INTO dictionary_receipt_templates (version, name, body) \
         SELECT $1, * FROM UNNEST($2::text[], $3::text[])",
    )
    .bind(version)
    .bind(
        templates
            .iter()
            .map(|(n, _)| n.to_string())
            .collect::<Vec<_>>(),
    )
    .bind(
        templates
            .iter()
            .map(|(_, b)| (*b).to_owned())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;

    let rates = &d.currency_rates;
    sqlx::query(
        "INSERT INTO dictionary_currency_rates (version, position, currency, base, rate_date, rate) \
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::date[], $6::numeric[])",
    )
    .bind(version)
    .bind(positions(rates.len())?)
    .bind(rates.iter().map(|r| r.currency.to_string()).collect::<Vec<_>>())
    .bind(rates.iter().map(|r| r.base.to_string()).collect::<Vec<_>>())
    .bind(rates.iter().map(|r| r.date).collect::<Vec<_>>())
    .bind(rates.iter().map(|r| r.rate).collect::<Vec<Decimal>>())
    .execute(&mut *tx)
    .await?;

    let points = &d.map_points;
    sqlx::query(
        "INSERT INTO dictionary_map_points \
           (version, position, point_id, name, address, latitude, longitude, kind) \
         SELECT $1, * FROM UNNEST($2::int[], $3::text[], $4::text[], $5::text[], $6::numeric[], \
           $7::numeric[], $8::text[])",
    )
    .bind(version)
    .bind(positions(points.len())?)
    .bind(points.iter().map(|p| p.id.to_string()).collect::<Vec<_>>())
    .bind(points.iter().map(|p| p.name.clone()).collect::<Vec<_>>())
    .bind(points.iter().map(|p| p.address.clone()).collect::<Vec<_>>())
    .bind(points.iter().map(|p| p.latitude).collect::<Vec<Decimal>>())
    .bind(points.iter().map(|p| p.longitude).collect::<Vec<Decimal>>())
    .bind(
        points
            .iter()
            .map(|p| p.kind.code().to_owned())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await?;

    for chunk in d.phone_ranges.as_slice().chunks(RANGE_CHUNK) {
        let number = |n: u64| {
            i64::try_from(n).map_err(|_| Error::Invalid(format!("number {n} is too large")))
        };
        sqlx::query(
            "INSERT INTO dictionary_phone_ranges (version, number_from, number_to, operator, region) \
             SELECT $1, * FROM UNNEST($2::bigint[], $3::bigint[], $4::text[], $5::text[])",
        )
        .bind(version)
        .bind(chunk.iter().map(|r| number(r.from)).collect::<Result<Vec<_>, _>>()?)
        .bind(chunk.iter().map(|r| number(r.to)).collect::<Result<Vec<_>, _>>()?)
        .bind(chunk.iter().map(|r| r.operator.clone()).collect::<Vec<_>>())
        .bind(chunk.iter().map(|r| r.region.clone()).collect::<Vec<_>>())
        .execute(&mut *tx)
        .await?;
    }
    Ok(version)
}

/// The current (highest) version, none before the first import.
///
/// Errors: Postgres.
pub async fn current_version(pool: &PgPool) -> Result<Option<i64>, Error> {
    Ok(
        sqlx::query_scalar("SELECT max(version) FROM dictionary_versions")
            .fetch_one(pool)
            .await?,
    )
}

type VersionRow = (i64, String, String, OffsetDateTime, serde_json::Value);

fn version_of(row: VersionRow) -> Result<Version, Error> {
    let (version, source, imported_by, imported_at, counts) = row;
    Ok(Version {
        version,
        source,
        imported_by,
        imported_at,
        counts: serde_json::from_value(counts)
            .map_err(|e| Error::Config(format!("dictionary version {version}: {e}")))?,
    })
}

/// The stored versions, newest first, at most `limit`.
///
/// Errors: Postgres.
pub async fn versions(pool: &PgPool, limit: i64) -> Result<Vec<Version>, Error> {
    let rows: Vec<VersionRow> = sqlx::query_as(
        "SELECT version, source, imported_by, imported_at, counts FROM dictionary_versions \
         ORDER BY version DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(version_of).collect()
}

/// One stored version's record.
///
/// Errors: Postgres.
pub async fn version(pool: &PgPool, version: i64) -> Result<Option<Version>, Error> {
    let row: Option<VersionRow> = sqlx::query_as(
        "SELECT version, source, imported_by, imported_at, counts FROM dictionary_versions WHERE version = $1",
    )
    .bind(version)
    .fetch_optional(pool)
    .await?;
    row.map(version_of).transpose()
}

type MenuRow = (
    String,
    Option<String>,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// The catalogue (services, payment sources, commission profiles, menu, receipt templates)
/// of `version`, parsed by the domain as it was when imported.
///
/// Errors: Postgres; [`Error::Dictionary`] for stored rows the domain no longer accepts.
pub async fn catalogue(pool: &PgPool, version: i64) -> Result<Catalogue, Error> {
    let services: Vec<(String, String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT service_id, name, receipt_template, logo FROM dictionary_services \
         WHERE version = $1 ORDER BY position",
    )
    .bind(version)
    .fetch_all(pool)
    .await?;
    let sources: Vec<(String, String)> = sqlx::query_as(
        "SELECT source_id, name FROM dictionary_payment_sources WHERE version = $1 ORDER BY position",
    )
    .bind(version)
    .fetch_all(pool)
    .await?;
    let profiles: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT profile_id, name, currency FROM dictionary_commission_profiles \
         WHERE version = $1 ORDER BY position",
    )
    .bind(version)
    .fetch_all(pool)
    .await?;
    type RuleRow = (
        String,
        String,
        Decimal,
        Option<Decimal>,
        Decimal,
        Decimal,
        Decimal,
        Option<Decimal>,
    );
    let rules: Vec<RuleRow> = sqlx::query_as(
        "SELECT profile_id, source_id, amount_from, amount_to, fixed, percent, min, max \
         FROM dictionary_commission_rules WHERE version = $1 ORDER BY profile_id, position",
    )
    .bind(version)
    .fetch_all(pool)
    .await?;
    let menu: Vec<MenuRow> = sqlx::query_as(
        "SELECT item_id, parent_id, name, operation, service_id, commission_profile \
         FROM dictionary_menu_items WHERE version = $1 ORDER BY position, item_id",
    )
    .bind(version)
    .fetch_all(pool)
    .await?;
    let templates: Vec<(String, String)> = sqlx::query_as(
        "SELECT name, body FROM dictionary_receipt_templates WHERE version = $1 ORDER BY name",
    )
    .bind(version)
    .fetch_all(pool)
    .await?;

    let mut rules_of: BTreeMap<String, Vec<CommissionRuleDocument>> = BTreeMap::new();
    for (profile, source, from, to, fixed, percent, min, max) in rules {
        rules_of
            .entry(profile)
            .or_default()
            .push(CommissionRuleDocument {
                source,
                from: from.to_string(),
                to: to.map(|t| t.to_string()),
                fixed: Some(fixed.to_string()),
                percent: Some(percent.normalize().to_string()),
                min: Some(min.to_string()),
                max: max.map(|m| m.to_string()),
            });
    }
    let document = Document {
        services: services
            .into_iter()
            .map(|(id, name, receipt_template, logo)| ServiceDocument {
                id,
                name,
                receipt_template,
                logo,
            })
            .collect(),
        payment_sources: sources
            .into_iter()
            .map(|(id, name)| PaymentSourceDocument { id, name })
            .collect(),
        commission_profiles: profiles
            .into_iter()
            .map(|(id, name, currency)| CommissionProfileDocument {
                rules: rules_of.remove(&id).unwrap_or_default(),
                id,
                name,
                currency,
            })
            .collect(),
        menu: menu_tree(menu),
        receipt_templates: templates
            .into_iter()
            .map(|(name, body)| ReceiptTemplateDocument { name, body })
            .collect(),
        ..Document::default()
    };
    Ok(Catalogue::parse(&document)?)
}

/// The menu's rows (ordered by position) as the document's nested items.
fn menu_tree(rows: Vec<MenuRow>) -> Vec<MenuItemDocument> {
    let mut children: BTreeMap<Option<String>, Vec<MenuRow>> = BTreeMap::new();
    for row in rows {
        children.entry(row.1.clone()).or_default().push(row);
    }
    fn build(
        parent: Option<String>,
        children: &mut BTreeMap<Option<String>, Vec<MenuRow>>,
        depth: usize,
    ) -> Vec<MenuItemDocument> {
        let rows = children.remove(&parent).unwrap_or_default();
        rows.into_iter()
            .map(|(id, _, name, operation, service, commission_profile)| {
                let items = if depth < MAX_DEPTH {
                    build(Some(id.clone()), children, depth + 1)
                } else {
                    Vec::new()
                };
                MenuItemDocument {
                    id,
                    name,
                    operation: Some(operation),
                    service,
                    commission_profile,
                    items,
                }
            })
            .collect()
    }
    build(None, &mut children, 1)
}

/// The current version's catalogue with its version number.
#[derive(Debug)]
pub struct Current {
    pub version: i64,
    pub catalogue: Catalogue,
}

/// The current catalogue, read once per version: each call asks Postgres for the current
/// version number and reads the catalogue again only when it changed. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Catalogues(Arc<RwLock<Option<Arc<Current>>>>);

impl Catalogues {
    /// The current version's catalogue; none before the first import.
    ///
    /// Errors: as [`catalogue`].
    pub async fn current(&self, pool: &PgPool) -> Result<Option<Arc<Current>>, Error> {
        let Some(version) = current_version(pool).await? else {
            return Ok(None);
        };
        let cached = match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        if let Some(current) = cached.filter(|c| c.version == version) {
            return Ok(Some(current));
        }
        let current = Arc::new(Current {
            version,
            catalogue: catalogue(pool, version).await?,
        });
        let mut slot = match self.0.write() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slot.as_ref().is_none_or(|c| c.version < version) {
            *slot = Some(current.clone());
        }
        Ok(Some(current))
    }
}

/// A currency rate of a version (reference only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct RateRow {
    pub currency: String,
    pub base: String,
    pub rate_date: time::Date,
    pub rate: Decimal,
}

/// The currency rates of `version` in document order, only of `currency` when given.
///
/// Errors: Postgres.
pub async fn rates(
    pool: &PgPool,
    version: i64,
    currency: Option<&str>,
) -> Result<Vec<RateRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT currency, base, rate_date, rate FROM dictionary_currency_rates \
         WHERE version = $1 AND ($2::text IS NULL OR currency = $2) ORDER BY position",
    )
    .bind(version)
    .bind(currency)
    .fetch_all(pool)
    .await?)
}

/// A map point of a version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct MapPointRow {
    pub point_id: String,
    pub name: String,
    pub address: String,
    pub latitude: Decimal,
    pub longitude: Decimal,
    pub kind: String,
}

/// The map points of `version` in document order, only of `kind` when given.
///
/// Errors: Postgres.
pub async fn map_points(
    pool: &PgPool,
    version: i64,
    kind: Option<&str>,
) -> Result<Vec<MapPointRow>, Error> {
    Ok(sqlx::query_as(
        "SELECT point_id, name, address, latitude, longitude, kind FROM dictionary_map_points \
         WHERE version = $1 AND ($2::text IS NULL OR kind = $2) ORDER BY position",
    )
    .bind(version)
    .bind(kind)
    .fetch_all(pool)
    .await?)
}

/// The capacity range a number belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PhoneRangeRow {
    pub number_from: i64,
    pub number_to: i64,
    pub operator: String,
    pub region: String,
}

/// The range of `version` holding the full number `number` (country code first, e.g.
/// `79161234567`), if any.
///
/// Errors: Postgres.
pub async fn phone_range(
    pool: &PgPool,
    version: i64,
    number: u64,
) -> Result<Option<PhoneRangeRow>, Error> {
    let Ok(number) = i64::try_from(number) else {
        return Ok(None);
    };
    let row: Option<PhoneRangeRow> = sqlx::query_as(
        "SELECT number_from, number_to, operator, region FROM dictionary_phone_ranges \
         WHERE version = $1 AND number_from <= $2 ORDER BY number_from DESC LIMIT 1",
    )
    .bind(version)
    .bind(number)
    .fetch_optional(pool)
    .await?;
    Ok(row.filter(|r| number <= r.number_to))
}
