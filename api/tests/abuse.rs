//! The API as an attacker meets it: parallel password guessing, forged proxy headers, slow
//! clients and sessions that outlive their welcome.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::{Duration, Instant};

use common::{PASSWORD, Reply, TestApp, spawn_app_with};
use sea_orm::ConnectionTrait;
use serde_json::json;
use tasklane_core::config::TrustedProxies;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Signs in as if from `client`, behind one trusted proxy.
async fn sign_in_from(app: &TestApp, forwarded_for: &str, email: &str, password: &str) -> Reply {
    let request = app
        .client
        .post(format!("{}/api/sign_in", app.base))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({ "email": email, "password": password }));
    app.send(request).await
}

fn behind_one_proxy(config: &mut tasklane_core::config::Config) {
    config.http.trusted_proxies = TrustedProxies::Count(1);
}

#[tokio::test]
async fn parallel_guesses_get_no_more_checks_than_the_limit_and_the_owner_still_signs_in() {
    let app = spawn_app_with(behind_one_proxy).await;
    app.sign_up("target@example.com").await;
    let guesses = (0..30).map(|_| sign_in_from(&app, "203.0.113.66", "target@example.com", "wrong"));
    let replies = futures_util::future::join_all(guesses).await;
    let mut statuses: Vec<u16> = replies.iter().map(|reply| reply.status.as_u16()).collect();
    statuses.sort_unstable();
    // A 401 means the password was checked: five of them, never more, whatever the timing.
    assert_eq!(statuses.iter().filter(|&&s| s == 401).count(), 5, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 25, "{statuses:?}");
    let limited = replies.iter().find(|reply| reply.status == 429).unwrap();
    assert!(limited.headers.contains_key("retry-after"));
    // The attacker's address is shut out, even with the right password ...
    sign_in_from(&app, "203.0.113.66", "target@example.com", PASSWORD).await.expect_error(429);
    // ... the owner elsewhere is only slowed (one second: one failure at the account's limit).
    let started = Instant::now();
    sign_in_from(&app, "198.51.100.7", "target@example.com", PASSWORD).await.expect(200);
    assert!(started.elapsed() >= Duration::from_millis(900), "{:?}", started.elapsed());
}

#[tokio::test]
async fn checking_the_current_password_is_limited_like_signing_in() {
    let app = spawn_app_with(|_| {}).await;
    let user = app.user("reauth").await;
    for _ in 0..5 {
        let wrong = json!({ "email": "new@example.com", "current_password": "not it" });
        app.patch("/api/users/me", &user.token, wrong).await.expect_error(403);
    }
    let right = json!({ "email": "new@example.com", "current_password": PASSWORD });
    assert_eq!(app.patch("/api/users/me", &user.token, right).await.expect_error(429), "rate_limited");
    let deletion = json!({ "password": PASSWORD });
    app.delete("/api/users/me", &user.token, Some(deletion)).await.expect_error(429);
}

#[tokio::test]
async fn the_client_is_the_first_untrusted_hop_from_the_right() {
    let app = spawn_app_with(|config| {
        behind_one_proxy(config);
        config.auth.max_failures_per_address = 2;
    })
    .await;
    app.sign_up("owner@example.com").await;
    for (i, forwarded) in ["1.1.1.1, 203.0.113.5", "2.2.2.2, 203.0.113.5"].into_iter().enumerate() {
        sign_in_from(&app, forwarded, &format!("guess{i}@example.com"), "wrong").await.expect_error(401);
    }
    // Writing another leftmost entry does not make a new client: the proxy's entry counts.
    sign_in_from(&app, "9.9.9.9, 203.0.113.5", "owner@example.com", PASSWORD).await.expect_error(429);
    sign_in_from(&app, "203.0.113.5", "owner@example.com", PASSWORD).await.expect_error(429);
    sign_in_from(&app, "203.0.113.6", "owner@example.com", PASSWORD).await.expect(200);
}

#[tokio::test]
async fn without_trusted_proxies_the_forwarded_header_is_ignored() {
    let app = spawn_app_with(|config| config.auth.max_failures_per_address = 2).await;
    app.sign_up("owner@example.com").await;
    for i in 0..2 {
        sign_in_from(&app, &format!("10.0.0.{i}"), &format!("guess{i}@example.com"), "wrong").await.expect_error(401);
    }
    sign_in_from(&app, "10.9.9.9", "owner@example.com", PASSWORD).await.expect_error(429);
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let app = spawn_app_with(|config| config.http.header_read_timeout_secs = 1).await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(b"GET /api/health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut buffer = [0u8; 256];
    // One header byte every 200 ms, never finishing; the server must end it.
    let closed_after = loop {
        assert!(started.elapsed() < Duration::from_secs(10), "the connection was never closed");
        if stream.write_all(b"X").await.is_err() {
            break started.elapsed();
        }
        let read = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buffer)).await;
        if let Ok(Ok(0) | Err(_)) = read {
            break started.elapsed();
        }
    };
    assert!(closed_after < Duration::from_secs(3), "{closed_after:?}");
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_408() {
    let app = spawn_app_with(|config| config.http.request_timeout_secs = 1).await;
    let mut stream = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    let head = "POST /api/sign_in HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"email\"";
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    while !response.windows(4).any(|w| w == b"\r\n\r\n") {
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await.unwrap().unwrap();
        assert_ne!(read, 0, "closed without an answer");
        response.extend_from_slice(&buffer[..read]);
    }
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn sessions_end_at_their_absolute_lifetime_however_often_refreshed() {
    let app = spawn_app_with(|config| config.auth.session_max_days = 30).await;
    let user = app.user("longlived").await;
    let refreshed =
        app.post("/api/token/refresh", None, json!({ "refresh_token": user.refresh_token })).await.expect(200);
    // The session began 31 days ago (it has been refreshed daily since, say).
    let db = &app.ctx.db;
    let sql = format!(
        "UPDATE sessions SET created_at = '{}' WHERE user_id = {}",
        (chrono::Utc::now() - chrono::Duration::days(31)).naive_utc().format("%Y-%m-%d %H:%M:%S"),
        user.id
    );
    db.execute_unprepared(&sql).await.unwrap();
    let refused = app.post("/api/token/refresh", None, json!({ "refresh_token": refreshed["refresh_token"] })).await;
    assert_eq!(refused.expect_error(401), "invalid_refresh_token");
}
