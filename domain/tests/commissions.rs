//! A payment's commission (e-wallet spec §1.3, §3.1): held and captured together with the
//! amount, released and refunded in full, never in another currency or negative; the
//! provider is paid the amount alone.

use etr_domain::command::States;
use etr_domain::payment::{self, Execution, FraudVerdict};
use etr_domain::payment_execution::{step, Action, Input, Policy};
use etr_domain::{
    decide, evolve, wallet, Actor, AggregateRef, ClientId, Command, Context, Currency, Error,
    Event, Money, State,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;
use time::macros::datetime;
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(1));
const WALLET: Uuid = Uuid::from_u128(2);

fn rub(a: Decimal) -> Money {
    Money::new(a, Currency::Rub)
}

#[derive(Default)]
struct World {
    states: States,
    events: Vec<Event>,
}

impl World {
    fn with_balance(balance: Decimal) -> World {
        let mut w = World::default();
        w.when(Command::Wallet {
            client_id: CLIENT,
            wallet_id: WALLET,
            command: wallet::Command::OpenWallet {
                currency: Currency::Rub,
            },
        })
        .unwrap();
        w.when(Command::Wallet {
            client_id: CLIENT,
            wallet_id: WALLET,
            command: wallet::Command::TopUp {
                operation_id: Uuid::from_u128(3),
                amount: rub(balance),
                source: "card".into(),
            },
        })
        .unwrap();
        w
    }

    fn when(&mut self, command: Command) -> Result<(), Error> {
        let context = Context::new(datetime!(2026-12-01 10:00 UTC), Actor::client(CLIENT));
        let states: States = command
            .targets()
            .into_iter()
            .filter_map(|t| self.states.get(&t).map(|s| (t, s.clone())))
            .collect();
        for (target, event) in decide(&states, &command, &context)? {
            let state = self
                .states
                .remove(&target)
                .unwrap_or_else(|| State::initial(target));
            self.states
                .insert(target, evolve(state, command.client_id(), &event));
            self.events.push(event);
        }
        Ok(())
    }

    fn wallet(&self) -> wallet::Wallet {
        wallet::wallet_of(&self.states, WALLET)
    }
}

fn on_payment(id: u128, command: payment::Command) -> Command {
    Command::Payment {
        client_id: CLIENT,
        wallet_id: WALLET,
        payment_id: Uuid::from_u128(id),
        command,
    }
}

fn start(id: u128, amount: Decimal, commission: Option<Money>) -> Command {
    on_payment(
        id,
        payment::Command::Start {
            amount: rub(amount),
            service_id: "mosenergosbyt".into(),
            attributes: BTreeMap::new(),
            fraud: FraudVerdict::Approved,
            commission,
            autopayment_run: None,
        },
    )
}

fn execute(id: u128, outcome: Execution) -> Command {
    on_payment(id, payment::Command::Execute { outcome })
}

#[test]
fn given_a_commission_then_the_amount_and_the_commission_are_held_and_captured_together() {
    let mut w = World::with_balance(dec!(1000.00));
    w.when(start(10, dec!(100.00), Some(rub(dec!(2.50)))))
        .unwrap();
    assert_eq!(w.wallet().available(), dec!(897.50));
    assert!(w.events.iter().any(|e| matches!(
        e,
        Event::Wallet(wallet::Event::FundsHeld { amount, .. }) if amount.amount == dec!(102.50)
    )));
    w.when(execute(
        10,
        Execution::Succeeded {
            provider_reference: "p-1".into(),
        },
    ))
    .unwrap();
    assert_eq!(w.wallet().balance, dec!(897.50));
    assert_eq!(w.wallet().available(), dec!(897.50));
}

#[test]
fn given_a_commission_when_the_provider_fails_then_all_of_it_is_released() {
    let mut w = World::with_balance(dec!(1000.00));
    w.when(start(10, dec!(100.00), Some(rub(dec!(2.50)))))
        .unwrap();
    w.when(execute(
        10,
        Execution::Failed {
            reason: "refused".into(),
        },
    ))
    .unwrap();
    assert_eq!(
        (w.wallet().balance, w.wallet().available()),
        (dec!(1000.00), dec!(1000.00))
    );
}

#[test]
fn a_payment_whose_amount_fits_but_not_with_its_commission_is_refused() {
    let mut w = World::with_balance(dec!(100.00));
    let e = w
        .when(start(10, dec!(99.00), Some(rub(dec!(1.01)))))
        .unwrap_err();
    assert_eq!(e.code(), "insufficient_funds");
    w.when(start(11, dec!(99.00), Some(rub(dec!(1.00)))))
        .unwrap();
    assert_eq!(w.wallet().available(), dec!(0.00));
}

#[test]
fn a_commission_in_another_currency_or_below_zero_is_refused() {
    let mut w = World::with_balance(dec!(100.00));
    let usd = Money::new(dec!(1.00), Currency::Usd);
    assert_eq!(
        w.when(start(10, dec!(10.00), Some(usd)))
            .unwrap_err()
            .code(),
        "currency_mismatch"
    );
    assert_eq!(
        w.when(start(10, dec!(10.00), Some(rub(dec!(-1.00)))))
            .unwrap_err()
            .code(),
        "invalid_command"
    );
    // A zero commission is no commission.
    w.when(start(12, dec!(10.00), Some(rub(dec!(0.00)))))
        .unwrap();
    let p = match w.states.get(&AggregateRef::payment(Uuid::from_u128(12))) {
        Some(State::Payment(p)) => p.clone(),
        _ => panic!("no payment"),
    };
    assert_eq!(p.commission, None);
}

#[test]
fn the_provider_is_paid_the_amount_without_the_commission() {
    let mut w = World::with_balance(dec!(1000.00));
    w.when(start(10, dec!(100.00), Some(rub(dec!(2.50)))))
        .unwrap();
    // The payment processor learns the order from the payment's events.
    let at = datetime!(2026-12-01 10:00 UTC);
    let mut state = None;
    let mut calls = Vec::new();
    for event in &w.events {
        let Event::Payment(e) = event else { continue };
        let (next, actions) = step(
            state,
            Input::Event {
                at,
                client_id: CLIENT,
                payment_id: Uuid::from_u128(10),
                event: e.clone(),
            },
            &Policy::default(),
        );
        state = next;
        calls.extend(actions);
    }
    let (_, actions) = step(state, Input::Due { now: at }, &Policy::default());
    calls.extend(actions);
    let called: Vec<Decimal> = calls
        .iter()
        .filter_map(|a| match a {
            Action::CallProvider(order) => Some(order.amount.amount),
            _ => None,
        })
        .collect();
    assert_eq!(called, [dec!(100.00)]);
}
