//! Export of the tabular reports to CSV and XLSX (seed 003, «ОТЧЕТНОСТЬ»: «Отчеты возможно
//! экспортировать в файлы форматов xls, csv»; the workbook is Office Open XML, `.xlsx`).
//!
//! **CSV** (the `csv` crate): comma-separated, a header line of snake_case column names,
//! amounts as exact decimal text with two places and a dot (`1234.50`), dates ISO
//! (`2026-11-30`); the turnover sheet ends with one `total` line per currency.
//! **XLSX** (`rust_xlsxwriter`): a title line, a header line (Russian, as the sheet is
//! printed), amounts as numbers with the number format `#,##0.00` and dates as dates. A
//! spreadsheet cell holds an IEEE double, so an amount there is the closest double to the
//! exact kopecks (exact when read back to two places for amounts up to 10^13).

use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, Workbook, Worksheet};

use crate::period::{format_offset, Period};
use crate::sheet::{DailyBalances, TurnoverSheet};
use crate::Error;

/// A file format of a tabular report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFormat {
    Csv,
    Xlsx,
}

impl TableFormat {
    /// `csv` or `xlsx`.
    ///
    /// Errors: [`Error::Invalid`] for anything else.
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "csv" => Ok(Self::Csv),
            "xlsx" => Ok(Self::Xlsx),
            other => Err(Error::Invalid(format!(
                "`{other}`: a table is exported as `csv` or `xlsx`"
            ))),
        }
    }

    /// The file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Xlsx => "xlsx",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        }
    }
}

/// An amount as exact text with two decimal places (`1234.50`, never `-0.00`).
pub fn amount(value: Decimal) -> String {
    let mut v = value.round_dp(2);
    if v.is_zero() {
        v = Decimal::ZERO;
    }
    v.rescale(2);
    v.to_string()
}

/// The turnover sheet as CSV: `wallet_id,client_id,currency,opening,debit,credit,closing,movements`,
/// then a `total` line per currency (wallet_id `total`, client_id the number of accounts).
///
/// Errors: [`Error::Csv`].
pub fn turnover_csv(sheet: &TurnoverSheet) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "wallet_id",
        "client_id",
        "currency",
        "opening",
        "debit",
        "credit",
        "closing",
        "movements",
    ])?;
    for r in &sheet.rows {
        w.write_record([
            r.wallet_id.to_string(),
            r.client_id.to_string(),
            r.currency.clone(),
            amount(r.opening),
            amount(r.debit),
            amount(r.credit),
            amount(r.closing),
            r.movements.to_string(),
        ])?;
    }
    for t in &sheet.totals {
        w.write_record([
            "total".to_owned(),
            t.accounts.to_string(),
            t.currency.clone(),
            amount(t.opening),
            amount(t.debit),
            amount(t.credit),
            amount(t.closing),
            t.movements.to_string(),
        ])?;
    }
    finish(w)
}

/// The daily balances as CSV:
/// `date,wallet_id,client_id,currency,opening,debit,credit,closing`, one line per account and
/// day.
///
/// Errors: [`Error::Csv`].
pub fn daily_csv(daily: &DailyBalances) -> Result<Vec<u8>, Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "date",
        "wallet_id",
        "client_id",
        "currency",
        "opening",
        "debit",
        "credit",
        "closing",
    ])?;
    for r in &daily.rows {
        w.write_record([
            r.date.to_string(),
            r.wallet_id.to_string(),
            r.client_id.to_string(),
            r.currency.clone(),
            amount(r.opening),
            amount(r.debit),
            amount(r.credit),
            amount(r.closing),
        ])?;
    }
    finish(w)
}

fn finish(w: csv::Writer<Vec<u8>>) -> Result<Vec<u8>, Error> {
    w.into_inner()
        .map_err(|e| Error::Csv(csv::Error::from(e.into_error())))
}

/// The name of the turnover sheet's worksheet.
pub const TURNOVER_SHEET_NAME: &str = "Оборотно-сальдовая ведомость";
/// The name of the daily balances' worksheet.
pub const DAILY_SHEET_NAME: &str = "Остатки за каждый день";

/// The row (0-based) of the header line in both workbooks; data starts on the next row.
pub const HEADER_ROW: u32 = 2;

/// The period as the title prints it: `01.11.2026 – 30.11.2026 (UTC+03:00)`.
pub fn period_title(period: &Period) -> String {
    let f = time::macros::format_description!("[day].[month].[year]");
    let show = |d: time::Date| d.format(&f).unwrap_or_else(|_| d.to_string());
    format!(
        "{} – {} (UTC{})",
        show(period.from()),
        show(period.to()),
        format_offset(period.offset())
    )
}

struct Formats {
    title: Format,
    header: Format,
    money: Format,
    money_bold: Format,
    bold: Format,
    date: Format,
}

fn formats() -> Formats {
    Formats {
        title: Format::new().set_bold().set_font_size(13),
        header: Format::new()
            .set_bold()
            .set_text_wrap()
            .set_align(FormatAlign::Center),
        money: Format::new().set_num_format("#,##0.00"),
        money_bold: Format::new().set_num_format("#,##0.00").set_bold(),
        bold: Format::new().set_bold(),
        date: Format::new().set_num_format("dd.mm.yyyy"),
    }
}

fn number(value: Decimal) -> f64 {
    value.round_dp(2).to_f64().unwrap_or(0.0)
}

fn headers(ws: &mut Worksheet, f: &Formats, names: &[&str], widths: &[f64]) -> Result<(), Error> {
    for (col, (name, width)) in names.iter().zip(widths).enumerate() {
        let col = u16::try_from(col).unwrap_or(u16::MAX);
        ws.write_string_with_format(HEADER_ROW, col, *name, &f.header)?;
        ws.set_column_width(col, *width)?;
    }
    Ok(())
}

/// The turnover sheet as an XLSX workbook with one worksheet ([`TURNOVER_SHEET_NAME`]): the
/// title, then from [`HEADER_ROW`] the columns wallet, client, currency, opening balance,
/// debit turnover, credit turnover, closing balance, movements, one row per account, then a
/// bold `Итого` row per currency.
///
/// Errors: [`Error::Xlsx`].
pub fn turnover_xlsx(sheet: &TurnoverSheet) -> Result<Vec<u8>, Error> {
    let f = formats();
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(TURNOVER_SHEET_NAME)?;
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Оборотно-сальдовая ведомость за {}",
            period_title(&sheet.period)
        ),
        &f.title,
    )?;
    headers(
        ws,
        &f,
        &[
            "Кошелёк",
            "Клиент",
            "Валюта",
            "Сальдо на начало",
            "Оборот по дебету",
            "Оборот по кредиту",
            "Сальдо на конец",
            "Операций",
        ],
        &[38.0, 38.0, 8.0, 18.0, 18.0, 18.0, 18.0, 10.0],
    )?;
    let mut row = HEADER_ROW + 1;
    for r in &sheet.rows {
        ws.write_string(row, 0, r.wallet_id.to_string())?;
        ws.write_string(row, 1, r.client_id.to_string())?;
        ws.write_string(row, 2, &r.currency)?;
        ws.write_number_with_format(row, 3, number(r.opening), &f.money)?;
        ws.write_number_with_format(row, 4, number(r.debit), &f.money)?;
        ws.write_number_with_format(row, 5, number(r.credit), &f.money)?;
        ws.write_number_with_format(row, 6, number(r.closing), &f.money)?;
        ws.write_number(row, 7, u32::try_from(r.movements).unwrap_or(u32::MAX))?;
        row += 1;
    }
    for t in &sheet.totals {
        ws.write_string_with_format(row, 0, "Итого", &f.bold)?;
        ws.write_string_with_format(row, 1, format!("счетов: {}", t.accounts), &f.bold)?;
        ws.write_string_with_format(row, 2, &t.currency, &f.bold)?;
        ws.write_number_with_format(row, 3, number(t.opening), &f.money_bold)?;
        ws.write_number_with_format(row, 4, number(t.debit), &f.money_bold)?;
        ws.write_number_with_format(row, 5, number(t.credit), &f.money_bold)?;
        ws.write_number_with_format(row, 6, number(t.closing), &f.money_bold)?;
        ws.write_number_with_format(
            row,
            7,
            u32::try_from(t.movements).unwrap_or(u32::MAX),
            &f.bold,
        )?;
        row += 1;
    }
    ws.set_freeze_panes(HEADER_ROW + 1, 0)?;
    Ok(book.save_to_buffer()?)
}

/// The daily balances as an XLSX workbook with one worksheet ([`DAILY_SHEET_NAME`]): the
/// title, then from [`HEADER_ROW`] the columns date, wallet, client, currency, opening
/// balance, debit, credit, closing balance; one row per account and day.
///
/// Errors: [`Error::Xlsx`].
pub fn daily_xlsx(daily: &DailyBalances) -> Result<Vec<u8>, Error> {
    let f = formats();
    let mut book = Workbook::new();
    let ws = book.add_worksheet();
    ws.set_name(DAILY_SHEET_NAME)?;
    ws.write_string_with_format(
        0,
        0,
        format!(
            "Остатки на счетах кошельков за каждый день, {}",
            period_title(&daily.period)
        ),
        &f.title,
    )?;
    headers(
        ws,
        &f,
        &[
            "Дата",
            "Кошелёк",
            "Клиент",
            "Валюта",
            "Остаток на начало дня",
            "Дебет",
            "Кредит",
            "Остаток на конец дня",
        ],
        &[12.0, 38.0, 38.0, 8.0, 18.0, 16.0, 16.0, 18.0],
    )?;
    for (row, r) in (HEADER_ROW + 1..).zip(&daily.rows) {
        let date = ExcelDateTime::from_ymd(
            u16::try_from(r.date.year()).unwrap_or(1900),
            u8::from(r.date.month()),
            r.date.day(),
        )?;
        ws.write_datetime_with_format(row, 0, &date, &f.date)?;
        ws.write_string(row, 1, r.wallet_id.to_string())?;
        ws.write_string(row, 2, r.client_id.to_string())?;
        ws.write_string(row, 3, &r.currency)?;
        ws.write_number_with_format(row, 4, number(r.opening), &f.money)?;
        ws.write_number_with_format(row, 5, number(r.debit), &f.money)?;
        ws.write_number_with_format(row, 6, number(r.credit), &f.money)?;
        ws.write_number_with_format(row, 7, number(r.closing), &f.money)?;
    }
    ws.set_freeze_panes(HEADER_ROW + 1, 0)?;
    Ok(book.save_to_buffer()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn amounts_have_two_places_and_no_negative_zero() {
        assert_eq!(amount(dec!(1000)), "1000.00");
        assert_eq!(amount(dec!(-250.25)), "-250.25");
        assert_eq!(amount(dec!(-0.00)), "0.00");
        assert_eq!(amount(dec!(0.5)), "0.50");
    }
}
