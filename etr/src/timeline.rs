//! `etr timeline`: a client's events across all aggregates in log order, read from the log
//! itself (not from a projection). `--verify` recomputes the client's hash chain and reports
//! the first break; `--as-of` folds the log up to a time into the aggregates' states.

use etr_command_api::handler::chain_hash;
use etr_domain::envelope::GENESIS_HASH;
use etr_domain::{evolve, AggregateRef, ClientId, Envelope, Event, State};
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use std::collections::BTreeMap;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Why a chain does not hold at an event.
fn check(prev: &str, envelope: &Envelope, event: &Event) -> Option<String> {
    if envelope.prev_hash != prev {
        return Some(format!(
            "prev_hash {} does not match the previous event's hash {}",
            envelope.prev_hash, prev
        ));
    }
    match chain_hash(envelope, event) {
        Ok(h) if h == envelope.hash => None,
        Ok(h) => Some(format!(
            "hash {} does not match the content (recomputed {h})",
            envelope.hash
        )),
        Err(e) => Some(format!("cannot hash: {e}")),
    }
}

pub async fn run(
    settings: &Settings,
    client: uuid::Uuid,
    verify: bool,
    as_of: Option<String>,
) -> anyhow::Result<()> {
    let as_of = as_of
        .map(|t| {
            OffsetDateTime::parse(&t, &Rfc3339).map_err(|e| {
                anyhow::anyhow!("--as-of must be RFC 3339 (e.g. 2026-11-24T12:00:00Z): {e}")
            })
        })
        .transpose()?;
    let registry = etr_platform::reader_registry(settings).await?;
    let codec = EventCodec::new(&registry, &settings.topic)?;
    let client = ClientId(client);
    let mut events: Vec<(Envelope, Event)> = Vec::new();
    etr_projections::log::read_log(settings, &codec, false, |_, _, envelope, event| {
        if envelope.client_id == client {
            events.push((envelope, event));
        }
        Ok(())
    })
    .await?;

    if let Some(at) = as_of {
        let mut states: BTreeMap<AggregateRef, (u64, State)> = BTreeMap::new();
        // A prefix of the log: occurred-at is not strictly ordered with the sequence (the
        // time is taken before a commit that may retry), so stop at the first later event.
        for (env, event) in events.iter().take_while(|(e, _)| e.occurred_at <= at) {
            let target = AggregateRef {
                kind: env.aggregate_type,
                id: env.aggregate_id,
            };
            let (_, state) = states
                .remove(&target)
                .unwrap_or_else(|| (0, State::initial(target)));
            states.insert(
                target,
                (env.aggregate_version, evolve(state, client, event)),
            );
        }
        for (target, (version, state)) in &states {
            println!(
                "{}",
                serde_json::json!({"aggregate_type": target.kind.as_str(), "aggregate_id": target.id, "version": version, "state": state})
            );
        }
        return Ok(());
    }

    let mut prev = GENESIS_HASH.to_owned();
    let mut broken = None;
    for (env, event) in &events {
        let line = serde_json::json!({
            "partition": env.partition, "sequence": env.sequence, "occurred_at": env.occurred_at.format(&Rfc3339)?,
            "event_type": env.event_type, "aggregate_type": env.aggregate_type.as_str(), "aggregate_id": env.aggregate_id,
            "aggregate_version": env.aggregate_version, "actor": format!("{}:{}", env.actor.kind, env.actor.id),
            "command_id": env.command_id, "correlation_id": env.correlation_id, "event": event,
        });
        if !verify {
            println!("{line}");
            continue;
        }
        if broken.is_none() {
            if let Some(why) = check(&prev, env, event) {
                broken = Some((env.sequence, env.event_id, why));
            }
        }
        prev = env.hash.clone();
    }
    if verify {
        match broken {
            None => println!(
                "{}",
                serde_json::json!({"client": client, "events": events.len(), "chain": "intact"})
            ),
            Some((sequence, event_id, why)) => {
                println!(
                    "{}",
                    serde_json::json!({"client": client, "events": events.len(), "chain": "broken", "first_break": {"sequence": sequence, "event_id": event_id, "reason": why}})
                );
                anyhow::bail!("the hash chain of client {client} breaks at sequence {sequence} (event {event_id}): {why}");
            }
        }
    }
    Ok(())
}
