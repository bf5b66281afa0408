//! The application context: what a request handler, a job handler or a CLI command needs to
//! call into the domain.

use std::sync::Arc;

use crate::auth::password::PasswordHasher;
use crate::auth::tokens::{self, TokenKeys};
use crate::clock::Clock;
use crate::config::Config;
use crate::db;
use crate::outbound::Outbound;
use crate::queues;
use tasklane_jobs::Transport;

/// Everything a request handler, a job handler or a CLI command needs to call into the domain.
#[derive(Clone)]
pub struct AppContext {
    /// The connection pool.
    pub db: sea_orm::DatabaseConnection,
    /// The pool for hot statements that only read (authentication, lists, a task), a few
    /// connections apart from the writer's (see [`db::connect_reads`]); `db` itself on an
    /// in-memory SQLite database.
    pub reads: sea_orm::DatabaseConnection,
    /// The loaded configuration.
    pub config: Arc<Config>,
    /// Signs and verifies access tokens.
    pub tokens: Arc<TokenKeys>,
    /// Hashes and verifies passwords off the async runtime.
    pub passwords: PasswordHasher,
    /// Signalled after a commit that wrote task events, so the outbox relay in this process
    /// publishes them at once instead of at its next poll.
    pub events_written: Arc<tokio::sync::Notify>,
    /// SES, DynamoDB and webhook clients, created on first use.
    pub outbound: Arc<Outbound>,
    /// The time task changes are recorded at and reports are measured against.
    pub clock: Clock,
    /// The configured job transport, connected on first use.
    transport: Arc<tokio::sync::OnceCell<Arc<dyn Transport>>>,
}

impl AppContext {
    /// Connects to the database, migrates it when asked, and prepares signing keys.
    pub async fn start(config: Config, migrate: bool) -> anyhow::Result<Self> {
        // Two TLS crypto back-ends are linked (the AWS SDK's and the database driver's); name
        // one, or the first TLS connection that relies on the process default would panic.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let db = db::connect(&config).await?;
        if migrate {
            db::migrate_up(&db).await?;
        }
        let reads = db::connect_reads(&config, &db).await?;
        let secret = tokens::load_or_create_secret(&config)?;
        let tokens = TokenKeys::new(&secret, &config.auth);
        Ok(Self {
            db,
            reads,
            tokens: Arc::new(tokens),
            passwords: PasswordHasher::new(),
            events_written: Arc::new(tokio::sync::Notify::new()),
            outbound: Arc::new(Outbound::default()),
            clock: Clock::default(),
            transport: Arc::default(),
            config: Arc::new(config),
        })
    }

    /// The job transport the configuration asks for, shared by everything in this process
    /// that enqueues (API requests, the relay, the workers).
    pub async fn transport(&self) -> anyhow::Result<Arc<dyn Transport>> {
        let transport =
            self.transport.get_or_try_init(|| queues::connect(&self.config, &self.db, &self.outbound)).await?;
        Ok(transport.clone())
    }
}
