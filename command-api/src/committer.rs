//! Group commit across partitions: the one place the partition writers of a process commit
//! through (DESIGN.md, "Write path v2").
//!
//! Each partition writer decides its batch and hands the rows to the committer, then waits.
//! The committer takes every batch that is waiting (of any partitions of this process, up to
//! a bound of commands) and commits them together in **one SQL statement** of array
//! (`UNNEST`) inserts, guarded by the fencing update of every partition head in it
//! (`WHERE epoch = the writer's AND sequence = the head it saw`). So one statement, one
//! transaction and one fsync carry the commands of many partitions, and a partition's
//! order is still its writer's: a writer has at most one batch in flight.
//!
//! Up to `pipelines` statements are in flight at once (while one waits for its fsync the next
//! group forms and is sent). Their partitions are disjoint, because each writer waits for its
//! batch.
//!
//! A statement that fails commits nothing. When it carried several partitions' batches,
//! each batch is committed again on its own, so that every writer gets the answer about its
//! own batch — a fenced or repeated-command-id batch (SQLSTATE EF001 / EF002) does not fail
//! the others.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};
use uuid::Uuid;

use crate::error::Error;

/// The fencing condition of one partition's batch.
#[derive(Debug, Clone, Copy)]
pub struct Fence {
    pub partition: i32,
    /// The writer's lease epoch.
    pub epoch: i64,
    /// The partition head the writer last committed (the batch's first sequence − 1).
    pub head: i64,
    /// The partition head after the batch.
    pub new_head: i64,
}

/// The rows of one or more batches, column by column as the statement binds them. JSON
/// columns are JSON text (Postgres parses them into `jsonb`).
#[derive(Default)]
pub struct Rows {
    pub record_ids: Vec<String>,
    pub record_clients: Vec<Uuid>,
    pub record_types: Vec<String>,
    pub record_hashes: Vec<String>,
    pub record_accepted: Vec<bool>,
    pub record_outcomes: Vec<String>,
    pub snapshot_kinds: Vec<String>,
    pub snapshot_ids: Vec<Uuid>,
    pub snapshot_clients: Vec<Uuid>,
    pub snapshot_versions: Vec<i64>,
    pub snapshot_states: Vec<String>,
    pub snapshot_at: Vec<time::OffsetDateTime>,
    pub chain_clients: Vec<Uuid>,
    pub chain_hashes: Vec<String>,
    pub chain_lengths: Vec<i64>,
    pub out_partitions: Vec<i32>,
    pub out_sequences: Vec<i64>,
    pub out_ids: Vec<Uuid>,
    pub out_clients: Vec<Uuid>,
    pub out_types: Vec<String>,
    pub out_envelopes: Vec<String>,
    pub out_events: Vec<String>,
}

impl Rows {
    /// Commands recorded by these rows.
    pub fn commands(&self) -> usize {
        self.record_ids.len()
    }

    fn append(&mut self, other: &Rows) {
        fn extend<T: Clone>(into: &mut Vec<T>, from: &[T]) {
            into.extend_from_slice(from);
        }
        extend(&mut self.record_ids, &other.record_ids);
        extend(&mut self.record_clients, &other.record_clients);
        extend(&mut self.record_types, &other.record_types);
        extend(&mut self.record_hashes, &other.record_hashes);
        extend(&mut self.record_accepted, &other.record_accepted);
        extend(&mut self.record_outcomes, &other.record_outcomes);
        extend(&mut self.snapshot_kinds, &other.snapshot_kinds);
        extend(&mut self.snapshot_ids, &other.snapshot_ids);
        extend(&mut self.snapshot_clients, &other.snapshot_clients);
        extend(&mut self.snapshot_versions, &other.snapshot_versions);
        extend(&mut self.snapshot_states, &other.snapshot_states);
        extend(&mut self.snapshot_at, &other.snapshot_at);
        extend(&mut self.chain_clients, &other.chain_clients);
        extend(&mut self.chain_hashes, &other.chain_hashes);
        extend(&mut self.chain_lengths, &other.chain_lengths);
        extend(&mut self.out_partitions, &other.out_partitions);
        extend(&mut self.out_sequences, &other.out_sequences);
        extend(&mut self.out_ids, &other.out_ids);
        extend(&mut self.out_clients, &other.out_clients);
        extend(&mut self.out_types, &other.out_types);
        extend(&mut self.out_envelopes, &other.out_envelopes);
        extend(&mut self.out_events, &other.out_events);
    }
}

/// One partition's decided batch, waiting to be committed.
pub struct Batch {
    pub fence: Fence,
    pub rows: Rows,
    /// `Ok` once the batch is committed; the error of its own statement otherwise.
    pub reply: oneshot::Sender<Result<(), Error>>,
}

/// How the committer groups batches.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// Statements in flight at once.
    pub pipelines: usize,
    /// The most commands one statement carries (a batch is never split, so one batch
    /// larger than this is committed alone).
    pub max_commands: usize,
    /// The lease term every commit renews, seconds.
    pub lease_secs: f64,
}

/// Starts the committer of a process; the writers send their batches to the returned queue.
/// It stops when every sender is gone.
pub fn start(pool: sqlx::PgPool, settings: Settings) -> mpsc::Sender<Batch> {
    let (tx, rx) = mpsc::channel(1_024);
    tokio::spawn(run(pool, settings, rx));
    tx
}

async fn run(pool: sqlx::PgPool, settings: Settings, mut queue: mpsc::Receiver<Batch>) {
    let in_flight = Arc::new(Semaphore::new(settings.pipelines.max(1)));
    loop {
        // Wait for a free pipeline first: batches arriving meanwhile join the next group.
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = queue.recv().await else {
            return;
        };
        let mut commands = first.rows.commands();
        let mut group = vec![first];
        while commands < settings.max_commands {
            match queue.try_recv() {
                Ok(b) => {
                    commands += b.rows.commands();
                    group.push(b);
                }
                Err(_) => break,
            }
        }
        let pool = pool.clone();
        tokio::spawn(async move {
            commit_group(&pool, settings.lease_secs, group).await;
            drop(permit);
        });
    }
}

/// Commits a group in one statement; when that fails and the group has several batches,
/// each batch on its own.
async fn commit_group(pool: &sqlx::PgPool, lease_secs: f64, group: Vec<Batch>) {
    if group.len() == 1 {
        for b in group {
            let result = execute(pool, lease_secs, &[b.fence], &b.rows).await;
            let _ = b.reply.send(result);
        }
        return;
    }
    let fences: Vec<Fence> = group.iter().map(|b| b.fence).collect();
    let mut rows = Rows::default();
    for b in &group {
        rows.append(&b.rows);
    }
    match execute(pool, lease_secs, &fences, &rows).await {
        Ok(()) => {
            for b in group {
                let _ = b.reply.send(Ok(()));
            }
        }
        Err(e) => {
            tracing::debug!(batches = group.len(), error = %e, "group not committed; committing its batches one by one");
            let alone = group.into_iter().map(|b| async move {
                let result = execute(pool, lease_secs, &[b.fence], &b.rows).await;
                let _ = b.reply.send(result);
            });
            futures::future::join_all(alone).await;
        }
    }
}

/// The statement: the fencing update of every partition head, command records, snapshots,
/// chain heads and outbox rows. Any failure rolls all of it back.
///
/// Errors: SQLSTATE EF001 (a fence matched no row: a lease was taken or a head moved), EF002
/// (a command id was recorded before), and any other Postgres error.
async fn execute(
    pool: &sqlx::PgPool,
    lease_secs: f64,
    fences: &[Fence],
    rows: &Rows,
) -> Result<(), Error> {
    let partitions: Vec<i32> = fences.iter().map(|f| f.partition).collect();
    let epochs: Vec<i64> = fences.iter().map(|f| f.epoch).collect();
    let heads: Vec<i64> = fences.iter().map(|f| f.head).collect();
    let new_heads: Vec<i64> = fences.iter().map(|f| f.new_head).collect();
    sqlx::query(include_str!("sql/commit_batch.sql"))
        .bind(&partitions)
        .bind(&epochs)
        .bind(&heads)
        .bind(&new_heads)
        .bind(lease_secs)
        .bind(&rows.record_ids)
        .bind(&rows.record_clients)
        .bind(&rows.record_types)
        .bind(&rows.record_hashes)
        .bind(&rows.record_accepted)
        .bind(&rows.record_outcomes)
        .bind(&rows.snapshot_kinds)
        .bind(&rows.snapshot_ids)
        .bind(&rows.snapshot_clients)
        .bind(&rows.snapshot_versions)
        .bind(&rows.snapshot_states)
        .bind(&rows.snapshot_at)
        .bind(&rows.chain_clients)
        .bind(&rows.chain_hashes)
        .bind(&rows.chain_lengths)
        .bind(&rows.out_partitions)
        .bind(&rows.out_sequences)
        .bind(&rows.out_ids)
        .bind(&rows.out_clients)
        .bind(&rows.out_types)
        .bind(&rows.out_envelopes)
        .bind(&rows.out_events)
        .execute(pool)
        .await?;
    Ok(())
}
