//! Dead-letter alerts: a burst is one message grouped by queue and kind, and across worker
//! replicas the first dead letter of a queue and kind is announced at once while the rest
//! within the cooldown are summed up in one more message.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tasklane_jobs::alert_ledger::SqlAlertLedger;
use tasklane_jobs::alerts::{AlertSettings, AlertSink, Alerts, DeadLetter, DeadLetterGroup, ReplayHint};

#[derive(Default)]
struct Recorder(tokio::sync::Mutex<Vec<Vec<DeadLetterGroup>>>);

#[async_trait::async_trait]
impl AlertSink for Recorder {
    async fn send(&self, groups: &[DeadLetterGroup], _dropped: u64) -> anyhow::Result<()> {
        self.0.lock().await.push(groups.to_vec());
        Ok(())
    }
}

fn replica(sink: Arc<Recorder>, db: &sea_orm::DatabaseConnection, cooldown: Duration) -> Alerts {
    let hint: ReplayHint = Arc::new(|queue, kind| format!("replay {queue} --kind {kind}"));
    let settings = AlertSettings {
        window: Duration::from_millis(20),
        cooldown,
        ledger: Arc::new(SqlAlertLedger::new(db.clone())),
    };
    Alerts::start_with(sink, hint, settings)
}

#[tokio::test]
async fn a_burst_becomes_one_grouped_alert() {
    let recorder = Arc::new(Recorder::default());
    let hint: ReplayHint = Arc::new(|queue, kind| format!("ops replay {queue} --kind {kind}"));
    let alerts = Alerts::start(recorder.clone(), Duration::from_millis(100), hint);
    for i in 0..50 {
        let kind = if i % 10 == 0 { "invoice.send" } else { "order.placed" };
        alerts.dead_lettered(DeadLetter { queue: "orders".into(), kind: kind.into(), error: format!("boom {i}") });
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while recorder.0.lock().await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no alert was sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let sent = recorder.0.lock().await.clone();
    assert_eq!(sent.len(), 1, "one alert for the whole burst");
    assert_eq!(sent[0].len(), 2);
    let orders_group = sent[0].iter().find(|g| g.dead.kind == "order.placed").unwrap();
    let orders = &orders_group.dead;
    assert_eq!((orders.count, orders.first_error.as_str(), orders.last_error.as_str()), (45, "boom 1", "boom 49"));
    assert_eq!(orders_group.replay_hint, "ops replay orders --kind order.placed");
}

/// The production shape scaled down 100 times: ten emails dead-lettered over four minutes
/// (here 2.4 s) on two replicas, with a five-minute cooldown (here 3 s).
#[tokio::test]
async fn ten_dead_letters_on_two_replicas_make_two_messages_that_add_up_to_ten() {
    let test_db = common::fresh_db().await;
    let sink = Arc::new(Recorder::default());
    let cooldown = Duration::from_secs(3);
    let replicas = [replica(sink.clone(), &test_db.db, cooldown), replica(sink.clone(), &test_db.db, cooldown)];
    let started = std::time::Instant::now();
    for i in 0..10 {
        replicas[i % 2].dead_lettered(DeadLetter {
            queue: "email".into(),
            kind: "email.send".into(),
            error: format!("SES is down ({i})"),
        });
        tokio::time::sleep(Duration::from_millis(240)).await;
    }
    let counted = async || sink.0.lock().await.iter().flatten().map(|g| g.dead.count).sum::<u64>();
    common::wait_until("every dead letter to be announced", Duration::from_secs(15), async || counted().await == 10)
        .await;
    let sent = sink.0.lock().await.clone();
    assert_eq!(sent.len(), 2, "one message at once, one summary after the cooldown: {sent:#?}");
    let (first, summary) = (&sent[0][0].dead, &sent[1][0].dead);
    assert_eq!((first.count, first.first_error.as_str()), (1, "SES is down (0)"));
    assert_eq!(summary.count, 9);
    assert_eq!((summary.first_error.as_str(), summary.last_error.as_str()), ("SES is down (1)", "SES is down (9)"));
    assert!(summary.since > first.since);
    assert_eq!(sent[1][0].replay_hint, "replay email --kind email.send");
    assert!(started.elapsed() >= cooldown, "the summary waited for the cooldown");

    // Once the cooldown is over again, the next dead letter is announced at once.
    tokio::time::sleep(cooldown).await;
    replicas[1].dead_lettered(DeadLetter { queue: "email".into(), kind: "email.send".into(), error: "again".into() });
    common::wait_until("the next announcement", Duration::from_secs(5), async || counted().await == 11).await;
    assert_eq!(sink.0.lock().await.len(), 3);
}
