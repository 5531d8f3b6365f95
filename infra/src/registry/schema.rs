//! Parsing a submitted schema and deciding which registered schema it is.
//!
//! Identity: two submissions are "the same schema" when their normalized JSON (whitespace and key
//! order removed, but `default`, `doc`, `aliases` and custom properties kept) and their references
//! are equal, which is what Confluent compares. The Avro Parsing Canonical Form is stored too, but
//! it is not the identity: it drops `default`, so a schema that only gains a default (a real
//! change for readers) would otherwise collapse onto the old id.

use apache_avro::Schema;
use sha2::{Digest, Sha256};

use super::error::RegistryError;
use super::store::SchemaReference;

/// The schema types this registry accepts. Only Avro: the platform's events are Avro.
pub(crate) const AVRO: &str = "AVRO";

/// A submitted schema, parsed and reduced to what the store compares and checks.
#[derive(Debug, Clone)]
pub(crate) struct ParsedSchema {
    /// Self-contained (references inlined) schema, used for compatibility checks.
    pub resolved: Schema,
    /// Avro Parsing Canonical Form of `resolved`.
    pub canonical: String,
    /// SHA-256 of the identity (normalized JSON + references).
    pub fingerprint: Vec<u8>,
}

/// Maps the optional `schemaType` of a request to the stored type; only Avro is accepted.
pub(crate) fn schema_type(requested: Option<&str>) -> Result<&'static str, RegistryError> {
    match requested.map(str::trim) {
        None | Some("") => Ok(AVRO),
        Some(t) if t.eq_ignore_ascii_case(AVRO) => Ok(AVRO),
        Some(t) if t.eq_ignore_ascii_case("JSON") || t.eq_ignore_ascii_case("PROTOBUF") => {
            Err(RegistryError::InvalidSchema(format!(
                "schema type {t} is not supported by this registry, only AVRO"
            )))
        }
        Some(t) => Err(RegistryError::InvalidSchema(format!(
            "unknown schema type {t}"
        ))),
    }
}

/// Parses Avro `text`. `referenced` holds the texts of every schema it imports (directly or
/// through other references); `references` are the declared references, part of the identity.
///
/// Any failure, including a panic inside the Avro library on hostile input, is a 42201.
pub(crate) fn parse(
    text: &str,
    referenced: &[String],
    references: &[SchemaReference],
) -> Result<ParsedSchema, RegistryError> {
    if text.trim().is_empty() {
        return Err(RegistryError::InvalidSchema("empty schema".to_owned()));
    }
    if text.contains('\0') {
        return Err(RegistryError::InvalidSchema(
            "the schema contains a NUL character".to_owned(),
        ));
    }
    match std::panic::catch_unwind(|| parse_inner(text, referenced, references)) {
        Ok(result) => result,
        Err(_) => Err(RegistryError::InvalidSchema(
            "the schema could not be parsed".to_owned(),
        )),
    }
}

fn parse_inner(
    text: &str,
    referenced: &[String],
    references: &[SchemaReference],
) -> Result<ParsedSchema, RegistryError> {
    let invalid = |e: apache_avro::Error| RegistryError::InvalidSchema(e.to_string());
    let (schema, schemata) = if referenced.is_empty() {
        (Schema::parse_str(text).map_err(invalid)?, Vec::new())
    } else {
        Schema::parse_str_with_list(text, referenced).map_err(invalid)?
    };
    let normalized = serde_json::to_value(&schema)
        .map_err(|e| RegistryError::InvalidSchema(format!("cannot normalize: {e}")))?;
    let identity = serde_json::to_vec(&(normalized, references))
        .map_err(|e| RegistryError::InvalidSchema(format!("cannot normalize: {e}")))?;
    let mut resolved = schema;
    if !schemata.is_empty() {
        resolved.denormalize(&schemata).map_err(invalid)?;
    }
    let canonical = resolved.canonical_form();
    Ok(ParsedSchema {
        resolved,
        canonical,
        fingerprint: Sha256::digest(&identity).to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_ignores_whitespace_but_not_defaults() {
        let a = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}"#,
            &[],
            &[],
        )
        .expect("a");
        let a_spaced = parse(
            "{ \"name\" : \"R\",\n \"type\": \"record\", \"fields\": [ {\"type\":\"int\",\"name\":\"a\"} ] }",
            &[],
            &[],
        )
        .expect("a spaced");
        let a_default = parse(
            r#"{"type":"record","name":"R","fields":[{"name":"a","type":"int","default":1}]}"#,
            &[],
            &[],
        )
        .expect("a default");
        assert_eq!(a.fingerprint, a_spaced.fingerprint);
        assert_ne!(a.fingerprint, a_default.fingerprint);
        assert_eq!(a.canonical, a_default.canonical);
    }

    #[test]
    fn references_are_inlined_for_checks() {
        let money = r#"{"type":"record","name":"Money","namespace":"etr","fields":[{"name":"minor","type":"long"}]}"#;
        let refs = vec![SchemaReference {
            name: "etr.Money".to_owned(),
            subject: "etr.Money".to_owned(),
            version: 1,
        }];
        let parsed = parse(
            r#"{"type":"record","name":"Paid","namespace":"etr","fields":[{"name":"amount","type":"etr.Money"}]}"#,
            &[money.to_owned()],
            &refs,
        )
        .expect("with reference");
        assert!(
            parsed.canonical.contains("\"minor\""),
            "{}",
            parsed.canonical
        );
        let without = parse(
            r#"{"type":"record","name":"Paid","namespace":"etr","fields":[{"name":"amount","type":"etr.Money"}]}"#,
            &[],
            &[],
        );
        assert_eq!(without.err().map(|e| e.error_code()), Some(42201));
    }

    #[test]
    fn garbage_is_invalid_not_a_panic() {
        for text in [
            "",
            "   ",
            "{",
            "{\"type\":\"record\"}",
            "\"nope\"",
            "{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}",
            "a\0b",
        ] {
            let got = parse(text, &[], &[]);
            assert_eq!(got.err().map(|e| e.error_code()), Some(42201), "{text:?}");
        }
        assert_eq!(
            schema_type(Some("PROTOBUF")).err().map(|e| e.error_code()),
            Some(42201)
        );
        assert_eq!(schema_type(Some("avro")).ok(), Some(AVRO));
    }
}
