//! Legal checks (seed 000, 6.6.1 Rosfinmonitoring, 6.6.2 bankruptcy, 6.6.9 operator lists):
//! who matches a list entry, and what the hits mean for an application.

use etr_domain::legal::{
    bankruptcy_hits, match_entry, normalize_name, verdict, Action, BankruptcyCase, CaseStatus,
    Document, Hit, ListRef, ListedPerson, MatchedOn, Policy, Subject, Verdict,
};
use proptest::prelude::*;
use time::macros::date;

fn subject() -> Subject {
    Subject {
        full_name: "Артёмов  Пётр Семёнович".into(),
        birth_date: date!(1980 - 05 - 17),
        documents: vec![
            Document::parse("4510 123456").unwrap(),
            Document::parse("500100732259").unwrap(),
        ],
    }
}

fn entry(name: &str, birth: Option<time::Date>, document: Option<&str>) -> ListedPerson {
    ListedPerson {
        full_name: name.into(),
        birth_date: birth,
        document: document.map(|d| Document::parse(d).unwrap()),
    }
}

fn hit(list: ListRef, id: &str) -> Hit {
    Hit {
        list,
        entry_id: id.into(),
        matched_on: MatchedOn::Document,
        reason: format!("reason {id}"),
    }
}

#[test]
fn names_are_compared_upper_case_with_e_for_yo_and_single_spaces() {
    assert_eq!(
        normalize_name("  артёмов\tпётр \n семёнович "),
        "АРТЕМОВ ПЕТР СЕМЕНОВИЧ"
    );
    assert_eq!(normalize_name("ЁЖИКОВ Ёлкин"), "ЕЖИКОВ ЕЛКИН");
    assert_eq!(normalize_name(" \t "), "");
}

#[test]
fn given_a_listed_document_when_the_client_has_it_then_it_is_a_hit() {
    // Given an entry whose passport is the client's, under another name and birth date
    let e = entry(
        "Иванов Иван",
        Some(date!(1990 - 01 - 01)),
        Some("4510123456"),
    );
    // When matched, then the document alone is enough
    assert_eq!(match_entry(&subject(), &e), Some(MatchedOn::Document));
    // And an INN written differently is the same INN
    let e = entry("", None, Some("inn:500100732259"));
    assert_eq!(match_entry(&subject(), &e), Some(MatchedOn::Document));
}

#[test]
fn given_the_same_name_and_birth_date_then_it_is_a_hit_whatever_the_spelling() {
    let e = entry(
        "АРТЕМОВ ПЕТР   СЕМЕНОВИЧ",
        Some(date!(1980 - 05 - 17)),
        None,
    );
    assert_eq!(
        match_entry(&subject(), &e),
        Some(MatchedOn::NameAndBirthDate)
    );
}

#[test]
fn given_only_the_name_then_it_is_not_a_hit() {
    // No birth date on the entry
    let e = entry("Артемов Петр Семенович", None, None);
    assert_eq!(match_entry(&subject(), &e), None);
    // Another birth date
    let e = entry("Артемов Петр Семенович", Some(date!(1980 - 05 - 18)), None);
    assert_eq!(match_entry(&subject(), &e), None);
    // Another person's document
    let e = entry(
        "Артемов Петр Семенович",
        Some(date!(1981 - 05 - 17)),
        Some("4510 654321"),
    );
    assert_eq!(match_entry(&subject(), &e), None);
    // An empty name never matches on the birth date alone
    let nameless = Subject {
        full_name: " ".into(),
        ..subject()
    };
    assert_eq!(
        match_entry(&nameless, &entry("", Some(date!(1980 - 05 - 17)), None)),
        None
    );
}

#[test]
fn documents_parse_by_shape_or_by_prefix() {
    let kv = |s: &str| {
        Document::parse(s)
            .map(|d| (d.kind(), d.value().to_owned()))
            .map_err(|e| e.code())
    };
    assert_eq!(kv("4510 123456"), Ok(("passport", "4510123456".into())));
    assert_eq!(kv("4510123456"), Ok(("passport", "4510123456".into())));
    assert_eq!(kv("500100732259"), Ok(("inn", "500100732259".into())));
    assert_eq!(kv("inn:7707083893"), Ok(("inn", "7707083893".into())));
    assert_eq!(kv("112-233-445 95"), Ok(("snils", "11223344595".into())));
    assert_eq!(kv("11223344595"), Ok(("snils", "11223344595".into())));
    assert_eq!(
        kv("SNILS: 112-233-445 95"),
        Ok(("snils", "11223344595".into()))
    );
    assert_eq!(kv("500100732258"), Err("inn_checksum"));
    assert_eq!(kv("112-233-445 96"), Err("snils_checksum"));
    for bad in ["", "12345", "45 10 123456", "abc", "ogrn:1027700132195"] {
        assert_eq!(kv(bad), Err("invalid_command"), "{bad}");
    }
    let d = Document::parse("4510 123456").unwrap();
    assert_eq!(d.to_string(), "passport:4510123456");
    assert_eq!(Document::parse(&d.to_string()).unwrap(), d);
}

#[test]
fn given_no_hits_then_passed() {
    assert_eq!(verdict(&[], &Policy::default()), Verdict::Passed);
}

#[test]
fn given_a_rosfinmonitoring_hit_then_declined_with_the_list_and_entry_named() {
    let v = verdict(
        &[hit(ListRef::Rosfinmonitoring, "1042")],
        &Policy::default(),
    );
    let Verdict::Declined { reasons } = v else {
        panic!("{v:?}")
    };
    assert_eq!(reasons.len(), 1);
    assert!(reasons[0].contains("Rosfinmonitoring"), "{}", reasons[0]);
    assert!(reasons[0].contains("entry 1042"), "{}", reasons[0]);
    assert!(reasons[0].contains("reason 1042"), "{}", reasons[0]);
}

#[test]
fn given_a_block_list_hit_then_the_list_setting_decides() {
    let mut policy = Policy::default();
    policy
        .block_lists
        .insert("fraud".into(), Action::ManualReview);
    policy.block_lists.insert("stop".into(), Action::Decline);
    let review = verdict(&[hit(ListRef::Block("fraud".into()), "7")], &policy);
    assert!(
        matches!(&review, Verdict::ManualReview { reasons } if reasons[0].contains("block list `fraud`, entry 7")),
        "{review:?}"
    );
    // Decline wins over manual review, and only the declining hits are the reasons.
    let both = verdict(
        &[
            hit(ListRef::Block("fraud".into()), "7"),
            hit(ListRef::Block("stop".into()), "8"),
        ],
        &policy,
    );
    assert_eq!(
        both,
        Verdict::Declined {
            reasons: vec!["block list `stop`, entry 8 (matched on document): reason 8".into()]
        }
    );
    // A block list the policy does not know goes to an operator.
    assert!(matches!(
        verdict(&[hit(ListRef::Block("new".into()), "9")], &policy),
        Verdict::ManualReview { .. }
    ));
}

#[test]
fn given_an_allow_list_hit_then_block_hits_are_cleared_but_not_the_law() {
    let mut policy = Policy::default();
    policy.block_lists.insert("stop".into(), Action::Decline);
    let allow = hit(ListRef::Allow("staff".into()), "1");
    let block = hit(ListRef::Block("stop".into()), "2");
    assert_eq!(
        verdict(&[block.clone(), allow.clone()], &policy),
        Verdict::Passed
    );
    assert_eq!(
        verdict(std::slice::from_ref(&allow), &policy),
        Verdict::Passed
    );
    let v = verdict(
        &[allow.clone(), block, hit(ListRef::Rosfinmonitoring, "3")],
        &policy,
    );
    assert!(
        matches!(&v, Verdict::Declined { reasons } if reasons.len() == 1 && reasons[0].contains("Rosfinmonitoring")),
        "{v:?}"
    );
    let v = verdict(&[allow, hit(ListRef::Bankruptcy, "А40-1/2026")], &policy);
    assert!(matches!(v, Verdict::Declined { .. }), "{v:?}");
}

#[test]
fn given_a_policy_sending_the_law_to_review_then_manual_review() {
    let policy = Policy {
        rosfinmonitoring: Action::ManualReview,
        bankruptcy: Action::ManualReview,
        ..Policy::default()
    };
    let v = verdict(
        &[
            hit(ListRef::Rosfinmonitoring, "1"),
            hit(ListRef::Bankruptcy, "2"),
        ],
        &policy,
    );
    assert!(
        matches!(&v, Verdict::ManualReview { reasons } if reasons.len() == 2),
        "{v:?}"
    );
}

#[test]
fn given_bankruptcy_cases_then_open_and_completed_ones_are_hits() {
    let case = |n: &str, status| BankruptcyCase {
        case_number: n.into(),
        status,
        court: "Арбитражный суд города Москвы".into(),
        opened_on: Some(date!(2025 - 02 - 03)),
        matched_on: MatchedOn::Document,
    };
    let hits = bankruptcy_hits(&[
        case("А40-1/2025", CaseStatus::Open),
        case("А40-2/2025", CaseStatus::Terminated),
        case("А40-3/2025", CaseStatus::Completed),
    ]);
    let ids: Vec<_> = hits.iter().map(|h| h.entry_id.as_str()).collect();
    assert_eq!(ids, ["А40-1/2025", "А40-3/2025"]);
    assert!(hits.iter().all(|h| h.list == ListRef::Bankruptcy));
    assert!(hits[0].reason.contains("open"), "{}", hits[0].reason);
    let v = verdict(&hits, &Policy::default());
    assert!(
        matches!(&v, Verdict::Declined { reasons } if reasons.len() == 2 && reasons[1].contains("А40-3/2025")),
        "{v:?}"
    );
    assert_eq!(
        verdict(
            &bankruptcy_hits(&[case("А40-2/2025", CaseStatus::Terminated)]),
            &Policy::default()
        ),
        Verdict::Passed
    );
}

#[test]
fn hits_and_verdicts_serialise_for_the_operators() {
    let h = hit(ListRef::Block("stop".into()), "2");
    let json = serde_json::to_value(&h).unwrap();
    assert_eq!(json["list"]["kind"], "block");
    assert_eq!(json["list"]["name"], "stop");
    assert_eq!(json["matched_on"], "document");
    let json = serde_json::to_value(verdict(&[h], &Policy::default())).unwrap();
    assert_eq!(json["outcome"], "manual_review");
    assert_eq!(
        serde_json::to_value(ListRef::Rosfinmonitoring).unwrap()["kind"],
        "rosfinmonitoring"
    );
}

fn name_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just(' '),
            Just('\t'),
            Just('\n'),
            Just('\u{a0}'),
            Just('ё'),
            Just('Ё'),
            Just('-'),
            prop::char::range('а', 'я'),
            prop::char::range('А', 'Я'),
            prop::char::range('a', 'z'),
        ],
        0..40,
    )
    .prop_map(|v| v.into_iter().collect())
}

proptest! {
    #[test]
    fn normalising_is_idempotent(name in name_like()) {
        let once = normalize_name(&name);
        prop_assert_eq!(normalize_name(&once), once.clone());
        prop_assert!(!once.contains('Ё') && !once.contains("  "));
        prop_assert_eq!(once.trim(), once.as_str());
    }

    #[test]
    fn normalising_any_text_is_idempotent(name in any::<String>()) {
        let once = normalize_name(&name);
        prop_assert_eq!(normalize_name(&once), once);
    }
}
