//! Rendering agreements from templates to HTML and PDF.

mod common;

use std::path::Path;

use etr_documents::{verify_hash, Agreements, Error, Templates, LOAN_AGREEMENT};

/// Number of page objects (`/Type /Page`, not `/Pages`) in a PDF.
fn page_count(pdf: &[u8]) -> usize {
    let mut count = 0;
    let mut rest = pdf;
    while let Some(at) = find(rest, b"/Type") {
        rest = &rest[at + b"/Type".len()..];
        let trimmed = rest
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(0);
        let after = &rest[trimmed..];
        if after.starts_with(b"/Page") && !after[b"/Page".len()..].starts_with(b"s") {
            count += 1;
        }
    }
    count
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

fn write_template(dir: &Path, name: &str, source: &str) {
    std::fs::write(dir.join(format!("{name}.html.j2")), source).unwrap();
}

#[test]
fn builtin_agreement_html_carries_client_and_full_cost() {
    let params = common::params(12);
    let agreements = Agreements::builtin().unwrap();
    let rendered = agreements.render(LOAN_AGREEMENT, &params).unwrap();

    let html = &rendered.html;
    assert!(html.contains("Иванова Мария Сергеевна"));
    assert!(html.contains(&params.offer.psk_percent), "PSK percent");
    assert!(html.contains(&params.offer.psk_money), "PSK money");
    assert!(html.contains(&params.offer.total_to_repay));
    assert!(html.contains("ЗМ-2026-000123"));
    assert!(
        html.contains("15.12.2025"),
        "contract date printed as dd.mm.yyyy"
    );
    assert!(html.contains("21.04.1990"), "birth date");
    assert!(html.contains(&params.client.passport));
    assert!(html.contains(&params.client.address));
    assert!(html.contains("1207700000001") && html.contains("7700000001"));
    assert!(html.contains("АСП"));
    // Every schedule row is printed.
    for row in &params.schedule {
        assert!(html.contains(&row.payment), "payment of row {}", row.number);
    }
    // 17 individual terms and 12 instalments.
    assert_eq!(html.matches("<tr><td class=\"center\">").count(), 17 + 12);
}

#[test]
fn pdf_is_deterministic_and_hashed() {
    let params = common::params(12);
    let first = Agreements::builtin()
        .unwrap()
        .render(LOAN_AGREEMENT, &params)
        .unwrap();
    let second = Agreements::builtin()
        .unwrap()
        .render(LOAN_AGREEMENT, &params)
        .unwrap();

    assert!(first.pdf.starts_with(b"%PDF"));
    assert_eq!(first.sha256.len(), 64);
    assert!(first
        .sha256
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert_eq!(first.sha256, second.sha256);
    assert_eq!(first.pdf, second.pdf);
    assert!(verify_hash(&first.pdf, &first.sha256));
    assert!(verify_hash(&first.pdf, &first.sha256.to_uppercase()));
    assert!(!contains(&first.pdf, b"/CreationDate"));
    assert!(!contains(&first.pdf, b"/ModDate"));

    // Different terms, different document.
    let mut other = params.clone();
    other.offer.psk_percent = "26,825".to_owned();
    let third = Agreements::builtin()
        .unwrap()
        .render(LOAN_AGREEMENT, &other)
        .unwrap();
    assert_ne!(third.sha256, first.sha256);
    assert!(!verify_hash(&third.pdf, &first.sha256));
}

#[test]
fn pdf_embeds_the_font_with_a_unicode_map() {
    let rendered = Agreements::builtin()
        .unwrap()
        .render(LOAN_AGREEMENT, &common::params(12))
        .unwrap();
    assert!(
        contains(&rendered.pdf, b"/FontFile2"),
        "TrueType font embedded"
    );
    assert!(contains(&rendered.pdf, b"DejaVuSans"));
    assert!(contains(&rendered.pdf, b"DejaVuSans-Bold"));
    assert!(
        contains(&rendered.pdf, b"/ToUnicode"),
        "text can be extracted"
    );
}

#[test]
fn long_schedule_runs_over_several_pages() {
    let agreements = Agreements::builtin().unwrap();
    let short = agreements
        .render(LOAN_AGREEMENT, &common::params(1))
        .unwrap();
    let long = agreements
        .render(LOAN_AGREEMENT, &common::params(36))
        .unwrap();
    let short_pages = page_count(&short.pdf);
    let long_pages = page_count(&long.pdf);
    assert!(short_pages >= 2, "{short_pages} pages");
    assert!(long_pages >= 3, "{long_pages} pages for 36 rows");
    assert!(
        long_pages > short_pages,
        "{long_pages} pages for 36 rows, {short_pages} for one"
    );
    assert!(contains(
        &long.pdf,
        format!("/Count {long_pages}").as_bytes()
    ));
    for row in &common::params(36).schedule {
        assert!(long.html.contains(&row.balance));
    }
}

#[test]
fn missing_parameter_is_named() {
    let dir = tempfile::tempdir().unwrap();
    write_template(
        dir.path(),
        "with_guarantor",
        "<html><body><p>{{ client.full_name }}, поручитель {{ client.guarantor }}</p></body></html>",
    );
    write_template(
        dir.path(),
        "with_top_level",
        "<html><body><p>{{ insurance_premium }}</p></body></html>",
    );
    write_template(
        dir.path(),
        "with_row_field",
        "<html><body>{% for row in schedule %}<p>{{ row.penalty }}</p>{% endfor %}</body></html>",
    );
    let agreements = Agreements::new(Templates::from_dir(dir.path()).unwrap()).unwrap();
    let params = common::params(3);
    for (template, variable) in [
        ("with_guarantor", "client.guarantor"),
        ("with_top_level", "insurance_premium"),
        ("with_row_field", "row.penalty"),
    ] {
        match agreements.render(template, &params) {
            Err(Error::MissingParameter {
                template: name,
                variable: missing,
            }) => {
                assert_eq!(name, template);
                assert_eq!(missing, variable);
            }
            other => panic!("{template}: expected a missing parameter, got {other:?}"),
        }
        let message = agreements
            .render_html(template, &params)
            .unwrap_err()
            .to_string();
        assert!(message.contains(variable), "{message}");
    }
}

#[test]
fn directory_templates_override_and_extend_the_builtin_ones() {
    let dir = tempfile::tempdir().unwrap();
    write_template(
        dir.path(),
        LOAN_AGREEMENT,
        "<html><body><h1>Договор № {{ contract_number }}</h1><p>{{ client.full_name }}</p></body></html>",
    );
    write_template(
        dir.path(),
        "restructuring",
        "<html><body><p>Реструктуризация для {{ client.full_name }}</p></body></html>",
    );
    std::fs::write(dir.path().join("notes.txt"), "not a template").unwrap();
    let templates = Templates::from_dir(dir.path()).unwrap();
    assert_eq!(
        templates.names().collect::<Vec<_>>(),
        vec![LOAN_AGREEMENT, "restructuring"]
    );
    let agreements = Agreements::new(templates).unwrap();
    let params = common::params(3);

    let overridden = agreements.render(LOAN_AGREEMENT, &params).unwrap();
    assert!(overridden
        .html
        .starts_with("<html><body><h1>Договор № ЗМ-2026-000123"));
    assert!(overridden.pdf.starts_with(b"%PDF"));
    assert_eq!(page_count(&overridden.pdf), 1);
    let added = agreements.render_html("restructuring", &params).unwrap();
    assert!(added.contains("Реструктуризация для Иванова Мария Сергеевна"));

    // The built-in PDF differs from the operator's.
    let builtin = Agreements::builtin()
        .unwrap()
        .render(LOAN_AGREEMENT, &params)
        .unwrap();
    assert_ne!(builtin.sha256, overridden.sha256);
}

#[test]
fn unknown_broken_and_malformed_templates_are_refused() {
    let agreements = Agreements::builtin().unwrap();
    assert!(matches!(
        agreements.render("no_such_agreement", &common::params(1)),
        Err(Error::TemplateNotFound(name)) if name == "no_such_agreement"
    ));

    let mut templates = Templates::builtin();
    templates.insert("broken", "<p>{% for row in schedule %}{{ row.date }}</p>");
    match Agreements::new(templates) {
        Err(Error::TemplateInvalid { name, .. }) => assert_eq!(name, "broken"),
        other => panic!("expected an invalid template, got {other:?}"),
    }

    let mut templates = Templates::builtin();
    templates.insert(
        "unclosed",
        "<html><body><p>{{ client.full_name }}</body></html>",
    );
    let agreements = Agreements::new(templates).unwrap();
    assert!(matches!(
        agreements.render("unclosed", &common::params(1)),
        Err(Error::Markup(_))
    ));

    let missing_dir = tempfile::tempdir().unwrap().path().join("absent");
    assert!(matches!(
        Templates::from_dir(&missing_dir),
        Err(Error::TemplateDir { path, .. }) if path == missing_dir
    ));
}

#[test]
fn parameters_are_escaped_and_bad_dates_refused() {
    let agreements = Agreements::builtin().unwrap();
    let mut params = common::params(2);
    params.lender.name = "ООО \"Заём & Ко\" <Север>".to_owned();
    let rendered = agreements.render(LOAN_AGREEMENT, &params).unwrap();
    assert!(rendered.html.contains("&amp; Ко"));
    assert!(!rendered.html.contains("<Север>"));

    params.contract_date = "15.12.2025".to_owned();
    match agreements.render(LOAN_AGREEMENT, &params) {
        Err(Error::Render { message, .. }) => assert!(message.contains("15.12.2025"), "{message}"),
        other => panic!("expected a render error, got {other:?}"),
    }
}

#[test]
fn renderer_and_store_can_be_shared_between_tasks() {
    fn shared<T: Send + Sync + 'static>() {}
    shared::<Agreements>();
    shared::<etr_documents::DocumentStore>();
}
