//! `etr bench …`: the command line of the benchmarks. `commands` is measured by the
//! `etr-bench` crate (`bench/commands`), and so is `replay`.

use etr_infra::config::Settings;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Mode {
    /// The command handler in-process (no HTTP, no relay), with `--peer` next to the peer.
    Handler,
    /// The platform in-process, driven over HTTP with bearer tokens.
    Rest,
    /// Both, the handler first.
    All,
}

#[derive(clap::Subcommand)]
pub enum Which {
    /// Replay into the data platform against a raw Postgres COPY of the same rows, and
    /// timeline read latency for one client with many events.
    Replay {
        /// Events to write for the one client before measuring.
        #[arg(long, default_value_t = 10_000)]
        events: usize,
    },
    /// Command rate and latency: the command handler on the peer's wallet workload (with
    /// `--peer`, next to cqrs-es + postgres-es and a raw INSERT, same run), a stream-length
    /// check, and (`--mode rest`) the REST API with the platform running.
    ///
    /// Handler mode: each caller owns `--wallets` wallets (one client each), opens them (not
    /// measured), then alternates top-ups of 100.00 and payments of 10.00 over them. A
    /// payment is StartPayment (approved; reserves) followed at once by ExecutePayment
    /// (succeeded; captures): two handler commands, both counted in cmd/s; ops/s counts the
    /// pair once. Every point runs in a fresh database, dropped afterwards.
    Commands {
        /// handler | rest | all.
        #[arg(long, value_enum, default_value = "handler")]
        mode: Mode,
        /// Numbers of concurrent callers, one point each (handler mode), comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
        callers: Vec<usize>,
        /// Measured seconds of each point (and of the REST run and its Postgres baseline).
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Wallets each caller owns (handler mode and peer).
        #[arg(long, default_value_t = 1000)]
        wallets: usize,
        /// Also run the peer's aggregate store, its event store and a raw single-row INSERT
        /// at every number of callers, and print the ratios.
        #[arg(long)]
        peer: bool,
        /// Stream lengths (events per wallet) of the stream-length check, comma-separated;
        /// `0` for no check.
        #[arg(long, value_delimiter = ',', default_value = "10,10000")]
        stream_events: Vec<u64>,
        /// Callers of the stream-length check.
        #[arg(long, default_value_t = 16)]
        stream_callers: usize,
        /// Wallets of the stream-length check, pre-loaded to each length.
        #[arg(long, default_value_t = 32)]
        stream_wallets: usize,
        /// REST mode: concurrent HTTP clients, each with its own client id and wallet.
        #[arg(long, alias = "concurrency", default_value_t = 64)]
        connections: usize,
        /// REST mode: records written by the raw Kafka baseline (stops earlier after
        /// `--seconds`). They stay on the broker: nothing here deletes topics.
        #[arg(long, default_value_t = 100_000)]
        kafka_records: u64,
        /// Write every figure as one JSON document to FILE.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
}

pub async fn run(settings: Settings, which: Which) -> anyhow::Result<()> {
    match which {
        Which::Replay { events } => Ok(etr_bench::replay::run(settings, events).await?),
        Which::Commands {
            mode,
            callers,
            seconds,
            wallets,
            peer,
            stream_events,
            stream_callers,
            stream_wallets,
            connections,
            kafka_records,
            json,
        } => {
            let duration = Duration::from_secs(seconds);
            let options = etr_bench::Options {
                mode: match mode {
                    Mode::Handler => etr_bench::Mode::Handler,
                    Mode::Rest => etr_bench::Mode::Rest,
                    Mode::All => etr_bench::Mode::All,
                },
                callers,
                duration,
                wallets_per_caller: wallets,
                peer,
                stream_events: stream_events.into_iter().filter(|&n| n > 0).collect(),
                stream_callers,
                stream_wallets,
                rest: etr_bench::rest::Options {
                    connections,
                    duration,
                    kafka_records,
                },
                json,
            };
            etr_bench::commands(settings, &options).await?;
            Ok(())
        }
    }
}
