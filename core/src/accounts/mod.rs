//! Accounts: sign-up, sign-in, profiles, deletion, and the operator's user management.

pub mod joining;

use std::net::IpAddr;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tasklane_entity::users;

use crate::auth::password::Password;
use crate::auth::sessions::{self, IssuedTokens};
use crate::auth::{Principal, Role, throttle};
use crate::error::is_unique_violation;
use crate::notify::prefs::NotificationPrefs;
use crate::{AppContext, Error, Result};

/// A syntactically plausible email address, trimmed and lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

/// The longest email address accepted (RFC 5321's path limit less its brackets).
pub const MAX_EMAIL_LEN: usize = 254;

impl Email {
    /// Accepts `local@domain.tld` of at most [`MAX_EMAIL_LEN`] characters, without spaces.
    pub fn parse(raw: &str) -> Result<Self> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= MAX_EMAIL_LEN
            && !email.chars().any(char::is_whitespace)
            && match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && !domain.contains('@')
                        && domain.contains('.')
                        && !domain.starts_with('.')
                        && !domain.ends_with('.')
                }
                None => false,
            };
        if valid {
            Ok(Self(email))
        } else {
            Err(Error::invalid("invalid_email", format!("'{}' is not a valid email address", raw.trim())))
        }
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A display name: 1 to 100 characters after trimming.
#[derive(Clone, Debug)]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims and length-checks.
    pub fn parse(raw: &str) -> Result<Self> {
        let name = raw.trim();
        let length = name.chars().count();
        // A display name goes into email headers (`To`): one line, no control characters.
        if (1..=100).contains(&length) && !name.chars().any(char::is_control) {
            Ok(Self(name.to_owned()))
        } else {
            Err(Error::invalid("invalid_display_name", "display_name must be 1 to 100 characters on one line"))
        }
    }
}

/// A user as shown to themselves and to operators.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Profile {
    /// User id.
    pub id: i64,
    /// Email address.
    pub email: String,
    /// Display name.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Whether the account is disabled.
    pub disabled: bool,
    /// Notification preferences.
    pub notification_prefs: NotificationPrefs,
    /// When the account was created.
    pub created_at: chrono::DateTime<Utc>,
    /// When it last changed.
    pub updated_at: chrono::DateTime<Utc>,
}

impl From<users::Model> for Profile {
    fn from(user: users::Model) -> Self {
        Self {
            id: user.id,
            role: Role::from_stored(&user.role),
            email: user.email,
            display_name: user.display_name,
            disabled: user.disabled,
            notification_prefs: NotificationPrefs::from_stored(&user.notification_prefs),
            created_at: user.created_at.and_utc(),
            updated_at: user.updated_at.and_utc(),
        }
    }
}

/// A teammate as listed for choosing a PIC or supervisor.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct Teammate {
    /// User id.
    pub id: i64,
    /// Email address.
    pub email: String,
    /// Display name.
    pub display_name: String,
}

/// `POST /api/sign_up` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUp {
    /// Email address (used to sign in).
    pub email: String,
    /// 8 to 128 characters.
    #[schema(value_type = String)]
    pub password: SecretString,
    /// Name shown to teammates.
    pub display_name: String,
    /// The token of an admin's invitation to this address (needed when sign-up is by
    /// invitation).
    pub invitation: Option<String>,
}

/// What a sign-up leads to.
#[derive(Debug)]
pub enum Joined {
    /// The account, ready to sign in with.
    Account(Profile),
    /// "Check your email": the address gets a verification link, or, when it already has an
    /// account, a note telling its owner so. Both look the same to the caller, so sign-up
    /// does not reveal who has an account.
    CheckEmail,
}

/// `POST /api/sign_in` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Email address.
    pub email: String,
    /// Password.
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// `PATCH /api/users/me` body; every field is optional.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChange {
    /// New display name.
    pub display_name: Option<String>,
    /// New notification preferences (replace the old ones; omitted fields take their defaults).
    #[schema(value_type = Option<NotificationPrefs>)]
    pub notification_prefs: Option<serde_json::Value>,
    /// New email; needs `current_password`.
    pub email: Option<String>,
    /// New password; needs `current_password`. Ends every other session.
    #[schema(value_type = Option<String>)]
    pub password: Option<SecretString>,
    /// The current password, required to change email or password.
    #[schema(value_type = Option<String>)]
    pub current_password: Option<SecretString>,
}

/// `DELETE /api/users/me` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountDeletion {
    /// The current password.
    #[schema(value_type = String)]
    pub password: SecretString,
}

/// Creates an account, as the sign-up policy allows: an invitation for this address works
/// in every mode but `closed`; without one the mode decides.
pub async fn sign_up(ctx: &AppContext, input: SignUp) -> Result<Joined> {
    let email = Email::parse(&input.email)?;
    let password = Password::parse(input.password.expose_secret().to_owned())?;
    let display_name = DisplayName::parse(&input.display_name)?;
    if input.invitation.is_none() {
        joining::admits(ctx, &email)?;
    }
    // Hashed before the address is looked at, so a taken one answers as slowly as a new one.
    let hash = ctx.passwords.hash(&password).await?;
    let verification = ctx.config.accounts.email_verification;
    let txn = tasklane_jobs::transactions::begin(&ctx.db).await?;
    let role = match &input.invitation {
        Some(token) => Some(joining::accept_invitation(ctx, &txn, token, &email).await?),
        None => None,
    };
    // An invitation reached the address, which proves it.
    let verified = role.is_some() || !verification;
    match insert_user(&txn, &email, hash, &display_name, role.unwrap_or(Role::Member), verified).await {
        Ok(user) => {
            txn.commit().await?;
            if verified {
                return Ok(Joined::Account(user.into()));
            }
            let mail = joining::verification_mail(ctx, &user).await?;
            joining::enqueue(ctx, mail.into_iter().collect()).await?;
            Ok(Joined::CheckEmail)
        }
        Err(err) if err.kind() == Some(crate::error::ErrorKind::Conflict) && verification && role.is_none() => {
            drop(txn);
            let link = format!("{}/sign-in", ctx.config.notify.public_url);
            let note = crate::notify::email::AccountMail {
                to: email.as_str().to_owned(),
                language: Default::default(),
                message: crate::notify::model::AccountMessage::AlreadyRegistered { link },
            };
            joining::enqueue(ctx, vec![note]).await?;
            Ok(Joined::CheckEmail)
        }
        Err(err) => Err(err),
    }
}

/// Creates an account with the given role for an operator; its address counts as verified.
pub async fn create_user(
    ctx: &AppContext,
    email: &Email,
    password: &Password,
    display_name: &DisplayName,
    role: Role,
) -> Result<Profile> {
    let hash = ctx.passwords.hash(password).await?;
    Ok(insert_user(&ctx.db, email, hash, display_name, role, true).await?.into())
}

async fn insert_user(
    db: &impl sea_orm::ConnectionTrait,
    email: &Email,
    password_hash: String,
    display_name: &DisplayName,
    role: Role,
    verified: bool,
) -> Result<users::Model> {
    let now = crate::stored_now();
    let user = users::ActiveModel {
        email: Set(email.as_str().to_owned()),
        password_hash: Set(password_hash),
        display_name: Set(display_name.0.clone()),
        role: Set(role.as_str().to_owned()),
        disabled: Set(false),
        notification_prefs: Set(serde_json::json!({})),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        email_verified_at: Set(verified.then_some(now)),
        ..Default::default()
    };
    match user.insert(db).await {
        Ok(user) => Ok(user),
        Err(err) if is_unique_violation(&err) => Err(email_taken()),
        Err(err) => Err(err.into()),
    }
}

fn email_taken() -> Error {
    Error::conflict("email_taken", "an account with this email already exists")
}

/// Signs in. An unknown email and a wrong password get the same answer in about the same time;
/// attempts are limited per account and client address (see [`throttle`]).
pub async fn sign_in(ctx: &AppContext, input: SignIn, client: Option<IpAddr>) -> Result<(String, IssuedTokens)> {
    let email = input.email.trim().to_lowercase();
    // An address longer than any stored one cannot match; looking it up would only make
    // MySQL complain about the column's length.
    let user = if email.len() <= MAX_EMAIL_LEN {
        users::Entity::find().filter(users::Column::Email.eq(&email)).one(&ctx.db).await?
    } else {
        None
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let matches = throttle::check_password(
        ctx,
        &email,
        client,
        &Password::offered(input.password.expose_secret().to_owned()),
        stored,
    )
    .await?;
    let user = match user {
        Some(user) if matches => user,
        _ => return Err(Error::unauthorized("invalid_credentials", "email or password is incorrect")),
    };
    if user.disabled {
        return Err(Error::forbidden("this account is disabled"));
    }
    let tokens = sessions::start(ctx, &user).await?;
    Ok((user.email, tokens))
}

/// Checks the signed-in user's current password before a sensitive change, under the same
/// limits as sign-in.
async fn confirm_password(
    ctx: &AppContext,
    user: &users::Model,
    client: Option<IpAddr>,
    offered: &SecretString,
) -> Result<()> {
    let stored = Some(user.password_hash.clone());
    let offered = Password::offered(offered.expose_secret().to_owned());
    if throttle::check_password(ctx, &user.email, client, &offered, stored).await? {
        Ok(())
    } else {
        Err(Error::forbidden("the current password is incorrect"))
    }
}

async fn load(ctx: &AppContext, user_id: i64) -> Result<users::Model> {
    users::Entity::find_by_id(user_id).one(&ctx.db).await?.ok_or_else(|| Error::not_found("no such user"))
}

/// The signed-in user's profile.
pub async fn profile(ctx: &AppContext, who: &Principal) -> Result<Profile> {
    Ok(load(ctx, who.user_id).await?.into())
}

/// Applies a profile change; email and password changes need the current password, and a
/// password change ends every other session of the user.
pub async fn update_profile(
    ctx: &AppContext,
    who: &Principal,
    client: Option<IpAddr>,
    change: ProfileChange,
) -> Result<Profile> {
    let user = load(ctx, who.user_id).await?;
    let sensitive = change.email.is_some() || change.password.is_some();
    if sensitive {
        let current = change.current_password.as_ref().ok_or_else(|| {
            Error::invalid("current_password_required", "changing email or password needs current_password")
        })?;
        confirm_password(ctx, &user, client, current).await?;
    }
    let new_hash = match change.password {
        Some(password) => Some(ctx.passwords.hash(&Password::parse(password.expose_secret().to_owned())?).await?),
        None => None,
    };
    let old_email = user.email.clone();
    let mut row = user.into_active_model();
    if let Some(name) = change.display_name {
        row.display_name = Set(DisplayName::parse(&name)?.0);
    }
    if let Some(prefs) = change.notification_prefs {
        let prefs = NotificationPrefs::parse(prefs)?;
        row.notification_prefs = Set(serde_json::to_value(prefs).map_err(anyhow::Error::from)?);
    }
    let new_email = change.email.map(|email| Email::parse(&email)).transpose()?.filter(|email| email.0 != old_email);
    if let Some(email) = &new_email {
        row.email = Set(email.0.clone());
        // A new address is unverified until its link is followed (when verification is on).
        let verified_now = (!ctx.config.accounts.email_verification).then(crate::stored_now);
        row.email_verified_at = Set(verified_now);
    }
    let password_changed = new_hash.is_some();
    if let Some(hash) = new_hash {
        row.password_hash = Set(hash);
    }
    row.updated_at = Set(crate::stored_now());
    let txn = tasklane_jobs::transactions::begin(&ctx.db).await?;
    let updated = match row.update(&txn).await {
        Ok(user) => user,
        Err(err) if is_unique_violation(&err) => return Err(email_taken()),
        Err(err) => return Err(err.into()),
    };
    if password_changed || new_email.is_some() {
        sessions::revoke_all(&txn, who.user_id, Some(&who.session_id)).await?;
    }
    txn.commit().await?;
    if let Some(email) = new_email {
        // The old address hears of it, in case the change was not its owner's doing.
        let language = NotificationPrefs::from_stored(&updated.notification_prefs).language;
        let notice = crate::notify::email::AccountMail {
            to: old_email,
            language,
            message: crate::notify::model::AccountMessage::EmailChanged { new_email: email.0 },
        };
        let verify = joining::verification_mail(ctx, &updated).await?;
        joining::enqueue(ctx, std::iter::once(notice).chain(verify).collect()).await?;
    }
    Ok(updated.into())
}

/// Deletes the signed-in user's account after checking their password.
pub async fn delete_own_account(
    ctx: &AppContext,
    who: &Principal,
    client: Option<IpAddr>,
    input: AccountDeletion,
) -> Result<()> {
    let user = load(ctx, who.user_id).await?;
    confirm_password(ctx, &user, client, &input.password).await?;
    delete_user(ctx, who.user_id).await
}

/// Removes a user and their personal data. Their tasks stay, with references set to null
/// (foreign keys do that), and every token of theirs stops working with the row.
pub async fn delete_user(ctx: &AppContext, user_id: i64) -> Result<()> {
    let result = users::Entity::delete_by_id(user_id).exec(&ctx.db).await?;
    if result.rows_affected == 0 {
        return Err(Error::not_found("no such user"));
    }
    Ok(())
}

/// Everyone who can be picked as a PIC or supervisor.
pub async fn teammates(ctx: &AppContext) -> Result<Vec<Teammate>> {
    let users = users::Entity::find()
        .filter(users::Column::Disabled.eq(false))
        .order_by_asc(users::Column::Id)
        .all(&ctx.db)
        .await?;
    Ok(users.into_iter().map(|u| Teammate { id: u.id, email: u.email, display_name: u.display_name }).collect())
}

/// Every user, for operators.
pub async fn all_users(ctx: &AppContext) -> Result<Vec<Profile>> {
    let users = users::Entity::find().order_by_asc(users::Column::Id).all(&ctx.db).await?;
    Ok(users.into_iter().map(Profile::from).collect())
}

/// Finds a user by id or email (as an operator types it).
pub async fn find_user(ctx: &AppContext, id_or_email: &str) -> Result<users::Model> {
    let query = users::Entity::find();
    let query = match id_or_email.trim().parse::<i64>() {
        Ok(id) => query.filter(users::Column::Id.eq(id)),
        Err(_) => query.filter(users::Column::Email.eq(id_or_email.trim().to_lowercase())),
    };
    query.one(&ctx.db).await?.ok_or_else(|| Error::not_found(format!("no user {}", id_or_email.trim())))
}

/// Sets a user's role.
pub async fn set_role(ctx: &AppContext, user_id: i64, role: Role) -> Result<Profile> {
    update_columns(ctx, user_id, users::Column::Role, Expr::value(role.as_str())).await
}

/// Disables or re-enables a user; disabling ends every session at once.
pub async fn set_disabled(ctx: &AppContext, user_id: i64, disabled: bool) -> Result<Profile> {
    let profile = update_columns(ctx, user_id, users::Column::Disabled, Expr::value(disabled)).await?;
    if disabled {
        sessions::revoke_all(&ctx.db, user_id, None).await?;
    }
    Ok(profile)
}

/// Sets a new password (operator reset) and ends every session.
pub async fn reset_password(ctx: &AppContext, user_id: i64, password: &Password) -> Result<Profile> {
    let hash = ctx.passwords.hash(password).await?;
    let profile = update_columns(ctx, user_id, users::Column::PasswordHash, Expr::value(hash)).await?;
    sessions::revoke_all(&ctx.db, user_id, None).await?;
    Ok(profile)
}

async fn update_columns(ctx: &AppContext, user_id: i64, column: users::Column, value: Expr) -> Result<Profile> {
    let result = users::Entity::update_many()
        .col_expr(column, value)
        .col_expr(users::Column::UpdatedAt, Expr::value(crate::stored_now()))
        .filter(users::Column::Id.eq(user_id))
        .exec(&ctx.db)
        .await?;
    if result.rows_affected == 0 {
        return Err(Error::not_found("no such user"));
    }
    Ok(load(ctx, user_id).await?.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Kim@Example.COM ").unwrap().as_str(), "kim@example.com");
        for bad in ["", "kim", "kim@", "@example.com", "kim@example", "k im@example.com", "a@b@c.com"] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse("Kim\r\nBcc: evil@example.com").is_err());
        assert_eq!(DisplayName::parse(" 김민수 ").unwrap().0, "김민수");
    }
}
