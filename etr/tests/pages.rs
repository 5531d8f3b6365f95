//! The platform's web pages in headless Chromium with the network unplugged (see
//! `support/browser.rs`): GraphiQL at the query API's `/` runs a wallet query with a client's
//! token (typed into the token field, or given as `?token=`) and shows the balance, and a
//! subscription shows a payment's status changes; the REST
//! API reference at the command API's `/docs` lists every operation of `/openapi.json` and its
//! "Try it out" tops a wallet up. Every page and asset is fetched over HTTP and searched for
//! absolute URLs: only hosts the crates' `assets/HOSTS` list (identifiers and links in
//! comments, never fetched) may appear, and the platform's own files name none.
//!
//! `ETR_UPDATE_SCREENSHOTS=1` also writes the pages' screenshots to `docs/screenshots/` (the
//! README shows them); they are always kept under `target/browser-tests/`.

mod support;

use etr_infra::web;
use etr_query_api::auth::Role;
use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;
use support::browser::{artifacts_dir, Browser};
use support::{token, Api, Env};
use uuid::Uuid;

/// How long a page may take to show what a step waits for: generous, because the tests share
/// two cores with the rest of the suite; a step that passes returns as soon as it sees it.
const PATIENCE: Duration = Duration::from_secs(60);

/// Keeps a screenshot of the page under `target/browser-tests/`, and under
/// `docs/screenshots/` when `ETR_UPDATE_SCREENSHOTS` is set.
async fn keep_screenshot(browser: &Browser, name: &str) {
    browser
        .screenshot_to(&artifacts_dir().join(format!("{name}.png")))
        .await;
    if std::env::var_os("ETR_UPDATE_SCREENSHOTS").is_some() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        browser
            .screenshot_to(&dir.join(format!("{name}.png")))
            .await;
    }
}

/// Opens a wallet for a new client and tops it up with 1000.00; returns client, wallet and
/// the top-up's answer.
async fn funded_wallet(api: &Api) -> (Uuid, String, Value) {
    let client = Uuid::new_v4();
    let wallet = api.open_wallet(&client.to_string(), "open").await;
    let (status, _, top) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some("top"),
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{top}");
    (client, wallet, top)
}

/// A GraphiQL URL that opens with `query` and `variables` (and the token, if given).
fn graphiql_url(env: &Env, bearer: Option<&str>, query: &str, variables: &Value) -> String {
    let mut url = url::Url::parse(&format!("http://{}/", env.query_addr)).unwrap();
    if let Some(t) = bearer {
        url.query_pairs_mut().append_pair("token", t);
    }
    url.query_pairs_mut()
        .append_pair("query", query)
        .append_pair("variables", &variables.to_string());
    url.into()
}

/// The text of GraphiQL's response pane once it contains `needle`.
async fn response_containing(browser: &Browser, needle: &str) -> String {
    browser
        .wait_for_text(".graphiql-response", needle, PATIENCE)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphiql_queries_a_wallet_and_follows_a_subscription_offline() {
    let env = &Env::new("pages_graphiql").await;
    let api = &Api::new(env);
    let _etr = env.start(&["up", "--no-demo"]).await;
    let (client, wallet, top) = funded_wallet(api).await;
    let wallet = &wallet;
    let bearer = &token(&client.to_string(), Role::Client);
    // Wait for the read model so that the page's query needs no position.
    let seen = env
        .graphql(
            Some(bearer),
            "query($w: UUID!, $p: PositionInput) { wallet(id: $w, minPosition: $p) { balance } }",
            json!({"w": wallet, "p": top["position"]}),
        )
        .await;
    assert_eq!(seen["data"]["wallet"]["balance"], "1000.00", "{seen}");

    let browser = Browser::start("graphiql").await;
    browser
        .check(|b| async move {
            let query = "query Wallet($id: UUID!) {\n  wallet(id: $id) {\n    balance\n    held\n    available\n  }\n}\n";
            b.open(&graphiql_url(env, None, query, &json!({"id": wallet})))
                .await;
            b.wait_for_text(".graphiql-container", "", PATIENCE)
                .await;
            // The token typed into the token field goes into the header editor.
            let field = b
                .client
                .find(Locator::Css("#etr-token-input"))
                .await
                .unwrap();
            field.send_keys(bearer).await.unwrap();
            b.click("#etr-token button[type=submit]").await;
            let headers = b
                .wait_for_text(
                    ".graphiql-editor-tool",
                    "Authorization",
                    PATIENCE,
                )
                .await;
            assert!(headers.contains(&format!("Bearer {bearer}")), "{headers}");
            b.click(".graphiql-execute-button").await;
            let shown = response_containing(b, "\"balance\": \"1000.00\"").await;
            assert!(shown.contains("\"available\": \"1000.00\""), "{shown}");
            keep_screenshot(b, "graphiql").await;
            b.assert_self_contained(&env.query_addr).await;

            // A subscription from the page, over the websocket: a payment's status changes
            // show up as they are applied.
            let subscription = "subscription Changes($id: UUID!) {\n  operationStatusChanged(walletId: $id) {\n    paymentId\n    statusCode\n    status\n  }\n}\n";
            // The token from ?token= this time.
            b.open(&graphiql_url(env, Some(bearer), subscription, &json!({"id": wallet})))
                .await;
            b.wait_for_text(
                ".graphiql-editor-tool",
                &format!("Bearer {bearer}"),
                PATIENCE,
            )
            .await;
            b.click(".graphiql-execute-button").await;
            let mut shown = String::new();
            for attempt in 0..5 {
                // The subscription is live once the server has read the subscribe message;
                // a payment made before that is not announced to it, so pay again.
                tokio::time::sleep(Duration::from_millis(500)).await;
                let (status, _, paid) = api
                    .post(
                        &format!("/v1/clients/{client}/wallets/{wallet}/payments?wait=10"),
                        Some(&format!("pay-{attempt}")),
                        r#"{"amount":"10.00","currency":"RUB","service_id":"mobile"}"#,
                    )
                    .await
                    .unwrap();
                assert_eq!(status, 200, "{paid}");
                let text = b
                    .client
                    .find(Locator::Css(".graphiql-response"))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                if text.contains("\"operationStatusChanged\"") {
                    shown = text;
                    break;
                }
            }
            if shown.is_empty() {
                shown = response_containing(b, "\"operationStatusChanged\"").await;
            }
            assert!(shown.contains("\"statusCode\""), "{shown}");
            b.assert_self_contained(&env.query_addr).await;
        })
        .await;
    browser.close().await;
}

/// Every (method, path) of the OpenAPI document.
async fn documented_operations(env: &Env) -> BTreeSet<(String, String)> {
    let doc: Value = reqwest::get(format!("{}/openapi.json", env.api()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_reference_lists_every_operation_and_tops_up_offline() {
    let env = &Env::new("pages_docs").await;
    let api = Api::new(env);
    let _etr = env.start(&["up", "--no-demo"]).await;
    let client = Uuid::new_v4();
    let wallet = &api.open_wallet(&client.to_string(), "open").await;
    let bearer = &token(&client.to_string(), Role::Client);
    let documented = &documented_operations(env).await;
    assert!(documented.len() >= 20, "{documented:?}");

    let browser = Browser::start("api-reference").await;
    browser
        .check(|b| async move {
            b.open(&format!("{}/docs?token={bearer}", env.api())).await;
            let listed = b
                .wait_for_js(
                    &format!(
                        "const ops = document.querySelectorAll('.opblock'); \
                         return ops.length >= {} ? Array.from(ops).map(o => [ \
                           o.querySelector('.opblock-summary-method').textContent.trim(), \
                           o.querySelector('.opblock-summary-path').getAttribute('data-path')]) : null;",
                        documented.len()
                    ),
                    PATIENCE,
                )
                .await;
            let listed: BTreeSet<(String, String)> =
                serde_json::from_value(listed).expect("pairs of method and path");
            assert_eq!(&listed, documented, "the reference lists every operation");
            // The token given in ?token= is the authorisation of every request.
            b.wait_for_text(".auth-wrapper .authorize", "", PATIENCE)
                .await;
            let locked = b
                .client
                .execute(
                    "return !!document.querySelector('.auth-wrapper .authorize.locked');",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(locked, json!(true), "Authorize shows the token is set");
            keep_screenshot(b, "api-reference").await;

            // Try it out: a top-up of the client's wallet, Idempotency-Key left empty.
            let op = "[id$='-top_up']";
            b.click(&format!("{op} .opblock-summary")).await;
            // Operations open in "Try it out" mode (tryItOutEnabled); else switch it on.
            b.wait_for_text(&format!("{op} .opblock-body"), "", PATIENCE)
                .await;
            let ready = b
                .client
                .execute(
                    &format!("return !!document.querySelector(\"{op} .execute\");"),
                    vec![],
                )
                .await
                .unwrap();
            if ready != json!(true) {
                b.click(&format!("{op} .try-out__btn")).await;
            }
            for (name, value) in [("client_id", client.to_string()), ("wallet_id", wallet.clone())] {
                let input = b
                    .client
                    .wait()
                    .at_most(PATIENCE)
                    .for_element(Locator::Css(&format!(
                        "{op} tr[data-param-name='{name}'] input"
                    )))
                    .await
                    .unwrap();
                input.send_keys(&value).await.unwrap();
            }
            let body = b
                .client
                .find(Locator::Css(&format!("{op} textarea.body-param__text")))
                .await
                .unwrap();
            // Select the example and type over it, as a person would (the editor keeps its
            // value in React state, which a WebDriver `clear` does not reach).
            body.send_keys(&format!(
                "{}a{}{}",
                Key::Control,
                Key::Null,
                Key::Backspace
            ))
            .await
            .unwrap();
            body.send_keys(r#"{"amount":"250.00","currency":"RUB","source":"card"}"#)
                .await
                .unwrap();
            b.click(&format!("{op} .execute")).await;
            let status = b
                .wait_for_text(
                    &format!("{op} .live-responses-table .response-col_status"),
                    "200",
                    PATIENCE,
                )
                .await;
            assert!(status.contains("200"), "{status}");
            let answer = b
                .wait_for_text(
                    &format!("{op} .live-responses-table .response-col_description"),
                    "accepted",
                    PATIENCE,
                )
                .await;
            assert!(answer.contains("\"balance\": \"250.00\""), "{answer}");
            b.client
                .execute(
                    &format!(
                        "document.querySelector(\"{op} .responses-wrapper\").scrollIntoView();"
                    ),
                    vec![],
                )
                .await
                .unwrap();
            keep_screenshot(b, "api-reference-try-it").await;
            b.assert_self_contained(&env.api_addr).await;
        })
        .await;
    browser.close().await;

    // The command was recorded under the client's key space with a key the page made.
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let keys: Vec<String> = sqlx::query_scalar(
        "SELECT command_id FROM command_records WHERE command_id LIKE $1 AND accepted",
    )
    .bind(format!("{client}/%"))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        keys.iter()
            .any(|k| Uuid::parse_str(k.rsplit('/').next().unwrap()).is_ok()),
        "{keys:?}"
    );
    pool.close().await;
}

/// The local paths a page or stylesheet refers to (`src`, `href`, `url(…)`).
fn local_references(text: &str) -> Vec<String> {
    text.split(['"', '\'', '(', ')'])
        .filter(|s| s.starts_with('/') && !s.starts_with("//"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_pages_and_assets_name_no_unlisted_host() {
    let env = Env::new("pages_hosts").await;
    let _etr = env.start(&["up", "--no-demo"]).await;
    let http = reqwest::Client::new();
    let sites = [
        (
            format!("http://{}", env.query_addr),
            vec!["/", "/graphql"],
            web::listed_hosts(include_str!("../../query-api/assets/HOSTS")),
        ),
        (
            env.api(),
            vec!["/docs"],
            web::listed_hosts(include_str!("../../command-api/assets/HOSTS")),
        ),
    ];
    let mut fetched = 0;
    for (base, pages, listed) in sites {
        let mut queue: Vec<String> = pages.iter().map(|p| p.to_string()).collect();
        let mut seen = BTreeSet::new();
        while let Some(path) = queue.pop() {
            if !seen.insert(path.clone()) {
                continue;
            }
            let response = http.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{base}{path}");
            let headers = response.headers().clone();
            let content_type = headers["content-type"].to_str().unwrap().to_owned();
            let text = response.text().await.unwrap();
            fetched += 1;
            let own = pages.contains(&path.as_str()) || path.starts_with("/assets/etr/");
            if content_type.starts_with("text/html") {
                assert_eq!(
                    headers["content-security-policy"],
                    web::CONTENT_SECURITY_POLICY,
                    "{path}"
                );
            }
            if own {
                let hosts = web::external_hosts(&text);
                assert!(hosts.is_empty(), "{base}{path} names {hosts:?}");
            } else {
                let unlisted = web::unlisted_hosts(&text, &listed);
                assert!(unlisted.is_empty(), "{base}{path} names {unlisted:?}");
            }
            if content_type.starts_with("text/html") || content_type.starts_with("text/css") {
                for r in local_references(&text) {
                    if r.starts_with("/assets/") {
                        queue.push(r);
                    }
                }
            }
        }
    }
    // GraphiQL's page (twice), its 6 files, the reference page and its 4 files.
    assert_eq!(fetched, 13);
}
