//! The processing dictionaries' wiring: the processing centre the platform synchronises from
//! (in this build its deterministic simulator, [`etr_sagas::processing_centre`]) and the first
//! sync of a fresh platform.

use etr_domain::dictionaries::ProcessingCentre;
use etr_sagas::processing_centre::ProcessingCentreSimulator;
use sqlx::PgPool;
use std::sync::Arc;

use crate::Error;

/// The processing centre the dictionaries come from.
pub fn processing_centre() -> Arc<dyn ProcessingCentre> {
    Arc::new(ProcessingCentreSimulator::default())
}

/// Synchronises the dictionaries from `centre` when none are stored yet, so a fresh platform
/// has a menu and commissions; logs the version written.
///
/// Errors: the processing centre unavailable or its document refused; Postgres.
pub async fn ensure_dictionaries(
    pool: &PgPool,
    centre: &dyn ProcessingCentre,
) -> Result<(), Error> {
    if let Some(imported) = etr_infra::dictionaries::ensure(pool, centre).await? {
        tracing::info!(
            version = imported.version,
            services = imported.counts.services,
            menu_items = imported.counts.menu_items,
            "processing dictionaries synchronised from the processing centre"
        );
    }
    Ok(())
}
