//! The GraphQL read side on the real broker and Postgres: the client timeline with
//! pagination and its access rules, the client's state as of a time, the
//! `operationStatusChanged` subscription over a websocket, applications and loans written
//! through the command handler and read back, and the `/metrics` lag gauges.

mod support;

use etr_command_api::handler::{Handler, Meta, Outcome, SystemClock};
use etr_domain::{application, loan, Actor, ClientId, Command, Currency, Money};
use etr_query_api::auth::Role;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use support::{next, subscribe, token, Api, Env};
use uuid::Uuid;

fn rub(amount: &str) -> Money {
    Money {
        amount: Decimal::from_str(amount).unwrap(),
        currency: Currency::Rub,
    }
}

/// Runs a command through the real command handler (same database as the running
/// platform, whose relay publishes it); returns the position of its last event.
async fn handle(handler: &Handler, client: Uuid, key: &str, command: Command) -> Value {
    let meta = Meta {
        command_id: format!("{client}/{key}"),
        correlation_id: format!("{client}/loan-flow"),
        actor: Actor::client(ClientId(client)),
        request_hash: key.to_owned(),
    };
    match handler.handle(meta, command).await.unwrap().outcome {
        Outcome::Accepted { position, .. } => serde_json::to_value(position).unwrap(),
        Outcome::Rejected { code, message, .. } => panic!("{key} refused: {code}: {message}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_state_as_of_subscription_lending_and_metrics() {
    let env = Env::new("gql").await;
    let api = Api::new(&env);
    let client = Uuid::new_v4();
    let _etr = env.start(&["up", "--no-demo"]).await;
    let mine = token(&client.to_string(), Role::Client);
    let auditor = token("auditor-1", Role::Auditor);
    let partner = token("shop-1", Role::Partner);
    let theirs = token(&Uuid::new_v4().to_string(), Role::Client);

    let wallet = api.open_wallet(&client.to_string(), "open").await;
    let (s, _, top) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some("top"),
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{top}");

    // Subscribe once the wallet is in the read model, then pay: every status arrives in order.
    let v = env
        .graphql(
            Some(&mine),
            "query($w: UUID!, $p: PositionInput) { wallet(id: $w, minPosition: $p) { balance limits { group minOperation maxOperation maxBalance balanceHeadroom maxPaymentNow warningThreshold utcOffset spendLimits { scope } } } }",
            json!({"w": wallet, "p": top["position"]}),
        )
        .await;
    assert_eq!(v["data"]["wallet"]["balance"], "1000.00", "{v}");
    let limits = &v["data"]["wallet"]["limits"];
    assert_eq!(limits["group"], "identified", "{v}");
    assert_eq!(limits["utcOffset"], "+03:00", "{v}");
    assert_eq!(limits["warningThreshold"], Value::Null, "{v}");
    assert_eq!(limits["spendLimits"], json!([]), "{v}");
    assert_eq!(limits["minOperation"], "1.00", "{v}");
    assert_eq!(limits["maxBalance"], "600000.00");
    assert_eq!(limits["balanceHeadroom"], "599000.00");
    assert_eq!(limits["maxPaymentNow"], "1000.00");
    let subscription = "subscription($w: UUID!) { operationStatusChanged(walletId: $w) { paymentId walletId statusCode status eventType sequence } }";
    let mut ws = subscribe(&env, Some(&mine), subscription, json!({"w": wallet})).await;
    let mut stranger = subscribe(&env, Some(&theirs), subscription, json!({"w": wallet})).await;
    let refused = next(&mut stranger).await;
    assert_eq!(refused["type"], "next", "{refused}");
    assert!(refused["payload"]["data"].is_null(), "{refused}");
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"],
        "FORBIDDEN"
    );
    let mut anonymous = subscribe(&env, None, subscription, json!({"w": wallet})).await;
    let refused = next(&mut anonymous).await;
    assert_eq!(
        refused["payload"]["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{refused}"
    );
    // The subscription is registered once the server has read the subscribe message.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, _, paid) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/payments?wait=10"),
            Some("pay"),
            r#"{"amount":"250.25","currency":"RUB","service_id":"mobile"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{paid}");
    let mut codes = Vec::new();
    let mut last_sequence = 0;
    while codes.len() < 7 {
        let m = next(&mut ws).await;
        assert_eq!(m["type"], "next", "{m}");
        let change = &m["payload"]["data"]["operationStatusChanged"];
        assert_eq!(change["walletId"], wallet.as_str());
        let sequence = change["sequence"].as_i64().unwrap();
        assert!(
            sequence > last_sequence,
            "status changes arrive in log order"
        );
        last_sequence = sequence;
        codes.push(change["statusCode"].as_i64().unwrap());
    }
    assert_eq!(codes, vec![0, 1, 2, 3, 4, 5, 6]);

    // The timeline: every event of the client in log order, paged with cursors.
    let page = "query($c: UUID!, $after: String, $from: DateTime, $p: PositionInput) { clientTimeline(clientId: $c, first: 3, after: $after, from: $from, minPosition: $p) { \
                edges { cursor node { partition sequence eventType aggregateType actorKind actorId commandId correlationId occurredAt hash prevHash event } } pageInfo { hasNextPage } } }";
    let mut events: Vec<Value> = Vec::new();
    let mut after = Value::Null;
    loop {
        let v = env
            .graphql(
                Some(&mine),
                page,
                json!({"c": client, "after": after, "p": paid["position"]}),
            )
            .await;
        assert!(v["errors"].is_null(), "{v}");
        let t = &v["data"]["clientTimeline"];
        let edges = t["edges"].as_array().unwrap();
        assert!(edges.len() <= 3);
        events.extend(edges.iter().map(|e| e["node"].clone()));
        if t["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = edges.last().unwrap()["cursor"].clone();
    }
    let types: Vec<&str> = events
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types[0], "WalletOpened");
    assert_eq!(types[1], "WalletToppedUp");
    assert!(types.contains(&"HoldCaptured"), "{types:?}");
    for pair in events.windows(2) {
        assert!(pair[0]["sequence"].as_i64() < pair[1]["sequence"].as_i64());
        assert_eq!(pair[1]["prevHash"], pair[0]["hash"], "the chain links");
    }
    // The client's own commands, and the platform's execution step that follows them.
    for e in &events {
        let command = e["commandId"].as_str().unwrap();
        let platform = command.starts_with("platform:payment-execution/");
        assert!(
            command.starts_with(&format!("{client}/")) || platform,
            "{e}"
        );
        let expected = if platform { "system" } else { "client" };
        assert_eq!(e["actorKind"], expected, "{e}");
    }
    let head: i64 = sqlx::query_scalar("SELECT count(*) FROM rm_timeline WHERE client_id = $1")
        .bind(client)
        .fetch_one(&sqlx::PgPool::connect(&env.database_url).await.unwrap())
        .await
        .unwrap();
    assert_eq!(events.len() as i64, head);

    // `from`: only events at or after the top-up's time.
    let topped_at = events[1]["occurredAt"].clone();
    let v = env
        .graphql(
            Some(&auditor),
            page,
            json!({"c": client, "from": topped_at}),
        )
        .await;
    assert_eq!(
        v["data"]["clientTimeline"]["edges"][0]["node"]["eventType"], "WalletToppedUp",
        "{v}"
    );

    // State as of the top-up: 1000.00; as of now: 749.75.
    let as_of = "query($c: UUID!, $at: DateTime!) { clientStateAsOf(clientId: $c, at: $at) { events wallets { walletId balance held available } aggregates { aggregateType status version } } }";
    let v = env
        .graphql(Some(&auditor), as_of, json!({"c": client, "at": topped_at}))
        .await;
    assert!(v["errors"].is_null(), "{v}");
    let s = &v["data"]["clientStateAsOf"];
    assert_eq!(s["events"], 2);
    assert_eq!(s["wallets"][0]["balance"], "1000.00", "{v}");
    assert_eq!(s["aggregates"].as_array().unwrap().len(), 1);
    let v = env
        .graphql(
            Some(&mine),
            as_of,
            json!({"c": client, "at": "2100-01-01T00:00:00Z"}),
        )
        .await;
    let s = &v["data"]["clientStateAsOf"];
    assert_eq!(s["wallets"][0]["balance"], "749.75", "{v}");
    assert_eq!(s["wallets"][0]["available"], "749.75");
    let payment = s["aggregates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["aggregateType"] == "payment")
        .expect("the payment as of now");
    assert_eq!(payment["status"], "succeeded", "{payment}");

    // Who may read a timeline: not another client, not a partner.
    for (who, t) in [("another client", &theirs), ("a partner", &partner)] {
        let v = env.graphql(Some(t), page, json!({"c": client})).await;
        assert_eq!(
            v["errors"][0]["extensions"]["code"], "FORBIDDEN",
            "{who}: {v}"
        );
        assert!(v["data"].is_null() || v["data"]["clientTimeline"].is_null());
    }
    let v = env
        .graphql(Some(&mine), page, json!({"c": client, "after": "garbage"}))
        .await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{v}"
    );

    // Lending: an application through to a disbursed loan and a repayment, written by the
    // command handler, published by the running platform's relay, read back through GraphQL.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    // The same writer id as the running platform: this handler takes the partition's lease
    // over (fencing the platform's writer, which takes it back on its next command).
    let handler = Handler::new(
        pool.clone(),
        env.partitions,
        Arc::new(SystemClock),
        Arc::new(tokio::sync::Notify::new()),
        etr_command_api::handler::Settings::new(env.api_addr.clone()),
    );
    let application_id = Uuid::new_v4();
    let loan_id = Uuid::new_v4();
    let offer_id = Uuid::new_v4();
    let lend = |command| Command::Loan {
        client_id: ClientId(client),
        loan_id,
        command,
    };
    let product = etr_domain::product::Product {
        id: "payday-30".into(),
        name: "До зарплаты".into(),
        min_amount: rust_decimal::Decimal::from(1_000),
        max_amount: rust_decimal::Decimal::from(30_000),
        pricing: etr_domain::product::Pricing::Daily {
            daily_rate: rust_decimal::Decimal::new(8, 3),
            min_days: 7,
            max_days: 30,
        },
        penalty_rate: rust_decimal::Decimal::new(20, 2),
        prolongation_fee: rust_decimal::Decimal::ZERO,
    };
    let today = time::OffsetDateTime::now_utc().date();
    let made = etr_domain::product::offer(&product, rust_decimal::Decimal::from(5_000), 30, today)
        .unwrap();
    let offer = application::Offer {
        offer_id,
        product_id: made.product_id,
        amount: rub("5000.00"),
        term: 30,
        term_unit: "days".into(),
        contract_date: made.contract_date,
        schedule: made.instalments,
        charges: made.charges,
        psk_percent: made.psk.percent,
        psk_money: made.psk.money,
        // Serviced loans have their own end-to-end test (loan_servicing); this one keeps
        // the loan without a ledger.
        servicing: None,
    };
    // The loan as the conveyor issues it (its own test drives an application end to end):
    // with the offer's schedule and PSK.
    for (key, command) in [
        (
            "l1",
            lend(loan::Command::IssueLoan {
                application_id,
                principal: rub("5000.00"),
                term_days: 30,
                daily_rate_percent: "0.8".into(),
                terms: Some(Box::new(loan::Terms {
                    product_id: offer.product_id.clone(),
                    term: offer.term,
                    term_unit: offer.term_unit.clone(),
                    contract_date: offer.contract_date,
                    schedule: offer.schedule.clone(),
                    psk_percent: offer.psk_percent,
                    psk_money: offer.psk_money,
                    card_id: None,
                    payout_reference: "sbc-payout-1".into(),
                    servicing: None,
                })),
            }),
        ),
        (
            "l2",
            lend(loan::Command::ProlongLoan {
                days: 7,
                fee: rub("150.00"),
            }),
        ),
    ] {
        handle(&handler, client, key, command).await;
    }
    let position = handle(
        &handler,
        client,
        "l3",
        lend(loan::Command::AcceptRepayment {
            repayment_id: Uuid::new_v4(),
            amount: rub("1200.50"),
        }),
    )
    .await;
    let q = "query($c: UUID!, $l: UUID!, $p: PositionInput) { \
             loan(id: $l, minPosition: $p) { status principal outstanding repaid fees termDays dailyRatePercent dueOn issuedAt pskPercent pskMoney productId schedule { number date payment principal interest balance } movements { kind amount currency } } \
             client(id: $c, minPosition: $p) { wallets { walletId balance } loans { loanId outstanding } } }";
    let v = env
        .graphql(
            Some(&mine),
            q,
            json!({"c": client, "l": loan_id, "p": position}),
        )
        .await;
    assert!(v["errors"].is_null(), "{v}");
    let l = &v["data"]["loan"];
    assert_eq!(l["status"], "active");
    assert_eq!(l["principal"], "5000.00");
    // 5000.00 + 150.00 fee − 1200.50 repaid.
    assert_eq!(l["outstanding"], "3949.50", "{v}");
    assert_eq!(l["repaid"], "1200.50");
    assert_eq!(l["fees"], "150.00");
    assert_eq!(l["pskPercent"], offer.psk_percent.to_string(), "{l}");
    assert_eq!(l["productId"], "payday-30");
    // One payday repayment: 5000.00 + 5000.00 × 0.8 % × 30 days.
    assert_eq!(l["schedule"][0]["payment"], "6200.00", "{l}");
    assert_eq!(l["schedule"][0]["interest"], "1200.00");
    assert_eq!(l["termDays"], 37);
    let issued = time::Date::parse(
        &l["issuedAt"].as_str().unwrap()[..10],
        &time::format_description::well_known::Iso8601::DATE,
    )
    .unwrap();
    assert_eq!(
        l["dueOn"],
        (issued + time::Duration::days(37)).to_string(),
        "{l}"
    );
    let kinds: Vec<&str> = l["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["prolongation_fee", "repayment"]);
    let c = &v["data"]["client"];
    assert_eq!(c["wallets"][0]["balance"], "749.75");
    assert_eq!(c["loans"][0]["outstanding"], "3949.50");
    // Another client cannot read the loan.
    let v = env
        .graphql(
            Some(&theirs),
            "query($l: UUID!) { loan(id: $l) { outstanding } }",
            json!({"l": loan_id}),
        )
        .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
    assert!(v["data"].is_null() || v["data"]["loan"].is_null());

    // An open hold: a payment reserved (status 3) and not yet executed, then cancelled. Its
    // provider never answers (`hang`), so the payment processor leaves it reserved until its
    // deadline (60 s), long after the cancel.
    let wallet_id = Uuid::parse_str(&wallet).unwrap();
    let payment_id = Uuid::new_v4();
    let reserved = handle(
        &handler,
        client,
        "reserve",
        Command::Payment {
            client_id: ClientId(client),
            wallet_id,
            payment_id,
            command: etr_domain::payment::Command::Start {
                commission: None,
                amount: rub("100.00"),
                service_id: "internet-hang".into(),
                attributes: Default::default(),
                fraud: etr_domain::payment::FraudVerdict::Approved,
                autopayment_run: None,
            },
        },
    )
    .await;
    let q = "query($w: UUID!, $p: PositionInput) { wallet(id: $w, minPosition: $p) { balance held available holds { paymentId amount currency } limits { maxPaymentNow } } }";
    let v = env
        .graphql(Some(&mine), q, json!({"w": wallet, "p": reserved}))
        .await;
    let w = &v["data"]["wallet"];
    assert_eq!(w["held"], "100.00", "{v}");
    assert_eq!(w["available"], "649.75");
    assert_eq!(
        w["holds"],
        json!([{"paymentId": payment_id, "amount": "100.00", "currency": "RUB"}])
    );
    assert_eq!(w["limits"]["maxPaymentNow"], "649.75");
    let cancelled = handle(
        &handler,
        client,
        "cancel",
        Command::Payment {
            client_id: ClientId(client),
            wallet_id,
            payment_id,
            command: etr_domain::payment::Command::Cancel {
                reason: "changed my mind".into(),
            },
        },
    )
    .await;
    let v = env
        .graphql(Some(&mine), q, json!({"w": wallet, "p": cancelled}))
        .await;
    assert_eq!(v["data"]["wallet"]["holds"], json!([]), "{v}");
    assert_eq!(v["data"]["wallet"]["available"], "749.75");

    // Lag, per projection, as Prometheus gauges and in projectionStatus.
    let metrics = reqwest::get(format!("http://{}/metrics", env.query_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for projection in ["wallets", "lending", "timeline"] {
        assert!(
            metrics.contains(&format!(
                "etr_projection_lag_events{{projection=\"{projection}\",partition=\""
            )),
            "{metrics}"
        );
    }
    let v = env
        .graphql(
            Some(&auditor),
            "{ projectionStatus { projection partition lag } }",
            Value::Null,
        )
        .await;
    let rows = v["data"]["projectionStatus"].as_array().unwrap();
    assert_eq!(rows.len(), 3 * env.partitions as usize, "{v}");
}
