//! Credit-history reporting wired for a machine (seed 000 §6.6.5–6.6.8):
//!
//! - **keys** in `ETR_BKI_KEYS_DIR` (default `target/etr-bki-keys`): the platform's Ed25519
//!   signing key `signing.pk8` (PKCS#8, created when missing) and each bureau's X25519 public
//!   key `bureaus/<name>.pub` (hex); the bureaus are `ETR_BKI_BUREAUS` (comma-separated,
//!   default `nbki`). The bureau simulator's secret keys are `simulator/<name>.secret` (hex),
//!   created with the public key when a bureau has none — a deployment puts the real bureau's
//!   public key in `bureaus/` instead and another [`CreditBureau`] adapter in front.
//! - **files** in `ETR_BKI_FILES_DIR` (default `target/etr-bki-files`), an object store:
//!   `bki/<bureau>/<day>/<name>.sealed` and `.sig`.
//! - **the daily job**: once a Moscow day has ended, its upload is opened for every bureau and
//!   run to its end (`ETR_BKI_POLL_MS`, default 60,000, between rounds; a rejected or
//!   unanswered file is retried on the process's timers).

use etr_domain::bki_upload::Policy;
use etr_domain::ports::{CreditBureau, ReportCrypto};
use etr_infra::crypto::{BureauKeys, Software};
use etr_infra::vault::Vault;
use etr_reports::schedule::ReportStore;
use etr_sagas::bki::{Reporter, MOSCOW};
use etr_sagas::lending_simulators::BureauSimulator;
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use crate::{spawn_once, supervise, Error, Restart};

fn keys_dir() -> PathBuf {
    PathBuf::from(
        std::env::var("ETR_BKI_KEYS_DIR").unwrap_or_else(|_| "target/etr-bki-keys".into()),
    )
}

/// The configured bureaus (`ETR_BKI_BUREAUS`, default `nbki`).
pub fn bureaus() -> Vec<String> {
    std::env::var("ETR_BKI_BUREAUS")
        .unwrap_or_else(|_| "nbki".into())
        .split(',')
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
        .collect()
}

fn config(what: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("{}: {e}", what.display()))
}

fn read_hex32(path: &Path) -> Result<Option<[u8; 32]>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes = hex::decode(text.trim()).map_err(|e| config(path, e))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| config(path, "not 32 bytes of hex"))?;
            Ok(Some(key))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(config(path, e)),
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| config(dir, e))?;
    }
    std::fs::write(path, bytes).map_err(|e| config(path, e))
}

/// The key store: the platform's signing key, the bureaus' public keys, the simulator's
/// secret keys (created when missing, see the module's docs).
///
/// Errors: [`Error::Config`] for a key file that cannot be read, written or parsed.
pub fn key_store() -> Result<(Software, BTreeMap<String, BureauKeys>), Error> {
    let dir = keys_dir();
    let signing_path = dir.join("signing.pk8");
    let pkcs8 = match std::fs::read(&signing_path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let generated =
                Software::generate_signing_key().map_err(|e| config(&signing_path, e))?;
            write(&signing_path, &generated)?;
            generated
        }
        Err(e) => return Err(config(&signing_path, e)),
    };
    let mut public = BTreeMap::new();
    let mut simulated = BTreeMap::new();
    for bureau in bureaus() {
        let secret_path = dir.join("simulator").join(format!("{bureau}.secret"));
        let public_path = dir.join("bureaus").join(format!("{bureau}.pub"));
        let secret = match read_hex32(&secret_path)? {
            Some(s) => Some(BureauKeys::from_secret(s)),
            None if read_hex32(&public_path)?.is_none() => {
                let keys = BureauKeys::generate();
                write(&secret_path, hex::encode(keys.secret_bytes()).as_bytes())?;
                write(&public_path, hex::encode(keys.public_key()).as_bytes())?;
                Some(keys)
            }
            None => None,
        };
        let key = match read_hex32(&public_path)? {
            Some(k) => k,
            None => {
                let k = secret
                    .as_ref()
                    .map(BureauKeys::public_key)
                    .ok_or_else(|| config(&public_path, "missing"))?;
                write(&public_path, hex::encode(k).as_bytes())?;
                k
            }
        };
        public.insert(bureau.clone(), key);
        if let Some(s) = secret {
            simulated.insert(bureau, s);
        }
    }
    let software = Software::new(&pkcs8, public).map_err(|e| config(&signing_path, e))?;
    Ok((software, simulated))
}

/// Where report files go: `ETR_BKI_FILES_DIR` (default `target/etr-bki-files`).
///
/// Errors: [`Error::Config`] when the directory cannot be created.
pub fn file_store() -> Result<ReportStore, Error> {
    let dir = std::env::var("ETR_BKI_FILES_DIR").unwrap_or_else(|_| "target/etr-bki-files".into());
    ReportStore::local(&dir).map_err(|e| Error::Config(format!("ETR_BKI_FILES_DIR={dir}: {e}")))
}

/// The reporter: the key store's software crypto, the file store, the bureau simulator.
///
/// Errors: [`key_store`]'s and [`file_store`]'s.
pub fn reporter(pool: &PgPool) -> Result<Reporter, Error> {
    let (software, simulated) = key_store()?;
    let platform_key = software.signing_public_key();
    let crypto: Arc<dyn ReportCrypto> = Arc::new(software);
    let bureau: Arc<dyn CreditBureau> = Arc::new(BureauSimulator {
        keys: simulated,
        platform_key,
    });
    Ok(Reporter {
        pool: pool.clone(),
        vault: Vault::new(pool.clone()),
        crypto,
        store: file_store()?,
        bureau,
        bureaus: bureaus(),
        policy: Policy::default(),
    })
}

fn poll() -> Duration {
    let ms = std::env::var("ETR_BKI_POLL_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|v| *v > 0)
        .unwrap_or(60_000);
    Duration::from_millis(ms)
}

/// Starts the daily job: yesterday's (Moscow) upload opened for every bureau, due uploads
/// run, every [`poll`].
///
/// Errors: [`reporter`]'s (with [`Restart::Never`] only; a supervised one retries).
pub fn start_daily_job(pool: &PgPool, restart: Restart) -> Result<JoinHandle<()>, Error> {
    async fn run(reporter: Reporter) -> Result<(), Error> {
        loop {
            let now = OffsetDateTime::now_utc();
            let yesterday = now.to_offset(MOSCOW).date().previous_day();
            if let Some(day) = yesterday {
                if let Err(e) = reporter.start_day(day, now).await {
                    tracing::warn!(error = %e, "the day's credit-history upload did not open");
                }
            }
            if let Err(e) = reporter.tick(now).await {
                tracing::warn!(error = %e, "a credit-history upload step failed; retrying");
            }
            tokio::time::sleep(poll()).await;
        }
    }
    Ok(match restart {
        Restart::Supervised => {
            let pool = pool.clone();
            supervise("credit-history uploads", move || {
                let reporter = reporter(&pool);
                async move { run(reporter?).await }
            })
        }
        Restart::Never => spawn_once("credit-history uploads", run(reporter(pool)?)),
    })
}
