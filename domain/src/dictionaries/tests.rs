//! Whole documents: given a document, when it is parsed (and quoted), then this.

use super::*;
use crate::money::Currency;
use serde_json::json;

/// A small, complete document: two sources, four services, two profiles, three roots.
fn document() -> serde_json::Value {
    json!({
        "services": [
            {"id": "mts", "name": "МТС", "receipt_template": "mobile.check-render", "logo": "logos/mts.svg"},
            {"id": "beeline", "name": "Билайн", "receipt_template": "mobile.check-render"},
            {"id": "mosenergosbyt", "name": "Мосэнергосбыт"},
            {"id": "card-top-up", "name": "Пополнение с карты"},
            {"id": "wallet-transfer", "name": "Перевод на кошелёк"}
        ],
        "payment_sources": [
            {"id": "wallet", "name": "Кошелёк"},
            {"id": "card", "name": "Банковская карта"}
        ],
        "commission_profiles": [
            {"id": "mobile", "name": "Мобильная связь", "currency": "RUB", "rules": [
                {"source": "wallet", "from": "0.00"},
                {"source": "card", "from": "0.00", "to": "15000.00", "percent": "1.5", "min": "10.00"}
            ]},
            {"id": "utilities", "name": "ЖКХ", "currency": "RUB", "rules": [
                {"source": "wallet", "from": "0.00", "to": "5000.00", "percent": "1", "min": "5.00"},
                {"source": "wallet", "from": "5000.00", "percent": "0.5", "max": "150.00"}
            ]}
        ],
        "menu": [
            {"id": "payment", "name": "Платёж", "operation": "payment", "items": [
                {"id": "payment-mobile", "name": "Мобильная связь", "operation": "payment", "items": [
                    {"id": "payment-mobile-mts", "name": "МТС", "operation": "payment", "service": "mts", "commission_profile": "mobile"},
                    {"id": "payment-mobile-beeline", "name": "Билайн", "operation": "payment", "service": "beeline", "commission_profile": "mobile"}
                ]},
                {"id": "payment-utilities", "name": "ЖКХ", "operation": "payment", "items": [
                    {"id": "payment-utilities-electricity", "name": "Электроэнергия", "operation": "payment", "service": "mosenergosbyt", "commission_profile": "utilities"}
                ]},
                {"id": "payment-popular-mts", "name": "МТС (популярное)", "operation": "payment", "service": "mts", "commission_profile": "utilities"}
            ]},
            {"id": "top-up", "name": "Пополнение", "operation": "top_up", "items": [
                {"id": "top-up-card", "name": "С банковской карты", "operation": "top_up", "service": "card-top-up", "commission_profile": "mobile"}
            ]},
            {"id": "transfer", "name": "Перевод", "operation": "transfer", "items": [
                {"id": "transfer-wallet", "name": "На кошелёк", "operation": "transfer", "service": "wallet-transfer", "commission_profile": "utilities"}
            ]}
        ],
        "receipt_templates": [
            {"name": "default.check-render", "body": "Чек № $operation.id\nСумма: $operation.amount"},
            {"name": "mobile.check-render", "body": "Оплата связи: $operation.attributes.phone"}
        ],
        "currency_rates": [
            {"currency": "USD", "rate": "78.9677", "date": "2026-12-03"},
            {"currency": "EUR", "base": "RUB", "rate": "91.4263", "date": "2026-12-03"}
        ],
        "map_points": [
            {"id": "msk-tverskaya-7", "name": "Офис на Тверской", "address": "Москва, ул. Тверская, 7",
             "latitude": "55.757800", "longitude": "37.611900", "kind": "office"}
        ],
        "phone_ranges": [
            {"from": "79160000000", "to": "79169999999", "operator": "МТС", "region": "Москва и Московская область"}
        ]
    })
}

fn parse(value: serde_json::Value) -> Result<Dictionaries, DictionaryError> {
    let doc: Document = serde_json::from_value(value).expect("the document's shape");
    Dictionaries::parse(&doc)
}

/// Given the document changed by `change`, when parsed, then refused with `code` naming
/// `path`.
fn then_refused(change: impl FnOnce(&mut serde_json::Value), code: &str, path: &str) {
    let mut doc = document();
    change(&mut doc);
    let e = parse(doc).expect_err("refused");
    assert_eq!(e.code(), code, "{e}");
    assert_eq!(e.item().map(|i| i.path.as_str()), Some(path), "{e}");
    assert!(
        e.to_string().contains(path),
        "the message names the item: {e}"
    );
}

fn id<T>(parse: fn(&str) -> Result<T, IdError>, raw: &str) -> T {
    parse(raw).expect("an id")
}

fn quote(
    catalogue: &Catalogue,
    service: &str,
    item: Option<&str>,
    amount: &str,
    source: &str,
) -> Result<Quote, DictionaryError> {
    let service = id(ServiceId::parse, service);
    let item = item.map(|i| id(MenuItemId::parse, i));
    let source = id(SourceId::parse, source);
    catalogue.quote(&QuoteRequest {
        operation: OperationType::Payment,
        service: &service,
        menu_item: item.as_ref(),
        amount: Money::parse_positive(amount, "RUB").expect("an amount"),
        source: &source,
    })
}

#[test]
fn given_a_complete_document_when_parsed_then_every_dictionary_is_kept() {
    let d = parse(document()).unwrap();
    assert_eq!(
        d.counts(),
        Counts {
            services: 5,
            payment_sources: 2,
            commission_profiles: 2,
            commission_rules: 4,
            menu_items: 11,
            currency_rates: 2,
            map_points: 1,
            phone_ranges: 1,
            receipt_templates: 2,
        }
    );
    let c = &d.catalogue;
    let ids: Vec<&str> = c.services().map(|s| s.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "mts",
            "beeline",
            "mosenergosbyt",
            "card-top-up",
            "wallet-transfer"
        ]
    );
    let roots: Vec<OperationType> = c.menu.roots.iter().map(|r| r.operation).collect();
    assert_eq!(
        roots,
        [
            OperationType::Payment,
            OperationType::TopUp,
            OperationType::Transfer
        ]
    );
    let walk = c.menu.walk();
    assert_eq!(
        walk[2].item.path,
        "payment/payment-mobile/payment-mobile-mts"
    );
    assert_eq!(
        walk[2].parent.map(MenuItemId::as_str),
        Some("payment-mobile")
    );
    assert_eq!(walk[2].position, 0);
    // Receipt templates: a service's own, else the default.
    let (name, body) = c.receipt_template(&id(ServiceId::parse, "mts")).unwrap();
    assert_eq!(
        (name.as_str(), body),
        (
            "mobile.check-render",
            "Оплата связи: $operation.attributes.phone"
        )
    );
    let (name, _) = c
        .receipt_template(&id(ServiceId::parse, "mosenergosbyt"))
        .unwrap();
    assert_eq!(name.as_str(), DEFAULT_TEMPLATE);
    assert_eq!(d.currency_rates[0].base.as_str(), "RUB");
    assert_eq!(d.currency_rates[0].rate.to_string(), "78.9677");
    assert_eq!(d.map_points[0].latitude.to_string(), "55.757800");
    assert_eq!(d.map_points[0].kind, PointKind::Office);
}

#[test]
fn given_a_payment_when_quoted_then_the_first_menu_item_of_the_service_and_exact_figures() {
    let d = parse(document()).unwrap();
    // MTS from a card: 1.5 % of 1,000.00 = 15.00 (above the 10.00 minimum).
    let q = quote(&d.catalogue, "mts", None, "1000.00", "card").unwrap();
    assert_eq!(q.menu_item.as_str(), "payment-mobile-mts");
    assert_eq!(q.menu_path, "payment/payment-mobile/payment-mobile-mts");
    assert_eq!(q.commission_profile.as_str(), "mobile");
    assert_eq!(q.service_name, "МТС");
    assert_eq!(
        (
            q.amount.to_string(),
            q.commission.to_string(),
            q.total.to_string()
        ),
        (
            "1000.00 RUB".into(),
            "15.00 RUB".into(),
            "1015.00 RUB".into()
        )
    );
    // 1.5 % of 100.00 = 1.50, raised to the minimum 10.00.
    let q = quote(&d.catalogue, "mts", None, "100", "card").unwrap();
    assert_eq!(q.commission.amount.to_string(), "10.00");
    // From the wallet: no commission.
    let q = quote(&d.catalogue, "mts", None, "100.00", "wallet").unwrap();
    assert_eq!(
        (q.commission.amount.to_string(), q.total.amount.to_string()),
        ("0.00".into(), "100.00".into())
    );
    // The same service through another item: that item's profile. 1 % of 1,234.50 = 12.345 → 12.34.
    let q = quote(
        &d.catalogue,
        "mts",
        Some("payment-popular-mts"),
        "1234.50",
        "wallet",
    )
    .unwrap();
    assert_eq!(q.commission_profile.as_str(), "utilities");
    assert_eq!(q.commission.amount.to_string(), "12.34");
    assert_eq!(q.total.amount.to_string(), "1246.84");
    assert_eq!(q.total.currency, Currency::Rub);
}

#[test]
fn given_a_quote_the_catalogue_cannot_give_then_it_is_refused_with_its_reason() {
    let d = parse(document()).unwrap();
    let c = &d.catalogue;
    let code = |r: Result<Quote, DictionaryError>| r.unwrap_err().code();
    // Not a payment service (a top-up), unknown, or an item of another service.
    assert_eq!(
        code(quote(c, "card-top-up", None, "10", "card")),
        "service_not_in_menu"
    );
    assert_eq!(
        code(quote(c, "megafon", None, "10", "card")),
        "service_not_in_menu"
    );
    assert_eq!(
        code(quote(
            c,
            "mts",
            Some("payment-mobile-beeline"),
            "10",
            "card"
        )),
        "menu_item_not_found"
    );
    assert_eq!(
        code(quote(c, "mts", Some("payment-mobile"), "10", "card")),
        "menu_item_not_found"
    );
    // A source the dictionary does not have; one the profile has no rule for.
    assert_eq!(
        code(quote(c, "mts", None, "10", "sbp")),
        "unknown_payment_source"
    );
    assert_eq!(
        code(quote(c, "mosenergosbyt", None, "10", "card")),
        "source_not_available"
    );
    // Above the card's last range.
    assert_eq!(
        code(quote(c, "mts", None, "15000.00", "card")),
        "commission_no_rule"
    );
    let e = quote(c, "mts", None, "15000.00", "card").unwrap_err();
    assert!(e.item().is_none());
    assert!(e.to_string().contains("15000.00 RUB"), "{e}");
}

#[test]
fn given_a_menu_with_a_fourth_root_then_it_is_refused_naming_it() {
    then_refused(
        |d| {
            d["menu"].as_array_mut().unwrap().push(json!(
                {"id": "other", "name": "Прочее", "operation": "payment", "items": []}
            ))
        },
        "menu_too_many_roots",
        "other",
    );
}

#[test]
fn given_two_roots_of_one_type_then_the_second_is_refused() {
    then_refused(
        |d| d["menu"][2]["operation"] = json!("top_up"),
        "menu_root_duplicate",
        "transfer",
    );
}

#[test]
fn given_a_root_that_is_a_service_then_it_is_refused() {
    then_refused(
        |d| {
            d["menu"][1]["service"] = json!("card-top-up");
            d["menu"][1]["commission_profile"] = json!("mobile");
        },
        "menu_root_not_folder",
        "top-up",
    );
}

#[test]
fn given_an_item_without_an_operation_type_then_it_is_refused_by_its_path() {
    then_refused(
        |d| {
            d["menu"][0]["items"][1]["items"][0]
                .as_object_mut()
                .unwrap()
                .remove("operation");
        },
        "menu_operation_missing",
        "payment/payment-utilities/payment-utilities-electricity",
    );
    then_refused(
        |d| d["menu"][0]["operation"] = json!("refund"),
        "menu_operation_unknown",
        "payment",
    );
}

#[test]
fn given_a_top_up_inside_the_payment_root_then_it_is_refused_by_its_path() {
    then_refused(
        |d| d["menu"][0]["items"][0]["items"][1]["operation"] = json!("top_up"),
        "menu_operation_mismatch",
        "payment/payment-mobile/payment-mobile-beeline",
    );
    // A folder of another type under a root is refused at the folder.
    then_refused(
        |d| d["menu"][2]["items"][0]["operation"] = json!("payment"),
        "menu_operation_mismatch",
        "transfer/transfer-wallet",
    );
}

#[test]
fn given_a_service_item_naming_what_the_document_lacks_then_it_is_refused() {
    then_refused(
        |d| d["menu"][0]["items"][0]["items"][0]["service"] = json!("megafon"),
        "menu_unknown_service",
        "payment/payment-mobile/payment-mobile-mts",
    );
    then_refused(
        |d| d["menu"][0]["items"][0]["items"][0]["commission_profile"] = json!("premium"),
        "menu_unknown_commission_profile",
        "payment/payment-mobile/payment-mobile-mts",
    );
    then_refused(
        |d| {
            d["menu"][0]["items"][0]["items"][0]
                .as_object_mut()
                .unwrap()
                .remove("commission_profile");
        },
        "menu_commission_profile_missing",
        "payment/payment-mobile/payment-mobile-mts",
    );
}

#[test]
fn given_a_malformed_tree_then_it_is_refused_by_the_items_path() {
    then_refused(
        |d| {
            d["menu"][0]["items"][2]["items"] =
                json!([{"id": "x", "name": "x", "operation": "payment"}])
        },
        "menu_item_invalid",
        "payment/payment-popular-mts",
    );
    then_refused(
        |d| d["menu"][0]["items"][0]["commission_profile"] = json!("mobile"),
        "menu_item_invalid",
        "payment/payment-mobile",
    );
    then_refused(
        |d| d["menu"][1]["items"][0]["id"] = json!("payment-mobile-mts"),
        "dictionary_duplicate",
        "top-up/payment-mobile-mts",
    );
    then_refused(
        |d| d["menu"][1]["items"][0]["id"] = json!("top up/card"),
        "dictionary_invalid_field",
        "top-up/items[0]",
    );
    // Nine levels of folders.
    let mut deep = json!({"id": "level-9", "name": "9", "operation": "payment"});
    for level in (2..=8).rev() {
        deep = json!({"id": format!("level-{level}"), "name": "n", "operation": "payment", "items": [deep]});
    }
    then_refused(
        move |d| d["menu"][0]["items"] = json!([deep]),
        "menu_item_invalid",
        "payment/level-2/level-3/level-4/level-5/level-6/level-7/level-8/level-9",
    );
}

#[test]
fn given_receipt_templates_without_the_default_then_the_document_is_refused() {
    let mut doc = document();
    doc["receipt_templates"].as_array_mut().unwrap().remove(0);
    let e = parse(doc).unwrap_err();
    assert_eq!(e.code(), "default_receipt_template_missing");
    then_refused(
        |d| d["services"][2]["receipt_template"] = json!("utilities.check-render"),
        "unknown_receipt_template",
        "mosenergosbyt",
    );
    then_refused(
        |d| d["receipt_templates"][1]["body"] = json!("  "),
        "dictionary_invalid_field",
        "mobile.check-render",
    );
}

#[test]
fn given_a_receipt_template_outside_the_rendered_subset_then_it_is_refused_naming_it() {
    let mut doc = document();
    doc["receipt_templates"][1]["body"] = json!("Связь\n#if($operation.id)x#end");
    let e = parse(doc).unwrap_err();
    assert_eq!(e.code(), "receipt_template_invalid", "{e}");
    assert!(matches!(
        &e,
        DictionaryError::ReceiptTemplate {
            template_code: "unsupported_directive",
            line: 2,
            ..
        }
    ));
    then_refused(
        |d| d["receipt_templates"][0]["body"] = json!("$operation.password"),
        "receipt_template_invalid",
        "default.check-render",
    );
}

#[test]
fn given_duplicates_or_malformed_reference_data_then_the_item_is_named() {
    then_refused(
        |d| d["services"][1]["id"] = json!("mts"),
        "dictionary_duplicate",
        "mts",
    );
    then_refused(
        |d| d["payment_sources"][1]["name"] = json!(""),
        "dictionary_invalid_field",
        "card",
    );
    then_refused(
        |d| d["currency_rates"][1]["rate"] = json!("0"),
        "dictionary_invalid_field",
        "currency_rates[1]",
    );
    then_refused(
        |d| d["currency_rates"][1]["currency"] = json!("USD"),
        "dictionary_duplicate",
        "USD/RUB@2026-12-03",
    );
    then_refused(
        |d| d["map_points"][0]["latitude"] = json!("95.0"),
        "dictionary_invalid_field",
        "msk-tverskaya-7",
    );
    then_refused(
        |d| d["map_points"][0]["kind"] = json!("kiosk"),
        "dictionary_invalid_field",
        "msk-tverskaya-7",
    );
    then_refused(
        |d| {
            d["phone_ranges"].as_array_mut().unwrap().push(json!(
                {"from": "79169000000", "to": "79169000999", "operator": "Другой", "region": "Москва"}
            ))
        },
        "phone_ranges_overlap",
        "79169000000-79169000999",
    );
    then_refused(
        |d| d["commission_profiles"][1]["rules"][1]["from"] = json!("5000.01"),
        "commission_ranges_gap",
        "utilities/rules[1]",
    );
}

#[test]
fn the_wire_form_refuses_unknown_fields_and_number_amounts() {
    let mut doc = document();
    doc["services"][0]["colour"] = json!("red");
    assert!(serde_json::from_value::<Document>(doc).is_err());
    let mut doc = document();
    doc["commission_profiles"][0]["rules"][0]["from"] = json!(0);
    assert!(serde_json::from_value::<Document>(doc).is_err());
    // Rates, points and ranges may be left out.
    let mut doc = document();
    for key in ["currency_rates", "map_points", "phone_ranges"] {
        doc.as_object_mut().unwrap().remove(key);
    }
    let d = parse(doc).unwrap();
    assert_eq!(d.counts().map_points, 0);
}

#[test]
fn a_wallet_payments_commission_is_its_services_menu_items_and_none_outside_the_menu() {
    let c = parse(document()).unwrap().catalogue;
    let rub = |a: &str| Money::parse_positive(a, "RUB").unwrap();
    // Utilities from the wallet: 1 %, at least 5.00.
    assert_eq!(
        c.payment_commission(
            "mosenergosbyt",
            rub("2500.50"),
            crate::limits::Source::Wallet
        )
        .unwrap(),
        Some(rub("25.00"))
    );
    assert_eq!(
        c.payment_commission(
            "mosenergosbyt",
            rub("100.00"),
            crate::limits::Source::Wallet
        )
        .unwrap(),
        Some(rub("5.00"))
    );
    // Mobile from the wallet is free: no commission rather than a zero one.
    assert_eq!(
        c.payment_commission("mts", rub("100.00"), crate::limits::Source::Wallet)
            .unwrap(),
        None
    );
    // A service the menu does not have, or not an id at all.
    assert_eq!(
        c.payment_commission("unknown-shop", rub("100.00"), crate::limits::Source::Wallet)
            .unwrap(),
        None
    );
    assert_eq!(
        c.payment_commission("no spaces", rub("100.00"), crate::limits::Source::Wallet)
            .unwrap(),
        None
    );
}
