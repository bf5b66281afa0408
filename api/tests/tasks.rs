//! The tasks API: the seed's bodies, permissions, concurrency control, events, listing.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashSet;

use common::{TestApp, User, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};

async fn events(app: &TestApp, user: &User, task: i64) -> Vec<Value> {
    app.get(&format!("/api/tasks/{task}/events"), &user.token).await.expect(200)["events"].as_array().unwrap().clone()
}

#[tokio::test]
async fn the_seeds_exact_requests_work() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let lee = app.user("lee").await;
    let created = app
        .post(
            "/api/tasks",
            Some(&kim.token),
            json!({
                "Task_name": "보고서 작성",
                "Task_contents": "주간 보고서",
                "Task_status": "대기 중",
                "Deadline": "2026-12-24",
                "PIC": lee.email,
                "Supervisor": kim.email,
            }),
        )
        .await
        .expect(201);
    assert_eq!(created["message"], "task created successfully");
    let id = created["Task_id"].as_i64().unwrap();
    assert_eq!(created["task"]["status"], "pending");
    assert_eq!(created["task"]["pic_id"], lee.id);
    assert_eq!(created["task"]["supervisor_id"], kim.id);
    assert_eq!(created["task"]["deadline"], "2026-12-24T23:59:59Z");

    let updated = app
        .put(
            &format!("/api/tasks/{id}"),
            &kim.token,
            json!({ "Task_contents": "수정됨", "Task_status": "진행 중", "Deadline": "2026-12-31T09:00:00+09:00", "PIC": lee.id }),
        )
        .await
        .expect(200);
    assert_eq!(updated["message"], "task updated successfully");
    assert_eq!(updated["task"]["status"], "in_progress");
    assert_eq!(updated["task"]["deadline"], "2026-12-31T00:00:00Z");

    let request = app
        .client
        .request(Method::GET, format!("{}/api/tasks", app.base))
        .bearer_auth(&kim.token)
        .header("accept-language", "ko");
    let list = app.send(request).await.expect(200);
    assert_eq!(list["message"], "전체 작업 조회");
    assert_eq!(list["tasks"][0]["id"], id);

    app.delete(&format!("/api/tasks/{id}"), &kim.token, Some(json!({ "Task_id": (id + 1).to_string() })))
        .await
        .expect_error(400);
    let request = app
        .client
        .request(Method::DELETE, format!("{}/api/tasks/{id}", app.base))
        .bearer_auth(&kim.token)
        .header("accept-language", "ko")
        .json(&json!({ "Task_id": id.to_string() }));
    let deleted = app.send(request).await.expect(200);
    assert_eq!(deleted["message"], "작업이 성공적으로 삭제되었습니다");
    assert_eq!(deleted["Task_id"], id);
    assert_eq!(deleted["Task_name"], "보고서 작성");
    app.get(&format!("/api/tasks/{id}"), &kim.token).await.expect_error(404);
}

#[derive(Clone, Copy, Debug)]
enum Actor {
    Creator,
    Pic,
    Supervisor,
    Other,
    Admin,
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Read,
    Update,
    Status,
    Reassign,
    Delete,
}

#[tokio::test]
async fn permission_matrix() {
    let app = spawn_app().await;
    let creator = app.user("creator").await;
    let pic = app.user("pic").await;
    let supervisor = app.user("supervisor").await;
    let other = app.user("other").await;
    let admin = app.admin("admin").await;
    let spare = app.user("spare").await;

    let allowed = |actor: Actor, action: Action| match action {
        Action::Read => true,
        Action::Update | Action::Status => !matches!(actor, Actor::Other),
        Action::Reassign | Action::Delete => matches!(actor, Actor::Creator | Actor::Supervisor | Actor::Admin),
    };
    for actor in [Actor::Creator, Actor::Pic, Actor::Supervisor, Actor::Other, Actor::Admin] {
        for action in [Action::Read, Action::Update, Action::Status, Action::Reassign, Action::Delete] {
            let task =
                app.task(&creator, json!({ "name": "matrix", "pic": pic.id, "supervisor": supervisor.id })).await;
            let who = match actor {
                Actor::Creator => &creator,
                Actor::Pic => &pic,
                Actor::Supervisor => &supervisor,
                Actor::Other => &other,
                Actor::Admin => &admin,
            };
            let path = format!("/api/tasks/{task}");
            let reply = match action {
                Action::Read => app.get(&path, &who.token).await,
                Action::Update => {
                    app.patch(&path, &who.token, json!({ "name": "renamed", "priority": "urgent" })).await
                }
                Action::Status => app.patch(&path, &who.token, json!({ "status": "done" })).await,
                Action::Reassign => app.patch(&path, &who.token, json!({ "pic": spare.email })).await,
                Action::Delete => app.delete(&path, &who.token, None).await,
            };
            let expected = if allowed(actor, action) { 200 } else { 403 };
            assert_eq!(reply.status.as_u16(), expected, "{actor:?} {action:?}: {}", reply.body);
            let after = app.get(&path, &creator.token).await;
            let history = events(&app, &admin, task).await;
            if expected == 403 {
                let task = after.expect(200);
                assert_eq!(task["task"]["version"], 1, "{actor:?} {action:?} changed the task");
                assert_eq!(task["task"]["name"], "matrix");
                assert_eq!(history.len(), 1, "{actor:?} {action:?} wrote an event");
            } else if matches!(action, Action::Delete) {
                after.expect_error(404);
                assert_eq!(history.last().unwrap()["kind"], "task.deleted");
            } else if !matches!(action, Action::Read) {
                assert_eq!(history.len(), 2, "{actor:?} {action:?}");
            }
        }
    }
}

#[tokio::test]
async fn stale_if_match_gets_412_and_changes_nothing() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let task = app.task(&kim, json!({ "name": "contested" })).await;
    let path = format!("/api/tasks/{task}");
    let first = app.get(&path, &kim.token).await;
    assert_eq!(first.headers["etag"], "\"1\"");

    let edit = |version: &str, name: &str| {
        app.client
            .patch(format!("{}{path}", app.base))
            .bearer_auth(&kim.token)
            .header("if-match", version.to_owned())
            .json(&json!({ "name": name }))
    };
    let ok = app.send(edit("\"1\"", "mine")).await;
    assert_eq!(ok.headers["etag"], "\"2\"");
    ok.expect(200);
    assert_eq!(app.send(edit("\"1\"", "theirs")).await.expect_error(412), "version_mismatch");
    app.patch(&path, &kim.token, json!({ "name": "theirs", "version": 1 })).await.expect_error(412);
    app.send(edit("W/\"2\"", "third")).await.expect(200);
    app.send(edit("banana", "x")).await.expect_error(400);
    let now = app.get(&path, &kim.token).await.expect(200);
    assert_eq!(now["task"]["name"], "third");
    assert_eq!(now["task"]["version"], 3);
    let delete = app.client.delete(format!("{}{path}", app.base)).bearer_auth(&kim.token).header("if-match", "1");
    app.send(delete).await.expect_error(412);
}

#[tokio::test]
async fn every_change_is_one_event_with_old_and_new_values() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let lee = app.user("lee").await;
    let task = app.task(&kim, json!({ "name": "evented", "deadline": "2026-12-01" })).await;
    let path = format!("/api/tasks/{task}");
    app.patch(&path, &kim.token, json!({ "status": "done" })).await.expect(200);
    let done = app.get(&path, &kim.token).await.expect(200);
    assert!(done["task"]["completed_at"].is_string());
    app.patch(&path, &kim.token, json!({ "pic": lee.email, "deadline": null, "status": "in_progress" }))
        .await
        .expect(200);
    let reopened = app.get(&path, &kim.token).await.expect(200);
    assert!(reopened["task"]["completed_at"].is_null());
    assert!(reopened["task"]["deadline"].is_null());
    // No change, no event.
    app.patch(&path, &kim.token, json!({ "status": "in_progress" })).await.expect(200);

    let history = events(&app, &kim, task).await;
    let kinds: Vec<&str> = history.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["task.created", "task.status_changed", "task.updated", "task.assigned", "task.status_changed"]);
    let seqs: Vec<i64> = history.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5]);
    assert_eq!(reopened["task"]["version"], 5);
    assert_eq!(history[1]["payload"]["changes"]["status"], json!({ "old": "pending", "new": "done" }));
    assert_eq!(history[2]["payload"]["changes"]["deadline"]["new"], Value::Null);
    assert_eq!(history[3]["payload"]["changes"]["pic_id"], json!({ "old": null, "new": lee.id }));
    assert!(history.iter().all(|e| e["actor_id"] == kim.id));

    // History outlives the task, for admins only.
    app.delete(&path, &kim.token, None).await.expect(200);
    app.get(&format!("{path}/events"), &kim.token).await.expect_error(404);
    let admin = app.admin("root").await;
    let kept = events(&app, &admin, task).await;
    assert_eq!(kept.len(), 6);
    assert_eq!(kept[5]["kind"], "task.deleted");
    assert_eq!(kept[5]["payload"]["task"]["name"], "evented");
}

#[tokio::test]
async fn list_filters() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let lee = app.user("lee").await;
    let a = app
        .task(
            &kim,
            json!({ "name": "write quarterly report", "pic": lee.id, "priority": "urgent", "deadline": "2020-01-01" }),
        )
        .await;
    let b = app
        .task(
            &kim,
            json!({ "name": "review", "contents": "quarterly numbers", "status": "done", "deadline": "2020-01-02" }),
        )
        .await;
    let c = app
        .task(
            &lee,
            json!({ "name": "plan offsite", "supervisor": kim.email, "priority": "low", "deadline": "2099-01-01" }),
        )
        .await;
    let d = app.task(&lee, json!({ "name": "100%_literal", "pic": lee.id })).await;

    let ids = |body: Value| -> HashSet<i64> {
        body["tasks"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect()
    };
    let cases: Vec<(&str, Vec<i64>)> = vec![
        ("status=done", vec![b]),
        ("status=pending,in_progress", vec![a, c, d]),
        ("priority=urgent,low", vec![a, c]),
        ("pic=me", vec![a, d]),
        ("pic=none", vec![b, c]),
        ("supervisor=kim@example.com", vec![c]),
        ("creator=me", vec![c, d]),
        ("due_before=2021-01-01", vec![a, b]),
        ("due_after=2050-01-01T00:00:00Z", vec![c]),
        ("overdue=true", vec![a]),
        ("overdue=false", vec![b, c, d]),
        ("q=QUARTERLY", vec![a, b]),
        ("q=quarterly%20report", vec![a]),
        ("q=quart", vec![a, b]),
        ("q=uarterly", vec![]),
        ("q=100%25_", vec![d]),
        ("q=LITERAL", vec![d]),
        // Punctuation is not searched for: a query of nothing else lists everything.
        ("q=%25", vec![a, b, c, d]),
    ];
    for (query, expected) in cases {
        let body = app.get(&format!("/api/tasks?{query}"), &lee.token).await.expect(200);
        assert_eq!(ids(body), expected.into_iter().collect::<HashSet<_>>(), "{query}");
    }
    let assigned = app.get("/api/tasks/assigned", &lee.token).await.expect(200);
    assert_eq!(ids(assigned), HashSet::from([a, d]));
    app.get("/api/tasks?pic=ghost@example.com", &lee.token).await.expect_error(422);
    app.get("/api/tasks?status=lost", &lee.token).await.expect_error(422);
    app.get("/api/tasks?sort=name", &lee.token).await.expect_error(400);
    app.get("/api/tasks?order=up", &lee.token).await.expect_error(400);
    app.get("/api/tasks?colour=red", &lee.token).await.expect_error(400);
    app.get("/api/tasks?limit=ten", &lee.token).await.expect_error(400);
    app.get("/api/tasks?cursor=bm9wZQ", &lee.token).await.expect_error(400);
}

/// The order the API promises for each sort, computed independently here.
fn expected_order(tasks: &[Value], sort: &str, descending: bool) -> Vec<i64> {
    let rank = |t: &Value| match t["priority"].as_str().unwrap() {
        "low" => 1,
        "medium" => 2,
        "high" => 3,
        _ => 4,
    };
    let deadline = |t: &Value| t["deadline"].as_str().map(|d| chrono::DateTime::parse_from_rfc3339(d).unwrap());
    let id = |t: &Value| t["id"].as_i64().unwrap();
    let mut sorted = tasks.to_vec();
    // Natural orders: priority urgent first then nearest deadline (none last); deadline soonest
    // first (none last); created/updated oldest first. The other direction is the exact reverse.
    sorted.sort_by(|x, y| {
        let by_deadline = match (deadline(x), deadline(y)) {
            (Some(a), Some(b)) => a.cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        match sort {
            "priority" => rank(y).cmp(&rank(x)).then(by_deadline).then(id(x).cmp(&id(y))),
            "deadline" => by_deadline.then(id(x).cmp(&id(y))),
            field => x[field].as_str().cmp(&y[field].as_str()).then(id(x).cmp(&id(y))),
        }
    });
    let natural_descending = sort == "priority";
    if descending != natural_descending {
        sorted.reverse();
    }
    sorted.iter().map(id).collect()
}

async fn walk(app: &TestApp, user: &User, query: &str, limit: usize) -> Vec<i64> {
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/api/tasks?{query}&limit={limit}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let page = app.get(&path, &user.token).await.expect(200);
        let tasks = page["tasks"].as_array().unwrap();
        assert!(tasks.len() <= limit);
        seen.extend(tasks.iter().map(|t| t["id"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return seen,
        }
    }
}

#[tokio::test]
async fn every_sort_paginates_in_order_without_gaps() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let priorities = ["low", "medium", "high", "urgent"];
    for i in 0..23 {
        let deadline = if i % 3 == 0 { Value::Null } else { json!(format!("2026-12-{:02}", 1 + (i * 7) % 5)) };
        let task = app
            .task(&kim, json!({ "name": format!("t{i}"), "priority": priorities[i % 4], "deadline": deadline }))
            .await;
        if i % 4 == 1 {
            app.patch(&format!("/api/tasks/{task}"), &kim.token, json!({ "status": "in_progress" })).await.expect(200);
        }
    }
    let all = app.get("/api/tasks?limit=100", &kim.token).await.expect(200)["tasks"].as_array().unwrap().clone();
    assert_eq!(all.len(), 23);
    for sort in ["priority", "deadline", "created_at", "updated_at"] {
        for (order, descending) in [("asc", false), ("desc", true)] {
            let walked = walk(&app, &kim, &format!("sort={sort}&order={order}"), 4).await;
            assert_eq!(walked, expected_order(&all, sort, descending), "sort={sort} order={order}");
        }
    }
    let cursor = app.get("/api/tasks?sort=deadline&limit=2", &kim.token).await.expect(200)["next_cursor"].clone();
    let mismatched = format!("/api/tasks?sort=priority&cursor={}", cursor.as_str().unwrap());
    assert_eq!(app.get(&mismatched, &kim.token).await.expect_error(400), "invalid_cursor");
    let capped = app.get("/api/tasks?limit=1000", &kim.token).await.expect(200);
    assert_eq!(capped["tasks"].as_array().unwrap().len(), 23);
}

#[tokio::test]
async fn pagination_neither_skips_nor_repeats_while_others_insert() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let mut existing = HashSet::new();
    for i in 0..60 {
        existing.insert(app.task(&kim, json!({ "name": format!("before {i}") })).await);
    }
    let writer = {
        let base = app.base.clone();
        let client = app.client.clone();
        let token = kim.token.clone();
        tokio::spawn(async move {
            for i in 0..40 {
                let reply = client
                    .post(format!("{base}/api/tasks"))
                    .bearer_auth(&token)
                    .json(&json!({ "name": format!("during {i}") }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status().as_u16(), 201);
            }
        })
    };
    for sort in ["created_at&order=desc", "created_at&order=asc", "priority"] {
        let walked = walk(&app, &kim, &format!("sort={sort}"), 7).await;
        let unique: HashSet<i64> = walked.iter().copied().collect();
        assert_eq!(unique.len(), walked.len(), "{sort}: a row was repeated");
        assert!(existing.is_subset(&unique), "{sort}: a row was skipped");
    }
    writer.await.unwrap();
}

#[tokio::test]
async fn history_comes_a_page_at_a_time() {
    let app = spawn_app().await;
    let kim = app.user("kim").await;
    let task = app.task(&kim, json!({ "name": "edited often" })).await;
    for n in 0..7 {
        app.patch(&format!("/api/tasks/{task}"), &kim.token, json!({ "name": format!("edit {n}") })).await.expect(200);
    }
    let mut seqs = Vec::new();
    let mut path = format!("/api/tasks/{task}/events?limit=3");
    let mut pages = 0;
    loop {
        let page = app.get(&path, &kim.token).await.expect(200);
        pages += 1;
        seqs.extend(page["events"].as_array().unwrap().iter().map(|e| e["seq"].as_i64().unwrap()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/tasks/{task}/events?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!((pages, seqs), (3, (1..=8).collect::<Vec<i64>>()));
    // Without a limit, up to 100 at once; bad paging parameters are refused.
    assert_eq!(events(&app, &kim, task).await.len(), 8);
    let bad = |query: &str| format!("/api/tasks/{task}/events?{query}");
    assert_eq!(app.get(&bad("limit=0"), &kim.token).await.expect_error(422), "invalid_limit");
    assert_eq!(app.get(&bad("limit=101"), &kim.token).await.expect_error(422), "invalid_limit");
    assert_eq!(app.get(&bad("cursor=later"), &kim.token).await.expect_error(400), "invalid_cursor");
}
