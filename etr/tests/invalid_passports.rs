//! The MVD invalid-passports list on the real Postgres server: `etr passports load` replaces
//! the list as a whole, skips and counts malformed lines, and `etr passports check` finds a
//! passport by series and number in any written form.

use serde_json::Value;
use std::fmt::Write as _;
use std::process::Command;

fn etr(database_url: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_etr"))
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("etr runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn check(url: &str, passport: &str) -> bool {
    let (ok, out, err) = etr(url, &["passports", "check", passport]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["invalid"].as_bool().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_list_loads_whole_and_answers_lookups() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_passports")
        .await
        .expect("a fresh database on the local Postgres server");
    pool.close().await;
    let dir = std::env::temp_dir().join(format!("etr-passports-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // 120,000 passports (more than two COPY chunks), one listed twice, three malformed lines.
    let mut csv = String::from("PASSP_SERIES,PASSP_NUMBER\n");
    for n in 1..=120_000u32 {
        writeln!(csv, "{:04},{:06}", 4500 + n % 100, n).unwrap();
    }
    csv.push_str("4501,000001\n6004,12345\nABCD,123456\n6004;123456\n");
    let first = dir.join("first.csv");
    std::fs::write(&first, &csv).unwrap();
    let (ok, out, err) = etr(&url, &["passports", "load", first.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            v["rows_read"].as_u64(),
            v["listed"].as_u64(),
            v["skipped"].as_u64()
        ),
        (Some(120_004), Some(120_000), Some(3))
    );
    assert!(check(&url, "4501 000001"));
    assert!(check(&url, "4577 000077"));
    assert!(!check(&url, "4577 000078"));

    // A new snapshot replaces the list: what it leaves out is no longer invalid.
    let second = dir.join("second.csv");
    std::fs::write(&second, "PASSP_SERIES,PASSP_NUMBER\n6004,123456\n").unwrap();
    let (ok, out, err) = etr(&url, &["passports", "load", second.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(out.contains("\"listed\":1"), "{out}");
    assert!(check(&url, "6004123456"));
    assert!(!check(&url, "4501 000001"));

    // A malformed passport is refused with its code; a missing file names the file.
    let (ok, _, err) = etr(&url, &["passports", "check", "45 00"]);
    assert!(!ok && err.contains("passport"), "{err}");
    let (ok, _, err) = etr(&url, &["passports", "load", "/nonexistent/list.csv"]);
    assert!(!ok && err.contains("/nonexistent/list.csv"), "{err}");

    let loads: i64 = {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let n = sqlx::query_scalar("SELECT count(*) FROM invalid_passport_loads")
            .fetch_one(&pool)
            .await
            .unwrap();
        pool.close().await;
        n
    };
    assert_eq!(loads, 2);
    std::fs::remove_dir_all(&dir).ok();
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}
