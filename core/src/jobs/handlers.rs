//! The job kinds this build handles and their handlers.

use super::relay::TaskEventJob;
use super::{JobContext, JobError, Registry};

/// Every handler, ready for a worker.
pub fn registry() -> Registry {
    let mut registry = Registry::default();
    registry.register(task_event);
    registry
}

/// A task event reached the events queue. Fan-out to notifications and the archive hangs off
/// this handler; until then the event is acknowledged so the queue does not grow.
async fn task_event(ctx: JobContext, event: TaskEventJob) -> Result<(), JobError> {
    tracing::debug!(event = event.event_id, task = event.task_id, kind = %event.kind, attempt = ctx.attempt, "task event");
    Ok(())
}
