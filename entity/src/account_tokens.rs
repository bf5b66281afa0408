//! Single-use account tokens, stored only as SHA-256 hashes: email verification links and
//! invitations.

use sea_orm::entity::prelude::*;

/// One row of `account_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "account_tokens")]
pub struct Model {
    /// Hex SHA-256 of the token the link carries.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// `verify_email` or `invitation`.
    pub purpose: String,
    /// The address it is for: the one being verified, or the one invited.
    pub email: String,
    /// The account being verified (verification links); the token dies with it.
    pub user_id: Option<i64>,
    /// The admin who invited (invitations).
    pub created_by: Option<i64>,
    /// The role the invitee gets (invitations).
    pub role: Option<String>,
    /// When it was made.
    pub created_at: DateTime,
    /// When it stops being accepted.
    pub expires_at: DateTime,
    /// When it was used; a used token is never accepted again.
    pub used_at: Option<DateTime>,
}

/// Relations of `account_tokens` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
