//! A report as a download: JSON, CSV (long form, one row per figure and per series value, for
//! spreadsheets and pivot tables) or Markdown (tables for a wiki or a chat message).

use comfy_table::{Table, presets::ASCII_MARKDOWN};

use super::ReportView;
use super::figures::Figures;
use crate::{Error, Result};

/// A download format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The API's JSON.
    Json,
    /// Comma-separated values.
    Csv,
    /// Markdown tables.
    Markdown,
}

impl Format {
    /// Reads `json`, `csv` or `md` (`markdown`).
    pub fn parse(raw: &str) -> Result<Self> {
        match raw.trim() {
            "json" => Ok(Self::Json),
            "csv" => Ok(Self::Csv),
            "md" | "markdown" => Ok(Self::Markdown),
            other => Err(Error::bad_request("invalid_format", format!("format '{other}' is not json, csv or md"))),
        }
    }

    /// Its media type.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8",
            Self::Markdown => "text/markdown; charset=utf-8",
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Markdown => "md",
        }
    }
}

/// The file name a download is saved under, e.g. `tasklane-weekly-2026-11-23-me-12.csv`.
pub fn filename(report: &ReportView, format: Format) -> String {
    format!(
        "tasklane-{}-{}-{}-{}.{}",
        report.period.as_str(),
        report.start,
        report.scope.as_str(),
        report.id,
        format.extension()
    )
}

/// Every figure by name, in the order reports list them, with its value as text (empty for null).
pub fn figure_rows(figures: &Figures) -> Vec<(&'static str, String)> {
    let count = |n: u64| n.to_string();
    let optional = |value: Option<i64>| value.map(|v| v.to_string()).unwrap_or_default();
    vec![
        ("open_at_start", count(figures.open_at_start)),
        ("newly_assigned", count(figures.newly_assigned)),
        ("completed", count(figures.completed)),
        ("completed_on_time", count(figures.completed_on_time)),
        ("completed_late", count(figures.completed_late)),
        ("reopened", count(figures.reopened)),
        ("open_at_end", count(figures.open_at_end)),
        ("overdue_at_end", count(figures.overdue_at_end)),
        ("created", count(figures.created)),
        ("completion_rate", figures.completion_rate.map(|r| r.to_string()).unwrap_or_default()),
        ("lead_time_p50_secs", optional(figures.lead_time_p50_secs)),
        ("lead_time_p85_secs", optional(figures.lead_time_p85_secs)),
        ("cycle_time_p50_secs", optional(figures.cycle_time_p50_secs)),
        ("cycle_time_p85_secs", optional(figures.cycle_time_p85_secs)),
        ("open_by_priority.urgent", count(figures.open_by_priority.urgent)),
        ("open_by_priority.high", count(figures.open_by_priority.high)),
        ("open_by_priority.medium", count(figures.open_by_priority.medium)),
        ("open_by_priority.low", count(figures.open_by_priority.low)),
    ]
}

/// The report in `format`.
pub fn render(report: &ReportView, format: Format) -> Result<String> {
    match format {
        Format::Json => Ok(serde_json::to_string_pretty(report)?),
        Format::Csv => csv(report),
        Format::Markdown => Ok(markdown(report)),
    }
}

fn csv(report: &ReportView) -> Result<String> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let write = |out: &mut csv::Writer<Vec<u8>>, row: [&str; 6]| {
        out.write_record(row).map_err(|err| anyhow::anyhow!("cannot write CSV: {err}"))
    };
    write(&mut out, ["section", "user_id", "name", "date", "value", "previous"])?;
    if let Some(content) = &report.content {
        let user = report.user_id.map(|id| id.to_string()).unwrap_or_default();
        let previous = content.previous.as_ref().map(figure_rows);
        for (index, (name, value)) in figure_rows(&content.figures).into_iter().enumerate() {
            let before = previous.as_ref().and_then(|rows| rows.get(index)).map(|(_, v)| v.as_str()).unwrap_or("");
            write(&mut out, ["figures", &user, name, "", &value, before])?;
        }
        for point in &content.series {
            let date = point.date.to_string();
            write(&mut out, ["series", &user, "created", &date, &point.created.to_string(), ""])?;
            write(&mut out, ["series", &user, "completed", &date, &point.completed.to_string(), ""])?;
        }
        for member in content.members.iter().flatten() {
            let id = member.user_id.to_string();
            for (name, value) in figure_rows(&member.figures) {
                write(&mut out, ["member", &id, name, "", &value, ""])?;
            }
        }
    }
    let bytes = out.into_inner().map_err(|err| anyhow::anyhow!("cannot write CSV: {err}"))?;
    Ok(String::from_utf8(bytes).map_err(|err| anyhow::anyhow!("CSV is not UTF-8: {err}"))?)
}

/// Text safe inside a Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('\\', "\\\\").replace('|', "\\|").replace(['\n', '\r'], " ")
}

fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut table = Table::new();
    table.load_preset(ASCII_MARKDOWN).set_header(header.to_vec());
    for row in rows {
        table.add_row(row.iter().map(|text| cell(text)).collect::<Vec<_>>());
    }
    table.to_string()
}

fn markdown(report: &ReportView) -> String {
    let whose = match report.user_id {
        Some(id) => format!("user {id}"),
        None => "the team".to_owned(),
    };
    let mut out = format!(
        "# {} report for {whose}: {} to {}\n\nStatus: {}",
        report.period.as_str(),
        report.start,
        report.end,
        report.status.as_str()
    );
    let Some(content) = &report.content else {
        out.push_str(" (not generated yet)\n");
        return out;
    };
    out.push_str(&format!(", figures as of {}\n\n## Figures\n\n", content.as_of.to_rfc3339()));
    let previous = content.previous.as_ref().map(figure_rows);
    let rows = figure_rows(&content.figures).into_iter().enumerate().map(|(index, (name, value))| {
        let before = previous.as_ref().and_then(|rows| rows.get(index)).map(|(_, v)| v.clone()).unwrap_or_default();
        vec![name.to_owned(), value, before]
    });
    out.push_str(&table(&["Figure", "This period", "Previous period"], rows));
    out.push_str("\n\n## Created vs completed\n\n");
    let rows = content.series.iter().map(|p| vec![p.date.to_string(), p.created.to_string(), p.completed.to_string()]);
    out.push_str(&table(&["Date", "Created", "Completed"], rows));
    if !content.top_open.is_empty() {
        out.push_str("\n\n## Most urgent open tasks\n\n");
        let rows = content.top_open.iter().map(|task| {
            vec![
                task.id.to_string(),
                task.name.clone(),
                task.priority.as_str().to_owned(),
                task.deadline.map(|at| at.to_rfc3339()).unwrap_or_default(),
            ]
        });
        out.push_str(&table(&["Task", "Name", "Priority", "Deadline"], rows));
    }
    if let Some(members) = &content.members {
        out.push_str("\n\n## Members\n\n");
        let rows = members.iter().map(|member| {
            let f = &member.figures;
            vec![
                member.display_name.clone(),
                member.email.clone(),
                f.open_at_start.to_string(),
                f.newly_assigned.to_string(),
                f.completed.to_string(),
                f.reopened.to_string(),
                f.open_at_end.to_string(),
                f.overdue_at_end.to_string(),
            ]
        });
        let header = ["Member", "Email", "Open at start", "Assigned", "Completed", "Reopened", "Open", "Overdue"];
        out.push_str(&table(&header, rows));
    }
    out.push('\n');
    out
}
