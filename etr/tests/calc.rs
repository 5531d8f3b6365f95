//! `etr calc schedule` prints what independently computed vectors say. The expected figures
//! come from a separate program (Python 3.11 `decimal`, 40 digits, ROUND_HALF_EVEN) written
//! from the rules documented in `etr_domain::schedule`; 8,884.88 is also the textbook
//! annuity of 100,000 at 1 % a month over 12 months.

use serde_json::Value;
use std::process::Command;

fn calc(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_etr"))
        .arg("calc")
        .args(args)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("etr runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn schedule_json_matches_the_vectors() {
    let (ok, out, err) = calc(&[
        "schedule",
        "--amount",
        "50000.00",
        "--rate",
        "24.5",
        "--periods",
        "6",
        "--day-count",
        "actual/365",
        "--start",
        "2026-01-31",
        "--json",
    ]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    let rows: Vec<(String, String, String)> = v["instalments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["date"].as_str().unwrap().to_owned(),
                i["payment"].as_str().unwrap().to_owned(),
                i["balance"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("2026-02-28", "8938.85", "42000.88"),
        ("2026-03-31", "8938.85", "33935.99"),
        ("2026-04-30", "8938.85", "25680.51"),
        ("2026-05-31", "8938.85", "17276.03"),
        ("2026-06-30", "8938.85", "8685.07"),
        ("2026-07-31", "8865.79", "0.00"),
    ];
    assert_eq!(
        rows,
        expected
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(v["terms"]["day_count"], "actual/365");
}

#[test]
fn schedule_table_and_refusals() {
    let (ok, out, _) = calc(&[
        "schedule",
        "--amount",
        "100000.00",
        "--rate",
        "12",
        "--periods",
        "12",
        "--start",
        "2026-01-15",
    ]);
    assert!(ok);
    assert!(
        out.contains("8884.88") && out.contains("total interest 6618.53"),
        "{out}"
    );
    for (args, says) in [
        (vec!["--amount", "100.001"], "--amount `100.001`"),
        (vec!["--amount", "-5"], "--amount `-5`"),
        (vec!["--rate", "abc"], "--rate `abc`"),
        (vec!["--start", "2026-13-01"], "--start `2026-13-01`"),
        (vec!["--day-count", "30/365"], "--day-count `30/365`"),
        (vec!["--method", "balloon"], "--method `balloon`"),
        (vec!["--periods", "0"], "periods must be 1 to 600"),
    ] {
        let mut all = vec![
            "schedule",
            "--amount",
            "1000.00",
            "--rate",
            "10",
            "--periods",
            "12",
            "--start",
            "2026-01-01",
        ];
        // Each case replaces one flag of a valid command line.
        for pair in args.chunks(2) {
            let at = all.iter().position(|a| *a == pair[0]);
            match at {
                Some(i) => all[i + 1] = pair[1],
                None => all.extend_from_slice(pair),
            }
        }
        let (ok, _, err) = calc(&all);
        assert!(!ok, "{all:?} was accepted");
        assert!(err.contains(says), "{all:?}: {err}");
    }
}

#[test]
fn psk_of_a_flows_file() {
    let dir = std::env::temp_dir().join(format!("etr-calc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // 0.8 %/day over 10 days: 0.08 per 10-day base period × 36.5 × 100 = 292.000 % (353-FZ
    // art. 6, by hand).
    let payday = dir.join("payday.json");
    std::fs::write(
        &payday,
        r#"[{"date":"2026-01-01","amount":"-10000.00"},{"date":"2026-01-11","amount":"10800.00"}]"#,
    )
    .unwrap();
    let (ok, out, err) = calc(&["psk", "--flows", payday.to_str().unwrap()]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (v["percent"].as_str(), v["money"].as_str()),
        (Some("292.000"), Some("800.00"))
    );

    let less = dir.join("less.json");
    std::fs::write(
        &less,
        r#"[{"date":"2026-01-01","amount":"-10000.00"},{"date":"2026-02-01","amount":"9000.00"}]"#,
    )
    .unwrap();
    let (ok, _, err) = calc(&["psk", "--flows", less.to_str().unwrap()]);
    assert!(!ok && err.contains("less than was lent"), "{err}");

    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"[{"date":"2026-01-01","amount":-10000.5}]"#).unwrap();
    let (ok, _, err) = calc(&["psk", "--flows", bad.to_str().unwrap()]);
    assert!(!ok && err.contains("--flows"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Equal-principal schedules. The first vector is the textbook case (60,000 at 18 % over six
/// months, 30/360: 10,000 of principal and 1.5 % of the balance each month, by hand); the
/// second was computed with Python 3.11 `decimal` (40 digits, ROUND_HALF_EVEN) from the
/// rules in `etr_domain::schedule`: 10,000 ÷ 3 = 3,333.33, the last instalment repays the
/// 3,333.34 left.
#[test]
fn equal_principal_schedules_match_the_vectors() {
    let rows = |args: &[&str]| -> Vec<(String, String, String, String)> {
        let (ok, out, err) = calc(args);
        assert!(ok, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        v["instalments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let s = |k: &str| i[k].as_str().unwrap().to_owned();
                (s("payment"), s("principal"), s("interest"), s("balance"))
            })
            .collect()
    };
    let textbook = rows(&[
        "schedule",
        "--amount",
        "60000.00",
        "--rate",
        "18",
        "--periods",
        "6",
        "--start",
        "2026-01-15",
        "--method",
        "equal-principal",
        "--json",
    ]);
    let expected = [
        ("10900.00", "10000.00", "900.00", "50000.00"),
        ("10750.00", "10000.00", "750.00", "40000.00"),
        ("10600.00", "10000.00", "600.00", "30000.00"),
        ("10450.00", "10000.00", "450.00", "20000.00"),
        ("10300.00", "10000.00", "300.00", "10000.00"),
        ("10150.00", "10000.00", "150.00", "0.00"),
    ];
    assert_eq!(textbook.len(), expected.len());
    for (got, want) in textbook.iter().zip(expected) {
        assert_eq!(
            (
                got.0.as_str(),
                got.1.as_str(),
                got.2.as_str(),
                got.3.as_str()
            ),
            want
        );
    }
    let residual = rows(&[
        "schedule",
        "--amount",
        "10000.00",
        "--rate",
        "24.5",
        "--periods",
        "3",
        "--day-count",
        "actual/365",
        "--start",
        "2026-01-31",
        "--method",
        "equal-principal",
        "--json",
    ]);
    let expected = [
        ("3521.28", "3333.33", "187.95", "6666.67"),
        ("3472.05", "3333.33", "138.72", "3333.34"),
        ("3400.46", "3333.34", "67.12", "0.00"),
    ];
    assert_eq!(residual.len(), expected.len());
    for (got, want) in residual.iter().zip(expected) {
        assert_eq!(
            (
                got.0.as_str(),
                got.1.as_str(),
                got.2.as_str(),
                got.3.as_str()
            ),
            want
        );
    }
}

/// `etr calc payoff`: 10,000.00 at 36.5 % a year, actual/365 — 0.1 % a day, worked by hand.
/// 500.00 repaid on day 5 pays its 50.00 of interest and 450.00 of principal; five more days
/// at 9.55 a day on 9,550.00 make 47.75, so the payoff on 2026-05-11 is 9,597.75. On the
/// disbursement day the payoff is the principal.
#[test]
fn payoff_of_a_loan_file_matches_the_hand_computed_figures() {
    let dir = std::env::temp_dir().join(format!("etr-payoff-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("loan.json");
    std::fs::write(
        &file,
        serde_json::json!({
            "principal": "10000.00", "annual_rate_percent": "36.5", "penalty_rate_percent": "20",
            "day_count": "actual/365", "method": "annuity", "contract_date": "2026-05-01",
            "periods": 3,
            "operations": [{"date": "2026-05-06", "repay": "500.00"}]
        })
        .to_string(),
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let (ok, out, err) = calc(&["payoff", "--loan-file", path, "--on", "2026-05-11"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["payoff"], "9597.75", "{v}");
    assert_eq!(v["debt"]["principal"], "9550.00", "{v}");
    assert_eq!(v["debt"]["interest"], "47.75", "{v}");
    assert_eq!(v["max_charges"], "10000.00", "{v}");
    let (ok, out, err) = calc(&["payoff", "--loan-file", path, "--on", "2026-05-06"]);
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["payoff"], "9550.00", "{v}");
    // A date before the last operation is refused with its reason.
    let (ok, _, err) = calc(&["payoff", "--loan-file", path, "--on", "2026-05-01"]);
    assert!(!ok);
    assert!(err.contains("date_in_the_past"), "{err}");
}
