//! The agent's Docker containerizer against the test dockerd (`scripts/services.sh start docker`).
//!
//! Gated on `MESOS_TEST_DOCKER=1`; then `DOCKER_HOST`, `MESOS_TEST_BUSYBOX_IMAGE` and
//! `MESOS_TEST_HTTPD_IMAGE` must be set, and any failure fails the test.

mod agent_common;

use std::time::Duration;

use agent_common::*;
use mesos_core::master::AgentCommand;
use mesos_core::task::{Reason, TaskState};
use serde_json::json;

fn gate() -> Option<(String, String)> {
    if std::env::var("MESOS_TEST_DOCKER").ok().as_deref() != Some("1") {
        assert!(
            std::env::var("MESOS_TEST_STRICT").is_err(),
            "MESOS_TEST_STRICT is set but MESOS_TEST_DOCKER is not"
        );
        eprintln!("skipped: MESOS_TEST_DOCKER is not set");
        return None;
    }
    let var = |v: &str| std::env::var(v).unwrap_or_else(|_| panic!("{v} is not set"));
    var("DOCKER_HOST");
    Some((
        var("MESOS_TEST_BUSYBOX_IMAGE"),
        var("MESOS_TEST_HTTPD_IMAGE"),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_tasks_run_serve_ports_survive_a_restart_and_die_on_kill() {
    let Some((busybox, httpd)) = gate() else {
        return;
    };
    let mut m = FakeMaster::start().await;
    let dir = work_dir("docker");
    let _cleanup = ContainerCleanup(dir.clone());
    let mut cfg = config(&m.addr, dir.clone());
    cfg.containerizers = "mesos,docker".into();
    let agent = RunningAgent::start(cfg.clone()).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-d");

    // A short task: FINISHED, with its output in the sandbox.
    let mut t = task("d-echo", "fake-S0", "echo hello-from-docker");
    t.container = Some(json!({"type": "DOCKER", "docker": {"image": busybox}}));
    launch_running(&mut m, &fw, t).await;
    m.expect_and_ack(TaskState::Finished).await;
    let sandboxes: Vec<_> = glob_stdout(&dir, "d-echo");
    assert_eq!(sandboxes.len(), 1);
    let out = std::fs::read_to_string(&sandboxes[0]).unwrap();
    assert!(out.contains("hello-from-docker"), "{out}");

    // A bad image: TASK_FAILED with the launch reason and the image in the message.
    let mut t = task("d-missing", "fake-S0", "true");
    t.container =
        Some(json!({"type": "DOCKER", "docker": {"image": "mesos-test/no-such-image:0"}}));
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: t,
    })
    .await;
    m.expect_and_ack(TaskState::Starting).await;
    let failed = m.expect_and_ack(TaskState::Failed).await;
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed));
    assert!(
        failed
            .message
            .as_deref()
            .unwrap_or("")
            .contains("no-such-image"),
        "{failed:?}"
    );

    // httpd on a BRIDGE port mapping from the task's ports.
    let port = free_port();
    let mut t = task("d-httpd", "fake-S0", "");
    t.command = None;
    t.resources =
        mesos_core::resources::Resources::parse(&format!("cpus:0.1;mem:64;ports:[{port}-{port}]"))
            .unwrap();
    t.container = Some(
        json!({"type": "DOCKER", "docker": {"image": httpd, "network": "BRIDGE",
        "port_mappings": [{"host_port": port, "container_port": 80, "protocol": "tcp"}]}}),
    );
    launch_running(&mut m, &fw, t).await;
    let body = get_with_retries(&format!("http://127.0.0.1:{port}/")).await;
    assert!(body.contains("mesos-test-httpd"), "{body}");

    // The agent restarts; the container keeps serving and is reported RUNNING.
    agent.stop().await;
    let body = get_with_retries(&format!("http://127.0.0.1:{port}/")).await;
    assert!(body.contains("mesos-test-httpd"), "{body}");
    let agent = RunningAgent::start(cfg).await;
    let reg = m.registration().await;
    assert_eq!(reg.id.as_ref().map(|i| i.as_str()), Some("fake-S0"));
    let reported: Vec<_> = reg
        .tasks
        .iter()
        .map(|t| (t.task.task_id.as_str().to_string(), t.state))
        .collect();
    assert_eq!(reported, vec![("d-httpd".to_string(), TaskState::Running)]);
    m.stream_opened().await;

    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "d-httpd".into(),
    })
    .await;
    m.expect_and_ack(TaskState::Killed).await;
    agent.stop().await;
    drop(_cleanup);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Removes this test's containers even when an assertion fails: those labelled with the
/// runtime instance the agent checkpointed in its work dir (unique per test run).
struct ContainerCleanup(std::path::PathBuf);

impl Drop for ContainerCleanup {
    fn drop(&mut self) {
        let Ok(cp) = std::fs::read_to_string(self.0.join("meta/agent.json")) else {
            return;
        };
        let Some(instance) = serde_json::from_str::<serde_json::Value>(&cp)
            .ok()
            .and_then(|v| v["instance"].as_str().map(str::to_string))
        else {
            return;
        };
        let Ok(out) = std::process::Command::new("docker")
            .args([
                "ps",
                "-aq",
                "--filter",
                &format!("label=mesos.instance={instance}"),
            ])
            .output()
        else {
            return;
        };
        for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = std::process::Command::new("docker")
                .args(["rm", "-f", id])
                .output();
        }
    }
}

fn glob_stdout(root: &std::path::Path, task: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "stdout")
                && p.to_string_lossy().contains(&format!("/executors/{task}/"))
            {
                out.push(p);
            }
        }
    }
    out
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

async fn get_with_retries(url: &str) -> String {
    let mut last = String::new();
    for _ in 0..100 {
        match reqwest::get(url).await {
            Ok(r) if r.status().is_success() => return r.text().await.unwrap_or_default(),
            Ok(r) => last = r.status().to_string(),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered: {last}");
}
