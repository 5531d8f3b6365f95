//! Typed parameters of a loan agreement.
//!
//! Every amount arrives already formatted (two decimals, the caller's
//! thousands separator and decimal mark): this crate prints what it is given
//! and computes nothing. Templates see these structures under the same field
//! names, e.g. `{{ client.full_name }}` or `{% for row in schedule %}`.

use serde::Serialize;

/// Everything a contract template may print.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContractParams {
    /// Contract number as printed on the agreement.
    pub contract_number: String,
    /// Date the contract is concluded, ISO 8601 (`2026-03-15`).
    pub contract_date: String,
    /// The borrower.
    pub client: Client,
    /// The lender.
    pub lender: Lender,
    /// The individual terms of the loan.
    pub offer: Offer,
    /// Payment schedule, one row per instalment in payment order.
    pub schedule: Vec<ScheduleRow>,
}

/// The borrower as identified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Client {
    /// Surname, given name and patronymic.
    pub full_name: String,
    /// Date of birth, ISO 8601.
    pub birth_date: String,
    /// Passport series, number, issuer and date of issue, as one line.
    pub passport: String,
    /// Registration address.
    pub address: String,
    /// Mobile phone the one-time signing code is sent to.
    pub phone: String,
}

/// The lender's registration details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lender {
    /// Full legal name.
    pub name: String,
    /// Primary state registration number (ОГРН).
    pub ogrn: String,
    /// Taxpayer identification number (ИНН).
    pub inn: String,
    /// Legal address.
    pub address: String,
}

/// Individual terms of the loan, formatted by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Offer {
    /// Principal, two decimals.
    pub amount: String,
    /// Currency as printed (`RUB`, `руб.`).
    pub currency: String,
    /// Term of the loan in days.
    pub term_days: u32,
    /// Interest rate as printed (`0,8 % в день (292,000 % годовых)`).
    pub rate_text: String,
    /// Full cost of credit (ПСК) in percent per annum, three decimals.
    pub psk_percent: String,
    /// Full cost of credit (ПСК) in money, two decimals.
    pub psk_money: String,
    /// Total the borrower repays over the schedule, two decimals.
    pub total_to_repay: String,
}

/// One instalment of the payment schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScheduleRow {
    /// Ordinal number of the instalment, from 1.
    pub number: u32,
    /// Due date, ISO 8601.
    pub date: String,
    /// Instalment amount.
    pub payment: String,
    /// Part of the instalment repaying principal.
    pub principal: String,
    /// Part of the instalment paying interest.
    pub interest: String,
    /// Principal outstanding after the instalment.
    pub balance: String,
}
