//! What every process manager shares: the port through which it issues commands, and the
//! durable instance rows (state + timer) it keeps in `process_instances`.

use etr_domain::ports::BoxFuture;
use etr_domain::{Actor, Command};
use serde::{de::DeserializeOwned, Serialize};
use sqlx::PgConnection;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::Error;

/// A command a process manager issues.
#[derive(Debug, Clone)]
pub struct Issue {
    /// Deterministic, from [`etr_domain::ids::platform_command_id`]: a repeated step is
    /// answered with the first outcome and writes nothing.
    pub command_id: String,
    pub correlation_id: String,
    pub actor: Actor,
    pub command: Command,
}

/// How the command side answered an issued command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issued {
    Accepted,
    /// Refused by the domain (e.g. the payment was cancelled meanwhile), with its code.
    Rejected {
        code: String,
    },
}

/// The command side, as a process manager sees it (the platform wires its command handler
/// in; nothing here knows about HTTP or partitions). An `Err` means nothing was committed
/// for certain; the step is retried later with the same command id.
pub trait Commands: Send + Sync {
    fn issue(&self, issue: Issue) -> BoxFuture<'_, Result<Issued, String>>;

    /// The committed state of an aggregate (`None` before its first event): what the
    /// command side decides against, fresher than any read model.
    fn state(
        &self,
        target: etr_domain::AggregateRef,
    ) -> BoxFuture<'_, Result<Option<etr_domain::State>, String>>;
}

/// One instance row, locked for update inside `tx`.
pub struct Instance<S> {
    pub state: Option<S>,
    pub correlation_id: Option<String>,
}

/// Loads (and locks) a process instance.
pub async fn load<S: DeserializeOwned>(
    tx: &mut PgConnection,
    process: &str,
    id: Uuid,
) -> Result<Instance<S>, Error> {
    let row: Option<(serde_json::Value, String)> = sqlx::query_as(
        "SELECT state, correlation_id FROM process_instances WHERE process = $1 AND instance_id = $2 FOR UPDATE",
    )
    .bind(process)
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match row {
        Some((state, correlation)) => Instance {
            state: Some(serde_json::from_value(state)?),
            correlation_id: Some(correlation),
        },
        None => Instance {
            state: None,
            correlation_id: None,
        },
    })
}

/// Stores a process instance's state and timer (`due_at`: `Some(None)` clears it, `None`
/// keeps it).
#[allow(clippy::too_many_arguments)]
pub async fn store<S: Serialize>(
    tx: &mut PgConnection,
    process: &str,
    id: Uuid,
    client: Uuid,
    correlation_id: &str,
    state: &S,
    due_at: Option<Option<OffsetDateTime>>,
) -> Result<(), Error> {
    let state = serde_json::to_value(state)?;
    sqlx::query(
        "INSERT INTO process_instances (process, instance_id, client_id, correlation_id, state, due_at) \
         VALUES ($1, $2, $3, $4, $5, $7) \
         ON CONFLICT (process, instance_id) DO UPDATE SET state = EXCLUDED.state, \
             due_at = CASE WHEN $6 THEN EXCLUDED.due_at ELSE process_instances.due_at END, \
             updated_at = clock_timestamp()",
    )
    .bind(process)
    .bind(id)
    .bind(client)
    .bind(correlation_id)
    .bind(state)
    .bind(due_at.is_some())
    .bind(due_at.flatten())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// A process instance woken by its timer, with the actions its step asked for.
pub struct Woken<A> {
    pub id: Uuid,
    pub client: Uuid,
    pub correlation_id: String,
    pub actions: Vec<A>,
}

/// Takes up to `limit` instances of `process` due at `now` (`FOR UPDATE SKIP LOCKED`, so two
/// runners never take the same one), steps each with `due`, stores the new state and the timer
/// `wake` reads off the actions, and returns the actions to perform after the commit.
///
/// Errors: Postgres; a stored state that does not deserialise.
pub async fn take_due<S, A>(
    pool: &sqlx::PgPool,
    process: &str,
    now: OffsetDateTime,
    limit: i64,
    due: impl Fn(S) -> (Option<S>, Vec<A>),
    wake: impl Fn(&[A]) -> Option<Option<OffsetDateTime>>,
) -> Result<Vec<Woken<A>>, Error>
where
    S: Serialize + DeserializeOwned,
{
    let mut tx = pool.begin().await?;
    let rows: Vec<(Uuid, serde_json::Value, String, Uuid)> = sqlx::query_as(
        "SELECT instance_id, state, correlation_id, client_id FROM process_instances \
         WHERE process = $1 AND due_at <= $2 ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED",
    )
    .bind(process)
    .bind(now)
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut woken = Vec::with_capacity(rows.len());
    for (id, state, correlation_id, client) in rows {
        let (next, actions) = due(serde_json::from_value(state)?);
        let Some(next) = next else { continue };
        store(
            &mut tx,
            process,
            id,
            client,
            &correlation_id,
            &next,
            wake(&actions),
        )
        .await?;
        woken.push(Woken {
            id,
            client,
            correlation_id,
            actions,
        });
    }
    tx.commit().await?;
    Ok(woken)
}

/// Steps one instance with an answer (`step` gets its stored state), stores the result with
/// the timer `wake` reads off the actions, and returns the actions to perform.
///
/// Errors: Postgres; a stored state that does not deserialise.
pub async fn advance<S, A>(
    pool: &sqlx::PgPool,
    process: &str,
    woken: (&Uuid, Uuid, &str),
    step: impl FnOnce(Option<S>) -> (Option<S>, Vec<A>),
    wake: impl Fn(&[A]) -> Option<Option<OffsetDateTime>>,
) -> Result<Vec<A>, Error>
where
    S: Serialize + DeserializeOwned,
{
    let (id, client, correlation_id) = woken;
    let mut tx = pool.begin().await?;
    let instance = load::<S>(&mut tx, process, *id).await?;
    let (next, actions) = step(instance.state);
    if let Some(next) = &next {
        store(
            &mut tx,
            process,
            *id,
            client,
            correlation_id,
            next,
            wake(&actions),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(actions)
}

/// Runs a process's passes forever: again at once after a pass that woke something, after
/// `poll` otherwise; a failed pass is logged and retried after `poll`.
pub async fn poll_forever<F, Fut>(process: &str, poll: std::time::Duration, mut pass: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, Error>>,
{
    loop {
        match pass().await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(process, error = %e, "process pass failed; retrying"),
        }
        tokio::time::sleep(poll).await;
    }
}
