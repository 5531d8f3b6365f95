//! The demo scenario `etr up` runs: one client opens two wallets, tops up, pays (one payment
//! succeeds, one fails at the provider and is released), transfers, tries to overspend, and
//! then the events it wrote are read back from the log.

use anyhow::Context as _;
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

struct Client {
    http: reqwest::Client,
    base: String,
    client_id: Uuid,
    bearer: String,
    n: usize,
}

impl Client {
    async fn post(&mut self, path: &str, body: Value) -> anyhow::Result<(u16, Value)> {
        self.n += 1;
        let url = format!("{}/v1/clients/{}{}", self.base, self.client_id, path);
        let resp = self
            .http
            .post(&url)
            .header("Idempotency-Key", format!("demo-{}", self.n))
            .header(reqwest::header::AUTHORIZATION, &self.bearer)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await?))
    }
}

fn summary(v: &Value) -> String {
    match v["status"].as_str() {
        Some("accepted") => {
            let events: Vec<&str> = v["events"]
                .as_array()
                .map(|a| a.iter().filter_map(|e| e["event_type"].as_str()).collect())
                .unwrap_or_default();
            format!("accepted → {}", events.join(", "))
        }
        Some("rejected") => format!(
            "rejected: {} ({})",
            v["code"].as_str().unwrap_or("?"),
            v["message"].as_str().unwrap_or("")
        ),
        _ => v.to_string(),
    }
}

pub async fn run(settings: &Settings, codec: &EventCodec) -> anyhow::Result<()> {
    let client_id = Uuid::new_v4();
    let base = format!("http://{}", settings.command_api_addr);
    let mut c = Client {
        http: reqwest::Client::new(),
        bearer: etr_platform::client_bearer(settings, &format!("{base}/v1/clients/{client_id}"))?,
        base,
        client_id,
        n: 0,
    };
    println!("── demo: client {}", c.client_id);
    let mut expected = 0usize;
    let mut step = |what: &str, status: u16, v: &Value| {
        expected += v["events"].as_array().map_or(0, Vec::len);
        println!("  {what:<44} HTTP {status}  {}", summary(v));
    };
    let (s, w1) = c.post("/wallets", json!({"currency": "RUB"})).await?;
    step("open wallet A (RUB)", s, &w1);
    let a = w1["wallets"][0]["wallet_id"]
        .as_str()
        .context("wallet id")?
        .to_owned();
    let (s, w2) = c.post("/wallets", json!({"currency": "RUB"})).await?;
    step("open wallet B (RUB)", s, &w2);
    let b = w2["wallets"][0]["wallet_id"]
        .as_str()
        .context("wallet id")?
        .to_owned();
    let (s, v) = c
        .post(
            &format!("/wallets/{a}/top-ups"),
            json!({"amount": "1000.00", "currency": "RUB", "source": "card"}),
        )
        .await?;
    step("top up A with 1000.00", s, &v);
    let (s, v) = c.post(&format!("/wallets/{a}/payments"), json!({"amount": "250.00", "currency": "RUB", "service_id": "mobile-mts", "attributes": {"phone": "+79001234567"}})).await?;
    step("pay 250.00 for mobile (succeeds, status 6)", s, &v);
    let (s, v) = c
        .post(
            &format!("/wallets/{a}/payments"),
            json!({"amount": "100.00", "currency": "RUB", "service_id": "utility-fail"}),
        )
        .await?;
    step("pay 100.00, provider fails (released, 8)", s, &v);
    let (s, v) = c
        .post(
            &format!("/wallets/{a}/transfers"),
            json!({"to_wallet_id": b, "amount": "300.00", "currency": "RUB"}),
        )
        .await?;
    step("transfer 300.00 from A to B", s, &v);
    let last_position = v["position"].clone();
    let (s, v) = c
        .post(
            &format!("/wallets/{a}/payments"),
            json!({"amount": "999.00", "currency": "RUB", "service_id": "mobile-mts"}),
        )
        .await?;
    step("pay 999.00 (more than available)", s, &v);
    let (s, v) = c
        .post(
            &format!("/wallets/{a}/top-ups"),
            json!({"amount": "1.001", "currency": "RUB", "source": "card"}),
        )
        .await?;
    println!(
        "  {:<44} HTTP {s}  {}",
        "top up 1.001 (too precise)", v["error"]["code"]
    );

    println!(
        "── the log ({} events expected for this client on {}):",
        expected, settings.topic
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut lines = Vec::new();
        etr_projections::log::read_log(settings, codec, false, |partition, offset, env, event| {
            if env.client_id.0 == c.client_id {
                lines.push(format!(
                    "  p{partition}/seq {:>4} (offset {offset:>4})  {:<16} {:<24} v{}  hash {}…",
                    env.sequence,
                    env.aggregate_type.as_str(),
                    event.name(),
                    env.aggregate_version,
                    &env.hash[..12]
                ));
            }
            Ok(())
        })
        .await?;
        if lines.len() >= expected || tokio::time::Instant::now() > deadline {
            for l in &lines {
                println!("{l}");
            }
            println!(
                "── {} of {} events read back from Kafka (Avro, schema ids resolved at {})",
                lines.len(),
                expected,
                settings.schema_registry_url
            );
            return show_read_model(settings, c.client_id, &a, last_position).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads wallet A back through GraphQL, waiting for the projection to pass the last write.
async fn show_read_model(
    settings: &Settings,
    client: uuid::Uuid,
    wallet: &str,
    position: Value,
) -> anyhow::Result<()> {
    let token = etr_platform::dev_token(
        settings,
        &client.to_string(),
        etr_query_api::auth::Role::Client,
    )?;
    let query = "query($w: UUID!, $p: PositionInput) { wallet(id: $w, minPosition: $p) { balance held available } \
                 operations(walletId: $w, first: 5, minPosition: $p) { edges { node { serviceId amount statusCode status } } } }";
    let v: Value = reqwest::Client::new()
        .post(format!("http://{}/graphql", settings.query_api_addr))
        .bearer_auth(&token)
        .json(&json!({"query": query, "variables": {"w": wallet, "p": position}}))
        .send()
        .await?
        .json()
        .await?;
    println!(
        "── GraphQL http://{}/graphql, wallet A after the last write (minPosition {}):",
        settings.query_api_addr, position
    );
    println!("  {}", v["data"]["wallet"]);
    for edge in v["data"]["operations"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!("  operation {}", edge["node"]);
    }
    if !v["errors"].is_null() {
        println!("  errors: {}", v["errors"]);
    }
    // The auditor's view of the same client: the timeline read model and its state folded
    // as of the first event's time.
    let auditor =
        etr_platform::dev_token(settings, "demo-auditor", etr_query_api::auth::Role::Auditor)?;
    let query = "query($c: UUID!, $p: PositionInput) { clientTimeline(clientId: $c, first: 3, minPosition: $p) { \
                 edges { node { sequence eventType actorKind commandId occurredAt } } pageInfo { hasNextPage } } }";
    let v: Value = reqwest::Client::new()
        .post(format!("http://{}/graphql", settings.query_api_addr))
        .bearer_auth(&auditor)
        .json(&json!({"query": query, "variables": {"c": client, "p": position}}))
        .send()
        .await?
        .json()
        .await?;
    println!("── GraphQL clientTimeline as an auditor (first 3 events):");
    let edges = v["data"]["clientTimeline"]["edges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    for edge in &edges {
        println!("  {}", edge["node"]);
    }
    if let Some(first_at) = edges.first().map(|e| e["node"]["occurredAt"].clone()) {
        let query = "query($c: UUID!, $at: DateTime!) { clientStateAsOf(clientId: $c, at: $at) { events wallets { walletId balance } } }";
        let v: Value = reqwest::Client::new()
            .post(format!("http://{}/graphql", settings.query_api_addr))
            .bearer_auth(&auditor)
            .json(&json!({"query": query, "variables": {"c": client, "at": first_at}}))
            .send()
            .await?
            .json()
            .await?;
        println!(
            "── clientStateAsOf at the first event ({first_at}): {}",
            v["data"]["clientStateAsOf"]
        );
    }
    if !v["errors"].is_null() {
        println!("  errors: {}", v["errors"]);
    }
    Ok(())
}
