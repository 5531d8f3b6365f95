//! `etr dictionaries …`: the processing dictionaries — sync them from the processing centre,
//! import a file, list the stored versions, look a phone number up, quote a payment's
//! commission. Results are printed as JSON; a refused document exits with the refusal's code
//! and the item it names, having written nothing.

use anyhow::Context as _;
use etr_domain::dictionaries::{
    parse_phone_ranges_csv, phone_number, Dictionaries, DictionaryError, Document, MenuItemId,
    OperationType, QuoteRequest, ServiceId, SourceId,
};
use etr_domain::identity::PhoneE164;
use etr_domain::money::format_amount;
use etr_domain::Money;
use etr_infra::config::Settings;
use etr_infra::dictionaries as store;
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum Action {
    /// Synchronise every dictionary from the processing centre as a new version.
    Sync,
    /// Import a JSON document of every dictionary (docs/dictionaries.md) as a new version.
    Import {
        file: PathBuf,
        /// Take the capacity ranges from this `;`-separated file instead of the document's:
        /// `from;to;operator;region`, or the numbering registry's
        /// `ABC/DEF;От;До;Емкость;Оператор;Регион`.
        #[arg(long, value_name = "CSV")]
        phone_ranges: Option<PathBuf>,
    },
    /// The stored versions, newest first (JSON lines).
    Versions {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// The operator and region of a phone number (`+79161234567`) in the current version.
    Phone { number: String },
    /// The commission of a payment under the current version.
    Quote {
        #[arg(long)]
        service: String,
        /// Decimal, at most two places, e.g. 1000.00.
        #[arg(long)]
        amount: String,
        /// The payment source: wallet, card, …
        #[arg(long, default_value = "wallet")]
        source: String,
        #[arg(long, default_value = "RUB")]
        currency: String,
        /// The menu item, when the service is in more than one.
        #[arg(long)]
        menu_item: Option<String>,
    },
}

/// A refusal as the REST API gives it.
fn refusal(e: &DictionaryError) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        serde_json::json!({"error": {"code": e.code(), "message": e.to_string(), "item": e.item()}})
    )
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<()> {
    let pool = etr_platform::database(settings).await?;
    match action {
        Action::Sync => {
            let centre = etr_platform::dictionaries::processing_centre();
            let imported = match store::sync(&pool, &*centre, "cli").await {
                Err(etr_infra::Error::Dictionary(e)) => return Err(refusal(&e)),
                other => other?,
            };
            println!("{}", serde_json::to_string(&imported)?);
        }
        Action::Import { file, phone_ranges } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut document: Document = serde_json::from_str(&text)
                .with_context(|| format!("{} is not a dictionaries document", file.display()))?;
            if let Some(csv) = &phone_ranges {
                let text = std::fs::read_to_string(csv)
                    .with_context(|| format!("reading {}", csv.display()))?;
                document.phone_ranges = parse_phone_ranges_csv(&text).map_err(|e| refusal(&e))?;
            }
            let dictionaries = Dictionaries::parse(&document).map_err(|e| refusal(&e))?;
            let name = file.file_name().map_or_else(
                || file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            );
            let imported =
                store::import(&pool, &dictionaries, &format!("file:{name}"), "cli").await?;
            println!("{}", serde_json::to_string(&imported)?);
        }
        Action::Versions { limit } => {
            for version in store::versions(&pool, limit).await? {
                println!("{}", serde_json::to_string(&version)?);
            }
        }
        Action::Phone { number } => {
            let phone = PhoneE164::parse(&number)?;
            let version = store::current_version(&pool)
                .await?
                .context("no dictionaries are stored yet")?;
            let digits = phone_number(&phone).context("not a number")?;
            let range = store::phone_range(&pool, version, digits).await?;
            println!(
                "{}",
                serde_json::json!({
                    "number": phone.as_str(),
                    "operator": range.as_ref().map(|r| &r.operator),
                    "region": range.as_ref().map(|r| &r.region),
                    "version": version,
                })
            );
        }
        Action::Quote {
            service,
            amount,
            source,
            currency,
            menu_item,
        } => {
            let current = store::Catalogues::default()
                .current(&pool)
                .await?
                .context("no dictionaries are stored yet")?;
            let menu_item = menu_item.as_deref().map(MenuItemId::parse).transpose()?;
            let quote = current
                .catalogue
                .quote(&QuoteRequest {
                    operation: OperationType::Payment,
                    service: &ServiceId::parse(&service)?,
                    menu_item: menu_item.as_ref(),
                    amount: Money::parse_positive(&amount, &currency)?,
                    source: &SourceId::parse(&source)?,
                })
                .map_err(|e| refusal(&e))?;
            println!(
                "{}",
                serde_json::json!({
                    "service": quote.service,
                    "menu_item": quote.menu_path,
                    "commission_profile": quote.commission_profile,
                    "source": quote.source,
                    "amount": format_amount(quote.amount.amount),
                    "commission": format_amount(quote.commission.amount),
                    "total": format_amount(quote.total.amount),
                    "currency": quote.amount.currency,
                    "version": current.version,
                })
            );
        }
    }
    Ok(())
}
