//! Report figures over a crafted history, with a fixed clock in Seoul time: tasks created,
//! reassigned, reopened and completed across period boundaries, a month of five ISO weeks, a
//! completion exactly at its deadline and a deadline exactly at the period's end. Every
//! expected figure is worked out by hand in the comments.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde_json::{Value, json};
use tasklane_core::AppContext;
use tasklane_core::auth::Principal;
use tasklane_core::clock::Clock;
use tasklane_core::reports::figures::{ByPriority, Figures};
use tasklane_core::reports::generate::{GenerateReport, generate};
use tasklane_core::reports::period::{Period, PeriodKind};
use tasklane_core::reports::{self, ReportView, Scope, Wanted};
use tasklane_testkit::{fresh_context, member};

const SEOUL: chrono_tz::Tz = chrono_tz::Asia::Seoul;

/// A Seoul wall-clock time, `2027-03-09 10:00`.
fn kst(local: &str) -> DateTime<Utc> {
    let naive = NaiveDateTime::parse_from_str(local, "%Y-%m-%d %H:%M").unwrap();
    SEOUL.from_local_datetime(&naive).unwrap().with_timezone(&Utc)
}

fn day(text: &str) -> NaiveDate {
    text.parse().unwrap()
}

/// The history, written through the task service with the clock set to each moment.
struct History {
    ctx: AppContext,
    ana: Principal,
    ben: Principal,
}

impl History {
    async fn create(&self, at: &str, who: &Principal, body: Value) -> i64 {
        self.ctx.clock.set(kst(at));
        tasklane_core::tasks::create(&self.ctx, who, serde_json::from_value(body).unwrap()).await.unwrap().id
    }

    async fn change(&self, at: &str, who: &Principal, task: i64, body: Value) {
        self.ctx.clock.set(kst(at));
        tasklane_core::tasks::update(&self.ctx, who, task, serde_json::from_value(body).unwrap(), None).await.unwrap();
    }

    async fn delete(&self, at: &str, who: &Principal, task: i64) {
        self.ctx.clock.set(kst(at));
        tasklane_core::tasks::delete(&self.ctx, who, task, Default::default(), None).await.unwrap();
    }

    /// Asks for a report at `now` and runs its job.
    async fn report(&self, now: &str, scope: Scope, user_id: i64, kind: PeriodKind, first_day: &str) -> ReportView {
        self.ctx.clock.set(kst(now));
        let period = Period::starting(kind, day(first_day), SEOUL).unwrap();
        let (pending, job) = reports::request(&self.ctx, Wanted { scope, user_id, period }).await.unwrap();
        let job: GenerateReport = serde_json::from_value(job.unwrap().payload).unwrap();
        assert!(generate(&self.ctx, &job).await.unwrap().is_empty(), "on-demand reports send no email");
        let ready = reports::load(&self.ctx, pending.id).await.unwrap();
        assert_eq!(ready.status, reports::ReportStatus::Ready);
        ready
    }
}

const HOUR: i64 = 3600;
const DAY: i64 = 24 * HOUR;

async fn crafted_history() -> (History, tasklane_testkit::TempDir, [i64; 10]) {
    let (mut ctx, dir) = fresh_context(|config| config.time_zone = SEOUL).await;
    ctx.clock = Clock::fixed(kst("2027-02-20 09:00"));
    let ana = member(&ctx, "ana@example.com").await;
    let ben = member(&ctx, "ben@example.com").await;
    let h = History { ctx, ana, ben };
    let (ana, ben) = (&h.ana, &h.ben);
    let a = ana.user_id;
    let b = ben.user_id;

    // The week before (1–7 March).
    let t1 = h
        .create(
            "2027-03-01 09:00",
            ben,
            json!({"name": "T1", "pic": a, "priority": "high", "deadline": kst("2027-03-10 18:00")}),
        )
        .await;
    let t2 = h.create("2027-03-02 09:00", ana, json!({"name": "T2", "pic": a})).await;
    let t9 = h.create("2027-03-02 10:00", ben, json!({"name": "T9", "pic": a})).await;
    let t5 = h
        .create(
            "2027-03-03 09:00",
            ana,
            json!({"name": "T5", "pic": a, "priority": "low", "deadline": kst("2027-03-05 09:00")}),
        )
        .await;
    let t7 = h
        .create(
            "2027-03-04 09:00",
            ben,
            json!({"name": "T7", "pic": a, "priority": "urgent", "deadline": kst("2027-03-12 09:00")}),
        )
        .await;
    let t8 = h.create("2027-03-05 09:00", ana, json!({"name": "T8", "pic": a})).await;
    h.change("2027-03-06 09:00", ana, t8, json!({"status": "done"})).await;

    // The week of 8–14 March (starts 2027-03-07T15:00Z).
    h.change("2027-03-09 09:00", ana, t2, json!({"status": "done"})).await;
    h.change("2027-03-09 10:00", ana, t1, json!({"status": "in_progress"})).await;
    let t3 = h
        .create(
            "2027-03-09 11:00",
            ben,
            json!({"name": "T3", "pic": b, "priority": "urgent", "deadline": kst("2027-03-13 15:00")}),
        )
        .await;
    let t10 = h.create("2027-03-09 12:00", ben, json!({"name": "T10", "pic": b})).await;
    h.change("2027-03-10 09:00", ben, t3, json!({"pic": a})).await;
    // Due at the instant the week ends: open at its end, but not overdue.
    let t4 = h
        .create(
            "2027-03-10 10:00",
            ana,
            json!({"name": "T4", "pic": a, "priority": "high", "deadline": kst("2027-03-15 00:00")}),
        )
        .await;
    h.change("2027-03-10 10:00", ana, t8, json!({"status": "in_progress"})).await;
    h.delete("2027-03-10 11:00", ben, t9).await;
    let t6 = h.create("2027-03-11 09:00", ana, json!({"name": "T6", "pic": b})).await;
    // One edit that hands T10 to Ana and finishes it: both steps count.
    h.change("2027-03-11 10:00", ben, t10, json!({"pic": a, "status": "done"})).await;
    h.change("2027-03-11 12:00", ana, t1, json!({"status": "done"})).await;
    h.change("2027-03-12 09:00", ana, t2, json!({"status": "pending"})).await;
    h.change("2027-03-12 10:00", ana, t5, json!({"pic": b})).await;
    h.change("2027-03-12 11:00", ana, t8, json!({"status": "done"})).await;
    // Done at the very instant of its deadline: on time.
    h.change("2027-03-13 15:00", ana, t3, json!({"status": "done"})).await;

    // After the week: must not change its figures.
    h.change("2027-03-16 09:00", ana, t7, json!({"status": "done"})).await;
    h.change("2027-03-17 09:00", ben, t6, json!({"status": "done"})).await;
    (h, dir, [t1, t2, t3, t4, t5, t6, t7, t8, t9, t10])
}

#[tokio::test]
async fn weekly_and_monthly_figures_match_the_hand_worked_history() {
    let (h, _dir, [_, t2, _, t4, _, _, t7, ..]) = crafted_history().await;
    let a = h.ana.user_id;

    let week = h.report("2027-03-20 10:00", Scope::Me, a, PeriodKind::Weekly, "2027-03-08").await;
    assert_eq!((week.start, week.end), (day("2027-03-08"), day("2027-03-14")));
    assert_eq!(week.starts_at, "2027-03-07T15:00:00Z".parse::<DateTime<Utc>>().unwrap());
    let content = week.content.clone().unwrap();
    assert_eq!(
        content.figures,
        Figures {
            // Ana's and not done at Monday 00:00: T1, T2, T5, T7, T9 (T8 was done).
            open_at_start: 5,
            // T3 (reassigned to her), T4 (created with her), T10 (reassigned in the same edit that finished it).
            newly_assigned: 3,
            // T1 (late: due 10 March 18:00, done 11 March), T3 (at its deadline instant), T8
            // (reopened and done again), T10; T2 was done and reopened, so it does not count.
            completed: 4,
            completed_on_time: 3,
            completed_late: 1,
            // T2, and T8 (done before the week, reopened in it).
            reopened: 2,
            // T2, T4, T7 (T5 went to Ben, T9 was deleted); T7 overdue, T4 due exactly at the end.
            open_at_end: 3,
            overdue_at_end: 1,
            // T4 and T6.
            created: 2,
            // 4 / (5 + 3).
            completion_rate: Some(0.5),
            // Lead times: T10 1d22h, T3 4d4h, T8 7d2h, T1 10d3h; nearest rank 2 of 4 and 4 of 4.
            lead_time_p50_secs: Some(4 * DAY + 4 * HOUR),
            lead_time_p85_secs: Some(10 * DAY + 3 * HOUR),
            // Cycle times: T8 2d1h (first in progress 10 March 10:00), T1 2d2h; T3, T10 never in progress.
            cycle_time_p50_secs: Some(2 * DAY + HOUR),
            cycle_time_p85_secs: Some(2 * DAY + 2 * HOUR),
            open_by_priority: ByPriority { urgent: 1, high: 1, medium: 1, low: 0 },
        }
    );
    assert_eq!(
        content.previous,
        Some(Figures {
            open_at_start: 0,
            // T1, T2, T9, T5, T7, T8 were all created with her as PIC.
            newly_assigned: 6,
            // T8, done 6 March and still done on Sunday night.
            completed: 1,
            completed_on_time: 1,
            completed_late: 0,
            reopened: 0,
            open_at_end: 5,
            // T5, due 5 March.
            overdue_at_end: 1,
            // T2, T5, T8.
            created: 3,
            completion_rate: Some(0.1667),
            lead_time_p50_secs: Some(DAY),
            lead_time_p85_secs: Some(DAY),
            cycle_time_p50_secs: None,
            cycle_time_p85_secs: None,
            open_by_priority: ByPriority { urgent: 1, high: 1, medium: 2, low: 1 },
        })
    );
    let series: Vec<(String, u64, u64)> =
        content.series.iter().map(|p| (p.date.to_string(), p.created, p.completed)).collect();
    assert_eq!(
        series,
        [
            ("2027-03-08".into(), 0, 0),
            ("2027-03-09".into(), 0, 0),
            ("2027-03-10".into(), 1, 0),
            ("2027-03-11".into(), 1, 2),
            ("2027-03-12".into(), 0, 1),
            ("2027-03-13".into(), 0, 1),
            ("2027-03-14".into(), 0, 0),
        ]
    );
    let top: Vec<(i64, &str)> = content.top_open.iter().map(|t| (t.id, t.name.as_str())).collect();
    assert_eq!(top, [(t7, "T7"), (t4, "T4"), (t2, "T2")], "urgent first, then by deadline, none last");
    assert_eq!(content.as_of, week.ends_at);

    // March 2027 starts on a Monday and ends on a Wednesday: five ISO weeks.
    let march = h.report("2027-04-02 10:00", Scope::Me, a, PeriodKind::Monthly, "2027-03-01").await;
    let content = march.content.unwrap();
    assert_eq!(
        content.figures,
        Figures {
            open_at_start: 0,
            // T1, T2, T9, T5, T7, T8 created with her; T3, T10 reassigned to her; T4 created with her.
            newly_assigned: 9,
            // T1 and T7 late (T7 done 16 March, due 12 March); T3, T8, T10 on time.
            completed: 5,
            completed_on_time: 3,
            completed_late: 2,
            reopened: 2,
            // T2 and T4, T4 now past its deadline.
            open_at_end: 2,
            overdue_at_end: 1,
            // T2, T5, T8, T4, T6.
            created: 5,
            // 5 / 9.
            completion_rate: Some(0.5556),
            // T10 1d22h, T3 4d4h, T8 7d2h, T1 10d3h, T7 12d: ranks 3 and 5 of 5.
            lead_time_p50_secs: Some(7 * DAY + 2 * HOUR),
            lead_time_p85_secs: Some(12 * DAY),
            cycle_time_p50_secs: Some(2 * DAY + HOUR),
            cycle_time_p85_secs: Some(2 * DAY + 2 * HOUR),
            open_by_priority: ByPriority { urgent: 0, high: 1, medium: 1, low: 0 },
        }
    );
    let series: Vec<(String, u64, u64)> =
        content.series.iter().map(|p| (p.date.to_string(), p.created, p.completed)).collect();
    assert_eq!(
        series,
        [
            ("2027-03-01".into(), 3, 0),
            ("2027-03-08".into(), 2, 4),
            ("2027-03-15".into(), 0, 1),
            ("2027-03-22".into(), 0, 0),
            ("2027-03-29".into(), 0, 0),
        ]
    );
    let february = content.previous.unwrap();
    assert_eq!(february, Figures::default(), "nothing existed in February");
}

#[tokio::test]
async fn the_team_report_has_totals_and_each_members_figures() {
    let (h, _dir, _) = crafted_history().await;
    let week = h.report("2027-03-20 10:00", Scope::Team, 0, PeriodKind::Weekly, "2027-03-08").await;
    assert_eq!(week.user_id, None);
    let content = week.content.unwrap();
    let team = &content.figures;
    // Open at the start: T1, T2, T5, T7, T9. Given a new PIC in the week: T3, T4, T5, T6, T10.
    assert_eq!((team.open_at_start, team.newly_assigned), (5, 5));
    assert_eq!((team.completed, team.completed_on_time, team.completed_late, team.reopened), (4, 3, 1, 2));
    // Open at the end: T2, T4, T7 (Ana's), T5, T6 (Ben's); T5 and T7 overdue.
    assert_eq!((team.open_at_end, team.overdue_at_end, team.created), (5, 2, 4));
    assert_eq!(team.completion_rate, Some(0.4));
    assert_eq!(team.open_by_priority, ByPriority { urgent: 1, high: 1, medium: 2, low: 1 });
    let members = content.members.unwrap();
    let emails: Vec<&str> = members.iter().map(|m| m.email.as_str()).collect();
    assert_eq!(emails, ["ana@example.com", "ben@example.com"]);
    assert_eq!(members[0].figures.completed, 4);
    let ben = &members[1].figures;
    // Ben: T3, T10 created with him, T6 created for him, T5 handed to him; T5 and T6 open, T5 overdue.
    assert_eq!((ben.open_at_start, ben.newly_assigned, ben.completed, ben.created), (0, 4, 0, 2));
    assert_eq!((ben.open_at_end, ben.overdue_at_end, ben.completion_rate), (2, 1, Some(0.0)));
}

#[tokio::test]
async fn the_current_period_shows_figures_to_date_and_regenerating_replaces() {
    let (h, _dir, _) = crafted_history().await;
    let a = h.ana.user_id;
    // Wednesday 10 March, 12:00: T2 done (9 March), T1 in progress, T3 and T4 newly hers.
    let so_far = h.report("2027-03-10 12:00", Scope::Me, a, PeriodKind::Weekly, "2027-03-08").await;
    let content = so_far.content.unwrap();
    assert_eq!(content.as_of, kst("2027-03-10 12:00"));
    // The history after that instant is ignored: T2 counts as completed (it is reopened later).
    assert_eq!((content.figures.completed, content.figures.open_at_end), (1, 6));
    let again = h.report("2027-03-20 10:00", Scope::Me, a, PeriodKind::Weekly, "2027-03-08").await;
    assert_eq!(again.id, so_far.id, "the same report, replaced");
    assert_eq!(again.content.unwrap().figures.completed, 4);
}

#[tokio::test]
async fn periods_past_event_retention_keep_their_stored_report_or_are_refused() {
    let (mut ctx, _dir) = fresh_context(|config| {
        config.time_zone = SEOUL;
        config.archive.store = tasklane_core::config::ArchiveStore::Dynamodb;
        config.archive.retention_days = 7;
    })
    .await;
    ctx.clock = Clock::fixed(kst("2027-03-20 10:00"));
    let ana = member(&ctx, "ana@example.com").await;
    let wanted = |first_day: &str| Wanted {
        scope: Scope::Me,
        user_id: ana.user_id,
        period: Period::starting(PeriodKind::Weekly, day(first_day), SEOUL).unwrap(),
    };
    // Events before 13 March 10:00 may be pruned: the week of 8 March cannot be computed.
    let refused = reports::request(&ctx, wanted("2027-03-08")).await.unwrap_err();
    assert_eq!(refused.kind(), Some(tasklane_core::error::ErrorKind::Unprocessable));
    assert!(refused.to_string().contains("TASKLANE_EVENT_RETENTION_DAYS"), "{refused}");
    let (pending, job) = reports::request(&ctx, wanted("2027-03-15")).await.unwrap();
    let job: GenerateReport = serde_json::from_value(job.unwrap().payload).unwrap();
    generate(&ctx, &job).await.unwrap();
    let ready = reports::load(&ctx, pending.id).await.unwrap();
    assert_eq!(ready.content.as_ref().unwrap().previous, None, "the week before is past retention");
    // A month later the week is past retention too, but its stored report still answers.
    ctx.clock.set(kst("2027-04-20 10:00"));
    let (stored, job) = reports::request(&ctx, wanted("2027-03-15")).await.unwrap();
    assert!(job.is_none());
    assert_eq!(stored, ready);
}

#[tokio::test]
async fn events_written_before_the_upgrade_get_their_state_by_replaying_each_task() {
    use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder};
    use sea_orm_migration::MigratorTrait;
    use tasklane_entity::{task_events, tasks, users};

    let (url, _dir) = tasklane_testkit::fresh_database().await;
    let config =
        tasklane_core::config::Config::from_sources(None, |key| (key == "TASKLANE_DATABASE_URL").then(|| url.clone()))
            .unwrap();
    let db = tasklane_core::db::connect(&config).await.unwrap();
    // The schema as the previous release left it.
    tasklane_migration::Migrator::up(&db, Some(4)).await.unwrap();
    let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap().naive_utc();
    for (id, email) in [(1, "u@example.com"), (2, "v@example.com")] {
        users::Entity::insert(users::ActiveModel {
            id: Set(id),
            email: Set(email.into()),
            password_hash: Set("x".into()),
            display_name: Set(email.into()),
            role: Set("member".into()),
            disabled: Set(false),
            notification_prefs: Set(json!({})),
            token_version: Set(0),
            created_at: Set(at("2026-11-01T00:00:00Z")),
            updated_at: Set(at("2026-11-01T00:00:00Z")),
            ..Default::default()
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
    }
    for (id, status, pic) in [(1, "done", 2), (2, "pending", 1)] {
        tasks::Entity::insert(tasks::ActiveModel {
            id: Set(id),
            name: Set(format!("task {id}")),
            contents: Set(String::new()),
            status: Set(status.into()),
            priority: Set(3),
            pic_id: Set(Some(pic)),
            creator_id: Set(Some(1)),
            version: Set(4),
            created_at: Set(at("2026-11-20T10:00:00Z")),
            updated_at: Set(at("2026-11-22T10:00:00Z")),
            ..Default::default()
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
    }
    let snapshot = |status: &str, pic: i64| {
        json!({ "id": 1, "name": "task 1", "contents": "", "status": status, "priority": "high",
                "deadline": "2026-11-30T00:00:00Z", "pic_id": pic, "supervisor_id": null, "creator_id": 1,
                "version": 1, "created_at": "2026-11-20T10:00:00Z", "updated_at": "2026-11-20T10:00:00Z",
                "completed_at": null })
    };
    let done = snapshot("done", 2);
    let events = [
        (1, 1, "task.created", json!({ "task": snapshot("pending", 1) }), "2026-11-20T10:00:00Z"),
        (
            1,
            2,
            "task.status_changed",
            json!({ "task": snapshot("in_progress", 1),
            "changes": { "status": { "old": "pending", "new": "in_progress" } } }),
            "2026-11-21T10:00:00Z",
        ),
        // One edit: both events carry the task as it stood after the whole edit.
        (
            1,
            3,
            "task.assigned",
            json!({ "task": done.clone(), "changes": { "pic_id": { "old": 1, "new": 2 } } }),
            "2026-11-22T10:00:00Z",
        ),
        (
            1,
            4,
            "task.status_changed",
            json!({ "task": done,
            "changes": { "status": { "old": "in_progress", "new": "done" } } }),
            "2026-11-22T10:00:00Z",
        ),
        // From before events carried the task.
        (2, 1, "task.created", json!({}), "2026-11-20T11:00:00Z"),
    ];
    for (task_id, seq, kind, payload, when) in events {
        task_events::Entity::insert(task_events::ActiveModel {
            task_id: Set(task_id),
            seq: Set(seq),
            actor_id: Set(Some(1)),
            kind: Set(kind.into()),
            payload: Set(payload),
            created_at: Set(at(when)),
            published_at: Set(Some(at(when))),
            archived_at: Set(None),
            ..Default::default()
        })
        .exec_without_returning(&db)
        .await
        .unwrap();
    }

    tasklane_migration::Migrator::up(&db, None).await.unwrap();
    // The sort and search keys of tasks from before them are filled in too.
    let task = tasks::Entity::find_by_id(1).one(&db).await.unwrap().unwrap();
    assert_eq!(
        (task.urgency_key, task.deadline_key, task.search_text.as_str()),
        (tasks::urgency_key(3, None), tasks::NO_DEADLINE_KEY, " task 1 ")
    );
    // And their search words, carrying those keys.
    let words = tasklane_entity::task_words::Entity::find()
        .order_by_asc(tasklane_entity::task_words::Column::Word)
        .order_by_asc(tasklane_entity::task_words::Column::TaskId)
        .all(&db)
        .await
        .unwrap();
    let words: Vec<_> = words.iter().map(|w| (w.task_id, w.word.as_str(), w.urgency_key, w.updated_at)).collect();
    let key = tasks::urgency_key(3, None);
    let edited = at("2026-11-22T10:00:00Z");
    assert_eq!(
        words,
        [(1, "1", key, edited), (2, "2", key, edited), (1, "task", key, edited), (2, "task", key, edited)]
    );
    let rows = task_events::Entity::find().order_by_asc(task_events::Column::Id).all(&db).await.unwrap();
    let states: Vec<_> = rows
        .iter()
        .map(|e| (e.pic_id, e.status.as_deref(), e.priority, e.started_at.is_some(), e.completed_at))
        .collect();
    let finished = Some(at("2026-11-22T10:00:00Z"));
    assert_eq!(
        states,
        [
            (Some(1), Some("pending"), Some(3), false, None),
            (Some(1), Some("in_progress"), Some(3), true, None),
            (Some(2), Some("in_progress"), Some(3), true, None),
            (Some(2), Some("done"), Some(3), true, finished),
            (None, Some("pending"), Some(2), false, None),
        ]
    );
    assert!(rows[..4].iter().all(|e| e.deadline == Some(at("2026-11-30T00:00:00Z"))));
    assert!(rows[..4].iter().all(|e| e.task_created_at == Some(at("2026-11-20T10:00:00Z"))));
    assert_eq!(rows[3].started_at, Some(at("2026-11-21T10:00:00Z")));
    let superseded: Vec<_> = rows.iter().map(|e| e.superseded_at).collect();
    let (second, third) = (Some(at("2026-11-21T10:00:00Z")), Some(at("2026-11-22T10:00:00Z")));
    assert_eq!(superseded, [second, third, third, None, None]);
    let task = tasks::Entity::find_by_id(1).one(&db).await.unwrap().unwrap();
    assert_eq!(task.started_at, Some(at("2026-11-21T10:00:00Z")));
    // Each state knows what came before it, and a done one the deadline it was done by.
    let before: Vec<_> = rows.iter().map(|e| (e.prev_pic_id, e.prev_status.as_deref())).collect();
    assert_eq!(
        before,
        [
            (None, None),
            (Some(1), Some("pending")),
            (Some(1), Some("in_progress")),
            (Some(2), Some("in_progress")),
            (None, None)
        ]
    );
    let due: Vec<_> = rows.iter().map(|e| e.completed_due).collect();
    assert_eq!(due, [None, None, None, Some(at("2026-11-30T00:00:00Z")), None]);
    assert_eq!(task.completed_due, Some(at("2026-11-30T00:00:00Z")));
    // Accounts from before addresses were verified count as verified.
    let people = users::Entity::find().all(&db).await.unwrap();
    assert!(people.iter().all(|user| user.email_verified_at == Some(user.created_at)), "{people:?}");
}
