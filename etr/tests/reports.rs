//! Balance reports end to end on the real broker: wallets topped up, paid from and
//! transferred between over REST; the turnover sheet and the daily balances over GraphQL
//! match the events read back from the log; the files come from the download endpoint and
//! from `etr report`; access rules and period checks answer with their codes.

mod support;

use calamine::{open_workbook_from_rs, DataType, Reader, Xlsx};
use etr_domain::wallet::Event as W;
use etr_domain::Event;
use etr_query_api::auth::Role;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::str::FromStr;
use support::{read_topic, token, wait_published, Api, Env};

const SHEET: &str =
    "query($from: Date!, $to: Date!, $client: UUID, $wallet: UUID, $p: PositionInput) { \
    turnoverSheet(from: $from, to: $to, clientId: $client, walletId: $wallet, minPosition: $p) { \
      from to utcOffset rows { walletId clientId currency opening debit credit closing movements } \
      totals { currency accounts opening debit credit closing movements } } }";

const DAILY: &str = "query($from: Date!, $to: Date!, $client: UUID, $p: PositionInput) { \
    dailyBalances(from: $from, to: $to, clientId: $client, minPosition: $p) { \
      rows { date walletId opening debit credit closing } } }";

fn dec(v: &Value) -> Decimal {
    Decimal::from_str(
        v.as_str()
            .unwrap_or_else(|| panic!("an amount string: {v}")),
    )
    .expect("a decimal")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_turnover_sheet_over_graphql_matches_the_events_on_the_log() {
    let env = Env::new("reports").await;
    let reports_dir = std::env::temp_dir().join(format!("etr-reports-{}", uuid::Uuid::new_v4()));
    let mut up = env.command(&["up", "--no-demo"]);
    up.env("ETR_REPORTS_DIR", &reports_dir)
        .env("ETR_REPORTS_POLL_MS", "200");
    let etr = env.start_with(up).await;
    let api = Api::new(&env);
    let client = uuid::Uuid::new_v4();
    let c = client.to_string();
    let w1 = api.open_wallet(&c, "open-1").await;
    let w2 = api.open_wallet(&c, "open-2").await;
    let base = format!("/v1/clients/{c}/wallets");
    let mut last = Value::Null;
    for (path, key, body) in [
        (
            format!("{base}/{w1}/top-ups"),
            "t1",
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#.to_owned(),
        ),
        (
            format!("{base}/{w1}/payments?wait=10"),
            "p1",
            r#"{"amount":"250.25","currency":"RUB","service_id":"mobile"}"#.to_owned(),
        ),
        (
            format!("{base}/{w1}/transfers"),
            "x1",
            format!(r#"{{"to_wallet_id":"{w2}","amount":"100.00","currency":"RUB"}}"#),
        ),
        (
            format!("{base}/{w2}/top-ups"),
            "t2",
            r#"{"amount":"50.50","currency":"RUB","source":"card"}"#.to_owned(),
        ),
        // Declined by fraud control: it moves no money.
        (
            format!("{base}/{w2}/payments?wait=10"),
            "p2",
            r#"{"amount":"10.00","currency":"RUB","service_id":"blocked-shop"}"#.to_owned(),
        ),
    ] {
        let (status, _, answer) = api
            .post(&path, Some(key), &body)
            .await
            .expect("command API");
        assert!((200..300).contains(&status), "{path}: {status} {answer}");
        if answer["position"].is_object() {
            last = answer["position"].clone();
        }
    }
    let position = json!({"partition": last["partition"], "sequence": last["sequence"]});

    // What the log says: credits and debits per wallet from the wallet events themselves.
    wait_published(&env).await;
    let mut expected: BTreeMap<String, (Decimal, Decimal, u64)> = BTreeMap::new();
    for r in read_topic(&env).await {
        if r.envelope.client_id.0 != client {
            continue;
        }
        let wallet = r.envelope.aggregate_id.to_string();
        let (debit, credit) = match &r.event {
            Event::Wallet(
                W::WalletToppedUp { amount, .. } | W::TransferReceived { amount, .. },
            ) => (Decimal::ZERO, amount.amount),
            Event::Wallet(W::HoldCaptured { amount, .. } | W::TransferSent { amount, .. }) => {
                (amount.amount, Decimal::ZERO)
            }
            _ => continue,
        };
        let e = expected.entry(wallet).or_default();
        e.0 += debit;
        e.1 += credit;
        e.2 += 1;
    }
    assert_eq!(expected.len(), 2, "{expected:?}");

    // Yesterday to tomorrow in Moscow time: today's events whatever the hour.
    let today = time::OffsetDateTime::now_utc()
        .to_offset(etr_reports::MOSCOW)
        .date();
    let (from, to) = (
        today.previous_day().expect("a day").to_string(),
        today.next_day().expect("a day").to_string(),
    );
    let operator = token("operator-1", Role::Operator);
    let v = env
        .graphql(
            Some(&operator),
            SHEET,
            json!({"from": from, "to": to, "client": c, "p": position}),
        )
        .await;
    assert!(v["errors"].is_null(), "{v}");
    let sheet = &v["data"]["turnoverSheet"];
    assert_eq!(sheet["utcOffset"], "+03:00");
    let rows = sheet["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{sheet}");
    let mut closing_total = Decimal::ZERO;
    for row in rows {
        let wallet = row["walletId"].as_str().expect("wallet id");
        let (debit, credit, count) = expected[wallet];
        assert_eq!(dec(&row["opening"]), Decimal::ZERO, "{row}");
        assert_eq!(dec(&row["debit"]), debit, "{row}");
        assert_eq!(dec(&row["credit"]), credit, "{row}");
        assert_eq!(dec(&row["closing"]), credit - debit, "{row}");
        assert_eq!(row["movements"].as_u64(), Some(count));
        closing_total += dec(&row["closing"]);
    }
    let w1_row = rows
        .iter()
        .find(|r| r["walletId"] == w1.as_str())
        .expect("w1");
    assert_eq!(
        (
            w1_row["debit"].as_str(),
            w1_row["credit"].as_str(),
            w1_row["closing"].as_str()
        ),
        (Some("350.25"), Some("1000.00"), Some("649.75"))
    );
    let totals = &sheet["totals"][0];
    assert_eq!(totals["currency"], "RUB");
    assert_eq!(dec(&totals["closing"]), closing_total);
    assert_eq!(totals["closing"], "800.25");
    // The closing balance is the wallet's balance in the read model.
    let v = env
        .graphql(
            Some(&operator),
            "query($w: UUID!) { wallet(id: $w) { balance } }",
            json!({"w": w1}),
        )
        .await;
    assert_eq!(v["data"]["wallet"]["balance"], w1_row["closing"], "{v}");

    // Every day of the period, for both wallets; today's closing is the sheet's closing.
    let v = env
        .graphql(
            Some(&operator),
            DAILY,
            json!({"from": from, "to": to, "client": c, "p": position}),
        )
        .await;
    assert!(v["errors"].is_null(), "{v}");
    let days = v["data"]["dailyBalances"]["rows"].as_array().expect("rows");
    assert_eq!(days.len(), 3 * 2);
    for d in days {
        assert_eq!(
            dec(&d["opening"]) + dec(&d["credit"]) - dec(&d["debit"]),
            dec(&d["closing"]),
            "{d}"
        );
    }
    let last_w1 = days
        .iter()
        .rev()
        .find(|d| d["walletId"] == w1.as_str())
        .expect("w1");
    assert_eq!(last_w1["closing"], "649.75");

    // The chart's data: one RUB line whose last point is the sheet's total closing balance.
    let v = env
        .graphql(
            Some(&operator),
            "query($from: Date!, $to: Date!, $client: UUID) { balanceChart(from: $from, to: $to, by: MONTH, clientId: $client) { currency points { date balance } } }",
            json!({"from": from, "to": to, "client": c}),
        )
        .await;
    let series = v["data"]["balanceChart"].as_array().expect("series");
    assert_eq!(series.len(), 1, "{v}");
    assert_eq!(series[0]["currency"], "RUB");
    let points = series[0]["points"].as_array().expect("points");
    assert_eq!(points.last().expect("a point")["date"], to.as_str());
    assert_eq!(points.last().expect("a point")["balance"], "800.25", "{v}");

    // The client itself reads its own sheet; others, partners and strangers do not.
    let mine = token(&c, Role::Client);
    let v = env
        .graphql(
            Some(&mine),
            SHEET,
            json!({"from": from, "to": to, "wallet": w2}),
        )
        .await;
    assert_eq!(
        v["data"]["turnoverSheet"]["rows"][0]["closing"], "150.50",
        "{v}"
    );
    let theirs = token(&uuid::Uuid::new_v4().to_string(), Role::Client);
    for vars in [
        json!({"from": from, "to": to, "client": c}),
        json!({"from": from, "to": to, "wallet": w1}),
    ] {
        let v = env.graphql(Some(&theirs), SHEET, vars).await;
        assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
        assert!(v["data"].is_null(), "{v}");
    }
    let partner = token("partner-1", Role::Partner);
    let v = env
        .graphql(Some(&partner), SHEET, json!({"from": from, "to": to}))
        .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "FORBIDDEN", "{v}");
    let v = env
        .graphql(None, SHEET, json!({"from": from, "to": to}))
        .await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
        "{v}"
    );
    let v = env
        .graphql(Some(&operator), SHEET, json!({"from": to, "to": from}))
        .await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "PERIOD_INVERTED",
        "{v}"
    );
    let v = env
        .graphql(
            Some(&operator),
            DAILY,
            json!({"from": "2020-01-01", "to": "2026-01-01"}),
        )
        .await;
    assert_eq!(
        v["errors"][0]["extensions"]["code"], "PERIOD_TOO_LONG",
        "{v}"
    );
    let v = env
        .graphql(
            Some(&operator),
            SHEET,
            json!({"from": from, "to": to, "wallet": uuid::Uuid::new_v4()}),
        )
        .await;
    assert_eq!(v["errors"][0]["extensions"]["code"], "NOT_FOUND", "{v}");

    // The files: the XLSX holds the same numbers; the chart is a PNG; no token, no file.
    let http = reqwest::Client::new();
    let url = |file: &str, extra: &str| {
        format!(
            "http://{}/reports/{file}?from={from}&to={to}&clientId={c}{extra}",
            env.query_addr
        )
    };
    let r = http
        .get(url("turnover.xlsx", ""))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert!(r.headers()["content-disposition"]
        .to_str()
        .expect("text")
        .contains(".xlsx"));
    let bytes = r.bytes().await.expect("body").to_vec();
    let mut book: Xlsx<_> = open_workbook_from_rs(std::io::Cursor::new(bytes)).expect("xlsx");
    let range = book
        .worksheet_range(etr_reports::export::TURNOVER_SHEET_NAME)
        .expect("sheet");
    let first = etr_reports::export::HEADER_ROW + 1;
    for row in first..first + 2 {
        let wallet = range
            .get_value((row, 0))
            .and_then(|c| c.get_string())
            .expect("wallet")
            .to_owned();
        let closing = range
            .get_value((row, 6))
            .and_then(|c| c.get_float())
            .expect("closing");
        let (debit, credit, _) = expected[&wallet];
        assert_eq!(
            Decimal::from_f64_retain(closing)
                .expect("finite")
                .round_dp(2),
            credit - debit
        );
    }
    let r = http
        .get(url("balance-chart.png", "&by=day"))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("chart");
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(r
        .bytes()
        .await
        .expect("body")
        .starts_with(b"\x89PNG\r\n\x1a\n"));
    let r = http
        .get(url("daily-balances.csv", ""))
        .bearer_auth(&mine)
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("text").lines().count(), 1 + 3 * 2);
    let r = http
        .get(url("turnover.csv", ""))
        .send()
        .await
        .expect("no token");
    assert_eq!(r.status(), 401);
    let r = http
        .get(url("turnover.csv", ""))
        .bearer_auth(&theirs)
        .send()
        .await
        .expect("other client");
    assert_eq!(r.status(), 403);
    let r = http
        .get(url("turnover.pdf", ""))
        .bearer_auth(&operator)
        .send()
        .await
        .expect("bad format");
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "BAD_USER_INPUT", "{body}");

    // The command line writes the same sheet.
    let out = reports_dir.join("cli-turnover.csv");
    let status = env
        .command(&[
            "report", "turnover", "--from", &from, "--to", &to, "--client", &c, "--out",
        ])
        .arg(&out)
        .status()
        .expect("etr report");
    assert!(status.success());
    let csv = std::fs::read_to_string(&out).expect("the CSV");
    assert!(
        csv.contains(&format!("{w1},{c},RUB,0.00,350.25,1000.00,649.75,3")),
        "{csv}"
    );
    assert!(
        csv.contains("total,2,RUB,0.00,350.25,1150.50,800.25"),
        "{csv}"
    );
    let chart = reports_dir.join("cli-chart.svg");
    let status = env
        .command(&[
            "report", "chart", "--from", &from, "--to", &to, "--wallet", &w1, "--by", "month",
            "--out",
        ])
        .arg(&chart)
        .status()
        .expect("etr report chart");
    assert!(status.success());
    assert!(std::fs::read_to_string(&chart)
        .expect("svg")
        .contains("<svg"));

    // A schedule that came due a minute ago: the platform's runner stores the chart and
    // notifies the recipient.
    let first_run = (time::OffsetDateTime::now_utc() - time::Duration::minutes(1))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("a time");
    let added = env
        .command(&[
            "report",
            "schedule",
            "add",
            "--name",
            "Daily chart",
            "--report",
            "chart",
            "--format",
            "png",
            "--by",
            "day",
            "--client",
            &c,
            "--every",
            "day",
            "--recipients",
            "ops@example.com",
            "--first-run",
            &first_run,
        ])
        .output()
        .expect("etr report schedule add");
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let added: Value = serde_json::from_slice(&added.stdout).expect("JSON");
    let schedule = uuid::Uuid::parse_str(added["schedule_id"].as_str().expect("id")).expect("uuid");
    let pool = sqlx::PgPool::connect(&env.database_url).await.expect("db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let (location, status): (String, String) = loop {
        let run: Option<(Option<String>, String)> =
            sqlx::query_as("SELECT location, status FROM report_runs WHERE schedule_id = $1")
                .bind(schedule)
                .fetch_optional(&pool)
                .await
                .expect("runs");
        if let Some((Some(location), status)) = run {
            break (location, status);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled run did not finish"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(status, "done");
    let path = location.strip_prefix("file://").expect("a local file");
    assert!(std::fs::read(path)
        .expect("the stored chart")
        .starts_with(b"\x89PNG"));
    let notices: Vec<(String, String)> =
        sqlx::query_as("SELECT recipient, location FROM report_deliveries")
            .fetch_all(&pool)
            .await
            .expect("deliveries");
    assert_eq!(
        notices,
        vec![("ops@example.com".to_owned(), location.clone())]
    );
    pool.close().await;

    etr.kill();
    std::fs::remove_dir_all(&reports_dir).ok();
}
