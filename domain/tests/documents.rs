//! Document validation rules as configuration (seed 000, 6.2.1).

use etr_domain::documents::Rules;

const RULES: &str = r#"[
  { "kind": "passport_photo", "name": "Фото паспорта", "content_types": ["image/jpeg", "image/png"], "max_bytes": 1000 },
  { "kind": "driver_license", "name": "ВУ", "content_types": ["image/jpeg"], "max_bytes": 1000, "number_digits": 10 }
]"#;

fn code(r: Result<Option<String>, etr_domain::documents::DocumentError>) -> &'static str {
    r.map(|_| "ok").unwrap_or_else(|e| e.code())
}

#[test]
fn every_rule_of_a_type_is_checked_with_its_own_code() {
    let rules = Rules::from_json(RULES).unwrap();
    assert_eq!(
        code(rules.check("passport_photo", "image/png", 10, None)),
        "ok"
    );
    assert_eq!(
        code(rules.check("tax_return", "image/png", 10, None)),
        "unknown_document_type"
    );
    assert_eq!(
        code(rules.check("passport_photo", "application/pdf", 10, None)),
        "document_content_type"
    );
    assert_eq!(
        code(rules.check("passport_photo", "image/png", 0, None)),
        "document_empty"
    );
    assert_eq!(
        code(rules.check("passport_photo", "image/png", 1001, None)),
        "document_too_large"
    );
    assert_eq!(
        code(rules.check("driver_license", "image/jpeg", 10, None)),
        "document_number"
    );
    assert_eq!(
        code(rules.check("driver_license", "image/jpeg", 10, Some("77 12 34567"))),
        "document_number"
    );
    assert_eq!(
        rules
            .check("driver_license", "image/jpeg", 10, Some("77 12 345678"))
            .unwrap(),
        Some("7712345678".to_owned())
    );
}

#[test]
fn bad_rule_files_are_refused() {
    for bad in [
        "{}",
        r#"[{"kind":"a","name":"A","content_types":[],"max_bytes":1}]"#,
        r#"[{"kind":"a","name":"A","content_types":["x/y"],"max_bytes":1},{"kind":"a","name":"B","content_types":["x/y"],"max_bytes":1}]"#,
    ] {
        assert_eq!(
            Rules::from_json(bad).unwrap_err().code(),
            "document_rules",
            "{bad}"
        );
    }
}
