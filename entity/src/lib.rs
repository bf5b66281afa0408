//! SeaORM entities for tasklane's tables. The migrations in `tasklane-migration` are the
//! source of truth for the schema; these types mirror them for queries.

pub mod refresh_tokens;
pub mod sessions;
pub mod sign_in_throttle;
pub mod task_events;
pub mod tasks;
pub mod users;
