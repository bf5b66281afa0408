//! `tasklane-api`: the HTTP API alone, for production containers. Migrations are run by
//! `tasklane migrate up` (or the embedded `tasklane serve`), never implicitly here on MySQL.
//! `tasklane-api healthcheck` asks a running API whether it is alive.

use anyhow::Context;
use tasklane_core::AppContext;
use tasklane_core::config::Config;

/// glibc's allocator took a sixth of the API's CPU serving lists (many small allocations
/// across two threads); with mimalloc a list page costs a fifth less of the API's CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<std::process::ExitCode> {
    let config_file = std::env::var_os("TASKLANE_CONFIG").map(std::path::PathBuf::from);
    let config = Config::load(config_file.as_deref())?;
    // `tasklane-api healthcheck`: the image's HEALTHCHECK, asking the running API.
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return Ok(tasklane_core::process::healthcheck(config.listen, "/healthz"));
    }
    tasklane_core::process::init_logging(config.log_format);
    let listen = config.listen;
    let migrate = config.is_sqlite();
    let metrics_listen = config.metrics_listen;
    let ctx = AppContext::start(config, migrate).await?;
    if let Some(listen) = metrics_listen {
        tasklane_api::metrics::serve_metrics(
            "api",
            tasklane_api::metrics::bind_metrics(listen).await?,
            ctx.db.clone(),
        )?;
    }
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(%listen, "tasklane-api listening");
    tasklane_api::serve_until_signalled(ctx, listener).await?;
    Ok(std::process::ExitCode::SUCCESS)
}
