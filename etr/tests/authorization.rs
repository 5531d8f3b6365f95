//! The authorisation matrix: every REST route of `/openapi.json` called with no token, an
//! expired token, and each role — a client on its own data and on another client's, a
//! partner, an operator, an auditor — and every GraphQL root field and subscription called
//! the same way (the second test; its rules are at `graphql_allowed`, and it fails when the
//! schema has a root field the matrix does not name). Only what the rules allow gets past authorisation; a refusal
//! is 401 (no or a bad token) or 403 (the role may not), carries nothing but its error, and
//! nothing answers 5xx. The rules, by route:
//!
//! - `/v1/operator/…`: operators only;
//! - `/v1/partner/…`: partners only;
//! - `/v1/me/…`: a client, for itself;
//! - `/v1/clients/{client_id}/…`: the client itself, a partner, an operator;
//! - the checkout's wallet routes (`/v1/checkout/orders/{id}/wallets`, `…/wallet-payment`):
//!   a signed-in buyer, i.e. any client;
//! - `/health`, `/openapi.json`, `/docs`, `/assets/…` and the rest of the buyer's checkout
//!   (the order, the card payment): anyone.
//!
//! GraphQL: a client reads only its own data (`FORBIDDEN` otherwise, with the field null);
//! partners, operators and auditors read any client's; without a valid token
//! `UNAUTHENTICATED`.

mod support;

use etr_query_api::auth::Role;
use serde_json::Value;
use std::collections::BTreeSet;
use support::lending::{person, platform_env, unique_passport, unique_phone, Flow};
use support::{token, Api, Env, JWT_SECRET};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Caller {
    Anonymous,
    Expired,
    OwnClient,
    OtherClient,
    Partner,
    Operator,
    Auditor,
}

const CALLERS: [Caller; 7] = [
    Caller::Anonymous,
    Caller::Expired,
    Caller::OwnClient,
    Caller::OtherClient,
    Caller::Partner,
    Caller::Operator,
    Caller::Auditor,
];

/// Who the rules let through on `path`.
fn allowed(path: &str) -> BTreeSet<Caller> {
    if path.starts_with("/v1/checkout/")
        && (path.ends_with("/wallets") || path.ends_with("/wallet-payment"))
    {
        return [Caller::OwnClient, Caller::OtherClient]
            .into_iter()
            .collect();
    }
    let public = ["/health", "/openapi.json", "/docs"];
    if public.contains(&path) || path.starts_with("/assets/") || path.starts_with("/v1/checkout/") {
        return CALLERS.into_iter().collect();
    }
    let set: &[Caller] = if path.starts_with("/v1/operator/") {
        &[Caller::Operator]
    } else if path.starts_with("/v1/partner/") {
        &[Caller::Partner]
    } else if path.starts_with("/v1/me/") {
        &[Caller::OwnClient, Caller::OtherClient]
    } else if path.starts_with("/v1/clients/{client_id}") {
        &[Caller::OwnClient, Caller::Partner, Caller::Operator]
    } else {
        panic!("no rule for {path}: add one to this test")
    };
    set.iter().copied().collect()
}

struct Tokens {
    own: String,
    other: String,
}

fn bearer(caller: Caller, tokens: &Tokens) -> Option<String> {
    let keys = etr_query_api::auth::Keys::from_secret(JWT_SECRET.as_bytes());
    match caller {
        Caller::Anonymous => None,
        Caller::Expired => Some(keys.issue("operator-x", Role::Operator, 1).expect("token")),
        Caller::OwnClient => Some(tokens.own.clone()),
        Caller::OtherClient => Some(tokens.other.clone()),
        Caller::Partner => Some(token("partner-matrix", Role::Partner)),
        Caller::Operator => Some(token("operator-matrix", Role::Operator)),
        Caller::Auditor => Some(token("auditor-matrix", Role::Auditor)),
    }
}

/// A refusal says why and nothing else.
fn leaks_nothing(body: &Value) -> bool {
    body.as_object().is_some_and(|o| {
        o.keys()
            .all(|k| k == "error" || k == "code" || k == "message")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_field_lets_through_only_whom_the_rules_allow() {
    let env = Env::new("authorization").await;
    let _etr = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let own = Uuid::new_v4().to_string();
    let other = Uuid::new_v4().to_string();
    let wallet = api.open_wallet(&own, "matrix-wallet").await;
    api.open_wallet(&other, "matrix-wallet").await;
    // The partner is a registered shop, so its order routes get past authorisation.
    let (status, _, merchant) = api
        .post_as(
            Some(&token("operator-matrix", Role::Operator)),
            "/v1/operator/merchants",
            None,
            r#"{"partner_id": "partner-matrix", "name": "Matrix shop", "callback_url": "http://127.0.0.1:9/callback"}"#,
        )
        .await
        .expect("the command API answers");
    assert_eq!(status, 201, "{merchant}");
    let tokens = Tokens {
        own: token(&own, Role::Client),
        other: token(&other, Role::Client),
    };
    let http = reqwest::Client::new();
    let doc: Value = http
        .get(format!("{}/openapi.json", env.api()))
        .send()
        .await
        .expect("the document")
        .json()
        .await
        .expect("JSON");
    let mut checked = 0;
    let mut problems = Vec::new();
    for (template, item) in doc["paths"].as_object().expect("paths") {
        let path = template
            .replace("{client_id}", &own)
            .replace("{wallet_id}", &wallet)
            .replace("{action}", "pause")
            .replace("{tag}", "vip")
            .replace("{*path}", "none.js");
        let path = path
            .split('/')
            .map(|s| {
                if s.starts_with('{') {
                    Uuid::new_v4().to_string()
                } else {
                    s.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let rules = allowed(template);
        for (method, operation) in item.as_object().expect("methods") {
            for caller in CALLERS {
                let mut request = http.request(
                    method.to_uppercase().parse().expect("a method"),
                    format!("{}{path}", env.api()),
                );
                if operation.get("requestBody").is_some() {
                    request = request
                        .header("content-type", "application/json")
                        .body("{}");
                }
                request = request.header("Idempotency-Key", Uuid::new_v4().to_string());
                if let Some(b) = bearer(caller, &tokens) {
                    request = request.bearer_auth(b);
                }
                let response = request.send().await.expect("the API answers");
                let status = response.status().as_u16();
                let body: Value = response.json().await.unwrap_or(Value::Null);
                checked += 1;
                let what = format!("{method} {template} as {caller:?}: {status} {body}");
                if status >= 500 {
                    problems.push(format!("server error: {what}"));
                } else if rules.contains(&caller) {
                    if status == 401 || status == 403 {
                        problems.push(format!("refused though allowed: {what}"));
                    }
                } else {
                    let expected = if matches!(caller, Caller::Anonymous | Caller::Expired) {
                        401
                    } else {
                        403
                    };
                    if status != expected {
                        problems.push(format!("expected {expected}: {what}"));
                    } else if !leaks_nothing(&body) {
                        problems.push(format!("a refusal that says more than why: {what}"));
                    }
                }
            }
        }
    }
    eprintln!("REST: {checked} calls checked");

    // GraphQL: every root field with a client's or wallet's id, as each caller.
    let fields = [
        (
            "client",
            format!(r#"client(id: "{own}") {{ clientId wallets {{ walletId balance }} }}"#),
        ),
        (
            "customer",
            format!(r#"customer(id: "{own}") {{ clientId }}"#),
        ),
        (
            "operations",
            format!(
                r#"operations(walletId: "{wallet}") {{ edges {{ node {{ paymentId amount }} }} }}"#
            ),
        ),
        (
            "clientTimeline",
            format!(r#"clientTimeline(clientId: "{own}") {{ edges {{ node {{ eventType }} }} }}"#),
        ),
    ];
    for (field, selection) in &fields {
        for caller in CALLERS {
            let token = bearer(caller, &tokens);
            let answer = env
                .graphql(token.as_deref(), &format!("{{ {selection} }}"), Value::Null)
                .await;
            let code = answer["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let data = &answer["data"][field];
            let may = match caller {
                Caller::Anonymous | Caller::Expired | Caller::OtherClient => false,
                Caller::Partner => *field != "clientTimeline",
                Caller::OwnClient | Caller::Operator | Caller::Auditor => true,
            };
            let what = format!("GraphQL {field} as {caller:?}: {answer}");
            if may {
                if !code.is_empty() {
                    problems.push(format!("refused though allowed: {what}"));
                }
            } else {
                let expected = if matches!(caller, Caller::Anonymous | Caller::Expired) {
                    "UNAUTHENTICATED"
                } else {
                    "FORBIDDEN"
                };
                if code != expected {
                    problems.push(format!("expected {expected}: {what}"));
                }
                let empty = data.is_null() || data["edges"].as_array().is_some_and(Vec::is_empty);
                if !empty {
                    problems.push(format!("a refusal with data: {what}"));
                }
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

/// Who may read each GraphQL root field (query and subscription), by the rules:
///
/// - the dictionaries (menu, services, sources, commission profiles and quotes, rates, map
///   points, phone ranges), a banner and the projections' status: anyone signed in;
/// - a client's wallets, operations, applications, loans, profile (`client`, `customer`,
///   `wallet`, `operations`, `operation`, `application`, `loan`, `operationStatusChanged`):
///   the client itself, partners, operators, auditors;
/// - a client's timeline and balance reports (`clientTimeline`, `clientStateAsOf`,
///   `clientChanged`, `turnoverSheet`, `dailyBalances`, `balanceChart`): the client itself,
///   operators, auditors;
/// - operators' tools (API request statistics, alerts, advertising, wallet registrations):
///   operators only.
///
/// `application`, `loan` and `operation` are asked for the own client's real ids; asked for
/// ids no one has, every signed-in caller gets `null` without a refusal (whose data it would
/// be is not known), and without a token `UNAUTHENTICATED` (checked after the matrix).
fn graphql_allowed(field: &str) -> Vec<Caller> {
    use Caller::*;
    let signed_in = vec![OwnClient, OtherClient, Partner, Operator, Auditor];
    let client_data = vec![OwnClient, Partner, Operator, Auditor];
    let audit = vec![OwnClient, Operator, Auditor];
    match field {
        "dictionaryVersion" | "menu" | "services" | "paymentSources" | "commissionProfiles"
        | "currencyRates" | "mapPoints" | "phoneNumberInfo" | "commissionQuote" | "banner"
        | "projectionStatus" => signed_in,
        "client"
        | "customer"
        | "wallet"
        | "operations"
        | "operation"
        | "application"
        | "loan"
        | "operationStatusChanged" => client_data,
        "clientTimeline" | "clientStateAsOf" | "clientChanged" | "turnoverSheet"
        | "dailyBalances" | "balanceChart" => audit,
        "apiRequestStatsLive"
        | "apiRequestStatsByDay"
        | "apiRequestStatsByClient"
        | "alertCatalogue"
        | "alertSubscriptions"
        | "alertDeliveries"
        | "advertisingPlaces"
        | "advertisingCampaigns"
        | "advertisingBanners"
        | "walletRegistrations" => {
            vec![Operator]
        }
        other => panic!("no rule for the GraphQL field {other}: add one to this test"),
    }
}

/// The error code of a refusal by authorisation in a GraphQL answer, if any.
fn refusal_code(answer: &Value) -> Option<String> {
    answer["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["extensions"]["code"].as_str())
        .find(|c| *c == "UNAUTHENTICATED" || *c == "FORBIDDEN")
        .map(str::to_owned)
}

/// Subscribes over `graphql-transport-ws` with `bearer` and returns the refusal code, if the
/// subscription is refused within two seconds (an error message, or the socket closed with
/// 4401/4403); `None` when it is running.
async fn subscription_refusal(env: &Env, bearer: Option<&str>, query: &str) -> Option<String> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let mut request = format!("ws://{}/graphql/ws", env.query_addr)
        .into_client_request()
        .expect("a request");
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("a header"),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("the query API takes websockets");
    let payload = bearer.map_or(
        serde_json::json!({}),
        |t| serde_json::json!({"Authorization": format!("Bearer {t}")}),
    );
    let init = serde_json::json!({"type": "connection_init", "payload": payload});
    ws.send(Message::text(init.to_string()))
        .await
        .expect("sent");
    let subscribe =
        serde_json::json!({"id": "1", "type": "subscribe", "payload": {"query": query}});
    let mut subscribed = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let message = match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => return None,
            Ok(None) => return Some("CLOSED".into()),
            Ok(Some(m)) => m.expect("a websocket message"),
        };
        match message {
            Message::Close(frame) => {
                let code = frame.map_or(0, |f| u16::from(f.code));
                return Some(match code {
                    4401 => "UNAUTHENTICATED".into(),
                    4403 => "FORBIDDEN".into(),
                    other => format!("CLOSED {other}"),
                });
            }
            Message::Text(text) => {
                let v: Value = serde_json::from_str(&text).expect("JSON");
                match v["type"].as_str() {
                    Some("connection_ack") if !subscribed => {
                        subscribed = true;
                        ws.send(Message::text(subscribe.to_string()))
                            .await
                            .expect("sent");
                    }
                    Some("ping") => {
                        let pong = serde_json::json!({"type": "pong"}).to_string();
                        ws.send(Message::text(pong)).await.expect("sent");
                    }
                    Some("error") => {
                        let errors = serde_json::json!({"errors": v["payload"]});
                        return Some(refusal_code(&errors).unwrap_or_else(|| format!("ERROR {v}")));
                    }
                    Some("next") => {
                        if let Some(code) = refusal_code(&v["payload"]) {
                            return Some(code);
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_graphql_field_and_subscription_lets_through_only_whom_the_rules_allow() {
    let env = Env::new("authorization_graphql").await;
    let pool = sqlx::PgPool::connect(&env.database_url)
        .await
        .expect("Postgres");
    let _etr = env.start_with(platform_env(&env, &[])).await;
    let api = Api::new(&env);
    // The own client is registered and taken through the conveyor to a disbursed loan and
    // pays from its wallet, so `application`, `loan` and `operation` are asked for real ids
    // of one client.
    let partner = Flow {
        api: &api,
        pool: &pool,
        bearer: token("partner-matrix", Role::Partner),
        base: "/v1/partner/applications",
    };
    let phone = unique_phone();
    let (status, registered) = partner
        .post(
            "/v1/partner/clients",
            "matrix-register",
            person("Матрицына", &phone, &unique_passport()),
        )
        .await;
    assert_eq!(status, 201, "{registered}");
    let own = registered["client_id"]
        .as_str()
        .expect("a client id")
        .to_owned();
    let other = Uuid::new_v4().to_string();
    let wallet = api.open_wallet(&own, "matrix-wallet").await;
    api.open_wallet(&other, "matrix-wallet").await;
    let application = partner
        .create(Some(&own), "12000.00", 30, "payday-30")
        .await;
    partner
        .sign_and_bind(&application, &phone, "tok-matrix")
        .await;
    let disbursed = partner.wait(&application, &["disbursed"]).await;
    let loan = disbursed["loan_id"].as_str().expect("a loan id").to_owned();
    let (status, _, topped) = api
        .post(
            &format!("/v1/clients/{own}/wallets/{wallet}/top-ups"),
            Some("matrix-top-up"),
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .expect("the command API answers");
    assert_eq!(status, 200, "{topped}");
    let (status, _, paid) = api
        .post(
            &format!("/v1/clients/{own}/wallets/{wallet}/payments?wait=10"),
            Some("matrix-payment"),
            r#"{"amount":"100.00","currency":"RUB","service_id":"mobile"}"#,
        )
        .await
        .expect("the command API answers");
    assert_eq!(status, 200, "{paid}");
    let operation = paid["payment"]["payment_id"]
        .as_str()
        .expect("a payment id")
        .to_owned();
    let tokens = Tokens {
        own: token(&own, Role::Client),
        other: token(&other, Role::Client),
    };
    // The three are in the read models before the matrix asks for them.
    let operator = token("operator-matrix", Role::Operator);
    for (field, id) in [
        ("application", &application),
        ("loan", &loan),
        ("operation", &operation),
    ] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answer = env
                .graphql(
                    Some(&operator),
                    &format!(r#"{{ {field}(id: "{id}") {{ __typename }} }}"#),
                    Value::Null,
                )
                .await;
            if !answer["data"][field].is_null() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{field} {id} never reached its read model: {answer}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
    let period = r#"from: "2026-11-01", to: "2026-12-31""#;
    let queries: Vec<(&str, String)> = vec![
        (
            "wallet",
            format!(r#"wallet(id: "{wallet}") {{ __typename }}"#),
        ),
        ("client", format!(r#"client(id: "{own}") {{ __typename }}"#)),
        (
            "operation",
            format!(r#"operation(id: "{operation}") {{ __typename }}"#),
        ),
        (
            "operations",
            format!(r#"operations(walletId: "{wallet}") {{ __typename }}"#),
        ),
        (
            "application",
            format!(r#"application(id: "{application}") {{ __typename }}"#),
        ),
        ("loan", format!(r#"loan(id: "{loan}") {{ __typename }}"#)),
        (
            "customer",
            format!(r#"customer(id: "{own}") {{ __typename }}"#),
        ),
        (
            "walletRegistrations",
            "walletRegistrations { __typename }".into(),
        ),
        (
            "clientTimeline",
            format!(r#"clientTimeline(clientId: "{own}") {{ __typename }}"#),
        ),
        (
            "clientStateAsOf",
            format!(
                r#"clientStateAsOf(clientId: "{own}", at: "2026-12-01T00:00:00Z") {{ __typename }}"#
            ),
        ),
        (
            "turnoverSheet",
            format!(r#"turnoverSheet({period}, clientId: "{own}") {{ __typename }}"#),
        ),
        (
            "dailyBalances",
            format!(r#"dailyBalances({period}, clientId: "{own}") {{ __typename }}"#),
        ),
        (
            "balanceChart",
            format!(r#"balanceChart({period}, clientId: "{own}") {{ __typename }}"#),
        ),
        (
            "apiRequestStatsLive",
            "apiRequestStatsLive { __typename }".into(),
        ),
        (
            "apiRequestStatsByDay",
            format!("apiRequestStatsByDay({period}) {{ __typename }}"),
        ),
        (
            "apiRequestStatsByClient",
            format!(r#"apiRequestStatsByClient(clientId: "{own}") {{ __typename }}"#),
        ),
        (
            "dictionaryVersion",
            "dictionaryVersion { __typename }".into(),
        ),
        ("menu", "menu { __typename }".into()),
        ("services", "services { __typename }".into()),
        ("paymentSources", "paymentSources { __typename }".into()),
        (
            "commissionProfiles",
            "commissionProfiles { __typename }".into(),
        ),
        ("currencyRates", "currencyRates { __typename }".into()),
        ("mapPoints", "mapPoints { __typename }".into()),
        (
            "phoneNumberInfo",
            r#"phoneNumberInfo(number: "+79161234567") { __typename }"#.into(),
        ),
        (
            "commissionQuote",
            r#"commissionQuote(service: "mts", amount: "100.00", source: "wallet") { __typename }"#
                .into(),
        ),
        ("alertCatalogue", "alertCatalogue { __typename }".into()),
        (
            "alertSubscriptions",
            "alertSubscriptions { __typename }".into(),
        ),
        ("alertDeliveries", "alertDeliveries { __typename }".into()),
        (
            "advertisingPlaces",
            "advertisingPlaces { __typename }".into(),
        ),
        (
            "advertisingCampaigns",
            "advertisingCampaigns { __typename }".into(),
        ),
        (
            "advertisingBanners",
            "advertisingBanners { __typename }".into(),
        ),
        (
            "banner",
            r#"banner(placeId: "content") { __typename }"#.into(),
        ),
        ("projectionStatus", "projectionStatus { __typename }".into()),
    ];
    let subscriptions: Vec<(&str, String)> = vec![
        (
            "operationStatusChanged",
            format!(
                r#"subscription {{ operationStatusChanged(walletId: "{wallet}") {{ paymentId }} }}"#
            ),
        ),
        (
            "clientChanged",
            format!(r#"subscription {{ clientChanged(clientId: "{own}") {{ __typename }} }}"#),
        ),
    ];

    // Every root field of the schema is in the matrix.
    let introspection = env
        .graphql(
            Some(&tokens.own),
            "{ __schema { queryType { fields { name } } subscriptionType { fields { name } } } }",
            Value::Null,
        )
        .await;
    let mut in_schema: Vec<String> = ["queryType", "subscriptionType"]
        .iter()
        .flat_map(|t| {
            introspection["data"]["__schema"][*t]["fields"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|f| f["name"].as_str().map(str::to_owned))
        .collect();
    in_schema.sort();
    let mut in_matrix: Vec<String> = queries
        .iter()
        .chain(&subscriptions)
        .map(|(f, _)| (*f).to_owned())
        .collect();
    in_matrix.sort();
    assert_eq!(
        in_schema, in_matrix,
        "the matrix must name every root field"
    );

    let mut problems = Vec::new();
    let mut checked = 0;
    for caller in CALLERS {
        let bearer = bearer(caller, &tokens);
        let expected = if matches!(caller, Caller::Anonymous | Caller::Expired) {
            "UNAUTHENTICATED"
        } else {
            "FORBIDDEN"
        };
        for (field, selection) in &queries {
            let answer = env
                .graphql(
                    bearer.as_deref(),
                    &format!("{{ {selection} }}"),
                    Value::Null,
                )
                .await;
            checked += 1;
            let code = refusal_code(&answer);
            let what = format!("{field} as {caller:?}: {answer}");
            let server_failure = answer["errors"].as_array().into_iter().flatten().any(|e| {
                matches!(
                    e["extensions"]["code"].as_str(),
                    Some("INTERNAL" | "UNAVAILABLE")
                )
            });
            if server_failure {
                problems.push(format!("a server failure: {what}"));
            }
            if graphql_allowed(field).contains(&caller) {
                if code.is_some() {
                    problems.push(format!("refused though allowed: {what}"));
                }
            } else {
                if code.as_deref() != Some(expected) {
                    problems.push(format!("expected {expected}: {what}"));
                }
                if !(answer["data"].is_null() || answer["data"][field].is_null()) {
                    problems.push(format!("a refusal with data: {what}"));
                }
            }
        }
        for (field, query) in &subscriptions {
            let code = subscription_refusal(&env, bearer.as_deref(), query).await;
            checked += 1;
            let what = format!("subscription {field} as {caller:?}: {code:?}");
            if graphql_allowed(field).contains(&caller) {
                if code.is_some() {
                    problems.push(format!("refused though allowed: {what}"));
                }
            } else if code.as_deref() != Some(expected) {
                problems.push(format!("expected {expected}: {what}"));
            }
        }
    }
    // Ids no one has: `null` for every signed-in caller, `UNAUTHENTICATED` without a token.
    let nobody = Uuid::new_v4();
    for caller in CALLERS {
        let bearer = bearer(caller, &tokens);
        for field in ["application", "loan", "operation"] {
            let answer = env
                .graphql(
                    bearer.as_deref(),
                    &format!(r#"{{ {field}(id: "{nobody}") {{ __typename }} }}"#),
                    Value::Null,
                )
                .await;
            checked += 1;
            let code = refusal_code(&answer);
            let expected = match caller {
                Caller::Anonymous | Caller::Expired => Some("UNAUTHENTICATED"),
                _ => None,
            };
            if code.as_deref() != expected || !answer["data"][field].is_null() {
                problems.push(format!(
                    "{field} of an unknown id as {caller:?}: expected {expected:?}, {answer}"
                ));
            }
        }
    }
    eprintln!("GraphQL: {checked} calls checked");
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
