//! Time as the databases keep it.

/// The current time at the precision the databases keep (microseconds), so a value returned
/// to a client is exactly the one stored on MySQL and SQLite alike.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// An instant as the entities store it (a naive date-time that is always UTC).
pub fn stored(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    at.naive_utc()
}

/// [`now`] as the entities store it.
pub fn stored_now() -> chrono::NaiveDateTime {
    stored(now())
}
