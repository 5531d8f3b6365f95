//! The platform's roles wired from its crates, for every process that runs them: the `etr`
//! binary's subcommands and the benchmarks that run the platform in their own process.
//!
//! Each function connects or starts one thing: the database ([`database`]) and the broker
//! ([`broker`]), the schema registry ([`start_registry`], [`serve_registry`],
//! [`reader_registry`] for the log readers), the relay ([`relay`], [`start_relay`]), the
//! command API's application ([`command_app`]), the payment processor
//! ([`start_payment_processor`]: tracker + executor, its commands through
//! [`HandlerCommands`]), the projectors ([`start_projectors`]), the query API
//! ([`start_query_api`]), the scheduled balance reports
//! ([`reports::start_report_scheduler`]), the fraud monitors in front of both APIs
//! ([`fraud_monitor`], [`command_router`], [`serve_with_peers`]), and the tokens a
//! development setup hands out ([`dev_token`], [`client_bearer`]). A started role runs in its
//! own task, restarted after an error or not ([`Restart`]).
//!
//! Nothing here decides anything about the business: every decision is the crates'.

pub mod alerts;
pub mod bki;
pub mod dictionaries;
mod error;
pub mod lending;
pub mod reports;

pub use error::Error;

use etr_command_api::api::App;
use etr_command_api::handler::{self, Handler, Meta, Outcome, SystemClock};
use etr_command_api::relay::Relay;
use etr_domain::payment_execution::Policy;
use etr_domain::ports::{BoxFuture, PaymentProvider};
use etr_infra::auth::{Keys, Role};
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_infra::fraud;
use etr_infra::{kafka, pg};
use etr_projections::lending::Lending;
use etr_projections::runtime::{Projection, Projector};
use etr_projections::timeline::Timeline;
use etr_projections::wallets::Wallets;
use etr_sagas::payment_execution::{Executor, Tracker};
use etr_sagas::runtime::{Commands, Issue, Issued};
use etr_sagas::simulators::FraudSimulator;
use sqlx::PgPool;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// How a started role's loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    /// When it stops with an error, it is logged and the role starts again after a growing
    /// pause ([`supervise`]): what a serving process does.
    Supervised,
    /// It runs once; an error is logged and the role stays stopped ([`spawn_once`]): what a
    /// measurement does, which must notice a role that stopped.
    Never,
}

/// Whether this process should serve the schema registry: when `SCHEMA_REGISTRY_URL` names
/// the platform's own registry address (the default), the platform is the registry.
pub fn own_registry(settings: &Settings) -> bool {
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
///
/// Errors: the database ([`Error::Database`]); binding the ephemeral port.
pub async fn reader_registry(settings: &Settings) -> Result<String, Error> {
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

/// A pool of up to 32 connections to the configured database, created and migrated first
/// when needed.
///
/// Errors: [`Error::Database`], naming the URL.
pub async fn database(settings: &Settings) -> Result<PgPool, Error> {
    pg::connect_and_migrate(&settings.database_url, 32)
        .await
        .map_err(|source| Error::Database {
            url: settings.database_url.clone(),
            source,
        })
}

/// Waits up to 30 s for the broker, then creates the topic with the configured number of
/// partitions (or checks the existing one has it).
///
/// Errors: [`Error::Broker`]; a topic with another partition count.
pub async fn broker(settings: &Settings) -> Result<(), Error> {
    kafka::wait_until_ready(&settings.kafka_bootstrap, Duration::from_secs(30))
        .await
        .map_err(Error::Broker)?;
    kafka::ensure_topic(
        &settings.kafka_bootstrap,
        &settings.topic,
        settings.partitions,
    )
    .await?;
    Ok(())
}

/// Listens on `addr` for `role`.
///
/// Errors: [`Error::Bind`].
pub async fn bind(role: &'static str, addr: &str) -> Result<TcpListener, Error> {
    TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        role,
        addr: addr.to_owned(),
        source,
    })
}

/// Serves the schema registry from `pool` on `listener` until it fails (logged).
pub fn serve_registry(pool: PgPool, listener: TcpListener) -> JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = etr_infra::registry::serve(pool, listener).await {
            tracing::error!(error = %e, "schema registry stopped");
        }
    })
}

/// Serves the schema registry on the configured registry address.
///
/// Errors: [`Error::Bind`].
pub async fn start_registry(settings: &Settings, pool: PgPool) -> Result<JoinHandle<()>, Error> {
    let listener = bind("the schema registry", &settings.registry_addr).await?;
    tracing::info!(addr = %settings.registry_addr, "schema registry listening");
    Ok(serve_registry(pool, listener))
}

/// Registers the event schemas and builds the relay that publishes the outbox, woken by
/// `committed` when the command API runs in the same process. It takes its lease as
/// `relay@<advertised command API address>` and keeps published events for the configured
/// outbox retention.
///
/// Errors: [`Error::Schemas`]; creating the producer.
pub async fn relay(
    settings: &Settings,
    pool: &PgPool,
    codec: &EventCodec,
    committed: Arc<Notify>,
) -> Result<Relay, Error> {
    codec.register_all().await.map_err(Error::Schemas)?;
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

/// Runs `relay` in its own task.
pub fn start_relay(relay: Relay, restart: Restart) -> JoinHandle<()> {
    match restart {
        Restart::Supervised => {
            let relay = Arc::new(relay);
            supervise("relay", move || {
                let relay = relay.clone();
                async move { relay.run().await }
            })
        }
        Restart::Never => spawn_once("relay", async move { relay.run().await }),
    }
}

/// The command API's application: the command handler (partition heads prepared, one writer
/// per partition named after the advertised address), the client group catalogue it decides
/// under (loaded from the database, the default groups written when there are none, reloaded
/// every second), the fraud simulator it asks, the processing centre its dictionaries come
/// from (synchronised once when none are stored), the bearer-token keys and the client that
/// forwards a command to the process writing its partition (30 s timeout).
///
/// Errors: preparing the partition heads; loading the client groups; the first sync of the
/// dictionaries; building the HTTP client.
pub async fn command_app(
    settings: &Settings,
    pool: &PgPool,
    committed: Arc<Notify>,
) -> Result<Arc<App>, Error> {
    Handler::prepare(pool, settings.partitions).await?;
    let groups = etr_command_api::groups::Groups::default();
    groups.load(pool).await?;
    groups.refresh_every(pool.clone(), Duration::from_secs(1));
    let mut handler_settings = handler::Settings::new(settings.command_api_advertised_addr.clone());
    handler_settings.groups = groups.clone();
    let handler = Handler::new(
        pool.clone(),
        settings.partitions,
        Arc::new(SystemClock),
        committed,
        handler_settings,
    );
    let centre = dictionaries::processing_centre();
    dictionaries::ensure_dictionaries(pool, &*centre).await?;
    let sms: Arc<dyn etr_domain::ports::SmsGateway> = Arc::new(
        etr_sagas::lending_simulators::RecordingSmsGateway::new(pool.clone()),
    );
    Ok(Arc::new(App {
        handler,
        pool: pool.clone(),
        vault: etr_infra::vault::Vault::new(pool.clone()),
        otp: etr_command_api::otp::Otp::new(pool.clone(), otp_policy(), sms),
        document_rules: lending::document_rules()?,
        documents: lending::document_store()?,
        fraud: Arc::new(FraudSimulator::default()),
        bank: Arc::new(etr_sagas::simulators::BankSimulator { pool: pool.clone() }),
        groups,
        processing: etr_command_api::dictionaries::Processing::new(centre),
        keys: Keys::from_secret(settings.jwt_secret.as_bytes()),
        forwarder: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?,
        simulated_days: std::env::var("ETR_SIMULATED_DAYS").is_ok_and(|v| v.trim() == "1"),
    }))
}

/// The one-time-password rules: the defaults of [`etr_domain::otp::Policy`] (6 digits, 5
/// minutes, 3 attempts), `ETR_OTP_RESEND_AFTER_SECS` overriding the resend throttle.
pub fn otp_policy() -> etr_domain::otp::Policy {
    let mut policy = etr_domain::otp::Policy::default();
    if let Some(secs) = std::env::var("ETR_OTP_RESEND_AFTER_SECS")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|v| *v >= 0)
    {
        policy.resend_after = time::Duration::seconds(secs);
    }
    policy
}

/// The command handler as the process managers see it: an issued command is handled like a
/// client's, its command id standing for the request fingerprint.
pub struct HandlerCommands(pub Arc<App>);

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

    fn state(
        &self,
        target: etr_domain::AggregateRef,
    ) -> BoxFuture<'_, Result<Option<etr_domain::State>, String>> {
        Box::pin(async move {
            self.0
                .handler
                .committed_state(target)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

/// The payment processor's timing: the defaults of [`Policy`], overridden by
/// `ETR_PAYMENT_ATTEMPT_TIMEOUT_MS` (one provider call, milliseconds) and
/// `ETR_PAYMENT_DEADLINE_SECS` (reservation to the void at the provider when it has not executed,
/// seconds) and `ETR_PAYMENT_CONFIRMATION_TIMEOUT_SECS` (how long a payment above the warning
/// threshold waits for the client's OTP); a value that is not a positive integer is ignored.
pub fn payment_policy() -> Policy {
    let mut policy = Policy::default();
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
    if let Some(secs) = number("ETR_PAYMENT_CONFIRMATION_TIMEOUT_SECS") {
        policy.confirmation_timeout = time::Duration::seconds(secs);
    }
    policy
}

/// Starts the payment processor: the tracker (a projection of the payment events, run as
/// `restart` says) and the executor that calls `provider` and records its answers through
/// `app`'s command handler (polling for due instances every 50 ms); and the autopayment
/// runner — its tracker of the clients' autopayment events and its executor, which starts
/// each due run's payment (after `app`'s fraud control) and records the run (polling every
/// 200 ms); the business day-close of serviced loans (every minute,
/// [`etr_sagas::day_close`]); the loans' card repayments (tracker and executor,
/// [`etr_sagas::card_repayment`], polling every 200 ms); and the alert dispatcher and sender ([`alerts::start_alerts`]). Returns their
/// tasks.
///
/// Errors: creating the tracker's projector (with [`Restart::Never`] only; a supervised one
/// retries).
pub fn start_payment_processor(
    settings: &Settings,
    pool: &PgPool,
    app: Arc<App>,
    provider: Arc<dyn PaymentProvider>,
    policy: Policy,
    restart: Restart,
) -> Result<Vec<JoinHandle<()>>, Error> {
    let tracker = start_projector(
        "payment-execution tracker",
        settings,
        pool,
        move || Tracker { policy },
        restart,
    )?;
    let autopayments = start_projector(
        "autopayment tracker",
        settings,
        pool,
        || etr_sagas::autopayments::Tracker,
        restart,
    )?;
    let runner = etr_sagas::autopayments::Executor {
        pool: pool.clone(),
        fraud: app.fraud.clone(),
        commands: Arc::new(HandlerCommands(app.clone())),
        catalogues: app.processing.catalogues.clone(),
        poll: Duration::from_millis(200),
    };
    let checkout_policy = etr_domain::merchant_order::Policy::default();
    let checkout = start_projector(
        "merchant checkout tracker",
        settings,
        pool,
        move || etr_sagas::checkout::Tracker {
            policy: checkout_policy,
        },
        restart,
    )?;
    let callbacks = etr_sagas::checkout::Executor {
        pool: pool.clone(),
        bank: app.bank.clone(),
        commands: Arc::new(HandlerCommands(app.clone())),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?,
        policy: checkout_policy,
        poll: Duration::from_millis(200),
    };
    let card_repayments = start_projector(
        "card repayment tracker",
        settings,
        pool,
        || etr_sagas::card_repayment::Tracker {
            policy: etr_domain::card_repayment::Policy::default(),
        },
        restart,
    )?;
    let card_repayer = etr_sagas::card_repayment::Executor {
        pool: pool.clone(),
        bank: app.bank.clone(),
        commands: Arc::new(HandlerCommands(app.clone())),
        policy: etr_domain::card_repayment::Policy::default(),
        poll: Duration::from_millis(200),
    };
    let day_close = etr_sagas::day_close::DayClose {
        pool: pool.clone(),
        commands: Arc::new(HandlerCommands(app.clone())),
        poll: Duration::from_secs(60),
    };
    let executor = Executor {
        pool: pool.clone(),
        policy,
        provider,
        bank: app.bank.clone(),
        commands: Arc::new(HandlerCommands(app)),
        poll: Duration::from_millis(50),
    };
    let mut tasks = vec![
        tracker,
        tokio::spawn(executor.run()),
        autopayments,
        tokio::spawn(runner.run()),
        checkout,
        tokio::spawn(callbacks.run()),
        tokio::spawn(day_close.run()),
        card_repayments,
        tokio::spawn(card_repayer.run()),
    ];
    tasks.extend(alerts::start_alerts(settings, pool, restart)?);
    Ok(tasks)
}

/// One projection's projector (it reads every partition; its offsets are committed under its
/// own group id).
///
/// Errors: creating the codec or the consumer.
pub fn projector<P: Projection>(
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

/// Runs the projector of the projection `make` builds in its own task, named `name`.
pub(crate) fn start_projector<P, F>(
    name: &'static str,
    settings: &Settings,
    pool: &PgPool,
    make: F,
    restart: Restart,
) -> Result<JoinHandle<()>, Error>
where
    P: Projection + 'static,
    F: Fn() -> P + Send + Sync + 'static,
{
    Ok(match restart {
        Restart::Supervised => {
            let (settings, pool) = (settings.clone(), pool.clone());
            supervise(name, move || {
                let made = projector(&settings, &pool, make());
                async move { made?.run().await.map_err(Error::from) }
            })
        }
        Restart::Never => {
            let projector = projector(settings, pool, make())?;
            spawn_once(name, async move { projector.run().await })
        }
    })
}

/// Starts every projection (wallets, announcing status changes; lending; timeline), each
/// with its own offsets and in its own task: one that fails does not stop the others.
///
/// Errors: creating a projector (with [`Restart::Never`] only; a supervised one retries).
pub fn start_projectors(
    settings: &Settings,
    pool: &PgPool,
    restart: Restart,
) -> Result<Vec<JoinHandle<()>>, Error> {
    Ok(vec![
        start_projector(
            "wallets projector",
            settings,
            pool,
            || Wallets { announce: true },
            restart,
        )?,
        start_projector("lending projector", settings, pool, || Lending, restart)?,
        start_projector("timeline projector", settings, pool, || Timeline, restart)?,
        start_projector(
            "credit-history projector",
            settings,
            pool,
            || etr_projections::credit_history::CreditHistory,
            restart,
        )?,
    ])
}

/// Serves the GraphQL query API on the configured address, its tokens verified with the
/// configured secret, behind its fraud monitor ([`fraud_monitor`]).
///
/// Errors: [`Error::Bind`]; loading the fraud rules.
pub async fn start_query_api(settings: &Settings, pool: PgPool) -> Result<JoinHandle<()>, Error> {
    let keys = Keys::from_secret(settings.jwt_secret.as_bytes());
    let monitor = fraud_monitor(settings, &pool, fraud::Api::Query).await?;
    let listener = bind("the query API", &settings.query_api_addr).await?;
    tracing::info!(addr = %settings.query_api_addr, "GraphQL query API listening");
    let router = monitor.protect(etr_query_api::router(pool, keys));
    Ok(tokio::spawn(async move {
        if let Err(e) = serve_with_peers(listener, router).await {
            tracing::error!(error = %e, "query API stopped");
        }
    }))
}

/// The command API's router for `app`, behind its fraud monitor ([`fraud_monitor`]). Serve
/// it with [`serve_with_peers`].
///
/// Errors: loading the fraud rules.
pub async fn command_router(
    settings: &Settings,
    pool: &PgPool,
    app: Arc<App>,
) -> Result<axum::Router, Error> {
    let monitor = fraud_monitor(settings, pool, fraud::Api::Command).await?;
    Ok(monitor.protect(etr_command_api::api::router(app)))
}

/// The fraud monitor of `api` in this process (e-wallet spec §8.3): the rules from the
/// database, reloaded every second; request statistics flushed every second and kept for
/// `ETR_API_STATS_RETENTION_DAYS` days (default 90; a value that is not a positive integer
/// is ignored).
///
/// Errors: loading the fraud rules.
pub async fn fraud_monitor(
    settings: &Settings,
    pool: &PgPool,
    api: fraud::Api,
) -> Result<fraud::Monitor, Error> {
    let mut options = fraud::Options::default();
    if let Some(days) = std::env::var("ETR_API_STATS_RETENTION_DAYS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|d| *d > 0)
    {
        options.retention = Duration::from_secs(days.saturating_mul(24 * 3600));
    }
    Ok(fraud::Monitor::start(
        api,
        Keys::from_secret(settings.jwt_secret.as_bytes()),
        pool.clone(),
        options,
    )
    .await?)
}

/// The most a request's target and headers may hold together, in bytes: beyond it 431
/// `head_too_large` (bodies are limited by each API: 256 KiB, 413 beyond).
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How long a client may take over a request: its head (target and headers) and its body.
/// A slower client is cut off, so that slow requests (a slowloris attack) hold no connection,
/// task or buffer for long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowClientLimits {
    /// A request's head must have arrived within this once the connection waits for it —
    /// an idle kept-alive connection included — else the connection is closed.
    /// `ETR_HEADER_READ_TIMEOUT_MS`, default 60 s (as long as common servers wait).
    pub header_read_timeout: Duration,
    /// A request's body must have arrived within this once its handler reads it, else the
    /// command API answers 408 `body_not_received` (the query API 400).
    /// `ETR_BODY_READ_TIMEOUT_MS`, default 30 s.
    pub body_read_timeout: Duration,
}

impl SlowClientLimits {
    /// The defaults, each replaced by its variable when that holds a positive number of
    /// milliseconds.
    pub fn from_env() -> SlowClientLimits {
        let millis = |name: &str, default: Duration| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|ms| *ms > 0)
                .map_or(default, Duration::from_millis)
        };
        SlowClientLimits {
            header_read_timeout: millis("ETR_HEADER_READ_TIMEOUT_MS", Duration::from_secs(60)),
            body_read_timeout: millis("ETR_BODY_READ_TIMEOUT_MS", Duration::from_secs(30)),
        }
    }
}

/// Answers 431 `head_too_large` to a request whose target and headers together exceed
/// [`MAX_HEAD_BYTES`].
async fn refuse_large_heads(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let target = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if target + headers > MAX_HEAD_BYTES {
        return (
            axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            axum::Json(serde_json::json!({"error": {
                "code": "head_too_large",
                "message": format!("the request's target and headers are at most {MAX_HEAD_BYTES} bytes"),
            }})),
        )
            .into_response();
    }
    next.run(request).await
}

/// Serves `router` on `listener` over HTTP/1.1 (websocket upgrades included) with each
/// connection's peer address known to it (the fraud monitor counts requests by address), a
/// request's head at most [`MAX_HEAD_BYTES`] and clients held to [`SlowClientLimits::from_env`].
///
/// Errors: none; a failed accept (too many open files, say) is logged and retried after a
/// pause, a failed connection ends only that connection.
pub async fn serve_with_peers(listener: TcpListener, router: axum::Router) -> std::io::Result<()> {
    let limits = SlowClientLimits::from_env();
    let router = router
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            limits.body_read_timeout,
        ))
        .layer(axum::middleware::from_fn(refuse_large_heads));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; retrying");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let service = hyper_util::service::TowerToHyperService::new(
            tower_http::add_extension::AddExtension::new(
                router.clone(),
                axum::extract::ConnectInfo(peer),
            ),
        );
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .with_upgrades();
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection ended");
            }
        });
    }
}

/// Runs a role's loop; when it stops with an error, logs it and starts it again after a
/// growing pause (0.5 s, doubling, at most 30 s; back to 0.5 s after a run of over a
/// minute). Nothing else in the process stops with it.
pub fn supervise<F, Fut, E>(name: &'static str, start: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
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
    })
}

/// Runs a role once in its own task; an error is logged.
pub fn spawn_once<F, E>(name: &'static str, role: F) -> JoinHandle<()>
where
    F: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    tokio::spawn(async move {
        if let Err(e) = role.await {
            tracing::error!(role = name, error = %e, "stopped");
        }
    })
}

/// A token for `sub` in `role`, signed with the configured secret, valid for 24 hours.
///
/// Errors: signing ([`Error::Token`]).
pub fn dev_token(settings: &Settings, sub: &str, role: Role) -> Result<String, Error> {
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 24 * 3600;
    Ok(Keys::from_secret(settings.jwt_secret.as_bytes()).issue(sub, role, exp)?)
}

/// `Bearer <token>` for the client a command API URL or path names (`…/v1/clients/<id>/…`),
/// signed with the configured secret and valid for 24 hours: what a client app sends with
/// its commands.
///
/// Errors: a URL without a client id ([`Error::NotClientUrl`]); signing.
pub fn client_bearer(settings: &Settings, url: &str) -> Result<String, Error> {
    let client = url
        .split_once("/v1/clients/")
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|id| uuid::Uuid::parse_str(id).ok())
        .ok_or_else(|| Error::NotClientUrl(url.to_owned()))?;
    Ok(format!(
        "Bearer {}",
        dev_token(settings, &client.to_string(), Role::Client)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_bearer_needs_a_client_id_in_the_url() {
        let settings = Settings {
            kafka_bootstrap: "127.0.0.1:9092".into(),
            database_url: "postgres://postgres@127.0.0.1:5432/etr".into(),
            schema_registry_url: "http://127.0.0.1:8081".into(),
            topic: "etr.events".into(),
            partitions: 8,
            command_api_addr: "127.0.0.1:8080".into(),
            command_api_advertised_addr: "127.0.0.1:8080".into(),
            query_api_addr: "127.0.0.1:8090".into(),
            jwt_secret: etr_infra::config::DEV_JWT_SECRET.into(),
            registry_addr: "127.0.0.1:8081".into(),
            outbox_retention: Duration::from_secs(3600),
        };
        let url = "http://127.0.0.1:1/v1/clients/00000000-0000-0000-0000-000000000001/wallets";
        assert!(client_bearer(&settings, url)
            .expect("a client URL")
            .starts_with("Bearer "));
        assert!(matches!(
            client_bearer(&settings, "http://127.0.0.1:1/v1/clients/nobody/wallets"),
            Err(Error::NotClientUrl(_))
        ));
        assert!(matches!(
            client_bearer(&settings, "/v1/wallets"),
            Err(Error::NotClientUrl(_))
        ));
    }
}
