//! Given/when/then tests and property tests of the wallet and payment aggregates.

use etr_domain::command::States;
use etr_domain::payment::{self, Execution, FraudVerdict};
use etr_domain::wallet::{self, Limits};
use etr_domain::{
    decide, evolve, Actor, AggregateRef, ClientId, Command, Context, Currency, Error, Event, Money,
    State,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;
use time::macros::datetime;
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(1));
const OTHER: ClientId = ClientId(Uuid::from_u128(2));
const W1: Uuid = Uuid::from_u128(11);
const W2: Uuid = Uuid::from_u128(12);
const P1: Uuid = Uuid::from_u128(21);

fn ctx() -> Context {
    Context::new(datetime!(2026-11-24 12:00 UTC), Actor::client(CLIENT))
}

fn rub(s: &str) -> Money {
    Money::new(Decimal::from_str(s).unwrap(), Currency::Rub)
}

/// The aggregates after applying the accepted commands in order (refusals are skipped).
struct World {
    states: States,
}

impl World {
    fn given(commands: &[Command]) -> World {
        let mut w = World {
            states: BTreeMap::new(),
        };
        for c in commands {
            w.when(c).expect("given command must be accepted");
        }
        w
    }

    fn when(&mut self, command: &Command) -> Result<Vec<Event>, Error> {
        let events = decide(&self.states, command, &ctx())?;
        for (target, event) in &events {
            let state = self
                .states
                .remove(target)
                .unwrap_or_else(|| State::initial(*target));
            self.states
                .insert(*target, evolve(state, command.client_id(), event));
        }
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }

    fn wallet(&self, id: Uuid) -> wallet::Wallet {
        match self.states.get(&AggregateRef::wallet(id)) {
            Some(State::Wallet(w)) => w.clone(),
            _ => panic!("no wallet {id}"),
        }
    }

    fn payment(&self, id: Uuid) -> payment::Payment {
        match self.states.get(&AggregateRef::payment(id)) {
            Some(State::Payment(p)) => p.clone(),
            _ => panic!("no payment {id}"),
        }
    }
}

fn open(id: Uuid) -> Command {
    Command::Wallet {
        client_id: CLIENT,
        wallet_id: id,
        command: etr_domain::wallet::Command::OpenWallet {
            currency: Currency::Rub,
        },
    }
}

fn top_up(id: Uuid, amount: &str) -> Command {
    Command::Wallet {
        client_id: CLIENT,
        wallet_id: id,
        command: etr_domain::wallet::Command::TopUp {
            operation_id: Uuid::new_v4(),
            amount: rub(amount),
            source: "card".into(),
        },
    }
}

fn start_payment(amount: &str, fraud: FraudVerdict) -> Command {
    Command::Payment {
        client_id: CLIENT,
        wallet_id: W1,
        payment_id: P1,
        command: etr_domain::payment::Command::Start {
            commission: None,
            amount: rub(amount),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            fraud,
            autopayment_run: None,
        },
    }
}

fn execute(outcome: Execution) -> Command {
    Command::Payment {
        client_id: CLIENT,
        wallet_id: W1,
        payment_id: P1,
        command: etr_domain::payment::Command::Execute { outcome },
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

#[test]
fn opening_a_wallet_twice_is_refused() {
    let mut w = World::given(&[open(W1)]);
    assert_eq!(w.when(&open(W1)), Err(Error::WalletAlreadyOpened(W1)));
}

#[test]
fn top_up_raises_balance_and_respects_limits() {
    let mut w = World::given(&[open(W1), top_up(W1, "100.50")]);
    assert_eq!(w.wallet(W1).balance, Decimal::from_str("100.50").unwrap());
    assert_eq!(
        w.when(&top_up(W1, "0.50")).unwrap_err().code(),
        "below_min_operation_amount"
    );
    assert_eq!(
        w.when(&top_up(W1, "100000.01")).unwrap_err().code(),
        "above_max_operation_amount"
    );
    for _ in 0..5 {
        w.when(&top_up(W1, "100000")).unwrap();
    }
    // 500100.50 now; another 100000 would exceed the 600000 maximum balance.
    assert_eq!(
        w.when(&top_up(W1, "100000")).unwrap_err().code(),
        "max_balance_exceeded"
    );
}

#[test]
fn top_up_in_another_currency_or_of_another_client_is_refused() {
    let mut w = World::given(&[open(W1)]);
    let usd = Command::Wallet {
        client_id: CLIENT,
        wallet_id: W1,
        command: etr_domain::wallet::Command::TopUp {
            operation_id: Uuid::new_v4(),
            amount: Money::new(Decimal::TEN, Currency::Usd),
            source: "card".into(),
        },
    };
    assert_eq!(w.when(&usd).unwrap_err().code(), "currency_mismatch");
    let foreign = Command::Wallet {
        client_id: OTHER,
        wallet_id: W1,
        command: etr_domain::wallet::Command::TopUp {
            operation_id: Uuid::new_v4(),
            amount: rub("10"),
            source: "card".into(),
        },
    };
    assert_eq!(w.when(&foreign), Err(Error::WalletNotFound(W1)));
    assert_eq!(w.when(&top_up(W2, "10")), Err(Error::WalletNotFound(W2)));
}

#[test]
fn successful_payment_walks_statuses_0_to_6_and_captures_the_hold() {
    let mut w = World::given(&[open(W1), top_up(W1, "500")]);
    let events = w
        .when(&start_payment("200", FraudVerdict::Approved))
        .unwrap();
    assert_eq!(
        names(&events),
        [
            "PaymentInitiated",
            "PaymentLocked",
            "PaymentBalanceChecked",
            "FundsHeld",
            "SpendingCounted",
            "PaymentReserved"
        ]
    );
    assert_eq!(w.payment(P1).status.code(), Some(3));
    assert_eq!(w.wallet(W1).available(), Decimal::from(300));
    assert_eq!(w.wallet(W1).balance, Decimal::from(500));

    let events = w
        .when(&execute(Execution::Succeeded {
            provider_reference: "sbc-1".into(),
        }))
        .unwrap();
    assert_eq!(
        names(&events),
        [
            "PaymentExecutionStarted",
            "PaymentExecuted",
            "HoldCaptured",
            "PaymentSucceeded"
        ]
    );
    assert_eq!(w.payment(P1).status.code(), Some(6));
    assert_eq!(w.wallet(W1).balance, Decimal::from(300));
    assert_eq!(w.wallet(W1).available(), Decimal::from(300));
    // Final: neither execution nor cancellation again.
    assert_eq!(
        w.when(&execute(Execution::Failed { reason: "x".into() }))
            .unwrap_err()
            .code(),
        "invalid_transition"
    );
}

#[test]
fn failed_execution_releases_the_hold_and_ends_in_status_8() {
    let mut w = World::given(&[
        open(W1),
        top_up(W1, "500"),
        start_payment("200", FraudVerdict::Approved),
    ]);
    let events = w
        .when(&execute(Execution::Failed {
            reason: "provider down".into(),
        }))
        .unwrap();
    assert_eq!(
        names(&events),
        [
            "PaymentExecutionStarted",
            "PaymentExecutionFailed",
            "HoldReleased",
            "SpendingReleased",
            "PaymentFailed"
        ]
    );
    assert_eq!(w.payment(P1).status.code(), Some(8));
    assert_eq!(w.wallet(W1).balance, Decimal::from(500));
    assert_eq!(w.wallet(W1).available(), Decimal::from(500));
}

#[test]
fn fraud_decline_cancels_with_status_9_and_holds_nothing() {
    let mut w = World::given(&[open(W1), top_up(W1, "500")]);
    let events = w
        .when(&start_payment(
            "200",
            FraudVerdict::Declined {
                reason: "velocity".into(),
            },
        ))
        .unwrap();
    assert_eq!(names(&events), ["PaymentInitiated", "PaymentCancelled"]);
    assert_eq!(w.payment(P1).status.code(), Some(9));
    assert_eq!(w.wallet(W1).available(), Decimal::from(500));
}

#[test]
fn cancelling_a_reserved_payment_releases_the_hold() {
    let mut w = World::given(&[
        open(W1),
        top_up(W1, "500"),
        start_payment("200", FraudVerdict::Approved),
    ]);
    let cancel = Command::Payment {
        client_id: CLIENT,
        wallet_id: W1,
        payment_id: P1,
        command: etr_domain::payment::Command::Cancel {
            reason: "client changed their mind".into(),
        },
    };
    let events = w.when(&cancel).unwrap();
    assert_eq!(
        names(&events),
        ["HoldReleased", "SpendingReleased", "PaymentCancelled"]
    );
    assert_eq!(w.wallet(W1).available(), Decimal::from(500));
    assert_eq!(w.when(&cancel).unwrap_err().code(), "invalid_transition");
}

#[test]
fn payment_beyond_available_is_refused_without_events() {
    let mut w = World::given(&[
        open(W1),
        top_up(W1, "300"),
        start_payment("200", FraudVerdict::Approved),
    ]);
    let second = Command::Payment {
        client_id: CLIENT,
        wallet_id: W1,
        payment_id: Uuid::from_u128(22),
        command: etr_domain::payment::Command::Start {
            commission: None,
            amount: rub("100.01"),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            fraud: FraudVerdict::Approved,
            autopayment_run: None,
        },
    };
    assert_eq!(
        w.when(&second),
        Err(Error::InsufficientFunds {
            available: Decimal::from_str("100.00").unwrap(),
            requested: Decimal::from_str("100.01").unwrap(),
        })
    );
    assert_eq!(
        w.when(&start_payment("1", FraudVerdict::Approved)),
        Err(Error::PaymentAlreadyExists(P1))
    );
}

#[test]
fn transfer_moves_money_between_two_wallets_of_one_client() {
    let mut w = World::given(&[open(W1), open(W2), top_up(W1, "250")]);
    let transfer = |amount: &str| Command::Wallet {
        client_id: CLIENT,
        wallet_id: W1,
        command: etr_domain::wallet::Command::Transfer {
            to_wallet_id: W2,
            transfer_id: Uuid::new_v4(),
            amount: rub(amount),
        },
    };
    let events = w.when(&transfer("100")).unwrap();
    assert_eq!(names(&events), ["TransferSent", "TransferReceived"]);
    assert_eq!(w.wallet(W1).balance, Decimal::from(150));
    assert_eq!(w.wallet(W2).balance, Decimal::from(100));
    assert_eq!(
        w.when(&transfer("150.01")).unwrap_err().code(),
        "insufficient_funds"
    );
    let to_self = Command::Wallet {
        client_id: CLIENT,
        wallet_id: W1,
        command: etr_domain::wallet::Command::Transfer {
            to_wallet_id: W1,
            transfer_id: Uuid::new_v4(),
            amount: rub("1"),
        },
    };
    assert_eq!(w.when(&to_self), Err(Error::TransferToSameWallet));
}

#[test]
fn transfer_to_a_wallet_of_another_client_is_refused() {
    let mut w = World::given(&[open(W1), top_up(W1, "250")]);
    w.when(&Command::Wallet {
        client_id: OTHER,
        wallet_id: W2,
        command: etr_domain::wallet::Command::OpenWallet {
            currency: Currency::Rub,
        },
    })
    .unwrap();
    let t = Command::Wallet {
        client_id: CLIENT,
        wallet_id: W1,
        command: etr_domain::wallet::Command::Transfer {
            to_wallet_id: W2,
            transfer_id: Uuid::new_v4(),
            amount: rub("10"),
        },
    };
    assert_eq!(w.when(&t), Err(Error::WalletNotFound(W2)));
}

// ---- properties ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    TopUp(usize, i64),
    Pay(usize, i64, bool, bool),
    Cancel(usize),
    Transfer(usize, usize, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 1..5_000_000_i64).prop_map(|(w, c)| Op::TopUp(w, c)),
        (0..3usize, 1..5_000_000_i64, any::<bool>(), any::<bool>())
            .prop_map(|(w, c, ok, done)| Op::Pay(w, c, ok, done)),
        (0..8usize).prop_map(Op::Cancel),
        (0..3usize, 0..3usize, 1..5_000_000_i64).prop_map(|(a, b, c)| Op::Transfer(a, b, c)),
    ]
}

const WALLETS: [Uuid; 3] = [
    Uuid::from_u128(101),
    Uuid::from_u128(102),
    Uuid::from_u128(103),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Random command sequences: money is conserved (balances = top-ups − captured
    /// payments), available never goes negative, and replaying the emitted events from
    /// scratch gives the same states.
    #[test]
    fn money_is_conserved_and_replay_is_deterministic(ops in prop::collection::vec(op(), 1..60)) {
        let mut world = World::given(&WALLETS.map(open));
        let mut log: Vec<(AggregateRef, Event)> = Vec::new();
        let mut topped = Decimal::ZERO;
        let mut captured = Decimal::ZERO;
        let mut payments: Vec<(Uuid, usize)> = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            let cents = |c: i64| Money::new(Decimal::new(c, 2), Currency::Rub);
            let command = match op {
                Op::TopUp(w, c) => Command::Wallet { client_id: CLIENT, wallet_id: WALLETS[w], command: etr_domain::wallet::Command::TopUp { operation_id: Uuid::from_u128(i as u128), amount: cents(c), source: "card".into() } },
                Op::Pay(w, c, approved, _) => {
                    let id = Uuid::from_u128(1_000 + i as u128);
                    payments.push((id, w));
                    Command::Payment { client_id: CLIENT, wallet_id: WALLETS[w], payment_id: id, command: etr_domain::payment::Command::Start { commission: None, amount: cents(c), service_id: "svc".into(), attributes: BTreeMap::new(), fraud: if approved { FraudVerdict::Approved } else { FraudVerdict::Declined { reason: "r".into() } }, autopayment_run: None } }
                }
                Op::Cancel(k) => match payments.get(k) {
                    Some((id, w)) => Command::Payment { client_id: CLIENT, wallet_id: WALLETS[*w], payment_id: *id, command: etr_domain::payment::Command::Cancel { reason: "r".into() } },
                    None => continue,
                },
                Op::Transfer(a, b, c) => Command::Wallet { client_id: CLIENT, wallet_id: WALLETS[a], command: etr_domain::wallet::Command::Transfer { to_wallet_id: WALLETS[b], transfer_id: Uuid::from_u128(i as u128), amount: cents(c) } },
            };
            let before = world.states.clone();
            match decide(&world.states, &command, &ctx()) {
                Ok(events) => {
                    for (t, e) in &events {
                        if let Event::Wallet(wallet::Event::WalletToppedUp { amount, .. }) = e { topped += amount.amount; }
                        if let Event::Wallet(wallet::Event::HoldCaptured { amount, .. }) = e { captured += amount.amount; }
                        let s = world.states.remove(t).unwrap_or_else(|| State::initial(*t));
                        world.states.insert(*t, evolve(s, CLIENT, e));
                    }
                    log.extend(events);
                }
                Err(_) => prop_assert_eq!(&world.states, &before, "a refused command changes nothing"),
            }
            // Settle some reserved payments right away.
            if let Op::Pay(w, _, _, settle) = op {
                let (id, _) = payments[payments.len() - 1];
                let outcome = if settle { Execution::Succeeded { provider_reference: "ref".into() } } else { Execution::Failed { reason: "no".into() } };
                let exec = Command::Payment { client_id: CLIENT, wallet_id: WALLETS[w], payment_id: id, command: etr_domain::payment::Command::Execute { outcome } };
                if let Ok(events) = decide(&world.states, &exec, &ctx()) {
                    for (t, e) in &events {
                        if let Event::Wallet(wallet::Event::HoldCaptured { amount, .. }) = e { captured += amount.amount; }
                        let s = world.states.remove(t).unwrap_or_else(|| State::initial(*t));
                        world.states.insert(*t, evolve(s, CLIENT, e));
                    }
                    log.extend(events);
                }
            }
            for id in WALLETS {
                let w = world.wallet(id);
                prop_assert!(w.available() >= Decimal::ZERO, "available went negative: {:?}", w);
                prop_assert!(w.balance <= Limits::registered().max_balance);
            }
        }
        let total: Decimal = WALLETS.iter().map(|id| world.wallet(*id).balance).sum();
        prop_assert_eq!(total, topped - captured);

        // Replay: fold the log from the initial states again.
        let mut replayed = World::given(&WALLETS.map(open)).states;
        for (t, e) in &log {
            let s = replayed.remove(t).unwrap_or_else(|| State::initial(*t));
            replayed.insert(*t, evolve(s, CLIENT, e));
        }
        prop_assert_eq!(replayed, world.states);
    }
}

/// A snapshot is the state's JSON; a payment not reserved (no limit day yet) reads back too.
#[test]
fn a_payment_state_reads_back_from_its_snapshot_json() {
    let unreserved = etr_domain::State::Payment(payment::Payment::default());
    let json = serde_json::to_value(&unreserved).unwrap();
    let back: etr_domain::State =
        serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(back, unreserved);
}
