//! The `tasklane-worker` process: killed with SIGKILL mid-batch it loses nothing (another
//! worker finishes its jobs once their lease runs out); on SIGTERM it drains and exits cleanly;
//! it serves its probes and metrics.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tasklane_core::events::TaskEventJob;
use tasklane_jobs::embedded::SqlQueue;
use tasklane_jobs::{NewJob, Transport};
use tasklane_testkit::wait_until;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start_worker(ctx: &tasklane_core::AppContext, name: &str, port: u16, lease_secs: u64) -> Child {
    worker_command(ctx, name, port, lease_secs).stderr(Stdio::null()).spawn().unwrap()
}

/// The worker's command line on `ctx`'s database, its output not yet directed.
fn worker_command(ctx: &tasklane_core::AppContext, name: &str, port: u16, lease_secs: u64) -> Command {
    use secrecy::ExposeSecret;
    let archive = match ctx.config.archive.store {
        tasklane_core::config::ArchiveStore::Local => "local",
        tasklane_core::config::ArchiveStore::Dynamodb => "dynamodb",
    };
    let mut command = Command::new(env!("CARGO_BIN_EXE_tasklane-worker"));
    command
        .env("TASKLANE_ARCHIVE", archive)
        .env("TASKLANE_DYNAMODB_TABLE", &ctx.config.archive.dynamodb_table)
        .env("TASKLANE_DATA_DIR", &ctx.config.data_dir)
        .env("TASKLANE_DATABASE_URL", ctx.config.database_url.expose_secret())
        .env("TASKLANE_JWT_SECRET", tasklane_testkit::JWT_SECRET)
        .env("TASKLANE_WORKER_NAME", name)
        .env("TASKLANE_WORKER_LISTEN", format!("127.0.0.1:{port}"))
        .env("TASKLANE_JOB_LEASE_SECS", lease_secs.to_string())
        .env("TASKLANE_WORKER_CONCURRENCY", "4")
        .env("TASKLANE_SHUTDOWN_GRACE_SECS", "5")
        // A killed worker's claims on emails run out soon, so the test need not wait long.
        .env("TASKLANE_EMAIL_CLAIM_SECS", "3")
        // Hundreds of emails to one person are the point here, not a flood to fold into a digest.
        .env("TASKLANE_LIMIT_EMAILS_PER_HOUR", "100000")
        .env("TASKLANE_EMAIL_VERIFICATION", "off")
        .env_remove("TASKLANE_QUEUE")
        .stdout(Stdio::null());
    command
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

fn events(count: i64) -> Vec<NewJob> {
    (0..count)
        .map(|n| {
            NewJob::of(&TaskEventJob {
                event_id: n,
                task_id: n,
                seq: 1,
                kind: tasklane_core::events::EventKind::Created,
                actor_id: None,
                payload: tasklane_core::events::EventPayload::default(),
                created_at: chrono::Utc::now(),
            })
            .unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_killed_worker_loses_no_jobs_and_a_terminated_one_drains() {
    let (ctx, _dir) = tasklane_testkit::fresh_context(|_| {}).await;
    let queue = SqlQueue::new(ctx.db.clone());
    queue.enqueue(events(3000)).await.unwrap();

    // Kill workers until one dies holding leased jobs (jobs are quick, so a kill can fall
    // between two batches).
    let mut orphaned = None;
    for attempt in 0..20 {
        let port = free_port();
        let mut doomed = start_worker(&ctx, "doomed", port, 600);
        wait_until("a worker to take jobs", Duration::from_secs(30), async || {
            queue.stats("events").await.unwrap().in_flight > 0
        })
        .await;
        doomed.kill().unwrap();
        doomed.wait().unwrap();
        let stats = queue.stats("events").await.unwrap();
        if stats.in_flight > 0 {
            orphaned = Some((attempt, stats));
            break;
        }
    }
    let (_, orphaned) = orphaned.expect("no kill ever caught a worker holding jobs");
    assert!(orphaned.ready > 0, "the test needs jobs left to run: {orphaned:?}");

    // They are leased for 10 minutes to "doomed"; hand them over the way an expired lease does.
    use sea_orm::ConnectionTrait;
    ctx.db
        .execute_unprepared("UPDATE jobs SET lease_until = '2000-01-01 00:00:00' WHERE lease_owner = 'doomed'")
        .await
        .unwrap();

    // A second worker finishes everything, the orphans included, and serves its probes.
    let port = free_port();
    let mut survivor = start_worker(&ctx, "survivor", port, 30);
    wait_until("every job to be finished", Duration::from_secs(60), async || {
        let stats = queue.stats("events").await.unwrap();
        stats.ready + stats.in_flight + stats.scheduled + stats.dead == 0
    })
    .await;
    let ready = http_get(port, "/readyz").unwrap();
    assert!(ready.starts_with("HTTP/1.0 200"), "{ready}");
    let metrics = http_get(port, "/metrics").unwrap();
    assert!(metrics.contains("tasklane_jobs_total"), "{metrics}");
    assert!(metrics.contains("tasklane_job_queue_wait_seconds_bucket"), "histograms export buckets: {metrics}");
    // The image's health check: the binary asks its own listener.
    let healthcheck = || worker_command(&ctx, "probe", port, 30).arg("healthcheck").status().unwrap();
    assert!(healthcheck().success());

    // SIGTERM: it stops taking jobs and exits cleanly within the grace period.
    queue.enqueue(events(200)).await.unwrap();
    let killed = Command::new("kill").args(["-TERM", &survivor.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = survivor.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the worker did not stop on SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
    let after = queue.stats("events").await.unwrap();
    assert_eq!(after.in_flight, 0, "jobs still held after a clean shutdown: {after:?}");
    assert!(!healthcheck().success(), "a stopped worker is not healthy");
}

fn mail_files(ctx: &tasklane_core::AppContext) -> usize {
    std::fs::read_dir(ctx.config.data_dir.join("mail"))
        .map(|dir| dir.filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "eml")).count())
        .unwrap_or(0)
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn a_worker_killed_mid_batch_still_sends_each_email_once_and_archives_each_event_once() {
    use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use tasklane_core::archive::{self, ArchiveQuery};
    use tasklane_entity::{notifications, task_events};
    tasklane_testkit::assert_local_aws();
    let table = format!("tl-test-{}", tasklane_core::auth::tokens::new_id().to_lowercase());
    let (ctx, _dir) = tasklane_testkit::fresh_context(move |config| {
        config.archive.store = tasklane_core::config::ArchiveStore::Dynamodb;
        config.archive.dynamodb_table = table;
    })
    .await;
    archive::init(&ctx).await.unwrap();
    let cara = tasklane_testkit::member(&ctx, "cara@example.com").await;
    let pia = tasklane_testkit::member(&ctx, "pia@example.com").await;
    let sup = tasklane_testkit::member(&ctx, "sup@example.com").await;
    const TASKS: usize = 150;
    let mut task_ids = Vec::new();
    for n in 0..TASKS {
        let body = serde_json::json!({ "name": format!("task {n}"), "pic": pia.user_id, "supervisor": sup.user_id });
        task_ids
            .push(tasklane_core::tasks::create(&ctx, &cara, serde_json::from_value(body).unwrap()).await.unwrap().id);
    }

    let queue = SqlQueue::new(ctx.db.clone());
    let holding = async || {
        let mut held = 0;
        for name in ["events", "email", "maintenance"] {
            held += queue.stats(name).await.unwrap().in_flight;
        }
        held
    };
    let mut caught = false;
    for _ in 0..20 {
        let mut doomed = start_worker(&ctx, "doomed", free_port(), 600);
        wait_until("the first emails", Duration::from_secs(30), async || mail_files(&ctx) > 0).await;
        doomed.kill().unwrap();
        doomed.wait().unwrap();
        if holding().await > 0 && mail_files(&ctx) < 2 * TASKS {
            caught = true;
            break;
        }
    }
    assert!(caught, "no kill ever caught the worker mid-batch");
    ctx.db
        .execute_unprepared("UPDATE jobs SET lease_until = '2000-01-01 00:00:00' WHERE lease_owner = 'doomed'")
        .await
        .unwrap();

    let mut survivor = start_worker(&ctx, "survivor", free_port(), 30);
    wait_until("every email and every archive copy", Duration::from_secs(90), async || {
        let unarchived =
            task_events::Entity::find().filter(task_events::Column::ArchivedAt.is_null()).count(&ctx.db).await.unwrap();
        // Emails the killed worker had claimed wait for their claims to run out.
        let unsent = notifications::Entity::find()
            .filter(notifications::Column::Channel.eq("email"))
            .filter(notifications::Column::Status.ne("sent"))
            .count(&ctx.db)
            .await
            .unwrap();
        mail_files(&ctx) >= 2 * TASKS && unarchived == 0 && unsent == 0 && holding().await == 0
    })
    .await;
    survivor.kill().unwrap();
    survivor.wait().unwrap();

    assert_eq!(mail_files(&ctx), 2 * TASKS, "one email per event and recipient");
    let emails =
        notifications::Entity::find().filter(notifications::Column::Channel.eq("email")).all(&ctx.db).await.unwrap();
    assert_eq!(emails.len(), 2 * TASKS);
    assert!(emails.iter().all(|row| row.status == "sent"), "every email recorded as sent");
    let in_app =
        notifications::Entity::find().filter(notifications::Column::Channel.eq("in_app")).count(&ctx.db).await.unwrap();
    assert_eq!(in_app as usize, 2 * TASKS);
    for task in task_ids {
        let archived = archive::query(&ctx, &ArchiveQuery::Task(task), None).await.unwrap();
        assert_eq!(archived.len(), 1, "task {task}: one archive item per event");
    }
}

#[tokio::test]
async fn a_discord_webhook_that_times_out_logs_no_token() {
    let (ctx, dir) = tasklane_testkit::fresh_context(|_| {}).await;
    // A webhook that accepts connections and never answers.
    let blackhole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = "whtoken-SECRET-4242";
    let webhook = format!("http://{}/api/webhooks/1/{token}", blackhole.local_addr().unwrap());
    let log_path = dir.0.join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut worker = worker_command(&ctx, "alerting", free_port(), 30)
        .env("TASKLANE_DISCORD_WEBHOOK_URL", &webhook)
        .env("TASKLANE_ALERT_WINDOW_SECS", "1")
        .env("RUST_LOG", "debug")
        .stderr(log)
        .spawn()
        .unwrap();
    // A job nobody handles dies at once, and its alert goes to the silent webhook.
    let doomed = NewJob {
        queue: "maintenance".into(),
        kind: "test.nobody_handles_this".into(),
        version: 1,
        payload: serde_json::json!({}),
        dedup_key: None,
    };
    SqlQueue::new(ctx.db.clone()).enqueue(vec![doomed]).await.unwrap();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_until("the alert to fail", Duration::from_secs(60), async || {
        read_log().contains("cannot send the dead-letter alert")
    })
    .await;
    worker.kill().unwrap();
    worker.wait().unwrap();
    let log = read_log();
    assert!(log.contains("cannot reach Discord"), "{log}");
    assert!(!log.contains(token), "the webhook's token is in the log:\n{log}");
    drop(blackhole);
}
