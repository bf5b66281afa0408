//! Deadline reminders: once per task and deadline, to the PIC of open tasks only.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{Duration, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;
use tasklane_core::notify::reminders::remind;
use tasklane_entity::notifications;
use tasklane_testkit::{fresh_context, member};

async fn task(ctx: &tasklane_core::AppContext, who: &tasklane_core::auth::Principal, body: serde_json::Value) -> i64 {
    tasklane_core::tasks::create(ctx, who, serde_json::from_value(body).unwrap()).await.unwrap().id
}

async fn reminders(ctx: &tasklane_core::AppContext) -> Vec<(String, i64, String)> {
    notifications::Entity::find()
        .filter(notifications::Column::Kind.is_in(["task.due_soon", "task.overdue"]))
        .order_by_asc(notifications::Column::Id)
        .all(&ctx.db)
        .await
        .unwrap()
        .into_iter()
        .map(|n| (n.kind, n.task_id.unwrap(), n.channel))
        .collect()
}

#[tokio::test]
async fn pics_hear_once_per_deadline_when_it_nears_and_when_it_passes() {
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let cara = member(&ctx, "cara@example.com").await;
    let pia = member(&ctx, "pia@example.com").await;
    let now = Utc::now();
    let at = |offset: Duration| (now + offset).to_rfc3339();
    let soon =
        task(&ctx, &cara, json!({ "name": "soon", "pic": pia.user_id, "deadline": at(Duration::hours(2)) })).await;
    let late =
        task(&ctx, &cara, json!({ "name": "late", "pic": pia.user_id, "deadline": at(-Duration::hours(1)) })).await;
    let finished =
        json!({ "name": "finished", "pic": pia.user_id, "status": "done", "deadline": at(Duration::hours(1)) });
    task(&ctx, &cara, finished).await;
    task(&ctx, &cara, json!({ "name": "far", "pic": pia.user_id, "deadline": at(Duration::days(3)) })).await;
    task(&ctx, &cara, json!({ "name": "nobody's", "deadline": at(Duration::hours(1)) })).await;

    let emails = remind(&ctx, now).await.unwrap();
    assert_eq!(emails.len(), 2, "one email each");
    let expected = vec![
        ("task.due_soon".to_owned(), soon, "in_app".to_owned()),
        ("task.due_soon".to_owned(), soon, "email".to_owned()),
        ("task.overdue".to_owned(), late, "in_app".to_owned()),
        ("task.overdue".to_owned(), late, "email".to_owned()),
    ];
    assert_eq!(reminders(&ctx).await, expected);
    assert!(remind(&ctx, now + Duration::minutes(1)).await.unwrap().is_empty(), "the next sweep adds nothing");
    assert_eq!(reminders(&ctx).await.len(), 4);

    // Three hours on, "soon" is overdue: a new reminder. Moving "late"'s deadline out and back
    // in makes it due soon again, for the new deadline.
    let change = json!({ "deadline": at(Duration::hours(20)) });
    tasklane_core::tasks::update(&ctx, &cara, late, serde_json::from_value(change).unwrap(), None).await.unwrap();
    remind(&ctx, now + Duration::hours(3)).await.unwrap();
    let kinds: Vec<(String, i64)> = reminders(&ctx)
        .await
        .into_iter()
        .filter(|(_, _, channel)| channel == "in_app")
        .map(|(k, t, _)| (k, t))
        .collect();
    assert_eq!(
        kinds,
        [
            ("task.due_soon".to_owned(), soon),
            ("task.overdue".to_owned(), late),
            ("task.due_soon".to_owned(), late),
            ("task.overdue".to_owned(), soon),
        ]
    );
}

#[tokio::test]
async fn a_thousand_reminded_tasks_do_not_starve_the_rest() {
    use sea_orm::ActiveValue::Set;
    use tasklane_entity::tasks;
    // One PIC gets all of them: lift the per-recipient email limit, which would fold them into a digest.
    let (ctx, _dir) = fresh_context(|config| config.limits.emails_per_hour = 100_000).await;
    let cara = member(&ctx, "cara@example.com").await;
    let pia = member(&ctx, "pia@example.com").await;
    let now = Utc::now();
    let stored = |at: chrono::DateTime<Utc>| at.naive_utc();
    let rows: Vec<tasks::ActiveModel> = (0..1005)
        .map(|n| {
            tasks::ActiveModel {
                name: Set(format!("late {n}")),
                contents: Set(String::new()),
                status: Set("pending".into()),
                priority: Set(2),
                deadline: Set(Some(stored(now - Duration::hours(2) + Duration::seconds(n)))),
                pic_id: Set(Some(pia.user_id)),
                supervisor_id: Set(None),
                creator_id: Set(Some(cara.user_id)),
                version: Set(1),
                created_at: Set(stored(now - Duration::days(1))),
                updated_at: Set(stored(now - Duration::days(1))),
                completed_at: Set(None),
                started_at: Set(None),
                ..Default::default()
            }
            .with_keys()
        })
        .collect();
    for chunk in rows.chunks(50) {
        tasks::Entity::insert_many(chunk.to_vec()).exec_without_returning(&ctx.db).await.unwrap();
    }
    // One sweep writes at most a thousand; the next goes past them to the other five.
    assert_eq!(remind(&ctx, now).await.unwrap().len(), 1000);
    assert_eq!(remind(&ctx, now).await.unwrap().len(), 5);
    assert!(remind(&ctx, now).await.unwrap().is_empty());
    let overdue =
        reminders(&ctx).await.into_iter().filter(|(kind, _, channel)| kind == "task.overdue" && channel == "in_app");
    assert_eq!(overdue.count(), 1005);
}
