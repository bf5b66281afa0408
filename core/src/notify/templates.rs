//! The words of notifications, in English and Korean: a one-line summary (the in-app text and
//! the email subject) and email bodies in plain text and HTML.

use super::Details;
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

fn status_label(code: &str, lang: Language) -> String {
    let label = match (code, lang) {
        ("pending", Language::En) => "Pending",
        ("in_progress", Language::En) => "In progress",
        ("done", Language::En) => "Done",
        ("pending", Language::Ko) => "대기 중",
        ("in_progress", Language::Ko) => "진행 중",
        ("done", Language::Ko) => "완료",
        (other, _) => other,
    };
    label.to_owned()
}

fn priority_label(code: &str, lang: Language) -> String {
    let label = match (code, lang) {
        ("low", Language::En) => "Low",
        ("medium", Language::En) => "Medium",
        ("high", Language::En) => "High",
        ("urgent", Language::En) => "Urgent",
        ("low", Language::Ko) => "낮음",
        ("medium", Language::Ko) => "보통",
        ("high", Language::Ko) => "높음",
        ("urgent", Language::Ko) => "긴급",
        (other, _) => other,
    };
    label.to_owned()
}

fn field_label(field: &str, lang: Language) -> &str {
    match (field, lang) {
        ("name", Language::En) => "Name",
        ("contents", Language::En) => "Contents",
        ("status", Language::En) => "Status",
        ("priority", Language::En) => "Priority",
        ("deadline", Language::En) => "Deadline",
        ("pic", Language::En) => "PIC",
        ("supervisor", Language::En) => "Supervisor",
        ("name", Language::Ko) => "업무명",
        ("contents", Language::Ko) => "내용",
        ("status", Language::Ko) => "상태",
        ("priority", Language::Ko) => "우선순위",
        ("deadline", Language::Ko) => "마감",
        ("pic", Language::Ko) => "담당자",
        ("supervisor", Language::Ko) => "감독자",
        (other, _) => other,
    }
}

fn instant(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn value(field: &str, raw: Option<&str>, lang: Language) -> String {
    let Some(raw) = raw else {
        return match lang {
            Language::En => "(none)".into(),
            Language::Ko => "(없음)".into(),
        };
    };
    match field {
        "status" => status_label(raw, lang),
        "priority" => priority_label(raw, lang),
        "deadline" => chrono::DateTime::parse_from_rfc3339(raw.trim_matches('"'))
            .map(|at| instant(at.to_utc()))
            .unwrap_or_else(|_| raw.to_owned()),
        _ => raw.to_owned(),
    }
}

/// The one-line summary of a notification.
pub fn summary(kind: &str, details: &Details, lang: Language) -> String {
    let task = &details.task_name;
    let actor = details.actor.clone().unwrap_or_else(|| match lang {
        Language::En => "Someone".into(),
        Language::Ko => "누군가".into(),
    });
    let new_status = details
        .changes
        .iter()
        .find(|line| line.field == "status")
        .map(|line| value("status", line.new.as_deref(), lang))
        .unwrap_or_default();
    let deadline = details.deadline.map(instant).unwrap_or_default();
    match (kind, lang) {
        ("task.created", Language::En) => format!("{actor} created “{task}”"),
        ("task.assigned", Language::En) => format!("{actor} reassigned “{task}”"),
        ("task.status_changed", Language::En) => format!("{actor} moved “{task}” to {new_status}"),
        ("task.updated", Language::En) => format!("{actor} updated “{task}”"),
        ("task.deleted", Language::En) => format!("{actor} deleted “{task}”"),
        ("task.due_soon", Language::En) => format!("“{task}” is due {deadline}"),
        ("task.overdue", Language::En) => format!("“{task}” is overdue (it was due {deadline})"),
        ("task.created", Language::Ko) => format!("{actor}님이 “{task}” 업무를 만들었습니다"),
        ("task.assigned", Language::Ko) => format!("{actor}님이 “{task}” 업무의 담당을 바꿨습니다"),
        ("task.status_changed", Language::Ko) => format!("{actor}님이 “{task}” 업무를 {new_status}(으)로 바꿨습니다"),
        ("task.updated", Language::Ko) => format!("{actor}님이 “{task}” 업무를 수정했습니다"),
        ("task.deleted", Language::Ko) => format!("{actor}님이 “{task}” 업무를 삭제했습니다"),
        ("task.due_soon", Language::Ko) => format!("“{task}” 업무의 마감이 {deadline}입니다"),
        ("task.overdue", Language::Ko) => format!("“{task}” 업무가 마감({deadline})을 넘겼습니다"),
        (other, _) => format!("{other}: “{task}”"),
    }
}

/// The link to a task in the web app (none once it is deleted).
fn task_link(kind: &str, details: &Details, public_url: &str) -> Option<String> {
    (kind != "task.deleted").then(|| format!("{public_url}/tasks/{}", details.task_id))
}

fn detail_lines(details: &Details, lang: Language) -> Vec<String> {
    let mut lines: Vec<String> = details
        .changes
        .iter()
        .map(|line| {
            let label = field_label(&line.field, lang);
            format!(
                "{label}: {} → {}",
                value(&line.field, line.old.as_deref(), lang),
                value(&line.field, line.new.as_deref(), lang)
            )
        })
        .collect();
    if let Some(deadline) = details.deadline
        && !details.changes.iter().any(|line| line.field == "deadline")
    {
        lines.push(format!("{}: {}", field_label("deadline", lang), instant(deadline)));
    }
    lines
}

fn footer(lang: Language) -> &'static str {
    match lang {
        Language::En => {
            "You get this because you are involved in this task. Notification settings are in your profile."
        }
        Language::Ko => "이 업무에 참여하고 있어 보내드리는 알림입니다. 알림 설정은 프로필에서 바꿀 수 있습니다.",
    }
}

fn open_label(lang: Language) -> &'static str {
    match lang {
        Language::En => "Open the task",
        Language::Ko => "업무 열기",
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn html_page(lang: Language, heading: &str, body: &str) -> String {
    let lang_code = match lang {
        Language::En => "en",
        Language::Ko => "ko",
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"{lang_code}\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body style=\"font-family: sans-serif; color: #222\">\n<h2 style=\"font-size: 18px\">{title}</h2>\n{body}\
         <p style=\"color: #777; font-size: 12px\">{footer}</p>\n</body></html>\n",
        title = escape_html(heading),
        footer = escape_html(footer(lang)),
    )
}

/// The email for one notification.
pub fn email(kind: &str, details: &Details, lang: Language, public_url: &str) -> Rendered {
    let summary = summary(kind, details, lang);
    let lines = detail_lines(details, lang);
    let link = task_link(kind, details, public_url);

    let mut text = format!("{summary}\n\n");
    for line in &lines {
        text.push_str(&format!("- {line}\n"));
    }
    if let Some(link) = &link {
        text.push_str(&format!("\n{}: {link}\n", open_label(lang)));
    }
    text.push_str(&format!("\n--\n{}\n", footer(lang)));

    let mut body = String::new();
    if !lines.is_empty() {
        body.push_str("<ul>\n");
        for line in &lines {
            body.push_str(&format!("<li>{}</li>\n", escape_html(line)));
        }
        body.push_str("</ul>\n");
    }
    if let Some(link) = &link {
        body.push_str(&format!("<p><a href=\"{}\">{}</a></p>\n", escape_html(link), open_label(lang)));
    }
    Rendered { subject: format!("[tasklane] {summary}"), text, html: html_page(lang, &summary, &body) }
}

/// One daily email listing several notifications (`(kind, details)`, oldest first).
pub fn digest(items: &[(String, Details)], lang: Language, public_url: &str) -> Rendered {
    let heading = match lang {
        Language::En => {
            format!("Your tasklane digest: {} update{}", items.len(), if items.len() == 1 { "" } else { "s" })
        }
        Language::Ko => format!("tasklane 알림 모음: {}건", items.len()),
    };
    let mut text = format!("{heading}\n\n");
    let mut body = String::from("<ul>\n");
    for (kind, details) in items {
        let summary = summary(kind, details, lang);
        match task_link(kind, details, public_url) {
            Some(link) => {
                text.push_str(&format!("- {summary}\n  {link}\n"));
                body.push_str(&format!("<li><a href=\"{}\">{}</a></li>\n", escape_html(&link), escape_html(&summary)));
            }
            None => {
                text.push_str(&format!("- {summary}\n"));
                body.push_str(&format!("<li>{}</li>\n", escape_html(&summary)));
            }
        }
    }
    body.push_str("</ul>\n");
    text.push_str(&format!("\n--\n{}\n", footer(lang)));
    Rendered { subject: format!("[tasklane] {heading}"), text, html: html_page(lang, &heading, &body) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::ChangeLine;

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
        let en = email("task.status_changed", &details(), Language::En, "https://tl.example");
        assert_eq!(en.subject, "[tasklane] Kim moved “Ship <v2>” to Done");
        assert!(en.text.contains("- Status: Pending → Done"), "{}", en.text);
        assert!(en.text.contains("- Deadline: 2026-12-01 09:30 UTC"));
        assert!(en.text.contains("https://tl.example/tasks/7"));
        assert!(en.html.contains("Ship &lt;v2&gt;") && !en.html.contains("<v2>"));
        let ko = email("task.status_changed", &details(), Language::Ko, "https://tl.example");
        assert_eq!(ko.subject, "[tasklane] Kim님이 “Ship <v2>” 업무를 완료(으)로 바꿨습니다");
        assert!(ko.text.contains("- 상태: 대기 중 → 완료"));
    }

    #[test]
    fn deleted_tasks_get_no_link_and_digests_list_every_item() {
        let deleted = email("task.deleted", &details(), Language::En, "https://tl.example");
        assert!(!deleted.text.contains("/tasks/7"));
        let items = vec![("task.created".to_owned(), details()), ("task.deleted".to_owned(), details())];
        let digest = digest(&items, Language::En, "https://tl.example");
        assert_eq!(digest.subject, "[tasklane] Your tasklane digest: 2 updates");
        assert!(digest.text.contains("Kim created “Ship <v2>”") && digest.text.contains("Kim deleted"));
    }
}
