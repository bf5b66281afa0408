//! A PIC's tasks ("my tasks", the list people open most) are read from an index of that PIC in
//! the list's sort order, in every sort: without one, a PIC of few tasks among many had them
//! read from the PIC index and sorted, or walked for in the sort's order, and SQLite's planner
//! sorted every task of a PIC of many (180–260 ms a list for a PIC of 100,000 tasks).

use sea_orm_migration::prelude::*;

use crate::types::sort_indexes;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261208_000011_pic_sorts"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    PicId,
    CreatedAt,
    UpdatedAt,
    UrgencyKey,
    DeadlineKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let keys = [Tasks::CreatedAt, Tasks::UpdatedAt, Tasks::UrgencyKey, Tasks::DeadlineKey, Tasks::Id];
        sort_indexes(manager, Tasks::Table, "idx_tasks_pic", Tasks::PicId, keys).await
    }
}
