//! Request metrics, and the `/metrics` listener that serves them on an address of its own
//! (`TASKLANE_METRICS_LISTEN`), so the public listener and its ingress never expose them.

use std::time::Instant;

use anyhow::Context;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use sea_orm::DatabaseConnection;
use tasklane_core::telemetry;

/// Counts a request in flight until it is dropped, answered or not.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!("tasklane_http_requests_in_flight").increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("tasklane_http_requests_in_flight").decrement(1.0);
    }
}

/// Records every request by route template (never the raw path, whose ids would make a series
/// per task), method and status, with its duration.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = match *request.method() {
        Method::GET | Method::POST | Method::PUT | Method::PATCH | Method::DELETE | Method::HEAD | Method::OPTIONS => {
            request.method().as_str().to_owned()
        }
        _ => "other".to_owned(),
    };
    let _in_flight = InFlight::start();
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = [("route", route), ("method", method), ("status", response.status().as_u16().to_string())];
    metrics::counter!("tasklane_http_requests_total", &labels).increment(1);
    metrics::histogram!("tasklane_http_request_duration_seconds", &labels).record(started.elapsed().as_secs_f64());
    response
}

#[derive(Clone)]
struct Exporter {
    handle: PrometheusHandle,
    db: DatabaseConnection,
}

/// Installs the metrics recorder and serves `/metrics` on `listener` in the background.
pub fn serve_metrics(
    service: &'static str,
    listener: tokio::net::TcpListener,
    db: DatabaseConnection,
) -> anyhow::Result<()> {
    let handle = telemetry::install(service)?;
    let router = Router::new()
        .route(
            "/metrics",
            get(|State(exporter): State<Exporter>| async move { telemetry::render(&exporter.handle, &exporter.db) }),
        )
        .with_state(Exporter { handle, db });
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
    });
    Ok(())
}

/// Binds the metrics address, or says which one could not be bound.
pub async fn bind_metrics(listen: std::net::SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| {
        format!("cannot listen on {listen} for metrics (TASKLANE_METRICS_LISTEN; off turns it off)")
    })?;
    tracing::info!(%listen, "metrics listening");
    Ok(listener)
}
