//! `mesos-master`: the master state machine of `mesos-core` behind Mesos' HTTP endpoints.
//!
//! - [`driver`]: the one task that owns [`mesos_core::master::Master`] and its streams.
//! - [`v1`]: the v1 scheduler API's JSON (calls in, events out).
//! - [`render`]: `/master/state`, metrics and the operator API's views.
//! - [`store`]: the durable records (`<work_dir>/master.redb`).
//! - `http`: the axum routes (scheduler API, agent protocol, read-only endpoints, web UI).
//! - [`listener`]: the connection bound and `TCP_NODELAY`.
//!
//! Start it with [`run`] on a bound listener; tests pass `127.0.0.1:0`.

pub mod driver;
mod http;
pub mod listener;
pub mod render;
pub mod store;
pub mod v1;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mesos_alloc::{AllocatorConfig, HierarchicalAllocator};
use mesos_core::allocator::Allocator;
use mesos_core::master::{Address, Master, MasterConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;

use self::driver::{wall_clock, Driver, DriverSettings};
use self::store::{MasterStore, MemoryStore, RedbStore, StoreError};

/// The version reported by `/version`, SUBSCRIBED and `/master/state` (dotted integers only:
/// pymesos parses it).
pub const VERSION: &str = "1.11.0";

/// `mesos-master`'s flags (upstream names; each also as a `MESOS_*` environment variable).
#[derive(Parser, Debug, Clone)]
#[command(name = "mesos-master", version = VERSION, about = "Mesos master (v1 HTTP API)")]
pub struct MasterFlags {
    /// IP address to listen on.
    #[arg(long, env = "MESOS_IP", default_value = "127.0.0.1")]
    pub ip: String,
    /// Port to listen on.
    #[arg(long, env = "MESOS_PORT", default_value_t = 5050)]
    pub port: u16,
    /// Hostname the master advertises (default: the advertised IP).
    #[arg(long, env = "MESOS_HOSTNAME")]
    pub hostname: Option<String>,
    /// IP address advertised to frameworks and agents (default: `--ip`, or 127.0.0.1 for 0.0.0.0).
    #[arg(
        long = "advertise_ip",
        alias = "advertise-ip",
        env = "MESOS_ADVERTISE_IP"
    )]
    pub advertise_ip: Option<String>,
    /// Port advertised (default: the port listened on).
    #[arg(
        long = "advertise_port",
        alias = "advertise-port",
        env = "MESOS_ADVERTISE_PORT"
    )]
    pub advertise_port: Option<u16>,
    /// Where the registry (`master.redb`) lives; without it the registry is in memory.
    #[arg(long = "work_dir", alias = "work-dir", env = "MESOS_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// `in_memory` or `replicated_log` (the embedded store under `--work_dir`).
    #[arg(long, env = "MESOS_REGISTRY", default_value = "replicated_log")]
    pub registry: String,
    /// ZooKeeper URL for leader election (not supported yet: HA is a later issue).
    #[arg(long, env = "MESOS_ZK")]
    pub zk: Option<String>,
    /// Registry quorum size (accepted; only meaningful with `--zk`).
    #[arg(long, env = "MESOS_QUORUM")]
    pub quorum: Option<u32>,
    /// How long an offer may stay outstanding before it is rescinded (e.g. `30secs`; none by default).
    #[arg(
        long = "offer_timeout",
        alias = "offer-timeout",
        env = "MESOS_OFFER_TIMEOUT"
    )]
    pub offer_timeout: Option<String>,
    /// Time between agent pings.
    #[arg(
        long = "agent_ping_timeout",
        alias = "agent-ping-timeout",
        alias = "slave_ping_timeout",
        env = "MESOS_AGENT_PING_TIMEOUT",
        default_value = "15secs"
    )]
    pub agent_ping_timeout: String,
    /// Missed pings before an agent is unreachable.
    #[arg(
        long = "max_agent_ping_timeouts",
        alias = "max-agent-ping-timeouts",
        alias = "max_slave_ping_timeouts",
        env = "MESOS_MAX_AGENT_PING_TIMEOUTS",
        default_value_t = 5
    )]
    pub max_agent_ping_timeouts: u32,
    /// How long agents of a previous run have to reregister after a restart.
    #[arg(
        long = "agent_reregister_timeout",
        alias = "agent-reregister-timeout",
        env = "MESOS_AGENT_REREGISTER_TIMEOUT",
        default_value = "10mins"
    )]
    pub agent_reregister_timeout: String,
    /// Time between allocation cycles.
    #[arg(
        long = "allocation_interval",
        alias = "allocation-interval",
        env = "MESOS_ALLOCATION_INTERVAL",
        default_value = "1secs"
    )]
    pub allocation_interval: String,
    /// Role weights, `role1=2,role2=3.5`.
    #[arg(long, env = "MESOS_WEIGHTS")]
    pub weights: Option<String>,
    /// Seed of every random choice (master id, stream ids, allocator); random when absent.
    #[arg(long, env = "MESOS_SEED")]
    pub seed: Option<u64>,
    /// Completed frameworks kept for `/master/state`.
    #[arg(
        long = "max_completed_frameworks",
        alias = "max-completed-frameworks",
        env = "MESOS_MAX_COMPLETED_FRAMEWORKS",
        default_value_t = 50
    )]
    pub max_completed_frameworks: usize,
    /// Completed tasks kept per framework for `/master/state`.
    #[arg(
        long = "max_completed_tasks_per_framework",
        alias = "max-completed-tasks-per-framework",
        env = "MESOS_MAX_COMPLETED_TASKS_PER_FRAMEWORK",
        default_value_t = 1000
    )]
    pub max_completed_tasks_per_framework: usize,
    /// Heartbeat interval of subscription streams (not an upstream flag; tests shorten it).
    #[arg(
        long = "heartbeat_interval",
        env = "MESOS_HEARTBEAT_INTERVAL",
        default_value = "15secs",
        hide = true
    )]
    pub heartbeat_interval: String,
    /// The cluster's name (shown in the web UI).
    #[arg(long, env = "MESOS_CLUSTER")]
    pub cluster: Option<String>,
    /// Accepted for compatibility; logs go to stderr.
    #[arg(long = "log_dir", env = "MESOS_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
}

impl MasterFlags {
    /// Defaults (as if no flag was given), for tests and `mesos-local`.
    pub fn local() -> Self {
        MasterFlags::parse_from(["mesos-master"])
    }
}

/// Why the master daemon stopped or could not start.
#[derive(Debug, thiserror::Error)]
pub enum MasterDaemonError {
    /// A flag is invalid or asks for something unsupported.
    #[error("invalid flag --{flag}: {reason}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// Why.
        reason: String,
    },
    /// The registry could not be opened or read.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Socket or file-system failure.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// Parses Mesos' duration form: a number and a unit (`ns`, `us`, `ms`, `secs`, `mins`, `hrs`,
/// `days`, `weeks`), e.g. `15secs`, `0.5secs`, `100ms`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("`{text}` has no unit (use e.g. `15secs`, `100ms`)"))?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num
        .parse()
        .map_err(|_| format!("`{text}`: `{num}` is not a number"))?;
    let scale = match unit {
        "ns" => 1e-9,
        "us" => 1e-6,
        "ms" => 1e-3,
        "secs" | "sec" | "s" => 1.0,
        "mins" | "min" => 60.0,
        "hrs" | "hr" => 3600.0,
        "days" | "day" => 86400.0,
        "weeks" | "week" => 604800.0,
        other => return Err(format!("`{text}`: unknown unit `{other}`")),
    };
    let secs = value * scale;
    if !secs.is_finite() || !(0.0..=1e10).contains(&secs) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn flag_duration(flag: &'static str, text: &str) -> Result<Duration, MasterDaemonError> {
    parse_duration(text).map_err(|reason| MasterDaemonError::Flag { flag, reason })
}

/// Parses `--weights` (`role=weight,...`).
pub fn parse_weights(text: &str) -> Result<Vec<(String, f64)>, String> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (role, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("`{part}` is not `role=weight`"))?;
        let w: f64 = weight
            .trim()
            .parse()
            .map_err(|_| format!("weight `{weight}` of role `{role}` is not a number"))?;
        if !(w.is_finite() && w > 0.0) {
            return Err(format!("weight of role `{role}` must be above zero"));
        }
        out.push((role.trim().to_string(), w));
    }
    Ok(out)
}

/// What the HTTP layer needs to know about this master.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// Advertised hostname.
    pub hostname: String,
    /// Advertised IP.
    pub ip: String,
    /// Advertised port.
    pub port: u16,
    /// The cluster name.
    pub cluster: Option<String>,
    /// How long an agent may go unheard before it is removed (`agent_ping_timeout` x
    /// `max_agent_ping_timeouts`), in seconds; told to agents when they register, so they can
    /// tell a silent, half-open command stream from a quiet one.
    pub total_ping_timeout_secs: f64,
}

/// Everything `run` derives from the flags before serving.
struct Prepared {
    config: MasterConfig,
    allocator: HierarchicalAllocator,
    weights: Vec<(String, f64)>,
    store: Box<dyn MasterStore>,
    settings: DriverSettings,
    info: ServerInfo,
}

fn prepare(flags: &MasterFlags, local: SocketAddr) -> Result<Prepared, MasterDaemonError> {
    if let Some(zk) = &flags.zk {
        return Err(MasterDaemonError::Flag {
            flag: "zk",
            reason: format!(
                "`{zk}`: ZooKeeper leader election (high availability) is not supported yet; \
                 run a single master without --zk"
            ),
        });
    }
    let offer_timeout = match &flags.offer_timeout {
        Some(t) => Some(flag_duration("offer_timeout", t)?),
        None => None,
    };
    let ping = flag_duration("agent_ping_timeout", &flags.agent_ping_timeout)?;
    if ping.is_zero() {
        return Err(MasterDaemonError::Flag {
            flag: "agent_ping_timeout",
            reason: "must be above zero".into(),
        });
    }
    let rereg = flag_duration("agent_reregister_timeout", &flags.agent_reregister_timeout)?;
    let interval = flag_duration("allocation_interval", &flags.allocation_interval)?;
    if interval.is_zero() {
        return Err(MasterDaemonError::Flag {
            flag: "allocation_interval",
            reason: "must be above zero".into(),
        });
    }
    let heartbeat = flag_duration("heartbeat_interval", &flags.heartbeat_interval)?;
    if heartbeat.is_zero() {
        return Err(MasterDaemonError::Flag {
            flag: "heartbeat_interval",
            reason: "must be above zero".into(),
        });
    }
    let weights = match &flags.weights {
        Some(w) => parse_weights(w).map_err(|reason| MasterDaemonError::Flag {
            flag: "weights",
            reason,
        })?,
        None => Vec::new(),
    };
    let seed = flags.seed.unwrap_or_else(rand::random);
    tracing::info!(seed, "master seed (pass --seed to replay)");

    let ip = flags.advertise_ip.clone().unwrap_or_else(|| {
        if local.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            local.ip().to_string()
        }
    });
    let port = flags.advertise_port.unwrap_or(local.port());
    let hostname = flags.hostname.clone().unwrap_or_else(|| ip.clone());
    let config = MasterConfig {
        seed,
        address: Address {
            hostname: hostname.clone(),
            ip: ip.clone(),
            port,
        },
        version: VERSION.to_string(),
        heartbeat_interval: heartbeat,
        offer_timeout,
        agent_ping_timeout: ping,
        max_agent_ping_timeouts: flags.max_agent_ping_timeouts.max(1),
        agent_reregister_timeout: rereg,
        max_completed_tasks_per_framework: flags.max_completed_tasks_per_framework,
        max_completed_frameworks: flags.max_completed_frameworks,
    };
    let allocator = HierarchicalAllocator::new(AllocatorConfig {
        allocation_interval: interval,
        seed,
        ..AllocatorConfig::default()
    });
    let store: Box<dyn MasterStore> = match (&flags.work_dir, flags.registry.as_str()) {
        (_, "in_memory") | (None, _) => {
            if flags.work_dir.is_none() && flags.registry != "in_memory" {
                tracing::warn!("no --work_dir: the registry is kept in memory only");
            }
            Box::new(MemoryStore::default())
        }
        (Some(dir), "replicated_log") => {
            std::fs::create_dir_all(dir)?;
            Box::new(RedbStore::open(&dir.join("master.redb"))?)
        }
        (Some(_), other) => {
            return Err(MasterDaemonError::Flag {
                flag: "registry",
                reason: format!("`{other}`: expected `in_memory` or `replicated_log`"),
            })
        }
    };
    let mut shown: Vec<(String, String)> = vec![
        ("ip".into(), flags.ip.clone()),
        ("port".into(), port.to_string()),
        ("hostname".into(), hostname.clone()),
        ("registry".into(), flags.registry.clone()),
        (
            "agent_ping_timeout".into(),
            flags.agent_ping_timeout.clone(),
        ),
        (
            "max_agent_ping_timeouts".into(),
            flags.max_agent_ping_timeouts.to_string(),
        ),
        (
            "agent_reregister_timeout".into(),
            flags.agent_reregister_timeout.clone(),
        ),
        (
            "allocation_interval".into(),
            flags.allocation_interval.clone(),
        ),
        ("seed".into(), seed.to_string()),
        (
            "max_completed_frameworks".into(),
            flags.max_completed_frameworks.to_string(),
        ),
        (
            "max_completed_tasks_per_framework".into(),
            flags.max_completed_tasks_per_framework.to_string(),
        ),
    ];
    if let Some(d) = &flags.work_dir {
        shown.push(("work_dir".into(), d.display().to_string()));
    }
    if let Some(t) = &flags.offer_timeout {
        shown.push(("offer_timeout".into(), t.clone()));
    }
    if let Some(w) = &flags.weights {
        shown.push(("weights".into(), w.clone()));
    }
    if let Some(c) = &flags.cluster {
        shown.push(("cluster".into(), c.clone()));
    }
    let total_ping_timeout_secs =
        config.agent_ping_timeout.as_secs_f64() * f64::from(config.max_agent_ping_timeouts);
    Ok(Prepared {
        config,
        allocator,
        weights,
        store,
        settings: DriverSettings {
            heartbeat,
            flags: shown,
        },
        info: ServerInfo {
            hostname,
            ip,
            port,
            cluster: flags.cluster.clone(),
            total_ping_timeout_secs,
        },
    })
}

/// Runs the master on `listener` until `shutdown` turns true.
pub async fn run(
    flags: MasterFlags,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MasterDaemonError> {
    let local = listener.local_addr()?;
    let Prepared {
        config,
        mut allocator,
        weights,
        mut store,
        settings,
        info,
    } = prepare(&flags, local)?;
    for (role, w) in &weights {
        allocator
            .set_weight(role, *w)
            .map_err(|e| MasterDaemonError::Flag {
                flag: "weights",
                reason: e.to_string(),
            })?;
    }
    let mut records = store.load()?;
    let compacted = store::compact(&records);
    if compacted.len() < records.len() {
        tracing::info!(
            from = records.len(),
            to = compacted.len(),
            "compacting the master registry"
        );
        store.replace_all(&compacted)?;
        records = compacted;
    }
    let now = wall_clock();
    let master = if records.is_empty() {
        Master::new(config, allocator, now)
    } else {
        tracing::info!(
            records = records.len(),
            "recovering the master from its registry"
        );
        Master::recover(config, allocator, now, &records)
    };
    tracing::info!(id = %master.info().id, addr = %local, "mesos-master listening");
    let (driver, handle, rx) = Driver::new(master, store, settings, now);
    let driver_task = tokio::spawn(driver.run(rx, shutdown.clone()));
    let app = http::router(handle, Arc::new(info));
    let mut stop = shutdown.clone();
    let listener = listener::LimitedListener::new(listener, listener::MAX_CONNECTIONS);
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    });
    let server = tokio::spawn(async move { server.await });
    // Wait for the shutdown signal, then give connections a moment to finish.
    while !*shutdown.borrow() {
        if shutdown.changed().await.is_err() {
            break;
        }
    }
    let _ = driver_task.await;
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(r)) => r?,
        Ok(Err(e)) => tracing::warn!(error = %e, "HTTP server task failed"),
        Err(_) => tracing::warn!("HTTP connections still open after 5 s; stopping anyway"),
    }
    tracing::info!("mesos-master stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15secs").unwrap(), Duration::from_secs(15));
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert_eq!(
            parse_duration("0.5secs").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(parse_duration("2mins").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("x secs").is_err());
        assert!(parse_duration("3parsecs").is_err());
    }

    #[test]
    fn weights() {
        assert_eq!(
            parse_weights("a=2, b=0.5").unwrap(),
            vec![("a".to_string(), 2.0), ("b".to_string(), 0.5)]
        );
        assert!(parse_weights("a").is_err());
        assert!(parse_weights("a=0").is_err());
    }

    #[test]
    fn zk_is_refused_with_a_clear_message() {
        let mut flags = MasterFlags::local();
        flags.zk = Some("zk://127.0.0.1:2181/mesos".into());
        let err = prepare(&flags, "127.0.0.1:5050".parse().unwrap())
            .err()
            .unwrap();
        assert!(err.to_string().contains("not supported yet"), "{err}");
    }
}
