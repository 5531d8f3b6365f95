//! The loan conveyor's wiring: its configuration (product and identification catalogues,
//! timings), the simulators of its external systems, and its tracker and executor.

use etr_command_api::api::App;
use etr_infra::config::Settings;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use crate::{start_projector, Error, HandlerCommands, Restart};

/// The loan conveyor's configuration: the product catalogue and the identification
/// catalogue (JSON; the built-in `platform/config/*.json` unless `ETR_PRODUCTS_FILE` /
/// `ETR_IDENTIFICATION_FILE` name others), the process versions (`ETR_PROCESS_VERSIONS_FILE`,
/// a JSON list of `{name, repeat_client?, channel?, skip_manual_identification}`), the PDN limit
/// (`ETR_PDN_DECLINE_ABOVE`, percent, default 80) and the score bands.
///
/// Errors: [`Error::Config`] for a file that cannot be read or parsed.
pub fn conveyor_rules() -> Result<etr_sagas::conveyor::Rules, Error> {
    let read = |var: &str, builtin: &str| -> Result<String, Error> {
        match std::env::var(var) {
            Ok(path) => std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("{var}={path}: {e}"))),
            Err(_) => Ok(builtin.to_owned()),
        }
    };
    let products: Vec<etr_domain::product::Product> = serde_json::from_str(&read(
        "ETR_PRODUCTS_FILE",
        include_str!("../config/products.json"),
    )?)
    .map_err(|e| Error::Config(format!("product catalogue: {e}")))?;
    let identification = etr_domain::identification::Catalogue::from_json(&read(
        "ETR_IDENTIFICATION_FILE",
        include_str!("../config/identification.json"),
    )?)
    .map_err(|e| Error::Config(e.to_string()))?;
    // Process versions (seed 000, 6.1.5): the first whose conditions hold is taken; by
    // default repeat clients skip photo identification.
    let versions = match std::env::var("ETR_PROCESS_VERSIONS_FILE") {
        Ok(path) => serde_json::from_str(
            &std::fs::read_to_string(&path)
                .map_err(|e| Error::Config(format!("ETR_PROCESS_VERSIONS_FILE={path}: {e}")))?,
        )
        .map_err(|e| Error::Config(format!("process versions: {e}")))?,
        Err(_) => etr_domain::conveyor::Versions::default(),
    };
    let pdn_decline_above = std::env::var("ETR_PDN_DECLINE_ABOVE")
        .ok()
        .and_then(|v| rust_decimal::Decimal::from_str_exact(v.trim()).ok())
        .unwrap_or(rust_decimal::Decimal::from(80));
    Ok(etr_sagas::conveyor::Rules {
        products,
        identification,
        versions,
        pdn_decline_above,
        decline_below_score: 400,
        review_below_score: 600,
        lender: etr_sagas::conveyor::Lender::default(),
    })
}

/// The validation rules of client documents: `platform/config/documents.json`, or the file
/// `ETR_DOCUMENT_RULES_FILE` names.
///
/// Errors: [`Error::Config`] for a file that cannot be read or parsed.
pub fn document_rules() -> Result<etr_domain::documents::Rules, Error> {
    let json = match std::env::var("ETR_DOCUMENT_RULES_FILE") {
        Ok(path) => std::fs::read_to_string(&path)
            .map_err(|e| Error::Config(format!("ETR_DOCUMENT_RULES_FILE={path}: {e}")))?,
        Err(_) => include_str!("../config/documents.json").to_owned(),
    };
    etr_domain::documents::Rules::from_json(&json).map_err(|e| Error::Config(e.to_string()))
}

/// The document store: a local directory, `ETR_DOCUMENTS_DIR` (default
/// `target/etr-documents`), created when missing.
///
/// Errors: [`Error::Config`] when the directory cannot be created.
pub fn document_store() -> Result<etr_documents::DocumentStore, Error> {
    let dir = std::env::var("ETR_DOCUMENTS_DIR").unwrap_or_else(|_| "target/etr-documents".into());
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Config(format!("ETR_DOCUMENTS_DIR={dir}: {e}")))?;
    etr_documents::DocumentStore::local(&dir).map_err(|e| Error::Config(e.to_string()))
}

/// The conveyor's timing: the defaults of [`etr_domain::conveyor::Policy`], overridden by
/// `ETR_CONVEYOR_SIGN_WITHIN_SECS` (approval to expiry), `ETR_CONVEYOR_ATTEMPT_TIMEOUT_MS`
/// (one activity) and `ETR_CONVEYOR_MAX_ATTEMPTS`; a value that is not a positive integer is
/// ignored.
pub fn conveyor_policy() -> etr_domain::conveyor::Policy {
    let mut policy = etr_domain::conveyor::Policy::default();
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|v| *v > 0)
    };
    if let Some(secs) = number("ETR_CONVEYOR_SIGN_WITHIN_SECS") {
        policy.sign_within = time::Duration::seconds(secs);
    }
    if let Some(ms) = number("ETR_CONVEYOR_ATTEMPT_TIMEOUT_MS") {
        policy.attempt_timeout = time::Duration::milliseconds(ms);
    }
    if let Some(n) = number("ETR_CONVEYOR_MAX_ATTEMPTS") {
        policy.max_attempts = u32::try_from(n).unwrap_or(policy.max_attempts);
    }
    policy
}

/// The simulators of the conveyor's external systems (deterministic by input; see
/// `etr_sagas::lending_simulators`): identity checks, the bankruptcy register, the risk
/// module, SBC / Tinkoff / Elecsnet, notifications.
pub fn simulated_lending_ports(pool: &PgPool) -> etr_sagas::conveyor::Ports {
    use etr_sagas::lending_simulators as sim;
    let mut cards: std::collections::BTreeMap<String, Arc<dyn etr_domain::ports::CardProvider>> =
        std::collections::BTreeMap::new();
    for name in ["sbc", "tinkoff", "elecsnet"] {
        cards.insert(
            name.to_owned(),
            Arc::new(sim::CardProviderSimulator::new(
                name,
                Duration::ZERO,
                pool.clone(),
            )),
        );
    }
    etr_sagas::conveyor::Ports {
        identity: Arc::new(sim::IdentityChecksSimulator::default()),
        bankruptcy: Arc::new(etr_sagas::simulators::BankruptcyRegistrySimulator::default()),
        risk: Arc::new(sim::RiskModuleSimulator::default()),
        cards,
        notifier: Arc::new(sim::NotifierSimulator::default()),
    }
}

/// Starts the loan conveyor: its tracker (a projection of the application events) and its
/// executor, which performs the activities through `ports` and records their results through
/// `app`'s command handler. Signed agreements are stored under `ETR_DOCUMENTS_DIR` (default
/// `target/etr-documents`).
///
/// Errors: the configuration ([`conveyor_rules`]), the document directory, creating the
/// tracker's projector (with [`Restart::Never`] only).
pub fn start_conveyor(
    settings: &Settings,
    pool: &PgPool,
    app: Arc<App>,
    ports: etr_sagas::conveyor::Ports,
    restart: Restart,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let policy = conveyor_policy();
    let tracker_policy = policy.clone();
    let tracker = start_projector(
        "loan-conveyor tracker",
        settings,
        pool,
        move || etr_sagas::conveyor::Tracker {
            policy: tracker_policy.clone(),
        },
        restart,
    )?;
    let executor = etr_sagas::conveyor::Executor {
        pool: pool.clone(),
        policy,
        rules: conveyor_rules()?,
        ports,
        vault: etr_infra::vault::Vault::new(pool.clone()),
        agreements: Arc::new(
            etr_documents::Agreements::builtin().map_err(|e| Error::Config(e.to_string()))?,
        ),
        documents: document_store()?,
        commands: Arc::new(HandlerCommands(app)),
        poll: Duration::from_millis(100),
    };
    Ok(vec![tracker, tokio::spawn(executor.run())])
}
