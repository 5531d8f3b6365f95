//! Deterministic simulators of external business systems, used by the default run and the
//! tests. Every answer is a function of the input (plus configured latency), so a replayed
//! scenario gets the same answers. A real adapter implements the same port trait.

use etr_domain::payment::{Execution, FraudVerdict};
use etr_domain::ports::{
    Answer, BankSystem, BoxFuture, CardCredentials, CardDetails, CardPayment, CardToken,
    FraudControl, PaymentOrder, PaymentProvider,
};
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// A stable number in 0..100 derived from an id, for configured failure rates.
fn bucket(id: Uuid) -> u8 {
    let sum = id.as_bytes().iter().fold(0u32, |acc, b| {
        acc.wrapping_mul(31).wrapping_add(u32::from(*b))
    });
    u8::try_from(sum % 100).unwrap_or(0)
}

/// Fraud monitoring simulator. Declines when the amount is above `decline_above`, when the
/// service id starts with `blocked`, or for `decline_percent` % of payment ids.
#[derive(Debug, Clone)]
pub struct FraudSimulator {
    pub decline_above: Decimal,
    pub decline_percent: u8,
    pub latency: Duration,
}

impl Default for FraudSimulator {
    fn default() -> Self {
        FraudSimulator {
            decline_above: Decimal::from(50_000),
            decline_percent: 0,
            latency: Duration::ZERO,
        }
    }
}

impl FraudControl for FraudSimulator {
    fn assess<'a>(&'a self, order: &'a PaymentOrder) -> BoxFuture<'a, FraudVerdict> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            if order.amount.amount > self.decline_above {
                return FraudVerdict::Declined {
                    reason: format!("amount above {}", self.decline_above),
                };
            }
            if order.service_id.starts_with("blocked") {
                return FraudVerdict::Declined {
                    reason: "service is on the stop list".into(),
                };
            }
            if bucket(order.payment_id) < self.decline_percent {
                return FraudVerdict::Declined {
                    reason: "risk score too high".into(),
                };
            }
            FraudVerdict::Approved
        })
    }
}

/// Payment processing simulator (SBC / Tinkoff / Elecsnet stand-in). Fails when the service
/// id contains `fail`, or for `failure_percent` % of payment ids; never answers when it
/// contains `hang`; otherwise returns a reference derived from the payment id. A
/// cancellation is refused when the service id contains `nocancel`, and otherwise reverses
/// the payment with a reference derived from the request id.
///
/// Like a real provider it is idempotent by the payment id: a repeated call for a payment
/// it already executed answers the first result and executes nothing; a voided order is
/// answered as failed by every later call (even one that hung until then). It counts the calls
/// and the executions, so tests can check that no payment was executed twice.
#[derive(Debug, Default)]
pub struct PaymentProviderSimulator {
    pub failure_percent: u8,
    pub latency: Duration,
    executed: Mutex<HashMap<Uuid, Execution>>,
    cancelled: Mutex<HashMap<Uuid, Execution>>,
    calls: AtomicU64,
    /// Orders voided before they were executed.
    voids: AtomicU64,
}

impl PaymentProviderSimulator {
    pub fn new(failure_percent: u8, latency: Duration) -> Self {
        PaymentProviderSimulator {
            failure_percent,
            latency,
            ..Default::default()
        }
    }

    /// Calls received, repeats included.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Payments executed (each once, whatever the number of calls), voided orders not
    /// counted.
    pub fn executions(&self) -> usize {
        let voids = usize::try_from(self.voids.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        self.executed
            .lock()
            .map_or(0, |m| m.len().saturating_sub(voids))
    }
}

impl PaymentProvider for PaymentProviderSimulator {
    fn execute<'a>(&'a self, order: &'a PaymentOrder) -> BoxFuture<'a, Execution> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            if order.service_id.contains("hang") {
                std::future::pending::<()>().await;
            }
            if let Some(first) = self
                .executed
                .lock()
                .ok()
                .and_then(|m| m.get(&order.payment_id).cloned())
            {
                return first;
            }
            let answer = if order.service_id.contains("fail")
                || bucket(order.payment_id) < self.failure_percent
            {
                Execution::Failed {
                    reason: "provider declined the operation".into(),
                }
            } else {
                let id = order.payment_id.simple().to_string();
                Execution::Succeeded {
                    provider_reference: format!("SIM-{}", &id[..12]),
                }
            };
            if let Ok(mut m) = self.executed.lock() {
                return m.entry(order.payment_id).or_insert(answer).clone();
            }
            answer
        })
    }

    fn void<'a>(&'a self, order: &'a PaymentOrder) -> BoxFuture<'a, Execution> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let voided = Execution::Failed {
                reason: "voided: the provider did not execute the order in time".into(),
            };
            match self.executed.lock() {
                Ok(mut m) => m
                    .entry(order.payment_id)
                    .or_insert_with(|| {
                        self.voids.fetch_add(1, Ordering::Relaxed);
                        voided
                    })
                    .clone(),
                Err(_) => voided,
            }
        })
    }

    fn cancel<'a>(
        &'a self,
        order: &'a PaymentOrder,
        request_id: Uuid,
        provider_reference: &'a str,
    ) -> BoxFuture<'a, Execution> {
        Box::pin(async move {
            self.calls.fetch_add(1, Ordering::Relaxed);
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let answer = if order.service_id.contains("nocancel") || provider_reference.is_empty() {
                Execution::Failed {
                    reason: "the processing centre refused to reverse the operation".into(),
                }
            } else {
                let id = request_id.simple().to_string();
                Execution::Succeeded {
                    provider_reference: format!("REV-{}", &id[..12]),
                }
            };
            match self.cancelled.lock() {
                Ok(mut m) => m.entry(request_id).or_insert(answer).clone(),
                Err(_) => answer,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etr_domain::{ClientId, Currency, Money};

    fn order(amount: i64, service: &str, id: u128) -> PaymentOrder {
        PaymentOrder {
            client_id: ClientId(Uuid::from_u128(1)),
            wallet_id: Uuid::from_u128(2),
            payment_id: Uuid::from_u128(id),
            amount: Money::new(Decimal::from(amount), Currency::Rub),
            service_id: service.into(),
        }
    }

    #[tokio::test]
    async fn answers_are_deterministic_by_input() {
        let fraud = FraudSimulator::default();
        assert_eq!(
            fraud.assess(&order(100, "mobile", 3)).await,
            FraudVerdict::Approved
        );
        assert!(matches!(
            fraud.assess(&order(60_000, "mobile", 3)).await,
            FraudVerdict::Declined { .. }
        ));
        assert!(matches!(
            fraud.assess(&order(1, "blocked-casino", 3)).await,
            FraudVerdict::Declined { .. }
        ));
        let provider = PaymentProviderSimulator::default();
        let a = provider.execute(&order(100, "mobile", 3)).await;
        assert_eq!(a, provider.execute(&order(100, "mobile", 3)).await);
        assert!(matches!(a, Execution::Succeeded { .. }));
        assert!(matches!(
            provider.execute(&order(100, "svc-fail", 4)).await,
            Execution::Failed { .. }
        ));
        // Idempotent by payment id: a repeated call answers the first result.
        assert_eq!(provider.execute(&order(100, "svc-fail", 3)).await, a);
        assert_eq!(provider.calls(), 4);
        assert_eq!(provider.executions(), 2, "a repeated call executes nothing");
        // A void answers the execution made; an order voided first is never executed.
        assert_eq!(provider.void(&order(100, "mobile", 3)).await, a);
        let voided = provider.void(&order(100, "mobile", 5)).await;
        assert!(matches!(voided, Execution::Failed { .. }), "{voided:?}");
        assert_eq!(provider.execute(&order(100, "mobile", 5)).await, voided);
        assert_eq!(provider.executions(), 2, "a voided order is not executed");
        let flaky = PaymentProviderSimulator::new(50, Duration::ZERO);
        let mut failed = 0;
        for i in 0..200 {
            if matches!(
                flaky.execute(&order(1, "m", i * 7_919)).await,
                Execution::Failed { .. }
            ) {
                failed += 1;
            }
        }
        assert!(
            (60..=140).contains(&failed),
            "about half should fail, got {failed}"
        );
    }
}

/// SMS gateway simulator: records every message it is given, so tests read the codes the
/// platform sent; refuses numbers ending in `0000` (a gateway refusal to test against).
#[derive(Debug, Default)]
pub struct SmsSimulator {
    sent: Mutex<Vec<etr_domain::ports::SmsMessage>>,
}

impl SmsSimulator {
    /// The texts sent to `phone` (E.164), oldest first.
    pub fn sent_to(&self, phone: &str) -> Vec<String> {
        self.sent.lock().map_or_else(
            |_| Vec::new(),
            |m| {
                m.iter()
                    .filter(|s| s.phone.as_str() == phone)
                    .map(|s| s.text.clone())
                    .collect()
            },
        )
    }

    /// The last run of digits in the last text sent to `phone`: the code, for a code message.
    pub fn last_code(&self, phone: &str) -> Option<String> {
        let text = self.sent_to(phone).pop()?;
        text.split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .map(str::to_owned)
    }
}

impl etr_domain::ports::SmsGateway for SmsSimulator {
    fn send<'a>(
        &'a self,
        message: &'a etr_domain::ports::SmsMessage,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if message.phone.as_str().ends_with("0000") {
                return Err("the gateway refused the number".to_owned());
            }
            if let Ok(mut sent) = self.sent.lock() {
                sent.push(message.clone());
            }
            Ok(())
        })
    }
}

/// Federal bankruptcy register simulator (seed 000, 6.6.2 bankrupt-check-service). Every
/// answer is a function of the subject: one open case when the surname starts with `Банкрот`
/// (compared normalised: any case, `Ё` as `Е`; matched on name and birth date) or when an
/// INN among the documents ends in `000` (matched on the document); no case
/// otherwise. A full name starting with `Timeout` (any case) never answers, for testing the
/// caller's timeout. Each answer waits `latency` first.
#[derive(Debug, Clone, Default)]
pub struct BankruptcyRegistrySimulator {
    pub latency: Duration,
}

impl BankruptcyRegistrySimulator {
    pub fn new(latency: Duration) -> Self {
        BankruptcyRegistrySimulator { latency }
    }
}

impl etr_domain::ports::BankruptcyRegistry for BankruptcyRegistrySimulator {
    fn lookup<'a>(
        &'a self,
        subject: &'a etr_domain::legal::Subject,
    ) -> BoxFuture<'a, Result<Vec<etr_domain::legal::BankruptcyCase>, String>> {
        use etr_domain::legal::{normalize_name, BankruptcyCase, CaseStatus, Document, MatchedOn};
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            let name = subject.normalized_name();
            if name.starts_with("TIMEOUT") {
                std::future::pending::<()>().await;
            }
            // A stable case number from what identified the person.
            let case = |key: &str, matched_on| {
                let n = key.bytes().fold(0u32, |acc, b| {
                    acc.wrapping_mul(31).wrapping_add(u32::from(b))
                }) % 1_000_000;
                BankruptcyCase {
                    case_number: format!("А40-{n:06}/2025"),
                    status: CaseStatus::Open,
                    court: "Арбитражный суд города Москвы".to_owned(),
                    opened_on: None,
                    matched_on,
                }
            };
            let by_inn = subject.documents.iter().find_map(|d| match d {
                Document::Inn(inn) if inn.as_str().ends_with("000") => Some(inn.as_str()),
                _ => None,
            });
            if let Some(inn) = by_inn {
                return Ok(vec![case(inn, MatchedOn::Document)]);
            }
            if normalize_name(subject.surname()).starts_with("БАНКРОТ") {
                let key = format!("{name}/{}", subject.birth_date);
                return Ok(vec![case(&key, MatchedOn::NameAndBirthDate)]);
            }
            Ok(Vec::new())
        })
    }
}

/// The bank-system simulator (e-wallet spec §7.1), keeping its books in
/// `simulator_bank_operations` so that every call is idempotent by its key and tests can read
/// what the bank did. Steered by the card number's last four digits: `0002` declines for
/// insufficient funds, `0010` declines as "do not honour", `0028` leaves the bank
/// unavailable; any other card is authorised.
#[derive(Debug, Clone)]
pub struct BankSimulator {
    pub pool: sqlx::PgPool,
}

impl BankSimulator {
    async fn set_status(&self, authorisation_id: &str, to: &str) -> Answer<()> {
        let done: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(
            "UPDATE simulator_bank_operations SET status = CASE WHEN status = 'authorised' THEN $2 ELSE status END, \
                 updated_at = clock_timestamp() \
             WHERE authorisation_id = $1 RETURNING status",
        )
        .bind(authorisation_id)
        .bind(to)
        .fetch_optional(&self.pool)
        .await;
        match done {
            Ok(Some(status)) if status == to => Answer::Done(()),
            Ok(Some(status)) => Answer::Refused(format!("the authorisation is {status}")),
            Ok(None) => Answer::Refused("no such authorisation".into()),
            Err(e) => Answer::Unavailable(e.to_string()),
        }
    }
}

impl BankSystem for BankSimulator {
    /// Binds any card whose number does not end in 0028 (the bank does not answer); the
    /// token is derived from the number, so one card always has one token.
    fn bind<'a>(&'a self, card: &'a CardDetails) -> BoxFuture<'a, Answer<CardToken>> {
        Box::pin(async move {
            let masked_pan = card.number.masked();
            if masked_pan.ends_with("0028") {
                return Answer::Unavailable("the bank does not answer".into());
            }
            let token: Result<String, sqlx::Error> = sqlx::query_scalar(
                "INSERT INTO simulator_bank_cards (token, masked_pan) \
                 VALUES ('simtok-' || left(encode(sha256(convert_to($1, 'UTF8')), 'hex'), 32), $2) \
                 ON CONFLICT (token) DO UPDATE SET masked_pan = EXCLUDED.masked_pan RETURNING token",
            )
            .bind(card.number.digits())
            .bind(&masked_pan)
            .fetch_one(&self.pool)
            .await;
            match token {
                Ok(token) => Answer::Done(CardToken { token, masked_pan }),
                Err(e) => Answer::Unavailable(e.to_string()),
            }
        })
    }

    /// Answers by the card's last four digits: 0028 no answer, 0002 insufficient funds,
    /// 0010 do not honour, any other authorised. A token it did not issue is refused.
    fn authorise<'a>(&'a self, payment: &'a CardPayment) -> BoxFuture<'a, Answer<String>> {
        Box::pin(async move {
            let masked_pan = match &payment.card {
                CardCredentials::Entered(card) => card.number.masked(),
                CardCredentials::Bound { token } => {
                    let found: Result<Option<String>, sqlx::Error> = sqlx::query_scalar(
                        "SELECT masked_pan FROM simulator_bank_cards WHERE token = $1",
                    )
                    .bind(token)
                    .fetch_optional(&self.pool)
                    .await;
                    match found {
                        Ok(Some(masked)) => masked,
                        Ok(None) => return Answer::Refused("unknown_card".into()),
                        Err(e) => return Answer::Unavailable(e.to_string()),
                    }
                }
            };
            let last4 = &masked_pan[masked_pan.len().saturating_sub(4)..];
            let (status, reason) = match last4 {
                "0028" => return Answer::Unavailable("the bank does not answer".into()),
                "0002" => ("declined", Some("insufficient_funds")),
                "0010" => ("declined", Some("do_not_honour")),
                _ => ("authorised", None),
            };
            let authorisation_id = format!("auth-{}", payment.payment_id.simple());
            let row: Result<(String, Option<String>), sqlx::Error> = sqlx::query_as(
                "WITH ins AS (INSERT INTO simulator_bank_operations \
                     (payment_id, authorisation_id, masked_pan, amount, currency, status, reason) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (payment_id) DO NOTHING \
                     RETURNING status, reason) \
                 SELECT status, reason FROM ins \
                 UNION ALL SELECT status, reason FROM simulator_bank_operations WHERE payment_id = $1 \
                 LIMIT 1",
            )
            .bind(payment.payment_id)
            .bind(&authorisation_id)
            .bind(&masked_pan)
            .bind(payment.amount.amount)
            .bind(payment.amount.currency.code())
            .bind(status)
            .bind(reason)
            .fetch_one(&self.pool)
            .await;
            match row {
                Ok((status, reason)) if status == "declined" => {
                    Answer::Refused(reason.unwrap_or_else(|| "declined".into()))
                }
                Ok(_) => Answer::Done(authorisation_id),
                Err(e) => Answer::Unavailable(e.to_string()),
            }
        })
    }

    fn capture<'a>(&'a self, authorisation_id: &'a str) -> BoxFuture<'a, Answer<()>> {
        Box::pin(self.set_status(authorisation_id, "captured"))
    }

    fn release<'a>(&'a self, authorisation_id: &'a str) -> BoxFuture<'a, Answer<()>> {
        Box::pin(self.set_status(authorisation_id, "released"))
    }
}
