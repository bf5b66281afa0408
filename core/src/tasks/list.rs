//! Listing tasks: filters, sorting, and keyset (cursor) pagination that neither skips nor
//! repeats rows while others insert.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait, JoinType, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbBackend, EntityTrait, FromQueryResult, IdenStatic, Order, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Statement, Value as DbValue,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tasklane_entity::known_words;
use tasklane_entity::task_words::{self, MAX_WORD_CHARS};
use tasklane_entity::tasks::{self, Column};

use super::fields::{Priority, TaskStatus, UserRef, parse_deadline};
use super::view::{SHOWN_COLUMNS, ShownTask, shown};
use super::{TaskView, resolve_user};
use crate::auth::Principal;
use crate::{AppContext, Error, Result};

/// Page size when none is asked for.
pub const DEFAULT_LIMIT: u64 = 50;

/// Query parameters of `GET /api/tasks`.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
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
    /// The tasks on this page: `limit` of them, or fewer (even none) when the request examined
    /// as many tasks as one request may before the page filled (filters few tasks pass).
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` to get the next page; absent on the last page only, so a short page
    /// with a cursor is not the end.
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

/// The table whose copy of the sort columns a condition reads: a task's own, or the copy its
/// words carry (`task_words`, where the id is `task_id`).
#[derive(Clone, Copy)]
enum Table {
    Tasks,
    Words,
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

    fn order(&self) -> Order {
        if self.descending { Order::Desc } else { Order::Asc }
    }

    /// The same column in `task_words`.
    fn words_column(&self) -> task_words::Column {
        match self.column {
            Column::UrgencyKey => task_words::Column::UrgencyKey,
            Column::DeadlineKey => task_words::Column::DeadlineKey,
            Column::CreatedAt => task_words::Column::CreatedAt,
            Column::UpdatedAt => task_words::Column::UpdatedAt,
            _ => task_words::Column::TaskId,
        }
    }

    fn in_table(&self, table: Table) -> Expr {
        match table {
            Table::Tasks => Expr::col((tasks::Entity, self.column)),
            Table::Words => Expr::col((task_words::Entity, self.words_column())),
        }
    }

    fn value_of(&self, task: &ShownTask) -> Value {
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
    fn after(&self, table: Table, value: &DbValue) -> SimpleExpr {
        let column = self.in_table(table);
        if self.descending { column.lt(value.clone()) } else { column.gt(value.clone()) }
    }

    /// Rows at `value` or after it: a plain range on the leading column, which lets the
    /// database seek instead of scanning.
    fn from(&self, table: Table, value: &DbValue) -> SimpleExpr {
        let column = self.in_table(table);
        if self.descending { column.lte(value.clone()) } else { column.gte(value.clone()) }
    }

    /// Rows at `value` or before it.
    fn up_to(&self, table: Table, value: &DbValue) -> SimpleExpr {
        self.reversed().from(table, value)
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
    fn of(components: &[Component], task: &ShownTask) -> Result<Self> {
        components.iter().map(|c| c.db_value(&c.value_of(task))).collect::<Result<_>>().map(Self)
    }

    /// The rows after this position (keyset pagination): past it on the first column, or equal
    /// on the first columns and past it on the next.
    fn after(&self, components: &[Component], table: Table) -> Condition {
        let mut after = Condition::any();
        for (i, component) in components.iter().enumerate() {
            let mut branch = Condition::all();
            for (earlier, value) in components.iter().zip(&self.0).take(i) {
                branch = branch.add(earlier.in_table(table).eq(value.clone()));
            }
            after = after.add(branch.add(component.after(table, &self.0[i])));
        }
        let mut condition = Condition::all();
        if let (Some(first), Some(value)) = (components.first(), self.0.first()) {
            condition = condition.add(first.from(table, value));
        }
        condition.add(after)
    }

    /// The rows at this position or before it.
    fn up_to(&self, components: &[Component], table: Table) -> Condition {
        let mut condition = Condition::all();
        if let (Some(first), Some(value)) = (components.first(), self.0.first()) {
            condition = condition.add(first.up_to(table, value));
        }
        condition.add(self.after(components, table).not())
    }
}

/// A range of the sort's leading key that filters select (priorities under the priority sort,
/// a deadline range under the deadline sort): read as a range of whichever index leads, the
/// tasks' or a search word's, instead of checked task by task within [`SCAN_BUDGET`]. Both ends
/// are included.
#[derive(Clone, Copy, Debug)]
struct KeyRange {
    column: Column,
    first: i64,
    last: i64,
}

impl KeyRange {
    /// The urgency keys of `priorities`, and whether they are exactly those priorities' tasks
    /// (priorities next to each other), or a range around them to check them in.
    fn of_priorities(priorities: &[Priority]) -> Option<(Self, bool)> {
        let ranks: std::collections::BTreeSet<i16> = priorities.iter().map(|p| p.rank()).collect();
        let (&lowest, &highest) = (ranks.first()?, ranks.last()?);
        // A higher priority sorts first: its keys are the smaller.
        let (first, _) = tasks::urgency_keys(highest);
        let (_, last) = tasks::urgency_keys(lowest);
        let adjacent = usize::try_from(highest - lowest + 1).is_ok_and(|span| span == ranks.len());
        Some((Self { column: Column::UrgencyKey, first, last }, adjacent))
    }

    /// The deadline keys of deadlines at or after `from` and before `before`, exactly: a
    /// deadline's key is its microseconds since 1970 (deadlines fall between the years 1970 and
    /// 9999), and tasks without a deadline lie past them all.
    fn of_deadlines(from: Option<DateTime<Utc>>, before: Option<DateTime<Utc>>) -> Self {
        let first = from.map_or(0, |at| Ord::max(at.timestamp_micros(), 0));
        let last = before.map_or(tasks::NO_DEADLINE_KEY, |at| at.timestamp_micros()).saturating_sub(1);
        let last = last.clamp(0, tasks::NO_DEADLINE_KEY - 1);
        Self { column: Column::DeadlineKey, first, last }
    }

    fn condition(&self, table: Table) -> Condition {
        let column = || Component::new(self.column).in_table(table);
        Condition::all().add(column().gte(self.first)).add(column().lte(self.last))
    }
}

/// What one read found: up to a page and one row more, and, when it stopped at its budget of
/// examined rows before the page filled, the task it stopped at (the next page starts after it).
struct Found {
    rows: Vec<ShownTask>,
    stopped_at: Option<ShownTask>,
}

impl Found {
    fn complete(rows: Vec<ShownTask>) -> Self {
        Self { rows, stopped_at: None }
    }

    /// `rows` read up to `boundary` (when there was one): stopped there unless the page filled.
    fn up_to(rows: Vec<ShownTask>, boundary: Option<ShownTask>, wanted: u64) -> Self {
        let stopped_at = boundary.filter(|_| (rows.len() as u64) < wanted);
        Self { rows, stopped_at }
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

/// A PIC, supervisor or creator filter: the column and the user it names (`None`: nobody).
#[derive(Clone, Copy)]
struct UserFilter {
    column: Column,
    user: Option<i64>,
}

impl UserFilter {
    async fn parse(ctx: &AppContext, who: &Principal, column: Column, raw: &str, field: &str) -> Result<Self> {
        let user = match raw.trim() {
            "me" => Some(who.user_id),
            "none" => None,
            other => Some(resolve_user(&ctx.reads, &UserRef::Text(other.to_owned()), field).await?),
        };
        Ok(Self { column, user })
    }

    /// The filter as a condition; `on_index: false` keeps SQLite off the column's index (its
    /// unary `+`), which its planner would otherwise prefer to the sort's, reading every task
    /// the user holds to sort them (180 ms a list for a user of 100,000 tasks). MySQL weighs
    /// the two by their rows on its own.
    fn condition(self, backend: DbBackend, on_index: bool) -> SimpleExpr {
        if on_index || backend != DbBackend::Sqlite {
            let column = Expr::col((tasks::Entity, self.column));
            return match self.user {
                Some(id) => column.eq(id),
                None => column.is_null(),
            };
        }
        // The id is a bound value.
        let column = off_index(self.column);
        match self.user {
            Some(id) => Expr::cust_with_values(format!("{column} = ?"), [id]),
            None => Expr::cust(format!("{column} IS NULL")),
        }
    }
}

fn parse_list<T>(raw: &str, parse: impl Fn(&str) -> Result<T>) -> Result<Vec<T>> {
    raw.split(',').filter(|s| !s.trim().is_empty()).map(parse).collect()
}

/// One page of tasks matching `query`, visible to every signed-in member.
pub async fn list(ctx: &AppContext, who: &Principal, query: ListQuery) -> Result<TaskPage> {
    let (sort, descending) = sort_order(&query)?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, crate::paging::MAX_LIMIT);
    let components = components(sort, descending);
    let filters = filters(ctx, who, &query, sort).await?;
    let after = query.cursor.as_deref().map(|raw| cursor_position(&components, sort, descending, raw)).transpose()?;
    let words = query.q.as_deref().map(search_words).unwrap_or_default();
    let found = if !words.is_empty() {
        search(ctx, filters, after.as_ref(), &words, &components, limit + 1).await?
    } else if (filters.checked.is_empty() && filters.users.is_empty()) || few_users_tasks(ctx, &filters).await? {
        let mut condition = filters.all();
        if let Some(after) = &after {
            condition = condition.add(after.after(&components, Table::Tasks));
        }
        Found::complete(read(ctx, condition, &components, limit + 1).await?)
    } else {
        read_within_budget(ctx, &filters, after.as_ref(), &components, limit + 1).await?
    };
    let cursor_at = |task: &ShownTask| {
        encode_cursor(&Cursor { sort, descending, after: components.iter().map(|c| c.value_of(task)).collect() })
    };
    let mut rows = found.rows;
    let next_cursor =
        crate::paging::cut(&mut rows, limit, cursor_at).or_else(|| found.stopped_at.as_ref().map(cursor_at));
    Ok(TaskPage { tasks: rows.into_iter().map(TaskView::from).collect(), next_cursor })
}

/// Rows of the sort order one request examines at most to check filters that no index serves
/// in that order (a priority, a deadline range, more than one status, `overdue`, any filter
/// beside a search word, a search word checked on the text). A page whose filters few
/// tasks pass comes back short, with a cursor at the last row examined, instead of one request
/// reading the whole table: what one request costs the database is bounded whatever it asks for.
const SCAN_BUDGET: u64 = 250;

/// The first `rows` tasks after `after` passing `filters`, examining at most [`SCAN_BUDGET`]
/// rows of the sort order (of the indexed filter's, when there is one).
async fn read_within_budget(
    ctx: &AppContext,
    filters: &Filters,
    after: Option<&Position>,
    components: &[Component],
    rows: u64,
) -> Result<Found> {
    let mut ahead = ordered(tasks::Entity::find().filter(filters.leading()), components);
    let mut listed = filters.budgeted();
    if let Some(after) = after {
        ahead = ahead.filter(after.after(components, Table::Tasks));
        listed = listed.add(after.after(components, Table::Tasks));
    }
    let ahead = ahead.select_only().column(Column::Id).offset(SCAN_BUDGET - 1).limit(1).into_query();
    let boundary = task_at(ctx, Expr::from(ahead)).await?;
    if let Some(boundary) = &boundary {
        listed = listed.add(Position::of(components, boundary)?.up_to(components, Table::Tasks));
    }
    Ok(Found::up_to(read(ctx, listed, components, rows).await?, boundary, rows))
}

/// The task whose id `id` (a scalar subquery) gives, read in the same statement.
async fn task_at(ctx: &AppContext, id: SimpleExpr) -> Result<Option<ShownTask>> {
    Ok(shown().filter(Expr::col((tasks::Entity, Column::Id)).eq(id)).into_model().one(&ctx.reads).await?)
}

/// The most stored words a search word may begin before the search stops walking each one's
/// tasks in order (one index walk per word, each up to a page) and falls back to
/// [`broad_search`]. A word typed in full begins a handful ("report", "reports", "reported").
const MAX_WALKED_WORDS: usize = 16;

/// Word rows counted, at most, to tell which word of a search is the rarest; words past it
/// are told apart by length (a longer word is usually the rarer).
const RARITY_COUNT_CAP: u64 = 200;

/// The words of `q` a search needs (at most ten), as the stored word lists spell them.
fn search_words(q: &str) -> Vec<String> {
    let mut words = tasklane_entity::tasks::search_words(q);
    words.truncate(10);
    words
}

async fn read(ctx: &AppContext, condition: Condition, components: &[Component], rows: u64) -> Result<Vec<ShownTask>> {
    Ok(ordered(shown().filter(condition), components).limit(rows).into_model().all(&ctx.reads).await?)
}

/// Tasks whose text holds a word beginning with `word`: the test `search_text` answers, used
/// for every search word but the one whose index is walked.
fn text_has(backend: DbBackend, word: &str) -> SimpleExpr {
    // Words are letters and digits only, so nothing in them is a LIKE wildcard.
    let pattern = format!("% {word}%");
    if backend == DbBackend::MySql {
        // Compared by code point like the word index: the column's collation would fold
        // accents (`resume` finding `résumé` only when another word leads the search), and it
        // costs a fifth of a walk that checks a word on every task.
        return Expr::cust_with_values("`tasks`.`search_text` COLLATE utf8mb4_bin LIKE ?", [pattern]);
    }
    Column::SearchText.like(pattern)
}

/// The first `rows` tasks after `after`, in the sort order, passing `filters` whose words
/// begin with each of `words`. The rarest word leads: the stored words it begins are each
/// walked in `task_words` in the sort order (an index per sort key), a page at most per word,
/// with the other words and the filters checked on the task; the pages merge into one. Each
/// search thus reads about a page per stored word however many tasks hold the word or where in
/// the order they are, and never more than [`SCAN_BUDGET`] word rows.
async fn search(
    ctx: &AppContext,
    mut filters: Filters,
    after: Option<&Position>,
    words: &[String],
    components: &[Component],
    rows: u64,
) -> Result<Found> {
    let leading = rarest(ctx, words).await?;
    for (i, word) in words.iter().enumerate() {
        // Stored words are cut short; a longer search word is checked whole on the text.
        if i != leading || word.chars().count() > MAX_WORD_CHARS {
            filters.require_text(word);
        }
    }
    let stored = stored_words_beginning(ctx, &words[leading], MAX_WALKED_WORDS + 1).await?;
    if stored.is_empty() {
        return Ok(Found::complete(Vec::new()));
    }
    if stored.len() > MAX_WALKED_WORDS {
        return broad_search(ctx, filters, after, words[leading].clone(), components, rows).await;
    }
    let walks: Vec<Walk> = stored.into_iter().map(Walk::Word).collect();
    walk_words(ctx, filters, after, &walks, components, rows).await
}

/// The index of the word of `words` that begins the fewest stored words' rows (counted up to
/// [`RARITY_COUNT_CAP`] each, the longest word leading among those past it): walking it reads
/// the fewest rows that fail the other words.
async fn rarest(ctx: &AppContext, words: &[String]) -> Result<usize> {
    if words.len() < 2 {
        return Ok(0);
    }
    let counts = word_rows(ctx, words, RARITY_COUNT_CAP).await?;
    let rarity = |i: usize| (counts[i], std::cmp::Reverse(words[i].chars().count()));
    Ok((0..words.len()).min_by_key(|&i| rarity(i)).unwrap_or(0))
}

/// How many `task_words` rows begin with each of `words`, each counted up to `cap`, in one
/// statement: a capped walk of each word's range.
async fn word_rows(ctx: &AppContext, words: &[String], cap: u64) -> Result<Vec<u64>> {
    let mut counts = Query::select();
    for (i, word) in words.iter().enumerate() {
        let (start, end) = task_words::range_of(word);
        let rows = Query::select()
            .expr(Expr::val(1))
            .from(task_words::Entity)
            .and_where(Expr::col(task_words::Column::Word).gte(start))
            .and_where(Expr::col(task_words::Column::Word).lt(end))
            .limit(cap)
            .to_owned();
        counts.expr_as(SimpleExpr::from(count_of(rows)), Alias::new(format!("word_{i}")));
    }
    let found = ctx.reads.query_one(&counts).await?;
    let counts = (0..words.len())
        .map(|i| found.as_ref().map_or(Ok(0), |row| row.try_get::<i64>("", &format!("word_{i}"))))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(counts.into_iter().map(|count| u64::try_from(count).unwrap_or(0)).collect())
}

/// The first `limit` stored words that begin with `prefix`, from `known_words`.
async fn stored_words_beginning(ctx: &AppContext, prefix: &str, limit: usize) -> Result<Vec<String>> {
    let (start, end) = task_words::range_of(prefix);
    Ok(known_words::Entity::find()
        .select_only()
        .column(known_words::Column::Word)
        .filter(known_words::Column::Word.gte(start))
        .filter(known_words::Column::Word.lt(end))
        .order_by_asc(known_words::Column::Word)
        .limit(limit as u64)
        .into_tuple::<String>()
        .all(&ctx.reads)
        .await?)
}

/// The `task_words` rows one walk of [`walk_words`] reads.
enum Walk {
    /// The rows of one stored word, each of a different task, read in the sort order straight
    /// from the word's index.
    Word(String),
    /// The rows of every stored word beginning with this: a range of the index, sorted (each
    /// task once) after it is read, so in proportion to the rows.
    Beginning(String),
}

/// The first `rows` tasks after `after` in the sort order that hold one of the `walks`' words
/// and pass `filters`, in one statement. One stored word's tasks are read by walking its
/// rows in the sort key's index and each row's task beside it, until the page is full.
/// Several walks each read their rows from the index (joined to the task only when there are
/// conditions to check), and the merged page's tasks are read by id. With a condition, which
/// rows may fail one after another, the stored words' walks share [`SCAN_BUDGET`] rows. A key
/// range of the filters is a range of the words' index.
async fn walk_words(
    ctx: &AppContext,
    mut filters: Filters,
    after: Option<&Position>,
    walks: &[Walk],
    components: &[Component],
    rows: u64,
) -> Result<Found> {
    let backend = ctx.reads.get_database_backend();
    let mut bounds = Bounds { after, range: filters.key_range.take(), up_to: None };
    let condition = &filters.all();
    let boundary =
        if condition.is_empty() { None } else { walk_boundary(ctx, walks, &bounds, components, rows).await? };
    bounds.up_to = boundary.as_ref().map(|boundary| Position::of(components, boundary)).transpose()?;
    if let [walk @ Walk::Word(_)] = walks {
        // No derived tables: on MariaDB each is a temporary table filled and read again, which
        // cost more than the walk itself on the searches most people type (one whole word).
        let mut select = walk_select(backend, walk, condition, &bounds, components, rows, true);
        select.columns(SHOWN_COLUMNS.map(|column| (tasks::Entity, column)));
        let statement = backend.build(&select);
        let found = ShownTask::find_by_statement(statement).all(&ctx.reads).await?;
        return Ok(Found::up_to(found, boundary, rows));
    }
    let mut sql = Vec::with_capacity(walks.len());
    let mut values = Vec::new();
    for (i, walk) in walks.iter().enumerate() {
        let mut select = walk_select(backend, walk, condition, &bounds, components, rows, !condition.is_empty());
        for component in components {
            select.column((task_words::Entity, component.words_column()));
        }
        let statement = backend.build(&select);
        sql.push(format!("SELECT * FROM ({}) AS walked_{i}", statement.sql));
        values.extend(statement.values.map(|v| v.0).unwrap_or_default());
    }
    // Column names come from the sort's own columns, never from the request.
    let names: Vec<&str> = components.iter().map(|c| c.words_column().as_str()).collect();
    let order = |table: &str| {
        let terms: Vec<String> = components
            .iter()
            .zip(&names)
            .map(|(c, name)| format!("{table}{name} {}", if c.descending { "DESC" } else { "ASC" }))
            .collect();
        terms.join(", ")
    };
    // A task holding two of the words is walked twice.
    let distinct = if walks.len() > 1 { "DISTINCT " } else { "" };
    let page = format!(
        "SELECT {distinct}{} FROM ({}) AS merged ORDER BY {} LIMIT {rows}",
        names.join(", "),
        sql.join(" UNION ALL "),
        order("")
    );
    let shown: Vec<String> = SHOWN_COLUMNS.iter().map(|column| format!("tasks.{}", column.as_str())).collect();
    let tasks = format!(
        "SELECT {} FROM ({page}) AS page JOIN tasks ON tasks.id = page.task_id ORDER BY {}",
        shown.join(", "),
        order("page.")
    );
    let statement = Statement::from_sql_and_values(backend, tasks, values);
    Ok(Found::up_to(ShownTask::find_by_statement(statement).all(&ctx.reads).await?, boundary, rows))
}

/// Where walks checking a condition stop: each stored word's walk may examine its share of
/// [`SCAN_BUDGET`] rows (a page at least), and every walk stops at the earliest of the tasks
/// where a walk's share runs out, so that the merged page up to there misses nothing. None when
/// no walk has that many rows left; a beginning's walk is never longer than the budget.
async fn walk_boundary(
    ctx: &AppContext,
    walks: &[Walk],
    bounds: &Bounds<'_>,
    components: &[Component],
    rows: u64,
) -> Result<Option<ShownTask>> {
    let share = Ord::max(SCAN_BUDGET / walks.len() as u64, rows);
    let mut ends = Condition::any();
    for walk in walks {
        let Walk::Word(stored) = walk else { continue };
        let mut ahead = Query::select();
        ahead.column((task_words::Entity, task_words::Column::TaskId)).from(task_words::Entity);
        ahead.and_where(Expr::col((task_words::Entity, task_words::Column::Word)).eq(stored.as_str()));
        if let Some(after) = bounds.after {
            ahead.cond_where(after.after(components, Table::Words));
        }
        if let Some(range) = &bounds.range {
            ahead.cond_where(range.condition(Table::Words));
        }
        for component in components {
            ahead.order_by((task_words::Entity, component.words_column()), component.order());
        }
        ahead.offset(share - 1).limit(1);
        ends = ends.add(Expr::col((tasks::Entity, Column::Id)).eq(Expr::from(ahead)));
    }
    if ends.is_empty() {
        return Ok(None);
    }
    let ends: Vec<ShownTask> = shown().filter(ends).into_model().all(&ctx.reads).await?;
    Ok(ends.into_iter().min_by(|a, b| compare(components, a, b)))
}

/// Where a walk starts and stops in the sort order: after a cursor, within a key range, up to
/// a budget's end.
struct Bounds<'a> {
    after: Option<&'a Position>,
    range: Option<KeyRange>,
    up_to: Option<Position>,
}

/// One walk's rows of `task_words` within `bounds` in the sort order, the first `rows` of them,
/// with no columns chosen yet; `with_task` joins each row's task (needed to check `condition`).
fn walk_select(
    backend: DbBackend,
    walk: &Walk,
    condition: &Condition,
    bounds: &Bounds,
    components: &[Component],
    rows: u64,
    with_task: bool,
) -> sea_orm::sea_query::SelectStatement {
    let mut select = Query::select();
    select.from(task_words::Entity);
    let word = Expr::col((task_words::Entity, task_words::Column::Word));
    match walk {
        Walk::Word(stored) => select.and_where(word.eq(stored.as_str())),
        // A task's rows all carry its keys, so `DISTINCT` on them leaves each task once.
        Walk::Beginning(beginning) => {
            let (start, end) = task_words::range_of(beginning);
            select.distinct().and_where(word.clone().gte(start)).and_where(word.lt(end))
        }
    };
    if let Some(after) = bounds.after {
        select.cond_where(after.after(components, Table::Words));
    }
    if let Some(range) = &bounds.range {
        select.cond_where(range.condition(Table::Words));
    }
    if let Some(up_to) = &bounds.up_to {
        select.cond_where(up_to.up_to(components, Table::Words));
    }
    if with_task {
        // The word's index must lead: planners otherwise like to walk the tasks by their own
        // sort index and probe each one's words, a read of the whole table for a rare word.
        // MySQL's STRAIGHT_JOIN and SQLite's CROSS JOIN keep the tables in the order written
        // (SQLite's takes its join condition in WHERE).
        let same_task = Expr::col((tasks::Entity, Column::Id)).equals((task_words::Entity, task_words::Column::TaskId));
        if backend == DbBackend::MySql {
            select.join(JoinType::StraightJoin, tasks::Entity, same_task);
        } else {
            select.cross_join(tasks::Entity).and_where(same_task);
        }
        if !condition.is_empty() {
            select.cond_where(condition.clone());
        }
    }
    for component in components {
        select.order_by((task_words::Entity, component.words_column()), component.order());
    }
    select.limit(rows);
    select
}

/// A search for a beginning shared by more than [`MAX_WALKED_WORDS`] stored words. One with
/// fewer word rows than [`SCAN_BUDGET`] (task numbers such as `100`) has them all read and
/// sorted. A common one (a letter or two, in many tasks) is checked on the text of the tasks
/// in the sort order, within the budget.
async fn broad_search(
    ctx: &AppContext,
    mut filters: Filters,
    after: Option<&Position>,
    beginning: String,
    components: &[Component],
    rows: u64,
) -> Result<Found> {
    let beginning_rows = word_rows(ctx, std::slice::from_ref(&beginning), SCAN_BUDGET).await?;
    if beginning_rows.first().is_some_and(|&count| count < SCAN_BUDGET) {
        return walk_words(ctx, filters, after, &[Walk::Beginning(beginning)], components, rows).await;
    }
    filters.require_text(&beginning);
    read_within_budget(ctx, &filters, after, components, rows).await
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

/// Tasks in one of `statuses`; `leads`: one status whose index the read walks in the sort's
/// order (an index of (status, sort key, id) per sort). Otherwise SQLite's planner would read
/// them from the status indexes and then sort every task it selects (a third of them each),
/// even with statistics and a LIMIT; SQLite's unary `+` keeps the term off those indexes, so
/// the list walks its sort's (or its PIC's) index and skips the other statuses (54 ms → 1 ms a
/// request over 100,000 tasks). MySQL does the same on its own.
fn status_in(backend: DbBackend, statuses: &[TaskStatus], leads: bool) -> SimpleExpr {
    if backend != DbBackend::Sqlite || leads {
        return Column::Status.is_in(statuses.iter().map(|status| status.as_str()));
    }
    // The statuses are the API's own words, never text from the request.
    let words: Vec<String> = statuses.iter().map(|status| format!("'{}'", status.as_str())).collect();
    Expr::cust(format!("{} IN ({})", off_index(Column::Status), words.join(", ")))
}

/// A task column as SQLite's planner will not read it from an index (its unary `+`), for a
/// filter checked on each task of another index's walk. The column is one of ours, never
/// text from the request.
fn off_index(column: Column) -> String {
    format!("+\"tasks\".\"{}\"", column.as_str())
}

/// The rows a query's filters select, by whether an index serves them in the sort's order.
struct Filters {
    backend: DbBackend,
    /// A PIC, or else one status: read from an index of (PIC or status, sort key, id).
    indexed: Condition,
    /// Supervisor and creator: read from the column's index when the tasks they select are
    /// few (see [`USER_TASKS_SORTED`]), otherwise checked like the rest.
    users: Vec<UserFilter>,
    /// Everything else, checked on each task read: see [`SCAN_BUDGET`].
    checked: Condition,
    /// Where filters on the sort's own key narrow the order (a search walks it in its words'
    /// index instead of the tasks').
    key_range: Option<KeyRange>,
}

impl Filters {
    /// Every filter, the users' as their indexes read them: empty when there are none, which
    /// tells a search it has nothing to check.
    fn all(&self) -> Condition {
        self.joined(true)
    }

    /// Every filter, for a read of the sort's order within [`SCAN_BUDGET`].
    fn budgeted(&self) -> Condition {
        self.joined(false)
    }

    fn user_conditions(&self, on_index: bool) -> Condition {
        self.users.iter().fold(Condition::all(), |all, user| all.add(user.condition(self.backend, on_index)))
    }

    /// What the index leading a read of the tasks serves: the PIC or status and the key range.
    fn leading(&self) -> Condition {
        let range = self.key_range.map_or_else(Condition::all, |range| range.condition(Table::Tasks));
        all_of([self.indexed.clone(), range])
    }

    /// Adds the check that a task's text holds a word beginning with `word` (see [`text_has`]).
    fn require_text(&mut self, word: &str) {
        self.checked = std::mem::replace(&mut self.checked, Condition::all()).add(text_has(self.backend, word));
    }

    fn joined(&self, users_on_index: bool) -> Condition {
        all_of([self.leading(), self.user_conditions(users_on_index), self.checked.clone()])
    }
}

/// Every one of `parts`, leaving out the empty ones: sea-query keeps an empty condition added
/// to another, and the whole is then not empty.
fn all_of(parts: impl IntoIterator<Item = Condition>) -> Condition {
    parts.into_iter().filter(|part| !part.is_empty()).fold(Condition::all(), Condition::add)
}

/// Tasks a supervisor or creator filter may select for a list to read them from that
/// column's index and sort them all, in full pages; past it, they are common enough to be
/// found in the sort's order within [`SCAN_BUDGET`].
const USER_TASKS_SORTED: u64 = 1_000;

/// How many rows `rows` selects: with a `LIMIT`, a count that stops there.
fn count_of(rows: sea_orm::sea_query::SelectStatement) -> sea_orm::sea_query::SelectStatement {
    Query::select().expr(Expr::cust("COUNT(*)")).from_subquery(rows, Alias::new("capped")).to_owned()
}

/// Whether `filters` name users whose tasks are fewer than [`USER_TASKS_SORTED`], counted up
/// to it from the users' index.
async fn few_users_tasks(ctx: &AppContext, filters: &Filters) -> Result<bool> {
    if filters.users.is_empty() {
        return Ok(false);
    }
    let selected = Query::select()
        .expr(Expr::val(1))
        .from(tasks::Entity)
        .cond_where(filters.user_conditions(true))
        .limit(USER_TASKS_SORTED)
        .to_owned();
    let found = ctx.reads.query_one(&count_of(selected)).await?;
    let count = found.map_or(Ok(0), |row| row.try_get_by_index::<i64>(0))?;
    Ok(u64::try_from(count).unwrap_or(0) < USER_TASKS_SORTED)
}

/// The rows `query`'s filters select.
async fn filters(ctx: &AppContext, who: &Principal, query: &ListQuery, sort: SortKey) -> Result<Filters> {
    let backend = ctx.reads.get_database_backend();
    let mut indexed = Condition::all();
    let mut condition = Condition::all();
    // A PIC is read from an index of (PIC, sort key, id); without one, a single status from
    // the status's. Only one of them can lead a read in the sort's order: the other is checked,
    // kept off its index on SQLite.
    let pic = match &query.pic {
        Some(raw) => Some(UserFilter::parse(ctx, who, Column::PicId, raw, "pic").await?),
        None => None,
    };
    if let Some(pic) = pic {
        indexed = indexed.add(pic.condition(backend, true));
    }
    if let Some(raw) = &query.status {
        let statuses = parse_list(raw, TaskStatus::parse)?;
        let leads = statuses.len() == 1 && pic.is_none();
        let status = status_in(backend, &statuses, leads);
        if leads {
            indexed = indexed.add(status);
        } else {
            condition = condition.add(status);
        }
    }
    let mut key_range = None;
    if let Some(raw) = &query.priority {
        let priorities = parse_list(raw, Priority::parse)?;
        let range = KeyRange::of_priorities(&priorities).filter(|_| sort == SortKey::Priority);
        if !range.is_some_and(|(_, exact)| exact) {
            condition = condition.add(Column::Priority.is_in(priorities.iter().map(|p| p.rank())));
        }
        key_range = range.map(|(range, _)| range);
    }
    let mut users = Vec::new();
    for (raw, column, field) in
        [(&query.supervisor, Column::SupervisorId, "supervisor"), (&query.creator, Column::CreatorId, "creator")]
    {
        if let Some(raw) = raw {
            users.push(UserFilter::parse(ctx, who, column, raw, field).await?);
        }
    }
    let due_before = query.due_before.as_deref().map(parse_deadline).transpose()?;
    let due_after = query.due_after.as_deref().map(parse_deadline).transpose()?;
    let now = crate::now();
    let overdue_before = (query.overdue == Some(true)).then_some(now);
    let by_deadline = sort == SortKey::Deadline;
    if by_deadline && (due_before.is_some() || due_after.is_some() || overdue_before.is_some()) {
        let before = [due_before, overdue_before].into_iter().flatten().min();
        key_range = Some(KeyRange::of_deadlines(due_after, before));
    }
    if let Some(at) = due_before.filter(|_| !by_deadline) {
        condition = condition.add(Column::Deadline.lt(crate::stored(at)));
    }
    if let Some(at) = due_after.filter(|_| !by_deadline) {
        condition = condition.add(Column::Deadline.gte(crate::stored(at)));
    }
    if let Some(overdue) = query.overdue {
        let now = crate::stored(now);
        // `IS NOT NULL` keeps the negation two-valued: without it a task with no deadline
        // would be neither overdue nor not overdue.
        let is_overdue = Condition::all()
            .add(Column::Deadline.is_not_null())
            .add(Column::Deadline.lt(now))
            .add(Column::Status.ne(TaskStatus::Done.as_str()));
        condition = condition.add(if overdue { is_overdue } else { is_overdue.not() });
    }
    Ok(Filters { backend, indexed, users, checked: condition, key_range })
}

/// The position in the sort order a cursor points at.
fn cursor_position(components: &[Component], sort: SortKey, descending: bool, raw: &str) -> Result<Position> {
    let cursor = decode_cursor(raw)?;
    if cursor.sort != sort || cursor.descending != descending || cursor.after.len() != components.len() {
        return Err(Error::bad_request("invalid_cursor", "the cursor belongs to a different sort order"));
    }
    let values = components.iter().zip(&cursor.after).map(|(c, v)| c.db_value(v)).collect::<Result<Vec<_>>>()?;
    Ok(Position(values))
}

/// How `a` and `b` stand in the order of `components`.
fn compare(components: &[Component], a: &ShownTask, b: &ShownTask) -> std::cmp::Ordering {
    components
        .iter()
        .map(|component| {
            let ordering = match component.column {
                Column::UrgencyKey => a.urgency_key.cmp(&b.urgency_key),
                Column::DeadlineKey => a.deadline_key.cmp(&b.deadline_key),
                Column::CreatedAt => a.created_at.cmp(&b.created_at),
                Column::UpdatedAt => a.updated_at.cmp(&b.updated_at),
                _ => a.id.cmp(&b.id),
            };
            if component.descending { ordering.reverse() } else { ordering }
        })
        .find(|ordering| ordering.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

/// `select` in the order of `components`.
fn ordered(mut select: sea_orm::Select<tasks::Entity>, components: &[Component]) -> sea_orm::Select<tasks::Entity> {
    for component in components {
        select = select.order_by(component.column, component.order());
    }
    select
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_filters_leave_nothing_to_check() {
        let filters = |indexed: Condition, users: Vec<UserFilter>, checked: Condition| Filters {
            backend: DbBackend::Sqlite,
            indexed,
            users,
            checked,
            key_range: None,
        };
        assert!(filters(Condition::all(), Vec::new(), Condition::all()).all().is_empty());
        let status = || Condition::all().add(Column::Status.eq("done"));
        assert!(!filters(status(), Vec::new(), Condition::all()).all().is_empty());
        assert!(!filters(Condition::all(), Vec::new(), status()).all().is_empty());
        let nobody = UserFilter { column: Column::PicId, user: None };
        assert!(!filters(Condition::all(), vec![nobody], Condition::all()).all().is_empty());
    }

    #[test]
    fn priorities_and_deadlines_are_ranges_of_their_sort_keys() {
        let keys = |names: &str| {
            let priorities = parse_list(names, Priority::parse).unwrap();
            KeyRange::of_priorities(&priorities).map(|(range, exact)| (range.first, range.last, exact))
        };
        let (urgent, high, low) = (tasks::urgency_keys(4), tasks::urgency_keys(3), tasks::urgency_keys(1));
        assert_eq!(keys("urgent"), Some((urgent.0, urgent.1, true)));
        assert_eq!(keys("high,urgent"), Some((urgent.0, high.1, true)));
        // Apart: the range around them, to be checked within.
        assert_eq!(keys("urgent,low"), Some((urgent.0, low.1, false)));
        assert_eq!(keys(""), None);
        let due = |raw: &str| Some(parse_deadline(raw).unwrap());
        let window = KeyRange::of_deadlines(due("2027-01-01T00:00:00Z"), due("2027-01-02T00:00:00Z"));
        let key = |raw: &str| tasks::deadline_key(Some(crate::stored(parse_deadline(raw).unwrap())));
        assert_eq!((window.first, window.last), (key("2027-01-01T00:00:00Z"), key("2027-01-02T00:00:00Z") - 1));
        // Tasks without a deadline lie past every range.
        let from = KeyRange::of_deadlines(due("2027-01-01T00:00:00Z"), None);
        assert_eq!((from.first, from.last), (key("2027-01-01T00:00:00Z"), tasks::NO_DEADLINE_KEY - 1));
    }

    #[test]
    fn sqlite_reads_a_users_tasks_off_their_index_only_within_the_budget() {
        let lee = UserFilter { column: Column::CreatorId, user: Some(7) };
        let sql = |backend: DbBackend, on_index: bool| {
            tasks::Entity::find().filter(lee.condition(backend, on_index)).build(backend).to_string()
        };
        assert!(
            sql(DbBackend::Sqlite, false).contains(r#"+"tasks"."creator_id" = 7"#),
            "{}",
            sql(DbBackend::Sqlite, false)
        );
        assert!(sql(DbBackend::Sqlite, true).contains(r#""tasks"."creator_id" = 7"#));
        assert!(!sql(DbBackend::Sqlite, true).contains('+'));
        assert!(!sql(DbBackend::MySql, false).contains('+'));
    }
}
