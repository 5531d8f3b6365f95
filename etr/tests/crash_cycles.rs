//! SIGKILL of the whole platform under 64 concurrent clients, 20 times: after the cycles the
//! log holds exactly the accepted commands' events (the clients' and the payment processor's),
//! dense per partition; every client's chain verifies; money is conserved; no payment is left
//! reserved; the read models equal a fresh rebuild from the log.

mod support;

use etr_domain::envelope::GENESIS_HASH;
use etr_domain::{wallet, Event};
use rust_decimal::Decimal;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::{dump_read_models, event_ids, read_topic, wait_projected, wait_published, Api, Env};
use uuid::Uuid;

const CLIENTS: usize = 64;
const CYCLES: usize = 20;

/// One client's commands, in the order it sends them; a command whose answer was lost in a
/// crash is sent again, with the same key, after the restart.
struct Client {
    id: String,
    wallet: String,
    /// Commands still to (re)send: (path, key, body).
    next: u64,
    unanswered: Option<(String, String, String)>,
}

fn command(client: &Client, n: u64) -> (String, String, String) {
    let base = format!("/v1/clients/{}/wallets/{}", client.id, client.wallet);
    if n.is_multiple_of(2) {
        (
            format!("{base}/top-ups"),
            format!("t{n}"),
            r#"{"amount":"10.00","currency":"RUB","source":"card"}"#.to_owned(),
        )
    } else {
        (
            format!("{base}/payments"),
            format!("p{n}"),
            r#"{"amount":"5.00","currency":"RUB","service_id":"mobile"}"#.to_owned(),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_kills_under_load_lose_nothing_and_strand_nothing() {
    let env = Env::new("crash").await;
    let mut etr = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let mut clients = Vec::new();
    let mut accepted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for _ in 0..CLIENTS {
        let id = Uuid::new_v4().to_string();
        let (s, _, v) = api
            .post(
                &format!("/v1/clients/{id}/wallets"),
                Some("w"),
                r#"{"currency":"RUB"}"#,
            )
            .await
            .unwrap();
        assert_eq!(s, 201, "{v}");
        accepted.insert(format!("{id}/w"), event_ids(&v));
        let wallet = v["wallets"][0]["wallet_id"].as_str().unwrap().to_owned();
        clients.push(Client {
            id,
            wallet,
            next: 0,
            unanswered: None,
        });
    }
    let mut kills = 0;
    for cycle in 0..CYCLES {
        // Every client sends its commands one after the other until the platform dies.
        let mut tasks = tokio::task::JoinSet::new();
        for mut client in std::mem::take(&mut clients) {
            let api = Api::new(&env);
            tasks.spawn(async move {
                let mut answered: Vec<(String, Value)> = Vec::new();
                loop {
                    let (path, key, body) = match client.unanswered.take() {
                        Some(c) => c,
                        None => {
                            let c = command(&client, client.next);
                            client.next += 1;
                            c
                        }
                    };
                    match api.post(&path, Some(&key), &body).await {
                        Ok((s, _, v)) if s == 200 || s == 201 || s == 202 => {
                            answered.push((format!("{}/{key}", client.id), v));
                        }
                        Ok((422, _, v)) if v["code"] == "insufficient_funds" => {}
                        Ok((s, _, v)) if s != 503 => panic!("{path} {key}: {s} {v}"),
                        _ => {
                            // No answer (the platform died) or not taken: send it again later.
                            client.unanswered = Some((path, key, body));
                            return (client, answered);
                        }
                    }
                }
            });
        }
        let pause = 150 + (Uuid::new_v4().as_u128() % 600) as u64;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        etr.kill();
        kills += 1;
        while let Some(done) = tasks.join_next().await {
            let (client, answered) = done.unwrap();
            for (id, v) in answered {
                accepted.insert(id, event_ids(&v));
            }
            clients.push(client);
        }
        etr = env.start(&["up", "--no-demo"]).await;
        eprintln!("cycle {cycle}: killed after {pause} ms");
    }
    // Send what was left unanswered by the last kill.
    for client in &mut clients {
        if let Some((path, key, body)) = client.unanswered.take() {
            let (s, _, v) = api.post(&path, Some(&key), &body).await.unwrap();
            assert!(s == 200 || s == 202 || s == 422, "{s} {v}");
            accepted.insert(format!("{}/{key}", client.id), event_ids(&v));
        }
    }
    assert_eq!(kills, CYCLES);

    // The payment processor finishes every payment; none stays reserved.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    support::wait_payments_final(&pool, Duration::from_secs(120)).await;
    accepted.extend(support::platform_commands(&pool).await);
    wait_published(&env).await;
    let records = read_topic(&env).await;

    // Exactly the accepted commands' events, each position holding one event.
    let mut by_position: BTreeMap<(i32, u64), &support::Record> = BTreeMap::new();
    for r in &records {
        if let Some(prev) = by_position.insert((r.partition, r.envelope.sequence), r) {
            assert_eq!(
                prev.envelope.event_id, r.envelope.event_id,
                "two events at one position"
            );
        }
    }
    let in_log: BTreeSet<String> = by_position
        .values()
        .map(|r| r.envelope.event_id.to_string())
        .collect();
    let expected: BTreeSet<String> = accepted.values().flatten().cloned().collect();
    assert_eq!(in_log.len(), expected.len());
    eprintln!(
        "{} commands accepted, {} events in the log, {} records read (re-publishes included)",
        accepted.len(),
        in_log.len(),
        records.len()
    );
    assert_eq!(
        in_log, expected,
        "the log holds exactly the accepted commands' events"
    );
    for p in 0..env.partitions as i32 {
        let seqs: Vec<u64> = by_position
            .keys()
            .filter(|(q, _)| *q == p)
            .map(|(_, s)| *s)
            .collect();
        assert!(
            seqs.iter().enumerate().all(|(i, s)| *s == i as u64 + 1),
            "partition {p} not dense"
        );
    }
    // Every chain links.
    let mut heads: BTreeMap<Uuid, String> = BTreeMap::new();
    for r in by_position.values() {
        let prev = heads
            .entry(r.envelope.client_id.0)
            .or_insert_with(|| GENESIS_HASH.to_owned());
        assert_eq!(
            &r.envelope.prev_hash, prev,
            "chain of {}",
            r.envelope.client_id
        );
        let recomputed = etr_command_api::handler::chain_hash(&r.envelope, &r.event).unwrap();
        assert_eq!(recomputed, r.envelope.hash);
        *prev = r.envelope.hash.clone();
    }
    // Money: balances = top-ups − captured payments; nothing held.
    let (mut topped, mut captured) = (Decimal::ZERO, Decimal::ZERO);
    for r in by_position.values() {
        match &r.event {
            Event::Wallet(wallet::Event::WalletToppedUp { amount, .. }) => topped += amount.amount,
            Event::Wallet(wallet::Event::HoldCaptured { amount, .. }) => captured += amount.amount,
            _ => {}
        }
    }
    for p in 0..env.partitions as i32 {
        if let Some((_, s)) = by_position.keys().filter(|(q, _)| *q == p).max() {
            wait_projected(&pool, "wallets", i64::from(p), *s as i64).await;
            wait_projected(&pool, "timeline", i64::from(p), *s as i64).await;
        }
    }
    let (balance, held): (Decimal, Decimal) =
        sqlx::query_as("SELECT COALESCE(sum(balance), 0), COALESCE(sum(held), 0) FROM rm_wallets")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(topped > Decimal::ZERO && captured > Decimal::ZERO);
    assert_eq!(balance, topped - captured, "money is conserved");
    assert_eq!(held, Decimal::ZERO, "no hold is left");

    // The live read models equal a fresh rebuild of the same log.
    let (fresh, fresh_url) = etr_infra::pg::fresh_database("etr_test_crash_rebuild")
        .await
        .unwrap();
    let events: Vec<_> = by_position
        .values()
        .map(|r| (r.envelope.clone(), r.event.clone()))
        .collect();
    etr_projections::runtime::apply_batch(
        &fresh,
        &etr_projections::wallets::Wallets { announce: false },
        &events,
    )
    .await
    .unwrap();
    etr_projections::runtime::apply_batch(&fresh, &etr_projections::timeline::Timeline, &events)
        .await
        .unwrap();
    assert_eq!(
        dump_read_models(&pool).await,
        dump_read_models(&fresh).await
    );
    fresh.close().await;
    etr_infra::pg::drop_database(&fresh_url)
        .await
        .expect("dropping the rebuild's database");
    drop(etr);
}
