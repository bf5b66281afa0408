//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tasklane_core::AppContext;

/// `/healthz` and `/readyz`.
pub fn router() -> Router<AppContext> {
    Router::new().route("/healthz", get(alive)).route("/readyz", get(ready))
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, description = "alive")))]
pub async fn alive() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, description = "ready"), (status = 503, description = "database unreachable")))]
pub async fn ready(State(ctx): State<AppContext>) -> impl IntoResponse {
    if tasklane_core::db::ping(&ctx.db).await {
        (StatusCode::OK, Json(json!({ "status": "ready", "database": "ok" })))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "not_ready", "database": "unreachable" })))
    }
}
