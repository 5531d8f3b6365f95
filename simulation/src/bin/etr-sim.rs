//! `etr-sim`: one deterministic simulation run from the command line.
//!
//! ```text
//! cargo run -p etr-simulation --release --bin etr-sim -- --seed 42 --ops 1000000 \
//!     [--clients 64] [--partitions 4] [--batch 16] [--cache 48] [--no-shrink]
//! ```
//!
//! Prints progress every 100,000 operations and a final report (operations, commands
//! accepted and refused, faults injected by kind, invariant checks, violations, elapsed
//! time). A broken invariant prints the seed and the shortest failing history, one operation
//! per line, and exits with status 1.

use std::process::ExitCode;
use std::time::Instant;

use etr_simulation::{ops, run_with_progress, shrink, Config, Report};

const USAGE: &str = "usage: etr-sim --seed S --ops N [--clients N] [--partitions P] [--batch N] [--cache N] [--trace PAYMENT_ID] [--no-shrink]";

struct Args {
    config: Config,
    shrink: bool,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut config = Config::new(0, 100_000);
    let mut shrink = true;
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        if flag == "--no-shrink" {
            shrink = false;
            i += 1;
            continue;
        }
        if flag == "--trace" {
            let id = args
                .get(i + 1)
                .ok_or_else(|| format!("--trace needs a payment id\n{USAGE}"))?;
            config.trace = Some(
                id.parse()
                    .map_err(|_| format!("--trace: `{id}` is not a UUID"))?,
            );
            i += 2;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .get(i + 1)
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .replace('_', "")
                .parse::<u64>()
                .map_err(|_| format!("{flag}: `{value}` is not a number"))
        };
        match flag {
            "--seed" => config.seed = number()?,
            "--ops" => config.ops = usize::try_from(number()?).map_err(|e| e.to_string())?,
            "--clients" => config.clients = u32::try_from(number()?).map_err(|e| e.to_string())?,
            "--partitions" => {
                config.partitions = u32::try_from(number()?).map_err(|e| e.to_string())?
            }
            "--batch" => {
                config.max_batch = usize::try_from(number()?).map_err(|e| e.to_string())?
            }
            "--cache" => {
                config.cache_capacity = usize::try_from(number()?).map_err(|e| e.to_string())?
            }
            other => return Err(format!("unknown argument `{other}`\n{USAGE}")),
        }
        i += 2;
    }
    if config.clients < 2 || config.partitions < 1 {
        return Err(format!("at least 2 clients and 1 partition\n{USAGE}"));
    }
    Ok(Args { config, shrink })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Args { config, shrink } = match parse(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "etr-sim: seed {} · {} ops · {} clients · {} partitions",
        config.seed, config.ops, config.clients, config.partitions
    );
    let started = Instant::now();
    let operations = ops::generate(config.seed, config.ops, config.clients);
    let mut progress = |done: usize, report: &Report| {
        if done.is_multiple_of(100_000) {
            println!(
                "  {done:>9} ops · {:>9} events · {:>6} faults · {:>10} checks · {:.1?}",
                report.events,
                report.faults.values().sum::<u64>(),
                report.checks,
                started.elapsed()
            );
        }
    };
    let report = run_with_progress(&config, &operations, &mut progress);
    println!("{report}");
    match &report.violation {
        None => ExitCode::SUCCESS,
        Some(v) => {
            if shrink {
                println!("shrinking…");
                let shrunk = shrink::shrink(&config, &operations, v);
                print!(
                    "{}",
                    shrink::render(config.seed, v.invariant, &shrunk, operations.len())
                );
            }
            ExitCode::FAILURE
        }
    }
}
