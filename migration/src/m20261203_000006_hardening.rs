//! Task event states also say what came before them (the PIC and status) and the deadline a
//! done task had when it was completed, so reports need no join to the previous event nor a
//! lookup of the completing one.
//!
//! Hardening: emails are claimed before they are sent (a worker writes its claim and how long
//! it holds it on the notification rows, so a second copy of a job finds them taken and a dead
//! worker's claim can be taken over once it has run out); users' addresses are verified;
//! invitations and verification links are single-use tokens stored as hashes.

use sea_orm_migration::prelude::*;

use crate::types::{index, instant};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000006_hardening"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Notifications {
    Table,
    UserId,
    Channel,
    CreatedAt,
    ClaimedBy,
    ClaimedUntil,
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    EmailVerifiedAt,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskEvents {
    Table,
    PicId,
    SupersededAt,
    CreatedAt,
    Status,
    Kind,
    Priority,
    Deadline,
    CompletedAt,
    TaskCreatedAt,
    StartedAt,
    CompletedDue,
    PrevPicId,
    PrevStatus,
    TaskId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    CompletedDue,
}

#[derive(DeriveIden, Clone, Copy)]
enum AccountTokens {
    Table,
    TokenHash,
    Purpose,
    Email,
    UserId,
    CreatedBy,
    Role,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        // One column per statement: SQLite alters one column at a time.
        let columns = [
            ColumnDef::new(Notifications::ClaimedBy).string_len(200).null().to_owned(),
            instant(db, Notifications::ClaimedUntil).null().to_owned(),
        ];
        for mut column in columns {
            manager.alter_table(Table::alter().table(Notifications::Table).add_column(&mut column).to_owned()).await?;
        }
        // How many emails a recipient got lately (the flood limit).
        let recent = [Notifications::UserId, Notifications::Channel, Notifications::CreatedAt];
        manager.create_index(index("idx_notifications_recent", Notifications::Table, &recent)).await?;
        manager
            .alter_table(
                Table::alter().table(Users::Table).add_column(instant(db, Users::EmailVerifiedAt).null()).to_owned(),
            )
            .await?;
        // Accounts that exist before the upgrade count as verified.
        manager
            .exec_stmt(
                Query::update()
                    .table(Users::Table)
                    .value(Users::EmailVerifiedAt, Expr::col(Users::CreatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(AccountTokens::Table)
                    .col(ColumnDef::new(AccountTokens::TokenHash).string_len(64).not_null().primary_key())
                    .col(ColumnDef::new(AccountTokens::Purpose).string_len(32).not_null())
                    .col(ColumnDef::new(AccountTokens::Email).string_len(254).not_null())
                    .col(ColumnDef::new(AccountTokens::UserId).big_integer().null())
                    .col(ColumnDef::new(AccountTokens::CreatedBy).big_integer().null())
                    .col(ColumnDef::new(AccountTokens::Role).string_len(16).null())
                    .col(instant(db, AccountTokens::CreatedAt).not_null())
                    .col(instant(db, AccountTokens::ExpiresAt).not_null())
                    .col(instant(db, AccountTokens::UsedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountTokens::Table, AccountTokens::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(AccountTokens::Table, AccountTokens::CreatedBy)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        let event_columns = [
            instant(db, TaskEvents::CompletedDue).null().to_owned(),
            ColumnDef::new(TaskEvents::PrevPicId).big_integer().null().to_owned(),
            ColumnDef::new(TaskEvents::PrevStatus).string_len(16).null().to_owned(),
        ];
        for mut column in event_columns {
            manager.alter_table(Table::alter().table(TaskEvents::Table).add_column(&mut column).to_owned()).await?;
        }
        manager
            .alter_table(
                Table::alter().table(Tasks::Table).add_column(instant(db, Tasks::CompletedDue).null()).to_owned(),
            )
            .await?;
        backfill_event_context(manager.get_connection()).await?;
        // A person's states, with every column a report reads: their report is read from the
        // index alone, never from rows scattered over a table larger than the buffer pool.
        manager.drop_index(Index::drop().name("idx_task_events_pic").table(TaskEvents::Table).to_owned()).await?;
        let state = [
            TaskEvents::PicId,
            TaskEvents::SupersededAt,
            TaskEvents::CreatedAt,
            TaskEvents::Status,
            TaskEvents::Kind,
            TaskEvents::Priority,
            TaskEvents::Deadline,
            TaskEvents::CompletedAt,
            TaskEvents::TaskCreatedAt,
            TaskEvents::StartedAt,
            TaskEvents::CompletedDue,
            TaskEvents::PrevPicId,
            TaskEvents::PrevStatus,
            TaskEvents::TaskId,
        ];
        manager.create_index(index("idx_task_events_pic_state", TaskEvents::Table, &state)).await?;

        let by_email = [AccountTokens::Purpose, AccountTokens::Email];
        manager.create_index(index("idx_account_tokens_email", AccountTokens::Table, &by_email)).await?;
        manager
            .create_index(index("idx_account_tokens_expiry", AccountTokens::Table, &[AccountTokens::ExpiresAt]))
            .await
    }
}

/// Fills the new state columns of existing events from their neighbours: MySQL cannot name the
/// table it updates in a subquery, SQLite has no multi-table `UPDATE`, so each has its form.
async fn backfill_event_context(db: &impl sea_orm_migration::sea_orm::ConnectionTrait) -> Result<(), DbErr> {
    use sea_orm_migration::sea_orm::DbBackend;
    let statements: &[&str] = match db.get_database_backend() {
        DbBackend::MySql => &[
            "UPDATE task_events e JOIN task_events p ON p.task_id = e.task_id AND p.seq = e.seq - 1 \
             SET e.prev_pic_id = p.pic_id, e.prev_status = p.status",
            "UPDATE task_events e JOIN (SELECT c.task_id, c.created_at, c.deadline FROM task_events c \
             JOIN (SELECT task_id, created_at, MIN(seq) AS seq FROM task_events WHERE status = 'done' \
             GROUP BY task_id, created_at) f ON f.task_id = c.task_id AND f.seq = c.seq) d \
             ON d.task_id = e.task_id AND d.created_at = e.completed_at \
             SET e.completed_due = d.deadline WHERE e.status = 'done'",
            "UPDATE tasks t JOIN task_events e ON e.task_id = t.id AND e.superseded_at IS NULL \
             SET t.completed_due = e.completed_due WHERE t.status = 'done'",
        ],
        _ => &[
            "UPDATE task_events SET \
             prev_pic_id = (SELECT p.pic_id FROM task_events p WHERE p.task_id = task_events.task_id AND p.seq = task_events.seq - 1), \
             prev_status = (SELECT p.status FROM task_events p WHERE p.task_id = task_events.task_id AND p.seq = task_events.seq - 1)",
            "UPDATE task_events SET completed_due = (SELECT c.deadline FROM task_events c \
             WHERE c.task_id = task_events.task_id AND c.created_at = task_events.completed_at AND c.status = 'done' \
             ORDER BY c.seq LIMIT 1) WHERE status = 'done'",
            "UPDATE tasks SET completed_due = (SELECT e.completed_due FROM task_events e \
             WHERE e.task_id = tasks.id AND e.superseded_at IS NULL) WHERE status = 'done'",
        ],
    };
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
