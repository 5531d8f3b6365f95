//! Merchant orders paid through the platform's checkout (e-wallet spec §7.2).
//!
//! A merchant (a partner shop with a settlement wallet, whose client id is the partition key
//! of its orders) creates an order — number, amount, description, return URL. The buyer pays
//! it on the checkout page:
//!
//! - **with the wallet** (signed in): a transfer from the buyer's wallet to the merchant's
//!   settlement wallet that names the order (`payment::Recipient::order_id`). The credit step
//!   on the merchant's partition decides the wallet's `TransferCredited` and the order's
//!   [`Event::MerchantOrderPaid`] together ([`accept_wallet_payment`]); an order already paid,
//!   expired or of another amount refuses the credit and the transfer process refunds the
//!   buyer — an order is never paid twice and no money is lost.
//! - **with a card** (not signed in): the checkout authorises the amount at the card through
//!   the bank-system port, then records [`Command::RecordCardPayment`]; a refusal (the order
//!   was paid meanwhile) releases the authorisation. The checkout process captures it.
//!
//! Once paid, the checkout process ([`step`]) captures a card authorisation and notifies the
//! merchant by a signed callback, retried with exponential backoff until the merchant
//! acknowledges it (HTTP 2xx), then records [`Event::MerchantNotified`].

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::command::{AggregateKind, AggregateRef, Context, State as AnyState, States};
use crate::error::Error;
use crate::ids::ClientId;
use crate::money::Money;
use crate::Event as AnyEvent;

/// The process name of the checkout process (instances, command ids).
pub const PROCESS: &str = "merchant-checkout";
/// How long an order may be paid when the merchant names no lifetime.
pub const DEFAULT_LIFETIME: Duration = Duration::hours(24);
/// The longest lifetime a merchant may give an order.
pub const MAX_LIFETIME: Duration = Duration::days(30);

/// The merchant's order number: 1–64 characters of `A–Z a–z 0–9 - _ . /`, unique per
/// merchant (the order id is derived from it, [`order_id`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OrderNumber(String);

impl OrderNumber {
    /// Errors: [`Error::Invalid`] naming the rule.
    pub fn parse(s: &str) -> Result<OrderNumber, Error> {
        let ok = (1..=64).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'));
        if ok {
            Ok(OrderNumber(s.to_owned()))
        } else {
            Err(Error::Invalid(
                "order number must be 1–64 characters of A–Z, a–z, 0–9, '-', '_', '.', '/'".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An absolute `http` or `https` URL of at most 2,000 characters without credentials: where
/// the checkout sends the buyer back, or where the merchant's callback goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct WebUrl(String);

impl WebUrl {
    /// Errors: [`Error::Invalid`] naming what is wrong.
    pub fn parse(s: &str) -> Result<WebUrl, Error> {
        if s.len() > 2000 {
            return Err(Error::Invalid("a URL is at most 2000 characters".into()));
        }
        let url = url::Url::parse(s).map_err(|e| Error::Invalid(format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(Error::Invalid(
                "a URL must be absolute http or https".into(),
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Error::Invalid("a URL must not carry credentials".into()));
        }
        Ok(WebUrl(url.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The order id of a merchant's order number: UUID v5 of the merchant id, so a number is
/// one order per merchant.
pub fn order_id(merchant: ClientId, number: &OrderNumber) -> Uuid {
    crate::ids::derived_id(merchant.0, &format!("merchant-order/{}", number.as_str()))
}

/// How an order was paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Wallet,
    Card,
}

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No such order.
    #[default]
    Absent,
    /// Created, waiting for the buyer (until `expires_at`).
    AwaitingPayment,
    /// Paid; the merchant is being notified.
    Paid,
    /// Paid and the merchant acknowledged the callback.
    Notified,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Absent => "absent",
            Status::AwaitingPayment => "awaiting_payment",
            Status::Paid => "paid",
            Status::Notified => "notified",
        }
    }
}

/// The payment that paid an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The buyer's transfer (wallet) or the card payment's id.
    pub payment_id: Uuid,
    pub source: Source,
    /// The buyer, when paid with a wallet.
    pub payer_client_id: Option<ClientId>,
    /// The bank's authorisation, when paid with a card.
    pub authorisation_id: Option<String>,
    /// The card number as shown on the receipt (`220000******0004`), when paid with a card.
    pub masked_pan: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub paid_at: OffsetDateTime,
    /// Whether the card authorisation was captured (always true for a wallet).
    pub captured: bool,
}

/// A merchant's order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Order {
    pub id: Uuid,
    pub status: Status,
    pub merchant_id: Option<ClientId>,
    pub number: Option<OrderNumber>,
    pub amount: Option<Money>,
    pub description: String,
    pub return_url: Option<WebUrl>,
    #[serde(default, with = "crate::time_serde::rfc3339_option")]
    pub created_at: Option<OffsetDateTime>,
    #[serde(default, with = "crate::time_serde::rfc3339_option")]
    pub expires_at: Option<OffsetDateTime>,
    pub payment: Option<Payment>,
    /// Callback attempts until the merchant acknowledged.
    pub notified_after_attempts: Option<u32>,
}

impl Order {
    /// Refuses paying `amount` now unless the order awaits payment, has not expired and is
    /// of exactly that amount.
    ///
    /// Errors: `order_not_found`, `order_not_payable` (paid already), `order_expired`,
    /// `currency_mismatch` / `invalid_command` (another amount).
    pub fn ensure_payable(&self, amount: Money, now: OffsetDateTime) -> Result<(), Error> {
        match self.status {
            Status::Absent => return Err(Error::OrderNotFound(self.id)),
            Status::AwaitingPayment => {}
            Status::Paid | Status::Notified => return Err(Error::OrderNotPayable(self.id)),
        }
        if self.expires_at.is_some_and(|t| now >= t) {
            return Err(Error::OrderExpired(self.id));
        }
        let due = self.amount.ok_or(Error::OrderNotFound(self.id))?;
        amount.ensure_currency(due.currency)?;
        if amount.amount != due.amount {
            return Err(Error::Invalid(format!(
                "order {} is for {} {}, not {}",
                self.id, due.amount, due.currency, amount.amount
            )));
        }
        Ok(())
    }
}

/// Commands of a merchant order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates the order; refused if the merchant already has an order with this number.
    Create {
        number: OrderNumber,
        amount: Money,
        description: String,
        return_url: WebUrl,
        /// How long the order may be paid (default [`DEFAULT_LIFETIME`], at most
        /// [`MAX_LIFETIME`]).
        lifetime_seconds: Option<i64>,
    },
    /// Records a card payment the bank authorised for the order's amount.
    RecordCardPayment {
        payment_id: Uuid,
        authorisation_id: String,
        masked_pan: String,
        amount: Money,
    },
    /// Records that the bank captured the card authorisation.
    RecordCardCapture,
    /// Records that the merchant acknowledged the callback after `attempts` attempts.
    RecordMerchantNotified { attempts: u32 },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Create { .. } => "CreateMerchantOrder",
            Command::RecordCardPayment { .. } => "RecordCardPayment",
            Command::RecordCardCapture => "RecordCardCapture",
            Command::RecordMerchantNotified { .. } => "RecordMerchantNotified",
        }
    }
}

/// Events of a merchant order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    MerchantOrderCreated {
        order_id: Uuid,
        number: OrderNumber,
        amount: Money,
        description: String,
        return_url: WebUrl,
        #[serde(with = "time::serde::rfc3339")]
        created_at: OffsetDateTime,
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// Paid: by the buyer's wallet (the transfer `payment_id`, credited to the merchant's
    /// settlement wallet in the same commit) or by a card authorisation.
    MerchantOrderPaid {
        payment_id: Uuid,
        source: Source,
        amount: Money,
        #[serde(with = "time::serde::rfc3339")]
        paid_at: OffsetDateTime,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payer_client_id: Option<ClientId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        authorisation_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        masked_pan: Option<String>,
    },
    /// The bank captured the card authorisation of the order's payment.
    MerchantOrderCardCaptured { authorisation_id: String },
    /// The merchant acknowledged the callback after `attempts` attempts.
    MerchantNotified { attempts: u32 },
}

impl Event {
    pub fn name(&self) -> &'static str {
        match self {
            Event::MerchantOrderCreated { .. } => "MerchantOrderCreated",
            Event::MerchantOrderPaid { .. } => "MerchantOrderPaid",
            Event::MerchantOrderCardCaptured { .. } => "MerchantOrderCardCaptured",
            Event::MerchantNotified { .. } => "MerchantNotified",
        }
    }
}

impl AggregateRef {
    pub fn merchant_order(id: Uuid) -> Self {
        AggregateRef {
            kind: AggregateKind::MerchantOrder,
            id,
        }
    }
}

/// The order's state in `states` (an absent order when missing).
pub fn order_of(states: &States, id: Uuid) -> Order {
    match states.get(&AggregateRef::merchant_order(id)) {
        Some(AnyState::MerchantOrder(o)) => o.clone(),
        _ => Order {
            id,
            ..Order::default()
        },
    }
}

/// Decides a command of the order `order_id` of `merchant`.
///
/// Errors: `order_already_exists`, `order_not_found`, `order_not_payable`, `order_expired`,
/// `invalid_transition`, `invalid_command` (a description over 500 characters, a lifetime
/// outside 1 minute … 30 days, an amount other than the order's).
pub fn decide(
    states: &States,
    merchant: ClientId,
    order_id: Uuid,
    command: &Command,
    context: &Context,
) -> Result<Vec<(AggregateRef, AnyEvent)>, Error> {
    let order = order_of(states, order_id);
    if order.merchant_id.is_some_and(|m| m != merchant) {
        return Err(Error::OrderNotFound(order_id));
    }
    let events = match command {
        Command::Create {
            number,
            amount,
            description,
            return_url,
            lifetime_seconds,
        } => {
            if order.status != Status::Absent {
                return Err(Error::OrderAlreadyExists(order_id));
            }
            if order_id != self::order_id(merchant, number) {
                return Err(Error::Invalid(
                    "the order id is not the one of its number".into(),
                ));
            }
            if amount.amount <= rust_decimal::Decimal::ZERO {
                return Err(Error::Invalid("an order's amount must be positive".into()));
            }
            if description.chars().count() > 500 {
                return Err(Error::Invalid(
                    "description is at most 500 characters".into(),
                ));
            }
            let lifetime = match lifetime_seconds {
                None => DEFAULT_LIFETIME,
                Some(s) => Duration::seconds(*s),
            };
            if lifetime < Duration::minutes(1) || lifetime > MAX_LIFETIME {
                return Err(Error::Invalid(
                    "lifetime_seconds must be 60 … 2592000".into(),
                ));
            }
            vec![Event::MerchantOrderCreated {
                order_id,
                number: number.clone(),
                amount: *amount,
                description: description.clone(),
                return_url: return_url.clone(),
                created_at: context.now,
                expires_at: context.now + lifetime,
            }]
        }
        Command::RecordCardPayment {
            payment_id,
            authorisation_id,
            masked_pan,
            amount,
        } => {
            order.ensure_payable(*amount, context.now)?;
            vec![Event::MerchantOrderPaid {
                payment_id: *payment_id,
                source: Source::Card,
                amount: *amount,
                paid_at: context.now,
                payer_client_id: None,
                authorisation_id: Some(authorisation_id.clone()),
                masked_pan: Some(masked_pan.clone()),
            }]
        }
        Command::RecordCardCapture => match &order.payment {
            Some(Payment {
                source: Source::Card,
                authorisation_id: Some(authorisation),
                captured: false,
                ..
            }) => vec![Event::MerchantOrderCardCaptured {
                authorisation_id: authorisation.clone(),
            }],
            _ => return Err(transition(&order, "record a card capture")),
        },
        Command::RecordMerchantNotified { attempts } => {
            if order.status != Status::Paid {
                return Err(transition(&order, "record the merchant's acknowledgement"));
            }
            vec![Event::MerchantNotified {
                attempts: *attempts,
            }]
        }
    };
    let target = AggregateRef::merchant_order(order_id);
    Ok(events
        .into_iter()
        .map(|e| (target, AnyEvent::MerchantOrder(e)))
        .collect())
}

/// The credit step of a wallet payment of the order (called by the merchant's settlement
/// wallet's `CreditTransfer`): the order's [`Event::MerchantOrderPaid`], or the refusal
/// that makes the transfer process refund the buyer.
///
/// Errors: as [`Order::ensure_payable`].
pub fn accept_wallet_payment(
    states: &States,
    merchant: ClientId,
    order_id: Uuid,
    transfer_id: Uuid,
    payer: ClientId,
    amount: Money,
    now: OffsetDateTime,
) -> Result<(AggregateRef, AnyEvent), Error> {
    let order = order_of(states, order_id);
    if order.merchant_id.is_some_and(|m| m != merchant) {
        return Err(Error::OrderNotFound(order_id));
    }
    order.ensure_payable(amount, now)?;
    Ok((
        AggregateRef::merchant_order(order_id),
        AnyEvent::MerchantOrder(Event::MerchantOrderPaid {
            payment_id: transfer_id,
            source: Source::Wallet,
            amount,
            paid_at: now,
            payer_client_id: Some(payer),
            authorisation_id: None,
            masked_pan: None,
        }),
    ))
}

fn transition(order: &Order, action: &'static str) -> Error {
    Error::InvalidTransition {
        aggregate: "merchant order",
        id: order.id,
        action,
        status: order.status.as_str().into(),
    }
}

/// Folds one event into the order (`merchant`: the event's client id).
pub fn evolve(mut order: Order, merchant: ClientId, event: &Event) -> Order {
    match event {
        Event::MerchantOrderCreated {
            order_id,
            number,
            amount,
            description,
            return_url,
            created_at,
            expires_at,
        } => {
            order.id = *order_id;
            order.status = Status::AwaitingPayment;
            order.merchant_id = Some(merchant);
            order.number = Some(number.clone());
            order.amount = Some(*amount);
            order.description = description.clone();
            order.return_url = Some(return_url.clone());
            order.created_at = Some(*created_at);
            order.expires_at = Some(*expires_at);
        }
        Event::MerchantOrderPaid {
            payment_id,
            source,
            payer_client_id,
            authorisation_id,
            masked_pan,
            paid_at,
            ..
        } => {
            order.status = Status::Paid;
            order.payment = Some(Payment {
                payment_id: *payment_id,
                source: *source,
                payer_client_id: *payer_client_id,
                authorisation_id: authorisation_id.clone(),
                masked_pan: masked_pan.clone(),
                paid_at: *paid_at,
                captured: *source == Source::Wallet,
            });
        }
        Event::MerchantOrderCardCaptured { .. } => {
            if let Some(p) = order.payment.as_mut() {
                p.captured = true;
            }
        }
        Event::MerchantNotified { attempts } => {
            order.status = Status::Notified;
            order.notified_after_attempts = Some(*attempts);
        }
    }
    order
}

// ---- the checkout process ----------------------------------------------------------------

/// What the checkout process knows of a paid order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    pub merchant_id: ClientId,
    pub order_id: Uuid,
    /// The card authorisation to capture before the merchant is told, if paid by card.
    pub authorisation_id: Option<String>,
}

/// The checkout process's timing (10 s a call, backoff from 1 s doubling to 10 min).
pub type Policy = crate::retry::Policy;

/// A checkout process instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stage {
    /// Capturing the card authorisation (attempts so far).
    Capturing {
        notice: Notice,
        attempts: u32,
    },
    /// Calling the merchant back (attempts so far).
    Notifying {
        notice: Notice,
        attempts: u32,
    },
    /// The merchant acknowledged after `attempts`; recording it.
    Recording {
        notice: Notice,
        attempts: u32,
    },
    Done,
}

/// What happened to the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The order was paid (its `MerchantOrderPaid`).
    Paid { at: OffsetDateTime, notice: Notice },
    /// The card authorisation was captured (`MerchantOrderCardCaptured`).
    Captured { at: OffsetDateTime },
    /// The merchant's acknowledgement was recorded (`MerchantNotified`).
    Notified,
    /// The instance's timer fired.
    Due { now: OffsetDateTime },
    /// The bank captured the authorisation.
    CaptureSucceeded { now: OffsetDateTime },
    /// The merchant answered the callback with 2xx.
    Acknowledged { now: OffsetDateTime },
    /// The call failed or the merchant did not acknowledge (a non-2xx answer, a timeout).
    Failed { now: OffsetDateTime },
}

/// What the runner does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Captures the card authorisation at the bank (idempotent by the authorisation id).
    Capture { authorisation_id: String },
    /// Records the capture on the order under the step id `capture`.
    RecordCapture { notice: Notice },
    /// POSTs the signed callback (attempt number, 1-based).
    Callback { notice: Notice, attempt: u32 },
    /// Records the acknowledgement under the step id `notified`.
    RecordNotified { notice: Notice, attempts: u32 },
    /// Sets (or clears) the instance's timer.
    WakeAt(Option<OffsetDateTime>),
}

/// The checkout process: pure, the runner executes the actions and feeds back the answers.
/// A call is always preceded by a timer one `attempt_timeout` later, so a runner that dies
/// mid-call repeats it.
pub fn step(stage: Option<Stage>, input: Input, policy: &Policy) -> (Option<Stage>, Vec<Action>) {
    use Action as A;
    match (stage, input) {
        (None, Input::Paid { at, notice }) => {
            let next = if notice.authorisation_id.is_some() {
                Stage::Capturing {
                    notice,
                    attempts: 0,
                }
            } else {
                Stage::Notifying {
                    notice,
                    attempts: 0,
                }
            };
            (Some(next), vec![A::WakeAt(Some(at))])
        }
        (Some(Stage::Capturing { notice, .. }), Input::Captured { at }) => (
            Some(Stage::Notifying {
                notice,
                attempts: 0,
            }),
            vec![A::WakeAt(Some(at))],
        ),
        (Some(Stage::Capturing { notice, attempts }), Input::Due { now }) => {
            let Some(authorisation_id) = notice.authorisation_id.clone() else {
                return (
                    Some(Stage::Notifying {
                        notice,
                        attempts: 0,
                    }),
                    vec![A::WakeAt(Some(now))],
                );
            };
            (
                Some(Stage::Capturing {
                    notice,
                    attempts: attempts + 1,
                }),
                vec![
                    A::WakeAt(Some(now + policy.attempt_timeout)),
                    A::Capture { authorisation_id },
                ],
            )
        }
        (Some(Stage::Capturing { notice, attempts }), Input::CaptureSucceeded { now }) => (
            Some(Stage::Capturing {
                notice: notice.clone(),
                attempts,
            }),
            vec![
                A::WakeAt(Some(now + policy.attempt_timeout)),
                A::RecordCapture { notice },
            ],
        ),
        (Some(Stage::Notifying { notice, attempts }), Input::Due { now }) => (
            Some(Stage::Notifying {
                notice: notice.clone(),
                attempts: attempts + 1,
            }),
            vec![
                A::WakeAt(Some(now + policy.attempt_timeout)),
                A::Callback {
                    notice,
                    attempt: attempts + 1,
                },
            ],
        ),
        (Some(Stage::Notifying { notice, attempts }), Input::Acknowledged { now }) => (
            Some(Stage::Recording {
                notice: notice.clone(),
                attempts,
            }),
            vec![
                A::WakeAt(Some(now + policy.attempt_timeout)),
                A::RecordNotified { notice, attempts },
            ],
        ),
        (Some(Stage::Recording { notice, attempts }), Input::Due { now }) => (
            Some(Stage::Recording {
                notice: notice.clone(),
                attempts,
            }),
            vec![
                A::WakeAt(Some(now + policy.attempt_timeout)),
                A::RecordNotified { notice, attempts },
            ],
        ),
        (Some(s @ (Stage::Capturing { .. } | Stage::Notifying { .. })), Input::Failed { now }) => {
            let attempts = match &s {
                Stage::Capturing { attempts, .. } | Stage::Notifying { attempts, .. } => *attempts,
                _ => 0,
            };
            (
                Some(s),
                vec![A::WakeAt(Some(now + policy.backoff(attempts)))],
            )
        }
        (Some(_), Input::Notified) => (Some(Stage::Done), vec![A::WakeAt(None)]),
        // Anything else (a repeated event, a late answer) changes nothing.
        (stage, _) => (stage, vec![]),
    }
}
