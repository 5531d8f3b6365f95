//! Loan servicing and credit-history reporting end to end on the real broker and Postgres: a
//! client takes a payday loan through the conveyor, its business days are closed (simulated
//! days), it repays partly early from its wallet, prolongs, has accrual stopped and resumed by
//! an operator, pays the quoted payoff and the loan is Closed with zero debt; the day's
//! credit-history file for the bureau holds 1.4, 2.3, 2.1 and 2.5 for the loan, opens with the
//! bureau's key and verifies with the platform's public key; the bureau's receipt is
//! recorded per record.

mod support;

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use support::lending::{person, platform_env, unique_passport, unique_phone, Flow};
use support::{token, Api, Env};
use time::Date;
use uuid::Uuid;

use etr_query_api::auth::Role;

const BILLING: &str = "query($l: UUID!, $p: PositionInput) { loan(id: $l, minPosition: $p) { \
    status outstanding accrued \
    billing { businessDate standing accrualStopped credit charges chargesCap cardRepaymentPending \
      debt { fees penalties interest principal total } \
      schedule { date payment status } \
      earlyRepayment { possible payoff partialAbove validUntil } \
      prolongation { possible fee newLastDate } } \
    movements { kind amount } } }";

struct Loan<'a> {
    env: &'a Env,
    api: &'a Api,
    client: String,
    loan_id: String,
    wallet_id: String,
}

impl Loan<'_> {
    fn path(&self, tail: &str) -> String {
        format!("/v1/clients/{}/loans/{}/{tail}", self.client, self.loan_id)
    }

    async fn client_post(&self, tail: &str, key: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .api
            .post(&self.path(tail), Some(key), &body.to_string())
            .await
            .unwrap();
        (status, body)
    }

    async fn operator(&self, action: &str, key: &str, body: Value) -> (u16, Value) {
        let (status, _, body) = self
            .api
            .post_as(
                Some(&token("op-7", Role::Operator)),
                &format!(
                    "/v1/operator/clients/{}/loans/{}/{action}",
                    self.client, self.loan_id
                ),
                Some(key),
                &body.to_string(),
            )
            .await
            .unwrap();
        (status, body)
    }

    async fn close_days(&self, through: Date) -> Value {
        let (status, body) = self
            .operator(
                "close-days",
                &format!("close-{through}"),
                json!({"through": through.to_string()}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    async fn billing(&self, position: &Value) -> Value {
        let v = self
            .env
            .graphql(
                Some(&token(&self.client, Role::Client)),
                BILLING,
                json!({"l": self.loan_id, "p": position["position"]}),
            )
            .await;
        assert!(v["errors"].is_null(), "{v}");
        v["data"]["loan"].clone()
    }

    async fn quote(&self) -> Value {
        let resp = self
            .api
            .http
            .get(format!(
                "{}{}",
                self.api.base,
                self.path("early-repayment-quote")
            ))
            .bearer_auth(token(&self.client, Role::Client))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.json().await.unwrap()
    }

    /// The wallet's balance once the wallets read model shows `expected` (what the last
    /// command left); the last one seen after 20 s.
    async fn balance(&self, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let v = self
                .env
                .graphql(
                    Some(&token(&self.client, Role::Client)),
                    "query($w: UUID!) { wallet(id: $w) { balance } }",
                    json!({"w": self.wallet_id}),
                )
                .await;
            let balance = v["data"]["wallet"]["balance"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if balance == expected || Instant::now() > deadline {
                return balance;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn names(body: &Value) -> Vec<String> {
    body["events"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["event_type"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_loan_is_serviced_to_closed_and_its_credit_history_file_is_signed_and_sealed() {
    let env = Env::new("loan_servicing").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let dir = format!(
        "{}/../target/test-bki/{}",
        env!("CARGO_MANIFEST_DIR"),
        env.topic
    );
    let keys = format!("{dir}/keys");
    let files = format!("{dir}/files");
    let bki = [
        ("ETR_BKI_KEYS_DIR", keys.as_str()),
        ("ETR_BKI_FILES_DIR", files.as_str()),
        ("ETR_SIMULATED_DAYS", "1"),
    ];
    let platform = env.start_with(platform_env(&env, &bki)).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let me = Flow {
        api: &api,
        pool: &pool,
        bearer: token(&client, Role::Client),
        base: "/v1/me/applications",
    };
    let phone = unique_phone();
    let (status, body) = me
        .post(
            "/v1/me/registration",
            "register",
            person("Соколов", &phone, &unique_passport()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // A payday loan of 5,000 for 30 days at 0.8 % a day, prolongation fee 300.00.
    let app = me.create(None, "5000.00", 30, "payday-30").await;
    me.sign_and_bind(&app, &phone, "tok-happy").await;
    let done = me.wait(&app, &["disbursed"]).await;
    let loan_id = done["loan_id"].as_str().unwrap().to_owned();
    let wallet_id = api.open_wallet(&client, "wallet").await;
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet_id}/top-ups"),
            Some("top-up"),
            r#"{"amount":"6000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let loan = Loan {
        env: &env,
        api: &api,
        client: client.clone(),
        loan_id: loan_id.clone(),
        wallet_id,
    };

    // The disbursement day: nothing accrued, the payoff is the principal.
    let quote = loan.quote().await;
    let contract_day = Date::parse(
        quote["business_date"].as_str().unwrap(),
        &time::format_description::well_known::Iso8601::DATE,
    )
    .unwrap();
    assert_eq!(quote["payoff"], "5000.00", "{quote}");
    assert_eq!(quote["debt"]["interest"], "0.00");

    // Refusals write nothing: a client may not close days; another client may not repay;
    // more than the wallet holds; an early repayment that does not exceed what is owed.
    let (status, _, body) = api
        .post_as(
            Some(&token(&client, Role::Client)),
            &format!("/v1/operator/clients/{client}/loans/{loan_id}/close-days"),
            Some("client-close"),
            &json!({"through": "2030-01-01"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    let (status, _, body) = api
        .post_as(
            Some(&token(&Uuid::new_v4().to_string(), Role::Client)),
            &loan.path("repayments"),
            Some("stranger"),
            &json!({"wallet_id": loan.wallet_id, "amount": "10.00"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 403, "{body}");
    let (status, body) = loan
        .client_post(
            "repayments",
            "too-much",
            json!({"wallet_id": loan.wallet_id, "amount": "7000.00"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("insufficient_funds")),
        "{body}"
    );
    assert!(body.get("repayment_id").is_none(), "{body}");
    let (status, body) = loan
        .client_post(
            "repayments",
            "bad-amount",
            json!({"wallet_id": loan.wallet_id, "amount": "10.001"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = loan.operator("stop-accrual", "no-reason", json!({})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("missing_field")),
        "{body}"
    );
    assert_eq!(loan.balance("6000.00").await, "6000.00");

    // Ten business days close: 10 × 0.8 % × 5,000 = 400.00 of interest.
    let closed = loan
        .close_days(contract_day + time::Duration::days(10))
        .await;
    assert_eq!(names(&closed), vec!["InterestAccrued"], "{closed}");
    let view = loan.billing(&closed).await;
    assert_eq!(view["billing"]["debt"]["interest"], "400.00", "{view}");
    assert_eq!(view["accrued"], "400.00");
    assert_eq!(view["billing"]["earlyRepayment"]["payoff"], "5400.00");
    assert_eq!(view["billing"]["earlyRepayment"]["partialAbove"], "400.00");

    // A partial early repayment of 2,400: the interest, then 2,000 of principal.
    let (status, body) = loan
        .client_post(
            "early-repayments",
            "early-1",
            json!({"wallet_id": loan.wallet_id, "amount": "2400.00", "recalculate": "term"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        names(&body),
        vec!["LoanRepaymentDebited", "RepaymentAllocated"],
        "{body}"
    );
    let view = loan.billing(&body).await;
    assert_eq!(view["billing"]["debt"]["principal"], "3000.00", "{view}");
    assert_eq!(view["billing"]["debt"]["interest"], "0.00");
    assert_eq!(loan.balance("3600.00").await, "3600.00");

    // Prolonged by a month for the product's 300.00 fee: the last instalment moves on.
    let due_before = view["billing"]["schedule"]
        .as_array()
        .and_then(|s| s.last())
        .map(|i| i["date"].clone())
        .unwrap();
    assert_eq!(view["billing"]["prolongation"]["fee"], "300.00");
    let (status, body) = loan
        .client_post("prolongations", "prolong", json!({"months": 1}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), vec!["TermExtended"], "{body}");
    let view = loan.billing(&body).await;
    assert_eq!(view["billing"]["debt"]["fees"], "300.00", "{view}");
    let due_after = view["billing"]["schedule"]
        .as_array()
        .and_then(|s| s.last())
        .map(|i| i["date"].clone())
        .unwrap();
    assert!(
        due_after.as_str().unwrap() > due_before.as_str().unwrap(),
        "{due_before} → {due_after}"
    );

    // From a bound card: the bank authorises and captures, then the repayment is allocated
    // (the fee first); a card the bank declines pays nothing.
    let bind = |number: &'static str, key: &'static str| {
        let (api, client) = (&api, client.clone());
        async move {
            let (status, _, body) = api
                .post(
                    &format!("/v1/clients/{client}/cards"),
                    Some(key),
                    &json!({"number": number, "expiry": "12/30", "cvc": "123"}).to_string(),
                )
                .await
                .unwrap();
            assert_eq!(status, 201, "{body}");
            body["card_id"].as_str().unwrap().to_owned()
        }
    };
    let good_card = bind("4111 1111 1111 1111", "card-good").await;
    let bad_card = bind("4000 0000 0000 0002", "card-bad").await;
    let (status, body) = loan
        .client_post(
            "repayments",
            "card-both",
            json!({"wallet_id": loan.wallet_id, "card_id": good_card, "amount": "300.00"}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("repayment_source")),
        "{body}"
    );
    let (status, body) = loan
        .client_post(
            "repayments",
            "card-pay",
            json!({"card_id": good_card, "amount": "300.00"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(names(&body), vec!["CardRepaymentRequested"], "{body}");
    let settled = |expected_fees: &'static str| {
        let loan = &loan;
        let body = body.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                let view = loan.billing(&body).await;
                if view["billing"]["cardRepaymentPending"].is_null()
                    && view["billing"]["debt"]["fees"] == expected_fees
                {
                    return view;
                }
                assert!(Instant::now() < deadline, "{view}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let view = settled("0.00").await;
    assert_eq!(view["billing"]["debt"]["principal"], "3000.00", "{view}");
    let (status, body) = loan
        .client_post(
            "repayments",
            "card-declined",
            json!({"card_id": bad_card, "amount": "100.00"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // (While the bank has it, other repayments are refused: `domain/tests/loan_servicing.rs`.)
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = loan.billing(&body).await;
        if view["billing"]["cardRepaymentPending"].is_null() {
            assert_eq!(view["billing"]["debt"]["total"], "3000.00", "{view}");
            break;
        }
        assert!(Instant::now() < deadline, "{view}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(loan.balance("3600.00").await, "3600.00");

    // An operator stops accrual: three closed days accrue nothing; resumed, two days do.
    let (status, body) = loan
        .operator(
            "stop-accrual",
            "stop",
            json!({"reason": "the client is in hospital"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = loan
        .operator("stop-accrual", "stop-again", json!({"reason": "x"}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_transition")),
        "{body}"
    );
    loan.close_days(contract_day + time::Duration::days(13))
        .await;
    let (status, body) = loan
        .operator(
            "resume-accrual",
            "resume",
            json!({"reason": "certificate received"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let view = loan.billing(&body).await;
    assert_eq!(view["billing"]["debt"]["interest"], "0.00", "{view}");
    let closed = loan
        .close_days(contract_day + time::Duration::days(15))
        .await;
    let view = loan.billing(&closed).await;
    // 2 × 0.8 % × 3,000 = 48.00.
    assert_eq!(view["billing"]["debt"]["interest"], "48.00", "{view}");

    // The quote of the open day, paid exactly, closes the loan with zero debt and no credit.
    let quote = loan.quote().await;
    assert_eq!(quote["payoff"], "3048.00", "{quote}");
    assert_eq!(
        quote["business_date"],
        (contract_day + time::Duration::days(15)).to_string()
    );
    assert!(quote["valid_until"].as_str().unwrap().ends_with("+03:00"));
    let (status, body) = loan
        .client_post(
            "early-repayments",
            "payoff",
            json!({"wallet_id": loan.wallet_id}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        names(&body),
        vec!["LoanRepaymentDebited", "RepaymentAllocated", "LoanClosed"],
        "{body}"
    );
    let view = loan.billing(&body).await;
    assert_eq!(view["status"], "closed", "{view}");
    assert_eq!(view["outstanding"], "0.00");
    assert_eq!(view["billing"]["debt"]["total"], "0.00");
    assert_eq!(view["billing"]["credit"], "0.00");
    assert_eq!(view["billing"]["earlyRepayment"]["possible"], false);
    assert_eq!(loan.balance("552.00").await, "552.00");
    let kinds: Vec<&str> = view["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec![
            "accrual",
            "early_repayment",
            "prolongation_fee",
            "repayment",
            "accrual",
            "early_repayment"
        ]
    );
    // A closed loan takes no more money.
    let (status, body) = loan
        .client_post(
            "repayments",
            "after",
            json!({"wallet_id": loan.wallet_id, "amount": "1.00"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_transition")),
        "{body}"
    );

    // The credit-history builder has recorded the loan's events.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let codes: Vec<String> = sqlx::query_scalar(
            "SELECT code FROM bki_records WHERE uid = $1::uuid ORDER BY partition, sequence",
        )
        .bind(&loan_id)
        .fetch_all(&pool)
        .await
        .unwrap();
        if codes.last().map(String::as_str) == Some("2.5") {
            assert_eq!(codes.first().map(String::as_str), Some("1.4"), "{codes:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{codes:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The day's upload: one file for the bureau, sealed and signed.
    let mut upload = env.command(&["bki", "upload"]);
    for (k, v) in bki {
        upload.env(k, v);
    }
    let out = upload.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let file: Value = serde_json::from_str(stdout.lines().next().expect("a file")).unwrap();
    assert_eq!(file["bureau"], "nbki", "{file}");
    let path = |location: &Value| {
        location
            .as_str()
            .and_then(|l| l.strip_prefix("file://"))
            .unwrap()
            .to_owned()
    };
    let sealed = std::fs::read(path(&file["location"])).unwrap();
    let signature = std::fs::read(path(&file["signature_location"])).unwrap();
    // The bureau opens it with its secret key; the platform's public key verifies it.
    let secret: [u8; 32] = hex::decode(
        std::fs::read_to_string(format!("{keys}/simulator/nbki.secret"))
            .unwrap()
            .trim(),
    )
    .unwrap()
    .try_into()
    .unwrap();
    let plain = etr_infra::crypto::BureauKeys::from_secret(secret)
        .open(&sealed)
        .expect("the file opens with the bureau's key");
    let platform_key = etr_infra::crypto::Software::new(
        &std::fs::read(format!("{keys}/signing.pk8")).unwrap(),
        Default::default(),
    )
    .unwrap()
    .signing_public_key();
    assert!(etr_infra::crypto::verify(&platform_key, &plain, &signature));
    let mut altered = plain.clone();
    altered[0] ^= 1;
    assert!(!etr_infra::crypto::verify(
        &platform_key,
        &altered,
        &signature
    ));
    use sha2::Digest as _;
    assert_eq!(
        file["plain_sha256"],
        hex::encode(sha2::Sha256::digest(&plain))
    );
    let text = String::from_utf8(plain).unwrap();
    assert!(text.starts_with("H;ETR-BKI;1;nbki;"), "{text}");
    let codes: Vec<String> = text
        .lines()
        .map(etr_domain::credit_history::split_line)
        .filter(|f| f.first().map(String::as_str) == Some("R") && f.get(3) == Some(&loan_id))
        .map(|f| f[1].clone())
        .collect();
    for code in ["1.4", "2.3", "2.1", "2.5"] {
        assert!(codes.iter().any(|c| c == code), "{code} missing: {codes:?}");
    }
    // The subject's title data is in the file, opened from the sealed personal data.
    assert!(
        text.contains(";Соколов;Иван;Петрович;1988-03-14;"),
        "{text}"
    );
    // The bureau's receipt is recorded for every record of the loan.
    let report = env
        .command(&["bki", "report", "--loan", &loan_id])
        .envs(bki)
        .output()
        .unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&report.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() >= 6, "{lines:?}");
    assert!(
        lines
            .iter()
            .all(|l| l["status"] == "accepted" && l["late"] == false),
        "{lines:?}"
    );
    // GraphQL shows the same per loan.
    let v = env
        .graphql(
            Some(&token("op-7", Role::Operator)),
            "query($l: UUID!) { loan(id: $l) { creditHistory { code bureau status late } } }",
            json!({"l": loan_id}),
        )
        .await;
    let entries = v["data"]["loan"]["creditHistory"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        entries
            .iter()
            .any(|e| e["code"] == "2.5" && e["status"] == "accepted" && e["bureau"] == "nbki"),
        "{v}"
    );
    // A second upload of the same day sends nothing again.
    let again = env.command(&["bki", "upload"]).envs(bki).output().unwrap();
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).trim().is_empty());

    drop(platform);
    pool.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(support::lending::documents_dir(&env));
    etr_infra::pg::drop_database(&env.database_url)
        .await
        .unwrap();
}
