//! PDN (Bank of Russia 6579-U) from offers. Figures worked by hand (noted per case).

use etr_domain::pdn::{pdn, Verdict};
use etr_domain::product::{offer, Pricing, Product};
use etr_domain::schedule::{DayCount, Repayment};
use rust_decimal_macros::dec;
use time::macros::date;

fn monthly() -> Product {
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
fn an_annuity_borrower() {
    // Payments 11 × 8,884.88 + 8,884.85 = 106,618.53 over 12 months: 8,884.88 a month
    // (8,884.8775 rounded half-to-even). With 20,000 of other payments and 60,000 of income:
    // 28,884.88 ÷ 60,000 = 48.14… % → 48.1 %, acceptable.
    let o = offer(&monthly(), dec!(100000.00), 12, date!(2026 - 01 - 15)).unwrap();
    let p = pdn(dec!(60000), dec!(20000), &o.instalments, 365, dec!(80)).unwrap();
    assert_eq!(p.new_loan_monthly, dec!(8884.88));
    assert_eq!(p.monthly_payments, dec!(28884.88));
    assert_eq!(p.percent.to_string(), "48.1");
    assert_eq!(p.verdict, Verdict::Acceptable);
    // 25,000 of other payments: 33,884.88 ÷ 60,000 = 56.5 %: a risk notice; with a limit of
    // 55 % a decline.
    let p = pdn(dec!(60000), dec!(25000), &o.instalments, 365, dec!(80)).unwrap();
    assert_eq!(
        (p.percent.to_string().as_str(), p.verdict),
        ("56.5", Verdict::RiskNotice)
    );
    let p = pdn(dec!(60000), dec!(25000), &o.instalments, 365, dec!(55)).unwrap();
    assert_eq!(p.verdict, Verdict::Decline);
}

#[test]
fn a_payday_borrower_pays_the_whole_repayment_in_one_month() {
    let payday = Product {
        id: "payday".into(),
        name: "До зарплаты".into(),
        min_amount: dec!(1000),
        max_amount: dec!(30000),
        pricing: Pricing::Daily {
            daily_rate: dec!(0.008),
            min_days: 7,
            max_days: 60,
        },
        penalty_rate: rust_decimal::Decimal::new(20, 2),
        prolongation_fee: rust_decimal::Decimal::ZERO,
    };
    // 10,000 for 15 days: 11,200.00 in one month; income 40,000: 28.0 %.
    let o = offer(&payday, dec!(10000), 15, date!(2026 - 05 - 01)).unwrap();
    let p = pdn(dec!(40000), dec!(0), &o.instalments, 15, dec!(80)).unwrap();
    assert_eq!(
        (p.new_loan_monthly, p.percent.to_string()),
        (dec!(11200.00), "28.0".into())
    );
    // 45 days: 13,600.00 over 2 months = 6,800.00 a month: 17.0 %.
    let o = offer(&payday, dec!(10000), 45, date!(2026 - 05 - 01)).unwrap();
    let p = pdn(dec!(40000), dec!(0), &o.instalments, 45, dec!(80)).unwrap();
    assert_eq!(
        (p.new_loan_monthly, p.percent.to_string()),
        (dec!(6800.00), "17.0".into())
    );
}

#[test]
fn refusals() {
    let o = offer(&monthly(), dec!(100000.00), 12, date!(2026 - 01 - 15)).unwrap();
    let code = |r: Result<_, etr_domain::pdn::PdnError>| r.map(|_| ()).map_err(|e| e.code());
    assert_eq!(
        code(pdn(dec!(0), dec!(0), &o.instalments, 365, dec!(80))),
        Err("pdn_income")
    );
    assert_eq!(
        code(pdn(dec!(1000), dec!(-1), &o.instalments, 365, dec!(80))),
        Err("pdn_payments")
    );
    assert_eq!(
        code(pdn(dec!(1000), dec!(0), &[], 365, dec!(80))),
        Err("pdn_schedule")
    );
}
