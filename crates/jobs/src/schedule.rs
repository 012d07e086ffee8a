//! Cron schedules: parsing with the original's rules, `schedule_actual`, and the next firing.
//!
//! The rules follow the original jobs-api's `tjf/core/cron.py` (public mirror
//! DamianZaremba/toolforge-jobs-api):
//!
//! - A schedule starting with `@` must be exactly one of [`MACROS`]. A macro is expanded to
//!   five fields where every field that is not `*` in the macro's template gets a value drawn
//!   with Python's `random.randint(min, max)` from a generator seeded with `"<tool> <job>"`,
//!   minute first, so that jobs spread over the hour/day but keep their time across updates.
//!   This crate reproduces Python's generator bit for bit ([`crate::pyrandom`]).
//!   (Earlier versions of the original seeded with the Kubernetes namespace instead,
//!   `"tool-<tool> <job>"`, through `get_cron_unique_seed`; jobs created then keep the
//!   `schedule_actual` they got, which [`Schedule::from_stored`] reads back as is.)
//!   The draws use each field's full range, so `@monthly` can land on day 31 (and then runs only
//!   in 31-day months) and `@yearly` can land on a day its month lacks (and then never runs),
//!   exactly as in the original.
//! - Anything else is lowercased and split on spaces (empty parts dropped); there must be five
//!   parts and each must pass the field check below. `schedule_actual` is then those five parts
//!   joined by one space; names like `mon` are kept as written.
//! - A field is a comma-separated list of entries. An entry is `*`, a value, a range `a-b`, or
//!   `*`/a value followed by `/step`; a step on a range is refused. Ranges take plain numbers
//!   only. Values are minute 0-59, hour 0-23, day of month 1-31, month 1-12 (month names are
//!   refused by the original) and day of week 0-6 where `7` and `sun`..`sat` are also accepted
//!   as single values. A step must be between 1 and the field's maximum.
//!
//! Where the original's check accepts text that Kubernetes' cron parser (robfig/cron v3, which
//! then runs the schedule) refuses, this parser refuses it too, with the same error: an empty
//! step (`*/`), underscores in numbers (`1_0`), and non-ASCII digits. The one exception is a
//! day of week of `7`: robfig/cron's bounds stop at 6, but the original documents and accepts
//! `7` as Sunday, so it runs here as Sunday.
//!
//! Matching follows Kubernetes' cron (robfig/cron): `v/step` means `v`, `v+step`, ... up to the
//! field's maximum; when the day of month and the day of week are both restricted a day matches
//! if either does, and when either starts with `*` (without a step above 1) both must match.
//! All times are UTC.

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use crate::pyrandom::Random;

/// The at-macros the original accepts, with the templates it expands.
pub const MACROS: [(&str, &str); 5] = [
    ("@hourly", "0 * * * *"),
    ("@daily", "0 0 * * *"),
    ("@weekly", "0 0 * * 0"),
    ("@monthly", "0 0 1 * *"),
    ("@yearly", "0 0 1 1 *"),
];

/// A schedule the user wrote, and the concrete cron expression it runs at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    schedule: String,
    schedule_actual: String,
    fields: Fields,
}

/// A schedule the original refuses; the message is the API's, word for word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unable to parse cron expression \"{expression}\"")]
pub struct Error {
    /// The schedule as the user wrote it.
    pub expression: String,
    /// What is wrong with it.
    #[source]
    pub reason: Reason,
}

/// Why a schedule was refused (the original's detail, which the API does not show).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reason {
    /// Starts with `@` but is not one of [`MACROS`].
    #[error(
        "unknown at-macro, the supported ones are @hourly, @daily, @weekly, @monthly and @yearly"
    )]
    UnknownMacro,
    /// Not five space-separated fields.
    #[error("expected 5 space-separated fields, found {found}")]
    FieldCount {
        /// How many fields there were.
        found: usize,
    },
    /// `a-b/step`.
    #[error("field {field:?}: a step cannot follow a range")]
    StepWithRange {
        /// The offending field.
        field: String,
    },
    /// A value, bound or step that is not a number (or a day name where one is allowed).
    #[error("field {field:?}: {text:?} is not a number")]
    NotANumber {
        /// The offending field.
        field: String,
        /// The text that should have been a number.
        text: String,
    },
    /// A value or range bound outside the field's range, or a range whose start exceeds its end.
    #[error("field {field:?}: values must be between {min} and {max}, in increasing order")]
    OutOfRange {
        /// The offending field.
        field: String,
        /// The field's smallest value.
        min: u32,
        /// The field's largest value.
        max: u32,
    },
    /// A step of 0 or above the field's maximum.
    #[error("field {field:?}: invalid step")]
    InvalidStep {
        /// The offending field.
        field: String,
    },
}

impl Schedule {
    /// Parses what a user gave as `schedule` for job `job` of tool `tool`.
    pub fn parse(tool: &str, job: &str, expression: &str) -> Result<Schedule, Error> {
        let refuse = |reason| Error {
            expression: expression.to_owned(),
            reason,
        };
        let schedule_actual = if expression.starts_with('@') {
            expand_macro(tool, job, expression).ok_or_else(|| refuse(Reason::UnknownMacro))?
        } else {
            let lowered = expression.to_lowercase();
            let parts: Vec<&str> = lowered.split(' ').filter(|part| !part.is_empty()).collect();
            parts.join(" ")
        };
        let fields = Fields::parse(&schedule_actual).map_err(refuse)?;
        Ok(Schedule {
            schedule: expression.to_owned(),
            schedule_actual,
            fields,
        })
    }

    /// Rebuilds a schedule stored earlier, without recomputing `schedule_actual`.
    ///
    /// A stored job keeps the time it was given even if the expansion ever changes (the original
    /// reads `schedule_actual` back from the CronJob in the same way).
    pub fn from_stored(schedule: &str, schedule_actual: &str) -> Result<Schedule, Error> {
        let refuse = |reason| Error {
            expression: schedule_actual.to_owned(),
            reason,
        };
        let lowered = schedule_actual.to_lowercase();
        let parts: Vec<&str> = lowered.split(' ').filter(|part| !part.is_empty()).collect();
        let actual = parts.join(" ");
        let fields = Fields::parse(&actual).map_err(refuse)?;
        Ok(Schedule {
            schedule: schedule.to_owned(),
            schedule_actual: actual,
            fields,
        })
    }

    /// What the user wrote (the API's `schedule`).
    pub fn schedule(&self) -> &str {
        &self.schedule
    }

    /// The concrete five-field expression the job runs at (the API's `schedule_actual`).
    pub fn schedule_actual(&self) -> &str {
        &self.schedule_actual
    }

    /// The first firing strictly after `t`, in UTC, or `None` if the schedule never fires
    /// (such as `0 0 31 2 *`).
    pub fn next_after(&self, t: OffsetDateTime) -> Option<OffsetDateTime> {
        let t = t.to_offset(UtcOffset::UTC);
        let this_minute = t.replace_time(Time::from_hms(t.hour(), t.minute(), 0).ok()?);
        let start = this_minute.checked_add(Duration::MINUTE)?;
        let mut date = start.date();
        let mut earliest = (start.hour(), start.minute());
        // A satisfiable day/month combination recurs within 8 years (29 February across a
        // century that is not a leap year), so searching further is pointless.
        let last_date =
            Date::from_calendar_date(date.year().checked_add(9)?, Month::January, 1).ok()?;
        while date < last_date {
            if !self
                .fields
                .months
                .contains(u32::from(u8::from(date.month())))
            {
                date = first_of_next_month(date)?;
                earliest = (0, 0);
                continue;
            }
            if self.fields.day_matches(date)
                && let Some((hour, minute)) = self.fields.first_time_from(earliest)
            {
                let time = Time::from_hms(hour, minute, 0).ok()?;
                return Some(PrimitiveDateTime::new(date, time).assume_utc());
            }
            date = date.next_day()?;
            earliest = (0, 0);
        }
        None
    }
}

/// The seed the original gives Python's generator for a job's macro.
pub fn macro_seed(tool: &str, job: &str) -> String {
    format!("{tool} {job}")
}

/// Expands an at-macro the way the original does, or `None` if `expression` is not one of
/// [`MACROS`] (the match is exact and case-sensitive).
pub fn expand_macro(tool: &str, job: &str, expression: &str) -> Option<String> {
    let (_, template) = MACROS.iter().find(|(name, _)| *name == expression)?;
    let mut random = Random::from_str_seed(&macro_seed(tool, job));
    let parts: Vec<String> = template
        .split(' ')
        .zip(FIELD_RANGES)
        .map(|(part, range)| {
            if part == "*" {
                return Some(part.to_owned());
            }
            let value = random
                .randint(i64::from(range.min), i64::from(range.max))
                .ok()?;
            Some(value.to_string())
        })
        .collect::<Option<_>>()?;
    Some(parts.join(" "))
}

/// The parsed fields, as bit sets indexed by value.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fields {
    minutes: Bits,
    hours: Bits,
    days_of_month: Bits,
    months: Bits,
    days_of_week: Bits,
    /// The day of month or of week started with `*` (and no step above 1): both must match.
    day_star: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bits(u64);

#[derive(Debug, Clone, Copy)]
struct FieldRange {
    min: u32,
    max: u32,
}

/// Minute, hour, day of month, month, day of week: the ranges the original checks against.
const FIELD_RANGES: [FieldRange; 5] = [
    FieldRange { min: 0, max: 59 },
    FieldRange { min: 0, max: 23 },
    FieldRange { min: 1, max: 31 },
    FieldRange { min: 1, max: 12 },
    FieldRange { min: 0, max: 6 },
];

/// The day-of-week single values the original maps to numbers (`7` is Sunday too).
const DAY_OF_WEEK_NAMES: [(&str, u32); 8] = [
    ("7", 0),
    ("sun", 0),
    ("mon", 1),
    ("tue", 2),
    ("wed", 3),
    ("thu", 4),
    ("fri", 5),
    ("sat", 6),
];

const DAY_OF_WEEK_IDX: usize = 4;

impl Bits {
    fn contains(self, value: u32) -> bool {
        value < 64 && self.0 & (1 << value) != 0
    }

    /// The smallest member at least `from`.
    fn first_from(self, from: u32) -> Option<u32> {
        if from >= 64 {
            return None;
        }
        let rest = self.0 >> from;
        (rest != 0).then(|| from + rest.trailing_zeros())
    }
}

impl Fields {
    /// Parses five single-space-separated, lowercased fields.
    fn parse(actual: &str) -> Result<Fields, Reason> {
        let parts: Vec<&str> = actual.split(' ').collect();
        let [minutes, hours, days_of_month, months, days_of_week] = parts[..] else {
            return Err(Reason::FieldCount { found: parts.len() });
        };
        let mut sets = [Bits(0); 5];
        let mut stars = [false; 5];
        for (field_idx, text) in [minutes, hours, days_of_month, months, days_of_week]
            .into_iter()
            .enumerate()
        {
            let (bits, star) = parse_field(text, field_idx)?;
            sets[field_idx] = bits;
            stars[field_idx] = star;
        }
        Ok(Fields {
            minutes: sets[0],
            hours: sets[1],
            days_of_month: sets[2],
            months: sets[3],
            days_of_week: sets[4],
            day_star: stars[2] || stars[4],
        })
    }

    fn day_matches(&self, date: Date) -> bool {
        let dom = self.days_of_month.contains(u32::from(date.day()));
        let dow = self
            .days_of_week
            .contains(u32::from(date.weekday().number_days_from_sunday()));
        if self.day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first (hour, minute) at or after `earliest` within a day.
    fn first_time_from(&self, (hour, minute): (u8, u8)) -> Option<(u8, u8)> {
        let (hour, minute) = (u32::from(hour), u32::from(minute));
        if self.hours.contains(hour)
            && let Some(minute) = self.minutes.first_from(minute)
        {
            return Some((u8::try_from(hour).ok()?, u8::try_from(minute).ok()?));
        }
        let hour = self.hours.first_from(hour + 1)?;
        let minute = self.minutes.first_from(0)?;
        Some((u8::try_from(hour).ok()?, u8::try_from(minute).ok()?))
    }
}

/// Parses one field; returns its values and whether it counts as `*` for the day rule.
fn parse_field(text: &str, field_idx: usize) -> Result<(Bits, bool), Reason> {
    let range = FIELD_RANGES[field_idx];
    let field = || text.to_owned();
    let not_a_number = |what: &str| Reason::NotANumber {
        field: field(),
        text: what.to_owned(),
    };
    let out_of_range = || Reason::OutOfRange {
        field: field(),
        min: range.min,
        max: range.max,
    };
    let mut bits = 0u64;
    let mut star = false;
    for entry in text.split(',') {
        if entry.contains('-') {
            if entry.contains('/') {
                return Err(Reason::StepWithRange { field: field() });
            }
            let (start, end) = entry.split_once('-').unwrap_or((entry, ""));
            let start = parse_python_int(start).ok_or_else(|| not_a_number(start))?;
            let end = parse_python_int(end).ok_or_else(|| not_a_number(end))?;
            if start > end || start < range.min || end > range.max {
                return Err(out_of_range());
            }
            bits |= span(start, end, 1);
            continue;
        }
        let (value, step) = match entry.split_once('/') {
            Some((value, step)) => (value, Some(step)),
            None => (entry, None),
        };
        let step = match step {
            None => None,
            Some(step) => {
                let parsed = parse_python_int(step).ok_or_else(|| not_a_number(step))?;
                if parsed == 0 || parsed < range.min || parsed > range.max {
                    return Err(Reason::InvalidStep { field: field() });
                }
                Some(parsed)
            }
        };
        if value == "*" {
            bits |= span(range.min, range.max, step.unwrap_or(1));
            star |= step.is_none_or(|step| step == 1);
            continue;
        }
        let named = if field_idx == DAY_OF_WEEK_IDX {
            DAY_OF_WEEK_NAMES
                .iter()
                .find(|(name, _)| *name == value)
                .map(|(_, number)| *number)
        } else {
            None
        };
        let start = match named {
            Some(number) => number,
            None => parse_python_int(value).ok_or_else(|| not_a_number(value))?,
        };
        if start < range.min || start > range.max {
            return Err(out_of_range());
        }
        bits |= match step {
            Some(step) => span(start, range.max, step),
            None => span(start, start, 1),
        };
    }
    Ok((Bits(bits), star))
}

/// `start, start + step, ...` up to `end`, as bits.
fn span(start: u32, end: u32, step: u32) -> u64 {
    (start..=end)
        .step_by(step.max(1) as usize)
        .fold(0, |bits, value| bits | (1 << value))
}

/// Python's `int(text)` restricted to what Kubernetes also reads: surrounding whitespace and a
/// leading `+` are allowed, then ASCII digits only. Values too large for a field are returned as
/// `u32::MAX` so that the range check refuses them.
fn parse_python_int(text: &str) -> Option<u32> {
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
    let digits = trimmed.strip_prefix('+').unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(digits.parse().unwrap_or(u32::MAX))
}

fn first_of_next_month(date: Date) -> Option<Date> {
    let (year, month) = match date.month() {
        Month::December => (date.year().checked_add(1)?, Month::January),
        month => (date.year(), month.next()),
    };
    Date::from_calendar_date(year, month, 1).ok()
}
