//! Loan applications (seed 000, sections 1 and 6.13.2): the loan conveyor's lifecycle from a
//! draft to a disbursed loan. The process manager [`crate::conveyor`] drives it; partners,
//! clients and operators send the commands that need a person.
//!
//! ```text
//! Draft ─submit─▶ Submitted ─identified─▶ Identified ─checks passed─▶ Checked ─scored─▶ Approved
//!                   │  └─photo check─▶ ManualReview ◀─referred─┘             │ │         │ choose
//!                   ▼                       │ resolved                       │ ▼         ▼
//!                Declined ◀────────────────┴──────────────── declined ──────┘ …    OfferChosen
//!   OfferChosen ─contract─▶ ContractGenerated ─OTP signature─▶ Signed ─card─▶ CardBinding
//!   CardBinding ─bound─▶ CardBound ─payout─▶ Disbursed (loan issued)   │ failed ─▶ Signed
//!   CardBound ─payout failed─▶ Failed (contract annulled)
//!   any open status before CardBound ─▶ Cancelled;  Approved … ContractGenerated ─timer─▶ Expired
//! ```
//!
//! One open application per client: creating one records `ApplicationOpened` on the client
//! and is refused while another is open; every end (`Disbursed`, `Declined`, `Cancelled`,
//! `Expired`, `Failed`) records `ApplicationClosed`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::client::{self, BoundCard};
use crate::command::{AggregateKind, AggregateRef, Context, Event as AnyEvent, State, States};
use crate::error::Error;
use crate::ids::ClientId;
use crate::loan;
use crate::money::Money;
use crate::schedule::Instalment;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    New,
    Draft,
    Submitted,
    Identified,
    Checked,
    ManualReview,
    Approved,
    OfferChosen,
    ContractGenerated,
    Signed,
    CardBinding,
    CardBound,
    Disbursed,
    Declined,
    Cancelled,
    Expired,
    Failed,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Draft => "draft",
            Status::Submitted => "submitted",
            Status::Identified => "identified",
            Status::Checked => "checked",
            Status::ManualReview => "manual_review",
            Status::Approved => "approved",
            Status::OfferChosen => "offer_chosen",
            Status::ContractGenerated => "contract_generated",
            Status::Signed => "signed",
            Status::CardBinding => "card_binding",
            Status::CardBound => "card_bound",
            Status::Disbursed => "disbursed",
            Status::Declined => "declined",
            Status::Cancelled => "cancelled",
            Status::Expired => "expired",
            Status::Failed => "failed",
        }
    }

    /// Whether the application has reached an end.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Status::Disbursed
                | Status::Declined
                | Status::Cancelled
                | Status::Expired
                | Status::Failed
        )
    }
}

/// A line of a partner's cart (point-of-sale loans).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CartItem {
    pub name: String,
    pub quantity: u32,
    /// Price of one item.
    pub price: Money,
}

/// An offer made after scoring: a product at an amount and term with its preliminary
/// schedule and PSK, computed by [`crate::product::offer`]. Amounts in roubles with kopecks;
/// `psk_percent` has 3 decimals (353-FZ art. 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub offer_id: Uuid,
    pub product_id: String,
    pub amount: Money,
    /// Months or days, as `term_unit` says.
    pub term: u32,
    /// `months` or `days`.
    pub term_unit: String,
    #[serde(with = "crate::schedule::iso_date")]
    pub contract_date: Date,
    pub schedule: Vec<Instalment>,
    /// Σ interest over the term.
    pub charges: Decimal,
    pub psk_percent: Decimal,
    pub psk_money: Decimal,
    /// How the loan is serviced once issued (absent on offers made before servicing).
    #[serde(default)]
    pub servicing: Option<crate::loan::Servicing>,
}

/// The contract generated for the chosen offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub contract_id: Uuid,
    /// Lowercase hex SHA-256 of the document the client signs.
    pub document_sha256: String,
    /// Where the document is stored.
    pub location: String,
    pub template: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Application {
    pub status: Status,
    pub id: Uuid,
    pub client_id: Option<ClientId>,
    pub product_id: Option<String>,
    pub requested: Option<Money>,
    pub term: u32,
    pub partner_id: Option<String>,
    pub channel: String,
    pub cart: Vec<CartItem>,
    pub identification_method: Option<String>,
    /// The stage an operator is asked to review (`identification`, `legal_checks`, `scoring`).
    pub review_stage: Option<String>,
    /// Stages whose referral an operator cleared: they are not referred again.
    pub reviews_cleared: Vec<String>,
    pub reasons: Vec<String>,
    pub score: Option<u32>,
    /// PDN of the approved offers' largest payment, percent with 1 decimal.
    pub pdn_percent: Option<Decimal>,
    pub offers: Vec<Offer>,
    pub chosen_offer: Option<Uuid>,
    #[serde(with = "crate::time_serde::rfc3339_option", default)]
    pub expires_at: Option<OffsetDateTime>,
    pub contract: Option<Contract>,
    pub signed: bool,
    pub card_binding: Option<Uuid>,
    /// The card of the binding in progress.
    pub card_request: Option<BoundCard>,
    pub card: Option<BoundCard>,
    pub goods_handed_over: bool,
    pub loan_id: Option<Uuid>,
}

impl Application {
    /// The chosen offer, once there is one.
    pub fn chosen(&self) -> Option<&Offer> {
        let id = self.chosen_offer?;
        self.offers.iter().find(|o| o.offer_id == id)
    }
}

/// What identification found (seed 000, 6.11).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Identification {
    Identified {
        method: String,
    },
    /// A person has to look (photo identification): an operator task was opened.
    ManualCheck {
        method: String,
        reason: String,
        ticket_id: Uuid,
    },
    Failed {
        reasons: Vec<String>,
    },
}

/// A decision of a stage that can pass, refer to an operator or decline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verdict {
    Passed,
    ManualReview { reasons: Vec<String> },
    Declined { reasons: Vec<String> },
}

/// What scoring decided (seed 000, 6.12).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Scoring {
    Approved {
        offers: Vec<Offer>,
        score: u32,
        pdn_percent: Option<Decimal>,
        /// When the approval lapses unless the contract is signed.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    ManualReview {
        reasons: Vec<String>,
        score: u32,
        pdn_percent: Option<Decimal>,
    },
    Declined {
        reasons: Vec<String>,
        score: Option<u32>,
        pdn_percent: Option<Decimal>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateApplication {
        product_id: Option<String>,
        requested: Money,
        /// Days or months, as the product counts them.
        term: u32,
        partner_id: Option<String>,
        /// `partner`, `web` or `mobile`.
        channel: String,
        cart: Vec<CartItem>,
        /// Submit at once (no draft stage).
        submit: bool,
    },
    SubmitApplication,
    RecordIdentification {
        outcome: Identification,
    },
    RecordLegalChecks {
        outcome: Verdict,
    },
    RecordScoring {
        outcome: Scoring,
    },
    /// An operator's decision on a referred application.
    ResolveReview {
        approve: bool,
        reason: String,
    },
    ChooseOffer {
        offer_id: Uuid,
    },
    RecordContract {
        contract: Contract,
    },
    /// A simple electronic signature: a verified one-time code bound to the document hash.
    SignContract {
        document_sha256: String,
        /// The OTP purpose whose code was verified.
        otp_purpose: String,
    },
    BindCard {
        binding_id: Uuid,
        provider: String,
        card_token: String,
        masked_pan: String,
    },
    RecordCardBinding {
        binding_id: Uuid,
        /// `None` when the card was bound, else the reason it was not.
        failure: Option<String>,
    },
    ConfirmGoodsHandedOver,
    RecordDisbursement {
        loan_id: Uuid,
        payout_reference: String,
    },
    RecordPayoutFailure {
        reason: String,
    },
    CancelApplication {
        reason: String,
    },
    ExpireApplication,
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateApplication { .. } => "CreateApplication",
            Command::SubmitApplication => "SubmitApplication",
            Command::RecordIdentification { .. } => "RecordIdentification",
            Command::RecordLegalChecks { .. } => "RecordLegalChecks",
            Command::RecordScoring { .. } => "RecordScoring",
            Command::ResolveReview { .. } => "ResolveReview",
            Command::ChooseOffer { .. } => "ChooseOffer",
            Command::RecordContract { .. } => "RecordContract",
            Command::SignContract { .. } => "SignContract",
            Command::BindCard { .. } => "BindCard",
            Command::RecordCardBinding { .. } => "RecordCardBinding",
            Command::ConfirmGoodsHandedOver => "ConfirmGoodsHandedOver",
            Command::RecordDisbursement { .. } => "RecordDisbursement",
            Command::RecordPayoutFailure { .. } => "RecordPayoutFailure",
            Command::CancelApplication { .. } => "CancelApplication",
            Command::ExpireApplication => "ExpireApplication",
        }
    }

    /// Aggregates besides the application and its client that the command touches.
    pub fn other_targets(&self) -> Vec<AggregateRef> {
        match self {
            Command::RecordDisbursement { loan_id, .. } => vec![AggregateRef {
                kind: AggregateKind::Loan,
                id: *loan_id,
            }],
            _ => Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    ApplicationCreated {
        application_id: Uuid,
        product_id: Option<String>,
        requested: Money,
        term: u32,
        partner_id: Option<String>,
        channel: String,
        cart: Vec<CartItem>,
    },
    ApplicationSubmitted {
        application_id: Uuid,
    },
    ClientIdentified {
        method: String,
    },
    IdentificationReferred {
        method: String,
        reason: String,
        ticket_id: Uuid,
    },
    IdentificationFailed {
        reasons: Vec<String>,
    },
    LegalChecksPassed,
    /// Sent to an operator: `stage` is `identification`, `legal_checks` or `scoring`.
    ApplicationReferred {
        stage: String,
        reasons: Vec<String>,
        score: Option<u32>,
        pdn_percent: Option<Decimal>,
    },
    ReviewResolved {
        stage: String,
        approved: bool,
        reason: String,
    },
    ApplicationApproved {
        offers: Vec<Offer>,
        score: u32,
        pdn_percent: Option<Decimal>,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    ApplicationDeclined {
        stage: String,
        reasons: Vec<String>,
        score: Option<u32>,
        pdn_percent: Option<Decimal>,
    },
    OfferChosen {
        offer_id: Uuid,
    },
    ContractGenerated {
        contract: Contract,
    },
    ContractSigned {
        contract_id: Uuid,
        document_sha256: String,
        otp_purpose: String,
    },
    CardBindingRequested {
        binding_id: Uuid,
        provider: String,
        card_token: String,
        masked_pan: String,
    },
    ApplicationCardBound {
        card: BoundCard,
    },
    CardBindingFailed {
        binding_id: Uuid,
        reason: String,
    },
    GoodsHandedOver,
    LoanDisbursed {
        loan_id: Uuid,
        payout_reference: String,
    },
    DisbursementFailed {
        reason: String,
        /// The contract annulled by the failure (compensation).
        contract_id: Option<Uuid>,
    },
    ApplicationCancelled {
        reason: String,
    },
    ApplicationExpired,
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::ApplicationCreated { .. } => "ApplicationCreated",
            Event::ApplicationSubmitted { .. } => "ApplicationSubmitted",
            Event::ClientIdentified { .. } => "ClientIdentified",
            Event::IdentificationReferred { .. } => "IdentificationReferred",
            Event::IdentificationFailed { .. } => "IdentificationFailed",
            Event::LegalChecksPassed => "LegalChecksPassed",
            Event::ApplicationReferred { .. } => "ApplicationReferred",
            Event::ReviewResolved { .. } => "ReviewResolved",
            Event::ApplicationApproved { .. } => "ApplicationApproved",
            Event::ApplicationDeclined { .. } => "ApplicationDeclined",
            Event::OfferChosen { .. } => "OfferChosen",
            Event::ContractGenerated { .. } => "ContractGenerated",
            Event::ContractSigned { .. } => "ContractSigned",
            Event::CardBindingRequested { .. } => "CardBindingRequested",
            Event::ApplicationCardBound { .. } => "ApplicationCardBound",
            Event::CardBindingFailed { .. } => "CardBindingFailed",
            Event::GoodsHandedOver => "GoodsHandedOver",
            Event::LoanDisbursed { .. } => "LoanDisbursed",
            Event::DisbursementFailed { .. } => "DisbursementFailed",
            Event::ApplicationCancelled { .. } => "ApplicationCancelled",
            Event::ApplicationExpired => "ApplicationExpired",
        }
    }
}

fn app_ref(id: Uuid) -> AggregateRef {
    AggregateRef {
        kind: AggregateKind::Application,
        id,
    }
}

fn client_ref(client: ClientId) -> AggregateRef {
    AggregateRef {
        kind: AggregateKind::Client,
        id: client.0,
    }
}

/// Decides an application command against the application, its client and (for a
/// disbursement) the new loan.
///
/// Errors: [`Error::ApplicationNotFound`]; [`Error::ClientNotFound`] /
/// [`Error::ClientBlocked`] on creation; [`Error::ApplicationAlreadyOpen`] while the client
/// has another open application; [`Error::InvalidTransition`] for a command its status does
/// not allow; [`Error::ContractHashMismatch`] for a signature over another document;
/// [`Error::NotYetDue`] for an expiry before the deadline; [`Error::Invalid`] for bad input
/// (an offer that was not made, an empty reason, a term of 0).
pub fn decide(
    states: &States,
    client_id: ClientId,
    id: Uuid,
    command: &Command,
    context: &Context,
) -> Result<Vec<(AggregateRef, AnyEvent)>, Error> {
    let state = match states.get(&app_ref(id)) {
        Some(State::Application(a)) => (**a).clone(),
        _ => Application {
            id,
            ..Default::default()
        },
    };
    if state.client_id.is_some_and(|c| c != client_id) {
        return Err(Error::ApplicationNotFound(id));
    }
    let client = match states.get(&client_ref(client_id)) {
        Some(State::Client(c)) => (**c).clone(),
        _ => client::Client::default(),
    };
    let mut out: Vec<(AggregateRef, AnyEvent)> = Vec::new();
    let app = |e: Event| (app_ref(id), AnyEvent::Application(e));
    let on_client = |e: client::Event| (client_ref(client_id), AnyEvent::Client(e));
    let events = decide_application(&state, id, command, context, &client)?;
    for event in events {
        if let Event::ApplicationCreated { .. } = &event {
            out.push(on_client(client::Event::ApplicationOpened {
                application_id: id,
            }));
        }
        if let Event::ApplicationCardBound { card } = &event {
            out.push(on_client(client::Event::CardBound { card: card.clone() }));
        }
        if let (
            Event::LoanDisbursed {
                loan_id,
                payout_reference,
            },
            Some(offer),
        ) = (&event, state.chosen())
        {
            let loan_ref = AggregateRef {
                kind: AggregateKind::Loan,
                id: *loan_id,
            };
            let loan_state = match states.get(&loan_ref) {
                Some(State::Loan(l)) => l.clone(),
                _ => loan::Loan::default(),
            };
            let issue = loan::Command::IssueLoan {
                application_id: id,
                principal: offer.amount,
                term_days: term_days(offer),
                daily_rate_percent: daily_rate_percent(offer),
                terms: Some(Box::new(loan::Terms {
                    product_id: offer.product_id.clone(),
                    term: offer.term,
                    term_unit: offer.term_unit.clone(),
                    contract_date: offer.contract_date,
                    schedule: offer.schedule.clone(),
                    psk_percent: offer.psk_percent,
                    psk_money: offer.psk_money,
                    card_id: state.card.as_ref().map(|c| c.card_id),
                    payout_reference: payout_reference.clone(),
                    servicing: offer.servicing.clone(),
                })),
            };
            for e in loan::decide(&loan_state, *loan_id, &issue)? {
                out.push((loan_ref, AnyEvent::Loan(e)));
            }
        }
        let closes = closing_status(&event);
        out.push(app(event));
        if let Some(outcome) = closes {
            out.push(on_client(client::Event::ApplicationClosed {
                application_id: id,
                outcome: outcome.label().into(),
            }));
        }
    }
    Ok(out)
}

/// The final status an event puts the application in, if it ends it.
fn closing_status(event: &Event) -> Option<Status> {
    match event {
        Event::IdentificationFailed { .. } | Event::ApplicationDeclined { .. } => {
            Some(Status::Declined)
        }
        Event::LoanDisbursed { .. } => Some(Status::Disbursed),
        Event::DisbursementFailed { .. } => Some(Status::Failed),
        Event::ApplicationCancelled { .. } => Some(Status::Cancelled),
        Event::ApplicationExpired => Some(Status::Expired),
        _ => None,
    }
}

/// Days from the contract date to the last instalment.
fn term_days(offer: &Offer) -> u32 {
    crate::schedule::term_days(offer.contract_date, &offer.schedule).unwrap_or(offer.term)
}

/// The offer's charges as a daily rate in percent (Σ interest ÷ amount ÷ days × 100), 4
/// decimals half-to-even: the figure the loan's read model shows beside the schedule.
fn daily_rate_percent(offer: &Offer) -> String {
    let days = Decimal::from(term_days(offer).max(1));
    if offer.amount.amount.is_zero() {
        return "0".into();
    }
    (offer.charges / offer.amount.amount / days * Decimal::from(100))
        .round_dp_with_strategy(4, rust_decimal::RoundingStrategy::MidpointNearestEven)
        .normalize()
        .to_string()
}

fn non_empty(reason: &str, what: &str) -> Result<(), Error> {
    if reason.trim().is_empty() {
        return Err(Error::Invalid(format!("{what} is required")));
    }
    Ok(())
}

fn decide_application(
    state: &Application,
    id: Uuid,
    command: &Command,
    context: &Context,
    client: &client::Client,
) -> Result<Vec<Event>, Error> {
    use Status as S;
    let refuse = |action: &'static str| Error::InvalidTransition {
        aggregate: "application",
        id,
        action,
        status: state.status.label().into(),
    };
    let event = match (state.status, command) {
        (
            S::New,
            Command::CreateApplication {
                product_id,
                requested,
                term,
                partner_id,
                channel,
                cart,
                submit,
            },
        ) => {
            match client.status {
                client::Status::New => return Err(Error::ClientNotFound(client.id)),
                client::Status::Blocked => return Err(Error::ClientBlocked(client.id)),
                client::Status::Active => {}
            }
            if let Some(open) = client.open_application {
                return Err(Error::ApplicationAlreadyOpen(open));
            }
            if *term == 0 {
                return Err(Error::Invalid("term must be at least 1".into()));
            }
            for item in cart {
                if item.quantity == 0 || item.name.trim().is_empty() {
                    return Err(Error::Invalid(
                        "every cart item needs a name and a quantity of at least 1".into(),
                    ));
                }
                item.price.ensure_currency(requested.currency)?;
            }
            let mut events = vec![Event::ApplicationCreated {
                application_id: id,
                product_id: product_id.clone(),
                requested: *requested,
                term: *term,
                partner_id: partner_id.clone(),
                channel: channel.clone(),
                cart: cart.clone(),
            }];
            if *submit {
                events.push(Event::ApplicationSubmitted { application_id: id });
            }
            return Ok(events);
        }
        (S::New, _) => return Err(Error::ApplicationNotFound(id)),
        (_, Command::CreateApplication { .. }) => return Err(refuse("be created again")),
        (S::Draft, Command::SubmitApplication) => {
            Event::ApplicationSubmitted { application_id: id }
        }
        (S::Submitted, Command::RecordIdentification { outcome }) => match outcome {
            Identification::Identified { method } => Event::ClientIdentified {
                method: method.clone(),
            },
            Identification::ManualCheck {
                method,
                reason,
                ticket_id,
            } => Event::IdentificationReferred {
                method: method.clone(),
                reason: reason.clone(),
                ticket_id: *ticket_id,
            },
            Identification::Failed { reasons } => Event::IdentificationFailed {
                reasons: reasons.clone(),
            },
        },
        (S::Identified, Command::RecordLegalChecks { outcome }) => match outcome {
            Verdict::Passed => Event::LegalChecksPassed,
            Verdict::ManualReview { reasons } if !cleared(state, "legal_checks") => {
                Event::ApplicationReferred {
                    stage: "legal_checks".into(),
                    reasons: reasons.clone(),
                    score: None,
                    pdn_percent: None,
                }
            }
            Verdict::ManualReview { .. } => Event::LegalChecksPassed,
            Verdict::Declined { reasons } => Event::ApplicationDeclined {
                stage: "legal_checks".into(),
                reasons: reasons.clone(),
                score: None,
                pdn_percent: None,
            },
        },
        (S::Checked, Command::RecordScoring { outcome }) => match outcome {
            Scoring::Approved {
                offers,
                score,
                pdn_percent,
                expires_at,
            } => {
                if offers.is_empty() || offers.len() > 3 {
                    return Err(Error::Invalid(
                        "an approval carries one to three offers".into(),
                    ));
                }
                Event::ApplicationApproved {
                    offers: offers.clone(),
                    score: *score,
                    pdn_percent: *pdn_percent,
                    expires_at: *expires_at,
                }
            }
            Scoring::ManualReview {
                reasons,
                score,
                pdn_percent,
            } => Event::ApplicationReferred {
                stage: "scoring".into(),
                reasons: reasons.clone(),
                score: Some(*score),
                pdn_percent: *pdn_percent,
            },
            Scoring::Declined {
                reasons,
                score,
                pdn_percent,
            } => Event::ApplicationDeclined {
                stage: "scoring".into(),
                reasons: reasons.clone(),
                score: *score,
                pdn_percent: *pdn_percent,
            },
        },
        (S::ManualReview, Command::ResolveReview { approve, reason }) => {
            non_empty(reason, "a reason")?;
            let stage = state.review_stage.clone().unwrap_or_default();
            if *approve {
                Event::ReviewResolved {
                    stage,
                    approved: true,
                    reason: reason.clone(),
                }
            } else {
                Event::ApplicationDeclined {
                    stage,
                    reasons: vec![reason.clone()],
                    score: state.score,
                    pdn_percent: state.pdn_percent,
                }
            }
        }
        (S::Approved, Command::ChooseOffer { offer_id }) => {
            if !state.offers.iter().any(|o| o.offer_id == *offer_id) {
                return Err(Error::Invalid(format!("offer {offer_id} was not made")));
            }
            Event::OfferChosen {
                offer_id: *offer_id,
            }
        }
        (S::OfferChosen, Command::RecordContract { contract }) => Event::ContractGenerated {
            contract: contract.clone(),
        },
        (
            S::ContractGenerated,
            Command::SignContract {
                document_sha256,
                otp_purpose,
            },
        ) => {
            let Some(contract) = &state.contract else {
                return Err(refuse("sign the contract"));
            };
            if !contract
                .document_sha256
                .eq_ignore_ascii_case(document_sha256)
            {
                return Err(Error::ContractHashMismatch {
                    expected: contract.document_sha256.clone(),
                });
            }
            Event::ContractSigned {
                contract_id: contract.contract_id,
                document_sha256: contract.document_sha256.clone(),
                otp_purpose: otp_purpose.clone(),
            }
        }
        (
            S::Signed,
            Command::BindCard {
                binding_id,
                provider,
                card_token,
                masked_pan,
            },
        ) => Event::CardBindingRequested {
            binding_id: *binding_id,
            provider: provider.clone(),
            card_token: card_token.clone(),
            masked_pan: masked_pan.clone(),
        },
        (
            S::CardBinding,
            Command::RecordCardBinding {
                binding_id,
                failure,
            },
        ) => {
            if state.card_binding != Some(*binding_id) {
                return Err(Error::Invalid(format!(
                    "card binding {binding_id} is not the application's current one"
                )));
            }
            match failure {
                None => {
                    let Some(requested) = state.card_request.clone() else {
                        return Err(refuse("record a card binding"));
                    };
                    Event::ApplicationCardBound { card: requested }
                }
                Some(reason) => Event::CardBindingFailed {
                    binding_id: *binding_id,
                    reason: reason.clone(),
                },
            }
        }
        (S::Signed | S::CardBinding | S::CardBound, Command::ConfirmGoodsHandedOver) => {
            if state.goods_handed_over {
                return Err(refuse("confirm the goods twice"));
            }
            Event::GoodsHandedOver
        }
        (
            S::CardBound,
            Command::RecordDisbursement {
                loan_id,
                payout_reference,
            },
        ) => {
            if state.chosen().is_none() {
                return Err(refuse("be disbursed"));
            }
            Event::LoanDisbursed {
                loan_id: *loan_id,
                payout_reference: payout_reference.clone(),
            }
        }
        (S::CardBound, Command::RecordPayoutFailure { reason }) => Event::DisbursementFailed {
            reason: reason.clone(),
            contract_id: state.contract.as_ref().map(|c| c.contract_id),
        },
        (s, Command::CancelApplication { reason })
            if !s.is_final() && s != S::CardBound && s != S::New =>
        {
            non_empty(reason, "a reason")?;
            Event::ApplicationCancelled {
                reason: reason.clone(),
            }
        }
        (S::Approved | S::OfferChosen | S::ContractGenerated, Command::ExpireApplication) => {
            match state.expires_at {
                Some(deadline) if context.now >= deadline => Event::ApplicationExpired,
                Some(deadline) => return Err(Error::NotYetDue(deadline)),
                None => return Err(refuse("expire")),
            }
        }
        (_, c) => {
            return Err(refuse(match c {
                Command::CreateApplication { .. } => "be created",
                Command::SubmitApplication => "be submitted",
                Command::RecordIdentification { .. } => "record identification",
                Command::RecordLegalChecks { .. } => "record legal checks",
                Command::RecordScoring { .. } => "record scoring",
                Command::ResolveReview { .. } => "resolve a review",
                Command::ChooseOffer { .. } => "choose an offer",
                Command::RecordContract { .. } => "record a contract",
                Command::SignContract { .. } => "sign the contract",
                Command::BindCard { .. } => "bind a card",
                Command::RecordCardBinding { .. } => "record a card binding",
                Command::ConfirmGoodsHandedOver => "confirm the goods handed over",
                Command::RecordDisbursement { .. } => "be disbursed",
                Command::RecordPayoutFailure { .. } => "record a payout failure",
                Command::CancelApplication { .. } => "be cancelled",
                Command::ExpireApplication => "expire",
            }))
        }
    };
    Ok(vec![event])
}

fn cleared(state: &Application, stage: &str) -> bool {
    state.reviews_cleared.iter().any(|s| s == stage)
}

pub fn evolve(mut state: Application, client: ClientId, event: &Event) -> Application {
    use Status as S;
    match event {
        Event::ApplicationCreated {
            application_id,
            product_id,
            requested,
            term,
            partner_id,
            channel,
            cart,
        } => {
            state.id = *application_id;
            state.client_id = Some(client);
            state.product_id = product_id.clone();
            state.requested = Some(*requested);
            state.term = *term;
            state.partner_id = partner_id.clone();
            state.channel = channel.clone();
            state.cart = cart.clone();
            state.status = S::Draft;
        }
        Event::ApplicationSubmitted { .. } => state.status = S::Submitted,
        Event::ClientIdentified { method } => {
            state.identification_method = Some(method.clone());
            state.status = S::Identified;
        }
        Event::IdentificationReferred { method, reason, .. } => {
            state.identification_method = Some(method.clone());
            state.review_stage = Some("identification".into());
            state.reasons = vec![reason.clone()];
            state.status = S::ManualReview;
        }
        Event::IdentificationFailed { reasons } => {
            state.reasons = reasons.clone();
            state.status = S::Declined;
        }
        Event::LegalChecksPassed => state.status = S::Checked,
        Event::ApplicationReferred {
            stage,
            reasons,
            score,
            pdn_percent,
        } => {
            state.review_stage = Some(stage.clone());
            state.reasons = reasons.clone();
            state.score = *score;
            state.pdn_percent = *pdn_percent;
            state.status = S::ManualReview;
        }
        Event::ReviewResolved { stage, .. } => {
            state.reviews_cleared.push(stage.clone());
            state.review_stage = None;
            state.status = match stage.as_str() {
                "identification" => S::Identified,
                _ => S::Checked,
            };
        }
        Event::ApplicationApproved {
            offers,
            score,
            pdn_percent,
            expires_at,
        } => {
            state.offers = offers.clone();
            state.score = Some(*score);
            state.pdn_percent = *pdn_percent;
            state.expires_at = Some(*expires_at);
            state.status = S::Approved;
        }
        Event::ApplicationDeclined {
            reasons,
            score,
            pdn_percent,
            ..
        } => {
            state.reasons = reasons.clone();
            state.score = score.or(state.score);
            state.pdn_percent = pdn_percent.or(state.pdn_percent);
            state.status = S::Declined;
        }
        Event::OfferChosen { offer_id } => {
            state.chosen_offer = Some(*offer_id);
            state.status = S::OfferChosen;
        }
        Event::ContractGenerated { contract } => {
            state.contract = Some(contract.clone());
            state.status = S::ContractGenerated;
        }
        Event::ContractSigned { .. } => {
            state.signed = true;
            state.status = S::Signed;
        }
        Event::CardBindingRequested {
            binding_id,
            provider,
            card_token,
            masked_pan,
        } => {
            state.card_binding = Some(*binding_id);
            state.card_request = Some(BoundCard {
                card_id: *binding_id,
                provider: provider.clone(),
                token: card_token.clone(),
                masked_pan: masked_pan.clone(),
            });
            state.status = S::CardBinding;
        }
        Event::ApplicationCardBound { card } => {
            state.card = Some(card.clone());
            state.status = S::CardBound;
        }
        Event::CardBindingFailed { reason, .. } => {
            state.reasons = vec![reason.clone()];
            state.card_request = None;
            state.status = S::Signed;
        }
        Event::GoodsHandedOver => state.goods_handed_over = true,
        Event::LoanDisbursed { loan_id, .. } => {
            state.loan_id = Some(*loan_id);
            state.status = S::Disbursed;
        }
        Event::DisbursementFailed { reason, .. } => {
            state.reasons = vec![reason.clone()];
            state.status = S::Failed;
        }
        Event::ApplicationCancelled { reason } => {
            state.reasons = vec![reason.clone()];
            state.status = S::Cancelled;
        }
        Event::ApplicationExpired => state.status = S::Expired,
    }
    state
}
