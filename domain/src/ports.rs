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
