//! Payments from a bound bank card end to end on the real broker and Postgres (e-wallet spec
//! §3.3, §7.1): a registered client binds a card through the bank port, pays a service from
//! it (authorised, executed, captured), is declined by the bank, has a failed execution's
//! authorisation released, and cannot cancel a card operation; the wallet never moves and
//! the all-sources spend limit counts the card.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

struct Client<'a> {
    api: &'a Api,
    id: String,
    bearer: String,
}

impl Client<'_> {
    async fn post_keyed(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .api
            .post_as(
                Some(&self.bearer),
                &path.replace("{me}", &self.id),
                Some(key),
                &body.to_string(),
            )
            .await
            .unwrap();
        (status, body)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.post_keyed(path, &Uuid::new_v4().to_string(), body)
            .await
    }
}

fn names(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["event_type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The payment's events as the read model has them, once it applied the final one.
async fn projected_history(pool: &sqlx::PgPool, payment_id: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let history: Vec<String> = sqlx::query_scalar(
            "SELECT event_type FROM rm_payment_history WHERE payment_id = $1::uuid ORDER BY partition, sequence",
        )
        .bind(payment_id)
        .fetch_all(pool)
        .await
        .unwrap();
        if history
            .last()
            .is_some_and(|e| e == "PaymentSucceeded" || e == "PaymentFailed")
        {
            return history;
        }
        assert!(Instant::now() < deadline, "not final: {history:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_binds_a_card_and_pays_from_it_through_the_bank() {
    let env = Env::new("card_payments").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let operator = token("operator-1", Role::Operator);

    // A group whose all-sources day limit is 2,000.00 (the wallet source has none).
    let resp = api
        .http
        .put(format!("{}/v1/operator/client-groups/cards", api.base))
        .bearer_auth(&operator)
        .header("content-type", "application/json")
        .body(
            json!({
                "name": "Карты",
                "limits": {"RUB": {
                    "min_operation": "1.00", "max_operation": "50000.00", "max_balance": "100000.00",
                    "all_sources": {"day": "2000.00"}
                }}
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);

    // A registered client with a wallet of 1,000.00, in that group.
    let id = Uuid::new_v4().to_string();
    let me = Client {
        api: &api,
        id: id.clone(),
        bearer: token(&id, Role::Client),
    };
    let (status, body) = me
        .post(
            "/v1/me/registration",
            support::registration(&format!(
                "+7916{:07}",
                Uuid::new_v4().as_u128() % 10_000_000
            )),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let wallet = api.open_wallet(&id, "open").await;
    let (status, body) = me
        .post(
            &format!("/v1/clients/{{me}}/wallets/{wallet}/top-ups"),
            json!({"amount": "1000.00", "currency": "RUB", "source": "cash"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = api
        .post_as(
            Some(&operator),
            &format!("/v1/operator/clients/{id}/group"),
            Some("move-cards"),
            &json!({"group": "cards", "reason": "card payments"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // Binding: the number is checked before the bank is asked; another client may not bind
    // a card to this one.
    let cards = "/v1/clients/{me}/cards";
    let (status, body) = me
        .post(
            cards,
            json!({"number": "4111 1111 1111 1112", "expiry": "12/30", "cvc": "123"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("card_number_checksum")),
        "{body}"
    );
    let (status, _, body) = api
        .post_as(
            Some(&token(&Uuid::new_v4().to_string(), Role::Client)),
            &format!("/v1/clients/{id}/cards"),
            Some("stranger"),
            &json!({"number": "4111 1111 1111 1111", "expiry": "12/30", "cvc": "123"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    let bind = json!({"number": "4111 1111 1111 1111", "expiry": "12/30", "cvc": "123"});
    let (status, body) = me.post_keyed(cards, "bind-visa", bind.clone()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["masked_pan"], "411111******1111", "{body}");
    let card = body["card_id"].as_str().unwrap().to_owned();
    // The same request again answers the same card; the same card under another key is
    // refused: it is bound already.
    let (status, again) = me.post_keyed(cards, "bind-visa", bind.clone()).await;
    assert_eq!(
        (status, again["card_id"].as_str()),
        (201, Some(card.as_str())),
        "{again}"
    );
    let (status, body) = me.post(cards, bind).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_command")),
        "{body}"
    );
    assert!(
        body.get("card_id").is_none(),
        "a refusal names no card: {body}"
    );
    let (status, body) = me
        .post(
            cards,
            json!({"number": "4000 0000 0000 0002", "expiry": "12/30", "cvc": "321"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let poor_card = body["card_id"].as_str().unwrap().to_owned();
    // The card number never reached the log, the snapshots or the bank's card book.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM outbox_events WHERE event::text ~ '4111111111111111|4000000000000002') \
              + (SELECT count(*) FROM snapshots WHERE state::text ~ '4111111111111111|4000000000000002') \
              + (SELECT count(*) FROM simulator_bank_cards WHERE token ~ '4111111111111111|4000000000000002')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    let bound: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM snapshots WHERE state::text LIKE '%411111******1111%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert!(bound > 0, "the client's snapshot keeps the masked card");

    let payments = format!("/v1/clients/{{me}}/wallets/{wallet}/payments");
    // A payment from the card: authorised at the bank, executed, captured (status 6); the
    // wallet's 1,000.00 does not move.
    let (status, paid) = me
        .post(
            &format!("{payments}?wait=20"),
            json!({"amount": "1500.00", "currency": "RUB", "service_id": "mobile", "card_id": card}),
        )
        .await;
    assert_eq!(
        (status, paid["payment"]["status_code"].as_u64()),
        (200, Some(6)),
        "{paid}"
    );
    assert_eq!(paid["payment"]["source"], "card", "{paid}");
    assert_eq!(
        paid["payment"]["card_masked_pan"], "411111******1111",
        "{paid}"
    );
    let paid_id = paid["payment"]["payment_id"].as_str().unwrap().to_owned();
    let history = projected_history(&pool, &paid_id).await;
    for expected in [
        "CardAuthorisationRequested",
        "CardAuthorised",
        "PaymentReserved",
        "PaymentExecuted",
        "CardAuthorisationCaptured",
        "PaymentSucceeded",
    ] {
        assert!(
            history.iter().any(|e| e == expected),
            "{expected} missing: {history:?}"
        );
    }
    assert_eq!(paid["wallets"][0]["balance"], "1000.00", "{paid}");
    assert_eq!(paid["wallets"][0]["held"], "0.00", "{paid}");

    // 1,500.00 of the 2,000.00 all-sources day limit is used: 600.00 more is refused from
    // the card and from the wallet alike.
    let (status, body) = me
        .post(
            &payments,
            json!({"amount": "600.00", "currency": "RUB", "service_id": "mobile", "card_id": card}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("spend_limit_exceeded")),
        "{body}"
    );
    let (status, body) = me
        .post(
            &payments,
            json!({"amount": "600.00", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("spend_limit_exceeded")),
        "{body}"
    );

    // Declined by the bank: status 8, the amount no longer counts against the limit.
    let (status, declined) = me
        .post(
            &format!("{payments}?wait=20"),
            json!({"amount": "400.00", "currency": "RUB", "service_id": "mobile", "card_id": poor_card}),
        )
        .await;
    assert_eq!(
        (status, declined["payment"]["status_code"].as_u64()),
        (200, Some(8)),
        "{declined}"
    );
    assert!(
        declined["payment"]["failure_reason"]
            .as_str()
            .unwrap_or_default()
            .contains("insufficient_funds"),
        "{declined}"
    );

    // Executed with a failure: the authorisation is released (status 8).
    let (status, failed) = me
        .post(
            &format!("{payments}?wait=20"),
            json!({"amount": "450.00", "currency": "RUB", "service_id": "fail-shop", "card_id": card}),
        )
        .await;
    assert_eq!(
        (status, failed["payment"]["status_code"].as_u64()),
        (200, Some(8)),
        "{failed}"
    );
    let failed_id = failed["payment"]["payment_id"].as_str().unwrap().to_owned();

    // The bank's books: captured, declined, released — for the amounts asked.
    let books: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT payment_id::text, status, amount::text FROM simulator_bank_operations ORDER BY updated_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(books.len(), 3, "{books:?}");
    assert!(
        books.contains(&(paid_id.clone(), "captured".into(), "1500.00".into())),
        "{books:?}"
    );
    assert!(
        books.contains(&(failed_id.clone(), "released".into(), "450.00".into())),
        "{books:?}"
    );
    assert!(
        books
            .iter()
            .any(|(_, s, a)| s == "declined" && a == "400.00"),
        "{books:?}"
    );

    // Unknown card: 404; a card operation cannot be cancelled (its source is a card).
    let (status, body) = me
        .post(
            &payments,
            json!({"amount": "10.00", "currency": "RUB", "service_id": "mobile", "card_id": Uuid::new_v4()}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("card_not_found")),
        "{body}"
    );
    let (status, body) = me
        .post(
            &format!("{payments}/{paid_id}/cancellation-requests"),
            json!({"reason": "передумала"}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    assert!(
        names(&body).contains(&"CancellationRejected".to_owned()),
        "{body}"
    );

    // GraphQL shows the source and the masked card of the operation.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer = env
            .graphql(
                Some(&me.bearer),
                "query($id: UUID!) { operation(id: $id) { statusCode source cardMaskedPan cancellationRequests { status } } }",
                json!({"id": paid_id}),
            )
            .await;
        let op = &answer["data"]["operation"];
        if op["cancellationRequests"][0]["status"] == "rejected" {
            assert_eq!(op["statusCode"], 6, "{answer}");
            assert_eq!(op["source"], "card", "{answer}");
            assert_eq!(op["cardMaskedPan"], "411111******1111", "{answer}");
            break;
        }
        assert!(Instant::now() < deadline, "{answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let balance: String =
        sqlx::query_scalar("SELECT balance::text FROM rm_wallets WHERE wallet_id = $1::uuid")
            .bind(&wallet)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(balance, "1000.00", "card payments never move the wallet");
}
