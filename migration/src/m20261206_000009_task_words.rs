//! `q` reads its matches in the order of the list: `task_words` holds every word of every task
//! with the task's four sort keys, indexed by (word, sort key, task), so a search walks one
//! word's tasks already sorted and stops after a page; `known_words` lists the distinct words,
//! so the words a beginning stands for are one short read. The full-text indexes they replace
//! (MySQL `FULLTEXT`, SQLite FTS5) handed over every match of a word to be sorted.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, TransactionSession, TransactionTrait};
use tasklane_entity::task_words::{MAX_WORD_CHARS, words_of};

use crate::types::instant;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261206_000009_task_words"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskWords {
    Table,
    TaskId,
    Word,
    CreatedAt,
    UpdatedAt,
    UrgencyKey,
    DeadlineKey,
}

#[derive(DeriveIden, Clone, Copy)]
enum KnownWords {
    Table,
    Word,
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    Id,
    CreatedAt,
    UpdatedAt,
    UrgencyKey,
    DeadlineKey,
    SearchText,
}

/// Tasks whose words are written per transaction while filling the table in.
const BACKFILL_BATCH: u64 = 500;

/// Rows per `INSERT`: at six values a row, under SQLite's 32,766 bound variables.
const INSERT_ROWS: usize = 1_000;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(KnownWords::Table)
                    .col(word_column(backend, KnownWords::Word).primary_key())
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(TaskWords::Table)
                    .col(ColumnDef::new(TaskWords::TaskId).big_integer().not_null())
                    .col(word_column(backend, TaskWords::Word))
                    .col(instant(backend, TaskWords::CreatedAt).not_null())
                    .col(instant(backend, TaskWords::UpdatedAt).not_null())
                    .col(ColumnDef::new(TaskWords::UrgencyKey).big_integer().not_null())
                    .col(ColumnDef::new(TaskWords::DeadlineKey).big_integer().not_null())
                    .primary_key(Index::create().col(TaskWords::TaskId).col(TaskWords::Word))
                    .foreign_key(
                        ForeignKey::create()
                            .from(TaskWords::Table, TaskWords::TaskId)
                            .to(Tasks::Table, Tasks::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // One index per sort order; each ends in the task id like the sorts themselves.
        for (name, key) in [
            ("idx_task_words_created", TaskWords::CreatedAt),
            ("idx_task_words_updated", TaskWords::UpdatedAt),
            ("idx_task_words_urgency", TaskWords::UrgencyKey),
            ("idx_task_words_deadline", TaskWords::DeadlineKey),
        ] {
            let index = Index::create()
                .name(name)
                .table(TaskWords::Table)
                .col(TaskWords::Word)
                .col(key)
                .col(TaskWords::TaskId)
                .to_owned();
            manager.create_index(index).await?;
        }
        index_task_words(manager.get_connection(), |_| {}).await?;
        drop_full_text_index(manager.get_connection()).await
    }
}

/// A word column. Ranges of words (a prefix search) compare code points whatever the server's
/// default collation, which on MySQL would fold case and accents.
fn word_column(backend: DbBackend, name: impl IntoIden) -> ColumnDef {
    let mut word = ColumnDef::new(name);
    match backend {
        DbBackend::MySql => {
            word.custom(Alias::new(format!("VARCHAR({MAX_WORD_CHARS}) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")))
        }
        _ => word.string_len(MAX_WORD_CHARS as u32),
    };
    word.not_null().to_owned()
}

/// Writes the words of every task that has none yet, a batch of tasks per transaction, and
/// returns how many tasks it indexed, telling `progress` the running count after each batch.
/// The migration fills the table with it; tasks inserted around the application (imports,
/// benchmarks) are indexed by calling it again (`tasklane migrate index-words`).
pub async fn index_task_words<C: ConnectionTrait + TransactionTrait>(
    db: &C,
    mut progress: impl FnMut(u64) + Send,
) -> Result<u64, DbErr> {
    let mut after = 0_i64;
    let mut indexed = 0;
    loop {
        let has_words = Query::select()
            .expr(Expr::val(1))
            .from(TaskWords::Table)
            .and_where(Expr::col((TaskWords::Table, TaskWords::TaskId)).equals((Tasks::Table, Tasks::Id)))
            .to_owned();
        let select = Query::select()
            .columns([Tasks::Id, Tasks::CreatedAt, Tasks::UpdatedAt, Tasks::UrgencyKey, Tasks::DeadlineKey])
            .column(Tasks::SearchText)
            .from(Tasks::Table)
            .and_where(Expr::col((Tasks::Table, Tasks::Id)).gt(after))
            .and_where(Expr::exists(has_words).not())
            .order_by(Tasks::Id, Order::Asc)
            .limit(BACKFILL_BATCH)
            .to_owned();
        let tasks = db.query_all(&select).await?;
        let Some(last) = tasks.last() else { return Ok(indexed) };
        after = last.try_get("", "id")?;
        let txn = db.begin().await?;
        let mut known = std::collections::BTreeSet::new();
        // Rows go out a statement at a time: a batch of long tasks holds millions of words.
        let mut insert = task_words_insert();
        let mut pending = 0;
        for task in &tasks {
            let search_text: String = task.try_get("", "search_text")?;
            for word in words_of(&search_text) {
                let row = [
                    Expr::val(task.try_get::<i64>("", "id")?),
                    Expr::val(word.as_str()),
                    Expr::val(task.try_get::<chrono::NaiveDateTime>("", "created_at")?),
                    Expr::val(task.try_get::<chrono::NaiveDateTime>("", "updated_at")?),
                    Expr::val(task.try_get::<i64>("", "urgency_key")?),
                    Expr::val(task.try_get::<i64>("", "deadline_key")?),
                ];
                insert.values(row).map_err(|e| DbErr::Custom(e.to_string()))?;
                known.insert(word);
                pending += 1;
                if pending == INSERT_ROWS {
                    txn.execute(&insert).await?;
                    insert = task_words_insert();
                    pending = 0;
                }
            }
        }
        if pending > 0 {
            txn.execute(&insert).await?;
        }
        let known: Vec<String> = known.into_iter().collect();
        for chunk in known.chunks(INSERT_ROWS) {
            let mut insert = Query::insert()
                .into_table(KnownWords::Table)
                .columns([KnownWords::Word])
                .on_conflict(OnConflict::column(KnownWords::Word).do_nothing_on([KnownWords::Word]).to_owned())
                .to_owned();
            for word in chunk {
                insert.values([Expr::val(word.as_str())]).map_err(|e| DbErr::Custom(e.to_string()))?;
            }
            txn.execute(&insert).await?;
        }
        txn.commit().await?;
        indexed += tasks.len() as u64;
        progress(indexed);
    }
}

/// An `INSERT` into `task_words` waiting for its rows.
fn task_words_insert() -> InsertStatement {
    Query::insert()
        .into_table(TaskWords::Table)
        .columns([
            TaskWords::TaskId,
            TaskWords::Word,
            TaskWords::CreatedAt,
            TaskWords::UpdatedAt,
            TaskWords::UrgencyKey,
            TaskWords::DeadlineKey,
        ])
        .to_owned()
}

/// Drops the full-text index of migration 7 (and SQLite's triggers that kept it).
async fn drop_full_text_index<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let statements: &[&str] = match db.get_database_backend() {
        DbBackend::MySql => &["DROP INDEX idx_tasks_search ON tasks"],
        _ => &[
            "DROP TRIGGER tasks_search_insert",
            "DROP TRIGGER tasks_search_delete",
            "DROP TRIGGER tasks_search_update",
            "DROP TABLE tasks_search",
        ],
    };
    for statement in statements {
        db.execute_unprepared(statement).await?;
    }
    Ok(())
}
