//! `operationStatusChanged(walletId)`: every status change of the wallet's operations, as
//! the `wallets` projection commits it (it announces each one on a Postgres channel; one
//! listener per query-API process fans them out to the websocket subscribers).

use async_graphql::{Context, SimpleObject, Subscription};
use futures::{Stream, StreamExt};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::auth::{error, may_read, viewer};
use crate::{pool, reach, store, PositionInput, WALLETS};

/// The Postgres channel the `wallets` projection announces on.
pub const CHANNEL: &str = "etr_operation_status";

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

/// What the listener fans out: a status change, or word that some may have been missed
/// (the listener's connection was lost and re-established).
#[derive(Clone, Debug)]
enum Announcement {
    Change(OperationStatusChange),
    Gap,
}

/// The fan-out of announced status changes to this process's subscribers.
#[derive(Clone)]
pub struct Announcements(broadcast::Sender<Announcement>);

impl Announcements {
    /// Starts listening on [`CHANNEL`] (reconnecting after a lost connection).
    pub fn listen(pool: PgPool) -> Announcements {
        let (sender, _) = broadcast::channel(4_096);
        let out = sender.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = relay(&pool, &out).await {
                    tracing::warn!(error = %e, "status-change listener failed; reconnecting");
                }
                // Whatever was announced meanwhile is lost to the current subscribers.
                drop(out.send(Announcement::Gap));
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        Announcements(sender)
    }
}

/// Forwards notifications until the connection is lost (`try_recv` reports a lost
/// connection as `None`, where `recv` would reconnect silently).
async fn relay(pool: &PgPool, out: &broadcast::Sender<Announcement>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.listen(CHANNEL).await?;
    while let Some(n) = listener.try_recv().await? {
        match serde_json::from_str::<OperationStatusChange>(n.payload()) {
            // No subscriber at the moment is not an error.
            Ok(change) => drop(out.send(Announcement::Change(change))),
            Err(e) => {
                tracing::warn!(error = %e, payload = n.payload(), "unreadable status change")
            }
        }
    }
    Ok(())
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
        let (history, watermark) = match from_position {
            None => (Vec::new(), None),
            Some(from) => {
                if from.partition < 0 || from.sequence < 0 {
                    return Err(error("BAD_USER_INPUT", "fromPosition must be non-negative"));
                }
                let history: Vec<OperationStatusChange> = sqlx::query_as(
                    "SELECT h.payment_id, p.wallet_id, p.client_id, h.event_type, h.status_code, h.status, \
                            h.partition, h.sequence, h.occurred_at \
                     FROM rm_payment_history h JOIN rm_payments p USING (payment_id) \
                     WHERE p.wallet_id = $1 AND (h.partition, h.sequence) > ($2, $3) \
                     ORDER BY h.partition, h.sequence",
                )
                .bind(wallet_id)
                .bind(from.partition)
                .bind(from.sequence)
                .fetch_all(pool)
                .await
                .map_err(store)?;
                let last = history.last().map_or((from.partition, from.sequence), |c| {
                    (c.partition, c.sequence)
                });
                (history, Some(last))
            }
        };
        // The state carries the position of the last change sent (when resuming), so a change
        // already sent from the history is not sent again.
        let live = futures::stream::unfold(
            (receiver, watermark),
            move |(mut receiver, mut watermark)| async move {
                loop {
                    match receiver.recv().await {
                    Ok(Announcement::Change(change)) if change.wallet_id == wallet_id => {
                        let position = (change.partition, change.sequence);
                        if watermark.is_some_and(|w| position <= w) {
                            continue;
                        }
                        watermark = watermark.map(|_| position);
                        return Some((Ok(change), (receiver, watermark)));
                    }
                    Ok(Announcement::Change(_)) => continue,
                    Ok(Announcement::Gap) => {
                        return Some((
                            Err(error(
                                "LAGGED",
                                "the status feed was interrupted; some changes may be missing, resubscribe with the last position as fromPosition",
                            )),
                            (receiver, watermark),
                        ))
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        return Some((
                            Err(error(
                                "LAGGED",
                                format!(
                                    "{missed} status changes were missed; resubscribe with the last position as fromPosition"
                                ),
                            )),
                            (receiver, watermark),
                        ))
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
                }
            },
        );
        Ok(futures::stream::iter(history.into_iter().map(Ok)).chain(live))
    }
}
