//! The alert system's roles (e-wallet spec §4): the dispatcher that follows the log and queues
//! operators' alerts, and the sender that delivers them through the notification port.

use etr_domain::alerts::Policy;
use etr_domain::ports::AlertNotifier;
use etr_infra::config::Settings;
use etr_sagas::alerts::{Dispatcher, RecordingNotifier, Sender};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

use crate::{start_projector, Error, Restart};

/// Starts the alert dispatcher (a projection of every event, run as `restart` says, with the
/// default thresholds of [`Policy`]) and the sender, which delivers the queued alerts through
/// the notification simulator (`simulator_alert_notifications`), polling every 100 ms and
/// giving a delivery up after 12 attempts. Returns their tasks.
///
/// Errors: creating the dispatcher's projector (with [`Restart::Never`] only).
pub fn start_alerts(
    settings: &Settings,
    pool: &PgPool,
    restart: Restart,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let notifier: Arc<dyn AlertNotifier> = Arc::new(RecordingNotifier { pool: pool.clone() });
    let dispatcher = start_projector(
        "alert dispatcher",
        settings,
        pool,
        || Dispatcher {
            policy: Policy::default(),
        },
        restart,
    )?;
    let sender = Sender {
        pool: pool.clone(),
        notifier,
        poll: Duration::from_millis(100),
        max_attempts: 12,
    };
    Ok(vec![dispatcher, tokio::spawn(sender.run())])
}
