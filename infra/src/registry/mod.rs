//! Confluent-compatible schema registry endpoint (Postgres-backed).
