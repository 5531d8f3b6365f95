//! The upload process of credit-history files (`etr_domain::bki_upload`): a receipt ends it,
//! rejected records are corrected and sent again as the next attempt, no answer is retried
//! with a doubling backoff, and records rejected past the limit are parked.

use etr_domain::bki_upload::{step, Action, Answer, Input, Policy, RecordError, State};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

fn at(s: i64) -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000 + s)
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(n)
}

fn rejected(ids: &[u128]) -> Answer {
    Answer::Rejected {
        errors: ids
            .iter()
            .map(|n| RecordError {
                event_id: id(*n),
                code: "passport_format".into(),
                message: "the passport does not match the series-number pattern".into(),
            })
            .collect(),
    }
}

#[test]
fn unanswered_sends_back_off_then_a_receipt_accepts_every_record() {
    let policy = Policy::default();
    let (s, actions) = step(
        None,
        Input::Start {
            now: at(0),
            records: vec![id(1), id(2)],
        },
        &policy,
    );
    assert_eq!(actions, vec![Action::WakeAt(Some(at(0)))]);
    let (s, actions) = step(s, Input::Due { now: at(0) }, &policy);
    assert_eq!(
        actions[1],
        Action::Send {
            attempt: 1,
            records: vec![id(1), id(2)]
        }
    );
    // No answer: the same file again after 30 s, then 60 s.
    let (s, actions) = step(s, Input::Unanswered { now: at(1) }, &policy);
    assert_eq!(actions, vec![Action::WakeAt(Some(at(31)))]);
    let (s, actions) = step(s, Input::Due { now: at(31) }, &policy);
    assert_eq!(actions[0], Action::WakeAt(Some(at(91))));
    assert!(matches!(actions[1], Action::Send { attempt: 1, .. }));
    let (s, actions) = step(
        s,
        Input::Answered {
            now: at(32),
            attempt: 1,
            answer: Answer::Receipt {
                receipt_id: "R-1".into(),
            },
        },
        &policy,
    );
    assert_eq!(s, Some(State::Done { parked: vec![] }));
    assert_eq!(
        actions[1],
        Action::RecordAccepted {
            attempt: 1,
            receipt_id: Some("R-1".into()),
            records: vec![id(1), id(2)]
        }
    );
}

#[test]
fn rejected_records_are_corrected_and_resent_and_parked_past_the_limit() {
    let policy = Policy {
        max_corrections: 2,
        ..Policy::default()
    };
    let (s, _) = step(
        None,
        Input::Start {
            now: at(0),
            records: vec![id(1), id(2), id(3)],
        },
        &policy,
    );
    let (s, _) = step(s, Input::Due { now: at(0) }, &policy);
    // Record 2 is rejected: 1 and 3 are accepted, 2 goes again as attempt 2.
    let (s, actions) = step(
        s,
        Input::Answered {
            now: at(5),
            attempt: 1,
            answer: rejected(&[2]),
        },
        &policy,
    );
    assert!(actions.contains(&Action::RecordAccepted {
        attempt: 1,
        receipt_id: None,
        records: vec![id(1), id(3)]
    }));
    let (s, actions) = step(s, Input::Due { now: at(5) }, &policy);
    assert_eq!(
        actions[1],
        Action::Send {
            attempt: 2,
            records: vec![id(2)]
        }
    );
    // A late answer to attempt 1 changes nothing.
    let (same, nothing) = step(
        s.clone(),
        Input::Answered {
            now: at(6),
            attempt: 1,
            answer: rejected(&[2]),
        },
        &policy,
    );
    assert_eq!((same, nothing), (s.clone(), vec![]));
    // Rejected again (2nd correction), then a third time: parked.
    let (s, _) = step(
        s,
        Input::Answered {
            now: at(7),
            attempt: 2,
            answer: rejected(&[2]),
        },
        &policy,
    );
    let (s, _) = step(s, Input::Due { now: at(7) }, &policy);
    let (s, actions) = step(
        s,
        Input::Answered {
            now: at(8),
            attempt: 3,
            answer: rejected(&[2]),
        },
        &policy,
    );
    assert!(actions.contains(&Action::Park {
        records: vec![id(2)]
    }));
    assert_eq!(
        s,
        Some(State::Done {
            parked: vec![id(2)]
        })
    );
}
