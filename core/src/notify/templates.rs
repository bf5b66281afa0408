//! The words of notifications, in English and Korean, from the template files under
//! `core/templates/notify/` (compiled into the binary): a one-line summary per kind and
//! language (`en/task.created.txt`, … — the in-app text and the email subject), shared words
//! per language (`en/words.txt`), and the email and digest bodies in plain text and HTML.
//! HTML templates escape every value automatically.

use std::sync::LazyLock;

use minijinja::{AutoEscape, Environment, context};
use serde::Serialize;

use super::model::Details;
use super::prefs::Language;

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
    "en/words.txt",
    "en/task.created.txt",
    "en/task.assigned.txt",
    "en/task.status_changed.txt",
    "en/task.updated.txt",
    "en/task.deleted.txt",
    "en/task.due_soon.txt",
    "en/task.overdue.txt",
    "ko/words.txt",
    "ko/task.created.txt",
    "ko/task.assigned.txt",
    "ko/task.status_changed.txt",
    "ko/task.updated.txt",
    "ko/task.deleted.txt",
    "ko/task.due_soon.txt",
    "ko/task.overdue.txt",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::model::ChangeLine;

    fn details() -> Details {
        Details {
            task_id: 7,
            task_name: "Ship <v2>".into(),
            actor: Some("Kim".into()),
            changes: vec![ChangeLine { field: "status".into(), old: Some("pending".into()), new: Some("done".into()) }],
            deadline: Some("2026-12-01T09:30:00Z".parse().unwrap()),
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
            old: None,
            new: Some("<img src=x onerror=y>".into()),
        });
        for kind in crate::notify::model::NotificationKind::ALL.map(|kind| kind.as_str()) {
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
}
