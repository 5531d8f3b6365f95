//! `etr`: every role of the platform in one binary. `etr up` runs them all on one machine;
//! a cluster runs each role (`command-api`, `relay`, `registry`, …) separately.

mod bench;
mod bki;
mod calc;
mod dead_letters;
mod demo;
mod dictionaries;
mod lists;
mod log;
mod passports;
mod platform;
mod rebuild;
mod report;
mod timeline;

use anyhow::Context as _;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "etr",
    version,
    about = "ETR: event-sourced lending and e-wallet platform on a Kafka log"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Everything on one machine: registry, command API, relay, projections, GraphQL; then a short demo.
    Up {
        /// Skip the demo scenario.
        #[arg(long)]
        no_demo: bool,
        /// Run the demo and exit instead of serving.
        #[arg(long)]
        demo_only: bool,
    },
    /// The REST command API (optionally with the relay in the same process).
    CommandApi {
        #[arg(long)]
        with_relay: bool,
    },
    /// The outbox relay alone.
    Relay,
    /// The projections (read models) alone.
    Projector,
    /// The GraphQL query API alone.
    QueryApi,
    /// The Confluent-compatible schema registry endpoint alone.
    Registry,
    /// Mint a bearer token for the query API (signed with ETR_JWT_SECRET, valid 24 h).
    Token {
        /// client | partner | operator | auditor
        #[arg(long)]
        role: String,
        /// The client id for a client; any id for the other roles.
        #[arg(long)]
        sub: String,
    },
    /// A client's timeline from the log, in order; `--verify` checks its hash chain,
    /// `--as-of` prints the aggregates' states at a time.
    Timeline {
        client: uuid::Uuid,
        #[arg(long)]
        verify: bool,
        /// RFC 3339 time, e.g. 2026-11-24T12:00:00Z.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Print the events of the log as JSON, one per line, decoded through the registry.
    Tail {
        /// Keep waiting for new events instead of stopping at the end of the log.
        #[arg(long)]
        follow: bool,
        /// Only this client's events.
        #[arg(long)]
        client: Option<uuid::Uuid>,
    },
    /// Replay the log: `--into data-platform` fills the analysts' `dp` schema;
    /// `--projection NAME` rebuilds a read model blue/green (the old tables serve until the
    /// new ones have caught up, then one transaction switches).
    Replay {
        /// `data-platform`.
        #[arg(
            long,
            conflicts_with = "projection",
            required_unless_present = "projection"
        )]
        into: Option<String>,
        /// wallets | lending | timeline
        #[arg(long)]
        projection: Option<String>,
        /// Only events that occurred at or after this RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Only events that occurred before this RFC 3339 time.
        #[arg(long)]
        to: Option<String>,
        /// Also write the fact tables as Parquet files into DIR (`DIR/<table>.parquet`).
        #[arg(long, value_name = "DIR", conflicts_with = "projection")]
        parquet: Option<std::path::PathBuf>,
        /// How far before `--from` the reader seeks and past `--to` it reads, in seconds
        /// (clock differences between hosts, commit order); events are still selected exactly
        /// by their occurred-at time.
        #[arg(long, value_name = "SECONDS", default_value_t = 300)]
        clock_slack: u64,
    },
    /// Rebuild the snapshot table from the log and compare it with the current one.
    RebuildSnapshots {
        /// Replace the snapshot table with the rebuilt one when they differ.
        #[arg(long)]
        replace: bool,
    },
    /// Benchmarks (figures printed next to baselines measured in the same run).
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
    /// The MVD list of invalid passports: load a published file, check a passport.
    Passports {
        #[command(subcommand)]
        action: passports::Action,
    },
    /// Watch lists: load the Rosfinmonitoring list, check a person against every list,
    /// manage the operators' block and allow lists.
    Lists {
        #[command(subcommand)]
        action: lists::Action,
    },
    /// The processing dictionaries (services, commissions, menu, rates, map points, capacity
    /// ranges, receipt templates): sync from the processing centre, import a file, versions,
    /// a phone number's operator, a payment's commission.
    Dictionaries {
        #[command(subcommand)]
        action: dictionaries::Action,
    },
    /// Money math as the platform does it, for checking numbers by hand.
    Calc {
        #[command(subcommand)]
        which: calc::Which,
    },
    /// Balance reports of the e-wallet from the read models: `turnover`, `daily` and `chart`
    /// write a file (csv / xlsx, png / svg); `schedule` manages scheduled runs.
    Report {
        #[command(subcommand)]
        action: report::Action,
    },
    /// Credit-history reporting: run a day's upload to the bureaus, what was sent when for a
    /// loan, the configured keys.
    Bki {
        #[command(subcommand)]
        action: bki::Action,
    },
    /// Records of the log a consumer could not read: list them, retry them once the cause
    /// is fixed (JSON lines).
    DeadLetters {
        #[command(subcommand)]
        action: dead_letters::Action,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn,rdkafka=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    // Arithmetic only: no configuration needed.
    let command = match cli.command {
        Cmd::Calc { which } => return calc::run(which),
        other => other,
    };
    let settings = etr_infra::config::Settings::from_env().context("configuration")?;
    match command {
        Cmd::Up { no_demo, demo_only } => platform::up(settings, !no_demo, demo_only).await,
        Cmd::CommandApi { with_relay } => platform::command_api(settings, with_relay).await,
        Cmd::Relay => platform::relay_only(settings).await,
        Cmd::Projector => platform::projector_only(settings).await,
        Cmd::QueryApi => platform::query_api_only(settings).await,
        Cmd::Registry => platform::registry_only(settings).await,
        Cmd::Token { role, sub } => {
            let role = match role.as_str() {
                "client" => etr_query_api::auth::Role::Client,
                "partner" => etr_query_api::auth::Role::Partner,
                "operator" => etr_query_api::auth::Role::Operator,
                "auditor" => etr_query_api::auth::Role::Auditor,
                other => {
                    anyhow::bail!("unknown role `{other}` (client, partner, operator, auditor)")
                }
            };
            if role == etr_query_api::auth::Role::Client {
                uuid::Uuid::parse_str(&sub)
                    .context("a client token's --sub must be the client id")?;
            }
            println!("{}", etr_platform::dev_token(&settings, &sub, role)?);
            Ok(())
        }
        Cmd::Timeline {
            client,
            verify,
            as_of,
        } => timeline::run(&settings, client, verify, as_of).await,
        Cmd::Tail { follow, client } => log::tail(&settings, follow, client).await,
        Cmd::Replay {
            projection: Some(name),
            ..
        } => rebuild::run(&settings, &name).await,
        Cmd::Replay {
            into,
            from,
            to,
            parquet,
            clock_slack,
            ..
        } => {
            let into = into.as_deref().unwrap_or_default();
            let slack = std::time::Duration::from_secs(clock_slack);
            log::replay(&settings, into, from, to, parquet, slack).await
        }
        Cmd::RebuildSnapshots { replace } => log::rebuild_snapshots(&settings, replace).await,
        Cmd::Bench { which } => bench::run(settings, which).await,
        Cmd::DeadLetters { action } => dead_letters::run(&settings, action).await,
        Cmd::Calc { which } => calc::run(which),
        Cmd::Passports { action } => passports::run(&settings, action).await,
        Cmd::Lists { action } => lists::run(&settings, action).await,
        Cmd::Dictionaries { action } => dictionaries::run(&settings, action).await,
        Cmd::Report { action } => report::run(&settings, action).await,
        Cmd::Bki { action } => bki::run(&settings, action).await,
    }
}
