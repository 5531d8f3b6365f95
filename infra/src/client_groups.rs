//! The client group catalogue (e-wallet spec §2) in Postgres: `client_groups` holds each
//! group's current version, `client_group_versions` every version with who changed it. The
//! rules a group must keep are the domain's ([`etr_domain::limits::Group::validate`]); this
//! module only stores and reads them.

use etr_domain::limits::{Catalogue, CurrencyLimits, Group, GroupId};
use etr_domain::Currency;
use sqlx::PgPool;
use std::collections::BTreeMap;

use crate::error::Error;

/// Writes the built-in groups ([`Catalogue::default`]) when the catalogue is empty.
///
/// Errors: Postgres.
pub async fn ensure_defaults(pool: &PgPool) -> Result<(), Error> {
    let any: Option<i32> = sqlx::query_scalar("SELECT 1 FROM client_groups LIMIT 1")
        .fetch_optional(pool)
        .await?;
    if any.is_some() {
        return Ok(());
    }
    let defaults = Catalogue::default();
    let mut tx = pool.begin().await?;
    for group in defaults.groups.values() {
        save(
            &mut tx,
            group,
            group.id == defaults.default_group,
            "platform",
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The catalogue as stored (the default group: the one marked so, else `identified`).
///
/// Errors: Postgres; a stored group that does not parse ([`Error::Config`]).
pub async fn read(pool: &PgPool) -> Result<Catalogue, Error> {
    let rows: Vec<(String, String, serde_json::Value, bool)> =
        sqlx::query_as("SELECT group_id, name, limits, is_default FROM client_groups")
            .fetch_all(pool)
            .await?;
    let mut groups = BTreeMap::new();
    let mut default_group = GroupId::identified();
    for (id, name, limits, is_default) in rows {
        let id = GroupId::parse(&id).map_err(|e| Error::Config(e.to_string()))?;
        let limits: BTreeMap<Currency, CurrencyLimits> = serde_json::from_value(limits)
            .map_err(|e| Error::Config(format!("client group {id}: {e}")))?;
        if is_default {
            default_group = id.clone();
        }
        groups.insert(id.clone(), Group { id, name, limits });
    }
    Ok(Catalogue {
        groups,
        default_group,
    })
}

/// Creates or replaces `group` (a new version), making it the default when `is_default`;
/// returns the version. Run it in a transaction that holds the table's lock.
///
/// Errors: Postgres.
pub async fn save(
    tx: &mut sqlx::PgConnection,
    group: &Group,
    is_default: bool,
    by: &str,
) -> Result<i64, Error> {
    let limits = serde_json::to_value(&group.limits).map_err(|e| Error::Config(e.to_string()))?;
    if is_default {
        sqlx::query(
            "UPDATE client_groups SET is_default = false WHERE is_default AND group_id <> $1",
        )
        .bind(group.id.as_str())
        .execute(&mut *tx)
        .await?;
    }
    let version: i64 = sqlx::query_scalar(
        "INSERT INTO client_groups (group_id, name, limits, is_default, version, updated_by) \
         VALUES ($1, $2, $3, $4, 1, $5) \
         ON CONFLICT (group_id) DO UPDATE SET name = EXCLUDED.name, limits = EXCLUDED.limits, \
           is_default = client_groups.is_default OR EXCLUDED.is_default, \
           version = client_groups.version + 1, updated_at = clock_timestamp(), updated_by = EXCLUDED.updated_by \
         RETURNING version",
    )
    .bind(group.id.as_str())
    .bind(&group.name)
    .bind(&limits)
    .bind(is_default)
    .bind(by)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO client_group_versions (group_id, version, name, limits, is_default, changed_by) \
         SELECT group_id, version, name, limits, is_default, updated_by FROM client_groups WHERE group_id = $1",
    )
    .bind(group.id.as_str())
    .execute(&mut *tx)
    .await?;
    Ok(version)
}
