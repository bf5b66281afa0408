//! A job platform: typed background jobs on queues, carried by an embedded SQL table, Redis
//! Streams or Amazon SQS, and run by apalis workers with retries, exponential backoff,
//! dead-letter queues, batched operator alerts and a recurring scheduler.
//!
//! The platform knows nothing of the application using it. An application declares its job
//! kinds (the [`Job`] trait), registers a handler for each in a [`Registry`] over a context
//! of its own, picks a [`Transport`] and runs a [`runtime::WorkerRuntime`].
//!
//! Delivery is at least once; handlers must be idempotent. A handler answers success, retry
//! later, or fail permanently (straight to the dead-letter queue).

pub mod alert_ledger;
pub mod alerts;
pub mod embedded;
pub mod grouped;
pub mod redis;
pub mod registry;
pub mod retry;
pub mod routed;
pub mod runtime;
pub mod schedule;
pub mod sqs;
pub mod transactions;
pub mod transport;

mod job;

pub use job::{Delivery, Job, JobError, NewJob, UNDECODABLE};
pub use registry::{JobContext, Registry};
pub use retry::{RetryOverride, RetryPolicies, RetryPolicy};
pub use transport::{DeadJob, DeadSelector, QueueStats, Transport};

/// Results of transport operations: infrastructure failures the caller logs or retries.
pub type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// The current time at the precision SQL databases keep (microseconds), so what a transport
/// writes and reads back compares equal on MySQL and SQLite alike.
fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
