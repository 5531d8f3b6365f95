//! One-time passwords for the confirmations a client makes (signing a contract, a payment
//! above the warning threshold): the domain's rules (`etr_domain::otp`) over challenges kept
//! in Postgres (`otp_challenges`, one per client and purpose, never on the log), codes from
//! the operating system's CSPRNG, sent through the SMS-gateway port.
//!
//! A verification locks its challenge row (`FOR UPDATE`), so concurrent attempts are counted
//! one after the other and never both judged against the same count.

use etr_domain::identity::PhoneE164;
use etr_domain::otp::{self, Challenge, OtpError, Policy, Verification};
use etr_domain::ports::{SmsGateway, SmsMessage};
use etr_domain::ClientId;
use sqlx::PgPool;
use std::sync::Arc;
use time::OffsetDateTime;

/// Why a code could not be sent or checked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rule(#[from] OtpError),
    /// `otp_not_sent`: nothing to verify for this client and purpose.
    #[error("no code was sent for `{0}`")]
    NotSent(String),
    /// `sms_failed`
    #[error("the SMS gateway did not send the code: {0}")]
    Sms(String),
    #[error("random source: {0}")]
    Random(String),
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("stored challenge: {0}")]
    Json(#[from] serde_json::Error),
}

impl Error {
    /// A stable code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Rule(e) => e.code(),
            Error::NotSent(_) => "otp_not_sent",
            Error::Sms(_) => "sms_failed",
            Error::Random(_) | Error::Postgres(_) | Error::Json(_) => "internal",
        }
    }
}

/// Sends and verifies codes.
pub struct Otp {
    pool: PgPool,
    policy: Policy,
    sms: Arc<dyn SmsGateway>,
}

impl Otp {
    pub fn new(pool: PgPool, policy: Policy, sms: Arc<dyn SmsGateway>) -> Otp {
        Otp { pool, policy, sms }
    }

    /// Sends a new code for `purpose` to `phone`. The challenge is stored only once the
    /// gateway took the message.
    ///
    /// Errors: `otp_resend_too_soon`, `otp_locked_out` (the previous challenge's rules),
    /// `sms_failed`, Postgres.
    pub async fn send(
        &self,
        client: ClientId,
        purpose: &str,
        phone: &PhoneE164,
        now: OffsetDateTime,
    ) -> Result<(), Error> {
        let mut random = vec![0u8; 2 * usize::from(self.policy.length) + 16];
        getrandom::fill(&mut random).map_err(|e| Error::Random(e.to_string()))?;
        let (code_bytes, salt_bytes) = random.split_at(2 * usize::from(self.policy.length));
        let code = otp::code_from(&self.policy, code_bytes)?;
        let salt = hex::encode(salt_bytes);

        let mut tx = self.pool.begin().await?;
        let previous = load(&mut tx, client, purpose).await?;
        let challenge = otp::issue(&self.policy, previous.as_ref(), &code, &salt, now)?;
        self.sms
            .send(&SmsMessage {
                phone: phone.clone(),
                text: format!("Код подтверждения: {code}"),
            })
            .await
            .map_err(Error::Sms)?;
        save(&mut tx, client, purpose, &challenge).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks `code` for `purpose` on behalf of the command `command_id` (the code is spent
    /// by that command; its retry verifies again, see [`otp::verify`]).
    ///
    /// Errors: `otp_not_sent`, Postgres. A wrong, expired, used or locked code is not an
    /// error: it is the [`Verification`].
    pub async fn verify(
        &self,
        client: ClientId,
        purpose: &str,
        code: &str,
        command_id: &str,
        now: OffsetDateTime,
    ) -> Result<Verification, Error> {
        let mut tx = self.pool.begin().await?;
        let challenge = load(&mut tx, client, purpose)
            .await?
            .ok_or_else(|| Error::NotSent(purpose.to_owned()))?;
        let (challenge, verification) = otp::verify(&self.policy, challenge, code, command_id, now);
        save(&mut tx, client, purpose, &challenge).await?;
        tx.commit().await?;
        Ok(verification)
    }
}

/// The challenge of `client` and `purpose`, its row locked until the transaction ends.
async fn load(
    tx: &mut sqlx::PgConnection,
    client: ClientId,
    purpose: &str,
) -> Result<Option<Challenge>, Error> {
    let row: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT challenge FROM otp_challenges WHERE client_id = $1 AND purpose = $2 FOR UPDATE",
    )
    .bind(client.0)
    .bind(purpose)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(row.map(serde_json::from_value).transpose()?)
}

async fn save(
    tx: &mut sqlx::PgConnection,
    client: ClientId,
    purpose: &str,
    challenge: &Challenge,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO otp_challenges (client_id, purpose, challenge) VALUES ($1, $2, $3) \
         ON CONFLICT (client_id, purpose) DO UPDATE SET challenge = EXCLUDED.challenge, updated_at = clock_timestamp()",
    )
    .bind(client.0)
    .bind(purpose)
    .bind(serde_json::to_value(challenge)?)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
