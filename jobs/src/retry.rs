//! How often and how patiently failed jobs are tried again: one default policy, overridden
//! per queue and per job kind.

use std::collections::BTreeMap;
use std::time::Duration;

use rand::Rng;

/// How often and how patiently a job is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Deliveries allowed in all (the first one included).
    pub max_attempts: u32,
    /// Delay before the second delivery; it doubles with each further one.
    pub base_delay: Duration,
    /// Longest delay between deliveries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { max_attempts: 8, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(600) }
    }
}

impl RetryPolicy {
    /// The delay after failed delivery number `attempt` (1-based): exponential, capped, with
    /// jitter in its upper half so a burst of failures does not retry in lockstep.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self.base_delay.saturating_mul(1u32 << exponent).min(self.max_delay);
        let half = full / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }

    /// True when delivery number `attempt` was the last one allowed.
    pub fn exhausted(&self, attempt: u32) -> bool {
        attempt >= self.max_attempts
    }

    /// The longest a job can wait in all before it is dead-lettered, at the longest jitter.
    pub fn longest_wait(&self) -> Duration {
        (1..self.max_attempts)
            .map(|attempt| self.base_delay.saturating_mul(1u32 << (attempt - 1).min(30)).min(self.max_delay))
            .sum()
    }
}

/// Changes to a policy; what is left unset is inherited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetryOverride {
    /// Deliveries allowed in all.
    pub max_attempts: Option<u32>,
    /// Delay before the second delivery.
    pub base_delay: Option<Duration>,
    /// Longest delay between deliveries.
    pub max_delay: Option<Duration>,
}

impl RetryOverride {
    /// These settings where they are set, `under`'s elsewhere.
    pub fn over(self, under: Self) -> Self {
        Self {
            max_attempts: self.max_attempts.or(under.max_attempts),
            base_delay: self.base_delay.or(under.base_delay),
            max_delay: self.max_delay.or(under.max_delay),
        }
    }

    /// `policy` with this override's settings in place of its own.
    pub fn applied_to(&self, policy: RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            max_attempts: self.max_attempts.unwrap_or(policy.max_attempts).max(1),
            base_delay: self.base_delay.unwrap_or(policy.base_delay),
            max_delay: self.max_delay.unwrap_or(policy.max_delay),
        }
    }
}

/// The retry policy of every queue and job kind: a default, overridden per queue, then per
/// kind (a kind's override wins over its queue's).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetryPolicies {
    /// What applies when nothing more specific is set.
    pub default: RetryPolicy,
    /// Overrides by queue name.
    pub queues: BTreeMap<String, RetryOverride>,
    /// Overrides by job kind.
    pub kinds: BTreeMap<String, RetryOverride>,
}

impl RetryPolicies {
    /// The policy of jobs of `kind` on `queue`.
    pub fn policy(&self, queue: &str, kind: &str) -> RetryPolicy {
        let mut policy = self.default;
        if let Some(queue) = self.queues.get(queue) {
            policy = queue.applied_to(policy);
        }
        if let Some(kind) = self.kinds.get(kind) {
            policy = kind.applied_to(policy);
        }
        policy
    }

    /// The policy of `queue` itself, before any kind's override.
    pub fn queue_policy(&self, queue: &str) -> RetryPolicy {
        self.queues.get(queue).map_or(self.default, |queue| queue.applied_to(self.default))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let policy =
            RetryPolicy { max_attempts: 8, base_delay: Duration::from_secs(2), max_delay: Duration::from_secs(60) };
        for attempt in 1..=10 {
            let full = Duration::from_secs(2 * (1u64 << (attempt - 1))).min(Duration::from_secs(60));
            let delay = policy.delay_after(attempt);
            assert!(delay >= full / 2 && delay <= full, "attempt {attempt}: {delay:?}");
        }
        assert!(!policy.exhausted(7));
        assert!(policy.exhausted(8));
        assert_eq!(policy.longest_wait(), Duration::from_secs(2 + 4 + 8 + 16 + 32 + 60 + 60));
    }

    #[test]
    fn a_kind_overrides_its_queue_which_overrides_the_default() {
        let mut policies = RetryPolicies::default();
        policies.queues.insert(
            "billing".into(),
            RetryOverride { base_delay: Some(Duration::from_secs(10)), max_attempts: Some(5), ..Default::default() },
        );
        policies.kinds.insert("invoice.send".into(), RetryOverride { max_attempts: Some(2), ..Default::default() });
        let send = policies.policy("billing", "invoice.send");
        assert_eq!(
            (send.max_attempts, send.base_delay, send.max_delay),
            (2, Duration::from_secs(10), Duration::from_secs(600))
        );
        assert_eq!(policies.policy("billing", "invoice.remind").max_attempts, 5);
        assert_eq!(policies.policy("other", "invoice.send").base_delay, Duration::from_secs(2));
        assert_eq!(policies.queue_policy("billing").max_attempts, 5);
        let zero = RetryOverride { max_attempts: Some(0), ..Default::default() };
        assert_eq!(zero.applied_to(RetryPolicy::default()).max_attempts, 1, "a job is always tried once");
    }
}
