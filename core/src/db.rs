//! Database connections and migrations.

use std::time::Duration;

use anyhow::Context;
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;
use secrecy::ExposeSecret;
use tasklane_migration::Migrator;

use crate::config::Config;

/// Opens the connection pool for the configured database, creating an embedded SQLite
/// file (and its directory) when needed.
pub async fn connect(config: &Config) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose_secret();
    let mut options = pool_options(url);
    if config.is_sqlite() {
        if let Some(dir) = sqlite_parent_dir(url) {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create data directory {}", dir.display()))?;
        }
        // SQLite has one writer; a single pooled connection avoids "database is locked" errors
        // when two transactions both try to upgrade to a write lock.
        options.max_connections(1).min_connections(1).map_sqlx_sqlite_opts(|opts| {
            opts.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_WAIT)
        });
    } else {
        options.max_connections(config.database_max_connections).min_connections(2);
    }
    Database::connect(options).await.with_context(|| format!("cannot connect to the database at {}", redact(url)))
}

/// Opens the pool for statements that only read (authentication, lists, a task), apart from
/// the writer's so that a few connections serve them in turn.
///
/// On an SQLite file these are query-only connections beside the single writer (WAL lets them
/// read while it writes), one per core (2 to 8) unless `TASKLANE_DATABASE_READ_CONNECTIONS`
/// says otherwise: on the writer's one connection a list waits behind every other statement,
/// and one core does all of SQLite's work. On MySQL, twice this machine's cores (4 to 16) by
/// default: statements beyond what the database's cores run at once wait in its scheduler,
/// out of turn, instead of in the pool, which lengthens the tail of every read (the README's
/// Performance section has the back-to-back figures). An in-memory SQLite database, which each
/// connection would see empty, reads through the writer's pool.
pub async fn connect_reads(config: &Config, writer: &DatabaseConnection) -> anyhow::Result<DatabaseConnection> {
    let url = config.database_url.expose_secret();
    if config.is_sqlite() && (url.contains(":memory:") || url.contains("mode=memory")) {
        return Ok(writer.clone());
    }
    let cores = std::thread::available_parallelism().map_or(2, |cores| cores.get());
    let default_readers = if config.is_sqlite() { cores.clamp(2, 8) } else { (2 * cores).clamp(4, 16) };
    let readers = config
        .database_read_connections
        .map_or_else(|| u32::try_from(default_readers).unwrap_or(4), std::num::NonZeroU32::get);
    let mut options = pool_options(url);
    options.max_connections(readers).min_connections(1);
    if config.is_sqlite() {
        options.map_sqlx_sqlite_opts(|opts| opts.pragma("query_only", "ON").busy_timeout(SQLITE_BUSY_WAIT));
    }
    Database::connect(options).await.with_context(|| format!("cannot open readers of the database at {}", redact(url)))
}

/// How long an SQLite statement waits for a lock another connection holds.
const SQLITE_BUSY_WAIT: Duration = Duration::from_secs(5);

/// A pooled connection idle for this long is pinged before it is handed out.
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(5);

/// What every pool of `url` shares: no statement logging, bounded waits to connect and to get
/// a connection, and a ping only for a connection that sat idle. The pool's default pings on
/// every checkout: a round trip more for each statement (on MariaDB a tenth of the API's and
/// the database's CPU per list); a connection in steady use is known alive, and one left idle
/// (what a server restart or a proxy's idle timeout closes) is still checked.
fn pool_options(url: &str) -> ConnectOptions {
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire_if_idle_for(PING_WHEN_IDLE_FOR);
    options
}

/// Applies every pending migration.
pub async fn migrate_up(db: &DatabaseConnection) -> anyhow::Result<()> {
    Migrator::up(db, None).await.context("database migration failed")
}

/// Writes the search words of tasks that have none: tasks inserted around the API (an import,
/// a benchmark's seed) are found by `q` once this has run. Returns how many it indexed, and
/// tells `progress` the running count after each batch.
pub async fn index_task_words(db: &DatabaseConnection, progress: impl FnMut(u64) + Send) -> anyhow::Result<u64> {
    tasklane_migration::index_task_words(db, progress).await.context("indexing task words failed")
}

/// Each migration's name and whether it has been applied.
pub async fn migration_status(db: &DatabaseConnection) -> anyhow::Result<Vec<(String, bool)>> {
    let migrations = Migrator::get_migration_with_status(db).await?;
    Ok(migrations
        .iter()
        .map(|m| (m.name().to_owned(), matches!(m.status(), sea_orm_migration::MigrationStatus::Applied)))
        .collect())
}

/// Answers whether the database is reachable (for readiness probes).
pub async fn ping(db: &DatabaseConnection) -> bool {
    db.ping().await.is_ok()
}

fn sqlite_parent_dir(url: &str) -> Option<std::path::PathBuf> {
    let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    if path.is_empty() || path == ":memory:" {
        return None;
    }
    std::path::Path::new(path).parent().map(|p| p.to_path_buf())
}

/// The URL with any password replaced, for error messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact("mysql://app:hunter2@db:3306/tl"), "mysql://app:***@db:3306/tl");
        assert_eq!(redact("mysql://root@db/tl"), "mysql://root@db/tl");
        assert_eq!(redact("sqlite://./data/x.db"), "sqlite://./data/x.db");
    }

    #[test]
    fn sqlite_directory_is_found() {
        assert_eq!(sqlite_parent_dir("sqlite://./data/t.db?mode=rwc"), Some("./data".into()));
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
    }
}
