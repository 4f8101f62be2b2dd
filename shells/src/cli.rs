//! What every daemon binary does before and around its `run`: logging set-up and the shutdown
//! signal. One place, so the binaries cannot drift apart in how they log or stop.

use tokio::sync::watch;

/// Logs to stderr through `tracing`, filtered by the env var `filter_var` (`MESOS_LOG`,
/// `MARATHON_LOG`, ...; `RUST_LOG` syntax), `info` when it is unset or unreadable.
pub fn init_tracing(filter_var: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env(filter_var)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// A receiver that turns `true` at the first Ctrl-C or SIGTERM; the daemons' `run` functions
/// take it as their shutdown signal. Must be called inside a tokio runtime.
pub fn shutdown_on_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("signal received; shutting down");
        let _ = tx.send(true);
    });
    rx
}

/// Waits for Ctrl-C or SIGTERM (Ctrl-C alone where SIGTERM cannot be watched).
pub async fn wait_for_signal() {
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
