//! Building reports as jobs: one [`GenerateReport`] per report, on demand or for every active
//! user when a period closes ([`ReportsDue`], run once per period across replicas through the
//! unique `report_runs` row), and the email a scheduled report sends once it is ready.

use chrono::{DateTime, Datelike, Days, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::{report_runs, reports, users};
use tasklane_jobs::{Job, NewJob, Transport};

use super::figures::{self, Bucket, Owner, Window};
use super::period::{Period, PeriodKind, start_of};
use super::{MemberFigures, ReportContent, ReportStatus, Scope, Wanted};
use crate::{AppContext, Result, queues};

/// Computes one stored report and stores its figures.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenerateReport {
    /// The report row.
    pub report_id: i64,
    /// When it was asked for: an older job finding a newer request leaves the work to it.
    pub requested_at: DateTime<Utc>,
}

impl Job for GenerateReport {
    const KIND: &'static str = "report.generate";
    const QUEUE: &'static str = queues::REPORTS;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("report:{}:{}", self.report_id, self.requested_at.timestamp_micros()))
    }
}

/// Looks for closed periods whose scheduled reports have not all been asked for yet.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReportsDue {
    /// The check's time slot.
    pub slot: i64,
}

impl Job for ReportsDue {
    const KIND: &'static str = "report.schedule";
    const QUEUE: &'static str = queues::MAINTENANCE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("reports_due:{}", self.slot))
    }
}

/// The spans of a report's series: each day of a week, or each ISO week (labelled by its
/// Monday, cut to the month) of a month.
pub fn buckets(period: &Period, zone: chrono_tz::Tz) -> Vec<Bucket> {
    let mut buckets = Vec::new();
    let mut day = period.first_day;
    while day <= period.last_day {
        let (label, next) = match period.kind {
            PeriodKind::Weekly => (day, day + Days::new(1)),
            PeriodKind::Monthly => {
                let monday = day - Days::new(u64::from(day.weekday().num_days_from_monday()));
                (monday, (monday + Days::new(7)).min(period.last_day + Days::new(1)))
            }
        };
        buckets.push(Bucket { date: label, start: start_of(day, zone), end: start_of(next, zone) });
        day = next;
    }
    buckets
}

/// What the report stored as `row` says now.
pub async fn content(app: &AppContext, row: &reports::Model) -> Result<ReportContent> {
    let zone = app.config.time_zone;
    let kind = PeriodKind::parse(&row.period)?;
    let period = Period::starting(kind, row.first_day, zone)?;
    let now = app.clock.now();
    let as_of = period.end.min(now);
    let owner = match (row.scope.as_str(), row.user_id) {
        ("me", Some(user_id)) => Owner::User(user_id),
        _ => Owner::Everyone,
    };
    let before = period.previous(zone);
    let window = Window { previous_start: before.start, start: period.start, end: as_of };
    let buckets = buckets(&period, zone);
    let (measured, top_open) = futures_util::try_join!(
        figures::measure(&app.db, owner, window, &buckets),
        figures::top_open(&app.db, owner, as_of)
    )?;
    // The period before is only complete when none of its events can have been pruned.
    let previous = (before.start >= crate::archive::retention_horizon(app, now)).then_some(measured.previous.total);
    let mut measured = measured.current;
    let members = match owner {
        Owner::User(_) => None,
        Owner::Everyone => {
            let people: Vec<(i64, String, String)> = users::Entity::find()
                .select_only()
                .columns([users::Column::Id, users::Column::Email, users::Column::DisplayName])
                .filter(users::Column::Disabled.eq(false))
                .order_by_asc(users::Column::Id)
                .into_tuple()
                .all(&app.db)
                .await?;
            Some(
                people
                    .into_iter()
                    .map(|(user_id, email, display_name)| MemberFigures {
                        figures: measured.by_user.remove(&user_id).unwrap_or_default(),
                        user_id,
                        email,
                        display_name,
                    })
                    .collect(),
            )
        }
    };
    Ok(ReportContent { figures: measured.total, previous, series: measured.series, top_open, members, as_of })
}

/// Runs [`GenerateReport`]: computes and stores the report; a scheduled personal report then
/// asks for its email, once. Returns the jobs to enqueue.
pub async fn generate(app: &AppContext, job: &GenerateReport) -> Result<Vec<NewJob>> {
    let Some(row) = reports::Entity::find_by_id(job.report_id).one(&app.db).await? else {
        return Ok(Vec::new()); // its user was deleted, and the report with them
    };
    if crate::stored(job.requested_at) < row.requested_at {
        return Ok(Vec::new()); // asked for again since: the newer job does it
    }
    let started = std::time::Instant::now();
    let body = match content(app, &row).await {
        // Written as text: a team report of thousands of members would take several times
        // its size as a JSON value tree.
        Ok(content) => serde_json::to_string(&content)?,
        Err(err) => {
            let reason: String = format!("{err:#}").chars().take(500).collect();
            reports::Entity::update_many()
                .col_expr(reports::Column::Status, Expr::value(ReportStatus::Failed.as_str()))
                .col_expr(reports::Column::Error, Expr::value(reason))
                .filter(reports::Column::Id.eq(row.id))
                .exec(&app.db)
                .await?;
            return Err(err);
        }
    };
    reports::Entity::update_many()
        .col_expr(reports::Column::Status, Expr::value(ReportStatus::Ready.as_str()))
        .col_expr(reports::Column::Body, Expr::value(body))
        .col_expr(reports::Column::Error, Expr::value(Option::<String>::None))
        .col_expr(reports::Column::GeneratedAt, Expr::value(crate::stored(app.clock.now())))
        .filter(reports::Column::Id.eq(row.id))
        .exec(&app.db)
        .await?;
    metrics::counter!("tasklane_reports_generated_total", "period" => row.period.clone()).increment(1);
    metrics::histogram!("tasklane_report_generation_seconds").record(started.elapsed().as_secs_f64());
    if !row.scheduled || row.scope != Scope::Me.as_str() || row.emailed_at.is_some() {
        return Ok(Vec::new());
    }
    // The email is a notification row unique to this report, so of two copies of this job
    // one writes it and both enqueue the same send, which goes out once. Nothing is written
    // for people who turned report emails off.
    let Some(email) = crate::notify::reports::report_ready(app, &row).await? else {
        return Ok(Vec::new());
    };
    reports::Entity::update_many()
        .col_expr(reports::Column::EmailedAt, Expr::value(crate::stored(app.clock.now())))
        .filter(reports::Column::Id.eq(row.id))
        .filter(reports::Column::EmailedAt.is_null())
        .exec(&app.db)
        .await?;
    Ok(vec![email])
}

/// Users asked for per step of a scheduled run.
const RUN_CHUNK: u64 = 500;

/// Runs [`ReportsDue`]: for the last closed week and month, makes sure every active user's
/// report (and the team's) has been asked for, enqueueing their jobs in chunks of
/// [`RUN_CHUNK`]. A run is one row per period, so the schedule firing on several replicas,
/// or again after a crash, continues one run instead of starting another; reports are
/// unique per user and period, and each is emailed once.
pub async fn schedule(app: &AppContext, transport: &dyn Transport, now: DateTime<Utc>) -> Result<u64> {
    let zone = app.config.time_zone;
    let mut enqueued = 0;
    for kind in [PeriodKind::Weekly, PeriodKind::Monthly] {
        let period = Period::containing(kind, now, zone).previous(zone);
        if period.start < crate::archive::retention_horizon(app, now) {
            continue;
        }
        enqueued += run(app, transport, period, now).await?;
    }
    Ok(enqueued)
}

/// Asks for the report of `period` of every active user who had joined by its end (and the
/// team's), continuing the period's run where it stopped; returns how many report jobs were
/// enqueued.
pub async fn run(app: &AppContext, transport: &dyn Transport, period: Period, now: DateTime<Utc>) -> Result<u64> {
    use sea_orm::sea_query::ExprTrait;
    let find = || {
        report_runs::Entity::find()
            .filter(report_runs::Column::Period.eq(period.kind.as_str()))
            .filter(report_runs::Column::FirstDay.eq(period.first_day))
            .one(&app.db)
    };
    report_runs::Entity::insert(report_runs::ActiveModel {
        period: Set(period.kind.as_str().to_owned()),
        first_day: Set(period.first_day),
        last_user_id: Set(0),
        enqueued: Set(0),
        started_at: Set(crate::stored(now)),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([report_runs::Column::Period, report_runs::Column::FirstDay])
            .do_nothing_on([report_runs::Column::Id])
            .to_owned(),
    )
    .exec_without_returning(&app.db)
    .await?;
    let mut enqueued = 0u64;
    loop {
        let Some(run) = find().await? else { return Ok(enqueued) };
        if run.finished_at.is_some() {
            return Ok(enqueued);
        }
        // People who joined after the period get no report of it.
        let people = active_users(app, run.last_user_id, Some(RUN_CHUNK), Some(period.end)).await?;
        let Some(&last) = people.last() else {
            report_runs::Entity::update_many()
                .col_expr(report_runs::Column::FinishedAt, Expr::value(crate::stored(now)))
                .filter(report_runs::Column::Id.eq(run.id))
                .exec(&app.db)
                .await?;
            return Ok(enqueued);
        };
        let mut jobs = Vec::with_capacity(people.len() + 1);
        if run.last_user_id == 0 {
            // The team's report reads every task: it goes first, to run beside the others.
            let wanted = Wanted { scope: Scope::Team, user_id: 0, period };
            jobs.extend(super::request(app, wanted).await?.1);
        }
        jobs.extend(ask_for_chunk(app, &people, period, crate::stored(run.started_at.and_utc())).await?);
        let count = jobs.len() as i32;
        transport.enqueue(jobs).await?;
        // Move the cursor only from where this step began: a replica running the same step
        // at once enqueued the same jobs (same dedup keys), and one of the two moves it.
        report_runs::Entity::update_many()
            .col_expr(report_runs::Column::LastUserId, Expr::value(last))
            .col_expr(report_runs::Column::Enqueued, Expr::col(report_runs::Column::Enqueued).add(count))
            .filter(report_runs::Column::Id.eq(run.id))
            .filter(report_runs::Column::LastUserId.eq(run.last_user_id))
            .exec(&app.db)
            .await?;
        enqueued += count as u64;
    }
}

/// Active users with ids above `after` (up to `limit` of them), in id order; with
/// `joined_before`, only those whose account existed by then.
pub async fn active_users(
    app: &AppContext,
    after: i64,
    limit: Option<u64>,
    joined_before: Option<DateTime<Utc>>,
) -> Result<Vec<i64>> {
    let mut select = users::Entity::find()
        .select_only()
        .column(users::Column::Id)
        .filter(users::Column::Disabled.eq(false))
        .filter(users::Column::Id.gt(after));
    if let Some(at) = joined_before {
        select = select.filter(users::Column::CreatedAt.lt(crate::stored(at)));
    }
    Ok(select.order_by_asc(users::Column::Id).limit(limit).into_tuple().all(&app.db).await?)
}

/// Stores pending scheduled reports for `people` (keeping any that exist) and returns their jobs.
async fn ask_for_chunk(
    app: &AppContext,
    people: &[i64],
    period: Period,
    requested_at: chrono::NaiveDateTime,
) -> Result<Vec<NewJob>> {
    use sea_orm::sea_query::ExprTrait;
    let keys: Vec<String> = people.iter().map(|id| super::subject(Scope::Me, *id)).collect();
    let rows = people.iter().map(|id| super::pending_row(Scope::Me, *id, period, true, requested_at));
    reports::Entity::insert_many(rows).on_conflict(super::same_report()).exec_without_returning(&app.db).await?;
    // Reports asked for earlier on demand become scheduled ones (emailed once ready).
    let key_filter = || {
        Expr::col(reports::Column::Subject)
            .is_in(keys.clone())
            .and(Expr::col(reports::Column::Period).eq(period.kind.as_str()))
            .and(Expr::col(reports::Column::FirstDay).eq(period.first_day))
    };
    reports::Entity::update_many()
        .col_expr(reports::Column::Scheduled, Expr::value(true))
        .col_expr(reports::Column::Status, Expr::value(ReportStatus::Pending.as_str()))
        .col_expr(reports::Column::RequestedAt, Expr::value(requested_at))
        .filter(key_filter())
        .filter(reports::Column::Scheduled.eq(false))
        .exec(&app.db)
        .await?;
    let ids: Vec<i64> = reports::Entity::find()
        .select_only()
        .column(reports::Column::Id)
        .filter(key_filter())
        .filter(reports::Column::EmailedAt.is_null())
        .into_tuple()
        .all(&app.db)
        .await?;
    let requested_at = requested_at.and_utc();
    Ok(ids
        .into_iter()
        .map(|report_id| NewJob::of(&GenerateReport { report_id, requested_at }))
        .collect::<serde_json::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_cut_into_its_iso_weeks_and_a_week_into_days() {
        let utc = chrono_tz::Tz::UTC;
        // March 2027 begins on a Monday and ends on a Wednesday: five ISO weeks.
        let march = Period::starting(PeriodKind::Monthly, "2027-03-01".parse().unwrap(), utc).unwrap();
        let weeks = buckets(&march, utc);
        let labels: Vec<String> = weeks.iter().map(|b| b.date.to_string()).collect();
        assert_eq!(labels, ["2027-03-01", "2027-03-08", "2027-03-15", "2027-03-22", "2027-03-29"]);
        assert_eq!(weeks[4].end, march.end);
        // December 2026 begins on a Tuesday: its first bucket is labelled with Monday 30 November.
        let december = Period::starting(PeriodKind::Monthly, "2026-12-01".parse().unwrap(), utc).unwrap();
        let first = buckets(&december, utc)[0];
        assert_eq!((first.date.to_string(), first.start), ("2026-11-30".to_owned(), december.start));
        let week = Period::starting(PeriodKind::Weekly, "2026-11-30".parse().unwrap(), utc).unwrap();
        assert_eq!(buckets(&week, utc).len(), 7);
    }
}
