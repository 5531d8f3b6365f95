//! Offers from products: schedule, PSK and caps together. Expected figures are worked by
//! hand from 353-FZ art. 6 and the caps of DESIGN.md "Money and time" (each noted).

use etr_domain::product::{offer, Pricing, Product};
use etr_domain::schedule::{DayCount, Repayment};
use rust_decimal_macros::dec;
use time::macros::date;

fn payday() -> Product {
    Product {
        id: "payday".into(),
        name: "До зарплаты".into(),
        min_amount: dec!(1000),
        max_amount: dec!(30000),
        pricing: Pricing::Daily {
            daily_rate: dec!(0.008),
            min_days: 7,
            max_days: 180,
        },
        penalty_rate: rust_decimal::Decimal::new(20, 2),
        prolongation_fee: rust_decimal::Decimal::ZERO,
    }
}

fn instalment_loan() -> Product {
    Product {
        id: "instalment".into(),
        name: "Потребительский".into(),
        min_amount: dec!(10000),
        max_amount: dec!(500000),
        pricing: Pricing::Monthly {
            annual_rate: dec!(0.12),
            min_months: 3,
            max_months: 60,
            day_count: DayCount::Thirty360,
            repayment: Repayment::Annuity,
        },
        penalty_rate: rust_decimal::Decimal::new(20, 2),
        prolongation_fee: rust_decimal::Decimal::ZERO,
    }
}

#[test]
fn a_payday_offer() {
    // 10,000 for 10 days at 0.8 %/day: 800.00 interest; PSK 0.08 × 36.5 × 100 = 292.000 %.
    let o = offer(&payday(), dec!(10000.00), 10, date!(2026 - 05 - 01)).unwrap();
    assert_eq!(o.instalments.len(), 1);
    assert_eq!(o.instalments[0].date, date!(2026 - 05 - 11));
    assert_eq!(o.instalments[0].payment, dec!(10800.00));
    assert_eq!(o.charges, dec!(800.00));
    assert_eq!(o.psk.percent.to_string(), "292.000");
    assert_eq!(o.psk.money, dec!(800.00));
    // 30 days: a month-long interval, so the base period is the month: e = 30 ÷ (365/12),
    // i = 0.24 ÷ e, PSK = i × 12 × 100 = 292.000 % again.
    let o = offer(&payday(), dec!(10000.00), 30, date!(2026 - 05 - 01)).unwrap();
    assert_eq!(o.psk.percent.to_string(), "292.000");
}

#[test]
fn an_instalment_offer() {
    // The 100,000 / 12 % / 12 months schedule of the schedule tests: PSK 12.000 %.
    let o = offer(
        &instalment_loan(),
        dec!(100000.00),
        12,
        date!(2026 - 01 - 15),
    )
    .unwrap();
    assert_eq!(o.instalments[0].payment, dec!(8884.88));
    assert_eq!(o.charges, dec!(6618.53));
    assert_eq!(o.psk.percent.to_string(), "12.000");
}

#[test]
fn offers_that_break_a_cap_are_never_made() {
    let code = |r: Result<_, etr_domain::product::OfferError>| r.map(|_| ()).map_err(|e| e.code());
    // 150 days at 0.8 %/day = 120 % of principal: within 130 % for a contract of 2026-03-31,
    // above 100 % from 2026-04-01.
    assert_eq!(
        code(offer(&payday(), dec!(10000), 150, date!(2026 - 03 - 31))),
        Ok(())
    );
    assert_eq!(
        code(offer(&payday(), dec!(10000), 150, date!(2026 - 04 - 01))),
        Err("overpayment_cap")
    );
    // 125 days = 100 % exactly: allowed from 2026-04-01.
    assert_eq!(
        code(offer(&payday(), dec!(10000), 125, date!(2026 - 04 - 01))),
        Ok(())
    );
    // 1 %/day is above the daily cap whatever the term.
    let mut greedy = payday();
    greedy.pricing = Pricing::Daily {
        daily_rate: dec!(0.01),
        min_days: 7,
        max_days: 30,
    };
    assert_eq!(
        code(offer(&greedy, dec!(10000), 7, date!(2026 - 05 - 01))),
        Err("daily_rate_cap")
    );
}

#[test]
fn amounts_and_terms_outside_the_product() {
    let code = |r: Result<_, etr_domain::product::OfferError>| r.map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        code(offer(&payday(), dec!(999.99), 10, date!(2026 - 05 - 01))),
        Err("offer_amount")
    );
    assert_eq!(
        code(offer(&payday(), dec!(30000.01), 10, date!(2026 - 05 - 01))),
        Err("offer_amount")
    );
    assert_eq!(
        code(offer(&payday(), dec!(5000), 6, date!(2026 - 05 - 01))),
        Err("offer_term")
    );
    assert_eq!(
        code(offer(
            &instalment_loan(),
            dec!(50000),
            61,
            date!(2026 - 05 - 01)
        )),
        Err("offer_term")
    );
}
