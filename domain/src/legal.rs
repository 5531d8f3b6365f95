//! Legal checks of a client as pure rules (seed 000, 6.6 ETP_Legal): presence in the
//! Rosfinmonitoring list of persons involved in extremist activity or terrorism (6.6.1
//! financial-monitoring-service; the list is kept under Federal Law 115-FZ "On countering the
//! legalisation of proceeds of crime and the financing of terrorism", art. 6, and an
//! organisation must refuse a listed person's operations, art. 7), bankruptcy cases in the
//! federal register (6.6.2 bankrupt-check-service; Federal Law 127-FZ "On insolvency
//! (bankruptcy)") and the operators' own block and allow lists (6.6.9 list-manager-service).
//!
//! The lists themselves are stored elsewhere; this module says who matches an entry
//! ([`match_entry`]), how a name is compared ([`normalize_name`]), what a bankruptcy case means
//! ([`bankruptcy_hits`]) and what the hits of a client mean for an application under a
//! configured [`Policy`] ([`verdict`]).
//!
//! Matching rule: a client matches a list entry when one of the client's documents equals the
//! entry's document (same kind, same canonical number), or when the normalised full names are
//! equal **and** the birth dates are equal. A name alone never matches: namesakes are common,
//! and an entry without a birth date can only match by document.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use time::Date;

use crate::error::Error;
use crate::identity::{Inn, PassportNumber, Snils};

/// A name as compared against the lists: upper-cased, `Ё` read as `Е` (Russian spelling
/// omits the diaeresis freely, so registers and documents differ on it), every run of
/// whitespace replaced by one space, no leading or trailing space.
///
/// Idempotent: normalising a normalised name changes nothing.
pub fn normalize_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        for c in word.chars().flat_map(char::to_uppercase) {
            out.push(if c == 'Ё' { 'Е' } else { c });
        }
    }
    out
}

/// An identity document that the lists name, in its canonical form (see
/// [`crate::identity`]).
///
/// Written forms accepted by [`Document::parse`]: an explicit kind prefix `passport:`,
/// `inn:` or `snils:` followed by the number in any form its type accepts; or, without a
/// prefix, a passport as `SSSS NNNNNN` or 10 bare digits, an INN as 12 digits (a person's),
/// a SNILS as `XXX-XXX-XXX YY` or 11 bare digits. An organisation's 10-digit INN needs the
/// `inn:` prefix (10 bare digits are read as a passport).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Document {
    /// A Russian internal passport (series and number).
    Passport(PassportNumber),
    /// A taxpayer number (a person's 12 digits, or an organisation's 10).
    Inn(Inn),
    /// An individual insurance account number.
    Snils(Snils),
}

impl Document {
    /// Parses a written document (forms in the type's description).
    ///
    /// Errors: [`Error::Identity`] when the number has the shape of a kind but is not a valid
    /// one (a failed INN or SNILS check digit, an all-zero passport series);
    /// [`Error::Invalid`] when it has the shape of none, or names an unknown kind.
    pub fn parse(input: &str) -> Result<Document, Error> {
        let s = input.trim();
        if let Some((kind, value)) = s.split_once(':') {
            return match kind.trim().to_ascii_lowercase().as_str() {
                "passport" => Ok(Document::Passport(PassportNumber::parse(value)?)),
                "inn" => Ok(Document::Inn(Inn::parse(value)?)),
                "snils" => Ok(Document::Snils(Snils::parse(value)?)),
                other => Err(Error::Invalid(format!(
                    "document `{input}`: unknown kind `{other}` (passport, inn, snils)"
                ))),
            };
        }
        let digits = s.bytes().filter(u8::is_ascii_digit).count();
        let only = |allowed: &[u8]| {
            s.bytes()
                .all(|b| b.is_ascii_digit() || allowed.contains(&b))
        };
        let passport_shape = match s.split_once(' ') {
            Some((series, number)) => {
                series.len() == 4
                    && series.bytes().all(|b| b.is_ascii_digit())
                    && number.trim_start().len() == 6
                    && number.trim_start().bytes().all(|b| b.is_ascii_digit())
            }
            None => digits == 10 && only(&[]),
        };
        if passport_shape {
            Ok(Document::Passport(PassportNumber::parse(s)?))
        } else if digits == 12 && only(&[]) {
            Ok(Document::Inn(Inn::parse(s)?))
        } else if digits == 11 && only(b"- ") {
            Ok(Document::Snils(Snils::parse(s)?))
        } else {
            Err(Error::Invalid(format!(
                "document `{input}` is not a passport (`4510 123456`), a person's INN (12 \
                 digits) or a SNILS (`112-233-445 95`); prefix `passport:`, `inn:` or `snils:` \
                 to name the kind"
            )))
        }
    }

    /// `passport`, `inn` or `snils`.
    pub fn kind(&self) -> &'static str {
        match self {
            Document::Passport(_) => "passport",
            Document::Inn(_) => "inn",
            Document::Snils(_) => "snils",
        }
    }

    /// The canonical number (digits only).
    pub fn value(&self) -> &str {
        match self {
            Document::Passport(p) => p.as_str(),
            Document::Inn(i) => i.as_str(),
            Document::Snils(s) => s.as_str(),
        }
    }
}

impl fmt::Display for Document {
    /// `kind:number`, a form [`Document::parse`] reads back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind(), self.value())
    }
}

/// The person a check is about: a client, or an applicant before they are one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    /// Full name as written (surname first, as in a Russian passport); compared normalised.
    pub full_name: String,
    /// Date of birth (`YYYY-MM-DD` in JSON).
    #[serde(with = "crate::schedule::iso_date")]
    pub birth_date: Date,
    /// The documents the client gave; any of them matching an entry's document is a hit.
    pub documents: Vec<Document>,
}

impl Subject {
    /// The full name as compared ([`normalize_name`]).
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.full_name)
    }

    /// The surname: the first word of the full name as written, or `""` for an empty name.
    pub fn surname(&self) -> &str {
        self.full_name.split_whitespace().next().unwrap_or("")
    }
}

/// What identifies a person on a list: any of the fields may be missing on the published
/// list, and an entry that has neither a document nor a birth date can never match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedPerson {
    /// Full name as the list writes it (`""` when the list gives none).
    pub full_name: String,
    /// Date of birth, when the list gives one.
    pub birth_date: Option<Date>,
    /// The listed document, when the list gives one.
    pub document: Option<Document>,
}

/// Why a hit matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchedOn {
    /// One of the client's documents is the entry's document.
    Document,
    /// The normalised full name and the birth date are both the entry's.
    NameAndBirthDate,
}

impl fmt::Display for MatchedOn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchedOn::Document => "document",
            MatchedOn::NameAndBirthDate => "name and birth date",
        })
    }
}

/// Whether `subject` matches `entry`, and on what (the module's matching rule): a document
/// match first, else name and birth date; `None` for a name alone or nothing.
pub fn match_entry(subject: &Subject, entry: &ListedPerson) -> Option<MatchedOn> {
    if entry
        .document
        .as_ref()
        .is_some_and(|d| subject.documents.contains(d))
    {
        return Some(MatchedOn::Document);
    }
    let name = normalize_name(&entry.full_name);
    (!name.is_empty()
        && entry.birth_date == Some(subject.birth_date)
        && name == subject.normalized_name())
    .then_some(MatchedOn::NameAndBirthDate)
}

/// The list a hit comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum ListRef {
    /// The Rosfinmonitoring list (115-FZ).
    Rosfinmonitoring,
    /// The federal bankruptcy register (127-FZ).
    Bankruptcy,
    /// An operators' block list, by name.
    Block(String),
    /// An operators' allow list, by name: its hits clear block-list hits.
    Allow(String),
}

impl fmt::Display for ListRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListRef::Rosfinmonitoring => f.write_str("Rosfinmonitoring list (115-FZ)"),
            ListRef::Bankruptcy => f.write_str("federal bankruptcy register (127-FZ)"),
            ListRef::Block(name) => write!(f, "block list `{name}`"),
            ListRef::Allow(name) => write!(f, "allow list `{name}`"),
        }
    }
}

/// A client found on a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hit {
    /// The list the entry is on.
    pub list: ListRef,
    /// The entry's id on its list: the published list's `ID`, an operator entry's number, a
    /// bankruptcy case number.
    pub entry_id: String,
    /// What of the client matched the entry.
    pub matched_on: MatchedOn,
    /// Why the entry is there, as the list says it (an operator's reason, the listed name).
    pub reason: String,
}

impl Hit {
    /// One line naming the list and the entry, e.g. ``block list `fraud`, entry 17 (matched
    /// on document): chargebacks``.
    pub fn describe(&self) -> String {
        format!(
            "{}, entry {} (matched on {}): {}",
            self.list, self.entry_id, self.matched_on, self.reason
        )
    }
}

/// What a hit on a list does to an application.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The application is declined.
    Decline,
    /// An operator decides.
    ManualReview,
}

impl Action {
    /// `decline` or `manual_review`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Decline => "decline",
            Action::ManualReview => "manual_review",
        }
    }

    /// Reads [`Action::as_str`]'s form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "decline" => Some(Action::Decline),
            "manual_review" => Some(Action::ManualReview),
            _ => None,
        }
    }
}

/// The configured action per list. Allow lists have none: their hits only clear block-list
/// hits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Default [`Action::Decline`]: 115-FZ art. 7 requires refusing a listed person.
    pub rosfinmonitoring: Action,
    /// Default [`Action::Decline`]: an open case, or one completed less than five years ago
    /// (127-FZ art. 213.30), is reason to refuse a loan.
    pub bankruptcy: Action,
    /// Each block list's own setting, by list name.
    pub block_lists: BTreeMap<String, Action>,
    /// For a block list missing from `block_lists`; default [`Action::ManualReview`].
    pub other_block_lists: Action,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            rosfinmonitoring: Action::Decline,
            bankruptcy: Action::Decline,
            block_lists: BTreeMap::new(),
            other_block_lists: Action::ManualReview,
        }
    }
}

impl Policy {
    /// The action a hit on `list` calls for; `None` for an allow list.
    pub fn action(&self, list: &ListRef) -> Option<Action> {
        match list {
            ListRef::Rosfinmonitoring => Some(self.rosfinmonitoring),
            ListRef::Bankruptcy => Some(self.bankruptcy),
            ListRef::Block(name) => Some(
                self.block_lists
                    .get(name)
                    .copied()
                    .unwrap_or(self.other_block_lists),
            ),
            ListRef::Allow(_) => None,
        }
    }
}

/// The outcome of the legal checks for an application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Verdict {
    /// No hit calls for an action.
    Passed,
    /// No hit declines, at least one calls for an operator; `reasons` are those hits
    /// ([`Hit::describe`]).
    ManualReview { reasons: Vec<String> },
    /// At least one hit declines; `reasons` are the declining hits ([`Hit::describe`]).
    Declined { reasons: Vec<String> },
}

/// What `hits` mean under `policy`: a hit on any allow list clears every block-list hit (it
/// never clears a Rosfinmonitoring or bankruptcy hit, which the law decides); each remaining
/// hit calls for its list's action; a decline wins over a manual review; no remaining hit
/// passes.
pub fn verdict(hits: &[Hit], policy: &Policy) -> Verdict {
    let allowed = hits.iter().any(|h| matches!(h.list, ListRef::Allow(_)));
    let mut declined = Vec::new();
    let mut review = Vec::new();
    for hit in hits {
        if allowed && matches!(hit.list, ListRef::Block(_)) {
            continue;
        }
        match policy.action(&hit.list) {
            Some(Action::Decline) => declined.push(hit.describe()),
            Some(Action::ManualReview) => review.push(hit.describe()),
            None => {}
        }
    }
    if !declined.is_empty() {
        Verdict::Declined { reasons: declined }
    } else if !review.is_empty() {
        Verdict::ManualReview { reasons: review }
    } else {
        Verdict::Passed
    }
}

/// Where a bankruptcy case stands in the federal register.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// A procedure is under way (restructuring of debts, sale of property).
    Open,
    /// The procedure ended and the debtor was declared bankrupt: for five years the person
    /// must disclose it when borrowing (127-FZ art. 213.30).
    Completed,
    /// The case was closed without a bankruptcy (a settlement, a dismissed petition).
    Terminated,
}

impl CaseStatus {
    /// Whether a case in this status is a hit: open and completed cases are, terminated
    /// ones are not.
    pub fn is_hit(self) -> bool {
        matches!(self, CaseStatus::Open | CaseStatus::Completed)
    }
}

/// A bankruptcy case the federal register holds on a person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankruptcyCase {
    /// The arbitration court's case number, e.g. `А40-123456/2026`.
    pub case_number: String,
    /// Where the case stands.
    pub status: CaseStatus,
    /// The arbitration court hearing it.
    pub court: String,
    /// When the petition was accepted, when the register says.
    pub opened_on: Option<Date>,
    /// How the register identified the person: by INN or SNILS ([`MatchedOn::Document`]) or
    /// by name and birth date.
    pub matched_on: MatchedOn,
}

/// The hits of the cases the register returned: one per open or completed case.
pub fn bankruptcy_hits(cases: &[BankruptcyCase]) -> Vec<Hit> {
    cases
        .iter()
        .filter(|c| c.status.is_hit())
        .map(|c| Hit {
            list: ListRef::Bankruptcy,
            entry_id: c.case_number.clone(),
            matched_on: c.matched_on,
            reason: format!(
                "bankruptcy case {} is {} ({})",
                c.case_number,
                match c.status {
                    CaseStatus::Open => "open",
                    CaseStatus::Completed => "completed",
                    CaseStatus::Terminated => "terminated",
                },
                c.court
            ),
        })
        .collect()
}
