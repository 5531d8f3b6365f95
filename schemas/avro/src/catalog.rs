//! Every event schema of the platform, one `.avsc` file per event type under
//! `schemas/avro/<aggregate>/`, collected by the build script.

/// (aggregate folder, event name, schema text).
pub const SCHEMAS: &[(&str, &str, &str)] = include!(concat!(env!("OUT_DIR"), "/catalog.rs"));
