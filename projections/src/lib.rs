//! Read models built from `etr.events`.
//!
//! Each projection is its own consumer group; it applies a batch of events inside one
//! Postgres transaction together with its per-partition checkpoint (the last partition
//! sequence applied) and skips anything at or below the checkpoint, so re-delivered and
//! re-published events change nothing: effectively exactly once ([`runtime`]). Events are
//! applied in sequence order per partition and never past a gap: an event beyond the
//! checkpoint + 1 is held back until the missing one is applied. A record that is not an
//! event goes to the dead-letter table, from which an operator retries it
//! ([`dead_letters`]).
//!
//! Read models: clients, wallet accounts (balance, holds, available), their balance movements
//! (the balance reports' input) and payments with their status history ([`wallets`]);
//! applications, loans and loan movements ([`lending`]); every client's events with their
//! envelopes ([`timeline`]). The data platform ([`data_platform`])
//! is the log replayed into analytics tables.
//!
//! The log read directly, outside any projection's checkpoints, is [`log`]: every event in
//! sequence order per partition, the aggregate states it folds into, and a time window of it
//! streamed into the data platform.

pub mod credit_history;
pub mod data_platform;
pub mod dead_letters;
pub mod error;
pub mod lending;
pub mod log;
pub mod rebuild;
mod registry;
pub mod runtime;
pub mod timeline;
pub mod wallets;

pub use error::Error;
