//! `mesos-master`: parses flags (upstream names, `MESOS_*` env), sets up logging, binds, and runs
//! [`shells::master::run`] until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use shells::master::{run, MasterFlags};
use tokio::net::TcpListener;
use tokio::sync::watch;

// glibc malloc was a quarter of the master's CPU under load and fragments with its many small,
// short-lived buffers; mimalloc keeps per-task memory and allocation cost down.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-master: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn real_main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MESOS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let flags = MasterFlags::parse();
    let addr = format!("{}:{}", flags.ip, flags.port);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received; shutting down");
        let _ = tx.send(true);
    });
    run(flags, listener, rx).await?;
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
