//! Report periods: calendar days in a fixed UTC offset.
//!
//! A report covers whole calendar days `from ..= to`. A day is the span from its midnight to
//! the next midnight in the report's UTC offset; the default is Moscow time, **UTC+03:00**
//! ([`MOSCOW`]; Russia has kept that offset all year since 2014, so a fixed offset equals
//! the Europe/Moscow zone for every date since). An event belongs to the day that contains
//! its business time (the envelope's `occurred_at`).

use time::{Date, Duration, Month, OffsetDateTime, Time, UtcOffset};

use crate::Error;

/// Writes an offset as `+03:00` (the clients' offsets are written the same way).
pub use etr_domain::limits::format_utc_offset as format_offset;
/// Moscow time, UTC+03:00: the default offset of report days (the clients' default too).
pub use etr_domain::limits::MOSCOW;

/// The longest period of a report with a row (or a chart point) per day: 366 days.
pub const MAX_DAILY_DAYS: i64 = 366;

/// The longest period of a turnover sheet or a month-end chart: 3,660 days (ten years).
pub const MAX_TURNOVER_DAYS: i64 = 3_660;

/// Whole calendar days `from ..= to` in `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: Date,
    to: Date,
    offset: UtcOffset,
}

impl Period {
    /// The days `from ..= to` in `offset`, at most `max_days` of them.
    ///
    /// Errors: [`Error::PeriodInverted`] when `from > to`; [`Error::PeriodTooLong`] past
    /// `max_days`.
    pub fn new(from: Date, to: Date, offset: UtcOffset, max_days: i64) -> Result<Self, Error> {
        if from > to {
            return Err(Error::PeriodInverted { from, to });
        }
        let days = (to - from).whole_days() + 1;
        if days > max_days {
            return Err(Error::PeriodTooLong {
                days,
                max: max_days,
            });
        }
        Ok(Self { from, to, offset })
    }

    /// The first day.
    pub fn from(&self) -> Date {
        self.from
    }

    /// The last day (included).
    pub fn to(&self) -> Date {
        self.to
    }

    /// The offset the days are counted in.
    pub fn offset(&self) -> UtcOffset {
        self.offset
    }

    /// Calendar days in the period, both ends included.
    pub fn days(&self) -> i64 {
        (self.to - self.from).whole_days() + 1
    }

    /// Every day of the period, in order.
    pub fn each_day(&self) -> impl Iterator<Item = Date> + '_ {
        let to = self.to;
        std::iter::successors(Some(self.from), move |d| {
            d.next_day().filter(|next| *next <= to)
        })
    }

    /// The instant the period starts: `from` at 00:00 in the offset.
    pub fn start(&self) -> OffsetDateTime {
        day_start(self.from, self.offset)
    }

    /// The instant the period ends (excluded): the day after `to` at 00:00 in the offset.
    pub fn end(&self) -> OffsetDateTime {
        day_start(self.to, self.offset) + Duration::DAY
    }

    /// The calendar day (in the period's offset) an instant falls on.
    pub fn day_of(&self, at: OffsetDateTime) -> Date {
        at.to_offset(self.offset).date()
    }
}

/// `day` at 00:00 in `offset`.
pub fn day_start(day: Date, offset: UtcOffset) -> OffsetDateTime {
    day.with_time(Time::MIDNIGHT).assume_offset(offset)
}

/// The last day of `day`'s month.
pub fn month_end(day: Date) -> Date {
    let last = day.month().length(day.year());
    Date::from_calendar_date(day.year(), day.month(), last).unwrap_or(day)
}

/// The first day of `day`'s month.
pub fn month_start(day: Date) -> Date {
    day.replace_day(1).unwrap_or(day)
}

/// The same day of the next month, or that month's last day when it is shorter
/// (31 January → 28/29 February).
pub fn add_month(day: Date) -> Date {
    let (year, month) = match day.month() {
        Month::December => (day.year() + 1, Month::January),
        m => (day.year(), m.next()),
    };
    let d = day.day().min(month.length(year));
    Date::from_calendar_date(year, month, d).unwrap_or(day)
}

/// Parses a UTC offset written `±HH:MM` (as a client's offset is:
/// [`etr_domain::limits::parse_utc_offset`]), or `Z` / `UTC`.
///
/// Errors: [`Error::Invalid`] naming the text.
pub fn parse_offset(text: &str) -> Result<UtcOffset, Error> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(UtcOffset::UTC);
    }
    etr_domain::limits::parse_utc_offset(t).map_err(|_| {
        Error::Invalid(format!(
            "`{text}` is not a UTC offset (write it as +03:00 or -05:30)"
        ))
    })
}

/// Parses a calendar date `YYYY-MM-DD`.
///
/// Errors: [`Error::Invalid`] naming the text.
pub fn parse_date(text: &str) -> Result<Date, Error> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &format)
        .map_err(|_| Error::Invalid(format!("`{text}` is not a date (write it as 2026-11-30)")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    #[test]
    fn a_period_counts_both_ends_and_refuses_inverted_or_long_ones() {
        let p = Period::new(date!(2026 - 02 - 27), date!(2026 - 03 - 02), MOSCOW, 366).unwrap();
        assert_eq!(p.days(), 4);
        assert_eq!(
            p.each_day().collect::<Vec<_>>(),
            vec![
                date!(2026 - 02 - 27),
                date!(2026 - 02 - 28),
                date!(2026 - 03 - 01),
                date!(2026 - 03 - 02)
            ]
        );
        assert!(matches!(
            Period::new(date!(2026 - 03 - 02), date!(2026 - 03 - 01), MOSCOW, 366),
            Err(Error::PeriodInverted { .. })
        ));
        assert!(matches!(
            Period::new(date!(2026 - 01 - 01), date!(2027 - 01 - 02), MOSCOW, 366),
            Err(Error::PeriodTooLong {
                days: 367,
                max: 366
            })
        ));
    }

    #[test]
    fn days_are_counted_in_moscow_time_by_default() {
        let p = Period::new(date!(2026 - 11 - 01), date!(2026 - 11 - 01), MOSCOW, 1).unwrap();
        assert_eq!(p.start(), datetime!(2026-10-31 21:00 UTC));
        assert_eq!(p.end(), datetime!(2026-11-01 21:00 UTC));
        // 22:30 UTC on 1 November is already 2 November in Moscow.
        assert_eq!(
            p.day_of(datetime!(2026-11-01 22:30 UTC)),
            date!(2026 - 11 - 02)
        );
    }

    #[test]
    fn months_and_offsets() {
        assert_eq!(month_end(date!(2028 - 02 - 10)), date!(2028 - 02 - 29));
        assert_eq!(add_month(date!(2026 - 01 - 31)), date!(2026 - 02 - 28));
        assert_eq!(add_month(date!(2026 - 12 - 15)), date!(2027 - 01 - 15));
        assert_eq!(parse_offset("+03:00").unwrap(), MOSCOW);
        assert_eq!(format_offset(parse_offset("-05:30").unwrap()), "-05:30");
        assert_eq!(parse_offset("Z").unwrap(), UtcOffset::UTC);
        assert!(parse_offset("03:00").is_err());
        assert!(parse_offset("+25:00").is_err());
        assert_eq!(parse_date("2026-11-30").unwrap(), date!(2026 - 11 - 30));
        assert!(parse_date("30.11.2026").is_err());
    }
}
