//! The loan conveyor's process manager (seed 000, sections 1, 6.1.4–6.1.5): a pure state
//! machine that follows one application from submission to disbursement.
//!
//! `step(state, input, policy) -> (state, actions)`. The runner in `sagas` feeds it the
//! application's events (from the log), due timers and the results of the slow steps it
//! performs through ports (identification, legal checks, scoring, the contract, card
//! binding, the payout), and executes the actions it returns: perform an activity, issue a
//! command under a deterministic id, set a timer, send a notification, or park a poison step
//! in the dead-letter table.
//!
//! Every activity's result is stored in the state (`Record`) before the command that
//! records it is issued, so a crash repeats the same command (same id, same body) and the
//! command side answers it with its first outcome: no step is recorded twice.

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::application::{Command, Contract, Event, Identification, Scoring, Verdict};
use crate::ids::ClientId;

/// The process name (`process_instances.process`, the command-id namespace).
pub const PROCESS: &str = "loan-conveyor";

/// Timings of the conveyor (configuration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// How long an approval waits for the signature before it expires.
    pub sign_within: Duration,
    /// How long an activity may run before it is tried again (a lease: a runner that died
    /// mid-activity is replaced after this).
    pub attempt_timeout: Duration,
    /// The wait after the first transient failure; doubled after each, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts of an activity before it counts as failed for good.
    pub max_attempts: u32,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            sign_within: Duration::days(3),
            attempt_timeout: Duration::seconds(30),
            first_backoff: Duration::milliseconds(500),
            max_backoff: Duration::seconds(60),
            max_attempts: 5,
        }
    }
}

/// A slow step performed through ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "activity", rename_all = "snake_case")]
pub enum Activity {
    Identify,
    LegalChecks,
    Score,
    GenerateContract,
    BindCard { binding_id: Uuid },
    Payout,
}

impl Activity {
    /// The step name in the command id `platform:loan-conveyor/<application>/<step>`.
    pub fn step(&self) -> String {
        match self {
            Activity::Identify => "identification".into(),
            Activity::LegalChecks => "legal-checks".into(),
            Activity::Score => "scoring".into(),
            Activity::GenerateContract => "contract".into(),
            Activity::BindCard { binding_id } => format!("card-binding/{binding_id}"),
            Activity::Payout => "disbursement".into(),
        }
    }
}

/// What an activity found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    Identification(Identification),
    LegalChecks(Verdict),
    Scoring(Scoring),
    Contract(Contract),
    CardBinding {
        binding_id: Uuid,
        failure: Option<String>,
    },
    PaidOut {
        loan_id: Uuid,
        reference: String,
    },
    PayoutFailed {
        reason: String,
    },
}

impl Outcome {
    /// The application command that records the outcome.
    pub fn command(&self) -> Command {
        match self {
            Outcome::Identification(outcome) => Command::RecordIdentification {
                outcome: outcome.clone(),
            },
            Outcome::LegalChecks(outcome) => Command::RecordLegalChecks {
                outcome: outcome.clone(),
            },
            Outcome::Scoring(outcome) => Command::RecordScoring {
                outcome: outcome.clone(),
            },
            Outcome::Contract(contract) => Command::RecordContract {
                contract: contract.clone(),
            },
            Outcome::CardBinding {
                binding_id,
                failure,
            } => Command::RecordCardBinding {
                binding_id: *binding_id,
                failure: failure.clone(),
            },
            Outcome::PaidOut { loan_id, reference } => Command::RecordDisbursement {
                loan_id: *loan_id,
                payout_reference: reference.clone(),
            },
            Outcome::PayoutFailed { reason } => Command::RecordPayoutFailure {
                reason: reason.clone(),
            },
        }
    }
}

/// Where an instance is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum Stage {
    /// An activity is due or running.
    Perform {
        activity: Activity,
    },
    /// An activity's outcome is being recorded as `step`.
    Record {
        step: String,
        outcome: Outcome,
    },
    /// Waiting for an operator (photo identification, a referred application).
    AwaitOperator,
    /// Approved: waiting for the client to choose an offer (expires at `expires_at`).
    AwaitOffer,
    /// The contract is ready: waiting for the OTP signature (expires at `expires_at`).
    AwaitSignature,
    /// Signed: waiting for a card to bind.
    AwaitCard,
    /// The expiry is being recorded.
    Expiring,
    /// An activity failed for good and went to the dead-letter table.
    Parked {
        reason: String,
    },
    Done,
}

impl Stage {
    /// What the instance waits for, as a client app shows it.
    pub fn label(&self) -> &'static str {
        match self {
            Stage::Perform { activity } => activity_label(Some(activity)),
            Stage::Record { .. } => "recording",
            Stage::AwaitOperator => "awaiting_operator",
            Stage::AwaitOffer => "awaiting_offer_choice",
            Stage::AwaitSignature => "awaiting_signature",
            Stage::AwaitCard => "awaiting_card",
            Stage::Expiring => "expiring",
            Stage::Parked { .. } => "parked",
            Stage::Done => "done",
        }
    }
}

fn activity_label(activity: Option<&Activity>) -> &'static str {
    match activity {
        Some(Activity::Identify) => "identification",
        Some(Activity::LegalChecks) => "legal_checks",
        Some(Activity::Score) => "scoring",
        Some(Activity::GenerateContract) => "contract_generation",
        Some(Activity::BindCard { .. }) => "card_binding",
        Some(Activity::Payout) | None => "disbursement",
    }
}

/// One conveyor run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    pub application_id: Uuid,
    pub client_id: ClientId,
    pub stage: Stage,
    /// Attempts of the current activity.
    pub attempts: u32,
    #[serde(with = "crate::time_serde::rfc3339_option", default)]
    pub expires_at: Option<OffsetDateTime>,
    pub last_error: Option<String>,
    /// Operator reviews resolved so far: a stage taken again after a review records its
    /// outcome under a new step (`scoring/review-1`), never under the step whose first
    /// outcome the command side would answer again.
    #[serde(default)]
    pub reviews: u32,
}

impl State {
    /// The command-id step under which the outcome of `activity` is recorded in this run.
    pub fn step_of(&self, activity: &Activity) -> String {
        if self.reviews == 0 {
            activity.step()
        } else {
            format!("{}/review-{}", activity.step(), self.reviews)
        }
    }
}

/// What moves an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// An event of the application, from the log.
    Event {
        client_id: ClientId,
        application_id: Uuid,
        at: OffsetDateTime,
        event: Event,
    },
    /// The instance's timer is due.
    Due { now: OffsetDateTime },
    /// The current activity finished with an outcome.
    Performed {
        now: OffsetDateTime,
        activity: Activity,
        outcome: Outcome,
    },
    /// The current activity failed: `transient` failures (a timeout, an unavailable port)
    /// are retried with backoff; a definite one ends the activity.
    Failed {
        now: OffsetDateTime,
        activity: Activity,
        transient: bool,
        reason: String,
    },
    /// The command of step `step` was answered (accepted or refused).
    Recorded { step: String },
}

/// What the runner does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Perform(Activity),
    Issue {
        step: String,
        command: Command,
    },
    WakeAt(OffsetDateTime),
    ClearTimer,
    /// Tell the client (through the notification port).
    Notify {
        text: String,
    },
    /// Park the instance in the dead-letter table with the reason.
    DeadLetter {
        reason: String,
    },
}

fn backoff(policy: &Policy, attempts: u32) -> Duration {
    let mut wait = policy.first_backoff;
    for _ in 1..attempts {
        wait *= 2;
        if wait >= policy.max_backoff {
            return policy.max_backoff;
        }
    }
    wait.min(policy.max_backoff)
}

fn perform(mut state: State, activity: Activity, at: OffsetDateTime) -> (State, Vec<Action>) {
    state.stage = Stage::Perform { activity };
    state.attempts = 0;
    state.last_error = None;
    (state, vec![Action::WakeAt(at)])
}

/// Moves an instance. `None` in and out: no instance (an application that was never
/// submitted has none).
pub fn step(state: Option<State>, input: Input, policy: &Policy) -> (Option<State>, Vec<Action>) {
    match input {
        Input::Event {
            client_id,
            application_id,
            at,
            event,
        } => {
            let state = match (state, &event) {
                (Some(s), _) => s,
                (None, Event::ApplicationSubmitted { .. }) => State {
                    application_id,
                    client_id,
                    stage: Stage::AwaitOperator,
                    attempts: 0,
                    expires_at: None,
                    last_error: None,
                    reviews: 0,
                },
                (None, _) => return (None, Vec::new()),
            };
            let (state, actions) = on_event(state, &event, at);
            (Some(state), actions)
        }
        Input::Due { now } => match state {
            Some(s) => {
                let (s, a) = on_due(s, now, policy);
                (Some(s), a)
            }
            None => (None, Vec::new()),
        },
        Input::Performed {
            now,
            activity,
            outcome,
        } => match state {
            Some(s)
                if s.stage
                    == (Stage::Perform {
                        activity: activity.clone(),
                    }) =>
            {
                let step = s.step_of(&activity);
                let (s, a) = record(s, step, outcome, now, policy);
                (Some(s), a)
            }
            other => (other, Vec::new()),
        },
        Input::Failed {
            now,
            activity,
            transient,
            reason,
        } => match state {
            Some(s)
                if s.stage
                    == (Stage::Perform {
                        activity: activity.clone(),
                    }) =>
            {
                let (s, a) = on_failure(s, activity, transient, reason, now, policy);
                (Some(s), a)
            }
            other => (other, Vec::new()),
        },
        Input::Recorded { step } => match state {
            Some(mut s) => {
                let recorded = match &s.stage {
                    Stage::Record { step: current, .. } => *current == step,
                    Stage::Expiring => step == "expire",
                    _ => false,
                };
                if recorded {
                    // The event the command wrote moves the instance on; until then
                    // nothing is due.
                    s.last_error = None;
                    (Some(s), vec![Action::ClearTimer])
                } else {
                    (Some(s), Vec::new())
                }
            }
            None => (None, Vec::new()),
        },
    }
}

fn record(
    mut state: State,
    step: String,
    outcome: Outcome,
    now: OffsetDateTime,
    policy: &Policy,
) -> (State, Vec<Action>) {
    let command = outcome.command();
    state.stage = Stage::Record {
        step: step.clone(),
        outcome,
    };
    (
        state,
        vec![
            Action::WakeAt(now + policy.attempt_timeout),
            Action::Issue { step, command },
        ],
    )
}

fn on_event(mut state: State, event: &Event, at: OffsetDateTime) -> (State, Vec<Action>) {
    match event {
        Event::ApplicationCreated { .. } | Event::GoodsHandedOver => (state, Vec::new()),
        Event::ApplicationSubmitted { .. } => perform(state, Activity::Identify, at),
        Event::ClientIdentified { .. } => perform(state, Activity::LegalChecks, at),
        Event::ReviewResolved { stage, .. } => {
            state.reviews += 1;
            let next = if stage == "identification" {
                Activity::LegalChecks
            } else {
                Activity::Score
            };
            perform(state, next, at)
        }
        Event::LegalChecksPassed => perform(state, Activity::Score, at),
        Event::IdentificationReferred { .. } | Event::ApplicationReferred { .. } => {
            state.stage = Stage::AwaitOperator;
            (state, vec![Action::ClearTimer])
        }
        Event::ApplicationApproved { expires_at, .. } => {
            state.stage = Stage::AwaitOffer;
            state.expires_at = Some(*expires_at);
            (state, vec![Action::WakeAt(*expires_at)])
        }
        Event::OfferChosen { .. } => perform(state, Activity::GenerateContract, at),
        Event::ContractGenerated { .. } => {
            state.stage = Stage::AwaitSignature;
            let actions = state
                .expires_at
                .map_or(vec![Action::ClearTimer], |t| vec![Action::WakeAt(t)]);
            (state, actions)
        }
        Event::ContractSigned { .. } => {
            state.stage = Stage::AwaitCard;
            (state, vec![Action::ClearTimer])
        }
        Event::CardBindingRequested { binding_id, .. } => perform(
            state,
            Activity::BindCard {
                binding_id: *binding_id,
            },
            at,
        ),
        Event::CardBindingFailed { reason, .. } => {
            state.stage = Stage::AwaitCard;
            (
                state,
                vec![
                    Action::ClearTimer,
                    Action::Notify {
                        text: format!("Карта не привязана: {reason}. Привяжите другую карту."),
                    },
                ],
            )
        }
        Event::ApplicationCardBound { .. } => perform(state, Activity::Payout, at),
        Event::DisbursementFailed { reason, .. } => {
            state.stage = Stage::Done;
            (
                state,
                vec![
                    Action::ClearTimer,
                    Action::Notify {
                        text: format!("Выдача займа не удалась ({reason}); договор аннулирован."),
                    },
                ],
            )
        }
        Event::LoanDisbursed { .. } => {
            state.stage = Stage::Done;
            (
                state,
                vec![
                    Action::ClearTimer,
                    Action::Notify {
                        text: "Заём выдан: деньги отправлены на вашу карту.".into(),
                    },
                ],
            )
        }
        Event::IdentificationFailed { .. }
        | Event::ApplicationDeclined { .. }
        | Event::ApplicationCancelled { .. }
        | Event::ApplicationExpired => {
            state.stage = Stage::Done;
            (state, vec![Action::ClearTimer])
        }
    }
}

fn on_due(mut state: State, now: OffsetDateTime, policy: &Policy) -> (State, Vec<Action>) {
    match state.stage.clone() {
        Stage::Perform { activity } => {
            state.attempts += 1;
            (
                state,
                vec![
                    Action::WakeAt(now + policy.attempt_timeout),
                    Action::Perform(activity),
                ],
            )
        }
        Stage::Record { step, outcome } => (
            state,
            vec![
                Action::WakeAt(now + policy.attempt_timeout),
                Action::Issue {
                    step,
                    command: outcome.command(),
                },
            ],
        ),
        Stage::AwaitOffer | Stage::AwaitSignature | Stage::Expiring => match state.expires_at {
            Some(deadline) if now >= deadline => {
                state.stage = Stage::Expiring;
                (
                    state,
                    vec![
                        Action::WakeAt(now + policy.attempt_timeout),
                        Action::Issue {
                            step: "expire".into(),
                            command: Command::ExpireApplication,
                        },
                    ],
                )
            }
            Some(deadline) => (state, vec![Action::WakeAt(deadline)]),
            None => (state, vec![Action::ClearTimer]),
        },
        Stage::AwaitOperator | Stage::AwaitCard | Stage::Parked { .. } | Stage::Done => {
            (state, vec![Action::ClearTimer])
        }
    }
}

fn on_failure(
    mut state: State,
    activity: Activity,
    transient: bool,
    reason: String,
    now: OffsetDateTime,
    policy: &Policy,
) -> (State, Vec<Action>) {
    state.last_error = Some(reason.clone());
    if transient && state.attempts < policy.max_attempts {
        let wait = backoff(policy, state.attempts);
        return (state, vec![Action::WakeAt(now + wait)]);
    }
    let exhausted = if transient {
        format!("{reason} (after {} attempts)", state.attempts)
    } else {
        reason
    };
    match activity {
        // Compensation: a payout that cannot be made annuls the contract and fails the
        // application; a card that cannot be bound lets the client try another.
        Activity::Payout => record(
            state,
            "payout-failure".into(),
            Outcome::PayoutFailed { reason: exhausted },
            now,
            policy,
        ),
        Activity::BindCard { binding_id } => {
            let step = state.step_of(&activity);
            record(
                state,
                step,
                Outcome::CardBinding {
                    binding_id,
                    failure: Some(exhausted),
                },
                now,
                policy,
            )
        }
        _ => {
            state.stage = Stage::Parked {
                reason: exhausted.clone(),
            };
            (
                state,
                vec![
                    Action::ClearTimer,
                    Action::DeadLetter {
                        reason: format!("{}: {exhausted}", activity.step()),
                    },
                ],
            )
        }
    }
}

/// A process version (seed 000, 6.1.5): which steps a run takes, picked by rules over the
/// client's data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub name: String,
    /// Only for clients who already had a loan (`Some(true)`), only for new ones
    /// (`Some(false)`), or for any.
    #[serde(default)]
    pub repeat_client: Option<bool>,
    /// Only for this channel (`partner`, `web`, `mobile`), or any.
    #[serde(default)]
    pub channel: Option<String>,
    /// Skip identification methods that need an operator (photo identification).
    #[serde(default)]
    pub skip_manual_identification: bool,
}

/// The rules, in order: the first version whose conditions hold is taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Versions(pub Vec<Version>);

impl Default for Versions {
    /// Repeat clients skip photo identification; everyone else takes the standard run.
    fn default() -> Self {
        Versions(vec![
            Version {
                name: "repeat-client".into(),
                repeat_client: Some(true),
                channel: None,
                skip_manual_identification: true,
            },
            Version {
                name: "standard".into(),
                repeat_client: None,
                channel: None,
                skip_manual_identification: false,
            },
        ])
    }
}

impl Versions {
    /// The version for a client: `repeat_client` when it had a loan before, `channel` of
    /// the application. `None` when no rule matches (a configuration without a catch-all).
    pub fn pick(&self, repeat_client: bool, channel: &str) -> Option<&Version> {
        self.0.iter().find(|v| {
            v.repeat_client.is_none_or(|r| r == repeat_client)
                && v.channel.as_deref().is_none_or(|c| c == channel)
        })
    }
}
