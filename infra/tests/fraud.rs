//! Fraud monitoring (e-wallet spec §8.3) on the real Postgres server, each test on a fresh
//! database dropped at its end: the request statistics flushed by upsert, the rules stored
//! and reloaded, and the middleware in front of a real HTTP server.

use axum::routing::{get, post};
use axum::Router;
use etr_domain::fraud::{InterfaceType, Key, Level, RoutePrefix, Rule, RuleId};
use etr_infra::auth::{Keys, Role};
use etr_infra::fraud::stats::{Sample, Stats};
use etr_infra::fraud::{store, Api, Monitor, Options};
use std::net::SocketAddr;
use std::time::Duration;
use time::macros::datetime;

type StatRow = (
    time::OffsetDateTime,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
);

/// Level, interface, address, client, route, status class, requests, refused.
type Grouped = (
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    String,
    i64,
    i64,
);

async fn rows(pool: &sqlx::PgPool) -> Vec<StatRow> {
    sqlx::query_as(
        "SELECT hour, api, interface_type, level, ip, client_id, route, status_class, requests, refused \
         FROM api_request_stats ORDER BY hour, api, level, ip, client_id, route, status_class",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn sample(at: time::OffsetDateTime) -> Sample {
    Sample {
        at,
        api: Api::Command,
        interface: InterfaceType::Android,
        level: Level::Authenticated,
        ip: Some("192.0.2.1".parse().unwrap()),
        client: Some("client-1".into()),
        route: "/v1/clients/{client_id}/wallets".into(),
        status: 201,
        refused: false,
    }
}

#[tokio::test]
async fn counts_are_flushed_by_upsert_and_add_up_across_flushes_and_processes() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_fraud_stats")
        .await
        .expect("a fresh database on the local Postgres server");

    // Given two processes' counts, with a row that has neither address nor client
    let first = Stats::default();
    let second = Stats::default();
    let at = datetime!(2026-01-15 10:15:00 UTC);
    for _ in 0..3 {
        first.count(sample(at));
    }
    first.count(Sample {
        status: 429,
        refused: true,
        ..sample(at)
    });
    let anonymous = Sample {
        level: Level::Unauthenticated,
        ip: None,
        client: None,
        route: "(no route)".into(),
        status: 404,
        ..sample(at)
    };
    first.count(anonymous.clone());
    second.count(sample(datetime!(2026-01-15 10:45:00 UTC)));
    second.count(anonymous.clone());
    second.count(Sample {
        at: datetime!(2026-01-15 11:00:01 UTC),
        ..sample(at)
    });

    // When both flush at once, then again after more requests
    let (a, b) = tokio::join!(first.flush(&pool), second.flush(&pool));
    assert_eq!((a.unwrap(), b.unwrap()), (3, 3));
    assert_eq!((first.pending(), second.pending()), (0, 0));
    first.count(anonymous.clone());
    first.count(sample(at));
    assert_eq!(first.flush(&pool).await.unwrap(), 2);
    assert_eq!(first.flush(&pool).await.unwrap(), 0, "nothing new");

    // Then each row holds the sum of what both counted, NULLs matching NULLs
    let hour = datetime!(2026-01-15 10:00:00 UTC);
    let next_hour = datetime!(2026-01-15 11:00:00 UTC);
    let row = |at,
               level: &str,
               ip: Option<&str>,
               client: Option<&str>,
               route: &str,
               class: &str,
               requests,
               refused| {
        (
            at,
            "command".to_owned(),
            "android".to_owned(),
            level.to_owned(),
            ip.map(str::to_owned),
            client.map(str::to_owned),
            route.to_owned(),
            class.to_owned(),
            requests,
            refused,
        )
    };
    let wallets = "/v1/clients/{client_id}/wallets";
    assert_eq!(
        rows(&pool).await,
        vec![
            row(
                hour,
                "authenticated",
                Some("192.0.2.1"),
                Some("client-1"),
                wallets,
                "2xx",
                5,
                0
            ),
            row(
                hour,
                "authenticated",
                Some("192.0.2.1"),
                Some("client-1"),
                wallets,
                "4xx",
                1,
                1
            ),
            row(
                hour,
                "unauthenticated",
                None,
                None,
                "(no route)",
                "4xx",
                3,
                0
            ),
            row(
                next_hour,
                "authenticated",
                Some("192.0.2.1"),
                Some("client-1"),
                wallets,
                "2xx",
                1,
                0
            ),
        ]
    );

    // A flush that fails keeps its counts for the next one.
    first.count(sample(at));
    let closed = sqlx::PgPool::connect(&url).await.unwrap();
    closed.close().await;
    assert!(first.flush(&closed).await.is_err());
    assert_eq!(first.pending(), 1);
    assert_eq!(first.flush(&pool).await.unwrap(), 1);
    assert_eq!(rows(&pool).await[0].8, 6);

    // Statistics older than the retention are pruned; recent ones stay.
    first.count(sample(time::OffsetDateTime::now_utc()));
    first.flush(&pool).await.unwrap();
    let pruned = etr_infra::fraud::stats::prune(&pool, Duration::from_secs(7 * 24 * 3600))
        .await
        .unwrap();
    assert_eq!(pruned, 4);
    assert_eq!(rows(&pool).await.len(), 1);

    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}

fn tight(id: &str, level: Level, key: Key, limit: u32, prefix: Option<&str>) -> Rule {
    Rule {
        id: RuleId::parse(id).unwrap(),
        level,
        interface: None,
        key,
        limit,
        period_secs: 60,
        route_prefix: prefix.map(|p| RoutePrefix::parse(p).unwrap()),
        client: None,
        active: true,
    }
}

#[tokio::test]
async fn rules_are_stored_and_the_defaults_apply_while_none_is() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_fraud_rules")
        .await
        .expect("a fresh database on the local Postgres server");
    let ids = |rules: Vec<Rule>| {
        rules
            .into_iter()
            .map(|r| r.id.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store::in_force(&pool).await.unwrap()),
        ["ip_unauthenticated", "client_authenticated"]
    );

    let rule = tight(
        "per_client",
        Level::Authenticated,
        Key::Client,
        3,
        Some("/v1/"),
    );
    let created = store::create(&pool, &rule, "operator:o1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((created.version, created.rule.clone()), (1, rule.clone()));
    assert!(
        store::create(&pool, &rule, "operator:o1")
            .await
            .unwrap()
            .is_none(),
        "exists"
    );
    assert_eq!(ids(store::in_force(&pool).await.unwrap()), ["per_client"]);

    let mut changed = rule.clone();
    changed.interface = Some(InterfaceType::PartnerApi);
    changed.client = Some("partner-7".into());
    changed.active = false;
    let replaced = store::replace(&pool, &changed, "operator:o2")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            replaced.version,
            replaced.updated_by.as_str(),
            &replaced.rule
        ),
        (2, "operator:o2", &changed)
    );
    let missing = tight("missing", Level::Authenticated, Key::Ip, 1, None);
    assert!(store::replace(&pool, &missing, "o")
        .await
        .unwrap()
        .is_none());

    // A rule that breaks the domain's checks is refused before Postgres.
    let bad = tight("bad", Level::Unauthenticated, Key::Client, 1, None);
    assert!(matches!(
        store::create(&pool, &bad, "o").await,
        Err(etr_infra::Error::Invalid(_))
    ));

    // A monitor reloads what is stored.
    let monitor = Monitor::new(Api::Query, Keys::from_secret(b"k"));
    monitor.reload(&pool).await.unwrap();
    assert_eq!(monitor.rules(), vec![changed]);

    assert!(store::delete(&pool, &rule.id).await.unwrap());
    assert!(!store::delete(&pool, &rule.id).await.unwrap());
    monitor.reload(&pool).await.unwrap();
    assert_eq!(
        ids(monitor.rules()),
        ["client_authenticated", "ip_unauthenticated"]
    );

    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}

#[tokio::test]
async fn the_middleware_refuses_past_the_limit_and_the_statistics_record_it() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_fraud_http")
        .await
        .expect("a fresh database on the local Postgres server");
    let keys = Keys::from_secret(b"fraud-test");
    for rule in [
        tight(
            "per_client",
            Level::Authenticated,
            Key::Client,
            2,
            Some("/v1/"),
        ),
        tight("anon_ip", Level::Unauthenticated, Key::Ip, 3, None),
    ] {
        store::create(&pool, &rule, "operator:o1")
            .await
            .unwrap()
            .unwrap();
    }
    let options = Options {
        reload_every: Duration::from_millis(100),
        flush_every: Duration::from_millis(100),
        ..Options::default()
    };
    let monitor = Monitor::start(Api::Query, keys.clone(), pool.clone(), options)
        .await
        .unwrap();
    let router = monitor.protect(
        Router::new()
            .route("/v1/things/{id}", post(|| async { "done" }))
            .route("/graphql", post(|| async { "{\"data\":{}}" }))
            .route("/health", get(|| async { "ok" })),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
    });
    let http = reqwest::Client::new();
    let alice = keys.issue("alice", Role::Partner, 4_000_000_000).unwrap();
    let bob = keys.issue("bob", Role::Partner, 4_000_000_000).unwrap();
    let post_as = |token: Option<&str>, path: &str, interface: Option<&str>| {
        let mut r = http.post(format!("{base}{path}"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        if let Some(i) = interface {
            r = r.header("X-Interface-Type", i);
        }
        r.send()
    };

    // Alice's two requests pass; the third is refused with the rule as the reason.
    for _ in 0..2 {
        let r = post_as(Some(&alice), "/v1/things/1", Some("web"))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let r = post_as(Some(&alice), "/v1/things/2", Some("web"))
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(body["error"]["reason"], "per_client", "{body}");
    assert_eq!(body["error"]["retry_after"], retry, "{body}");
    // Bob is not affected, nor is Alice outside the rule's prefix.
    assert_eq!(
        post_as(Some(&bob), "/v1/things/1", None)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        post_as(Some(&alice), "/graphql", None)
            .await
            .unwrap()
            .status(),
        200
    );

    // Without a valid token: three from this address, then a GraphQL-shaped refusal.
    let forged = Some("not-a-token");
    for _ in 0..3 {
        assert_eq!(
            post_as(forged, "/graphql", None).await.unwrap().status(),
            200
        );
    }
    let r = post_as(None, "/graphql", None).await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{body}"
    );
    assert_eq!(
        body["errors"][0]["extensions"]["reason"], "anon_ip",
        "{body}"
    );
    assert!(
        body["errors"][0]["extensions"]["retryAfter"]
            .as_u64()
            .unwrap()
            >= 1
    );
    // Health checks are exempt.
    for _ in 0..5 {
        let r = http.get(format!("{base}/health")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    // An unknown interface type is refused (after counting).
    let r = post_as(Some(&bob), "/v1/things/1", Some("fridge"))
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_interface_type", "{body}");

    // The statistics reach Postgres within a flush or two.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let expected: i64 = 2 + 1 + 1 + 1 + 3 + 1 + 1;
    loop {
        let total: Option<i64> =
            sqlx::query_scalar("SELECT sum(requests)::bigint FROM api_request_stats")
                .fetch_one(&pool)
                .await
                .unwrap();
        if total == Some(expected) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{total:?} of {expected}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by: Vec<Grouped> =
        sqlx::query_as(
            "SELECT level, interface_type, ip, client_id, route, status_class, sum(requests)::bigint, sum(refused)::bigint \
             FROM api_request_stats GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 4, 5, 6",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
    let ip = Some("127.0.0.1".to_owned());
    let s = |v: &str| v.to_owned();
    assert_eq!(
        by,
        vec![
            (
                s("authenticated"),
                s("other"),
                ip.clone(),
                Some(s("alice")),
                s("/graphql"),
                s("2xx"),
                1,
                0
            ),
            (
                s("authenticated"),
                s("other"),
                ip.clone(),
                Some(s("bob")),
                s("/v1/things/{id}"),
                s("2xx"),
                1,
                0
            ),
            (
                s("authenticated"),
                s("other"),
                ip.clone(),
                Some(s("bob")),
                s("/v1/things/{id}"),
                s("4xx"),
                1,
                0
            ),
            (
                s("authenticated"),
                s("web"),
                ip.clone(),
                Some(s("alice")),
                s("/v1/things/{id}"),
                s("2xx"),
                2,
                0
            ),
            (
                s("authenticated"),
                s("web"),
                ip.clone(),
                Some(s("alice")),
                s("/v1/things/{id}"),
                s("4xx"),
                1,
                1
            ),
            (
                s("unauthenticated"),
                s("other"),
                ip.clone(),
                None,
                s("/graphql"),
                s("2xx"),
                3,
                0
            ),
            (
                s("unauthenticated"),
                s("other"),
                ip.clone(),
                None,
                s("/graphql"),
                s("4xx"),
                1,
                1
            ),
        ]
    );

    // A rule changed in Postgres applies within a reload.
    let mut wider = tight("anon_ip", Level::Unauthenticated, Key::Ip, 3, None);
    wider.limit = 100;
    store::replace(&pool, &wider, "operator:o1")
        .await
        .unwrap()
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while post_as(None, "/graphql", None).await.unwrap().status() == 429 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the wider rule never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    drop(monitor);
    pool.close().await;
    etr_infra::pg::drop_database(&url).await.unwrap();
}
