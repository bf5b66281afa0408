//! Sessions and refresh-token rotation. A session is one refresh-token family: each refresh
//! token works once and is replaced; presenting a used one revokes the whole family.

use chrono::{Duration, NaiveDateTime};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use tasklane_entity::{refresh_tokens, sessions, users};

use super::tokens::{hash_opaque_token, new_id, new_opaque_token};
use crate::{AppContext, Error, Result};

/// What a successful sign-in or refresh hands the client.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IssuedTokens {
    /// Bearer token for API calls.
    pub access_token: String,
    /// Opaque token to get the next access token; usable once.
    pub refresh_token: String,
    /// Access-token lifetime in seconds.
    pub expires_in: u64,
    /// Always `Bearer`.
    pub token_type: &'static str,
}

/// Starts a new session for `user` and issues its first tokens.
pub async fn start(ctx: &AppContext, user: &users::Model) -> Result<IssuedTokens> {
    let session_id = new_id();
    let now = crate::stored_now();
    let txn = tasklane_jobs::transactions::begin(&ctx.db).await?;
    sessions::Entity::insert(sessions::ActiveModel {
        id: Set(session_id.clone()),
        user_id: Set(user.id),
        created_at: Set(now),
        revoked_at: Set(None),
    })
    .exec_without_returning(&txn)
    .await?;
    let refresh_token = insert_refresh_token(ctx, &txn, &session_id, session_end(ctx, now)).await?;
    txn.commit().await?;
    issue(ctx, user, session_id, refresh_token)
}

/// Exchanges a refresh token for new tokens, detecting reuse.
pub async fn refresh(ctx: &AppContext, presented: &str) -> Result<IssuedTokens> {
    let invalid = || Error::unauthorized("invalid_refresh_token", "the refresh token is not valid; sign in again");
    let hash = hash_opaque_token(presented);
    let now = crate::stored_now();
    let txn = tasklane_jobs::transactions::begin(&ctx.db).await?;
    let token = refresh_tokens::Entity::find_by_id(hash.clone()).one(&txn).await?.ok_or_else(invalid)?;
    let session = sessions::Entity::find_by_id(token.session_id.clone()).one(&txn).await?.ok_or_else(invalid)?;
    if session.revoked_at.is_some() || token.expires_at <= now || session_end(ctx, session.created_at) <= now {
        return Err(invalid());
    }
    // Claim the token atomically: of two concurrent uses only one can flip `used_at`.
    let claimed = refresh_tokens::Entity::update_many()
        .col_expr(refresh_tokens::Column::UsedAt, Expr::value(now))
        .filter(refresh_tokens::Column::TokenHash.eq(hash))
        .filter(refresh_tokens::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    if claimed.rows_affected == 0 {
        revoke(&txn, &session.id).await?;
        txn.commit().await?;
        tracing::warn!(session = %session.id, "refresh token reused; session revoked");
        return Err(Error::unauthorized(
            "refresh_token_reused",
            "this refresh token was already used; the session has been ended for safety",
        ));
    }
    let user = users::Entity::find_by_id(session.user_id).one(&txn).await?.ok_or_else(invalid)?;
    if user.disabled {
        return Err(invalid());
    }
    let refresh_token = insert_refresh_token(ctx, &txn, &session.id, session_end(ctx, session.created_at)).await?;
    txn.commit().await?;
    issue(ctx, &user, session.id, refresh_token)
}

/// Ends one session.
pub async fn revoke(db: &impl ConnectionTrait, session_id: &str) -> Result<()> {
    sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(crate::stored_now()))
        .filter(sessions::Column::Id.eq(session_id))
        .filter(sessions::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Ends every session of a user except `keep`, and with `keep = None` also invalidates every
/// access token already issued by bumping the user's token version.
pub async fn revoke_all(db: &impl ConnectionTrait, user_id: i64, keep: Option<&str>) -> Result<()> {
    let mut update = sessions::Entity::update_many()
        .col_expr(sessions::Column::RevokedAt, Expr::value(crate::stored_now()))
        .filter(sessions::Column::UserId.eq(user_id))
        .filter(sessions::Column::RevokedAt.is_null());
    if let Some(keep) = keep {
        update = update.filter(sessions::Column::Id.ne(keep));
    } else {
        users::Entity::update_many()
            .col_expr(users::Column::TokenVersion, Expr::col(users::Column::TokenVersion).add(1))
            .filter(users::Column::Id.eq(user_id))
            .exec(db)
            .await?;
    }
    update.exec(db).await?;
    Ok(())
}

/// When a session ends however often it is refreshed (`TASKLANE_SESSION_MAX_DAYS` after sign-in).
fn session_end(ctx: &AppContext, started: NaiveDateTime) -> NaiveDateTime {
    started + Duration::days(ctx.config.auth.session_max_days as i64)
}

/// Stores a new refresh token of a session that ends at `session_end`: it expires after the
/// idle lifetime, and never after the session's end.
async fn insert_refresh_token(
    ctx: &AppContext,
    db: &impl ConnectionTrait,
    session_id: &str,
    session_end: NaiveDateTime,
) -> Result<String> {
    let (token, hash) = new_opaque_token();
    let now = crate::stored_now();
    refresh_tokens::Entity::insert(refresh_tokens::ActiveModel {
        token_hash: Set(hash),
        session_id: Set(session_id.to_owned()),
        expires_at: Set(std::cmp::min(
            now + Duration::seconds(ctx.config.auth.refresh_token_ttl_secs as i64),
            session_end,
        )),
        used_at: Set(None),
        created_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(token)
}

fn issue(ctx: &AppContext, user: &users::Model, session_id: String, refresh_token: String) -> Result<IssuedTokens> {
    Ok(IssuedTokens {
        access_token: ctx.tokens.issue(user.id, &session_id, user.token_version)?,
        refresh_token,
        expires_in: ctx.tokens.ttl_secs(),
        token_type: "Bearer",
    })
}
