//! Templates and autopayments end to end on the real broker and Postgres (e-wallet spec
//! §3.2): a client saves a template and runs it every 5 seconds; each run is a payment through
//! the same limits and lifecycle, recorded with its outcome; when the wallet runs dry the
//! failures are notified to the client and the autopayment pauses after two in a row.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_autopayment_runs_on_its_schedule_and_pauses_after_failures_in_a_row() {
    let env = Env::new("autopayments").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let bearer = token(&client, Role::Client);
    let post = |path: String, body: Value| {
        let api = &api;
        async move {
            let (status, _, body) = api
                .post(&path, Some(&Uuid::new_v4().to_string()), &body.to_string())
                .await
                .unwrap();
            (status, body)
        }
    };
    let wallet = api.open_wallet(&client, &Uuid::new_v4().to_string()).await;
    let (status, body) = post(
        format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
        json!({"amount": "1000.00", "currency": "RUB", "source": "card"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let (status, body) = post(
        format!("/v1/clients/{client}/templates"),
        json!({"name": "Телефон", "wallet_id": wallet, "service_id": "mobile",
               "amount": "300.00", "currency": "RUB", "attributes": {"phone": "+79001234567"}}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let template = body["template_id"].as_str().unwrap().to_owned();

    // Bad schedules are refused before anything is written.
    let (status, body) = post(
        format!("/v1/clients/{client}/autopayments"),
        json!({"template_id": template, "every": {"unit": "fortnight", "count": 1}}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_schedule")),
        "{body}"
    );
    let (status, body) = post(
        format!("/v1/clients/{client}/autopayments"),
        json!({"template_id": template, "every": {"unit": "second", "count": 1}}),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    let (status, body) = post(
        format!("/v1/clients/{client}/autopayments"),
        json!({"template_id": template, "every": {"unit": "second", "count": 5}, "max_failures": 2}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let autopayment = body["autopayment_id"].as_str().unwrap().to_owned();

    // 1000.00 pays three runs of 300.00; the fourth and fifth fail → paused.
    let query = "query($c: UUID!) { customer(id: $c) { autopayments { autopaymentId status pauseReason consecutiveFailures runs { run succeeded reason paymentId } } } }";
    let deadline = Instant::now() + Duration::from_secs(90);
    let autopayment_view = loop {
        let v = env
            .graphql(Some(&bearer), query, json!({"c": client}))
            .await;
        let a = v["data"]["customer"]["autopayments"][0].clone();
        if a["status"] == "paused" {
            break a;
        }
        assert!(Instant::now() < deadline, "not paused in time: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(autopayment_view["autopaymentId"], autopayment.as_str());
    let runs: Vec<(i64, bool)> = autopayment_view["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["run"].as_i64().unwrap(),
                r["succeeded"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        runs,
        [(0, true), (1, true), (2, true), (3, false), (4, false)],
        "{autopayment_view}"
    );
    assert_eq!(
        autopayment_view["runs"][3]["reason"], "insufficient_funds",
        "{autopayment_view}"
    );
    assert_eq!(autopayment_view["pauseReason"], "2 failed runs in a row");

    // Each successful run is a payment of the template, tagged with the autopayment.
    let paid = autopayment_view["runs"][0]["paymentId"]
        .as_str()
        .unwrap()
        .to_owned();
    let v = env
        .graphql(
            Some(&bearer),
            "query($p: UUID!) { operation(id: $p) { statusCode amount serviceId } }",
            json!({"p": paid}),
        )
        .await;
    assert_eq!(v["data"]["operation"]["statusCode"], 6, "{v}");
    assert_eq!(v["data"]["operation"]["amount"], "300.00", "{v}");
    let v = env
        .graphql(
            Some(&bearer),
            "query($w: UUID!) { wallet(id: $w) { balance } }",
            json!({"w": wallet}),
        )
        .await;
    assert_eq!(v["data"]["wallet"]["balance"], "100.00", "{v}");

    // The client was told of each failure, once per run.
    let notices: Vec<String> = sqlx::query_scalar(
        "SELECT dedup_key FROM client_notifications WHERE client_id = $1 AND dedup_key LIKE 'autopayment/%' ORDER BY id",
    )
    .bind(client.parse::<Uuid>().unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        notices,
        [
            format!("autopayment/{autopayment}/run-3"),
            format!("autopayment/{autopayment}/run-4")
        ]
    );

    // Paused, nothing more runs; a template in use cannot be deleted; cancelled, it can.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let v = env
        .graphql(Some(&bearer), query, json!({"c": client}))
        .await;
    assert_eq!(
        v["data"]["customer"]["autopayments"][0]["runs"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let (status, body) = post(
        format!("/v1/clients/{client}/templates/{template}/delete"),
        json!({}),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = post(
        format!("/v1/clients/{client}/autopayments/{autopayment}/cancel"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        format!("/v1/clients/{client}/templates/{template}/delete"),
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    pool.close().await;
}
