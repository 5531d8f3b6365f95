//! Blue/green rebuild on the real broker: `etr replay --projection wallets` rebuilds the
//! wallet read models from offset 0 while the platform keeps taking commands and answering
//! queries, then switches; the result equals a fresh rebuild of the whole log, and the old
//! (here deliberately damaged) tables are kept aside.

mod support;

use etr_query_api::auth::Role;
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use support::{
    dump_read_models, next, read_topic, subscribe, token, wait_projected, wait_published, Api, Env,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebuild_switches_to_tables_equal_to_the_log_while_serving() {
    let env = Env::new("bg").await;
    let api = Api::new(&env);
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let client = uuid::Uuid::new_v4();
    let _etr = env.start(&["up", "--no-demo"]).await;

    let wallet = api.open_wallet(&client.to_string(), "open").await;
    let base = env.api();
    let path = format!("/v1/clients/{client}/wallets/{wallet}/top-ups");
    let top_up = move |key: String| {
        let api = Api {
            http: reqwest::Client::new(),
            base: base.clone(),
        };
        let path = path.clone();
        async move {
            let (s, _, body) = api
                .post(
                    &path,
                    Some(&key),
                    r#"{"amount":"10.00","currency":"RUB","source":"card"}"#,
                )
                .await
                .unwrap();
            assert_eq!(s, 200, "{body}");
            body
        }
    };
    for i in 0..30 {
        top_up(format!("before-{i}")).await;
    }
    let (s, _, paid) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/payments?wait=10"),
            Some("pay"),
            r#"{"amount":"25.50","currency":"RUB","service_id":"mobile"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{paid}");
    let position = &paid["position"];
    wait_projected(
        &pool,
        "wallets",
        position["partition"].as_i64().unwrap(),
        position["sequence"].as_i64().unwrap(),
    )
    .await;
    // A damaged read model (as a projection bug would leave it): the payment's history lost.
    sqlx::query("DELETE FROM rm_payment_history")
        .execute(&pool)
        .await
        .unwrap();

    // A second rebuild of the same projection is refused while one runs (here: while its
    // lock is held).
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtext('rebuild/wallets'))")
        .execute(&mut *holder)
        .await
        .unwrap();
    let mut second = env.command(&["replay", "--projection", "wallets"]);
    let refused = tokio::task::spawn_blocking(move || second.output().unwrap())
        .await
        .unwrap();
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("another rebuild of `wallets` is running"),
        "{stderr}"
    );
    sqlx::query("SELECT pg_advisory_unlock(hashtext('rebuild/wallets'))")
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);

    // A subscriber hears every status of every payment made during the rebuild, across the
    // switch.
    let mine = token(&client.to_string(), Role::Client);
    let mut ws = subscribe(
        &env,
        Some(&mine),
        "subscription($w: UUID!) { operationStatusChanged(walletId: $w) { paymentId statusCode sequence } }",
        json!({"w": wallet}),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    // Commands and queries keep flowing while the rebuild runs.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let top_up = top_up.clone();
        let base = env.api();
        let pay_path = format!("/v1/clients/{client}/wallets/{wallet}/payments?wait=10");
        tokio::spawn(async move {
            let api = Api {
                http: reqwest::Client::new(),
                base,
            };
            let (mut written, mut paid) = (0, 0);
            // At least 20, at most 2,000 (the wallet's balance limit), about 100 per second;
            // every fourth request a payment of 1.00.
            while (!stop.load(Ordering::Relaxed) || written < 20) && written < 2_000 {
                if written % 4 == 3 {
                    let (s, _, body) = api
                        .post(
                            &pay_path,
                            Some(&format!("pay-during-{paid}")),
                            r#"{"amount":"1.00","currency":"RUB","service_id":"mobile"}"#,
                        )
                        .await
                        .unwrap();
                    assert_eq!(s, 200, "{body}");
                    paid += 1;
                }
                top_up(format!("during-{written}")).await;
                written += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            (written, paid)
        })
    };
    let reader = {
        let stop = stop.clone();
        let query_addr = env.query_addr.clone();
        let wallet = wallet.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut answered = 0;
            while !stop.load(Ordering::Relaxed) {
                let v: serde_json::Value = http
                    .post(format!("http://{query_addr}/graphql"))
                    .bearer_auth(&mine)
                    .json(&json!({"query": "query($w: UUID!) { wallet(id: $w) { balance } operations(walletId: $w, first: 5) { edges { node { history { statusCode } } } } }", "variables": {"w": wallet}}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(v["errors"].is_null(), "queries keep working: {v}");
                answered += 1;
            }
            answered
        })
    };
    let rebuild = env.command(&["replay", "--projection", "wallets"]);
    let output = tokio::task::spawn_blocking(move || {
        let mut rebuild = rebuild;
        rebuild.output().unwrap()
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["projection"], "wallets", "{summary}");
    // At least everything written before it started: an opening, 30 top-ups and a payment
    // of 11 events.
    assert!(
        summary["events_applied"].as_u64().unwrap() >= 42,
        "{summary}"
    );
    let (written, paid) = writer.await.unwrap();
    let answered = reader.await.unwrap();
    eprintln!(
        "rebuild {summary}; {written} top-ups, {paid} payments and {answered} queries during it"
    );
    assert!(answered > 0);
    let mut statuses: std::collections::BTreeMap<String, Vec<i64>> = Default::default();
    let mut last_sequence = 0;
    for _ in 0..7 * paid {
        let m = next(&mut ws).await;
        assert_eq!(m["type"], "next", "{m}");
        let change = &m["payload"]["data"]["operationStatusChanged"];
        let sequence = change["sequence"].as_i64().unwrap();
        assert!(
            sequence > last_sequence,
            "in log order, once each: {change}"
        );
        last_sequence = sequence;
        statuses
            .entry(change["paymentId"].as_str().unwrap().to_owned())
            .or_default()
            .push(change["statusCode"].as_i64().unwrap());
    }
    assert_eq!(statuses.len(), paid);
    assert!(
        statuses
            .values()
            .all(|codes| codes == &[0, 1, 2, 3, 4, 5, 6]),
        "{statuses:?}"
    );

    // The old tables are kept aside, damage included; the new ones carry the migration's
    // index names.
    // (the payment of 25.50, made before the damage; payments during the rebuild were
    // recorded in both)
    let history = |schema: &str| {
        format!("SELECT count(*) FROM {schema}.rm_payment_history h JOIN {schema}.rm_payments p USING (payment_id) WHERE p.amount = 25.50")
    };
    let retired: i64 = sqlx::query_scalar(&history("retired_wallets"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(retired, 0, "the retired tables are the damaged ones");
    let rebuilt: i64 = sqlx::query_scalar(&history("public"))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rebuilt, 7, "the payment's statuses 0 to 6 are back");
    let index: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND indexname IN ('rm_wallets_client', 'rm_payments_wallet')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(index, 2);

    // Once everything is published and applied, the live tables equal a fresh rebuild.
    wait_published(&env).await;
    let records = read_topic(&env).await;
    let last = records
        .iter()
        .map(|r| (r.envelope.partition, r.envelope.sequence))
        .max()
        .unwrap();
    wait_projected(&pool, "wallets", i64::from(last.0), last.1 as i64).await;
    let (fresh, fresh_url) = etr_infra::pg::fresh_database("etr_test_bg_fresh")
        .await
        .unwrap();
    let events: Vec<_> = records
        .iter()
        .map(|r| (r.envelope.clone(), r.event.clone()))
        .collect();
    etr_projections::runtime::apply_batch(
        &fresh,
        &etr_projections::wallets::Wallets { announce: false },
        &events,
    )
    .await
    .unwrap();
    etr_projections::runtime::apply_batch(&fresh, &etr_projections::timeline::Timeline, &events)
        .await
        .unwrap();
    assert_eq!(
        dump_read_models(&pool).await,
        dump_read_models(&fresh).await
    );
    let expected = rust_decimal::Decimal::new(10_00, 2) * rust_decimal::Decimal::from(30 + written)
        - rust_decimal::Decimal::new(25_50, 2)
        - rust_decimal::Decimal::from(paid);
    let v = env
        .graphql(
            Some(&token(&client.to_string(), Role::Client)),
            "query($w: UUID!) { wallet(id: $w) { balance } }",
            json!({"w": wallet}),
        )
        .await;
    assert_eq!(v["data"]["wallet"]["balance"], expected.to_string(), "{v}");
    fresh.close().await;
    etr_infra::pg::drop_database(&fresh_url)
        .await
        .expect("dropping the rebuild's database");
}
