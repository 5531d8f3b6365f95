//! The reports over the `wallets` projection on a fresh database: wallet events applied by the
//! projection become movements whose turnover reconciles with the events, and a scheduled run
//! stores its file and notifies its recipients.

use calamine::{open_workbook_from_rs, DataType, Reader, Xlsx};
use etr_domain::wallet::{Event as W, Limits};
use etr_domain::{Actor, AggregateKind, ClientId, Currency, Envelope, Event, Money};
use etr_projections::runtime::apply_batch;
use etr_projections::wallets::Wallets;
use etr_reports::delivery::RecordingDelivery;
use etr_reports::export::{TableFormat, TURNOVER_SHEET_NAME};
use etr_reports::schedule::{self, Clock, Every, NewSchedule, ReportStore, Runner};
use etr_reports::{store, Kind, Period, Scope, MOSCOW};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use std::sync::{Arc, Mutex};
use time::macros::{date, datetime};
use time::OffsetDateTime;
use uuid::Uuid;

struct Log {
    client: ClientId,
    events: Vec<(Envelope, Event)>,
}

impl Log {
    fn push(&mut self, wallet: Uuid, at: OffsetDateTime, event: W) {
        let sequence = u64::try_from(self.events.len()).expect("count") + 1;
        let event = Event::Wallet(event);
        let envelope = Envelope {
            event_id: Uuid::new_v4(),
            event_type: event.name().to_owned(),
            schema_version: 1,
            client_id: self.client,
            aggregate_type: AggregateKind::WalletAccount,
            aggregate_id: wallet,
            aggregate_version: sequence,
            partition: 3,
            sequence,
            command_id: format!("{}/c{sequence}", self.client),
            correlation_id: format!("{}/c{sequence}", self.client),
            actor: Actor::client(self.client),
            occurred_at: at,
            prev_hash: format!("{:064}", sequence - 1),
            hash: format!("{sequence:064}"),
        };
        self.events.push((envelope, event));
    }
}

fn rub(amount: Decimal) -> Money {
    Money::new(amount, Currency::Rub)
}

/// Two wallets of one client: a top-up before the period, a payment captured, a hold
/// released, a transfer between them, and a top-up just after the period (00:30 Moscow
/// time on the next day).
fn scenario(client: ClientId, a: Uuid, b: Uuid) -> Log {
    let mut log = Log {
        client,
        events: Vec::new(),
    };
    for w in [a, b] {
        log.push(
            w,
            datetime!(2026-10-31 10:00 UTC),
            W::WalletOpened {
                wallet_id: w,
                client_id: client,
                currency: Currency::Rub,
                limits: Limits::registered(),
            },
        );
    }
    let (p1, p2) = (Uuid::new_v4(), Uuid::new_v4());
    log.push(
        a,
        datetime!(2026-10-31 12:00 UTC),
        W::WalletToppedUp {
            operation_id: Uuid::new_v4(),
            amount: rub(dec!(1000.00)),
            source: "card".into(),
        },
    );
    log.push(
        a,
        datetime!(2026-11-01 08:00 UTC),
        W::FundsHeld {
            payment_id: p1,
            amount: rub(dec!(300.25)),
        },
    );
    log.push(
        a,
        datetime!(2026-11-01 08:01 UTC),
        W::HoldCaptured {
            payment_id: p1,
            amount: rub(dec!(300.25)),
        },
    );
    log.push(
        a,
        datetime!(2026-11-02 08:00 UTC),
        W::FundsHeld {
            payment_id: p2,
            amount: rub(dec!(50.00)),
        },
    );
    log.push(
        a,
        datetime!(2026-11-02 08:05 UTC),
        W::HoldReleased {
            payment_id: p2,
            amount: rub(dec!(50.00)),
        },
    );
    let t = Uuid::new_v4();
    log.push(
        a,
        datetime!(2026-11-03 10:00 UTC),
        W::TransferSent {
            transfer_id: t,
            to_wallet_id: b,
            amount: rub(dec!(199.75)),
        },
    );
    log.push(
        b,
        datetime!(2026-11-03 10:00 UTC),
        W::TransferReceived {
            transfer_id: t,
            from_wallet_id: a,
            amount: rub(dec!(199.75)),
        },
    );
    log.push(
        a,
        datetime!(2026-11-05 21:30 UTC),
        W::WalletToppedUp {
            operation_id: Uuid::new_v4(),
            amount: rub(dec!(99.99)),
            source: "card".into(),
        },
    );
    log
}

struct FixedClock(Mutex<OffsetDateTime>);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        *self.0.lock().expect("clock")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_writes_movements_whose_turnover_reconciles_and_a_schedule_delivers_it() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_reports")
        .await
        .expect("Postgres must be running (scripts/test starts it)");
    let client = ClientId(Uuid::new_v4());
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let log = scenario(client, a, b);
    let projection = Wallets { announce: false };
    assert_eq!(
        apply_batch(&pool, &projection, &log.events)
            .await
            .expect("applied"),
        log.events.len()
    );
    // Applying the log again changes nothing.
    assert_eq!(
        apply_batch(&pool, &projection, &log.events)
            .await
            .expect("applied"),
        0
    );
    let kinds: Vec<(String, Decimal)> = sqlx::query_as(
        "SELECT kind, amount FROM rm_wallet_movements WHERE wallet_id = $1 ORDER BY sequence",
    )
    .bind(a)
    .fetch_all(&pool)
    .await
    .expect("movements");
    assert_eq!(
        kinds,
        vec![
            ("top_up".into(), dec!(1000.00)),
            ("payment".into(), dec!(-300.25)),
            ("transfer_out".into(), dec!(-199.75)),
            ("top_up".into(), dec!(99.99)),
        ],
        "holds move no money"
    );

    // 1–5 November, Moscow time.
    let period =
        Period::new(date!(2026 - 11 - 01), date!(2026 - 11 - 05), MOSCOW, 366).expect("period");
    let scope = Scope {
        client: Some(client.0),
        wallet: None,
    };
    let ledger = store::ledger(&pool, scope, period).await.expect("ledger");
    ledger
        .check()
        .expect("recorded balances agree with the amounts");
    let sheet = ledger.turnover();
    let row = |w: Uuid| sheet.rows.iter().find(|r| r.wallet_id == w).expect("a row");
    let ra = row(a);
    assert_eq!(
        (ra.opening, ra.debit, ra.credit, ra.closing, ra.movements),
        (dec!(1000.00), dec!(500.00), dec!(0), dec!(500.00), 2)
    );
    let rb = row(b);
    assert_eq!(
        (rb.opening, rb.credit, rb.closing),
        (dec!(0), dec!(199.75), dec!(199.75))
    );
    assert_eq!(sheet.totals.len(), 1);
    assert_eq!(sheet.totals[0].closing, dec!(699.75));
    // Over every day up to the last event, the closing balance is the wallet's balance.
    let whole =
        Period::new(date!(2026 - 10 - 31), date!(2026 - 11 - 06), MOSCOW, 366).expect("period");
    let all = store::ledger(&pool, scope, whole)
        .await
        .expect("ledger")
        .turnover();
    for r in &all.rows {
        let balance: Decimal =
            sqlx::query_scalar("SELECT balance FROM rm_wallets WHERE wallet_id = $1")
                .bind(r.wallet_id)
                .fetch_one(&pool)
                .await
                .expect("wallet");
        assert_eq!(r.closing, balance, "{r:?}");
        assert_eq!(r.opening, Decimal::ZERO);
    }
    // One wallet alone; a wallet of nobody's is an empty report.
    let only_b = store::ledger(
        &pool,
        Scope {
            client: None,
            wallet: Some(b),
        },
        period,
    )
    .await
    .expect("ledger");
    assert_eq!(only_b.accounts.len(), 1);
    let daily = ledger.daily().expect("daily");
    assert_eq!(
        daily.rows.len(),
        5 * 2,
        "every day of every account, quiet days included"
    );
    let closing_a: Vec<Decimal> = daily
        .rows
        .iter()
        .filter(|r| r.wallet_id == a)
        .map(|r| r.closing)
        .collect();
    assert_eq!(
        closing_a,
        vec![
            dec!(699.75),
            dec!(699.75),
            dec!(500.00),
            dec!(500.00),
            dec!(500.00)
        ]
    );

    // A daily schedule due at 06:00 Moscow on 4 November reports 3 November.
    let clock = Arc::new(FixedClock(Mutex::new(datetime!(2026-11-04 03:00 UTC))));
    let runner = Runner {
        pool: pool.clone(),
        store: ReportStore::in_memory(),
        delivery: Arc::new(RecordingDelivery::new(pool.clone())),
        clock: clock.clone(),
        poll: std::time::Duration::from_millis(10),
    };
    let ok = schedule::create(
        &pool,
        &NewSchedule {
            name: "Daily turnover".into(),
            kind: Kind::Turnover(TableFormat::Xlsx),
            scope,
            every: Every::Day,
            offset: MOSCOW,
            recipients: vec!["finance@example.com".into(), "ops@example.com".into()],
            first_run_at: datetime!(2026-11-04 03:00 UTC),
        },
    )
    .await
    .expect("schedule");
    let failing = schedule::create(
        &pool,
        &NewSchedule {
            name: "Chart to a bad address".into(),
            kind: Kind::parse("chart", "png", Some("day")).expect("kind"),
            scope,
            every: Every::Week,
            offset: MOSCOW,
            recipients: vec!["fail@example.com".into()],
            first_run_at: datetime!(2026-11-04 03:00 UTC),
        },
    )
    .await
    .expect("schedule");
    let tick = runner.tick().await.expect("tick");
    assert_eq!((tick.planned, tick.done, tick.failed), (2, 1, 1));
    let runs = schedule::runs(&pool, Some(ok), 10).await.expect("runs");
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        (run.status.as_str(), run.period_from, run.period_to),
        ("done", date!(2026 - 11 - 03), date!(2026 - 11 - 03))
    );
    let location = run.location.clone().expect("stored");
    let key = location.strip_prefix("memory:///").expect("in memory");
    let bytes = runner.store.get(key).await.expect("the stored file");
    let mut book: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let range = book.worksheet_range(TURNOVER_SHEET_NAME).expect("sheet");
    let day = store::ledger(
        &pool,
        scope,
        Period::new(date!(2026 - 11 - 03), date!(2026 - 11 - 03), MOSCOW, 1).expect("day"),
    )
    .await
    .expect("ledger")
    .turnover();
    for (i, r) in day.rows.iter().enumerate() {
        let row = etr_reports::export::HEADER_ROW + 1 + u32::try_from(i).expect("row");
        let closing = range
            .get_value((row, 6))
            .and_then(|c| c.get_float())
            .expect("closing");
        assert_eq!(
            Decimal::from_f64_retain(closing)
                .expect("finite")
                .round_dp(2),
            r.closing
        );
    }
    let sent: Vec<(String, String)> = sqlx::query_as(
        "SELECT recipient, location FROM report_deliveries WHERE run_id = $1 ORDER BY recipient",
    )
    .bind(run.run_id)
    .fetch_all(&pool)
    .await
    .expect("deliveries");
    assert_eq!(
        sent,
        vec![
            ("finance@example.com".into(), location.clone()),
            ("ops@example.com".into(), location.clone())
        ]
    );
    // The failed delivery is kept with its reason and tried again later, not at once.
    let failed = &schedule::runs(&pool, Some(failing), 10)
        .await
        .expect("runs")[0];
    assert_eq!(failed.status, "retry");
    assert!(
        failed
            .error
            .as_deref()
            .is_some_and(|e| e.contains("refused")),
        "{failed:?}"
    );
    assert_eq!(
        (failed.period_from, failed.period_to),
        (date!(2026 - 10 - 28), date!(2026 - 11 - 03))
    );
    let again = runner.tick().await.expect("tick");
    assert_eq!((again.planned, again.done, again.failed), (0, 0, 0));
    // Two minutes later the failed run is tried again; the next day's run comes due a day on.
    *clock.0.lock().expect("clock") = datetime!(2026-11-04 03:02 UTC);
    let retry = runner.tick().await.expect("tick");
    assert_eq!((retry.planned, retry.done, retry.failed), (0, 0, 1));
    *clock.0.lock().expect("clock") = datetime!(2026-11-05 03:00 UTC);
    let next = runner.tick().await.expect("tick");
    assert_eq!((next.planned, next.done), (1, 1));
    let list = schedule::list(&pool).await.expect("list");
    let daily_schedule = list.iter().find(|s| s.schedule_id == ok).expect("listed");
    assert_eq!(daily_schedule.next_run_at, datetime!(2026-11-06 03:00 UTC));

    pool.close().await;
    etr_infra::pg::drop_database(&url).await.expect("drop");
}
