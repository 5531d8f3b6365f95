//! The alert system's storage (e-wallet spec §4): operators' subscriptions
//! (`alert_subscriptions`), the delivery outbox (`alert_deliveries`) and the edge's record
//! function.
//!
//! - [`queue`] matches an alert to the subscriptions in force when it occurred (created at or
//!   before its time, its type among theirs, their client filter empty or its client) and
//!   inserts one delivery per subscription and channel the type can go through
//!   ([`etr_domain::alerts::Subscription::deliveries`]) in the caller's transaction, keyed
//!   `<alert key>/<subscription>/<channel>` so a repeated alert queues nothing.
//! - [`raise`] is what the API edge calls for an alert that has no event on the log (a failed
//!   login, a refusal by a limit): the same matching in a transaction of its own.
//! - [`claim_due`], [`mark_sent`], [`mark_retry`]: the sender's side — a due delivery is
//!   claimed for a lease (its next attempt moved on, its attempts counted) in one statement,
//!   sent outside any transaction, then marked.
//!
//! Alerts carry no personal data (the domain never opens sealed data for them); the
//! attributes are stored as text, their kinds are the catalogue's.

use etr_domain::alerts::{Alert, AlertType, Channel, Subscription};
use etr_domain::ClientId;
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Error;

/// A subscription as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSubscription {
    pub id: Uuid,
    /// The operator who subscribed: the deliveries' recipient.
    pub operator: String,
    pub subscription: Subscription,
    /// 1 when created, one more at every change.
    pub version: i64,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

type SubscriptionRow = (
    Uuid,
    String,
    Vec<String>,
    Vec<String>,
    Option<Uuid>,
    i64,
    OffsetDateTime,
    OffsetDateTime,
);

const SUBSCRIPTION_COLUMNS: &str =
    "subscription_id, operator, alert_types, channels, client_id, version, created_at, updated_at";

fn subscription_of(row: SubscriptionRow) -> Result<StoredSubscription, Error> {
    let (id, operator, types, channels, client, version, created_at, updated_at) = row;
    let client = client.map(|c| c.to_string());
    let subscription = Subscription::parse(&types, &channels, client.as_deref())
        .map_err(|e| Error::Invalid(format!("stored alert subscription {id}: {e}")))?;
    Ok(StoredSubscription {
        id,
        operator,
        subscription,
        version,
        created_at,
        updated_at,
    })
}

fn codes(s: &Subscription) -> (Vec<String>, Vec<String>, Option<Uuid>) {
    (
        s.types.iter().map(|t| t.code().to_owned()).collect(),
        s.channels.iter().map(|c| c.as_str().to_owned()).collect(),
        s.client.map(|c| c.0),
    )
}

/// Stores a new subscription of `operator`; it applies to alerts that occur from now on.
///
/// Errors: Postgres.
pub async fn create(
    pool: &PgPool,
    operator: &str,
    subscription: &Subscription,
) -> Result<StoredSubscription, Error> {
    let (types, channels, client) = codes(subscription);
    let row: SubscriptionRow = sqlx::query_as(&format!(
        "INSERT INTO alert_subscriptions (subscription_id, operator, alert_types, channels, client_id) \
         VALUES ($1, $2, $3, $4, $5) RETURNING {SUBSCRIPTION_COLUMNS}"
    ))
    .bind(Uuid::new_v4())
    .bind(operator)
    .bind(&types)
    .bind(&channels)
    .bind(client)
    .fetch_one(pool)
    .await?;
    subscription_of(row)
}

/// Every subscription, oldest first.
///
/// Errors: Postgres; a stored row the catalogue no longer accepts ([`Error::Invalid`]).
pub async fn list(pool: &PgPool) -> Result<Vec<StoredSubscription>, Error> {
    let rows: Vec<SubscriptionRow> = sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM alert_subscriptions ORDER BY created_at, subscription_id"
    ))
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(subscription_of).collect()
}

/// Replaces the types, channels and client filter of subscription `id` (its version goes up
/// by one); `None` when there is none.
///
/// Errors: Postgres.
pub async fn replace(
    pool: &PgPool,
    id: Uuid,
    subscription: &Subscription,
) -> Result<Option<StoredSubscription>, Error> {
    let (types, channels, client) = codes(subscription);
    let row: Option<SubscriptionRow> = sqlx::query_as(&format!(
        "UPDATE alert_subscriptions SET alert_types = $2, channels = $3, client_id = $4, \
         version = version + 1, updated_at = clock_timestamp() \
         WHERE subscription_id = $1 RETURNING {SUBSCRIPTION_COLUMNS}"
    ))
    .bind(id)
    .bind(&types)
    .bind(&channels)
    .bind(client)
    .fetch_optional(pool)
    .await?;
    row.map(subscription_of).transpose()
}

/// Removes subscription `id` (deliveries already queued for it are still sent); whether
/// there was one.
///
/// Errors: Postgres.
pub async fn delete(pool: &PgPool, id: Uuid) -> Result<bool, Error> {
    let done = sqlx::query("DELETE FROM alert_subscriptions WHERE subscription_id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// An alert to queue.
#[derive(Debug, Clone)]
pub struct Raised<'a> {
    /// The alert's idempotency key: `<event id>/<type code>` for one raised from the log; the
    /// edge's own key otherwise (e.g. the refused command's id).
    pub key: String,
    pub alert: &'a Alert,
    pub client: Option<ClientId>,
    pub occurred_at: OffsetDateTime,
    /// The event that raised it, if any.
    pub event_id: Option<Uuid>,
}

/// Queues the deliveries of `raised` to every subscription it matches, in the caller's
/// transaction; returns how many were queued (0 for a repeated alert).
///
/// Errors: Postgres.
pub async fn queue(tx: &mut PgConnection, raised: &Raised<'_>) -> Result<u64, Error> {
    let alert_type = raised.alert.alert_type();
    let rows: Vec<SubscriptionRow> = sqlx::query_as(&format!(
        "SELECT {SUBSCRIPTION_COLUMNS} FROM alert_subscriptions \
         WHERE $1 = ANY(alert_types) AND (client_id IS NULL OR client_id = $2) \
           AND created_at <= $3"
    ))
    .bind(alert_type.code())
    .bind(raised.client.map(|c| c.0))
    .bind(raised.occurred_at)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let attributes: BTreeMap<&str, String> = raised
        .alert
        .attributes()
        .into_iter()
        .map(|(name, value)| (name, value.to_string()))
        .collect();
    let attributes = serde_json::to_value(attributes).map_err(|e| Error::Invalid(e.to_string()))?;
    let body = etr_domain::alerts::render(raised.alert, raised.client);
    let mut queued = 0;
    for row in rows {
        let stored = match subscription_of(row) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "alert subscription skipped");
                continue;
            }
        };
        for channel in stored.subscription.deliveries(alert_type, raised.client) {
            let done = sqlx::query(
                "INSERT INTO alert_deliveries (dedup_key, subscription_id, recipient, channel, \
                 alert_type, client_id, attributes, body, event_id, occurred_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                 ON CONFLICT (dedup_key) DO NOTHING",
            )
            .bind(format!("{}/{}/{}", raised.key, stored.id, channel.as_str()))
            .bind(stored.id)
            .bind(&stored.operator)
            .bind(channel.as_str())
            .bind(alert_type.code())
            .bind(raised.client.map(|c| c.0))
            .bind(&attributes)
            .bind(&body)
            .bind(raised.event_id)
            .bind(raised.occurred_at)
            .execute(&mut *tx)
            .await?;
            queued += done.rows_affected();
        }
    }
    Ok(queued)
}

/// The API edge's record function: queues an alert that has no event on the log (an
/// [`etr_domain::alerts::Origin::Edge`] type) in a transaction of its own.
///
/// Errors: Postgres.
pub async fn raise(pool: &PgPool, raised: &Raised<'_>) -> Result<u64, Error> {
    let mut tx = pool.begin().await?;
    let queued = queue(&mut tx, raised).await?;
    tx.commit().await?;
    Ok(queued)
}

/// A queued delivery.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Delivery {
    pub delivery_id: i64,
    pub dedup_key: String,
    pub subscription_id: Uuid,
    pub recipient: String,
    pub channel: String,
    pub alert_type: String,
    pub client_id: Option<Uuid>,
    /// Attribute code → value as text.
    pub attributes: serde_json::Value,
    pub body: String,
    pub event_id: Option<Uuid>,
    pub occurred_at: OffsetDateTime,
    /// `pending`, `sent` or `failed` (given up after the sender's last attempt).
    pub status: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub queued_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
}

impl Delivery {
    /// The delivery's channel and type as the domain knows them (`None` for a code the
    /// catalogue no longer has).
    pub fn parsed(&self) -> Option<(Channel, AlertType)> {
        Some((
            Channel::parse(&self.channel)?,
            AlertType::parse(&self.alert_type)?,
        ))
    }
}

const DELIVERY_COLUMNS: &str = "delivery_id, dedup_key, subscription_id, recipient, channel, \
    alert_type, client_id, attributes, body, event_id, occurred_at, status, attempts, \
    last_error, queued_at, sent_at";

/// Claims up to `limit` pending deliveries that are due, for `lease` (another sender skips
/// them until it ends), counting the attempt; oldest first.
///
/// Errors: Postgres.
pub async fn claim_due(
    pool: &PgPool,
    limit: i64,
    lease: time::Duration,
) -> Result<Vec<Delivery>, Error> {
    Ok(sqlx::query_as(&format!(
        "UPDATE alert_deliveries SET attempts = attempts + 1, \
           next_attempt_at = clock_timestamp() + make_interval(secs => $2) \
         WHERE delivery_id IN (SELECT delivery_id FROM alert_deliveries \
           WHERE status = 'pending' AND next_attempt_at <= clock_timestamp() \
           ORDER BY next_attempt_at, delivery_id LIMIT $1 FOR UPDATE SKIP LOCKED) \
         RETURNING {DELIVERY_COLUMNS}"
    ))
    .bind(limit)
    .bind(lease.as_seconds_f64())
    .fetch_all(pool)
    .await?)
}

/// Marks a delivery sent.
///
/// Errors: Postgres.
pub async fn mark_sent(pool: &PgPool, delivery_id: i64) -> Result<(), Error> {
    sqlx::query(
        "UPDATE alert_deliveries SET status = 'sent', sent_at = clock_timestamp(), last_error = NULL \
         WHERE delivery_id = $1",
    )
    .bind(delivery_id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: the delivery is tried again after `retry_in`, or — `give_up` —
/// marked `failed`.
///
/// Errors: Postgres.
pub async fn mark_retry(
    pool: &PgPool,
    delivery_id: i64,
    error: &str,
    retry_in: time::Duration,
    give_up: bool,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE alert_deliveries SET last_error = $2, \
           status = CASE WHEN $4 THEN 'failed' ELSE status END, \
           next_attempt_at = clock_timestamp() + make_interval(secs => $3) \
         WHERE delivery_id = $1 AND status = 'pending'",
    )
    .bind(delivery_id)
    .bind(error)
    .bind(retry_in.as_seconds_f64())
    .bind(give_up)
    .execute(pool)
    .await?;
    Ok(())
}

/// Which deliveries [`deliveries`] reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryFilter {
    pub alert_type: Option<AlertType>,
    pub client: Option<ClientId>,
    /// `pending`, `sent` or `failed`.
    pub status: Option<String>,
}

/// A page of deliveries, newest first: those with an id below `before` (all when `None`),
/// at most `first`.
///
/// Errors: Postgres.
pub async fn deliveries(
    pool: &PgPool,
    filter: &DeliveryFilter,
    before: Option<i64>,
    first: i64,
) -> Result<Vec<Delivery>, Error> {
    Ok(sqlx::query_as(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM alert_deliveries \
         WHERE ($1::text IS NULL OR alert_type = $1) AND ($2::uuid IS NULL OR client_id = $2) \
           AND ($3::text IS NULL OR status = $3) AND ($4::bigint IS NULL OR delivery_id < $4) \
         ORDER BY delivery_id DESC LIMIT $5"
    ))
    .bind(filter.alert_type.map(|t| t.code()))
    .bind(filter.client.map(|c| c.0))
    .bind(filter.status.as_deref())
    .bind(before)
    .bind(first)
    .fetch_all(pool)
    .await?)
}
