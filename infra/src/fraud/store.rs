//! The fraud-monitoring rules in Postgres (`fraud_rules`). The rules themselves are the
//! domain's ([`etr_domain::fraud::Rule`], its checks in [`Rule::validate`]); this module only
//! stores and reads them.

use etr_domain::fraud::{self, InterfaceType, Key, Level, RoutePrefix, Rule, RuleId};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::Error;

/// A stored rule with who changed it last and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    pub rule: Rule,
    /// 1 when created, one more at every change.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub updated_by: String,
}

type Row = (
    String,
    String,
    Option<String>,
    String,
    i32,
    i32,
    Option<String>,
    Option<String>,
    bool,
    i64,
    OffsetDateTime,
    OffsetDateTime,
    String,
);

const COLUMNS: &str = "rule_id, level, interface_type, key, request_limit, period_secs, \
     route_prefix, client_id, active, version, created_at, updated_at, updated_by";

fn parse(row: Row) -> Result<StoredRule, Error> {
    let (
        id,
        level,
        interface,
        key,
        limit,
        period,
        prefix,
        client,
        active,
        version,
        created,
        updated,
        by,
    ) = row;
    let bad = |e: fraud::RuleError| Error::Config(format!("fraud rule {id}: {e}"));
    let rule = Rule {
        id: RuleId::parse(&id).map_err(bad)?,
        level: Level::parse(&level).map_err(bad)?,
        interface: interface
            .as_deref()
            .map(InterfaceType::parse)
            .transpose()
            .map_err(bad)?,
        key: Key::parse(&key).map_err(bad)?,
        limit: u32::try_from(limit).map_err(|_| bad(fraud::RuleError::Limit(limit.into())))?,
        period_secs: u32::try_from(period)
            .map_err(|_| bad(fraud::RuleError::Period(period.into())))?,
        route_prefix: prefix
            .as_deref()
            .map(RoutePrefix::parse)
            .transpose()
            .map_err(bad)?,
        client,
        active,
    };
    rule.validate().map_err(bad)?;
    Ok(StoredRule {
        rule,
        version,
        created_at: created,
        updated_at: updated,
        updated_by: by,
    })
}

/// Every stored rule, by id.
///
/// Errors: Postgres; a stored rule that no longer parses ([`Error::Config`]).
pub async fn list(pool: &PgPool) -> Result<Vec<StoredRule>, Error> {
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM fraud_rules ORDER BY rule_id"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(parse).collect()
}

/// The rules in force: the stored ones by id, or the built-in defaults
/// ([`fraud::defaults`]) while none is stored.
///
/// Errors: as [`list`].
pub async fn in_force(pool: &PgPool) -> Result<Vec<Rule>, Error> {
    let stored = list(pool).await?;
    if stored.is_empty() {
        return Ok(fraud::defaults());
    }
    Ok(stored.into_iter().map(|s| s.rule).collect())
}

fn bind_rule<'q>(
    query: sqlx::query::QueryAs<'q, sqlx::Postgres, Row, sqlx::postgres::PgArguments>,
    rule: &'q Rule,
) -> sqlx::query::QueryAs<'q, sqlx::Postgres, Row, sqlx::postgres::PgArguments> {
    query
        .bind(rule.id.as_str())
        .bind(rule.level.as_str())
        .bind(rule.interface.map(InterfaceType::as_str))
        .bind(rule.key.as_str())
        .bind(i32::try_from(rule.limit).unwrap_or(i32::MAX))
        .bind(i32::try_from(rule.period_secs).unwrap_or(i32::MAX))
        .bind(rule.route_prefix.as_ref().map(RoutePrefix::as_str))
        .bind(rule.client.as_deref())
        .bind(rule.active)
}

/// Stores a new rule; `None` when a rule with its id exists (nothing changed).
///
/// Errors: Postgres; a rule that breaks [`Rule::validate`] ([`Error::Invalid`]).
pub async fn create(pool: &PgPool, rule: &Rule, by: &str) -> Result<Option<StoredRule>, Error> {
    rule.validate().map_err(|e| Error::Invalid(e.to_string()))?;
    let row: Option<Row> = bind_rule(
        sqlx::query_as(&format!(
            "INSERT INTO fraud_rules (rule_id, level, interface_type, key, request_limit, period_secs, \
             route_prefix, client_id, active, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (rule_id) DO NOTHING RETURNING {COLUMNS}"
        )),
        rule,
    )
    .bind(by)
    .fetch_optional(pool)
    .await?;
    row.map(parse).transpose()
}

/// Replaces the rule with `rule.id` (its version goes up by one); `None` when there is none.
///
/// Errors: Postgres; a rule that breaks [`Rule::validate`] ([`Error::Invalid`]).
pub async fn replace(pool: &PgPool, rule: &Rule, by: &str) -> Result<Option<StoredRule>, Error> {
    rule.validate().map_err(|e| Error::Invalid(e.to_string()))?;
    let row: Option<Row> = bind_rule(
        sqlx::query_as(&format!(
            "UPDATE fraud_rules SET level = $2, interface_type = $3, key = $4, request_limit = $5, \
             period_secs = $6, route_prefix = $7, client_id = $8, active = $9, updated_by = $10, \
             version = version + 1, updated_at = clock_timestamp() \
             WHERE rule_id = $1 RETURNING {COLUMNS}"
        )),
        rule,
    )
    .bind(by)
    .fetch_optional(pool)
    .await?;
    row.map(parse).transpose()
}

/// Deletes the rule `id`; false when there was none.
///
/// Errors: Postgres.
pub async fn delete(pool: &PgPool, id: &RuleId) -> Result<bool, Error> {
    let done = sqlx::query("DELETE FROM fraud_rules WHERE rule_id = $1")
        .bind(id.as_str())
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}
