//! Weekly and monthly progress reports: what one person (or the whole team) took on and got
//! done in a period, computed in the database from the task events ([`figures`]), built by
//! jobs ([`generate`]) on demand or when a period closes, stored one per (subject, period,
//! start), and read as JSON, CSV or Markdown ([`export`]).

pub mod export;
pub mod figures;
pub mod generate;
pub mod period;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::reports;
use tasklane_jobs::NewJob;

use crate::auth::Principal;
use crate::{AppContext, Error, Result};
use figures::{Figures, OpenTask, SeriesPoint};
use period::{Period, PeriodKind};

/// Whose work a report covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// The signed-in user's own tasks.
    #[default]
    Me,
    /// Everyone's, with each active member's figures (admins only).
    Team,
}

impl Scope {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Me => "me",
            Self::Team => "team",
        }
    }

    /// Reads `me` or `team`.
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim() {
            "me" => Ok(Self::Me),
            "team" => Ok(Self::Team),
            other => Err(Error::invalid("invalid_scope", format!("scope '{other}' is not me or team"))),
        }
    }
}

/// Where a report's generation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    /// Waiting for its job (figures shown, if any, are the previous generation's).
    Pending,
    /// Figures computed.
    Ready,
    /// The last attempt failed; the job retries on its own.
    Failed,
}

impl ReportStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ready => "ready",
            Self::Failed => "failed",
        }
    }

    fn from_stored(raw: &str) -> Self {
        match raw {
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// One active member's figures in a team report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberFigures {
    /// The member.
    pub user_id: i64,
    /// Their email.
    pub email: String,
    /// Their display name.
    pub display_name: String,
    /// Their figures.
    pub figures: Figures,
}

/// What a generated report says (stored as the report's body).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportContent {
    /// The figures of the period.
    pub figures: Figures,
    /// The same figures for the period before (null when its events are past retention).
    pub previous: Option<Figures>,
    /// Created and completed per day (weekly) or per ISO week (monthly).
    pub series: Vec<SeriesPoint>,
    /// The ten most urgent tasks open at the end.
    pub top_open: Vec<OpenTask>,
    /// Team reports: one entry per active member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<MemberFigures>>,
    /// The instant the figures describe: the period's end, or the generation time while the
    /// period is still running.
    pub as_of: DateTime<Utc>,
}

/// A report as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportView {
    /// Report id.
    pub id: i64,
    /// `me` or `team`.
    pub scope: Scope,
    /// Whose report it is (null for team reports).
    pub user_id: Option<i64>,
    /// `weekly` or `monthly`.
    pub period: PeriodKind,
    /// The period's first day.
    pub start: NaiveDate,
    /// The period's last day.
    pub end: NaiveDate,
    /// The period's first instant.
    pub starts_at: DateTime<Utc>,
    /// The first instant after the period.
    pub ends_at: DateTime<Utc>,
    /// `pending`, `ready` or `failed`.
    pub status: ReportStatus,
    /// When the figures were computed.
    pub generated_at: Option<DateTime<Utc>>,
    /// Why the last generation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The figures, series and open tasks, once generated.
    #[serde(flatten)]
    pub content: Option<ReportContent>,
}

impl ReportView {
    fn from_row(row: reports::Model) -> Result<Self> {
        let period = PeriodKind::parse(&row.period)?;
        let content = match row.body {
            Some(body) => Some(
                serde_json::from_value(body)
                    .map_err(|err| anyhow::anyhow!("report {} has an unreadable body: {err}", row.id))?,
            ),
            None => None,
        };
        Ok(Self {
            id: row.id,
            scope: Scope::parse(&row.scope)?,
            user_id: row.user_id,
            period,
            start: row.first_day,
            end: period.last_day(row.first_day),
            starts_at: row.period_start.and_utc(),
            ends_at: row.period_end.and_utc(),
            status: ReportStatus::from_stored(&row.status),
            generated_at: row.generated_at.map(|at| at.and_utc()),
            error: row.error,
            content,
        })
    }
}

/// `POST /api/reports` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// `weekly` or `monthly`.
    pub period: String,
    /// The period's first day (`YYYY-MM-DD`: a Monday, or the 1st); the current period when absent.
    #[serde(default)]
    pub start: Option<String>,
    /// `me` (default) or `team` (admins).
    #[serde(default)]
    pub scope: Option<String>,
}

/// Who a report is about, as its unique key spells it.
fn subject(scope: Scope, user_id: i64) -> String {
    match scope {
        Scope::Me => format!("user:{user_id}"),
        Scope::Team => "team".to_owned(),
    }
}

/// Parses a period's first day, `YYYY-MM-DD`.
pub fn parse_day(raw: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
        .map_err(|_| Error::bad_request("invalid_date", format!("start '{}' is not a date (YYYY-MM-DD)", raw.trim())))
}

/// A parsed report request: which report, about whom.
#[derive(Clone, Copy, Debug)]
pub struct Wanted {
    /// Me or team.
    pub scope: Scope,
    /// The user for `me`.
    pub user_id: i64,
    /// The period.
    pub period: Period,
}

impl Wanted {
    /// Reads a request made by `who` at `now`: the period must have begun, and team reports
    /// are for admins.
    pub fn parse(app: &AppContext, who: &Principal, request: &ReportRequest) -> Result<Self> {
        let kind = PeriodKind::parse(&request.period)?;
        let first_day = request.start.as_deref().filter(|s| !s.trim().is_empty()).map(parse_day).transpose()?;
        let scope = request.scope.as_deref().map(Scope::parse).transpose()?.unwrap_or_default();
        if scope == Scope::Team && !who.is_admin() {
            return Err(Error::forbidden("team reports are for admins"));
        }
        let period = Period::requested(kind, first_day, app.clock.now(), app.config.time_zone)?;
        Ok(Self { scope, user_id: who.user_id, period })
    }
}

/// Asks for a report: stores it as pending (or marks an existing one pending again, keeping
/// its figures until the new ones replace them) and returns it with the job that fills it in.
/// A period whose events are past retention keeps its stored report or is refused.
pub async fn request(app: &AppContext, wanted: Wanted) -> Result<(ReportView, Option<NewJob>)> {
    let now = app.clock.now();
    let key = subject(wanted.scope, wanted.user_id);
    let period = wanted.period;
    let horizon = crate::archive::retention_horizon(app, now);
    if period.start < horizon {
        let stored = find_by_key(app, &key, period).await?;
        return match stored {
            Some(row) if row.status == ReportStatus::Ready.as_str() => Ok((ReportView::from_row(row)?, None)),
            _ => Err(Error::invalid(
                "period_past_retention",
                format!(
                    "task events older than {} days are pruned (TASKLANE_EVENT_RETENTION_DAYS), so the period \
                     starting {} can no longer be computed",
                    app.config.archive.retention_days, period.first_day
                ),
            )),
        };
    }
    // Insert, or leave the existing row for the update below: concurrent requests for one
    // report meet on the unique key.
    let row = pending_row(wanted.scope, wanted.user_id, period, false, crate::stored(now));
    reports::Entity::insert(row).on_conflict(same_report()).exec_without_returning(&app.db).await?;
    reports::Entity::update_many()
        .col_expr(reports::Column::Status, Expr::value(ReportStatus::Pending.as_str()))
        .col_expr(reports::Column::RequestedAt, Expr::value(crate::stored(now)))
        .filter(reports::Column::Subject.eq(&key))
        .filter(reports::Column::Period.eq(period.kind.as_str()))
        .filter(reports::Column::FirstDay.eq(period.first_day))
        .exec(&app.db)
        .await?;
    let row = find_by_key(app, &key, period)
        .await?
        .ok_or_else(|| anyhow::anyhow!("report {key} vanished right after it was stored"))?;
    let job = NewJob::of(&generate::GenerateReport { report_id: row.id, requested_at: now })?;
    Ok((ReportView::from_row(row)?, Some(job)))
}

/// A new pending report row of `scope` (about `user_id` for `me`) for `period`.
fn pending_row(
    scope: Scope,
    user_id: i64,
    period: Period,
    scheduled: bool,
    requested_at: chrono::NaiveDateTime,
) -> reports::ActiveModel {
    reports::ActiveModel {
        subject: Set(subject(scope, user_id)),
        scope: Set(scope.as_str().to_owned()),
        user_id: Set((scope == Scope::Me).then_some(user_id)),
        period: Set(period.kind.as_str().to_owned()),
        first_day: Set(period.first_day),
        period_start: Set(crate::stored(period.start)),
        period_end: Set(crate::stored(period.end)),
        status: Set(ReportStatus::Pending.as_str().to_owned()),
        scheduled: Set(scheduled),
        requested_at: Set(requested_at),
        ..Default::default()
    }
}

/// Inserting a report that exists already (same subject, period and start) leaves the stored one.
fn same_report() -> OnConflict {
    OnConflict::columns([reports::Column::Subject, reports::Column::Period, reports::Column::FirstDay])
        .do_nothing_on([reports::Column::Id])
        .to_owned()
}

/// [`request`]s an on-demand report and enqueues its job on the configured transport; the
/// flag says whether a job was enqueued (not for a stored report past retention).
pub async fn ask(app: &AppContext, wanted: Wanted) -> Result<(ReportView, bool)> {
    let (report, job) = request(app, wanted).await?;
    let Some(job) = job else { return Ok((report, false)) };
    app.transport().await?.enqueue(vec![job]).await?;
    Ok((report, true))
}

async fn find_by_key(app: &AppContext, key: &str, period: Period) -> Result<Option<reports::Model>> {
    Ok(reports::Entity::find()
        .filter(reports::Column::Subject.eq(key))
        .filter(reports::Column::Period.eq(period.kind.as_str()))
        .filter(reports::Column::FirstDay.eq(period.first_day))
        .one(&app.db)
        .await?)
}

/// One report, whoever asks (jobs and operators).
pub async fn load(app: &AppContext, id: i64) -> Result<ReportView> {
    match reports::Entity::find_by_id(id).one(&app.db).await? {
        Some(row) => ReportView::from_row(row),
        None => Err(Error::not_found(format!("report {id} does not exist"))),
    }
}

/// May `who` read `row`? Their own reports, and everything for admins.
fn may_read(who: &Principal, row: &reports::Model) -> bool {
    who.is_admin() || (row.scope == Scope::Me.as_str() && row.user_id == Some(who.user_id))
}

/// One report, if `who` may read it (404 otherwise, so ids reveal nothing).
pub async fn get(app: &AppContext, who: &Principal, id: i64) -> Result<ReportView> {
    let row = reports::Entity::find_by_id(id).one(&app.db).await?.filter(|row| may_read(who, row));
    match row {
        Some(row) => ReportView::from_row(row),
        None => Err(Error::not_found(format!("report {id} does not exist"))),
    }
}

/// `GET /api/reports` query.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ReportListQuery {
    /// Only `weekly` or `monthly` reports.
    pub period: Option<String>,
    /// `me` (default: your own) or `team` (admins).
    pub scope: Option<String>,
    /// Page size, 1 to 100 (default 20).
    pub limit: Option<u64>,
    /// `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// A page of reports, newest period first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportPage {
    /// The reports.
    pub reports: Vec<ReportView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The reports of `user_id` (or the team reports), newest period first.
pub async fn list(app: &AppContext, who: &Principal, user_id: i64, query: &ReportListQuery) -> Result<ReportPage> {
    let scope = query.scope.as_deref().map(Scope::parse).transpose()?.unwrap_or_default();
    if (scope == Scope::Team || user_id != who.user_id) && !who.is_admin() {
        return Err(Error::forbidden("only admins may list team reports or other people's"));
    }
    list_of(app, scope, user_id, query).await
}

/// The reports of `user_id` (or the team's), newest period first, for operators.
pub async fn list_of(app: &AppContext, scope: Scope, user_id: i64, query: &ReportListQuery) -> Result<ReportPage> {
    let limit = crate::paging::limit(query.limit, 20)?;
    let mut select = reports::Entity::find().filter(reports::Column::Subject.eq(subject(scope, user_id)));
    if let Some(period) = query.period.as_deref() {
        select = select.filter(reports::Column::Period.eq(PeriodKind::parse(period)?.as_str()));
    }
    if let Some(cursor) = query.cursor.as_deref() {
        let (start, id) = decode_cursor(cursor)?;
        select = select.filter(
            Condition::any()
                .add(reports::Column::PeriodStart.lt(start))
                .add(Condition::all().add(reports::Column::PeriodStart.eq(start)).add(reports::Column::Id.lt(id))),
        );
    }
    let mut rows = select
        .order_by_desc(reports::Column::PeriodStart)
        .order_by_desc(reports::Column::Id)
        .limit(limit + 1)
        .all(&app.db)
        .await?;
    let next_cursor = crate::paging::cut(&mut rows, limit, |last| encode_cursor(last.period_start, last.id));
    let reports = rows.into_iter().map(ReportView::from_row).collect::<Result<_>>()?;
    Ok(ReportPage { reports, next_cursor })
}

fn encode_cursor(start: chrono::NaiveDateTime, id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{id}", start.and_utc().timestamp_micros()))
}

fn decode_cursor(raw: &str) -> Result<(chrono::NaiveDateTime, i64)> {
    let bad = crate::paging::bad_cursor;
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?).map_err(|_| bad())?;
    let (micros, id) = text.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let start = DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(bad)?;
    Ok((crate::stored(start), id.parse().map_err(|_| bad())?))
}
