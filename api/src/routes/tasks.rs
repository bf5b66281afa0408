//! The seed's task endpoints, plus single-task reads, partial updates and history.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tasklane_core::AppContext;
use tasklane_core::tasks::list::{ListQuery, TaskPage};
use tasklane_core::tasks::{self, HistoryPage, HistoryQuery, NewTask, TaskChange, TaskDeletion, TaskView};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, IfMatch, JsonBody, Lang, OptionalJsonBody, PathId, QueryParams};
use crate::messages::Message;

/// Task routes.
pub fn router() -> Router<AppContext> {
    Router::new()
        .route("/api/tasks", get(list).post(create))
        .route("/api/tasks/assigned", get(assigned))
        .route("/api/tasks/{id}", get(show).put(update).patch(update).delete(delete))
        .route("/api/tasks/{id}/events", get(history))
}

/// The seed's creation answer: `{message, Task_id}` and the task.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskCreated {
    /// What happened.
    pub message: &'static str,
    /// The new task's id.
    #[serde(rename = "Task_id")]
    pub task_id: i64,
    /// The new task.
    pub task: TaskView,
}

/// One task with a message.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskBody {
    /// What happened.
    pub message: &'static str,
    /// The task.
    pub task: TaskView,
}

/// The seed's deletion answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskDeleted {
    /// What happened.
    pub message: &'static str,
    /// The deleted task's id.
    #[serde(rename = "Task_id")]
    pub task_id: i64,
    /// The deleted task's name.
    #[serde(rename = "Task_name")]
    pub task_name: String,
}

/// A page of tasks with a message.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TaskList {
    /// What happened.
    pub message: &'static str,
    /// The page.
    #[serde(flatten)]
    pub page: TaskPage,
}

fn etag(task: &TaskView) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("\"{}\"", task.version)) {
        headers.insert(header::ETAG, value);
    }
    headers
}

/// Create a task (the seed's body or snake_case names).
#[utoipa::path(post, path = "/api/tasks", tag = "tasks", security(("bearer" = [])), request_body = NewTask,
    responses((status = 201, body = TaskCreated), (status = 400, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
    JsonBody(input): JsonBody<NewTask>,
) -> ApiResult<(StatusCode, HeaderMap, Json<TaskCreated>)> {
    tasklane_core::limits::task_write(&ctx, who.user_id).await?;
    let task = tasks::create(&ctx, &who, input).await?;
    let mut headers = etag(&task);
    if let Ok(location) = HeaderValue::from_str(&format!("/api/tasks/{}", task.id)) {
        headers.insert(header::LOCATION, location);
    }
    let body = TaskCreated { message: Message::TaskCreated.text(lang), task_id: task.id, task };
    Ok((StatusCode::CREATED, headers, Json(body)))
}

/// List tasks with filters, sorting and cursor pagination.
#[utoipa::path(get, path = "/api/tasks", tag = "tasks", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
    QueryParams(query): QueryParams<ListQuery>,
) -> ApiResult<Json<TaskList>> {
    let page = tasks::list::list(&ctx, &who, query).await?;
    Ok(Json(TaskList { message: Message::TaskList.text(lang), page }))
}

/// Tasks whose PIC is the signed-in user (same filters as the list, `pic` fixed).
#[utoipa::path(get, path = "/api/tasks/assigned", tag = "tasks", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, body = TaskList), (status = 400, body = ErrorBody)))]
pub async fn assigned(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
    QueryParams(mut query): QueryParams<ListQuery>,
) -> ApiResult<Json<TaskList>> {
    query.pic = Some("me".into());
    list(State(ctx), lang, Auth(who), QueryParams(query)).await
}

/// One task; its `ETag` is the version to send back in `If-Match`.
#[utoipa::path(get, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "task id")),
    responses((status = 200, body = TaskBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(_who): Auth,
    PathId(id): PathId,
) -> ApiResult<(HeaderMap, Json<TaskBody>)> {
    let task = tasks::get(&ctx, id).await?;
    Ok((etag(&task), Json(TaskBody { message: Message::TaskFound.text(lang), task })))
}

/// Change some fields (`PUT` is the seed's spelling of the same partial update).
#[utoipa::path(patch, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = [])), request_body = TaskChange,
    params(("id" = i64, Path, description = "task id"), ("If-Match" = Option<String>, Header, description = "expected version")),
    responses((status = 200, body = TaskBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
              (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
    PathId(id): PathId,
    IfMatch(if_match): IfMatch,
    JsonBody(change): JsonBody<TaskChange>,
) -> ApiResult<(HeaderMap, Json<TaskBody>)> {
    tasklane_core::limits::task_write(&ctx, who.user_id).await?;
    let task = tasks::update(&ctx, &who, id, change, if_match).await?;
    Ok((etag(&task), Json(TaskBody { message: Message::TaskUpdated.text(lang), task })))
}

/// Delete a task (creator, supervisor or admin).
#[utoipa::path(delete, path = "/api/tasks/{id}", tag = "tasks", security(("bearer" = [])), request_body = Option<TaskDeletion>,
    params(("id" = i64, Path, description = "task id")),
    responses((status = 200, body = TaskDeleted), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(ctx): State<AppContext>,
    lang: Lang,
    Auth(who): Auth,
    PathId(id): PathId,
    IfMatch(if_match): IfMatch,
    OptionalJsonBody(body): OptionalJsonBody<TaskDeletion>,
) -> ApiResult<Json<TaskDeleted>> {
    tasklane_core::limits::task_write(&ctx, who.user_id).await?;
    let task = tasks::delete(&ctx, &who, id, body, if_match).await?;
    Ok(Json(TaskDeleted { message: Message::TaskDeleted.text(lang), task_id: task.id, task_name: task.name }))
}

/// A task's history, oldest first, a page at a time (admins can still read it after deletion).
#[utoipa::path(get, path = "/api/tasks/{id}/events", tag = "tasks", security(("bearer" = [])),
    params(("id" = i64, Path, description = "task id"), HistoryQuery),
    responses((status = 200, body = HistoryPage), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn history(
    State(ctx): State<AppContext>,
    Auth(who): Auth,
    PathId(id): PathId,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    Ok(Json(tasks::history(&ctx, &who, id, query).await?))
}
