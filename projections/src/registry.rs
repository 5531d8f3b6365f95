//! The customer registry's read model (`rm_customers`): each client's cabinet as the
//! registry's events leave it, folded with the domain's `evolve` (the spending bookkeeping of
//! the spend limits, `SpendingCounted` / `SpendingReleased`, is left out). Personal data stays sealed
//! here; the query API opens it for authorised readers only.

use etr_domain::{client, Envelope};
use sqlx::PgConnection;

use crate::error::Error;
use crate::runtime::load_state;

pub(crate) async fn apply(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &client::Event,
) -> Result<(), Error> {
    // What a client spent per day is the command side's limit bookkeeping, not the
    // registry's: the cabinet is not rewritten for every payment.
    if matches!(
        event,
        client::Event::SpendingCounted { .. } | client::Event::SpendingReleased { .. }
    ) {
        return Ok(());
    }
    let state = load_state(
        tx,
        "SELECT state FROM rm_customers WHERE client_id = $1",
        env.aggregate_id,
    )
    .await?
    .unwrap_or_else(|| client::Client {
        id: env.aggregate_id,
        ..Default::default()
    });
    let c = client::evolve(state, event);
    sqlx::query(
        "INSERT INTO rm_customers (client_id, status, personal, registered_by, block_reason, tags, cards, open_application, loans_disbursed, version, state, registered_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12) \
         ON CONFLICT (client_id) DO UPDATE SET status = EXCLUDED.status, personal = EXCLUDED.personal, registered_by = EXCLUDED.registered_by, \
         block_reason = EXCLUDED.block_reason, tags = EXCLUDED.tags, cards = EXCLUDED.cards, open_application = EXCLUDED.open_application, \
         loans_disbursed = EXCLUDED.loans_disbursed, version = EXCLUDED.version, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
    )
    .bind(env.aggregate_id)
    .bind(c.status.label())
    .bind(c.personal.as_ref().map(serde_json::to_value).transpose()?)
    .bind(&c.registered_by)
    .bind(&c.block_reason)
    .bind(serde_json::to_value(&c.tags)?)
    .bind(serde_json::to_value(&c.cards)?)
    .bind(c.open_application)
    .bind(i32::try_from(c.loans_disbursed).unwrap_or(i32::MAX))
    .bind(i64::try_from(env.aggregate_version).unwrap_or(i64::MAX))
    .bind(serde_json::to_value(&c)?)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
