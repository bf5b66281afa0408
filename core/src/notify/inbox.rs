//! The in-app inbox: a user's own notifications, newest first, and marking them read.
//! Nobody sees another user's notifications; asking for one answers 404.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde::{Deserialize, Serialize};
use tasklane_entity::{notifications, users};

use super::model::{Channel, Details};
use super::prefs::NotificationPrefs;
use super::templates;
use crate::auth::Principal;
use crate::{AppContext, Error, Result};

/// A notification as its recipient sees it.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationView {
    /// Notification id.
    pub id: i64,
    /// `task.created`, `task.assigned`, …
    pub kind: String,
    /// The task it is about.
    pub task_id: Option<i64>,
    /// The task event behind it (none for deadline reminders).
    pub event_id: Option<i64>,
    /// One line in the recipient's language.
    pub summary: String,
    /// What happened.
    pub details: Details,
    /// Whether it was read.
    pub read: bool,
    /// When it was read.
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `GET /api/notifications` query.
#[derive(Clone, Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
pub struct InboxQuery {
    /// Only unread ones.
    pub unread: bool,
    /// 1 to 100; 20 by default.
    pub limit: Option<u64>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of the inbox.
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct InboxPage {
    /// Newest first.
    pub notifications: Vec<NotificationView>,
    /// Unread notifications in all.
    pub unread_count: u64,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn details(row: &notifications::Model) -> Details {
    serde_json::from_value(row.details.clone())
        .unwrap_or_else(|_| Details { task_id: row.task_id.unwrap_or_default(), ..Default::default() })
}

/// `rows` as `user_id` sees them: in their language, with the people named as they are now.
async fn views(app: &AppContext, user_id: i64, rows: Vec<notifications::Model>) -> Result<Vec<NotificationView>> {
    let language = language(app, user_id).await?;
    let mut all_details: Vec<Details> = rows.iter().map(details).collect();
    super::people::name_people(&app.db, &mut all_details.iter_mut().collect::<Vec<_>>()).await?;
    rows.into_iter().zip(all_details).map(|(row, details)| view(row, details, language)).collect()
}

fn view(row: notifications::Model, details: Details, language: super::prefs::Language) -> Result<NotificationView> {
    Ok(NotificationView {
        id: row.id,
        summary: templates::summary(&row.kind, &details, language)?,
        kind: row.kind,
        task_id: row.task_id,
        event_id: row.event_id,
        details,
        read: row.read_at.is_some(),
        read_at: row.read_at.map(|at| at.and_utc()),
        created_at: row.created_at.and_utc(),
    })
}

async fn language(app: &AppContext, user_id: i64) -> Result<super::prefs::Language> {
    let user = users::Entity::find_by_id(user_id).one(&app.db).await?;
    Ok(user.map(|user| NotificationPrefs::from_stored(&user.notification_prefs).language).unwrap_or_default())
}

/// A page of the signed-in user's in-app notifications.
pub async fn list(app: &AppContext, who: &Principal, query: InboxQuery) -> Result<InboxPage> {
    let limit = crate::paging::limit(query.limit, 20)?;
    let mut select = notifications::Entity::find()
        .filter(notifications::Column::UserId.eq(who.user_id))
        .filter(notifications::Column::Channel.eq(Channel::InApp.as_str()))
        .order_by_desc(notifications::Column::Id)
        .limit(limit + 1);
    if query.unread {
        select = select.filter(notifications::Column::ReadAt.is_null());
    }
    if let Some(cursor) = &query.cursor {
        let before: i64 = cursor.parse().map_err(|_| crate::paging::bad_cursor())?;
        select = select.filter(notifications::Column::Id.lt(before));
    }
    let mut rows = select.all(&app.db).await?;
    let next_cursor = crate::paging::cut(&mut rows, limit, |row| row.id.to_string());
    Ok(InboxPage {
        notifications: views(app, who.user_id, rows).await?,
        unread_count: unread_count(app, who.user_id).await?,
        next_cursor,
    })
}

/// Marks one of the signed-in user's notifications read (again is fine).
pub async fn mark_read(app: &AppContext, who: &Principal, id: i64) -> Result<NotificationView> {
    let mine = || {
        notifications::Entity::find_by_id(id)
            .filter(notifications::Column::UserId.eq(who.user_id))
            .filter(notifications::Column::Channel.eq(Channel::InApp.as_str()))
    };
    let Some(row) = mine().one(&app.db).await? else {
        return Err(Error::not_found(format!("notification {id} does not exist")));
    };
    let row = if row.read_at.is_none() {
        notifications::Entity::update_many()
            .col_expr(notifications::Column::ReadAt, Expr::value(crate::stored_now()))
            .filter(notifications::Column::Id.eq(id))
            .filter(notifications::Column::ReadAt.is_null())
            .exec(&app.db)
            .await?;
        mine().one(&app.db).await?.unwrap_or(row)
    } else {
        row
    };
    let mut views = views(app, who.user_id, vec![row]).await?;
    views.pop().ok_or_else(|| Error::not_found(format!("notification {id} does not exist")))
}

/// Marks every unread notification of the signed-in user read; returns how many.
pub async fn mark_all_read(app: &AppContext, who: &Principal) -> Result<u64> {
    let result = notifications::Entity::update_many()
        .col_expr(notifications::Column::ReadAt, Expr::value(crate::stored_now()))
        .filter(notifications::Column::UserId.eq(who.user_id))
        .filter(notifications::Column::Channel.eq(Channel::InApp.as_str()))
        .filter(notifications::Column::ReadAt.is_null())
        .exec(&app.db)
        .await?;
    Ok(result.rows_affected)
}

/// Counts a user's unread in-app notifications.
pub async fn unread_count(app: &AppContext, user_id: i64) -> Result<u64> {
    use sea_orm::PaginatorTrait;
    Ok(notifications::Entity::find()
        .filter(notifications::Column::UserId.eq(user_id))
        .filter(notifications::Column::Channel.eq(Channel::InApp.as_str()))
        .filter(notifications::Column::ReadAt.is_null())
        .count(&app.db)
        .await?)
}
