//! Authentication: password hashing, access and refresh tokens, sessions, sign-in throttling,
//! and turning a bearer token into the signed-in [`Principal`].

pub mod password;
pub mod sessions;
pub mod throttle;
pub mod tokens;

use sea_orm::EntityTrait;
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

/// Checks an access token: signature, claims, and that its user and session are still live.
pub async fn authenticate(ctx: &AppContext, bearer: &str) -> Result<Principal> {
    let claims = ctx.tokens.verify(bearer)?;
    let revoked = || Error::unauthorized("token_revoked", "this token is no longer valid; sign in again");
    let user_id: i64 = claims.sub.parse().map_err(|_| revoked())?;
    // One round trip: the session and its user together.
    let (session, user) = session_rows::Entity::find_by_id(claims.sid.clone())
        .find_also_related(users::Entity)
        .one(&ctx.db)
        .await?
        .ok_or_else(revoked)?;
    let user = user.ok_or_else(revoked)?;
    if user.disabled || user.token_version != claims.ver || session.revoked_at.is_some() || user.id != user_id {
        return Err(revoked());
    }
    Ok(Principal { user_id: user.id, email: user.email, role: Role::from_stored(&user.role), session_id: session.id })
}
