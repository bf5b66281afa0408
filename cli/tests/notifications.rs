//! SES failing: emails are retried, dead-lettered, announced on Discord once, and after the
//! endpoint is back `tasklane dlq replay` delivers each of them exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};
use tasklane_entity::notifications;
use tasklane_jobs::{RetryOverride, Transport};
use tasklane_testkit::{fresh_context, member, wait_until};

const PATIENCE: Duration = Duration::from_secs(30);

/// A Discord webhook stand-in: checks each body against Discord's webhook rules, answers the
/// first post with 429 and `retry_after`, accepts the rest.
#[derive(Clone, Default)]
struct Discord {
    posts: Arc<Mutex<Vec<Value>>>,
    accepted: Arc<Mutex<Vec<Value>>>,
}

fn check_webhook_shape(body: &Value) -> Result<(), String> {
    let content = body["content"].as_str().ok_or("content must be a string")?;
    if content.is_empty() || content.chars().count() > 2000 {
        return Err("content must be 1 to 2000 characters".into());
    }
    let embeds = match body.get("embeds") {
        None => &Vec::new(),
        Some(embeds) => embeds.as_array().ok_or("embeds must be an array")?,
    };
    if embeds.len() > 10 {
        return Err("at most 10 embeds".into());
    }
    for embed in embeds {
        if embed["title"].as_str().is_none_or(|t| t.chars().count() > 256) {
            return Err("embed titles are at most 256 characters".into());
        }
        let fields = embed["fields"].as_array().ok_or("embed fields must be an array")?;
        for field in fields {
            let name = field["name"].as_str().ok_or("field name")?;
            let value = field["value"].as_str().ok_or("field value")?;
            if name.is_empty() || name.chars().count() > 256 || value.is_empty() || value.chars().count() > 1024 {
                return Err(format!("field {name:?} breaks Discord's limits"));
            }
        }
    }
    Ok(())
}

impl Discord {
    async fn start(&self) -> String {
        let discord = self.clone();
        let app = axum::Router::new().route(
            "/api/webhooks/1/token",
            axum::routing::post(move |Json(body): Json<Value>| {
                let discord = discord.clone();
                async move {
                    if let Err(problem) = check_webhook_shape(&body) {
                        return (StatusCode::BAD_REQUEST, problem).into_response();
                    }
                    let first = {
                        let mut posts = discord.posts.lock().unwrap();
                        posts.push(body.clone());
                        posts.len() == 1
                    };
                    if first {
                        let limited =
                            json!({ "message": "You are being rate limited.", "retry_after": 0.2, "global": false });
                        return (StatusCode::TOO_MANY_REQUESTS, Json(limited)).into_response();
                    }
                    discord.accepted.lock().unwrap().push(body);
                    StatusCode::NO_CONTENT.into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/api/webhooks/1/token", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }
}

fn start(
    ctx: tasklane_core::AppContext,
    registry: tasklane_jobs::Registry<tasklane_core::jobs::JobServices>,
) -> impl FnOnce() {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let transport = tasklane_worker::transport(&ctx).await.unwrap();
        tasklane_worker::run_with(ctx, transport, registry, async move {
            let _ = stopped.await;
        })
        .await
    });
    move || {
        let _ = stop.send(());
        drop(running);
    }
}

#[tokio::test]
#[ignore = "needs services: scripts/test"]
async fn ses_outage_dead_letters_alerts_once_and_replay_sends_each_email_once() {
    use secrecy::ExposeSecret;
    tasklane_testkit::assert_local_aws();
    let discord = Discord::default();
    let webhook = discord.start().await;
    let webhook_for_replay = webhook.clone();
    let sender = format!("tasklane-{}@example.com", tasklane_core::auth::tokens::new_id().to_lowercase());
    let from = sender.clone();
    let (ctx, _dir) = fresh_context(move |config| {
        config.notify.email = tasklane_core::config::EmailTransport::Ses;
        config.notify.email_from = from;
        config.notify.discord_webhook_url = Some(webhook.into());
        config.notify.alert_window_secs = 5;
        config.worker.shutdown_grace_secs = 2;
    })
    .await;
    ctx.outbound.ses().await.create_email_identity().email_identity(&sender).send().await.unwrap();

    // SES unreachable: every email fails, is retried once, and dies.
    let mut broken = ctx.clone();
    broken.outbound = Arc::new(tasklane_core::outbound::Outbound::with_aws_endpoint("http://127.0.0.1:9"));
    let mut registry = tasklane_core::jobs::configured_registry(&ctx.config).unwrap();
    let impatient = RetryOverride {
        max_attempts: Some(2),
        base_delay: Some(Duration::from_millis(20)),
        max_delay: Some(Duration::from_millis(50)),
    };
    registry.policies_mut().kinds.insert("email.send".into(), impatient);
    let stop_broken = start(broken, registry);
    let cara = member(&ctx, "cara@example.com").await;
    let pia = member(&ctx, "pia@example.com").await;
    let sup = member(&ctx, "sup@example.com").await;
    let body = json!({ "name": "while SES is down", "pic": pia.user_id, "supervisor": sup.user_id });
    tasklane_core::tasks::create(&ctx, &cara, serde_json::from_value(body).unwrap()).await.unwrap();

    let queue = tasklane_jobs::embedded::SqlQueue::new(ctx.db.clone());
    wait_until("both emails dead-lettered", PATIENCE, async || queue.stats("email").await.unwrap().dead == 2).await;
    wait_until("the Discord alert", PATIENCE, async || !discord.accepted.lock().unwrap().is_empty()).await;
    stop_broken();

    let alerts = discord.accepted.lock().unwrap().clone();
    assert_eq!(alerts.len(), 1, "both dead letters in one alert: {alerts:?}");
    assert_eq!(discord.posts.lock().unwrap().len(), 2, "the 429 was retried after retry_after");
    let alert = &alerts[0];
    assert!(alert["content"].as_str().unwrap().contains("2 jobs dead-lettered"), "{alert}");
    let fields = alert["embeds"][0]["fields"].as_array().unwrap();
    let field = |name: &str| fields.iter().find(|f| f["name"] == name).unwrap()["value"].as_str().unwrap().to_owned();
    assert_eq!(field("Queue"), "email");
    assert_eq!(field("Job kind"), "email.send");
    assert_eq!(field("Count"), "2");
    assert!(field("First error").contains("SES did not take the email"), "{}", field("First error"));
    assert_eq!(field("Replay"), "`tasklane dlq replay email --kind email.send`");
    assert!(tasklane_testkit::emulated_emails_from(&sender).await.is_empty());

    // The endpoint is back: the operator replays, a healthy worker sends each email once.
    let mut replay = std::process::Command::new(env!("CARGO_BIN_EXE_tasklane"));
    replay
        .args(["dlq", "replay", "email", "--kind", "email.send", "-o", "json"])
        .env("TASKLANE_DATA_DIR", &ctx.config.data_dir)
        .env("TASKLANE_DATABASE_URL", ctx.config.database_url.expose_secret())
        .env("TASKLANE_JWT_SECRET", tasklane_testkit::JWT_SECRET)
        .env("TASKLANE_DISCORD_WEBHOOK_URL", &webhook_for_replay)
        .env_remove("TASKLANE_QUEUE");
    // Off the test's runtime thread, which serves the Discord stand-in the CLI posts to.
    let replay = tokio::task::spawn_blocking(move || replay.output()).await.unwrap().unwrap();
    assert!(replay.status.success(), "{}", String::from_utf8_lossy(&replay.stderr));
    let replayed: Value = serde_json::from_slice(&replay.stdout).unwrap();
    assert_eq!(replayed, json!({ "replayed": 2 }));
    // The replay emptied the dead letters: one message says so.
    let after_replay = discord.accepted.lock().unwrap().clone();
    assert_eq!(after_replay.len(), 2, "{after_replay:?}");
    let cleared = after_replay[1]["content"].as_str().unwrap();
    assert!(cleared.contains("2 dead jobs of queue email replayed"), "{cleared}");

    let stop_healthy = start(ctx.clone(), tasklane_core::jobs::configured_registry(&ctx.config).unwrap());
    wait_until("both emails in SES", PATIENCE, async || {
        tasklane_testkit::emulated_emails_from(&sender).await.len() >= 2
    })
    .await;
    wait_until("the email queue to drain", PATIENCE, async || {
        let stats = queue.stats("email").await.unwrap();
        stats.ready + stats.in_flight + stats.scheduled + stats.dead == 0
    })
    .await;
    stop_healthy();
    let messages = tasklane_testkit::emulated_emails_from(&sender).await;
    let mut recipients: Vec<&str> =
        messages.iter().map(|m| m["destinations"]["ToAddresses"][0].as_str().unwrap()).collect();
    recipients.sort();
    assert_eq!(recipients, ["pia@example.com", "sup@example.com"], "each email exactly once");
    let rows =
        notifications::Entity::find().filter(notifications::Column::Channel.eq("email")).all(&ctx.db).await.unwrap();
    assert!(rows.iter().all(|row| row.status == "sent" && row.attempts == 3), "{rows:?}");
}

#[tokio::test]
async fn the_archive_is_read_back_from_the_cli() {
    use secrecy::ExposeSecret;
    let (ctx, _dir) = fresh_context(|_| {}).await;
    let cara = member(&ctx, "cara@example.com").await;
    let body = json!({ "name": "archived locally" });
    let task = tasklane_core::tasks::create(&ctx, &cara, serde_json::from_value(body).unwrap()).await.unwrap().id;
    let change = serde_json::from_value(json!({ "status": "done" })).unwrap();
    tasklane_core::tasks::update(&ctx, &cara, task, change, None).await.unwrap();
    let tasklane = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tasklane"))
            .args(args)
            .env("TASKLANE_DATA_DIR", &ctx.config.data_dir)
            .env("TASKLANE_DATABASE_URL", ctx.config.database_url.expose_secret())
            .env("TASKLANE_JWT_SECRET", tasklane_testkit::JWT_SECRET)
            .env_remove("TASKLANE_ARCHIVE")
            .output()
            .unwrap()
    };
    let init = tasklane(&["archive", "init"]);
    assert!(init.status.success());
    assert!(String::from_utf8_lossy(&init.stderr).contains("nothing to create"));
    let by_task = tasklane(&["archive", "query", "--task", &task.to_string(), "-o", "json"]);
    assert!(by_task.status.success(), "{}", String::from_utf8_lossy(&by_task.stderr));
    let events: Vec<Value> = serde_json::from_slice(&by_task.stdout).unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["task.created", "task.status_changed"]);
    let by_user = tasklane(&["archive", "query", "--user", "cara@example.com", "--since", "2000-01-01"]);
    let table = String::from_utf8(by_user.stdout).unwrap();
    assert_eq!(table.lines().count(), 3, "a header and two events:\n{table}");
    let neither = tasklane(&["archive", "query"]);
    assert!(!neither.status.success());
    let bad_since = tasklane(&["archive", "query", "--task", "1", "--since", "yesterday"]);
    assert!(String::from_utf8_lossy(&bad_since.stderr).contains("YYYY-MM-DD"));
}
