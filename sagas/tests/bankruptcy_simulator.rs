//! The bankruptcy register simulator answers by its input alone (seed 000, 6.6.2): open cases
//! for `Банкрот…` surnames and INNs ending in `000`, none otherwise, never for `Timeout…`.

use etr_domain::legal::{
    bankruptcy_hits, verdict, CaseStatus, Document, MatchedOn, Policy, Subject, Verdict,
};
use etr_domain::ports::BankruptcyRegistry;
use etr_sagas::simulators::BankruptcyRegistrySimulator;
use std::time::{Duration, Instant};
use time::macros::date;

fn subject(name: &str, documents: &[&str]) -> Subject {
    Subject {
        full_name: name.into(),
        birth_date: date!(1979 - 04 - 02),
        documents: documents
            .iter()
            .map(|d| Document::parse(d).unwrap())
            .collect(),
    }
}

#[tokio::test]
async fn answers_are_deterministic_by_the_subject() {
    let registry = BankruptcyRegistrySimulator::default();

    // A surname starting with Банкрот, in any case and with Ё: one open case by name.
    let cases = registry
        .lookup(&subject("банкротов Пётр", &[]))
        .await
        .unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].status, CaseStatus::Open);
    assert_eq!(cases[0].matched_on, MatchedOn::NameAndBirthDate);
    let again = registry
        .lookup(&subject("БАНКРОТОВ  ПЕТР", &[]))
        .await
        .unwrap();
    assert_eq!(again, cases, "the same person gets the same case");
    // Only the surname counts.
    assert!(registry
        .lookup(&subject("Петров Банкрот", &[]))
        .await
        .unwrap()
        .is_empty());

    // A person's INN ending in 000: an open case by document.
    let cases = registry
        .lookup(&subject("Иванов Иван", &["344978690000"]))
        .await
        .unwrap();
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0].matched_on, MatchedOn::Document);
    assert!(matches!(
        verdict(&bankruptcy_hits(&cases), &Policy::default()),
        Verdict::Declined { reasons } if reasons[0].contains(&cases[0].case_number)
    ));

    // Anyone else: no case, and the checks pass.
    let cases = registry
        .lookup(&subject("Иванов Иван", &["500100732259", "4510 123456"]))
        .await
        .unwrap();
    assert!(cases.is_empty());
    assert_eq!(
        verdict(&bankruptcy_hits(&cases), &Policy::default()),
        Verdict::Passed
    );
}

#[tokio::test]
async fn latency_is_configured_and_timeout_names_never_answer() {
    let registry = BankruptcyRegistrySimulator::new(Duration::from_millis(50));
    let started = Instant::now();
    registry.lookup(&subject("Иванов", &[])).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(50));

    let silent = tokio::time::timeout(
        Duration::from_millis(300),
        registry.lookup(&subject("Timeout Test", &[])),
    )
    .await;
    assert!(silent.is_err(), "a Timeout… name never answers");
}
