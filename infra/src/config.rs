//! Configuration read from the environment. Every value has a default that works on one
//! machine; pointing a value at an existing Kafka / Postgres / registry means nothing is started.

/// Where the platform's parts live.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `KAFKA_BOOTSTRAP_SERVERS`, default `127.0.0.1:9092`.
    pub kafka_bootstrap: String,
    /// `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/etr`.
    pub database_url: String,
    /// `SCHEMA_REGISTRY_URL`, default `http://127.0.0.1:8081` (the platform's own endpoint).
    pub schema_registry_url: String,
    /// `ETR_TOPIC`, default `etr.events`.
    pub topic: String,
    /// `ETR_PARTITIONS`, default 8: the partition count of the topic (fixed once created).
    pub partitions: u32,
    /// `ETR_COMMAND_API_ADDR`, default `127.0.0.1:8080`.
    pub command_api_addr: String,
    /// `ETR_COMMAND_API_ADVERTISED_ADDR`, default the listening address: where other
    /// processes reach this one's command API (it names this process's partition writers,
    /// and commands for its partitions are forwarded there).
    pub command_api_advertised_addr: String,
    /// `ETR_QUERY_API_ADDR`, default `127.0.0.1:8090`.
    pub query_api_addr: String,
    /// `ETR_JWT_SECRET`: the HS256 secret of bearer tokens. The default is a development
    /// secret, announced at start; set your own anywhere else.
    pub jwt_secret: String,
    /// `ETR_REGISTRY_ADDR`, default `127.0.0.1:8081`: where the built-in registry listens.
    pub registry_addr: String,
    /// `ETR_OUTBOX_RETENTION_SECS`, default 3600: how long the relay keeps published events
    /// in the outbox before pruning them (the log keeps every event).
    pub outbox_retention: std::time::Duration,
}

/// The development token secret used when `ETR_JWT_SECRET` is not set.
pub const DEV_JWT_SECRET: &str = "etr-development-secret-do-not-use-in-production";

fn var(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

impl Settings {
    pub fn from_env() -> Result<Settings, crate::Error> {
        let partitions = var("ETR_PARTITIONS", "8");
        let partitions: u32 = partitions
            .parse()
            .ok()
            .filter(|p| (1..=1024).contains(p))
            .ok_or_else(|| {
                crate::Error::Config(format!(
                    "ETR_PARTITIONS must be 1..=1024, got `{partitions}`"
                ))
            })?;
        let retention = var("ETR_OUTBOX_RETENTION_SECS", "3600");
        let outbox_retention = retention
            .trim()
            .parse()
            .map(std::time::Duration::from_secs)
            .map_err(|_| {
                crate::Error::Config(format!(
                    "ETR_OUTBOX_RETENTION_SECS must be a whole number of seconds, got `{retention}`"
                ))
            })?;
        Ok(Settings {
            kafka_bootstrap: var("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
            database_url: var("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/etr"),
            schema_registry_url: var("SCHEMA_REGISTRY_URL", "http://127.0.0.1:8081"),
            topic: var("ETR_TOPIC", "etr.events"),
            partitions,
            command_api_addr: var("ETR_COMMAND_API_ADDR", "127.0.0.1:8080"),
            command_api_advertised_addr: var(
                "ETR_COMMAND_API_ADVERTISED_ADDR",
                &var("ETR_COMMAND_API_ADDR", "127.0.0.1:8080"),
            ),
            jwt_secret: var("ETR_JWT_SECRET", DEV_JWT_SECRET),
            query_api_addr: var("ETR_QUERY_API_ADDR", "127.0.0.1:8090"),
            registry_addr: var("ETR_REGISTRY_ADDR", "127.0.0.1:8081"),
            outbox_retention,
        })
    }
}
