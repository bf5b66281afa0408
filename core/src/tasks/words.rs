//! Keeps `task_words` in step with `tasks` inside the transaction that writes the task, so a
//! search never sees a task under words or sort keys it no longer has; and adds new words to
//! `known_words` just before.

use std::collections::BTreeSet;

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tasklane_entity::known_words;
use tasklane_entity::task_words::{self, TaskKeys};

use crate::Result;

/// Rows per `INSERT` (six values each, under SQLite's bound-variable limit).
const INSERT_ROWS: usize = 1_000;

/// Adds words about to be written to `known_words`, in a statement of its own before the
/// task's transaction: inside it, the rows of common words would stay locked until every
/// concurrent writer's commit. A task that then fails to be written leaves words no task
/// holds, which searches pass over.
pub(super) async fn remember(db: &impl ConnectionTrait, words: &BTreeSet<String>) -> Result<()> {
    let words: Vec<&String> = words.iter().collect();
    for chunk in words.chunks(INSERT_ROWS) {
        let rows = chunk.iter().map(|word| known_words::ActiveModel { word: Set((*word).clone()) });
        known_words::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::column(known_words::Column::Word).do_nothing_on([known_words::Column::Word]).to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Writes the words of a new task.
pub(super) async fn insert(
    db: &impl ConnectionTrait,
    task_id: i64,
    words: &BTreeSet<String>,
    keys: TaskKeys,
) -> Result<()> {
    let rows = task_words::rows_of(task_id, words, keys);
    for chunk in rows.chunks(INSERT_ROWS) {
        task_words::Entity::insert_many(chunk.to_vec()).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Brings an edited task's words in step: rewritten when its text changed, otherwise only
/// the sort keys they carry (every edit moves `updated_at`).
pub(super) async fn update(
    db: &impl ConnectionTrait,
    task_id: i64,
    old_text: &str,
    new_text: &str,
    keys: TaskKeys,
) -> Result<()> {
    if old_text != new_text {
        task_words::Entity::delete_many().filter(task_words::Column::TaskId.eq(task_id)).exec(db).await?;
        return insert(db, task_id, &task_words::words_of(new_text), keys).await;
    }
    task_words::Entity::update_many()
        .col_expr(task_words::Column::UpdatedAt, Expr::value(keys.updated_at))
        .col_expr(task_words::Column::UrgencyKey, Expr::value(keys.urgency_key))
        .col_expr(task_words::Column::DeadlineKey, Expr::value(keys.deadline_key))
        .filter(task_words::Column::TaskId.eq(task_id))
        .exec(db)
        .await?;
    Ok(())
}
