//! Notifications: who hears about a task event (`fanout`), the in-app inbox, email (one job
//! per email, or a daily digest), deadline reminders, report emails and operator alerts on Discord. Every
//! notification is a row unique on (source, recipient, channel), so a redelivered event or a
//! repeated sweep never notifies twice.

pub mod discord;
pub mod email;
pub mod fanout;
pub mod inbox;
pub mod model;
pub mod people;
pub mod prefs;
pub mod reminders;
pub mod reports;
pub mod templates;
