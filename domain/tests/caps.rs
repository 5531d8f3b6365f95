//! The cost caps by contract date (353-FZ art. 5 parts 23–24; DESIGN.md "Money and time").

use etr_domain::caps::{check, max_charges, overpayment_cap};
use etr_domain::schedule::{schedule, total_interest, DayCount, Repayment, Terms};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use time::macros::date;

#[test]
fn the_overpayment_cap_changes_on_2026_04_01() {
    assert_eq!(overpayment_cap(date!(2026 - 03 - 31)), dec!(1.3));
    assert_eq!(overpayment_cap(date!(2026 - 04 - 01)), dec!(1));
    assert_eq!(
        max_charges(dec!(10000.00), date!(2026 - 03 - 31)),
        dec!(13000.00)
    );
    assert_eq!(
        max_charges(dec!(10000.00), date!(2026 - 04 - 01)),
        dec!(10000.00)
    );
    // Rounded down: the cap is never passed by a kopeck.
    assert_eq!(max_charges(dec!(0.99), date!(2026 - 03 - 01)), dec!(1.28));
}

#[test]
fn offers_at_and_over_the_caps() {
    let code = |r: Result<(), etr_domain::caps::CapError>| r.map_err(|e| e.code());
    // 0.8 %/day exactly is allowed, a hair above is not.
    assert_eq!(
        code(check(
            date!(2026 - 05 - 01),
            dec!(10000),
            dec!(0.008),
            dec!(800)
        )),
        Ok(())
    );
    assert_eq!(
        code(check(
            date!(2026 - 05 - 01),
            dec!(10000),
            dec!(0.0080001),
            dec!(800)
        )),
        Err("daily_rate_cap")
    );
    // Charges equal to the cap pass; one kopeck more does not; the date decides the cap.
    assert_eq!(
        code(check(
            date!(2026 - 03 - 31),
            dec!(10000),
            dec!(0.008),
            dec!(13000.00)
        )),
        Ok(())
    );
    assert_eq!(
        code(check(
            date!(2026 - 03 - 31),
            dec!(10000),
            dec!(0.008),
            dec!(13000.01)
        )),
        Err("overpayment_cap")
    );
    assert_eq!(
        code(check(
            date!(2026 - 04 - 01),
            dec!(10000),
            dec!(0.008),
            dec!(13000.00)
        )),
        Err("overpayment_cap")
    );
}

#[test]
fn a_year_at_0_8_percent_a_day_breaks_the_cap_and_a_quarter_does_not() {
    // 292 % a year (0.8 %/day) annuity: 12 months cost more than the principal, 3 do not.
    let terms = |periods| Terms {
        principal: dec!(10000.00),
        annual_rate: dec!(2.92),
        periods,
        start: date!(2026 - 05 - 01),
        day_count: DayCount::Actual365,
        repayment: Repayment::Annuity,
    };
    let charges = |periods| total_interest(&schedule(&terms(periods)).unwrap());
    let daily = dec!(2.92) / Decimal::from(365);
    assert!(check(date!(2026 - 05 - 01), dec!(10000.00), daily, charges(3)).is_ok());
    assert_eq!(
        check(date!(2026 - 05 - 01), dec!(10000.00), daily, charges(12)).map_err(|e| e.code()),
        Err("overpayment_cap")
    );
}
