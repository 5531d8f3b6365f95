//! Wiring: connects to Postgres and Kafka, starts the roles this process runs.

use anyhow::Context as _;
use etr_command_api::api::{self, App};
use etr_command_api::handler::{self, Handler, Meta, Outcome, SystemClock};
use etr_command_api::relay::Relay;
use etr_domain::ports::{BoxFuture, PaymentProvider};
use etr_domain::wallet::Limits;
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_infra::{kafka, pg};
use etr_projections::lending::Lending;
use etr_projections::runtime::{Projection, Projector};
use etr_projections::timeline::Timeline;
use etr_projections::wallets::Wallets;
use etr_query_api::auth::{Keys, Role};
use etr_sagas::payment_execution::{Executor, Tracker};
use etr_sagas::runtime::{Commands, Issue, Issued};
use etr_sagas::simulators::{FraudSimulator, PaymentProviderSimulator};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// Whether this process should serve the schema registry: when `SCHEMA_REGISTRY_URL` names
/// the platform's own registry address (the default), the platform is the registry.
fn own_registry(settings: &Settings) -> bool {
    let url = settings.schema_registry_url.trim_end_matches('/');
    url == format!("http://{}", settings.registry_addr)
        || (settings.registry_addr.starts_with("127.0.0.1:")
            && url
                == format!(
                    "http://localhost:{}",
                    &settings.registry_addr["127.0.0.1:".len()..]
                ))
}

/// The registry URL a log reader should use. When the platform's own registry is configured
/// but not running (the platform is stopped), serves it in-process from the same database on
/// an ephemeral port, so `etr tail` and rebuilds work on their own.
pub async fn reader_registry(settings: &Settings) -> anyhow::Result<String> {
    let url = settings.schema_registry_url.clone();
    let answers = reqwest::Client::new()
        .get(format!("{}/subjects", url.trim_end_matches('/')))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok();
    if answers || !own_registry(settings) {
        return Ok(url);
    }
    let pool = database(settings).await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let local = format!("http://{}", listener.local_addr()?);
    tokio::spawn(etr_infra::registry::serve(pool, listener));
    Ok(local)
}

pub async fn database(settings: &Settings) -> anyhow::Result<PgPool> {
    pg::connect_and_migrate(&settings.database_url, 32)
        .await
        .with_context(|| format!("Postgres at {} (is it running?)", settings.database_url))
}

pub async fn broker(settings: &Settings) -> anyhow::Result<()> {
    kafka::wait_until_ready(&settings.kafka_bootstrap, Duration::from_secs(30))
        .await
        .context("the Kafka broker does not answer; `scripts/up` starts the local one")?;
    kafka::ensure_topic(
        &settings.kafka_bootstrap,
        &settings.topic,
        settings.partitions,
    )
    .await?;
    Ok(())
}

async fn start_registry(settings: &Settings, pool: PgPool) -> anyhow::Result<()> {
    let listener = TcpListener::bind(&settings.registry_addr)
        .await
        .with_context(|| format!("binding the schema registry on {}", settings.registry_addr))?;
    tracing::info!(addr = %settings.registry_addr, "schema registry listening");
    tokio::spawn(async move {
        if let Err(e) = etr_infra::registry::serve(pool, listener).await {
            tracing::error!(error = %e, "schema registry stopped");
        }
    });
    Ok(())
}

/// Registers the event schemas and builds the relay that publishes the outbox, woken by
/// `committed` when the command API runs in the same process.
pub async fn relay(
    settings: &Settings,
    pool: &PgPool,
    codec: &EventCodec,
    committed: Arc<Notify>,
) -> anyhow::Result<Relay> {
    codec
        .register_all()
        .await
        .context("registering the event schemas")?;
    Ok(Relay::new(
        pool.clone(),
        kafka::producer(&settings.kafka_bootstrap)?,
        codec.clone(),
        settings.topic.clone(),
        committed,
    )
    .with_holder(format!("relay@{}", settings.command_api_advertised_addr))
    .with_retention(settings.outbox_retention))
}

/// The command API's application: the command handler (partition heads prepared, one writer
/// per partition named after the advertised address) and the simulators of the external
/// systems it asks.
pub async fn command_app(
    settings: &Settings,
    pool: &PgPool,
    committed: Arc<Notify>,
) -> anyhow::Result<Arc<App>> {
    Handler::prepare(pool, settings.partitions).await?;
    let handler = Handler::new(
        pool.clone(),
        settings.partitions,
        Arc::new(SystemClock),
        committed,
        handler::Settings::new(settings.command_api_advertised_addr.clone()),
    );
    Ok(Arc::new(App {
        handler,
        fraud: Arc::new(FraudSimulator::default()),
        default_limits: Limits::registered(),
        keys: Keys::from_secret(settings.jwt_secret.as_bytes()),
        forwarder: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
    }))
}

/// The command handler as the process managers see it.
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

/// The payment processor's timing: the defaults of [`etr_domain::payment_execution::Policy`],
/// overridden by `ETR_PAYMENT_ATTEMPT_TIMEOUT_MS` (one provider call) and
/// `ETR_PAYMENT_DEADLINE_SECS` (reservation to release when the provider never answers).
fn payment_policy() -> etr_domain::payment_execution::Policy {
    let mut policy = etr_domain::payment_execution::Policy::default();
    let number = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .filter(|v| *v > 0)
    };
    if let Some(ms) = number("ETR_PAYMENT_ATTEMPT_TIMEOUT_MS") {
        policy.attempt_timeout = time::Duration::milliseconds(ms);
    }
    if let Some(secs) = number("ETR_PAYMENT_DEADLINE_SECS") {
        policy.deadline = time::Duration::seconds(secs);
    }
    policy
}

/// The payment processor: the tracker (a projection of the payment events) and the executor
/// that calls the provider and records its answers through `app`'s command handler.
fn payment_processor(
    settings: &Settings,
    pool: &PgPool,
    app: Arc<App>,
    provider: Arc<dyn PaymentProvider>,
) {
    let policy = payment_policy();
    let (tracker_settings, tracker_pool) = (settings.clone(), pool.clone());
    supervise("payment-execution tracker", move || {
        let made = projector(&tracker_settings, &tracker_pool, Tracker { policy });
        async move { made?.run().await.map_err(anyhow::Error::from) }
    });
    let executor = Executor {
        pool: pool.clone(),
        policy,
        provider,
        commands: Arc::new(HandlerCommands(app)),
        poll: Duration::from_millis(50),
    };
    tokio::spawn(executor.run());
}

/// Runs a role's loop; when it stops with an error, logs it and starts it again after a
/// growing pause (at most 30 s). Nothing else in the process stops with it.
fn supervise<F, Fut, E>(name: &'static str, start: F)
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let start = Arc::new(start);
    tokio::spawn(async move {
        let first_pause = Duration::from_millis(500);
        let mut pause = first_pause;
        loop {
            let started = tokio::time::Instant::now();
            match start().await {
                Ok(()) => return,
                Err(e) => {
                    // A role that ran a while before failing starts again quickly.
                    if started.elapsed() > Duration::from_secs(60) {
                        pause = first_pause;
                    }
                    tracing::error!(role = name, error = %e, pause_ms = pause.as_millis() as u64, "stopped; restarting");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
    });
}

/// Starts what `up` and `command-api` share; returns when the API stops.
async fn serve(
    settings: Settings,
    with_registry: bool,
    with_relay: bool,
    demo: Option<bool>,
) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    broker(&settings).await?;
    if with_registry {
        start_registry(&settings, pool.clone()).await?;
    }
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    let committed = Arc::new(Notify::new());
    if with_relay {
        let relay = Arc::new(relay(&settings, &pool, &codec, committed.clone()).await?);
        supervise("relay", move || {
            let relay = relay.clone();
            async move { relay.run().await }
        });
        // The same process that publishes also projects and answers queries (one machine
        // runs everything).
        start_query_api(&settings, pool.clone()).await?;
        start_projectors(&settings, &pool);
    }
    let app = command_app(&settings, &pool, committed).await?;
    // Every process that decides commands also runs the payment processor; its instances
    // are shared through Postgres (a due payment is taken by one executor at a time).
    payment_processor(
        &settings,
        &pool,
        app.clone(),
        Arc::new(PaymentProviderSimulator::default()),
    );
    let listener = TcpListener::bind(&settings.command_api_addr)
        .await
        .with_context(|| format!("binding the command API on {}", settings.command_api_addr))?;
    tracing::info!(addr = %settings.command_api_addr, "command API listening");
    let server = tokio::spawn(async move { axum::serve(listener, api::router(app)).await });
    if let Some(exit_after) = demo {
        crate::demo::run(&settings, &codec).await?;
        if exit_after {
            return Ok(());
        }
    }
    println!("ETR is up: command API http://{} (OpenAPI /openapi.json), GraphQL http://{}/graphql, registry {}, topic {} — Ctrl-C stops it",
        settings.command_api_addr, settings.query_api_addr, settings.schema_registry_url, settings.topic);
    if settings.jwt_secret == etr_infra::config::DEV_JWT_SECRET {
        println!("Development tokens (ETR_JWT_SECRET is the built-in development secret):");
        for (role, sub) in [
            (Role::Operator, "dev-operator"),
            (Role::Auditor, "dev-auditor"),
            (Role::Partner, "dev-partner"),
        ] {
            println!(
                "  {:<9} Bearer {}",
                format!("{role:?}"),
                dev_token(&settings, sub, role)?
            );
        }
        println!("  a client: etr token --role client --sub <client id>");
    }
    tokio::select! {
        r = server => { r??; }
        _ = tokio::signal::ctrl_c() => { tracing::info!("stopping"); }
    }
    Ok(())
}

pub async fn up(settings: Settings, demo: bool, demo_only: bool) -> anyhow::Result<()> {
    let demo = if demo || demo_only {
        Some(demo_only)
    } else {
        None
    };
    let registry = own_registry(&settings);
    serve(settings, registry, true, demo).await
}

pub async fn command_api(settings: Settings, with_relay: bool) -> anyhow::Result<()> {
    serve(settings, false, with_relay, None).await
}

pub async fn relay_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    broker(&settings).await?;
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    relay(&settings, &pool, &codec, Arc::new(Notify::new()))
        .await?
        .run()
        .await?;
    Ok(())
}

/// One projection's projector, in its own consumer group.
fn projector<P: Projection>(
    settings: &Settings,
    pool: &PgPool,
    projection: P,
) -> anyhow::Result<Projector<P>> {
    let codec = EventCodec::new(&settings.schema_registry_url, &settings.topic)?;
    Ok(Projector::new(
        pool.clone(),
        codec,
        &settings.kafka_bootstrap,
        &settings.topic,
        projection,
    )?)
}

/// Starts every projection (wallets, lending, timeline), each in its own consumer group and
/// supervised on its own: one that fails is restarted, the others keep going.
pub fn start_projectors(settings: &Settings, pool: &PgPool) {
    fn one<P: Projection + 'static>(
        name: &'static str,
        settings: &Settings,
        pool: &PgPool,
        projection: fn() -> P,
    ) {
        let (settings, pool) = (settings.clone(), pool.clone());
        supervise(name, move || {
            let made = projector(&settings, &pool, projection());
            async move { made?.run().await.map_err(anyhow::Error::from) }
        });
    }
    one("wallets projector", settings, pool, || Wallets {
        announce: true,
    });
    one("lending projector", settings, pool, || Lending);
    one("timeline projector", settings, pool, || Timeline);
}

pub async fn projector_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    broker(&settings).await?;
    start_projectors(&settings, &pool);
    tokio::signal::ctrl_c().await?;
    Ok(())
}

async fn start_query_api(settings: &Settings, pool: PgPool) -> anyhow::Result<()> {
    let keys = etr_query_api::auth::Keys::from_secret(settings.jwt_secret.as_bytes());
    let listener = TcpListener::bind(&settings.query_api_addr)
        .await
        .with_context(|| format!("binding the query API on {}", settings.query_api_addr))?;
    tracing::info!(addr = %settings.query_api_addr, "GraphQL query API listening");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, etr_query_api::router(pool, keys)).await {
            tracing::error!(error = %e, "query API stopped");
        }
    });
    Ok(())
}

pub async fn query_api_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    start_query_api(&settings, pool).await?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}

pub async fn registry_only(settings: Settings) -> anyhow::Result<()> {
    let pool = database(&settings).await?;
    start_registry(&settings, pool).await?;
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// A token signed with the configured secret, valid for 24 hours.
pub fn dev_token(settings: &Settings, sub: &str, role: Role) -> anyhow::Result<String> {
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600;
    Ok(Keys::from_secret(settings.jwt_secret.as_bytes()).issue(sub, role, exp)?)
}

/// `Bearer <token>` for the client a command API URL or path names (`…/v1/clients/<id>/…`),
/// signed with the configured secret: what a client app sends with its commands.
pub fn client_bearer(settings: &Settings, url: &str) -> anyhow::Result<String> {
    let rest = url
        .split_once("/v1/clients/")
        .map(|(_, rest)| rest)
        .context("not a client URL")?;
    let client = rest.split('/').next().unwrap_or_default();
    uuid::Uuid::parse_str(client).context("the URL's client id")?;
    Ok(format!(
        "Bearer {}",
        dev_token(settings, client, Role::Client)?
    ))
}
