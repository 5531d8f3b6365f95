//! The customer registry's client (seed 000, 6.2.1): the personal cabinet (registered,
//! blocked, unblocked), sealed personal data, tags with their reasons, bound cards, and the
//! one open loan application a client may have.
//!
//! ```text
//! (none) ─register─▶ Active ◀─block / unblock─▶ Blocked
//! ```
//!
//! A wallet client applies for its wallet (e-wallet spec §2): the registration is approved
//! at once or by an operator, as the system setting says ([`Approval`], given with the
//! command), and the account opens in the currency applied for at the client's first login
//! (`WalletRegistrationCompleted`, with the wallet's `WalletOpened`). Personal-data change
//! requests are approved the same way; at most one is pending at a time.
//!
//! ```text
//! (none | rejected) ─apply─▶ submitted ─approve─▶ approved ─first login─▶ completed
//!                                └──────reject──▶ rejected
//! ```
//!
//! A wallet client also has a client group, a UTC offset for its calendar limits and its
//! spending per local day (e-wallet spec §2, [`crate::limits`]); these exist for every client,
//! registered in the registry or not.
//!
//! The aggregate id is the client id. Its events carry personal data only sealed
//! ([`crate::personal::Sealed`]).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::autopayment::{self as auto, Autopayment, Schedule, Template};
use crate::error::Error;
use crate::limits::{self, GroupId, Source, Spending};
use crate::money::{Currency, Money};
use crate::personal::Sealed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    New,
    Active,
    Blocked,
}

impl Status {
    pub fn label(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Active => "active",
            Status::Blocked => "blocked",
        }
    }
}

/// A bank card bound to the client through a payment provider (seed 000, 6.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoundCard {
    pub card_id: Uuid,
    /// `sbc`, `tinkoff` or `elecsnet`.
    pub provider: String,
    /// The provider's token for the card (never the card number).
    pub token: String,
    /// First six and last four digits, e.g. `220220******1234`.
    pub masked_pan: String,
}

/// Whether a client's request is approved at once or waits for an operator (spec §2: a
/// system setting, read at the edge and given with the command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    Automatic,
    Manual,
}

impl Approval {
    pub fn label(self) -> &'static str {
        match self {
            Approval::Automatic => "automatic",
            Approval::Manual => "manual",
        }
    }

    /// `automatic` or `manual`.
    pub fn parse(text: &str) -> Option<Approval> {
        match text {
            "automatic" => Some(Approval::Automatic),
            "manual" => Some(Approval::Manual),
            _ => None,
        }
    }
}

/// Where a request (a wallet registration or a personal-data change) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for an operator.
    Submitted,
    Approved,
    Rejected,
    /// A registration whose account opened at the first login.
    Completed,
}

impl RequestStatus {
    pub fn label(self) -> &'static str {
        match self {
            RequestStatus::Submitted => "submitted",
            RequestStatus::Approved => "approved",
            RequestStatus::Rejected => "rejected",
            RequestStatus::Completed => "completed",
        }
    }
}

/// The client's application for a wallet (spec §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletRegistration {
    pub status: RequestStatus,
    /// The account's currency, chosen when applying.
    pub currency: Currency,
    /// The account that opens at the first login.
    pub wallet_id: Uuid,
    /// The operator's reason, or `automatic`.
    pub reason: Option<String>,
}

/// A request to change the client's personal data (spec §2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataChangeRequest {
    pub request_id: Uuid,
    pub status: RequestStatus,
    pub personal: Sealed,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Client {
    pub id: Uuid,
    pub status: Status,
    pub personal: Option<Sealed>,
    /// Who registered the client: a partner id, or `self` for the client's own app.
    pub registered_by: Option<String>,
    pub block_reason: Option<String>,
    /// Tag → the reason it was set.
    pub tags: BTreeMap<String, String>,
    pub cards: Vec<BoundCard>,
    /// The client's application that has not reached an end yet.
    pub open_application: Option<Uuid>,
    /// Loans disbursed to the client (a repeat client has at least one).
    pub loans_disbursed: u32,
    /// The client's data key was destroyed (152-FZ art. 21): its sealed data no longer opens.
    #[serde(default)]
    pub erased: bool,
    /// The documents on file (kind and id; the file itself is in the document store).
    #[serde(default)]
    pub documents: Vec<crate::documents::Document>,
    /// The client's group; `None`: the catalogue's default group.
    #[serde(default)]
    pub group: Option<GroupId>,
    /// The client's UTC offset `±HH:MM` for calendar limits; `None`: Moscow time.
    #[serde(default)]
    pub utc_offset: Option<String>,
    /// What the client spent per local day, for the spend limits.
    #[serde(default)]
    pub spending: Spending,
    /// The client's last application for a wallet.
    #[serde(default)]
    pub wallet_registration: Option<WalletRegistration>,
    /// Personal-data change requests, oldest first.
    #[serde(default)]
    pub data_changes: Vec<DataChangeRequest>,
    /// The sealed data of a wallet application waiting for an operator (registered with the
    /// client on approval).
    #[serde(default)]
    pub registration_personal: Option<Sealed>,
    /// Payment templates by id (spec §3.2).
    #[serde(default)]
    pub templates: BTreeMap<Uuid, Template>,
    /// Autopayments by id (spec §3.2).
    #[serde(default)]
    pub autopayments: BTreeMap<Uuid, Autopayment>,
}

impl Client {
    /// The UTC offset the client's calendar days are counted in.
    pub fn offset(&self) -> time::UtcOffset {
        self.utc_offset
            .as_deref()
            .and_then(|o| limits::parse_utc_offset(o).ok())
            .unwrap_or(limits::MOSCOW)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    RegisterClient {
        personal: Sealed,
        registered_by: String,
    },
    ChangePersonalData {
        personal: Sealed,
    },
    BlockClient {
        reason: String,
    },
    UnblockClient,
    TagClient {
        tag: String,
        reason: String,
    },
    UntagClient {
        tag: String,
        reason: String,
    },
    /// Erase the client's personal data: the key store destroys its key after this is
    /// recorded.
    ErasePersonalData {
        reason: String,
    },
    /// File a document checked against the configured rules at the edge.
    AddDocument {
        document: crate::documents::Document,
    },
    /// Move the client to another group (spec §2): its limits apply from the next operation.
    ChangeGroup {
        group: GroupId,
        reason: String,
    },
    /// Set the UTC offset (`±HH:MM`) in which the client's calendar limits are counted.
    ChangeTimeZone {
        utc_offset: String,
    },
    /// Apply for a wallet with an account in `currency` (spec §2): refused while an earlier
    /// application is submitted, approved or completed, and for a blocked client. With
    /// [`Approval::Automatic`] it is approved in the same command.
    ApplyForWallet {
        personal: Sealed,
        currency: Currency,
        /// The account that opens at the first login.
        wallet_id: Uuid,
        approval: Approval,
    },
    /// An operator approves or rejects a submitted wallet registration.
    ReviewWalletRegistration {
        approve: bool,
        reason: String,
    },
    /// Request a change of the client's personal data: refused while another request is
    /// submitted; approved in the same command with [`Approval::Automatic`].
    RequestPersonalDataChange {
        request_id: Uuid,
        personal: Sealed,
        approval: Approval,
    },
    /// An operator approves (the data changes) or rejects a submitted change request.
    ReviewPersonalDataChange {
        request_id: Uuid,
        approve: bool,
        reason: String,
    },
    /// Save (or replace) a payment template (spec §3.2); at most
    /// [`auto::MAX_TEMPLATES`].
    SaveTemplate {
        template_id: Uuid,
        template: Template,
    },
    /// Delete a template no active or paused autopayment runs.
    DeleteTemplate {
        template_id: Uuid,
    },
    /// Run a template on a schedule, pausing after `max_failures` (1–10) failed runs in a
    /// row; at most [`auto::MAX_AUTOPAYMENTS`].
    CreateAutopayment {
        autopayment_id: Uuid,
        template_id: Uuid,
        schedule: Schedule,
        max_failures: u32,
    },
    PauseAutopayment {
        autopayment_id: Uuid,
        reason: String,
    },
    /// Resume a paused autopayment: the next run is the first scheduled after now.
    ResumeAutopayment {
        autopayment_id: Uuid,
    },
    CancelAutopayment {
        autopayment_id: Uuid,
    },
    /// The autopayment process records run `run` (its payment and outcome); the next run is
    /// the first scheduled after now, and an active autopayment pauses at `max_failures`
    /// failures in a row. The run is the one due — also when the autopayment was paused or
    /// cancelled while it was in flight (its payment was started while it was active) — or
    /// the one a resumption passed over ([`auto::Autopayment::resumed_past`]), which leaves
    /// the next run and the failures in a row as the resumption set them. Errors:
    /// [`Error::Invalid`] for any other run (recorded already, or never due), or no such
    /// autopayment.
    RecordAutopaymentRun {
        autopayment_id: Uuid,
        run: u32,
        payment_id: Uuid,
        succeeded: bool,
        reason: Option<String>,
    },
    /// Bind a bank card the bank has tokenised (e-wallet spec §3.3, §7.1) as a payment
    /// source: refused for a blocked client, a card id or token already bound, and beyond
    /// [`MAX_CARDS`].
    BindCard {
        card: BoundCard,
    },
}

/// How many cards a client may bind.
pub const MAX_CARDS: usize = 10;

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::RegisterClient { .. } => "RegisterClient",
            Command::ChangePersonalData { .. } => "ChangePersonalData",
            Command::BlockClient { .. } => "BlockClient",
            Command::UnblockClient => "UnblockClient",
            Command::TagClient { .. } => "TagClient",
            Command::UntagClient { .. } => "UntagClient",
            Command::ErasePersonalData { .. } => "ErasePersonalData",
            Command::AddDocument { .. } => "AddDocument",
            Command::ChangeGroup { .. } => "ChangeClientGroup",
            Command::ChangeTimeZone { .. } => "ChangeClientTimeZone",
            Command::ApplyForWallet { .. } => "ApplyForWallet",
            Command::ReviewWalletRegistration { .. } => "ReviewWalletRegistration",
            Command::RequestPersonalDataChange { .. } => "RequestPersonalDataChange",
            Command::ReviewPersonalDataChange { .. } => "ReviewPersonalDataChange",
            Command::SaveTemplate { .. } => "SavePaymentTemplate",
            Command::DeleteTemplate { .. } => "DeletePaymentTemplate",
            Command::CreateAutopayment { .. } => "CreateAutopayment",
            Command::PauseAutopayment { .. } => "PauseAutopayment",
            Command::ResumeAutopayment { .. } => "ResumeAutopayment",
            Command::CancelAutopayment { .. } => "CancelAutopayment",
            Command::RecordAutopaymentRun { .. } => "RecordAutopaymentRun",
            Command::BindCard { .. } => "BindCard",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    ClientRegistered {
        personal: Sealed,
        registered_by: String,
    },
    PersonalDataChanged {
        personal: Sealed,
    },
    ClientBlocked {
        reason: String,
    },
    ClientUnblocked,
    ClientTagged {
        tag: String,
        reason: String,
    },
    ClientUntagged {
        tag: String,
        reason: String,
    },
    CardBound {
        card: BoundCard,
    },
    /// The client's personal data was erased (its key destroyed); the events stay.
    PersonalDataErased {
        reason: String,
    },
    DocumentAdded {
        document: crate::documents::Document,
    },
    /// An application of the client was created; until it ends no other may be.
    ApplicationOpened {
        application_id: Uuid,
    },
    /// The open application ended (`outcome`: the application's final status).
    ApplicationClosed {
        application_id: Uuid,
        outcome: String,
    },
    /// The client was moved to `group`.
    ClientGroupChanged {
        group: GroupId,
        reason: String,
    },
    /// The client's calendar limits are counted in `utc_offset` (`±HH:MM`) from now on.
    ClientTimeZoneChanged {
        utc_offset: String,
    },
    /// A payment's amount counts against the spend limits of the client's local `day`, from
    /// its reservation (or authorisation at a card) on.
    SpendingCounted {
        operation_id: Uuid,
        amount: Money,
        source: Source,
        #[serde(with = "crate::schedule::iso_date")]
        day: time::Date,
    },
    /// A failed or cancelled payment's amount no longer counts against `day`'s limits.
    SpendingReleased {
        operation_id: Uuid,
        amount: Money,
        source: Source,
        #[serde(with = "crate::schedule::iso_date")]
        day: time::Date,
    },
    /// The client applied for a wallet with an account in `currency`.
    WalletRegistrationSubmitted {
        personal: Sealed,
        currency: Currency,
        wallet_id: Uuid,
    },
    /// The registration was approved (`approval`: automatic or manual, with the reason).
    WalletRegistrationApproved {
        approval: Approval,
        reason: String,
    },
    WalletRegistrationRejected {
        reason: String,
    },
    /// The client logged in for the first time: the account `wallet_id` opened.
    WalletRegistrationCompleted {
        wallet_id: Uuid,
    },
    PersonalDataChangeRequested {
        request_id: Uuid,
        personal: Sealed,
    },
    /// Approved: `PersonalDataChanged` follows in the same command.
    PersonalDataChangeApproved {
        request_id: Uuid,
        approval: Approval,
        reason: String,
    },
    PersonalDataChangeRejected {
        request_id: Uuid,
        reason: String,
    },
    TemplateSaved {
        template_id: Uuid,
        template: Template,
    },
    TemplateDeleted {
        template_id: Uuid,
    },
    AutopaymentCreated {
        autopayment_id: Uuid,
        template_id: Uuid,
        schedule: Schedule,
        max_failures: u32,
    },
    /// Run `run` ended (`succeeded`, or the reason); `next_run` is the run due next.
    AutopaymentRunRecorded {
        autopayment_id: Uuid,
        run: u32,
        payment_id: Uuid,
        succeeded: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        next_run: u32,
    },
    AutopaymentPaused {
        autopayment_id: Uuid,
        reason: String,
    },
    AutopaymentResumed {
        autopayment_id: Uuid,
        next_run: u32,
    },
    AutopaymentCancelled {
        autopayment_id: Uuid,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::ClientRegistered { .. } => "ClientRegistered",
            Event::PersonalDataChanged { .. } => "PersonalDataChanged",
            Event::ClientBlocked { .. } => "ClientBlocked",
            Event::ClientUnblocked => "ClientUnblocked",
            Event::ClientTagged { .. } => "ClientTagged",
            Event::ClientUntagged { .. } => "ClientUntagged",
            Event::CardBound { .. } => "CardBound",
            Event::PersonalDataErased { .. } => "PersonalDataErased",
            Event::DocumentAdded { .. } => "DocumentAdded",
            Event::ApplicationOpened { .. } => "ApplicationOpened",
            Event::ApplicationClosed { .. } => "ApplicationClosed",
            Event::ClientGroupChanged { .. } => "ClientGroupChanged",
            Event::ClientTimeZoneChanged { .. } => "ClientTimeZoneChanged",
            Event::SpendingCounted { .. } => "SpendingCounted",
            Event::SpendingReleased { .. } => "SpendingReleased",
            Event::WalletRegistrationSubmitted { .. } => "WalletRegistrationSubmitted",
            Event::WalletRegistrationApproved { .. } => "WalletRegistrationApproved",
            Event::WalletRegistrationRejected { .. } => "WalletRegistrationRejected",
            Event::WalletRegistrationCompleted { .. } => "WalletRegistrationCompleted",
            Event::PersonalDataChangeRequested { .. } => "PersonalDataChangeRequested",
            Event::PersonalDataChangeApproved { .. } => "PersonalDataChangeApproved",
            Event::PersonalDataChangeRejected { .. } => "PersonalDataChangeRejected",
            Event::TemplateSaved { .. } => "TemplateSaved",
            Event::TemplateDeleted { .. } => "TemplateDeleted",
            Event::AutopaymentCreated { .. } => "AutopaymentCreated",
            Event::AutopaymentRunRecorded { .. } => "AutopaymentRunRecorded",
            Event::AutopaymentPaused { .. } => "AutopaymentPaused",
            Event::AutopaymentResumed { .. } => "AutopaymentResumed",
            Event::AutopaymentCancelled { .. } => "AutopaymentCancelled",
        }
    }
}

/// Tags are short identifiers: 1–64 of `a-z 0-9 _ -`.
fn check_tag(tag: &str) -> Result<(), Error> {
    if tag.is_empty()
        || tag.len() > 64
        || !tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(Error::Invalid(format!(
            "tag `{tag}` must be 1–64 characters of a-z, 0-9, _ and -"
        )));
    }
    Ok(())
}

fn reason_required(reason: &str) -> Result<(), Error> {
    if reason.trim().is_empty() {
        return Err(Error::Invalid("a reason is required".into()));
    }
    Ok(())
}

/// Decides a registry command. `catalogue` is the current client group catalogue.
///
/// Errors: [`Error::ClientNotFound`] for a client never registered (group and time-zone
/// changes excepted: every wallet client has them); [`Error::InvalidTransition`] (registering
/// twice, blocking a blocked client, unblocking an active one); [`Error::Invalid`] for a bad
/// tag, an unknown group, a bad UTC offset or a missing reason.
pub fn decide(
    state: &Client,
    id: Uuid,
    command: &Command,
    context: &crate::command::Context,
) -> Result<Vec<Event>, Error> {
    let catalogue = &*context.groups;
    use Status as S;
    let refuse = |action: &'static str| Error::InvalidTransition {
        aggregate: "client",
        id,
        action,
        status: state.status.label().into(),
    };
    let event = match (state.status, command) {
        (
            S::New,
            Command::RegisterClient {
                personal,
                registered_by,
            },
        ) => Event::ClientRegistered {
            personal: personal.clone(),
            registered_by: registered_by.clone(),
        },
        (_, Command::ChangeGroup { group, reason }) => {
            reason_required(reason)?;
            if !catalogue.groups.contains_key(group) {
                return Err(Error::Invalid(format!(
                    "there is no client group `{group}`"
                )));
            }
            if state.group.as_ref() == Some(group) {
                return Err(Error::Invalid(format!(
                    "the client is already in group `{group}`"
                )));
            }
            Event::ClientGroupChanged {
                group: group.clone(),
                reason: reason.clone(),
            }
        }
        (_, Command::ChangeTimeZone { utc_offset }) => Event::ClientTimeZoneChanged {
            utc_offset: limits::format_utc_offset(limits::parse_utc_offset(utc_offset)?),
        },
        // Every wallet client keeps templates and autopayments, registered or not.
        (
            _,
            Command::SaveTemplate { .. }
            | Command::DeleteTemplate { .. }
            | Command::CreateAutopayment { .. }
            | Command::PauseAutopayment { .. }
            | Command::ResumeAutopayment { .. }
            | Command::CancelAutopayment { .. }
            | Command::RecordAutopaymentRun { .. },
        ) => {
            return decide_autopayments(state, command, context.now).map(Option::unwrap_or_default)
        }
        (S::Blocked, Command::ApplyForWallet { .. }) => return Err(refuse("apply for a wallet")),
        (
            _,
            Command::ApplyForWallet {
                personal,
                currency,
                wallet_id,
                approval,
            },
        ) => {
            if let Some(r) = &state.wallet_registration {
                if r.status != RequestStatus::Rejected {
                    return Err(Error::InvalidTransition {
                        aggregate: "wallet registration",
                        id,
                        action: "be applied for again",
                        status: r.status.label().into(),
                    });
                }
            }
            if !catalogue
                .group_of(state.group.as_ref())?
                .limits
                .contains_key(currency)
            {
                return Err(Error::Invalid(format!(
                    "the client's group has no limits in {}",
                    currency.code()
                )));
            }
            let mut events = vec![Event::WalletRegistrationSubmitted {
                personal: personal.clone(),
                currency: *currency,
                wallet_id: *wallet_id,
            }];
            if *approval == Approval::Automatic {
                events.extend(approve_registration(
                    state,
                    personal,
                    Approval::Automatic,
                    "automatic",
                ));
            }
            return Ok(events);
        }
        (_, Command::ReviewWalletRegistration { approve, reason }) => {
            reason_required(reason)?;
            let Some(r) = &state.wallet_registration else {
                return Err(Error::ClientNotFound(id));
            };
            if r.status != RequestStatus::Submitted {
                return Err(Error::InvalidTransition {
                    aggregate: "wallet registration",
                    id,
                    action: "be reviewed",
                    status: r.status.label().into(),
                });
            }
            if !approve {
                return Ok(vec![Event::WalletRegistrationRejected {
                    reason: reason.clone(),
                }]);
            }
            let Some(personal) = state.registration_data() else {
                return Err(Error::ClientNotFound(id));
            };
            return Ok(approve_registration(
                state,
                &personal,
                Approval::Manual,
                reason,
            ));
        }
        (S::New, _) => return Err(Error::ClientNotFound(id)),
        (_, Command::RegisterClient { .. }) => return Err(refuse("be registered again")),
        (_, Command::ChangePersonalData { .. }) if state.erased => {
            return Err(refuse("change erased personal data"))
        }
        (_, Command::ChangePersonalData { personal }) => Event::PersonalDataChanged {
            personal: personal.clone(),
        },
        (
            _,
            Command::RequestPersonalDataChange {
                request_id,
                personal,
                approval,
            },
        ) => {
            if state.erased {
                return Err(refuse("change erased personal data"));
            }
            if let Some(pending) = state
                .data_changes
                .iter()
                .find(|r| r.status == RequestStatus::Submitted)
            {
                return Err(Error::Invalid(format!(
                    "the personal-data change request {} is still waiting for an operator",
                    pending.request_id
                )));
            }
            if state
                .data_changes
                .iter()
                .any(|r| r.request_id == *request_id)
            {
                return Err(Error::Invalid(format!(
                    "personal-data change request {request_id} already exists"
                )));
            }
            let mut events = vec![Event::PersonalDataChangeRequested {
                request_id: *request_id,
                personal: personal.clone(),
            }];
            if *approval == Approval::Automatic {
                events.push(Event::PersonalDataChangeApproved {
                    request_id: *request_id,
                    approval: Approval::Automatic,
                    reason: "automatic".into(),
                });
                events.push(Event::PersonalDataChanged {
                    personal: personal.clone(),
                });
            }
            return Ok(events);
        }
        (
            _,
            Command::ReviewPersonalDataChange {
                request_id,
                approve,
                reason,
            },
        ) => {
            reason_required(reason)?;
            let Some(request) = state
                .data_changes
                .iter()
                .find(|r| r.request_id == *request_id)
            else {
                return Err(Error::Invalid(format!(
                    "personal-data change request {request_id} does not exist"
                )));
            };
            if request.status != RequestStatus::Submitted {
                return Err(Error::InvalidTransition {
                    aggregate: "personal-data change request",
                    id: *request_id,
                    action: "be reviewed",
                    status: request.status.label().into(),
                });
            }
            if !approve {
                return Ok(vec![Event::PersonalDataChangeRejected {
                    request_id: *request_id,
                    reason: reason.clone(),
                }]);
            }
            if state.erased {
                return Err(refuse("change erased personal data"));
            }
            return Ok(vec![
                Event::PersonalDataChangeApproved {
                    request_id: *request_id,
                    approval: Approval::Manual,
                    reason: reason.clone(),
                },
                Event::PersonalDataChanged {
                    personal: request.personal.clone(),
                },
            ]);
        }
        (S::Blocked, Command::BindCard { .. }) => return Err(Error::ClientBlocked(id)),
        (_, Command::BindCard { card }) => {
            if card.token.trim().is_empty() || card.masked_pan.trim().is_empty() {
                return Err(Error::Invalid(
                    "a bound card needs the bank's token and its masked number".into(),
                ));
            }
            if state
                .cards
                .iter()
                .any(|c| c.card_id == card.card_id || c.token == card.token)
            {
                return Err(Error::Invalid(format!(
                    "card {} is already bound",
                    card.masked_pan
                )));
            }
            if state.cards.len() >= MAX_CARDS {
                return Err(Error::Invalid(format!(
                    "at most {MAX_CARDS} cards may be bound"
                )));
            }
            Event::CardBound { card: card.clone() }
        }
        (_, Command::AddDocument { .. }) if state.erased => {
            return Err(refuse("file documents after erasure"))
        }
        (_, Command::AddDocument { document }) => Event::DocumentAdded {
            document: document.clone(),
        },
        (_, Command::ErasePersonalData { .. }) if state.erased => {
            return Err(refuse("be erased twice"))
        }
        (_, Command::ErasePersonalData { reason }) => {
            reason_required(reason)?;
            if let Some(open) = state.open_application {
                return Err(Error::Invalid(format!(
                    "the client's application {open} is still open"
                )));
            }
            Event::PersonalDataErased {
                reason: reason.clone(),
            }
        }
        (S::Active, Command::BlockClient { reason }) => {
            reason_required(reason)?;
            Event::ClientBlocked {
                reason: reason.clone(),
            }
        }
        (S::Blocked, Command::BlockClient { .. }) => return Err(refuse("be blocked")),
        (S::Blocked, Command::UnblockClient) => Event::ClientUnblocked,
        (S::Active, Command::UnblockClient) => return Err(refuse("be unblocked")),
        (_, Command::TagClient { tag, reason }) => {
            check_tag(tag)?;
            reason_required(reason)?;
            Event::ClientTagged {
                tag: tag.clone(),
                reason: reason.clone(),
            }
        }
        (_, Command::UntagClient { tag, reason }) => {
            reason_required(reason)?;
            if !state.tags.contains_key(tag) {
                return Err(Error::Invalid(format!("the client has no tag `{tag}`")));
            }
            Event::ClientUntagged {
                tag: tag.clone(),
                reason: reason.clone(),
            }
        }
    };
    Ok(vec![event])
}

/// Templates and autopayments (spec §3.2); `None` for any other command.
fn decide_autopayments(
    state: &Client,
    command: &Command,
    now: time::OffsetDateTime,
) -> Result<Option<Vec<Event>>, Error> {
    let find = |id: &Uuid| {
        state
            .autopayments
            .get(id)
            .ok_or_else(|| Error::Invalid(format!("autopayment {id} does not exist")))
    };
    let wrong = |id: Uuid, a: &Autopayment, action: &'static str| Error::InvalidTransition {
        aggregate: "autopayment",
        id,
        action,
        status: a.status.label().into(),
    };
    let events = match command {
        Command::SaveTemplate {
            template_id,
            template,
        } => {
            template.validate()?;
            if !state.templates.contains_key(template_id)
                && state.templates.len() >= auto::MAX_TEMPLATES
            {
                return Err(Error::Invalid(format!(
                    "a client keeps at most {} templates",
                    auto::MAX_TEMPLATES
                )));
            }
            vec![Event::TemplateSaved {
                template_id: *template_id,
                template: template.clone(),
            }]
        }
        Command::DeleteTemplate { template_id } => {
            if !state.templates.contains_key(template_id) {
                return Err(Error::Invalid(format!(
                    "template {template_id} does not exist"
                )));
            }
            if state
                .autopayments
                .values()
                .any(|a| a.template_id == *template_id && a.status != auto::Status::Cancelled)
            {
                return Err(Error::Invalid(format!(
                    "template {template_id} is run by an autopayment; cancel it first"
                )));
            }
            vec![Event::TemplateDeleted {
                template_id: *template_id,
            }]
        }
        Command::CreateAutopayment {
            autopayment_id,
            template_id,
            schedule,
            max_failures,
        } => {
            schedule.validate()?;
            if !state.templates.contains_key(template_id) {
                return Err(Error::Invalid(format!(
                    "template {template_id} does not exist"
                )));
            }
            if !(1..=10).contains(max_failures) {
                return Err(Error::Invalid("max_failures is 1–10".into()));
            }
            if state.autopayments.contains_key(autopayment_id) {
                return Err(Error::Invalid(format!(
                    "autopayment {autopayment_id} already exists"
                )));
            }
            let live = state
                .autopayments
                .values()
                .filter(|a| a.status != auto::Status::Cancelled)
                .count();
            if live >= auto::MAX_AUTOPAYMENTS {
                return Err(Error::Invalid(format!(
                    "a client has at most {} autopayments",
                    auto::MAX_AUTOPAYMENTS
                )));
            }
            vec![Event::AutopaymentCreated {
                autopayment_id: *autopayment_id,
                template_id: *template_id,
                schedule: *schedule,
                max_failures: *max_failures,
            }]
        }
        Command::PauseAutopayment {
            autopayment_id,
            reason,
        } => {
            reason_required(reason)?;
            let a = find(autopayment_id)?;
            if a.status != auto::Status::Active {
                return Err(wrong(*autopayment_id, a, "be paused"));
            }
            vec![Event::AutopaymentPaused {
                autopayment_id: *autopayment_id,
                reason: reason.clone(),
            }]
        }
        Command::ResumeAutopayment { autopayment_id } => {
            let a = find(autopayment_id)?;
            if a.status != auto::Status::Paused {
                return Err(wrong(*autopayment_id, a, "be resumed"));
            }
            let next_run = if a.next_run_at() > now {
                a.next_run
            } else {
                a.schedule.next_run_after(a.next_run, now)
            };
            vec![Event::AutopaymentResumed {
                autopayment_id: *autopayment_id,
                next_run,
            }]
        }
        Command::CancelAutopayment { autopayment_id } => {
            let a = find(autopayment_id)?;
            if a.status == auto::Status::Cancelled {
                return Err(wrong(*autopayment_id, a, "be cancelled"));
            }
            vec![Event::AutopaymentCancelled {
                autopayment_id: *autopayment_id,
            }]
        }
        Command::RecordAutopaymentRun {
            autopayment_id,
            run,
            payment_id,
            succeeded,
            reason,
        } => {
            let a = find(autopayment_id)?;
            let passed_over = a.resumed_past == Some(*run);
            let recorded_already = a.runs.last().is_some_and(|last| *run <= last.run);
            if (*run != a.next_run && !passed_over) || recorded_already {
                return Err(Error::Invalid(format!(
                    "run {run} of autopayment {autopayment_id} is recorded already or not due \
                     (due: {})",
                    a.next_run
                )));
            }
            let next_run = if passed_over {
                a.next_run
            } else {
                a.schedule.next_run_after(*run, now)
            };
            let mut events = vec![Event::AutopaymentRunRecorded {
                autopayment_id: *autopayment_id,
                run: *run,
                payment_id: *payment_id,
                succeeded: *succeeded,
                reason: reason.clone(),
                next_run,
            }];
            let failures = a.failures_after(*run, *succeeded);
            if failures >= a.max_failures && a.status == auto::Status::Active {
                events.push(Event::AutopaymentPaused {
                    autopayment_id: *autopayment_id,
                    reason: format!("{failures} failed runs in a row"),
                });
            }
            events
        }
        _ => return Ok(None),
    };
    Ok(Some(events))
}

/// The approval of a wallet registration; a client not in the registry yet is registered
/// with the data it applied with.
fn approve_registration(
    state: &Client,
    personal: &Sealed,
    approval: Approval,
    reason: &str,
) -> Vec<Event> {
    let mut events = vec![Event::WalletRegistrationApproved {
        approval,
        reason: reason.to_owned(),
    }];
    if state.status == Status::New {
        events.push(Event::ClientRegistered {
            personal: personal.clone(),
            registered_by: "wallet".into(),
        });
    }
    events
}

impl Client {
    /// The personal data of the client's wallet application, while it is kept.
    fn registration_data(&self) -> Option<Sealed> {
        self.registration_personal.clone()
    }
}

pub fn evolve(mut state: Client, event: &Event) -> Client {
    match event {
        Event::TemplateSaved {
            template_id,
            template,
        } => {
            state.templates.insert(*template_id, template.clone());
        }
        Event::TemplateDeleted { template_id } => {
            state.templates.remove(template_id);
        }
        Event::AutopaymentCreated {
            autopayment_id,
            template_id,
            schedule,
            max_failures,
        } => {
            state.autopayments.insert(
                *autopayment_id,
                Autopayment {
                    template_id: *template_id,
                    schedule: *schedule,
                    max_failures: *max_failures,
                    status: auto::Status::Active,
                    next_run: 0,
                    consecutive_failures: 0,
                    runs: Vec::new(),
                    pause_reason: None,
                    resumed_past: None,
                },
            );
        }
        Event::AutopaymentRunRecorded {
            autopayment_id,
            run,
            payment_id,
            succeeded,
            reason,
            next_run,
        } => {
            if let Some(a) = state.autopayments.get_mut(autopayment_id) {
                a.runs.push(auto::Run {
                    run: *run,
                    payment_id: *payment_id,
                    succeeded: *succeeded,
                    reason: reason.clone(),
                });
                if a.runs.len() > auto::KEPT_RUNS {
                    a.runs.remove(0);
                }
                a.consecutive_failures = a.failures_after(*run, *succeeded);
                a.resumed_past = None;
                a.next_run = *next_run;
            }
        }
        Event::AutopaymentPaused {
            autopayment_id,
            reason,
        } => {
            if let Some(a) = state.autopayments.get_mut(autopayment_id) {
                a.status = auto::Status::Paused;
                a.pause_reason = Some(reason.clone());
            }
        }
        Event::AutopaymentResumed {
            autopayment_id,
            next_run,
        } => {
            if let Some(a) = state.autopayments.get_mut(autopayment_id) {
                if *next_run != a.next_run {
                    a.resumed_past = a.resumed_past.or(Some(a.next_run));
                }
                a.status = auto::Status::Active;
                a.pause_reason = None;
                a.consecutive_failures = 0;
                a.next_run = *next_run;
            }
        }
        Event::AutopaymentCancelled { autopayment_id } => {
            if let Some(a) = state.autopayments.get_mut(autopayment_id) {
                a.status = auto::Status::Cancelled;
            }
        }

        Event::WalletRegistrationSubmitted {
            personal,
            currency,
            wallet_id,
        } => {
            state.registration_personal = Some(personal.clone());
            state.wallet_registration = Some(WalletRegistration {
                status: RequestStatus::Submitted,
                currency: *currency,
                wallet_id: *wallet_id,
                reason: None,
            });
        }
        Event::WalletRegistrationApproved { reason, .. }
        | Event::WalletRegistrationRejected { reason } => {
            let approved = matches!(event, Event::WalletRegistrationApproved { .. });
            if let Some(r) = &mut state.wallet_registration {
                r.status = if approved {
                    RequestStatus::Approved
                } else {
                    RequestStatus::Rejected
                };
                r.reason = Some(reason.clone());
            }
            state.registration_personal = None;
        }
        Event::WalletRegistrationCompleted { .. } => {
            if let Some(r) = &mut state.wallet_registration {
                r.status = RequestStatus::Completed;
            }
        }
        Event::PersonalDataChangeRequested {
            request_id,
            personal,
        } => state.data_changes.push(DataChangeRequest {
            request_id: *request_id,
            status: RequestStatus::Submitted,
            personal: personal.clone(),
            reason: None,
        }),
        Event::PersonalDataChangeApproved {
            request_id, reason, ..
        }
        | Event::PersonalDataChangeRejected { request_id, reason } => {
            let approved = matches!(event, Event::PersonalDataChangeApproved { .. });
            if let Some(r) = state
                .data_changes
                .iter_mut()
                .find(|r| r.request_id == *request_id)
            {
                r.status = if approved {
                    RequestStatus::Approved
                } else {
                    RequestStatus::Rejected
                };
                r.reason = Some(reason.clone());
            }
        }
        Event::ClientRegistered {
            personal,
            registered_by,
        } => {
            state.status = Status::Active;
            state.personal = Some(personal.clone());
            state.registered_by = Some(registered_by.clone());
        }
        Event::PersonalDataChanged { personal } => state.personal = Some(personal.clone()),
        Event::ClientBlocked { reason } => {
            state.status = Status::Blocked;
            state.block_reason = Some(reason.clone());
        }
        Event::ClientUnblocked => {
            state.status = Status::Active;
            state.block_reason = None;
        }
        Event::ClientTagged { tag, reason } => {
            state.tags.insert(tag.clone(), reason.clone());
        }
        Event::ClientUntagged { tag, .. } => {
            state.tags.remove(tag);
        }
        Event::PersonalDataErased { .. } => {
            state.erased = true;
            state.personal = None;
            state.registration_personal = None;
            for d in &mut state.documents {
                d.number = None;
            }
        }
        Event::DocumentAdded { document } => {
            if !state
                .documents
                .iter()
                .any(|d| d.document_id == document.document_id)
            {
                state.documents.push(document.clone());
            }
        }
        Event::CardBound { card } => {
            if !state.cards.iter().any(|c| c.card_id == card.card_id) {
                state.cards.push(card.clone());
            }
        }
        Event::ApplicationOpened { application_id } => {
            state.open_application = Some(*application_id)
        }
        Event::ApplicationClosed {
            application_id,
            outcome,
        } => {
            if state.open_application == Some(*application_id) {
                state.open_application = None;
            }
            if outcome == "disbursed" {
                state.loans_disbursed += 1;
            }
        }
        Event::ClientGroupChanged { group, .. } => state.group = Some(group.clone()),
        Event::ClientTimeZoneChanged { utc_offset } => state.utc_offset = Some(utc_offset.clone()),
        Event::SpendingCounted {
            amount,
            source,
            day,
            ..
        } => state.spending.apply(*amount, *source, *day, false),
        Event::SpendingReleased {
            amount,
            source,
            day,
            ..
        } => state.spending.apply(*amount, *source, *day, true),
    }
    state
}
