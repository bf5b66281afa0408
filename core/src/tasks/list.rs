//! Listing tasks: filters, sorting, and keyset (cursor) pagination that neither skips nor
//! repeats rows while others insert.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, DbBackend, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Value as DbValue,
};
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

/// One column of the sort, in the order pages walk it. Every sort column is non-null, so
/// each sort is one index read in one direction (nulls would need an `IS NULL` ordering term
/// that no index serves).
#[derive(Clone, Copy)]
struct Component {
    column: Column,
    descending: bool,
}

impl Component {
    const fn new(column: Column) -> Self {
        Self { column, descending: false }
    }

    fn reversed(self) -> Self {
        Self { descending: !self.descending, ..self }
    }

    fn value_of(&self, task: &tasks::Model) -> Value {
        match self.column {
            Column::UrgencyKey => Value::from(task.urgency_key),
            Column::DeadlineKey => Value::from(task.deadline_key),
            Column::CreatedAt => Value::from(task.created_at.and_utc().to_rfc3339()),
            Column::UpdatedAt => Value::from(task.updated_at.and_utc().to_rfc3339()),
            _ => Value::from(task.id),
        }
    }

    fn db_value(&self, value: &Value) -> Result<DbValue> {
        let bad = || Error::bad_request("invalid_cursor", "the cursor is not valid for this query");
        Ok(match self.column {
            Column::CreatedAt | Column::UpdatedAt => {
                let text = value.as_str().ok_or_else(bad)?;
                let at = DateTime::parse_from_rfc3339(text).map_err(|_| bad())?.with_timezone(&Utc);
                DbValue::from(crate::stored(at))
            }
            _ => DbValue::from(value.as_i64().ok_or_else(bad)?),
        })
    }

    /// Rows that come after `value` in this column's order.
    fn after(&self, value: &DbValue) -> SimpleExpr {
        let column = Expr::col(self.column);
        if self.descending { column.lt(value.clone()) } else { column.gt(value.clone()) }
    }

    /// Rows at `value` or after it: a plain range on the leading column, which lets the
    /// database seek instead of scanning.
    fn from(&self, value: &DbValue) -> SimpleExpr {
        let column = Expr::col(self.column);
        if self.descending { column.lte(value.clone()) } else { column.gte(value.clone()) }
    }

    /// Rows at `value` or before it.
    fn up_to(&self, value: &DbValue) -> SimpleExpr {
        self.reversed().from(value)
    }
}

fn components(sort: SortKey, descending: bool) -> Vec<Component> {
    // Each list is the natural order of its sort; the other direction reverses every column.
    let leading = match sort {
        SortKey::Priority => Column::UrgencyKey,
        SortKey::Deadline => Column::DeadlineKey,
        SortKey::CreatedAt => Column::CreatedAt,
        SortKey::UpdatedAt => Column::UpdatedAt,
    };
    // The priority sort's natural order (most urgent first) is what the API calls descending.
    let natural_descending = sort == SortKey::Priority;
    let natural = [Component::new(leading), Component::new(Column::Id)];
    natural.into_iter().map(|c| if descending == natural_descending { c } else { c.reversed() }).collect()
}

/// A position in a sort order: the values of its columns at one row.
struct Position(Vec<DbValue>);

impl Position {
    fn of(components: &[Component], task: &tasks::Model) -> Result<Self> {
        components.iter().map(|c| c.db_value(&c.value_of(task))).collect::<Result<_>>().map(Self)
    }

    /// The rows after this position (keyset pagination): past it on the first column, or equal
    /// on the first columns and past it on the next.
    fn after(&self, components: &[Component]) -> Condition {
        let mut after = Condition::any();
        for (i, component) in components.iter().enumerate() {
            let mut branch = Condition::all();
            for (earlier, value) in components.iter().zip(&self.0).take(i) {
                branch = branch.add(Expr::col(earlier.column).eq(value.clone()));
            }
            after = after.add(branch.add(component.after(&self.0[i])));
        }
        let mut condition = Condition::all();
        if let (Some(first), Some(value)) = (components.first(), self.0.first()) {
            condition = condition.add(first.from(value));
        }
        condition.add(after)
    }

    /// The rows at this position or before it.
    fn up_to(&self, components: &[Component]) -> Condition {
        let mut condition = Condition::all();
        if let (Some(first), Some(value)) = (components.first(), self.0.first()) {
            condition = condition.add(first.up_to(value));
        }
        condition.add(self.after(components).not())
    }
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

/// One page of tasks matching `query`, visible to every signed-in member.
pub async fn list(ctx: &AppContext, who: &Principal, query: ListQuery) -> Result<TaskPage> {
    let (sort, descending) = sort_order(&query)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, crate::paging::MAX_LIMIT);
    let components = components(sort, descending);
    let mut condition = filters(ctx, who, &query).await?;
    if let Some(raw) = &query.cursor {
        condition = condition.add(after_cursor(&components, sort, descending, raw)?);
    }
    let words = query.q.as_deref().map(search_words).unwrap_or_default();
    let mut rows = if words.is_empty() {
        read(ctx, condition, &components, limit + 1).await?
    } else {
        search(ctx, condition, &words, &components, limit + 1).await?
    };
    let next_cursor = crate::paging::cut(&mut rows, limit, |last| {
        encode_cursor(&Cursor { sort, descending, after: components.iter().map(|c| c.value_of(last)).collect() })
    });
    Ok(TaskPage { tasks: rows.into_iter().map(TaskView::from).collect(), next_cursor })
}

/// Rows a search looks through in the sort order before it asks the full-text index: a word
/// in one task of ten fills a page of 50 from these alone, and rarer words are few enough for
/// the index to hand over all their tasks to be sorted. Every rare word's search reads them
/// (about 1.5 ms of MariaDB's CPU for 500), so the window stays small.
const SEARCH_WINDOW: u64 = 500;

/// The words of `q` a search needs (at most ten), as the stored word lists spell them.
fn search_words(q: &str) -> Vec<String> {
    let mut words = tasklane_entity::tasks::search_words(q);
    words.truncate(10);
    words
}

async fn read(
    ctx: &AppContext,
    condition: Condition,
    components: &[Component],
    rows: u64,
) -> Result<Vec<tasks::Model>> {
    Ok(ordered(tasks::Entity::find().filter(condition), components).limit(rows).all(&ctx.db).await?)
}

/// The first `rows` tasks of `condition` in the sort order whose words begin with each of
/// `words`. A full-text index alone would hand a common word's every task to be sorted, and a
/// walk of the sort order alone would read the whole table for a rare one; so the search
/// walks the first [`SEARCH_WINDOW`] rows of the order, and only when they do not fill the
/// page asks the index for the matches past them.
async fn search(
    ctx: &AppContext,
    condition: Condition,
    words: &[String],
    components: &[Component],
    rows: u64,
) -> Result<Vec<tasks::Model>> {
    let mut matching = Condition::all();
    for word in words {
        // Words are letters and digits only, so nothing in them is a LIKE wildcard.
        matching = matching.add(Column::SearchText.like(format!("% {word}%")));
    }
    let boundary = ordered(tasks::Entity::find().filter(condition.clone()), components)
        .select_only()
        .column(Column::Id)
        .offset(SEARCH_WINDOW - 1)
        .into_tuple::<i64>()
        .one(&ctx.db)
        .await?;
    // No boundary: the rows are fewer than the window (or the boundary row was just deleted),
    // and one walk of them is cheap.
    let boundary = match boundary {
        Some(id) => tasks::Entity::find_by_id(id).one(&ctx.db).await?,
        None => None,
    };
    let Some(boundary) = boundary else {
        return read(ctx, condition.add(matching), components, rows).await;
    };
    let boundary = Position::of(components, &boundary)?;
    let window = condition.clone().add(boundary.up_to(components)).add(matching.clone());
    let mut found = read(ctx, window, components, rows).await?;
    if (found.len() as u64) < rows {
        let rest = condition.add(boundary.after(components)).add(matching).add(full_text(ctx, words));
        found.extend(read(ctx, rest, components, rows - found.len() as u64).await?);
    }
    Ok(found)
}

/// Tasks the full-text index finds for `words` (each the beginning of a word). MySQL indexes
/// words of three or more characters only; shorter ones are left to the `LIKE` beside this.
fn full_text(ctx: &AppContext, words: &[String]) -> Condition {
    match ctx.db.get_database_backend() {
        DbBackend::MySql => {
            let terms: Vec<String> = words
                .iter()
                .filter(|word| (3..=84).contains(&word.chars().count()))
                .map(|word| format!("+{word}*"))
                .collect();
            if terms.is_empty() {
                return Condition::all();
            }
            Condition::all()
                .add(Expr::cust_with_values("MATCH (search_text) AGAINST (? IN BOOLEAN MODE)", [terms.join(" ")]))
        }
        _ => {
            let terms: Vec<String> = words.iter().map(|word| format!("\"{}\"*", word.replace('"', "\"\""))).collect();
            Condition::all().add(Expr::cust_with_values(
                "tasks.id IN (SELECT rowid FROM tasks_search WHERE tasks_search MATCH ?)",
                [terms.join(" AND ")],
            ))
        }
    }
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

/// Tasks in one of `statuses`. SQLite's planner reads such a filter from the status index and
/// then sorts every task it selects (a third of them each), even with statistics and a LIMIT;
/// SQLite's unary `+` keeps the term off that index, so the list walks its sort's index and
/// skips the other statuses (54 ms → 1 ms a request over 100,000 tasks).
fn status_in(backend: DbBackend, statuses: &[TaskStatus]) -> SimpleExpr {
    if backend != DbBackend::Sqlite || statuses.is_empty() {
        return Column::Status.is_in(statuses.iter().map(|status| status.as_str()));
    }
    // The statuses are the API's own words, never text from the request.
    let words: Vec<String> = statuses.iter().map(|status| format!("'{}'", status.as_str())).collect();
    Expr::cust(format!("+\"tasks\".\"status\" IN ({})", words.join(", ")))
}

/// The rows `query`'s filters select.
async fn filters(ctx: &AppContext, who: &Principal, query: &ListQuery) -> Result<Condition> {
    let mut condition = Condition::all();
    if let Some(raw) = &query.status {
        let statuses = parse_list(raw, TaskStatus::parse)?;
        condition = condition.add(status_in(ctx.db.get_database_backend(), &statuses));
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
    Ok(condition)
}

/// The rows after the cursor's position in the sort order.
fn after_cursor(components: &[Component], sort: SortKey, descending: bool, raw: &str) -> Result<Condition> {
    let cursor = decode_cursor(raw)?;
    if cursor.sort != sort || cursor.descending != descending || cursor.after.len() != components.len() {
        return Err(Error::bad_request("invalid_cursor", "the cursor belongs to a different sort order"));
    }
    let values = components.iter().zip(&cursor.after).map(|(c, v)| c.db_value(v)).collect::<Result<Vec<_>>>()?;
    Ok(Position(values).after(components))
}

/// `select` in the order of `components`.
fn ordered(mut select: sea_orm::Select<tasks::Entity>, components: &[Component]) -> sea_orm::Select<tasks::Entity> {
    for component in components {
        select = select.order_by(component.column, if component.descending { Order::Desc } else { Order::Asc });
    }
    select
}
