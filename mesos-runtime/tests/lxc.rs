//! LxcRuntime against the real `lxc-*` tools. Gated on `MESOS_TEST_LXC=1`.

mod common;

use mesos_core::task::{Reason, TaskState};

use std::sync::Arc;
use std::time::Duration;

use common::{checkpoint_files, gate, read, TempDir};
use mesos_runtime::{
    ContainerInfo, ContainerRuntime, ContainerSpec, ExitStatus, LxcConfig, LxcInfo, LxcRootfs,
    LxcRuntime, RuntimeError, SpecError, TerminalState,
};

struct Fixture {
    dir: TempDir,
    config: LxcConfig,
    runtime: Arc<LxcRuntime>,
}

fn fixture(tag: &str) -> Option<Fixture> {
    gate("MESOS_TEST_LXC")?;
    let dir = TempDir::new(&format!("lxc-{tag}"));
    let mut config = LxcConfig::new(
        format!("t{}-{tag}", std::process::id()),
        dir.join("checkpoints"),
    );
    config.cgroup_parent = format!("mesos-rs-lxctest-{}-{tag}", std::process::id());
    let runtime = Arc::new(LxcRuntime::new(config.clone()));
    Some(Fixture {
        dir,
        config,
        runtime,
    })
}

impl Fixture {
    fn spec(&self, task: &str, cmd: &str) -> ContainerSpec {
        let mut spec = ContainerSpec::shell(task, cmd, self.dir.join(&format!("sandboxes/{task}")));
        spec.container = ContainerInfo::Lxc(LxcInfo::busybox());
        spec
    }

    /// Running LXC containers of this fixture.
    fn active(&self) -> Vec<String> {
        let out = std::process::Command::new("lxc-ls")
            .args(["--active", "-1"])
            .output()
            .unwrap();
        let prefix = format!("mesos-{}-", self.config.instance);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.starts_with(&prefix))
            .map(String::from)
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // LXC creates our parent in every hierarchy (pids, freezer, …), not only ours.
        for h in std::fs::read_dir(&self.config.cgroups_root)
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(h.path().join(&self.config.cgroup_parent));
        }
    }
}

async fn wait_for(path: &std::path::Path, what: &str) -> String {
    for _ in 0..500 {
        let s = read(path);
        if s.contains(what) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "{what:?} never appeared in {}: {:?}",
        path.display(),
        read(path)
    );
}

#[tokio::test]
async fn exit_codes_map_to_finished_and_failed() {
    let Some(f) = fixture("exit") else { return };
    let ok = f.spec("ok", "echo hello; hostname");
    let ok_sb = ok.sandbox.clone();
    f.runtime.launch(ok).await.unwrap();
    f.runtime.launch(f.spec("e3", "exit 3")).await.unwrap();
    let t = f.runtime.wait(&"ok".into()).await.unwrap();
    assert_eq!(
        t.state,
        TerminalState::Finished,
        "{t:?} stderr: {}",
        read(ok_sb.join("stderr"))
    );
    assert!(
        read(ok_sb.join("stdout")).starts_with("hello\nmesos-"),
        "{}",
        read(ok_sb.join("stdout"))
    );
    let t = f.runtime.wait(&"e3".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Failed);
    assert_eq!(t.status, Some(ExitStatus::Code(3)));
    assert!(t.message.contains("status 3"), "{}", t.message);
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
}

#[tokio::test]
async fn kill_ends_the_container_as_killed() {
    let Some(f) = fixture("kill") else { return };
    let spec = f.spec("k", "echo up; sleep 1000");
    let sb = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    wait_for(&sb.join("stdout"), "up").await;
    assert_eq!(f.active().len(), 1);
    f.runtime
        .kill(&"k".into(), Duration::from_secs(5))
        .await
        .unwrap();
    let t = f.runtime.wait(&"k".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Killed, "{t:?}");
    assert_eq!(t.to_mesos(), (TaskState::Killed, None));
    assert!(f.active().is_empty(), "{:?}", f.active());
}

#[tokio::test]
async fn env_ports_and_the_sandbox_are_visible_inside() {
    let Some(f) = fixture("env") else { return };
    let mut spec = f.spec(
        "env",
        "env; echo inside > $MESOS_SANDBOX/marker; ip -o link | wc -l",
    );
    spec.host_ports = vec![31000, 31002];
    spec.env.insert("FOO".into(), "bar baz".into());
    let sb = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"env".into()).await.unwrap();
    assert_eq!(
        t.state,
        TerminalState::Finished,
        "{t:?}: {}",
        read(sb.join("stderr"))
    );
    let out = read(sb.join("stdout"));
    for want in [
        "MESOS_SANDBOX=/mnt/mesos/sandbox",
        "MESOS_TASK_ID=env",
        "PORT0=31000",
        "PORTS=31000,31002",
        "FOO=bar baz",
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "{want} missing from:\n{out}"
        );
    }
    // lxc.net.0.type = empty: only the loopback device.
    assert_eq!(out.lines().last(), Some("1"), "{out}");
    assert_eq!(read(sb.join("marker")), "inside\n");
}

#[tokio::test]
async fn a_memory_hog_fails_with_the_memory_reason() {
    let Some(f) = fixture("oom") else { return };
    let mut spec = f.spec("hog", "tail /dev/zero");
    spec.limits.mem_mb = Some(32.0);
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"hog".into()).await.unwrap();
    assert_eq!(
        t.to_mesos(),
        (TaskState::Failed, Some(Reason::ContainerLimitationMemory)),
        "{t:?}"
    );
}

#[tokio::test]
async fn recovery_finds_running_containers_by_name() {
    let Some(f) = fixture("recover") else { return };
    let first = LxcRuntime::new(f.config.clone());
    let spec = f.spec("keep", "echo up; sleep 1000");
    let sb = spec.sandbox.clone();
    first.launch(spec).await.unwrap();
    wait_for(&sb.join("stdout"), "up").await;
    drop(first);
    let found = f.runtime.recover(&f.config.checkpoint_dir).await.unwrap();
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].task_id.as_str(), "keep");
    assert_eq!(found[0].terminated, None);
    f.runtime
        .kill(&"keep".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        f.runtime.wait(&"keep".into()).await.unwrap().state,
        TerminalState::Killed
    );
    assert!(f.active().is_empty());
}

#[tokio::test]
async fn bad_input_gives_typed_errors_and_leaks_nothing() {
    let Some(f) = fixture("bad") else { return };
    let err = f.runtime.launch(f.spec("empty", "")).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::Spec(SpecError::EmptyCommand { .. })),
        "{err}"
    );

    let mut spec = f.spec("norootfs", "true");
    spec.container = ContainerInfo::Lxc(LxcInfo {
        rootfs: LxcRootfs::Path(f.dir.join("no-such-rootfs")),
        network: mesos_runtime::Network::None,
    });
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Lxc { .. }), "{err}");
    assert!(err.to_string().contains("no-such-rootfs"), "{err}");

    std::fs::write(f.dir.join("file"), b"x").unwrap();
    let mut spec = f.spec("unwritable", "true");
    spec.sandbox = f.dir.join("file/sandbox");
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Sandbox { .. }), "{err}");

    let mut spec = f.spec("newline", "true");
    spec.env
        .insert("BAD".into(), "a\nlxc.rootfs.path = dir:/".into());
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::Spec(SpecError::BadEnvValue { .. })),
        "{err}"
    );

    assert!(f.active().is_empty());
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
}
