//! `etr lists …`: the watch lists — load a published Rosfinmonitoring list (with a progress
//! bar), check a person against every list (hits and the verdict as JSON), read a person's
//! listing history, and manage the operators' block and allow lists.

use anyhow::Context as _;
use etr_domain::legal::{self, verdict, Document, ListedPerson, Subject};
use etr_infra::config::Settings;
use etr_infra::watchlists::{self, ListKind, NewEntry, NewList};
use std::path::PathBuf;
use time::Date;

#[derive(clap::Args)]
pub struct Person {
    /// Full name, surname first (compared upper-cased, Ё as Е, single spaces).
    #[arg(long)]
    name: String,
    /// YYYY-MM-DD.
    #[arg(long)]
    birth_date: String,
    /// A passport (`4510 123456`), a person's INN (12 digits) or a SNILS (`112-233-445 95`),
    /// or `passport:` / `inn:` / `snils:` and the number; repeat for several.
    #[arg(long)]
    document: Vec<String>,
}

#[derive(clap::Subcommand)]
pub enum Action {
    /// Load a published Rosfinmonitoring list (`ID;FIO;DATE_OF_BIRTH;DOCUMENT`, `;`-separated,
    /// UTF-8): entries no longer in it are delisted, the history kept; prints the counts as
    /// JSON.
    LoadRfm { file: PathBuf },
    /// Check a person against the current Rosfinmonitoring list and every operator list;
    /// prints the hits and the verdict as JSON.
    Check {
        #[command(flatten)]
        person: Person,
        /// Check against the Rosfinmonitoring list as it stood after this load instead.
        #[arg(long, value_name = "LOAD_ID")]
        as_of_load: Option<i64>,
    },
    /// Every Rosfinmonitoring load that listed or delisted the person (JSON lines).
    History {
        #[command(flatten)]
        person: Person,
    },
    /// Create an operator list.
    Create {
        name: String,
        /// block | allow
        #[arg(long)]
        kind: String,
        /// What a hit on a block list does: decline | manual_review.
        #[arg(long, default_value = "manual_review")]
        action: String,
        #[arg(long, default_value = "")]
        description: String,
        /// The operator creating it.
        #[arg(long)]
        by: String,
    },
    /// Add an entry to an operator list: a document, or a name and a birth date.
    Add {
        list: String,
        #[arg(long, default_value = "")]
        name: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        birth_date: Option<String>,
        /// As for `check`.
        #[arg(long)]
        document: Option<String>,
        #[arg(long)]
        reason: String,
        /// The operator adding it.
        #[arg(long)]
        by: String,
    },
    /// Remove an entry from an operator list (kept, marked removed).
    Remove {
        list: String,
        entry: i64,
        #[arg(long)]
        reason: String,
        /// The operator removing it.
        #[arg(long)]
        by: String,
    },
    /// Without LIST: every operator list (JSON lines). With LIST: a page of its entries as
    /// JSON, with the cursor of the next page.
    Show {
        list: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// The `next_after` of the previous page.
        #[arg(long)]
        after: Option<i64>,
        /// Include removed entries.
        #[arg(long)]
        include_removed: bool,
    },
}

fn date(s: &str) -> anyhow::Result<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .with_context(|| format!("birth date `{s}` must be YYYY-MM-DD"))
}

fn document(s: &str) -> anyhow::Result<Document> {
    Document::parse(s).with_context(|| format!("document `{s}`"))
}

impl Person {
    fn subject(&self) -> anyhow::Result<Subject> {
        Ok(Subject {
            full_name: self.name.clone(),
            birth_date: date(&self.birth_date)?,
            documents: self
                .document
                .iter()
                .map(|d| document(d))
                .collect::<anyhow::Result<_>>()?,
        })
    }
}

pub async fn run(settings: &Settings, action: Action) -> anyhow::Result<()> {
    let pool = etr_platform::database(settings).await?;
    match action {
        Action::LoadRfm { file } => {
            let size = std::fs::metadata(&file)
                .with_context(|| format!("reading {}", file.display()))?
                .len();
            let input = std::io::BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?,
            );
            let bar = indicatif::ProgressBar::new(size).with_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .context("progress bar template")?,
            );
            let started = std::time::Instant::now();
            let loaded = watchlists::load_rosfinmonitoring(
                &pool,
                &file.display().to_string(),
                input,
                |bytes| bar.set_position(bytes),
            )
            .await?;
            bar.finish_and_clear();
            let mut out = serde_json::to_value(loaded)?;
            out["seconds"] = serde_json::json!(started.elapsed().as_secs_f32());
            println!("{out}");
        }
        Action::Check { person, as_of_load } => {
            let subject = person.subject()?;
            let hits = match as_of_load {
                Some(load) => watchlists::check_rosfinmonitoring_at(&pool, &subject, load).await?,
                None => watchlists::check(&pool, &subject).await?,
            };
            let policy = watchlists::policy(&pool).await?;
            println!(
                "{}",
                serde_json::json!({
                    "subject": subject,
                    "hits": hits,
                    "verdict": verdict(&hits, &policy),
                })
            );
        }
        Action::History { person } => {
            for row in watchlists::history(&pool, &person.subject()?).await? {
                println!("{}", serde_json::to_string(&row)?);
            }
        }
        Action::Create {
            name,
            kind,
            action,
            description,
            by,
        } => {
            let kind = ListKind::parse(&kind)
                .with_context(|| format!("list kind `{kind}`: block or allow"))?;
            let action = legal::Action::parse(&action)
                .with_context(|| format!("action `{action}`: decline or manual_review"))?;
            let list = watchlists::create_list(
                &pool,
                &NewList {
                    name,
                    kind,
                    action,
                    description,
                    created_by: by,
                },
            )
            .await?;
            println!("{}", serde_json::to_string(&list)?);
        }
        Action::Add {
            list,
            name,
            birth_date,
            document: doc,
            reason,
            by,
        } => {
            let person = ListedPerson {
                full_name: name,
                birth_date: birth_date.as_deref().map(date).transpose()?,
                document: doc.as_deref().map(document).transpose()?,
            };
            let entry = watchlists::add_entry(
                &pool,
                &list,
                &NewEntry {
                    person,
                    reason,
                    added_by: by,
                },
            )
            .await?;
            println!("{}", serde_json::to_string(&entry)?);
        }
        Action::Remove {
            list,
            entry,
            reason,
            by,
        } => {
            let entry = watchlists::remove_entry(&pool, &list, entry, &by, &reason).await?;
            println!("{}", serde_json::to_string(&entry)?);
        }
        Action::Show { list: None, .. } => {
            for list in watchlists::lists(&pool).await? {
                println!("{}", serde_json::to_string(&list)?);
            }
        }
        Action::Show {
            list: Some(list),
            limit,
            after,
            include_removed,
        } => {
            let page = watchlists::entries(&pool, &list, limit, after, include_removed).await?;
            println!("{}", serde_json::to_string(&page)?);
        }
    }
    Ok(())
}
