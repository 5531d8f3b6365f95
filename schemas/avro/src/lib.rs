//! Avro schemas of every ETR event (`schemas/avro/<aggregate>/<Event>.avsc`) and the mapping
//! between domain events and Avro values.
//!
//! Each event is one Avro record named `etr.<aggregate>.<Event>` whose first field is the
//! `etr.Envelope` record and whose remaining fields are the event's own fields. Amounts are
//! decimal strings (exact), ids are UUID strings, `occurred_at` is `timestamp-micros`.
//!
//! The mapping is driven by the schemas themselves: a domain event is serialised with serde
//! to JSON and that JSON is converted to an Avro value field by field following the schema
//! (and back), so a field the schema and the Rust type disagree on is an error here, not a
//! silent loss. The round-trip test covers every event type.
//!
//! Upcasting: the envelope's `schema_version` tells which shape the payload has; [`upcast`]
//! turns older payloads into the current shape before they reach the domain (all events are
//! at version 1 today).

mod catalog;
pub mod samples;

use apache_avro::types::Value;
use apache_avro::Schema;
use etr_domain::{Actor, AggregateKind, ClientId, Envelope, Event};
use serde_json::{Map, Value as Json};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;
use uuid::Uuid;

pub use catalog::SCHEMAS;

/// The current schema version of every event.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("schema {name}: {message}")]
    Schema { name: String, message: String },
    #[error("unknown event type `{0}`")]
    UnknownEvent(String),
    #[error("event does not match its schema at `{path}`: {message}")]
    Mismatch { path: String, message: String },
}

fn mismatch(path: &str, message: impl Into<String>) -> Error {
    Error::Mismatch {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// One parsed event schema.
#[derive(Debug, Clone)]
pub struct EventSchema {
    pub aggregate: &'static str,
    pub event_type: &'static str,
    /// Full record name, e.g. `etr.wallet.WalletOpened` (the TopicRecordName subject suffix).
    pub full_name: String,
    pub text: &'static str,
    pub schema: Schema,
    named: HashMap<String, Schema>,
}

/// All event schemas, parsed once.
#[derive(Debug, Clone)]
pub struct Catalog {
    by_type: HashMap<&'static str, EventSchema>,
}

impl Catalog {
    pub fn load() -> Result<Catalog, Error> {
        let mut by_type = HashMap::new();
        for (aggregate, event_type, text) in SCHEMAS {
            let schema = Schema::parse_str(text).map_err(|e| Error::Schema {
                name: (*event_type).to_owned(),
                message: e.to_string(),
            })?;
            let mut named = HashMap::new();
            collect_named(&schema, None, &mut named);
            let full_name = match &schema {
                Schema::Record(r) => r.name.fullname(None),
                _ => {
                    return Err(Error::Schema {
                        name: (*event_type).to_owned(),
                        message: "top level is not a record".into(),
                    })
                }
            };
            by_type.insert(
                *event_type,
                EventSchema {
                    aggregate,
                    event_type,
                    full_name,
                    text,
                    schema,
                    named,
                },
            );
        }
        Ok(Catalog { by_type })
    }

    pub fn get(&self, event_type: &str) -> Result<&EventSchema, Error> {
        self.by_type
            .get(event_type)
            .ok_or_else(|| Error::UnknownEvent(event_type.to_owned()))
    }

    pub fn all(&self) -> impl Iterator<Item = &EventSchema> {
        self.by_type.values()
    }

    /// Maps an enveloped event to its schema and Avro record value.
    pub fn to_avro(
        &self,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(&EventSchema, Value), Error> {
        let schema = self.get(event.name())?;
        let fields = payload_json(event)?;
        let Schema::Record(record) = &schema.schema else {
            return Err(mismatch(event.name(), "schema is not a record"));
        };
        let mut values = Vec::with_capacity(record.fields.len());
        for field in &record.fields {
            let value = if field.name == "envelope" {
                envelope_value(envelope)
            } else {
                let json = fields.get(&field.name).unwrap_or(&Json::Null);
                json_to_avro(json, &field.schema, &schema.named, &field.name)?
            };
            values.push((field.name.clone(), value));
        }
        if let Some(extra) = fields
            .keys()
            .find(|k| !record.fields.iter().any(|f| &f.name == *k))
        {
            return Err(mismatch(
                extra,
                "field of the event missing from the schema",
            ));
        }
        Ok((schema, Value::Record(values)))
    }

    /// Maps a decoded Avro record back to the envelope and the domain event.
    pub fn from_avro(&self, value: &Value) -> Result<(Envelope, Event), Error> {
        let Value::Record(fields) = value else {
            return Err(mismatch("", "not a record"));
        };
        let mut envelope = None;
        let mut payload = Map::new();
        for (name, v) in fields {
            if name == "envelope" {
                envelope = Some(envelope_from(v)?);
            } else {
                payload.insert(name.clone(), avro_to_json(v));
            }
        }
        let envelope = envelope.ok_or_else(|| mismatch("envelope", "missing"))?;
        let payload = upcast(&envelope.event_type, envelope.schema_version, payload);
        let schema = self.get(&envelope.event_type)?;
        let event = event_from_json(schema.aggregate, schema.event_type, payload)?;
        Ok((envelope, event))
    }
}

/// Brings a payload written with an older schema version to the current shape.
pub fn upcast(_event_type: &str, _version: u32, payload: Map<String, Json>) -> Map<String, Json> {
    payload
}

fn collect_named(schema: &Schema, ns: Option<&str>, out: &mut HashMap<String, Schema>) {
    match schema {
        Schema::Record(r) => {
            let full = r.name.fullname(ns);
            let inner_ns = r.name.namespace().or(ns);
            out.insert(full, schema.clone());
            for f in &r.fields {
                collect_named(&f.schema, inner_ns, out);
            }
        }
        Schema::Array(a) => collect_named(&a.items, ns, out),
        Schema::Map(m) => collect_named(&m.types, ns, out),
        Schema::Union(u) => u.variants().iter().for_each(|s| collect_named(s, ns, out)),
        _ => {}
    }
}

/// The event's own fields as a JSON object (unit variants have none).
fn payload_json(event: &Event) -> Result<Map<String, Json>, Error> {
    let json = serde_json::to_value(event).map_err(|e| mismatch(event.name(), e.to_string()))?;
    // Externally tagged twice: {"Wallet": {"WalletOpened": {...}}} or {"Payment": "PaymentLocked"}.
    let inner = match json {
        Json::Object(mut outer) if outer.len() == 1 => outer
            .values_mut()
            .next()
            .map(Json::take)
            .unwrap_or(Json::Null),
        _ => return Err(mismatch(event.name(), "unexpected serde shape")),
    };
    match inner {
        Json::String(_) => Ok(Map::new()),
        Json::Object(mut m) if m.len() == 1 => match m.values_mut().next().map(Json::take) {
            Some(Json::Object(fields)) => Ok(fields),
            _ => Err(mismatch(event.name(), "unexpected serde shape")),
        },
        _ => Err(mismatch(event.name(), "unexpected serde shape")),
    }
}

fn event_from_json(
    aggregate: &str,
    event_type: &str,
    fields: Map<String, Json>,
) -> Result<Event, Error> {
    let outer = match aggregate {
        "client" => "Client",
        "wallet" => "Wallet",
        "payment" => "Payment",
        "application" => "Application",
        "loan" => "Loan",
        "merchant_order" => "MerchantOrder",
        other => return Err(Error::UnknownEvent(other.to_owned())),
    };
    let inner = if fields.is_empty() {
        // Unit variant, or a variant whose fields are all absent: try the unit form first.
        Json::String(event_type.to_owned())
    } else {
        Json::Object(Map::from_iter([(
            event_type.to_owned(),
            Json::Object(fields.clone()),
        )]))
    };
    let json = Json::Object(Map::from_iter([(outer.to_owned(), inner)]));
    serde_json::from_value(json).map_err(|e| mismatch(event_type, e.to_string()))
}

fn json_to_avro(
    json: &Json,
    schema: &Schema,
    named: &HashMap<String, Schema>,
    path: &str,
) -> Result<Value, Error> {
    Ok(match (schema, json) {
        (Schema::Ref { name }, _) => {
            let full = name.fullname(None);
            let target = named
                .get(&full)
                .ok_or_else(|| mismatch(path, format!("unknown named type {full}")))?;
            return json_to_avro(json, target, named, path);
        }
        (Schema::Null, Json::Null) => Value::Null,
        (Schema::Boolean, Json::Bool(b)) => Value::Boolean(*b),
        (Schema::String, Json::String(s)) => Value::String(s.clone()),
        (Schema::Long, Json::Number(n)) => Value::Long(
            n.as_i64()
                .ok_or_else(|| mismatch(path, "not a 64-bit integer"))?,
        ),
        (Schema::Int, Json::Number(n)) => Value::Int(
            n.as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(|| mismatch(path, "not a 32-bit integer"))?,
        ),
        (Schema::Array(a), Json::Array(items)) => Value::Array(
            items
                .iter()
                .map(|i| json_to_avro(i, &a.items, named, path))
                .collect::<Result<_, _>>()?,
        ),
        (Schema::Map(m), Json::Object(entries)) => Value::Map(
            entries
                .iter()
                .map(|(k, v)| Ok((k.clone(), json_to_avro(v, &m.types, named, path)?)))
                .collect::<Result<_, Error>>()?,
        ),
        (Schema::Record(r), Json::Object(entries)) => {
            let mut fields = Vec::with_capacity(r.fields.len());
            for f in &r.fields {
                let v = entries.get(&f.name).unwrap_or(&Json::Null);
                fields.push((
                    f.name.clone(),
                    json_to_avro(v, &f.schema, named, &format!("{path}.{}", f.name))?,
                ));
            }
            Value::Record(fields)
        }
        (Schema::Union(u), _) => {
            for (i, variant) in u.variants().iter().enumerate() {
                if let Ok(v) = json_to_avro(json, variant, named, path) {
                    let index = u32::try_from(i).map_err(|_| mismatch(path, "union too large"))?;
                    return Ok(Value::Union(index, Box::new(v)));
                }
            }
            return Err(mismatch(path, format!("{json} matches no union branch")));
        }
        (s, j) => return Err(mismatch(path, format!("{j} does not fit {s:?}"))),
    })
}

fn avro_to_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Long(l) | Value::TimestampMicros(l) => Json::from(*l),
        Value::String(s) => Json::String(s.clone()),
        Value::Union(_, inner) => avro_to_json(inner),
        Value::Array(items) => Json::Array(items.iter().map(avro_to_json).collect()),
        Value::Map(m) => {
            // Sorted, so the JSON is canonical.
            let sorted: BTreeMap<_, _> = m
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect();
            Json::Object(sorted.into_iter().collect())
        }
        Value::Record(fields) => Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), avro_to_json(v)))
                .collect(),
        ),
        other => Json::String(format!("{other:?}")),
    }
}

fn envelope_value(e: &Envelope) -> Value {
    let micros = i64::try_from(e.occurred_at.unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX);
    Value::Record(vec![
        ("event_id".into(), Value::String(e.event_id.to_string())),
        ("event_type".into(), Value::String(e.event_type.clone())),
        (
            "schema_version".into(),
            Value::Int(i32::try_from(e.schema_version).unwrap_or(i32::MAX)),
        ),
        ("client_id".into(), Value::String(e.client_id.to_string())),
        (
            "aggregate_type".into(),
            Value::String(e.aggregate_type.as_str().into()),
        ),
        (
            "aggregate_id".into(),
            Value::String(e.aggregate_id.to_string()),
        ),
        (
            "aggregate_version".into(),
            Value::Long(i64::try_from(e.aggregate_version).unwrap_or(i64::MAX)),
        ),
        (
            "partition".into(),
            Value::Int(i32::try_from(e.partition).unwrap_or(i32::MAX)),
        ),
        (
            "sequence".into(),
            Value::Long(i64::try_from(e.sequence).unwrap_or(i64::MAX)),
        ),
        ("command_id".into(), Value::String(e.command_id.clone())),
        (
            "correlation_id".into(),
            Value::String(e.correlation_id.clone()),
        ),
        ("actor_kind".into(), Value::String(e.actor.kind.clone())),
        ("actor_id".into(), Value::String(e.actor.id.clone())),
        ("occurred_at".into(), Value::TimestampMicros(micros)),
        ("prev_hash".into(), Value::String(e.prev_hash.clone())),
        ("hash".into(), Value::String(e.hash.clone())),
    ])
}

fn envelope_from(value: &Value) -> Result<Envelope, Error> {
    let Value::Record(fields) = value else {
        return Err(mismatch("envelope", "not a record"));
    };
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
            .ok_or_else(|| mismatch(&format!("envelope.{name}"), "missing"))
    };
    let string = |name: &str| match get(name)? {
        Value::String(s) => Ok(s.clone()),
        _ => Err(mismatch(&format!("envelope.{name}"), "not a string")),
    };
    let long = |name: &str| match get(name)? {
        Value::Long(l) | Value::TimestampMicros(l) => Ok(*l),
        Value::Int(i) => Ok(i64::from(*i)),
        _ => Err(mismatch(&format!("envelope.{name}"), "not a number")),
    };
    let uuid = |name: &str| {
        Uuid::parse_str(&string(name)?)
            .map_err(|e| mismatch(&format!("envelope.{name}"), e.to_string()))
    };
    let unsigned = |name: &str| {
        long(name).and_then(|v| {
            u64::try_from(v).map_err(|_| mismatch(&format!("envelope.{name}"), "negative"))
        })
    };
    let occurred_at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(long("occurred_at")?) * 1_000)
            .map_err(|e| mismatch("envelope.occurred_at", e.to_string()))?;
    let aggregate_type = AggregateKind::parse(&string("aggregate_type")?)
        .ok_or_else(|| mismatch("envelope.aggregate_type", "unknown aggregate type"))?;
    Ok(Envelope {
        event_id: uuid("event_id")?,
        event_type: string("event_type")?,
        schema_version: u32::try_from(long("schema_version")?)
            .map_err(|_| mismatch("envelope.schema_version", "out of range"))?,
        client_id: ClientId(uuid("client_id")?),
        aggregate_type,
        aggregate_id: uuid("aggregate_id")?,
        aggregate_version: unsigned("aggregate_version")?,
        partition: u32::try_from(long("partition")?)
            .map_err(|_| mismatch("envelope.partition", "out of range"))?,
        sequence: unsigned("sequence")?,
        command_id: string("command_id")?,
        correlation_id: string("correlation_id")?,
        actor: Actor {
            kind: string("actor_kind")?,
            id: string("actor_id")?,
        },
        occurred_at,
        prev_hash: string("prev_hash")?,
        hash: string("hash")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    #[allow(deprecated)] // the plain datum functions are the simplest binary round trip
    fn every_event_round_trips_through_avro_binary() {
        let catalog = Catalog::load().unwrap();
        let events = samples::every_event();
        let covered: BTreeSet<_> = events.iter().map(Event::name).collect();
        let declared: BTreeSet<_> = SCHEMAS.iter().map(|(_, name, _)| *name).collect();
        assert_eq!(
            covered, declared,
            "every declared schema has a sample and vice versa"
        );
        for (i, event) in events.iter().enumerate() {
            let envelope = samples::envelope_for(event, i as u64);
            let (schema, value) = catalog.to_avro(&envelope, event).unwrap();
            assert!(
                value.validate(&schema.schema),
                "{} does not validate",
                event.name()
            );
            let bytes = apache_avro::to_avro_datum(&schema.schema, value).unwrap();
            let decoded =
                apache_avro::from_avro_datum(&schema.schema, &mut bytes.as_slice(), None).unwrap();
            let (env2, event2) = catalog.from_avro(&decoded).unwrap();
            assert_eq!(env2, envelope);
            assert_eq!(&event2, event);
        }
    }

    #[test]
    fn record_names_follow_the_aggregate_folders() {
        let catalog = Catalog::load().unwrap();
        assert_eq!(
            catalog.get("WalletOpened").unwrap().full_name,
            "etr.wallet.WalletOpened"
        );
        assert_eq!(
            catalog.get("LoanIssued").unwrap().full_name,
            "etr.loan.LoanIssued"
        );
        assert!(matches!(catalog.get("Nope"), Err(Error::UnknownEvent(_))));
    }
}
