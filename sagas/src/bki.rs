//! Credit-history reporting to the bureaus (seed 000 §6.6.5–6.6.8): the day's report file per
//! bureau and its upload.
//!
//! - [`Reporter::start_day`] opens, per configured bureau, the upload of every record of
//!   `bki_records` up to the day not yet sent to that bureau (one upload per bureau and day,
//!   its id derived from both, so a repeated start is a no-op).
//! - [`Reporter::tick`] runs the due uploads through the pure process
//!   [`etr_domain::bki_upload::step`]: a `Send` assembles the file from the records as they
//!   are now, with the subject's title data opened from the client's sealed personal data
//!   (`infra::vault`; an erased client has none), in the versioned line format
//!   ([`etr_domain::credit_history::render`]); signs it (detached), seals it to the bureau's
//!   public key ([`ReportCrypto`]), stores the sealed file and the signature (object store,
//!   SHA-256 of each recorded in `bki_files`) and sends it ([`CreditBureau`]). The answer goes
//!   back into the process: a receipt accepts every record, a rejection accepts the others
//!   and resends the named ones corrected, no answer resends after a backoff.
//! - Every send, receipt, rejection and parking is appended to `bki_upload_events`; each
//!   record's standing per bureau (sent / accepted / rejected / parked, and whether its
//!   first send was after its deadline) is kept in `bki_record_uploads` — the report of what
//!   was sent when, per loan ([`loan_report`]).
//!
//! An upload's row is locked (`FOR UPDATE SKIP LOCKED`) while its step runs, the bureau's
//! call included, so two reporters never send the same attempt at once; a crash mid-call
//! rolls the step back and the file is sent again (a bureau identifies a file by its name).

use etr_domain::bki_upload::{self, Action, Answer, Input, Policy, State};
use etr_domain::credit_history::{self, Code, Obligation, Record, Subject};
use etr_domain::personal::Sealed;
use etr_domain::ports::{CreditBureau, ReportCrypto, ReportFile};
use etr_domain::ClientId;
use etr_infra::vault::Vault;
use etr_reports::schedule::ReportStore;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};
use std::sync::Arc;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use crate::Error;

/// Moscow time: the lender's business day.
pub use etr_domain::limits::MOSCOW;

pub struct Reporter {
    pub pool: PgPool,
    pub vault: Vault,
    pub crypto: Arc<dyn ReportCrypto>,
    pub store: ReportStore,
    pub bureau: Arc<dyn CreditBureau>,
    /// The bureaus reported to (each needs its public key in `crypto`).
    pub bureaus: Vec<String>,
    pub policy: Policy,
}

/// The upload of `bureau`'s file of `day`.
pub fn upload_id(bureau: &str, day: Date) -> Uuid {
    Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("etr/bki-upload/{bureau}/{day}").as_bytes(),
    )
}

fn bad_state(e: impl std::fmt::Display) -> Error {
    Error::CommandNotTaken(format!("an upload's state does not read: {e}"))
}

impl Reporter {
    /// Opens the day's upload for every bureau with records not yet sent to it; returns the
    /// uploads opened (none for a bureau with nothing to send or already opened today).
    ///
    /// Errors: Postgres.
    pub async fn start_day(&self, day: Date, now: OffsetDateTime) -> Result<Vec<Uuid>, Error> {
        let mut opened = Vec::new();
        for bureau in &self.bureaus {
            let mut tx = self.pool.begin().await?;
            let records: Vec<Uuid> = sqlx::query_scalar(
                "SELECT r.event_id FROM bki_records r \
                 WHERE r.event_day <= $1 AND NOT EXISTS \
                   (SELECT 1 FROM bki_record_uploads u WHERE u.event_id = r.event_id AND u.bureau = $2) \
                 ORDER BY r.event_day, r.partition, r.sequence",
            )
            .bind(day)
            .bind(bureau)
            .fetch_all(&mut *tx)
            .await?;
            if records.is_empty() {
                continue;
            }
            let id = upload_id(bureau, day);
            let (state, actions) = bki_upload::step(
                None,
                Input::Start {
                    now,
                    records: records.clone(),
                },
                &self.policy,
            );
            let inserted = sqlx::query(
                "INSERT INTO bki_uploads (upload_id, bureau, report_day, state, due_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(bureau)
            .bind(day)
            .bind(serde_json::to_value(&state)?)
            .bind(wake_of(&actions))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                continue;
            }
            // The records belong to this upload from now on: tomorrow's starts without them.
            sqlx::query(
                "INSERT INTO bki_record_uploads (event_id, bureau, upload_id, status, first_sent_at, late, updated_at) \
                 SELECT e, $2, $3, 'sent', $4, false, $4 FROM UNNEST($1::uuid[]) AS e ON CONFLICT DO NOTHING",
            )
            .bind(&records)
            .bind(bureau)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            opened.push(id);
        }
        Ok(opened)
    }

    /// Runs one step of every upload due at `now`; returns how many ran.
    ///
    /// Errors: Postgres, the object store, a state that does not read.
    pub async fn tick(&self, now: OffsetDateTime) -> Result<usize, Error> {
        let due: Vec<Uuid> = sqlx::query_scalar(
            "SELECT upload_id FROM bki_uploads WHERE due_at <= $1 ORDER BY due_at, upload_id",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut ran = 0;
        for id in due {
            if self.run_upload(id, now).await? {
                ran += 1;
            }
        }
        Ok(ran)
    }

    /// Ticks until no upload is due at the time of each tick (at most `rounds`): what a
    /// daily job or `etr bki upload` does after [`Reporter::start_day`].
    ///
    /// Errors: [`Reporter::tick`]'s.
    pub async fn drain(&self, rounds: usize) -> Result<(), Error> {
        for _ in 0..rounds {
            if self.tick(OffsetDateTime::now_utc()).await? == 0 {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn run_upload(&self, id: Uuid, now: OffsetDateTime) -> Result<bool, Error> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, Date, Option<serde_json::Value>)> = sqlx::query_as(
            "SELECT bureau, report_day, state FROM bki_uploads \
             WHERE upload_id = $1 AND due_at <= $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(id)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((bureau, day, state)) = row else {
            return Ok(false);
        };
        let mut state: Option<State> = state
            .map(serde_json::from_value)
            .transpose()
            .map_err(bad_state)?;
        let mut pending = vec![Input::Due { now }];
        let mut wake = None;
        while let Some(input) = pending.pop() {
            let (next, actions) = bki_upload::step(state, input, &self.policy);
            state = next;
            for action in actions {
                match action {
                    Action::WakeAt(at) => wake = at,
                    Action::Send { attempt, records } => {
                        let answer = self
                            .send(&mut tx, id, &bureau, day, attempt, &records, now)
                            .await?;
                        pending.push(match answer {
                            Ok(answer) => Input::Answered {
                                now,
                                attempt,
                                answer,
                            },
                            Err(reason) => {
                                tracing::warn!(%id, bureau, reason, "the bureau did not answer");
                                journal(
                                    &mut tx,
                                    id,
                                    "unanswered",
                                    attempt,
                                    None,
                                    None,
                                    &records,
                                    None,
                                    now,
                                )
                                .await?;
                                Input::Unanswered { now }
                            }
                        });
                    }
                    Action::RecordAccepted {
                        attempt,
                        receipt_id,
                        records,
                    } => {
                        journal(
                            &mut tx,
                            id,
                            "accepted",
                            attempt,
                            None,
                            receipt_id.as_deref(),
                            &records,
                            None,
                            now,
                        )
                        .await?;
                        standing(&mut tx, &bureau, &records, "accepted", now).await?;
                    }
                    Action::RecordRejected { attempt, errors } => {
                        let records: Vec<Uuid> = errors.iter().map(|e| e.event_id).collect();
                        let detail = serde_json::to_value(
                            errors
                                .iter()
                                .map(|e| (e.event_id, e.code.clone(), e.message.clone()))
                                .collect::<Vec<_>>(),
                        )?;
                        journal(
                            &mut tx,
                            id,
                            "rejected",
                            attempt,
                            None,
                            None,
                            &records,
                            Some(detail),
                            now,
                        )
                        .await?;
                        standing(&mut tx, &bureau, &records, "rejected", now).await?;
                    }
                    Action::Park { records } => {
                        journal(&mut tx, id, "parked", 0, None, None, &records, None, now).await?;
                        standing(&mut tx, &bureau, &records, "parked", now).await?;
                    }
                }
            }
        }
        sqlx::query(
            "UPDATE bki_uploads SET state = $2, due_at = $3, updated_at = $4 WHERE upload_id = $1",
        )
        .bind(id)
        .bind(serde_json::to_value(&state)?)
        .bind(wake)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Assembles, signs, seals, stores and sends the file of `attempt`; the bureau's answer
    /// (`Err` when it gave none).
    #[allow(clippy::too_many_arguments)]
    async fn send(
        &self,
        tx: &mut PgConnection,
        upload: Uuid,
        bureau: &str,
        day: Date,
        attempt: u32,
        records: &[Uuid],
        now: OffsetDateTime,
    ) -> Result<Result<Answer, String>, Error> {
        let rendered = self.records(tx, records).await?;
        let plain = credit_history::render(bureau, day, &rendered);
        let signature = self
            .crypto
            .sign(plain.as_bytes())
            .map_err(Error::CommandNotTaken)?;
        let encrypted = match self.crypto.encrypt_for(bureau, plain.as_bytes()) {
            Ok(e) => e,
            Err(reason) => return Ok(Err(reason)),
        };
        let name = format!("{bureau}_{day}_{upload}_{attempt}.txt");
        let key = format!("bki/{bureau}/{day}/{name}");
        let location = self
            .store
            .put(&format!("{key}.sealed"), encrypted.clone())
            .await
            .map_err(|e| Error::CommandNotTaken(format!("storing a report file: {e}")))?;
        let signature_location = self
            .store
            .put(&format!("{key}.sig"), signature.clone())
            .await
            .map_err(|e| Error::CommandNotTaken(format!("storing a signature: {e}")))?;
        let file_id = Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes());
        sqlx::query(
            "INSERT INTO bki_files (file_id, bureau, report_day, upload_id, attempt, records, plain_sha256, encrypted_sha256, signature_sha256, location, signature_location, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (file_id) DO UPDATE SET \
             plain_sha256 = EXCLUDED.plain_sha256, encrypted_sha256 = EXCLUDED.encrypted_sha256, signature_sha256 = EXCLUDED.signature_sha256, created_at = EXCLUDED.created_at",
        )
        .bind(file_id)
        .bind(bureau)
        .bind(day)
        .bind(upload)
        .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
        .bind(i32::try_from(records.len()).unwrap_or(i32::MAX))
        .bind(self.crypto.digest(plain.as_bytes()))
        .bind(self.crypto.digest(&encrypted))
        .bind(self.crypto.digest(&signature))
        .bind(location)
        .bind(signature_location)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        journal(
            tx,
            upload,
            "sent",
            attempt,
            Some(file_id),
            None,
            records,
            None,
            now,
        )
        .await?;
        // A record's first send after its deadline is late (flagged once).
        sqlx::query(
            "UPDATE bki_record_uploads u SET late = u.late OR $4 > r.deadline, updated_at = $3 \
             FROM bki_records r WHERE r.event_id = u.event_id AND u.bureau = $2 AND u.event_id = ANY($1) AND u.status = 'sent'",
        )
        .bind(records)
        .bind(bureau)
        .bind(now)
        .bind(now.to_offset(MOSCOW).date())
        .execute(&mut *tx)
        .await?;
        let file = ReportFile {
            name,
            encrypted,
            signature,
        };
        Ok(self.bureau.upload(bureau, &file).await)
    }

    /// The records as they are now, each with its subject's title data.
    async fn records(&self, tx: &mut PgConnection, ids: &[Uuid]) -> Result<Vec<Record>, Error> {
        #[derive(sqlx::FromRow)]
        struct Row {
            event_id: Uuid,
            client_id: Uuid,
            uid: Uuid,
            code: String,
            event_day: Date,
            deadline: Date,
            obligation: Option<serde_json::Value>,
            detail: String,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT event_id, client_id, uid, code, event_day, deadline, obligation, detail \
             FROM bki_records WHERE event_id = ANY($1) ORDER BY event_day, partition, sequence",
        )
        .bind(ids)
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(code) = Code::parse(&r.code) else {
                continue;
            };
            out.push(Record {
                code,
                event_id: r.event_id,
                uid: r.uid,
                event_day: r.event_day,
                deadline: r.deadline,
                subject: self.subject(tx, r.client_id).await?,
                obligation: r
                    .obligation
                    .map(serde_json::from_value::<Obligation>)
                    .transpose()?,
                detail: r.detail,
            });
        }
        Ok(out)
    }

    /// The client's title data, opened from its sealed personal data; empty when there is
    /// none or it was erased.
    async fn subject(&self, tx: &mut PgConnection, client: Uuid) -> Result<Subject, Error> {
        let sealed: Option<serde_json::Value> =
            sqlx::query_scalar("SELECT personal FROM rm_customers WHERE client_id = $1")
                .bind(client)
                .fetch_optional(&mut *tx)
                .await?
                .flatten();
        let Some(sealed) = sealed.and_then(|v| serde_json::from_value::<Sealed>(v).ok()) else {
            return Ok(Subject::default());
        };
        match self.vault.open(ClientId(client), &sealed).await {
            Ok(d) => Ok(Subject {
                last_name: d.last_name,
                first_name: d.first_name,
                middle_name: d.middle_name,
                birth_date: Some(d.birth_date),
                passport: d
                    .passport
                    .map(|p| format!("{} {}", p.number.series(), p.number.number()))
                    .unwrap_or_default(),
                inn: d.inn.map(|i| i.as_str().to_owned()),
                snils: d.snils.map(|s| s.as_str().to_owned()),
            }),
            Err(e) => {
                tracing::warn!(client = %client, error = %e, "a subject's data does not open");
                Ok(Subject::default())
            }
        }
    }
}

fn wake_of(actions: &[Action]) -> Option<OffsetDateTime> {
    actions.iter().rev().find_map(|a| match a {
        Action::WakeAt(at) => Some(*at),
        _ => None,
    })?
}

#[allow(clippy::too_many_arguments)]
async fn journal(
    tx: &mut PgConnection,
    upload: Uuid,
    kind: &str,
    attempt: u32,
    file_id: Option<Uuid>,
    receipt_id: Option<&str>,
    records: &[Uuid],
    errors: Option<serde_json::Value>,
    now: OffsetDateTime,
) -> Result<(), Error> {
    sqlx::query(
        "INSERT INTO bki_upload_events (upload_id, seq, kind, attempt, file_id, receipt_id, event_ids, errors, at) \
         SELECT $1, COALESCE(max(seq), 0) + 1, $2, $3, $4, $5, $6, $7, $8 FROM bki_upload_events WHERE upload_id = $1",
    )
    .bind(upload)
    .bind(kind)
    .bind(i32::try_from(attempt).unwrap_or(i32::MAX))
    .bind(file_id)
    .bind(receipt_id)
    .bind(records)
    .bind(errors)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn standing(
    tx: &mut PgConnection,
    bureau: &str,
    records: &[Uuid],
    status: &str,
    now: OffsetDateTime,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE bki_record_uploads SET status = $3, updated_at = $4 WHERE event_id = ANY($1) AND bureau = $2",
    )
    .bind(records)
    .bind(bureau)
    .bind(status)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// One credit-history record of a loan (or its application) and where it stands with a
/// bureau.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ReportLine {
    pub event_id: Uuid,
    pub code: String,
    pub event_day: Date,
    pub deadline: Date,
    pub bureau: Option<String>,
    /// sent, accepted, rejected, parked; absent while not yet in an upload.
    pub status: Option<String>,
    #[serde(with = "etr_domain::time_serde::rfc3339_option")]
    pub first_sent_at: Option<OffsetDateTime>,
    pub late: Option<bool>,
    pub files: Vec<String>,
}

/// What was sent when for a loan (and the application it came from): every record, its
/// bureau standing, and the files it went in.
///
/// Errors: Postgres.
pub async fn loan_report(pool: &PgPool, loan_id: Uuid) -> Result<Vec<ReportLine>, Error> {
    Ok(sqlx::query_as(
        "SELECT r.event_id, r.code, r.event_day, r.deadline, u.bureau, u.status, u.first_sent_at, u.late, \
                COALESCE((SELECT array_agg(DISTINCT f.location ORDER BY f.location) FROM bki_upload_events e \
                          JOIN bki_files f ON f.file_id = e.file_id \
                          WHERE e.kind = 'sent' AND r.event_id = ANY(e.event_ids)), '{}') AS files \
         FROM bki_records r LEFT JOIN bki_record_uploads u ON u.event_id = r.event_id \
         WHERE r.uid = $1 OR r.uid = (SELECT application_id FROM rm_loans WHERE loan_id = $1) \
         ORDER BY r.event_day, r.partition, r.sequence, u.bureau",
    )
    .bind(loan_id)
    .fetch_all(pool)
    .await?)
}
