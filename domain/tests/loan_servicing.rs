//! The serviced loan aggregate, given/when/then: a payday loan issued from an offer, its
//! days closed, repaid from the wallet partly early, prolonged and repaid in full; the
//! refusals write nothing; and for random command streams the state `evolve` rebuilds is
//! the ledger the decisions saw, principal is conserved and the charges stay under the cap.

use etr_domain::loan;
use etr_domain::product::{self, Pricing, Product};
use etr_domain::servicing::Recalculate;
use etr_domain::wallet;
use etr_domain::{
    decide, evolve, Actor, AggregateKind, AggregateRef, ClientId, Command, Context, Currency,
    Money, State,
};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::collections::BTreeMap;
use time::macros::{date, datetime};
use time::{Date, Duration};
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(7));
const OTHER: ClientId = ClientId(Uuid::from_u128(8));
const LOAN: Uuid = Uuid::from_u128(71);
const WALLET: Uuid = Uuid::from_u128(81);
const CONTRACT_DATE: Date = date!(2026 - 11 - 24);

type States = BTreeMap<AggregateRef, State>;

fn ctx() -> Context {
    Context::new(datetime!(2026-11-24 09:00 UTC), Actor::system("test"))
}

fn rub(amount: Decimal) -> Money {
    Money::new(amount, Currency::Rub)
}

fn run_as(
    states: &mut States,
    client: ClientId,
    command: Command,
) -> Result<Vec<&'static str>, String> {
    let events = decide(states, &command, &ctx()).map_err(|e| e.code().to_owned())?;
    for (t, e) in &events {
        let s = states.remove(t).unwrap_or_else(|| State::initial(*t));
        states.insert(*t, evolve(s, client, e));
    }
    Ok(events.iter().map(|(_, e)| e.name()).collect())
}

fn run(states: &mut States, command: Command) -> Result<Vec<&'static str>, String> {
    run_as(states, CLIENT, command)
}

fn lend(command: loan::Command) -> Command {
    Command::Loan {
        client_id: CLIENT,
        loan_id: LOAN,
        command,
    }
}

fn pay(command: wallet::Command) -> Command {
    Command::Wallet {
        client_id: CLIENT,
        wallet_id: WALLET,
        command,
    }
}

fn loan_of(states: &States) -> loan::Loan {
    match states.get(&AggregateRef {
        kind: AggregateKind::Loan,
        id: LOAN,
    }) {
        Some(State::Loan(l)) => l.clone(),
        _ => loan::Loan::default(),
    }
}

fn balance(states: &States) -> Decimal {
    match states.get(&AggregateRef::wallet(WALLET)) {
        Some(State::Wallet(w)) => w.balance,
        _ => Decimal::ZERO,
    }
}

fn product(pricing: Pricing, fee: Decimal) -> Product {
    Product {
        id: "test".into(),
        name: "test".into(),
        min_amount: dec!(1000),
        max_amount: dec!(100000),
        pricing,
        penalty_rate: dec!(0.20),
        prolongation_fee: fee,
    }
}

fn payday() -> Product {
    product(
        Pricing::Daily {
            daily_rate: dec!(0.008),
            min_days: 7,
            max_days: 30,
        },
        dec!(500.00),
    )
}

/// Issues `amount` of `product` over `term` on the contract date, as the conveyor does.
fn issue(states: &mut States, product: &Product, amount: Decimal, term: u32) {
    let made = product::offer(product, amount, term, CONTRACT_DATE).unwrap();
    let terms = loan::Terms {
        product_id: made.product_id,
        term,
        term_unit: "days".into(),
        contract_date: made.contract_date,
        schedule: made.instalments,
        psk_percent: made.psk.percent,
        psk_money: made.psk.money,
        card_id: None,
        payout_reference: "payout-1".into(),
        servicing: Some(product.servicing()),
    };
    run(
        states,
        lend(loan::Command::IssueLoan {
            application_id: Uuid::from_u128(70),
            principal: rub(amount),
            term_days: term,
            daily_rate_percent: "0.8".into(),
            terms: Some(Box::new(terms)),
        }),
    )
    .unwrap();
}

fn open_wallet(states: &mut States, amount: Decimal) {
    run(
        states,
        pay(wallet::Command::OpenWallet {
            currency: Currency::Rub,
        }),
    )
    .unwrap();
    run(
        states,
        pay(wallet::Command::TopUp {
            operation_id: Uuid::from_u128(90),
            amount: rub(amount),
            source: "card".into(),
        }),
    )
    .unwrap();
}

fn close_days(states: &mut States, through: Date) -> Result<Vec<&'static str>, String> {
    run(states, lend(loan::Command::CloseDays { through }))
}

#[test]
fn a_payday_loan_accrues_is_repaid_early_in_part_prolonged_and_repaid_in_full() {
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    open_wallet(&mut s, dec!(14000));
    let issued = loan_of(&s);
    assert_eq!(issued.status, loan::Status::Active);
    assert_eq!(issued.outstanding, dec!(10000));

    // Given ten closed days: 10 × 0.8 % of 10,000 = 800.00 of interest.
    assert_eq!(
        close_days(&mut s, CONTRACT_DATE + Duration::days(10)).unwrap(),
        vec!["InterestAccrued"]
    );
    let l = loan_of(&s);
    assert_eq!(l.outstanding, dec!(10800.00));
    // Closing the same days again changes nothing.
    assert!(close_days(&mut s, CONTRACT_DATE + Duration::days(5))
        .unwrap()
        .is_empty());

    // When the client repays 4,800 early (term kept shorter): interest first, then 4,000 of
    // principal; the wallet is debited in the same commit.
    let names = run(
        &mut s,
        lend(loan::Command::RepayEarly {
            repayment_id: Uuid::from_u128(1),
            wallet_id: WALLET,
            amount: Some(rub(dec!(4800))),
            recalculate: Recalculate::Instalment,
        }),
    )
    .unwrap();
    assert_eq!(names, vec!["LoanRepaymentDebited", "RepaymentAllocated"]);
    assert_eq!(balance(&s), dec!(9200.00));
    let l = loan_of(&s);
    let ledger = l.ledger.as_ref().unwrap();
    assert_eq!(ledger.debt.principal, dec!(6000.00));
    assert_eq!(ledger.debt.interest, dec!(0.00));
    assert_eq!(l.outstanding, dec!(6000.00));

    // When prolonged by a month: the 500.00 fee is owed, the schedule moves a month on.
    let due_before = ledger.schedule.last().unwrap().date;
    assert_eq!(
        run(&mut s, lend(loan::Command::ExtendTerm { months: 1 })).unwrap(),
        vec!["TermExtended"]
    );
    let l = loan_of(&s);
    let ledger = l.ledger.as_ref().unwrap();
    assert_eq!(ledger.debt.fees, dec!(500.00));
    assert!(ledger.schedule.last().unwrap().date > due_before);

    // Then five more days, and the payoff of the open day closes the loan with zero debt and
    // no credit: 6,000 + 500 fee + 5 × 48.00 interest.
    close_days(&mut s, CONTRACT_DATE + Duration::days(15)).unwrap();
    let payoff = loan_of(&s)
        .ledger
        .unwrap()
        .payoff(CONTRACT_DATE + Duration::days(15))
        .unwrap();
    assert_eq!(payoff, dec!(6740.00));
    let names = run(
        &mut s,
        lend(loan::Command::RepayEarly {
            repayment_id: Uuid::from_u128(2),
            wallet_id: WALLET,
            amount: None,
            recalculate: Recalculate::Term,
        }),
    )
    .unwrap();
    assert_eq!(
        names,
        vec!["LoanRepaymentDebited", "RepaymentAllocated", "LoanClosed"]
    );
    let l = loan_of(&s);
    assert_eq!(l.status, loan::Status::Closed);
    assert_eq!(l.outstanding, dec!(0.00));
    assert_eq!(l.ledger.as_ref().unwrap().credit, dec!(0));
    assert_eq!(balance(&s), dec!(9200.00) - dec!(6740.00));
    // A closed loan takes nothing more.
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::Repay {
                repayment_id: Uuid::from_u128(3),
                wallet_id: WALLET,
                amount: rub(dec!(1)),
            })
        ),
        Err("invalid_transition".into())
    );
}

#[test]
fn a_payoff_on_the_disbursement_day_charges_no_interest() {
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    open_wallet(&mut s, dec!(10000));
    let names = run(
        &mut s,
        lend(loan::Command::RepayEarly {
            repayment_id: Uuid::from_u128(1),
            wallet_id: WALLET,
            amount: None,
            recalculate: Recalculate::Term,
        }),
    )
    .unwrap();
    assert_eq!(names.last(), Some(&"LoanClosed"));
    assert_eq!(balance(&s), dec!(0.00));
}

#[test]
fn an_overpayment_is_kept_as_credit_and_closes_the_loan() {
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    open_wallet(&mut s, dec!(12000));
    close_days(&mut s, CONTRACT_DATE + Duration::days(1)).unwrap();
    run(
        &mut s,
        lend(loan::Command::Repay {
            repayment_id: Uuid::from_u128(1),
            wallet_id: WALLET,
            amount: rub(dec!(10100)),
        }),
    )
    .unwrap();
    let l = loan_of(&s);
    assert_eq!(l.status, loan::Status::Closed);
    assert_eq!(l.ledger.unwrap().credit, dec!(20.00));
}

#[test]
fn refusals_write_nothing() {
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    open_wallet(&mut s, dec!(100));
    let before = s.clone();
    let repay = |amount: Decimal| {
        lend(loan::Command::Repay {
            repayment_id: Uuid::from_u128(1),
            wallet_id: WALLET,
            amount: rub(amount),
        })
    };
    // More than the wallet holds.
    assert_eq!(
        run(&mut s, repay(dec!(500))),
        Err("insufficient_funds".into())
    );
    // Not in roubles, not positive, too precise.
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::Repay {
                repayment_id: Uuid::from_u128(1),
                wallet_id: WALLET,
                amount: Money::new(dec!(10), Currency::Usd),
            })
        ),
        Err("currency_mismatch".into())
    );
    assert_eq!(run(&mut s, repay(dec!(0))), Err("invalid_amount".into()));
    // Another client's loan does not exist for them.
    assert_eq!(
        run_as(
            &mut s,
            OTHER,
            Command::Loan {
                client_id: OTHER,
                loan_id: LOAN,
                command: loan::Command::ExtendTerm { months: 1 },
            }
        ),
        Err("loan_not_found".into())
    );
    // An early repayment that does not exceed what is owed besides principal.
    close_days(&mut s, CONTRACT_DATE + Duration::days(3)).unwrap();
    let accrued = s.clone();
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::RepayEarly {
                repayment_id: Uuid::from_u128(2),
                wallet_id: WALLET,
                amount: Some(rub(dec!(50))),
                recalculate: Recalculate::Term,
            })
        ),
        Err("early_repayment_too_small".into())
    );
    assert_eq!(s, accrued);
    // Stopping needs a reason; resuming needs a stop.
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::StopAccrual { reason: " ".into() })
        ),
        Err("invalid_command".into())
    );
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::ResumeAccrual { reason: "x".into() })
        ),
        Err("invalid_transition".into())
    );
    assert_eq!(s, accrued);
    assert_ne!(s, before);
}

#[test]
fn no_interest_accrues_between_a_stop_and_a_resume_and_a_write_off_ends_the_loan() {
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    close_days(&mut s, CONTRACT_DATE + Duration::days(2)).unwrap();
    run(
        &mut s,
        lend(loan::Command::StopAccrual {
            reason: "hospital".into(),
        }),
    )
    .unwrap();
    close_days(&mut s, CONTRACT_DATE + Duration::days(12)).unwrap();
    assert_eq!(loan_of(&s).outstanding, dec!(10160.00));
    run(
        &mut s,
        lend(loan::Command::ResumeAccrual {
            reason: "back".into(),
        }),
    )
    .unwrap();
    close_days(&mut s, CONTRACT_DATE + Duration::days(13)).unwrap();
    assert_eq!(loan_of(&s).outstanding, dec!(10240.00));
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::WriteOff {
                reason: "uncollectable".into()
            })
        )
        .unwrap(),
        vec!["LoanWrittenOff"]
    );
    let l = loan_of(&s);
    assert_eq!(l.status, loan::Status::WrittenOff);
    assert_eq!(l.outstanding, dec!(0));
}

#[test]
fn an_unpaid_instalment_makes_the_loan_overdue_and_penalties_accrue() {
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    let names = close_days(&mut s, CONTRACT_DATE + Duration::days(32)).unwrap();
    assert_eq!(names, vec!["InterestAccrued", "LoanBecameOverdue"]);
    let l = loan_of(&s);
    assert_eq!(l.status, loan::Status::Overdue);
    let ledger = l.ledger.unwrap();
    assert_eq!(ledger.debt.overdue_principal, dec!(10000));
    assert!(ledger.debt.penalties > Decimal::ZERO);
}

/// A random servicing step.
#[derive(Debug, Clone)]
enum Step {
    Close(i64),
    Repay(i64),
    Early(i64, bool),
    Payoff,
    Extend(u32),
    Stop,
    Resume,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1i64..40).prop_map(Step::Close),
        3 => (1i64..800_000).prop_map(Step::Repay),
        2 => (1i64..2_000_000, any::<bool>()).prop_map(|(a, t)| Step::Early(a, t)),
        1 => Just(Step::Payoff),
        1 => (1u32..4).prop_map(Step::Extend),
        1 => Just(Step::Stop),
        1 => Just(Step::Resume),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn evolve_rebuilds_what_was_decided_and_money_is_conserved(
        monthly in any::<bool>(),
        amount in 1_000i64..50_000,
        term in 1u32..12,
        steps in proptest::collection::vec(step(), 1..30),
    ) {
        let product = if monthly {
            product(
                Pricing::Monthly {
                    annual_rate: dec!(0.45),
                    min_months: 1,
                    max_months: 12,
                    day_count: etr_domain::schedule::DayCount::Actual365,
                    repayment: etr_domain::schedule::Repayment::Annuity,
                },
                dec!(300.00),
            )
        } else {
            payday()
        };
        let term = if monthly { term } else { 7 + term * 2 };
        let principal = Decimal::from(amount);
        let mut s = States::new();
        issue(&mut s, &product, principal, term);
        open_wallet(&mut s, dec!(15000));
        let mut day = CONTRACT_DATE;
        let mut debited = Decimal::ZERO;
        for (n, st) in steps.into_iter().enumerate() {
            let id = Uuid::from_u128(1000 + n as u128);
            let before = balance(&s);
            let command = match st {
                Step::Close(days) => {
                    day += Duration::days(days);
                    loan::Command::CloseDays { through: day }
                }
                Step::Repay(k) => loan::Command::Repay {
                    repayment_id: id,
                    wallet_id: WALLET,
                    amount: rub(Decimal::new(k, 2)),
                },
                Step::Early(k, term) => loan::Command::RepayEarly {
                    repayment_id: id,
                    wallet_id: WALLET,
                    amount: Some(rub(Decimal::new(k, 2))),
                    recalculate: if term { Recalculate::Term } else { Recalculate::Instalment },
                },
                Step::Payoff => loan::Command::RepayEarly {
                    repayment_id: id,
                    wallet_id: WALLET,
                    amount: None,
                    recalculate: Recalculate::Term,
                },
                Step::Extend(m) => loan::Command::ExtendTerm { months: m },
                Step::Stop => loan::Command::StopAccrual { reason: "r".into() },
                Step::Resume => loan::Command::ResumeAccrual { reason: "r".into() },
            };
            let snapshot = s.clone();
            match decide(&s, &lend(command), &ctx()) {
                Ok(events) => {
                    for (t, e) in &events {
                        let st = s.remove(t).unwrap_or_else(|| State::initial(*t));
                        s.insert(*t, evolve(st, CLIENT, e));
                    }
                    debited += before - balance(&s);
                    // What the decision recorded is what evolve reached.
                    let l = loan_of(&s);
                    let ledger = l.ledger.as_ref().unwrap();
                    for (_, e) in &events {
                        match e {
                            etr_domain::Event::Loan(loan::Event::RepaymentAllocated {
                                early: Some(_), schedule, debt, ..
                            }) => {
                                prop_assert_eq!(schedule, &ledger.schedule);
                                prop_assert_eq!(*debt, ledger.debt.total());
                            }
                            etr_domain::Event::Loan(loan::Event::RepaymentAllocated { debt, .. })
                            | etr_domain::Event::Loan(loan::Event::InterestAccrued { debt, .. }) => {
                                prop_assert_eq!(*debt, ledger.debt.total());
                            }
                            etr_domain::Event::Loan(loan::Event::TermExtended { schedule, .. }) => {
                                prop_assert_eq!(schedule, &ledger.schedule);
                            }
                            _ => {}
                        }
                    }
                }
                Err(_) => prop_assert_eq!(&s, &snapshot, "a refusal changed the state"),
            }
            let l = loan_of(&s);
            let ledger = l.ledger.as_ref().unwrap();
            prop_assert_eq!(
                ledger.principal_repaid + ledger.debt.principal_owed(),
                principal,
                "principal repaid + remaining = disbursed"
            );
            prop_assert!(ledger.charges <= ledger.max_charges());
            prop_assert_eq!(l.outstanding, ledger.debt.total());
            prop_assert!(balance(&s) >= Decimal::ZERO);
        }
        // Every rouble the wallet lost went to the loan.
        let l = loan_of(&s);
        let ledger = l.ledger.unwrap();
        prop_assert_eq!(
            debited,
            ledger.principal_repaid + ledger.charges - (ledger.debt.total() - ledger.debt.principal_owed()) + ledger.credit
        );
    }
}

/// The client as registered with one bound card (the client aggregate's own tests cover
/// binding).
fn bind_card(states: &mut States) -> Uuid {
    let card_id = Uuid::from_u128(55);
    let mut client = etr_domain::wallet::client_of(states, CLIENT);
    client.status = etr_domain::client::Status::Active;
    client.cards.push(etr_domain::client::BoundCard {
        card_id,
        provider: "bank".into(),
        token: "bank-tok-55".into(),
        masked_pan: "220220******5555".into(),
    });
    states.insert(
        AggregateRef::client(CLIENT),
        State::Client(Box::new(client)),
    );
    card_id
}

#[test]
fn a_card_repayment_is_applied_once_the_bank_has_it_and_blocks_other_repayments_meanwhile() {
    use etr_domain::card_repayment::Outcome;
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    open_wallet(&mut s, dec!(5000));
    let card = bind_card(&mut s);
    close_days(&mut s, CONTRACT_DATE + Duration::days(5)).unwrap();
    // An unknown card is refused; the payoff is fixed at the request.
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::RequestCardRepayment {
                repayment_id: Uuid::from_u128(1),
                card_id: Uuid::from_u128(99),
                amount: None,
                early: Some(Recalculate::Term),
            })
        ),
        Err("card_not_found".into())
    );
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::RequestCardRepayment {
                repayment_id: Uuid::from_u128(1),
                card_id: card,
                amount: None,
                early: Some(Recalculate::Term),
            })
        )
        .unwrap(),
        vec!["CardRepaymentRequested"]
    );
    let pending = loan_of(&s).pending_card.unwrap();
    assert_eq!(pending.amount, rub(dec!(10400.00)));
    // Meanwhile no other repayment, card request or write-off.
    let before = s.clone();
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::Repay {
                repayment_id: Uuid::from_u128(2),
                wallet_id: WALLET,
                amount: rub(dec!(100)),
            })
        ),
        Err("repayment_in_progress".into())
    );
    assert_eq!(
        run(&mut s, lend(loan::Command::WriteOff { reason: "x".into() })),
        Err("repayment_in_progress".into())
    );
    // A record for another repayment is refused.
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::RecordCardRepayment {
                repayment_id: Uuid::from_u128(3),
                outcome: Outcome::Paid {
                    authorisation_id: "a".into()
                },
            })
        ),
        Err("invalid_command".into())
    );
    assert_eq!(s, before);
    // Paid: allocated from the card, the wallet untouched, the loan closed.
    let names = run(
        &mut s,
        lend(loan::Command::RecordCardRepayment {
            repayment_id: Uuid::from_u128(1),
            outcome: Outcome::Paid {
                authorisation_id: "auth-1".into(),
            },
        }),
    )
    .unwrap();
    assert_eq!(names, vec!["RepaymentAllocated", "LoanClosed"]);
    let l = loan_of(&s);
    assert_eq!(l.status, loan::Status::Closed);
    assert!(l.pending_card.is_none());
    assert_eq!(balance(&s), dec!(5000.00));
}

#[test]
fn a_declined_card_repayment_pays_nothing_and_frees_the_loan() {
    use etr_domain::card_repayment::Outcome;
    let mut s = States::new();
    issue(&mut s, &payday(), dec!(10000), 30);
    let card = bind_card(&mut s);
    run(
        &mut s,
        lend(loan::Command::RequestCardRepayment {
            repayment_id: Uuid::from_u128(1),
            card_id: card,
            amount: Some(rub(dec!(3000))),
            early: None,
        }),
    )
    .unwrap();
    let names = run(
        &mut s,
        lend(loan::Command::RecordCardRepayment {
            repayment_id: Uuid::from_u128(1),
            outcome: Outcome::Declined {
                reason: "insufficient funds".into(),
            },
        }),
    )
    .unwrap();
    assert_eq!(names, vec!["CardRepaymentDeclined"]);
    let l = loan_of(&s);
    assert!(l.pending_card.is_none());
    assert_eq!(l.outstanding, dec!(10000));
    // An amount the ledger would not take now is refused at the request.
    assert_eq!(
        run(
            &mut s,
            lend(loan::Command::RequestCardRepayment {
                repayment_id: Uuid::from_u128(2),
                card_id: card,
                amount: Some(rub(dec!(0.001))),
                early: None,
            })
        ),
        Err("invalid_amount".into())
    );
}
