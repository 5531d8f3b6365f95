//! The loan conveyor's flow as the end-to-end tests drive it over REST: register, apply,
//! choose the offer, sign with the SMS code, bind the card, wait for the disbursement.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

use super::{Api, Env};

pub struct Flow<'a> {
    pub api: &'a Api,
    pub pool: &'a sqlx::PgPool,
    pub bearer: String,
    /// `/v1/partner/applications` or `/v1/me/applications`.
    pub base: &'static str,
}

pub fn unique_phone() -> String {
    let n = Uuid::new_v4().as_u128() % 10_000_000;
    format!("+7916{n:07}")
}

pub fn unique_passport() -> String {
    let n = Uuid::new_v4().as_u128();
    format!("{:04} {:06}", 4500 + (n % 400), (n / 400) % 1_000_000)
}

pub fn person(last_name: &str, phone: &str, passport: &str) -> Value {
    json!({
        "last_name": last_name,
        "first_name": "Иван",
        "middle_name": "Петрович",
        "birth_date": "1988-03-14",
        "phone": phone,
        "email": "ivan@example.ru",
        "passport": {
            "number": passport,
            "issued_on": "2010-05-20",
            "department_code": "770-001",
            "issued_by": "ОВД Тверского района г. Москвы"
        },
        "registration_address": "г. Москва, ул. Ленина, д. 1, кв. 2",
        "employment": {"employer": "ООО Ромашка", "position": "инженер", "months_employed": 36},
        "monthly_income": "90000.00",
        "guarantors": [{"full_name": "Петров Пётр", "phone": "+79160000001", "relation": "брат"}]
    })
}

impl Flow<'_> {
    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .api
            .post_as(Some(&self.bearer), path, Some(key), &body.to_string())
            .await
            .unwrap();
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .api
            .http
            .get(format!("{}{path}", self.api.base))
            .bearer_auth(&self.bearer)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn create(
        &self,
        client: Option<&str>,
        amount: &str,
        term: u32,
        product: &str,
    ) -> String {
        let mut body = json!({
            "amount": amount, "currency": "RUB", "term": term, "product_id": product,
            "cart": [{"name": "Смартфон", "quantity": 1, "price": amount}]
        });
        if let Some(c) = client {
            body["client_id"] = json!(c);
        }
        let (status, body) = self
            .post(self.base, &format!("create-{}", Uuid::new_v4()), body)
            .await;
        assert_eq!(status, 201, "{body}");
        body["application_id"].as_str().unwrap().to_owned()
    }

    /// Waits until the application's status is one of `statuses`.
    pub async fn wait(&self, app: &str, statuses: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (status, view) = self.get(&format!("{}/{app}", self.base)).await;
            assert_eq!(status, 200, "{view}");
            if statuses.contains(&view["status"].as_str().unwrap_or_default()) {
                return view;
            }
            assert!(
                Instant::now() < deadline,
                "application {app} stayed {view} (waiting for {statuses:?})"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Waits until the conveyor's run of the application is at `step` (the run follows the
    /// log, so it may trail the application's committed status a little).
    pub async fn wait_step(&self, app: &str, step: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, view) = self.get(&format!("{}/{app}", self.base)).await;
            if view["process_step"] == step {
                return view;
            }
            assert!(Instant::now() < deadline, "{view} never reached {step}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn last_code(&self, phone: &str) -> String {
        let text: String = sqlx::query_scalar(
            "SELECT text FROM simulator_sms WHERE phone = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(phone)
        .fetch_one(self.pool)
        .await
        .expect("a code was sent");
        text.split(|c: char| !c.is_ascii_digit())
            .rfind(|w| !w.is_empty())
            .unwrap()
            .to_owned()
    }

    /// From approval to the card binding request: choose the first offer, sign with the
    /// code, give the card.
    pub async fn sign_and_bind(&self, app: &str, phone: &str, card_token: &str) -> Value {
        let approved = self.wait(app, &["approved"]).await;
        let offer = approved["offers"][0]["offer_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, body) = self
            .post(
                &format!("{}/{app}/offer", self.base),
                "offer",
                json!({"offer_id": offer}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let generated = self.wait(app, &["contract_generated"]).await;
        let sha = generated["contract_sha256"].as_str().unwrap().to_owned();
        assert_eq!(sha.len(), 64);
        // A wrong code is refused and signs nothing.
        let (status, body) = self
            .post(&format!("{}/{app}/otp", self.base), "otp-1", json!({}))
            .await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["document_sha256"], sha);
        let code = self.last_code(phone).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        let (status, body) = self
            .post(
                &format!("{}/{app}/sign", self.base),
                "sign-wrong",
                json!({"code": wrong}),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("otp_wrong")),
            "{body}"
        );
        let (status, body) = self
            .post(
                &format!("{}/{app}/sign", self.base),
                "sign",
                json!({"code": code}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "accepted", "{body}");
        // The same request again answers the first outcome (the code is spent by now).
        let (status, again) = self
            .post(
                &format!("{}/{app}/sign", self.base),
                "sign",
                json!({"code": code}),
            )
            .await;
        assert_eq!((status, &again["command_id"]), (200, &body["command_id"]));
        let (status, body) = self
            .post(
                &format!("{}/{app}/card", self.base),
                "card",
                json!({"provider": "sbc", "card_token": card_token, "masked_pan": "220220******1234"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        approved
    }
}

/// Where a test platform keeps its documents: under the workspace's `target/`.
pub fn documents_dir(env: &Env) -> String {
    format!(
        "{}/../target/test-documents/{}",
        env!("CARGO_MANIFEST_DIR"),
        env.topic
    )
}

pub fn platform_env(env: &Env, extra: &[(&str, &str)]) -> std::process::Command {
    let mut command = env.command(&["up", "--no-demo"]);
    command
        .env("ETR_CONVEYOR_ATTEMPT_TIMEOUT_MS", "3000")
        .env("ETR_OTP_RESEND_AFTER_SECS", "0")
        .env("ETR_DOCUMENTS_DIR", documents_dir(env));
    for (k, v) in extra {
        command.env(k, v);
    }
    command
}
