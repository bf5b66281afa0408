//! Prometheus metrics for every tasklane process: the recorder (installed once per process,
//! with explicit histogram buckets so durations export as histograms that can be aggregated
//! across replicas, not as per-process summaries), the build-info series and the database
//! pool gauges sampled when scraped.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DbBackend};

/// Buckets for every `_seconds` histogram: a 1 ms API read to a minute-long report.
const DURATION_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder (the first call does; later ones return the same
/// handle), records the build-info series for `service`, and keeps histograms trimmed.
pub fn install(service: &'static str) -> anyhow::Result<PrometheusHandle> {
    if let Some(handle) = HANDLE.get() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)?
        .install_recorder()?;
    let handle = HANDLE.get_or_init(|| handle).clone();
    describe();
    tasklane_jobs::runtime::describe_metrics();
    metrics::gauge!("tasklane_build_info", "service" => service, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
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

/// The help text of the application's metrics (the job platform describes its own).
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_gauge!("tasklane_build_info", "Always 1; the labels name the service and its version.");
    describe_gauge!("tasklane_db_pool_connections", "Database pool connections by state (in_use, idle).");
    describe_counter!("tasklane_http_requests_total", "API requests answered, by route template, method and status.");
    describe_histogram!(
        "tasklane_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an API request, by route template, method and status."
    );
    describe_gauge!("tasklane_http_requests_in_flight", "API requests being answered.");
    describe_gauge!(
        "tasklane_queue_jobs",
        "Jobs per queue and state (ready, in_flight, delayed, dead_letter), sampled."
    );
    describe_gauge!(
        "tasklane_queue_oldest_ready_age_seconds",
        Unit::Seconds,
        "Age of a queue's oldest ready job, sampled."
    );
    describe_gauge!("tasklane_outbox_backlog_events", "Task events not yet published to the events queue.");
    describe_gauge!(
        "tasklane_outbox_oldest_age_seconds",
        Unit::Seconds,
        "How long the oldest unpublished event has waited."
    );
    describe_counter!("tasklane_notifications_total", "Notifications by channel and outcome.");
    describe_counter!("tasklane_outbound_requests_total", "Calls to outside services (ses, discord) by outcome.");
    describe_counter!("tasklane_reports_generated_total", "Reports built, by period.");
    describe_histogram!("tasklane_report_generation_seconds", Unit::Seconds, "Time to build one report.");
    describe_counter!("tasklane_events_archived_total", "Task events copied to the archive.");
}

/// The metrics in Prometheus's text format, with the database pool sampled now.
pub fn render(handle: &PrometheusHandle, db: &DatabaseConnection) -> String {
    let (size, idle) = pool_sizes(db);
    metrics::gauge!("tasklane_db_pool_connections", "state" => "in_use").set(size.saturating_sub(idle) as f64);
    metrics::gauge!("tasklane_db_pool_connections", "state" => "idle").set(idle as f64);
    handle.render()
}

/// Connections the pool holds and how many of them are idle.
fn pool_sizes(db: &DatabaseConnection) -> (u32, u32) {
    match db.get_database_backend() {
        DbBackend::MySql => {
            let pool = db.get_mysql_connection_pool();
            (pool.size(), u32::try_from(pool.num_idle()).unwrap_or(u32::MAX))
        }
        DbBackend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            (pool.size(), u32::try_from(pool.num_idle()).unwrap_or(u32::MAX))
        }
        _ => (0, 0),
    }
}

/// Counts notifications by channel (`in_app`, `email`) and outcome (`delivered`, `sent`,
/// `rejected`, `unavailable`).
pub fn count_notifications(channel: &'static str, outcome: &'static str, count: u64) {
    metrics::counter!("tasklane_notifications_total", "channel" => channel, "outcome" => outcome).increment(count);
}

/// Counts a call to an outside service (`ses`, `discord`) by outcome (`ok`, `rejected`, `unavailable`).
pub fn count_outbound(service: &'static str, outcome: &'static str) {
    metrics::counter!("tasklane_outbound_requests_total", "service" => service, "outcome" => outcome).increment(1);
}
