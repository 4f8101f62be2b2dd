//! `mesos-local`: a whole cluster (one master, N agents) in one process on loopback.
//! Prints `mesos-local: ready at http://127.0.0.1:<port>` once it is ready; Ctrl-C or SIGTERM
//! stops everything it started, tasks and containers included.

use clap::Parser;
use shells::local::{run, LocalFlags};

// Same allocator as mesos-master (see there): less fragmentation, cheaper small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    match real_main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesos-local: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn real_main() -> anyhow::Result<()> {
    shells::cli::init_tracing("MESOS_LOG");
    let flags = LocalFlags::parse();
    let rx = shells::cli::shutdown_on_signal();
    run(flags, rx).await?;
    Ok(())
}
