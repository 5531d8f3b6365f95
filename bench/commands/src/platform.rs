//! The platform in the benchmark's process, wired by `etr_platform` as `etr up` wires it:
//! the schema registry, the relay, the command API (its handler, the fraud simulator, bearer
//! tokens) and, as [`Roles`] asks, the payment processor (tracker projection + executor,
//! simulated provider) and the three projections — on free ports, against the database and
//! topic of `settings`. The GraphQL API is left out (nothing queries it during a run).

use etr_command_api::api;
use etr_domain::payment_execution::Policy;
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_platform::{self as wiring, Restart};
use etr_sagas::simulators::PaymentProviderSimulator;
use sqlx::PgPool;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::Error;

/// The roles started for a run; dropping it stops them.
pub struct Platform {
    pub pool: PgPool,
    pub codec: EventCodec,
    relay: Option<JoinHandle<()>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Platform {
    /// Whether the relay stopped (it only stops on an error).
    pub fn relay_stopped(&self) -> bool {
        self.relay.as_ref().is_some_and(JoinHandle::is_finished)
    }

    /// Adds a task to stop with the platform.
    pub fn adopt(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Stops every role and waits until they are gone, then closes the pool.
    pub async fn stop(mut self) {
        self.abort();
        let tasks: Vec<_> = self.tasks.drain(..).chain(self.relay.take()).collect();
        for t in tasks {
            let _ = t.await;
        }
        self.pool.close().await;
    }

    fn abort(&mut self) {
        for t in self.tasks.iter().chain(self.relay.iter()) {
            t.abort();
        }
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.abort();
    }
}

/// Which roles run besides the registry, the relay and the command API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// The payment processor (payments stay reserved without it).
    pub payment_processor: bool,
    /// The wallets, lending and timeline projections.
    pub projections: bool,
}

impl Roles {
    /// Everything `etr up` runs except the GraphQL API.
    pub const ALL: Roles = Roles {
        payment_processor: true,
        projections: true,
    };
    /// The command side only (a benchmark that projects by itself).
    pub const COMMAND_SIDE: Roles = Roles {
        payment_processor: false,
        projections: false,
    };
}

/// Starts the platform on free ports; rewrites `settings` (registry, command API address)
/// to where it listens. `settings.database_url` and `settings.topic` should name a fresh
/// database and topic. Every role runs once: one that stops stays stopped.
pub async fn start(settings: &mut Settings, roles: Roles) -> Result<Platform, Error> {
    let registry_listener = TcpListener::bind("127.0.0.1:0").await?;
    let registry_addr = registry_listener.local_addr()?;
    let api_listener = TcpListener::bind("127.0.0.1:0").await?;
    settings.registry_addr = registry_addr.to_string();
    settings.schema_registry_url = format!("http://{registry_addr}");
    settings.command_api_addr = api_listener.local_addr()?.to_string();
    settings.command_api_advertised_addr = settings.command_api_addr.clone();

    let pool = wiring::database(settings).await?;
    wiring::broker(settings).await?;
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    let mut platform = Platform {
        pool: pool.clone(),
        codec: codec.clone(),
        relay: None,
        tasks: vec![wiring::serve_registry(pool.clone(), registry_listener)],
    };

    let committed = Arc::new(Notify::new());
    let relay = wiring::relay(settings, &pool, &codec, committed.clone()).await?;
    platform.relay = Some(wiring::start_relay(relay, Restart::Never));

    // The default simulators answer at once: the run measures the platform, not its partners.
    let app = wiring::command_app(settings, &pool, committed).await?;
    if roles.payment_processor {
        // Payments answer 202 after the reservation; the payment processor executes them.
        platform.tasks.extend(wiring::start_payment_processor(
            settings,
            &pool,
            app.clone(),
            Arc::new(PaymentProviderSimulator::default()),
            Policy::default(),
            Restart::Never,
        )?);
    }
    if roles.projections {
        platform
            .tasks
            .extend(wiring::start_projectors(settings, &pool, Restart::Never)?);
    }
    platform.tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(api_listener, api::router(app)).await {
            tracing::error!(error = %e, "command API stopped");
        }
    }));
    Ok(platform)
}
