//! Test and benchmark support shared by every crate: a fresh, migrated database per test —
//! SQLite in a temporary directory by default, a new MariaDB/MySQL database when
//! `TASKLANE_TEST_MYSQL_URL` names a server — user fixtures, waiting on a condition with a
//! deadline, the AWS emulator's mail reader, and memory figures for benchmarks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use sea_orm::{ConnectionTrait, Database};
use tasklane_core::AppContext;
use tasklane_core::config::Config;

/// The JWT secret every test context signs with.
pub const JWT_SECRET: &str = "test-secret-test-secret-test-secret-0123";

/// A directory removed when dropped.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An empty database of its own — SQLite in a new temporary directory, or a new MariaDB/MySQL
/// database when `TASKLANE_TEST_MYSQL_URL` names a server — as its URL, with the directory.
pub async fn fresh_database() -> (String, TempDir) {
    let name = tasklane_core::auth::tokens::new_id().to_lowercase().replace(['-', '_'], "x");
    let data_dir = std::env::temp_dir().join(format!("tasklane-test-{name}"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let database_url = match std::env::var("TASKLANE_TEST_MYSQL_URL") {
        Ok(server) if !server.is_empty() => {
            let server = server.trim_end_matches('/').to_owned();
            let admin = Database::connect(&server).await.expect("cannot reach the MySQL test server");
            admin.execute_unprepared(&format!("CREATE DATABASE tl_test_{name}")).await.unwrap();
            admin.close().await.ok();
            format!("{server}/tl_test_{name}")
        }
        _ => format!("sqlite://{}/tasklane.db", data_dir.display()),
    };
    (database_url, TempDir(data_dir))
}

/// A migrated context on a database of its own, and the directory holding its embedded state.
pub async fn fresh_context(adjust: impl FnOnce(&mut Config)) -> (AppContext, TempDir) {
    let (database_url, data_dir) = fresh_database().await;
    let data_dir_text = data_dir.0.display().to_string();
    let mut config = Config::from_sources(None, |key| match key {
        "TASKLANE_DATA_DIR" => Some(data_dir_text.clone()),
        "TASKLANE_DATABASE_URL" => Some(database_url.clone()),
        "TASKLANE_JWT_SECRET" => Some(JWT_SECRET.to_owned()),
        "TASKLANE_DATABASE_MAX_CONNECTIONS" => Some("8".to_owned()),
        // The same joining rules on both databases; the tests of those rules set their own.
        "TASKLANE_SIGNUP" => Some("open".to_owned()),
        "TASKLANE_EMAIL_VERIFICATION" => Some("off".to_owned()),
        _ => None,
    })
    .unwrap();
    // The daily digest sweep runs in the digest hour: keep it half a day away, so a test that
    // runs then does not see digests it did not ask for.
    config.notify.digest_hour_utc = (chrono::Timelike::hour(&chrono::Utc::now()) + 12) % 24;
    adjust(&mut config);
    (AppContext::start(config, true).await.unwrap(), data_dir)
}

/// Creates a member and returns them as the signed-in principal of core calls.
pub async fn member(ctx: &AppContext, email: &str) -> tasklane_core::auth::Principal {
    use tasklane_core::accounts::{DisplayName, Email, create_user};
    use tasklane_core::auth::{Principal, Role, password::Password};
    let user = create_user(
        ctx,
        &Email::parse(email).unwrap(),
        &Password::parse("member password".into()).unwrap(),
        &DisplayName::parse("Member").unwrap(),
        Role::Member,
    )
    .await
    .unwrap();
    Principal { user_id: user.id, email: user.email, role: Role::Member, session_id: String::new() }
}

/// A member who never signs in, written straight to the database without hashing a
/// password (argon2 takes 19 MiB a hash, which the allocator keeps): cheap enough for
/// benchmarks that need many. Returns the user's id.
pub async fn quick_member(ctx: &AppContext, email: &str) -> i64 {
    use sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let now = tasklane_core::stored_now();
    let user = tasklane_entity::users::ActiveModel {
        email: Set(email.to_owned()),
        password_hash: Set("not-a-password-hash".into()),
        display_name: Set(email.split('@').next().unwrap_or(email).to_owned()),
        role: Set("member".into()),
        disabled: Set(false),
        notification_prefs: Set(serde_json::json!({})),
        token_version: Set(0),
        created_at: Set(now),
        updated_at: Set(now),
        email_verified_at: Set(Some(now)),
        ..Default::default()
    };
    user.insert(&ctx.db).await.unwrap().id
}

/// Polls `done` until it holds, failing the test with `what` after `timeout`: tests wait on
/// conditions with a deadline, never on a fixed sleep.
pub async fn wait_until(what: &str, timeout: std::time::Duration, mut done: impl AsyncFnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done().await {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Checks that the AWS SDK points at a local emulator, so a test can never reach real AWS.
pub fn assert_local_aws() {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL must point at the local emulator");
    assert!(endpoint.contains("127.0.0.1") || endpoint.contains("localhost"), "refusing to test against {endpoint}");
}

/// Peak resident memory in MiB of process `pid` (this process when `None`), from Linux's
/// `/proc/<pid>/status`; NaN where that cannot be read. For benchmarks.
pub fn peak_rss_mib(pid: Option<u32>) -> f64 {
    memory_mib(pid, "VmHWM:")
}

/// Resident memory in MiB of this process right now. For benchmarks.
pub fn rss_mib() -> f64 {
    memory_mib(None, "VmRSS:")
}

/// One memory figure (`field` of `/proc/<pid>/status`, in KiB there) in MiB.
fn memory_mib(pid: Option<u32>, field: &str) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/status".to_owned(), |pid| format!("/proc/{pid}/status"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .find(|line| line.starts_with(field))
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|kib| kib.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Starts this process's peak-RSS count afresh (Linux), so a benchmark's peak excludes its
/// set-up. Best effort: elsewhere nothing happens.
pub fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The emails the local SES emulator (moto) holds from `sender`, as its data endpoint lists
/// them (`source`, `destinations`, `subject`, `body`). The endpoint sometimes fails while moto
/// is busy; it is asked again until it answers.
pub async fn emulated_emails_from(sender: &str) -> Vec<serde_json::Value> {
    assert_local_aws();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let url = format!("{}/moto-api/data.json", endpoint.trim_end_matches('/'));
    for _ in 0..50 {
        let answer = match reqwest::get(&url).await {
            Ok(response) => response.json::<serde_json::Value>().await.ok(),
            Err(_) => None,
        };
        if let Some(data) = answer {
            let messages = data["ses"]["Message"].as_array().cloned().unwrap_or_default();
            return messages.into_iter().filter(|message| message["source"] == sender).collect();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the AWS emulator's data endpoint did not answer with JSON")
}
