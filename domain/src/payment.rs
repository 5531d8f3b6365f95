//! Payments from a wallet (e-wallet spec §3.3): the operation lifecycle with statuses 0–9.
//!
//! ```text
//! 0 fraud control ─▶ 1 lock ─▶ 2 balance check ─▶ 3 reserve ─▶ 4 execute ─┬▶ 5 post-process ─▶ 6 success
//!   │ ▲                                                 │                  └▶ 7 release ─────▶ 8 error
//!   │ └─ 0 awaiting OTP confirmation (above the group's warning threshold)
//!   └─ declined ─────────────────────────────▶ 9 cancelled ◀── cancel (≤ 3)
//! ```
//! Reservation holds the amount on the wallet (`FundsHeld`) and counts it against the client
//! group's spend limits (`SpendingCounted` on the client); success captures the hold, failure
//! and cancellation release it and give the amount back (`SpendingReleased`). A payment above
//! the group's warning threshold stops in status 0 until the client confirms it with a
//! one-time password (`PaymentConfirmationRequested` → `PaymentConfirmed`); every limit is
//! checked again when it is confirmed. Statuses 6, 8 and 9 are final.
//!
//! A **transfer to another client's wallet** is a payment with a [`Recipient`] (service
//! [`TRANSFER_SERVICE`]): the same statuses 0–3 and limits, then the transfer process runs
//! across the two clients' partitions — `DebitTransfer` takes the held amount off the
//! sender's balance (status 4; the money is in transit), the recipient's wallet is credited
//! by `CreditTransfer` on its own partition, and `ExecutePayment` records the outcome: 6 when
//! the credit was accepted, or 7 → 8 with `TransferRefunded` giving the amount back to the
//! sender when it was refused. At every step Σ balances + Σ in transit is unchanged.
//!
//! A **payment from a bound bank card** (`StartFromCard`, spec §3.3 and §7.1) runs the same
//! fraud control, OTP and limits — the amount counts against the all-sources spend limits
//! only, and nothing is held on the wallet — then the card is authorised at the bank:
//! `CardAuthorisationRequested` (2) → `CardAuthorised` + `PaymentReserved` (3), or
//! `PaymentFailed` (8) when the bank declined. Execution at the provider leaves it at 5 until
//! the authorisation is captured (`CardAuthorisationCaptured` → 6), or at 7 until it is
//! released (`CardAuthorisationReleased` → 8). The wallet's balance never moves.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use crate::client;
use crate::command::{AggregateRef, Context, State, States};
use crate::error::Error;
use crate::ids::ClientId;
use crate::limits::{self, Source};
use crate::money::Money;
use crate::wallet;

/// Lifecycle status; the numeric code is the spec's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub enum Status {
    #[default]
    New,
    FraudControl,
    /// Status 0 still: above the warning threshold, waiting for the client's OTP.
    AwaitingConfirmation,
    Locked,
    BalanceChecked,
    Reserved,
    Executing,
    PostProcessingSuccess,
    Succeeded,
    PostProcessingFailure,
    Failed,
    Cancelled,
}

impl Status {
    /// The spec's numeric status (None before the payment exists).
    pub fn code(self) -> Option<u8> {
        Some(match self {
            Status::New => return None,
            Status::FraudControl | Status::AwaitingConfirmation => 0,
            Status::Locked => 1,
            Status::BalanceChecked => 2,
            Status::Reserved => 3,
            Status::Executing => 4,
            Status::PostProcessingSuccess => 5,
            Status::Succeeded => 6,
            Status::PostProcessingFailure => 7,
            Status::Failed => 8,
            Status::Cancelled => 9,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Succeeded | Status::Failed | Status::Cancelled)
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::FraudControl => "fraud_control",
            Status::AwaitingConfirmation => "awaiting_confirmation",
            Status::Locked => "locked",
            Status::BalanceChecked => "balance_checked",
            Status::Reserved => "reserved",
            Status::Executing => "executing",
            Status::PostProcessingSuccess => "post_processing_success",
            Status::Succeeded => "succeeded",
            Status::PostProcessingFailure => "post_processing_failure",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// The service id a transfer to another client's wallet is recorded under.
pub const TRANSFER_SERVICE: &str = "wallet-transfer";

/// The wallet a transfer to another client credits: its client (whose partition decides the
/// credit) and the wallet itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub client_id: ClientId,
    pub wallet_id: Uuid,
    /// The merchant order the transfer pays (the recipient is then the merchant's settlement
    /// wallet, and the credit pays the order or is refused — `merchant_order`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<Uuid>,
}

/// The bound card a payment is paid from: its id among the client's cards, the masked
/// number shown with the operation, and the bank's token the authorisation is asked with
/// (never the card number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSource {
    pub card_id: Uuid,
    pub masked_pan: String,
    pub token: String,
}

/// Outcome of fraud control for a new payment (from the fraud-monitoring port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FraudVerdict {
    Approved,
    Declined { reason: String },
}

/// Outcome of the processing attempt (from the payment-provider port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Execution {
    Succeeded { provider_reference: String },
    Failed { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Payment {
    pub status: Status,
    pub id: Uuid,
    pub client_id: Option<ClientId>,
    pub wallet_id: Uuid,
    pub amount: Option<Money>,
    pub service_id: String,
    pub attributes: BTreeMap<String, String>,
    pub provider_reference: Option<String>,
    pub failure_reason: Option<String>,
    /// The client's local day the amount counts against, once reserved.
    #[serde(default, with = "crate::time_serde::iso_date_option")]
    pub limit_day: Option<time::Date>,
    /// Requests to cancel the payment after it succeeded, oldest first (spec §3.4).
    #[serde(default)]
    pub cancellations: Vec<CancellationRequest>,
    /// The amount given back to the wallet by a cancellation that succeeded.
    #[serde(default)]
    pub refunded: Option<Money>,
    /// Set for a transfer to another client's wallet.
    #[serde(default)]
    pub recipient: Option<Recipient>,
    /// The commission charged on top of the amount (e-wallet spec §1.3, §3.1), in the
    /// amount's currency; none or zero when the operation has none.
    #[serde(default)]
    pub commission: Option<Money>,
    /// Set for a payment from a bound bank card (the wallet's balance never moves).
    #[serde(default)]
    pub card: Option<CardSource>,
    /// The bank's authorisation of a card payment, once authorised.
    #[serde(default)]
    pub authorisation_id: Option<String>,
}

impl Payment {
    /// What the operation takes from the wallet: the amount plus its commission (the hold,
    /// the capture, a release and a refund are of this sum; the provider is paid the amount).
    pub fn charged(&self) -> Option<Money> {
        let amount = self.amount?;
        Some(match self.commission {
            Some(c) if c.currency == amount.currency => {
                Money::new(amount.amount + c.amount, amount.currency)
            }
            _ => amount,
        })
    }

    /// Whether the payment is a transfer to another client's wallet.
    pub fn is_transfer(&self) -> bool {
        self.recipient.is_some()
    }

    /// Where the money comes from: a bound card or the wallet.
    pub fn source(&self) -> Source {
        if self.card.is_some() {
            Source::Card
        } else {
            Source::Wallet
        }
    }
}

/// Where a cancellation request stands (spec §3.4): New → Sent to processing | Rejected →
/// Succeeded | Processing error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancellationStatus {
    New,
    SentToProcessing,
    Rejected,
    Succeeded,
    ProcessingError,
}

impl CancellationStatus {
    pub fn label(self) -> &'static str {
        match self {
            CancellationStatus::New => "new",
            CancellationStatus::SentToProcessing => "sent_to_processing",
            CancellationStatus::Rejected => "rejected",
            CancellationStatus::Succeeded => "succeeded",
            CancellationStatus::ProcessingError => "processing_error",
        }
    }

    /// New or sent: no other request for the operation may be made meanwhile.
    pub fn is_pending(self) -> bool {
        matches!(
            self,
            CancellationStatus::New | CancellationStatus::SentToProcessing
        )
    }
}

/// A request to cancel a successful payment and refund the wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancellationRequest {
    pub request_id: Uuid,
    pub status: CancellationStatus,
    pub reason: String,
    /// Why the request was rejected, or the processing centre's error.
    pub error: Option<String>,
    /// The processing centre's reference of the cancellation once it succeeded.
    pub reference: Option<String>,
}

/// Commands of one payment from a wallet. The payment, its wallet and its client travel
/// with the command ([`crate::Command::Payment`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates the payment and runs it through fraud control, lock, balance check and
    /// reservation (statuses 0–3), or cancels it when fraud control declined (9).
    Start {
        amount: Money,
        service_id: String,
        attributes: BTreeMap<String, String>,
        fraud: FraudVerdict,
        /// The commission the edge computed from the processing dictionaries
        /// (`dictionaries::Catalogue::quote`), held and captured with the amount; must be in
        /// the amount's currency and not negative.
        #[serde(default)]
        commission: Option<Money>,
        /// The autopayment run this payment is (the autopayment process's start): refused
        /// with [`Error::AutopaymentRunNotDue`] unless the autopayment is active and at
        /// this run in the client's state. `None` for a payment the client makes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        autopayment_run: Option<crate::autopayment::DueRun>,
    },
    /// Starts a transfer to another client's wallet: like `Start` (statuses 0–3 under the
    /// same limits, the OTP above the warning threshold), recorded under
    /// [`TRANSFER_SERVICE`] with its recipient.
    StartTransfer {
        amount: Money,
        recipient: Recipient,
        attributes: BTreeMap<String, String>,
        fraud: FraudVerdict,
    },
    /// Starts a payment from the client's bound card `card_id`: like `Start` (fraud control,
    /// OTP above the warning threshold, the operation's bounds), counted against the
    /// all-sources spend limits only; then the card is to be authorised at the bank (2).
    StartFromCard {
        amount: Money,
        service_id: String,
        attributes: BTreeMap<String, String>,
        fraud: FraudVerdict,
        #[serde(default)]
        commission: Option<Money>,
        card_id: Uuid,
    },
    /// Records the bank's answer to a card payment's authorisation request (2 → 3 with the
    /// authorisation id in `provider_reference`, or 2 → 8 giving the amount back to the
    /// spend limits).
    RecordCardAuthorisation { outcome: Execution },
    /// Records that the bank captured (after a successful execution: 5 → 6) or released
    /// (after a failed one: 7 → 8) a card payment's authorisation.
    RecordCardSettlement,
    /// Debits a reserved transfer (3 → 4): the hold leaves the sender's balance and the
    /// amount is in transit until the recipient's wallet is credited or the sender refunded.
    DebitTransfer,
    /// Records the processing result of a reserved payment: 4 → 5 → 6 capturing the hold,
    /// or 4 → 7 → 8 releasing it. For a debited transfer, the recipient's answer: 4 → 5 → 6,
    /// or 4 → 7 → 8 refunding the sender; a transfer not yet debited can only fail (its hold
    /// is released).
    Execute { outcome: Execution },
    /// Cancels a payment not yet sent for execution (status ≤ 3), releasing its hold.
    Cancel { reason: String },
    /// Cancels a payment still waiting for the client's OTP once its confirmation timeout
    /// passed (status 0 → 9, reason [`CONFIRMATION_EXPIRED`]). Refused once the payment was
    /// confirmed: a confirmation decided before the expiry stands, whenever the payment
    /// process learns of it.
    ExpireConfirmation,
    /// Confirms a payment awaiting the client's OTP (the edge has checked the code): lock,
    /// balance check and reservation follow under the limits current now.
    Confirm,
    /// Requests the cancellation of the payment (spec §3.4). Refused while another request
    /// for it is new or sent to processing; otherwise recorded as new and checked at once —
    /// the payment's source must be the wallet, its type a payment, its status the final
    /// success (6) and nothing refunded yet — then sent to processing or rejected.
    RequestCancellation { request_id: Uuid, reason: String },
    /// Records the processing centre's answer to a cancellation sent to it: success refunds
    /// the wallet (and gives the amount back to the spend limits of the day it was counted
    /// in); a failure is a processing error. The checks are made again first.
    RecordCancellation {
        request_id: Uuid,
        outcome: Execution,
    },
}

/// The reason recorded when a payment waiting for the client's OTP is cancelled at its
/// confirmation timeout ([`Command::ExpireConfirmation`]).
pub const CONFIRMATION_EXPIRED: &str = "not confirmed in time";

impl Command {
    /// The command's name, as recorded with its command record.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Start { .. } => "StartPayment",
            Command::StartTransfer { .. } => "StartTransfer",
            Command::StartFromCard { .. } => "StartCardPayment",
            Command::RecordCardAuthorisation { .. } => "RecordCardAuthorisation",
            Command::RecordCardSettlement => "RecordCardSettlement",
            Command::DebitTransfer => "DebitTransfer",
            Command::Execute { .. } => "ExecutePayment",
            Command::Cancel { .. } => "CancelPayment",
            Command::ExpireConfirmation => "ExpirePaymentConfirmation",
            Command::Confirm => "ConfirmPayment",
            Command::RequestCancellation { .. } => "RequestPaymentCancellation",
            Command::RecordCancellation { .. } => "RecordPaymentCancellation",
        }
    }
}

/// Decides a command of payment `payment_id` from wallet `wallet_id` of `client`, against the
/// payment's, the wallet's and the client's states (missing: no events yet) and the group
/// catalogue of `context`. Reservation holds the amount on the wallet and counts it against
/// the spend limits of the client's local day; execution captures the hold, or releases it
/// and gives the amount back.
///
/// Errors: [`Error::PaymentAlreadyExists`], [`Error::PaymentNotFound`],
/// [`Error::WalletNotFound`], [`Error::ClientBlocked`], [`Error::ConfirmationNotAwaited`],
/// invalid transitions, the group's limits ([`Error::SpendLimitExceeded`], the operation's
/// bounds, [`Error::CurrencyNotAllowed`]) and the wallet's refusals.
pub fn decide(
    states: &States,
    client: ClientId,
    wallet_id: Uuid,
    payment_id: Uuid,
    command: &Command,
    context: &Context,
) -> Result<Vec<(AggregateRef, crate::Event)>, Error> {
    let p = match states.get(&AggregateRef::payment(payment_id)) {
        Some(State::Payment(p)) => p.clone(),
        _ => Payment {
            id: payment_id,
            ..Payment::default()
        },
    };
    let w = wallet::wallet_of(states, wallet_id);
    let owner = wallet::client_of(states, client);
    let pay = |e| (AggregateRef::payment(payment_id), crate::Event::Payment(e));
    let wal = |e| (AggregateRef::wallet(wallet_id), crate::Event::Wallet(e));
    let belongs =
        p.status != Status::New && p.wallet_id == wallet_id && p.client_id == Some(client);
    // Gives a reserved payment's amount back to the day it was counted against.
    let release_spending = |amount: Money| {
        p.limit_day.map(|day| {
            (
                AggregateRef::client(client),
                crate::Event::Client(client::Event::SpendingReleased {
                    operation_id: payment_id,
                    amount,
                    source: p.source(),
                    day,
                }),
            )
        })
    };
    match command {
        Command::Start {
            amount,
            service_id,
            attributes,
            fraud,
            commission,
            autopayment_run,
        } => {
            if let Some(run) = autopayment_run {
                run.check(&owner.autopayments)?;
            }
            let initiated = service_payment(
                payment_id,
                wallet_id,
                *amount,
                service_id,
                attributes,
                *commission,
                None,
            )?;
            start(&p, &w, &owner, initiated, fraud, context)
        }
        Command::StartFromCard {
            amount,
            service_id,
            attributes,
            fraud,
            commission,
            card_id,
        } => {
            let card = owner
                .cards
                .iter()
                .find(|c| c.card_id == *card_id)
                .ok_or(Error::CardNotFound(*card_id))?;
            let card = CardSource {
                card_id: card.card_id,
                masked_pan: card.masked_pan.clone(),
                token: card.token.clone(),
            };
            let initiated = service_payment(
                payment_id,
                wallet_id,
                *amount,
                service_id,
                attributes,
                *commission,
                Some(card),
            )?;
            start(&p, &w, &owner, initiated, fraud, context)
        }
        Command::RecordCardAuthorisation { outcome } => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            if p.card.is_none() || p.status != Status::BalanceChecked {
                return Err(transition_error(&p, "record a card authorisation"));
            }
            let amount = p.charged().ok_or(Error::PaymentNotFound(payment_id))?;
            Ok(match outcome {
                Execution::Succeeded { provider_reference } => vec![
                    pay(Event::CardAuthorised {
                        authorisation_id: provider_reference.clone(),
                    }),
                    pay(Event::PaymentReserved {
                        amount,
                        limit_day: p.limit_day,
                    }),
                ],
                Execution::Failed { reason } => {
                    let mut events: Vec<_> = release_spending(amount).into_iter().collect();
                    events.push(pay(Event::PaymentFailed {
                        reason: format!("the bank declined the card: {reason}"),
                    }));
                    events
                }
            })
        }
        Command::RecordCardSettlement => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            let amount = p.charged().ok_or(Error::PaymentNotFound(payment_id))?;
            match (p.card.is_some(), p.status) {
                (true, Status::PostProcessingSuccess) => Ok(vec![
                    pay(Event::CardAuthorisationCaptured),
                    pay(Event::PaymentSucceeded),
                ]),
                (true, Status::PostProcessingFailure) => {
                    let mut events = vec![pay(Event::CardAuthorisationReleased)];
                    events.extend(release_spending(amount));
                    events.push(pay(Event::PaymentFailed {
                        reason: p.failure_reason.clone().unwrap_or_default(),
                    }));
                    Ok(events)
                }
                _ => Err(transition_error(&p, "record a card settlement")),
            }
        }
        Command::StartTransfer {
            amount,
            recipient,
            attributes,
            fraud,
        } => {
            if recipient.wallet_id == wallet_id {
                return Err(Error::TransferToSameWallet);
            }
            let initiated = Event::PaymentInitiated {
                payment_id,
                wallet_id,
                amount: *amount,
                service_id: TRANSFER_SERVICE.into(),
                attributes: attributes.clone(),
                recipient: Some(*recipient),
                commission: None,
                card: None,
            };
            start(&p, &w, &owner, initiated, fraud, context)
        }
        Command::DebitTransfer => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            let Some(recipient) = p.recipient else {
                return Err(Error::Invalid(format!(
                    "payment {payment_id} is not a transfer to another client"
                )));
            };
            if p.status != Status::Reserved {
                return Err(transition_error(&p, "be debited"));
            }
            let amount = p.amount.ok_or(Error::PaymentNotFound(payment_id))?;
            Ok(vec![
                pay(Event::PaymentExecutionStarted),
                wal(wallet::Event::TransferDebited {
                    payment_id,
                    to_client_id: recipient.client_id,
                    to_wallet_id: recipient.wallet_id,
                    amount,
                }),
            ])
        }
        Command::Confirm => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            if p.status != Status::AwaitingConfirmation {
                return Err(Error::ConfirmationNotAwaited(payment_id));
            }
            let amount = p.charged().ok_or(Error::PaymentNotFound(payment_id))?;
            wallet::ensure_not_blocked(&owner)?;
            let group = context.groups.group_of(owner.group.as_ref())?;
            let limits = group.limits_in(amount.currency)?;
            let mut events = vec![pay(Event::PaymentConfirmed)];
            events.extend(reserve(
                &w,
                &owner,
                payment_id,
                amount,
                p.source(),
                limits,
                context,
            )?);
            Ok(events)
        }
        Command::Execute { outcome } => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            let amount = p.charged().ok_or(Error::PaymentNotFound(payment_id))?;
            if p.is_transfer() && p.status == Status::Executing {
                return Ok(record_transfer(
                    &p,
                    outcome,
                    amount,
                    release_spending(amount),
                ));
            }
            let debit_first = p.is_transfer() && matches!(outcome, Execution::Succeeded { .. });
            if p.status != Status::Reserved || debit_first {
                return Err(transition_error(&p, "be executed"));
            }
            let started = pay(Event::PaymentExecutionStarted);
            if p.card.is_some() {
                // The authorisation is captured or released next (`RecordCardSettlement`).
                return Ok(match outcome {
                    Execution::Succeeded { provider_reference } => vec![
                        started,
                        pay(Event::PaymentExecuted {
                            provider_reference: provider_reference.clone(),
                        }),
                    ],
                    Execution::Failed { reason } => vec![
                        started,
                        pay(Event::PaymentExecutionFailed {
                            reason: reason.clone(),
                        }),
                    ],
                });
            }
            Ok(match outcome {
                Execution::Succeeded { provider_reference } => vec![
                    started,
                    pay(Event::PaymentExecuted {
                        provider_reference: provider_reference.clone(),
                    }),
                    wal(wallet::Event::HoldCaptured { payment_id, amount }),
                    pay(Event::PaymentSucceeded),
                ],
                Execution::Failed { reason } => {
                    let mut events = vec![
                        started,
                        pay(Event::PaymentExecutionFailed {
                            reason: reason.clone(),
                        }),
                        wal(wallet::Event::HoldReleased { payment_id, amount }),
                    ];
                    events.extend(release_spending(amount));
                    events.push(pay(Event::PaymentFailed {
                        reason: reason.clone(),
                    }));
                    events
                }
            })
        }
        Command::RequestCancellation { request_id, reason } => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            if reason.trim().is_empty() || reason.chars().count() > 500 {
                return Err(Error::Invalid(
                    "a cancellation needs a reason of 1–500 characters".into(),
                ));
            }
            if let Some(pending) = p.cancellations.iter().find(|c| c.status.is_pending()) {
                return Err(Error::CancellationInProgress {
                    payment_id,
                    request_id: pending.request_id,
                });
            }
            if p.cancellations.iter().any(|c| c.request_id == *request_id) {
                return Err(Error::Invalid(format!(
                    "cancellation request {request_id} already exists"
                )));
            }
            let mut events = vec![pay(Event::CancellationRequested {
                request_id: *request_id,
                reason: reason.clone(),
            })];
            events.push(pay(match cancellation_refusal(&p) {
                Some(why) => Event::CancellationRejected {
                    request_id: *request_id,
                    reason: why,
                },
                None => Event::CancellationSentToProcessing {
                    request_id: *request_id,
                    wallet_id,
                    amount: p.amount.ok_or(Error::PaymentNotFound(payment_id))?,
                    service_id: p.service_id.clone(),
                    provider_reference: p.provider_reference.clone().unwrap_or_default(),
                },
            }));
            Ok(events)
        }
        Command::RecordCancellation {
            request_id,
            outcome,
        } => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            let Some(request) = p.cancellations.iter().find(|c| c.request_id == *request_id) else {
                return Err(Error::Invalid(format!(
                    "cancellation request {request_id} does not exist"
                )));
            };
            if request.status != CancellationStatus::SentToProcessing {
                return Err(Error::InvalidTransition {
                    aggregate: "cancellation request",
                    id: *request_id,
                    action: "be recorded",
                    status: request.status.label().into(),
                });
            }
            // The checks again: nothing may have changed the payment since it was sent.
            let outcome = match (cancellation_refusal(&p), outcome) {
                (Some(why), _) => Execution::Failed { reason: why },
                (None, outcome) => outcome.clone(),
            };
            match outcome {
                Execution::Failed { reason } => Ok(vec![pay(Event::CancellationFailed {
                    request_id: *request_id,
                    reason,
                })]),
                Execution::Succeeded { provider_reference } => {
                    // The wallet gets back all it was charged, the commission included.
                    let amount = p.charged().ok_or(Error::PaymentNotFound(payment_id))?;
                    let mut events = vec![
                        pay(Event::CancellationSucceeded {
                            request_id: *request_id,
                            reference: provider_reference,
                        }),
                        wal(wallet::Event::PaymentRefunded {
                            payment_id,
                            request_id: *request_id,
                            amount,
                        }),
                    ];
                    events.extend(release_spending(amount));
                    Ok(events)
                }
            }
        }
        Command::Cancel { .. } | Command::ExpireConfirmation => {
            if !belongs {
                return Err(Error::PaymentNotFound(payment_id));
            }
            let reason = if let Command::Cancel { reason } = command {
                if p.status.is_final() || p.status >= Status::Executing {
                    return Err(transition_error(&p, "be cancelled"));
                }
                // A card payment whose authorisation was asked for is settled at the bank,
                // not cancelled here.
                if p.card.is_some() && p.status >= Status::Locked {
                    return Err(transition_error(&p, "be cancelled"));
                }
                reason.as_str()
            } else {
                if p.status != Status::AwaitingConfirmation {
                    return Err(transition_error(&p, "expire unconfirmed"));
                }
                CONFIRMATION_EXPIRED
            };
            let mut events = Vec::new();
            if let Some(amount) = w.holds.get(&payment_id) {
                events.push(wal(wallet::Event::HoldReleased {
                    payment_id,
                    amount: *amount,
                }));
                events.extend(release_spending(*amount));
            }
            events.push(pay(Event::PaymentCancelled {
                reason: reason.to_owned(),
            }));
            Ok(events)
        }
    }
}

/// The `PaymentInitiated` of a payment to a service, from the wallet or `card`.
///
/// Errors: [`Error::Invalid`] for an empty service id or a negative commission, a commission
/// in another currency than the amount.
fn service_payment(
    payment_id: Uuid,
    wallet_id: Uuid,
    amount: Money,
    service_id: &str,
    attributes: &BTreeMap<String, String>,
    commission: Option<Money>,
    card: Option<CardSource>,
) -> Result<Event, Error> {
    if service_id.trim().is_empty() {
        return Err(Error::Invalid("service_id must not be empty".into()));
    }
    if let Some(c) = commission {
        c.ensure_currency(amount.currency)?;
        if c.amount.is_sign_negative() {
            return Err(Error::Invalid("a commission is never negative".into()));
        }
    }
    Ok(Event::PaymentInitiated {
        payment_id,
        wallet_id,
        amount,
        service_id: service_id.to_owned(),
        attributes: attributes.clone(),
        recipient: None,
        commission: commission.filter(|c| !c.amount.is_zero()),
        card,
    })
}

/// Starts a payment or a transfer with its `PaymentInitiated` event: declined by fraud
/// control → cancelled (9); above the warning threshold → waiting for the OTP (0); otherwise
/// reserved (1–3).
fn start(
    p: &Payment,
    w: &wallet::Wallet,
    owner: &client::Client,
    initiated: Event,
    fraud: &FraudVerdict,
    context: &Context,
) -> Result<Vec<(AggregateRef, crate::Event)>, Error> {
    let payment_id = p.id;
    if p.status != Status::New {
        return Err(Error::PaymentAlreadyExists(payment_id));
    }
    let Event::PaymentInitiated {
        amount,
        commission,
        card,
        ..
    } = &initiated
    else {
        return Err(Error::Invalid(
            "a payment starts with PaymentInitiated".into(),
        ));
    };
    // The warning threshold is of the operation's amount; the hold and the spend limits
    // count what leaves the wallet, the commission included.
    let operation = *amount;
    let amount = match commission {
        Some(c) => Money::new(operation.amount + c.amount, operation.currency),
        None => operation,
    };
    let client = crate::ids::ClientId(owner.id);
    let source = if card.is_some() {
        Source::Card
    } else {
        Source::Wallet
    };
    let pay = |e| (AggregateRef::payment(payment_id), crate::Event::Payment(e));
    if let FraudVerdict::Declined { reason } = fraud {
        // The wallet must still be the client's: a declined payment is recorded on it.
        if w.client_id != Some(client) || w.status != wallet::Status::Open {
            return Err(Error::WalletNotFound(w.id));
        }
        return Ok(vec![
            pay(initiated),
            pay(Event::PaymentCancelled {
                reason: format!("fraud control: {reason}"),
            }),
        ]);
    }
    wallet::ensure_not_blocked(owner)?;
    let group = context.groups.group_of(owner.group.as_ref())?;
    let limits = group.limits_in(amount.currency)?;
    if limits.needs_confirmation(operation.amount) {
        // Nothing is reserved before the client confirms, but a payment that could not go
        // through now is refused now rather than after the OTP.
        check_source(w, client, amount, source, limits)?;
        owner.spending.check(
            limits,
            amount,
            source,
            limits::local_day(context.now, owner.offset()),
        )?;
        let threshold = limits.warning_threshold.unwrap_or(operation.amount);
        return Ok(vec![
            pay(initiated),
            pay(Event::PaymentConfirmationRequested {
                threshold: Money::new(threshold, amount.currency),
            }),
        ]);
    }
    let mut events = vec![pay(initiated)];
    events.extend(reserve(
        w, owner, payment_id, amount, source, limits, context,
    )?);
    Ok(events)
}

/// Checks that `amount` may be taken from `source`: from the wallet, that it can be held on
/// it; from a card, that the wallet is the client's open one in the amount's currency and
/// the amount within the operation's bounds (the bank checks the card's funds).
fn check_source(
    w: &wallet::Wallet,
    client: ClientId,
    amount: Money,
    source: Source,
    limits: &limits::CurrencyLimits,
) -> Result<(), Error> {
    match source {
        Source::Wallet => wallet::check_hold(w, client, amount, limits),
        Source::Card => {
            amount.ensure_currency(w.owned_open(client)?)?;
            limits.check_operation(amount)
        }
    }
}

/// The recipient's answer to a debited transfer: 5 → 6, or 7 → 8 with the sender refunded
/// and the amount given back to the spend limits (`released`).
fn record_transfer(
    p: &Payment,
    outcome: &Execution,
    amount: Money,
    released: Option<(AggregateRef, crate::Event)>,
) -> Vec<(AggregateRef, crate::Event)> {
    let pay = |e| (AggregateRef::payment(p.id), crate::Event::Payment(e));
    match outcome {
        Execution::Succeeded { provider_reference } => vec![
            pay(Event::PaymentExecuted {
                provider_reference: provider_reference.clone(),
            }),
            pay(Event::PaymentSucceeded),
        ],
        Execution::Failed { reason } => {
            let mut events = vec![
                pay(Event::PaymentExecutionFailed {
                    reason: reason.clone(),
                }),
                (
                    AggregateRef::wallet(p.wallet_id),
                    crate::Event::Wallet(wallet::Event::TransferRefunded {
                        payment_id: p.id,
                        amount,
                        reason: reason.clone(),
                    }),
                ),
            ];
            events.extend(released);
            events.push(pay(Event::PaymentFailed {
                reason: reason.clone(),
            }));
            events
        }
    }
}

/// Statuses 1–3: lock, balance check, and the reservation — the hold on the wallet and the
/// amount counted against the spend limits of the client's local day. From a card, the
/// amount is counted against the all-sources limits and the bank is asked to authorise it
/// (status 2 until it answers).
fn reserve(
    w: &wallet::Wallet,
    owner: &client::Client,
    payment_id: Uuid,
    amount: Money,
    source: Source,
    limits: &limits::CurrencyLimits,
    context: &Context,
) -> Result<Vec<(AggregateRef, crate::Event)>, Error> {
    let client = crate::ids::ClientId(owner.id);
    check_source(w, client, amount, source, limits)?;
    let day = limits::local_day(context.now, owner.offset());
    owner.spending.check(limits, amount, source, day)?;
    let pay = |e| (AggregateRef::payment(payment_id), crate::Event::Payment(e));
    let counted = (
        AggregateRef::client(client),
        crate::Event::Client(client::Event::SpendingCounted {
            operation_id: payment_id,
            amount,
            source,
            day,
        }),
    );
    if source == Source::Card {
        return Ok(vec![
            pay(Event::PaymentLocked),
            pay(Event::PaymentBalanceChecked),
            counted,
            pay(Event::CardAuthorisationRequested {
                amount,
                limit_day: day,
            }),
        ]);
    }
    Ok(vec![
        pay(Event::PaymentLocked),
        pay(Event::PaymentBalanceChecked),
        (
            AggregateRef::wallet(w.id),
            crate::Event::Wallet(wallet::Event::FundsHeld { payment_id, amount }),
        ),
        (
            AggregateRef::client(client),
            crate::Event::Client(client::Event::SpendingCounted {
                operation_id: payment_id,
                amount,
                source: Source::Wallet,
                day,
            }),
        ),
        pay(Event::PaymentReserved {
            amount,
            limit_day: Some(day),
        }),
    ])
}

/// Checks 2–4 of spec §3.4 on a payment that exists: why a cancellation of it must be
/// rejected, or `None`. Every operation here is paid from the wallet source; a transfer to
/// another client's wallet is the wrong operation type; what remains is the final success
/// status, and no refund yet.
fn cancellation_refusal(p: &Payment) -> Option<String> {
    if let Some(card) = &p.card {
        return Some(format!(
            "the operation was paid from the bank card {}; only operations from the wallet source can be cancelled",
            card.masked_pan
        ));
    }
    if p.is_transfer() {
        return Some(
            "the operation is a transfer to another client's wallet; only payments can be cancelled"
                .into(),
        );
    }
    if p.refunded.is_some() {
        return Some("the operation was already refunded".into());
    }
    if p.status != Status::Succeeded {
        return Some(format!(
            "the operation is {} ({}), not in its final success status (6)",
            p.status.label(),
            p.status
                .code()
                .map_or_else(|| "-".to_owned(), |c| c.to_string())
        ));
    }
    None
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    PaymentInitiated {
        payment_id: Uuid,
        wallet_id: Uuid,
        amount: Money,
        service_id: String,
        attributes: BTreeMap<String, String>,
        /// Set for a transfer to another client's wallet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recipient: Option<Recipient>,
        /// The commission charged on top of the amount, when there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        commission: Option<Money>,
        /// Set for a payment from a bound bank card.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card: Option<CardSource>,
    },
    /// Above the group's warning threshold: the client must confirm with an OTP.
    PaymentConfirmationRequested {
        threshold: Money,
    },
    /// The client confirmed the payment with its OTP.
    PaymentConfirmed,
    PaymentLocked,
    PaymentBalanceChecked,
    PaymentReserved {
        amount: Money,
        /// The client's local day the amount counts against (absent on payments reserved
        /// before spend limits were kept).
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "crate::time_serde::iso_date_option"
        )]
        limit_day: Option<time::Date>,
    },
    /// A card payment passed its checks: the bank is asked to authorise `amount` (the
    /// amount with its commission), counted against the spend limits of `limit_day`.
    CardAuthorisationRequested {
        amount: Money,
        #[serde(with = "crate::schedule::iso_date")]
        limit_day: time::Date,
    },
    /// The bank authorised the card payment.
    CardAuthorised {
        authorisation_id: String,
    },
    /// The bank captured the authorisation of a card payment executed at the provider.
    CardAuthorisationCaptured,
    /// The bank released the authorisation of a card payment whose execution failed.
    CardAuthorisationReleased,
    PaymentExecutionStarted,
    PaymentExecuted {
        provider_reference: String,
    },
    PaymentSucceeded,
    PaymentExecutionFailed {
        reason: String,
    },
    PaymentFailed {
        reason: String,
    },
    PaymentCancelled {
        reason: String,
    },
    /// A cancellation of the (successful) payment was requested: status New.
    CancellationRequested {
        request_id: Uuid,
        reason: String,
    },
    /// The request failed its checks (spec §3.4): status Rejected.
    CancellationRejected {
        request_id: Uuid,
        reason: String,
    },
    /// The request passed its checks and goes to the processing centre, with what it needs
    /// to reverse the payment: status Sent to processing.
    CancellationSentToProcessing {
        request_id: Uuid,
        wallet_id: Uuid,
        amount: Money,
        service_id: String,
        provider_reference: String,
    },
    /// The processing centre reversed the payment; the wallet is refunded in the same
    /// command: status Succeeded.
    CancellationSucceeded {
        request_id: Uuid,
        reference: String,
    },
    /// The processing centre could not reverse it, or the checks failed again: status
    /// Processing error.
    CancellationFailed {
        request_id: Uuid,
        reason: String,
    },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::PaymentInitiated { .. } => "PaymentInitiated",
            Event::PaymentConfirmationRequested { .. } => "PaymentConfirmationRequested",
            Event::PaymentConfirmed => "PaymentConfirmed",
            Event::PaymentLocked => "PaymentLocked",
            Event::PaymentBalanceChecked => "PaymentBalanceChecked",
            Event::PaymentReserved { .. } => "PaymentReserved",
            Event::PaymentExecutionStarted => "PaymentExecutionStarted",
            Event::CardAuthorisationRequested { .. } => "CardAuthorisationRequested",
            Event::CardAuthorised { .. } => "CardAuthorised",
            Event::CardAuthorisationCaptured => "CardAuthorisationCaptured",
            Event::CardAuthorisationReleased => "CardAuthorisationReleased",
            Event::PaymentExecuted { .. } => "PaymentExecuted",
            Event::PaymentSucceeded => "PaymentSucceeded",
            Event::PaymentExecutionFailed { .. } => "PaymentExecutionFailed",
            Event::PaymentFailed { .. } => "PaymentFailed",
            Event::PaymentCancelled { .. } => "PaymentCancelled",
            Event::CancellationRequested { .. } => "CancellationRequested",
            Event::CancellationRejected { .. } => "CancellationRejected",
            Event::CancellationSentToProcessing { .. } => "CancellationSentToProcessing",
            Event::CancellationSucceeded { .. } => "CancellationSucceeded",
            Event::CancellationFailed { .. } => "CancellationFailed",
        }
    }
}

pub fn evolve(mut state: Payment, client: ClientId, event: &Event) -> Payment {
    match event {
        Event::PaymentInitiated {
            payment_id,
            wallet_id,
            amount,
            service_id,
            attributes,
            recipient,
            commission,
            card,
        } => {
            state.id = *payment_id;
            state.card = card.clone();
            state.recipient = *recipient;
            state.commission = *commission;
            state.client_id = Some(client);
            state.wallet_id = *wallet_id;
            state.amount = Some(*amount);
            state.service_id = service_id.clone();
            state.attributes = attributes.clone();
            state.status = Status::FraudControl;
        }
        Event::PaymentConfirmationRequested { .. } => state.status = Status::AwaitingConfirmation,
        Event::PaymentConfirmed => state.status = Status::FraudControl,
        Event::PaymentLocked => state.status = Status::Locked,
        Event::PaymentBalanceChecked => state.status = Status::BalanceChecked,
        Event::PaymentReserved { limit_day, .. } => {
            state.status = Status::Reserved;
            state.limit_day = *limit_day;
        }
        Event::CardAuthorisationRequested { limit_day, .. } => {
            state.limit_day = Some(*limit_day);
        }
        Event::CardAuthorised { authorisation_id } => {
            state.authorisation_id = Some(authorisation_id.clone());
        }
        Event::CardAuthorisationCaptured | Event::CardAuthorisationReleased => {}
        Event::PaymentExecutionStarted => state.status = Status::Executing,
        Event::PaymentExecuted { provider_reference } => {
            state.provider_reference = Some(provider_reference.clone());
            state.status = Status::PostProcessingSuccess;
        }
        Event::PaymentSucceeded => state.status = Status::Succeeded,
        Event::PaymentExecutionFailed { reason } => {
            state.failure_reason = Some(reason.clone());
            state.status = Status::PostProcessingFailure;
        }
        Event::PaymentFailed { reason } => {
            state.failure_reason = Some(reason.clone());
            state.status = Status::Failed;
        }
        Event::PaymentCancelled { reason } => {
            state.failure_reason = Some(reason.clone());
            state.status = Status::Cancelled;
        }
        Event::CancellationRequested { request_id, reason } => {
            state.cancellations.push(CancellationRequest {
                request_id: *request_id,
                status: CancellationStatus::New,
                reason: reason.clone(),
                error: None,
                reference: None,
            })
        }
        Event::CancellationRejected { request_id, reason }
        | Event::CancellationFailed { request_id, reason } => {
            let status = if matches!(event, Event::CancellationRejected { .. }) {
                CancellationStatus::Rejected
            } else {
                CancellationStatus::ProcessingError
            };
            if let Some(c) = state
                .cancellations
                .iter_mut()
                .find(|c| c.request_id == *request_id)
            {
                c.status = status;
                c.error = Some(reason.clone());
            }
        }
        Event::CancellationSentToProcessing { request_id, .. } => {
            if let Some(c) = state
                .cancellations
                .iter_mut()
                .find(|c| c.request_id == *request_id)
            {
                c.status = CancellationStatus::SentToProcessing;
            }
        }
        Event::CancellationSucceeded {
            request_id,
            reference,
        } => {
            if let Some(c) = state
                .cancellations
                .iter_mut()
                .find(|c| c.request_id == *request_id)
            {
                c.status = CancellationStatus::Succeeded;
                c.reference = Some(reference.clone());
            }
            state.refunded = state.charged();
        }
    }
    state
}

fn transition_error(state: &Payment, action: &'static str) -> Error {
    if state.status == Status::New {
        return Error::PaymentNotFound(state.id);
    }
    Error::InvalidTransition {
        aggregate: "payment",
        id: state.id,
        action,
        status: state.status.label().into(),
    }
}
