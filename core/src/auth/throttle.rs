//! Failed sign-in counting per account and per client address. The counters live in the
//! database so every API replica sees the same ones.

use chrono::{Duration, NaiveDateTime};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tasklane_entity::sign_in_throttle::{ActiveModel, Column, Entity};

use crate::config::AuthConfig;
use crate::{Error, Result};

/// The counters one sign-in attempt is charged to.
pub struct ThrottleKeys {
    account: String,
    address: Option<String>,
}

impl ThrottleKeys {
    /// Keys for a (normalised) email and, when known, the client address.
    pub fn new(email: &str, address: Option<std::net::IpAddr>) -> Self {
        Self { account: format!("account:{email}"), address: address.map(|ip| format!("address:{ip}")) }
    }

    fn with_limits<'a>(&'a self, config: &AuthConfig) -> impl Iterator<Item = (&'a str, u32)> {
        std::iter::once((self.account.as_str(), config.max_failures_per_account))
            .chain(self.address.as_deref().map(|key| (key, config.max_failures_per_address)))
    }
}

/// Answers 429 with the wait when either counter is at its limit within the window.
pub async fn check(db: &impl ConnectionTrait, config: &AuthConfig, keys: &ThrottleKeys) -> Result<()> {
    let now = crate::stored_now();
    let window = window(config);
    let ids: Vec<&str> = keys.with_limits(config).map(|(key, _)| key).collect();
    let rows = Entity::find().filter(Column::Key.is_in(ids)).all(db).await?;
    let mut wait = 0i64;
    for (key, limit) in keys.with_limits(config) {
        if let Some(row) = rows.iter().find(|row| row.key == key) {
            let resets_at = row.window_started_at + window;
            if resets_at > now && row.failures >= limit as i32 {
                wait = std::cmp::max(wait, (resets_at - now).num_seconds() + 1);
            }
        }
    }
    if wait > 0 {
        return Err(Error::too_many_requests(wait as u64));
    }
    Ok(())
}

/// Counts one failed attempt against every key, starting a new window where the old one ended.
pub async fn record_failure(db: &impl ConnectionTrait, config: &AuthConfig, keys: &ThrottleKeys) -> Result<()> {
    let now = crate::stored_now();
    let window_start_cutoff = now - window(config);
    for (key, _) in keys.with_limits(config) {
        // Restart an expired window first, then count; the upsert makes concurrent first
        // failures from several replicas add up instead of colliding.
        Entity::update_many()
            .col_expr(Column::Failures, Expr::value(0))
            .col_expr(Column::WindowStartedAt, Expr::value(now))
            .filter(Column::Key.eq(key))
            .filter(Column::WindowStartedAt.lt(window_start_cutoff))
            .exec(db)
            .await?;
        let row = ActiveModel { key: Set(key.to_owned()), failures: Set(1), window_started_at: Set(now) };
        Entity::insert(row)
            .on_conflict(
                OnConflict::column(Column::Key).value(Column::Failures, Expr::col(Column::Failures).add(1)).to_owned(),
            )
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// Forgets the account's failures after a successful sign-in (the address keeps its count).
pub async fn clear_account(db: &impl ConnectionTrait, keys: &ThrottleKeys) -> Result<()> {
    Entity::delete_by_id(keys.account.clone()).exec(db).await?;
    Ok(())
}

fn window(config: &AuthConfig) -> Duration {
    Duration::seconds(config.failure_window_secs as i64)
}

/// Drops counters whose window ended before `before` (housekeeping).
pub async fn prune(db: &impl ConnectionTrait, before: NaiveDateTime) -> Result<u64> {
    let result = Entity::delete_many().filter(Column::WindowStartedAt.lt(before)).exec(db).await?;
    Ok(result.rows_affected)
}
