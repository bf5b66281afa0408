//! Tasks: creating, reading, changing and deleting them, who may do which, and the event
//! written in the same transaction as every change.

pub mod fields;
pub mod list;
pub mod view;
pub(crate) mod words;

pub use view::TaskView;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasklane_entity::task_words::{self, TaskKeys};
use tasklane_entity::{task_events, tasks, users};

use crate::auth::Principal;
use crate::events::{Change, Changes, EventKind, EventPayload, TaskState};
use crate::{AppContext, Error, Result};
use fields::{Patch, Priority, TaskStatus, UserRef, parse_contents, parse_deadline, parse_name};

/// An event that records the task as `task` shows it, with `changes`.
fn payload(task: &TaskView, changes: Changes) -> EventPayload {
    EventPayload { task: Some(task.clone()), changes }
}

/// One entry of a task's history, as the API shows it and the archive keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EventView {
    /// Event id.
    pub id: i64,
    /// The task.
    pub task_id: i64,
    /// The task's version right after this event.
    pub seq: i32,
    /// Who did it (null once their account is deleted).
    pub actor_id: Option<i64>,
    /// `task.created`, `task.updated`, `task.status_changed`, `task.assigned` or `task.deleted`.
    pub kind: String,
    /// `{"task": …}`: the task after the change (its last state on deletion), plus
    /// `"changes": {field: {"old", "new"}}` on updates.
    #[schema(value_type = Object)]
    pub payload: Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

impl From<task_events::Model> for EventView {
    fn from(event: task_events::Model) -> Self {
        Self {
            id: event.id,
            task_id: event.task_id,
            seq: event.seq,
            actor_id: event.actor_id,
            kind: event.kind,
            payload: event.payload,
            created_at: event.created_at.and_utc(),
        }
    }
}

/// `POST /api/tasks` body: the seed's names (`Task_name`, …) or snake_case ones.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// Title, 1 to 200 characters.
    #[serde(alias = "Task_name")]
    pub name: String,
    /// Free text, up to 20,000 characters.
    #[serde(default, alias = "Task_contents")]
    pub contents: Option<String>,
    /// `pending` (default), `in_progress`, `done`, or 대기 중 / 진행 중 / 완료.
    #[serde(default, alias = "Task_status")]
    pub status: Option<String>,
    /// `low`, `medium` (default), `high`, `urgent`.
    #[serde(default, alias = "Priority", alias = "Task_priority")]
    pub priority: Option<String>,
    /// RFC 3339 date-time or `YYYY-MM-DD`.
    #[serde(default, alias = "Deadline")]
    pub deadline: Option<String>,
    /// Person in charge: user id or email.
    #[serde(default, alias = "PIC")]
    pub pic: Option<UserRef>,
    /// Supervisor: user id or email.
    #[serde(default, alias = "Supervisor")]
    pub supervisor: Option<UserRef>,
}

/// `PATCH`/`PUT /api/tasks/{id}` body; absent fields stay, `null` clears deadline, PIC or supervisor.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskChange {
    /// New title.
    #[serde(default, alias = "Task_name")]
    pub name: Option<String>,
    /// New contents.
    #[serde(default, alias = "Task_contents")]
    pub contents: Option<String>,
    /// New status.
    #[serde(default, alias = "Task_status")]
    pub status: Option<String>,
    /// New priority.
    #[serde(default, alias = "Priority", alias = "Task_priority")]
    pub priority: Option<String>,
    /// New deadline, or null to clear it.
    #[serde(default, alias = "Deadline")]
    #[schema(value_type = Option<String>)]
    pub deadline: Patch<String>,
    /// New PIC (id or email), or null to unassign.
    #[serde(default, alias = "PIC")]
    #[schema(value_type = Option<UserRef>)]
    pub pic: Patch<UserRef>,
    /// New supervisor (id or email), or null.
    #[serde(default, alias = "Supervisor")]
    #[schema(value_type = Option<UserRef>)]
    pub supervisor: Patch<UserRef>,
    /// The version being edited (same as `If-Match`).
    #[serde(default)]
    pub version: Option<i32>,
}

/// `DELETE /api/tasks/{id}` optional body (the seed's).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskDeletion {
    /// Must match the path when given.
    #[serde(default, alias = "Task_id")]
    #[schema(value_type = Option<String>)]
    pub id: Option<UserRef>,
}

fn is_party(who: &Principal, task: &tasks::Model) -> bool {
    [task.creator_id, task.pic_id, task.supervisor_id].contains(&Some(who.user_id))
}

/// Creator, PIC, supervisor and admins may edit fields and change the status.
pub fn can_edit(who: &Principal, task: &tasks::Model) -> bool {
    who.is_admin() || is_party(who, task)
}

/// Creator, supervisor and admins may reassign and delete.
pub fn can_reassign(who: &Principal, task: &tasks::Model) -> bool {
    who.is_admin() || task.creator_id == Some(who.user_id) || task.supervisor_id == Some(who.user_id)
}

/// Resolves a user reference to an existing user's id; `field` names it in the error.
pub async fn resolve_user(db: &impl ConnectionTrait, user: &UserRef, field: &str) -> Result<i64> {
    let query = users::Entity::find();
    let query = match user {
        UserRef::Id(id) => query.filter(users::Column::Id.eq(*id)),
        UserRef::Text(text) => match text.trim().parse::<i64>() {
            Ok(id) => query.filter(users::Column::Id.eq(id)),
            Err(_) => query.filter(users::Column::Email.eq(text.trim().to_lowercase())),
        },
    };
    let found = query.one(db).await?;
    match found {
        Some(user) if !user.disabled => Ok(user.id),
        _ => Err(Error::invalid("unknown_user", format!("{field}: no such user"))),
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.trim().is_empty())
}

/// Creates a task and its `task.created` event in one transaction.
pub async fn create(ctx: &AppContext, who: &Principal, input: NewTask) -> Result<TaskView> {
    let name = parse_name(&input.name)?;
    let contents = parse_contents(input.contents.unwrap_or_default())?;
    let status = non_empty(input.status).map(|s| TaskStatus::parse(&s)).transpose()?.unwrap_or(TaskStatus::Pending);
    let priority = non_empty(input.priority).map(|p| Priority::parse(&p)).transpose()?.unwrap_or(Priority::Medium);
    let deadline = non_empty(input.deadline).map(|d| parse_deadline(&d)).transpose()?;
    let pic_id = match &input.pic {
        Some(user) if !is_blank(user) => Some(resolve_user(&ctx.db, user, "pic").await?),
        _ => None,
    };
    let supervisor_id = match &input.supervisor {
        Some(user) if !is_blank(user) => Some(resolve_user(&ctx.db, user, "supervisor").await?),
        _ => None,
    };
    let now = ctx.clock.now();
    let completed_at = (status == TaskStatus::Done).then_some(now);
    let completed_due = deadline.filter(|_| status == TaskStatus::Done);
    let started_at = (status == TaskStatus::InProgress).then_some(now);
    // Tokenised once, for the known words and for the task's own rows.
    let text_words = task_words::words_of(&tasks::search_text(&name, &contents));
    words::remember(&ctx.db, &text_words, now).await?;
    let txn = tasklane_jobs::transactions::begin(&ctx.db).await?;
    // Insert without reading the row back (SeaORM would re-select it on MySQL): every value
    // is known here but the id.
    let inserted = tasks::Entity::insert(
        tasks::ActiveModel {
            name: Set(name.clone()),
            contents: Set(contents.clone()),
            status: Set(status.as_str().to_owned()),
            priority: Set(priority.rank()),
            deadline: Set(deadline.map(crate::stored)),
            pic_id: Set(pic_id),
            supervisor_id: Set(supervisor_id),
            creator_id: Set(Some(who.user_id)),
            version: Set(1),
            created_at: Set(crate::stored(now)),
            updated_at: Set(crate::stored(now)),
            completed_at: Set(completed_at.map(crate::stored)),
            completed_due: Set(completed_due.map(crate::stored)),
            started_at: Set(started_at.map(crate::stored)),
            ..Default::default()
        }
        .with_keys(),
    )
    .exec(&txn)
    .await
    .map_err(crate::error::unknown_user_on_foreign_key)?;
    let keys = TaskKeys::new(crate::stored(now), crate::stored(now), priority.rank(), deadline.map(crate::stored));
    words::insert(&txn, inserted.last_insert_id, &text_words, keys).await?;
    let view = TaskView {
        id: inserted.last_insert_id,
        name,
        contents,
        status,
        priority,
        deadline,
        pic_id,
        supervisor_id,
        creator_id: Some(who.user_id),
        version: 1,
        created_at: now,
        updated_at: now,
        completed_at,
        started_at,
    };
    let state = TaskState::of(&view, completed_due);
    let created = Recorded { kind: EventKind::Created, payload: payload(&view, Changes::default()), state };
    record_events(&txn, view.id, who.user_id, None, vec![created], now).await?;
    txn.commit().await?;
    ctx.events_written.notify_one();
    Ok(view)
}

fn is_blank(user: &UserRef) -> bool {
    matches!(user, UserRef::Text(text) if text.trim().is_empty())
}

/// One task by id.
pub async fn get(ctx: &AppContext, task_id: i64) -> Result<TaskView> {
    view::shown()
        .filter(tasks::Column::Id.eq(task_id))
        .into_model::<view::ShownTask>()
        .one(&ctx.reads)
        .await?
        .map(TaskView::from)
        .ok_or_else(|| missing(task_id))
}

fn missing(task_id: i64) -> Error {
    Error::not_found(format!("task {task_id} does not exist"))
}

async fn find(db: &impl ConnectionTrait, task_id: i64) -> Result<tasks::Model> {
    tasks::Entity::find_by_id(task_id).one(db).await?.ok_or_else(|| missing(task_id))
}

/// A change with every value parsed and every user resolved, ready to compare with the row.
struct ParsedChange {
    name: Option<String>,
    contents: Option<String>,
    status: Option<TaskStatus>,
    priority: Option<Priority>,
    deadline: Patch<DateTime<Utc>>,
    pic_id: Patch<i64>,
    supervisor_id: Patch<i64>,
}

impl ParsedChange {
    async fn parse(db: &impl ConnectionTrait, change: TaskChange) -> Result<Self> {
        let deadline = match change.deadline {
            Patch::Set(raw) if raw.trim().is_empty() => Patch::Clear,
            other => other.try_map(|raw| parse_deadline(&raw))?,
        };
        Ok(Self {
            name: change.name.map(|n| parse_name(&n)).transpose()?,
            contents: change.contents.map(parse_contents).transpose()?,
            status: change.status.map(|s| TaskStatus::parse(&s)).transpose()?,
            priority: change.priority.map(|p| Priority::parse(&p)).transpose()?,
            deadline,
            pic_id: resolve_patch(db, change.pic, "pic").await?,
            supervisor_id: resolve_patch(db, change.supervisor, "supervisor").await?,
        })
    }
}

async fn resolve_patch(db: &impl ConnectionTrait, user: Patch<UserRef>, field: &str) -> Result<Patch<i64>> {
    Ok(match user {
        Patch::Keep => Patch::Keep,
        Patch::Set(user) if is_blank(&user) => Patch::Clear,
        Patch::Clear => Patch::Clear,
        Patch::Set(user) => Patch::Set(resolve_user(db, &user, field).await?),
    })
}

fn apply<T: Clone + PartialEq>(patch: &Patch<T>, current: &Option<T>) -> Option<T> {
    match patch {
        Patch::Keep => current.clone(),
        Patch::Clear => None,
        Patch::Set(value) => Some(value.clone()),
    }
}

/// Applies a partial update. `expected_version` (from `If-Match` or the body) makes a stale
/// edit fail with 412; without it a concurrent edit is retried on the fresh row.
pub async fn update(
    ctx: &AppContext,
    who: &Principal,
    task_id: i64,
    change: TaskChange,
    if_match: Option<i32>,
) -> Result<TaskView> {
    let expected = match (if_match, change.version) {
        (Some(header), Some(body)) if header != body => {
            return Err(Error::bad_request("version_conflict", "If-Match and version disagree"));
        }
        (header, body) => header.or(body),
    };
    let change = ParsedChange::parse(&ctx.db, change).await?;
    // The words of fields left alone are known already.
    if change.name.is_some() || change.contents.is_some() {
        let (name, contents) = (change.name.as_deref().unwrap_or(""), change.contents.as_deref().unwrap_or(""));
        let text_words = task_words::words_of(&tasks::search_text(name, contents));
        words::remember(&ctx.db, &text_words, ctx.clock.now()).await?;
    }
    for _ in 0..5 {
        let txn = tasklane_jobs::transactions::begin(&ctx.db).await?;
        let task = find(&txn, task_id).await?;
        if let Some(version) = expected
            && version != task.version
        {
            return Err(stale(task.version));
        }
        match apply_change(&txn, who, &task, &change, ctx.clock.now()).await? {
            Some(view) => {
                txn.commit().await?;
                ctx.events_written.notify_one();
                return Ok(view);
            }
            None if expected.is_some() => return Err(stale(task.version + 1)),
            None => continue,
        }
    }
    Err(Error::conflict("busy", "the task is being changed by others; try again"))
}

fn stale(current: i32) -> Error {
    Error::precondition_failed(format!("the task has changed (now at version {current}); reload it and retry"))
}

/// Writes the change and its events, or returns `None` when the row moved on meanwhile.
async fn apply_change(
    txn: &DatabaseTransaction,
    who: &Principal,
    task: &tasks::Model,
    change: &ParsedChange,
    now: DateTime<Utc>,
) -> Result<Option<TaskView>> {
    if !can_edit(who, task) {
        return Err(Error::forbidden("only the task's creator, PIC, supervisor or an admin may change it"));
    }
    let old = TaskView::from(task.clone());
    let mut new = old.clone();
    new.name = change.name.clone().unwrap_or(old.name.clone());
    new.contents = change.contents.clone().unwrap_or(old.contents.clone());
    new.status = change.status.unwrap_or(old.status);
    new.priority = change.priority.unwrap_or(old.priority);
    new.deadline = apply(&change.deadline, &old.deadline);
    new.pic_id = apply(&change.pic_id, &old.pic_id);
    new.supervisor_id = apply(&change.supervisor_id, &old.supervisor_id);

    let updated = Changes {
        name: Change::between(old.name.clone(), new.name.clone()),
        contents: Change::between(old.contents.clone(), new.contents.clone()),
        priority: Change::between(old.priority, new.priority),
        deadline: Change::between(old.deadline, new.deadline),
        ..Changes::default()
    };
    let assigned = Changes {
        pic_id: Change::between(old.pic_id, new.pic_id),
        supervisor_id: Change::between(old.supervisor_id, new.supervisor_id),
        ..Changes::default()
    };
    let status = Changes { status: Change::between(old.status, new.status), ..Changes::default() };

    if !assigned.is_empty() && !can_reassign(who, task) {
        return Err(Error::forbidden("only the task's creator, supervisor or an admin may reassign it"));
    }
    let changes: Vec<(EventKind, Changes)> =
        [(EventKind::Updated, updated), (EventKind::Assigned, assigned), (EventKind::StatusChanged, status)]
            .into_iter()
            .filter(|(_, changes)| !changes.is_empty())
            .collect();
    if changes.is_empty() {
        return Ok(Some(old));
    }

    // Each event records the state right after it, so one edit that reassigns a task and
    // reopens it shows both steps; its payload carries the task as it stands after the edit.
    let before = TaskState::of(&old, task.completed_due.map(|at| at.and_utc()));
    let mut state = before.clone();
    let mut states = Vec::with_capacity(changes.len());
    for (_, changes) in &changes {
        state = state.after(changes, now);
        states.push(state.clone());
    }
    new.updated_at = now;
    new.version = old.version + changes.len() as i32;
    new.completed_at = state.completed_at;
    new.started_at = state.started_at;
    let written = tasks::Entity::update_many()
        .set(
            tasks::ActiveModel {
                name: Set(new.name.clone()),
                contents: Set(new.contents.clone()),
                status: Set(new.status.as_str().to_owned()),
                priority: Set(new.priority.rank()),
                deadline: Set(new.deadline.map(crate::stored)),
                pic_id: Set(new.pic_id),
                supervisor_id: Set(new.supervisor_id),
                version: Set(new.version),
                updated_at: Set(crate::stored(now)),
                completed_at: Set(new.completed_at.map(crate::stored)),
                completed_due: Set(state.completed_due.map(crate::stored)),
                started_at: Set(new.started_at.map(crate::stored)),
                ..Default::default()
            }
            .with_keys(),
        )
        .filter(tasks::Column::Id.eq(task.id))
        .filter(tasks::Column::Version.eq(old.version))
        .exec(txn)
        .await
        .map_err(crate::error::unknown_user_on_foreign_key)?;
    if written.rows_affected == 0 {
        return Ok(None);
    }
    let keys = TaskKeys::new(task.created_at, crate::stored(now), new.priority.rank(), new.deadline.map(crate::stored));
    words::update(txn, task.id, &task.search_text, &tasks::search_text(&new.name, &new.contents), keys).await?;
    // Each event carries the task as it stands afterwards, so consumers (notifications, the
    // archive) see who was involved at that moment, not whoever is involved when they run.
    let events = changes
        .into_iter()
        .zip(states)
        .map(|((kind, changes), state)| Recorded { kind, payload: payload(&new, changes), state })
        .collect();
    record_events(txn, new.id, who.user_id, Some((old.version, before)), events, now).await?;
    Ok(Some(new))
}

/// An event about to be written: what happened, what it says, and the state it left.
struct Recorded {
    kind: EventKind,
    payload: EventPayload,
    state: TaskState,
}

/// Writes `events` after the task's version and state before them (none for a new task).
async fn record_events(
    txn: &DatabaseTransaction,
    task_id: i64,
    actor_id: i64,
    before: Option<(i32, TaskState)>,
    events: Vec<Recorded>,
    at: DateTime<Utc>,
) -> Result<()> {
    let (version_before, mut previous) = match before {
        Some((version, state)) => (version, Some(state)),
        None => (0, None),
    };
    // The task's latest state so far ends here; so does each step of this edit but the last.
    if version_before > 0 {
        task_events::Entity::update_many()
            .col_expr(task_events::Column::SupersededAt, Expr::value(crate::stored(at)))
            .filter(task_events::Column::TaskId.eq(task_id))
            .filter(task_events::Column::Seq.eq(version_before))
            .exec(txn)
            .await?;
    }
    let count = events.len();
    let mut rows = Vec::with_capacity(count);
    for (i, event) in events.into_iter().enumerate() {
        let mut row = task_events::ActiveModel {
            task_id: Set(task_id),
            seq: Set(version_before + i as i32 + 1),
            actor_id: Set(Some(actor_id)),
            kind: Set(event.kind.as_str().to_owned()),
            payload: Set(serde_json::to_value(event.payload)?),
            created_at: Set(crate::stored(at)),
            published_at: Set(None),
            archived_at: Set(None),
            ..Default::default()
        };
        event.state.record(previous.as_ref(), &mut row);
        row.superseded_at = Set((i + 1 < count).then(|| crate::stored(at)));
        rows.push(row);
        previous = Some(event.state);
    }
    task_events::Entity::insert_many(rows).exec_without_returning(txn).await?;
    Ok(())
}

/// Deletes a task (creator, supervisor or admin), recording `task.deleted` with its last state.
pub async fn delete(
    ctx: &AppContext,
    who: &Principal,
    task_id: i64,
    body: TaskDeletion,
    if_match: Option<i32>,
) -> Result<TaskView> {
    if let Some(given) = body.id {
        let matches = match given {
            UserRef::Id(id) => id == task_id,
            UserRef::Text(text) => text.trim().parse::<i64>() == Ok(task_id),
        };
        if !matches {
            return Err(Error::bad_request("id_mismatch", "Task_id in the body does not match the path"));
        }
    }
    let txn = tasklane_jobs::transactions::begin(&ctx.db).await?;
    let task = find(&txn, task_id).await?;
    if !can_reassign(who, &task) {
        return Err(Error::forbidden("only the task's creator, supervisor or an admin may delete it"));
    }
    if let Some(version) = if_match
        && version != task.version
    {
        return Err(stale(task.version));
    }
    let deleted = tasks::Entity::delete_many()
        .filter(tasks::Column::Id.eq(task_id))
        .filter(tasks::Column::Version.eq(task.version))
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(stale(task.version + 1));
    }
    let completed_due = task.completed_due.map(|at| at.and_utc());
    let view = TaskView::from(task);
    let now = ctx.clock.now();
    let state = TaskState::of(&view, completed_due);
    let deleted =
        Recorded { kind: EventKind::Deleted, payload: payload(&view, Changes::default()), state: state.clone() };
    record_events(&txn, view.id, who.user_id, Some((view.version, state)), vec![deleted], now).await?;
    txn.commit().await?;
    ctx.events_written.notify_one();
    Ok(view)
}

/// `GET /api/tasks/{id}/events` query.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryQuery {
    /// 1 to 100; 100 by default.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a task's history. Each event is bounded (a task's name and contents are), so
/// a page is too, however many edits the task has had.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryPage {
    /// Events, oldest first.
    pub events: Vec<EventView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A page of a task's history, oldest first. Members see it while the task exists; afterwards
/// only admins.
pub async fn history(ctx: &AppContext, who: &Principal, task_id: i64, query: HistoryQuery) -> Result<HistoryPage> {
    let limit = crate::paging::limit(query.limit, crate::paging::MAX_LIMIT)?;
    let after: i32 = match query.cursor.as_deref() {
        Some(cursor) => cursor.trim().parse().map_err(|_| crate::paging::bad_cursor())?,
        None => 0,
    };
    let exists = tasks::Entity::find_by_id(task_id).count(&ctx.db).await? > 0;
    if !exists && !who.is_admin() {
        return Err(Error::not_found(format!("task {task_id} does not exist")));
    }
    let mut events = task_events::Entity::find()
        .filter(task_events::Column::TaskId.eq(task_id))
        .filter(task_events::Column::Seq.gt(after))
        .order_by_asc(task_events::Column::Seq)
        .limit(limit + 1)
        .all(&ctx.db)
        .await?;
    if events.is_empty() && !exists && after == 0 {
        return Err(Error::not_found(format!("task {task_id} has no history")));
    }
    let next_cursor = crate::paging::cut(&mut events, limit, |last| last.seq.to_string());
    Ok(HistoryPage { events: events.into_iter().map(EventView::from).collect(), next_cursor })
}
