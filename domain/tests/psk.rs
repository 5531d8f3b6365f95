//! PSK (353-FZ art. 6) against independently computed vectors.
//!
//! Where the vectors come from: a separate program (Python 3.11 with exact
//! `fractions.Fraction` arithmetic and bisection) written from the rules in the `psk`
//! module's documentation, not from this crate's code. The two payday figures are also what
//! the formula gives by hand: 0.8 %/day over 10 days is i = 0.08 per 10-day base period,
//! × 36.5 × 100 = 292.000 %; 1 %/day over 7 days is 0.07 × 365/7 × 100 = 365.000 %.

use etr_domain::psk::{psk, BasePeriod, Flow};
use etr_domain::schedule::add_months;
use rust_decimal::Decimal;
use std::str::FromStr;
use time::macros::date;
use time::Date;

fn flow(date: Date, amount: &str) -> Flow {
    Flow {
        date,
        amount: Decimal::from_str(amount).unwrap(),
    }
}

fn percent(flows: &[Flow]) -> (String, String) {
    let p = psk(flows).unwrap();
    (p.percent.to_string(), p.money.to_string())
}

#[test]
fn payday_loans() {
    let ten = [
        flow(date!(2026 - 01 - 01), "-10000"),
        flow(date!(2026 - 01 - 11), "10800"),
    ];
    assert_eq!(percent(&ten), ("292.000".into(), "800".into()));
    assert_eq!(psk(&ten).unwrap().base_period, BasePeriod::Days(10));
    let seven = [
        flow(date!(2026 - 01 - 01), "-1000"),
        flow(date!(2026 - 01 - 08), "1070"),
    ];
    assert_eq!(percent(&seven), ("365.000".into(), "70".into()));
}

#[test]
fn annuities() {
    // The schedule of 100,000 at 12 % a year over 12 months, 30/360 (schedule.rs tests).
    let start = date!(2026 - 01 - 15);
    let mut flows = vec![flow(start, "-100000.00")];
    for k in 1..12 {
        flows.push(flow(add_months(start, k).unwrap(), "8884.88"));
    }
    flows.push(flow(date!(2027 - 01 - 15), "8884.85"));
    assert_eq!(percent(&flows), ("12.000".into(), "6618.53".into()));
    assert_eq!(psk(&flows).unwrap().base_period, BasePeriod::Month);

    // 50,000 at 24.5 % over 6 months from a month end, actual/365 (schedule.rs tests).
    let mut flows = vec![flow(date!(2026 - 01 - 31), "-50000.00")];
    for d in [
        date!(2026 - 02 - 28),
        date!(2026 - 03 - 31),
        date!(2026 - 04 - 30),
        date!(2026 - 05 - 31),
        date!(2026 - 06 - 30),
    ] {
        flows.push(flow(d, "8938.85"));
    }
    flows.push(flow(date!(2026 - 07 - 31), "8865.79"));
    assert_eq!(percent(&flows), ("24.039".into(), "3560.04".into()));
}

#[test]
fn a_fee_on_the_issue_day_counts() {
    let start = date!(2026 - 03 - 01);
    let mut flows = vec![flow(start, "-20000"), flow(start, "500")];
    for k in 1..=6 {
        flows.push(flow(add_months(start, k).unwrap(), "3500"));
    }
    assert_eq!(percent(&flows), ("25.912".into(), "1500".into()));
}

#[test]
fn refusals() {
    let code = |f: &[Flow]| psk(f).map(|_| ()).map_err(|e| e.code());
    let d1 = date!(2026 - 01 - 01);
    let d2 = date!(2026 - 02 - 01);
    assert_eq!(
        code(&[flow(d1, "-1000"), flow(d2, "900")]),
        Err("psk_no_cost")
    );
    assert_eq!(code(&[flow(d1, "-1000")]), Err("psk_flows"));
    assert_eq!(
        code(&[flow(d1, "1000"), flow(d2, "1100")]),
        Err("psk_flows")
    );
    assert_eq!(
        code(&[flow(d2, "-1000"), flow(d1, "1100")]),
        Err("psk_flows")
    );
    // A loan that costs nothing has a PSK of 0.
    assert_eq!(
        percent(&[flow(d1, "-1000"), flow(d2, "1000")]),
        ("0.000".into(), "0".into())
    );
}
