//! The exported files hold the report's numbers: the XLSX read back with `calamine`, the CSV
//! with `csv`, and the chart decoded as an image of the expected size.

use calamine::{open_workbook_from_rs, Data, DataType, Reader, Xlsx};
use etr_reports::export::{self, HEADER_ROW};
use etr_reports::sheet::{Account, Ledger, Movement, MovementKind};
use etr_reports::{chart, ChartBy, Period, MOSCOW};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::io::Cursor;
use time::macros::{date, datetime};
use uuid::Uuid;

fn ledger() -> Ledger {
    let (a, b, c) = (
        Uuid::from_u128(0xa),
        Uuid::from_u128(0xb),
        Uuid::from_u128(0xc),
    );
    let client = Uuid::from_u128(0x1);
    let other = Uuid::from_u128(0x2);
    let m = |wallet, sequence, at, kind, amount: Decimal, after| Movement {
        wallet_id: wallet,
        partition: 0,
        sequence,
        occurred_at: at,
        kind,
        amount,
        balance_after: after,
    };
    Ledger {
        period: Period::new(date!(2026 - 11 - 01), date!(2026 - 11 - 30), MOSCOW, 366)
            .expect("period"),
        accounts: vec![
            Account {
                wallet_id: a,
                client_id: client,
                currency: "RUB".into(),
                opening: dec!(1500.00),
            },
            Account {
                wallet_id: b,
                client_id: client,
                currency: "RUB".into(),
                opening: dec!(0.00),
            },
            Account {
                wallet_id: c,
                client_id: other,
                currency: "USD".into(),
                opening: dec!(12.34),
            },
        ],
        movements: vec![
            m(
                a,
                1,
                datetime!(2026-11-02 10:00 UTC),
                MovementKind::TopUp,
                dec!(12345678.91),
                dec!(12347178.91),
            ),
            m(
                a,
                2,
                datetime!(2026-11-03 10:00 UTC),
                MovementKind::Payment,
                dec!(-0.01),
                dec!(12347178.90),
            ),
            m(
                a,
                3,
                datetime!(2026-11-10 10:00 UTC),
                MovementKind::TransferOut,
                dec!(-178.90),
                dec!(12347000.00),
            ),
            m(
                b,
                4,
                datetime!(2026-11-10 10:00 UTC),
                MovementKind::TransferIn,
                dec!(178.90),
                dec!(178.90),
            ),
            m(
                c,
                1,
                datetime!(2026-11-29 22:00 UTC),
                MovementKind::TopUp,
                dec!(0.66),
                dec!(13.00),
            ),
        ],
    }
}

fn money(cell: Option<&Data>) -> Decimal {
    let v = cell.and_then(|c| c.get_float()).expect("a number cell");
    Decimal::from_f64_retain(v).expect("finite").round_dp(2)
}

fn text(cell: Option<&Data>) -> String {
    cell.and_then(|c| c.get_string())
        .expect("a text cell")
        .to_owned()
}

#[test]
fn the_turnover_xlsx_opens_with_a_reader_and_holds_the_sheets_numbers() {
    let ledger = ledger();
    let sheet = ledger.turnover();
    let bytes = export::turnover_xlsx(&sheet).expect("xlsx");
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("a workbook");
    assert_eq!(
        book.sheet_names(),
        vec![export::TURNOVER_SHEET_NAME.to_owned()]
    );
    let range = book
        .worksheet_range(export::TURNOVER_SHEET_NAME)
        .expect("the sheet");
    assert!(text(range.get_value((0, 0))).contains("01.11.2026 – 30.11.2026 (UTC+03:00)"));
    assert_eq!(text(range.get_value((HEADER_ROW, 3))), "Сальдо на начало");
    let mut row = HEADER_ROW + 1;
    for r in &sheet.rows {
        assert_eq!(text(range.get_value((row, 0))), r.wallet_id.to_string());
        assert_eq!(text(range.get_value((row, 2))), r.currency);
        assert_eq!(money(range.get_value((row, 3))), r.opening);
        assert_eq!(money(range.get_value((row, 4))), r.debit);
        assert_eq!(money(range.get_value((row, 5))), r.credit);
        assert_eq!(money(range.get_value((row, 6))), r.closing);
        row += 1;
    }
    // The totals, one row per currency, reconcile with the rows above them.
    let rub = &sheet.totals[0];
    assert_eq!(text(range.get_value((row, 0))), "Итого");
    assert_eq!(text(range.get_value((row, 2))), "RUB");
    assert_eq!(money(range.get_value((row, 3))), dec!(1500.00));
    assert_eq!(money(range.get_value((row, 4))), dec!(178.91));
    assert_eq!(money(range.get_value((row, 5))), dec!(12345857.81));
    assert_eq!(money(range.get_value((row, 6))), dec!(12347178.90));
    assert_eq!(rub.opening + rub.credit - rub.debit, rub.closing);
    assert_eq!(text(range.get_value((row + 1, 2))), "USD");
    assert_eq!(money(range.get_value((row + 1, 6))), dec!(13.00));
    assert!(matches!(
        range.get_value((row + 2, 0)),
        None | Some(Data::Empty)
    ));
}

#[test]
fn the_daily_xlsx_has_a_dated_row_per_account_and_day() {
    let daily = ledger().daily().expect("daily");
    let bytes = export::daily_xlsx(&daily).expect("xlsx");
    let mut book: Xlsx<_> = open_workbook_from_rs(Cursor::new(bytes)).expect("a workbook");
    let range = book
        .worksheet_range(export::DAILY_SHEET_NAME)
        .expect("the sheet");
    assert_eq!(daily.rows.len(), 30 * 3);
    let excel_epoch = date!(1899 - 12 - 30);
    for (i, r) in daily.rows.iter().enumerate() {
        let row = HEADER_ROW + 1 + u32::try_from(i).expect("row");
        let serial = match range.get_value((row, 0)) {
            Some(Data::DateTime(d)) => d.as_f64(),
            other => panic!("row {row}: expected a date, got {other:?}"),
        };
        assert_eq!(
            serial,
            (r.date - excel_epoch).whole_days() as f64,
            "row {row}"
        );
        assert_eq!(text(range.get_value((row, 1))), r.wallet_id.to_string());
        assert_eq!(money(range.get_value((row, 4))), r.opening);
        assert_eq!(money(range.get_value((row, 7))), r.closing);
    }
    // A day without movements (15 November) still has its closing balance.
    let quiet = daily
        .rows
        .iter()
        .position(|r| r.date == date!(2026 - 11 - 15) && r.wallet_id == Uuid::from_u128(0xa))
        .expect("a row for a quiet day");
    let row = HEADER_ROW + 1 + u32::try_from(quiet).expect("row");
    assert_eq!(money(range.get_value((row, 7))), dec!(12347000.00));
}

#[test]
fn the_csv_files_hold_exact_amounts() {
    let ledger = ledger();
    let bytes = export::turnover_csv(&ledger.turnover()).expect("csv");
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    let headers = reader.headers().expect("headers").clone();
    assert_eq!(
        headers.iter().collect::<Vec<_>>(),
        [
            "wallet_id",
            "client_id",
            "currency",
            "opening",
            "debit",
            "credit",
            "closing",
            "movements"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("row")).collect();
    assert_eq!(rows.len(), 3 + 2);
    let a = &rows[0];
    assert_eq!(
        a.iter().skip(3).collect::<Vec<_>>(),
        ["1500.00", "178.91", "12345678.91", "12347000.00", "3"]
    );
    assert_eq!(&rows[3][0], "total");
    assert_eq!(&rows[3][2], "RUB");
    assert_eq!(&rows[3][6], "12347178.90");
    let daily = export::daily_csv(&ledger.daily().expect("daily")).expect("csv");
    let text = String::from_utf8(daily).expect("utf-8");
    assert_eq!(text.lines().count(), 1 + 30 * 3);
    assert!(text.contains("2026-11-30,00000000-0000-0000-0000-00000000000c,00000000-0000-0000-0000-000000000002,USD,12.34,0.00,0.66,13.00"), "{text}");
}

#[test]
fn the_chart_is_a_png_and_an_svg_with_dates_and_amounts() {
    let mut ledger = ledger();
    ledger.period =
        Period::new(date!(2026 - 09 - 01), date!(2026 - 12 - 31), MOSCOW, 3660).expect("period");
    for by in [ChartBy::Day, ChartBy::Month] {
        let series = ledger.series(by);
        let c = chart::Chart {
            period: ledger.period,
            by,
            scope: "Все кошельки",
            series: &series,
        };
        let png = chart::png(&c).expect("png");
        let decoder = png::Decoder::new(Cursor::new(&png));
        let reader = decoder.read_info().expect("a PNG");
        assert_eq!((reader.info().width, reader.info().height), chart::SIZE);
        let svg = String::from_utf8(chart::svg(&c).expect("svg")).expect("utf-8");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("Баланс, RUB") && svg.contains("Баланс, USD"));
        let tick = match by {
            ChartBy::Day => "01.09.2026",
            ChartBy::Month => "11.2026",
        };
        assert!(svg.contains(tick), "the x axis names {tick}");
        if std::env::var_os("ETR_KEEP_CHARTS").is_some() {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
            std::fs::write(dir.join(format!("chart-{}.png", by.code())), &png).expect("write");
            std::fs::write(dir.join(format!("chart-{}.svg", by.code())), &svg).expect("write");
        }
    }
}
