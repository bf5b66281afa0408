//! Periodic clean-up of rows that only matter for a while: sign-in counters whose window has
//! passed, expired refresh tokens, sessions that can no longer be used, and known words no
//! task holds any more.

use chrono::Duration;
use sea_orm::sea_query::Query;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use tasklane_entity::{refresh_tokens, sessions};
use tasklane_jobs::Job;

use crate::{AppContext, Result, auth::throttle, queues};

/// Removes expired sign-in counters, refresh tokens and sessions; scheduled on the
/// maintenance queue, so it runs once per period however many replicas there are.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneExpired {
    /// The run's time slot.
    pub slot: i64,
}

impl Job for PruneExpired {
    const KIND: &'static str = "accounts.prune_expired";
    const QUEUE: &'static str = queues::MAINTENANCE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("prune_expired:{}", self.slot))
    }
}

/// Takes the words no task holds any more out of `known_words`, hourly on the maintenance
/// queue (once per period however many replicas there are).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PruneWords {
    /// The run's time slot.
    pub slot: i64,
}

impl Job for PruneWords {
    const KIND: &'static str = "tasks.prune_words";
    const QUEUE: &'static str = queues::MAINTENANCE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("prune_words:{}", self.slot))
    }
}

/// Takes out of `known_words` the words no task holds that were last remembered a grace
/// period (a day) ago or earlier, and returns how many. Safe beside writers and replicas.
pub async fn prune_words(ctx: &AppContext) -> Result<u64> {
    crate::tasks::words::prune(&ctx.db, ctx.clock.now()).await
}

/// What one clean-up removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Sign-in counters.
    pub throttle_rows: u64,
    /// Refresh tokens.
    pub refresh_tokens: u64,
    /// Sessions.
    pub sessions: u64,
}

/// Removes what has expired. Safe to run from several replicas at once.
pub async fn prune(ctx: &AppContext) -> Result<Pruned> {
    let now = crate::stored_now();
    let auth = &ctx.config.auth;
    let throttle_rows = throttle::prune(&ctx.db, now - Duration::seconds(auth.failure_window_secs as i64)).await?;
    let refresh_tokens =
        refresh_tokens::Entity::delete_many().filter(refresh_tokens::Column::ExpiresAt.lt(now)).exec(&ctx.db).await?;
    // A session is dead once revoked, or once it has no refresh token left and its last access
    // token has expired; keeping it would only grow the table.
    let access_lifetime = now - Duration::seconds(auth.access_token_ttl_secs as i64);
    let sessions = sessions::Entity::delete_many()
        .filter(
            Condition::any().add(sessions::Column::RevokedAt.lt(access_lifetime)).add(
                Condition::all().add(sessions::Column::CreatedAt.lt(access_lifetime)).add(
                    sessions::Column::Id.not_in_subquery(
                        Query::select()
                            .column(refresh_tokens::Column::SessionId)
                            .from(refresh_tokens::Entity)
                            .and_where(refresh_tokens::Column::UsedAt.is_null())
                            .to_owned(),
                    ),
                ),
            ),
        )
        .exec(&ctx.db)
        .await?;
    Ok(Pruned { throttle_rows, refresh_tokens: refresh_tokens.rows_affected, sessions: sessions.rows_affected })
}
