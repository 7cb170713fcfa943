//! Time intervals: named sets of times when a route is muted
//! (`mute_time_intervals`) or active (`active_time_intervals`), with
//! Alertmanager's syntax and semantics.
//!
//! Owns parsing each field and [`TimeInterval::contains`]. A named interval
//! holds periods and contains a time when any period does; a period
//! contains a time when every field it sets does (a field left out, or a
//! period with no fields, places no limit). Fields, as Alertmanager reads
//! them:
//!
//! * `times`: `start_time`–`end_time` pairs `HH:MM`, start inclusive, end
//!   exclusive, `24:00` allowed as an end; the start must be before the end.
//! * `weekdays`: `monday`, or a range `monday:friday` (names in any case);
//!   the week runs from Sunday, so a range may not wrap (`saturday:sunday`
//!   is refused: write `saturday` and `sunday`).
//! * `days_of_month`: `1`, `1:5`, negative days counting from the month's
//!   end (`-1` is the last day, `-3:-1` the last three); a negative start
//!   needs a negative end; ranges are clamped to the month and a range
//!   starting after the month's end never matches (`31` in June).
//! * `months`: names or numbers 1–12, ranges of either (`january:march`).
//! * `years`: `2026` or `2026:2028`.
//! * `location`: where the fields are read. Only `UTC` (the default, also
//!   `Etc/UTC`) and fixed offsets such as `+02:00` are supported: no time
//!   zone database is a dependency of this crate, and a zone name (with its
//!   daylight saving) is refused rather than guessed.
//!
//! Not here: which routes name which interval (`routing`, `config`), and
//! Alertmanager's deprecated top-level `mute_time_intervals` section.

use crate::ids::Timestamp;

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Minutes of a day, `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub start_minute: u32,
    pub end_minute: u32,
}

/// An inclusive range of weekdays (0 = Sunday), days of the month
/// (negative from the end), months (1–12) or years.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InclusiveRange {
    pub begin: i32,
    pub end: i32,
}

/// Where a period's fields are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Location {
    #[default]
    Utc,
    /// A fixed offset east of UTC, in seconds.
    Fixed(i32),
}

/// One period: every field it sets must contain the time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimePeriod {
    pub times: Vec<TimeRange>,
    pub weekdays: Vec<InclusiveRange>,
    pub days_of_month: Vec<InclusiveRange>,
    pub months: Vec<InclusiveRange>,
    pub years: Vec<InclusiveRange>,
    pub location: Location,
}

/// A named time interval: contains a time when any period does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimeInterval {
    pub name: String,
    pub periods: Vec<TimePeriod>,
    /// The line of its `[[time_intervals]]` header (0 when not from a file).
    pub line: usize,
}

impl TimeInterval {
    /// Whether any period contains `t` (an interval without periods
    /// contains nothing).
    pub fn contains(&self, t: Timestamp) -> bool {
        self.periods.iter().any(|p| p.contains(t))
    }
}

/// A moment read in one location.
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    weekday: u32,
    minute_of_day: u32,
}

impl Civil {
    fn at(t: Timestamp, location: Location) -> Self {
        let offset = match location {
            Location::Utc => 0,
            Location::Fixed(s) => i64::from(s),
        };
        let secs = t.0.div_euclid(1_000_000).saturating_add(offset);
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = crate::ids::civil_from_days(days);
        Self {
            year,
            month,
            day,
            // 1970-01-01 was a Thursday.
            weekday: u32::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
            minute_of_day: u32::try_from(of_day / 60).unwrap_or(0),
        }
    }
}

fn days_in_month(year: i64, month: u32) -> i32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        _ => 31,
    }
}

fn in_any(ranges: &[InclusiveRange], value: i64) -> bool {
    ranges
        .iter()
        .any(|r| i64::from(r.begin) <= value && value <= i64::from(r.end))
}

impl TimePeriod {
    /// Whether every field this period sets contains `t`.
    pub fn contains(&self, t: Timestamp) -> bool {
        let c = Civil::at(t, self.location);
        if !self.times.is_empty()
            && !self
                .times
                .iter()
                .any(|r| r.start_minute <= c.minute_of_day && c.minute_of_day < r.end_minute)
        {
            return false;
        }
        if !self.days_of_month.is_empty() && !self.day_of_month_matches(&c) {
            return false;
        }
        if !self.months.is_empty() && !in_any(&self.months, i64::from(c.month)) {
            return false;
        }
        if !self.weekdays.is_empty() && !in_any(&self.weekdays, i64::from(c.weekday)) {
            return false;
        }
        if !self.years.is_empty() && !in_any(&self.years, c.year) {
            return false;
        }
        true
    }

    /// Alertmanager's reading: negative days count from the month's end,
    /// a range starting after the month's end is skipped, the rest is
    /// clamped to the month.
    fn day_of_month_matches(&self, c: &Civil) -> bool {
        let len = days_in_month(c.year, c.month);
        let day = i32::try_from(c.day).unwrap_or(0);
        self.days_of_month.iter().any(|r| {
            let resolve = |d: i32| if d < 0 { len + d + 1 } else { d };
            let (begin, end) = (resolve(r.begin), resolve(r.end));
            if begin > len {
                return false;
            }
            let begin = begin.clamp(-len, len);
            let end = end.clamp(-len, len);
            begin <= day && day <= end
        })
    }
}

/// `start`–`end` as `HH:MM` (`24:00` allowed), start before end.
pub fn parse_time_range(start: &str, end: &str) -> Result<TimeRange, String> {
    let start_minute = parse_clock(start)?;
    let end_minute = parse_clock(end)?;
    if start_minute >= end_minute {
        return Err(format!(
            "start time `{start}` must be before end time `{end}`"
        ));
    }
    Ok(TimeRange {
        start_minute,
        end_minute,
    })
}

fn parse_clock(text: &str) -> Result<u32, String> {
    let bad = || format!("`{text}` is not a time of day `HH:MM` (00:00 to 24:00)");
    let b = text.as_bytes();
    if b.len() != 5 || b[2] != b':' || !b[..2].iter().chain(&b[3..]).all(u8::is_ascii_digit) {
        return Err(bad());
    }
    let hours: u32 = text.get(..2).and_then(|h| h.parse().ok()).ok_or_else(bad)?;
    let minutes: u32 = text.get(3..).and_then(|m| m.parse().ok()).ok_or_else(bad)?;
    if (hours < 24 && minutes < 60) || (hours == 24 && minutes == 0) {
        Ok(hours * 60 + minutes)
    } else {
        Err(bad())
    }
}

/// `a` or `a:b`, each side read by `item`.
fn range_of(
    text: &str,
    item: impl Fn(&str) -> Result<i32, String>,
) -> Result<InclusiveRange, String> {
    let text = text.trim();
    match text.split_once(':') {
        Some((a, b)) => Ok(InclusiveRange {
            begin: item(a.trim())?,
            end: item(b.trim())?,
        }),
        None => {
            let v = item(text)?;
            Ok(InclusiveRange { begin: v, end: v })
        }
    }
}

fn name_index(names: &[&str], text: &str) -> Option<i32> {
    let lower = text.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .and_then(|i| i32::try_from(i).ok())
}

/// `monday` or `monday:friday` (Sunday first; no wrapping).
pub fn parse_weekdays(text: &str) -> Result<InclusiveRange, String> {
    let r = range_of(text, |w| {
        name_index(&WEEKDAYS, w)
            .ok_or_else(|| format!("`{w}` is not a weekday (`monday` … `sunday`)"))
    })?;
    if r.begin > r.end {
        return Err(format!(
            "`{text}`: the start day is after the end day (the week starts on Sunday; list wrapping days separately)"
        ));
    }
    Ok(r)
}

/// `1`, `1:5`, `-1`, `-3:-1` (1 to 31 or -31 to -1).
pub fn parse_days_of_month(text: &str) -> Result<InclusiveRange, String> {
    let r = range_of(text, |d| {
        d.parse::<i32>()
            .ok()
            .filter(|n| *n != 0 && (-31..=31).contains(n))
            .ok_or_else(|| format!("`{d}` is not a day of the month (1 to 31, or -31 to -1)"))
    })?;
    if r.begin < 0 && r.end > 0 {
        return Err(format!(
            "`{text}`: the end day must be negative when the start day is"
        ));
    }
    // As Alertmanager: compare as if the month had 28 days, to catch
    // ranges that are always empty.
    let at = |d: i32| if d < 0 { 28 + d } else { d };
    if at(r.begin) > at(r.end) {
        return Err(format!(
            "`{text}`: the end day is always before the start day"
        ));
    }
    Ok(r)
}

/// `january`, `1`, `january:march`, `1:3`.
pub fn parse_months(text: &str) -> Result<InclusiveRange, String> {
    let r = range_of(text, |m| {
        name_index(&MONTHS, m)
            .map(|i| i + 1)
            .or_else(|| m.parse::<i32>().ok().filter(|n| (1..=12).contains(n)))
            .ok_or_else(|| format!("`{m}` is not a month (`january` … `december` or 1 to 12)"))
    })?;
    if r.begin > r.end {
        return Err(format!("`{text}`: the end month is before the start month"));
    }
    Ok(r)
}

/// `2026` or `2026:2028`.
pub fn parse_years(text: &str) -> Result<InclusiveRange, String> {
    let r = range_of(text, |y| {
        y.parse::<i32>()
            .ok()
            .filter(|n| (1..=9999).contains(n))
            .ok_or_else(|| format!("`{y}` is not a year"))
    })?;
    if r.begin > r.end {
        return Err(format!("`{text}`: the end year is before the start year"));
    }
    Ok(r)
}

impl Location {
    /// `UTC`, `Etc/UTC` or a fixed offset `+HH:MM` / `-HH:MM`.
    pub fn parse(text: &str) -> Result<Self, String> {
        if matches!(text, "UTC" | "Etc/UTC") {
            return Ok(Self::Utc);
        }
        let b = text.as_bytes();
        let sign = match b.first() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => 0,
        };
        let digits_ok =
            b.len() == 6 && b[3] == b':' && b[1..3].iter().chain(&b[4..]).all(u8::is_ascii_digit);
        if sign != 0 && digits_ok {
            let hours: i32 = text.get(1..3).and_then(|h| h.parse().ok()).unwrap_or(99);
            let minutes: i32 = text.get(4..6).and_then(|m| m.parse().ok()).unwrap_or(99);
            if hours <= 23 && minutes <= 59 {
                return Ok(Self::Fixed(sign * (hours * 3600 + minutes * 60)));
            }
        }
        Err(format!(
            "`{text}` is not a supported location: only `UTC` and fixed offsets such as `+02:00` (time zone names are not supported)"
        ))
    }
}
