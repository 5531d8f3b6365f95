//! Compatibility levels and the Avro schema-evolution check behind them.
//!
//! "Backward" means consumers upgraded to the new schema can still read everything written with
//! the old one (new schema = reader, old schema = writer); "forward" means consumers still on the
//! old schema can read what producers write with the new one; "full" is both. The transitive
//! levels check against every live version of the subject instead of only the latest one.

use std::fmt;
use std::str::FromStr;

use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};
use apache_avro::Schema;

use super::error::RegistryError;

/// How a new version of a subject must relate to the versions already registered.
/// The global default is [`CompatibilityLevel::Backward`], like Confluent's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompatibilityLevel {
    /// No check: any valid schema is accepted.
    None,
    /// The new schema can read data written with the latest version.
    Backward,
    /// The new schema can read data written with every live version.
    BackwardTransitive,
    /// The latest version can read data written with the new schema.
    Forward,
    /// Every live version can read data written with the new schema.
    ForwardTransitive,
    /// Backward and forward against the latest version.
    Full,
    /// Backward and forward against every live version.
    FullTransitive,
}

impl CompatibilityLevel {
    /// Every level, in Confluent's documentation order.
    pub const ALL: [CompatibilityLevel; 7] = [
        CompatibilityLevel::None,
        CompatibilityLevel::Backward,
        CompatibilityLevel::BackwardTransitive,
        CompatibilityLevel::Forward,
        CompatibilityLevel::ForwardTransitive,
        CompatibilityLevel::Full,
        CompatibilityLevel::FullTransitive,
    ];

    /// The wire name (`BACKWARD`, `FULL_TRANSITIVE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            CompatibilityLevel::None => "NONE",
            CompatibilityLevel::Backward => "BACKWARD",
            CompatibilityLevel::BackwardTransitive => "BACKWARD_TRANSITIVE",
            CompatibilityLevel::Forward => "FORWARD",
            CompatibilityLevel::ForwardTransitive => "FORWARD_TRANSITIVE",
            CompatibilityLevel::Full => "FULL",
            CompatibilityLevel::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether every live version is checked (otherwise only the latest).
    pub fn is_transitive(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::FullTransitive
        )
    }

    fn checks_backward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Backward
                | CompatibilityLevel::BackwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }

    fn checks_forward(self) -> bool {
        matches!(
            self,
            CompatibilityLevel::Forward
                | CompatibilityLevel::ForwardTransitive
                | CompatibilityLevel::Full
                | CompatibilityLevel::FullTransitive
        )
    }
}

impl fmt::Display for CompatibilityLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Case-insensitive, like Confluent (`backward` and `BACKWARD` are the same level).
impl FromStr for CompatibilityLevel {
    type Err = RegistryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        CompatibilityLevel::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| RegistryError::InvalidCompatibilityLevel(s.to_owned()))
    }
}

/// Checks `new` against `previous` (oldest first, `(version, schema)` pairs) under `level`.
/// Non-transitive levels only look at the last element. Returns one message per problem; an
/// empty list means the new schema is compatible.
///
/// A "partial" answer from the Avro checker (e.g. an enum that lost symbols, a union that no
/// longer covers every writer branch) counts as incompatible: decoding may fail at run time,
/// which is what the Java implementation behind Confluent also refuses.
pub(crate) fn check(
    level: CompatibilityLevel,
    new: &Schema,
    previous: &[(i32, Schema)],
) -> Vec<String> {
    let against: &[(i32, Schema)] = if level.is_transitive() {
        previous
    } else {
        match previous.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        }
    };
    let mut messages = Vec::new();
    for (version, old) in against {
        if level.checks_backward() {
            if let Some(why) = can_read(old, new) {
                messages.push(format!(
                    "{level}: the new schema cannot read data written with version {version}: {why}"
                ));
            }
        }
        if level.checks_forward() {
            if let Some(why) = can_read(new, old) {
                messages.push(format!(
                    "{level}: version {version} cannot read data written with the new schema: {why}"
                ));
            }
        }
    }
    messages
}

/// `None` when `reader` can always decode what `writer` wrote, else the reason.
fn can_read(writer: &Schema, reader: &Schema) -> Option<String> {
    match SchemaCompatibility::can_read(writer, reader) {
        Ok(Compatibility::Full) => None,
        Ok(Compatibility::Partial) => Some(
            "only partially compatible (some values, e.g. enum symbols or union branches, \
             cannot be resolved)"
                .to_owned(),
        ),
        Err(e) => Some(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(fields: &str) -> Schema {
        Schema::parse_str(&format!(
            r#"{{"type":"record","name":"R","namespace":"etr.t","fields":[{fields}]}}"#
        ))
        .expect("test schema")
    }

    #[test]
    fn levels_parse_case_insensitively_and_reject_unknown() {
        assert_eq!(
            "full_transitive".parse::<CompatibilityLevel>().ok(),
            Some(CompatibilityLevel::FullTransitive)
        );
        assert_eq!(
            "BACKWARD".parse::<CompatibilityLevel>().ok(),
            Some(CompatibilityLevel::Backward)
        );
        let err = "SIDEWAYS".parse::<CompatibilityLevel>().err();
        assert_eq!(err.map(|e| e.error_code()), Some(42203));
    }

    #[test]
    fn backward_needs_defaults_for_added_fields_forward_does_not() {
        let v1 = schema(r#"{"name":"a","type":"int"}"#);
        let no_default = schema(r#"{"name":"a","type":"int"},{"name":"b","type":"string"}"#);
        let with_default =
            schema(r#"{"name":"a","type":"int"},{"name":"b","type":"string","default":""}"#);
        let prev = vec![(1, v1)];
        assert_eq!(
            check(CompatibilityLevel::Backward, &no_default, &prev).len(),
            1
        );
        assert!(check(CompatibilityLevel::Backward, &with_default, &prev).is_empty());
        assert!(check(CompatibilityLevel::Forward, &no_default, &prev).is_empty());
        assert!(check(CompatibilityLevel::None, &no_default, &prev).is_empty());
    }

    #[test]
    fn transitive_checks_every_version() {
        // v1 {a}, v2 {a, b=0}: a v3 that drops the default of b reads v2 but not v1.
        let v1 = schema(r#"{"name":"a","type":"int"}"#);
        let v2 = schema(r#"{"name":"a","type":"int"},{"name":"b","type":"int","default":0}"#);
        let v3 = schema(r#"{"name":"a","type":"int"},{"name":"b","type":"int"}"#);
        let prev = vec![(1, v1), (2, v2)];
        assert!(check(CompatibilityLevel::Backward, &v3, &prev).is_empty());
        let msgs = check(CompatibilityLevel::BackwardTransitive, &v3, &prev);
        assert_eq!(msgs.len(), 1);
        assert!(msgs[0].contains("version 1"), "{msgs:?}");
    }

    #[test]
    fn removed_enum_symbol_is_incompatible_backward() {
        let e = |symbols: &str| {
            Schema::parse_str(&format!(
                r#"{{"type":"enum","name":"E","symbols":[{symbols}]}}"#
            ))
            .expect("enum")
        };
        let prev = vec![(1, e(r#""A","B""#))];
        assert_eq!(
            check(CompatibilityLevel::Backward, &e(r#""A""#), &prev).len(),
            1
        );
        assert!(check(CompatibilityLevel::Backward, &e(r#""A","B","C""#), &prev).is_empty());
    }
}
