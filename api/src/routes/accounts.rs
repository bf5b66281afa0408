//! Sign-up, sign-in, tokens, sign-out and the signed-in user's own account.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tasklane_core::AppContext;
use tasklane_core::accounts::joining::{self, Invitation, NewInvitation, OpenInvitation, VerifyEmail};
use tasklane_core::accounts::{self, AccountDeletion, Joined, Profile, ProfileChange, SignIn, SignUp, Teammate};
use tasklane_core::auth::sessions::{self, IssuedTokens};

use super::MessageBody;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, ClientAddr, JsonBody, Lang};
use crate::messages::Message;

/// Account and session routes.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/sign_up", post(sign_up))
        .route("/api/verify_email", post(verify_email))
        .route("/api/verify_email/resend", post(resend_verification))
        .route("/api/invitations", post(invite).get(list_invitations))
        .route("/api/sign_in", post(sign_in).get(sign_in))
        .route("/api/token/refresh", post(refresh))
        .route("/api/sign_out", post(sign_out))
        .route("/api/sign_out_everywhere", post(sign_out_everywhere))
        .route("/api/users/me", get(me).patch(update_me).delete(delete_me))
        .route("/api/users", get(list_users))
}

/// The created account; absent when the rest happens by email (`202`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedUp {
    /// What happened.
    pub message: &'static str,
    /// The new account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<Profile>,
}

/// Open invitations.
#[derive(Serialize, utoipa::ToSchema)]
pub struct InvitationList {
    /// Not yet used nor expired, newest first.
    pub invitations: Vec<OpenInvitation>,
}

/// Sign-in result: the seed's `{message, email}` plus tokens.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SignedIn {
    /// What happened.
    pub message: &'static str,
    /// The account's email.
    pub email: String,
    /// The tokens.
    #[serde(flatten)]
    pub tokens: IssuedTokens,
}

/// Refreshed tokens.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Refreshed {
    /// What happened.
    pub message: &'static str,
    /// The tokens.
    #[serde(flatten)]
    pub tokens: IssuedTokens,
}

/// `POST /api/token/refresh` body.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The refresh token from sign-in or the last refresh.
    pub refresh_token: String,
}

/// A profile with a message.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ProfileBody {
    /// What happened.
    pub message: &'static str,
    /// The profile.
    pub user: Profile,
}

/// Teammates to pick a PIC or supervisor from.
#[derive(Serialize, utoipa::ToSchema)]
pub struct UserList {
    /// Active users.
    pub users: Vec<Teammate>,
}

/// Create an account, as `TASKLANE_SIGNUP` allows. With email verification on, the answer is
/// `202` whether or not the address already has an account (the email says which).
#[utoipa::path(post, path = "/api/sign_up", tag = "accounts", request_body = SignUp,
    responses((status = 201, body = SignedUp, description = "the account, ready to use"),
              (status = 202, body = SignedUp, description = "check your email"),
              (status = 403, body = ErrorBody, description = "sign-up closed, limited to some domains, or by invitation"),
              (status = 409, body = ErrorBody, description = "email taken (verification off)"),
              (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn sign_up(
    State(ctx): State<AppContext>,
    lang: Lang,
    ClientAddr(client): ClientAddr,
    JsonBody(input): JsonBody<SignUp>,
) -> ApiResult<(StatusCode, Json<SignedUp>)> {
    tasklane_core::limits::sign_up(&ctx, client).await?;
    Ok(match accounts::sign_up(&ctx, input).await? {
        Joined::Account(user) => {
            (StatusCode::CREATED, Json(SignedUp { message: Message::SignedUp.text(lang), user: Some(user) }))
        }
        Joined::CheckEmail => {
            (StatusCode::ACCEPTED, Json(SignedUp { message: Message::CheckEmail.text(lang), user: None }))
        }
    })
}

/// Confirm an address with the token from its verification link.
#[utoipa::path(post, path = "/api/verify_email", tag = "accounts", request_body = VerifyEmail,
    responses((status = 200, body = MessageBody), (status = 422, body = ErrorBody, description = "unknown, used or expired")))]
pub async fn verify_email(
    State(ctx): State<AppContext>,
    lang: Lang,
    JsonBody(input): JsonBody<VerifyEmail>,
) -> ApiResult<Json<MessageBody>> {
    joining::verify_email(&ctx, input).await?;
    Ok(Json(MessageBody { message: Message::EmailVerified.text(lang) }))
}

/// Send the signed-in user a new verification link (nothing when the address is verified).
#[utoipa::path(post, path = "/api/verify_email/resend", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MessageBody), (status = 429, body = ErrorBody)))]
pub async fn resend_verification(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
) -> ApiResult<Json<MessageBody>> {
    tasklane_core::limits::verification_mail(&ctx, who.user_id).await?;
    joining::resend_verification(&ctx, &who).await?;
    Ok(Json(MessageBody { message: Message::VerificationSent.text(lang) }))
}

/// Invite someone (admins): a single-use, expiring sign-up link for one address, emailed to it.
#[utoipa::path(post, path = "/api/invitations", tag = "accounts", security(("bearer" = [])), request_body = NewInvitation,
    responses((status = 201, body = Invitation), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn invite(
    State(ctx): State<AppContext>,
    Auth(who): Auth,
    JsonBody(input): JsonBody<NewInvitation>,
) -> ApiResult<(StatusCode, Json<Invitation>)> {
    Ok((StatusCode::CREATED, Json(joining::invite(&ctx, &who, input).await?)))
}

/// The invitations not yet used nor expired (admins).
#[utoipa::path(get, path = "/api/invitations", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = InvitationList), (status = 403, body = ErrorBody)))]
pub async fn list_invitations(State(ctx): State<AppContext>, Auth(who): Auth) -> ApiResult<Json<InvitationList>> {
    Ok(Json(InvitationList { invitations: joining::open_invitations(&ctx, &who).await? }))
}

/// Sign in with email and password (`GET` with a JSON body is accepted for the seed's clients).
#[utoipa::path(post, path = "/api/sign_in", tag = "accounts", request_body = SignIn,
    responses((status = 200, body = SignedIn), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn sign_in(
    State(ctx): State<AppContext>,
    lang: Lang,
    ClientAddr(client): ClientAddr,
    JsonBody(input): JsonBody<SignIn>,
) -> ApiResult<Json<SignedIn>> {
    let (email, tokens) = accounts::sign_in(&ctx, input, client).await?;
    Ok(Json(SignedIn { message: Message::SignedIn.text(lang), email, tokens }))
}

/// Exchange a refresh token for new tokens; a reused one ends its session.
#[utoipa::path(post, path = "/api/token/refresh", tag = "accounts", request_body = RefreshRequest,
    responses((status = 200, body = Refreshed), (status = 401, body = ErrorBody)))]
pub async fn refresh(
    State(ctx): State<AppContext>,
    lang: Lang,
    JsonBody(input): JsonBody<RefreshRequest>,
) -> ApiResult<Json<Refreshed>> {
    let tokens = sessions::refresh(&ctx, &input.refresh_token).await?;
    Ok(Json(Refreshed { message: Message::Refreshed.text(lang), tokens }))
}

/// End this session: its access and refresh tokens stop working.
#[utoipa::path(post, path = "/api/sign_out", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MessageBody), (status = 401, body = ErrorBody)))]
pub async fn sign_out(State(ctx): State<AppContext>, lang: Lang, Auth(who): Auth) -> ApiResult<Json<MessageBody>> {
    sessions::revoke(&ctx.db, &who.session_id).await?;
    Ok(Json(MessageBody { message: Message::SignedOut.text(lang) }))
}

/// End every session of the signed-in user.
#[utoipa::path(post, path = "/api/sign_out_everywhere", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = MessageBody), (status = 401, body = ErrorBody)))]
pub async fn sign_out_everywhere(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
) -> ApiResult<Json<MessageBody>> {
    sessions::revoke_all(&ctx.db, who.user_id, None).await?;
    Ok(Json(MessageBody { message: Message::SignedOutEverywhere.text(lang) }))
}

/// The signed-in user's profile and unread notification count.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The profile.
    #[serde(flatten)]
    pub user: Profile,
    /// In-app notifications not read yet.
    pub unread_notifications: u64,
}

/// The signed-in user's profile.
#[utoipa::path(get, path = "/api/users/me", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(ctx): State<AppContext>, Auth(who): Auth) -> ApiResult<Json<Me>> {
    let user = accounts::profile(&ctx, &who).await?;
    Ok(Json(Me { user, unread_notifications: tasklane_core::notify::inbox::unread_count(&ctx, who.user_id).await? }))
}

/// Change display name, notification preferences, email or password.
#[utoipa::path(patch, path = "/api/users/me", tag = "accounts", security(("bearer" = [])), request_body = ProfileChange,
    responses((status = 200, body = ProfileBody), (status = 403, body = ErrorBody, description = "wrong current password"),
              (status = 429, body = ErrorBody, description = "too many wrong passwords"),
              (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_me(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
    ClientAddr(client): ClientAddr,
    JsonBody(change): JsonBody<ProfileChange>,
) -> ApiResult<Json<ProfileBody>> {
    let user = accounts::update_profile(&ctx, &who, client, change).await?;
    Ok(Json(ProfileBody { message: Message::ProfileUpdated.text(lang), user }))
}

/// Delete the signed-in user's account (needs the password).
#[utoipa::path(delete, path = "/api/users/me", tag = "accounts", security(("bearer" = [])), request_body = AccountDeletion,
    responses((status = 200, body = MessageBody), (status = 403, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn delete_me(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
    ClientAddr(client): ClientAddr,
    JsonBody(input): JsonBody<AccountDeletion>,
) -> ApiResult<Json<MessageBody>> {
    accounts::delete_own_account(&ctx, &who, client, input).await?;
    Ok(Json(MessageBody { message: Message::AccountDeleted.text(lang) }))
}

/// Everyone who can be a PIC or supervisor.
#[utoipa::path(get, path = "/api/users", tag = "accounts", security(("bearer" = [])),
    responses((status = 200, body = UserList), (status = 401, body = ErrorBody)))]
pub async fn list_users(State(ctx): State<AppContext>, Auth(_who): Auth) -> ApiResult<Json<UserList>> {
    Ok(Json(UserList { users: accounts::teammates(&ctx).await? }))
}
