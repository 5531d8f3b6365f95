//! The crash campaign: cycles of a fault at a random moment under mixed load — SIGKILL of the
//! whole platform (`etr up`, or every role process at once), SIGKILL of one role process
//! (command API, relay, projector, query API), `kill -9` and restart of the broker, a restart
//! of Postgres (crash or fast shutdown) — against a Postgres cluster and a Tansu broker of
//! its own (`support/chaos.rs`), never the shared ones.
//!
//! The load: wallet clients topping up, paying and transferring to each other; borrowers
//! taking payday loans through the conveyor over REST (some in flight at every fault) and
//! repaying them twice from a wallet and once from a bank card bound for it (the bank
//! authorises and captures, or declines one card in ten). Every command carries an
//! Idempotency-Key; one whose answer was lost is sent again with the same key until it is
//! answered.
//!
//! After every cycle, once the platform is quiet (every event published, every consumer at
//! the heads, every payment final, no process instance owing work): the log read back from
//! the broker holds exactly the accepted commands' events (the clients' and the platform's
//! own), dense per partition; every client's hash chain verifies; money is conserved across
//! wallets, transfers in transit, loans, the card providers' and the bank's books; no
//! payment or process instance is stranded; no process-manager step took effect twice;
//! every read model equals a rebuild from the log (a database the log read back is applied
//! to by the projections' own code, cycle after cycle, never killed; after the last cycle
//! also one from scratch).
//!
//! `ETR_CHAOS_CYCLES` (default 10, what CI runs), `ETR_CHAOS_SEED` (printed at the start)
//! reproduces the schedule of faults and the clients' choices. `scripts/chaos` runs 100.

#[path = "support/chaos.rs"]
mod chaos;
mod support;

use chaos::{
    by_position, check_alerts, check_autopayments, check_chains, check_dead_letters,
    check_instances, check_log, check_money_and_steps, check_query_api, check_read_models,
    check_snapshots, open_wallets, run_loan_client, run_wallet_client, subscribe_alerts,
    wait_quiet, Checks, Client, LoanClient, LogReader, Mode, Rebuild, Rng, Role, Shared, Site,
    Tally, TaskReport,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WALLET_CLIENTS: usize = 12;
/// Loan applications kept in flight.
const LOAN_FLOWS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    KillPlatform,
    KillRole(Role),
    KillBroker,
    RestartPostgres,
}

const FAULTS: [Fault; 7] = [
    Fault::KillPlatform,
    Fault::KillRole(Role::CommandApi),
    Fault::KillRole(Role::Relay),
    Fault::KillRole(Role::Projector),
    Fault::KillRole(Role::QueryApi),
    Fault::KillBroker,
    Fault::RestartPostgres,
];

impl Fault {
    fn label(self) -> String {
        match self {
            Fault::KillPlatform => "SIGKILL platform".into(),
            Fault::KillRole(role) => format!("SIGKILL {}", role.name()),
            Fault::KillBroker => "kill -9 broker".into(),
            Fault::RestartPostgres => "restart Postgres".into(),
        }
    }
}

/// Every kind of fault once (in a seeded order), then at random: a 10-cycle run covers all.
fn schedule(rng: &mut Rng, cycles: usize) -> Vec<Fault> {
    let mut first = FAULTS.to_vec();
    for i in (1..first.len()).rev() {
        first.swap(i, rng.below(i as u64 + 1) as usize);
    }
    (0..cycles)
        .map(|i| first.get(i).copied().unwrap_or_else(|| *rng.pick(&FAULTS)))
        .collect()
}

struct Row {
    cycle: usize,
    mode: Mode,
    fault: String,
    fault_at: Duration,
    back: Duration,
    drained: Duration,
    quiet: Duration,
    checked: Duration,
    commands: u64,
    resent: u64,
    events: usize,
}

fn secs(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64())
}

fn print_report(
    seed: u64,
    rows: &[Row],
    tally: &Tally,
    checks: &BTreeMap<&'static str, u64>,
    events: (usize, usize),
    violations: usize,
    took: Duration,
) {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!(
        "==== crash campaign report: seed {seed} (ETR_CHAOS_SEED={seed}), {} cycles in {} s ====",
        rows.len(),
        took.as_secs()
    ));
    let mut kinds: BTreeMap<String, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        kinds
            .entry(format!("{} ({:?})", r.fault, r.mode).to_lowercase())
            .or_default()
            .push(r);
    }
    line("faults (cycles; restart = fault → component serving again; quiet = load stopped → platform quiet):".into());
    for (kind, rs) in &kinds {
        let mut back: Vec<Duration> = rs.iter().map(|r| r.back).collect();
        let mut quiet: Vec<Duration> = rs.iter().map(|r| r.quiet).collect();
        back.sort();
        quiet.sort();
        line(format!(
            "  {kind:<36} {:>3}   restart min/median/max {}/{}/{} s   quiet {}/{}/{} s",
            rs.len(),
            secs(back[0]),
            secs(back[back.len() / 2]),
            secs(back[back.len() - 1]),
            secs(quiet[0]),
            secs(quiet[quiet.len() / 2]),
            secs(quiet[quiet.len() - 1]),
        ));
    }
    line(format!(
        "commands: {} sent in {} requests — {} accepted, {} refused, {} resent with the same key after no answer ({} requests unanswered)",
        tally.commands, tally.requests, tally.accepted, tally.refused, tally.resent, tally.lost
    ));
    for (kind, (sent, accepted, refused)) in &tally.by_kind {
        line(format!(
            "  {kind:<12} sent {sent:>6}  accepted {accepted:>6}  refused {refused:>5}"
        ));
    }
    if !tally.refusals.is_empty() {
        line(format!("  refusals: {:?}", tally.refusals));
    }
    if !tally.refused_on_resend.is_empty() {
        line(format!(
            "  refused when resent after no answer, decided anew (not a replay): {:?}",
            tally.refused_on_resend
        ));
    }
    line(format!(
        "loans: {} disbursed through the conveyor; abandoned: {:?}; balance reads over GraphQL: {} answered, {} not",
        tally.loans_disbursed, tally.loans_abandoned, tally.reads_ok, tally.reads_failed
    ));
    line(format!(
        "log: {} events, {} records read back (re-publishes included)",
        events.0, events.1
    ));
    line("checks run (each after every cycle):".into());
    for (name, n) in checks {
        line(format!("  {n:>5} × {name}"));
    }
    line(format!("violations: {violations}"));
    line("per cycle: cycle mode fault | fault at, restart, drain, quiet, checks (s) | commands (resent) | events".into());
    for r in rows {
        line(format!(
            "  {:>3} {:<5} {:<22} | {} {} {} {} {} | {} ({}) | {}",
            r.cycle,
            format!("{:?}", r.mode).to_lowercase(),
            r.fault,
            secs(r.fault_at),
            secs(r.back),
            secs(r.drained),
            secs(r.quiet),
            secs(r.checked),
            r.commands,
            r.resent,
            r.events
        ));
    }
    println!("{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_campaign_loses_nothing_strands_nothing_and_does_nothing_twice() {
    let cycles: usize = std::env::var("ETR_CHAOS_CYCLES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(10);
    let seed: u64 = std::env::var("ETR_CHAOS_SEED")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| uuid::Uuid::new_v4().as_u64_pair().0);
    eprintln!("crash campaign: {cycles} cycles, seed {seed} — ETR_CHAOS_SEED={seed} reproduces the schedule and the clients' choices");
    let started = Instant::now();
    let mut rng = Rng::new(seed);
    let faults = schedule(&mut rng, cycles);
    let mut site = Site::new(seed).await;
    site.run_in(Mode::Whole).await;
    let db = site.pool();

    let mut tally = Tally::default();
    let mut accepted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut setup = TaskReport::default();
    let (command, ids) = subscribe_alerts(&site).await;
    accepted.insert(command, ids);
    let mut wallet_clients = open_wallets(&site, WALLET_CLIENTS, &mut setup).await;
    tally.add(&setup.tally);
    accepted.extend(setup.accepted);
    let payees: Vec<(String, String)> = wallet_clients
        .iter()
        .map(|c| (c.id.clone(), c.wallet.clone()))
        .collect();
    let mut loan_clients: Vec<LoanClient> = Vec::new();
    let mut reader = LogReader::new();
    let mut rebuild = Rebuild::new(&site, "etr_rebuild").await;
    let mut rows = Vec::new();
    let mut checks_run: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut events = (0, 0);
    let mut verified = std::collections::BTreeSet::new();

    for (cycle, fault) in faults.iter().copied().enumerate() {
        let mode = match fault {
            Fault::KillRole(_) => Mode::Split,
            _ if rng.percent(50) => Mode::Whole,
            _ => Mode::Split,
        };
        site.run_in(mode).await;
        while loan_clients.iter().filter(|c| c.active()).count() < LOAN_FLOWS {
            loan_clients.push(LoanClient::new(&mut rng));
        }
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            wallets: payees.clone(),
            api: site.env.api(),
            graphql: format!("http://{}/graphql", site.env.query_addr),
            second: None,
            db: db.clone(),
        });
        let mut tasks = tokio::task::JoinSet::new();
        for c in wallet_clients.drain(..) {
            tasks.spawn(run_wallet_client(c, shared.clone(), rng.fork()));
        }
        let (active, idle): (Vec<LoanClient>, Vec<LoanClient>) =
            loan_clients.drain(..).partition(LoanClient::active);
        loan_clients = idle;
        for c in active {
            tasks.spawn(run_loan_client(c, shared.clone(), rng.fork()));
        }

        // The fault, at a random moment under load; the clients keep sending through it.
        let fault_at = Duration::from_millis(rng.between(500, 2500));
        tokio::time::sleep(fault_at).await;
        let pause = Duration::from_millis(rng.between(0, 1200));
        let struck = Instant::now();
        let mut label = fault.label();
        match fault {
            Fault::KillPlatform => {
                site.kill_all();
                tokio::time::sleep(pause).await;
                site.start(mode.roles()).await;
            }
            Fault::KillRole(role) => {
                site.kill(role);
                tokio::time::sleep(pause).await;
                site.start(&[role]).await;
            }
            Fault::KillBroker => {
                site.broker.kill();
                tokio::time::sleep(pause).await;
                site.broker.restart().await;
            }
            Fault::RestartPostgres => {
                let how = if rng.percent(50) { "immediate" } else { "fast" };
                label = format!("{label} ({how})");
                tokio::task::block_in_place(|| site.pg.stop_server(how));
                tokio::time::sleep(pause).await;
                tokio::task::block_in_place(|| site.pg.start_server());
            }
        }
        let back = struck.elapsed();
        tokio::time::sleep(Duration::from_millis(rng.between(1000, 2500))).await;

        // Stop the load: every client sends its unanswered command until it is answered.
        shared.stop.store(true, Ordering::Relaxed);
        let stopped = Instant::now();
        let mut checks = Checks::default();
        let mut cycle_tally = Tally::default();
        while let Some(done) = tasks.join_next().await {
            let (client, report) = done.expect("a client task");
            cycle_tally.add(&report.tally);
            report.merge_into(&mut accepted, &mut checks);
            match client {
                Client::Wallet(c) => wallet_clients.push(c),
                Client::Loan(c) => loan_clients.push(c),
            }
        }
        let drained = stopped.elapsed();
        tally.add(&cycle_tally);

        // Quiet, then the checks.
        let quiet_from = Instant::now();
        checks.violations.extend(site.exited());
        let slow = match wait_quiet(&db, Duration::from_secs(120)).await {
            Ok(slow) => slow,
            Err(e) => {
                checks.violations.push(e);
                None
            }
        };
        let quiet = quiet_from.elapsed();
        let checking = Instant::now();
        let records = reader.read(&site, &mut checks.violations).await;
        let read_in = checking.elapsed();
        let log = by_position(&records, &mut checks);
        check_log(&db, &log, &accepted, &mut checks).await;
        check_chains(&log, &mut verified, &mut checks);
        check_money_and_steps(&db, &log, &mut checks).await;
        check_autopayments(&db, &log, &mut checks).await;
        check_instances(&db, &mut checks).await;
        check_dead_letters(&db, &mut checks).await;
        check_alerts(&db, &log, &mut checks).await;
        check_query_api(&site, &db, &payees, &mut rng, &mut checks).await;
        let rebuilding = Instant::now();
        rebuild.feed(&log).await;
        check_read_models(
            &db,
            &rebuild,
            "every read model equals the rebuild from the log",
            &mut checks,
        )
        .await;
        let rebuilt_in = rebuilding.elapsed();
        if cycle + 1 == cycles {
            check_snapshots(&site, &db, &mut checks).await;
            let mut fresh = Rebuild::new(&site, &format!("etr_fresh_{cycle}")).await;
            fresh.feed(&log).await;
            check_read_models(
                &db,
                &fresh,
                "every read model equals a rebuild from scratch (last cycle)",
                &mut checks,
            )
            .await;
            fresh.pool.close().await;
            etr_infra::pg::drop_database(&fresh.url)
                .await
                .expect("dropping the fresh rebuild");
        }
        let checked = checking.elapsed();
        events = (log.len(), records.len());
        for (name, n) in &checks.run {
            *checks_run.entry(name).or_default() += n;
        }
        eprintln!(
            "cycle {:>3}/{cycles} {:<5} {:<30} at {} s, back in {} s, drained {} s, quiet in {} s, checked in {} s (log read {} s, rebuild and compare {} s): {} commands ({} resent), log {} events, {} violations",
            cycle + 1,
            format!("{mode:?}").to_lowercase(),
            label,
            secs(fault_at),
            secs(back),
            secs(drained),
            secs(quiet),
            secs(checked),
            secs(read_in),
            secs(rebuilt_in),
            cycle_tally.commands,
            cycle_tally.resent,
            log.len(),
            checks.violations.len()
        );
        if let Some(slow) = slow {
            eprintln!("      still outstanding 5 s after the load stopped: {slow}");
        }
        rows.push(Row {
            cycle: cycle + 1,
            mode,
            fault: label,
            fault_at,
            back,
            drained,
            quiet,
            checked,
            commands: cycle_tally.commands,
            resent: cycle_tally.resent,
            events: log.len(),
        });
        if !checks.violations.is_empty() {
            print_report(
                seed,
                &rows,
                &tally,
                &checks_run,
                events,
                checks.violations.len(),
                started.elapsed(),
            );
            panic!(
                "cycle {} ({}, seed {seed}): {} violations:\n{}",
                cycle + 1,
                fault.label(),
                checks.violations.len(),
                checks.violations.join("\n")
            );
        }
    }
    assert!(
        tally.loans_disbursed > 0 || cycles < 5,
        "no loan was disbursed in {cycles} cycles"
    );
    print_report(
        seed,
        &rows,
        &tally,
        &checks_run,
        events,
        0,
        started.elapsed(),
    );
    db.close().await;
    rebuild.pool.close().await;
}

/// Regression (found by the campaign, a Postgres restart under load): the platform's registry
/// answered a failed Postgres query with 500, which the registry client takes for a permanent
/// answer and caches — the relay could not encode that event type again until its process
/// restarted (the partition stalled), and consumers dead-lettered good records (payments
/// stranded). A store failure must be answered so that clients retry it and cache nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_failing_while_postgres_restarts_is_retried_not_cached() {
    use etr_infra::avro::{DecodeError, EventCodec};
    let dir = std::env::temp_dir().join(format!(
        "etr-chaos-registry-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let pg = chaos::PrivatePostgres::start(&dir);
    etr_infra::pg::connect_and_migrate(&pg.url("etr"), 1)
        .await
        .unwrap()
        .close()
        .await;
    // The registry's pool gives up on a connection after 2 s (the platform's waits 30 s).
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(2))
        .connect_lazy_with(etr_infra::pg::connect_options(&pg.url("etr")).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let registry = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(etr_infra::registry::serve(pool.clone(), listener));
    let topic = "etr.events";
    let writer = EventCodec::new(&registry, topic).unwrap();
    writer.register_all().await.unwrap();
    let events = etr_schemas::samples::every_event();
    let first = &events[0];
    let bytes = writer
        .encode(&etr_schemas::samples::envelope_for(first, 1), first)
        .await
        .unwrap();

    // Postgres is down: a reader that has not seen the schema and a writer that has not
    // registered its subject yet both fail — as a registry that is unavailable.
    tokio::task::block_in_place(|| pg.stop_server("fast"));
    let reader = writer.fresh();
    let relay = writer.fresh();
    let failed = reader.decode_record(Some(&bytes)).await.unwrap_err();
    assert!(
        matches!(failed, DecodeError::RegistryUnavailable { .. }),
        "a store failure must read as an unavailable registry (retried), not a bad record (dead-lettered): {failed:?}"
    );
    let second = &events[1];
    assert!(relay
        .encode(&etr_schemas::samples::envelope_for(second, 2), second)
        .await
        .is_err());

    // Postgres is back: the same reader and writer work (nothing cached from the failure).
    tokio::task::block_in_place(|| pg.start_server());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let decoded = reader.decode_record(Some(&bytes)).await;
        let encoded = relay
            .encode(&etr_schemas::samples::envelope_for(second, 2), second)
            .await;
        if decoded.is_ok() && encoded.is_ok() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still failing 30 s after Postgres came back: {:?} / {:?}",
            decoded.err(),
            encoded.err()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    pool.close().await;
    drop(pg);
    let _ = std::fs::remove_dir_all(dir);
}
