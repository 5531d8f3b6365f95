//! Alerts end to end on the real broker and Postgres (e-wallet spec §4): operators subscribe
//! to alert types and channels over REST; a client's registration, login, top-up, payment, a
//! top-up refused by its group's limit, the operator's block and a failed login raise alerts;
//! the notification simulator receives exactly the subscribed ones, once each, on the
//! channels both the subscription and the type allow, without the client's personal data; a
//! subscriber the gateway cannot reach is retried; GraphQL shows the catalogue, the
//! subscriptions and the deliveries, for operators only.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

struct Caller<'a> {
    api: &'a Api,
    bearer: String,
}

impl Caller<'_> {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .api
            .post_as(
                Some(&self.bearer),
                path,
                Some(&Uuid::new_v4().to_string()),
                &body.to_string(),
            )
            .await
            .unwrap();
        (status, body)
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .api
            .http
            .request(method, format!("{}{path}", self.api.base))
            .bearer_auth(&self.bearer);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// The (recipient, channel, type) of every notification the simulator received.
async fn received(pool: &sqlx::PgPool) -> BTreeSet<(String, String, String)> {
    sqlx::query_as::<_, (String, String, String)>(
        "SELECT recipient, channel, alert_type FROM simulator_alert_notifications",
    )
    .fetch_all(pool)
    .await
    .unwrap()
    .into_iter()
    .collect()
}

fn set(rows: &[(&str, &str, &str)]) -> BTreeSet<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn subscribed_alerts_reach_the_notifier_once_and_graphql_shows_them() {
    let env = Env::new("alerts").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let alice = Caller {
        api: &api,
        bearer: token("ops-alice", Role::Operator),
    };
    let unreachable = Caller {
        api: &api,
        bearer: token("ops-unreachable", Role::Operator),
    };
    let subscriptions = "/v1/operator/alert-subscriptions";

    // Refusals, each with its code; nothing is stored.
    let (status, body) = alice
        .post(
            subscriptions,
            json!({"alert_types": ["client.exploded"], "channels": ["email"]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_alert_type")),
        "{body}"
    );
    let (status, body) = alice
        .post(
            subscriptions,
            json!({"alert_types": ["template.deleted"], "channels": ["sms"]}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("no_common_channel")),
        "{body}"
    );
    let (status, body) = alice
        .post(
            subscriptions,
            json!({"alert_types": ["client.blocked"], "channels": ["email"], "extra": 1}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let client_caller = Caller {
        api: &api,
        bearer: token(&Uuid::new_v4().to_string(), Role::Client),
    };
    let (status, _) = client_caller
        .post(
            subscriptions,
            json!({"alert_types": ["client.blocked"], "channels": ["email"]}),
        )
        .await;
    assert_eq!(status, 403);

    // Alice subscribes to six types by e-mail and the web console; a subscription first made
    // for failed payments is changed to successful ones; one for another client's top-ups
    // and one removed again must deliver nothing.
    let (status, body) = alice
        .post(
            subscriptions,
            json!({"alert_types": ["wallet_registration.completed", "wallet.topped_up",
                                   "client.blocked", "limit.reached", "security.failed_login"],
                   "channels": ["email", "web"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["operator"], "ops-alice", "{body}");
    let (status, body) = alice
        .post(
            subscriptions,
            json!({"alert_types": ["payment.failed"], "channels": ["email", "web"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let changed = body["id"].as_str().unwrap().to_owned();
    let (status, body) = alice
        .send(
            reqwest::Method::PUT,
            &format!("{subscriptions}/{changed}"),
            Some(json!({"alert_types": ["payment.succeeded"], "channels": ["email", "web"]})),
        )
        .await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(2)), "{body}");
    let someone_else = Uuid::new_v4();
    let (status, body) = alice
        .post(
            subscriptions,
            json!({"alert_types": ["wallet.topped_up"], "channels": ["sms"],
                   "client_id": someone_else.to_string()}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = alice
        .post(
            subscriptions,
            json!({"alert_types": ["wallet.opened"], "channels": ["push"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let removed = body["id"].as_str().unwrap().to_owned();
    let (status, _) = alice
        .send(
            reqwest::Method::DELETE,
            &format!("{subscriptions}/{removed}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, _) = alice
        .send(
            reqwest::Method::DELETE,
            &format!("{subscriptions}/{removed}"),
            None,
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = unreachable
        .post(
            subscriptions,
            json!({"alert_types": ["client.blocked"], "channels": ["sms"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = alice.send(reqwest::Method::GET, subscriptions, None).await;
    assert_eq!(status, 200);
    assert_eq!(body.as_array().map(Vec::len), Some(4), "{body}");

    // The client registers (approved automatically), logs in (the account opens), tops up,
    // pays, and is refused a top-up above its group's limit; an operator blocks it; someone
    // tries to log in without a valid token.
    let client_id = Uuid::new_v4().to_string();
    let client = Caller {
        api: &api,
        bearer: token(&client_id, Role::Client),
    };
    let phone = format!("+7926{:07}", Uuid::new_v4().as_u128() % 10_000_000);
    let (status, body) = client
        .post(
            "/v1/me/wallet-registration",
            json!({"currency": "RUB", "personal": {"last_name": "Соколова", "first_name": "Анна",
                   "birth_date": "1991-07-02", "phone": phone, "email": "anna@example.ru"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let wallet = body["wallet_id"].as_str().unwrap().to_owned();
    let (status, body) = client
        .send(reqwest::Method::POST, "/v1/me/login", None)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = client
        .post(
            &format!("/v1/clients/{client_id}/wallets/{wallet}/top-ups"),
            json!({"amount": "1000.00", "currency": "RUB", "source": "card"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = client
        .post(
            &format!("/v1/clients/{client_id}/wallets/{wallet}/payments?wait=10"),
            json!({"amount": "300.00", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Refused by the limit, then the same request again: the replayed answer raises nothing
    // new (the alert is keyed by the command's id).
    let over_limit =
        json!({"amount": "900000.00", "currency": "RUB", "source": "card"}).to_string();
    let over_limit_key = Uuid::new_v4().to_string();
    let mut answers = Vec::new();
    for _ in 0..2 {
        answers.push(
            api.post_as(
                Some(&client.bearer),
                &format!("/v1/clients/{client_id}/wallets/{wallet}/top-ups"),
                Some(&over_limit_key),
                &over_limit,
            )
            .await
            .unwrap(),
        );
    }
    assert_eq!(
        (answers[0].0, answers[0].1, answers[1].0, answers[1].1),
        (422, false, 422, true),
        "{answers:?}"
    );
    let body = answers[1].2.clone();
    let limit_code = body["code"].as_str().unwrap_or_default().to_owned();
    assert!(
        etr_domain::alerts::LIMIT_CODES.contains(&limit_code.as_str()),
        "{body}"
    );
    let (status, body) = alice
        .post(
            &format!("/v1/operator/clients/{client_id}/block"),
            json!({"reason": "chargebacks"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let resp = api
        .http
        .post(format!("{}/v1/me/login", api.base))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // The simulator receives exactly the subscribed alerts on the channels each type allows
    // (a top-up goes to the web console only: e-mail is not one of its channels).
    let expected = set(&[
        ("ops-alice", "email", "wallet_registration.completed"),
        ("ops-alice", "web", "wallet_registration.completed"),
        ("ops-alice", "web", "wallet.topped_up"),
        ("ops-alice", "email", "payment.succeeded"),
        ("ops-alice", "web", "payment.succeeded"),
        ("ops-alice", "email", "limit.reached"),
        ("ops-alice", "web", "limit.reached"),
        ("ops-alice", "email", "client.blocked"),
        ("ops-alice", "web", "client.blocked"),
        ("ops-alice", "email", "security.failed_login"),
        ("ops-alice", "web", "security.failed_login"),
    ]);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = received(&pool).await;
        if got == expected {
            break;
        }
        assert!(
            got.is_subset(&expected) && Instant::now() < deadline,
            "received {got:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Nothing more arrives, each delivery was booked once, and no personal data travelled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rows: Vec<(String, Option<Uuid>, String)> =
        sqlx::query_as("SELECT alert_type, client_id, body FROM simulator_alert_notifications")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), expected.len(), "{rows:?}");
    for (alert_type, client, text) in &rows {
        assert!(
            !text.contains("Соколова") && !text.contains(&phone),
            "{text}"
        );
        if alert_type != "security.failed_login" {
            assert_eq!(client.map(|c| c.to_string()), Some(client_id.clone()));
        }
    }
    let topped_up = rows
        .iter()
        .find(|(t, _, _)| t == "wallet.topped_up")
        .map(|(_, _, text)| text.clone())
        .unwrap();
    assert!(
        topped_up.contains("amount=1000.00 RUB") && topped_up.contains("balance=1000.00 RUB"),
        "{topped_up}"
    );

    // The unreachable operator's SMS is retried, never booked.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (attempts, status, error): (i32, String, Option<String>) = sqlx::query_as(
            "SELECT attempts, status, last_error FROM alert_deliveries WHERE recipient = 'ops-unreachable'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if attempts >= 2 {
            assert_eq!(status, "pending");
            assert!(error.unwrap_or_default().contains("unreachable"));
            break;
        }
        assert!(Instant::now() < deadline, "not retried: {attempts}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // GraphQL: the catalogue, the subscriptions and the deliveries, paged and filtered.
    let operator_token = token("ops-alice", Role::Operator);
    let v = env
        .graphql(
            Some(&operator_token),
            "{ alertCatalogue { code origin channels attributes { name kind } } alertSubscriptions { operator alertTypes channels clientId version } }",
            json!({}),
        )
        .await;
    let catalogue = v["data"]["alertCatalogue"].as_array().unwrap();
    assert!(catalogue.len() >= 30, "{v}");
    let succeeded = catalogue
        .iter()
        .find(|t| t["code"] == "payment.succeeded")
        .unwrap();
    assert_eq!(succeeded["origin"], "LOG");
    assert_eq!(
        succeeded["attributes"],
        json!([{"name": "payment_id", "kind": "ID"}, {"name": "wallet_id", "kind": "ID"},
               {"name": "amount", "kind": "MONEY"}, {"name": "service_id", "kind": "TEXT"}]),
        "{succeeded}"
    );
    assert_eq!(
        v["data"]["alertSubscriptions"].as_array().map(Vec::len),
        Some(4),
        "{v}"
    );

    let page = "query($first: Int!, $after: String, $type: String, $client: ID) { alertDeliveries(first: $first, after: $after, type: $type, clientId: $client) { nodes { alertType channel recipient clientId status attempts attributes { name value } } endCursor hasNextPage } }";
    let v = env
        .graphql(
            Some(&operator_token),
            page,
            json!({"first": 2, "type": "client.blocked", "client": client_id}),
        )
        .await;
    let first = &v["data"]["alertDeliveries"];
    assert_eq!(first["hasNextPage"], true, "{v}");
    assert_eq!(first["nodes"].as_array().map(Vec::len), Some(2), "{v}");
    assert_eq!(
        first["nodes"][0]["attributes"],
        json!([{"name": "reason", "value": "chargebacks"}]),
        "{v}"
    );
    let v = env
        .graphql(
            Some(&operator_token),
            page,
            json!({"first": 2, "type": "client.blocked", "client": client_id,
                   "after": first["endCursor"]}),
        )
        .await;
    let second = &v["data"]["alertDeliveries"];
    assert_eq!(second["hasNextPage"], false, "{v}");
    let all: Vec<Value> = first["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["nodes"].as_array().unwrap())
        .cloned()
        .collect();
    let mut seen: Vec<(String, String, String)> = all
        .iter()
        .map(|n| {
            (
                n["recipient"].as_str().unwrap().to_owned(),
                n["channel"].as_str().unwrap().to_owned(),
                n["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("ops-alice".into(), "email".into(), "SENT".into()),
            ("ops-alice".into(), "web".into(), "SENT".into()),
            ("ops-unreachable".into(), "sms".into(), "PENDING".into()),
        ]
    );
    let v = env
        .graphql(
            Some(&operator_token),
            page,
            json!({"first": 50, "client": someone_else.to_string()}),
        )
        .await;
    assert_eq!(
        v["data"]["alertDeliveries"]["nodes"],
        json!([]),
        "another client's filter matched nothing: {v}"
    );

    // A restarted platform reads the log again from its checkpoints: nothing is queued or
    // delivered twice.
    let queued: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    platform.kill();
    let _platform = env.start(&["up", "--no-demo"]).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let queued_again: i64 = sqlx::query_scalar("SELECT count(*) FROM alert_deliveries")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(queued_again, queued);
    assert_eq!(received(&pool).await, expected);
    let booked: i64 = sqlx::query_scalar("SELECT count(*) FROM simulator_alert_notifications")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(booked, expected.len() as i64);

    // Clients read no alerts, not even their own.
    let v = env
        .graphql(
            Some(&client.bearer),
            page,
            json!({"first": 5, "client": client_id}),
        )
        .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
}
