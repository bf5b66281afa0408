//! Notifications: one row per (source, recipient, channel), so a redelivered event or a
//! repeated reminder sweep never notifies anyone twice.

use sea_orm_migration::prelude::*;

use crate::types::{index, instant};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000003_notifications"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Notifications {
    Table,
    Id,
    UserId,
    Source,
    EventId,
    TaskId,
    Kind,
    Channel,
    Status,
    Attempts,
    LastError,
    Details,
    CreatedAt,
    SentAt,
    ReadAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskEvents {
    Table,
    ArchivedAt,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Notifications::Table)
                    .col(ColumnDef::new(Notifications::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Notifications::UserId).big_integer().not_null())
                    .col(ColumnDef::new(Notifications::Source).string_len(120).not_null())
                    .col(ColumnDef::new(Notifications::EventId).big_integer().null())
                    .col(ColumnDef::new(Notifications::TaskId).big_integer().null())
                    .col(ColumnDef::new(Notifications::Kind).string_len(40).not_null())
                    .col(ColumnDef::new(Notifications::Channel).string_len(16).not_null())
                    .col(ColumnDef::new(Notifications::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Notifications::Attempts).integer().not_null().default(0))
                    .col(ColumnDef::new(Notifications::LastError).text().null())
                    .col(ColumnDef::new(Notifications::Details).json().not_null())
                    .col(instant(db, Notifications::CreatedAt).not_null())
                    .col(instant(db, Notifications::SentAt).null())
                    .col(instant(db, Notifications::ReadAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Notifications::Table, Notifications::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let indexes: [(&str, &[Notifications], bool); 3] = [
            ("idx_notifications_once", &[Notifications::Source, Notifications::UserId, Notifications::Channel], true),
            // A user's inbox, newest first, and its unread count.
            ("idx_notifications_inbox", &[Notifications::UserId, Notifications::Channel, Notifications::Id], false),
            // Pending emails and digests.
            (
                "idx_notifications_status",
                &[Notifications::Channel, Notifications::Status, Notifications::UserId],
                false,
            ),
        ];
        for (name, columns, unique) in indexes {
            let mut index = index(name, Notifications::Table, columns);
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }
        // The archive sweep walks events not yet archived, oldest first.
        let unarchived = [TaskEvents::ArchivedAt, TaskEvents::Id];
        manager.create_index(index("idx_task_events_unarchived", TaskEvents::Table, &unarchived)).await?;
        Ok(())
    }
}
