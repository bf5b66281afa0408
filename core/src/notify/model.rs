//! What a notification is made of: its kinds, channels and states, and the details stored
//! with it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::events::EventKind;

/// What a notification is about: a task event, or a deadline reminder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NotificationKind {
    /// A task was created.
    #[serde(rename = "task.created")]
    Created,
    /// A task's PIC or supervisor changed.
    #[serde(rename = "task.assigned")]
    Assigned,
    /// A task's status changed.
    #[serde(rename = "task.status_changed")]
    StatusChanged,
    /// A task's name, contents, priority or deadline changed.
    #[serde(rename = "task.updated")]
    Updated,
    /// A task was deleted.
    #[serde(rename = "task.deleted")]
    Deleted,
    /// A task's deadline is within a day.
    #[serde(rename = "task.due_soon")]
    DueSoon,
    /// A task's deadline has passed.
    #[serde(rename = "task.overdue")]
    Overdue,
    /// A scheduled weekly report is ready (email only).
    #[serde(rename = "report.weekly")]
    ReportWeekly,
    /// A scheduled monthly report is ready (email only).
    #[serde(rename = "report.monthly")]
    ReportMonthly,
}

impl NotificationKind {
    /// Every kind, as preferences name them.
    pub const ALL: [Self; 9] = [
        Self::Created,
        Self::Assigned,
        Self::StatusChanged,
        Self::Updated,
        Self::Deleted,
        Self::DueSoon,
        Self::Overdue,
        Self::ReportWeekly,
        Self::ReportMonthly,
    ];

    /// The stored spelling, e.g. `task.due_soon`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => EventKind::Created.as_str(),
            Self::Assigned => EventKind::Assigned.as_str(),
            Self::StatusChanged => EventKind::StatusChanged.as_str(),
            Self::Updated => EventKind::Updated.as_str(),
            Self::Deleted => EventKind::Deleted.as_str(),
            Self::DueSoon => "task.due_soon",
            Self::Overdue => "task.overdue",
            Self::ReportWeekly => "report.weekly",
            Self::ReportMonthly => "report.monthly",
        }
    }

    /// Reads the stored spelling.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

impl From<EventKind> for NotificationKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Created => Self::Created,
            EventKind::Assigned => Self::Assigned,
            EventKind::StatusChanged => Self::StatusChanged,
            EventKind::Updated => Self::Updated,
            EventKind::Deleted => Self::Deleted,
        }
    }
}

/// Where a notification is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    /// The in-app inbox (always on).
    InApp,
    /// Email, as the recipient's preferences allow.
    Email,
}

impl Channel {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InApp => "in_app",
            Self::Email => "email",
        }
    }
}

/// Where a notification's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// In-app: written, visible in the inbox.
    Delivered,
    /// Email: waiting for its send job.
    Pending,
    /// Email: waiting for the recipient's daily digest.
    Digest,
    /// Email: sent.
    Sent,
    /// Email: will not be sent (rejected address, recipient disabled).
    Failed,
}

impl DeliveryStatus {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Pending => "pending",
            Self::Digest => "digest",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }
}

/// One changed field as a message shows it: status and priority as codes (translated when
/// rendered), deadlines as RFC 3339, people by id (their names are filled in when shown).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeLine {
    /// `name`, `contents`, `status`, `priority`, `deadline`, `pic`, `supervisor`.
    pub field: String,
    /// The value before; for people, their display name when shown (`#id` once deleted).
    pub old: Option<String>,
    /// The value after; for people, as `old`.
    pub new: Option<String>,
    /// For `pic` and `supervisor`: who it was before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_user: Option<i64>,
    /// For `pic` and `supervisor`: who it is after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_user: Option<i64>,
}

/// What a notification says, stored with it so it can be shown and sent after the task is
/// gone. People are stored by id and named when shown, so a deleted account's name leaves
/// every notification with it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Details {
    /// The task.
    pub task_id: i64,
    /// Its name at the time.
    pub task_name: String,
    /// Who did it (display name, filled in when shown); none for reminders or a deleted account.
    pub actor: Option<String>,
    /// Who did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<i64>,
    /// What changed.
    pub changes: Vec<ChangeLine>,
    /// The task's deadline at the time.
    pub deadline: Option<DateTime<Utc>>,
}

/// What a report email's notification holds: the report, rendered when the email is sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportDetails {
    /// The report.
    pub report_id: i64,
}

/// What an account email says.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccountMessage {
    /// Confirm this address: a link valid for `hours`.
    Verify {
        /// The verification link.
        link: String,
        /// How long it works.
        hours: u64,
    },
    /// Someone tried to sign up with this address, which has an account.
    AlreadyRegistered {
        /// Where to sign in.
        link: String,
    },
    /// An admin invited this address.
    Invitation {
        /// The sign-up link.
        link: String,
        /// Who invited.
        inviter: String,
        /// How long it works.
        days: u64,
    },
    /// The account's address was changed to `new_email` (sent to the old one).
    EmailChanged {
        /// The new address.
        new_email: String,
    },
}
