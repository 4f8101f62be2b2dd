//! `marathon`: Marathon's v2 REST API as a framework on a Mesos master.
//! `marathon --master 127.0.0.1:5050 --http_port 8080 --work_dir /var/lib/marathon`; every
//! flag also reads `MARATHON_<FLAG>` (unknown `MARATHON_*` variables are logged and ignored).

use clap::Parser;
use shells::marathon::{run, MarathonFlags};

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
    shells::cli::init_tracing("MARATHON_LOG");
    let flags = MarathonFlags::parse();
    // Refuse unusable flags (zk://) before binding anything.
    flags.master_url()?;
    let listener = tokio::net::TcpListener::bind((flags.http_address.as_str(), flags.http_port))
        .await
        .map_err(|e| anyhow::anyhow!("bind {}:{}: {e}", flags.http_address, flags.http_port))?;
    println!("marathon: listening on http://{}", listener.local_addr()?);
    let rx = shells::cli::shutdown_on_signal();
    run(flags, listener, rx).await?;
    Ok(())
}
