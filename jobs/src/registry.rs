//! Which handler runs each job kind, over an application context `C` of the application's
//! choosing, and with which retry policy.

use std::collections::HashMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;

use crate::{Delivery, Job, JobError, RetryPolicies, RetryPolicy, Transport};

/// What a handler gets besides its payload.
#[derive(Clone)]
pub struct JobContext<C> {
    /// The application's own context (database, clients, configuration).
    pub state: C,
    /// This delivery's number, 1 for the first.
    pub attempt: u32,
    /// Where follow-up jobs are enqueued.
    pub jobs: Arc<dyn Transport>,
}

type Handler<C> = Arc<dyn Fn(JobContext<C>, Delivery) -> BoxFuture<'static, Result<(), JobError>> + Send + Sync>;

/// A registered kind: its queue and its handler.
struct Registered<C> {
    queue: &'static str,
    handler: Handler<C>,
}

/// Which handler runs each job kind, and the retry policies in force.
pub struct Registry<C> {
    handlers: HashMap<&'static str, Registered<C>>,
    policies: RetryPolicies,
}

impl<C> Default for Registry<C> {
    fn default() -> Self {
        Self::new(RetryPolicies::default())
    }
}

impl<C: Clone + Send + Sync + 'static> Registry<C> {
    /// Registers `handler` for job kind `J`.
    pub fn register<J, F, Fut>(&mut self, handler: F) -> &mut Self
    where
        J: Job,
        F: Fn(JobContext<C>, J) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<(), JobError>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        let erased: Handler<C> = Arc::new(move |ctx, delivery: Delivery| {
            let handler = handler.clone();
            Box::pin(async move {
                let job = J::decode(delivery.version, delivery.payload)?;
                handler(ctx, job).await
            })
        });
        self.handlers.insert(J::KIND, Registered { queue: J::QUEUE, handler: erased });
        self
    }

    /// Runs the handler for `delivery`; an unknown kind fails permanently.
    pub async fn dispatch(&self, ctx: JobContext<C>, delivery: Delivery) -> Result<(), JobError> {
        match self.handlers.get(delivery.kind.as_str()) {
            Some(registered) => (registered.handler)(ctx, delivery).await,
            None => Err(JobError::permanent(format!("no handler for job kind {}", delivery.kind))),
        }
    }
}

impl<C> Registry<C> {
    /// An empty registry whose jobs are retried as `policies` say.
    pub fn new(policies: RetryPolicies) -> Self {
        Self { handlers: HashMap::new(), policies }
    }

    /// The retry policies, to change (tests and tuning).
    pub fn policies_mut(&mut self) -> &mut RetryPolicies {
        &mut self.policies
    }

    /// The retry policy of a job of `kind` found on `queue`.
    pub fn retry_policy(&self, queue: &str, kind: &str) -> RetryPolicy {
        self.policies.policy(queue, kind)
    }

    /// The most deliveries any job on `queue` may get: what a broker-side dead-letter rule
    /// (an SQS redrive policy) must allow before it steps in.
    pub fn max_attempts_on(&self, queue: &str) -> u32 {
        self.handlers
            .iter()
            .filter(|(_, registered)| registered.queue == queue)
            .map(|(kind, _)| self.policies.policy(queue, kind).max_attempts)
            .chain([self.policies.queue_policy(queue).max_attempts])
            .max()
            .unwrap_or(self.policies.default.max_attempts)
    }

    /// The registered kinds with their queues, sorted by queue then kind.
    pub fn kinds(&self) -> Vec<(&'static str, &'static str)> {
        let mut kinds: Vec<_> = self.handlers.iter().map(|(kind, registered)| (registered.queue, *kind)).collect();
        kinds.sort_unstable();
        kinds
    }
}
