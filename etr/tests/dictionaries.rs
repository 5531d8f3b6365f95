//! Processing dictionaries end to end on the real broker and Postgres (e-wallet spec §1.3,
//! §3.1): a fresh platform synchronises them from the processing centre; an operator imports a
//! file over REST (a broken menu is refused naming the item and changes nothing); GraphQL reads
//! the menu, a phone number's operator and region and a payment's commission quote, which the
//! REST quote matches to the kopeck; the command line imports a file with a capacity CSV and
//! synchronises again.

mod support;

use serde_json::{json, Value};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

/// The file an operator imports: the processing centre's catalogue plus an internet provider
/// with its own commission profile — from the wallet 2.00 + 0.7 %, at most 100.00; from a card
/// 1.5 %, at least 10.00.
fn file_document() -> Value {
    let mut doc: Value =
        serde_json::from_str(etr_sagas::processing_centre::CATALOGUE).expect("the catalogue");
    doc["services"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "akado", "name": "АКАДО Телеком", "logo": "logos/akado.svg"}));
    doc["commission_profiles"].as_array_mut().unwrap().push(json!(
        {"id": "internet", "name": "Интернет", "currency": "RUB", "rules": [
            {"source": "wallet", "from": "0.00", "fixed": "2.00", "percent": "0.7", "max": "100.00"},
            {"source": "card", "from": "0.00", "percent": "1.5", "min": "10.00"}
        ]}
    ));
    let internet = doc["menu"][0]["items"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|i| i["id"] == "payment-internet")
        .expect("the internet folder");
    internet["items"].as_array_mut().unwrap().push(json!(
        {"id": "payment-internet-akado", "name": "АКАДО", "operation": "payment",
         "service": "akado", "commission_profile": "internet"}
    ));
    doc
}

async fn post_json(api: &Api, bearer: &str, path: &str, body: &Value) -> (u16, Value) {
    let resp = api
        .http
        .post(format!("{}{path}", api.base))
        .bearer_auth(bearer)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn versions(api: &Api, operator: &str) -> Vec<Value> {
    api.http
        .get(format!("{}/v1/operator/dictionaries", api.base))
        .bearer_auth(operator)
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

const QUOTE: &str = "query($service: String!, $amount: String!, $source: String!) {
  commissionQuote(service: $service, amount: $amount, source: $source) {
    service { id name } menuItem { id path } commissionProfile source
    amount commission total currency dictionariesVersion
  }
}";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dictionaries_are_imported_refused_read_and_quoted() {
    let env = Env::new("dictionaries").await;
    let _platform = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let operator = token("operator-1", Role::Operator);
    let auditor = token("auditor-1", Role::Auditor);

    // A fresh platform has synchronised the processing centre's dictionaries.
    let v = env
        .graphql(
            Some(&auditor),
            "{ dictionaryVersion { version source importedBy services menuItems } menu { operation rootId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        v["data"]["dictionaryVersion"],
        json!({"version": 1, "source": "processing-centre", "importedBy": "platform", "services": 11, "menuItems": 17}),
        "{v}"
    );
    assert_eq!(
        v["data"]["menu"],
        json!([
            {"operation": "PAYMENT", "rootId": "payment"},
            {"operation": "TOP_UP", "rootId": "top-up"},
            {"operation": "TRANSFER", "rootId": "transfer"}
        ])
    );

    // Only operators import.
    let document = file_document();
    let client_id = Uuid::new_v4().to_string();
    let client = token(&client_id, Role::Client);
    let (status, body) =
        post_json(&api, &client, "/v1/operator/dictionaries/import", &document).await;
    assert_eq!(status, 403, "{body}");

    // An operator imports the file: version 2.
    let (status, body) = post_json(
        &api,
        &operator,
        "/v1/operator/dictionaries/import",
        &document,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        (&body["version"], &body["source"], &body["imported_by"]),
        (&json!(2), &json!("rest"), &json!("operator:operator-1")),
        "{body}"
    );
    assert_eq!(body["counts"]["services"], 12);
    assert_eq!(body["counts"]["menu_items"], 18);

    // A menu with a top-up inside the Payment root is refused naming the item; nothing changes.
    let mut broken = document.clone();
    broken["menu"][0]["items"][2]["items"][2]["operation"] = json!("top_up");
    let (status, body) =
        post_json(&api, &operator, "/v1/operator/dictionaries/import", &broken).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "menu_operation_mismatch", "{body}");
    assert_eq!(
        body["error"]["item"],
        json!({"dictionary": "menu", "id": "payment-internet-akado", "path": "payment/payment-internet/payment-internet-akado"}),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("payment/payment-internet/payment-internet-akado"),
        "{body}"
    );
    // A fourth root is refused too; a malformed body is a 400 naming the field.
    let mut four_roots = document.clone();
    four_roots["menu"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "misc", "name": "Прочее", "operation": "payment", "items": []}));
    let (status, body) = post_json(
        &api,
        &operator,
        "/v1/operator/dictionaries/import",
        &four_roots,
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("menu_too_many_roots")),
        "{body}"
    );
    assert_eq!(body["error"]["item"]["path"], "misc");
    let mut unknown_field = document.clone();
    unknown_field["services"][0]["colour"] = json!("red");
    let (status, body) = post_json(
        &api,
        &operator,
        "/v1/operator/dictionaries/import",
        &unknown_field,
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("unknown_field")),
        "{body}"
    );
    let stored = versions(&api, &operator).await;
    assert_eq!(
        stored
            .iter()
            .map(|v| v["version"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );

    // GraphQL reads the menu (the roots are not items), services and phone numbers.
    let menu = env
        .graphql(
            Some(&client),
            "{ menu(operation: PAYMENT) { operation items { id name items { id path operation service { id name receiptTemplate logo } commissionProfile } } } }",
            json!({}),
        )
        .await;
    let sections = menu["data"]["menu"]
        .as_array()
        .unwrap_or_else(|| panic!("{menu}"));
    assert_eq!(sections.len(), 1);
    let folders: Vec<&str> = sections[0]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        folders,
        ["payment-mobile", "payment-utilities", "payment-internet"]
    );
    assert_eq!(
        sections[0]["items"][2]["items"][2],
        json!({"id": "payment-internet-akado", "path": "payment/payment-internet/payment-internet-akado",
               "operation": "PAYMENT",
               "service": {"id": "akado", "name": "АКАДО Телеком", "receiptTemplate": "default.check-render", "logo": "logos/akado.svg"},
               "commissionProfile": "internet"})
    );
    assert_eq!(
        sections[0]["items"][0]["items"][0]["service"]["receiptTemplate"],
        "mobile.check-render"
    );
    let phones = env
        .graphql(
            Some(&client),
            r#"{ mts: phoneNumberInfo(number: "+79161234567") { number operator region rangeFrom rangeTo }
                 beeline: phoneNumberInfo(number: "8 (903) 123-45-67") { operator }
                 none: phoneNumberInfo(number: "+79990000000") { operator } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        phones["data"]["mts"],
        json!({"number": "+79161234567", "operator": "МТС", "region": "г. Москва и Московская область",
               "rangeFrom": "79160000000", "rangeTo": "79169999999"}),
        "{phones}"
    );
    assert_eq!(phones["data"]["beeline"]["operator"], "Билайн");
    assert_eq!(phones["data"]["none"], Value::Null);
    let bad = env
        .graphql(
            Some(&client),
            r#"{ phoneNumberInfo(number: "12") { operator } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["code"], "PHONE_FORMAT",
        "{bad}"
    );
    let anonymous = env.graphql(None, "{ services { id } }", json!({})).await;
    assert_eq!(
        anonymous["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    let reference = env
        .graphql(
            Some(&client),
            r#"{ currencyRates(currency: "USD") { currency base date rate }
                 mapPoints(kind: ATM) { id latitude longitude kind }
                 commissionProfiles { id rules { source from to fixed percent min max } } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        reference["data"]["currencyRates"],
        json!([{"currency": "USD", "base": "RUB", "date": "2026-12-01", "rate": "78.9677"}]),
        "{reference}"
    );
    assert_eq!(
        reference["data"]["mapPoints"],
        json!([{"id": "msk-atm-arbat", "latitude": "55.750163", "longitude": "37.592950", "kind": "ATM"}])
    );
    let internet = reference["data"]["commissionProfiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "internet")
        .unwrap()
        .clone();
    assert_eq!(
        internet["rules"][0],
        json!({"source": "card", "from": "0.00", "to": null, "fixed": "0.00", "percent": "1.5", "min": "10.00", "max": null})
    );

    // The commission quote over REST for the client's wallet: exact to the kopeck.
    let wallet = api.open_wallet(&client_id, "w1").await;
    let quote_path = format!("/v1/clients/{client_id}/wallets/{wallet}/payments/quote");
    let quote = |body: Value| {
        let (api, client, path) = (&api, &client, &quote_path);
        async move { post_json(api, client, path, &body).await }
    };
    // From the wallet: 2.00 + 0.7 % of 1,234.50 = 10.6415 → 10.64.
    let (status, body) =
        quote(json!({"service": "akado", "amount": "1234.50", "source": "wallet"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({
            "operation": "payment",
            "service": {"id": "akado", "name": "АКАДО Телеком"},
            "menu_item": {"id": "payment-internet-akado", "path": "payment/payment-internet/payment-internet-akado", "name": "АКАДО"},
            "commission_profile": "internet",
            "source": "wallet",
            "amount": "1234.50",
            "commission": "10.64",
            "total": "1245.14",
            "currency": "RUB",
            "dictionaries_version": 2
        })
    );
    // From a card: 1.5 % of 1,234.50 = 18.5175 → 18.52.
    let (_, body) = quote(json!({"service": "akado", "amount": "1234.50", "source": "card"})).await;
    assert_eq!(
        (&body["commission"], &body["total"]),
        (&json!("18.52"), &json!("1253.02")),
        "{body}"
    );
    // Electricity from the wallet: 1 % of 2,500.50 = 25.005 → 25.00, half to even.
    let (_, body) =
        quote(json!({"service": "mosenergosbyt", "amount": "2500.50", "source": "wallet"})).await;
    assert_eq!(
        (&body["commission"], &body["total"]),
        (&json!("25.00"), &json!("2525.50")),
        "{body}"
    );
    // Refusals: a top-up service, a source the profile has no rule for, too many decimals,
    // another client's token, an unknown wallet.
    let (status, body) =
        quote(json!({"service": "card-top-up", "amount": "100", "source": "card"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("service_not_in_menu")),
        "{body}"
    );
    let (status, body) = quote(json!({"service": "akado", "amount": "100", "source": "sbp"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("unknown_payment_source")),
        "{body}"
    );
    let (status, body) =
        quote(json!({"service": "mts", "amount": "15000.00", "source": "card"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("commission_no_rule")),
        "{body}"
    );
    let (status, body) =
        quote(json!({"service": "akado", "amount": "1.001", "source": "wallet"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("amount_too_precise")),
        "{body}"
    );
    let stranger = token(&Uuid::new_v4().to_string(), Role::Client);
    let (status, _) = post_json(
        &api,
        &stranger,
        &quote_path,
        &json!({"service": "akado", "amount": "1", "source": "wallet"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = post_json(
        &api,
        &client,
        &format!(
            "/v1/clients/{client_id}/wallets/{}/payments/quote",
            Uuid::new_v4()
        ),
        &json!({"service": "akado", "amount": "1", "source": "wallet"}),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("wallet_not_found")),
        "{body}"
    );

    // The same quote over GraphQL.
    let q = env
        .graphql(
            Some(&client),
            QUOTE,
            json!({"service": "akado", "amount": "1234.50", "source": "wallet"}),
        )
        .await;
    assert_eq!(
        q["data"]["commissionQuote"],
        json!({
            "service": {"id": "akado", "name": "АКАДО Телеком"},
            "menuItem": {"id": "payment-internet-akado", "path": "payment/payment-internet/payment-internet-akado"},
            "commissionProfile": "internet", "source": "wallet",
            "amount": "1234.50", "commission": "10.64", "total": "1245.14", "currency": "RUB",
            "dictionariesVersion": 2
        }),
        "{q}"
    );
    let q = env
        .graphql(
            Some(&client),
            QUOTE,
            json!({"service": "mts", "amount": "15000.00", "source": "card"}),
        )
        .await;
    assert_eq!(
        q["errors"][0]["extensions"]["code"], "COMMISSION_NO_RULE",
        "{q}"
    );

    // A payment is charged the commission it was quoted: the wallet gives amount +
    // commission, the operation shows both.
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client_id}/wallets/{wallet}/top-ups"),
            Some("top-up"),
            r#"{"amount":"3000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, _, paid) = api
        .post(
            &format!("/v1/clients/{client_id}/wallets/{wallet}/payments?wait=20"),
            Some("pay-akado"),
            r#"{"amount":"1234.50","currency":"RUB","service_id":"akado","attributes":{"account":"100200"}}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{paid}");
    let held: Vec<&Value> = paid["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["event_type"] == "FundsHeld" || e["event_type"] == "HoldCaptured")
        .collect();
    assert_eq!(held.len(), 2, "{paid}");
    let payment_id = paid["events"][0]["aggregate_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = env
        .graphql(
            Some(&client),
            "query($p: UUID!, $w: UUID!, $pos: PositionInput) { operation(id: $p, minPosition: $pos) { amount commission statusCode } wallet(id: $w, minPosition: $pos) { balance } }",
            json!({"p": payment_id, "w": wallet, "pos": paid["position"]}),
        )
        .await;
    assert_eq!(
        seen["data"],
        json!({"operation": {"amount": "1234.50", "commission": "10.64", "statusCode": 6},
               "wallet": {"balance": "1754.86"}}),
        "{seen}"
    );

    // The command line imports a file with capacity ranges from a CSV: version 3.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dictionaries.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let csv = dir.path().join("ranges.csv");
    std::fs::write(
        &csv,
        "АВС/ DEF;От;До;Емкость;Оператор;Регион\n\
         999;0000000;0999999;1000000;ООО \"Скартел\";г. Москва и Московская область\n\
         916;0000000;9999999;10000000;ПАО \"МТС\";г. Москва и Московская область\n",
    )
    .unwrap();
    let out = env
        .command(&[
            "dictionaries",
            "import",
            file.to_str().unwrap(),
            "--phone-ranges",
            csv.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let imported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&imported["version"], &imported["counts"]["phone_ranges"]),
        (&json!(3), &json!(2))
    );
    let phones = env
        .graphql(
            Some(&client),
            r#"{ yota: phoneNumberInfo(number: "+79990000001") { operator } beeline: phoneNumberInfo(number: "+79031234567") { operator } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        phones["data"]["yota"]["operator"], "ООО \"Скартел\"",
        "{phones}"
    );
    assert_eq!(phones["data"]["beeline"], Value::Null, "{phones}");
    // A broken file is refused with its code and item, nothing written.
    std::fs::write(&file, broken.to_string()).unwrap();
    let out = env
        .command(&["dictionaries", "import", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("menu_operation_mismatch")
            && stderr.contains("payment/payment-internet/payment-internet-akado"),
        "{stderr}"
    );

    // A sync from the processing centre, over REST and on the command line.
    let (status, body) = post_json(
        &api,
        &operator,
        "/v1/operator/dictionaries/sync",
        &json!({}),
    )
    .await;
    assert_eq!(
        (status, &body["version"], &body["source"]),
        (201, &json!(4), &json!("processing-centre")),
        "{body}"
    );
    let out = env.command(&["dictionaries", "sync"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let synced: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(synced["version"], 5);
    let (status, body) =
        quote(json!({"service": "akado", "amount": "100", "source": "wallet"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("service_not_in_menu")),
        "{body}"
    );
    assert_eq!(versions(&api, &operator).await.len(), 5);
}
