//! The daemon: opens the store, subscribes to the master as a framework (resubscribing with
//! the stored framework id), serves the REST API, and carries out what the scheduler decides.
//!
//! Order of effects: a record that must survive (the framework id) is written to the store
//! before anything that depends on it happens (the subscription is reported as usable only
//! after the id is on disk).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesos_core::ids::FrameworkId;
use mesos_core::master::{Call, Capability, Event, Filters, FrameworkInfo};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::api::routes;
use super::config::{log_ignored_env, ConfigError, MarathonFlags};
use super::events::EventBus;
use super::render::now_iso;
use super::store::{KvStore, RedbKv, StoreError};
use crate::scheduler_client::{CallSender, ClientConfig, ClientEvent, MasterUrl, SchedulerClient};

/// Store key of the framework id.
pub const FRAMEWORK_ID_KEY: &str = "framework-id";

/// Why the daemon stopped.
#[derive(Debug, thiserror::Error)]
pub enum MarathonError {
    /// The flags are unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP server failed.
    #[error("marathon HTTP server: {0}")]
    Http(std::io::Error),
}

/// Counters for `/metrics`.
#[derive(Default, Debug)]
pub struct Counters {
    /// Offers received.
    pub offers_received: AtomicU64,
    /// Offers declined.
    pub offers_declined: AtomicU64,
    /// Status updates received.
    pub status_updates: AtomicU64,
    /// Subscriptions opened.
    pub subscriptions: AtomicU64,
    /// HTTP requests served.
    pub http_requests: AtomicU64,
}

/// What the REST handlers share with the loop.
pub struct Shared {
    /// The flags.
    pub flags: MarathonFlags,
    /// The master in use.
    pub master: MasterUrl,
    /// `host:port` this Marathon answers on.
    pub leader: String,
    /// The bound port.
    pub http_port: u16,
    /// The event bus.
    pub bus: EventBus,
    /// The framework id, once known.
    pub framework_id: Mutex<Option<FrameworkId>>,
    /// True while a subscription is open.
    pub connected: AtomicBool,
    /// Counters.
    pub counters: Counters,
    /// Calls to the master.
    pub calls: CallSender,
}

impl Shared {
    /// The framework id as text.
    pub fn framework_id(&self) -> Option<String> {
        self.framework_id
            .lock()
            .ok()
            .and_then(|g| g.as_ref().map(|f| f.to_string()))
    }
}

/// The FrameworkInfo Marathon subscribes with.
pub fn framework_info(flags: &MarathonFlags, webui: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: flags.user(),
        name: flags.framework_name.clone(),
        failover_timeout: Some(flags.failover_timeout as f64),
        checkpoint: Some(true),
        roles: vec![flags.mesos_role.clone()],
        hostname: Some(flags.advertised_host()),
        webui_url: Some(webui.to_string()),
        capabilities: [
            "MULTI_ROLE",
            "PARTITION_AWARE",
            "TASK_KILLING_STATE",
            "GPU_RESOURCES",
        ]
        .iter()
        .map(|c| Capability {
            kind: c.to_string(),
        })
        .collect(),
        ..Default::default()
    }
}

fn load_framework_id(store: &dyn KvStore) -> Result<Option<FrameworkId>, StoreError> {
    Ok(store
        .get(FRAMEWORK_ID_KEY)?
        .and_then(|b| String::from_utf8(b).ok())
        .filter(|s| !s.is_empty())
        .map(FrameworkId::new))
}

/// Runs Marathon on `listener` until `shutdown` turns true.
pub async fn run(
    flags: MarathonFlags,
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(), MarathonError> {
    log_ignored_env();
    let master = flags.master_url()?;
    let work_dir = flags.work_dir();
    let mut store = RedbKv::open_in(&work_dir)?;
    let framework_id = load_framework_id(&store)?;
    let addr: SocketAddr = listener.local_addr().map_err(MarathonError::Http)?;
    let leader = format!("{}:{}", flags.advertised_host(), addr.port());
    let info = framework_info(&flags, &format!("http://{leader}"));
    let mut cfg = ClientConfig::new(master.clone(), info);
    cfg.framework_id = framework_id.clone();
    let (client, calls, mut events) = SchedulerClient::start(cfg, shutdown.clone());
    tracing::info!(
        master = master.base(),
        framework_id = ?framework_id,
        work_dir = %work_dir.display(),
        %leader,
        "marathon starting"
    );
    let shared = Arc::new(Shared {
        flags,
        master,
        leader,
        http_port: addr.port(),
        bus: EventBus::default(),
        framework_id: Mutex::new(framework_id),
        connected: AtomicBool::new(false),
        counters: Counters::default(),
        calls,
    });
    let app = routes::router(shared.clone());
    let mut http_stop = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            while !*http_stop.borrow() {
                if http_stop.changed().await.is_err() {
                    break;
                }
            }
        })
        .await
    });

    loop {
        tokio::select! {
            ev = events.recv() => {
                let Some(ev) = ev else { break };
                handle_client_event(&shared, &mut store, ev)?;
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() { break; }
            }
        }
    }
    client.task.abort();
    if let Ok(Ok(Err(e))) = tokio::time::timeout(Duration::from_secs(10), server).await {
        return Err(MarathonError::Http(e));
    }
    Ok(())
}

fn handle_client_event(
    shared: &Shared,
    store: &mut dyn KvStore,
    ev: ClientEvent,
) -> Result<(), MarathonError> {
    let now = now_iso();
    match ev {
        ClientEvent::Subscribed {
            framework_id,
            master_info,
            ..
        } => {
            // On disk before anything relies on it: a restart must resubscribe as the same
            // framework, or the master would kill our tasks after the failover timeout.
            store.put(FRAMEWORK_ID_KEY, framework_id.as_str().as_bytes())?;
            let previous = shared
                .framework_id
                .lock()
                .ok()
                .and_then(|mut g| g.replace(framework_id.clone()));
            shared.connected.store(true, Ordering::SeqCst);
            shared
                .counters
                .subscriptions
                .fetch_add(1, Ordering::Relaxed);
            let kind = if previous.as_ref() == Some(&framework_id) {
                "scheduler_reregistered_event"
            } else {
                "scheduler_registered_event"
            };
            tracing::info!(%framework_id, master = %master_info.address.hostname, "subscribed");
            shared.bus.publish(
                json!({"eventType": kind, "frameworkId": framework_id.as_str(),
                       "masterHost": master_info.address.hostname}),
                &now,
            );
            // Ask for every task the master knows of ours (reconciliation after a restart).
            shared.calls.send(Call::Reconcile { tasks: vec![] });
        }
        ClientEvent::Disconnected { reason, .. } => {
            if shared.connected.swap(false, Ordering::SeqCst) {
                shared.bus.publish(
                    json!({"eventType": "scheduler_disconnected_event", "message": reason}),
                    &now,
                );
            }
        }
        ClientEvent::Event(Event::Offers(offers)) => {
            shared
                .counters
                .offers_received
                .fetch_add(offers.len() as u64, Ordering::Relaxed);
            // Nothing to launch without the scheduler core: give the offers back.
            shared
                .counters
                .offers_declined
                .fetch_add(offers.len() as u64, Ordering::Relaxed);
            shared.calls.send(Call::Decline {
                offer_ids: offers.into_iter().map(|o| o.id).collect(),
                filters: Some(Filters {
                    refuse_seconds: Some(120.0),
                }),
            });
        }
        ClientEvent::Event(Event::Update(status)) => {
            shared
                .counters
                .status_updates
                .fetch_add(1, Ordering::Relaxed);
            shared.bus.publish(
                json!({
                    "eventType": "status_update_event",
                    "slaveId": status.agent_id.as_ref().map(|a| a.to_string()),
                    "taskId": status.task_id.as_str(),
                    "taskStatus": status.state,
                    "message": status.message.clone().unwrap_or_default(),
                    "appId": "",
                    "host": "",
                    "ipAddresses": [],
                    "ports": [],
                    "version": "",
                }),
                &now,
            );
            if let (Some(uuid), Some(agent_id)) = (status.uuid, status.agent_id.clone()) {
                shared.calls.send(Call::Acknowledge {
                    agent_id,
                    task_id: status.task_id,
                    uuid,
                });
            }
        }
        ClientEvent::Event(Event::Error(message)) => {
            tracing::error!(%message, "the master refused the framework");
        }
        ClientEvent::Event(other) => {
            tracing::debug!(event = ?other, "scheduler event");
        }
    }
    Ok(())
}

/// A Marathon running in this process (for `mesos-local` and tests).
pub struct LocalMarathon {
    /// Where its REST API answers.
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), MarathonError>>,
}

impl LocalMarathon {
    /// Binds `flags.http_address:http_port` and starts Marathon.
    pub async fn start(flags: MarathonFlags) -> Result<Self, MarathonError> {
        flags.master_url()?;
        let listener = TcpListener::bind((flags.http_address.as_str(), flags.http_port))
            .await
            .map_err(MarathonError::Http)?;
        Self::start_on(flags, listener)
    }

    /// Starts Marathon on a bound listener.
    pub fn start_on(flags: MarathonFlags, listener: TcpListener) -> Result<Self, MarathonError> {
        let addr = listener.local_addr().map_err(MarathonError::Http)?;
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(flags, listener, rx));
        Ok(LocalMarathon { addr, stop, task })
    }

    /// `http://<addr>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops it and waits (at most 15 s).
    pub async fn stop(self) -> Result<(), MarathonError> {
        let _ = self.stop.send(true);
        match tokio::time::timeout(Duration::from_secs(15), self.task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "marathon task failed");
                Ok(())
            }
            Err(_) => {
                tracing::warn!("marathon did not stop within 15 s");
                Ok(())
            }
        }
    }

    /// Ends it at once without a graceful stop (as a `kill -9` would, minus the process).
    pub fn abort(self) {
        self.task.abort();
    }
}
