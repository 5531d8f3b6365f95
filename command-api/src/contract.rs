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
//! - **Text**: no string may hold U+0000 (400 `nul_character`; said in the document's
//!   description, since JSON Schema has no keyword for it).
//! - **A command's 422**: its refusal, or the error body of `idempotency_key_reused`.
//! - **Responses every route can give**: 400 (a path, query or body the route cannot read:
//!   `invalid_path`, `invalid_query`, `invalid_json`, `nul_character`, …), 401 (no or a bad
//!   token), 403, 413 (a body above 256 KiB) on routes with a body, and 429 from the fraud
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
        }
    }
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
