//! REST mode: the platform running in this process ([`crate::platform`]: registry, relay,
//! command API with bearer tokens, payment processor, projections) against a fresh database
//! and a fresh topic, driven over HTTP by `connections` clients (each its own client id,
//! wallet, bearer token and connection) for `duration`; every accepted position is then
//! watched for on the topic. Then, on the same machine, what the broker and Postgres do raw:
//! an idempotent acks=all producer with everything in flight, and single-row autocommit
//! INSERTs on as many connections.
//!
//! Each client funds its wallet, then sends top-ups of 1.00 with every fourth request a
//! payment of 1.00. A payment answers `202 Accepted` once its reservation is committed (its
//! position is the reservation's); the payment processor executes it afterwards (a second
//! handler command, not a REST request).

#![allow(clippy::float_arithmetic)] // rates and latency statistics, never money

use etr_command_api::handler::Position;
use etr_infra::config::Settings;
use etr_infra::kafka;
use etr_platform::client_bearer;
use futures::stream::{FuturesUnordered, StreamExt as _};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer as _, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use rdkafka::{Message as _, Offset, TopicPartitionList};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::json;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Barrier};
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::{ensure, Context as _};
use crate::handler::{drop_database, Scratch};
use crate::platform;
use crate::stats::{ms, per_second, ratio, round1, round3, Latency};
use crate::Error;

/// How long the end of the run waits for the last accepted positions to reach the topic.
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Records in flight at once in the raw Kafka baseline.
const KAFKA_WINDOW: usize = 10_000;
/// What each wallet is funded with before the measured run (not measured).
const FUNDING_BODY: &str = r#"{"amount":"100000.00","currency":"RUB","source":"bank_transfer"}"#;
const TOP_UP_BODY: &str = r#"{"amount":"1.00","currency":"RUB","source":"card"}"#;
const PAYMENT_BODY: &str = r#"{"amount":"1.00","currency":"RUB","service_id":"mobile"}"#;

/// What the REST mode is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// Concurrent HTTP clients, each with its own client id, wallet and connection.
    pub connections: usize,
    /// Length of the measured run and of the Postgres baseline.
    pub duration: Duration,
    /// Records written by the raw Kafka baseline (stops earlier after `duration`). They stay
    /// on the broker: nothing here deletes topics.
    pub kafka_records: u64,
}

/// Runs the REST mode in a fresh database and on fresh topics, prints its report and
/// returns it as JSON. The database is dropped afterwards; the topics are left on the
/// broker (Tansu 0.6 deletes every topic of the cluster on one DeleteTopics request).
///
/// Errors: bad options ([`Error::Invalid`]); the platform not starting; no command
/// accepted; an accepted position not reaching the topic ([`Error::Failed`]).
pub async fn run(mut settings: Settings, options: &Options) -> Result<serde_json::Value, Error> {
    if !(1..=1024).contains(&options.connections) {
        return Err(Error::Invalid("--connections must be 1..=1024".into()));
    }
    if options.kafka_records == 0 {
        return Err(Error::Invalid("--kafka-records must be at least 1".into()));
    }
    let db = Scratch::create().await?;
    let url = db.url.clone();
    db.pool.close().await;
    let run_id = Uuid::new_v4().simple();
    settings.database_url = url.clone();
    settings.topic = format!("etr.bench-{run_id}");
    let raw_topic = format!("etr.bench-raw-{run_id}");
    let result = measure(&mut settings, &raw_topic, options).await;
    drop_database(&url).await;
    let report = result?;
    report.print();
    Ok(report.json())
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
type Arrivals = mpsc::UnboundedReceiver<Arrival>;

fn watch_topic(settings: &Settings) -> Result<(JoinHandle<()>, Arrivals), Error> {
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
    async fn post(&self, path: &str, key: &str, body: &'static str) -> Result<Reply, Error> {
        let (status, reply) = self.try_post(path, key, body).await?;
        ensure!(
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
    ) -> Result<(u16, Reply), Error> {
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
        let reply: Reply = serde_json::from_slice(&bytes).context(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&bytes)
        ))?;
        Ok((status, reply))
    }
}

/// Opens a wallet for a new client and funds it; returns the worker and the wallet's path.
async fn set_up_worker(settings: &Settings, api_base: String) -> Result<(Worker, String), Error> {
    let client = Uuid::new_v4();
    let base = format!("{api_base}/v1/clients/{client}");
    let worker = Worker {
        http: reqwest::Client::builder().no_proxy().build()?,
        bearer: client_bearer(settings, &base)?,
        base,
    };
    let opened = worker
        .post("/wallets", "bench-open", r#"{"currency":"RUB"}"#)
        .await
        .context("opening a wallet")?;
    let wallet = opened
        .wallets
        .first()
        .ok_or_else(|| Error::Failed("the open-wallet reply names no wallet".into()))?
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
                figures.first_problem.get_or_insert_with(|| e.to_string());
            }
        }
    }
    figures
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
    /// Positions whose publication was seen (0 when the watermarks could not be read).
    relay_samples: usize,
    seen_before_reply: usize,
    event_bytes: usize,
    kafka: KafkaFigures,
    postgres: PostgresFigures,
}

async fn measure(
    settings: &mut Settings,
    raw_topic: &str,
    options: &Options,
) -> Result<Report, Error> {
    let (concurrency, duration, kafka_records) =
        (options.connections, options.duration, options.kafka_records);
    let mut platform = platform::start(settings, platform::Roles::ALL).await?;
    let (watcher, mut arrivals_rx) = watch_topic(settings)?;
    platform.adopt(watcher);
    let api_base = format!("http://{}", settings.command_api_addr);
    eprintln!(
        "[bench] platform up (API {}, topic {}); opening {concurrency} wallets",
        settings.command_api_addr, settings.topic
    );

    let setups = futures::future::join_all(
        (0..concurrency).map(|_| set_up_worker(settings, api_base.clone())),
    )
    .await;
    let workers = setups.into_iter().collect::<Result<Vec<_>, Error>>()?;

    eprintln!(
        "[bench] driving the command API for {} s",
        duration.as_secs()
    );
    let (stop_marks, marks_stopped) = tokio::sync::oneshot::channel();
    let marks = watch_watermarks(platform.pool.clone(), marks_stopped);
    let start = Instant::now();
    let deadline = start + duration;
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(w, wallet)| tokio::spawn(drive(w, wallet, deadline)))
        .collect();
    let mut all = WorkerFigures::default();
    for h in handles {
        let mut f = h.await.map_err(|e| Error::Panicked(e.to_string()))?;
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
    ensure!(
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
        ensure!(
            !platform.relay_stopped(),
            "the relay stopped with {missing} positions unpublished"
        );
        match tokio::time::timeout_at(wait_deadline, arrivals_rx.recv()).await {
            Err(_) => {
                return Err(Error::Failed(format!(
                    "{missing} accepted positions did not reach {} within {} s",
                    settings.topic,
                    VISIBLE_TIMEOUT.as_secs()
                )))
            }
            Ok(None) => return Err(Error::Failed("the topic watcher stopped".into())),
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
            ensure!(
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
    // The relay moves its watermark after the broker's acks, possibly after the watcher
    // saw the records: give it a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop_marks.send(());
    let published = marks.await.map_err(|e| Error::Panicked(e.to_string()))?;
    platform.stop().await;

    let mut rest = Vec::with_capacity(all.samples.len());
    let mut visible = Vec::with_capacity(all.samples.len());
    let mut end_to_end = Vec::with_capacity(all.samples.len());
    let mut relay = Vec::with_capacity(all.samples.len());
    let mut seen_before_reply = 0;
    let mut events = 0u64;
    for s in &all.samples {
        if let Some(at) = published.covered_at(s.position.0, s.position.1) {
            relay.push(at.saturating_duration_since(s.done));
        }
        let at = seen
            .get(&s.position)
            .copied()
            .ok_or_else(|| Error::Failed("a position vanished".into()))?;
        rest.push(s.done.duration_since(s.sent));
        if at < s.done {
            seen_before_reply += 1;
        }
        visible.push(at.saturating_duration_since(s.done));
        end_to_end.push(at.saturating_duration_since(s.sent));
        events += s.events as u64;
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
        requests: all.samples.len() as u64,
        top_ups: all.top_ups,
        payments: all.payments,
        rejected: all.rejected,
        failed: all.failed,
        first_problem: all.first_problem,
        events,
        rest: Latency::of(rest),
        visible: Latency::of(visible),
        end_to_end: Latency::of(end_to_end),
        relay_samples: relay.len(),
        relay: Latency::of(relay),
        seen_before_reply,
        event_bytes,
        kafka,
        postgres,
    })
}

/// How often the relay's watermarks are read during the run.
const WATERMARK_POLL: Duration = Duration::from_millis(20);

/// When each partition's published watermark (`relay_watermarks`: the broker acknowledged
/// every event up to it) was seen to move, by polling every [`WATERMARK_POLL`].
#[derive(Default)]
struct Watermarks {
    moves: HashMap<u32, Vec<(Instant, u64)>>,
}

impl Watermarks {
    /// The first time `partition`'s watermark was seen at or past `sequence`.
    fn covered_at(&self, partition: u32, sequence: u64) -> Option<Instant> {
        let moves = self.moves.get(&partition)?;
        let i = moves.partition_point(|(_, s)| *s < sequence);
        moves.get(i).map(|(at, _)| *at)
    }

    async fn poll(&mut self, pool: &PgPool) -> Result<(), sqlx::Error> {
        let rows: Vec<(i32, i64)> =
            sqlx::query_as("SELECT partition, published_sequence FROM relay_watermarks")
                .fetch_all(pool)
                .await?;
        let now = Instant::now();
        for (partition, sequence) in rows {
            let (Ok(p), Ok(s)) = (u32::try_from(partition), u64::try_from(sequence)) else {
                continue;
            };
            let moves = self.moves.entry(p).or_default();
            if moves.last().is_none_or(|(_, last)| *last < s) {
                moves.push((now, s));
            }
        }
        Ok(())
    }
}

/// Polls the watermarks until `stop` fires (then once more); a relay without the table
/// leaves them empty (logged once).
fn watch_watermarks(
    pool: PgPool,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> JoinHandle<Watermarks> {
    tokio::spawn(async move {
        let mut marks = Watermarks::default();
        loop {
            if let Err(e) = marks.poll(&pool).await {
                tracing::warn!(error = %e, "relay watermarks not readable; the relay figure is left out");
                return Watermarks::default();
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::time::sleep(WATERMARK_POLL) => {}
            }
        }
        let _ = marks.poll(&pool).await;
        marks
    })
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
) -> Result<KafkaFigures, Error> {
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
     -> Result<(), Error> {
        match r {
            Some(Ok(Ok(_))) => {
                *acked += 1;
                Ok(())
            }
            Some(Ok(Err((e, _)))) => Err(e).context("Kafka baseline delivery"),
            Some(Err(_)) => Err(Error::Failed("Kafka baseline delivery cancelled".into())),
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
) -> Result<PostgresFigures, Error> {
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
        commits += t.await.map_err(|e| Error::Panicked(e.to_string()))??;
    }
    let elapsed = start.elapsed();
    pool.close().await;
    Ok(PostgresFigures {
        commits,
        elapsed,
        connections: concurrency,
    })
}

// ---- report ------------------------------------------------------------------------------

impl Report {
    fn print(&self) {
        let commands_per_s = per_second(self.requests, self.elapsed);
        let events_per_s = per_second(self.events, self.elapsed);
        let kafka_per_s = per_second(self.kafka.records, self.kafka.elapsed);
        let pg_per_s = per_second(self.postgres.commits, self.postgres.elapsed);
        println!(
            "ETR commands benchmark, REST mode ({} connections, {} s, partitions {}; registry, relay, command API, payment processor and projections running in this process)",
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
            "    {} top-ups + {} payments (202 after the reservation; the payment processor then executes each: one more handler command); {} rejected, {} failed",
            self.top_ups, self.payments, self.rejected, self.failed
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
        if self.relay_samples > 0 {
            println!(
                "    of which accepted → relay acked p50 {:.1} ms  p99 {:.1} ms  (the partition's relay watermark past it; polled every {} ms)",
                ms(self.relay.p50),
                ms(self.relay.p99),
                WATERMARK_POLL.as_millis()
            );
        }
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
    }

    fn json(&self) -> serde_json::Value {
        let commands_per_s = per_second(self.requests, self.elapsed);
        let events_per_s = per_second(self.events, self.elapsed);
        let kafka_per_s = per_second(self.kafka.records, self.kafka.elapsed);
        let pg_per_s = per_second(self.postgres.commits, self.postgres.elapsed);
        json!({
            "connections": self.concurrency,
            "seconds": self.seconds,
            "partitions": self.partitions,
            "elapsed_s": round3(self.elapsed.as_secs_f64()),
            "commands_accepted": self.requests,
            "commands_per_s": round1(commands_per_s),
            "top_ups": self.top_ups,
            "payments": self.payments,
            "rejected": self.rejected,
            "failed": self.failed,
            "first_problem": self.first_problem,
            "rest_latency": self.rest.json(),
            "events_written": self.events,
            "events_per_s": round1(events_per_s),
            "event_bytes": self.event_bytes,
            "accepted_to_topic": self.visible.json(),
            "sent_to_topic": self.end_to_end.json(),
            "accepted_to_relay_acked": (self.relay_samples > 0).then(|| self.relay.json()),
            "seen_before_reply": self.seen_before_reply,
            "raw_kafka_records_per_s": round1(kafka_per_s),
            "raw_kafka_records": self.kafka.records,
            "raw_postgres_commits_per_s": round1(pg_per_s),
            "raw_postgres_commits": self.postgres.commits,
            "raw_postgres_connections": self.postgres.connections,
            "commands_per_raw_postgres_commit": round3(ratio(commands_per_s, pg_per_s)),
            "events_per_raw_kafka_record": round3(ratio(events_per_s, kafka_per_s)),
        })
    }
}
