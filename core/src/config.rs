//! Configuration: defaults, then an optional TOML file, then `TASKLANE_*` environment variables.
//! Secrets are `SecretString`s so they never reach logs or `Debug` output.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use crate::proxies::TrustedProxies;

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
    /// The longest a session lasts from sign-in, however often it is refreshed, in days.
    pub session_max_days: u64,
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
            session_max_days: 30,
        }
    }
}

/// Who may create an account (`TASKLANE_SIGNUP`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignupMode {
    /// Anyone.
    Open,
    /// Anyone with an address at one of `TASKLANE_SIGNUP_DOMAINS`.
    Domains,
    /// Only people an admin invited.
    Invite,
    /// Nobody; operators create accounts.
    Closed,
}

/// Joining and email ownership. The defaults follow the database: the embedded SQLite
/// deployment is open and unverified (nothing to configure), a MySQL one is invite-only and
/// verifies addresses.
#[derive(Clone, Debug)]
pub struct AccountsConfig {
    /// Who may sign up.
    pub signup: SignupMode,
    /// The address domains `domains` mode admits (lower case, without `@`).
    pub signup_domains: Vec<String>,
    /// Whether addresses must be verified before any email goes to them.
    pub email_verification: bool,
    /// How long an invitation may be used, in days.
    pub invitation_days: u64,
    /// How long a verification link may be used, in hours.
    pub verification_hours: u64,
}

/// `[accounts]` of the config file; unset keys take the defaults of the database in use.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct AccountsLayer {
    signup: Option<SignupMode>,
    signup_domains: Option<Vec<String>>,
    email_verification: Option<bool>,
    invitation_days: Option<u64>,
    verification_hours: Option<u64>,
}

/// Rate limits on writes and sends.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Sign-ups per client address per hour.
    pub signups_per_hour: u32,
    /// Task writes (create, change, delete) per user per minute.
    pub task_writes_per_minute: u32,
    /// Emails per recipient per hour; past it, notifications wait for the daily digest.
    pub emails_per_hour: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self { signups_per_hour: 10, task_writes_per_minute: 120, emails_per_hour: 30 }
    }
}

/// Settings of the HTTP server facing clients.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Which proxies in front of the API may say who the client is.
    pub trusted_proxies: TrustedProxies,
    /// How long a client may take to send a request's headers before the connection is closed.
    pub header_read_timeout_secs: u64,
    /// How long a request may take, its body included, before it is answered 408.
    pub request_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { trusted_proxies: TrustedProxies::None, header_read_timeout_secs: 10, request_timeout_secs: 30 }
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
    /// The queues this replica consumes; empty for all of them (see
    /// [`crate::queues::consumed_by`]). Narrowed, a queue can have replicas (and an autoscaler)
    /// of its own.
    pub queues: Vec<String>,
    /// Whether this replica also runs the outbox relay and the scheduler, which put jobs on the
    /// queues. Replicas that may scale to zero turn it off; at least one replica must keep it.
    pub publish: bool,
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
            queues: Vec::new(),
            publish: true,
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
    /// How long dead letters arriving together are gathered into one alert, in seconds.
    pub alert_window_secs: u64,
    /// A queue and job kind is announced at most once per this many seconds across every
    /// replica; what dies meanwhile is summed up in the next announcement.
    pub alert_cooldown_secs: u64,
    /// How long a worker holds an email it is sending before another may take it over, in
    /// seconds: longer than a send can take, so it runs out only when the worker died.
    pub email_claim_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        Self {
            email: EmailTransport::File,
            email_from: "tasklane@localhost".into(),
            public_url: "http://localhost:8080".into(),
            digest_hour_utc: 8,
            discord_webhook_url: None,
            alert_window_secs: 2,
            alert_cooldown_secs: 300,
            email_claim_secs: 120,
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

/// How failed jobs are retried: the default for every job, and overrides per queue and per
/// job kind (`[jobs.queues.email]`, `[jobs.kinds."email.send"]` in the TOML file).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsConfig {
    /// Deliveries allowed in all before a job is dead-lettered.
    pub max_attempts: u32,
    /// Delay before the second delivery, in seconds; it doubles with each further one.
    pub backoff_base_secs: u64,
    /// Longest delay between deliveries, in seconds.
    pub backoff_max_secs: u64,
    /// Overrides by queue name.
    pub queues: BTreeMap<String, RetrySettings>,
    /// Overrides by job kind.
    pub kinds: BTreeMap<String, RetrySettings>,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            backoff_base_secs: 2,
            backoff_max_secs: 600,
            queues: BTreeMap::new(),
            kinds: BTreeMap::new(),
        }
    }
}

/// Retry settings of one queue or job kind; what is left out is inherited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    /// Deliveries allowed in all.
    pub max_attempts: Option<u32>,
    /// Delay before the second delivery, in seconds.
    pub backoff_base_secs: Option<u64>,
    /// Longest delay between deliveries, in seconds.
    pub backoff_max_secs: Option<u64>,
}

impl RetrySettings {
    /// These settings as the job platform takes them.
    pub fn to_override(self) -> tasklane_jobs::RetryOverride {
        tasklane_jobs::RetryOverride {
            max_attempts: self.max_attempts,
            base_delay: self.backoff_base_secs.map(std::time::Duration::from_secs),
            max_delay: self.backoff_max_secs.map(std::time::Duration::from_secs),
        }
    }

    fn check(&self, what: &str) -> anyhow::Result<()> {
        if self.max_attempts == Some(0) {
            bail!("{what}: max_attempts must be at least 1");
        }
        if let (Some(base), Some(max)) = (self.backoff_base_secs, self.backoff_max_secs)
            && base > max
        {
            bail!("{what}: backoff_base_secs ({base}) is longer than backoff_max_secs ({max})");
        }
        Ok(())
    }
}

impl JobsConfig {
    /// The default policy as the job platform takes it.
    pub fn default_policy(&self) -> tasklane_jobs::RetryPolicy {
        tasklane_jobs::RetryPolicy {
            max_attempts: self.max_attempts,
            base_delay: std::time::Duration::from_secs(self.backoff_base_secs),
            max_delay: std::time::Duration::from_secs(self.backoff_max_secs),
        }
    }

    fn check(&self) -> anyhow::Result<()> {
        let default = RetrySettings {
            max_attempts: Some(self.max_attempts),
            backoff_base_secs: Some(self.backoff_base_secs),
            backoff_max_secs: Some(self.backoff_max_secs),
        };
        default.check("jobs")?;
        for (queue, settings) in &self.queues {
            settings.check(&format!("jobs.queues.{queue}"))?;
        }
        for (kind, settings) in &self.kinds {
            settings.check(&format!("jobs.kinds.{kind:?}"))?;
        }
        Ok(())
    }
}

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the API listens on.
    pub listen: SocketAddr,
    /// Where the API (and `tasklane serve`) serves `/metrics`, apart from the public listener;
    /// `None` (`TASKLANE_METRICS_LISTEN=off`) serves none.
    pub metrics_listen: Option<SocketAddr>,
    /// Where embedded state (SQLite database, generated key, mail files) lives.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `mysql://…`; may hold a password.
    pub database_url: SecretString,
    /// Maximum pooled database connections (MySQL; SQLite uses one writer).
    pub database_max_connections: u32,
    /// Connections of the pool for hot reads (authentication, lists, a task); `None`: the
    /// default for the backend and this machine's cores (see [`crate::db::connect_reads`]).
    pub database_read_connections: Option<std::num::NonZeroU32>,
    /// Access-token signing key; generated into the data dir when unset on SQLite.
    pub jwt_secret: Option<SecretString>,
    /// Log line format.
    pub log_format: LogFormat,
    /// Authentication settings.
    pub auth: AuthConfig,
    /// HTTP server settings.
    pub http: HttpConfig,
    /// Who may join, and email verification.
    pub accounts: AccountsConfig,
    /// Rate limits on writes and sends.
    pub limits: LimitsConfig,
    /// Transport for events and jobs.
    pub queue: QueueTransport,
    /// Worker settings.
    pub worker: WorkerConfig,
    /// Retry policies of jobs.
    pub jobs: JobsConfig,
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
    /// The deployment's time zone (`TASKLANE_TIMEZONE`, an IANA name): where weeks and
    /// months of reports begin and end.
    pub time_zone: chrono_tz::Tz,
}

/// The metrics address: `off` for none, loopback port 9464 (Prometheus's exporter port) by default.
fn metrics_listen(raw: Option<String>) -> anyhow::Result<Option<SocketAddr>> {
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(Some(SocketAddr::from(([127, 0, 0, 1], 9464)))),
        Some("off") => Ok(None),
        Some(address) => address
            .parse()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("TASKLANE_METRICS_LISTEN is not valid: expected an address and port, or off")),
    }
}

/// The optional TOML file; every key may be omitted.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileLayer {
    listen: Option<SocketAddr>,
    metrics_listen: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<SecretString>,
    database_max_connections: Option<u32>,
    database_read_connections: Option<std::num::NonZeroU32>,
    jwt_secret: Option<SecretString>,
    log_format: Option<LogFormat>,
    auth: Option<AuthConfig>,
    http: Option<HttpConfig>,
    accounts: Option<AccountsLayer>,
    limits: Option<LimitsConfig>,
    queue: Option<QueueTransport>,
    worker: Option<WorkerConfig>,
    jobs: Option<JobsConfig>,
    redis_url: Option<SecretString>,
    redis_prefix: Option<String>,
    sqs_queue_prefix: Option<String>,
    notify: Option<NotifyConfig>,
    archive: Option<ArchiveConfig>,
    time_zone: Option<String>,
}

/// The environment, read one typed `TASKLANE_*` variable at a time; a value that does not
/// parse is an error naming the variable and what it expects.
struct Env<F>(F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    /// The variable's text, when set.
    fn text(&self, name: &str) -> Option<String> {
        (self.0)(name)
    }

    /// The variable parsed as `T`, when set.
    fn parse<T: FromStr>(&self, name: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: Display,
    {
        self.text(name)
            .map(|value| value.trim().parse().map_err(|err| anyhow::anyhow!("{name} is not valid: {err}")))
            .transpose()
    }

    /// Overwrites `target` with the variable parsed as `T`, when set.
    fn set<T: FromStr>(&self, name: &str, target: &mut T) -> anyhow::Result<()>
    where
        T::Err: Display,
    {
        if let Some(value) = self.parse(name)? {
            *target = value;
        }
        Ok(())
    }

    /// The variable as one of a few named choices, when set.
    fn choice<T: Copy>(&self, name: &str, choices: &[(&str, T)]) -> anyhow::Result<Option<T>> {
        let Some(value) = self.text(name) else { return Ok(None) };
        match choices.iter().find(|(choice, _)| *choice == value.trim()) {
            Some((_, chosen)) => Ok(Some(*chosen)),
            None => {
                let names: Vec<&str> = choices.iter().map(|(choice, _)| *choice).collect();
                bail!("{name} is not valid: expected one of {}", names.join(", "))
            }
        }
    }

    /// Overwrites `target` with the variable's choice, when set.
    fn set_choice<T: Copy>(&self, name: &str, choices: &[(&str, T)], target: &mut T) -> anyhow::Result<()> {
        if let Some(chosen) = self.choice(name, choices)? {
            *target = chosen;
        }
        Ok(())
    }

    /// The variable as a secret, when set and not blank.
    fn secret(&self, name: &str) -> Option<SecretString> {
        self.text(name).filter(|value| !value.trim().is_empty()).map(SecretString::from)
    }
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
            Some(text) => toml::from_str(text).map_err(|err| file_error(text, &err))?,
            None => FileLayer::default(),
        };
        let env = Env(env);
        let data_dir = env
            .text("TASKLANE_DATA_DIR")
            .map(PathBuf::from)
            .or(layer.data_dir)
            .unwrap_or_else(|| PathBuf::from("./data"));
        let database_url = env
            .secret("TASKLANE_DATABASE_URL")
            .or(layer.database_url)
            .unwrap_or_else(|| format!("sqlite://{}/tasklane.db", data_dir.display()).into());
        let sqlite = {
            use secrecy::ExposeSecret;
            database_url.expose_secret().starts_with("sqlite:")
        };
        Ok(Self {
            listen: env
                .parse("TASKLANE_LISTEN")?
                .or(layer.listen)
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            metrics_listen: metrics_listen(env.text("TASKLANE_METRICS_LISTEN").or(layer.metrics_listen))?,
            data_dir,
            database_url,
            database_max_connections: env
                .parse("TASKLANE_DATABASE_MAX_CONNECTIONS")?
                .or(layer.database_max_connections)
                .unwrap_or(32),
            database_read_connections: env
                .parse("TASKLANE_DATABASE_READ_CONNECTIONS")?
                .or(layer.database_read_connections),
            jwt_secret: env.secret("TASKLANE_JWT_SECRET").or(layer.jwt_secret),
            log_format: env
                .choice("TASKLANE_LOG_FORMAT", &[("text", LogFormat::Text), ("json", LogFormat::Json)])?
                .or(layer.log_format)
                .unwrap_or(LogFormat::Text),
            auth: auth(layer.auth.unwrap_or_default(), &env)?,
            http: http(layer.http.unwrap_or_default(), &env)?,
            accounts: accounts(layer.accounts.unwrap_or_default(), sqlite, &env)?,
            limits: limits(layer.limits.unwrap_or_default(), &env)?,
            queue: env
                .choice(
                    "TASKLANE_QUEUE",
                    &[
                        ("embedded", QueueTransport::Embedded),
                        ("redis", QueueTransport::Redis),
                        ("sqs", QueueTransport::Sqs),
                    ],
                )?
                .or(layer.queue)
                .unwrap_or(QueueTransport::Embedded),
            worker: worker(layer.worker.unwrap_or_default(), &env)?,
            jobs: jobs(layer.jobs.unwrap_or_default(), &env)?,
            redis_url: env.secret("TASKLANE_REDIS_URL").or(layer.redis_url),
            redis_prefix: env
                .text("TASKLANE_REDIS_PREFIX")
                .or(layer.redis_prefix)
                .unwrap_or_else(|| "tasklane:".to_owned()),
            sqs_queue_prefix: env
                .text("TASKLANE_SQS_QUEUE_PREFIX")
                .or(layer.sqs_queue_prefix)
                .unwrap_or_else(|| "tasklane-".to_owned()),
            notify: notify(layer.notify.unwrap_or_default(), &env)?,
            archive: archive(layer.archive.unwrap_or_default(), &env)?,
            time_zone: match env.text("TASKLANE_TIMEZONE").or(layer.time_zone) {
                Some(name) => name.trim().parse().map_err(|_| {
                    anyhow::anyhow!("TASKLANE_TIMEZONE is not an IANA time zone name such as Asia/Seoul")
                })?,
                None => chrono_tz::Tz::UTC,
            },
        })
    }

    /// True when the database is the embedded SQLite one.
    pub fn is_sqlite(&self) -> bool {
        use secrecy::ExposeSecret;
        self.database_url.expose_secret().starts_with("sqlite:")
    }
}

/// Where a config file is wrong and why, without echoing its values (it may hold secrets).
fn file_error(text: &str, err: &toml::de::Error) -> anyhow::Error {
    let line = err.span().map_or(0, |span| text[..span.start.min(text.len())].lines().count().max(1));
    // Serde's messages quote the offending value; keys stay in backticks.
    let mut message = String::new();
    for (index, part) in err.message().split('"').enumerate() {
        message.push_str(if index % 2 == 1 { "…" } else { part });
    }
    anyhow::anyhow!("invalid config file, line {line}: {}", message.trim())
}

/// Sign-in and token settings: the file's, then the environment's.
fn auth(mut auth: AuthConfig, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<AuthConfig> {
    env.set("TASKLANE_ACCESS_TOKEN_TTL_SECS", &mut auth.access_token_ttl_secs)?;
    env.set("TASKLANE_SESSION_MAX_DAYS", &mut auth.session_max_days)?;
    if auth.session_max_days == 0 {
        bail!("TASKLANE_SESSION_MAX_DAYS must be at least 1");
    }
    Ok(auth)
}

/// Joining settings: the environment's, then the file's, then the database's defaults.
fn accounts(
    layer: AccountsLayer,
    sqlite: bool,
    env: &Env<impl Fn(&str) -> Option<String>>,
) -> anyhow::Result<AccountsConfig> {
    let signup = env
        .choice(
            "TASKLANE_SIGNUP",
            &[
                ("open", SignupMode::Open),
                ("domains", SignupMode::Domains),
                ("invite", SignupMode::Invite),
                ("closed", SignupMode::Closed),
            ],
        )?
        .or(layer.signup)
        .unwrap_or(if sqlite { SignupMode::Open } else { SignupMode::Invite });
    let signup_domains: Vec<String> = match env.text("TASKLANE_SIGNUP_DOMAINS") {
        Some(text) => text.split(',').map(str::to_owned).collect(),
        None => layer.signup_domains.unwrap_or_default(),
    }
    .into_iter()
    .map(|domain| domain.trim().trim_start_matches('@').to_lowercase())
    .filter(|domain| !domain.is_empty())
    .collect();
    if signup == SignupMode::Domains && signup_domains.is_empty() {
        bail!("TASKLANE_SIGNUP=domains needs TASKLANE_SIGNUP_DOMAINS (e.g. example.com,example.org)");
    }
    let email_verification = env
        .choice("TASKLANE_EMAIL_VERIFICATION", &[("required", true), ("off", false)])?
        .or(layer.email_verification)
        .unwrap_or(!sqlite);
    let mut config = AccountsConfig {
        signup,
        signup_domains,
        email_verification,
        invitation_days: layer.invitation_days.unwrap_or(7),
        verification_hours: layer.verification_hours.unwrap_or(48),
    };
    env.set("TASKLANE_INVITATION_DAYS", &mut config.invitation_days)?;
    env.set("TASKLANE_VERIFICATION_HOURS", &mut config.verification_hours)?;
    if config.invitation_days == 0 || config.verification_hours == 0 {
        bail!("TASKLANE_INVITATION_DAYS and TASKLANE_VERIFICATION_HOURS must be at least 1");
    }
    Ok(config)
}

/// Rate limits: the file's, then the environment's.
fn limits(mut limits: LimitsConfig, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<LimitsConfig> {
    env.set("TASKLANE_LIMIT_SIGNUPS_PER_HOUR", &mut limits.signups_per_hour)?;
    env.set("TASKLANE_LIMIT_TASK_WRITES_PER_MINUTE", &mut limits.task_writes_per_minute)?;
    env.set("TASKLANE_LIMIT_EMAILS_PER_HOUR", &mut limits.emails_per_hour)?;
    Ok(limits)
}

/// HTTP server settings: the file's, then the environment's.
fn http(mut http: HttpConfig, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<HttpConfig> {
    if env.text("TASKLANE_TRUST_FORWARDED_FOR").is_some() {
        bail!(
            "TASKLANE_TRUST_FORWARDED_FOR is gone: it believed the leftmost X-Forwarded-For entry, which \
             clients write themselves. Set TASKLANE_TRUSTED_PROXIES to the number of proxies in front \
             of the API (e.g. 1) or to their networks (e.g. 10.0.0.0/8)"
        );
    }
    env.set("TASKLANE_TRUSTED_PROXIES", &mut http.trusted_proxies)?;
    env.set("TASKLANE_HTTP_HEADER_TIMEOUT_SECS", &mut http.header_read_timeout_secs)?;
    env.set("TASKLANE_HTTP_REQUEST_TIMEOUT_SECS", &mut http.request_timeout_secs)?;
    if http.header_read_timeout_secs == 0 || http.request_timeout_secs == 0 {
        bail!("TASKLANE_HTTP_HEADER_TIMEOUT_SECS and TASKLANE_HTTP_REQUEST_TIMEOUT_SECS must be at least 1");
    }
    Ok(http)
}

/// Worker settings: the file's, then the environment's.
fn worker(mut worker: WorkerConfig, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<WorkerConfig> {
    if let Some(name) = env.text("TASKLANE_WORKER_NAME").filter(|n| !n.trim().is_empty()) {
        worker.name = name.trim().to_owned();
    }
    env.set("TASKLANE_SHUTDOWN_GRACE_SECS", &mut worker.shutdown_grace_secs)?;
    env.set("TASKLANE_JOB_LEASE_SECS", &mut worker.lease_secs)?;
    env.set("TASKLANE_WORKER_LISTEN", &mut worker.listen)?;
    env.set("TASKLANE_WORKER_CONCURRENCY", &mut worker.concurrency)?;
    env.set("TASKLANE_WORKER_PUBLISH", &mut worker.publish)?;
    if let Some(list) = env.text("TASKLANE_WORKER_QUEUES") {
        worker.queues = list.split(',').map(str::trim).filter(|q| !q.is_empty()).map(str::to_owned).collect();
        if worker.queues.is_empty() {
            bail!("TASKLANE_WORKER_QUEUES names no queue; leave it unset for all of them");
        }
    }
    Ok(worker)
}

/// Retry policies: the file's (with its per-queue and per-kind overrides), then the
/// environment's defaults.
fn jobs(mut jobs: JobsConfig, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<JobsConfig> {
    env.set("TASKLANE_JOB_MAX_ATTEMPTS", &mut jobs.max_attempts)?;
    env.set("TASKLANE_JOB_BACKOFF_BASE_SECS", &mut jobs.backoff_base_secs)?;
    env.set("TASKLANE_JOB_BACKOFF_MAX_SECS", &mut jobs.backoff_max_secs)?;
    jobs.check()?;
    Ok(jobs)
}

/// Notification settings: the file's, then the environment's.
fn notify(mut notify: NotifyConfig, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<NotifyConfig> {
    env.set_choice(
        "TASKLANE_EMAIL",
        &[("file", EmailTransport::File), ("ses", EmailTransport::Ses)],
        &mut notify.email,
    )?;
    env.set("TASKLANE_EMAIL_FROM", &mut notify.email_from)?;
    env.set("TASKLANE_PUBLIC_URL", &mut notify.public_url)?;
    notify.public_url = notify.public_url.trim_end_matches('/').to_owned();
    env.set("TASKLANE_DIGEST_HOUR_UTC", &mut notify.digest_hour_utc)?;
    if notify.digest_hour_utc > 23 {
        bail!("the digest hour must be 0 to 23, not {}", notify.digest_hour_utc);
    }
    if let Some(url) = env.secret("TASKLANE_DISCORD_WEBHOOK_URL") {
        notify.discord_webhook_url = Some(url);
    }
    env.set("TASKLANE_ALERT_WINDOW_SECS", &mut notify.alert_window_secs)?;
    env.set("TASKLANE_ALERT_COOLDOWN_SECS", &mut notify.alert_cooldown_secs)?;
    env.set("TASKLANE_EMAIL_CLAIM_SECS", &mut notify.email_claim_secs)?;
    if notify.email_claim_secs == 0 {
        bail!("TASKLANE_EMAIL_CLAIM_SECS must be at least 1");
    }
    Ok(notify)
}

/// Event archive settings: the file's, then the environment's.
fn archive(mut archive: ArchiveConfig, env: &Env<impl Fn(&str) -> Option<String>>) -> anyhow::Result<ArchiveConfig> {
    env.set_choice(
        "TASKLANE_ARCHIVE",
        &[("local", ArchiveStore::Local), ("dynamodb", ArchiveStore::Dynamodb)],
        &mut archive.store,
    )?;
    env.set("TASKLANE_DYNAMODB_TABLE", &mut archive.dynamodb_table)?;
    env.set("TASKLANE_EVENT_RETENTION_DAYS", &mut archive.retention_days)?;
    Ok(archive)
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
    fn a_worker_replica_can_be_narrowed_to_some_queues_without_publishing() {
        let everything = Config::from_sources(None, |_| None).unwrap().worker;
        assert!(everything.queues.is_empty() && everything.publish);
        let env = |name: &str| match name {
            "TASKLANE_WORKER_QUEUES" => Some(" reports, email ".to_string()),
            "TASKLANE_WORKER_PUBLISH" => Some("false".to_string()),
            _ => None,
        };
        let narrowed = Config::from_sources(None, env).unwrap().worker;
        assert_eq!(narrowed.queues, ["reports", "email"]);
        assert!(!narrowed.publish);
        let from_file = Config::from_sources(Some("[worker]\nqueues = [\"maintenance\"]\n"), |_| None).unwrap().worker;
        assert_eq!(from_file.queues, ["maintenance"]);
        let blank = Config::from_sources(None, |key| (key == "TASKLANE_WORKER_QUEUES").then(|| " , ".to_string()));
        assert!(blank.unwrap_err().to_string().starts_with("TASKLANE_WORKER_QUEUES names no queue"));
    }

    #[test]
    fn retry_policies_come_from_the_environment_and_per_queue_and_kind_from_the_file() {
        let file = "[jobs]\nbackoff_max_secs = 60\n[jobs.queues.email]\nmax_attempts = 4\n[jobs.kinds.\"email.send\"]\nmax_attempts = 2\n";
        let env = |name: &str| (name == "TASKLANE_JOB_MAX_ATTEMPTS").then(|| "5".to_string());
        let config = Config::from_sources(Some(file), env).unwrap();
        assert_eq!((config.jobs.max_attempts, config.jobs.backoff_base_secs, config.jobs.backoff_max_secs), (5, 2, 60));
        assert_eq!(config.jobs.queues["email"].max_attempts, Some(4));
        assert_eq!(config.jobs.kinds["email.send"].max_attempts, Some(2));
        let bad = |file: &str| Config::from_sources(Some(file), |_| None).is_err();
        assert!(bad("[jobs]\nmax_attempts = 0\n"));
        assert!(bad("[jobs]\nbackoff_base_secs = 100\nbackoff_max_secs = 10\n"));
        assert!(bad("[jobs.kinds.\"email.send\"]\nretries = 3\n"));
        let env_bad = |name: &'static str, value: &'static str| {
            Config::from_sources(None, move |key| (key == name).then(|| value.to_string())).unwrap_err().to_string()
        };
        assert_eq!(
            env_bad("TASKLANE_JOB_MAX_ATTEMPTS", "many"),
            "TASKLANE_JOB_MAX_ATTEMPTS is not valid: invalid digit found in string"
        );
        assert_eq!(
            env_bad("TASKLANE_QUEUE", "kafka"),
            "TASKLANE_QUEUE is not valid: expected one of embedded, redis, sqs"
        );
    }

    #[test]
    fn errors_never_echo_a_value() {
        let err = Config::from_sources(
            Some("listen = \"0.0.0.0:1\"\n[auth]\nissuer = 7\njwt = \"hunter2-secret\"\n"),
            |_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("invalid config file, line 3"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
        let err = Config::from_sources(Some("database_max_connections = \"hunter2-secret\"\n"), |_| None)
            .unwrap_err()
            .to_string();
        assert!(!err.contains("hunter2"), "{err}");
        for (name, value) in [("TASKLANE_DATABASE_MAX_CONNECTIONS", "hunter2"), ("TASKLANE_TIMEZONE", "hunter2")] {
            let err = Config::from_sources(None, move |key| (key == name).then(|| value.to_string())).unwrap_err();
            assert!(!format!("{err:#}").contains("hunter2"), "{err:#}");
        }
    }

    #[test]
    fn http_settings_and_the_retired_forwarded_for_switch() {
        let env = |name: &str| match name {
            "TASKLANE_TRUSTED_PROXIES" => Some("10.0.0.0/8, 192.168.0.1".to_string()),
            "TASKLANE_HTTP_HEADER_TIMEOUT_SECS" => Some("3".to_string()),
            _ => None,
        };
        let config = Config::from_sources(None, env).unwrap();
        assert!(matches!(config.http.trusted_proxies, TrustedProxies::Networks(ref nets) if nets.len() == 2));
        assert_eq!((config.http.header_read_timeout_secs, config.http.request_timeout_secs), (3, 30));
        let file = Config::from_sources(Some("[http]\ntrusted_proxies = 2\n"), |_| None).unwrap();
        assert_eq!(file.http.trusted_proxies, TrustedProxies::Count(2));
        let retired = |name: &str| (name == "TASKLANE_TRUST_FORWARDED_FOR").then(|| "true".to_string());
        assert!(Config::from_sources(None, retired).unwrap_err().to_string().contains("TASKLANE_TRUSTED_PROXIES"));
    }

    #[test]
    fn the_read_pool_is_sized_by_default_or_by_a_positive_count() {
        assert_eq!(Config::from_sources(None, |_| None).unwrap().database_read_connections, None);
        let sized = |value: &'static str| {
            Config::from_sources(None, move |key| (key == "TASKLANE_DATABASE_READ_CONNECTIONS").then(|| value.into()))
        };
        assert_eq!(sized("6").unwrap().database_read_connections.map(std::num::NonZeroU32::get), Some(6));
        let zero = sized("0").unwrap_err().to_string();
        assert!(zero.starts_with("TASKLANE_DATABASE_READ_CONNECTIONS is not valid"), "{zero}");
        let file = Config::from_sources(Some("database_read_connections = 3\n"), |_| None).unwrap();
        assert_eq!(file.database_read_connections.map(std::num::NonZeroU32::get), Some(3));
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        assert!(Config::from_sources(Some("lisen = \"x\""), |_| None).is_err());
    }
}
