//! Group commit across partitions on the real Postgres server: one statement carries the
//! batches of several partitions, and a batch that may not commit (its writer's lease was
//! taken) fails alone — the other partitions' commands in the same group commit.

use etr_command_api::handler::{Handler, Meta, Outcome, Settings, SystemClock};
use etr_command_api::Error;
use etr_domain::ids::{client_command_id, partition_of, ClientId};
use etr_domain::wallet;
use etr_domain::{Actor, Command, Currency, Money};
use rust_decimal::Decimal;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

const PARTITIONS: u32 = 4;

fn meta(client: ClientId, key: &str) -> Meta {
    let command_id = client_command_id(client, key);
    Meta {
        request_hash: command_id.clone(),
        correlation_id: command_id.clone(),
        command_id,
        actor: Actor::client(client),
    }
}

fn open(client: ClientId, wallet: Uuid) -> Command {
    Command::Wallet {
        client_id: client,
        wallet_id: wallet,
        command: wallet::Command::OpenWallet {
            currency: Currency::Rub,
        },
    }
}

fn top_up(client: ClientId, wallet: Uuid) -> Command {
    Command::Wallet {
        client_id: client,
        wallet_id: wallet,
        command: wallet::Command::TopUp {
            operation_id: Uuid::new_v4(),
            amount: Money::new(Decimal::new(10_000, 2), Currency::Rub),
            source: "card".to_owned(),
        },
    }
}

/// Clients spread over every partition, `per_partition` each.
fn clients(per_partition: usize) -> Vec<ClientId> {
    let mut counts = vec![0; PARTITIONS as usize];
    let mut out = Vec::new();
    while counts.iter().any(|c| *c < per_partition) {
        let c = ClientId(Uuid::new_v4());
        let p = partition_of(c, PARTITIONS) as usize;
        if counts[p] < per_partition {
            counts[p] += 1;
            out.push(c);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_partition_fails_alone_and_the_rest_of_its_group_commits() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_group_commit")
        .await
        .expect("a fresh database on the local Postgres server");
    Handler::prepare(&pool, PARTITIONS).await.unwrap();
    let handler = Arc::new(Handler::new(
        pool.clone(),
        PARTITIONS,
        Arc::new(SystemClock),
        Arc::new(Notify::new()),
        Settings::new("writer-a"),
    ));
    let clients = clients(8);
    let wallets: Vec<(ClientId, Uuid)> = clients.iter().map(|c| (*c, Uuid::new_v4())).collect();
    for (c, w) in &wallets {
        let handled = handler
            .handle(meta(*c, "open"), open(*c, *w))
            .await
            .unwrap();
        assert!(matches!(handled.outcome, Outcome::Accepted { .. }));
    }

    // Another writer takes partition 0 (as a process whose lease expired would see it).
    sqlx::query(
        "UPDATE partition_heads SET writer_id = 'writer-b', epoch = epoch + 1, \
         lease_expires_at = clock_timestamp() + interval '1 hour' WHERE partition = 0",
    )
    .execute(&pool)
    .await
    .unwrap();

    // Every client tops up at once: the groups mix partition 0 with the others.
    let answers = futures::future::join_all(wallets.iter().map(|(c, w)| {
        let handler = handler.clone();
        let (c, w) = (*c, *w);
        async move { (c, handler.handle(meta(c, "top-up"), top_up(c, w)).await) }
    }))
    .await;
    let mut committed = 0;
    for (client, answer) in &answers {
        if partition_of(*client, PARTITIONS) == 0 {
            match answer {
                Err(Error::NotOwner {
                    partition: 0,
                    holder,
                }) => assert_eq!(holder.as_deref(), Some("writer-b")),
                other => panic!("partition 0 is writer-b's, yet: {other:?}"),
            }
        } else {
            match answer {
                Ok(h) if matches!(h.outcome, Outcome::Accepted { .. }) => committed += 1,
                other => panic!(
                    "partition {} is ours: {other:?}",
                    partition_of(*client, PARTITIONS)
                ),
            }
        }
    }
    assert_eq!(committed, 8 * (PARTITIONS as usize - 1));

    // Exactly the other partitions' top-ups were written: 1 event each, after the opens.
    let rows: Vec<(i32, i64)> = sqlx::query_as(
        "SELECT partition, count(*) FROM outbox_events WHERE event_type = 'WalletToppedUp' \
         GROUP BY partition ORDER BY partition",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        rows,
        (1..PARTITIONS as i32).map(|p| (p, 8)).collect::<Vec<_>>()
    );
    let recorded: i64 =
        sqlx::query_scalar("SELECT count(*) FROM command_records WHERE command_id LIKE '%/top-up'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(recorded, 8 * (i64::from(PARTITIONS) - 1));
    // Every partition's head is dense: its last sequence = its events.
    let heads: Vec<(i32, i64, i64)> = sqlx::query_as(
        "SELECT h.partition, h.sequence, (SELECT count(*) FROM outbox_events o WHERE o.partition = h.partition) \
         FROM partition_heads h ORDER BY h.partition",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    for (p, head, events) in heads {
        assert_eq!(head, events, "partition {p}");
    }
    pool.close().await;
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}
