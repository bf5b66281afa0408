//! A user's notification preferences: the language messages are written in, how email is
//! delivered, and which kinds of notification they want by email. In-app is always on.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::NotificationKind;
use crate::{Error, Result};

/// The language a user's notifications are written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Korean.
    Ko,
}

/// How a user gets notification emails.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EmailDelivery {
    /// One email per notification, as it happens.
    #[default]
    Instant,
    /// One email a day listing the day's notifications.
    DailyDigest,
    /// No email at all.
    Off,
}

/// `notification_prefs` of a user, e.g.
/// `{"language": "ko", "email": "daily_digest", "email_kinds": {"task.updated": false}}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationPrefs {
    /// Language of notification texts.
    pub language: Language,
    /// How notification emails are delivered.
    pub email: EmailDelivery,
    /// Per notification kind (`task.created`, `task.assigned`, `task.status_changed`,
    /// `task.updated`, `task.deleted`, `task.due_soon`, `task.overdue`, `report.weekly`,
    /// `report.monthly`): `false` turns its email off. Kinds not listed are on.
    pub email_kinds: BTreeMap<String, bool>,
}

impl NotificationPrefs {
    /// Parses preferences sent by a client, rejecting unknown fields and kinds.
    pub fn parse(value: serde_json::Value) -> Result<Self> {
        if !value.is_object() {
            return Err(Error::invalid("invalid_notification_prefs", "notification_prefs must be a JSON object"));
        }
        let prefs: Self = serde_json::from_value(value)
            .map_err(|err| Error::invalid("invalid_notification_prefs", format!("notification_prefs: {err}")))?;
        if let Some(unknown) = prefs.email_kinds.keys().find(|kind| NotificationKind::parse(kind).is_none()) {
            let known: Vec<&str> = NotificationKind::ALL.iter().map(|kind| kind.as_str()).collect();
            return Err(Error::invalid(
                "invalid_notification_prefs",
                format!("notification_prefs.email_kinds: unknown kind {unknown:?}; known: {}", known.join(", ")),
            ));
        }
        Ok(prefs)
    }

    /// Reads stored preferences; anything unreadable falls back to the defaults, so a bad row
    /// can never stop notifications.
    pub fn from_stored(value: &serde_json::Value) -> Self {
        serde_json::from_value(value.clone()).unwrap_or_default()
    }

    /// Whether a notification of `kind` should also go out by email, and how.
    pub fn email_for(&self, kind: NotificationKind) -> Option<EmailDelivery> {
        let wanted = self.email_kinds.get(kind.as_str()).copied().unwrap_or(true);
        match self.email {
            EmailDelivery::Off => None,
            delivery if wanted => Some(delivery),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_preferences_mean_english_instant_email_for_everything() {
        let prefs = NotificationPrefs::parse(json!({})).unwrap();
        assert_eq!(prefs.language, Language::En);
        assert_eq!(prefs.email_for(NotificationKind::Created), Some(EmailDelivery::Instant));
    }

    #[test]
    fn kinds_can_be_muted_and_email_turned_off_or_digested() {
        let prefs =
            NotificationPrefs::parse(json!({"email": "daily_digest", "email_kinds": {"task.updated": false}})).unwrap();
        assert_eq!(prefs.email_for(NotificationKind::Updated), None);
        assert_eq!(prefs.email_for(NotificationKind::Assigned), Some(EmailDelivery::DailyDigest));
        let off = NotificationPrefs::parse(json!({"email": "off"})).unwrap();
        assert_eq!(off.email_for(NotificationKind::Assigned), None);
    }

    #[test]
    fn unknown_fields_kinds_and_values_are_rejected() {
        assert!(NotificationPrefs::parse(json!({"lang": "ko"})).is_err());
        assert!(NotificationPrefs::parse(json!({"language": "fr"})).is_err());
        assert!(NotificationPrefs::parse(json!({"email_kinds": {"task.exploded": false}})).is_err());
        assert!(NotificationPrefs::parse(json!([])).is_err());
    }

    #[test]
    fn unreadable_stored_preferences_fall_back_to_defaults() {
        assert_eq!(NotificationPrefs::from_stored(&json!({"language": 3})), NotificationPrefs::default());
    }
}
