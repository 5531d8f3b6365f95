//! Read models on the real broker: REST command → relay → projector → Postgres read model,
//! and a projector killed mid-stream ends up equal to a fresh rebuild from the log.

mod support;

use std::time::Duration;
use support::{dump_read_models as dump, read_topic, wait_projected, wait_published, Api, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_is_visible_in_the_read_model_and_a_killed_projector_catches_up_exactly() {
    let env = Env::new("rm").await;
    let api = Api::new(&env);
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let client = uuid::Uuid::new_v4();

    let etr = env.start(&["up", "--no-demo"]).await;
    let wallet = api.open_wallet(&client.to_string(), "open").await;
    let (s, _, top) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some("top"),
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 200);
    let (s, _, paid) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/payments?wait=10"),
            Some("pay"),
            r#"{"amount":"250.25","currency":"RUB","service_id":"mobile"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{paid}");
    let pos = &paid["position"];
    // Read-your-writes through GraphQL: minPosition waits for the projection.
    let mine = support::token(&client.to_string(), etr_query_api::auth::Role::Client);
    let theirs = support::token(
        &uuid::Uuid::new_v4().to_string(),
        etr_query_api::auth::Role::Client,
    );
    let auditor = support::token("auditor-1", etr_query_api::auth::Role::Auditor);
    let q = "query($w: UUID!, $p: PositionInput) { wallet(id: $w, minPosition: $p) { balance available currency status } \
             operations(walletId: $w, first: 1, minPosition: $p) { edges { cursor node { statusCode amount history { statusCode } } } pageInfo { hasNextPage } } }";
    let v = env
        .graphql(Some(&mine), q, serde_json::json!({"w": wallet, "p": {"partition": pos["partition"], "sequence": pos["sequence"]}}))
        .await;
    assert!(v["errors"].is_null(), "{v}");
    assert_eq!(v["data"]["wallet"]["balance"], "749.75", "{v}");
    assert_eq!(v["data"]["wallet"]["available"], "749.75");
    let op = &v["data"]["operations"]["edges"][0]["node"];
    assert_eq!(op["statusCode"], 6, "{v}");
    assert_eq!(op["amount"], "250.25");
    assert_eq!(op["history"].as_array().unwrap().len(), 7);
    assert_eq!(v["data"]["operations"]["pageInfo"]["hasNextPage"], false);
    // A position the log never reaches: a typed error, not a hang.
    let v = env
        .graphql(Some(&mine), q, serde_json::json!({"w": wallet, "p": {"partition": pos["partition"], "sequence": 1_000_000}}))
        .await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "POSITION_NOT_REACHED",
        "{v}"
    );
    let v = env
        .graphql(
            Some(&auditor),
            "{ projectionStatus { projection partition sequence head lag } }",
            serde_json::Value::Null,
        )
        .await;
    assert!(
        v["data"]["projectionStatus"].as_array().is_some_and(|a| a
            .iter()
            .filter(|r| r["projection"] == "wallets")
            .count()
            == env.partitions as usize),
        "{v}"
    );
    // Another client's token never gets this client's data; no token gets nothing.
    let w = serde_json::json!({"w": wallet});
    let q_wallet = "query($w: UUID!) { wallet(id: $w) { balance } }";
    let v = env.graphql(Some(&theirs), q_wallet, w.clone()).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
    assert!(v["data"].is_null() || v["data"]["wallet"].is_null(), "{v}");
    let q_ops = "query($w: UUID!) { operations(walletId: $w) { edges { node { amount } } } }";
    let v = env.graphql(Some(&theirs), q_ops, w.clone()).await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
    let v = env.graphql(None, q_wallet, w.clone()).await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{v}"
    );
    let v = env
        .graphql(Some("Bearer nonsense"), q_wallet, w.clone())
        .await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{v}"
    );
    // The auditor may read any client.
    let v = env.graphql(Some(&auditor), q_wallet, w).await;
    assert_eq!(v["data"]["wallet"]["balance"], "749.75", "{v}");
    wait_projected(
        &pool,
        "wallets",
        pos["partition"].as_i64().unwrap(),
        pos["sequence"].as_i64().unwrap(),
    )
    .await;

    let (balance, available): (rust_decimal::Decimal, rust_decimal::Decimal) =
        sqlx::query_as("SELECT balance, available FROM rm_wallets WHERE wallet_id = $1::uuid")
            .bind(&wallet)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(balance.to_string(), "749.75");
    assert_eq!(available.to_string(), "749.75");
    let payment_id = paid["payment"]["payment_id"].as_str().unwrap();
    let history: Vec<i16> = sqlx::query_scalar(
        "SELECT status_code FROM rm_payment_history WHERE payment_id = $1::uuid AND event_type LIKE 'Payment%' ORDER BY sequence",
    )
    .bind(payment_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        history,
        vec![0, 1, 2, 3, 4, 5, 6],
        "the payment's lifecycle, in order"
    );
    assert!(top["position"]["sequence"].as_i64() < pos["sequence"].as_i64());

    // Load, then SIGKILL the whole process (projector included) mid-stream, and restart.
    let mut in_flight = tokio::task::JoinSet::new();
    for i in 0..60 {
        let api = Api::new(&env);
        let path = format!("/v1/clients/{client}/wallets/{wallet}/top-ups");
        in_flight.spawn(async move {
            api.post(
                &path,
                Some(&format!("load-{i}")),
                r#"{"amount":"1.00","currency":"RUB","source":"card"}"#,
            )
            .await
        });
    }
    tokio::time::sleep(Duration::from_millis(120)).await;
    etr.kill();
    while in_flight.join_next().await.is_some() {}
    let _etr = env.start(&["up", "--no-demo"]).await;
    wait_published(&env).await;
    let records = read_topic(&env).await;
    let last = records
        .iter()
        .map(|r| (r.envelope.partition, r.envelope.sequence))
        .max()
        .unwrap();
    for projection in ["wallets", "timeline"] {
        wait_projected(&pool, projection, i64::from(last.0), last.1 as i64).await;
    }

    // A fresh rebuild of the same log into another database must be identical.
    let (fresh, fresh_url) = etr_infra::pg::fresh_database("etr_test_rm_rebuild")
        .await
        .unwrap();
    let events: Vec<_> = records
        .iter()
        .map(|r| (r.envelope.clone(), r.event.clone()))
        .collect();
    let applied = etr_projections::runtime::apply_batch(
        &fresh,
        &etr_projections::wallets::Wallets { announce: false },
        &events,
    )
    .await
    .unwrap();
    assert!(applied > 0);
    let timeline = etr_projections::runtime::apply_batch(
        &fresh,
        &etr_projections::timeline::Timeline,
        &events,
    )
    .await
    .unwrap();
    assert_eq!(timeline, applied);
    // Applying the log again changes nothing (checkpoints skip it).
    let again = etr_projections::runtime::apply_batch(
        &fresh,
        &etr_projections::wallets::Wallets { announce: false },
        &events,
    )
    .await
    .unwrap();
    assert_eq!(again, 0);
    let live = dump(&pool).await;
    let rebuilt = dump(&fresh).await;
    assert!(!live.is_empty());
    assert_eq!(
        live, rebuilt,
        "the live read model equals a fresh rebuild from the log"
    );
    fresh.close().await;
    etr_infra::pg::drop_database(&fresh_url)
        .await
        .expect("dropping the rebuild's database");
}
