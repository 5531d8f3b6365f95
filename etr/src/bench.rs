//! `etr bench …`: figures printed next to baselines measured in the same run.
//!
//! `etr bench commands` starts the registry, the relay and the command API in this process
//! against a fresh database and a fresh topic, drives the REST API with `--concurrency`
//! clients for `--seconds`, watches the topic for the positions the API returned, then
//! measures on the same machine what the broker and Postgres do raw: an idempotent acks=all
//! producer with everything in flight, and single-row autocommit INSERTs.

// Every float here is a rate or a latency statistic, never money.
#![allow(clippy::float_arithmetic)]

use anyhow::Context as _;
use etr_command_api::api;
use etr_command_api::handler::Position;
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_infra::{kafka, pg};
use futures::stream::{FuturesUnordered, StreamExt as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection as _, PgPool};
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Barrier, Notify};
use tokio::task::JoinHandle;
use uuid::Uuid;

#[derive(clap::Subcommand)]
pub enum Which {
    /// Replay into the data platform against a raw Postgres COPY of the same rows, and
    /// timeline read latency for one client with many events.
    Replay {
        /// Events to write for the one client before measuring.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
    },
    /// Sustained command rate and latency against the raw broker and Postgres rates.
    Commands {
        /// Concurrent HTTP clients, each with its own client id and wallet.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// Length of the measured run and of the Postgres baseline, in seconds.
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Records written by the raw Kafka baseline (stops earlier after `--seconds`). They
        /// stay on the broker: nothing here deletes topics.
        #[arg(long, default_value_t = 100_000)]
        kafka_records: u64,
    },
}

pub async fn run(settings: Settings, which: Which) -> anyhow::Result<()> {
    match which {
        Which::Replay { events } => crate::bench_replay::run(settings, events).await,
        Which::Commands {
            concurrency,
            seconds,
            kafka_records,
        } => commands(settings, concurrency, seconds, kafka_records).await,
    }
}

/// How long the end of the run waits for the last accepted positions to reach the topic.
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Records in flight at once in the raw Kafka baseline.
const KAFKA_WINDOW: usize = 10_000;
/// What each wallet is funded with before the measured run (not measured).
const FUNDING_BODY: &str = r#"{"amount":"100000.00","currency":"RUB","source":"bank_transfer"}"#;
const TOP_UP_BODY: &str = r#"{"amount":"1.00","currency":"RUB","source":"card"}"#;
const PAYMENT_BODY: &str = r#"{"amount":"1.00","currency":"RUB","service_id":"mobile"}"#;

async fn commands(
    mut settings: Settings,
    concurrency: usize,
    seconds: u64,
    kafka_records: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        (1..=1024).contains(&concurrency),
        "--concurrency must be 1..=1024"
    );
    anyhow::ensure!((1..=3600).contains(&seconds), "--seconds must be 1..=3600");
    anyhow::ensure!(kafka_records >= 1, "--kafka-records must be at least 1");
    let duration = Duration::from_secs(seconds);
    let (pool, url) = pg::fresh_database("etr_bench")
        .await
        .context("creating the bench database (is Postgres running?)")?;
    pool.close().await;
    let run_id = Uuid::new_v4().simple();
    settings.database_url = url.clone();
    settings.topic = format!("etr.bench-{run_id}");
    let raw_topic = format!("etr.bench-raw-{run_id}");

    let result = measure(
        &mut settings,
        &raw_topic,
        concurrency,
        duration,
        kafka_records,
    )
    .await;
    if let Ok(report) = &result {
        report.print();
    }
    cleanup(&settings).await;
    result.map(|_| ())
}

// ---- the platform in this process -------------------------------------------------------

/// The roles started for the run; dropping it stops them.
pub(crate) struct Platform {
    pool: PgPool,
    codec: EventCodec,
    relay: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Platform {
    fn relay_stopped(&self) -> bool {
        self.relay.as_ref().is_some_and(JoinHandle::is_finished)
    }

    /// Stops every role and waits until they are gone, then closes the pool.
    pub(crate) async fn stop(mut self) {
        self.abort();
        let tasks: Vec<_> = self.tasks.drain(..).chain(self.relay.take()).collect();
        for t in tasks {
            let _ = t.await;
        }
        self.pool.close().await;
    }

    fn abort(&mut self) {
        for t in self.tasks.iter().chain(self.relay.iter()) {
            t.abort();
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Registry, relay and command API wired as `platform::serve` wires them, on free ports.
pub(crate) async fn start_platform(settings: &mut Settings) -> anyhow::Result<Platform> {
    let registry_listener = TcpListener::bind("127.0.0.1:0").await?;
    let registry_addr = registry_listener.local_addr()?;
    let api_listener = TcpListener::bind("127.0.0.1:0").await?;
    settings.registry_addr = registry_addr.to_string();
    settings.schema_registry_url = format!("http://{registry_addr}");
    settings.command_api_addr = api_listener.local_addr()?.to_string();

    let pool = crate::platform::database(settings).await?;
    crate::platform::broker(settings).await?;
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    let mut platform = Platform {
        pool: pool.clone(),
        codec: codec.clone(),
        relay: None,
        tasks: Vec::new(),
    };
    let registry_pool = pool.clone();
    platform.tasks.push(tokio::spawn(async move {
        if let Err(e) = etr_infra::registry::serve(registry_pool, registry_listener).await {
            tracing::error!(error = %e, "schema registry stopped");
        }
    }));
    let committed = Arc::new(Notify::new());
    let relay = crate::platform::relay(settings, &pool, &codec, committed.clone()).await?;
    platform.relay = Some(tokio::spawn(async move {
        if let Err(e) = relay.run().await {
            tracing::error!(error = %e, "relay stopped");
        }
    }));
    // The default simulators answer at once: the run measures the platform, not its partners.
    let app = crate::platform::command_app(settings, &pool, committed).await?;
    platform.tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(api_listener, api::router(app)).await {
            tracing::error!(error = %e, "command API stopped");
        }
    }));
    Ok(platform)
}

// ---- the log watcher ---------------------------------------------------------------------

/// A record as it came off the topic; decoded after the measured run so decoding does not
/// compete with the platform for CPU.
struct Arrival {
    at: Instant,
    partition: i32,
    payload: Vec<u8>,
}

/// Reads every partition of `topic` from the beginning and reports each record's arrival.
fn watch_topic(
    settings: &Settings,
) -> anyhow::Result<(JoinHandle<()>, mpsc::UnboundedReceiver<Arrival>)> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &settings.kafka_bootstrap)
        .set("group.id", format!("etr-bench-{}", Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        // librdkafka waits up to 500 ms for a fetch to fill by default; a projection that
        // wants fresh data asks for less.
        .set("fetch.wait.max.ms", "10")
        .create()?;
    let mut tpl = TopicPartitionList::new();
    for p in 0..settings.partitions {
        tpl.add_partition_offset(&settings.topic, i32::try_from(p)?, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match consumer.recv().await {
                Ok(m) => {
                    let arrival = Arrival {
                        at: Instant::now(),
                        partition: m.partition(),
                        payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
                    };
                    if tx.send(arrival).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "bench topic watcher");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok((task, rx))
}

// ---- the REST workload -------------------------------------------------------------------

#[derive(Deserialize)]
struct Reply {
    status: String,
    #[serde(default)]
    events: Vec<IgnoredAny>,
    position: Option<Position>,
    #[serde(default)]
    wallets: Vec<WalletReply>,
    code: Option<String>,
}

#[derive(Deserialize)]
struct WalletReply {
    wallet_id: Uuid,
}

/// One accepted REST request.
struct Sample {
    sent: Instant,
    done: Instant,
    position: (u32, u64),
    events: usize,
}

#[derive(Default)]
struct WorkerFigures {
    samples: Vec<Sample>,
    top_ups: u64,
    payments: u64,
    rejected: u64,
    failed: u64,
    first_problem: Option<String>,
}

struct Worker {
    http: reqwest::Client,
    base: String,
    bearer: String,
}

impl Worker {
    async fn post(&self, path: &str, key: &str, body: &'static str) -> anyhow::Result<Reply> {
        let (status, reply) = self.try_post(path, key, body).await?;
        anyhow::ensure!(
            reply.status == "accepted",
            "POST {path}: HTTP {status}, {} {}",
            reply.status,
            reply.code.unwrap_or_default()
        );
        Ok(reply)
    }

    async fn try_post(
        &self,
        path: &str,
        key: &str,
        body: &'static str,
    ) -> anyhow::Result<(u16, Reply)> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Idempotency-Key", key)
            .header(reqwest::header::AUTHORIZATION, &self.bearer)
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await?;
        let reply: Reply = serde_json::from_slice(&bytes)
            .with_context(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)))?;
        Ok((status, reply))
    }
}

/// Opens a wallet for a new client and funds it; returns the worker and the wallet's path.
async fn set_up_worker(settings: &Settings, api_base: String) -> anyhow::Result<(Worker, String)> {
    let client = Uuid::new_v4();
    let base = format!("{api_base}/v1/clients/{client}");
    let worker = Worker {
        http: reqwest::Client::builder().no_proxy().build()?,
        bearer: crate::platform::client_bearer(settings, &base)?,
        base,
    };
    let opened = worker
        .post("/wallets", "bench-open", r#"{"currency":"RUB"}"#)
        .await
        .context("opening a wallet")?;
    let wallet = opened
        .wallets
        .first()
        .context("the open-wallet reply names no wallet")?
        .wallet_id;
    worker
        .post(
            &format!("/wallets/{wallet}/top-ups"),
            "bench-fund",
            FUNDING_BODY,
        )
        .await
        .context("funding the wallet")?;
    Ok((worker, format!("/wallets/{wallet}")))
}

/// Top-ups of 1.00, every fourth request a payment of 1.00, until `deadline`.
async fn drive(worker: Worker, wallet: String, deadline: Instant) -> WorkerFigures {
    let top_up = format!("{wallet}/top-ups");
    let pay = format!("{wallet}/payments");
    let mut figures = WorkerFigures::default();
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        let payment = n % 4 == 3;
        let (path, body) = if payment {
            (&pay, PAYMENT_BODY)
        } else {
            (&top_up, TOP_UP_BODY)
        };
        let key = format!("bench-{n}");
        n += 1;
        let sent = Instant::now();
        let result = worker.try_post(path, &key, body).await;
        let done = Instant::now();
        match result {
            Ok((_, reply)) if reply.status == "accepted" => match reply.position {
                Some(p) => {
                    if payment {
                        figures.payments += 1;
                    } else {
                        figures.top_ups += 1;
                    }
                    figures.samples.push(Sample {
                        sent,
                        done,
                        position: (p.partition, p.sequence),
                        events: reply.events.len(),
                    });
                }
                None => {
                    figures.failed += 1;
                    figures
                        .first_problem
                        .get_or_insert_with(|| "accepted without a position".into());
                }
            },
            Ok((status, reply)) => {
                figures.rejected += 1;
                figures.first_problem.get_or_insert_with(|| {
                    format!(
                        "HTTP {status} {} {}",
                        reply.status,
                        reply.code.unwrap_or_default()
                    )
                });
            }
            Err(e) => {
                figures.failed += 1;
                figures
                    .first_problem
                    .get_or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    figures
}

// ---- statistics --------------------------------------------------------------------------

#[derive(Clone, Copy, Default)]
struct Latency {
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

impl Latency {
    fn of(mut values: Vec<Duration>) -> Latency {
        values.sort_unstable();
        Latency {
            p50: percentile(&values, 500),
            p90: percentile(&values, 900),
            p99: percentile(&values, 990),
            max: values.last().copied().unwrap_or_default(),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
        })
    }
}

/// Nearest-rank percentile of sorted values, `permille` in 0..=1000.
pub(crate) fn percentile(sorted: &[Duration], permille: usize) -> Duration {
    let rank = (permille * sorted.len()).div_ceil(1000).max(1);
    sorted
        .get(rank.min(sorted.len()).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

// ---- the run -----------------------------------------------------------------------------

struct Report {
    concurrency: usize,
    seconds: u64,
    partitions: u32,
    elapsed: Duration,
    requests: u64,
    top_ups: u64,
    payments: u64,
    rejected: u64,
    failed: u64,
    first_problem: Option<String>,
    events: u64,
    rest: Latency,
    visible: Latency,
    end_to_end: Latency,
    relay: Latency,
    seen_before_reply: usize,
    event_bytes: usize,
    kafka: KafkaFigures,
    postgres: PostgresFigures,
}

async fn measure(
    settings: &mut Settings,
    raw_topic: &str,
    concurrency: usize,
    duration: Duration,
    kafka_records: u64,
) -> anyhow::Result<Report> {
    let mut platform = start_platform(settings).await?;
    let (watcher, mut arrivals_rx) = watch_topic(settings)?;
    platform.tasks.push(watcher);
    let api_base = format!("http://{}", settings.command_api_addr);
    eprintln!(
        "[bench] platform up (API {}, topic {}); opening {concurrency} wallets",
        settings.command_api_addr, settings.topic
    );

    let setups = futures::future::join_all(
        (0..concurrency).map(|_| set_up_worker(settings, api_base.clone())),
    )
    .await;
    let workers = setups.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    eprintln!(
        "[bench] driving the command API for {} s",
        duration.as_secs()
    );
    let start = Instant::now();
    let wall_start = OffsetDateTime::now_utc();
    let deadline = start + duration;
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(w, wallet)| tokio::spawn(drive(w, wallet, deadline)))
        .collect();
    let mut all = WorkerFigures::default();
    for h in handles {
        let mut f = h.await.context("a bench worker panicked")?;
        all.samples.append(&mut f.samples);
        all.top_ups += f.top_ups;
        all.payments += f.payments;
        all.rejected += f.rejected;
        all.failed += f.failed;
        if all.first_problem.is_none() {
            all.first_problem = f.first_problem;
        }
    }
    let elapsed = start.elapsed();
    anyhow::ensure!(
        !all.samples.is_empty(),
        "no command was accepted: {}",
        all.first_problem.unwrap_or_default()
    );

    // Every accepted position must reach the topic.
    eprintln!(
        "[bench] waiting for {} positions on the topic",
        all.samples.len()
    );
    let wanted: HashSet<(u32, u64)> = all.samples.iter().map(|s| s.position).collect();
    let mut seen: HashMap<(u32, u64), Instant> = HashMap::with_capacity(wanted.len() * 2);
    let mut missing = wanted.len();
    let (mut bytes, mut records) = (0usize, 0usize);
    let wait_deadline = tokio::time::Instant::now() + VISIBLE_TIMEOUT;
    let mut batch = Vec::new();
    while missing > 0 {
        anyhow::ensure!(
            !platform.relay_stopped(),
            "the relay stopped with {missing} positions unpublished"
        );
        match tokio::time::timeout_at(wait_deadline, arrivals_rx.recv()).await {
            Err(_) => anyhow::bail!(
                "{missing} accepted positions did not reach {} within {} s",
                settings.topic,
                VISIBLE_TIMEOUT.as_secs()
            ),
            Ok(None) => anyhow::bail!("the topic watcher stopped"),
            Ok(Some(a)) => batch.push(a),
        }
        while let Ok(a) = arrivals_rx.try_recv() {
            batch.push(a);
        }
        for a in batch.drain(..) {
            let (envelope, _) = platform
                .codec
                .decode(&a.payload)
                .await
                .context("decoding a record of the bench topic")?;
            anyhow::ensure!(
                i64::from(envelope.partition) == i64::from(a.partition),
                "event of partition {} found in partition {}",
                envelope.partition,
                a.partition
            );
            bytes += a.payload.len();
            records += 1;
            let key = (envelope.partition, envelope.sequence);
            // A record published twice (relay retry) counts at its first arrival.
            if let Entry::Vacant(slot) = seen.entry(key) {
                slot.insert(a.at);
                if wanted.contains(&key) {
                    missing -= 1;
                }
            }
        }
    }
    let published = published_at(&platform.pool, start, wall_start).await?;
    platform.stop().await;

    let mut rest = Vec::with_capacity(all.samples.len());
    let mut visible = Vec::with_capacity(all.samples.len());
    let mut end_to_end = Vec::with_capacity(all.samples.len());
    let mut relay = Vec::with_capacity(all.samples.len());
    let mut seen_before_reply = 0;
    let mut events = 0u64;
    for s in &all.samples {
        if let Some(at) = published.get(&s.position) {
            relay.push(at.saturating_duration_since(s.done));
        }
        let at = seen
            .get(&s.position)
            .copied()
            .context("a position vanished")?;
        rest.push(s.done.duration_since(s.sent));
        if at < s.done {
            seen_before_reply += 1;
        }
        visible.push(at.saturating_duration_since(s.done));
        end_to_end.push(at.saturating_duration_since(s.sent));
        events += u64::try_from(s.events)?;
    }
    let event_bytes = bytes.checked_div(records).unwrap_or(0).max(1);

    eprintln!("[bench] baseline: raw Kafka produce of {kafka_records} {event_bytes}-byte records");
    let kafka = kafka_baseline(settings, raw_topic, event_bytes, kafka_records, duration).await?;
    eprintln!(
        "[bench] baseline: raw Postgres single-row INSERTs for {} s",
        duration.as_secs()
    );
    let postgres =
        postgres_baseline(&settings.database_url, concurrency, event_bytes, duration).await?;

    Ok(Report {
        concurrency,
        seconds: duration.as_secs(),
        partitions: settings.partitions,
        elapsed,
        requests: u64::try_from(all.samples.len())?,
        top_ups: all.top_ups,
        payments: all.payments,
        rejected: all.rejected,
        failed: all.failed,
        first_problem: all.first_problem,
        events,
        rest: Latency::of(rest),
        visible: Latency::of(visible),
        end_to_end: Latency::of(end_to_end),
        relay: Latency::of(relay),
        seen_before_reply,
        event_bytes,
        kafka,
        postgres,
    })
}

/// When the relay marked each event published (after the broker's acks), as `Instant`s of this
/// process: `outbox.published_at` is `clock_timestamp()` of the Postgres server on this machine,
/// placed on the monotonic clock through the pair (`start`, `wall_start`) read together.
async fn published_at(
    pool: &PgPool,
    start: Instant,
    wall_start: OffsetDateTime,
) -> anyhow::Result<HashMap<(u32, u64), Instant>> {
    // The relay marks a batch after the consumer may already have seen it.
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
                .fetch_one(pool)
                .await?;
        if pending == 0 || Instant::now() > until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows: Vec<(i32, i64, OffsetDateTime)> = sqlx::query_as(
        "SELECT partition, sequence, published_at FROM outbox WHERE published_at IS NOT NULL",
    )
    .fetch_all(pool)
    .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for (partition, sequence, at) in rows {
        let offset = at - wall_start;
        let instant = if offset.is_negative() {
            start.checked_sub(Duration::try_from(-offset)?)
        } else {
            start.checked_add(Duration::try_from(offset)?)
        };
        if let Some(instant) = instant {
            out.insert(
                (u32::try_from(partition)?, u64::try_from(sequence)?),
                instant,
            );
        }
    }
    Ok(out)
}

// ---- baselines ---------------------------------------------------------------------------

struct KafkaFigures {
    records: u64,
    elapsed: Duration,
}

/// An idempotent acks=all producer (the relay's settings) writing `count` records of `size`
/// bytes (or as many as fit in `duration`) to a topic of the same partition count,
/// round-robin over partitions, `KAFKA_WINDOW` in flight.
async fn kafka_baseline(
    settings: &Settings,
    topic: &str,
    size: usize,
    count: u64,
    duration: Duration,
) -> anyhow::Result<KafkaFigures> {
    kafka::ensure_topic(&settings.kafka_bootstrap, topic, settings.partitions).await?;
    let producer = kafka::producer(&settings.kafka_bootstrap)?;
    let payload: Vec<u8> = (0..size)
        .map(|i| u8::try_from(i % 251).unwrap_or(0))
        .collect();
    let keys: Vec<String> = (0..1024).map(|_| Uuid::new_v4().to_string()).collect();
    let partitions = i32::try_from(settings.partitions)?;

    // Metadata and the producer id are fetched on the first send: not part of the rate.
    producer
        .send(
            FutureRecord::to(topic)
                .partition(0)
                .key(&keys[0])
                .payload(&payload),
            Duration::from_secs(30),
        )
        .await
        .map_err(|(e, _)| e)
        .context("the first record of the Kafka baseline")?;

    let mut in_flight: FuturesUnordered<DeliveryFuture> = FuturesUnordered::new();
    let mut acked: u64 = 0;
    let settle = |r: Option<<DeliveryFuture as std::future::Future>::Output>,
                  acked: &mut u64|
     -> anyhow::Result<()> {
        match r {
            Some(Ok(Ok(_))) => {
                *acked += 1;
                Ok(())
            }
            Some(Ok(Err((e, _)))) => Err(e).context("Kafka baseline delivery"),
            Some(Err(_)) => anyhow::bail!("Kafka baseline delivery cancelled"),
            None => Ok(()),
        }
    };
    let start = Instant::now();
    let deadline = start + duration;
    let mut sent: u64 = 0;
    let mut partition: i32 = 0;
    while sent < count && Instant::now() < deadline {
        if in_flight.len() >= KAFKA_WINDOW {
            settle(in_flight.next().await, &mut acked)?;
            continue;
        }
        let record = FutureRecord::to(topic)
            .partition(partition)
            .key(&keys[usize::try_from(sent)? % keys.len()])
            .payload(&payload);
        match producer.send_result(record) {
            Ok(f) => {
                in_flight.push(f);
                sent += 1;
                partition = (partition + 1) % partitions;
                if sent.is_multiple_of(1000) {
                    tokio::task::yield_now().await;
                }
            }
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                if in_flight.is_empty() {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                } else {
                    settle(in_flight.next().await, &mut acked)?;
                }
            }
            Err((e, _)) => return Err(e).context("Kafka baseline produce"),
        }
    }
    while let Some(r) = in_flight.next().await {
        settle(Some(r), &mut acked)?;
    }
    Ok(KafkaFigures {
        records: acked,
        elapsed: start.elapsed(),
    })
}

struct PostgresFigures {
    commits: u64,
    elapsed: Duration,
    connections: usize,
}

/// `concurrency` connections, each committing single-row INSERTs (autocommit) with a jsonb
/// payload of about `size` bytes.
async fn postgres_baseline(
    url: &str,
    concurrency: usize,
    size: usize,
    duration: Duration,
) -> anyhow::Result<PostgresFigures> {
    let pool = PgPoolOptions::new()
        .max_connections(u32::try_from(concurrency)?)
        .connect(url)
        .await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_baseline (id uuid PRIMARY KEY, client_id uuid, payload jsonb)",
    )
    .execute(&pool)
    .await?;
    let payload = Arc::new(json!({ "pad": "x".repeat(size.saturating_sub(10)) }));
    let barrier = Arc::new(Barrier::new(concurrency + 1));
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let pool = pool.clone();
        let payload = payload.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            let conn = pool.acquire().await;
            barrier.wait().await;
            let mut conn = conn?;
            let client = Uuid::new_v4();
            let deadline = Instant::now() + duration;
            let mut commits: u64 = 0;
            while Instant::now() < deadline {
                sqlx::query(
                    "INSERT INTO bench_baseline (id, client_id, payload) VALUES ($1, $2, $3)",
                )
                .bind(Uuid::new_v4())
                .bind(client)
                .bind(payload.as_ref())
                .execute(&mut *conn)
                .await?;
                commits += 1;
            }
            Ok::<u64, sqlx::Error>(commits)
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut commits = 0;
    for t in tasks {
        commits += t.await.context("a Postgres baseline task panicked")??;
    }
    let elapsed = start.elapsed();
    pool.close().await;
    Ok(PostgresFigures {
        commits,
        elapsed,
        connections: concurrency,
    })
}

// ---- report and cleanup ------------------------------------------------------------------

impl Report {
    fn print(&self) {
        let commands_per_s = per_second(self.requests, self.elapsed);
        let events_per_s = per_second(self.events, self.elapsed);
        let kafka_per_s = per_second(self.kafka.records, self.kafka.elapsed);
        let pg_per_s = per_second(self.postgres.commits, self.postgres.elapsed);
        let handler_commands = self.top_ups + 2 * self.payments;
        println!(
            "ETR commands benchmark (concurrency {}, {} s, partitions {})",
            self.concurrency, self.seconds, self.partitions
        );
        println!(
            "  commands accepted     {:>8}   ({:.1} /s)   REST p50 {:.1} ms  p99 {:.1} ms",
            self.requests,
            commands_per_s,
            ms(self.rest.p50),
            ms(self.rest.p99)
        );
        println!(
            "    {} top-ups + {} payments (= {} handler commands); {} rejected, {} failed",
            self.top_ups, self.payments, handler_commands, self.rejected, self.failed
        );
        if let Some(p) = &self.first_problem {
            println!("    first problem: {p}");
        }
        println!(
            "  events written        {:>8}   ({:.1} /s)   {} bytes each on average (Avro)",
            self.events, events_per_s, self.event_bytes
        );
        println!(
            "  accepted → on etr topic          p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} seen before the HTTP reply)",
            ms(self.visible.p50),
            ms(self.visible.p99),
            ms(self.visible.max),
            self.seen_before_reply
        );
        println!(
            "    of which accepted → relay acked p50 {:.1} ms  p99 {:.1} ms  (outbox.published_at)",
            ms(self.relay.p50),
            ms(self.relay.p99)
        );
        println!(
            "  sent → on etr topic              p50 {:.1} ms  p99 {:.1} ms",
            ms(self.end_to_end.p50),
            ms(self.end_to_end.p99)
        );
        println!("baselines (same run)");
        println!(
            "  raw Kafka produce     {:>8.0} records/s ({} records of {} bytes, idempotent acks=all, {} in flight)",
            kafka_per_s, self.kafka.records, self.event_bytes, KAFKA_WINDOW
        );
        println!(
            "  raw Postgres commits  {:>8.0} /s ({} single-row INSERTs, {} connections, ~{}-byte jsonb)",
            pg_per_s, self.postgres.commits, self.postgres.connections, self.event_bytes
        );
        println!("ratios");
        println!(
            "  commands/s ÷ raw Postgres commits/s = {:.2}",
            ratio(commands_per_s, pg_per_s)
        );
        println!(
            "  events/s   ÷ raw Kafka produce/s    = {:.2}",
            ratio(events_per_s, kafka_per_s)
        );
        let line = json!({
            "bench": "commands",
            "concurrency": self.concurrency,
            "seconds": self.seconds,
            "partitions": self.partitions,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "commands_accepted": self.requests,
            "commands_per_s": round1(commands_per_s),
            "top_ups": self.top_ups,
            "payments": self.payments,
            "handler_commands": handler_commands,
            "rejected": self.rejected,
            "failed": self.failed,
            "rest_latency": self.rest.json(),
            "events_written": self.events,
            "events_per_s": round1(events_per_s),
            "event_bytes": self.event_bytes,
            "accepted_to_topic": self.visible.json(),
            "sent_to_topic": self.end_to_end.json(),
            "accepted_to_relay_acked": self.relay.json(),
            "seen_before_reply": self.seen_before_reply,
            "raw_kafka_records_per_s": round1(kafka_per_s),
            "raw_kafka_records": self.kafka.records,
            "raw_postgres_commits_per_s": round1(pg_per_s),
            "raw_postgres_commits": self.postgres.commits,
            "raw_postgres_connections": self.postgres.connections,
            "commands_per_raw_postgres_commit": round3(ratio(commands_per_s, pg_per_s)),
            "events_per_raw_kafka_record": round3(ratio(events_per_s, kafka_per_s)),
        });
        println!("{line}");
    }
}

/// Drops the bench database; failures are only logged.
///
/// The bench topics are left on the broker: Tansu 0.6 (libsql) deletes every topic of the
/// cluster on a DeleteTopics request for one of them (`topic_delete_by.sql` filters on the
/// cluster only), so this never asks the broker to delete anything.
pub(crate) async fn cleanup(settings: &Settings) {
    let url = &settings.database_url;
    let name = PgConnectOptions::from_str(url)
        .ok()
        .and_then(|o| o.get_database().map(str::to_owned));
    let Some(name) = name.filter(|n| n.starts_with("etr_bench")) else {
        return;
    };
    let admin_url = pg::with_database(url, "postgres");
    match sqlx::PgConnection::connect(&admin_url).await {
        Ok(mut conn) => {
            let sql = format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                name.replace('"', "\"\"")
            );
            if let Err(e) = sqlx::query(&sql).execute(&mut conn).await {
                tracing::warn!(error = %e, database = %name, "could not drop the bench database");
            }
            let _ = conn.close().await;
        }
        Err(e) => tracing::warn!(error = %e, "could not drop the bench database"),
    }
}
