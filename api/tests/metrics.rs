//! Metrics after real traffic: tasks created through the API, their events and notifications
//! handled by the workers, one job dead-lettered; then the API's metrics listener and the
//! worker's `/metrics` are scraped and every series is checked for a sane value.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::spawn_app_with;
use serde_json::json;
use tasklane_jobs::NewJob;
use tasklane_testkit::wait_until;

const PATIENCE: Duration = Duration::from_secs(30);

/// The samples of a Prometheus text exposition, keyed by the series as written
/// (`name{label="value",…}`).
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of every sample of `name` whose labels include each of `labels`.
fn total(samples: &HashMap<String, f64>, name: &str, labels: &[&str]) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| {
            let (series_name, rest) = series.split_once('{').unwrap_or((series.as_str(), ""));
            series_name == name && labels.iter().all(|label| rest.contains(label))
        })
        .map(|(_, value)| value)
        .sum()
}

async fn scrape(url: &str) -> String {
    let reply = reqwest::get(url).await.unwrap();
    assert_eq!(reply.status().as_u16(), 200);
    reply.text().await.unwrap()
}

#[tokio::test]
async fn the_api_and_the_worker_export_their_metrics_after_real_traffic() {
    let handle = tasklane_core::telemetry::install("api").unwrap();
    // Alerts go to a Discord webhook nobody answers, so the outside-call counter has a sample.
    let app = spawn_app_with(|config| {
        config.notify.discord_webhook_url = Some("http://127.0.0.1:9/api/webhooks/1/token".to_owned().into());
        config.notify.alert_window_secs = 0;
    })
    .await;
    let _workers = app.start_workers();
    let kim = app.user("kim").await;
    let lee = app.user("lee").await;
    for i in 0..5 {
        app.task(&kim, json!({ "name": format!("task {i}"), "pic": lee.id })).await;
    }
    app.get("/api/tasks/999999", &kim.token).await.expect_error(404);
    let transport = tasklane_worker::transport(&app.ctx).await.unwrap();
    let unknown = NewJob {
        queue: "maintenance".into(),
        kind: "no.such.job".into(),
        version: 1,
        payload: json!({}),
        dedup_key: None,
    };
    transport.enqueue(vec![unknown]).await.unwrap();
    wait_until("the events, notifications and the dead letter", PATIENCE, async || {
        let now = samples(&handle.render());
        app.inbox(&lee).await.len() == 5
            && total(&now, "tasklane_jobs_total", &["outcome=\"failure\""]) == 1.0
            && total(&now, "tasklane_outbound_requests_total", &["service=\"discord\""]) == 1.0
    })
    .await;
    tasklane_worker::telemetry::sample(&app.ctx, transport.as_ref()).await;

    let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/metrics", api_listener.local_addr().unwrap());
    tasklane_api::metrics::serve_metrics("api", api_listener, app.ctx.db.clone()).unwrap();
    let worker_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let worker_url = format!("http://{}/metrics", worker_listener.local_addr().unwrap());
    let worker_routes = tasklane_worker::telemetry::router(app.ctx.clone(), transport.clone(), handle.clone());
    tokio::spawn(async move { axum::serve(worker_listener, worker_routes).await });

    let api = scrape(&api_url).await;
    let worker = scrape(&worker_url).await;
    // scripts/test checks the scrapes with promtool and the alert rules' metric names against them.
    if let Some(dir) = std::env::var_os("TASKLANE_METRICS_DUMP_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(std::path::Path::new(&dir).join("api.prom"), &api).unwrap();
        std::fs::write(std::path::Path::new(&dir).join("worker.prom"), &worker).unwrap();
    }
    // One process here, so both show the same series; in production each shows its own.
    for text in [&api, &worker] {
        let s = samples(text);
        let created = ["route=\"/api/tasks\"", "method=\"POST\"", "status=\"201\""];
        assert_eq!(total(&s, "tasklane_http_requests_total", &created), 5.0, "{text}");
        assert_eq!(total(&s, "tasklane_http_requests_total", &["route=\"/api/tasks/{id}\"", "status=\"404\""]), 1.0);
        // Histograms with buckets, not summaries, so replicas can be aggregated.
        assert_eq!(total(&s, "tasklane_http_request_duration_seconds_count", &created), 5.0);
        assert!(total(&s, "tasklane_http_request_duration_seconds_bucket", &created) > 0.0);
        assert!(text.contains("# TYPE tasklane_http_request_duration_seconds histogram"), "{text}");
        assert_eq!(total(&s, "tasklane_http_requests_in_flight", &[]), 0.0);
        let events = ["queue=\"events\"", "kind=\"task.event\""];
        assert!(total(&s, "tasklane_jobs_enqueued_total", &events) >= 5.0);
        assert!(total(&s, "tasklane_jobs_total", &[events[0], events[1], "outcome=\"success\""]) >= 5.0);
        assert_eq!(total(&s, "tasklane_jobs_total", &["kind=\"no.such.job\"", "outcome=\"failure\""]), 1.0);
        let processed = ["messaging_system=\"embedded\"", "messaging_destination_name=\"events\""];
        assert!(total(&s, "messaging_process_duration_seconds_count", &processed) >= 5.0, "{text}");
        assert!(total(&s, "tasklane_job_queue_wait_seconds_count", &["queue=\"events\""]) >= 5.0);
        let dead = ["queue=\"maintenance\"", "state=\"dead_letter\""];
        assert_eq!(total(&s, "tasklane_queue_jobs", &dead), 1.0, "{text}");
        assert_eq!(total(&s, "tasklane_queue_jobs", &["queue=\"events\"", "state=\"ready\""]), 0.0);
        assert!(text.contains("tasklane_queue_oldest_ready_age_seconds{queue=\"email\"}"));
        assert_eq!(total(&s, "tasklane_outbox_backlog_events", &[]), 0.0);
        assert!(text.contains("tasklane_outbox_oldest_age_seconds"));
        assert_eq!(total(&s, "tasklane_notifications_total", &["channel=\"in_app\"", "outcome=\"delivered\""]), 5.0);
        // The pool holds a connection, idle or in use by the workers at that moment.
        assert!(total(&s, "tasklane_db_pool_connections", &[]) >= 1.0, "{text}");
        assert!(text.contains("tasklane_db_pool_connections{state=\"idle\"}"));
        assert_eq!(total(&s, "tasklane_build_info", &["service=\"api\""]), 1.0);
        assert_eq!(
            total(&s, "tasklane_outbound_requests_total", &["service=\"discord\"", "outcome=\"unavailable\""]),
            1.0
        );
        // Low cardinality: no ids, no addresses.
        assert!(!text.contains("/api/tasks/999999") && !text.contains("@example.com"));
    }
}
