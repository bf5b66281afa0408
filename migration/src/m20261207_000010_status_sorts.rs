//! A list of one status is read from an index of that status in its sort's order: without one,
//! it walks the sort's index over every task and skips the others' (about three index entries
//! and tasks read for each one shown when a third of the tasks have that status).

use sea_orm_migration::prelude::*;

use crate::types::index;

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
        let sorts = [
            ("idx_tasks_status_created", Tasks::CreatedAt),
            ("idx_tasks_status_updated", Tasks::UpdatedAt),
            ("idx_tasks_status_urgency", Tasks::UrgencyKey),
            ("idx_tasks_status_deadline_key", Tasks::DeadlineKey),
        ];
        for (name, key) in sorts {
            manager.create_index(index(name, Tasks::Table, &[Tasks::Status, key, Tasks::Id])).await?;
        }
        Ok(())
    }
}
