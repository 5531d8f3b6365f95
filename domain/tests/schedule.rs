//! Preliminary schedules against independently computed vectors.
//!
//! Where the vectors come from: each expected row below was computed by a separate program
//! (Python 3.11, `decimal` at 40 digits, `ROUND_HALF_EVEN`) written from the rules in the
//! `schedule` module's documentation — not from this crate's code. Cross-check of the
//! first: 100,000 at 12 % a year (1 % a month) over 12 months is the textbook annuity of
//! 8,884.88 a month.

use etr_domain::schedule::{schedule, total_interest, DayCount, Repayment, Terms};
use proptest::prelude::*;
use rust_decimal::Decimal;
use std::str::FromStr;
use time::macros::date;

fn d(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

/// (date, payment, principal, interest, balance) per instalment.
fn rows(terms: &Terms) -> Vec<(String, String, String, String, String)> {
    schedule(terms)
        .unwrap()
        .into_iter()
        .map(|i| {
            (
                i.date.to_string(),
                i.payment.to_string(),
                i.principal.to_string(),
                i.interest.to_string(),
                i.balance.to_string(),
            )
        })
        .collect()
}

fn expect(
    rows: &[(&str, &str, &str, &str, &str)],
) -> Vec<(String, String, String, String, String)> {
    rows.iter()
        .map(|(a, b, c, d, e)| {
            (
                a.to_string(),
                b.to_string(),
                c.to_string(),
                d.to_string(),
                e.to_string(),
            )
        })
        .collect()
}

#[test]
fn annuity_30_360() {
    let terms = Terms {
        principal: d("100000.00"),
        annual_rate: d("0.12"),
        periods: 12,
        start: date!(2026 - 01 - 15),
        day_count: DayCount::Thirty360,
        repayment: Repayment::Annuity,
    };
    assert_eq!(
        rows(&terms),
        expect(&[
            ("2026-02-15", "8884.88", "7884.88", "1000.00", "92115.12"),
            ("2026-03-15", "8884.88", "7963.73", "921.15", "84151.39"),
            ("2026-04-15", "8884.88", "8043.37", "841.51", "76108.02"),
            ("2026-05-15", "8884.88", "8123.80", "761.08", "67984.22"),
            ("2026-06-15", "8884.88", "8205.04", "679.84", "59779.18"),
            ("2026-07-15", "8884.88", "8287.09", "597.79", "51492.09"),
            ("2026-08-15", "8884.88", "8369.96", "514.92", "43122.13"),
            ("2026-09-15", "8884.88", "8453.66", "431.22", "34668.47"),
            ("2026-10-15", "8884.88", "8538.20", "346.68", "26130.27"),
            ("2026-11-15", "8884.88", "8623.58", "261.30", "17506.69"),
            ("2026-12-15", "8884.88", "8709.81", "175.07", "8796.88"),
            ("2027-01-15", "8884.85", "8796.88", "87.97", "0.00"),
        ])
    );
    assert_eq!(total_interest(&schedule(&terms).unwrap()), d("6618.53"));
}

#[test]
fn annuity_actual_365_from_a_month_end() {
    let terms = Terms {
        principal: d("50000.00"),
        annual_rate: d("0.245"),
        periods: 6,
        start: date!(2026 - 01 - 31),
        day_count: DayCount::Actual365,
        repayment: Repayment::Annuity,
    };
    assert_eq!(
        rows(&terms),
        expect(&[
            ("2026-02-28", "8938.85", "7999.12", "939.73", "42000.88"),
            ("2026-03-31", "8938.85", "8064.89", "873.96", "33935.99"),
            ("2026-04-30", "8938.85", "8255.48", "683.37", "25680.51"),
            ("2026-05-31", "8938.85", "8404.48", "534.37", "17276.03"),
            ("2026-06-30", "8938.85", "8590.96", "347.89", "8685.07"),
            ("2026-07-31", "8865.79", "8685.07", "180.72", "0.00"),
        ])
    );
}

#[test]
fn bullet_actual_365() {
    let terms = Terms {
        principal: d("30000.00"),
        annual_rate: d("0.18"),
        periods: 3,
        start: date!(2026 - 03 - 10),
        day_count: DayCount::Actual365,
        repayment: Repayment::Bullet,
    };
    assert_eq!(
        rows(&terms),
        expect(&[("2026-06-10", "31361.10", "30000.00", "1361.10", "0.00")])
    );
}

#[test]
fn refused_terms_have_codes() {
    let base = Terms {
        principal: d("1000.00"),
        annual_rate: d("0.1"),
        periods: 12,
        start: date!(2026 - 01 - 01),
        day_count: DayCount::Thirty360,
        repayment: Repayment::Annuity,
    };
    let code = |t: Terms| schedule(&t).map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        code(Terms {
            principal: d("0"),
            ..base.clone()
        }),
        Err("schedule_principal")
    );
    assert_eq!(
        code(Terms {
            principal: d("10.001"),
            ..base.clone()
        }),
        Err("schedule_principal")
    );
    assert_eq!(
        code(Terms {
            annual_rate: d("-0.01"),
            ..base.clone()
        }),
        Err("schedule_rate")
    );
    assert_eq!(
        code(Terms {
            periods: 0,
            ..base.clone()
        }),
        Err("schedule_periods")
    );
    assert_eq!(
        code(Terms {
            periods: 601,
            ..base.clone()
        }),
        Err("schedule_periods")
    );
    assert_eq!(
        code(Terms {
            annual_rate: d("0"),
            ..base
        }),
        Ok(())
    );
}

proptest! {
    /// Whatever the terms, the principal parts sum to the principal exactly, the balance ends
    /// at zero, nothing is negative, and an annuity's payments are level but the last.
    #[test]
    fn the_principal_is_repaid_exactly(
        kopecks in 100i64..10_000_000_000,
        rate_bp in 0i64..20_000,
        periods in 1u32..120,
        day in 1u8..=31,
        actual in any::<bool>(),
        bullet in any::<bool>(),
    ) {
        let start = time::Date::from_calendar_date(2026, time::Month::January, day.min(28)).unwrap();
        let terms = Terms {
            principal: Decimal::new(kopecks, 2),
            annual_rate: Decimal::new(rate_bp, 4),
            periods,
            start,
            day_count: if actual { DayCount::Actual365 } else { DayCount::Thirty360 },
            repayment: if bullet { Repayment::Bullet } else { Repayment::Annuity },
        };
        let s = schedule(&terms).unwrap();
        let repaid: Decimal = s.iter().map(|i| i.principal).sum();
        prop_assert_eq!(repaid, terms.principal);
        prop_assert_eq!(s.last().unwrap().balance, Decimal::ZERO);
        for i in &s {
            prop_assert!(i.principal >= Decimal::ZERO && i.interest >= Decimal::ZERO);
            prop_assert_eq!(i.payment, i.principal + i.interest);
            prop_assert!(i.principal.scale() <= 2 && i.interest.scale() <= 2);
        }
        if !bullet && s.len() > 2 {
            // Level, except an instalment whose interest alone passed the level payment (a long
            // month under actual/365 at a high rate): it pays that interest and no principal.
            let but_last = &s[..s.len() - 1];
            let paying: Vec<_> = but_last.iter().filter(|i| i.principal > Decimal::ZERO).collect();
            if let Some(first) = paying.first() {
                prop_assert!(paying.iter().all(|i| i.payment == first.payment || i.balance == Decimal::ZERO));
            }
        }
        prop_assert_eq!(s.len(), if bullet { 1 } else { periods as usize });
    }
}
