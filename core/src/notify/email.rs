//! Email: one job per notification email (or per daily digest), a sender that writes `.eml`
//! files for the embedded default, and one that sends through Amazon SES.
//!
//! A notification row records whether its email went out; a job for an email already sent
//! does nothing, so redelivered jobs never send twice.

use base64::Engine;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::{notifications, users};

use super::prefs::NotificationPrefs;
use super::{Details, EMAIL, status, templates};
use crate::config::EmailTransport;
use crate::grouped::Grouped;
use crate::jobs::{Job, JobContext, JobError, NewJob, RetryPolicy};
use crate::{AppContext, Result};

/// The queue emails are sent from.
pub const EMAIL_QUEUE: &str = "email";

/// Sends the email of one notification, named by its unique key so that whoever writes the
/// notification can enqueue this without reading the row back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendEmail {
    /// What caused the notification (`event:<id>`, …).
    pub source: String,
    /// The recipient.
    pub user_id: i64,
}

impl Job for SendEmail {
    const KIND: &'static str = "email.send";
    const QUEUE: &'static str = EMAIL_QUEUE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("email:{}:{}", self.source, self.user_id))
    }

    fn retry_policy() -> RetryPolicy {
        RetryPolicy { base_delay: std::time::Duration::from_secs(10), ..RetryPolicy::default() }
    }
}

/// Sends one user their daily digest of notifications waiting for it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SendDigest {
    /// The recipient.
    pub user_id: i64,
    /// The day it is for (UTC).
    pub day: chrono::NaiveDate,
}

impl Job for SendDigest {
    const KIND: &'static str = "email.digest";
    const QUEUE: &'static str = EMAIL_QUEUE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("digest:{}:{}", self.user_id, self.day))
    }
}

/// Finds everyone with notifications waiting for a digest and enqueues one digest each.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestSweep {
    /// The day digests are sent for (UTC).
    pub day: chrono::NaiveDate,
}

impl Job for DigestSweep {
    const KIND: &'static str = "email.digest_sweep";
    const QUEUE: &'static str = crate::jobs::MAINTENANCE_QUEUE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("digest_sweep:{}", self.day))
    }
}

/// An email ready to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EmailMessage {
    /// Stable id of this email (the same on every retry): names its file, its Message-ID.
    pub key: String,
    /// Sender.
    pub from: String,
    /// Recipient.
    pub to: String,
    /// Rendered content.
    pub content: templates::Rendered,
}

/// Something that delivers emails. Errors say whether trying again may help.
#[async_trait::async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one email.
    async fn send(&self, message: &EmailMessage) -> std::result::Result<(), JobError>;
}

/// Writes each email as `<key>.eml` (RFC 5322, multipart/alternative) into a directory. A
/// repeated send of the same email replaces its file, so there is one file per email.
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

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, message: &EmailMessage) -> std::result::Result<(), JobError> {
        let _writer = self.writers.acquire().await.map_err(|err| JobError::retry(err.to_string()))?;
        let dir = self.dir.clone();
        let file = dir.join(format!("{}.eml", message.key));
        let partial = dir.join(format!(".{}.eml.partial", message.key));
        let text = to_rfc5322(message, crate::now());
        // One trip to the blocking pool for the whole write; the directory is made on first use.
        let written = tokio::task::spawn_blocking(move || {
            let write = || std::fs::write(&partial, &text).and_then(|()| std::fs::rename(&partial, &file));
            write().or_else(|err| match err.kind() {
                std::io::ErrorKind::NotFound => std::fs::create_dir_all(&dir).and_then(|()| write()),
                _ => Err(err),
            })
        })
        .await
        .map_err(|err| JobError::retry(format!("the mail writer stopped: {err}")))?;
        written.map_err(|err| JobError::retry(format!("cannot write mail to {}: {err}", self.dir.display())))
    }
}

/// A header value, RFC 2047-encoded when it is not plain ASCII.
fn header_text(value: &str) -> String {
    if value.is_ascii() {
        return value.to_owned();
    }
    // Lines stay under 78 characters: 39 bytes of UTF-8 become 52 of base64, 64 with the
    // encoded word's markers, 73 after "Subject: ".
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in value.chars() {
        if chunk.len() + c.len_utf8() > 39 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|word| format!("=?UTF-8?B?{}?=", base64::engine::general_purpose::STANDARD.encode(word)))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// The message as an RFC 5322 document with CRLF line ends and both bodies.
pub fn to_rfc5322(message: &EmailMessage, date: chrono::DateTime<chrono::Utc>) -> String {
    let boundary = format!("tasklane-{}", message.key);
    let crlf = |text: &str| text.replace("\r\n", "\n").replace('\n', "\r\n");
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {date}\r\nMessage-ID: <{key}@tasklane>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n\
         --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n\
         --{boundary}--\r\n",
        from = message.from,
        to = message.to,
        subject = header_text(&message.content.subject),
        date = date.to_rfc2822(),
        key = message.key,
        text = crlf(&message.content.text),
        html = crlf(&message.content.html),
    )
}

/// Sends through SESv2 `SendEmail` with simple content. Throttling, server errors and network
/// failures are retried; a message SES rejects (bad address, unverified sender) is not.
pub struct SesMailer {
    /// The SESv2 client.
    pub client: aws_sdk_sesv2::Client,
}

#[async_trait::async_trait]
impl Mailer for SesMailer {
    async fn send(&self, message: &EmailMessage) -> std::result::Result<(), JobError> {
        use aws_sdk_sesv2::operation::send_email::SendEmailError;
        use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
        let content = |data: &str| {
            Content::builder()
                .data(data)
                .charset("UTF-8")
                .build()
                .map_err(|err| JobError::permanent(format!("cannot build the email: {err}")))
        };
        let body = Body::builder().text(content(&message.content.text)?).html(content(&message.content.html)?).build();
        let simple = Message::builder().subject(content(&message.content.subject)?).body(body).build();
        let result = self
            .client
            .send_email()
            .from_email_address(&message.from)
            .destination(Destination::builder().to_addresses(&message.to).build())
            .content(EmailContent::builder().simple(simple).build())
            .send()
            .await;
        let Err(err) = result else {
            return Ok(());
        };
        let described = aws_sdk_sesv2::error::DisplayErrorContext(&err).to_string();
        let server_error = err.raw_response().is_some_and(|response| response.status().is_server_error());
        match err.into_service_error() {
            SendEmailError::MessageRejected(_)
            | SendEmailError::BadRequestException(_)
            | SendEmailError::MailFromDomainNotVerifiedException(_)
            | SendEmailError::NotFoundException(_)
                if !server_error =>
            {
                Err(JobError::permanent(format!("SES rejected the email: {described}")))
            }
            _ => Err(JobError::retry(format!("SES did not take the email: {described}"))),
        }
    }
}

/// The mailer the configuration asks for.
pub async fn mailer(app: &AppContext) -> Box<dyn Mailer> {
    match app.config.notify.email {
        EmailTransport::File => Box::new(FileMailer::new(app.config.data_dir.join("mail"))),
        EmailTransport::Ses => Box::new(SesMailer { client: app.outbound.ses().await.clone() }),
    }
}

async fn recipient(app: &AppContext, user_id: i64) -> Result<Option<users::Model>> {
    Ok(users::Entity::find_by_id(user_id).one(&app.db).await?.filter(|user| !user.disabled))
}

/// Sends this process's emails and records them sent; sent marks are written in groups.
pub struct Postman {
    mailer: Box<dyn Mailer>,
    sent: Grouped<i64>,
}

/// Most notifications marked sent by one statement.
const SENT_BATCH: usize = 256;

impl Postman {
    /// The postman for `app`'s configuration.
    pub async fn new(app: &AppContext) -> Self {
        let db = app.db.clone();
        let sent = Grouped::new(SENT_BATCH, move |ids: Vec<i64>| {
            let db = db.clone();
            async move {
                notifications::Entity::update_many()
                    .col_expr(notifications::Column::Attempts, Expr::col(notifications::Column::Attempts).add(1))
                    .col_expr(notifications::Column::Status, Expr::value(status::SENT))
                    .col_expr(notifications::Column::SentAt, Expr::value(crate::stored_now()))
                    .col_expr(notifications::Column::LastError, Expr::value(Option::<String>::None))
                    .filter(notifications::Column::Id.is_in(ids))
                    .filter(notifications::Column::Status.is_in([status::PENDING, status::DIGEST]))
                    .exec(&db)
                    .await
                    .map(|_| ())
                    .map_err(|err| format!("cannot mark notifications sent: {err}"))
            }
        });
        Self { mailer: mailer(app).await, sent }
    }

    /// Sends `message` for notifications `ids` and records the outcome on them.
    async fn deliver(
        &self,
        app: &AppContext,
        ids: Vec<i64>,
        message: EmailMessage,
    ) -> std::result::Result<(), JobError> {
        if let Err(err) = self.mailer.send(&message).await {
            record_failure(app, ids, &err).await?;
            return Err(err);
        }
        futures_util::future::try_join_all(ids.into_iter().map(|id| self.sent.submit(id))).await?;
        metrics::counter!("tasklane_emails_sent_total").increment(1);
        Ok(())
    }
}

/// This process's postman, made on first use.
async fn postman(app: &AppContext) -> &Postman {
    app.outbound.postman(|| Postman::new(app)).await
}

/// Records a failed attempt on notification rows: for now (the reason is kept), or for good.
async fn record_failure(app: &AppContext, ids: Vec<i64>, failure: &JobError) -> Result<()> {
    let mut update = notifications::Entity::update_many()
        .col_expr(notifications::Column::Attempts, Expr::col(notifications::Column::Attempts).add(1))
        .filter(notifications::Column::Id.is_in(ids));
    update = match failure {
        JobError::Permanent(reason) => update
            .col_expr(notifications::Column::Status, Expr::value(status::FAILED))
            .col_expr(notifications::Column::LastError, Expr::value(reason.clone())),
        JobError::Retry(reason) => update.col_expr(notifications::Column::LastError, Expr::value(reason.clone())),
    };
    update.exec(&app.db).await?;
    Ok(())
}

/// Runs [`SendEmail`].
pub async fn send_email(ctx: JobContext, job: SendEmail) -> std::result::Result<(), JobError> {
    let app = &ctx.app;
    let found = notifications::Entity::find()
        .filter(notifications::Column::Source.eq(&job.source))
        .filter(notifications::Column::UserId.eq(job.user_id))
        .filter(notifications::Column::Channel.eq(EMAIL))
        .find_also_related(users::Entity)
        .one(&app.db)
        .await?;
    let Some((notification, user)) = found else {
        return Ok(()); // the recipient's account is gone, and with it the notification
    };
    if notification.status != status::PENDING {
        return Ok(()); // sent already (a redelivery), or given up on
    }
    let Some(user) = user.filter(|user| !user.disabled) else {
        let reason = JobError::permanent("the recipient's account is disabled");
        record_failure(app, vec![notification.id], &reason).await?;
        return Ok(());
    };
    let details: Details = serde_json::from_value(notification.details.clone()).map_err(|err| {
        JobError::permanent(format!("notification {} has unreadable details: {err}", notification.id))
    })?;
    let language = NotificationPrefs::from_stored(&user.notification_prefs).language;
    let message = EmailMessage {
        key: format!("notification-{}", notification.id),
        from: app.config.notify.email_from.clone(),
        to: user.email,
        content: templates::email(&notification.kind, &details, language, &app.config.notify.public_url),
    };
    postman(app).await.deliver(app, vec![notification.id], message).await
}

/// Most notifications one digest email lists; the rest wait for the next one.
const DIGEST_MAX_ITEMS: u64 = 200;

/// Runs [`SendDigest`].
pub async fn send_digest(ctx: JobContext, job: SendDigest) -> std::result::Result<(), JobError> {
    let app = &ctx.app;
    let Some(user) = recipient(app, job.user_id).await? else {
        return Ok(());
    };
    let waiting = notifications::Entity::find()
        .filter(notifications::Column::UserId.eq(user.id))
        .filter(notifications::Column::Channel.eq(EMAIL))
        .filter(notifications::Column::Status.eq(status::DIGEST))
        .order_by_asc(notifications::Column::Id)
        .limit(DIGEST_MAX_ITEMS)
        .all(&app.db)
        .await?;
    let Some(last) = waiting.last() else {
        return Ok(());
    };
    let key = format!("digest-{}-{}", user.id, last.id);
    let ids = waiting.iter().map(|row| row.id).collect();
    let items: Vec<(String, Details)> = waiting
        .iter()
        .filter_map(|row| serde_json::from_value(row.details.clone()).ok().map(|details| (row.kind.clone(), details)))
        .collect();
    let language = NotificationPrefs::from_stored(&user.notification_prefs).language;
    let message = EmailMessage {
        key,
        from: app.config.notify.email_from.clone(),
        to: user.email,
        content: templates::digest(&items, language, &app.config.notify.public_url),
    };
    postman(app).await.deliver(app, ids, message).await
}

/// The digest jobs for everyone with notifications waiting for one.
pub async fn digest_jobs(app: &AppContext, day: chrono::NaiveDate) -> Result<Vec<NewJob>> {
    let users: Vec<i64> = notifications::Entity::find()
        .select_only()
        .column(notifications::Column::UserId)
        .distinct()
        .filter(notifications::Column::Channel.eq(EMAIL))
        .filter(notifications::Column::Status.eq(status::DIGEST))
        .into_tuple()
        .all(&app.db)
        .await?;
    users.into_iter().map(|user_id| NewJob::of(&SendDigest { user_id, day })).collect()
}

/// Runs [`DigestSweep`].
pub async fn digest_sweep(ctx: JobContext, job: DigestSweep) -> std::result::Result<(), JobError> {
    let jobs = digest_jobs(&ctx.app, job.day).await?;
    if !jobs.is_empty() {
        ctx.jobs.enqueue(jobs).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eml_files_carry_both_bodies_and_an_encoded_korean_subject() {
        let message = EmailMessage {
            key: "notification-1".into(),
            from: "tasklane@localhost".into(),
            to: "kim@example.com".into(),
            content: templates::Rendered {
                subject: "[tasklane] 김님이 “보고서” 업무를 만들었습니다 and a long tail of words".into(),
                text: "line one\nline two\n".into(),
                html: "<p>hi</p>".into(),
            },
        };
        let eml = to_rfc5322(&message, "2026-11-25T10:00:00Z".parse().unwrap());
        assert!(eml.contains("To: kim@example.com\r\n"));
        assert!(eml.contains("Message-ID: <notification-1@tasklane>\r\n"));
        assert!(eml.contains("line one\r\nline two\r\n"));
        assert!(eml.contains("Content-Type: text/html; charset=utf-8\r\n"));
        let subject_lines: Vec<&str> = eml
            .split("\r\n")
            .skip_while(|line| !line.starts_with("Subject:"))
            .take_while(|l| !l.starts_with("Date:"))
            .collect();
        assert!(subject_lines.len() > 1, "long subjects fold: {subject_lines:?}");
        assert!(subject_lines.iter().all(|line| line.len() <= 78));
        let decoded: String = subject_lines
            .iter()
            .map(|line| line.trim_start_matches("Subject:").trim())
            .map(|word| word.trim_start_matches("=?UTF-8?B?").trim_end_matches("?="))
            .map(|b64| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap())
            .collect();
        assert_eq!(decoded, message.content.subject);
    }
}
