//! The `tasklane` binary as an operator uses it.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Env {
    dir: std::path::PathBuf,
}

impl Env {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("tasklane-cli-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tasklane"))
            .args(args)
            .env("TASKLANE_DATA_DIR", &self.dir)
            .env_remove("TASKLANE_DATABASE_URL")
            .env_remove("TASKLANE_JWT_SECRET")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn operators_manage_users_from_the_cli() {
    let env = Env::new();
    env.ok(&["migrate", "up"], None);
    let status: serde_json::Value = serde_json::from_str(&env.ok(&["migrate", "status", "-o", "json"], None)).unwrap();
    assert_eq!(status[0]["applied"], true);

    let created = env.ok(&["users", "create", "Ops@Example.com", "--name", "Ops"], Some("a long password\n"));
    assert!(created.contains("ops@example.com"), "{created}");
    let short = env.run(&["users", "create", "b@example.com", "--name", "B"], Some("short\n"));
    assert!(!short.status.success());
    let stderr = String::from_utf8(short.stderr).unwrap();
    assert!(stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1, "{stderr}");

    env.ok(&["users", "promote", "ops@example.com"], None);
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["users", "list", "--output", "json"], None)).unwrap();
    assert_eq!(listed[0]["role"], "admin");
    assert!(listed[0].get("password_hash").is_none());
    let table = env.ok(&["users", "list"], None);
    assert!(table.starts_with("ID  EMAIL"), "{table}");

    env.ok(&["users", "disable", "1"], None);
    let shown: serde_json::Value = serde_json::from_str(&env.ok(&["users", "show", "1", "-o", "json"], None)).unwrap();
    assert_eq!(shown[0]["disabled"], true);
    env.ok(&["users", "enable", "1"], None);
    env.ok(&["users", "demote", "1"], None);
    env.ok(&["users", "reset-password", "ops@example.com"], Some("another long password\n"));

    // An invitation: a single-use link for one address, printed (and emailed by the workers).
    let invited: serde_json::Value =
        serde_json::from_str(&env.ok(&["users", "invite", "New@Example.com", "-o", "json"], None)).unwrap();
    assert_eq!(invited["email"], "new@example.com");
    assert!(invited["link"].as_str().unwrap().contains("/sign-up?invitation="), "{invited}");
    let table = env.ok(&["users", "invite", "second@example.com", "--admin"], None);
    assert!(table.contains("second@example.com") && table.contains("admin"), "{table}");
    let taken = env.run(&["users", "invite", "ops@example.com"], None);
    assert!(!taken.status.success());
    assert!(String::from_utf8(taken.stderr).unwrap().contains("already exists"));

    // Without a terminal, deletion needs --yes.
    assert!(!env.run(&["users", "delete", "1"], None).status.success());
    env.ok(&["users", "delete", "1", "--yes"], None);
    let missing = env.run(&["users", "show", "1"], None);
    assert!(!missing.status.success());
    assert!(String::from_utf8(missing.stderr).unwrap().contains("no user 1"));
    // Passwords are never taken from argv.
    assert!(!env.run(&["users", "create", "c@example.com", "--name", "C", "--password", "x"], None).status.success());
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `tasklane serve` on the embedded defaults in `env`, on `port`, with metrics on `metrics_listen`.
fn serve(env: &Env, port: u16, metrics_listen: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_tasklane"))
        .arg("serve")
        .env("TASKLANE_DATA_DIR", &env.dir)
        .env("TASKLANE_LISTEN", format!("127.0.0.1:{port}"))
        .env("TASKLANE_METRICS_LISTEN", metrics_listen)
        .env_remove("TASKLANE_DATABASE_URL")
        .env_remove("TASKLANE_JWT_SECRET")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply).ok()?;
    Some(reply)
}

/// The first answer of `/readyz` on `port`, waiting up to 30 s for one.
fn first_readiness(port: u16) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(reply) = http_get(port, "/readyz") {
            return reply;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not answer");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn serve_runs_on_the_embedded_defaults_and_drains_on_sigterm() {
    use std::time::{Duration, Instant};

    let env = Env::new();
    let (port, metrics_port) = (free_port(), free_port());
    let mut child = serve(&env, port, &format!("127.0.0.1:{metrics_port}"));
    let ready = first_readiness(port);
    assert!(ready.starts_with("HTTP/1.0 200"), "{ready}");
    // The embedded defaults made their own database and signing key.
    assert!(env.dir.join("tasklane.db").exists());
    assert!(env.dir.join("jwt-secret").exists());
    // Metrics on their own listener, not on the public one.
    let metrics = http_get(metrics_port, "/metrics").unwrap();
    assert!(metrics.contains("tasklane_build_info{service=\"serve\""), "{metrics}");
    assert!(metrics.contains("tasklane_http_requests_total{route=\"/readyz\""), "{metrics}");
    assert!(http_get(port, "/metrics").unwrap().starts_with("HTTP/1.0 404"));

    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn serve_starts_without_metrics_when_their_port_is_taken() {
    let env = Env::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free_port();
    let mut child = serve(&env, port, &taken.local_addr().unwrap().to_string());
    let ready = first_readiness(port);
    assert!(ready.starts_with("HTTP/1.0 200"), "{ready}");
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn operators_inspect_replay_and_purge_dead_letters() {
    use std::time::Duration;
    use tasklane_jobs::{NewJob, Transport};

    let env = Env::new();
    env.ok(&["migrate", "up"], None);
    // Two jobs die on the events queue.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}/tasklane.db", env.dir.display());
        let db = sea_orm::Database::connect(&url).await.unwrap();
        let queue = tasklane_jobs::embedded::SqlQueue::new(db.clone());
        let job = |n: u32, kind: &str| NewJob {
            queue: "events".into(),
            kind: kind.into(),
            version: 1,
            payload: serde_json::json!({ "n": n }),
            dedup_key: None,
        };
        queue.enqueue(vec![job(1, "task.event"), job(2, "other.kind")]).await.unwrap();
        for delivery in queue.claim("events", "w", 10, Duration::from_secs(30)).await.unwrap() {
            queue.bury(&delivery, "w", "smtp said no").await.unwrap();
        }
        db.close().await.unwrap();
    });

    let stats: serde_json::Value = serde_json::from_str(&env.ok(&["queues", "stats", "-o", "json"], None)).unwrap();
    assert_eq!(stats[0]["queue"], "events");
    assert_eq!(stats[0]["dead"], 2);
    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["dlq", "list", "events", "-o", "json"], None)).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let first = listed[0]["id"].as_str().unwrap().to_owned();
    let shown = env.ok(&["dlq", "show", "events", &first], None);
    assert!(shown.contains("smtp said no"), "{shown}");
    assert!(!env.run(&["dlq", "show", "events", "999999"], None).status.success());

    // Replay needs a selection; a dry run changes nothing.
    assert!(!env.run(&["dlq", "replay", "events"], None).status.success());
    env.ok(&["dlq", "replay", "events", "--all", "--dry-run"], None);
    let stats: serde_json::Value = serde_json::from_str(&env.ok(&["queues", "stats", "-o", "json"], None)).unwrap();
    assert_eq!(stats[0]["dead"], 2);
    let replayed: serde_json::Value =
        serde_json::from_str(&env.ok(&["dlq", "replay", "events", "--kind", "task.event", "-o", "json"], None))
            .unwrap();
    assert_eq!(replayed["replayed"], 1);
    let stats: serde_json::Value = serde_json::from_str(&env.ok(&["queues", "stats", "-o", "json"], None)).unwrap();
    assert_eq!((stats[0]["dead"].as_u64(), stats[0]["ready"].as_u64()), (Some(1), Some(1)));

    // Purging asks first; without a terminal that is a no.
    assert!(!env.run(&["dlq", "purge", "events"], None).status.success());
    assert!(env.ok(&["dlq", "purge", "events", "--yes"], None).contains("purged 1"));
    let stats: serde_json::Value = serde_json::from_str(&env.ok(&["queues", "stats", "-o", "json"], None)).unwrap();
    assert_eq!(stats[0]["dead"], 0);
}

#[test]
fn completions_are_printed_without_any_set_up() {
    let env = Env::new();
    let bash = env.ok(&["completions", "bash"], None);
    assert!(bash.contains("_tasklane()") && bash.contains("complete -F _tasklane"), "{bash}");
    assert!(bash.contains("replay"), "subcommands are completed");
    assert!(env.ok(&["completions", "zsh"], None).contains("#compdef tasklane"));
    assert!(env.ok(&["completions", "fish"], None).contains("complete -c tasklane"));
    assert!(!env.run(&["completions", "tcsh"], None).status.success());
}

#[test]
fn user_tables_line_up_with_korean_display_names() {
    let env = Env::new();
    env.ok(&["migrate", "up"], None);
    env.ok(&["users", "create", "kim@example.com", "--name", "김민수"], Some("a long password\n"));
    env.ok(&["users", "create", "lee@example.com", "--name", "Lee"], Some("a long password\n"));
    let table = env.ok(&["users", "list"], None);
    // Terminal columns up to where the role column starts: Hangul takes two each.
    let width = |text: &str| -> usize {
        text.chars().map(|c| if ('\u{AC00}'..='\u{D7A3}').contains(&c) { 2 } else { 1 }).sum()
    };
    let starts: Vec<usize> = table
        .lines()
        .map(|line| {
            let at = line.find("ROLE").or_else(|| line.find("member")).unwrap();
            width(&line[..at])
        })
        .collect();
    assert_eq!(starts.len(), 3, "{table}");
    assert!(starts.iter().all(|&start| start == starts[0]), "columns do not line up:\n{table}");
}

#[test]
fn operators_generate_list_show_and_export_reports() {
    let env = Env::new();
    env.ok(&["migrate", "up"], None);
    env.ok(&["users", "create", "ana@example.com", "--name", "Ana"], Some("a long password\n"));
    env.ok(&["users", "create", "ben@example.com", "--name", "Ben"], Some("a long password\n"));

    let shown = env.ok(&["reports", "generate", "--period", "weekly", "--user", "ana@example.com"], None);
    assert!(shown.starts_with("report 1: weekly report for user 1"), "{shown}");
    assert!(shown.contains("FIGURE") && shown.contains("open_at_start") && shown.contains("DATE"), "{shown}");
    let all = env.ok(&["reports", "generate", "--period", "monthly", "--all", "-o", "json"], None);
    let all: serde_json::Value = serde_json::from_str(&all).unwrap();
    assert_eq!(all["generated"], 2);
    env.ok(&["reports", "generate", "--period", "weekly", "--team", "--async"], None);

    let listed: serde_json::Value =
        serde_json::from_str(&env.ok(&["reports", "list", "--user", "ana@example.com", "-o", "json"], None)).unwrap();
    let periods: Vec<&str> = listed.as_array().unwrap().iter().map(|r| r["period"].as_str().unwrap()).collect();
    assert_eq!(periods.len(), 2, "{listed}");
    let team = env.ok(&["reports", "list", "--team"], None);
    assert!(team.contains("team") && team.contains("pending"), "enqueued, no worker ran: {team}");

    let csv = env.ok(&["reports", "export", "1", "--format", "csv"], None);
    assert!(csv.starts_with("section,user_id,name,date,value,previous\n"), "{csv}");
    let file = env.dir.join("report.md");
    env.ok(&["reports", "export", "1", "--format", "md", "--file", file.to_str().unwrap()], None);
    assert!(std::fs::read_to_string(&file).unwrap().starts_with("# weekly report for user 1"));
    let json: serde_json::Value = serde_json::from_str(&env.ok(&["reports", "show", "1", "-o", "json"], None)).unwrap();
    assert_eq!(json["status"], "ready");

    for bad in [
        vec!["reports", "generate", "--period", "weekly"],
        vec!["reports", "generate", "--period", "weekly", "--user", "nobody@example.com"],
        vec!["reports", "generate", "--period", "weekly", "--all", "--start", "2026-12-02"],
        vec!["reports", "show", "999"],
    ] {
        let out = env.run(&bad, None);
        assert!(!out.status.success(), "{bad:?} succeeded");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(!stderr.is_empty() && !stderr.contains("panicked"), "{bad:?}: {stderr}");
    }
}

#[test]
fn tasks_imported_around_the_api_get_their_search_words_from_the_cli() {
    use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
    use tasklane_entity::{task_words, tasks};

    let env = Env::new();
    env.ok(&["migrate", "up"], None);
    let url = format!("sqlite://{}/tasklane.db", env.dir.display());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // An SQL import: rows written straight into `tasks`, without their words.
    let db = runtime.block_on(async {
        let db = sea_orm::Database::connect(&url).await.unwrap();
        let now = chrono::Utc::now().naive_utc();
        let imported = |name: &str| {
            tasks::ActiveModel {
                name: Set(name.to_owned()),
                contents: Set("imported from the old tracker".to_owned()),
                status: Set("pending".to_owned()),
                priority: Set(2),
                deadline: Set(None),
                version: Set(1),
                created_at: Set(now),
                updated_at: Set(now),
                ..Default::default()
            }
            .with_keys()
        };
        tasks::Entity::insert_many([imported("Quarterly budget"), imported("Hiring plan")])
            .exec_without_returning(&db)
            .await
            .unwrap();
        db
    });
    let rows_of = |word: &str| {
        runtime.block_on(task_words::Entity::find().filter(task_words::Column::Word.eq(word)).count(&db)).unwrap()
    };
    assert_eq!(rows_of("quarterly"), 0);

    let indexed: serde_json::Value =
        serde_json::from_str(&env.ok(&["migrate", "index-words", "-o", "json"], None)).unwrap();
    assert_eq!(indexed["indexed"], 2);
    assert_eq!((rows_of("quarterly"), rows_of("tracker")), (1, 2));
    // A second run finds nothing left to index.
    assert_eq!(env.ok(&["migrate", "index-words"], None).trim(), "indexed the words of 0 task(s)");
}
