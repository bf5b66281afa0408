//! A list of one status is read from an index of that status in its sort's order: without one,
//! it walks the sort's index over every task and skips the others' (about three index entries
//! and tasks read for each one shown when a third of the tasks have that status).

use sea_orm_migration::prelude::*;

use crate::types::sort_indexes;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000010_status_sorts"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    Status,
    CreatedAt,
    UpdatedAt,
    UrgencyKey,
    DeadlineKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let keys = [Tasks::CreatedAt, Tasks::UpdatedAt, Tasks::UrgencyKey, Tasks::DeadlineKey, Tasks::Id];
        sort_indexes(manager, Tasks::Table, "idx_tasks_status", Tasks::Status, keys).await
    }
}
