//! The embedded job queue: one table for every queue, with leases, retries and a dead state.

use sea_orm_migration::prelude::*;

use crate::types::{index, instant};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_jobs"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Jobs {
    Table,
    Id,
    Queue,
    Kind,
    Version,
    Payload,
    DedupKey,
    State,
    Attempts,
    MaxAttempts,
    RunAt,
    LeaseUntil,
    LeaseOwner,
    LastError,
    EnqueuedAt,
    DeadAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Jobs::Table)
                    .col(ColumnDef::new(Jobs::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Jobs::Queue).string_len(64).not_null())
                    .col(ColumnDef::new(Jobs::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(Jobs::Version).small_integer().not_null())
                    .col(ColumnDef::new(Jobs::Payload).json().not_null())
                    .col(ColumnDef::new(Jobs::DedupKey).string_len(191).null())
                    .col(ColumnDef::new(Jobs::State).string_len(16).not_null())
                    .col(ColumnDef::new(Jobs::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Jobs::MaxAttempts).integer().not_null())
                    .col(instant(db, Jobs::RunAt).not_null())
                    .col(instant(db, Jobs::LeaseUntil).null())
                    .col(ColumnDef::new(Jobs::LeaseOwner).string_len(128).null())
                    .col(ColumnDef::new(Jobs::LastError).text().null())
                    .col(instant(db, Jobs::EnqueuedAt).not_null())
                    .col(instant(db, Jobs::DeadAt).null())
                    .to_owned(),
            )
            .await?;
        // Claiming walks this index: due jobs of one queue in order.
        let claim = [Jobs::Queue, Jobs::State, Jobs::RunAt, Jobs::Id];
        manager.create_index(index("idx_jobs_claim", Jobs::Table, &claim)).await?;
        let mut dedup = index("idx_jobs_dedup", Jobs::Table, &[Jobs::Queue, Jobs::DedupKey]);
        manager.create_index(dedup.unique().to_owned()).await?;
        Ok(())
    }
}
