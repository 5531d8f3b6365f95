//! The handler next to the peer, in one run: for each number of callers, the handler
//! ([`crate::handler`]), then (with `--peer`) the peer's aggregate store, its event store and
//! the raw single-row INSERT (`etr_peer_bench`), each in its own fresh database on the same
//! server, one after the other so they see the same machine; then one table with the ratios.

#![allow(clippy::float_arithmetic)] // rates and their ratios, never money

use etr_peer_bench::Workload;
use serde::Serialize;
use std::time::Duration;

use crate::handler::{self, StreamFigures};
use crate::stats::{ratio, round3};
use crate::Error;

/// What the table and the JSON say a handler payment is.
pub const PAYMENT_NOTE: &str = "etr-handler: a payment is StartPayment (fraud verdict Approved: statuses 0-3, the amount held) followed at once by ExecutePayment (Succeeded: 4-6, the hold captured), as the payment processor issues it; both are handler commands and both count in cmd/s, p50 and p99; ops/s counts the pair once. The peer's payment is one debit command, so its cmd/s is its ops/s.";

/// The figures of one number of callers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    pub callers: usize,
    pub handler: handler::Figures,
    pub peer_aggregate_store: Option<etr_peer_bench::Figures>,
    pub peer_event_store: Option<etr_peer_bench::Figures>,
    pub raw_insert: Option<etr_peer_bench::Figures>,
    pub ratios: Option<Ratios>,
}

/// The handler's rate divided by each other's, by commands and by wallet operations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    pub handler_per_peer_aggregate_store: f64,
    pub handler_per_peer_event_store: f64,
    pub handler_per_raw_insert: f64,
    pub handler_ops_per_peer_aggregate_store: f64,
    pub handler_ops_per_peer_event_store: f64,
    pub handler_ops_per_raw_insert: f64,
}

impl Ratios {
    fn of(
        h: &handler::Figures,
        aggregate: &etr_peer_bench::Figures,
        events: &etr_peer_bench::Figures,
        raw: &etr_peer_bench::Figures,
    ) -> Ratios {
        let r = |a: f64, b: f64| round3(ratio(a, b));
        Ratios {
            handler_per_peer_aggregate_store: r(h.per_second, aggregate.per_second),
            handler_per_peer_event_store: r(h.per_second, events.per_second),
            handler_per_raw_insert: r(h.per_second, raw.per_second),
            handler_ops_per_peer_aggregate_store: r(h.operations_per_second, aggregate.per_second),
            handler_ops_per_peer_event_store: r(h.operations_per_second, events.per_second),
            handler_ops_per_raw_insert: r(h.operations_per_second, raw.per_second),
        }
    }
}

/// Runs every point. `peer_admin_url`: the server the peer creates its databases on (`None`:
/// the handler only).
pub async fn points(
    partitions: u32,
    callers: &[usize],
    wallets_per_caller: usize,
    duration: Duration,
    peer_admin_url: Option<&str>,
) -> Result<Vec<Point>, Error> {
    let mut out = Vec::with_capacity(callers.len());
    for &n in callers {
        eprintln!("[bench] {} with {n} callers ...", handler::NAME);
        let h = handler::run(partitions, n, wallets_per_caller, duration).await?;
        let mut point = Point {
            callers: n,
            handler: h,
            peer_aggregate_store: None,
            peer_event_store: None,
            raw_insert: None,
            ratios: None,
        };
        if let Some(admin) = peer_admin_url {
            let peer = |w: Workload| async move {
                eprintln!("[bench] {} with {n} callers ...", w.name());
                etr_peer_bench::run(admin, w, n, wallets_per_caller, duration).await
            };
            let aggregate = peer(Workload::PeerAggregateStore).await?;
            let events = peer(Workload::PeerEventStore).await?;
            let raw = peer(Workload::RawInsert).await?;
            point.ratios = Some(Ratios::of(&point.handler, &aggregate, &events, &raw));
            point.peer_aggregate_store = Some(aggregate);
            point.peer_event_store = Some(events);
            point.raw_insert = Some(raw);
        }
        out.push(point);
    }
    Ok(out)
}

/// Prints the points as one table, then the ratios.
pub fn print_points(points: &[Point], wallets_per_caller: usize, seconds: u64, partitions: u32) {
    println!(
        "ETR handler-level benchmark (no HTTP, no relay): {wallets_per_caller} wallets per caller, {seconds} s per point, {partitions} partitions"
    );
    println!("  each caller opens its wallets (not measured), then makes pairs of a top-up 100.00 and a payment 10.00 of one wallet, the pairs round-robin over its wallets, one command at a time");
    println!("  {PAYMENT_NOTE}");
    println!(
        "{:>7}  {:<21} {:>9} {:>7} {:>10} {:>10} {:>8} {:>8}",
        "callers", "workload", "commands", "seconds", "cmd/s", "ops/s", "p50 ms", "p99 ms"
    );
    for p in points {
        let h = &p.handler;
        println!(
            "{:>7}  {:<21} {:>9} {:>7.2} {:>10.1} {:>10.1} {:>8.3} {:>8.3}",
            p.callers,
            h.name,
            h.commands,
            h.seconds,
            h.per_second,
            h.operations_per_second,
            h.p50_ms,
            h.p99_ms
        );
        for f in [&p.peer_aggregate_store, &p.peer_event_store, &p.raw_insert]
            .into_iter()
            .flatten()
        {
            println!(
                "{:>7}  {:<21} {:>9} {:>7.2} {:>10.1} {:>10.1} {:>8.3} {:>8.3}",
                p.callers,
                f.name,
                f.commands,
                f.seconds,
                f.per_second,
                f.per_second,
                f.p50_ms,
                f.p99_ms
            );
        }
    }
    if points.iter().all(|p| p.ratios.is_none()) {
        return;
    }
    println!("ratios, by cmd/s (by ops/s in brackets)");
    println!(
        "{:>7}  {:>24} {:>24} {:>24}",
        "callers", "handler÷peer-aggregate", "handler÷peer-event", "handler÷raw-insert"
    );
    for p in points {
        if let Some(r) = &p.ratios {
            let cell = |a: f64, b: f64| format!("{a:.2} ({b:.2})");
            println!(
                "{:>7}  {:>24} {:>24} {:>24}",
                p.callers,
                cell(
                    r.handler_per_peer_aggregate_store,
                    r.handler_ops_per_peer_aggregate_store
                ),
                cell(
                    r.handler_per_peer_event_store,
                    r.handler_ops_per_peer_event_store
                ),
                cell(r.handler_per_raw_insert, r.handler_ops_per_raw_insert),
            );
        }
    }
}

/// The stream-length check's figures and the ratio of the last length's rate to the
/// first's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamCheck {
    pub callers: usize,
    pub wallets: usize,
    pub runs: Vec<StreamFigures>,
    /// cmd/s at the longest streams ÷ cmd/s at the shortest (the target: within 10 % of 1).
    pub ratio_longest_to_shortest: f64,
}

impl StreamCheck {
    pub fn new(callers: usize, wallets: usize, runs: Vec<StreamFigures>) -> StreamCheck {
        let rate = |f: Option<&StreamFigures>| f.map_or(0.0, |f| f.figures.per_second);
        let shortest = runs.iter().min_by_key(|r| r.stream_events);
        let longest = runs.iter().max_by_key(|r| r.stream_events);
        StreamCheck {
            callers,
            wallets,
            ratio_longest_to_shortest: round3(ratio(rate(longest), rate(shortest))),
            runs,
        }
    }

    pub fn print(&self, seconds: u64) {
        println!(
            "stream length: {} callers over {} wallets per length (one client each, the groups spread over the partitions alike), one database; streams pre-loaded with top-ups of 1.00; each length measured twice for {seconds} s (lengths in order, then back), the handler started again before every run (cold caches: a wallet's first command loads its snapshot); figures of both runs together",
            self.callers, self.wallets
        );
        println!(
            "{:>14} {:>18} {:>10} {:>10} {:>10} {:>8} {:>8}",
            "stream events", "at the end", "commands", "cmd/s", "ops/s", "p50 ms", "p99 ms"
        );
        for r in &self.runs {
            let f = &r.figures;
            println!(
                "{:>14} {:>18} {:>10} {:>10.1} {:>10.1} {:>8.3} {:>8.3}",
                r.stream_events,
                format!("{}..{}", r.events_after_min, r.events_after_max),
                f.commands,
                f.per_second,
                f.operations_per_second,
                f.p50_ms,
                f.p99_ms
            );
        }
        if let (Some(short), Some(long)) = (
            self.runs.iter().min_by_key(|r| r.stream_events),
            self.runs.iter().max_by_key(|r| r.stream_events),
        ) {
            if short.stream_events != long.stream_events {
                println!(
                    "  cmd/s at {} events ÷ cmd/s at {} events = {:.3} (target: within 10 % of 1)",
                    long.stream_events, short.stream_events, self.ratio_longest_to_shortest
                );
            }
        }
    }
}
