//! The authorisation matrix: every REST route of `/openapi.json` called with no token, an
//! expired token, and each role — a client on its own data and on another client's, a
//! partner, an operator, an auditor — and every GraphQL root field that names a client's
//! data called the same way. Only what the rules allow gets past authorisation; a refusal
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
