//! Client groups and their limits (e-wallet spec §2): given/when/then tests and a property
//! test over random operation streams under random limits.

use etr_domain::command::States;
use etr_domain::limits::{
    Catalogue, CurrencyLimits, Group, GroupId, Period, PeriodLimits, Scope, Source,
};
use etr_domain::payment::{self, Execution, FraudVerdict};
use etr_domain::personal::Sealed;
use etr_domain::{
    client, decide, evolve, wallet, Actor, AggregateRef, ClientId, Command, Context, Currency,
    Error, Event, Money, State,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::macros::{date, datetime};
use time::{Date, Duration, OffsetDateTime};
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(1));
const W1: Uuid = Uuid::from_u128(11);

fn rub(a: Decimal) -> Money {
    Money::new(a, Currency::Rub)
}

fn limits(
    wallet_day: Option<Decimal>,
    all_month: Option<Decimal>,
    threshold: Option<Decimal>,
) -> CurrencyLimits {
    CurrencyLimits {
        min_operation: dec!(1.00),
        max_operation: dec!(50000.00),
        max_balance: dec!(100000.00),
        wallet_source: PeriodLimits {
            day: wallet_day,
            week: None,
            month: None,
        },
        all_sources: PeriodLimits {
            day: None,
            week: None,
            month: all_month,
        },
        warning_threshold: threshold,
    }
}

fn catalogue(groups: &[(&str, CurrencyLimits)]) -> Arc<Catalogue> {
    let groups: BTreeMap<GroupId, Group> = groups
        .iter()
        .map(|(id, l)| {
            let id = GroupId::parse(id).unwrap();
            (
                id.clone(),
                Group {
                    id,
                    name: "test group".into(),
                    limits: BTreeMap::from([(Currency::Rub, l.clone())]),
                },
            )
        })
        .collect();
    let default_group = groups.keys().next().unwrap().clone();
    Arc::new(Catalogue {
        groups,
        default_group,
    })
}

struct World {
    states: States,
    now: OffsetDateTime,
    groups: Arc<Catalogue>,
}

impl World {
    fn new(groups: Arc<Catalogue>) -> World {
        let mut w = World {
            states: BTreeMap::new(),
            now: datetime!(2026-11-30 09:00 UTC),
            groups,
        };
        w.when(&wallet_command(wallet::Command::OpenWallet {
            currency: Currency::Rub,
        }))
        .unwrap();
        w
    }

    fn ctx(&self) -> Context {
        Context {
            now: self.now,
            actor: Actor::client(CLIENT),
            groups: self.groups.clone(),
        }
    }

    fn when(&mut self, command: &Command) -> Result<Vec<Event>, Error> {
        let events = decide(&self.states, command, &self.ctx())?;
        for (target, event) in &events {
            let state = self
                .states
                .remove(target)
                .unwrap_or_else(|| State::initial(*target));
            self.states.insert(*target, evolve(state, CLIENT, event));
        }
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }

    fn payment(&self, id: Uuid) -> payment::Payment {
        match self.states.get(&AggregateRef::payment(id)) {
            Some(State::Payment(p)) => p.clone(),
            _ => panic!("no payment {id}"),
        }
    }

    fn payment_opt(&self, id: Uuid) -> Option<payment::Payment> {
        before_payment(&self.states, id)
    }

    fn wallet(&self) -> wallet::Wallet {
        wallet::wallet_of(&self.states, W1)
    }

    fn client(&self) -> client::Client {
        wallet::client_of(&self.states, CLIENT)
    }
}

fn before_payment(states: &States, id: Uuid) -> Option<payment::Payment> {
    match states.get(&AggregateRef::payment(id)) {
        Some(State::Payment(p)) => Some(p.clone()),
        _ => None,
    }
}

fn wallet_command(command: wallet::Command) -> Command {
    Command::Wallet {
        client_id: CLIENT,
        wallet_id: W1,
        command,
    }
}

fn top_up(n: u128, amount: Decimal) -> Command {
    wallet_command(wallet::Command::TopUp {
        operation_id: Uuid::from_u128(500 + n),
        amount: rub(amount),
        source: "card".into(),
    })
}

fn payment(id: Uuid, command: payment::Command) -> Command {
    Command::Payment {
        client_id: CLIENT,
        wallet_id: W1,
        payment_id: id,
        command,
    }
}

fn pay(id: Uuid, amount: Decimal) -> Command {
    payment(
        id,
        payment::Command::Start {
            commission: None,
            amount: rub(amount),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            fraud: FraudVerdict::Approved,
            autopayment_run: None,
        },
    )
}

/// The client's one bound card.
const CARD: Uuid = Uuid::from_u128(77);

fn pay_from_card(id: Uuid, amount: Decimal) -> Command {
    payment(
        id,
        payment::Command::StartFromCard {
            commission: Some(rub(dec!(1.50))),
            amount: rub(amount),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            fraud: FraudVerdict::Approved,
            card_id: CARD,
        },
    )
}

/// Registers the client and binds its card.
fn register_with_card(w: &mut World) {
    w.when(&client_command(client::Command::RegisterClient {
        personal: Sealed {
            key_version: 1,
            nonce: "00".into(),
            ciphertext: "00".into(),
        },
        registered_by: "self".into(),
    }))
    .unwrap();
    w.when(&client_command(client::Command::BindCard {
        card: client::BoundCard {
            card_id: CARD,
            provider: "bank".into(),
            token: "tok-1".into(),
            masked_pan: "411111******1111".into(),
        },
    }))
    .unwrap();
}

fn client_command(command: client::Command) -> Command {
    Command::Client {
        client_id: CLIENT,
        command,
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

fn pid(n: u128) -> Uuid {
    Uuid::from_u128(1_000 + n)
}

#[test]
fn a_payment_above_the_warning_threshold_waits_for_the_otp_and_reserves_only_when_confirmed() {
    let mut w = World::new(catalogue(&[(
        "identified",
        limits(None, None, Some(dec!(15000))),
    )]));
    w.when(&top_up(1, dec!(40000))).unwrap();
    // At the threshold: no confirmation.
    let events = w.when(&pay(pid(1), dec!(15000))).unwrap();
    assert!(names(&events).contains(&"PaymentReserved"));
    // Above it: status 0, nothing held, nothing counted.
    let events = w.when(&pay(pid(2), dec!(15000.01))).unwrap();
    assert_eq!(
        names(&events),
        ["PaymentInitiated", "PaymentConfirmationRequested"]
    );
    let p = w.payment(pid(2));
    assert_eq!(p.status, payment::Status::AwaitingConfirmation);
    assert_eq!(p.status.code(), Some(0));
    assert_eq!(w.wallet().available(), dec!(25000.00));
    // Only an awaiting payment can be confirmed; confirmation reserves.
    assert_eq!(
        w.when(&payment(pid(1), payment::Command::Confirm)),
        Err(Error::ConfirmationNotAwaited(pid(1)))
    );
    let events = w.when(&payment(pid(2), payment::Command::Confirm)).unwrap();
    assert_eq!(
        names(&events),
        [
            "PaymentConfirmed",
            "PaymentLocked",
            "PaymentBalanceChecked",
            "FundsHeld",
            "SpendingCounted",
            "PaymentReserved"
        ]
    );
    assert_eq!(w.wallet().available(), dec!(9999.99));
    // A payment that could not go through is refused before any OTP is sent.
    assert_eq!(
        w.when(&pay(pid(3), dec!(20000))).unwrap_err().code(),
        "insufficient_funds"
    );
    let mut limited = World::new(catalogue(&[(
        "identified",
        limits(Some(dec!(20000)), None, Some(dec!(15000))),
    )]));
    limited.when(&top_up(1, dec!(40000))).unwrap();
    limited.when(&pay(pid(1), dec!(10000))).unwrap();
    assert!(matches!(
        limited.when(&pay(pid(2), dec!(15000.01))),
        Err(Error::SpendLimitExceeded { period: "day", .. })
    ));
}

#[test]
fn an_unconfirmed_payment_cancelled_gives_nothing_back_because_nothing_was_counted() {
    let mut w = World::new(catalogue(&[(
        "identified",
        limits(Some(dec!(30000)), None, Some(dec!(1000))),
    )]));
    w.when(&top_up(1, dec!(40000))).unwrap();
    w.when(&pay(pid(1), dec!(2000))).unwrap();
    let events = w
        .when(&payment(pid(1), payment::Command::ExpireConfirmation))
        .unwrap();
    assert_eq!(names(&events), ["PaymentCancelled"]);
    assert_eq!(
        w.payment(pid(1)).failure_reason.as_deref(),
        Some(payment::CONFIRMATION_EXPIRED)
    );
    assert_eq!(w.payment(pid(1)).status.code(), Some(9));
    assert_eq!(
        w.when(&payment(pid(1), payment::Command::Confirm)),
        Err(Error::ConfirmationNotAwaited(pid(1)))
    );
}

/// The payment process expires an unconfirmed payment from what it has seen, which may be
/// behind: an expiry decided after the client's confirmation is refused, and the reserved
/// payment goes on to execution (e-wallet spec §3.3; seed 000, 6.10).
#[test]
fn an_expiry_decided_after_the_confirmation_is_refused() {
    let mut w = World::new(catalogue(&[(
        "identified",
        limits(None, None, Some(dec!(1000))),
    )]));
    w.when(&top_up(1, dec!(40000))).unwrap();
    w.when(&pay(pid(1), dec!(2000))).unwrap();
    w.when(&payment(pid(1), payment::Command::Confirm)).unwrap();
    assert_eq!(w.payment(pid(1)).status, payment::Status::Reserved);
    let refused = w
        .when(&payment(pid(1), payment::Command::ExpireConfirmation))
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_transition");
    assert_eq!(w.payment(pid(1)).status, payment::Status::Reserved);
    assert_eq!(w.wallet().available(), dec!(38000.00));
    // The client's own cancellation of a payment not yet sent is still possible.
    assert!(w
        .when(&payment(
            pid(1),
            payment::Command::Cancel {
                reason: "changed my mind".into()
            }
        ))
        .is_ok());
}

#[test]
fn the_day_limit_counts_reservations_in_the_clients_local_day_until_released() {
    let mut w = World::new(catalogue(&[(
        "identified",
        limits(Some(dec!(5000)), None, None),
    )]));
    w.when(&top_up(1, dec!(40000))).unwrap();
    // 20:30 UTC on 30 November is 23:30 in Moscow.
    w.now = datetime!(2026-11-30 20:30 UTC);
    w.when(&pay(pid(1), dec!(3000))).unwrap();
    assert!(matches!(
        w.when(&pay(pid(2), dec!(2000.01))),
        Err(Error::SpendLimitExceeded {
            scope: "wallet_source",
            period: "day",
            ..
        })
    ));
    // A failed payment gives its amount back to the day it was counted in.
    w.when(&payment(
        pid(1),
        payment::Command::Execute {
            outcome: Execution::Failed {
                reason: "provider down".into(),
            },
        },
    ))
    .unwrap();
    w.when(&pay(pid(3), dec!(5000))).unwrap();
    // 21:30 UTC is already 1 December in Moscow: a new day.
    w.now = datetime!(2026-11-30 21:30 UTC);
    w.when(&pay(pid(4), dec!(5000))).unwrap();
    // A client in UTC+00:00 is still on 30 November at 21:30 UTC.
    let mut utc = World::new(catalogue(&[(
        "identified",
        limits(Some(dec!(5000)), None, None),
    )]));
    utc.when(&client_command(client::Command::ChangeTimeZone {
        utc_offset: "+00:00".into(),
    }))
    .unwrap();
    utc.when(&top_up(1, dec!(40000))).unwrap();
    utc.now = datetime!(2026-11-30 20:30 UTC);
    utc.when(&pay(pid(1), dec!(5000))).unwrap();
    utc.now = datetime!(2026-11-30 21:30 UTC);
    assert_eq!(
        utc.when(&pay(pid(2), dec!(1))).unwrap_err().code(),
        "spend_limit_exceeded"
    );
}

#[test]
fn moving_a_client_to_another_group_applies_from_the_next_operation() {
    let mut w = World::new(catalogue(&[
        ("identified", limits(None, Some(dec!(100000)), None)),
        ("restricted", limits(None, Some(dec!(10000)), None)),
    ]));
    w.when(&top_up(1, dec!(40000))).unwrap();
    w.when(&pay(pid(1), dec!(9000))).unwrap();
    assert_eq!(
        w.when(&client_command(client::Command::ChangeGroup {
            group: GroupId::parse("nobody").unwrap(),
            reason: "r".into(),
        }))
        .unwrap_err()
        .code(),
        "invalid_command"
    );
    let events = w
        .when(&client_command(client::Command::ChangeGroup {
            group: GroupId::parse("restricted").unwrap(),
            reason: "suspicious turnover".into(),
        }))
        .unwrap();
    assert_eq!(names(&events), ["ClientGroupChanged"]);
    // The payment already reserved stays; the next one meets the new month limit.
    assert_eq!(w.payment(pid(1)).status.code(), Some(3));
    assert!(matches!(
        w.when(&pay(pid(2), dec!(1000.01))),
        Err(Error::SpendLimitExceeded {
            scope: "all_sources",
            period: "month",
            ..
        })
    ));
    w.when(&pay(pid(3), dec!(1000))).unwrap();
    assert_eq!(
        w.client().spending.used(
            Currency::Rub,
            Scope::AllSources,
            Period::Month,
            date!(2026 - 11 - 30)
        ),
        dec!(10000)
    );
}

#[test]
fn a_blocked_client_cannot_pay_or_top_up_and_a_currency_outside_the_group_is_refused() {
    let mut w = World::new(catalogue(&[("identified", limits(None, None, None))]));
    w.when(&top_up(1, dec!(100))).unwrap();
    let sealed = Sealed {
        key_version: 1,
        nonce: "00".into(),
        ciphertext: "00".into(),
    };
    w.when(&client_command(client::Command::RegisterClient {
        personal: sealed,
        registered_by: "self".into(),
    }))
    .unwrap();
    w.when(&client_command(client::Command::BlockClient {
        reason: "fraud suspicion".into(),
    }))
    .unwrap();
    assert_eq!(
        w.when(&pay(pid(1), dec!(10))),
        Err(Error::ClientBlocked(CLIENT.0))
    );
    assert_eq!(
        w.when(&top_up(2, dec!(10))),
        Err(Error::ClientBlocked(CLIENT.0))
    );
    w.when(&client_command(client::Command::UnblockClient))
        .unwrap();
    w.when(&pay(pid(1), dec!(10))).unwrap();
    let usd = Command::Wallet {
        client_id: CLIENT,
        wallet_id: Uuid::from_u128(12),
        command: wallet::Command::OpenWallet {
            currency: Currency::Usd,
        },
    };
    assert_eq!(w.when(&usd).unwrap_err().code(), "currency_not_allowed");
}

#[test]
fn a_card_payment_is_authorised_at_the_bank_counted_against_all_sources_and_captured() {
    // Given a registered client with a bound card, an empty wallet and an all-sources month
    // limit of 1,000.00 (the wallet-source day limit of 100.00 does not apply to a card).
    let mut w = World::new(catalogue(&[(
        "identified",
        limits(Some(dec!(100)), Some(dec!(1000)), None),
    )]));
    register_with_card(&mut w);
    // When the client pays 600.00 (+1.50 commission) from the card…
    let started = w.when(&pay_from_card(pid(1), dec!(600))).unwrap();
    // …it is counted against the limits and waits for the bank at status 2; nothing is held.
    assert_eq!(
        names(&started),
        [
            "PaymentInitiated",
            "PaymentLocked",
            "PaymentBalanceChecked",
            "SpendingCounted",
            "CardAuthorisationRequested"
        ]
    );
    assert!(
        started.contains(&Event::Client(client::Event::SpendingCounted {
            operation_id: pid(1),
            amount: rub(dec!(601.50)),
            source: Source::Card,
            day: date!(2026 - 11 - 30),
        }))
    );
    assert_eq!(w.payment(pid(1)).status.code(), Some(2));
    assert_eq!(w.wallet().held(), Decimal::ZERO);
    // A second 600.00 would pass the all-sources month limit.
    assert_eq!(
        w.when(&pay_from_card(pid(2), dec!(600)))
            .unwrap_err()
            .code(),
        "spend_limit_exceeded"
    );
    // It cannot be cancelled once the bank is asked.
    assert!(w
        .when(&payment(
            pid(1),
            payment::Command::Cancel { reason: "r".into() }
        ))
        .is_err());
    // When the bank authorises it, it is reserved (3); executed, it waits for the capture (5).
    let authorised = w
        .when(&payment(
            pid(1),
            payment::Command::RecordCardAuthorisation {
                outcome: Execution::Succeeded {
                    provider_reference: "auth-1".into(),
                },
            },
        ))
        .unwrap();
    assert_eq!(names(&authorised), ["CardAuthorised", "PaymentReserved"]);
    let executed = w
        .when(&payment(
            pid(1),
            payment::Command::Execute {
                outcome: Execution::Succeeded {
                    provider_reference: "sim-1".into(),
                },
            },
        ))
        .unwrap();
    assert_eq!(
        names(&executed),
        ["PaymentExecutionStarted", "PaymentExecuted"]
    );
    assert_eq!(w.payment(pid(1)).status.code(), Some(5));
    let settled = w
        .when(&payment(pid(1), payment::Command::RecordCardSettlement))
        .unwrap();
    assert_eq!(
        names(&settled),
        ["CardAuthorisationCaptured", "PaymentSucceeded"]
    );
    // Then the wallet never moved, and the card payment cannot be cancelled afterwards:
    // its source is a card (spec §3.4, check 2).
    assert_eq!(w.wallet().balance, Decimal::ZERO);
    let request = w
        .when(&payment(
            pid(1),
            payment::Command::RequestCancellation {
                request_id: Uuid::from_u128(9),
                reason: "changed my mind".into(),
            },
        ))
        .unwrap();
    assert!(matches!(
        &request[1],
        Event::Payment(payment::Event::CancellationRejected { reason, .. }) if reason.contains("bank card")
    ));
}

#[test]
fn a_declined_card_or_a_failed_execution_gives_the_amount_back_to_the_limits() {
    let mut w = World::new(catalogue(&[(
        "identified",
        limits(None, Some(dec!(1000)), None),
    )]));
    register_with_card(&mut w);
    // Declined by the bank: 2 → 8, the amount no longer counts.
    w.when(&pay_from_card(pid(1), dec!(900))).unwrap();
    let declined = w
        .when(&payment(
            pid(1),
            payment::Command::RecordCardAuthorisation {
                outcome: Execution::Failed {
                    reason: "insufficient_funds".into(),
                },
            },
        ))
        .unwrap();
    assert_eq!(names(&declined), ["SpendingReleased", "PaymentFailed"]);
    assert_eq!(w.payment(pid(1)).status.code(), Some(8));
    // Authorised but failed at the provider: 7 until the bank releases, then 8.
    w.when(&pay_from_card(pid(2), dec!(900))).unwrap();
    w.when(&payment(
        pid(2),
        payment::Command::RecordCardAuthorisation {
            outcome: Execution::Succeeded {
                provider_reference: "auth-2".into(),
            },
        },
    ))
    .unwrap();
    w.when(&payment(
        pid(2),
        payment::Command::Execute {
            outcome: Execution::Failed {
                reason: "provider down".into(),
            },
        },
    ))
    .unwrap();
    assert_eq!(w.payment(pid(2)).status.code(), Some(7));
    // Settlement is recorded once only.
    let released = w
        .when(&payment(pid(2), payment::Command::RecordCardSettlement))
        .unwrap();
    assert_eq!(
        names(&released),
        [
            "CardAuthorisationReleased",
            "SpendingReleased",
            "PaymentFailed"
        ]
    );
    assert!(w
        .when(&payment(pid(2), payment::Command::RecordCardSettlement))
        .is_err());
    // Then the whole limit is free again; a card the client has not bound is not found.
    w.when(&pay_from_card(pid(3), dec!(900))).unwrap();
    let unknown = payment(
        pid(4),
        payment::Command::StartFromCard {
            commission: None,
            amount: rub(dec!(10)),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            fraud: FraudVerdict::Approved,
            card_id: Uuid::from_u128(78),
        },
    );
    assert_eq!(
        w.when(&unknown),
        Err(Error::CardNotFound(Uuid::from_u128(78)))
    );
}

#[test]
fn a_card_payment_above_the_warning_threshold_needs_the_otp_first() {
    let mut w = World::new(catalogue(&[(
        "identified",
        limits(None, None, Some(dec!(500))),
    )]));
    register_with_card(&mut w);
    let started = w.when(&pay_from_card(pid(1), dec!(700))).unwrap();
    assert_eq!(
        names(&started),
        ["PaymentInitiated", "PaymentConfirmationRequested"]
    );
    let confirmed = w.when(&payment(pid(1), payment::Command::Confirm)).unwrap();
    assert_eq!(
        names(&confirmed),
        [
            "PaymentConfirmed",
            "PaymentLocked",
            "PaymentBalanceChecked",
            "SpendingCounted",
            "CardAuthorisationRequested"
        ]
    );
}

// ---- properties ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    TopUp(i64),
    Pay(i64),
    Confirm(usize),
    Settle(usize, bool),
    Cancel(usize),
    MoveTo(usize),
    Advance(i64),
    RequestCancellation(usize),
    RecordCancellation(usize, bool),
    PayFromCard(i64),
    Authorise(usize, bool),
    SettleCard(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (100..3_000_000_i64).prop_map(Op::TopUp),
        4 => (100..1_500_000_i64).prop_map(Op::Pay),
        1 => (0..10usize).prop_map(Op::Confirm),
        2 => (0..10usize, any::<bool>()).prop_map(|(k, ok)| Op::Settle(k, ok)),
        1 => (0..10usize).prop_map(Op::Cancel),
        1 => (0..3usize).prop_map(Op::MoveTo),
        2 => (1..60i64).prop_map(Op::Advance),
        1 => (0..10usize).prop_map(Op::RequestCancellation),
        1 => (0..10usize, any::<bool>()).prop_map(|(k, ok)| Op::RecordCancellation(k, ok)),
        2 => (100..1_500_000_i64).prop_map(Op::PayFromCard),
        2 => (0..10usize, any::<bool>()).prop_map(|(k, ok)| Op::Authorise(k, ok)),
        1 => (0..10usize).prop_map(Op::SettleCard),
    ]
}

/// Random limits in kopecks: each limit present or not, periods ordered, wallet ≤ all.
fn random_limits() -> impl Strategy<Value = CurrencyLimits> {
    (
        prop::option::of(100_000..2_000_000_i64),
        prop::option::of(0..3i64),
        prop::option::of(0..3i64),
        prop::option::of(0..3i64),
        prop::option::of(10_000..1_000_000_i64),
        5_000_000..20_000_000_i64,
    )
        .prop_map(|(day, week_x, month_x, all_x, threshold, max_balance)| {
            let k = |c: i64| Decimal::new(c, 2);
            let wallet_source = PeriodLimits {
                day: day.map(k),
                week: day.zip(week_x).map(|(d, x)| k(d * (x + 1))),
                month: day.zip(month_x).map(|(d, x)| k(d * (x + 4))),
            };
            let all_sources = PeriodLimits {
                day: None,
                week: None,
                month: all_x.map(|x| k(3_000_000 * (x + 1))),
            };
            CurrencyLimits {
                min_operation: dec!(1.00),
                max_operation: dec!(15000.00),
                max_balance: k(max_balance),
                wallet_source,
                all_sources,
                warning_threshold: threshold.map(k),
            }
        })
        .prop_filter("consistent", |l| l.validate(Currency::Rub).is_ok())
}

/// What the model counts: each payment's amount, the local day it counts against and its
/// source, from its reservation until its release; a scope's use in a period.
fn used_in(
    counted: &BTreeMap<Uuid, (Decimal, Date, Source)>,
    scope: Scope,
    period: Period,
    day: Date,
) -> Decimal {
    let start = period.start(day);
    counted
        .values()
        .filter(|(_, d, source)| {
            period.start(*d) == start && (scope == Scope::AllSources || *source == Source::Wallet)
        })
        .map(|(a, _, _)| *a)
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Random operation streams under random group limits, with group moves, time moving on
    /// and cancellation requests answered at random: no accepted reservation ever takes a
    /// period's spending above the limit of the client's group at that moment, the balance
    /// never exceeds the group's maximum when topped up, available never goes negative, no
    /// request is made while another is pending, only a successful payment is refunded and at
    /// most once, and money is conserved (balance = top-ups − captured payments + refunds). A
    /// refused command changes nothing.
    #[test]
    fn limits_are_never_exceeded_and_money_is_conserved(
        groups in prop::collection::vec(random_limits(), 3),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let names = ["g0", "g1", "g2"];
        let cat = catalogue(&[(names[0], groups[0].clone()), (names[1], groups[1].clone()), (names[2], groups[2].clone())]);
        let mut w = World::new(cat);
        register_with_card(&mut w);
        let mut group = 0usize;
        let mut payments: Vec<Uuid> = Vec::new();
        let mut counted: BTreeMap<Uuid, (Decimal, Date, Source)> = BTreeMap::new();
        let mut topped = Decimal::ZERO;
        let mut captured = Decimal::ZERO;
        let mut refunded = Decimal::ZERO;
        let mut refunds = std::collections::BTreeSet::new();
        let offset = etr_domain::limits::MOSCOW;
        for (i, op) in ops.into_iter().enumerate() {
            let cents = |c: i64| Decimal::new(c, 2);
            let command = match op {
                Op::TopUp(c) => top_up(i as u128, cents(c)),
                Op::Pay(c) => {
                    let id = pid(i as u128);
                    payments.push(id);
                    pay(id, cents(c))
                }
                Op::Confirm(k) => match payments.get(k) { Some(id) => payment(*id, payment::Command::Confirm), None => continue },
                Op::Settle(k, ok) => match payments.get(k) {
                    Some(id) => payment(*id, payment::Command::Execute { outcome: if ok { Execution::Succeeded { provider_reference: "r".into() } } else { Execution::Failed { reason: "no".into() } } }),
                    None => continue,
                },
                Op::Cancel(k) => match payments.get(k) { Some(id) => payment(*id, payment::Command::Cancel { reason: "r".into() }), None => continue },
                Op::MoveTo(g) => client_command(client::Command::ChangeGroup { group: GroupId::parse(names[g]).unwrap(), reason: "r".into() }),
                Op::Advance(hours) => { w.now += Duration::hours(hours); continue; }
                Op::RequestCancellation(k) => match payments.get(k) {
                    Some(id) => payment(*id, payment::Command::RequestCancellation { request_id: Uuid::from_u128(9_000 + i as u128), reason: "r".into() }),
                    None => continue,
                },
                Op::PayFromCard(c) => {
                    let id = pid(i as u128);
                    payments.push(id);
                    pay_from_card(id, cents(c))
                }
                Op::Authorise(k, ok) => match payments.get(k) {
                    Some(id) => payment(*id, payment::Command::RecordCardAuthorisation { outcome: if ok { Execution::Succeeded { provider_reference: "auth".into() } } else { Execution::Failed { reason: "declined".into() } } }),
                    None => continue,
                },
                Op::SettleCard(k) => match payments.get(k) { Some(id) => payment(*id, payment::Command::RecordCardSettlement), None => continue },
                Op::RecordCancellation(k, ok) => {
                    let Some(id) = payments.get(k) else { continue };
                    let Some(request) = w.payment_opt(*id).and_then(|p| p.cancellations.last().cloned()) else { continue };
                    payment(*id, payment::Command::RecordCancellation { request_id: request.request_id, outcome: if ok { Execution::Succeeded { provider_reference: "rev".into() } } else { Execution::Failed { reason: "refused".into() } } })
                }
            };
            let limits = groups[group].clone();
            let before = w.states.clone();
            match w.when(&command) {
                Err(_) => prop_assert_eq!(&w.states, &before, "a refused command changes nothing"),
                Ok(events) => for e in &events {
                    match e {
                        Event::Client(client::Event::ClientGroupChanged { group: g, .. }) => {
                            group = names.iter().position(|n| *n == g.as_str()).unwrap();
                        }
                        Event::Client(client::Event::SpendingCounted { operation_id, amount, source, day }) => {
                            let from_card = w.payment(*operation_id).card.is_some();
                            prop_assert_eq!(*source == Source::Card, from_card);
                            prop_assert_eq!(*day, etr_domain::limits::local_day(w.now, offset));
                            counted.insert(*operation_id, (amount.amount, *day, *source));
                            for period in Period::ALL {
                                // A card payment counts against the all-sources limits only.
                                for (scope, l) in [(Scope::WalletSource, &limits.wallet_source), (Scope::AllSources, &limits.all_sources)] {
                                    if scope == Scope::WalletSource && *source == Source::Card {
                                        continue;
                                    }
                                    let used = used_in(&counted, scope, period, *day);
                                    if let Some(limit) = l.get(period) {
                                        prop_assert!(used <= limit, "{:?} per {:?}: {} counted above the limit {}", scope, period, used, limit);
                                    }
                                }
                            }
                        }
                        Event::Payment(payment::Event::PaymentSucceeded | payment::Event::PaymentFailed { .. } | payment::Event::PaymentCancelled { .. }) => {
                            // A card payment ends only after the bank settled or declined it.
                            let Command::Payment { payment_id, .. } = &command else { continue };
                            let p = w.payment(*payment_id);
                            if p.card.is_some() && p.authorisation_id.is_some() {
                                prop_assert!(events.iter().any(|e| matches!(e, Event::Payment(payment::Event::CardAuthorisationCaptured | payment::Event::CardAuthorisationReleased))), "an authorised card payment ended unsettled");
                            }
                        }
                        Event::Client(client::Event::SpendingReleased { operation_id, .. }) => {
                            prop_assert!(counted.remove(operation_id).is_some(), "released what was never counted");
                        }
                        Event::Payment(payment::Event::PaymentConfirmationRequested { .. }) => {
                            prop_assert!(limits.warning_threshold.is_some());
                        }
                        Event::Payment(payment::Event::PaymentInitiated { amount, .. }) => {
                            let needs = limits.warning_threshold.is_some_and(|t| amount.amount > t);
                            let asked = events.iter().any(|e| matches!(e, Event::Payment(payment::Event::PaymentConfirmationRequested { .. })));
                            prop_assert_eq!(needs, asked, "confirmation asked exactly above the threshold");
                        }
                        Event::Wallet(wallet::Event::WalletToppedUp { amount, .. }) => {
                            topped += amount.amount;
                            prop_assert!(w.wallet().balance <= limits.max_balance);
                        }
                        Event::Wallet(wallet::Event::HoldCaptured { amount, .. }) => captured += amount.amount,
                        Event::Wallet(wallet::Event::PaymentRefunded { payment_id, amount, .. }) => {
                            refunded += amount.amount;
                            prop_assert_eq!(w.payment(*payment_id).status, payment::Status::Succeeded, "only a successful payment is refunded");
                            prop_assert!(refunds.insert(*payment_id), "a payment refunded twice");
                        }
                        Event::Payment(payment::Event::CancellationRequested { .. }) => {
                            let pending = match &command { Command::Payment { payment_id, .. } => before_payment(&before, *payment_id).is_some_and(|p| p.cancellations.iter().any(|c| c.status.is_pending())), _ => false };
                            prop_assert!(!pending, "a request was made while another was pending");
                        }
                        _ => {}
                    }
                },
            }
            let wallet = w.wallet();
            prop_assert!(wallet.available() >= Decimal::ZERO, "available went negative: {:?}", wallet);
            prop_assert_eq!(wallet.balance, topped - captured + refunded, "money is conserved");
            // The aggregate's own ledger agrees with the model for today.
            let today = etr_domain::limits::local_day(w.now, offset);
            for period in Period::ALL {
                for scope in [Scope::WalletSource, Scope::AllSources] {
                    prop_assert_eq!(
                        w.client().spending.used(Currency::Rub, scope, period, today),
                        used_in(&counted, scope, period, today)
                    );
                }
            }
        }
    }
}
