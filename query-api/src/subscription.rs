//! Subscriptions: `operationStatusChanged(walletId)` — every status change of the wallet's
//! operations, as the `wallets` projection commits it — and `clientChanged(clientId)` — every
//! event of the client (wallets, operations, applications, loans, the client itself), as the
//! `timeline` projection commits it. Each projection announces what it applied on a Postgres
//! channel; one listener per channel and query-API process fans the announcements out to the
//! websocket subscribers. Both resume from a position (`fromPosition`: the read model's
//! history after it, then live, no gap and no duplicate) and wait for one (`minPosition`).

use async_graphql::{Context, SimpleObject, Subscription};
use futures::{Stream, StreamExt};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::{error, may_read, viewer};
use crate::{pool, reach, store, PositionInput, TIMELINE, WALLETS};

/// The Postgres channel the `wallets` projection announces on.
pub const CHANNEL: &str = "etr_operation_status";
/// The Postgres channel the `timeline` projection announces on.
pub const CLIENT_CHANNEL: &str = "etr_client_change";

/// One event of a client as the timeline applied it: re-read the aggregate it names.
#[derive(SimpleObject, serde::Deserialize, sqlx::FromRow, Clone, Debug)]
pub struct ClientChange {
    pub client_id: Uuid,
    /// `client`, `wallet_account`, `payment`, `application`, `loan`, `merchant_order`.
    pub aggregate_type: String,
    pub aggregate_id: Uuid,
    pub event_type: String,
    pub partition: i32,
    pub sequence: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

/// One status change of an operation, exactly as it was applied (not the operation's
/// latest state: a fast lifecycle yields every step). `partition` and `sequence` are its
/// position in the log: give them back as `fromPosition` to resume after it.
#[derive(SimpleObject, serde::Deserialize, sqlx::FromRow, Clone, Debug)]
pub struct OperationStatusChange {
    pub payment_id: Uuid,
    pub wallet_id: Uuid,
    #[graphql(skip)]
    pub client_id: Uuid,
    pub event_type: String,
    /// Lifecycle status code 0–9.
    pub status_code: Option<i16>,
    pub status: String,
    pub partition: i32,
    pub sequence: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

/// What a listener fans out: a change, or word that some may have been missed (the
/// listener's connection was lost and re-established).
#[derive(Clone, Debug)]
enum Announcement<T> {
    Change(T),
    Gap,
}

/// The fan-out of one channel's announcements to this process's subscribers.
#[derive(Clone)]
pub struct Feed<T>(broadcast::Sender<Announcement<T>>);

/// Status changes of operations ([`CHANNEL`]).
pub type Announcements = Feed<OperationStatusChange>;
/// Clients' events ([`CLIENT_CHANNEL`]).
pub type ClientChanges = Feed<ClientChange>;

impl<T> Feed<T>
where
    T: serde::de::DeserializeOwned + Clone + Send + Sync + 'static,
{
    /// Starts listening on `channel` (reconnecting after a lost connection).
    pub fn listen(pool: PgPool, channel: &'static str) -> Feed<T> {
        let (sender, _) = broadcast::channel(4_096);
        let out = sender.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = relay(&pool, channel, &out).await {
                    tracing::warn!(channel, error = %e, "announcement listener failed; reconnecting");
                }
                // Whatever was announced meanwhile is lost to the current subscribers.
                drop(out.send(Announcement::Gap));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Feed(sender)
    }
}

/// Forwards notifications until the connection is lost (`try_recv` reports a lost
/// connection as `None`, where `recv` would reconnect silently).
async fn relay<T: serde::de::DeserializeOwned>(
    pool: &PgPool,
    channel: &str,
    out: &broadcast::Sender<Announcement<T>>,
) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(channel).await?;
    while let Some(n) = listener.try_recv().await? {
        match serde_json::from_str::<T>(n.payload()) {
            // No subscriber at the moment is not an error.
            Ok(change) => drop(out.send(Announcement::Change(change))),
            Err(e) => {
                tracing::warn!(channel, error = %e, payload = n.payload(), "unreadable announcement")
            }
        }
    }
    Ok(())
}

/// Live changes that `matches`, after `watermark` when resuming (a change already sent from
/// the history is not sent again); a gap or a lagging subscriber is an error `LAGGED`.
fn live<T>(
    receiver: broadcast::Receiver<Announcement<T>>,
    watermark: Option<(i32, i64)>,
    matches: impl Fn(&T) -> bool + Send + 'static,
    position: fn(&T) -> (i32, i64),
) -> impl Stream<Item = async_graphql::Result<T>>
where
    T: Clone + Send + 'static,
{
    let lagged = |what: String| {
        error(
            "LAGGED",
            format!("{what}; resubscribe with the last message's position as fromPosition"),
        )
    };
    futures::stream::unfold(
        (receiver, watermark, matches),
        move |(mut receiver, mut watermark, matches)| async move {
            loop {
                match receiver.recv().await {
                    Ok(Announcement::Change(change)) if matches(&change) => {
                        let at = position(&change);
                        if watermark.is_some_and(|w| at <= w) {
                            continue;
                        }
                        watermark = watermark.map(|_| at);
                        return Some((Ok(change), (receiver, watermark, matches)));
                    }
                    Ok(Announcement::Change(_)) => continue,
                    Ok(Announcement::Gap) => {
                        let e =
                            lagged("the feed was interrupted; some changes may be missing".into());
                        return Some((Err(e), (receiver, watermark, matches)));
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let e = lagged(format!("{missed} changes were missed"));
                        return Some((Err(e), (receiver, watermark, matches)));
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        },
    )
}

fn resume_from(from: Option<PositionInput>) -> async_graphql::Result<Option<(i32, i64)>> {
    match from {
        Some(p) if p.partition < 0 || p.sequence < 0 => {
            Err(error("BAD_USER_INPUT", "fromPosition must be non-negative"))
        }
        Some(p) => Ok(Some((p.partition, p.sequence))),
        None => Ok(None),
    }
}

pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Every status change of the wallet's operations, in commit order: those after
    /// `fromPosition` from the read model's history first (the wallet's changes are all in its
    /// client's partition), then live ones, with no gap and no duplicate across the switch;
    /// without `fromPosition`, from now on. With `minPosition` (what a command returned) it
    /// first waits, bounded like queries, until the read model has applied it: a wallet the
    /// command just opened is found, or the error is `POSITION_NOT_REACHED`, never a wrong
    /// `NOT_FOUND`. When changes may have been missed (a subscriber too slow to keep up, or
    /// the feed's database connection lost) the subscriber gets an error with code `LAGGED`
    /// and resubscribes with its last message's position as `fromPosition`; the subscription
    /// goes on.
    async fn operation_status_changed(
        &self,
        ctx: &Context<'_>,
        wallet_id: Uuid,
        min_position: Option<PositionInput>,
        from_position: Option<PositionInput>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<OperationStatusChange>>>
    {
        viewer(ctx)?;
        let pool = pool(ctx)?;
        reach(pool, WALLETS, min_position).await?;
        let owner: Option<Uuid> =
            sqlx::query_scalar("SELECT client_id FROM rm_wallets WHERE wallet_id = $1")
                .bind(wallet_id)
                .fetch_optional(pool)
                .await
                .map_err(store)?;
        let Some(owner) = owner else {
            return Err(error(
                "NOT_FOUND",
                format!("wallet {wallet_id} does not exist"),
            ));
        };
        may_read(ctx, owner)?;
        // Listening starts before the history is read: a change committed meanwhile is in one
        // or the other (or both, and then skipped live by its position).
        let receiver = ctx.data::<Announcements>()?.0.subscribe();
        let from = resume_from(from_position)?;
        let history: Vec<OperationStatusChange> = match from {
            None => Vec::new(),
            Some((partition, sequence)) => sqlx::query_as(
                "SELECT h.payment_id, p.wallet_id, p.client_id, h.event_type, h.status_code, h.status, \
                        h.partition, h.sequence, h.occurred_at \
                 FROM rm_payment_history h JOIN rm_payments p USING (payment_id) \
                 WHERE p.wallet_id = $1 AND (h.partition, h.sequence) > ($2, $3) \
                 ORDER BY h.partition, h.sequence",
            )
            .bind(wallet_id)
            .bind(partition)
            .bind(sequence)
            .fetch_all(pool)
            .await
            .map_err(store)?,
        };
        let watermark = from.map(|f| history.last().map_or(f, |c| (c.partition, c.sequence)));
        let live = live(
            receiver,
            watermark,
            move |c: &OperationStatusChange| c.wallet_id == wallet_id,
            |c| (c.partition, c.sequence),
        );
        Ok(futures::stream::iter(history.into_iter().map(Ok)).chain(live))
    }

    /// Every event of the client — its wallets, operations, applications, loans and the
    /// client itself — in log order, for an app that keeps one socket: re-read what a message
    /// names. Read like `clientTimeline` (the client itself, operators, auditors).
    /// `minPosition` and `fromPosition` as for `operationStatusChanged`; each message's
    /// `partition`/`sequence` resumes a reconnect.
    async fn client_changed(
        &self,
        ctx: &Context<'_>,
        client_id: Uuid,
        min_position: Option<PositionInput>,
        from_position: Option<PositionInput>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<ClientChange>>> {
        crate::auth::may_read_timeline(ctx, client_id)?;
        let pool = pool(ctx)?;
        reach(pool, TIMELINE, min_position).await?;
        let receiver = ctx.data::<ClientChanges>()?.0.subscribe();
        let from = resume_from(from_position)?;
        let history: Vec<ClientChange> = match from {
            None => Vec::new(),
            Some((partition, sequence)) => sqlx::query_as(
                "SELECT client_id, aggregate_type, aggregate_id, event_type, partition, sequence, occurred_at \
                 FROM rm_timeline WHERE client_id = $1 AND (partition, sequence) > ($2, $3) \
                 ORDER BY partition, sequence",
            )
            .bind(client_id)
            .bind(partition)
            .bind(sequence)
            .fetch_all(pool)
            .await
            .map_err(store)?,
        };
        let watermark = from.map(|f| history.last().map_or(f, |c| (c.partition, c.sequence)));
        let live = live(
            receiver,
            watermark,
            move |c: &ClientChange| c.client_id == client_id,
            |c| (c.partition, c.sequence),
        );
        Ok(futures::stream::iter(history.into_iter().map(Ok)).chain(live))
    }
}
