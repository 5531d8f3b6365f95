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
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::envelope::Actor;
use crate::error::Error;
use crate::ids::ClientId;

use crate::merchant_order::{self, Order};
use crate::payment::{self, Payment};
use crate::wallet::{self, Wallet};
use crate::{application, client, loan};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AggregateKind {
    Client,
    Application,
    Loan,
    WalletAccount,
    Payment,
    MerchantOrder,
}

impl AggregateKind {
    pub const ALL: [AggregateKind; 6] = [
        AggregateKind::Client,
        AggregateKind::Application,
        AggregateKind::Loan,
        AggregateKind::WalletAccount,
        AggregateKind::Payment,
        AggregateKind::MerchantOrder,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AggregateKind::Client => "client",
            AggregateKind::Application => "application",
            AggregateKind::Loan => "loan",
            AggregateKind::WalletAccount => "wallet_account",
            AggregateKind::Payment => "payment",
            AggregateKind::MerchantOrder => "merchant_order",
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
    pub fn client(id: ClientId) -> Self {
        AggregateRef {
            kind: AggregateKind::Client,
            id: id.0,
        }
    }
    pub fn application(id: Uuid) -> Self {
        AggregateRef {
            kind: AggregateKind::Application,
            id,
        }
    }
    pub fn loan(id: Uuid) -> Self {
        AggregateRef {
            kind: AggregateKind::Loan,
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

/// What a command knows besides itself: business time, who sent it, and the configuration
/// it is decided under (the client group catalogue, whose limits apply from the next
/// operation once changed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub now: OffsetDateTime,
    pub actor: Actor,
    pub groups: Arc<crate::limits::Catalogue>,
}

impl Context {
    /// A context under the default group catalogue.
    pub fn new(now: OffsetDateTime, actor: Actor) -> Context {
        Context {
            now,
            actor,
            groups: Arc::new(crate::limits::Catalogue::default()),
        }
    }
}

/// Every command of the platform: an aggregate's own command with the ids that route it (the
/// client, whose partition orders it, and the aggregate). Adding a command means adding it to
/// its aggregate's `Command` and `decide`; nothing here changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Client {
        client_id: ClientId,
        command: client::Command,
    },
    Wallet {
        client_id: ClientId,
        wallet_id: Uuid,
        command: wallet::Command,
    },
    Payment {
        client_id: ClientId,
        wallet_id: Uuid,
        payment_id: Uuid,
        command: payment::Command,
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
    /// A merchant's order; `merchant_id` is the merchant's client id (its partition).
    MerchantOrder {
        merchant_id: ClientId,
        order_id: Uuid,
        command: merchant_order::Command,
    },
}

impl Command {
    /// The command's name as recorded with its command record, e.g. `OpenWallet`.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Client { command, .. } => command.name(),
            Command::Wallet { command, .. } => command.name(),
            Command::Payment { command, .. } => command.name(),
            Command::Application { command, .. } => command.name(),
            Command::Loan { command, .. } => command.name(),
            Command::MerchantOrder { command, .. } => command.name(),
        }
    }

    pub fn client_id(&self) -> ClientId {
        match self {
            Command::Client { client_id, .. }
            | Command::Wallet { client_id, .. }
            | Command::Payment { client_id, .. }
            | Command::Application { client_id, .. }
            | Command::Loan { client_id, .. } => *client_id,
            Command::MerchantOrder { merchant_id, .. } => *merchant_id,
        }
    }

    /// The aggregates whose state `decide` needs and whose events it may emit.
    pub fn targets(&self) -> Vec<AggregateRef> {
        match self {
            Command::Client { client_id, .. } => vec![AggregateRef::client(*client_id)],
            Command::Wallet {
                client_id,
                wallet_id,
                command,
            } => {
                let mut targets = vec![
                    AggregateRef::wallet(*wallet_id),
                    AggregateRef::client(*client_id),
                ];
                targets.extend(command.other_targets());
                targets
            }
            Command::Payment {
                client_id,
                wallet_id,
                payment_id,
                ..
            } => vec![
                AggregateRef::payment(*payment_id),
                AggregateRef::wallet(*wallet_id),
                AggregateRef::client(*client_id),
            ],
            Command::Application {
                client_id,
                application_id,
                command,
            } => {
                let mut targets = vec![
                    AggregateRef::application(*application_id),
                    AggregateRef::client(*client_id),
                ];
                targets.extend(command.other_targets());
                targets
            }
            Command::Loan {
                client_id,
                loan_id,
                command,
            } => {
                let mut targets = vec![AggregateRef {
                    kind: AggregateKind::Loan,
                    id: *loan_id,
                }];
                targets.extend(command.other_targets());
                if command.needs_client() {
                    targets.push(AggregateRef::client(*client_id));
                }
                targets
            }
            Command::MerchantOrder { order_id, .. } => {
                vec![AggregateRef::merchant_order(*order_id)]
            }
        }
    }
}

/// An event of any aggregate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Client(client::Event),
    Wallet(wallet::Event),
    Payment(payment::Event),
    Application(application::Event),
    Loan(loan::Event),
    MerchantOrder(merchant_order::Event),
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::Client(e) => e.name(),
            Event::Wallet(e) => e.name(),
            Event::Payment(e) => e.name(),
            Event::Application(e) => e.name(),
            Event::Loan(e) => e.name(),
            Event::MerchantOrder(e) => e.name(),
        }
    }

    pub fn kind(&self) -> AggregateKind {
        match self {
            Event::Client(_) => AggregateKind::Client,
            Event::Wallet(_) => AggregateKind::WalletAccount,
            Event::Payment(_) => AggregateKind::Payment,
            Event::Application(_) => AggregateKind::Application,
            Event::Loan(_) => AggregateKind::Loan,
            Event::MerchantOrder(_) => AggregateKind::MerchantOrder,
        }
    }
}

/// The state of any aggregate, as kept in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    Client(Box<client::Client>),
    Wallet(Wallet),
    Payment(Payment),
    Application(Box<application::Application>),
    Loan(loan::Loan),
    MerchantOrder(Order),
}

impl State {
    /// The state of an aggregate that has no events yet.
    pub fn initial(target: AggregateRef) -> State {
        match target.kind {
            AggregateKind::Client => State::Client(Box::new(client::Client {
                id: target.id,
                ..Default::default()
            })),
            AggregateKind::WalletAccount => State::Wallet(Wallet {
                id: target.id,
                ..Wallet::default()
            }),
            AggregateKind::Payment => State::Payment(Payment {
                id: target.id,
                ..Payment::default()
            }),
            AggregateKind::Application => State::Application(Box::new(application::Application {
                id: target.id,
                ..Default::default()
            })),
            AggregateKind::Loan => State::Loan(loan::Loan {
                id: target.id,
                ..Default::default()
            }),
            AggregateKind::MerchantOrder => State::MerchantOrder(Order {
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
        (State::Client(s), Event::Client(e)) => State::Client(Box::new(client::evolve(*s, e))),
        (State::Wallet(s), Event::Wallet(e)) => State::Wallet(wallet::evolve(s, e)),
        (State::Payment(s), Event::Payment(e)) => State::Payment(payment::evolve(s, client, e)),
        (State::Application(s), Event::Application(e)) => {
            State::Application(Box::new(application::evolve(*s, client, e)))
        }
        (State::Loan(s), Event::Loan(e)) => State::Loan(loan::evolve(s, client, e)),
        (State::MerchantOrder(s), Event::MerchantOrder(e)) => {
            State::MerchantOrder(merchant_order::evolve(s, client, e))
        }
        (s, _) => s,
    }
}

/// The states `decide` reads, keyed by aggregate. A missing entry is an aggregate with no
/// events yet.
pub type States = BTreeMap<AggregateRef, State>;

/// Decides a command against the current states of its targets.
pub fn decide(
    states: &States,
    command: &Command,
    context: &Context,
) -> Result<Vec<(AggregateRef, Event)>, Error> {
    match command {
        Command::Client { client_id, command } => {
            let target = AggregateRef::client(*client_id);
            let state = match states.get(&target) {
                Some(State::Client(c)) => (**c).clone(),
                _ => client::Client {
                    id: client_id.0,
                    ..Default::default()
                },
            };
            Ok(client::decide(&state, client_id.0, command, context)?
                .into_iter()
                .map(|e| (target, Event::Client(e)))
                .collect())
        }
        Command::Wallet {
            client_id,
            wallet_id,
            command,
        } => wallet::decide(states, *client_id, *wallet_id, command, context),
        Command::Payment {
            client_id,
            wallet_id,
            payment_id,
            command,
        } => payment::decide(
            states,
            *client_id,
            *wallet_id,
            *payment_id,
            command,
            context,
        ),
        Command::Application {
            client_id,
            application_id,
            command,
        } => application::decide(states, *client_id, *application_id, command, context),
        Command::Loan {
            client_id,
            loan_id,
            command,
        } => loan::decide_in(states, *client_id, *loan_id, command, context),
        Command::MerchantOrder {
            merchant_id,
            order_id,
            command,
        } => merchant_order::decide(states, *merchant_id, *order_id, command, context),
    }
}
