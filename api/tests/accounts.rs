//! Sign-up, sign-in, tokens and account life cycle over HTTP.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Instant;

use common::{PASSWORD, spawn_app, spawn_app_with};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn sign_up_then_sign_in_with_post_or_the_seeds_get() {
    let app = spawn_app().await;
    app.sign_up("kim@example.com").await;
    let body = app.sign_in("KIM@example.com ", PASSWORD).await.expect(200);
    assert_eq!(body["email"], "kim@example.com");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() <= 900);
    let token = body["access_token"].as_str().unwrap();
    let me = app.get("/api/users/me", token).await.expect(200);
    assert_eq!(me["email"], "kim@example.com");

    // The seed's form: GET with a JSON body, and its Korean message on request.
    let request = app
        .client
        .request(Method::GET, format!("{}/api/sign_in", app.base))
        .header("accept-language", "ko-KR,ko;q=0.9")
        .body(json!({ "email": "kim@example.com", "password": PASSWORD }).to_string());
    let body = app.send(request).await.expect(200);
    assert_eq!(body["message"], "사용자가 성공적으로 로그인했습니다.");
    assert_eq!(body["email"], "kim@example.com");
}

#[tokio::test]
async fn sign_up_rejects_duplicates_and_bad_values() {
    let app = spawn_app().await;
    app.sign_up("lee@example.com").await;
    let dup = json!({ "email": "LEE@example.com", "password": PASSWORD, "display_name": "Lee" });
    assert_eq!(app.post("/api/sign_up", None, dup).await.expect_error(409), "email_taken");
    for (body, code) in [
        (json!({ "email": "nope", "password": PASSWORD, "display_name": "x" }), "invalid_email"),
        (json!({ "email": "a@example.com", "password": "short", "display_name": "x" }), "invalid_password"),
        (json!({ "email": "a@example.com", "password": "x".repeat(129), "display_name": "x" }), "invalid_password"),
        (json!({ "email": "a@example.com", "password": PASSWORD, "display_name": "  " }), "invalid_display_name"),
    ] {
        assert_eq!(app.post("/api/sign_up", None, body).await.expect_error(422), code);
    }
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    app.sign_up("park@example.com").await;
    let started = Instant::now();
    let wrong_password = app.sign_in("park@example.com", "not the password").await;
    let wrong_password_time = started.elapsed();
    let started = Instant::now();
    let unknown = app.sign_in("nobody@example.com", "not the password").await;
    let unknown_time = started.elapsed();
    assert_eq!(wrong_password.status, unknown.status);
    assert_eq!(wrong_password.status.as_u16(), 401);
    assert_eq!(wrong_password.body, unknown.body);
    // Both verify one argon2 hash; neither may be an order of magnitude faster.
    let (fast, slow) = if wrong_password_time < unknown_time {
        (wrong_password_time, unknown_time)
    } else {
        (unknown_time, wrong_password_time)
    };
    assert!(slow < fast * 5, "timings differ too much: {wrong_password_time:?} vs {unknown_time:?}");
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_account() {
    let app = spawn_app().await;
    app.sign_up("choi@example.com").await;
    for _ in 0..5 {
        app.sign_in("choi@example.com", "wrong password").await.expect_error(401);
    }
    // Even the right password is refused until the window passes, and it says when to retry.
    let limited = app.sign_in("choi@example.com", PASSWORD).await;
    let retry_after: u64 = limited.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after > 0 && retry_after <= 15 * 60);
    assert_eq!(limited.expect_error(429), "rate_limited");
    // An unknown account is limited the same way (no enumeration through the limiter).
    for _ in 0..5 {
        app.sign_in("ghost@example.com", "wrong password").await.expect_error(401);
    }
    app.sign_in("ghost@example.com", "wrong password").await.expect_error(429);
}

#[tokio::test]
async fn failed_sign_ins_are_rate_limited_per_address() {
    let app = spawn_app_with(|config| config.auth.max_failures_per_address = 3).await;
    app.sign_up("jung@example.com").await;
    for i in 0..3 {
        app.sign_in(&format!("guess{i}@example.com"), "wrong password").await.expect_error(401);
    }
    app.sign_in("jung@example.com", PASSWORD).await.expect_error(429);
}

#[tokio::test]
async fn a_success_resets_the_account_counter() {
    let app = spawn_app().await;
    app.sign_up("han@example.com").await;
    for _ in 0..4 {
        app.sign_in("han@example.com", "wrong password").await.expect_error(401);
    }
    app.sign_in("han@example.com", PASSWORD).await.expect(200);
    for _ in 0..4 {
        app.sign_in("han@example.com", "wrong password").await.expect_error(401);
    }
    app.sign_in("han@example.com", PASSWORD).await.expect(200);
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let app = spawn_app().await;
    let user = app.user("yoon").await;
    let first = app.post("/api/token/refresh", None, json!({ "refresh_token": user.refresh_token })).await.expect(200);
    let second_refresh = first["refresh_token"].as_str().unwrap().to_owned();
    let second_access = first["access_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, user.refresh_token);
    app.get("/api/users/me", &second_access).await.expect(200);

    // Replaying the first refresh token is theft: the whole session dies.
    let reused = app.post("/api/token/refresh", None, json!({ "refresh_token": user.refresh_token })).await;
    assert_eq!(reused.expect_error(401), "refresh_token_reused");
    app.post("/api/token/refresh", None, json!({ "refresh_token": second_refresh })).await.expect_error(401);
    app.get("/api/users/me", &second_access).await.expect_error(401);
    app.get("/api/users/me", &user.token).await.expect_error(401);
    app.post("/api/token/refresh", None, json!({ "refresh_token": "made-up" })).await.expect_error(401);
}

#[tokio::test]
async fn sign_out_ends_only_this_session() {
    let app = spawn_app().await;
    let user = app.user("kang").await;
    let other = app.sign_in(&user.email, PASSWORD).await.expect(200);
    let other_token = other["access_token"].as_str().unwrap();
    app.post("/api/sign_out", Some(&user.token), json!({})).await.expect(200);
    app.get("/api/users/me", &user.token).await.expect_error(401);
    app.post("/api/token/refresh", None, json!({ "refresh_token": user.refresh_token })).await.expect_error(401);
    app.get("/api/users/me", other_token).await.expect(200);
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session() {
    let app = spawn_app().await;
    let user = app.user("cho").await;
    let other = app.sign_in(&user.email, PASSWORD).await.expect(200);
    app.post("/api/sign_out_everywhere", Some(&user.token), json!({})).await.expect(200);
    app.get("/api/users/me", &user.token).await.expect_error(401);
    app.get("/api/users/me", other["access_token"].as_str().unwrap()).await.expect_error(401);
    app.post("/api/token/refresh", None, json!({ "refresh_token": other["refresh_token"] })).await.expect_error(401);
    app.sign_in(&user.email, PASSWORD).await.expect(200);
}

#[tokio::test]
async fn password_change_needs_the_current_one_and_ends_other_sessions() {
    let app = spawn_app().await;
    let user = app.user("lim").await;
    let other = app.sign_in(&user.email, PASSWORD).await.expect(200);
    let change = json!({ "password": "a brand new password" });
    assert_eq!(app.patch("/api/users/me", &user.token, change).await.expect_error(422), "current_password_required");
    let wrong = json!({ "password": "a brand new password", "current_password": "nope nope" });
    app.patch("/api/users/me", &user.token, wrong).await.expect_error(403);
    let right = json!({ "password": "a brand new password", "current_password": PASSWORD });
    app.patch("/api/users/me", &user.token, right).await.expect(200);
    app.get("/api/users/me", &user.token).await.expect(200);
    app.get("/api/users/me", other["access_token"].as_str().unwrap()).await.expect_error(401);
    app.sign_in(&user.email, PASSWORD).await.expect_error(401);
    app.sign_in(&user.email, "a brand new password").await.expect(200);
}

#[tokio::test]
async fn profile_changes_and_email_uniqueness() {
    let app = spawn_app().await;
    let user = app.user("shin").await;
    app.user("taken").await;
    let body = app
        .patch(
            "/api/users/me",
            &user.token,
            json!({ "display_name": "신", "notification_prefs": { "language": "ko", "email": "off" } }),
        )
        .await
        .expect(200);
    assert_eq!(body["user"]["display_name"], "신");
    assert_eq!(body["user"]["notification_prefs"]["email"], "off");
    assert_eq!(body["user"]["notification_prefs"]["language"], "ko");
    let unknown = json!({ "notification_prefs": { "email": false } });
    assert_eq!(app.patch("/api/users/me", &user.token, unknown).await.expect_error(422), "invalid_notification_prefs");
    let taken = json!({ "email": "taken@example.com", "current_password": PASSWORD });
    assert_eq!(app.patch("/api/users/me", &user.token, taken).await.expect_error(409), "email_taken");
    let moved = json!({ "email": "Shin2@Example.com", "current_password": PASSWORD });
    assert_eq!(app.patch("/api/users/me", &user.token, moved).await.expect(200)["user"]["email"], "shin2@example.com");
    app.patch("/api/users/me", &user.token, json!({ "notification_prefs": [1] })).await.expect_error(422);
    let users = app.get("/api/users", &user.token).await.expect(200);
    let emails: Vec<&str> = users["users"].as_array().unwrap().iter().map(|u| u["email"].as_str().unwrap()).collect();
    assert_eq!(emails, ["shin2@example.com", "taken@example.com"]);
    assert!(users["users"][0].get("password_hash").is_none());
}

#[tokio::test]
async fn deleting_an_account_keeps_tasks_and_kills_tokens() {
    let app = spawn_app().await;
    let leaving = app.user("leaving").await;
    let staying = app.user("staying").await;
    let task = app.task(&leaving, json!({ "name": "handover", "pic": staying.email, "supervisor": leaving.id })).await;
    app.delete("/api/users/me", &leaving.token, Some(json!({ "password": "wrong password" }))).await.expect_error(403);
    app.delete("/api/users/me", &leaving.token, Some(json!({ "password": PASSWORD }))).await.expect(200);
    app.get("/api/users/me", &leaving.token).await.expect_error(401);
    app.post("/api/token/refresh", None, json!({ "refresh_token": leaving.refresh_token })).await.expect_error(401);
    app.sign_in(&leaving.email, PASSWORD).await.expect_error(401);
    let body = app.get(&format!("/api/tasks/{task}"), &staying.token).await.expect(200);
    assert_eq!(body["task"]["creator_id"], serde_json::Value::Null);
    assert_eq!(body["task"]["supervisor_id"], serde_json::Value::Null);
    assert_eq!(body["task"]["pic_id"], staying.id);
    // The email is free again: personal data is gone.
    app.sign_up(&leaving.email).await;
}

#[tokio::test]
async fn disabled_accounts_lose_access_at_once() {
    let app = spawn_app().await;
    let user = app.user("song").await;
    tasklane_core::accounts::set_disabled(&app.ctx, user.id, true).await.unwrap();
    app.get("/api/users/me", &user.token).await.expect_error(401);
    app.sign_in(&user.email, PASSWORD).await.expect_error(403);
}

#[tokio::test]
async fn housekeeping_removes_dead_sessions_tokens_and_counters() {
    let app = spawn_app_with(|config| {
        config.auth.failure_window_secs = 1;
        config.auth.access_token_ttl_secs = 1;
        config.auth.refresh_token_ttl_secs = 1;
    })
    .await;
    let user = app.user("tidy").await;
    app.post("/api/sign_out", Some(&user.token), json!({})).await.expect(200);
    app.sign_in("nobody@example.com", "wrong password").await.expect_error(401);
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    let mut removed = tasklane_core::housekeeping::Pruned::default();
    while removed.sessions == 0 || removed.throttle_rows < 2 || removed.refresh_tokens == 0 {
        assert!(Instant::now() < deadline, "nothing was pruned: {removed:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let pruned = tasklane_core::housekeeping::prune(&app.ctx).await.unwrap();
        removed.sessions += pruned.sessions;
        removed.throttle_rows += pruned.throttle_rows;
        removed.refresh_tokens += pruned.refresh_tokens;
    }
    // What is still live is kept.
    let fresh = app.sign_in(&user.email, PASSWORD).await.expect(200);
    tasklane_core::housekeeping::prune(&app.ctx).await.unwrap();
    app.get("/api/users/me", fresh["access_token"].as_str().unwrap()).await.expect(200);
}
