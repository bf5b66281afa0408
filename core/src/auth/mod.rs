//! Authentication: password hashing, access and refresh tokens, sessions, sign-in throttling,
//! and turning a bearer token into the signed-in [`Principal`].

pub mod password;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use sea_orm::{EntityTrait, FromQueryResult, JoinType, QuerySelect, RelationTrait};
use serde::Serialize;
use tasklane_entity::{sessions as session_rows, users};

use crate::{AppContext, Error, Result};

/// A user's role in the deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A team member.
    Member,
    /// May do anything, including operator work.
    Admin,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }

    /// Reads the stored spelling; anything unknown is the least privileged role.
    pub fn from_stored(value: &str) -> Self {
        if value == "admin" { Self::Admin } else { Self::Member }
    }
}

/// The signed-in user a request acts for.
#[derive(Clone, Debug)]
pub struct Principal {
    /// User id.
    pub user_id: i64,
    /// Their email.
    pub email: String,
    /// Their role.
    pub role: Role,
    /// The session the access token belongs to.
    pub session_id: String,
}

impl Principal {
    /// True for admins.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

/// What [`authenticate`] reads of a session and its user: only the columns it checks.
#[derive(FromQueryResult)]
struct LiveSession {
    user_id: i64,
    email: String,
    role: String,
    disabled: bool,
    token_version: i32,
    revoked_at: Option<chrono::NaiveDateTime>,
}

/// Checks an access token: signature, claims, and that its user and session are still live.
pub async fn authenticate(ctx: &AppContext, bearer: &str) -> Result<Principal> {
    let claims = ctx.tokens.verify(bearer)?;
    let revoked = || Error::unauthorized("token_revoked", "this token is no longer valid; sign in again");
    let user_id: i64 = claims.sub.parse().map_err(|_| revoked())?;
    // One round trip on every request: the session and its user together, only what is checked.
    let live = session_rows::Entity::find_by_id(claims.sid.clone())
        .select_only()
        .column(session_rows::Column::RevokedAt)
        .join(JoinType::InnerJoin, session_rows::Relation::User.def())
        .column_as(users::Column::Id, "user_id")
        .columns([users::Column::Email, users::Column::Role, users::Column::Disabled, users::Column::TokenVersion])
        .into_model::<LiveSession>()
        .one(&ctx.reads)
        .await?
        .ok_or_else(revoked)?;
    if live.disabled || live.token_version != claims.ver || live.revoked_at.is_some() || live.user_id != user_id {
        return Err(revoked());
    }
    Ok(Principal { user_id, email: live.email, role: Role::from_stored(&live.role), session_id: claims.sid })
}
