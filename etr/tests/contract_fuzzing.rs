//! Contract fuzzing of the command API: schemathesis (PyPI) reads `/openapi.json` and runs
//! every phase (examples, coverage, fuzzing, stateful) with every check, once with a client's
//! token and once with an operator's, against the real platform on the real broker and
//! Postgres. The run must end with no failure: no server error, every response as the
//! document declares it (status, headers, body schema), no schema-valid request refused
//! with 400 and no schema-invalid one accepted — so the document says exactly what the API
//! accepts. Configuration: `tests/contract/schemathesis.toml`; the tool is installed by
//! `scripts/env.sh` (`ensure_schemathesis`), found through `ETR_SCHEMATHESIS`.

mod support;

use etr_query_api::auth::Role;
use std::process::Command;
use support::{token, Api, Env};
use uuid::Uuid;

/// Examples per operation and phase: enough to reach every field's edge cases in a few
/// minutes; `ETR_CONTRACT_MAX_EXAMPLES` raises it for a longer run.
const MAX_EXAMPLES: &str = "25";

fn schemathesis() -> String {
    std::env::var("ETR_SCHEMATHESIS").unwrap_or_else(|_| "schemathesis".to_owned())
}

/// Runs schemathesis as `role`; returns whether it passed and what it printed.
fn run(env: &Env, bearer: &str, client: &str, wallet: &str, label: &str) -> (bool, String) {
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/contract/schemathesis.toml"
    );
    let report = std::env::temp_dir().join(format!("etr-contract-{label}-{}", Uuid::new_v4()));
    let examples =
        std::env::var("ETR_CONTRACT_MAX_EXAMPLES").unwrap_or_else(|_| MAX_EXAMPLES.to_owned());
    let output = Command::new(schemathesis())
        .args(["--config-file", config, "run"])
        .arg(format!("{}/openapi.json", env.api()))
        .args(["--max-examples", &examples])
        .arg("--report-dir")
        .arg(&report)
        .args(["--report", "junit"])
        .env("ETR_CONTRACT_BASE_URL", env.api())
        .env("ETR_CONTRACT_TOKEN", bearer)
        .env("ETR_CONTRACT_CLIENT_ID", client)
        .env("ETR_CONTRACT_WALLET_ID", wallet)
        .env("NO_COLOR", "1")
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "schemathesis could not be started ({e}); scripts/test installs it, or set ETR_SCHEMATHESIS"
            )
        });
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_says_exactly_what_the_api_accepts() {
    let env = Env::new("contract").await;
    let _etr = env.start(&["up", "--no-demo"]).await;
    let api = Api::new(&env);
    let client = Uuid::new_v4().to_string();
    let wallet = api.open_wallet(&client, "contract-wallet").await;
    let (status, _, body) = api
        .post(
            &format!("/v1/clients/{client}/wallets/{wallet}/top-ups"),
            Some("contract-top-up"),
            r#"{"amount":"1000.00","currency":"RUB","source":"card"}"#,
        )
        .await
        .expect("the command API answers");
    assert_eq!(status, 200, "{body}");

    let mut failures = Vec::new();
    for (label, bearer) in [
        ("client", token(&client, Role::Client)),
        ("operator", token("operator-contract", Role::Operator)),
    ] {
        let (passed, output) = run(&env, &bearer, &client, &wallet, label);
        eprintln!("==== schemathesis as {label} ====\n{output}");
        if !passed {
            failures.push(label);
        }
    }
    assert!(
        failures.is_empty(),
        "schemathesis found failures as {failures:?} (its output is above)"
    );
}
