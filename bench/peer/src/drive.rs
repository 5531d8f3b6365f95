//! The callers: each owns its wallets, opens them, waits for the others, then alternates
//! top-ups and payments over its wallets round-robin until told to stop.

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework};
use postgres_es::{PostgresCqrs, PostgresEventRepository};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;

use crate::wallet::{Command, Event, Wallet};
use crate::{Error, Until, Workload};

/// Amount of every top-up, in roubles.
pub const TOP_UP: Decimal = dec!(100.00);
/// Amount of every payment, in roubles. Paid from a wallet right after its top-up, so never
/// refused.
pub const PAYMENT: Decimal = dec!(10.00);
/// Currency every wallet is opened in.
pub const CURRENCY: &str = "RUB";

/// What runs a command.
enum Target {
    /// `CqrsFramework` over postgres-es: load (replay or snapshot), handle, commit, one
    /// transaction per command.
    Peer(Box<PostgresCqrs<Wallet>>),
    /// One autocommit single-row INSERT of the command's event.
    Raw(PgPool),
}

impl Target {
    fn new(workload: Workload, pool: &PgPool) -> Target {
        let repo = PostgresEventRepository::new(pool.clone());
        match workload {
            // What `postgres_es::postgres_cqrs(pool, vec![], ())` builds.
            Workload::PeerEventStore => Target::Peer(Box::new(CqrsFramework::new(
                PersistedEventStore::new_event_store(repo),
                vec![],
                (),
            ))),
            Workload::PeerAggregateStore => Target::Peer(Box::new(CqrsFramework::new(
                PersistedEventStore::new_aggregate_store(repo),
                vec![],
                (),
            ))),
            Workload::RawInsert => Target::Raw(pool.clone()),
        }
    }

    /// Runs `command` on `wallet`, whose stream it makes `number` events long (the raw
    /// baseline, which reads nothing, numbers its rows with it; the peer numbers its own).
    async fn execute(&self, wallet: &str, command: Command, number: u64) -> Result<(), Error> {
        match self {
            Target::Peer(cqrs) => cqrs.execute(wallet, command).await.map_err(|e| match e {
                AggregateError::UserError(refusal) => Error::Refused {
                    wallet: wallet.to_owned(),
                    refusal,
                },
                other => Error::Peer(other.to_string()),
            }),
            Target::Raw(pool) => {
                let payload = serde_json::to_value(Event::unchecked(&command, number))?;
                sqlx::query(include_str!("raw_insert.sql"))
                    .bind(uuid::Uuid::new_v4())
                    .bind(wallet)
                    .bind(payload)
                    .execute(pool)
                    .await?;
                Ok(())
            }
        }
    }
}

/// What one caller did in the measured part.
#[derive(Default)]
pub(crate) struct CallerFigures {
    pub top_ups: u64,
    pub payments: u64,
    /// Latency of every measured command.
    pub latencies: Vec<Duration>,
}

/// What all callers did.
pub(crate) struct Measured {
    pub callers: Vec<CallerFigures>,
    /// From the moment every caller had opened its wallets to the last caller's stop.
    pub elapsed: Duration,
}

/// Runs `callers` callers of `wallets_per_caller` wallets each against `pool`; returns once
/// every caller stopped. The first error of any caller is returned (after all stopped).
pub(crate) async fn drive(
    pool: &PgPool,
    workload: Workload,
    callers: usize,
    wallets_per_caller: usize,
    until: Until,
) -> Result<Measured, Error> {
    let target = Arc::new(Target::new(workload, pool));
    let barrier = Arc::new(Barrier::new(callers + 1));
    let mut tasks = Vec::with_capacity(callers);
    for index in 0..callers {
        let quota = match until {
            Until::Elapsed(_) => None,
            Until::Commands(total) => Some(share(total, callers, index)),
        };
        let deadline = match until {
            Until::Elapsed(d) => Some(d),
            Until::Commands(_) => None,
        };
        let target = target.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            caller(&target, &barrier, wallets_per_caller, deadline, quota).await
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut figures = Vec::with_capacity(callers);
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(Ok(f)) => figures.push(f),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(Error::Panicked(e.to_string()));
            }
        }
    }
    let elapsed = start.elapsed();
    match first_error {
        Some(e) => Err(e),
        None => Ok(Measured {
            callers: figures,
            elapsed,
        }),
    }
}

/// Caller `index`'s part of `total` commands: equal shares, the remainder to the first ones.
fn share(total: u64, callers: usize, index: usize) -> u64 {
    let callers = callers as u64;
    let index = index as u64;
    total / callers + u64::from(index < total % callers)
}

/// The `i`-th measured command of a caller: pairs of a top-up and a payment of the same
/// wallet, the pairs round-robin over the wallets (pair `p` on wallet `p mod W`), so payments
/// are half the commands from the first second whatever the number of wallets, and every
/// payment follows a top-up of its wallet. Also the length of the wallet's stream after it
/// (its open, then one event per command).
fn plan(i: u64, wallets: usize) -> (usize, Command, u64) {
    let wallets = (wallets as u64).max(1);
    let pair = i / 2;
    let wallet = (pair % wallets) as usize;
    let nth = (pair / wallets) * 2 + i % 2;
    let command = if i.is_multiple_of(2) {
        Command::TopUp { amount: TOP_UP }
    } else {
        Command::Pay { amount: PAYMENT }
    };
    (wallet, command, nth + 2)
}

async fn caller(
    target: &Target,
    barrier: &Barrier,
    wallets: usize,
    duration: Option<Duration>,
    quota: Option<u64>,
) -> Result<CallerFigures, Error> {
    let ids: Vec<String> = (0..wallets)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    let opened = open(target, &ids).await;
    // Every caller reaches the barrier, whatever happened, so none waits forever.
    barrier.wait().await;
    opened?;
    let deadline = duration.map(|d| Instant::now() + d);
    let mut figures = CallerFigures {
        latencies: Vec::with_capacity(1 << 14),
        ..CallerFigures::default()
    };
    let mut i: u64 = 0;
    loop {
        if quota.is_some_and(|q| i >= q) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let (wallet, command, number) = plan(i, wallets);
        let is_top_up = matches!(command, Command::TopUp { .. });
        let sent = Instant::now();
        target.execute(&ids[wallet], command, number).await?;
        figures.latencies.push(sent.elapsed());
        if is_top_up {
            figures.top_ups += 1;
        } else {
            figures.payments += 1;
        }
        i += 1;
    }
    Ok(figures)
}

async fn open(target: &Target, ids: &[String]) -> Result<(), Error> {
    for id in ids {
        target
            .execute(
                id,
                Command::Open {
                    currency: CURRENCY.to_owned(),
                },
                1,
            )
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_payment_follows_a_top_up_of_its_wallet() {
        let wallets = 4;
        let mut balance = vec![Decimal::ZERO; wallets];
        for i in 0..(wallets as u64 * 7) {
            match plan(i, wallets) {
                (w, Command::TopUp { amount }, _) => balance[w] += amount,
                (w, Command::Pay { amount }, _) => {
                    assert!(balance[w] >= amount, "payment {i} would be refused");
                    balance[w] -= amount;
                }
                (_, Command::Open { .. }, _) => unreachable!("the plan never opens"),
            }
        }
    }

    #[test]
    fn numbers_follow_the_stream() {
        // Wallet 1 of 3: its open is event 1, then commands 2, 3 (pair 1) and 8, 9 (pair 4)
        // are events 2, 3, 4, 5.
        let numbers: Vec<u64> = [2, 3, 8, 9].iter().map(|&i| plan(i, 3).2).collect();
        assert_eq!(numbers, vec![2, 3, 4, 5]);
        assert!([2, 3, 8, 9].iter().all(|&i| plan(i, 3).0 == 1));
    }

    #[test]
    fn shares_add_up() {
        for (total, callers) in [(10, 3), (2, 4), (64, 64), (0, 1)] {
            let sum: u64 = (0..callers).map(|i| share(total, callers, i)).sum();
            assert_eq!(sum, total);
        }
    }
}
