//! The values a task holds, each parsed once from what clients send.

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{Error, Result};

/// Where a task stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// Not started (대기 중).
    Pending,
    /// Being worked on (진행 중).
    InProgress,
    /// Finished (완료).
    Done,
}

impl TaskStatus {
    /// Accepts `pending`, `in_progress`, `done` (any case, with spaces or dashes) and the
    /// seed's Korean labels.
    pub fn parse(raw: &str) -> Result<Self> {
        let normal: String = raw.trim().to_lowercase().chars().filter(|c| !matches!(c, ' ' | '_' | '-')).collect();
        match normal.as_str() {
            "pending" | "todo" | "대기중" => Ok(Self::Pending),
            "inprogress" | "진행중" => Ok(Self::InProgress),
            "done" | "completed" | "완료" => Ok(Self::Done),
            _ => Err(Error::invalid(
                "invalid_status",
                format!("status '{}' is not one of pending, in_progress, done", raw.trim()),
            )),
        }
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::InProgress => "in_progress",
            Self::Done => "done",
        }
    }

    /// Reads the stored spelling.
    pub fn from_stored(value: &str) -> Self {
        Self::parse(value).unwrap_or(Self::Pending)
    }
}

/// How urgent a task is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    /// Whenever.
    Low,
    /// The default.
    Medium,
    /// Soon.
    High,
    /// Now.
    Urgent,
}

impl Priority {
    /// Accepts `low`, `medium`, `high`, `urgent` in any case.
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim().to_lowercase().as_str() {
            "low" | "낮음" => Ok(Self::Low),
            "medium" | "normal" | "보통" => Ok(Self::Medium),
            "high" | "높음" => Ok(Self::High),
            "urgent" | "긴급" => Ok(Self::Urgent),
            _ => Err(Error::invalid(
                "invalid_priority",
                format!("priority '{}' is not one of low, medium, high, urgent", raw.trim()),
            )),
        }
    }

    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }

    /// The stored rank (higher is more urgent).
    pub fn rank(self) -> i16 {
        match self {
            Self::Low => 1,
            Self::Medium => 2,
            Self::High => 3,
            Self::Urgent => 4,
        }
    }

    /// Reads the stored rank.
    pub fn from_rank(rank: i16) -> Self {
        match rank {
            i16::MIN..=1 => Self::Low,
            2 => Self::Medium,
            3 => Self::High,
            _ => Self::Urgent,
        }
    }
}

/// Parses a deadline: an RFC 3339 date-time, or a plain `YYYY-MM-DD` date meaning the end of
/// that day in UTC.
pub fn parse_deadline(raw: &str) -> Result<DateTime<Utc>> {
    let raw = raw.trim();
    let parsed = if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        at.with_timezone(&Utc).trunc_subsecs(6)
    } else if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let end_of_day = NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default();
        day.and_time(end_of_day).and_utc()
    } else {
        let shown: String = raw.chars().take(40).collect();
        return Err(Error::invalid(
            "invalid_deadline",
            format!("deadline '{shown}' is neither an RFC 3339 date-time nor a YYYY-MM-DD date"),
        ));
    };
    // Within what every database stores (MySQL's DATETIME ends with year 9999).
    if !(1970..=9999).contains(&parsed.year()) {
        return Err(Error::invalid("invalid_deadline", "a deadline must fall between the years 1970 and 9999"));
    }
    Ok(parsed)
}

/// Checks a task name: 1 to 200 characters after trimming.
pub fn parse_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    let length = name.chars().count();
    if !(1..=200).contains(&length) {
        return Err(Error::invalid("invalid_name", "name must be 1 to 200 characters"));
    }
    // A name becomes an email subject: a line break in it must not start a header.
    if name.chars().any(char::is_control) {
        return Err(Error::invalid("invalid_name", "name must be one line without control characters"));
    }
    Ok(name.to_owned())
}

/// Checks task contents: at most 20,000 characters.
pub fn parse_contents(raw: String) -> Result<String> {
    if raw.chars().count() <= 20_000 {
        Ok(raw)
    } else {
        Err(Error::invalid("invalid_contents", "contents must be at most 20,000 characters"))
    }
}

/// A user as a client names them: by id (number or numeric string) or by email.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum UserRef {
    /// A user id.
    Id(i64),
    /// An email address, or an id written as a string.
    Text(String),
}

/// A field of a partial update: absent (leave it), `null` (clear it) or a value.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Patch<T> {
    /// Not in the request.
    #[default]
    Keep,
    /// Explicitly `null`.
    Clear,
    /// A new value.
    Set(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(value) => Self::Set(value),
            None => Self::Clear,
        })
    }
}

impl<T> Patch<T> {
    /// Maps the value, keeping absent and null as they are.
    pub fn try_map<U>(self, f: impl FnOnce(T) -> Result<U>) -> Result<Patch<U>> {
        Ok(match self {
            Self::Keep => Patch::Keep,
            Self::Clear => Patch::Clear,
            Self::Set(value) => Patch::Set(f(value)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_accept_seed_labels() {
        assert_eq!(TaskStatus::parse("대기 중").unwrap(), TaskStatus::Pending);
        assert_eq!(TaskStatus::parse("진행 중").unwrap(), TaskStatus::InProgress);
        assert_eq!(TaskStatus::parse("완료").unwrap(), TaskStatus::Done);
        assert_eq!(TaskStatus::parse("In Progress").unwrap(), TaskStatus::InProgress);
        assert!(TaskStatus::parse("finished-ish").is_err());
    }

    #[test]
    fn deadlines_accept_datetimes_and_dates() {
        assert_eq!(parse_deadline("2026-12-01T09:00:00+09:00").unwrap().to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(parse_deadline("2026-12-01").unwrap().to_rfc3339(), "2026-12-01T23:59:59+00:00");
        assert!(parse_deadline("2026-13-01").is_err());
        assert!(parse_deadline("tomorrow").is_err());
        for out_of_range in ["+10000-01-01T00:00:00Z", "0001-01-01", "9999-12-31T23:59:59-05:00", "1969-12-31"] {
            assert!(parse_deadline(out_of_range).is_err(), "{out_of_range}");
        }
        assert!(parse_deadline("9999-12-31").is_ok());
    }

    #[test]
    fn priorities_round_trip_through_ranks() {
        for p in [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent] {
            assert_eq!(Priority::from_rank(p.rank()), p);
        }
    }

    #[test]
    fn patch_tells_absent_from_null() {
        #[derive(Deserialize)]
        struct Body {
            #[serde(default)]
            deadline: Patch<String>,
        }
        let absent: Body = serde_json::from_str("{}").unwrap();
        let null: Body = serde_json::from_str(r#"{"deadline":null}"#).unwrap();
        let set: Body = serde_json::from_str(r#"{"deadline":"2026-01-01"}"#).unwrap();
        assert_eq!(absent.deadline, Patch::Keep);
        assert_eq!(null.deadline, Patch::Clear);
        assert_eq!(set.deadline, Patch::Set("2026-01-01".into()));
    }
}
