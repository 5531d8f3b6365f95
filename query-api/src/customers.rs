//! The customer registry (`rm_customers`): a client's cabinet, with its personal data opened
//! for the readers allowed to see it — the client itself and operators. Partners and
//! auditors see the cabinet without personal data. Personal data stays sealed in the read
//! model; it is opened here, per request, with the client's key (`infra::vault`); an erased
//! client's data no longer opens and shows as erased.

use async_graphql::{Context, Object, SimpleObject};
use etr_domain::personal::Sealed;
use etr_domain::{client, ClientId};
use etr_infra::auth::Role;
use etr_infra::vault::Vault;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::auth::{may_read, viewer};
use crate::{pool, reach, store, PositionInput, LENDING};

/// A bound card, as shown (never the card number).
#[derive(SimpleObject, Clone)]
pub struct Card {
    pub card_id: Uuid,
    pub provider: String,
    pub masked_pan: String,
}

/// A tag with the reason it was set.
#[derive(SimpleObject, Clone)]
pub struct Tag {
    pub tag: String,
    pub reason: String,
}

/// A client's personal data, opened.
#[derive(SimpleObject, Clone)]
pub struct PersonalData {
    pub last_name: String,
    pub first_name: String,
    pub middle_name: Option<String>,
    pub birth_date: time::Date,
    /// E.164.
    pub phone: String,
    pub email: Option<String>,
    /// Series and number.
    pub passport: Option<String>,
    pub snils: Option<String>,
    pub inn: Option<String>,
    pub registration_address: Option<String>,
    /// Roubles a month, decimal string.
    pub monthly_income: Option<String>,
}

/// A client of the registry.
#[derive(SimpleObject, Clone)]
pub struct Customer {
    pub client_id: Uuid,
    /// active | blocked
    pub status: String,
    pub registered_by: Option<String>,
    pub block_reason: Option<String>,
    pub tags: Vec<Tag>,
    pub cards: Vec<Card>,
    pub open_application_id: Option<Uuid>,
    pub loans_disbursed: u32,
    /// Opened for the client itself and operators; `null` for other readers and once erased.
    pub personal: Option<PersonalData>,
    /// The client's data key was destroyed: its personal data can no longer be read.
    pub personal_data_erased: bool,
    pub registered_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// The client's last application for a wallet (e-wallet spec §2).
    pub wallet_registration: Option<WalletRegistration>,
    /// The client's personal-data change requests, oldest first.
    pub personal_data_change_requests: Vec<DataChangeRequest>,
    /// Payment templates (e-wallet spec §3.2).
    pub templates: Vec<PaymentTemplate>,
    /// Autopayments with their last runs (e-wallet spec §3.2).
    pub autopayments: Vec<AutopaymentView>,
}

/// A saved operation.
#[derive(SimpleObject, Clone)]
pub struct PaymentTemplate {
    pub template_id: Uuid,
    pub name: String,
    pub wallet_id: Uuid,
    pub service_id: String,
    /// Decimal string in `currency`.
    pub amount: String,
    pub currency: String,
}

/// An autopayment.
#[derive(SimpleObject, Clone)]
#[graphql(name = "Autopayment")]
pub struct AutopaymentView {
    pub autopayment_id: Uuid,
    pub template_id: Uuid,
    /// `active`, `paused` or `cancelled`.
    pub status: String,
    /// `second`, `minute`, `hour`, `day`, `week` or `month`, times `count`.
    pub unit: String,
    pub count: u32,
    /// When the next run is due (while active).
    pub next_run_at: OffsetDateTime,
    pub consecutive_failures: u32,
    pub max_failures: u32,
    pub pause_reason: Option<String>,
    /// The last 20 runs, oldest first.
    pub runs: Vec<AutopaymentRun>,
}

/// One run of an autopayment.
#[derive(SimpleObject, Clone)]
pub struct AutopaymentRun {
    pub run: u32,
    pub payment_id: Uuid,
    pub succeeded: bool,
    pub reason: Option<String>,
}

/// A client's application for a wallet.
#[derive(SimpleObject, Clone)]
pub struct WalletRegistration {
    pub client_id: Uuid,
    /// `submitted` (waiting for an operator), `approved`, `rejected` or `completed` (the
    /// account opened at the first login).
    pub status: String,
    /// ISO 4217 code of the account applied for.
    pub currency: String,
    /// The account that opens (or opened) at the first login.
    pub wallet_id: Uuid,
    /// The operator's reason, or `automatic`.
    pub reason: Option<String>,
    /// The data applied with while an operator has not decided; opened for the client itself
    /// and operators.
    pub applicant: Option<PersonalData>,
}

/// A request to change the client's personal data.
#[derive(SimpleObject, Clone)]
pub struct DataChangeRequest {
    pub request_id: Uuid,
    /// `submitted`, `approved` or `rejected`.
    pub status: String,
    pub reason: Option<String>,
}

#[derive(Default)]
pub struct CustomerQuery;

#[Object]
impl CustomerQuery {
    /// A client of the registry. Errors: `UNAUTHENTICATED`, `FORBIDDEN` (another client),
    /// `POSITION_NOT_REACHED`.
    async fn customer(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Option<Customer>> {
        let v = viewer(ctx)?;
        may_read(ctx, id)?;
        let pool = pool(ctx)?;
        reach(pool, LENDING, min_position).await?;
        let row: Option<(
            sqlx::types::Json<client::Client>,
            OffsetDateTime,
            OffsetDateTime,
        )> = sqlx::query_as(
            "SELECT state, registered_at, updated_at FROM rm_customers WHERE client_id = $1",
        )
        .bind(id)
        .fetch_optional(pool)
        .await
        .map_err(store)?;
        let Some((state, registered_at, updated_at)) = row else {
            return Ok(None);
        };
        let c = state.0;
        let may_open = matches!(v.role, Role::Client | Role::Operator);
        let (personal, erased) = match (&c.personal, may_open) {
            (Some(sealed), true) => open(pool, id, sealed).await?,
            _ => (None, false),
        };
        let wallet_registration = registration(pool, &c, may_open).await?;
        let personal_data_change_requests = c
            .data_changes
            .iter()
            .map(|r| DataChangeRequest {
                request_id: r.request_id,
                status: r.status.label().into(),
                reason: r.reason.clone(),
            })
            .collect();
        let templates = c
            .templates
            .iter()
            .map(|(id, t)| PaymentTemplate {
                template_id: *id,
                name: t.name.clone(),
                wallet_id: t.wallet_id,
                service_id: t.service_id.clone(),
                amount: t.amount.amount.to_string(),
                currency: t.amount.currency.code().into(),
            })
            .collect();
        let autopayments = c
            .autopayments
            .iter()
            .map(|(id, a)| AutopaymentView {
                autopayment_id: *id,
                template_id: a.template_id,
                status: a.status.label().into(),
                unit: serde_json::to_value(a.schedule.unit)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default(),
                count: a.schedule.count,
                next_run_at: a.next_run_at(),
                consecutive_failures: a.consecutive_failures,
                max_failures: a.max_failures,
                pause_reason: a.pause_reason.clone(),
                runs: a
                    .runs
                    .iter()
                    .map(|r| AutopaymentRun {
                        run: r.run,
                        payment_id: r.payment_id,
                        succeeded: r.succeeded,
                        reason: r.reason.clone(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Some(Customer {
            client_id: id,
            status: c.status.label().into(),
            registered_by: c.registered_by,
            block_reason: c.block_reason,
            tags: c
                .tags
                .into_iter()
                .map(|(tag, reason)| Tag { tag, reason })
                .collect(),
            cards: c
                .cards
                .into_iter()
                .map(|card| Card {
                    card_id: card.card_id,
                    provider: card.provider,
                    masked_pan: card.masked_pan,
                })
                .collect(),
            open_application_id: c.open_application,
            loans_disbursed: c.loans_disbursed,
            personal,
            personal_data_erased: erased || c.erased,
            registered_at,
            updated_at,
            wallet_registration,
            personal_data_change_requests,
            templates,
            autopayments,
        }))
    }

    /// Wallet registrations in `status` (default `submitted`: the operators' queue), oldest
    /// client id first after `after`, at most `first` (1–100, default 20). Operators only.
    /// Errors: `UNAUTHENTICATED`, `FORBIDDEN`, `BAD_USER_INPUT` (status or page size).
    #[graphql(
        complexity = "crate::page_cost(first, crate::DEFAULT_PAGE, crate::MAX_PAGE, child_complexity)"
    )]
    async fn wallet_registrations(
        &self,
        ctx: &Context<'_>,
        status: Option<String>,
        first: Option<i32>,
        after: Option<Uuid>,
        min_position: Option<PositionInput>,
    ) -> async_graphql::Result<Vec<WalletRegistration>> {
        let v = viewer(ctx)?;
        if v.role != Role::Operator {
            return Err(crate::auth::error(
                "FORBIDDEN",
                "wallet registrations are for operators",
            ));
        }
        let status = status.unwrap_or_else(|| "submitted".into());
        if !["submitted", "approved", "rejected", "completed"].contains(&status.as_str()) {
            return Err(crate::auth::error(
                "BAD_USER_INPUT",
                "status is one of submitted, approved, rejected, completed",
            ));
        }
        let first = first.unwrap_or(20);
        if !(1..=100).contains(&first) {
            return Err(crate::auth::error(
                "BAD_USER_INPUT",
                "first is between 1 and 100",
            ));
        }
        let pool = pool(ctx)?;
        reach(pool, LENDING, min_position).await?;
        let rows: Vec<sqlx::types::Json<client::Client>> = sqlx::query_scalar(
            "SELECT state FROM rm_customers WHERE state->'wallet_registration'->>'status' = $1              AND client_id > $2 ORDER BY client_id LIMIT $3",
        )
        .bind(&status)
        .bind(after.unwrap_or(Uuid::nil()))
        .bind(i64::from(first))
        .fetch_all(pool)
        .await
        .map_err(store)?;
        let mut out = Vec::with_capacity(rows.len());
        for c in rows {
            out.extend(registration(pool, &c.0, true).await?);
        }
        Ok(out)
    }
}

/// The client's wallet registration as shown, its applicant's data opened when allowed.
async fn registration(
    pool: &sqlx::PgPool,
    c: &client::Client,
    may_open: bool,
) -> async_graphql::Result<Option<WalletRegistration>> {
    let Some(r) = &c.wallet_registration else {
        return Ok(None);
    };
    let applicant = match (&c.registration_personal, may_open) {
        (Some(sealed), true) => open(pool, c.id, sealed).await?.0,
        _ => None,
    };
    Ok(Some(WalletRegistration {
        client_id: c.id,
        status: r.status.label().into(),
        currency: r.currency.code().into(),
        wallet_id: r.wallet_id,
        reason: r.reason.clone(),
        applicant,
    }))
}

async fn open(
    pool: &sqlx::PgPool,
    id: Uuid,
    sealed: &Sealed,
) -> async_graphql::Result<(Option<PersonalData>, bool)> {
    match Vault::new(pool.clone()).open(ClientId(id), sealed).await {
        Ok(d) => Ok((
            Some(PersonalData {
                last_name: d.last_name,
                first_name: d.first_name,
                middle_name: d.middle_name,
                birth_date: d.birth_date,
                phone: d.phone.as_str().to_owned(),
                email: d.email.map(|e| e.as_str().to_owned()),
                passport: d
                    .passport
                    .map(|p| format!("{} {}", p.number.series(), p.number.number())),
                snils: d.snils.map(|s| s.as_str().to_owned()),
                inn: d.inn.map(|i| i.as_str().to_owned()),
                registration_address: d.registration_address,
                monthly_income: d.monthly_income.map(|i| format!("{i:.2}")),
            }),
            false,
        )),
        Err(etr_infra::Error::Erased(_)) => Ok((None, true)),
        Err(e) => {
            tracing::error!(error = %e, client = %id, "personal data does not open");
            Err(crate::auth::error(
                "INTERNAL",
                "the client's personal data could not be opened",
            ))
        }
    }
}
