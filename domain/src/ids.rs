//! Identifiers. The client id is the partition key of every aggregate.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

/// A client of the platform (borrower and/or wallet holder). All of one client's events are
/// ordered in one log partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClientId(pub Uuid);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ClientId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::from_str(s).map(ClientId)
    }
}

/// The log partition of a client: FNV-1a of the client id's 16 bytes, modulo the partition
/// count. The command side and the relay both use this one function.
pub fn partition_of(client: ClientId, partitions: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in client.0.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // The remainder is below `partitions`, a u32, so it fits.
    u32::try_from(hash % u64::from(partitions.max(1))).unwrap_or(0)
}

/// Derives a deterministic id from a parent id and a label (UUID v5), used for ids the
/// platform mints on behalf of a command so that a retried command mints the same ids.
pub fn derived_id(parent: Uuid, label: &str) -> Uuid {
    Uuid::new_v5(&parent, label.as_bytes())
}

/// The id of a command a client (or a partner on its behalf) sent: `<client id>/<key>`, the
/// key being the request's `Idempotency-Key`. It always starts with a 36-character UUID and a
/// `/`, so it can never equal a [`platform_command_id`].
pub fn client_command_id(client: ClientId, key: &str) -> String {
    format!("{client}/{key}")
}

/// The id of a command the platform issues itself (a process manager's step):
/// `platform:<process>/<subject id>/<step>`. Deterministic, so a repeated step is recognised;
/// it starts with `platform:`, which no client command id can (those start with a UUID).
pub fn platform_command_id(process: &str, subject: Uuid, step: &str) -> String {
    format!("platform:{process}/{subject}/{step}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_and_platform_command_ids_never_meet() {
        let client = ClientId(Uuid::from_u128(7));
        let subject = Uuid::from_u128(9);
        let platform = platform_command_id("payment-execution", subject, "execute");
        // Whatever key a client sends, its command id keeps the client prefix.
        for key in [
            platform.as_str(),
            "x/execute",
            "platform:payment-execution",
            "",
        ] {
            let id = client_command_id(client, key);
            assert!(id.starts_with(&format!("{client}/")));
            assert_ne!(id, platform);
        }
        assert!(!platform.starts_with(&client.to_string()));
        assert!(Uuid::parse_str(&platform[..36]).is_err());
    }

    #[test]
    fn partition_is_stable_and_in_range() {
        let c = ClientId(Uuid::from_u128(42));
        let p = partition_of(c, 8);
        assert!(p < 8);
        assert_eq!(p, partition_of(c, 8));
        let spread: std::collections::BTreeSet<u32> = (0..200u128)
            .map(|i| partition_of(ClientId(Uuid::from_u128(i * 7919)), 8))
            .collect();
        assert_eq!(spread.len(), 8, "200 clients should cover all 8 partitions");
    }
}
