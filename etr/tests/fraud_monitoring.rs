//! Fraud monitoring end to end on the real broker and Postgres (e-wallet spec §8.3): an
//! operator writes rules through the command API; requests past a rule's limit are refused
//! with 429, `Retry-After` and the rule as the reason on the REST command API and on GraphQL;
//! a refused command writes nothing; another client is not affected; the request statistics
//! operators read over GraphQL show the counted and the refused requests.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

const RULES: &str = "/v1/operator/fraud-rules";

async fn send(
    api: &Api,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, Option<String>, Value) {
    let mut r = api.http.request(method, format!("{}{path}", api.base));
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

/// POSTs a top-up of 100.00 under `key` as `client`; status, Retry-After and body.
async fn top_up(api: &Api, client: &str, wallet: &str, key: &str) -> (u16, Option<String>, Value) {
    let resp = api
        .http
        .post(format!(
            "{}/v1/clients/{client}/wallets/{wallet}/top-ups",
            api.base
        ))
        .bearer_auth(token(client, Role::Client))
        .header("Idempotency-Key", key)
        .header("content-type", "application/json")
        .body(json!({"amount": "100.00", "currency": "RUB", "source": "card"}).to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap_or(Value::Null))
}

/// A GraphQL POST with an optional `X-Interface-Type`; status, Retry-After and body.
async fn graphql(
    env: &Env,
    bearer: Option<&str>,
    interface: Option<&str>,
    query: &str,
    variables: Value,
) -> (u16, Option<String>, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("http://{}/graphql", env.query_addr))
        .json(&json!({"query": query, "variables": variables}));
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    if let Some(i) = interface {
        r = r.header("X-Interface-Type", i);
    }
    let resp = r.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, resp.json().await.unwrap())
}

fn seconds(retry: &Option<String>) -> u64 {
    retry
        .as_deref()
        .expect("a Retry-After header")
        .parse()
        .expect("whole seconds")
}

fn sum(rows: &Value, field: &str, keep: impl Fn(&Value) -> bool) -> i64 {
    rows.as_array()
        .unwrap()
        .iter()
        .filter(|r| keep(r))
        .map(|r| r[field].as_i64().unwrap())
        .sum()
}

const STAT_FIELDS: &str =
    "hour api interfaceType level ip clientId route statusClass requests refused";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fraud_rules_refuse_requests_past_their_limits_on_both_apis_and_operators_see_them() {
    let env = Env::new("fraud_monitoring").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let operator = token("operator-1", Role::Operator);
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let delete = reqwest::Method::DELETE;

    // The routes are in the OpenAPI document.
    let (status, _, doc) = send(&api, get.clone(), "/openapi.json", None, None).await;
    assert_eq!(status, 200);
    let paths = &doc["paths"];
    assert!(
        paths[RULES]["get"].is_object() && paths[RULES]["post"].is_object(),
        "{paths}"
    );
    let one = &paths["/v1/operator/fraud-rules/{rule_id}"];
    assert!(
        one["put"].is_object() && one["delete"].is_object(),
        "{paths}"
    );
    assert!(doc["components"]["schemas"]["NewFraudRule"].is_object());

    // While no rule is stored, the built-in defaults are in force.
    let (status, _, rules) = send(&api, get.clone(), RULES, Some(&operator), None).await;
    assert_eq!(status, 200, "{rules}");
    let ids: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["ip_unauthenticated", "client_authenticated"],
        "{rules}"
    );
    assert!(rules
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["built_in"] == true));

    // Bad rules are refused with their codes; only operators manage rules.
    let rule = |id: &str, level: &str, key: &str, limit: i64, prefix: Option<&str>| {
        json!({"id": id, "level": level, "key": key, "limit": limit, "period_secs": 60,
               "route_prefix": prefix})
    };
    let client_token = token(&Uuid::new_v4().to_string(), Role::Client);
    for (bearer, body, expected, code) in [
        (
            &client_token,
            rule("r", "authenticated", "client", 3, None),
            403,
            "forbidden",
        ),
        (
            &operator,
            rule("Bad Id", "authenticated", "client", 3, None),
            400,
            "invalid_fraud_rule_id",
        ),
        (
            &operator,
            rule("r", "unauthenticated", "client", 3, None),
            422,
            "client_key_needs_authentication",
        ),
        (
            &operator,
            rule("r", "authenticated", "token", 3, None),
            400,
            "invalid_key",
        ),
        (
            &operator,
            rule("r", "authenticated", "ip", 0, None),
            422,
            "invalid_limit",
        ),
        (
            &operator,
            rule("r", "authenticated", "ip", 3, Some("v1/clients")),
            400,
            "invalid_route_prefix",
        ),
        (
            &operator,
            json!({"id": "r", "level": "authenticated", "key": "ip", "limit": 3, "period_secs": 86401}),
            422,
            "invalid_period",
        ),
        (
            &operator,
            json!({"id": "r", "level": "authenticated", "key": "ip", "limit": 3, "period_secs": 60, "interface_type": "fridge"}),
            400,
            "invalid_interface_type",
        ),
        (
            &operator,
            json!({"id": "r", "level": "authenticated", "key": "ip", "limit": 3, "period_secs": 60, "burst": 5}),
            400,
            "unknown_field",
        ),
    ] {
        let (status, _, body) = send(&api, post.clone(), RULES, Some(bearer), Some(body)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (expected, Some(code)),
            "{body}"
        );
    }
    let settings =
        json!({"level": "authenticated", "key": "client", "limit": 3, "period_secs": 60});
    let (status, _, body) = send(
        &api,
        put.clone(),
        &format!("{RULES}/nothing"),
        Some(&operator),
        Some(settings.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("fraud_rule_not_found")),
        "{body}"
    );

    // The operator's rules: 3 requests a minute per client on the clients' routes, 3 GraphQL
    // requests a minute per client from Android, 5 unauthenticated requests a minute per
    // address.
    let topups = rule(
        "topups_per_client",
        "authenticated",
        "client",
        3,
        Some("/v1/clients/"),
    );
    let mut android = rule(
        "android_graphql",
        "authenticated",
        "client",
        3,
        Some("/graphql"),
    );
    android["interface_type"] = json!("android");
    let anonymous = rule("anon_per_ip", "unauthenticated", "ip", 5, None);
    for body in [&topups, &android, &anonymous] {
        let (status, _, created) = send(
            &api,
            post.clone(),
            RULES,
            Some(&operator),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(
            (created["version"].as_i64(), created["built_in"].as_bool()),
            (Some(1), Some(false)),
            "{created}"
        );
        assert_eq!(created["updated_by"], "operator:operator-1", "{created}");
    }
    let (status, _, body) = send(
        &api,
        post.clone(),
        RULES,
        Some(&operator),
        Some(topups.clone()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("fraud_rule_exists")),
        "{body}"
    );
    let (_, _, rules) = send(&api, get.clone(), RULES, Some(&operator), None).await;
    assert_eq!(rules.as_array().unwrap().len(), 3, "{rules}");
    // Every process reloads the rules every second.
    tokio::time::sleep(Duration::from_millis(2_500)).await;

    // Client A: opening the wallet and two top-ups pass, the third top-up is refused.
    let a = Uuid::new_v4().to_string();
    let wallet_a = api.open_wallet(&a, "open").await;
    for key in ["t1", "t2"] {
        let (status, _, body) = top_up(&api, &a, &wallet_a, key).await;
        assert_eq!(status, 200, "{body}");
    }
    let events_before: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE client_id = $1::uuid")
            .bind(&a)
            .fetch_one(&pool)
            .await
            .unwrap();
    let (status, retry, body) = top_up(&api, &a, &wallet_a, "t3").await;
    assert_eq!(status, 429, "{body}");
    let wait = seconds(&retry);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(body["error"]["reason"], "topups_per_client", "{body}");
    assert_eq!(body["error"]["retry_after"], wait, "{body}");
    // Nothing of the refused command was written.
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM command_records WHERE command_id = $1")
            .bind(format!("{a}/t3"))
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recorded, 0);
    let events_after: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE client_id = $1::uuid")
            .bind(&a)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(events_after, events_before);

    // Client B is not affected.
    let b = Uuid::new_v4().to_string();
    let wallet_b = api.open_wallet(&b, "open").await;
    let (status, _, body) = top_up(&api, &b, &wallet_b, "t1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["wallets"][0]["balance"], "100.00", "{body}");

    // GraphQL from Android: three queries pass, the fourth is refused in GraphQL's shape.
    let a_token = token(&a, Role::Client);
    let query = "query($id: UUID!) { wallet(id: $id) { balance } }";
    for _ in 0..3 {
        let (status, _, body) = graphql(
            &env,
            Some(&a_token),
            Some("android"),
            query,
            json!({"id": wallet_a}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(body["errors"].is_null(), "{body}");
    }
    let (status, retry, body) = graphql(
        &env,
        Some(&a_token),
        Some("android"),
        query,
        json!({"id": wallet_a}),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let wait = seconds(&retry);
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "RATE_LIMITED", "{body}");
    assert_eq!(error["extensions"]["reason"], "android_graphql", "{body}");
    assert_eq!(error["extensions"]["retryAfter"], wait, "{body}");
    assert!(error["message"].as_str().is_some(), "{body}");
    // The same client from the web is not counted by that rule.
    let (status, _, body) = graphql(
        &env,
        Some(&a_token),
        Some("web"),
        query,
        json!({"id": wallet_a}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // An interface type that is not one of the types is refused.
    let (status, _, body) = graphql(
        &env,
        Some(&a_token),
        Some("fridge"),
        query,
        json!({"id": wallet_a}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["reason"],
        "invalid_interface_type"
    );

    // Without a valid token: five requests from this address are answered, the sixth refused.
    for bearer in [None, Some("forged"), None, Some("forged"), None] {
        let (status, _, body) = send(
            &api,
            post.clone(),
            &format!("/v1/clients/{a}/wallets/{wallet_a}/top-ups"),
            bearer,
            Some(json!({"amount": "100.00", "currency": "RUB", "source": "card"})),
        )
        .await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, retry, body) = send(&api, get.clone(), RULES, None, None).await;
    assert_eq!(status, 429, "{body}");
    assert!(seconds(&retry) >= 1);
    assert_eq!(body["error"]["reason"], "anon_per_ip", "{body}");
    // Health checks stay exempt.
    let health = api
        .http
        .get(format!("{}/health", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Subscriptions still open over the websocket (its upgrade is counted, not refused).
    let mut socket = support::subscribe(
        &env,
        Some(&a_token),
        "subscription($w: UUID!) { operationStatusChanged(walletId: $w) { status } }",
        json!({"w": wallet_a}),
    )
    .await;
    support::send(&mut socket, json!({"id": "1", "type": "complete"})).await;

    // The operator switches the top-up rule off: the refused top-up, sent again under its
    // key, now passes, and the balance counts it once.
    let mut off = topups.clone();
    off.as_object_mut().unwrap().remove("id");
    off["active"] = json!(false);
    let (status, _, body) = send(
        &api,
        put.clone(),
        &format!("{RULES}/topups_per_client"),
        Some(&operator),
        Some(off),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["version"].as_i64(), body["active"].as_bool()),
        (Some(2), Some(false))
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    let body = loop {
        let (status, _, body) = top_up(&api, &a, &wallet_a, "t3").await;
        if status == 200 {
            break body;
        }
        assert_eq!(status, 429, "{body}");
        assert!(Instant::now() < deadline, "the rule was never switched off");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert_eq!(body["wallets"][0]["balance"], "300.00", "{body}");

    // The statistics, over GraphQL, for operators only.
    let by_client = format!(
        "query($c: String!) {{ apiRequestStatsByClient(clientId: $c) {{ {STAT_FIELDS} }} }}"
    );
    let (_, _, body) = graphql(&env, Some(&a_token), None, &by_client, json!({"c": a})).await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{body}"
    );
    let top_ups_route = "/v1/clients/{client_id}/wallets/{wallet_id}/top-ups";
    let deadline = Instant::now() + Duration::from_secs(15);
    let rows = loop {
        let (status, _, body) =
            graphql(&env, Some(&operator), None, &by_client, json!({"c": a})).await;
        assert_eq!(status, 200, "{body}");
        assert!(body["errors"].is_null(), "{body}");
        let rows = body["data"]["apiRequestStatsByClient"].clone();
        let queries = sum(&rows, "requests", |r| r["api"] == "QUERY");
        let accepted_top_ups = sum(&rows, "requests", |r| {
            r["route"] == top_ups_route && r["statusClass"] == "2xx"
        });
        if queries >= 6 && accepted_top_ups >= 3 {
            break rows;
        }
        assert!(Instant::now() < deadline, "statistics not flushed: {rows}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let refused_top_ups = sum(&rows, "refused", |r| r["route"] == top_ups_route);
    assert!(refused_top_ups >= 1, "{rows}");
    assert_eq!(
        sum(&rows, "refused", |r| r["api"] == "QUERY"
            && r["interfaceType"] == "ANDROID"
            && r["route"] == "/graphql"),
        1,
        "{rows}"
    );
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["clientId"] == json!(a)
            && r["level"] == "AUTHENTICATED"
            && r["ip"] == "127.0.0.1"));

    let live = format!(
        "query($f: ApiRequestFilter) {{ apiRequestStatsLive(filter: $f) {{ {STAT_FIELDS} }} }}"
    );
    let (_, _, body) = graphql(
        &env,
        Some(&operator),
        None,
        &live,
        json!({"f": {"api": "COMMAND", "level": "UNAUTHENTICATED"}}),
    )
    .await;
    let rows = &body["data"]["apiRequestStatsLive"];
    assert!(sum(rows, "requests", |_| true) >= 6, "{body}");
    assert_eq!(sum(rows, "refused", |_| true), 1, "{body}");
    assert!(rows
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["clientId"].is_null() && r["api"] == "COMMAND"));
    let (_, _, body) = graphql(
        &env,
        Some(&operator),
        None,
        &live,
        json!({"f": {"refusedOnly": true}}),
    )
    .await;
    let rows = &body["data"]["apiRequestStatsLive"];
    assert!(sum(rows, "refused", |_| true) >= 3, "{body}");

    let today = time::OffsetDateTime::now_utc().date().to_string();
    let (_, _, body) = graphql(
        &env,
        Some(&operator),
        None,
        "query($d: Date!) { apiRequestStatsByDay(from: $d, to: $d) { day requests refused successful clientErrors serverErrors } }",
        json!({"d": today}),
    )
    .await;
    let days = body["data"]["apiRequestStatsByDay"].as_array().unwrap();
    assert_eq!(days.len(), 1, "{body}");
    assert_eq!(days[0]["day"], json!(today), "{body}");
    assert!(days[0]["refused"].as_i64().unwrap() >= 3, "{body}");
    assert!(days[0]["successful"].as_i64().unwrap() >= 10, "{body}");
    assert!(
        days[0]["clientErrors"].as_i64().unwrap() >= days[0]["refused"].as_i64().unwrap() + 5,
        "{body}"
    );
    let (_, _, body) = graphql(
        &env,
        Some(&operator),
        None,
        "{ apiRequestStatsByDay(from: \"2026-02-01\", to: \"2026-01-01\") { day } }",
        json!({}),
    )
    .await;
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PERIOD_INVERTED",
        "{body}"
    );

    // Deleting every rule brings the defaults back.
    for id in ["topups_per_client", "android_graphql", "anon_per_ip"] {
        let (status, _, body) = send(
            &api,
            delete.clone(),
            &format!("{RULES}/{id}"),
            Some(&operator),
            None,
        )
        .await;
        assert_eq!(status, 204, "{body}");
    }
    let (status, _, body) = send(
        &api,
        delete.clone(),
        &format!("{RULES}/anon_per_ip"),
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("fraud_rule_not_found")),
        "{body}"
    );
    let (_, _, rules) = send(&api, get, RULES, Some(&operator), None).await;
    assert!(
        rules
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["built_in"] == true),
        "{rules}"
    );
}
