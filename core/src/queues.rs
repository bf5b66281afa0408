//! Which queues tasklane has and, in `sqs` mode, which of them ride SQS.

/// Task events published by the outbox relay.
pub const EVENTS: &str = "events";

/// Notification emails and daily digests.
pub const EMAIL: &str = "email";

/// Scheduled sweeps (deadline reminders, digests, archiving, pruning).
pub const MAINTENANCE: &str = "maintenance";

/// Every queue the workers consume.
pub const ALL: &[&str] = &[EVENTS, EMAIL, MAINTENANCE];

/// In `sqs` mode, the queues on SQS (events and notifications, which need its durability and
/// its dead-letter redrive); every other queue rides Redis.
pub const ON_SQS: &[&str] = &[EVENTS, EMAIL];
