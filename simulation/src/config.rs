//! What a run is: its seed and size, the fault rates, the planted bugs (off unless a test
//! turns them on) and the platform's own settings the simulated components use.

use etr_domain::limits::{Catalogue, GroupId};
use etr_domain::payment_execution::Policy;
use etr_domain::Currency;
use rust_decimal_macros::dec;
use std::sync::Arc;

/// One simulation run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seeds the operations ([`crate::ops::generate`]) and, through them, every schedule.
    pub seed: u64,
    /// How many client operations to generate.
    pub ops: usize,
    /// Clients (each with one wallet in roubles).
    pub clients: u32,
    /// Log partitions; a client's is `etr_domain::ids::partition_of`.
    pub partitions: u32,
    /// The most commands one writer batch decides.
    pub max_batch: usize,
    /// Aggregate states (and, separately, chain heads) a writer caches; a miss loads the
    /// committed snapshot.
    pub cache_capacity: usize,
    /// The fault rates.
    pub faults: Faults,
    /// Bugs planted in the simulated runners (none by default).
    pub bugs: Bugs,
    /// The payment process's timing.
    pub policy: Policy,
    /// The most operations the shrinker may simulate, over all the runs it makes.
    pub shrink_budget: usize,
    /// Prints (to stderr) what happens to this payment or instance: its events, the process's
    /// steps, the provider's calls. For debugging a failure.
    pub trace: Option<uuid::Uuid>,
}

impl Config {
    /// A run of `ops` operations from `seed` with the default shape: 64 clients on 4
    /// partitions, the default fault rates, no planted bug.
    pub fn new(seed: u64, ops: usize) -> Config {
        Config {
            seed,
            ops,
            clients: 64,
            partitions: 4,
            max_batch: 16,
            cache_capacity: 48,
            faults: Faults::default(),
            bugs: Bugs::default(),
            policy: Policy::default(),
            shrink_budget: 5_000_000,
            trace: None,
        }
    }

    /// The client group catalogue the writers decide under: the platform's defaults, with a
    /// warning threshold of 5,000.00 (a payment above it waits for the client's OTP) and a
    /// wallet-source day limit of 1,000,000.00 in roubles for the default group.
    pub fn catalogue() -> Arc<Catalogue> {
        let mut catalogue = Catalogue::default();
        if let Some(limits) = catalogue
            .groups
            .get_mut(&GroupId::identified())
            .and_then(|g| g.limits.get_mut(&Currency::Rub))
        {
            limits.warning_threshold = Some(dec!(5000.00));
            limits.wallet_source.day = Some(dec!(1000000.00));
        }
        Arc::new(catalogue)
    }
}

/// Fault rates in per mille (0–1000) of the chances each fault has where it can happen.
/// Integers, so no floating point touches the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Faults {
    /// A batch's commit fails and nothing of it is visible (per commit).
    pub failed_commit: u32,
    /// A batch commits but the writer is told it failed (the connection broke after
    /// `COMMIT` was sent; per commit).
    pub ambiguous_commit: u32,
    /// The writer commits and crashes before answering its callers (per commit).
    pub crash_after_commit: u32,
    /// A writer crashes between batches, losing its queue; a new one takes over (per
    /// internal step).
    pub writer_crash: u32,
    /// A writer pauses and another takes its lease over; the paused one (a zombie) later
    /// tries to commit what it had queued and is fenced (per internal step).
    pub takeover: u32,
    /// A request is routed to a partition's zombie writer instead of the live one (per
    /// request, while a zombie exists).
    pub stale_route: u32,
    /// The relay publishes an event again (per delivery).
    pub duplicate_delivery: u32,
    /// A later event of the partition is delivered before an earlier one (per delivery).
    pub reordered_delivery: u32,
    /// An event is held back in the broker for up to 30 s (per delivery).
    pub delayed_delivery: u32,
    /// The process tracker's transaction fails: nothing applied, the event comes again
    /// (per delivery).
    pub consumer_failure: u32,
    /// The process executor crashes after storing a woken instance and before performing
    /// its actions (per woken instance).
    pub executor_crash: u32,
    /// The provider takes the call but never executes it; the executor times out (per
    /// call).
    pub provider_timeout: u32,
    /// The provider executes the call after the executor stopped waiting (per call).
    pub provider_late: u32,
    /// The provider's answer arrives twice (per call).
    pub provider_double_answer: u32,
    /// The provider goes down for 1–90 s: calls time out and execute nothing (per internal
    /// step).
    pub provider_outage: u32,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            failed_commit: 20,
            ambiguous_commit: 10,
            crash_after_commit: 5,
            writer_crash: 3,
            takeover: 3,
            stale_route: 100,
            duplicate_delivery: 30,
            reordered_delivery: 30,
            delayed_delivery: 15,
            consumer_failure: 10,
            executor_crash: 10,
            provider_timeout: 60,
            provider_late: 60,
            provider_double_answer: 40,
            provider_outage: 2,
        }
    }
}

impl Faults {
    /// No faults at all (used while the run quiesces, and by tests that want a clean run).
    pub fn none() -> Faults {
        Faults {
            failed_commit: 0,
            ambiguous_commit: 0,
            crash_after_commit: 0,
            writer_crash: 0,
            takeover: 0,
            stale_route: 0,
            duplicate_delivery: 0,
            reordered_delivery: 0,
            delayed_delivery: 0,
            consumer_failure: 0,
            executor_crash: 0,
            provider_timeout: 0,
            provider_late: 0,
            provider_double_answer: 0,
            provider_outage: 0,
        }
    }
}

/// Bugs the simulator can plant in its own copies of the platform's runners, to prove that
/// the invariants catch them. All off by default; the platform has none of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bugs {
    /// The payment executor takes a transfer credit that was not answered (the command
    /// side failed, the credit may have committed) for a refusal, and refunds the sender.
    pub refund_unanswered_credit: bool,
    /// The partition writer keeps its cache, lease and head after a failed commit instead of
    /// dropping them and reloading.
    pub keep_cache_after_failed_commit: bool,
    /// The autopayment runner takes a run's payment it cannot find (its start never
    /// committed) for one still in flight instead of starting it again: the run is followed
    /// forever and the autopayment never runs again.
    pub autopayment_missing_as_pending: bool,
    /// The autopayment runner records a run whose payment is still in flight as failed.
    pub autopayment_pending_as_failed: bool,
}
