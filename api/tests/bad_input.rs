//! Whatever a client sends, the answer is a 4xx with the error shape, never a 5xx.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use common::spawn_app;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn malformed_task_bodies_get_4xx_with_the_error_shape() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let task = app.task(&kim, json!({ "name": "target" })).await;
    let path = format!("/api/tasks/{task}");

    let raw = |method: Method, path: &str, content_type: &str, body: Vec<u8>| {
        app.client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(&kim.token)
            .header("content-type", content_type.to_owned())
            .body(body)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        ("not json", raw(Method::POST, "/api/tasks", "application/json", b"{name:".to_vec()), 400, "malformed_json"),
        ("empty body", raw(Method::POST, "/api/tasks", "application/json", Vec::new()), 400, "missing_body"),
        ("array", raw(Method::POST, "/api/tasks", "application/json", b"[1,2]".to_vec()), 400, "invalid_body"),
        ("xml", raw(Method::POST, "/api/tasks", "application/xml", b"<task/>".to_vec()), 415, "unsupported_media_type"),
        (
            "oversize",
            raw(
                Method::POST,
                "/api/tasks",
                "application/json",
                json!({ "name": "x", "contents": "y".repeat(70_000) }).to_string().into_bytes(),
            ),
            413,
            "payload_too_large",
        ),
    ];
    for (case, request, status, code) in cases {
        assert_eq!(app.send(request).await.expect_error(status), code, "{case}");
    }

    let json_cases = vec![
        ("missing name", json!({ "contents": "x" }), 400, "invalid_body"),
        ("name wrong type", json!({ "name": 5 }), 400, "invalid_body"),
        ("status wrong type", json!({ "name": "x", "status": true }), 400, "invalid_body"),
        ("pic wrong type", json!({ "name": "x", "pic": [1] }), 400, "invalid_body"),
        ("unknown field", json!({ "name": "x", "colour": "red" }), 400, "invalid_body"),
        ("server-owned id", json!({ "name": "x", "id": 99 }), 400, "invalid_body"),
        ("server-owned creator", json!({ "name": "x", "creator_id": 1 }), 400, "invalid_body"),
        ("empty name", json!({ "name": "   " }), 422, "invalid_name"),
        ("long name", json!({ "name": "x".repeat(201) }), 422, "invalid_name"),
        ("header in name", json!({ "name": "x\r\nBcc: evil@example.com" }), 422, "invalid_name"),
        ("long contents", json!({ "name": "x", "contents": "가".repeat(20_001) }), 422, "invalid_contents"),
        ("bad status", json!({ "name": "x", "status": "someday" }), 422, "invalid_status"),
        ("bad priority", json!({ "name": "x", "priority": "asap" }), 422, "invalid_priority"),
        ("bad date", json!({ "name": "x", "deadline": "2026-02-30" }), 422, "invalid_deadline"),
        ("not a date", json!({ "name": "x", "deadline": "next week" }), 422, "invalid_deadline"),
        (
            "deadline past DATETIME",
            json!({ "name": "x", "deadline": "9999-12-31T23:00:00-05:00" }),
            422,
            "invalid_deadline",
        ),
        ("deadline before 1970", json!({ "name": "x", "deadline": "0001-01-01" }), 422, "invalid_deadline"),
        ("unknown pic email", json!({ "name": "x", "pic": "ghost@example.com" }), 422, "unknown_user"),
        ("unknown pic id", json!({ "name": "x", "PIC": 424242 }), 422, "unknown_user"),
        ("unknown supervisor", json!({ "name": "x", "Supervisor": "999999" }), 422, "unknown_user"),
    ];
    for (case, body, status, code) in json_cases {
        let reply = app.post("/api/tasks", Some(&kim.token), body).await;
        if case == "unknown field" {
            assert!(reply.body["error"]["message"].as_str().unwrap().contains("colour"), "{}", reply.body);
        }
        assert_eq!(reply.expect_error(status), code, "{case}");
    }

    let patch_cases = vec![
        ("unknown field", json!({ "Task_colour": "red" }), 400),
        ("version wrong type", json!({ "version": "one" }), 400),
        ("name wrong type", json!({ "name": 7 }), 400),
        ("bad deadline", json!({ "deadline": "31/12/2026" }), 422),
        ("unknown pic", json!({ "PIC": "nobody@example.com" }), 422),
    ];
    for (case, body, status) in patch_cases {
        let patched = app.patch(&path, &kim.token, body.clone()).await;
        assert_eq!(patched.status.as_u16(), status, "PATCH {case}: {}", patched.body);
        let put = app.put(&path, &kim.token, body).await;
        assert_eq!(put.status.as_u16(), status, "PUT {case}: {}", put.body);
    }
    let unchanged = app.get(&path, &kim.token).await.expect(200);
    assert_eq!(unchanged["task"]["version"], 1);

    app.delete(&path, &kim.token, Some(json!({ "Task_id": "x", "extra": 1 }))).await.expect_error(400);
    app.get("/api/tasks/abc", &kim.token).await.expect_error(404);
    app.get("/api/tasks/99999999999999999999", &kim.token).await.expect_error(404);
    app.get("/api/tasks/424242", &kim.token).await.expect_error(404);
    app.patch("/api/tasks/424242", &kim.token, json!({ "name": "x" })).await.expect_error(404);
    app.delete("/api/tasks/424242", &kim.token, None).await.expect_error(404);
    app.get("/api/nowhere", &kim.token).await.expect_error(404);
    app.request(Method::DELETE, "/api/tasks", Some(&kim.token), None).await.expect_error(405);
}

#[tokio::test]
async fn malformed_account_bodies_get_4xx() {
    let app = spawn_app().await;
    let cases = vec![
        ("/api/sign_up", json!({ "email": "a@example.com", "password": "long enough" }), 400),
        ("/api/sign_up", json!({ "email": 1, "password": "long enough", "display_name": "a" }), 400),
        (
            "/api/sign_up",
            json!({ "email": "a@example.com", "password": "long enough", "display_name": "a", "role": "admin" }),
            400,
        ),
        ("/api/sign_in", json!({ "email": "a@example.com" }), 400),
        ("/api/sign_in", json!({ "email": "a@example.com", "password": null }), 400),
        ("/api/token/refresh", json!({}), 400),
        ("/api/token/refresh", json!({ "refresh_token": 5 }), 400),
    ];
    for (path, body, status) in cases {
        app.post(path, None, body).await.expect_error(status);
    }
    // Longer than any address the users table holds: a wrong password, not a database error.
    let long_email = format!("{}@example.com", "x".repeat(5_000));
    app.sign_in(&long_email, "whatever it is").await.expect_error(401);
    let kim = app.user("kim").await;
    app.patch("/api/users/me", &kim.token, json!({ "role": "admin" })).await.expect_error(400);
    app.patch("/api/users/me", &kim.token, json!({ "display_name": "" })).await.expect_error(422);
    app.patch("/api/users/me", &kim.token, json!({ "email": "bad", "current_password": common::PASSWORD }))
        .await
        .expect_error(422);
    app.delete("/api/users/me", &kim.token, None).await.expect_error(400);
    let me = app.get("/api/users/me", &kim.token).await.expect(200);
    assert_eq!(me["role"], "member");
}

#[tokio::test]
async fn health_and_request_ids() {
    let app = spawn_app().await;
    let alive = app.request(Method::GET, "/healthz", None, None).await;
    assert!(alive.headers.contains_key("x-request-id"));
    assert_eq!(alive.expect(200)["status"], "ok");
    assert_eq!(app.request(Method::GET, "/readyz", None, None).await.expect(200)["database"], "ok");
    let request = app.client.get(format!("{}/healthz", app.base)).header("x-request-id", "trace-me-123");
    let echoed = app.send(request).await;
    assert_eq!(echoed.headers["x-request-id"], "trace-me-123");
}
