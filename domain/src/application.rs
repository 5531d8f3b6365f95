//! Loan applications (loan conveyor, seed §6.1–6.6): the lifecycle from submission to
//! disbursement. The flows that drive it (identification, scoring, contract signing) arrive
//! with later work; this module fixes the commands, the events and the state machine.
//!
//! ```text
//! Submitted ─▶ Identified ─▶ Approved ─▶ OfferChosen ─▶ ContractSigned ─▶ Disbursed
//!     │            │            │             │               │
//!     └────────────┴──▶ Declined / Cancelled ◀┴───────────────┘
//! ```

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::Error;
use crate::ids::ClientId;
use crate::money::Money;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    New,
    Submitted,
    Identified,
    Approved,
    Declined,
    OfferChosen,
    ContractSigned,
    Disbursed,
    Cancelled,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Submitted => "submitted",
            Status::Identified => "identified",
            Status::Approved => "approved",
            Status::Declined => "declined",
            Status::OfferChosen => "offer_chosen",
            Status::ContractSigned => "contract_signed",
            Status::Disbursed => "disbursed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// A product offer made after scoring.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub offer_id: Uuid,
    pub amount: Money,
    pub term_days: u32,
    /// Daily interest rate, percent (e.g. "0.8").
    pub daily_rate_percent: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Application {
    pub status: Status,
    pub id: Uuid,
    pub client_id: Option<ClientId>,
    pub requested: Option<Money>,
    pub term_days: u32,
    pub partner_id: Option<String>,
    pub offers: Vec<Offer>,
    pub chosen_offer: Option<Uuid>,
    pub loan_id: Option<Uuid>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    SubmitApplication {
        client_id: ClientId,
        requested: Money,
        term_days: u32,
        partner_id: Option<String>,
    },
    RecordIdentification {
        passed: bool,
        reason: Option<String>,
    },
    RecordScoring {
        offers: Vec<Offer>,
        decline_reason: Option<String>,
    },
    ChooseOffer {
        offer_id: Uuid,
    },
    SignContract {
        contract_id: Uuid,
    },
    RecordDisbursement {
        loan_id: Uuid,
    },
    CancelApplication {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    ApplicationSubmitted {
        application_id: Uuid,
        requested: Money,
        term_days: u32,
        partner_id: Option<String>,
    },
    ClientIdentified,
    IdentificationFailed {
        reason: String,
    },
    ApplicationApproved {
        offers: Vec<Offer>,
    },
    ApplicationDeclined {
        reason: String,
    },
    OfferChosen {
        offer_id: Uuid,
    },
    ContractSigned {
        contract_id: Uuid,
    },
    LoanDisbursed {
        loan_id: Uuid,
    },
    ApplicationCancelled {
        reason: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::ApplicationSubmitted { .. } => "ApplicationSubmitted",
            Event::ClientIdentified => "ClientIdentified",
            Event::IdentificationFailed { .. } => "IdentificationFailed",
            Event::ApplicationApproved { .. } => "ApplicationApproved",
            Event::ApplicationDeclined { .. } => "ApplicationDeclined",
            Event::OfferChosen { .. } => "OfferChosen",
            Event::ContractSigned { .. } => "ContractSigned",
            Event::LoanDisbursed { .. } => "LoanDisbursed",
            Event::ApplicationCancelled { .. } => "ApplicationCancelled",
        }
    }
}

fn refuse(state: &Application, action: &'static str) -> Error {
    Error::InvalidTransition {
        aggregate: "application",
        id: state.id,
        action,
        status: state.status.label().into(),
    }
}

pub fn decide(state: &Application, id: Uuid, command: &Command) -> Result<Vec<Event>, Error> {
    use Status as S;
    let event = match (state.status, command) {
        (
            S::New,
            Command::SubmitApplication {
                requested,
                term_days,
                partner_id,
                ..
            },
        ) => {
            if !(1..=365).contains(term_days) {
                return Err(Error::Invalid("term_days must be between 1 and 365".into()));
            }
            Event::ApplicationSubmitted {
                application_id: id,
                requested: *requested,
                term_days: *term_days,
                partner_id: partner_id.clone(),
            }
        }
        (S::Submitted, Command::RecordIdentification { passed: true, .. }) => {
            Event::ClientIdentified
        }
        (
            S::Submitted,
            Command::RecordIdentification {
                passed: false,
                reason,
            },
        ) => Event::IdentificationFailed {
            reason: reason
                .clone()
                .unwrap_or_else(|| "identification failed".into()),
        },
        (
            S::Identified,
            Command::RecordScoring {
                offers,
                decline_reason,
            },
        ) => match (offers.is_empty(), decline_reason) {
            (_, Some(reason)) => Event::ApplicationDeclined {
                reason: reason.clone(),
            },
            (true, None) => Event::ApplicationDeclined {
                reason: "no suitable offer".into(),
            },
            (false, None) => Event::ApplicationApproved {
                offers: offers.clone(),
            },
        },
        (S::Approved, Command::ChooseOffer { offer_id }) => {
            if !state.offers.iter().any(|o| o.offer_id == *offer_id) {
                return Err(Error::Invalid(format!("offer {offer_id} was not made")));
            }
            Event::OfferChosen {
                offer_id: *offer_id,
            }
        }
        (S::OfferChosen, Command::SignContract { contract_id }) => Event::ContractSigned {
            contract_id: *contract_id,
        },
        (S::ContractSigned, Command::RecordDisbursement { loan_id }) => {
            Event::LoanDisbursed { loan_id: *loan_id }
        }
        (
            S::Submitted | S::Identified | S::Approved | S::OfferChosen | S::ContractSigned,
            Command::CancelApplication { reason },
        ) => Event::ApplicationCancelled {
            reason: reason.clone(),
        },
        (S::New, _) => return Err(Error::Invalid(format!("application {id} does not exist"))),
        (_, c) => {
            return Err(refuse(
                state,
                match c {
                    Command::SubmitApplication { .. } => "be submitted",
                    Command::RecordIdentification { .. } => "record identification",
                    Command::RecordScoring { .. } => "record scoring",
                    Command::ChooseOffer { .. } => "choose an offer",
                    Command::SignContract { .. } => "sign the contract",
                    Command::RecordDisbursement { .. } => "record disbursement",
                    Command::CancelApplication { .. } => "be cancelled",
                },
            ))
        }
    };
    Ok(vec![event])
}

pub fn evolve(mut state: Application, client: ClientId, event: &Event) -> Application {
    match event {
        Event::ApplicationSubmitted {
            application_id,
            requested,
            term_days,
            partner_id,
        } => {
            state.id = *application_id;
            state.client_id = Some(client);
            state.requested = Some(*requested);
            state.term_days = *term_days;
            state.partner_id = partner_id.clone();
            state.status = Status::Submitted;
        }
        Event::ClientIdentified => state.status = Status::Identified,
        Event::IdentificationFailed { reason } | Event::ApplicationDeclined { reason } => {
            state.reason = Some(reason.clone());
            state.status = Status::Declined;
        }
        Event::ApplicationApproved { offers } => {
            state.offers = offers.clone();
            state.status = Status::Approved;
        }
        Event::OfferChosen { offer_id } => {
            state.chosen_offer = Some(*offer_id);
            state.status = Status::OfferChosen;
        }
        Event::ContractSigned { .. } => state.status = Status::ContractSigned,
        Event::LoanDisbursed { loan_id } => {
            state.loan_id = Some(*loan_id);
            state.status = Status::Disbursed;
        }
        Event::ApplicationCancelled { reason } => {
            state.reason = Some(reason.clone());
            state.status = Status::Cancelled;
        }
    }
    state
}
