//! The peer's wallet: a plain cqrs-es aggregate with the platform's wallet rules reduced to
//! what the benchmark exercises (open once, top up, pay from the balance, never below zero).
//!
//! Amounts are `rust_decimal::Decimal` in the wallet's currency (roubles, two decimal places as
//! given; nothing is rounded here). The aggregate owns its `Command`, `Event` and refusal
//! enums, as cqrs-es' demo does.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// `aggregate_type` of the peer's rows in `events` and `snapshots`.
pub const AGGREGATE_TYPE: &str = "wallet";

/// State of one wallet.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wallet {
    /// Number of the last event applied (the stream's length); 0 before the first.
    pub version: u64,
    pub open: bool,
    /// ISO 4217 code, empty until opened.
    pub currency: String,
    /// In `currency`; never negative.
    pub balance: Decimal,
}

/// What a caller asks of a wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    Open { currency: String },
    TopUp { amount: Decimal },
    Pay { amount: Decimal },
}

/// What happened to a wallet; the payload of one row in `events` (or in the raw table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the wallet's stream, from 1 (cqrs-es' `sequence` of the row).
    pub number: u64,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Change {
    Opened { currency: String },
    ToppedUp { amount: Decimal },
    Paid { amount: Decimal },
}

impl Event {
    /// The event `command` asks for as the `number`-th of its stream, without checking it
    /// against any state. The raw INSERT baseline stores exactly these rows; the peer stores
    /// them after [`Wallet`]'s `handle` accepted the command.
    pub fn unchecked(command: &Command, number: u64) -> Event {
        let change = match command {
            Command::Open { currency } => Change::Opened {
                currency: currency.clone(),
            },
            Command::TopUp { amount } => Change::ToppedUp { amount: *amount },
            Command::Pay { amount } => Change::Paid { amount: *amount },
        };
        Event { number, change }
    }
}

impl DomainEvent for Event {
    fn event_type(&self) -> String {
        match self.change {
            Change::Opened { .. } => "Opened",
            Change::ToppedUp { .. } => "ToppedUp",
            Change::Paid { .. } => "Paid",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a wallet refused a command; a refused command writes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the wallet is already open")]
    AlreadyOpen,
    #[error("the wallet is not open")]
    NotOpen,
    #[error("amount {0} is not positive")]
    NotPositive(Decimal),
    #[error("payment of {amount} exceeds the balance {balance}")]
    Insufficient { amount: Decimal, balance: Decimal },
}

impl Wallet {
    fn decide(&self, command: &Command) -> Result<Event, Refusal> {
        let next = Event::unchecked(command, self.version + 1);
        match command {
            Command::Open { .. } if self.open => Err(Refusal::AlreadyOpen),
            Command::Open { .. } => Ok(next),
            _ if !self.open => Err(Refusal::NotOpen),
            Command::TopUp { amount } | Command::Pay { amount } if *amount <= Decimal::ZERO => {
                Err(Refusal::NotPositive(*amount))
            }
            Command::Pay { amount } if *amount > self.balance => Err(Refusal::Insufficient {
                amount: *amount,
                balance: self.balance,
            }),
            Command::TopUp { .. } | Command::Pay { .. } => Ok(next),
        }
    }
}

impl Aggregate for Wallet {
    const TYPE: &'static str = AGGREGATE_TYPE;
    type Command = Command;
    type Event = Event;
    type Error = Refusal;
    type Services = ();

    async fn handle(
        &mut self,
        command: Command,
        _services: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Refusal> {
        let event = self.decide(&command)?;
        sink.write(event, self).await;
        Ok(())
    }

    /// Total: any event applies to any state. An event whose number is not past
    /// [`Wallet::version`] was applied already and changes nothing: cqrs-es 0.5.0 applies each
    /// new event twice to the state an aggregate (or snapshot) store saves — once in
    /// `EventSink::write`, again in `PersistedEventStore::commit` — which without this guard
    /// stores every wallet with its movements counted twice (seen in
    /// `tests/workloads.rs::peer_aggregate_store_keeps_balances`).
    fn apply(&mut self, event: Event) {
        if event.number <= self.version {
            return;
        }
        self.version = event.number;
        match event.change {
            Change::Opened { currency } => {
                self.open = true;
                self.currency = currency;
            }
            Change::ToppedUp { amount } => self.balance += amount,
            Change::Paid { amount } => self.balance -= amount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use rust_decimal_macros::dec;

    type Given = TestFramework<Wallet>;

    fn event(number: u64, change: Change) -> Event {
        Event { number, change }
    }

    fn opened() -> Event {
        event(
            1,
            Change::Opened {
                currency: "RUB".to_owned(),
            },
        )
    }

    #[test]
    fn a_payment_within_the_balance_is_paid() {
        Given::with(())
            .given(vec![
                opened(),
                event(
                    2,
                    Change::ToppedUp {
                        amount: dec!(100.00),
                    },
                ),
            ])
            .when(Command::Pay {
                amount: dec!(10.00),
            })
            .then_expect_events(vec![event(
                3,
                Change::Paid {
                    amount: dec!(10.00),
                },
            )]);
    }

    #[test]
    fn a_payment_above_the_balance_is_refused() {
        Given::with(())
            .given(vec![
                opened(),
                event(2, Change::ToppedUp { amount: dec!(5.00) }),
            ])
            .when(Command::Pay {
                amount: dec!(10.00),
            })
            .then_expect_error(Refusal::Insufficient {
                amount: dec!(10.00),
                balance: dec!(5.00),
            });
    }

    #[test]
    fn a_wallet_opens_once() {
        Given::with(())
            .given(vec![opened()])
            .when(Command::Open {
                currency: "RUB".to_owned(),
            })
            .then_expect_error(Refusal::AlreadyOpen);
    }

    #[test]
    fn nothing_happens_to_a_wallet_not_opened() {
        Given::with(())
            .given_no_previous_events()
            .when(Command::TopUp {
                amount: dec!(100.00),
            })
            .then_expect_error(Refusal::NotOpen);
    }

    /// cqrs-es 0.5.0's aggregate store applies a new event once in `EventSink::write` and again
    /// before saving the state; the second time must change nothing.
    #[test]
    fn an_event_applied_again_changes_nothing() {
        let mut wallet = Wallet::default();
        for e in [
            opened(),
            event(
                2,
                Change::ToppedUp {
                    amount: dec!(100.00),
                },
            ),
            event(
                2,
                Change::ToppedUp {
                    amount: dec!(100.00),
                },
            ),
            event(
                3,
                Change::Paid {
                    amount: dec!(10.00),
                },
            ),
            event(
                3,
                Change::Paid {
                    amount: dec!(10.00),
                },
            ),
        ] {
            wallet.apply(e);
        }
        assert_eq!(wallet.balance, dec!(90.00));
        assert_eq!(wallet.version, 3);
    }
}
