//! `tasklane reports`: generate weekly and monthly reports now (or enqueue them), list, show
//! and export them.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tasklane_core::AppContext;
use tasklane_core::reports::export::{self, Format as ExportFormat};
use tasklane_core::reports::generate::{GenerateReport, generate};
use tasklane_core::reports::period::{Period, PeriodKind};
use tasklane_core::reports::{self, ReportListQuery, ReportView, Scope, Wanted};

use crate::{Format, output};

/// A period length on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PeriodArg {
    /// ISO week, Monday to Sunday.
    Weekly,
    /// Calendar month.
    Monthly,
}

impl From<PeriodArg> for PeriodKind {
    fn from(arg: PeriodArg) -> Self {
        match arg {
            PeriodArg::Weekly => Self::Weekly,
            PeriodArg::Monthly => Self::Monthly,
        }
    }
}

/// An export format on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportArg {
    /// One row per figure and per series value.
    Csv,
    /// Markdown tables.
    Md,
    /// The API's JSON.
    Json,
}

/// Report commands.
#[derive(Subcommand)]
pub enum ReportsAction {
    /// Compute reports now (or enqueue them with --async) for one user, everyone, or the team.
    Generate {
        /// Week or month.
        #[arg(long, value_enum)]
        period: PeriodArg,
        /// The period's first day (a Monday, or the 1st); the current period when absent.
        #[arg(long)]
        start: Option<String>,
        /// One user (email or id).
        #[arg(long, conflicts_with_all = ["all", "team"], required_unless_present_any = ["all", "team"])]
        user: Option<String>,
        /// Every active user.
        #[arg(long, conflicts_with = "team")]
        all: bool,
        /// The team report.
        #[arg(long)]
        team: bool,
        /// Enqueue the jobs for the workers instead of computing here.
        #[arg(long = "async")]
        run_async: bool,
    },
    /// List stored reports, newest period first.
    List {
        /// Whose reports (email or id); the team's with --team.
        #[arg(long, conflicts_with = "team", required_unless_present = "team")]
        user: Option<String>,
        /// Team reports.
        #[arg(long)]
        team: bool,
        /// Only weekly or monthly ones.
        #[arg(long, value_enum)]
        period: Option<PeriodArg>,
        /// How many (1 to 100).
        #[arg(long, default_value_t = 20)]
        limit: u64,
    },
    /// Show one report's figures.
    Show {
        /// Report id.
        id: i64,
    },
    /// Write one report as CSV, Markdown or JSON.
    Export {
        /// Report id.
        id: i64,
        /// The format.
        #[arg(long, value_enum)]
        format: ExportArg,
        /// Write here instead of standard output.
        #[arg(long, short = 'f')]
        file: Option<PathBuf>,
    },
}

/// Runs a reports command.
pub async fn run(ctx: &AppContext, action: ReportsAction, format: Format) -> anyhow::Result<()> {
    match action {
        ReportsAction::Generate { period, start, user, all, team, run_async } => {
            let first_day = start.as_deref().map(reports::parse_day).transpose()?;
            let period = Period::requested(period.into(), first_day, ctx.clock.now(), ctx.config.time_zone)?;
            let subjects: Vec<(Scope, i64)> = if team {
                vec![(Scope::Team, 0)]
            } else if all {
                tasklane_core::reports::generate::active_users(ctx, 0, None, None)
                    .await?
                    .into_iter()
                    .map(|id| (Scope::Me, id))
                    .collect()
            } else {
                let user = user.ok_or_else(|| anyhow::anyhow!("give --user EMAIL, --all or --team"))?;
                vec![(Scope::Me, tasklane_core::accounts::find_user(ctx, &user).await?.id)]
            };
            generate_all(ctx, &subjects, period, run_async, format).await
        }
        ReportsAction::List { user, team, period, limit } => {
            let (scope, user_id) = match (team, user) {
                (true, _) => (Scope::Team, 0),
                (false, Some(user)) => (Scope::Me, tasklane_core::accounts::find_user(ctx, &user).await?.id),
                (false, None) => anyhow::bail!("give --user EMAIL or --team"),
            };
            let query = ReportListQuery {
                period: period.map(|p| PeriodKind::from(p).as_str().to_owned()),
                limit: Some(limit),
                ..ReportListQuery::default()
            };
            let page = reports::list_of(ctx, scope, user_id, &query).await?;
            output::print(
                format,
                &["id", "scope", "user", "period", "start", "end", "status", "generated"],
                page.reports.iter().map(summary_row),
                &page.reports,
            )
        }
        ReportsAction::Show { id } => {
            let report = reports::load(ctx, id).await?;
            show(&report, format)
        }
        ReportsAction::Export { id, format: export_format, file } => {
            let report = reports::load(ctx, id).await?;
            let export_format = match export_format {
                ExportArg::Csv => ExportFormat::Csv,
                ExportArg::Md => ExportFormat::Markdown,
                ExportArg::Json => ExportFormat::Json,
            };
            let text = export::render(&report, export_format)?;
            match file {
                Some(path) => {
                    std::fs::write(&path, text)
                        .map_err(|err| anyhow::anyhow!("cannot write {}: {err}", path.display()))?;
                    eprintln!("wrote report {id} to {}", path.display());
                }
                None => print!("{text}"),
            }
            Ok(())
        }
    }
}

/// How many reports are computed at once here.
const CONCURRENCY: usize = 4;

/// Asks for every report and computes it here (or enqueues it), with a progress bar for
/// more than one on a terminal.
async fn generate_all(
    ctx: &AppContext,
    subjects: &[(Scope, i64)],
    period: Period,
    run_async: bool,
    format: Format,
) -> anyhow::Result<()> {
    use futures_util::{StreamExt, TryStreamExt};
    let progress = if subjects.len() > 1 && std::io::stderr().is_terminal() {
        ProgressBar::new(subjects.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)") {
        progress.set_style(style.progress_chars("#>-"));
    }
    progress.set_message(format!("{} reports", period.kind.as_str()));
    let transport = if run_async { Some(ctx.transport().await?) } else { None };
    let done: Vec<ReportView> = futures_util::stream::iter(subjects.iter().copied())
        .map(|(scope, user_id)| {
            let transport = transport.clone();
            let progress = progress.clone();
            async move {
                let (report, job) = reports::request(ctx, Wanted { scope, user_id, period }).await?;
                let report = match (job, transport) {
                    (None, _) => report,
                    (Some(job), Some(transport)) => {
                        transport.enqueue(vec![job]).await?;
                        report
                    }
                    (Some(job), None) => {
                        let job: GenerateReport = serde_json::from_value(job.payload)?;
                        generate(ctx, &job).await?;
                        reports::load(ctx, report.id).await?
                    }
                };
                progress.inc(1);
                anyhow::Ok(report)
            }
        })
        .buffered(CONCURRENCY)
        .try_collect()
        .await?;
    progress.finish_and_clear();
    if done.len() == 1 && !run_async {
        return show(&done[0], format);
    }
    let verb = if run_async { "enqueued" } else { "generated" };
    match format {
        Format::Json => println!(
            "{}",
            serde_json::json!({ verb: done.len(), "reports": done.iter().map(|r| r.id).collect::<Vec<_>>() })
        ),
        Format::Table => println!(
            "{verb} {} {} report(s) for {} to {}",
            done.len(),
            period.kind.as_str(),
            period.first_day,
            period.last_day
        ),
    }
    Ok(())
}

fn summary_row(report: &ReportView) -> Vec<String> {
    vec![
        report.id.to_string(),
        report.scope.as_str().to_owned(),
        report.user_id.map(|id| id.to_string()).unwrap_or_else(|| "-".into()),
        report.period.as_str().to_owned(),
        report.start.to_string(),
        report.end.to_string(),
        report.status.as_str().to_owned(),
        report.generated_at.map(|at| at.to_rfc3339()).unwrap_or_else(|| "-".into()),
    ]
}

/// Prints one report: its figures beside the previous period's, then the series.
fn show(report: &ReportView, format: Format) -> anyhow::Result<()> {
    if format == Format::Json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let whose = report.user_id.map_or_else(|| "the team".to_owned(), |id| format!("user {id}"));
    println!(
        "report {}: {} report for {whose}, {} to {} ({})",
        report.id,
        report.period.as_str(),
        report.start,
        report.end,
        report.status.as_str()
    );
    let Some(content) = &report.content else { return Ok(()) };
    println!();
    let previous = content.previous.as_ref().map(export::figure_rows);
    let rows = export::figure_rows(&content.figures).into_iter().enumerate().map(|(index, (name, value))| {
        let before = previous.as_ref().and_then(|rows| rows.get(index)).map(|(_, v)| v.clone()).unwrap_or_default();
        vec![name.to_owned(), value, before]
    });
    output::print(format, &["figure", "this period", "previous"], rows, &())?;
    println!();
    let series =
        content.series.iter().map(|p| vec![p.date.to_string(), p.created.to_string(), p.completed.to_string()]);
    output::print(format, &["date", "created", "completed"], series, &())
}
