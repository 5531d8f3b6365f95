//! Credit-history events for the credit bureaus (seed 000 §6.6.5–6.6.6: events of the
//! client's applications and loans), in the event codes of the bureaus' unified format (Bank
//! of Russia Regulation 758-P): what a loan or application event reports, the day's report
//! file they are assembled into (a documented, versioned line format), and the upload
//! deadline — no later than the end of the second business day after the event (218-FZ
//! art. 5 part 5), weekends and configured holidays skipped.
//!
//! ## File format `ETR-BKI` version 1
//!
//! UTF-8 text, `\n` line ends, fields separated by `;`; inside a field `\` is written `\\`,
//! `;` is `\;` and a line end `\n`. Amounts are roubles with two decimals; dates ISO 8601.
//!
//! ```text
//! H;ETR-BKI;1;<bureau>;<report day>;<records>
//! R;<code>;<event id>;<obligation uid>;<event day>;<deadline>;<last name>;<first name>;
//!   <middle name>;<birth date>;<passport>;<INN>;<SNILS>;<amount>;<currency>;<PSK %>;
//!   <average monthly payment>;<debt>;<overdue>;<paid>;<detail>      (one line)
//! T;<records>
//! ```
//!
//! Empty fields are empty strings. The file's SHA-256, detached signature and encryption are
//! the report crypto's (`ports::ReportCrypto`).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, Duration, Weekday};
use uuid::Uuid;

use crate::{application, loan};

/// The format's name and version in the header line.
pub const FORMAT: &str = "ETR-BKI";
pub const VERSION: u32 = 1;

/// A credit-history event code of the unified format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Code {
    /// 1.1 — the application was made.
    ApplicationMade,
    /// 1.2 — the application was approved (an offer made).
    ApplicationApproved,
    /// 1.3 — the application was refused.
    ApplicationRefused,
    /// 1.4 — the deal was concluded (the loan issued).
    DealConcluded,
    /// 2.1 — the terms of the obligation changed (a prolongation).
    TermsChanged,
    /// 2.3 — the debt changed: a payment, or an overdue.
    DebtChanged,
    /// 2.5 — the obligation ended (repaid in full).
    ObligationEnded,
}

impl Code {
    /// The code as the format writes it, e.g. `1.4`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::ApplicationMade => "1.1",
            Code::ApplicationApproved => "1.2",
            Code::ApplicationRefused => "1.3",
            Code::DealConcluded => "1.4",
            Code::TermsChanged => "2.1",
            Code::DebtChanged => "2.3",
            Code::ObligationEnded => "2.5",
        }
    }

    /// The code of its text (`1.4`), `None` for an unknown one.
    pub fn parse(text: &str) -> Option<Code> {
        [
            Code::ApplicationMade,
            Code::ApplicationApproved,
            Code::ApplicationRefused,
            Code::DealConcluded,
            Code::TermsChanged,
            Code::DebtChanged,
            Code::ObligationEnded,
        ]
        .into_iter()
        .find(|c| c.as_str() == text)
    }
}

/// What a client's application event reports to the bureaus, if anything.
pub fn application_code(event: &application::Event) -> Option<Code> {
    use application::Event as A;
    match event {
        A::ApplicationSubmitted { .. } => Some(Code::ApplicationMade),
        A::ApplicationApproved { .. } => Some(Code::ApplicationApproved),
        A::ApplicationDeclined { .. } => Some(Code::ApplicationRefused),
        _ => None,
    }
}

/// What a loan event reports to the bureaus, if anything: a day's accrual is not reported
/// by itself (the debt it changed goes out with the next payment or overdue), a change of
/// schedule or of accrual is a change of terms.
pub fn loan_code(event: &loan::Event) -> Option<Code> {
    use loan::Event as L;
    Some(match event {
        L::LoanIssued { .. } => Code::DealConcluded,
        L::LoanProlonged { .. }
        | L::TermExtended { .. }
        | L::AccrualStopped { .. }
        | L::AccrualResumed { .. } => Code::TermsChanged,
        L::RepaymentAccepted { .. } | L::LoanBecameOverdue | L::RepaymentAllocated { .. } => {
            Code::DebtChanged
        }
        L::LoanRepaid | L::LoanClosed { .. } | L::LoanWrittenOff { .. } => Code::ObligationEnded,
        L::InterestAccrued { .. }
        | L::CardRepaymentRequested { .. }
        | L::CardRepaymentDeclined { .. } => return None,
    })
}

/// The subject's title data (decrypted from the client's sealed personal data by the
/// builder; never stored in this form).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub birth_date: Option<Date>,
    /// Series and number.
    pub passport: String,
    pub inn: Option<String>,
    pub snils: Option<String>,
}

/// The obligation's block. Amounts in roubles with kopecks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Obligation {
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
    /// The full cost of credit, percent a year (3 decimals).
    pub psk_percent: Option<Decimal>,
    pub average_monthly_payment: Option<Decimal>,
    pub debt: Option<Decimal>,
    pub overdue: Option<Decimal>,
    /// Paid by this event (a repayment's amount).
    pub paid: Option<Decimal>,
}

/// One credit-history event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub code: Code,
    /// The platform event it reports (unique: a record is sent once, corrected under it).
    pub event_id: Uuid,
    /// The application's or the loan's id: the obligation's unique id at the bureau.
    pub uid: Uuid,
    pub event_day: Date,
    pub deadline: Date,
    pub subject: Subject,
    pub obligation: Option<Obligation>,
    /// Free text: a refusal's reason, a prolongation's days.
    pub detail: String,
}

/// The average monthly payment of a schedule (758-P: the sum of payments over the term in
/// months, at least one), rounded to kopecks half-to-even.
pub fn average_monthly_payment(
    start: Date,
    instalments: &[crate::schedule::Instalment],
) -> Option<Decimal> {
    let last = instalments.last()?;
    let total: Decimal = instalments.iter().map(|i| i.payment).sum();
    // Calendar months of the term, a part month counting whole (a 20-day payday loan
    // counts one month).
    let end = last.date;
    let mut months = (end.year() - start.year()) * 12 + i32::from(u8::from(end.month()))
        - i32::from(u8::from(start.month()));
    if end.day() > start.day() {
        months += 1;
    }
    let months = Decimal::from(months.max(1));
    Some(crate::money::round_minor(
        total / months,
        crate::money::Currency::Rub,
    ))
}

/// The last day on which an event of `event_day` may be uploaded: the end of the second
/// business day after it; Saturdays, Sundays and `holidays` are not business days.
pub fn deadline(event_day: Date, holidays: &BTreeSet<Date>) -> Date {
    let mut day = event_day;
    let mut business = 0;
    while business < 2 {
        day += Duration::days(1);
        let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        if !weekend && !holidays.contains(&day) {
            business += 1;
        }
    }
    day
}

/// Whether a record uploaded on `uploaded_on` was late.
pub fn is_late(record: &Record, uploaded_on: Date) -> bool {
    uploaded_on > record.deadline
}

fn escape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    for c in field.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Splits a line into its fields, undoing the escapes.
pub fn split_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => fields.last_mut().map_or((), |f| f.push('\n')),
                Some(other) => fields.last_mut().map_or((), |f| f.push(other)),
                None => {}
            },
            ';' => fields.push(String::new()),
            c => fields.last_mut().map_or((), |f| f.push(c)),
        }
    }
    fields
}

fn amount(v: Option<Decimal>) -> String {
    v.map(|d| {
        let mut d = crate::money::round_minor(d, crate::money::Currency::Rub);
        d.rescale(2);
        d.to_string()
    })
    .unwrap_or_default()
}

/// The day's report file for `bureau`, records in the order given.
pub fn render(bureau: &str, report_day: Date, records: &[Record]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "H;{FORMAT};{VERSION};{};{report_day};{}",
        escape(bureau),
        records.len()
    );
    for r in records {
        let s = &r.subject;
        let o = r.obligation.clone().unwrap_or_default();
        let has = r.obligation.is_some();
        let fields = [
            "R".to_owned(),
            r.code.as_str().to_owned(),
            r.event_id.to_string(),
            r.uid.to_string(),
            r.event_day.to_string(),
            r.deadline.to_string(),
            escape(&s.last_name),
            escape(&s.first_name),
            escape(s.middle_name.as_deref().unwrap_or_default()),
            s.birth_date.map(|d| d.to_string()).unwrap_or_default(),
            escape(&s.passport),
            escape(s.inn.as_deref().unwrap_or_default()),
            escape(s.snils.as_deref().unwrap_or_default()),
            if has {
                amount(Some(o.amount))
            } else {
                String::new()
            },
            escape(&o.currency),
            o.psk_percent.map(|p| p.to_string()).unwrap_or_default(),
            amount(o.average_monthly_payment),
            amount(o.debt),
            amount(o.overdue),
            amount(o.paid),
            escape(&r.detail),
        ];
        let _ = writeln!(out, "{}", fields.join(";"));
    }
    let _ = writeln!(out, "T;{}", records.len());
    out
}
