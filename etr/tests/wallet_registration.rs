//! Wallet registration end to end on the real broker and Postgres (e-wallet spec §2): with
//! manual approval set, a client's application waits in the operators' queue (GraphQL), its
//! login is refused until an operator approves, the first login then opens the account in the
//! currency applied for, and a personal-data change request waits for its own approval; a
//! rejected application is told at login with the operator's reason.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

fn person(last_name: &str) -> Value {
    let n = Uuid::new_v4().as_u128() % 10_000_000;
    json!({
        "last_name": last_name,
        "first_name": "Анна",
        "birth_date": "1991-07-02",
        "phone": format!("+7926{n:07}"),
        "email": "anna@example.ru"
    })
}

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

    async fn login(&self) -> (u16, Value) {
        let resp = self
            .api
            .http
            .post(format!("{}/v1/me/login", self.api.base))
            .bearer_auth(&self.bearer)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

/// Polls a GraphQL query until `done` holds for its data.
async fn until(
    env: &Env,
    bearer: &str,
    query: &str,
    vars: Value,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = env.graphql(Some(bearer), query, vars.clone()).await;
        if done(&v["data"]) {
            return v["data"].clone();
        }
        assert!(Instant::now() < deadline, "{query}: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_registration_with_manual_approval_opens_the_account_at_the_first_login() {
    let env = Env::new("wallet_registration").await;
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let operator_token = token("operator-1", Role::Operator);
    let operator = Caller {
        api: &api,
        bearer: operator_token.clone(),
    };

    // Settings are the operators': both approvals manual from now on; bad values refused.
    let put = |body: Value| {
        api.http
            .put(format!("{}/v1/operator/settings", api.base))
            .bearer_auth(&operator_token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };
    let resp = put(json!({"wallet_registration_approval": "sometimes"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = put(json!({"wallet_registration_approval": "manual", "personal_data_change_approval": "manual"}))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let settings: Value = resp.json().await.unwrap();
    assert_eq!(
        settings["wallet_registration_approval"], "manual",
        "{settings}"
    );
    assert_eq!(
        settings["personal_data_change_approval"], "manual",
        "{settings}"
    );

    // The client applies for a rouble wallet: submitted, not approved.
    let id = Uuid::new_v4().to_string();
    let client = Caller {
        api: &api,
        bearer: token(&id, Role::Client),
    };
    let (status, body) = client.login().await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_registered")),
        "{body}"
    );
    let (status, body) = client
        .post(
            "/v1/me/wallet-registration",
            json!({"currency": "RUB", "personal": person("Соколова")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["registration_status"], "submitted", "{body}");
    let wallet_id = body["wallet_id"].as_str().unwrap().to_owned();
    let (status, body) = client
        .post(
            "/v1/me/wallet-registration",
            json!({"currency": "XYZ", "personal": person("Соколова")}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_currency")),
        "{body}"
    );

    // Not approved yet: the login is refused, no account exists.
    let (status, body) = client.login().await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("registration_pending")),
        "{body}"
    );

    // The operators' queue shows it, with the applicant's data opened for the operator; a
    // client may not read the queue.
    let queue = until(
        &env,
        &operator_token,
        "{ walletRegistrations { clientId status currency walletId applicant { lastName phone } } }",
        json!({}),
        |d| d["walletRegistrations"].as_array().is_some_and(|a| a.iter().any(|r| r["clientId"] == id.as_str())),
    )
    .await;
    let mine = queue["walletRegistrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["clientId"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(mine["status"], "submitted");
    assert_eq!(mine["currency"], "RUB");
    assert_eq!(mine["applicant"]["lastName"], "Соколова", "{mine}");
    let denied = env
        .graphql(
            Some(&client.bearer),
            "{ walletRegistrations { clientId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        denied["errors"][0]["extensions"]["code"], "FORBIDDEN",
        "{denied}"
    );

    // The operator approves; the first login opens the account, later ones only answer it.
    let (status, body) = operator
        .post(
            &format!("/v1/operator/clients/{id}/wallet-registration/review"),
            json!({"approve": true, "reason": "documents checked"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = client.login().await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["wallet_id"], wallet_id.as_str(), "{body}");
    let names: Vec<&str> = body["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["WalletOpened", "WalletRegistrationCompleted"],
        "{body}"
    );
    let (status, body) = client.login().await;
    assert_eq!(
        (status, body["registration_status"].as_str()),
        (200, Some("completed")),
        "{body}"
    );
    assert_eq!(body["opened_now"], false);

    // The account works: a top-up, seen over GraphQL in the currency applied for.
    let (status, body) = client
        .post(
            &format!("/v1/clients/{id}/wallets/{wallet_id}/top-ups"),
            json!({"amount": "500.00", "currency": "RUB", "source": "card"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until(
        &env,
        &client.bearer,
        "query($w: UUID!) { wallet(id: $w) { balance currency } }",
        json!({"w": wallet_id}),
        |d| d["wallet"]["balance"] == "500.00" && d["wallet"]["currency"] == "RUB",
    )
    .await;

    // A personal-data change waits for its own approval; the cabinet keeps the old name.
    let (status, body) = client.post("/v1/me/personal-data", person("Орлова")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["status"], &body["request_status"]),
        (&json!("accepted"), &json!("submitted")),
        "{body}"
    );
    let request = body["request_id"].as_str().unwrap().to_owned();
    let customer = "query($c: UUID!) { customer(id: $c) { personal { lastName } walletRegistration { status } personalDataChangeRequests { requestId status } } }";
    until(&env, &client.bearer, customer, json!({"c": id}), |d| {
        d["customer"]["personalDataChangeRequests"][0]["status"] == "submitted"
            && d["customer"]["personal"]["lastName"] == "Соколова"
            && d["customer"]["walletRegistration"]["status"] == "completed"
    })
    .await;
    let (status, body) = operator
        .post(
            &format!("/v1/operator/clients/{id}/personal-data-change-requests/{request}/review"),
            json!({"approve": true, "reason": "marriage certificate checked"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    until(&env, &client.bearer, customer, json!({"c": id}), |d| {
        d["customer"]["personal"]["lastName"] == "Орлова"
            && d["customer"]["personalDataChangeRequests"][0]["status"] == "approved"
    })
    .await;

    // Another client's application is rejected: its login says so, with the reason.
    let other_id = Uuid::new_v4().to_string();
    let other = Caller {
        api: &api,
        bearer: token(&other_id, Role::Client),
    };
    let (status, body) = other
        .post(
            "/v1/me/wallet-registration",
            json!({"currency": "EUR", "personal": person("Петрова")}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = operator
        .post(
            &format!("/v1/operator/clients/{other_id}/wallet-registration/review"),
            json!({"approve": false, "reason": "the phone belongs to another client"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = other.login().await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("registration_rejected")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another client"),
        "{body}"
    );
    // A review of what is no longer waiting is refused.
    let (status, body) = operator
        .post(
            &format!("/v1/operator/clients/{other_id}/wallet-registration/review"),
            json!({"approve": true, "reason": "second thoughts"}),
        )
        .await;
    assert_eq!(status, 422, "{body}");
}
