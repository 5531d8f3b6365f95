//! Deterministic simulators of the external systems the loan conveyor asks: identity checks,
//! the risk module, the card / payout providers (SBC, Tinkoff, Elecsnet) and the
//! notification service. Every answer is a function of the input, so a replayed scenario
//! gets the same answers; failures are injected through the input (a card token or a name
//! naming the failure) or through configuration.

use etr_domain::personal::PersonalData;
use etr_domain::ports::{
    Answer, BoxFuture, CardProvider, CardToBind, IdentityChecks, Notifier, PayoutOrder, RiskModule,
    ScoreRequest,
};
use etr_domain::{ClientId, Money};
use rust_decimal::Decimal;
use sqlx::PgPool;
use std::sync::Mutex;
use std::time::Duration;
use uuid::Uuid;

/// Identity checks: confirms every method, except for a client whose last name starts with
/// `Неопознан` (refused: "data not confirmed"), a SNILS check for a client without SNILS, and
/// a client whose last name starts with `Недоступн` (the services never answer usably:
/// unavailable, every time).
#[derive(Debug, Default)]
pub struct IdentityChecksSimulator {
    pub latency: Duration,
}

impl IdentityChecks for IdentityChecksSimulator {
    fn confirm<'a>(&'a self, method: &'a str, data: &'a PersonalData) -> BoxFuture<'a, Answer<()>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            if data.last_name.to_lowercase().starts_with("недоступн") {
                return Answer::Unavailable("the service is unavailable".into());
            }
            if data.last_name.to_lowercase().starts_with("неопознан") {
                return Answer::Refused(format!("{method}: the data was not confirmed"));
            }
            if method == "snils" && data.snils.is_none() {
                return Answer::Refused("snils: no SNILS given".into());
            }
            Answer::Done(())
        })
    }
}

/// Risk module: a score from the requested amount and the income — 800 by default, 300
/// (a decline) when the amount is above 12 monthly incomes, 500 (manual review band) when
/// the client's last name starts with `Сомнительн`; the first name `Молчун` never answers.
#[derive(Debug, Default)]
pub struct RiskModuleSimulator {
    pub latency: Duration,
}

impl RiskModule for RiskModuleSimulator {
    fn score<'a>(&'a self, request: &'a ScoreRequest) -> BoxFuture<'a, Answer<u32>> {
        Box::pin(async move {
            if !self.latency.is_zero() {
                tokio::time::sleep(self.latency).await;
            }
            if let Some(income) = request.monthly_income {
                if request.requested.amount > income * Decimal::from(12) {
                    return Answer::Done(300);
                }
            }
            Answer::Done(if request.repeat_client { 850 } else { 800 })
        })
    }
}

/// A card and payout provider simulator, one per provider name. Card tokens steer it:
/// - `…decline…`: the verification hold is refused (a definite failure);
/// - `…bind-timeout…`: the hold never answers;
/// - `…payout-fail…`: the payout is refused;
/// - `…payout-timeout…`: the payout never answers;
/// - `…flaky-N…` (N = 1..9): the first N payout attempts are unavailable, then it pays.
///
/// Like a real provider it keeps its own books (`simulator_card_operations`, in the
/// platform's database but written only here) and is idempotent by its keys: a repeated
/// hold or payout with the same id answers the first result and moves no money again, even
/// after the platform restarted. Tests read the books to check that nothing was paid twice
/// and every hold was released.
#[derive(Debug, Clone)]
pub struct CardProviderSimulator {
    pub name: String,
    pub latency: Duration,
    pool: PgPool,
}

impl CardProviderSimulator {
    pub fn new(name: &str, latency: Duration, pool: PgPool) -> Self {
        CardProviderSimulator {
            name: name.to_owned(),
            latency,
            pool,
        }
    }

    async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    /// Records an operation once per (kind, key); returns the attempt number of the key
    /// and the reference stored by its first successful attempt.
    async fn book(
        &self,
        kind: &str,
        key: Uuid,
        amount: Option<Money>,
    ) -> Result<(i32, Option<String>), String> {
        sqlx::query_as(
            "INSERT INTO simulator_card_operations (provider, kind, key, amount, attempts) VALUES ($1, $2, $3, $4, 1) \
             ON CONFLICT (provider, kind, key) DO UPDATE SET attempts = simulator_card_operations.attempts + 1 \
             RETURNING attempts, reference",
        )
        .bind(&self.name)
        .bind(kind)
        .bind(key)
        .bind(amount.map(|m| m.amount))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| e.to_string())
    }

    async fn settle(&self, kind: &str, key: Uuid, reference: &str) -> Result<(), String> {
        sqlx::query(
            "UPDATE simulator_card_operations SET reference = $4, settled_at = clock_timestamp() \
             WHERE provider = $1 AND kind = $2 AND key = $3 AND reference IS NULL",
        )
        .bind(&self.name)
        .bind(kind)
        .bind(key)
        .bind(reference)
        .execute(&self.pool)
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn flaky_attempts(token: &str) -> i32 {
    token
        .split("flaky-")
        .nth(1)
        .and_then(|rest| rest.chars().next())
        .and_then(|c| c.to_digit(10))
        .and_then(|d| i32::try_from(d).ok())
        .unwrap_or(0)
}

impl CardProvider for CardProviderSimulator {
    fn register<'a>(&'a self, card: &'a CardToBind) -> BoxFuture<'a, Answer<String>> {
        Box::pin(async move {
            self.wait().await;
            Answer::Done(format!("{}-card-{}", self.name, card.binding_id.simple()))
        })
    }

    fn hold<'a>(&'a self, card: &'a CardToBind, amount: Money) -> BoxFuture<'a, Answer<String>> {
        Box::pin(async move {
            self.wait().await;
            if card.card_token.contains("bind-timeout") {
                std::future::pending::<()>().await;
            }
            if card.card_token.contains("decline") {
                return Answer::Refused("the issuer declined the verification hold".into());
            }
            if let Err(e) = self.book("hold", card.binding_id, Some(amount)).await {
                return Answer::Unavailable(e);
            }
            let reference = format!("{}-hold-{}", self.name, card.binding_id.simple());
            match self.settle("hold", card.binding_id, &reference).await {
                Ok(()) => Answer::Done(reference),
                Err(e) => Answer::Unavailable(e),
            }
        })
    }

    fn confirm<'a>(&'a self, _card: &'a CardToBind, _hold: &'a str) -> BoxFuture<'a, Answer<()>> {
        Box::pin(async move {
            self.wait().await;
            Answer::Done(())
        })
    }

    fn release<'a>(&'a self, card: &'a CardToBind, _hold: &'a str) -> BoxFuture<'a, Answer<()>> {
        Box::pin(async move {
            self.wait().await;
            let released = sqlx::query(
                "UPDATE simulator_card_operations SET released_at = COALESCE(released_at, clock_timestamp()) \
                 WHERE provider = $1 AND kind = 'hold' AND key = $2",
            )
            .bind(&self.name)
            .bind(card.binding_id)
            .execute(&self.pool)
            .await;
            match released {
                Ok(_) => Answer::Done(()),
                Err(e) => Answer::Unavailable(e.to_string()),
            }
        })
    }

    fn payout<'a>(&'a self, order: &'a PayoutOrder) -> BoxFuture<'a, Answer<String>> {
        Box::pin(async move {
            self.wait().await;
            if order.card_token.contains("payout-timeout") {
                std::future::pending::<()>().await;
            }
            if order.card_token.contains("payout-fail") {
                return Answer::Refused("the provider refused the payout".into());
            }
            let (attempt, paid) = match self
                .book("payout", order.payout_id, Some(order.amount))
                .await
            {
                Ok(booked) => booked,
                Err(e) => return Answer::Unavailable(e),
            };
            if let Some(reference) = paid {
                return Answer::Done(reference);
            }
            if attempt <= flaky_attempts(&order.card_token) {
                return Answer::Unavailable(format!(
                    "{} is unavailable (attempt {attempt})",
                    self.name
                ));
            }
            let reference = format!("{}-payout-{}", self.name, order.payout_id.simple());
            match self.settle("payout", order.payout_id, &reference).await {
                Ok(()) => Answer::Done(reference),
                Err(e) => Answer::Unavailable(e),
            }
        })
    }
}

/// SMS gateway simulator that keeps what it sent in `simulator_sms` (the platform's
/// database, written only here), so a test reads the code a running platform sent; refuses
/// numbers ending in `0000`.
#[derive(Debug, Clone)]
pub struct RecordingSmsGateway {
    pool: PgPool,
}

impl RecordingSmsGateway {
    pub fn new(pool: PgPool) -> Self {
        RecordingSmsGateway { pool }
    }
}

impl etr_domain::ports::SmsGateway for RecordingSmsGateway {
    fn send<'a>(
        &'a self,
        message: &'a etr_domain::ports::SmsMessage,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if message.phone.as_str().ends_with("0000") {
                return Err("the gateway refused the number".to_owned());
            }
            sqlx::query("INSERT INTO simulator_sms (phone, text) VALUES ($1, $2)")
                .bind(message.phone.as_str())
                .bind(&message.text)
                .execute(&self.pool)
                .await
                .map_err(|e| e.to_string())?;
            Ok(())
        })
    }
}

/// Notification service simulator: records what it was asked to send, once per key.
#[derive(Debug, Default)]
pub struct NotifierSimulator {
    sent: Mutex<Vec<(ClientId, String, String)>>,
}

impl NotifierSimulator {
    /// Texts sent to `client`, oldest first.
    pub fn sent_to(&self, client: ClientId) -> Vec<String> {
        self.sent.lock().map_or_else(
            |_| Vec::new(),
            |s| {
                s.iter()
                    .filter(|(c, _, _)| *c == client)
                    .map(|(_, _, t)| t.clone())
                    .collect()
            },
        )
    }
}

impl Notifier for NotifierSimulator {
    fn notify<'a>(
        &'a self,
        client: ClientId,
        key: &'a str,
        text: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if let Ok(mut sent) = self.sent.lock() {
                if !sent.iter().any(|(_, k, _)| k == key) {
                    sent.push((client, key.to_owned(), text.to_owned()));
                }
            }
            Ok(())
        })
    }
}

/// A credit bureau's upload service: opens the file with the bureau's secret key, checks the
/// platform's detached signature, and answers by the content: a record whose subject has no
/// last name or no passport is rejected (`subject_incomplete`), the others accepted; a file
/// with none rejected gets a receipt (`rcpt-` and the first 16 hex digits of the file's
/// SHA-256). A file that does not open or whose signature fails gets no answer (the platform
/// sends it again and an operator sees the warnings).
pub struct BureauSimulator {
    pub keys: std::collections::BTreeMap<String, etr_infra::crypto::BureauKeys>,
    /// The platform's public signing key.
    pub platform_key: Vec<u8>,
}

impl etr_domain::ports::CreditBureau for BureauSimulator {
    fn upload<'a>(
        &'a self,
        bureau: &'a str,
        file: &'a etr_domain::ports::ReportFile,
    ) -> BoxFuture<'a, Result<etr_domain::bki_upload::Answer, String>> {
        Box::pin(async move {
            use etr_domain::bki_upload::{Answer, RecordError};
            let keys = self
                .keys
                .get(bureau)
                .ok_or_else(|| format!("no bureau `{bureau}`"))?;
            let plain = keys
                .open(&file.encrypted)
                .ok_or_else(|| format!("{} does not open with {bureau}'s key", file.name))?;
            if !etr_infra::crypto::verify(&self.platform_key, &plain, &file.signature) {
                return Err(format!("{}: the signature does not verify", file.name));
            }
            let text = String::from_utf8(plain.clone()).map_err(|e| e.to_string())?;
            let mut errors = Vec::new();
            for line in text.lines().filter(|l| l.starts_with("R;")) {
                let fields = etr_domain::credit_history::split_line(line);
                let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or_default();
                let Ok(event_id) = Uuid::parse_str(field(2)) else {
                    continue;
                };
                if field(6).is_empty() || field(10).is_empty() {
                    errors.push(RecordError {
                        event_id,
                        code: "subject_incomplete".into(),
                        message: "the subject's last name and passport are required".into(),
                    });
                }
            }
            if errors.is_empty() {
                use sha2::Digest as _;
                let digest = hex::encode(sha2::Sha256::digest(&plain));
                Ok(Answer::Receipt {
                    receipt_id: format!("rcpt-{}", &digest[..16]),
                })
            } else {
                Ok(Answer::Rejected { errors })
            }
        })
    }
}
