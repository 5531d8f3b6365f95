//! The processing dictionaries on the real Postgres server (e-wallet spec §1.3, §3.1), each
//! test on a fresh database dropped at its end: every import is one version, the earlier ones
//! kept; a refused document or an unreachable processing centre writes nothing.

use etr_domain::dictionaries::{Dictionaries, Document, ProcessingCentre};
use etr_domain::ports::BoxFuture;
use etr_infra::dictionaries::{self as store, Catalogues};
use etr_infra::Error;
use serde_json::json;

fn document() -> serde_json::Value {
    json!({
        "services": [
            {"id": "mts", "name": "МТС", "receipt_template": "mobile.check-render", "logo": "logos/mts.svg"},
            {"id": "mosenergosbyt", "name": "Мосэнергосбыт"}
        ],
        "payment_sources": [{"id": "wallet", "name": "Кошелёк"}, {"id": "card", "name": "Банковская карта"}],
        "commission_profiles": [
            {"id": "mobile", "name": "Связь", "currency": "RUB", "rules": [
                {"source": "card", "from": "0.00", "to": "15000.00", "percent": "1.5", "min": "10.00"},
                {"source": "wallet", "from": "0.00"}
            ]},
            {"id": "utilities", "name": "ЖКУ", "currency": "RUB", "rules": [
                {"source": "wallet", "from": "0.00", "to": "5000.00", "percent": "1.00", "min": "5.00"},
                {"source": "wallet", "from": "5000.00", "fixed": "10", "percent": "0.5", "max": "150.00"}
            ]}
        ],
        "menu": [
            {"id": "payment", "name": "Платёж", "operation": "payment", "items": [
                {"id": "payment-mobile", "name": "Связь", "operation": "payment", "items": [
                    {"id": "payment-mobile-mts", "name": "МТС", "operation": "payment", "service": "mts", "commission_profile": "mobile"}
                ]},
                {"id": "payment-electricity", "name": "Электроэнергия", "operation": "payment", "service": "mosenergosbyt", "commission_profile": "utilities"}
            ]},
            {"id": "transfer", "name": "Перевод", "operation": "transfer", "items": []}
        ],
        "receipt_templates": [
            {"name": "default.check-render", "body": "Чек № $operation.id"},
            {"name": "mobile.check-render", "body": "Связь: $operation.attributes.phone"}
        ],
        "currency_rates": [
            {"currency": "USD", "rate": "78.9677", "date": "2026-12-01"},
            {"currency": "EUR", "base": "USD", "rate": "1.1578", "date": "2026-12-01"}
        ],
        "map_points": [
            {"id": "msk-atm-arbat", "name": "Банкомат на Арбате", "address": "Москва, ул. Арбат, 24",
             "latitude": "55.750163", "longitude": "37.592950", "kind": "atm"},
            {"id": "msk-office", "name": "Офис", "address": "Москва, ул. Тверская, 7",
             "latitude": "55.757862", "longitude": "37.611427", "kind": "office"}
        ],
        "phone_ranges": [
            {"from": "79160000000", "to": "79169999999", "operator": "МТС", "region": "г. Москва и Московская область"},
            {"from": "79030000000", "to": "79039999999", "operator": "Билайн", "region": "г. Москва и Московская область"}
        ]
    })
}

fn doc(value: serde_json::Value) -> Document {
    serde_json::from_value(value).expect("the document's shape")
}

/// Rows of every dictionary table, for "nothing changed" comparisons.
async fn rows(pool: &sqlx::PgPool) -> Vec<i64> {
    let mut out = Vec::new();
    for table in [
        "dictionary_versions",
        "dictionary_services",
        "dictionary_payment_sources",
        "dictionary_commission_profiles",
        "dictionary_commission_rules",
        "dictionary_menu_items",
        "dictionary_currency_rates",
        "dictionary_map_points",
        "dictionary_phone_ranges",
        "dictionary_receipt_templates",
    ] {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(pool)
            .await
            .unwrap();
        out.push(n);
    }
    out
}

/// A processing centre answering with a fixed document, or not at all.
struct Centre(Result<Document, String>);

impl ProcessingCentre for Centre {
    fn dictionaries(&self) -> BoxFuture<'_, Result<Document, String>> {
        Box::pin(async move { self.0.clone() })
    }
}

#[tokio::test]
async fn every_import_is_a_version_and_the_catalogue_reads_back_as_imported() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_dictionaries_versions")
        .await
        .expect("a fresh database on the local Postgres server");

    // Given nothing stored
    assert_eq!(store::current_version(&pool).await.unwrap(), None);
    let catalogues = Catalogues::default();
    assert!(catalogues.current(&pool).await.unwrap().is_none());

    // When a document is imported, then it is version 1 with its counts and source
    let first = doc(document());
    let imported = store::import_document(&pool, &first, "file:first.json", "cli")
        .await
        .unwrap();
    assert_eq!(imported.version, 1);
    assert_eq!(
        (
            imported.counts.services,
            imported.counts.commission_rules,
            imported.counts.menu_items,
            imported.counts.phone_ranges
        ),
        (2, 4, 5, 2)
    );
    let versions = store::versions(&pool, 10).await.unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(
        (
            versions[0].source.as_str(),
            versions[0].imported_by.as_str()
        ),
        ("file:first.json", "cli")
    );
    assert_eq!(versions[0].counts, imported.counts);

    // And the catalogue reads back equal to what was parsed
    let parsed = Dictionaries::parse(&first).unwrap();
    assert_eq!(store::catalogue(&pool, 1).await.unwrap(), parsed.catalogue);
    let current = catalogues.current(&pool).await.unwrap().unwrap();
    assert_eq!(current.version, 1);
    assert_eq!(current.catalogue, parsed.catalogue);

    // And rates, points and phone numbers are read from it
    let rates = store::rates(&pool, 1, None).await.unwrap();
    assert_eq!(
        rates
            .iter()
            .map(|r| format!("{}/{} {} {}", r.currency, r.base, r.rate_date, r.rate))
            .collect::<Vec<_>>(),
        ["USD/RUB 2026-12-01 78.9677", "EUR/USD 2026-12-01 1.1578"]
    );
    let atms = store::map_points(&pool, 1, Some("atm")).await.unwrap();
    assert_eq!(atms.len(), 1);
    assert_eq!(
        (atms[0].latitude.to_string(), atms[0].longitude.to_string()),
        ("55.750163".into(), "37.592950".into())
    );
    let mts = store::phone_range(&pool, 1, 79161234567)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (mts.operator.as_str(), mts.number_from),
        ("МТС", 79160000000)
    );
    assert_eq!(
        store::phone_range(&pool, 1, 79039999999)
            .await
            .unwrap()
            .unwrap()
            .operator,
        "Билайн"
    );
    for outside in [79040000000, 79170000000, 79000000000, 7916123456] {
        assert!(
            store::phone_range(&pool, 1, outside)
                .await
                .unwrap()
                .is_none(),
            "{outside}"
        );
    }

    // When a second document is imported, then it is current and the first is kept
    let mut changed = document();
    changed["services"][0]["name"] = json!("МТС (Москва)");
    changed["phone_ranges"] = json!([]);
    let second = store::import_document(&pool, &doc(changed), "rest", "operator:op-1")
        .await
        .unwrap();
    assert_eq!(second.version, 2);
    let current = catalogues.current(&pool).await.unwrap().unwrap();
    assert_eq!(current.version, 2);
    let name = |c: &etr_domain::dictionaries::Catalogue| {
        c.services
            .values()
            .find(|s| s.id.as_str() == "mts")
            .map(|s| s.name.clone())
    };
    assert_eq!(name(&current.catalogue).as_deref(), Some("МТС (Москва)"));
    assert_eq!(
        name(&store::catalogue(&pool, 1).await.unwrap()).as_deref(),
        Some("МТС")
    );
    assert!(store::phone_range(&pool, 2, 79161234567)
        .await
        .unwrap()
        .is_none());
    assert!(store::phone_range(&pool, 1, 79161234567)
        .await
        .unwrap()
        .is_some());
    let versions: Vec<i64> = store::versions(&pool, 10)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(versions, [2, 1]);

    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}

#[tokio::test]
async fn a_refused_document_or_an_unreachable_centre_changes_nothing() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_dictionaries_refused")
        .await
        .expect("a fresh database on the local Postgres server");
    store::import_document(&pool, &doc(document()), "file:first.json", "cli")
        .await
        .unwrap();
    let before = rows(&pool).await;

    // Given a menu with a transfer item under the payment root
    let mut broken = document();
    broken["menu"][0]["items"][0]["items"][0]["operation"] = json!("transfer");
    // When it is imported, then it is refused naming the item, and nothing is written
    match store::import_document(&pool, &doc(broken.clone()), "rest", "operator:op-1").await {
        Err(Error::Dictionary(e)) => {
            assert_eq!(e.code(), "menu_operation_mismatch");
            assert_eq!(
                e.item().map(|i| i.path.as_str()),
                Some("payment/payment-mobile/payment-mobile-mts")
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(rows(&pool).await, before);

    // And the same from the processing centre
    match store::sync(&pool, &Centre(Ok(doc(broken))), "platform").await {
        Err(Error::Dictionary(e)) => assert_eq!(e.code(), "menu_operation_mismatch"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match store::sync(&pool, &Centre(Err("gateway timeout".into())), "platform").await {
        Err(Error::Unavailable { reason, .. }) => assert_eq!(reason, "gateway timeout"),
        other => panic!("expected the centre unavailable, got {other:?}"),
    }
    assert_eq!(rows(&pool).await, before);

    // A good sync is the next version, recorded as from the processing centre
    let synced = store::sync(&pool, &Centre(Ok(doc(document()))), "operator:op-2")
        .await
        .unwrap();
    assert_eq!(synced.version, 2);
    let v = store::version(&pool, 2).await.unwrap().unwrap();
    assert_eq!(
        (v.source.as_str(), v.imported_by.as_str()),
        (store::FROM_PROCESSING_CENTRE, "operator:op-2")
    );

    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}

#[tokio::test]
async fn a_fresh_platform_syncs_once() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_dictionaries_ensure")
        .await
        .expect("a fresh database on the local Postgres server");
    let centre = Centre(Ok(doc(document())));
    // Two processes starting together write one version.
    let (a, b) = tokio::join!(store::ensure(&pool, &centre), store::ensure(&pool, &centre));
    let written = [a.unwrap(), b.unwrap()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
    assert_eq!(written.len(), 1, "{written:?}");
    assert_eq!(written[0].version, 1);
    assert!(store::ensure(&pool, &centre).await.unwrap().is_none());
    assert_eq!(store::versions(&pool, 10).await.unwrap().len(), 1);
    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}
