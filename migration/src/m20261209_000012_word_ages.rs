//! `known_words` learns when each word was last about to be written, so that words no task
//! holds any more can be taken out without racing a writer that added one just before its
//! task's transaction.

use sea_orm_migration::prelude::*;

use crate::types::instant;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261209_000012_word_ages"
    }
}

#[derive(DeriveIden)]
enum KnownWords {
    Table,
    RememberedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        // Null: remembered by a version before this one (or `migrate index-words`), never
        // pruned until a task write remembers the word again.
        manager
            .alter_table(
                Table::alter()
                    .table(KnownWords::Table)
                    .add_column(instant(db, KnownWords::RememberedAt).null())
                    .to_owned(),
            )
            .await?;
        // The words known now become prunable a grace period after the upgrade.
        manager
            .exec_stmt(
                Query::update()
                    .table(KnownWords::Table)
                    .value(KnownWords::RememberedAt, Expr::val(chrono::Utc::now().naive_utc()))
                    .to_owned(),
            )
            .await
    }
}
