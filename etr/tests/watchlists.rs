//! Watch lists through the binary on the real Postgres server: `etr lists load-rfm` loads a
//! published Rosfinmonitoring file and a later one delists, `etr lists check` prints hits and
//! the verdict as JSON, `etr lists history` the listings, and the operator lists are created,
//! filled, shown and emptied with `create`, `add`, `show` and `remove`.

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

fn json(url: &str, args: &[&str]) -> Value {
    let (ok, out, err) = etr(url, args);
    assert!(ok, "etr {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn check(url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["lists", "check"];
    args.extend_from_slice(extra);
    json(url, &args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_load_check_and_manage_through_the_binary() {
    let (pool, url) = etr_infra::pg::fresh_database("etr_test_watchlists_cli")
        .await
        .expect("a fresh database on the local Postgres server");
    pool.close().await;
    let dir = std::env::temp_dir().join(format!("etr-watchlists-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // A generated list of 3,000 persons, two malformed lines.
    let mut csv = String::from("ID;FIO;DATE_OF_BIRTH;DOCUMENT\n");
    for n in 1..=3_000u32 {
        writeln!(
            csv,
            "{n};Фамилиёв{n} Имя;{:02}.{:02}.{};{:04} {:06}",
            n % 28 + 1,
            n % 12 + 1,
            1960 + n % 40,
            4600 + n % 100,
            n
        )
        .unwrap();
    }
    csv.push_str("x;;01.01.1990;\n9999;Плохая Дата;32.01.1990;\n");
    let first = dir.join("rfm-1.csv");
    std::fs::write(&first, &csv).unwrap();
    let loaded = json(&url, &["lists", "load-rfm", first.to_str().unwrap()]);
    assert_eq!(
        (
            loaded["rows_read"].as_u64(),
            loaded["listed"].as_u64(),
            loaded["skipped"].as_u64()
        ),
        (Some(3_002), Some(3_000), Some(2)),
        "{loaded}"
    );
    let first_load = loaded["load_id"].as_i64().unwrap();

    // Person 42: 15.07.1962, passport 4642 000042.
    let by_name = ["--name", "фамилиев42  имя", "--birth-date", "1962-07-15"];
    let v = check(&url, &by_name);
    assert_eq!(v["hits"][0]["list"]["kind"], "rosfinmonitoring", "{v}");
    assert_eq!(v["hits"][0]["entry_id"], "42");
    assert_eq!(v["hits"][0]["matched_on"], "name_and_birth_date");
    assert_eq!(v["verdict"]["outcome"], "declined");
    let v = check(
        &url,
        &[
            "--name",
            "Кто-то Другой",
            "--birth-date",
            "2001-01-01",
            "--document",
            "4642 000042",
        ],
    );
    assert_eq!(v["hits"][0]["matched_on"], "document", "{v}");
    // The name alone is not a hit.
    let v = check(
        &url,
        &["--name", "Фамилиёв42 Имя", "--birth-date", "1962-07-16"],
    );
    assert_eq!(v["hits"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["verdict"]["outcome"], "passed");

    // A second file without person 42: delisted now, listed as of the first load.
    let second = dir.join("rfm-2.csv");
    std::fs::write(
        &second,
        "ID;FIO;DATE_OF_BIRTH;DOCUMENT\n1;Фамилиёв1 Имя;02.02.1961;4601 000001\n",
    )
    .unwrap();
    let loaded = json(&url, &["lists", "load-rfm", second.to_str().unwrap()]);
    assert_eq!(
        (loaded["delisted"].as_u64(), loaded["added"].as_u64()),
        (Some(2_999), Some(0)),
        "{loaded}"
    );
    let v = check(&url, &by_name);
    assert_eq!(v["verdict"]["outcome"], "passed", "{v}");
    let mut as_of = by_name.to_vec();
    let first_load_text = first_load.to_string();
    as_of.extend(["--as-of-load", &first_load_text]);
    let v = check(&url, &as_of);
    assert_eq!(v["hits"].as_array().map(Vec::len), Some(1), "{v}");
    let (ok, out, err) = etr(
        &url,
        &[
            "lists",
            "history",
            "--name",
            "Фамилиёв42 Имя",
            "--birth-date",
            "1962-07-15",
        ],
    );
    assert!(ok, "{err}");
    let changes: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["change"].to_string())
        .collect();
    assert_eq!(changes, ["\"listed\"", "\"delisted\""], "{out}");

    // Operator lists: a block list that declines, an allow list that clears it.
    let list = json(
        &url,
        &[
            "lists", "create", "fraud", "--kind", "block", "--action", "decline", "--by", "op-1",
        ],
    );
    assert_eq!(list["kind"], "block");
    json(
        &url,
        &[
            "lists", "create", "staff", "--kind", "allow", "--by", "op-1",
        ],
    );
    let client = [
        "--name",
        "Петров Пётр",
        "--birth-date",
        "1985-10-10",
        "--document",
        "112-233-445 95",
    ];
    let entry = json(
        &url,
        &[
            "lists",
            "add",
            "fraud",
            "--document",
            "11223344595",
            "--reason",
            "chargebacks",
            "--by",
            "op-1",
        ],
    );
    let entry_id = entry["id"].as_i64().unwrap().to_string();
    let v = check(&url, &client);
    assert_eq!(v["hits"][0]["list"]["name"], "fraud", "{v}");
    assert_eq!(v["hits"][0]["reason"], "chargebacks");
    assert_eq!(v["verdict"]["outcome"], "declined");
    assert!(
        v["verdict"]["reasons"][0]
            .as_str()
            .is_some_and(|r| r.contains("block list `fraud`")),
        "{v}"
    );
    json(
        &url,
        &[
            "lists",
            "add",
            "staff",
            "--name",
            "ПЕТРОВ ПЕТР",
            "--birth-date",
            "1985-10-10",
            "--reason",
            "employee",
            "--by",
            "op-1",
        ],
    );
    assert_eq!(check(&url, &client)["verdict"]["outcome"], "passed");
    let page = json(&url, &["lists", "show", "fraud"]);
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(1), "{page}");
    json(
        &url,
        &[
            "lists", "remove", "fraud", &entry_id, "--reason", "refunded", "--by", "op-2",
        ],
    );
    let v = check(&url, &client);
    assert_eq!(v["hits"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["hits"][0]["list"]["kind"], "allow");
    let page = json(&url, &["lists", "show", "fraud"]);
    assert_eq!(page["entries"].as_array().map(Vec::len), Some(0), "{page}");
    let page = json(&url, &["lists", "show", "fraud", "--include-removed"]);
    assert_eq!(page["entries"][0]["removed_by"], "op-2", "{page}");
    let (ok, out, _) = etr(&url, &["lists", "show"]);
    assert!(ok && out.lines().count() == 2, "{out}");

    // Refusals name what is wrong.
    let (ok, _, err) = etr(
        &url,
        &[
            "lists",
            "check",
            "--name",
            "X",
            "--birth-date",
            "10.10.1985",
        ],
    );
    assert!(!ok && err.contains("YYYY-MM-DD"), "{err}");
    let (ok, _, err) = etr(
        &url,
        &[
            "lists",
            "add",
            "nope",
            "--document",
            "4510 123456",
            "--reason",
            "r",
            "--by",
            "op",
        ],
    );
    assert!(!ok && err.contains("nope"), "{err}");
    let (ok, _, err) = etr(&url, &["lists", "load-rfm", "/nonexistent/rfm.csv"]);
    assert!(!ok && err.contains("/nonexistent/rfm.csv"), "{err}");

    std::fs::remove_dir_all(&dir).ok();
    etr_infra::pg::drop_database(&url)
        .await
        .expect("dropping the test database");
}
