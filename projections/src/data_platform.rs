//! The data platform: the log replayed into plain analytics tables in schema `dp` (facts for
//! events, wallet operations, payments, applications, loans and daily wallet balances;
//! dimensions for clients, services and partners), and the fact tables written as Parquet.
//!
//! [`load`] writes one batch of events in one transaction with one set-based statement per
//! table (`INSERT … SELECT FROM UNNEST(arrays) ON CONFLICT …`). Every write is keyed by event
//! or entity, so replaying the same log any number of times gives the same tables:
//! - event facts (`fact_events`, `fact_wallet_operations`) are inserted once per event id;
//! - entity facts (payments, applications, loans) are collapsed per entity within the batch to
//!   the state after its last event, then upserted; the row keeps the partition sequence of
//!   the latest event applied (`last_sequence`), and an older event (a window replayed after a
//!   later one) never overwrites a newer status, while the facts of a creating event fill in
//!   whenever they come. Every payment and application event sets the status; a loan's
//!   repayments and prolongations do not, so a loan's status is ordered by its own position
//!   (`status_sequence`, the latest status-changing event applied), and a loan of which `dp`
//!   holds only such events has a row with no status;
//! - daily balances (`fact_daily_balances`) are maintained from the wallet events that are new
//!   to `dp` in the batch (see the migration that creates the table for why and how).

use etr_domain::{application, loan, payment, wallet, Envelope, Event, Money};
use futures::TryStreamExt as _;
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::column::writer::ColumnWriter;
use parquet::data_type::{ByteArray, FixedLenByteArray};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::{Type as SchemaType, TypePtr};
use rust_decimal::Decimal;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row as _};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Date, OffsetDateTime, UtcOffset};
use uuid::Uuid;

use crate::error::Error;

/// Events per batch (one transaction) when replaying into the data platform.
pub const BATCH: usize = 5_000;

/// The advisory lock that keeps one loader at a time: the daily balances are maintained
/// incrementally from what the other tables already hold.
const LOAD_LOCK: i64 = 0x0064_705f_6c6f_6164;

/// Writes `events` (in log order) into `dp` in one transaction.
pub async fn load(pool: &PgPool, events: &[(Envelope, Event)]) -> Result<(), Error> {
    if events.is_empty() {
        return Ok(());
    }
    let rows = Rows::collect(events);
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(LOAD_LOCK)
        .execute(&mut *tx)
        .await?;
    rows.write(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The UTC calendar day of an instant.
fn utc_day(at: OffsetDateTime) -> Date {
    at.to_offset(UtcOffset::UTC).date()
}

/// The `fact_events` columns of a batch.
#[derive(Default)]
struct EventColumns<'a> {
    event_id: Vec<Uuid>,
    client_id: Vec<Uuid>,
    aggregate_type: Vec<&'a str>,
    aggregate_id: Vec<Uuid>,
    aggregate_version: Vec<i64>,
    event_type: Vec<&'a str>,
    partition: Vec<i32>,
    sequence: Vec<i64>,
    occurred_at: Vec<OffsetDateTime>,
    actor_kind: Vec<&'a str>,
    actor_id: Vec<&'a str>,
    command_id: Vec<&'a str>,
    correlation_id: Vec<&'a str>,
}

/// The `fact_wallet_operations` columns of a batch.
#[derive(Default)]
struct OperationColumns {
    event_id: Vec<Uuid>,
    client_id: Vec<Uuid>,
    wallet_id: Vec<Uuid>,
    kind: Vec<&'static str>,
    amount: Vec<Decimal>,
    currency: Vec<&'static str>,
    reference_id: Vec<Option<Uuid>>,
    occurred_at: Vec<OffsetDateTime>,
}

/// What one wallet event does to the wallet's day: balance and held deltas and turnover.
struct Movement {
    event_id: Uuid,
    wallet_id: Uuid,
    client_id: Uuid,
    day: Date,
    currency: Option<&'static str>,
    balance: Decimal,
    held: Decimal,
    credit: Decimal,
    debit: Decimal,
    operation: bool,
    version: i64,
}

/// A wallet's movements on one day that are new to `dp`.
#[derive(Default)]
struct DayDelta {
    client_id: Uuid,
    currency: Option<&'static str>,
    balance: Decimal,
    held: Decimal,
    credit: Decimal,
    debit: Decimal,
    operations: i32,
    events: i64,
    version: i64,
}

/// An entity (payment, application, loan) collapsed to its state after the batch's events.
struct Entity<F> {
    client_id: Uuid,
    /// The facts of the creating event, when the batch holds it.
    created: Option<F>,
    /// The status after the latest status-changing event of the batch, and its sequence.
    status: Option<(&'static str, i64)>,
    last_event_at: OffsetDateTime,
    last_sequence: i64,
}

fn collapse<F>(
    entities: &mut HashMap<Uuid, Entity<F>>,
    env: &Envelope,
    created: Option<F>,
    status: Option<&'static str>,
) {
    let sequence = int(env.sequence);
    let entity = entities.entry(env.aggregate_id).or_insert(Entity {
        client_id: env.client_id.0,
        created: None,
        status: None,
        last_event_at: env.occurred_at,
        last_sequence: sequence,
    });
    if created.is_some() {
        entity.created = created;
    }
    // The status and the latest event are ordered separately: an event that leaves the status
    // as it was (a loan's repayment) does not hide an earlier status change.
    if let Some(status) = status {
        if entity.status.is_none_or(|(_, at)| sequence >= at) {
            entity.status = Some((status, sequence));
        }
    }
    if sequence >= entity.last_sequence {
        entity.last_event_at = env.occurred_at;
        entity.last_sequence = sequence;
    }
}

struct PaymentCreated<'a> {
    wallet_id: Uuid,
    service_id: &'a str,
    amount: Money,
    at: OffsetDateTime,
}

struct ApplicationCreated<'a> {
    partner_id: Option<&'a str>,
    requested: Money,
    term_days: i32,
    at: OffsetDateTime,
}

struct LoanCreated {
    application_id: Uuid,
    principal: Money,
    at: OffsetDateTime,
}

/// A batch turned into per-table rows, duplicates collapsed.
#[derive(Default)]
struct Rows<'a> {
    seen: HashSet<Uuid>,
    events: EventColumns<'a>,
    clients: HashMap<Uuid, (OffsetDateTime, OffsetDateTime)>,
    partners: HashMap<&'a str, OffsetDateTime>,
    services: HashMap<&'a str, OffsetDateTime>,
    operations: OperationColumns,
    movements: Vec<Movement>,
    payments: HashMap<Uuid, Entity<PaymentCreated<'a>>>,
    applications: HashMap<Uuid, Entity<ApplicationCreated<'a>>>,
    loans: HashMap<Uuid, Entity<LoanCreated>>,
}

fn first_seen<'a>(map: &mut HashMap<&'a str, OffsetDateTime>, key: &'a str, at: OffsetDateTime) {
    map.entry(key)
        .and_modify(|t| *t = (*t).min(at))
        .or_insert(at);
}

impl<'a> Rows<'a> {
    fn collect(events: &'a [(Envelope, Event)]) -> Rows<'a> {
        let mut rows = Rows::default();
        for (env, event) in events {
            if rows.seen.insert(env.event_id) {
                rows.add(env, event);
            }
        }
        rows
    }

    fn add(&mut self, env: &'a Envelope, event: &'a Event) {
        let e = &mut self.events;
        e.event_id.push(env.event_id);
        e.client_id.push(env.client_id.0);
        e.aggregate_type.push(env.aggregate_type.as_str());
        e.aggregate_id.push(env.aggregate_id);
        e.aggregate_version.push(int(env.aggregate_version));
        e.event_type.push(&env.event_type);
        e.partition
            .push(i32::try_from(env.partition).unwrap_or(i32::MAX));
        e.sequence.push(int(env.sequence));
        e.occurred_at.push(env.occurred_at);
        e.actor_kind.push(&env.actor.kind);
        e.actor_id.push(&env.actor.id);
        e.command_id.push(&env.command_id);
        e.correlation_id.push(&env.correlation_id);
        self.clients
            .entry(env.client_id.0)
            .and_modify(|(first, last)| {
                *first = (*first).min(env.occurred_at);
                *last = (*last).max(env.occurred_at);
            })
            .or_insert((env.occurred_at, env.occurred_at));
        if env.actor.kind == "partner" {
            first_seen(&mut self.partners, &env.actor.id, env.occurred_at);
        }
        match event {
            Event::Wallet(e) => self.wallet(env, e),
            Event::Payment(e) => self.payment(env, e),
            Event::Application(e) => self.application(env, e),
            Event::Loan(e) => self.loan(env, e),
            // Registry events carry sealed personal data only: nothing for the analysts.
            Event::Client(_) => {}
            // Merchant orders reach the data platform through the payments that pay them.
            Event::MerchantOrder(_) => {}
        }
    }

    fn wallet(&mut self, env: &Envelope, event: &wallet::Event) {
        use wallet::Event as W;
        let zero = Decimal::ZERO;
        let mut movement = Movement {
            event_id: env.event_id,
            wallet_id: env.aggregate_id,
            client_id: env.client_id.0,
            day: utc_day(env.occurred_at),
            currency: None,
            balance: zero,
            held: zero,
            credit: zero,
            debit: zero,
            operation: true,
            version: int(env.aggregate_version),
        };
        // A money movement: its kind, amount and reference, and the sign the amount takes on
        // the balance, the held amount, the credit turnover and the debit turnover.
        let (kind, amount, reference, deltas): (_, &Money, _, [i8; 4]) = match event {
            W::WalletOpened { currency, .. } => {
                movement.currency = Some(currency.code());
                movement.operation = false;
                self.movements.push(movement);
                return;
            }
            W::WalletClosed { .. } => {
                movement.operation = false;
                self.movements.push(movement);
                return;
            }
            W::WalletToppedUp {
                operation_id,
                amount,
                ..
            } => ("top_up", amount, *operation_id, [1, 0, 1, 0]),
            W::FundsHeld { payment_id, amount } => ("hold", amount, *payment_id, [0, 1, 0, 0]),
            W::HoldCaptured { payment_id, amount } => {
                ("capture", amount, *payment_id, [-1, -1, 0, 1])
            }
            W::HoldReleased { payment_id, amount } => {
                ("release", amount, *payment_id, [0, -1, 0, 0])
            }
            W::TransferSent {
                transfer_id,
                amount,
                ..
            } => ("transfer_out", amount, *transfer_id, [-1, 0, 0, 1]),
            W::TransferReceived {
                transfer_id,
                amount,
                ..
            } => ("transfer_in", amount, *transfer_id, [1, 0, 1, 0]),
            W::TransferDebited {
                payment_id, amount, ..
            } => ("transfer_out", amount, *payment_id, [-1, -1, 0, 1]),
            W::TransferCredited {
                transfer_id,
                amount,
                ..
            } => ("transfer_in", amount, *transfer_id, [1, 0, 1, 0]),
            W::PaymentRefunded {
                payment_id, amount, ..
            }
            | W::TransferRefunded {
                payment_id, amount, ..
            } => ("refund", amount, *payment_id, [1, 0, 1, 0]),
            W::LoanRepaymentDebited {
                repayment_id,
                amount,
                ..
            } => ("loan_repayment", amount, *repayment_id, [-1, 0, 0, 1]),
        };
        let signed = |sign: i8| match sign {
            1 => amount.amount,
            -1 => -amount.amount,
            _ => Decimal::ZERO,
        };
        movement.currency = Some(amount.currency.code());
        movement.balance = signed(deltas[0]);
        movement.held = signed(deltas[1]);
        movement.credit = signed(deltas[2]);
        movement.debit = signed(deltas[3]);
        self.movements.push(movement);
        let o = &mut self.operations;
        o.event_id.push(env.event_id);
        o.client_id.push(env.client_id.0);
        o.wallet_id.push(env.aggregate_id);
        o.kind.push(kind);
        o.amount.push(amount.amount);
        o.currency.push(amount.currency.code());
        o.reference_id.push(Some(reference));
        o.occurred_at.push(env.occurred_at);
    }

    fn payment(&mut self, env: &'a Envelope, event: &'a payment::Event) {
        use payment::Event as P;
        let status = match event {
            P::PaymentInitiated {
                wallet_id,
                amount,
                service_id,
                ..
            } => {
                first_seen(&mut self.services, service_id, env.occurred_at);
                let created = PaymentCreated {
                    wallet_id: *wallet_id,
                    service_id,
                    amount: *amount,
                    at: env.occurred_at,
                };
                collapse(
                    &mut self.payments,
                    env,
                    Some(created),
                    Some("fraud_control"),
                );
                return;
            }
            // A cancellation request does not change the payment's status (6); the refund
            // shows as the wallet's movement.
            P::CancellationRequested { .. }
            | P::CancellationRejected { .. }
            | P::CancellationSentToProcessing { .. }
            | P::CancellationSucceeded { .. }
            | P::CancellationFailed { .. } => return,
            P::PaymentConfirmationRequested { .. } => "awaiting_confirmation",
            P::PaymentConfirmed => "fraud_control",
            P::PaymentLocked => "locked",
            P::PaymentBalanceChecked => "balance_checked",
            // A card's authorisation and its settlement happen within statuses 2, 3, 5, 7:
            // the status events around them carry the change.
            P::CardAuthorisationRequested { .. }
            | P::CardAuthorised { .. }
            | P::CardAuthorisationCaptured
            | P::CardAuthorisationReleased => return,
            P::PaymentReserved { .. } => "reserved",
            P::PaymentExecutionStarted => "executing",
            P::PaymentExecuted { .. } => "post_processing_success",
            P::PaymentSucceeded => "succeeded",
            P::PaymentExecutionFailed { .. } => "post_processing_failure",
            P::PaymentFailed { .. } => "failed",
            P::PaymentCancelled { .. } => "cancelled",
        };
        collapse(&mut self.payments, env, None, Some(status));
    }

    fn application(&mut self, env: &'a Envelope, event: &'a application::Event) {
        use application::Event as A;
        let status = match event {
            A::ApplicationCreated {
                requested,
                term,
                partner_id,
                ..
            } => {
                if let Some(p) = partner_id {
                    first_seen(&mut self.partners, p, env.occurred_at);
                }
                let created = ApplicationCreated {
                    partner_id: partner_id.as_deref(),
                    requested: *requested,
                    term_days: i32::try_from(*term).unwrap_or(i32::MAX),
                    at: env.occurred_at,
                };
                collapse(&mut self.applications, env, Some(created), Some("draft"));
                return;
            }
            A::GoodsHandedOver => return,
            other => application_status(other),
        };
        collapse(&mut self.applications, env, None, Some(status));
    }

    fn loan(&mut self, env: &Envelope, event: &loan::Event) {
        use loan::Event as L;
        match event {
            L::LoanIssued {
                application_id,
                principal,
                ..
            } => {
                let created = LoanCreated {
                    application_id: *application_id,
                    principal: *principal,
                    at: env.occurred_at,
                };
                collapse(&mut self.loans, env, Some(created), Some("active"));
            }
            L::LoanBecameOverdue => collapse(&mut self.loans, env, None, Some("overdue")),
            L::LoanRepaid => collapse(&mut self.loans, env, None, Some("repaid")),
            L::LoanClosed { .. } => collapse(&mut self.loans, env, None, Some("closed")),
            L::LoanWrittenOff { .. } => {
                collapse(&mut self.loans, env, None, Some("written_off"));
            }
            // The status stays as it was (an overdue loan stays overdue after a part-payment).
            L::RepaymentAccepted { .. }
            | L::LoanProlonged { .. }
            | L::InterestAccrued { .. }
            | L::RepaymentAllocated { .. }
            | L::TermExtended { .. }
            | L::AccrualStopped { .. }
            | L::AccrualResumed { .. }
            | L::CardRepaymentRequested { .. }
            | L::CardRepaymentDeclined { .. } => {
                collapse(&mut self.loans, env, None, None);
            }
        }
    }

    async fn write(&self, tx: &mut PgConnection) -> Result<(), Error> {
        let e = &self.events;
        let new: HashSet<Uuid> = sqlx::query_scalar(
            "INSERT INTO dp.fact_events (event_id, client_id, aggregate_type, aggregate_id, aggregate_version, event_type, partition, sequence, occurred_at, actor_kind, actor_id, command_id, correlation_id) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::int8[], $6::text[], $7::int4[], $8::int8[], $9::timestamptz[], $10::text[], $11::text[], $12::text[], $13::text[]) \
             ON CONFLICT (event_id) DO NOTHING RETURNING event_id",
        )
        .bind(&e.event_id)
        .bind(&e.client_id)
        .bind(&e.aggregate_type)
        .bind(&e.aggregate_id)
        .bind(&e.aggregate_version)
        .bind(&e.event_type)
        .bind(&e.partition)
        .bind(&e.sequence)
        .bind(&e.occurred_at)
        .bind(&e.actor_kind)
        .bind(&e.actor_id)
        .bind(&e.command_id)
        .bind(&e.correlation_id)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        self.write_dimensions(tx).await?;
        self.write_wallets(tx, &new).await?;
        self.write_payments(tx).await?;
        self.write_applications(tx).await?;
        self.write_loans(tx).await
    }

    async fn write_dimensions(&self, tx: &mut PgConnection) -> Result<(), Error> {
        let (mut ids, mut firsts, mut lasts) = (Vec::new(), Vec::new(), Vec::new());
        for (id, (first, last)) in &self.clients {
            ids.push(*id);
            firsts.push(*first);
            lasts.push(*last);
        }
        sqlx::query(
            "INSERT INTO dp.dim_clients AS t (client_id, first_seen_at, last_seen_at) \
             SELECT * FROM UNNEST($1::uuid[], $2::timestamptz[], $3::timestamptz[]) \
             ON CONFLICT (client_id) DO UPDATE SET first_seen_at = LEAST(t.first_seen_at, EXCLUDED.first_seen_at), \
             last_seen_at = GREATEST(t.last_seen_at, EXCLUDED.last_seen_at) \
             WHERE EXCLUDED.first_seen_at < t.first_seen_at OR EXCLUDED.last_seen_at > t.last_seen_at",
        )
        .bind(&ids)
        .bind(&firsts)
        .bind(&lasts)
        .execute(&mut *tx)
        .await?;
        for (table, key, values) in [
            ("dp.dim_partners", "partner_id", &self.partners),
            ("dp.dim_services", "service_id", &self.services),
        ] {
            if values.is_empty() {
                continue;
            }
            let (keys, firsts): (Vec<&str>, Vec<OffsetDateTime>) =
                values.iter().map(|(k, t)| (*k, *t)).unzip();
            sqlx::query(&format!(
                "INSERT INTO {table} AS t ({key}, first_seen_at) SELECT * FROM UNNEST($1::text[], $2::timestamptz[]) \
                 ON CONFLICT ({key}) DO UPDATE SET first_seen_at = EXCLUDED.first_seen_at \
                 WHERE EXCLUDED.first_seen_at < t.first_seen_at"
            ))
            .bind(&keys)
            .bind(&firsts)
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Wallet operations, then the daily balances from the wallet events new to `dp`.
    async fn write_wallets(&self, tx: &mut PgConnection, new: &HashSet<Uuid>) -> Result<(), Error> {
        let o = &self.operations;
        if !o.event_id.is_empty() {
            sqlx::query(
                "INSERT INTO dp.fact_wallet_operations (event_id, client_id, wallet_id, kind, amount, currency, reference_id, occurred_at) \
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::numeric[], $6::text[], $7::uuid[], $8::timestamptz[]) \
                 ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(&o.event_id)
            .bind(&o.client_id)
            .bind(&o.wallet_id)
            .bind(&o.kind)
            .bind(&o.amount)
            .bind(&o.currency)
            .bind(&o.reference_id)
            .bind(&o.occurred_at)
            .execute(&mut *tx)
            .await?;
        }
        let mut days: BTreeMap<(Uuid, Date), DayDelta> = BTreeMap::new();
        for m in self.movements.iter().filter(|m| new.contains(&m.event_id)) {
            let d = days.entry((m.wallet_id, m.day)).or_default();
            d.client_id = m.client_id;
            d.currency = d.currency.or(m.currency);
            d.balance += m.balance;
            d.held += m.held;
            d.credit += m.credit;
            d.debit += m.debit;
            d.operations += i32::from(m.operation);
            d.events += 1;
            d.version = d.version.max(m.version);
        }
        if days.is_empty() {
            return Ok(());
        }
        let mut c = DayColumns::default();
        for ((wallet, day), d) in &days {
            c.wallet_id.push(*wallet);
            c.day.push(*day);
            c.client_id.push(d.client_id);
            c.currency.push(d.currency);
            c.balance.push(d.balance);
            c.held.push(d.held);
            c.credit.push(d.credit);
            c.debit.push(d.debit);
            c.operations.push(d.operations);
            c.events.push(d.events);
            c.version.push(d.version);
        }
        // A day new to dp starts from the closing figures of the wallet's latest earlier day.
        sqlx::query(
            "INSERT INTO dp.fact_daily_balances (wallet_id, day, client_id, currency, balance, held, credit_turnover, debit_turnover, operations, events_through, version_through) \
             SELECT d.wallet_id, d.day, d.client_id, coalesce(d.currency, p.currency), coalesce(p.balance, 0), coalesce(p.held, 0), 0, 0, 0, \
                    coalesce(p.events_through, 0), coalesce(p.version_through, 0) \
             FROM UNNEST($1::uuid[], $2::date[], $3::uuid[], $4::text[]) AS d(wallet_id, day, client_id, currency) \
             LEFT JOIN LATERAL (SELECT b.currency, b.balance, b.held, b.events_through, b.version_through FROM dp.fact_daily_balances b \
                                WHERE b.wallet_id = d.wallet_id AND b.day < d.day ORDER BY b.day DESC LIMIT 1) p ON true \
             ON CONFLICT (wallet_id, day) DO NOTHING",
        )
        .bind(&c.wallet_id)
        .bind(&c.day)
        .bind(&c.client_id)
        .bind(&c.currency)
        .execute(&mut *tx)
        .await?;
        // Each day's movements count on that day and on every later day of the wallet.
        sqlx::query(
            "UPDATE dp.fact_daily_balances f SET balance = f.balance + a.balance, held = f.held + a.held, \
                    credit_turnover = f.credit_turnover + a.credit, debit_turnover = f.debit_turnover + a.debit, \
                    operations = f.operations + a.operations, events_through = f.events_through + a.events, \
                    version_through = GREATEST(f.version_through, a.version), currency = coalesce(f.currency, a.currency) \
             FROM (SELECT b.wallet_id, b.day, sum(d.balance) AS balance, sum(d.held) AS held, \
                          coalesce(sum(d.credit) FILTER (WHERE d.day = b.day), 0) AS credit, \
                          coalesce(sum(d.debit) FILTER (WHERE d.day = b.day), 0) AS debit, \
                          coalesce(sum(d.operations) FILTER (WHERE d.day = b.day), 0) AS operations, \
                          sum(d.events) AS events, max(d.version) AS version, max(d.currency) AS currency \
                   FROM dp.fact_daily_balances b \
                   JOIN UNNEST($1::uuid[], $2::date[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[], $8::int4[], $9::int8[], $10::int8[]) \
                        AS d(wallet_id, day, currency, balance, held, credit, debit, operations, events, version) \
                     ON d.wallet_id = b.wallet_id AND d.day <= b.day \
                   GROUP BY b.wallet_id, b.day) a \
             WHERE f.wallet_id = a.wallet_id AND f.day = a.day",
        )
        .bind(&c.wallet_id)
        .bind(&c.day)
        .bind(&c.currency)
        .bind(&c.balance)
        .bind(&c.held)
        .bind(&c.credit)
        .bind(&c.debit)
        .bind(&c.operations)
        .bind(&c.events)
        .bind(&c.version)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn write_payments(&self, tx: &mut PgConnection) -> Result<(), Error> {
        if self.payments.is_empty() {
            return Ok(());
        }
        let mut c = EntityColumns::default();
        let (mut wallet, mut service) = (Vec::new(), Vec::new());
        for (id, p) in &self.payments {
            let created = p.created.as_ref();
            c.push(*id, p, created.map(|x| (x.amount, x.at)));
            wallet.push(created.map(|x| x.wallet_id));
            service.push(created.map(|x| x.service_id));
        }
        sqlx::query(
            "INSERT INTO dp.fact_payments AS t (payment_id, client_id, amount, currency, initiated_at, status, last_event_at, last_sequence, wallet_id, service_id) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[], $4::text[], $5::timestamptz[], $6::text[], $7::timestamptz[], $8::int8[], $9::uuid[], $10::text[]) \
             ON CONFLICT (payment_id) DO UPDATE SET \
               wallet_id = coalesce(EXCLUDED.wallet_id, t.wallet_id), service_id = coalesce(EXCLUDED.service_id, t.service_id), \
               amount = coalesce(EXCLUDED.amount, t.amount), currency = coalesce(EXCLUDED.currency, t.currency), \
               initiated_at = coalesce(EXCLUDED.initiated_at, t.initiated_at), \
               status = CASE WHEN t.last_sequence IS NULL OR EXCLUDED.last_sequence >= t.last_sequence THEN EXCLUDED.status ELSE t.status END, \
               last_event_at = CASE WHEN t.last_sequence IS NULL OR EXCLUDED.last_sequence >= t.last_sequence THEN EXCLUDED.last_event_at ELSE t.last_event_at END, \
               last_sequence = GREATEST(t.last_sequence, EXCLUDED.last_sequence) \
             WHERE t.last_sequence IS DISTINCT FROM EXCLUDED.last_sequence OR (t.initiated_at IS NULL AND EXCLUDED.initiated_at IS NOT NULL)",
        )
        .bind(&c.id)
        .bind(&c.client_id)
        .bind(&c.amount)
        .bind(&c.currency)
        .bind(&c.created_at)
        .bind(&c.status)
        .bind(&c.last_event_at)
        .bind(&c.last_sequence)
        .bind(&wallet)
        .bind(&service)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn write_applications(&self, tx: &mut PgConnection) -> Result<(), Error> {
        if self.applications.is_empty() {
            return Ok(());
        }
        let mut c = EntityColumns::default();
        let (mut partner, mut term) = (Vec::new(), Vec::new());
        for (id, a) in &self.applications {
            let created = a.created.as_ref();
            c.push(*id, a, created.map(|x| (x.requested, x.at)));
            partner.push(created.and_then(|x| x.partner_id));
            term.push(created.map(|x| x.term_days));
        }
        sqlx::query(
            "INSERT INTO dp.fact_applications AS t (application_id, client_id, requested, currency, submitted_at, status, last_event_at, last_sequence, partner_id, term_days) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[], $4::text[], $5::timestamptz[], $6::text[], $7::timestamptz[], $8::int8[], $9::text[], $10::int4[]) \
             ON CONFLICT (application_id) DO UPDATE SET \
               partner_id = CASE WHEN EXCLUDED.submitted_at IS NULL THEN t.partner_id ELSE EXCLUDED.partner_id END, \
               requested = coalesce(EXCLUDED.requested, t.requested), currency = coalesce(EXCLUDED.currency, t.currency), \
               term_days = coalesce(EXCLUDED.term_days, t.term_days), submitted_at = coalesce(EXCLUDED.submitted_at, t.submitted_at), \
               status = CASE WHEN t.last_sequence IS NULL OR EXCLUDED.last_sequence >= t.last_sequence THEN EXCLUDED.status ELSE t.status END, \
               last_event_at = CASE WHEN t.last_sequence IS NULL OR EXCLUDED.last_sequence >= t.last_sequence THEN EXCLUDED.last_event_at ELSE t.last_event_at END, \
               last_sequence = GREATEST(t.last_sequence, EXCLUDED.last_sequence) \
             WHERE t.last_sequence IS DISTINCT FROM EXCLUDED.last_sequence OR (t.submitted_at IS NULL AND EXCLUDED.submitted_at IS NOT NULL)",
        )
        .bind(&c.id)
        .bind(&c.client_id)
        .bind(&c.amount)
        .bind(&c.currency)
        .bind(&c.created_at)
        .bind(&c.status)
        .bind(&c.last_event_at)
        .bind(&c.last_sequence)
        .bind(&partner)
        .bind(&term)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }

    async fn write_loans(&self, tx: &mut PgConnection) -> Result<(), Error> {
        if self.loans.is_empty() {
            return Ok(());
        }
        let mut c = EntityColumns::default();
        let mut application = Vec::new();
        for (id, l) in &self.loans {
            let created = l.created.as_ref();
            c.push(*id, l, created.map(|x| (x.principal, x.at)));
            application.push(created.map(|x| x.application_id));
        }
        // The status moves with `status_sequence` (a batch of only repayments or prolongations
        // brings none and leaves it as it was); `last_sequence` / `last_event_at` with any event.
        sqlx::query(
            "INSERT INTO dp.fact_loans AS t (loan_id, client_id, principal, currency, issued_at, status, last_event_at, last_sequence, status_sequence, application_id) \
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::numeric[], $4::text[], $5::timestamptz[], $6::text[], $7::timestamptz[], $8::int8[], $9::int8[], $10::uuid[]) \
             ON CONFLICT (loan_id) DO UPDATE SET \
               application_id = coalesce(EXCLUDED.application_id, t.application_id), \
               principal = coalesce(EXCLUDED.principal, t.principal), currency = coalesce(EXCLUDED.currency, t.currency), \
               issued_at = coalesce(EXCLUDED.issued_at, t.issued_at), \
               status = CASE WHEN EXCLUDED.status_sequence IS NOT NULL AND (t.status_sequence IS NULL OR EXCLUDED.status_sequence >= t.status_sequence) \
                             THEN EXCLUDED.status ELSE t.status END, \
               status_sequence = GREATEST(t.status_sequence, EXCLUDED.status_sequence), \
               last_event_at = CASE WHEN t.last_sequence IS NULL OR EXCLUDED.last_sequence >= t.last_sequence THEN EXCLUDED.last_event_at ELSE t.last_event_at END, \
               last_sequence = GREATEST(t.last_sequence, EXCLUDED.last_sequence) \
             WHERE t.last_sequence IS DISTINCT FROM EXCLUDED.last_sequence \
                OR (EXCLUDED.status_sequence IS NOT NULL AND t.status_sequence IS DISTINCT FROM EXCLUDED.status_sequence) \
                OR (t.issued_at IS NULL AND EXCLUDED.issued_at IS NOT NULL)",
        )
        .bind(&c.id)
        .bind(&c.client_id)
        .bind(&c.amount)
        .bind(&c.currency)
        .bind(&c.created_at)
        .bind(&c.status)
        .bind(&c.last_event_at)
        .bind(&c.last_sequence)
        .bind(&c.status_sequence)
        .bind(&application)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

#[derive(Default)]
struct DayColumns {
    wallet_id: Vec<Uuid>,
    day: Vec<Date>,
    client_id: Vec<Uuid>,
    currency: Vec<Option<&'static str>>,
    balance: Vec<Decimal>,
    held: Vec<Decimal>,
    credit: Vec<Decimal>,
    debit: Vec<Decimal>,
    operations: Vec<i32>,
    events: Vec<i64>,
    version: Vec<i64>,
}

/// The columns every entity fact has: key, client, the creating event's amount and time,
/// status and positions.
#[derive(Default)]
struct EntityColumns {
    id: Vec<Uuid>,
    client_id: Vec<Uuid>,
    amount: Vec<Option<Decimal>>,
    currency: Vec<Option<&'static str>>,
    created_at: Vec<Option<OffsetDateTime>>,
    /// `None` only for a loan whose batch holds no status-changing event: every payment and
    /// application event sets a status, so for those `status_sequence` is `last_sequence`.
    status: Vec<Option<&'static str>>,
    status_sequence: Vec<Option<i64>>,
    last_event_at: Vec<OffsetDateTime>,
    last_sequence: Vec<i64>,
}

impl EntityColumns {
    fn push<F>(&mut self, id: Uuid, e: &Entity<F>, created: Option<(Money, OffsetDateTime)>) {
        self.id.push(id);
        self.client_id.push(e.client_id);
        self.amount.push(created.map(|(m, _)| m.amount));
        self.currency.push(created.map(|(m, _)| m.currency.code()));
        self.created_at.push(created.map(|(_, at)| at));
        self.status.push(e.status.map(|(s, _)| s));
        self.status_sequence.push(e.status.map(|(_, at)| at));
        self.last_event_at.push(e.last_event_at);
        self.last_sequence.push(e.last_sequence);
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet

/// The fact tables `etr replay --parquet DIR` writes, one file each: `DIR/<table>.parquet`.
pub const FACT_TABLES: [&str; 6] = [
    "fact_events",
    "fact_wallet_operations",
    "fact_payments",
    "fact_applications",
    "fact_loans",
    "fact_daily_balances",
];

/// Rows per Parquet row group (and per buffer held in memory while writing).
const ROW_GROUP: usize = 65_536;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("postgres: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("dp.{table}.{column}: {reason}")]
    Value {
        table: String,
        column: String,
        reason: String,
    },
}

/// One written file.
#[derive(Debug, Clone)]
pub struct ExportedFile {
    pub table: &'static str,
    pub path: PathBuf,
    pub rows: u64,
}

/// Writes every fact table of `dp` to `dir` as Parquet, all read in one snapshot so the files
/// agree with each other and with the tables at that moment.
///
/// Types: UUID → FIXED_LEN_BYTE_ARRAY(16) UUID; TEXT → BYTE_ARRAY STRING; NUMERIC(p,s) →
/// FIXED_LEN_BYTE_ARRAY DECIMAL(p,s) (exact; the unscaled value in big-endian two's
/// complement); TIMESTAMPTZ → INT64 TIMESTAMP(MICROS, UTC) (Postgres' own precision); DATE →
/// INT32 DATE; INTEGER / BIGINT / BOOLEAN as such. A NUMERIC without a declared precision, or
/// with more digits than an exact decimal here holds (28), would be written as its decimal
/// text, since Parquet's DECIMAL needs a fixed precision; every money column in `dp` is
/// NUMERIC(20,2). Nullable columns are OPTIONAL. Rows are ordered by the table's key.
pub async fn write_parquet(pool: &PgPool, dir: &Path) -> Result<Vec<ExportedFile>, ExportError> {
    std::fs::create_dir_all(dir).map_err(|source| ExportError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *tx)
        .await?;
    let mut written = Vec::new();
    for table in FACT_TABLES {
        written.push(export_table(&mut tx, table, dir).await?);
    }
    tx.commit().await?;
    Ok(written)
}

#[derive(Clone, Copy)]
enum Kind {
    Uuid,
    Text,
    Int32,
    Int64,
    Bool,
    Date,
    Timestamp,
    Decimal {
        precision: u32,
        scale: u32,
        len: usize,
    },
}

struct Column {
    name: String,
    kind: Kind,
    nullable: bool,
}

/// Bytes of a two's-complement integer that holds every unscaled value of `precision` digits.
fn decimal_len(precision: u32) -> usize {
    (1..=16usize)
        .find(|n| {
            let bits = u32::try_from(n * 8 - 1).unwrap_or(127);
            1u128.checked_shl(bits).unwrap_or(u128::MAX) > 10u128.pow(precision)
        })
        .unwrap_or(16)
}

/// A column as `information_schema` describes it: name, data type, nullable, numeric
/// precision and scale.
type ColumnInfo = (String, String, bool, Option<i32>, Option<i32>);

async fn columns(tx: &mut PgConnection, table: &str) -> Result<Vec<Column>, ExportError> {
    let rows: Vec<ColumnInfo> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, is_nullable::text = 'YES', numeric_precision::int4, numeric_scale::int4 \
         FROM information_schema.columns WHERE table_schema = 'dp' AND table_name = $1 ORDER BY ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(name, data_type, nullable, precision, scale)| {
            let kind = match data_type.as_str() {
                "uuid" => Kind::Uuid,
                "integer" => Kind::Int32,
                "bigint" => Kind::Int64,
                "boolean" => Kind::Bool,
                "date" => Kind::Date,
                "timestamp with time zone" => Kind::Timestamp,
                "numeric" => match (
                    precision.and_then(|p| u32::try_from(p).ok()),
                    scale.and_then(|s| u32::try_from(s).ok()),
                ) {
                    (Some(precision), Some(scale)) if precision <= 28 => Kind::Decimal {
                        precision,
                        scale,
                        len: decimal_len(precision),
                    },
                    _ => Kind::Text,
                },
                _ => Kind::Text,
            };
            Column {
                name,
                kind,
                nullable,
            }
        })
        .collect())
}

fn schema(table: &str, columns: &[Column]) -> Result<TypePtr, ExportError> {
    let mut fields = Vec::with_capacity(columns.len());
    for c in columns {
        let b = |physical| SchemaType::primitive_type_builder(&c.name, physical);
        let builder = match c.kind {
            Kind::Uuid => b(PhysicalType::FIXED_LEN_BYTE_ARRAY)
                .with_length(16)
                .with_logical_type(Some(LogicalType::Uuid)),
            Kind::Text => b(PhysicalType::BYTE_ARRAY).with_logical_type(Some(LogicalType::String)),
            Kind::Int32 => b(PhysicalType::INT32),
            Kind::Int64 => b(PhysicalType::INT64),
            Kind::Bool => b(PhysicalType::BOOLEAN),
            Kind::Date => b(PhysicalType::INT32).with_logical_type(Some(LogicalType::Date)),
            Kind::Timestamp => b(PhysicalType::INT64)
                .with_logical_type(Some(LogicalType::timestamp(true, TimeUnit::MICROS))),
            Kind::Decimal {
                precision,
                scale,
                len,
            } => {
                let (p, s) = (
                    i32::try_from(precision).unwrap_or(38),
                    i32::try_from(scale).unwrap_or(0),
                );
                b(PhysicalType::FIXED_LEN_BYTE_ARRAY)
                    .with_length(i32::try_from(len).unwrap_or(16))
                    .with_precision(p)
                    .with_scale(s)
                    .with_logical_type(Some(LogicalType::decimal(s, p)))
            }
        };
        let repetition = if c.nullable {
            Repetition::OPTIONAL
        } else {
            Repetition::REQUIRED
        };
        fields.push(Arc::new(builder.with_repetition(repetition).build()?));
    }
    Ok(Arc::new(
        SchemaType::group_type_builder(table)
            .with_fields(fields)
            .build()?,
    ))
}

/// Column values buffered for one row group: the present values and a definition level
/// (1 present, 0 null) per row.
enum Values {
    Bool(Vec<bool>),
    Int32(Vec<i32>),
    Int64(Vec<i64>),
    Bytes(Vec<ByteArray>),
    Fixed(Vec<FixedLenByteArray>),
}

struct Buffer {
    values: Values,
    levels: Vec<i16>,
}

impl Buffer {
    fn new(kind: Kind) -> Buffer {
        let values = match kind {
            Kind::Bool => Values::Bool(Vec::new()),
            Kind::Int32 | Kind::Date => Values::Int32(Vec::new()),
            Kind::Int64 | Kind::Timestamp => Values::Int64(Vec::new()),
            Kind::Text => Values::Bytes(Vec::new()),
            Kind::Uuid | Kind::Decimal { .. } => Values::Fixed(Vec::new()),
        };
        Buffer {
            values,
            levels: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.levels.clear();
        match &mut self.values {
            Values::Bool(v) => v.clear(),
            Values::Int32(v) => v.clear(),
            Values::Int64(v) => v.clear(),
            Values::Bytes(v) => v.clear(),
            Values::Fixed(v) => v.clear(),
        }
    }

    /// Appends column `i` of `row`; `Err` carries the reason a value cannot be written.
    fn push(&mut self, column: &Column, row: &PgRow, i: usize) -> Result<(), String> {
        let text = |e: sqlx::Error| e.to_string();
        let present = match (column.kind, &mut self.values) {
            (Kind::Uuid, Values::Fixed(v)) => row
                .try_get::<Option<Uuid>, _>(i)
                .map_err(text)?
                .map(|u| v.push(FixedLenByteArray::from(u.as_bytes().to_vec())))
                .is_some(),
            (Kind::Text, Values::Bytes(v)) => row
                .try_get::<Option<String>, _>(i)
                .map_err(text)?
                .map(|s| v.push(ByteArray::from(s.into_bytes())))
                .is_some(),
            (Kind::Int32, Values::Int32(v)) => row
                .try_get::<Option<i32>, _>(i)
                .map_err(text)?
                .map(|x| v.push(x))
                .is_some(),
            (Kind::Int64, Values::Int64(v)) => row
                .try_get::<Option<i64>, _>(i)
                .map_err(text)?
                .map(|x| v.push(x))
                .is_some(),
            (Kind::Bool, Values::Bool(v)) => row
                .try_get::<Option<bool>, _>(i)
                .map_err(text)?
                .map(|x| v.push(x))
                .is_some(),
            (Kind::Date, Values::Int32(v)) => {
                match row.try_get::<Option<Date>, _>(i).map_err(text)? {
                    Some(d) => {
                        // Days since 1970-01-01 (Julian day 2440588).
                        let days = i32::try_from(i64::from(d.to_julian_day()) - 2_440_588)
                            .map_err(|e| e.to_string())?;
                        v.push(days);
                        true
                    }
                    None => false,
                }
            }
            (Kind::Timestamp, Values::Int64(v)) => {
                match row.try_get::<Option<OffsetDateTime>, _>(i).map_err(text)? {
                    Some(t) => {
                        let micros = i64::try_from(t.unix_timestamp_nanos() / 1_000)
                            .map_err(|e| e.to_string())?;
                        v.push(micros);
                        true
                    }
                    None => false,
                }
            }
            (
                Kind::Decimal {
                    precision,
                    scale,
                    len,
                },
                Values::Fixed(v),
            ) => match row.try_get::<Option<Decimal>, _>(i).map_err(text)? {
                Some(d) => {
                    v.push(FixedLenByteArray::from(decimal_bytes(
                        d, precision, scale, len,
                    )?));
                    true
                }
                None => false,
            },
            _ => return Err("buffer of another type".into()),
        };
        if !present && !column.nullable {
            return Err("NULL in a NOT NULL column".into());
        }
        self.levels.push(i16::from(present));
        Ok(())
    }
}

/// The unscaled value of `d` at `scale`, as `len` big-endian two's-complement bytes; an error
/// if that would round or exceed `precision` digits.
fn decimal_bytes(d: Decimal, precision: u32, scale: u32, len: usize) -> Result<Vec<u8>, String> {
    let mut scaled = d;
    scaled.rescale(scale);
    if scaled != d || scaled.scale() != scale {
        return Err(format!("{d} does not fit scale {scale}"));
    }
    let unscaled = scaled.mantissa();
    if unscaled.unsigned_abs() >= 10u128.pow(precision) {
        return Err(format!("{d} exceeds precision {precision}"));
    }
    let bytes = unscaled.to_be_bytes();
    Ok(bytes[bytes.len().saturating_sub(len)..].to_vec())
}

async fn export_table(
    tx: &mut PgConnection,
    table: &'static str,
    dir: &Path,
) -> Result<ExportedFile, ExportError> {
    let columns = columns(tx, table).await?;
    let select: Vec<String> = columns
        .iter()
        .map(|c| match c.kind {
            Kind::Text => format!("\"{}\"::text", c.name),
            _ => format!("\"{}\"", c.name),
        })
        .collect();
    // Every fact table's key is its first column, or its first two (daily balances).
    let sql = format!("SELECT {} FROM dp.{table} ORDER BY 1, 2", select.join(", "));
    let path = dir.join(format!("{table}.parquet"));
    let partial = dir.join(format!(".{table}.parquet.partial"));
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    let file = std::fs::File::create(&partial).map_err(io(&partial))?;
    let properties = Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .build(),
    );
    let mut writer = SerializedFileWriter::new(file, schema(table, &columns)?, properties)?;
    let mut buffers: Vec<Buffer> = columns.iter().map(|c| Buffer::new(c.kind)).collect();
    let (mut buffered, mut rows) = (0usize, 0u64);
    let mut stream = sqlx::query(&sql).fetch(&mut *tx);
    while let Some(row) = stream.try_next().await? {
        for (i, (column, buffer)) in columns.iter().zip(&mut buffers).enumerate() {
            buffer
                .push(column, &row, i)
                .map_err(|reason| ExportError::Value {
                    table: table.to_owned(),
                    column: column.name.clone(),
                    reason,
                })?;
        }
        buffered += 1;
        rows += 1;
        if buffered == ROW_GROUP {
            write_row_group(&mut writer, &columns, &mut buffers)?;
            buffered = 0;
        }
    }
    drop(stream);
    if buffered > 0 {
        write_row_group(&mut writer, &columns, &mut buffers)?;
    }
    writer.close()?;
    std::fs::rename(&partial, &path).map_err(io(&path))?;
    Ok(ExportedFile { table, path, rows })
}

fn write_row_group(
    writer: &mut SerializedFileWriter<std::fs::File>,
    columns: &[Column],
    buffers: &mut [Buffer],
) -> Result<(), ExportError> {
    let mut group = writer.next_row_group()?;
    for (column, buffer) in columns.iter().zip(buffers.iter_mut()) {
        let Some(mut out) = group.next_column()? else {
            break;
        };
        let levels = column.nullable.then_some(&buffer.levels[..]);
        match (&buffer.values, out.untyped()) {
            (Values::Bool(v), ColumnWriter::BoolColumnWriter(w)) => {
                w.write_batch(v, levels, None)?
            }
            (Values::Int32(v), ColumnWriter::Int32ColumnWriter(w)) => {
                w.write_batch(v, levels, None)?
            }
            (Values::Int64(v), ColumnWriter::Int64ColumnWriter(w)) => {
                w.write_batch(v, levels, None)?
            }
            (Values::Bytes(v), ColumnWriter::ByteArrayColumnWriter(w)) => {
                w.write_batch(v, levels, None)?
            }
            (Values::Fixed(v), ColumnWriter::FixedLenByteArrayColumnWriter(w)) => {
                w.write_batch(v, levels, None)?
            }
            _ => {
                return Err(ExportError::Value {
                    table: String::new(),
                    column: column.name.clone(),
                    reason: "column writer of another type".into(),
                })
            }
        };
        out.close()?;
        buffer.clear();
    }
    group.close()?;
    Ok(())
}

/// The status an application event leaves the application in, as the data platform names it.
fn application_status(event: &application::Event) -> &'static str {
    use application::Event as A;
    match event {
        A::ApplicationCreated { .. } => "draft",
        A::ApplicationSubmitted { .. } => "submitted",
        A::ClientIdentified { .. } => "identified",
        A::LegalChecksPassed | A::ReviewResolved { .. } => "checked",
        A::IdentificationReferred { .. } | A::ApplicationReferred { .. } => "manual_review",
        A::IdentificationFailed { .. } | A::ApplicationDeclined { .. } => "declined",
        A::ApplicationApproved { .. } => "approved",
        A::OfferChosen { .. } => "offer_chosen",
        A::ContractGenerated { .. } => "contract_generated",
        A::ContractSigned { .. } | A::CardBindingFailed { .. } | A::GoodsHandedOver => "signed",
        A::CardBindingRequested { .. } => "card_binding",
        A::ApplicationCardBound { .. } => "card_bound",
        A::LoanDisbursed { .. } => "disbursed",
        A::DisbursementFailed { .. } => "failed",
        A::ApplicationCancelled { .. } => "cancelled",
        A::ApplicationExpired => "expired",
    }
}
