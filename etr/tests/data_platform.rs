//! `etr replay --into data-platform` fills the `dp` schema from the log: replaying twice gives
//! identical tables; daily balances agree with the wallets; `--from` / `--to` seek the log by
//! time and select exactly the events of the window; `--parquet` writes the same facts.

mod support;

use etr_domain::{
    loan, payment, wallet, Actor, AggregateKind, ClientId, Currency, Envelope, Event, Money,
};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::time::{Duration, Instant};
use support::{read_topic, wait_published, Api, Env};
use time::OffsetDateTime;
use uuid::Uuid;

const TABLES: [&str; 9] = [
    "dp.dim_clients",
    "dp.dim_services",
    "dp.dim_partners",
    "dp.fact_events",
    "dp.fact_wallet_operations",
    "dp.fact_payments",
    "dp.fact_applications",
    "dp.fact_loans",
    "dp.fact_daily_balances",
];

async fn dump(pool: &sqlx::PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for table in TABLES {
        let part: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY t::text"))
                .fetch_all(pool)
                .await
                .unwrap();
        rows.push(format!("{table}: {}", part.len()));
        rows.extend(part);
    }
    rows
}

fn replay(env: &Env, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["replay", "--into", "data-platform"];
    args.extend_from_slice(extra);
    let out = env.command(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

async fn open_wallet(api: &Api, client: Uuid, key: &str) -> String {
    let (s, _, v) = api
        .post(
            &format!("/v1/clients/{client}/wallets"),
            Some(key),
            r#"{"currency":"RUB"}"#,
        )
        .await
        .unwrap();
    assert!(s == 200 || s == 201, "{v}");
    v["wallets"][0]["wallet_id"].as_str().unwrap().to_owned()
}

async fn post_ok(api: &Api, path: &str, key: &str, body: &str) {
    let (s, _, v) = api.post(path, Some(key), body).await.unwrap();
    assert!(s == 200 || s == 201, "{path}: {v}");
}

/// Closing balance, held and available of each wallet on its latest day in dp, with the
/// turnover and movements summed over its days and whether every day is complete.
async fn closing(pool: &sqlx::PgPool) -> Vec<(String, String, String, String, bool)> {
    sqlx::query_as(
        "SELECT wallet_id::text, balance::text, held::text, available::text, complete FROM dp.fact_daily_balances d \
         WHERE day = (SELECT max(day) FROM dp.fact_daily_balances e WHERE e.wallet_id = d.wallet_id) ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A decimal column of a Parquet file: big-endian two's-complement unscaled value.
fn parquet_decimal(d: &parquet::data_type::Decimal) -> Decimal {
    let bytes = d.data();
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    let mut full = [if negative { 0xff } else { 0 }; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Decimal::from_i128_with_scale(i128::from_be_bytes(full), u32::try_from(d.scale()).unwrap())
}

/// Row count and the sum of a decimal column (by name) of a Parquet file, through the
/// parquet crate's own reader.
fn parquet_count_and_sum(path: &std::path::Path, column: &str) -> (i64, Decimal) {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let rows = reader.metadata().file_metadata().num_rows();
    let mut sum = Decimal::ZERO;
    let mut seen = 0;
    for row in reader.get_row_iter(None).unwrap() {
        let row = row.unwrap();
        seen += 1;
        for (name, field) in row.get_column_iter() {
            if name == column {
                match field {
                    Field::Decimal(d) => sum += parquet_decimal(d),
                    Field::Null => {}
                    other => panic!("{column} is {other:?}, expected a decimal"),
                }
            }
        }
    }
    assert_eq!(seen, rows, "{}: rows read", path.display());
    (rows, sum)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_twice_gives_identical_tables() {
    let env = Env::new("dp").await;
    let api = Api::new(&env);
    let client = Uuid::new_v4();
    let etr = env.start(&["up", "--no-demo"]).await;
    let a = open_wallet(&api, client, "a").await;
    let b = open_wallet(&api, client, "b").await;
    let base = format!("/v1/clients/{client}/wallets/{a}");
    for (path, key, body) in [
        (
            "/top-ups",
            "t",
            r#"{"amount":"500.00","currency":"RUB","source":"card"}"#.to_owned(),
        ),
        (
            "/payments?wait=10",
            "p1",
            r#"{"amount":"120.50","currency":"RUB","service_id":"mobile"}"#.to_owned(),
        ),
        (
            "/payments?wait=10",
            "p2",
            r#"{"amount":"10","currency":"RUB","service_id":"svc-fail"}"#.to_owned(),
        ),
        (
            "/transfers",
            "x",
            format!(r#"{{"to_wallet_id":"{b}","amount":"100","currency":"RUB"}}"#),
        ),
    ] {
        post_ok(&api, &format!("{base}{path}"), key, &body).await;
    }
    wait_published(&env).await;
    let records = read_topic(&env).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    // The wallet read model, once the projector has caught up.
    let mut expected = vec![
        (
            a.clone(),
            "279.50".to_owned(),
            "0.00".to_owned(),
            "279.50".to_owned(),
            true,
        ),
        (
            b.clone(),
            "100.00".to_owned(),
            "0.00".to_owned(),
            "100.00".to_owned(),
            true,
        ),
    ];
    expected.sort();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let wallets: Vec<(String, String, String, String, bool)> = sqlx::query_as(
            "SELECT wallet_id::text, balance::text, held::text, available::text, true FROM rm_wallets ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        if wallets == expected {
            break;
        }
        assert!(Instant::now() < deadline, "read model: {wallets:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The replay runs with the platform stopped (it serves the registry itself).
    drop(etr);

    let first = replay(&env, &[]);
    assert_eq!(first["events"].as_u64(), Some(records.len() as u64));
    let once = dump(&pool).await;
    let again = replay(&env, &[]);
    assert_eq!(again["events"], first["events"]);
    assert_eq!(dump(&pool).await, once, "a second replay changes nothing");

    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT service_id, status FROM dp.fact_payments ORDER BY service_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            ("mobile".to_owned(), "succeeded".to_owned()),
            ("svc-fail".to_owned(), "failed".to_owned())
        ]
    );
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, sum(amount)::text FROM dp.fact_wallet_operations GROUP BY kind ORDER BY kind",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected_kinds: Vec<(String, String)> = [
        ("capture", "120.50"),
        ("hold", "130.50"),
        ("release", "10.00"),
        ("top_up", "500.00"),
        ("transfer_in", "100.00"),
        ("transfer_out", "100.00"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(kinds, expected_kinds);

    // Daily balances: the closing figures equal the wallet read model; the turnover of the
    // days adds up to the movements.
    assert_eq!(closing(&pool).await, expected, "closing balances");
    let turnover: Vec<(String, String, String, i64)> = sqlx::query_as(
        "SELECT wallet_id::text, sum(credit_turnover)::text, sum(debit_turnover)::text, sum(operations)::int8 \
         FROM dp.fact_daily_balances GROUP BY wallet_id ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected_turnover = vec![
        (a.clone(), "500.00".to_owned(), "220.50".to_owned(), 6),
        (b.clone(), "100.00".to_owned(), "0.00".to_owned(), 1),
    ];
    expected_turnover.sort();
    assert_eq!(turnover, expected_turnover);

    // Parquet: the same facts, read back with the parquet crate.
    let dir = std::env::temp_dir().join(format!("etr-dp-{}", Uuid::new_v4().simple()));
    let dir_arg = dir.to_string_lossy().into_owned();
    let third = replay(&env, &["--parquet", &dir_arg]);
    assert_eq!(third["parquet"].as_array().map(Vec::len), Some(6));
    assert_eq!(dump(&pool).await, once, "a third replay changes nothing");
    for (table, money) in [
        ("fact_events", None),
        ("fact_wallet_operations", Some("amount")),
        ("fact_payments", Some("amount")),
        ("fact_applications", Some("requested")),
        ("fact_loans", Some("principal")),
        ("fact_daily_balances", Some("balance")),
    ] {
        let path = dir.join(format!("{table}.parquet"));
        let column = money.unwrap_or("none");
        let (rows, sum) = parquet_count_and_sum(&path, column);
        let (count, total): (i64, Option<Decimal>) = sqlx::query_as(&format!(
            "SELECT count(*), sum({}) FROM dp.{table}",
            money.unwrap_or("NULL::numeric")
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(rows, count, "{table}: rows");
        assert_eq!(sum, total.unwrap_or_default(), "{table}: sum of {column}");
    }
    let (_, captured) =
        parquet_count_and_sum(&dir.join("fact_wallet_operations.parquet"), "amount");
    assert_eq!(captured, Decimal::from_str("961.00").unwrap());
    // Timestamps are microseconds since the epoch, UTC, exactly as in the table.
    {
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::record::RowAccessor as _;
        let file = std::fs::File::open(dir.join("fact_events.parquet")).unwrap();
        let reader = SerializedFileReader::new(file).unwrap();
        let mut micros: Vec<i64> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap().get_timestamp_micros(8).unwrap())
            .collect();
        micros.sort_unstable();
        let expected: Vec<i64> = sqlx::query_scalar(
            "SELECT (extract(epoch FROM occurred_at) * 1000000)::int8 FROM dp.fact_events ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert_eq!(micros, expected);
    }
    std::fs::remove_dir_all(&dir).ok();

    // A window after every event selects nothing, and reads nothing.
    let none = replay(&env, &["--from", "2100-01-01T00:00:00Z"]);
    assert_eq!(none["events"], 0);
    assert_eq!(none["records_read"], 0);
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_time_window_seeks_and_selects_exactly_its_events() {
    let env = Env::new("dp_window").await;
    let api = Api::new(&env);
    let etr = env.start(&["up", "--no-demo"]).await;
    // Before the cut: four clients open a wallet and top it up.
    let mut wallets = Vec::new();
    for i in 0..4 {
        let client = Uuid::new_v4();
        let wallet = open_wallet(&api, client, &format!("w{i}")).await;
        let path = format!("/v1/clients/{client}/wallets/{wallet}/top-ups");
        post_ok(
            &api,
            &path,
            &format!("t{i}"),
            r#"{"amount":"50.00","currency":"RUB","source":"card"}"#,
        )
        .await;
        wallets.push((client, wallet));
    }
    wait_published(&env).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let cut = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    // After the cut: each wallet is topped up twice more.
    for (i, (client, wallet)) in wallets.iter().enumerate() {
        let path = format!("/v1/clients/{client}/wallets/{wallet}/top-ups");
        for j in 0..2 {
            post_ok(
                &api,
                &path,
                &format!("u{i}-{j}"),
                r#"{"amount":"7.25","currency":"RUB","source":"card"}"#,
            )
            .await;
        }
    }
    wait_published(&env).await;
    let records = read_topic(&env).await;
    drop(etr);
    let after = records
        .iter()
        .filter(|r| r.envelope.occurred_at >= cut)
        .count();
    assert_eq!(after, 8);
    assert_eq!(records.len(), 16);
    let cut_text = cut
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();

    // `--from`: only the later events, and only their records are read (the seek skips the
    // rest; a one-second slack is below the gap around the cut).
    let later = replay(&env, &["--from", &cut_text, "--clock-slack", "1"]);
    assert_eq!(later["events"].as_u64(), Some(after as u64));
    assert_eq!(later["records_read"].as_u64(), Some(after as u64));
    let loaded: Vec<OffsetDateTime> = sqlx::query_scalar("SELECT occurred_at FROM dp.fact_events")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(loaded.len(), after);
    assert!(loaded.iter().all(|t| *t >= cut));
    // The wallets' earlier events are not in dp yet: the day's figures say so.
    let days: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT wallet_id::text, balance::text, complete FROM dp.fact_daily_balances ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(days.len(), 4);
    assert!(days.iter().all(|(_, b, c)| b == "14.50" && !c), "{days:?}");

    // `--to`: only the earlier events; a partition stops once past the cut plus the slack.
    let earlier = replay(&env, &["--to", &cut_text, "--clock-slack", "1"]);
    assert_eq!(
        earlier["events"].as_u64(),
        Some((records.len() - after) as u64)
    );
    assert!(earlier["records_read"].as_u64().unwrap() < records.len() as u64);
    // Now dp holds every event: the balances are complete and exact, as after a full replay.
    let days: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT wallet_id::text, balance::text, complete FROM dp.fact_daily_balances ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(days.iter().all(|(_, b, c)| b == "64.50" && *c), "{days:?}");
    let windows = dump(&pool).await;
    let full = replay(&env, &[]);
    assert_eq!(full["events"].as_u64(), Some(records.len() as u64));
    assert_eq!(
        dump(&pool).await,
        windows,
        "two windows equal the whole log"
    );

    pool.close().await;
}

/// Synthetic wallet, payment and loan events over several days, loaded straight into a fresh
/// database's `dp` in different batchings and orders.
struct Log {
    client: Uuid,
    wallet: Uuid,
    payment: Uuid,
    loan: Uuid,
    application: Uuid,
    sequence: u64,
    versions: BTreeMap<Uuid, u64>,
    events: Vec<(Envelope, Event)>,
}

impl Log {
    fn new() -> Log {
        Log {
            client: Uuid::new_v4(),
            wallet: Uuid::new_v4(),
            payment: Uuid::new_v4(),
            loan: Uuid::new_v4(),
            application: Uuid::new_v4(),
            sequence: 0,
            versions: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    fn push(&mut self, at: &str, aggregate: (AggregateKind, Uuid), event: Event) {
        self.sequence += 1;
        let version = self.versions.entry(aggregate.1).or_default();
        *version += 1;
        let envelope = Envelope {
            event_id: Uuid::new_v4(),
            event_type: event.name().to_owned(),
            schema_version: 1,
            client_id: ClientId(self.client),
            aggregate_type: aggregate.0,
            aggregate_id: aggregate.1,
            aggregate_version: *version,
            partition: 0,
            sequence: self.sequence,
            command_id: format!("c{}", self.sequence),
            correlation_id: format!("c{}", self.sequence),
            actor: Actor::client(ClientId(self.client)),
            occurred_at: OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
                .unwrap(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        self.events.push((envelope, event));
    }

    fn wallet(&mut self, at: &str, event: wallet::Event) {
        self.push(
            at,
            (AggregateKind::WalletAccount, self.wallet),
            Event::Wallet(event),
        );
    }

    fn payment(&mut self, at: &str, event: payment::Event) {
        self.push(
            at,
            (AggregateKind::Payment, self.payment),
            Event::Payment(event),
        );
    }

    fn loan(&mut self, at: &str, event: loan::Event) {
        self.push(at, (AggregateKind::Loan, self.loan), Event::Loan(event));
    }

    /// The next event takes partition sequence `sequence` (the partition's events of other
    /// clients in between are not part of the log).
    fn skip_to(&mut self, sequence: u64) {
        self.sequence = sequence - 1;
    }
}

fn rub(amount: &str) -> Money {
    Money {
        amount: Decimal::from_str(amount).unwrap(),
        currency: Currency::Rub,
    }
}

fn three_days() -> Log {
    let mut log = Log::new();
    let (wallet, payment) = (log.wallet, log.payment);
    log.wallet(
        "2026-11-20T10:00:00Z",
        wallet::Event::WalletOpened {
            wallet_id: wallet,
            client_id: ClientId(log.client),
            currency: Currency::Rub,
            limits: wallet::Limits::registered(),
        },
    );
    log.wallet(
        "2026-11-20T10:05:00Z",
        wallet::Event::WalletToppedUp {
            operation_id: Uuid::new_v4(),
            amount: rub("1000.00"),
            source: "card".into(),
        },
    );
    // A payment held late on day one and captured after midnight UTC.
    log.payment(
        "2026-11-20T23:59:00Z",
        payment::Event::PaymentInitiated {
            commission: None,
            payment_id: payment,
            wallet_id: wallet,
            amount: rub("250.10"),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            recipient: None,
            card: None,
        },
    );
    log.wallet(
        "2026-11-20T23:59:30Z",
        wallet::Event::FundsHeld {
            payment_id: payment,
            amount: rub("250.10"),
        },
    );
    log.payment("2026-11-20T23:59:30Z", payment::Event::PaymentLocked);
    log.wallet(
        "2026-11-21T00:00:10Z",
        wallet::Event::HoldCaptured {
            payment_id: payment,
            amount: rub("250.10"),
        },
    );
    log.payment("2026-11-21T00:00:10Z", payment::Event::PaymentSucceeded);
    // Nothing on day three; day four: a transfer out and one in.
    log.wallet(
        "2026-11-23T08:00:00Z",
        wallet::Event::TransferSent {
            transfer_id: Uuid::new_v4(),
            to_wallet_id: Uuid::new_v4(),
            amount: rub("0.90"),
        },
    );
    log.wallet(
        "2026-11-23T09:00:00Z",
        wallet::Event::TransferReceived {
            transfer_id: Uuid::new_v4(),
            from_wallet_id: Uuid::new_v4(),
            amount: rub("12.34"),
        },
    );
    log
}

async fn fresh() -> (sqlx::PgPool, String) {
    etr_infra::pg::fresh_database("etr_test_dp_days")
        .await
        .expect("Postgres must be running (scripts/test starts it)")
}

/// Drops a test database (kept when the test fails, for inspection).
async fn drop_database(pool: sqlx::PgPool, url: &str) {
    pool.close().await;
    etr_infra::pg::drop_database(url)
        .await
        .expect("dropping the test database");
}

type DayRow = (String, String, String, String, String, String, i32, bool);

async fn days(pool: &sqlx::PgPool) -> Vec<DayRow> {
    sqlx::query_as(
        "SELECT day::text, balance::text, held::text, available::text, credit_turnover::text, debit_turnover::text, operations, complete \
         FROM dp.fact_daily_balances ORDER BY day",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// Day, balance, held, available, credit and debit turnover, movements, complete.
type DayRef<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    i32,
    bool,
);

fn owned(rows: &[DayRef<'_>]) -> Vec<DayRow> {
    rows.iter()
        .map(|r| {
            (
                r.0.into(),
                r.1.into(),
                r.2.into(),
                r.3.into(),
                r.4.into(),
                r.5.into(),
                r.6,
                r.7,
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_balances_over_days_in_any_batching_and_window_order() {
    let log = three_days();
    let expected = owned(&[
        (
            "2026-11-20",
            "1000.00",
            "250.10",
            "749.90",
            "1000.00",
            "0.00",
            2,
            true,
        ),
        (
            "2026-11-21",
            "749.90",
            "0.00",
            "749.90",
            "0.00",
            "250.10",
            1,
            true,
        ),
        (
            "2026-11-23",
            "761.34",
            "0.00",
            "761.34",
            "12.34",
            "0.90",
            2,
            true,
        ),
    ]);

    // One batch.
    let (whole, whole_url) = fresh().await;
    etr_projections::data_platform::load(&whole, &log.events)
        .await
        .unwrap();
    assert_eq!(days(&whole).await, expected);
    let status: (String, String) =
        sqlx::query_as("SELECT status, amount::text FROM dp.fact_payments WHERE payment_id = $1")
            .bind(log.payment)
            .fetch_one(&whole)
            .await
            .unwrap();
    assert_eq!(status, ("succeeded".to_owned(), "250.10".to_owned()));
    let reference = dump(&whole).await;
    // Loaded again: nothing changes.
    etr_projections::data_platform::load(&whole, &log.events)
        .await
        .unwrap();
    assert_eq!(dump(&whole).await, reference);

    // One event per batch.
    let (single, single_url) = fresh().await;
    for event in log.events.chunks(1) {
        etr_projections::data_platform::load(&single, event)
            .await
            .unwrap();
    }
    assert_eq!(dump(&single).await, reference);

    // The later window first (day two on), then the earlier one: the later days are
    // incomplete until the earlier events arrive, then exact; a payment's status is the one
    // of its latest event whatever the order of the windows.
    let (windows, windows_url) = fresh().await;
    let split = log
        .events
        .iter()
        .position(|(e, _)| e.occurred_at.date().day() >= 21)
        .unwrap();
    etr_projections::data_platform::load(&windows, &log.events[split..])
        .await
        .unwrap();
    assert_eq!(
        days(&windows).await,
        owned(&[
            (
                "2026-11-21",
                "-250.10",
                "-250.10",
                "0.00",
                "0.00",
                "250.10",
                1,
                false
            ),
            (
                "2026-11-23",
                "-238.66",
                "-250.10",
                "11.44",
                "12.34",
                "0.90",
                2,
                false
            ),
        ])
    );
    etr_projections::data_platform::load(&windows, &log.events[..split])
        .await
        .unwrap();
    assert_eq!(days(&windows).await, expected);
    assert_eq!(dump(&windows).await, reference);

    for (pool, url) in [
        (whole, whole_url),
        (single, single_url),
        (windows, windows_url),
    ] {
        drop_database(pool, &url).await;
    }
}

fn at(text: &str) -> OffsetDateTime {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap()
}

const ISSUED_AT: &str = "2026-11-20T10:00:00Z";
const OVERDUE_AT: &str = "2026-12-20T00:00:05Z";
const REPAID_AT: &str = "2026-12-22T09:30:00Z";

/// A loan issued at partition sequence 1, overdue at 8 and part-repaid at 12 (a repayment
/// leaves the status as it was: the loan is overdue, 3799.50 of 5000.00 outstanding).
fn overdue_loan() -> Log {
    let mut log = Log::new();
    let (loan, application) = (log.loan, log.application);
    log.loan(
        ISSUED_AT,
        loan::Event::LoanIssued {
            loan_id: loan,
            application_id: application,
            principal: rub("5000.00"),
            term_days: 30,
            daily_rate_percent: "0.8".into(),
            terms: None,
        },
    );
    log.skip_to(8);
    log.loan(OVERDUE_AT, loan::Event::LoanBecameOverdue);
    log.skip_to(12);
    log.loan(
        REPAID_AT,
        loan::Event::RepaymentAccepted {
            repayment_id: Uuid::new_v4(),
            amount: rub("1200.50"),
        },
    );
    log
}

/// Client, application, principal, currency, status, issued at, last event at, last sequence
/// and status sequence of a loan in `dp.fact_loans`.
type LoanRow = (
    Uuid,
    Option<Uuid>,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<OffsetDateTime>,
    OffsetDateTime,
    Option<i64>,
    Option<i64>,
);

async fn loan_row(pool: &sqlx::PgPool, loan: Uuid) -> Option<LoanRow> {
    sqlx::query_as(
        "SELECT client_id, application_id, principal::text, currency, status, issued_at, last_event_at, last_sequence, status_sequence \
         FROM dp.fact_loans WHERE loan_id = $1",
    )
    .bind(loan)
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// The row of [`overdue_loan`] once `dp` holds its events up to `last` (sequence 1, 8 or 12);
/// `status` is the latest status-changing event among them.
fn loan_expected(log: &Log, status: Option<(&str, i64)>, issued: bool, last: i64) -> LoanRow {
    let last_at = match last {
        1 => ISSUED_AT,
        8 => OVERDUE_AT,
        _ => REPAID_AT,
    };
    (
        log.client,
        issued.then_some(log.application),
        issued.then(|| "5000.00".to_owned()),
        issued.then(|| "RUB".to_owned()),
        status.map(|(s, _)| s.to_owned()),
        issued.then(|| at(ISSUED_AT)),
        at(last_at),
        Some(last),
        status.map(|(_, at)| at),
    )
}

/// The loan's events `indices` (in log order) as one batch.
fn batch(log: &Log, indices: &[usize]) -> Vec<(Envelope, Event)> {
    indices.iter().map(|&i| log.events[i].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loan_status_follows_its_latest_status_change_in_any_window_order() {
    let (pool, url) = fresh().await;
    let load = |events: Vec<(Envelope, Event)>| {
        let pool = pool.clone();
        async move {
            etr_projections::data_platform::load(&pool, &events)
                .await
                .unwrap()
        }
    };

    // The review's case step by step: dp holds the issued loan; a later window brings the
    // repayment (sequence 12), then an earlier one the overdue (sequence 8), which must win
    // although the repayment came later.
    let log = overdue_loan();
    let overdue = Some(("overdue", 8));
    load(batch(&log, &[0])).await;
    assert_eq!(
        loan_row(&pool, log.loan).await,
        Some(loan_expected(&log, Some(("active", 1)), true, 1))
    );
    load(batch(&log, &[2])).await;
    assert_eq!(
        loan_row(&pool, log.loan).await,
        Some(loan_expected(&log, Some(("active", 1)), true, 12)),
        "a repayment moves the position, not the status"
    );
    load(batch(&log, &[1])).await;
    assert_eq!(
        loan_row(&pool, log.loan).await,
        Some(loan_expected(&log, overdue, true, 12))
    );

    // Only the repayment, into a dp without the loan: a row without a status, whose position
    // stays when the earlier events arrive.
    let log = overdue_loan();
    load(batch(&log, &[2])).await;
    assert_eq!(
        loan_row(&pool, log.loan).await,
        Some(loan_expected(&log, None, false, 12))
    );
    load(batch(&log, &[1])).await;
    assert_eq!(
        loan_row(&pool, log.loan).await,
        Some(loan_expected(&log, overdue, false, 12))
    );
    load(batch(&log, &[0])).await;
    assert_eq!(
        loan_row(&pool, log.loan).await,
        Some(loan_expected(&log, overdue, true, 12))
    );

    // Every split of the log into batches (each in log order) loaded in every order, and
    // overlapping windows: always the row of the whole log; loading the whole log again
    // changes nothing. One loan (and client) per case.
    let cases: &[&[&[usize]]] = &[
        &[&[0, 1, 2]],
        &[&[0], &[1, 2]],
        &[&[1, 2], &[0]],
        &[&[0, 1], &[2]],
        &[&[2], &[0, 1]],
        &[&[0, 2], &[1]],
        &[&[1], &[0, 2]],
        &[&[0], &[1], &[2]],
        &[&[0], &[2], &[1]],
        &[&[1], &[0], &[2]],
        &[&[1], &[2], &[0]],
        &[&[2], &[0], &[1]],
        &[&[2], &[1], &[0]],
        &[&[0, 1], &[1, 2]],
        &[&[1, 2], &[0, 1]],
        &[&[0, 1, 2], &[0]],
        &[&[2], &[0, 1, 2], &[1]],
    ];
    for batches in cases {
        let log = overdue_loan();
        for indices in *batches {
            load(batch(&log, indices)).await;
        }
        let expected = loan_expected(&log, overdue, true, 12);
        assert_eq!(
            loan_row(&pool, log.loan).await,
            Some(expected.clone()),
            "batches {batches:?}"
        );
        load(log.events.clone()).await;
        assert_eq!(
            loan_row(&pool, log.loan).await,
            Some(expected),
            "batches {batches:?}, then the whole log"
        );
    }
    let (loans, events): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM dp.fact_loans), (SELECT count(*) FROM dp.fact_events)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (loans, events),
        (2 + cases.len() as i64, 3 * (2 + cases.len() as i64))
    );

    drop_database(pool, &url).await;
}

/// A fresh database with the schema as it was before `dp` kept positions: the migrations
/// before 20261124000006.
async fn fresh_before_positions() -> (sqlx::PgPool, String) {
    let base = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
    let name = format!("etr_test_dp_days_{}", Uuid::new_v4().simple());
    let url = etr_infra::pg::with_database(&base, &name);
    etr_infra::pg::ensure_database(&url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("etr-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/migrations");
    for file in std::fs::read_dir(&source).unwrap() {
        let file = file.unwrap();
        let name = file.file_name().into_string().unwrap();
        if name.as_str() < "20261124000006" {
            std::fs::copy(file.path(), dir.join(&name)).unwrap();
        }
    }
    let migrator = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    migrator.run(&pool).await.unwrap();
    std::fs::remove_dir_all(&dir).ok();
    (pool, url)
}

/// `dp.fact_events` rows as the loader writes them.
async fn insert_events(pool: &sqlx::PgPool, events: &[(Envelope, Event)]) {
    for (e, _) in events {
        sqlx::query(
            "INSERT INTO dp.fact_events (event_id, client_id, aggregate_type, aggregate_id, aggregate_version, event_type, partition, sequence, occurred_at, actor_kind, actor_id, command_id, correlation_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(e.event_id)
        .bind(e.client_id.0)
        .bind(e.aggregate_type.as_str())
        .bind(e.aggregate_id)
        .bind(i64::try_from(e.aggregate_version).unwrap())
        .bind(&e.event_type)
        .bind(i32::try_from(e.partition).unwrap())
        .bind(i64::try_from(e.sequence).unwrap())
        .bind(e.occurred_at)
        .bind(&e.actor.kind)
        .bind(&e.actor.id)
        .bind(&e.command_id)
        .bind(&e.correlation_id)
        .execute(pool)
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_from_before_positions_take_them_from_the_events_dp_holds() {
    // Loan A (sequences 1, 8, 12), then a payment of the same client (13 to 15); loan B of
    // another client, of which dp holds only the repayment.
    let mut a = overdue_loan();
    let (payment, wallet) = (a.payment, a.wallet);
    let paid_at = [
        "2026-12-23T10:00:00Z",
        "2026-12-23T10:00:01Z",
        "2026-12-23T10:00:02Z",
    ];
    a.payment(
        paid_at[0],
        payment::Event::PaymentInitiated {
            commission: None,
            payment_id: payment,
            wallet_id: wallet,
            amount: rub("99.99"),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            recipient: None,
            card: None,
        },
    );
    a.payment(paid_at[1], payment::Event::PaymentLocked);
    a.payment(paid_at[2], payment::Event::PaymentSucceeded);
    let b = overdue_loan();

    // What the loader of before 20261124000006 left after the windows [8, 12] then [1] of
    // loan A, [15] then [13, 14] of the payment (the last window won: a stale status) and [12]
    // of loan B (a repayment of a loan without a row was dropped): no positions.
    let (old, old_url) = fresh_before_positions().await;
    insert_events(&old, &a.events).await;
    insert_events(&old, &b.events[2..]).await;
    sqlx::query(
        "INSERT INTO dp.fact_loans (loan_id, client_id, application_id, principal, currency, status, issued_at, last_event_at) \
         VALUES ($1, $2, $3, 5000.00, 'RUB', 'overdue', $4, $5)",
    )
    .bind(a.loan)
    .bind(a.client)
    .bind(a.application)
    .bind(at(ISSUED_AT))
    .bind(at(REPAID_AT))
    .execute(&old)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO dp.fact_payments (payment_id, client_id, wallet_id, service_id, amount, currency, status, initiated_at, last_event_at) \
         VALUES ($1, $2, $3, 'mobile', 99.99, 'RUB', 'locked', $4, $5)",
    )
    .bind(payment)
    .bind(a.client)
    .bind(wallet)
    .bind(at(paid_at[0]))
    .bind(at(paid_at[1]))
    .execute(&old)
    .await
    .unwrap();

    etr_infra::pg::MIGRATOR.run(&old).await.unwrap();
    let overdue = Some(("overdue", 8));
    assert_eq!(
        loan_row(&old, a.loan).await,
        Some(loan_expected(&a, overdue, true, 12))
    );
    assert_eq!(
        loan_row(&old, b.loan).await,
        Some(loan_expected(&b, None, false, 12))
    );
    type PaymentRow = (String, OffsetDateTime, Option<i64>);
    let payment_row = |pool: sqlx::PgPool| async move {
        sqlx::query_as::<_, PaymentRow>(
            "SELECT status, last_event_at, last_sequence FROM dp.fact_payments WHERE payment_id = $1",
        )
        .bind(payment)
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let succeeded: PaymentRow = ("succeeded".into(), at(paid_at[2]), Some(15));
    assert_eq!(payment_row(old.clone()).await, succeeded);

    // The earlier windows again, now through the loader: nothing older overwrites them.
    let load = |events: Vec<(Envelope, Event)>| {
        let pool = old.clone();
        async move {
            etr_projections::data_platform::load(&pool, &events)
                .await
                .unwrap()
        }
    };
    load(batch(&a, &[0])).await;
    load(batch(&a, &[3, 4])).await;
    load(batch(&b, &[0, 1])).await;
    assert_eq!(
        loan_row(&old, a.loan).await,
        Some(loan_expected(&a, overdue, true, 12))
    );
    assert_eq!(
        loan_row(&old, b.loan).await,
        Some(loan_expected(&b, overdue, true, 12))
    );
    assert_eq!(payment_row(old.clone()).await, succeeded);

    // And the whole log gives what it gives a fresh dp.
    load(a.events.clone()).await;
    load(b.events.clone()).await;
    let (new, new_url) = fresh().await;
    for log in [&b, &a] {
        etr_projections::data_platform::load(&new, &log.events)
            .await
            .unwrap();
    }
    assert_eq!(dump(&old).await, dump(&new).await);

    drop_database(old, &old_url).await;
    drop_database(new, &new_url).await;
}
