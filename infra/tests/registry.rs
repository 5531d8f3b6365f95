//! The platform's Confluent-compatible schema registry, end to end: real Postgres (a fresh
//! database per test), the server on an ephemeral port, raw HTTP and `schema_registry_converter`.

use std::collections::BTreeSet;

use apache_avro::types::Value as Avro;
use etr_infra::registry;
use reqwest::{Client, StatusCode};
use schema_registry_converter::async_impl::easy_avro::{EasyAvroDecoder, EasyAvroEncoder};
use schema_registry_converter::async_impl::schema_registry::SrSettings;
use schema_registry_converter::schema_registry_common::{
    RawError, SchemaType, SubjectNameStrategy, SuppliedReference, SuppliedSchema,
};
use serde_json::{json, Value};

const CT: &str = "application/vnd.schemaregistry.v1+json";
const TOPIC: &str = "etr.events";
const SUBJECT: &str = "etr.events-etr.wallet.WalletOpened";

const OPENED_V1: &str = r#"{"type":"record","name":"WalletOpened","namespace":"etr.wallet","fields":[{"name":"wallet_id","type":"string"},{"name":"currency","type":"string"}]}"#;
/// V1 plus a field with a default: BACKWARD compatible.
const OPENED_V2_DEFAULT: &str = r#"{"type":"record","name":"WalletOpened","namespace":"etr.wallet","fields":[{"name":"wallet_id","type":"string"},{"name":"currency","type":"string"},{"name":"label","type":["null","string"],"default":null}]}"#;
/// V1 plus a field without a default: not BACKWARD compatible.
const OPENED_V2_NO_DEFAULT: &str = r#"{"type":"record","name":"WalletOpened","namespace":"etr.wallet","fields":[{"name":"wallet_id","type":"string"},{"name":"currency","type":"string"},{"name":"owner","type":"string"}]}"#;

struct Server {
    base: String,
    http: Client,
    database_url: String,
}

impl Drop for Server {
    /// Drops the test's database unless the test failed (then it is kept for inspection).
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let Some((server, name)) = self.database_url.rsplit_once('/') else {
            return;
        };
        let _ = std::process::Command::new("psql")
            .arg(format!("{server}/postgres"))
            .args([
                "-qc",
                &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            ])
            .output();
    }
}

impl Server {
    async fn start() -> Server {
        let (pool, database_url) = etr_infra::pg::fresh_database("registry_test")
            .await
            .expect("fresh database");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        tokio::spawn(registry::serve(pool, listener));
        Server {
            base: format!("http://{addr}"),
            http: Client::new(),
            database_url,
        }
    }

    fn settings(&self) -> SrSettings {
        SrSettings::new(self.base.clone())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> (StatusCode, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.expect("body");
        assert_eq!(content_type.as_deref(), Some(CT), "content type of {text}");
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text:?} (status {status})"));
        (status, body)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn get_text(&self, path: &str) -> (StatusCode, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("request");
        (resp.status(), resp.text().await.expect("body"))
    }

    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .header("content-type", CT)
                .body(body.to_string()),
        )
        .await
    }

    async fn put(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(
            self.http
                .put(format!("{}{path}", self.base))
                .header("content-type", CT)
                .body(body.to_string()),
        )
        .await
    }

    async fn delete(&self, path: &str) -> (StatusCode, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    async fn register(&self, subject: &str, schema: &str) -> (StatusCode, Value) {
        self.post(
            &format!("/subjects/{}/versions", escape(subject)),
            json!({ "schema": schema }),
        )
        .await
    }

    /// Registers and returns the id, failing the test on anything but 200.
    async fn register_ok(&self, subject: &str, schema: &str) -> i64 {
        let (status, body) = self.register(subject, schema).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["id"].as_i64().expect("id")
    }
}

/// Path form of a subject: `/` travels as `%2F`, like the Confluent clients send it.
fn escape(subject: &str) -> String {
    subject.replace('/', "%2F")
}

/// Asserts a Confluent error body with this HTTP status and `error_code`.
fn assert_error(got: (StatusCode, Value), status: StatusCode, code: i64) {
    let (s, body) = got;
    assert_eq!(s, status, "{body}");
    assert_eq!(body["error_code"].as_i64(), Some(code), "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn register_lookup_get_by_id_list_versions_latest() {
    let sr = Server::start().await;
    assert_eq!(sr.get("/subjects").await, (StatusCode::OK, json!([])));

    let id1 = sr.register_ok(SUBJECT, OPENED_V1).await;
    assert!(id1 > 0);

    // The same schema again (reformatted, keys reordered) is the same version, not a new one;
    // `application/json` is accepted as well.
    let reformatted =
        serde_json::to_string_pretty(&serde_json::from_str::<Value>(OPENED_V1).expect("json"))
            .expect("pretty");
    let resp = sr
        .http
        .post(format!("{}/subjects/{SUBJECT}/versions", sr.base))
        .header("content-type", "application/json")
        .body(json!({ "schema": reformatted }).to_string())
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    let again: Value = resp.json().await.expect("json");
    assert_eq!(again, json!({ "id": id1 }));
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([1]))
    );

    // Lookup: which version of the subject is this schema.
    let (status, found) = sr
        .post(
            &format!("/subjects/{SUBJECT}"),
            json!({ "schema": OPENED_V1 }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["subject"], SUBJECT);
    assert_eq!(found["id"].as_i64(), Some(id1));
    assert_eq!(found["version"], 1);
    assert_eq!(found["schema"], OPENED_V1);

    // By id: the text exactly as first registered.
    let (status, by_id) = sr.get(&format!("/schemas/ids/{id1}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["schema"], OPENED_V1);
    assert_eq!(by_id["schemaType"], "AVRO");
    let (status, by_id) = sr.get(&format!("/schemas/ids/{id1}?deleted=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["schema"], OPENED_V1);
    assert_eq!(
        sr.get_text(&format!("/schemas/ids/{id1}/schema")).await,
        (StatusCode::OK, OPENED_V1.to_owned())
    );

    // The same schema under another subject (with a slash in it) reuses the global id.
    let audit = "audit/etr.wallet.WalletOpened";
    assert_eq!(sr.register_ok(audit, OPENED_V1).await, id1);
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id1}/subjects")).await,
        (StatusCode::OK, json!([audit, SUBJECT]))
    );
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id1}/versions")).await,
        (
            StatusCode::OK,
            json!([{"subject": audit, "version": 1}, {"subject": SUBJECT, "version": 1}])
        )
    );
    assert_eq!(
        sr.get("/subjects").await,
        (StatusCode::OK, json!([audit, SUBJECT]))
    );
    let (status, latest) = sr
        .get(&format!("/subjects/{}/versions/latest", escape(audit)))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(latest["subject"], audit);
    assert_eq!(latest["id"].as_i64(), Some(id1));

    // A compatible evolution becomes version 2 with a new id.
    let id2 = sr.register_ok(SUBJECT, OPENED_V2_DEFAULT).await;
    assert_ne!(id2, id1);
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([1, 2]))
    );
    let (_, latest) = sr
        .get(&format!("/subjects/{SUBJECT}/versions/latest"))
        .await;
    assert_eq!(
        latest,
        json!({"subject": SUBJECT, "version": 2, "id": id2, "schemaType": "AVRO", "schema": OPENED_V2_DEFAULT})
    );
    let (_, minus_one) = sr.get(&format!("/subjects/{SUBJECT}/versions/-1")).await;
    assert_eq!(minus_one, latest);
    let (_, v1) = sr.get(&format!("/subjects/{SUBJECT}/versions/1")).await;
    assert_eq!(v1["id"].as_i64(), Some(id1));
    assert_eq!(v1["schema"], OPENED_V1);
    assert_eq!(
        sr.get_text(&format!("/subjects/{SUBJECT}/versions/2/schema"))
            .await,
        (StatusCode::OK, OPENED_V2_DEFAULT.to_owned())
    );
    // Registering v1 again while v2 is latest returns v1's id and adds nothing.
    assert_eq!(sr.register_ok(SUBJECT, OPENED_V1).await, id1);
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([1, 2]))
    );

    assert_eq!(sr.get("/").await, (StatusCode::OK, json!({})));
    assert_eq!(
        sr.get("/schemas/types").await,
        (StatusCode::OK, json!(["AVRO"]))
    );
}

#[tokio::test]
async fn backward_compatibility_is_enforced_and_configurable() {
    let sr = Server::start().await;
    assert_eq!(
        sr.get("/config").await,
        (StatusCode::OK, json!({"compatibilityLevel": "BACKWARD"}))
    );
    let id1 = sr.register_ok(SUBJECT, OPENED_V1).await;

    // Adding a field without a default: consumers on the new schema could not read old events.
    let refused = sr.register(SUBJECT, OPENED_V2_NO_DEFAULT).await;
    assert_eq!(
        refused.1["message"].as_str().map(|m| m.contains("owner")),
        Some(true),
        "{}",
        refused.1
    );
    assert_error(refused, StatusCode::CONFLICT, 409);
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([1]))
    );

    // The dry-run endpoint agrees, with the reason.
    for path in [
        format!("/compatibility/subjects/{SUBJECT}/versions/latest"),
        format!("/compatibility/subjects/{SUBJECT}/versions/1"),
        format!("/compatibility/subjects/{SUBJECT}/versions"),
    ] {
        let (status, body) = sr
            .post(&path, json!({ "schema": OPENED_V2_NO_DEFAULT }))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["is_compatible"], false, "{path}: {body}");
        assert!(
            body["messages"].as_array().is_some_and(|m| !m.is_empty()),
            "{body}"
        );
        let (status, body) = sr.post(&path, json!({ "schema": OPENED_V2_DEFAULT })).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body, json!({"is_compatible": true}), "{path}");
    }

    // With a default the same change is accepted as version 2.
    let id2 = sr.register_ok(SUBJECT, OPENED_V2_DEFAULT).await;
    assert_ne!(id2, id1);
    let (_, latest) = sr
        .get(&format!("/subjects/{SUBJECT}/versions/latest"))
        .await;
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["id"].as_i64(), Some(id2));

    // Per-subject configuration.
    assert_error(
        sr.get(&format!("/config/{SUBJECT}")).await,
        StatusCode::NOT_FOUND,
        40408,
    );
    assert_eq!(
        sr.get(&format!("/config/{SUBJECT}?defaultToGlobal=true"))
            .await,
        (StatusCode::OK, json!({"compatibilityLevel": "BACKWARD"}))
    );
    assert_eq!(
        sr.put(
            &format!("/config/{SUBJECT}"),
            json!({"compatibility": "NONE"})
        )
        .await,
        (StatusCode::OK, json!({"compatibility": "NONE"}))
    );
    assert_eq!(
        sr.get(&format!("/config/{SUBJECT}")).await,
        (StatusCode::OK, json!({"compatibilityLevel": "NONE"}))
    );
    // Under NONE the refused change goes through, as version 3.
    let id3 = sr.register_ok(SUBJECT, OPENED_V2_NO_DEFAULT).await;
    let (_, v3) = sr.get(&format!("/subjects/{SUBJECT}/versions/3")).await;
    assert_eq!(v3["id"].as_i64(), Some(id3));
    assert_eq!(
        sr.delete(&format!("/config/{SUBJECT}")).await,
        (StatusCode::OK, json!({"compatibilityLevel": "NONE"}))
    );
    assert_error(
        sr.get(&format!("/config/{SUBJECT}")).await,
        StatusCode::NOT_FOUND,
        40408,
    );

    // Transitive levels check every version, not only the latest: v3 {a, b} reads v2
    // {a, b = 0} but not v1 {a}.
    let record = |fields: &str| {
        format!(
            r#"{{"type":"record","name":"LoanIssued","namespace":"etr.loan","fields":[{fields}]}}"#
        )
    };
    let loan = "etr.events-etr.loan.LoanIssued";
    sr.register_ok(loan, &record(r#"{"name":"a","type":"long"}"#))
        .await;
    sr.register_ok(
        loan,
        &record(r#"{"name":"a","type":"long"},{"name":"b","type":"long","default":0}"#),
    )
    .await;
    let v3 = record(r#"{"name":"a","type":"long"},{"name":"b","type":"long"}"#);
    assert_eq!(
        sr.put("/config", json!({"compatibility": "backward_transitive"}))
            .await,
        (
            StatusCode::OK,
            json!({"compatibility": "BACKWARD_TRANSITIVE"})
        )
    );
    assert_error(sr.register(loan, &v3).await, StatusCode::CONFLICT, 409);
    assert_eq!(
        sr.put("/config", json!({"compatibility": "BACKWARD"}))
            .await,
        (StatusCode::OK, json!({"compatibility": "BACKWARD"}))
    );
    sr.register_ok(loan, &v3).await;
    assert_eq!(
        sr.get(&format!("/subjects/{loan}/versions")).await,
        (StatusCode::OK, json!([1, 2, 3]))
    );

    // FORWARD: old consumers must read new data, so removing a field without default fails.
    sr.put(
        &format!("/config/{loan}"),
        json!({"compatibility": "FORWARD"}),
    )
    .await;
    let dropped_b = record(r#"{"name":"a","type":"long"}"#);
    let (status, body) = sr
        .post(
            &format!("/compatibility/subjects/{loan}/versions/latest"),
            json!({ "schema": dropped_b }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["is_compatible"], false, "{body}");
}

/// `source()` chain of a converter error, looking for the registry's error body.
fn registry_error_code(e: &(dyn std::error::Error + 'static)) -> Option<u32> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(raw) = err.downcast_ref::<RawError>() {
            return Some(raw.error_code);
        }
        current = err.source();
    }
    None
}

#[tokio::test]
async fn schema_registry_converter_round_trip() {
    let sr = Server::start().await;
    let encoder = EasyAvroEncoder::new(sr.settings());
    let decoder = EasyAvroDecoder::new(sr.settings());
    let strategy = |schema: &str| {
        SubjectNameStrategy::TopicRecordNameStrategyWithSchema(
            TOPIC.to_owned(),
            SuppliedSchema::new(
                Some("etr.wallet.WalletOpened".to_owned()),
                SchemaType::Avro,
                schema.to_owned(),
            ),
        )
    };
    let wallet = "5b0f1d4c-2f58-4a52-9c53-0b1d8f0a9e11";

    let bytes = encoder
        .encode(
            vec![
                ("wallet_id", Avro::String(wallet.to_owned())),
                ("currency", Avro::String("RUB".to_owned())),
            ],
            strategy(OPENED_V1),
        )
        .await
        .expect("encode v1");
    assert_eq!(bytes[0], 0, "magic byte");
    let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);

    // The converter registered the schema under the TopicRecordName subject.
    let (status, latest) = sr
        .get(&format!("/subjects/{SUBJECT}/versions/latest"))
        .await;
    assert_eq!(status, StatusCode::OK, "{latest}");
    assert_eq!(latest["id"].as_u64(), Some(u64::from(id)));
    assert_eq!(latest["version"], 1);
    assert_eq!(
        sr.get("/subjects").await,
        (StatusCode::OK, json!([SUBJECT]))
    );

    let decoded = decoder.decode(Some(&bytes)).await.expect("decode v1");
    assert_eq!(
        decoded.name.map(|n| n.fullname(None)).as_deref(),
        Some("etr.wallet.WalletOpened")
    );
    assert_eq!(
        decoded.value,
        Avro::Record(vec![
            ("wallet_id".to_owned(), Avro::String(wallet.to_owned())),
            ("currency".to_owned(), Avro::String("RUB".to_owned())),
        ])
    );

    // An evolved producer gets a new id; a consumer decodes both generations.
    let encoder_v2 = EasyAvroEncoder::new(sr.settings());
    let bytes_v2 = encoder_v2
        .encode(
            vec![
                ("wallet_id", Avro::String(wallet.to_owned())),
                ("currency", Avro::String("KZT".to_owned())),
                (
                    "label",
                    Avro::Union(1, Box::new(Avro::String("main".to_owned()))),
                ),
            ],
            strategy(OPENED_V2_DEFAULT),
        )
        .await
        .expect("encode v2");
    assert_eq!(bytes_v2[0], 0);
    let id2 = u32::from_be_bytes([bytes_v2[1], bytes_v2[2], bytes_v2[3], bytes_v2[4]]);
    assert_ne!(id2, id);
    let fresh_decoder = EasyAvroDecoder::new(sr.settings());
    let old = fresh_decoder
        .decode(Some(&bytes))
        .await
        .expect("decode old");
    let new = fresh_decoder
        .decode(Some(&bytes_v2))
        .await
        .expect("decode new");
    assert!(matches!(&old.value, Avro::Record(fields) if fields.len() == 2));
    match &new.value {
        Avro::Record(fields) => assert_eq!(
            fields.last(),
            Some(&(
                "label".to_owned(),
                Avro::Union(1, Box::new(Avro::String("main".to_owned())))
            ))
        ),
        other => panic!("not a record: {other:?}"),
    }

    // An incompatible producer is refused by the registry, and the client sees error 409.
    let err = EasyAvroEncoder::new(sr.settings())
        .encode(
            vec![
                ("wallet_id", Avro::String(wallet.to_owned())),
                ("currency", Avro::String("RUB".to_owned())),
                ("owner", Avro::String("x".to_owned())),
            ],
            strategy(OPENED_V2_NO_DEFAULT),
        )
        .await
        .expect_err("incompatible schema must be refused");
    assert_eq!(registry_error_code(&err), Some(409), "{err}");

    // References: a payment imports the Money record registered under its own subject. (The
    // converter inlines references by short name, so the import shares the namespace.)
    let money = r#"{"type":"record","name":"Money","namespace":"etr.payment","fields":[{"name":"minor_units","type":"long"},{"name":"currency","type":"string"}]}"#;
    let payment = r#"{"type":"record","name":"PaymentInitiated","namespace":"etr.payment","fields":[{"name":"payment_id","type":"string"},{"name":"amount","type":"Money"}]}"#;
    let supplied = SuppliedSchema::new(
        Some("etr.payment.PaymentInitiated".to_owned()),
        SchemaType::Avro,
        payment.to_owned(),
    )
    .with_references(vec![SuppliedReference::new(
        "etr.payment.Money".to_owned(),
        "etr.payment.Money".to_owned(),
        money.to_owned(),
    )]);
    let amount = Avro::Record(vec![
        ("minor_units".to_owned(), Avro::Long(150_000)),
        ("currency".to_owned(), Avro::String("RUB".to_owned())),
    ]);
    let bytes_ref = EasyAvroEncoder::new(sr.settings())
        .encode(
            vec![
                ("payment_id", Avro::String("p-1".to_owned())),
                ("amount", amount.clone()),
            ],
            SubjectNameStrategy::TopicRecordNameStrategyWithSchema(TOPIC.to_owned(), supplied),
        )
        .await
        .expect("encode with reference");
    assert_eq!(bytes_ref[0], 0);
    let (_, with_ref) = sr
        .get("/subjects/etr.events-etr.payment.PaymentInitiated/versions/latest")
        .await;
    assert_eq!(
        with_ref["references"],
        json!([{"name": "etr.payment.Money", "subject": "etr.payment.Money", "version": 1}])
    );
    let decoded = EasyAvroDecoder::new(sr.settings())
        .decode(Some(&bytes_ref))
        .await
        .expect("decode with reference");
    assert_eq!(
        decoded.value,
        Avro::Record(vec![
            ("payment_id".to_owned(), Avro::String("p-1".to_owned())),
            ("amount".to_owned(), amount),
        ])
    );
}

#[tokio::test]
async fn bad_requests_get_confluent_error_codes() {
    let sr = Server::start().await;
    let nf = StatusCode::NOT_FOUND;
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;

    // 40401 subject not found
    assert_error(sr.get("/subjects/nope/versions").await, nf, 40401);
    assert_error(sr.get("/subjects/nope/versions/1").await, nf, 40401);
    assert_error(sr.get("/subjects/nope/versions/latest").await, nf, 40401);
    assert_error(
        sr.post("/subjects/nope", json!({ "schema": OPENED_V1 }))
            .await,
        nf,
        40401,
    );
    assert_error(sr.delete("/subjects/nope").await, nf, 40401);
    assert_error(
        sr.post(
            "/compatibility/subjects/nope/versions/1",
            json!({ "schema": OPENED_V1 }),
        )
        .await,
        nf,
        40401,
    );

    let id = sr.register_ok(SUBJECT, OPENED_V1).await;
    // 40402 version not found
    assert_error(
        sr.get(&format!("/subjects/{SUBJECT}/versions/7")).await,
        nf,
        40402,
    );
    // 40403 schema not found
    assert_error(
        sr.get(&format!("/schemas/ids/{}", id + 1000)).await,
        nf,
        40403,
    );
    assert_error(sr.get("/schemas/ids/not-a-number").await, nf, 40403);
    assert_error(sr.get("/schemas/ids/99999/subjects").await, nf, 40403);
    assert_error(
        sr.post(
            &format!("/subjects/{SUBJECT}"),
            json!({ "schema": OPENED_V2_DEFAULT }),
        )
        .await,
        nf,
        40403,
    );

    // 42201 invalid schema
    for bad in [
        json!({ "schema": "not json at all" }),
        json!({ "schema": r#"{"type":"record","name":"X"}"# }),
        json!({ "schema": r#"{"type":"record","name":"X","fields":[{"name":"a","type":"NoSuchType"}]}"# }),
        json!({ "schema": "" }),
        json!({}),
        json!({ "schema": OPENED_V1, "schemaType": "PROTOBUF" }),
        json!({ "schema": OPENED_V1, "references": [{"name": "etr.X", "subject": "missing", "version": 1}] }),
    ] {
        let got = sr
            .post(&format!("/subjects/{SUBJECT}/versions"), bad.clone())
            .await;
        assert_eq!(got.1["error_code"], 42201, "{bad} -> {}", got.1);
        assert_error(got, unprocessable, 42201);
    }
    // nothing was stored by the refused requests
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([1]))
    );

    // 42202 invalid version
    for v in ["abc", "0", "-2", "99999999999"] {
        assert_error(
            sr.get(&format!("/subjects/{SUBJECT}/versions/{v}")).await,
            unprocessable,
            42202,
        );
    }

    // 42203 invalid compatibility level
    assert_error(
        sr.put("/config", json!({"compatibility": "SIDEWAYS"}))
            .await,
        unprocessable,
        42203,
    );
    assert_error(
        sr.put(&format!("/config/{SUBJECT}"), json!({"compatibility": ""}))
            .await,
        unprocessable,
        42203,
    );
    assert_error(sr.put("/config", json!({})).await, unprocessable, 42203);
    assert_eq!(
        sr.get("/config").await,
        (StatusCode::OK, json!({"compatibilityLevel": "BACKWARD"}))
    );

    // 42208 invalid subject (control character)
    assert_error(
        sr.post(
            "/subjects/bad%01subject/versions",
            json!({ "schema": OPENED_V1 }),
        )
        .await,
        unprocessable,
        42208,
    );

    // Malformed JSON, unknown endpoint, wrong method: still Confluent-shaped bodies.
    let malformed = sr
        .send(
            sr.http
                .post(format!("{}/subjects/{SUBJECT}/versions", sr.base))
                .header("content-type", CT)
                .body("{\"schema\": "),
        )
        .await;
    assert_error(malformed, StatusCode::BAD_REQUEST, 400);
    assert_error(sr.get("/no/such/endpoint").await, nf, 404);
    assert_error(
        sr.put(&format!("/subjects/{SUBJECT}/versions"), json!({}))
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
        405,
    );
}

#[tokio::test]
async fn soft_and_permanent_deletes() {
    let sr = Server::start().await;
    let id1 = sr.register_ok(SUBJECT, OPENED_V1).await;
    let id2 = sr.register_ok(SUBJECT, OPENED_V2_DEFAULT).await;

    assert_eq!(
        sr.delete(&format!("/subjects/{SUBJECT}")).await,
        (StatusCode::OK, json!([1, 2]))
    );
    assert_eq!(sr.get("/subjects").await, (StatusCode::OK, json!([])));
    assert_eq!(
        sr.get("/subjects?deleted=true").await,
        (StatusCode::OK, json!([SUBJECT]))
    );
    assert_error(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        StatusCode::NOT_FOUND,
        40401,
    );
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions?deleted=true"))
            .await,
        (StatusCode::OK, json!([1, 2]))
    );
    // Old messages still decode: the ids stay resolvable.
    let (status, by_id) = sr.get(&format!("/schemas/ids/{id1}?deleted=true")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_id["schema"], OPENED_V1);
    assert_eq!(
        sr.get(&format!("/schemas/ids/{id2}")).await.0,
        StatusCode::OK
    );
    assert_error(
        sr.delete(&format!("/subjects/{SUBJECT}")).await,
        StatusCode::NOT_FOUND,
        40404,
    );

    // Re-registering continues the numbering and keeps the id.
    assert_eq!(sr.register_ok(SUBJECT, OPENED_V1).await, id1);
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([3]))
    );

    // Permanent delete needs a soft delete first.
    assert_error(
        sr.delete(&format!("/subjects/{SUBJECT}?permanent=true"))
            .await,
        StatusCode::NOT_FOUND,
        40405,
    );
    assert_error(
        sr.delete(&format!("/subjects/{SUBJECT}/versions/3?permanent=true"))
            .await,
        StatusCode::NOT_FOUND,
        40407,
    );
    assert_eq!(
        sr.delete(&format!("/subjects/{SUBJECT}/versions/latest"))
            .await,
        (StatusCode::OK, json!(3))
    );
    assert_error(
        sr.delete(&format!("/subjects/{SUBJECT}/versions/3")).await,
        StatusCode::NOT_FOUND,
        40406,
    );
    assert_eq!(
        sr.delete(&format!("/subjects/{SUBJECT}?permanent=true"))
            .await,
        (StatusCode::OK, json!([1, 2, 3]))
    );
    assert_eq!(
        sr.get("/subjects?deleted=true").await,
        (StatusCode::OK, json!([]))
    );
    assert_error(
        sr.get(&format!("/schemas/ids/{id2}")).await,
        StatusCode::NOT_FOUND,
        40403,
    );

    // Ids are never reused: the same schema comes back with a fresh subject but its old id,
    // and a new schema gets an id above every earlier one.
    assert_eq!(sr.register_ok(SUBJECT, OPENED_V1).await, id1);
    assert_eq!(sr.register_ok(SUBJECT, OPENED_V2_DEFAULT).await, id2);
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([1, 2]))
    );
    let closed = r#"{"type":"record","name":"WalletClosed","namespace":"etr.wallet","fields":[]}"#;
    let id3 = sr
        .register_ok("etr.events-etr.wallet.WalletClosed", closed)
        .await;
    assert!(id3 > id2, "{id3} > {id2}");
}

#[tokio::test]
async fn concurrent_registrations_get_distinct_versions() {
    let sr = std::sync::Arc::new(Server::start().await);

    // Twelve different compatible schemas under one subject at once: versions 1..=12, no gaps,
    // no duplicates.
    let mut tasks = Vec::new();
    for i in 0..12 {
        let sr = sr.clone();
        tasks.push(tokio::spawn(async move {
            let schema = format!(
                r#"{{"type":"record","name":"WalletToppedUp","namespace":"etr.wallet","fields":[{{"name":"wallet_id","type":"string"}},{{"name":"f{i}","type":"long","default":{i}}}]}}"#
            );
            sr.register_ok("etr.events-etr.wallet.WalletToppedUp", &schema)
                .await
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.expect("task"));
    }
    assert_eq!(ids.len(), 12);
    assert_eq!(
        sr.get("/subjects/etr.events-etr.wallet.WalletToppedUp/versions")
            .await,
        (StatusCode::OK, json!((1..=12).collect::<Vec<_>>()))
    );

    // One schema, registered concurrently under one subject and under several subjects:
    // one version, one id.
    let mut tasks = Vec::new();
    for i in 0..16 {
        let sr = sr.clone();
        tasks.push(tokio::spawn(async move {
            let subject = if i % 2 == 0 {
                "etr.events-etr.wallet.WalletOpened".to_owned()
            } else {
                format!("copy-{i}")
            };
            sr.register_ok(&subject, OPENED_V1).await
        }));
    }
    let mut ids = BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.expect("task"));
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(
        sr.get(&format!("/subjects/{SUBJECT}/versions")).await,
        (StatusCode::OK, json!([1]))
    );
    let id = ids.into_iter().next().expect("one id");
    let (_, subjects) = sr.get(&format!("/schemas/ids/{id}/subjects")).await;
    assert_eq!(subjects.as_array().map(Vec::len), Some(9), "{subjects}");
}

#[tokio::test]
async fn every_platform_event_schema_registers() {
    let sr = Server::start().await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/avro");
    let mut files = Vec::new();
    for dir in std::fs::read_dir(&root).expect("schemas/avro") {
        let dir = dir.expect("entry").path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).expect("dir") {
                let f = f.expect("entry").path();
                if f.extension().is_some_and(|e| e == "avsc") {
                    files.push(f);
                }
            }
        }
    }
    assert!(files.len() >= 20, "found {} .avsc files", files.len());
    let mut ids = BTreeSet::new();
    for f in &files {
        let text = std::fs::read_to_string(f).expect("read");
        let json: Value = serde_json::from_str(&text).expect("json");
        let subject = format!(
            "{TOPIC}-{}.{}",
            json["namespace"].as_str().expect("namespace"),
            json["name"].as_str().expect("name")
        );
        let id = sr.register_ok(&subject, &text).await;
        assert_eq!(sr.register_ok(&subject, &text).await, id, "{subject}");
        let (_, by_id) = sr.get(&format!("/schemas/ids/{id}")).await;
        assert_eq!(by_id["schema"].as_str(), Some(text.as_str()), "{subject}");
        ids.insert(id);
    }
    assert_eq!(ids.len(), files.len());
    let (_, subjects) = sr.get("/subjects").await;
    assert_eq!(subjects.as_array().map(Vec::len), Some(files.len()));
}
