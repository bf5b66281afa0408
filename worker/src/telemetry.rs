//! The worker's own HTTP endpoints: `/healthz` (alive), `/readyz` (database and queue
//! reachable) and `/metrics` (Prometheus text format).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tasklane_core::{AppContext, queues};
use tasklane_jobs::Transport;

/// Installs the process's Prometheus recorder (see [`tasklane_core::telemetry::install`]).
pub fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    tasklane_core::telemetry::install("worker")
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
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
        .route(
            "/metrics",
            get(|State(probe): State<Probe>| async move { tasklane_core::telemetry::render(&probe.metrics, &probe.app.db) }),
        )
        .with_state(Probe { app, transport, metrics })
}

/// How long the worker loops may go without progress before the worker counts as stalled:
/// an idle loop turns at least every 20 s (the SQS long poll), a failing one every 5 s.
const STALLED_AFTER: Duration = Duration::from_secs(120);

/// Liveness from the worker's own loops, never from a dependency: a database or queue outage
/// makes the worker unready, not dead, so it is not restarted for what a restart cannot mend.
async fn alive() -> impl IntoResponse {
    match tasklane_jobs::runtime::since_last_beat() {
        Some(age) if stalled(age) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "stalled", "seconds_since_progress": age.as_secs() })),
        ),
        _ => (StatusCode::OK, Json(json!({ "status": "ok" }))),
    }
}

fn stalled(since_progress: Duration) -> bool {
    since_progress > STALLED_AFTER
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

/// How often each replica samples its queues and the outbox into gauges: cheap reads on a
/// timer, never a scan per scrape.
const SAMPLE_EVERY: Duration = Duration::from_secs(15);

/// Samples every queue's depth and the outbox backlog every [`SAMPLE_EVERY`] until the
/// process ends.
pub fn spawn_sampler(app: AppContext, transport: Arc<dyn Transport>) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(SAMPLE_EVERY);
        loop {
            ticker.tick().await;
            sample(&app, transport.as_ref()).await;
        }
    });
}

/// Sets the queue and outbox gauges: jobs per queue and state, the oldest ready job's age,
/// events waiting to be published and the oldest one's age.
pub async fn sample(app: &AppContext, transport: &dyn Transport) {
    for &queue in queues::ALL {
        match transport.stats(queue).await {
            Ok(stats) => {
                let states = [
                    ("ready", stats.ready),
                    ("in_flight", stats.in_flight),
                    ("delayed", stats.scheduled),
                    ("dead_letter", stats.dead),
                ];
                for (state, jobs) in states {
                    metrics::gauge!("tasklane_queue_jobs", "queue" => queue, "state" => state).set(jobs as f64);
                }
                if transport.tells_oldest_age(queue) {
                    let age = stats.oldest_age_secs.unwrap_or(0) as f64;
                    metrics::gauge!("tasklane_queue_oldest_ready_age_seconds", "queue" => queue).set(age);
                }
            }
            Err(err) => tracing::warn!(queue, error = %format!("{err:#}"), "cannot sample the queue's depth"),
        }
    }
    match tasklane_core::events::relay::backlog(app).await {
        Ok((waiting, age)) => {
            metrics::gauge!("tasklane_outbox_backlog_events").set(waiting as f64);
            metrics::gauge!("tasklane_outbox_oldest_age_seconds").set(age);
        }
        Err(err) => tracing::warn!(error = %err, "cannot sample the outbox backlog"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_is_stalled_only_when_its_loops_stopped_turning_for_two_minutes() {
        assert!(!stalled(Duration::from_secs(20)), "an SQS long poll");
        assert!(!stalled(STALLED_AFTER));
        assert!(stalled(STALLED_AFTER + Duration::from_secs(1)));
    }
}
