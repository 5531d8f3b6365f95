//! Loan servicing (`etr_domain::servicing`): given/when/then cases worked by hand, and
//! property tests over random loans and random streams of days, repayments, early
//! repayments, prolongations and accrual stops.

use etr_domain::caps;
use etr_domain::schedule::{DayCount, Repayment};
use etr_domain::servicing::{self, Contract, Ledger, Recalculate, Standing};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use time::macros::date;
use time::{Date, Duration};

fn contract(principal: Decimal, annual_rate: Decimal, periods: u32, on: Date) -> Contract {
    Contract {
        principal,
        annual_rate,
        penalty_rate: dec!(0.20),
        day_count: DayCount::Actual365,
        method: Repayment::Annuity,
        contract_date: on,
        periods,
    }
}

#[test]
fn interest_accrues_daily_and_a_payoff_on_the_disbursement_day_is_the_principal() {
    // 36.5 % a year under actual/365 is 0.1 % a day: 10.00 a day on 10,000.00.
    let ledger = servicing::open(contract(
        dec!(10000.00),
        dec!(0.365),
        3,
        date!(2026 - 05 - 01),
    ))
    .unwrap();
    assert_eq!(
        ledger.payoff(date!(2026 - 05 - 01)).unwrap(),
        dec!(10000.00)
    );
    assert_eq!(
        ledger.payoff(date!(2026 - 05 - 11)).unwrap(),
        dec!(10100.00)
    );
    // Paid exactly, the payoff closes the loan with no debt and no credit.
    let mut paid = ledger.clone();
    let allocation = paid.repay(date!(2026 - 05 - 11), dec!(10100.00)).unwrap();
    assert_eq!(allocation.paid.interest, dec!(100.00));
    assert_eq!(allocation.paid.principal, dec!(10000.00));
    assert_eq!(allocation.credit, Decimal::ZERO);
    assert_eq!(paid.standing, Standing::Closed);
    assert!(paid.debt.total().is_zero());
}

#[test]
fn an_unpaid_instalment_falls_overdue_and_a_repayment_pays_penalties_first() {
    let mut ledger = servicing::open(contract(
        dec!(10000.00),
        dec!(0.365),
        3,
        date!(2026 - 05 - 01),
    ))
    .unwrap();
    let first = ledger.schedule[0].clone();
    assert_eq!(first.date, date!(2026 - 06 - 01));
    // Nothing paid by the end of the first due date: its principal part and the 31 days of
    // interest are overdue; ten days later penalties have accrued at 20 % a year on it.
    ledger.advance_to(date!(2026 - 06 - 12)).unwrap();
    assert_eq!(ledger.debt.overdue_principal, first.principal);
    assert_eq!(ledger.debt.overdue_interest, dec!(310.00));
    assert!(ledger.debt.penalties > Decimal::ZERO);
    let penalties = ledger.debt.penalties;
    // 11 days × 0.1 % on the 10,000.00 still owed (overdue principal accrues interest).
    assert_eq!(ledger.debt.interest, dec!(110.00));
    let allocation = ledger.repay(date!(2026 - 06 - 12), dec!(400.00)).unwrap();
    assert_eq!(allocation.paid.penalties, penalties);
    assert_eq!(allocation.paid.overdue_interest, dec!(310.00));
    assert_eq!(
        allocation.paid.interest,
        dec!(400.00) - penalties - dec!(310.00)
    );
    assert_eq!(allocation.paid.overdue_principal, Decimal::ZERO);
}

#[test]
fn accrual_stops_at_the_contract_dates_cap_and_between_stop_and_resume() {
    // 0.8 % a day for a contract of 2026-04-01 or later: charges stop at 100 % of 1,000.00.
    let mut capped = servicing::open(Contract {
        day_count: DayCount::Actual365,
        ..contract(dec!(1000.00), dec!(2.92), 1, date!(2026 - 04 - 01))
    })
    .unwrap();
    capped.advance_to(date!(2026 - 12 - 31)).unwrap();
    assert_eq!(capped.charges, dec!(1000.00));
    assert!(capped.capped);
    // The same loan concluded on 2026-03-31 may charge up to 130 %.
    let mut older = servicing::open(contract(
        dec!(1000.00),
        dec!(2.92),
        1,
        date!(2026 - 03 - 31),
    ))
    .unwrap();
    older.advance_to(date!(2026 - 12 - 31)).unwrap();
    assert_eq!(older.charges, dec!(1300.00));
    // Above 0.8 % a day is refused.
    assert_eq!(
        servicing::open(contract(
            dec!(1000.00),
            dec!(2.93),
            1,
            date!(2026 - 04 - 01)
        ))
        .unwrap_err()
        .code(),
        "daily_rate_cap"
    );
    // Stopped for ten days: no interest for them.
    let mut stopped = servicing::open(contract(
        dec!(10000.00),
        dec!(0.365),
        3,
        date!(2026 - 05 - 01),
    ))
    .unwrap();
    stopped.set_accrual(date!(2026 - 05 - 05), true).unwrap();
    stopped.set_accrual(date!(2026 - 05 - 15), false).unwrap();
    assert_eq!(
        stopped.payoff(date!(2026 - 05 - 20)).unwrap(),
        dec!(10090.00)
    );
}

#[test]
fn a_partial_early_repayment_lowers_the_instalment_or_shortens_the_term() {
    let base = servicing::open(Contract {
        day_count: DayCount::Thirty360,
        ..contract(dec!(120000.00), dec!(0.12), 12, date!(2026 - 05 - 01))
    })
    .unwrap();
    let mut lower = base.clone();
    let mut shorter = base.clone();
    let on = date!(2026 - 05 - 16);
    // 15 days of interest at 12 % / 360 on 120,000.00 is 600.00; 60,600.00 repays 60,000.00.
    lower
        .repay_early(on, dec!(60600.00), Recalculate::Instalment)
        .unwrap();
    shorter
        .repay_early(on, dec!(60600.00), Recalculate::Term)
        .unwrap();
    for l in [&lower, &shorter] {
        assert_eq!(l.debt.principal, dec!(60000.00));
        let scheduled: Decimal = l.schedule.iter().map(|i| i.principal).sum();
        assert_eq!(scheduled, dec!(60000.00));
    }
    assert_eq!(lower.schedule.len(), 12);
    assert!(lower.schedule[0].payment < base.schedule[0].payment);
    assert!(shorter.schedule.len() < 12);
    assert!(shorter.schedule[0].payment <= base.schedule[0].payment);
    // Too little to repay any principal early is refused.
    let mut small = base.clone();
    assert_eq!(
        small
            .repay_early(on, dec!(600.00), Recalculate::Term)
            .unwrap_err()
            .code(),
        "early_repayment_too_small"
    );
}

#[test]
fn a_prolongation_adds_months_and_charges_its_fee() {
    let mut ledger = servicing::open(contract(
        dec!(30000.00),
        dec!(0.365),
        3,
        date!(2026 - 05 - 31),
    ))
    .unwrap();
    let fee = ledger
        .prolong(date!(2026 - 06 - 10), 2, dec!(500.00))
        .unwrap();
    assert_eq!(fee, dec!(500.00));
    assert_eq!(ledger.debt.fees, dec!(500.00));
    let dates: Vec<Date> = ledger.schedule.iter().map(|i| i.date).collect();
    assert_eq!(
        dates,
        [
            date!(2026 - 06 - 30),
            date!(2026 - 07 - 31),
            date!(2026 - 08 - 31),
            date!(2026 - 09 - 30),
            date!(2026 - 10 - 31)
        ]
    );
    let scheduled: Decimal = ledger.schedule.iter().map(|i| i.principal).sum();
    assert_eq!(scheduled, dec!(30000.00));
}

// ---- properties ------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Op {
    Days(i64),
    Repay(i64),
    Early(i64, bool),
    Prolong(u32, i64),
    Stop,
    Resume,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (1..45i64).prop_map(Op::Days),
        4 => (100..5_000_000i64).prop_map(Op::Repay),
        1 => (100..20_000_000i64, any::<bool>()).prop_map(|(c, t)| Op::Early(c, t)),
        1 => (1..4u32, 0..100_000i64).prop_map(|(m, f)| Op::Prolong(m, f)),
        1 => Just(Op::Stop),
        1 => Just(Op::Resume),
    ]
}

fn random_contract() -> impl Strategy<Value = Contract> {
    (
        100_000..50_000_000i64,
        0..2_920i64,
        1..24u32,
        any::<bool>(),
        any::<bool>(),
        0..800i64,
        0..=20i64,
    )
        .prop_map(
            |(cents, rate_permille, periods, annuity, actual, day, penalty)| Contract {
                principal: Decimal::new(cents, 2),
                annual_rate: Decimal::new(rate_permille, 3),
                penalty_rate: Decimal::new(penalty, 2),
                day_count: if actual {
                    DayCount::Actual365
                } else {
                    DayCount::Thirty360
                },
                method: if annuity {
                    Repayment::Annuity
                } else {
                    Repayment::EqualPrincipal
                },
                contract_date: date!(2025 - 10 - 01) + Duration::days(day),
                periods,
            },
        )
}

fn check(l: &Ledger) -> Result<(), TestCaseError> {
    let c = &l.contract;
    prop_assert_eq!(
        l.principal_repaid + l.debt.principal_owed(),
        c.principal,
        "principal repaid + remaining = disbursed"
    );
    prop_assert!(
        l.charges <= caps::max_charges(c.principal, c.contract_date),
        "charges {} above the cap",
        l.charges
    );
    let d = &l.debt;
    for part in [
        d.fees,
        d.penalties,
        d.overdue_interest,
        d.interest,
        d.overdue_principal,
        d.principal,
    ] {
        prop_assert!(
            part >= Decimal::ZERO && part.normalize().scale() <= 2,
            "{:?}",
            d
        );
    }
    if l.standing == Standing::Open && !l.schedule.is_empty() {
        let scheduled: Decimal = l.schedule.iter().map(|i| i.principal).sum();
        prop_assert_eq!(
            scheduled,
            d.principal + l.principal_paid_towards_due,
            "the schedule holds the current principal"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// For random loans and random streams of days and payments: principal repaid +
    /// remaining principal = disbursed, charges never pass the contract date's cap, every
    /// component is a non-negative kopeck amount, the schedule always holds the current
    /// principal, a repayment pays a later component only once the earlier ones are paid,
    /// and a payoff paid exactly closes the loan with zero debt and no credit.
    #[test]
    fn servicing_keeps_principal_caps_and_allocation_order(
        contract in random_contract(),
        ops in prop::collection::vec(op(), 1..40),
    ) {
        let Ok(mut l) = servicing::open(contract) else { return Ok(()) };
        let mut day = l.contract.contract_date;
        for op in ops {
            let before = l.clone();
            match op {
                Op::Days(n) => { day += Duration::days(n); l.advance_to(day).unwrap(); }
                Op::Repay(c) => {
                    let owed: Vec<Decimal> = {
                        let mut f = l.clone();
                        f.advance_to(day).unwrap();
                        let d = f.debt;
                        vec![d.fees, d.penalties, d.overdue_interest, d.interest, d.overdue_principal, d.principal]
                    };
                    if let Ok(a) = l.repay(day, Decimal::new(c, 2)) {
                        let p = a.paid;
                        let paid = [p.fees, p.penalties, p.overdue_interest, p.interest, p.overdue_principal, p.principal];
                        for i in 0..paid.len() {
                            if paid[i] > Decimal::ZERO {
                                for j in 0..i {
                                    prop_assert_eq!(paid[j], owed[j], "component {} paid before {} was", i, j);
                                }
                            }
                        }
                        let total: Decimal = paid.iter().copied().sum::<Decimal>() + a.credit;
                        prop_assert_eq!(total, Decimal::new(c, 2));
                    }
                }
                Op::Early(c, term) => {
                    let how = if term { Recalculate::Term } else { Recalculate::Instalment };
                    if l.repay_early(day, Decimal::new(c, 2), how).is_err() { l = before.clone(); }
                }
                Op::Prolong(m, f) => { if l.prolong(day, m, Decimal::new(f, 2)).is_err() { l = before.clone(); } }
                Op::Stop => { let _ = l.set_accrual(day, true); }
                Op::Resume => { let _ = l.set_accrual(day, false); }
            }
            check(&l)?;
        }
        if l.standing == Standing::Open {
            let payoff = l.payoff(day).unwrap();
            if payoff > Decimal::ZERO {
                let a = l.repay(day, payoff).unwrap();
                prop_assert_eq!(a.credit, Decimal::ZERO);
                prop_assert_eq!(l.standing, Standing::Closed);
                prop_assert!(l.debt.total().is_zero());
                prop_assert_eq!(l.principal_repaid, l.contract.principal);
            }
        }
    }
}

#[test]
fn a_payday_loan_is_serviced_on_its_signed_single_instalment() {
    // 10,000.00 at 0.8 % a day (2.92 a year, actual/365) for 20 days: 80.00 a day, 11,600.00
    // on the day, worked by hand.
    let on = date!(2026 - 05 - 01);
    let due = date!(2026 - 05 - 21);
    let signed = vec![etr_domain::schedule::Instalment {
        number: 1,
        date: due,
        days: 20,
        payment: dec!(11600.00),
        principal: dec!(10000.00),
        interest: dec!(1600.00),
        balance: dec!(0.00),
    }];
    let ledger = servicing::open_with_schedule(
        Contract {
            method: Repayment::Bullet,
            ..contract(dec!(10000.00), dec!(2.92), 1, on)
        },
        signed.clone(),
    )
    .unwrap();
    assert_eq!(ledger.payoff(due).unwrap(), dec!(11600.00));
    // A schedule that does not repay the principal is refused.
    let mut short = signed;
    short[0].principal = dec!(9999.99);
    assert_eq!(
        servicing::open_with_schedule(contract(dec!(10000.00), dec!(2.92), 1, on), short)
            .unwrap_err()
            .code(),
        "signed_schedule"
    );
}
