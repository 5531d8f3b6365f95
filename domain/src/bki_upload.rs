//! Uploads of credit-history report files to a bureau (seed 000 §6.6.7) as a pure process:
//! `step(state, input, policy) -> (state, actions)`. The runner signs and encrypts the file
//! (`ports::ReportCrypto`), sends it, and feeds back the bureau's answer:
//!
//! - a **receipt**: every record of the file is accepted;
//! - a **rejection with per-record errors**: the records named are corrected (rendered again
//!   from the data as it is now) and sent in a new file, the next attempt of the same upload;
//!   the records not named are accepted;
//! - **no answer**: the same file is sent again after a backoff that doubles up to a cap.
//!
//! Every send, receipt and rejection is an action the runner records as an event, so the
//! report of what was sent when, per loan, is read from them. A record whose correction keeps
//! being rejected past `max_corrections` is parked for an operator.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Timing and limits of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Corrections of one record before it is parked.
    pub max_corrections: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            first_backoff: Duration::seconds(30),
            max_backoff: Duration::hours(1),
            max_corrections: 3,
        }
    }
}

/// A bureau's refusal of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordError {
    pub event_id: Uuid,
    pub code: String,
    pub message: String,
}

/// What the bureau answered to a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answer {
    Receipt { receipt_id: String },
    Rejected { errors: Vec<RecordError> },
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// `records` are to be sent (attempt `attempt`, 1-based), at `due`.
    Sending {
        records: Vec<Uuid>,
        attempt: u32,
        /// Sends of this attempt without an answer so far.
        unanswered: u32,
        #[serde(with = "time::serde::rfc3339")]
        due: OffsetDateTime,
        /// Corrections so far, per record.
        corrections: Vec<(Uuid, u32)>,
    },
    /// Every record accepted, or parked (`parked`); the acceptances were recorded.
    Done { parked: Vec<Uuid> },
}

/// What happens to the upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A new upload of these records (the day's file for the bureau).
    Start {
        now: OffsetDateTime,
        records: Vec<Uuid>,
    },
    /// The timer fired.
    Due { now: OffsetDateTime },
    /// The bureau answered the file of `attempt`.
    Answered {
        now: OffsetDateTime,
        attempt: u32,
        answer: Answer,
    },
    /// The bureau did not answer (unavailable, timeout).
    Unanswered { now: OffsetDateTime },
}

/// What the runner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Render these records (as the data is now), sign, encrypt and send them as the file of
    /// `attempt`; record the send.
    Send { attempt: u32, records: Vec<Uuid> },
    /// Record that the bureau accepted these records under `receipt_id` (or, for a rejected
    /// file, accepted the records it did not name).
    RecordAccepted {
        attempt: u32,
        receipt_id: Option<String>,
        records: Vec<Uuid>,
    },
    /// Record the bureau's errors for records it rejected.
    RecordRejected {
        attempt: u32,
        errors: Vec<RecordError>,
    },
    /// Records corrected too often: an operator looks at them.
    Park { records: Vec<Uuid> },
    /// Feed `Due` at this time; `None` clears the timer.
    WakeAt(Option<OffsetDateTime>),
}

/// The backoff after `unanswered` sends without an answer: `first · 2^(n−1)`, capped.
pub fn backoff(policy: &Policy, unanswered: u32) -> Duration {
    let factor = 1i32 << unanswered.saturating_sub(1).min(20);
    (policy.first_backoff * factor).min(policy.max_backoff)
}

/// One step of the process; `None` is an upload not started.
pub fn step(state: Option<State>, input: Input, policy: &Policy) -> (Option<State>, Vec<Action>) {
    match (state, input) {
        (None, Input::Start { now, records }) => {
            if records.is_empty() {
                return (Some(State::Done { parked: vec![] }), vec![]);
            }
            (
                Some(State::Sending {
                    records,
                    attempt: 1,
                    unanswered: 0,
                    due: now,
                    corrections: vec![],
                }),
                vec![Action::WakeAt(Some(now))],
            )
        }
        (
            Some(State::Sending {
                records,
                attempt,
                unanswered,
                due,
                corrections,
            }),
            Input::Due { now },
        ) => {
            if now < due {
                let wake = Action::WakeAt(Some(due));
                let state = State::Sending {
                    records,
                    attempt,
                    unanswered,
                    due,
                    corrections,
                };
                return (Some(state), vec![wake]);
            }
            let send = Action::Send {
                attempt,
                records: records.clone(),
            };
            // Until an answer arrives, the same file is sent again after the backoff.
            let next = now + backoff(policy, unanswered + 1);
            (
                Some(State::Sending {
                    records,
                    attempt,
                    unanswered: unanswered + 1,
                    due: next,
                    corrections,
                }),
                vec![Action::WakeAt(Some(next)), send],
            )
        }
        (
            Some(State::Sending {
                records,
                attempt,
                unanswered,
                corrections,
                ..
            }),
            Input::Unanswered { now },
        ) => {
            let next = now + backoff(policy, unanswered.max(1));
            (
                Some(State::Sending {
                    records,
                    attempt,
                    unanswered,
                    due: next,
                    corrections,
                }),
                vec![Action::WakeAt(Some(next))],
            )
        }
        (
            Some(State::Sending {
                records,
                attempt,
                mut corrections,
                ..
            }),
            Input::Answered {
                now,
                attempt: answered,
                answer,
            },
        ) if answered == attempt => match answer {
            Answer::Receipt { receipt_id } => (
                Some(State::Done { parked: vec![] }),
                vec![
                    Action::WakeAt(None),
                    Action::RecordAccepted {
                        attempt,
                        receipt_id: Some(receipt_id),
                        records,
                    },
                ],
            ),
            Answer::Rejected { errors } => {
                let rejected: Vec<Uuid> = records
                    .iter()
                    .copied()
                    .filter(|r| errors.iter().any(|e| e.event_id == *r))
                    .collect();
                let accepted: Vec<Uuid> = records
                    .iter()
                    .copied()
                    .filter(|r| !rejected.contains(r))
                    .collect();
                let mut actions = vec![Action::RecordRejected { attempt, errors }];
                if !accepted.is_empty() {
                    actions.push(Action::RecordAccepted {
                        attempt,
                        receipt_id: None,
                        records: accepted,
                    });
                }
                let mut again = Vec::new();
                let mut parked = Vec::new();
                for r in rejected {
                    let count = match corrections.iter_mut().find(|(id, _)| *id == r) {
                        Some((_, n)) => {
                            *n += 1;
                            *n
                        }
                        None => {
                            corrections.push((r, 1));
                            1
                        }
                    };
                    if count > policy.max_corrections {
                        parked.push(r);
                    } else {
                        again.push(r);
                    }
                }
                if !parked.is_empty() {
                    actions.push(Action::Park {
                        records: parked.clone(),
                    });
                }
                if again.is_empty() {
                    actions.insert(0, Action::WakeAt(None));
                    return (Some(State::Done { parked }), actions);
                }
                actions.insert(0, Action::WakeAt(Some(now)));
                (
                    Some(State::Sending {
                        records: again,
                        attempt: attempt + 1,
                        unanswered: 0,
                        due: now,
                        corrections,
                    }),
                    actions,
                )
            }
        },
        // Late answers to an earlier attempt, or anything after the end, change nothing.
        (state, _) => (state, vec![]),
    }
}
