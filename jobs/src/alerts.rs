//! Operator alerts for jobs that reach a dead-letter queue: grouped by queue and kind; the
//! first dead letter of a queue and kind is announced at once, and later ones within a
//! cooldown wait in an [`AlertLedger`] shared by every replica and are announced together
//! (how many, since when, the first and last error) once it is over, so a burst of failures
//! is one or two messages, not a flood. Sending never blocks job processing; an alert that
//! cannot be sent is logged and counted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::alert_ledger::{AlertLedger, MemoryLedger, Waiting};

/// One job that was just dead-lettered.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    /// Queue.
    pub queue: String,
    /// Job kind.
    pub kind: String,
    /// Why it died.
    pub error: String,
}

/// Dead letters of one queue and kind to announce, and how to replay them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeadLetterGroup {
    /// What died: queue, kind, how many, since when, the first and last error.
    #[serde(flatten)]
    pub dead: Waiting,
    /// How an operator puts them back (a command line, a link), from the application.
    pub replay_hint: String,
}

impl DeadLetterGroup {
    fn announcing(dead: Waiting, replay_hint: &ReplayHint) -> Self {
        Self { replay_hint: replay_hint(&dead.queue, &dead.kind), dead }
    }
}

/// Where alerts go: the log ([`LogSink`]), or a chat or paging service of the application's.
#[async_trait::async_trait]
pub trait AlertSink: Send + Sync {
    /// Delivers one batched alert.
    async fn send(&self, groups: &[DeadLetterGroup], dropped: u64) -> anyhow::Result<()>;

    /// Says that a replay of `replayed` jobs emptied `queue`'s dead letters.
    async fn cleared(&self, queue: &str, replayed: u64) -> anyhow::Result<()> {
        tracing::info!(queue, replayed, "dead letters replayed; none are left");
        Ok(())
    }
}

/// Writes alerts to the log at warning level.
pub struct LogSink;

#[async_trait::async_trait]
impl AlertSink for LogSink {
    async fn send(&self, groups: &[DeadLetterGroup], dropped: u64) -> anyhow::Result<()> {
        for group in groups {
            let dead = &group.dead;
            tracing::warn!(queue = %dead.queue, kind = %dead.kind, count = dead.count,
                first_error = %dead.first_error, last_error = %dead.last_error, replay = %group.replay_hint,
                dropped, "jobs dead-lettered");
        }
        Ok(())
    }
}

/// Says how an operator replays the dead jobs of a queue and kind.
pub type ReplayHint = Arc<dyn Fn(&str, &str) -> String + Send + Sync>;

/// The sending side handed to workers.
#[derive(Clone)]
pub struct Alerts {
    sender: mpsc::Sender<DeadLetter>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Alerts {
    /// Starts the alert loop of one process, announcing what arrives within `window` together.
    pub fn start(sink: Arc<dyn AlertSink>, window: Duration, replay_hint: ReplayHint) -> Self {
        let settings = AlertSettings { window, cooldown: Duration::ZERO, ledger: Arc::new(MemoryLedger::default()) };
        Self::start_with(sink, replay_hint, settings)
    }

    /// Starts the alert loop: arrivals are gathered for the window, grouped by queue and kind
    /// and added to the ledger, which says which groups may be announced now; the rest are
    /// announced, with whatever else died meanwhile, when their cooldown is over. The groups
    /// say how to replay them as `replay_hint` words it.
    pub fn start_with(sink: Arc<dyn AlertSink>, replay_hint: ReplayHint, settings: AlertSettings) -> Self {
        let (sender, receiver) = mpsc::channel(10_000);
        let dropped = Arc::new(std::sync::atomic::AtomicU64::new(0));
        tokio::spawn(announce(receiver, sink, replay_hint, settings, dropped.clone()));
        Self { sender, dropped }
    }

    /// Announces a dead-lettered job without waiting; if the alert backlog is full the arrival
    /// is counted and mentioned in the next alert instead.
    pub fn dead_lettered(&self, dead: DeadLetter) {
        if self.sender.try_send(dead).is_err() {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// How alerts are gathered and spaced out.
#[derive(Clone)]
pub struct AlertSettings {
    /// Dead letters arriving within this long of the first are grouped together.
    pub window: Duration,
    /// A queue and kind is announced at most once per cooldown.
    pub cooldown: Duration,
    /// Where announcements are recorded (shared by every replica to space them out together).
    pub ledger: Arc<dyn AlertLedger>,
}

/// Groups arrivals by queue and kind, keeping the count and the first and last error.
fn group(arrivals: &[DeadLetter]) -> Vec<Waiting> {
    let now = crate::now();
    let mut groups: BTreeMap<(String, String), Waiting> = BTreeMap::new();
    for dead in arrivals {
        let group = groups.entry((dead.queue.clone(), dead.kind.clone())).or_insert_with(|| Waiting {
            queue: dead.queue.clone(),
            kind: dead.kind.clone(),
            count: 0,
            since: now,
            first_error: dead.error.clone(),
            last_error: dead.error.clone(),
        });
        group.count += 1;
        group.last_error.clone_from(&dead.error);
    }
    groups.into_values().collect()
}

/// How often a replica looks for announcements whose cooldown is over.
fn due_check_every(cooldown: Duration) -> Duration {
    (cooldown / 10).clamp(Duration::from_millis(200), Duration::from_secs(10))
}

async fn announce(
    mut receiver: mpsc::Receiver<DeadLetter>,
    sink: Arc<dyn AlertSink>,
    replay_hint: ReplayHint,
    settings: AlertSettings,
    dropped: Arc<std::sync::atomic::AtomicU64>,
) {
    let mut due_check = tokio::time::interval(due_check_every(settings.cooldown));
    due_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let groups = tokio::select! {
            arrival = receiver.recv() => {
                let Some(first) = arrival else { return };
                let mut arrivals = vec![first];
                let deadline = tokio::time::Instant::now() + settings.window;
                while let Ok(Some(next)) = tokio::time::timeout_at(deadline, receiver.recv()).await {
                    arrivals.push(next);
                }
                let mut now_due = Vec::new();
                for arrived in group(&arrivals) {
                    match settings.ledger.add(&arrived, crate::now(), settings.cooldown).await {
                        Ok(Some(waiting)) => now_due.push(DeadLetterGroup::announcing(waiting, &replay_hint)),
                        Ok(None) => {}
                        // Better one alert too many than a dead letter nobody hears of.
                        Err(err) => {
                            tracing::warn!(error = %format!("{err:#}"), "cannot record the dead letters; announcing them now");
                            now_due.push(DeadLetterGroup::announcing(arrived, &replay_hint));
                        }
                    }
                }
                now_due
            }
            _ = due_check.tick() => match settings.ledger.due(crate::now(), settings.cooldown).await {
                Ok(waiting) => waiting.into_iter().map(|w| DeadLetterGroup::announcing(w, &replay_hint)).collect(),
                Err(err) => {
                    tracing::warn!(error = %format!("{err:#}"), "cannot read the dead letters waiting to be announced");
                    Vec::new()
                }
            },
        };
        let lost = dropped.swap(0, std::sync::atomic::Ordering::Relaxed);
        if groups.is_empty() && lost == 0 {
            continue;
        }
        if let Err(err) = sink.send(&groups, lost).await {
            metrics::counter!("tasklane_alerts_failed_total").increment(1);
            tracing::error!(error = %err, groups = ?groups, "cannot send the dead-letter alert");
        } else {
            metrics::counter!("tasklane_alerts_sent_total").increment(1);
        }
    }
}
