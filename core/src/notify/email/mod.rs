//! Email: one job per notification email (or per daily digest), and the postman that sends
//! them through a [`Mailer`]: `.eml` files for the embedded default ([`file`]) or Amazon SES
//! ([`ses`]).
//!
//! A notification row records whether its email went out; a job for an email already sent
//! does nothing, so redelivered jobs never send twice. Before sending, a job claims the rows
//! for `TASKLANE_EMAIL_CLAIM_SECS` (120 s): a second copy running at the same moment finds them claimed and tries
//! again later, by when they are sent; a claim whose worker died runs out and is taken over.
//! One window remains: the mailer accepted the message and the worker died before the sent
//! mark was committed (one grouped `UPDATE`, milliseconds after the mailer answers). That
//! email goes out again once the claim runs out; SES offers no idempotency key to close it.

pub mod file;
pub mod mailer;
pub mod ses;

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::{notifications, users};
use tasklane_jobs::grouped::Grouped;
use tasklane_jobs::{Job, JobError, NewJob};

use super::model::{AccountMessage, Channel, DeliveryStatus, Details, ReportDetails};
use super::prefs::{Language, NotificationPrefs};
use super::templates;
use crate::{AppContext, Result, queues};
use mailer::{EmailMessage, MailError, Mailer};

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
    const QUEUE: &'static str = queues::EMAIL;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("email:{}:{}", self.source, self.user_id))
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
    const QUEUE: &'static str = queues::EMAIL;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("digest:{}:{}", self.user_id, self.day))
    }
}

/// An account email: not a notification (it goes to addresses not yet verified, and to
/// people without an account), sent straight through the mailer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccountMail {
    /// Recipient.
    pub to: String,
    /// Its language.
    pub language: Language,
    /// What it says.
    pub message: AccountMessage,
}

impl Job for AccountMail {
    const KIND: &'static str = "account.mail";
    const QUEUE: &'static str = queues::EMAIL;
}

/// Runs [`AccountMail`].
pub async fn send_account_mail(ctx: &AppContext, postman: &Postman, mail: AccountMail) -> Result<(), JobError> {
    let content = templates::account(&mail.message, mail.language)
        .map_err(|err| JobError::permanent(format!("cannot render the account email: {err:#}")))?;
    // Stable across retries: the same job names the same email.
    let digest = crate::auth::tokens::hash_opaque_token(
        &serde_json::to_string(&mail).map_err(|err| JobError::permanent(err.to_string()))?,
    );
    let message = EmailMessage {
        key: format!("account-{}", &digest[..16]),
        from: ctx.config.notify.email_from.clone(),
        to: mail.to,
        to_name: None,
        content,
    };
    postman.send_now(&message).await
}

/// Finds everyone with notifications waiting for a digest and enqueues one digest each.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DigestSweep {
    /// The day digests are sent for (UTC).
    pub day: chrono::NaiveDate,
}

impl Job for DigestSweep {
    const KIND: &'static str = "email.digest_sweep";
    const QUEUE: &'static str = queues::MAINTENANCE;

    fn dedup_key(&self) -> Option<String> {
        Some(format!("digest_sweep:{}", self.day))
    }
}

/// Claims, for this worker, those of notification rows `ids` whose email still waits and that
/// nobody else holds; returns the ids claimed.
async fn claim(app: &AppContext, ids: &[i64]) -> Result<Vec<i64>> {
    let now = crate::stored(app.clock.now());
    let token = format!("{}:{}", app.config.worker.name, crate::auth::tokens::new_id());
    // Longer than a send can take (every AWS call gives up after
    // `outbound::AWS_OPERATION_TIMEOUT`), so it runs out only when the worker died.
    let lease = chrono::Duration::seconds(app.config.notify.email_claim_secs as i64);
    let claimed = notifications::Entity::update_many()
        .col_expr(notifications::Column::ClaimedBy, Expr::value(token.clone()))
        .col_expr(notifications::Column::ClaimedUntil, Expr::value(now + lease))
        .filter(notifications::Column::Id.is_in(ids.iter().copied()))
        .filter(
            notifications::Column::Status.is_in([DeliveryStatus::Pending.as_str(), DeliveryStatus::Digest.as_str()]),
        )
        .filter(
            sea_orm::Condition::any()
                .add(notifications::Column::ClaimedUntil.is_null())
                .add(notifications::Column::ClaimedUntil.lt(now)),
        )
        .exec(&app.db)
        .await?;
    if claimed.rows_affected == ids.len() as u64 {
        return Ok(ids.to_vec());
    }
    Ok(notifications::Entity::find()
        .select_only()
        .column(notifications::Column::Id)
        .filter(notifications::Column::ClaimedBy.eq(token))
        .into_tuple()
        .all(&app.db)
        .await?)
}

/// The answer to a job whose emails another worker is sending right now: try again after
/// that claim, by when they are sent (and the retry does nothing) or the claim has run out.
fn claimed_elsewhere() -> JobError {
    JobError::retry("another worker is sending this email now")
}

/// True when no email may go to `user`'s address yet.
fn unverified(app: &AppContext, user: &users::Model) -> bool {
    app.config.accounts.email_verification && user.email_verified_at.is_none()
}

async fn recipient(app: &AppContext, user_id: i64) -> Result<Option<users::Model>> {
    Ok(users::Entity::find_by_id(user_id).one(&app.db).await?.filter(|user| !user.disabled))
}

/// Sends this process's emails through the mailer the worker picked and records them sent;
/// sent marks are written in groups.
pub struct Postman {
    mailer: Box<dyn Mailer>,
    sent: Grouped<i64>,
}

/// Most notifications marked sent by one statement.
const SENT_BATCH: usize = 256;

impl Postman {
    /// A postman sending through `mailer` and recording sends in `app`'s database.
    pub fn new(app: &AppContext, mailer: Box<dyn Mailer>) -> Self {
        let db = app.db.clone();
        let sent = Grouped::new(SENT_BATCH, move |ids: Vec<i64>| {
            let db = db.clone();
            async move {
                notifications::Entity::update_many()
                    .col_expr(notifications::Column::Attempts, Expr::col(notifications::Column::Attempts).add(1))
                    .col_expr(notifications::Column::Status, Expr::value(DeliveryStatus::Sent.as_str()))
                    .col_expr(notifications::Column::SentAt, Expr::value(crate::stored_now()))
                    .col_expr(notifications::Column::LastError, Expr::value(Option::<String>::None))
                    .filter(notifications::Column::Id.is_in(ids))
                    .filter(
                        notifications::Column::Status
                            .is_in([DeliveryStatus::Pending.as_str(), DeliveryStatus::Digest.as_str()]),
                    )
                    .exec(&db)
                    .await
                    .map(|_| ())
                    .map_err(|err| format!("cannot mark notifications sent: {err}"))
            }
        });
        Self { mailer, sent }
    }

    /// Sends an email that is no notification (an account email): no rows to mark.
    pub async fn send_now(&self, message: &EmailMessage) -> std::result::Result<(), JobError> {
        if let Err(err) = self.mailer.send(message).await {
            crate::telemetry::count_notifications("account_email", err.outcome(), 1);
            return Err(job_error(err));
        }
        crate::telemetry::count_notifications("account_email", "sent", 1);
        Ok(())
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
            return Err(job_error(err));
        }
        crate::telemetry::count_notifications("email", "sent", ids.len() as u64);
        futures_util::future::try_join_all(ids.into_iter().map(|id| self.sent.submit(id))).await?;
        Ok(())
    }
}

/// A mailer's refusal as a job outcome: never again, or later.
fn job_error(err: MailError) -> JobError {
    match err {
        MailError::Rejected(reason) => JobError::Permanent(reason),
        MailError::Unavailable(reason) => JobError::Retry(reason),
    }
}

/// Records a failed attempt on notification rows, for now (the reason is kept) or for good,
/// and lets go of their claim so the next attempt may take them at once.
async fn record_failure(app: &AppContext, ids: Vec<i64>, failure: &MailError) -> Result<()> {
    crate::telemetry::count_notifications("email", failure.outcome(), ids.len() as u64);
    let mut update = notifications::Entity::update_many()
        .col_expr(notifications::Column::Attempts, Expr::col(notifications::Column::Attempts).add(1))
        .col_expr(notifications::Column::ClaimedBy, Expr::value(Option::<String>::None))
        .col_expr(notifications::Column::ClaimedUntil, Expr::value(Option::<chrono::NaiveDateTime>::None))
        .filter(notifications::Column::Id.is_in(ids));
    update = match failure {
        MailError::Rejected(reason) => update
            .col_expr(notifications::Column::Status, Expr::value(DeliveryStatus::Failed.as_str()))
            .col_expr(notifications::Column::LastError, Expr::value(reason.clone())),
        MailError::Unavailable(reason) => {
            update.col_expr(notifications::Column::LastError, Expr::value(reason.clone()))
        }
    };
    update.exec(&app.db).await?;
    Ok(())
}

/// Runs [`SendEmail`].
pub async fn send_email(app: &AppContext, postman: &Postman, job: SendEmail) -> std::result::Result<(), JobError> {
    let found = notifications::Entity::find()
        .filter(notifications::Column::Source.eq(&job.source))
        .filter(notifications::Column::UserId.eq(job.user_id))
        .filter(notifications::Column::Channel.eq(Channel::Email.as_str()))
        .find_also_related(users::Entity)
        .one(&app.db)
        .await?;
    let Some((notification, user)) = found else {
        return Ok(()); // the recipient's account is gone, and with it the notification
    };
    if notification.status != DeliveryStatus::Pending.as_str() {
        return Ok(()); // sent already (a redelivery), or given up on
    }
    let Some(user) = user.filter(|user| !user.disabled) else {
        let reason = MailError::Rejected("the recipient's account is disabled".into());
        record_failure(app, vec![notification.id], &reason).await?;
        return Ok(());
    };
    if unverified(app, &user) {
        let reason = MailError::Rejected("the recipient's address is not verified".into());
        record_failure(app, vec![notification.id], &reason).await?;
        return Ok(());
    }
    let language = NotificationPrefs::from_stored(&user.notification_prefs).language;
    let unreadable = |err: serde_json::Error| {
        JobError::permanent(format!("notification {} has unreadable details: {err}", notification.id))
    };
    let public_url = &app.config.notify.public_url;
    let content = if notification.kind.starts_with("report.") {
        let details: ReportDetails = serde_json::from_value(notification.details.clone()).map_err(unreadable)?;
        let report = crate::reports::load(app, details.report_id).await?;
        templates::report(&report, language, public_url).map_err(unrenderable)?
    } else {
        let mut details: Details = serde_json::from_value(notification.details.clone()).map_err(unreadable)?;
        super::people::name_people(&app.db, &mut [&mut details]).await?;
        templates::email(&notification.kind, &details, language, public_url).map_err(unrenderable)?
    };
    if claim(app, &[notification.id]).await?.is_empty() {
        return Err(claimed_elsewhere());
    }
    let message = EmailMessage {
        key: format!("notification-{}", notification.id),
        from: app.config.notify.email_from.clone(),
        to: user.email,
        to_name: Some(user.display_name),
        content,
    };
    postman.deliver(app, vec![notification.id], message).await
}

/// A template that does not render is a bug in this build: retrying will not help.
fn unrenderable(err: minijinja::Error) -> JobError {
    JobError::permanent(format!("cannot render the email: {err:#}"))
}

/// Most notifications one digest email lists; the rest wait for the next one.
const DIGEST_MAX_ITEMS: u64 = 200;

/// Runs [`SendDigest`].
pub async fn send_digest(app: &AppContext, postman: &Postman, job: SendDigest) -> std::result::Result<(), JobError> {
    // An unverified address's digest waits until it is verified.
    let Some(user) = recipient(app, job.user_id).await?.filter(|user| !unverified(app, user)) else {
        return Ok(());
    };
    let waiting = notifications::Entity::find()
        .filter(notifications::Column::UserId.eq(user.id))
        .filter(notifications::Column::Channel.eq(Channel::Email.as_str()))
        .filter(notifications::Column::Status.eq(DeliveryStatus::Digest.as_str()))
        .order_by_asc(notifications::Column::Id)
        .limit(DIGEST_MAX_ITEMS)
        .all(&app.db)
        .await?;
    let ids: Vec<i64> = waiting.iter().map(|row| row.id).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let claimed = claim(app, &ids).await?;
    if claimed.is_empty() {
        return Err(claimed_elsewhere());
    }
    let waiting: Vec<_> = waiting.into_iter().filter(|row| claimed.contains(&row.id)).collect();
    let Some(last) = waiting.last() else {
        return Ok(());
    };
    let key = format!("digest-{}-{}", user.id, last.id);
    let ids = claimed;
    let mut items: Vec<(String, Details)> = waiting
        .iter()
        .filter_map(|row| serde_json::from_value(row.details.clone()).ok().map(|details| (row.kind.clone(), details)))
        .collect();
    super::people::name_people(&app.db, &mut items.iter_mut().map(|(_, details)| details).collect::<Vec<_>>()).await?;
    let language = NotificationPrefs::from_stored(&user.notification_prefs).language;
    let message = EmailMessage {
        key,
        from: app.config.notify.email_from.clone(),
        to: user.email,
        to_name: Some(user.display_name),
        content: templates::digest(&items, language, &app.config.notify.public_url).map_err(unrenderable)?,
    };
    postman.deliver(app, ids, message).await
}

/// The digest jobs for everyone with notifications waiting for one.
pub async fn digest_jobs(app: &AppContext, day: chrono::NaiveDate) -> Result<Vec<NewJob>> {
    let users: Vec<i64> = notifications::Entity::find()
        .select_only()
        .column(notifications::Column::UserId)
        .distinct()
        .filter(notifications::Column::Channel.eq(Channel::Email.as_str()))
        .filter(notifications::Column::Status.eq(DeliveryStatus::Digest.as_str()))
        .into_tuple()
        .all(&app.db)
        .await?;
    Ok(users.into_iter().map(|user_id| NewJob::of(&SendDigest { user_id, day })).collect::<serde_json::Result<_>>()?)
}
