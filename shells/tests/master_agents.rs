//! The master with real agents (`shells::agent::run`) in process: a killed agent's tasks become
//! UNREACHABLE (partition-aware frameworks) or LOST within the ping timeout, a restarted agent
//! recovers its running tasks with none lost, and a restarted master recovers from its registry.

mod master_support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use master_support::*;
use serde_json::Value as Json;
use shells::agent::{self, AgentConfig, AgentDaemonError};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct RealAgent {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), AgentDaemonError>>,
}

impl RealAgent {
    async fn start(master: SocketAddr, dir: PathBuf, kill_on_shutdown: bool) -> RealAgent {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let mut cfg = AgentConfig::local(master.to_string(), dir);
        cfg.port = addr.port();
        cfg.resources = Some("cpus:2;mem:1024;disk:1000;ports:[31000-31100]".into());
        cfg.kill_tasks_on_shutdown = kill_on_shutdown;
        cfg.registration_backoff_factor = Duration::from_millis(100);
        cfg.registration_backoff_max = Duration::from_millis(500);
        let (stop, rx) = watch::channel(false);
        let task = tokio::spawn(agent::run(cfg, listener, rx));
        RealAgent { addr, stop, task }
    }

    /// Stops the agent process (its tasks keep running unless it kills them on shutdown).
    async fn stop(self) {
        let _ = self.stop.send(true);
        let r = tokio::time::timeout(WAIT, self.task)
            .await
            .expect("agent stops in time")
            .expect("agent task");
        r.expect("agent ran cleanly");
    }
}

async fn task_state(m: &TestMaster, task: &str) -> Option<String> {
    let s = m.state().await;
    for fw in s["frameworks"].as_array()? {
        for list in ["tasks", "unreachable_tasks"] {
            for t in fw[list].as_array().into_iter().flatten() {
                if t["id"] == task {
                    return t["state"].as_str().map(str::to_string);
                }
            }
        }
    }
    None
}

fn is_update(e: &Json, task: &str, state: &str) -> bool {
    e["type"] == "UPDATE"
        && e["update"]["status"]["task_id"]["value"] == task
        && e["update"]["status"]["state"] == state
}

async fn launch_sleep(sched: &mut Scheduler, task: &str) -> String {
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    sched
        .launch(&offer, task, "cpus:0.1;mem:32", "sleep 60")
        .await;
    sched
        .wait_for("TASK_RUNNING", |e| is_update(e, task, "TASK_RUNNING"))
        .await;
    offer["agent_id"]["value"]
        .as_str()
        .expect("agent")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_agent_tasks_become_unreachable_or_lost_and_come_back() {
    let mut flags = fast_flags();
    flags.agent_ping_timeout = "200ms".into();
    flags.max_agent_ping_timeouts = 3;
    let m = TestMaster::start(flags).await;
    let dir = temp_dir("agent-kill");
    let a = RealAgent::start(m.addr, dir.clone(), false).await;

    let mut aware =
        Scheduler::subscribe(&m.url(), framework_info("aware", "*", &["PARTITION_AWARE"])).await;
    let agent_id = launch_sleep(&mut aware, "aware-1").await;
    // The second framework sees offers once the first declines the rest for long.
    let e = aware.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    for o in offers(&e) {
        aware.decline(&o, 3600.0).await;
    }
    let mut plain = Scheduler::subscribe(&m.url(), framework_info("plain", "*", &[])).await;
    launch_sleep(&mut plain, "plain-1").await;

    // "Kill" the agent: its process goes away, its tasks keep running, pings go unanswered.
    a.stop().await;
    let e = aware
        .wait_for("TASK_UNREACHABLE", |e| {
            is_update(e, "aware-1", "TASK_UNREACHABLE")
        })
        .await;
    assert_eq!(e["update"]["status"]["source"], "SOURCE_MASTER");
    assert!(e["update"]["status"].get("uuid").is_none());
    assert_eq!(
        e["update"]["status"]["agent_id"]["value"],
        agent_id.as_str()
    );
    let e = plain
        .wait_for("TASK_LOST", |e| is_update(e, "plain-1", "TASK_LOST"))
        .await;
    assert_eq!(e["update"]["status"]["reason"], "REASON_AGENT_REMOVED");
    assert_eq!(
        task_state(&m, "aware-1").await.as_deref(),
        Some("TASK_UNREACHABLE")
    );
    let s = m.state().await;
    assert_eq!(s["unreachable_slaves"], 1);

    // The agent comes back with its tasks: the partition-aware task is RUNNING again.
    let a = RealAgent::start(m.addr, dir.clone(), true).await;
    aware
        .wait_for("TASK_RUNNING again", |e| {
            is_update(e, "aware-1", "TASK_RUNNING")
        })
        .await;
    assert_eq!(
        task_state(&m, "aware-1").await.as_deref(),
        Some("TASK_RUNNING")
    );
    let s = m.state().await;
    assert_eq!(s["slaves"][0]["id"], agent_id.as_str(), "same agent id");
    a.stop().await;
    drop(aware);
    drop(plain);
    m.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_agent_recovers_running_tasks_with_none_lost() {
    let mut flags = fast_flags();
    flags.agent_ping_timeout = "1secs".into();
    flags.max_agent_ping_timeouts = 30;
    let m = TestMaster::start(flags).await;
    let dir = temp_dir("agent-restart");
    let a = RealAgent::start(m.addr, dir.clone(), false).await;
    let mut sched = Scheduler::subscribe(&m.url(), framework_info("restart", "*", &[])).await;
    let agent_id = launch_sleep(&mut sched, "r-1").await;
    let agent_state_before: Json = reqwest::get(format!("http://{}/state", a.addr))
        .await
        .expect("agent state")
        .json()
        .await
        .expect("json");
    assert!(
        agent_state_before.to_string().contains("r-1"),
        "the agent runs r-1"
    );

    a.stop().await;
    let a = RealAgent::start(m.addr, dir.clone(), true).await;
    // Wait for the reregistration, then check nothing was lost.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = m.state().await;
        let rereg = s["slaves"][0]["reregistered_time"].is_number();
        if rereg && s["slaves"][0]["active"] == true {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "agent did not reregister: {s}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = m.state().await;
    assert_eq!(s["slaves"][0]["id"], agent_id.as_str());
    assert_eq!(task_state(&m, "r-1").await.as_deref(), Some("TASK_RUNNING"));
    // No terminal update reaches the framework.
    while let Some(e) = sched.next_event(Duration::from_millis(1500)).await {
        sched.ack(&e).await;
        if e["type"] == "UPDATE" {
            let state = e["update"]["status"]["state"].as_str().unwrap_or("");
            assert!(
                state == "TASK_RUNNING" || state == "TASK_STARTING",
                "unexpected update after an agent restart: {e}"
            );
        }
    }
    let metrics: Json = reqwest::get(format!("{}/metrics/snapshot", m.url()))
        .await
        .expect("metrics")
        .json()
        .await
        .expect("json");
    assert_eq!(metrics["master/tasks_lost"], 0.0);
    assert_eq!(metrics["master/tasks_running"], 1.0);
    a.stop().await;
    drop(sched);
    m.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_master_recovers_frameworks_agents_and_tasks() {
    let dir = temp_dir("master-restart");
    let mut flags = fast_flags();
    flags.work_dir = Some(dir.join("master"));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let m = TestMaster::start_on(flags.clone(), listener).await;
    let a = RealAgent::start(m.addr, dir.join("agent"), true).await;
    let mut sched = Scheduler::subscribe(&m.url(), framework_info("survivor", "*", &[])).await;
    let framework_id = sched.framework_id.clone();
    let agent_id = launch_sleep(&mut sched, "s-1").await;
    drop(sched);
    m.shutdown().await;

    // A new master process on the same port and work dir.
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("rebind");
    let m = TestMaster::start_on(flags, listener).await;
    let s = m.state().await;
    assert!(
        s["frameworks"][0]["id"] == framework_id.as_str()
            && s["frameworks"][0]["recovered"] == true,
        "the framework is recovered from the registry: {}",
        s["frameworks"]
    );
    let sched = Scheduler::subscribe_with(
        &m.url(),
        framework_info("survivor", "*", &[]),
        Some(&framework_id),
    )
    .await;
    assert_eq!(sched.framework_id, framework_id, "same framework id");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if task_state(&m, "s-1").await.as_deref() == Some("TASK_RUNNING") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task s-1 not recovered: {}",
            m.state().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let s = m.state().await;
    assert_eq!(s["slaves"][0]["id"], agent_id.as_str(), "same agent id");
    assert_eq!(s["recovered_slaves"].as_array().map(Vec::len), Some(0));
    a.stop().await;
    drop(sched);
    m.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
