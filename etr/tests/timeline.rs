//! The auditor timeline is read from the log; `--verify` finds a tampered event.

mod support;

use rdkafka::producer::FutureRecord;
use std::time::Duration;
use support::{read_topic, wait_published, Api, Env};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeline_verifies_the_chain_and_finds_a_tampered_event() {
    let env = Env::new("timeline").await;
    let api = Api::new(&env);
    let client = uuid::Uuid::new_v4();
    let _etr = env.start(&["up", "--no-demo"]).await;
    let (_, _, opened) = api
        .post(
            &format!("/v1/clients/{client}/wallets"),
            Some("o"),
            r#"{"currency":"RUB"}"#,
        )
        .await
        .unwrap();
    let wallet = opened["wallets"][0]["wallet_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for i in 0..3 {
        let (s, _, _) = api
            .post(
                &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
                Some(&format!("t{i}")),
                r#"{"amount":"100.00","currency":"RUB","source":"card"}"#,
            )
            .await
            .unwrap();
        assert_eq!(s, 200);
    }
    wait_published(&env).await;

    let out = env
        .command(&["timeline", &client.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "WalletOpened",
            "WalletToppedUp",
            "WalletToppedUp",
            "WalletToppedUp"
        ]
    );
    assert_eq!(lines[1]["command_id"], format!("{client}/t0"));
    assert_eq!(lines[1]["actor"], format!("client:{client}"));

    let verified = env
        .command(&["timeline", &client.to_string(), "--verify"])
        .output()
        .unwrap();
    assert!(verified.status.success());
    assert!(String::from_utf8_lossy(&verified.stdout).contains("\"chain\":\"intact\""));

    // As of just before the last top-up: the balance was 200.00.
    let records = read_topic(&env).await;
    let last_at = records.last().unwrap().envelope.occurred_at - time::Duration::microseconds(1);
    let as_of = last_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let state = env
        .command(&["timeline", &client.to_string(), "--as-of", &as_of])
        .output()
        .unwrap();
    let state: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&state.stdout).trim()).unwrap();
    assert_eq!(state["state"]["Wallet"]["balance"], "200.00", "{state}");

    // Tamper: a copy of the second top-up with its amount changed but its hash kept, appended
    // to the client's partition as the next sequence.
    let original = &records[2];
    let mut envelope = original.envelope.clone();
    envelope.sequence = records.iter().map(|r| r.envelope.sequence).max().unwrap() + 1;
    envelope.prev_hash = records.last().unwrap().envelope.hash.clone();
    let mut event = original.event.clone();
    if let etr_domain::Event::Wallet(etr_domain::wallet::Event::WalletToppedUp { amount, .. }) =
        &mut event
    {
        amount.amount = rust_decimal::Decimal::new(1_000_000, 2);
    } else {
        panic!("expected a top-up, got {event:?}");
    }
    let bytes = env.codec().encode(&envelope, &event).await.unwrap();
    let producer = etr_infra::kafka::producer(&env.bootstrap()).unwrap();
    producer
        .send(
            FutureRecord::to(&env.topic)
                .partition(original.partition)
                .key(&client.to_string())
                .payload(&bytes),
            Duration::from_secs(10),
        )
        .await
        .unwrap();

    let tampered = env
        .command(&["timeline", &client.to_string(), "--verify"])
        .output()
        .unwrap();
    assert!(
        !tampered.status.success(),
        "a tampered log must fail verification"
    );
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&tampered.stdout).trim()).unwrap();
    assert_eq!(report["chain"], "broken");
    assert_eq!(report["first_break"]["sequence"], envelope.sequence);
    assert!(report["first_break"]["reason"]
        .as_str()
        .unwrap()
        .contains("does not match the content"));
}
