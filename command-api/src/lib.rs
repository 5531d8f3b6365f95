//! The command side: the REST API for partners and clients ([`api`], the loan conveyor's
//! routes in [`lending`], its browsable reference at `/docs` in [`docs`]), the command handler
//! that commits each command in one Postgres transaction ([`handler`]), and the relay that
//! publishes the outbox to the Kafka log in order ([`relay`]).
//!
//! Invariants: a command either commits all its events (with its command record, snapshots,
//! hash-chain head and sequence numbers) or none; a refused command writes no event; the
//! relay never publishes an event of a partition before an earlier one of that partition.

pub mod advertising;
pub mod alerts;
pub mod api;
pub mod autopayments;
pub mod body;
pub mod cards;
pub mod checkout;
pub mod committer;
pub mod contract;
pub mod dictionaries;
pub mod docs;
pub mod error;
pub mod fraud_rules;
pub mod groups;
pub mod handler;
pub mod lending;
pub mod loans;
pub mod otp;
pub mod registration;
pub mod relay;
pub mod writer;

pub use error::Error;
