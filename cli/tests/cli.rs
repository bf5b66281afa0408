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

    // Without a terminal, deletion needs --yes.
    assert!(!env.run(&["users", "delete", "1"], None).status.success());
    env.ok(&["users", "delete", "1", "--yes"], None);
    let missing = env.run(&["users", "show", "1"], None);
    assert!(!missing.status.success());
    assert!(String::from_utf8(missing.stderr).unwrap().contains("no user 1"));
    // Passwords are never taken from argv.
    assert!(!env.run(&["users", "create", "c@example.com", "--name", "C", "--password", "x"], None).status.success());
}
