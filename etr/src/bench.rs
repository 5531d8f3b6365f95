//! `etr bench …`: figures printed next to baselines measured in the same run.

use etr_infra::config::Settings;

#[derive(clap::Subcommand)]
pub enum Which {
    /// Sustained command rate and latency against the raw broker and Postgres rates.
    Commands,
}

pub async fn run(_settings: Settings, which: Which) -> anyhow::Result<()> {
    match which {
        Which::Commands => anyhow::bail!("the commands benchmark is not built yet"),
    }
}
