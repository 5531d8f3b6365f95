//! Contract parameters for the tests.

use etr_documents::{Client, ContractParams, Lender, Offer, ScheduleRow};

/// Kopecks as `12 345,67` with no-break spaces between thousands.
pub fn rub(kopecks: i64) -> String {
    let rubles = (kopecks / 100).to_string();
    let mut grouped = String::new();
    for (i, ch) in rubles.chars().enumerate() {
        if i > 0 && (rubles.len() - i).is_multiple_of(3) {
            grouped.push('\u{a0}');
        }
        grouped.push(ch);
    }
    format!("{grouped},{:02}", kopecks % 100)
}

/// An annuity-like schedule of `rows` monthly payments on 120 000,00.
pub fn params(rows: u32) -> ContractParams {
    let principal_total: i64 = 12_000_000;
    let mut balance = principal_total;
    let per_row = principal_total / i64::from(rows);
    let mut total = 0;
    let mut schedule = Vec::new();
    for number in 1..=rows {
        let interest = balance * 2 / 100;
        let principal = if number == rows { balance } else { per_row };
        balance -= principal;
        total += principal + interest;
        let month = (number - 1) % 12 + 1;
        let year = 2026 + (number - 1) / 12;
        schedule.push(ScheduleRow {
            number,
            date: format!("{year}-{month:02}-15"),
            payment: rub(principal + interest),
            principal: rub(principal),
            interest: rub(interest),
            balance: rub(balance),
        });
    }
    ContractParams {
        contract_number: "ЗМ-2026-000123".to_owned(),
        contract_date: "2025-12-15".to_owned(),
        client: Client {
            full_name: "Иванова Мария Сергеевна".to_owned(),
            birth_date: "1990-04-21".to_owned(),
            passport:
                "45 10 123456, выдан ОВД «Тверской» г. Москвы 12.05.2010, код подразделения 770-001"
                    .to_owned(),
            address: "125009, г. Москва, ул. Тверская, д. 7, кв. 15".to_owned(),
            phone: "+7 916 123-45-67".to_owned(),
        },
        lender: Lender {
            name: "ООО МКК «Пример Финанс»".to_owned(),
            ogrn: "1207700000001".to_owned(),
            inn: "7700000001".to_owned(),
            address: "123112, г. Москва, Пресненская наб., д. 12, офис 301".to_owned(),
        },
        offer: Offer {
            amount: rub(principal_total),
            currency: "руб.".to_owned(),
            term_days: rows * 30,
            rate_text: "24,000 % годовых".to_owned(),
            psk_percent: "26,824".to_owned(),
            psk_money: rub(total - principal_total),
            total_to_repay: rub(total),
        },
        schedule,
    }
}
