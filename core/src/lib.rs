//! tasklane's core: configuration, database access and every domain rule (accounts,
//! authentication, tasks and their events). The HTTP API and the CLI are thin layers over it.

pub mod accounts;
pub mod archive;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod grouped;
pub mod housekeeping;
pub mod jobs;
pub mod notify;
pub mod outbound;
pub mod process;
pub mod tasks;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use error::{Error, Result};

/// The current time at the precision the databases keep (microseconds), so a value returned
/// to a client is exactly the one stored on MySQL and SQLite alike.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}

/// An instant as the entities store it (a naive date-time that is always UTC).
pub fn stored(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDateTime {
    at.naive_utc()
}

/// [`now`] as the entities store it.
pub fn stored_now() -> chrono::NaiveDateTime {
    stored(now())
}

/// Everything a request handler or a CLI command needs to call into the domain.
#[derive(Clone)]
pub struct AppContext {
    /// The connection pool.
    pub db: sea_orm::DatabaseConnection,
    /// The loaded configuration.
    pub config: std::sync::Arc<config::Config>,
    /// Signs and verifies access tokens.
    pub tokens: std::sync::Arc<auth::tokens::TokenKeys>,
    /// Hashes and verifies passwords off the async runtime.
    pub passwords: auth::password::PasswordHasher,
    /// Signalled after a commit that wrote task events, so the outbox relay in this process
    /// publishes them at once instead of at its next poll.
    pub events_written: std::sync::Arc<tokio::sync::Notify>,
    /// SES, DynamoDB and webhook clients, created on first use.
    pub outbound: std::sync::Arc<outbound::Outbound>,
}

impl AppContext {
    /// Connects to the database, migrates it when asked, and prepares signing keys.
    pub async fn start(config: config::Config, migrate: bool) -> anyhow::Result<Self> {
        // Two TLS crypto back-ends are linked (the AWS SDK's and the database driver's); name
        // one, or the first TLS connection that relies on the process default would panic.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let db = db::connect(&config).await?;
        if migrate {
            db::migrate_up(&db).await?;
        }
        let secret = auth::tokens::load_or_create_secret(&config)?;
        let tokens = auth::tokens::TokenKeys::new(&secret, &config.auth);
        Ok(Self {
            db,
            tokens: std::sync::Arc::new(tokens),
            passwords: auth::password::PasswordHasher::new(),
            events_written: std::sync::Arc::new(tokio::sync::Notify::new()),
            outbound: std::sync::Arc::new(outbound::Outbound::default()),
            config: std::sync::Arc::new(config),
        })
    }
}
