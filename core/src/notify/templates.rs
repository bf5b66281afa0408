//! The words of notifications, in English and Korean, from the template files under
//! `core/templates/notify/` (compiled into the binary): a one-line summary per kind and
//! language (`en/task.created.txt`, … — the in-app text and the email subject), shared words
//! per language (`en/words.txt`), and the email and digest bodies in plain text and HTML.
//! HTML templates escape every value automatically.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

use super::model::{AccountMessage, Details};
use super::prefs::Language;
use crate::reports::ReportView;
use crate::reports::figures::Figures;

/// A rendered email.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Every template, by the name templates import it under.
macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../templates/notify/", $name)))),*]
    };
}

const TEMPLATES: &[(&str, &str)] = templates![
    "email.txt",
    "email.html",
    "digest.txt",
    "digest.html",
    "digest_subject.txt",
    "report.txt",
    "report.html",
    "account.txt",
    "account.html",
    "account_subject.txt",
    "en/account.txt",
    "ko/account.txt",
    "en/words.txt",
    "en/task.created.txt",
    "en/task.assigned.txt",
    "en/task.status_changed.txt",
    "en/task.updated.txt",
    "en/task.deleted.txt",
    "en/task.due_soon.txt",
    "en/task.overdue.txt",
    "en/report.weekly.txt",
    "en/report.monthly.txt",
    "ko/words.txt",
    "ko/task.created.txt",
    "ko/task.assigned.txt",
    "ko/task.status_changed.txt",
    "ko/task.updated.txt",
    "ko/task.deleted.txt",
    "ko/task.due_soon.txt",
    "ko/task.overdue.txt",
    "ko/report.weekly.txt",
    "ko/report.monthly.txt",
];

#[expect(clippy::expect_used, reason = "the templates are compiled in and every one is rendered by the tests")]
static ENVIRONMENT: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
    env.set_formatter(html_text);
    env.set_keep_trailing_newline(true);
    for (name, source) in TEMPLATES {
        env.add_template(name, source).expect("a notification template does not parse");
    }
    env
});

/// Writes a value into HTML escaping the five characters that matter in text and quoted
/// attributes (minijinja's own escaper also writes `/` as `&#x2f;`, which mangles the links
/// people copy out of emails).
fn html_text(
    out: &mut minijinja::Output,
    state: &minijinja::State,
    value: &minijinja::Value,
) -> Result<(), minijinja::Error> {
    if state.auto_escape() != AutoEscape::Html || value.is_safe() || value.is_undefined() {
        return minijinja::escape_formatter(out, state, value);
    }
    let mut escaped = String::new();
    for c in value.to_string().chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    out.write_str(&escaped).map_err(|err| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, err.to_string()))
}

fn code(lang: Language) -> &'static str {
    match lang {
        Language::En => "en",
        Language::Ko => "ko",
    }
}

fn render(name: &str, values: minijinja::Value) -> Result<String, minijinja::Error> {
    ENVIRONMENT.get_template(name)?.render(values)
}

fn instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One changed field as the templates show it: codes stay codes (the words translate them),
/// deadlines become readable.
#[derive(Serialize)]
struct Line<'a> {
    field: &'a str,
    old: Option<String>,
    new: Option<String>,
}

fn displayed(field: &str, raw: Option<&str>) -> Option<String> {
    let raw = raw?;
    Some(match field {
        "deadline" => chrono::DateTime::parse_from_rfc3339(raw.trim_matches('"'))
            .map(|at| instant(at.to_utc()))
            .unwrap_or_else(|_| raw.to_owned()),
        _ => raw.to_owned(),
    })
}

/// The one-line summary of a notification.
pub fn summary(kind: &str, details: &Details, lang: Language) -> Result<String, minijinja::Error> {
    let new_status = details.changes.iter().find(|line| line.field == "status").and_then(|line| line.new.clone());
    let values = context! {
        actor => details.actor,
        task => details.task_name,
        new_status => new_status,
        deadline => details.deadline.map(instant),
    };
    let line = render(&format!("{}/{kind}.txt", code(lang)), values)?;
    Ok(line.trim().to_owned())
}

/// The link to a task in the web app (none once it is deleted).
fn task_link(kind: &str, details: &Details, public_url: &str) -> Option<String> {
    (kind != "task.deleted").then(|| format!("{public_url}/tasks/{}", details.task_id))
}

/// The email for one notification.
pub fn email(kind: &str, details: &Details, lang: Language, public_url: &str) -> Result<Rendered, minijinja::Error> {
    let summary = summary(kind, details, lang)?;
    let lines: Vec<Line<'_>> = details
        .changes
        .iter()
        .map(|line| Line {
            field: &line.field,
            old: displayed(&line.field, line.old.as_deref()),
            new: displayed(&line.field, line.new.as_deref()),
        })
        .collect();
    // The deadline is listed on its own unless it is one of the changes.
    let deadline = details.deadline.filter(|_| !details.changes.iter().any(|line| line.field == "deadline"));
    let values = context! {
        lang => code(lang),
        summary => summary,
        lines => lines,
        deadline => deadline.map(instant),
        link => task_link(kind, details, public_url),
    };
    Ok(Rendered {
        subject: format!("[tasklane] {summary}"),
        text: render("email.txt", values.clone())?,
        html: render("email.html", values)?,
    })
}

/// An account email (a verification link, an invitation, …) in `lang`.
pub fn account(message: &AccountMessage, lang: Language) -> Result<Rendered, minijinja::Error> {
    let m = minijinja::Value::from_serialize(message);
    let values = context! { lang => code(lang), kind => m.get_attr("kind")?, m => m };
    Ok(Rendered {
        subject: render("account_subject.txt", values.clone())?.trim().to_owned(),
        text: render("account.txt", values.clone())?,
        html: render("account.html", values)?,
    })
}

/// One daily email listing several notifications (`(kind, details)`, oldest first).
pub fn digest(items: &[(String, Details)], lang: Language, public_url: &str) -> Result<Rendered, minijinja::Error> {
    #[derive(Serialize)]
    struct Item {
        summary: String,
        link: Option<String>,
    }
    let items = items
        .iter()
        .map(|(kind, details)| {
            Ok(Item { summary: summary(kind, details, lang)?, link: task_link(kind, details, public_url) })
        })
        .collect::<Result<Vec<_>, minijinja::Error>>()?;
    let values = context! { lang => code(lang), items => items, count => items.len() };
    Ok(Rendered {
        subject: render("digest_subject.txt", values.clone())?.trim().to_owned(),
        text: render("digest.txt", values.clone())?,
        html: render("digest.html", values)?,
    })
}

/// Reads one count out of a report's figures.
type Count = fn(&Figures) -> u64;

/// The widest bar of a report email's chart, in pixels.
const CHART_WIDTH: u64 = 160;

/// The email saying a report is ready: its key figures with their change since the period
/// before, a created-vs-completed chart drawn with table cells, and a link to the report.
pub fn report(report: &ReportView, lang: Language, public_url: &str) -> Result<Rendered, minijinja::Error> {
    #[derive(Serialize)]
    struct Figure {
        name: &'static str,
        value: String,
        change: Option<String>,
    }
    #[derive(Serialize)]
    struct Point {
        date: String,
        created: u64,
        completed: u64,
        created_width: u64,
        completed_width: u64,
    }
    let summary = render(
        &format!("{}/report.{}.txt", code(lang), report.period.as_str()),
        context! { start => report.start.to_string(), end => report.end.to_string() },
    )?
    .trim()
    .to_owned();
    let content = report.content.as_ref();
    let now = content.map(|c| c.figures.clone()).unwrap_or_default();
    let before = content.and_then(|c| c.previous.clone());
    let counts: [(&str, Count); 6] = [
        ("completed", |f| f.completed),
        ("newly_assigned", |f| f.newly_assigned),
        ("created", |f| f.created),
        ("reopened", |f| f.reopened),
        ("open_at_end", |f| f.open_at_end),
        ("overdue_at_end", |f| f.overdue_at_end),
    ];
    let mut figures: Vec<Figure> = counts
        .iter()
        .map(|(name, get)| Figure {
            name,
            value: get(&now).to_string(),
            change: before.as_ref().map(|before| signed(get(&now) as i64 - get(before) as i64, "")),
        })
        .collect();
    let percent = |rate: Option<f64>| rate.map(|rate| (rate * 100.0).round() as i64);
    figures.push(Figure {
        name: "completion_rate",
        value: percent(now.completion_rate).map_or_else(|| "–".to_owned(), |p| format!("{p}%")),
        change: match (percent(now.completion_rate), before.as_ref().and_then(|b| percent(b.completion_rate))) {
            (Some(now), Some(before)) => Some(signed(now - before, " pt")),
            _ => None,
        },
    });
    let series = content.map(|c| c.series.as_slice()).unwrap_or_default();
    let peak = series.iter().map(|p| p.created.max(p.completed)).max().unwrap_or(0).max(1);
    let width = |count: u64| count * CHART_WIDTH / peak;
    let series: Vec<Point> = series
        .iter()
        .map(|p| Point {
            date: p.date.to_string(),
            created: p.created,
            completed: p.completed,
            created_width: width(p.created),
            completed_width: width(p.completed),
        })
        .collect();
    let values = context! {
        lang => code(lang),
        summary => summary,
        figures => figures,
        series => series,
        link => format!("{public_url}/reports/{}", report.id),
    };
    Ok(Rendered {
        subject: format!("[tasklane] {summary}"),
        text: render("report.txt", values.clone())?,
        html: render("report.html", values)?,
    })
}

/// A change with its sign: `+2`, `−1`, `±0`.
fn signed(change: i64, unit: &str) -> String {
    match change {
        0 => format!("±0{unit}"),
        c if c > 0 => format!("+{c}{unit}"),
        c => format!("−{}{unit}", c.unsigned_abs()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::model::ChangeLine;

    fn details() -> Details {
        Details {
            task_id: 7,
            task_name: "Ship <v2>".into(),
            actor: Some("Kim".into()),
            changes: vec![ChangeLine {
                field: "status".into(),
                old: Some("pending".into()),
                new: Some("done".into()),
                ..Default::default()
            }],
            deadline: Some("2026-12-01T09:30:00Z".parse().unwrap()),
            ..Default::default()
        }
    }

    #[test]
    fn an_email_says_who_changed_what_from_what_to_what_in_both_languages() {
        let en = email("task.status_changed", &details(), Language::En, "https://tl.example").unwrap();
        assert_eq!(en.subject, "[tasklane] Kim moved “Ship <v2>” to Done");
        assert!(en.text.contains("- Status: Pending → Done"), "{}", en.text);
        assert!(en.text.contains("- Deadline: 2026-12-01 09:30 UTC"));
        assert!(en.text.contains("https://tl.example/tasks/7"));
        assert!(en.html.contains("Ship &lt;v2&gt;") && !en.html.contains("<v2>"));
        assert!(en.html.contains("<a href=\"https://tl.example/tasks/7\">"), "{}", en.html);
        let ko = email("task.status_changed", &details(), Language::Ko, "https://tl.example").unwrap();
        assert_eq!(ko.subject, "[tasklane] Kim님이 “Ship <v2>” 업무를 완료(으)로 바꿨습니다");
        assert!(ko.text.contains("- 상태: 대기 중 → 완료"));
    }

    #[test]
    fn deleted_tasks_get_no_link_and_digests_list_every_item() {
        let deleted = email("task.deleted", &details(), Language::En, "https://tl.example").unwrap();
        assert!(!deleted.text.contains("/tasks/7"));
        let items = vec![("task.created".to_owned(), details()), ("task.deleted".to_owned(), details())];
        let digest = digest(&items, Language::En, "https://tl.example").unwrap();
        assert_eq!(digest.subject, "[tasklane] Your tasklane digest: 2 updates");
        assert!(digest.text.contains("Kim created “Ship <v2>”") && digest.text.contains("Kim deleted"));
    }

    #[test]
    fn every_kind_has_words_in_both_languages_and_html_escapes_what_people_wrote() {
        let mut hostile = details();
        hostile.task_name = "<script>alert(1)</script> & \"quotes\"".into();
        hostile.actor = Some("<b>Kim</b>".into());
        hostile.changes.push(ChangeLine {
            field: "contents".into(),
            new: Some("<img src=x onerror=y>".into()),
            ..Default::default()
        });
        let kinds = crate::notify::model::NotificationKind::ALL.map(|kind| kind.as_str());
        for kind in kinds.into_iter().filter(|kind| kind.starts_with("task.")) {
            for lang in [Language::En, Language::Ko] {
                let line = summary(kind, &hostile, lang).unwrap();
                assert!(line.contains("<script>"), "plain text stays as written: {line}");
                let rendered = email(kind, &hostile, lang, "https://tl.example").unwrap();
                assert!(!rendered.subject.contains(kind), "{kind} has no words of its own: {}", rendered.subject);
                assert!(!rendered.html.contains("<script>") && !rendered.html.contains("<b>Kim"), "{}", rendered.html);
                assert!(!rendered.html.contains("<img"), "{}", rendered.html);
                assert!(rendered.html.contains("&lt;script&gt;") || !rendered.html.contains("script"));
            }
        }
        let ko = digest(&[("task.created".to_owned(), details())], Language::Ko, "https://tl.example").unwrap();
        assert_eq!(ko.subject, "[tasklane] tasklane 알림 모음: 1건");
    }

    #[test]
    fn account_emails_have_words_links_and_escaping_in_both_languages() {
        let messages = [
            AccountMessage::Verify { link: "https://tl.example/verify-email?token=abc".into(), hours: 48 },
            AccountMessage::AlreadyRegistered { link: "https://tl.example/sign-in".into() },
            AccountMessage::Invitation {
                link: "https://tl.example/sign-up?invitation=xyz".into(),
                inviter: "<b>Kim</b>".into(),
                days: 7,
            },
            AccountMessage::EmailChanged { new_email: "new@example.com".into() },
        ];
        for message in &messages {
            for lang in [Language::En, Language::Ko] {
                let rendered = account(message, lang).unwrap();
                assert!(rendered.subject.len() > "[tasklane] ".len(), "{message:?} has no subject");
                assert!(rendered.text.trim().len() > 20, "{message:?}: {}", rendered.text);
                assert!(!rendered.html.contains("<b>Kim"), "{}", rendered.html);
            }
        }
        let verify = account(&messages[0], Language::En).unwrap();
        assert!(verify.text.contains("https://tl.example/verify-email?token=abc") && verify.text.contains("48 hours"));
        assert!(verify.html.contains("<a href=\"https://tl.example/verify-email?token=abc\">"), "{}", verify.html);
        let invited = account(&messages[2], Language::Ko).unwrap();
        assert!(invited.text.contains("<b>Kim</b>님이") && invited.html.contains("&lt;b&gt;Kim"), "{}", invited.html);
        assert!(account(&messages[3], Language::En).unwrap().text.contains("new@example.com"));
    }

    #[test]
    fn a_report_email_shows_figures_with_their_change_and_a_chart_in_both_languages() {
        use crate::reports::figures::SeriesPoint;
        use crate::reports::{ReportContent, ReportStatus, Scope, period::PeriodKind};
        let figures = |completed, rate| Figures { completed, completion_rate: rate, ..Figures::default() };
        let report = ReportView {
            id: 7,
            scope: Scope::Me,
            user_id: Some(2),
            period: PeriodKind::Weekly,
            start: "2026-11-23".parse().unwrap(),
            end: "2026-11-29".parse().unwrap(),
            starts_at: "2026-11-23T00:00:00Z".parse().unwrap(),
            ends_at: "2026-11-30T00:00:00Z".parse().unwrap(),
            status: ReportStatus::Ready,
            generated_at: None,
            error: None,
            content: Some(ReportContent {
                figures: figures(3, Some(0.75)),
                previous: Some(figures(5, Some(0.5))),
                series: vec![
                    SeriesPoint { date: "2026-11-23".parse().unwrap(), created: 4, completed: 2 },
                    SeriesPoint { date: "2026-11-24".parse().unwrap(), created: 0, completed: 1 },
                ],
                top_open: Vec::new(),
                members: None,
                as_of: "2026-11-30T00:00:00Z".parse().unwrap(),
            }),
        };
        let en = super::report(&report, Language::En, "https://tl.example").unwrap();
        assert_eq!(en.subject, "[tasklane] Your weekly report: 2026-11-23 – 2026-11-29");
        assert!(
            en.text.contains("- Completed: 3 (−2)") && en.text.contains("- Completion rate: 75% (+25 pt)"),
            "{}",
            en.text
        );
        assert!(en.text.contains("2026-11-23  created 4, completed 2"), "{}", en.text);
        assert!(en.html.contains("https://tl.example/reports/7"));
        // The busiest day's bar is full width; an empty one draws no cell.
        assert!(en.html.contains("width=\"160\"") && en.html.contains("width=\"80\""), "{}", en.html);
        assert!(!en.html.contains("<img") && !en.html.contains("<script"));
        let ko = super::report(&report, Language::Ko, "https://tl.example").unwrap();
        assert_eq!(ko.subject, "[tasklane] 주간 보고서: 2026-11-23 ~ 2026-11-29");
        assert!(ko.text.contains("- 완료: 3 (−2)"), "{}", ko.text);
    }
}
