//! The commit path's faults, each on the real broker and Postgres: a client's hash chain
//! stays linear under concurrency (fault 1), platform command ids never meet client keys (2),
//! the request fingerprint covers the path (3), a repeated key returns the first response
//! exactly (4), two processes never decide on stale state (5), no payment stays reserved (6),
//! amounts and bodies are exactly what the contract says (9).

mod support;

use etr_domain::envelope::GENESIS_HASH;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::{read_topic, wait_published, Api, Env, Record};
use uuid::Uuid;

/// Every client's chain in the log, checked link by link: the breaks found (client, sequence,
/// why). Re-published records (same sequence) count once.
fn chain_breaks(records: &[Record]) -> Vec<String> {
    let mut by_client: BTreeMap<Uuid, BTreeMap<u64, &Record>> = BTreeMap::new();
    for r in records {
        by_client
            .entry(r.envelope.client_id.0)
            .or_default()
            .insert(r.envelope.sequence, r);
    }
    let mut breaks = Vec::new();
    for (client, events) in by_client {
        let mut prev = GENESIS_HASH.to_owned();
        for (sequence, r) in events {
            if r.envelope.prev_hash != prev {
                breaks.push(format!("{client} at {sequence}: prev_hash does not link"));
            }
            let recomputed = etr_command_api::handler::chain_hash(&r.envelope, &r.event).unwrap();
            if recomputed != r.envelope.hash {
                breaks.push(format!("{client} at {sequence}: hash does not match"));
            }
            prev = r.envelope.hash.clone();
        }
    }
    breaks
}

/// The payment id the platform mints for a client's payment key (UUID v5 of the command id).
fn payment_id(client: &str, key: &str) -> Uuid {
    let command = Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("{client}/{key}").as_bytes());
    Uuid::new_v5(&command, b"payment")
}

async fn top_up(api: &Api, client: &str, wallet: &str, key: &str, amount: &str) -> (u16, Value) {
    let (s, _, v) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some(key),
            &format!(r#"{{"amount":"{amount}","currency":"RUB","source":"card"}}"#),
        )
        .await
        .unwrap();
    (s, v)
}

async fn pay(
    api: &Api,
    client: &str,
    wallet: &str,
    key: &str,
    amount: &str,
    service: &str,
    wait: u64,
) -> (u16, bool, Value) {
    api.post(
        &format!("/v1/clients/{client}/wallets/{wallet}/payments?wait={wait}"),
        Some(key),
        &format!(r#"{{"amount":"{amount}","currency":"RUB","service_id":"{service}"}}"#),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault1_concurrent_first_commands_keep_every_chain_linear() {
    let env = Env::new("chain").await;
    let _etr = env.start(&["up", "--no-demo"]).await;
    let clients: Vec<String> = (0..40).map(|_| Uuid::new_v4().to_string()).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for c in &clients {
        for k in 0..6 {
            let api = Api::new(&env);
            let c = c.clone();
            tasks.spawn(async move {
                let (s, _, v) = api
                    .post(
                        &format!("/v1/clients/{c}/wallets"),
                        Some(&format!("open-{k}")),
                        r#"{"currency":"RUB"}"#,
                    )
                    .await
                    .unwrap();
                assert_eq!(s, 201, "{v}");
            });
        }
    }
    while let Some(t) = tasks.join_next().await {
        t.unwrap();
    }
    wait_published(&env).await;
    let records = read_topic(&env).await;
    assert_eq!(records.len(), 40 * 6);
    let breaks = chain_breaks(&records);
    assert!(breaks.is_empty(), "{} breaks: {breaks:?}", breaks.len());
    let out = env
        .command(&["timeline", &clients[0], "--verify"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault2_3_4_ids_fingerprints_and_replays() {
    let env = Env::new("ids").await;
    let _etr = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let a = api.open_wallet(&client, "w-a").await;
    let b = api.open_wallet(&client, "w-b").await;

    // Fault 2: keys shaped like the platform's own step ids are the client's own keys.
    let pid = payment_id(&client, "x");
    for key in [
        "x/execute".to_owned(),
        format!("platform:payment-execution/{pid}/execute"),
    ] {
        let (s, _) = top_up(&api, &client, &a, &key, "10.00").await;
        assert_eq!(s, 200);
    }
    let (s, _, paid) = pay(&api, &client, &a, "x", "5.00", "mobile", 10).await;
    assert_eq!(s, 200, "{paid}");
    assert_eq!(
        paid["payment"]["status_code"], 6,
        "the payment completes whatever keys the client used before: {paid}"
    );

    // Fault 3: the same key and body on another wallet is another request.
    let (s, first) = top_up(&api, &client, &a, "same", "7.00").await;
    assert_eq!(s, 200, "{first}");
    let (s, other) = top_up(&api, &client, &b, "same", "7.00").await;
    assert_eq!(
        (s, other["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{other}"
    );
    let (s, _, open_again) = api
        .post(
            &format!("/v1/clients/{client}/wallets"),
            Some("w-a"),
            r#"{"currency":"RUB"}"#,
        )
        .await
        .unwrap();
    assert_eq!(s, 201, "the first outcome of w-a: {open_again}");
    let (s, _, top_with_open_key) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{a}/top-ups"),
            Some("w-a"),
            r#"{"amount":"7.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(
        (s, top_with_open_key["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "another route with a used key: {top_with_open_key}"
    );

    // Fault 4: the loser of a same-key race and every later repeat get the first response,
    // byte for byte, although the wallet moved on in between.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let api = Api::new(&env);
        let (client, a) = (client.clone(), a.clone());
        racers.spawn(async move {
            api.post(
                &format!("/v1/clients/{client}/wallets/{a}/top-ups"),
                Some("race"),
                r#"{"amount":"1.00","currency":"RUB","source":"card"}"#,
            )
            .await
            .unwrap()
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = racers.join_next().await {
        answers.push(r.unwrap());
    }
    assert_eq!(
        answers.iter().filter(|(_, replayed, _)| !replayed).count(),
        1
    );
    let (s0, _, body0) = answers[0].clone();
    for (s, _, body) in &answers {
        assert_eq!((*s, body), (s0, &body0));
    }
    top_up(&api, &client, &a, "later", "3.00").await;
    let (s, replayed, again) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{a}/top-ups"),
            Some("race"),
            r#"{"amount":"1.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert!(replayed);
    assert_eq!((s, &again), (s0, &body0));

    // A payment: its first answer (202, reserved) is what a repeat gets, after it executed.
    let (s, _, started) = pay(&api, &client, &a, "p-replay", "2.00", "mobile", 0).await;
    assert_eq!(s, 202, "{started}");
    assert_eq!(started["payment"]["status_code"], 3);
    let (s, _, waited) = pay(&api, &client, &a, "p-replay", "2.00", "mobile", 10).await;
    assert_eq!(
        (s, &waited["payment"]["status_code"]),
        (200, &Value::from(6))
    );
    let (s, replayed, repeat) = pay(&api, &client, &a, "p-replay", "2.00", "mobile", 0).await;
    assert!(replayed);
    assert_eq!((s, &repeat), (202, &started));
    // A refusal is recorded as the first outcome too.
    let (s, _, refused) = pay(&api, &client, &b, "too-much", "1000.00", "mobile", 0).await;
    assert_eq!(s, 422, "{refused}");
    top_up(&api, &client, &b, "fill", "5000.00").await;
    let (s, replayed, refused_again) =
        pay(&api, &client, &b, "too-much", "1000.00", "mobile", 0).await;
    assert!(replayed);
    assert_eq!((s, &refused_again), (422, &refused));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault9_amounts_and_bodies_are_exactly_the_contract() {
    let env = Env::new("amounts").await;
    let _etr = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let w = api.open_wallet(&client, "w").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let outbox = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM outbox")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = outbox().await;
    let top = format!("/v1/clients/{client}/wallets/{w}/top-ups");
    let pay_path = format!("/v1/clients/{client}/wallets/{w}/payments");
    let long = "1".repeat(29);
    let cases: Vec<(&str, String, &str)> = vec![
        (
            &top,
            r#"{"amount":100,"currency":"RUB","source":"card"}"#.into(),
            "amount_not_a_string",
        ),
        (
            &top,
            r#"{"amount":"1e5","currency":"RUB","source":"card"}"#.into(),
            "amount_exponent",
        ),
        (
            &top,
            r#"{"amount":"1_000.00","currency":"RUB","source":"card"}"#.into(),
            "amount_underscore",
        ),
        (
            &top,
            r#"{"amount":"+5","currency":"RUB","source":"card"}"#.into(),
            "amount_signed",
        ),
        (
            &top,
            r#"{"amount":"-5","currency":"RUB","source":"card"}"#.into(),
            "amount_not_positive",
        ),
        (
            &top,
            r#"{"amount":" 5","currency":"RUB","source":"card"}"#.into(),
            "amount_whitespace",
        ),
        (
            &top,
            format!(r#"{{"amount":"{long}","currency":"RUB","source":"card"}}"#),
            "amount_too_long",
        ),
        (
            &top,
            r#"{"amount":"1.00","amount":"1000000.00","currency":"RUB","source":"card"}"#.into(),
            "duplicate_key",
        ),
        (
            &pay_path,
            r#"{"amount":"1.00","currency":"RUB","service_id":"m","attributes":{"a":"1","a":"2"}}"#
                .into(),
            "duplicate_key",
        ),
        (
            &top,
            r#"{"amount":"1.005","currency":"RUB","source":"card"}"#.into(),
            "amount_too_precise",
        ),
    ];
    for (i, (path, body, code)) in cases.iter().enumerate() {
        let (s, _, v) = api
            .post(path, Some(&format!("bad-{i}")), body)
            .await
            .unwrap();
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (400, Some(*code)),
            "{body}: {v}"
        );
    }
    assert_eq!(outbox().await, before, "a refused request writes no event");
    // Zero is never printed with a sign: empty the wallet and look at every amount.
    top_up(&api, &client, &w, "t", "10.00").await;
    let (s, _, paid) = pay(&api, &client, &w, "all", "10.00", "mobile", 10).await;
    assert_eq!(s, 200, "{paid}");
    fn signed_zeros(v: &Value, found: &mut Vec<String>) {
        match v {
            Value::String(s)
                if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() =>
            {
                found.push(s.clone())
            }
            Value::Array(a) => a.iter().for_each(|v| signed_zeros(v, found)),
            Value::Object(o) => o.values().for_each(|v| signed_zeros(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    signed_zeros(&paid, &mut found);
    assert!(found.is_empty(), "{found:?} in {paid}");
    assert_eq!(paid["wallets"][0]["available"], "0.00", "{paid}");
}

/// Starts a second command API process (no relay, no registry) on the same database.
async fn second_command_api(env: &Env, addr: &str) -> support::Running {
    let child = env
        .command(&["command-api"])
        .env("ETR_COMMAND_API_ADDR", addr)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let running = support::Running::from_child(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while reqwest::get(format!("http://{addr}/health")).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "second command API did not come up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running
}

/// POSTs through `first` until the answer is not 503 (the partition's writer is being taken
/// over) with the same key, going to `other` while `first` does not answer at all; returns
/// the answer.
async fn post_retrying(
    first: &Api,
    other: &Api,
    path: &str,
    key: &str,
    body: &str,
) -> (u16, Value) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut api = first;
    loop {
        match api.post(path, Some(key), body).await {
            Ok((503, _, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(_) if Instant::now() < deadline => {
                api = if std::ptr::eq(api, first) {
                    other
                } else {
                    first
                };
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok((s, _, v)) => return (s, v),
            Err(e) => panic!("{path}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault5_two_processes_serve_the_same_partitions_without_stale_decisions() {
    let env = Env::new("two").await;
    let first = env.start(&["up", "--no-demo"]).await;
    let second_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let _second = second_command_api(&env, &second_addr).await;
    let one = Api::new(&env);
    let two = Api {
        http: reqwest::Client::new(),
        base: format!("http://{second_addr}"),
    };
    let clients: Vec<String> = (0..12).map(|_| Uuid::new_v4().to_string()).collect();
    let mut wallets = Vec::new();
    for c in &clients {
        wallets.push(one.open_wallet(c, "w").await);
    }
    // Every round tops up through one process and at once pays exactly that much through
    // the other: a decision on stale state would refuse the payment.
    let mut tasks = tokio::task::JoinSet::new();
    for (c, w) in clients.iter().cloned().zip(wallets.clone()) {
        let (one, two) = (
            Api {
                http: reqwest::Client::new(),
                base: one.base.clone(),
            },
            Api {
                http: reqwest::Client::new(),
                base: two.base.clone(),
            },
        );
        tasks.spawn(async move {
            let mut paid = 0u32;
            for round in 0..15 {
                let (via_top, via_pay) = if round % 2 == 0 {
                    (&one, &two)
                } else {
                    (&two, &one)
                };
                let (s, v) = post_retrying(
                    via_top,
                    via_pay,
                    &format!("/v1/clients/{c}/wallets/{w}/top-ups"),
                    &format!("t{round}"),
                    r#"{"amount":"10.00","currency":"RUB","source":"card"}"#,
                )
                .await;
                assert_eq!(s, 200, "{v}");
                let (s, v) = post_retrying(
                    via_pay,
                    via_top,
                    &format!("/v1/clients/{c}/wallets/{w}/payments"),
                    &format!("p{round}"),
                    r#"{"amount":"10.00","currency":"RUB","service_id":"mobile"}"#,
                )
                .await;
                assert!(
                    s == 202 || s == 201,
                    "round {round}: a wrong refusal: {s} {v}"
                );
                paid += 1;
            }
            paid
        });
    }
    // Halfway, the process holding the leases dies; the other takes over.
    tokio::time::sleep(Duration::from_millis(700)).await;
    first.kill();
    let mut payments = 0;
    while let Some(t) = tasks.join_next().await {
        payments += t.unwrap();
    }
    assert_eq!(payments, 12 * 15);
    // The platform again (relay, processor), then every check on the log and the snapshots.
    let _again = env.start(&["up", "--no-demo"]).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    support::wait_payments_final(&pool, Duration::from_secs(90)).await;
    wait_published(&env).await;
    let records = read_topic(&env).await;
    let breaks = chain_breaks(&records);
    assert!(breaks.is_empty(), "{breaks:?}");
    let balances: Vec<String> = sqlx::query_scalar(
        "SELECT state->'Wallet'->>'balance' FROM snapshots WHERE aggregate_type = 'wallet_account'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(balances.len(), 12);
    assert!(
        balances
            .iter()
            .all(|b| b.parse::<rust_decimal::Decimal>().unwrap().is_zero()),
        "every top-up paid out exactly once: {balances:?}"
    );
    // No lost update: 15 top-ups and 15 executed payments per wallet, each exactly once.
    let mut seen: BTreeSet<(i32, u64)> = BTreeSet::new();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        if seen.insert((r.partition, r.envelope.sequence)) {
            *kinds.entry(r.envelope.event_type.clone()).or_default() += 1;
        }
    }
    assert_eq!(kinds.get("WalletToppedUp"), Some(&(12 * 15)), "{kinds:?}");
    assert_eq!(kinds.get("PaymentSucceeded"), Some(&(12 * 15)), "{kinds:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault6_no_payment_stays_reserved() {
    let env = Env::new("reserved").await;
    let etr = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let w = api.open_wallet(&client, "w").await;
    top_up(&api, &client, &w, "t", "1000.00").await;

    // A client that gives up on its request (waiting for the final status) after 100 ms:
    // whatever had been committed goes on without it, and nothing stays reserved.
    let _ = reqwest::Client::new()
        .post(format!(
            "{}/v1/clients/{client}/wallets/{w}/payments?wait=10",
            env.api()
        ))
        .bearer_auth(support::token(&client, etr_query_api::auth::Role::Client))
        .header("Idempotency-Key", "gone")
        .header("content-type", "application/json")
        .body(r#"{"amount":"50.00","currency":"RUB","service_id":"mobile"}"#)
        .timeout(Duration::from_millis(100))
        .send()
        .await;
    // Payments in flight when the whole platform is killed.
    let mut keys = Vec::new();
    for i in 0..10 {
        let key = format!("crash-{i}");
        let (s, _, v) = pay(&api, &client, &w, &key, "10.00", "mobile", 0).await;
        assert_eq!(s, 202, "{v}");
        keys.push(key);
    }
    etr.kill();
    // Restarted: the processor picks up every payment it had not finished.
    let etr = env.start(&["up", "--no-demo"]).await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let status = |key: &str| {
        let id = payment_id(&client, key);
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(
                "SELECT state->'Payment'->>'status' FROM snapshots WHERE aggregate_type = 'payment' AND aggregate_id = $1",
            )
            .bind(id)
            .fetch_optional(&pool)
            .await
            .unwrap()
            .flatten()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    // The abandoned request either committed nothing or its payment completed.
    let gone = status("gone").await;
    let gone_committed = gone.is_some();
    for key in keys
        .iter()
        .map(String::as_str)
        .chain(gone_committed.then_some("gone"))
    {
        while status(key).await.as_deref() != Some("Succeeded") {
            assert!(Instant::now() < deadline, "{key}: {:?}", status(key).await);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    etr.kill();
    // Restarted with a short provider deadline; a provider that never answers is retried,
    // then voided at the provider at the deadline, which releases the hold.
    let mut restarted = env.command(&["up", "--no-demo"]);
    restarted
        .env("ETR_PAYMENT_ATTEMPT_TIMEOUT_MS", "300")
        .env("ETR_PAYMENT_DEADLINE_SECS", "3");
    let _etr = env.start_with(restarted).await;
    let (s, _, hung) = pay(&api, &client, &w, "hang", "100.00", "svc-hang", 0).await;
    assert_eq!(s, 202, "{hung}");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut pending = Vec::new();
        for key in keys
            .iter()
            .map(String::as_str)
            .chain(["hang"])
            .chain(gone_committed.then_some("gone"))
        {
            let s = status(key).await;
            if !matches!(s.as_deref(), Some("Succeeded" | "Failed" | "Cancelled")) {
                pending.push((key.to_owned(), s));
            }
        }
        if pending.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still not final: {pending:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status("hang").await.as_deref(), Some("Failed"));
    if gone_committed {
        assert_eq!(status("gone").await.as_deref(), Some("Succeeded"));
    }
    for key in &keys {
        assert_eq!(status(key).await.as_deref(), Some("Succeeded"), "{key}");
    }
    // Money: 1000 − (50 if the abandoned payment was committed) − 10 × 10 captured, the hung
    // payment's hold released: the rest can be paid exactly.
    let rest = if gone_committed { "850.00" } else { "900.00" };
    let (s, _, v) = pay(&api, &client, &w, "probe", rest, "mobile", 10).await;
    assert_eq!(
        (s, &v["wallets"][0]["balance"]),
        (200, &Value::from("0.00")),
        "{v}"
    );
    // Each payment was executed once: one execution per payment in the log.
    wait_published(&env).await;
    let mut executions: BTreeMap<Uuid, BTreeSet<u64>> = BTreeMap::new();
    for r in read_topic(&env).await {
        if r.envelope.event_type == "PaymentExecutionStarted" {
            executions
                .entry(r.envelope.aggregate_id)
                .or_default()
                .insert(r.envelope.sequence);
        }
    }
    assert_eq!(executions.len(), if gone_committed { 13 } else { 12 });
    assert!(executions.values().all(|s| s.len() == 1), "{executions:?}");
}
