//! Reports: every task event records the task's state right after it (PIC, status, priority,
//! deadline and its milestones) and when the task's next event superseded that state, so a
//! report answers "what stood where at instant T" with grouped queries over the events
//! instead of replaying JSON; stored reports; and the runs that schedule them, unique per
//! period so replicas schedule each period once.
//!
//! Events written before this migration get their state by replaying each task's events in
//! order (`payload.task` where the event carries it, otherwise `payload.changes` applied to the
//! state before). A first event that carries neither starts from the defaults (pending,
//! medium, no deadline, nobody), which only events from before task snapshots can need.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement, Value as SqlValue};

use crate::types::{index, instant};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000005_reports"
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tasks {
    Table,
    StartedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum TaskEvents {
    Table,
    ActorId,
    Kind,
    CreatedAt,
    PicId,
    Status,
    Priority,
    Deadline,
    TaskCreatedAt,
    StartedAt,
    CompletedAt,
    SupersededAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Reports {
    Table,
    Id,
    Subject,
    Scope,
    UserId,
    Period,
    FirstDay,
    PeriodStart,
    PeriodEnd,
    Status,
    Body,
    Error,
    Scheduled,
    EmailedAt,
    RequestedAt,
    GeneratedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ReportRuns {
    Table,
    Id,
    Period,
    FirstDay,
    LastUserId,
    Enqueued,
    StartedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_database_backend();
        manager
            .alter_table(Table::alter().table(Tasks::Table).add_column(instant(db, Tasks::StartedAt).null()).to_owned())
            .await?;
        // SQLite adds one column per ALTER TABLE.
        let state_columns = [
            ColumnDef::new(TaskEvents::PicId).big_integer().null().to_owned(),
            ColumnDef::new(TaskEvents::Status).string_len(16).null().to_owned(),
            ColumnDef::new(TaskEvents::Priority).small_integer().null().to_owned(),
            instant(db, TaskEvents::Deadline).null().to_owned(),
            instant(db, TaskEvents::TaskCreatedAt).null().to_owned(),
            instant(db, TaskEvents::StartedAt).null().to_owned(),
            instant(db, TaskEvents::CompletedAt).null().to_owned(),
            instant(db, TaskEvents::SupersededAt).null().to_owned(),
        ];
        for mut column in state_columns {
            manager.alter_table(Table::alter().table(TaskEvents::Table).add_column(&mut column).to_owned()).await?;
        }
        backfill_event_states(manager.get_connection()).await?;
        let conn = manager.get_connection();
        conn.execute_unprepared(
            "UPDATE tasks SET started_at = (SELECT MIN(e.created_at) FROM task_events e \
             WHERE e.task_id = tasks.id AND e.status = 'in_progress')",
        )
        .await?;
        // A user's tasks at any instant, and what they created in a period.
        manager
            .create_index(index("idx_task_events_pic", TaskEvents::Table, &[TaskEvents::PicId, TaskEvents::CreatedAt]))
            .await?;
        manager
            .create_index(index(
                "idx_task_events_actor_kind",
                TaskEvents::Table,
                &[TaskEvents::ActorId, TaskEvents::Kind, TaskEvents::CreatedAt],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Reports::Table)
                    .col(ColumnDef::new(Reports::Id).big_integer().not_null().auto_increment().primary_key())
                    // `user:<id>` or `team`: the unique key, as a team report belongs to no user.
                    .col(ColumnDef::new(Reports::Subject).string_len(40).not_null())
                    .col(ColumnDef::new(Reports::Scope).string_len(8).not_null())
                    .col(ColumnDef::new(Reports::UserId).big_integer().null())
                    .col(ColumnDef::new(Reports::Period).string_len(8).not_null())
                    .col(ColumnDef::new(Reports::FirstDay).date().not_null())
                    .col(instant(db, Reports::PeriodStart).not_null())
                    .col(instant(db, Reports::PeriodEnd).not_null())
                    .col(ColumnDef::new(Reports::Status).string_len(8).not_null())
                    .col(ColumnDef::new(Reports::Body).json().null())
                    .col(ColumnDef::new(Reports::Error).string_len(500).null())
                    .col(ColumnDef::new(Reports::Scheduled).boolean().not_null().default(false))
                    .col(instant(db, Reports::EmailedAt).null())
                    .col(instant(db, Reports::RequestedAt).not_null())
                    .col(instant(db, Reports::GeneratedAt).null())
                    .foreign_key(
                        ForeignKey::create()
                            .from(Reports::Table, Reports::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("idx_reports_key", Reports::Table, &[Reports::Subject, Reports::Period, Reports::FirstDay])
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A user's reports, newest first.
        manager
            .create_index(index(
                "idx_reports_user",
                Reports::Table,
                &[Reports::UserId, Reports::PeriodStart, Reports::Id],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ReportRuns::Table)
                    .col(ColumnDef::new(ReportRuns::Id).big_integer().not_null().auto_increment().primary_key())
                    .col(ColumnDef::new(ReportRuns::Period).string_len(8).not_null())
                    .col(ColumnDef::new(ReportRuns::FirstDay).date().not_null())
                    .col(ColumnDef::new(ReportRuns::LastUserId).big_integer().not_null().default(0))
                    .col(ColumnDef::new(ReportRuns::Enqueued).integer().not_null().default(0))
                    .col(instant(db, ReportRuns::StartedAt).not_null())
                    .col(instant(db, ReportRuns::FinishedAt).null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                index("idx_report_runs_period", ReportRuns::Table, &[ReportRuns::Period, ReportRuns::FirstDay])
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}

/// A task's state as the replay carries it from one event to the next.
#[derive(Clone, Debug, Default)]
struct State {
    pic_id: Option<i64>,
    status: String,
    priority: i16,
    deadline: Option<chrono::NaiveDateTime>,
    created_at: Option<chrono::NaiveDateTime>,
    started_at: Option<chrono::NaiveDateTime>,
    completed_at: Option<chrono::NaiveDateTime>,
}

fn rank(priority: &str) -> i16 {
    match priority {
        "low" => 1,
        "high" => 3,
        "urgent" => 4,
        _ => 2,
    }
}

fn instant_of(value: &serde_json::Value) -> Option<chrono::NaiveDateTime> {
    value.as_str()?.parse::<chrono::DateTime<chrono::Utc>>().ok().map(|at| at.naive_utc())
}

impl State {
    fn fresh(at: chrono::NaiveDateTime) -> Self {
        Self { status: "pending".into(), priority: 2, created_at: Some(at), ..Self::default() }
    }

    /// The state after a status change to `status` at `at`.
    fn set_status(&mut self, status: &str, at: chrono::NaiveDateTime) {
        if status == "in_progress" && self.started_at.is_none() {
            self.started_at = Some(at);
        }
        self.completed_at = match (self.status.as_str(), status) {
            ("done", "done") => self.completed_at,
            (_, "done") => Some(at),
            _ => None,
        };
        self.status = status.to_owned();
    }

    /// Applies `changes` (`{"field": {"old", "new"}}`) made at `at`.
    fn apply(&mut self, changes: &serde_json::Value, at: chrono::NaiveDateTime) {
        let new = |field: &str| changes.get(field).and_then(|change| change.get("new"));
        if let Some(pic) = new("pic_id") {
            self.pic_id = pic.as_i64();
        }
        if let Some(priority) = new("priority").and_then(|p| p.as_str()) {
            self.priority = rank(priority);
        }
        if let Some(deadline) = new("deadline") {
            self.deadline = instant_of(deadline);
        }
        if let Some(status) = new("status").and_then(|s| s.as_str()) {
            self.set_status(status, at);
        }
    }

    /// The state a whole task snapshot (`payload.task`) gives.
    fn from_task(task: &serde_json::Value, at: chrono::NaiveDateTime) -> Self {
        let mut state = Self::fresh(instant_of(&task["created_at"]).unwrap_or(at));
        state.pic_id = task["pic_id"].as_i64();
        state.status = task["status"].as_str().unwrap_or("pending").to_owned();
        state.priority = rank(task["priority"].as_str().unwrap_or("medium"));
        state.deadline = instant_of(&task["deadline"]);
        state.completed_at = instant_of(&task["completed_at"]);
        if state.status == "in_progress" {
            state.started_at = Some(at);
        }
        state
    }
}

/// Gives every existing event the task's state right after it, replaying one task at a time.
async fn backfill_event_states(conn: &impl ConnectionTrait) -> Result<(), DbErr> {
    const PAGE: i64 = 1000;
    let backend = conn.get_database_backend();
    let (mut task_id, mut seq) = (i64::MIN, i32::MIN);
    let mut state: Option<State> = None;
    let mut previous_id: Option<i64> = None;
    loop {
        let rows = conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                "SELECT id, task_id, seq, kind, payload, created_at FROM task_events \
                 WHERE task_id > ? OR (task_id = ? AND seq > ?) ORDER BY task_id, seq LIMIT ?",
                [task_id.into(), task_id.into(), seq.into(), PAGE.into()],
            ))
            .await?;
        for row in &rows {
            let id: i64 = row.try_get("", "id")?;
            let row_task: i64 = row.try_get("", "task_id")?;
            let kind: String = row.try_get("", "kind")?;
            let payload: serde_json::Value = row.try_get("", "payload")?;
            let at: chrono::NaiveDateTime = row.try_get("", "created_at")?;
            if row_task != task_id {
                state = None;
                previous_id = None;
            }
            (task_id, seq) = (row_task, row.try_get("", "seq")?);
            let task = payload.get("task").filter(|task| task.is_object());
            let next = match (state.take(), task) {
                (Some(mut before), _) if kind != "task.created" => {
                    before.apply(&payload["changes"], at);
                    before
                }
                (_, Some(task)) => State::from_task(task, at),
                (_, None) => State::fresh(at),
            };
            write_state(conn, backend, id, &next).await?;
            if let Some(previous) = previous_id {
                conn.execute_raw(Statement::from_sql_and_values(
                    backend,
                    "UPDATE task_events SET superseded_at = ? WHERE id = ?",
                    [at.into(), previous.into()],
                ))
                .await?;
            }
            state = Some(next);
            previous_id = Some(id);
        }
        if (rows.len() as i64) < PAGE {
            return Ok(());
        }
    }
}

async fn write_state(conn: &impl ConnectionTrait, backend: DbBackend, id: i64, state: &State) -> Result<(), DbErr> {
    let values: [SqlValue; 8] = [
        state.pic_id.into(),
        state.status.clone().into(),
        state.priority.into(),
        state.deadline.into(),
        state.created_at.into(),
        state.started_at.into(),
        state.completed_at.into(),
        id.into(),
    ];
    conn.execute_raw(Statement::from_sql_and_values(
        backend,
        "UPDATE task_events SET pic_id = ?, status = ?, priority = ?, deadline = ?, task_created_at = ?, \
         started_at = ?, completed_at = ? WHERE id = ?",
        values,
    ))
    .await?;
    Ok(())
}
