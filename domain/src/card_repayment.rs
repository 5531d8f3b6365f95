//! A loan repayment from a bound bank card (seed 000 §6.13.1, the bank-system port of e-wallet
//! spec §7.1) as a pure process: `step(stage, input, policy) -> (stage, actions)`.
//!
//! The loan records the request (`CardRepaymentRequested`, with the card's token and the
//! amount fixed at request); the process authorises the card at the bank for the amount
//! (the repayment id is the bank's idempotency key), captures the authorisation, and records
//! the outcome on the loan (`RecordCardRepayment`): paid → the repayment is allocated on the
//! loan's business day of that moment; declined → the request ends with the bank's reason.
//! An unanswered call is retried after a backoff that doubles up to a cap; a capture is
//! never given up (the card holder's money is authorised), a record is repeated until the
//! loan shows it. Every call is preceded by a timer one `attempt_timeout` later, so a runner
//! that dies mid-call repeats it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::ids::ClientId;
use crate::money::Money;

/// The process's name: its instances' and its step ids' namespace.
pub const PROCESS: &str = "loan-card-repayment";

/// Timing of the process (10 s a call, backoff from 1 s doubling to 10 min).
pub type Policy = crate::retry::Policy;

/// What the bank is asked: the card's token and the amount, roubles with kopecks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub client_id: ClientId,
    pub loan_id: Uuid,
    pub repayment_id: Uuid,
    pub token: String,
    pub amount: Money,
}

/// How the card repayment ended at the bank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Authorised and captured.
    Paid { authorisation_id: String },
    /// The bank refused the authorisation.
    Declined { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    Authorising {
        order: Order,
        attempts: u32,
    },
    Capturing {
        order: Order,
        authorisation_id: String,
        attempts: u32,
    },
    Recording {
        order: Order,
        outcome: Outcome,
    },
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The loan recorded the request.
    Requested {
        at: OffsetDateTime,
        order: Order,
    },
    /// The timer fired.
    Due {
        now: OffsetDateTime,
    },
    Authorised {
        now: OffsetDateTime,
        authorisation_id: String,
    },
    Declined {
        now: OffsetDateTime,
        reason: String,
    },
    Captured {
        now: OffsetDateTime,
    },
    /// The call was not answered (or a capture was refused): tried again later.
    Unanswered {
        now: OffsetDateTime,
    },
    /// The loan recorded the outcome.
    Recorded,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Authorise {
        order: Order,
    },
    Capture {
        authorisation_id: String,
    },
    /// Records the outcome on the loan under the step id `record`.
    Record {
        order: Order,
        outcome: Outcome,
    },
    WakeAt(Option<OffsetDateTime>),
}

pub fn step(stage: Option<Stage>, input: Input, policy: &Policy) -> (Option<Stage>, Vec<Action>) {
    use Action as A;
    let call = |now: OffsetDateTime| A::WakeAt(Some(now + policy.attempt_timeout));
    match (stage, input) {
        (None, Input::Requested { at, order }) => (
            Some(Stage::Authorising { order, attempts: 0 }),
            vec![A::WakeAt(Some(at))],
        ),
        (Some(Stage::Authorising { order, attempts }), Input::Due { now }) => (
            Some(Stage::Authorising {
                order: order.clone(),
                attempts: attempts + 1,
            }),
            vec![call(now), A::Authorise { order }],
        ),
        (
            Some(Stage::Authorising { order, .. }),
            Input::Authorised {
                now,
                authorisation_id,
            },
        ) => (
            Some(Stage::Capturing {
                order,
                authorisation_id,
                attempts: 0,
            }),
            vec![A::WakeAt(Some(now))],
        ),
        (Some(Stage::Authorising { order, .. }), Input::Declined { now, reason }) => {
            let outcome = Outcome::Declined { reason };
            (
                Some(Stage::Recording {
                    order: order.clone(),
                    outcome: outcome.clone(),
                }),
                vec![call(now), A::Record { order, outcome }],
            )
        }
        (
            Some(Stage::Capturing {
                order,
                authorisation_id,
                attempts,
            }),
            Input::Due { now },
        ) => (
            Some(Stage::Capturing {
                order,
                authorisation_id: authorisation_id.clone(),
                attempts: attempts + 1,
            }),
            vec![call(now), A::Capture { authorisation_id }],
        ),
        (
            Some(Stage::Capturing {
                order,
                authorisation_id,
                ..
            }),
            Input::Captured { now },
        ) => {
            let outcome = Outcome::Paid { authorisation_id };
            (
                Some(Stage::Recording {
                    order: order.clone(),
                    outcome: outcome.clone(),
                }),
                vec![call(now), A::Record { order, outcome }],
            )
        }
        (Some(Stage::Recording { order, outcome }), Input::Due { now }) => (
            Some(Stage::Recording {
                order: order.clone(),
                outcome: outcome.clone(),
            }),
            vec![call(now), A::Record { order, outcome }],
        ),
        (
            Some(s @ (Stage::Authorising { .. } | Stage::Capturing { .. })),
            Input::Unanswered { now },
        ) => {
            let attempts = match &s {
                Stage::Authorising { attempts, .. } | Stage::Capturing { attempts, .. } => {
                    *attempts
                }
                _ => 0,
            };
            (
                Some(s),
                vec![A::WakeAt(Some(now + policy.backoff(attempts)))],
            )
        }
        (Some(_), Input::Recorded) => (Some(Stage::Done), vec![A::WakeAt(None)]),
        // A repeated event or a late answer changes nothing.
        (stage, _) => (stage, vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn order() -> Order {
        Order {
            client_id: ClientId(Uuid::from_u128(1)),
            loan_id: Uuid::from_u128(2),
            repayment_id: Uuid::from_u128(3),
            token: "tok".into(),
            amount: Money::new(rust_decimal::Decimal::new(150_000, 2), crate::Currency::Rub),
        }
    }

    #[test]
    fn authorised_then_captured_then_recorded_and_an_unanswered_capture_is_retried() {
        let p = Policy::default();
        let t = datetime!(2026-12-01 10:00 UTC);
        let (s, a) = step(
            None,
            Input::Requested {
                at: t,
                order: order(),
            },
            &p,
        );
        assert_eq!(a, vec![Action::WakeAt(Some(t))]);
        let (s, a) = step(s, Input::Due { now: t }, &p);
        assert!(matches!(a.last(), Some(Action::Authorise { .. })));
        let (s, _) = step(
            s,
            Input::Authorised {
                now: t,
                authorisation_id: "auth-1".into(),
            },
            &p,
        );
        let (s, a) = step(s, Input::Due { now: t }, &p);
        assert_eq!(
            a.last(),
            Some(&Action::Capture {
                authorisation_id: "auth-1".into()
            })
        );
        let (s, a) = step(s, Input::Unanswered { now: t }, &p);
        assert_eq!(a, vec![Action::WakeAt(Some(t + p.first_backoff))]);
        let (s, _) = step(s, Input::Due { now: t }, &p);
        let (s, a) = step(s, Input::Captured { now: t }, &p);
        assert_eq!(
            a.last(),
            Some(&Action::Record {
                order: order(),
                outcome: Outcome::Paid {
                    authorisation_id: "auth-1".into()
                }
            })
        );
        // A runner that died before the record repeats it when the timer fires.
        let (s, a) = step(s, Input::Due { now: t }, &p);
        assert!(matches!(a.last(), Some(Action::Record { .. })));
        let (s, a) = step(s, Input::Recorded, &p);
        assert_eq!((s, a), (Some(Stage::Done), vec![Action::WakeAt(None)]));
    }

    #[test]
    fn a_declined_card_records_the_reason_and_captures_nothing() {
        let p = Policy::default();
        let t = datetime!(2026-12-01 10:00 UTC);
        let (s, _) = step(
            None,
            Input::Requested {
                at: t,
                order: order(),
            },
            &p,
        );
        let (s, _) = step(s, Input::Due { now: t }, &p);
        let (_, a) = step(
            s,
            Input::Declined {
                now: t,
                reason: "do not honour".into(),
            },
            &p,
        );
        assert!(a.iter().all(|a| !matches!(a, Action::Capture { .. })));
        assert!(matches!(
            a.last(),
            Some(Action::Record {
                outcome: Outcome::Declined { .. },
                ..
            })
        ));
    }
}
