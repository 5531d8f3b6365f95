//! The autopayment runner (e-wallet spec §3.2): runs [`etr_domain::autopayment::step`] for
//! every autopayment.
//!
//! - [`Tracker`] is a projection of the client's autopayment events
//!   ([`Input::of_event`]): creation, a recorded run, a resumption set the next run's timer;
//!   a pause or cancellation clears it — after the run in flight, if any, is recorded. A
//!   failed run queues a notice to the client in `client_notifications` in the same
//!   transaction.
//! - [`Executor`] wakes due instances (`FOR UPDATE SKIP LOCKED`): it starts the run's payment
//!   from the template in the client's committed state (fraud control first, then the same
//!   `StartPayment` a client sends, under `platform:autopayments/<id>/run-<n>/start`, naming
//!   the run so that the writer refuses it once the autopayment is paused, cancelled or past
//!   the run — the process then waits, idle, for the event that says so), follows the
//!   payment to its final status, and records the run on the client under
//!   `…/run-<n>/record`. A crash anywhere repeats the step under the same command id.

use etr_domain::autopayment::{self, step, Action, DueRun, Input, Order, State, PROCESS};
use etr_domain::ids::platform_command_id;
use etr_domain::payment;
use etr_domain::ports::{FraudControl, PaymentOrder};
use etr_domain::{client, Actor, AggregateRef, Command, Envelope, Event};
use etr_projections::runtime::Projection;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{to_projection_error, Error};
use crate::runtime::{self, Commands, Issue, Issued};

/// Feeds the client's autopayment events to the process instances.
pub struct Tracker;

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
        let Event::Client(e) = event else {
            return Ok(());
        };
        let Some(id) = Input::autopayment_of(e) else {
            return Ok(());
        };
        let instance = runtime::load::<State>(tx, PROCESS, id)
            .await
            .map_err(to_projection_error)?;
        let known = instance.state.as_ref().map(State::order);
        let Some(input) = Input::of_event(e, envelope.client_id, known) else {
            return Ok(());
        };
        if let client::Event::AutopaymentRunRecorded {
            run,
            succeeded: false,
            reason,
            ..
        } = e
        {
            notify_failure(tx, envelope, id, *run, reason.as_deref()).await?;
        }
        let (state, actions) = step(instance.state, input);
        let Some(state) = state else { return Ok(()) };
        let correlation = instance
            .correlation_id
            .unwrap_or_else(|| envelope.correlation_id.clone());
        runtime::store(
            tx,
            PROCESS,
            id,
            envelope.client_id.0,
            &correlation,
            &state,
            wake(&actions),
        )
        .await
        .map_err(to_projection_error)
    }
}

/// Queues the client's notice of a failed run (once per run).
async fn notify_failure(
    tx: &mut PgConnection,
    envelope: &Envelope,
    autopayment_id: Uuid,
    run: u32,
    reason: Option<&str>,
) -> Result<(), etr_projections::Error> {
    sqlx::query(
        "INSERT INTO client_notifications (client_id, dedup_key, text) VALUES ($1, $2, $3) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(envelope.client_id.0)
    .bind(format!("autopayment/{autopayment_id}/run-{run}"))
    .bind(format!(
        "Автоплатёж не выполнен: {}",
        reason.unwrap_or("причина не указана")
    ))
    .execute(&mut *tx)
    .await
    .map_err(|e| to_projection_error(Error::from(e)))?;
    Ok(())
}

/// Wakes due autopayments, starts and follows their payments and records their runs.
pub struct Executor {
    pub pool: PgPool,
    pub fraud: Arc<dyn FraudControl>,
    pub commands: Arc<dyn Commands>,
    /// The processing dictionaries: a run's payment is charged the same commission as a
    /// client's.
    pub catalogues: etr_infra::dictionaries::Catalogues,
    /// How often due timers are looked for.
    pub poll: Duration,
}

impl Executor {
    /// Runs forever.
    pub async fn run(self) {
        runtime::poll_forever(PROCESS, self.poll, || self.pass()).await;
    }

    /// Wakes every due instance (up to 64) and performs their actions; returns how many woke.
    pub async fn pass(&self) -> Result<usize, Error> {
        let now = OffsetDateTime::now_utc();
        let woken = runtime::take_due(
            &self.pool,
            PROCESS,
            now,
            64,
            |s: State| step(Some(s), Input::Due { now }),
            wake,
        )
        .await?;
        let n = woken.len();
        for w in woken {
            if let Err(e) = self
                .perform(w.id, w.client, &w.correlation_id, w.actions)
                .await
            {
                tracing::warn!(autopayment = %w.id, error = %e, "autopayment step failed; retried when due");
            }
        }
        Ok(n)
    }

    async fn perform(
        &self,
        id: Uuid,
        client: Uuid,
        correlation: &str,
        actions: Vec<Action>,
    ) -> Result<(), Error> {
        for action in actions {
            let now = OffsetDateTime::now_utc();
            let input = match action {
                Action::StartPayment {
                    step,
                    payment_id,
                    run,
                    order,
                } => self
                    .start(&order, payment_id, run, correlation, &step)
                    .await?
                    .map(|code| Input::start_refused(run.run, now, code)),
                Action::CheckPayment { run, payment_id } => {
                    let state = self
                        .commands
                        .state(AggregateRef::payment(payment_id))
                        .await
                        .map_err(Error::CommandNotTaken)?;
                    let payment = match &state {
                        Some(etr_domain::State::Payment(p)) => Some(p),
                        _ => None,
                    };
                    // A payment whose start never committed is missing: it is sent again.
                    Some(Input::of_payment(run, now, payment))
                }
                Action::Record {
                    step,
                    order,
                    run,
                    payment_id,
                    succeeded,
                    reason,
                } => {
                    let command = Command::Client {
                        client_id: order.client_id,
                        command: client::Command::RecordAutopaymentRun {
                            autopayment_id: order.autopayment_id,
                            run,
                            payment_id,
                            succeeded,
                            reason,
                        },
                    };
                    match self.issue(id, correlation, &step, command).await? {
                        Issued::Accepted => None,
                        Issued::Rejected { code } => {
                            tracing::info!(autopayment = %id, run, code, "autopayment run not recorded");
                            Some(Input::RecordRefused { run })
                        }
                    }
                }
                Action::WakeAt(_) => None,
            };
            if let Some(input) = input {
                self.advance(id, client, correlation, input).await?;
            }
        }
        Ok(())
    }

    /// Starts the run's payment from the template the client has now; `Some(code)` when it
    /// was refused, or cannot start ([`autopayment::run_template`]: not due as committed, or
    /// the template is gone).
    async fn start(
        &self,
        order: &Order,
        payment_id: Uuid,
        run: DueRun,
        correlation: &str,
        step: &str,
    ) -> Result<Option<String>, Error> {
        let state = self
            .commands
            .state(AggregateRef::client(order.client_id))
            .await
            .map_err(Error::CommandNotTaken)?;
        let template = match &state {
            Some(etr_domain::State::Client(c)) => autopayment::run_template(c, &run).cloned(),
            _ => Err(autopayment::TEMPLATE_MISSING.to_owned()),
        };
        let template = match template {
            Ok(template) => template,
            Err(code) => return Ok(Some(code)),
        };
        let commission = match self.catalogues.current(&self.pool).await {
            Ok(Some(current)) => match current.catalogue.payment_commission(
                &template.service_id,
                template.amount,
                etr_domain::limits::Source::Wallet,
            ) {
                Ok(c) => c,
                Err(e) => return Ok(Some(e.code().to_owned())),
            },
            Ok(None) => None,
            Err(e) => return Err(Error::CommandNotTaken(e.to_string())),
        };
        let fraud = self
            .fraud
            .assess(&PaymentOrder {
                client_id: order.client_id,
                wallet_id: template.wallet_id,
                payment_id,
                amount: template.amount,
                service_id: template.service_id.clone(),
            })
            .await;
        let mut attributes = template.attributes;
        attributes.insert("autopayment_id".into(), order.autopayment_id.to_string());
        let command = Command::Payment {
            client_id: order.client_id,
            wallet_id: template.wallet_id,
            payment_id,
            command: payment::Command::Start {
                commission,
                amount: template.amount,
                service_id: template.service_id,
                attributes,
                fraud,
                autopayment_run: Some(run),
            },
        };
        Ok(
            match self
                .issue(order.autopayment_id, correlation, step, command)
                .await?
            {
                Issued::Accepted => None,
                Issued::Rejected { code } => Some(code),
            },
        )
    }

    /// Steps an instance with an answer, stores it, then performs what it asks.
    async fn advance(
        &self,
        id: Uuid,
        client: Uuid,
        correlation: &str,
        input: Input,
    ) -> Result<(), Error> {
        let actions = runtime::advance(
            &self.pool,
            PROCESS,
            (&id, client, correlation),
            |s: Option<State>| step(s, input),
            wake,
        )
        .await?;
        Box::pin(self.perform(id, client, correlation, actions)).await
    }

    async fn issue(
        &self,
        id: Uuid,
        correlation: &str,
        step: &str,
        command: Command,
    ) -> Result<Issued, Error> {
        self.commands
            .issue(Issue {
                command_id: platform_command_id(PROCESS, id, step),
                correlation_id: correlation.to_owned(),
                actor: Actor::system("autopayments"),
                command,
            })
            .await
            .map_err(Error::CommandNotTaken)
    }
}

/// The timer the actions set: `Some(None)` clears it, `None` keeps it.
fn wake(actions: &[Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().rev().find_map(|a| match a {
        Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}
