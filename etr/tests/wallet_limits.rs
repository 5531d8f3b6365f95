//! Client groups and their limits end to end on the real broker and Postgres (e-wallet spec
//! §2): an operator defines a group with a warning threshold and a daily spend limit and
//! moves a client into it; a payment above the threshold waits for the client's SMS code and
//! is reserved and executed once confirmed; one left unconfirmed is cancelled by the payment
//! processor; the day's spend limit refuses what would exceed it.

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
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .api
            .post_as(
                Some(&self.bearer),
                &path.replace("{me}", &self.id),
                Some(&Uuid::new_v4().to_string()),
                &body.to_string(),
            )
            .await
            .unwrap();
        (status, body)
    }
}

async fn put_group(api: &Api, operator: &str, id: &str, body: Value) -> (u16, Value) {
    let resp = api
        .http
        .put(format!("{}/v1/operator/client-groups/{id}", api.base))
        .bearer_auth(operator)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn last_code(pool: &sqlx::PgPool, phone: &str) -> String {
    let text: String = sqlx::query_scalar(
        "SELECT text FROM simulator_sms WHERE phone = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(phone)
    .fetch_one(pool)
    .await
    .expect("a code was sent");
    text.split(|c: char| !c.is_ascii_digit())
        .rfind(|w| !w.is_empty())
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_above_the_warning_threshold_needs_the_clients_code_and_the_day_limit_holds() {
    let env = Env::new("wallet_limits").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let mut command = env.command(&["up", "--no-demo"]);
    command
        .env("ETR_PAYMENT_CONFIRMATION_TIMEOUT_SECS", "3")
        .env("ETR_OTP_RESEND_AFTER_SECS", "0");
    let _platform = env.start_with(command).await;
    let api = Api::new(&env);
    let operator = token("operator-1", Role::Operator);

    // The catalogue starts with the built-in groups.
    let groups: Value = api
        .http
        .get(format!("{}/v1/operator/client-groups", api.base))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["group_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["anonymous", "identified"], "{groups}");

    // Bad groups are refused with their reasons; nothing is stored.
    let vip = |threshold: &str| {
        json!({
            "name": "VIP с подтверждением",
            "limits": {"RUB": {
                "min_operation": "1.00", "max_operation": "50000.00", "max_balance": "100000.00",
                "wallet_source": {"day": "5000.00"},
                "warning_threshold": threshold
            }}
        })
    };
    let (status, body) = put_group(&api, &operator, "vip", vip("1000.001")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("amount_too_precise")),
        "{body}"
    );
    let mut inverted = vip("1000.00");
    inverted["limits"]["RUB"]["min_operation"] = json!("60000.00");
    let (status, body) = put_group(&api, &operator, "vip", inverted).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("invalid_group")),
        "{body}"
    );
    let (status, body) = put_group(&api, &operator, "VIP!", vip("1000.00")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_group_id")),
        "{body}"
    );
    let (status, body) = put_group(
        &api,
        &token(&Uuid::new_v4().to_string(), Role::Client),
        "vip",
        vip("1000.00"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = put_group(&api, &operator, "vip", vip("1000.00")).await;
    assert_eq!((status, body["version"].as_i64()), (200, Some(1)), "{body}");

    // A registered client (its phone receives the codes) with a wallet.
    let id = Uuid::new_v4().to_string();
    let me = Client {
        api: &api,
        id: id.clone(),
        bearer: token(&id, Role::Client),
    };
    let phone = format!("+7916{:07}", Uuid::new_v4().as_u128() % 10_000_000);
    let (status, body) = me
        .post("/v1/me/registration", support::registration(&phone))
        .await;
    assert_eq!(status, 201, "{body}");
    let wallet = api.open_wallet(&id, "open").await;
    let (status, body) = me
        .post(
            &format!("/v1/clients/{{me}}/wallets/{wallet}/top-ups"),
            json!({"amount": "20000.00", "currency": "RUB", "source": "card"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The client's calendar: a UTC offset, strictly parsed.
    let (status, body) = me
        .post("/v1/clients/{me}/time-zone", json!({"utc_offset": "+5"}))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_utc_offset")),
        "{body}"
    );
    let (status, body) = me
        .post(
            "/v1/clients/{me}/time-zone",
            json!({"utc_offset": "+03:00"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");

    // The operator moves the client into the group: it applies from the next operation.
    let (status, _, body) = api
        .post_as(
            Some(&operator),
            &format!("/v1/operator/clients/{id}/group"),
            Some("move-vip"),
            &json!({"group": "vip", "reason": "premium service"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let payments = format!("/v1/clients/{{me}}/wallets/{wallet}/payments");

    // At the threshold: no code, reserved and executed.
    let (status, body) = me
        .post(
            &format!("{payments}?wait=10"),
            json!({"amount": "1000.00", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(
        (status, body["payment"]["status_code"].as_u64()),
        (200, Some(6)),
        "{body}"
    );

    // Above the threshold and never confirmed: the payment processor cancels it.
    let (status, body) = me
        .post(
            &payments,
            json!({"amount": "1500.00", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let forgotten = body["payment_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM rm_payments WHERE payment_id = $1::uuid")
                .bind(&forgotten)
                .fetch_optional(&pool)
                .await
                .unwrap();
        if status.as_deref() == Some("cancelled") {
            break;
        }
        assert!(Instant::now() < deadline, "still {status:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Above it: status 0, a code sent, nothing reserved.
    let (status, body) = me
        .post(
            &payments,
            json!({"amount": "3000.00", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["payment"]["status"], "awaiting_confirmation", "{body}");
    assert_eq!(body["payment"]["status_code"], 0, "{body}");
    assert_eq!(body["confirmation"]["required"], true, "{body}");
    assert!(body["confirmation"]["sent_to"].as_str().is_some(), "{body}");
    assert_eq!(body["wallets"][0]["available"], "19000.00", "{body}");
    // Its spend limit is checked before the code is sent: 1,000.00 + 3,000.00 fits the day.
    let payment = body["payment_id"].as_str().unwrap().to_owned();
    let code = last_code(&pool, &phone).await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let confirm = format!("{payments}/{payment}/confirmation");
    let (status, body) = me.post(&confirm, json!({"code": wrong})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("otp_wrong")),
        "{body}"
    );
    let (status, body) = me
        .post(&format!("{confirm}?wait=10"), json!({"code": code}))
        .await;
    assert_eq!(
        (status, body["payment"]["status_code"].as_u64()),
        (200, Some(6)),
        "{body}"
    );
    let names: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        names.starts_with(&["PaymentConfirmed", "PaymentLocked"]),
        "{names:?}"
    );
    assert!(names.contains(&"SpendingCounted"), "{names:?}");
    // Confirming again is refused: it awaits nothing now.
    let (status, body) = me.post(&confirm, json!({"code": code})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("confirmation_not_awaited")),
        "{body}"
    );

    // 4,000.00 spent today from the wallet; the day limit is 5,000.00.
    let (status, last) = me
        .post(
            &format!("{payments}?wait=10"),
            json!({"amount": "1000.00", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(
        (status, last["payment"]["status_code"].as_u64()),
        (200, Some(6)),
        "{last}"
    );
    let (status, body) = me
        .post(
            &payments,
            json!({"amount": "0.01", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("below_min_operation_amount")),
        "{body}"
    );
    let (status, body) = me
        .post(
            &payments,
            json!({"amount": "1.00", "currency": "RUB", "service_id": "mobile"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("spend_limit_exceeded")),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("per day is 5000.00"),
        "{body}"
    );

    // GraphQL shows the group's limits and what today used of them.
    let v = env
        .graphql(
            Some(&me.bearer),
            "query($w: UUID!, $p: PositionInput) { wallet(id: $w, minPosition: $p) { limits { group maxBalance warningThreshold maxPaymentNow utcOffset spendLimits { scope period limit used remaining } } } }",
            json!({"w": wallet, "p": last["position"]}),
        )
        .await;
    let limits = &v["data"]["wallet"]["limits"];
    assert_eq!(limits["group"], "vip", "{v}");
    assert_eq!(limits["maxBalance"], "100000.00", "{v}");
    assert_eq!(limits["warningThreshold"], "1000.00", "{v}");
    assert_eq!(limits["maxPaymentNow"], "0.00", "{v}");
    assert_eq!(limits["utcOffset"], "+03:00", "{v}");
    assert_eq!(
        limits["spendLimits"],
        json!([{"scope": "wallet_source", "period": "day", "limit": "5000.00", "used": "5000.00", "remaining": "0.00"}]),
        "{v}"
    );

    drop(_platform);
    pool.close().await;
    etr_infra::pg::drop_database(&env.database_url)
        .await
        .unwrap();
}
