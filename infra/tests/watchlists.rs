//! Watch lists on the real Postgres server (seed 000, 6.6.1 and 6.6.9), each test on a fresh
//! database dropped at its end: the Rosfinmonitoring list loaded from files with its history,
//! and the operators' block and allow lists.

use etr_domain::legal::{
    verdict, Action, Document, ListRef, ListedPerson, MatchedOn, Policy, Subject, Verdict,
};
use etr_infra::watchlists::{self, Change, ListKind, NewEntry, NewList};
use etr_infra::Error;
use time::macros::date;

fn subject(name: &str, birth: time::Date, documents: &[&str]) -> Subject {
    Subject {
        full_name: name.into(),
        birth_date: birth,
        documents: documents
            .iter()
            .map(|d| Document::parse(d).unwrap())
            .collect(),
    }
}

async fn load(pool: &sqlx::PgPool, source: &str, csv: &str) -> watchlists::Loaded {
    watchlists::load_rosfinmonitoring(pool, source, csv.as_bytes(), |_| {})
        .await
        .unwrap()
}

const FIRST: &str = "\u{feff}ID;FIO;DATE_OF_BIRTH;DOCUMENT\n\
    1;АРТЕМОВ ПЕТР СЕМЕНОВИЧ;17.05.1980;\n\
    2;Сидоров Сидор Сидорович;;4510 123456\n\
    3;Кузнецов Кузьма;02.03.1975;500100732259\n\
    4;Безымянный Без Даты;;\n\
    3;Кузнецов Кузьма;02.03.1975;500100732259\n\
    \n\
    5;Лишний;01.01.1990;;\n\
    6;Без Даты;1990-01-01;\n\
    ;Без Номера;01.01.1990;\n\
    7;Плохой Паспорт;;4510 12345\n";

#[tokio::test]
async fn a_published_list_hits_by_document_and_by_name_with_birth_date() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_watchlists_rfm")
        .await
        .expect("a fresh database on the local Postgres server");

    // Given a published list with four good lines (one repeated) and four malformed ones
    let loaded = load(&pool, "first.csv", FIRST).await;
    assert_eq!(
        (
            loaded.rows_read,
            loaded.skipped,
            loaded.listed,
            loaded.added,
            loaded.delisted
        ),
        (9, 4, 4, 4, 0)
    );

    // When a client with a listed passport is checked, whatever their name, then a hit
    let by_passport = subject("Другое Имя", date!(2000 - 01 - 01), &["4510123456"]);
    let hits = watchlists::check(&pool, &by_passport).await.unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].list, ListRef::Rosfinmonitoring);
    assert_eq!(hits[0].entry_id, "2");
    assert_eq!(hits[0].matched_on, MatchedOn::Document);
    // And by INN
    let by_inn = subject("Кто-то", date!(2000 - 01 - 01), &["500100732259"]);
    let hits = watchlists::check(&pool, &by_inn).await.unwrap();
    assert_eq!(
        hits.iter().map(|h| h.entry_id.as_str()).collect::<Vec<_>>(),
        ["3"]
    );

    // When the name differs only by Ё/Е, case and spacing and the birth date is the same
    let by_name = subject("  Артёмов   пётр Семёнович ", date!(1980 - 05 - 17), &[]);
    let hits = watchlists::check(&pool, &by_name).await.unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].matched_on, MatchedOn::NameAndBirthDate);
    assert!(hits[0].reason.contains("17.05.1980"), "{}", hits[0].reason);

    // When only the name matches, then no hit
    let namesake = subject("Артемов Петр Семенович", date!(1980 - 05 - 18), &[]);
    assert!(watchlists::check(&pool, &namesake)
        .await
        .unwrap()
        .is_empty());
    let undated = subject("Безымянный Без Даты", date!(1980 - 05 - 17), &[]);
    assert!(watchlists::check(&pool, &undated).await.unwrap().is_empty());

    // And the verdict under the default policy declines, naming the list and the entry
    let v = verdict(
        &watchlists::check(&pool, &by_name).await.unwrap(),
        &watchlists::policy(&pool).await.unwrap(),
    );
    assert!(
        matches!(&v, Verdict::Declined { reasons } if reasons[0].contains("Rosfinmonitoring") && reasons[0].contains("entry 1")),
        "{v:?}"
    );

    let loads = watchlists::loads(&pool, watchlists::ROSFINMONITORING)
        .await
        .unwrap();
    assert_eq!(loads.len(), 1);
    assert_eq!(
        (loads[0].source.as_str(), loads[0].rows, loads[0].skipped),
        ("first.csv", 9, 4)
    );
    pool.close().await;
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}

#[tokio::test]
async fn a_later_load_delists_and_the_history_keeps_both() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_watchlists_history")
        .await
        .expect("a fresh database on the local Postgres server");
    let artemov = subject("Артемов Петр Семенович", date!(1980 - 05 - 17), &[]);

    // Given a first load listing him, and a second one without him
    let first = load(&pool, "first.csv", FIRST).await;
    let second = load(
        &pool,
        "second.csv",
        "ID;FIO;DATE_OF_BIRTH;DOCUMENT\n\
         2;Сидоров Сидор Сидорович;;4510 123456\n\
         3;Кузнецов Кузьма;02.03.1975;500100732259\n\
         4;Безымянный Без Даты;;\n\
         8;Новый Человек;09.09.1999;\n",
    )
    .await;
    assert_eq!(
        (second.listed, second.added, second.delisted, second.skipped),
        (4, 1, 1, 0)
    );

    // Then the current list no longer has him, the list as of the first load still does
    assert!(watchlists::check(&pool, &artemov).await.unwrap().is_empty());
    let then = watchlists::check_rosfinmonitoring_at(&pool, &artemov, first.load_id)
        .await
        .unwrap();
    assert_eq!(then.len(), 1);
    assert!(
        watchlists::check_rosfinmonitoring_at(&pool, &artemov, second.load_id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        watchlists::check_rosfinmonitoring_at(&pool, &artemov, second.load_id + 100).await,
        Err(Error::NotFound(_))
    ));

    // And his history shows him listed by the first load and delisted by the second
    let history = watchlists::history(&pool, &artemov).await.unwrap();
    let seen: Vec<_> = history
        .iter()
        .map(|h| (h.load_id, h.change, h.entry_id.as_str(), h.source.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (first.load_id, Change::Listed, "1", "first.csv"),
            (second.load_id, Change::Delisted, "1", "second.csv"),
        ]
    );

    // When a third load lists him again, the history goes on
    let third = load(
        &pool,
        "third.csv",
        "1;Артёмов Пётр Семёнович;17.05.1980;\n2;Сидоров Сидор Сидорович;;4510 123456\n",
    )
    .await;
    assert_eq!(
        (third.listed, third.added, third.delisted),
        (2, 1, 3),
        "entries 3, 4 and 8 are gone"
    );
    let history = watchlists::history(&pool, &artemov).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(
        (history[2].load_id, history[2].change),
        (third.load_id, Change::Listed)
    );
    assert_eq!(watchlists::check(&pool, &artemov).await.unwrap().len(), 1);
    // Entry 2 stayed on the list through all three loads: listed once, never delisted.
    let sidorov = subject("x", date!(2000 - 01 - 01), &["4510 123456"]);
    let history = watchlists::history(&pool, &sidorov).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].load_id, first.load_id);
    pool.close().await;
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}

#[tokio::test]
async fn a_big_list_streams_in_chunks_and_is_found_by_index() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_watchlists_big")
        .await
        .expect("a fresh database on the local Postgres server");
    // 120,000 entries: more than two COPY chunks.
    let mut csv = String::from("ID;FIO;DATE_OF_BIRTH;DOCUMENT\n");
    for n in 0..120_000u32 {
        csv.push_str(&format!(
            "{n};Фамилия{n} Имя Отчество;{:02}.{:02}.{};{:04} {:06}\n",
            n % 28 + 1,
            n % 12 + 1,
            1950 + n % 50,
            4500 + n % 100,
            n + 1
        ));
    }
    let mut calls = 0;
    let loaded =
        watchlists::load_rosfinmonitoring(&pool, "big.csv", csv.as_bytes(), |_| calls += 1)
            .await
            .unwrap();
    assert_eq!((loaded.listed, loaded.skipped), (120_000, 0));
    assert!(calls >= 3, "progress after every chunk, got {calls}");
    let n = 77_777u32;
    let s = subject(
        &format!("фамилия{n}  имя отчество"),
        time::Date::from_calendar_date(
            1950 + (n % 50) as i32,
            time::Month::try_from((n % 12 + 1) as u8).unwrap(),
            (n % 28 + 1) as u8,
        )
        .unwrap(),
        &[],
    );
    let hits = watchlists::check(&pool, &s).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].entry_id, n.to_string());
    // Loading the same file again changes nothing.
    let again = load(&pool, "big.csv", &csv).await;
    assert_eq!((again.listed, again.added, again.delisted), (120_000, 0, 0));
    pool.close().await;
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}

#[tokio::test]
async fn operator_lists_block_allow_and_remove() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_watchlists_ops")
        .await
        .expect("a fresh database on the local Postgres server");
    let new_list = |name: &str, kind, action| NewList {
        name: name.into(),
        kind,
        action,
        description: format!("{name} list"),
        created_by: "operator-1".into(),
    };
    let fraud =
        watchlists::create_list(&pool, &new_list("fraud", ListKind::Block, Action::Decline))
            .await
            .unwrap();
    assert_eq!(
        (fraud.kind, fraud.action),
        (ListKind::Block, Action::Decline)
    );
    watchlists::create_list(
        &pool,
        &new_list("watch", ListKind::Block, Action::ManualReview),
    )
    .await
    .unwrap();
    watchlists::create_list(
        &pool,
        &new_list("staff", ListKind::Allow, Action::ManualReview),
    )
    .await
    .unwrap();
    assert!(matches!(
        watchlists::create_list(&pool, &new_list("fraud", ListKind::Allow, Action::Decline)).await,
        Err(Error::Invalid(_))
    ));

    let client = subject(
        "Петров Пётр",
        date!(1985 - 10 - 10),
        &["4510 111111", "112-233-445 95"],
    );
    let entry = |name: &str, birth, document: Option<&str>, reason: &str| NewEntry {
        person: ListedPerson {
            full_name: name.into(),
            birth_date: birth,
            document: document.map(|d| Document::parse(d).unwrap()),
        },
        reason: reason.into(),
        added_by: "operator-1".into(),
    };

    // Given the client on the fraud block list by SNILS
    let blocked = watchlists::add_entry(
        &pool,
        "fraud",
        &entry("", None, Some("11223344595"), "chargebacks on three cards"),
    )
    .await
    .unwrap();
    // And a namesake with another birth date on the watch list
    watchlists::add_entry(
        &pool,
        "watch",
        &entry("ПЕТРОВ ПЕТР", Some(date!(1985 - 10 - 11)), None, "namesake"),
    )
    .await
    .unwrap();

    // When checked, then one hit with the operator's reason, and the list's action declines
    let hits = watchlists::check(&pool, &client).await.unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].list, ListRef::Block("fraud".into()));
    assert_eq!(hits[0].entry_id, blocked.id.to_string());
    assert_eq!(hits[0].reason, "chargebacks on three cards");
    let policy = watchlists::policy(&pool).await.unwrap();
    assert_eq!(policy.block_lists.get("watch"), Some(&Action::ManualReview));
    let v = verdict(&hits, &policy);
    assert!(
        matches!(&v, Verdict::Declined { reasons } if reasons[0].contains("block list `fraud`") && reasons[0].contains("chargebacks")),
        "{v:?}"
    );

    // When the client is also on the allow list by name and birth date, the block hit is cleared
    let allowed = watchlists::add_entry(
        &pool,
        "staff",
        &entry(
            "Петров  Петр",
            Some(date!(1985 - 10 - 10)),
            None,
            "employee",
        ),
    )
    .await
    .unwrap();
    let hits = watchlists::check(&pool, &client).await.unwrap();
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(verdict(&hits, &policy), Verdict::Passed);

    // When the block entry is removed, it no longer hits, and the allow entry alone passes
    let removed = watchlists::remove_entry(
        &pool,
        "fraud",
        blocked.id,
        "operator-2",
        "chargebacks refunded",
    )
    .await
    .unwrap();
    assert_eq!(removed.removed_by.as_deref(), Some("operator-2"));
    assert!(removed.removed_at.is_some());
    let hits = watchlists::check(&pool, &client).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].list, ListRef::Allow("staff".into()));
    assert_eq!(hits[0].entry_id, allowed.id.to_string());
    assert_eq!(verdict(&hits, &Policy::default()), Verdict::Passed);
    assert!(matches!(
        watchlists::remove_entry(&pool, "fraud", blocked.id, "operator-2", "again").await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        watchlists::remove_entry(&pool, "watch", blocked.id, "operator-2", "wrong list").await,
        Err(Error::NotFound(_))
    ));

    // Refusals: an entry that could never match, an unknown list
    assert!(matches!(
        watchlists::add_entry(&pool, "fraud", &entry("Только Имя", None, None, "x")).await,
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        watchlists::add_entry(&pool, "nope", &entry("", None, Some("4510 222222"), "x")).await,
        Err(Error::NotFound(_))
    ));

    // Pages: five more entries read two at a time; the removed one only on request
    for n in 0..5 {
        watchlists::add_entry(
            &pool,
            "fraud",
            &entry("", None, Some(&format!("4510 30000{n}")), "bulk"),
        )
        .await
        .unwrap();
    }
    let mut after = None;
    let mut seen = Vec::new();
    loop {
        let page = watchlists::entries(&pool, "fraud", 2, after, false)
            .await
            .unwrap();
        assert!(page.entries.len() <= 2);
        seen.extend(page.entries.iter().map(|e| e.id));
        match page.next_after {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(!seen.contains(&blocked.id));
    let all = watchlists::entries(&pool, "fraud", 100, None, true)
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 6);
    assert_eq!(
        all.entries[0].removal_reason.as_deref(),
        Some("chargebacks refunded")
    );
    assert_eq!(all.next_after, None);
    pool.close().await;
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}
