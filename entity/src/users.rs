//! A person who signs in: member or admin.

use sea_orm::entity::prelude::*;

/// One row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    /// Surrogate key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Normalised (trimmed, lower-case) email address; unique.
    #[sea_orm(unique)]
    pub email: String,
    /// PHC-format argon2id hash.
    pub password_hash: String,
    /// Name shown to teammates.
    pub display_name: String,
    /// `member` or `admin`.
    pub role: String,
    /// A disabled user cannot sign in and their tokens stop working.
    pub disabled: bool,
    /// Notification preferences as JSON (kept opaque at this layer).
    pub notification_prefs: Json,
    /// Bumped to end every session of this user at once.
    pub token_version: i32,
    /// When the account was created.
    pub created_at: DateTime,
    /// When the account last changed.
    pub updated_at: DateTime,
    /// When its current address was shown to be theirs (a verification link, an invitation,
    /// an operator); no email goes to an unverified address when verification is required.
    pub email_verified_at: Option<DateTime>,
}

/// Relations of `users` (none are navigated from here).
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
