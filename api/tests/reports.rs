//! Reports over HTTP: asked for and filled in by a job, listed, read and exported; who may
//! read which; bad input; and the schedule's run when a period closes: one report per user
//! and period however many schedulers fire, and one email each.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{TestApp, mails, spawn_app, spawn_app_with};
use sea_orm::{EntityTrait, PaginatorTrait};
use serde_json::{Value, json};
use tasklane_core::clock::Clock;
use tasklane_core::reports::generate;
use tasklane_entity::reports;
use tasklane_testkit::wait_until;

const PATIENCE: Duration = Duration::from_secs(30);

/// Waits until no job is waiting or running on any queue of `ctx`'s transport.
async fn drained(ctx: &tasklane_core::AppContext) {
    let transport = ctx.transport().await.unwrap();
    wait_until("every queue drained", PATIENCE, async || {
        let mut busy = 0;
        for queue in tasklane_core::queues::ALL {
            let stats = transport.stats(queue).await.unwrap();
            busy += stats.ready + stats.scheduled + stats.in_flight;
        }
        busy == 0
    })
    .await;
}

async fn ready(app: &TestApp, token: &str, id: i64) -> Value {
    let mut report = Value::Null;
    wait_until("the report to be ready", PATIENCE, async || {
        report = app.get(&format!("/api/reports/{id}"), token).await.expect(200);
        report["status"] == "ready"
    })
    .await;
    report
}

#[tokio::test]
async fn a_report_is_asked_for_filled_in_by_a_job_then_listed_and_exported() {
    let app = spawn_app().await;
    let ana = app.user("ana").await;
    for name in ["one", "two | with a pipe"] {
        app.task(&ana, json!({ "name": name, "pic": ana.id, "priority": "urgent" })).await;
    }
    let asked = app.post("/api/reports", Some(&ana.token), json!({ "period": "weekly" })).await;
    assert_eq!(asked.status.as_u16(), 202, "{}", asked.body);
    let id = asked.body["id"].as_i64().unwrap();
    assert_eq!(asked.headers["location"], format!("/api/reports/{id}").as_str());
    assert_eq!(asked.body["status"], "pending");
    assert_eq!((asked.body["scope"].as_str(), asked.body["user_id"].as_i64()), (Some("me"), Some(ana.id)));

    let _workers = app.start_workers();
    let report = ready(&app, &ana.token, id).await;
    assert_eq!(report["figures"]["created"], 2);
    assert_eq!(report["figures"]["newly_assigned"], 2);
    assert_eq!(report["figures"]["open_by_priority"], json!({ "urgent": 2, "high": 0, "medium": 0, "low": 0 }));
    assert_eq!(report["figures"]["completion_rate"], 0.0);
    assert_eq!(report["series"].as_array().unwrap().len(), 7);
    assert_eq!(report["top_open"].as_array().unwrap().len(), 2);

    let csv = app.client.get(format!("{}/api/reports/{id}?format=csv", app.base)).bearer_auth(&ana.token);
    let csv = csv.send().await.unwrap();
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = csv.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("attachment; filename=\"tasklane-weekly-") && disposition.ends_with(".csv\""));
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("section,user_id,name,date,value,previous\n"), "{csv}");
    assert!(csv.contains(&format!("figures,{},created,,2,0\n", ana.id)), "{csv}");
    assert_eq!(csv.lines().filter(|line| line.starts_with("series,")).count(), 14, "created and completed per day");

    let md = app.client.get(format!("{}/api/reports/{id}?format=md", app.base)).bearer_auth(&ana.token);
    let md = md.send().await.unwrap();
    assert_eq!(md.headers()["content-type"], "text/markdown; charset=utf-8");
    let md = md.text().await.unwrap();
    assert!(md.contains("| created ") && md.contains("two \\| with a pipe"), "{md}");

    // Asking again replaces the stored report.
    let again = app.post("/api/reports", Some(&ana.token), json!({ "period": "weekly", "scope": "me" })).await;
    assert_eq!(again.body["id"].as_i64(), Some(id));
    ready(&app, &ana.token, id).await;
    let month = app.post("/api/reports", Some(&ana.token), json!({ "period": "monthly" })).await.expect(202);
    let listed = app.get("/api/reports", &ana.token).await.expect(200);
    let ids: Vec<i64> = listed["reports"].as_array().unwrap().iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&id) && ids.contains(&month["id"].as_i64().unwrap()));
    let weekly = app.get("/api/reports?period=weekly&limit=1", &ana.token).await.expect(200);
    assert_eq!(weekly["reports"][0]["id"].as_i64(), Some(id));
    assert!(weekly["next_cursor"].is_null());
    assert_eq!(reports::Entity::find().count(&app.ctx.db).await.unwrap(), 2);
}

#[tokio::test]
async fn members_read_only_their_own_reports_and_team_reports_are_for_admins() {
    let app = spawn_app().await;
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let boss = app.admin("boss").await;
    let mine = app.post("/api/reports", Some(&ana.token), json!({ "period": "weekly" })).await.expect(202);
    let mine = mine["id"].as_i64().unwrap();
    for path in [
        format!("/api/reports/{mine}"),
        format!("/api/reports/{mine}?format=csv"),
        format!("/api/reports/{mine}?format=md"),
    ] {
        assert_eq!(app.get(&path, &ben.token).await.expect_error(404), "not_found", "{path}");
        app.get(&path, &boss.token).await.expect(200);
    }
    assert!(app.get("/api/reports", &ben.token).await.expect(200)["reports"].as_array().unwrap().is_empty());

    let code = app.post("/api/reports", Some(&ben.token), json!({ "period": "weekly", "scope": "team" })).await;
    assert_eq!(code.expect_error(403), "forbidden");
    app.get("/api/reports?scope=team", &ben.token).await.expect_error(403);
    let team = app.post("/api/reports", Some(&boss.token), json!({ "period": "weekly", "scope": "team" })).await;
    let team = team.expect(202)["id"].as_i64().unwrap();
    app.get(&format!("/api/reports/{team}"), &ana.token).await.expect_error(404);
    app.get(&format!("/api/reports/{team}?format=csv"), &ana.token).await.expect_error(404);
    let listed = app.get("/api/reports?scope=team", &boss.token).await.expect(200);
    assert_eq!(listed["reports"][0]["id"].as_i64(), Some(team));
    let anonymous = app.request(reqwest::Method::GET, &format!("/api/reports/{mine}"), None, None).await;
    anonymous.expect_error(401);
}

#[tokio::test]
async fn bad_report_requests_get_4xx_with_the_error_shape() {
    let app = spawn_app().await;
    let ana = app.user("ana").await;
    let next_monday = {
        let today = Utc::now().date_naive();
        today + chrono::Days::new(7 - u64::from(chrono::Datelike::weekday(&today).num_days_from_monday()))
    };
    let cases = [
        (json!({ "period": "daily" }), 422, "invalid_period"),
        (json!({ "period": "weekly", "start": "2026-12-02" }), 422, "invalid_period_start"),
        (json!({ "period": "monthly", "start": "2026-11-15" }), 422, "invalid_period_start"),
        (json!({ "period": "weekly", "start": next_monday.to_string() }), 422, "future_period"),
        (json!({ "period": "weekly", "start": "2026-13-01" }), 400, "invalid_date"),
        (json!({ "period": "weekly", "start": "last monday" }), 400, "invalid_date"),
        (json!({ "period": "weekly", "scope": "everyone" }), 422, "invalid_scope"),
    ];
    for (body, status, code) in cases {
        let reply = app.post("/api/reports", Some(&ana.token), body.clone()).await;
        assert_eq!(reply.expect_error(status), code, "{body}");
    }
    let unknown = app.post("/api/reports", Some(&ana.token), json!({ "period": "weekly", "user": 1 })).await;
    assert!(unknown.status.is_client_error());
    assert_eq!(app.post("/api/reports", Some(&ana.token), json!({})).await.expect_error(400), "invalid_body");
    let id = app.post("/api/reports", Some(&ana.token), json!({ "period": "weekly" })).await.expect(202)["id"].clone();
    assert_eq!(app.get(&format!("/api/reports/{id}?format=pdf"), &ana.token).await.expect_error(400), "invalid_format");
    assert_eq!(app.get("/api/reports?cursor=nonsense", &ana.token).await.expect_error(400), "invalid_cursor");
    assert_eq!(app.get("/api/reports?limit=0", &ana.token).await.expect_error(422), "invalid_limit");
    assert_eq!(app.get("/api/reports?period=yearly", &ana.token).await.expect_error(422), "invalid_period");
    app.get("/api/reports/999999", &ana.token).await.expect_error(404);
}

#[tokio::test]
async fn a_closed_period_gets_one_report_per_user_and_one_email_each_however_many_schedulers_fire() {
    // Monday 8 March 2027, 01:00 UTC: the week of 1–7 March and February have closed.
    let now: DateTime<Utc> = "2027-03-08T01:00:00Z".parse().unwrap();
    let app = spawn_app_with(|_| {}).await;
    let mut ctx = app.ctx.clone();
    ctx.clock = Clock::fixed(now);
    let ana = app.user("ana").await;
    let ben = app.user("ben").await;
    let cara = app.user("cara").await;
    let no_weekly = json!({ "notification_prefs": { "email_kinds": { "report.weekly": false } } });
    app.patch("/api/users/me", &cara.token, no_weekly).await.expect(200);
    app.task(&ana, json!({ "name": "for ben", "pic": ben.id })).await;

    let transport = ctx.transport().await.unwrap();
    let (first, second) = tokio::join!(
        generate::schedule(&ctx, transport.as_ref(), now),
        generate::schedule(&ctx, transport.as_ref(), now)
    );
    let enqueued = first.unwrap() + second.unwrap();
    assert!(enqueued >= 8, "3 users and the team, weekly and monthly: {enqueued}");
    // Reports are unique per (scope, user, period, start): 3 weekly, 3 monthly, 2 team.
    assert_eq!(reports::Entity::find().count(&ctx.db).await.unwrap(), 8);

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(tasklane_worker::run(ctx.clone(), async move {
        let _ = stopped.await;
    }));
    wait_until("every report ready", PATIENCE, async || {
        let all = reports::Entity::find().all(&ctx.db).await.unwrap();
        all.iter().all(|r| r.status == "ready")
    })
    .await;
    // Ana and Ben get their weekly and monthly reports, Cara only the monthly one (Ben also
    // hears about the task Ana gave him).
    let report_mails = || mails(&app).into_iter().filter(|mail| mail.subject.contains(" report: ")).collect::<Vec<_>>();
    wait_until("five report emails", PATIENCE, async || report_mails().len() >= 5).await;
    generate::schedule(&ctx, transport.as_ref(), now).await.unwrap();
    assert_eq!(reports::Entity::find().count(&ctx.db).await.unwrap(), 8, "the runs are finished");
    drained(&ctx).await;
    let mails = report_mails();
    let to = |who: &str| mails.iter().filter(|mail| mail.to == format!("{who}@example.com")).count();
    assert_eq!((to("ana"), to("ben"), to("cara")), (2, 2, 1), "one email per scheduled report");
    let weekly = mails.iter().find(|mail| mail.to == "ben@example.com" && mail.subject.contains("weekly")).unwrap();
    assert_eq!(weekly.subject, "[tasklane] Your weekly report: 2027-03-01 – 2027-03-07");
    assert!(weekly.text.contains("- Open: 1 (±0)"), "{}", weekly.text);
    assert!(weekly.text.contains("/reports/"), "{}", weekly.text);
    drop(stop);
}
