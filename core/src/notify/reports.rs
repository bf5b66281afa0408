//! The email a scheduled report sends once ready: a notification row (email only, unique on
//! `report:<id>`), so it goes through the same mailer, language and opt-out rules as every
//! notification and is sent once however often its job runs.

use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait};
use tasklane_entity::{notifications, reports, users};
use tasklane_jobs::NewJob;

use super::email::SendEmail;
use super::model::{Channel, DeliveryStatus, NotificationKind, ReportDetails};
use crate::{AppContext, Result};

/// The notification kind of a report's email.
fn kind_of(period: &str) -> NotificationKind {
    match period {
        "monthly" => NotificationKind::ReportMonthly,
        _ => NotificationKind::ReportWeekly,
    }
}

/// Writes the email notification of a ready scheduled report and returns its job, unless the
/// user turned such emails off (or is gone).
pub async fn report_ready(app: &AppContext, report: &reports::Model) -> Result<Option<NewJob>> {
    let Some(user_id) = report.user_id else { return Ok(None) };
    let Some(user) = users::Entity::find_by_id(user_id).one(&app.db).await?.filter(|user| !user.disabled) else {
        return Ok(None);
    };
    let kind = kind_of(&report.period);
    if super::fanout::email_delivery(app, &user, kind).is_none() {
        return Ok(None);
    }
    let source = format!("report:{}", report.id);
    notifications::Entity::insert(notifications::ActiveModel {
        user_id: Set(user_id),
        source: Set(source.clone()),
        event_id: Set(None),
        task_id: Set(None),
        kind: Set(kind.as_str().to_owned()),
        channel: Set(Channel::Email.as_str().to_owned()),
        // A report is a summary already: it goes out on its own even to digest readers.
        status: Set(DeliveryStatus::Pending.as_str().to_owned()),
        attempts: Set(0),
        last_error: Set(None),
        details: Set(serde_json::to_value(ReportDetails { report_id: report.id })?),
        created_at: Set(crate::stored(app.clock.now())),
        sent_at: Set(None),
        read_at: Set(None),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([
            notifications::Column::Source,
            notifications::Column::UserId,
            notifications::Column::Channel,
        ])
        .do_nothing_on([notifications::Column::Id])
        .to_owned(),
    )
    .exec_without_returning(&app.db)
    .await?;
    Ok(Some(NewJob::of(&SendEmail { source, user_id })?))
}
