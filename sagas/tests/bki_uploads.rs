//! The credit-history reporter against real Postgres: a record whose subject has no passport
//! is rejected by the bureau, corrected once the client's data has it, and accepted with a
//! receipt; every send, rejection and acceptance is in the journal; a record first sent
//! after its deadline is flagged late; a second start of the day sends nothing.

use etr_domain::bki_upload::Policy;
use etr_domain::personal::PersonalData;
use etr_domain::ports::ReportCrypto as _;
use etr_domain::ClientId;
use etr_infra::crypto::{BureauKeys, Software};
use etr_infra::vault::Vault;
use etr_reports::schedule::ReportStore;
use etr_sagas::bki::{loan_report, upload_id, Reporter};
use etr_sagas::lending_simulators::BureauSimulator;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use time::macros::{date, datetime};
use uuid::Uuid;

fn person(passport: Option<&str>) -> PersonalData {
    let mut v = json!({
        "last_name": "Орлов", "first_name": "Олег", "middle_name": null,
        "birth_date": "1985-02-03", "phone": "+79161230000",
    });
    if let Some(p) = passport {
        v["passport"] = json!({"number": p, "issued_on": "2010-05-20",
            "department_code": "770-001", "issued_by": "ОВД"});
    }
    serde_json::from_value(v).unwrap()
}

async fn set_personal(pool: &sqlx::PgPool, vault: &Vault, client: Uuid, data: &PersonalData) {
    let sealed = vault.seal(ClientId(client), data).await.unwrap();
    sqlx::query(
        "INSERT INTO rm_customers (client_id, status, personal, tags, cards, loans_disbursed, version, state, registered_at, updated_at) \
         VALUES ($1, 'active', $2, '[]', '[]', 1, 1, '{}', now(), now()) \
         ON CONFLICT (client_id) DO UPDATE SET personal = EXCLUDED.personal",
    )
    .bind(client)
    .bind(serde_json::to_value(&sealed).unwrap())
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_record_is_corrected_and_accepted_and_every_step_is_journalled() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_bki_uploads")
        .await
        .expect("Postgres must be running (scripts/test starts it)");
    let vault = Vault::new(pool.clone());
    let client = Uuid::new_v4();
    let loan = Uuid::new_v4();
    set_personal(&pool, &vault, client, &person(None)).await;
    let day = date!(2026 - 12 - 01);
    // Two records of the loan: one on time, one whose deadline has passed.
    let (on_time, late) = (Uuid::new_v4(), Uuid::new_v4());
    for (event_id, code, deadline, sequence) in [
        (on_time, "1.4", date!(2026 - 12 - 03), 1i64),
        (late, "2.3", date!(2026 - 11 - 30), 2),
    ] {
        sqlx::query(
            "INSERT INTO bki_records (event_id, client_id, uid, code, event_day, deadline, obligation, detail, partition, sequence, recorded_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, '', 0, $8, now())",
        )
        .bind(event_id)
        .bind(client)
        .bind(loan)
        .bind(code)
        .bind(day)
        .bind(deadline)
        .bind(json!({"amount": "5000.00", "currency": "RUB", "psk_percent": "292.000",
            "average_monthly_payment": "6200.00", "debt": "5000.00", "overdue": "0.00", "paid": null}))
        .bind(sequence)
        .execute(&pool)
        .await
        .unwrap();
    }
    let bureau = BureauKeys::generate();
    let software = Software::new(
        &Software::generate_signing_key().unwrap(),
        BTreeMap::from([("nbki".to_owned(), bureau.public_key())]),
    )
    .unwrap();
    let platform_key = software.signing_public_key();
    let keys = software.keys();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.purpose == "encryption:nbki"));
    let reporter = Reporter {
        pool: pool.clone(),
        vault: vault.clone(),
        crypto: Arc::new(software),
        store: ReportStore::in_memory(),
        bureau: Arc::new(BureauSimulator {
            keys: BTreeMap::from([("nbki".to_owned(), bureau)]),
            platform_key,
        }),
        bureaus: vec!["nbki".into()],
        policy: Policy::default(),
    };
    let now = datetime!(2026-12-02 01:00 UTC);
    assert_eq!(
        reporter.start_day(day, now).await.unwrap(),
        vec![upload_id("nbki", day)]
    );
    // The first file: the bureau rejects both records (no passport).
    assert_eq!(reporter.tick(now).await.unwrap(), 1);
    let status = |pool: sqlx::PgPool| async move {
        let rows: Vec<(Uuid, String, bool)> = sqlx::query_as(
            "SELECT event_id, status, late FROM bki_record_uploads ORDER BY event_id",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        rows
    };
    assert!(status(pool.clone())
        .await
        .iter()
        .all(|(_, s, _)| s == "rejected"));
    // The client's data is corrected; the next attempt is due at once and is accepted.
    set_personal(&pool, &vault, client, &person(Some("4510 123456"))).await;
    assert_eq!(reporter.tick(now).await.unwrap(), 1);
    let rows = status(pool.clone()).await;
    assert!(rows.iter().all(|(_, s, _)| s == "accepted"), "{rows:?}");
    assert!(rows.iter().any(|(id, _, l)| *id == late && *l));
    assert!(rows.iter().any(|(id, _, l)| *id == on_time && !*l));
    let journal: Vec<(String, i32, Option<String>)> =
        sqlx::query_as("SELECT kind, attempt, receipt_id FROM bki_upload_events ORDER BY seq")
            .fetch_all(&pool)
            .await
            .unwrap();
    let kinds: Vec<(&str, i32)> = journal.iter().map(|(k, a, _)| (k.as_str(), *a)).collect();
    assert_eq!(
        kinds,
        vec![("sent", 1), ("rejected", 1), ("sent", 2), ("accepted", 2)]
    );
    assert!(journal[3]
        .2
        .as_deref()
        .is_some_and(|r| r.starts_with("rcpt-")));
    // Two files, each with its digests.
    let files: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM bki_files WHERE length(plain_sha256) = 64 AND length(encrypted_sha256) = 64",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(files, 2);
    // Nothing is due any more; a second start of the day sends nothing.
    assert_eq!(reporter.tick(now).await.unwrap(), 0);
    assert!(reporter.start_day(day, now).await.unwrap().is_empty());
    let report = loan_report(&pool, loan).await.unwrap();
    assert_eq!(report.len(), 2);
    assert!(report.iter().all(|l| l.files.len() == 2), "{report:?}");
    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}
