//! The demo scenario `etr up` runs: one client opens two wallets, tops up, pays (one payment
//! succeeds, one fails at the provider and is released), transfers, tries to overspend, and
//! then the events it wrote are read back from the log; then a partner takes a loan
//! application from registration to a disbursed loan through the conveyor.

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
            show_read_model(settings, c.client_id, &a, last_position).await?;
            return loan(settings).await;
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

/// A partner's loan application through the conveyor, with the simulators' answers: register
/// the client, apply, choose the first offer, sign with the SMS code (read from the SMS
/// simulator's books), bind a card, and read the loan's schedule and PSK from GraphQL.
async fn loan(settings: &Settings) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = format!("http://{}", settings.command_api_addr);
    let partner = format!(
        "Bearer {}",
        etr_platform::dev_token(settings, "demo-partner", etr_query_api::auth::Role::Partner)?
    );
    let run = Uuid::new_v4().simple().to_string();
    // A new person every run (a repeated passport or phone would be a duplicate client and go
    // to an operator).
    let n = Uuid::new_v4().as_u128();
    let phone = format!("+7916{:07}", n % 10_000_000);
    let passport = format!("{:04} {:06}", 4500 + (n >> 40) % 400, (n >> 64) % 1_000_000);
    let post = |path: String, key: String, body: Value| {
        let (http, partner) = (http.clone(), partner.clone());
        let url = format!("{base}{path}");
        async move {
            let resp = http
                .post(&url)
                .header("Idempotency-Key", key)
                .header(reqwest::header::AUTHORIZATION, partner)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = resp.status().as_u16();
            anyhow::Ok((status, resp.json::<Value>().await?))
        }
    };
    let get = |path: String| {
        let (http, partner) = (http.clone(), partner.clone());
        let url = format!("{base}{path}");
        async move {
            let v: Value = http
                .get(&url)
                .header(reqwest::header::AUTHORIZATION, partner)
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(v)
        }
    };
    let wait = |app: String, status: &'static str| async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let v = get(format!("/v1/partner/applications/{app}")).await?;
            if v["status"] == status {
                return anyhow::Ok(v);
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "the application stayed {} ({})",
                v["status"],
                v["process_step"]
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    println!("── demo: a partner's loan application through the conveyor");
    let (s, v) = post(
        "/v1/partner/clients".into(),
        format!("demo-{run}-client"),
        json!({"last_name": "Демидов", "first_name": "Иван", "birth_date": "1990-04-12",
               "phone": phone, "passport": {"number": passport, "issued_on": "2010-05-20",
               "department_code": "770-001", "issued_by": "ОВД Тверского района"},
               "monthly_income": "90000.00"}),
    )
    .await?;
    println!(
        "  {:<44} HTTP {s}  {}",
        "register the client (personal data sealed)",
        summary(&v)
    );
    let client = v["client_id"].as_str().unwrap_or_default().to_owned();
    let (s, v) = post(
        "/v1/partner/applications".into(),
        format!("demo-{run}-apply"),
        json!({"client_id": client, "amount": "15000.00", "currency": "RUB", "term": 30,
               "product_id": "payday-30"}),
    )
    .await?;
    println!(
        "  {:<44} HTTP {s}  {}",
        "apply for 15 000.00 RUB, 30 days",
        summary(&v)
    );
    let app = v["application_id"].as_str().unwrap_or_default().to_owned();
    let approved = wait(app.clone(), "approved").await?;
    let offer = &approved["offers"][0];
    println!(
        "  approved: score {}, PDN {} %, offer {} — PSK {} % ({} RUB)",
        approved["score"],
        approved["pdn_percent"],
        offer["product_id"],
        offer["psk_percent"],
        offer["psk_money"]
    );
    let (s, v) = post(
        format!("/v1/partner/applications/{app}/offer"),
        format!("demo-{run}-offer"),
        json!({"offer_id": offer["offer_id"]}),
    )
    .await?;
    println!("  {:<44} HTTP {s}  {}", "choose the offer", summary(&v));
    let generated = wait(app.clone(), "contract_generated").await?;
    println!(
        "  contract generated, SHA-256 {}",
        generated["contract_sha256"]
    );
    let (s, _) = post(
        format!("/v1/partner/applications/{app}/otp"),
        format!("demo-{run}-otp"),
        json!({}),
    )
    .await?;
    let pool = etr_infra::pg::connect_and_migrate(&settings.database_url, 1).await?;
    let text: String = sqlx::query_scalar(
        "SELECT text FROM simulator_sms WHERE phone = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(&phone)
    .fetch_one(&pool)
    .await?;
    let code = text
        .split(|c: char| !c.is_ascii_digit())
        .rfind(|w| !w.is_empty())
        .unwrap_or_default()
        .to_owned();
    println!("  {:<44} HTTP {s}  SMS: {text}", "send the signing code");
    let (s, v) = post(
        format!("/v1/partner/applications/{app}/sign"),
        format!("demo-{run}-sign"),
        json!({"code": code}),
    )
    .await?;
    println!("  {:<44} HTTP {s}  {}", "sign with the code", summary(&v));
    let (s, v) = post(
        format!("/v1/partner/applications/{app}/card"),
        format!("demo-{run}-card"),
        json!({"provider": "sbc", "card_token": "demo-card", "masked_pan": "220220******1234"}),
    )
    .await?;
    println!("  {:<44} HTTP {s}  {}", "bind a card", summary(&v));
    let disbursed = wait(app.clone(), "disbursed").await?;
    println!("  disbursed: loan {}", disbursed["loan_id"]);
    let loan = disbursed["loan_id"].as_str().unwrap_or_default();
    let quote = get(format!(
        "/v1/clients/{client}/loans/{loan}/early-repayment-quote"
    ))
    .await?;
    println!(
        "  early-repayment quote of {}: payoff {} RUB (valid until {}), prolongation fee {} RUB",
        quote["business_date"], quote["payoff"], quote["valid_until"], quote["prolongation_fee"]
    );
    Ok(())
}
