//! Watch lists in Postgres (seed 000, 6.6.1 financial-monitoring-service and 6.6.9
//! list-manager-service): the Rosfinmonitoring list of persons involved in extremist activity
//! or terrorism (kept under 115-FZ art. 6), loaded from published files with its history, and
//! the operators' own block and allow lists. Who matches an entry and what a hit means are
//! the domain's rules ([`etr_domain::legal`]); this module stores the lists, finds the
//! candidate entries by index and lets the domain decide.
//!
//! # The Rosfinmonitoring file
//!
//! UTF-8 text, one entry per line, fields separated by `;`, an optional header line
//! `ID;FIO;DATE_OF_BIRTH;DOCUMENT` (a leading byte-order mark is allowed). A field may be
//! wrapped in double quotes (a quote inside is written twice); a field never contains `;`.
//!
//! | field | content |
//! |---|---|
//! | `ID` | the entry's number on the list, non-empty |
//! | `FIO` | the full name, surname first, non-empty |
//! | `DATE_OF_BIRTH` | `DD.MM.YYYY`, or empty when the list gives none |
//! | `DOCUMENT` | empty, or a passport `SSSS NNNNNN`, a person's INN (12 digits), a SNILS (`XXX-XXX-XXX YY` or 11 digits), or any of them with a `passport:` / `inn:` / `snils:` prefix (an organisation's 10-digit INN needs `inn:`); see [`Document::parse`] |
//!
//! A line with another number of fields, an empty `ID` or `FIO`, a date that is not a
//! calendar date in that form, a document that does not parse, or bytes that are not UTF-8 is
//! skipped and counted, never loaded half-parsed. Blank lines are ignored.
//!
//! # History
//!
//! A load is the whole list as published. It is compared with the current list in one
//! transaction: an entry present before and absent now is marked delisted by the new load
//! (never deleted), an entry new to the list is listed by it, an entry in both is left as it
//! is. An entry is identified by its content (ID, normalised name, birth date, document), so
//! an entry whose data change shows as the old version delisted and the new one listed by the
//! same load. Every load is recorded in `watchlist_loads`; the current list, the list as of
//! any load ([`check_rosfinmonitoring_at`]) and a person's listings over time ([`history`])
//! can all be read back.

use etr_domain::legal::{
    match_entry, normalize_name, Action, Document, Hit, ListRef, ListedPerson, MatchedOn, Policy,
    Subject,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use std::io::BufRead;
use time::{Date, OffsetDateTime};

use crate::error::{Error, Result};

/// The `list` of the Rosfinmonitoring loads in `watchlist_loads`.
pub const ROSFINMONITORING: &str = "rosfinmonitoring";

/// How many lines go to Postgres in one `COPY` chunk.
const CHUNK_LINES: usize = 50_000;

/// The most entries one page of [`entries`] returns.
pub const MAX_PAGE: u32 = 1_000;

const HEADER: &str = "ID;FIO;DATE_OF_BIRTH;DOCUMENT";

/// What a load of the Rosfinmonitoring list did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Loaded {
    /// The load's id in `watchlist_loads`.
    pub load_id: i64,
    /// Data lines read (the header and blank lines not counted).
    pub rows_read: u64,
    /// Lines skipped as malformed.
    pub skipped: u64,
    /// Entries on the list after the load.
    pub listed: u64,
    /// Entries this load put on the list.
    pub added: u64,
    /// Entries this load took off the list (present before, absent from the file).
    pub delisted: u64,
}

/// One parsed line of the published file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RfmLine {
    entry_id: String,
    full_name: String,
    birth_date: Option<Date>,
    document: Option<Document>,
}

/// One field: trimmed, surrounding double quotes removed (`""` inside read as `"`).
fn field(raw: &str) -> String {
    let t = raw.trim();
    match t
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
    {
        Some(inner) => inner.replace("\"\"", "\"").trim().to_owned(),
        None => t.to_owned(),
    }
}

/// A line of the file, or `None` when it is malformed (the rules in the module's docs).
fn parse_rfm_line(line: &str) -> Option<RfmLine> {
    let fields: Vec<String> = line.split(';').map(field).collect();
    let [entry_id, full_name, birth, document] = <[String; 4]>::try_from(fields).ok()?;
    if entry_id.is_empty()
        || entry_id.chars().any(char::is_control)
        || normalize_name(&full_name).is_empty()
    {
        return None;
    }
    let birth_date = if birth.is_empty() {
        None
    } else {
        Some(
            Date::parse(
                &birth,
                time::macros::format_description!("[day].[month].[year]"),
            )
            .ok()?,
        )
    };
    let document = if document.is_empty() {
        None
    } else {
        Some(Document::parse(&document).ok()?)
    };
    Some(RfmLine {
        entry_id,
        full_name,
        birth_date,
        document,
    })
}

/// The identity of an entry across loads: SHA-256 (hex) of its ID, normalised name, birth
/// date and document, separated by a unit separator.
fn entry_key(line: &RfmLine, name_norm: &str) -> String {
    let mut h = Sha256::new();
    h.update(line.entry_id.as_bytes());
    h.update([0x1f]);
    h.update(name_norm.as_bytes());
    h.update([0x1f]);
    if let Some(d) = line.birth_date {
        h.update(d.to_string().as_bytes());
    }
    h.update([0x1f]);
    if let Some(d) = &line.document {
        h.update(d.to_string().as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends one `COPY … FROM STDIN` text-format field (`\N` for `None`), escaped.
fn push_field(out: &mut String, value: Option<&str>, last: bool) {
    match value {
        None => out.push_str("\\N"),
        Some(v) => {
            for c in v.chars() {
                match c {
                    '\\' => out.push_str("\\\\"),
                    '\t' => out.push_str("\\t"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    c => out.push(c),
                }
            }
        }
    }
    out.push(if last { '\n' } else { '\t' });
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Loads a published Rosfinmonitoring list read from `input` (named `source` in the load
/// record), in one transaction: the file is streamed into a staging table with `COPY`, then
/// compared with the current list (the module's "History"). Loads are serialised: a second
/// one waits for the first to commit. `progress` is called with the bytes read so far after
/// every chunk.
///
/// Errors: [`Error::Io`] reading `input`; [`Error::Postgres`] (nothing of the load is then
/// visible).
pub async fn load_rosfinmonitoring(
    pool: &PgPool,
    source: &str,
    mut input: impl BufRead,
    mut progress: impl FnMut(u64),
) -> Result<Loaded> {
    let mut tx = pool.begin().await?;
    // Readers go on; another load waits for this one.
    sqlx::query("LOCK TABLE rosfinmonitoring_entries IN EXCLUSIVE MODE")
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "CREATE TEMP TABLE rosfinmonitoring_staging (entry_key TEXT, entry_id TEXT, \
         full_name TEXT, name_norm TEXT, birth_date DATE, document_kind TEXT, document TEXT) \
         ON COMMIT DROP",
    )
    .execute(&mut *tx)
    .await?;
    let mut rows_read = 0u64;
    let mut skipped = 0u64;
    let mut bytes = 0u64;
    let mut chunk = String::with_capacity(CHUNK_LINES * 160);
    let mut lines_in_chunk = 0usize;
    let mut raw = Vec::with_capacity(256);
    let mut first = true;
    loop {
        raw.clear();
        let n = input.read_until(b'\n', &mut raw)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        let was_first = std::mem::replace(&mut first, false);
        let Ok(text) = std::str::from_utf8(&raw) else {
            rows_read += 1;
            skipped += 1;
            continue;
        };
        let line = text.trim_start_matches('\u{feff}').trim();
        if line.is_empty() || (was_first && line.eq_ignore_ascii_case(HEADER)) {
            continue;
        }
        rows_read += 1;
        let Some(parsed) = parse_rfm_line(line) else {
            skipped += 1;
            continue;
        };
        let name_norm = normalize_name(&parsed.full_name);
        let birth = parsed.birth_date.map(|d| d.to_string());
        push_field(&mut chunk, Some(&entry_key(&parsed, &name_norm)), false);
        push_field(&mut chunk, Some(&parsed.entry_id), false);
        push_field(&mut chunk, Some(&parsed.full_name), false);
        push_field(&mut chunk, Some(&name_norm), false);
        push_field(&mut chunk, birth.as_deref(), false);
        push_field(
            &mut chunk,
            parsed.document.as_ref().map(Document::kind),
            false,
        );
        push_field(
            &mut chunk,
            parsed.document.as_ref().map(Document::value),
            true,
        );
        lines_in_chunk += 1;
        if lines_in_chunk >= CHUNK_LINES {
            copy_chunk(&mut tx, &chunk).await?;
            chunk.clear();
            lines_in_chunk = 0;
            progress(bytes);
        }
    }
    if lines_in_chunk > 0 {
        copy_chunk(&mut tx, &chunk).await?;
    }
    progress(bytes);
    sqlx::query("ANALYZE rosfinmonitoring_staging")
        .execute(&mut *tx)
        .await?;
    let load_id: i64 = sqlx::query_scalar(
        "INSERT INTO watchlist_loads (list, source, rows, skipped, listed, added, delisted) \
         VALUES ($1, $2, $3, $4, 0, 0, 0) RETURNING id",
    )
    .bind(ROSFINMONITORING)
    .bind(source)
    .bind(to_i64(rows_read))
    .bind(to_i64(skipped))
    .fetch_one(&mut *tx)
    .await?;
    let delisted = sqlx::query(
        "UPDATE rosfinmonitoring_entries e SET delisted_in_load = $1 \
         WHERE e.delisted_in_load IS NULL \
           AND NOT EXISTS (SELECT 1 FROM rosfinmonitoring_staging s WHERE s.entry_key = e.entry_key)",
    )
    .bind(load_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let added = sqlx::query(
        "INSERT INTO rosfinmonitoring_entries \
           (entry_key, entry_id, full_name, name_norm, birth_date, document_kind, document, listed_in_load) \
         SELECT DISTINCT ON (s.entry_key) s.entry_key, s.entry_id, s.full_name, s.name_norm, \
                s.birth_date, s.document_kind, s.document, $1 \
         FROM rosfinmonitoring_staging s \
         WHERE NOT EXISTS (SELECT 1 FROM rosfinmonitoring_entries e \
                           WHERE e.entry_key = s.entry_key AND e.delisted_in_load IS NULL) \
         ORDER BY s.entry_key",
    )
    .bind(load_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    let listed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM rosfinmonitoring_entries WHERE delisted_in_load IS NULL",
    )
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query("UPDATE watchlist_loads SET listed = $2, added = $3, delisted = $4 WHERE id = $1")
        .bind(load_id)
        .bind(listed)
        .bind(to_i64(added))
        .bind(to_i64(delisted))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Loaded {
        load_id,
        rows_read,
        skipped,
        listed: to_u64(listed),
        added,
        delisted,
    })
}

async fn copy_chunk(tx: &mut sqlx::PgConnection, chunk: &str) -> Result<()> {
    let mut copy = tx
        .copy_in_raw(
            "COPY rosfinmonitoring_staging \
             (entry_key, entry_id, full_name, name_norm, birth_date, document_kind, document) \
             FROM STDIN",
        )
        .await?;
    copy.send(chunk.as_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// A recorded load of a published list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Load {
    /// The load's id (`listed_in_load` / `delisted_in_load` of the entries).
    pub id: i64,
    /// Which list ([`ROSFINMONITORING`]).
    pub list: String,
    /// Where the file came from (its path, as given to the load).
    pub source: String,
    /// When the load was recorded (the file read, the comparison about to run).
    #[serde(with = "time::serde::rfc3339")]
    pub loaded_at: OffsetDateTime,
    /// Data lines read, malformed ones included.
    pub rows: u64,
    /// Lines skipped as malformed.
    pub skipped: u64,
    /// Entries on the list after the load.
    pub listed: u64,
    /// Entries the load put on the list.
    pub added: u64,
    /// Entries the load took off the list.
    pub delisted: u64,
}

/// The loads of `list`, oldest first.
///
/// Errors: [`Error::Postgres`].
pub async fn loads(pool: &PgPool, list: &str) -> Result<Vec<Load>> {
    let rows = sqlx::query(
        "SELECT id, list, source, loaded_at, rows, skipped, listed, added, delisted \
         FROM watchlist_loads WHERE list = $1 ORDER BY id",
    )
    .bind(list)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Load {
                id: r.try_get("id")?,
                list: r.try_get("list")?,
                source: r.try_get("source")?,
                loaded_at: r.try_get("loaded_at")?,
                rows: to_u64(r.try_get("rows")?),
                skipped: to_u64(r.try_get("skipped")?),
                listed: to_u64(r.try_get("listed")?),
                added: to_u64(r.try_get("added")?),
                delisted: to_u64(r.try_get("delisted")?),
            })
        })
        .collect()
}

/// The canonical numbers of a subject's documents, for the `document = ANY(…)` lookups.
fn document_values(subject: &Subject) -> Vec<String> {
    subject
        .documents
        .iter()
        .map(|d| d.value().to_owned())
        .collect()
}

/// A stored document back as the domain's type.
fn stored_document(kind: Option<String>, value: Option<String>) -> Result<Option<Document>> {
    match (kind, value) {
        (Some(kind), Some(value)) => Document::parse(&format!("{kind}:{value}"))
            .map(Some)
            .map_err(|e| Error::Invalid(format!("stored document {kind}:{value}: {e}"))),
        _ => Ok(None),
    }
}

/// A stored Rosfinmonitoring entry version.
struct RfmRow {
    entry_id: String,
    person: ListedPerson,
    listed_in_load: i64,
    delisted_in_load: Option<i64>,
}

const RFM_COLUMNS: &str =
    "entry_id, full_name, birth_date, document_kind, document, listed_in_load, delisted_in_load";

fn rfm_row(r: &sqlx::postgres::PgRow) -> Result<RfmRow> {
    Ok(RfmRow {
        entry_id: r.try_get("entry_id")?,
        person: ListedPerson {
            full_name: r.try_get("full_name")?,
            birth_date: r.try_get("birth_date")?,
            document: stored_document(r.try_get("document_kind")?, r.try_get("document")?)?,
        },
        listed_in_load: r.try_get("listed_in_load")?,
        delisted_in_load: r.try_get("delisted_in_load")?,
    })
}

fn rfm_hit(subject: &Subject, row: &RfmRow) -> Option<Hit> {
    let matched_on = match_entry(subject, &row.person)?;
    let p = &row.person;
    let mut reason = format!("listed as {}", p.full_name);
    if let Some(d) = p.birth_date {
        reason.push_str(&format!(
            ", born {:02}.{:02}.{}",
            d.day(),
            u8::from(d.month()),
            d.year()
        ));
    }
    if let Some(d) = &p.document {
        reason.push_str(&format!(", document {d}"));
    }
    reason.push_str(&format!(", since load {}", row.listed_in_load));
    Some(Hit {
        list: ListRef::Rosfinmonitoring,
        entry_id: row.entry_id.clone(),
        matched_on,
        reason,
    })
}

/// Which versions of the Rosfinmonitoring entries a lookup reads.
#[derive(Debug, Clone, Copy)]
enum Scope {
    /// The current list.
    Current,
    /// The list as it stood after the load.
    AtLoad(i64),
    /// Every version ever listed.
    All,
}

/// The Rosfinmonitoring entry versions in `scope` that may match `subject`, found by index
/// (normalised name + birth date, or document number); the domain's rule decides after.
async fn rfm_candidates(pool: &PgPool, subject: &Subject, scope: Scope) -> Result<Vec<RfmRow>> {
    let condition = match scope {
        Scope::Current => "AND delisted_in_load IS NULL",
        Scope::AtLoad(_) => {
            "AND listed_in_load <= $4 AND (delisted_in_load IS NULL OR delisted_in_load > $4)"
        }
        Scope::All => "",
    };
    let sql = format!(
        "SELECT {RFM_COLUMNS} FROM rosfinmonitoring_entries \
         WHERE ((name_norm = $1 AND birth_date = $2) OR document = ANY($3)) {condition} \
         ORDER BY listed_in_load, entry_id, id"
    );
    let mut query = sqlx::query(&sql)
        .bind(subject.normalized_name())
        .bind(subject.birth_date)
        .bind(document_values(subject));
    if let Scope::AtLoad(load) = scope {
        query = query.bind(load);
    }
    let rows = query.fetch_all(pool).await?;
    rows.iter().map(rfm_row).collect()
}

/// The Rosfinmonitoring list as it stood after load `load_id`, checked for `subject` (the
/// domain's matching rule; 6.6.1 "history of changes").
///
/// Errors: [`Error::NotFound`] when `load_id` is not a Rosfinmonitoring load;
/// [`Error::Postgres`].
pub async fn check_rosfinmonitoring_at(
    pool: &PgPool,
    subject: &Subject,
    load_id: i64,
) -> Result<Vec<Hit>> {
    let known: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM watchlist_loads WHERE id = $1 AND list = $2)",
    )
    .bind(load_id)
    .bind(ROSFINMONITORING)
    .fetch_one(pool)
    .await?;
    if !known {
        return Err(Error::NotFound(format!("Rosfinmonitoring load {load_id}")));
    }
    let rows = rfm_candidates(pool, subject, Scope::AtLoad(load_id)).await?;
    Ok(rows.iter().filter_map(|r| rfm_hit(subject, r)).collect())
}

/// Every hit of `subject` on the current Rosfinmonitoring list and on the operators' lists
/// (removed entries excluded): Rosfinmonitoring hits first, then by list name and entry.
/// Candidates are found through the indexes on normalised name + birth date and on document;
/// the domain's rule ([`match_entry`]) decides. What the hits mean is
/// [`etr_domain::legal::verdict`]'s, under [`policy`].
///
/// Errors: [`Error::Postgres`].
pub async fn check(pool: &PgPool, subject: &Subject) -> Result<Vec<Hit>> {
    let rows = rfm_candidates(pool, subject, Scope::Current).await?;
    let mut hits: Vec<Hit> = rows.iter().filter_map(|r| rfm_hit(subject, r)).collect();
    let rows = sqlx::query(
        "SELECT w.name, w.kind, e.id, e.full_name, e.birth_date, e.document_kind, e.document, e.reason \
         FROM watchlist_entries e JOIN watchlists w ON w.id = e.list_id \
         WHERE e.removed_at IS NULL \
           AND ((e.name_norm = $1 AND e.birth_date = $2) OR e.document = ANY($3)) \
         ORDER BY w.name, e.id",
    )
    .bind(subject.normalized_name())
    .bind(subject.birth_date)
    .bind(document_values(subject))
    .fetch_all(pool)
    .await?;
    for r in &rows {
        let person = ListedPerson {
            full_name: r.try_get("full_name")?,
            birth_date: r.try_get("birth_date")?,
            document: stored_document(r.try_get("document_kind")?, r.try_get("document")?)?,
        };
        let Some(matched_on) = match_entry(subject, &person) else {
            continue;
        };
        let name: String = r.try_get("name")?;
        let kind: String = r.try_get("kind")?;
        let list = match ListKind::parse(&kind) {
            Some(ListKind::Allow) => ListRef::Allow(name),
            Some(ListKind::Block) => ListRef::Block(name),
            None => return Err(Error::Invalid(format!("stored list kind `{kind}`"))),
        };
        let id: i64 = r.try_get("id")?;
        hits.push(Hit {
            list,
            entry_id: id.to_string(),
            matched_on,
            reason: r.try_get("reason")?,
        });
    }
    Ok(hits)
}

/// A change of a person's presence on the Rosfinmonitoring list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Taken off the list by the load (present in the one before, absent from it).
    Delisted,
    /// Put on the list by the load.
    Listed,
}

/// One load that listed or delisted an entry matching the person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    /// The load that made the change.
    pub load_id: i64,
    /// When that load ran.
    #[serde(with = "time::serde::rfc3339")]
    pub loaded_at: OffsetDateTime,
    /// The load's file, as recorded.
    pub source: String,
    /// Listed or delisted.
    pub change: Change,
    /// The entry's `ID` on the list.
    pub entry_id: String,
    /// The entry's name as the list writes it.
    pub full_name: String,
    /// The entry's birth date (`YYYY-MM-DD` in JSON).
    #[serde(with = "etr_domain::time_serde::iso_date_option")]
    pub birth_date: Option<Date>,
    /// The entry's document.
    pub document: Option<Document>,
    /// What of the person matched the entry.
    pub matched_on: MatchedOn,
}

/// Every load in which an entry matching `subject` was listed or delisted, oldest load
/// first (within a load, delistings first) — 6.6.1 "history of changes".
///
/// Errors: [`Error::Postgres`].
pub async fn history(pool: &PgPool, subject: &Subject) -> Result<Vec<HistoryRow>> {
    let rows = rfm_candidates(pool, subject, Scope::All).await?;
    let mut events = Vec::new();
    for row in &rows {
        let Some(matched_on) = match_entry(subject, &row.person) else {
            continue;
        };
        let changes = std::iter::once((row.listed_in_load, Change::Listed))
            .chain(row.delisted_in_load.map(|l| (l, Change::Delisted)));
        for (load_id, change) in changes {
            events.push((load_id, change, row, matched_on));
        }
    }
    events.sort_by(|a, b| (a.0, a.1, &a.2.entry_id).cmp(&(b.0, b.1, &b.2.entry_id)));
    let ids: Vec<i64> = events.iter().map(|e| e.0).collect();
    let loads = sqlx::query("SELECT id, loaded_at, source FROM watchlist_loads WHERE id = ANY($1)")
        .bind(&ids)
        .fetch_all(pool)
        .await?;
    let mut by_id = std::collections::HashMap::new();
    for l in &loads {
        let id: i64 = l.try_get("id")?;
        let at: OffsetDateTime = l.try_get("loaded_at")?;
        let source: String = l.try_get("source")?;
        by_id.insert(id, (at, source));
    }
    events
        .into_iter()
        .map(|(load_id, change, row, matched_on)| {
            let (loaded_at, source) = by_id
                .get(&load_id)
                .cloned()
                .ok_or_else(|| Error::NotFound(format!("load {load_id}")))?;
            Ok(HistoryRow {
                load_id,
                loaded_at,
                source,
                change,
                entry_id: row.entry_id.clone(),
                full_name: row.person.full_name.clone(),
                birth_date: row.person.birth_date,
                document: row.person.document.clone(),
                matched_on,
            })
        })
        .collect()
}

/// The kind of an operator-managed list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    /// Its hits call for the list's action.
    Block,
    /// Its hits clear block-list hits.
    Allow,
}

impl ListKind {
    /// `block` or `allow`.
    pub fn as_str(self) -> &'static str {
        match self {
            ListKind::Block => "block",
            ListKind::Allow => "allow",
        }
    }

    /// Reads [`ListKind::as_str`]'s form; `None` for anything else.
    pub fn parse(s: &str) -> Option<ListKind> {
        match s {
            "block" => Some(ListKind::Block),
            "allow" => Some(ListKind::Allow),
            _ => None,
        }
    }
}

/// A list to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewList {
    /// Unique, non-empty.
    pub name: String,
    /// Block or allow.
    pub kind: ListKind,
    /// What a hit on a block list does (not used for an allow list).
    pub action: Action,
    /// Free text for the operators.
    pub description: String,
    /// The operator creating it.
    pub created_by: String,
}

/// An operator-managed list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct List {
    /// The list's id.
    pub id: i64,
    /// Unique name (the `ListRef` of its hits).
    pub name: String,
    /// Block or allow.
    pub kind: ListKind,
    /// What a hit on it does, for a block list.
    pub action: Action,
    /// Free text for the operators.
    pub description: String,
    /// The operator who created it.
    pub created_by: String,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

fn list_row(r: &sqlx::postgres::PgRow) -> Result<List> {
    let kind: String = r.try_get("kind")?;
    let action: String = r.try_get("action")?;
    Ok(List {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        kind: ListKind::parse(&kind)
            .ok_or_else(|| Error::Invalid(format!("stored list kind `{kind}`")))?,
        action: Action::parse(&action)
            .ok_or_else(|| Error::Invalid(format!("stored list action `{action}`")))?,
        description: r.try_get("description")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

const LIST_COLUMNS: &str = "id, name, kind, action, description, created_by, created_at";

/// Creates an operator-managed list (6.6.9).
///
/// Errors: [`Error::Invalid`] for an empty name or creator, or a name already taken;
/// [`Error::Postgres`].
pub async fn create_list(pool: &PgPool, new: &NewList) -> Result<List> {
    let name = new.name.trim();
    if name.is_empty() || new.created_by.trim().is_empty() {
        return Err(Error::Invalid(
            "a list needs a name and the operator creating it".into(),
        ));
    }
    let row = sqlx::query(&format!(
        "INSERT INTO watchlists (name, kind, action, description, created_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING RETURNING {LIST_COLUMNS}"
    ))
    .bind(name)
    .bind(new.kind.as_str())
    .bind(new.action.as_str())
    .bind(&new.description)
    .bind(new.created_by.trim())
    .fetch_optional(pool)
    .await?;
    match row {
        Some(r) => list_row(&r),
        None => Err(Error::Invalid(format!(
            "a list named `{name}` already exists"
        ))),
    }
}

/// The operator-managed list named `name`.
///
/// Errors: [`Error::NotFound`]; [`Error::Postgres`].
pub async fn list(pool: &PgPool, name: &str) -> Result<List> {
    let row = sqlx::query(&format!(
        "SELECT {LIST_COLUMNS} FROM watchlists WHERE name = $1"
    ))
    .bind(name)
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("list `{name}`")))?;
    list_row(&row)
}

/// Every operator-managed list, by name.
///
/// Errors: [`Error::Postgres`].
pub async fn lists(pool: &PgPool) -> Result<Vec<List>> {
    let rows = sqlx::query(&format!(
        "SELECT {LIST_COLUMNS} FROM watchlists ORDER BY name"
    ))
    .fetch_all(pool)
    .await?;
    rows.iter().map(list_row).collect()
}

/// The checks' policy with each block list's own action ([`Policy::block_lists`]); the rest
/// as [`Policy::default`].
///
/// Errors: [`Error::Postgres`].
pub async fn policy(pool: &PgPool) -> Result<Policy> {
    let mut policy = Policy::default();
    for l in lists(pool).await? {
        if l.kind == ListKind::Block {
            policy.block_lists.insert(l.name, l.action);
        }
    }
    Ok(policy)
}

/// An entry to add to an operator-managed list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Who it is: a document, or a full name and a birth date (or all three).
    pub person: ListedPerson,
    /// Why the person is on the list; shown with every hit.
    pub reason: String,
    /// The operator adding it.
    pub added_by: String,
}

/// An entry of an operator-managed list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// The entry's id (the `entry_id` of its hits, the page cursor).
    pub id: i64,
    /// The list's name.
    pub list: String,
    /// Full name as entered (`""` for an entry by document only).
    pub full_name: String,
    /// Birth date (`YYYY-MM-DD` in JSON).
    #[serde(with = "etr_domain::time_serde::iso_date_option")]
    pub birth_date: Option<Date>,
    /// The document, for an entry by document.
    pub document: Option<Document>,
    /// Why the person is on the list.
    pub reason: String,
    /// The operator who added it.
    pub added_by: String,
    /// When it was added.
    #[serde(with = "time::serde::rfc3339")]
    pub added_at: OffsetDateTime,
    /// When it was removed; `None` while it is on the list.
    #[serde(with = "etr_domain::time_serde::rfc3339_option")]
    pub removed_at: Option<OffsetDateTime>,
    /// The operator who removed it.
    pub removed_by: Option<String>,
    /// Why it was removed.
    pub removal_reason: Option<String>,
}

const ENTRY_COLUMNS: &str = "e.id, w.name AS list, e.full_name, e.birth_date, e.document_kind, \
     e.document, e.reason, e.added_by, e.added_at, e.removed_at, e.removed_by, e.removal_reason";

fn entry_row(r: &sqlx::postgres::PgRow) -> Result<Entry> {
    Ok(Entry {
        id: r.try_get("id")?,
        list: r.try_get("list")?,
        full_name: r.try_get("full_name")?,
        birth_date: r.try_get("birth_date")?,
        document: stored_document(r.try_get("document_kind")?, r.try_get("document")?)?,
        reason: r.try_get("reason")?,
        added_by: r.try_get("added_by")?,
        added_at: r.try_get("added_at")?,
        removed_at: r.try_get("removed_at")?,
        removed_by: r.try_get("removed_by")?,
        removal_reason: r.try_get("removal_reason")?,
    })
}

/// Adds an entry to the list named `list_name` (6.6.9).
///
/// Errors: [`Error::NotFound`] for an unknown list; [`Error::Invalid`] for an entry that
/// could never match (no document, and not both a name and a birth date), or without a reason
/// or an operator; [`Error::Postgres`].
pub async fn add_entry(pool: &PgPool, list_name: &str, new: &NewEntry) -> Result<Entry> {
    let p = &new.person;
    let name_norm = normalize_name(&p.full_name);
    if p.document.is_none() && (name_norm.is_empty() || p.birth_date.is_none()) {
        return Err(Error::Invalid(
            "an entry needs a document, or a full name and a birth date".into(),
        ));
    }
    if new.reason.trim().is_empty() || new.added_by.trim().is_empty() {
        return Err(Error::Invalid(
            "an entry needs a reason and the operator adding it".into(),
        ));
    }
    let row = sqlx::query(&format!(
        "WITH w AS (SELECT id, name FROM watchlists WHERE name = $1), \
              e AS (INSERT INTO watchlist_entries \
                      (list_id, full_name, name_norm, birth_date, document_kind, document, reason, added_by) \
                    SELECT w.id, $2, $3, $4, $5, $6, $7, $8 FROM w RETURNING *) \
         SELECT {ENTRY_COLUMNS} FROM e JOIN w ON w.id = e.list_id"
    ))
    .bind(list_name)
    .bind(p.full_name.trim())
    .bind(&name_norm)
    .bind(p.birth_date)
    .bind(p.document.as_ref().map(Document::kind))
    .bind(p.document.as_ref().map(Document::value))
    .bind(new.reason.trim())
    .bind(new.added_by.trim())
    .fetch_optional(pool)
    .await?
    .ok_or_else(|| Error::NotFound(format!("list `{list_name}`")))?;
    entry_row(&row)
}

/// Removes entry `entry_id` from the list named `list_name`: the entry stays, marked removed
/// with who, when and why, and no longer hits (6.6.9).
///
/// Errors: [`Error::NotFound`] when the list has no such entry; [`Error::Invalid`] when it
/// was removed already, or without a reason or an operator; [`Error::Postgres`].
pub async fn remove_entry(
    pool: &PgPool,
    list_name: &str,
    entry_id: i64,
    removed_by: &str,
    reason: &str,
) -> Result<Entry> {
    if reason.trim().is_empty() || removed_by.trim().is_empty() {
        return Err(Error::Invalid(
            "a removal needs a reason and the operator removing the entry".into(),
        ));
    }
    let row = sqlx::query(&format!(
        "WITH w AS (SELECT id, name FROM watchlists WHERE name = $1), \
              e AS (UPDATE watchlist_entries x SET removed_at = clock_timestamp(), \
                           removed_by = $3, removal_reason = $4 \
                    FROM w WHERE x.list_id = w.id AND x.id = $2 AND x.removed_at IS NULL \
                    RETURNING x.*) \
         SELECT {ENTRY_COLUMNS} FROM e JOIN w ON w.id = e.list_id"
    ))
    .bind(list_name)
    .bind(entry_id)
    .bind(removed_by.trim())
    .bind(reason.trim())
    .fetch_optional(pool)
    .await?;
    if let Some(r) = row {
        return entry_row(&r);
    }
    let removed: Option<bool> = sqlx::query_scalar(
        "SELECT e.removed_at IS NOT NULL FROM watchlist_entries e JOIN watchlists w ON w.id = e.list_id \
         WHERE w.name = $1 AND e.id = $2",
    )
    .bind(list_name)
    .bind(entry_id)
    .fetch_optional(pool)
    .await?;
    match removed {
        Some(true) => Err(Error::Invalid(format!(
            "entry {entry_id} of list `{list_name}` was removed already"
        ))),
        _ => Err(Error::NotFound(format!(
            "entry {entry_id} of list `{list_name}`"
        ))),
    }
}

/// One page of a list's entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// In entry-id order.
    pub entries: Vec<Entry>,
    /// The cursor for the next page (`after`), `None` on the last one.
    pub next_after: Option<i64>,
}

/// The entries of the list named `list_name` with an id above `after`, at most `limit` of
/// them (1 to [`MAX_PAGE`]; other values are brought into that range); removed entries only
/// when `include_removed`.
///
/// Errors: [`Error::NotFound`] for an unknown list; [`Error::Postgres`].
pub async fn entries(
    pool: &PgPool,
    list_name: &str,
    limit: u32,
    after: Option<i64>,
    include_removed: bool,
) -> Result<Page> {
    let list = list(pool, list_name).await?;
    let limit = limit.clamp(1, MAX_PAGE);
    let rows = sqlx::query(&format!(
        "SELECT {ENTRY_COLUMNS} FROM watchlist_entries e JOIN watchlists w ON w.id = e.list_id \
         WHERE e.list_id = $1 AND e.id > $2 AND ($3 OR e.removed_at IS NULL) \
         ORDER BY e.id LIMIT $4"
    ))
    .bind(list.id)
    .bind(after.unwrap_or(0))
    .bind(include_removed)
    .bind(i64::from(limit) + 1)
    .fetch_all(pool)
    .await?;
    let mut entries = rows.iter().map(entry_row).collect::<Result<Vec<_>>>()?;
    let more = entries.len() > limit as usize;
    entries.truncate(limit as usize);
    let next_after = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(Page {
        entries,
        next_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn list_lines() {
        let l = parse_rfm_line("17;Иванов Иван Иванович;01.02.1980;4510 123456").unwrap();
        assert_eq!(l.entry_id, "17");
        assert_eq!(l.birth_date, Some(date!(1980 - 02 - 01)));
        assert_eq!(l.document.unwrap().to_string(), "passport:4510123456");
        let l = parse_rfm_line("\"18\";\"Петров \"\"Пётр\"\"\";;").unwrap();
        assert_eq!(
            (l.full_name.as_str(), l.birth_date, l.document),
            ("Петров \"Пётр\"", None, None)
        );
        assert!(parse_rfm_line("19;Сидоров;;112-233-445 95").is_some());
        for bad in [
            "1;Иванов;01.02.1980",
            "1;Иванов;01.02.1980;;",
            ";Иванов;;",
            "1; ;;",
            "1;Иванов;1980-02-01;",
            "1;Иванов;31.02.1980;",
            "1;Иванов;;4510 12345",
            "1;Иванов;;500100732258",
            "",
        ] {
            assert_eq!(parse_rfm_line(bad), None, "{bad}");
        }
    }

    #[test]
    fn copy_fields_are_escaped() {
        let mut out = String::new();
        push_field(&mut out, Some("a\\b\tc"), false);
        push_field(&mut out, None, true);
        assert_eq!(out, "a\\\\b\\tc\t\\N\n");
    }

    #[test]
    fn the_same_content_is_the_same_entry() {
        let a = parse_rfm_line("1;Артёмов  Пётр;01.02.1980;").unwrap();
        let b = parse_rfm_line("1;АРТЕМОВ ПЕТР;01.02.1980;").unwrap();
        let c = parse_rfm_line("2;АРТЕМОВ ПЕТР;01.02.1980;").unwrap();
        let key = |l: &RfmLine| entry_key(l, &normalize_name(&l.full_name));
        assert_eq!(key(&a), key(&b));
        assert_ne!(key(&a), key(&c));
    }
}
