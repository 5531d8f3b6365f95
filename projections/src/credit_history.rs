//! The credit-history builder (seed 000 §6.6.6): turns application and loan events into
//! credit-history records (`bki_records`) in the unified format's codes
//! ([`etr_domain::credit_history`]): 1.1 application, 1.2 approval, 1.3 refusal, 1.4 deal,
//! 2.1 terms changed, 2.3 debt changed / payment / overdue, 2.5 obligation ended.
//!
//! Each record carries the obligation's block as it stands after the event (amount, currency,
//! PSK, average monthly payment, debt, overdue, the payment) from the builder's own fold of the
//! application or loan (`bki_subject_states`), the day the event was recorded (Moscow) and
//! its upload deadline (the end of the second business day after; `bki_holidays` are not
//! business days). The subject's title data is added when the day's file is assembled.

use etr_domain::credit_history::{self, Code, Obligation};
use etr_domain::{application, loan, Envelope, Event};
use rust_decimal::Decimal;
use sqlx::PgConnection;
use std::collections::BTreeSet;
use time::Date;
use uuid::Uuid;

use crate::error::Error;
use crate::runtime::{load_state, Projection};

use etr_domain::limits::MOSCOW;

pub struct CreditHistory;

impl Projection for CreditHistory {
    fn name(&self) -> &'static str {
        "credit-history"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["bki_records", "bki_subject_states"]
    }

    async fn apply(
        &self,
        tx: &mut PgConnection,
        envelope: &Envelope,
        event: &Event,
    ) -> Result<(), Error> {
        match event {
            Event::Application(e) => apply_application(tx, envelope, e).await,
            Event::Loan(e) => apply_loan(tx, envelope, e).await,
            Event::Client(_) | Event::Wallet(_) | Event::Payment(_) | Event::MerchantOrder(_) => {
                Ok(())
            }
        }
    }
}

async fn save_state<T: serde::Serialize>(
    tx: &mut PgConnection,
    id: Uuid,
    state: &T,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO bki_subject_states (aggregate_id, state) VALUES ($1, $2) \
         ON CONFLICT (aggregate_id) DO UPDATE SET state = EXCLUDED.state",
    )
    .bind(id)
    .bind(serde_json::to_value(state)?)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn holidays(tx: &mut PgConnection) -> Result<BTreeSet<Date>, Error> {
    let days: Vec<Date> = sqlx::query_scalar("SELECT day FROM bki_holidays")
        .fetch_all(&mut *tx)
        .await?;
    Ok(days.into_iter().collect())
}

async fn record(
    tx: &mut PgConnection,
    env: &Envelope,
    code: Code,
    uid: Uuid,
    obligation: Option<Obligation>,
    detail: String,
) -> Result<(), Error> {
    let day = env.occurred_at.to_offset(MOSCOW).date();
    let deadline = credit_history::deadline(day, &holidays(tx).await?);
    sqlx::query(
        "INSERT INTO bki_records (event_id, client_id, uid, code, event_day, deadline, obligation, detail, partition, sequence, recorded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (event_id) DO NOTHING",
    )
    .bind(env.event_id)
    .bind(env.client_id.0)
    .bind(uid)
    .bind(code.as_str())
    .bind(day)
    .bind(deadline)
    .bind(obligation.map(serde_json::to_value).transpose()?)
    .bind(detail)
    .bind(i32::try_from(env.partition).unwrap_or(i32::MAX))
    .bind(i64::try_from(env.sequence).unwrap_or(i64::MAX))
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// The builder's fold of an aggregate after `event`: loaded (or `initial`), evolved, saved.
async fn fold<S>(
    tx: &mut PgConnection,
    env: &Envelope,
    initial: impl FnOnce() -> S,
    evolve: impl FnOnce(S) -> S,
) -> Result<S, Error>
where
    S: serde::Serialize + serde::de::DeserializeOwned,
{
    let state = load_state(
        tx,
        "SELECT state FROM bki_subject_states WHERE aggregate_id = $1",
        env.aggregate_id,
    )
    .await?
    .unwrap_or_else(initial);
    let next = evolve(state);
    save_state(tx, env.aggregate_id, &next).await?;
    Ok(next)
}

async fn apply_application(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &application::Event,
) -> Result<(), Error> {
    let a = fold(
        tx,
        env,
        || application::Application {
            id: env.aggregate_id,
            ..Default::default()
        },
        |s| application::evolve(s, env.client_id, event),
    )
    .await?;
    let Some(code) = credit_history::application_code(event) else {
        return Ok(());
    };
    let offer = a.offers.first();
    let obligation = offer
        .map(|o| Obligation {
            amount: o.amount.amount,
            currency: o.amount.currency.code().into(),
            psk_percent: Some(o.psk_percent),
            average_monthly_payment: credit_history::average_monthly_payment(
                o.contract_date,
                &o.schedule,
            ),
            ..Obligation::default()
        })
        .or_else(|| {
            a.requested.map(|m| Obligation {
                amount: m.amount,
                currency: m.currency.code().into(),
                ..Obligation::default()
            })
        });
    let detail = match event {
        application::Event::ApplicationDeclined { reasons, .. } => reasons.join("; "),
        _ => String::new(),
    };
    record(tx, env, code, env.aggregate_id, obligation, detail).await
}

async fn apply_loan(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &loan::Event,
) -> Result<(), Error> {
    let l = fold(
        tx,
        env,
        || loan::Loan {
            id: env.aggregate_id,
            ..Default::default()
        },
        |s| loan::evolve(s, env.client_id, event),
    )
    .await?;
    let Some(code) = credit_history::loan_code(event) else {
        return Ok(());
    };
    let (overdue, schedule) = match &l.ledger {
        Some(ledger) => (
            ledger.debt.overdue_principal + ledger.debt.overdue_interest + ledger.debt.penalties,
            ledger.schedule.clone(),
        ),
        None => (
            Decimal::ZERO,
            l.terms
                .as_ref()
                .map(|t| t.schedule.clone())
                .unwrap_or_default(),
        ),
    };
    let paid = match event {
        loan::Event::RepaymentAllocated { amount, .. }
        | loan::Event::RepaymentAccepted { amount, .. } => Some(amount.amount),
        _ => None,
    };
    let obligation = l.principal.map(|p| Obligation {
        amount: p.amount,
        currency: p.currency.code().into(),
        psk_percent: l.terms.as_ref().map(|t| t.psk_percent),
        average_monthly_payment: l
            .terms
            .as_ref()
            .and_then(|t| credit_history::average_monthly_payment(t.contract_date, &schedule)),
        debt: Some(l.outstanding),
        overdue: Some(overdue),
        paid,
    });
    let detail = match event {
        loan::Event::TermExtended { months, fee, .. } => {
            format!("prolonged by {months} months, fee {fee}")
        }
        loan::Event::LoanProlonged { days, fee } => {
            format!("prolonged by {days} days, fee {}", fee.amount)
        }
        loan::Event::RepaymentAllocated { early: Some(r), .. } => {
            format!("early repayment, {r:?} recalculated").to_lowercase()
        }
        loan::Event::AccrualStopped { reason, .. } => format!("accrual stopped: {reason}"),
        loan::Event::AccrualResumed { reason, .. } => format!("accrual resumed: {reason}"),
        loan::Event::LoanWrittenOff { reason, .. } => format!("written off: {reason}"),
        loan::Event::LoanBecameOverdue => "overdue".into(),
        loan::Event::LoanClosed { .. } | loan::Event::LoanRepaid => "repaid in full".into(),
        _ => String::new(),
    };
    record(tx, env, code, env.aggregate_id, obligation, detail).await
}
