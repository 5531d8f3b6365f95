//! Request bodies: strict JSON into the API's request types.
//!
//! `serde_json::from_slice` is looser than the REST contract: of a key given twice it keeps
//! the last (`{"amount":"1.00","amount":"1000000.00"}` reads as a million), and every refusal
//! it makes is one opaque error. [`parse`] reads a body in three steps, each refusal with its
//! own stable code ([`BodyError::code`], answered with HTTP 400):
//!
//! 1. the bytes into a tree that keeps every key of every object in order, through
//!    serde_json's own parser (so its syntax rules and its nesting limit of 128 apply):
//!    `invalid_json` for anything that is not one JSON object;
//! 2. that tree checked as a whole: `duplicate_key` for a key given twice in one object, at
//!    any depth, `nul_character` for a key or string holding U+0000, and
//!    `amount_not_a_string` for a key `amount`, at any depth, whose value is neither a JSON
//!    string nor `null` (amounts are decimal strings such as `"100.50"`, never numbers, which
//!    a client's JSON library may already have rounded through binary floating point);
//! 3. the tree into the request type through a serde deserializer whose error type records
//!    which rule failed, so the code does not depend on the wording of a message:
//!    `unknown_field` (with `#[serde(deny_unknown_fields)]`), `missing_field`, and
//!    `invalid_field` for a value of the wrong type or form.
//!
//! Messages name the offending key by its path in the body (`attributes.phone`, `items[0]`).
//! The amount's text itself is checked by `etr_domain::Money::parse_positive`.

use serde::de::value::{MapAccessDeserializer, StrDeserializer, StringDeserializer};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor,
};
use std::collections::HashSet;
use std::fmt;

/// The key whose value must always be a JSON string.
const AMOUNT: &str = "amount";

/// Why a request body is refused. Every variant is answered with HTTP 400 and the code of
/// [`BodyError::code`]; `Display` gives the message for a human.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// `invalid_json`: not JSON (syntax, an empty or truncated body, characters after the
    /// value, nesting deeper than 128).
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(String),
    /// `invalid_json`: JSON, but not an object (`[]`, `"x"`, `5`, `null`).
    #[error("the body must be a JSON object, got {0}")]
    NotAnObject(&'static str),
    /// `duplicate_key`: a key given twice in one object; `path` names it in the body.
    #[error("duplicate key `{key}`{}: each key may appear only once", at_path(.key, .path))]
    DuplicateKey { key: String, path: String },
    /// `amount_not_a_string`: a key `amount` whose value is a number, a boolean, an array or
    /// an object (`null` leaves an optional amount unset; a required one is then
    /// `invalid_field`).
    #[error("`{path}` must be a JSON string such as \"100.50\", got {found}")]
    AmountNotAString { path: String, found: &'static str },
    /// `nul_character`: a key or a string holding U+0000 (`"\u0000"`), which no text of the
    /// platform may contain (Postgres text cannot store it).
    #[error("`{path}` contains the NUL character U+0000, which no text may contain")]
    NulCharacter { path: String },
    /// `unknown_field`: a field the request does not have.
    #[error("unknown field `{path}`{}", expected_fields(.expected))]
    UnknownField {
        path: String,
        expected: &'static [&'static str],
    },
    /// `missing_field`: a required field is absent.
    #[error("missing field `{path}`")]
    MissingField { path: String },
    /// `invalid_field`: a field's value has the wrong type or form.
    #[error("invalid field `{path}`: {message}")]
    InvalidField { path: String, message: String },
}

impl BodyError {
    /// Stable machine-readable code: `invalid_json`, `duplicate_key`, `amount_not_a_string`,
    /// `nul_character`, `unknown_field`, `missing_field` or `invalid_field`.
    pub fn code(&self) -> &'static str {
        match self {
            BodyError::InvalidJson(_) | BodyError::NotAnObject(_) => "invalid_json",
            BodyError::DuplicateKey { .. } => "duplicate_key",
            BodyError::AmountNotAString { .. } => "amount_not_a_string",
            BodyError::NulCharacter { .. } => "nul_character",
            BodyError::UnknownField { .. } => "unknown_field",
            BodyError::MissingField { .. } => "missing_field",
            BodyError::InvalidField { .. } => "invalid_field",
        }
    }
}

fn at_path(key: &str, path: &str) -> String {
    if key == path {
        String::new()
    } else {
        format!(" at `{path}`")
    }
}

fn expected_fields(expected: &[&str]) -> String {
    if expected.is_empty() {
        "; the body takes no fields".to_owned()
    } else {
        format!("; expected one of: {}", expected.join(", "))
    }
}

/// Parses a request body, a JSON object, into `T` (see the module documentation for the
/// steps). Refusals: `invalid_json`, `duplicate_key`, `amount_not_a_string`,
/// `unknown_field`, `missing_field`, `invalid_field`.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    let node: Node =
        serde_json::from_slice(body).map_err(|e| BodyError::InvalidJson(e.to_string()))?;
    if !matches!(node, Node::Object(_)) {
        return Err(BodyError::NotAnObject(node.kind()));
    }
    walk(&node, "", &check_tree)?;
    T::deserialize(node).map_err(|e| e.to_body_error())
}

// ---- step 1: the tree ------------------------------------------------------------------

/// A JSON value that keeps every key of an object, repeated ones included, in order.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    /// A JSON number with a fraction or an exponent. Only ever handed to a field typed as a
    /// float; an `amount` that is a number is refused before that.
    F64(f64),
    Str(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl Node {
    /// What the value is, for messages.
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::U64(_) | Node::I64(_) | Node::F64(_) => "a number",
            Node::Str(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }

    fn unexpected(&self) -> Unexpected<'_> {
        match self {
            Node::Null => Unexpected::Unit,
            Node::Bool(b) => Unexpected::Bool(*b),
            Node::U64(n) => Unexpected::Unsigned(*n),
            Node::I64(n) => Unexpected::Signed(*n),
            Node::F64(n) => Unexpected::Float(*n),
            Node::Str(s) => Unexpected::Str(s),
            Node::Array(_) => Unexpected::Seq,
            Node::Object(_) => Unexpected::Map,
        }
    }
}

/// A number written with a fraction or an exponent whose value is a whole number that fits
/// 64 bits (`1611.0`, `1.5e3`), as the integer it is: JSON Schema's `integer` is any number
/// without a fractional part, so an integer field reads it like `1611`.
fn integral(v: f64) -> Option<Node> {
    // -2^63 and 2^64: the bounds of i64 and u64, exact as f64.
    const I64_MIN: f64 = -9_223_372_036_854_775_808.0;
    const U64_BOUND: f64 = 18_446_744_073_709_551_616.0;
    if !v.is_finite() || v.fract() != 0.0 {
        return None;
    }
    if (0.0..U64_BOUND).contains(&v) {
        // Exact: a whole f64 below 2^64 converts without rounding.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        return Some(Node::U64(v as u64));
    }
    if (I64_MIN..0.0).contains(&v) {
        #[allow(clippy::cast_possible_truncation)]
        return Some(Node::I64(v as i64));
    }
    None
}

impl<'de> de::Deserialize<'de> for Node {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::U64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::I64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(integral(v).unwrap_or(Node::F64(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        // Unlike serde_json::Value's map, a repeated key is kept: step 2 refuses it.
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0).min(64));
        while let Some((key, value)) = map.next_entry::<String, Node>()? {
            entries.push((key, value));
        }
        Ok(Node::Object(entries))
    }
}

// ---- step 2: whole-body rules ----------------------------------------------------------

fn key_path(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

fn index_path(parent: &str, index: usize) -> String {
    format!("{parent}[{index}]")
}

/// Walks the tree depth-first in document order and applies `rule` to every node with its
/// path, an object before its members: the first refusal, outermost first, is the answer.
fn walk(
    node: &Node,
    path: &str,
    rule: &impl Fn(&Node, &str) -> Result<(), BodyError>,
) -> Result<(), BodyError> {
    rule(node, path)?;
    match node {
        Node::Object(entries) => entries
            .iter()
            .try_for_each(|(key, value)| walk(value, &key_path(path, key), rule)),
        Node::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| walk(item, &index_path(path, i), rule)),
        _ => Ok(()),
    }
}

/// The whole-body rules of step 2, in one walk: a key given twice in one object, a key
/// `amount` whose value is neither a string nor `null` (an optional amount left unset), a
/// key or string holding U+0000.
fn check_tree(node: &Node, path: &str) -> Result<(), BodyError> {
    match node {
        Node::Object(entries) => {
            let mut seen = HashSet::with_capacity(entries.len());
            for (key, value) in entries {
                let here = key_path(path, key);
                if !seen.insert(key.as_str()) {
                    return Err(BodyError::DuplicateKey {
                        key: key.clone(),
                        path: here,
                    });
                }
                if key.contains('\0') {
                    return Err(BodyError::NulCharacter { path: here });
                }
                if key == AMOUNT && !matches!(value, Node::Str(_) | Node::Null) {
                    return Err(BodyError::AmountNotAString {
                        path: here,
                        found: value.kind(),
                    });
                }
            }
            Ok(())
        }
        Node::Str(s) if s.contains('\0') => Err(BodyError::NulCharacter {
            path: if path.is_empty() {
                "(body)".to_owned()
            } else {
                path.to_owned()
            },
        }),
        _ => Ok(()),
    }
}

// ---- step 3: into the request type -----------------------------------------------------

/// Which rule of the request type failed, and where. The deserializer's error type, so the
/// rule is known from the call serde makes, not from a message.
#[derive(Debug, Clone)]
struct FieldError {
    /// Path segments from the failing place outwards (`phone`, `attributes`).
    within: Vec<Segment>,
    rule: Rule,
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone)]
enum Rule {
    Unknown {
        field: String,
        expected: &'static [&'static str],
    },
    Missing(&'static str),
    Duplicate(&'static str),
    Invalid(String),
}

impl FieldError {
    fn within(mut self, segment: Segment) -> Self {
        self.within.push(segment);
        self
    }

    fn path(&self, last: Option<&str>) -> String {
        let mut path = String::new();
        for segment in self.within.iter().rev() {
            match segment {
                Segment::Key(key) => path = key_path(&path, key),
                Segment::Index(i) => path = index_path(&path, *i),
            }
        }
        match last {
            Some(key) => key_path(&path, key),
            None => path,
        }
    }

    fn to_body_error(&self) -> BodyError {
        match &self.rule {
            Rule::Unknown { field, expected } => BodyError::UnknownField {
                path: self.path(Some(field)),
                expected,
            },
            Rule::Missing(field) => BodyError::MissingField {
                path: self.path(Some(field)),
            },
            // Step 2 refuses repeated keys first; kept for completeness.
            Rule::Duplicate(field) => BodyError::DuplicateKey {
                key: (*field).to_owned(),
                path: self.path(Some(field)),
            },
            Rule::Invalid(message) => BodyError::InvalidField {
                path: self.path(None),
                message: message.clone(),
            },
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_body_error().fmt(f)
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    /// Wrong types (`invalid_type`), values (`invalid_value`, e.g. a malformed UUID),
    /// lengths and variants all arrive here with serde's message.
    fn custom<T: fmt::Display>(message: T) -> Self {
        FieldError {
            within: Vec::new(),
            rule: Rule::Invalid(message.to_string()),
        }
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        FieldError {
            within: Vec::new(),
            rule: Rule::Unknown {
                field: field.to_owned(),
                expected,
            },
        }
    }
    fn missing_field(field: &'static str) -> Self {
        FieldError {
            within: Vec::new(),
            rule: Rule::Missing(field),
        }
    }
    fn duplicate_field(field: &'static str) -> Self {
        FieldError {
            within: Vec::new(),
            rule: Rule::Duplicate(field),
        }
    }
}

impl<'de> de::Deserializer<'de> for Node {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::U64(n) => visitor.visit_u64(n),
            Node::I64(n) => visitor.visit_i64(n),
            Node::F64(n) => visitor.visit_f64(n),
            Node::Str(s) => visitor.visit_string(s),
            Node::Array(items) => {
                let mut access = Items {
                    items: items.into_iter().enumerate(),
                };
                let value = visitor.visit_seq(&mut access)?;
                match access.items.len() {
                    0 => Ok(value),
                    left => Err(de::Error::custom(format!(
                        "{left} more array element(s) than expected"
                    ))),
                }
            }
            Node::Object(entries) => {
                let mut access = Entries {
                    entries: entries.into_iter(),
                    value: None,
                };
                let value = visitor.visit_map(&mut access)?;
                match access.entries.len() {
                    0 => Ok(value),
                    left => Err(de::Error::custom(format!(
                        "{left} more key(s) than expected"
                    ))),
                }
            }
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        match self {
            Node::Null => visitor.visit_none(),
            other => visitor.visit_some(other),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    /// A struct only from an object (serde would also take an array of the fields in order).
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self {
            Node::Object(_) => self.deserialize_any(visitor),
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    /// A unit variant from a string, any variant from an object with exactly one key.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        match self {
            Node::Str(s) => visitor.visit_enum(StringDeserializer::<FieldError>::new(s)),
            Node::Object(entries) if entries.len() == 1 => {
                visitor.visit_enum(MapAccessDeserializer::new(Entries {
                    entries: entries.into_iter(),
                    value: None,
                }))
            }
            other => Err(de::Error::invalid_type(
                other.unexpected(),
                &"a string or an object with one key",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map identifier ignored_any
    }
}

struct Entries {
    entries: std::vec::IntoIter<(String, Node)>,
    /// The value of the key just read.
    value: Option<(String, Node)>,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let read = seed.deserialize(StrDeserializer::<FieldError>::new(&key))?;
        self.value = Some((key, value));
        Ok(Some(read))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let Some((key, value)) = self.value.take() else {
            return Err(de::Error::custom("a value asked for before its key"));
        };
        seed.deserialize(value)
            .map_err(|e| e.within(Segment::Key(key)))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

struct Items {
    items: std::iter::Enumerate<std::vec::IntoIter<Node>>,
}

impl<'de> SeqAccess<'de> for Items {
    type Error = FieldError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, FieldError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, item)) => seed
                .deserialize(item)
                .map(Some)
                .map_err(|e| e.within(Segment::Index(i))),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::collections::BTreeMap;
    use uuid::Uuid;

    /// Shaped like the API's request bodies.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct TopUp {
        amount: String,
        currency: String,
        source: String,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Payment {
        amount: String,
        currency: String,
        service_id: String,
        #[serde(default)]
        attributes: BTreeMap<String, String>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Transfer {
        to_wallet_id: Uuid,
        amount: String,
        currency: String,
    }

    /// Exercises the rest of the deserializer: options, enums, sequences, nested structs.
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Everything {
        note: Option<String>,
        kind: Kind,
        lines: Vec<Line>,
        count: u8,
        pair: (u32, bool),
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Plain,
        Tagged { tag: String },
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Line {
        amount: String,
    }

    fn refusal<T: DeserializeOwned + fmt::Debug>(body: &str) -> BodyError {
        match parse::<T>(body.as_bytes()) {
            Err(e) => e,
            Ok(v) => panic!("{body} was accepted as {v:?}"),
        }
    }

    fn then_code<T: DeserializeOwned + fmt::Debug>(body: &str, code: &str) -> BodyError {
        let e = refusal::<T>(body);
        assert_eq!(e.code(), code, "{body}: {e}");
        assert!(!e.to_string().is_empty());
        e
    }

    #[test]
    fn a_well_formed_body_is_read() {
        let top_up: TopUp =
            parse(br#"{"amount":"100.50","currency":"RUB","source":"card"}"#).expect("top-up");
        assert_eq!(
            top_up,
            TopUp {
                amount: "100.50".into(),
                currency: "RUB".into(),
                source: "card".into()
            }
        );
        let payment: Payment = parse(
            br#" {"amount":"5","currency":"RUB","service_id":"mobile","attributes":{"phone":"+79001234567","amount":"5"}} "#,
        )
        .expect("payment");
        assert_eq!(payment.attributes.len(), 2);
        let id = Uuid::from_u128(7);
        let transfer: Transfer = parse(
            format!(r#"{{"to_wallet_id":"{id}","amount":"1.00","currency":"USD"}}"#).as_bytes(),
        )
        .expect("transfer");
        assert_eq!(transfer.to_wallet_id, id);
        let defaults: Payment =
            parse(br#"{"amount":"5","currency":"RUB","service_id":"m"}"#).expect("defaults");
        assert!(defaults.attributes.is_empty());
    }

    #[test]
    fn a_whole_number_written_with_a_fraction_or_exponent_reads_as_an_integer() {
        for (count, pair) in [("7.0", "1.0"), ("7e0", "-0.0"), ("0.7e1", "1e0")] {
            let body =
                format!(r#"{{"kind":"plain","lines":[],"count":{count},"pair":[{pair},true]}}"#);
            let read: Everything = parse(body.as_bytes()).expect("whole numbers");
            assert_eq!(read.count, 7, "{body}");
        }
        for count in ["7.5", "1e300", "256.0", "-1.0"] {
            let body = format!(r#"{{"kind":"plain","lines":[],"count":{count},"pair":[0,true]}}"#);
            then_code::<Everything>(&body, "invalid_field");
        }
    }

    #[test]
    fn the_rest_of_serde_s_data_model_reads_too() {
        let read: Everything = parse(
            br#"{"note":null,"kind":"plain","lines":[{"amount":"1"},{"amount":"2.50"}],"count":7,"pair":[1,true]}"#,
        )
        .expect("everything");
        assert_eq!(read.note, None);
        assert_eq!(read.kind, Kind::Plain);
        assert_eq!(read.lines.len(), 2);
        assert_eq!((read.count, read.pair), (7, (1, true)));
        let tagged: Everything = parse(
            br#"{"note":"n","kind":{"tagged":{"tag":"t"}},"lines":[],"count":0,"pair":[0,false]}"#,
        )
        .expect("tagged");
        assert_eq!(tagged.kind, Kind::Tagged { tag: "t".into() });
        assert_eq!(tagged.note.as_deref(), Some("n"));
    }

    #[test]
    fn the_nul_character_is_refused_in_any_string_or_key() {
        let e = then_code::<TopUp>(
            r#"{"amount":"1","currency":"RUB","source":"ca\u0000rd"}"#,
            "nul_character",
        );
        assert!(e.to_string().contains("`source`"), "{e}");
        let e = then_code::<Payment>(
            r#"{"amount":"1","currency":"RUB","service_id":"m","attributes":{"phone\u0000":"1"}}"#,
            "nul_character",
        );
        assert!(e.to_string().contains("attributes.phone"), "{e}");
        then_code::<Everything>(
            r#"{"note":null,"kind":"plain","lines":[{"amount":"\u0000"}],"count":0,"pair":[0,false]}"#,
            "nul_character",
        );
        // An escaped backslash followed by "u0000" is text, not NUL.
        let ok: TopUp = parse(br#"{"amount":"1","currency":"RUB","source":"\\u0000"}"#)
            .expect("a backslash and u0000");
        assert_eq!(ok.source, "\\u0000");
    }

    #[test]
    fn invalid_json_is_refused() {
        for body in [
            "",
            "{",
            "not json",
            r#"{"amount":"1"} {}"#,
            r#"{"amount":"1",}"#,
            r#"{'amount':'1'}"#,
            r#"{"amount":"\ud800"}"#,
            "\u{feff}{}",
        ] {
            then_code::<TopUp>(body, "invalid_json");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        then_code::<TopUp>(&format!(r#"{{"amount":"1","x":{deep}}}"#), "invalid_json");
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused() {
        for body in ["[]", r#"["1","RUB","card"]"#, r#""x""#, "5", "null", "true"] {
            let e = then_code::<TopUp>(body, "invalid_json");
            assert!(matches!(e, BodyError::NotAnObject(_)), "{body}: {e:?}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_instead_of_keeping_the_last() {
        let e = then_code::<TopUp>(
            r#"{"amount":"1.00","amount":"1000000.00","currency":"RUB","source":"card"}"#,
            "duplicate_key",
        );
        assert_eq!(
            e,
            BodyError::DuplicateKey {
                key: "amount".into(),
                path: "amount".into()
            }
        );
        assert!(e.to_string().contains("`amount`"), "{e}");
        // The same value twice is still ambiguous input.
        then_code::<TopUp>(
            r#"{"amount":"1","currency":"RUB","currency":"RUB","source":"card"}"#,
            "duplicate_key",
        );
        // Spelled differently, the same key.
        then_code::<TopUp>(
            r#"{"amount":"1","amo\u0075nt":"2","currency":"RUB","source":"card"}"#,
            "duplicate_key",
        );
    }

    #[test]
    fn a_repeated_key_at_any_depth_is_refused_and_named_by_its_path() {
        let e = then_code::<Payment>(
            r#"{"amount":"5","currency":"RUB","service_id":"m","attributes":{"phone":"1","phone":"2"}}"#,
            "duplicate_key",
        );
        assert_eq!(
            e,
            BodyError::DuplicateKey {
                key: "phone".into(),
                path: "attributes.phone".into()
            }
        );
        let e = then_code::<serde_json::Value>(
            r#"{"a":[{"b":1},{"c":{"d":1,"d":2}}]}"#,
            "duplicate_key",
        );
        assert_eq!(
            e,
            BodyError::DuplicateKey {
                key: "d".into(),
                path: "a[1].c.d".into()
            }
        );
        // Also where the request type would ignore the key.
        then_code::<serde_json::Value>(r#"{"x":{"y":0,"y":0}}"#, "duplicate_key");
    }

    #[test]
    fn an_amount_that_is_not_a_string_is_refused() {
        for (value, found) in [
            ("100", "a number"),
            ("100.5", "a number"),
            ("1e5", "a number"),
            ("-5", "a number"),
            ("true", "a boolean"),
            (r#"["100"]"#, "an array"),
            (r#"{"value":"100"}"#, "an object"),
        ] {
            let body = format!(r#"{{"amount":{value},"currency":"RUB","source":"card"}}"#);
            let e = then_code::<TopUp>(&body, "amount_not_a_string");
            assert_eq!(
                e,
                BodyError::AmountNotAString {
                    path: "amount".into(),
                    found
                },
                "{body}"
            );
        }
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Bounds {
        amount: Option<String>,
    }

    #[test]
    fn a_null_amount_leaves_an_optional_amount_unset_and_a_required_one_missing() {
        let bounds: Bounds = parse(br#"{"amount":null}"#).expect("an optional amount");
        assert_eq!(bounds, Bounds { amount: None });
        let e = then_code::<TopUp>(
            r#"{"amount":null,"currency":"RUB","source":"card"}"#,
            "invalid_field",
        );
        assert!(e.to_string().contains("amount"), "{e}");
    }

    #[test]
    fn an_amount_at_any_depth_must_be_a_string() {
        let e = then_code::<Payment>(
            r#"{"amount":"5","currency":"RUB","service_id":"m","attributes":{"amount":5}}"#,
            "amount_not_a_string",
        );
        assert_eq!(
            e,
            BodyError::AmountNotAString {
                path: "attributes.amount".into(),
                found: "a number"
            }
        );
        let e = then_code::<Everything>(
            r#"{"note":null,"kind":"plain","lines":[{"amount":"1"},{"amount":2}],"count":0,"pair":[0,true]}"#,
            "amount_not_a_string",
        );
        assert!(e.to_string().contains("lines[1].amount"), "{e}");
        // Even where the request type would not look.
        then_code::<serde_json::Value>(r#"{"x":{"amount":1}}"#, "amount_not_a_string");
    }

    #[test]
    fn an_unknown_field_is_refused_with_the_fields_expected() {
        let e = then_code::<TopUp>(
            r#"{"amount":"1","currency":"RUB","source":"card","extra":"x"}"#,
            "unknown_field",
        );
        assert_eq!(
            e,
            BodyError::UnknownField {
                path: "extra".into(),
                expected: &["amount", "currency", "source"]
            }
        );
        assert!(e.to_string().contains("amount, currency, source"), "{e}");
        let e = then_code::<Everything>(
            r#"{"note":null,"kind":"plain","lines":[{"amount":"1","memo":"m"}],"count":0,"pair":[0,true]}"#,
            "unknown_field",
        );
        assert!(
            matches!(&e, BodyError::UnknownField { path, .. } if path == "lines[0].memo"),
            "{e:?}"
        );
    }

    #[test]
    fn a_missing_field_is_refused_by_name() {
        let e = then_code::<TopUp>(r#"{"amount":"1","currency":"RUB"}"#, "missing_field");
        assert_eq!(
            e,
            BodyError::MissingField {
                path: "source".into()
            }
        );
        let e = then_code::<Everything>(
            r#"{"note":null,"kind":"plain","lines":[{}],"count":0,"pair":[0,true]}"#,
            "missing_field",
        );
        assert_eq!(
            e,
            BodyError::MissingField {
                path: "lines[0].amount".into()
            }
        );
        // An absent Option is not missing.
        let read: Result<Everything, _> =
            parse(br#"{"kind":"plain","lines":[],"count":0,"pair":[0,true]}"#);
        assert_eq!(read.map(|e| e.note), Ok(None));
    }

    #[test]
    fn a_field_of_the_wrong_type_or_form_is_refused_by_path() {
        for (body, path) in [
            (r#"{"amount":"1","currency":5,"source":"card"}"#, "currency"),
            (
                r#"{"amount":"1","currency":null,"source":"card"}"#,
                "currency",
            ),
            (
                r#"{"amount":"1","currency":"RUB","source":["card"]}"#,
                "source",
            ),
        ] {
            let e = then_code::<TopUp>(body, "invalid_field");
            assert!(
                matches!(&e, BodyError::InvalidField { path: p, .. } if p == path),
                "{e:?}"
            );
        }
        for (body, path) in [
            (
                r#"{"amount":"5","currency":"RUB","service_id":"m","attributes":{"phone":5}}"#,
                "attributes.phone",
            ),
            (
                r#"{"amount":"5","currency":"RUB","service_id":"m","attributes":["phone"]}"#,
                "attributes",
            ),
        ] {
            let e = then_code::<Payment>(body, "invalid_field");
            assert!(
                matches!(&e, BodyError::InvalidField { path: p, .. } if p == path),
                "{e:?}"
            );
        }
        let e = then_code::<Transfer>(
            r#"{"to_wallet_id":"not-a-uuid","amount":"1","currency":"RUB"}"#,
            "invalid_field",
        );
        assert!(e.to_string().contains("to_wallet_id"), "{e}");
        for (body, path) in [
            // A nested struct given as an array of its fields.
            (
                r#"{"kind":"plain","lines":[["1"]],"count":0,"pair":[0,true]}"#,
                "lines[0]",
            ),
            (
                r#"{"kind":"other","lines":[],"count":0,"pair":[0,true]}"#,
                "kind",
            ),
            (r#"{"kind":5,"lines":[],"count":0,"pair":[0,true]}"#, "kind"),
            (
                r#"{"kind":"plain","lines":[],"count":256,"pair":[0,true]}"#,
                "count",
            ),
            (
                r#"{"kind":"plain","lines":[],"count":-1,"pair":[0,true]}"#,
                "count",
            ),
            (
                r#"{"kind":"plain","lines":[],"count":1.5,"pair":[0,true]}"#,
                "count",
            ),
            (
                r#"{"kind":"plain","lines":[],"count":0,"pair":[0,true,1]}"#,
                "pair",
            ),
            (
                r#"{"kind":"plain","lines":[],"count":0,"pair":[0]}"#,
                "pair",
            ),
        ] {
            let e = then_code::<Everything>(body, "invalid_field");
            assert!(
                matches!(&e, BodyError::InvalidField { path: p, .. } if p == path),
                "{body}: {e:?}"
            );
        }
    }

    #[test]
    fn each_refusal_has_its_code() {
        let codes = [
            BodyError::InvalidJson("x".into()).code(),
            BodyError::DuplicateKey {
                key: "k".into(),
                path: "k".into(),
            }
            .code(),
            BodyError::AmountNotAString {
                path: "amount".into(),
                found: "a number",
            }
            .code(),
            BodyError::UnknownField {
                path: "x".into(),
                expected: &[],
            }
            .code(),
            BodyError::MissingField { path: "x".into() }.code(),
            BodyError::InvalidField {
                path: "x".into(),
                message: "m".into(),
            }
            .code(),
        ];
        assert_eq!(
            codes,
            [
                "invalid_json",
                "duplicate_key",
                "amount_not_a_string",
                "unknown_field",
                "missing_field",
                "invalid_field"
            ]
        );
        assert_eq!(BodyError::NotAnObject("an array").code(), "invalid_json");
    }
}
