//! What a run reports: its size, what the command side decided, the faults injected by kind,
//! the invariant checks made, the violation if any, and a digest of the committed log.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use crate::check::Violation;

/// A fault the simulator injects (see [`crate::config::Faults`] for when).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    /// A batch's commit failed; nothing of it is visible.
    FailedCommit,
    /// A batch committed but its writer was told it failed.
    AmbiguousCommit,
    /// A writer committed and crashed before answering.
    CrashAfterCommit,
    /// A writer crashed between batches, losing its queue.
    WriterCrash,
    /// Another writer took a paused writer's lease; the paused one lives on as a zombie.
    Takeover,
    /// A request reached the zombie writer.
    StaleRoute,
    /// The relay published an event again.
    DuplicateDelivery,
    /// An event overtook an earlier one of its partition.
    ReorderedDelivery,
    /// An event was held back in the broker.
    DelayedDelivery,
    /// The tracker's transaction failed; the event came again.
    ConsumerFailure,
    /// The executor crashed between storing a step and performing it.
    ExecutorCrash,
    /// The provider never executed a call; the executor timed out.
    ProviderTimeout,
    /// The provider executed a call after the executor stopped waiting.
    ProviderLate,
    /// The provider's answer arrived twice.
    ProviderDoubleAnswer,
    /// The provider was down for a while.
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
    /// The run's seed.
    pub seed: u64,
    /// Operations run.
    pub ops: usize,
    /// Clients simulated.
    pub clients: u32,
    /// Log partitions.
    pub partitions: u32,
    /// Simulator steps, the quiescing ones included.
    pub steps: u64,
    /// Requests handed to a writer: clients' (first sends and resends) and the platform's.
    pub client_requests: u64,
    /// Requests the payment process issued.
    pub platform_requests: u64,
    /// Commands decided and recorded, accepted or refused.
    pub accepted: u64,
    /// Commands refused by the domain (recorded too).
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
    /// Batches a fencing condition refused.
    pub fenced: u64,
    /// Events committed over all partitions.
    pub events: u64,
    /// Events delivered to the payment process, and those it skipped as already applied.
    pub deliveries: u64,
    /// Deliveries at or below the checkpoint, skipped.
    pub duplicates_skipped: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<Fault, u64>,
    /// Invariant evaluations made.
    pub checks: u64,
    /// Payments (transfers included) that reached status 6.
    pub payments_succeeded: u64,
    /// Payments that reached status 8.
    pub payments_failed: u64,
    /// Payments that reached status 9.
    pub payments_cancelled: u64,
    /// Transfers credited to their recipient.
    pub transfers_credited: u64,
    /// Transfers refunded to their sender.
    pub transfers_refunded: u64,
    /// Successful payments refunded after a cancellation request.
    pub refunds: u64,
    /// Card authorisations the bank made after the platform had given up on them: they
    /// lapse at the bank unclaimed (by design).
    pub lapsed_authorisations: u64,
    /// Calls made to the provider (executions and reversals).
    pub provider_calls: u64,
    /// Runs the autopayment process started (start commands issued, repeats included).
    pub autopayment_starts: u64,
    /// Payments the runs started (committed).
    pub autopayment_payments: u64,
    /// Starts refused as not due (`autopayment_run_not_due`: the autopayment paused,
    /// cancelled, or at another run as committed when the start was decided).
    pub autopayment_starts_not_due: u64,
    /// Runs found not due by the runner itself in the committed state it read, before
    /// issuing a start ([`etr_domain::autopayment::run_template`]).
    pub autopayment_runs_not_due_when_read: u64,
    /// Runs recorded as succeeded.
    pub autopayment_runs_succeeded: u64,
    /// Runs recorded as failed (each with the client's notice queued once).
    pub autopayment_runs_failed: u64,
    /// Runs in flight when the process applied a pause or cancellation (recorded after).
    pub autopayment_runs_in_flight_at_stop: u64,
    /// Failed-run notices queued for clients.
    pub autopayment_notices: u64,
    /// Simulated time the run covered, in seconds.
    pub simulated_secs: i64,
    /// SHA-256 over every committed event's hash in commit order: equal for equal runs.
    pub digest: String,
    /// The first invariant broken, if any.
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
            "payments: {} succeeded, {} failed, {} cancelled; transfers: {} credited, {} refunded; {} payments refunded; {} card authorisations lapsed; {} provider and bank calls",
            self.payments_succeeded,
            self.payments_failed,
            self.payments_cancelled,
            self.transfers_credited,
            self.transfers_refunded,
            self.refunds,
            self.lapsed_authorisations,
            self.provider_calls
        )?;
        writeln!(
            f,
            "autopayments: {} starts ({} refused as not due; {} more runs not due as the runner read them), {} payments; runs recorded: {} succeeded, {} failed ({} notices); {} in flight at a pause or cancellation",
            self.autopayment_starts,
            self.autopayment_starts_not_due,
            self.autopayment_runs_not_due_when_read,
            self.autopayment_payments,
            self.autopayment_runs_succeeded,
            self.autopayment_runs_failed,
            self.autopayment_notices,
            self.autopayment_runs_in_flight_at_stop
        )?;
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, n)| format!("{} {n}", k.name()))
            .collect();
        let total: u64 = self.faults.values().sum();
        writeln!(f, "faults injected: {total} ({})", faults.join(", "))?;
        writeln!(f, "invariant checks: {}", self.checks)?;
        match &self.violation {
            None => writeln!(f, "violations: 0")?,
            Some(v) => writeln!(f, "violations: 1 — {v}")?,
        }
        writeln!(f, "log digest: {}", self.digest)?;
        write!(f, "elapsed: {:.2?}", self.elapsed)
    }
}
