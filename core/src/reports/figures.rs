//! A report's figures, computed in the database from the task events: each event records the
//! task's state right after it and when the task's next event superseded it, so "whose task
//! was this and where did it stand at instant T" is the event written before T and superseded
//! at or after it, found through the index on (PIC, superseded, created).
//! Counts are grouped queries; only the period's completions (for durations) and a handful of
//! aggregate rows are read into memory, never every task.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use sea_orm::{ConnectionTrait, QueryResult, Statement, Value};
use serde::{Deserialize, Serialize};

use crate::Result;
use crate::tasks::fields::Priority;

/// What one report says about one person (or the whole team) over one period.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Figures {
    /// Their tasks that were not done when the period began.
    pub open_at_start: u64,
    /// Tasks that became theirs during the period (created with them as PIC, or reassigned to them).
    pub newly_assigned: u64,
    /// Their tasks that moved to done during the period and were still done at its end.
    pub completed: u64,
    /// Of those, the ones done by their deadline at that moment (or with none).
    pub completed_on_time: u64,
    /// Of those, the ones done after their deadline.
    pub completed_late: u64,
    /// Their tasks moved from done back to another status during the period.
    pub reopened: u64,
    /// Their tasks not done at the period's end (or now, for the current period).
    pub open_at_end: u64,
    /// Of those, the ones past their deadline.
    pub overdue_at_end: u64,
    /// Tasks they created during the period.
    pub created: u64,
    /// `completed ÷ (open_at_start + newly_assigned)`, rounded to 4 places; null when that is 0.
    pub completion_rate: Option<f64>,
    /// Median time from creation to done over the completed tasks, in seconds.
    pub lead_time_p50_secs: Option<i64>,
    /// 85th percentile of the same.
    pub lead_time_p85_secs: Option<i64>,
    /// Median time from first `in_progress` to done, over completed tasks that were ever in progress.
    pub cycle_time_p50_secs: Option<i64>,
    /// 85th percentile of the same.
    pub cycle_time_p85_secs: Option<i64>,
    /// `open_at_end` by priority.
    pub open_by_priority: ByPriority,
}

/// A count per priority.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ByPriority {
    /// Urgent.
    pub urgent: u64,
    /// High.
    pub high: u64,
    /// Medium.
    pub medium: u64,
    /// Low.
    pub low: u64,
}

impl ByPriority {
    fn add(&mut self, priority: Priority, count: u64) {
        match priority {
            Priority::Urgent => self.urgent += count,
            Priority::High => self.high += count,
            Priority::Medium => self.medium += count,
            Priority::Low => self.low += count,
        }
    }
}

/// One point of the created-vs-completed series: a day of a week, or an ISO week of a month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The day, or the Monday of the ISO week.
    pub date: NaiveDate,
    /// Tasks created in it.
    pub created: u64,
    /// Tasks completed in it (counted in `completed`).
    pub completed: u64,
}

/// One of the most urgent open tasks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OpenTask {
    /// Task id.
    pub id: i64,
    /// Its title then.
    pub name: String,
    /// Its priority then.
    pub priority: Priority,
    /// Its deadline then.
    pub deadline: Option<DateTime<Utc>>,
}

/// Whose tasks are measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// One user's: the tasks whose PIC they are, and those they created.
    User(i64),
    /// Everyone's, with each person's own figures beside the total.
    Everyone,
}

/// A span of a series: `[start, end)`, labelled `date`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bucket {
    /// Its label.
    pub date: NaiveDate,
    /// First instant.
    pub start: DateTime<Utc>,
    /// First instant after it.
    pub end: DateTime<Utc>,
}

/// What one measurement found for one period: the figures of the owner (the whole team for
/// [`Owner::Everyone`]), each PIC's own (team measurements only) and the series.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// The owner's figures.
    pub total: Figures,
    /// Each person's figures (for [`Owner::Everyone`]).
    pub by_user: HashMap<i64, Figures>,
    /// Created and completed per bucket (the current period only).
    pub series: Vec<SeriesPoint>,
}

/// The instants one measurement looks at: a period `[start, end)` (its end may be now, for a
/// period still running) and the period before it, `[previous_start, start)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// The first instant of the period before.
    pub previous_start: DateTime<Utc>,
    /// The first instant of the period.
    pub start: DateTime<Utc>,
    /// The instant its figures describe: its end, or now.
    pub end: DateTime<Utc>,
}

/// The figures of a period and of the one before it, measured together: the state at the
/// period's start is also the state at the previous one's end.
#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// The period's.
    pub current: Measured,
    /// The previous period's (no series).
    pub previous: Measured,
}

/// One completed task, as the durations need it.
struct Completion {
    pic_id: Option<i64>,
    completed_at: NaiveDateTime,
    created_at: Option<NaiveDateTime>,
    started_at: Option<NaiveDateTime>,
    due: Option<NaiveDateTime>,
}

/// Counts and completions of one person (or of unassigned tasks) before they become figures.
#[derive(Default)]
struct Tally {
    open_at_start: u64,
    open_at_end: u64,
    overdue_at_end: u64,
    open_by_priority: ByPriority,
    newly_assigned: u64,
    reopened: u64,
    created: u64,
}

/// The SQL that restricts events to the owner's, and its values.
fn owner_filter(owner: Owner, column: &str) -> (String, Vec<Value>) {
    match owner {
        Owner::User(id) => (format!("e.{column} = ?"), vec![id.into()]),
        Owner::Everyone => ("1 = 1".to_owned(), Vec::new()),
    }
}

/// The condition "this event held the task's state at instant `?`" (it was written before,
/// and the task's next event, if any, came at or after it); binds the instant twice.
const COVERS: &str = "(e.created_at < ? AND (e.superseded_at IS NULL OR e.superseded_at >= ?))";

/// The condition "this event's state lasted until instant `?` or later", which the index on
/// (PIC, superseded, created) finds; binds the instant once.
const LASTS: &str = "(e.superseded_at IS NULL OR e.superseded_at >= ?)";

/// `values` followed by `at`.
fn chain(values: &[Value], at: NaiveDateTime) -> Vec<Value> {
    values.iter().cloned().chain([at.into()]).collect()
}

fn count(row: &QueryResult, column: &str) -> Result<u64> {
    Ok(row.try_get::<i64>("", column)?.max(0) as u64)
}

/// A statement and its values, built together so placeholders and values stay in step.
#[derive(Default)]
struct Sql {
    text: String,
    values: Vec<Value>,
}

impl Sql {
    /// Appends text without values.
    fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends text whose placeholders take `values`, in order.
    fn bind(&mut self, text: &str, values: impl IntoIterator<Item = Value>) -> &mut Self {
        self.text.push_str(text);
        self.values.extend(values);
        self
    }

    /// Appends [`COVERS`] for instant `at`.
    fn covers(&mut self, at: NaiveDateTime) -> &mut Self {
        self.bind(COVERS, [at.into(), at.into()])
    }

    async fn run(self, db: &impl ConnectionTrait) -> Result<Vec<QueryResult>> {
        let statement = Statement::from_sql_and_values(db.get_database_backend(), self.text, self.values);
        Ok(db.query_all_raw(statement).await?)
    }
}

/// Measures `owner`'s work over the window's period and the one before, with the period's
/// series over `buckets`: five grouped queries (six for the team), run at once on the pool.
pub async fn measure(
    db: &impl ConnectionTrait,
    owner: Owner,
    window: Window,
    buckets: &[Bucket],
) -> Result<Measurement> {
    let (p0, p1, p2) = (crate::stored(window.previous_start), crate::stored(window.start), crate::stored(window.end));
    let (pic_filter, pic_values) = owner_filter(owner, "pic_id");

    // Tasks open at each of the three instants, overdue at the two period ends, per PIC and
    // priority: one pass over the states that overlap the window.
    let mut open = Sql::default();
    open.push("SELECT e.pic_id AS pic_id, e.priority AS priority");
    for (name, at, overdue) in [
        ("open_p0", p0, false),
        ("open_p1", p1, false),
        ("overdue_p1", p1, true),
        ("open_p2", p2, false),
        ("overdue_p2", p2, true),
    ] {
        open.push(", COUNT(CASE WHEN ").covers(at);
        if overdue {
            open.bind(" AND e.deadline IS NOT NULL AND e.deadline < ?", [at.into()]);
        }
        open.push(&format!(" THEN 1 END) AS {name}"));
    }
    open.push(" FROM task_events e")
        .bind(&format!(" WHERE {pic_filter} AND {LASTS}"), chain(&pic_values, p0))
        .bind(" AND e.status <> 'done' AND e.kind <> 'task.deleted' AND e.created_at < ? GROUP BY 1, 2", [p2.into()]);

    // Done at each period's end and made done inside it, with the deadline of that moment.
    let mut done = Sql::default();
    done.push(
        "SELECT e.pic_id AS pic_id, e.completed_at AS completed_at, e.task_created_at AS created_at, \
         e.started_at AS started_at, e.completed_due AS due FROM task_events e",
    )
    .bind(&format!(" WHERE {pic_filter} AND {LASTS}"), chain(&pic_values, p1))
    .bind(" AND e.status = 'done' AND e.kind <> 'task.deleted' AND e.completed_at >= ? AND ((", [p0.into()])
    .covers(p2)
    .bind(" AND e.completed_at >= ?) OR (", [p1.into()])
    .covers(p1)
    .bind(" AND e.completed_at < ?))", [p1.into()]);

    // Tasks that became someone's, and tasks reopened, per person, counted once per task;
    // for the team, counted once per task whoever they went to. Events written since p0
    // lasted until p0 or later: saying so lets the index serve.
    // Each event knows the PIC and status before it, so no join to the previous event.
    let change = "FROM task_events e \
                  WHERE (e.superseded_at IS NULL OR e.superseded_at >= ?) \
                  AND e.created_at >= ? AND e.created_at < ? AND e.kind <> 'task.deleted' \
                  AND ((e.pic_id IS NOT NULL AND (e.prev_pic_id IS NULL OR e.prev_pic_id <> e.pic_id)) \
                  OR (e.kind = 'task.status_changed' AND e.status <> 'done' AND e.prev_status = 'done'))";
    let classes = "CASE WHEN e.created_at >= ? THEN 1 ELSE 0 END AS current, \
                   CASE WHEN e.kind = 'task.status_changed' AND e.prev_status = 'done' THEN 1 ELSE 0 END AS reopen";
    let mut changes = Sql::default();
    changes
        .bind(&format!("SELECT e.pic_id AS pic_id, {classes}, COUNT(DISTINCT e.task_id) AS tasks "), [p1.into()])
        .bind(change, [p0.into(), p0.into(), p2.into()])
        .bind(&format!(" AND {pic_filter} GROUP BY 1, 2, 3"), pic_values.clone());
    let mut team_changes = Sql::default();
    team_changes
        .bind(&format!("SELECT {classes}, COUNT(DISTINCT e.task_id) AS tasks "), [p1.into()])
        .bind(change, [p0.into(), p0.into(), p2.into()])
        .push(" GROUP BY 1, 2");

    // Tasks created, per creator and bucket (-1: the previous period).
    let (actor_filter, actor_values) = owner_filter(owner, "actor_id");
    let mut created = Sql::default();
    created.bind("SELECT e.actor_id AS actor_id, CASE WHEN e.created_at < ? THEN -1", [p1.into()]);
    for (index, bucket) in buckets.iter().enumerate().skip(1) {
        created.bind(&format!(" WHEN e.created_at < ? THEN {}", index - 1), [crate::stored(bucket.start).into()]);
    }
    created
        .push(&format!(" ELSE {} END AS bucket, COUNT(*) AS tasks FROM task_events e", buckets.len().saturating_sub(1)))
        .bind(&format!(" WHERE {actor_filter}"), actor_values)
        .bind(
            " AND e.kind = 'task.created' AND e.created_at >= ? AND e.created_at < ? GROUP BY 1, 2",
            [p0.into(), p2.into()],
        );

    let team = owner == Owner::Everyone;
    let (open, done, changes, team_changes, created) = futures_util::try_join!(
        open.run(db),
        done.run(db),
        changes.run(db),
        async { if team { team_changes.run(db).await } else { Ok(Vec::new()) } },
        created.run(db),
    )?;

    // Index 0: the previous period, 1: the current one.
    let mut tallies: [HashMap<Option<i64>, Tally>; 2] = [HashMap::new(), HashMap::new()];
    for row in open {
        let pic: Option<i64> = row.try_get("", "pic_id")?;
        let priority = Priority::from_rank(row.try_get("", "priority")?);
        let [previous, current] = &mut tallies;
        let before = previous.entry(pic).or_default();
        before.open_at_start += count(&row, "open_p0")?;
        before.open_at_end += count(&row, "open_p1")?;
        before.overdue_at_end += count(&row, "overdue_p1")?;
        before.open_by_priority.add(priority, count(&row, "open_p1")?);
        let now = current.entry(pic).or_default();
        now.open_at_start += count(&row, "open_p1")?;
        now.open_at_end += count(&row, "open_p2")?;
        now.overdue_at_end += count(&row, "overdue_p2")?;
        now.open_by_priority.add(priority, count(&row, "open_p2")?);
    }
    let mut completions: [Vec<Completion>; 2] = [Vec::new(), Vec::new()];
    for row in done {
        let completion = Completion {
            pic_id: row.try_get("", "pic_id")?,
            completed_at: row.try_get("", "completed_at")?,
            created_at: row.try_get("", "created_at")?,
            started_at: row.try_get("", "started_at")?,
            due: row.try_get("", "due")?,
        };
        completions[usize::from(completion.completed_at >= p1)].push(completion);
    }
    for row in changes {
        let tally = tallies[count(&row, "current")? as usize].entry(row.try_get("", "pic_id")?).or_default();
        let tasks = count(&row, "tasks")?;
        if count(&row, "reopen")? == 1 {
            tally.reopened += tasks;
        } else {
            tally.newly_assigned += tasks;
        }
    }
    let mut team_totals = [[0u64; 2]; 2];
    for row in team_changes {
        team_totals[count(&row, "current")? as usize][count(&row, "reopen")? as usize] = count(&row, "tasks")?;
    }
    let mut created_per_bucket = vec![0u64; buckets.len()];
    for row in created {
        let tasks = count(&row, "tasks")?;
        let bucket: i64 = row.try_get("", "bucket")?;
        tallies[usize::from(bucket >= 0)].entry(row.try_get("", "actor_id")?).or_default().created += tasks;
        if let Some(slot) = usize::try_from(bucket).ok().and_then(|b| created_per_bucket.get_mut(b)) {
            *slot += tasks;
        }
    }

    let series = buckets
        .iter()
        .zip(created_per_bucket)
        .map(|(bucket, created)| {
            let (from, to) = (crate::stored(bucket.start), crate::stored(bucket.end));
            let completed = completions[1].iter().filter(|c| c.completed_at >= from && c.completed_at < to).count();
            SeriesPoint { date: bucket.date, created, completed: completed as u64 }
        })
        .collect();
    let [previous_tallies, current_tallies] = tallies;
    let [previous_done, current_done] = completions;
    let previous = summarize(owner, previous_tallies, &previous_done, team_totals[0]);
    let mut current = summarize(owner, current_tallies, &current_done, team_totals[1]);
    current.series = series;
    Ok(Measurement { current, previous })
}

/// One period's figures from its tallies and completions: the owner's, or for the team the
/// sums (tasks changing hands counted once, from `team_changes`: newly assigned, reopened)
/// and each person's.
fn summarize(
    owner: Owner,
    mut tallies: HashMap<Option<i64>, Tally>,
    completions: &[Completion],
    team_changes: [u64; 2],
) -> Measured {
    let mut by_user = HashMap::new();
    let total = match owner {
        Owner::User(id) => figures(tallies.remove(&Some(id)).unwrap_or_default(), completions.iter()),
        Owner::Everyone => {
            let mut team = Tally::default();
            for (pic, tally) in tallies {
                team.open_at_start += tally.open_at_start;
                team.open_at_end += tally.open_at_end;
                team.overdue_at_end += tally.overdue_at_end;
                team.created += tally.created;
                let by = tally.open_by_priority;
                for (priority, count) in [
                    (Priority::Urgent, by.urgent),
                    (Priority::High, by.high),
                    (Priority::Medium, by.medium),
                    (Priority::Low, by.low),
                ] {
                    team.open_by_priority.add(priority, count);
                }
                if let Some(id) = pic {
                    let own = completions.iter().filter(|c| c.pic_id == Some(id));
                    by_user.insert(id, figures(tally, own));
                }
            }
            [team.newly_assigned, team.reopened] = team_changes;
            figures(team, completions.iter())
        }
    };
    Measured { total, by_user, series: Vec::new() }
}

/// Turns counts and completions into figures.
fn figures<'a>(tally: Tally, completions: impl Iterator<Item = &'a Completion>) -> Figures {
    let mut lead = Vec::new();
    let mut cycle = Vec::new();
    let (mut on_time, mut late) = (0, 0);
    for completion in completions {
        match completion.due {
            Some(due) if completion.completed_at > due => late += 1,
            _ => on_time += 1,
        }
        if let Some(created) = completion.created_at {
            lead.push((completion.completed_at - created).num_seconds());
        }
        if let Some(started) = completion.started_at {
            cycle.push((completion.completed_at - started).num_seconds());
        }
    }
    lead.sort_unstable();
    cycle.sort_unstable();
    let completed = on_time + late;
    let scope = tally.open_at_start + tally.newly_assigned;
    Figures {
        open_at_start: tally.open_at_start,
        newly_assigned: tally.newly_assigned,
        completed,
        completed_on_time: on_time,
        completed_late: late,
        reopened: tally.reopened,
        open_at_end: tally.open_at_end,
        overdue_at_end: tally.overdue_at_end,
        created: tally.created,
        completion_rate: (scope > 0).then(|| (completed as f64 / scope as f64 * 10_000.0).round() / 10_000.0),
        lead_time_p50_secs: percentile(&lead, 50),
        lead_time_p85_secs: percentile(&lead, 85),
        cycle_time_p50_secs: percentile(&cycle, 50),
        cycle_time_p85_secs: percentile(&cycle, 85),
        open_by_priority: tally.open_by_priority,
    }
}

/// The nearest-rank percentile of sorted values: the smallest value with at least `p` % of
/// the values at or below it.
fn percentile(sorted: &[i64], p: usize) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

/// The ten most urgent of `owner`'s tasks open at `at`: by priority, then deadline (none last).
pub async fn top_open(db: &impl ConnectionTrait, owner: Owner, at: DateTime<Utc>) -> Result<Vec<OpenTask>> {
    let at = crate::stored(at);
    let (pic_filter, pic_values) = owner_filter(owner, "pic_id");
    let mut sql = Sql::default();
    sql.push("SELECT e.task_id AS task_id, e.priority AS priority, e.deadline AS deadline, e.payload AS payload")
        .bind(&format!(" FROM task_events e WHERE {pic_filter} AND {LASTS}"), chain(&pic_values, at))
        .push(" AND e.status <> 'done' AND e.kind <> 'task.deleted' AND ")
        .covers(at)
        .push(
            " ORDER BY e.priority DESC, CASE WHEN e.deadline IS NULL THEN 1 ELSE 0 END, e.deadline, e.task_id LIMIT 10",
        );
    let rows = sql.run(db).await?;
    let mut open = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("", "task_id")?;
        let payload: serde_json::Value = row.try_get("", "payload")?;
        let name = payload["task"]["name"].as_str().map_or_else(|| format!("task {id}"), str::to_owned);
        let deadline: Option<NaiveDateTime> = row.try_get("", "deadline")?;
        open.push(OpenTask {
            id,
            name,
            priority: Priority::from_rank(row.try_get("", "priority")?),
            deadline: deadline.map(|at| at.and_utc()),
        });
    }
    Ok(open)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        assert_eq!(percentile(&[], 50), None);
        assert_eq!(percentile(&[7], 85), Some(7));
        assert_eq!(percentile(&[1, 2, 3, 4], 50), Some(2));
        assert_eq!(percentile(&[1, 2, 3, 4], 85), Some(4));
        assert_eq!(percentile(&[10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 85), Some(90));
    }
}
