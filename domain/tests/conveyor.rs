//! The loan conveyor's process manager as a pure state machine: given an instance, when an
//! event, a timer or an activity's result arrives, then these actions.

use etr_domain::application::{Command, Contract, Event, Identification};
use etr_domain::conveyor::{
    step, Action, Activity, Input, Outcome, Policy, Stage, State, Versions,
};
use etr_domain::ClientId;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

const APP: Uuid = Uuid::from_u128(70);
const CLIENT: ClientId = ClientId(Uuid::from_u128(7));
const T0: OffsetDateTime = datetime!(2026-11-24 09:00 UTC);

fn event(state: Option<State>, event: Event) -> (Option<State>, Vec<Action>) {
    step(
        state,
        Input::Event {
            client_id: CLIENT,
            application_id: APP,
            at: T0,
            event,
        },
        &Policy::default(),
    )
}

fn submitted() -> State {
    let (state, actions) = event(
        None,
        Event::ApplicationSubmitted {
            application_id: APP,
        },
    );
    assert_eq!(actions, vec![Action::WakeAt(T0)]);
    state.unwrap()
}

#[test]
fn a_draft_starts_no_run_and_a_submission_starts_identification() {
    let (state, actions) = event(
        None,
        Event::ApplicationCreated {
            application_id: APP,
            product_id: None,
            requested: etr_domain::Money::new(10_000.into(), etr_domain::Currency::Rub),
            term: 30,
            partner_id: None,
            channel: "web".into(),
            cart: vec![],
        },
    );
    assert_eq!((state, actions), (None, vec![]));
    let s = submitted();
    assert_eq!(
        s.stage,
        Stage::Perform {
            activity: Activity::Identify
        }
    );
}

#[test]
fn an_activity_result_is_stored_before_its_command_is_issued_and_a_repeat_issues_the_same_command()
{
    let policy = Policy::default();
    let (s, actions) = step(Some(submitted()), Input::Due { now: T0 }, &policy);
    assert_eq!(
        actions,
        vec![
            Action::WakeAt(T0 + policy.attempt_timeout),
            Action::Perform(Activity::Identify)
        ]
    );
    let outcome = Outcome::Identification(Identification::Identified {
        method: "snils".into(),
    });
    let (s, actions) = step(
        s,
        Input::Performed {
            now: T0,
            activity: Activity::Identify,
            outcome: outcome.clone(),
        },
        &policy,
    );
    let issue = Action::Issue {
        step: "identification".into(),
        command: Command::RecordIdentification {
            outcome: Identification::Identified {
                method: "snils".into(),
            },
        },
    };
    assert_eq!(
        actions,
        vec![Action::WakeAt(T0 + policy.attempt_timeout), issue.clone()]
    );
    // The runner died before the command was answered: the timer repeats the same command.
    let later = T0 + policy.attempt_timeout;
    let (s, actions) = step(s, Input::Due { now: later }, &policy);
    assert_eq!(
        actions,
        vec![Action::WakeAt(later + policy.attempt_timeout), issue]
    );
    // Answered: nothing is due until the event moves the run on.
    let (s, actions) = step(
        s,
        Input::Recorded {
            step: "identification".into(),
        },
        &policy,
    );
    assert_eq!(actions, vec![Action::ClearTimer]);
    let (s, _) = step(
        s,
        Input::Event {
            client_id: CLIENT,
            application_id: APP,
            at: later,
            event: Event::ClientIdentified {
                method: "snils".into(),
            },
        },
        &policy,
    );
    assert_eq!(
        s.unwrap().stage,
        Stage::Perform {
            activity: Activity::LegalChecks
        }
    );
}

#[test]
fn a_result_for_an_activity_the_run_left_is_ignored() {
    let policy = Policy::default();
    let (s, _) = event(
        Some(submitted()),
        Event::ApplicationCancelled {
            reason: "client withdrew".into(),
        },
    );
    let (s, actions) = step(
        s,
        Input::Performed {
            now: T0,
            activity: Activity::Identify,
            outcome: Outcome::Identification(Identification::Identified {
                method: "snils".into(),
            }),
        },
        &policy,
    );
    assert_eq!(actions, vec![]);
    assert_eq!(s.unwrap().stage, Stage::Done);
}

fn at_payout() -> State {
    let mut s = submitted();
    s.stage = Stage::Perform {
        activity: Activity::Payout,
    };
    s
}

#[test]
fn transient_payout_failures_back_off_then_the_payout_is_compensated() {
    let policy = Policy {
        max_attempts: 3,
        ..Policy::default()
    };
    let mut s = Some(at_payout());
    let mut now = T0;
    let mut waits = Vec::new();
    loop {
        let (next, actions) = step(s, Input::Due { now }, &policy);
        assert!(actions.contains(&Action::Perform(Activity::Payout)));
        let (next, actions) = step(
            next,
            Input::Failed {
                now,
                activity: Activity::Payout,
                transient: true,
                reason: "provider timeout".into(),
            },
            &policy,
        );
        s = next;
        match actions.as_slice() {
            [Action::WakeAt(t)] => {
                waits.push(*t - now);
                now = *t;
            }
            [Action::WakeAt(_), Action::Issue { step, command }] => {
                assert_eq!(step, "payout-failure");
                assert_eq!(
                    command,
                    &Command::RecordPayoutFailure {
                        reason: "provider timeout (after 3 attempts)".into()
                    }
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        waits,
        vec![Duration::milliseconds(500), Duration::milliseconds(1000)]
    );
    // The failure event ends the run and tells the client.
    let (s, actions) = event(
        s,
        Event::DisbursementFailed {
            reason: "provider timeout".into(),
            contract_id: None,
        },
    );
    assert_eq!(s.unwrap().stage, Stage::Done);
    assert!(matches!(
        actions.as_slice(),
        [Action::ClearTimer, Action::Notify { .. }]
    ));
}

#[test]
fn a_definite_failure_of_a_check_parks_the_run_in_the_dead_letters() {
    let policy = Policy::default();
    let (s, _) = step(Some(submitted()), Input::Due { now: T0 }, &policy);
    let (s, actions) = step(
        s,
        Input::Failed {
            now: T0,
            activity: Activity::Identify,
            transient: false,
            reason: "client has no personal data".into(),
        },
        &policy,
    );
    assert_eq!(
        actions,
        vec![
            Action::ClearTimer,
            Action::DeadLetter {
                reason: "identification: client has no personal data".into()
            }
        ]
    );
    assert!(matches!(s.unwrap().stage, Stage::Parked { .. }));
}

#[test]
fn an_unsigned_approval_expires_when_its_timer_is_due() {
    let policy = Policy::default();
    let deadline = T0 + Duration::days(3);
    let (s, actions) = event(
        Some(submitted()),
        Event::ApplicationApproved {
            offers: vec![],
            score: 700,
            pdn_percent: None,
            expires_at: deadline,
        },
    );
    assert_eq!(actions, vec![Action::WakeAt(deadline)]);
    let (s, _) = event(
        s,
        Event::OfferChosen {
            offer_id: Uuid::nil(),
        },
    );
    let (s, _) = event(
        s,
        Event::ContractGenerated {
            contract: Contract {
                contract_id: Uuid::nil(),
                document_sha256: "ab".repeat(32),
                location: "x".into(),
                template: "loan_agreement".into(),
            },
        },
    );
    // Woken early (a timer from before): it sleeps again until the deadline.
    let (s, actions) = step(s, Input::Due { now: T0 }, &policy);
    assert_eq!(actions, vec![Action::WakeAt(deadline)]);
    let (s, actions) = step(s, Input::Due { now: deadline }, &policy);
    assert_eq!(
        actions,
        vec![
            Action::WakeAt(deadline + policy.attempt_timeout),
            Action::Issue {
                step: "expire".into(),
                command: Command::ExpireApplication
            }
        ]
    );
    let (s, _) = event(s, Event::ApplicationExpired);
    assert_eq!(s.unwrap().stage, Stage::Done);
}

#[test]
fn repeat_clients_take_the_version_without_photo_identification() {
    let versions = Versions::default();
    let repeat = versions.pick(true, "partner").unwrap();
    assert!(repeat.skip_manual_identification);
    let new = versions.pick(false, "partner").unwrap();
    assert_eq!(new.name, "standard");
    assert!(!new.skip_manual_identification);
    assert!(Versions(vec![]).pick(false, "web").is_none());
}

#[test]
fn a_stage_taken_again_after_a_review_records_under_a_new_step() {
    // The first scoring referred the application; its command id is spent. After the
    // operator clears it, the new scoring must not reuse that id (the command side would
    // answer the referral again and the run would never move).
    let policy = Policy::default();
    let mut s = submitted();
    s.stage = Stage::Perform {
        activity: Activity::Score,
    };
    let outcome = |reasons: Vec<String>| {
        Outcome::Scoring(etr_domain::application::Scoring::ManualReview {
            reasons,
            score: 500,
            pdn_percent: None,
        })
    };
    let (s, actions) = step(
        Some(s),
        Input::Performed {
            now: T0,
            activity: Activity::Score,
            outcome: outcome(vec!["duplicate".into()]),
        },
        &policy,
    );
    let first = actions.iter().find_map(|a| match a {
        Action::Issue { step, .. } => Some(step.clone()),
        _ => None,
    });
    assert_eq!(first.as_deref(), Some("scoring"));
    let (s, _) = event(
        s,
        Event::ReviewResolved {
            stage: "scoring".into(),
            approved: true,
            reason: "a relative".into(),
        },
    );
    let (s, _) = step(s, Input::Due { now: T0 }, &policy);
    let (_, actions) = step(
        s,
        Input::Performed {
            now: T0,
            activity: Activity::Score,
            outcome: outcome(vec![]),
        },
        &policy,
    );
    let second = actions.iter().find_map(|a| match a {
        Action::Issue { step, .. } => Some(step.clone()),
        _ => None,
    });
    assert_eq!(second.as_deref(), Some("scoring/review-1"));
}
