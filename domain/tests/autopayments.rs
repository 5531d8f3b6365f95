//! Payment templates and autopayments (e-wallet spec §3.2): the client aggregate keeps them,
//! the pure process runs them — given/when/then tests of both, driven together on a
//! simulated clock: a run starts its payment when due, follows it to its final status,
//! records the outcome, and the autopayment pauses after `max_failures` failures in a row.

use etr_domain::autopayment::{self, Action, Input, Schedule, State, Template, Unit};
use etr_domain::command::States;
use etr_domain::{
    client, decide, evolve, wallet, Actor, AggregateRef, ClientId, Command, Context, Currency,
    Money,
};
use rust_decimal_macros::dec;
use std::collections::BTreeMap;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const CLIENT: ClientId = ClientId(Uuid::from_u128(1));
const WALLET: Uuid = Uuid::from_u128(2);
const TEMPLATE: Uuid = Uuid::from_u128(3);
const AUTO: Uuid = Uuid::from_u128(4);

struct World {
    states: States,
    now: OffsetDateTime,
}

impl World {
    fn new() -> World {
        World {
            states: BTreeMap::new(),
            now: datetime!(2026-12-01 09:00 UTC),
        }
    }

    fn run(&mut self, command: Command) -> Result<Vec<etr_domain::Event>, etr_domain::Error> {
        let context = Context::new(self.now, Actor::client(CLIENT));
        let events = decide(&self.states, &command, &context)?;
        for (target, event) in &events {
            let state = self
                .states
                .remove(target)
                .unwrap_or_else(|| etr_domain::State::initial(*target));
            self.states.insert(*target, evolve(state, CLIENT, event));
        }
        Ok(events.into_iter().map(|(_, e)| e).collect())
    }

    fn client(&mut self, command: client::Command) -> Result<Vec<&'static str>, etr_domain::Error> {
        Ok(self
            .run(Command::Client {
                client_id: CLIENT,
                command,
            })?
            .iter()
            .map(etr_domain::Event::name)
            .collect())
    }

    fn autopayment(&self) -> autopayment::Autopayment {
        wallet::client_of(&self.states, CLIENT).autopayments[&AUTO].clone()
    }
}

fn template(amount: rust_decimal::Decimal) -> Template {
    Template {
        name: "Телефон".into(),
        wallet_id: WALLET,
        service_id: "mobile".into(),
        amount: Money::new(amount, Currency::Rub),
        attributes: BTreeMap::from([("phone".to_owned(), "+79001234567".to_owned())]),
    }
}

fn every_day(from: OffsetDateTime) -> Schedule {
    Schedule {
        unit: Unit::Day,
        count: 1,
        first_run_at: from,
    }
}

/// A wallet with 700.00, a template of 300.00 and an autopayment of it every day from an
/// hour after the world's start, at most 2 failures in a row; its order and first run.
fn with_daily_autopayment() -> (World, autopayment::Order, OffsetDateTime) {
    let mut w = World::new();
    w.run(Command::Wallet {
        client_id: CLIENT,
        wallet_id: WALLET,
        command: wallet::Command::OpenWallet {
            currency: Currency::Rub,
        },
    })
    .unwrap();
    w.run(Command::Wallet {
        client_id: CLIENT,
        wallet_id: WALLET,
        command: wallet::Command::TopUp {
            operation_id: Uuid::from_u128(9),
            amount: Money::new(dec!(700.00), Currency::Rub),
            source: "card".into(),
        },
    })
    .unwrap();
    w.client(client::Command::SaveTemplate {
        template_id: TEMPLATE,
        template: template(dec!(300.00)),
    })
    .unwrap();
    let first = w.now + Duration::hours(1);
    w.client(client::Command::CreateAutopayment {
        autopayment_id: AUTO,
        template_id: TEMPLATE,
        schedule: every_day(first),
        max_failures: 2,
    })
    .unwrap();
    let order = autopayment::Order {
        client_id: CLIENT,
        autopayment_id: AUTO,
        schedule: every_day(first),
    };
    (w, order, first)
}

#[test]
fn schedules_keep_their_cadence_and_months_their_day() {
    let monthly = Schedule {
        unit: Unit::Month,
        count: 1,
        first_run_at: datetime!(2026-01-31 09:00 UTC),
    };
    assert_eq!(monthly.run_at(1), datetime!(2026-02-28 09:00 UTC));
    assert_eq!(monthly.run_at(2), datetime!(2026-03-31 09:00 UTC));
    assert_eq!(monthly.run_at(13), datetime!(2027-02-28 09:00 UTC));
    let daily = every_day(datetime!(2026-12-01 09:00 UTC));
    // Runs missed while down are not made up: the next is the first in the future.
    assert_eq!(daily.next_run_after(0, datetime!(2026-12-05 10:00 UTC)), 5);
    assert!(Schedule {
        unit: Unit::Second,
        count: 1,
        first_run_at: datetime!(2026-12-01 09:00 UTC)
    }
    .validate()
    .is_err());
}

#[test]
fn templates_and_autopayments_are_checked_and_a_used_template_is_kept() {
    let mut w = World::new();
    let mut bad = template(dec!(300.00));
    bad.name = " ".into();
    assert!(w
        .client(client::Command::SaveTemplate {
            template_id: TEMPLATE,
            template: bad
        })
        .is_err());
    let create = client::Command::CreateAutopayment {
        autopayment_id: AUTO,
        template_id: TEMPLATE,
        schedule: every_day(w.now),
        max_failures: 2,
    };
    assert!(w.client(create.clone()).is_err(), "no template yet");
    assert_eq!(
        w.client(client::Command::SaveTemplate {
            template_id: TEMPLATE,
            template: template(dec!(300.00))
        })
        .unwrap(),
        ["TemplateSaved"]
    );
    assert_eq!(w.client(create).unwrap(), ["AutopaymentCreated"]);
    assert!(w
        .client(client::Command::DeleteTemplate {
            template_id: TEMPLATE
        })
        .is_err());
    assert!(w
        .client(client::Command::CreateAutopayment {
            autopayment_id: Uuid::from_u128(5),
            template_id: TEMPLATE,
            schedule: every_day(w.now),
            max_failures: 0,
        })
        .is_err());
    assert_eq!(
        w.client(client::Command::CancelAutopayment {
            autopayment_id: AUTO
        })
        .unwrap(),
        ["AutopaymentCancelled"]
    );
    assert_eq!(
        w.client(client::Command::DeleteTemplate {
            template_id: TEMPLATE
        })
        .unwrap(),
        ["TemplateDeleted"]
    );
}

/// [`with_daily_autopayment`] with the process scheduled and the clock one second past the
/// first run: the run falls due (the state and actions of that step).
fn first_run_falls_due() -> (World, Option<State>, Vec<Action>) {
    let (mut w, order, first) = with_daily_autopayment();
    let (state, _) = autopayment::step(
        None,
        Input::Scheduled {
            order,
            run: 0,
            at: first,
        },
    );
    w.now = first + Duration::seconds(1);
    let (state, actions) = autopayment::step(state, Input::Due { now: w.now });
    (w, state, actions)
}

/// The tracker: the client's events stepped into the process.
fn track(mut state: Option<State>, events: &[etr_domain::Event]) -> Option<State> {
    for event in events {
        let etr_domain::Event::Client(e) = event else {
            continue;
        };
        let known = state.as_ref().map(State::order);
        if let Some(input) = Input::of_event(e, CLIENT, known) {
            state = autopayment::step(state, input).0;
        }
    }
    state
}

/// Performs the process's actions against the world as the runner would: a start is a
/// payment command (refused → `StartRefused`), a check reads the payment's state, a record
/// is the client's command. The provider's answer is `provider_ok`.
fn perform(
    w: &mut World,
    state: Option<State>,
    actions: Vec<Action>,
    provider_ok: bool,
) -> Option<State> {
    let mut state = state;
    for action in actions {
        let input = match action {
            Action::StartPayment {
                payment_id,
                run,
                order,
                ..
            } => {
                let client = wallet::client_of(&w.states, order.client_id);
                let template = client.templates
                    [&client.autopayments[&order.autopayment_id].template_id]
                    .clone();
                let start = Command::Payment {
                    client_id: order.client_id,
                    wallet_id: template.wallet_id,
                    payment_id,
                    command: etr_domain::payment::Command::Start {
                        commission: None,
                        amount: template.amount,
                        service_id: template.service_id.clone(),
                        attributes: template.attributes.clone(),
                        fraud: etr_domain::payment::FraudVerdict::Approved,
                        autopayment_run: Some(run),
                    },
                };
                match w.run(start) {
                    Ok(_) => {
                        // The payment processor executes it.
                        let outcome = if provider_ok {
                            etr_domain::payment::Execution::Succeeded {
                                provider_reference: "p".into(),
                            }
                        } else {
                            etr_domain::payment::Execution::Failed {
                                reason: "provider refused".into(),
                            }
                        };
                        w.run(Command::Payment {
                            client_id: order.client_id,
                            wallet_id: template.wallet_id,
                            payment_id,
                            command: etr_domain::payment::Command::Execute { outcome },
                        })
                        .unwrap();
                        continue;
                    }
                    Err(e) => Input::start_refused(run.run, w.now, e.code().into()),
                }
            }
            Action::CheckPayment { run, payment_id } => {
                let payment = match w.states.get(&AggregateRef::payment(payment_id)) {
                    Some(etr_domain::State::Payment(p)) => Some(p),
                    _ => None,
                };
                // A payment whose start never committed is missing: the process sends it
                // again.
                Input::of_payment(run, w.now, payment)
            }
            Action::Record {
                order,
                run,
                payment_id,
                succeeded,
                reason,
                ..
            } => {
                let recorded = w.run(Command::Client {
                    client_id: order.client_id,
                    command: client::Command::RecordAutopaymentRun {
                        autopayment_id: order.autopayment_id,
                        run,
                        payment_id,
                        succeeded,
                        reason,
                    },
                });
                match recorded {
                    // The tracker turns the client's events into the next schedule.
                    Ok(events) => {
                        state = track(state, &events);
                        continue;
                    }
                    Err(_) => Input::RecordRefused { run },
                }
            }
            Action::WakeAt(_) => continue,
        };
        let (next, more) = autopayment::step(state, input);
        state = perform(w, next, more, provider_ok);
    }
    state
}

#[test]
fn an_autopayment_runs_when_due_records_every_run_and_pauses_after_failures_in_a_row() {
    let (mut w, order, first) = with_daily_autopayment();
    let (mut state, actions) = autopayment::step(
        None,
        Input::Scheduled {
            order,
            run: 0,
            at: first,
        },
    );
    assert_eq!(actions, vec![Action::WakeAt(Some(first))]);
    // Not due yet: nothing starts.
    let (s, actions) = autopayment::step(state, Input::Due { now: w.now });
    assert_eq!(actions, vec![Action::WakeAt(Some(first))]);
    state = s;
    // Each day the timer fires: 700 pays twice, then the funds run out twice → paused.
    for day in 0..4 {
        w.now = first + Duration::days(day) + Duration::seconds(1);
        let (s, actions) = autopayment::step(state, Input::Due { now: w.now });
        let s = perform(&mut w, s, actions, true);
        // Follow the payment until the run is recorded.
        let (s, actions) = autopayment::step(s, Input::Due { now: w.now });
        state = perform(&mut w, s, actions, true);
        if w.autopayment().status != autopayment::Status::Active {
            break;
        }
    }
    let a = w.autopayment();
    let outcomes: Vec<(u32, bool)> = a.runs.iter().map(|r| (r.run, r.succeeded)).collect();
    assert_eq!(outcomes, [(0, true), (1, true), (2, false), (3, false)]);
    assert_eq!(a.runs[2].reason.as_deref(), Some("insufficient_funds"));
    assert_eq!(a.status, autopayment::Status::Paused);
    assert_eq!(a.pause_reason.as_deref(), Some("2 failed runs in a row"));
    assert!(matches!(state, Some(State::Idle { .. })));
    assert_eq!(wallet::wallet_of(&w.states, WALLET).balance, dec!(100.00));
    // A run other than the one due is refused (a repeated record changes nothing).
    assert!(w
        .client(client::Command::RecordAutopaymentRun {
            autopayment_id: AUTO,
            run: 3,
            payment_id: autopayment::run_payment_id(AUTO, 3),
            succeeded: true,
            reason: None,
        })
        .is_err());
    // Resumed, the next run is the first scheduled after now, with the failures forgotten.
    w.now += Duration::days(3);
    assert_eq!(
        w.client(client::Command::ResumeAutopayment {
            autopayment_id: AUTO
        })
        .unwrap(),
        ["AutopaymentResumed"]
    );
    let a = w.autopayment();
    assert!(a.next_run_at() > w.now);
    assert_eq!(a.consecutive_failures, 0);
}

/// A pause or cancellation committed after the run fell due but before its payment was
/// started stops the run, whenever the process learns of it: the start is refused in the
/// same decision (`autopayment_run_not_due`), nothing is paid, no run is recorded, and the
/// process waits idle until a resumption schedules the next run.
#[test]
fn a_run_started_after_the_autopayment_was_paused_or_cancelled_pays_nothing() {
    for stop in ["pause", "cancel"] {
        let (mut w, state, actions) = first_run_falls_due();
        // The run falls due; the client stops the autopayment before the start is decided
        // (the process has not seen that event yet).
        assert!(matches!(state, Some(State::Running { run: 0, .. })));
        let stopped = match stop {
            "pause" => w.client(client::Command::PauseAutopayment {
                autopayment_id: AUTO,
                reason: "holiday".into(),
            }),
            _ => w.client(client::Command::CancelAutopayment {
                autopayment_id: AUTO,
            }),
        };
        assert!(stopped.is_ok(), "{stop}: {stopped:?}");
        let state = perform(&mut w, state, actions, true);
        assert!(
            !w.states
                .contains_key(&AggregateRef::payment(autopayment::run_payment_id(AUTO, 0))),
            "{stop}: the run's payment was started after the {stop}"
        );
        assert_eq!(
            wallet::wallet_of(&w.states, WALLET).balance,
            dec!(700.00),
            "{stop}"
        );
        assert!(w.autopayment().runs.is_empty(), "{stop}");
        assert!(
            matches!(state, Some(State::Idle { .. })),
            "{stop}: {state:?}"
        );
        // Its event reaches the process later: still idle, nothing to do.
        let (state, actions) = autopayment::step(state, Input::Stopped);
        assert!(matches!(state, Some(State::Idle { .. })));
        assert_eq!(actions, vec![Action::WakeAt(None)]);
    }
}

/// Regression (found by the deterministic simulator, seed 1): a run whose start never
/// committed — the writer's commit failed, or the runner stopped between storing the
/// running step and sending the start — was followed forever: every second the process
/// read a payment that did not exist, took it for one still in flight, and the autopayment
/// never ran again. A missing payment now sends the start again under the same command id.
#[test]
fn a_run_whose_start_was_lost_is_started_again_and_recorded() {
    let (mut w, state, actions) = first_run_falls_due();
    // The run falls due; its start is stored as sent but never reaches the command side.
    assert!(matches!(state, Some(State::Running { run: 0, .. })));
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::StartPayment { .. })));
    // The timer fires: the payment is looked for, is missing, and is started again under
    // the same step.
    w.now += autopayment::POLL;
    let (state, actions) = autopayment::step(state, Input::Due { now: w.now });
    let missing = autopayment::step(state.clone(), Input::PaymentMissing { run: 0, now: w.now }).1;
    assert!(
        missing.iter().any(|a| matches!(
            a,
            Action::StartPayment { step, payment_id, .. }
                if step == "run-0/start" && *payment_id == autopayment::run_payment_id(AUTO, 0)
        )),
        "{missing:?}"
    );
    let state = perform(&mut w, state, actions, true);
    // Followed to its final status and recorded once.
    w.now += autopayment::POLL;
    let (state, actions) = autopayment::step(state, Input::Due { now: w.now });
    let state = perform(&mut w, state, actions, true);
    let a = w.autopayment();
    let outcomes: Vec<(u32, bool)> = a.runs.iter().map(|r| (r.run, r.succeeded)).collect();
    assert_eq!(outcomes, [(0, true)]);
    assert_eq!(a.next_run, 1);
    assert!(
        matches!(state, Some(State::Scheduled { run: 1, .. })),
        "{state:?}"
    );
    assert_eq!(wallet::wallet_of(&w.states, WALLET).balance, dec!(400.00));
}

/// The client's command, its events stepped into the process by the tracker.
fn client_tracked(w: &mut World, state: Option<State>, command: client::Command) -> Option<State> {
    let events = w
        .run(Command::Client {
            client_id: CLIENT,
            command,
        })
        .unwrap();
    track(state, &events)
}

/// Regression: a run whose payment was started while the autopayment was active, and which
/// was still in flight when the client paused or cancelled it, was dropped by the process —
/// the money was paid, but the run never appeared among the autopayment's runs (nor its
/// failure notice). The run is now followed to its end and recorded, then the process is
/// idle.
#[test]
fn a_run_in_flight_when_the_autopayment_is_paused_or_cancelled_is_still_recorded() {
    for stop in ["pause", "cancel"] {
        let (mut w, state, actions) = first_run_falls_due();
        // The run falls due and its payment is started and executed.
        let state = perform(&mut w, state, actions, true);
        assert!(
            matches!(state, Some(State::Running { run: 0, .. })),
            "{state:?}"
        );
        // The client stops the autopayment before the process has looked at the payment.
        let command = match stop {
            "pause" => client::Command::PauseAutopayment {
                autopayment_id: AUTO,
                reason: "holiday".into(),
            },
            _ => client::Command::CancelAutopayment {
                autopayment_id: AUTO,
            },
        };
        let state = client_tracked(&mut w, state, command);
        assert!(
            matches!(state, Some(State::Running { run: 0, .. })),
            "{stop}: {state:?}"
        );
        // The process follows the payment and records the run; then it is idle.
        w.now += autopayment::POLL;
        let (state, actions) = autopayment::step(state, Input::Due { now: w.now });
        let state = perform(&mut w, state, actions, true);
        let a = w.autopayment();
        let outcomes: Vec<(u32, bool)> = a.runs.iter().map(|r| (r.run, r.succeeded)).collect();
        assert_eq!(outcomes, [(0, true)], "{stop}");
        assert_ne!(a.status, autopayment::Status::Active, "{stop}");
        assert!(
            matches!(state, Some(State::Idle { .. })),
            "{stop}: {state:?}"
        );
        assert_eq!(wallet::wallet_of(&w.states, WALLET).balance, dec!(400.00));
        // The record is not taken twice.
        assert!(w
            .client(client::Command::RecordAutopaymentRun {
                autopayment_id: AUTO,
                run: 0,
                payment_id: autopayment::run_payment_id(AUTO, 0),
                succeeded: true,
                reason: None,
            })
            .is_err());
    }
}

/// Paused and resumed while a run is in flight: the run is recorded, and the next run is the
/// one the resumption set — also when the run's start was lost and, sent again, is refused as
/// not due (the resumption moved the schedule on).
#[test]
fn a_resumption_while_a_run_is_in_flight_schedules_the_next_run_after_it() {
    for start_lost in [false, true] {
        let (mut w, state, actions) = first_run_falls_due();
        // The start either commits or is lost on its way.
        let state = if start_lost {
            state
        } else {
            perform(&mut w, state, actions, true)
        };
        let state = client_tracked(
            &mut w,
            state,
            client::Command::PauseAutopayment {
                autopayment_id: AUTO,
                reason: "holiday".into(),
            },
        );
        w.now += Duration::days(3);
        let state = client_tracked(
            &mut w,
            state,
            client::Command::ResumeAutopayment {
                autopayment_id: AUTO,
            },
        );
        let resumed_at = w.autopayment().next_run;
        assert_eq!(resumed_at, 4, "start lost: {start_lost}");
        assert!(
            matches!(state, Some(State::Running { run: 0, .. })),
            "{state:?}"
        );
        // The process looks at the run's payment: recorded when it was paid; sent again and
        // refused as not due when its start was lost.
        let (state, actions) = autopayment::step(state, Input::Due { now: w.now });
        let state = perform(&mut w, state, actions, true);
        let state = match state {
            Some(State::Running { .. }) => {
                let (s, actions) = autopayment::step(state, Input::Due { now: w.now });
                perform(&mut w, s, actions, true)
            }
            other => other,
        };
        let a = w.autopayment();
        let outcomes: Vec<(u32, bool)> = a.runs.iter().map(|r| (r.run, r.succeeded)).collect();
        if start_lost {
            assert!(outcomes.is_empty(), "{outcomes:?}");
            assert_eq!(wallet::wallet_of(&w.states, WALLET).balance, dec!(700.00));
        } else {
            assert_eq!(outcomes, [(0, true)]);
            assert_eq!(wallet::wallet_of(&w.states, WALLET).balance, dec!(400.00));
        }
        assert_eq!(a.next_run, 4, "start lost: {start_lost}");
        assert_eq!(a.status, autopayment::Status::Active);
        assert!(
            matches!(state, Some(State::Scheduled { run: 4, at, .. }) if at == a.next_run_at()),
            "start lost: {start_lost}: {state:?}"
        );
    }
}

/// A run is recorded once, and only up to the one due.
#[test]
fn a_run_recorded_already_or_not_due_yet_is_refused() {
    let (mut w, _, _) = with_daily_autopayment();
    let record = |run: u32| client::Command::RecordAutopaymentRun {
        autopayment_id: AUTO,
        run,
        payment_id: autopayment::run_payment_id(AUTO, run),
        succeeded: true,
        reason: None,
    };
    assert!(w.client(record(1)).is_err(), "run 1 is not due");
    w.now += Duration::hours(2);
    assert_eq!(w.client(record(0)).unwrap(), ["AutopaymentRunRecorded"]);
    assert_eq!(w.autopayment().next_run, 1);
    assert!(w.client(record(0)).is_err(), "run 0 is recorded already");
}

/// A run a resumption passed over (in flight when the client paused) is recorded once, and
/// its failure does not count in the failures in a row since the resumption — whether its
/// record lands before or after the resumption, the streak after it starts from 0. No other
/// run but the one due is taken.
#[test]
fn a_run_passed_over_by_a_resumption_is_recorded_once_and_not_counted_since() {
    let (mut w, _, first) = with_daily_autopayment();
    let record = |run: u32, succeeded: bool| client::Command::RecordAutopaymentRun {
        autopayment_id: AUTO,
        run,
        payment_id: autopayment::run_payment_id(AUTO, run),
        succeeded,
        reason: (!succeeded).then(|| "insufficient_funds".to_owned()),
    };
    w.now = first + Duration::seconds(1);
    w.client(client::Command::PauseAutopayment {
        autopayment_id: AUTO,
        reason: "holiday".into(),
    })
    .unwrap();
    w.now += Duration::days(3);
    w.client(client::Command::ResumeAutopayment {
        autopayment_id: AUTO,
    })
    .unwrap();
    assert_eq!(w.autopayment().next_run, 4);
    assert_eq!(w.autopayment().resumed_past, Some(0));
    for never_due in [1, 2, 3, 5] {
        assert!(
            w.client(record(never_due, true)).is_err(),
            "run {never_due}"
        );
    }
    assert_eq!(
        w.client(record(0, false)).unwrap(),
        ["AutopaymentRunRecorded"]
    );
    let a = w.autopayment();
    assert_eq!((a.next_run, a.consecutive_failures), (4, 0));
    assert_eq!(a.status, autopayment::Status::Active);
    assert_eq!(a.resumed_past, None);
    assert!(w.client(record(0, false)).is_err(), "recorded already");
    // The runs after the resumption count as usual.
    w.now = a.next_run_at() + Duration::seconds(1);
    w.client(record(4, false)).unwrap();
    assert_eq!(w.autopayment().consecutive_failures, 1);
}

/// Regression: the runner read the template before the autopayment's state, so a run that
/// fell due just as the client cancelled the autopayment and deleted its template ended as
/// a failed run (`template_missing`) — recorded on a cancelled autopayment, with a failure
/// notice to the client — instead of as a run not due.
#[test]
fn a_run_of_a_cancelled_autopayment_whose_template_is_gone_is_not_due_not_failed() {
    let (mut w, state, _) = first_run_falls_due();
    w.client(client::Command::CancelAutopayment {
        autopayment_id: AUTO,
    })
    .unwrap();
    w.client(client::Command::DeleteTemplate {
        template_id: TEMPLATE,
    })
    .unwrap();
    let due = autopayment::DueRun {
        autopayment_id: AUTO,
        run: 0,
    };
    let client = wallet::client_of(&w.states, CLIENT);
    let refused = autopayment::run_template(&client, &due);
    assert_eq!(refused, Err(autopayment::RUN_NOT_DUE.to_owned()));
    let (state, actions) = autopayment::step(
        state,
        Input::start_refused(0, w.now, autopayment::RUN_NOT_DUE.into()),
    );
    assert!(matches!(state, Some(State::Idle { .. })), "{state:?}");
    assert_eq!(actions, vec![Action::WakeAt(None)]);
    assert!(w.autopayment().runs.is_empty());
}

/// Regression: the runner's answers did not say which run they were about, so an answer
/// that arrived late — a payment read, or a start refused, for run 3 after another runner
/// had recorded run 3 and started run 4 — was taken as run 4's outcome. Each answer now
/// names its run and changes nothing while another run is in flight.
#[test]
fn an_answer_about_another_run_changes_nothing() {
    let (_, order, first) = with_daily_autopayment();
    let running = Some(State::Running {
        order,
        run: 4,
        meanwhile: autopayment::Meanwhile::Nothing,
    });
    let now = first + Duration::days(4);
    let late = [
        Input::PaymentFinal {
            run: 3,
            now,
            succeeded: true,
            reason: None,
        },
        Input::PaymentPending { run: 3, now },
        Input::PaymentMissing { run: 3, now },
        Input::StartRefused {
            run: 3,
            now,
            code: "insufficient_funds".into(),
        },
        Input::RunNotDue { run: 3 },
        Input::RecordRefused { run: 3 },
    ];
    for input in late {
        let (state, actions) = autopayment::step(running.clone(), input.clone());
        assert_eq!(state, running, "{input:?}");
        assert!(actions.is_empty(), "{input:?}: {actions:?}");
    }
}
