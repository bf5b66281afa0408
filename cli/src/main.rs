//! `tasklane`: the operator CLI, and `serve`, which runs the whole product in one process.

mod archive;
mod output;
mod queues;
mod reports;
mod users;

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use tasklane_core::AppContext;
use tasklane_core::config::Config;

/// tasklane: a self-hostable team task backend on a job-queue worker platform.
#[derive(Parser)]
#[command(name = "tasklane", version, about)]
struct Cli {
    /// TOML configuration file (environment variables override it).
    #[arg(long, global = true, env = "TASKLANE_CONFIG")]
    config: Option<PathBuf>,
    /// Output format for commands that print records.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

/// How records are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API, the workers and the outbox relay in one process; migrates the database first.
    Serve {
        /// Address to listen on (overrides TASKLANE_LISTEN).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Database schema migrations.
    Migrate {
        #[command(subcommand)]
        action: MigrateAction,
    },
    /// Manage user accounts.
    Users {
        #[command(subcommand)]
        action: users::UsersAction,
    },
    /// Inspect the job queues.
    Queues {
        #[command(subcommand)]
        action: queues::QueuesAction,
    },
    /// Inspect, replay and purge dead-letter queues.
    Dlq {
        #[command(subcommand)]
        action: queues::DlqAction,
    },
    /// Weekly and monthly reports: generate, list, show, export.
    Reports {
        #[command(subcommand)]
        action: reports::ReportsAction,
    },
    /// The task event archive (local database or DynamoDB).
    Archive {
        #[command(subcommand)]
        action: archive::ArchiveAction,
    },
    /// Print a shell completion script, e.g. `tasklane completions bash > /etc/bash_completion.d/tasklane`.
    Completions {
        /// The shell to complete in.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand)]
enum MigrateAction {
    /// Apply every pending migration.
    Up,
    /// Show which migrations are applied.
    Status,
    /// Index the search words of tasks written around the API (an SQL import), so `q` finds
    /// them; tasks that already have their words are left alone, so it is safe to run again.
    IndexWords,
}

/// The API's allocator (see `tasklane-api`): a fifth less CPU per request than glibc's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", one_line(&err));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line.
fn one_line(err: &anyhow::Error) -> String {
    err.chain().map(ToString::to_string).collect::<Vec<_>>().join(": ")
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Completions { shell } = cli.command {
        // Needs no configuration: it must work before anything is set up.
        clap_complete::generate(shell, &mut Cli::command(), "tasklane", &mut std::io::stdout());
        return Ok(());
    }
    let mut config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { listen } => {
            if let Some(listen) = listen {
                config.listen = listen;
            }
            serve(config).await
        }
        Command::Migrate { action } => {
            let db = tasklane_core::db::connect(&config).await?;
            match action {
                MigrateAction::Up => {
                    tasklane_core::db::migrate_up(&db).await?;
                    eprintln!("database is up to date");
                    Ok(())
                }
                MigrateAction::Status => {
                    let rows = tasklane_core::db::migration_status(&db).await?;
                    output::print(
                        cli.output,
                        &["migration", "applied"],
                        rows.iter().map(|(name, applied)| vec![name.clone(), applied.to_string()]),
                        &rows
                            .iter()
                            .map(|(name, applied)| serde_json::json!({ "migration": name, "applied": applied }))
                            .collect::<Vec<_>>(),
                    )
                }
                MigrateAction::IndexWords => index_words(&db, cli.output).await,
            }
        }
        Command::Users { action } => {
            let ctx = AppContext::start(config, false).await?;
            users::run(&ctx, action, cli.output).await
        }
        Command::Queues { action } => {
            let ctx = AppContext::start(config, false).await?;
            queues::queues(&ctx, action, cli.output).await
        }
        Command::Dlq { action } => {
            let ctx = AppContext::start(config, false).await?;
            queues::dlq(&ctx, action, cli.output).await
        }
        Command::Archive { action } => {
            let ctx = AppContext::start(config, false).await?;
            archive::run(&ctx, action, cli.output).await
        }
        Command::Reports { action } => {
            let ctx = AppContext::start(config, false).await?;
            reports::run(&ctx, action, cli.output).await
        }
        Command::Completions { .. } => Ok(()),
    }
}

/// Indexes the words of tasks that have none, counting them on a spinner (on a terminal).
async fn index_words(db: &sea_orm::DatabaseConnection, format: Format) -> anyhow::Result<()> {
    let spinner = ProgressBar::new_spinner().with_message("indexing the words of tasks that have none");
    spinner.enable_steady_tick(std::time::Duration::from_millis(200));
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}: {pos} task(s) ({elapsed})") {
        spinner.set_style(style);
    }
    let indexed = tasklane_core::db::index_task_words(db, |done| spinner.set_position(done)).await;
    spinner.finish_and_clear();
    let indexed = indexed?;
    match format {
        Format::Json => println!("{}", serde_json::json!({ "indexed": indexed })),
        Format::Table => println!("indexed the words of {indexed} task(s)"),
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    tasklane_core::process::init_logging(config.log_format);
    let listen = config.listen;
    let metrics_listen = config.metrics_listen;
    let ctx = AppContext::start(config, true).await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    // The all-in-one server starts without its metrics rather than not at all when their port
    // is taken; the production binaries refuse to start instead.
    if let Some(metrics_listen) = metrics_listen {
        match tasklane_api::metrics::bind_metrics(metrics_listen).await {
            Ok(metrics_listener) => tasklane_api::metrics::serve_metrics("serve", metrics_listener, ctx.db.clone())?,
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "serving without /metrics");
                eprintln!("warning: {err:#}; serving without /metrics");
            }
        }
    }
    tracing::info!(%listen, "tasklane serving (API, workers, outbox relay)");
    if std::io::stderr().is_terminal() {
        eprintln!("tasklane is listening on http://{listen} (Ctrl-C to stop)");
    }
    // One signal stops both halves: the API drains its requests while the workers finish
    // their jobs.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        tasklane_core::process::shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };
    let (api, workers) = tokio::join!(
        tasklane_api::serve_until(ctx.clone(), listener, stopped(stop_rx.clone())),
        tasklane_worker::run(ctx, stopped(stop_rx)),
    );
    api?;
    workers
}

/// Asks a yes/no question on the terminal; without a terminal the answer is no.
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Ok(false);
    }
    eprint!("{question} [y/N] ");
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
