//! Users, sessions and refresh tokens, sign-in throttling, tasks and the task event outbox.

use sea_orm_migration::prelude::*;

use crate::types::{index, instant, long_text};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_foundation"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    DisplayName,
    Role,
    Disabled,
    NotificationPrefs,
    TokenVersion,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    UserId,
    CreatedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum RefreshTokens {
    Table,
    TokenHash,
    SessionId,
    ExpiresAt,
    UsedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum SignInThrottle {
    Table,
    Key,
    Failures,
    WindowStartedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    Name,
    Contents,
    Status,
    Priority,
    Deadline,
    PicId,
    SupervisorId,
    CreatorId,
    Version,
    CreatedAt,
    UpdatedAt,
    CompletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskEvents {
    Table,
    Id,
    TaskId,
    Seq,
    ActorId,
    Kind,
    Payload,
    CreatedAt,
    PublishedAt,
    ArchivedAt,
}

/// A nullable reference to `users.id` that becomes null when the user is deleted.
fn user_reference(table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create().from(table, column).to(Users::Table, Users::Id).on_delete(ForeignKeyAction::SetNull).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(ColumnDef::new(Users::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Users::Email).string_len(254).not_null().unique_key())
                    .col(ColumnDef::new(Users::PasswordHash).string_len(255).not_null())
                    .col(ColumnDef::new(Users::DisplayName).string_len(100).not_null())
                    .col(ColumnDef::new(Users::Role).string_len(16).not_null().default("member"))
                    .col(ColumnDef::new(Users::Disabled).boolean().not_null().default(false))
                    .col(ColumnDef::new(Users::NotificationPrefs).json().not_null())
                    .col(ColumnDef::new(Users::TokenVersion).integer().not_null().default(0))
                    .col(instant(db, Users::CreatedAt).not_null())
                    .col(instant(db, Users::UpdatedAt).not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .col(ColumnDef::new(Sessions::Id).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(Sessions::UserId).big_integer().not_null())
                    .col(instant(db, Sessions::CreatedAt).not_null())
                    .col(instant(db, Sessions::RevokedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Sessions::Table, Sessions::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_sessions_user").table(Sessions::Table).col(Sessions::UserId).to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshTokens::Table)
                    .col(ColumnDef::new(RefreshTokens::TokenHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(RefreshTokens::SessionId).string_len(64).not_null())
                    .col(instant(db, RefreshTokens::ExpiresAt).not_null())
                    .col(instant(db, RefreshTokens::UsedAt).null())
                    .col(instant(db, RefreshTokens::CreatedAt).not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(RefreshTokens::Table, RefreshTokens::SessionId)
                            .to(Sessions::Table, Sessions::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_refresh_tokens_session")
                    .table(RefreshTokens::Table)
                    .col(RefreshTokens::SessionId)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SignInThrottle::Table)
                    .col(ColumnDef::new(SignInThrottle::Key).string_len(300).not_null().primary_key())
                    .col(ColumnDef::new(SignInThrottle::Failures).integer().not_null())
                    .col(instant(db, SignInThrottle::WindowStartedAt).not_null())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Tasks::Table)
                    .col(ColumnDef::new(Tasks::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(Tasks::Name).string_len(200).not_null())
                    .col(long_text(db, Tasks::Contents).not_null())
                    .col(ColumnDef::new(Tasks::Status).string_len(16).not_null())
                    .col(ColumnDef::new(Tasks::Priority).small_integer().not_null())
                    .col(instant(db, Tasks::Deadline).null())
                    .col(ColumnDef::new(Tasks::PicId).big_integer().null())
                    .col(ColumnDef::new(Tasks::SupervisorId).big_integer().null())
                    .col(ColumnDef::new(Tasks::CreatorId).big_integer().null())
                    .col(ColumnDef::new(Tasks::Version).integer().not_null())
                    .col(instant(db, Tasks::CreatedAt).not_null())
                    .col(instant(db, Tasks::UpdatedAt).not_null())
                    .col(instant(db, Tasks::CompletedAt).null())
                    .foreign_key(&mut user_reference(Tasks::Table, Tasks::PicId))
                    .foreign_key(&mut user_reference(Tasks::Table, Tasks::SupervisorId))
                    .foreign_key(&mut user_reference(Tasks::Table, Tasks::CreatorId))
                    .to_owned(),
            )
            .await?;
        // One index per list filter, each ending in the id so keyset pages stay index-ordered.
        let task_indexes: [(&str, &[Tasks]); 7] = [
            ("idx_tasks_created", &[Tasks::CreatedAt, Tasks::Id]),
            ("idx_tasks_updated", &[Tasks::UpdatedAt, Tasks::Id]),
            ("idx_tasks_deadline", &[Tasks::Deadline, Tasks::Id]),
            ("idx_tasks_priority", &[Tasks::Priority, Tasks::Deadline, Tasks::Id]),
            ("idx_tasks_pic", &[Tasks::PicId, Tasks::Status, Tasks::Deadline]),
            ("idx_tasks_supervisor", &[Tasks::SupervisorId, Tasks::Status]),
            ("idx_tasks_creator", &[Tasks::CreatorId, Tasks::Status]),
        ];
        for (name, columns) in task_indexes {
            manager.create_index(index(name, Tasks::Table, columns)).await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_tasks_status")
                    .table(Tasks::Table)
                    .col(Tasks::Status)
                    .col(Tasks::Deadline)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(TaskEvents::Table)
                    .col(ColumnDef::new(TaskEvents::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(TaskEvents::TaskId).big_integer().not_null())
                    .col(ColumnDef::new(TaskEvents::Seq).integer().not_null())
                    .col(ColumnDef::new(TaskEvents::ActorId).big_integer().null())
                    .col(ColumnDef::new(TaskEvents::Kind).string_len(40).not_null())
                    .col(ColumnDef::new(TaskEvents::Payload).json().not_null())
                    .col(instant(db, TaskEvents::CreatedAt).not_null())
                    .col(instant(db, TaskEvents::PublishedAt).null())
                    .col(instant(db, TaskEvents::ArchivedAt).null())
                    .foreign_key(&mut user_reference(TaskEvents::Table, TaskEvents::ActorId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_task_events_task")
                    .table(TaskEvents::Table)
                    .col(TaskEvents::TaskId)
                    .col(TaskEvents::Seq)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_task_events_unpublished")
                    .table(TaskEvents::Table)
                    .col(TaskEvents::PublishedAt)
                    .col(TaskEvents::Id)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
