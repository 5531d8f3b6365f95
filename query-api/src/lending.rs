//! Loan applications and loans: the `lending` projection's tables.

use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::auth::{may_read, viewer};
use crate::loaders::children;
use crate::wallets::amount_text;
use crate::{pool, reach, store, PositionInput, LENDING};

/// A product offer made after scoring.
#[derive(SimpleObject, serde::Deserialize, Clone)]
pub struct Offer {
    pub offer_id: Uuid,
    pub amount: OfferAmount,
    pub term_days: u32,
    /// Daily interest rate, percent (e.g. "0.8").
    pub daily_rate_percent: String,
}

#[derive(SimpleObject, serde::Deserialize, Clone)]
pub struct OfferAmount {
    /// Decimal string, exact.
    pub amount: String,
    pub currency: String,
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Application {
    pub application_id: Uuid,
    pub client_id: Uuid,
    /// submitted, identified, approved, declined, offer_chosen, contract_signed, disbursed, cancelled.
    pub status: String,
    /// Decimal string, exact.
    pub requested_amount: Option<String>,
    pub currency: Option<String>,
    pub term_days: i32,
    pub partner_id: Option<String>,
    pub chosen_offer_id: Option<Uuid>,
    pub loan_id: Option<Uuid>,
    /// Why it was declined or cancelled.
    pub reason: Option<String>,
    #[graphql(skip)]
    pub offers: sqlx::types::Json<Vec<Offer>>,
    pub version: i64,
    pub submitted_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[ComplexObject]
impl Application {
    /// The offers made after scoring (empty before approval).
    async fn offers(&self) -> Vec<Offer> {
        self.offers
            .0
            .iter()
            .map(|offer| Offer {
                amount: OfferAmount {
                    amount: amount_text(&offer.amount.amount),
                    currency: offer.amount.currency.clone(),
                },
                ..offer.clone()
            })
            .collect()
    }
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Loan {
    pub loan_id: Uuid,
    pub client_id: Uuid,
    pub application_id: Option<Uuid>,
    /// active, overdue, repaid.
    pub status: String,
    /// Decimal strings, exact.
    pub principal: Option<String>,
    pub currency: Option<String>,
    pub outstanding: String,
    pub repaid: String,
    pub fees: String,
    pub term_days: i32,
    pub daily_rate_percent: Option<String>,
    pub issued_at: OffsetDateTime,
    /// The date the loan is due (issue date + term, prolongations included).
    pub due_on: Date,
    pub version: i64,
    pub updated_at: OffsetDateTime,
}

/// A repayment or a prolongation fee.
#[derive(SimpleObject, sqlx::FromRow, Clone)]
pub struct LoanMovement {
    /// repayment | prolongation_fee
    pub kind: String,
    pub amount: String,
    pub currency: String,
    pub reference: Option<String>,
    pub partition: i32,
    pub sequence: i64,
    pub occurred_at: OffsetDateTime,
}

#[ComplexObject]
impl Loan {
    /// Repayments and prolongation fees, in log order.
    async fn movements(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LoanMovement>> {
        children(ctx, self.loan_id).await
    }
}

const APPLICATION_COLUMNS: &str = "application_id, client_id, status, requested_amount::text AS requested_amount, currency, term_days, partner_id, chosen_offer_id, loan_id, reason, offers, version, submitted_at, updated_at";
const LOAN_COLUMNS: &str = "loan_id, client_id, application_id, status, principal::text AS principal, currency, outstanding::text AS outstanding, repaid::text AS repaid, fees::text AS fees, term_days, daily_rate_percent, issued_at, due_on, version, updated_at";

/// Loader queries (see [`crate::loaders::Children`]).
pub(crate) const APPLICATIONS_OF_CLIENTS: &str = "SELECT client_id AS group_key, application_id, client_id, status, requested_amount::text AS requested_amount, currency, term_days, partner_id, chosen_offer_id, loan_id, reason, offers, version, submitted_at, updated_at \
     FROM rm_applications WHERE client_id = ANY($1) ORDER BY submitted_at DESC, application_id";
pub(crate) const LOANS_OF_CLIENTS: &str = "SELECT client_id AS group_key, loan_id, client_id, application_id, status, principal::text AS principal, currency, outstanding::text AS outstanding, repaid::text AS repaid, fees::text AS fees, term_days, daily_rate_percent, issued_at, due_on, version, updated_at \
     FROM rm_loans WHERE client_id = ANY($1) ORDER BY issued_at DESC, loan_id";
pub(crate) const MOVEMENTS_OF_LOANS: &str = "SELECT loan_id AS group_key, kind, amount::text AS amount, currency, reference, partition, sequence, occurred_at \
     FROM rm_loan_movements WHERE loan_id = ANY($1) ORDER BY partition, sequence";

#[derive(Default)]
pub struct LendingQuery;

#[Object]
impl LendingQuery {
    async fn application(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Option<Application>> {
        viewer(ctx)?;
        let pool = pool(ctx)?;
        reach(pool, LENDING, min_position).await?;
        let found: Option<Application> = sqlx::query_as(&format!(
            "SELECT {APPLICATION_COLUMNS} FROM rm_applications WHERE application_id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(store)?;
        if let Some(a) = &found {
            may_read(ctx, a.client_id)?;
        }
        Ok(found)
    }

    async fn loan(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Option<Loan>> {
        viewer(ctx)?;
        let pool = pool(ctx)?;
        reach(pool, LENDING, min_position).await?;
        let found: Option<Loan> = sqlx::query_as(&format!(
            "SELECT {LOAN_COLUMNS} FROM rm_loans WHERE loan_id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(store)?;
        if let Some(l) = &found {
            may_read(ctx, l.client_id)?;
        }
        Ok(found)
    }
}
