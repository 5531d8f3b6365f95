//! Ports to external business systems. Adapters (and the deterministic simulators used by
//! the default run and the tests) live outside the domain; these traits only fix the
//! questions asked and the answers expected.

use std::future::Future;
use std::pin::Pin;
use uuid::Uuid;

use crate::ids::ClientId;
use crate::money::Money;
use crate::payment::{Execution, FraudVerdict};

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What fraud control and the payment processing see of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentOrder {
    pub client_id: ClientId,
    pub wallet_id: Uuid,
    pub payment_id: Uuid,
    pub amount: Money,
    pub service_id: String,
}

/// Fraud monitoring (status 0 of the operation lifecycle).
pub trait FraudControl: Send + Sync {
    fn assess<'a>(&'a self, order: &'a PaymentOrder) -> BoxFuture<'a, FraudVerdict>;
}

/// The payment processing that executes a reserved payment (status 4) and reverses a
/// successful one when a cancellation request is sent to it (spec §3.4).
pub trait PaymentProvider: Send + Sync {
    /// Executes the order; the payment id is the idempotency key (a repeated call answers
    /// the first result and executes nothing).
    fn execute<'a>(&'a self, order: &'a PaymentOrder) -> BoxFuture<'a, Execution>;
    /// Voids the order of the payment id: an order not executed yet never will be (a call
    /// still in flight is refused), answered `Failed`; an executed order answers its
    /// execution's outcome. Repeats answer the same.
    fn void<'a>(&'a self, order: &'a PaymentOrder) -> BoxFuture<'a, Execution>;
    /// Reverses the executed payment `provider_reference`; `request_id` is the idempotency
    /// key (a repeated call answers the first result). `Succeeded` carries the reversal's
    /// reference.
    fn cancel<'a>(
        &'a self,
        order: &'a PaymentOrder,
        request_id: uuid::Uuid,
        provider_reference: &'a str,
    ) -> BoxFuture<'a, Execution>;
}

/// A text message to a client's phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsMessage {
    pub phone: crate::identity::PhoneE164,
    pub text: String,
}

/// The SMS gateway (seed 000, 6.10: codes for confirmations are sent by SMS).
pub trait SmsGateway: Send + Sync {
    /// Sends `message`; `Err` with the gateway's reason when it refused or failed.
    fn send<'a>(&'a self, message: &'a SmsMessage) -> BoxFuture<'a, Result<(), String>>;
}

/// The federal bankruptcy register (seed 000, 6.6.2 bankrupt-check-service: bankruptcy cases
/// of a client by personal data, with the status of each; the register is kept under 127-FZ).
pub trait BankruptcyRegistry: Send + Sync {
    /// The cases the register holds on `subject`, every status included (an empty list when
    /// there are none; [`crate::legal::bankruptcy_hits`] says which count). `Err` with the
    /// register's reason when it could not answer.
    fn lookup<'a>(
        &'a self,
        subject: &'a crate::legal::Subject,
    ) -> BoxFuture<'a, Result<Vec<crate::legal::BankruptcyCase>, String>>;
}

/// How an external system answered a request that changes something on its side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Done(T),
    /// A definite refusal: retrying will not change it.
    Refused(String),
    /// No answer that can be relied on (unavailable, an error page): retry later with the
    /// same idempotency key.
    Unavailable(String),
}

/// Identity checks through external services (seed 000, 6.11.3–6.11.6): SNILS (rndsoft),
/// INN by passport (FNS), the mobile operator's confirmation of the data (mobile ID) and
/// passport recognition. `method` is the catalogue's method id.
pub trait IdentityChecks: Send + Sync {
    /// `Done(())` when the service confirmed the client's data for `method`, `Refused` with
    /// its reason when it did not.
    fn confirm<'a>(
        &'a self,
        method: &'a str,
        data: &'a crate::personal::PersonalData,
    ) -> BoxFuture<'a, Answer<()>>;
}

/// What the risk module is asked (seed 000, 6.12.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreRequest {
    pub client_id: ClientId,
    pub application_id: Uuid,
    pub requested: Money,
    pub term: u32,
    /// Roubles a month, if the client stated it.
    pub monthly_income: Option<rust_decimal::Decimal>,
    pub repeat_client: bool,
}

/// The risk module: a score in 0..=1000 (higher is better).
pub trait RiskModule: Send + Sync {
    fn score<'a>(&'a self, request: &'a ScoreRequest) -> BoxFuture<'a, Answer<u32>>;
}

/// A card to bind (seed 000, 6.9: registration with the payment provider, a 1-rouble
/// verification hold, confirmation, release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToBind {
    /// The binding id: the provider's idempotency key for every step.
    pub binding_id: Uuid,
    pub client_id: ClientId,
    /// The token the provider's card form returned.
    pub card_token: String,
}

/// A payout of a loan to a bound card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayoutOrder {
    /// The provider's idempotency key.
    pub payout_id: Uuid,
    pub client_id: ClientId,
    pub card_token: String,
    pub amount: Money,
}

/// A payment provider that binds cards and pays out loans (SBC, Tinkoff, Elecsnet:
/// seed 000, 6.9.3–6.9.5). Every call is idempotent by its id.
pub trait CardProvider: Send + Sync {
    /// Registers the card; `Done` with the provider's card reference.
    fn register<'a>(&'a self, card: &'a CardToBind) -> BoxFuture<'a, Answer<String>>;
    /// Holds `amount` on the card to verify it; `Done` with the hold's reference.
    fn hold<'a>(&'a self, card: &'a CardToBind, amount: Money) -> BoxFuture<'a, Answer<String>>;
    /// Confirms the card after the hold succeeded.
    fn confirm<'a>(&'a self, card: &'a CardToBind, hold: &'a str) -> BoxFuture<'a, Answer<()>>;
    /// Releases the verification hold (also the compensation after a failed binding).
    fn release<'a>(&'a self, card: &'a CardToBind, hold: &'a str) -> BoxFuture<'a, Answer<()>>;
    /// Pays `order.amount` out to the card; `Done` with the provider's reference.
    fn payout<'a>(&'a self, order: &'a PayoutOrder) -> BoxFuture<'a, Answer<String>>;
}

/// Notifications to a client (seed 000, 6.3.1: personal cabinet, SMS, push).
pub trait Notifier: Send + Sync {
    /// Sends `text`; `key` makes a repeated notification a no-op.
    fn notify<'a>(
        &'a self,
        client: ClientId,
        key: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// A card as the bank is given it: typed in by the card holder (number, expiry and CVC exist
/// only in this request: never stored, never logged), or bound earlier and named by the
/// bank's token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardCredentials {
    Entered(CardDetails),
    Bound { token: String },
}

/// A card's number, expiry and CVC as the card holder typed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardDetails {
    pub number: crate::card::CardNumber,
    pub expiry: crate::card::Expiry,
    pub cvc: crate::card::Cvc,
}

/// A card payment the bank is asked to authorise (e-wallet spec §7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardPayment {
    /// The platform's payment id: the bank's idempotency key.
    pub payment_id: Uuid,
    pub card: CardCredentials,
    /// What the card is charged: the amount with its commission.
    pub amount: Money,
}

/// A card the bank bound for later payments: its token and masked number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardToken {
    pub token: String,
    /// First six and last four digits.
    pub masked_pan: String,
}

/// The bank system (e-wallet spec §7.1): authorise an amount at a card, then capture or
/// release the authorisation. Each call is idempotent by its key (payment id, authorisation).
pub trait BankSystem: Send + Sync {
    /// Verifies a card and binds it for later payments (card-on-file tokenisation): `Done`
    /// with its token, the same token for the same card; `Refused` with the bank's reason.
    fn bind<'a>(&'a self, card: &'a CardDetails) -> BoxFuture<'a, Answer<CardToken>>;
    /// `Done` with the authorisation id, `Refused` with the bank's reason (declined, or a
    /// token the bank does not know).
    fn authorise<'a>(&'a self, payment: &'a CardPayment) -> BoxFuture<'a, Answer<String>>;
    /// Takes the authorised amount.
    fn capture<'a>(&'a self, authorisation_id: &'a str) -> BoxFuture<'a, Answer<()>>;
    /// Gives the authorised amount back to the card.
    fn release<'a>(&'a self, authorisation_id: &'a str) -> BoxFuture<'a, Answer<()>>;
}

/// One alert delivery to an operator who subscribed to it (e-wallet spec §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertMessage {
    /// The delivery's idempotency key: a repeated call with it must not deliver twice.
    pub key: String,
    /// The subscribed operator (the token subject that subscribed).
    pub recipient: String,
    pub channel: crate::alerts::Channel,
    pub alert_type: crate::alerts::AlertType,
    /// The client the alert is about, when it is about one.
    pub client_id: Option<ClientId>,
    /// [`crate::alerts::render`]'s text: codes, ids, amounts and reasons, no personal data.
    pub text: String,
}

/// The notification gateway operators' alerts go out through (SMS, e-mail, push, the web
/// console).
pub trait AlertNotifier: Send + Sync {
    /// Delivers `message` once per `message.key`; `Err` with the gateway's reason when it
    /// failed (the delivery is retried with the same key).
    fn send<'a>(&'a self, message: &'a AlertMessage) -> BoxFuture<'a, Result<(), String>>;
}

/// A key the report crypto holds, as operators see it listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key's name in the configuration.
    pub id: String,
    /// `Ed25519` (signing), `X25519` (encryption to a bureau), or another adapter's own
    /// (e.g. `GOST R 34.10-2012`).
    pub algorithm: String,
    /// `signing` (the platform's own key) or `encryption:<bureau>` (a bureau's public key).
    pub purpose: String,
    /// The public key, hex.
    pub public_key_hex: String,
}

/// Signing and encryption of the files sent to credit bureaus (seed 000 §6.6.8): a detached
/// signature by the platform's key, encryption to a bureau's public key, and SHA-256 of every
/// file. The software implementation is `etr_infra::crypto::Software`; a GOST / CryptoPro
/// implementation is another adapter of this trait.
pub trait ReportCrypto: Send + Sync {
    /// A detached signature of `data` by the platform's signing key.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, String>;
    /// `data` encrypted so that only the holder of the secret key of `bureau`'s configured
    /// public key can read it; `Err` for a bureau without a key.
    fn encrypt_for(&self, bureau: &str, data: &[u8]) -> Result<Vec<u8>, String>;
    /// The SHA-256 of `data`, lowercase hex.
    fn digest(&self, data: &[u8]) -> String;
    /// The configured keys and certificates.
    fn keys(&self) -> Vec<KeyInfo>;
}

/// A credit-history report file as it goes to a bureau (seed 000 §6.6.7): `encrypted` is the
/// file sealed to the bureau's public key, `signature` the platform's detached signature of
/// the plain file, `name` the file's name (`<bureau>_<day>_<upload>_<attempt>.txt`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFile {
    pub name: String,
    pub encrypted: Vec<u8>,
    pub signature: Vec<u8>,
}

/// A credit bureau's upload service.
pub trait CreditBureau: Send + Sync {
    /// `Ok` with the bureau's answer to the file (a receipt, or a rejection naming the
    /// records it refused and why); `Err` when it did not answer (the file is sent again).
    fn upload<'a>(
        &'a self,
        bureau: &'a str,
        file: &'a ReportFile,
    ) -> BoxFuture<'a, Result<crate::bki_upload::Answer, String>>;
}
