//! The payment-execution process (e-wallet spec §3.3, statuses 3 → 4 → 6 or 8) as a pure
//! state machine: `step(state, input, policy) -> (state, actions)`. The runner in `sagas/`
//! feeds it the payment's events and the provider's answers, keeps its state and timer with
//! its checkpoint, and performs the actions: call the provider, issue a command (with a
//! deterministic platform command id), wake up again at a time.
//!
//! A reserved payment is never left at 3: the provider is called (the payment id is its
//! idempotency key); an answer is recorded as `ExecutePayment`; no answer within
//! `attempt_timeout` is retried with exponential backoff; past `deadline` after the
//! reservation the provider is asked to void the order (same key): an order voided before
//! it took effect never will, and is executed as failed, which releases the hold (status 8);
//! an order the provider executed in the meantime answers its own outcome, which is
//! recorded. The void is asked again with backoff until the provider answers, never given
//! up: releasing the hold on a guess would leave the provider paid with money the wallet
//! also gives back.
//!
//! A transfer to another client's wallet has no provider: the reserved transfer is debited
//! (`DebitTransfer`, issued until its `PaymentExecutionStarted` arrives, or failed past the
//! deadline: no provider holds it), then the recipient's wallet is credited (`CreditTransfer` on the
//! recipient's partition, id `…/credit`) and its answer recorded with `ExecutePayment`: an
//! accepted credit succeeds, a refused one refunds the sender. Once debited, a transfer is
//! never failed by a deadline: the credit is asked again with backoff until the command side
//! answers, because a refund after a credit that did commit would create money.
//!
//! A payment from a bound card is first authorised at the bank (the payment id is the
//! bank's idempotency key; no answer past `deadline` records a failure — an authorisation
//! the bank made but never reported lapses at the bank unclaimed), its answer recorded with
//! `RecordCardAuthorisation`; after execution the authorisation is captured (succeeded) or
//! released (failed) at the bank — asked again with backoff until the bank answers, never
//! given up, because the card holder's money is blocked until then — and recorded with
//! `RecordCardSettlement`.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::command::Command;
use crate::ids::ClientId;
use crate::money::Money;
use crate::payment::{self, Execution};
use crate::ports::{CardCredentials, CardPayment, PaymentOrder};

/// The process's name: its instances, its checkpoint and its command ids.
pub const PROCESS: &str = "payment-execution";

/// The id of the `ExecutePayment` command the process issues for a payment (whatever the
/// outcome, at most one is ever accepted).
pub fn execute_command_id(payment_id: Uuid) -> String {
    crate::ids::platform_command_id(PROCESS, payment_id, "execute")
}

/// The ids of the process's commands that may end a payment, in the order they happen: a
/// card's authorisation (declined: failed), the execution, a card's settlement.
pub fn ending_command_ids(payment_id: Uuid) -> [String; 3] {
    [
        crate::ids::platform_command_id(PROCESS, payment_id, "authorisation"),
        execute_command_id(payment_id),
        crate::ids::platform_command_id(PROCESS, payment_id, "settlement"),
    ]
}

/// Timing of the process. Times are business times (from events and the runner's clock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long one provider call may take before it counts as unanswered.
    pub attempt_timeout: Duration,
    /// The first retry's delay; each further retry doubles it, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// How long after the reservation the provider may take before the order is voided at
    /// the provider (a transfer not yet debited is failed), and how long the bank may take
    /// to authorise a card payment before it is failed.
    pub deadline: Duration,
    /// How long a payment above the warning threshold waits for the client's OTP before it
    /// is cancelled (status 9).
    pub confirmation_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempt_timeout: Duration::seconds(5),
            first_backoff: Duration::milliseconds(200),
            max_backoff: Duration::seconds(10),
            deadline: Duration::seconds(60),
            confirmation_timeout: Duration::minutes(5),
        }
    }
}

/// Where one payment's execution stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum State {
    /// Initiated, not reserved yet (fraud control, lock, balance check happen in one commit;
    /// a declined payment goes straight to cancelled).
    Initiated { order: Order },
    /// Above the warning threshold: waiting for the client's OTP until `expires_at`, then
    /// cancelled (`CancelPayment`, issued again on every wake-up until a final event).
    AwaitingConfirmation {
        order: Order,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// Reserved: the provider must execute it.
    Reserved {
        order: Order,
        #[serde(with = "time::serde::rfc3339")]
        reserved_at: OffsetDateTime,
        /// Provider calls made so far.
        attempts: u32,
    },
    /// The provider answered (or the deadline passed): `outcome` is being recorded with
    /// `ExecutePayment`, issued again on every wake-up until the payment's final event
    /// arrives (the command's id makes repeats harmless).
    Recorded { order: Order, outcome: Execution },
    /// Final status reached (6, 8 or 9): nothing more to do, unless a cancellation of a
    /// successful payment is sent to processing.
    Finished,
    /// A cancellation request was sent to processing (spec §3.4): the processing centre must
    /// reverse the payment (the request id is its idempotency key). It is asked again with
    /// backoff until it answers, never given up on: a reversal that took effect after the
    /// platform had recorded a processing error would leave the client unrefunded.
    Cancelling {
        order: Order,
        request_id: Uuid,
        provider_reference: String,
        #[serde(with = "time::serde::rfc3339")]
        sent_at: OffsetDateTime,
        attempts: u32,
    },
    /// The provider did not execute the reserved payment before the deadline: it must void
    /// the order (the payment id is the key) or answer the execution it made meanwhile.
    Voiding {
        order: Order,
        /// Void calls made so far.
        attempts: u32,
    },
    /// A transfer debited from the sender: the recipient's wallet must be credited.
    Crediting {
        order: Order,
        /// Credit commands issued so far.
        attempts: u32,
    },
    /// The processing centre answered the cancellation: `RecordPaymentCancellation` is issued
    /// again on every wake-up until the request's final event arrives.
    CancellationRecorded {
        order: Order,
        request_id: Uuid,
        outcome: Execution,
    },
    /// A card payment passed its checks: the bank must authorise `amount` (with the
    /// commission) at the card.
    Authorising {
        order: Order,
        amount: Money,
        #[serde(with = "time::serde::rfc3339")]
        requested_at: OffsetDateTime,
        attempts: u32,
    },
    /// The bank answered the authorisation: `RecordCardAuthorisation` is issued again on
    /// every wake-up until its event arrives.
    AuthorisationRecorded { order: Order, outcome: Execution },
    /// A card payment was executed (`capture`) or failed: the bank must capture or release
    /// its authorisation.
    Settling {
        order: Order,
        capture: bool,
        attempts: u32,
    },
    /// The bank settled the authorisation: `RecordCardSettlement` is issued again on every
    /// wake-up until the payment's final event arrives.
    SettlementRecorded { order: Order },
}

/// What the process knows of the payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub client_id: ClientId,
    pub wallet_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
    pub service_id: String,
    /// Set for a transfer to another client's wallet.
    #[serde(default)]
    pub recipient: Option<payment::Recipient>,
    /// Set for a payment from a bound card.
    #[serde(default)]
    pub card: Option<payment::CardSource>,
    /// The bank's authorisation of a card payment, once authorised.
    #[serde(default)]
    pub authorisation_id: Option<String>,
}

impl Order {
    pub fn to_port(&self) -> PaymentOrder {
        PaymentOrder {
            client_id: self.client_id,
            wallet_id: self.wallet_id,
            payment_id: self.payment_id,
            amount: self.amount,
            service_id: self.service_id.clone(),
        }
    }
}

/// What happens to the process. An input lives for one step, so the event is not boxed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::large_enum_variant)]
pub enum Input {
    /// One of the payment's events, with the client it belongs to and when it occurred.
    Event {
        client_id: ClientId,
        payment_id: Uuid,
        at: OffsetDateTime,
        event: payment::Event,
    },
    /// The timer fired at `now` (a call is due or overdue).
    Due { now: OffsetDateTime },
    /// The answer of `call` (the provider's, the bank's or the recipient wallet's).
    Answered {
        now: OffsetDateTime,
        call: Call,
        outcome: Execution,
    },
    /// `call` got no answer within the attempt timeout.
    Unanswered { now: OffsetDateTime, call: Call },
}

/// The external call an answer belongs to. A process steps an answer only in the state that
/// waits for that call ([`State::awaited_call`]): an answer repeated, or arriving after the
/// process moved on to another call, changes nothing — it is never taken for the answer of
/// the call awaited now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Call {
    /// The provider's execution of a payment ([`Action::CallProvider`]).
    Execute,
    /// The provider's void of a payment's order ([`Action::VoidAtProvider`]).
    Void,
    /// The processing centre's reversal of a payment for cancellation request `request_id`
    /// ([`Action::CallProviderCancel`]).
    Reverse { request_id: Uuid },
    /// The bank's authorisation of a card payment ([`Action::AuthoriseCard`]).
    Authorise,
    /// The bank's capture or release of an authorisation ([`Action::SettleCard`]).
    Settle,
    /// The credit of a transfer's recipient ([`Action::Credit`]).
    Credit,
}

impl Action {
    /// The call this action makes, whose answer the runner feeds back as
    /// [`Input::Answered`] or [`Input::Unanswered`]; `None` for an action that is not a call.
    pub fn call(&self) -> Option<Call> {
        match self {
            Action::CallProvider(_) => Some(Call::Execute),
            Action::VoidAtProvider(_) => Some(Call::Void),
            Action::CallProviderCancel { request_id, .. } => Some(Call::Reverse {
                request_id: *request_id,
            }),
            Action::AuthoriseCard(_) => Some(Call::Authorise),
            Action::SettleCard { .. } => Some(Call::Settle),
            Action::Credit { .. } => Some(Call::Credit),
            Action::Issue { .. } | Action::WakeAt(_) => None,
        }
    }
}

impl State {
    /// The call whose answer the process waits for in this state, if any.
    pub fn awaited_call(&self) -> Option<Call> {
        match self {
            State::Reserved { order, .. } if order.recipient.is_none() => Some(Call::Execute),
            State::Voiding { .. } => Some(Call::Void),
            State::Cancelling { request_id, .. } => Some(Call::Reverse {
                request_id: *request_id,
            }),
            State::Authorising { .. } => Some(Call::Authorise),
            State::Settling { .. } => Some(Call::Settle),
            State::Crediting { .. } => Some(Call::Credit),
            _ => None,
        }
    }
}

/// What the runner must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Call the provider (idempotency key: the payment id), then feed `Answered` or
    /// `Unanswered`.
    CallProvider(PaymentOrder),
    /// Ask the provider to void the payment's order (key: the payment id), then feed
    /// `Answered` (the order's final outcome: failed when voided, else its execution) or
    /// `Unanswered`.
    VoidAtProvider(PaymentOrder),
    /// Ask the provider to reverse the payment (idempotency key: the request id), then feed
    /// `Answered` or `Unanswered`.
    CallProviderCancel {
        order: PaymentOrder,
        request_id: Uuid,
        provider_reference: String,
    },
    /// Issue this command under the step's deterministic id `step`.
    Issue { step: String, command: Command },
    /// Ask the bank to authorise the card payment (idempotency key: the payment id), then
    /// feed `Answered` (authorised: succeeded with the authorisation id; declined: failed)
    /// or `Unanswered`.
    AuthoriseCard(CardPayment),
    /// Ask the bank to capture (`capture`) or release the authorisation, then feed
    /// `Answered` (succeeded when done) or `Unanswered`.
    SettleCard {
        authorisation_id: String,
        capture: bool,
    },
    /// Issue this credit of a transfer's recipient under the step id `step`, then feed
    /// `Answered` (accepted: succeeded; refused: failed with its code) or `Unanswered`.
    Credit { step: String, command: Command },
    /// Feed `Due` at this time (replaces any earlier timer); `None` clears the timer.
    WakeAt(Option<OffsetDateTime>),
}

/// The backoff before retry number `attempts` (1-based): `first_backoff · 2^(attempts-1)`,
/// capped at `max_backoff`.
pub fn backoff(policy: &Policy, attempts: u32) -> Duration {
    let factor = 1i32 << attempts.saturating_sub(1).min(20);
    (policy.first_backoff * factor).min(policy.max_backoff)
}

fn execute(order: &Order, outcome: Execution) -> Command {
    Command::Payment {
        client_id: order.client_id,
        wallet_id: order.wallet_id,
        payment_id: order.payment_id,
        command: payment::Command::Execute { outcome },
    }
}

/// Records `outcome` (again): issue `ExecutePayment` and wake up after the attempt timeout in
/// case it did not take.
fn record(
    order: Order,
    outcome: Execution,
    now: OffsetDateTime,
    policy: &Policy,
) -> (Option<State>, Vec<Action>) {
    let command = execute(&order, outcome.clone());
    (
        Some(State::Recorded { order, outcome }),
        vec![
            Action::WakeAt(Some(now + policy.attempt_timeout)),
            Action::Issue {
                step: "execute".into(),
                command,
            },
        ],
    )
}

/// Asks the provider (again) to void the order, `attempts` void calls made so far; wakes up
/// after the attempt timeout in case the call is lost with its runner.
fn void(order: Order, attempts: u32, now: OffsetDateTime, policy: &Policy) -> Stepped {
    let call = Action::VoidAtProvider(order.to_port());
    (
        Some(State::Voiding {
            order,
            attempts: attempts + 1,
        }),
        vec![Action::WakeAt(Some(now + policy.attempt_timeout)), call],
    )
}

/// Records a cancellation's outcome (again): issue `RecordPaymentCancellation` under the
/// request's own step and wake up after the attempt timeout in case it did not take.
fn record_cancellation(
    order: Order,
    request_id: Uuid,
    outcome: Execution,
    now: OffsetDateTime,
    policy: &Policy,
) -> (Option<State>, Vec<Action>) {
    let command = Command::Payment {
        client_id: order.client_id,
        wallet_id: order.wallet_id,
        payment_id: order.payment_id,
        command: payment::Command::RecordCancellation {
            request_id,
            outcome: outcome.clone(),
        },
    };
    (
        Some(State::CancellationRecorded {
            order,
            request_id,
            outcome,
        }),
        vec![
            Action::WakeAt(Some(now + policy.attempt_timeout)),
            Action::Issue {
                step: format!("cancellation/{request_id}"),
                command,
            },
        ],
    )
}

/// Issues `command` for the order's payment under `step` (again), in state `state`, and wakes
/// up after the attempt timeout in case it did not take.
fn reissue(
    state: State,
    order: &Order,
    step: &str,
    command: payment::Command,
    now: OffsetDateTime,
    policy: &Policy,
) -> (Option<State>, Vec<Action>) {
    let command = Command::Payment {
        client_id: order.client_id,
        wallet_id: order.wallet_id,
        payment_id: order.payment_id,
        command,
    };
    (
        Some(state),
        vec![
            Action::WakeAt(Some(now + policy.attempt_timeout)),
            Action::Issue {
                step: step.into(),
                command,
            },
        ],
    )
}

fn record_authorisation(
    order: Order,
    outcome: Execution,
    now: OffsetDateTime,
    policy: &Policy,
) -> (Option<State>, Vec<Action>) {
    let command = payment::Command::RecordCardAuthorisation {
        outcome: outcome.clone(),
    };
    let state = State::AuthorisationRecorded {
        order: order.clone(),
        outcome,
    };
    reissue(state, &order, "authorisation", command, now, policy)
}

fn record_settlement(
    order: Order,
    now: OffsetDateTime,
    policy: &Policy,
) -> (Option<State>, Vec<Action>) {
    let state = State::SettlementRecorded {
        order: order.clone(),
    };
    let command = payment::Command::RecordCardSettlement;
    reissue(state, &order, "settlement", command, now, policy)
}

/// A step's new state and the actions it asks for.
type Stepped = (Option<State>, Vec<Action>);

/// A card payment's steps: the bank's authorisation and the capture or release of it.
/// `Err` gives the state and input back when they are not a card step.
fn card_step(
    state: Option<State>,
    input: Input,
    policy: &Policy,
) -> Result<Stepped, Box<(Option<State>, Input)>> {
    use payment::Event as E;
    Ok(match (state, input) {
        (
            Some(State::Initiated { order }),
            Input::Event {
                at,
                event: E::CardAuthorisationRequested { amount, .. },
                ..
            },
        ) => (
            Some(State::Authorising {
                order,
                amount,
                requested_at: at,
                attempts: 0,
            }),
            vec![Action::WakeAt(Some(at))],
        ),
        (
            Some(State::Authorising {
                order,
                amount,
                requested_at,
                attempts,
            }),
            Input::Due { now },
        ) => {
            if now >= requested_at + policy.deadline {
                let failed = Execution::Failed {
                    reason: format!(
                        "the bank did not answer within {} s",
                        policy.deadline.whole_seconds()
                    ),
                };
                return Ok(record_authorisation(order, failed, now, policy));
            }
            let token = order
                .card
                .as_ref()
                .map(|c| c.token.clone())
                .unwrap_or_default();
            let call = Action::AuthoriseCard(CardPayment {
                payment_id: order.payment_id,
                card: CardCredentials::Bound { token },
                amount,
            });
            (
                Some(State::Authorising {
                    order,
                    amount,
                    requested_at,
                    attempts: attempts + 1,
                }),
                vec![Action::WakeAt(Some(now + policy.attempt_timeout)), call],
            )
        }
        (Some(State::Authorising { order, .. }), Input::Answered { now, outcome, .. }) => {
            record_authorisation(order, outcome, now, policy)
        }
        (
            Some(State::Authorising {
                order,
                amount,
                requested_at,
                attempts,
            }),
            Input::Unanswered { now, .. },
        ) => (
            Some(State::Authorising {
                order,
                amount,
                requested_at,
                attempts,
            }),
            vec![Action::WakeAt(Some(now + backoff(policy, attempts)))],
        ),
        (Some(State::AuthorisationRecorded { order, outcome }), Input::Due { now }) => {
            record_authorisation(order, outcome, now, policy)
        }
        // Authorised: `PaymentReserved` follows in the same commit.
        (
            Some(State::Authorising { order, .. } | State::AuthorisationRecorded { order, .. }),
            Input::Event {
                event: E::CardAuthorised { authorisation_id },
                ..
            },
        ) => (
            Some(State::Initiated {
                order: Order {
                    authorisation_id: Some(authorisation_id),
                    ..order
                },
            }),
            vec![Action::WakeAt(None)],
        ),
        // Executed or failed at the provider: settle the authorisation at the bank.
        (
            Some(
                State::Reserved { order, .. }
                | State::Voiding { order, .. }
                | State::Recorded { order, .. },
            ),
            Input::Event {
                at,
                event: event @ (E::PaymentExecuted { .. } | E::PaymentExecutionFailed { .. }),
                ..
            },
        ) if order.card.is_some() => (
            Some(State::Settling {
                order,
                capture: matches!(event, E::PaymentExecuted { .. }),
                attempts: 0,
            }),
            vec![Action::WakeAt(Some(at))],
        ),
        (
            Some(State::Settling {
                order,
                capture,
                attempts,
            }),
            Input::Due { now },
        ) => {
            let call = Action::SettleCard {
                authorisation_id: order.authorisation_id.clone().unwrap_or_default(),
                capture,
            };
            (
                Some(State::Settling {
                    order,
                    capture,
                    attempts: attempts + 1,
                }),
                vec![Action::WakeAt(Some(now + policy.attempt_timeout)), call],
            )
        }
        (
            Some(State::Settling { order, .. }),
            Input::Answered {
                now,
                outcome: Execution::Succeeded { .. },
                ..
            },
        ) => record_settlement(order, now, policy),
        (
            Some(State::Settling {
                order,
                capture,
                attempts,
            }),
            Input::Answered { now, .. } | Input::Unanswered { now, .. },
        ) => (
            Some(State::Settling {
                order,
                capture,
                attempts,
            }),
            vec![Action::WakeAt(Some(now + backoff(policy, attempts)))],
        ),
        (Some(State::SettlementRecorded { order }), Input::Due { now }) => {
            record_settlement(order, now, policy)
        }
        (state, input) => return Err(Box::new((state, input))),
    })
}

/// One step of the process. `None` is a payment the process has not seen yet.
pub fn step(state: Option<State>, input: Input, policy: &Policy) -> (Option<State>, Vec<Action>) {
    use payment::Event as E;
    if let Input::Answered { call, .. } | Input::Unanswered { call, .. } = &input {
        if state.as_ref().and_then(State::awaited_call) != Some(*call) {
            // The answer of a call the process no longer waits for.
            return (state, vec![]);
        }
    }
    let (state, input) = match card_step(state, input, policy) {
        Ok(stepped) => return stepped,
        Err(unchanged) => *unchanged,
    };
    match (state, input) {
        // The payment's own events move the process along.
        (
            None,
            Input::Event {
                client_id,
                payment_id,
                event:
                    E::PaymentInitiated {
                        wallet_id,
                        amount,
                        service_id,
                        recipient,
                        card,
                        ..
                    },
                ..
            },
        ) => (
            Some(State::Initiated {
                order: Order {
                    client_id,
                    wallet_id,
                    payment_id,
                    amount,
                    service_id,
                    recipient,
                    card,
                    authorisation_id: None,
                },
            }),
            vec![],
        ),
        (
            Some(State::Initiated { order }),
            Input::Event {
                at,
                event: E::PaymentConfirmationRequested { .. },
                ..
            },
        ) => {
            let expires_at = at + policy.confirmation_timeout;
            (
                Some(State::AwaitingConfirmation { order, expires_at }),
                vec![Action::WakeAt(Some(expires_at))],
            )
        }
        (
            Some(State::AwaitingConfirmation { order, .. }),
            Input::Event {
                event: E::PaymentConfirmed,
                ..
            },
        ) => (Some(State::Initiated { order }), vec![Action::WakeAt(None)]),
        (Some(State::AwaitingConfirmation { order, expires_at }), Input::Due { now }) => {
            if now < expires_at {
                return (
                    Some(State::AwaitingConfirmation { order, expires_at }),
                    vec![Action::WakeAt(Some(expires_at))],
                );
            }
            // Refused if the client's confirmation was decided first (the process has not
            // seen it yet): the confirmation stands and its reservation moves the process on.
            let cancel = Command::Payment {
                client_id: order.client_id,
                wallet_id: order.wallet_id,
                payment_id: order.payment_id,
                command: payment::Command::ExpireConfirmation,
            };
            (
                Some(State::AwaitingConfirmation { order, expires_at }),
                vec![
                    Action::WakeAt(Some(now + policy.attempt_timeout)),
                    Action::Issue {
                        step: "confirmation-expired".into(),
                        command: cancel,
                    },
                ],
            )
        }
        (
            Some(State::Initiated { order }),
            Input::Event {
                at,
                event: E::PaymentReserved { .. },
                ..
            },
        ) => (
            Some(State::Reserved {
                order,
                reserved_at: at,
                attempts: 0,
            }),
            vec![Action::WakeAt(Some(at))],
        ),
        (
            Some(_),
            Input::Event {
                event: E::PaymentSucceeded | E::PaymentFailed { .. } | E::PaymentCancelled { .. },
                ..
            },
        ) => (Some(State::Finished), vec![Action::WakeAt(None)]),
        // A cancellation sent to processing: the provider must reverse the payment.
        (
            Some(_),
            Input::Event {
                client_id,
                payment_id,
                at,
                event:
                    E::CancellationSentToProcessing {
                        request_id,
                        wallet_id,
                        amount,
                        service_id,
                        provider_reference,
                    },
            },
        ) => (
            Some(State::Cancelling {
                order: Order {
                    client_id,
                    wallet_id,
                    payment_id,
                    amount,
                    service_id,
                    recipient: None,
                    card: None,
                    authorisation_id: None,
                },
                request_id,
                provider_reference,
                sent_at: at,
                attempts: 0,
            }),
            vec![Action::WakeAt(Some(at))],
        ),
        (
            Some(State::Cancelling { .. } | State::CancellationRecorded { .. }),
            Input::Event {
                event: E::CancellationSucceeded { .. } | E::CancellationFailed { .. },
                ..
            },
        ) => (Some(State::Finished), vec![Action::WakeAt(None)]),
        (
            Some(State::Cancelling {
                order,
                request_id,
                provider_reference,
                sent_at,
                attempts,
            }),
            Input::Due { now },
        ) => {
            let call = Action::CallProviderCancel {
                order: order.to_port(),
                request_id,
                provider_reference: provider_reference.clone(),
            };
            (
                Some(State::Cancelling {
                    order,
                    request_id,
                    provider_reference,
                    sent_at,
                    attempts: attempts + 1,
                }),
                vec![Action::WakeAt(Some(now + policy.attempt_timeout)), call],
            )
        }
        (
            Some(State::Cancelling {
                order, request_id, ..
            }),
            Input::Answered { now, outcome, .. },
        ) => record_cancellation(order, request_id, outcome, now, policy),
        (
            Some(State::Cancelling {
                order,
                request_id,
                provider_reference,
                sent_at,
                attempts,
            }),
            Input::Unanswered { now, .. },
        ) => {
            let at = now + backoff(policy, attempts);
            (
                Some(State::Cancelling {
                    order,
                    request_id,
                    provider_reference,
                    sent_at,
                    attempts,
                }),
                vec![Action::WakeAt(Some(at))],
            )
        }
        (
            Some(State::CancellationRecorded {
                order,
                request_id,
                outcome,
            }),
            Input::Due { now },
        ) => record_cancellation(order, request_id, outcome, now, policy),
        // Due: call the provider, or give up past the deadline.
        (
            Some(State::Reserved {
                order,
                reserved_at,
                attempts,
            }),
            Input::Due { now },
        ) => {
            if now >= reserved_at + policy.deadline {
                if order.recipient.is_some() {
                    // A transfer not yet debited: no provider holds it.
                    let failed = Execution::Failed {
                        reason: format!(
                            "the transfer was not debited within {} s",
                            policy.deadline.whole_seconds()
                        ),
                    };
                    return record(order, failed, now, policy);
                }
                return void(order, 0, now, policy);
            }
            let call = match order.recipient {
                // A transfer is debited first; its `PaymentExecutionStarted` moves it on.
                Some(_) => Action::Issue {
                    step: "debit".into(),
                    command: Command::Payment {
                        client_id: order.client_id,
                        wallet_id: order.wallet_id,
                        payment_id: order.payment_id,
                        command: payment::Command::DebitTransfer,
                    },
                },
                None => Action::CallProvider(order.to_port()),
            };
            (
                Some(State::Reserved {
                    order,
                    reserved_at,
                    attempts: attempts + 1,
                }),
                // If the runner dies during the call, the call is repeated after the timeout.
                vec![Action::WakeAt(Some(now + policy.attempt_timeout)), call],
            )
        }
        (Some(State::Reserved { order, .. }), Input::Answered { now, outcome, .. }) => {
            record(order, outcome, now, policy)
        }
        // Voiding: ask again until the provider answers; its answer is the order's outcome.
        (Some(State::Voiding { order, attempts }), Input::Due { now }) => {
            void(order, attempts, now, policy)
        }
        (Some(State::Voiding { order, .. }), Input::Answered { now, outcome, .. }) => {
            record(order, outcome, now, policy)
        }
        (Some(State::Voiding { order, attempts }), Input::Unanswered { now, .. }) => (
            Some(State::Voiding { order, attempts }),
            vec![Action::WakeAt(Some(now + backoff(policy, attempts)))],
        ),
        // A transfer's debit was committed: credit the recipient.
        (
            Some(State::Reserved { order, .. }),
            Input::Event {
                at,
                event: E::PaymentExecutionStarted,
                ..
            },
        ) if order.recipient.is_some() => (
            Some(State::Crediting { order, attempts: 0 }),
            vec![Action::WakeAt(Some(at))],
        ),
        (Some(State::Crediting { order, attempts }), Input::Due { now }) => {
            let Some(recipient) = order.recipient else {
                return (Some(State::Crediting { order, attempts }), vec![]);
            };
            let credit = Action::Credit {
                step: "credit".into(),
                command: Command::Wallet {
                    client_id: recipient.client_id,
                    wallet_id: recipient.wallet_id,
                    command: crate::wallet::Command::CreditTransfer {
                        transfer_id: order.payment_id,
                        from_client_id: order.client_id,
                        from_wallet_id: order.wallet_id,
                        amount: order.amount,
                        order_id: recipient.order_id,
                    },
                },
            };
            (
                Some(State::Crediting {
                    order,
                    attempts: attempts + 1,
                }),
                vec![Action::WakeAt(Some(now + policy.attempt_timeout)), credit],
            )
        }
        (Some(State::Crediting { order, .. }), Input::Answered { now, outcome, .. }) => {
            record(order, outcome, now, policy)
        }
        (Some(State::Crediting { order, attempts }), Input::Unanswered { now, .. }) => {
            let at = now + backoff(policy, attempts);
            (
                Some(State::Crediting { order, attempts }),
                vec![Action::WakeAt(Some(at))],
            )
        }
        (Some(State::Recorded { order, outcome }), Input::Due { now }) => {
            record(order, outcome, now, policy)
        }
        (
            Some(State::Reserved {
                order,
                reserved_at,
                attempts,
            }),
            Input::Unanswered { now, .. },
        ) => {
            let at = now + backoff(policy, attempts);
            (
                Some(State::Reserved {
                    order,
                    reserved_at,
                    attempts,
                }),
                vec![Action::WakeAt(Some(at))],
            )
        }
        // Anything else changes nothing (events of steps already passed, late answers).
        (state, _) => (state, vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use rust_decimal::Decimal;

    fn at(s: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::seconds(1_800_000_000 + s)
    }

    fn given_reserved() -> State {
        let policy = Policy::default();
        let client_id = ClientId(Uuid::from_u128(1));
        let payment_id = Uuid::from_u128(3);
        let ev = |event| Input::Event {
            client_id,
            payment_id,
            at: at(0),
            event,
        };
        let (s, _) = step(
            None,
            ev(payment::Event::PaymentInitiated {
                commission: None,
                payment_id,
                wallet_id: Uuid::from_u128(2),
                amount: Money::new(Decimal::new(10_000, 2), Currency::Rub),
                service_id: "mobile".into(),
                attributes: Default::default(),
                recipient: None,
                card: None,
            }),
            &policy,
        );
        let (s, actions) = step(
            s,
            ev(payment::Event::PaymentReserved {
                amount: Money::new(Decimal::new(10_000, 2), Currency::Rub),
                limit_day: None,
            }),
            &policy,
        );
        assert_eq!(actions, vec![Action::WakeAt(Some(at(0)))]);
        s.expect("reserved")
    }

    #[test]
    fn reserved_payment_calls_the_provider_and_records_the_answer() {
        let policy = Policy::default();
        let (s, actions) = step(Some(given_reserved()), Input::Due { now: at(0) }, &policy);
        assert!(
            matches!(actions.last(), Some(Action::CallProvider(o)) if o.payment_id == Uuid::from_u128(3))
        );
        let (s, actions) = step(
            s,
            Input::Answered {
                call: Call::Execute,
                now: at(1),
                outcome: Execution::Succeeded {
                    provider_reference: "R".into(),
                },
            },
            &policy,
        );
        assert!(matches!(s, Some(State::Recorded { .. })));
        assert!(matches!(
            &actions[1],
            Action::Issue {
                step,
                command: Command::Payment {
                    command: crate::payment::Command::Execute {
                        outcome: Execution::Succeeded { .. },
                        ..
                    },
                    ..
                }
            } if step == "execute"
        ));
        // Until the final event arrives, every wake-up issues the same command again.
        let (s, again) = step(s, Input::Due { now: at(7) }, &policy);
        assert_eq!(again[1], actions[1]);
        let (s, _) = step(
            s,
            Input::Event {
                client_id: ClientId(Uuid::from_u128(1)),
                payment_id: Uuid::from_u128(3),
                at: at(8),
                event: payment::Event::PaymentSucceeded,
            },
            &policy,
        );
        assert_eq!(s, Some(State::Finished));
    }

    #[test]
    fn unanswered_calls_back_off_and_past_the_deadline_the_order_is_voided() {
        let policy = Policy::default();
        let mut s = Some(given_reserved());
        let mut now = at(0);
        let mut waits = Vec::new();
        loop {
            let (next, actions) = step(s, Input::Due { now }, &policy);
            s = next;
            if let Some(Action::VoidAtProvider(order)) = actions.get(1) {
                assert_eq!(order.payment_id, Uuid::from_u128(3));
                assert!(now >= at(0) + policy.deadline);
                break;
            }
            assert!(matches!(actions.get(1), Some(Action::CallProvider(_))));
            let (next, actions) = step(
                s,
                Input::Unanswered {
                    call: Call::Execute,
                    now: now + policy.attempt_timeout,
                },
                &policy,
            );
            s = next;
            let Some(Action::WakeAt(Some(t))) = actions.first() else {
                panic!("a retry is scheduled: {actions:?}");
            };
            waits.push(*t - (now + policy.attempt_timeout));
            now = *t;
        }
        assert_eq!(waits[0], policy.first_backoff);
        assert_eq!(waits[1], policy.first_backoff * 2);
        assert!(waits.iter().all(|w| *w <= policy.max_backoff));
        assert!(matches!(s, Some(State::Voiding { .. })));
        // A late answer of an execution call is not the void's answer.
        let late = Input::Answered {
            now: now + Duration::seconds(1),
            call: Call::Execute,
            outcome: Execution::Succeeded {
                provider_reference: "R".into(),
            },
        };
        let (s, actions) = step(s, late, &policy);
        assert!(actions.is_empty());
        // The void is never given up: unanswered, it is asked again with backoff.
        let mut s = s;
        for k in 0..40 {
            let t = now + Duration::minutes(k);
            let (next, _) = step(
                s,
                Input::Unanswered {
                    now: t,
                    call: Call::Void,
                },
                &policy,
            );
            let (next, actions) = step(
                next,
                Input::Due {
                    now: t + policy.max_backoff,
                },
                &policy,
            );
            assert!(
                matches!(actions.get(1), Some(Action::VoidAtProvider(_))),
                "{actions:?}"
            );
            s = next;
        }
        // Executed meanwhile: the provider's void answers the execution, which is recorded.
        let executed = Execution::Succeeded {
            provider_reference: "SIM-3".into(),
        };
        let (s, actions) = step(
            s,
            Input::Answered {
                now: now + Duration::hours(1),
                call: Call::Void,
                outcome: executed.clone(),
            },
            &policy,
        );
        assert_eq!(
            s,
            Some(State::Recorded {
                order: match given_reserved() {
                    State::Reserved { order, .. } => order,
                    other => panic!("{other:?}"),
                },
                outcome: executed.clone(),
            })
        );
        assert!(matches!(
            &actions[1],
            Action::Issue {
                command: Command::Payment {
                    command: crate::payment::Command::Execute { outcome },
                    ..
                },
                ..
            } if *outcome == executed
        ));
    }

    /// A transfer has no provider: not debited by the deadline, it is failed.
    #[test]
    fn a_transfer_not_debited_by_the_deadline_is_failed() {
        let policy = Policy::default();
        let Some(State::Reserved {
            order, reserved_at, ..
        }) = Some(given_reserved())
        else {
            panic!("reserved");
        };
        let order = Order {
            recipient: Some(payment::Recipient {
                client_id: ClientId(Uuid::from_u128(7)),
                wallet_id: Uuid::from_u128(8),
                order_id: None,
            }),
            ..order
        };
        let s = State::Reserved {
            order,
            reserved_at,
            attempts: 3,
        };
        let (s, actions) = step(
            Some(s),
            Input::Due {
                now: at(0) + policy.deadline,
            },
            &policy,
        );
        assert!(matches!(
            s,
            Some(State::Recorded {
                outcome: Execution::Failed { .. },
                ..
            })
        ));
        assert!(matches!(&actions[1], Action::Issue { step, .. } if step == "execute"));
    }

    #[test]
    fn an_unconfirmed_payment_is_cancelled_after_the_timeout_and_a_confirmed_one_goes_on() {
        let policy = Policy::default();
        let client_id = ClientId(Uuid::from_u128(1));
        let payment_id = Uuid::from_u128(3);
        let ev = |event, t| Input::Event {
            client_id,
            payment_id,
            at: at(t),
            event,
        };
        let initiated = payment::Event::PaymentInitiated {
            commission: None,
            payment_id,
            wallet_id: Uuid::from_u128(2),
            amount: Money::new(Decimal::new(9_000_000, 2), Currency::Rub),
            service_id: "mobile".into(),
            attributes: Default::default(),
            recipient: None,
            card: None,
        };
        let requested = payment::Event::PaymentConfirmationRequested {
            threshold: Money::new(Decimal::new(5_000_000, 2), Currency::Rub),
        };
        let (s, _) = step(None, ev(initiated, 0), &policy);
        let (waiting, actions) = step(s, ev(requested, 0), &policy);
        let expires = at(0) + policy.confirmation_timeout;
        assert_eq!(actions, vec![Action::WakeAt(Some(expires))]);
        // An early wake-up waits on.
        let (s, actions) = step(waiting.clone(), Input::Due { now: at(1) }, &policy);
        assert_eq!(actions, vec![Action::WakeAt(Some(expires))]);
        // Past the timeout: cancelled, under one step id however often it wakes.
        let (s, actions) = step(s, Input::Due { now: expires }, &policy);
        assert!(matches!(
            &actions[1],
            Action::Issue {
                step,
                command: Command::Payment {
                    command: payment::Command::ExpireConfirmation,
                    ..
                }
            } if step == "confirmation-expired"
        ));
        let (s, _) = step(
            s,
            ev(
                payment::Event::PaymentCancelled {
                    reason: "not confirmed in time".into(),
                },
                400,
            ),
            &policy,
        );
        assert_eq!(s, Some(State::Finished));
        // Confirmed in time: back to waiting for the reservation, no timer.
        let (s, actions) = step(waiting, ev(payment::Event::PaymentConfirmed, 10), &policy);
        assert_eq!(actions, vec![Action::WakeAt(None)]);
        assert!(matches!(s, Some(State::Initiated { .. })));
    }

    #[test]
    fn a_cancellation_sent_to_processing_calls_the_provider_and_records_its_answer_once() {
        let policy = Policy::default();
        let client_id = ClientId(Uuid::from_u128(1));
        let payment_id = Uuid::from_u128(3);
        let request_id = Uuid::from_u128(9);
        let sent = Input::Event {
            client_id,
            payment_id,
            at: at(100),
            event: payment::Event::CancellationSentToProcessing {
                request_id,
                wallet_id: Uuid::from_u128(2),
                amount: Money::new(Decimal::new(10_000, 2), Currency::Rub),
                service_id: "mobile".into(),
                provider_reference: "SIM-1".into(),
            },
        };
        let (s, actions) = step(Some(State::Finished), sent, &policy);
        assert_eq!(actions, vec![Action::WakeAt(Some(at(100)))]);
        let (s, actions) = step(s, Input::Due { now: at(100) }, &policy);
        assert!(matches!(
            actions.last(),
            Some(Action::CallProviderCancel { request_id: r, provider_reference, .. })
                if *r == request_id && provider_reference == "SIM-1"
        ));
        let (s, actions) = step(
            s,
            Input::Answered {
                call: Call::Reverse { request_id },
                now: at(101),
                outcome: Execution::Succeeded {
                    provider_reference: "REV-1".into(),
                },
            },
            &policy,
        );
        assert!(matches!(
            &actions[1],
            Action::Issue {
                step,
                command: Command::Payment {
                    command: payment::Command::RecordCancellation { .. },
                    ..
                }
            } if step == &format!("cancellation/{request_id}")
        ));
        let (_, again) = step(s.clone(), Input::Due { now: at(110) }, &policy);
        assert_eq!(again[1], actions[1]);
        let (s, _) = step(
            s,
            Input::Event {
                client_id,
                payment_id,
                at: at(111),
                event: payment::Event::CancellationSucceeded {
                    request_id,
                    reference: "REV-1".into(),
                },
            },
            &policy,
        );
        assert_eq!(s, Some(State::Finished));
    }

    #[test]
    fn a_card_payment_is_authorised_executed_and_its_authorisation_captured_once_the_bank_answers()
    {
        let policy = Policy::default();
        let client_id = ClientId(Uuid::from_u128(1));
        let payment_id = Uuid::from_u128(3);
        let ev = |event, t| Input::Event {
            client_id,
            payment_id,
            at: at(t),
            event,
        };
        let charged = Money::new(Decimal::new(10_150, 2), Currency::Rub);
        let (s, _) = step(
            None,
            ev(
                payment::Event::PaymentInitiated {
                    commission: Some(Money::new(Decimal::new(150, 2), Currency::Rub)),
                    payment_id,
                    wallet_id: Uuid::from_u128(2),
                    amount: Money::new(Decimal::new(10_000, 2), Currency::Rub),
                    service_id: "mobile".into(),
                    attributes: Default::default(),
                    recipient: None,
                    card: Some(payment::CardSource {
                        card_id: Uuid::from_u128(7),
                        masked_pan: "411111******1111".into(),
                        token: "tok-7".into(),
                    }),
                },
                0,
            ),
            &policy,
        );
        let (s, actions) = step(
            s,
            ev(
                payment::Event::CardAuthorisationRequested {
                    amount: charged,
                    limit_day: time::macros::date!(2027 - 01 - 15),
                },
                0,
            ),
            &policy,
        );
        assert_eq!(actions, vec![Action::WakeAt(Some(at(0)))]);
        // Due: the bank is asked with the token for the amount with its commission.
        let (s, actions) = step(s, Input::Due { now: at(0) }, &policy);
        assert_eq!(
            actions[1],
            Action::AuthoriseCard(CardPayment {
                payment_id,
                card: CardCredentials::Bound {
                    token: "tok-7".into()
                },
                amount: charged,
            })
        );
        let (s, actions) = step(
            s,
            Input::Answered {
                call: Call::Authorise,
                now: at(1),
                outcome: Execution::Succeeded {
                    provider_reference: "auth-9".into(),
                },
            },
            &policy,
        );
        assert!(matches!(
            &actions[1],
            Action::Issue { step, command: Command::Payment { command: payment::Command::RecordCardAuthorisation { .. }, .. } } if step == "authorisation"
        ));
        let (s, _) = step(
            s,
            ev(
                payment::Event::CardAuthorised {
                    authorisation_id: "auth-9".into(),
                },
                2,
            ),
            &policy,
        );
        let (s, _) = step(
            s,
            ev(
                payment::Event::PaymentReserved {
                    amount: charged,
                    limit_day: None,
                },
                2,
            ),
            &policy,
        );
        let (s, actions) = step(s, Input::Due { now: at(2) }, &policy);
        assert!(matches!(actions[1], Action::CallProvider(_)));
        let (s, _) = step(
            s,
            Input::Answered {
                call: Call::Execute,
                now: at(3),
                outcome: Execution::Succeeded {
                    provider_reference: "sim-1".into(),
                },
            },
            &policy,
        );
        let (s, _) = step(s, ev(payment::Event::PaymentExecutionStarted, 4), &policy);
        let (s, actions) = step(
            s,
            ev(
                payment::Event::PaymentExecuted {
                    provider_reference: "sim-1".into(),
                },
                4,
            ),
            &policy,
        );
        assert_eq!(actions, vec![Action::WakeAt(Some(at(4)))]);
        // The capture is asked until the bank answers.
        let capture = Action::SettleCard {
            authorisation_id: "auth-9".into(),
            capture: true,
        };
        let (s, actions) = step(s, Input::Due { now: at(4) }, &policy);
        assert_eq!(actions[1], capture);
        let (s, actions) = step(
            s,
            Input::Unanswered {
                now: at(9),
                call: Call::Settle,
            },
            &policy,
        );
        assert_eq!(
            actions,
            vec![Action::WakeAt(Some(at(9) + backoff(&policy, 1)))]
        );
        let (s, actions) = step(s, Input::Due { now: at(10) }, &policy);
        assert_eq!(actions[1], capture);
        let (s, actions) = step(
            s,
            Input::Answered {
                call: Call::Settle,
                now: at(11),
                outcome: Execution::Succeeded {
                    provider_reference: "auth-9".into(),
                },
            },
            &policy,
        );
        assert!(matches!(
            &actions[1],
            Action::Issue { step, command: Command::Payment { command: payment::Command::RecordCardSettlement, .. } } if step == "settlement"
        ));
        let (s, _) = step(
            s,
            ev(payment::Event::CardAuthorisationCaptured, 12),
            &policy,
        );
        let (s, _) = step(s, ev(payment::Event::PaymentSucceeded, 12), &policy);
        assert_eq!(s, Some(State::Finished));
    }

    #[test]
    fn final_events_finish_the_process_and_late_answers_change_nothing() {
        let policy = Policy::default();
        let (s, _) = step(
            Some(given_reserved()),
            Input::Event {
                client_id: ClientId(Uuid::from_u128(1)),
                payment_id: Uuid::from_u128(3),
                at: at(2),
                event: payment::Event::PaymentSucceeded,
            },
            &policy,
        );
        assert_eq!(s, Some(State::Finished));
        let (s, actions) = step(
            s,
            Input::Answered {
                call: Call::Execute,
                now: at(3),
                outcome: Execution::Failed {
                    reason: "late".into(),
                },
            },
            &policy,
        );
        assert_eq!(s, Some(State::Finished));
        assert!(actions.is_empty());
    }

    /// An answer is stepped only as the answer of the call it belongs to: the bank's
    /// authorisation answered again once the payment is reserved, or the provider's execution
    /// answered again once the card is being settled, changes nothing.
    #[test]
    fn an_answer_of_another_call_changes_nothing() {
        let policy = Policy::default();
        let reserved = Some(given_reserved());
        let (s, actions) = step(reserved.clone(), Input::Due { now: at(0) }, &policy);
        assert!(matches!(actions.last(), Some(Action::CallProvider(_))));
        let call = actions.last().and_then(Action::call);
        assert_eq!(call, Some(Call::Execute));
        for other in [
            Call::Authorise,
            Call::Settle,
            Call::Credit,
            Call::Reverse {
                request_id: Uuid::from_u128(9),
            },
        ] {
            let (after, actions) = step(
                s.clone(),
                Input::Answered {
                    now: at(1),
                    call: other,
                    outcome: Execution::Succeeded {
                        provider_reference: "auth-1".into(),
                    },
                },
                &policy,
            );
            assert_eq!(after, s, "{other:?}");
            assert!(actions.is_empty(), "{other:?}: {actions:?}");
            let (after, actions) = step(
                s.clone(),
                Input::Unanswered {
                    now: at(1),
                    call: other,
                },
                &policy,
            );
            assert_eq!(after, s, "{other:?}");
            assert!(actions.is_empty(), "{other:?}: {actions:?}");
        }
        // The provider's own answer is recorded.
        let (after, _) = step(
            s,
            Input::Answered {
                now: at(1),
                call: Call::Execute,
                outcome: Execution::Succeeded {
                    provider_reference: "R".into(),
                },
            },
            &policy,
        );
        assert!(matches!(after, Some(State::Recorded { .. })));
    }
}
