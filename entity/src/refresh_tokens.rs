//! Opaque refresh tokens, stored only as SHA-256 hashes; each is usable once.

use sea_orm::entity::prelude::*;

/// One row of `refresh_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "refresh_tokens")]
pub struct Model {
    /// Hex SHA-256 of the token the client holds.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    /// The session (token family) it belongs to.
    pub session_id: String,
    /// When it stops being accepted.
    pub expires_at: DateTime,
    /// Set when it was exchanged; a second use revokes the session.
    pub used_at: Option<DateTime>,
    /// When it was issued.
    pub created_at: DateTime,
}

/// Relations of `refresh_tokens` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
