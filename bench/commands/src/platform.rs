//! The platform in the benchmark's process, wired from the crates as `etr up` wires them:
//! the schema registry, the relay, the command API (its handler, the fraud simulator, bearer
//! tokens) and, as [`Roles`] asks, the payment processor (tracker projection + executor,
//! simulated provider) and the three projections — on free ports, against the database and
//! topic of `settings`. The GraphQL API is left out (nothing queries it during a run).

use etr_command_api::api::{self, App};
use etr_command_api::handler::{self, Handler, Meta, Outcome, SystemClock};
use etr_command_api::relay::Relay;
use etr_domain::ports::BoxFuture;
use etr_domain::wallet::Limits;
use etr_infra::auth::{Keys, Role};
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_infra::{kafka, pg};
use etr_projections::lending::Lending;
use etr_projections::runtime::{Projection, Projector};
use etr_projections::timeline::Timeline;
use etr_projections::wallets::Wallets;
use etr_sagas::payment_execution::{Executor, Tracker};
use etr_sagas::runtime::{Commands, Issue, Issued};
use etr_sagas::simulators::{FraudSimulator, PaymentProviderSimulator};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::error::Context as _;
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
/// database and topic.
pub async fn start(settings: &mut Settings, roles: Roles) -> Result<Platform, Error> {
    let registry_listener = TcpListener::bind("127.0.0.1:0").await?;
    let registry_addr = registry_listener.local_addr()?;
    let api_listener = TcpListener::bind("127.0.0.1:0").await?;
    settings.registry_addr = registry_addr.to_string();
    settings.schema_registry_url = format!("http://{registry_addr}");
    settings.command_api_addr = api_listener.local_addr()?.to_string();
    settings.command_api_advertised_addr = settings.command_api_addr.clone();

    let pool = pg::connect_and_migrate(&settings.database_url, 32)
        .await
        .context(format!("Postgres at {}", settings.database_url))?;
    kafka::wait_until_ready(&settings.kafka_bootstrap, Duration::from_secs(30))
        .await
        .context("the Kafka broker does not answer")?;
    kafka::ensure_topic(
        &settings.kafka_bootstrap,
        &settings.topic,
        settings.partitions,
    )
    .await?;
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    let mut platform = Platform {
        pool: pool.clone(),
        codec: codec.clone(),
        relay: None,
        tasks: Vec::new(),
    };
    let registry_pool = pool.clone();
    platform.tasks.push(tokio::spawn(async move {
        if let Err(e) = etr_infra::registry::serve(registry_pool, registry_listener).await {
            tracing::error!(error = %e, "schema registry stopped");
        }
    }));

    codec
        .register_all()
        .await
        .context("registering the event schemas")?;
    let committed = Arc::new(Notify::new());
    let relay = Relay::new(
        pool.clone(),
        kafka::producer(&settings.kafka_bootstrap)?,
        codec.clone(),
        settings.topic.clone(),
        committed.clone(),
    );
    platform.relay = Some(tokio::spawn(async move {
        if let Err(e) = relay.run().await {
            tracing::error!(error = %e, "relay stopped");
        }
    }));

    Handler::prepare(&pool, settings.partitions).await?;
    let handler = Handler::new(
        pool.clone(),
        settings.partitions,
        Arc::new(SystemClock),
        committed,
        handler::Settings::new(settings.command_api_advertised_addr.clone()),
    );
    // The default simulators answer at once: the run measures the platform, not its partners.
    let app = Arc::new(App {
        handler,
        fraud: Arc::new(FraudSimulator::default()),
        default_limits: Limits::registered(),
        keys: Keys::from_secret(settings.jwt_secret.as_bytes()),
        forwarder: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
    });

    if roles.payment_processor {
        start_payment_processor(settings, &pool, &app, &mut platform)?;
    }
    if roles.projections {
        start_projections(settings, &pool, &mut platform)?;
    }
    platform.tasks.push(tokio::spawn(async move {
        if let Err(e) = axum::serve(api_listener, api::router(app)).await {
            tracing::error!(error = %e, "command API stopped");
        }
    }));
    Ok(platform)
}

/// Payments answer 202 after the reservation; the payment processor executes them: the
/// tracker (a projection of the payment events) and the executor (simulated provider,
/// commands through `app`'s handler).
fn start_payment_processor(
    settings: &Settings,
    pool: &PgPool,
    app: &Arc<App>,
    platform: &mut Platform,
) -> Result<(), Error> {
    let policy = etr_domain::payment_execution::Policy::default();
    let tracker = projector(settings, pool, Tracker { policy })?;
    platform
        .tasks
        .push(spawn_role("payment-execution tracker", async move {
            tracker.run().await
        }));
    let executor = Executor {
        pool: pool.clone(),
        policy,
        provider: Arc::new(PaymentProviderSimulator::default()),
        commands: Arc::new(HandlerCommands(app.clone())),
        poll: Duration::from_millis(50),
    };
    platform.tasks.push(tokio::spawn(executor.run()));
    Ok(())
}

fn start_projections(
    settings: &Settings,
    pool: &PgPool,
    platform: &mut Platform,
) -> Result<(), Error> {
    let wallets = projector(settings, pool, Wallets { announce: true })?;
    platform
        .tasks
        .push(spawn_role("wallets projector", async move {
            wallets.run().await
        }));
    let lending = projector(settings, pool, Lending)?;
    platform
        .tasks
        .push(spawn_role("lending projector", async move {
            lending.run().await
        }));
    let timeline = projector(settings, pool, Timeline)?;
    platform
        .tasks
        .push(spawn_role("timeline projector", async move {
            timeline.run().await
        }));
    Ok(())
}

fn projector<P: Projection>(
    settings: &Settings,
    pool: &PgPool,
    projection: P,
) -> Result<Projector<P>, Error> {
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    Ok(Projector::new(
        pool.clone(),
        codec,
        &settings.kafka_bootstrap,
        &settings.topic,
        projection,
    )?)
}

fn spawn_role<F, E>(name: &'static str, role: F) -> JoinHandle<()>
where
    F: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        if let Err(e) = role.await {
            tracing::error!(role = name, error = %e, "stopped");
        }
    })
}

/// The command handler as the payment processor sees it.
struct HandlerCommands(Arc<App>);

impl Commands for HandlerCommands {
    fn issue(&self, issue: Issue) -> BoxFuture<'_, Result<Issued, String>> {
        Box::pin(async move {
            let meta = Meta {
                request_hash: issue.command_id.clone(),
                command_id: issue.command_id,
                correlation_id: issue.correlation_id,
                actor: issue.actor,
            };
            match self.0.handler.handle(meta, issue.command).await {
                Ok(handled) => Ok(match handled.outcome {
                    Outcome::Accepted { .. } => Issued::Accepted,
                    Outcome::Rejected { code, .. } => Issued::Rejected { code },
                }),
                Err(e) => Err(e.to_string()),
            }
        })
    }
}

/// `Bearer <token>` for the client a command API URL or path names (`…/v1/clients/<id>/…`),
/// signed with the configured secret and valid for 24 hours: what a client app sends.
pub fn client_bearer(settings: &Settings, url: &str) -> Result<String, Error> {
    let client = url
        .split_once("/v1/clients/")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| Error::Invalid(format!("not a client URL: {url}")))?;
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600;
    let token = Keys::from_secret(settings.jwt_secret.as_bytes()).issue(
        &client.to_string(),
        Role::Client,
        exp,
    )?;
    Ok(format!("Bearer {token}"))
}
