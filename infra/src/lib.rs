//! Everything that talks to the outside world: Postgres (pool, migrations), the Kafka log
//! (producer, consumer, topic admin), the Avro codec through a Confluent-compatible schema
//! registry, the platform's own registry endpoint, configuration and the broker launcher.
//!
//! Invariant: nothing here decides business outcomes; it moves bytes that `etr-domain`
//! produced, and it never interprets money other than through `etr-domain` types.

pub mod advertising;
pub mod alerts;
pub mod auth;
pub mod avro;
pub mod client_groups;
pub mod config;
pub mod crypto;
pub mod dictionaries;
pub mod error;
pub mod fraud;
pub mod invalid_passports;
pub mod kafka;
pub mod merchants;
pub mod pg;
pub mod registry;
pub mod settings;
pub mod vault;
pub mod watchlists;
pub mod web;

pub use error::Error;
