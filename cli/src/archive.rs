//! `tasklane archive`: create the event archive's storage and read events back from it.

use clap::Subcommand;
use tasklane_core::AppContext;
use tasklane_core::archive::{self, ArchiveQuery};

use crate::{Format, output};

/// Archive commands.
#[derive(Subcommand)]
pub enum ArchiveAction {
    /// Create the archive table and its actor index (DynamoDB); safe to run again.
    Init,
    /// Read archived events back, oldest first.
    Query {
        /// One task's events.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        task: Option<i64>,
        /// Everything one user (email or id) did.
        #[arg(long)]
        user: Option<String>,
        /// Only events at or after this instant (RFC 3339, or a date `YYYY-MM-DD`).
        #[arg(long)]
        since: Option<String>,
    },
}

/// Runs an archive command.
pub async fn run(ctx: &AppContext, action: ArchiveAction, format: Format) -> anyhow::Result<()> {
    match action {
        ArchiveAction::Init => {
            eprintln!("{}", archive::init(ctx).await?);
            Ok(())
        }
        ArchiveAction::Query { task, user, since } => {
            let since = since.as_deref().map(parse_since).transpose()?;
            let query = match (task, user) {
                (Some(task), _) => ArchiveQuery::Task(task),
                (None, Some(user)) => ArchiveQuery::Actor(tasklane_core::accounts::find_user(ctx, &user).await?.id),
                (None, None) => anyhow::bail!("give --task ID or --user EMAIL"),
            };
            let events = archive::query(ctx, &query, since).await?;
            output::print(
                format,
                &["event", "task", "seq", "actor", "kind", "at"],
                events.iter().map(|event| {
                    vec![
                        event.id.to_string(),
                        event.task_id.to_string(),
                        event.seq.to_string(),
                        event.actor_id.map(|id| id.to_string()).unwrap_or_else(|| "-".into()),
                        event.kind.clone(),
                        event.created_at.to_rfc3339(),
                    ]
                }),
                &events,
            )
        }
    }
}

/// An RFC 3339 instant, or a date meaning its start (UTC).
fn parse_since(text: &str) -> anyhow::Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(at) = chrono::DateTime::parse_from_rfc3339(text.trim()) {
        return Ok(at.to_utc());
    }
    let day = chrono::NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("--since {text:?}: expected an RFC 3339 instant or a YYYY-MM-DD date"))?;
    Ok(day.and_time(chrono::NaiveTime::MIN).and_utc())
}
