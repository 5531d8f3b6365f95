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

/// The payment processing that executes a reserved payment (status 4).
pub trait PaymentProvider: Send + Sync {
    fn execute<'a>(&'a self, order: &'a PaymentOrder) -> BoxFuture<'a, Execution>;
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
