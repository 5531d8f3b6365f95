//! Loan repayments from a bound card: runs [`etr_domain::card_repayment::step`] for every
//! `CardRepaymentRequested`.
//!
//! - [`Tracker`] is a projection of the loans' events: a request starts an instance, the
//!   recorded outcome (`RepaymentAllocated` or `CardRepaymentDeclined` of the same repayment)
//!   ends it, in the checkpoint's transaction.
//! - [`Executor`] wakes due instances and performs their actions outside any transaction:
//!   authorises the card at the bank for the amount (the repayment id is the bank's
//!   idempotency key), captures the authorisation, and records the outcome on the loan under
//!   `platform:loan-card-repayment/<repayment>/record`.

use etr_domain::card_repayment::{step, Action, Input, Order, Outcome, Policy, Stage, PROCESS};
use etr_domain::ids::platform_command_id;
use etr_domain::loan;
use etr_domain::ports::{Answer, BankSystem, CardCredentials, CardPayment};
use etr_domain::{Actor, Command, Envelope, Event};
use etr_projections::runtime::Projection;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{to_projection_error, Error};
use crate::runtime::{self, Commands, Issue, Issued};

/// Moves the instances with the loans' events.
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
        use loan::Event as L;
        let Event::Loan(e) = event else {
            return Ok(());
        };
        let (repayment_id, input) = match e {
            L::CardRepaymentRequested {
                repayment_id,
                token,
                amount,
                ..
            } => (
                *repayment_id,
                Input::Requested {
                    at: envelope.occurred_at,
                    order: Order {
                        client_id: envelope.client_id,
                        loan_id: envelope.aggregate_id,
                        repayment_id: *repayment_id,
                        token: token.clone(),
                        amount: *amount,
                    },
                },
            ),
            L::RepaymentAllocated {
                repayment_id,
                card_id: Some(_),
                ..
            }
            | L::CardRepaymentDeclined { repayment_id, .. } => (*repayment_id, Input::Recorded),
            _ => return Ok(()),
        };
        let instance = runtime::load::<Stage>(tx, PROCESS, repayment_id)
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
            repayment_id,
            envelope.client_id.0,
            &correlation,
            &stage,
            wake(&actions),
        )
        .await
        .map_err(to_projection_error)
    }
}

/// Wakes due card repayments: authorises, captures, records.
pub struct Executor {
    pub pool: PgPool,
    pub bank: Arc<dyn BankSystem>,
    pub commands: Arc<dyn Commands>,
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
                tracing::warn!(repayment = %w.id, error = %e, "card repayment step failed; retried when due");
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
            let now = OffsetDateTime::now_utc;
            let input = match action {
                Action::Authorise { order } => {
                    let payment = CardPayment {
                        payment_id: order.repayment_id,
                        card: CardCredentials::Bound { token: order.token },
                        amount: order.amount,
                    };
                    Some(match self.bank.authorise(&payment).await {
                        Answer::Done(authorisation_id) => Input::Authorised {
                            now: now(),
                            authorisation_id,
                        },
                        Answer::Refused(reason) => Input::Declined { now: now(), reason },
                        Answer::Unavailable(reason) => {
                            tracing::warn!(repayment = %instance.0, reason, "the bank did not answer an authorisation");
                            Input::Unanswered { now: now() }
                        }
                    })
                }
                Action::Capture { authorisation_id } => {
                    Some(match self.bank.capture(&authorisation_id).await {
                        Answer::Done(()) => Input::Captured { now: now() },
                        Answer::Refused(reason) | Answer::Unavailable(reason) => {
                            tracing::warn!(repayment = %instance.0, reason, "a card repayment's capture failed; asked again");
                            Input::Unanswered { now: now() }
                        }
                    })
                }
                Action::Record { order, outcome } => {
                    self.record(instance, &order, outcome).await?;
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
        order: &Order,
        outcome: Outcome,
    ) -> Result<(), Error> {
        let issued = self
            .commands
            .issue(Issue {
                command_id: platform_command_id(PROCESS, order.repayment_id, "record"),
                correlation_id: instance.2.to_owned(),
                actor: Actor::system(PROCESS),
                command: Command::Loan {
                    client_id: order.client_id,
                    loan_id: order.loan_id,
                    command: loan::Command::RecordCardRepayment {
                        repayment_id: order.repayment_id,
                        outcome,
                    },
                },
            })
            .await
            .map_err(Error::CommandNotTaken)?;
        if let Issued::Rejected { code } = issued {
            tracing::warn!(repayment = %order.repayment_id, code, "a card repayment's outcome was not recorded");
        }
        Ok(())
    }
}

/// The timer the actions set: `Some(None)` clears it, `None` keeps it.
fn wake(actions: &[Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().rev().find_map(|a| match a {
        Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}
