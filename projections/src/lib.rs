//! Read models built from `etr.events` (each projection its own consumer group, applying a
//! batch and its per-partition checkpoint in one Postgres transaction), the data platform
//! replay, the BKI history builder, balance reports and the client timeline.
//!
//! Not built yet: it arrives with the read side. The log readers that exist today
//! (`etr tail`, `etr rebuild-snapshots`) live in the `etr` binary.
