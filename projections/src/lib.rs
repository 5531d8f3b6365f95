//! Read models built from `etr.events`.
//!
//! Each projection is its own consumer group; it applies a batch of events inside one
//! Postgres transaction together with its per-partition checkpoint (the last partition
//! sequence applied) and skips anything at or below the checkpoint, so re-delivered and
//! re-published events change nothing: effectively exactly once ([`runtime`]).
//!
//! Read models today: clients, wallet accounts (balance, holds, available) and payments with
//! their status history ([`wallets`]). Still to come with the read side: applications and
//! loans, the GraphQL API over them, blue/green rebuilds, the data platform, BKI files and
//! the auditor timeline.

pub mod data_platform;
pub mod error;
pub mod runtime;
pub mod wallets;

pub use error::Error;
