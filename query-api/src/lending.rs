//! Loan applications and loans: the `lending` projection's tables.

use async_graphql::{ComplexObject, Context, Object, SimpleObject};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::auth::{may_read, viewer};
use crate::loaders::children;
use crate::wallets::amount_text;
use crate::{pool, reach, store, PositionInput, LENDING};

/// A product offer made after scoring: its preliminary schedule and its PSK (353-FZ art. 6).
#[derive(SimpleObject, Clone)]
pub struct Offer {
    pub offer_id: Uuid,
    pub product_id: String,
    pub amount: OfferAmount,
    /// Months or days, as `term_unit` says.
    pub term: u32,
    /// `months` or `days`.
    pub term_unit: String,
    pub contract_date: Date,
    /// Σ interest over the term, decimal string, roubles.
    pub charges: String,
    /// PSK in percent a year, 3 decimals.
    pub psk_percent: String,
    /// PSK in money: what is paid beyond the amount issued, roubles.
    pub psk_money: String,
    pub schedule: Vec<Instalment>,
}

#[derive(SimpleObject, Clone)]
pub struct OfferAmount {
    /// Decimal string, exact.
    pub amount: String,
    pub currency: String,
}

/// One instalment of a schedule; amounts are decimal strings in roubles with kopecks.
#[derive(SimpleObject, Clone)]
pub struct Instalment {
    pub number: u32,
    pub date: Date,
    pub days: u32,
    pub payment: String,
    pub principal: String,
    pub interest: String,
    pub balance: String,
}

fn instalments(schedule: &[etr_domain::schedule::Instalment]) -> Vec<Instalment> {
    schedule
        .iter()
        .map(|i| Instalment {
            number: i.number,
            date: i.date,
            days: i.days,
            payment: amount_text(&i.payment.to_string()),
            principal: amount_text(&i.principal.to_string()),
            interest: amount_text(&i.interest.to_string()),
            balance: amount_text(&i.balance.to_string()),
        })
        .collect()
}

fn offer_view(offer: &etr_domain::application::Offer) -> Offer {
    Offer {
        offer_id: offer.offer_id,
        product_id: offer.product_id.clone(),
        amount: OfferAmount {
            amount: amount_text(&offer.amount.amount.to_string()),
            currency: offer.amount.currency.code().to_owned(),
        },
        term: offer.term,
        term_unit: offer.term_unit.clone(),
        contract_date: offer.contract_date,
        charges: amount_text(&offer.charges.to_string()),
        psk_percent: offer.psk_percent.to_string(),
        psk_money: amount_text(&offer.psk_money.to_string()),
        schedule: instalments(&offer.schedule),
    }
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Application {
    pub application_id: Uuid,
    pub client_id: Uuid,
    /// draft, submitted, identified, checked, manual_review, approved, offer_chosen,
    /// contract_generated, signed, card_binding, card_bound, disbursed, declined, cancelled,
    /// expired, failed.
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
    pub state: sqlx::types::Json<etr_domain::application::Application>,
    pub version: i64,
    pub submitted_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[ComplexObject]
impl Application {
    /// The offers made after scoring (empty before approval).
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn offers(&self) -> Vec<Offer> {
        self.state.0.offers.iter().map(offer_view).collect()
    }

    /// Why it was referred, declined or cancelled (every reason recorded).
    async fn reasons(&self) -> &[String] {
        &self.state.0.reasons
    }

    /// The identification method that identified the client.
    async fn identification_method(&self) -> Option<&str> {
        self.state.0.identification_method.as_deref()
    }

    /// The risk module's score.
    async fn score(&self) -> Option<u32> {
        self.state.0.score
    }

    /// The debt-load ratio (PDN, Bank of Russia 6579-U) recorded with the decision, percent
    /// with 1 decimal.
    async fn pdn_percent(&self) -> Option<String> {
        self.state.0.pdn_percent.map(|p| p.to_string())
    }

    /// Until when the approval waits for the signature.
    async fn expires_at(&self) -> Option<OffsetDateTime> {
        self.state.0.expires_at
    }

    /// SHA-256 of the contract document the client signs (hex), once generated.
    async fn contract_sha256(&self) -> Option<&str> {
        self.state
            .0
            .contract
            .as_ref()
            .map(|c| c.document_sha256.as_str())
    }

    async fn signed(&self) -> bool {
        self.state.0.signed
    }

    /// The bound card the loan is paid out to (masked).
    async fn card_masked_pan(&self) -> Option<&str> {
        self.state.0.card.as_ref().map(|c| c.masked_pan.as_str())
    }

    /// Where the conveyor's run stands and what it waits for.
    async fn process_step(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let pool = pool(ctx)?;
        let state: Option<serde_json::Value> = sqlx::query_scalar(
            "SELECT state FROM process_instances WHERE process = $1 AND instance_id = $2",
        )
        .bind(etr_domain::conveyor::PROCESS)
        .bind(self.application_id)
        .fetch_optional(pool)
        .await
        .map_err(store)?;
        Ok(state
            .and_then(|s| serde_json::from_value::<etr_domain::conveyor::State>(s).ok())
            .map(|s| s.stage.label().to_owned()))
    }
}

#[derive(SimpleObject, sqlx::FromRow, Clone)]
#[graphql(complex)]
pub struct Loan {
    pub loan_id: Uuid,
    pub client_id: Uuid,
    pub application_id: Option<Uuid>,
    /// active, overdue, repaid, closed, written_off.
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
    /// Interest and penalties accrued by the day-close, roubles (a serviced loan).
    pub accrued: String,
    /// Written off, roubles.
    pub written_off: String,
    pub version: i64,
    pub updated_at: OffsetDateTime,
    #[graphql(skip)]
    pub state: sqlx::types::Json<etr_domain::loan::Loan>,
}

/// What the client owes by component; roubles with kopecks as decimal strings.
#[derive(SimpleObject, Clone)]
pub struct Debt {
    pub fees: String,
    pub penalties: String,
    pub overdue_interest: String,
    pub interest: String,
    pub overdue_principal: String,
    pub principal: String,
    pub total: String,
}

/// An instalment of a serviced loan with where it stands: `paid` (its date passed and nothing
/// of it is overdue), `overdue` (its date passed with something unpaid), `due` (to come, as
/// the current schedule has it).
#[derive(SimpleObject, Clone)]
pub struct BillingInstalment {
    pub date: Date,
    pub payment: String,
    pub principal: String,
    pub interest: String,
    pub status: String,
}

/// Early repayment on the open business day.
#[derive(SimpleObject, Clone)]
pub struct EarlyRepaymentFigures {
    pub possible: bool,
    /// Repays the loan in full today, roubles.
    pub payoff: String,
    /// A partial early repayment must exceed this (all owed but current principal).
    pub partial_above: String,
    /// The end of the business day in Moscow: the quote holds until then.
    pub valid_until: OffsetDateTime,
}

/// A one-month prolongation on the open business day.
#[derive(SimpleObject, Clone)]
pub struct ProlongationFigures {
    pub possible: bool,
    pub fee: String,
    /// The last instalment's date after it.
    pub new_last_date: Option<Date>,
    /// The first instalment after it, roubles.
    pub new_first_payment: Option<String>,
}

/// The servicing view of a loan (seed 000 §6.13.1): its open business day, the debt by
/// component, the charges against the cap, the schedule with each instalment's standing and
/// what an early repayment or a prolongation would take.
#[derive(SimpleObject, Clone)]
pub struct Billing {
    /// The open business day: every day before it has accrued.
    pub business_date: Date,
    pub debt: Debt,
    /// Overpaid, kept for the client, roubles.
    pub credit: String,
    /// Interest, penalties and fees charged so far, and the most they may reach (the cap of
    /// the contract date: 130 % / 100 % of principal).
    pub charges: String,
    pub charges_cap: String,
    pub principal_repaid: String,
    pub accrual_stopped: bool,
    pub capped: bool,
    /// closed, written_off or open.
    pub standing: String,
    pub schedule: Vec<BillingInstalment>,
    /// A card repayment the bank has not settled yet (its amount, roubles): no other
    /// repayment until it is.
    pub card_repayment_pending: Option<String>,
    pub early_repayment: EarlyRepaymentFigures,
    pub prolongation: ProlongationFigures,
}

fn money(d: rust_decimal::Decimal) -> String {
    amount_text(&etr_domain::money::round_minor(d, etr_domain::Currency::Rub).to_string())
}

fn billing(l: &etr_domain::loan::Loan) -> Option<Billing> {
    use etr_domain::servicing::Standing;
    let ledger = l.ledger.as_ref()?;
    let day = ledger.accrued_until;
    let d = &ledger.debt;
    let overdue = !(d.overdue_principal.is_zero() && d.overdue_interest.is_zero());
    let mut schedule: Vec<BillingInstalment> = l
        .terms
        .iter()
        .flat_map(|t| t.schedule.iter())
        .filter(|i| i.date < day)
        .map(|i| BillingInstalment {
            date: i.date,
            payment: money(i.payment),
            principal: money(i.principal),
            interest: money(i.interest),
            status: if overdue { "overdue" } else { "paid" }.into(),
        })
        .collect();
    schedule.extend(ledger.schedule.iter().map(|i| BillingInstalment {
        date: i.date,
        payment: money(i.payment),
        principal: money(i.principal),
        interest: money(i.interest),
        status: "due".into(),
    }));
    let open = ledger.standing == Standing::Open;
    let fee = l.prolongation_fee();
    let mut prolonged = (**ledger).clone();
    let prolongation = prolonged.prolong(day, 1, fee).ok().map(|_| prolonged);
    Some(Billing {
        business_date: day,
        debt: Debt {
            fees: money(d.fees),
            penalties: money(d.penalties),
            overdue_interest: money(d.overdue_interest),
            interest: money(d.interest),
            overdue_principal: money(d.overdue_principal),
            principal: money(d.principal),
            total: money(d.total()),
        },
        credit: money(ledger.credit),
        charges: money(ledger.charges),
        charges_cap: money(ledger.max_charges()),
        principal_repaid: money(ledger.principal_repaid),
        accrual_stopped: ledger.accrual_stopped,
        capped: ledger.capped,
        standing: match ledger.standing {
            Standing::Open => "open",
            Standing::Closed => "closed",
            Standing::WrittenOff => "written_off",
        }
        .into(),
        schedule,
        card_repayment_pending: l.pending_card.as_ref().map(|p| money(p.amount.amount)),
        early_repayment: EarlyRepaymentFigures {
            possible: open && !d.principal.is_zero(),
            payoff: money(ledger.payoff(day).unwrap_or_default()),
            partial_above: money(d.total() - d.principal),
            valid_until: etr_domain::loan::business_day_end(day),
        },
        prolongation: ProlongationFigures {
            possible: open && prolongation.is_some(),
            fee: money(fee),
            new_last_date: prolongation
                .as_ref()
                .and_then(|p| p.schedule.last().map(|i| i.date)),
            new_first_payment: prolongation
                .as_ref()
                .and_then(|p| p.schedule.first().map(|i| money(i.payment))),
        },
    })
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
    /// The schedule the client signed (empty for a loan issued without an offer).
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn schedule(&self) -> Vec<Instalment> {
        self.state
            .0
            .terms
            .as_ref()
            .map(|t| instalments(&t.schedule))
            .unwrap_or_default()
    }

    /// PSK in percent a year, 3 decimals, as signed.
    async fn psk_percent(&self) -> Option<String> {
        self.state
            .0
            .terms
            .as_ref()
            .map(|t| t.psk_percent.to_string())
    }

    /// PSK in money, roubles, as signed.
    async fn psk_money(&self) -> Option<String> {
        self.state
            .0
            .terms
            .as_ref()
            .map(|t| amount_text(&t.psk_money.to_string()))
    }

    async fn product_id(&self) -> Option<&str> {
        self.state.0.terms.as_ref().map(|t| t.product_id.as_str())
    }

    /// Servicing figures of a loan the platform services (absent for others).
    async fn billing(&self) -> Option<Billing> {
        billing(&self.state.0)
    }

    /// Repayments (`repayment`, `early_repayment`), prolongation fees, accruals and
    /// write-offs, in log order.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn movements(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LoanMovement>> {
        children(ctx, self.loan_id).await
    }

    /// What the credit bureaus were told of this loan and its application, and when: one
    /// entry per credit-history record and bureau, in log order.
    #[graphql(complexity = "crate::list_cost(child_complexity)")]
    async fn credit_history(
        &self,
        ctx: &Context<'_>,
    ) -> async_graphql::Result<Vec<CreditHistoryEntry>> {
        sqlx::query_as(
            "SELECT r.event_id, r.code, r.event_day, r.deadline, u.bureau, u.status, u.first_sent_at, u.late \
             FROM bki_records r LEFT JOIN bki_record_uploads u ON u.event_id = r.event_id \
             WHERE r.uid = $1 OR r.uid = $2 ORDER BY r.partition, r.sequence, u.bureau",
        )
        .bind(self.loan_id)
        .bind(self.application_id)
        .fetch_all(pool(ctx)?)
        .await
        .map_err(store)
    }
}

/// A credit-history record (unified format code: 1.1 … 2.5) and where it stands with a
/// bureau: `sent`, `accepted`, `rejected`, `parked`, or no bureau yet (not uploaded).
#[derive(SimpleObject, sqlx::FromRow, Clone)]
pub struct CreditHistoryEntry {
    pub event_id: Uuid,
    pub code: String,
    /// The Moscow day the event was recorded.
    pub event_day: Date,
    /// The last day it may be uploaded (second business day after).
    pub deadline: Date,
    pub bureau: Option<String>,
    pub status: Option<String>,
    pub first_sent_at: Option<OffsetDateTime>,
    /// First sent after its deadline.
    pub late: Option<bool>,
}

const APPLICATION_COLUMNS: &str = "application_id, client_id, status, requested_amount::text AS requested_amount, currency, term_days, partner_id, chosen_offer_id, loan_id, reason, state, version, submitted_at, updated_at";
const LOAN_COLUMNS: &str = "loan_id, client_id, application_id, status, principal::text AS principal, currency, outstanding::text AS outstanding, repaid::text AS repaid, fees::text AS fees, term_days, daily_rate_percent, issued_at, due_on, accrued::text AS accrued, written_off::text AS written_off, version, updated_at, state";

/// Loader queries (see [`crate::loaders::Children`]).
pub(crate) const APPLICATIONS_OF_CLIENTS: &str = "SELECT client_id AS group_key, application_id, client_id, status, requested_amount::text AS requested_amount, currency, term_days, partner_id, chosen_offer_id, loan_id, reason, state, version, submitted_at, updated_at \
     FROM rm_applications WHERE client_id = ANY($1) ORDER BY submitted_at DESC, application_id";
pub(crate) const LOANS_OF_CLIENTS: &str = "SELECT client_id AS group_key, loan_id, client_id, application_id, status, principal::text AS principal, currency, outstanding::text AS outstanding, repaid::text AS repaid, fees::text AS fees, term_days, daily_rate_percent, issued_at, due_on, accrued::text AS accrued, written_off::text AS written_off, version, updated_at, state \
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
