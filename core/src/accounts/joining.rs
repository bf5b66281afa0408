//! Who may join and whose address is whose: the sign-up policy (`TASKLANE_SIGNUP`),
//! invitations, and the links that prove an address (`TASKLANE_EMAIL_VERIFICATION`).
//!
//! Invitations and verification links are random single-use tokens, stored only as SHA-256
//! hashes, that expire; the plain token travels once, in the email's job, to the address
//! it is for.

use chrono::Duration;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::{Deserialize, Serialize};
use tasklane_entity::{account_tokens, users};
use tasklane_jobs::NewJob;

use super::Email;
use crate::auth::tokens::{hash_opaque_token, new_opaque_token};
use crate::auth::{Principal, Role};
use crate::config::SignupMode;
use crate::notify::email::AccountMail;
use crate::notify::model::AccountMessage;
use crate::notify::prefs::Language;
use crate::{AppContext, Error, Result};

/// What an account token proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// That the address belongs to the account holder.
    VerifyEmail,
    /// That an admin invited the address.
    Invitation,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::Invitation => "invitation",
        }
    }
}

/// Stores a new token of `purpose` for `email` and returns the token itself.
async fn issue(
    db: &impl ConnectionTrait,
    purpose: Purpose,
    email: &str,
    user_id: Option<i64>,
    created_by: Option<i64>,
    role: Option<Role>,
    lifetime: Duration,
) -> Result<String> {
    let (token, hash) = new_opaque_token();
    let now = crate::stored_now();
    account_tokens::Entity::insert(account_tokens::ActiveModel {
        token_hash: Set(hash),
        purpose: Set(purpose.as_str().to_owned()),
        email: Set(email.to_owned()),
        user_id: Set(user_id),
        created_by: Set(created_by),
        role: Set(role.map(|role| role.as_str().to_owned())),
        created_at: Set(now),
        expires_at: Set(now + lifetime),
        used_at: Set(None),
    })
    .exec_without_returning(db)
    .await?;
    Ok(token)
}

/// Uses up a token of `purpose`: of two attempts at once only one succeeds. `None` when it
/// is unknown, expired, used or for something else.
async fn redeem(db: &impl ConnectionTrait, purpose: Purpose, token: &str) -> Result<Option<account_tokens::Model>> {
    let hash = hash_opaque_token(token.trim());
    let now = crate::stored_now();
    let Some(row) = account_tokens::Entity::find_by_id(hash.clone()).one(db).await? else { return Ok(None) };
    if row.purpose != purpose.as_str() || row.used_at.is_some() || row.expires_at <= now {
        return Ok(None);
    }
    let taken = account_tokens::Entity::update_many()
        .col_expr(account_tokens::Column::UsedAt, Expr::value(now))
        .filter(account_tokens::Column::TokenHash.eq(hash))
        .filter(account_tokens::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok((taken.rows_affected == 1).then_some(row))
}

/// Whether `email` may sign up without an invitation, or why not.
pub fn admits(ctx: &AppContext, email: &Email) -> Result<()> {
    let accounts = &ctx.config.accounts;
    match accounts.signup {
        SignupMode::Open => Ok(()),
        SignupMode::Domains => {
            let domain = email.as_str().rsplit_once('@').map(|(_, domain)| domain).unwrap_or_default();
            if accounts.signup_domains.iter().any(|allowed| allowed == domain) {
                Ok(())
            } else {
                Err(Error::forbidden_because(
                    "signup_domain",
                    format!("sign-up is open to addresses at {} only", accounts.signup_domains.join(", ")),
                ))
            }
        }
        SignupMode::Invite => {
            Err(Error::forbidden_because("invitation_required", "sign-up needs an invitation from an admin"))
        }
        SignupMode::Closed => Err(signup_closed()),
    }
}

fn signup_closed() -> Error {
    Error::forbidden_because("signup_closed", "sign-up is closed; an operator creates accounts")
}

/// Uses up the invitation `token` for `email` within `db` (the sign-up's transaction), and
/// returns the role it grants.
pub async fn accept_invitation(
    ctx: &AppContext,
    db: &impl ConnectionTrait,
    token: &str,
    email: &Email,
) -> Result<Role> {
    if ctx.config.accounts.signup == SignupMode::Closed {
        return Err(signup_closed());
    }
    let invalid = || Error::forbidden_because("invalid_invitation", "the invitation is not valid for this address");
    let invitation = redeem(db, Purpose::Invitation, token).await?.ok_or_else(invalid)?;
    if invitation.email != email.as_str() {
        return Err(invalid());
    }
    Ok(invitation.role.as_deref().map_or(Role::Member, Role::from_stored))
}

/// `POST /api/invitations` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInvitation {
    /// The address invited; the invitation works for it alone.
    pub email: String,
    /// `member` (default) or `admin`.
    pub role: Option<String>,
}

/// An invitation as its admin sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Invitation {
    /// The address invited.
    pub email: String,
    /// The role the invitee gets.
    pub role: Role,
    /// Until when it can be used.
    pub expires_at: chrono::DateTime<chrono::Utc>,
    /// The sign-up link, also emailed to the address; it works once.
    pub link: String,
}

/// Invites `input.email` (admins only) and emails the invitation.
pub async fn invite(ctx: &AppContext, who: &Principal, input: NewInvitation) -> Result<Invitation> {
    if !who.is_admin() {
        return Err(Error::forbidden("only admins may invite people"));
    }
    let email = Email::parse(&input.email)?;
    let role = match input.role.as_deref().map(str::trim) {
        None | Some("") | Some("member") => Role::Member,
        Some("admin") => Role::Admin,
        Some(_) => return Err(Error::invalid("invalid_role", "role must be member or admin")),
    };
    issue_invitation(ctx, Some(who.user_id), &email, role).await
}

/// Invites `email` with `role` on behalf of `invited_by` (none: an operator) and emails it.
pub async fn issue_invitation(
    ctx: &AppContext,
    invited_by: Option<i64>,
    email: &Email,
    role: Role,
) -> Result<Invitation> {
    let taken = users::Entity::find().filter(users::Column::Email.eq(email.as_str())).one(&ctx.db).await?.is_some();
    if taken {
        return Err(Error::conflict("email_taken", "an account with this email already exists"));
    }
    let days = ctx.config.accounts.invitation_days;
    let lifetime = Duration::days(days as i64);
    let token = issue(&ctx.db, Purpose::Invitation, email.as_str(), None, invited_by, Some(role), lifetime).await?;
    let link = invitation_link(ctx, &token, email);
    let inviter = match invited_by {
        Some(id) => users::Entity::find_by_id(id).one(&ctx.db).await?.map(|user| user.display_name),
        None => None,
    };
    let mail = AccountMail {
        to: email.as_str().to_owned(),
        language: Language::default(),
        message: AccountMessage::Invitation { link: link.clone(), inviter: inviter.unwrap_or_default(), days },
    };
    enqueue(ctx, vec![mail]).await?;
    Ok(Invitation {
        email: email.as_str().to_owned(),
        role,
        expires_at: (crate::stored_now() + lifetime).and_utc(),
        link,
    })
}

fn invitation_link(ctx: &AppContext, token: &str, email: &Email) -> String {
    format!("{}/sign-up?invitation={token}&email={}", ctx.config.notify.public_url, email.as_str())
}

/// An invitation waiting to be used, as admins list it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OpenInvitation {
    /// The address invited.
    pub email: String,
    /// The role it grants.
    pub role: Role,
    /// When it was made.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Until when it works.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}

/// The invitations neither used nor expired, newest first (admins only).
pub async fn open_invitations(ctx: &AppContext, who: &Principal) -> Result<Vec<OpenInvitation>> {
    if !who.is_admin() {
        return Err(Error::forbidden("only admins may see invitations"));
    }
    let rows = account_tokens::Entity::find()
        .filter(account_tokens::Column::Purpose.eq(Purpose::Invitation.as_str()))
        .filter(account_tokens::Column::UsedAt.is_null())
        .filter(account_tokens::Column::ExpiresAt.gt(crate::stored_now()))
        .order_by_desc(account_tokens::Column::CreatedAt)
        .all(&ctx.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| OpenInvitation {
            email: row.email,
            role: row.role.as_deref().map_or(Role::Member, Role::from_stored),
            created_at: row.created_at.and_utc(),
            expires_at: row.expires_at.and_utc(),
        })
        .collect())
}

/// The mail asking `user` to confirm their current address (nothing when verification is off).
pub async fn verification_mail(ctx: &AppContext, user: &users::Model) -> Result<Option<AccountMail>> {
    if !ctx.config.accounts.email_verification {
        return Ok(None);
    }
    let hours = ctx.config.accounts.verification_hours;
    let lifetime = Duration::hours(hours as i64);
    let token = issue(&ctx.db, Purpose::VerifyEmail, &user.email, Some(user.id), None, None, lifetime).await?;
    Ok(Some(AccountMail {
        to: user.email.clone(),
        language: crate::notify::prefs::NotificationPrefs::from_stored(&user.notification_prefs).language,
        message: AccountMessage::Verify {
            link: format!("{}/verify-email?token={token}", ctx.config.notify.public_url),
            hours,
        },
    }))
}

/// `POST /api/verify_email` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyEmail {
    /// The token from the link.
    pub token: String,
}

/// Marks the address a verification token was sent to as verified, if it is still the
/// account's address.
pub async fn verify_email(ctx: &AppContext, input: VerifyEmail) -> Result<()> {
    let invalid = || Error::invalid("invalid_token", "the link is not valid any more; ask for a new one");
    let token = redeem(&ctx.db, Purpose::VerifyEmail, &input.token).await?.ok_or_else(invalid)?;
    let verified = users::Entity::update_many()
        .col_expr(users::Column::EmailVerifiedAt, Expr::value(crate::stored_now()))
        .filter(users::Column::Id.eq(token.user_id.unwrap_or(-1)))
        .filter(users::Column::Email.eq(token.email))
        .exec(&ctx.db)
        .await?;
    if verified.rows_affected == 0 {
        return Err(invalid());
    }
    Ok(())
}

/// Sends the signed-in user a new verification link (when their address is unverified).
pub async fn resend_verification(ctx: &AppContext, who: &Principal) -> Result<()> {
    let user =
        users::Entity::find_by_id(who.user_id).one(&ctx.db).await?.ok_or_else(|| Error::not_found("no such user"))?;
    if user.email_verified_at.is_some() {
        return Ok(());
    }
    let mail = verification_mail(ctx, &user).await?;
    enqueue(ctx, mail.into_iter().collect()).await
}

/// Enqueues account emails.
pub async fn enqueue(ctx: &AppContext, mails: Vec<AccountMail>) -> Result<()> {
    if mails.is_empty() {
        return Ok(());
    }
    let jobs = mails.iter().map(NewJob::of).collect::<serde_json::Result<Vec<_>>>()?;
    ctx.transport().await?.enqueue(jobs).await?;
    Ok(())
}
