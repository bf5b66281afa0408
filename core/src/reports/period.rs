//! Report periods: ISO weeks (Monday to Sunday) and calendar months, in the deployment's time
//! zone (`TASKLANE_TIMEZONE`), as the half-open span of instants `[start, end)` they cover.

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// How long a report's period is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PeriodKind {
    /// An ISO week, Monday to Sunday.
    Weekly,
    /// A calendar month.
    Monthly,
}

impl PeriodKind {
    /// Reads `weekly` or `monthly`.
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim() {
            "weekly" => Ok(Self::Weekly),
            "monthly" => Ok(Self::Monthly),
            other => Err(Error::invalid("invalid_period", format!("period '{other}' is not weekly or monthly"))),
        }
    }

    /// The stored and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Weekly => "weekly",
            Self::Monthly => "monthly",
        }
    }

    /// The first day of the period after the one starting on `first_day`.
    fn next_first_day(self, first_day: NaiveDate) -> NaiveDate {
        match self {
            Self::Weekly => first_day.checked_add_days(Days::new(7)),
            Self::Monthly => first_day.checked_add_months(Months::new(1)),
        }
        .unwrap_or(NaiveDate::MAX)
    }

    /// The last day of the period starting on `first_day`.
    pub fn last_day(self, first_day: NaiveDate) -> NaiveDate {
        let next = self.next_first_day(first_day);
        next.pred_opt().unwrap_or(next)
    }
}

/// One period: its kind, its first and last day, and the instants it spans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    /// Weekly or monthly.
    pub kind: PeriodKind,
    /// Its first day (a Monday, or the 1st).
    pub first_day: NaiveDate,
    /// Its last day.
    pub last_day: NaiveDate,
    /// The first instant in it: midnight of the first day in the time zone.
    pub start: DateTime<Utc>,
    /// The first instant after it.
    pub end: DateTime<Utc>,
}

/// The first instant of `day` in `zone`. Where a clock change skips midnight, the day begins
/// at the first instant that exists.
pub fn start_of(day: NaiveDate, zone: Tz) -> DateTime<Utc> {
    let mut time = NaiveTime::MIN;
    loop {
        if let Some(at) = zone.from_local_datetime(&day.and_time(time)).earliest() {
            return at.with_timezone(&Utc);
        }
        // No zone skips more than a few hours; step a quarter hour past the gap.
        time += chrono::Duration::minutes(15);
    }
}

impl Period {
    /// The period of `kind` that starts on `first_day`, which must be a Monday for a week and
    /// the first of a month for a month.
    pub fn starting(kind: PeriodKind, first_day: NaiveDate, zone: Tz) -> Result<Self> {
        let aligned = match kind {
            PeriodKind::Weekly => first_day.weekday() == Weekday::Mon,
            PeriodKind::Monthly => first_day.day() == 1,
        };
        if !aligned {
            let wanted = match kind {
                PeriodKind::Weekly => "a Monday",
                PeriodKind::Monthly => "the first day of a month",
            };
            return Err(Error::invalid("invalid_period_start", format!("{first_day} is not {wanted}")));
        }
        Ok(Self::from_first_day(kind, first_day, zone))
    }

    /// The period of `kind` whose (aligned) first day is `first_day`.
    fn from_first_day(kind: PeriodKind, first_day: NaiveDate, zone: Tz) -> Self {
        let next = kind.next_first_day(first_day);
        Self {
            kind,
            first_day,
            last_day: kind.last_day(first_day),
            start: start_of(first_day, zone),
            end: start_of(next, zone),
        }
    }

    /// The period of `kind` that `at` falls in.
    pub fn containing(kind: PeriodKind, at: DateTime<Utc>, zone: Tz) -> Self {
        let day = at.with_timezone(&zone).date_naive();
        let first_day = match kind {
            PeriodKind::Weekly => day - chrono::Duration::days(i64::from(day.weekday().num_days_from_monday())),
            PeriodKind::Monthly => day.with_day(1).unwrap_or(day),
        };
        Self::from_first_day(kind, first_day, zone)
    }

    /// The period just before this one.
    pub fn previous(&self, zone: Tz) -> Self {
        Self::containing(self.kind, self.start - chrono::Duration::seconds(1), zone)
    }

    /// The period asked for at `now`: the one starting on `first_day` (the current one when
    /// none is given); a period that has not begun yet may not be asked for.
    pub fn requested(kind: PeriodKind, first_day: Option<NaiveDate>, now: DateTime<Utc>, zone: Tz) -> Result<Self> {
        let period = match first_day {
            Some(day) => Self::starting(kind, day, zone)?,
            None => Self::containing(kind, now, zone),
        };
        if period.start > now {
            return Err(Error::invalid(
                "future_period",
                format!("the period starting {} has not begun", period.first_day),
            ));
        }
        Ok(period)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn weeks_run_monday_to_sunday_in_the_deployments_time_zone() {
        let seoul: Tz = "Asia/Seoul".parse().unwrap();
        let week = Period::starting(PeriodKind::Weekly, day("2026-11-30"), seoul).unwrap();
        assert_eq!(week.last_day, day("2026-12-06"));
        assert_eq!((week.start, week.end), (at("2026-11-29T15:00:00Z"), at("2026-12-06T15:00:00Z")));
        // Sunday 23:30 in Seoul is still the same week; Monday 00:00 is the next.
        assert_eq!(Period::containing(PeriodKind::Weekly, at("2026-12-06T14:30:00Z"), seoul), week);
        assert_eq!(
            Period::containing(PeriodKind::Weekly, at("2026-12-06T15:00:00Z"), seoul).first_day,
            day("2026-12-07")
        );
        assert_eq!(week.previous(seoul).first_day, day("2026-11-23"));
        let err = Period::starting(PeriodKind::Weekly, day("2026-12-01"), seoul).unwrap_err();
        assert_eq!(err.kind(), Some(crate::error::ErrorKind::Unprocessable));
    }

    #[test]
    fn months_follow_the_calendar_and_clock_changes() {
        let utc: Tz = "UTC".parse().unwrap();
        let february = Period::starting(PeriodKind::Monthly, day("2028-02-01"), utc).unwrap();
        assert_eq!(february.last_day, day("2028-02-29"));
        assert_eq!(february.previous(utc).first_day, day("2028-01-01"));
        // New York leaves daylight saving time on 1 November 2026: that month has an extra hour.
        let new_york: Tz = "America/New_York".parse().unwrap();
        let november = Period::starting(PeriodKind::Monthly, day("2026-11-01"), new_york).unwrap();
        assert_eq!((november.start, november.end), (at("2026-11-01T04:00:00Z"), at("2026-12-01T05:00:00Z")));
        assert!(Period::starting(PeriodKind::Monthly, day("2026-11-02"), new_york).is_err());
    }

    #[test]
    fn a_future_period_is_refused_and_the_current_one_is_the_default() {
        let utc: Tz = "UTC".parse().unwrap();
        let now = at("2026-12-02T10:00:00Z");
        let current = Period::requested(PeriodKind::Weekly, None, now, utc).unwrap();
        assert_eq!(current.first_day, day("2026-11-30"));
        assert!(current.end > now, "the current week is still running");
        let next = Period::requested(PeriodKind::Weekly, Some(day("2026-12-07")), now, utc).unwrap_err();
        assert_eq!(next.kind(), Some(crate::error::ErrorKind::Unprocessable));
        assert!(PeriodKind::parse("daily").is_err());
    }
}
