//! The client timeline read model: every event of every client with its envelope (actor,
//! command, correlation, hash chain) and the event itself, for `clientTimeline` and
//! `clientStateAsOf`. The log stays the auditor's source of truth (`etr timeline --verify`
//! reads the log, not this table).

use etr_domain::{Envelope, Event};
use sqlx::PgConnection;
use std::collections::BTreeMap;

use crate::error::Error;
use crate::runtime::Projection;

/// The Postgres channel the timeline announces each event it applies on (after commit):
/// `clientChanged` subscriptions listen there.
pub const CLIENT_CHANGE_CHANNEL: &str = "etr_client_change";

/// The announcement's JSON, from a row of `rm_timeline` aliased `t`.
const ANNOUNCEMENT: &str = "json_build_object('client_id', t.client_id, 'partition', t.partition, \
    'sequence', t.sequence, 'aggregate_type', t.aggregate_type, 'aggregate_id', t.aggregate_id, \
    'event_type', t.event_type, 'occurred_at', t.occurred_at)::text";

pub struct Timeline;

impl Projection for Timeline {
    fn name(&self) -> &'static str {
        "timeline"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_timeline"]
    }

    /// Announces the events the copy applied beyond the live checkpoints, in log order, so
    /// `clientChanged` subscribers hear every event across a switch.
    async fn announce_skipped(
        &self,
        tx: &mut PgConnection,
        staging: &str,
        live: &BTreeMap<i32, i64>,
        copied: &BTreeMap<i32, i64>,
    ) -> Result<(), Error> {
        for (partition, until) in copied {
            sqlx::query(&format!(
                "SELECT pg_notify($1, {ANNOUNCEMENT}) FROM (SELECT * FROM {staging}.rm_timeline \
                 WHERE partition = $2 AND sequence > $3 AND sequence <= $4 ORDER BY sequence) t ORDER BY t.sequence"
            ))
            .bind(CLIENT_CHANGE_CHANNEL)
            .bind(partition)
            .bind(live.get(partition).copied().unwrap_or(0))
            .bind(until)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        env: &Envelope,
        event: &Event,
    ) -> Result<(), Error> {
        // A new row is announced on the channel, from the live tables only (a rebuild's copy,
        // in its own schema, announces nothing while it replays history).
        sqlx::query(&format!(
            "WITH t AS (INSERT INTO rm_timeline (client_id, partition, sequence, event_id, event_type, schema_version, aggregate_type, aggregate_id, aggregate_version, \
             actor_kind, actor_id, command_id, correlation_id, occurred_at, prev_hash, hash, event) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) ON CONFLICT DO NOTHING \
             RETURNING client_id, partition, sequence, aggregate_type, aggregate_id, event_type, occurred_at) \
             SELECT pg_notify($18, {ANNOUNCEMENT}) FROM t WHERE current_schema() = 'public'"
        ))
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
        .bind(CLIENT_CHANGE_CHANNEL)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}
