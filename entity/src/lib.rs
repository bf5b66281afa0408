//! SeaORM entities for tasklane's tables. The migrations in `tasklane-migration` are the
//! source of truth for the schema; these types mirror them for queries.
//!
//! Instants are stored as naive date-times that are always UTC: MySQL's `TIMESTAMP` binding
//! cannot hold dates after 2038, so values are bound as `DATETIME` instead.

pub mod account_tokens;
pub mod known_words;
pub mod notifications;
pub mod refresh_tokens;
pub mod report_runs;
pub mod reports;
pub mod sessions;
pub mod sign_in_throttle;
pub mod task_events;
pub mod task_words;
pub mod tasks;
pub mod users;
