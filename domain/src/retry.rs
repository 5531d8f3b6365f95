//! The timing of a process that calls an outside system: how long one call may take before
//! it counts as unanswered, and the exponential backoff between attempts.

use time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// How long one call may take before it counts as unanswered.
    pub attempt_timeout: Duration,
    /// The first retry's delay; each further retry doubles it, up to `max_backoff`.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            attempt_timeout: Duration::seconds(10),
            first_backoff: Duration::seconds(1),
            max_backoff: Duration::minutes(10),
        }
    }
}

impl Policy {
    /// The delay before retry number `attempts` (1-based): `first_backoff × 2^(attempts−1)`,
    /// at most `max_backoff`.
    pub fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1i32 << attempts.saturating_sub(1).min(20);
        (self.first_backoff * factor).min(self.max_backoff)
    }
}
