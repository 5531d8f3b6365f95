//! Transfers to another client's wallet end to end on the real broker and Postgres (e-wallet
//! spec §3.3): the sender's partition reserves and debits, the recipient's partition credits,
//! and a credit the recipient's wallet refuses — above its group's maximum balance, or a
//! wallet that is not the named client's — refunds the sender. Every step is an event on the
//! log and money is conserved across the two partitions.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{read_topic, token, wait_payments_final, wait_published, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

async fn transfer(api: &Api, from: &str, wallet: &str, body: Value) -> (u16, Value) {
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{from}/wallets/{wallet}/client-transfers?wait=20"),
            Some(&Uuid::new_v4().to_string()),
            &body.to_string(),
        )
        .await
        .unwrap();
    (status, body)
}

async fn top_up(api: &Api, client: &str, wallet: &str, amount: &str) {
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some(&Uuid::new_v4().to_string()),
            &json!({"amount": amount, "currency": "RUB", "source": "card"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
}

/// The operation a transfer's answer names.
fn operation_id(body: &Value) -> String {
    body["payment_id"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| {
            body["events"]
                .as_array()
                .and_then(|e| e.first())
                .and_then(|e| e["aggregate_id"].as_str().map(str::to_owned))
        })
        .expect("the operation's id")
}

/// The operation as GraphQL shows it once its final status is projected.
async fn operation(env: &Env, bearer: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = env
            .graphql(
                Some(bearer),
                "query($p: UUID!) { operation(id: $p) { statusCode serviceId failureReason } }",
                json!({"p": id}),
            )
            .await;
        let op = &v["data"]["operation"];
        if op["statusCode"].as_i64().is_some_and(|c| c >= 6) {
            return op.clone();
        }
        assert!(Instant::now() < deadline, "operation {id} not final: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn balance(env: &Env, client: &str, wallet: &str, expected: &str) {
    let bearer = token(client, Role::Client);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = env
            .graphql(
                Some(&bearer),
                "query($w: UUID!) { wallet(id: $w) { balance } }",
                json!({"w": wallet}),
            )
            .await;
        if v["data"]["wallet"]["balance"] == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "wallet {wallet}: expected {expected}, got {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_transfer_is_credited_to_another_client_and_a_refused_credit_is_refunded() {
    let env = Env::new("client_transfers").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let operator = token("operator-1", Role::Operator);

    let sender = Uuid::new_v4().to_string();
    let recipient = Uuid::new_v4().to_string();
    let from = api.open_wallet(&sender, &Uuid::new_v4().to_string()).await;
    let to = api
        .open_wallet(&recipient, &Uuid::new_v4().to_string())
        .await;
    top_up(&api, &sender, &from, "1000.00").await;

    // Bad requests are refused before anything is written.
    let (status, body) = transfer(
        &api,
        &sender,
        &from,
        json!({"to_client_id": recipient, "to_wallet_id": to, "amount": "", "currency": "RUB"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = transfer(
        &api,
        &sender,
        &from,
        json!({"to_client_id": sender, "to_wallet_id": from, "amount": "1.00", "currency": "RUB"}),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("transfer_to_same_wallet")),
        "{body}"
    );

    // A transfer that goes through: 6, the sender debited, the recipient credited.
    let (status, body) = transfer(
        &api,
        &sender,
        &from,
        json!({"to_client_id": recipient, "to_wallet_id": to, "amount": "300.00", "currency": "RUB",
               "attributes": {"message": "за ужин"}}),
    )
    .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let sent = operation_id(&body);
    let done = operation(&env, &token(&sender, Role::Client), &sent).await;
    assert_eq!(done["statusCode"], 6, "{done}");
    assert_eq!(done["serviceId"], "wallet-transfer", "{done}");
    balance(&env, &sender, &from, "700.00").await;
    balance(&env, &recipient, &to, "300.00").await;

    // The recipient moves to the anonymous group (maximum balance 15,000.00) and fills up.
    let resp = api
        .http
        .post(format!(
            "{}/v1/operator/clients/{recipient}/group",
            api.base
        ))
        .bearer_auth(&operator)
        .header("content-type", "application/json")
        .header("Idempotency-Key", Uuid::new_v4().to_string())
        .body(json!({"group": "anonymous", "reason": "not identified"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        200,
        "{}",
        resp.text().await.unwrap()
    );
    top_up(&api, &recipient, &to, "14600.00").await;
    balance(&env, &recipient, &to, "14900.00").await;

    // Its wallet refuses 200.00 more: the sender is refunded (8) with the reason.
    let (status, body) = transfer(
        &api,
        &sender,
        &from,
        json!({"to_client_id": recipient, "to_wallet_id": to, "amount": "200.00", "currency": "RUB"}),
    )
    .await;
    assert!(status == 200 || status == 202, "{status} {body}");
    let refused = operation_id(&body);
    let failed = operation(&env, &token(&sender, Role::Client), &refused).await;
    assert_eq!(failed["statusCode"], 8, "{failed}");
    assert!(
        failed["failureReason"]
            .as_str()
            .is_some_and(|r| r.contains("max_balance_exceeded")),
        "{failed}"
    );
    balance(&env, &sender, &from, "700.00").await;
    balance(&env, &recipient, &to, "14900.00").await;

    // A wallet the named client does not have: refused by the recipient's partition, refunded.
    let (_, body) = transfer(
        &api,
        &sender,
        &from,
        json!({"to_client_id": recipient, "to_wallet_id": Uuid::new_v4(), "amount": "50.00", "currency": "RUB"}),
    )
    .await;
    let misdirected = operation_id(&body);
    let failed = operation(&env, &token(&sender, Role::Client), &misdirected).await;
    assert_eq!(failed["statusCode"], 8, "{failed}");
    assert!(
        failed["failureReason"]
            .as_str()
            .is_some_and(|r| r.contains("wallet_not_found")),
        "{failed}"
    );
    balance(&env, &sender, &from, "700.00").await;

    // The log holds every step on its own client's partition, and money is conserved.
    wait_payments_final(&pool, Duration::from_secs(30)).await;
    wait_published(&env).await;
    let records = read_topic(&env).await;
    let of = |name: &str| -> Vec<(String, i32)> {
        records
            .iter()
            .filter(|r| r.event.name() == name)
            .map(|r| (r.envelope.client_id.0.to_string(), r.partition))
            .collect()
    };
    let debited = of("TransferDebited");
    let credited = of("TransferCredited");
    let refunded = of("TransferRefunded");
    assert_eq!(debited.len(), 3, "{debited:?}");
    assert!(debited.iter().all(|(c, _)| *c == sender));
    assert_eq!(credited.len(), 1, "{credited:?}");
    assert_eq!(credited[0].0, recipient);
    assert_eq!(refunded.len(), 2, "{refunded:?}");
    assert!(refunded.iter().all(|(c, _)| *c == sender));
    let total: rust_decimal::Decimal = sqlx::query_scalar(
        "SELECT COALESCE(sum(balance), 0) FROM rm_wallets WHERE wallet_id = ANY($1)",
    )
    .bind(vec![
        from.parse::<Uuid>().unwrap(),
        to.parse::<Uuid>().unwrap(),
    ])
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(total.to_string(), "15600.00", "1000 + 14600 topped up");
    pool.close().await;
}
