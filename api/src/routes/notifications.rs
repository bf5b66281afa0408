//! The signed-in user's in-app notifications.

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use tasklane_core::AppContext;
use tasklane_core::notify::inbox::{self, InboxPage, InboxQuery, NotificationView};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, PathId, QueryParams};

/// Inbox routes.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/notifications", get(list))
        .route("/api/notifications/read_all", post(read_all))
        .route("/api/notifications/{id}/read", post(read))
}

/// How many notifications were marked read.
#[derive(Serialize, utoipa::ToSchema)]
pub struct MarkedRead {
    /// Notifications that were unread and are read now.
    pub marked: u64,
}

/// The signed-in user's notifications, newest first, with cursor pagination.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", security(("bearer" = [])), params(InboxQuery),
    responses((status = 200, body = InboxPage), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<AppContext>,
    Auth(who): Auth,
    QueryParams(query): QueryParams<InboxQuery>,
) -> ApiResult<Json<InboxPage>> {
    Ok(Json(inbox::list(&ctx, &who, query).await?))
}

/// Mark one notification read; another user's notification is 404.
#[utoipa::path(post, path = "/api/notifications/{id}/read", tag = "notifications", security(("bearer" = [])),
    params(("id" = i64, Path, description = "notification id")),
    responses((status = 200, body = NotificationView), (status = 404, body = ErrorBody)))]
pub async fn read(
    State(ctx): State<AppContext>,
    Auth(who): Auth,
    PathId(id): PathId,
) -> ApiResult<Json<NotificationView>> {
    Ok(Json(inbox::mark_read(&ctx, &who, id).await?))
}

/// Mark every notification read.
#[utoipa::path(post, path = "/api/notifications/read_all", tag = "notifications", security(("bearer" = [])),
    responses((status = 200, body = MarkedRead), (status = 401, body = ErrorBody)))]
pub async fn read_all(State(ctx): State<AppContext>, Auth(who): Auth) -> ApiResult<Json<MarkedRead>> {
    Ok(Json(MarkedRead { marked: inbox::mark_all_read(&ctx, &who).await? }))
}
