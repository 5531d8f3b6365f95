//! End to end on the real broker and Postgres: REST commands → one Postgres commit → relay →
//! Avro events on the topic, decoded through the registry; crash recovery; snapshot rebuild.

mod support;

use etr_query_api::auth::Role;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use support::{event_ids, read_topic, token, wait_published, Api, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_become_avro_events_and_bad_input_writes_nothing() {
    let env = Env::new("happy").await;
    let _etr = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = uuid::Uuid::new_v4().to_string();
    let mut accepted: Vec<String> = Vec::new();

    let a = api.open_wallet(&client, "w-a").await;
    let b = api.open_wallet(&client, "w-b").await;
    let base = format!("/v1/clients/{client}/wallets/{a}");

    let (s, _, top) = api
        .post(
            &format!("{base}/top-ups"),
            Some("t1"),
            r#"{"amount":"1000.50","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{top}");
    assert_eq!(top["wallets"][0]["balance"], "1000.50");
    accepted.extend(event_ids(&top));

    // The same key and body: the first outcome again, nothing written.
    let (s, replayed, again) = api
        .post(
            &format!("{base}/top-ups"),
            Some("t1"),
            r#"{"amount":"1000.50","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!((s, replayed), (200, true));
    assert_eq!(again["events"], top["events"]);
    assert_eq!(again["position"], top["position"]);
    // The same key with another body is refused.
    let (s, _, reused) = api
        .post(
            &format!("{base}/top-ups"),
            Some("t1"),
            r#"{"amount":"5","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (s, reused["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );

    let (s, _, paid) = api.post(&format!("{base}/payments?wait=10"), Some("p1"), r#"{"amount":"200","currency":"RUB","service_id":"mobile","attributes":{"phone":"+79001234567"}}"#).await.unwrap();
    assert_eq!(s, 200, "{paid}");
    assert_eq!(paid["payment"]["status_code"], 6);
    assert_eq!(paid["wallets"][0]["balance"], "800.50");
    accepted.extend(event_ids(&paid));

    let (s, _, failed) = api
        .post(
            &format!("{base}/payments?wait=10"),
            Some("p2"),
            r#"{"amount":"100","currency":"RUB","service_id":"svc-fail"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{failed}");
    assert_eq!(failed["payment"]["status_code"], 8);
    assert_eq!(failed["wallets"][0]["available"], "800.50");
    accepted.extend(event_ids(&failed));

    let (s, _, moved) = api
        .post(
            &format!("{base}/transfers"),
            Some("x1"),
            &json!({"to_wallet_id": b, "amount": "300.00", "currency": "RUB"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{moved}");
    accepted.extend(event_ids(&moved));

    // Bad input: a 4xx with a machine-readable code, never 5xx, and no event.
    let bad: Vec<(&str, Option<&str>, &str, u16, &str)> = vec![
        ("/top-ups", Some("b1"), "{not json", 400, "invalid_json"),
        (
            "/top-ups",
            Some("b2"),
            r#"{"amount":"10","currency":"XYZ","source":"card"}"#,
            400,
            "unknown_currency",
        ),
        (
            "/top-ups",
            Some("b3"),
            r#"{"amount":"-10","currency":"RUB","source":"card"}"#,
            400,
            "amount_not_positive",
        ),
        (
            "/top-ups",
            Some("b4"),
            r#"{"amount":"10.001","currency":"RUB","source":"card"}"#,
            400,
            "amount_too_precise",
        ),
        (
            "/top-ups",
            None,
            r#"{"amount":"10","currency":"RUB","source":"card"}"#,
            400,
            "missing_idempotency_key",
        ),
        (
            "/top-ups",
            Some("b6"),
            r#"{"amount":10,"currency":"RUB","source":"card"}"#,
            400,
            "amount_not_a_string",
        ),
        (
            "/payments",
            Some("b7"),
            r#"{"amount":"5000","currency":"RUB","service_id":"mobile"}"#,
            422,
            "insufficient_funds",
        ),
        (
            "/top-ups",
            Some("b8"),
            r#"{"amount":"10","currency":"USD","source":"card"}"#,
            422,
            "currency_mismatch",
        ),
        (
            "/top-ups",
            Some("b9"),
            r#"{"amount":"0.50","currency":"RUB","source":"card"}"#,
            422,
            "below_min_operation_amount",
        ),
    ];
    for (path, key, body, status, code) in bad {
        let (s, _, v) = api.post(&format!("{base}{path}"), key, body).await.unwrap();
        let got = v["error"]["code"].as_str().or(v["code"].as_str());
        assert_eq!((s, got), (status, Some(code)), "{path} {body}: {v}");
    }
    let unknown = uuid::Uuid::new_v4();
    let (s, _, v) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{unknown}/top-ups"),
            Some("b10"),
            r#"{"amount":"10","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!((s, v["code"].as_str()), (404, Some("wallet_not_found")));
    let (s, _, v) = api
        .post(
            "/v1/clients/not-a-uuid/wallets",
            Some("b11"),
            r#"{"currency":"RUB"}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (400, Some("invalid_path"))
    );
    // Another client cannot touch this client's wallet.
    let other = uuid::Uuid::new_v4();
    let (s, _, v) = api
        .post(
            &format!("/v1/clients/{other}/wallets/{a}/top-ups"),
            Some("b12"),
            r#"{"amount":"10","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!((s, v["code"].as_str()), (404, Some("wallet_not_found")));

    // Commands need a bearer token: none or a bad one is 401, another client's or an
    // auditor's is 403; nothing is written for any of them.
    let top_up = format!("{base}/top-ups");
    let body = r#"{"amount":"10","currency":"RUB","source":"card"}"#;
    let stranger = token(&uuid::Uuid::new_v4().to_string(), Role::Client);
    let auditor = token("auditor-1", Role::Auditor);
    for (who, bearer, status, code) in [
        ("no token", None, 401, "unauthenticated"),
        ("a forged token", Some("not-a-jwt"), 401, "unauthenticated"),
        ("another client", Some(stranger.as_str()), 403, "forbidden"),
        ("an auditor", Some(auditor.as_str()), 403, "forbidden"),
    ] {
        let (s, _, v) = api
            .post_as(bearer, &top_up, Some("unauthorised"), body)
            .await
            .unwrap();
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (status, Some(code)),
            "{who}: {v}"
        );
    }
    // A partner shop and an operator act under their own names.
    for (key, role, sub) in [
        ("by-partner", Role::Partner, "shop-7"),
        ("by-operator", Role::Operator, "op-2"),
    ] {
        let (s, _, v) = api
            .post_as(Some(&token(sub, role)), &top_up, Some(key), body)
            .await
            .unwrap();
        assert_eq!(s, 200, "{v}");
        accepted.extend(event_ids(&v));
    }

    wait_published(&env).await;
    let records = read_topic(&env).await;
    let http = reqwest::Client::new();
    let mut schema_ids = BTreeSet::new();
    for r in &records {
        assert_eq!(r.raw[0], 0, "Confluent magic byte");
        schema_ids.insert(u32::from_be_bytes([r.raw[1], r.raw[2], r.raw[3], r.raw[4]]));
        assert_eq!(r.envelope.client_id.to_string(), client);
        assert_eq!(r.partition as u32, r.envelope.partition);
        let expected_actor = match r.envelope.command_id.rsplit('/').next() {
            Some("by-partner") => ("partner", "shop-7".to_owned()),
            Some("by-operator") => ("operator", "op-2".to_owned()),
            // The provider step of a payment is the platform's.
            Some("execute") => ("system", "payment-processing".to_owned()),
            _ => ("client", client.to_string()),
        };
        assert_eq!(
            (r.envelope.actor.kind.as_str(), r.envelope.actor.id.clone()),
            expected_actor,
            "{}",
            r.envelope.command_id
        );
    }
    for id in schema_ids {
        let v: Value = http
            .get(format!("{}/schemas/ids/{id}", env.registry_url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            v["schema"]
                .as_str()
                .is_some_and(|s| s.contains("\"Envelope\"")),
            "schema {id}: {v}"
        );
    }
    // Wallet opening events + the accepted commands' events, nothing from refused ones.
    let in_log: Vec<String> = records
        .iter()
        .map(|r| r.envelope.event_id.to_string())
        .collect();
    let in_log_set: BTreeSet<_> = in_log.iter().cloned().collect();
    assert_eq!(
        in_log.len(),
        in_log_set.len(),
        "no duplicates without a crash"
    );
    for id in &accepted {
        assert!(
            in_log_set.contains(id),
            "accepted event {id} missing from the log"
        );
    }
    assert_eq!(
        in_log.len(),
        accepted.len() + 2,
        "exactly the accepted events (+2 wallet openings)"
    );
    // The partition is totally ordered: dense sequences in offset order.
    let seqs: Vec<u64> = records.iter().map(|r| r.envelope.sequence).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    // The hash chain links every event to the previous one of the client.
    for w in records.windows(2) {
        assert_eq!(w[1].envelope.prev_hash, w[0].envelope.hash);
    }
    for r in &records {
        assert_eq!(
            etr_command_api::handler::chain_hash(&r.envelope, &r.event).unwrap(),
            r.envelope.hash
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_commit_and_publish_loses_nothing_and_snapshots_rebuild() {
    let env = Env::new("crash").await;
    let api = Api::new(&env);
    let clients: Vec<String> = (0..6).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    // Outcome per command key: the events the platform accepted.
    let mut accepted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut wallets = Vec::new();

    // Phase 1: the command API without a relay commits; then SIGKILL before any publish.
    let etr = env.start(&["command-api"]).await;
    for (i, c) in clients.iter().enumerate() {
        let key = format!("open-{i}");
        let (s, _, body) = api
            .post(
                &format!("/v1/clients/{c}/wallets"),
                Some(&key),
                r#"{"currency":"RUB"}"#,
            )
            .await
            .unwrap();
        assert_eq!(s, 201);
        accepted.insert(format!("{c}/{key}"), event_ids(&body));
        wallets.push(body["wallets"][0]["wallet_id"].as_str().unwrap().to_owned());
        let key = format!("top-{i}");
        let (s, _, body) = api
            .post(
                &format!("/v1/clients/{c}/wallets/{}/top-ups", wallets[i]),
                Some(&key),
                r#"{"amount":"500","currency":"RUB","source":"card"}"#,
            )
            .await
            .unwrap();
        assert_eq!(s, 200);
        accepted.insert(format!("{c}/{key}"), event_ids(&body));
        // Refused: no events may ever appear for it.
        let (s, _, _) = api
            .post(
                &format!("/v1/clients/{c}/wallets/{}/payments", wallets[i]),
                Some("too-much"),
                r#"{"amount":"900","currency":"RUB","service_id":"m"}"#,
            )
            .await
            .unwrap();
        assert_eq!(s, 422);
    }
    etr.kill();

    // Phase 2: the whole platform under load, killed at an arbitrary moment.
    let etr = env.start(&["up", "--no-demo"]).await;
    let mut in_flight = tokio::task::JoinSet::new();
    for round in 0..20 {
        for (i, c) in clients.iter().enumerate() {
            let key = format!("pay-{round}");
            let path = format!("/v1/clients/{c}/wallets/{}/payments?wait=10", wallets[i]);
            let api = Api::new(&env);
            let id = format!("{c}/{key}");
            in_flight.spawn(async move {
                let r = api
                    .post(
                        &path,
                        Some(&key),
                        r#"{"amount":"5","currency":"RUB","service_id":"mobile"}"#,
                    )
                    .await;
                (id, path, key, r)
            });
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    etr.kill();
    let mut unknown = Vec::new();
    while let Some(done) = in_flight.join_next().await {
        let (id, path, key, r) = done.unwrap();
        match r {
            Ok((200 | 202, _, body)) => {
                accepted.insert(id, event_ids(&body));
            }
            _ => unknown.push((id, path, key)),
        }
    }

    // Phase 3: restart; retry the commands whose outcome the client never saw, with the same key.
    let _etr = env.start(&["up", "--no-demo"]).await;
    for (id, path, key) in unknown {
        let (s, _, body) = api
            .post(
                &path,
                Some(&key),
                r#"{"amount":"5","currency":"RUB","service_id":"mobile"}"#,
            )
            .await
            .unwrap();
        assert!(s == 200 || s == 202, "{s} {body}");
        accepted.insert(id, event_ids(&body));
    }
    // The payment processor executes every reserved payment (none stays at status 3), and
    // its commands are the only other ones in the log.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    support::wait_payments_final(&pool, std::time::Duration::from_secs(60)).await;
    let platform = support::platform_commands(&pool).await;
    assert_eq!(platform.len(), 20 * 6, "one execution per payment");
    accepted.extend(platform);
    wait_published(&env).await;

    let records = read_topic(&env).await;
    // Duplicates are allowed only as re-publishes with the same sequence and event.
    let mut by_position: BTreeMap<(i32, u64), String> = BTreeMap::new();
    for r in &records {
        let id = r.envelope.event_id.to_string();
        if let Some(prev) = by_position.insert((r.partition, r.envelope.sequence), id.clone()) {
            assert_eq!(prev, id, "two different events at one position");
        }
    }
    let in_log: BTreeSet<String> = by_position.values().cloned().collect();
    let expected: BTreeSet<String> = accepted.values().flatten().cloned().collect();
    assert_eq!(
        in_log, expected,
        "the log holds exactly the accepted commands' events"
    );
    // Sequences are dense per partition after de-duplication.
    for p in 0..env.partitions as i32 {
        let seqs: Vec<u64> = by_position
            .keys()
            .filter(|(q, _)| *q == p)
            .map(|(_, s)| *s)
            .collect();
        assert!(
            seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1),
            "partition {p}: {seqs:?}"
        );
    }

    let out = env.command(&["rebuild-snapshots"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "rebuild-snapshots failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(report["differing_rows"], 0);
    assert_eq!(
        report["aggregates"].as_u64(),
        Some(6 + 6 + 20 * 6),
        "6 wallets + their 6 clients (group and spending) + 120 payments"
    );
}
