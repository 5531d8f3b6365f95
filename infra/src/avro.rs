//! Events on the wire: Confluent framing (magic byte 0, 4-byte schema id, Avro body), subject
//! strategy TopicRecordName, schemas registered on first use through the registry.

use etr_domain::{Envelope, Event};
use etr_schemas::Catalog;
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    SchemaType, SubjectNameStrategy, SuppliedSchema,
};
use std::sync::Arc;

use crate::error::{Error, Result};

/// Why a record is not an event (see [`EventCodec::decode_record`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A null payload (a tombstone): nothing to decode.
    #[error("no payload (a tombstone)")]
    NoPayload,
    /// Fewer bytes than the Confluent header (magic byte and 4-byte schema id).
    #[error("{len} bytes, shorter than the 5-byte Confluent header")]
    TooShort { len: usize },
    /// The first byte is not the Confluent magic byte 0.
    #[error("no magic byte: the record starts with 0x{first:02x}, not 0x00")]
    NoMagicByte { first: u8 },
    /// The schema id is unknown to the registry, or the body does not decode with it
    /// (truncated, written with another schema).
    #[error("schema id {id}: {message}")]
    Schema { id: u32, message: String },
    /// The registry could not be asked (unreachable, timed out, 5xx): nothing is known about
    /// the record yet. Not a dead letter: the reader waits and tries again.
    #[error("schema id {id}: the registry is unavailable: {message}")]
    RegistryUnavailable { id: u32, message: String },
    /// The body decodes, but not into an event of the catalog.
    #[error("schema id {id}: not an event of the catalog: {message}")]
    NotAnEvent { id: u32, message: String },
}

/// Encodes and decodes enveloped events through a Confluent-compatible schema registry.
#[derive(Clone)]
pub struct EventCodec {
    topic: String,
    registry_url: String,
    catalog: Arc<Catalog>,
    encoder: EasyAvroEncoder,
    decoder: EasyAvroDecoder,
}

impl EventCodec {
    pub fn new(registry_url: &str, topic: &str) -> Result<EventCodec> {
        let catalog = Catalog::load().map_err(|e| Error::Avro(e.to_string()))?;
        let registry_url = registry_url.trim_end_matches('/').to_owned();
        Ok(EventCodec {
            topic: topic.to_owned(),
            registry_url: registry_url.clone(),
            catalog: Arc::new(catalog),
            encoder: EasyAvroEncoder::new(SrSettings::new(registry_url.clone())),
            decoder: EasyAvroDecoder::new(SrSettings::new(registry_url.clone())),
        })
    }

    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The subject an event type is registered under (`<topic>-<record full name>`).
    pub fn subject(&self, event_type: &str) -> Result<String> {
        let schema = self
            .catalog
            .get(event_type)
            .map_err(|e| Error::Avro(e.to_string()))?;
        Ok(format!("{}-{}", self.topic, schema.full_name))
    }

    pub async fn encode(&self, envelope: &Envelope, event: &Event) -> Result<Vec<u8>> {
        let (schema, value) = self
            .catalog
            .to_avro(envelope, event)
            .map_err(|e| Error::Avro(e.to_string()))?;
        let supplied = SuppliedSchema::new(
            Some(schema.full_name.clone()),
            SchemaType::Avro,
            schema.text.to_owned(),
        );
        let strategy =
            SubjectNameStrategy::TopicRecordNameStrategyWithSchema(self.topic.clone(), supplied);
        self.encoder
            .encode_value(value, &strategy)
            .await
            .map_err(|e| Error::SchemaRegistry(e.to_string()))
    }

    /// The same codec with empty schema caches: the registry client caches failed lookups
    /// (an id it did not know), so a reader that must see schemas registered since (a
    /// dead-letter retry) decodes through a fresh one.
    pub fn fresh(&self) -> EventCodec {
        EventCodec {
            topic: self.topic.clone(),
            registry_url: self.registry_url.clone(),
            catalog: self.catalog.clone(),
            encoder: EasyAvroEncoder::new(SrSettings::new(self.registry_url.clone())),
            decoder: EasyAvroDecoder::new(SrSettings::new(self.registry_url.clone())),
        }
    }

    /// Decodes a record's payload (`None` for a null payload), saying what is wrong with it
    /// when it is not an event: see [`DecodeError`].
    pub async fn decode_record(
        &self,
        payload: Option<&[u8]>,
    ) -> std::result::Result<(Envelope, Event), DecodeError> {
        let bytes = payload.ok_or(DecodeError::NoPayload)?;
        let (&magic, id) = match bytes {
            [magic, a, b, c, d, ..] => (magic, u32::from_be_bytes([*a, *b, *c, *d])),
            _ => return Err(DecodeError::TooShort { len: bytes.len() }),
        };
        if magic != 0 {
            return Err(DecodeError::NoMagicByte { first: magic });
        }
        let decoded = self.decoder.decode(Some(bytes)).await.map_err(|e| {
            if e.retriable {
                DecodeError::RegistryUnavailable {
                    id,
                    message: e.to_string(),
                }
            } else {
                DecodeError::Schema {
                    id,
                    message: e.to_string(),
                }
            }
        })?;
        self.catalog
            .from_avro(&decoded.value)
            .map_err(|e| DecodeError::NotAnEvent {
                id,
                message: e.to_string(),
            })
    }

    pub async fn decode(&self, bytes: &[u8]) -> Result<(Envelope, Event)> {
        let decoded = self
            .decoder
            .decode(Some(bytes))
            .await
            .map_err(|e| Error::SchemaRegistry(e.to_string()))?;
        self.catalog
            .from_avro(&decoded.value)
            .map_err(|e| Error::Avro(e.to_string()))
    }

    /// Registers every event schema under its subject (so readers can resolve any id).
    pub async fn register_all(&self) -> Result<()> {
        let settings = SrSettings::new(self.registry_url.clone());
        for schema in self.catalog.all() {
            let supplied = SuppliedSchema::new(
                Some(schema.full_name.clone()),
                SchemaType::Avro,
                schema.text.to_owned(),
            );
            let subject = format!("{}-{}", self.topic, schema.full_name);
            schema_registry_converter::async_impl::schema_registry::post_schema(
                &settings, subject, supplied,
            )
            .await
            .map_err(|e| Error::SchemaRegistry(e.to_string()))?;
        }
        Ok(())
    }
}
