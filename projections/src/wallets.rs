//! The wallet read models: clients, wallet accounts with their balance movements, payments
//! with their status history, and each client's group, UTC offset and spending against its
//! limits (`rm_client_limits`).
//! States are folded with the domain's own `evolve`, so the read model cannot disagree with
//! the write side about money; the columns are derived from the folded state.

use etr_domain::{client, payment, wallet, AggregateKind, Envelope, Event};
use sqlx::PgConnection;
use std::collections::BTreeMap;

use crate::error::Error;
use crate::runtime::{load_state, Projection};

/// The Postgres channel a payment's status change is announced on (after the batch commits),
/// with a JSON payload (payment_id, wallet_id, client_id, event_type, status_code, status,
/// partition, sequence, occurred_at); the GraphQL subscription `operationStatusChanged`
/// listens on it.
pub const OPERATION_STATUS_CHANNEL: &str = "etr_operation_status";

/// Clients, wallets, payments and payment history. `announce` sends status changes on
/// [`OPERATION_STATUS_CHANNEL`]; a rebuild into a new table version leaves it off so
/// subscribers do not hear history again.
pub struct Wallets {
    pub announce: bool,
}

impl Projection for Wallets {
    fn name(&self) -> &'static str {
        "wallets"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_clients",
            "rm_wallets",
            "rm_payments",
            "rm_payment_history",
            "rm_client_limits",
            "rm_wallet_movements",
        ]
    }

    /// Announces the status changes the copy applied beyond the live checkpoints, in log
    /// order, so subscribers hear every step across a switch (the copy itself announces
    /// nothing while it replays history).
    async fn announce_skipped(
        &self,
        tx: &mut PgConnection,
        staging: &str,
        live: &BTreeMap<i32, i64>,
        copied: &BTreeMap<i32, i64>,
    ) -> Result<(), Error> {
        for (partition, until) in copied {
            sqlx::query(&format!(
                "SELECT pg_notify($1, json_build_object('payment_id', h.payment_id, 'wallet_id', p.wallet_id, 'client_id', p.client_id, \
                 'event_type', h.event_type, 'status_code', h.status_code, 'status', h.status, 'partition', h.partition, \
                 'sequence', h.sequence, 'occurred_at', h.occurred_at)::text) \
                 FROM (SELECT * FROM {staging}.rm_payment_history WHERE partition = $2 AND sequence > $3 AND sequence <= $4 ORDER BY sequence) h \
                 JOIN {staging}.rm_payments p USING (payment_id) ORDER BY h.sequence"
            ))
            .bind(OPERATION_STATUS_CHANNEL)
            .bind(partition)
            .bind(live.get(partition).copied().unwrap_or(0))
            .bind(until)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO rm_clients (client_id, events, first_event_at, last_event_at) VALUES ($1, 1, $2, $2) \
             ON CONFLICT (client_id) DO UPDATE SET events = rm_clients.events + 1, last_event_at = EXCLUDED.last_event_at",
        )
        .bind(envelope.client_id.0)
        .bind(envelope.occurred_at)
        .execute(&mut *tx)
        .await?;
        match event {
            Event::Wallet(e) => apply_wallet(tx, envelope, e).await,
            Event::Payment(e) => apply_payment(tx, envelope, e, self.announce).await,
            Event::Client(e) => apply_client_limits(tx, envelope, e).await,
            Event::Application(_) | Event::Loan(_) | Event::MerchantOrder(_) => Ok(()),
        }
    }
}

/// Folds the client events that bear on its limits; the registry's own events (personal
/// data, tags, …) are the lending projection's.
async fn apply_client_limits(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &client::Event,
) -> Result<(), Error> {
    use client::Event as C;
    if !matches!(
        event,
        C::ClientGroupChanged { .. }
            | C::ClientTimeZoneChanged { .. }
            | C::SpendingCounted { .. }
            | C::SpendingReleased { .. }
    ) {
        return Ok(());
    }
    let state = load_state(
        tx,
        "SELECT state FROM rm_client_limits WHERE client_id = $1",
        env.aggregate_id,
    )
    .await?
    .unwrap_or_else(|| client::Client {
        id: env.aggregate_id,
        ..Default::default()
    });
    let c = client::evolve(state, event);
    sqlx::query(
        "INSERT INTO rm_client_limits (client_id, group_id, utc_offset, state, version, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (client_id) DO UPDATE SET group_id = EXCLUDED.group_id, utc_offset = EXCLUDED.utc_offset, state = EXCLUDED.state, \
         version = EXCLUDED.version, updated_at = EXCLUDED.updated_at",
    )
    .bind(env.aggregate_id)
    .bind(c.group.as_ref().map(|g| g.as_str()))
    .bind(&c.utc_offset)
    .bind(serde_json::to_value(&c)?)
    .bind(i64::try_from(env.aggregate_version).unwrap_or(i64::MAX))
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply_wallet(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &wallet::Event,
) -> Result<(), Error> {
    debug_assert_eq!(env.aggregate_type, AggregateKind::WalletAccount);
    let state = load_state(
        tx,
        "SELECT state FROM rm_wallets WHERE wallet_id = $1",
        env.aggregate_id,
    )
    .await?
    .unwrap_or_else(|| wallet::Wallet {
        id: env.aggregate_id,
        ..Default::default()
    });
    let w = wallet::evolve(state, event);
    let status = match w.status {
        wallet::Status::NotOpened => "not_opened",
        wallet::Status::Open => "open",
        wallet::Status::Closed => "closed",
    };
    sqlx::query(
        "INSERT INTO rm_wallets (wallet_id, client_id, currency, status, balance, held, available, version, state, opened_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) \
         ON CONFLICT (wallet_id) DO UPDATE SET currency = EXCLUDED.currency, status = EXCLUDED.status, balance = EXCLUDED.balance, \
         held = EXCLUDED.held, available = EXCLUDED.available, version = EXCLUDED.version, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
    )
    .bind(env.aggregate_id)
    .bind(env.client_id.0)
    .bind(w.currency.map(|c| c.code()))
    .bind(status)
    .bind(w.balance)
    .bind(w.held())
    .bind(w.available())
    .bind(i64::try_from(env.aggregate_version).unwrap_or(i64::MAX))
    .bind(serde_json::to_value(&w)?)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    record_movement(tx, env, event, w.balance).await
}

/// A balance-changing wallet event as a row of `rm_wallet_movements` (the balance reports'
/// input): kind, the operation it belongs to, the signed amount (positive money in, negative
/// money out) and the balance after it. Holds, openings and closings move no money and
/// write nothing.
async fn record_movement(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &wallet::Event,
    balance_after: rust_decimal::Decimal,
) -> Result<(), Error> {
    use wallet::Event as E;
    let (kind, operation, amount, sign) = match event {
        E::WalletToppedUp {
            operation_id,
            amount,
            ..
        } => ("top_up", operation_id, amount, 1),
        E::HoldCaptured { payment_id, amount } => ("payment", payment_id, amount, -1),
        E::TransferSent {
            transfer_id,
            amount,
            ..
        } => ("transfer_out", transfer_id, amount, -1),
        E::TransferReceived {
            transfer_id,
            amount,
            ..
        } => ("transfer_in", transfer_id, amount, 1),
        E::TransferDebited {
            payment_id, amount, ..
        } => ("transfer_out", payment_id, amount, -1),
        E::TransferCredited {
            transfer_id,
            amount,
            ..
        } => ("transfer_in", transfer_id, amount, 1),
        E::PaymentRefunded {
            payment_id, amount, ..
        }
        | E::TransferRefunded {
            payment_id, amount, ..
        } => ("refund", payment_id, amount, 1),
        E::LoanRepaymentDebited {
            repayment_id,
            amount,
            ..
        } => ("loan_repayment", repayment_id, amount, -1),
        E::WalletOpened { .. }
        | E::FundsHeld { .. }
        | E::HoldReleased { .. }
        | E::WalletClosed { .. } => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO rm_wallet_movements (wallet_id, client_id, partition, sequence, occurred_at, kind, operation_id, amount, currency, balance_after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
    )
    .bind(env.aggregate_id)
    .bind(env.client_id.0)
    .bind(i32::try_from(env.partition).unwrap_or(i32::MAX))
    .bind(i64::try_from(env.sequence).unwrap_or(i64::MAX))
    .bind(env.occurred_at)
    .bind(kind)
    .bind(*operation)
    .bind(amount.amount * rust_decimal::Decimal::from(sign))
    .bind(amount.currency.code())
    .bind(balance_after)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply_payment(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &payment::Event,
    announce: bool,
) -> Result<(), Error> {
    let state = load_state(
        tx,
        "SELECT state FROM rm_payments WHERE payment_id = $1",
        env.aggregate_id,
    )
    .await?
    .unwrap_or_else(|| payment::Payment {
        id: env.aggregate_id,
        ..Default::default()
    });
    let p = payment::evolve(state, env.client_id, event);
    let code = p.status.code().map(i16::from);
    sqlx::query(
        "INSERT INTO rm_payments (payment_id, client_id, wallet_id, amount, currency, service_id, status_code, status, provider_reference, failure_reason, version, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
         ON CONFLICT (payment_id) DO UPDATE SET status_code = EXCLUDED.status_code, status = EXCLUDED.status, provider_reference = EXCLUDED.provider_reference, \
         failure_reason = EXCLUDED.failure_reason, version = EXCLUDED.version, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
    )
    .bind(env.aggregate_id)
    .bind(env.client_id.0)
    .bind(p.wallet_id)
    .bind(p.amount.map(|m| m.amount))
    .bind(p.amount.map(|m| m.currency.code()))
    .bind(&p.service_id)
    .bind(code)
    .bind(p.status.label())
    .bind(&p.provider_reference)
    .bind(&p.failure_reason)
    .bind(i64::try_from(env.aggregate_version).unwrap_or(i64::MAX))
    .bind(serde_json::to_value(&p)?)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO rm_payment_history (payment_id, sequence, partition, event_type, status_code, status, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(env.aggregate_id)
    .bind(i64::try_from(env.sequence).unwrap_or(i64::MAX))
    .bind(i32::try_from(env.partition).unwrap_or(i32::MAX))
    .bind(&env.event_type)
    .bind(code)
    .bind(p.status.label())
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    if announce {
        sqlx::query(
            "SELECT pg_notify($1, json_build_object('payment_id', $2::uuid, 'wallet_id', $3::uuid, 'client_id', $4::uuid, 'event_type', $5::text, \
             'status_code', $6::smallint, 'status', $7::text, 'partition', $8::int, 'sequence', $9::bigint, 'occurred_at', $10::timestamptz)::text)",
        )
        .bind(OPERATION_STATUS_CHANNEL)
        .bind(env.aggregate_id)
        .bind(p.wallet_id)
        .bind(env.client_id.0)
        .bind(&env.event_type)
        .bind(code)
        .bind(p.status.label())
        .bind(i32::try_from(env.partition).unwrap_or(i32::MAX))
        .bind(i64::try_from(env.sequence).unwrap_or(i64::MAX))
        .bind(env.occurred_at)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}
