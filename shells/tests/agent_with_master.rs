//! Acceptance of the agent half of issue 6 with the real master in this process and the
//! `mesos-agent` binary as a child process (configured through `MESOS_*` environment variables):
//! killing the agent makes a partition-aware framework's task UNREACHABLE within the ping timeout;
//! restarting it recovers the running task (same agent id, task still running, none lost).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures::StreamExt as _;
use serde_json::{json, Value};
use shells::master::MasterFlags;
use shells::recordio::Decoder;
use tokio::sync::{mpsc, watch};

const WAIT: Duration = Duration::from_secs(60);

struct Scheduler {
    base: String,
    http: reqwest::Client,
    stream_id: String,
    framework_id: String,
    events: mpsc::Receiver<Value>,
    _reader: tokio::task::JoinHandle<()>,
}

impl Scheduler {
    async fn subscribe(base: &str) -> Scheduler {
        let http = reqwest::Client::new();
        let resp = http
            .post(format!("{base}/api/v1/scheduler"))
            .json(
                &json!({"type": "SUBSCRIBE", "subscribe": {"framework_info": {
                "user": "root", "name": "agent-acceptance",
                "capabilities": [{"type": "PARTITION_AWARE"}]}}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let stream_id = resp.headers()["Mesos-Stream-Id"]
            .to_str()
            .unwrap()
            .to_string();
        let (tx, mut rx) = mpsc::channel(1024);
        let reader = tokio::spawn(async move {
            let mut body = resp.bytes_stream();
            let mut d = Decoder::new(16 << 20);
            while let Some(Ok(chunk)) = body.next().await {
                d.push(&chunk);
                while let Ok(Some(rec)) = d.next_record() {
                    let v: Value = serde_json::from_slice(&rec).unwrap();
                    if tx.send(v).await.is_err() {
                        return;
                    }
                }
            }
        });
        let subscribed = tokio::time::timeout(WAIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(subscribed["type"], "SUBSCRIBED", "{subscribed}");
        let framework_id = subscribed["subscribed"]["framework_id"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        Scheduler {
            base: base.to_string(),
            http,
            stream_id,
            framework_id,
            events: rx,
            _reader: reader,
        }
    }

    async fn call(&self, mut body: Value) {
        body["framework_id"] = json!({"value": self.framework_id});
        let resp = self
            .http
            .post(format!("{}/api/v1/scheduler", self.base))
            .header("Mesos-Stream-Id", &self.stream_id)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{body}: {}", resp.status());
    }

    async fn next_of(&mut self, kind: &str) -> Value {
        // One deadline for the wanted event: heartbeats in between must not extend it.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind} event in time"))
                .expect("subscription closed");
            if ev["type"] == kind {
                return ev;
            }
        }
    }

    /// The next update of `task`, acknowledged when it carries a uuid.
    async fn update(&mut self, task: &str) -> Value {
        loop {
            let ev = self.next_of("UPDATE").await;
            let st = ev["update"]["status"].clone();
            if let Some(uuid) = st.get("uuid") {
                self.call(json!({"type": "ACKNOWLEDGE", "acknowledge": {
                    "agent_id": st["agent_id"], "task_id": st["task_id"], "uuid": uuid}}))
                    .await;
            }
            if st["task_id"]["value"] == task {
                return st;
            }
        }
    }

    async fn update_in(&mut self, task: &str, state: &str) -> Value {
        loop {
            let st = self.update(task).await;
            if st["state"] == state {
                return st;
            }
            assert!(
                !matches!(
                    st["state"].as_str(),
                    Some("TASK_FAILED" | "TASK_LOST" | "TASK_GONE" | "TASK_KILLED")
                ),
                "waiting for {state}: {st}"
            );
        }
    }
}

struct AgentProcess(Child);

impl AgentProcess {
    fn start(master: &str, work_dir: &Path) -> AgentProcess {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(work_dir.with_extension("log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_mesos-agent"))
            .env("MESOS_MASTER", master)
            .env("MESOS_WORK_DIR", work_dir)
            .env("MESOS_IP", "127.0.0.1")
            .env("MESOS_PORT", "0")
            .env("MESOS_HOSTNAME", "agent-under-test")
            .env(
                "MESOS_RESOURCES",
                "cpus:2;mem:512;disk:512;ports:[31000-31005]",
            )
            .env("MESOS_ATTRIBUTES", "rack:r9")
            .env("MESOS_CONTAINERIZERS", "mesos")
            .env("MESOS_REGISTRATION_BACKOFF_FACTOR", "100ms")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        AgentProcess(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn work_dir() -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "mesos-agent-accept-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The master daemon running in this process on a loopback port, its registry in memory.
struct LocalMaster {
    addr: String,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), shells::master::MasterDaemonError>>,
}

impl LocalMaster {
    async fn start(mut flags: MasterFlags) -> LocalMaster {
        flags.port = 0;
        flags.registry = "in_memory".into();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(shells::master::run(flags, listener, stop_rx));
        LocalMaster { addr, stop, task }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(WAIT, self.task).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_tasks_become_unreachable_and_a_restart_recovers_them() {
    let root = work_dir();
    let mut flags = MasterFlags::local();
    flags.agent_ping_timeout = "1secs".into();
    flags.max_agent_ping_timeouts = 3;
    flags.allocation_interval = "100ms".into();
    flags.heartbeat_interval = "1secs".into();
    let master = LocalMaster::start(flags).await;
    let (master_addr, base) = (master.addr.clone(), master.base());

    let agent_dir = root.join("agent");
    let mut agent = AgentProcess::start(&master_addr, &agent_dir);
    let mut sched = Scheduler::subscribe(&base).await;

    // An offer from the agent, with what its environment said.
    let offers = sched.next_of("OFFERS").await;
    let offer = offers["offers"]["offers"][0].clone();
    assert_eq!(offer["hostname"], "agent-under-test", "{offer}");
    // MESOS_RESOURCES and MESOS_ATTRIBUTES reached the master.
    let cpus = offer["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "cpus")
        .map(|r| r["scalar"]["value"].as_f64().unwrap());
    assert_eq!(cpus, Some(2.0), "{offer}");
    assert!(offer["attributes"].to_string().contains("r9"), "{offer}");
    let agent_id = offer["agent_id"]["value"].as_str().unwrap().to_string();
    let pidfile = root.join("task.pid");
    sched
        .call(json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
            "name": "sleeper", "task_id": {"value": "sleeper-1"},
            "agent_id": {"value": agent_id},
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
            "command": {"value": format!("echo $$ > {}; exec sleep 300", pidfile.display())}
        }]}}]}}))
        .await;
    sched.update_in("sleeper-1", "TASK_RUNNING").await;
    // RUNNING says the task was started; its shell may not have written the pid yet.
    let mut task_pid = String::new();
    for _ in 0..1000 {
        task_pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
        if task_pid.ends_with('\n') {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let task_pid = task_pid.trim().to_string();

    // Kill -9 the agent: the task becomes UNREACHABLE (the framework is partition-aware).
    agent.kill9();
    let st = sched.update_in("sleeper-1", "TASK_UNREACHABLE").await;
    assert_eq!(st["agent_id"]["value"], agent_id);
    assert!(
        Path::new(&format!("/proc/{task_pid}")).exists(),
        "the task died with the agent"
    );

    // Restart it on the same work dir: same id, the task is RUNNING again, nothing lost.
    let mut agent = AgentProcess::start(&master_addr, &agent_dir);
    let st = sched.update_in("sleeper-1", "TASK_RUNNING").await;
    assert_eq!(st["agent_id"]["value"], agent_id);
    let state: Value = reqwest::get(format!("{base}/master/state"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slaves = state["slaves"].as_array().cloned().unwrap_or_default();
    assert_eq!(slaves.len(), 1, "{state}");
    assert_eq!(slaves[0]["id"], agent_id);

    // And it still controls the task.
    sched
        .call(
            json!({"type": "KILL", "kill": {"task_id": {"value": "sleeper-1"},
            "agent_id": {"value": agent_id}}}),
        )
        .await;
    sched.update_in("sleeper-1", "TASK_KILLED").await;
    assert!(
        !Path::new(&format!("/proc/{task_pid}/cmdline")).exists()
            || std::fs::read_to_string(format!("/proc/{task_pid}/status"))
                .unwrap_or_default()
                .contains("zombie")
    );

    agent.kill9();
    master.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_binary_refuses_a_zookeeper_master_with_a_clear_error() {
    let dir = work_dir();
    let out = Command::new(env!("CARGO_BIN_EXE_mesos-agent"))
        .env("MESOS_MASTER", "zk://127.0.0.1:2181/mesos")
        .env("MESOS_WORK_DIR", &dir)
        .env("MESOS_PORT", "0")
        .env("MESOS_IP", "127.0.0.1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("ZooKeeper detection comes with the HA issue"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_mesos-agent"))
        .env("MESOS_MASTER", "127.0.0.1:1")
        .env("MESOS_WORK_DIR", &dir)
        .env("MESOS_PORT", "0")
        .env("MESOS_CONTAINERIZERS", "mesos,rkt")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown containerizer `rkt`"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_register_answer_carries_the_masters_ping_budget() {
    let mut flags = MasterFlags::local();
    flags.agent_ping_timeout = "1500ms".into();
    flags.max_agent_ping_timeouts = 4;
    let master = LocalMaster::start(flags).await;
    let base = master.base();

    let reg = mesos_core::master::AgentRegistration {
        id: None,
        hostname: "budget".into(),
        address: mesos_core::master::Address {
            hostname: "budget".into(),
            ip: "127.0.0.1".into(),
            port: 5051,
        },
        resources: mesos_core::resources::Resources::parse("cpus:1;mem:128").unwrap(),
        attributes: Default::default(),
        tasks: Vec::new(),
        version: "1.11.0".into(),
    };
    // As the agent reads it: agent_ping_timeout x max_agent_ping_timeouts, in seconds.
    let client = shells::agent::link::MasterClient::new(base.clone()).unwrap();
    let mut answer = None;
    for _ in 0..100 {
        match client.register(&reg).await {
            Ok(a) => {
                answer = Some(a);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
    let answer = answer.expect("the master did not answer the registration");
    assert_eq!(answer.total_ping_timeout_seconds, Some(6.0));
    // And on the wire, next to the id.
    let raw: Value = reqwest::Client::new()
        .post(format!("{base}/internal/agent/register"))
        .json(&reg)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["total_ping_timeout_seconds"], json!(6.0), "{raw}");
    assert!(raw["agent_id"]["value"].is_string(), "{raw}");

    master.stop().await;
}

/// Takes the immutable attribute off a file again, whatever happens to the test.
struct Immutable(PathBuf);

impl Immutable {
    /// `chattr +i`: nobody, root included, may write or replace the file. `None` where the
    /// file system or the machine does not support it.
    fn set(path: &Path) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_reaches_the_master_only_once_its_checkpoint_is_on_disk() {
    let root = work_dir();
    let mut flags = MasterFlags::local();
    flags.allocation_interval = "100ms".into();
    let master = LocalMaster::start(flags).await;
    let (master_addr, base) = (master.addr.clone(), master.base());
    let agent_dir = root.join("agent");
    let mut agent = AgentProcess::start(&master_addr, &agent_dir);
    let mut sched = Scheduler::subscribe(&base).await;
    let offers = sched.next_of("OFFERS").await;
    let offer = offers["offers"]["offers"][0].clone();
    let agent_id = offer["agent_id"]["value"].as_str().unwrap().to_string();

    // The agent wrote its first snapshot at start; from now on its task journal cannot be
    // written.
    let journal = agent_dir.join("meta").join("tasks.journal");
    for _ in 0..1000 {
        if journal.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let Some(guard) = Immutable::set(&journal) else {
        eprintln!(
            "skipped: `chattr +i` is not available for {}",
            journal.display()
        );
        agent.kill9();
        master.stop().await;
        return;
    };
    sched
        .call(json!({"type": "ACCEPT", "accept": {
        "offer_ids": [offer["id"]],
        "operations": [{"type": "LAUNCH", "launch": {"task_infos": [{
            "name": "sleeper", "task_id": {"value": "durable-1"},
            "agent_id": {"value": agent_id},
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
            "command": {"value": "exec sleep 300"}
        }]}}]}}))
        .await;
    // The task runs, but nothing about it may reach the master while it is not on disk.
    let early = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            let ev = sched.next_of("UPDATE").await;
            if ev["update"]["status"]["task_id"]["value"] == "durable-1" {
                return ev;
            }
        }
    })
    .await;
    assert!(early.is_err(), "forwarded before checkpointing: {early:?}");

    // Once the journal can be written again, the update follows.
    drop(guard);
    let st = sched.update_in("durable-1", "TASK_RUNNING").await;
    assert_eq!(st["agent_id"]["value"], agent_id);
    let text = std::fs::read_to_string(&journal).unwrap();
    assert!(text.contains("durable-1"), "{text}");

    agent.kill9();
    master.stop().await;
    let _ = std::fs::remove_dir_all(&root);
}
