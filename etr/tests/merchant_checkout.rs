//! Merchant checkout end to end (e-wallet spec §7.2) on the real broker and Postgres, the
//! checkout page driven in headless Chromium (see `support/browser.rs`): an operator
//! registers a shop as a merchant, the shop creates orders over REST, a signed-in buyer pays
//! one with the wallet and another buyer pays one with a card on the checkout page, is sent
//! back to the shop, and the shop — a small HTTP server in this test that refuses the first
//! two callbacks — is called back with a valid signature until it acknowledges. The money:
//! the buyer's wallet less the order, the merchant's settlement wallet plus it, the card's
//! authorisation captured at the bank simulator; an order is never paid twice.

mod support;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use etr_query_api::auth::Role;
use fantoccini::Locator;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::browser::Browser;
use support::{token, Api, Env};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(60);

/// What the shop received: each callback's signature header and body.
#[derive(Clone, Default)]
struct Shop {
    callbacks: Arc<Mutex<Vec<(String, Bytes)>>>,
    /// How many callbacks are refused (HTTP 500) before the shop acknowledges.
    refuse_first: usize,
}

async fn start_shop(shop: Shop) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let refuse_first = shop.refuse_first;
    let app = Router::new()
        .route(
            "/callback",
            post(move |headers: HeaderMap, body: Bytes| async move {
                let signature = headers
                    .get("x-etr-signature")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let mut seen = shop.callbacks.lock().unwrap();
                seen.push((signature, body));
                if seen.len() <= refuse_first {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route(
            "/return",
            get(|| async {
                axum::response::Html(
                    "<!doctype html><html><body><h1 id=shop>Спасибо за покупку</h1></body></html>",
                )
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn get_json(url: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The order as the merchant sees it once `done` says so.
async fn order_when(env: &Env, partner: &str, order: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let (status, body) = get_json(
            &format!("{}/v1/partner/orders/{order}", env.api()),
            Some(partner),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        if done(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "order {order}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn type_into(browser: &Browser, css: &str, text: &str) {
    let field = browser.client.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

async fn create_order(api: &Api, partner: &str, number: &str, amount: &str, shop: &str) -> Value {
    let (status, _, body) = api
        .post_as(
            Some(partner),
            "/v1/partner/orders",
            Some(&format!("order-{number}")),
            &json!({
                "number": number, "amount": amount, "currency": "RUB",
                "description": "Наушники, 1 шт.",
                "return_url": format!("http://{shop}/return?order={number}"),
            })
            .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_merchant_order_is_paid_on_the_checkout_page_and_the_callback_retried_until_acknowledged()
{
    let env = &Env::new("merchant_checkout").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = &Api::new(env);
    let shop_state = Shop {
        refuse_first: 2,
        ..Shop::default()
    };
    let shop = &start_shop(shop_state.clone()).await;
    let operator = token("operator-1", Role::Operator);
    let partner = &token("shop-e2e", Role::Partner);

    // Not a merchant yet: the shop cannot create orders.
    let (status, _, body) = api
        .post_as(Some(partner), "/v1/partner/orders", Some("early"), "{}")
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("not_a_merchant")),
        "{body}"
    );

    // The operator registers the shop; a bad callback URL is refused, a second registration too.
    let register = |url: String| {
        let operator = operator.clone();
        async move {
            api.post_as(
                Some(&operator),
                "/v1/operator/merchants",
                None,
                &json!({"partner_id": "shop-e2e", "name": "Электроника у дома", "callback_url": url})
                    .to_string(),
            )
            .await
            .unwrap()
        }
    };
    let (status, _, body) = register("ftp://nowhere".into()).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_callback_url")),
        "{body}"
    );
    let (status, _, merchant) = register(format!("http://{shop}/callback")).await;
    assert_eq!(status, 201, "{merchant}");
    let secret = merchant["callback_secret"].as_str().unwrap().to_owned();
    let settlement = merchant["settlement_wallet_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = register(format!("http://{shop}/callback")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("merchant_exists")),
        "{body}"
    );

    // Receipts show the next banner of the place the receipt template names (`content`):
    // one banner for any operation, one only for amounts of 100,000.00 and more.
    let yesterday = (time::OffsetDateTime::now_utc() - time::Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for (path, body) in [
        (
            "/v1/operator/advertising/places",
            json!({"id": "content", "name": "Receipt footer", "interface_type": "web_application"}),
        ),
        (
            "/v1/operator/advertising/campaigns",
            json!({"id": "winter", "name": "Winter", "active_from": yesterday}),
        ),
        (
            "/v1/operator/advertising/banners",
            json!({"id": "accessories", "campaign_id": "winter", "place_id": "content",
                   "title": "Скидка 10% на аксессуары", "text": "Только до конца зимы",
                   "link": "/offers/accessories", "weight": 1}),
        ),
        (
            "/v1/operator/advertising/banners",
            json!({"id": "big-spenders", "campaign_id": "winter", "place_id": "content",
                   "title": "Премиальная карта", "text": "Для крупных покупок",
                   "link": "/offers/premium", "weight": 5, "amount_from": "100000.00"}),
        ),
    ] {
        let (status, _, answer) = api
            .post_as(Some(&operator), path, None, &body.to_string())
            .await
            .unwrap();
        assert_eq!(status, 201, "{path}: {answer}");
    }

    // Orders: strict input, a number is one order.
    let (status, _, body) = api
        .post_as(
            Some(partner),
            "/v1/partner/orders",
            Some("bad"),
            &json!({"number": "1 2", "amount": "10.00", "currency": "RUB", "return_url": "http://x/"})
                .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_order_number")),
        "{body}"
    );
    let first = create_order(api, partner, "2026-0001", "1299.00", shop).await;
    let second = create_order(api, partner, "2026-0002", "450.50", shop).await;
    let (status, _, body) = api
        .post_as(
            Some(partner),
            "/v1/partner/orders",
            Some("again"),
            &json!({"number": "2026-0001", "amount": "1.00", "currency": "RUB",
                    "return_url": format!("http://{shop}/return")})
            .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("order_already_exists")),
        "{body}"
    );
    let order_id = first["order_id"].as_str().unwrap().to_owned();
    let checkout = format!("{}{}", env.api(), first["checkout_url"].as_str().unwrap());
    // Without the link's key the order is not found.
    let (status, _) = get_json(
        &format!("{}/v1/checkout/orders/{order_id}?key=00", env.api()),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The buyer has a wallet with 5,000.00.
    let buyer = Uuid::new_v4().to_string();
    let wallet = api.open_wallet(&buyer, "open").await;
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{buyer}/wallets/{wallet}/top-ups"),
            Some("top"),
            r#"{"amount":"5000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let bearer = token(&buyer, Role::Client);

    let browser = Browser::start("merchant_checkout").await;
    browser
        .check(|b| {
            let (checkout, bearer, wallet) = (checkout.clone(), bearer.clone(), wallet.clone());
            async move {
                b.open(&checkout).await;
                b.wait_for_text("#amount", "1299.00 RUB", PATIENCE).await;
                b.wait_for_text("#merchant", "Электроника у дома", PATIENCE).await;
                b.wait_for_text("#status", "ожидает оплаты", PATIENCE).await;
                // Signed in with the buyer's token, the page lists the wallet to pay from.
                type_into(b, "#token", &bearer).await;
                b.click("#sign-in").await;
                b.wait_for_text("#wallets", "5000.00", PATIENCE).await;
                let chosen = b
                    .wait_for_js(
                        "const r = document.querySelector('input[name=wallet]:checked'); return r && r.value;",
                        PATIENCE,
                    )
                    .await;
                assert_eq!(chosen, json!(wallet));
                b.click("#pay-wallet").await;
                b.wait_for_text("#message", "Заказ оплачен", PATIENCE).await;
                b.wait_for_text("#paid-with", "Из кошелька", PATIENCE).await;
                b.assert_self_contained(&env.api_addr).await;
                // The printable receipt, from the default template, with the banner that
                // matches the operation.
                let receipt = b
                    .wait_for_js("return document.getElementById('receipt').href;", PATIENCE)
                    .await;
                b.open(receipt.as_str().unwrap()).await;
                let text = b.wait_for_text("#receipt", "Итого: 1299.00 RUB", PATIENCE).await;
                assert!(text.contains("Заказ: 2026-0001"), "{text}");
                assert!(text.contains("Способ оплаты: электронный кошелёк"), "{text}");
                assert!(text.contains("Скидка 10% на аксессуары"), "{text}");
                assert!(!text.contains("Премиальная карта"), "{text}");
                b.assert_self_contained(&env.api_addr).await;
                b.open(&checkout).await;
                b.wait_for_text("#message", "Заказ оплачен", PATIENCE).await;
                // Back to the shop.
                b.click("#return").await;
                b.wait_for_text("#shop", "Спасибо", PATIENCE).await;
                let url = b.client.current_url().await.unwrap();
                assert_eq!(url.as_str(), format!("http://{shop}/return?order=2026-0001"));
            }
        })
        .await;

    // The shop refused two callbacks; the third was acknowledged and recorded.
    let notified = order_when(env, partner, &order_id, |o| o["status"] == "notified").await;
    assert_eq!(notified["payment"]["source"], "wallet", "{notified}");
    let callbacks = shop_state.callbacks.lock().unwrap().clone();
    assert_eq!(callbacks.len(), 3, "{} callbacks", callbacks.len());
    for (i, (signature, body)) in callbacks.iter().enumerate() {
        assert!(
            etr_infra::merchants::verify(&secret, signature, body),
            "callback {i} is not signed with the merchant's key"
        );
        let body: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(body["order_id"], order_id.as_str());
        assert_eq!(body["amount"], "1299.00");
        assert_eq!(body["attempt"], i + 1);
    }
    assert!(!etr_infra::merchants::verify(
        "another key",
        &callbacks[0].0,
        &callbacks[0].1
    ));
    let attempts: Vec<(i32, Option<i32>)> = sqlx::query_as(
        "SELECT attempt, http_status FROM merchant_callback_attempts WHERE order_id = $1::uuid ORDER BY attempt",
    )
    .bind(&order_id)
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);

    // Money: the buyer paid 1299.00 into the merchant's settlement wallet.
    let pool_ref = &pool;
    let balance = |client: String, wallet: String| async move {
        let row: (Value,) = sqlx::query_as(
            "SELECT state FROM snapshots WHERE aggregate_type = 'wallet_account' AND aggregate_id = $1::uuid AND client_id = $2::uuid",
        )
        .bind(&wallet)
        .bind(&client)
        .fetch_one(pool_ref)
        .await
        .unwrap();
        row.0["Wallet"]["balance"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(balance(buyer.clone(), wallet.clone()).await, "3701.00");
    let merchant_id = merchant["merchant_id"].as_str().unwrap().to_owned();
    assert_eq!(
        balance(merchant_id.clone(), settlement.clone()).await,
        "1299.00"
    );

    // Paying the paid order again is refused before anything is written.
    let key = checkout.split("key=").nth(1).unwrap().to_owned();
    let (status, _, body) = api
        .post_as(
            Some(&bearer),
            &format!("/v1/checkout/orders/{order_id}/wallet-payment?key={key}"),
            Some("twice"),
            &json!({"wallet_id": wallet}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("order_not_payable")),
        "{body}"
    );

    // The second order with a card, not signed in: a declined card first, then a good one.
    let card_order = second["order_id"].as_str().unwrap().to_owned();
    let card_checkout = format!("{}{}", env.api(), second["checkout_url"].as_str().unwrap());
    let browser = Browser::start("merchant_checkout_card").await;
    browser
        .check(|b| {
            let card_checkout = card_checkout.clone();
            async move {
                b.open(&card_checkout).await;
                b.wait_for_text("#amount", "450.50 RUB", PATIENCE).await;
                type_into(b, "#card-number", "4000 0000 0000 0002").await;
                type_into(b, "#card-expiry", "12/30").await;
                type_into(b, "#card-cvc", "123").await;
                b.click("#pay-card").await;
                b.wait_for_text("#message", "card_declined", PATIENCE).await;
                type_into(b, "#card-number", "4111 1111 1111 1112").await;
                b.click("#pay-card").await;
                b.wait_for_text("#message", "card_number_checksum", PATIENCE)
                    .await;
                // The two refusals are the console's only errors so far (4xx answers).
                let refused = b.console().await;
                assert_eq!(refused.len(), 2, "{refused:#?}");
                assert!(
                    refused[0].contains("402") && refused[1].contains("422"),
                    "{refused:#?}"
                );
                type_into(b, "#card-number", "4111 1111 1111 1111").await;
                b.click("#pay-card").await;
                b.wait_for_text("#message", "Заказ оплачен", PATIENCE).await;
                b.wait_for_text("#paid-with", "411111******1111", PATIENCE)
                    .await;
                b.assert_self_contained(&env.api_addr).await;
            }
        })
        .await;
    let paid = order_when(env, partner, &card_order, |o| o["status"] == "notified").await;
    assert_eq!(paid["payment"]["masked_pan"], "411111******1111", "{paid}");
    let books: Vec<(String, String)> = sqlx::query_as(
        "SELECT masked_pan, status FROM simulator_bank_operations ORDER BY updated_at",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        books,
        [
            ("400000******0002".to_owned(), "declined".to_owned()),
            ("411111******1111".to_owned(), "captured".to_owned()),
        ]
    );
    // The day's registry lists both paid orders, in the order they were paid.
    let today = time::OffsetDateTime::now_utc()
        .to_offset(time::UtcOffset::from_hms(3, 0, 0).unwrap())
        .date()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("registry.csv");
    let out = env
        .command(&[
            "report",
            "registry",
            "--partner",
            "shop-e2e",
            "--day",
            &today,
            "--out",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (summary["operations"].as_u64(), summary["total"].as_str()),
        (Some(2), Some("1749.50")),
        "{summary}"
    );
    let csv = std::fs::read_to_string(&file).unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[1].starts_with(&format!("2026-0001;{order_id};"))
            && rows[1].ends_with(";wallet;;1299.00;RUB"),
        "{csv}"
    );
    assert!(
        rows[2].starts_with(&format!("2026-0002;{card_order};"))
            && rows[2].ends_with(";card;411111******1111;450.50;RUB"),
        "{csv}"
    );

    // The card number never reached the log or the database in clear.
    let leaked: i64 = sqlx::query_scalar(
        "SELECT (SELECT count(*) FROM outbox_events WHERE event::text LIKE '%4111111111111111%')               + (SELECT count(*) FROM snapshots WHERE state::text LIKE '%4111111111111111%')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(leaked, 0);
    let masked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM outbox_events WHERE event::text LIKE '%411111******1111%'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        masked, 1,
        "the order's payment event carries the masked number"
    );
}
