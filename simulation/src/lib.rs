//! Deterministic simulation of ETR's business core (in the manner of TigerBeetle's VOPR).
//!
//! The simulator runs the platform's own pure code — the aggregates (`etr_domain::decide` /
//! `evolve`), the partition writer's batch decision (`etr_domain::partition::decide_batch`,
//! which `command-api`'s writer calls too), the payment process
//! (`etr_domain::payment_execution::step`) and the autopayment process
//! (`etr_domain::autopayment::step`) — inside a simulated world driven by one seed:
//! ChaCha8 random numbers, a simulated clock, ordered maps only. Nothing reads the wall clock
//! or depends on hash-map order, so a seed replays exactly (a test runs one twice and
//! compares the digest of the committed log).
//!
//! # The model
//!
//! - **Clients and partitions.** `clients` clients, each with one rouble wallet, on
//!   `partitions` log partitions (`etr_domain::ids::partition_of`, the platform's hash).
//! - **Operations** ([`ops`]): requests clients send — open the wallet, top up, pay a service
//!   (some above the OTP threshold, some declined by fraud control, some with a commission),
//!   register and bind a bank card and pay from it, transfer to another client's wallet
//!   (across partitions), confirm a payment with the OTP,
//!   request the cancellation (refund) of a payment, save, change and delete a payment
//!   template (a service paid from the wallet, now and then above the OTP threshold), create
//!   an autopayment on a template (every 5–60 seconds or 1–10 minutes of simulated time,
//!   pausing after 1–10 failed runs in a row; now and then a period the platform refuses),
//!   pause, resume and cancel it, and resends of an earlier key with the same or another
//!   body. Ids are the platform's: `<client>/k<n>` command ids, payment and operation ids
//!   UUID v5 of the command id, template and autopayment ids derived from the client and
//!   their number, fingerprints over the body.
//! - **Each partition** has an in-memory database (the committed log, command records,
//!   snapshots, chain heads, the head row with its fencing epoch) and a writer with a
//!   bounded cache (the platform's `Lru`) and a queue. The writer does what
//!   `command-api`'s `PartitionWriter` does around the pure decision: takes its lease (epoch +
//!   1), loads the cache misses, decides optimistically without the command records and again
//!   with them when the commit refuses a recorded id, commits atomically under the fence
//!   (`epoch = mine AND head = what I saw`), retries a fenced batch, and drops its cache after
//!   a failed commit.
//! - **The relay and broker** publish each partition's log in order to each process's
//!   tracker (its own consumer, with its own checkpoint); the broker may deliver an event
//!   twice, late, or ahead of an earlier one.
//! - **The payment process** runs like `sagas::payment_execution`: a tracker applies the
//!   payment events with a per-partition checkpoint (skipping what it applied, holding back
//!   what is past a gap) and stores each instance with its timer; an executor wakes due
//!   instances, stores their step, then performs the actions — provider calls, and commands
//!   under `platform:payment-execution/<payment>/<step>` sent back through the writers (a
//!   transfer's credit goes to the recipient's partition and its answer is stepped in; a card
//!   payment is authorised, then captured or released, at the bank).
//! - **The autopayment process** runs like `sagas::autopayments`: a tracker applies the
//!   clients' autopayment events with its per-partition checkpoint (creation, a recorded
//!   run and a resumption schedule the instance's next run, a pause or cancellation stops
//!   it, a failed run queues the client's notice); an executor wakes due instances, stores
//!   their step, then performs the actions: it starts the run's payment from the template in
//!   the client's committed state (simulated fraud control first, which declines 3 % by
//!   payment id; the simulated processing dictionary's commission, 1 % on `internet`) with
//!   the client's own `StartPayment` under `platform:autopayments/<id>/run-<n>/start` and the
//!   run's derived payment id, steps a refusal in, reads the payment's committed state when
//!   the instance wakes, and records the run under `…/run-<n>/record`. The run's payment then
//!   goes through the payment process and the provider like any other.
//! - **The provider** is idempotent by payment id (and by request id for reversals);
//!   it declines 8 % of payments, by payment id. **The bank** authorises a card payment once
//!   per payment id (declining 10 %), and captures or releases it once.
//! - **The clock** moves by random steps; timers (provider answers, late executions, client
//!   resends, instance wake-ups) fire in time order.
//!
//! Every operation carries a schedule seed: after submitting it, the simulator takes one to
//! four steps drawn from that seed — a writer batch, deliveries, or the clock — with faults
//! drawn at their rates ([`config::Faults`]).
//!
//! # Faults
//!
//! A failed commit (nothing visible; the writer reloads), an ambiguous commit (committed but
//! reported failed), a crash after commit (callers get no answer), a writer crash between
//! batches (its queue lost) and a takeover (the old writer lives on as a zombie, is fenced
//! when it tries to commit, and may still get requests through a stale route); duplicated,
//! delayed and reordered deliveries, a failed tracker transaction (each tracker's own); an
//! executor crash between storing a step and performing it (either process's); a provider or bank that times out, takes effect late
//! (after the caller gave up), answers twice, or is down for up to 90 s. Clients resend a request that
//! got no answer, with the same key.
//!
//! # Invariants
//!
//! Checked after every step, and at the end once the run has quiesced (all operations sent,
//! then the clock advanced from timer to timer without faults until nothing is left but
//! the future runs of active autopayments): see [`check`] for the list and the money
//! equation.
//!
//! # Faults the simulator found
//!
//! - **Fixed:** the partition writer loaded a batch's cache misses into its bounded cache,
//!   which drops its least recently used half when full — also entries the batch itself
//!   needed — and the decision then read those aggregates as having no events. A batch now
//!   decides against a pinned copy (`etr_domain::partition::Cache::pin`); the regression test
//!   is `a_batch_with_more_targets_than_half_the_writer_cache_reads_committed_states`.
//! - **Fixed:** the payment process took an answer for the answer of whatever call it waited
//!   for: a card payment's repeated authorisation answer was recorded as the provider's
//!   execution, a repeated execution answer as the bank's capture. An answer now names its
//!   call (`etr_domain::payment_execution::Call`) and is stepped only in the state that
//!   waits for it; the regression test is `an_answer_of_another_call_changes_nothing`.
//! - **Fixed:** the process cancelled a payment waiting for the client's OTP at its timeout
//!   with `CancelPayment`, which also cancels a payment confirmed (and reserved) in the
//!   meantime; when the process had seen the reservation it also called the provider, who
//!   was paid while the wallet's hold was released. The expiry is now its own command
//!   (`ExpirePaymentConfirmation`), refused once the payment is confirmed; regression test
//!   `an_expiry_decided_after_the_confirmation_is_refused`.
//! - **Fixed:** the process gave up on the provider at its deadline — failed the payment and
//!   released its hold — while a call it made before could still take effect at the
//!   provider, which then held money the wallet also had back (and, for a reversal given
//!   up as a processing error, reversed a payment the wallet was never refunded for). Past
//!   the deadline the order is now voided at the provider and the provider's answer is the
//!   outcome recorded; a reversal is asked until the processing centre answers. Regression
//!   test `unanswered_calls_back_off_and_past_the_deadline_the_order_is_voided`, and the
//!   simulator's provider-books check at the end of every run.
//!
//! - **Fixed:** the autopayment process followed a run whose start never committed (the
//!   writer's commit failed or its answer was lost, or the executor crashed between storing
//!   the running step and sending the start) forever: every second it read a payment that
//!   did not exist as one still in flight, and the autopayment never ran again. A missing
//!   payment now sends the start again under the same command id
//!   (`etr_domain::autopayment::Input::PaymentMissing`); regression tests
//!   `a_run_whose_start_was_lost_is_started_again_and_recorded` and
//!   `an_autopayment_run_whose_start_never_committed_is_started_again`.
//!
//! # A failure
//!
//! The run stops at the first broken invariant. [`simulate`] then shrinks the operation list
//! ([`shrink`]) and the result prints the seed and the shortest history found, one operation
//! per line. [`run`] replays any operation list exactly.

#![warn(missing_docs)]

pub mod check;
pub mod config;
pub mod ops;
pub mod report;
pub mod shrink;
mod world;

pub use check::{Invariant, Violation};
pub use config::{Bugs, Config, Faults};
pub use ops::{Action, Op};
pub use report::{Fault, Report};
pub use shrink::Shrunk;
pub use world::Progress;

/// What [`simulate`] found: the run's report and, when an invariant broke, the shrunk
/// history.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The run's figures, with the first violation if any.
    pub report: Report,
    /// The shortest failing history found, when the run failed.
    pub shrunk: Option<Shrunk>,
}

impl Outcome {
    /// The seed and the shortest failing history, one operation per line (`None` when the
    /// run passed).
    pub fn failure(&self) -> Option<String> {
        let shrunk = self.shrunk.as_ref()?;
        Some(shrink::render(
            self.report.seed,
            shrunk.violation.invariant,
            shrunk,
            self.report.ops,
        ))
    }
}

/// Runs an explicit operation list under `cfg` (its seed is not used to generate anything
/// here); the same list and config give the same report, digest included.
pub fn run(cfg: &Config, ops: &[Op]) -> Report {
    world::run(cfg, ops, None)
}

/// Like [`run`], calling `progress` every 10,000 operations.
pub fn run_with_progress(cfg: &Config, ops: &[Op], progress: Progress<'_>) -> Report {
    world::run(cfg, ops, Some(progress))
}

/// Generates `cfg.ops` operations from `cfg.seed`, runs them, and shrinks a failure.
pub fn simulate(cfg: &Config) -> Outcome {
    let ops = ops::generate(cfg.seed, cfg.ops, cfg.clients);
    let report = run(cfg, &ops);
    let shrunk = report
        .violation
        .as_ref()
        .map(|v| shrink::shrink(cfg, &ops, v));
    Outcome { report, shrunk }
}
