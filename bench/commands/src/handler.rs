//! Handler-level mode: the command handler of `etr_command_api` called in-process, no HTTP,
//! no relay (the outbox fills and nothing publishes it; the peer publishes nothing either).
//!
//! Each point runs in a fresh database (`etr_infra::pg::fresh_database`, migrated, dropped
//! afterwards) with one partition writer per partition, as `etr command-api` starts them.
//! Each caller (a tokio task) owns its wallets, opens them (not measured), waits for every
//! other caller, then runs the workload of [`crate::workload`] one command at a time until
//! the time is up. A payment is two commands (`StartPayment`, then its `ExecutePayment`),
//! both measured and counted as commands; a payment is never cut in half by the deadline.
//! After the run the wallets' snapshots are read back ([`balances`]) and must hold exactly
//! top-ups − payments with no hold left open, or the point fails.

use etr_command_api::handler::{self, Handler, Meta, Outcome, SystemClock};
use etr_domain::ids::{partition_of, ClientId};
use etr_domain::{Command, State};
use etr_infra::pg;
use futures::stream::{FuturesUnordered, StreamExt as _};
use rust_decimal::Decimal;
use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions as _, Connection as _, PgPool};
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Barrier, Notify};
use uuid::Uuid;

use crate::error::Context as _;
use crate::stats;
use crate::workload::{self, plan, Operation, WalletRef, PAYMENT, PRELOAD_TOP_UP, TOP_UP};
use crate::Error;

/// The name of the handler's rows in tables and JSON.
pub const NAME: &str = "etr-handler";
/// Connections of the pool the partition writers share (a writer reads up to three things at
/// once before it commits).
const POOL_SIZE: u32 = 32;
/// Opens in flight per caller before the measured part.
const OPEN_WINDOW: usize = 32;
/// Pre-loading top-ups in flight at once (the writers commit them in batches).
const PRELOAD_WINDOW: usize = 2_048;

/// One handler-level measurement. Timings are `f64` (they are not money).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    /// [`NAME`].
    pub name: String,
    pub callers: usize,
    /// Wallets in total.
    pub wallets: u64,
    /// Measured handler commands: top-ups + payment starts + payment executions.
    pub commands: u64,
    /// Measured wallet operations: top-ups + payments (a payment counted once), the unit
    /// of the peer's commands.
    pub operations: u64,
    pub top_ups: u64,
    /// `StartPayment` commands (fraud verdict Approved): the amount held.
    pub payments: u64,
    /// `ExecutePayment` commands (Succeeded): the hold captured. Equal to `payments`.
    pub payment_executions: u64,
    /// Wall time of the measured part, seconds.
    pub seconds: f64,
    /// Commands per second.
    pub per_second: f64,
    /// Operations per second.
    pub operations_per_second: f64,
    /// Latency of one command as its caller saw it, nearest-rank percentiles, milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The wallets' snapshots after a run, in roubles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balances {
    /// Open wallets.
    pub wallets: u64,
    /// Σ balance.
    pub total: Decimal,
    /// Holds still open (payments started and not executed).
    pub open_holds: u64,
    /// The shortest and the longest wallet stream (snapshot version = events of the wallet).
    pub min_events: u64,
    pub max_events: u64,
}

/// Reads the wallets' snapshots of `pool`'s database.
///
/// Errors: Postgres; [`Error::Json`] when a snapshot is not a state.
pub async fn balances(pool: &PgPool) -> Result<Balances, Error> {
    balances_of(pool, None).await
}

/// [`balances`] of some wallets only (`None`: all).
pub async fn balances_of(pool: &PgPool, wallets: Option<&[WalletRef]>) -> Result<Balances, Error> {
    let ids: Option<Vec<Uuid>> = wallets.map(|ws| ws.iter().map(|w| w.wallet).collect());
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT version, state FROM snapshots WHERE aggregate_type = 'wallet_account' \
         AND ($1::uuid[] IS NULL OR aggregate_id = ANY($1))",
    )
    .bind(ids)
    .fetch_all(pool)
    .await?;
    let mut b = Balances {
        wallets: 0,
        total: Decimal::ZERO,
        open_holds: 0,
        min_events: u64::MAX,
        max_events: 0,
    };
    for (version, state) in rows {
        let State::Wallet(w) = serde_json::from_value(state)? else {
            continue;
        };
        if w.status != etr_domain::wallet::Status::Open {
            continue;
        }
        let events = u64::try_from(version).unwrap_or(0);
        b.wallets += 1;
        b.total += w.balance;
        b.open_holds += w.holds.len() as u64;
        b.min_events = b.min_events.min(events);
        b.max_events = b.max_events.max(events);
    }
    if b.wallets == 0 {
        b.min_events = 0;
    }
    Ok(b)
}

/// What the wallets must hold after `top_ups` top-ups of [`TOP_UP`], `executions` executed
/// payments of [`PAYMENT`] and `preloaded` top-ups of [`PRELOAD_TOP_UP`].
pub fn expected_total(top_ups: u64, executions: u64, preloaded: u64) -> Decimal {
    TOP_UP * Decimal::from(top_ups) - PAYMENT * Decimal::from(executions)
        + PRELOAD_TOP_UP * Decimal::from(preloaded)
}

/// Fails with [`Error::Inconsistent`] unless `found` is what `figures` (and `preloaded`
/// top-ups before them) leave.
pub fn check(figures: &Figures, preloaded: u64, found: &Balances) -> Result<(), Error> {
    let expected = expected_total(figures.top_ups, figures.payment_executions, preloaded);
    if found.wallets == figures.wallets
        && found.total == expected
        && found.open_holds == 0
        && figures.payments == figures.payment_executions
    {
        Ok(())
    } else {
        Err(Error::Inconsistent {
            workload: figures.name.clone(),
            expected_wallets: figures.wallets,
            expected,
            found: found.clone(),
        })
    }
}

// ---- the scratch database ------------------------------------------------------------------

/// A fresh, migrated database for one measurement and a pool on it; [`Scratch::drop`] drops
/// it (left behind only by a panic; named `etr_bench_*`).
pub struct Scratch {
    pub url: String,
    pub pool: PgPool,
}

impl Scratch {
    /// Creates `etr_bench_<random>` on the server of `DATABASE_URL` (default the local one).
    pub async fn create() -> Result<Scratch, Error> {
        let (pool, url) = pg::fresh_database("etr_bench")
            .await
            .context("creating the bench database (is Postgres running?)")?;
        pool.close().await;
        let pool = match pg::connect_options(&url) {
            Ok(options) => {
                PgPoolOptions::new()
                    .max_connections(POOL_SIZE)
                    .connect_with(options)
                    .await
            }
            Err(e) => Err(sqlx::Error::Configuration(e.to_string().into())),
        };
        match pool {
            Ok(pool) => Ok(Scratch { url, pool }),
            Err(e) => {
                drop_database(&url).await;
                Err(e.into())
            }
        }
    }

    /// Closes the pool and drops the database; a failure is only logged.
    pub async fn drop(self) {
        self.pool.close().await;
        drop_database(&self.url).await;
    }
}

/// Drops the database `url` names when it is a bench database (`etr_bench*`); failures are
/// only logged.
pub async fn drop_database(url: &str) {
    let name = PgConnectOptions::from_str(url)
        .ok()
        .and_then(|o| o.get_database().map(str::to_owned));
    let Some(name) = name.filter(|n| n.starts_with("etr_bench")) else {
        return;
    };
    let admin = pg::with_database(url, "postgres");
    let dropped = async {
        let mut conn = PgConnectOptions::from_str(&admin)?.connect().await?;
        let sql = format!(
            "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
            name.replace('"', "\"\"")
        );
        sqlx::raw_sql(&sql).execute(&mut conn).await?;
        conn.close().await
    };
    if let Err(e) = dropped.await {
        tracing::warn!(error = %e, database = %name, "could not drop the bench database");
    }
}

// ---- the handler -------------------------------------------------------------------------

/// Prepares the partition heads of `pool`'s database and starts one writer per partition
/// under `writer_id` (a handler started again with the same id takes the partitions back at
/// once, with cold caches).
pub async fn start_handler(
    pool: &PgPool,
    partitions: u32,
    writer_id: &str,
) -> Result<Arc<Handler>, Error> {
    Handler::prepare(pool, partitions).await?;
    let mut settings = handler::Settings::new(writer_id);
    settings.groups = etr_command_api::groups::Groups::new(crate::workload::groups());
    Ok(Arc::new(Handler::new(
        pool.clone(),
        partitions,
        Arc::new(SystemClock),
        Arc::new(Notify::new()),
        settings,
    )))
}

/// Decides and commits one command; a refusal is an error (the plan never expects one).
/// Returns the command's latency.
async fn handle(handler: &Handler, meta: Meta, command: Command) -> Result<Duration, Error> {
    let name = command.name();
    let sent = Instant::now();
    let handled = handler.handle(meta, command).await?;
    let latency = sent.elapsed();
    match handled.outcome {
        Outcome::Accepted { .. } => Ok(latency),
        Outcome::Rejected {
            command_id,
            code,
            message,
        } => Err(Error::Refused {
            command: name,
            command_id,
            code,
            message,
        }),
    }
}

/// Opens `wallets`, [`OPEN_WINDOW`] at a time.
pub async fn open_wallets(handler: &Handler, wallets: &[WalletRef]) -> Result<(), Error> {
    let mut in_flight = FuturesUnordered::new();
    for w in wallets {
        if in_flight.len() >= OPEN_WINDOW {
            if let Some(r) = in_flight.next().await {
                r?;
            }
        }
        in_flight.push(handle(
            handler,
            workload::client_meta(w.client, "open"),
            workload::open(*w),
        ));
    }
    while let Some(r) = in_flight.next().await {
        r?;
    }
    Ok(())
}

/// Tops each of `wallets` up with [`PRELOAD_TOP_UP`] until its stream holds `events` events
/// (its open included); many in flight at once, so the writers commit them in large batches.
/// Returns the number of top-ups. Prints progress to stderr.
pub async fn preload(handler: &Handler, wallets: &[WalletRef], events: u64) -> Result<u64, Error> {
    let per_wallet = events.saturating_sub(1);
    let total = per_wallet * wallets.len() as u64;
    let tenth = (total / 10).max(1);
    let mut in_flight = FuturesUnordered::new();
    let mut count = 0u64;
    let mut settle = |r: Option<Result<Duration, Error>>| -> Result<(), Error> {
        if let Some(r) = r {
            r?;
            count += 1;
            if count.is_multiple_of(tenth) {
                eprintln!("[bench]   pre-loaded {count} of {total} top-ups");
            }
        }
        Ok(())
    };
    for n in 0..per_wallet {
        for w in wallets {
            if in_flight.len() >= PRELOAD_WINDOW {
                settle(in_flight.next().await)?;
            }
            in_flight.push(handle(
                handler,
                workload::client_meta(w.client, &format!("preload-{n}")),
                workload::top_up(*w, PRELOAD_TOP_UP),
            ));
        }
    }
    while let Some(r) = in_flight.next().await {
        settle(Some(r))?;
    }
    Ok(count)
}

// ---- the callers -------------------------------------------------------------------------

/// What callers did in one or more measured runs.
#[derive(Debug, Default, Clone)]
pub struct Run {
    pub callers: usize,
    pub wallets: u64,
    pub top_ups: u64,
    pub payments: u64,
    pub executions: u64,
    /// Latency of every measured command.
    pub latencies: Vec<Duration>,
    /// From the moment every caller was ready to the last caller's stop (summed over runs).
    pub elapsed: Duration,
}

impl Run {
    /// Adds `other`'s commands, latencies and time to this one's.
    pub fn merge(&mut self, mut other: Run) {
        self.callers = self.callers.max(other.callers);
        self.wallets = self.wallets.max(other.wallets);
        self.top_ups += other.top_ups;
        self.payments += other.payments;
        self.executions += other.executions;
        self.latencies.append(&mut other.latencies);
        self.elapsed += other.elapsed;
    }

    pub fn figures(mut self) -> Figures {
        self.latencies.sort_unstable();
        let commands = self.top_ups + self.payments + self.executions;
        let operations = self.top_ups + self.payments;
        Figures {
            name: NAME.to_owned(),
            callers: self.callers,
            wallets: self.wallets,
            commands,
            operations,
            top_ups: self.top_ups,
            payments: self.payments,
            payment_executions: self.executions,
            seconds: stats::seconds(self.elapsed),
            per_second: stats::per_second(commands, self.elapsed),
            operations_per_second: stats::per_second(operations, self.elapsed),
            p50_ms: stats::ms(stats::percentile(&self.latencies, 500)),
            p99_ms: stats::ms(stats::percentile(&self.latencies, 990)),
        }
    }
}

async fn caller(
    handler: Arc<Handler>,
    wallets: Vec<WalletRef>,
    open: bool,
    barrier: Arc<Barrier>,
    duration: Duration,
    tag: Arc<str>,
) -> Result<Run, Error> {
    let opened = if open {
        open_wallets(&handler, &wallets).await
    } else {
        Ok(())
    };
    // Every caller reaches the barrier, whatever happened, so none waits forever.
    barrier.wait().await;
    opened?;
    let deadline = Instant::now() + duration;
    let mut f = Run {
        latencies: Vec::with_capacity(1 << 14),
        ..Run::default()
    };
    let mut i: u64 = 0;
    while Instant::now() < deadline {
        let (index, operation) = plan(i, wallets.len());
        let w = wallets[index];
        match operation {
            Operation::TopUp => {
                let meta = workload::client_meta(w.client, &format!("{tag}t{i}"));
                let latency = handle(&handler, meta, workload::top_up(w, TOP_UP)).await?;
                f.latencies.push(latency);
                f.top_ups += 1;
            }
            Operation::Payment => {
                let payment = Uuid::new_v4();
                let meta = workload::client_meta(w.client, &format!("{tag}p{i}"));
                let correlation = meta.correlation_id.clone();
                let latency = handle(&handler, meta, workload::start_payment(w, payment)).await?;
                f.latencies.push(latency);
                f.payments += 1;
                let meta = workload::execution_meta(payment, correlation);
                let latency = handle(&handler, meta, workload::execute_payment(w, payment)).await?;
                f.latencies.push(latency);
                f.executions += 1;
            }
        }
        i += 1;
    }
    Ok(f)
}

/// Runs one caller per element of `callers` (its wallets) against `handler` for
/// `duration`, opening the wallets first when `open`; returns once every caller stopped.
/// The first error of any caller is returned (after all stopped).
pub async fn drive(
    handler: &Arc<Handler>,
    callers: Vec<Vec<WalletRef>>,
    open: bool,
    duration: Duration,
) -> Result<Figures, Error> {
    Ok(drive_run(handler, callers, open, duration, "")
        .await?
        .figures())
}

/// [`drive`], returning the raw run. `tag` prefixes the callers' idempotency keys, so that
/// runs over the same wallets never repeat a command id.
pub async fn drive_run(
    handler: &Arc<Handler>,
    callers: Vec<Vec<WalletRef>>,
    open: bool,
    duration: Duration,
    tag: &str,
) -> Result<Run, Error> {
    let n = callers.len();
    let wallets: u64 = callers.iter().map(|c| c.len() as u64).sum();
    let barrier = Arc::new(Barrier::new(n + 1));
    let tag: Arc<str> = Arc::from(tag);
    let tasks: Vec<_> = callers
        .into_iter()
        .map(|mine| {
            tokio::spawn(caller(
                handler.clone(),
                mine,
                open,
                barrier.clone(),
                duration,
                tag.clone(),
            ))
        })
        .collect();
    barrier.wait().await;
    let start = Instant::now();
    let mut all = Run::default();
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(f)) => all.merge(f),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Panicked(e.to_string()));
            }
        }
    }
    all.elapsed = start.elapsed();
    all.callers = n;
    all.wallets = wallets;
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
}

/// `callers` callers of `wallets_per_caller` fresh wallets each.
pub fn new_wallets(callers: usize, wallets_per_caller: usize) -> Vec<Vec<WalletRef>> {
    (0..callers)
        .map(|_| {
            (0..wallets_per_caller)
                .map(|_| WalletRef::random())
                .collect()
        })
        .collect()
}

fn writer_id() -> String {
    format!("bench-{}", Uuid::new_v4().simple())
}

/// Measures the handler with `callers` callers of `wallets_per_caller` wallets each for
/// `duration`, in `pool`'s database (migrated, and holding nothing of another run when the
/// balances are to be checked). Does not check balances ([`balances`], [`check`]).
pub async fn measure(
    pool: &PgPool,
    partitions: u32,
    callers: usize,
    wallets_per_caller: usize,
    duration: Duration,
) -> Result<Figures, Error> {
    if callers == 0 || wallets_per_caller == 0 {
        return Err(Error::Invalid(
            "at least one caller and one wallet per caller".into(),
        ));
    }
    let handler = start_handler(pool, partitions, &writer_id()).await?;
    drive(
        &handler,
        new_wallets(callers, wallets_per_caller),
        true,
        duration,
    )
    .await
}

/// One point: a fresh database, [`measure`], the balances checked, the database dropped
/// (also when something failed).
pub async fn run(
    partitions: u32,
    callers: usize,
    wallets_per_caller: usize,
    duration: Duration,
) -> Result<Figures, Error> {
    let db = Scratch::create().await?;
    let result = async {
        let figures = measure(&db.pool, partitions, callers, wallets_per_caller, duration).await?;
        check(&figures, 0, &balances(&db.pool).await?)?;
        Ok(figures)
    }
    .await;
    db.drop().await;
    result
}

// ---- the stream-length check ---------------------------------------------------------------

/// The handler's rate on wallets whose streams were pre-loaded to `stream_events` events.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamFigures {
    /// Events of every wallet's stream when the measured part starts.
    pub stream_events: u64,
    /// Pre-loading top-ups (not measured).
    pub preloaded: u64,
    /// The shortest and longest wallet stream when the measured part ended.
    pub events_after_min: u64,
    pub events_after_max: u64,
    /// Both runs of this length together.
    pub figures: Figures,
}

/// The stream-length check, in one fresh database: for each length, `wallets` wallets opened
/// and pre-loaded with top-ups of [`PRELOAD_TOP_UP`] until their streams hold that many
/// events, every group spread over the partitions like the first. Then each group is
/// measured by `callers` callers (its wallets split equally) for
/// `duration`, in the order of `lengths` and then back (10, 10,000, 10,000, 10), so that
/// neither length gains from coming first or last; before every run the handler is started
/// again (cold caches: a wallet's first command loads its snapshot). A length's figures add
/// up its two runs. Balances are checked per group.
pub async fn stream_check(
    partitions: u32,
    lengths: &[u64],
    callers: usize,
    wallets: usize,
    duration: Duration,
) -> Result<Vec<StreamFigures>, Error> {
    if callers == 0 || wallets < callers {
        return Err(Error::Invalid(
            "the stream check needs at least one wallet per caller".into(),
        ));
    }
    let db = Scratch::create().await?;
    let result = stream_runs(&db.pool, partitions, lengths, callers, wallets, duration).await;
    db.drop().await;
    result
}

async fn stream_runs(
    pool: &PgPool,
    partitions: u32,
    lengths: &[u64],
    callers: usize,
    wallets: usize,
    duration: Duration,
) -> Result<Vec<StreamFigures>, Error> {
    let id = writer_id();
    // Every group spreads over the partitions exactly as the first one does (its i-th
    // wallet's client on the same partition), so the groups differ in stream length only.
    let first: Vec<WalletRef> = (0..wallets).map(|_| WalletRef::random()).collect();
    let groups: Vec<Vec<WalletRef>> = (0..lengths.len())
        .map(|g| {
            if g == 0 {
                return first.clone();
            }
            first
                .iter()
                .map(|w| same_partition(w.client, partitions))
                .collect()
        })
        .collect();
    let mut preloaded = Vec::with_capacity(lengths.len());
    {
        let handler = start_handler(pool, partitions, &id).await?;
        for (&length, group) in lengths.iter().zip(&groups) {
            eprintln!("[bench] stream check: pre-loading {wallets} wallets to {length} events");
            open_wallets(&handler, group).await?;
            preloaded.push(preload(&handler, group, length).await?);
        }
    }
    for (&length, group) in lengths.iter().zip(&groups) {
        ensure_lengths(&balances_of(pool, Some(group)).await?, length)?;
    }
    let n = lengths.len();
    let mut runs = vec![Run::default(); n];
    for (k, g) in (0..n).chain((0..n).rev()).enumerate() {
        eprintln!(
            "[bench] stream check: {callers} callers on the {}-event streams",
            lengths[g]
        );
        // Cold caches, same writer id: the partitions are taken back at once.
        let handler = start_handler(pool, partitions, &id).await?;
        let mut split: Vec<Vec<WalletRef>> = vec![Vec::new(); callers];
        for (i, w) in groups[g].iter().enumerate() {
            split[i % callers].push(*w);
        }
        let run = drive_run(&handler, split, false, duration, &format!("s{k}-")).await?;
        runs[g].merge(run);
    }
    let mut out = Vec::with_capacity(n);
    for (g, run) in runs.into_iter().enumerate() {
        let figures = run.figures();
        let after = balances_of(pool, Some(&groups[g])).await?;
        check(&figures, preloaded[g], &after)?;
        out.push(StreamFigures {
            stream_events: lengths[g],
            preloaded: preloaded[g],
            events_after_min: after.min_events,
            events_after_max: after.max_events,
            figures,
        });
    }
    Ok(out)
}

/// A new wallet whose client's partition is `client`'s.
fn same_partition(client: ClientId, partitions: u32) -> WalletRef {
    let partition = partition_of(client, partitions);
    loop {
        let w = WalletRef::random();
        if partition_of(w.client, partitions) == partition {
            return w;
        }
    }
}

fn ensure_lengths(found: &Balances, length: u64) -> Result<(), Error> {
    let want = length.max(1);
    if found.min_events == want && found.max_events == want {
        Ok(())
    } else {
        Err(Error::Failed(format!(
            "pre-loaded streams hold {}..{} events, not {want}",
            found.min_events, found.max_events
        )))
    }
}
