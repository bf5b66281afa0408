//! Every task list is read from an index: the priority and deadline sorts get non-null key
//! columns (`urgency_key`, `deadline_key`) ordered by one index each, and `q` searches a stored
//! word list (`search_text`) through a full-text index (MySQL `FULLTEXT`, SQLite FTS5).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, TransactionSession, TransactionTrait};
use tasklane_entity::tasks::{deadline_key, search_text, urgency_key};

use crate::types::{index, long_text};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261204_000007_task_keys"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    UrgencyKey,
    DeadlineKey,
    SearchText,
}

/// Rows rewritten per transaction while filling the new columns in.
const BACKFILL_BATCH: u64 = 500;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let mut search = long_text(backend, Tasks::SearchText);
        search.not_null();
        // SQLite adds a NOT NULL column only with a default; MySQL fills existing rows with ''
        // and refuses a literal default on its TEXT types.
        if backend == DbBackend::Sqlite {
            search.default("");
        }
        let columns = [
            ColumnDef::new(Tasks::UrgencyKey).big_integer().not_null().default(0).to_owned(),
            ColumnDef::new(Tasks::DeadlineKey).big_integer().not_null().default(0).to_owned(),
            search,
        ];
        for mut column in columns {
            manager.alter_table(Table::alter().table(Tasks::Table).add_column(&mut column).to_owned()).await?;
        }
        backfill(manager.get_connection()).await?;
        manager.drop_index(Index::drop().name("idx_tasks_priority").table(Tasks::Table).to_owned()).await?;
        manager.create_index(index("idx_tasks_urgency", Tasks::Table, &[Tasks::UrgencyKey, Tasks::Id])).await?;
        manager.create_index(index("idx_tasks_deadline_key", Tasks::Table, &[Tasks::DeadlineKey, Tasks::Id])).await?;
        full_text_index(manager.get_connection()).await
    }
}

/// Computes the keys of existing tasks with the same functions the application writes them with.
async fn backfill<C: ConnectionTrait + TransactionTrait>(db: &C) -> Result<(), DbErr> {
    let mut after = 0_i64;
    loop {
        let select = Query::select()
            .columns([Alias::new("id"), Alias::new("name"), Alias::new("contents"), Alias::new("priority")])
            .column(Alias::new("deadline"))
            .from(Tasks::Table)
            .and_where(Expr::col(Tasks::Id).gt(after))
            .order_by(Tasks::Id, Order::Asc)
            .limit(BACKFILL_BATCH)
            .to_owned();
        let rows = db.query_all(&select).await?;
        let Some(last) = rows.last() else { return Ok(()) };
        after = last.try_get("", "id")?;
        let txn = db.begin().await?;
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let name: String = row.try_get("", "name")?;
            let contents: String = row.try_get("", "contents")?;
            let priority: i16 = row.try_get("", "priority")?;
            let deadline: Option<chrono::NaiveDateTime> = row.try_get("", "deadline")?;
            let update = Query::update()
                .table(Tasks::Table)
                .value(Tasks::UrgencyKey, urgency_key(priority, deadline))
                .value(Tasks::DeadlineKey, deadline_key(deadline))
                .value(Tasks::SearchText, search_text(&name, &contents))
                .and_where(Expr::col(Tasks::Id).eq(id))
                .to_owned();
            txn.execute(&update).await?;
        }
        txn.commit().await?;
    }
}

/// The index `q` is answered from. MySQL's is built without its stop-word list (which would
/// drop "about", "the", …) — a setting read when the index is created, so it is set on the
/// connection that creates it. SQLite's is an FTS5 table over `tasks.search_text` kept in step
/// by triggers.
async fn full_text_index<C: ConnectionTrait + TransactionTrait>(db: &C) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DbBackend::MySql => {
            let connection = db.begin().await?;
            connection.execute_unprepared("SET SESSION innodb_ft_enable_stopword = OFF").await?;
            connection.execute_unprepared("CREATE FULLTEXT INDEX idx_tasks_search ON tasks (search_text)").await?;
            connection.execute_unprepared("SET SESSION innodb_ft_enable_stopword = ON").await?;
            connection.commit().await
        }
        _ => {
            for statement in [
                "CREATE VIRTUAL TABLE tasks_search USING fts5(search_text, content='tasks', content_rowid='id', \
                 tokenize='unicode61 remove_diacritics 0')",
                "CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks BEGIN \
                 INSERT INTO tasks_search (rowid, search_text) VALUES (new.id, new.search_text); END",
                "CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks BEGIN \
                 INSERT INTO tasks_search (tasks_search, rowid, search_text) VALUES ('delete', old.id, old.search_text); END",
                "CREATE TRIGGER tasks_search_update AFTER UPDATE OF search_text ON tasks \
                 WHEN old.search_text IS NOT new.search_text BEGIN \
                 INSERT INTO tasks_search (tasks_search, rowid, search_text) VALUES ('delete', old.id, old.search_text); \
                 INSERT INTO tasks_search (rowid, search_text) VALUES (new.id, new.search_text); END",
                "INSERT INTO tasks_search (tasks_search) VALUES ('rebuild')",
            ] {
                db.execute_unprepared(statement).await?;
            }
            Ok(())
        }
    }
}
