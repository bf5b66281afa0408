//! The API binary's health check, as the image's HEALTHCHECK runs it: `tasklane-api healthcheck`
//! succeeds while an API answers on its configured address, and fails otherwise.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_api_binary_checks_its_own_health() {
    let dir = tasklane_testkit::TempDir(
        std::env::temp_dir().join(format!("tasklane-healthcheck-{}", tasklane_core::auth::tokens::new_id())),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let api = || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tasklane-api"));
        command
            .env("TASKLANE_DATA_DIR", &dir.0)
            .env("TASKLANE_LISTEN", format!("0.0.0.0:{port}"))
            .env("TASKLANE_METRICS_LISTEN", "off")
            .env_remove("TASKLANE_DATABASE_URL")
            .env_remove("TASKLANE_JWT_SECRET")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let healthy = || api().arg("healthcheck").status().unwrap().success();
    assert!(!healthy(), "nothing answers yet");

    let mut server = api().spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !healthy() {
        assert!(Instant::now() < deadline, "the API never became healthy");
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(!healthy(), "a stopped API is not healthy");
}
