//! Weekly and monthly reports: asked for (a job fills them in), listed, read as JSON and
//! downloaded as CSV or Markdown.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use tasklane_core::AppContext;
use tasklane_core::reports::export::{self, Format};
use tasklane_core::reports::{self, ReportListQuery, ReportPage, ReportRequest, ReportView, Wanted};

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{Auth, JsonBody, PathId, QueryParams};

/// Report routes.
pub fn router() -> Router<AppContext> {
    Router::new().route("/api/reports", get(list).post(create)).route("/api/reports/{id}", get(show))
}

/// Ask for a report of your own work (or, for admins, the team's) over a week or a month; a
/// job computes it. Asking again for the same period replaces the stored figures.
#[utoipa::path(post, path = "/api/reports", tag = "reports", security(("bearer" = [])), request_body = ReportRequest,
    responses((status = 202, description = "stored as pending; the job fills it in", body = ReportView),
              (status = 200, description = "a period past event retention: the stored report", body = ReportView),
              (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(ctx): State<AppContext>,
    Auth(who): Auth,
    JsonBody(request): JsonBody<ReportRequest>,
) -> ApiResult<(StatusCode, HeaderMap, Json<ReportView>)> {
    let wanted = Wanted::parse(&ctx, &who, &request)?;
    let (report, enqueued) = reports::ask(&ctx, wanted).await?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/reports/{}", report.id)) {
        headers.insert(header::LOCATION, location);
    }
    let status = if enqueued { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((status, headers, Json(report)))
}

/// Your reports (or, for admins, the team's with `scope=team`), newest period first.
#[utoipa::path(get, path = "/api/reports", tag = "reports", security(("bearer" = [])), params(ReportListQuery),
    responses((status = 200, body = ReportPage), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
              (status = 422, body = ErrorBody)))]
pub async fn list(
    State(ctx): State<AppContext>,
    Auth(who): Auth,
    QueryParams(query): QueryParams<ReportListQuery>,
) -> ApiResult<Json<ReportPage>> {
    Ok(Json(reports::list(&ctx, &who, who.user_id, &query).await?))
}

/// `GET /api/reports/{id}` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ShowQuery {
    /// `json` (default), `csv` (one row per figure and per series value) or `md`.
    pub format: Option<String>,
}

/// One report: yours, or any for admins (another member's is 404). `format=csv` or `md`
/// downloads it.
#[utoipa::path(get, path = "/api/reports/{id}", tag = "reports", security(("bearer" = [])),
    params(("id" = i64, Path, description = "report id"), ShowQuery),
    responses((status = 200, body = ReportView, description = "JSON, or text/csv or text/markdown with format"),
              (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(ctx): State<AppContext>,
    Auth(who): Auth,
    PathId(id): PathId,
    QueryParams(query): QueryParams<ShowQuery>,
) -> ApiResult<Response> {
    let format = query.format.as_deref().map(Format::parse).transpose()?;
    let report = reports::get(&ctx, &who, id).await?;
    let Some(format) = format.filter(|format| *format != Format::Json) else {
        return Ok(Json(report).into_response());
    };
    let body = export::render(&report, format)?;
    let disposition = format!("attachment; filename=\"{}\"", export::filename(&report, format));
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok((headers, body).into_response())
}
