//! The worker's own HTTP endpoints: `/healthz` (alive), `/readyz` (database and queue
//! reachable) and `/metrics` (Prometheus text format).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use tasklane_core::{AppContext, queues};
use tasklane_jobs::Transport;

/// Buckets for job and queue-latency histograms, in seconds.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Installs the Prometheus recorder (once per process) and keeps its histograms trimmed.
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)?
        .install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(Duration::from_secs(5));
        loop {
            ticker.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

#[derive(Clone)]
struct Probe {
    app: AppContext,
    transport: Arc<dyn Transport>,
    metrics: PrometheusHandle,
}

/// The worker's health and metrics routes.
pub fn router(app: AppContext, transport: Arc<dyn Transport>, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({ "status": "ok" })) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(|State(probe): State<Probe>| async move { probe.metrics.render() }))
        .with_state(Probe { app, transport, metrics })
}

async fn ready(State(probe): State<Probe>) -> impl IntoResponse {
    let database = tasklane_core::db::ping(&probe.app.db).await;
    let queue = match queues::ALL.first() {
        Some(queue) => probe.transport.stats(queue).await.is_ok(),
        None => true,
    };
    let status = if database && queue { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (
        status,
        Json(
            json!({ "database": if database { "ok" } else { "unreachable" }, "queue": if queue { "ok" } else { "unreachable" } }),
        ),
    )
}
