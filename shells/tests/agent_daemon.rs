//! The agent daemon against a fake master speaking the agent <-> master protocol.

mod agent_common;

use std::time::Duration;

use agent_common::*;
use mesos_core::master::AgentCommand;
use mesos_core::task::{Reason, Source, TaskState};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_runs_a_task_and_retries_updates_until_acknowledged() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("run");
    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;

    let reg = m.registration().await;
    assert_eq!(reg.id, None);
    assert_eq!(reg.hostname, "localhost");
    assert_eq!(reg.resources.cpus(), 2.0);
    assert_eq!(reg.resources.ports().count(), 11);
    assert!(reg.attributes.get("rack").is_some());
    assert!(reg.tasks.is_empty());
    assert_eq!(reg.address.ip, "127.0.0.1");
    assert_eq!(
        reg.address.port.to_string(),
        agent.addr.rsplit(':').next().unwrap()
    );
    let id = m.stream_opened().await;
    assert_eq!(id, "fake-S0");

    // PING -> PONG.
    m.command(AgentCommand::Ping).await;
    let pong = tokio::time::timeout(WAIT, m.messages.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(pong, mesos_core::master::AgentMessage::Pong);

    let fw = framework("fw-1");
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: task("t-true", "fake-S0", "true"),
    })
    .await;

    // STARTING is not acknowledged: the very same update (same uuid) comes again, and nothing
    // else comes before it.
    let (f, starting) = m.next_update().await;
    assert_eq!(f, fw.id);
    assert_eq!(starting.state, TaskState::Starting);
    assert_eq!(starting.source, Some(Source::Executor));
    assert_eq!(starting.agent_id.as_ref().unwrap().as_str(), "fake-S0");
    assert_eq!(starting.executor_id.as_ref().unwrap().as_str(), "t-true");
    assert!(starting.timestamp.is_some());
    let (_, again) = m.next_update().await;
    assert_eq!(again.state, TaskState::Starting);
    assert_eq!(again.uuid, starting.uuid, "a retry carries the same uuid");
    m.ack(&fw.id, &starting).await;

    let running = m.expect_and_ack(TaskState::Running).await;
    assert_ne!(running.uuid, starting.uuid);
    let finished = m.expect_and_ack(TaskState::Finished).await;
    assert!(finished.uuid.is_some());

    // Once acknowledged the task is completed in /state.
    let mut done = false;
    for _ in 0..100 {
        let s = agent.state().await;
        if s["frameworks"][0]["completed_tasks"][0]["state"] == "TASK_FINISHED" {
            assert_eq!(s["id"], "fake-S0");
            assert_eq!(s["frameworks"][0]["tasks"], json!([]));
            assert_eq!(s["pending_status_updates"], 0);
            let exec = &s["frameworks"][0]["completed_executors"][0];
            assert_eq!(exec["id"], "t-true");
            let sandbox = std::path::PathBuf::from(exec["directory"].as_str().unwrap());
            assert!(sandbox.starts_with(&dir), "{sandbox:?}");
            assert!(sandbox.join("stdout").exists());
            // The sandbox through upstream's file endpoints.
            let base = format!("http://{}/files", agent.addr);
            let http = reqwest::Client::new();
            let list: serde_json::Value = http
                .get(format!("{base}/browse"))
                .query(&[("path", sandbox.to_str().unwrap())])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let names: Vec<&str> = list
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["path"].as_str().unwrap().rsplit('/').next().unwrap())
                .collect();
            assert!(
                names.contains(&"stdout") && names.contains(&"stderr"),
                "{list}"
            );
            std::fs::write(sandbox.join("stdout"), "0123456789").unwrap();
            let read: serde_json::Value = http
                .get(format!("{base}/read"))
                .query(&[
                    ("path", sandbox.join("stdout").to_str().unwrap()),
                    ("offset", "2"),
                    ("length", "3"),
                ])
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(read, json!({"data": "234", "offset": 2}));
            let outside = http
                .get(format!("{base}/read"))
                .query(&[("path", "/etc/hostname")])
                .send()
                .await
                .unwrap();
            assert_eq!(outside.status(), 403);
            assert!(sandbox
                .to_string_lossy()
                .contains("/slaves/fake-S0/frameworks/fw-1/executors/t-true/runs/"));
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done, "task never completed in /state");

    let metrics: serde_json::Value =
        reqwest::get(format!("http://{}/metrics/snapshot", agent.addr))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(metrics["slave/tasks_finished"], 1.0, "{metrics}");
    assert_eq!(metrics["slave/tasks_running"], 0.0, "{metrics}");
    assert_eq!(metrics["slave/registered"], 1.0, "{metrics}");
    assert_eq!(metrics["slave/cpus_total"], 2.0, "{metrics}");

    let health = reqwest::get(format!("http://{}/health", agent.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let slave = reqwest::get(format!("http://{}/slave(1)/state", agent.addr))
        .await
        .unwrap();
    assert_eq!(slave.status(), 200);

    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_ends_in_killed_and_failures_say_why() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("kill");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.kill_tasks_on_shutdown = true;
    let agent = RunningAgent::start(cfg).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-k");

    let mut t = task("t-sleep", "fake-S0", "sleep 300");
    t.kill_policy = Some(json!({"grace_period": {"nanoseconds": 200_000_000}}));
    launch_running(&mut m, &fw, t).await;
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "t-sleep".into(),
    })
    .await;
    let killed = m.expect_and_ack(TaskState::Killed).await;
    assert_eq!(killed.task_id.as_str(), "t-sleep");

    // Killing a task the agent does not know: TASK_LOST, so the master stops waiting for it.
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "t-nowhere".into(),
    })
    .await;
    let lost = m.expect_and_ack(TaskState::Lost).await;
    assert_eq!(lost.task_id.as_str(), "t-nowhere");
    assert_eq!(lost.reason, Some(Reason::TaskUnknown));
    // ... but not for a task that just ended normally.
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "t-sleep".into(),
    })
    .await;

    // A non-zero exit is FAILED with the status in the message.
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: task("t-exit3", "fake-S0", "exit 3"),
    })
    .await;
    m.expect_and_ack(TaskState::Starting).await;
    m.expect_and_ack(TaskState::Running).await;
    let failed = m.expect_and_ack(TaskState::Failed).await;
    assert_eq!(failed.reason, Some(Reason::CommandExecutorFailed));
    assert!(
        failed.message.as_deref().unwrap_or("").contains('3'),
        "{failed:?}"
    );

    // A bad container spec: TASK_FAILED naming the cause, nothing launched.
    let mut bad = task("t-bad", "fake-S0", "true");
    bad.container =
        Some(json!({"type": "DOCKER", "docker": {"image": "busybox", "network": "OVERLAY"}}));
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: bad,
    })
    .await;
    let failed = m.expect_and_ack(TaskState::Failed).await;
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed));
    assert_eq!(failed.source, Some(Source::Agent));
    let msg = failed.message.unwrap_or_default();
    assert!(msg.contains("OVERLAY"), "{msg}");

    // A valid docker spec on an agent without the docker containerizer.
    let mut docker = task("t-docker", "fake-S0", "true");
    docker.container = Some(json!({"type": "DOCKER", "docker": {"image": "busybox"}}));
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: docker,
    })
    .await;
    let failed = m.expect_and_ack(TaskState::Failed).await;
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed));
    let msg = failed.message.unwrap_or_default();
    assert!(msg.contains("docker containerizer is not enabled"), "{msg}");

    // SHUTDOWN_FRAMEWORK kills its tasks and sends nothing more for them.
    launch_running(&mut m, &fw, task("t-sleep2", "fake-S0", "sleep 300")).await;
    m.command(AgentCommand::ShutdownFramework {
        framework_id: fw.id.clone(),
    })
    .await;
    let mut gone = false;
    for _ in 0..200 {
        let s = agent.state().await;
        let tasks = s["frameworks"]
            .as_array()
            .and_then(|f| f.first())
            .map(|f| f["tasks"].clone());
        if tasks == Some(json!([])) {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the framework's task was not cleaned up");
    // The next thing the master hears is the PONG, not an update of the shut-down framework.
    m.command(AgentCommand::Ping).await;
    let next = tokio::time::timeout(WAIT, m.messages.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next, mesos_core::master::AgentMessage::Pong);

    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_reregisters_with_its_id_and_keeps_running_tasks() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("restart");
    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-r");
    let marker = dir.join("alive");
    let cmd = format!(
        "while true; do date +%s%N > {}; sleep 0.1; done",
        marker.display()
    );
    launch_running(&mut m, &fw, task("t-long", "fake-S0", &cmd)).await;

    // Stop the agent; the task keeps running.
    agent.stop().await;
    let before = std::fs::read_to_string(&marker).unwrap_or_default();
    let mut alive = false;
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if std::fs::read_to_string(&marker).unwrap_or_default() != before {
            alive = true;
            break;
        }
    }
    assert!(alive, "the task stopped with the agent");

    // A new agent on the same work dir reregisters with the same id and the running task.
    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;
    let reg = m.registration().await;
    assert_eq!(reg.id.as_ref().map(|i| i.as_str()), Some("fake-S0"));
    assert_eq!(reg.tasks.len(), 1);
    assert_eq!(reg.tasks[0].task.task_id.as_str(), "t-long");
    assert_eq!(reg.tasks[0].state, TaskState::Running);
    assert_eq!(reg.tasks[0].framework.id, fw.id);
    m.stream_opened().await;
    let s = agent.state().await;
    assert_eq!(s["frameworks"][0]["tasks"][0]["state"], "TASK_RUNNING");

    // It still controls the task.
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "t-long".into(),
    })
    .await;
    m.expect_and_ack(TaskState::Killed).await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_updates_survive_a_restart_and_vanished_tasks_are_reported() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("resume");
    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-v");
    let pidfile = dir.join("victim.pid");
    let cmd = format!("echo $$ > {}; exec sleep 300", pidfile.display());
    launch_running(&mut m, &fw, task("t-victim", "fake-S0", &cmd)).await;
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: task("t-done", "fake-S0", "true"),
    })
    .await;
    m.expect_and_ack(TaskState::Starting).await;
    m.expect_and_ack(TaskState::Running).await;
    // FINISHED arrives but is not acknowledged before the agent stops.
    let (_, finished) = m.next_update().await;
    assert_eq!(finished.state, TaskState::Finished);
    agent.stop().await;

    // The victim dies while the agent is down (by its own pid, nothing broader). RUNNING only
    // says it was started: on a loaded machine its shell may not have written the pid yet.
    let mut pid = String::new();
    for _ in 0..1000 {
        pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
        if pid.ends_with('\n') {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let status = std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());

    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;
    let reg = m.registration().await;
    assert_eq!(reg.id.as_ref().map(|i| i.as_str()), Some("fake-S0"));
    let reported = |id: &str| {
        reg.tasks
            .iter()
            .find(|t| t.task.task_id.as_str() == id)
            .map(|t| t.state)
    };
    assert_eq!(reported("t-done"), Some(TaskState::Finished));
    m.stream_opened().await;

    // The unacknowledged FINISHED is sent again with its uuid; the victim's end is reported.
    let mut seen_finished = false;
    let mut victim = None;
    while !(seen_finished && victim.is_some()) {
        let (f, st) = m.next_fresh_update().await;
        if st.task_id.as_str() == "t-done" {
            assert_eq!(st.uuid, finished.uuid);
            seen_finished = true;
        } else {
            assert_eq!(st.task_id.as_str(), "t-victim");
            victim = Some(st.clone());
        }
        m.ack(&f, &st).await;
    }
    let victim = victim.unwrap();
    assert!(
        matches!(victim.state, TaskState::Failed | TaskState::Lost),
        "{victim:?}"
    );
    assert!(victim.reason.is_some(), "{victim:?}");
    assert!(!victim.message.unwrap_or_default().is_empty());
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_the_master_forgot_registers_again_with_its_id_and_tasks() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("forgot");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.kill_tasks_on_shutdown = true;
    let agent = RunningAgent::start(cfg).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-f");
    launch_running(&mut m, &fw, task("t-f", "fake-S0", "sleep 300")).await;

    m.forget();
    let reg = m.registration().await;
    assert_eq!(reg.id.as_ref().map(|i| i.as_str()), Some("fake-S0"));
    assert_eq!(reg.tasks.len(), 1);
    assert_eq!(reg.tasks[0].state, TaskState::Running);
    m.stream_opened().await;
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "t-f".into(),
    })
    .await;
    m.expect_and_ack(TaskState::Killed).await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_master_makes_the_agent_reconnect_after_the_ping_timeout() {
    let mut m = FakeMaster::start_with_ping_timeout(0.3).await;
    let dir = work_dir("silent");
    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;
    m.registration().await;
    m.stream_opened().await;
    // No PING ever comes: the agent gives up on the stream and opens a new one (no new
    // registration is needed: the master still knows it).
    assert_eq!(m.stream_opened().await, "fake-S0");
    assert!(m.registrations.try_recv().is_err());
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn equal_task_ids_of_two_frameworks_do_not_collide() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("same-id");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.kill_tasks_on_shutdown = true;
    let agent = RunningAgent::start(cfg).await;
    m.registration().await;
    m.stream_opened().await;
    let (a, b) = (framework("fw-a"), framework("fw-b"));
    // The task sees its own id and framework (it exits, i.e. FAILS, otherwise).
    let cmd = |fw: &str| {
        format!(
            "[ \"$MESOS_TASK_ID\" = same ] && [ \"$MESOS_FRAMEWORK_ID\" = {fw} ] && exec sleep 300"
        )
    };
    launch_running(&mut m, &a, task("same", "fake-S0", &cmd("fw-a"))).await;
    launch_running(&mut m, &b, task("same", "fake-S0", &cmd("fw-b"))).await;
    m.command(AgentCommand::KillTask {
        framework_id: a.id.clone(),
        task_id: "same".into(),
    })
    .await;
    let (f, st) = m.next_fresh_update().await;
    assert_eq!((f.as_str(), st.state), ("fw-a", TaskState::Killed));
    m.ack(&f, &st).await;
    // fw-b's task is untouched.
    let s = agent.state().await;
    let b_state = s["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "fw-b")
        .map(|f| f["tasks"][0]["state"].clone());
    assert_eq!(b_state, Some(json!("TASK_RUNNING")), "{s}");
    m.command(AgentCommand::KillTask {
        framework_id: b.id.clone(),
        task_id: "same".into(),
    })
    .await;
    let (f, st) = m.next_fresh_update().await;
    assert_eq!((f.as_str(), st.state), ("fw-b", TaskState::Killed));
    m.ack(&f, &st).await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_retried_until_the_master_comes_up() {
    // A port with nothing listening yet.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = work_dir("late-master");
    let agent = RunningAgent::start(config(&format!("127.0.0.1:{port}"), dir.clone())).await;
    // The agent is up and serving while it has no master.
    let s = agent.state().await;
    assert_eq!(s["registered"], false);
    assert_eq!(s["id"], serde_json::Value::Null);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let mut m = FakeMaster::start_on(listener).await;
    let reg = m.registration().await;
    assert_eq!(reg.id, None);
    m.stream_opened().await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uris_are_fetched_into_the_sandbox_before_launch() {
    // A tiny HTTP server with one script.
    let app = axum::Router::new().route(
        "/tools/hello.sh",
        axum::routing::get(|| async { "#!/bin/sh\necho fetched-and-run\n" }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let files = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    let mut m = FakeMaster::start().await;
    let dir = work_dir("fetch");
    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-u");

    let mut t = task("t-fetch", "fake-S0", "./hello.sh | grep -q fetched-and-run");
    t.command.as_mut().unwrap().uris =
        vec![json!({"value": format!("http://{files}/tools/hello.sh"), "executable": true})];
    launch_running(&mut m, &fw, t).await;
    m.expect_and_ack(TaskState::Finished).await;

    let mut t = task("t-nofetch", "fake-S0", "true");
    t.command.as_mut().unwrap().uris =
        vec![json!({"value": format!("http://{files}/tools/missing.sh")})];
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: t,
    })
    .await;
    m.expect_and_ack(TaskState::Starting).await;
    let failed = m.expect_and_ack(TaskState::Failed).await;
    assert_eq!(failed.reason, Some(Reason::ContainerLaunchFailed));
    let msg = failed.message.unwrap_or_default();
    assert!(
        msg.contains("Failed to fetch") && msg.contains("404"),
        "{msg}"
    );

    agent.stop().await;
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_checks_report_changes_and_kill_unhealthy_tasks() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("health");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.kill_tasks_on_shutdown = true;
    let agent = RunningAgent::start(cfg).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-h");

    // Healthy once the file `ok` exists in the sandbox (failures before that are within the
    // grace period); killed after 2 failures once it is gone.
    let mut t = task("t-health", "fake-S0", "touch ok; exec sleep 300");
    t.health_check = Some(
        json!({"type": "COMMAND", "command": {"value": "test -f ok"},
        "delay_seconds": 0, "interval_seconds": 0.1, "timeout_seconds": 5,
        "grace_period_seconds": 30, "consecutive_failures": 2}),
    );
    launch_running(&mut m, &fw, t).await;
    let healthy = m.expect_and_ack(TaskState::Running).await;
    assert_eq!(healthy.healthy, Some(true), "{healthy:?}");
    assert_eq!(healthy.reason, Some(Reason::TaskHealthCheckStatusUpdated));

    let s = agent.state().await;
    let sandbox = s["frameworks"][0]["executors"][0]["directory"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::remove_file(std::path::Path::new(&sandbox).join("ok")).unwrap();
    let unhealthy = m.expect_and_ack(TaskState::Running).await;
    assert_eq!(unhealthy.healthy, Some(false), "{unhealthy:?}");
    assert!(
        unhealthy
            .message
            .as_deref()
            .unwrap_or("")
            .contains("test -f ok"),
        "{unhealthy:?}"
    );
    let killed = m.expect_and_ack(TaskState::Killed).await;
    assert_eq!(killed.healthy, Some(false));
    let msg = killed.message.unwrap_or_default();
    assert!(msg.contains("consecutive failed health checks"), "{msg}");

    // A check that cannot run where the task runs fails the launch with the reason.
    let mut t = task("t-badcheck", "fake-S0", "sleep 300");
    t.health_check = Some(json!({"type": "HTTP", "http": {"port": 80, "scheme": "https"}}));
    m.command(AgentCommand::RunTask {
        framework: fw.clone(),
        task: t,
    })
    .await;
    let failed = m.expect_and_ack(TaskState::Failed).await;
    assert!(
        failed.message.as_deref().unwrap_or("").contains("https"),
        "{failed:?}"
    );

    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_sandboxes_are_removed_after_the_gc_delay_and_live_ones_kept() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("gc");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.gc_delay = Duration::from_millis(300);
    let agent = RunningAgent::start(cfg.clone()).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-gc");
    launch_running(&mut m, &fw, task("t-live", "fake-S0", "sleep 300")).await;
    launch_running(&mut m, &fw, task("t-done", "fake-S0", "true")).await;
    m.expect_and_ack(TaskState::Finished).await;

    let executors = dir.join("slaves/fake-S0/frameworks/fw-gc/executors");
    let mut gone = false;
    for _ in 0..300 {
        if !executors.join("t-done").exists() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the finished task's sandbox was not removed");
    assert!(executors.join("t-live").exists());

    // A restart scans old sandboxes: the running task's is kept.
    agent.stop().await;
    let agent = RunningAgent::start(cfg).await;
    m.registration().await;
    m.stream_opened().await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        executors.join("t-live").exists(),
        "a live sandbox was removed"
    );
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "t-live".into(),
    })
    .await;
    m.expect_and_ack(TaskState::Killed).await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_registration_stops_the_agent_with_the_masters_reason() {
    let m = FakeMaster::start().await;
    let dir = work_dir("refused");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.hostname = Some("refuse-me".into());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let err = tokio::time::timeout(WAIT, shells::agent::run(cfg, listener, rx))
        .await
        .expect("the agent kept retrying an invalid registration")
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("refused") && msg.contains("hostname refuse-me"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_and_their_unacknowledged_updates_survive_a_restart() {
    use std::collections::BTreeMap;

    let mut m = FakeMaster::start().await;
    let dir = work_dir("many");
    let agent = RunningAgent::start(config(&m.addr, dir.clone())).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-many");
    const N: usize = 20;
    for i in 0..N {
        for (name, cmd) in [("long", "exec sleep 300"), ("short", "true")] {
            let mut t = task(&format!("{name}-{i}"), "fake-S0", cmd);
            t.resources = mesos_core::resources::Resources::parse("cpus:0.01;mem:4").unwrap();
            m.command(AgentCommand::RunTask {
                framework: fw.clone(),
                task: t,
            })
            .await;
        }
    }
    // Acknowledge everything but the RUNNING of long-10.. and the FINISHED of short-10..
    let index = |id: &str| id.rsplit('-').next().unwrap().parse::<usize>().unwrap();
    let mut unacked = BTreeMap::new();
    let (mut running, mut finished) = (0, 0);
    while running < N || finished < N {
        let (f, st) = m.next_fresh_update().await;
        let id = st.task_id.as_str().to_string();
        let keep = match st.state {
            TaskState::Starting => false,
            TaskState::Running if id.starts_with("long-") => {
                running += 1;
                index(&id) >= N / 2
            }
            TaskState::Running => false,
            TaskState::Finished => {
                finished += 1;
                index(&id) >= N / 2
            }
            other => panic!("unexpected {other} for {id}: {st:?}"),
        };
        if keep {
            unacked.insert(id, st);
        } else {
            m.ack(&f, &st).await;
        }
    }
    // An update for a task the agent does not know (a stream without a task), unacknowledged.
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "ghost".into(),
    })
    .await;
    let (_, ghost) = m.next_fresh_update().await;
    assert_eq!(ghost.task_id.as_str(), "ghost");
    unacked.insert("ghost".into(), ghost);
    agent.stop().await;

    let mut cfg = config(&m.addr, dir.clone());
    cfg.kill_tasks_on_shutdown = true;
    let agent = RunningAgent::start(cfg).await;
    let reg = m.registration().await;
    assert_eq!(reg.id.as_ref().map(|i| i.as_str()), Some("fake-S0"));
    let mut reported: Vec<(String, TaskState)> = reg
        .tasks
        .iter()
        .map(|t| (t.task.task_id.as_str().to_string(), t.state))
        .collect();
    reported.sort();
    let mut expected: Vec<(String, TaskState)> = (0..N)
        .map(|i| (format!("long-{i}"), TaskState::Running))
        .chain((N / 2..N).map(|i| (format!("short-{i}"), TaskState::Finished)))
        .collect();
    expected.sort();
    assert_eq!(reported, expected);
    m.stream_opened().await;

    // Every unacknowledged update comes again with its uuid, and nothing else comes.
    while !unacked.is_empty() {
        let (f, st) = m.next_fresh_update().await;
        let id = st.task_id.as_str();
        let before = unacked
            .remove(id)
            .unwrap_or_else(|| panic!("unexpected update after the restart: {st:?}"));
        assert_eq!((st.state, st.uuid), (before.state, before.uuid), "{id}");
        m.ack(&f, &st).await;
    }
    let s = agent.state().await;
    let running = s["frameworks"][0]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "TASK_RUNNING")
        .count();
    assert_eq!(running, N);
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posix_isolation_runs_tasks_without_a_cgroup_of_their_own() {
    let mut m = FakeMaster::start().await;
    let dir = work_dir("posix");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.isolation = "posix/cpu,posix/mem".into();
    cfg.kill_tasks_on_shutdown = true;
    let agent = RunningAgent::start(cfg).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-posix");
    let pidfile = dir.join("posix.pid");
    let cmd = format!("echo $$ > {}; exec sleep 300", pidfile.display());
    launch_running(&mut m, &fw, task("t-posix", "fake-S0", &cmd)).await;
    let mut pid = String::new();
    for _ in 0..100 {
        pid = std::fs::read_to_string(&pidfile).unwrap_or_default();
        if !pid.trim().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", pid.trim())).unwrap();
    assert!(!cgroups.contains("mesos-rs"), "{cgroups}");
    m.command(AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "t-posix".into(),
    })
    .await;
    m.expect_and_ack(TaskState::Killed).await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
