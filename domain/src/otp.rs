//! One-time passwords (seed 000, 6.1.1 and 6.10: a client confirms an action — signing a
//! contract, a payment above the warning threshold — with a code sent by SMS).
//!
//! The rules live here as pure functions over a [`Challenge`]; the code's randomness, the
//! clock and the storage come from outside. A challenge keeps only a salted SHA-256 of its
//! code, never the code. Verification counts attempts: the last allowed wrong attempt locks
//! the challenge out for [`Policy::lockout`]; an expired, used or locked challenge verifies
//! nothing. A new code for the same purpose is refused until [`Policy::resend_after`] has
//! passed since the last one.
//!
//! A challenge remembers the command that spent it: the same command sent again (a retry
//! after a lost answer or a crash before its events were committed) verifies again with the
//! same code, so a confirmation is never lost between spending the code and committing the
//! command; any other command finds the code used.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// How codes are made and checked (configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Digits per code, 4 to 8.
    pub length: u8,
    /// How long a code is valid.
    pub ttl: Duration,
    /// Wrong codes allowed before the lockout.
    pub max_attempts: u32,
    /// How long a challenge stays locked after the last allowed wrong attempt.
    pub lockout: Duration,
    /// The least time between two codes sent for the same purpose.
    pub resend_after: Duration,
}

impl Default for Policy {
    /// 6 digits, valid 5 minutes, 3 attempts, 15 minutes' lockout, a new code after 60 s.
    fn default() -> Self {
        Policy {
            length: 6,
            ttl: Duration::minutes(5),
            max_attempts: 3,
            lockout: Duration::minutes(15),
            resend_after: Duration::seconds(60),
        }
    }
}

/// A code sent and waiting for the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Challenge {
    /// Hex SHA-256 of `salt ‖ code`.
    pub code_hash: String,
    pub salt: String,
    pub sent_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Wrong codes entered so far.
    pub attempts: u32,
    pub locked_until: Option<OffsetDateTime>,
    pub used: bool,
    /// The command id that spent the code (`None` while unused, and for challenges stored
    /// before commands were recorded).
    #[serde(default)]
    pub used_by: Option<String>,
}

/// What a verification found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Verification {
    Verified,
    Wrong { attempts_left: u32 },
    LockedOut { until: OffsetDateTime },
    Expired,
    AlreadyUsed,
}

/// Why a code cannot be issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    /// `otp_resend_too_soon`
    #[error("a new code can be sent at {retry_at}")]
    ResendTooSoon { retry_at: OffsetDateTime },
    /// `otp_locked_out`
    #[error("confirmation is locked until {until}")]
    LockedOut { until: OffsetDateTime },
    /// `otp_policy`
    #[error("a code must have 4 to 8 digits and enough random bytes to make them")]
    Policy,
}

impl OtpError {
    pub fn code(&self) -> &'static str {
        match self {
            OtpError::ResendTooSoon { .. } => "otp_resend_too_soon",
            OtpError::LockedOut { .. } => "otp_locked_out",
            OtpError::Policy => "otp_policy",
        }
    }
}

/// Hex SHA-256 of `salt ‖ code`.
pub fn hash(code: &str, salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(salt.as_bytes());
    h.update(code.as_bytes());
    hex::encode(h.finalize())
}

/// A code of `policy.length` digits from `random` (at least 2 bytes per digit, from a
/// CSPRNG at the edge). Each digit is a 16-bit value modulo 10 (bias below 0.01 %).
///
/// Errors: [`OtpError::Policy`].
pub fn code_from(policy: &Policy, random: &[u8]) -> Result<String, OtpError> {
    let n = usize::from(policy.length);
    if !(4..=8).contains(&n) || random.len() < 2 * n {
        return Err(OtpError::Policy);
    }
    Ok(random
        .chunks_exact(2)
        .take(n)
        .map(|b| char::from(b'0' + (u16::from_be_bytes([b[0], b[1]]) % 10) as u8))
        .collect())
}

/// A new challenge for `code`, replacing `previous` (the last challenge for the same
/// purpose, if any).
///
/// Errors: [`OtpError::LockedOut`] while the previous one is locked;
/// [`OtpError::ResendTooSoon`] before `resend_after` has passed since it was sent.
pub fn issue(
    policy: &Policy,
    previous: Option<&Challenge>,
    code: &str,
    salt: &str,
    now: OffsetDateTime,
) -> Result<Challenge, OtpError> {
    if let Some(p) = previous {
        if let Some(until) = p.locked_until.filter(|u| *u > now) {
            return Err(OtpError::LockedOut { until });
        }
        let retry_at = p.sent_at + policy.resend_after;
        if now < retry_at {
            return Err(OtpError::ResendTooSoon { retry_at });
        }
    }
    Ok(Challenge {
        code_hash: hash(code, salt),
        salt: salt.to_owned(),
        sent_at: now,
        expires_at: now + policy.ttl,
        attempts: 0,
        locked_until: None,
        used: false,
        used_by: None,
    })
}

/// Equality of two hex digests in time independent of where they differ.
fn same_digest(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Checks `entered` against `challenge` at `now` for the command `command_id`; returns the
/// challenge as it is afterwards.
///
/// A used challenge verifies again only for the command that spent it and only with the
/// right code (the retry of that command); for any other it is [`Verification::AlreadyUsed`].
pub fn verify(
    policy: &Policy,
    mut challenge: Challenge,
    entered: &str,
    command_id: &str,
    now: OffsetDateTime,
) -> (Challenge, Verification) {
    let right_code = same_digest(&hash(entered.trim(), &challenge.salt), &challenge.code_hash);
    if challenge.used {
        let retry = right_code && challenge.used_by.as_deref() == Some(command_id);
        let verification = if retry {
            Verification::Verified
        } else {
            Verification::AlreadyUsed
        };
        return (challenge, verification);
    }
    if let Some(until) = challenge.locked_until.filter(|u| *u > now) {
        return (challenge, Verification::LockedOut { until });
    }
    if now >= challenge.expires_at {
        return (challenge, Verification::Expired);
    }
    if right_code {
        challenge.used = true;
        challenge.used_by = Some(command_id.to_owned());
        return (challenge, Verification::Verified);
    }
    challenge.attempts += 1;
    if challenge.attempts >= policy.max_attempts {
        let until = now + policy.lockout;
        challenge.locked_until = Some(until);
        return (challenge, Verification::LockedOut { until });
    }
    let attempts_left = policy.max_attempts - challenge.attempts;
    (challenge, Verification::Wrong { attempts_left })
}
