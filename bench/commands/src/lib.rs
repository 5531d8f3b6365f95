//! Bench only: `etr bench commands` and `etr bench replay`, figures printed next to baselines measured in the same
//! run (STYLE §5: a same-run baseline and the ratio, never an asserted time).
//!
//! - **Handler mode** ([`handler`], the default): the command handler of `etr_command_api`
//!   called in-process (no HTTP, no relay) on the peer's wallet workload — one wallet (one
//!   stream) per client, 1,000 wallets per caller, each caller opening its wallets (not
//!   measured) then making pairs of a top-up of 100.00 and a payment of 10.00 of one
//!   wallet, the pairs round-robin over its wallets (so half the operations are payments
//!   however short the point) — for each number of callers, each point in a fresh database. A payment is
//!   the platform's `StartPayment` (approved; it reserves) followed by the `ExecutePayment`
//!   (succeeded; it captures) that the payment processor would issue: two commands, both
//!   counted in commands/s, p50 and p99; operations/s counts the pair once
//!   ([`compare::PAYMENT_NOTE`]). Balances are read back from the snapshot table after every
//!   point and must equal top-ups − payments with no hold left open.
//! - **`--peer`** ([`compare`]): at the same numbers of callers, in the same invocation, the
//!   peer (`etr_peer_bench`: cqrs-es 0.5 + postgres-es 0.5, its aggregate store and its event
//!   store) and a raw single-row INSERT; one table with commands/s, p50, p99 and the ratios
//!   handler ÷ each.
//! - **Stream length** ([`handler::stream_check`]): the handler's rate on wallets whose
//!   streams hold ~10 vs ~10,000 events (pre-loaded by running top-ups), and the ratio.
//! - **REST mode** ([`rest`]): the platform running in this process ([`platform`]), driven
//!   over HTTP with bearer tokens by 64 connections by default; commands/s, REST p50/p99 and
//!   accepted → on the topic p50/p99, next to raw Kafka produce and raw Postgres INSERTs.
//!
//! Everything can also be written as one JSON document ([`Options::json`]).
//!
//! `etr bench replay` ([`replay`]): the data-platform replay next to a raw Postgres COPY of
//! the same rows, and the auditor timeline's read latency.
//!
//! The platform it measures is wired by `etr_platform`, as the `etr` binary wires it; this
//! crate knows nothing of the binary.

pub mod compare;
mod error;
pub mod handler;
pub mod platform;
pub mod replay;
pub mod rest;
pub mod stats;
pub mod workload;

pub use error::Error;

use etr_infra::config::Settings;
use etr_infra::pg;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

/// Which part of `etr bench commands` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The handler in-process ([`handler`]; with `peer`, [`compare`]; and the stream check).
    Handler,
    /// The platform over HTTP ([`rest`]).
    Rest,
    /// Both, the handler first.
    All,
}

/// What `etr bench commands` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Numbers of concurrent callers, one point each (handler mode).
    pub callers: Vec<usize>,
    /// Measured time of every point (and of the REST run).
    pub duration: Duration,
    /// Wallets each caller owns (handler mode and peer).
    pub wallets_per_caller: usize,
    /// Also run the peer and the raw INSERT at every point.
    pub peer: bool,
    /// Stream lengths of the stream-length check (empty: no check).
    pub stream_events: Vec<u64>,
    /// Callers of the stream-length check.
    pub stream_callers: usize,
    /// Wallets of the stream-length check (all pre-loaded).
    pub stream_wallets: usize,
    /// The REST mode's options.
    pub rest: rest::Options,
    /// Where to write every figure as one JSON document.
    pub json: Option<PathBuf>,
}

/// Runs what `options` asks for against the Postgres server and broker of `settings`
/// (fresh databases and topics; the databases are dropped afterwards), prints the tables,
/// writes the JSON document when asked, and returns it.
///
/// Errors: bad options ([`Error::Invalid`]); any measurement's; writing the JSON file.
pub async fn commands(settings: Settings, options: &Options) -> Result<serde_json::Value, Error> {
    validate(options)?;
    let seconds = options.duration.as_secs();
    let mut doc = json!({
        "bench": "commands",
        "seconds": seconds,
        "partitions": settings.partitions,
    });
    if matches!(options.mode, Mode::Handler | Mode::All) {
        let admin = pg::with_database(&settings.database_url, "postgres");
        let points = compare::points(
            settings.partitions,
            &options.callers,
            options.wallets_per_caller,
            options.duration,
            options.peer.then_some(admin.as_str()),
        )
        .await?;
        compare::print_points(
            &points,
            options.wallets_per_caller,
            seconds,
            settings.partitions,
        );
        doc["handler"] = json!({
            "wallets_per_caller": options.wallets_per_caller,
            "payment": compare::PAYMENT_NOTE,
            "points": points,
        });
        if !options.stream_events.is_empty() {
            let runs = handler::stream_check(
                settings.partitions,
                &options.stream_events,
                options.stream_callers,
                options.stream_wallets,
                options.duration,
            )
            .await?;
            let check =
                compare::StreamCheck::new(options.stream_callers, options.stream_wallets, runs);
            println!();
            check.print(seconds);
            doc["stream"] = serde_json::to_value(&check)?;
        }
    }
    if matches!(options.mode, Mode::Rest | Mode::All) {
        if options.mode == Mode::All {
            println!();
        }
        doc["rest"] = rest::run(settings.clone(), &options.rest).await?;
    }
    if let Some(path) = &options.json {
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)?;
        eprintln!("[bench] figures written to {}", path.display());
    }
    Ok(doc)
}

fn validate(options: &Options) -> Result<(), Error> {
    let invalid = |m: &str| Err(Error::Invalid(m.to_owned()));
    if !(1..=3600).contains(&options.duration.as_secs()) {
        return invalid("--seconds must be 1..=3600");
    }
    if matches!(options.mode, Mode::Handler | Mode::All) {
        if options.callers.is_empty() || options.callers.iter().any(|&n| !(1..=1024).contains(&n)) {
            return invalid("--callers must list numbers in 1..=1024");
        }
        if !(1..=100_000).contains(&options.wallets_per_caller) {
            return invalid("--wallets must be 1..=100000");
        }
        if !options.stream_events.is_empty()
            && (options.stream_callers == 0
                || options.stream_wallets < options.stream_callers
                || options
                    .stream_events
                    .iter()
                    .any(|&n| !(1..=1_000_000).contains(&n)))
        {
            return invalid(
                "--stream-events must list numbers in 1..=1000000, with at least one --stream-wallets per --stream-callers",
            );
        }
    }
    Ok(())
}
