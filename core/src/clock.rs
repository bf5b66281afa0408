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

/// Where the application reads the time: the system clock, or a clock a test sets and moves
/// (shared by every clone, so a test can move the time an API server reads).
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Microseconds since the Unix epoch while fixed.
    fixed: Option<std::sync::Arc<std::sync::atomic::AtomicI64>>,
}

impl Clock {
    /// A clock stopped at `at` until [`Clock::set`] moves it.
    pub fn fixed(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self { fixed: Some(std::sync::Arc::new(std::sync::atomic::AtomicI64::new(at.timestamp_micros()))) }
    }

    /// The current time at the databases' precision.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        match &self.fixed {
            Some(micros) => chrono::DateTime::from_timestamp_micros(micros.load(std::sync::atomic::Ordering::SeqCst))
                .unwrap_or_else(now),
            None => now(),
        }
    }

    /// Moves a fixed clock to `at`; the system clock cannot be moved and stays as it is.
    pub fn set(&self, at: chrono::DateTime<chrono::Utc>) {
        if let Some(micros) = &self.fixed {
            micros.store(at.timestamp_micros(), std::sync::atomic::Ordering::SeqCst);
        }
    }
}
