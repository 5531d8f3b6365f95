//! The payment processor: runs [`etr_domain::payment_execution`] for every wallet payment.
//!
//! - [`Tracker`] is a projection (consumer group `<topic>.projection.payment-execution`): the
//!   payment's events move its instance, in the same transaction as the checkpoint.
//! - [`Executor`] wakes due instances: it calls the payment provider (outside any
//!   transaction; the payment id is the provider's idempotency key) and issues
//!   `ExecutePayment` with the deterministic id
//!   `platform:payment-execution/<payment id>/execute`. A crash anywhere repeats the call
//!   after the attempt timeout and the command is then answered with its first outcome.
//!   For a payment from a bound card it also asks the bank to authorise the card (the
//!   payment id is the bank's idempotency key) and later to capture or release the
//!   authorisation.

use etr_domain::ids::platform_command_id;
use etr_domain::payment::Execution;
use etr_domain::payment_execution::{step, Action, Call, Input, Policy, State};
use etr_domain::ports::{Answer, BankSystem, PaymentProvider};
use etr_domain::{Actor, Envelope, Event};
use etr_projections::runtime::Projection;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

use crate::error::{to_projection_error, Error};
use crate::runtime::{self, Commands, Issue, Issued};

pub use etr_domain::payment_execution::PROCESS;

/// Feeds the payment events to the process instances.
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
        {
            let Event::Payment(payment_event) = event else {
                return Ok(());
            };
            let id = envelope.aggregate_id;
            let instance = runtime::load::<State>(tx, PROCESS, id)
                .await
                .map_err(to_projection_error)?;
            if instance.state.is_none()
                && !matches!(
                    payment_event,
                    etr_domain::payment::Event::PaymentInitiated { .. }
                )
            {
                return Ok(());
            }
            let (state, actions) = step(
                instance.state,
                Input::Event {
                    client_id: envelope.client_id,
                    payment_id: id,
                    at: envelope.occurred_at,
                    event: payment_event.clone(),
                },
                &self.policy,
            );
            let Some(state) = state else { return Ok(()) };
            let due = actions.iter().rev().find_map(|a| match a {
                Action::WakeAt(t) => Some(*t),
                _ => None,
            });
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
                due,
            )
            .await
            .map_err(to_projection_error)
        }
    }
}

/// Wakes due payments, calls the provider and records its answers.
pub struct Executor {
    pub pool: PgPool,
    pub policy: Policy,
    pub provider: Arc<dyn PaymentProvider>,
    /// The bank cards are authorised, captured and released at.
    pub bank: Arc<dyn BankSystem>,
    pub commands: Arc<dyn Commands>,
    /// How often due timers are looked for.
    pub poll: Duration,
}

/// Figures of one pass of the executor.
#[derive(Debug, Default, Clone, Copy)]
pub struct Pass {
    pub woken: usize,
    pub recorded: usize,
}

impl Executor {
    /// Runs forever.
    pub async fn run(self) {
        let this = Arc::new(self);
        loop {
            match this.clone().pass().await {
                Ok(pass) if pass.woken > 0 => continue,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "payment executor pass failed; retrying"),
            }
            tokio::time::sleep(this.poll).await;
        }
    }

    /// Wakes every due instance (up to 64), then performs their provider calls concurrently.
    pub async fn pass(self: Arc<Self>) -> Result<Pass, Error> {
        let now = OffsetDateTime::now_utc();
        let work = runtime::take_due(
            &self.pool,
            PROCESS,
            now,
            64,
            |s: State| step(Some(s), Input::Due { now }, &self.policy),
            first_wake,
        )
        .await?;
        let woken = work.len();
        let mut tasks = Vec::new();
        for w in work {
            let this = self.clone();
            tasks.push(tokio::spawn(async move {
                this.perform(w.id, w.client, &w.correlation_id, w.actions)
                    .await
            }));
        }
        let mut recorded = 0;
        for t in tasks {
            match t.await {
                Ok(Ok(n)) => recorded += n,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "payment execution step failed; retried when due")
                }
                Err(e) => tracing::warn!(error = %e, "payment execution task failed"),
            }
        }
        Ok(Pass { woken, recorded })
    }

    /// Performs a woken instance's actions: a provider call (then its answer is stepped) or
    /// a command to issue. Returns how many commands were recorded.
    async fn perform(
        &self,
        id: uuid::Uuid,
        client: uuid::Uuid,
        correlation: &str,
        actions: Vec<Action>,
    ) -> Result<usize, Error> {
        let mut recorded = 0;
        for action in actions {
            match action {
                Action::CallProvider(order) => {
                    let answer = self.provider.execute(&order);
                    let input = self.ask_provider(id, Call::Execute, answer).await;
                    recorded += self.advance(id, client, correlation, input).await?;
                }
                Action::VoidAtProvider(order) => {
                    let answer = self.provider.void(&order);
                    let input = self.ask_provider(id, Call::Void, answer).await;
                    recorded += self.advance(id, client, correlation, input).await?;
                }
                Action::CallProviderCancel {
                    order,
                    request_id,
                    provider_reference,
                } => {
                    let answer = self
                        .provider
                        .cancel(&order, request_id, &provider_reference);
                    let call = Call::Reverse { request_id };
                    let input = self.ask_provider(id, call, answer).await;
                    recorded += self.advance(id, client, correlation, input).await?;
                }
                Action::AuthoriseCard(payment) => {
                    let answer = self
                        .ask_bank(id, "authorisation", self.bank.authorise(&payment))
                        .await;
                    let input = match answer {
                        Some(Answer::Done(authorisation_id)) => Input::Answered {
                            call: Call::Authorise,
                            now: OffsetDateTime::now_utc(),
                            outcome: Execution::Succeeded {
                                provider_reference: authorisation_id,
                            },
                        },
                        Some(Answer::Refused(reason)) => Input::Answered {
                            call: Call::Authorise,
                            now: OffsetDateTime::now_utc(),
                            outcome: Execution::Failed { reason },
                        },
                        Some(Answer::Unavailable(_)) | None => Input::Unanswered {
                            call: Call::Authorise,
                            now: OffsetDateTime::now_utc(),
                        },
                    };
                    recorded += self.advance(id, client, correlation, input).await?;
                }
                Action::SettleCard {
                    authorisation_id,
                    capture,
                } => {
                    let call = if capture {
                        self.bank.capture(&authorisation_id)
                    } else {
                        self.bank.release(&authorisation_id)
                    };
                    let now = OffsetDateTime::now_utc();
                    let input = match self.ask_bank(id, "settlement", call).await {
                        Some(Answer::Done(())) => Input::Answered {
                            call: Call::Settle,
                            now,
                            outcome: Execution::Succeeded {
                                provider_reference: authorisation_id,
                            },
                        },
                        Some(Answer::Refused(reason)) => {
                            tracing::warn!(payment = %id, reason, capture, "the bank refused to settle a card authorisation; asked again");
                            Input::Unanswered {
                                now,
                                call: Call::Settle,
                            }
                        }
                        Some(Answer::Unavailable(_)) | None => Input::Unanswered {
                            now,
                            call: Call::Settle,
                        },
                    };
                    recorded += self.advance(id, client, correlation, input).await?;
                }
                Action::Issue { step, command } => {
                    self.issue(id, correlation, &step, command).await?;
                    recorded += 1;
                }
                Action::Credit { step, command } => {
                    let recipient = match &command {
                        etr_domain::Command::Wallet { wallet_id, .. } => *wallet_id,
                        _ => uuid::Uuid::nil(),
                    };
                    let now = OffsetDateTime::now_utc();
                    let input = match self.issue(id, correlation, &step, command).await {
                        Ok(Issued::Accepted) => Input::Answered {
                            call: Call::Credit,
                            now,
                            outcome: Execution::Succeeded {
                                provider_reference: format!("wallet:{recipient}"),
                            },
                        },
                        Ok(Issued::Rejected { code }) => Input::Answered {
                            call: Call::Credit,
                            now,
                            outcome: Execution::Failed {
                                reason: format!(
                                    "the recipient's wallet refused the credit: {code}"
                                ),
                            },
                        },
                        Err(e) => {
                            tracing::warn!(payment = %id, error = %e, "a transfer's credit was not taken; asked again");
                            Input::Unanswered {
                                now,
                                call: Call::Credit,
                            }
                        }
                    };
                    recorded += 1 + self.advance(id, client, correlation, input).await?;
                }
                Action::WakeAt(_) => {}
            }
        }
        Ok(recorded)
    }

    /// One call to the provider within the attempt timeout, as the process's input for `call`
    /// (`Unanswered` when it did not answer in time: the process asks again).
    async fn ask_provider(
        &self,
        id: uuid::Uuid,
        call: Call,
        answer: etr_domain::ports::BoxFuture<'_, Execution>,
    ) -> Input {
        let timeout =
            Duration::try_from(self.policy.attempt_timeout).unwrap_or(Duration::from_secs(5));
        let answered = tokio::time::timeout(timeout, answer).await;
        let now = OffsetDateTime::now_utc();
        match answered {
            Ok(outcome) => Input::Answered { now, call, outcome },
            Err(_) => {
                tracing::warn!(payment = %id, ?call, "the payment provider did not answer in time");
                Input::Unanswered { now, call }
            }
        }
    }

    /// One call to the bank within the attempt timeout; `None` when it did not answer.
    async fn ask_bank<T>(
        &self,
        id: uuid::Uuid,
        what: &str,
        call: etr_domain::ports::BoxFuture<'_, Answer<T>>,
    ) -> Option<Answer<T>> {
        let timeout =
            Duration::try_from(self.policy.attempt_timeout).unwrap_or(Duration::from_secs(5));
        match tokio::time::timeout(timeout, call).await {
            Ok(answer) => Some(answer),
            Err(_) => {
                tracing::warn!(payment = %id, what, "the bank did not answer in time");
                None
            }
        }
    }

    /// Steps an instance with an external answer: issues what it asks, then stores it.
    async fn advance(
        &self,
        id: uuid::Uuid,
        client: uuid::Uuid,
        correlation: &str,
        input: Input,
    ) -> Result<usize, Error> {
        // The new state and its timer are stored first: if issuing fails (or the process
        // dies), the timer wakes the instance and the command is issued again under its
        // deterministic id.
        let actions = runtime::advance(
            &self.pool,
            PROCESS,
            (&id, client, correlation),
            |s: Option<State>| step(s, input, &self.policy),
            first_wake,
        )
        .await?;
        let mut recorded = 0;
        for action in actions {
            if let Action::Issue { step, command } = action {
                self.issue(id, correlation, &step, command).await?;
                recorded += 1;
            }
        }
        Ok(recorded)
    }

    async fn issue(
        &self,
        id: uuid::Uuid,
        correlation: &str,
        step: &str,
        command: etr_domain::Command,
    ) -> Result<Issued, Error> {
        let issued = self
            .commands
            .issue(Issue {
                command_id: platform_command_id(PROCESS, id, step),
                correlation_id: correlation.to_owned(),
                actor: Actor::system("payment-processing"),
                command,
            })
            .await
            .map_err(Error::CommandNotTaken)?;
        if let Issued::Rejected { code } = &issued {
            tracing::info!(payment = %id, code, step, "payment execution step refused");
        }
        Ok(issued)
    }
}

/// The timer the actions set (the first `WakeAt`): `Some(None)` clears it, `None` keeps it.
fn first_wake(actions: &[Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().find_map(|a| match a {
        Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}
