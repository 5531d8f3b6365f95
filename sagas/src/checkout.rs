//! The merchant checkout's process (e-wallet spec §7.2): runs
//! [`etr_domain::merchant_order::step`] for every paid order.
//!
//! - [`Tracker`] is a projection of the merchant orders' events: it keeps the checkout's view
//!   of every order in `merchant_orders` (what the checkout page, the receipt and the daily
//!   registry read) and moves the process instances, both in the checkpoint's transaction.
//! - [`Executor`] wakes due instances: captures a card authorisation at the bank
//!   ([`BankSystem`]), POSTs the signed callback to the merchant (`X-ETR-Signature`,
//!   [`etr_infra::merchants::sign`]) until it answers 2xx — every attempt kept in
//!   `merchant_callback_attempts`, retries backing off exponentially — and records the
//!   capture and the acknowledgement on the order under
//!   `platform:merchant-checkout/<order>/capture|notified`.

use etr_domain::ids::platform_command_id;
use etr_domain::merchant_order::{
    self as order, step, Action, Input, Notice, Policy, Stage, PROCESS,
};
use etr_domain::ports::{Answer, BankSystem};
use etr_domain::{Actor, Command, Envelope, Event};
use etr_projections::runtime::Projection;
use rust_decimal::Decimal;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{to_projection_error, Error};
use crate::runtime::{self, Commands, Issue, Issued};

/// Keeps `merchant_orders` and feeds paid orders to the process instances.
pub struct Tracker {
    pub policy: Policy,
}

impl Projection for Tracker {
    fn name(&self) -> &'static str {
        PROCESS
    }

    /// Process state is not a read model: it is never rebuilt blue/green.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(), etr_projections::Error> {
        use order::Event as E;
        let Event::MerchantOrder(e) = event else {
            return Ok(());
        };
        let order_id = envelope.aggregate_id;
        let merchant = envelope.client_id;
        let input = match e {
            E::MerchantOrderCreated {
                number,
                amount,
                description,
                created_at,
                expires_at,
                ..
            } => {
                sqlx::query(
                    "INSERT INTO merchant_orders (order_id, merchant_id, number, amount, currency, \
                         description, status, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'awaiting_payment', $7, $8) ON CONFLICT DO NOTHING",
                )
                .bind(order_id)
                .bind(merchant.0)
                .bind(number.as_str())
                .bind(amount.amount)
                .bind(amount.currency.code())
                .bind(description)
                .bind(created_at)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                return Ok(());
            }
            E::MerchantOrderPaid {
                payment_id,
                source,
                paid_at,
                payer_client_id,
                authorisation_id,
                masked_pan,
                ..
            } => {
                sqlx::query(
                    "UPDATE merchant_orders SET status = 'paid', payment_id = $2, source = $3, \
                         payer_client_id = $4, masked_pan = $5, paid_at = $6, \
                         captured_at = CASE WHEN $3 = 'wallet' THEN $6 END \
                     WHERE order_id = $1",
                )
                .bind(order_id)
                .bind(payment_id)
                .bind(match source {
                    order::Source::Wallet => "wallet",
                    order::Source::Card => "card",
                })
                .bind(payer_client_id.map(|c| c.0))
                .bind(masked_pan)
                .bind(paid_at)
                .execute(&mut *tx)
                .await?;
                Input::Paid {
                    at: envelope.occurred_at,
                    notice: Notice {
                        merchant_id: merchant,
                        order_id,
                        authorisation_id: authorisation_id.clone(),
                    },
                }
            }
            E::MerchantOrderCardCaptured { .. } => {
                sqlx::query("UPDATE merchant_orders SET captured_at = $2 WHERE order_id = $1")
                    .bind(order_id)
                    .bind(envelope.occurred_at)
                    .execute(&mut *tx)
                    .await?;
                Input::Captured {
                    at: envelope.occurred_at,
                }
            }
            E::MerchantNotified { attempts } => {
                sqlx::query(
                    "UPDATE merchant_orders SET status = 'notified', notified_at = $2, \
                         callback_attempts = $3 WHERE order_id = $1",
                )
                .bind(order_id)
                .bind(envelope.occurred_at)
                .bind(i32::try_from(*attempts).unwrap_or(i32::MAX))
                .execute(&mut *tx)
                .await?;
                Input::Notified
            }
        };
        let instance = runtime::load::<Stage>(tx, PROCESS, order_id)
            .await
            .map_err(to_projection_error)?;
        let (stage, actions) = step(instance.state, input, &self.policy);
        let Some(stage) = stage else { return Ok(()) };
        let correlation = instance
            .correlation_id
            .unwrap_or_else(|| envelope.correlation_id.clone());
        runtime::store(
            tx,
            PROCESS,
            order_id,
            merchant.0,
            &correlation,
            &stage,
            wake(&actions),
        )
        .await
        .map_err(to_projection_error)
    }
}

/// Wakes due checkouts: captures, calls merchants back, records the outcomes.
pub struct Executor {
    pub pool: PgPool,
    pub bank: Arc<dyn BankSystem>,
    pub commands: Arc<dyn Commands>,
    pub http: reqwest::Client,
    pub policy: Policy,
    /// How often due timers are looked for.
    pub poll: Duration,
}

impl Executor {
    /// Runs forever.
    pub async fn run(self) {
        runtime::poll_forever(PROCESS, self.poll, || self.pass()).await;
    }

    /// Wakes every due instance (up to 64) and performs their actions; returns how many woke.
    ///
    /// Errors: Postgres.
    pub async fn pass(&self) -> Result<usize, Error> {
        let now = OffsetDateTime::now_utc();
        let woken = runtime::take_due(
            &self.pool,
            PROCESS,
            now,
            64,
            |s| step(Some(s), Input::Due { now }, &self.policy),
            wake,
        )
        .await?;
        let n = woken.len();
        for w in woken {
            if let Err(e) = self
                .perform((&w.id, w.client, &w.correlation_id), w.actions)
                .await
            {
                tracing::warn!(order = %w.id, error = %e, "checkout step failed; retried when due");
            }
        }
        Ok(n)
    }

    async fn perform(
        &self,
        instance: (&Uuid, Uuid, &str),
        actions: Vec<Action>,
    ) -> Result<(), Error> {
        for action in actions {
            let input = match action {
                Action::Capture { authorisation_id } => {
                    match self.bank.capture(&authorisation_id).await {
                        Answer::Done(()) => Some(Input::CaptureSucceeded {
                            now: OffsetDateTime::now_utc(),
                        }),
                        Answer::Refused(reason) | Answer::Unavailable(reason) => {
                            tracing::warn!(order = %instance.0, reason, "card capture failed; retrying");
                            Some(Input::Failed {
                                now: OffsetDateTime::now_utc(),
                            })
                        }
                    }
                }
                Action::RecordCapture { notice } => {
                    self.record(
                        instance,
                        &notice,
                        "capture",
                        order::Command::RecordCardCapture,
                    )
                    .await?;
                    None
                }
                Action::Callback { notice, attempt } => {
                    let acknowledged = self.call_back(&notice, attempt).await?;
                    let now = OffsetDateTime::now_utc();
                    Some(if acknowledged {
                        Input::Acknowledged { now }
                    } else {
                        Input::Failed { now }
                    })
                }
                Action::RecordNotified { notice, attempts } => {
                    self.record(
                        instance,
                        &notice,
                        "notified",
                        order::Command::RecordMerchantNotified { attempts },
                    )
                    .await?;
                    None
                }
                Action::WakeAt(_) => None,
            };
            if let Some(input) = input {
                let next = runtime::advance(
                    &self.pool,
                    PROCESS,
                    instance,
                    |s: Option<Stage>| step(s, input, &self.policy),
                    wake,
                )
                .await?;
                Box::pin(self.perform(instance, next)).await?;
            }
        }
        Ok(())
    }

    async fn record(
        &self,
        instance: (&Uuid, Uuid, &str),
        notice: &Notice,
        step: &str,
        command: order::Command,
    ) -> Result<(), Error> {
        let issued = self
            .commands
            .issue(Issue {
                command_id: platform_command_id(PROCESS, notice.order_id, step),
                correlation_id: instance.2.to_owned(),
                actor: Actor::system(PROCESS),
                command: Command::MerchantOrder {
                    merchant_id: notice.merchant_id,
                    order_id: notice.order_id,
                    command,
                },
            })
            .await
            .map_err(Error::CommandNotTaken)?;
        if let Issued::Rejected { code } = issued {
            tracing::info!(order = %notice.order_id, step, code, "checkout step not recorded");
        }
        Ok(())
    }

    /// POSTs the order's paid callback; whether the merchant acknowledged it (2xx).
    async fn call_back(&self, notice: &Notice, attempt: u32) -> Result<bool, Error> {
        let merchant = etr_infra::merchants::by_id(&self.pool, notice.merchant_id)
            .await
            .map_err(|e| Error::CommandNotTaken(e.to_string()))?;
        let row: Option<CallbackRow> = sqlx::query_as(
            "SELECT number, amount, currency, payment_id, source, masked_pan, paid_at \
             FROM merchant_orders WHERE order_id = $1",
        )
        .bind(notice.order_id)
        .fetch_optional(&self.pool)
        .await?;
        let (Some(merchant), Some(row)) = (merchant, row) else {
            return Ok(false);
        };
        let body = serde_json::to_vec(&serde_json::json!({
            "type": "order.paid",
            "order_id": notice.order_id,
            "number": row.0,
            "amount": row.1.to_string(),
            "currency": row.2,
            "payment_id": row.3,
            "source": row.4,
            "masked_pan": row.5,
            "paid_at": row.6.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            "attempt": attempt,
        }))?;
        let now = OffsetDateTime::now_utc();
        let signature =
            etr_infra::merchants::sign(&merchant.callback_secret, now.unix_timestamp(), &body);
        let sent = self
            .http
            .post(&merchant.callback_url)
            .header("content-type", "application/json")
            .header("x-etr-signature", signature)
            .header("idempotency-key", format!("{}/paid", notice.order_id))
            .timeout(
                Duration::try_from(self.policy.attempt_timeout).unwrap_or(Duration::from_secs(10)),
            )
            .body(body)
            .send()
            .await;
        let (status, error) = match &sent {
            Ok(r) => (Some(i32::from(r.status().as_u16())), None),
            Err(e) => (None, Some(e.to_string())),
        };
        sqlx::query(
            "INSERT INTO merchant_callback_attempts (order_id, attempt, http_status, error) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (order_id, attempt) DO UPDATE \
             SET http_status = EXCLUDED.http_status, error = EXCLUDED.error, attempted_at = clock_timestamp()",
        )
        .bind(notice.order_id)
        .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
        .bind(status)
        .bind(error)
        .execute(&self.pool)
        .await?;
        sqlx::query("UPDATE merchant_orders SET callback_attempts = GREATEST(callback_attempts, $2) WHERE order_id = $1")
            .bind(notice.order_id)
            .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
            .execute(&self.pool)
            .await?;
        Ok(sent.is_ok_and(|r| r.status().is_success()))
    }
}

type CallbackRow = (
    String,
    Decimal,
    String,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<OffsetDateTime>,
);

/// The timer the actions set: `Some(None)` clears it, `None` keeps it.
fn wake(actions: &[Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().rev().find_map(|a| match a {
        Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}
