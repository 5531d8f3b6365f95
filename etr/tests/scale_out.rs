//! Scale-out failover: two processes of every role that can run twice — command API (with
//! its partition writers and process managers: the payment processor, the loan conveyor),
//! relay, projector, GraphQL — against the same broker and Postgres (a private pair, as in
//! the crash campaign), under the campaign's mixed load spread over both command APIs and
//! both GraphQL servers (a request whose answer is lost goes to the other process next, as
//! behind a load balancer). One process of each role — the one holding the partition
//! leases, the relay lease — is killed (SIGKILL) at once. The survivors must take over:
//!
//! - **command API**: every partition lease the killed process held is taken by the
//!   survivor once it lapses (the lease term is 5 s); measured to the first commit of the
//!   survivor on each of those partitions' heads;
//! - **relay**: the survivor takes the relay lease once it lapses and publishes on;
//! - **projector**: both read every partition (the batch lock and checkpoints apply each
//!   event once); measured to every checkpoint reaching the heads as they were at the kill;
//! - **process managers**: every instance owing work at the kill is finished by the
//!   survivor's runners (`FOR UPDATE SKIP LOCKED` claims, timers);
//! - **GraphQL**: stateless; measured to the survivor's first answer.
//!
//! The takeover times are printed. Then, with the load stopped and the platform quiet, the
//! crash campaign's checks: the log holds exactly the accepted commands' events, dense per
//! partition; chains verify; money is conserved and no step took effect twice; no instance
//! stranded; every read model equals a rebuild from the log. `ETR_SCALE_OUT_SEED` replays the
//! clients' choices.

#[path = "support/chaos.rs"]
mod chaos;
mod support;

use chaos::{
    by_position, check_autopayments, check_chains, check_dead_letters, check_instances, check_log,
    check_money_and_steps, check_read_models, open_wallets, owes_work, run_loan_client,
    run_wallet_client, wait_quiet, Checks, LoanClient, LogReader, Mode, Rebuild, Rng, Role, Shared,
    Site, TaskReport,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const WALLET_CLIENTS: usize = 10;
const LOAN_FLOWS: usize = 3;
/// The longest a takeover may take before it counts as failed: the lease term (5 s), a
/// payment attempt timeout (1.5 s) and the consumers' catching up, with room for a loaded
/// machine.
const TAKEOVER_BOUND: Duration = Duration::from_secs(90);

/// What the survivors must take over, as it stood at the kill.
struct AtKill {
    /// Partitions whose writer lease the killed command API held.
    partitions: BTreeSet<i32>,
    /// Partition → head sequence.
    heads: BTreeMap<i32, i64>,
    /// Process instances owing work: (process, instance).
    owing: BTreeSet<(String, Uuid)>,
    relay_holder: Option<String>,
}

async fn leases(db: &sqlx::PgPool) -> Vec<(i32, Option<String>, i64)> {
    sqlx::query_as("SELECT partition, writer_id, sequence FROM partition_heads ORDER BY partition")
        .fetch_all(db)
        .await
        .unwrap_or_default()
}

async fn relay_holder(db: &sqlx::PgPool) -> Option<String> {
    sqlx::query_scalar("SELECT holder FROM relay_lease WHERE id = 1")
        .fetch_optional(db)
        .await
        .ok()
        .flatten()
        .flatten()
}

async fn owing(db: &sqlx::PgPool) -> BTreeSet<(String, Uuid)> {
    let rows: Vec<(String, Uuid, Value)> =
        sqlx::query_as("SELECT process, instance_id, state FROM process_instances")
            .fetch_all(db)
            .await
            .unwrap_or_default();
    rows.into_iter()
        .filter(|(process, _, state)| owes_work(process, state).is_some())
        .map(|(process, id, _)| (process, id))
        .collect()
}

/// The least checkpoint of every projection on `partition`.
async fn least_checkpoint(db: &sqlx::PgPool, partition: i32) -> i64 {
    sqlx::query_scalar(
        "SELECT COALESCE(MIN(sequence), 0) FROM projection_checkpoints WHERE partition = $1",
    )
    .bind(partition)
    .fetch_one(db)
    .await
    .unwrap_or(0)
}

/// How long each role's takeover took, from the kill; `None` while not done.
#[derive(Default)]
struct Takeover {
    writers: BTreeMap<i32, Option<Duration>>,
    relay: Option<Duration>,
    projections: Option<Duration>,
    processes: Option<Duration>,
    graphql: Option<Duration>,
}

impl Takeover {
    fn done(&self) -> bool {
        self.writers.values().all(Option::is_some)
            && self.relay.is_some()
            && self.projections.is_some()
            && self.processes.is_some()
            && self.graphql.is_some()
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("not taken over".into(), |d| {
        format!("{:.2} s", d.as_secs_f64())
    })
}

/// Watches the survivors from the kill until every role was taken over (or the bound).
async fn watch_takeover(
    db: &sqlx::PgPool,
    at_kill: &AtKill,
    survivor_addr: &str,
    survivor_graphql: &str,
) -> Takeover {
    let killed_at = Instant::now();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    let mut t = Takeover {
        writers: at_kill.partitions.iter().map(|p| (*p, None)).collect(),
        ..Takeover::default()
    };
    let survivor_relay = format!("relay@{survivor_addr}");
    while !t.done() && killed_at.elapsed() < TAKEOVER_BOUND {
        let now = killed_at.elapsed();
        for (partition, writer, sequence) in leases(db).await {
            if let Some(slot @ None) = t.writers.get_mut(&partition) {
                let moved = at_kill.heads.get(&partition).is_some_and(|h| sequence > *h);
                if writer.as_deref() == Some(survivor_addr) && moved {
                    *slot = Some(now);
                }
            }
        }
        if t.relay.is_none()
            && (at_kill.relay_holder.as_deref() == Some(survivor_relay.as_str())
                || relay_holder(db).await.as_deref() == Some(survivor_relay.as_str()))
        {
            t.relay = Some(now);
        }
        if t.projections.is_none() {
            let mut caught_up = true;
            for (partition, head) in &at_kill.heads {
                caught_up &= least_checkpoint(db, *partition).await >= *head;
            }
            if caught_up {
                t.projections = Some(now);
            }
        }
        if t.processes.is_none() && owing(db).await.is_disjoint(&at_kill.owing) {
            t.processes = Some(now);
        }
        if t.graphql.is_none() {
            let answered = http
                .post(survivor_graphql)
                .json(&serde_json::json!({"query": "{ __typename }"}))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if answered {
                t.graphql = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survivors_take_over_when_one_process_of_each_role_dies() {
    let seed: u64 = std::env::var("ETR_SCALE_OUT_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| Uuid::new_v4().as_u64_pair().0);
    eprintln!(
        "scale-out failover: seed {seed} (ETR_SCALE_OUT_SEED={seed} replays the clients' choices)"
    );
    let mut rng = Rng::new(seed);
    let mut site = Site::new(seed).await;
    // The first processes start alone and take every lease as the wallets open.
    site.run_in(Mode::Split).await;
    let db = site.pool();
    let mut setup = TaskReport::default();
    let mut wallet_clients = open_wallets(&site, WALLET_CLIENTS, &mut setup).await;
    let mut accepted: BTreeMap<String, Vec<String>> = setup.accepted.into_iter().collect();
    let payees: Vec<(String, String)> = wallet_clients
        .iter()
        .map(|c| (c.id.clone(), c.wallet.clone()))
        .collect();
    let roles = [
        Role::CommandApi,
        Role::Relay,
        Role::Projector,
        Role::QueryApi,
    ];
    site.start_seconds(&roles).await;
    let survivor_addr = site.second_api_addr.clone();
    let survivor_graphql = format!("http://{}/graphql", site.second_query_addr);

    let shared = Arc::new(Shared {
        stop: AtomicBool::new(false),
        wallets: payees.clone(),
        api: site.env.api(),
        graphql: format!("http://{}/graphql", site.env.query_addr),
        second: Some((format!("http://{survivor_addr}"), survivor_graphql.clone())),
        db: db.clone(),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for c in wallet_clients.drain(..) {
        tasks.spawn(run_wallet_client(c, shared.clone(), rng.fork()));
    }
    for _ in 0..LOAN_FLOWS {
        tasks.spawn(run_loan_client(
            LoanClient::new(&mut rng),
            shared.clone(),
            rng.fork(),
        ));
    }
    tokio::time::sleep(Duration::from_millis(rng.between(3000, 5000))).await;

    // The first process of each role holds the leases (it took them first and renews them).
    let heads = leases(&db).await;
    let first_addr = site.env.api_addr.clone();
    let at_kill = AtKill {
        partitions: heads
            .iter()
            .filter(|(_, w, _)| w.as_deref() == Some(first_addr.as_str()))
            .map(|(p, _, _)| *p)
            .collect(),
        heads: heads.iter().map(|(p, _, s)| (*p, *s)).collect(),
        owing: owing(&db).await,
        relay_holder: relay_holder(&db).await,
    };
    for role in roles {
        site.kill(role);
    }
    let takeover = watch_takeover(&db, &at_kill, &survivor_addr, &survivor_graphql).await;
    tokio::time::sleep(Duration::from_millis(rng.between(1000, 2000))).await;

    shared.stop.store(true, Ordering::Relaxed);
    let mut checks = Checks::default();
    let mut commands = (0, 0, 0);
    while let Some(done) = tasks.join_next().await {
        let (_client, report) = done.expect("a client task");
        commands.0 += report.tally.commands;
        commands.1 += report.tally.accepted;
        commands.2 += report.tally.resent;
        report.merge_into(&mut accepted, &mut checks);
    }
    checks.violations.extend(site.exited());

    eprintln!(
        "==== scale-out takeover (seed {seed}): one process of each role SIGKILLed at once ===="
    );
    eprintln!(
        "command API: {} partition leases held by the killed process ({} partitions in all)",
        at_kill.partitions.len(),
        at_kill.heads.len()
    );
    for (partition, d) in &takeover.writers {
        eprintln!(
            "  partition {partition}: survivor's first commit after {}",
            ms(*d)
        );
    }
    eprintln!(
        "relay: lease {} at the kill; survivor publishing after {}",
        at_kill.relay_holder.as_deref().unwrap_or("free"),
        ms(takeover.relay)
    );
    eprintln!(
        "projector: every checkpoint at the heads of the kill after {}",
        ms(takeover.projections)
    );
    eprintln!(
        "process managers: {} instances owing work at the kill, all done after {}",
        at_kill.owing.len(),
        ms(takeover.processes)
    );
    eprintln!("GraphQL: survivor answering after {}", ms(takeover.graphql));
    eprintln!(
        "load: {} commands, {} accepted, {} resent after a lost answer",
        commands.0, commands.1, commands.2
    );
    let missing: Vec<String> = [
        ("relay", takeover.relay),
        ("projector", takeover.projections),
        ("process managers", takeover.processes),
        ("GraphQL", takeover.graphql),
    ]
    .into_iter()
    .filter(|(_, d)| d.is_none())
    .map(|(role, _)| role.to_owned())
    .chain(
        takeover
            .writers
            .iter()
            .filter(|(_, d)| d.is_none())
            .map(|(p, _)| format!("partition {p}")),
    )
    .collect();
    checks.check(
        "every role was taken over by its survivor",
        missing.is_empty(),
        || {
            format!(
                "not taken over within {} s: {missing:?}",
                TAKEOVER_BOUND.as_secs()
            )
        },
    );
    assert!(
        !at_kill.partitions.is_empty(),
        "the killed command API held no partition lease: nothing was taken over"
    );

    if let Err(e) = wait_quiet(&db, Duration::from_secs(120)).await {
        checks.violations.push(e);
    }
    let mut reader = LogReader::new();
    let records = reader.read(&site, &mut checks.violations).await;
    let log = by_position(&records, &mut checks);
    check_log(&db, &log, &accepted, &mut checks).await;
    check_chains(&log, &mut BTreeSet::new(), &mut checks);
    check_money_and_steps(&db, &log, &mut checks).await;
    check_autopayments(&db, &log, &mut checks).await;
    check_instances(&db, &mut checks).await;
    check_dead_letters(&db, &mut checks).await;
    let mut rebuild = Rebuild::new(&site, "etr_rebuild").await;
    rebuild.feed(&log).await;
    check_read_models(
        &db,
        &rebuild,
        "every read model equals a rebuild from the log",
        &mut checks,
    )
    .await;
    eprintln!("checks: {:?}; log {} events", checks.run, log.len());
    assert!(
        checks.violations.is_empty(),
        "seed {seed}: {} violations:\n{}",
        checks.violations.len(),
        checks.violations.join("\n")
    );
    db.close().await;
    rebuild.pool.close().await;
}
