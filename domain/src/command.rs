//! The one entry point of the command side: every command names the aggregates it touches
//! ([`Command::targets`]), [`decide`] turns their current states into events (or a refusal),
//! and [`evolve`] folds an event into its aggregate's state.
//!
//! A command may touch several aggregates of one client (a payment reserves on its wallet,
//! a transfer moves money between two wallets); they share the client's partition, so the
//! command handler commits all their events atomically.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::envelope::Actor;
use crate::error::Error;
use crate::ids::ClientId;
use crate::money::{Currency, Money};
use crate::payment::{self, Execution, FraudVerdict, Payment};
use crate::wallet::{self, Limits, Wallet};
use crate::{application, loan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AggregateKind {
    Application,
    Loan,
    WalletAccount,
    Payment,
}

impl AggregateKind {
    pub const ALL: [AggregateKind; 4] = [
        AggregateKind::Application,
        AggregateKind::Loan,
        AggregateKind::WalletAccount,
        AggregateKind::Payment,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Application => "application",
            AggregateKind::Loan => "loan",
            AggregateKind::WalletAccount => "wallet_account",
            AggregateKind::Payment => "payment",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for AggregateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One aggregate instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AggregateRef {
    pub kind: AggregateKind,
    pub id: Uuid,
}

impl AggregateRef {
    pub fn wallet(id: Uuid) -> Self {
        AggregateRef {
            kind: AggregateKind::WalletAccount,
            id,
        }
    }
    pub fn payment(id: Uuid) -> Self {
        AggregateRef {
            kind: AggregateKind::Payment,
            id,
        }
    }
}

/// What a command knows besides itself: business time and who sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub now: OffsetDateTime,
    pub actor: Actor,
}

/// Every command of the platform. All carry the client they act for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    OpenWallet {
        client_id: ClientId,
        wallet_id: Uuid,
        currency: Currency,
        limits: Limits,
    },
    TopUpWallet {
        client_id: ClientId,
        wallet_id: Uuid,
        operation_id: Uuid,
        amount: Money,
        source: String,
    },
    CloseWallet {
        client_id: ClientId,
        wallet_id: Uuid,
    },
    /// Creates a payment and runs it through fraud control, lock, balance check and
    /// reservation (statuses 0–3), or cancels it when fraud control declined (9).
    StartPayment {
        client_id: ClientId,
        wallet_id: Uuid,
        payment_id: Uuid,
        amount: Money,
        service_id: String,
        attributes: BTreeMap<String, String>,
        fraud: FraudVerdict,
    },
    /// Records the processing result of a reserved payment: 4 → 5 → 6 capturing the hold,
    /// or 4 → 7 → 8 releasing it.
    ExecutePayment {
        client_id: ClientId,
        wallet_id: Uuid,
        payment_id: Uuid,
        outcome: Execution,
    },
    /// Cancels a payment not yet sent for execution (status ≤ 3), releasing its hold.
    CancelPayment {
        client_id: ClientId,
        wallet_id: Uuid,
        payment_id: Uuid,
        reason: String,
    },
    TransferBetweenWallets {
        client_id: ClientId,
        from_wallet_id: Uuid,
        to_wallet_id: Uuid,
        transfer_id: Uuid,
        amount: Money,
    },
    Application {
        client_id: ClientId,
        application_id: Uuid,
        command: application::Command,
    },
    Loan {
        client_id: ClientId,
        loan_id: Uuid,
        command: loan::Command,
    },
}

impl Command {
    /// The command's name as recorded with its command record, e.g. `OpenWallet`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::OpenWallet { .. } => "OpenWallet",
            Command::TopUpWallet { .. } => "TopUpWallet",
            Command::CloseWallet { .. } => "CloseWallet",
            Command::StartPayment { .. } => "StartPayment",
            Command::ExecutePayment { .. } => "ExecutePayment",
            Command::CancelPayment { .. } => "CancelPayment",
            Command::TransferBetweenWallets { .. } => "TransferBetweenWallets",
            Command::Application { .. } => "Application",
            Command::Loan { .. } => "Loan",
        }
    }

    pub fn client_id(&self) -> ClientId {
        match self {
            Command::OpenWallet { client_id, .. }
            | Command::TopUpWallet { client_id, .. }
            | Command::CloseWallet { client_id, .. }
            | Command::StartPayment { client_id, .. }
            | Command::ExecutePayment { client_id, .. }
            | Command::CancelPayment { client_id, .. }
            | Command::TransferBetweenWallets { client_id, .. }
            | Command::Application { client_id, .. }
            | Command::Loan { client_id, .. } => *client_id,
        }
    }

    /// The aggregates whose state `decide` needs and whose events it may emit.
    pub fn targets(&self) -> Vec<AggregateRef> {
        match self {
            Command::OpenWallet { wallet_id, .. }
            | Command::TopUpWallet { wallet_id, .. }
            | Command::CloseWallet { wallet_id, .. } => vec![AggregateRef::wallet(*wallet_id)],
            Command::StartPayment {
                wallet_id,
                payment_id,
                ..
            }
            | Command::ExecutePayment {
                wallet_id,
                payment_id,
                ..
            }
            | Command::CancelPayment {
                wallet_id,
                payment_id,
                ..
            } => vec![
                AggregateRef::payment(*payment_id),
                AggregateRef::wallet(*wallet_id),
            ],
            Command::TransferBetweenWallets {
                from_wallet_id,
                to_wallet_id,
                ..
            } => vec![
                AggregateRef::wallet(*from_wallet_id),
                AggregateRef::wallet(*to_wallet_id),
            ],
            Command::Application { application_id, .. } => vec![AggregateRef {
                kind: AggregateKind::Application,
                id: *application_id,
            }],
            Command::Loan { loan_id, .. } => vec![AggregateRef {
                kind: AggregateKind::Loan,
                id: *loan_id,
            }],
        }
    }
}

/// An event of any aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Wallet(wallet::Event),
    Payment(payment::Event),
    Application(application::Event),
    Loan(loan::Event),
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Wallet(e) => e.name(),
            Event::Payment(e) => e.name(),
            Event::Application(e) => e.name(),
            Event::Loan(e) => e.name(),
        }
    }

    pub fn kind(&self) -> AggregateKind {
        match self {
            Event::Wallet(_) => AggregateKind::WalletAccount,
            Event::Payment(_) => AggregateKind::Payment,
            Event::Application(_) => AggregateKind::Application,
            Event::Loan(_) => AggregateKind::Loan,
        }
    }
}

/// The state of any aggregate, as kept in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Wallet(Wallet),
    Payment(Payment),
    Application(application::Application),
    Loan(loan::Loan),
}

impl State {
    /// The state of an aggregate that has no events yet.
    pub fn initial(target: AggregateRef) -> State {
        match target.kind {
            AggregateKind::WalletAccount => State::Wallet(Wallet {
                id: target.id,
                ..Wallet::default()
            }),
            AggregateKind::Payment => State::Payment(Payment {
                id: target.id,
                ..Payment::default()
            }),
            AggregateKind::Application => State::Application(application::Application {
                id: target.id,
                ..Default::default()
            }),
            AggregateKind::Loan => State::Loan(loan::Loan {
                id: target.id,
                ..Default::default()
            }),
        }
    }
}

/// Folds one event into its aggregate's state. An event of another aggregate kind leaves
/// the state unchanged (the log never contains such a pairing).
pub fn evolve(state: State, client: ClientId, event: &Event) -> State {
    match (state, event) {
        (State::Wallet(s), Event::Wallet(e)) => State::Wallet(wallet::evolve(s, e)),
        (State::Payment(s), Event::Payment(e)) => State::Payment(payment::evolve(s, client, e)),
        (State::Application(s), Event::Application(e)) => {
            State::Application(application::evolve(s, client, e))
        }
        (State::Loan(s), Event::Loan(e)) => State::Loan(loan::evolve(s, client, e)),
        (s, _) => s,
    }
}

/// The states `decide` reads, keyed by aggregate. A missing entry is an aggregate with no
/// events yet.
pub type States = BTreeMap<AggregateRef, State>;

fn wallet_of(states: &States, id: Uuid) -> Wallet {
    match states.get(&AggregateRef::wallet(id)) {
        Some(State::Wallet(w)) => w.clone(),
        _ => Wallet {
            id,
            ..Wallet::default()
        },
    }
}

fn payment_of(states: &States, id: Uuid) -> Payment {
    match states.get(&AggregateRef::payment(id)) {
        Some(State::Payment(p)) => p.clone(),
        _ => Payment {
            id,
            ..Payment::default()
        },
    }
}

/// Decides a command against the current states of its targets.
pub fn decide(
    states: &States,
    command: &Command,
    _context: &Context,
) -> Result<Vec<(AggregateRef, Event)>, Error> {
    let wallet_events = |wallet_id: Uuid, events: Vec<wallet::Event>| {
        events
            .into_iter()
            .map(move |e| (AggregateRef::wallet(wallet_id), Event::Wallet(e)))
            .collect::<Vec<_>>()
    };
    match command {
        Command::OpenWallet {
            client_id,
            wallet_id,
            currency,
            limits,
        } => {
            let w = wallet_of(states, *wallet_id);
            let cmd = wallet::Command::OpenWallet {
                wallet_id: *wallet_id,
                client_id: *client_id,
                currency: *currency,
                limits: limits.clone(),
            };
            Ok(wallet_events(*wallet_id, wallet::decide(&w, &cmd)?))
        }
        Command::TopUpWallet {
            client_id,
            wallet_id,
            operation_id,
            amount,
            source,
        } => {
            let w = wallet_of(states, *wallet_id);
            let cmd = wallet::Command::TopUp {
                client_id: *client_id,
                operation_id: *operation_id,
                amount: *amount,
                source: source.clone(),
            };
            Ok(wallet_events(*wallet_id, wallet::decide(&w, &cmd)?))
        }
        Command::CloseWallet {
            client_id,
            wallet_id,
        } => {
            let w = wallet_of(states, *wallet_id);
            let cmd = wallet::Command::CloseWallet {
                client_id: *client_id,
            };
            Ok(wallet_events(*wallet_id, wallet::decide(&w, &cmd)?))
        }
        Command::StartPayment {
            client_id,
            wallet_id,
            payment_id,
            amount,
            service_id,
            attributes,
            fraud,
        } => {
            let p = payment_of(states, *payment_id);
            if p.status != payment::Status::New {
                return Err(Error::PaymentAlreadyExists(*payment_id));
            }
            if service_id.trim().is_empty() {
                return Err(Error::Invalid("service_id must not be empty".into()));
            }
            let w = wallet_of(states, *wallet_id);
            let pay = |e| (AggregateRef::payment(*payment_id), Event::Payment(e));
            let initiated = pay(payment::Event::PaymentInitiated {
                payment_id: *payment_id,
                wallet_id: *wallet_id,
                amount: *amount,
                service_id: service_id.clone(),
                attributes: attributes.clone(),
            });
            if let FraudVerdict::Declined { reason } = fraud {
                // The wallet must still be the client's: a declined payment is recorded on it.
                if w.client_id != Some(*client_id) || w.status != wallet::Status::Open {
                    return Err(Error::WalletNotFound(*wallet_id));
                }
                return Ok(vec![
                    initiated,
                    pay(payment::Event::PaymentCancelled {
                        reason: format!("fraud control: {reason}"),
                    }),
                ]);
            }
            wallet::check_hold(&w, *client_id, *amount)?;
            Ok(vec![
                initiated,
                pay(payment::Event::PaymentLocked),
                pay(payment::Event::PaymentBalanceChecked),
                (
                    AggregateRef::wallet(*wallet_id),
                    Event::Wallet(wallet::Event::FundsHeld {
                        payment_id: *payment_id,
                        amount: *amount,
                    }),
                ),
                pay(payment::Event::PaymentReserved { amount: *amount }),
            ])
        }
        Command::ExecutePayment {
            client_id,
            wallet_id,
            payment_id,
            outcome,
        } => {
            let p = payment_of(states, *payment_id);
            if p.client_id_matches(*client_id, *wallet_id).is_err() {
                return Err(Error::PaymentNotFound(*payment_id));
            }
            if p.status != payment::Status::Reserved {
                return Err(payment::transition_error(&p, "be executed"));
            }
            let amount = p.amount.ok_or(Error::PaymentNotFound(*payment_id))?;
            let pay = |e| (AggregateRef::payment(*payment_id), Event::Payment(e));
            let wal = |e| (AggregateRef::wallet(*wallet_id), Event::Wallet(e));
            let started = pay(payment::Event::PaymentExecutionStarted);
            Ok(match outcome {
                Execution::Succeeded { provider_reference } => vec![
                    started,
                    pay(payment::Event::PaymentExecuted {
                        provider_reference: provider_reference.clone(),
                    }),
                    wal(wallet::Event::HoldCaptured {
                        payment_id: *payment_id,
                        amount,
                    }),
                    pay(payment::Event::PaymentSucceeded),
                ],
                Execution::Failed { reason } => vec![
                    started,
                    pay(payment::Event::PaymentExecutionFailed {
                        reason: reason.clone(),
                    }),
                    wal(wallet::Event::HoldReleased {
                        payment_id: *payment_id,
                        amount,
                    }),
                    pay(payment::Event::PaymentFailed {
                        reason: reason.clone(),
                    }),
                ],
            })
        }
        Command::CancelPayment {
            client_id,
            wallet_id,
            payment_id,
            reason,
        } => {
            let p = payment_of(states, *payment_id);
            if p.client_id_matches(*client_id, *wallet_id).is_err() {
                return Err(Error::PaymentNotFound(*payment_id));
            }
            if p.status.is_final() || p.status >= payment::Status::Executing {
                return Err(payment::transition_error(&p, "be cancelled"));
            }
            let mut events = Vec::new();
            let w = wallet_of(states, *wallet_id);
            if let Some(amount) = w.holds.get(payment_id) {
                events.push((
                    AggregateRef::wallet(*wallet_id),
                    Event::Wallet(wallet::Event::HoldReleased {
                        payment_id: *payment_id,
                        amount: *amount,
                    }),
                ));
            }
            events.push((
                AggregateRef::payment(*payment_id),
                Event::Payment(payment::Event::PaymentCancelled {
                    reason: reason.clone(),
                }),
            ));
            Ok(events)
        }
        Command::TransferBetweenWallets {
            client_id,
            from_wallet_id,
            to_wallet_id,
            transfer_id,
            amount,
        } => {
            let from = wallet_of(states, *from_wallet_id);
            let to = wallet_of(states, *to_wallet_id);
            let (sent, received) =
                wallet::decide_transfer(&from, &to, *client_id, *transfer_id, *amount)?;
            Ok(vec![
                (AggregateRef::wallet(*from_wallet_id), Event::Wallet(sent)),
                (AggregateRef::wallet(*to_wallet_id), Event::Wallet(received)),
            ])
        }
        Command::Application {
            client_id,
            application_id,
            command,
        } => {
            let target = AggregateRef {
                kind: AggregateKind::Application,
                id: *application_id,
            };
            let state = match states.get(&target) {
                Some(State::Application(a)) => a.clone(),
                _ => application::Application {
                    id: *application_id,
                    ..Default::default()
                },
            };
            if state.client_id.is_some_and(|c| c != *client_id) {
                return Err(Error::Invalid(format!(
                    "application {application_id} does not exist"
                )));
            }
            Ok(application::decide(&state, *application_id, command)?
                .into_iter()
                .map(|e| (target, Event::Application(e)))
                .collect())
        }
        Command::Loan {
            client_id,
            loan_id,
            command,
        } => {
            let target = AggregateRef {
                kind: AggregateKind::Loan,
                id: *loan_id,
            };
            let state = match states.get(&target) {
                Some(State::Loan(l)) => l.clone(),
                _ => loan::Loan {
                    id: *loan_id,
                    ..Default::default()
                },
            };
            if state.client_id.is_some_and(|c| c != *client_id) {
                return Err(Error::Invalid(format!("loan {loan_id} does not exist")));
            }
            Ok(loan::decide(&state, *loan_id, command)?
                .into_iter()
                .map(|e| (target, Event::Loan(e)))
                .collect())
        }
    }
}

impl Payment {
    fn client_id_matches(&self, client: ClientId, wallet_id: Uuid) -> Result<(), ()> {
        if self.status == payment::Status::New
            || self.wallet_id != wallet_id
            || self.client_id != Some(client)
        {
            return Err(());
        }
        Ok(())
    }
}
