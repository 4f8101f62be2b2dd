//! Helpers for the master's integration tests: start a master on 127.0.0.1:0, a v1 scheduler
//! client speaking raw HTTP/JSON, and a fake agent speaking the agent <-> master protocol.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use mesos_core::ids::{AgentId, FrameworkId, TaskId};
use mesos_core::master::{Address, AgentCommand, AgentMessage, AgentRegistration, ReportedTask};
use mesos_core::resources::Resources;
use mesos_core::task::{Source, StatusUuid, TaskState, TaskStatus};
use mesos_core::time::Time;
use serde_json::{json, Value as Json};
use shells::master::{run, MasterFlags};
use shells::recordio::Decoder;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// How long any single wait in a test may take before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// A master running in this process.
pub struct TestMaster {
    pub addr: SocketAddr,
    pub stop: watch::Sender<bool>,
    pub task: JoinHandle<Result<(), shells::master::MasterDaemonError>>,
}

impl TestMaster {
    pub async fn start(flags: MasterFlags) -> TestMaster {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::start_on(flags, listener).await
    }

    pub async fn start_on(mut flags: MasterFlags, listener: TcpListener) -> TestMaster {
        let addr = listener.local_addr().expect("addr");
        flags.port = addr.port();
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(run(flags, listener, rx));
        let m = TestMaster { addr, stop, task };
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if client
                .get(format!("{}/master/health", m.url()))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("master did not become healthy");
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let r = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("master stops in time")
            .expect("master task");
        r.expect("master ran cleanly");
    }

    pub async fn state(&self) -> Json {
        reqwest::get(format!("{}/master/state", self.url()))
            .await
            .expect("state")
            .json()
            .await
            .expect("state json")
    }
}

/// Fast flags for tests.
pub fn fast_flags() -> MasterFlags {
    let mut f = MasterFlags::local();
    f.allocation_interval = "50ms".into();
    f.seed = Some(7);
    f
}

/// A v1 scheduler speaking raw JSON over HTTP.
pub struct Scheduler {
    pub client: reqwest::Client,
    pub base: String,
    pub framework_id: String,
    pub stream_id: String,
    events: mpsc::Receiver<Json>,
    /// Events read by `wait_for` that did not match, for later waits.
    pending: std::collections::VecDeque<Json>,
    reader: JoinHandle<()>,
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// `framework_info` for a test framework.
pub fn framework_info(name: &str, role: &str, capabilities: &[&str]) -> Json {
    let caps: Vec<Json> = capabilities.iter().map(|c| json!({"type": c})).collect();
    json!({"user": "test", "name": name, "role": role, "failover_timeout": 60.0, "capabilities": caps})
}

impl Scheduler {
    pub async fn subscribe(base: &str, info: Json) -> Scheduler {
        Self::subscribe_with(base, info, None).await
    }

    pub async fn subscribe_with(base: &str, info: Json, framework_id: Option<&str>) -> Scheduler {
        let client = reqwest::Client::new();
        let mut body = json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": info}});
        if let Some(id) = framework_id {
            body["framework_id"] = json!({ "value": id });
            body["subscribe"]["framework_info"]["id"] = json!({ "value": id });
        }
        let resp = client
            .post(format!("{base}/api/v1/scheduler"))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .json(&body)
            .send()
            .await
            .expect("subscribe");
        assert_eq!(resp.status(), 200, "SUBSCRIBE status");
        assert!(
            resp.headers().get("content-length").is_none(),
            "a subscription stream has no Content-Length"
        );
        let stream_id = resp
            .headers()
            .get("mesos-stream-id")
            .expect("Mesos-Stream-Id")
            .to_str()
            .expect("ascii")
            .to_string();
        let (tx, mut events) = mpsc::channel(10_000);
        let reader = tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut decoder = Decoder::new(64 << 20);
            while let Some(Ok(chunk)) = body.next().await {
                decoder.push(&chunk);
                while let Ok(Some(record)) = decoder.next_record() {
                    let Ok(event) = serde_json::from_slice::<Json>(&record) else {
                        return;
                    };
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
        });
        let first = tokio::time::timeout(WAIT, events.recv())
            .await
            .expect("SUBSCRIBED in time")
            .expect("stream open");
        assert_eq!(first["type"], "SUBSCRIBED", "first event: {first}");
        let framework_id = first["subscribed"]["framework_id"]["value"]
            .as_str()
            .expect("framework id")
            .to_string();
        Scheduler {
            client,
            base: base.to_string(),
            framework_id,
            stream_id,
            events,
            pending: Default::default(),
            reader,
        }
    }

    /// Sends a call (framework id and stream id added) and returns the status.
    pub async fn call(&self, mut body: Json) -> reqwest::StatusCode {
        body["framework_id"] = json!({ "value": self.framework_id });
        let resp = self
            .client
            .post(format!("{}/api/v1/scheduler", self.base))
            .header("Content-Type", "application/json")
            .header("Mesos-Stream-Id", &self.stream_id)
            .json(&body)
            .send()
            .await
            .expect("call");
        let status = resp.status();
        if status == 202 {
            assert_eq!(
                resp.headers()
                    .get("content-length")
                    .and_then(|v| v.to_str().ok()),
                Some("0"),
                "202 carries Content-Length: 0"
            );
        }
        status
    }

    /// The next non-heartbeat event (one `wait_for` set aside first), or None after `within`.
    pub async fn next_event(&mut self, within: Duration) -> Option<Json> {
        if let Some(e) = self.pending.pop_front() {
            return Some(e);
        }
        self.recv(within).await
    }

    async fn recv(&mut self, within: Duration) -> Option<Json> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .ok()??;
            if e["type"] != "HEARTBEAT" {
                return Some(e);
            }
        }
    }

    /// Waits for an event matching `pred` (looking at events set aside first), acknowledging
    /// updates as they arrive; events that do not match are kept for later waits.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Json) -> bool) -> Json {
        if let Some(i) = self.pending.iter().position(&pred) {
            if let Some(e) = self.pending.remove(i) {
                return e;
            }
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self
                .recv(left)
                .await
                .unwrap_or_else(|| panic!("timed out waiting for {what}"));
            self.ack(&e).await;
            if pred(&e) {
                return e;
            }
            self.pending.push_back(e);
        }
    }

    /// Acknowledges an UPDATE carrying a uuid.
    pub async fn ack(&self, e: &Json) {
        if e["type"] != "UPDATE" {
            return;
        }
        let s = &e["update"]["status"];
        if s.get("uuid").is_none() {
            return;
        }
        let code = self
            .call(json!({"type": "ACKNOWLEDGE", "acknowledge": {
                "agent_id": s["agent_id"], "task_id": s["task_id"], "uuid": s["uuid"]}}))
            .await;
        assert_eq!(code, 202, "ACKNOWLEDGE");
    }

    /// Launches one task from an offer with the given resources (text form).
    pub async fn launch(&self, offer: &Json, task_id: &str, resources: &str, command: &str) {
        let res = Resources::parse(resources).expect("resources");
        let code = self
            .call(json!({"type": "ACCEPT", "accept": {
                "offer_ids": [offer["id"]],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
                    "name": task_id, "task_id": {"value": task_id}, "agent_id": offer["agent_id"],
                    "resources": res.to_json(mesos_core::resources::JsonFormat::PreRefinement),
                    "command": {"value": command}}]}}],
                "filters": {"refuse_seconds": 0.0}}}))
            .await;
        assert_eq!(code, 202, "ACCEPT");
    }

    pub async fn decline(&self, offer: &Json, refuse_seconds: f64) {
        let code = self
            .call(json!({"type": "DECLINE", "decline": {
                "offer_ids": [offer["id"]], "filters": {"refuse_seconds": refuse_seconds}}}))
            .await;
        assert_eq!(code, 202, "DECLINE");
    }
}

/// The offers of an OFFERS event.
pub fn offers(e: &Json) -> Vec<Json> {
    if e["type"] != "OFFERS" {
        return Vec::new();
    }
    e["offers"]["offers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A scalar of an offer's resources.
pub fn offered(offer: &Json, name: &str) -> f64 {
    offer["resources"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter(|r| r["name"] == name)
                .filter_map(|r| r["scalar"]["value"].as_f64())
                .sum()
        })
        .unwrap_or(0.0)
}

/// A fake agent: registers, answers RUN_TASK with RUNNING, PING with PONG. The answers to the
/// commands of one received chunk go in one batch (`/internal/agent/{id}/messages`), as the
/// real agent's sender does.
pub struct FakeAgent {
    pub id: String,
    pub commands: Arc<Mutex<Vec<AgentCommand>>>,
    task: JoinHandle<()>,
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeAgent {
    pub async fn start(base: &str, hostname: &str, resources: &str) -> FakeAgent {
        Self::start_with(base, hostname, resources, None, Vec::new()).await
    }

    pub async fn start_with(
        base: &str,
        hostname: &str,
        resources: &str,
        id: Option<&str>,
        tasks: Vec<ReportedTask>,
    ) -> FakeAgent {
        let client = reqwest::Client::new();
        let reg = AgentRegistration {
            id: id.map(AgentId::new),
            hostname: hostname.into(),
            address: Address {
                hostname: hostname.into(),
                ip: "127.0.0.1".into(),
                port: 5051,
            },
            resources: Resources::parse(resources).expect("resources"),
            attributes: Default::default(),
            tasks,
            version: "1.11.0".into(),
        };
        let resp = client
            .post(format!("{base}/internal/agent/register"))
            .json(&reg)
            .send()
            .await
            .expect("register");
        assert_eq!(resp.status(), 200, "register");
        let body: Json = resp.json().await.expect("json");
        let id = body["agent_id"]["value"].as_str().expect("id").to_string();
        let resp = client
            .post(format!("{base}/internal/agent/{id}/stream"))
            .send()
            .await
            .expect("stream");
        assert_eq!(resp.status(), 200, "agent stream");
        let commands = Arc::new(Mutex::new(Vec::new()));
        let seen = commands.clone();
        let base = base.to_string();
        let agent = id.clone();
        let task = tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut decoder = Decoder::new(64 << 20);
            let mut n: u128 = 1;
            while let Some(Ok(chunk)) = body.next().await {
                decoder.push(&chunk);
                let mut replies = Vec::new();
                while let Ok(Some(record)) = decoder.next_record() {
                    let Ok(cmd) = serde_json::from_slice::<AgentCommand>(&record) else {
                        return;
                    };
                    let reply = match &cmd {
                        AgentCommand::RunTask { framework, task } => {
                            n += 1;
                            Some(status_update(
                                &framework.id,
                                &task.task_id,
                                &agent,
                                TaskState::Running,
                                n,
                            ))
                        }
                        AgentCommand::Ping => Some(AgentMessage::Pong),
                        _ => None,
                    };
                    seen.lock().expect("lock").push(cmd);
                    replies.extend(reply);
                }
                if !replies.is_empty() {
                    let _ = client
                        .post(format!("{base}/internal/agent/{agent}/messages"))
                        .json(&replies)
                        .send()
                        .await;
                }
            }
        });
        FakeAgent { id, commands, task }
    }
}

pub fn status_update(
    framework: &FrameworkId,
    task: &TaskId,
    agent: &str,
    state: TaskState,
    uuid: u128,
) -> AgentMessage {
    AgentMessage::StatusUpdate {
        framework_id: framework.clone(),
        status: TaskStatus::new(task.clone(), state)
            .with_source(Source::Executor)
            .with_agent(AgentId::new(agent))
            .with_uuid(StatusUuid::from_u128(uuid))
            .with_timestamp(Time::from_secs(1)),
    }
}

/// A fresh directory under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "mesos-rs-{name}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}
