//! Cancellation requests end to end on the real broker and Postgres (e-wallet spec §3.4): a
//! request for a successful payment passes its checks, goes to the processing centre (the
//! payment provider simulator) through the payment processor, and the wallet is refunded; a
//! request for a payment that did not succeed is rejected with the failed check; one the
//! processing centre refuses ends in a processing error and refunds nothing.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

async fn pay(api: &Api, client: &str, wallet: &str, amount: &str, service: &str) -> Value {
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/payments?wait=10"),
            Some(&Uuid::new_v4().to_string()),
            &json!({"amount": amount, "currency": "RUB", "service_id": service}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn request(api: &Api, client: &str, wallet: &str, payment: &str) -> (u16, Value) {
    let (status, _, body) = api
        .post(
            &format!(
                "/v1/clients/{client}/wallets/{wallet}/payments/{payment}/cancellation-requests"
            ),
            Some(&Uuid::new_v4().to_string()),
            &json!({"reason": "the service was not provided"}).to_string(),
        )
        .await
        .unwrap();
    (status, body)
}

/// Waits until the operation's last cancellation request is in `status`; returns the
/// operation and its wallet as GraphQL shows them.
async fn wait_request(env: &Env, bearer: &str, payment: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = env
            .graphql(
                Some(bearer),
                "query($p: UUID!) { operation(id: $p) { statusCode refunded cancellationRequests { status error reference } } }",
                json!({"p": payment}),
            )
            .await;
        let requests = &v["data"]["operation"]["cancellationRequests"];
        if requests
            .as_array()
            .and_then(|r| r.last())
            .is_some_and(|r| r["status"] == status)
        {
            return v["data"]["operation"].clone();
        }
        assert!(Instant::now() < deadline, "{v} never reached {status}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn balance(env: &Env, bearer: &str, wallet: &str) -> String {
    let v = env
        .graphql(
            Some(bearer),
            "query($w: UUID!) { wallet(id: $w) { balance } }",
            json!({"w": wallet}),
        )
        .await;
    v["data"]["wallet"]["balance"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cancelled_payment_is_refunded_and_every_check_shows_its_reason() {
    let env = Env::new("cancellations").await;
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let bearer = token(&client, Role::Client);
    let wallet = api.open_wallet(&client, "open").await;
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some("top"),
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // A successful payment: the request passes its checks and the wallet is refunded.
    let paid = pay(&api, &client, &wallet, "300.00", "mobile").await;
    assert_eq!(paid["payment"]["status_code"], 6, "{paid}");
    let payment = paid["payment"]["payment_id"].as_str().unwrap().to_owned();
    let (status, body) = request(&api, &client, &wallet, &payment).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["cancellation"]["status"], "sent_to_processing",
        "{body}"
    );
    let op = wait_request(&env, &bearer, &payment, "succeeded").await;
    assert_eq!(op["statusCode"], 6, "{op}");
    assert_eq!(op["refunded"], "300.00", "{op}");
    assert!(
        op["cancellationRequests"][0]["reference"]
            .as_str()
            .is_some_and(|r| r.starts_with("REV-")),
        "{op}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while balance(&env, &bearer, &wallet).await != "1000.00" {
        assert!(
            Instant::now() < deadline,
            "the refund never reached the wallet"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Cancelled once: another request is rejected by the checks.
    let (status, body) = request(&api, &client, &wallet, &payment).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["cancellation"]["status"], "rejected", "{body}");
    assert_eq!(
        body["cancellation"]["error"], "the operation was already refunded",
        "{body}"
    );

    // A payment that failed is not in its final success status.
    let failed = pay(&api, &client, &wallet, "50.00", "mobile-fail").await;
    assert_eq!(failed["payment"]["status_code"], 8, "{failed}");
    let failed_id = failed["payment"]["payment_id"].as_str().unwrap();
    let (status, body) = request(&api, &client, &wallet, failed_id).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["cancellation"]["status"], "rejected", "{body}");
    assert!(
        body["cancellation"]["error"]
            .as_str()
            .is_some_and(|e| e.contains("not in its final success status (6)")),
        "{body}"
    );

    // The processing centre refuses: a processing error, nothing refunded; a new request is
    // allowed once the first one ended.
    let kept = pay(&api, &client, &wallet, "200.00", "mobile-nocancel").await;
    let kept_id = kept["payment"]["payment_id"].as_str().unwrap().to_owned();
    let (status, body) = request(&api, &client, &wallet, &kept_id).await;
    assert_eq!(
        (status, body["cancellation"]["status"].as_str()),
        (201, Some("sent_to_processing")),
        "{body}"
    );
    let op = wait_request(&env, &bearer, &kept_id, "processing_error").await;
    assert_eq!(op["refunded"], Value::Null, "{op}");
    let (status, body) = request(&api, &client, &wallet, &kept_id).await;
    assert_eq!(status, 201, "{body}");
    wait_request(&env, &bearer, &kept_id, "processing_error").await;
    assert_eq!(balance(&env, &bearer, &wallet).await, "800.00");

    // An operation that does not exist, and bad input.
    let (status, body) = request(&api, &client, &wallet, &Uuid::new_v4().to_string()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("payment_not_found")),
        "{body}"
    );
    let (status, _, body) = api
        .post(
            &format!(
                "/v1/clients/{client}/wallets/{wallet}/payments/{payment}/cancellation-requests"
            ),
            Some("bad"),
            r#"{"reason":"","extra":1}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_field")),
        "{body}"
    );

    drop(_platform);
    etr_infra::pg::drop_database(&env.database_url)
        .await
        .unwrap();
}
