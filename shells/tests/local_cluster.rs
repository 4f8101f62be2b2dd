//! `mesos-local` in process: N agents register with the master, tasks run, and stopping the
//! cluster kills the tasks it started.

#[path = "master_support/mod.rs"]
mod master_support;

use std::time::Duration;

use master_support::*;
use shells::local::{LocalCluster, LocalError, LocalFlags};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_cluster_runs_tasks_and_kills_them_on_stop() {
    let dir = temp_dir("local");
    let mut flags = LocalFlags::for_tests(2, dir.clone());
    flags.agent_resources = vec!["cpus:2;mem:512;disk:100;ports:[31000-31010]".into()];
    flags.allocation_interval = "50ms".into();
    let cluster = LocalCluster::start(flags).await.expect("cluster starts");
    assert_eq!(cluster.agent_addrs.len(), 2);
    assert_ne!(cluster.agent_addrs[0].port(), cluster.agent_addrs[1].port());

    let state: serde_json::Value = reqwest::get(format!("{}/master/state", cluster.master_url()))
        .await
        .expect("state")
        .json()
        .await
        .expect("json");
    assert_eq!(state["activated_slaves"], 2, "both agents registered");
    assert_eq!(state["slaves"][0]["resources"]["cpus"], 2.0);

    let mut sched = Scheduler::subscribe(
        &cluster.master_url(),
        framework_info("local-test", "*", &[]),
    )
    .await;
    let pid_file = dir.join("task.pid");
    let e = sched.wait_for("OFFERS", |e| e["type"] == "OFFERS").await;
    let offer = offers(&e).remove(0);
    sched
        .launch(
            &offer,
            "local-1",
            "cpus:0.1;mem:32",
            &format!("echo $$ > {} && exec sleep 1000", pid_file.display()),
        )
        .await;
    sched
        .wait_for("TASK_RUNNING", |e| {
            e["type"] == "UPDATE" && e["update"]["status"]["state"] == "TASK_RUNNING"
        })
        .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task never wrote its pid"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let proc_dir = std::path::PathBuf::from(format!("/proc/{pid}"));
    assert!(proc_dir.exists(), "the task runs");
    drop(sched);

    cluster.stop().await.expect("cluster stops cleanly");
    let deadline = tokio::time::Instant::now() + WAIT;
    while proc_dir.exists() {
        // A zombie still has a /proc entry; its state letter is Z.
        let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
        if stat.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "task process {pid} survived the cluster's stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn bad_local_flags_are_refused() {
    let dir = temp_dir("local-flags");
    let mut flags = LocalFlags::for_tests(3, dir.clone());
    flags.agent_resources = vec!["cpus:1;mem:128".into(), "cpus:2;mem:256".into()];
    let err = LocalCluster::start(flags).await.err().expect("refused");
    assert!(
        matches!(
            err,
            LocalError::Flag {
                flag: "agent-resources",
                ..
            }
        ),
        "{err}"
    );
    let flags = LocalFlags::for_tests(0, dir.clone());
    let err = LocalCluster::start(flags).await.err().expect("refused");
    assert!(
        matches!(err, LocalError::Flag { flag: "agents", .. }),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
