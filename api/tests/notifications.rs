//! Notifications end to end: the API writes tasks, the relay publishes their events, a worker
//! fans them out to in-app notifications and emails (files here, SES in the service tests),
//! and the archive copies events to DynamoDB.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{Mail, PASSWORD, TestApp, User, eml_files, mails, spawn_app, spawn_app_with};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use serde_json::json;
use tasklane_entity::{notifications, task_events};
use tasklane_jobs::Transport;
use tasklane_testkit::wait_until;

const PATIENCE: Duration = Duration::from_secs(30);

/// Kinds of a user's in-app notifications, sorted (events are handled concurrently, so
/// notifications arrive in no fixed order).
async fn kinds(app: &TestApp, user: &User) -> Vec<String> {
    let mut kinds: Vec<String> = app.inbox(user).await.iter().map(|n| n["kind"].as_str().unwrap().to_owned()).collect();
    kinds.sort();
    kinds
}

/// Waits until every event is published and the events and email queues are empty.
async fn drained(app: &TestApp) {
    let queue = tasklane_jobs::embedded::SqlQueue::new(app.ctx.db.clone());
    wait_until("events and emails to be handled", PATIENCE, async || {
        let unpublished = task_events::Entity::find()
            .filter(task_events::Column::PublishedAt.is_null())
            .count(&app.ctx.db)
            .await
            .unwrap();
        let mut busy = 0;
        for queue_name in ["events", "email"] {
            let stats = queue.stats(queue_name).await.unwrap();
            busy += stats.ready + stats.in_flight + stats.scheduled;
        }
        unpublished == 0 && busy == 0
    })
    .await;
}

/// An email written by the file mailer: recipient, decoded subject, plain-text body.
#[tokio::test]
async fn each_event_kind_notifies_exactly_the_people_it_concerns() {
    let app = spawn_app().await;
    let _workers = app.start_workers();
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    let sup = app.user("sup").await;
    let nate = app.user("nate").await;
    let otto = app.user("otto").await;
    app.patch("/api/users/me", &sup.token, json!({ "notification_prefs": { "language": "ko" } })).await.expect(200);

    let task = app
        .task(
            &cara,
            json!({ "name": "Quarterly report", "pic": pia.email, "supervisor": sup.id, "deadline": "2026-12-24T09:00:00Z" }),
        )
        .await;
    let path = format!("/api/tasks/{task}");
    app.put(&path, &cara.token, json!({ "Task_status": "in_progress" })).await.expect(200);
    app.put(&path, &pia.token, json!({ "Task_status": "done" })).await.expect(200);
    app.put(&path, &cara.token, json!({ "PIC": nate.email })).await.expect(200);
    app.put(&path, &cara.token, json!({ "Task_contents": "now with charts" })).await.expect(200);
    app.delete(&path, &sup.token, None).await.expect(200);

    let expected: BTreeMap<&str, Vec<&str>> = BTreeMap::from([
        ("cara", vec!["task.status_changed"]),
        ("pia", vec!["task.assigned", "task.created", "task.status_changed"]),
        ("sup", vec!["task.assigned", "task.created", "task.status_changed", "task.status_changed"]),
        ("nate", vec!["task.assigned", "task.deleted", "task.updated"]),
        ("otto", vec![]),
    ]);
    let users = [("cara", &cara), ("pia", &pia), ("sup", &sup), ("nate", &nate), ("otto", &otto)];
    wait_until("11 in-app notifications", PATIENCE, async || {
        let mut total = 0;
        for (_, user) in users {
            total += app.inbox(user).await.len();
        }
        total >= 11
    })
    .await;
    drained(&app).await;
    for (name, user) in users {
        assert_eq!(kinds(&app, user).await, expected[name], "{name}'s notifications");
    }

    // Texts are in the recipient's language and say who changed what.
    let sup_inbox = app.inbox(&sup).await;
    let summaries: Vec<&str> = sup_inbox.iter().map(|n| n["summary"].as_str().unwrap()).collect();
    assert!(summaries.contains(&"pia님이 “Quarterly report” 업무를 완료(으)로 바꿨습니다"), "{summaries:?}");
    let cara_inbox = app.inbox(&cara).await;
    assert_eq!(cara_inbox.len(), 1);
    assert_eq!(cara_inbox[0]["summary"], "pia moved “Quarterly report” to Done");
    assert_eq!(
        cara_inbox[0]["details"]["changes"][0],
        json!({ "field": "status", "old": "in_progress", "new": "done" })
    );

    // One email per notification, to the right person, with subject and body.
    wait_until("11 emails", PATIENCE, async || mails(&app).len() >= 11).await;
    let mails = mails(&app);
    assert_eq!(mails.len(), 11);
    let to_nate: Vec<&Mail> = mails.iter().filter(|m| m.to == nate.email).collect();
    assert_eq!(to_nate.len(), 3);
    let deleted = to_nate.iter().find(|m| m.subject.contains("deleted")).expect("nate hears of the deletion");
    assert_eq!(deleted.subject, "[tasklane] sup deleted “Quarterly report”");
    assert!(!deleted.text.contains("/tasks/"), "no link to a deleted task");
    let to_cara: Vec<&Mail> = mails.iter().filter(|m| m.to == cara.email).collect();
    assert_eq!(to_cara.len(), 1);
    assert!(to_cara[0].text.contains("- Status: In progress → Done"), "{}", to_cara[0].text);
    assert!(to_cara[0].text.contains("- Deadline: 2026-12-24 09:00 UTC"));
    assert!(to_cara[0].text.contains(&format!("http://localhost:8080/tasks/{task}")));
    let to_sup = mails.iter().find(|m| m.to == sup.email && m.subject.contains("만들었습니다")).unwrap();
    assert_eq!(to_sup.subject, "[tasklane] cara님이 “Quarterly report” 업무를 만들었습니다");

    // Reading: nobody sees or touches another user's notifications.
    let pia_first = app.inbox(&pia).await[0]["id"].as_i64().unwrap();
    app.post(&format!("/api/notifications/{pia_first}/read"), Some(&otto.token), json!({})).await.expect_error(404);
    assert_eq!(app.get("/api/users/me", &pia.token).await.expect(200)["unread_notifications"], 3);
    let read = app.post(&format!("/api/notifications/{pia_first}/read"), Some(&pia.token), json!({})).await.expect(200);
    assert_eq!(read["read"], true);
    assert_eq!(app.get("/api/users/me", &pia.token).await.expect(200)["unread_notifications"], 2);
    let unread = app.get("/api/notifications?unread=true", &pia.token).await.expect(200);
    assert_eq!(unread["notifications"].as_array().unwrap().len(), 2);
    assert_eq!(app.post("/api/notifications/read_all", Some(&pia.token), json!({})).await.expect(200)["marked"], 2);
    assert_eq!(app.get("/api/users/me", &pia.token).await.expect(200)["unread_notifications"], 0);
    assert_eq!(app.get("/api/users/me", &sup.token).await.expect(200)["unread_notifications"], 4);

    // Pages follow the cursor without overlap.
    let first = app.get("/api/notifications?limit=2", &sup.token).await.expect(200);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second = app.get(&format!("/api/notifications?limit=2&cursor={cursor}"), &sup.token).await.expect(200);
    assert_eq!(second["notifications"].as_array().unwrap().len(), 2);
    assert!(second["next_cursor"].is_null());
    assert!(second["notifications"][0]["id"].as_i64() < first["notifications"][1]["id"].as_i64());
}

#[tokio::test]
async fn opted_out_deleted_and_disabled_users_get_nothing_and_digests_collect_the_day() {
    let app = spawn_app().await;
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    let sup = app.user("sup").await;
    let dan = app.user("dan").await;
    let dis = app.user("dis").await;
    let gus = app.user("gus").await;
    app.patch("/api/users/me", &pia.token, json!({ "notification_prefs": { "email": "off" } })).await.expect(200);
    let mute_created = json!({ "notification_prefs": { "email_kinds": { "task.created": false } } });
    app.patch("/api/users/me", &sup.token, mute_created).await.expect(200);
    app.patch("/api/users/me", &gus.token, json!({ "notification_prefs": { "email": "daily_digest" } }))
        .await
        .expect(200);

    // Written before any worker runs, so the recipients are gone by the time it does.
    app.task(&cara, json!({ "name": "muted", "pic": pia.id, "supervisor": sup.id })).await;
    app.task(&cara, json!({ "name": "orphaned", "pic": dan.id, "supervisor": dis.id })).await;
    let digested = app.task(&cara, json!({ "name": "digested", "pic": gus.id })).await;
    app.put(&format!("/api/tasks/{digested}"), &cara.token, json!({ "Task_contents": "more" })).await.expect(200);
    app.delete("/api/users/me", &dan.token, Some(json!({ "password": PASSWORD }))).await.expect(200);
    tasklane_core::accounts::set_disabled(&app.ctx, dis.id, true).await.unwrap();

    let _workers = app.start_workers();
    wait_until("in-app notifications", PATIENCE, async || app.inbox(&gus).await.len() == 2).await;
    drained(&app).await;
    assert_eq!(kinds(&app, &pia).await, ["task.created"], "in-app is always on");
    assert_eq!(kinds(&app, &sup).await, ["task.created"]);
    let for_disabled = notifications::Entity::find()
        .filter(notifications::Column::UserId.eq(dis.id))
        .count(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(for_disabled, 0);
    assert!(mails(&app).is_empty(), "no instant email for anyone here: {:?}", mails(&app));

    let day = chrono::Utc::now().date_naive();
    let digests = tasklane_core::notify::email::digest_jobs(&app.ctx, day).await.unwrap();
    assert_eq!(digests.len(), 1, "one digest, for gus");
    tasklane_worker::transport(&app.ctx).await.unwrap().enqueue(digests).await.unwrap();
    wait_until("the digest", PATIENCE, async || !mails(&app).is_empty()).await;
    let mails = mails(&app);
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, gus.email);
    assert_eq!(mails[0].subject, "[tasklane] Your tasklane digest: 2 updates");
    assert!(mails[0].text.contains("cara created “digested”") && mails[0].text.contains("cara updated “digested”"));
    drained(&app).await;
    assert!(
        tasklane_core::notify::email::digest_jobs(&app.ctx, day).await.unwrap().is_empty(),
        "nothing left to digest"
    );
}

#[tokio::test]
async fn a_deleted_accounts_name_leaves_everyone_elses_notifications() {
    let app = spawn_app().await;
    let _workers = app.start_workers();
    let dora = app.user("dora").await;
    let pia = app.user("pia").await;
    let sup = app.user("sup").await;
    let task = app.task(&dora, json!({ "name": "handover", "pic": dora.id, "supervisor": sup.id })).await;
    app.put(&format!("/api/tasks/{task}"), &dora.token, json!({ "PIC": pia.email })).await.expect(200);
    wait_until("the handover to reach both", PATIENCE, async || {
        kinds(&app, &sup).await.contains(&"task.assigned".to_owned())
            && kinds(&app, &pia).await.contains(&"task.assigned".to_owned())
    })
    .await;
    drained(&app).await;
    let shown = |inbox: Vec<serde_json::Value>| serde_json::Value::from(inbox).to_string();
    assert!(shown(app.inbox(&sup).await).contains("dora"), "named while the account exists");

    app.delete("/api/users/me", &dora.token, Some(json!({ "password": PASSWORD }))).await.expect(200);
    for user in [&sup, &pia] {
        let inbox = shown(app.inbox(user).await);
        assert!(!inbox.contains("dora"), "{inbox}");
        assert!(inbox.contains(&format!("#{}", dora.id)), "the change names the account by number: {inbox}");
    }
    let stored = notifications::Entity::find().all(&app.ctx.db).await.unwrap();
    assert!(!stored.is_empty());
    assert!(stored.iter().all(|row| !row.details.to_string().contains("dora")), "no name is stored");
}

#[tokio::test]
async fn a_redelivered_event_notifies_nobody_twice() {
    let app = spawn_app().await;
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    app.task(&cara, json!({ "name": "twice", "pic": pia.id })).await;
    let _workers = app.start_workers();
    wait_until("the first delivery", PATIENCE, async || mails(&app).len() == 1).await;
    drained(&app).await;

    // Deliver the same event again, as an at-least-once queue may.
    let event = task_events::Entity::find().one(&app.ctx.db).await.unwrap().unwrap();
    let job = tasklane_core::events::TaskEventJob::outbound(event);
    let transport = tasklane_worker::transport(&app.ctx).await.unwrap();
    transport.enqueue(vec![job.clone()]).await.unwrap();
    transport.enqueue(vec![tasklane_jobs::NewJob { dedup_key: None, ..job }]).await.unwrap();
    drained(&app).await;
    assert_eq!(app.inbox(&pia).await.len(), 1);
    assert_eq!(mails(&app).len(), 1);
    let rows = notifications::Entity::find().count(&app.ctx.db).await.unwrap();
    assert_eq!(rows, 2, "one in-app and one email row");
}

/// A mailer that only counts, taking a while to answer so that two sends would overlap.
#[derive(Clone, Default)]
struct CountingMailer(std::sync::Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl tasklane_core::notify::email::mailer::Mailer for CountingMailer {
    async fn send(
        &self,
        _message: &tasklane_core::notify::email::mailer::EmailMessage,
    ) -> Result<(), tasklane_core::notify::email::mailer::MailError> {
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn two_copies_of_one_email_job_at_the_same_moment_send_one_email() {
    use sea_orm::sea_query::Expr;
    use tasklane_core::notify::email::{Postman, SendEmail, send_email};
    let app = spawn_app().await;
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    app.task(&cara, json!({ "name": "only once", "pic": pia.id })).await;
    {
        let _workers = app.start_workers();
        wait_until("the first delivery", PATIENCE, async || mails(&app).len() == 1).await;
        drained(&app).await;
    }
    let email_row = || {
        notifications::Entity::find()
            .filter(notifications::Column::Channel.eq("email"))
            .filter(notifications::Column::UserId.eq(pia.id))
    };
    let row = email_row().one(&app.ctx.db).await.unwrap().unwrap();
    let unsend = |claimed_until: Option<chrono::NaiveDateTime>| {
        notifications::Entity::update_many()
            .col_expr(notifications::Column::Status, Expr::value("pending"))
            .col_expr(notifications::Column::ClaimedUntil, Expr::value(claimed_until))
            .filter(notifications::Column::Id.eq(row.id))
            .exec(&app.ctx.db)
    };
    let sent = CountingMailer::default();
    let count = || sent.0.load(std::sync::atomic::Ordering::SeqCst);
    let postman = Postman::new(&app.ctx, Box::new(sent.clone()));
    let job = SendEmail { source: row.source.clone(), user_id: pia.id };

    // As if its email had not gone out yet; then two copies of its job run at once.
    unsend(None).await.unwrap();
    let (first, second) =
        tokio::join!(send_email(&app.ctx, &postman, job.clone()), send_email(&app.ctx, &postman, job.clone()));
    assert_eq!(count(), 1, "one email, not two");
    // One sent it; the other found it claimed (a retry) or, arriving later, sent.
    assert!(first.is_ok() || second.is_ok(), "{first:?} {second:?}");
    // The loser's retry finds it sent and does nothing.
    send_email(&app.ctx, &postman, job.clone()).await.unwrap();
    assert_eq!(count(), 1);
    assert_eq!(email_row().one(&app.ctx.db).await.unwrap().unwrap().status, "sent");

    // A claim whose worker died is taken over once it has run out, not before.
    unsend(Some(chrono::Utc::now().naive_utc() + chrono::Duration::seconds(60))).await.unwrap();
    assert!(send_email(&app.ctx, &postman, job.clone()).await.is_err());
    assert_eq!(count(), 1);
    unsend(Some(chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1))).await.unwrap();
    send_email(&app.ctx, &postman, job).await.unwrap();
    assert_eq!(count(), 2);
}

/// An app that sends email through the SES emulator from a verified sender of its own, with
/// `adjust` applied to its configuration; returns the sender too.
async fn ses_app(adjust: impl FnOnce(&mut tasklane_core::config::Config)) -> (TestApp, String) {
    tasklane_testkit::assert_local_aws();
    let sender = format!("tasklane-{}@example.com", tasklane_core::auth::tokens::new_id().to_lowercase());
    let from = sender.clone();
    let app = spawn_app_with(move |config| {
        config.notify.email = tasklane_core::config::EmailTransport::Ses;
        config.notify.email_from = from;
        adjust(config);
    })
    .await;
    app.ctx.outbound.ses().await.create_email_identity().email_identity(&sender).send().await.unwrap();
    (app, sender)
}

/// Who the emulator's emails from `sender` went to, sorted.
async fn ses_recipients(sender: &str) -> Vec<String> {
    let mut recipients: Vec<String> = tasklane_testkit::emulated_emails_from(sender)
        .await
        .iter()
        .map(|m| m["destinations"]["ToAddresses"][0].as_str().unwrap().to_owned())
        .collect();
    recipients.sort();
    recipients
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn emails_go_out_through_ses() {
    let (app, sender) = ses_app(|_| {}).await;
    let _workers = app.start_workers();
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    let sup = app.user("sup").await;
    let task = app.task(&cara, json!({ "name": "via SES", "pic": pia.id, "supervisor": sup.id })).await;

    wait_until("two emails in SES", PATIENCE, async || {
        tasklane_testkit::emulated_emails_from(&sender).await.len() >= 2
    })
    .await;
    drained(&app).await;
    let messages = tasklane_testkit::emulated_emails_from(&sender).await;
    assert_eq!(messages.len(), 2);
    assert_eq!(ses_recipients(&sender).await, [pia.email.clone(), sup.email.clone()]);
    for message in &messages {
        assert_eq!(message["subject"], "[tasklane] cara created “via SES”");
        let body = message["body"].as_str().unwrap();
        let link = format!("http://localhost:8080/tasks/{task}");
        assert!(body.contains(&link) && body.starts_with("<!DOCTYPE html>"), "{body}");
    }
    let sent = notifications::Entity::find()
        .filter(notifications::Column::Channel.eq("email"))
        .filter(notifications::Column::Status.eq("sent"))
        .count(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(sent, 2);
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn events_are_archived_to_dynamodb_and_read_back_by_task_and_by_user() {
    use tasklane_core::archive::{self, ArchiveQuery};
    tasklane_testkit::assert_local_aws();
    let table = format!("tl-test-{}", tasklane_core::auth::tokens::new_id().to_lowercase());
    let name = table.clone();
    let app = spawn_app_with(move |config| {
        config.archive.store = tasklane_core::config::ArchiveStore::Dynamodb;
        config.archive.dynamodb_table = name;
    })
    .await;
    archive::init(&app.ctx).await.unwrap();
    assert!(archive::init(&app.ctx).await.unwrap().contains("exists already"), "init is idempotent");
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    let task = app.task(&cara, json!({ "name": "archived", "pic": pia.id })).await;
    app.put(&format!("/api/tasks/{task}"), &pia.token, json!({ "Task_status": "done" })).await.expect(200);
    let other = app.task(&pia, json!({ "name": "other" })).await;

    let _workers = app.start_workers();
    wait_until("every event archived", PATIENCE, async || {
        task_events::Entity::find().filter(task_events::Column::ArchivedAt.is_null()).count(&app.ctx.db).await.unwrap()
            == 0
    })
    .await;
    // Archiving again (a redelivered sweep) leaves one item per event.
    task_events::Entity::update_many()
        .col_expr(
            task_events::Column::ArchivedAt,
            sea_orm::sea_query::Expr::value(Option::<chrono::NaiveDateTime>::None),
        )
        .exec(&app.ctx.db)
        .await
        .unwrap();
    assert_eq!(archive::sweep(&app.ctx).await.unwrap(), 3);

    let by_task = archive::query(&app.ctx, &ArchiveQuery::Task(task), None).await.unwrap();
    let kinds: Vec<&str> = by_task.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["task.created", "task.status_changed"]);
    assert_eq!(by_task[1].actor_id, Some(pia.id));
    assert_eq!(by_task[1].payload["changes"]["status"], json!({ "old": "pending", "new": "done" }));
    let by_pia = archive::query(&app.ctx, &ArchiveQuery::Actor(pia.id), None).await.unwrap();
    let tasks: Vec<i64> = by_pia.iter().map(|e| e.task_id).collect();
    assert_eq!(tasks, [task, other]);
    let since = by_pia[1].created_at;
    let recent = archive::query(&app.ctx, &ArchiveQuery::Actor(pia.id), Some(since)).await.unwrap();
    assert_eq!(recent.len(), 1);

    // Archived events past retention leave the database; the archive keeps them. Each task's
    // latest event stays: it is the task's state at the cutoff, which reports start from.
    let later = chrono::Utc::now() + chrono::Duration::days(91);
    assert_eq!(archive::prune(&app.ctx, later).await.unwrap(), 1);
    let kept = task_events::Entity::find().order_by_asc(task_events::Column::Id).all(&app.ctx.db).await.unwrap();
    let kept: Vec<(i64, &str)> = kept.iter().map(|e| (e.task_id, e.kind.as_str())).collect();
    assert_eq!(kept, [(task, "task.status_changed"), (other, "task.created")]);
    assert_eq!(archive::prune(&app.ctx, later).await.unwrap(), 0);
    assert_eq!(archive::query(&app.ctx, &ArchiveQuery::Task(task), None).await.unwrap().len(), 2);
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn in_sqs_mode_events_and_emails_ride_sqs_and_reach_ses() {
    use tasklane_core::queues::ON_SQS;
    use tasklane_jobs::sqs::SqsQueue;
    tasklane_testkit::assert_local_aws();
    let id = tasklane_core::auth::tokens::new_id().to_lowercase().replace('_', "x");
    let prefix = format!("tl-test-{id}-");
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let sqs = SqsQueue::new(aws_sdk_sqs::Client::new(&aws), &prefix);
    for queue in ON_SQS {
        sqs.init_queue(queue, Duration::from_secs(30), 8).await.unwrap();
    }
    let (app, sender) = ses_app(move |config| {
        config.queue = tasklane_core::config::QueueTransport::Sqs;
        config.sqs_queue_prefix = prefix;
        config.redis_url =
            Some(std::env::var("TASKLANE_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()).into());
        config.redis_prefix = format!("tl-test:{id}:");
    })
    .await;
    let _workers = app.start_workers();
    let cara = app.user("cara").await;
    let pia = app.user("pia").await;
    let sup = app.user("sup").await;
    app.task(&cara, json!({ "name": "over SQS", "pic": pia.id, "supervisor": sup.id })).await;

    wait_until("two emails in SES", Duration::from_secs(60), async || {
        tasklane_testkit::emulated_emails_from(&sender).await.len() >= 2
    })
    .await;
    assert_eq!(kinds(&app, &pia).await, ["task.created"]);
    assert_eq!(kinds(&app, &sup).await, ["task.created"]);
    assert_eq!(ses_recipients(&sender).await, [pia.email.clone(), sup.email.clone()]);
}

#[tokio::test]
async fn long_contents_and_boundary_lookalikes_reach_the_mail_file_intact() {
    let app = spawn_app().await;
    let _workers = app.start_workers();
    let cara = app.user("cara").await;
    let kim = json!({ "email": "kim@example.com", "password": PASSWORD, "display_name": "김민수" });
    let kim_id = app.post("/api/sign_up", None, kim).await.expect(201)["user"]["id"].as_i64().unwrap();
    let kim_token =
        app.sign_in("kim@example.com", PASSWORD).await.expect(200)["access_token"].as_str().unwrap().to_owned();
    app.patch("/api/users/me", &kim_token, json!({ "notification_prefs": { "language": "ko" } })).await.expect(200);
    let task = app.task(&cara, json!({ "name": "보고서", "pic": kim_id })).await;
    let contents = format!("--tasklane-notification-1\n-- 서명\n{}", "가".repeat(5000));
    app.patch(&format!("/api/tasks/{task}"), &cara.token, json!({ "contents": contents })).await.expect(200);

    wait_until("both emails to Kim", PATIENCE, async || eml_files(&app).len() >= 2).await;
    for raw in eml_files(&app) {
        let text = String::from_utf8(raw.clone()).unwrap();
        assert!(text.split("\r\n").all(|line| line.len() <= 998), "a line longer than RFC 5322 allows");
        let parsed = mailparse::parse_mail(&raw).unwrap();
        let types: Vec<&str> = parsed.subparts.iter().map(|part| part.ctype.mimetype.as_str()).collect();
        assert_eq!(types, ["text/plain", "text/html"], "exactly one text and one HTML part");
        let to = mailparse::addrparse_header(parsed.headers.iter().find(|h| h.get_key() == "To").unwrap()).unwrap();
        assert_eq!(to.to_string(), "\"김민수\" <kim@example.com>");
    }
    let mails = mails(&app);
    let updated = mails.iter().find(|m| m.subject.contains("수정했습니다")).expect("Kim hears of the new contents");
    assert_eq!(updated.subject, "[tasklane] cara님이 “보고서” 업무를 수정했습니다");
    // The contents as written (cut to 500 characters for the message): the lines that look
    // like MIME boundaries are text, and the long line is whole.
    let shown: String = contents.chars().take(500).collect();
    assert!(updated.text.contains(&format!("- 내용: (없음) → {shown}\n")), "{}", updated.text);
}
