//! Scheduled weekly reports at scale, on MariaDB: 10,000 users over 1,000,000 tasks and their
//! 2,100,000 events (nine weeks of history: every task created, 60 % started, 40 % done, 10 %
//! then handed to someone else), then the shipped `tasklane-worker` binary started on that
//! database. Its own scheduler finds the week that just closed and enqueues one report job
//! per active user and one team report in chunks; its workers compute and store them.
//!
//! Prints the seeding time, then the time from the worker's start until every report of the
//! week is ready, reports a second, and the worker's peak RSS. Users have report emails off,
//! so the figures are the reports' own (email throughput is the notifications benchmark's);
//! the month's run is marked done beforehand so only the week is built, and every deadline
//! lies more than a week in the past so the deadline-reminder sweep has nothing to do.
//!
//! `cargo bench -p tasklane-worker --bench reports`
//! Knobs: `BENCH_USERS` (10000), `BENCH_TASKS` (1000000), `BENCH_CONCURRENCY` (worker
//! concurrency per queue, 16), `BENCH_QUEUE` (`redis`, the production shape, or `embedded`),
//! `BENCH_REDIS_URL` (`redis://127.0.0.1:6379`), `BENCH_MYSQL_URL` (`mysql://root@127.0.0.1:3306`),
//! `BENCH_VERBOSE` (time each seeding statement), `BENCH_KEEP` (keep the database afterwards,
//! and reuse a kept one instead of seeding again, within the same week).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};
use tasklane_core::reports::period::{Period, PeriodKind};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The worker process; killed when dropped.
struct Worker(Child);

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db.query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

#[tokio::main]
async fn main() {
    let users: u64 = env_or("BENCH_USERS", 10_000);
    let tasks: u64 = env_or("BENCH_TASKS", 1_000_000);
    let concurrency: usize = env_or("BENCH_CONCURRENCY", 16);
    let queue = std::env::var("BENCH_QUEUE").unwrap_or_else(|_| "redis".into());
    let redis_url = std::env::var("BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let server = std::env::var("BENCH_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
    let admin = Database::connect(&server).await.expect("cannot reach MariaDB (BENCH_MYSQL_URL)");
    let keep = std::env::var_os("BENCH_KEEP").is_some();
    let url = format!("{server}/tl_bench_reports");
    let reuse = keep && Database::connect(&url).await.is_ok();
    if !reuse {
        admin.execute_unprepared("DROP DATABASE IF EXISTS tl_bench_reports").await.unwrap();
        admin.execute_unprepared("CREATE DATABASE tl_bench_reports").await.unwrap();
    }
    // One connection, so the session settings below hold for every seeding statement.
    let db = Database::connect(ConnectOptions::new(url.clone()).max_connections(1).to_owned()).await.unwrap();
    tasklane_core::db::migrate_up(&db).await.unwrap();

    // The week that closed last (UTC), and nine weeks of history ending three days into it.
    let now = Utc::now();
    let week = Period::containing(PeriodKind::Weekly, now, chrono_tz::Tz::UTC).previous(chrono_tz::Tz::UTC);
    let month = Period::containing(PeriodKind::Monthly, now, chrono_tz::Tz::UTC).previous(chrono_tz::Tz::UTC);
    let history_start = week.start - chrono::Duration::weeks(8);
    let span_secs = (week.start + chrono::Duration::days(3) - history_start).num_seconds();
    let origin = history_start.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string();

    let seeding = Instant::now();
    let seed = [
        // The rows are consistent by construction: skip the per-row checks while loading.
        "SET SESSION foreign_key_checks = 0, unique_checks = 0".to_owned(),
        format!(
            "INSERT INTO users (id, email, password_hash, display_name, role, disabled, notification_prefs, \
             token_version, created_at, updated_at) SELECT seq, CONCAT('user', seq, '@bench.example'), 'x', \
             CONCAT('User ', seq), 'member', 0, '{{\"email\": \"off\"}}', 0, '{origin}', '{origin}' FROM seq_1_to_{users}"
        ),
        // Task n: created at a pseudo-random instant of the nine weeks, due 6 to 20 days before
        // that; PIC n mod users (the next one after a handover); started a day later if
        // n mod 10 < 6, done two days after that if < 4, handed over a day after that if 0.
        format!(
            "INSERT INTO tasks (id, name, contents, status, priority, deadline, pic_id, supervisor_id, creator_id, \
             version, created_at, updated_at, completed_at, completed_due, started_at, \
             urgency_key, deadline_key, search_text) \
             SELECT seq, CONCAT('task ', seq), '', \
             CASE WHEN seq % 10 < 4 THEN 'done' WHEN seq % 10 < 6 THEN 'in_progress' ELSE 'pending' END, \
             1 + seq % 4, created - INTERVAL 20 DAY + INTERVAL (seq % 14) DAY, \
             1 + (seq + IF(seq % 10 = 0, 1, 0)) % {users}, NULL, 1 + (seq * 7) % {users}, \
             CASE WHEN seq % 10 = 0 THEN 4 WHEN seq % 10 < 4 THEN 3 WHEN seq % 10 < 6 THEN 2 ELSE 1 END, \
             created, created, IF(seq % 10 < 4, created + INTERVAL 3 DAY, NULL), \
             IF(seq % 10 < 4, created - INTERVAL 20 DAY + INTERVAL (seq % 14) DAY, NULL), \
             IF(seq % 10 < 6, created + INTERVAL 1 DAY, NULL), \
             (3 - seq % 4) * 1000000000000000000 + TIMESTAMPDIFF(MICROSECOND, '1970-01-01', \
             created - INTERVAL 20 DAY + INTERVAL (seq % 14) DAY), \
             TIMESTAMPDIFF(MICROSECOND, '1970-01-01', created - INTERVAL 20 DAY + INTERVAL (seq % 14) DAY), \
             CONCAT(' task ', seq, ' ') \
             FROM (SELECT seq, TIMESTAMP('{origin}') + INTERVAL ((seq * 2654435761) % {span_secs}) SECOND AS created \
             FROM seq_1_to_{tasks}) AS s"
        ),
        event_sql(
            1,
            "task.created",
            ("'pending'", "NULL"),
            "t.created_at",
            "NULL",
            "NULL",
            ("1 + t.id % {users}", "NULL"),
            "IF(t.id % 10 < 6, t.created_at + INTERVAL 1 DAY, NULL)",
            "TRUE",
            users,
        ),
        event_sql(
            2,
            "task.status_changed",
            ("'in_progress'", "'pending'"),
            "t.created_at + INTERVAL 1 DAY",
            "t.created_at + INTERVAL 1 DAY",
            "NULL",
            ("1 + t.id % {users}", "1 + t.id % {users}"),
            "IF(t.id % 10 < 4, t.created_at + INTERVAL 3 DAY, NULL)",
            "t.id % 10 < 6",
            users,
        ),
        event_sql(
            3,
            "task.status_changed",
            ("'done'", "'in_progress'"),
            "t.created_at + INTERVAL 3 DAY",
            "t.created_at + INTERVAL 1 DAY",
            "t.created_at + INTERVAL 3 DAY",
            ("1 + t.id % {users}", "1 + t.id % {users}"),
            "IF(t.id % 10 = 0, t.created_at + INTERVAL 4 DAY, NULL)",
            "t.id % 10 < 4",
            users,
        ),
        event_sql(
            4,
            "task.assigned",
            ("'done'", "'done'"),
            "t.created_at + INTERVAL 4 DAY",
            "t.created_at + INTERVAL 1 DAY",
            "t.created_at + INTERVAL 3 DAY",
            ("1 + (t.id + 1) % {users}", "1 + t.id % {users}"),
            "NULL",
            "t.id % 10 = 0",
            users,
        ),
        // Only the week is measured: the month's run is done already.
        format!(
            "INSERT INTO report_runs (period, first_day, last_user_id, enqueued, started_at, finished_at) \
             VALUES ('monthly', '{}', 0, 0, NOW(6), NOW(6))",
            month.first_day
        ),
    ];
    let reset = [
        "DELETE FROM reports".to_owned(),
        "DELETE FROM report_runs WHERE period = 'weekly'".to_owned(),
        "DELETE FROM jobs".to_owned(),
    ];
    for statement in if reuse { &reset[..] } else { &seed[..] } {
        let step = Instant::now();
        db.execute_unprepared(statement).await.unwrap();
        if std::env::var_os("BENCH_VERBOSE").is_some() {
            println!("  {:.1} s: {}", step.elapsed().as_secs_f64(), &statement[..statement.len().min(60)]);
        }
    }
    let events = count(&db, "SELECT COUNT(*) FROM task_events").await;
    println!(
        "{} {users} users, {tasks} tasks and {events} events on MariaDB in {:.1} s",
        if reuse { "reused" } else { "seeded" },
        seeding.elapsed().as_secs_f64()
    );
    println!("weekly reports for {} to {}, jobs on the {queue} queue", week.first_day, week.last_day);

    let data_dir = std::env::temp_dir().join(format!("tasklane-bench-reports-{}", std::process::id()));
    std::fs::create_dir_all(&data_dir).unwrap();
    let started = Instant::now();
    let worker = Worker(
        Command::new(env!("CARGO_BIN_EXE_tasklane-worker"))
            .env("TASKLANE_DATABASE_URL", &url)
            .env("TASKLANE_JWT_SECRET", "bench-secret-bench-secret-bench-secret-00")
            .env("TASKLANE_DATA_DIR", &data_dir)
            .env("TASKLANE_WORKER_LISTEN", "127.0.0.1:0")
            .env("TASKLANE_WORKER_CONCURRENCY", concurrency.to_string())
            .env("TASKLANE_WORKER_NAME", "bench-reports")
            .env("TASKLANE_QUEUE", &queue)
            .env("TASKLANE_REDIS_URL", &redis_url)
            .env("TASKLANE_REDIS_PREFIX", format!("tl-bench-reports:{}:", std::process::id()))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start tasklane-worker"),
    );
    let expected = users as i64 + 1;
    let ready_sql = format!(
        "SELECT COUNT(*) FROM reports WHERE period = 'weekly' AND first_day = '{}' AND status = 'ready'",
        week.first_day
    );
    let mut last_print = Instant::now();
    loop {
        let ready = count(&db, &ready_sql).await;
        if ready >= expected {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            let rss = std::fs::read_to_string(format!("/proc/{}/status", worker.0.id())).unwrap_or_default();
            let rss = rss.lines().find(|line| line.starts_with("VmRSS:")).unwrap_or("VmRSS: ?").to_owned();
            println!("  {ready} of {expected} ready after {:.0} s ({rss})", started.elapsed().as_secs_f64());
            last_print = Instant::now();
        }
        assert!(started.elapsed() < Duration::from_secs(900), "reports did not finish in 15 minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss = tasklane_testkit::peak_rss_mib(Some(worker.0.id()));
    println!(
        "{expected} weekly reports (one per user and the team's) in {elapsed:.1} s: {:.0} reports/s; \
         tasklane-worker peak RSS {rss:.1} MiB",
        expected as f64 / elapsed
    );
    drop(worker);
    let _ = std::fs::remove_dir_all(&data_dir);
    if !keep {
        admin.execute_unprepared("DROP DATABASE tl_bench_reports").await.unwrap();
    }
}

/// The `INSERT … SELECT` writing event `seq` (of `kind`, leaving `status`, the start and
/// completion instants and `pic`, superseded by the next event at `superseded`) for every
/// task matching `which`.
#[allow(clippy::too_many_arguments)]
fn event_sql(
    seq: i32,
    kind: &str,
    (status, before_status): (&str, &str),
    at: &str,
    started: &str,
    completed: &str,
    (pic, before_pic): (&str, &str),
    superseded: &str,
    which: &str,
    users: u64,
) -> String {
    let pic = pic.replace("{users}", &users.to_string());
    let before_pic = before_pic.replace("{users}", &users.to_string());
    // Done states keep the deadline they were completed by.
    let completed_due = format!("IF({status} = 'done', t.deadline, NULL)");
    format!(
        "INSERT INTO task_events (task_id, seq, actor_id, kind, payload, created_at, published_at, archived_at, \
         pic_id, status, priority, deadline, task_created_at, started_at, completed_at, superseded_at, \
         completed_due, prev_pic_id, prev_status) \
         SELECT t.id, {seq}, t.creator_id, '{kind}', JSON_OBJECT('task', JSON_OBJECT('name', t.name)), {at}, {at}, NULL, \
         {pic}, {status}, t.priority, t.deadline, t.created_at, {started}, {completed}, {superseded}, \
         {completed_due}, {before_pic}, {before_status} \
         FROM tasks t WHERE {which}"
    )
}
