//! Available identification methods from the data a client provided (seed 000, 6.11.2).

use etr_domain::identification::{Catalogue, Datum};
use std::collections::BTreeSet;

const CATALOGUE: &str = r#"[
  {"id": "snils", "name": "Паспорт и СНИЛС", "requires": ["passport", "snils"]},
  {"id": "inn", "name": "Паспорт и ИНН (ФНС)", "requires": ["passport", "inn"]},
  {"id": "mobile_id", "name": "Мобильный ID оператора", "requires": ["passport", "phone"]},
  {"id": "photo", "name": "Фото паспорта и селфи", "requires": ["passport_photo", "selfie"], "manual": true},
  {"id": "legacy", "name": "Отключён", "requires": ["passport"], "enabled": false}
]"#;

fn set(data: &[Datum]) -> BTreeSet<Datum> {
    data.iter().copied().collect()
}

#[test]
fn methods_follow_the_data_provided_in_catalogue_order() {
    let c = Catalogue::from_json(CATALOGUE).unwrap();
    let ids = |data: &[Datum]| -> Vec<String> {
        c.available(&set(data))
            .iter()
            .map(|m| m.id.clone())
            .collect()
    };
    assert!(ids(&[]).is_empty());
    // A disabled method is never offered, even when its data is there.
    assert!(ids(&[Datum::Passport]).is_empty());
    assert_eq!(ids(&[Datum::Passport, Datum::Phone]), ["mobile_id"]);
    assert_eq!(
        ids(&[Datum::Passport, Datum::Snils, Datum::Inn, Datum::Phone]),
        ["snils", "inn", "mobile_id"]
    );
    let photo = c.available(&set(&[Datum::PassportPhoto, Datum::Selfie]));
    assert_eq!(photo.len(), 1);
    assert!(photo[0].manual);
    assert_eq!(
        c.missing("snils", &set(&[Datum::Passport])),
        Some(vec![Datum::Snils])
    );
    assert_eq!(c.missing("nope", &set(&[])), None);
}

#[test]
fn bad_catalogues_are_refused() {
    for bad in [
        r#"{"id": "x"}"#,
        r#"[{"id": "", "name": "n", "requires": ["passport"]}]"#,
        r#"[{"id": "a", "name": "n", "requires": ["passport"]}, {"id": "a", "name": "m", "requires": ["inn"]}]"#,
        r#"[{"id": "a", "name": "n", "requires": []}]"#,
        r#"[{"id": "a", "name": "n", "requires": ["fingerprint"]}]"#,
    ] {
        let err = Catalogue::from_json(bad).unwrap_err();
        assert!(
            err.to_string().starts_with("identification catalogue"),
            "{bad}: {err}"
        );
    }
}
