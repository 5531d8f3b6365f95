//! Merchant orders and the checkout process (e-wallet spec §7.2): an order is paid exactly
//! once — by the buyer's transfer credited to the merchant's settlement wallet, or by a card
//! authorisation — and the checkout process captures a card and calls the merchant back with
//! growing pauses until it acknowledges.

use etr_domain::command::States;
use etr_domain::merchant_order::{
    self as order, order_id, step, Action, Input, Notice, OrderNumber, Policy, Stage, Status,
    WebUrl,
};
use etr_domain::{
    decide, evolve, wallet, Actor, AggregateRef, ClientId, Command, Context, Currency, Error,
    Event, Money, State,
};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const MERCHANT: ClientId = ClientId(Uuid::from_u128(900));
const SETTLEMENT: Uuid = Uuid::from_u128(901);
const BUYER: ClientId = ClientId(Uuid::from_u128(1));

fn rub(a: Decimal) -> Money {
    Money::new(a, Currency::Rub)
}

struct World {
    states: States,
    now: OffsetDateTime,
}

impl World {
    /// A merchant with its settlement wallet.
    fn new() -> World {
        let mut w = World {
            states: BTreeMap::new(),
            now: datetime!(2026-12-01 10:00 UTC),
        };
        w.when(&Command::Wallet {
            client_id: MERCHANT,
            wallet_id: SETTLEMENT,
            command: wallet::Command::OpenWallet {
                currency: Currency::Rub,
            },
        })
        .unwrap();
        w
    }

    fn when(&mut self, command: &Command) -> Result<Vec<Event>, Error> {
        let context = Context::new(self.now, Actor::client(command.client_id()));
        let states: States = command
            .targets()
            .into_iter()
            .filter_map(|t| self.states.get(&t).map(|s| (t, s.clone())))
            .collect();
        let events = decide(&states, command, &context)?;
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

    fn order(&self, id: Uuid) -> order::Order {
        order::order_of(&self.states, id)
    }

    fn settlement_balance(&self) -> Decimal {
        wallet::wallet_of(&self.states, SETTLEMENT).balance
    }
}

fn create(number: &str, amount: Decimal) -> (Uuid, Command) {
    let number = OrderNumber::parse(number).unwrap();
    let id = order_id(MERCHANT, &number);
    (
        id,
        Command::MerchantOrder {
            merchant_id: MERCHANT,
            order_id: id,
            command: order::Command::Create {
                number,
                amount: rub(amount),
                description: "Наушники".into(),
                return_url: WebUrl::parse("https://shop.example/return").unwrap(),
                lifetime_seconds: Some(3600),
            },
        },
    )
}

/// The credit step of a buyer's transfer `transfer` that names the order.
fn credit(order: Uuid, transfer: u128, amount: Decimal) -> Command {
    Command::Wallet {
        client_id: MERCHANT,
        wallet_id: SETTLEMENT,
        command: wallet::Command::CreditTransfer {
            transfer_id: Uuid::from_u128(transfer),
            from_client_id: BUYER,
            from_wallet_id: Uuid::from_u128(101),
            amount: rub(amount),
            order_id: Some(order),
        },
    }
}

fn on_order(order: Uuid, command: order::Command) -> Command {
    Command::MerchantOrder {
        merchant_id: MERCHANT,
        order_id: order,
        command,
    }
}

fn card_payment(n: u128, amount: Decimal) -> order::Command {
    order::Command::RecordCardPayment {
        payment_id: Uuid::from_u128(n),
        authorisation_id: format!("auth-{n}"),
        masked_pan: "411111******1111".into(),
        amount: rub(amount),
    }
}

#[test]
fn given_an_order_when_the_buyers_transfer_is_credited_then_the_order_is_paid_once() {
    let mut w = World::new();
    let (id, create) = create("A-1", dec!(1299.00));
    w.when(&create).unwrap();
    assert_eq!(w.order(id).status, Status::AwaitingPayment);

    let events = w.when(&credit(id, 7, dec!(1299.00))).unwrap();
    assert_eq!(
        events.iter().map(Event::name).collect::<Vec<_>>(),
        ["TransferCredited", "MerchantOrderPaid"]
    );
    assert_eq!(w.order(id).status, Status::Paid);
    assert_eq!(w.order(id).payment.unwrap().payer_client_id, Some(BUYER));
    assert_eq!(w.settlement_balance(), dec!(1299.00));

    // A second buyer's transfer for the same order is refused: the transfer process refunds
    // it, and the settlement wallet takes nothing.
    let e = w.when(&credit(id, 8, dec!(1299.00))).unwrap_err();
    assert_eq!(e.code(), "order_not_payable");
    // So is a card payment recorded after it (its authorisation is then released).
    let e = w
        .when(&on_order(id, card_payment(9, dec!(1299.00))))
        .unwrap_err();
    assert_eq!(e.code(), "order_not_payable");
    assert_eq!(w.settlement_balance(), dec!(1299.00));
}

#[test]
fn given_an_order_when_paid_with_another_amount_or_after_expiry_then_it_is_refused() {
    let mut w = World::new();
    let (id, create) = create("A-2", dec!(500.00));
    w.when(&create).unwrap();
    assert_eq!(
        w.when(&credit(id, 7, dec!(499.99))).unwrap_err().code(),
        "invalid_command"
    );
    w.now += Duration::hours(1);
    assert_eq!(
        w.when(&credit(id, 7, dec!(500.00))).unwrap_err().code(),
        "order_expired"
    );
    assert_eq!(w.settlement_balance(), dec!(0));
    // An order nobody created cannot be paid.
    assert_eq!(
        w.when(&credit(Uuid::from_u128(5), 7, dec!(500.00)))
            .unwrap_err()
            .code(),
        "order_not_found"
    );
}

#[test]
fn given_an_order_number_when_created_again_then_it_is_refused() {
    let mut w = World::new();
    let (id, command) = create("A-3", dec!(10.00));
    w.when(&command).unwrap();
    assert_eq!(w.when(&command).unwrap_err().code(), "order_already_exists");
    // The id is the number's: another id for the same number is refused.
    let Command::MerchantOrder { command: c, .. } = command else {
        unreachable!()
    };
    let other = Command::MerchantOrder {
        merchant_id: MERCHANT,
        order_id: Uuid::from_u128(77),
        command: c,
    };
    assert_eq!(w.when(&other).unwrap_err().code(), "invalid_command");
    assert_eq!(w.order(id).number.unwrap().as_str(), "A-3");
    for bad in ["", "a b", "№1", &"x".repeat(65)] {
        assert!(OrderNumber::parse(bad).is_err(), "{bad}");
    }
    for bad in [
        "ftp://x",
        "/relative",
        "https://user:pw@shop.example/",
        "not a url",
    ] {
        assert!(WebUrl::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn given_a_card_payment_then_it_is_captured_once_and_the_acknowledgement_recorded() {
    let mut w = World::new();
    let (id, create) = create("A-4", dec!(250.00));
    w.when(&create).unwrap();
    // Nothing to capture or acknowledge before the payment.
    assert!(w
        .when(&on_order(id, order::Command::RecordCardCapture))
        .is_err());
    assert!(w
        .when(&on_order(
            id,
            order::Command::RecordMerchantNotified { attempts: 1 }
        ))
        .is_err());
    w.when(&on_order(id, card_payment(3, dec!(250.00))))
        .unwrap();
    let paid = w.order(id).payment.unwrap();
    assert!(!paid.captured);
    assert_eq!(paid.masked_pan.as_deref(), Some("411111******1111"));
    w.when(&on_order(id, order::Command::RecordCardCapture))
        .unwrap();
    assert!(w.order(id).payment.unwrap().captured);
    assert!(w
        .when(&on_order(id, order::Command::RecordCardCapture))
        .is_err());
    w.when(&on_order(
        id,
        order::Command::RecordMerchantNotified { attempts: 3 },
    ))
    .unwrap();
    assert_eq!(w.order(id).status, Status::Notified);
    assert_eq!(w.order(id).notified_after_attempts, Some(3));
    // A card payment never touches the settlement wallet: the bank settles it.
    assert_eq!(w.settlement_balance(), dec!(0));
    let _ = AggregateRef::merchant_order(id);
}

fn wake_of(actions: &[Action]) -> Option<OffsetDateTime> {
    actions.iter().find_map(|a| match a {
        Action::WakeAt(t) => *t,
        _ => None,
    })
}

#[test]
fn the_checkout_process_captures_then_calls_back_with_doubling_pauses_until_acknowledged() {
    let policy = Policy {
        attempt_timeout: Duration::seconds(10),
        first_backoff: Duration::seconds(1),
        max_backoff: Duration::seconds(8),
    };
    let t0 = datetime!(2026-12-01 10:00 UTC);
    let notice = Notice {
        merchant_id: MERCHANT,
        order_id: Uuid::from_u128(1),
        authorisation_id: Some("auth-1".into()),
    };
    let (s, a) = step(
        None,
        Input::Paid {
            at: t0,
            notice: notice.clone(),
        },
        &policy,
    );
    assert_eq!(wake_of(&a), Some(t0));
    let (s, a) = step(s, Input::Due { now: t0 }, &policy);
    assert!(a.contains(&Action::Capture {
        authorisation_id: "auth-1".into()
    }));
    // A failed capture is retried after a pause.
    let (s, a) = step(s, Input::Failed { now: t0 }, &policy);
    assert_eq!(wake_of(&a), Some(t0 + Duration::seconds(1)));
    let (s, _) = step(s, Input::Due { now: t0 }, &policy);
    let (s, a) = step(s, Input::CaptureSucceeded { now: t0 }, &policy);
    assert!(matches!(a[1], Action::RecordCapture { .. }));
    let (mut s, _) = step(s, Input::Captured { at: t0 }, &policy);
    // The merchant does not acknowledge five times: pauses 1, 2, 4, 8, 8 seconds.
    let mut pauses = Vec::new();
    for attempt in 1..=5 {
        let (next, a) = step(s, Input::Due { now: t0 }, &policy);
        assert!(a.contains(&Action::Callback {
            notice: notice.clone(),
            attempt
        }));
        let (next, a) = step(next, Input::Failed { now: t0 }, &policy);
        pauses.push((wake_of(&a).unwrap() - t0).whole_seconds());
        s = next;
    }
    assert_eq!(pauses, [1, 2, 4, 8, 8]);
    let (s, _) = step(s, Input::Due { now: t0 }, &policy);
    let (s, a) = step(s, Input::Acknowledged { now: t0 }, &policy);
    assert!(a.contains(&Action::RecordNotified {
        notice: notice.clone(),
        attempts: 6
    }));
    // A late failure of an acknowledged call changes nothing.
    let (s, a) = step(s, Input::Failed { now: t0 }, &policy);
    assert!(a.is_empty());
    let (s, a) = step(s, Input::Notified, &policy);
    assert_eq!(s, Some(Stage::Done));
    assert_eq!(a, [Action::WakeAt(None)]);
    // A repeated payment event does not start the process again.
    let (s, a) = step(s, Input::Paid { at: t0, notice }, &policy);
    assert_eq!((s, a), (Some(Stage::Done), vec![]));
}
