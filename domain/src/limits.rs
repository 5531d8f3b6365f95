//! Client groups and their limits (e-wallet spec §2, items 1–5).
//!
//! Every client belongs to a group (the catalogue's default until an operator moves it); the
//! group carries, per currency:
//!
//! 1. the minimum and maximum amount of one operation;
//! 2. the maximum balance of a wallet account at any moment;
//! 3. spend limits from the wallet source per calendar day, week and month;
//! 4. spend limits over all payment sources together per calendar day, week and month;
//! 5. a warning threshold: a payment above it needs the client's explicit confirmation by a
//!    one-time password before anything is reserved.
//!
//! Calendar periods are the client's own: a day runs from local midnight in the client's UTC
//! offset (Moscow, +03:00, unless the client set another; Russian time zones keep no daylight
//! saving since Federal Law 248-FZ of 21.07.2014), a week from Monday (ISO 8601), a month from
//! its first day. What counts against a spend limit is every payment reserved or captured in
//! the period: a reservation counts from the moment it is made until it is released (a failed
//! or cancelled payment gives its amount back to the period it was counted in). Transfers
//! between a client's own wallets and top-ups spend nothing.
//!
//! The catalogue is configuration, not part of the log: the command handler gives the current
//! one to `decide` in [`crate::Context`], so a change of a group's limits — or a client's move
//! to another group, which is an event of the client — applies from the next operation. The
//! defaults follow Federal Law 161-FZ art. 10: an anonymous client's balance at most 15,000
//! RUB and its monthly turnover at most 40,000 RUB (part 2), an identified client's balance at
//! most 600,000 RUB (part 4).

use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use time::{Date, Duration, OffsetDateTime, UtcOffset};

use crate::error::Error;
use crate::money::{Currency, Money};

/// A group's id: 1–40 characters of `a-z 0-9 _ -`, e.g. `identified`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct GroupId(String);

impl GroupId {
    /// Parses a group id.
    ///
    /// Errors: [`Error::Invalid`] naming the rule when `raw` breaks it.
    pub fn parse(raw: &str) -> Result<GroupId, Error> {
        let ok = !raw.is_empty()
            && raw.len() <= 40
            && raw
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if !ok {
            return Err(Error::Invalid(format!(
                "group id `{raw}` must be 1–40 characters of a-z, 0-9, _ and -"
            )));
        }
        Ok(GroupId(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The default group of clients who have not been identified.
    pub fn anonymous() -> GroupId {
        GroupId("anonymous".into())
    }

    /// The default group of identified clients.
    pub fn identified() -> GroupId {
        GroupId("identified".into())
    }
}

impl TryFrom<String> for GroupId {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Error> {
        GroupId::parse(&value)
    }
}

impl From<GroupId> for String {
    fn from(value: GroupId) -> String {
        value.0
    }
}

impl fmt::Display for GroupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A calendar period of the client's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    pub fn label(self) -> &'static str {
        match self {
            Period::Day => "day",
            Period::Week => "week",
            Period::Month => "month",
        }
    }

    /// The first day of the period that contains `day` (weeks start on Monday, ISO 8601).
    pub fn start(self, day: Date) -> Date {
        match self {
            Period::Day => day,
            Period::Week => {
                day - Duration::days(i64::from(day.weekday().number_days_from_monday()))
            }
            Period::Month => day.replace_day(1).unwrap_or(day),
        }
    }
}

/// Which payment sources a spend limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only the wallet account (the seed's "cash" source).
    WalletSource,
    /// Every source together: the wallet and bank cards.
    AllSources,
}

impl Scope {
    pub fn label(self) -> &'static str {
        match self {
            Scope::WalletSource => "wallet_source",
            Scope::AllSources => "all_sources",
        }
    }
}

/// Where the money of a payment comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Wallet,
    Card,
}

impl Source {
    /// `wallet` or `card`.
    pub fn label(self) -> &'static str {
        match self {
            Source::Wallet => "wallet",
            Source::Card => "card",
        }
    }
}

/// Spend limits per calendar period; `None` is no limit. Amounts in the limits' currency.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodLimits {
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub day: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub week: Option<Decimal>,
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub month: Option<Decimal>,
}

impl PeriodLimits {
    pub fn get(&self, period: Period) -> Option<Decimal> {
        match period {
            Period::Day => self.day,
            Period::Week => self.week,
            Period::Month => self.month,
        }
    }
}

/// A group's limits in one currency (spec §2, items 1–5). Amounts are exact, at most two
/// decimals, serialised as decimal strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyLimits {
    #[serde(with = "crate::money::amount_str")]
    pub min_operation: Decimal,
    #[serde(with = "crate::money::amount_str")]
    pub max_operation: Decimal,
    #[serde(with = "crate::money::amount_str")]
    pub max_balance: Decimal,
    #[serde(default)]
    pub wallet_source: PeriodLimits,
    #[serde(default)]
    pub all_sources: PeriodLimits,
    /// A payment above this amount needs an OTP confirmation; `None`: never.
    #[serde(default, with = "rust_decimal::serde::str_option")]
    pub warning_threshold: Option<Decimal>,
}

impl CurrencyLimits {
    /// Checks the limits are consistent: positive amounts with at most two decimals, min ≤
    /// max, a wallet-source limit never above the all-sources limit of the same period, and
    /// a shorter period's limit never above a longer one's.
    ///
    /// Errors: [`Error::Invalid`] naming the field.
    pub fn validate(&self, currency: Currency) -> Result<(), Error> {
        let bad = |what: &str| {
            Err(Error::Invalid(format!(
                "{} limits: {what}",
                currency.code()
            )))
        };
        let amounts = [
            ("min_operation", Some(self.min_operation)),
            ("max_operation", Some(self.max_operation)),
            ("max_balance", Some(self.max_balance)),
            ("warning_threshold", self.warning_threshold),
            ("wallet_source.day", self.wallet_source.day),
            ("wallet_source.week", self.wallet_source.week),
            ("wallet_source.month", self.wallet_source.month),
            ("all_sources.day", self.all_sources.day),
            ("all_sources.week", self.all_sources.week),
            ("all_sources.month", self.all_sources.month),
        ];
        for (name, amount) in amounts {
            if let Some(a) = amount {
                if a <= Decimal::ZERO || a.scale() > 2 || a > dec!(1000000000000) {
                    return bad(&format!(
                        "{name} must be a positive amount with at most two decimals, at most 10^12"
                    ));
                }
            }
        }
        if self.min_operation > self.max_operation {
            return bad("min_operation is above max_operation");
        }
        if self.max_operation > self.max_balance {
            return bad("max_operation is above max_balance");
        }
        for limits in [&self.wallet_source, &self.all_sources] {
            let ordered = [limits.day, limits.week, limits.month];
            for (i, shorter) in ordered.iter().enumerate() {
                for longer in &ordered[i + 1..] {
                    if let (Some(s), Some(l)) = (shorter, longer) {
                        if s > l {
                            return bad("a shorter period's spend limit is above a longer one's");
                        }
                    }
                }
            }
        }
        for period in Period::ALL {
            if let (Some(w), Some(a)) =
                (self.wallet_source.get(period), self.all_sources.get(period))
            {
                if w > a {
                    return bad(&format!(
                        "the wallet-source limit per {} is above the all-sources one",
                        period.label()
                    ));
                }
            }
        }
        Ok(())
    }

    /// Checks one operation's amount against the minimum and maximum.
    ///
    /// Errors: [`Error::BelowMinimumOperation`], [`Error::AboveMaximumOperation`].
    pub fn check_operation(&self, amount: Money) -> Result<(), Error> {
        if amount.amount < self.min_operation {
            return Err(Error::BelowMinimumOperation {
                amount: amount.amount,
                min: self.min_operation,
                currency: amount.currency,
            });
        }
        if amount.amount > self.max_operation {
            return Err(Error::AboveMaximumOperation {
                amount: amount.amount,
                max: self.max_operation,
                currency: amount.currency,
            });
        }
        Ok(())
    }

    /// Whether a payment of `amount` needs the client's OTP confirmation (strictly above the
    /// warning threshold).
    pub fn needs_confirmation(&self, amount: Decimal) -> bool {
        self.warning_threshold.is_some_and(|t| amount > t)
    }
}

/// A client group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub id: GroupId,
    pub name: String,
    /// Limits by currency; operations in a currency the group has no limits for are refused.
    pub limits: BTreeMap<Currency, CurrencyLimits>,
}

impl Group {
    /// Checks the group's name and every currency's limits.
    ///
    /// Errors: [`Error::Invalid`] naming what is wrong.
    pub fn validate(&self) -> Result<(), Error> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(Error::Invalid(
                "a group's name must be 1–200 characters".into(),
            ));
        }
        if self.limits.is_empty() {
            return Err(Error::Invalid(
                "a group needs limits for at least one currency".into(),
            ));
        }
        for (currency, limits) in &self.limits {
            limits.validate(*currency)?;
        }
        Ok(())
    }

    /// The group's limits in `currency`.
    ///
    /// Errors: [`Error::CurrencyNotAllowed`] when the group has none.
    pub fn limits_in(&self, currency: Currency) -> Result<&CurrencyLimits, Error> {
        self.limits
            .get(&currency)
            .ok_or_else(|| Error::CurrencyNotAllowed {
                group: self.id.to_string(),
                currency,
            })
    }
}

/// Every group, and the one a client belongs to until it is moved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    pub groups: BTreeMap<GroupId, Group>,
    pub default_group: GroupId,
}

impl Default for Catalogue {
    /// `anonymous` and `identified` (the default), with the limits of 161-FZ art. 10 in
    /// roubles and the same figures in the other currencies.
    fn default() -> Self {
        let anonymous = CurrencyLimits {
            min_operation: dec!(1.00),
            max_operation: dec!(15000.00),
            max_balance: dec!(15000.00),
            wallet_source: PeriodLimits::default(),
            all_sources: PeriodLimits {
                day: None,
                week: None,
                month: Some(dec!(40000.00)),
            },
            warning_threshold: None,
        };
        let identified = CurrencyLimits {
            min_operation: dec!(1.00),
            max_operation: dec!(100000.00),
            max_balance: dec!(600000.00),
            wallet_source: PeriodLimits::default(),
            all_sources: PeriodLimits::default(),
            warning_threshold: None,
        };
        let group = |id: GroupId, name: &str, limits: &CurrencyLimits| Group {
            id: id.clone(),
            name: name.into(),
            limits: Currency::ALL
                .into_iter()
                .map(|c| (c, limits.clone()))
                .collect(),
        };
        Catalogue {
            groups: BTreeMap::from([
                (
                    GroupId::anonymous(),
                    group(GroupId::anonymous(), "Anonymous clients", &anonymous),
                ),
                (
                    GroupId::identified(),
                    group(GroupId::identified(), "Identified clients", &identified),
                ),
            ]),
            default_group: GroupId::identified(),
        }
    }
}

impl Catalogue {
    /// The group of a client: its own, or the default when it has none (or its group was
    /// removed from the catalogue).
    pub fn group_of(&self, group: Option<&GroupId>) -> Result<&Group, Error> {
        group
            .and_then(|g| self.groups.get(g))
            .or_else(|| self.groups.get(&self.default_group))
            .ok_or_else(|| Error::Invalid("the client group catalogue has no default group".into()))
    }
}

/// The UTC offset of Moscow time, a client's default.
pub const MOSCOW: UtcOffset = match UtcOffset::from_hms(3, 0, 0) {
    Ok(o) => o,
    Err(_) => UtcOffset::UTC,
};

/// Parses a UTC offset written `+HH:MM` or `-HH:MM` (between −12:00 and +14:00).
///
/// Errors: [`Error::Invalid`] for any other form.
pub fn parse_utc_offset(raw: &str) -> Result<UtcOffset, Error> {
    let refuse = || {
        Error::Invalid(format!(
            "`{raw}` is not a UTC offset between -12:00 and +14:00 written ±HH:MM"
        ))
    };
    let b = raw.as_bytes();
    if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
        return Err(refuse());
    }
    let digits = |s: &[u8]| -> Option<i8> {
        if s.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(s).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (hours, minutes) = (
        digits(&b[1..3]).ok_or_else(refuse)?,
        digits(&b[4..6]).ok_or_else(refuse)?,
    );
    if minutes >= 60 || minutes % 15 != 0 {
        return Err(refuse());
    }
    let sign = if b[0] == b'-' { -1 } else { 1 };
    let total = i32::from(hours) * 60 + i32::from(minutes);
    if (sign < 0 && total > 12 * 60) || (sign > 0 && total > 14 * 60) {
        return Err(refuse());
    }
    UtcOffset::from_hms(sign * hours, sign * minutes, 0).map_err(|_| refuse())
}

/// Formats a UTC offset as `±HH:MM`.
pub fn format_utc_offset(offset: UtcOffset) -> String {
    let (h, m, _) = offset.as_hms();
    let sign = if offset.is_negative() { '-' } else { '+' };
    format!("{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs())
}

/// The client's local calendar day at `at`.
pub fn local_day(at: OffsetDateTime, offset: UtcOffset) -> Date {
    at.to_offset(offset).date()
}

/// What one local day counted against the spend limits in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaySpend {
    pub currency: Currency,
    #[serde(with = "crate::schedule::iso_date")]
    pub day: Date,
    /// Reserved or captured from the wallet source.
    #[serde(with = "crate::money::amount_str")]
    pub wallet_source: Decimal,
    /// Reserved or captured from every source together.
    #[serde(with = "crate::money::amount_str")]
    pub all_sources: Decimal,
}

/// A client's spending per local day, kept for the last [`Spending::KEPT_DAYS`] days (enough
/// for the longest period, a month). Sorted by currency and day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spending {
    pub days: Vec<DaySpend>,
}

/// A spend limit that an operation would break.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Breach {
    pub scope: Scope,
    pub period: Period,
    pub limit: Decimal,
    /// Already counted in the period.
    pub used: Decimal,
}

impl Spending {
    /// Days kept: a month back from the newest day, and a margin.
    pub const KEPT_DAYS: i64 = 62;

    /// What `scope` counted in the `period` containing `day`, in `currency`.
    pub fn used(&self, currency: Currency, scope: Scope, period: Period, day: Date) -> Decimal {
        let start = period.start(day);
        let end = match period {
            Period::Day => day,
            Period::Week => start + Duration::days(6),
            Period::Month => last_day_of_month(start),
        };
        self.days
            .iter()
            .filter(|d| d.currency == currency && d.day >= start && d.day <= end)
            .map(|d| match scope {
                Scope::WalletSource => d.wallet_source,
                Scope::AllSources => d.all_sources,
            })
            .sum()
    }

    /// The first spend limit of `limits` that `amount` from `source` on `day` would break.
    pub fn breach(
        &self,
        limits: &CurrencyLimits,
        amount: Money,
        source: Source,
        day: Date,
    ) -> Option<Breach> {
        let scopes: &[(Scope, &PeriodLimits)] = match source {
            Source::Wallet => &[
                (Scope::WalletSource, &limits.wallet_source),
                (Scope::AllSources, &limits.all_sources),
            ],
            Source::Card => &[(Scope::AllSources, &limits.all_sources)],
        };
        for (scope, period_limits) in scopes {
            for period in Period::ALL {
                if let Some(limit) = period_limits.get(period) {
                    let used = self.used(amount.currency, *scope, period, day);
                    if used + amount.amount > limit {
                        return Some(Breach {
                            scope: *scope,
                            period,
                            limit,
                            used,
                        });
                    }
                }
            }
        }
        None
    }

    /// Checks that `amount` from `source` on `day` stays within every spend limit.
    ///
    /// Errors: [`Error::SpendLimitExceeded`] with the limit, what was used and what remains.
    pub fn check(
        &self,
        limits: &CurrencyLimits,
        amount: Money,
        source: Source,
        day: Date,
    ) -> Result<(), Error> {
        match self.breach(limits, amount, source, day) {
            None => Ok(()),
            Some(b) => Err(Error::SpendLimitExceeded {
                scope: b.scope.label(),
                period: b.period.label(),
                limit: b.limit,
                used: b.used,
                requested: amount.amount,
                currency: amount.currency,
            }),
        }
    }

    /// Counts `amount` from `source` on `day`, or gives it back when `give_back`; days older
    /// than [`Spending::KEPT_DAYS`] before the newest are dropped.
    pub fn apply(&mut self, amount: Money, source: Source, day: Date, give_back: bool) {
        let delta = if give_back {
            -amount.amount
        } else {
            amount.amount
        };
        let wallet = if source == Source::Wallet {
            delta
        } else {
            Decimal::ZERO
        };
        match self
            .days
            .binary_search_by(|d| (d.currency, d.day).cmp(&(amount.currency, day)))
        {
            Ok(i) => {
                let d = &mut self.days[i];
                d.wallet_source = crate::money::normalized(d.wallet_source + wallet);
                d.all_sources = crate::money::normalized(d.all_sources + delta);
            }
            Err(i) if !give_back => self.days.insert(
                i,
                DaySpend {
                    currency: amount.currency,
                    day,
                    wallet_source: wallet,
                    all_sources: delta,
                },
            ),
            // Giving back to a day no longer kept: nothing counts there any more.
            Err(_) => {}
        }
        if let Some(newest) = self.days.iter().map(|d| d.day).max() {
            let oldest = newest - Duration::days(Self::KEPT_DAYS);
            self.days.retain(|d| d.day >= oldest);
        }
    }
}

fn last_day_of_month(first: Date) -> Date {
    let next = match first.month() {
        time::Month::December => {
            Date::from_calendar_date(first.year() + 1, time::Month::January, 1)
        }
        m => Date::from_calendar_date(first.year(), m.next(), 1),
    };
    next.map(|n| n - Duration::days(1)).unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    fn rub(a: Decimal) -> Money {
        Money::new(a, Currency::Rub)
    }

    #[test]
    fn periods_start_on_the_clients_local_day_monday_and_first() {
        // 2026-11-29 22:30 UTC is Monday 2026-11-30 01:30 in Moscow.
        let at = datetime!(2026-11-29 22:30 UTC);
        let day = local_day(at, MOSCOW);
        assert_eq!(day, date!(2026 - 11 - 30));
        assert_eq!(local_day(at, UtcOffset::UTC), date!(2026 - 11 - 29));
        assert_eq!(
            Period::Week.start(date!(2026 - 12 - 06)),
            date!(2026 - 11 - 30)
        );
        assert_eq!(
            Period::Month.start(date!(2026 - 12 - 06)),
            date!(2026 - 12 - 01)
        );
        assert_eq!(
            last_day_of_month(date!(2026 - 02 - 01)),
            date!(2026 - 02 - 28)
        );
        assert_eq!(
            last_day_of_month(date!(2026 - 12 - 01)),
            date!(2026 - 12 - 31)
        );
    }

    #[test]
    fn utc_offsets_parse_strictly() {
        assert_eq!(parse_utc_offset("+03:00").ok(), Some(MOSCOW));
        assert_eq!(
            parse_utc_offset("-03:30").map(format_utc_offset).ok(),
            Some("-03:30".to_owned())
        );
        for bad in [
            "3:00", "+3:00", "+03:07", "+15:00", "-13:00", "+03:00 ", "UTC", "+ab:00",
        ] {
            assert!(parse_utc_offset(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_reservation_counts_until_given_back_and_periods_sum_their_days() {
        let limits = CurrencyLimits {
            wallet_source: PeriodLimits {
                day: Some(dec!(5000)),
                week: Some(dec!(10000)),
                month: Some(dec!(25000)),
            },
            ..Catalogue::default().groups[&GroupId::identified()].limits[&Currency::Rub].clone()
        };
        let mut s = Spending::default();
        let monday = date!(2026 - 11 - 30);
        s.apply(rub(dec!(4000)), Source::Wallet, monday, false);
        assert!(s
            .check(&limits, rub(dec!(1000)), Source::Wallet, monday)
            .is_ok());
        let refused = s.check(&limits, rub(dec!(1000.01)), Source::Wallet, monday);
        assert!(matches!(
            refused,
            Err(Error::SpendLimitExceeded {
                period: "day",
                scope: "wallet_source",
                ..
            })
        ));
        // A card payment is not counted against the wallet source.
        assert!(s
            .check(&limits, rub(dec!(9000)), Source::Card, monday)
            .is_ok());
        // The next day: the day limit is fresh, the week remembers.
        let tuesday = monday + Duration::days(1);
        s.apply(rub(dec!(5000)), Source::Wallet, tuesday, false);
        assert!(matches!(
            s.check(
                &limits,
                rub(dec!(1001)),
                Source::Wallet,
                tuesday + Duration::days(1)
            ),
            Err(Error::SpendLimitExceeded { period: "week", .. })
        ));
        // Next Monday the week starts over.
        assert!(s
            .check(
                &limits,
                rub(dec!(5000)),
                Source::Wallet,
                monday + Duration::days(7)
            )
            .is_ok());
        // A released reservation gives its amount back.
        s.apply(rub(dec!(4000)), Source::Wallet, monday, true);
        assert_eq!(
            s.used(Currency::Rub, Scope::WalletSource, Period::Week, tuesday),
            dec!(5000)
        );
    }

    #[test]
    fn days_older_than_two_months_are_dropped() {
        let mut s = Spending::default();
        let first = date!(2026 - 01 - 01);
        for i in 0..200 {
            s.apply(
                rub(dec!(1)),
                Source::Wallet,
                first + Duration::days(i),
                false,
            );
        }
        assert!(s.days.len() <= Spending::KEPT_DAYS as usize + 1);
        // Giving back to a dropped day changes nothing.
        let before = s.clone();
        s.apply(rub(dec!(1)), Source::Wallet, first, true);
        assert_eq!(s, before);
    }

    #[test]
    fn limits_must_be_consistent() {
        let ok = Catalogue::default();
        for g in ok.groups.values() {
            assert!(g.validate().is_ok());
        }
        let mut bad = ok.groups[&GroupId::identified()].limits[&Currency::Rub].clone();
        bad.wallet_source.day = Some(dec!(100));
        bad.all_sources.day = Some(dec!(50));
        assert!(bad.validate(Currency::Rub).is_err());
        bad.all_sources.day = None;
        bad.wallet_source.week = Some(dec!(99));
        assert!(bad.validate(Currency::Rub).is_err());
        bad.wallet_source.week = None;
        bad.min_operation = dec!(0.001);
        assert!(bad.validate(Currency::Rub).is_err());
        assert!(GroupId::parse("VIP").is_err());
        assert!(GroupId::parse("vip-2").is_ok());
    }
}
