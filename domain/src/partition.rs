//! The partition writer's decision of one batch, as a pure function (DESIGN.md, "Write path
//! v2").
//!
//! A partition has one writer at a time. It takes the commands queued for the partition and
//! decides them **in order**, each against the state its predecessors in the batch left; the
//! whole batch — accepted and refused commands alike — is then committed at once. This module
//! is that decision without the I/O around it: `command-api`'s `PartitionWriter` runs it
//! between loading its cache and committing the rows, and the deterministic simulator
//! (`etr-simulation`) runs the very same function against its in-memory database.
//!
//! What [`decide_batch`] decides, per command of the batch:
//!
//! - a command id recorded **before** the batch ([`Reads::recorded`]) answers with its first
//!   outcome when the request fingerprint is the same ([`Decision::Replay`]) and is refused
//!   otherwise ([`Decision::KeyReused`]); nothing is written for it;
//! - a command id seen **earlier in the batch** answers the same way, with the outcome of
//!   that earlier command ([`Decision::ReplayOf`]);
//! - any other command is decided by [`crate::decide`] against the states of its targets —
//!   the batch's own changes first, then the writer's cache ([`Reads::state`]), an aggregate
//!   neither knows being one with no events — and recorded ([`Decision::Recorded`]): refused
//!   with its code and message, or accepted with its events, each in its [`Envelope`]:
//!   the next sequence number of the partition (dense), an event id that is UUID v5 of the
//!   command id (`event-<i>`), the aggregate's next version, the business time read from
//!   the clock once per decided command (truncated to microseconds, what the log and Postgres
//!   keep, so hashes recomputed from the log match) and the client's hash chain
//!   ([`crate::envelope::chain_hash`]).
//!
//! The caller commits [`Decided`] (records, events, the states and chain heads the batch
//! changed, the new head) atomically, or nothing of it; only after a commit may it merge the
//! states and chain heads into its cache.

use std::collections::BTreeMap;
use std::sync::Arc;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::command::{decide, evolve, AggregateRef, Command, Context, Event, State, States};
use crate::envelope::{chain_hash, Actor, Envelope, GENESIS_HASH};
use crate::ids::{derived_id, ClientId};
use crate::limits::Catalogue;

/// The head of one client's hash chain: the hash of its last event and how many events it
/// has (a client with none chains to [`GENESIS_HASH`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// Hex SHA-256 of the client's last event.
    pub hash: String,
    /// How many events the client has.
    pub events: u64,
}

impl ChainHead {
    /// The head of a client with no events yet.
    pub fn genesis() -> ChainHead {
        ChainHead {
            hash: GENESIS_HASH.to_owned(),
            events: 0,
        }
    }
}

/// A bounded map whose least recently used half is dropped when it is full: the writer's
/// cache of aggregate states and chain heads. Ordered (no hash-map iteration anywhere), so
/// what it drops depends only on the order of uses.
#[derive(Debug, Clone)]
pub struct Lru<K, V> {
    map: BTreeMap<K, (V, u64)>,
    capacity: usize,
    tick: u64,
}

impl<K: Ord + Clone, V: Clone> Lru<K, V> {
    /// A cache of at most `capacity` entries (at least 16).
    pub fn new(capacity: usize) -> Self {
        Lru {
            map: BTreeMap::new(),
            capacity: capacity.max(16),
            tick: 0,
        }
    }

    /// The entry of `k`, marked used.
    pub fn get(&mut self, k: &K) -> Option<V> {
        self.tick += 1;
        let tick = self.tick;
        self.map.get_mut(k).map(|(v, used)| {
            *used = tick;
            v.clone()
        })
    }

    /// Whether `k` is cached (without marking it used).
    pub fn contains(&self, k: &K) -> bool {
        self.map.contains_key(k)
    }

    /// Inserts or replaces the entry of `k`; when the cache is full and `k` is new, the least
    /// recently used half is dropped first.
    pub fn insert(&mut self, k: K, v: V) {
        self.tick += 1;
        if self.map.len() >= self.capacity && !self.map.contains_key(&k) {
            let mut ticks: Vec<u64> = self.map.values().map(|(_, t)| *t).collect();
            let mid = ticks.len() / 2;
            let (_, cut, _) = ticks.select_nth_unstable(mid);
            let cut = *cut;
            self.map.retain(|_, (_, t)| *t > cut);
        }
        self.map.insert(k, (v, self.tick));
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.map.clear();
    }

    /// How many entries are cached.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every entry, in key order (without marking them used).
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.map.iter().map(|(k, (v, _))| (k, v))
    }
}

/// The partition writer's authoritative caches: aggregate states (with their versions) and
/// clients' chain heads, each an [`Lru`]. Nobody else writes the partition, so what they hold
/// is committed; a miss is loaded from storage.
#[derive(Debug, Clone)]
pub struct Cache {
    states: Lru<AggregateRef, (u64, State)>,
    chains: Lru<ClientId, ChainHead>,
}

impl Cache {
    /// Caches of at most `capacity` states and as many chain heads.
    pub fn new(capacity: usize) -> Cache {
        Cache {
            states: Lru::new(capacity),
            chains: Lru::new(capacity),
        }
    }

    /// Forgets everything (after a failed commit, or a lost lease).
    pub fn clear(&mut self) {
        self.states.clear();
        self.chains.clear();
    }

    /// Pins what a batch of commands reads: a copy of every cached target and chain head it
    /// needs. The others are listed as missing ([`Pinned::missing_states`],
    /// [`Pinned::missing_chains`]) for the caller to load before deciding. The batch is then
    /// decided against the pinned copies only, so whatever the cache drops meanwhile (it is
    /// bounded, and loading the misses inserts into it) cannot turn a committed aggregate
    /// into one with no events.
    pub fn pin<'a>(&mut self, commands: impl IntoIterator<Item = &'a Command>) -> Pinned {
        let mut pinned = Pinned::default();
        for command in commands {
            for t in command.targets() {
                if pinned.states.contains_key(&t) || pinned.missing_states.contains(&t) {
                    continue;
                }
                match self.states.get(&t) {
                    Some(s) => {
                        pinned.states.insert(t, s);
                    }
                    None => {
                        pinned.missing_states.insert(t);
                    }
                }
            }
            let client = command.client_id();
            if pinned.chains.contains_key(&client) || pinned.missing_chains.contains(&client) {
                continue;
            }
            match self.chains.get(&client) {
                Some(h) => {
                    pinned.chains.insert(client, h);
                }
                None => {
                    pinned.missing_chains.insert(client);
                }
            }
        }
        pinned
    }

    /// Caches what was loaded into `pinned` (a missing entry not found in storage as an
    /// aggregate or client with no events yet).
    pub fn keep_loaded(&mut self, pinned: &Pinned) {
        for t in &pinned.missing_states {
            let s = pinned
                .states
                .get(t)
                .cloned()
                .unwrap_or_else(|| (0, State::initial(*t)));
            self.states.insert(*t, s);
        }
        for c in &pinned.missing_chains {
            let h = pinned
                .chains
                .get(c)
                .cloned()
                .unwrap_or_else(ChainHead::genesis);
            self.chains.insert(*c, h);
        }
    }

    /// Merges a committed batch: the states and chain heads it left.
    pub fn commit(&mut self, decided: &Decided) {
        for (t, s) in &decided.states {
            self.states.insert(*t, s.clone());
        }
        for (c, h) in &decided.chains {
            self.chains.insert(*c, h.clone());
        }
    }

    /// The cached states, in key order (for checks).
    pub fn states(&self) -> impl Iterator<Item = (&AggregateRef, &(u64, State))> {
        self.states.iter()
    }
}

/// What one batch reads, pinned before it is decided: the writer's cached entries, the ones
/// loaded from storage for it, and the command records of its ids. Implements [`Reads`].
#[derive(Debug, Clone, Default)]
pub struct Pinned {
    states: BTreeMap<AggregateRef, (u64, State)>,
    chains: BTreeMap<ClientId, ChainHead>,
    missing_states: std::collections::BTreeSet<AggregateRef>,
    missing_chains: std::collections::BTreeSet<ClientId>,
    recorded: BTreeMap<String, String>,
}

impl Pinned {
    /// The targets the cache did not hold, in order.
    pub fn missing_states(&self) -> impl Iterator<Item = &AggregateRef> {
        self.missing_states.iter()
    }

    /// The clients whose chain head the cache did not hold, in order.
    pub fn missing_chains(&self) -> impl Iterator<Item = &ClientId> {
        self.missing_chains.iter()
    }

    /// A missing target's committed version and state, as loaded from storage (a target
    /// not loaded is one with no events yet).
    pub fn load_state(&mut self, target: AggregateRef, state: (u64, State)) {
        self.states.insert(target, state);
    }

    /// A missing client's committed chain head, as loaded (a client not loaded has no
    /// events yet).
    pub fn load_chain(&mut self, client: ClientId, head: ChainHead) {
        self.chains.insert(client, head);
    }

    /// The request fingerprint recorded with one of the batch's command ids.
    pub fn record(&mut self, command_id: String, fingerprint: String) {
        self.recorded.insert(command_id, fingerprint);
    }

    /// The pinned state of a target (`None`: no events yet).
    pub fn state(&self, target: &AggregateRef) -> Option<&(u64, State)> {
        self.states.get(target)
    }

    /// Every pinned state, in key order.
    pub fn states(&self) -> impl Iterator<Item = (&AggregateRef, &(u64, State))> {
        self.states.iter()
    }
}

impl Reads for Pinned {
    fn state(&mut self, target: &AggregateRef) -> Option<(u64, State)> {
        self.states.get(target).cloned()
    }
    fn chain(&mut self, client: &ClientId) -> Option<ChainHead> {
        self.chains.get(client).cloned()
    }
    fn recorded(&self, command_id: &str) -> Option<String> {
        self.recorded.get(command_id).cloned()
    }
}

/// One command of a batch with what the writer knows of its request.
#[derive(Debug, Clone, Copy)]
pub struct Submission<'a> {
    /// The command id (a client's `<client>/<key>` or a platform id).
    pub command_id: &'a str,
    /// The request's fingerprint, kept with the command record.
    pub request_hash: &'a str,
    /// Written into every envelope of the command.
    pub correlation_id: &'a str,
    /// Who sent it (the decision's context, every envelope).
    pub actor: &'a Actor,
    /// The command to decide.
    pub command: &'a Command,
}

/// What the decision reads from the writer: the committed states of the batch's targets and
/// chain heads of its clients (the writer's [`Pinned`] copy), and the command records of the
/// batch's ids.
pub trait Reads {
    /// An aggregate's version and state as committed; `None`: no events yet.
    fn state(&mut self, target: &AggregateRef) -> Option<(u64, State)>;
    /// A client's chain head as committed; `None`: no events yet.
    fn chain(&mut self, client: &ClientId) -> Option<ChainHead>;
    /// The request fingerprint recorded with a command id before this batch, if any.
    fn recorded(&self, command_id: &str) -> Option<String>;
}

/// The partition-wide inputs of one batch.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// The partition decided (written into every envelope).
    pub partition: u32,
    /// The last sequence number committed in the partition (0: none).
    pub head: u64,
    /// The schema version written into every envelope.
    pub schema_version: u32,
    /// The client group catalogue the batch is decided under.
    pub groups: &'a Arc<Catalogue>,
    /// The commands, in the order they are decided.
    pub submissions: &'a [Submission<'a>],
}

/// How one command of the batch was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Its id was recorded before the batch for the same request: the caller answers the
    /// recorded outcome, unchanged; nothing is written.
    Replay,
    /// Its id was decided earlier in this batch (at that index) for the same request: the
    /// same outcome; nothing is written.
    ReplayOf(usize),
    /// Its id was recorded (before or earlier in the batch) for another request: refused,
    /// nothing is written.
    KeyReused,
    /// Decided now and recorded with the batch.
    Recorded(Verdict),
}

/// The verdict on a command decided now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted: its events and the states it left.
    Accepted {
        /// The events in log order, each with its envelope (hash included).
        events: Vec<(Envelope, Event)>,
        /// The log position of the command's last event (the head before it when it
        /// emitted none).
        sequence: u64,
        /// The command's targets as it left them, in target order.
        states: Vec<(AggregateRef, State)>,
    },
    /// Refused by the domain: the refusal's stable code and its message.
    Rejected {
        /// The refusal's stable machine-readable code (`Error::code`).
        code: String,
        /// The refusal's message.
        message: String,
    },
}

/// A decided batch: what to commit atomically.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// One decision per submission, in order.
    pub decisions: Vec<Decision>,
    /// The partition head after the batch.
    pub head: u64,
    /// The version and state of every target of an accepted command, as the batch left it.
    pub states: BTreeMap<AggregateRef, (u64, State)>,
    /// The aggregates the batch's events changed: their client and their last event's time
    /// (their snapshot rows are written).
    pub touched: BTreeMap<AggregateRef, (ClientId, OffsetDateTime)>,
    /// The chain head of every client with new events.
    pub chains: BTreeMap<ClientId, ChainHead>,
}

impl Decided {
    /// The number of commands to record (decided now, accepted or refused).
    pub fn recorded(&self) -> usize {
        self.decisions
            .iter()
            .filter(|d| matches!(d, Decision::Recorded(_)))
            .count()
    }
}

/// A clock reading at the precision the log keeps (microseconds).
pub fn to_log_precision(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}

/// Decides a batch in order (see the module documentation). `clock` is read once for each
/// command decided now (not for replays).
///
/// Errors: an event or envelope that does not serialise for its hash (never for the
/// platform's types; the batch must then not be committed).
pub fn decide_batch(
    batch: &Batch<'_>,
    reads: &mut dyn Reads,
    clock: &mut dyn FnMut() -> OffsetDateTime,
) -> Result<Decided, serde_json::Error> {
    let mut states: BTreeMap<AggregateRef, (u64, State)> = BTreeMap::new();
    let mut chains: BTreeMap<ClientId, ChainHead> = BTreeMap::new();
    let mut touched: BTreeMap<AggregateRef, (ClientId, OffsetDateTime)> = BTreeMap::new();
    // Command id → (fingerprint, index) of the commands decided now.
    let mut decided_now: BTreeMap<&str, (&str, usize)> = BTreeMap::new();
    let mut decisions = Vec::with_capacity(batch.submissions.len());
    let mut head = batch.head;

    for (index, submission) in batch.submissions.iter().enumerate() {
        // A command id seen before (earlier batch, or earlier in this one) answers with the
        // first outcome, exactly; with another request behind it, it is refused.
        if let Some(hash) = reads.recorded(submission.command_id) {
            decisions.push(if hash == submission.request_hash {
                Decision::Replay
            } else {
                Decision::KeyReused
            });
            continue;
        }
        if let Some((hash, first)) = decided_now.get(submission.command_id) {
            decisions.push(if *hash == submission.request_hash {
                Decision::ReplayOf(*first)
            } else {
                Decision::KeyReused
            });
            continue;
        }
        let command = submission.command;
        let client = command.client_id();
        let now = to_log_precision(clock());
        let context = Context {
            now,
            actor: submission.actor.clone(),
            groups: batch.groups.clone(),
        };
        let mut current: BTreeMap<AggregateRef, (u64, State)> = BTreeMap::new();
        for t in command.targets() {
            let s = match states.get(&t) {
                Some(s) => s.clone(),
                None => reads.state(&t).unwrap_or_else(|| (0, State::initial(t))),
            };
            current.insert(t, s);
        }
        let view: States = current.iter().map(|(k, (_, s))| (*k, s.clone())).collect();
        let verdict = match decide(&view, command, &context) {
            Err(refusal) => Verdict::Rejected {
                code: refusal.code().to_owned(),
                message: refusal.to_string(),
            },
            Ok(events) => {
                let mut chain = match chains.get(&client) {
                    Some(c) => c.clone(),
                    None => reads.chain(&client).unwrap_or_else(ChainHead::genesis),
                };
                let command_uuid =
                    Uuid::new_v5(&Uuid::NAMESPACE_OID, submission.command_id.as_bytes());
                let mut written = Vec::with_capacity(events.len());
                for (i, (target, event)) in events.into_iter().enumerate() {
                    let entry = current
                        .entry(target)
                        .or_insert_with(|| (0, State::initial(target)));
                    let state = std::mem::replace(&mut entry.1, State::initial(target));
                    entry.1 = evolve(state, client, &event);
                    entry.0 += 1;
                    touched.insert(target, (client, now));
                    head += 1;
                    let mut envelope = Envelope {
                        event_id: derived_id(command_uuid, &format!("event-{i}")),
                        event_type: event.name().to_owned(),
                        schema_version: batch.schema_version,
                        client_id: client,
                        aggregate_type: target.kind,
                        aggregate_id: target.id,
                        aggregate_version: entry.0,
                        partition: batch.partition,
                        sequence: head,
                        command_id: submission.command_id.to_owned(),
                        correlation_id: submission.correlation_id.to_owned(),
                        actor: submission.actor.clone(),
                        occurred_at: now,
                        prev_hash: chain.hash.clone(),
                        hash: String::new(),
                    };
                    envelope.hash = chain_hash(&envelope, &event)?;
                    chain.hash = envelope.hash.clone();
                    chain.events += 1;
                    written.push((envelope, event));
                }
                chains.insert(client, chain);
                for (t, s) in &current {
                    states.insert(*t, s.clone());
                }
                Verdict::Accepted {
                    events: written,
                    sequence: head,
                    states: current.into_iter().map(|(t, (_, s))| (t, s)).collect(),
                }
            }
        };
        decided_now.insert(submission.command_id, (submission.request_hash, index));
        decisions.push(Decision::Recorded(verdict));
    }
    Ok(Decided {
        decisions,
        head,
        states,
        touched,
        chains,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::{Currency, Money};
    use crate::wallet;
    use rust_decimal_macros::dec;

    struct Empty {
        recorded: BTreeMap<String, String>,
    }

    impl Reads for Empty {
        fn state(&mut self, _: &AggregateRef) -> Option<(u64, State)> {
            None
        }
        fn chain(&mut self, _: &ClientId) -> Option<ChainHead> {
            None
        }
        fn recorded(&self, command_id: &str) -> Option<String> {
            self.recorded.get(command_id).cloned()
        }
    }

    fn at() -> OffsetDateTime {
        time::macros::datetime!(2027-01-04 10:00:00.123456789 UTC)
    }

    /// Guards the fault the simulator found: a batch with more targets than half the cache
    /// made the cache drop (while the misses were loaded) entries the batch needed, and the
    /// decision then read those aggregates as having no events.
    #[test]
    fn a_pinned_batch_keeps_every_target_however_small_the_cache() {
        let mut cache = Cache::new(16);
        let commands: Vec<Command> = (0..40u128)
            .map(|n| Command::Wallet {
                client_id: ClientId(Uuid::from_u128(n)),
                wallet_id: Uuid::from_u128(1_000 + n),
                command: wallet::Command::CloseWallet,
            })
            .collect();
        // Every target committed at version 3, half of them cached.
        let committed = |t: &AggregateRef| (3, State::initial(*t));
        for c in commands.iter().step_by(2) {
            for t in c.targets() {
                cache.states.insert(t, committed(&t));
            }
        }
        let mut pinned = cache.pin(&commands);
        let missing: Vec<AggregateRef> = pinned.missing_states().copied().collect();
        for t in missing {
            pinned.load_state(t, committed(&t));
        }
        cache.keep_loaded(&pinned);
        assert!(cache.states.len() <= 16);
        for c in &commands {
            for t in c.targets() {
                assert_eq!(pinned.state(&t), Some(&committed(&t)), "{t:?} pinned");
            }
        }
    }

    #[test]
    fn a_batch_decides_in_order_replays_in_batch_and_refuses_a_reused_key() {
        let client = ClientId(Uuid::from_u128(1));
        let wallet_id = Uuid::from_u128(2);
        let actor = Actor::client(client);
        let open = Command::Wallet {
            client_id: client,
            wallet_id,
            command: wallet::Command::OpenWallet {
                currency: Currency::Rub,
            },
        };
        let top_up = Command::Wallet {
            client_id: client,
            wallet_id,
            command: wallet::Command::TopUp {
                operation_id: Uuid::from_u128(3),
                amount: Money::new(dec!(10.00), Currency::Rub),
                source: "card".into(),
            },
        };
        fn sub<'a>(
            id: &'a str,
            hash: &'a str,
            actor: &'a Actor,
            command: &'a Command,
        ) -> Submission<'a> {
            Submission {
                command_id: id,
                request_hash: hash,
                correlation_id: id,
                actor,
                command,
            }
        }
        let submissions = [
            sub("c/top-up-early", "t0", &actor, &top_up),
            sub("c/open", "o", &actor, &open),
            sub("c/top-up", "t", &actor, &top_up),
            sub("c/top-up", "t", &actor, &top_up),
            sub("c/top-up", "other", &actor, &top_up),
            sub("c/old", "x", &actor, &open),
            sub("c/old", "y", &actor, &open),
        ];
        let groups = Arc::new(Catalogue::default());
        let batch = Batch {
            partition: 3,
            head: 41,
            schema_version: 1,
            groups: &groups,
            submissions: &submissions,
        };
        let mut reads = Empty {
            recorded: BTreeMap::from([("c/old".to_owned(), "x".to_owned())]),
        };
        let mut readings = 0;
        let decided = decide_batch(&batch, &mut reads, &mut || {
            readings += 1;
            at()
        })
        .expect("serialises");
        assert_eq!(readings, 3, "the clock is read for decided commands only");
        assert!(matches!(
            &decided.decisions[0],
            Decision::Recorded(Verdict::Rejected { code, .. }) if code == "wallet_not_found"
        ));
        let Decision::Recorded(Verdict::Accepted { events, .. }) = &decided.decisions[2] else {
            panic!("top-up accepted after the open: {:?}", decided.decisions[2]);
        };
        assert_eq!(events[0].0.sequence, 43);
        assert_eq!(events[0].0.occurred_at.nanosecond(), 123_456_000);
        assert_eq!(decided.decisions[3], Decision::ReplayOf(2));
        assert_eq!(decided.decisions[4], Decision::KeyReused);
        assert_eq!(decided.decisions[5], Decision::Replay);
        assert_eq!(decided.decisions[6], Decision::KeyReused);
        assert_eq!(decided.head, 43);
        assert_eq!(decided.recorded(), 3);
        let chain = &decided.chains[&client];
        assert_eq!(chain.events, 2);
        assert_eq!(chain.hash, events[0].0.hash);
    }
}
