//! The agent's LXC containerizer. Gated on `MESOS_TEST_LXC=1` (set by `scripts/test` when a
//! busybox container can be created and started here).

mod agent_common;

use agent_common::*;
use mesos_core::task::TaskState;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lxc_tasks_run_in_a_busybox_container_and_can_be_killed() {
    if std::env::var("MESOS_TEST_LXC").ok().as_deref() != Some("1") {
        assert!(
            std::env::var("MESOS_TEST_STRICT").is_err(),
            "MESOS_TEST_STRICT is set but MESOS_TEST_LXC is not"
        );
        eprintln!("skipped: MESOS_TEST_LXC is not set");
        return;
    }
    let mut m = FakeMaster::start().await;
    let dir = work_dir("lxc");
    let mut cfg = config(&m.addr, dir.clone());
    cfg.containerizers = "mesos,lxc".into();
    cfg.kill_tasks_on_shutdown = true;
    let agent = RunningAgent::start(cfg).await;
    m.registration().await;
    m.stream_opened().await;
    let fw = framework("fw-l");

    let mut t = task(
        "l-echo",
        "fake-S0",
        "echo hello-from-lxc; test -d /mnt/mesos/sandbox",
    );
    t.container = Some(json!({"type": "LXC", "lxc": {"template": "busybox"}}));
    launch_running(&mut m, &fw, t).await;
    let done = m.expect_and_ack(TaskState::Finished).await;
    assert_eq!(done.task_id.as_str(), "l-echo");

    let mut t = task("l-sleep", "fake-S0", "sleep 300");
    t.container = Some(json!({"type": "LXC", "lxc": {"template": "busybox", "network": "NONE"}}));
    launch_running(&mut m, &fw, t).await;
    m.command(mesos_core::master::AgentCommand::KillTask {
        framework_id: fw.id.clone(),
        task_id: "l-sleep".into(),
    })
    .await;
    m.expect_and_ack(TaskState::Killed).await;
    agent.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
