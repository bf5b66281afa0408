//! Which queues tasklane has, which of them ride SQS in `sqs` mode, and the transport the
//! configuration asks for.

use std::sync::Arc;

use secrecy::ExposeSecret;
use tasklane_jobs::Transport;
use tasklane_jobs::embedded::SqlQueue;
use tasklane_jobs::redis::RedisQueue;
use tasklane_jobs::routed::Routed;
use tasklane_jobs::sqs::SqsQueue;

use crate::config::{Config, QueueTransport, WorkerConfig};
use crate::outbound::Outbound;

/// Task events published by the outbox relay.
pub const EVENTS: &str = "events";

/// Notification emails and daily digests.
pub const EMAIL: &str = "email";

/// Scheduled sweeps (deadline reminders, digests, archiving, pruning).
pub const MAINTENANCE: &str = "maintenance";

/// Report generation: its own queue, so the thousands of reports due when a period closes
/// never hold up reminders and sweeps.
pub const REPORTS: &str = "reports";

/// Every queue the workers consume.
pub const ALL: &[&str] = &[EVENTS, EMAIL, MAINTENANCE, REPORTS];

/// In `sqs` mode, the queues on SQS (events and notifications, which need its durability and
/// its dead-letter redrive); every other queue rides Redis.
pub const ON_SQS: &[&str] = &[EVENTS, EMAIL];

/// The queues a worker replica with `settings` consumes: those it names, or all of them.
pub fn consumed_by(settings: &WorkerConfig) -> anyhow::Result<Vec<String>> {
    if settings.queues.is_empty() {
        return Ok(ALL.iter().map(|queue| (*queue).to_owned()).collect());
    }
    if settings.queues.iter().any(|queue| !ALL.contains(&queue.as_str())) {
        anyhow::bail!("TASKLANE_WORKER_QUEUES names a queue that does not exist (the queues are {})", ALL.join(", "));
    }
    Ok(settings.queues.clone())
}

fn redis_transport(config: &Config) -> anyhow::Result<RedisQueue> {
    let Some(url) = &config.redis_url else {
        anyhow::bail!("TASKLANE_QUEUE={:?} needs TASKLANE_REDIS_URL", config.queue);
    };
    RedisQueue::connect(url.expose_secret(), &config.redis_prefix)
}

/// The SQS transport, on the outbound AWS configuration shared with SES and DynamoDB.
pub async fn sqs_transport(config: &Config, outbound: &Outbound) -> SqsQueue {
    SqsQueue::new(outbound.sqs().await.clone(), &config.sqs_queue_prefix)
}

/// The transport `config` asks for: the embedded SQL queue on `db`, Redis, or SQS for the
/// queues in [`ON_SQS`] with Redis for the rest.
pub async fn connect(
    config: &Config,
    db: &sea_orm::DatabaseConnection,
    outbound: &Outbound,
) -> anyhow::Result<Arc<dyn Transport>> {
    match config.queue {
        QueueTransport::Embedded => Ok(Arc::new(SqlQueue::new(db.clone()))),
        QueueTransport::Redis => Ok(Arc::new(redis_transport(config)?)),
        QueueTransport::Sqs => {
            let sqs: Arc<dyn Transport> = Arc::new(sqs_transport(config, outbound).await);
            let routes = ON_SQS.iter().map(|queue| ((*queue).to_owned(), sqs.clone())).collect();
            Ok(Arc::new(Routed::new(routes, Arc::new(redis_transport(config)?))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_consumes_the_queues_it_names_or_all_of_them() {
        let names = |queues: &[&str]| WorkerConfig {
            queues: queues.iter().map(|queue| (*queue).to_owned()).collect(),
            ..WorkerConfig::default()
        };
        assert_eq!(consumed_by(&names(&[])).unwrap(), ALL);
        assert_eq!(consumed_by(&names(&[REPORTS])).unwrap(), [REPORTS]);
        assert_eq!(
            consumed_by(&names(&[REPORTS, "billing"])).unwrap_err().to_string(),
            "TASKLANE_WORKER_QUEUES names a queue that does not exist (the queues are events, email, maintenance, reports)"
        );
    }
}
