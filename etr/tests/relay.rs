//! The outbox relay on the real broker and a fresh database (issue 7, deliver 3 and the relay
//! half of fault 8):
//!
//! - a row that cannot be encoded stalls its own partition only, and the partition resumes in
//!   order once the row is fixed (before: the whole pass failed and every partition stalled);
//! - two relays on one database: only the lease holder publishes; when its lease is taken it
//!   stops, and the other carries on without a gap;
//! - pruning deletes published rows past the retention and never an unpublished one.
//!
//! Events are committed by hand the way the command side commits them (outbox rows and the
//! partition head in one transaction), encoded through the platform's own registry (served
//! in-process from the test database) and read back from the test's own topic.

mod support;

use etr_command_api::relay::Relay;
use etr_domain::{wallet, Actor, AggregateKind, ClientId, Currency, Envelope, Event, Money};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{read_topic, Env};
use time::OffsetDateTime;
use tokio::sync::Notify;
use uuid::Uuid;

/// A test bed: the fresh database with its partition heads, the platform's registry serving
/// it in-process, the schemas registered and the test's own topic created.
struct Bed {
    env: Env,
    pool: PgPool,
}

impl Bed {
    async fn new(name: &str) -> Bed {
        Bed::on(Env::new(name).await).await
    }

    async fn on(env: Env) -> Bed {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("etr_command_api=info")
            .with_test_writer()
            .try_init();
        let pool = PgPool::connect(&env.database_url)
            .await
            .expect("test database");
        let listener = tokio::net::TcpListener::bind(&env.registry_addr)
            .await
            .expect("registry port");
        tokio::spawn(etr_infra::registry::serve(pool.clone(), listener));
        etr_infra::kafka::ensure_topic(&env.bootstrap(), &env.topic, env.partitions)
            .await
            .expect("the broker answers at KAFKA_BOOTSTRAP_SERVERS (scripts/test starts it)");
        env.codec()
            .register_all()
            .await
            .expect("schemas registered");
        sqlx::query(
            "INSERT INTO partition_heads (partition, sequence) SELECT p, 0 FROM generate_series(0, $1 - 1) AS p \
             ON CONFLICT (partition) DO NOTHING",
        )
        .bind(i32::try_from(env.partitions).unwrap())
        .execute(&pool)
        .await
        .unwrap();
        Bed { env, pool }
    }

    async fn wait_holder(&self, holder: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let now: Option<String> =
                sqlx::query_scalar("SELECT holder FROM relay_lease WHERE id = 1")
                    .fetch_one(&self.pool)
                    .await
                    .unwrap();
            if now.as_deref() == Some(holder) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{holder} never took the lease (held by {now:?})"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Per partition: the published watermark, the stalled sequence, its reason and the
    /// encode failures counted.
    async fn watermarks(&self) -> BTreeMap<i32, Watermark> {
        let rows: Vec<Watermark> = sqlx::query_as(
            "SELECT partition, published_sequence, stalled_sequence, stall_reason, encode_failures FROM relay_watermarks",
        )
        .fetch_all(&self.pool)
        .await
        .unwrap();
        rows.into_iter().map(|w| (w.partition, w)).collect()
    }

    /// The rows left in the outbox, per partition.
    async fn outbox_rows(&self) -> BTreeMap<i32, Vec<i64>> {
        let rows: Vec<(i32, i64)> =
            sqlx::query_as("SELECT partition, sequence FROM outbox ORDER BY partition, sequence")
                .fetch_all(&self.pool)
                .await
                .unwrap();
        let mut out: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
        for (p, s) in rows {
            out.entry(p).or_default().push(s);
        }
        out
    }

    fn relay(&self) -> Relay {
        Relay::new(
            self.pool.clone(),
            etr_infra::kafka::producer(&self.env.bootstrap()).expect("producer"),
            self.env.codec(),
            self.env.topic.clone(),
            Arc::new(Notify::new()),
        )
    }

    /// Commits events as the command side does: outbox rows and the partition heads in one
    /// transaction.
    async fn commit(&self, events: &[(Envelope, Event)]) {
        commit(&self.pool, events).await;
    }

    /// Events of `partition` not published yet, as the platform's tools count them.
    async fn unpublished(&self, partition: i32) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM outbox WHERE partition = $1 AND published_at IS NULL",
        )
        .bind(partition)
        .fetch_one(&self.pool)
        .await
        .unwrap()
    }

    async fn wait_unpublished(&self, partition: i32, left: i64, within: Duration, why: &str) {
        let deadline = Instant::now() + within;
        loop {
            let now = self.unpublished(partition).await;
            if now == left {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{why}: partition {partition} has {now} unpublished events, expected {left}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The topic per partition in offset order: (sequence, event id) of every record.
    async fn log(&self) -> BTreeMap<i32, Vec<(u64, Uuid)>> {
        let mut out: BTreeMap<i32, Vec<(u64, Uuid)>> = BTreeMap::new();
        for r in read_topic(&self.env).await {
            assert_eq!(r.partition as u32, r.envelope.partition);
            out.entry(r.partition)
                .or_default()
                .push((r.envelope.sequence, r.envelope.event_id));
        }
        out
    }
}

/// Commits events as the command side does: outbox rows and the partition heads in one
/// transaction.
async fn commit(pool: &PgPool, events: &[(Envelope, Event)]) {
    let mut tx = pool.begin().await.unwrap();
    for (envelope, event) in events {
        sqlx::query(
            "INSERT INTO outbox (partition, sequence, event_id, client_id, event_type, envelope, event) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(i32::try_from(envelope.partition).unwrap())
        .bind(i64::try_from(envelope.sequence).unwrap())
        .bind(envelope.event_id)
        .bind(envelope.client_id.0)
        .bind(&envelope.event_type)
        .bind(serde_json::to_value(envelope).unwrap())
        .bind(serde_json::to_value(event).unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
        sqlx::query(
            "UPDATE partition_heads SET sequence = GREATEST(sequence, $2) WHERE partition = $1",
        )
        .bind(i32::try_from(envelope.partition).unwrap())
        .bind(i64::try_from(envelope.sequence).unwrap())
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
}

/// A row of `relay_watermarks`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Watermark {
    partition: i32,
    published_sequence: i64,
    stalled_sequence: Option<i64>,
    stall_reason: Option<String>,
    encode_failures: i64,
}

/// `count` events of one new client on `partition` from sequence `first`: a wallet opened,
/// then top-ups.
fn client_events(partition: u32, first: u64, count: u64) -> Vec<(Envelope, Event)> {
    let client = ClientId(Uuid::new_v4());
    let wallet_id = Uuid::new_v4();
    (first..first + count)
        .map(|sequence| {
            let version = sequence - first + 1;
            let event = if version == 1 {
                Event::Wallet(wallet::Event::WalletOpened {
                    wallet_id,
                    client_id: client,
                    currency: Currency::Rub,
                    limits: wallet::Limits::registered(),
                })
            } else {
                Event::Wallet(wallet::Event::WalletToppedUp {
                    operation_id: Uuid::new_v4(),
                    amount: Money {
                        amount: rust_decimal::Decimal::new(
                            100 * i64::try_from(version).unwrap(),
                            2,
                        ),
                        currency: Currency::Rub,
                    },
                    source: "card".into(),
                })
            };
            let envelope = Envelope {
                event_id: Uuid::new_v4(),
                event_type: event.name().to_owned(),
                schema_version: 1,
                client_id: client,
                aggregate_type: AggregateKind::WalletAccount,
                aggregate_id: wallet_id,
                aggregate_version: version,
                partition,
                sequence,
                command_id: format!("{client}/c{version}"),
                correlation_id: format!("{client}/c{version}"),
                actor: Actor::client(client),
                occurred_at: OffsetDateTime::now_utc(),
                prev_hash: format!("{:064}", version - 1),
                hash: format!("{version:064}"),
            };
            (envelope, event)
        })
        .collect()
}

/// An event that no schema describes: the relay cannot encode a row holding it.
fn unencodable() -> serde_json::Value {
    serde_json::json!({"Wallet": {"WalletRepainted": {"colour": "mauve"}}})
}

fn ids(events: &[(Envelope, Event)]) -> Vec<(u64, Uuid)> {
    events
        .iter()
        .map(|(e, _)| (e.sequence, e.event_id))
        .collect()
}

/// Spawns `relay.run()`; the task is aborted when the handle is dropped.
struct Running(tokio::task::JoinHandle<Result<(), etr_command_api::error::Error>>);

impl Running {
    fn start(relay: &Arc<Relay>) -> Running {
        let relay = relay.clone();
        Running(tokio::spawn(async move { relay.run().await }))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Waits until `check` holds, polling every 50 ms.
async fn wait_until<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fault 8, relay half: a row that cannot be encoded failed the relay's whole pass, so every
/// partition stalled behind it (seen failing on the old relay: partition 1 kept its 6 events
/// unpublished). Now it stalls its own partition only (never skipped: the events after it
/// wait), is logged, counted and retried with backoff, and the partition resumes in order once
/// the row is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unencodable_row_stalls_only_its_partition() {
    let bed = Bed::new("relay_stall").await;
    let p0 = client_events(0, 1, 6);
    let p1 = client_events(1, 1, 6);
    bed.commit(&p0).await;
    bed.commit(&p1).await;
    sqlx::query("UPDATE outbox SET event = $1 WHERE partition = 0 AND sequence = 3")
        .bind(unencodable())
        .execute(&bed.pool)
        .await
        .unwrap();

    let relay = Arc::new(bed.relay());
    let _running = Running::start(&relay);

    bed.wait_unpublished(
        1,
        0,
        Duration::from_secs(20),
        "partition 1 must not wait for partition 0's bad row",
    )
    .await;
    bed.wait_unpublished(
        0,
        4,
        Duration::from_secs(20),
        "partition 0 publishes up to its bad row",
    )
    .await;
    // Retried with backoff, and nothing past the bad row goes out meanwhile.
    wait_until(
        Duration::from_secs(10),
        "two attempts at the bad row",
        || async { relay.encode_failures() >= 2 },
    )
    .await;
    assert_eq!(bed.unpublished(0).await, 4, "nothing past the bad row");
    let stalls = relay.stalls();
    assert_eq!(stalls.len(), 1, "{stalls:?}");
    assert_eq!((stalls[0].partition, stalls[0].sequence), (0, 3));
    assert!(stalls[0].attempts >= 2, "{stalls:?}");
    assert!(stalls[0].reason.contains("WalletRepainted"), "{stalls:?}");
    // The relay counts an attempt in memory first and in relay_watermarks on its next pass.
    wait_until(
        Duration::from_secs(10),
        "two attempts counted in relay_watermarks",
        || async { bed.watermarks().await[&0].encode_failures >= 2 },
    )
    .await;
    let marks = bed.watermarks().await;
    let w0 = &marks[&0];
    assert_eq!((w0.published_sequence, w0.stalled_sequence), (2, Some(3)));
    assert!(w0
        .stall_reason
        .as_deref()
        .is_some_and(|r| r.contains("WalletRepainted")));
    assert!(w0.encode_failures >= 2, "encode failures counted: {w0:?}");
    let w1 = &marks[&1];
    assert_eq!(
        (
            w1.published_sequence,
            w1.stalled_sequence,
            w1.encode_failures
        ),
        (6, None, 0)
    );
    let log = bed.log().await;
    assert_eq!(log[&0], ids(&p0[..2]), "partition 0 up to its bad row");
    assert_eq!(log[&1], ids(&p1), "partition 1 published whole");

    // Fixed: the partition resumes from the row it stopped at, in order.
    sqlx::query("UPDATE outbox SET event = $1 WHERE partition = 0 AND sequence = 3")
        .bind(serde_json::to_value(&p0[2].1).unwrap())
        .execute(&bed.pool)
        .await
        .unwrap();
    bed.wait_unpublished(
        0,
        0,
        Duration::from_secs(30),
        "partition 0 resumes once fixed",
    )
    .await;
    let log = bed.log().await;
    assert_eq!(log[&0], ids(&p0), "partition 0 in order, each event once");
    assert_eq!(log[&1], ids(&p1));
    assert!(relay.stalls().is_empty());
    let w0 = bed.watermarks().await[&0].clone();
    assert_eq!(
        (w0.published_sequence, w0.stalled_sequence, w0.stall_reason),
        (6, None, None),
        "the stall is cleared"
    );
}

/// Two relays on one database: only the holder of the lease publishes. When its lease is
/// taken (expired here by SQL, as if the holder had hung), the holder stops publishing at its
/// next pass and the other relay carries on from the published watermark: read as consumers
/// read it (skipping sequences at or below the last one applied), every partition of the
/// topic holds every event exactly once, in order, without a gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_publishes_and_a_taken_lease_hands_over_without_gap() {
    let bed = Arc::new(Bed::new("relay_lease").await);
    let a = Arc::new(bed.relay());
    let _run_a = Running::start(&a);
    bed.wait_holder(a.holder()).await;
    let b = Arc::new(bed.relay());
    let _run_b = Running::start(&b);

    // Each partition gets one client's events, committed in rounds while the lease moves.
    let partitions = bed.env.partitions;
    let events: Vec<Vec<(Envelope, Event)>> =
        (0..partitions).map(|p| client_events(p, 1, 60)).collect();
    let first: Vec<(Envelope, Event)> = events.iter().flat_map(|e| e[..10].to_vec()).collect();
    bed.commit(&first).await;
    for p in 0..partitions {
        bed.wait_unpublished(
            i32::try_from(p).unwrap(),
            0,
            Duration::from_secs(20),
            "first events",
        )
        .await;
    }
    assert_eq!(
        a.published(),
        u64::from(partitions) * 10,
        "the holder published them"
    );
    assert_eq!(b.published(), 0, "the other relay published nothing");

    let committer = tokio::spawn({
        let bed = bed.clone();
        let events = events.clone();
        async move {
            for round in 10..60 {
                let batch: Vec<(Envelope, Event)> =
                    events.iter().map(|e| e[round].clone()).collect();
                bed.commit(&batch).await;
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    sqlx::query("UPDATE relay_lease SET expires_at = clock_timestamp() - interval '1 second'")
        .execute(&bed.pool)
        .await
        .unwrap();
    bed.wait_holder(b.holder()).await;
    // The old holder notices at its next pass; after that it sends nothing.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a_stopped_at = a.published();
    committer.await.unwrap();
    for p in 0..partitions {
        bed.wait_unpublished(
            i32::try_from(p).unwrap(),
            0,
            Duration::from_secs(30),
            "all events",
        )
        .await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        a.published(),
        a_stopped_at,
        "the relay that lost its lease stopped"
    );
    assert!(b.published() > 0, "the new holder published");
    assert!(
        a.published() + b.published() >= u64::from(partitions) * 60,
        "every event published"
    );

    let log = bed.log().await;
    for p in 0..partitions {
        let expected = ids(&events[p as usize]);
        let mut applied = Vec::new();
        let mut last = 0;
        for &(sequence, id) in &log[&i32::try_from(p).unwrap()] {
            if sequence <= last {
                // A re-send: the same event at the same position.
                assert_eq!(
                    expected[usize::try_from(sequence).unwrap() - 1],
                    (sequence, id)
                );
                continue;
            }
            assert_eq!(sequence, last + 1, "partition {p}: a gap after {last}");
            applied.push((sequence, id));
            last = sequence;
        }
        assert_eq!(
            applied, expected,
            "partition {p}: every event once, in order"
        );
    }
}

/// Pruning: published rows committed longer ago than the retention are deleted; rows that
/// are not published stay whatever their age (here, a partition held at a bad row); the
/// watermark outlives the rows, so publishing carries on after a prune.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_deletes_published_rows_past_retention_and_never_an_unpublished_one() {
    let bed = Bed::new("relay_prune").await;
    let p0 = client_events(0, 1, 6);
    let p1 = client_events(1, 1, 6);
    bed.commit(&p0).await;
    bed.commit(&p1).await;
    sqlx::query("UPDATE outbox SET event = $1 WHERE partition = 0 AND sequence = 4")
        .bind(unencodable())
        .execute(&bed.pool)
        .await
        .unwrap();
    // Older than the retention: all of partition 0, and partition 1 up to sequence 4.
    sqlx::query(
        "UPDATE outbox SET committed_at = clock_timestamp() - interval '2 hours' \
         WHERE partition = 0 OR (partition = 1 AND sequence <= 4)",
    )
    .execute(&bed.pool)
    .await
    .unwrap();

    let relay = Arc::new(
        bed.relay()
            .with_retention(Duration::from_secs(3_600))
            .with_prune_interval(Duration::from_millis(200)),
    );
    let _running = Running::start(&relay);
    let expected = BTreeMap::from([(0, vec![4, 5, 6]), (1, vec![5, 6])]);
    wait_until(
        Duration::from_secs(20),
        "the old published rows pruned",
        || async { bed.outbox_rows().await == expected },
    )
    .await;
    // Several more pruning rounds: the unpublished rows stay, old as they are.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(bed.outbox_rows().await, expected);
    assert_eq!(bed.watermarks().await[&0].published_sequence, 3);
    assert_eq!(bed.unpublished(0).await, 3);

    // Fixed: partition 0 publishes from its watermark though the rows below are gone, and its
    // old rows are pruned once published; new events follow.
    sqlx::query("UPDATE outbox SET event = $1 WHERE partition = 0 AND sequence = 4")
        .bind(serde_json::to_value(&p0[3].1).unwrap())
        .execute(&bed.pool)
        .await
        .unwrap();
    let later = client_events(0, 7, 2);
    bed.commit(&later).await;
    let expected = BTreeMap::from([(0, vec![7, 8]), (1, vec![5, 6])]);
    wait_until(
        Duration::from_secs(30),
        "partition 0 published and pruned",
        || async { bed.outbox_rows().await == expected },
    )
    .await;
    bed.wait_unpublished(0, 0, Duration::from_secs(10), "new events published")
        .await;
    let log = bed.log().await;
    let all: Vec<(Envelope, Event)> = p0.iter().chain(&later).cloned().collect();
    assert_eq!(log[&0], ids(&all), "partition 0 in order, each event once");
    assert_eq!(log[&1], ids(&p1));
}

/// An existing database migrates: each partition's watermark starts at the last event the old
/// relay marked published, `outbox.published_at` still says which events are not published,
/// and the relay carries on from there without publishing the marked events again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_outbox_migrates_to_watermarks() {
    let mut env = Env::new("relay_migrate").await;
    // The test's database as it was before the relay's migration.
    let name = format!("etr_test_relay_migrate_old_{}", Uuid::new_v4().simple());
    let url = etr_infra::pg::with_database(&env.database_url, &name);
    etr_infra::pg::ensure_database(&url).await.unwrap();
    let pool = PgPool::connect(&url).await.unwrap();
    let dir = std::env::temp_dir().join(format!("etr-migrations-{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).unwrap();
    let all = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/migrations");
    for entry in std::fs::read_dir(all).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().as_ref() < "20261130000004" {
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    sqlx::migrate::Migrator::new(dir.as_path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let fresh = std::mem::replace(&mut env.database_url, url);
    let (server, fresh) = fresh.rsplit_once('/').unwrap();
    let admin = PgPool::connect(&format!("{server}/postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("DROP DATABASE \"{fresh}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;

    // The old relay published partition 0 up to 3 and all of partition 2, nothing of 1.
    sqlx::query(
        "INSERT INTO partition_heads (partition, sequence) SELECT p, 0 FROM generate_series(0, 3) AS p",
    )
    .execute(&pool)
    .await
    .unwrap();
    let p0 = client_events(0, 1, 5);
    let p1 = client_events(1, 1, 2);
    let p2 = client_events(2, 1, 2);
    for events in [&p0, &p1, &p2] {
        commit(&pool, events).await;
    }
    sqlx::query(
        "UPDATE outbox SET published_at = clock_timestamp() \
         WHERE (partition = 0 AND sequence <= 3) OR partition = 2",
    )
    .execute(&pool)
    .await
    .unwrap();

    etr_infra::pg::MIGRATOR.run(&pool).await.unwrap();
    let marks: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, published_sequence FROM relay_watermarks ORDER BY partition",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(marks, [(0, 3), (2, 2)]);
    let pending: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, count(*) FILTER (WHERE published_at IS NULL) FROM outbox \
         GROUP BY partition ORDER BY partition",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(pending, [(0, 2), (1, 2), (2, 0)]);
    pool.close().await;

    let bed = Bed::on(env).await;
    let relay = Arc::new(bed.relay());
    let _running = Running::start(&relay);
    for p in 0..3 {
        bed.wait_unpublished(p, 0, Duration::from_secs(20), "the rest published")
            .await;
    }
    let log = bed.log().await;
    assert_eq!(log[&0], ids(&p0[3..]), "partition 0 from its watermark");
    assert_eq!(log[&1], ids(&p1));
    assert!(!log.contains_key(&2), "partition 2 was published already");
}
