//! The alert system (e-wallet spec §4, «Система оповещений»): the typed catalogue of the
//! wallet's alert types, each with its date (the event's `occurred_at`), its client and a set
//! of attributes «whose composition is defined by the type of the event and whose values by
//! the context it happened in»; what operators subscribe to; and the pure mapping from a
//! stored event to the alerts it raises.
//!
//! - [`catalogue!`] declares every alert type once: its variant of [`Alert`] with typed
//!   attributes (amounts as [`Money`], never `f64`), its stable machine code, where it is
//!   raised ([`Origin`]) and the [`Channel`]s it may be delivered through. Adding a type is one
//!   entry there (and, for a type raised from the log, its arm in [`raised`]); the catalogue
//!   the query API shows ([`AlertType::attributes`]) is derived from the same entry.
//! - [`raised`] maps a stored event (its [`Envelope`] and [`Event`]) and the state of its
//!   aggregate before the event to the alerts it raises. Sealed personal data is never opened:
//!   no alert carries a name, a document or a phone, only ids, amounts, codes and reasons.
//! - Alerts that have no event on the log — a failed login, a refusal by a limit (a refused
//!   command writes no event), a password reset, an invoice — are [`Origin::Edge`]: the API
//!   edge that observes them builds the alert ([`limit_reached`], [`Alert::FailedLogin`], …)
//!   and records it through `etr_infra::alerts::raise`; nothing invents an event for them.
//! - [`Subscription`]: an operator's choice of alert types and channels, optionally for one
//!   client, parsed strictly with a code per refusal ([`SubscriptionError::code`]).

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use uuid::Uuid;

use crate::command::{AggregateRef, Event, State};
use crate::envelope::Envelope;
use crate::ids::ClientId;
use crate::money::{Currency, Money};
use crate::{client, payment, wallet};

/// A way an alert reaches its recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Channel {
    Sms,
    Email,
    Push,
    /// The operator's web console.
    Web,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::Sms, Channel::Email, Channel::Push, Channel::Web];

    /// `sms`, `email`, `push` or `web`.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
            Channel::Push => "push",
            Channel::Web => "web",
        }
    }

    pub fn parse(raw: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == raw)
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where alerts of a type are raised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// From an event on the log, by the alert dispatcher through [`raised`].
    Log,
    /// At the API edge, which observed something that is not an event (a failed login, a
    /// refused command); recorded through `etr_infra::alerts::raise`.
    Edge,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Log => "log",
            Origin::Edge => "edge",
        }
    }
}

/// The kind of an attribute's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// An amount with its currency, exact to the currency's minor unit.
    Money,
    /// A code or a free text (a reason an operator or a system gave).
    Text,
    /// A UUID (an operation, a wallet, a request, a client).
    Id,
    /// A non-negative whole number (a run number).
    Number,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Money => "money",
            Kind::Text => "text",
            Kind::Id => "id",
            Kind::Number => "number",
        }
    }
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Money(Money),
    Text(String),
    Id(Uuid),
    Number(u64),
}

impl fmt::Display for Value {
    /// Money as `100.50 RUB`, ids hyphenated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Money(m) => m.fmt(f),
            Value::Text(t) => f.write_str(t),
            Value::Id(id) => id.fmt(f),
            Value::Number(n) => n.fmt(f),
        }
    }
}

/// A Rust type an attribute may have, and its [`Kind`].
pub trait Attribute {
    const KIND: Kind;
    fn value(&self) -> Value;
}

impl Attribute for Money {
    const KIND: Kind = Kind::Money;
    fn value(&self) -> Value {
        Value::Money(*self)
    }
}

impl Attribute for String {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> Value {
        Value::Text(self.clone())
    }
}

impl Attribute for Currency {
    const KIND: Kind = Kind::Text;
    fn value(&self) -> Value {
        Value::Text(self.to_string())
    }
}

impl Attribute for Uuid {
    const KIND: Kind = Kind::Id;
    fn value(&self) -> Value {
        Value::Id(*self)
    }
}

impl Attribute for ClientId {
    const KIND: Kind = Kind::Id;
    fn value(&self) -> Value {
        Value::Id(self.0)
    }
}

impl Attribute for u32 {
    const KIND: Kind = Kind::Number;
    fn value(&self) -> Value {
        Value::Number(u64::from(*self))
    }
}

/// One attribute of an alert type, as the catalogue shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttributeSpec {
    /// The attribute's code (snake case), also its key in a delivered alert.
    pub name: &'static str,
    pub kind: Kind,
}

/// Declares the catalogue: per type its doc line, variant, code, origin, channels and typed
/// attributes. Everything else about a type is derived from its one entry here.
macro_rules! catalogue {
    ($(
        $(#[doc = $doc:literal])+
        $name:ident = $code:literal, $origin:ident, [$($channel:ident),+] {
            $($field:ident : $ty:ty),* $(,)?
        }
    )+) => {
        /// An alert with its typed attributes (its client and date travel beside it).
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Alert {
            $( $(#[doc = $doc])+ $name { $($field: $ty),* }, )+
        }

        /// The type of an alert: what operators subscribe to.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum AlertType {
            $( $(#[doc = $doc])+ $name, )+
        }

        impl AlertType {
            /// Every type, in catalogue order.
            pub const ALL: &'static [AlertType] = &[$(AlertType::$name),+];

            /// The stable machine code, `<subject>.<what happened>`.
            pub fn code(self) -> &'static str {
                match self { $(AlertType::$name => $code,)+ }
            }

            /// What the alert says happened (its documentation line).
            pub fn description(self) -> &'static str {
                match self { $(AlertType::$name => concat!($($doc),+).trim(),)+ }
            }

            pub fn origin(self) -> Origin {
                match self { $(AlertType::$name => Origin::$origin,)+ }
            }

            /// The channels an alert of this type may be delivered through.
            pub fn channels(self) -> &'static [Channel] {
                match self { $(AlertType::$name => &[$(Channel::$channel),+],)+ }
            }

            /// The attributes an alert of this type carries, in order.
            pub fn attributes(self) -> Vec<AttributeSpec> {
                match self {
                    $(AlertType::$name => vec![$(AttributeSpec {
                        name: stringify!($field),
                        kind: <$ty as Attribute>::KIND,
                    }),*],)+
                }
            }
        }

        impl Alert {
            pub fn alert_type(&self) -> AlertType {
                match self { $(Alert::$name { .. } => AlertType::$name,)+ }
            }

            /// The attributes with their values, in the catalogue's order.
            pub fn attributes(&self) -> Vec<(&'static str, Value)> {
                match self {
                    $(Alert::$name { $($field),* } => vec![
                        $((stringify!($field), Attribute::value($field))),*
                    ],)+
                }
            }
        }
    };
}

catalogue! {
    /// A client was registered in the customer registry.
    ClientRegistered = "client.registered", Log, [Email, Web] { registered_by: String }
    /// A client applied for a wallet with an account in `currency`.
    WalletRegistrationSubmitted = "wallet_registration.submitted", Log, [Email, Web] {
        wallet_id: Uuid, currency: Currency,
    }
    /// A wallet registration was approved (`approval`: automatic or manual).
    WalletRegistrationApproved = "wallet_registration.approved", Log, [Email, Web] {
        approval: String, reason: String,
    }
    /// A wallet registration was rejected by an operator.
    WalletRegistrationRejected = "wallet_registration.rejected", Log, [Email, Web] { reason: String }
    /// A client logged in for the first time and its account opened.
    WalletRegistrationCompleted = "wallet_registration.completed", Log, [Email, Web] { wallet_id: Uuid }
    /// A client was blocked.
    ClientBlocked = "client.blocked", Log, [Sms, Email, Push, Web] { reason: String }
    /// A client was unblocked.
    ClientUnblocked = "client.unblocked", Log, [Sms, Email, Push, Web] {}
    /// A client asked to change its personal data (the new data stays sealed).
    PersonalDataChangeRequested = "personal_data.change_requested", Log, [Email, Web] { request_id: Uuid }
    /// A change of personal data was approved and applied.
    PersonalDataChangeApproved = "personal_data.change_approved", Log, [Email, Web] {
        request_id: Uuid, approval: String,
    }
    /// A change of personal data was rejected.
    PersonalDataChangeRejected = "personal_data.change_rejected", Log, [Email, Web] {
        request_id: Uuid, reason: String,
    }
    /// A client's personal data was erased (its key destroyed).
    PersonalDataErased = "personal_data.erased", Log, [Email, Web] { reason: String }
    /// A client was moved to another client group.
    ClientGroupChanged = "client.group_changed", Log, [Email, Web] { group: String, reason: String }
    /// A bank card was bound to the client (the card number is never an attribute).
    CardBound = "card.bound", Log, [Email, Push, Web] { card_id: Uuid, provider: String }
    /// A wallet account was opened.
    WalletOpened = "wallet.opened", Log, [Email, Push, Web] { wallet_id: Uuid, currency: Currency }
    /// A wallet was topped up; `balance` is the balance after it.
    WalletToppedUp = "wallet.topped_up", Log, [Sms, Push, Web] {
        wallet_id: Uuid, operation_id: Uuid, amount: Money, source: String, balance: Money,
    }
    /// A wallet's balance fell below the low-balance threshold of its currency.
    BalanceLow = "wallet.balance_low", Log, [Sms, Email, Push, Web] {
        wallet_id: Uuid, balance: Money, threshold: Money,
    }
    /// A wallet account was closed.
    WalletClosed = "wallet.closed", Log, [Email, Web] { wallet_id: Uuid, reason: String }
    /// A payment at or above the large-payment threshold of its currency was started.
    LargePayment = "payment.large", Log, [Sms, Email, Push, Web] {
        payment_id: Uuid, wallet_id: Uuid, amount: Money, threshold: Money, service_id: String,
    }
    /// A payment above the client group's warning threshold awaits the client's OTP.
    PaymentAwaitingConfirmation = "payment.awaiting_confirmation", Log, [Sms, Push, Web] {
        payment_id: Uuid, amount: Money, threshold: Money,
    }
    /// A payment succeeded (transfers to other clients are `transfer.*`).
    PaymentSucceeded = "payment.succeeded", Log, [Sms, Email, Push, Web] {
        payment_id: Uuid, wallet_id: Uuid, amount: Money, service_id: String,
    }
    /// A payment failed; its reservation was released.
    PaymentFailed = "payment.failed", Log, [Sms, Email, Push, Web] {
        payment_id: Uuid, wallet_id: Uuid, amount: Money, reason: String,
    }
    /// A payment was cancelled before execution (e.g. never confirmed).
    PaymentCancelled = "payment.cancelled", Log, [Sms, Email, Push, Web] {
        payment_id: Uuid, wallet_id: Uuid, amount: Money, reason: String,
    }
    /// A cancelled payment's amount was credited back to the wallet.
    PaymentRefunded = "payment.refunded", Log, [Sms, Email, Push, Web] {
        payment_id: Uuid, request_id: Uuid, wallet_id: Uuid, amount: Money,
    }
    /// A transfer to another client's wallet left the sender's wallet.
    TransferSent = "transfer.sent", Log, [Sms, Push, Web] {
        payment_id: Uuid, wallet_id: Uuid, to_client_id: ClientId, amount: Money,
    }
    /// A transfer from another client's wallet arrived.
    TransferReceived = "transfer.received", Log, [Sms, Push, Web] {
        transfer_id: Uuid, wallet_id: Uuid, from_client_id: ClientId, amount: Money, balance: Money,
    }
    /// A transfer the recipient's wallet refused came back to the sender.
    TransferRefunded = "transfer.refunded", Log, [Sms, Email, Push, Web] {
        payment_id: Uuid, wallet_id: Uuid, amount: Money, reason: String,
    }
    /// A cancellation of a successful payment was requested (status New).
    CancellationRequested = "cancellation.requested", Log, [Email, Web] {
        payment_id: Uuid, request_id: Uuid, reason: String,
    }
    /// A cancellation request failed its checks (status Rejected).
    CancellationRejected = "cancellation.rejected", Log, [Email, Web] {
        payment_id: Uuid, request_id: Uuid, reason: String,
    }
    /// The processing centre reversed the payment (status Succeeded).
    CancellationSucceeded = "cancellation.succeeded", Log, [Email, Push, Web] {
        payment_id: Uuid, request_id: Uuid, reference: String,
    }
    /// The processing centre could not reverse the payment (status Processing error).
    CancellationFailed = "cancellation.failed", Log, [Email, Web] {
        payment_id: Uuid, request_id: Uuid, reason: String,
    }
    /// An operation's details were saved as a template.
    TemplateSaved = "template.saved", Log, [Email, Web] {
        template_id: Uuid, service_id: String, amount: Money,
    }
    /// A template was deleted.
    TemplateDeleted = "template.deleted", Log, [Email, Web] { template_id: Uuid }
    /// An autopayment was created on a template.
    AutopaymentCreated = "autopayment.created", Log, [Email, Web] { autopayment_id: Uuid, template_id: Uuid }
    /// A run of an autopayment succeeded.
    AutopaymentRunSucceeded = "autopayment.run_succeeded", Log, [Push, Web] {
        autopayment_id: Uuid, run: u32, payment_id: Uuid,
    }
    /// A run of an autopayment failed.
    AutopaymentRunFailed = "autopayment.run_failed", Log, [Sms, Email, Push, Web] {
        autopayment_id: Uuid, run: u32, payment_id: Uuid, reason: String,
    }
    /// An autopayment was paused (by the client, or after failures in a row).
    AutopaymentPaused = "autopayment.paused", Log, [Sms, Email, Push, Web] { autopayment_id: Uuid, reason: String }
    /// A paused autopayment was resumed.
    AutopaymentResumed = "autopayment.resumed", Log, [Email, Web] { autopayment_id: Uuid }
    /// An autopayment was cancelled.
    AutopaymentCancelled = "autopayment.cancelled", Log, [Email, Web] { autopayment_id: Uuid }
    /// An operation was refused by a limit of the client's group (`limit`: the refusal's
    /// code; `operation`: the route asked).
    LimitReached = "limit.reached", Edge, [Sms, Email, Push, Web] { limit: String, operation: String }
    /// A login or a request was refused for a missing or invalid credential.
    FailedLogin = "security.failed_login", Edge, [Email, Web] { route: String, reason: String }
    /// A client's password was reset.
    PasswordReset = "security.password_reset", Edge, [Sms, Email, Web] { method: String }
    /// An invoice was issued to a client (a merchant's order to pay).
    InvoiceIssued = "invoice.issued", Edge, [Sms, Email, Push, Web] { invoice_id: Uuid, amount: Money }
}

impl AlertType {
    /// The type of `code`.
    pub fn parse(code: &str) -> Option<AlertType> {
        AlertType::ALL.iter().copied().find(|t| t.code() == code)
    }
}

impl fmt::Display for AlertType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The thresholds of the alerts that compare an amount (configuration). A currency absent
/// from a map raises no alert of that kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// A payment of at least this amount raises [`Alert::LargePayment`].
    pub large_payment: BTreeMap<Currency, Decimal>,
    /// A balance falling from at least this amount to below it raises [`Alert::BalanceLow`].
    pub low_balance: BTreeMap<Currency, Decimal>,
}

impl Default for Policy {
    /// Large payment: 100,000.00 RUB, 1,000.00 USD / EUR; low balance: 100.00 RUB,
    /// 1.00 USD / EUR.
    fn default() -> Self {
        Policy {
            large_payment: BTreeMap::from([
                (Currency::Rub, dec!(100000.00)),
                (Currency::Usd, dec!(1000.00)),
                (Currency::Eur, dec!(1000.00)),
            ]),
            low_balance: BTreeMap::from([
                (Currency::Rub, dec!(100.00)),
                (Currency::Usd, dec!(1.00)),
                (Currency::Eur, dec!(1.00)),
            ]),
        }
    }
}

/// The alerts a stored event raises, at most one of each type. `before` is the state of the
/// event's aggregate before the event (`None` for one with no events yet); payment and wallet
/// alerts read their amount, wallet and balance from it and from the state after the event
/// (folded here with the domain's own `evolve`). Sealed personal data is never opened.
pub fn raised(
    envelope: &Envelope,
    event: &Event,
    before: Option<&State>,
    policy: &Policy,
) -> Vec<Alert> {
    match event {
        Event::Client(e) => client_alerts(e),
        Event::Wallet(e) => {
            let before = match before {
                Some(State::Wallet(w)) => w.clone(),
                _ => wallet::Wallet {
                    id: envelope.aggregate_id,
                    ..Default::default()
                },
            };
            let after = wallet::evolve(before.clone(), e);
            wallet_alerts(envelope.aggregate_id, e, &before, &after, policy)
        }
        Event::Payment(e) => {
            let before = match before {
                Some(State::Payment(p)) => p.clone(),
                _ => payment::Payment {
                    id: envelope.aggregate_id,
                    ..Default::default()
                },
            };
            let after = payment::evolve(before, envelope.client_id, e);
            payment_alerts(envelope.aggregate_id, e, &after, policy)
        }
        // Merchant orders raise `invoice.issued` at the edge that creates them.
        Event::Application(_) | Event::Loan(_) | Event::MerchantOrder(_) => Vec::new(),
    }
}

/// Whether the alerts of an aggregate's events need its state ([`raised`]'s `before`): the
/// dispatcher keeps the state of these aggregates only.
pub fn needs_state(target: AggregateRef) -> bool {
    matches!(
        target.kind,
        crate::AggregateKind::WalletAccount | crate::AggregateKind::Payment
    )
}

fn client_alerts(e: &client::Event) -> Vec<Alert> {
    use client::Event as C;
    let alert = match e {
        C::ClientRegistered { registered_by, .. } => Alert::ClientRegistered {
            registered_by: registered_by.clone(),
        },
        C::WalletRegistrationSubmitted {
            currency,
            wallet_id,
            ..
        } => Alert::WalletRegistrationSubmitted {
            wallet_id: *wallet_id,
            currency: *currency,
        },
        C::WalletRegistrationApproved { approval, reason } => Alert::WalletRegistrationApproved {
            approval: approval.label().to_owned(),
            reason: reason.clone(),
        },
        C::WalletRegistrationRejected { reason } => Alert::WalletRegistrationRejected {
            reason: reason.clone(),
        },
        C::WalletRegistrationCompleted { wallet_id } => Alert::WalletRegistrationCompleted {
            wallet_id: *wallet_id,
        },
        C::ClientBlocked { reason } => Alert::ClientBlocked {
            reason: reason.clone(),
        },
        C::ClientUnblocked => Alert::ClientUnblocked {},
        C::PersonalDataChangeRequested { request_id, .. } => Alert::PersonalDataChangeRequested {
            request_id: *request_id,
        },
        C::PersonalDataChangeApproved {
            request_id,
            approval,
            ..
        } => Alert::PersonalDataChangeApproved {
            request_id: *request_id,
            approval: approval.label().to_owned(),
        },
        C::PersonalDataChangeRejected { request_id, reason } => Alert::PersonalDataChangeRejected {
            request_id: *request_id,
            reason: reason.clone(),
        },
        C::PersonalDataErased { reason } => Alert::PersonalDataErased {
            reason: reason.clone(),
        },
        C::ClientGroupChanged { group, reason } => Alert::ClientGroupChanged {
            group: group.to_string(),
            reason: reason.clone(),
        },
        C::CardBound { card } => Alert::CardBound {
            card_id: card.card_id,
            provider: card.provider.clone(),
        },
        C::TemplateSaved {
            template_id,
            template,
        } => Alert::TemplateSaved {
            template_id: *template_id,
            service_id: template.service_id.clone(),
            amount: template.amount,
        },
        C::TemplateDeleted { template_id } => Alert::TemplateDeleted {
            template_id: *template_id,
        },
        C::AutopaymentCreated {
            autopayment_id,
            template_id,
            ..
        } => Alert::AutopaymentCreated {
            autopayment_id: *autopayment_id,
            template_id: *template_id,
        },
        C::AutopaymentRunRecorded {
            autopayment_id,
            run,
            payment_id,
            succeeded: true,
            ..
        } => Alert::AutopaymentRunSucceeded {
            autopayment_id: *autopayment_id,
            run: *run,
            payment_id: *payment_id,
        },
        C::AutopaymentRunRecorded {
            autopayment_id,
            run,
            payment_id,
            reason,
            ..
        } => Alert::AutopaymentRunFailed {
            autopayment_id: *autopayment_id,
            run: *run,
            payment_id: *payment_id,
            reason: reason.clone().unwrap_or_default(),
        },
        C::AutopaymentPaused {
            autopayment_id,
            reason,
        } => Alert::AutopaymentPaused {
            autopayment_id: *autopayment_id,
            reason: reason.clone(),
        },
        C::AutopaymentResumed { autopayment_id, .. } => Alert::AutopaymentResumed {
            autopayment_id: *autopayment_id,
        },
        C::AutopaymentCancelled { autopayment_id } => Alert::AutopaymentCancelled {
            autopayment_id: *autopayment_id,
        },
        C::PersonalDataChanged { .. }
        | C::ClientTagged { .. }
        | C::ClientUntagged { .. }
        | C::DocumentAdded { .. }
        | C::ApplicationOpened { .. }
        | C::ApplicationClosed { .. }
        | C::ClientTimeZoneChanged { .. }
        | C::SpendingCounted { .. }
        | C::SpendingReleased { .. } => return Vec::new(),
    };
    vec![alert]
}

/// The balance of `w` as money (`None` before it is opened).
fn balance(w: &wallet::Wallet) -> Option<Money> {
    w.currency.map(|c| Money::new(w.balance, c))
}

fn wallet_alerts(
    wallet_id: Uuid,
    e: &wallet::Event,
    before: &wallet::Wallet,
    after: &wallet::Wallet,
    policy: &Policy,
) -> Vec<Alert> {
    use wallet::Event as W;
    let currency = after.currency;
    let balance_after = balance(after).or_else(|| currency.map(Money::zero));
    let mut alerts = Vec::new();
    match e {
        W::WalletOpened {
            wallet_id,
            currency,
            ..
        } => alerts.push(Alert::WalletOpened {
            wallet_id: *wallet_id,
            currency: *currency,
        }),
        W::WalletToppedUp {
            operation_id,
            amount,
            source,
        } => alerts.push(Alert::WalletToppedUp {
            wallet_id,
            operation_id: *operation_id,
            amount: *amount,
            source: source.clone(),
            balance: balance_after.unwrap_or(*amount),
        }),
        W::TransferDebited {
            payment_id,
            to_client_id,
            amount,
            ..
        } => alerts.push(Alert::TransferSent {
            payment_id: *payment_id,
            wallet_id,
            to_client_id: *to_client_id,
            amount: *amount,
        }),
        W::TransferCredited {
            transfer_id,
            from_client_id,
            amount,
            ..
        } => alerts.push(Alert::TransferReceived {
            transfer_id: *transfer_id,
            wallet_id,
            from_client_id: *from_client_id,
            amount: *amount,
            balance: balance_after.unwrap_or(*amount),
        }),
        W::TransferRefunded {
            payment_id,
            amount,
            reason,
        } => alerts.push(Alert::TransferRefunded {
            payment_id: *payment_id,
            wallet_id,
            amount: *amount,
            reason: reason.clone(),
        }),
        W::PaymentRefunded {
            payment_id,
            request_id,
            amount,
        } => alerts.push(Alert::PaymentRefunded {
            payment_id: *payment_id,
            request_id: *request_id,
            wallet_id,
            amount: *amount,
        }),
        W::WalletClosed { reason } => alerts.push(Alert::WalletClosed {
            wallet_id,
            reason: reason.clone(),
        }),
        W::FundsHeld { .. }
        | W::HoldCaptured { .. }
        | W::HoldReleased { .. }
        | W::TransferSent { .. }
        | W::TransferReceived { .. }
        | W::LoanRepaymentDebited { .. } => {}
    }
    if let (Some(currency), Some(threshold)) = (
        currency,
        currency.and_then(|c| policy.low_balance.get(&c).copied()),
    ) {
        if before.currency.is_some() && before.balance >= threshold && after.balance < threshold {
            alerts.push(Alert::BalanceLow {
                wallet_id,
                balance: Money::new(after.balance, currency),
                threshold: Money::new(threshold, currency),
            });
        }
    }
    alerts
}

fn payment_alerts(
    payment_id: Uuid,
    e: &payment::Event,
    after: &payment::Payment,
    policy: &Policy,
) -> Vec<Alert> {
    use payment::Event as P;
    let Some(amount) = after.amount else {
        return Vec::new();
    };
    let wallet_id = after.wallet_id;
    let reason = || after.failure_reason.clone().unwrap_or_default();
    let alert = match e {
        P::PaymentInitiated { service_id, .. } => {
            match policy.large_payment.get(&amount.currency) {
                Some(threshold) if amount.amount >= *threshold => Alert::LargePayment {
                    payment_id,
                    wallet_id,
                    amount,
                    threshold: Money::new(*threshold, amount.currency),
                    service_id: service_id.clone(),
                },
                _ => return Vec::new(),
            }
        }
        P::PaymentConfirmationRequested { threshold } => Alert::PaymentAwaitingConfirmation {
            payment_id,
            amount,
            threshold: *threshold,
        },
        P::PaymentSucceeded if !after.is_transfer() => Alert::PaymentSucceeded {
            payment_id,
            wallet_id,
            amount,
            service_id: after.service_id.clone(),
        },
        P::PaymentFailed { .. } => Alert::PaymentFailed {
            payment_id,
            wallet_id,
            amount,
            reason: reason(),
        },
        P::PaymentCancelled { .. } => Alert::PaymentCancelled {
            payment_id,
            wallet_id,
            amount,
            reason: reason(),
        },
        P::CancellationRequested { request_id, reason } => Alert::CancellationRequested {
            payment_id,
            request_id: *request_id,
            reason: reason.clone(),
        },
        P::CancellationRejected { request_id, reason } => Alert::CancellationRejected {
            payment_id,
            request_id: *request_id,
            reason: reason.clone(),
        },
        P::CancellationSucceeded {
            request_id,
            reference,
        } => Alert::CancellationSucceeded {
            payment_id,
            request_id: *request_id,
            reference: reference.clone(),
        },
        P::CancellationFailed { request_id, reason } => Alert::CancellationFailed {
            payment_id,
            request_id: *request_id,
            reason: reason.clone(),
        },
        P::PaymentSucceeded
        | P::PaymentConfirmed
        | P::PaymentLocked
        | P::PaymentBalanceChecked
        | P::PaymentReserved { .. }
        | P::PaymentExecutionStarted
        | P::CardAuthorisationRequested { .. }
        | P::CardAuthorised { .. }
        | P::CardAuthorisationCaptured
        | P::CardAuthorisationReleased
        | P::PaymentExecuted { .. }
        | P::PaymentExecutionFailed { .. }
        | P::CancellationSentToProcessing { .. } => return Vec::new(),
    };
    vec![alert]
}

/// The refusal codes of a group's limits (`crate::Error::code`) that raise
/// [`Alert::LimitReached`].
pub const LIMIT_CODES: [&str; 5] = [
    "spend_limit_exceeded",
    "max_balance_exceeded",
    "above_max_operation_amount",
    "below_min_operation_amount",
    "currency_not_allowed",
];

/// The alert a refused command raises at the edge when a limit refused it (`code`: the
/// refusal's code; `operation`: the route asked), `None` for any other refusal.
pub fn limit_reached(code: &str, operation: &str) -> Option<Alert> {
    LIMIT_CODES.contains(&code).then(|| Alert::LimitReached {
        limit: code.to_owned(),
        operation: operation.to_owned(),
    })
}

/// The text an alert is delivered with: its code, client and attributes (ids, amounts, codes
/// and reasons only — never personal data, which alerts do not carry).
pub fn render(alert: &Alert, client: Option<ClientId>) -> String {
    let mut text = alert.alert_type().code().to_owned();
    if let Some(client) = client {
        text.push_str(&format!(" client={client}"));
    }
    for (name, value) in alert.attributes() {
        text.push_str(&format!(" {name}={value}"));
    }
    text
}

/// Why a subscription was refused; each with its code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscriptionError {
    #[error("unknown alert type `{0}`; the catalogue lists the codes")]
    UnknownType(String),
    #[error("unknown channel `{0}`: sms, email, push or web")]
    UnknownChannel(String),
    #[error("a subscription names at least one alert type")]
    NoTypes,
    #[error("a subscription names at least one channel")]
    NoChannels,
    #[error("alert type `{0}` is delivered through none of the channels named")]
    NoCommonChannel(&'static str),
    #[error("`{0}` is not a client id (a UUID)")]
    ClientFilter(String),
}

impl SubscriptionError {
    /// `unknown_alert_type`, `unknown_channel`, `no_alert_types`, `no_channels`,
    /// `no_common_channel`, `invalid_client_filter`.
    pub fn code(&self) -> &'static str {
        match self {
            SubscriptionError::UnknownType(_) => "unknown_alert_type",
            SubscriptionError::UnknownChannel(_) => "unknown_channel",
            SubscriptionError::NoTypes => "no_alert_types",
            SubscriptionError::NoChannels => "no_channels",
            SubscriptionError::NoCommonChannel(_) => "no_common_channel",
            SubscriptionError::ClientFilter(_) => "invalid_client_filter",
        }
    }
}

/// An operator's subscription: alerts of `types` about `client` (every client when `None`),
/// through `channels`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub types: BTreeSet<AlertType>,
    pub channels: BTreeSet<Channel>,
    pub client: Option<ClientId>,
}

impl Subscription {
    /// Parses codes as an operator sends them. Duplicates collapse.
    ///
    /// Errors, in this order: an unknown type or channel; none of either; a type that none of
    /// the channels can deliver; a client filter that is not a UUID.
    pub fn parse(
        types: &[String],
        channels: &[String],
        client: Option<&str>,
    ) -> Result<Subscription, SubscriptionError> {
        let types = types
            .iter()
            .map(|t| AlertType::parse(t).ok_or_else(|| SubscriptionError::UnknownType(t.clone())))
            .collect::<Result<BTreeSet<_>, _>>()?;
        let channels = channels
            .iter()
            .map(|c| Channel::parse(c).ok_or_else(|| SubscriptionError::UnknownChannel(c.clone())))
            .collect::<Result<BTreeSet<_>, _>>()?;
        if types.is_empty() {
            return Err(SubscriptionError::NoTypes);
        }
        if channels.is_empty() {
            return Err(SubscriptionError::NoChannels);
        }
        if let Some(t) = types
            .iter()
            .find(|t| !t.channels().iter().any(|c| channels.contains(c)))
        {
            return Err(SubscriptionError::NoCommonChannel(t.code()));
        }
        let client = client
            .map(|c| {
                Uuid::parse_str(c)
                    .map(ClientId)
                    .map_err(|_| SubscriptionError::ClientFilter(c.to_owned()))
            })
            .transpose()?;
        Ok(Subscription {
            types,
            channels,
            client,
        })
    }

    /// The channels an alert of `alert_type` about `client` goes through under this
    /// subscription (none when it does not match).
    pub fn deliveries(&self, alert_type: AlertType, client: Option<ClientId>) -> Vec<Channel> {
        if !self.types.contains(&alert_type) {
            return Vec::new();
        }
        if self.client.is_some() && self.client != client {
            return Vec::new();
        }
        alert_type
            .channels()
            .iter()
            .copied()
            .filter(|c| self.channels.contains(c))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::AggregateKind;
    use crate::envelope::Actor;
    use crate::personal::Sealed;
    use std::collections::HashSet;
    use time::macros::datetime;

    fn rub(amount: i64) -> Money {
        Money::new(Decimal::new(amount * 100, 2), Currency::Rub)
    }

    fn envelope(kind: AggregateKind, aggregate_id: Uuid) -> Envelope {
        Envelope {
            event_id: Uuid::from_u128(7),
            event_type: String::new(),
            schema_version: 1,
            client_id: ClientId(Uuid::from_u128(1)),
            aggregate_type: kind,
            aggregate_id,
            aggregate_version: 1,
            partition: 0,
            sequence: 1,
            command_id: "c".into(),
            correlation_id: "c".into(),
            actor: Actor::system("test"),
            occurred_at: datetime!(2026-12-01 10:00 UTC),
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    fn opened_wallet(balance: i64) -> State {
        State::Wallet(wallet::Wallet {
            status: wallet::Status::Open,
            id: Uuid::from_u128(10),
            client_id: Some(ClientId(Uuid::from_u128(1))),
            currency: Some(Currency::Rub),
            balance: Decimal::new(balance * 100, 2),
            ..Default::default()
        })
    }

    fn initiated(amount: Money) -> payment::Event {
        payment::Event::PaymentInitiated {
            commission: None,
            payment_id: Uuid::from_u128(20),
            wallet_id: Uuid::from_u128(10),
            amount,
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            recipient: None,
            card: None,
        }
    }

    fn payment_state(amount: Money) -> State {
        let p = payment::evolve(
            payment::Payment::default(),
            ClientId(Uuid::from_u128(1)),
            &initiated(amount),
        );
        State::Payment(p)
    }

    /// One alert of every type, built as the mapping or the edge would.
    fn one_of_each() -> Vec<Alert> {
        let id = Uuid::from_u128(3);
        let client = ClientId(Uuid::from_u128(4));
        let text = || "x".to_owned();
        vec![
            Alert::ClientRegistered {
                registered_by: text(),
            },
            Alert::WalletRegistrationSubmitted {
                wallet_id: id,
                currency: Currency::Rub,
            },
            Alert::WalletRegistrationApproved {
                approval: text(),
                reason: text(),
            },
            Alert::WalletRegistrationRejected { reason: text() },
            Alert::WalletRegistrationCompleted { wallet_id: id },
            Alert::ClientBlocked { reason: text() },
            Alert::ClientUnblocked {},
            Alert::PersonalDataChangeRequested { request_id: id },
            Alert::PersonalDataChangeApproved {
                request_id: id,
                approval: text(),
            },
            Alert::PersonalDataChangeRejected {
                request_id: id,
                reason: text(),
            },
            Alert::PersonalDataErased { reason: text() },
            Alert::ClientGroupChanged {
                group: text(),
                reason: text(),
            },
            Alert::CardBound {
                card_id: id,
                provider: text(),
            },
            Alert::WalletOpened {
                wallet_id: id,
                currency: Currency::Rub,
            },
            Alert::WalletToppedUp {
                wallet_id: id,
                operation_id: id,
                amount: rub(1),
                source: text(),
                balance: rub(1),
            },
            Alert::BalanceLow {
                wallet_id: id,
                balance: rub(1),
                threshold: rub(100),
            },
            Alert::WalletClosed {
                wallet_id: id,
                reason: text(),
            },
            Alert::LargePayment {
                payment_id: id,
                wallet_id: id,
                amount: rub(1),
                threshold: rub(1),
                service_id: text(),
            },
            Alert::PaymentAwaitingConfirmation {
                payment_id: id,
                amount: rub(1),
                threshold: rub(1),
            },
            Alert::PaymentSucceeded {
                payment_id: id,
                wallet_id: id,
                amount: rub(1),
                service_id: text(),
            },
            Alert::PaymentFailed {
                payment_id: id,
                wallet_id: id,
                amount: rub(1),
                reason: text(),
            },
            Alert::PaymentCancelled {
                payment_id: id,
                wallet_id: id,
                amount: rub(1),
                reason: text(),
            },
            Alert::PaymentRefunded {
                payment_id: id,
                request_id: id,
                wallet_id: id,
                amount: rub(1),
            },
            Alert::TransferSent {
                payment_id: id,
                wallet_id: id,
                to_client_id: client,
                amount: rub(1),
            },
            Alert::TransferReceived {
                transfer_id: id,
                wallet_id: id,
                from_client_id: client,
                amount: rub(1),
                balance: rub(1),
            },
            Alert::TransferRefunded {
                payment_id: id,
                wallet_id: id,
                amount: rub(1),
                reason: text(),
            },
            Alert::CancellationRequested {
                payment_id: id,
                request_id: id,
                reason: text(),
            },
            Alert::CancellationRejected {
                payment_id: id,
                request_id: id,
                reason: text(),
            },
            Alert::CancellationSucceeded {
                payment_id: id,
                request_id: id,
                reference: text(),
            },
            Alert::CancellationFailed {
                payment_id: id,
                request_id: id,
                reason: text(),
            },
            Alert::TemplateSaved {
                template_id: id,
                service_id: text(),
                amount: rub(1),
            },
            Alert::TemplateDeleted { template_id: id },
            Alert::AutopaymentCreated {
                autopayment_id: id,
                template_id: id,
            },
            Alert::AutopaymentRunSucceeded {
                autopayment_id: id,
                run: 1,
                payment_id: id,
            },
            Alert::AutopaymentRunFailed {
                autopayment_id: id,
                run: 1,
                payment_id: id,
                reason: text(),
            },
            Alert::AutopaymentPaused {
                autopayment_id: id,
                reason: text(),
            },
            Alert::AutopaymentResumed { autopayment_id: id },
            Alert::AutopaymentCancelled { autopayment_id: id },
            Alert::LimitReached {
                limit: text(),
                operation: text(),
            },
            Alert::FailedLogin {
                route: text(),
                reason: text(),
            },
            Alert::PasswordReset { method: text() },
            Alert::InvoiceIssued {
                invoice_id: id,
                amount: rub(1),
            },
        ]
    }

    #[test]
    fn at_least_thirty_types_each_constructible_with_its_catalogued_attributes() {
        let alerts = one_of_each();
        assert!(AlertType::ALL.len() >= 30, "{}", AlertType::ALL.len());
        let built: Vec<AlertType> = alerts.iter().map(Alert::alert_type).collect();
        assert_eq!(
            built,
            AlertType::ALL.to_vec(),
            "one alert of every type, in order"
        );
        for alert in &alerts {
            let t = alert.alert_type();
            let names: Vec<&str> = alert.attributes().iter().map(|(n, _)| *n).collect();
            let specs: Vec<&str> = t.attributes().iter().map(|s| s.name).collect();
            assert_eq!(names, specs, "{t}");
            for ((_, value), spec) in alert.attributes().iter().zip(t.attributes()) {
                let kind = match value {
                    Value::Money(_) => Kind::Money,
                    Value::Text(_) => Kind::Text,
                    Value::Id(_) => Kind::Id,
                    Value::Number(_) => Kind::Number,
                };
                assert_eq!(kind, spec.kind, "{t}.{}", spec.name);
            }
            assert!(!t.channels().is_empty(), "{t}");
            assert!(!t.description().is_empty(), "{t}");
        }
    }

    #[test]
    fn codes_are_unique_and_parse_back() {
        let codes: HashSet<&str> = AlertType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes.len(), AlertType::ALL.len());
        for t in AlertType::ALL {
            assert_eq!(AlertType::parse(t.code()), Some(*t));
            assert!(t
                .code()
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_'));
        }
        assert_eq!(AlertType::parse("payment.unknown"), None);
    }

    #[test]
    fn edge_types_are_those_without_an_event() {
        let edge: Vec<&str> = AlertType::ALL
            .iter()
            .filter(|t| t.origin() == Origin::Edge)
            .map(|t| t.code())
            .collect();
        assert_eq!(
            edge,
            [
                "limit.reached",
                "security.failed_login",
                "security.password_reset",
                "invoice.issued"
            ]
        );
    }

    #[test]
    fn given_an_active_client_when_blocked_then_client_blocked_with_its_reason() {
        let env = envelope(AggregateKind::Client, Uuid::from_u128(1));
        let event = Event::Client(client::Event::ClientBlocked {
            reason: "fraud suspected".into(),
        });
        let alerts = raised(&env, &event, None, &Policy::default());
        assert_eq!(
            alerts,
            vec![Alert::ClientBlocked {
                reason: "fraud suspected".into()
            }]
        );
    }

    #[test]
    fn given_sealed_personal_data_when_a_change_is_requested_then_only_the_request_id_travels() {
        let env = envelope(AggregateKind::Client, Uuid::from_u128(1));
        let sealed = Sealed {
            key_version: 1,
            nonce: "bm9uY2U=".into(),
            ciphertext: "SECRET-CIPHERTEXT".into(),
        };
        let event = Event::Client(client::Event::PersonalDataChangeRequested {
            request_id: Uuid::from_u128(9),
            personal: sealed,
        });
        let alerts = raised(&env, &event, None, &Policy::default());
        assert_eq!(
            alerts,
            vec![Alert::PersonalDataChangeRequested {
                request_id: Uuid::from_u128(9)
            }]
        );
        let text = render(&alerts[0], Some(env.client_id));
        assert!(!text.contains("SECRET"), "{text}");
    }

    #[test]
    fn given_an_open_wallet_when_topped_up_then_the_alert_carries_amount_and_new_balance() {
        let wallet_id = Uuid::from_u128(10);
        let env = envelope(AggregateKind::WalletAccount, wallet_id);
        let event = Event::Wallet(wallet::Event::WalletToppedUp {
            operation_id: Uuid::from_u128(11),
            amount: rub(500),
            source: "card".into(),
        });
        let alerts = raised(&env, &event, Some(&opened_wallet(200)), &Policy::default());
        assert_eq!(
            alerts,
            vec![Alert::WalletToppedUp {
                wallet_id,
                operation_id: Uuid::from_u128(11),
                amount: rub(500),
                source: "card".into(),
                balance: rub(700),
            }]
        );
    }

    #[test]
    fn given_a_balance_above_the_threshold_when_a_capture_takes_it_below_then_balance_low_once() {
        let wallet_id = Uuid::from_u128(10);
        let env = envelope(AggregateKind::WalletAccount, wallet_id);
        let payment_id = Uuid::from_u128(20);
        let mut before = opened_wallet(150);
        if let State::Wallet(w) = &mut before {
            w.holds.insert(payment_id, rub(100));
        }
        let capture = Event::Wallet(wallet::Event::HoldCaptured {
            payment_id,
            amount: rub(100),
        });
        let alerts = raised(&env, &capture, Some(&before), &Policy::default());
        assert_eq!(
            alerts,
            vec![Alert::BalanceLow {
                wallet_id,
                balance: rub(50),
                threshold: rub(100),
            }]
        );
        // Already below: a further capture raises nothing new.
        let mut low = opened_wallet(50);
        if let State::Wallet(w) = &mut low {
            w.holds.insert(payment_id, rub(10));
        }
        let capture = Event::Wallet(wallet::Event::HoldCaptured {
            payment_id,
            amount: rub(10),
        });
        assert!(raised(&env, &capture, Some(&low), &Policy::default()).is_empty());
    }

    #[test]
    fn given_the_large_payment_threshold_when_a_payment_reaches_it_then_large_payment() {
        let env = envelope(AggregateKind::Payment, Uuid::from_u128(20));
        let policy = Policy::default();
        let big = Event::Payment(initiated(rub(100_000)));
        assert_eq!(
            raised(&env, &big, None, &policy),
            vec![Alert::LargePayment {
                payment_id: Uuid::from_u128(20),
                wallet_id: Uuid::from_u128(10),
                amount: rub(100_000),
                threshold: rub(100_000),
                service_id: "mobile".into(),
            }]
        );
        let small = Event::Payment(initiated(rub(99_999)));
        assert!(raised(&env, &small, None, &policy).is_empty());
    }

    #[test]
    fn given_an_initiated_payment_when_it_succeeds_then_payment_succeeded_with_its_amount() {
        let env = envelope(AggregateKind::Payment, Uuid::from_u128(20));
        let before = payment_state(rub(300));
        let alerts = raised(
            &env,
            &Event::Payment(payment::Event::PaymentSucceeded),
            Some(&before),
            &Policy::default(),
        );
        assert_eq!(
            alerts,
            vec![Alert::PaymentSucceeded {
                payment_id: Uuid::from_u128(20),
                wallet_id: Uuid::from_u128(10),
                amount: rub(300),
                service_id: "mobile".into(),
            }]
        );
        let failed = raised(
            &env,
            &Event::Payment(payment::Event::PaymentFailed {
                reason: "provider refused".into(),
            }),
            Some(&before),
            &Policy::default(),
        );
        assert_eq!(
            failed,
            vec![Alert::PaymentFailed {
                payment_id: Uuid::from_u128(20),
                wallet_id: Uuid::from_u128(10),
                amount: rub(300),
                reason: "provider refused".into(),
            }]
        );
    }

    #[test]
    fn given_a_payment_above_the_warning_threshold_when_confirmation_is_requested_then_awaiting_otp(
    ) {
        let env = envelope(AggregateKind::Payment, Uuid::from_u128(20));
        let alerts = raised(
            &env,
            &Event::Payment(payment::Event::PaymentConfirmationRequested {
                threshold: rub(1_000),
            }),
            Some(&payment_state(rub(5_000))),
            &Policy::default(),
        );
        assert_eq!(
            alerts,
            vec![Alert::PaymentAwaitingConfirmation {
                payment_id: Uuid::from_u128(20),
                amount: rub(5_000),
                threshold: rub(1_000),
            }]
        );
    }

    #[test]
    fn given_a_transfer_when_debited_and_credited_then_sent_and_received() {
        let from = ClientId(Uuid::from_u128(1));
        let to = ClientId(Uuid::from_u128(2));
        let env = envelope(AggregateKind::WalletAccount, Uuid::from_u128(10));
        let mut before = opened_wallet(1_000);
        if let State::Wallet(w) = &mut before {
            w.holds.insert(Uuid::from_u128(20), rub(300));
        }
        let sent = raised(
            &env,
            &Event::Wallet(wallet::Event::TransferDebited {
                payment_id: Uuid::from_u128(20),
                to_client_id: to,
                to_wallet_id: Uuid::from_u128(30),
                amount: rub(300),
            }),
            Some(&before),
            &Policy::default(),
        );
        assert_eq!(
            sent,
            vec![Alert::TransferSent {
                payment_id: Uuid::from_u128(20),
                wallet_id: Uuid::from_u128(10),
                to_client_id: to,
                amount: rub(300),
            }]
        );
        let received = raised(
            &env,
            &Event::Wallet(wallet::Event::TransferCredited {
                transfer_id: Uuid::from_u128(20),
                from_client_id: from,
                from_wallet_id: Uuid::from_u128(11),
                amount: rub(300),
            }),
            Some(&opened_wallet(0)),
            &Policy::default(),
        );
        assert_eq!(
            received,
            vec![Alert::TransferReceived {
                transfer_id: Uuid::from_u128(20),
                wallet_id: Uuid::from_u128(10),
                from_client_id: from,
                amount: rub(300),
                balance: rub(300),
            }]
        );
    }

    #[test]
    fn given_an_autopayment_when_a_run_fails_then_run_failed_with_its_reason() {
        let env = envelope(AggregateKind::Client, Uuid::from_u128(1));
        let event = Event::Client(client::Event::AutopaymentRunRecorded {
            autopayment_id: Uuid::from_u128(40),
            run: 2,
            payment_id: Uuid::from_u128(41),
            succeeded: false,
            reason: Some("insufficient_funds".into()),
            next_run: 3,
        });
        assert_eq!(
            raised(&env, &event, None, &Policy::default()),
            vec![Alert::AutopaymentRunFailed {
                autopayment_id: Uuid::from_u128(40),
                run: 2,
                payment_id: Uuid::from_u128(41),
                reason: "insufficient_funds".into(),
            }]
        );
    }

    #[test]
    fn given_bookkeeping_events_then_no_alert() {
        let env = envelope(AggregateKind::Payment, Uuid::from_u128(20));
        let before = payment_state(rub(300));
        for e in [
            payment::Event::PaymentLocked,
            payment::Event::PaymentBalanceChecked,
            payment::Event::PaymentExecutionStarted,
        ] {
            assert!(raised(&env, &Event::Payment(e), Some(&before), &Policy::default()).is_empty());
        }
    }

    #[test]
    fn a_limit_refusal_raises_limit_reached_and_others_do_not() {
        assert_eq!(
            limit_reached("spend_limit_exceeded", "/v1/clients/{client_id}/payments"),
            Some(Alert::LimitReached {
                limit: "spend_limit_exceeded".into(),
                operation: "/v1/clients/{client_id}/payments".into(),
            })
        );
        assert_eq!(limit_reached("insufficient_funds", "/x"), None);
    }

    #[test]
    fn render_names_code_client_and_attributes() {
        let alert = Alert::PaymentSucceeded {
            payment_id: Uuid::from_u128(20),
            wallet_id: Uuid::from_u128(10),
            amount: rub(300),
            service_id: "mobile".into(),
        };
        let text = render(&alert, Some(ClientId(Uuid::from_u128(1))));
        assert!(text.starts_with("payment.succeeded client=00000000-0000-0000-0000-000000000001"));
        assert!(text.contains("amount=300.00 RUB"), "{text}");
    }

    #[test]
    fn subscriptions_parse_strictly_and_deliver_on_common_channels() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let sub = Subscription::parse(
            &s(&["client.blocked", "wallet.topped_up"]),
            &s(&["email", "sms"]),
            None,
        )
        .ok();
        let Some(sub) = sub else {
            panic!("a valid subscription was refused");
        };
        assert_eq!(
            sub.deliveries(AlertType::ClientBlocked, None),
            vec![Channel::Sms, Channel::Email]
        );
        assert_eq!(
            sub.deliveries(AlertType::WalletToppedUp, None),
            vec![Channel::Sms]
        );
        assert!(sub.deliveries(AlertType::PaymentFailed, None).is_empty());

        let code = |t: &[&str], c: &[&str], client: Option<&str>| {
            Subscription::parse(&s(t), &s(c), client).map_err(|e| e.code())
        };
        assert_eq!(
            code(&["nope"], &["sms"], None).err(),
            Some("unknown_alert_type")
        );
        assert_eq!(
            code(&["client.blocked"], &["fax"], None).err(),
            Some("unknown_channel")
        );
        assert_eq!(code(&[], &["sms"], None).err(), Some("no_alert_types"));
        assert_eq!(
            code(&["client.blocked"], &[], None).err(),
            Some("no_channels")
        );
        assert_eq!(
            code(&["template.deleted"], &["sms"], None).err(),
            Some("no_common_channel")
        );
        assert_eq!(
            code(&["client.blocked"], &["sms"], Some("bob")).err(),
            Some("invalid_client_filter")
        );
        let one = ClientId(Uuid::from_u128(5));
        let filtered = Subscription::parse(
            &s(&["client.blocked"]),
            &s(&["web"]),
            Some(&one.to_string()),
        );
        let Ok(filtered) = filtered else {
            panic!("a client filter was refused");
        };
        assert_eq!(
            filtered.deliveries(AlertType::ClientBlocked, Some(one)),
            vec![Channel::Web]
        );
        assert!(filtered
            .deliveries(AlertType::ClientBlocked, Some(ClientId(Uuid::from_u128(6))))
            .is_empty());
    }
}
