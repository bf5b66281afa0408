//! The embedded queue's table, `jobs`.

use sea_orm::entity::prelude::*;

/// One row of `jobs`: a job waiting, running under a lease, or dead.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    /// Surrogate key, the job id.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Queue name.
    pub queue: String,
    /// Job kind.
    pub kind: String,
    /// Payload schema version.
    pub version: i16,
    /// The payload.
    pub payload: Json,
    /// Jobs with the same key on one queue are enqueued once.
    pub dedup_key: Option<String>,
    /// `ready`, `running` or `dead`.
    pub state: String,
    /// Deliveries so far.
    pub attempts: i32,
    /// Not to be run before this time.
    pub run_at: DateTime,
    /// While running: when the lease ends and another worker may take the job.
    pub lease_until: Option<DateTime>,
    /// While running: the worker holding the lease.
    pub lease_owner: Option<String>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// When it was first enqueued.
    pub enqueued_at: DateTime,
    /// When it was declared dead.
    pub dead_at: Option<DateTime>,
}

/// Relations of `jobs` (none).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
