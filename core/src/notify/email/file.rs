//! The embedded default mailer: each email is written as `<key>.eml` (RFC 5322,
//! multipart/alternative, built by lettre) into a directory, where a person or a test reads it.

use lettre::message::{Mailbox, MultiPart, header::ContentType};

use super::mailer::{EmailMessage, MailError, Mailer};

/// Writes each email as `<key>.eml` into a directory. A repeated send of the same email
/// replaces its file, so there is one file per email.
pub struct FileMailer {
    dir: std::path::PathBuf,
    writers: tokio::sync::Semaphore,
}

/// Files written at once. Each write blocks a thread; without a bound a burst of emails
/// would grow the blocking pool to hundreds of threads (and their memory).
const FILE_WRITERS: usize = 16;

impl FileMailer {
    /// Writes into `dir`, made on first use.
    pub fn new(dir: std::path::PathBuf) -> Self {
        Self { dir, writers: tokio::sync::Semaphore::new(FILE_WRITERS) }
    }
}

/// The message as an RFC 5322 document: encoded headers, both bodies with a transfer
/// encoding that keeps every line within the limits, a random boundary.
pub fn to_rfc5322(message: &EmailMessage, date: chrono::DateTime<chrono::Utc>) -> Result<Vec<u8>, MailError> {
    let mailbox = |name: Option<&String>, address: &str| {
        let parsed =
            address.parse().map_err(|err| MailError::Rejected(format!("invalid address {address:?}: {err}")))?;
        Ok::<_, MailError>(Mailbox::new(name.cloned(), parsed))
    };
    let alternative = MultiPart::alternative()
        .singlepart(
            lettre::message::SinglePart::builder().header(ContentType::TEXT_PLAIN).body(message.content.text.clone()),
        )
        .singlepart(
            lettre::message::SinglePart::builder().header(ContentType::TEXT_HTML).body(message.content.html.clone()),
        );
    let built = lettre::Message::builder()
        .from(mailbox(None, &message.from)?)
        .to(mailbox(message.to_name.as_ref(), &message.to)?)
        .subject(message.content.subject.clone())
        .date(date.into())
        .message_id(Some(format!("<{}@tasklane>", message.key)))
        .multipart(alternative)
        .map_err(|err| MailError::Rejected(format!("cannot build the email: {err}")))?;
    Ok(built.formatted())
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, message: &EmailMessage) -> Result<(), MailError> {
        let _writer = self.writers.acquire().await.map_err(|err| MailError::Unavailable(err.to_string()))?;
        let dir = self.dir.clone();
        let file = dir.join(format!("{}.eml", message.key));
        let partial = dir.join(format!(".{}.eml.partial", message.key));
        let bytes = to_rfc5322(message, crate::now())?;
        // One trip to the blocking pool for the whole write; the directory is made on first use.
        let written = tokio::task::spawn_blocking(move || {
            let write = || std::fs::write(&partial, &bytes).and_then(|()| std::fs::rename(&partial, &file));
            write().or_else(|err| match err.kind() {
                std::io::ErrorKind::NotFound => std::fs::create_dir_all(&dir).and_then(|()| write()),
                _ => Err(err),
            })
        })
        .await
        .map_err(|err| MailError::Unavailable(format!("the mail writer stopped: {err}")))?;
        written.map_err(|err| MailError::Unavailable(format!("cannot write mail to {}: {err}", self.dir.display())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::templates::Rendered;

    fn message(text: &str, html: &str) -> EmailMessage {
        EmailMessage {
            key: "notification-1".into(),
            from: "tasklane@localhost".into(),
            to: "kim@example.com".into(),
            to_name: Some("김민수".into()),
            content: Rendered {
                subject: "[tasklane] 김님이 “보고서” 업무를 만들었습니다 and a long tail of words".into(),
                text: text.into(),
                html: html.into(),
            },
        }
    }

    /// The text and HTML parts of a parsed message.
    fn parts(parsed: &mailparse::ParsedMail<'_>) -> Vec<(String, String)> {
        parsed.subparts.iter().map(|part| (part.ctype.mimetype.clone(), part.get_body().unwrap())).collect()
    }

    #[test]
    fn long_lines_and_boundary_lookalikes_survive_a_round_trip_through_a_mime_parser() {
        let long_line = "가나다라마바사 ".repeat(700);
        let text = format!("Contents:\n{long_line}\n--tasklane-notification-1\n--\n-- anything\nend\n");
        let html = format!("<p>{}</p><pre>--tasklane-notification-1</pre>", long_line.trim());
        let eml = to_rfc5322(&message(&text, &html), "2026-11-25T10:00:00Z".parse().unwrap()).unwrap();
        let raw = String::from_utf8(eml.clone()).unwrap();
        assert!(raw.split("\r\n").all(|line| line.len() <= 998), "a line is longer than RFC 5322 allows");
        let parsed = mailparse::parse_mail(&eml).unwrap();
        assert_eq!(parsed.ctype.mimetype, "multipart/alternative");
        let parts = parts(&parsed);
        assert_eq!(parts.len(), 2, "exactly one text and one HTML part: {parts:?}");
        assert_eq!(parts[0].0, "text/plain");
        assert_eq!(parts[0].1.replace("\r\n", "\n"), text);
        assert_eq!(parts[1].0, "text/html");
        assert_eq!(parts[1].1.replace("\r\n", "\n"), html);
        assert_eq!(
            parsed.headers.iter().find(|h| h.get_key() == "Subject").unwrap().get_value(),
            message("", "").content.subject
        );
        assert_eq!(
            parsed.headers.iter().find(|h| h.get_key() == "Message-ID").unwrap().get_value(),
            "<notification-1@tasklane>"
        );
        let to = mailparse::addrparse_header(parsed.headers.iter().find(|h| h.get_key() == "To").unwrap()).unwrap();
        assert_eq!(to.to_string(), "\"김민수\" <kim@example.com>");
    }

    #[test]
    fn every_message_gets_a_boundary_of_its_own() {
        let date = "2026-11-25T10:00:00Z".parse().unwrap();
        let boundary = |eml: Vec<u8>| mailparse::parse_mail(&eml).unwrap().ctype.params["boundary"].clone();
        let first = boundary(to_rfc5322(&message("a", "b"), date).unwrap());
        let second = boundary(to_rfc5322(&message("a", "b"), date).unwrap());
        assert_ne!(first, second);
        assert!(!first.contains("notification-1"), "the boundary must not be predictable");
    }
}
