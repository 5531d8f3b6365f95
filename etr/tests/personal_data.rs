//! Personal data leaves the platform only through the routes that show it to those allowed:
//! never through its log (the whole platform at `debug`), an error message, or `/metrics`.
//! A client is registered with distinctive data, taken through the loan conveyor to a
//! disbursed loan, searched for by every identifier (the identifiers travel in the query
//! string), shown to an operator over GraphQL; registrations with each identifier wrong are
//! refused. None of the client's values appears in the log, in any refusal's body, or in the
//! metrics.

mod support;

use etr_query_api::auth::Role;
use serde_json::json;
use support::lending::{person, platform_env, unique_passport, unique_phone, Flow};
use support::{token, Api, Env};

const PARTNER: &str = "partner-personal";
const LAST_NAME: &str = "Конфиденциалова";
const EMAIL: &str = "konfid.marker@example.ru";
const ADDRESS: &str = "г. Тверь, ул. Потаённая, д. 13, кв. 31";
const SNILS: &str = "112-233-445 95";
const INN: &str = "500100732259";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_never_appears_in_logs_errors_or_metrics() {
    let env = Env::new("personal").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let log_path = std::env::temp_dir().join(format!("etr-personal-{}.log", uuid::Uuid::new_v4()));
    let log = std::fs::File::create(&log_path).expect("a log file");
    let command = platform_env(
        &env,
        &[(
            "RUST_LOG",
            "debug,rdkafka=info,librdkafka=info,hyper=info,hyper_util=info,h2=info,reqwest=info,tungstenite=info,tokio_tungstenite=info,html5ever=info,selectors=info",
        )],
    );
    let platform = env.start_logging_to(command, log).await;
    let api = Api::new(&env);
    let partner = Flow {
        api: &api,
        pool: &pool,
        bearer: token(PARTNER, Role::Partner),
        base: "/v1/partner/applications",
    };
    let phone = unique_phone();
    let passport = unique_passport();
    let mut data = person(LAST_NAME, &phone, &passport);
    data["email"] = json!(EMAIL);
    data["registration_address"] = json!(ADDRESS);
    data["snils"] = json!(SNILS);
    data["inn"] = json!(INN);
    // Every value of the client that must not leak, in each spelling it is given or kept in.
    let national = phone.trim_start_matches("+7").to_owned();
    let secrets: Vec<String> = vec![
        LAST_NAME.to_owned(),
        EMAIL.to_owned(),
        "Потаённая".to_owned(),
        SNILS.to_owned(),
        SNILS.replace(['-', ' '], ""),
        INN.to_owned(),
        phone.clone(),
        national.clone(),
        passport.clone(),
        passport.replace(' ', ""),
    ];
    let leaks = |text: &str| -> Vec<String> {
        secrets
            .iter()
            .filter(|s| text.contains(s.as_str()))
            .cloned()
            .collect()
    };

    // Refusals of each identifier, wrong in the client's own values: the message names the
    // field and the rule, never the value.
    let mut refusals = Vec::new();
    for (field, value) in [
        ("snils", json!("112-233-445 96")),
        ("inn", json!("500100732250")),
        ("email", json!("konfid.marker@example")),
        ("phone", json!(format!("{phone}123456"))),
    ] {
        let mut bad = data.clone();
        bad[field] = value.clone();
        let (status, body) = partner
            .post("/v1/partner/clients", &format!("bad-{field}"), bad)
            .await;
        assert!((400..500).contains(&status), "{field}: {status} {body}");
        let text = body.to_string();
        let value = value.as_str().unwrap_or_default().to_owned();
        assert!(
            !text.contains(&value),
            "the refusal of {field} repeats its value: {text}"
        );
        refusals.push(text);
    }
    let mut bad = data.clone();
    bad["passport"]["number"] = json!(format!("{}0", passport.replace(' ', "")));
    let (status, body) = partner
        .post("/v1/partner/clients", "bad-passport", bad)
        .await;
    assert!((400..500).contains(&status), "passport: {status} {body}");
    refusals.push(body.to_string());

    // The client, through the conveyor to a disbursed loan.
    let (status, body) = partner.post("/v1/partner/clients", "register", data).await;
    assert_eq!(status, 201, "{body}");
    let client = body["client_id"].as_str().unwrap().to_owned();
    let app = partner
        .create(Some(&client), "12000.00", 30, "payday-30")
        .await;
    partner.sign_and_bind(&app, &phone, "tok-personal").await;
    partner.wait(&app, &["disbursed"]).await;

    // Searched for by each identifier: the identifiers are in the URL.
    let operator = token("operator-personal", Role::Operator);
    for query in [
        format!("phone={}", urlencode(&phone)),
        format!("passport={}", urlencode(&passport)),
        format!("inn={INN}"),
        format!("snils={}", urlencode(SNILS)),
    ] {
        let response = api
            .http
            .get(format!("{}/v1/operator/clients?{query}", api.base))
            .bearer_auth(&operator)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{query}: {body}");
        assert_eq!(body["client_ids"], json!([client]), "{query}");
    }
    // Shown to an operator (the route that may show it).
    let shown = env
        .graphql(
            Some(&operator),
            "query($id: UUID!) { customer(id: $id) { clientId personal { lastName phone } } }",
            json!({ "id": client }),
        )
        .await;
    assert_eq!(
        shown["data"]["customer"]["personal"]["lastName"], LAST_NAME,
        "{shown}"
    );

    // The metrics.
    let metrics = reqwest::get(format!("http://{}/metrics", env.query_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("etr_projection"), "{metrics}");

    drop(platform);
    let log = std::fs::read_to_string(&log_path).expect("the log");
    let _ = std::fs::remove_file(&log_path);
    assert!(
        log.lines().count() > 100 && log.contains("DEBUG"),
        "the log was not written at debug ({} lines)",
        log.lines().count()
    );
    for (what, text) in [("the log", log.as_str()), ("the metrics", metrics.as_str())] {
        let found = leaks(text);
        let line = found
            .first()
            .and_then(|s| text.lines().find(|l| l.contains(s.as_str())))
            .unwrap_or_default();
        assert!(found.is_empty(), "{what} holds {found:?}, e.g.: {line}");
    }
    for text in &refusals {
        assert!(
            leaks(text).is_empty(),
            "a refusal holds personal data: {text}"
        );
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
