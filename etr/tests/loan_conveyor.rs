//! The loan conveyor end to end on the real broker and Postgres: a partner takes an
//! application from creation to a disbursed loan using only REST calls (reading the signing
//! code from the SMS simulator's books), GraphQL shows the loan with its schedule and PSK;
//! a client does the same through its own routes; the failures the conveyor must survive
//! are injected through the simulators' inputs and each shows as events; a SIGKILL in the
//! middle of a flow loses nothing and repeats no step.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use support::lending::{documents_dir, person, platform_env, unique_passport, unique_phone, Flow};
use support::{token, Api, Env};
use uuid::Uuid;

use etr_query_api::auth::Role;

const PARTNER: &str = "shop-42";

/// Events of the log by application (aggregate id) and type.
async fn events_by_application(env: &Env) -> BTreeMap<String, Vec<String>> {
    let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in support::read_topic(env).await {
        by.entry(r.envelope.aggregate_id.to_string())
            .or_default()
            .push(r.event.name().to_owned());
    }
    by
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partner_takes_an_application_to_a_disbursed_loan_and_every_failure_shows_as_events() {
    let env = Env::new("conveyor").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    etr_infra::pg::connect_and_migrate(&env.database_url, 2)
        .await
        .unwrap();
    // A passport on the MVD list, loaded as the published file is.
    let invalid = unique_passport();
    let (series, number) = invalid.split_once(' ').unwrap();
    etr_infra::invalid_passports::load(
        &pool,
        "test",
        std::io::Cursor::new(format!("PASSP_SERIES,PASSP_NUMBER\n{series},{number}\n")),
        |_| {},
    )
    .await
    .unwrap();
    // A Rosfinmonitoring list with one person on it (name + birth date).
    etr_infra::watchlists::load_rosfinmonitoring(
        &pool,
        "rfm-test",
        std::io::Cursor::new(
            "ID;FIO;DATE_OF_BIRTH;DOCUMENT\n77;Перечнев Иван Петрович;14.03.1988;\n".to_owned(),
        ),
        |_| {},
    )
    .await
    .unwrap();
    let _platform = env
        .start_with(platform_env(
            &env,
            &[("ETR_CONVEYOR_SIGN_WITHIN_SECS", "20")],
        ))
        .await;
    let api = Api::new(&env);
    let partner = Flow {
        api: &api,
        pool: &pool,
        bearer: token(PARTNER, Role::Partner),
        base: "/v1/partner/applications",
    };

    // Registration parses identifiers once; a bad check digit is a 422 with its code.
    let mut bad = person("Иванов", &unique_phone(), &unique_passport());
    bad["snils"] = json!("112-233-445 96");
    let (status, body) = partner.post("/v1/partner/clients", "bad", bad).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("snils_checksum")),
        "{body}"
    );

    async fn register(partner: &Flow<'_>, key: &str, person: Value) -> String {
        let (status, body) = partner.post("/v1/partner/clients", key, person).await;
        assert_eq!(status, 201, "{body}");
        body["client_id"].as_str().unwrap().to_owned()
    }

    // Slow scenarios run beside the others: a payout that never answers (each attempt times
    // out, then the payout is compensated) and an identity service that is never available
    // (the step is parked in the dead letters with its reason).
    let phone_hang = unique_phone();
    let hang_client = register(
        &partner,
        "hang",
        person("Медленнов", &phone_hang, &unique_passport()),
    )
    .await;
    let hang = partner
        .create(Some(&hang_client), "10000.00", 30, "payday-30")
        .await;
    partner
        .sign_and_bind(&hang, &phone_hang, "tok-payout-timeout")
        .await;
    let poison_client = register(
        &partner,
        "poison",
        person("Недоступнов", &unique_phone(), &unique_passport()),
    )
    .await;
    let poison = partner
        .create(Some(&poison_client), "10000.00", 30, "payday-30")
        .await;

    // 1. The happy path: identified, checked, scored, offers with PSK, contract signed by
    //    OTP, card bound, paid out, loan issued.
    let phone = unique_phone();
    let mut happy = person("Иванов", &phone, &unique_passport());
    happy["snils"] = json!("112-233-445 95");
    happy["inn"] = json!("500100732259");
    let client = register(&partner, "happy", happy).await;
    let app = partner
        .create(Some(&client), "15000.00", 30, "payday-30")
        .await;
    let approved = partner.sign_and_bind(&app, &phone, "tok-happy").await;
    assert!(approved["offers"].as_array().unwrap().len() <= 3);
    assert_eq!(approved["offers"][0]["product_id"], "payday-30");
    let disbursed = partner.wait(&app, &["disbursed"]).await;
    let loan_id = disbursed["loan_id"].as_str().unwrap().to_owned();
    partner.wait_step(&app, "done").await;
    // The signed agreement is stored: the PDF the client signed (its SHA-256 is the one
    // signed) and the signature record beside it.
    let sha = disbursed["contract_sha256"].as_str().unwrap().to_owned();
    let dir = format!("{}/agreements/{app}", documents_dir(&env));
    let pdf = std::fs::read(format!("{dir}/{sha}.pdf")).expect("the agreement is stored");
    assert!(pdf.starts_with(b"%PDF"));
    assert!(etr_documents::verify_hash(&pdf, &sha));
    let record: Value = serde_json::from_slice(
        &std::fs::read(format!("{dir}/{sha}.pdf.signature.json")).expect("the signature is stored"),
    )
    .unwrap();
    assert_eq!(record["document_sha256"], sha.as_str());
    let (status, cart) = partner
        .get(&format!("/v1/partner/applications/{app}/cart"))
        .await;
    assert_eq!((status, cart["total"].as_str()), (200, Some("15000.00")));
    // Another partner does not see it.
    let other = Flow {
        api: &api,
        pool: &pool,
        bearer: token("shop-7", Role::Partner),
        base: "/v1/partner/applications",
    };
    let (status, _) = other.get(&format!("/v1/partner/applications/{app}")).await;
    assert_eq!(status, 404);

    // GraphQL shows the loan with the signed schedule and PSK (the client reads its own).
    let q = "query($l: UUID!) { loan(id: $l) { status principal pskPercent pskMoney productId schedule { number date payment principal interest balance } } }";
    let deadline = Instant::now() + Duration::from_secs(30);
    let loan = loop {
        let v = env
            .graphql(
                Some(&token(&client, Role::Client)),
                q,
                json!({"l": loan_id}),
            )
            .await;
        assert!(v["errors"].is_null(), "{v}");
        if !v["data"]["loan"].is_null() {
            break v["data"]["loan"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "the loan never reached the read model"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let offer = &approved["offers"][0];
    assert_eq!(loan["status"], "active");
    assert_eq!(loan["principal"], "15000.00");
    assert_eq!(loan["pskPercent"], offer["psk_percent"], "{loan}");
    // 15000.00 × 0.8 % × 30 days = 3600.00 interest, one repayment.
    assert_eq!(loan["schedule"][0]["payment"], "18600.00", "{loan}");
    assert_eq!(loan["schedule"][0]["interest"], "3600.00");
    assert_eq!(loan["pskMoney"], "3600.00");
    let v = env
        .graphql(
            Some(&token(&client, Role::Client)),
            "query($a: UUID!) { application(id: $a) { status score pdnPercent identificationMethod contractSha256 signed cardMaskedPan offers { pskPercent schedule { payment } } } }",
            json!({"a": app}),
        )
        .await;
    assert_eq!(v["data"]["application"]["status"], "disbursed", "{v}");
    assert_eq!(v["data"]["application"]["identificationMethod"], "snils");
    assert_eq!(
        v["data"]["application"]["cardMaskedPan"],
        "220220******1234"
    );

    // 2. Provider timeouts are retried: the payout is unavailable twice, then pays once.
    let phone2 = unique_phone();
    let flaky_client = register(
        &partner,
        "flaky",
        person("Сидоров", &phone2, &unique_passport()),
    )
    .await;
    let flaky = partner
        .create(Some(&flaky_client), "10000.00", 30, "payday-30")
        .await;
    partner.sign_and_bind(&flaky, &phone2, "tok-flaky-2").await;
    partner.wait(&flaky, &["disbursed"]).await;
    let (attempts, settled): (i32, bool) = sqlx::query_as(
        "SELECT attempts, reference IS NOT NULL FROM simulator_card_operations WHERE kind = 'payout' AND key = $1",
    )
    .bind(etr_domain::ids::derived_id(flaky.parse().unwrap(), "payout"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((attempts, settled), (3, true));

    // 3. A definite payout failure is compensated: the contract annulled, the application
    //    failed, the client told.
    let phone3 = unique_phone();
    let failing_client = register(
        &partner,
        "failing",
        person("Петров", &phone3, &unique_passport()),
    )
    .await;
    let failing = partner
        .create(Some(&failing_client), "10000.00", 30, "payday-30")
        .await;
    partner
        .sign_and_bind(&failing, &phone3, "tok-payout-fail")
        .await;
    let failed = partner.wait(&failing, &["failed"]).await;
    assert!(failed["loan_id"].is_null());
    assert_eq!(failed["reasons"][0], "the provider refused the payout");

    // 4. A declined verification hold fails the binding; another card binds.
    let phone4 = unique_phone();
    let card_client = register(
        &partner,
        "card-client",
        person("Кузнецов", &phone4, &unique_passport()),
    )
    .await;
    let card_app = partner
        .create(Some(&card_client), "10000.00", 30, "payday-30")
        .await;
    partner
        .sign_and_bind(&card_app, &phone4, "tok-decline")
        .await;
    let back = partner.wait(&card_app, &["signed"]).await;
    assert_eq!(
        back["reasons"][0],
        "the issuer declined the verification hold"
    );
    let (status, body) = partner
        .post(
            &format!("/v1/partner/applications/{card_app}/card"),
            "card-2",
            json!({"provider": "tinkoff", "card_token": "tok-good", "masked_pan": "553691******7788"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    partner.wait(&card_app, &["disbursed"]).await;

    // 5. A passport on the invalid list declines with the reason.
    let invalid_client = register(
        &partner,
        "invalid",
        person("Смирнов", &unique_phone(), &invalid),
    )
    .await;
    let invalid_app = partner
        .create(Some(&invalid_client), "10000.00", 30, "payday-30")
        .await;
    let declined = partner.wait(&invalid_app, &["declined"]).await;
    assert_eq!(
        declined["reasons"][0],
        format!("passport {series} {number} is on the MVD list of invalid passports")
    );

    // 6. A duplicate client (the same phone as another) goes to manual review; an operator
    //    clears it and the conveyor carries on.
    let dup_client = register(
        &partner,
        "dup",
        person("Иванов", &phone, &unique_passport()),
    )
    .await;
    let dup = partner
        .create(Some(&dup_client), "10000.00", 30, "payday-30")
        .await;
    let referred = partner.wait(&dup, &["manual_review"]).await;
    assert!(
        referred["reasons"][0]
            .as_str()
            .unwrap()
            .starts_with("possible duplicate: the same phone as client "),
        "{referred}"
    );
    partner.wait_step(&dup, "awaiting_operator").await;
    let tasks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM operator_tasks WHERE application_id = $1 AND resolved_at IS NULL",
    )
    .bind(Uuid::parse_str(&dup).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(tasks, 1);
    let (status, _, body) = api
        .post_as(
            Some(&token("op-1", Role::Operator)),
            &format!("/v1/operator/applications/{dup}/review"),
            Some("review"),
            &json!({"approve": true, "reason": "a relative shares the phone"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    partner.wait(&dup, &["approved"]).await;

    // 7. Photo identification: the automatic checks do not confirm the client, the photos
    //    on file make the manual method available, an operator's task opens and the run
    //    resumes when the operator resolves it. Documents are checked by the configured
    //    rules first.
    let photo_client = register(
        &partner,
        "photo",
        person("Неопознанов", &unique_phone(), &unique_passport()),
    )
    .await;
    let jpeg = "/9j/4AAQSkZJRgABAQEASABIAAD/2wBDAP//////////////////////////////////////////////////////////////////////////////////////wgALCAABAAEBAREA/8QAFBABAAAAAAAAAAAAAAAAAAAAAP/aAAgBAQABPxA=";
    let (status, body) = partner
        .post(
            &format!("/v1/partner/clients/{photo_client}/documents"),
            "doc-bad",
            json!({"kind": "passport_photo", "content_type": "application/pdf", "content_base64": jpeg}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("document_content_type")),
        "{body}"
    );
    for kind in ["passport_photo", "selfie"] {
        let (status, body) = partner
            .post(
                &format!("/v1/partner/clients/{photo_client}/documents"),
                &format!("doc-{kind}"),
                json!({"kind": kind, "content_type": "image/jpeg", "content_base64": jpeg}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    // Another partner cannot file documents for this client.
    let (status, _, _) = api
        .post_as(
            Some(&token("shop-7", Role::Partner)),
            &format!("/v1/partner/clients/{photo_client}/documents"),
            Some("doc-x"),
            &json!({"kind": "selfie", "content_type": "image/jpeg", "content_base64": jpeg})
                .to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 404);
    let photo = partner
        .create(Some(&photo_client), "10000.00", 30, "payday-30")
        .await;
    let waiting = partner.wait(&photo, &["manual_review"]).await;
    assert_eq!(
        waiting["reasons"][0], "Фотоидентификация needs an operator",
        "{waiting}"
    );
    let kind: String = sqlx::query_scalar(
        "SELECT kind FROM operator_tasks WHERE application_id = $1 AND resolved_at IS NULL",
    )
    .bind(Uuid::parse_str(&photo).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kind, "photo_identification");
    let (status, _, body) = api
        .post_as(
            Some(&token("op-2", Role::Operator)),
            &format!("/v1/operator/applications/{photo}/review"),
            Some("photo-review"),
            &json!({"approve": true, "reason": "the photos match the passport"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    partner.wait(&photo, &["approved"]).await;

    // 8. Legal checks: a person on the Rosfinmonitoring list and a person with an open
    //    bankruptcy case are declined with the reason.
    let listed = register(
        &partner,
        "listed",
        person("Перечнев", &unique_phone(), &unique_passport()),
    )
    .await;
    let listed_app = partner
        .create(Some(&listed), "10000.00", 30, "payday-30")
        .await;
    let declined = partner.wait(&listed_app, &["declined"]).await;
    assert!(
        declined["reasons"][0].as_str().unwrap().contains("77"),
        "{declined}"
    );
    let bankrupt = register(
        &partner,
        "bankrupt",
        person("Банкротов", &unique_phone(), &unique_passport()),
    )
    .await;
    let bankrupt_app = partner
        .create(Some(&bankrupt), "10000.00", 30, "payday-30")
        .await;
    let declined = partner.wait(&bankrupt_app, &["declined"]).await;
    assert!(
        !declined["reasons"].as_array().unwrap().is_empty(),
        "{declined}"
    );

    // The payout that never answered: compensated after its attempts; the poisoned step:
    // parked with its reason.
    let timed_out = partner.wait(&hang, &["failed"]).await;
    assert_eq!(
        timed_out["reasons"][0], "no answer in time (after 5 attempts)",
        "{timed_out}"
    );
    partner.wait_step(&poison, "parked").await;
    let parked: String =
        sqlx::query_scalar("SELECT reason FROM process_dead_letters WHERE instance_id = $1")
            .bind(Uuid::parse_str(&poison).unwrap())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        parked,
        "identification: mobile_id: the service is unavailable (after 5 attempts)"
    );

    // 9. An approval nobody signs expires when its timer fires.
    let lapsing_client = register(
        &partner,
        "lapsing",
        person("Орлов", &unique_phone(), &unique_passport()),
    )
    .await;
    let lapsing = partner
        .create(Some(&lapsing_client), "10000.00", 30, "payday-30")
        .await;
    partner.wait(&lapsing, &["approved"]).await;
    partner.wait(&lapsing, &["expired"]).await;
    partner.wait_step(&lapsing, "done").await;

    // Every outcome is on the log, each step once.
    support::wait_published(&env).await;
    let events = events_by_application(&env).await;
    let of = |id: &str| events.get(id).cloned().unwrap_or_default();
    let once = |id: &str, name: &str| of(id).iter().filter(|e| *e == name).count();
    for step in [
        "ApplicationCreated",
        "ApplicationSubmitted",
        "ClientIdentified",
        "LegalChecksPassed",
        "ApplicationApproved",
        "OfferChosen",
        "ContractGenerated",
        "ContractSigned",
        "CardBindingRequested",
        "ApplicationCardBound",
        "LoanDisbursed",
    ] {
        assert_eq!(once(&app, step), 1, "{step} in {:?}", of(&app));
        assert_eq!(once(&flaky, step), 1, "{step} in {:?}", of(&flaky));
    }
    assert_eq!(once(&loan_id, "LoanIssued"), 1);
    assert_eq!(
        once(&failing, "DisbursementFailed"),
        1,
        "{:?}",
        of(&failing)
    );
    assert_eq!(once(&card_app, "CardBindingFailed"), 1);
    assert_eq!(once(&invalid_app, "IdentificationFailed"), 1);
    assert_eq!(once(&dup, "ApplicationReferred"), 1);
    assert_eq!(once(&dup, "ReviewResolved"), 1);
    assert_eq!(once(&lapsing, "ApplicationExpired"), 1);
    assert_eq!(once(&hang, "DisbursementFailed"), 1);
    assert_eq!(once(&photo, "IdentificationReferred"), 1);
    assert_eq!(once(&listed_app, "ApplicationDeclined"), 1);
    assert_eq!(
        of(&poison),
        vec!["ApplicationCreated", "ApplicationSubmitted"]
    );
    // The client was told about the failed payout.
    let told: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM client_notifications WHERE client_id = $1 AND text LIKE 'Выдача займа не удалась%'",
    )
    .bind(Uuid::parse_str(&failing_client).unwrap())
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(told, 1);
    // Personal data is on the log only sealed: no name, phone or passport in the bytes.
    for r in support::read_topic(&env).await {
        let text = String::from_utf8_lossy(&r.raw);
        assert!(
            !text.contains("Иванов") && !text.contains(&phone[1..]),
            "{text}"
        );
    }
    // Every verification hold was released.
    let open_holds: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM simulator_card_operations WHERE kind = 'hold' AND released_at IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(open_holds, 0);
    drop(_platform);
    pool.close().await;
    let _ = std::fs::remove_dir_all(documents_dir(&env));
    etr_infra::pg::drop_database(&env.database_url)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_takes_its_own_application_to_a_loan_and_a_kill_mid_flow_repeats_no_step() {
    let env = Env::new("conveyor_client").await;
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let platform = env.start_with(platform_env(&env, &[])).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let me = Flow {
        api: &api,
        pool: &pool,
        bearer: token(&client, Role::Client),
        base: "/v1/me/applications",
    };
    let phone = unique_phone();
    let (status, body) = me
        .post(
            "/v1/me/registration",
            "register",
            person("Волков", &phone, &unique_passport()),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["client_id"], client.as_str());
    // A client applies for itself: naming a client is refused.
    let (status, body) = me
        .post(
            "/v1/me/applications",
            "bad",
            json!({"client_id": client, "amount": "5000.00", "currency": "RUB", "term": 30}),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("unknown_field"))
    );
    // An installment loan: monthly annuity, PSK over a monthly base period.
    let app = me.create(None, "24000.00", 6, "installment-12").await;
    // The same client cannot open a second application while this one is open.
    let (status, body) = me
        .post(
            "/v1/me/applications",
            "second",
            json!({"amount": "5000.00", "currency": "RUB", "term": 30}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("application_already_open")),
        "{body}"
    );
    // The payout provider is unavailable for the first three attempts: the run is between
    // retries when the whole platform is killed.
    me.sign_and_bind(&app, &phone, "tok-flaky-3").await;
    me.wait(&app, &["card_bound"]).await;
    // Killed once the payout has been tried and refused at least once (however loaded the
    // machine, not after a fixed pause that may come before the first attempt).
    let payout_key = etr_domain::ids::derived_id(app.parse().unwrap(), "payout");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let attempts: Option<i32> = sqlx::query_scalar(
            "SELECT attempts FROM simulator_card_operations WHERE kind = 'payout' AND key = $1",
        )
        .bind(payout_key)
        .fetch_optional(&pool)
        .await
        .unwrap();
        if attempts.is_some_and(|n| n >= 1) || std::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    platform.kill();
    let attempts_before: Option<i32> = sqlx::query_scalar(
        "SELECT attempts FROM simulator_card_operations WHERE kind = 'payout' AND key = $1",
    )
    .bind(etr_domain::ids::derived_id(app.parse().unwrap(), "payout"))
    .fetch_optional(&pool)
    .await
    .unwrap();
    assert!(
        matches!(attempts_before, Some(n) if n < 4),
        "the kill came before the payout was made: {attempts_before:?}"
    );
    // Restarted: the run resumes from its stored step and completes.
    let platform = env.start_with(platform_env(&env, &[])).await;
    let done = me.wait(&app, &["disbursed"]).await;
    let loan_id = done["loan_id"].as_str().unwrap().to_owned();
    let (attempts, payouts): (i32, i64) = sqlx::query_as(
        "SELECT max(attempts), count(*) FILTER (WHERE reference IS NOT NULL) FROM simulator_card_operations WHERE kind = 'payout' AND key = $1",
    )
    .bind(etr_domain::ids::derived_id(app.parse().unwrap(), "payout"))
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(payouts, 1, "paid out once");
    assert_eq!(
        attempts, 4,
        "three refusals then the payment (before the kill: {attempts_before:?})"
    );
    // The log shows each step once, across the kill.
    support::wait_published(&env).await;
    let events = events_by_application(&env).await;
    let of = |id: &str| events.get(id).cloned().unwrap_or_default();
    let mut seen = BTreeMap::new();
    for e in of(&app) {
        *seen.entry(e).or_insert(0) += 1;
    }
    assert!(seen.values().all(|n| *n == 1), "{seen:?}");
    assert_eq!(seen.get("LoanDisbursed"), Some(&1), "{seen:?}");
    assert_eq!(of(&loan_id), vec!["LoanIssued".to_owned()]);
    // The platform's own commands: one record per step, all of them accepted once.
    let steps: Vec<String> = support::platform_commands(&pool)
        .await
        .into_iter()
        .map(|(id, _)| id)
        .filter(|id| id.contains(&app))
        .collect();
    let distinct: std::collections::BTreeSet<_> = steps.iter().collect();
    assert_eq!(distinct.len(), steps.len(), "{steps:?}");
    for step in [
        "identification",
        "legal-checks",
        "scoring",
        "contract",
        "disbursement",
    ] {
        assert!(
            steps.iter().any(|s| s.ends_with(&format!("/{step}"))),
            "{step} missing from {steps:?}"
        );
    }
    // The loan, with its monthly schedule, in GraphQL.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = env
            .graphql(
                Some(&token(&client, Role::Client)),
                "query($l: UUID!) { loan(id: $l) { pskPercent schedule { number payment balance } } }",
                json!({"l": loan_id}),
            )
            .await;
        let loan = &v["data"]["loan"];
        if !loan.is_null() {
            let schedule = loan["schedule"].as_array().unwrap();
            assert_eq!(schedule.len(), 6, "{loan}");
            assert_eq!(schedule[5]["balance"], "0.00");
            assert!(
                rust_decimal::Decimal::from_str_exact(loan["pskPercent"].as_str().unwrap()).is_ok()
            );
            break;
        }
        assert!(Instant::now() < deadline, "{v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The registry: an operator finds the client by phone (a blind index, nothing in clear);
    // GraphQL opens the personal data for the client itself and operators, not partners.
    let operator = token("op-1", Role::Operator);
    let found: Value = api
        .http
        .get(format!(
            "{}/v1/operator/clients?phone={}",
            api.base,
            phone.replace('+', "%2B")
        ))
        .bearer_auth(&operator)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["client_ids"], json!([client]), "{found}");
    // The client changes its phone: the new one is found, the old one no longer.
    let new_phone = unique_phone();
    let (status, body) = me
        .post(
            "/v1/me/personal-data",
            "new-phone",
            person("Волков", &new_phone, &unique_passport()),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let changed_at = body["position"].clone();
    let find = |p: String| {
        let (http, base, operator) = (api.http.clone(), api.base.clone(), operator.clone());
        async move {
            let v: Value = http
                .get(format!(
                    "{base}/v1/operator/clients?phone={}",
                    p.replace('+', "%2B")
                ))
                .bearer_auth(&operator)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["client_ids"].clone()
        }
    };
    assert_eq!(find(new_phone.clone()).await, json!([client]));
    assert_eq!(find(phone.clone()).await, json!([]));
    let phone = new_phone;
    let customer = "query($c: UUID!, $p: PositionInput) { customer(id: $c, minPosition: $p) { status loansDisbursed cards { maskedPan } personalDataErased personal { lastName phone passport monthlyIncome } } }";
    let mine = env
        .graphql(
            Some(&token(&client, Role::Client)),
            customer,
            json!({"c": client, "p": changed_at}),
        )
        .await;
    assert_eq!(
        mine["data"]["customer"]["personal"]["lastName"], "Волков",
        "{mine}"
    );
    assert_eq!(
        mine["data"]["customer"]["personal"]["phone"],
        phone.as_str()
    );
    assert_eq!(
        mine["data"]["customer"]["personal"]["monthlyIncome"],
        "90000.00"
    );
    let theirs = env
        .graphql(
            Some(&token("shop-1", Role::Partner)),
            customer,
            json!({"c": client}),
        )
        .await;
    assert!(theirs["data"]["customer"]["personal"].is_null(), "{theirs}");
    // Erasure destroys the client's key: the events stay and the chain still verifies, the
    // personal data no longer opens.
    let (status, _, body) = api
        .post_as(
            Some(&operator),
            &format!("/v1/operator/clients/{client}/erase"),
            Some("erase"),
            &json!({"reason": "the client asked (152-FZ art. 21)"}).to_string(),
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let erased = env
        .graphql(Some(&operator), customer, json!({"c": client}))
        .await;
    assert_eq!(
        erased["data"]["customer"]["personalDataErased"], true,
        "{erased}"
    );
    assert!(erased["data"]["customer"]["personal"].is_null());
    support::wait_published(&env).await;
    let verified = env
        .command(&["timeline", &client, "--verify"])
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    drop(platform);
    pool.close().await;
    let _ = std::fs::remove_dir_all(documents_dir(&env));
    etr_infra::pg::drop_database(&env.database_url)
        .await
        .unwrap();
}
