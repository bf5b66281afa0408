//! Notification latency under a steady load: task changes at a fixed rate (500/s by default)
//! while the outbox relay, the workers and the file mailer run, on the embedded queue and on
//! Redis. Each change is a status flip whose PIC and supervisor are notified in-app and by
//! email, so 500 changes/s are 1,000 in-app notifications and 1,000 `.eml` files a second.
//!
//! Prints, per transport: the rate reached, event -> in-app notification latency p50/p99/max,
//! event -> `.eml` written p50/p99/max, the largest backlog seen during the run and the backlog
//! left when the load stopped, and the process's peak RSS (workers and load generator share
//! the process, as in `tasklane serve`).
//!
//! `cargo bench -p tasklane-worker --bench notifications`
//! Knobs: `BENCH_RATE` (changes a second, 500), `BENCH_SECONDS` (30), `BENCH_TRANSPORTS`
//! (`embedded,redis`), `BENCH_REDIS_URL` (`redis://127.0.0.1:6379`); the database is SQLite
//! unless `TASKLANE_TEST_MYSQL_URL` names a MariaDB/MySQL server.
//! With `BENCH_SEPARATE_RELAY=1` the workers get an application context of their own, so the
//! relay finds events by polling (every 250 ms) as in a deployment with separate API pods.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};
use tasklane_core::AppContext;
use tasklane_entity::{notifications, task_events};
use tasklane_jobs::Transport;

const TASKS: usize = 1000;
const PEOPLE: usize = 20;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn percentiles(mut millis: Vec<i64>) -> String {
    if millis.is_empty() {
        return "no samples".into();
    }
    millis.sort_unstable();
    let pick = |q: f64| millis[((millis.len() - 1) as f64 * q) as usize];
    format!("p50 {:>5} ms  p99 {:>5} ms  max {:>5} ms  (n={})", pick(0.5), pick(0.99), pick(1.0), millis.len())
}

async fn backlog(ctx: &AppContext, transport: &dyn Transport) -> u64 {
    let unpublished =
        task_events::Entity::find().filter(task_events::Column::PublishedAt.is_null()).count(&ctx.db).await.unwrap();
    let mut waiting = unpublished;
    for queue in ["events", "email"] {
        let stats = transport.stats(queue).await.unwrap();
        waiting += stats.ready + stats.scheduled;
    }
    waiting
}

async fn run(label: &str, rate: u64, seconds: u64, separate_relay: bool) {
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let prefix = format!("tl-bench:{}:", tasklane_core::auth::tokens::new_id());
    let transport_kind = match label {
        "embedded" => tasklane_core::config::QueueTransport::Embedded,
        "redis" => tasklane_core::config::QueueTransport::Redis,
        other => panic!("unknown transport {other}"),
    };
    let (ctx, _dir) = tasklane_testkit::fresh_context(|config| {
        config.queue = transport_kind;
        config.redis_url = Some(redis_url.clone().into());
        config.redis_prefix = prefix.clone();
        config.worker.concurrency = 32;
        config.database_max_connections = 32;
        // Every email is measured: none is folded into a digest by the per-recipient limit.
        config.limits.emails_per_hour = u32::MAX;
    })
    .await;
    let creator_id = tasklane_testkit::quick_member(&ctx, "creator@example.com").await;
    let creator = tasklane_core::auth::Principal {
        user_id: creator_id,
        email: "creator@example.com".into(),
        role: tasklane_core::auth::Role::Member,
        session_id: String::new(),
    };
    let mut people = Vec::new();
    for n in 0..PEOPLE {
        people.push(tasklane_testkit::quick_member(&ctx, &format!("member{n}@example.com")).await);
    }
    let mut task_ids = Vec::new();
    for n in 0..TASKS {
        let body = serde_json::json!({
            "name": format!("task {n}"),
            "pic": people[n % PEOPLE],
            "supervisor": people[(n + 1) % PEOPLE],
        });
        task_ids.push(
            tasklane_core::tasks::create(&ctx, &creator, serde_json::from_value(body).unwrap()).await.unwrap().id,
        );
    }
    let transport = tasklane_worker::transport(&ctx).await.unwrap();

    let worker_ctx =
        if separate_relay { AppContext::start((*ctx.config).clone(), false).await.unwrap() } else { ctx.clone() };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn(tasklane_worker::run(worker_ctx, async move {
        let _ = stopped.await;
    }));
    // Let the creations' own notifications go out before measuring.
    while backlog(&ctx, transport.as_ref()).await > 0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let first_measured_event: i64 = task_events::Entity::find()
        .select_only()
        .column_as(task_events::Column::Id.max(), "max")
        .into_tuple::<Option<i64>>()
        .one(&ctx.db)
        .await
        .unwrap()
        .flatten()
        .unwrap_or(0);
    let setup_rss = tasklane_testkit::rss_mib();
    tasklane_testkit::reset_peak_rss();
    let mail_before = std::fs::read_dir(ctx.config.data_dir.join("mail")).map(|d| d.count()).unwrap_or(0);

    // Steady load: every 10 ms a slice of the changes, each round flipping every task once.
    let started = Instant::now();
    let total = rate * seconds;
    let per_tick = rate as f64 / 100.0;
    let limiter = Arc::new(tokio::sync::Semaphore::new(256));
    let mut sent = 0u64;
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut max_backlog = 0;
    let mut last_sample = Instant::now();
    let mut failures = 0u64;
    let mut changes = Vec::new();
    while sent < total {
        ticker.tick().await;
        let due = ((started.elapsed().as_secs_f64() * 100.0 + 1.0) * per_tick).min(total as f64) as u64;
        while sent < due {
            let permit = limiter.clone().acquire_owned().await.unwrap();
            let task = task_ids[(sent as usize) % TASKS];
            let status = if (sent as usize / TASKS).is_multiple_of(2) { "in_progress" } else { "pending" };
            let ctx = ctx.clone();
            let who = creator.clone();
            changes.push(tokio::spawn(async move {
                let change = serde_json::from_value(serde_json::json!({ "status": status })).unwrap();
                let result = tasklane_core::tasks::update(&ctx, &who, task, change, None).await;
                drop(permit);
                result.is_ok()
            }));
            sent += 1;
        }
        if last_sample.elapsed() >= Duration::from_secs(1) {
            last_sample = Instant::now();
            max_backlog = max_backlog.max(backlog(&ctx, transport.as_ref()).await);
        }
    }
    for change in changes {
        if !change.await.unwrap() {
            failures += 1;
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    let left = backlog(&ctx, transport.as_ref()).await;
    let drain_started = Instant::now();
    let expected_mail = mail_before + 2 * (total - failures) as usize;
    loop {
        let mail = std::fs::read_dir(ctx.config.data_dir.join("mail")).map(|d| d.count()).unwrap_or(0);
        if mail >= expected_mail && backlog(&ctx, transport.as_ref()).await == 0 {
            break;
        }
        assert!(drain_started.elapsed() < Duration::from_secs(300), "the backlog did not drain");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_secs = drain_started.elapsed().as_secs_f64();
    // Before the analysis below reads every row into memory.
    let peak_rss = tasklane_testkit::peak_rss_mib(None);
    let _ = stop.send(());
    workers.await.unwrap().unwrap();

    // Latencies from what was stored: event time -> notification row, event time -> file.
    let events: HashMap<i64, chrono::NaiveDateTime> = task_events::Entity::find()
        .filter(task_events::Column::Id.gt(first_measured_event))
        .all(&ctx.db)
        .await
        .unwrap()
        .into_iter()
        .map(|event| (event.id, event.created_at))
        .collect();
    let rows = notifications::Entity::find()
        .filter(notifications::Column::EventId.gt(first_measured_event))
        .all(&ctx.db)
        .await
        .unwrap();
    let mut in_app = Vec::new();
    let mut event_of = HashMap::new();
    for row in &rows {
        let Some(event_at) = row.event_id.and_then(|id| events.get(&id)) else { continue };
        event_of.insert(row.id, *event_at);
        if row.channel == "in_app" {
            in_app.push((row.created_at - *event_at).num_milliseconds());
        }
    }
    let mut mailed = Vec::new();
    for entry in std::fs::read_dir(ctx.config.data_dir.join("mail")).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("notification-").and_then(|n| n.strip_suffix(".eml")) else { continue };
        let Some(event_at) = id.parse::<i64>().ok().and_then(|id| event_of.get(&id)) else { continue };
        let written: chrono::DateTime<chrono::Utc> = entry.metadata().unwrap().modified().unwrap().into();
        mailed.push((written.naive_utc() - *event_at).num_milliseconds());
    }
    println!(
        "{label:<9} {:>6.0} changes/s for {seconds} s ({failures} failed)  backlog max {max_backlog}, at end of load {left}, drained in {drain_secs:.1} s",
        (total - failures) as f64 / load_secs
    );
    println!("          event -> in-app   {}", percentiles(in_app));
    println!("          event -> .eml     {}", percentiles(mailed));
    println!("          RSS after set-up {setup_rss:.1} MiB, peak during the load {peak_rss:.1} MiB");
}

#[tokio::main]
async fn main() {
    let rate = env_or("BENCH_RATE", 500u64);
    let seconds = env_or("BENCH_SECONDS", 30u64);
    let separate_relay = env_or("BENCH_SEPARATE_RELAY", 0u8) == 1;
    let transports = std::env::var("BENCH_TRANSPORTS").unwrap_or_else(|_| "embedded,redis".into());
    for transport in transports.split(',') {
        run(transport.trim(), rate, seconds, separate_relay).await;
    }
}
