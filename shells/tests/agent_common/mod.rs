//! A small fake master speaking the agent <-> master protocol, for the agent's tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use futures::StreamExt as _;
use mesos_core::ids::{AgentId, FrameworkId, TaskId};
use mesos_core::master::{
    AgentCommand, AgentMessage, AgentRegistration, CommandInfo, FrameworkInfo, FrameworkRef,
    TaskInfo,
};
use mesos_core::resources::Resources;
use mesos_core::task::{TaskState, TaskStatus};
use shells::agent::AgentConfig;
use shells::recordio::encode;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

/// How long any single expected event may take.
pub const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone)]
struct Shared {
    registrations: mpsc::Sender<AgentRegistration>,
    messages: mpsc::Sender<AgentMessage>,
    stream: Arc<Mutex<Option<mpsc::Sender<AgentCommand>>>>,
    streams_opened: mpsc::Sender<String>,
    next_id: Arc<Mutex<u32>>,
    forgotten: Arc<std::sync::atomic::AtomicBool>,
    ping_timeout: Option<f64>,
}

/// The fake master and what it observed.
pub struct FakeMaster {
    /// `host:port`.
    pub addr: String,
    /// Registrations received.
    pub registrations: mpsc::Receiver<AgentRegistration>,
    /// Messages received (updates, pongs).
    pub messages: mpsc::Receiver<AgentMessage>,
    /// Agent ids whose stream was opened.
    pub streams_opened: mpsc::Receiver<String>,
    stream: Arc<Mutex<Option<mpsc::Sender<AgentCommand>>>>,
    forgotten: Arc<std::sync::atomic::AtomicBool>,
    /// Uuids acknowledged so far.
    pub acked: std::collections::HashSet<mesos_core::task::StatusUuid>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeMaster {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn register(State(s): State<Shared>, Json(reg): Json<AgentRegistration>) -> Response {
    if reg.hostname == "refuse-me" {
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({"error": "invalid agent registration: hostname refuse-me"})),
        )
            .into_response();
    }
    s.forgotten
        .store(false, std::sync::atomic::Ordering::SeqCst);
    let id = match &reg.id {
        Some(id) => id.clone(),
        None => {
            let mut n = s.next_id.lock().unwrap();
            *n += 1;
            AgentId::new(format!("fake-S{}", *n - 1))
        }
    };
    let _ = s.registrations.send(reg).await;
    let mut answer = serde_json::json!({"agent_id": {"value": id.as_str()}});
    if let Some(t) = s.ping_timeout {
        answer["total_ping_timeout_seconds"] = serde_json::json!(t);
    }
    Json(answer).into_response()
}

async fn stream(State(s): State<Shared>, Path(id): Path<String>) -> Response {
    if s.forgotten.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({"error": format!("agent {id} is not registered")})),
        )
            .into_response();
    }
    let (tx, rx) = mpsc::channel::<AgentCommand>(64);
    *s.stream.lock().unwrap() = Some(tx);
    let _ = s.streams_opened.send(id).await;
    let body = ReceiverStream::new(rx).map(|cmd| {
        let json = serde_json::to_vec(&cmd).unwrap();
        Ok::<_, std::io::Error>(Bytes::from(encode(&json)))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/recordio")
        .body(Body::from_stream(body))
        .unwrap()
}

async fn message(
    State(s): State<Shared>,
    Path(_id): Path<String>,
    Json(msg): Json<AgentMessage>,
) -> StatusCode {
    let _ = s.messages.send(msg).await;
    StatusCode::ACCEPTED
}

impl FakeMaster {
    /// Starts one on 127.0.0.1:0.
    pub async fn start() -> FakeMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_on(listener).await
    }

    /// Starts one on `listener`.
    pub async fn start_on(listener: tokio::net::TcpListener) -> FakeMaster {
        Self::start_with(listener, None).await
    }

    /// Starts one on 127.0.0.1:0 that announces `secs` as its total ping timeout (and never
    /// pings).
    pub async fn start_with_ping_timeout(secs: f64) -> FakeMaster {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::start_with(listener, Some(secs)).await
    }

    async fn start_with(
        listener: tokio::net::TcpListener,
        ping_timeout: Option<f64>,
    ) -> FakeMaster {
        let addr = listener.local_addr().unwrap().to_string();
        let (reg_tx, reg_rx) = mpsc::channel(64);
        let (msg_tx, msg_rx) = mpsc::channel(1024);
        let (open_tx, open_rx) = mpsc::channel(64);
        let stream = Arc::new(Mutex::new(None));
        let forgotten = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let shared = Shared {
            registrations: reg_tx,
            messages: msg_tx,
            stream: stream.clone(),
            streams_opened: open_tx,
            next_id: Arc::new(Mutex::new(0)),
            forgotten: forgotten.clone(),
            ping_timeout,
        };
        let app = Router::new()
            .route("/internal/agent/register", post(register))
            .route("/internal/agent/{id}/stream", post(self::stream))
            .route("/internal/agent/{id}/message", post(message))
            .with_state(shared);
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeMaster {
            addr,
            registrations: reg_rx,
            messages: msg_rx,
            streams_opened: open_rx,
            stream,
            forgotten,
            acked: Default::default(),
            server,
        }
    }

    /// Acts like a master restarted without state: closes the stream and answers 404 to the
    /// agent's stream until it registers again.
    pub fn forget(&self) {
        self.forgotten
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.stream.lock().unwrap().take();
    }

    /// The next registration.
    pub async fn registration(&mut self) -> AgentRegistration {
        tokio::time::timeout(WAIT, self.registrations.recv())
            .await
            .expect("no registration in time")
            .expect("fake master gone")
    }

    /// Waits for the agent's command stream.
    pub async fn stream_opened(&mut self) -> String {
        tokio::time::timeout(WAIT, self.streams_opened.recv())
            .await
            .expect("no stream opened in time")
            .expect("fake master gone")
    }

    /// Sends a command on the open stream.
    pub async fn command(&self, cmd: AgentCommand) {
        let tx = self.stream.lock().unwrap().clone().expect("no stream open");
        tx.send(cmd).await.expect("stream closed");
    }

    /// The next message that is not a PONG.
    pub async fn next_update(&mut self) -> (FrameworkId, TaskStatus) {
        loop {
            let msg = tokio::time::timeout(WAIT, self.messages.recv())
                .await
                .expect("no status update in time")
                .expect("fake master gone");
            match msg {
                AgentMessage::StatusUpdate {
                    framework_id,
                    status,
                } => return (framework_id, status),
                AgentMessage::Pong => continue,
                other => panic!("unexpected message {other:?}"),
            }
        }
    }

    /// The next update, which must be in `state`; acknowledges it.
    /// A resend of an update already acknowledged (at-least-once delivery: the agent may have
    /// stopped before it processed the acknowledgement) is acknowledged again and skipped.
    pub async fn expect_and_ack(&mut self, state: TaskState) -> TaskStatus {
        let (fw, st) = self.next_fresh_update().await;
        assert_eq!(st.state, state, "unexpected update {st:?}");
        self.ack(&fw, &st).await;
        st
    }

    /// The next update whose uuid was not acknowledged yet (resends are acknowledged again).
    pub async fn next_fresh_update(&mut self) -> (FrameworkId, TaskStatus) {
        loop {
            let (fw, st) = self.next_update().await;
            if st.uuid.is_some_and(|u| self.acked.contains(&u)) {
                self.ack(&fw, &st).await;
                continue;
            }
            return (fw, st);
        }
    }

    /// Acknowledges an update.
    pub async fn ack(&mut self, fw: &FrameworkId, st: &TaskStatus) {
        if let Some(u) = st.uuid {
            self.acked.insert(u);
        }
        self.command(AgentCommand::Acknowledge {
            framework_id: fw.clone(),
            task_id: st.task_id.clone(),
            uuid: st.uuid.expect("updates from the agent carry a uuid"),
        })
        .await;
    }
}

/// A fresh work directory.
pub fn work_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "mesos-agent-test-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A running agent.
pub struct RunningAgent {
    /// Its HTTP address.
    pub addr: String,
    shutdown: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<Result<(), shells::agent::AgentDaemonError>>,
}

impl RunningAgent {
    /// Starts an agent with `config` on 127.0.0.1:0.
    pub async fn start(config: AgentConfig) -> RunningAgent {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, rx) = watch::channel(false);
        let handle = tokio::spawn(shells::agent::run(config, listener, rx));
        RunningAgent {
            addr,
            shutdown: tx,
            handle,
        }
    }

    /// Stops it and waits for it to return.
    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(WAIT, self.handle)
            .await
            .expect("agent did not stop in time")
            .expect("agent task panicked")
            .expect("agent returned an error");
    }

    /// `GET /state`.
    pub async fn state(&self) -> serde_json::Value {
        reqwest::get(format!("http://{}/state", self.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// An agent config for tests: small resources, fast registration retries.
pub fn config(master: &str, work_dir: PathBuf) -> AgentConfig {
    let mut c = AgentConfig::local(master.to_string(), work_dir);
    c.resources = Some("cpus:2;mem:1024;disk:1024;ports:[31000-31010]".into());
    c.attributes = Some("rack:r1".into());
    c.registration_backoff_factor = Duration::from_millis(100);
    c.registration_backoff_max = Duration::from_millis(500);
    c.executor_shutdown_grace_period = Duration::from_millis(500);
    c
}

/// A framework.
pub fn framework(id: &str) -> FrameworkRef {
    FrameworkRef {
        id: FrameworkId::new(id),
        info: FrameworkInfo {
            user: "root".into(),
            name: "test".into(),
            ..Default::default()
        },
    }
}

/// A command task.
pub fn task(id: &str, agent: &str, cmd: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: AgentId::new(agent),
        resources: Resources::parse("cpus:0.1;mem:32;ports:[31000-31000]").unwrap(),
        command: Some(CommandInfo {
            value: Some(cmd.into()),
            ..Default::default()
        }),
        executor: None,
        container: None,
        health_check: None,
        kill_policy: None,
        labels: None,
        discovery: None,
        data: None,
    }
}

/// Runs `cmd` as a task and waits for STARTING and RUNNING (acknowledged).
pub async fn launch_running(m: &mut FakeMaster, fw: &FrameworkRef, t: TaskInfo) {
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: t,
    })
    .await;
    m.expect_and_ack(TaskState::Starting).await;
    m.expect_and_ack(TaskState::Running).await;
}
