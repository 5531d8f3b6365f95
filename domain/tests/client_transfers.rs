//! Transfers to another client's wallet (e-wallet spec §3.3): the payment lifecycle on the
//! sender's partition, the credit on the recipient's, and the refund when the credit is
//! refused. Given/when/then tests and a property test over random streams of transfers whose
//! process steps run in random order, repeated or not at all.

use etr_domain::command::States;
use etr_domain::limits::{Catalogue, CurrencyLimits, Group, GroupId, PeriodLimits};
use etr_domain::payment::{self, Execution, FraudVerdict, Recipient};
use etr_domain::{
    decide, evolve, wallet, Actor, AggregateRef, ClientId, Command, Context, Currency, Error,
    Event, Money, State,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

fn client(n: u128) -> ClientId {
    ClientId(Uuid::from_u128(n))
}

/// Client `n`'s one wallet.
fn wallet_of(n: u128) -> Uuid {
    Uuid::from_u128(100 + n)
}

fn rub(a: Decimal) -> Money {
    Money::new(a, Currency::Rub)
}

fn catalogue(max_balance: Decimal, threshold: Option<Decimal>) -> Arc<Catalogue> {
    let limits = CurrencyLimits {
        min_operation: dec!(1.00),
        max_operation: dec!(50000.00),
        max_balance,
        wallet_source: PeriodLimits::default(),
        all_sources: PeriodLimits::default(),
        warning_threshold: threshold,
    };
    let id = GroupId::parse("g").unwrap();
    Arc::new(Catalogue {
        groups: BTreeMap::from([(
            id.clone(),
            Group {
                id: id.clone(),
                name: "test group".into(),
                limits: BTreeMap::from([(Currency::Rub, limits)]),
            },
        )]),
        default_group: id,
    })
}

/// Several clients' aggregates, each command decided against them as its partition's writer
/// would (only the targets of the command are read).
struct World {
    states: States,
    now: OffsetDateTime,
    groups: Arc<Catalogue>,
}

impl World {
    fn new(groups: Arc<Catalogue>, clients: u128) -> World {
        let mut w = World {
            states: BTreeMap::new(),
            now: datetime!(2026-12-01 10:00 UTC),
            groups,
        };
        for n in 1..=clients {
            w.when(&Command::Wallet {
                client_id: client(n),
                wallet_id: wallet_of(n),
                command: wallet::Command::OpenWallet {
                    currency: Currency::Rub,
                },
            })
            .unwrap();
        }
        w
    }

    fn when(&mut self, command: &Command) -> Result<Vec<Event>, Error> {
        let context = Context {
            now: self.now,
            actor: Actor::client(command.client_id()),
            groups: self.groups.clone(),
        };
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

    fn wallet(&self, n: u128) -> wallet::Wallet {
        wallet::wallet_of(&self.states, wallet_of(n))
    }

    fn payment(&self, id: Uuid) -> payment::Payment {
        match self.states.get(&AggregateRef::payment(id)) {
            Some(State::Payment(p)) => p.clone(),
            _ => payment::Payment::default(),
        }
    }
}

fn top_up(n: u128, op: u128, amount: Decimal) -> Command {
    Command::Wallet {
        client_id: client(n),
        wallet_id: wallet_of(n),
        command: wallet::Command::TopUp {
            operation_id: Uuid::from_u128(op),
            amount: rub(amount),
            source: "card".into(),
        },
    }
}

fn on_payment(from: u128, id: Uuid, command: payment::Command) -> Command {
    Command::Payment {
        client_id: client(from),
        wallet_id: wallet_of(from),
        payment_id: id,
        command,
    }
}

fn start_transfer(from: u128, id: Uuid, to: Recipient, amount: Decimal) -> Command {
    on_payment(
        from,
        id,
        payment::Command::StartTransfer {
            amount: rub(amount),
            recipient: to,
            attributes: BTreeMap::new(),
            fraud: FraudVerdict::Approved,
        },
    )
}

fn to(n: u128) -> Recipient {
    Recipient {
        client_id: client(n),
        wallet_id: wallet_of(n),
        order_id: None,
    }
}

/// The credit the transfer process issues on the recipient's partition.
fn credit(from: u128, id: Uuid, to: Recipient, amount: Decimal) -> Command {
    Command::Wallet {
        client_id: to.client_id,
        wallet_id: to.wallet_id,
        command: wallet::Command::CreditTransfer {
            transfer_id: id,
            from_client_id: client(from),
            from_wallet_id: wallet_of(from),
            amount: rub(amount),
            order_id: None,
        },
    }
}

fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(Event::name).collect()
}

#[test]
fn a_transfer_is_debited_then_credited_to_the_other_clients_wallet() {
    // Given two clients, the sender with 1,000.00.
    let mut w = World::new(catalogue(dec!(100000.00), None), 2);
    w.when(&top_up(1, 1, dec!(1000.00))).unwrap();
    let id = Uuid::from_u128(7);
    // When the sender transfers 250.00 to the other client's wallet…
    let started = w.when(&start_transfer(1, id, to(2), dec!(250.00))).unwrap();
    assert_eq!(
        names(&started),
        [
            "PaymentInitiated",
            "PaymentLocked",
            "PaymentBalanceChecked",
            "FundsHeld",
            "SpendingCounted",
            "PaymentReserved"
        ]
    );
    assert_eq!(w.payment(id).service_id, payment::TRANSFER_SERVICE);
    // … a transfer cannot succeed before it is debited …
    let early = on_payment(
        1,
        id,
        payment::Command::Execute {
            outcome: Execution::Succeeded {
                provider_reference: "x".into(),
            },
        },
    );
    assert_eq!(w.when(&early).unwrap_err().code(), "invalid_transition");
    // … the debit takes it off the sender's balance (in transit) …
    let debited = w
        .when(&on_payment(1, id, payment::Command::DebitTransfer))
        .unwrap();
    assert_eq!(
        names(&debited),
        ["PaymentExecutionStarted", "TransferDebited"]
    );
    assert_eq!(w.wallet(1).balance, dec!(750.00));
    assert_eq!(w.wallet(1).held(), dec!(0.00));
    assert_eq!(w.payment(id).status.code(), Some(4));
    // … the recipient's partition credits it …
    let credited = w.when(&credit(1, id, to(2), dec!(250.00))).unwrap();
    assert_eq!(names(&credited), ["TransferCredited"]);
    assert_eq!(w.wallet(2).balance, dec!(250.00));
    // … and the sender records the success.
    let done = w
        .when(&on_payment(
            1,
            id,
            payment::Command::Execute {
                outcome: Execution::Succeeded {
                    provider_reference: format!("wallet:{}", wallet_of(2)),
                },
            },
        ))
        .unwrap();
    assert_eq!(names(&done), ["PaymentExecuted", "PaymentSucceeded"]);
    assert_eq!(w.payment(id).status.code(), Some(6));
    // Then the money moved once: 750.00 + 250.00.
    assert_eq!(w.wallet(1).balance + w.wallet(2).balance, dec!(1000.00));
    // And a transfer cannot be cancelled: its operation type is not a payment.
    let cancel = w
        .when(&on_payment(
            1,
            id,
            payment::Command::RequestCancellation {
                request_id: Uuid::from_u128(70),
                reason: "changed my mind".into(),
            },
        ))
        .unwrap();
    assert!(matches!(
        &cancel[1],
        Event::Payment(payment::Event::CancellationRejected { reason, .. }) if reason.contains("transfer")
    ));
}

#[test]
fn a_credit_refused_by_the_recipient_refunds_the_sender() {
    // Given a group whose maximum balance is 300.00 and a recipient already holding 200.00.
    let mut w = World::new(catalogue(dec!(300.00), None), 2);
    w.when(&top_up(1, 1, dec!(280.00))).unwrap();
    w.when(&top_up(2, 2, dec!(200.00))).unwrap();
    let id = Uuid::from_u128(8);
    w.when(&start_transfer(1, id, to(2), dec!(150.00))).unwrap();
    w.when(&on_payment(1, id, payment::Command::DebitTransfer))
        .unwrap();
    // When the recipient's wallet refuses the credit (200 + 150 > 300) …
    let refused = w.when(&credit(1, id, to(2), dec!(150.00))).unwrap_err();
    assert_eq!(refused.code(), "max_balance_exceeded");
    assert_eq!(w.wallet(2).balance, dec!(200.00));
    // … and the refusal is recorded on the sender,
    let failed = w
        .when(&on_payment(
            1,
            id,
            payment::Command::Execute {
                outcome: Execution::Failed {
                    reason: format!(
                        "the recipient's wallet refused the credit: {}",
                        refused.code()
                    ),
                },
            },
        ))
        .unwrap();
    // then the sender gets the amount back and its spending is released.
    assert_eq!(
        names(&failed),
        [
            "PaymentExecutionFailed",
            "TransferRefunded",
            "SpendingReleased",
            "PaymentFailed"
        ]
    );
    assert_eq!(w.wallet(1).balance, dec!(280.00));
    assert_eq!(w.payment(id).status.code(), Some(8));
}

#[test]
fn a_credit_to_a_wallet_the_client_does_not_own_or_in_another_currency_is_refused() {
    let mut w = World::new(catalogue(dec!(100000.00), None), 3);
    let id = Uuid::from_u128(9);
    // Client 2 named with client 3's wallet: not client 2's wallet.
    let wrong_owner = Recipient {
        client_id: client(2),
        wallet_id: wallet_of(3),
        order_id: None,
    };
    assert_eq!(
        w.when(&credit(1, id, wrong_owner, dec!(10.00)))
            .unwrap_err()
            .code(),
        "wallet_not_found"
    );
    let usd = Command::Wallet {
        client_id: client(2),
        wallet_id: wallet_of(2),
        command: wallet::Command::CreditTransfer {
            transfer_id: id,
            from_client_id: client(1),
            from_wallet_id: wallet_of(1),
            amount: Money::new(dec!(10.00), Currency::Usd),
            order_id: None,
        },
    };
    assert!(w.when(&usd).is_err());
    // A transfer to one's own wallet is refused at the start.
    w.when(&top_up(1, 1, dec!(100.00))).unwrap();
    assert_eq!(
        w.when(&start_transfer(1, id, to(1), dec!(10.00)))
            .unwrap_err()
            .code(),
        "transfer_to_same_wallet"
    );
}

#[test]
fn a_transfer_above_the_warning_threshold_waits_for_the_otp() {
    let mut w = World::new(catalogue(dec!(100000.00), Some(dec!(500.00))), 2);
    w.when(&top_up(1, 1, dec!(1000.00))).unwrap();
    let id = Uuid::from_u128(10);
    let started = w.when(&start_transfer(1, id, to(2), dec!(600.00))).unwrap();
    assert_eq!(
        names(&started),
        ["PaymentInitiated", "PaymentConfirmationRequested"]
    );
    // Nothing can be debited before the client confirms.
    assert!(w
        .when(&on_payment(1, id, payment::Command::DebitTransfer))
        .is_err());
    let confirmed = w
        .when(&on_payment(1, id, payment::Command::Confirm))
        .unwrap();
    assert_eq!(names(&confirmed).last(), Some(&"PaymentReserved"));
}

// ---- properties ------------------------------------------------------------------------

const CLIENTS: u128 = 3;

#[derive(Debug, Clone)]
enum Op {
    TopUp(u128, i64),
    /// A transfer from one client to another (or to a wallet its client does not own).
    Transfer(u128, u128, i64, bool),
    Debit(usize),
    Credit(usize),
    /// Record the credit's answer (or a failure when no credit was asked).
    Record(usize),
    Cancel(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1..=CLIENTS, 100..500_000_i64).prop_map(|(n, c)| Op::TopUp(n, c)),
        3 => (1..=CLIENTS, 1..=CLIENTS, 100..400_000_i64, prop::bool::weighted(0.1))
            .prop_map(|(a, b, c, wrong)| Op::Transfer(a, b, c, wrong)),
        3 => (0..12usize).prop_map(Op::Debit),
        3 => (0..12usize).prop_map(Op::Credit),
        3 => (0..12usize).prop_map(Op::Record),
        1 => (0..12usize).prop_map(Op::Cancel),
    ]
}

struct Transfer {
    id: Uuid,
    from: u128,
    to: Recipient,
    amount: Decimal,
    /// The credit's answer, once asked (the command id makes a repeat answer the same).
    credit: Option<Result<(), String>>,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random top-ups and transfers between three clients under a small maximum balance, the
    /// transfer process's steps (debit, credit, record) run in random order, repeated or
    /// never: money is conserved at every step (Σ balances + Σ in transit = Σ top-ups), no
    /// wallet's available balance goes negative, a credit never takes a balance above the
    /// group's maximum, and every debited transfer ends credited or refunded — never both,
    /// never twice — refunded only when its credit was refused. A refused command changes
    /// nothing.
    #[test]
    fn transfers_between_clients_conserve_money(ops in prop::collection::vec(op(), 1..80)) {
        let max_balance = dec!(5000.00);
        let mut w = World::new(catalogue(max_balance, None), CLIENTS);
        let mut transfers: Vec<Transfer> = Vec::new();
        let mut topped = Decimal::ZERO;
        let mut in_transit: BTreeMap<Uuid, Decimal> = BTreeMap::new();
        let mut credited = BTreeSet::new();
        let mut refunded = BTreeSet::new();
        for (i, op) in ops.into_iter().enumerate() {
            let cents = |c: i64| Decimal::new(c, 2);
            let command = match op {
                Op::TopUp(n, c) => top_up(n, 1_000 + i as u128, cents(c)),
                Op::Transfer(a, b, c, wrong) => {
                    let id = Uuid::from_u128(5_000 + i as u128);
                    let recipient = if wrong {
                        Recipient { client_id: client(b), wallet_id: Uuid::from_u128(999), order_id: None }
                    } else {
                        to(b)
                    };
                    transfers.push(Transfer { id, from: a, to: recipient, amount: cents(c), credit: None });
                    start_transfer(a, id, recipient, cents(c))
                }
                Op::Debit(k) => match transfers.get(k) {
                    Some(t) => on_payment(t.from, t.id, payment::Command::DebitTransfer),
                    None => continue,
                },
                Op::Credit(k) => {
                    let Some(t) = transfers.get_mut(k) else { continue };
                    // The process asks for the credit only once the debit is committed.
                    if !in_transit.contains_key(&t.id) && !credited.contains(&t.id) {
                        continue;
                    }
                    if t.credit.is_some() {
                        // A repeated credit is answered with its first outcome (command id).
                        continue;
                    }
                    let cmd = credit(t.from, t.id, t.to, t.amount);
                    let before = w.states.clone();
                    match w.when(&cmd) {
                        Ok(events) => {
                            for e in &events {
                                if let Event::Wallet(wallet::Event::TransferCredited { transfer_id, amount, .. }) = e {
                                    prop_assert!(credited.insert(*transfer_id), "credited twice");
                                    let left = in_transit.remove(transfer_id);
                                    prop_assert_eq!(left, Some(amount.amount), "credited what was not in transit");
                                }
                            }
                            let to_wallet = wallet::wallet_of(&w.states, t.to.wallet_id);
                            prop_assert!(to_wallet.balance <= max_balance, "a credit passed the maximum balance");
                            t.credit = Some(Ok(()));
                        }
                        Err(e) => {
                            prop_assert_eq!(&w.states, &before, "a refused credit changes nothing");
                            t.credit = Some(Err(e.code().to_owned()));
                        }
                    }
                    check(&w, topped, &in_transit)?;
                    continue;
                }
                Op::Record(k) => {
                    let Some(t) = transfers.get(k) else { continue };
                    let outcome = match &t.credit {
                        Some(Ok(())) => Execution::Succeeded { provider_reference: "wallet".into() },
                        Some(Err(code)) => Execution::Failed { reason: code.clone() },
                        // Past the deadline before any credit was asked: only possible while
                        // not debited (a debited transfer is never failed by a deadline).
                        None if !in_transit.contains_key(&t.id) => Execution::Failed { reason: "deadline".into() },
                        None => continue,
                    };
                    on_payment(t.from, t.id, payment::Command::Execute { outcome })
                }
                Op::Cancel(k) => match transfers.get(k) {
                    Some(t) => on_payment(t.from, t.id, payment::Command::Cancel { reason: "client".into() }),
                    None => continue,
                },
            };
            let before = w.states.clone();
            match w.when(&command) {
                Err(_) => prop_assert_eq!(&w.states, &before, "a refused command changes nothing"),
                Ok(events) => for e in &events {
                    match e {
                        Event::Wallet(wallet::Event::WalletToppedUp { amount, .. }) => topped += amount.amount,
                        Event::Wallet(wallet::Event::TransferDebited { payment_id, amount, .. }) => {
                            prop_assert!(in_transit.insert(*payment_id, amount.amount).is_none(), "debited twice");
                        }
                        Event::Wallet(wallet::Event::TransferRefunded { payment_id, amount, .. }) => {
                            prop_assert!(!credited.contains(payment_id), "refunded a credited transfer");
                            prop_assert!(refunded.insert(*payment_id), "refunded twice");
                            let t = transfers.iter().find(|t| t.id == *payment_id).unwrap();
                            prop_assert!(matches!(t.credit, Some(Err(_))), "refunded without a refused credit");
                            prop_assert_eq!(in_transit.remove(payment_id), Some(amount.amount));
                        }
                        Event::Payment(payment::Event::PaymentSucceeded) => {
                            let Command::Payment { payment_id, .. } = &command else { unreachable!() };
                            prop_assert!(credited.contains(payment_id), "succeeded without a credit");
                        }
                        _ => {}
                    }
                },
            }
            check(&w, topped, &in_transit)?;
        }
    }
}

/// Σ balances + Σ in transit = Σ top-ups, and no available balance below zero.
fn check(
    w: &World,
    topped: Decimal,
    in_transit: &BTreeMap<Uuid, Decimal>,
) -> Result<(), TestCaseError> {
    let balances: Decimal = (1..=CLIENTS).map(|n| w.wallet(n).balance).sum();
    let transit: Decimal = in_transit.values().copied().sum();
    prop_assert_eq!(balances + transit, topped, "money is conserved");
    for n in 1..=CLIENTS {
        prop_assert!(w.wallet(n).available() >= Decimal::ZERO);
    }
    Ok(())
}
