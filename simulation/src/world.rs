//! The simulated world: partitions with their in-memory database and writer, the relay and
//! broker, the payment process (tracker and executor), the autopayment process
//! (`world::autopayments`), the provider, the clock and its timers, and the invariant
//! bookkeeping. See the crate documentation for the model.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use etr_domain::envelope::chain_hash;
use etr_domain::ids::{client_command_id, derived_id, partition_of, platform_command_id};
use etr_domain::limits::Catalogue;
use etr_domain::partition::{decide_batch, Batch, Cache, ChainHead, Decision, Submission, Verdict};
use etr_domain::payment::{self, Execution, FraudVerdict, Recipient};
use etr_domain::payment_execution::{self as pe, Call};
use etr_domain::ports::{CardPayment, PaymentOrder};
use etr_domain::{
    evolve, wallet, Actor, AggregateKind, AggregateRef, ClientId, Command, Currency, Envelope,
    Event, Money, State,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::check::{Invariant, Violation};
use crate::config::{Config, Faults};
use crate::ops::{Action, Op};
use crate::report::{Fault, Report};

mod autopayments;

/// The schema version the simulated writers put into envelopes (the platform's
/// `etr_schemas::SCHEMA_VERSION`).
const SCHEMA_VERSION: u32 = 1;

/// Where the simulated clock starts: a Monday morning in Moscow.
const START: OffsetDateTime = time::macros::datetime!(2027-01-04 07:00 UTC);

/// The most rounds quiescing may take before the run counts as stuck.
const QUIESCE_ROUNDS: u64 = 200_000;

/// The most simulated time quiescing may take before the run counts as stuck (every
/// timeout of the payment process is minutes at most).
const QUIESCE_TIME: Duration = Duration::hours(1);

/// Events of a partition kept in the log behind its slowest reader, so that a duplicate
/// delivery can re-publish them.
const LOG_SLACK: u64 = 64;

/// One committed event.
#[derive(Debug)]
struct Committed {
    envelope: Envelope,
    event: Event,
}

/// What a caller learns of its command: compact, but enough to tell two outcomes apart
/// (event ids derive from the command id; the position pins the commit).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Accepted {
        first_event: Option<Uuid>,
        events: usize,
        partition: u32,
        sequence: u64,
    },
    Rejected {
        code: String,
    },
}

/// A command record: the request's fingerprint and the first outcome.
#[derive(Debug, Clone)]
struct Record {
    fingerprint: String,
    outcome: Outcome,
}

/// Who waits for a request's answer.
#[derive(Debug, Clone)]
enum Reply {
    /// A client; on no answer it may send the same request again.
    Client { attempt: u32 },
    /// The payment process's credit of a transfer: the answer is stepped into the instance.
    Credit { instance: Uuid },
    /// The start of an autopayment's run: a refusal is stepped into the instance.
    AutoStart { autopayment: Uuid, run: u32 },
    /// The record of an autopayment's run: a refusal is stepped into the instance.
    AutoRecord { autopayment: Uuid, run: u32 },
    /// Another command of a process: the answer is only logged.
    Platform,
}

/// One command on its way to a writer.
#[derive(Debug, Clone)]
struct Request {
    command_id: String,
    fingerprint: String,
    correlation: String,
    actor: Actor,
    command: Command,
    reply: Reply,
}

/// How a request was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Outcome {
        outcome: Outcome,
        replayed: bool,
    },
    KeyReused,
    /// Nothing certain was committed (failed commit, crash, fenced, not the owner).
    NoOutcome,
}

/// The partition's database: what a commit makes visible, atomically.
#[derive(Debug, Default)]
struct Db {
    /// The committed events not yet pruned; `log[0]` has sequence `log_base`.
    log: VecDeque<Rc<Committed>>,
    log_base: u64,
    /// The partition head row: last sequence and the lease's fencing epoch.
    head: u64,
    epoch: u64,
    records: BTreeMap<String, Record>,
    snapshots: BTreeMap<AggregateRef, (u64, State)>,
    chains: BTreeMap<ClientId, ChainHead>,
}

impl Db {
    fn event(&self, sequence: u64) -> Option<Rc<Committed>> {
        let index = sequence.checked_sub(self.log_base)?;
        self.log.get(usize::try_from(index).ok()?).cloned()
    }
}

/// A partition writer: its lease as it believes it, its authoritative caches and its queue.
#[derive(Debug)]
struct Writer {
    leased: bool,
    epoch: u64,
    head: u64,
    cache: Cache,
    queue: VecDeque<Request>,
}

impl Writer {
    fn new(capacity: usize) -> Writer {
        Writer {
            leased: false,
            epoch: 0,
            head: 0,
            cache: Cache::new(capacity),
            queue: VecDeque::new(),
        }
    }

    fn drop_lease(&mut self) {
        self.leased = false;
        self.cache.clear();
    }
}

/// An event on its way from the relay to a process's tracker.
#[derive(Debug, Clone)]
struct Message {
    event: Rc<Committed>,
    not_before: OffsetDateTime,
}

/// The consumer of the payment process's tracker.
const PAYMENTS: usize = 0;
/// The consumer of the autopayment process's tracker.
const AUTOPAYMENTS: usize = 1;

/// One process tracker's consumption of a partition (its own consumer group): the messages
/// the broker has for it, its checkpoint (the last sequence applied) and the events it
/// holds back past a gap.
#[derive(Debug, Default)]
struct Consumer {
    inflight: VecDeque<Message>,
    checkpoint: u64,
    held: BTreeMap<u64, Rc<Committed>>,
}

/// One log partition and everything that reads or writes it.
#[derive(Debug)]
struct Partition {
    db: Db,
    writer: Writer,
    /// A paused writer whose lease was taken over; it still believes it holds it.
    zombie: Option<Writer>,
    /// `evolve` folded over the committed events: what every decision must see.
    replayed: BTreeMap<AggregateRef, (u64, State)>,
    /// Each client's chain head as verified event by event.
    verified: BTreeMap<ClientId, ChainHead>,
    /// The relay's watermark: the last sequence handed to the broker.
    published: u64,
    /// The trackers reading the partition: [`PAYMENTS`] and [`AUTOPAYMENTS`].
    consumers: [Consumer; 2],
}

/// One instance of the payment process, as `process_instances` keeps it.
#[derive(Debug, Clone)]
struct Instance {
    state: pe::State,
    due: Option<OffsetDateTime>,
    correlation: String,
}

/// The simulated payment provider's books: idempotent by payment id (executions) and by
/// request id (reversals).
#[derive(Debug, Default)]
struct Provider {
    /// Payment id → the first answer and the amount.
    executions: BTreeMap<Uuid, (Execution, Money)>,
    /// Payment id → executions with effect (charges).
    charges: BTreeMap<Uuid, u32>,
    /// Cancellation request id → the first answer.
    reversals: BTreeMap<Uuid, Execution>,
    /// Payment id → reversals with effect.
    reversed: BTreeMap<Uuid, u32>,
    down_until: Option<OffsetDateTime>,
}

/// Where a card authorisation stands at the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    Authorised,
    Captured,
    Released,
}

/// The simulated bank's books: authorisations idempotent by payment id.
#[derive(Debug, Default)]
struct Bank {
    /// Payment id → the amount authorised and where the authorisation stands.
    authorisations: BTreeMap<Uuid, (Money, Hold)>,
    /// Payments the bank declined.
    declined: BTreeSet<Uuid>,
    /// Payments authorised late, after the caller had given up.
    late: BTreeSet<Uuid>,
}

/// How the bank answers (`etr_domain::ports::Answer` without the unavailable case, which
/// the simulator models as a time-out).
enum BankAnswer {
    Done(String),
    Refused(String),
}

/// Something due at a time.
#[derive(Debug, Clone)]
enum Timed {
    /// The answer to a call reaches the executor (`None`: the call timed out).
    Answer {
        instance: Uuid,
        outcome: Option<Execution>,
        call: Call,
    },
    /// The provider executes a call it took earlier (after the caller gave up).
    Execute { order: PaymentOrder },
    /// The provider voids an order it was asked earlier to void (after the caller gave up).
    Void { order: PaymentOrder },
    /// The provider reverses a payment it was asked earlier to reverse.
    Reverse { payment: Uuid, request: Uuid },
    /// The bank authorises a card payment it was asked earlier (after the caller gave up).
    Authorise { payment: CardPayment },
    /// The bank captures or releases an authorisation it was asked earlier.
    Settle {
        authorisation_id: String,
        capture: bool,
    },
    /// A client sends a request again.
    Resend { request: Box<Request> },
}

/// One transfer's money as the log shows it.
#[derive(Debug, Default, Clone)]
struct Transfer {
    amount: Decimal,
    debited: u32,
    credited: u32,
    refunded: u32,
}

/// The sums of the money equation, kept up to date event by event.
#[derive(Debug, Default)]
struct Ledger {
    top_ups: Decimal,
    balances: BTreeMap<Uuid, Decimal>,
    balance_sum: Decimal,
    transit: Decimal,
    transfers: BTreeMap<Uuid, Transfer>,
    paid_out: Decimal,
}

/// A hook called with the number of operations done and the report so far.
pub type Progress<'p> = &'p mut dyn FnMut(usize, &Report);

pub(crate) struct World<'c> {
    cfg: &'c Config,
    faults: Faults,
    groups: Arc<Catalogue>,
    clients: Vec<ClientId>,
    wallets: Vec<Uuid>,
    now: OffsetDateTime,
    parts: Vec<Partition>,
    instances: BTreeMap<Uuid, Instance>,
    due: BTreeSet<(OffsetDateTime, Uuid)>,
    /// The autopayment process's instances, their timers, and what its invariants remember.
    autos: BTreeMap<Uuid, autopayments::Instance>,
    autos_due: BTreeSet<(OffsetDateTime, Uuid)>,
    autos_book: autopayments::Book,
    provider: Provider,
    bank: Bank,
    timers: BTreeMap<(OffsetDateTime, u64), Timed>,
    timer_seq: u64,
    ledger: Ledger,
    report: Report,
    violation: Option<Violation>,
    digest: Sha256,
    step: u64,
    op: usize,
    rng: ChaCha8Rng,
}

/// Runs `ops` under `cfg` and returns the report (with the first violation, if any).
pub(crate) fn run(cfg: &Config, ops: &[Op], mut progress: Option<Progress<'_>>) -> Report {
    let started = std::time::Instant::now();
    let mut world = World::new(cfg);
    for (index, op) in ops.iter().enumerate() {
        world.op = index;
        world.rng = ChaCha8Rng::seed_from_u64(op.schedule);
        world.submit(op);
        let steps = world.rng.random_range(1..=3u32);
        for _ in 0..steps {
            world.step_once();
            if world.violation.is_some() {
                break;
            }
        }
        if world.violation.is_some() {
            break;
        }
        if let Some(p) = progress.as_mut() {
            if (index + 1).is_multiple_of(10_000) {
                world.report.elapsed = started.elapsed();
                p(index + 1, &world.report);
            }
        }
    }
    if world.violation.is_none() {
        world.op = ops.len();
        world.quiesce();
    }
    world.finish(ops.len(), started.elapsed())
}

fn rub(amount: Decimal) -> Money {
    Money::new(amount, Currency::Rub)
}

/// The id of a command under `command_id` mints for `label` (UUID v5 of the command id).
fn minted(command_id: &str, label: &str) -> Uuid {
    derived_id(
        Uuid::new_v5(&Uuid::NAMESPACE_OID, command_id.as_bytes()),
        label,
    )
}

/// The fingerprint of a client's request: FNV-1a (64 bits) of its body, the operation's
/// action (the platform hashes method, route, path and body with SHA-256; the simulator only
/// needs equal bodies to match and different ones not to).
fn fingerprint(action: &Action) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in format!("{action:?}").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The timer the executor stores from a step's actions: the first `WakeAt`.
fn first_wake(actions: &[pe::Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().find_map(|a| match a {
        pe::Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}

/// The timer the tracker stores from a step's actions: the last `WakeAt`.
fn last_wake(actions: &[pe::Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().rev().find_map(|a| match a {
        pe::Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}

/// Why a commit did not happen (or was not confirmed).
enum NotCommitted {
    /// The statement refused a batch with a recorded command id (SQLSTATE EF002).
    Recorded,
    /// The fencing update matched no head: a stale epoch or head (EF001).
    Fenced,
    /// The commit failed, or its answer was lost.
    Failed,
    /// The writer crashed after committing.
    Crashed,
}

impl<'c> World<'c> {
    fn new(cfg: &'c Config) -> World<'c> {
        let clients: Vec<ClientId> = (0..cfg.clients.max(2))
            .map(|i| {
                ClientId(Uuid::new_v5(
                    &Uuid::NAMESPACE_OID,
                    format!("etr-simulation/client/{i}").as_bytes(),
                ))
            })
            .collect();
        let wallets = clients.iter().map(|c| derived_id(c.0, "wallet")).collect();
        let parts = (0..cfg.partitions.max(1))
            .map(|_| Partition {
                db: Db {
                    log_base: 1,
                    ..Db::default()
                },
                writer: Writer::new(cfg.cache_capacity),
                zombie: None,
                replayed: BTreeMap::new(),
                verified: BTreeMap::new(),
                published: 0,
                consumers: [Consumer::default(), Consumer::default()],
            })
            .collect();
        World {
            cfg,
            faults: cfg.faults,
            groups: Config::catalogue(),
            clients,
            wallets,
            now: START,
            parts,
            instances: BTreeMap::new(),
            due: BTreeSet::new(),
            autos: BTreeMap::new(),
            autos_due: BTreeSet::new(),
            autos_book: autopayments::Book::default(),
            provider: Provider::default(),
            bank: Bank::default(),
            timers: BTreeMap::new(),
            timer_seq: 0,
            ledger: Ledger::default(),
            report: Report {
                seed: cfg.seed,
                clients: cfg.clients.max(2),
                partitions: cfg.partitions.max(1),
                ..Report::default()
            },
            violation: None,
            digest: Sha256::new(),
            step: 0,
            op: 0,
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
        }
    }

    fn finish(mut self, ops: usize, elapsed: std::time::Duration) -> Report {
        self.report.ops = ops;
        self.report.steps = self.step;
        self.report.simulated_secs = (self.now - START).whole_seconds();
        self.report.digest = hex::encode(self.digest.finalize());
        self.report.violation = self.violation;
        self.report.elapsed = elapsed;
        self.report
    }

    /// Records the first violation (the run stops there).
    fn violated(&mut self, invariant: Invariant, detail: String) {
        if self.violation.is_none() {
            self.violation = Some(Violation {
                invariant,
                op: self.op,
                step: self.step,
                detail,
            });
        }
    }

    /// Prints a line about `id` when it is the traced id.
    fn trace(&self, id: Uuid, what: impl FnOnce() -> String) {
        if self.cfg.trace == Some(id) {
            eprintln!(
                "[trace {} +{:.3}s step {} op {}] {}",
                id,
                (self.now - START).as_seconds_f64(),
                self.step,
                self.op,
                what()
            );
        }
    }

    fn chance(&mut self, per_mille: u32) -> bool {
        per_mille > 0 && self.rng.random_range(0..1000u32) < per_mille
    }

    fn partition_of(&self, client: ClientId) -> usize {
        partition_of(client, self.cfg.partitions.max(1)) as usize
    }

    fn schedule(&mut self, at: OffsetDateTime, timed: Timed) {
        self.timer_seq += 1;
        self.timers.insert((at, self.timer_seq), timed);
    }

    // ---- clients ----------------------------------------------------------------------

    /// Turns an operation into its request and sends it.
    fn submit(&mut self, op: &Op) {
        let c = (op.client as usize) % self.clients.len();
        let client = self.clients[c];
        let wallet_id = self.wallets[c];
        let command_id = client_command_id(client, &format!("k{}", op.key));
        let payment_of =
            |key: u64| minted(&client_command_id(client, &format!("k{key}")), "payment");
        let command = match &op.action {
            Action::OpenWallet => Command::Wallet {
                client_id: client,
                wallet_id,
                command: wallet::Command::OpenWallet {
                    currency: Currency::Rub,
                },
            },
            Action::TopUp { amount } => Command::Wallet {
                client_id: client,
                wallet_id,
                command: wallet::Command::TopUp {
                    operation_id: minted(&command_id, "top-up"),
                    amount: rub(*amount),
                    source: "card".into(),
                },
            },
            Action::Pay {
                amount,
                commission,
                declined,
            } => Command::Payment {
                client_id: client,
                wallet_id,
                payment_id: payment_of(op.key),
                command: payment::Command::Start {
                    amount: rub(*amount),
                    service_id: "mobile".into(),
                    attributes: BTreeMap::new(),
                    fraud: if *declined {
                        FraudVerdict::Declined {
                            reason: "simulated".into(),
                        }
                    } else {
                        FraudVerdict::Approved
                    },
                    commission: commission.map(rub),
                    autopayment_run: None,
                },
            },
            Action::Transfer { to, amount } => {
                let to = (*to as usize) % self.clients.len();
                Command::Payment {
                    client_id: client,
                    wallet_id,
                    payment_id: payment_of(op.key),
                    command: payment::Command::StartTransfer {
                        amount: rub(*amount),
                        recipient: Recipient {
                            client_id: self.clients[to],
                            wallet_id: self.wallets[to],
                            order_id: None,
                        },
                        attributes: BTreeMap::new(),
                        fraud: FraudVerdict::Approved,
                    },
                }
            }
            Action::Register => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::RegisterClient {
                    personal: etr_domain::personal::Sealed {
                        key_version: 1,
                        nonce: "00".repeat(12),
                        ciphertext: hex::encode(client.0.as_bytes()),
                    },
                    registered_by: "self".into(),
                },
            },
            Action::BindCard => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::BindCard {
                    card: etr_domain::client::BoundCard {
                        card_id: derived_id(client.0, "card"),
                        provider: "sbc".into(),
                        token: format!("tok-{client}"),
                        masked_pan: "220220******0000".into(),
                    },
                },
            },
            Action::PayByCard { amount, commission } => Command::Payment {
                client_id: client,
                wallet_id,
                payment_id: payment_of(op.key),
                command: payment::Command::StartFromCard {
                    amount: rub(*amount),
                    service_id: "mobile".into(),
                    attributes: BTreeMap::new(),
                    fraud: FraudVerdict::Approved,
                    commission: commission.map(rub),
                    card_id: derived_id(client.0, "card"),
                },
            },
            Action::Confirm { payment_key } => Command::Payment {
                client_id: client,
                wallet_id,
                payment_id: payment_of(*payment_key),
                command: payment::Command::Confirm,
            },
            Action::RequestCancellation { payment_key } => Command::Payment {
                client_id: client,
                wallet_id,
                payment_id: payment_of(*payment_key),
                command: payment::Command::RequestCancellation {
                    request_id: minted(&command_id, "cancellation"),
                    reason: "the client changed their mind".into(),
                },
            },
            Action::SaveTemplate {
                template,
                service,
                amount,
            } => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::SaveTemplate {
                    template_id: autopayments::template_id(client.0, *template),
                    template: etr_domain::autopayment::Template {
                        name: format!("template {template}"),
                        wallet_id,
                        service_id: (*service).into(),
                        amount: rub(*amount),
                        attributes: BTreeMap::from([("account".to_owned(), format!("{c}"))]),
                    },
                },
            },
            Action::DeleteTemplate { template } => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::DeleteTemplate {
                    template_id: autopayments::template_id(client.0, *template),
                },
            },
            Action::CreateAutopayment {
                autopayment,
                template,
                unit,
                count,
                first_in,
                max_failures,
            } => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::CreateAutopayment {
                    autopayment_id: autopayments::autopayment_id(client.0, *autopayment),
                    template_id: autopayments::template_id(client.0, *template),
                    schedule: etr_domain::autopayment::Schedule {
                        unit: *unit,
                        count: *count,
                        first_run_at: self.now.replace_nanosecond(0).unwrap_or(self.now)
                            + Duration::seconds(i64::from(*first_in)),
                    },
                    max_failures: *max_failures,
                },
            },
            Action::PauseAutopayment { autopayment } => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::PauseAutopayment {
                    autopayment_id: autopayments::autopayment_id(client.0, *autopayment),
                    reason: "paused by the client".into(),
                },
            },
            Action::ResumeAutopayment { autopayment } => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::ResumeAutopayment {
                    autopayment_id: autopayments::autopayment_id(client.0, *autopayment),
                },
            },
            Action::CancelAutopayment { autopayment } => Command::Client {
                client_id: client,
                command: etr_domain::client::Command::CancelAutopayment {
                    autopayment_id: autopayments::autopayment_id(client.0, *autopayment),
                },
            },
        };
        let request = Request {
            fingerprint: fingerprint(&op.action),
            correlation: command_id.clone(),
            command_id,
            actor: Actor::client(client),
            command,
            reply: Reply::Client { attempt: 0 },
        };
        self.route(request);
    }

    /// Hands a request to its partition's writer (or, on a stale route, to the zombie).
    fn route(&mut self, request: Request) {
        match request.reply {
            Reply::Client { .. } => self.report.client_requests += 1,
            _ => self.report.platform_requests += 1,
        }
        let p = self.partition_of(request.command.client_id());
        let stale = self.parts[p].zombie.is_some() && self.chance(self.faults.stale_route);
        if stale {
            self.report.fault(Fault::StaleRoute);
            if let Some(z) = self.parts[p].zombie.as_mut() {
                z.queue.push_back(request);
                return;
            }
        }
        self.parts[p].writer.queue.push_back(request);
    }

    // ---- the schedule -----------------------------------------------------------------

    /// One step of the schedule: maybe a fault, then writer batches, deliveries and the
    /// clock, each at random; then the invariants.
    fn step_once(&mut self) {
        self.step += 1;
        let partitions = self.parts.len();
        if self.chance(self.faults.writer_crash) {
            let p = self.rng.random_range(0..partitions);
            self.crash_writer(p);
        }
        if self.chance(self.faults.takeover) {
            let p = self.rng.random_range(0..partitions);
            self.take_over(p);
        }
        if self.chance(self.faults.provider_outage) {
            let secs = self.rng.random_range(1..=90);
            self.report.fault(Fault::ProviderOutage);
            self.provider.down_until = Some(self.now + Duration::seconds(secs));
        }
        // Each writer may serve a batch, each partition's events may flow to the payment
        // process, and the clock may move: mostly fast enough to keep up with the requests,
        // at random moments.
        for p in 0..partitions {
            if self.rng.random_range(0..10) < 6 {
                let zombie_waits = self.parts[p]
                    .zombie
                    .as_ref()
                    .is_some_and(|z| !z.queue.is_empty());
                let zombie = zombie_waits && self.rng.random_range(0..4) == 0;
                self.serve(p, zombie);
            }
        }
        for p in 0..partitions {
            if self.rng.random_range(0..10) < 6 {
                let n = self.rng.random_range(1..=8);
                self.deliver(p, n);
            }
        }
        if self.rng.random_range(0..10) < 4 {
            let ms = self.rng.random_range(1..=1_500);
            self.advance_clock(self.now + Duration::milliseconds(ms));
        }
        self.check_money();
    }

    /// Drains everything without faults until nothing is left to do.
    fn quiesce(&mut self) {
        self.faults = Faults::none();
        let mut rounds = 0;
        let limit = self.now + QUIESCE_TIME;
        let mut stuck = None;
        loop {
            if self.violation.is_some() {
                return;
            }
            rounds += 1;
            if rounds > QUIESCE_ROUNDS {
                self.violated(
                    Invariant::Quiescent,
                    format!("still busy after {QUIESCE_ROUNDS} rounds of quiescing"),
                );
                return;
            }
            self.step += 1;
            for p in 0..self.parts.len() {
                while self.parts[p]
                    .zombie
                    .as_ref()
                    .is_some_and(|z| !z.queue.is_empty())
                {
                    self.serve(p, true);
                }
                while !self.parts[p].writer.queue.is_empty() && self.violation.is_none() {
                    self.serve(p, false);
                }
                let pending = self.parts[p]
                    .consumers
                    .iter()
                    .map(|c| c.inflight.len() + c.held.len())
                    .max()
                    .unwrap_or(0);
                let unpublished = self.parts[p].db.head - self.parts[p].published;
                self.deliver(p, pending + usize::try_from(unpublished).unwrap_or(0) + 1);
            }
            self.check_money();
            if self.busy_now() {
                continue;
            }
            match self.next_time() {
                Some(t) if t > limit => {
                    stuck = Some(t);
                    break;
                }
                Some(t) => self.advance_clock(t.max(self.now)),
                None => break,
            }
        }
        self.final_checks();
        if let Some(t) = stuck {
            self.violated(
                Invariant::Quiescent,
                format!(
                    "still busy {QUIESCE_TIME} after the last operation (next at +{:.3}s)",
                    (t - START).as_seconds_f64()
                ),
            );
        }
    }

    /// Whether anything can happen without the clock moving.
    fn busy_now(&self) -> bool {
        self.parts.iter().any(|part| {
            !part.writer.queue.is_empty()
                || part.zombie.as_ref().is_some_and(|z| !z.queue.is_empty())
                || part.published < part.db.head
                || part
                    .consumers
                    .iter()
                    .any(|c| c.inflight.iter().any(|m| m.not_before <= self.now))
        })
    }

    /// When the next thing happens: a timer, an instance due, a delayed message.
    fn next_time(&self) -> Option<OffsetDateTime> {
        let timer = self.timers.keys().next().map(|(t, _)| *t);
        let due = self.due.iter().next().map(|(t, _)| *t);
        let message = self
            .parts
            .iter()
            .flat_map(|p| p.consumers.iter())
            .flat_map(|c| c.inflight.iter().map(|m| m.not_before))
            .min();
        let autopayment = self.autopayment_next_time();
        [timer, due, message, autopayment]
            .into_iter()
            .flatten()
            .min()
    }

    // ---- writers ----------------------------------------------------------------------

    /// The writer of partition `p` crashes: its queue is lost, a new one takes over.
    fn crash_writer(&mut self, p: usize) {
        self.report.fault(Fault::WriterCrash);
        let old = std::mem::replace(
            &mut self.parts[p].writer,
            Writer::new(self.cfg.cache_capacity),
        );
        for request in old.queue {
            self.answer(request, Answer::NoOutcome);
        }
    }

    /// The writer of partition `p` pauses and a new one takes its lease (the epoch moves
    /// on); the paused one becomes the zombie, with its queue and cache.
    fn take_over(&mut self, p: usize) {
        self.report.fault(Fault::Takeover);
        let capacity = self.cfg.cache_capacity;
        let part = &mut self.parts[p];
        part.db.epoch += 1;
        let mut fresh = Writer::new(capacity);
        fresh.leased = true;
        fresh.epoch = part.db.epoch;
        fresh.head = part.db.head;
        let paused = std::mem::replace(&mut part.writer, fresh);
        let older = part.zombie.replace(paused);
        if let Some(older) = older {
            for request in older.queue {
                self.answer(request, Answer::NoOutcome);
            }
        }
    }

    /// The live writer (or the zombie) of partition `p` serves one batch of its queue.
    fn serve(&mut self, p: usize, zombie: bool) {
        let taken = if zombie {
            self.parts[p].zombie.take()
        } else {
            Some(std::mem::replace(
                &mut self.parts[p].writer,
                Writer::new(16),
            ))
        };
        let Some(mut writer) = taken else { return };
        if writer.queue.is_empty() {
            self.put_back(p, zombie, writer);
            return;
        }
        let most = writer.queue.len().min(self.cfg.max_batch.max(1));
        let n = if self.rng.random_range(0..10) < 7 {
            most
        } else {
            self.rng.random_range(1..=most)
        };
        let batch: Vec<Request> = writer.queue.drain(..n).collect();
        let (answers, crashed) = self.serve_batch(p, &mut writer, &batch, zombie);
        let mut lost = Vec::new();
        if crashed {
            self.report.fault(Fault::CrashAfterCommit);
            // The process died: whatever else it had queued is lost too.
            lost.extend(std::mem::take(&mut writer.queue));
            writer = Writer::new(self.cfg.cache_capacity);
        }
        if zombie && !writer.leased {
            // It cannot take the lease back while the live writer holds it: everything it
            // still has is answered "not the owner", and it is gone.
            lost.extend(std::mem::take(&mut writer.queue));
        } else {
            self.put_back(p, zombie, writer);
        }
        // Answers go out once the writer is back in place (they may route new commands).
        for request in lost {
            self.answer(request, Answer::NoOutcome);
        }
        for (request, answer) in batch.into_iter().zip(answers) {
            self.answer(request, answer);
        }
    }

    fn put_back(&mut self, p: usize, zombie: bool, writer: Writer) {
        if zombie {
            self.parts[p].zombie = Some(writer);
        } else {
            self.parts[p].writer = writer;
        }
    }

    /// The platform writer's `serve`: take the lease if needed, decide and commit the batch
    /// (optimistically without looking up the command ids, then with them), retry a fenced
    /// batch a bounded number of times, drop the cache after a failed commit. Returns the
    /// answers and whether the writer crashed after committing.
    fn serve_batch(
        &mut self,
        p: usize,
        writer: &mut Writer,
        batch: &[Request],
        zombie: bool,
    ) -> (Vec<Answer>, bool) {
        const ATTEMPTS: usize = 3;
        let none = || vec![Answer::NoOutcome; batch.len()];
        for _ in 0..ATTEMPTS {
            if !writer.leased {
                if zombie {
                    // The live writer holds the lease: not the owner.
                    return (none(), false);
                }
                let db = &mut self.parts[p].db;
                db.epoch += 1;
                writer.leased = true;
                writer.epoch = db.epoch;
                writer.head = db.head;
                writer.cache.clear();
            }
            let mut result = self.commit_batch(p, writer, batch, false);
            if matches!(result, Err(NotCommitted::Recorded)) {
                result = self.commit_batch(p, writer, batch, true);
            }
            match result {
                Ok(answers) => return (answers, false),
                Err(NotCommitted::Fenced) => {
                    self.report.fenced += 1;
                    writer.drop_lease();
                }
                Err(NotCommitted::Recorded) | Err(NotCommitted::Failed) => {
                    if !self.cfg.bugs.keep_cache_after_failed_commit {
                        writer.drop_lease();
                    }
                    return (none(), false);
                }
                Err(NotCommitted::Crashed) => return (none(), true),
            }
        }
        (none(), false)
    }

    /// The platform writer's `prefetch` + `commit_batch`: load the misses into the cache,
    /// decide with [`decide_batch`], commit (or fail to).
    fn commit_batch(
        &mut self,
        p: usize,
        writer: &mut Writer,
        batch: &[Request],
        look_up_records: bool,
    ) -> Result<Vec<Answer>, NotCommitted> {
        // Prefetch: pin what the batch reads, loading the misses from the snapshots.
        let mut pinned = writer.cache.pin(batch.iter().map(|r| &r.command));
        {
            let db = &self.parts[p].db;
            let missing: Vec<AggregateRef> = pinned.missing_states().copied().collect();
            for t in missing {
                if let Some(s) = db.snapshots.get(&t) {
                    pinned.load_state(t, s.clone());
                }
            }
            let missing: Vec<ClientId> = pinned.missing_chains().copied().collect();
            for c in missing {
                if let Some(h) = db.chains.get(&c) {
                    pinned.load_chain(c, h.clone());
                }
            }
            writer.cache.keep_loaded(&pinned);
            if look_up_records {
                for r in batch {
                    if let Some(record) = db.records.get(&r.command_id) {
                        pinned.record(r.command_id.clone(), record.fingerprint.clone());
                    }
                }
            }
        }
        // What the live writer's decision will read must be what the log says.
        if writer.leased && writer.epoch == self.parts[p].db.epoch {
            let replayed = &self.parts[p].replayed;
            let mut mismatch = None;
            let mut reads = 0;
            for r in batch {
                for t in r.command.targets() {
                    reads += 1;
                    let seen = pinned.state(&t);
                    let committed = replayed.get(&t);
                    let same = match (seen, committed) {
                        (Some(a), Some(b)) => a == b,
                        (Some((v, s)), None) => *v == 0 && *s == State::initial(t),
                        (None, Some((v, _))) => *v == 0,
                        (None, None) => true,
                    };
                    if !same && mismatch.is_none() {
                        mismatch = Some(format!(
                            "the decision read {} {} at version {:?}, the log has it at version {:?}",
                            t.kind,
                            t.id,
                            seen.map(|(v, _)| *v),
                            committed.map(|(v, _)| *v)
                        ));
                    }
                }
            }
            self.report.checks += reads;
            if let Some(detail) = mismatch {
                self.violated(Invariant::StateSeen, detail);
                return Err(NotCommitted::Failed);
            }
        }
        let submissions: Vec<Submission<'_>> = batch
            .iter()
            .map(|r| Submission {
                command_id: &r.command_id,
                request_hash: &r.fingerprint,
                correlation_id: &r.correlation,
                actor: &r.actor,
                command: &r.command,
            })
            .collect();
        let now = self.now;
        let decided = decide_batch(
            &Batch {
                partition: u32::try_from(p).unwrap_or(0),
                head: writer.head,
                schema_version: SCHEMA_VERSION,
                groups: &self.groups,
                submissions: &submissions,
            },
            &mut pinned,
            &mut || now,
        );
        let decided = match decided {
            Ok(d) => d,
            Err(e) => {
                self.violated(
                    Invariant::HashChain,
                    format!("an event did not serialise for its hash: {e}"),
                );
                return Err(NotCommitted::Failed);
            }
        };

        // The answers and the records, in the batch's order.
        let partition = u32::try_from(p).unwrap_or(0);
        let mut answers = Vec::with_capacity(batch.len());
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(batch.len());
        let mut records: Vec<(String, Record)> = Vec::new();
        for (request, decision) in batch.iter().zip(&decided.decisions) {
            let (answer, written) = match decision {
                Decision::Replay => match self.parts[p].db.records.get(&request.command_id) {
                    Some(record) => (
                        Answer::Outcome {
                            outcome: record.outcome.clone(),
                            replayed: true,
                        },
                        None,
                    ),
                    None => {
                        self.violated(
                            Invariant::RecordedOnce,
                            format!("{} replayed without a record", request.command_id),
                        );
                        (Answer::NoOutcome, None)
                    }
                },
                Decision::ReplayOf(first) => match outcomes.get(*first).cloned().flatten() {
                    Some(outcome) => (
                        Answer::Outcome {
                            outcome,
                            replayed: true,
                        },
                        None,
                    ),
                    None => {
                        self.violated(
                            Invariant::RecordedOnce,
                            format!(
                                "{} replayed from a batch entry that decided nothing",
                                request.command_id
                            ),
                        );
                        (Answer::NoOutcome, None)
                    }
                },
                Decision::KeyReused => (Answer::KeyReused, None),
                Decision::Recorded(verdict) => {
                    let outcome = match verdict {
                        Verdict::Accepted {
                            events, sequence, ..
                        } => Outcome::Accepted {
                            first_event: events.first().map(|(e, _)| e.event_id),
                            events: events.len(),
                            partition,
                            sequence: *sequence,
                        },
                        Verdict::Rejected { code, .. } => Outcome::Rejected { code: code.clone() },
                    };
                    records.push((
                        request.command_id.clone(),
                        Record {
                            fingerprint: request.fingerprint.clone(),
                            outcome: outcome.clone(),
                        },
                    ));
                    (
                        Answer::Outcome {
                            outcome: outcome.clone(),
                            replayed: false,
                        },
                        Some(outcome),
                    )
                }
            };
            answers.push(answer);
            outcomes.push(written);
        }
        if records.is_empty() {
            return Ok(answers);
        }

        // The commit: one atomic statement, fenced by the epoch and the head.
        if self.chance(self.faults.failed_commit) {
            self.report.fault(Fault::FailedCommit);
            return Err(NotCommitted::Failed);
        }
        {
            let db = &self.parts[p].db;
            if db.epoch != writer.epoch || db.head != writer.head {
                return Err(NotCommitted::Fenced);
            }
            if records.iter().any(|(id, _)| db.records.contains_key(id)) {
                return Err(NotCommitted::Recorded);
            }
        }
        self.apply_commit(p, &decided, records);
        self.report.batches += 1;
        if self.chance(self.faults.ambiguous_commit) {
            self.report.fault(Fault::AmbiguousCommit);
            return Err(NotCommitted::Failed);
        }
        writer.cache.commit(&decided);
        writer.head = decided.head;
        if self.chance(self.faults.crash_after_commit) {
            return Err(NotCommitted::Crashed);
        }
        Ok(answers)
    }

    /// Makes a decided batch visible in partition `p`'s database, checking each event as it
    /// lands (dense log, hash chain, versions, the money it moves) and each snapshot and
    /// chain head against the log.
    fn apply_commit(
        &mut self,
        p: usize,
        decided: &etr_domain::partition::Decided,
        records: Vec<(String, Record)>,
    ) {
        for decision in &decided.decisions {
            let Decision::Recorded(Verdict::Accepted { events, .. }) = decision else {
                continue;
            };
            for (envelope, event) in events {
                self.land(p, envelope, event);
            }
        }
        let part = &mut self.parts[p];
        for (id, record) in records {
            match &record.outcome {
                Outcome::Accepted { .. } => self.report.accepted += 1,
                Outcome::Rejected { code } => {
                    self.report.refused += 1;
                    *self.report.refusals.entry(code.clone()).or_default() += 1;
                }
            }
            if part.db.records.insert(id.clone(), record).is_some() {
                self.violation.get_or_insert(Violation {
                    invariant: Invariant::RecordedOnce,
                    op: self.op,
                    step: self.step,
                    detail: format!("command {id} recorded twice"),
                });
            }
        }
        if part.db.head != decided.head {
            let detail = format!(
                "partition {p}: head row {} after a batch that ends at {}",
                part.db.head, decided.head
            );
            self.violated(Invariant::DenseLog, detail);
        }
        let mut wallets = Vec::new();
        let mut payments = Vec::new();
        let mut clients = Vec::new();
        for t in decided.touched.keys() {
            let Some(state) = decided.states.get(t) else {
                self.violated(
                    Invariant::StateSeen,
                    format!("{} {} touched without a state", t.kind, t.id),
                );
                continue;
            };
            let part = &mut self.parts[p];
            part.db.snapshots.insert(*t, state.clone());
            self.report.checks += 1;
            if part.replayed.get(t) != Some(state) {
                let detail = format!(
                    "the snapshot of {} {} (version {}) is not evolve over its events (version {:?})",
                    t.kind,
                    t.id,
                    state.0,
                    part.replayed.get(t).map(|(v, _)| *v)
                );
                self.violated(Invariant::StateSeen, detail);
            }
            match t.kind {
                AggregateKind::WalletAccount => wallets.push(*t),
                AggregateKind::Payment => payments.push(*t),
                AggregateKind::Client => clients.push(t.id),
                _ => {}
            }
        }
        for (client, head) in &decided.chains {
            let part = &mut self.parts[p];
            part.db.chains.insert(*client, head.clone());
            self.report.checks += 1;
            if part.verified.get(client) != Some(head) {
                self.violated(
                    Invariant::HashChain,
                    format!("the chain head of client {client} is not its last event's"),
                );
            }
        }
        for t in wallets {
            self.check_wallet(p, t);
        }
        for t in payments {
            self.check_payment_hold(p, t);
        }
        for c in clients {
            self.check_autopayments(p, c);
        }
    }

    /// One committed event: the log, the checks, the ledger.
    fn land(&mut self, p: usize, envelope: &Envelope, event: &Event) {
        self.report.checks += 3;
        self.report.events += 1;
        let part = &mut self.parts[p];
        let mut problems = Vec::new();
        if envelope.sequence != part.db.head + 1 || envelope.partition as usize != p {
            problems.push((
                Invariant::DenseLog,
                format!(
                    "partition {p}: event {} at sequence {} (partition {}) after head {}",
                    envelope.event_type, envelope.sequence, envelope.partition, part.db.head
                ),
            ));
        }
        part.db.head = envelope.sequence;
        let client = envelope.client_id;
        let previous = part
            .verified
            .get(&client)
            .cloned()
            .unwrap_or_else(ChainHead::genesis);
        if envelope.prev_hash != previous.hash {
            problems.push((
                Invariant::HashChain,
                format!(
                    "event {} of client {client} chains to {} instead of {}",
                    envelope.sequence, envelope.prev_hash, previous.hash
                ),
            ));
        }
        match chain_hash(envelope, event) {
            Ok(hash) if hash == envelope.hash => {}
            _ => problems.push((
                Invariant::HashChain,
                format!("event {} does not hash to its `hash`", envelope.sequence),
            )),
        }
        part.verified.insert(
            client,
            ChainHead {
                hash: envelope.hash.clone(),
                events: previous.events + 1,
            },
        );
        let target = AggregateRef {
            kind: envelope.aggregate_type,
            id: envelope.aggregate_id,
        };
        let entry = part
            .replayed
            .entry(target)
            .or_insert_with(|| (0, State::initial(target)));
        if envelope.aggregate_version != entry.0 + 1 {
            problems.push((
                Invariant::DenseLog,
                format!(
                    "{} {} at version {} after {}",
                    target.kind, target.id, envelope.aggregate_version, entry.0
                ),
            ));
        }
        let state = std::mem::replace(&mut entry.1, State::initial(target));
        // A confirmation decided before the expiry stands: an expiry never cancels a payment
        // the client confirmed.
        let cancelled_after_confirmation = matches!(
            (&state, event),
            (
                State::Payment(before),
                Event::Payment(payment::Event::PaymentCancelled { reason }),
            ) if before.status != payment::Status::AwaitingConfirmation
                && reason == payment::CONFIRMATION_EXPIRED
        );
        entry.1 = evolve(state, client, event);
        entry.0 = envelope.aggregate_version;
        if cancelled_after_confirmation {
            problems.push((
                Invariant::EffectOnce,
                format!(
                    "payment {} confirmed, then cancelled as not confirmed in time",
                    target.id
                ),
            ));
        }
        self.digest.update(envelope.hash.as_bytes());
        part.db.log.push_back(Rc::new(Committed {
            envelope: envelope.clone(),
            event: event.clone(),
        }));
        for (invariant, detail) in problems {
            self.violated(invariant, detail);
        }
        if self.cfg.trace.is_some() {
            let id = match event {
                Event::Wallet(wallet::Event::TransferCredited { transfer_id, .. }) => *transfer_id,
                Event::Wallet(
                    wallet::Event::HoldCaptured { payment_id, .. }
                    | wallet::Event::HoldReleased { payment_id, .. }
                    | wallet::Event::TransferDebited { payment_id, .. }
                    | wallet::Event::TransferRefunded { payment_id, .. }
                    | wallet::Event::PaymentRefunded { payment_id, .. },
                ) => *payment_id,
                _ => envelope.aggregate_id,
            };
            self.trace(id, || {
                format!(
                    "committed p{p}#{} {} by {}",
                    envelope.sequence, envelope.event_type, envelope.command_id
                )
            });
        }
        self.book(p, envelope.aggregate_id, event);
        if matches!(
            event,
            Event::Client(_) | Event::Payment(payment::Event::PaymentInitiated { .. })
        ) {
            self.book_autopayment(p, envelope, event);
        }
    }

    /// The ledger's view of one event, with the checks of effects that must happen once.
    fn book(&mut self, p: usize, aggregate: Uuid, event: &Event) {
        use etr_domain::wallet::Event as W;
        match event {
            Event::Payment(payment::Event::CardAuthorised { .. }) => {
                self.report.checks += 1;
                if !self.bank.authorisations.contains_key(&aggregate) {
                    self.violated(
                        Invariant::EffectOnce,
                        format!("payment {aggregate} recorded authorised, the bank has no authorisation"),
                    );
                }
            }
            Event::Payment(
                e @ (payment::Event::CardAuthorisationCaptured
                | payment::Event::CardAuthorisationReleased),
            ) => {
                self.report.checks += 1;
                let capture = matches!(e, payment::Event::CardAuthorisationCaptured);
                let charged = self.payment(p, aggregate).and_then(|pay| pay.charged());
                let fine = match self.bank.authorisations.get(&aggregate) {
                    Some((amount, Hold::Captured)) => capture && Some(*amount) == charged,
                    Some((_, Hold::Released)) => !capture,
                    _ => false,
                };
                if !fine {
                    let detail = format!(
                        "payment {aggregate} recorded {} ({charged:?}), the bank has {:?}",
                        e.name(),
                        self.bank.authorisations.get(&aggregate)
                    );
                    self.violated(Invariant::EffectOnce, detail);
                }
            }
            Event::Wallet(W::WalletToppedUp { amount, .. }) => self.ledger.top_ups += amount.amount,
            Event::Wallet(W::HoldCaptured { payment_id, amount }) => {
                self.ledger.paid_out += amount.amount;
                self.report.checks += 1;
                let paid = self.payment(p, *payment_id).and_then(|pay| pay.amount);
                match self.provider.executions.get(payment_id) {
                    Some((Execution::Succeeded { .. }, charged)) if Some(*charged) == paid => {}
                    other => {
                        let detail = format!(
                            "payment {payment_id} captured ({}) but the provider's book has {other:?} for {paid:?}",
                            amount.amount
                        );
                        self.violated(Invariant::EffectOnce, detail);
                    }
                }
            }
            Event::Wallet(W::PaymentRefunded {
                payment_id,
                request_id,
                amount,
            }) => {
                self.ledger.paid_out -= amount.amount;
                self.report.refunds += 1;
                self.report.checks += 1;
                if !matches!(
                    self.provider.reversals.get(request_id),
                    Some(Execution::Succeeded { .. })
                ) {
                    self.violated(
                        Invariant::EffectOnce,
                        format!(
                            "payment {payment_id} refunded but the provider did not reverse it"
                        ),
                    );
                }
            }
            Event::Wallet(W::LoanRepaymentDebited { amount, .. }) => {
                self.ledger.paid_out += amount.amount;
            }
            Event::Wallet(W::TransferDebited {
                payment_id, amount, ..
            }) => {
                self.ledger.transit += amount.amount;
                let t = self.ledger.transfers.entry(*payment_id).or_default();
                t.amount = amount.amount;
                t.debited += 1;
                let debited = t.debited;
                self.report.checks += 1;
                if debited > 1 {
                    self.violated(
                        Invariant::EffectOnce,
                        format!("transfer {payment_id} debited {debited} times"),
                    );
                }
            }
            Event::Wallet(W::TransferCredited {
                transfer_id,
                amount,
                ..
            }) => {
                self.ledger.transit -= amount.amount;
                self.report.transfers_credited += 1;
                let t = self.ledger.transfers.entry(*transfer_id).or_default();
                t.credited += 1;
                let t = t.clone();
                self.report.checks += 1;
                if t.debited != 1 || t.credited > 1 || t.refunded > 0 || t.amount != amount.amount {
                    self.violated(
                        Invariant::EffectOnce,
                        format!(
                            "transfer {transfer_id} credited {} with {t:?}",
                            amount.amount
                        ),
                    );
                }
            }
            Event::Wallet(W::TransferRefunded {
                payment_id, amount, ..
            }) => {
                self.ledger.transit -= amount.amount;
                self.report.transfers_refunded += 1;
                let t = self.ledger.transfers.entry(*payment_id).or_default();
                t.refunded += 1;
                let t = t.clone();
                self.report.checks += 1;
                if t.debited != 1 || t.refunded > 1 || t.credited > 0 || t.amount != amount.amount {
                    self.violated(
                        Invariant::EffectOnce,
                        format!(
                            "transfer {payment_id} refunded {} with {t:?}",
                            amount.amount
                        ),
                    );
                }
            }
            Event::Payment(payment::Event::PaymentSucceeded) => self.report.payments_succeeded += 1,
            Event::Payment(payment::Event::PaymentFailed { .. }) => {
                self.report.payments_failed += 1
            }
            Event::Payment(payment::Event::PaymentCancelled { .. }) => {
                self.report.payments_cancelled += 1
            }
            _ => {}
        }
    }

    /// The partition whose log has payment `id`.
    fn partition_of_payment(&self, id: Uuid) -> Option<usize> {
        let target = AggregateRef::payment(id);
        self.parts
            .iter()
            .position(|part| part.replayed.contains_key(&target))
    }

    /// A payment's committed state in partition `p`.
    fn payment(&self, p: usize, id: Uuid) -> Option<payment::Payment> {
        match self.parts[p].replayed.get(&AggregateRef::payment(id)) {
            Some((_, State::Payment(pay))) => Some(pay.clone()),
            _ => None,
        }
    }

    /// A wallet's committed state in partition `p`.
    fn wallet(&self, p: usize, id: Uuid) -> Option<wallet::Wallet> {
        match self.parts[p].replayed.get(&AggregateRef::wallet(id)) {
            Some((_, State::Wallet(w))) => Some(w.clone()),
            _ => None,
        }
    }

    /// A wallet just committed: its balance in the ledger, never negative, available never
    /// negative, each hold for a reserved payment of its amount.
    fn check_wallet(&mut self, p: usize, t: AggregateRef) {
        let Some(w) = self.wallet(p, t.id) else {
            return;
        };
        self.report.checks += 2;
        let old = self
            .ledger
            .balances
            .insert(t.id, w.balance)
            .unwrap_or_default();
        self.ledger.balance_sum += w.balance - old;
        if w.balance < Decimal::ZERO || w.available() < Decimal::ZERO {
            self.violated(
                Invariant::Available,
                format!(
                    "wallet {}: balance {}, available {}",
                    t.id,
                    w.balance,
                    w.available()
                ),
            );
        }
        for (payment_id, held) in &w.holds {
            let pay = self.payment(p, *payment_id);
            let fine = pay.as_ref().is_some_and(|pay| {
                pay.status == payment::Status::Reserved
                    && pay.card.is_none()
                    && pay.charged() == Some(*held)
            });
            if !fine {
                let detail = format!(
                    "wallet {} holds {} for payment {payment_id} in status {:?}",
                    t.id,
                    held.amount,
                    pay.map(|p| p.status)
                );
                self.violated(Invariant::Available, detail);
            }
        }
    }

    /// A payment just committed: reserved (and not a card's) exactly when its wallet holds
    /// for it.
    fn check_payment_hold(&mut self, p: usize, t: AggregateRef) {
        let Some(pay) = self.payment(p, t.id) else {
            return;
        };
        if pay.card.is_some() || pay.status == payment::Status::New {
            return;
        }
        self.report.checks += 1;
        let held = self
            .wallet(p, pay.wallet_id)
            .is_some_and(|w| w.holds.contains_key(&t.id));
        if held != (pay.status == payment::Status::Reserved) {
            self.violated(
                Invariant::Available,
                format!(
                    "payment {} in status {:?} with its wallet holding {held}",
                    t.id, pay.status
                ),
            );
        }
    }

    /// Σ top-ups = Σ balances + Σ in transit + Σ paid out (see [`crate::check`]).
    fn check_money(&mut self) {
        self.report.checks += 1;
        let l = &self.ledger;
        if l.top_ups != l.balance_sum + l.transit + l.paid_out {
            let detail = format!(
                "top-ups {} ≠ balances {} + in transit {} + paid out {}",
                l.top_ups, l.balance_sum, l.transit, l.paid_out
            );
            self.violated(Invariant::MoneyConserved, detail);
        }
    }

    /// Hands an answer to whoever waits for it, checking it against the command record.
    fn answer(&mut self, request: Request, answer: Answer) {
        let p = self.partition_of(request.command.client_id());
        match &answer {
            Answer::Outcome { outcome, replayed } => {
                if *replayed {
                    self.report.replayed += 1;
                }
                self.report.checks += 1;
                let record = self.parts[p].db.records.get(&request.command_id);
                let exact = record
                    .is_some_and(|r| r.outcome == *outcome && r.fingerprint == request.fingerprint);
                if !exact {
                    let detail = format!(
                        "{} answered {outcome:?} (replayed: {replayed}), recorded {:?}",
                        request.command_id,
                        record.map(|r| &r.outcome)
                    );
                    self.violated(Invariant::RecordedOnce, detail);
                }
            }
            Answer::KeyReused => {
                self.report.key_reused += 1;
                self.report.checks += 1;
                let other = self.parts[p]
                    .db
                    .records
                    .get(&request.command_id)
                    .is_some_and(|r| r.fingerprint != request.fingerprint);
                if !other {
                    self.violated(
                        Invariant::RecordedOnce,
                        format!(
                            "{} refused as a reused key without another request recorded",
                            request.command_id
                        ),
                    );
                }
            }
            Answer::NoOutcome => self.report.unanswered += 1,
        }
        match request.reply {
            Reply::Client { attempt } => {
                if answer == Answer::NoOutcome && attempt < 6 && self.rng.random_range(0..10) < 8 {
                    let wait = self.rng.random_range(50..=3_000);
                    let at = self.now + Duration::milliseconds(wait);
                    self.schedule(
                        at,
                        Timed::Resend {
                            request: Box::new(Request {
                                reply: Reply::Client {
                                    attempt: attempt + 1,
                                },
                                ..request
                            }),
                        },
                    );
                }
            }
            Reply::Credit { instance } => {
                let now = self.now;
                let recipient = match &request.command {
                    Command::Wallet { wallet_id, .. } => *wallet_id,
                    _ => Uuid::nil(),
                };
                let input = match answer {
                    Answer::Outcome {
                        outcome: Outcome::Accepted { .. },
                        ..
                    } => pe::Input::Answered {
                        now,
                        call: Call::Credit,
                        outcome: Execution::Succeeded {
                            provider_reference: format!("wallet:{recipient}"),
                        },
                    },
                    Answer::Outcome {
                        outcome: Outcome::Rejected { code },
                        ..
                    } => pe::Input::Answered {
                        now,
                        call: Call::Credit,
                        outcome: Execution::Failed {
                            reason: format!("the recipient's wallet refused the credit: {code}"),
                        },
                    },
                    Answer::KeyReused | Answer::NoOutcome => {
                        if self.cfg.bugs.refund_unanswered_credit {
                            pe::Input::Answered {
                                now,
                                call: Call::Credit,
                                outcome: Execution::Failed {
                                    reason: "the credit was not taken".into(),
                                },
                            }
                        } else {
                            pe::Input::Unanswered {
                                now,
                                call: Call::Credit,
                            }
                        }
                    }
                };
                self.advance(instance, input);
            }
            Reply::AutoStart { autopayment, run } => {
                let refused = match answer {
                    Answer::Outcome {
                        outcome: Outcome::Rejected { code },
                        ..
                    } => Some(code),
                    _ => None,
                };
                self.start_answered(autopayment, run, refused);
            }
            Reply::AutoRecord { autopayment, run } => {
                if let Answer::Outcome {
                    outcome: Outcome::Rejected { .. },
                    ..
                } = answer
                {
                    self.advance_autopayment(
                        autopayment,
                        etr_domain::autopayment::Input::RecordRefused { run },
                    );
                }
            }
            Reply::Platform => {}
        }
    }

    // ---- relay, broker and the payment process's tracker ------------------------------

    /// The relay publishes what partition `p` committed, then the broker delivers up to `n`
    /// messages to each process's tracker.
    fn deliver(&mut self, p: usize, n: usize) {
        // Publish.
        while self.parts[p].published < self.parts[p].db.head {
            let seq = self.parts[p].published + 1;
            let Some(event) = self.parts[p].db.event(seq) else {
                self.violated(
                    Invariant::DenseLog,
                    format!("partition {p}: sequence {seq} missing from the log"),
                );
                return;
            };
            for c in [PAYMENTS, AUTOPAYMENTS] {
                let mut not_before = self.now;
                if self.chance(self.faults.delayed_delivery) {
                    self.report.fault(Fault::DelayedDelivery);
                    not_before += Duration::milliseconds(self.rng.random_range(100..=30_000));
                }
                self.parts[p].consumers[c].inflight.push_back(Message {
                    event: event.clone(),
                    not_before,
                });
            }
            self.parts[p].published = seq;
        }
        for c in [PAYMENTS, AUTOPAYMENTS] {
            self.deliver_to(p, c, n);
        }
        self.prune(p);
    }

    /// The broker delivers up to `n` of partition `p`'s messages to consumer `c`.
    fn deliver_to(&mut self, p: usize, c: usize, n: usize) {
        for _ in 0..n {
            let ready: Vec<usize> = self.parts[p].consumers[c]
                .inflight
                .iter()
                .enumerate()
                .filter(|(_, m)| m.not_before <= self.now)
                .map(|(i, _)| i)
                .take(3)
                .collect();
            let Some(first) = ready.first().copied() else {
                break;
            };
            let index = if ready.len() > 1 && self.chance(self.faults.reordered_delivery) {
                self.report.fault(Fault::ReorderedDelivery);
                ready[self.rng.random_range(1..ready.len())]
            } else {
                first
            };
            let Some(message) = self.parts[p].consumers[c].inflight.remove(index) else {
                break;
            };
            if self.chance(self.faults.consumer_failure) {
                self.report.fault(Fault::ConsumerFailure);
                self.parts[p].consumers[c].inflight.push_front(message);
                continue;
            }
            if self.chance(self.faults.duplicate_delivery) {
                self.report.fault(Fault::DuplicateDelivery);
                // The relay publishes it (or an earlier one still in the log) again.
                let seq = message.event.envelope.sequence;
                let back = self.rng.random_range(0..=3u64);
                let again = self.parts[p]
                    .db
                    .event(seq.saturating_sub(back).max(1))
                    .unwrap_or_else(|| message.event.clone());
                self.parts[p].consumers[c].inflight.push_back(Message {
                    event: again,
                    not_before: self.now,
                });
            }
            self.consume(p, c, message.event);
        }
    }

    /// The tracker's gap rule: skip what is applied, hold back what is past a gap.
    fn consume(&mut self, p: usize, c: usize, event: Rc<Committed>) {
        let seq = event.envelope.sequence;
        let checkpoint = self.parts[p].consumers[c].checkpoint;
        if seq <= checkpoint {
            self.report.duplicates_skipped += 1;
            return;
        }
        if seq > checkpoint + 1 {
            self.parts[p].consumers[c].held.insert(seq, event);
            return;
        }
        self.apply(p, c, &event);
        loop {
            let next = self.parts[p].consumers[c].checkpoint + 1;
            let Some(held) = self.parts[p].consumers[c].held.remove(&next) else {
                break;
            };
            self.apply(p, c, &held);
        }
        let consumer = &mut self.parts[p].consumers[c];
        let checkpoint = consumer.checkpoint;
        consumer.held.retain(|s, _| *s > checkpoint);
    }

    /// Tracker `c` applies one event with its checkpoint, atomically.
    fn apply(&mut self, p: usize, c: usize, committed: &Committed) {
        self.report.deliveries += 1;
        self.parts[p].consumers[c].checkpoint = committed.envelope.sequence;
        if c == AUTOPAYMENTS {
            self.apply_autopayment(committed);
        } else {
            self.apply_payment(committed);
        }
    }

    /// The payment-execution tracker's step of one event.
    fn apply_payment(&mut self, committed: &Committed) {
        let Event::Payment(event) = &committed.event else {
            return;
        };
        let envelope = &committed.envelope;
        let id = envelope.aggregate_id;
        let known = self.instances.get(&id).cloned();
        if known.is_none() && !matches!(event, payment::Event::PaymentInitiated { .. }) {
            return;
        }
        let (state, actions) = pe::step(
            known.as_ref().map(|i| i.state.clone()),
            pe::Input::Event {
                client_id: envelope.client_id,
                payment_id: id,
                at: envelope.occurred_at,
                event: event.clone(),
            },
            &self.cfg.policy,
        );
        let Some(state) = state else { return };
        self.trace(id, || {
            format!("tracker applied {} → {state:?} {actions:?}", event.name())
        });
        let correlation = known
            .map(|i| i.correlation)
            .unwrap_or_else(|| envelope.correlation_id.clone());
        self.store(id, state, correlation, last_wake(&actions));
    }

    /// Drops log entries every reader has passed (keeping some slack for re-publishing).
    fn prune(&mut self, p: usize) {
        let part = &mut self.parts[p];
        let slowest = part
            .consumers
            .iter()
            .map(|c| c.checkpoint)
            .min()
            .unwrap_or(0);
        let passed = part.published.min(slowest).saturating_sub(LOG_SLACK);
        while part.db.log_base <= passed && !part.db.log.is_empty() {
            part.db.log.pop_front();
            part.db.log_base += 1;
        }
    }

    // ---- the payment process's executor ------------------------------------------------

    /// Stores an instance's state and timer (`None` keeps the timer, `Some(None)` clears it).
    fn store(
        &mut self,
        id: Uuid,
        state: pe::State,
        correlation: String,
        timer: Option<Option<OffsetDateTime>>,
    ) {
        let old_due = self.instances.get(&id).and_then(|i| i.due);
        let due = match timer {
            Some(t) => t,
            None => old_due,
        };
        if let Some(t) = old_due {
            self.due.remove(&(t, id));
        }
        if let Some(t) = due {
            self.due.insert((t, id));
        }
        self.instances.insert(
            id,
            Instance {
                state,
                due,
                correlation,
            },
        );
    }

    /// Moves the clock to `to`, firing the timers due on the way, then runs an executor pass.
    fn advance_clock(&mut self, to: OffsetDateTime) {
        while let Some((&(at, seq), _)) = self.timers.iter().next() {
            if at > to {
                break;
            }
            let Some(timed) = self.timers.remove(&(at, seq)) else {
                break;
            };
            self.now = self.now.max(at);
            self.fire(timed);
        }
        self.now = self.now.max(to);
        self.executor_pass();
        self.autopayment_pass();
    }

    fn fire(&mut self, timed: Timed) {
        match timed {
            Timed::Answer {
                instance,
                outcome,
                call,
            } => {
                let now = self.now;
                let input = match outcome {
                    Some(outcome) => pe::Input::Answered { now, call, outcome },
                    None => pe::Input::Unanswered { now, call },
                };
                self.advance(instance, input);
            }
            Timed::Execute { order } => {
                self.execute_at_provider(&order);
            }
            Timed::Void { order } => {
                self.void_at_provider(&order);
            }
            Timed::Reverse { payment, request } => {
                self.reverse_at_provider(payment, request);
            }
            Timed::Authorise { payment } => {
                let first = !self.bank.authorisations.contains_key(&payment.payment_id);
                if let BankAnswer::Done(_) = self.authorise_at_bank(&payment) {
                    if first {
                        self.bank.late.insert(payment.payment_id);
                    }
                }
            }
            Timed::Settle {
                authorisation_id,
                capture,
            } => {
                self.settle_at_bank(&authorisation_id, capture);
            }
            Timed::Resend { request } => self.route(*request),
        }
    }

    /// Wakes the due instances (up to 64, earliest first), stores each one's step, then
    /// performs their actions.
    fn executor_pass(&mut self) {
        let now = self.now;
        let woken: Vec<Uuid> = self
            .due
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(64)
            .map(|(_, id)| *id)
            .collect();
        let mut work = Vec::new();
        for id in woken {
            let Some(instance) = self.instances.get(&id).cloned() else {
                continue;
            };
            let (next, actions) = pe::step(
                Some(instance.state),
                pe::Input::Due { now },
                &self.cfg.policy,
            );
            let Some(next) = next else { continue };
            self.trace(id, || format!("woken → {next:?} {actions:?}"));
            self.store(id, next, instance.correlation, first_wake(&actions));
            work.push((id, actions));
        }
        for (id, actions) in work {
            if self.chance(self.faults.executor_crash) {
                self.trace(id, || "the executor crashed before performing".into());
                self.report.fault(Fault::ExecutorCrash);
                continue;
            }
            self.perform(id, actions);
        }
    }

    fn perform(&mut self, id: Uuid, actions: Vec<pe::Action>) {
        for action in actions {
            match action {
                pe::Action::CallProvider(order) => self.call_provider(id, order),
                pe::Action::VoidAtProvider(order) => self.call_provider_void(id, order),
                pe::Action::CallProviderCancel {
                    order, request_id, ..
                } => self.call_provider_cancel(id, order, request_id),
                pe::Action::Issue { step, command } => self.issue(id, &step, command, false),
                pe::Action::Credit { step, command } => self.issue(id, &step, command, true),
                pe::Action::AuthoriseCard(payment) => self.call_bank_authorise(id, payment),
                pe::Action::SettleCard {
                    authorisation_id,
                    capture,
                } => self.call_bank_settle(id, authorisation_id, capture),
                pe::Action::WakeAt(_) => {}
            }
        }
    }

    /// Steps an instance with an answer, stores it, issues what it asks.
    fn advance(&mut self, id: Uuid, input: pe::Input) {
        self.trace(id, || format!("answer {input:?}"));
        let known = self.instances.get(&id).cloned();
        let (next, actions) = pe::step(
            known.as_ref().map(|i| i.state.clone()),
            input,
            &self.cfg.policy,
        );
        self.trace(id, || format!("answer stepped → {next:?} {actions:?}"));
        if let (Some(next), Some(known)) = (next, known) {
            self.store(id, next, known.correlation, first_wake(&actions));
        }
        for action in actions {
            if let pe::Action::Issue { step, command } = action {
                self.issue(id, &step, command, false);
            }
        }
    }

    /// Issues a command of the payment process under its deterministic platform id.
    fn issue(&mut self, id: Uuid, step: &str, command: Command, credit: bool) {
        let command_id = platform_command_id(pe::PROCESS, id, step);
        self.trace(id, || format!("issues {command_id}"));
        let correlation = self
            .instances
            .get(&id)
            .map(|i| i.correlation.clone())
            .unwrap_or_else(|| command_id.clone());
        self.route(Request {
            fingerprint: command_id.clone(),
            command_id,
            correlation,
            actor: Actor::system("payment-processing"),
            command,
            reply: if credit {
                Reply::Credit { instance: id }
            } else {
                Reply::Platform
            },
        });
    }

    // ---- the provider -----------------------------------------------------------------

    /// How long a prompt answer takes: under the attempt timeout.
    fn latency(&mut self) -> Duration {
        let timeout = self.cfg.policy.attempt_timeout.whole_milliseconds();
        let most = i64::try_from(timeout).unwrap_or(5_000).clamp(2, 2_000) - 1;
        Duration::milliseconds(self.rng.random_range(1..=most))
    }

    /// A call of the executor to the provider; its answer (or time-out) is scheduled.
    fn call_provider(&mut self, id: Uuid, order: PaymentOrder) {
        self.report.provider_calls += 1;
        self.trace(id, || "the provider is called".into());
        let late = Timed::Execute {
            order: order.clone(),
        };
        let Some(twice) = self.external_call(id, Call::Execute, late) else {
            return;
        };
        let outcome = self.execute_at_provider(&order);
        self.answer_later(id, Call::Execute, Some(outcome), twice);
    }

    /// The provider executes an order: the first time for a payment id it decides (8 % are
    /// declined, by the payment id) and charges; later it answers the first result.
    fn execute_at_provider(&mut self, order: &PaymentOrder) -> Execution {
        self.trace(order.payment_id, || "the provider executes".into());
        if let Some((outcome, _)) = self.provider.executions.get(&order.payment_id) {
            return outcome.clone();
        }
        let declined = derived_id(order.payment_id, "provider").as_bytes()[0] % 100 < 8;
        let outcome = if declined {
            Execution::Failed {
                reason: "declined by the provider".into(),
            }
        } else {
            let charges = self.provider.charges.entry(order.payment_id).or_default();
            *charges += 1;
            let charges = *charges;
            self.report.checks += 1;
            if charges > 1 {
                self.violated(
                    Invariant::EffectOnce,
                    format!("the provider charged payment {} twice", order.payment_id),
                );
            }
            Execution::Succeeded {
                provider_reference: format!("SIM-{}", order.payment_id),
            }
        };
        self.provider
            .executions
            .insert(order.payment_id, (outcome.clone(), order.amount));
        outcome
    }

    /// A call of the executor to void a payment's order at the provider.
    fn call_provider_void(&mut self, id: Uuid, order: PaymentOrder) {
        self.report.provider_calls += 1;
        self.trace(id, || "the provider is asked to void".into());
        let late = Timed::Void {
            order: order.clone(),
        };
        let Some(twice) = self.external_call(id, Call::Void, late) else {
            return;
        };
        let outcome = self.void_at_provider(&order);
        self.answer_later(id, Call::Void, Some(outcome), twice);
    }

    /// The provider voids an order: one not executed yet never will be (its answer, and
    /// every later call's, is a failure); an executed one answers its execution.
    fn void_at_provider(&mut self, order: &PaymentOrder) -> Execution {
        self.trace(order.payment_id, || "the provider voids".into());
        self.provider
            .executions
            .entry(order.payment_id)
            .or_insert_with(|| {
                (
                    Execution::Failed {
                        reason: "voided: not executed in time".into(),
                    },
                    order.amount,
                )
            })
            .0
            .clone()
    }

    /// A call to reverse a payment (a cancellation request sent to processing).
    fn call_provider_cancel(&mut self, id: Uuid, order: PaymentOrder, request: Uuid) {
        self.report.provider_calls += 1;
        self.trace(id, || "the provider is asked to reverse".into());
        let late = Timed::Reverse {
            payment: order.payment_id,
            request,
        };
        let Some(twice) = self.external_call(
            id,
            Call::Reverse {
                request_id: request,
            },
            late,
        ) else {
            return;
        };
        let outcome = self.reverse_at_provider(order.payment_id, request);
        self.answer_later(
            id,
            Call::Reverse {
                request_id: request,
            },
            Some(outcome),
            twice,
        );
    }

    /// The provider reverses a payment it charged (once per request id; a payment once).
    fn reverse_at_provider(&mut self, payment: Uuid, request: Uuid) -> Execution {
        self.trace(payment, || {
            format!("the provider reverses (request {request})")
        });
        if let Some(outcome) = self.provider.reversals.get(&request) {
            return outcome.clone();
        }
        let charged = matches!(
            self.provider.executions.get(&payment),
            Some((Execution::Succeeded { .. }, _))
        );
        let reversed = self.provider.reversed.get(&payment).copied().unwrap_or(0);
        let outcome = if charged && reversed == 0 {
            self.provider.reversed.insert(payment, 1);
            Execution::Succeeded {
                provider_reference: format!("REV-{request}"),
            }
        } else {
            Execution::Failed {
                reason: if charged {
                    "already reversed".into()
                } else {
                    "nothing to reverse".into()
                },
            }
        };
        self.provider.reversals.insert(request, outcome.clone());
        outcome
    }

    // ---- the bank -------------------------------------------------------------------

    /// Whether a call to the bank (or the provider) is answered, lost, executed late or
    /// answered twice: the time-out and late cases schedule their effects and the time-out.
    /// Returns `None` when the call is answered now (`Some(true)`: twice).
    fn external_call(&mut self, id: Uuid, call: Call, late: Timed) -> Option<bool> {
        let timeout = self.cfg.policy.attempt_timeout;
        let down = self.provider.down_until.is_some_and(|t| t > self.now);
        let roll = self.rng.random_range(0..1000u32);
        let f = self.faults;
        if down || roll < f.provider_timeout {
            if !down {
                self.report.fault(Fault::ProviderTimeout);
            }
            self.schedule(
                self.now + timeout,
                Timed::Answer {
                    instance: id,
                    outcome: None,
                    call,
                },
            );
            return None;
        }
        if roll < f.provider_timeout + f.provider_late {
            self.report.fault(Fault::ProviderLate);
            let delay = Duration::milliseconds(self.rng.random_range(1..=10_000));
            self.schedule(self.now + timeout + delay, late);
            self.schedule(
                self.now + timeout,
                Timed::Answer {
                    instance: id,
                    outcome: None,
                    call,
                },
            );
            return None;
        }
        let twice = roll < f.provider_timeout + f.provider_late + f.provider_double_answer;
        if twice {
            self.report.fault(Fault::ProviderDoubleAnswer);
        }
        Some(twice)
    }

    /// Schedules an answer (twice when asked) after a prompt latency.
    fn answer_later(&mut self, id: Uuid, call: Call, outcome: Option<Execution>, twice: bool) {
        let at = self.now + self.latency();
        self.schedule(
            at,
            Timed::Answer {
                instance: id,
                outcome: outcome.clone(),
                call,
            },
        );
        if twice {
            let again = at + self.latency();
            self.schedule(
                again,
                Timed::Answer {
                    instance: id,
                    outcome,
                    call,
                },
            );
        }
    }

    /// The executor asks the bank to authorise a card payment.
    fn call_bank_authorise(&mut self, id: Uuid, payment: CardPayment) {
        self.report.provider_calls += 1;
        self.trace(id, || "the bank is asked to authorise".into());
        let Some(twice) = self.external_call(
            id,
            Call::Authorise,
            Timed::Authorise {
                payment: payment.clone(),
            },
        ) else {
            return;
        };
        let outcome = match self.authorise_at_bank(&payment) {
            BankAnswer::Done(authorisation_id) => Execution::Succeeded {
                provider_reference: authorisation_id,
            },
            BankAnswer::Refused(reason) => Execution::Failed { reason },
        };
        self.answer_later(id, Call::Authorise, Some(outcome), twice);
    }

    /// The executor asks the bank to capture or release an authorisation; a refusal is
    /// asked again later, like no answer.
    fn call_bank_settle(&mut self, id: Uuid, authorisation_id: String, capture: bool) {
        self.report.provider_calls += 1;
        self.trace(id, || {
            format!("the bank is asked to settle (capture: {capture})")
        });
        let Some(twice) = self.external_call(
            id,
            Call::Settle,
            Timed::Settle {
                authorisation_id: authorisation_id.clone(),
                capture,
            },
        ) else {
            return;
        };
        let outcome = match self.settle_at_bank(&authorisation_id, capture) {
            BankAnswer::Done(_) => Some(Execution::Succeeded {
                provider_reference: authorisation_id,
            }),
            BankAnswer::Refused(_) => None,
        };
        self.answer_later(id, Call::Settle, outcome, twice);
    }

    /// The bank authorises a card payment once (it declines 10 %, by payment id); a repeated
    /// request answers the first result.
    fn authorise_at_bank(&mut self, payment: &CardPayment) -> BankAnswer {
        let id = payment.payment_id;
        if self.bank.declined.contains(&id) {
            return BankAnswer::Refused("do not honour".into());
        }
        if self.bank.authorisations.contains_key(&id) {
            return BankAnswer::Done(format!("AUTH-{id}"));
        }
        if derived_id(id, "bank").as_bytes()[0] % 100 < 10 {
            self.bank.declined.insert(id);
            return BankAnswer::Refused("do not honour".into());
        }
        self.trace(id, || "the bank authorises".into());
        self.bank
            .authorisations
            .insert(id, (payment.amount, Hold::Authorised));
        BankAnswer::Done(format!("AUTH-{id}"))
    }

    /// The bank captures or releases an authorisation once; asking for the other settlement
    /// of a settled authorisation is refused (and is a platform bug).
    fn settle_at_bank(&mut self, authorisation_id: &str, capture: bool) -> BankAnswer {
        let Some(id) = authorisation_id
            .strip_prefix("AUTH-")
            .and_then(|s| Uuid::parse_str(s).ok())
        else {
            self.violated(
                Invariant::EffectOnce,
                format!(
                    "the bank was asked to settle an unknown authorisation `{authorisation_id}`"
                ),
            );
            return BankAnswer::Refused("unknown authorisation".into());
        };
        let wanted = if capture {
            Hold::Captured
        } else {
            Hold::Released
        };
        let Some(entry) = self.bank.authorisations.get_mut(&id) else {
            self.violated(
                Invariant::EffectOnce,
                format!("the bank was asked to settle payment {id}, which it never authorised"),
            );
            return BankAnswer::Refused("unknown authorisation".into());
        };
        let before = entry.1;
        if before == Hold::Authorised {
            entry.1 = wanted;
        }
        self.trace(id, || format!("the bank settles {before:?} → {wanted:?}"));
        if before == Hold::Authorised || before == wanted {
            BankAnswer::Done(String::new())
        } else {
            self.violated(
                Invariant::EffectOnce,
                format!("payment {id}: the bank was asked for {wanted:?} of an authorisation already {before:?}"),
            );
            BankAnswer::Refused("already settled".into())
        }
    }

    // ---- the end ----------------------------------------------------------------------

    /// The invariants of a quiesced run (see [`crate::check`]).
    fn final_checks(&mut self) {
        let mut problems: Vec<String> = Vec::new();
        for (p, part) in self.parts.iter().enumerate() {
            for (c, consumer) in part.consumers.iter().enumerate() {
                if consumer.checkpoint != part.db.head || !consumer.held.is_empty() {
                    problems.push(format!(
                        "partition {p}: the {} tracker applied up to {} of {} ({} held back)",
                        if c == AUTOPAYMENTS {
                            "autopayment"
                        } else {
                            "payment"
                        },
                        consumer.checkpoint,
                        part.db.head,
                        consumer.held.len()
                    ));
                }
            }
            for (t, entry) in part.writer.cache.states() {
                if part.replayed.get(t).is_some_and(|r| r != entry) {
                    problems.push(format!(
                        "partition {p}: the writer caches {} {} unlike the log",
                        t.kind, t.id
                    ));
                }
            }
            for (t, (_, state)) in &part.replayed {
                if part.db.snapshots.get(t).map(|(_, s)| s) != Some(state) {
                    problems.push(format!("the snapshot of {} {} is stale", t.kind, t.id));
                }
                match state {
                    State::Wallet(w) if !w.holds.is_empty() => problems.push(format!(
                        "wallet {} still holds {:?}",
                        t.id,
                        w.holds.keys().collect::<Vec<_>>()
                    )),
                    State::Payment(pay) => {
                        if !pay.status.is_final() {
                            problems.push(format!(
                                "payment {} stranded in status {}",
                                t.id,
                                pay.status.label()
                            ));
                        }
                        if pay.cancellations.iter().any(|c| c.status.is_pending()) {
                            problems.push(format!(
                                "payment {} has a cancellation request pending",
                                t.id
                            ));
                        }
                        match self.instances.get(&t.id) {
                            Some(Instance {
                                state: pe::State::Finished,
                                due: None,
                                ..
                            }) => {}
                            other => problems.push(format!(
                                "the process of payment {} is not finished: {:?}",
                                t.id,
                                other.map(|i| (&i.state, i.due))
                            )),
                        }
                        if pay.recipient.is_none() {
                            match self.provider_agrees(t.id, pay) {
                                Ok(()) => {}
                                Err(detail) => problems.push(detail),
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if !self.ledger.transit.is_zero() {
            problems.push(format!("{} still in transit", self.ledger.transit));
        }
        self.final_autopayment_checks(&mut problems);
        for (id, (_, hold)) in &self.bank.authorisations {
            let p = self.partition_of_payment(*id);
            let pay = p.and_then(|p| self.payment(p, *id));
            let status = pay.as_ref().map(|pay| pay.status);
            match (hold, status) {
                (Hold::Captured, Some(payment::Status::Succeeded))
                | (Hold::Released, Some(payment::Status::Failed)) => {}
                // The platform gave up before the bank's late authorisation: it lapses at the
                // bank unclaimed (by design, see `payment_execution`).
                (Hold::Authorised, Some(payment::Status::Failed))
                    if pay.as_ref().is_some_and(|p| p.authorisation_id.is_none())
                        && self.bank.late.contains(id) =>
                {
                    self.report.lapsed_authorisations += 1;
                }
                (hold, status) => problems.push(format!(
                    "the bank's authorisation of payment {id} is {hold:?}, the payment {status:?}"
                )),
            }
        }
        for (id, t) in &self.ledger.transfers {
            if t.credited + t.refunded != t.debited {
                problems.push(format!("transfer {id} ended as {t:?}"));
            }
        }
        self.report.checks += 1;
        if let Some(first) = problems.first() {
            let detail = if problems.len() > 1 {
                format!("{first} (and {} more)", problems.len() - 1)
            } else {
                first.clone()
            };
            self.violated(Invariant::Quiescent, detail);
        }
    }

    /// Whether the provider's books for a (non-transfer) payment match what the platform
    /// paid out for it: the amount when it succeeded and was not refunded, nothing otherwise.
    fn provider_agrees(&self, id: Uuid, pay: &payment::Payment) -> Result<(), String> {
        let charged = matches!(
            self.provider.executions.get(&id),
            Some((Execution::Succeeded { .. }, _))
        );
        let reversed = self.provider.reversed.get(&id).copied().unwrap_or(0) > 0;
        let provider_holds = charged && !reversed;
        let platform_paid = pay.status == payment::Status::Succeeded && pay.refunded.is_none();
        if provider_holds == platform_paid {
            return Ok(());
        }
        Err(format!(
            "payment {id} is {} (refunded: {}) on the platform, but the provider charged: {charged}, reversed: {reversed}",
            pay.status.label(),
            pay.refunded.is_some()
        ))
    }
}
