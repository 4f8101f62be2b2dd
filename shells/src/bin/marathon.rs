//! `marathon`: Marathon's v2 REST API as a framework on a Mesos master.
//! `marathon --master 127.0.0.1:5050 --http_port 8080 --work_dir /var/lib/marathon`; every
//! flag also reads `MARATHON_<FLAG>` (unknown `MARATHON_*` variables are logged and ignored).

use clap::Parser;
use shells::marathon::{run, MarathonFlags};
use tokio::sync::watch;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("marathon: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn real_main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MARATHON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let flags = MarathonFlags::parse();
    // Refuse unusable flags (zk://) before binding anything.
    flags.master_url()?;
    let listener = tokio::net::TcpListener::bind((flags.http_address.as_str(), flags.http_port))
        .await
        .map_err(|e| anyhow::anyhow!("bind {}:{}: {e}", flags.http_address, flags.http_port))?;
    println!("marathon: listening on http://{}", listener.local_addr()?);
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        } else {
            let _ = tokio::signal::ctrl_c().await;
        }
        let _ = tx.send(true);
    });
    run(flags, listener, rx).await?;
    Ok(())
}
