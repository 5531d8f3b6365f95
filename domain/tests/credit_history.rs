//! Credit-history records (`etr_domain::credit_history`): event codes, upload deadlines over
//! weekends and holidays, and the `ETR-BKI` v1 file format.

use etr_domain::credit_history::{self, Code, Obligation, Record, Subject};
use etr_domain::{loan, Currency, Money};
use rust_decimal_macros::dec;
use std::collections::BTreeSet;
use time::macros::date;
use uuid::Uuid;

#[test]
fn loan_events_map_to_their_codes() {
    let rub = |a| Money::new(a, Currency::Rub);
    let cases = [
        (
            loan::Event::RepaymentAccepted {
                repayment_id: Uuid::nil(),
                amount: rub(dec!(100)),
            },
            "2.3",
        ),
        (loan::Event::LoanBecameOverdue, "2.3"),
        (
            loan::Event::LoanProlonged {
                days: 10,
                fee: rub(dec!(0)),
            },
            "2.1",
        ),
        (loan::Event::LoanRepaid, "2.5"),
    ];
    for (event, code) in cases {
        assert_eq!(
            credit_history::loan_code(&event).map(Code::as_str),
            Some(code)
        );
    }
}

#[test]
fn the_deadline_is_the_end_of_the_second_business_day_after() {
    let none = BTreeSet::new();
    // Wednesday → Friday; Friday → Tuesday; Saturday → Tuesday.
    assert_eq!(
        credit_history::deadline(date!(2026 - 12 - 02), &none),
        date!(2026 - 12 - 04)
    );
    assert_eq!(
        credit_history::deadline(date!(2026 - 12 - 04), &none),
        date!(2026 - 12 - 08)
    );
    assert_eq!(
        credit_history::deadline(date!(2026 - 12 - 05), &none),
        date!(2026 - 12 - 08)
    );
    // New Year holidays: 2026-12-31 (Thu) → the first business days are 2027-01-11, 12.
    let holidays: BTreeSet<_> = (1..=8)
        .map(|d| time::Date::from_calendar_date(2027, time::Month::January, d).unwrap())
        .collect();
    assert_eq!(
        credit_history::deadline(date!(2026 - 12 - 31), &holidays),
        date!(2027 - 01 - 12)
    );
}

fn record(detail: &str) -> Record {
    Record {
        code: Code::DealConcluded,
        event_id: Uuid::from_u128(1),
        uid: Uuid::from_u128(2),
        event_day: date!(2026 - 12 - 04),
        deadline: date!(2026 - 12 - 08),
        subject: Subject {
            last_name: "Смирнова".into(),
            first_name: "Анна".into(),
            middle_name: Some("Игоревна".into()),
            birth_date: Some(date!(1990 - 01 - 15)),
            passport: "4510 123456".into(),
            inn: Some("500100732259".into()),
            snils: None,
        },
        obligation: Some(Obligation {
            amount: dec!(10000),
            currency: "RUB".into(),
            psk_percent: Some(dec!(292.000)),
            average_monthly_payment: Some(dec!(12400.5)),
            debt: Some(dec!(10000)),
            overdue: None,
            paid: None,
        }),
        detail: detail.into(),
    }
}

#[test]
fn a_report_file_has_its_header_records_and_trailer() {
    let file = credit_history::render("nbki", date!(2026 - 12 - 05), &[record("")]);
    let lines: Vec<&str> = file.lines().collect();
    assert_eq!(lines[0], "H;ETR-BKI;1;nbki;2026-12-05;1");
    assert_eq!(
        lines[1],
        "R;1.4;00000000-0000-0000-0000-000000000001;00000000-0000-0000-0000-000000000002;\
         2026-12-04;2026-12-08;Смирнова;Анна;Игоревна;1990-01-15;4510 123456;500100732259;;\
         10000.00;RUB;292.000;12400.50;10000.00;;;"
    );
    assert_eq!(lines[2], "T;1");
    assert!(record("").deadline >= record("").event_day);
    assert!(credit_history::is_late(&record(""), date!(2026 - 12 - 09)));
    assert!(!credit_history::is_late(&record(""), date!(2026 - 12 - 08)));
}

#[test]
fn separators_inside_a_field_are_escaped_and_read_back() {
    let detail = "refused; reason:\nscore \\ low";
    let file = credit_history::render("okb", date!(2026 - 12 - 05), &[record(detail)]);
    let line = file.lines().nth(1).unwrap();
    let fields = credit_history::split_line(line);
    assert_eq!(fields.len(), 21);
    assert_eq!(fields[20], detail);
    assert_eq!(fields[6], "Смирнова");
}

#[test]
fn the_average_monthly_payment_divides_the_payments_by_the_terms_months() {
    use etr_domain::schedule::{self, DayCount, Repayment, Terms};
    let start = date!(2026 - 05 - 01);
    let instalments = schedule::schedule(&Terms {
        principal: dec!(60000.00),
        annual_rate: dec!(0.18),
        periods: 6,
        start,
        day_count: DayCount::Thirty360,
        repayment: Repayment::EqualPrincipal,
    })
    .unwrap();
    // 10,900 + 10,750 + … + 10,150 = 63,150.00 over six months.
    assert_eq!(
        credit_history::average_monthly_payment(start, &instalments),
        Some(dec!(10525.00))
    );
    // A payday loan of 20 days counts one month.
    let payday = [schedule::Instalment {
        number: 1,
        date: date!(2026 - 05 - 21),
        days: 20,
        payment: dec!(11600.00),
        principal: dec!(10000.00),
        interest: dec!(1600.00),
        balance: dec!(0),
    }];
    assert_eq!(
        credit_history::average_monthly_payment(start, &payday),
        Some(dec!(11600.00))
    );
}
