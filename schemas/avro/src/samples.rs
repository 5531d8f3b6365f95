//! One example of every event type, for round-trip tests (here and through the registry).

use etr_domain::application::{self, Offer};
use etr_domain::payment;
use etr_domain::wallet::{self, Limits};
use etr_domain::{loan, Actor, ClientId, Currency, Envelope, Event, Money};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use time::macros::datetime;
use uuid::Uuid;

fn money(cents: i64) -> Money {
    Money::new(Decimal::new(cents, 2), Currency::Rub)
}

/// Every event type of the platform once, with non-trivial field values.
pub fn every_event() -> Vec<Event> {
    let id = |n: u128| Uuid::from_u128(n);
    let mut attributes = BTreeMap::new();
    attributes.insert("account".to_owned(), "79001234567".to_owned());
    attributes.insert("region".to_owned(), "77".to_owned());
    let offer = Offer {
        offer_id: id(9),
        amount: money(1_500_000),
        term_days: 30,
        daily_rate_percent: "0.8".into(),
    };
    use Event::{Application as A, Loan as L, Payment as P, Wallet as W};
    vec![
        W(wallet::Event::WalletOpened {
            wallet_id: id(1),
            client_id: ClientId(id(2)),
            currency: Currency::Rub,
            limits: Limits::registered(),
        }),
        W(wallet::Event::WalletToppedUp {
            operation_id: id(3),
            amount: money(10_050),
            source: "card".into(),
        }),
        W(wallet::Event::FundsHeld {
            payment_id: id(4),
            amount: money(5_000),
        }),
        W(wallet::Event::HoldCaptured {
            payment_id: id(4),
            amount: money(5_000),
        }),
        W(wallet::Event::HoldReleased {
            payment_id: id(4),
            amount: money(5_000),
        }),
        W(wallet::Event::TransferSent {
            transfer_id: id(5),
            to_wallet_id: id(6),
            amount: money(1),
        }),
        W(wallet::Event::TransferReceived {
            transfer_id: id(5),
            from_wallet_id: id(1),
            amount: money(1),
        }),
        W(wallet::Event::WalletClosed {
            reason: "closed by client".into(),
        }),
        P(payment::Event::PaymentInitiated {
            payment_id: id(4),
            wallet_id: id(1),
            amount: money(5_000),
            service_id: "mobile".into(),
            attributes,
        }),
        P(payment::Event::PaymentLocked),
        P(payment::Event::PaymentBalanceChecked),
        P(payment::Event::PaymentReserved {
            amount: money(5_000),
        }),
        P(payment::Event::PaymentExecutionStarted),
        P(payment::Event::PaymentExecuted {
            provider_reference: "sbc-42".into(),
        }),
        P(payment::Event::PaymentSucceeded),
        P(payment::Event::PaymentExecutionFailed {
            reason: "timeout".into(),
        }),
        P(payment::Event::PaymentFailed {
            reason: "timeout".into(),
        }),
        P(payment::Event::PaymentCancelled {
            reason: "fraud control: velocity".into(),
        }),
        A(application::Event::ApplicationSubmitted {
            application_id: id(7),
            requested: money(1_500_000),
            term_days: 30,
            partner_id: Some("shop-1".into()),
        }),
        A(application::Event::ClientIdentified),
        A(application::Event::IdentificationFailed {
            reason: "passport invalid".into(),
        }),
        A(application::Event::ApplicationApproved {
            offers: vec![
                offer.clone(),
                Offer {
                    offer_id: id(10),
                    ..offer
                },
            ],
        }),
        A(application::Event::ApplicationDeclined {
            reason: "PDN above 80%".into(),
        }),
        A(application::Event::OfferChosen { offer_id: id(9) }),
        A(application::Event::ContractSigned {
            contract_id: id(11),
        }),
        A(application::Event::LoanDisbursed { loan_id: id(12) }),
        A(application::Event::ApplicationCancelled {
            reason: "client withdrew".into(),
        }),
        L(loan::Event::LoanIssued {
            loan_id: id(12),
            application_id: id(7),
            principal: money(1_500_000),
            term_days: 30,
            daily_rate_percent: "0.8".into(),
        }),
        L(loan::Event::RepaymentAccepted {
            repayment_id: id(13),
            amount: money(500_000),
        }),
        L(loan::Event::LoanProlonged {
            days: 14,
            fee: money(12_000),
        }),
        L(loan::Event::LoanBecameOverdue),
        L(loan::Event::LoanRepaid),
    ]
}

/// An envelope for `event` with every field set.
pub fn envelope_for(event: &Event, sequence: u64) -> Envelope {
    Envelope {
        event_id: Uuid::from_u128(1_000 + u128::from(sequence)),
        event_type: event.name().to_owned(),
        schema_version: crate::SCHEMA_VERSION,
        client_id: ClientId(Uuid::from_u128(2)),
        aggregate_type: event.kind(),
        aggregate_id: Uuid::from_u128(1),
        aggregate_version: sequence + 1,
        partition: 3,
        sequence,
        command_id: format!("cmd-{sequence}"),
        correlation_id: "corr-1".into(),
        actor: Actor::system("samples"),
        occurred_at: datetime!(2026-11-24 10:15:30.123456 UTC),
        prev_hash: etr_domain::envelope::GENESIS_HASH.into(),
        hash: "ab".repeat(32),
    }
}
