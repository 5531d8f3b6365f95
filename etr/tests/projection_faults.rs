//! Read-side faults of issue 7, on the real broker and a fresh database:
//!
//! - fault 7, a projection skipped events after a gap: an event whose partition sequence is
//!   beyond the checkpoint + 1 (the relay re-sent the missing one later, so it sits at a
//!   higher offset) was applied and the missing one skipped forever. Now the projector, the
//!   blue/green rebuild and the log reader hold such events back until the gap is filled.
//! - fault 8, one bad record stopped everything: a record that cannot be decoded made the
//!   projector return an error. Now it goes to the dead-letter table and the rest flows.
//!
//! Events are encoded with the platform's codec through the platform's own registry (served
//! in-process from the test database) and produced straight to the test's own topic.

mod support;

use etr_domain::{
    payment, wallet, Actor, AggregateKind, ClientId, Currency, Envelope, Event, Money,
};
use etr_infra::avro::EventCodec;
use etr_projections::dead_letters::{self, Outcome, Which};
use etr_projections::runtime::{Projection, Projector};
use etr_projections::timeline::Timeline;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use sqlx::{PgConnection, PgPool};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::{wait_projected, Env};
use time::OffsetDateTime;
use uuid::Uuid;

/// A test bed: the fresh database, the platform's registry serving it, the topic created.
struct Bed {
    env: Env,
    pool: PgPool,
    codec: EventCodec,
    producer: FutureProducer,
}

impl Bed {
    async fn new(name: &str) -> Bed {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("etr_projections=info")
            .with_test_writer()
            .try_init();
        let env = Env::new(name).await;
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
        let codec = env.codec();
        let producer = etr_infra::kafka::producer(&env.bootstrap()).expect("producer");
        Bed {
            env,
            pool,
            codec,
            producer,
        }
    }

    /// Produces raw bytes (or a null payload) to `partition`; returns the record's offset.
    async fn produce_raw(&self, partition: i32, key: &str, payload: Option<&[u8]>) -> i64 {
        let mut record = FutureRecord::<str, [u8]>::to(&self.env.topic)
            .partition(partition)
            .key(key);
        if let Some(p) = payload {
            record = record.payload(p);
        }
        let delivery = self
            .producer
            .send(record, Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
        delivery.offset
    }

    /// Encodes an event with the platform's codec and produces it to its envelope's partition.
    async fn produce(&self, event: &(Envelope, Event)) -> i64 {
        let bytes = self
            .codec
            .encode(&event.0, &event.1)
            .await
            .expect("encoded");
        let partition = i32::try_from(event.0.partition).unwrap();
        self.produce_raw(partition, &event.0.client_id.to_string(), Some(&bytes))
            .await
    }

    /// Starts a projector for `projection` in its consumer group, in this process.
    fn project<P: Projection + 'static>(
        &self,
        projection: P,
    ) -> tokio::task::JoinHandle<Result<(), etr_projections::Error>> {
        let projector = Projector::new(
            self.pool.clone(),
            self.env.codec(),
            &self.env.bootstrap(),
            &self.env.topic,
            projection,
        )
        .expect("projector");
        tokio::spawn(projector.run())
    }

    /// Starts a projector that holds at most `limit` events back per partition.
    fn project_holding<P: Projection + 'static>(
        &self,
        projection: P,
        limit: usize,
    ) -> tokio::task::JoinHandle<Result<(), etr_projections::Error>> {
        let projector = Projector::new(
            self.pool.clone(),
            self.env.codec(),
            &self.env.bootstrap(),
            &self.env.topic,
            projection,
        )
        .expect("projector")
        .with_hold_limit(limit);
        tokio::spawn(projector.run())
    }

    /// The `etr_dead_letters` gauge of `consumer` from the query API's `/metrics`.
    async fn dead_letter_gauge(&self, consumer: &str) -> Option<i64> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let keys = etr_query_api::auth::Keys::from_secret(support::JWT_SECRET.as_bytes());
        let router = etr_query_api::router(self.pool.clone(), keys);
        let server = tokio::spawn(async move { axum::serve(listener, router).await });
        let text = reqwest::get(format!("http://{addr}/metrics"))
            .await
            .expect("/metrics answers")
            .text()
            .await
            .unwrap();
        server.abort();
        let prefix = format!("etr_dead_letters{{consumer=\"{consumer}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map(|v| v.parse().expect("a count"))
    }

    async fn checkpoint(&self, projection: &str, partition: i32) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT sequence FROM projection_checkpoints WHERE projection = $1 AND partition = $2",
        )
        .bind(projection)
        .bind(partition)
        .fetch_optional(&self.pool)
        .await
        .unwrap()
    }

    /// The sequences of `partition` in the timeline read model.
    async fn timeline(&self, partition: i32) -> Vec<i64> {
        sqlx::query_scalar(
            "SELECT sequence FROM rm_timeline WHERE partition = $1 ORDER BY sequence",
        )
        .bind(partition)
        .fetch_all(&self.pool)
        .await
        .unwrap()
    }

    /// The offset the consumer group `<topic>.projection.<name>` committed for `partition`.
    fn committed(&self, projection: &str, partition: i32) -> Offset {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", self.env.bootstrap())
            .set(
                "group.id",
                format!("{}.projection.{projection}", self.env.topic),
            )
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&self.env.topic, partition);
        let found = consumer
            .committed_offsets(tpl, Duration::from_secs(10))
            .unwrap();
        found
            .find_partition(&self.env.topic, partition)
            .map_or(Offset::Invalid, |e| e.offset())
    }
}

/// `count` events of one new client on `partition`, sequences 1..=count: a wallet opened,
/// then top-ups.
fn client_events(partition: u32, count: u64) -> Vec<(Envelope, Event)> {
    let client = ClientId(Uuid::new_v4());
    let wallet_id = Uuid::new_v4();
    (1..=count)
        .map(|sequence| {
            let event = if sequence == 1 {
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
                            100 * i64::try_from(sequence).unwrap(),
                            2,
                        ),
                        currency: Currency::Rub,
                    },
                    source: "card".into(),
                })
            };
            (
                envelope(
                    client,
                    (AggregateKind::WalletAccount, wallet_id),
                    partition,
                    sequence,
                    sequence,
                    &event,
                ),
                event,
            )
        })
        .collect()
}

fn envelope(
    client: ClientId,
    aggregate: (AggregateKind, Uuid),
    partition: u32,
    sequence: u64,
    version: u64,
    event: &Event,
) -> Envelope {
    Envelope {
        event_id: Uuid::new_v4(),
        event_type: event.name().to_owned(),
        schema_version: 1,
        client_id: client,
        aggregate_type: aggregate.0,
        aggregate_id: aggregate.1,
        aggregate_version: version,
        partition,
        sequence,
        command_id: format!("{client}/c{sequence}"),
        correlation_id: format!("{client}/c{sequence}"),
        actor: Actor::client(client),
        occurred_at: OffsetDateTime::now_utc(),
        prev_hash: format!("{:064}", sequence - 1),
        hash: format!("{sequence:064}"),
    }
}

/// A projection that records the order it is handed events in (`test_applied.n`).
struct Recorder;

impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["test_applied"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        _event: &Event,
    ) -> Result<(), etr_projections::Error> {
        sqlx::query("INSERT INTO test_applied (partition, sequence) VALUES ($1, $2)")
            .bind(i32::try_from(envelope.partition).unwrap_or(i32::MAX))
            .bind(i64::try_from(envelope.sequence).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        Ok(())
    }
}

async fn create_recorder_table(pool: &PgPool) {
    sqlx::query(
        "CREATE TABLE test_applied (n BIGSERIAL PRIMARY KEY, partition INTEGER NOT NULL, sequence BIGINT NOT NULL)",
    )
    .execute(pool)
    .await
    .unwrap();
}

/// The sequences of `partition` in the order the recorder applied them.
async fn recorded(pool: &PgPool, partition: i32) -> Vec<i64> {
    sqlx::query_scalar("SELECT sequence FROM test_applied WHERE partition = $1 ORDER BY n")
        .bind(partition)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn stop(handle: tokio::task::JoinHandle<Result<(), etr_projections::Error>>) {
    handle.abort();
    let _ = handle.await;
}

/// Fault 7: sequences 1, 2, 4 of a partition on the log (3 was re-sent later by the relay).
/// The projector applies 1 and 2, holds 4 back and does not commit its offset; restarted,
/// with 3 and then 5 arriving, it applies everything in sequence order. Another partition
/// carries 1, 2, 4, 3, 5 from the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_projection_never_applies_past_a_gap() {
    let bed = Bed::new("gap").await;
    create_recorder_table(&bed.pool).await;
    let late = client_events(1, 5);
    let mixed = client_events(2, 5);
    for i in [0, 1, 3] {
        bed.produce(&late[i]).await;
    }
    for i in [0, 1, 3, 2, 4] {
        bed.produce(&mixed[i]).await;
    }
    let timeline = bed.project(Timeline);
    let recorder = bed.project(Recorder);
    for projection in ["timeline", "recorder"] {
        wait_projected(&bed.pool, projection, 2, 5).await;
        wait_projected(&bed.pool, projection, 1, 2).await;
    }
    // Time for the projectors to (wrongly) go on, and for their offset commits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for projection in ["timeline", "recorder"] {
        assert_eq!(
            bed.checkpoint(projection, 1).await,
            Some(2),
            "{projection} must not move its checkpoint past the gap at sequence 3"
        );
        match bed.committed(projection, 1) {
            Offset::Offset(o) => assert!(
                o <= 2,
                "{projection} committed offset {o}, past the held-back sequence 4 at offset 2"
            ),
            Offset::Invalid => {}
            other => panic!("unexpected committed offset {other:?}"),
        }
    }
    assert_eq!(bed.timeline(1).await, [1, 2], "sequence 4 is held back");
    assert_eq!(recorded(&bed.pool, 1).await, [1, 2]);
    assert_eq!(
        recorded(&bed.pool, 2).await,
        [1, 2, 3, 4, 5],
        "applied in sequence order"
    );
    assert!(!timeline.is_finished() && !recorder.is_finished());

    // Restart, then the missing event arrives, then the next one.
    stop(timeline).await;
    stop(recorder).await;
    let timeline = bed.project(Timeline);
    let recorder = bed.project(Recorder);
    bed.produce(&late[2]).await;
    bed.produce(&late[4]).await;
    for projection in ["timeline", "recorder"] {
        wait_projected(&bed.pool, projection, 1, 5).await;
        assert_eq!(bed.checkpoint(projection, 1).await, Some(5));
        assert_eq!(bed.checkpoint(projection, 2).await, Some(5));
    }
    assert_eq!(bed.timeline(1).await, [1, 2, 3, 4, 5]);
    assert_eq!(bed.timeline(2).await, [1, 2, 3, 4, 5]);
    assert_eq!(
        recorded(&bed.pool, 1).await,
        [1, 2, 3, 4, 5],
        "applied in sequence order"
    );
    assert_eq!(
        recorded(&bed.pool, 2).await,
        [1, 2, 3, 4, 5],
        "nothing applied twice"
    );
    stop(timeline).await;
    stop(recorder).await;
}

/// Fault 7 in the blue/green rebuild: the copy is built from the log in sequence order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blue_green_rebuild_applies_the_log_in_sequence_order() {
    let bed = Bed::new("gap_rebuild").await;
    create_recorder_table(&bed.pool).await;
    let events = client_events(0, 5);
    for i in [0, 1, 3, 2, 4] {
        bed.produce(&events[i]).await;
    }
    let summary = etr_projections::rebuild::blue_green(
        &bed.pool,
        &bed.env.database_url,
        &bed.codec,
        &bed.env.bootstrap(),
        &bed.env.topic,
        bed.env.partitions,
        &Recorder,
        |_| {},
    )
    .await
    .expect("rebuild");
    assert_eq!(summary.events_applied, 5);
    assert_eq!(bed.checkpoint("recorder", 0).await, Some(5));
    assert_eq!(recorded(&bed.pool, 0).await, [1, 2, 3, 4, 5]);
}

/// Fault 7 in the log reader (`etr tail`, `etr timeline`, `etr rebuild-snapshots`): events in
/// sequence order per partition; a gap still open at the end of the log is an error naming
/// the partition and the missing sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_reader_hands_out_events_in_sequence_order_and_reports_an_open_gap() {
    let bed = Bed::new("gap_tail").await;
    let events = client_events(3, 7);
    for i in [0, 1, 3, 2, 4] {
        bed.produce(&events[i]).await;
    }
    let tail = |bed: &Bed| {
        let mut command = tokio::process::Command::from(bed.env.command(&["tail"]));
        async move { command.output().await.expect("etr tail runs") }
    };
    let out = tail(&bed).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sequences: Vec<u64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| v["envelope"]["sequence"].as_u64().unwrap())
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5]);

    // Sequence 7 without 6: the reader must say so rather than skip 6.
    bed.produce(&events[6]).await;
    let out = tail(&bed).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "an open gap must fail the read");
    assert!(
        stderr.contains("partition 3") && stderr.contains("sequence 6"),
        "{stderr}"
    );
}

/// A dead letter as the test reads it: id, partition, offset, payload, reason.
type LetterRow = (i64, i32, i64, Option<Vec<u8>>, String);

/// Fault 8: undecodable records on one partition (garbage without a magic byte, an event
/// written with a schema id the registry does not know yet, a truncated record, a null
/// payload) among good events of other partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_records_go_to_dead_letters_and_the_rest_keeps_flowing() {
    let bed = Bed::new("dead_letters").await;
    let first = client_events(0, 3);
    let second = client_events(1, 5);
    let third = client_events(2, 3);
    // Sequence 3 of partition 1 is a payment event whose schema is not registered yet.
    let payment_id = Uuid::new_v4();
    let unknown_event = Event::Payment(payment::Event::PaymentInitiated {
        commission: None,
        payment_id,
        wallet_id: Uuid::new_v4(),
        amount: Money {
            amount: rust_decimal::Decimal::new(5_000, 2),
            currency: Currency::Rub,
        },
        service_id: "mobile".into(),
        attributes: BTreeMap::new(),
        recipient: None,
        card: None,
    });
    let unknown = (
        envelope(
            second[0].0.client_id,
            (AggregateKind::Payment, payment_id),
            1,
            3,
            1,
            &unknown_event,
        ),
        unknown_event,
    );
    for e in first.iter().chain(&third) {
        bed.produce(e).await;
    }
    bed.produce(&second[0]).await;
    bed.produce(&second[1]).await;
    // Garbage without a magic byte.
    let garbage = bed
        .produce_raw(1, "junk", Some(b"definitely not avro"))
        .await;
    // The payment event, framed with the id its schema will get when it is registered:
    // the body comes from a scratch registry, the id is the next one of the platform's.
    let (scratch, scratch_db) = etr_infra::pg::fresh_database("etr_test_scratch_registry")
        .await
        .unwrap();
    let scratch_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let scratch_url = format!("http://{}", scratch_listener.local_addr().unwrap());
    let scratch_registry = tokio::spawn(etr_infra::registry::serve(
        scratch.clone(),
        scratch_listener,
    ));
    let scratch_codec = EventCodec::new(&scratch_url, &bed.env.topic).unwrap();
    let framed = scratch_codec.encode(&unknown.0, &unknown.1).await.unwrap();
    scratch_registry.abort();
    scratch.close().await;
    if let Some((_, name)) = scratch_db.rsplit_once('/') {
        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&bed.pool)
            .await
            .unwrap();
    }
    let next_id: i64 = sqlx::query_scalar(
        "SELECT CASE WHEN is_called THEN last_value + 1 ELSE last_value END FROM schema_registry_schemas_id_seq",
    )
    .fetch_one(&bed.pool)
    .await
    .unwrap();
    let mut unknown_bytes = framed.clone();
    unknown_bytes[1..5].copy_from_slice(&u32::try_from(next_id).unwrap().to_be_bytes());
    let unknown_offset = bed.produce_raw(1, "payment", Some(&unknown_bytes)).await;
    // A truncated copy of a good record, and a tombstone.
    let whole = bed.codec.encode(&second[1].0, &second[1].1).await.unwrap();
    let truncated = bed
        .produce_raw(1, "cut", Some(&whole[..whole.len() / 2]))
        .await;
    let tombstone = bed.produce_raw(1, "tombstone", None).await;
    // Sequences 4 and 5 (the top-up generated as sequence 3 is not on the log: the payment
    // event is sequence 3).
    bed.produce(&second[3]).await;
    bed.produce(&second[4]).await;

    let timeline = bed.project(Timeline);
    wait_projected(&bed.pool, "timeline", 0, 3).await;
    wait_projected(&bed.pool, "timeline", 2, 3).await;
    wait_projected(&bed.pool, "timeline", 1, 2).await;
    assert!(
        !timeline.is_finished(),
        "a bad record must not stop the projector"
    );
    assert_eq!(bed.timeline(0).await, [1, 2, 3]);
    assert_eq!(bed.timeline(2).await, [1, 2, 3]);

    // The bad records are dead letters with their position and reason.
    let deadline = Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let letters: Vec<LetterRow> = sqlx::query_as(
            "SELECT id, partition, record_offset, payload, reason FROM dead_letters \
             WHERE consumer = 'projection.timeline' AND topic = $1 ORDER BY record_offset",
        )
        .bind(&bed.env.topic)
        .fetch_all(&bed.pool)
        .await
        .unwrap();
        if letters.len() >= 4 || Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let offsets: Vec<i64> = letters.iter().map(|l| l.2).collect();
    assert_eq!(offsets, [garbage, unknown_offset, truncated, tombstone]);
    assert!(letters.iter().all(|l| l.1 == 1));
    assert_eq!(letters[0].3.as_deref(), Some(&b"definitely not avro"[..]));
    assert!(letters[0].4.contains("magic byte"), "{}", letters[0].4);
    assert!(
        letters[1].4.contains(&format!("schema id {next_id}")),
        "{}",
        letters[1].4
    );
    assert!(letters[3].3.is_none());
    assert!(letters[3].4.contains("no payload"), "{}", letters[3].4);
    // Sequence 3 of partition 1 is the dead letter: 4 and 5 are held back behind it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(bed.checkpoint("timeline", 1).await, Some(2));
    assert_eq!(bed.timeline(1).await, [1, 2]);
    assert_eq!(bed.dead_letter_gauge("projection.timeline").await, Some(4));
    assert_eq!(bed.dead_letter_gauge("projection.wallets").await, Some(0));

    // Retrying before anything changed reports every one again, still open.
    let consumer = Which::Consumer("projection.timeline".into());
    let again = dead_letters::retry(&bed.pool, &bed.codec, &consumer)
        .await
        .unwrap();
    assert_eq!(again.len(), 4);
    assert!(
        again
            .iter()
            .all(|r| matches!(r.outcome, Outcome::Failed { .. })),
        "{again:?}"
    );
    let open = dead_letters::list(&bed.pool, Some("projection.timeline"), false)
        .await
        .unwrap();
    assert_eq!(open.len(), 4);
    assert!(open
        .iter()
        .all(|l| l.retries == 1 && l.resolved_at.is_none()));
    assert_eq!(bed.dead_letter_gauge("projection.timeline").await, Some(4));

    // The missing schema is registered (it gets the id the record carries); the retry
    // applies sequence 3, and the running projector then applies the held 4 and 5.
    let registered = bed.codec.encode(&unknown.0, &unknown.1).await.unwrap();
    assert_eq!(
        registered[1..5],
        u32::try_from(next_id).unwrap().to_be_bytes(),
        "the schema got the id the dead letter carries"
    );
    let unknown_id = letters[1].0;
    let retried = dead_letters::retry(&bed.pool, &bed.codec, &Which::One(unknown_id))
        .await
        .unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].outcome, Outcome::Applied { sequence: 3 });
    wait_projected(&bed.pool, "timeline", 1, 5).await;
    assert_eq!(bed.timeline(1).await, [1, 2, 3, 4, 5]);
    assert!(!timeline.is_finished());
    assert_eq!(bed.dead_letter_gauge("projection.timeline").await, Some(3));
    let all = dead_letters::list(&bed.pool, Some("projection.timeline"), true)
        .await
        .unwrap();
    let resolved: Vec<_> = all.iter().filter(|l| l.resolved_at.is_some()).collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].id, unknown_id);
    assert_eq!(resolved[0].sequence, Some(3));
    // Retrying it again changes nothing; the others are still reported.
    let again = dead_letters::retry(&bed.pool, &bed.codec, &Which::One(unknown_id))
        .await
        .unwrap();
    assert_eq!(again[0].outcome, Outcome::AlreadyResolved);
    let again = dead_letters::retry_with(&bed.pool, &bed.codec, &consumer, &Timeline)
        .await
        .unwrap();
    assert_eq!(again.len(), 3);
    assert!(again
        .iter()
        .all(|r| matches!(r.outcome, Outcome::Failed { .. })));
    assert!(matches!(
        dead_letters::retry(&bed.pool, &bed.codec, &Which::One(-1)).await,
        Err(etr_projections::Error::NoDeadLetter(-1))
    ));

    // Recording a dead letter again changes nothing; a restarted projector goes on.
    let same = dead_letters::Letter {
        consumer: "projection.timeline".into(),
        topic: bed.env.topic.clone(),
        partition: 1,
        offset: garbage,
        key: None,
        payload: None,
        reason: "again".into(),
    };
    assert_eq!(dead_letters::record(&bed.pool, &[same]).await.unwrap(), 0);
    stop(timeline).await;
    let timeline = bed.project(Timeline);
    bed.produce(&client_events(0, 4)[3]).await;
    wait_projected(&bed.pool, "timeline", 0, 4).await;
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM dead_letters")
        .fetch_one(&bed.pool)
        .await
        .unwrap();
    assert_eq!(after, 4);
    stop(timeline).await;
}

/// The bound on held-back events: past the hold limit the projector drops a partition's
/// held events, reads on for the missing one, and then reads the dropped ones again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_over_the_hold_limit_is_read_again_once_its_gap_is_filled() {
    let bed = Bed::new("hold_limit").await;
    create_recorder_table(&bed.pool).await;
    let events = client_events(1, 8);
    let mut offsets = BTreeMap::new();
    for i in [0, 1, 3, 4, 5, 6] {
        offsets.insert(i + 1, bed.produce(&events[i]).await);
    }
    let recorder = bed.project_holding(Recorder, 2);
    wait_projected(&bed.pool, "recorder", 1, 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(bed.checkpoint("recorder", 1).await, Some(2));
    match bed.committed("recorder", 1) {
        Offset::Offset(o) => assert!(o <= offsets[&4], "committed {o} past the dropped events"),
        Offset::Invalid => {}
        other => panic!("unexpected committed offset {other:?}"),
    }
    bed.produce(&events[2]).await;
    bed.produce(&events[7]).await;
    wait_projected(&bed.pool, "recorder", 1, 8).await;
    assert_eq!(recorded(&bed.pool, 1).await, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(!recorder.is_finished());
    stop(recorder).await;
}
