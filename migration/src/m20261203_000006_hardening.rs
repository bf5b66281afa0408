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
        let by_email = [AccountTokens::Purpose, AccountTokens::Email];
        manager.create_index(index("idx_account_tokens_email", AccountTokens::Table, &by_email)).await?;
        manager
            .create_index(index("idx_account_tokens_expiry", AccountTokens::Table, &[AccountTokens::ExpiresAt]))
            .await
    }
}
