//! `mesos-master`: parses flags (upstream names, `MESOS_*` env), sets up logging, binds, and runs
//! [`shells::master::run`] until Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser;
use shells::master::{run, MasterFlags};
use tokio::net::TcpListener;

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
    shells::cli::init_tracing("MESOS_LOG");
    let flags = MasterFlags::parse();
    let addr = format!("{}:{}", flags.ip, flags.port);
    let listener = TcpListener::bind(&addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let rx = shells::cli::shutdown_on_signal();
    run(flags, listener, rx).await?;
    Ok(())
}
