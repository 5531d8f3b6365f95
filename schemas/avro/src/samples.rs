//! One example of every event type, for round-trip tests (here and through the registry).

use etr_domain::application::{self, CartItem, Contract, Offer};
use etr_domain::client;
use etr_domain::payment;
use etr_domain::personal::Sealed;
use etr_domain::schedule::Instalment;
use etr_domain::wallet::{self, Limits};
use etr_domain::{loan, merchant_order, Actor, ClientId, Currency, Envelope, Event, Money};
use rust_decimal::Decimal;
use std::collections::BTreeMap;
use time::macros::{date, datetime};
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
    let instalment = Instalment {
        number: 1,
        date: date!(2026 - 12 - 24),
        days: 30,
        payment: Decimal::new(1_860_000, 2),
        principal: Decimal::new(1_500_000, 2),
        interest: Decimal::new(360_000, 2),
        balance: Decimal::new(0, 2),
    };
    let offer = Offer {
        offer_id: id(9),
        product_id: "payday-30".into(),
        amount: money(1_500_000),
        term: 30,
        term_unit: "days".into(),
        contract_date: date!(2026 - 11 - 24),
        schedule: vec![instalment.clone()],
        charges: Decimal::new(360_000, 2),
        psk_percent: Decimal::new(292_000, 3),
        psk_money: Decimal::new(360_000, 2),
        servicing: Some(loan::Servicing {
            annual_rate: Decimal::new(2_920, 3),
            penalty_rate: Decimal::new(20, 2),
            day_count: etr_domain::schedule::DayCount::Actual365,
            method: etr_domain::schedule::Repayment::Annuity,
            prolongation_fee: Decimal::new(50_000, 2),
        }),
    };
    let sealed = Sealed {
        key_version: 1,
        nonce: "00".repeat(24),
        ciphertext: "ab".repeat(40),
    };
    let card = client::BoundCard {
        card_id: id(14),
        provider: "sbc".into(),
        token: "tok-1".into(),
        masked_pan: "220220******1234".into(),
    };
    use Event::{Application as A, Client as C, Loan as L, Payment as P, Wallet as W};
    let mut events = vec![
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
        W(wallet::Event::TransferDebited {
            payment_id: id(9),
            to_client_id: ClientId(id(10)),
            to_wallet_id: id(11),
            amount: money(2_500),
        }),
        W(wallet::Event::TransferCredited {
            transfer_id: id(9),
            from_client_id: ClientId(id(2)),
            from_wallet_id: id(1),
            amount: money(2_500),
        }),
        W(wallet::Event::TransferRefunded {
            payment_id: id(9),
            amount: money(2_500),
            reason: "the recipient's wallet refused the credit: wallet_closed".into(),
        }),
        W(wallet::Event::PaymentRefunded {
            payment_id: id(4),
            request_id: id(8),
            amount: money(5_000),
        }),
        W(wallet::Event::WalletClosed {
            reason: "closed by client".into(),
        }),
        P(payment::Event::PaymentInitiated {
            commission: Some(money(50)),
            payment_id: id(4),
            wallet_id: id(1),
            amount: money(5_000),
            service_id: "mobile".into(),
            attributes: attributes.clone(),
            recipient: None,
            card: None,
        }),
        P(payment::Event::PaymentInitiated {
            commission: None,
            payment_id: id(9),
            wallet_id: id(1),
            amount: money(2_500),
            service_id: payment::TRANSFER_SERVICE.into(),
            attributes,
            recipient: Some(payment::Recipient {
                client_id: ClientId(id(10)),
                wallet_id: id(11),
                order_id: Some(id(12)),
            }),
            card: None,
        }),
        P(payment::Event::PaymentLocked),
        P(payment::Event::PaymentBalanceChecked),
        P(payment::Event::PaymentConfirmationRequested {
            threshold: money(3_000),
        }),
        P(payment::Event::PaymentConfirmed),
        P(payment::Event::PaymentReserved {
            amount: money(5_000),
            limit_day: Some(time::macros::date!(2026 - 11 - 30)),
        }),
        P(payment::Event::PaymentInitiated {
            commission: None,
            payment_id: id(13),
            wallet_id: id(1),
            amount: money(1_500),
            service_id: "mobile".into(),
            attributes: BTreeMap::new(),
            recipient: None,
            card: Some(payment::CardSource {
                card_id: id(14),
                masked_pan: "411111******1111".into(),
                token: "simtok-0a1b2c".into(),
            }),
        }),
        P(payment::Event::CardAuthorisationRequested {
            amount: money(1_500),
            limit_day: time::macros::date!(2026 - 11 - 30),
        }),
        P(payment::Event::CardAuthorised {
            authorisation_id: "auth-42".into(),
        }),
        P(payment::Event::CardAuthorisationCaptured),
        P(payment::Event::CardAuthorisationReleased),
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
        P(payment::Event::CancellationRequested {
            request_id: id(8),
            reason: "the service was not provided".into(),
        }),
        P(payment::Event::CancellationRejected {
            request_id: id(8),
            reason: "the operation is failed (8), not in its final success status (6)".into(),
        }),
        P(payment::Event::CancellationSentToProcessing {
            request_id: id(8),
            wallet_id: id(1),
            amount: money(5_000),
            service_id: "mobile".into(),
            provider_reference: "sbc-42".into(),
        }),
        P(payment::Event::CancellationSucceeded {
            request_id: id(8),
            reference: "REV-42".into(),
        }),
        P(payment::Event::CancellationFailed {
            request_id: id(8),
            reason: "the processing centre refused".into(),
        }),
        C(client::Event::ClientRegistered {
            personal: sealed.clone(),
            registered_by: "shop-1".into(),
        }),
        C(client::Event::PersonalDataChanged {
            personal: sealed.clone(),
        }),
        C(client::Event::ClientBlocked {
            reason: "fraud suspicion".into(),
        }),
        C(client::Event::ClientUnblocked),
        C(client::Event::ClientTagged {
            tag: "vip".into(),
            reason: "long relationship".into(),
        }),
        C(client::Event::ClientUntagged {
            tag: "vip".into(),
            reason: "reviewed".into(),
        }),
        C(client::Event::CardBound { card: card.clone() }),
        C(client::Event::DocumentAdded {
            document: etr_domain::documents::Document {
                document_id: id(15),
                kind: "driver_license".into(),
                content_type: "image/jpeg".into(),
                size_bytes: 48_213,
                location: "documents/2/15".into(),
                number: Some(Sealed {
                    key_version: 1,
                    nonce: "11".repeat(24),
                    ciphertext: "cd".repeat(20),
                }),
            },
        }),
        C(client::Event::PersonalDataErased {
            reason: "the client's request under 152-FZ".into(),
        }),
        C(client::Event::ApplicationOpened {
            application_id: id(7),
        }),
        C(client::Event::ApplicationClosed {
            application_id: id(7),
            outcome: "disbursed".into(),
        }),
        C(client::Event::ClientGroupChanged {
            group: etr_domain::limits::GroupId::anonymous(),
            reason: "identification expired".into(),
        }),
        C(client::Event::ClientTimeZoneChanged {
            utc_offset: "+05:00".into(),
        }),
        C(client::Event::WalletRegistrationSubmitted {
            personal: sealed.clone(),
            currency: Currency::Rub,
            wallet_id: id(1),
        }),
        C(client::Event::WalletRegistrationApproved {
            approval: client::Approval::Manual,
            reason: "documents checked".into(),
        }),
        C(client::Event::WalletRegistrationRejected {
            reason: "duplicate".into(),
        }),
        C(client::Event::WalletRegistrationCompleted { wallet_id: id(1) }),
        C(client::Event::TemplateSaved {
            template_id: id(13),
            template: etr_domain::autopayment::Template {
                name: "Мобильный".into(),
                wallet_id: id(1),
                service_id: "mobile".into(),
                amount: money(30_000),
                attributes: BTreeMap::from([("phone".to_owned(), "+79001234567".to_owned())]),
            },
        }),
        C(client::Event::TemplateDeleted {
            template_id: id(13),
        }),
        C(client::Event::AutopaymentCreated {
            autopayment_id: id(14),
            template_id: id(13),
            schedule: etr_domain::autopayment::Schedule {
                unit: etr_domain::autopayment::Unit::Month,
                count: 1,
                first_run_at: time::macros::datetime!(2026-12-05 09:00 UTC),
            },
            max_failures: 3,
        }),
        C(client::Event::AutopaymentRunRecorded {
            autopayment_id: id(14),
            run: 0,
            payment_id: id(15),
            succeeded: false,
            reason: Some("insufficient_funds".into()),
            next_run: 1,
        }),
        C(client::Event::AutopaymentRunRecorded {
            autopayment_id: id(14),
            run: 1,
            payment_id: id(16),
            succeeded: true,
            reason: None,
            next_run: 2,
        }),
        C(client::Event::AutopaymentPaused {
            autopayment_id: id(14),
            reason: "3 failed runs in a row".into(),
        }),
        C(client::Event::AutopaymentResumed {
            autopayment_id: id(14),
            next_run: 4,
        }),
        C(client::Event::AutopaymentCancelled {
            autopayment_id: id(14),
        }),
        C(client::Event::PersonalDataChangeRequested {
            request_id: id(12),
            personal: sealed.clone(),
        }),
        C(client::Event::PersonalDataChangeApproved {
            request_id: id(12),
            approval: client::Approval::Automatic,
            reason: "automatic".into(),
        }),
        C(client::Event::PersonalDataChangeRejected {
            request_id: id(12),
            reason: "the passport does not match".into(),
        }),
        C(client::Event::SpendingCounted {
            operation_id: id(4),
            amount: money(5_000),
            source: etr_domain::limits::Source::Wallet,
            day: time::macros::date!(2026 - 11 - 30),
        }),
        C(client::Event::SpendingReleased {
            operation_id: id(4),
            amount: money(5_000),
            source: etr_domain::limits::Source::Card,
            day: time::macros::date!(2026 - 11 - 30),
        }),
        A(application::Event::ApplicationCreated {
            application_id: id(7),
            product_id: Some("installment-12".into()),
            requested: money(1_500_000),
            term: 12,
            partner_id: Some("shop-1".into()),
            channel: "partner".into(),
            cart: vec![CartItem {
                name: "Телефон".into(),
                quantity: 1,
                price: money(1_500_000),
            }],
        }),
        A(application::Event::ApplicationSubmitted {
            application_id: id(7),
        }),
        A(application::Event::ClientIdentified {
            method: "snils".into(),
        }),
        A(application::Event::IdentificationReferred {
            method: "photo".into(),
            reason: "photo identification needs an operator".into(),
            ticket_id: id(20),
        }),
        A(application::Event::IdentificationFailed {
            reasons: vec!["passport invalid".into()],
        }),
        A(application::Event::LegalChecksPassed),
        A(application::Event::ApplicationReferred {
            stage: "scoring".into(),
            reasons: vec!["possible duplicate client".into()],
            score: Some(640),
            pdn_percent: Some(Decimal::new(423, 1)),
        }),
        A(application::Event::ReviewResolved {
            stage: "scoring".into(),
            approved: true,
            reason: "not a duplicate".into(),
        }),
        A(application::Event::ApplicationApproved {
            offers: vec![
                offer.clone(),
                Offer {
                    offer_id: id(10),
                    ..offer
                },
            ],
            score: 700,
            pdn_percent: None,
            expires_at: datetime!(2026-11-27 10:15:30 UTC),
        }),
        A(application::Event::ApplicationDeclined {
            stage: "scoring".into(),
            reasons: vec!["PDN above 80%".into()],
            score: None,
            pdn_percent: Some(Decimal::new(812, 1)),
        }),
        A(application::Event::OfferChosen { offer_id: id(9) }),
        A(application::Event::ContractGenerated {
            contract: Contract {
                contract_id: id(11),
                document_sha256: "cd".repeat(32),
                location: "agreements/7/cd.pdf".into(),
                template: "loan_agreement".into(),
            },
        }),
        A(application::Event::ContractSigned {
            contract_id: id(11),
            document_sha256: "cd".repeat(32),
            otp_purpose: "sign".into(),
        }),
        A(application::Event::CardBindingRequested {
            binding_id: id(14),
            provider: "sbc".into(),
            card_token: "tok-1".into(),
            masked_pan: "220220******1234".into(),
        }),
        A(application::Event::ApplicationCardBound { card }),
        A(application::Event::CardBindingFailed {
            binding_id: id(14),
            reason: "card declined".into(),
        }),
        A(application::Event::GoodsHandedOver),
        A(application::Event::LoanDisbursed {
            loan_id: id(12),
            payout_reference: "sbc-payout-1".into(),
        }),
        A(application::Event::DisbursementFailed {
            reason: "provider refused".into(),
            contract_id: Some(id(11)),
        }),
        A(application::Event::ApplicationCancelled {
            reason: "client withdrew".into(),
        }),
        A(application::Event::ApplicationExpired),
        L(loan::Event::LoanIssued {
            loan_id: id(12),
            application_id: id(7),
            principal: money(1_500_000),
            term_days: 30,
            daily_rate_percent: "0.8".into(),
            terms: Some(Box::new(loan::Terms {
                product_id: "payday-30".into(),
                term: 30,
                term_unit: "days".into(),
                contract_date: date!(2026 - 11 - 24),
                schedule: vec![instalment.clone()],
                psk_percent: Decimal::new(292_000, 3),
                psk_money: Decimal::new(360_000, 2),
                card_id: Some(id(14)),
                payout_reference: "sbc-payout-1".into(),
                servicing: Some(loan::Servicing {
                    annual_rate: Decimal::new(2_920, 3),
                    penalty_rate: Decimal::new(20, 2),
                    day_count: etr_domain::schedule::DayCount::Actual365,
                    method: etr_domain::schedule::Repayment::Annuity,
                    prolongation_fee: Decimal::new(50_000, 2),
                }),
            })),
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
        L(loan::Event::InterestAccrued {
            from: date!(2026 - 11 - 24),
            through: date!(2026 - 11 - 27),
            interest: Decimal::new(36_000, 2),
            penalties: Decimal::new(0, 2),
            fell_overdue: Decimal::new(0, 2),
            debt: Decimal::new(1_536_000, 2),
        }),
        L(loan::Event::RepaymentAllocated {
            repayment_id: id(15),
            date: date!(2026 - 11 - 27),
            wallet_id: Some(id(2)),
            card_id: None,
            amount: money(536_000),
            paid: loan::Paid {
                fees: Decimal::new(0, 2),
                penalties: Decimal::new(0, 2),
                overdue_interest: Decimal::new(0, 2),
                interest: Decimal::new(36_000, 2),
                overdue_principal: Decimal::new(0, 2),
                principal: Decimal::new(500_000, 2),
                credit: Decimal::new(0, 2),
            },
            early: Some(etr_domain::servicing::Recalculate::Term),
            schedule: vec![instalment.clone()],
            debt: Decimal::new(1_000_000, 2),
        }),
        L(loan::Event::CardRepaymentRequested {
            repayment_id: id(16),
            card_id: id(14),
            masked_pan: "220220******1234".into(),
            token: "bank-tok-1".into(),
            amount: money(120_000),
            early: None,
        }),
        L(loan::Event::CardRepaymentDeclined {
            repayment_id: id(16),
            reason: "do not honour".into(),
        }),
        L(loan::Event::TermExtended {
            date: date!(2026 - 11 - 28),
            months: 1,
            fee: Decimal::new(50_000, 2),
            schedule: vec![instalment.clone()],
        }),
        L(loan::Event::AccrualStopped {
            date: date!(2026 - 11 - 29),
            reason: "client in hospital".into(),
        }),
        L(loan::Event::AccrualResumed {
            date: date!(2026 - 12 - 05),
            reason: "certificate received".into(),
        }),
        L(loan::Event::LoanWrittenOff {
            date: date!(2027 - 06 - 01),
            reason: "uncollectable".into(),
            amount: Decimal::new(1_020_000, 2),
        }),
        L(loan::Event::LoanClosed {
            date: date!(2026 - 12 - 24),
            credit: Decimal::new(1_000, 2),
        }),
        W(wallet::Event::LoanRepaymentDebited {
            loan_id: id(12),
            repayment_id: id(15),
            amount: money(536_000),
        }),
    ];
    if let (Ok(number), Ok(return_url)) = (
        merchant_order::OrderNumber::parse("ORD-2026/0001"),
        merchant_order::WebUrl::parse("https://shop.example/orders/0001?paid=1"),
    ) {
        use merchant_order::Event as M;
        events.extend(
            [
                M::MerchantOrderCreated {
                    order_id: id(20),
                    number,
                    amount: money(129_900),
                    description: "Наушники, 1 шт.".into(),
                    return_url,
                    created_at: datetime!(2026-11-24 10:00:00 UTC),
                    expires_at: datetime!(2026-11-25 10:00:00 UTC),
                },
                M::MerchantOrderPaid {
                    payment_id: id(21),
                    source: merchant_order::Source::Wallet,
                    amount: money(129_900),
                    paid_at: datetime!(2026-11-24 10:05:00 UTC),
                    payer_client_id: Some(ClientId(id(22))),
                    authorisation_id: Some("auth-1".into()),
                    masked_pan: Some("220000******0004".into()),
                },
                M::MerchantOrderCardCaptured {
                    authorisation_id: "auth-1".into(),
                },
                M::MerchantNotified { attempts: 3 },
            ]
            .map(Event::MerchantOrder),
        );
    }
    events
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
