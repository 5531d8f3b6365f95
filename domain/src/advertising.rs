//! The advertising module (e-wallet spec §6, «РЕКЛАМНЫЙ МОДУЛЬ»): advertising places per
//! interface type, campaigns, banners with their selection conditions and weights, and the
//! playlist a place's banners are served from.
//!
//! - A [`Place`] is a spot in a client interface where a banner is shown: the web
//!   application (receipts viewed on the site) or the e-mail receipt (spec §6: the two kinds
//!   of interface operators add places for themselves). A receipt template names its place in
//!   `$adv.getBannerHtml($operation, 'content')` by the place's id (`content`).
//! - A [`Campaign`] has a name, an active period `[from, to)` — no end: it runs for ever
//!   (spec §6) — and an active flag.
//! - A [`Banner`] belongs to one campaign and one place; its [`Content`] (title, text, link,
//!   optional image) is shown when its [`Conditions`] match the operation: the service, the
//!   menu item (the service's category), the amount debited in `[from, to)`, and regular
//!   expressions over the operation's attributes. Its [`Weight`] is how often it is shown.
//! - The [`Playlist`] of a place holds every banner of the place's active campaigns `weight`
//!   times (a banner of weight 3 three times), shuffled by a seed; each request takes the
//!   next entry from a cursor whose banner matches the operation and whose campaign runs at
//!   the request's time, walking at most one lap ([`Playlist::next`]). Over a lap of
//!   requests with the same criteria every matching banner is served exactly `weight` times:
//!   the spec's separate playlist per set of criteria, without storing one per set.
//!
//! Everything here is pure: the time of a request comes in, the seed comes in
//! ([`playlist_seed`] derives it from the place and the playlist's version), and storing the
//! playlist and its cursor is `etr_infra::advertising`'s. Input is parsed strictly into
//! newtypes; every refusal is an [`AdError`] with a stable code ([`AdError::code`]).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use regex::{Regex, RegexBuilder};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use time::OffsetDateTime;

use crate::money::{format_fixed, Money, MoneyError};

/// The most characters of an id (a place's, a campaign's, a banner's).
pub const MAX_ID_CHARS: usize = 40;
/// The most characters of a name or a banner's title.
pub const MAX_NAME_CHARS: usize = 120;
/// The most characters of a banner's text.
pub const MAX_TEXT_CHARS: usize = 1_000;
/// The most characters of a banner's link.
pub const MAX_LINK_CHARS: usize = 2_000;
/// The largest weight: a banner is at most this many times in its place's playlist.
pub const MAX_WEIGHT: u32 = 1_000;
/// The most services, menu items or attribute patterns one banner's conditions name (each).
pub const MAX_CONDITION_VALUES: usize = 50;
/// The most characters of one attribute pattern.
pub const MAX_PATTERN_CHARS: usize = 500;
/// The largest compiled pattern, in bytes (the `regex` crate's size limit).
const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// The largest banner image, in bytes.
pub const MAX_IMAGE_BYTES: usize = 256 * 1024;

/// Why advertising input is refused. [`AdError::code`] gives each a stable machine-readable
/// code; `Display` a message for a human naming the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdError {
    /// `invalid_advertising_id`: not 1–40 characters of a-z, 0-9, `_` and `-`.
    #[error("`{0}` is not an id (1–40 characters of a-z, 0-9, _ and -)")]
    Id(String),
    /// `invalid_name`: a name or title that is empty, longer than 120 characters or holds a
    /// control character.
    #[error("{field} must be 1–{MAX_NAME_CHARS} characters without control characters")]
    Name { field: &'static str },
    /// `invalid_text`: a banner text longer than 1,000 characters or with a control character
    /// other than a line break.
    #[error(
        "the banner's text must be at most {MAX_TEXT_CHARS} characters without control characters"
    )]
    Text,
    /// `invalid_interface_type`: not `web_application` or `email_receipt`.
    #[error("`{0}` is not an interface type (web_application or email_receipt)")]
    InterfaceType(String),
    /// `empty_period`: a campaign whose end is not after its start.
    #[error("the campaign's period [{from}, {to}) is empty: its end must be after its start")]
    EmptyPeriod { from: String, to: String },
    /// `invalid_amount_bound`: an amount bound that is not a non-negative decimal with at
    /// most two digits after the point (the code of the money rule it breaks is in
    /// `reason`).
    #[error("{field}: {reason}")]
    AmountBound { field: &'static str, reason: String },
    /// `empty_amount_range`: an amount range whose `to` is not above its `from`.
    #[error("the amount range [{from}, {to}) is empty: `to` must be above `from`")]
    EmptyAmountRange { from: Decimal, to: Decimal },
    /// `invalid_attribute_name`: an attribute pattern's name that is empty, longer than 120
    /// characters or holds whitespace or a control character.
    #[error("`{0}` is not an attribute name")]
    AttributeName(String),
    /// `invalid_regex`: an attribute pattern that is not a regular expression of the `regex`
    /// crate's syntax, longer than 500 characters or too large compiled.
    #[error(
        "the pattern for attribute `{attribute}` is not a usable regular expression: {reason}"
    )]
    Regex { attribute: String, reason: String },
    /// `invalid_condition_value`: a service or menu item id that is empty, longer than 120
    /// characters or holds whitespace.
    #[error("`{0}` is not a service or menu item id")]
    ConditionValue(String),
    /// `too_many_conditions`: more than 50 services, menu items or attribute patterns.
    #[error("{field} names more than {MAX_CONDITION_VALUES} values")]
    TooManyConditions { field: &'static str },
    /// `invalid_weight`: a weight below 1 or above 1,000.
    #[error("weight {0} is out of range (1 to {MAX_WEIGHT})")]
    Weight(i64),
    /// `invalid_link`: not an `http://` or `https://` URL, nor a path on the same site
    /// (`/…`), or longer than 2,000 characters, or with whitespace, a control character, a
    /// quote or angle brackets.
    #[error("`{0}` is not a link (an http:// or https:// URL, or a path starting with one /)")]
    Link(String),
    /// `invalid_image_type`: an image that is not PNG, JPEG, GIF or WebP.
    #[error("`{0}` is not an image type a banner may have (image/png, image/jpeg, image/gif, image/webp)")]
    ImageType(String),
    /// `image_too_large`: an image above 256 KiB.
    #[error("the image has {0} bytes; at most {MAX_IMAGE_BYTES} are accepted")]
    ImageTooLarge(usize),
    /// `image_empty`
    #[error("the image is empty")]
    ImageEmpty,
    /// `image_content_mismatch`: bytes that are not of the type they are said to be.
    #[error("the image's bytes are not {0}")]
    ImageContent(&'static str),
    /// `unknown_place`
    #[error("no advertising place `{0}`")]
    UnknownPlace(String),
    /// `unknown_campaign`
    #[error("no advertising campaign `{0}`")]
    UnknownCampaign(String),
    /// `unknown_banner`
    #[error("no banner `{0}`")]
    UnknownBanner(String),
}

impl AdError {
    /// Stable machine-readable code (the REST API answers with it; GraphQL upper-cased).
    pub fn code(&self) -> &'static str {
        match self {
            AdError::Id(_) => "invalid_advertising_id",
            AdError::Name { .. } => "invalid_name",
            AdError::Text => "invalid_text",
            AdError::InterfaceType(_) => "invalid_interface_type",
            AdError::EmptyPeriod { .. } => "empty_period",
            AdError::AmountBound { .. } => "invalid_amount_bound",
            AdError::EmptyAmountRange { .. } => "empty_amount_range",
            AdError::AttributeName(_) => "invalid_attribute_name",
            AdError::Regex { .. } => "invalid_regex",
            AdError::ConditionValue(_) => "invalid_condition_value",
            AdError::TooManyConditions { .. } => "too_many_conditions",
            AdError::Weight(_) => "invalid_weight",
            AdError::Link(_) => "invalid_link",
            AdError::ImageType(_) => "invalid_image_type",
            AdError::ImageTooLarge(_) => "image_too_large",
            AdError::ImageEmpty => "image_empty",
            AdError::ImageContent(_) => "image_content_mismatch",
            AdError::UnknownPlace(_) => "unknown_place",
            AdError::UnknownCampaign(_) => "unknown_campaign",
            AdError::UnknownBanner(_) => "unknown_banner",
        }
    }

    /// A refusal that names something that does not exist (HTTP 404 / 422), as opposed to
    /// a malformed value (HTTP 400).
    pub fn is_unknown(&self) -> bool {
        matches!(
            self,
            AdError::UnknownPlace(_) | AdError::UnknownCampaign(_) | AdError::UnknownBanner(_)
        )
    }
}

fn is_id(raw: &str) -> bool {
    !raw.is_empty()
        && raw.len() <= MAX_ID_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Errors: [`AdError::Id`] (`invalid_advertising_id`).
            pub fn parse(raw: &str) -> Result<$name, AdError> {
                if is_id(raw) {
                    Ok($name(raw.to_owned()))
                } else {
                    Err(AdError::Id(raw.to_owned()))
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// An advertising place's id, chosen by the operator (e.g. `content`, the place a receipt
    /// template names in `$adv.getBannerHtml($operation, 'content')`).
    PlaceId
);
id_type!(
    /// A campaign's id, chosen by the operator.
    CampaignId
);
id_type!(
    /// A banner's id, chosen by the operator.
    BannerId
);

/// A display name: at most 120 characters as written, not blank, no control characters
/// once the surrounding white space is trimmed (which it is).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Name(String);

impl Name {
    /// Errors: [`AdError::Name`] (`invalid_name`) naming `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Name, AdError> {
        let trimmed = raw.trim();
        if trimmed.is_empty()
            || raw.chars().count() > MAX_NAME_CHARS
            || trimmed.chars().any(char::is_control)
        {
            return Err(AdError::Name { field });
        }
        Ok(Name(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The kinds of client interface with advertising places (spec §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InterfaceType {
    /// «Основное Web приложение»: receipts viewed on the site.
    WebApplication,
    /// «E-mail»: receipts sent by e-mail with a banner.
    EmailReceipt,
}

impl InterfaceType {
    /// Errors: [`AdError::InterfaceType`] (`invalid_interface_type`).
    pub fn parse(raw: &str) -> Result<InterfaceType, AdError> {
        match raw {
            "web_application" => Ok(InterfaceType::WebApplication),
            "email_receipt" => Ok(InterfaceType::EmailReceipt),
            other => Err(AdError::InterfaceType(other.to_owned())),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            InterfaceType::WebApplication => "web_application",
            InterfaceType::EmailReceipt => "email_receipt",
        }
    }
}

/// An advertising place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Place {
    pub id: PlaceId,
    pub name: Name,
    pub interface: InterfaceType,
}

impl Place {
    /// Parses a place from its fields as written. Errors: `invalid_advertising_id`,
    /// `invalid_name`, `invalid_interface_type`.
    pub fn parse(id: &str, name: &str, interface: &str) -> Result<Place, AdError> {
        Ok(Place {
            id: PlaceId::parse(id)?,
            name: Name::parse(name, "name")?,
            interface: InterfaceType::parse(interface)?,
        })
    }
}

/// When a campaign runs: from `from` (included) until `to` (excluded), or for ever without
/// `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    #[serde(with = "time::serde::rfc3339")]
    pub from: OffsetDateTime,
    #[serde(with = "crate::time_serde::rfc3339_option")]
    pub to: Option<OffsetDateTime>,
}

impl Period {
    /// Errors: [`AdError::EmptyPeriod`] (`empty_period`) when `to` is not after `from`.
    pub fn new(from: OffsetDateTime, to: Option<OffsetDateTime>) -> Result<Period, AdError> {
        match to {
            Some(to) if to <= from => Err(AdError::EmptyPeriod {
                from: from.to_string(),
                to: to.to_string(),
            }),
            _ => Ok(Period { from, to }),
        }
    }

    /// Is `at` in `[from, to)`?
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        at >= self.from && self.to.is_none_or(|to| at < to)
    }
}

/// An advertising campaign: its banners are shown while it is active and `at` is in its
/// period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Campaign {
    pub id: CampaignId,
    pub name: Name,
    pub period: Period,
    pub active: bool,
}

impl Campaign {
    /// Does the campaign show its banners at `at`?
    pub fn runs_at(&self, at: OffsetDateTime) -> bool {
        self.active && self.period.contains(at)
    }
}

/// A banner's weight: 1 to [`MAX_WEIGHT`]; the banner is that many times in the playlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Weight(u32);

impl Weight {
    /// Errors: [`AdError::Weight`] (`invalid_weight`) for 0, a negative number or above
    /// [`MAX_WEIGHT`].
    pub fn parse(raw: i64) -> Result<Weight, AdError> {
        match u32::try_from(raw) {
            Ok(w) if (1..=MAX_WEIGHT).contains(&w) => Ok(Weight(w)),
            _ => Err(AdError::Weight(raw)),
        }
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// An amount bound: a non-negative decimal with at most two digits after the point, at most
/// [`crate::money::MAX_AMOUNT`] — the money rules of [`Money::parse_positive`], zero admitted.
fn amount_bound(raw: &str, field: &'static str) -> Result<Decimal, AdError> {
    let zero = match raw.split_once('.') {
        None => !raw.is_empty() && raw.bytes().all(|b| b == b'0'),
        Some((int, frac)) => {
            !int.is_empty()
                && int.bytes().all(|b| b == b'0')
                && (1..=2).contains(&frac.len())
                && frac.bytes().all(|b| b == b'0')
        }
    };
    if zero {
        return Ok(Decimal::ZERO);
    }
    Money::parse_positive(raw, "RUB")
        .map(|m| m.amount)
        .map_err(|e: MoneyError| AdError::AmountBound {
            field,
            reason: format!("{} ({})", e, e.code()),
        })
}

/// The amounts `[from, to)` a banner is shown for; an open side is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AmountRange {
    #[serde(with = "rust_decimal::serde::str_option")]
    pub from: Option<Decimal>,
    #[serde(with = "rust_decimal::serde::str_option")]
    pub to: Option<Decimal>,
}

impl AmountRange {
    /// Parses the bounds as written (`"100.00"`); none when both are absent. Errors:
    /// `invalid_amount_bound`, `empty_amount_range`.
    pub fn parse(from: Option<&str>, to: Option<&str>) -> Result<Option<AmountRange>, AdError> {
        let from = from.map(|f| amount_bound(f, "amount_from")).transpose()?;
        let to = to.map(|t| amount_bound(t, "amount_to")).transpose()?;
        if let (Some(f), Some(t)) = (from, to) {
            if t <= f {
                return Err(AdError::EmptyAmountRange { from: f, to: t });
            }
        }
        Ok((from.is_some() || to.is_some()).then_some(AmountRange { from, to }))
    }

    pub fn contains(&self, amount: Decimal) -> bool {
        self.from.is_none_or(|f| amount >= f) && self.to.is_none_or(|t| amount < t)
    }
}

/// A regular expression an operation attribute must match as a whole (like Java's
/// `String.matches`, what Velocity templates of the processing centre expect): `79\d+`
/// matches `79001234567` but not `+79001234567`.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Errors: [`AdError::Regex`] (`invalid_regex`) naming `attribute`.
    pub fn parse(attribute: &str, source: &str) -> Result<Pattern, AdError> {
        let refuse = |reason: String| AdError::Regex {
            attribute: attribute.to_owned(),
            reason,
        };
        if source.chars().count() > MAX_PATTERN_CHARS {
            return Err(refuse(format!(
                "longer than {MAX_PATTERN_CHARS} characters"
            )));
        }
        let regex = RegexBuilder::new(&format!("^(?:{source})$"))
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| refuse(e.to_string().lines().last().unwrap_or("").trim().to_owned()))?;
        // A group closed early (`a)|(b`) would escape the anchoring wrapper.
        RegexBuilder::new(source)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(|e| refuse(e.to_string()))?;
        Ok(Pattern {
            source: source.to_owned(),
            regex,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    pub fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.source == other.source
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

fn condition_values(raw: &[String], field: &'static str) -> Result<BTreeSet<String>, AdError> {
    if raw.len() > MAX_CONDITION_VALUES {
        return Err(AdError::TooManyConditions { field });
    }
    raw.iter()
        .map(|v| {
            if v.is_empty()
                || v.chars().count() > MAX_NAME_CHARS
                || v.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                Err(AdError::ConditionValue(v.clone()))
            } else {
                Ok(v.clone())
            }
        })
        .collect()
}

/// When a banner is shown (spec §6, the selection conditions). Every condition given must
/// hold; an absent one holds for any operation:
///
/// - `services`: the operation's service is one of them;
/// - `menu_items`: the operation's menu item (the service's category) is one of them;
/// - `amount`: the amount debited is in `[from, to)`;
/// - `attributes`: every named attribute is present and matches its pattern as a whole.
///
/// An operation without a service, menu item or amount does not match a banner that asks
/// for one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Conditions {
    pub services: BTreeSet<String>,
    pub menu_items: BTreeSet<String>,
    pub amount: Option<AmountRange>,
    pub attributes: BTreeMap<String, Pattern>,
}

impl Conditions {
    /// Parses conditions as written. Errors: `invalid_condition_value`,
    /// `too_many_conditions`, `invalid_amount_bound`, `empty_amount_range`,
    /// `invalid_attribute_name`, `invalid_regex`.
    pub fn parse(
        services: &[String],
        menu_items: &[String],
        amount_from: Option<&str>,
        amount_to: Option<&str>,
        attributes: &BTreeMap<String, String>,
    ) -> Result<Conditions, AdError> {
        if attributes.len() > MAX_CONDITION_VALUES {
            return Err(AdError::TooManyConditions {
                field: "attributes",
            });
        }
        let attributes = attributes
            .iter()
            .map(|(name, source)| {
                if name.is_empty()
                    || name.chars().count() > MAX_NAME_CHARS
                    || name.chars().any(|c| c.is_whitespace() || c.is_control())
                {
                    return Err(AdError::AttributeName(name.clone()));
                }
                Ok((name.clone(), Pattern::parse(name, source)?))
            })
            .collect::<Result<_, _>>()?;
        Ok(Conditions {
            services: condition_values(services, "services")?,
            menu_items: condition_values(menu_items, "menu_items")?,
            amount: AmountRange::parse(amount_from, amount_to)?,
            attributes,
        })
    }

    /// Does the operation meet every condition?
    pub fn matches(&self, op: &Operation) -> bool {
        let listed = |set: &BTreeSet<String>, value: &Option<String>| {
            set.is_empty() || value.as_ref().is_some_and(|v| set.contains(v))
        };
        listed(&self.services, &op.service_id)
            && listed(&self.menu_items, &op.menu_item_id)
            && self
                .amount
                .is_none_or(|range| op.amount.is_some_and(|a| range.contains(a)))
            && self.attributes.iter().all(|(name, pattern)| {
                op.attributes
                    .get(name)
                    .is_some_and(|value| pattern.matches(value))
            })
    }
}

/// The type of a banner's image. SVG is not among them: it can carry scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ImageType {
    #[serde(rename = "image/png")]
    Png,
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/gif")]
    Gif,
    #[serde(rename = "image/webp")]
    Webp,
}

impl ImageType {
    /// Errors: [`AdError::ImageType`] (`invalid_image_type`). Parameters after `;` are
    /// ignored.
    pub fn parse(content_type: &str) -> Result<ImageType, AdError> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "image/png" => Ok(ImageType::Png),
            "image/jpeg" => Ok(ImageType::Jpeg),
            "image/gif" => Ok(ImageType::Gif),
            "image/webp" => Ok(ImageType::Webp),
            _ => Err(AdError::ImageType(content_type.to_owned())),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageType::Png => "image/png",
            ImageType::Jpeg => "image/jpeg",
            ImageType::Gif => "image/gif",
            ImageType::Webp => "image/webp",
        }
    }

    /// Checks an upload: not empty, at most [`MAX_IMAGE_BYTES`], and starting with the
    /// signature of its type. Errors: `image_empty`, `image_too_large`,
    /// `image_content_mismatch`.
    pub fn check(self, bytes: &[u8]) -> Result<(), AdError> {
        if bytes.is_empty() {
            return Err(AdError::ImageEmpty);
        }
        if bytes.len() > MAX_IMAGE_BYTES {
            return Err(AdError::ImageTooLarge(bytes.len()));
        }
        let ok = match self {
            ImageType::Png => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            ImageType::Jpeg => bytes.starts_with(&[0xff, 0xd8, 0xff]),
            ImageType::Gif => bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a"),
            ImageType::Webp => {
                bytes.len() >= 12 && bytes.starts_with(b"RIFF") && &bytes[8..12] == b"WEBP"
            }
        };
        if ok {
            Ok(())
        } else {
            Err(AdError::ImageContent(self.content_type()))
        }
    }
}

/// Where a banner leads: an `http://` or `https://` URL, or a path on the same site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Link(String);

impl Link {
    /// Errors: [`AdError::Link`] (`invalid_link`).
    pub fn parse(raw: &str) -> Result<Link, AdError> {
        let lower = raw.to_ascii_lowercase();
        let absolute = ["https://", "http://"]
            .iter()
            .any(|scheme| lower.starts_with(scheme) && raw.len() > scheme.len());
        let path = raw.starts_with('/') && !raw.starts_with("//") && !raw.starts_with("/\\");
        let clean = !raw.chars().any(|c| {
            c.is_whitespace() || c.is_control() || matches!(c, '"' | '\'' | '<' | '>' | '`')
        });
        if (absolute || path) && clean && raw.chars().count() <= MAX_LINK_CHARS {
            Ok(Link(raw.to_owned()))
        } else {
            Err(AdError::Link(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a banner shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Content {
    pub title: Name,
    /// Up to 1,000 characters as written, no control characters but line breaks (`\n`,
    /// `\r`); kept trimmed; may be empty.
    pub text: String,
    pub link: Link,
    /// The type of the banner's image, when it has one (the bytes are stored apart and
    /// served same-origin at [`image_path`]).
    pub image: Option<ImageType>,
}

impl Content {
    /// Errors: `invalid_name` (the title), `invalid_text`, `invalid_link`.
    pub fn parse(
        title: &str,
        text: &str,
        link: &str,
        image: Option<ImageType>,
    ) -> Result<Content, AdError> {
        if text.chars().count() > MAX_TEXT_CHARS
            || text
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\r')
        {
            return Err(AdError::Text);
        }
        let text = text.trim();
        Ok(Content {
            title: Name::parse(title, "title")?,
            text: text.to_owned(),
            link: Link::parse(link)?,
            image,
        })
    }
}

/// A banner: shown at its place while its campaign runs, to operations its conditions
/// match, `weight` times per lap of its place's playlist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Banner {
    pub id: BannerId,
    pub campaign: CampaignId,
    pub place: PlaceId,
    pub content: Content,
    pub weight: Weight,
    pub conditions: Conditions,
}

/// The operation a banner is chosen for (spec §6: its service, menu item, amount debited and
/// attributes). Amounts are in major units (`100.50`), exact.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    pub service_id: Option<String>,
    pub menu_item_id: Option<String>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub amount: Option<Decimal>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// The same-origin path a banner's image is served at (both APIs serve it).
pub fn image_path(banner: &BannerId) -> String {
    format!("/advertising/banners/{banner}/image")
}

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A banner as HTML: fixed markup, every value escaped, the link opened with
/// `rel="noopener"`, the image (if any) from this site's own [`image_path`]:
///
/// ```html
/// <aside class="etr-banner" data-banner="ID"><a href="LINK" rel="noopener" target="_blank">
/// <img src="/advertising/banners/ID/image" alt="TITLE"><strong>TITLE</strong><span>TEXT</span></a></aside>
/// ```
/// (one line; the text's line breaks become `<br>`).
pub fn banner_html(banner: &Banner) -> String {
    let id = escape_html(banner.id.as_str());
    let title = escape_html(banner.content.title.as_str());
    let image = match banner.content.image {
        Some(_) => format!(
            r#"<img src="{}" alt="{title}">"#,
            escape_html(&image_path(&banner.id))
        ),
        None => String::new(),
    };
    let text = banner
        .content
        .text
        .lines()
        .map(escape_html)
        .collect::<Vec<_>>()
        .join("<br>");
    format!(
        r#"<aside class="etr-banner" data-banner="{id}"><a href="{link}" rel="noopener" target="_blank">{image}<strong>{title}</strong><span>{text}</span></a></aside>"#,
        link = escape_html(banner.content.link.as_str()),
    )
}

/// The seed of a place's playlist at `version`: the first 8 bytes of
/// SHA-256(`place id` ‖ 0 ‖ version as big-endian i64), so every rebuild shuffles afresh and
/// the same version always gives the same order.
pub fn playlist_seed(place: &PlaceId, version: i64) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(place.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(version.to_be_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first)
}

/// A place's playlist: banner ids, each banner `weight` times, in a shuffled order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Playlist(Vec<BannerId>);

/// The entry [`Playlist::next`] picked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    /// The entry's index.
    pub index: usize,
    /// Where the next request starts: the entry after it (0 after the last).
    pub next_cursor: usize,
}

impl Playlist {
    /// Every banner `weight` times, shuffled with ChaCha8 seeded by `seed` (the `rand`
    /// crate's Fisher–Yates `shuffle`). The order depends only on the set of banners and
    /// weights and the seed, not on the order they are given in.
    pub fn build(banners: &[(BannerId, Weight)], seed: u64) -> Playlist {
        let mut sorted: Vec<&(BannerId, Weight)> = banners.iter().collect();
        sorted.sort();
        let mut entries: Vec<BannerId> = sorted
            .into_iter()
            .flat_map(|(id, w)| std::iter::repeat_n(id.clone(), w.get() as usize))
            .collect();
        entries.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        Playlist(entries)
    }

    /// A playlist as stored. Errors: [`AdError::Id`] for an entry that is not an id.
    pub fn from_entries<S: AsRef<str>>(entries: &[S]) -> Result<Playlist, AdError> {
        entries
            .iter()
            .map(|e| BannerId::parse(e.as_ref()))
            .collect::<Result<Vec<_>, _>>()
            .map(Playlist)
    }

    pub fn entries(&self) -> &[BannerId] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The first entry from `cursor` on (wrapping, at most one lap) whose banner is
    /// `eligible`; none when no entry is. A cursor past the end starts at its remainder.
    pub fn next(&self, cursor: usize, eligible: impl Fn(&BannerId) -> bool) -> Option<Pick> {
        let len = self.0.len();
        if len == 0 {
            return None;
        }
        let start = cursor % len;
        (0..len)
            .map(|step| (start + step) % len)
            .find(|&i| eligible(&self.0[i]))
            .map(|index| Pick {
                index,
                next_cursor: (index + 1) % len,
            })
    }
}

/// A banner with its campaign, as the playlist serves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub banner: Banner,
    pub campaign: Campaign,
}

/// The banner served to `op` at `at` from `playlist` at `cursor`, and the cursor after it:
/// the next entry whose banner is among `candidates`, whose campaign runs at `at` and whose
/// conditions match `op` ([`Playlist::next`]).
pub fn serve<'a>(
    playlist: &Playlist,
    cursor: usize,
    candidates: &'a BTreeMap<BannerId, Candidate>,
    op: &Operation,
    at: OffsetDateTime,
) -> Option<(Pick, &'a Banner)> {
    let eligible = |id: &BannerId| {
        candidates
            .get(id)
            .is_some_and(|c| c.campaign.runs_at(at) && c.banner.conditions.matches(op))
    };
    let pick = playlist.next(cursor, eligible)?;
    let banner = &candidates.get(&playlist.0[pick.index])?.banner;
    Some((pick, banner))
}

/// An amount as the API shows it: two digits after the point.
pub fn format_amount(value: Decimal) -> String {
    format_fixed(value, 2)
}

impl FromStr for InterfaceType {
    type Err = AdError;
    fn from_str(s: &str) -> Result<InterfaceType, AdError> {
        InterfaceType::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;
    use time::macros::datetime;

    fn banner(id: &str, weight: u32, conditions: Conditions) -> Banner {
        Banner {
            id: BannerId::parse(id).unwrap(),
            campaign: CampaignId::parse("spring").unwrap(),
            place: PlaceId::parse("content").unwrap(),
            content: Content::parse("Title", "Text", "/offers", None).unwrap(),
            weight: Weight::parse(weight.into()).unwrap(),
            conditions,
        }
    }

    fn campaign(active: bool, from: OffsetDateTime, to: Option<OffsetDateTime>) -> Campaign {
        Campaign {
            id: CampaignId::parse("spring").unwrap(),
            name: Name::parse("Spring", "name").unwrap(),
            period: Period::new(from, to).unwrap(),
            active,
        }
    }

    const AT: OffsetDateTime = datetime!(2026-12-04 12:00 UTC);

    fn running() -> Campaign {
        campaign(true, datetime!(2026-12-01 00:00 UTC), None)
    }

    fn candidates(banners: Vec<Banner>, campaign: &Campaign) -> BTreeMap<BannerId, Candidate> {
        banners
            .into_iter()
            .map(|b| {
                (
                    b.id.clone(),
                    Candidate {
                        banner: b,
                        campaign: campaign.clone(),
                    },
                )
            })
            .collect()
    }

    fn playlist_of(c: &BTreeMap<BannerId, Candidate>, seed: u64) -> Playlist {
        let weights: Vec<(BannerId, Weight)> = c
            .values()
            .map(|c| (c.banner.id.clone(), c.banner.weight))
            .collect();
        Playlist::build(&weights, seed)
    }

    /// Serves `n` requests of `op`, the cursor moving as the store moves it.
    fn serve_n(
        playlist: &Playlist,
        c: &BTreeMap<BannerId, Candidate>,
        op: &Operation,
        n: usize,
    ) -> Vec<String> {
        let mut cursor = 0;
        let mut out = Vec::new();
        for _ in 0..n {
            match serve(playlist, cursor, c, op, AT) {
                Some((pick, b)) => {
                    cursor = pick.next_cursor;
                    out.push(b.id.to_string());
                }
                None => out.push("-".into()),
            }
        }
        out
    }

    fn conditions(
        services: &[&str],
        from: Option<&str>,
        to: Option<&str>,
        attrs: &[(&str, &str)],
    ) -> Conditions {
        Conditions::parse(
            &services.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            &[],
            from,
            to,
            &attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    fn op(service: &str, amount: Decimal, attrs: &[(&str, &str)]) -> Operation {
        Operation {
            service_id: Some(service.into()),
            menu_item_id: None,
            amount: Some(amount),
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    #[test]
    fn ids_names_and_interface_types_parse_strictly() {
        assert_eq!(PlaceId::parse("content").unwrap().as_str(), "content");
        for bad in ["", "Content", "a b", "x".repeat(41).as_str(), "ü"] {
            assert_eq!(
                PlaceId::parse(bad).unwrap_err().code(),
                "invalid_advertising_id"
            );
        }
        assert_eq!(
            Name::parse("  Spring  ", "name").unwrap().as_str(),
            "Spring"
        );
        assert_eq!(Name::parse(" ", "name").unwrap_err().code(), "invalid_name");
        assert_eq!(
            Name::parse("a\u{7}", "name").unwrap_err().code(),
            "invalid_name"
        );
        assert_eq!(
            InterfaceType::parse("email_receipt").unwrap(),
            InterfaceType::EmailReceipt
        );
        assert_eq!(
            InterfaceType::parse("android").unwrap_err().code(),
            "invalid_interface_type"
        );
        let place = Place::parse("content", "Receipt footer", "web_application").unwrap();
        assert_eq!(place.interface.as_str(), "web_application");
    }

    #[test]
    fn a_period_is_half_open_and_may_be_endless() {
        let from = datetime!(2026-12-01 00:00 UTC);
        let to = datetime!(2026-12-31 00:00 UTC);
        let p = Period::new(from, Some(to)).unwrap();
        assert!(p.contains(from));
        assert!(!p.contains(to));
        assert!(!p.contains(datetime!(2026-11-30 23:59 UTC)));
        assert!(Period::new(from, None)
            .unwrap()
            .contains(datetime!(2126-01-01 00:00 UTC)));
        assert_eq!(
            Period::new(to, Some(from)).unwrap_err().code(),
            "empty_period"
        );
        assert_eq!(
            Period::new(from, Some(from)).unwrap_err().code(),
            "empty_period"
        );
        assert!(!campaign(false, from, None).runs_at(AT));
        assert!(campaign(true, from, None).runs_at(AT));
    }

    #[test]
    fn amount_ranges_are_half_open_and_strict() {
        let r = AmountRange::parse(Some("100"), Some("500.00"))
            .unwrap()
            .unwrap();
        assert!(r.contains(dec!(100)));
        assert!(r.contains(dec!(499.99)));
        assert!(!r.contains(dec!(500)));
        assert!(!r.contains(dec!(99.99)));
        assert_eq!(AmountRange::parse(None, None).unwrap(), None);
        assert!(AmountRange::parse(Some("0"), None)
            .unwrap()
            .unwrap()
            .contains(dec!(0.01)));
        assert!(AmountRange::parse(Some("0.00"), Some("1")).is_ok());
        for (from, to, code) in [
            (Some("500"), Some("100"), "empty_amount_range"),
            (Some("100"), Some("100.00"), "empty_amount_range"),
            (Some("-1"), None, "invalid_amount_bound"),
            (Some("1e3"), None, "invalid_amount_bound"),
            (None, Some("1.001"), "invalid_amount_bound"),
            (None, Some("abc"), "invalid_amount_bound"),
            (Some("00."), None, "invalid_amount_bound"),
        ] {
            assert_eq!(
                AmountRange::parse(from, to).unwrap_err().code(),
                code,
                "{from:?} {to:?}"
            );
        }
    }

    #[test]
    fn weights_links_images_and_patterns_are_refused_with_their_codes() {
        assert_eq!(Weight::parse(0).unwrap_err().code(), "invalid_weight");
        assert_eq!(Weight::parse(-3).unwrap_err().code(), "invalid_weight");
        assert_eq!(Weight::parse(1001).unwrap_err().code(), "invalid_weight");
        assert_eq!(Weight::parse(3).unwrap().get(), 3);
        assert!(Link::parse("https://shop.example/offer?a=1&b=2").is_ok());
        assert!(Link::parse("/offers/1").is_ok());
        for bad in [
            "javascript:alert(1)",
            "//evil.example",
            "/a b",
            "https://",
            "ftp://x",
            "/\"x",
        ] {
            assert_eq!(
                Link::parse(bad).unwrap_err().code(),
                "invalid_link",
                "{bad}"
            );
        }
        assert_eq!(
            ImageType::parse("image/svg+xml").unwrap_err().code(),
            "invalid_image_type"
        );
        let png = ImageType::parse("image/png; charset=binary").unwrap();
        assert!(png.check(b"\x89PNG\r\n\x1a\nrest").is_ok());
        assert_eq!(
            png.check(b"GIF89a").unwrap_err().code(),
            "image_content_mismatch"
        );
        assert_eq!(png.check(b"").unwrap_err().code(), "image_empty");
        let big = vec![0x89u8; MAX_IMAGE_BYTES + 1];
        assert_eq!(png.check(&big).unwrap_err().code(), "image_too_large");
        let attrs = |k: &str, v: &str| BTreeMap::from([(k.to_string(), v.to_string())]);
        let e = Conditions::parse(&[], &[], None, None, &attrs("phone", "79(")).unwrap_err();
        assert_eq!(e.code(), "invalid_regex");
        assert!(e.to_string().contains("phone"), "{e}");
        let e = Conditions::parse(&[], &[], None, None, &attrs("phone", "a)|(b")).unwrap_err();
        assert_eq!(e.code(), "invalid_regex");
        let e = Conditions::parse(&[], &[], None, None, &attrs("a b", "x")).unwrap_err();
        assert_eq!(e.code(), "invalid_attribute_name");
        let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
        let e = Conditions::parse(&many, &[], None, None, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.code(), "too_many_conditions");
        let e = Conditions::parse(&[" ".into()], &[], None, None, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.code(), "invalid_condition_value");
    }

    #[test]
    fn given_conditions_when_an_operation_is_checked_then_every_condition_must_hold() {
        let c = Conditions::parse(
            &["mts".into(), "beeline".into()],
            &["payment-mobile".into()],
            Some("100"),
            Some("1000"),
            &BTreeMap::from([("phone".to_string(), r"79\d{9}".to_string())]),
        )
        .unwrap();
        let mut o = Operation {
            service_id: Some("mts".into()),
            menu_item_id: Some("payment-mobile".into()),
            amount: Some(dec!(100)),
            attributes: BTreeMap::from([("phone".into(), "79001234567".into())]),
        };
        assert!(c.matches(&o));
        o.attributes.insert("phone".into(), "+79001234567".into());
        assert!(!c.matches(&o), "the pattern matches the whole value");
        o.attributes.insert("phone".into(), "79001234567".into());
        o.amount = Some(dec!(1000));
        assert!(!c.matches(&o), "the amount's range excludes its end");
        o.amount = None;
        assert!(!c.matches(&o), "no amount, no match");
        o.amount = Some(dec!(999.99));
        o.service_id = Some("tele2".into());
        assert!(!c.matches(&o));
        o.service_id = Some("beeline".into());
        o.menu_item_id = None;
        assert!(!c.matches(&o));
        assert!(Conditions::default().matches(&Operation::default()));
    }

    #[test]
    fn given_weights_when_the_playlist_is_built_then_each_banner_is_in_it_weight_times() {
        let c = candidates(
            vec![
                banner("a", 3, Conditions::default()),
                banner("b", 2, Conditions::default()),
                banner("c", 1, Conditions::default()),
            ],
            &running(),
        );
        let p = playlist_of(&c, 7);
        assert_eq!(p.len(), 6);
        let count = |id: &str| p.entries().iter().filter(|e| e.as_str() == id).count();
        assert_eq!((count("a"), count("b"), count("c")), (3, 2, 1));
        assert_eq!(p, playlist_of(&c, 7), "the same seed gives the same order");
        let orders: BTreeSet<Vec<BannerId>> = (0..20)
            .map(|s| playlist_of(&c, s).entries().to_vec())
            .collect();
        assert!(orders.len() > 1, "different seeds shuffle differently");
        let mut reversed: Vec<(BannerId, Weight)> = c
            .values()
            .map(|c| (c.banner.id.clone(), c.banner.weight))
            .collect();
        reversed.reverse();
        assert_eq!(
            Playlist::build(&reversed, 7),
            p,
            "input order does not matter"
        );
        assert_eq!(Playlist::from_entries(&["a", "b"]).unwrap().len(), 2);
        assert!(Playlist::from_entries(&["A"]).is_err());
    }

    #[test]
    fn given_a_playlist_when_requests_come_then_it_is_served_round_robin() {
        let c = candidates(
            vec![
                banner("a", 3, Conditions::default()),
                banner("b", 1, Conditions::default()),
            ],
            &running(),
        );
        let p = playlist_of(&c, 11);
        let served = serve_n(&p, &c, &Operation::default(), 8);
        let order: Vec<String> = p.entries().iter().map(|e| e.to_string()).collect();
        assert_eq!(served[..4], order[..]);
        assert_eq!(served[4..], order[..], "the second lap repeats the first");
    }

    #[test]
    fn given_conditions_when_an_operation_does_not_match_then_its_banner_is_skipped() {
        let c = candidates(
            vec![
                banner("mobile", 2, conditions(&["mts"], None, None, &[])),
                banner("big", 1, conditions(&[], Some("1000"), None, &[])),
                banner("any", 1, Conditions::default()),
            ],
            &running(),
        );
        let p = playlist_of(&c, 3);
        let small_mts = serve_n(&p, &c, &op("mts", dec!(10), &[]), 6);
        assert_eq!(small_mts.iter().filter(|s| *s == "mobile").count(), 4);
        assert_eq!(small_mts.iter().filter(|s| *s == "any").count(), 2);
        assert!(!small_mts.contains(&"big".to_string()));
        let nothing = candidates(
            vec![banner("mobile", 2, conditions(&["mts"], None, None, &[]))],
            &running(),
        );
        let p = playlist_of(&nothing, 3);
        assert_eq!(serve(&p, 0, &nothing, &op("tele2", dec!(1), &[]), AT), None);
        assert_eq!(
            serve(&Playlist::default(), 5, &nothing, &Operation::default(), AT),
            None
        );
    }

    #[test]
    fn given_a_campaign_outside_its_period_when_served_then_its_banners_are_not() {
        let ended = campaign(
            true,
            datetime!(2026-11-01 00:00 UTC),
            Some(datetime!(2026-12-01 00:00 UTC)),
        );
        let c = candidates(vec![banner("old", 1, Conditions::default())], &ended);
        let p = playlist_of(&c, 1);
        assert_eq!(serve(&p, 0, &c, &Operation::default(), AT), None);
        let inactive = candidates(
            vec![banner("off", 1, Conditions::default())],
            &campaign(false, datetime!(2026-11-01 00:00 UTC), None),
        );
        let p = playlist_of(&inactive, 1);
        assert_eq!(serve(&p, 0, &inactive, &Operation::default(), AT), None);
    }

    #[test]
    fn banner_html_escapes_every_value_and_links_with_noopener() {
        let mut b = banner("x", 1, Conditions::default());
        b.content = Content::parse(
            "<script>alert(1)</script>",
            "line \"one\"\nline & two",
            "https://shop.example/?a=1&b=2",
            Some(ImageType::Png),
        )
        .unwrap();
        let html = banner_html(&b);
        assert!(!html.contains("<script>"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{html}"
        );
        assert!(
            html.contains("line &quot;one&quot;<br>line &amp; two"),
            "{html}"
        );
        assert!(html.contains(r#"href="https://shop.example/?a=1&amp;b=2" rel="noopener""#));
        assert!(
            html.contains(r#"<img src="/advertising/banners/x/image""#),
            "{html}"
        );
        b.content.image = None;
        assert!(!banner_html(&b).contains("<img"));
    }

    #[test]
    fn the_seed_depends_on_the_place_and_the_version() {
        let p = PlaceId::parse("content").unwrap();
        assert_eq!(playlist_seed(&p, 1), playlist_seed(&p, 1));
        assert_ne!(playlist_seed(&p, 1), playlist_seed(&p, 2));
        assert_ne!(
            playlist_seed(&p, 1),
            playlist_seed(&PlaceId::parse("footer").unwrap(), 1)
        );
    }

    proptest! {
        /// Over a full lap of requests that every banner matches, each banner is served
        /// exactly `weight` times; a banner whose conditions never match is never served,
        /// and the matching ones are still served exactly `weight` times.
        #[test]
        fn over_a_lap_each_matching_banner_is_served_weight_times(
            weights in proptest::collection::vec(1u32..8, 1..6),
            unmatched in proptest::collection::vec(any::<bool>(), 6),
            seed in any::<u64>(),
            start in 0usize..100,
        ) {
            let banners: Vec<Banner> = weights
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let cond = if unmatched[i] {
                        conditions(&["nobody"], None, None, &[])
                    } else {
                        conditions(&[], Some("1"), Some("100"), &[("phone", r"\d+")])
                    };
                    banner(&format!("b{i}"), *w, cond)
                })
                .collect();
            let c = candidates(banners, &running());
            let p = playlist_of(&c, seed);
            let total: u32 = weights.iter().sum();
            prop_assert_eq!(p.len(), total as usize);
            let o = op("mts", dec!(50), &[("phone", "123")]);
            let lap: u32 = weights
                .iter()
                .zip(&unmatched)
                .filter(|(_, u)| !**u)
                .map(|(w, _)| *w)
                .sum();
            let mut cursor = start;
            let mut served: BTreeMap<String, u32> = BTreeMap::new();
            for _ in 0..lap {
                let (pick, b) = serve(&p, cursor, &c, &o, AT).expect("a matching banner");
                cursor = pick.next_cursor;
                *served.entry(b.id.to_string()).or_default() += 1;
            }
            for (i, w) in weights.iter().enumerate() {
                let got = served.get(&format!("b{i}")).copied().unwrap_or(0);
                prop_assert_eq!(got, if unmatched[i] { 0 } else { *w });
            }
            if lap == 0 {
                prop_assert!(serve(&p, cursor, &c, &o, AT).is_none());
            }
        }
    }
}
