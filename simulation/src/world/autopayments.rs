//! The autopayment process in the simulated world, as `sagas::autopayments` runs
//! [`etr_domain::autopayment::step`]: the tracker applying the clients' autopayment events
//! with its own checkpoint per partition, the instances with their durable timers, the
//! executor that stores a woken instance's step before performing its actions (starting the
//! run's payment from the template in the client's committed state, reading the payment's
//! committed state, recording the run), and the invariants of autopayments.

use std::collections::{BTreeMap, BTreeSet};

use etr_domain::autopayment::{self as auto, Input, Order};
use etr_domain::client::{self, Event as C};
use etr_domain::ids::{derived_id, platform_command_id};
use etr_domain::payment::{self, FraudVerdict};
use etr_domain::{Actor, AggregateRef, Command, Envelope, Event, Money, State};
use rust_decimal::Decimal;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use super::{Committed, Reply, Request, World};
use crate::check::Invariant;
use crate::report::Fault;

/// The longest a run may be in flight (started or being recorded) after it fell due: its
/// payment is final within minutes (the OTP wait is 5, the provider's deadline 1, an
/// outage 1.5), and a record is sent again every 5 seconds until it commits.
const RUN_IN_FLIGHT: Duration = Duration::minutes(15);

/// One instance of the autopayment process, as `process_instances` keeps it.
#[derive(Debug, Clone)]
pub(super) struct Instance {
    state: auto::State,
    due: Option<OffsetDateTime>,
    correlation: String,
}

/// What the autopayment invariants remember of the log and the process.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// The last run recorded, per autopayment.
    last_recorded: BTreeMap<Uuid, u32>,
    /// Runs recorded: (autopayment, run).
    recorded: BTreeSet<(Uuid, u32)>,
    /// Failed runs in a row per autopayment as the log tells them (a success or a
    /// resumption starts again from 0).
    failures: BTreeMap<Uuid, u32>,
    /// The next run each autopayment's last resumption set: a run below it recorded after
    /// the resumption was started before it, and is not counted in the failures since.
    resumed_to: BTreeMap<Uuid, u32>,
    /// The payment each run started: (autopayment, run) → payment id.
    runs: BTreeMap<(Uuid, u32), Uuid>,
    /// Runs in flight when the tracker applied a pause or cancellation (recorded after).
    in_flight_at_stop: BTreeSet<(Uuid, u32)>,
    /// Failed runs whose notice the tracker queued.
    notices: BTreeSet<(Uuid, u32)>,
}

/// The id of client `client`'s template number `n`.
pub(super) fn template_id(client: Uuid, n: u32) -> Uuid {
    derived_id(client, &format!("template-{n}"))
}

/// The id of client `client`'s autopayment number `n`.
pub(super) fn autopayment_id(client: Uuid, n: u32) -> Uuid {
    derived_id(client, &format!("autopayment-{n}"))
}

/// The simulated processing dictionary's commission on a wallet payment of `service`:
/// 1 % (to the kopeck) on `internet`, nothing on the rest.
fn processing_commission(service: &str, amount: Money) -> Option<Money> {
    if service != "internet" {
        return None;
    }
    let commission = (amount.amount * Decimal::new(1, 2)).round_dp(2);
    (!commission.is_zero()).then(|| Money::new(commission, amount.currency))
}

/// The simulated fraud control: declines 3 % of the runs' payments, by payment id.
fn fraud_control(payment_id: Uuid) -> FraudVerdict {
    if derived_id(payment_id, "fraud").as_bytes()[0] % 100 < 3 {
        FraudVerdict::Declined {
            reason: "simulated".into(),
        }
    } else {
        FraudVerdict::Approved
    }
}

/// The timer the runner stores from a step's actions: the last `WakeAt` (`None` keeps it).
fn wake(actions: &[auto::Action]) -> Option<Option<OffsetDateTime>> {
    actions.iter().rev().find_map(|a| match a {
        auto::Action::WakeAt(t) => Some(*t),
        _ => None,
    })
}

/// The autopayment and run of a start command id (`platform:autopayments/<id>/run-<n>/start`).
fn started_run(command_id: &str) -> Option<(Uuid, u32)> {
    let rest = command_id.strip_prefix("platform:")?;
    let rest = rest.strip_prefix(auto::PROCESS)?.strip_prefix('/')?;
    let (id, step) = rest.split_once('/')?;
    let run = step.strip_prefix("run-")?.strip_suffix("/start")?;
    Some((Uuid::parse_str(id).ok()?, run.parse().ok()?))
}

/// The run number of a step id (`run-<n>/...`).
fn run_of_step(step: &str) -> Option<u32> {
    step.strip_prefix("run-")?.split('/').next()?.parse().ok()
}

impl World<'_> {
    // ---- the tracker --------------------------------------------------------------------

    /// The autopayment tracker's step of one event (`sagas::autopayments::Tracker::apply`):
    /// creation, a recorded run and a resumption schedule the next run; a pause or a
    /// cancellation stops the instance; a failed run queues the client's notice.
    pub(super) fn apply_autopayment(&mut self, committed: &Committed) {
        let Event::Client(e) = &committed.event else {
            return;
        };
        let envelope = &committed.envelope;
        let Some(id) = Input::autopayment_of(e) else {
            return;
        };
        let known = self.autos.get(&id).cloned();
        let order = known.as_ref().map(|i| i.state.order());
        let Some(input) = Input::of_event(e, envelope.client_id, order) else {
            return;
        };
        if let C::AutopaymentRunRecorded {
            run,
            succeeded: false,
            ..
        } = e
        {
            if self.autos_book.notices.insert((id, *run)) {
                self.report.autopayment_notices += 1;
            }
        }
        let in_flight = known.as_ref().and_then(|i| i.state.in_flight());
        if let (Input::Stopped, Some(run)) = (&input, in_flight) {
            if self.autos_book.in_flight_at_stop.insert((id, run)) {
                self.report.autopayment_runs_in_flight_at_stop += 1;
            }
        }
        let (state, actions) = auto::step(known.as_ref().map(|i| i.state.clone()), input);
        let Some(state) = state else { return };
        self.trace(id, || {
            format!("autopayment tracker applied {} → {state:?}", e.name())
        });
        let correlation = known
            .map(|i| i.correlation)
            .unwrap_or_else(|| envelope.correlation_id.clone());
        self.store_autopayment(id, state, correlation, wake(&actions));
    }

    /// Stores an instance's state and timer (`None` keeps the timer, `Some(None)` clears it).
    fn store_autopayment(
        &mut self,
        id: Uuid,
        state: auto::State,
        correlation: String,
        timer: Option<Option<OffsetDateTime>>,
    ) {
        let old_due = self.autos.get(&id).and_then(|i| i.due);
        let due = match timer {
            Some(t) => t,
            None => old_due,
        };
        if let Some(t) = old_due {
            self.autos_due.remove(&(t, id));
        }
        if let Some(t) = due {
            self.autos_due.insert((t, id));
        }
        self.autos.insert(
            id,
            Instance {
                state,
                due,
                correlation,
            },
        );
    }

    /// When the autopayment process next has something to do while the run quiesces: an
    /// instance due by now, or one following a run; the future runs of scheduled instances
    /// are not waited for (an active autopayment is never done).
    pub(super) fn autopayment_next_time(&self) -> Option<OffsetDateTime> {
        self.autos_due
            .iter()
            .find(|(t, id)| {
                *t <= self.now
                    || match self.autos.get(id).map(|i| &i.state) {
                        // A run scheduled for an autopayment paused (or cancelled) meanwhile
                        // is refused when it falls due, and the process goes idle: waited
                        // for.
                        Some(auto::State::Scheduled { order, .. }) => {
                            self.committed_status(order) != Some(auto::Status::Active)
                        }
                        _ => true,
                    }
            })
            .map(|(t, _)| *t)
    }

    /// The autopayment's status in the client's committed state.
    fn committed_status(&self, order: &Order) -> Option<auto::Status> {
        let p = self.partition_of(order.client_id);
        self.client_state(p, order.client_id.0)
            .and_then(|c| c.autopayments.get(&order.autopayment_id))
            .map(|a| a.status)
    }

    // ---- the executor -------------------------------------------------------------------

    /// Wakes the due instances (up to 64, earliest first), stores each one's step, then
    /// performs their actions (`sagas::autopayments::Executor::pass`).
    pub(super) fn autopayment_pass(&mut self) {
        let now = self.now;
        let woken: Vec<Uuid> = self
            .autos_due
            .iter()
            .take_while(|(t, _)| *t <= now)
            .take(64)
            .map(|(_, id)| *id)
            .collect();
        let mut work = Vec::new();
        for id in woken {
            let Some(instance) = self.autos.get(&id).cloned() else {
                continue;
            };
            if let auto::State::Running { order, run, .. }
            | auto::State::Recording { order, run, .. } = &instance.state
            {
                self.report.checks += 1;
                let fell_due = order.schedule.run_at(*run);
                if now - fell_due > RUN_IN_FLIGHT {
                    let detail = format!(
                        "run {run} of autopayment {id} still in flight {} after it fell due: {:?}",
                        now - fell_due,
                        instance.state
                    );
                    self.violated(Invariant::Autopayments, detail);
                }
            }
            let (next, actions) = auto::step(Some(instance.state), Input::Due { now });
            let Some(next) = next else { continue };
            self.trace(id, || format!("autopayment woken → {next:?} {actions:?}"));
            self.store_autopayment(id, next, instance.correlation, wake(&actions));
            work.push((id, actions));
        }
        for (id, actions) in work {
            if self.chance(self.faults.executor_crash) {
                self.trace(id, || "the autopayment executor crashed".into());
                self.report.fault(Fault::ExecutorCrash);
                continue;
            }
            self.perform_autopayment(id, actions);
        }
    }

    /// Performs a step's actions, feeding what they learn back into the instance.
    fn perform_autopayment(&mut self, id: Uuid, actions: Vec<auto::Action>) {
        for action in actions {
            let now = self.now;
            let input = match action {
                auto::Action::StartPayment {
                    step,
                    payment_id,
                    run,
                    order,
                } => self
                    .start_run(&order, payment_id, run, &step)
                    .map(|code| Input::start_refused(run.run, now, code)),
                auto::Action::CheckPayment { run, payment_id } => {
                    let pay = self
                        .partition_of_payment(payment_id)
                        .and_then(|p| self.payment(p, payment_id));
                    let bugs = &self.cfg.bugs;
                    Some(match pay {
                        None if bugs.autopayment_missing_as_pending => {
                            Input::PaymentPending { run, now }
                        }
                        Some(p) if !p.status.is_final() && bugs.autopayment_pending_as_failed => {
                            Input::PaymentFinal {
                                run,
                                now,
                                succeeded: false,
                                reason: Some(format!("still {}", p.status.label())),
                            }
                        }
                        // A payment whose start never committed is missing: it is sent
                        // again.
                        pay => Input::of_payment(run, now, pay.as_ref()),
                    })
                }
                auto::Action::Record {
                    step,
                    order,
                    run,
                    payment_id,
                    succeeded,
                    reason,
                } => {
                    let command = Command::Client {
                        client_id: order.client_id,
                        command: client::Command::RecordAutopaymentRun {
                            autopayment_id: order.autopayment_id,
                            run,
                            payment_id,
                            succeeded,
                            reason,
                        },
                    };
                    let reply = Reply::AutoRecord {
                        autopayment: id,
                        run,
                    };
                    self.issue_autopayment(id, &step, command, reply);
                    None
                }
                auto::Action::WakeAt(_) => None,
            };
            if let Some(input) = input {
                self.advance_autopayment(id, input);
            }
        }
    }

    /// Steps an instance with what the executor learnt, stores it, performs what it asks.
    pub(super) fn advance_autopayment(&mut self, id: Uuid, input: Input) {
        self.trace(id, || format!("autopayment input {input:?}"));
        let known = self.autos.get(&id).cloned();
        let (next, actions) = auto::step(known.as_ref().map(|i| i.state.clone()), input);
        if let (Some(next), Some(known)) = (next, known) {
            self.store_autopayment(id, next, known.correlation, wake(&actions));
        }
        self.perform_autopayment(id, actions);
    }

    /// The answer to a run's start (the runner awaits it): a refusal is stepped in — the
    /// process takes it only while it still runs that run; an acceptance is followed by
    /// reading the payment when the instance wakes; no answer is retried when due.
    pub(super) fn start_answered(&mut self, autopayment: Uuid, run: u32, refused: Option<String>) {
        let Some(code) = refused else { return };
        if code == auto::RUN_NOT_DUE {
            self.report.autopayment_starts_not_due += 1;
        }
        // Not due as committed (paused, cancelled, or the run recorded): what follows is the
        // event on its way; any other refusal is a failed run.
        let now = self.now;
        self.advance_autopayment(autopayment, Input::start_refused(run, now, code));
    }

    /// The runner's `start`: the run's payment from the template in the client's committed
    /// state (fraud control first, the processing dictionary's commission), the same
    /// `StartPayment` a client sends, under `platform:autopayments/<id>/run-<n>/start`.
    /// `Some(code)` when it cannot start ([`auto::run_template`]: not due as committed, or
    /// the template is gone).
    fn start_run(
        &mut self,
        order: &Order,
        payment_id: Uuid,
        due: auto::DueRun,
        step: &str,
    ) -> Option<String> {
        let p = self.partition_of(order.client_id);
        let template = match self.parts[p]
            .replayed
            .get(&AggregateRef::client(order.client_id))
        {
            Some((_, State::Client(c))) => auto::run_template(c, &due).cloned(),
            _ => Err(auto::TEMPLATE_MISSING.to_owned()),
        };
        let template = match template {
            Ok(template) => template,
            Err(code) => {
                if code == auto::RUN_NOT_DUE {
                    self.report.autopayment_runs_not_due_when_read += 1;
                }
                return Some(code);
            }
        };
        let run = run_of_step(step).unwrap_or(u32::MAX);
        self.report.autopayment_starts += 1;
        let commission = processing_commission(&template.service_id, template.amount);
        let fraud = fraud_control(payment_id);
        let mut attributes = template.attributes;
        attributes.insert("autopayment_id".into(), order.autopayment_id.to_string());
        let command = Command::Payment {
            client_id: order.client_id,
            wallet_id: template.wallet_id,
            payment_id,
            command: payment::Command::Start {
                commission,
                amount: template.amount,
                service_id: template.service_id,
                attributes,
                fraud,
                autopayment_run: Some(due),
            },
        };
        self.issue_autopayment(
            order.autopayment_id,
            step,
            command,
            Reply::AutoStart {
                autopayment: order.autopayment_id,
                run,
            },
        );
        None
    }

    /// Issues a command of the autopayment process under its deterministic platform id.
    fn issue_autopayment(&mut self, id: Uuid, step: &str, command: Command, reply: Reply) {
        let command_id = platform_command_id(auto::PROCESS, id, step);
        self.trace(id, || format!("issues {command_id}"));
        let correlation = self
            .autos
            .get(&id)
            .map(|i| i.correlation.clone())
            .unwrap_or_else(|| command_id.clone());
        self.route(Request {
            fingerprint: command_id.clone(),
            command_id,
            correlation,
            actor: Actor::system("autopayments"),
            command,
            reply,
        });
    }

    // ---- the invariants -------------------------------------------------------------------

    /// The checks of one committed event about autopayments: a run's payment is the run's
    /// (derived id), started once and before the run is recorded; a run is recorded once, in
    /// increasing order, with its payment's final outcome.
    pub(super) fn book_autopayment(&mut self, p: usize, envelope: &Envelope, event: &Event) {
        match event {
            Event::Payment(payment::Event::PaymentInitiated { payment_id, .. }) => {
                let Some((a, run)) = started_run(&envelope.command_id) else {
                    return;
                };
                self.report.checks += 1;
                self.report.autopayment_payments += 1;
                let mut problems = Vec::new();
                if *payment_id != auto::run_payment_id(a, run) {
                    problems.push(format!(
                        "run {run} of autopayment {a} started payment {payment_id}, not the run's"
                    ));
                }
                if let Some(other) = self.autos_book.runs.insert((a, run), *payment_id) {
                    problems.push(format!(
                        "run {run} of autopayment {a} started payment {payment_id} after {other}"
                    ));
                }
                if self.autos_book.recorded.contains(&(a, run)) {
                    problems.push(format!(
                        "run {run} of autopayment {a} started its payment after it was recorded"
                    ));
                }
                // The start is decided against the client's committed state: the
                // autopayment active and at this run (a pause or cancellation committed
                // first stops the run, however late the process learns of it).
                let due = self
                    .client_state(p, envelope.client_id.0)
                    .and_then(|c| c.autopayments.get(&a))
                    .map(|x| (x.status, x.next_run));
                if due != Some((auto::Status::Active, run)) {
                    problems.push(format!(
                        "run {run} of autopayment {a} started its payment while the autopayment is {due:?}"
                    ));
                }
                for detail in problems {
                    self.violated(Invariant::Autopayments, detail);
                }
            }
            Event::Client(C::AutopaymentRunRecorded {
                autopayment_id: a,
                run,
                payment_id,
                succeeded,
                reason,
                next_run,
            }) => {
                self.report.checks += 1;
                if *succeeded {
                    self.report.autopayment_runs_succeeded += 1;
                } else {
                    self.report.autopayment_runs_failed += 1;
                }
                let mut problems = Vec::new();
                if let Some(last) = self.autos_book.last_recorded.insert(*a, *run) {
                    if *run <= last {
                        problems.push(format!(
                            "run {run} of autopayment {a} recorded after run {last}"
                        ));
                    }
                }
                self.autos_book.recorded.insert((*a, *run));
                if *payment_id != auto::run_payment_id(*a, *run) {
                    problems.push(format!(
                        "run {run} of autopayment {a} recorded with payment {payment_id}, not the run's"
                    ));
                }
                if *next_run <= *run {
                    problems.push(format!(
                        "run {run} of autopayment {a} recorded with the next run {next_run}"
                    ));
                }
                match self.payment(p, *payment_id) {
                    Some(pay) if !pay.status.is_final() => problems.push(format!(
                        "run {run} of autopayment {a} recorded while its payment is {}",
                        pay.status.label()
                    )),
                    Some(pay) => {
                        let paid = pay.status == payment::Status::Succeeded;
                        if paid != *succeeded || (!paid && *reason != pay.failure_reason) {
                            problems.push(format!(
                                "run {run} of autopayment {a} recorded as succeeded: {succeeded} ({reason:?}), its payment is {} ({:?})",
                                pay.status.label(),
                                pay.failure_reason
                            ));
                        }
                    }
                    None if *succeeded => problems.push(format!(
                        "run {run} of autopayment {a} recorded as succeeded without a payment"
                    )),
                    None => {}
                }
                let before_resumption = self
                    .autos_book
                    .resumed_to
                    .get(a)
                    .is_some_and(|resumed| run < resumed);
                let failures = self.autos_book.failures.entry(*a).or_default();
                if !before_resumption {
                    *failures = if *succeeded { 0 } else { *failures + 1 };
                }
                for detail in problems {
                    self.violated(Invariant::Autopayments, detail);
                }
            }
            Event::Client(C::AutopaymentResumed {
                autopayment_id,
                next_run,
            }) => {
                self.autos_book.failures.insert(*autopayment_id, 0);
                self.autos_book
                    .resumed_to
                    .insert(*autopayment_id, *next_run);
            }
            _ => {}
        }
    }

    /// A client's committed state in partition `p`.
    fn client_state(&self, p: usize, id: Uuid) -> Option<&client::Client> {
        match self.parts[p].replayed.get(&AggregateRef {
            kind: etr_domain::AggregateKind::Client,
            id,
        }) {
            Some((_, State::Client(c))) => Some(c),
            _ => None,
        }
    }

    /// A client just committed: each autopayment's failures in a row are the log's, and an
    /// active one has fewer than its `max_failures`.
    pub(super) fn check_autopayments(&mut self, p: usize, client: Uuid) {
        let Some(c) = self.client_state(p, client) else {
            return;
        };
        if c.autopayments.is_empty() {
            return;
        }
        let mut problems = Vec::new();
        for (id, a) in &c.autopayments {
            let failures = self.autos_book.failures.get(id).copied().unwrap_or(0);
            if a.consecutive_failures != failures {
                problems.push(format!(
                    "autopayment {id} counts {} failures in a row, its runs {failures}",
                    a.consecutive_failures
                ));
            }
            if a.status == auto::Status::Active && a.consecutive_failures >= a.max_failures {
                problems.push(format!(
                    "autopayment {id} still active after {} failures in a row (pauses at {})",
                    a.consecutive_failures, a.max_failures
                ));
            }
        }
        self.report.checks += 1;
        for detail in problems {
            self.violated(Invariant::Autopayments, detail);
        }
    }

    /// The autopayment invariants of a quiesced run: every active autopayment's instance is
    /// scheduled at its next run, every paused or cancelled one idle; every run that started a
    /// payment was recorded, whatever paused or cancelled it meanwhile.
    pub(super) fn final_autopayment_checks(&self, problems: &mut Vec<String>) {
        for part in &self.parts {
            for (t, (_, state)) in &part.replayed {
                let State::Client(c) = state else { continue };
                for (id, a) in &c.autopayments {
                    let instance = self.autos.get(id);
                    let fine = match (a.status, instance) {
                        (
                            auto::Status::Active,
                            Some(Instance {
                                state: auto::State::Scheduled { run, at, .. },
                                due: Some(due),
                                ..
                            }),
                        ) => *run == a.next_run && *at == a.next_run_at() && due == at,
                        (
                            auto::Status::Paused | auto::Status::Cancelled,
                            Some(Instance {
                                state: auto::State::Idle { .. },
                                due: None,
                                ..
                            }),
                        ) => true,
                        _ => false,
                    };
                    if !fine {
                        problems.push(format!(
                            "autopayment {id} of client {} is {} at run {}, its process {:?}",
                            t.id,
                            a.status.label(),
                            a.next_run,
                            instance.map(|i| (&i.state, i.due))
                        ));
                    }
                }
            }
        }
        for ((a, run), payment_id) in &self.autos_book.runs {
            if !self.autos_book.recorded.contains(&(*a, *run)) {
                problems.push(format!(
                    "run {run} of autopayment {a} started payment {payment_id} and was never recorded"
                ));
            }
        }
    }
}
