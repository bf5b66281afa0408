//! A report's figures, computed in the database from the task events: each event records the
//! task's state right after it, so "whose task was this and where did it stand at instant T"
//! is the latest event of each task before T, found through the index on (PIC, time).
//! Counts are grouped queries; only the period's completions (for durations) and a handful of
//! aggregate rows are read into memory, never every task.

use std::collections::{HashMap, HashSet};

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

/// What one measurement found: the figures of the owner (the whole team for
/// [`Owner::Everyone`]), each PIC's own (team measurements only) and the series.
#[derive(Clone, Debug, Default)]
pub struct Measured {
    /// The owner's figures.
    pub total: Figures,
    /// Each person's figures (for [`Owner::Everyone`]).
    pub by_user: HashMap<i64, Figures>,
    /// Created and completed per bucket.
    pub series: Vec<SeriesPoint>,
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

/// Events that hold each task's state at `?` (the latest event before it, the task not deleted).
const STATE_AT: &str = "e.created_at < ? AND e.kind <> 'task.deleted' AND NOT EXISTS (SELECT 1 FROM task_events n \
                        WHERE n.task_id = e.task_id AND n.seq > e.seq AND n.created_at < ?)";

fn count(row: &QueryResult, column: &str) -> Result<u64> {
    Ok(row.try_get::<i64>("", column)?.max(0) as u64)
}

/// Measures `owner`'s work over `[start, end)`, with the series over `buckets`.
pub async fn measure(
    db: &impl ConnectionTrait,
    owner: Owner,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    buckets: &[Bucket],
) -> Result<Measured> {
    let backend = db.get_database_backend();
    let (start_at, end_at) = (crate::stored(start), crate::stored(end));
    let mut tallies: HashMap<Option<i64>, Tally> = HashMap::new();
    let (pic_filter, pic_values) = owner_filter(owner, "pic_id");
    let query = |sql: String, values: Vec<Value>| Statement::from_sql_and_values(backend, sql, values);

    // Open at the start, and open, overdue and by priority at the end.
    for (at, is_end) in [(start_at, false), (end_at, true)] {
        let sql = format!(
            "SELECT e.pic_id AS pic_id, e.priority AS priority, \
             CASE WHEN e.deadline IS NOT NULL AND e.deadline < ? THEN 1 ELSE 0 END AS overdue, COUNT(*) AS tasks \
             FROM task_events e WHERE {pic_filter} AND e.status <> 'done' AND {STATE_AT} \
             GROUP BY 1, 2, 3"
        );
        let mut values: Vec<Value> = vec![at.into()];
        values.extend(pic_values.iter().cloned());
        values.extend([at.into(), at.into()]);
        for row in db.query_all_raw(query(sql, values)).await? {
            let tally = tallies.entry(row.try_get("", "pic_id")?).or_default();
            let tasks = count(&row, "tasks")?;
            if is_end {
                tally.open_at_end += tasks;
                tally.overdue_at_end += tasks * count(&row, "overdue")?;
                tally.open_by_priority.add(Priority::from_rank(row.try_get("", "priority")?), tasks);
            } else {
                tally.open_at_start += tasks;
            }
        }
    }

    // Done at the end, and made done inside the period.
    let sql = format!(
        "SELECT e.pic_id AS pic_id, e.completed_at AS completed_at, e.task_created_at AS created_at, \
         e.started_at AS started_at, (SELECT c.deadline FROM task_events c WHERE c.task_id = e.task_id \
         AND c.created_at = e.completed_at AND c.status = 'done' ORDER BY c.seq LIMIT 1) AS due \
         FROM task_events e WHERE {pic_filter} AND e.status = 'done' AND e.completed_at >= ? AND {STATE_AT}"
    );
    let mut values = pic_values.clone();
    values.extend([start_at.into(), end_at.into(), end_at.into()]);
    let mut completions = Vec::new();
    for row in db.query_all_raw(query(sql, values)).await? {
        completions.push(Completion {
            pic_id: row.try_get("", "pic_id")?,
            completed_at: row.try_get("", "completed_at")?,
            created_at: row.try_get("", "created_at")?,
            started_at: row.try_get("", "started_at")?,
            due: row.try_get("", "due")?,
        });
    }

    // Tasks that became someone's, and tasks reopened, in the period: (person, task) pairs,
    // so a task counts once per person and once for the team.
    let in_period = "e.created_at >= ? AND e.created_at < ?";
    let newly_sql = format!(
        "SELECT DISTINCT e.pic_id AS pic_id, e.task_id AS task_id FROM task_events e \
         LEFT JOIN task_events p ON p.task_id = e.task_id AND p.seq = e.seq - 1 \
         WHERE {pic_filter} AND e.pic_id IS NOT NULL AND {in_period} AND e.kind <> 'task.deleted' \
         AND (p.task_id IS NULL OR p.pic_id IS NULL OR p.pic_id <> e.pic_id)"
    );
    let reopened_sql = format!(
        "SELECT DISTINCT e.pic_id AS pic_id, e.task_id AS task_id FROM task_events e \
         JOIN task_events p ON p.task_id = e.task_id AND p.seq = e.seq - 1 \
         WHERE {pic_filter} AND {in_period} AND e.kind = 'task.status_changed' \
         AND e.status <> 'done' AND p.status = 'done'"
    );
    let mut team_newly = HashSet::new();
    let mut team_reopened = HashSet::new();
    for (sql, reopened) in [(newly_sql, false), (reopened_sql, true)] {
        let mut values = pic_values.clone();
        values.extend([start_at.into(), end_at.into()]);
        for row in db.query_all_raw(query(sql, values)).await? {
            let tally = tallies.entry(row.try_get("", "pic_id")?).or_default();
            let task_id: i64 = row.try_get("", "task_id")?;
            if reopened {
                tally.reopened += 1;
                team_reopened.insert(task_id);
            } else {
                tally.newly_assigned += 1;
                team_newly.insert(task_id);
            }
        }
    }

    // Tasks created, per creator and bucket.
    let (actor_filter, actor_values) = owner_filter(owner, "actor_id");
    let mut bucket_case = String::from("CASE");
    let mut values: Vec<Value> = Vec::new();
    for (index, bucket) in buckets.iter().enumerate().skip(1) {
        bucket_case.push_str(&format!(" WHEN e.created_at < ? THEN {}", index - 1));
        values.push(crate::stored(bucket.start).into());
    }
    bucket_case =
        if values.is_empty() { "0".to_owned() } else { format!("{bucket_case} ELSE {} END", buckets.len() - 1) };
    let sql = format!(
        "SELECT e.actor_id AS actor_id, {bucket_case} AS bucket, COUNT(*) AS tasks FROM task_events e \
         WHERE {actor_filter} AND e.kind = 'task.created' AND {in_period} GROUP BY 1, 2"
    );
    let mut bound = values;
    bound.extend(actor_values);
    bound.extend([start_at.into(), end_at.into()]);
    let mut created_per_bucket = vec![0u64; buckets.len()];
    for row in db.query_all_raw(query(sql, bound)).await? {
        let tasks = count(&row, "tasks")?;
        tallies.entry(row.try_get("", "actor_id")?).or_default().created += tasks;
        if let Some(slot) = created_per_bucket.get_mut(count(&row, "bucket")? as usize) {
            *slot += tasks;
        }
    }

    let series = buckets
        .iter()
        .zip(created_per_bucket)
        .map(|(bucket, created)| {
            let (from, to) = (crate::stored(bucket.start), crate::stored(bucket.end));
            let completed = completions.iter().filter(|c| c.completed_at >= from && c.completed_at < to).count();
            SeriesPoint { date: bucket.date, created, completed: completed as u64 }
        })
        .collect();

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
                for (priority, count) in [
                    (Priority::Urgent, tally.open_by_priority.urgent),
                    (Priority::High, tally.open_by_priority.high),
                    (Priority::Medium, tally.open_by_priority.medium),
                    (Priority::Low, tally.open_by_priority.low),
                ] {
                    team.open_by_priority.add(priority, count);
                }
                if let Some(id) = pic {
                    let own = completions.iter().filter(|c| c.pic_id == Some(id));
                    by_user.insert(id, figures(tally, own));
                }
            }
            team.newly_assigned = team_newly.len() as u64;
            team.reopened = team_reopened.len() as u64;
            figures(team, completions.iter())
        }
    };
    Ok(Measured { total, by_user, series })
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
    let backend = db.get_database_backend();
    let at = crate::stored(at);
    let (pic_filter, mut values) = owner_filter(owner, "pic_id");
    values.extend([at.into(), at.into()]);
    let sql = format!(
        "SELECT e.task_id AS task_id, e.priority AS priority, e.deadline AS deadline, e.payload AS payload \
         FROM task_events e WHERE {pic_filter} AND e.status <> 'done' AND {STATE_AT} \
         ORDER BY e.priority DESC, CASE WHEN e.deadline IS NULL THEN 1 ELSE 0 END, e.deadline, e.task_id LIMIT 10"
    );
    let rows = db.query_all_raw(Statement::from_sql_and_values(backend, sql, values)).await?;
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
