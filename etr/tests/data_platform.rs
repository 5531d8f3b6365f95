//! `etr replay --into data-platform` fills the `dp` schema from the log; replaying twice
//! gives identical tables.

mod support;

use support::{read_topic, wait_published, Api, Env};

async fn dump(pool: &sqlx::PgPool) -> Vec<String> {
    let mut rows = Vec::new();
    for table in [
        "dp.dim_clients",
        "dp.dim_services",
        "dp.dim_partners",
        "dp.fact_events",
        "dp.fact_wallet_operations",
        "dp.fact_payments",
        "dp.fact_applications",
        "dp.fact_loans",
    ] {
        let part: Vec<String> =
            sqlx::query_scalar(&format!("SELECT t::text FROM {table} t ORDER BY t::text"))
                .fetch_all(pool)
                .await
                .unwrap();
        rows.push(format!("{table}: {}", part.len()));
        rows.extend(part);
    }
    rows
}

fn replay(env: &Env, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["replay", "--into", "data-platform"];
    args.extend_from_slice(extra);
    let out = env.command(&args).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_twice_gives_identical_tables() {
    let env = Env::new("dp").await;
    let api = Api::new(&env);
    let client = uuid::Uuid::new_v4();
    let etr = env.start(&["up", "--no-demo"]).await;
    let (_, _, a) = api
        .post(
            &format!("/v1/clients/{client}/wallets"),
            Some("a"),
            r#"{"currency":"RUB"}"#,
        )
        .await
        .unwrap();
    let (_, _, b) = api
        .post(
            &format!("/v1/clients/{client}/wallets"),
            Some("b"),
            r#"{"currency":"RUB"}"#,
        )
        .await
        .unwrap();
    let a = a["wallets"][0]["wallet_id"].as_str().unwrap().to_owned();
    let b = b["wallets"][0]["wallet_id"].as_str().unwrap().to_owned();
    let base = format!("/v1/clients/{client}/wallets/{a}");
    for (path, key, body) in [
        (
            "/top-ups",
            "t",
            r#"{"amount":"500.00","currency":"RUB","source":"card"}"#.to_owned(),
        ),
        (
            "/payments",
            "p1",
            r#"{"amount":"120.50","currency":"RUB","service_id":"mobile"}"#.to_owned(),
        ),
        (
            "/payments",
            "p2",
            r#"{"amount":"10","currency":"RUB","service_id":"svc-fail"}"#.to_owned(),
        ),
        (
            "/transfers",
            "x",
            format!(r#"{{"to_wallet_id":"{b}","amount":"100","currency":"RUB"}}"#),
        ),
    ] {
        let (s, _, v) = api
            .post(&format!("{base}{path}"), Some(key), &body)
            .await
            .unwrap();
        assert!(s == 200 || s == 201, "{v}");
    }
    wait_published(&env).await;
    let records = read_topic(&env).await;
    // The replay runs with the platform stopped (it serves the registry itself).
    drop(etr);

    let first = replay(&env, &[]);
    assert_eq!(first["events"].as_u64(), Some(records.len() as u64));
    let pool = sqlx::PgPool::connect(&env.database_url).await.unwrap();
    let once = dump(&pool).await;
    let again = replay(&env, &[]);
    assert_eq!(again["events"], first["events"]);
    assert_eq!(dump(&pool).await, once, "a second replay changes nothing");

    let statuses: Vec<(String, String)> =
        sqlx::query_as("SELECT service_id, status FROM dp.fact_payments ORDER BY service_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        statuses,
        [
            ("mobile".to_owned(), "succeeded".to_owned()),
            ("svc-fail".to_owned(), "failed".to_owned())
        ]
    );
    let kinds: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, sum(amount)::text FROM dp.fact_wallet_operations GROUP BY kind ORDER BY kind",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected: Vec<(String, String)> = [
        ("capture", "120.50"),
        ("hold", "130.50"),
        ("release", "10.00"),
        ("top_up", "500.00"),
        ("transfer_in", "100.00"),
        ("transfer_out", "100.00"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(kinds, expected);

    // A window after every event selects nothing.
    let none = replay(&env, &["--from", "2100-01-01T00:00:00Z"]);
    assert_eq!(none["events"], 0);
}
