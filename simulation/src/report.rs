//! What a run reports: its size, what the command side decided, the faults injected by kind,
//! the invariant checks made, the violation if any, and a digest of the committed log.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::check::Violation;

/// A fault the simulator injects (see [`crate::config::Faults`] for when).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    FailedCommit,
    AmbiguousCommit,
    CrashAfterCommit,
    WriterCrash,
    Takeover,
    StaleRoute,
    DuplicateDelivery,
    ReorderedDelivery,
    DelayedDelivery,
    ConsumerFailure,
    ExecutorCrash,
    ProviderTimeout,
    ProviderLate,
    ProviderDoubleAnswer,
    ProviderOutage,
}

impl Fault {
    /// A stable name, e.g. `failed-commit`.
    pub fn name(self) -> &'static str {
        match self {
            Fault::FailedCommit => "failed-commit",
            Fault::AmbiguousCommit => "ambiguous-commit",
            Fault::CrashAfterCommit => "crash-after-commit",
            Fault::WriterCrash => "writer-crash",
            Fault::Takeover => "takeover",
            Fault::StaleRoute => "stale-route",
            Fault::DuplicateDelivery => "duplicate-delivery",
            Fault::ReorderedDelivery => "reordered-delivery",
            Fault::DelayedDelivery => "delayed-delivery",
            Fault::ConsumerFailure => "consumer-failure",
            Fault::ExecutorCrash => "executor-crash",
            Fault::ProviderTimeout => "provider-timeout",
            Fault::ProviderLate => "provider-late",
            Fault::ProviderDoubleAnswer => "provider-double-answer",
            Fault::ProviderOutage => "provider-outage",
        }
    }
}

/// The figures of one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub seed: u64,
    pub ops: usize,
    pub clients: u32,
    pub partitions: u32,
    /// Simulator steps, the quiescing ones included.
    pub steps: u64,
    /// Requests handed to a writer: clients' (first sends and resends) and the platform's.
    pub client_requests: u64,
    pub platform_requests: u64,
    /// Commands decided and recorded, accepted or refused.
    pub accepted: u64,
    pub refused: u64,
    /// Refusals by code.
    pub refusals: BTreeMap<String, u64>,
    /// Answers replayed from a command record (earlier batch or earlier in the batch).
    pub replayed: u64,
    /// Requests refused because their key was recorded for another request.
    pub key_reused: u64,
    /// Requests that got no outcome (failed commit, crash, fenced, not the owner).
    pub unanswered: u64,
    /// Batches committed, and batches fenced off (a stale writer, or a stale head).
    pub batches: u64,
    pub fenced: u64,
    /// Events committed over all partitions.
    pub events: u64,
    /// Events delivered to the payment process, and those it skipped as already applied.
    pub deliveries: u64,
    pub duplicates_skipped: u64,
    pub faults: BTreeMap<Fault, u64>,
    /// Invariant evaluations made.
    pub checks: u64,
    pub payments_succeeded: u64,
    pub payments_failed: u64,
    pub payments_cancelled: u64,
    pub transfers_credited: u64,
    pub transfers_refunded: u64,
    pub refunds: u64,
    /// Calls made to the provider (executions and reversals).
    pub provider_calls: u64,
    /// Simulated time the run covered, in seconds.
    pub simulated_secs: i64,
    /// The platform's known faults seen (by name; see
    /// [`crate::KNOWN_LATE_PROVIDER_EFFECT`]): reported, and violations only when
    /// `Config::known_faults_fail` is set.
    pub known_faults: BTreeMap<&'static str, u64>,
    /// SHA-256 over every committed event's hash in commit order: equal for equal runs.
    pub digest: String,
    pub violation: Option<Violation>,
    /// Wall-clock time of the run (not part of the run's outcome).
    pub elapsed: Duration,
}

impl Report {
    /// Counts one injected fault.
    pub fn fault(&mut self, fault: Fault) {
        *self.faults.entry(fault).or_default() += 1;
    }

    /// The report without its wall-clock time, for comparing two runs.
    pub fn without_elapsed(&self) -> Report {
        Report {
            elapsed: Duration::ZERO,
            ..self.clone()
        }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "seed {} · {} ops · {} clients · {} partitions · {} steps · {} s simulated",
            self.seed, self.ops, self.clients, self.partitions, self.steps, self.simulated_secs
        )?;
        writeln!(
            f,
            "requests: {} from clients, {} from the payment process",
            self.client_requests, self.platform_requests
        )?;
        writeln!(
            f,
            "commands: {} accepted, {} refused, {} replayed, {} key reused, {} unanswered",
            self.accepted, self.refused, self.replayed, self.key_reused, self.unanswered
        )?;
        let mut refusals: Vec<_> = self.refusals.iter().collect();
        refusals.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let top: Vec<String> = refusals
            .iter()
            .take(8)
            .map(|(code, n)| format!("{code} {n}"))
            .collect();
        writeln!(f, "refusals: {}", top.join(", "))?;
        writeln!(
            f,
            "log: {} events in {} batches ({} fenced off); {} deliveries, {} duplicates skipped",
            self.events, self.batches, self.fenced, self.deliveries, self.duplicates_skipped
        )?;
        writeln!(
            f,
            "payments: {} succeeded, {} failed, {} cancelled; transfers: {} credited, {} refunded; {} payments refunded; {} provider calls",
            self.payments_succeeded,
            self.payments_failed,
            self.payments_cancelled,
            self.transfers_credited,
            self.transfers_refunded,
            self.refunds,
            self.provider_calls
        )?;
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        let total: u64 = self.faults.values().sum();
        writeln!(f, "faults injected: {total} ({})", faults.join(", "))?;
        writeln!(f, "invariant checks: {}", self.checks)?;
        if !self.known_faults.is_empty() {
            let known: Vec<String> = self
                .known_faults
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            writeln!(f, "known platform faults seen: {}", known.join(", "))?;
        }
        match &self.violation {
            None => writeln!(f, "violations: 0")?,
            Some(v) => writeln!(f, "violations: 1 — {v}")?,
        }
        writeln!(f, "log digest: {}", self.digest)?;
        write!(f, "elapsed: {:.2?}", self.elapsed)
    }
}
