//! ProcessRuntime against the real machine: processes, process groups, cgroups, /proc.

mod common;

use mesos_core::task::{Reason, TaskState};

use std::sync::Arc;
use std::time::Duration;

use common::{checkpoint_files, read, skip, TempDir};
use mesos_core::ids::TaskId;
use mesos_runtime::{
    CommandSpec, ContainerRuntime, ContainerSpec, ExitStatus, ProcessConfig, ProcessRuntime,
    RuntimeError, SpecError, TerminalState, TerminationReason,
};

struct Fixture {
    dir: TempDir,
    config: ProcessConfig,
    runtime: Arc<dyn ContainerRuntime>,
}

fn fixture(tag: &str) -> Fixture {
    let dir = TempDir::new(tag);
    let mut config = ProcessConfig::new(dir.join("checkpoints"));
    config.cgroup_parent = format!("mesos-rs-test-{}-{tag}", std::process::id());
    let runtime = Arc::new(ProcessRuntime::new(config.clone()));
    Fixture {
        dir,
        config,
        runtime,
    }
}

impl Fixture {
    fn spec(&self, task: &str, cmd: &str) -> ContainerSpec {
        ContainerSpec::shell(task, cmd, self.dir.join(&format!("sandboxes/{task}")))
    }

    /// The memory cgroup parent of this fixture, if v1 memory cgroups exist here.
    fn cgroup_parent(&self) -> Option<std::path::PathBuf> {
        let p = self
            .config
            .cgroups_root
            .join("memory")
            .join(&self.config.cgroup_parent);
        p.exists().then_some(p)
    }

    fn leftover_cgroups(&self) -> usize {
        self.cgroup_parent()
            .map(|p| {
                std::fs::read_dir(p)
                    .unwrap()
                    .flatten()
                    .filter(|e| e.path().is_dir())
                    .count()
            })
            .unwrap_or(0)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(p) = self.cgroup_parent() {
            let _ = std::fs::remove_dir(p);
        }
    }
}

fn cgroups_expected() -> bool {
    std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists()
        || std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers")
            .map(|c| c.contains("memory"))
            .unwrap_or(false)
}

fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s[s.rfind(')').unwrap() + 1..].trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

async fn wait_for_file(path: &std::path::Path) -> String {
    for _ in 0..500 {
        let s = read(path);
        if s.ends_with('\n') {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{} never appeared", path.display());
}

#[tokio::test]
async fn exit_zero_is_finished_with_output_in_the_sandbox() {
    let f = fixture("ok");
    let spec = f.spec("ok-1", "echo out; echo err >&2");
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"ok-1".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Finished, "{t:?}");
    assert_eq!(t.status, Some(ExitStatus::Code(0)));
    assert_eq!(t.to_mesos(), (TaskState::Finished, None));
    assert_eq!(read(sandbox.join("stdout")), "out\n");
    assert_eq!(read(sandbox.join("stderr")), "err\n");
    // Collected: forgotten, checkpoint gone, cgroup gone.
    assert!(matches!(
        f.runtime.wait(&"ok-1".into()).await,
        Err(RuntimeError::UnknownContainer(_))
    ));
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
    assert_eq!(f.leftover_cgroups(), 0);
}

#[tokio::test]
async fn exit_three_is_failed_with_the_code_in_the_message() {
    let f = fixture("exit3");
    f.runtime.launch(f.spec("e3", "exit 3")).await.unwrap();
    let t = f.runtime.wait(&"e3".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Failed);
    assert_eq!(t.status, Some(ExitStatus::Code(3)));
    assert!(t.message.contains("status 3"), "{}", t.message);
    assert_eq!(
        t.to_mesos(),
        (TaskState::Failed, Some(Reason::CommandExecutorFailed))
    );
}

#[tokio::test]
async fn argv_commands_run_without_a_shell() {
    let f = fixture("argv");
    let mut spec = f.spec("argv-1", "unused");
    spec.command = Some(CommandSpec::Argv(vec![
        "/bin/echo".into(),
        "a b".into(),
        "$HOME".into(),
    ]));
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    assert_eq!(
        f.runtime.wait(&"argv-1".into()).await.unwrap().state,
        TerminalState::Finished
    );
    assert_eq!(read(sandbox.join("stdout")), "a b $HOME\n");
}

#[tokio::test]
async fn kill_ends_the_whole_process_group_as_killed() {
    let f = fixture("kill");
    // A child in the background and one in the foreground: both must die.
    let spec = f.spec(
        "k1",
        "sleep 1000 & echo $! > bg.pid; echo $$ > sh.pid; sleep 1000",
    );
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    let bg: i32 = wait_for_file(&sandbox.join("bg.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    let sh: i32 = wait_for_file(&sandbox.join("sh.pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(bg) && pid_alive(sh));
    f.runtime
        .kill(&"k1".into(), Duration::from_secs(10))
        .await
        .unwrap();
    let t = f.runtime.wait(&"k1".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Killed, "{t:?}");
    // SIGTERM did it, within the grace period: no SIGKILL was needed.
    assert_eq!(t.status, Some(ExitStatus::Signal(15)), "{t:?}");
    assert_eq!(t.to_mesos(), (TaskState::Killed, None));
    assert!(!pid_alive(bg), "background child {bg} survived the kill");
    assert!(!pid_alive(sh));
    assert_eq!(f.leftover_cgroups(), 0);
}

#[tokio::test]
async fn a_task_ignoring_sigterm_is_sigkilled_after_the_grace_period() {
    let f = fixture("stubborn");
    let spec = f.spec(
        "stubborn-1",
        "trap '' TERM; echo ready > ready; while :; do sleep 1; done",
    );
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    wait_for_file(&sandbox.join("ready")).await;
    f.runtime
        .kill(&"stubborn-1".into(), Duration::from_millis(300))
        .await
        .unwrap();
    let t = f.runtime.wait(&"stubborn-1".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Killed);
    assert_eq!(t.status, Some(ExitStatus::Signal(9)), "{t:?}");
}

#[tokio::test]
async fn a_memory_hog_over_its_limit_fails_with_the_memory_reason() {
    if !cgroups_expected() {
        skip("this host has no memory cgroup controller");
        return;
    }
    let f = fixture("oom");
    let mut spec = f.spec("hog", "tail /dev/zero");
    spec.limits.mem_mb = Some(32.0);
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"hog".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Failed, "{t:?}");
    assert_eq!(t.reason, Some(TerminationReason::MemoryLimit), "{t:?}");
    assert_eq!(
        t.to_mesos(),
        (TaskState::Failed, Some(Reason::ContainerLimitationMemory))
    );
    assert!(
        t.message.contains("Memory limit exceeded: requested 32 MB"),
        "{}",
        t.message
    );
    assert_eq!(f.leftover_cgroups(), 0);
}

#[tokio::test]
async fn limits_are_written_into_the_cgroup_and_usage_is_reported() {
    if !cgroups_expected() {
        skip("this host has no memory cgroup controller");
        return;
    }
    let f = fixture("limits");
    let mut spec = f.spec(
        "lim",
        "cat /proc/self/cgroup > cgroup.txt; echo > ready; sleep 1000",
    );
    spec.limits.mem_mb = Some(64.0);
    spec.limits.cpus = Some(0.5);
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    wait_for_file(&sandbox.join("ready")).await;
    let cgroup = read(sandbox.join("cgroup.txt"));
    assert!(cgroup.contains(&f.config.cgroup_parent), "{cgroup}");
    let parent = f.cgroup_parent().unwrap();
    let leaf = std::fs::read_dir(&parent)
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    assert_eq!(
        read(leaf.join("memory.limit_in_bytes")).trim(),
        (64u64 << 20).to_string()
    );
    let cpu = f
        .config
        .cgroups_root
        .join("cpu")
        .join(&f.config.cgroup_parent)
        .join(leaf.file_name().unwrap());
    if cpu.exists() {
        assert_eq!(read(cpu.join("cpu.shares")).trim(), "512");
    }
    let u = f.runtime.usage(&"lim".into()).await.unwrap();
    assert!(u.mem_bytes > 0, "{u:?}");
    assert_eq!(u.mem_limit_bytes, Some(64 << 20));
    assert_eq!(u.cpus_limit, Some(0.5));
    f.runtime
        .kill(&"lim".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        f.runtime.wait(&"lim".into()).await.unwrap().state,
        TerminalState::Killed
    );
}

#[tokio::test]
async fn env_and_ports_are_visible_inside() {
    let f = fixture("env");
    let mut spec = f.spec("env/1", "env");
    spec.host_ports = vec![31000, 31005];
    spec.env.insert("FOO".into(), "bar baz".into());
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    assert_eq!(
        f.runtime.wait(&"env/1".into()).await.unwrap().state,
        TerminalState::Finished
    );
    let env = read(sandbox.join("stdout"));
    for want in [
        format!("MESOS_SANDBOX={}", sandbox.display()),
        "MESOS_TASK_ID=env/1".to_string(),
        "PORT0=31000".into(),
        "PORT1=31005".into(),
        "PORT=31000".into(),
        "PORTS=31000,31005".into(),
        "FOO=bar baz".into(),
    ] {
        assert!(
            env.lines().any(|l| l == want),
            "{want} missing from:\n{env}"
        );
    }
    // Nothing of the test's own environment leaks in.
    assert!(!env.contains("CARGO"), "{env}");
}

#[tokio::test]
async fn recovery_after_recreating_the_runtime_finds_running_tasks_and_reports_vanished_ones() {
    let f = fixture("recover");
    let keep = f.spec("keep", "echo $$ > pid; sleep 1000");
    let gone = f.spec("gone", "echo $$ > pid; sleep 1000");
    let (keep_sb, gone_sb) = (keep.sandbox.clone(), gone.sandbox.clone());
    let first = ProcessRuntime::new(f.config.clone());
    first.launch(keep).await.unwrap();
    first.launch(gone).await.unwrap();
    let keep_pid: i32 = wait_for_file(&keep_sb.join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    let gone_pid: i32 = wait_for_file(&gone_sb.join("pid"))
        .await
        .trim()
        .parse()
        .unwrap();
    drop(first);

    // "While the agent is down" one task dies.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(gone_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for _ in 0..500 {
        if !pid_alive(gone_pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        pid_alive(keep_pid),
        "dropping the runtime must not kill its tasks"
    );

    // An empty cgroup of a task that ended while nobody watched (and has no checkpoint).
    let stale = f.cgroup_parent().map(|p| p.join("stale-leftover"));
    if let Some(p) = &stale {
        std::fs::create_dir(p).unwrap();
    }

    let mut config = f.config.clone();
    config.stale_cgroup_age = Duration::ZERO;
    let runtime = ProcessRuntime::new(config);
    let mut found = runtime.recover(&f.config.checkpoint_dir).await.unwrap();
    if let Some(p) = &stale {
        assert!(
            !p.exists(),
            "the stale empty cgroup must be swept at recovery"
        );
        assert_eq!(f.leftover_cgroups(), 1, "the running task keeps its cgroup");
    }
    found.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    assert_eq!(found.len(), 2, "{found:?}");
    assert_eq!(found[0].task_id, TaskId::new("gone"));
    let vanished = found[0]
        .terminated
        .clone()
        .expect("gone must be reported terminated");
    assert_eq!(vanished.state, TerminalState::Lost);
    assert_eq!(
        vanished.to_mesos(),
        (TaskState::Lost, Some(Reason::AgentRestarted))
    );
    assert_eq!(runtime.wait(&"gone".into()).await.unwrap(), vanished);
    assert_eq!(found[1].task_id, TaskId::new("keep"));
    assert_eq!(found[1].terminated, None);
    assert_eq!(found[1].sandbox, keep_sb);

    // Recovering twice adopts nothing new.
    assert!(runtime
        .recover(&f.config.checkpoint_dir)
        .await
        .unwrap()
        .is_empty());

    runtime
        .kill(&"keep".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!pid_alive(keep_pid));
    assert_eq!(
        runtime.wait(&"keep".into()).await.unwrap().state,
        TerminalState::Killed
    );
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
    assert_eq!(f.leftover_cgroups(), 0);
}

#[tokio::test]
async fn bad_input_is_a_typed_error_and_leaves_nothing_behind() {
    let f = fixture("bad");
    let err = f.runtime.launch(f.spec("empty", "  ")).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::Spec(SpecError::EmptyCommand { .. })),
        "{err}"
    );

    // A sandbox below a regular file cannot be created.
    std::fs::write(f.dir.join("file"), b"x").unwrap();
    let spec = ContainerSpec::shell("unwritable", "true", f.dir.join("file/sandbox"));
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Sandbox { .. }), "{err}");
    assert!(err.to_string().contains("file/sandbox"), "{err}");

    let mut spec = f.spec("noexec", "x");
    spec.command = Some(CommandSpec::Argv(vec!["/nonexistent/program".into()]));
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/program"), "{err}");

    let mut spec = f.spec("nouser", "true");
    spec.user = Some("no-such-user-here".into());
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::UnknownUser(ref u) if u == "no-such-user-here"),
        "{err}"
    );

    let mut spec = f.spec("docker", "true");
    spec.container = mesos_runtime::ContainerInfo::Docker(mesos_runtime::DockerInfo::new("img"));
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Spec(SpecError::WrongContainerKind { .. })
        ),
        "{err}"
    );

    for id in ["empty", "unwritable", "noexec", "nouser", "docker"] {
        assert!(matches!(
            f.runtime.wait(&id.into()).await,
            Err(RuntimeError::UnknownContainer(_))
        ));
        assert!(matches!(
            f.runtime.kill(&id.into(), Duration::ZERO).await,
            Err(RuntimeError::UnknownContainer(_))
        ));
    }
    assert!(
        checkpoint_files(&f.config.checkpoint_dir).is_empty(),
        "{:?}",
        checkpoint_files(&f.config.checkpoint_dir)
    );
    assert_eq!(f.leftover_cgroups(), 0);
}

#[tokio::test]
async fn a_task_id_cannot_be_launched_twice() {
    let f = fixture("twice");
    f.runtime.launch(f.spec("dup", "sleep 1000")).await.unwrap();
    let err = f.runtime.launch(f.spec("dup", "true")).await.unwrap_err();
    assert!(matches!(err, RuntimeError::AlreadyLaunched(_)), "{err}");
    f.runtime
        .kill(&"dup".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        f.runtime.wait(&"dup".into()).await.unwrap().state,
        TerminalState::Killed
    );
    // Killing after the end is fine, and so is a new launch once collected.
    f.runtime.launch(f.spec("dup", "true")).await.unwrap();
    assert_eq!(
        f.runtime.wait(&"dup".into()).await.unwrap().state,
        TerminalState::Finished
    );
}

#[tokio::test]
async fn tasks_start_with_no_blocked_signals_and_sigpipe_at_its_default() {
    let f = fixture("signals");
    let mut spec = f.spec("sig", "x");
    // Run directly (no shell), so the status is the spawned process's own.
    spec.command = Some(CommandSpec::Argv(vec![
        "cat".into(),
        "/proc/self/status".into(),
    ]));
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"sig".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Finished, "{t:?}");
    let status = read(sandbox.join("stdout"));
    let mask = |name: &str| {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name} missing from {status}"));
        u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
    };
    assert_eq!(mask("SigBlk:"), 0, "{status}");
    assert_eq!(mask("SigIgn:") & (1 << (libc_sigpipe() - 1)), 0, "{status}");
}

fn libc_sigpipe() -> u32 {
    nix::sys::signal::Signal::SIGPIPE as u32
}

#[tokio::test]
async fn a_program_missing_from_path_or_not_executable_is_a_spawn_error() {
    let f = fixture("noexec");
    let mut spec = f.spec("missing", "x");
    spec.command = Some(CommandSpec::Argv(vec!["no-such-program-here".into()]));
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("no-such-program-here"), "{err}");

    let script = f.dir.join("not-executable.sh");
    std::fs::write(&script, b"#!/bin/sh\ntrue\n").unwrap();
    let mut spec = f.spec("noperm", "x");
    spec.command = Some(CommandSpec::Argv(vec![script.display().to_string()]));
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Spawn { .. }), "{err}");
    assert!(err.to_string().contains("executing the program"), "{err}");
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
    assert_eq!(f.leftover_cgroups(), 0);
}

#[tokio::test]
async fn without_cgroups_tasks_still_run() {
    let dir = TempDir::new("nocg");
    let mut config = ProcessConfig::new(dir.join("checkpoints"));
    config.cgroups = false;
    let runtime = ProcessRuntime::new(config);
    let mut spec = ContainerSpec::shell("nocg", "echo $MESOS_TASK_ID; sleep 1000", dir.join("sb"));
    spec.limits.mem_mb = Some(32.0);
    runtime.launch(spec).await.unwrap();
    wait_for_file(&dir.join("sb/stdout")).await;
    let u = runtime.usage(&"nocg".into()).await.unwrap();
    assert!(u.mem_bytes > 0, "{u:?}");
    runtime
        .kill(&"nocg".into(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        runtime.wait(&"nocg".into()).await.unwrap().state,
        TerminalState::Killed
    );
    assert_eq!(read(dir.join("sb/stdout")), "nocg\n");
}

#[tokio::test]
async fn concurrent_waiters_all_get_the_termination() {
    let f = fixture("waiters");
    f.runtime
        .launch(f.spec("w", "sleep 0.2; exit 4"))
        .await
        .unwrap();
    let id = TaskId::new("w");
    let (a, b) = tokio::join!(f.runtime.wait(&id), f.runtime.wait(&id));
    assert_eq!(a.unwrap().status, Some(ExitStatus::Code(4)));
    assert_eq!(b.unwrap().status, Some(ExitStatus::Code(4)));
}

#[tokio::test]
async fn tasks_run_as_the_requested_user_with_a_sandbox_they_own() {
    let f = fixture("user");
    let mut spec = f.spec("as-nobody", "id -u; touch mine");
    spec.user = Some("nobody".into());
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"as-nobody".into()).await.unwrap();
    assert_eq!(
        t.state,
        TerminalState::Finished,
        "{t:?}: {}",
        read(sandbox.join("stderr"))
    );
    let uid = nix::unistd::User::from_name("nobody").unwrap().unwrap().uid;
    assert_eq!(read(sandbox.join("stdout")).trim(), uid.to_string());
    assert!(sandbox.join("mine").exists());
}
