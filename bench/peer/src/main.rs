//! `etr-peer-bench`: runs the peer and the raw baseline for each number of callers and prints
//! a table (or JSON lines). `etr bench commands --peer` runs the same through the library.

use clap::Parser;
use etr_peer_bench::{run_until, stats, Figures, Until, Workload};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "cqrs-es + postgres-es and a raw INSERT on the platform's wallet workload")]
struct Args {
    /// Numbers of concurrent callers, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    callers: Vec<usize>,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Measured commands per run in total, instead of --seconds.
    #[arg(long)]
    commands: Option<u64>,
    /// Wallets each caller owns.
    #[arg(long, default_value_t = 1000)]
    wallets: usize,
    /// Workloads, comma-separated: raw-insert, peer-event-store, peer-aggregate-store.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "raw-insert,peer-event-store,peer-aggregate-store"
    )]
    workloads: Vec<String>,
    /// Server to create the throw-away databases on (any database the user can connect to).
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    database_url: String,
    /// Print one JSON object per run instead of the table.
    #[arg(long)]
    json: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let mut workloads = Vec::new();
    for name in &args.workloads {
        match Workload::parse(name) {
            Some(w) => workloads.push(w),
            None => {
                eprintln!("unknown workload {name:?}");
                return ExitCode::FAILURE;
            }
        }
    }
    let until = match args.commands {
        Some(n) => Until::Commands(n),
        None => Until::Elapsed(Duration::from_secs(args.seconds)),
    };
    let mut all: Vec<Figures> = Vec::new();
    for &callers in &args.callers {
        for &workload in &workloads {
            eprintln!("{} with {callers} callers ...", workload.name());
            match run_until(&args.database_url, workload, callers, args.wallets, until).await {
                Ok(f) => {
                    if args.json {
                        match serde_json::to_string(&f) {
                            Ok(line) => println!("{line}"),
                            Err(e) => eprintln!("{e}"),
                        }
                    }
                    all.push(f);
                }
                Err(e) => {
                    eprintln!("{} with {callers} callers failed: {e}", workload.name());
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if !args.json {
        print_table(&all);
    }
    ExitCode::SUCCESS
}

fn print_table(all: &[Figures]) {
    println!(
        "{:<22} {:>7} {:>9} {:>8} {:>10} {:>8} {:>8} {:>7}",
        "workload", "callers", "commands", "seconds", "cmd/s", "p50 ms", "p99 ms", "vs raw"
    );
    for f in all {
        let raw = all
            .iter()
            .find(|r| r.callers == f.callers && r.name == Workload::RawInsert.name());
        let vs_raw = raw.map_or_else(
            || "-".to_owned(),
            |r| format!("{:.2}", stats::ratio(f.per_second, r.per_second)),
        );
        println!(
            "{:<22} {:>7} {:>9} {:>8.2} {:>10.1} {:>8.3} {:>8.3} {:>7}",
            f.name, f.callers, f.commands, f.seconds, f.per_second, f.p50_ms, f.p99_ms, vs_raw
        );
    }
}
