//! The client timeline read model: every event of every client with its envelope (actor,
//! command, correlation, hash chain) and the event itself, for `clientTimeline` and
//! `clientStateAsOf`. The log stays the auditor's source of truth (`etr timeline --verify`
//! reads the log, not this table).

use etr_domain::{Envelope, Event};
use sqlx::PgConnection;

use crate::error::Error;
use crate::runtime::Projection;

pub struct Timeline;

impl Projection for Timeline {
    fn name(&self) -> &'static str {
        "timeline"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_timeline"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO rm_timeline (client_id, partition, sequence, event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version, \
             actor_kind, actor_id, command_id, correlation_id, occurred_at, prev_hash, hash, event) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING",
        )
        .bind(env.client_id.0)
        .bind(i32::try_from(env.partition).unwrap_or(i32::MAX))
        .bind(i64::try_from(env.sequence).unwrap_or(i64::MAX))
        .bind(env.event_id)
        .bind(&env.event_type)
        .bind(i32::try_from(env.schema_version).unwrap_or(i32::MAX))
        .bind(env.aggregate_type.as_str())
        .bind(env.aggregate_id)
        .bind(i64::try_from(env.aggregate_version).unwrap_or(i64::MAX))
        .bind(&env.actor.kind)
        .bind(&env.actor.id)
        .bind(&env.command_id)
        .bind(&env.correlation_id)
        .bind(env.occurred_at)
        .bind(&env.prev_hash)
        .bind(&env.hash)
        .bind(serde_json::to_value(event)?)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
