//! Load benchmark for the task API: `POST /api/tasks`, then `GET /api/tasks` over 100,000
//! tasks in every sort order, with filters, on a second page, and with `q` searches for a
//! common, a middling and a rare word in several sort orders, with a filter, as a prefix and
//! as one- and three-character beginnings of many words, with 16 concurrent clients against
//! the release `tasklane-api` binary. Prints requests/s, p50/p99 latency, CPU per request and
//! the server's peak RSS.
//!
//! Run: `cargo bench -p tasklane-api --bench http_load` (MariaDB), or with
//! `BENCH_DATABASE=sqlite` on a SQLite file.
//! Knobs: `BENCH_MYSQL_URL` (default `mysql://root@127.0.0.1:3306`), `BENCH_CLIENTS` (16),
//! `BENCH_CREATES` (20000), `BENCH_LIST_TASKS` (100000), `BENCH_LISTS` (3000 per list),
//! `BENCH_SEARCHES` (3000 per search).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::{ActiveValue::Set, ConnectionTrait, Database, EntityTrait};
use serde_json::json;
use tasklane_entity::tasks;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    fn peak_rss_mib(&self) -> f64 {
        tasklane_testkit::peak_rss_mib(Some(self.0.id()))
    }
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: f64 = fields.get(11..13).map_or(0.0, |f| f.iter().filter_map(|v| v.parse::<f64>().ok()).sum());
    ticks / 100.0
}

/// CPU used by the API server, the database and this load generator during `phase`.
struct CpuShare {
    server: String,
    database: Option<String>,
    before: [f64; 3],
}

impl CpuShare {
    /// `separate_database`: whether the database is a process of its own (MariaDB) to count.
    fn start(server: &Server, separate_database: bool) -> Self {
        let database = separate_database
            .then(|| {
                Command::new("pgrep").args(["-o", "mariadbd|mysqld"]).output().ok().and_then(|out| {
                    String::from_utf8(out.stdout).ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
                })
            })
            .flatten();
        let server = server.0.id().to_string();
        let mut share = Self { server, database, before: [0.0; 3] };
        share.before = share.read();
        share
    }

    fn read(&self) -> [f64; 3] {
        [cpu_seconds(&self.server), self.database.as_deref().map_or(0.0, cpu_seconds), cpu_seconds("self")]
    }

    fn print(&self, requests: usize) {
        let after = self.read();
        let per_request = |i: usize| (after[i] - self.before[i]) * 1e6 / requests as f64;
        println!(
            "{:<44} CPU per request: api {:.0} µs, database {:.0} µs, load generator {:.0} µs",
            "",
            per_request(0),
            per_request(1),
            per_request(2)
        );
    }
}

struct Figures {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Figures {
    fn print(&mut self, label: &str) {
        self.latencies.sort();
        let pick = |q: f64| self.latencies[((self.latencies.len() as f64 - 1.0) * q) as usize];
        println!(
            "{label:<44} {:>8.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} requests in {:.1} s)",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            pick(0.50).as_secs_f64() * 1000.0,
            pick(0.99).as_secs_f64() * 1000.0,
            self.requests,
            self.elapsed.as_secs_f64(),
        );
    }
}

/// Runs `total` requests from `clients` concurrent clients, each waiting for its answer.
async fn drive<F, Fut>(clients: usize, total: usize, request: F) -> Figures
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = reqwest::StatusCode> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..clients {
        let next = next.clone();
        let request = request.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= total {
                    return latencies;
                }
                let sent = Instant::now();
                let status = request(n).await;
                assert!(status.is_success(), "request {n} answered {status}");
                latencies.push(sent.elapsed());
            }
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    for handle in handles {
        latencies.extend(handle.await.unwrap());
    }
    Figures { requests: total, elapsed: started.elapsed(), latencies }
}

/// Words seeded into the tasks so searches find a known share of them.
const COMMON_WORD: &str = "report"; // one task in 7
const MIDDLING_WORD: &str = "quarterly"; // one in 100
const RARE_WORD: &str = "zephyr"; // one in 10,000

/// Seeded task `i`: spread over a year of creation times, three quarters with a deadline.
fn seeded_task(i: usize, now: chrono::NaiveDateTime) -> tasks::ActiveModel {
    let topics = ["invoice", "backup", "deploy", "review", COMMON_WORD, "migrate", "audit"];
    let mut contents = format!("Check the {} numbers with the team before the weekly sync", topics[(i / 7) % 7]);
    if i % 100 == 42 {
        contents.push_str(&format!(" for the {MIDDLING_WORD} plan"));
    }
    if i % 10_000 == 4_242 {
        contents.push_str(&format!(" and the {RARE_WORD} account"));
    }
    let created = now - chrono::Duration::minutes(5 * i as i64);
    tasks::ActiveModel {
        name: Set(format!("seeded task {i} {}", topics[i % 7])),
        contents: Set(contents),
        status: Set(["pending", "in_progress", "done"][i % 3].to_owned()),
        priority: Set((i % 4 + 1) as i16),
        deadline: Set((!i.is_multiple_of(4)).then(|| created + chrono::Duration::hours(((i * 7_919) % 2_000) as i64))),
        pic_id: Set(Some(1)),
        supervisor_id: Set(None),
        creator_id: Set(Some(1)),
        version: Set(1),
        created_at: Set(created),
        updated_at: Set(created + chrono::Duration::minutes(((i * 104_729) % 100_000) as i64)),
        completed_at: Set(None),
        ..Default::default()
    }
    .with_keys()
}

/// The database the server runs on: a fresh MariaDB database or SQLite file, and how to drop it.
struct BenchDatabase {
    url: String,
    label: &'static str,
    admin: Option<sea_orm::DatabaseConnection>,
    _dir: Option<tasklane_testkit::TempDir>,
}

impl BenchDatabase {
    async fn create() -> Self {
        if std::env::var("BENCH_DATABASE").as_deref() == Ok("sqlite") {
            let dir =
                tasklane_testkit::TempDir(std::env::temp_dir().join(format!("tasklane-bench-{}", std::process::id())));
            std::fs::create_dir_all(&dir.0).unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.0.join("bench.db").display());
            return Self { url, label: "SQLite", admin: None, _dir: Some(dir) };
        }
        let server_url = std::env::var("BENCH_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306".into());
        let admin = Database::connect(&server_url).await.expect("cannot reach MariaDB");
        admin.execute_unprepared("DROP DATABASE IF EXISTS tl_bench").await.unwrap();
        admin.execute_unprepared("CREATE DATABASE tl_bench").await.unwrap();
        Self { url: format!("{server_url}/tl_bench"), label: "MariaDB", admin: Some(admin), _dir: None }
    }

    async fn drop(self) {
        if let Some(admin) = self.admin {
            admin.execute_unprepared("DROP DATABASE tl_bench").await.unwrap();
        }
    }
}

/// Lets the database finish writing out the seed before anything is measured, so the reads
/// measure serving requests, not the seed's pages still being flushed behind them (a run that
/// did not wait had p99 outliers of 45-83 ms in the first minute after the seed, with p50s below
/// the other lists'). MariaDB: fresh statistics, then `FLUSH TABLES … FOR EXPORT`, which
/// returns once the tables' changed pages are on disk; SQLite: a checkpoint that empties the
/// write-ahead log into the database file.
async fn settle(db: &sea_orm::DatabaseConnection, label: &str) {
    if label == "MariaDB" {
        db.execute_unprepared("ANALYZE TABLE tasks, task_words").await.unwrap();
        // The lock taken by FOR EXPORT belongs to the session: take and release it on one.
        let session = sea_orm::TransactionTrait::begin(db).await.unwrap();
        session.execute_unprepared("FLUSH TABLES tasks, task_words, known_words FOR EXPORT").await.unwrap();
        session.execute_unprepared("UNLOCK TABLES").await.unwrap();
        session.commit().await.unwrap();
    } else {
        db.execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)").await.unwrap();
    }
}

#[tokio::main]
async fn main() {
    // reqwest is built without a default TLS crypto provider (the services pick theirs at
    // start-up); without one it panics when the client is built, even for plain HTTP.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let clients = knob("BENCH_CLIENTS", 16);
    let creates = knob("BENCH_CREATES", 20_000);
    let list_tasks = knob("BENCH_LIST_TASKS", 100_000);
    let lists = knob("BENCH_LISTS", 3_000);
    let searches = knob("BENCH_SEARCHES", 3_000);

    let database = BenchDatabase::create().await;
    let db = Database::connect(&database.url).await.unwrap();
    tasklane_core::db::migrate_up(&db).await.unwrap();

    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{port}");
    let server = Server(
        Command::new(env!("CARGO_BIN_EXE_tasklane-api"))
            .env("TASKLANE_DATABASE_URL", &database.url)
            .env("TASKLANE_JWT_SECRET", "bench-secret-bench-secret-bench-secret-00")
            .env("TASKLANE_LISTEN", format!("127.0.0.1:{port}"))
            // A load test is one user writing as fast as it can, from one address.
            .env("TASKLANE_SIGNUP", "open")
            .env("TASKLANE_EMAIL_VERIFICATION", "off")
            .env("TASKLANE_LIMIT_TASK_WRITES_PER_MINUTE", "100000000")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("cannot start tasklane-api"),
    );
    let client = reqwest::Client::builder().pool_max_idle_per_host(clients).build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.get(format!("{base}/readyz")).send().await.map(|r| r.status().is_success()).ok() != Some(true) {
        assert!(Instant::now() < deadline, "tasklane-api did not become ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let credentials = json!({ "email": "bench@example.com", "password": "bench password 1", "display_name": "Bench" });
    client.post(format!("{base}/api/sign_up")).json(&credentials).send().await.unwrap();
    let signed_in: serde_json::Value = client
        .post(format!("{base}/api/sign_in"))
        .json(&json!({ "email": "bench@example.com", "password": "bench password 1" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = Arc::new(signed_in["access_token"].as_str().unwrap().to_owned());

    println!("tasklane-api on {}, {clients} concurrent clients", database.label);
    let create = {
        let (client, base, token) = (client.clone(), base.clone(), token.clone());
        move |n: usize| {
            let (client, base, token) = (client.clone(), base.clone(), token.clone());
            async move {
                let body = json!({ "name": format!("bench task {n}"), "contents": "load", "priority": "high", "pic": 1, "deadline": "2027-01-31" });
                client.post(format!("{base}/api/tasks")).bearer_auth(&*token).json(&body).send().await.unwrap().status()
            }
        }
    };
    // Warm the connection pools, then measure.
    drive(clients, clients * 20, create.clone()).await;
    let cpu = CpuShare::start(&server, database.admin.is_some());
    drive(clients, creates, create).await.print("POST /api/tasks");
    cpu.print(creates);

    let existing = creates + clients * 20;
    let missing = list_tasks.saturating_sub(existing);
    let now = chrono::Utc::now().naive_utc();
    for start in (0..missing).step_by(1_000) {
        let rows = (start..(start + 1_000).min(missing)).map(|i| seeded_task(i, now));
        tasks::Entity::insert_many(rows).exec_without_returning(&db).await.unwrap();
    }
    // The seed bypasses the API, so its tasks' search words are written here, as an import would.
    let indexing = Instant::now();
    let indexed = tasklane_core::db::index_task_words(&db, |_| {}).await.unwrap();
    println!("indexed the words of {indexed} seeded tasks in {:.1} s", indexing.elapsed().as_secs_f64());
    settle(&db, database.label).await;
    let total = existing.max(list_tasks);
    println!("GET /api/tasks over {total} tasks, {lists} requests per list, {searches} per search:");
    let second_page = {
        let page: serde_json::Value = client
            .get(format!("{base}/api/tasks?sort=priority&limit=50"))
            .bearer_auth(&*token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        format!("sort=priority&limit=50&cursor={}", page["next_cursor"].as_str().unwrap())
    };
    let queries = [
        "limit=50".to_owned(),
        "sort=created_at&order=asc&limit=50".to_owned(),
        "sort=updated_at&limit=50".to_owned(),
        "sort=deadline&limit=50".to_owned(),
        "sort=deadline&order=desc&limit=50".to_owned(),
        "sort=priority&limit=50".to_owned(),
        "sort=priority&order=asc&limit=50".to_owned(),
        second_page,
        "sort=priority&status=pending&limit=50".to_owned(),
        // A filter on the sort's own key (the least urgent priority, last in its order): a
        // range of the sort's index.
        "sort=priority&priority=low&limit=50".to_owned(),
        // A filter no index serves in the sort's order, which few tasks pass (none of the 20,000
        // newest is overdue): each request examines a bounded share of the order and answers a
        // short page with a cursor. So does a search beside a filter no task passes.
        "overdue=true&limit=50".to_owned(),
        // A user's own tasks (here all of them): SQLite's planner, left to itself, read them
        // all from the PIC index to sort them.
        "pic=me&sort=priority&limit=50".to_owned(),
        format!("q={COMMON_WORD}&limit=50"),
        format!("q={MIDDLING_WORD}&limit=50"),
        format!("q={RARE_WORD}&limit=50"),
        format!("q={MIDDLING_WORD}+{COMMON_WORD}&sort=priority&limit=50"),
        format!("q={COMMON_WORD}&sort=updated_at&limit=50"),
        format!("q={MIDDLING_WORD}&sort=deadline&limit=50"),
        format!("q={COMMON_WORD}&sort=priority&status=pending&limit=50"),
        format!("q={COMMON_WORD}&pic=none&limit=50"),
        format!("q={}&limit=50", &MIDDLING_WORD[..5]),
        // Beginnings of more stored words than a search walks one by one (task numbers): of
        // 11,000 tasks and of 222.
        "q=1&sort=priority&limit=50".to_owned(),
        "q=100&sort=priority&limit=50".to_owned(),
    ];
    for query in queries {
        let list = {
            let (client, url, token) = (client.clone(), format!("{base}/api/tasks?{query}"), token.clone());
            move |_: usize| {
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                async move { client.get(&url).bearer_auth(&*token).send().await.unwrap().status() }
            }
        };
        drive(clients, clients * 5, list.clone()).await;
        let cpu = CpuShare::start(&server, database.admin.is_some());
        let requests = if query.starts_with("q=") { searches } else { lists };
        let label = if query.contains("cursor=") { "sort=priority, second page".to_owned() } else { query };
        drive(clients, requests, list).await.print(&label);
        cpu.print(requests);
    }
    println!("{:<28} {:>8.1} MiB", "tasklane-api peak RSS", server.peak_rss_mib());
    drop(server);
    database.drop().await;
}
