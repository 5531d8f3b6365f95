//! The lending read models: applications (with their offers) and loans (with repayments and
//! prolongation fees), folded with the domain's own `evolve` like the wallet read models.

use etr_domain::{application, loan, Currency, Envelope, Event, Money};
use sqlx::PgConnection;
use time::Duration;

use crate::error::Error;
use crate::runtime::{load_state, Projection};

/// Applications, loans and loan movements.
pub struct Lending;

impl Projection for Lending {
    fn name(&self) -> &'static str {
        "lending"
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_applications",
            "rm_loans",
            "rm_loan_movements",
            "rm_customers",
        ]
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
            Event::Client(e) => crate::registry::apply(tx, envelope, e).await,
            Event::Wallet(_) | Event::Payment(_) | Event::MerchantOrder(_) => Ok(()),
        }
    }
}

fn version(env: &Envelope) -> i64 {
    i64::try_from(env.aggregate_version).unwrap_or(i64::MAX)
}

async fn apply_application(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &application::Event,
) -> Result<(), Error> {
    let state = load_state(
        tx,
        "SELECT state FROM rm_applications WHERE application_id = $1",
        env.aggregate_id,
    )
    .await?
    .unwrap_or_else(|| application::Application {
        id: env.aggregate_id,
        ..Default::default()
    });
    let a = application::evolve(state, env.client_id, event);
    sqlx::query(
        "INSERT INTO rm_applications (application_id, client_id, status, requested_amount, currency, term_days, partner_id, chosen_offer_id, loan_id, reason, offers, version, state, submitted_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14) \
         ON CONFLICT (application_id) DO UPDATE SET status = EXCLUDED.status, requested_amount = EXCLUDED.requested_amount, currency = EXCLUDED.currency, \
         term_days = EXCLUDED.term_days, partner_id = EXCLUDED.partner_id, chosen_offer_id = EXCLUDED.chosen_offer_id, loan_id = EXCLUDED.loan_id, \
         reason = EXCLUDED.reason, offers = EXCLUDED.offers, version = EXCLUDED.version, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
    )
    .bind(env.aggregate_id)
    .bind(env.client_id.0)
    .bind(a.status.label())
    .bind(a.requested.map(|m| m.amount))
    .bind(a.requested.map(|m| m.currency.code()))
    .bind(i32::try_from(a.term).unwrap_or(i32::MAX))
    .bind(&a.partner_id)
    .bind(a.chosen_offer)
    .bind(a.loan_id)
    .bind((!a.reasons.is_empty()).then(|| a.reasons.join("; ")))
    .bind(serde_json::to_value(&a.offers)?)
    .bind(version(env))
    .bind(serde_json::to_value(&a)?)
    .bind(env.occurred_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply_loan(
    tx: &mut PgConnection,
    env: &Envelope,
    event: &loan::Event,
) -> Result<(), Error> {
    let state = load_state(
        tx,
        "SELECT state FROM rm_loans WHERE loan_id = $1",
        env.aggregate_id,
    )
    .await?
    .unwrap_or_else(|| loan::Loan {
        id: env.aggregate_id,
        ..Default::default()
    });
    let l = loan::evolve(state, env.client_id, event);
    let currency = l.principal.map(|p| p.currency.code());
    let rate = match event {
        loan::Event::LoanIssued {
            daily_rate_percent, ..
        } => Some(daily_rate_percent.clone()),
        _ => None,
    };
    let due_on = env.occurred_at.date() + Duration::days(i64::from(l.term_days));
    // A serviced loan is due on its schedule's last date; another on issue date + term
    // (prolongation days included), computed from the stored issue date.
    let scheduled_end = l
        .ledger
        .as_ref()
        .and_then(|ledger| ledger.schedule.last().map(|i| i.date));
    sqlx::query(
        "INSERT INTO rm_loans (loan_id, client_id, application_id, status, principal, currency, outstanding, repaid, fees, term_days, daily_rate_percent, issued_at, due_on, version, state, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, 0, $8, $9, $10, COALESCE($14, $11), $12, $13, $10) \
         ON CONFLICT (loan_id) DO UPDATE SET status = EXCLUDED.status, outstanding = EXCLUDED.outstanding, term_days = EXCLUDED.term_days, \
         daily_rate_percent = COALESCE(EXCLUDED.daily_rate_percent, rm_loans.daily_rate_percent), \
         due_on = CASE WHEN $15 THEN COALESCE($14, rm_loans.due_on) ELSE (rm_loans.issued_at AT TIME ZONE 'UTC')::date + EXCLUDED.term_days END, \
         version = EXCLUDED.version, state = EXCLUDED.state, updated_at = EXCLUDED.updated_at",
    )
    .bind(env.aggregate_id)
    .bind(env.client_id.0)
    .bind(l.application_id)
    .bind(l.status.label())
    .bind(l.principal.map(|p| p.amount))
    .bind(currency)
    .bind(l.outstanding)
    .bind(i32::try_from(l.term_days).unwrap_or(i32::MAX))
    .bind(rate)
    .bind(env.occurred_at)
    .bind(due_on)
    .bind(version(env))
    .bind(serde_json::to_value(&l)?)
    .bind(scheduled_end)
    .bind(l.ledger.is_some())
    .execute(&mut *tx)
    .await?;
    let rub = |amount: rust_decimal::Decimal| Money::new(amount, Currency::Rub);
    let movement = match event {
        loan::Event::RepaymentAccepted {
            repayment_id,
            amount,
        } => Some(("repayment", *amount, Some(repayment_id.to_string()))),
        loan::Event::RepaymentAllocated {
            repayment_id,
            amount,
            early,
            ..
        } => Some((
            if early.is_some() {
                "early_repayment"
            } else {
                "repayment"
            },
            *amount,
            Some(repayment_id.to_string()),
        )),
        loan::Event::LoanProlonged { fee, days } => {
            Some(("prolongation_fee", *fee, Some(format!("{days} days"))))
        }
        loan::Event::TermExtended { fee, months, .. } => Some((
            "prolongation_fee",
            rub(*fee),
            Some(format!("{months} months")),
        )),
        loan::Event::InterestAccrued {
            from,
            through,
            interest,
            penalties,
            ..
        } if !(interest + penalties).is_zero() => Some((
            "accrual",
            rub(interest + penalties),
            Some(format!(
                "{from}..{through}: interest {interest}, penalties {penalties}"
            )),
        )),
        loan::Event::LoanWrittenOff { amount, reason, .. } => {
            Some(("write_off", rub(*amount), Some(reason.clone())))
        }
        _ => None,
    };
    if let Some((kind, amount, reference)) = movement {
        let inserted = sqlx::query(
            "INSERT INTO rm_loan_movements (loan_id, partition, sequence, kind, amount, currency, reference, occurred_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind(env.aggregate_id)
        .bind(i32::try_from(env.partition).unwrap_or(i32::MAX))
        .bind(i64::try_from(env.sequence).unwrap_or(i64::MAX))
        .bind(kind)
        .bind(amount.amount)
        .bind(amount.currency.code())
        .bind(reference)
        .bind(env.occurred_at)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            let column = match kind {
                "repayment" | "early_repayment" => "repaid",
                "accrual" => "accrued",
                "write_off" => "written_off",
                _ => "fees",
            };
            sqlx::query(&format!(
                "UPDATE rm_loans SET {column} = {column} + $2 WHERE loan_id = $1"
            ))
            .bind(env.aggregate_id)
            .bind(amount.amount)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}
