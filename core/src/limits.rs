//! Rate limits on writes and sends, counted in the database so every replica shares them:
//! fixed windows, one row per key (the table the sign-in allowances use too).
//!
//! A limit answers 429 with `Retry-After` (the time left in its window). Each check is one
//! upsert and one read; refused requests count too, which only matters to whoever keeps
//! knocking.

use chrono::{Duration, NaiveDateTime};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tasklane_entity::sign_in_throttle::{ActiveModel, Column, Entity};

use crate::{AppContext, Error, Result};

/// Counts one request against `key` (at most `max` per `window`), or answers 429.
pub async fn take(db: &impl ConnectionTrait, key: &str, max: u32, window: Duration) -> Result<()> {
    use sea_orm::sea_query::ExprTrait;
    let now = crate::stored_now();
    let expired = now - window;
    // Counted first, then the window moved: MySQL applies the assignments in order, so the
    // count must read the window as it was.
    let restart = |fresh: Expr, counted: Expr| -> Expr {
        Expr::case(Expr::col(Column::WindowStartedAt).lt(expired), fresh).finally(counted).into()
    };
    Entity::insert(ActiveModel { key: Set(key.to_owned()), failures: Set(1), window_started_at: Set(now) })
        .on_conflict(
            OnConflict::column(Column::Key)
                .value(Column::Failures, restart(Expr::value(1), Expr::col(Column::Failures).add(1)))
                .value(Column::WindowStartedAt, restart(Expr::value(now), Expr::col(Column::WindowStartedAt)))
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    let Some(row) = Entity::find().filter(Column::Key.eq(key)).one(db).await? else { return Ok(()) };
    if row.failures <= max as i32 {
        return Ok(());
    }
    Err(Error::too_many_requests(wait(row.window_started_at + window, now)))
}

/// Seconds from `now` until `resets_at`, at least one.
pub(crate) fn wait(resets_at: NaiveDateTime, now: NaiveDateTime) -> u64 {
    std::cmp::max((resets_at - now).num_seconds() + 1, 1) as u64
}

/// Sign-ups from one client address (`TASKLANE_LIMIT_SIGNUPS_PER_HOUR`).
pub async fn sign_up(ctx: &AppContext, client: Option<std::net::IpAddr>) -> Result<()> {
    let Some(address) = client else { return Ok(()) };
    let max = ctx.config.limits.signups_per_hour;
    take(&ctx.db, &format!("signup:{address}"), max, Duration::hours(1)).await
}

/// Task writes by one user (`TASKLANE_LIMIT_TASK_WRITES_PER_MINUTE`).
pub async fn task_write(ctx: &AppContext, user_id: i64) -> Result<()> {
    let max = ctx.config.limits.task_writes_per_minute;
    take(&ctx.db, &format!("writes:{user_id}"), max, Duration::minutes(1)).await
}

/// Verification links asked for by one user: a few an hour.
pub async fn verification_mail(ctx: &AppContext, user_id: i64) -> Result<()> {
    take(&ctx.db, &format!("verify:{user_id}"), 5, Duration::hours(1)).await
}
