//! Operator alerts on Discord: one webhook message per batch of dead-lettered jobs, in
//! Discord's webhook payload (`content` plus `embeds`), honouring its 429 `retry_after`.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use tasklane_jobs::alerts::{AlertSink, DeadLetterGroup};

/// Discord allows at most 10 embeds per message; the rest are summed up in the content.
const MAX_EMBEDS: usize = 10;
/// How often one alert is tried when Discord keeps answering 429.
const MAX_TRIES: u32 = 4;
/// Longest wait Discord may ask for before we give up on this alert.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// Posts alerts to a Discord webhook. The webhook's URL holds its token, so it is kept secret
/// and never part of an error: reqwest's errors name the URL, and are stripped of it here.
pub struct DiscordSink {
    client: reqwest::Client,
    url: SecretString,
}

impl DiscordSink {
    /// A sink posting to `url` (`https://discord.com/api/webhooks/…`).
    pub fn new(client: reqwest::Client, url: SecretString) -> Self {
        Self { client, url }
    }
}

/// A transport failure without the URL it was for.
fn unreachable(err: reqwest::Error) -> anyhow::Error {
    anyhow::anyhow!("cannot reach Discord: {}", err.without_url())
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut clipped: String = text.chars().take(max.saturating_sub(1)).collect();
    clipped.push('…');
    clipped
}

/// The webhook body for one batch.
pub fn payload(groups: &[DeadLetterGroup], dropped: u64) -> Value {
    let total: u64 = groups.iter().map(|group| group.dead.count).sum::<u64>() + dropped;
    let mut content = format!(
        "⚠️ **{total} job{} dead-lettered** in {} queue/kind group{}",
        if total == 1 { "" } else { "s" },
        groups.len(),
        if groups.len() == 1 { "" } else { "s" }
    );
    if groups.len() > MAX_EMBEDS {
        content.push_str(&format!(" ({} more groups not shown)", groups.len() - MAX_EMBEDS));
    }
    if dropped > 0 {
        content.push_str(&format!("; {dropped} more arrived while alerts were backed up"));
    }
    let embeds: Vec<Value> = groups
        .iter()
        .take(MAX_EMBEDS)
        .map(|group| {
            let dead = &group.dead;
            json!({
                "title": clip(&format!("{} × {} on queue {}", dead.count, dead.kind, dead.queue), 256),
                "color": 0xE0_3E_3E,
                "fields": [
                    { "name": "Queue", "value": clip(&dead.queue, 1024), "inline": true },
                    { "name": "Job kind", "value": clip(&dead.kind, 1024), "inline": true },
                    { "name": "Count", "value": dead.count.to_string(), "inline": true },
                    { "name": "Since", "value": dead.since.format("%Y-%m-%d %H:%M:%S UTC").to_string(), "inline": true },
                    { "name": "First error", "value": clip(&format!("```{}```", dead.first_error), 1024) },
                    { "name": "Last error", "value": clip(&format!("```{}```", dead.last_error), 1024) },
                    { "name": "Replay", "value": clip(&format!("`{}`", group.replay_hint), 1024) },
                ],
                "timestamp": crate::now().to_rfc3339(),
            })
        })
        .collect();
    json!({ "content": clip(&content, 2000), "embeds": embeds, "allowed_mentions": { "parse": [] } })
}

/// Seconds Discord asks us to wait, from the 429 body (`retry_after`) or `Retry-After`.
fn retry_after(headers: &reqwest::header::HeaderMap, body: &Value) -> Duration {
    let seconds = body
        .get("retry_after")
        .and_then(Value::as_f64)
        .or_else(|| headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()))
        .unwrap_or(1.0);
    Duration::from_secs_f64(seconds.clamp(0.0, 3600.0))
}

#[async_trait::async_trait]
impl AlertSink for DiscordSink {
    async fn send(&self, groups: &[DeadLetterGroup], dropped: u64) -> anyhow::Result<()> {
        self.post(&payload(groups, dropped)).await
    }

    async fn cleared(&self, queue: &str, replayed: u64) -> anyhow::Result<()> {
        let content = format!(
            "✅ **{replayed} dead job{} of queue {} replayed**; its dead letters are empty",
            if replayed == 1 { "" } else { "s" },
            clip(queue, 200)
        );
        self.post(&json!({ "content": content, "allowed_mentions": { "parse": [] } })).await
    }
}

impl DiscordSink {
    async fn post(&self, body: &Value) -> anyhow::Result<()> {
        let sent = self.post_once(body).await;
        crate::telemetry::count_outbound("discord", if sent.is_ok() { "ok" } else { "unavailable" });
        sent
    }

    async fn post_once(&self, body: &Value) -> anyhow::Result<()> {
        for _ in 0..MAX_TRIES {
            let response = self.client.post(self.url.expose_secret()).json(body).send().await.map_err(unreachable)?;
            let status = response.status();
            if status.is_success() {
                return Ok(());
            }
            if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                let headers = response.headers().clone();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                let wait = retry_after(&headers, &answer);
                if wait > MAX_RETRY_AFTER {
                    anyhow::bail!("Discord rate-limited the alert for {wait:?}");
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("Discord answered {status}: {}", clip(&text, 300));
        }
        anyhow::bail!("Discord kept rate-limiting the alert")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tasklane_jobs::alert_ledger::Waiting;

    #[test]
    fn the_payload_fits_discords_limits_and_names_the_replay_command() {
        let groups: Vec<DeadLetterGroup> = (0..12)
            .map(|i| DeadLetterGroup {
                dead: Waiting {
                    queue: "email".into(),
                    kind: format!("kind{i}"),
                    count: 2,
                    since: crate::now(),
                    first_error: "x".repeat(5000),
                    last_error: "y".into(),
                },
                replay_hint: format!("tasklane dlq replay email --kind kind{i}"),
            })
            .collect();
        let body = payload(&groups, 3);
        assert_eq!(body["embeds"].as_array().unwrap().len(), 10);
        assert!(body["content"].as_str().unwrap().starts_with("⚠️ **27 jobs dead-lettered**"));
        let fields = body["embeds"][0]["fields"].as_array().unwrap();
        assert!(fields.iter().all(|f| f["value"].as_str().unwrap().chars().count() <= 1024));
        assert_eq!(fields[6]["value"], "`tasklane dlq replay email --kind kind0`");
    }

    #[test]
    fn retry_after_comes_from_the_body_or_the_header() {
        let mut headers = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&headers, &json!({"retry_after": 0.25})), Duration::from_millis(250));
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers, &Value::Null), Duration::from_secs(2));
    }
}
