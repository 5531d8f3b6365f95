//! The OpenAPI document as served at `/openapi.json`: the routes' own declarations
//! (`utoipa::path` on each handler, `ToSchema` on each body) completed with what holds for
//! every route alike, so that the document says exactly what the API accepts and answers:
//!
//! - **`Idempotency-Key`**: 1–200 visible ASCII characters (`^[!-~]{1,200}$`), as
//!   `api::meta` checks it (400 `invalid_idempotency_key`, 400 `missing_idempotency_key`).
//! - **Amounts**: every body property named `amount` (at any depth) is a positive decimal
//!   string with at most two digits after the point and no leading zeros, at most
//!   1,000,000,000 ([`AMOUNT_PATTERN`]; the rules of `etr_domain::Money::parse_positive`);
//!   every property named `currency` is one of the platform's ISO 4217 codes.
//! - **Exactly one of**: the properties of a request marked `x-exactly-one-of` with the same
//!   group name become a `oneOf`: one of them given (not null), the others absent or null.
//! - **Text rules**: a request string marked `x-text` gets the pattern of its rule
//!   ([`text_rule`]: not blank, phone, INN, SNILS, passport, date), each a unit test keeps
//!   equal to the parser it describes.
//! - **Query parameters**: given or absent, never `null` (a query string cannot say null).
//! - **Text**: no string may hold U+0000 (400 `nul_character`; said in the document's
//!   description, since JSON Schema has no keyword for it).
//! - **A command's 422**: its refusal, or the error body of `idempotency_key_reused`.
//! - **Responses every route can give**: 400 (a path, query or body the route cannot read:
//!   `invalid_path`, `invalid_query`, `invalid_json`, `nul_character`, …), 401 (no or a bad
//!   token), 403, 408 (a body that did not arrive in time) and 413 (a body above 256 KiB) on
//!   routes with a body, and 429 from the fraud
//!   monitor with its `Retry-After` header — each with the error body
//!   `{"error": {"code", "message"}}`.
//!
//! Adding a route touches only its handler's declaration; nothing here lists routes.

use serde_json::{json, Map, Value};
use utoipa::OpenApi as _;

/// A positive amount as the API reads it: digits without a leading zero (or a single `0`
/// before the point), at most two after the point, not zero, at most 1,000,000,000.
pub const AMOUNT_PATTERN: &str =
    r"^(?:(?:[1-9][0-9]{0,8})(?:\.[0-9]{1,2})?|0\.(?:0[1-9]|[1-9][0-9]?)|1000000000(?:\.00?)?)$";

/// The extension a request property carries to say it is one of a group of which exactly one
/// is given (`#[schema(extensions(("x-exactly-one-of" = json!("source"))))]`).
pub const EXACTLY_ONE_OF: &str = "x-exactly-one-of";

/// The extension a request string property carries to name the text rule it follows
/// (`#[schema(extensions(("x-text" = json!("phone"))))]`); [`text_rule`] gives the rule's
/// pattern, which the document states in the mark's place.
pub const TEXT: &str = "x-text";

/// The extension a request map carries when its keys are currency codes
/// (`x-keys: "currency"`): the document states `propertyNames` as [`currency_schema`].
pub const KEYS: &str = "x-keys";

/// Unicode's `White_Space` characters — what `char::is_whitespace` and `str::trim` know —
/// listed for a character class, so that every regular expression engine reads it alike.
const WHITE_SPACE: &str =
    "\t-\r \u{85}\u{a0}\u{1680}\u{2000}-\u{200a}\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}";

/// The control characters (Unicode `Cc`, what `char::is_control` knows), as escapes every
/// regular expression engine reads.
const CONTROL: &str = "\\x00-\\x1f\\x7f-\\x9f";

/// The pattern of a text rule, by name:
///
/// - `not-blank`: a character that is not `White_Space` (the text is not empty once trimmed);
/// - `phone`: `etr_domain::identity::PhoneE164::parse` — around it white space, then `+` and
///   8–15 digits the first not 0, or a Russian national `8` and 10 digits, spaces, `-`, `(`
///   and `)` anywhere between;
/// - `inn`: 10 or 12 digits (`Inn::parse`; the check digits are a 422);
/// - `snils`: 11 digits, `-` and spaces anywhere (`Snils::parse`; the check number is a 422);
/// - `passport`: 10 digits, spaces anywhere (`PassportNumber::parse`; a series or number of
///   zeros is a 422);
///
/// the identifiers with white space around them allowed, as their parsers trim it;
/// - `email`: `etr_domain::identity::Email::parse` (with `maxLength` 254) — a local part of
///   1–64 characters but `@`, white space and control characters, `@`, then two or more
///   labels of 1–63 ASCII letters, digits, inner `-` or other non-ASCII characters;
/// - `date`: `YYYY-MM-DD` (with `format: date`);
/// - `amount`: [`AMOUNT_PATTERN`], for an amount property not named `amount`;
/// - `amount-bound`: the same or zero (`0`, `0.00`);
/// - `advertising-id`: 1–40 characters of `a-z`, `0-9`, `_`, `-`;
/// - `display-name`: not blank, no control character once trimmed (with `maxLength`);
/// - `banner-text`: no control character but `\n` and `\r`;
/// - `condition`: a banner condition's value, 1–120 characters, no white space or control
///   character;
/// - `link`: an `http(s)://` URL or a path on the site (not `//…`), without white space,
///   control characters, quotes, `<`, `>` or `` ` ``;
/// - `base64`: the standard alphabet, padded, the unused bits of the last character zero,
///   white space around it allowed (trimmed before decoding).
pub fn text_rule(name: &str) -> Option<String> {
    let ws = format!("[{WHITE_SPACE}]*");
    let sep = "[ ()-]*";
    Some(match name {
        "not-blank" => format!("[^{WHITE_SPACE}]"),
        "phone" => format!(
            "^{ws}(?:\\+{ws}{sep}[1-9](?:{sep}[0-9]){{7,14}}|{sep}8(?:{sep}[0-9]){{10}}){sep}{ws}$"
        ),
        "inn" => format!("^{ws}(?:[0-9]{{10}}|[0-9]{{12}}){ws}$"),
        "snils" => format!("^{ws}[- ]*(?:[0-9][- ]*){{11}}{ws}$"),
        "passport" => format!("^{ws}(?: *[0-9]){{10}} *{ws}$"),
        "email" => {
            let letter = format!("(?:[A-Za-z0-9]|[^\\x00-\\x7f{WHITE_SPACE}{CONTROL}])");
            let label = format!("{letter}(?:(?:{letter}|-){{0,61}}{letter})?");
            format!("^{ws}[^@{WHITE_SPACE}{CONTROL}]{{1,64}}@(?:{label}\\.)+{label}{ws}$")
        }
        "date" => "^[0-9]{4}-[0-9]{2}-[0-9]{2}$".to_owned(),
        "amount" => AMOUNT_PATTERN.to_owned(),
        "advertising-id" => "^[a-z0-9_-]{1,40}$".to_owned(),
        "display-name" => format!(
            "^{ws}[^{WHITE_SPACE}{CONTROL}](?:[^{CONTROL}]*[^{WHITE_SPACE}{CONTROL}])?{ws}$"
        ),
        "banner-text" => "^[^\\x00-\\x09\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$".to_owned(),
        "condition" => format!("^[^{WHITE_SPACE}{CONTROL}]{{1,120}}$"),
        "link" => {
            let x = format!("{WHITE_SPACE}{CONTROL}\"'<>`");
            format!("^(?:[hH][tT][tT][pP][sS]?://[^{x}]+|/(?:[^{x}/\\\\][^{x}]*)?)$")
        }
        "amount-bound" => {
            let positive = AMOUNT_PATTERN.trim_start_matches('^').trim_end_matches('$');
            format!("^(?:0+(?:\\.0{{1,2}})?|{positive})$")
        }
        "base64" => {
            let b = "[A-Za-z0-9+/]";
            format!("^{ws}(?:{b}{{4}})*(?:{b}[AQgw]==|{b}{{2}}[AEIMQUYcgkosw048]=)?{ws}$")
        }
        _ => return None,
    })
}

/// What an `Idempotency-Key` may be.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]{1,200}$";

/// The document, completed.
pub fn document() -> Value {
    let mut doc = serde_json::to_value(crate::api::ApiDoc::openapi()).unwrap_or(Value::Null);
    complete(&mut doc);
    doc
}

fn complete(doc: &mut Value) {
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        let description = info
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        info.insert(
            "description".into(),
            Value::String(format!(
                "{description}\n\nNo text anywhere in a request (body, path, query) may hold the NUL character U+0000: such a request is refused with 400 `nul_character`. Amounts are decimal strings (`\"100.50\"`), never JSON numbers."
            )),
        );
    }
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        schemas.insert("Amount".into(), amount_schema());
        schemas.insert("CurrencyCode".into(), currency_schema());
        for schema in schemas.values_mut() {
            constrain_money(schema);
            exactly_one(schema);
            text_rules(schema);
        }
    }
    query_without_null(doc);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, operation) in item.iter_mut() {
            if !matches!(method.as_str(), "get" | "post" | "put" | "delete" | "patch") {
                continue;
            }
            complete_operation(operation);
        }
    }
}

fn amount_schema() -> Value {
    json!({
        "type": "string",
        "pattern": AMOUNT_PATTERN,
        "description": "A positive amount: a decimal string with at most two digits after the point, no leading zeros, at most 1000000000 (e.g. \"100.50\").",
        "example": "100.50"
    })
}

fn currency_schema() -> Value {
    let codes: Vec<&str> = etr_domain::Currency::ALL.iter().map(|c| c.code()).collect();
    json!({
        "type": "string",
        "enum": codes,
        "description": "An ISO 4217 currency code the platform keeps accounts in.",
        "example": "RUB"
    })
}

/// Points every `amount` and `currency` string property of a request schema, at any depth,
/// at the shared definitions (a nullable one stays nullable).
fn constrain_money(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(properties) = object.get_mut("properties").and_then(Value::as_object_mut) {
        for (name, property) in properties.iter_mut() {
            let target = match name.as_str() {
                "amount" => Some("Amount"),
                "currency" => Some("CurrencyCode"),
                _ => None,
            };
            match target {
                Some(target) if is_string(property) => {
                    *property = reference(target, is_nullable(property), property);
                }
                _ => constrain_money(property),
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let Some(inner) = object.get_mut(key) {
            constrain_money(inner);
        }
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(list) = object.get_mut(key).and_then(Value::as_array_mut) {
            list.iter_mut().for_each(constrain_money);
        }
    }
}

/// Turns the properties of an object schema marked `x-exactly-one-of: "<group>"` into a
/// `oneOf` with one branch per property of the group: that property given and not null,
/// every other property of the group absent or null. The mark is removed.
fn exactly_one(schema: &mut Value) {
    let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
        return;
    };
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for (name, property) in properties.iter_mut() {
        let Some(group) = property
            .as_object_mut()
            .and_then(|p| p.remove(EXACTLY_ONE_OF))
            .and_then(|g| g.as_str().map(str::to_owned))
        else {
            continue;
        };
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, members)) => members.push(name.clone()),
            None => groups.push((group, vec![name.clone()])),
        }
    }
    let mut all_of = Vec::new();
    for (_, members) in groups {
        let branches: Vec<Value> = members
            .iter()
            .map(|given| {
                let mut properties = Map::new();
                for member in &members {
                    let rule = if member == given {
                        json!({ "not": { "type": "null" } })
                    } else {
                        json!({ "type": "null" })
                    };
                    properties.insert(member.clone(), rule);
                }
                json!({ "required": [given], "properties": properties })
            })
            .collect();
        all_of.push(json!({ "oneOf": branches }));
    }
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    match all_of.len() {
        0 => {}
        1 => {
            if let Some(one_of) = all_of
                .pop()
                .and_then(|mut b| b.get_mut("oneOf").map(Value::take))
            {
                object.insert("oneOf".into(), one_of);
            }
        }
        _ => {
            object.insert("allOf".into(), Value::Array(all_of));
        }
    }
}

/// States the pattern of every schema marked `x-text` (see [`text_rule`]), at any depth;
/// beside a pattern it has already, or several rules, through `allOf`. The mark is removed.
fn text_rules(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            if object.remove(KEYS).is_some_and(|k| k == "currency") {
                let codes = json!({ "$ref": "#/components/schemas/CurrencyCode" });
                if is_string(&Value::Object(object.clone())) {
                    // The mark reached the map's `propertyNames` schema itself.
                    *schema = codes;
                    return;
                }
                object.insert("propertyNames".into(), codes);
            }
            if let Some(mark) = object.remove(TEXT) {
                let names: Vec<String> = match mark {
                    Value::String(name) => vec![name],
                    Value::Array(names) => names
                        .into_iter()
                        .filter_map(|n| n.as_str().map(str::to_owned))
                        .collect(),
                    _ => Vec::new(),
                };
                // A list's rule is its items'.
                let list = matches!(object.get("items"), Some(Value::Object(_)));
                let target = if list {
                    object.get_mut("items").and_then(Value::as_object_mut)
                } else {
                    Some(&mut *object)
                };
                let Some(target) = target else {
                    return;
                };
                for name in names {
                    let Some(pattern) = text_rule(&name) else {
                        continue;
                    };
                    if name == "date" {
                        target.insert("format".into(), Value::String("date".into()));
                    }
                    if target.contains_key("pattern") {
                        let all_of = target
                            .entry("allOf")
                            .or_insert_with(|| Value::Array(Vec::new()));
                        if let Some(list) = all_of.as_array_mut() {
                            list.push(json!({ "pattern": pattern }));
                        }
                    } else {
                        target.insert("pattern".into(), Value::String(pattern));
                    }
                }
            }
            object.values_mut().for_each(text_rules);
        }
        Value::Array(items) => items.iter_mut().for_each(text_rules),
        _ => {}
    }
}

fn types_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn is_string(schema: &Value) -> bool {
    types_of(schema).contains(&"string")
}

fn is_nullable(schema: &Value) -> bool {
    types_of(schema).contains(&"null")
}

fn reference(target: &str, nullable: bool, original: &Value) -> Value {
    let r = json!({ "$ref": format!("#/components/schemas/{target}") });
    let mut out = if nullable {
        json!({ "oneOf": [r, { "type": "null" }] })
    } else {
        r
    };
    if let (Some(d), Some(o)) = (original.get("description"), out.as_object_mut()) {
        o.insert("description".into(), d.clone());
    }
    out
}

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } }
    })
}

/// A query string has no `null`: a query parameter is given or absent. Its schema (and the
/// object schema of an exploded query object, a component) loses `null` from its types and
/// its `null` branches, so that no generator sends the text `null` for one.
fn query_without_null(doc: &mut Value) {
    let mut components = Vec::new();
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut().filter_map(Value::as_object_mut) {
            for operation in item.values_mut() {
                let Some(parameters) = operation
                    .get_mut("parameters")
                    .and_then(Value::as_array_mut)
                else {
                    continue;
                };
                for parameter in parameters.iter_mut().filter(|p| p["in"] == "query") {
                    if let Some(name) = parameter
                        .pointer("/schema/$ref")
                        .and_then(Value::as_str)
                        .and_then(|r| r.strip_prefix("#/components/schemas/"))
                    {
                        components.push(name.to_owned());
                    }
                    if let Some(schema) = parameter.get_mut("schema") {
                        drop_null(schema);
                    }
                }
            }
        }
    }
    for name in components {
        if let Some(properties) = doc
            .pointer_mut(&format!("/components/schemas/{name}/properties"))
            .and_then(Value::as_object_mut)
        {
            properties.values_mut().for_each(drop_null);
        }
    }
}

fn drop_null(schema: &mut Value) {
    let Some(object) = schema.as_object_mut() else {
        return;
    };
    if let Some(Value::Array(types)) = object.get_mut("type") {
        types.retain(|t| t != "null");
        if let [only] = types.as_slice() {
            let only = only.clone();
            object.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(branches)) = object.get_mut("oneOf") {
        branches.retain(|b| b.get("type").is_none_or(|t| t != "null"));
    }
}

fn complete_operation(operation: &mut Value) {
    let Some(op) = operation.as_object_mut() else {
        return;
    };
    if let Some(parameters) = op.get_mut("parameters").and_then(Value::as_array_mut) {
        for p in parameters.iter_mut() {
            if p["in"] == "header" && p["name"] == "Idempotency-Key" {
                p["schema"] = json!({
                    "type": "string",
                    "pattern": IDEMPOTENCY_KEY_PATTERN,
                    "minLength": 1,
                    "maxLength": 200
                });
                p["required"] = Value::Bool(true);
                p["description"] = Value::String("1–200 visible ASCII characters; the same key with the same request answers the first response again, with another request 422 `idempotency_key_reused`.".into());
            }
        }
    }
    let takes_key = op
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Idempotency-Key"));
    let has_body = op.contains_key("requestBody");
    if takes_key {
        // A command's 422 is its refusal (a command response with `code`) or, for a key
        // used with another request, the error body of `idempotency_key_reused`.
        let refusal = op
            .get_mut("responses")
            .and_then(|r| r.pointer_mut("/422/content/application~1json/schema"));
        if let Some(schema) = refusal {
            let refusal = schema.take();
            *schema = json!({ "anyOf": [refusal, { "$ref": "#/components/schemas/ErrorBody" }] });
        }
    }
    let responses = op
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    let mut add = |status: &str, response: Value| {
        responses.entry(status.to_owned()).or_insert(response);
    };
    add(
        "400",
        error_response("The path, query or body cannot be read (the code says which rule failed)."),
    );
    add(
        "401",
        error_response("No token, or a token that is not valid."),
    );
    add("403", error_response("The token's role may not do this."));
    if has_body {
        add(
            "408",
            error_response("The body did not arrive in full in time (`body_not_received`)."),
        );
        add("413", error_response("The body is larger than 256 KiB."));
    }
    let mut limited =
        error_response("The fraud monitor's rate limit: retry after `Retry-After` seconds.");
    limited["headers"] = json!({
        "Retry-After": { "description": "Seconds to wait.", "schema": { "type": "integer", "minimum": 0 } }
    });
    add("429", limited);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_amount_pattern_says_what_parse_positive_accepts() {
        let pattern = regex::Regex::new(AMOUNT_PATTERN).unwrap();
        for text in [
            "1",
            "0.01",
            "0.1",
            "0.10",
            "100.50",
            "999999999.99",
            "1000000000",
            "1000000000.0",
            "1000000000.00",
            "5",
            "12.3",
        ] {
            assert!(pattern.is_match(text), "{text}");
            assert!(
                etr_domain::Money::parse_positive(text, "RUB").is_ok(),
                "{text}"
            );
        }
        for text in [
            "",
            "0",
            "0.0",
            "0.00",
            "00.01",
            "007.10",
            "-1",
            "+1",
            "1.",
            ".5",
            "1.001",
            "1e5",
            "1000000000.01",
            "1000000001",
            "10000000000",
            " 1",
            "1,00",
            "1_000",
        ] {
            assert!(!pattern.is_match(text), "{text}");
            assert!(
                etr_domain::Money::parse_positive(text, "RUB").is_err(),
                "{text} must be refused like the pattern refuses it"
            );
        }
    }

    /// Strings over `alphabet` of up to `max` characters, deterministic and many.
    fn strings(alphabet: &[char], max: usize, count: usize) -> Vec<String> {
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        (0..count)
            .map(|_| {
                let len = usize::try_from(next() % (max as u64 + 1)).unwrap();
                (0..len)
                    .map(|_| alphabet[usize::try_from(next() % alphabet.len() as u64).unwrap()])
                    .collect()
            })
            .collect()
    }

    /// The pattern accepts exactly what `accepts` does, over the strings tried.
    fn agrees(pattern: &str, tried: &[String], accepts: impl Fn(&str) -> bool) {
        let regex = regex::Regex::new(pattern).unwrap();
        let mut matched = 0;
        for text in tried {
            assert_eq!(regex.is_match(text), accepts(text), "{pattern} on {text:?}");
            matched += usize::from(regex.is_match(text));
        }
        assert!(matched > 0, "{pattern}: nothing tried matched");
    }

    fn rule(name: &str) -> String {
        text_rule(name).unwrap()
    }

    const SPACES: [char; 6] = [' ', '\t', '\u{a0}', '\u{85}', '\u{3000}', '\u{feff}'];

    #[test]
    fn the_text_rules_say_what_the_parsers_accept() {
        use etr_domain::identity::{IdentityError, Inn, PassportNumber, PhoneE164, Snils};
        let mut digits: Vec<char> = ('0'..='9').collect();
        digits.extend(['7', '8', '8', '9', '1']);
        let mut phone_chars = digits.clone();
        phone_chars.extend(['+', ' ', '-', '(', ')', 'a', '\u{a0}', '\t', '\u{1c}']);
        let mut phones = strings(&phone_chars, 20, 60_000);
        phones.extend(
            [
                "+79161234567",
                " 8 (916) 123-45-67\u{a0}",
                "+0123456789",
                "+1234567",
                "+ 7916",
            ]
            .map(str::to_owned),
        );
        agrees(&rule("phone"), &phones, |t| PhoneE164::parse(t).is_ok());

        let mut inn_chars = digits.clone();
        inn_chars.extend([' ', '-', 'x']);
        let tried = strings(&inn_chars, 14, 60_000);
        agrees(&rule("inn"), &tried, |t| {
            !matches!(Inn::parse(t), Err(IdentityError::InnFormat))
        });
        agrees(&rule("snils"), &tried, |t| {
            !matches!(Snils::parse(t), Err(IdentityError::SnilsFormat))
        });
        agrees(&rule("passport"), &tried, |t| {
            !matches!(PassportNumber::parse(t), Err(IdentityError::PassportFormat))
        });

        let mut blank_chars = SPACES.to_vec();
        blank_chars.extend(['a', '\u{1c}', '\r', '\u{2028}', '\u{200b}']);
        let tried = strings(&blank_chars, 4, 20_000);
        agrees(&rule("not-blank"), &tried, |t| !t.trim().is_empty());
        for c in (0..=0x3100).filter_map(char::from_u32) {
            let text = c.to_string();
            assert_eq!(
                regex::Regex::new(&rule("not-blank"))
                    .unwrap()
                    .is_match(&text),
                !c.is_whitespace(),
                "U+{:04X}",
                u32::from(c)
            );
        }

        use etr_domain::advertising::{AmountRange, Content, Link, Name, PlaceId};
        let ad_chars: Vec<char> = "az09_-A /\\:htps\"\u{7}\t\u{a0}\n\r\u{85}"
            .chars()
            .collect();
        let tried = strings(&ad_chars, 9, 60_000);
        agrees(&rule("advertising-id"), &tried, |t| {
            PlaceId::parse(t).is_ok()
        });
        agrees(&rule("display-name"), &tried, |t| {
            Name::parse(t, "n").is_ok()
        });
        agrees(&rule("banner-text"), &tried, |t| {
            Content::parse("t", t, "/", None).is_ok()
        });
        agrees(&rule("condition"), &tried, |t| {
            etr_domain::advertising::Conditions::parse(
                &[t.to_owned()],
                &[],
                None,
                None,
                &std::collections::BTreeMap::new(),
            )
            .is_ok()
        });
        let mut links = strings(&ad_chars, 12, 60_000);
        links.extend(
            [
                "https://x",
                "HTTP://a",
                "http://",
                "/",
                "//x",
                "/\\x",
                "/a b",
            ]
            .map(str::to_owned),
        );
        agrees(&rule("link"), &links, |t| Link::parse(t).is_ok());
        let bound_chars: Vec<char> = "0120.9 -".chars().collect();
        let bounds = strings(&bound_chars, 6, 60_000);
        agrees(&rule("amount-bound"), &bounds, |t| {
            AmountRange::parse(Some(t), None).is_ok()
        });

        let b64_chars: Vec<char> = "AQgwBhE+/=09 \u{a0}".chars().collect();
        let tried = strings(&b64_chars, 9, 60_000);
        agrees(&rule("base64"), &tried, |t| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(t.trim())
                .is_ok()
        });

        let email_chars: Vec<char> = "a@.-Я \u{a0}\u{7}".chars().collect();
        let mut emails = strings(&email_chars, 8, 60_000);
        emails.extend(
            [
                "client@example.com",
                " client@пример.рф ",
                "a@b.c",
                "a@-b.c",
                "a@b-.c",
                "a@b..c",
                "@b.c",
                "a@b",
                "a@b@c.d",
            ]
            .map(str::to_owned),
        );
        emails.push(format!("{}@b.c", "a".repeat(64)));
        emails.push(format!("{}@b.c", "a".repeat(65)));
        emails.push(format!("a@{}.c", "b".repeat(63)));
        emails.push(format!("a@{}.c", "b".repeat(64)));
        agrees(&rule("email"), &emails, |t| {
            etr_domain::identity::Email::parse(t).is_ok()
        });

        let mut date_chars = digits.clone();
        date_chars.extend(['-', '+', ' ']);
        let mut dates = strings(&date_chars, 11, 60_000);
        dates.extend(["2024-02-29", "2023-02-29", "0000-01-01", "1990-13-01"].map(str::to_owned));
        let shape = regex::Regex::new(&rule("date")).unwrap();
        for text in &dates {
            // The pattern is the shape; a shaped text that is no calendar date (`2023-02-29`)
            // is what `format: date` refuses.
            let parsed = crate::lending::date("d", text).is_ok();
            assert!(!parsed || shape.is_match(text), "{text}");
        }
    }

    #[test]
    fn the_card_patterns_say_what_the_card_parsers_accept() {
        use etr_domain::card::{CardError, CardNumber, Cvc, Expiry};
        let doc = document();
        let card = &doc["components"]["schemas"]["CardPaymentRequest"]["properties"];
        let pattern = |field: &str| card[field]["pattern"].as_str().unwrap().to_owned();
        let mut chars: Vec<char> = ('0'..='9').collect();
        chars.extend([' ', '/', '+', '-', 'a', '\u{a0}']);
        let tried = strings(&chars, 21, 60_000);
        agrees(&pattern("number"), &tried, |t| {
            !matches!(CardNumber::parse(t), Err(CardError::NumberFormat))
        });
        agrees(&pattern("cvc"), &tried, |t| Cvc::parse(t).is_ok());
        let today = time::Date::from_calendar_date(2000, time::Month::January, 1).unwrap();
        let short = strings(&chars, 6, 60_000);
        agrees(&pattern("expiry"), &short, |t| {
            !matches!(Expiry::parse(t, today), Err(CardError::ExpiryFormat))
        });
    }

    #[test]
    fn the_utc_offset_pattern_says_what_parse_utc_offset_accepts() {
        let doc = document();
        let pattern = doc["components"]["schemas"]["TimeZoneRequest"]["properties"]["utc_offset"]
            ["pattern"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut tried = Vec::new();
        for sign in ['+', '-', ' '] {
            for h in 0..=99 {
                for m in 0..=99 {
                    tried.push(format!("{sign}{h:02}:{m:02}"));
                }
            }
        }
        tried.extend(["+5:00", "+05:0", "+0500", "+05:00 "].map(str::to_owned));
        agrees(&pattern, &tried, |t| {
            etr_domain::limits::parse_utc_offset(t).is_ok()
        });
    }

    #[test]
    fn every_path_parameter_is_a_segment_of_its_path_and_no_query_parameter_is_null() {
        let doc = document();
        let mut query = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    match p["in"].as_str().unwrap() {
                        "path" => assert!(
                            path.contains(&format!("{{{name}}}")),
                            "{method} {path}: path parameter `{name}` is not in the path"
                        ),
                        "query" => {
                            query += 1;
                            assert!(
                                !p.to_string().contains(r#""null""#),
                                "{method} {path}: query parameter `{name}` may be null: {p}"
                            );
                        }
                        _ => {}
                    }
                }
            }
        }
        assert!(query >= 5, "only {query} query parameters");
        let search = doc["components"]["schemas"]["ClientSearch"].to_string();
        assert!(!search.contains(r#""null""#), "{search}");
    }

    #[test]
    fn a_map_keyed_by_currency_names_its_keys_as_currency_codes() {
        let doc = document();
        let limits = &doc["components"]["schemas"]["GroupBody"]["properties"]["limits"];
        assert_eq!(
            limits["propertyNames"],
            json!({ "$ref": "#/components/schemas/CurrencyCode" }),
            "{limits}"
        );
    }

    #[test]
    fn exactly_one_of_a_group_is_a_one_of() {
        let doc = document();
        let repayment = &doc["components"]["schemas"]["RepaymentRequest"];
        let branches = repayment["oneOf"].as_array().unwrap();
        assert_eq!(branches.len(), 2);
        let wallet = branches
            .iter()
            .find(|b| b["required"] == json!(["wallet_id"]))
            .unwrap();
        assert_eq!(wallet["properties"]["card_id"], json!({ "type": "null" }));
        assert_eq!(
            wallet["properties"]["wallet_id"],
            json!({ "not": { "type": "null" } })
        );
        assert!(repayment["properties"]["wallet_id"]
            .get(EXACTLY_ONE_OF)
            .is_none());
    }

    #[test]
    fn every_operation_declares_the_shared_answers_and_every_amount_its_pattern() {
        let doc = document();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.len() > 40);
        for (path, item) in paths {
            for (method, op) in item.as_object().unwrap() {
                for status in ["400", "401", "403", "429"] {
                    assert!(
                        op["responses"].get(status).is_some(),
                        "{method} {path} lacks {status}"
                    );
                }
            }
        }
        let top_up = &doc["components"]["schemas"]["TopUpRequest"]["properties"];
        assert_eq!(top_up["amount"]["$ref"], "#/components/schemas/Amount");
        assert_eq!(
            top_up["currency"]["$ref"],
            "#/components/schemas/CurrencyCode"
        );
    }
}
