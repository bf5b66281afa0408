//! The embedded queue forgets `max_attempts`: how often a job is tried is the worker's
//! configured retry policy, so an operator's change applies to jobs already queued.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000004_jobs_policy"
    }
}

#[derive(DeriveIden)]
enum Jobs {
    Table,
    MaxAttempts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.alter_table(Table::alter().table(Jobs::Table).drop_column(Jobs::MaxAttempts).to_owned()).await
    }
}
