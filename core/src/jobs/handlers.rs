//! The job kinds this build handles and their handlers.

use super::relay::TaskEventJob;
use super::{JobContext, JobError, Registry};
use crate::{archive, notify};

/// Every handler, ready for a worker.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry
        .register(task_event)
        .register(notify::email::send_email)
        .register(notify::email::send_digest)
        .register(notify::email::digest_sweep)
        .register(notify::reminders::deadline_sweep)
        .register(archive::archive_sweep)
        .register(archive::prune_events);
    registry
}

/// A task event reached the events queue: notify the people it concerns. The notification
/// rows make this idempotent; the archive copies events on its own schedule.
async fn task_event(ctx: JobContext, event: TaskEventJob) -> Result<(), JobError> {
    let emails = notify::fan_out(&ctx.app, &event).await?;
    if !emails.is_empty() {
        ctx.jobs.enqueue(emails).await?;
    }
    Ok(())
}
