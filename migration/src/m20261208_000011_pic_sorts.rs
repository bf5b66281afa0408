//! A PIC's tasks ("my tasks", the list people open most) are read from an index of that PIC in
//! the list's sort order, in every sort: without one, a PIC of few tasks among many had them
//! read from the PIC index and sorted, or walked for in the sort's order, and SQLite's planner
//! sorted every task of a PIC of many (180–260 ms a list for a PIC of 100,000 tasks).

use sea_orm_migration::prelude::*;

use crate::types::index;

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
        let sorts = [
            ("idx_tasks_pic_created", Tasks::CreatedAt),
            ("idx_tasks_pic_updated", Tasks::UpdatedAt),
            ("idx_tasks_pic_urgency", Tasks::UrgencyKey),
            ("idx_tasks_pic_deadline_key", Tasks::DeadlineKey),
        ];
        for (name, key) in sorts {
            manager.create_index(index(name, Tasks::Table, &[Tasks::PicId, key, Tasks::Id])).await?;
        }
        Ok(())
    }
}
