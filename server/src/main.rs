//! The `chorus-server` binary: parse flags, start, wait for SIGTERM or Ctrl-C, drain, exit.

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The allocator: jemalloc, returning freed pages to the system at once (`dirty_decay_ms:0`,
/// `muzzy_decay_ms:0`, built in by `.cargo/config.toml`). Every connection's handshake takes
/// and frees hyper's two 8 KiB buffers between the small allocations that live as long as the
/// connection; glibc's malloc kept those pages resident (about 3 KiB per idle connection above
/// the live heap), mimalloc more still. Measured in `bench/results/NOTES.md`.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let config = chorus_server::config::Config::parse();
    // Before the runtime starts: the limit is per process, and every thread sees it.
    match chorus_server::listener::raise_open_file_limit() {
        Some(Ok(limit)) if limit.now > limit.was => tracing::info!(
            from = limit.was,
            to = limit.now,
            "raised the soft open-file limit to the hard limit"
        ),
        Some(Ok(_)) | None => {}
        Some(Err(err)) => tracing::warn!("could not raise the open-file limit: {err}"),
    }
    let runtime = config.runtime().context("starting the tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: chorus_server::config::Config) -> anyhow::Result<()> {
    if config.dev {
        tracing::warn!(
            "DEV MODE: tokens are signed with a public secret and POST /v1/dev/token issues them to anyone"
        );
    }
    let listener = chorus_server::listener::bind(config.bind, config.listen_backlog)
        .with_context(|| format!("binding {}", config.bind))?;
    let server = chorus_server::start(&config, listener).await?;
    match &config.redis {
        Some(url) => tracing::info!(
            addr = %server.local_addr(),
            redis = %chorus_server::store::redis::redacted_urls(url),
            redis_cluster = config.redis_cluster,
            prefix = %config.redis_prefix,
            listen_backlog = config.listen_backlog,
            tls = config.tls_cert.is_some(),
            "chorus-server listening"
        ),
        None => tracing::info!(
            addr = %server.local_addr(),
            store = ?config.store,
            listen_backlog = config.listen_backlog,
            tls = config.tls_cert.is_some(),
            "chorus-server listening"
        ),
    }
    shutdown_signal().await;
    tracing::info!("shutting down: draining connections");
    server.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
