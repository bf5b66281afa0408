//! Keeps `task_words` in step with `tasks` inside the transaction that writes the task, so a
//! search never sees a task under words or sort keys it no longer has; adds new words to
//! `known_words` just before, and takes out the ones no task holds any more.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tasklane_entity::known_words;
use tasklane_entity::task_words::{self, TaskKeys};

use crate::Result;

/// Rows per `INSERT` (six values each, under SQLite's bound-variable limit).
const INSERT_ROWS: usize = 1_000;

/// How often, at most, a word's `remembered_at` is moved forward: once per word and hour
/// rather than at every write of a common word.
const REFRESH_EVERY: Duration = Duration::hours(1);

/// How long after a word was last remembered it may be pruned: far longer than any task's
/// transaction plus [`REFRESH_EVERY`], so that a word added just before a transaction that
/// writes it is never taken out from under it.
const PRUNE_GRACE: Duration = Duration::days(1);

/// Known words whose tasks are looked for per statement while pruning.
const PRUNE_BATCH: u64 = 1_000;

/// Adds words about to be written to `known_words`, in a statement of its own before the
/// task's transaction: inside it, the rows of common words would stay locked until every
/// concurrent writer's commit. Marks each as remembered `now` unless it was within
/// [`REFRESH_EVERY`]. A task that then fails to be written leaves words no task holds, which
/// searches pass over until [`prune`] takes them out.
pub(super) async fn remember(db: &impl ConnectionTrait, words: &BTreeSet<String>, now: DateTime<Utc>) -> Result<()> {
    let now = crate::stored(now);
    let remembered_at = Expr::col(known_words::Column::RememberedAt);
    let stale = remembered_at.clone().is_null().or(remembered_at.clone().lt(now - REFRESH_EVERY));
    // MySQL has no `WHERE` on its upsert (sea-query leaves it out) and takes the `CASE`;
    // SQLite takes the `WHERE`, which spares it rewriting fresh rows.
    let mut refresh = OnConflict::column(known_words::Column::Word);
    refresh
        .value(known_words::Column::RememberedAt, Expr::case(stale.clone(), now).finally(remembered_at))
        .action_and_where(stale);
    let words: Vec<&String> = words.iter().collect();
    for chunk in words.chunks(INSERT_ROWS) {
        let rows = chunk
            .iter()
            .map(|word| known_words::ActiveModel { word: Set((*word).clone()), remembered_at: Set(Some(now)) });
        known_words::Entity::insert_many(rows).on_conflict(refresh.clone()).exec_without_returning(db).await?;
    }
    Ok(())
}

/// Takes out of `known_words` the words no task holds that were last remembered before
/// [`PRUNE_GRACE`] ago, a batch of words at a time, and returns how many it took out. Safe
/// beside writers and other replicas: each `DELETE` checks both on the rows as they are when it
/// deletes them, and a writer still writing a task remembered its words within the grace.
pub(crate) async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    let before = crate::stored(now - PRUNE_GRACE);
    let held = Query::select()
        .expr(Expr::val(1))
        .from(task_words::Entity)
        .and_where(
            Expr::col((task_words::Entity, task_words::Column::Word))
                .equals((known_words::Entity, known_words::Column::Word)),
        )
        .to_owned();
    let unheld = Condition::all().add(known_words::Column::RememberedAt.lt(before)).add(Expr::exists(held).not());
    let mut after = String::new();
    let mut pruned = 0;
    loop {
        let batch: Vec<String> = known_words::Entity::find()
            .select_only()
            .column(known_words::Column::Word)
            .filter(known_words::Column::Word.gt(after.as_str()))
            .order_by_asc(known_words::Column::Word)
            .limit(PRUNE_BATCH)
            .into_tuple()
            .all(db)
            .await?;
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else { return Ok(pruned) };
        let deleted = known_words::Entity::delete_many()
            .filter(known_words::Column::Word.between(first.as_str(), last.as_str()))
            .filter(unheld.clone())
            .exec(db)
            .await?;
        pruned += deleted.rows_affected;
        after = last.clone();
    }
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
