//! Listing tasks: filters, sorting, and keyset (cursor) pagination that neither skips nor
//! repeats rows while others insert.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, NullOrdering, SimpleExpr};
use sea_orm::{ColumnTrait, Condition, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Value as DbValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasklane_entity::tasks::{self, Column};

use super::fields::{Priority, TaskStatus, UserRef, parse_deadline};
use super::{TaskView, resolve_user};
use crate::auth::Principal;
use crate::{AppContext, Error, Result};

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u64 = 50;

/// Query parameters of `GET /api/tasks`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// One status or several separated by commas.
    pub status: Option<String>,
    /// One priority or several separated by commas.
    pub priority: Option<String>,
    /// PIC: `me`, `none`, a user id or an email.
    pub pic: Option<String>,
    /// Supervisor: `me`, `none`, a user id or an email.
    pub supervisor: Option<String>,
    /// Creator: `me`, a user id or an email.
    pub creator: Option<String>,
    /// Deadline strictly before this date-time or date.
    pub due_before: Option<String>,
    /// Deadline at or after this date-time or date.
    pub due_after: Option<String>,
    /// `true`: past deadline and not done; `false`: the rest.
    pub overdue: Option<bool>,
    /// Words that must all appear in the name or contents.
    pub q: Option<String>,
    /// `priority` (urgent first, then nearest deadline), `deadline`, `created_at` (default) or `updated_at`.
    pub sort: Option<String>,
    /// `asc` or `desc`; the default is the natural one for the sort (newest, most urgent or soonest first).
    pub order: Option<String>,
    /// Page size, 1 to 100 (default 50).
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// One page of tasks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TaskPage {
    /// The tasks on this page.
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum SortKey {
    Priority,
    Deadline,
    CreatedAt,
    UpdatedAt,
}

/// One column of the sort, in the order pages walk it.
struct Component {
    column: Column,
    descending: bool,
    nullable: bool,
    nulls_last: bool,
}

impl Component {
    const fn new(column: Column, descending: bool, nullable: bool) -> Self {
        Self { column, descending, nullable, nulls_last: true }
    }

    fn reversed(self) -> Self {
        Self { descending: !self.descending, nulls_last: !self.nulls_last, ..self }
    }

    fn value_of(&self, task: &tasks::Model) -> Value {
        match self.column {
            Column::Priority => Value::from(task.priority),
            Column::Deadline => task.deadline.map_or(Value::Null, |d| Value::from(d.and_utc().to_rfc3339())),
            Column::CreatedAt => Value::from(task.created_at.and_utc().to_rfc3339()),
            Column::UpdatedAt => Value::from(task.updated_at.and_utc().to_rfc3339()),
            _ => Value::from(task.id),
        }
    }

    fn db_value(&self, value: &Value) -> Result<Option<DbValue>> {
        let bad = || Error::bad_request("invalid_cursor", "the cursor is not valid for this query");
        if value.is_null() {
            return if self.nullable { Ok(None) } else { Err(bad()) };
        }
        Ok(Some(match self.column {
            Column::Priority => DbValue::from(value.as_i64().and_then(|v| i16::try_from(v).ok()).ok_or_else(bad)?),
            Column::Deadline | Column::CreatedAt | Column::UpdatedAt => {
                let text = value.as_str().ok_or_else(bad)?;
                let at = DateTime::parse_from_rfc3339(text).map_err(|_| bad())?.with_timezone(&Utc);
                DbValue::from(crate::stored(at))
            }
            _ => DbValue::from(value.as_i64().ok_or_else(bad)?),
        }))
    }

    /// Rows that come after `value` in this column's order.
    fn after(&self, value: &Option<DbValue>) -> Option<Condition> {
        let column = Expr::col(self.column);
        match value {
            Some(v) => {
                let beyond: SimpleExpr = if self.descending { column.lt(v.clone()) } else { column.gt(v.clone()) };
                let mut condition = Condition::any().add(beyond);
                if self.nullable && self.nulls_last {
                    condition = condition.add(Expr::col(self.column).is_null());
                }
                Some(condition)
            }
            None if self.nulls_last => None,
            None => Some(Condition::all().add(column.is_not_null())),
        }
    }

    fn equal(&self, value: &Option<DbValue>) -> SimpleExpr {
        match value {
            Some(v) => Expr::col(self.column).eq(v.clone()),
            None => Expr::col(self.column).is_null(),
        }
    }
}

fn components(sort: SortKey, descending: bool) -> Vec<Component> {
    // Each list is the natural order of its sort; the other direction reverses every column.
    let (natural, natural_descending) = match sort {
        SortKey::Priority => (
            vec![
                Component::new(Column::Priority, true, false),
                Component::new(Column::Deadline, false, true),
                Component::new(Column::Id, false, false),
            ],
            true,
        ),
        SortKey::Deadline => {
            (vec![Component::new(Column::Deadline, false, true), Component::new(Column::Id, false, false)], false)
        }
        SortKey::CreatedAt => {
            (vec![Component::new(Column::CreatedAt, false, false), Component::new(Column::Id, false, false)], false)
        }
        SortKey::UpdatedAt => {
            (vec![Component::new(Column::UpdatedAt, false, false), Component::new(Column::Id, false, false)], false)
        }
    };
    if descending == natural_descending { natural } else { natural.into_iter().map(Component::reversed).collect() }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    sort: SortKey,
    descending: bool,
    after: Vec<Value>,
}

fn encode_cursor(cursor: &Cursor) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(cursor).unwrap_or_default())
}

fn decode_cursor(raw: &str) -> Result<Cursor> {
    URL_SAFE_NO_PAD
        .decode(raw.trim())
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or_else(crate::paging::bad_cursor)
}

async fn user_filter(ctx: &AppContext, who: &Principal, column: Column, raw: &str, field: &str) -> Result<SimpleExpr> {
    Ok(match raw.trim() {
        "me" => Expr::col(column).eq(who.user_id),
        "none" => Expr::col(column).is_null(),
        other => Expr::col(column).eq(resolve_user(&ctx.db, &UserRef::Text(other.to_owned()), field).await?),
    })
}

fn parse_list<T>(raw: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    raw.split(',').filter(|s| !s.trim().is_empty()).map(parse).collect()
}

fn escape_like(word: &str) -> String {
    word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// One page of tasks matching `query`, visible to every signed-in member.
pub async fn list(ctx: &AppContext, who: &Principal, query: ListQuery) -> Result<TaskPage> {
    let (sort, descending) = sort_order(&query)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, crate::paging::MAX_LIMIT);
    let components = components(sort, descending);
    let mut condition = filters(ctx, who, &query).await?;
    if let Some(raw) = &query.cursor {
        condition = condition.add(after_cursor(&components, sort, descending, raw)?);
    }
    let mut rows = ordered(tasks::Entity::find().filter(condition), &components).limit(limit + 1).all(&ctx.db).await?;
    let next_cursor = crate::paging::cut(&mut rows, limit, |last| {
        encode_cursor(&Cursor { sort, descending, after: components.iter().map(|c| c.value_of(last)).collect() })
    });
    Ok(TaskPage { tasks: rows.into_iter().map(TaskView::from).collect(), next_cursor })
}

/// The sort key and direction asked for; each sort's natural direction is the default
/// (newest, most urgent or soonest first).
fn sort_order(query: &ListQuery) -> Result<(SortKey, bool)> {
    let sort = match query.sort.as_deref().map(str::trim) {
        None | Some("") | Some("created_at") => SortKey::CreatedAt,
        Some("updated_at") => SortKey::UpdatedAt,
        Some("deadline") => SortKey::Deadline,
        Some("priority") => SortKey::Priority,
        Some(other) => {
            return Err(Error::bad_request(
                "invalid_sort",
                format!("sort '{other}' is not one of priority, deadline, created_at, updated_at"),
            ));
        }
    };
    let descending = match query.order.as_deref().map(str::trim) {
        None | Some("") => matches!(sort, SortKey::Priority | SortKey::CreatedAt | SortKey::UpdatedAt),
        Some("asc") => false,
        Some("desc") => true,
        Some(other) => return Err(Error::bad_request("invalid_order", format!("order '{other}' is not asc or desc"))),
    };
    Ok((sort, descending))
}

/// The rows `query`'s filters select.
async fn filters(ctx: &AppContext, who: &Principal, query: &ListQuery) -> Result<Condition> {
    let mut condition = Condition::all();
    if let Some(raw) = &query.status {
        let statuses = parse_list(raw, TaskStatus::parse)?;
        condition = condition.add(Column::Status.is_in(statuses.into_iter().map(TaskStatus::as_str)));
    }
    if let Some(raw) = &query.priority {
        let priorities = parse_list(raw, Priority::parse)?;
        condition = condition.add(Column::Priority.is_in(priorities.into_iter().map(Priority::rank)));
    }
    for (raw, column, field) in [
        (&query.pic, Column::PicId, "pic"),
        (&query.supervisor, Column::SupervisorId, "supervisor"),
        (&query.creator, Column::CreatorId, "creator"),
    ] {
        if let Some(raw) = raw {
            condition = condition.add(user_filter(ctx, who, column, raw, field).await?);
        }
    }
    if let Some(raw) = &query.due_before {
        condition = condition.add(Column::Deadline.lt(crate::stored(parse_deadline(raw)?)));
    }
    if let Some(raw) = &query.due_after {
        condition = condition.add(Column::Deadline.gte(crate::stored(parse_deadline(raw)?)));
    }
    if let Some(overdue) = query.overdue {
        let now = crate::stored_now();
        // `IS NOT NULL` keeps the negation two-valued: without it a task with no deadline
        // would be neither overdue nor not overdue.
        let is_overdue = Condition::all()
            .add(Column::Deadline.is_not_null())
            .add(Column::Deadline.lt(now))
            .add(Column::Status.ne(TaskStatus::Done.as_str()));
        condition = condition.add(if overdue { is_overdue } else { is_overdue.not() });
    }
    if let Some(q) = &query.q {
        for word in q.split_whitespace().take(10) {
            let pattern = format!("%{}%", escape_like(word));
            condition = condition.add(
                Condition::any()
                    .add(Column::Name.like(LikeExpr::new(pattern.clone()).escape('\\')))
                    .add(Column::Contents.like(LikeExpr::new(pattern).escape('\\'))),
            );
        }
    }
    Ok(condition)
}

/// The rows after the cursor's position in the sort order (keyset pagination): past it on
/// the first column, or equal on the first columns and past it on the next.
fn after_cursor(components: &[Component], sort: SortKey, descending: bool, raw: &str) -> Result<Condition> {
    let cursor = decode_cursor(raw)?;
    if cursor.sort != sort || cursor.descending != descending || cursor.after.len() != components.len() {
        return Err(Error::bad_request("invalid_cursor", "the cursor belongs to a different sort order"));
    }
    let values = components.iter().zip(&cursor.after).map(|(c, v)| c.db_value(v)).collect::<Result<Vec<_>>>()?;
    let mut after = Condition::any();
    for (i, component) in components.iter().enumerate() {
        let Some(beyond) = component.after(&values[i]) else { continue };
        let mut branch = Condition::all();
        for (earlier, value) in components.iter().zip(&values).take(i) {
            branch = branch.add(earlier.equal(value));
        }
        after = after.add(branch.add(beyond));
    }
    let mut condition = Condition::all();
    // A plain range on the leading column lets the database seek instead of scanning.
    if let (Some(first), Some(Some(value))) = (components.first(), values.first())
        && !first.nullable
    {
        let column = Expr::col(first.column);
        condition = condition.add(if first.descending { column.lte(value.clone()) } else { column.gte(value.clone()) });
    }
    Ok(condition.add(after))
}

/// `select` in the order of `components`, nulls where each column wants them.
fn ordered(mut select: sea_orm::Select<tasks::Entity>, components: &[Component]) -> sea_orm::Select<tasks::Entity> {
    for component in components {
        let order = if component.descending { Order::Desc } else { Order::Asc };
        select = if component.nullable {
            let nulls = if component.nulls_last { NullOrdering::Last } else { NullOrdering::First };
            select.order_by_with_nulls(component.column, order, nulls)
        } else {
            select.order_by(component.column, order)
        };
    }
    select
}
