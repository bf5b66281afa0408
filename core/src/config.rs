//! Configuration: defaults, then an optional TOML file, then `TASKLANE_*` environment variables.
//! Secrets are `SecretString`s so they never reach logs or `Debug` output.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use secrecy::SecretString;
use serde::Deserialize;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Settings for sign-in, tokens and brute-force protection.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Access-token lifetime in seconds.
    pub access_token_ttl_secs: u64,
    /// Refresh-token (and so session) idle lifetime in seconds.
    pub refresh_token_ttl_secs: u64,
    /// Failed sign-ins allowed per account within the window.
    pub max_failures_per_account: u32,
    /// Failed sign-ins allowed per client address within the window.
    pub max_failures_per_address: u32,
    /// Length of the failed sign-in counting window in seconds.
    pub failure_window_secs: u64,
    /// The `iss` claim of access tokens.
    pub issuer: String,
    /// The `aud` claim of access tokens.
    pub audience: String,
    /// Trust the first `X-Forwarded-For` address (only behind a proxy that sets it).
    pub trust_forwarded_for: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl_secs: 15 * 60,
            refresh_token_ttl_secs: 30 * 24 * 3600,
            max_failures_per_account: 5,
            max_failures_per_address: 50,
            failure_window_secs: 15 * 60,
            issuer: "tasklane".into(),
            audience: "tasklane-api".into(),
            trust_forwarded_for: false,
        }
    }
}

/// Which transport carries events and jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueTransport {
    /// The SQL database itself (the default; nothing else to run).
    Embedded,
    /// Redis Streams.
    Redis,
    /// Amazon SQS for events and notifications, Redis for the rest.
    Sqs,
}

/// Settings for the job workers.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// This replica's unique name.
    pub name: String,
    /// Jobs of one queue running at once in this replica.
    pub concurrency: usize,
    /// How long a claimed job is reserved (extended while it runs).
    pub lease_secs: u64,
    /// How long running jobs get to finish after SIGTERM.
    pub shutdown_grace_secs: u64,
    /// Where `tasklane-worker` serves `/healthz`, `/readyz` and `/metrics`.
    pub listen: SocketAddr,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        let host = std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        let host = if host.is_empty() { "tasklane".to_owned() } else { host };
        Self {
            name: format!("{host}-{}", std::process::id()),
            concurrency: 16,
            lease_secs: 30,
            shutdown_grace_secs: 25,
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        }
    }
}

/// Where notification emails go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    /// An `.eml` file per message under `<data dir>/mail/` (the embedded default).
    File,
    /// Amazon SES (SESv2 `SendEmail`).
    Ses,
}

/// Settings for notifications.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    /// How emails are sent.
    pub email: EmailTransport,
    /// The sender address (an SES verified identity when sending through SES).
    pub email_from: String,
    /// Base URL of the web app, for links in emails.
    pub public_url: String,
    /// Hour of the day (UTC) when daily digests go out.
    pub digest_hour_utc: u32,
    /// Discord webhook for operator alerts (dead letters); off when unset.
    pub discord_webhook_url: Option<SecretString>,
    /// How long dead-letter arrivals are gathered into one alert, in seconds.
    pub alert_window_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            email: EmailTransport::File,
            email_from: "tasklane@localhost".into(),
            public_url: "http://localhost:8080".into(),
            digest_hour_utc: 8,
            discord_webhook_url: None,
            alert_window_secs: 10,
        }
    }
}

/// Where task events are kept for analysis.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchiveStore {
    /// The application database keeps them (nothing is pruned).
    Local,
    /// Amazon DynamoDB; archived events are pruned from the database after the retention period.
    Dynamodb,
}

/// Settings for the event archive.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Where archived events go.
    pub store: ArchiveStore,
    /// The DynamoDB table.
    pub dynamodb_table: String,
    /// Days an archived event stays in the SQL database.
    pub retention_days: u32,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self { store: ArchiveStore::Local, dynamodb_table: "tasklane-task-events".into(), retention_days: 90 }
    }
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Where embedded state (SQLite database, generated key, mail files) lives.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `mysql://…`; may hold a password.
    pub database_url: SecretString,
    /// Maximum pooled database connections (MySQL; SQLite uses one writer).
    pub database_max_connections: u32,
    /// Access-token signing key; generated into the data dir when unset on SQLite.
    pub jwt_secret: Option<SecretString>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// Transport for events and jobs.
    pub queue: QueueTransport,
    /// Worker settings.
    pub worker: WorkerConfig,
    /// Redis for the job queues (`TASKLANE_QUEUE=redis` or `sqs`).
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key tasklane writes.
    pub redis_prefix: String,
    /// SQS queues are named `<prefix><queue>` and `<prefix><queue>-dlq`.
    pub sqs_queue_prefix: String,
    /// Notification settings.
    pub notify: NotifyConfig,
    /// Event archive settings.
    pub archive: ArchiveConfig,
}

/// The optional TOML file; every key may be omitted.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileLayer {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<SecretString>,
    database_max_connections: Option<u32>,
    jwt_secret: Option<SecretString>,
    log_format: Option<LogFormat>,
    auth: Option<AuthConfig>,
    queue: Option<QueueTransport>,
    worker: Option<WorkerConfig>,
    redis_url: Option<SecretString>,
    redis_prefix: Option<String>,
    sqs_queue_prefix: Option<String>,
    notify: Option<NotifyConfig>,
    archive: Option<ArchiveConfig>,
}

impl Config {
    /// Loads defaults, then `file` if given, then the process environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let text = match file {
            Some(path) => Some(
                std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?,
            ),
            None => None,
        };
        Self::from_sources(text.as_deref(), |name| std::env::var(name).ok())
    }

    /// Builds a configuration from file text and an environment lookup (testable without globals).
    pub fn from_sources(file: Option<&str>, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let layer: FileLayer = match file {
            Some(text) => toml::from_str(text).context("invalid config file")?,
            None => FileLayer::default(),
        };
        let mut auth = layer.auth.unwrap_or_default();
        let data_dir =
            env("TASKLANE_DATA_DIR").map(PathBuf::from).or(layer.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
        let listen = match env("TASKLANE_LISTEN") {
            Some(value) => value.parse().with_context(|| format!("TASKLANE_LISTEN={value} is not an address"))?,
            None => layer.listen.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        };
        let database_url = env("TASKLANE_DATABASE_URL")
            .map(SecretString::from)
            .or(layer.database_url)
            .unwrap_or_else(|| format!("sqlite://{}/tasklane.db", data_dir.display()).into());
        let log_format = match env("TASKLANE_LOG_FORMAT").as_deref() {
            Some("json") => LogFormat::Json,
            Some("text") => LogFormat::Text,
            Some(other) => bail!("TASKLANE_LOG_FORMAT={other}: expected text or json"),
            None => layer.log_format.unwrap_or(LogFormat::Text),
        };
        let database_max_connections = match env("TASKLANE_DATABASE_MAX_CONNECTIONS") {
            Some(value) => value.parse().context("TASKLANE_DATABASE_MAX_CONNECTIONS must be a number")?,
            None => layer.database_max_connections.unwrap_or(32),
        };
        if let Some(value) = env("TASKLANE_ACCESS_TOKEN_TTL_SECS") {
            auth.access_token_ttl_secs = value.parse().context("TASKLANE_ACCESS_TOKEN_TTL_SECS must be a number")?;
        }
        let queue = match env("TASKLANE_QUEUE").as_deref() {
            Some("embedded") => QueueTransport::Embedded,
            Some("redis") => QueueTransport::Redis,
            Some("sqs") => QueueTransport::Sqs,
            Some(other) => bail!("TASKLANE_QUEUE={other}: expected embedded, redis or sqs"),
            None => layer.queue.unwrap_or(QueueTransport::Embedded),
        };
        let mut worker = layer.worker.unwrap_or_default();
        if let Some(name) = env("TASKLANE_WORKER_NAME").filter(|n| !n.trim().is_empty()) {
            worker.name = name.trim().to_owned();
        }
        if let Some(value) = env("TASKLANE_SHUTDOWN_GRACE_SECS") {
            worker.shutdown_grace_secs = value.parse().context("TASKLANE_SHUTDOWN_GRACE_SECS must be a number")?;
        }
        if let Some(value) = env("TASKLANE_JOB_LEASE_SECS") {
            worker.lease_secs = value.parse().context("TASKLANE_JOB_LEASE_SECS must be a number")?;
        }
        if let Some(value) = env("TASKLANE_WORKER_LISTEN") {
            worker.listen =
                value.parse().with_context(|| format!("TASKLANE_WORKER_LISTEN={value} is not an address"))?;
        }
        if let Some(value) = env("TASKLANE_WORKER_CONCURRENCY") {
            worker.concurrency = value.parse().context("TASKLANE_WORKER_CONCURRENCY must be a number")?;
        }
        let mut notify = layer.notify.unwrap_or_default();
        match env("TASKLANE_EMAIL").as_deref() {
            Some("file") => notify.email = EmailTransport::File,
            Some("ses") => notify.email = EmailTransport::Ses,
            Some(other) => bail!("TASKLANE_EMAIL={other}: expected file or ses"),
            None => {}
        }
        if let Some(from) = env("TASKLANE_EMAIL_FROM") {
            notify.email_from = from;
        }
        if let Some(url) = env("TASKLANE_PUBLIC_URL") {
            notify.public_url = url;
        }
        notify.public_url = notify.public_url.trim_end_matches('/').to_owned();
        if let Some(value) = env("TASKLANE_DIGEST_HOUR_UTC") {
            notify.digest_hour_utc = value.parse().context("TASKLANE_DIGEST_HOUR_UTC must be a number")?;
        }
        if notify.digest_hour_utc > 23 {
            bail!("the digest hour must be 0 to 23, not {}", notify.digest_hour_utc);
        }
        if let Some(url) = env("TASKLANE_DISCORD_WEBHOOK_URL").filter(|url| !url.trim().is_empty()) {
            notify.discord_webhook_url = Some(SecretString::from(url));
        }
        if let Some(value) = env("TASKLANE_ALERT_WINDOW_SECS") {
            notify.alert_window_secs = value.parse().context("TASKLANE_ALERT_WINDOW_SECS must be a number")?;
        }
        let mut archive = layer.archive.unwrap_or_default();
        match env("TASKLANE_ARCHIVE").as_deref() {
            Some("local") => archive.store = ArchiveStore::Local,
            Some("dynamodb") => archive.store = ArchiveStore::Dynamodb,
            Some(other) => bail!("TASKLANE_ARCHIVE={other}: expected local or dynamodb"),
            None => {}
        }
        if let Some(table) = env("TASKLANE_DYNAMODB_TABLE") {
            archive.dynamodb_table = table;
        }
        if let Some(value) = env("TASKLANE_EVENT_RETENTION_DAYS") {
            archive.retention_days = value.parse().context("TASKLANE_EVENT_RETENTION_DAYS must be a number")?;
        }
        if let Some(value) = env("TASKLANE_TRUST_FORWARDED_FOR") {
            auth.trust_forwarded_for = matches!(value.as_str(), "1" | "true" | "yes");
        }
        Ok(Self {
            listen,
            data_dir,
            database_url,
            database_max_connections,
            jwt_secret: env("TASKLANE_JWT_SECRET").map(SecretString::from).or(layer.jwt_secret),
            log_format,
            auth,
            queue,
            worker,
            redis_url: env("TASKLANE_REDIS_URL").map(SecretString::from).or(layer.redis_url),
            redis_prefix: env("TASKLANE_REDIS_PREFIX").or(layer.redis_prefix).unwrap_or_else(|| "tasklane:".to_owned()),
            sqs_queue_prefix: env("TASKLANE_SQS_QUEUE_PREFIX")
                .or(layer.sqs_queue_prefix)
                .unwrap_or_else(|| "tasklane-".to_owned()),
            notify,
            archive,
        })
    }

    /// True when the database is the embedded SQLite one.
    pub fn is_sqlite(&self) -> bool {
        use secrecy::ExposeSecret;
        self.database_url.expose_secret().starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn environment_overrides_file_overrides_defaults() {
        let file = "listen = \"0.0.0.0:9000\"\ndata_dir = \"/srv/tl\"\n[auth]\nmax_failures_per_account = 3\n";
        let config =
            Config::from_sources(Some(file), |name| (name == "TASKLANE_LISTEN").then(|| "127.0.0.1:7000".to_string()))
                .unwrap();
        assert_eq!(config.listen.port(), 7000);
        assert_eq!(config.data_dir, PathBuf::from("/srv/tl"));
        assert_eq!(config.database_url.expose_secret(), "sqlite:///srv/tl/tasklane.db");
        assert_eq!(config.auth.max_failures_per_account, 3);
        assert!(config.is_sqlite());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config =
            Config::from_sources(None, |name| (name == "TASKLANE_JWT_SECRET").then(|| "super-secret-key".to_string()))
                .unwrap();
        assert!(!format!("{config:?}").contains("super-secret-key"));
    }

    #[test]
    fn notification_and_archive_settings_come_from_file_and_environment() {
        let file = "[notify]\nemail = \"ses\"\ndigest_hour_utc = 6\n[archive]\nstore = \"dynamodb\"\n";
        let env = |name: &str| match name {
            "TASKLANE_PUBLIC_URL" => Some("https://tasks.example.com/".to_string()),
            "TASKLANE_EVENT_RETENTION_DAYS" => Some("30".to_string()),
            "TASKLANE_DISCORD_WEBHOOK_URL" => Some("https://discord.com/api/webhooks/1/secret-token".to_string()),
            _ => None,
        };
        let config = Config::from_sources(Some(file), env).unwrap();
        assert_eq!(config.notify.email, EmailTransport::Ses);
        assert_eq!(config.notify.digest_hour_utc, 6);
        assert_eq!(config.notify.public_url, "https://tasks.example.com");
        assert_eq!(config.archive.store, ArchiveStore::Dynamodb);
        assert_eq!(config.archive.retention_days, 30);
        assert!(!format!("{config:?}").contains("secret-token"));
        let bad = |name: &'static str, value: &'static str| {
            Config::from_sources(None, move |key| (key == name).then(|| value.to_string())).is_err()
        };
        assert!(bad("TASKLANE_EMAIL", "smtp"));
        assert!(bad("TASKLANE_ARCHIVE", "s3"));
        assert!(bad("TASKLANE_DIGEST_HOUR_UTC", "24"));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        assert!(Config::from_sources(Some("lisen = \"x\""), |_| None).is_err());
    }
}
