//! The data platform: the log replayed into plain analytics tables in schema `dp` (facts for
//! events, wallet operations, payments, applications and loans; dimensions for clients,
//! services and partners). Every write is an upsert keyed by event or entity, applied in log
//! order, so replaying the same log any number of times gives the same tables.

use etr_domain::{application, loan, payment, wallet, Envelope, Event, Money};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::error::Error;

/// Writes `events` (in log order) into `dp` in one transaction.
pub async fn load(pool: &PgPool, events: &[(Envelope, Event)]) -> Result<(), Error> {
    let mut tx = pool.begin().await?;
    for (env, event) in events {
        load_one(&mut tx, env, event).await?;
    }
    tx.commit().await?;
    Ok(())
}

async fn load_one(tx: &mut PgConnection, env: &Envelope, event: &Event) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO dp.dim_clients (client_id, first_seen_at, last_seen_at) VALUES ($1, $2, $2) \
         ON CONFLICT (client_id) DO UPDATE SET first_seen_at = LEAST(dp.dim_clients.first_seen_at, EXCLUDED.first_seen_at), \
         last_seen_at = GREATEST(dp.dim_clients.last_seen_at, EXCLUDED.last_seen_at)",
    )
    .bind(env.client_id.0)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    if env.actor.kind == "partner" {
        dimension(tx, "dp.dim_partners", "partner_id", &env.actor.id, env).await?;
    }
    sqlx::query(
        "INSERT INTO dp.fact_events (event_id, client_id, aggregate_type, aggregate_id, aggregate_version, event_type, partition, sequence, occurred_at, actor_kind, actor_id, command_id, correlation_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(env.event_id)
    .bind(env.client_id.0)
    .bind(env.aggregate_type.as_str())
    .bind(env.aggregate_id)
    .bind(i64::try_from(env.aggregate_version).unwrap_or(i64::MAX))
    .bind(&env.event_type)
    .bind(i32::try_from(env.partition).unwrap_or(i32::MAX))
    .bind(i64::try_from(env.sequence).unwrap_or(i64::MAX))
    .bind(env.occurred_at)
    .bind(&env.actor.kind)
    .bind(&env.actor.id)
    .bind(&env.command_id)
    .bind(&env.correlation_id)
    .execute(&mut *tx)
    .await?;
    match event {
        Event::Wallet(e) => wallet_operation(tx, env, e).await,
        Event::Payment(e) => payment_fact(tx, env, e).await,
        Event::Application(e) => application_fact(tx, env, e).await,
        Event::Loan(e) => loan_fact(tx, env, e).await,
    }
}

async fn dimension(
    tx: &mut PgConnection,
    table: &str,
    key: &str,
    value: &str,
    env: &Envelope,
) -> Result<(), Error> {
    sqlx::query(&format!(
        "INSERT INTO {table} ({key}, first_seen_at) VALUES ($1, $2) ON CONFLICT ({key}) DO UPDATE SET first_seen_at = LEAST({table}.first_seen_at, EXCLUDED.first_seen_at)"
    ))
    .bind(value)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn wallet_operation(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &wallet::Event,
) -> Result<(), Error> {
    use wallet::Event as W;
    let (kind, amount, reference): (&str, &Money, Option<Uuid>) = match event {
        W::WalletToppedUp {
            operation_id,
            amount,
            ..
        } => ("top_up", amount, Some(*operation_id)),
        W::FundsHeld { payment_id, amount } => ("hold", amount, Some(*payment_id)),
        W::HoldCaptured { payment_id, amount } => ("capture", amount, Some(*payment_id)),
        W::HoldReleased { payment_id, amount } => ("release", amount, Some(*payment_id)),
        W::TransferSent {
            transfer_id,
            amount,
            ..
        } => ("transfer_out", amount, Some(*transfer_id)),
        W::TransferReceived {
            transfer_id,
            amount,
            ..
        } => ("transfer_in", amount, Some(*transfer_id)),
        W::WalletOpened { .. } | W::WalletClosed { .. } => return Ok(()),
    };
    sqlx::query(
        "INSERT INTO dp.fact_wallet_operations (event_id, client_id, wallet_id, kind, amount, currency, reference_id, occurred_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(env.event_id)
    .bind(env.client_id.0)
    .bind(env.aggregate_id)
    .bind(kind)
    .bind(amount.amount)
    .bind(amount.currency.code())
    .bind(reference)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn payment_fact(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &payment::Event,
) -> Result<(), Error> {
    if let payment::Event::PaymentInitiated {
        wallet_id,
        amount,
        service_id,
        ..
    } = event
    {
        dimension(tx, "dp.dim_services", "service_id", service_id, env).await?;
        sqlx::query(
            "INSERT INTO dp.fact_payments (payment_id, client_id, wallet_id, service_id, amount, currency, status, initiated_at, last_event_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'fraud_control', $7, $7) \
             ON CONFLICT (payment_id) DO UPDATE SET wallet_id = EXCLUDED.wallet_id, service_id = EXCLUDED.service_id, amount = EXCLUDED.amount, \
             currency = EXCLUDED.currency, initiated_at = EXCLUDED.initiated_at",
        )
        .bind(env.aggregate_id)
        .bind(env.client_id.0)
        .bind(wallet_id)
        .bind(service_id)
        .bind(amount.amount)
        .bind(amount.currency.code())
        .bind(env.occurred_at)
        .execute(&mut *tx)
        .await?;
        return Ok(());
    }
    let status = match event {
        payment::Event::PaymentLocked => "locked",
        payment::Event::PaymentBalanceChecked => "balance_checked",
        payment::Event::PaymentReserved { .. } => "reserved",
        payment::Event::PaymentExecutionStarted => "executing",
        payment::Event::PaymentExecuted { .. } => "post_processing_success",
        payment::Event::PaymentSucceeded => "succeeded",
        payment::Event::PaymentExecutionFailed { .. } => "post_processing_failure",
        payment::Event::PaymentFailed { .. } => "failed",
        payment::Event::PaymentCancelled { .. } => "cancelled",
        payment::Event::PaymentInitiated { .. } => "fraud_control",
    };
    status_upsert(tx, "dp.fact_payments", "payment_id", env, status).await
}

/// Moves an entity's status forward; the row is created if the replay started mid-life.
async fn status_upsert(
    tx: &mut PgConnection,
    table: &str,
    key: &str,
    env: &Envelope,
    status: &str,
) -> Result<(), Error> {
    sqlx::query(&format!(
        "INSERT INTO {table} ({key}, client_id, status, last_event_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT ({key}) DO UPDATE SET status = EXCLUDED.status, last_event_at = EXCLUDED.last_event_at"
    ))
    .bind(env.aggregate_id)
    .bind(env.client_id.0)
    .bind(status)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn application_fact(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &application::Event,
) -> Result<(), Error> {
    use application::Event as A;
    if let A::ApplicationSubmitted {
        requested,
        term_days,
        partner_id,
        ..
    } = event
    {
        if let Some(p) = partner_id {
            dimension(tx, "dp.dim_partners", "partner_id", p, env).await?;
        }
        sqlx::query(
            "INSERT INTO dp.fact_applications (application_id, client_id, partner_id, requested, currency, term_days, status, submitted_at, last_event_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'submitted', $7, $7) \
             ON CONFLICT (application_id) DO UPDATE SET partner_id = EXCLUDED.partner_id, requested = EXCLUDED.requested, currency = EXCLUDED.currency, \
             term_days = EXCLUDED.term_days, submitted_at = EXCLUDED.submitted_at",
        )
        .bind(env.aggregate_id)
        .bind(env.client_id.0)
        .bind(partner_id)
        .bind(requested.amount)
        .bind(requested.currency.code())
        .bind(i32::try_from(*term_days).unwrap_or(i32::MAX))
        .bind(env.occurred_at)
        .execute(&mut *tx)
        .await?;
        return Ok(());
    }
    let status = match event {
        A::ClientIdentified => "identified",
        A::IdentificationFailed { .. } | A::ApplicationDeclined { .. } => "declined",
        A::ApplicationApproved { .. } => "approved",
        A::OfferChosen { .. } => "offer_chosen",
        A::ContractSigned { .. } => "contract_signed",
        A::LoanDisbursed { .. } => "disbursed",
        A::ApplicationCancelled { .. } => "cancelled",
        A::ApplicationSubmitted { .. } => "submitted",
    };
    status_upsert(tx, "dp.fact_applications", "application_id", env, status).await
}

async fn loan_fact(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &loan::Event,
) -> Result<(), Error> {
    use loan::Event as L;
    if let L::LoanIssued {
        application_id,
        principal,
        ..
    } = event
    {
        sqlx::query(
            "INSERT INTO dp.fact_loans (loan_id, client_id, application_id, principal, currency, status, issued_at, last_event_at) \
             VALUES ($1, $2, $3, $4, $5, 'active', $6, $6) \
             ON CONFLICT (loan_id) DO UPDATE SET application_id = EXCLUDED.application_id, principal = EXCLUDED.principal, \
             currency = EXCLUDED.currency, issued_at = EXCLUDED.issued_at",
        )
        .bind(env.aggregate_id)
        .bind(env.client_id.0)
        .bind(application_id)
        .bind(principal.amount)
        .bind(principal.currency.code())
        .bind(env.occurred_at)
        .execute(&mut *tx)
        .await?;
        return Ok(());
    }
    let status = match event {
        L::LoanBecameOverdue => "overdue",
        L::LoanRepaid => "repaid",
        L::RepaymentAccepted { .. } | L::LoanProlonged { .. } | L::LoanIssued { .. } => {
            // The status stays as it was (an overdue loan stays overdue after a part-payment).
            sqlx::query("UPDATE dp.fact_loans SET last_event_at = $2 WHERE loan_id = $1")
                .bind(env.aggregate_id)
                .bind(env.occurred_at)
                .execute(&mut *tx)
                .await?;
            return Ok(());
        }
    };
    status_upsert(tx, "dp.fact_loans", "loan_id", env, status).await
}
