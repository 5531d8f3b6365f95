//! Why a command is refused. Each variant has a stable machine-readable code.

use rust_decimal::Decimal;

use crate::identity::IdentityError;
use crate::money::{Currency, MoneyError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("wallet {0} does not exist")]
    WalletNotFound(uuid::Uuid),
    #[error("wallet {0} already exists")]
    WalletAlreadyOpened(uuid::Uuid),
    #[error("wallet {0} is closed")]
    WalletClosed(uuid::Uuid),
    #[error("wallet belongs to another client")]
    WalletOfAnotherClient,
    #[error("insufficient funds: available {available}, requested {requested}")]
    InsufficientFunds {
        available: Decimal,
        requested: Decimal,
    },
    #[error("amount {amount} is below the minimum operation amount {min} {currency}")]
    BelowMinimumOperation {
        amount: Decimal,
        min: Decimal,
        currency: Currency,
    },
    #[error("amount {amount} is above the maximum operation amount {max} {currency}")]
    AboveMaximumOperation {
        amount: Decimal,
        max: Decimal,
        currency: Currency,
    },
    #[error("the balance would become {balance}, above the maximum {max} {currency}")]
    MaxBalanceExceeded {
        balance: Decimal,
        max: Decimal,
        currency: Currency,
    },
    #[error("group `{group}` has no limits in {currency}: operations in it are not allowed")]
    CurrencyNotAllowed { group: String, currency: Currency },
    #[error("the {scope} spend limit per {period} is {limit} {currency}: {used} already counted, {requested} requested")]
    SpendLimitExceeded {
        scope: &'static str,
        period: &'static str,
        limit: Decimal,
        used: Decimal,
        requested: Decimal,
        currency: Currency,
    },
    #[error("payment {payment_id} already has cancellation request {request_id} in progress")]
    CancellationInProgress {
        payment_id: uuid::Uuid,
        request_id: uuid::Uuid,
    },
    #[error("payment {0} awaits no confirmation")]
    ConfirmationNotAwaited(uuid::Uuid),
    #[error("cannot transfer a wallet to itself")]
    TransferToSameWallet,
    #[error("payment {0} does not exist")]
    PaymentNotFound(uuid::Uuid),
    #[error("card {0} is not bound to the client")]
    CardNotFound(uuid::Uuid),
    #[error("payment {0} already exists")]
    PaymentAlreadyExists(uuid::Uuid),
    #[error("client {0} does not exist")]
    ClientNotFound(uuid::Uuid),
    #[error("client {0} is blocked")]
    ClientBlocked(uuid::Uuid),
    #[error("application {0} does not exist")]
    ApplicationNotFound(uuid::Uuid),
    #[error("the client already has an open application {0}")]
    ApplicationAlreadyOpen(uuid::Uuid),
    #[error("the signature is over another document; the contract's SHA-256 is {expected}")]
    ContractHashMismatch { expected: String },
    #[error("not due before {0}")]
    NotYetDue(time::OffsetDateTime),
    #[error("{aggregate} {id} cannot {action} in status {status}")]
    InvalidTransition {
        aggregate: &'static str,
        id: uuid::Uuid,
        action: &'static str,
        status: String,
    },
    #[error("run {run} of autopayment {autopayment_id} is not due: the autopayment is paused, cancelled, or at another run")]
    AutopaymentRunNotDue {
        autopayment_id: uuid::Uuid,
        run: u32,
    },
    #[error("loan {0} does not exist")]
    LoanNotFound(uuid::Uuid),
    #[error("card repayment {0} of the loan is still with the bank")]
    RepaymentInProgress(uuid::Uuid),
    #[error(transparent)]
    Servicing(#[from] crate::servicing::Error),
    #[error("merchant order {0} does not exist")]
    OrderNotFound(uuid::Uuid),
    #[error("merchant order {0} already exists")]
    OrderAlreadyExists(uuid::Uuid),
    #[error("merchant order {0} is paid already")]
    OrderNotPayable(uuid::Uuid),
    #[error("merchant order {0} has expired")]
    OrderExpired(uuid::Uuid),
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// Stable code for API responses. Refusals of an amount or a currency keep their own
    /// codes ([`MoneyError::code`]: `invalid_amount`, `amount_empty`, `amount_whitespace`,
    /// `amount_not_positive`, `amount_signed`, `amount_exponent`, `amount_underscore`,
    /// `amount_bare_point`, `amount_too_long`, `amount_too_precise`, `amount_too_large`,
    /// `unknown_currency`, `currency_mismatch`); so do refusals of a client identifier
    /// ([`IdentityError::code`]: `inn_format`, `inn_checksum`, `snils_format`,
    /// `snils_checksum`, `passport_format`, `passport_not_issued`, `phone_format`,
    /// `email_format`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Money(e) => e.code(),
            Error::Identity(e) => e.code(),
            Error::WalletNotFound(_) => "wallet_not_found",
            Error::WalletAlreadyOpened(_) => "wallet_already_exists",
            Error::WalletClosed(_) => "wallet_closed",
            Error::WalletOfAnotherClient => "wallet_of_another_client",
            Error::InsufficientFunds { .. } => "insufficient_funds",
            Error::BelowMinimumOperation { .. } => "below_min_operation_amount",
            Error::AboveMaximumOperation { .. } => "above_max_operation_amount",
            Error::MaxBalanceExceeded { .. } => "max_balance_exceeded",
            Error::CurrencyNotAllowed { .. } => "currency_not_allowed",
            Error::SpendLimitExceeded { .. } => "spend_limit_exceeded",
            Error::ConfirmationNotAwaited(_) => "confirmation_not_awaited",
            Error::CancellationInProgress { .. } => "cancellation_in_progress",
            Error::TransferToSameWallet => "transfer_to_same_wallet",
            Error::PaymentNotFound(_) => "payment_not_found",
            Error::CardNotFound(_) => "card_not_found",
            Error::PaymentAlreadyExists(_) => "payment_already_exists",
            Error::ClientNotFound(_) => "client_not_found",
            Error::ClientBlocked(_) => "client_blocked",
            Error::ApplicationNotFound(_) => "application_not_found",
            Error::ApplicationAlreadyOpen(_) => "application_already_open",
            Error::ContractHashMismatch { .. } => "contract_hash_mismatch",
            Error::NotYetDue(_) => "not_yet_due",
            Error::InvalidTransition { .. } => "invalid_transition",
            Error::AutopaymentRunNotDue { .. } => crate::autopayment::RUN_NOT_DUE,
            Error::LoanNotFound(_) => "loan_not_found",
            Error::RepaymentInProgress(_) => "repayment_in_progress",
            Error::Servicing(e) => e.code(),
            Error::OrderNotFound(_) => "order_not_found",
            Error::OrderAlreadyExists(_) => "order_already_exists",
            Error::OrderNotPayable(_) => "order_not_payable",
            Error::OrderExpired(_) => "order_expired",
            Error::Invalid(_) => "invalid_command",
        }
    }

    /// Whether the refusal is because something does not exist (HTTP 404) rather than a
    /// business rule (HTTP 422).
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            Error::WalletNotFound(_)
                | Error::PaymentNotFound(_)
                | Error::CardNotFound(_)
                | Error::ClientNotFound(_)
                | Error::ApplicationNotFound(_)
                | Error::OrderNotFound(_)
                | Error::LoanNotFound(_)
        )
    }
}
