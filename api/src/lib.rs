//! tasklane's HTTP API: routes, extractors, error mapping and the OpenAPI document. Every
//! rule it applies lives in `tasklane-core`; this crate only speaks HTTP.

pub mod error;
pub mod extract;
pub mod messages;
pub mod metrics;
pub mod openapi;
pub mod routes;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tasklane_core::AppContext;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;

use crate::error::error_response;

/// Largest accepted request body.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;

/// The whole API as a router, ready to serve.
pub fn app(ctx: AppContext) -> Router {
    let request_id_header = axum::http::HeaderName::from_static("x-request-id");
    Router::new()
        .merge(routes::health::router())
        .merge(routes::accounts::router())
        .merge(routes::tasks::router())
        .merge(routes::notifications::router())
        .merge(routes::reports::router())
        .route("/api/openapi.json", get(openapi_document))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(ctx.clone(), request_timeout))
        .layer(axum::middleware::from_fn(metrics::track))
        .with_state(ctx)
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(CatchPanicLayer::custom(|_| {
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal", "something went wrong on our side")
        }))
        .layer(PropagateRequestIdLayer::new(request_id_header.clone()))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let id = request
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                })
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(SetRequestIdLayer::new(request_id_header, RequestIds::default()))
}

async fn openapi_document() -> impl IntoResponse {
    Json(openapi::ApiDoc::openapi())
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not_found", "no such route")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take that method")
}

/// Request ids: a per-process random prefix and a counter, cheap and unique across replicas.
#[derive(Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        Self { prefix: tasklane_core::auth::tokens::new_id()[..8].into(), next: Arc::new(AtomicU64::new(1)) }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        axum::http::HeaderValue::from_str(&format!("{}-{n}", self.prefix)).ok().map(RequestId::new)
    }
}

/// Serves the API on `listener` until `shutdown` resolves, then lets in-flight requests finish.
/// (Expired sessions and tokens are pruned by a recurring job on the workers.)
///
/// Written on hyper rather than `axum::serve` for the header-read timeout, which needs a timer
/// that `axum::serve` does not set: a client that trickles its headers is cut off after
/// `TASKLANE_HTTP_HEADER_TIMEOUT_SECS`, and one that trickles its body is answered 408 after
/// `TASKLANE_HTTP_REQUEST_TIMEOUT_SECS`.
pub async fn serve(
    ctx: AppContext,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = Duration::from_secs(ctx.config.http.header_read_timeout_secs);
    let router = app(ctx);
    let mut connections = hyper::server::conn::http1::Builder::new();
    connections.timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(header_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            tower::ServiceExt::oneshot(router.clone(), request)
        });
        let connection = graceful.watch(connections.serve_connection(hyper_util::rt::TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, %peer, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers 408 when a request, its body included, takes longer than the configured limit.
async fn request_timeout(State(ctx): State<AppContext>, request: Request<Body>, next: Next) -> Response {
    let limit = Duration::from_secs(ctx.config.http.request_timeout_secs);
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error_response(StatusCode::REQUEST_TIMEOUT, "request_timeout", "the request took too long"),
    }
}

/// Serves until SIGTERM or Ctrl-C, then gives in-flight requests [`SHUTDOWN_GRACE`] to finish
/// before returning anyway.
pub async fn serve_until_signalled(ctx: AppContext, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_until(ctx, listener, tasklane_core::process::shutdown_signal()).await
}

/// Serves until `stop` resolves, then gives in-flight requests [`SHUTDOWN_GRACE`] to finish
/// before returning anyway.
pub async fn serve_until(
    ctx: AppContext,
    listener: tokio::net::TcpListener,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        stop.await;
        let _ = signalled_tx.send(());
    };
    let server = serve(ctx, listener, shutdown);
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => result,
        () = async {
            let _ = signalled_rx.await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("grace period over; exiting with requests still in flight");
            Ok(())
        }
    }
}

/// How long in-flight requests get after a shutdown signal before the process exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);
