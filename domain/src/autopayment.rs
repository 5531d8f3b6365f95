//! Payment templates and autopayments (e-wallet spec §3.2): a template keeps an operation's
//! details (wallet, service, amount, attributes) so the client need not enter them again; an
//! autopayment runs a template on a schedule, through the same limits and lifecycle as any
//! payment, records every run with its outcome, and pauses after `max_failures` failed runs
//! in a row (the client is notified of every failure).
//!
//! The types live here and are kept by the client aggregate ([`crate::client`]); the
//! autopayment process is the pure [`step`]: a durable timer fires at the next run, the runner
//! starts the payment (id derived from the autopayment and the run number, so a repeated
//! start is the same payment), follows it to its final status, and records the run on the
//! client (`RecordAutopaymentRun`), which moves the schedule on.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::error::Error;
use crate::ids::ClientId;
use crate::money::Money;

/// The process's name: its instances and command ids.
pub const PROCESS: &str = "autopayments";
/// At most this many templates per client.
pub const MAX_TEMPLATES: usize = 50;
/// At most this many autopayments per client.
pub const MAX_AUTOPAYMENTS: usize = 20;
/// The runs an autopayment keeps in its state (older ones stay on the log).
pub const KEPT_RUNS: usize = 20;

/// An operation's details saved by the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub wallet_id: Uuid,
    pub service_id: String,
    pub amount: Money,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl Template {
    /// Errors: [`Error::Invalid`] for an empty or over-long name (1–100 characters) or
    /// service id (1–100), or more than 50 attributes.
    pub fn validate(&self) -> Result<(), Error> {
        let len = |s: &str| s.trim().chars().count();
        if !(1..=100).contains(&len(&self.name)) {
            return Err(Error::Invalid(
                "a template's name is 1–100 characters".into(),
            ));
        }
        if !(1..=100).contains(&len(&self.service_id)) {
            return Err(Error::Invalid(
                "a template's service_id is 1–100 characters".into(),
            ));
        }
        if self.attributes.len() > 50 {
            return Err(Error::Invalid(
                "a template has at most 50 attributes".into(),
            ));
        }
        Ok(())
    }
}

/// The unit of an autopayment's period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

impl Unit {
    pub fn parse(text: &str) -> Option<Unit> {
        Some(match text {
            "second" => Unit::Second,
            "minute" => Unit::Minute,
            "hour" => Unit::Hour,
            "day" => Unit::Day,
            "week" => Unit::Week,
            "month" => Unit::Month,
            _ => return None,
        })
    }
}

/// Every `count` `unit`s from the first run; a monthly run on the 29th–31st falls on the
/// month's last day when the month is shorter (and returns to its day after).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub unit: Unit,
    pub count: u32,
    #[serde(with = "time::serde::rfc3339")]
    pub first_run_at: OffsetDateTime,
}

impl Schedule {
    /// Errors: [`Error::Invalid`] for a count of 0 or above 1,000, or runs more often than
    /// every 5 seconds.
    pub fn validate(&self) -> Result<(), Error> {
        if !(1..=1_000).contains(&self.count) {
            return Err(Error::Invalid("an autopayment's count is 1–1000".into()));
        }
        if self.unit == Unit::Second && self.count < 5 {
            return Err(Error::Invalid(
                "an autopayment runs at most every 5 seconds".into(),
            ));
        }
        Ok(())
    }

    /// The time of run number `n` (0-based), counted from the first run so that months
    /// keep their day.
    pub fn run_at(&self, n: u32) -> OffsetDateTime {
        let k = i64::from(self.count) * i64::from(n);
        let t = self.first_run_at;
        match self.unit {
            Unit::Second => t + Duration::seconds(k),
            Unit::Minute => t + Duration::minutes(k),
            Unit::Hour => t + Duration::hours(k),
            Unit::Day => t + Duration::days(k),
            Unit::Week => t + Duration::weeks(k),
            Unit::Month => add_months(t, k),
        }
    }

    /// The first run number whose time is after `now`.
    pub fn next_run_after(&self, n: u32, now: OffsetDateTime) -> u32 {
        let mut next = n.saturating_add(1);
        // Runs missed while the platform was down are not made up: the next one is the
        // first in the future.
        while self.run_at(next) <= now && next < u32::MAX {
            next += 1;
        }
        next
    }
}

fn add_months(t: OffsetDateTime, months: i64) -> OffsetDateTime {
    let total = i64::from(t.year()) * 12 + i64::from(u8::from(t.month())) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).unwrap_or(9999);
    let month = u8::try_from(total.rem_euclid(12) + 1).unwrap_or(1);
    let month = time::Month::try_from(month).unwrap_or(time::Month::January);
    let last = time::util::days_in_month(month, year);
    let day = t.day().min(last);
    match time::Date::from_calendar_date(year, month, day) {
        Ok(date) => t.replace_date(date),
        Err(_) => t,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Paused,
    Cancelled,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Paused => "paused",
            Status::Cancelled => "cancelled",
        }
    }
}

/// One run of an autopayment and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub run: u32,
    pub payment_id: Uuid,
    pub succeeded: bool,
    pub reason: Option<String>,
}

/// An autopayment as the client aggregate keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Autopayment {
    pub template_id: Uuid,
    pub schedule: Schedule,
    /// Failed runs in a row after which it pauses (1–10).
    pub max_failures: u32,
    pub status: Status,
    /// The run number due next.
    pub next_run: u32,
    pub consecutive_failures: u32,
    /// The last [`KEPT_RUNS`] runs, oldest first.
    pub runs: Vec<Run>,
    pub pause_reason: Option<String>,
    /// The run that was due when a resumption moved the schedule past it: its payment may
    /// have been started before the pause, so its record is still taken — without counting
    /// in the failures in a row since the resumption. Cleared by the next recorded run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumed_past: Option<u32>,
}

impl Autopayment {
    pub fn next_run_at(&self) -> OffsetDateTime {
        self.schedule.run_at(self.next_run)
    }

    /// The failed runs in a row once run `run` is recorded as `succeeded` or not: a success
    /// starts again from 0; the run a resumption passed over ([`Autopayment::resumed_past`])
    /// does not count — the resumption started the count again.
    pub fn failures_after(&self, run: u32, succeeded: bool) -> u32 {
        if self.resumed_past == Some(run) {
            self.consecutive_failures
        } else if succeeded {
            0
        } else {
            self.consecutive_failures + 1
        }
    }
}

/// The payment a run makes: derived from the autopayment and the run number.
pub fn run_payment_id(autopayment_id: Uuid, run: u32) -> Uuid {
    crate::ids::derived_id(autopayment_id, &format!("run-{run}"))
}

/// The code of [`Error::AutopaymentRunNotDue`]: the refusal of a run's start that is not a
/// failed run.
pub const RUN_NOT_DUE: &str = "autopayment_run_not_due";

/// The run a payment is started for ([`crate::payment::Command::Start`]): the payment is
/// refused unless, in the client's committed state, the autopayment is active and this run
/// is the one due ([`crate::Error::AutopaymentRunNotDue`]). The check is made in the same
/// decision that starts the payment, so a pause or cancellation committed first always
/// stops the run, however late the process learns of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueRun {
    pub autopayment_id: Uuid,
    pub run: u32,
}

impl DueRun {
    /// Errors: [`Error::AutopaymentRunNotDue`] when the client has no such autopayment, it
    /// is paused or cancelled, or another run is due.
    pub fn check(&self, autopayments: &BTreeMap<Uuid, Autopayment>) -> Result<(), Error> {
        let due = autopayments
            .get(&self.autopayment_id)
            .is_some_and(|a| a.status == Status::Active && a.next_run == self.run);
        if due {
            Ok(())
        } else {
            Err(Error::AutopaymentRunNotDue {
                autopayment_id: self.autopayment_id,
                run: self.run,
            })
        }
    }
}

/// The code of a run that cannot start because its template is gone.
pub const TEMPLATE_MISSING: &str = "template_missing";

/// The template run `run` pays from, as the client's committed state `client` has it.
/// Errors, as the code the process is fed ([`Input::start_refused`]): [`RUN_NOT_DUE`] unless
/// the autopayment is active and at that run — checked first, so that the run of a paused or
/// cancelled autopayment ends as not due and never as a failed run; [`TEMPLATE_MISSING`] when
/// its template is gone.
pub fn run_template<'a>(
    client: &'a crate::client::Client,
    run: &DueRun,
) -> Result<&'a Template, String> {
    run.check(&client.autopayments)
        .map_err(|_| RUN_NOT_DUE.to_owned())?;
    client
        .autopayments
        .get(&run.autopayment_id)
        .and_then(|a| client.templates.get(&a.template_id))
        .ok_or_else(|| TEMPLATE_MISSING.to_owned())
}

// ---- the process --------------------------------------------------------------------------

/// What the process knows of one autopayment: whose it is and its schedule. The template is
/// read from the client's committed state when a run starts, so a changed template applies
/// from the next run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub client_id: ClientId,
    pub autopayment_id: Uuid,
    pub schedule: Schedule,
}

/// Where one autopayment's process stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Waiting for run `run` at `at`.
    Scheduled {
        order: Order,
        run: u32,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
    /// The run's payment was started (or is being started): follow it to its final status.
    Running {
        order: Order,
        run: u32,
        #[serde(default)]
        meanwhile: Meanwhile,
    },
    /// The run's outcome is being recorded on the client (issued again until recorded).
    Recording {
        order: Order,
        run: u32,
        succeeded: bool,
        reason: Option<String>,
        #[serde(default)]
        meanwhile: Meanwhile,
    },
    /// Paused or cancelled (or waiting for the event that says why a run was not due): no
    /// timer.
    Idle { order: Order },
}

/// A pause, cancellation or resumption the process learned of while a run was in flight.
/// The run is finished and recorded first — its payment was started while the autopayment
/// was active, so it is one of its runs whatever came after — and this decides what follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Meanwhile {
    #[default]
    Nothing,
    /// Paused or cancelled: idle after the run.
    Stopped,
    /// Resumed with run `run` at `at` next (the run's record, when it commits, says the
    /// same or later).
    Resumed {
        run: u32,
        #[serde(with = "time::serde::rfc3339")]
        at: OffsetDateTime,
    },
}

impl State {
    /// The run in flight (started, or being recorded).
    pub fn in_flight(&self) -> Option<u32> {
        match self {
            State::Running { run, .. } | State::Recording { run, .. } => Some(*run),
            State::Scheduled { .. } | State::Idle { .. } => None,
        }
    }

    pub fn order(&self) -> &Order {
        match self {
            State::Scheduled { order, .. }
            | State::Running { order, .. }
            | State::Recording { order, .. }
            | State::Idle { order } => order,
        }
    }

    fn with_meanwhile(mut self, event: Meanwhile) -> State {
        if let State::Running { meanwhile, .. } | State::Recording { meanwhile, .. } = &mut self {
            *meanwhile = event;
        }
        self
    }
}

/// What happens to the process. The runner's answers name the run they are about and are
/// stepped only while that run is in flight: an answer that arrives late, after the process
/// has moved on to another run, changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The autopayment was created or resumed: run `run` is due at `at`.
    Scheduled {
        order: Order,
        run: u32,
        at: OffsetDateTime,
    },
    /// Run `run` was recorded on the client; run `next_run` is due at `at`.
    RunRecorded {
        order: Order,
        run: u32,
        next_run: u32,
        at: OffsetDateTime,
    },
    /// The autopayment was paused or cancelled.
    Stopped,
    Due {
        now: OffsetDateTime,
    },
    /// The start of run `run`'s payment was refused by the command side (limits, funds…).
    StartRefused {
        run: u32,
        now: OffsetDateTime,
        code: String,
    },
    /// The start of run `run` was refused because, as committed, the autopayment is paused
    /// or cancelled or another run is due ([`Error::AutopaymentRunNotDue`]): the event that
    /// says so is on its way to the process, which waits for it without recording a run.
    RunNotDue {
        run: u32,
    },
    /// Run `run`'s payment is final (`succeeded`, or the reason it failed / was cancelled).
    PaymentFinal {
        run: u32,
        now: OffsetDateTime,
        succeeded: bool,
        reason: Option<String>,
    },
    /// Run `run`'s payment is still in flight.
    PaymentPending {
        run: u32,
        now: OffsetDateTime,
    },
    /// The run's payment does not exist: its start was not committed (the command side gave
    /// no answer — a failed commit, a writer lost — or the runner stopped between storing
    /// the step and sending it). The start is sent again under the same command id, which
    /// the command side decides once.
    PaymentMissing {
        run: u32,
        now: OffsetDateTime,
    },
    /// The record of run `run` was refused (the client has it already, or no such
    /// autopayment): the event that says what follows is on its way, or was seen meanwhile.
    RecordRefused {
        run: u32,
    },
}

impl Input {
    /// The autopayment a client event is about, if it is one the process follows.
    pub fn autopayment_of(event: &crate::client::Event) -> Option<Uuid> {
        use crate::client::Event as C;
        match event {
            C::AutopaymentCreated { autopayment_id, .. }
            | C::AutopaymentRunRecorded { autopayment_id, .. }
            | C::AutopaymentResumed { autopayment_id, .. }
            | C::AutopaymentPaused { autopayment_id, .. }
            | C::AutopaymentCancelled { autopayment_id } => Some(*autopayment_id),
            _ => None,
        }
    }

    /// The input of client `client_id`'s event to the process of its autopayment, whose
    /// order is `known` when the process has an instance (`None` for an event it does not
    /// follow, or about an autopayment it has never seen created).
    pub fn of_event(
        event: &crate::client::Event,
        client_id: ClientId,
        known: Option<&Order>,
    ) -> Option<Input> {
        use crate::client::Event as C;
        let autopayment_id = Input::autopayment_of(event)?;
        let order = match (event, known) {
            (C::AutopaymentCreated { schedule, .. }, _) => Order {
                client_id,
                autopayment_id,
                schedule: *schedule,
            },
            (_, Some(order)) => order.clone(),
            (_, None) => return None,
        };
        Some(match event {
            C::AutopaymentCreated { .. } => Input::Scheduled {
                run: 0,
                at: order.schedule.run_at(0),
                order,
            },
            C::AutopaymentResumed { next_run, .. } => Input::Scheduled {
                run: *next_run,
                at: order.schedule.run_at(*next_run),
                order,
            },
            C::AutopaymentRunRecorded { run, next_run, .. } => Input::RunRecorded {
                run: *run,
                next_run: *next_run,
                at: order.schedule.run_at(*next_run),
                order,
            },
            _ => Input::Stopped,
        })
    }

    /// The input for the refusal of run `run`'s start with `code`: [`Input::RunNotDue`] for
    /// [`RUN_NOT_DUE`] (nothing was paid, nothing to record), else [`Input::StartRefused`]
    /// (a failed run).
    pub fn start_refused(run: u32, now: OffsetDateTime, code: String) -> Input {
        if code == RUN_NOT_DUE {
            Input::RunNotDue { run }
        } else {
            Input::StartRefused { run, now, code }
        }
    }

    /// The input for what the runner read of run `run`'s payment: [`Input::PaymentFinal`],
    /// [`Input::PaymentPending`], or [`Input::PaymentMissing`] when there is none.
    pub fn of_payment(
        run: u32,
        now: OffsetDateTime,
        payment: Option<&crate::payment::Payment>,
    ) -> Input {
        match payment {
            Some(p) if p.status.is_final() => Input::PaymentFinal {
                run,
                now,
                succeeded: p.status == crate::payment::Status::Succeeded,
                reason: p.failure_reason.clone(),
            },
            Some(_) => Input::PaymentPending { run, now },
            None => Input::PaymentMissing { run, now },
        }
    }
}

/// What the runner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Start the run's payment from the autopayment's template (as the client's committed
    /// state has it) under the step id `step` (`run-<n>/start`), for [`DueRun`] `run`; then
    /// feed `RunNotDue` when refused as not due, `StartRefused` when refused otherwise (or
    /// the template is gone); an accepted start is followed by `CheckPayment`.
    StartPayment {
        step: String,
        payment_id: Uuid,
        run: DueRun,
        order: Order,
    },
    /// Read run `run`'s payment's committed state and feed [`Input::of_payment`] of it.
    CheckPayment { run: u32, payment_id: Uuid },
    /// Record the run on the client under the step id `step` (`run-<n>/record`); feed
    /// `RecordRefused` when the client refuses it.
    Record {
        step: String,
        order: Order,
        run: u32,
        payment_id: Uuid,
        succeeded: bool,
        reason: Option<String>,
    },
    /// Feed `Due` at this time; `None` clears the timer.
    WakeAt(Option<OffsetDateTime>),
}

/// How often a running payment is looked at, and a record issued again.
pub const POLL: Duration = Duration::seconds(1);

fn record(
    order: Order,
    run: u32,
    succeeded: bool,
    reason: Option<String>,
    meanwhile: Meanwhile,
    now: OffsetDateTime,
) -> (Option<State>, Vec<Action>) {
    let action = Action::Record {
        step: format!("run-{run}/record"),
        payment_id: run_payment_id(order.autopayment_id, run),
        order: order.clone(),
        run,
        succeeded,
        reason: reason.clone(),
    };
    (
        Some(State::Recording {
            order,
            run,
            succeeded,
            reason,
            meanwhile,
        }),
        vec![Action::WakeAt(Some(now + POLL * 5)), action],
    )
}

/// What follows a run that is over: the next run the client recorded (`recorded`), else
/// what was learned meanwhile; with neither, idle until the client's event arrives.
fn after_run(
    order: Order,
    meanwhile: Meanwhile,
    recorded: Option<(u32, OffsetDateTime)>,
) -> (Option<State>, Vec<Action>) {
    let next = match (meanwhile, recorded) {
        (Meanwhile::Stopped, _) => None,
        (_, Some(next)) => Some(next),
        (Meanwhile::Resumed { run, at }, None) => Some((run, at)),
        (Meanwhile::Nothing, None) => None,
    };
    match next {
        Some((run, at)) => (
            Some(State::Scheduled { order, run, at }),
            vec![Action::WakeAt(Some(at))],
        ),
        None => (Some(State::Idle { order }), vec![Action::WakeAt(None)]),
    }
}

/// One step of the autopayment process. `None`: an autopayment the process has not seen.
pub fn step(state: Option<State>, input: Input) -> (Option<State>, Vec<Action>) {
    match (state, input) {
        // A run in flight is finished and recorded first; a resumption or a stop learned
        // meanwhile applies after it.
        (
            Some(s @ (State::Running { .. } | State::Recording { .. })),
            Input::Scheduled { run, at, .. },
        ) => (
            Some(s.with_meanwhile(Meanwhile::Resumed { run, at })),
            vec![],
        ),
        (Some(s @ (State::Running { .. } | State::Recording { .. })), Input::Stopped) => {
            (Some(s.with_meanwhile(Meanwhile::Stopped)), vec![])
        }
        (
            Some(
                State::Running {
                    order,
                    run: current,
                    meanwhile,
                }
                | State::Recording {
                    order,
                    run: current,
                    meanwhile,
                    ..
                },
            ),
            Input::RunRecorded {
                run, next_run, at, ..
            },
        ) if run >= current => after_run(order, meanwhile, Some((next_run, at))),
        // The record of an earlier run, delivered late: the run in flight goes on.
        (
            Some(s @ (State::Running { .. } | State::Recording { .. })),
            Input::RunRecorded { .. },
        ) => (Some(s), vec![]),
        (_, Input::Scheduled { order, run, at })
        | (
            _,
            Input::RunRecorded {
                order,
                next_run: run,
                at,
                ..
            },
        ) => (
            Some(State::Scheduled { order, run, at }),
            vec![Action::WakeAt(Some(at))],
        ),
        (Some(State::Scheduled { order, .. } | State::Idle { order }), Input::Stopped) => {
            (Some(State::Idle { order }), vec![Action::WakeAt(None)])
        }
        (Some(State::Scheduled { order, run, at }), Input::Due { now }) => {
            if now < at {
                return (
                    Some(State::Scheduled { order, run, at }),
                    vec![Action::WakeAt(Some(at))],
                );
            }
            let start = start_payment(&order, run);
            (
                Some(State::Running {
                    order,
                    run,
                    meanwhile: Meanwhile::Nothing,
                }),
                vec![Action::WakeAt(Some(now + POLL)), start],
            )
        }
        // The start was never committed: send it again (same step, same command id).
        (
            Some(State::Running {
                order,
                run,
                meanwhile,
            }),
            Input::PaymentMissing { run: answered, now },
        ) if answered == run => {
            let start = start_payment(&order, run);
            (
                Some(State::Running {
                    order,
                    run,
                    meanwhile,
                }),
                vec![Action::WakeAt(Some(now + POLL)), start],
            )
        }
        (
            Some(State::Running {
                order,
                run,
                meanwhile,
            }),
            Input::Due { now },
        ) => {
            let check = Action::CheckPayment {
                run,
                payment_id: run_payment_id(order.autopayment_id, run),
            };
            (
                Some(State::Running {
                    order,
                    run,
                    meanwhile,
                }),
                vec![Action::WakeAt(Some(now + POLL)), check],
            )
        }
        (
            Some(State::Running {
                order,
                run,
                meanwhile,
            }),
            Input::StartRefused {
                run: answered,
                now,
                code,
            },
        ) if answered == run => record(order, run, false, Some(code), meanwhile, now),
        // Not due as committed: a pause, a cancellation or a recorded run the process has
        // not seen yet. Nothing was paid, so nothing is recorded; what follows is what was
        // learned meanwhile, or the event on its way.
        (
            Some(State::Running {
                order,
                run,
                meanwhile,
            }),
            Input::RunNotDue { run: refused },
        ) if refused == run => after_run(order, meanwhile, None),
        (
            Some(State::Running {
                order,
                run,
                meanwhile,
            }),
            Input::PaymentFinal {
                run: answered,
                now,
                succeeded,
                reason,
            },
        ) if answered == run => record(order, run, succeeded, reason, meanwhile, now),
        (
            Some(State::Running {
                order,
                run,
                meanwhile,
            }),
            Input::PaymentPending { run: answered, now },
        ) if answered == run => (
            Some(State::Running {
                order,
                run,
                meanwhile,
            }),
            vec![Action::WakeAt(Some(now + POLL))],
        ),
        (
            Some(State::Recording {
                order,
                run,
                succeeded,
                reason,
                meanwhile,
            }),
            Input::Due { now },
        ) => record(order, run, succeeded, reason, meanwhile, now),
        (
            Some(State::Recording {
                order,
                run,
                meanwhile,
                ..
            }),
            Input::RecordRefused { run: refused },
        ) if refused == run => after_run(order, meanwhile, None),
        (state, _) => (state, vec![]),
    }
}

/// The start of run `run`'s payment, under the step id `run-<n>/start`.
fn start_payment(order: &Order, run: u32) -> Action {
    Action::StartPayment {
        step: format!("run-{run}/start"),
        payment_id: run_payment_id(order.autopayment_id, run),
        run: DueRun {
            autopayment_id: order.autopayment_id,
            run,
        },
        order: order.clone(),
    }
}
