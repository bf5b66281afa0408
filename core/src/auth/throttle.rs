//! Password checks under brute-force protection, shared by every API replica through the
//! database.
//!
//! Each attempt is counted *before* its password is verified, against two hard limits within
//! the window: per (account, client address) and per client address. A slot is taken with one
//! conditional update (`failures < limit`), so a burst of parallel guesses gets no more checks
//! than the limit, and the rest are refused with 429. A success gives its slots back.
//! Failures per account from any address are counted too, but they only slow further checks
//! (a delay doubling per failure over the limit, capped), never block them: a stranger can
//! make the owner wait a few seconds, not lock them out.

use std::net::IpAddr;

use chrono::{Duration, NaiveDateTime};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use tasklane_entity::sign_in_throttle::{ActiveModel, Column, Entity};

use super::password::Password;
use crate::config::AuthConfig;
use crate::{AppContext, Error, Result};

/// The longest a password check is held back for an account under attack.
const MAX_ACCOUNT_DELAY_SECS: u64 = 16;

/// The counters one attempt is charged to. Keys hold digests, so the table never stores the
/// addresses people typed (nor grows with an over-long one).
struct Counters {
    /// This account from this address: the hard per-account limit.
    pair: String,
    /// This address, whatever the account: the hard per-address limit.
    address: Option<String>,
    /// This account from anywhere: the progressive delay.
    account: String,
}

impl Counters {
    fn new(email: &str, client: Option<IpAddr>) -> Self {
        let email = email.trim().to_lowercase();
        let client_text = client.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        Self {
            pair: format!("pair:{}", super::tokens::hash_opaque_token(&format!("{email}\n{client_text}"))),
            address: client.map(|ip| format!("address:{ip}")),
            account: format!("account:{}", super::tokens::hash_opaque_token(&email)),
        }
    }

    /// The counters with a hard limit, and their limits.
    fn limited(&self, config: &AuthConfig) -> Vec<(&str, u32)> {
        std::iter::once((self.pair.as_str(), config.max_failures_per_account))
            .chain(self.address.as_deref().map(|key| (key, config.max_failures_per_address)))
            .collect()
    }
}

/// Verifies `password` against `stored` (none: an unknown account, which fails the same way)
/// for the account `email`, as asked from `client`. Answers 429 with `Retry-After` instead of
/// checking once the account or the address has used up its attempts.
pub async fn check_password(
    ctx: &AppContext,
    email: &str,
    client: Option<IpAddr>,
    password: &Password,
    stored: Option<String>,
) -> Result<bool> {
    let config = &ctx.config.auth;
    let counters = Counters::new(email, client);
    let limited = counters.limited(config);
    let mut reserved = Vec::with_capacity(limited.len());
    for (key, limit) in &limited {
        if let Err(refused) = reserve(&ctx.db, config, key, *limit).await {
            release(&ctx.db, &reserved).await?;
            return Err(refused);
        }
        reserved.push(*key);
    }
    let delay = account_delay(&ctx.db, config, &counters.account).await;
    let verified = async {
        tokio::time::sleep(delay?).await;
        ctx.passwords.verify(password, stored).await
    }
    .await;
    match verified {
        Ok(true) => {
            let cleared = [counters.pair.as_str(), counters.account.as_str()];
            Entity::delete_many().filter(Column::Key.is_in(cleared)).exec(&ctx.db).await?;
            release(&ctx.db, &reserved[1..]).await?;
            Ok(true)
        }
        Ok(false) => {
            count_failure(&ctx.db, config, &counters.account).await?;
            Ok(false)
        }
        Err(err) => {
            release(&ctx.db, &reserved).await?;
            Err(err)
        }
    }
}

/// Takes one attempt from `key`'s allowance, or answers 429 with the time until its window ends.
async fn reserve(db: &impl ConnectionTrait, config: &AuthConfig, key: &str, limit: u32) -> Result<()> {
    use sea_orm::sea_query::ExprTrait;
    let now = crate::stored_now();
    restart_if_expired(db, config, key, now).await?;
    Entity::insert(ActiveModel { key: Set(key.to_owned()), failures: Set(0), window_started_at: Set(now) })
        .on_conflict(OnConflict::column(Column::Key).do_nothing_on([Column::Key]).to_owned())
        .exec_without_returning(db)
        .await?;
    // One conditional update: of N parallel attempts, only `limit` can succeed.
    let taken = Entity::update_many()
        .col_expr(Column::Failures, Expr::col(Column::Failures).add(1))
        .filter(Column::Key.eq(key))
        .filter(Column::Failures.lt(limit as i32))
        .exec(db)
        .await?;
    if taken.rows_affected == 1 {
        return Ok(());
    }
    let resets_at = Entity::find_by_id(key.to_owned()).one(db).await?.map(|row| row.window_started_at + window(config));
    Err(Error::too_many_requests(resets_at.map_or(1, |at| crate::limits::wait(at, now))))
}

/// Gives reserved attempts back (a success, or a check that could not run).
async fn release(db: &impl ConnectionTrait, keys: &[&str]) -> Result<()> {
    use sea_orm::sea_query::ExprTrait;
    if keys.is_empty() {
        return Ok(());
    }
    Entity::update_many()
        .col_expr(Column::Failures, Expr::col(Column::Failures).sub(1))
        .filter(Column::Key.is_in(keys.iter().copied()))
        .filter(Column::Failures.gt(0))
        .exec(db)
        .await?;
    Ok(())
}

/// Counts a failure against the account from any address.
async fn count_failure(db: &impl ConnectionTrait, config: &AuthConfig, key: &str) -> Result<()> {
    use sea_orm::sea_query::ExprTrait;
    let now = crate::stored_now();
    restart_if_expired(db, config, key, now).await?;
    // An upsert, so concurrent first failures from several replicas add up.
    Entity::insert(ActiveModel { key: Set(key.to_owned()), failures: Set(1), window_started_at: Set(now) })
        .on_conflict(
            OnConflict::column(Column::Key).value(Column::Failures, Expr::col(Column::Failures).add(1)).to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// How long to hold a check back: nothing up to the per-account limit of failures in the
/// window, then 1 s doubling per further failure, up to [`MAX_ACCOUNT_DELAY_SECS`].
async fn account_delay(db: &impl ConnectionTrait, config: &AuthConfig, key: &str) -> Result<std::time::Duration> {
    let cutoff = crate::stored_now() - window(config);
    let failures = Entity::find_by_id(key.to_owned())
        .one(db)
        .await?
        .filter(|row| row.window_started_at >= cutoff)
        .map_or(0, |row| std::cmp::max(row.failures, 0) as u32);
    Ok(std::time::Duration::from_secs(delay_secs(failures, config.max_failures_per_account)))
}

fn delay_secs(failures: u32, limit: u32) -> u64 {
    match failures.checked_sub(limit) {
        None => 0,
        Some(over) => 1u64.checked_shl(over).unwrap_or(u64::MAX).min(MAX_ACCOUNT_DELAY_SECS),
    }
}

/// Starts a new window for `key` when its current one has ended.
async fn restart_if_expired(
    db: &impl ConnectionTrait,
    config: &AuthConfig,
    key: &str,
    now: NaiveDateTime,
) -> Result<()> {
    Entity::update_many()
        .col_expr(Column::Failures, Expr::value(0))
        .col_expr(Column::WindowStartedAt, Expr::value(now))
        .filter(Column::Key.eq(key))
        .filter(Column::WindowStartedAt.lt(now - window(config)))
        .exec(db)
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_starts_at_the_limit_and_doubles_up_to_its_cap() {
        let delays: Vec<u64> = (3..12).map(|failures| delay_secs(failures, 5)).collect();
        assert_eq!(delays, [0, 0, 1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(delay_secs(u32::MAX, 5), MAX_ACCOUNT_DELAY_SECS);
    }

    #[test]
    fn counters_hold_digests_not_addresses() {
        let long = format!("{}@example.com", "x".repeat(5000));
        let counters = Counters::new(&long, Some("2001:db8::1".parse().unwrap()));
        assert!(counters.pair.len() < 80 && counters.account.len() < 80);
        assert!(!counters.account.contains("example.com"));
        // The same account however it was typed.
        assert_eq!(Counters::new(" Kim@Example.com", None).account, Counters::new("kim@example.com", None).account);
    }
}
