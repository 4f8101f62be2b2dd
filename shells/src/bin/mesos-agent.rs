//! `mesos-agent`: the agent daemon. Flags and `MESOS_*` environment variables as upstream.

use anyhow::Context as _;
use clap::Parser as _;
use shells::agent::{run, AgentConfig};

// Same allocator as mesos-master (see there): less fragmentation, cheaper small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MESOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = AgentConfig::parse();
    let ip = config.ip.unwrap_or(std::net::IpAddr::from([0, 0, 0, 0]));
    let listener = tokio::net::TcpListener::bind((ip, config.port))
        .await
        .with_context(|| format!("cannot listen on {ip}:{}", config.port))?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot watch SIGTERM");
                    let _ = tokio::signal::ctrl_c().await;
                    let _ = tx.send(true);
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        let _ = tx.send(true);
    });
    run(config, listener, rx).await.context("mesos-agent")?;
    Ok(())
}
