//! The alert dispatcher (e-wallet spec §4): the log turned into operators' alerts.
//!
//! - [`Dispatcher`] is a projection: for every event it reads the state its aggregate had
//!   before (wallets and payments, folded here with the domain's `evolve` into
//!   `alert_aggregate_states`), asks [`etr_domain::alerts::raised`] which alerts the event
//!   raises, and queues their deliveries to the matching subscriptions
//!   ([`etr_infra::alerts::queue`]) — all in the transaction of its checkpoint, so each
//!   event's alerts are queued once (outbox style; a replay queues nothing new: the delivery
//!   key is `<event id>/<type>/<subscription>/<channel>`).
//! - [`Sender`] claims due deliveries and sends each through the [`AlertNotifier`] port
//!   outside any transaction, with the delivery key as the port's idempotency key; a port
//!   failure is retried with exponential backoff (1 s doubling to 5 min), and given up
//!   (`failed`) after [`Sender::max_attempts`].
//! - [`RecordingNotifier`] is the port's simulator: it books what it was given in
//!   `simulator_alert_notifications`, once per key; a recipient whose name contains `unreachable`
//!   is refused (deterministic by input), so retries can be seen.
//!
//! Logs name delivery ids, keys and errors only, never an alert's text.

use etr_domain::alerts::{self, Policy};
use etr_domain::ports::{AlertMessage, AlertNotifier, BoxFuture};
use etr_domain::{evolve, AggregateRef, Envelope, Event, State};
use etr_infra::alerts::{self as store, Raised};
use etr_projections::runtime::{load_state, Projection};
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{to_projection_error, Error};

/// The projection's name: its checkpoints' key and consumer group suffix.
pub const PROJECTION: &str = "alerts";

/// Turns events into alerts and queues their deliveries.
pub struct Dispatcher {
    /// The thresholds of the large-payment and low-balance alerts.
    pub policy: Policy,
}

impl Projection for Dispatcher {
    fn name(&self) -> &'static str {
        PROJECTION
    }

    /// Deliveries are effects, not a read model: never rebuilt blue/green.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(), etr_projections::Error> {
        let target = AggregateRef {
            kind: envelope.aggregate_type,
            id: envelope.aggregate_id,
        };
        let before: Option<State> = if alerts::needs_state(target) {
            load_state(
                tx,
                "SELECT state FROM alert_aggregate_states WHERE aggregate_id = $1",
                target.id,
            )
            .await?
        } else {
            None
        };
        let raised = alerts::raised(envelope, event, before.as_ref(), &self.policy);
        if alerts::needs_state(target) {
            let after = evolve(
                before.unwrap_or_else(|| State::initial(target)),
                envelope.client_id,
                event,
            );
            sqlx::query(
                "INSERT INTO alert_aggregate_states (aggregate_id, state) VALUES ($1, $2) \
                 ON CONFLICT (aggregate_id) DO UPDATE SET state = EXCLUDED.state",
            )
            .bind(target.id)
            .bind(serde_json::to_value(&after)?)
            .execute(&mut *tx)
            .await?;
        }
        for alert in &raised {
            let queued = Raised {
                key: format!("{}/{}", envelope.event_id, alert.alert_type().code()),
                alert,
                client: Some(envelope.client_id),
                occurred_at: envelope.occurred_at,
                event_id: Some(envelope.event_id),
            };
            store::queue(tx, &queued)
                .await
                .map_err(|e| to_projection_error(Error::from(e)))?;
        }
        Ok(())
    }
}

/// Sends queued deliveries through the notification port.
pub struct Sender {
    pub pool: PgPool,
    pub notifier: Arc<dyn AlertNotifier>,
    /// How often due deliveries are looked for when none was found.
    pub poll: Duration,
    /// Attempts before a delivery is given up (`failed`).
    pub max_attempts: i32,
}

impl Sender {
    /// How long a claimed delivery is left to its sender before another may take it.
    const LEASE: time::Duration = time::Duration::seconds(30);

    /// Runs forever.
    pub async fn run(self) {
        loop {
            match self.pass().await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "alert delivery pass failed; retrying"),
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// Claims up to 64 due deliveries and sends them; returns how many were claimed.
    ///
    /// Errors: Postgres.
    pub async fn pass(&self) -> Result<usize, Error> {
        let due = store::claim_due(&self.pool, 64, Self::LEASE).await?;
        for delivery in &due {
            let Some((channel, alert_type)) = delivery.parsed() else {
                store::mark_retry(
                    &self.pool,
                    delivery.delivery_id,
                    "unknown channel or alert type",
                    time::Duration::ZERO,
                    true,
                )
                .await?;
                continue;
            };
            let message = AlertMessage {
                key: delivery.dedup_key.clone(),
                recipient: delivery.recipient.clone(),
                channel,
                alert_type,
                client_id: delivery.client_id.map(etr_domain::ClientId),
                text: delivery.body.clone(),
            };
            match self.notifier.send(&message).await {
                Ok(()) => store::mark_sent(&self.pool, delivery.delivery_id).await?,
                Err(reason) => {
                    let give_up = delivery.attempts >= self.max_attempts;
                    let backoff = 1i64 << delivery.attempts.clamp(1, 10).saturating_sub(1);
                    tracing::warn!(
                        delivery = delivery.delivery_id,
                        key = %delivery.dedup_key,
                        attempts = delivery.attempts,
                        give_up,
                        error = %reason,
                        "alert delivery failed"
                    );
                    store::mark_retry(
                        &self.pool,
                        delivery.delivery_id,
                        &reason,
                        time::Duration::seconds(backoff.min(300)),
                        give_up,
                    )
                    .await?;
                }
            }
        }
        Ok(due.len())
    }
}

/// The notification port's simulator: books every message once per key in
/// `simulator_alert_notifications`; refuses recipients whose name contains `unreachable`.
pub struct RecordingNotifier {
    pub pool: PgPool,
}

impl AlertNotifier for RecordingNotifier {
    fn send<'a>(&'a self, message: &'a AlertMessage) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if message.recipient.contains("unreachable") {
                return Err(format!(
                    "{} gateway: recipient unreachable",
                    message.channel.as_str()
                ));
            }
            sqlx::query(
                "INSERT INTO simulator_alert_notifications \
                 (dedup_key, recipient, channel, alert_type, client_id, body) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (dedup_key) DO NOTHING",
            )
            .bind(&message.key)
            .bind(&message.recipient)
            .bind(message.channel.as_str())
            .bind(message.alert_type.code())
            .bind(message.client_id.map(|c| c.0))
            .bind(&message.text)
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(|e| format!("simulator book: {e}"))
        })
    }
}
