//! `etr dead-letters list|retry`: the operator's view of the records consumers could not
//! read ([`etr_projections::dead_letters`]), one JSON object per line.

use anyhow::Context as _;
use etr_infra::avro::EventCodec;
use etr_infra::config::Settings;
use etr_projections::dead_letters::{self, projection_consumer, Which};
use etr_sagas::payment_execution::{Tracker, PROCESS};

#[derive(clap::Subcommand)]
pub enum Action {
    /// The open dead letters (with `--all`, the resolved ones too), by consumer and position.
    List {
        /// Only this consumer's: `projection.wallets`, or just the projection's name
        /// (`wallets`, `lending`, `timeline`, `payment-execution`).
        #[arg(long, value_name = "NAME")]
        consumer: Option<String>,
        /// Resolved dead letters too.
        #[arg(long)]
        all: bool,
    },
    /// Decode dead letters again (schemas registered since are found) and apply those that
    /// decode through their projection; prints what each retry did.
    Retry {
        /// One dead letter by id.
        #[arg(
            long,
            conflicts_with = "consumer",
            required_unless_present = "consumer"
        )]
        id: Option<i64>,
        /// Every open dead letter of this consumer, applied together in sequence order.
        #[arg(long, value_name = "NAME")]
        consumer: Option<String>,
    },
}

/// A consumer's full name: a bare projection name gets the `projection.` prefix.
fn consumer_name(name: &str) -> String {
    if name.contains('.') {
        name.to_owned()
    } else {
        projection_consumer(name)
    }
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<()> {
    let pool = etr_platform::database(settings).await?;
    match action {
        Action::List { consumer, all } => {
            let consumer = consumer.as_deref().map(consumer_name);
            for letter in dead_letters::list(&pool, consumer.as_deref(), all).await? {
                println!("{}", serde_json::to_string(&letter)?);
            }
        }
        Action::Retry { id, consumer } => {
            let which = match (id, consumer) {
                (Some(id), None) => Which::One(id),
                (None, Some(consumer)) => Which::Consumer(consumer_name(&consumer)),
                _ => anyhow::bail!("name either --id or --consumer"),
            };
            let registry = etr_platform::reader_registry(settings).await?;
            let codec = EventCodec::new(&registry, &settings.topic)?;
            // The payment processor's tracker is a projection of the sagas crate: its dead
            // letters are applied through it.
            let tracker = projection_consumer(PROCESS);
            let of_tracker = match &which {
                Which::Consumer(c) => *c == tracker,
                Which::One(id) => dead_letters::list(&pool, None, true)
                    .await?
                    .iter()
                    .any(|l| l.id == *id && l.consumer == tracker),
            };
            let retried = if of_tracker {
                let projection = Tracker {
                    policy: Default::default(),
                };
                dead_letters::retry_with(&pool, &codec, &which, &projection).await
            } else {
                dead_letters::retry(&pool, &codec, &which).await
            }
            .with_context(|| match &which {
                Which::One(id) => format!("retrying dead letter {id}"),
                Which::Consumer(c) => format!("retrying the dead letters of {c}"),
            })?;
            if retried.is_empty() {
                eprintln!("no open dead letter to retry");
            }
            for r in retried {
                println!("{}", serde_json::to_string(&r)?);
            }
        }
    }
    pool.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use etr_projections::dead_letters::PROJECTION_PREFIX;

    #[test]
    fn bare_projection_names_get_the_prefix() {
        assert_eq!(consumer_name("wallets"), "projection.wallets");
        assert_eq!(
            consumer_name("projection.payment-execution"),
            format!("{PROJECTION_PREFIX}payment-execution")
        );
    }
}
