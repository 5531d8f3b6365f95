//! The invariants the simulator checks, and what a broken one reports.
//!
//! Checked after every step (incrementally, as each batch commits):
//!
//! - [`Invariant::DenseLog`]: a partition's sequence numbers are 1, 2, 3, … with no gap or
//!   repeat, and its head row equals its last sequence; every aggregate's versions are dense.
//! - [`Invariant::HashChain`]: every committed event chains to its client's previous event
//!   (`prev_hash`), its `hash` is `chain_hash` recomputed from the envelope and the event,
//!   and the stored chain head of the client is the last event's hash and count.
//! - [`Invariant::RecordedOnce`]: a command id is recorded at most once; every answer a
//!   caller gets for a recorded id — the first or a replay, in the same batch or later — is
//!   exactly its recorded outcome, and a reused key with another request is refused.
//! - [`Invariant::StateSeen`]: the state each decision reads (the writer's cache or the
//!   snapshot it loads) equals `evolve` folded over the partition's committed events, and so
//!   does every stored snapshot.
//! - [`Invariant::MoneyConserved`]: Σ top-ups = Σ wallet balances + Σ transfers in
//!   transit + Σ paid out through the provider, where a transfer is in transit from its
//!   `TransferDebited` until its `TransferCredited` or `TransferRefunded`, and paid out is
//!   Σ `HoldCaptured` − Σ `PaymentRefunded` (the amount the provider was paid plus the
//!   commission the platform kept) — autopayment runs' payments included, like any other. Holds do not appear: a hold moves no money, it only
//!   lowers the available balance. Balances are read from the snapshots the writers commit,
//!   the other sums from the committed events.
//! - [`Invariant::Available`]: every wallet's balance and `available = balance − Σ holds`
//!   are never negative; a wallet holds exactly for its payments that are reserved (status
//!   3) and not yet debited, each for the payment's amount with its commission.
//! - [`Invariant::EffectOnce`]: no side effect of the payment process happens twice with
//!   effect: the provider charges a payment id at most once and reverses it at most once,
//!   only after charging it; a transfer is credited at most once and refunded at most once,
//!   never both, and only after its debit; a payment captured by the platform was charged by
//!   the provider for its amount.
//! - [`Invariant::Autopayments`]: a run's payment is the run's (`run_payment_id` of the
//!   autopayment and the run number), started under the run's start command id, at most
//!   once, never after the run was recorded, and only while the client's committed state
//!   has the autopayment active and at that run (the command side decides the start against
//!   it, so a pause or cancellation committed first stops the run however late the process
//!   learns of it); a run is recorded on the client at most once and run numbers recorded
//!   are increasing, with a next run after it; a recorded run's outcome is its payment's
//!   final status (succeeded exactly when the payment succeeded, otherwise the payment's
//!   failure reason), and a run without a payment (its start refused) is recorded as
//!   failed; every autopayment's failures in a row are those its recorded runs tell (a
//!   success or a resumption starts again from 0), and an active autopayment has fewer than
//!   its `max_failures` (the record of the failure that reaches it pauses it, in the same
//!   command); a run is in flight (started, or being recorded) for at most 15 minutes of
//!   simulated time after it fell due (checked whenever its instance wakes). A run whose
//!   payment was started before a pause or cancellation committed is still followed and
//!   recorded (the report counts these), and the process is idle after it.
//!
//! Checked once the run has quiesced (no operation left, every queue drained, every event
//! delivered, every timer fired and the payment process idle):
//!
//! - [`Invariant::Quiescent`]: the run does quiesce; no wallet holds anything; no transfer
//!   is in transit; every payment is final (6, 8 or 9) and its process instance finished
//!   with no timer; no cancellation request is pending; what the provider's books hold for
//!   each payment (charged − reversed) is what the platform paid out for it; every consumer
//!   has applied its partition's last event; every writer cache entry equals the committed
//!   state; every active autopayment's instance is scheduled at the client's `next_run`
//!   (its timer at that run's time) and every paused or cancelled one idle with no timer —
//!   nothing running or recording; every run that started a payment was recorded, whatever
//!   paused or cancelled the autopayment while it was in flight.

use std::fmt;

/// One invariant (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Invariant {
    /// Sequences dense per partition, versions dense per aggregate.
    DenseLog,
    /// Every event's hash recomputed and chained to its client's previous one.
    HashChain,
    /// One record per command id; every answer equal to it.
    RecordedOnce,
    /// Every decision reads, and every snapshot holds, `evolve` over the committed log.
    StateSeen,
    /// Σ top-ups = Σ balances + Σ in transit + Σ paid out.
    MoneyConserved,
    /// Balances and available amounts never negative; holds exactly for reserved payments.
    Available,
    /// Provider charges and reversals, transfer debits, credits and refunds at most once.
    EffectOnce,
    /// Autopayment runs: one payment each, started only while active and due, recorded
    /// once and in order with its payment's outcome, failures in a row counted and paused
    /// at the limit.
    Autopayments,
    /// Once quiesced: nothing held, in transit, stranded or unreconciled.
    Quiescent,
}

impl Invariant {
    /// Every invariant, in the order the report lists them.
    pub const ALL: [Invariant; 9] = [
        Invariant::DenseLog,
        Invariant::HashChain,
        Invariant::RecordedOnce,
        Invariant::StateSeen,
        Invariant::MoneyConserved,
        Invariant::Available,
        Invariant::EffectOnce,
        Invariant::Autopayments,
        Invariant::Quiescent,
    ];

    /// A stable name, e.g. `money-conserved`.
    pub fn name(self) -> &'static str {
        match self {
            Invariant::DenseLog => "dense-log",
            Invariant::HashChain => "hash-chain",
            Invariant::RecordedOnce => "recorded-once",
            Invariant::StateSeen => "state-seen",
            Invariant::MoneyConserved => "money-conserved",
            Invariant::Available => "available-balance",
            Invariant::EffectOnce => "effect-once",
            Invariant::Autopayments => "autopayments",
            Invariant::Quiescent => "quiescent",
        }
    }
}

impl fmt::Display for Invariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A broken invariant: which, where in the run, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The invariant broken.
    pub invariant: Invariant,
    /// The index (in the run's operation list) of the last operation submitted; the list's
    /// length when the violation was found while quiescing.
    pub op: usize,
    /// The simulator step (0-based, over the whole run).
    pub step: u64,
    /// What was seen, with the ids involved.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} violated at step {} (after op {}): {}",
            self.invariant, self.step, self.op, self.detail
        )
    }
}
