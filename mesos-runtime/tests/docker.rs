//! DockerRuntime against the test dockerd (`scripts/services.sh start docker`).
//!
//! Gated on `MESOS_TEST_DOCKER=1`; then `DOCKER_HOST`, `MESOS_TEST_BUSYBOX_IMAGE` and
//! `MESOS_TEST_HTTPD_IMAGE` must be set, and any failure to reach the engine fails the test.

mod common;

use mesos_core::task::{Reason, TaskState};

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptions;
use common::{checkpoint_files, free_port, gate, read, TempDir};
use futures::FutureExt;
use mesos_core::ids::TaskId;
use mesos_runtime::docker::LABEL_INSTANCE;
use mesos_runtime::{
    CommandSpec, ContainerInfo, ContainerRuntime, ContainerSpec, DockerConfig, DockerInfo,
    DockerRuntime, ExitStatus, Network, PortMapping, Protocol, RuntimeError, SpecError,
    TerminalState,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Fixture {
    dir: TempDir,
    config: DockerConfig,
    runtime: Arc<DockerRuntime>,
}

fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("MESOS_TEST_DOCKER=1 but {var} is not set"))
}

fn busybox() -> String {
    env("MESOS_TEST_BUSYBOX_IMAGE")
}

fn fixture(tag: &str) -> Option<Fixture> {
    gate("MESOS_TEST_DOCKER")?;
    env("DOCKER_HOST");
    let dir = TempDir::new(&format!("docker-{tag}"));
    let mut config = DockerConfig::new(
        format!("t{}-{tag}", std::process::id()),
        dir.join("checkpoints"),
    );
    config.pull_timeout = Duration::from_secs(30);
    let runtime = Arc::new(DockerRuntime::new(config.clone()));
    Some(Fixture {
        dir,
        config,
        runtime,
    })
}

impl Fixture {
    fn spec(&self, task: &str, image: &str, cmd: Option<&str>) -> ContainerSpec {
        let mut spec = ContainerSpec::shell(task, "", self.dir.join(&format!("sandboxes/{task}")));
        spec.command = cmd.map(|c| CommandSpec::Shell(c.into()));
        spec.container = ContainerInfo::Docker(DockerInfo::new(image));
        spec
    }

    fn docker_info(spec: &mut ContainerSpec) -> &mut DockerInfo {
        match &mut spec.container {
            ContainerInfo::Docker(d) => d,
            _ => unreachable!(),
        }
    }

    /// Containers on the daemon carrying this fixture's instance label.
    async fn containers(&self) -> Vec<String> {
        let docker = bollard::Docker::connect_with_local_defaults().unwrap();
        let mut filters = HashMap::new();
        filters.insert(
            "label".to_string(),
            vec![format!("{LABEL_INSTANCE}={}", self.config.instance)],
        );
        let opts = ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        docker
            .list_containers(Some(opts))
            .await
            .expect("the test dockerd must answer")
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .collect()
    }
}

#[tokio::test]
async fn exit_zero_is_finished_and_output_lands_in_the_sandbox() {
    let Some(f) = fixture("ok") else { return };
    let spec = f.spec("ok", &busybox(), Some("echo out; echo err >&2; pwd"));
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"ok".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Finished, "{t:?}");
    assert_eq!(read(sandbox.join("stdout")), "out\n/mnt/mesos/sandbox\n");
    assert_eq!(read(sandbox.join("stderr")), "err\n");
    assert!(
        f.containers().await.is_empty(),
        "the container must be removed once collected"
    );
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
}

#[tokio::test]
async fn exit_three_is_failed_with_the_code() {
    let Some(f) = fixture("exit3") else { return };
    f.runtime
        .launch(f.spec("e3", &busybox(), Some("exit 3")))
        .await
        .unwrap();
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
async fn kill_stops_the_container_as_killed() {
    let Some(f) = fixture("kill") else { return };
    let spec = f.spec("k", &busybox(), Some("echo up; exec sleep 1000"));
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    for _ in 0..200 {
        if read(sandbox.join("stdout")) == "up\n" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // sleep as PID 1 ignores SIGTERM, so this also exercises the SIGKILL after the grace.
    f.runtime
        .kill(&"k".into(), Duration::from_secs(1))
        .await
        .unwrap();
    let t = f.runtime.wait(&"k".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Killed, "{t:?}");
    assert_eq!(t.to_mesos(), (TaskState::Killed, None));
    assert!(f.containers().await.is_empty());
}

#[tokio::test]
async fn a_memory_hog_fails_with_the_memory_reason() {
    let Some(f) = fixture("oom") else { return };
    let mut spec = f.spec("hog", &busybox(), Some("tail /dev/zero"));
    spec.limits.mem_mb = Some(32.0);
    spec.limits.cpus = Some(0.5);
    f.runtime.launch(spec).await.unwrap();
    let t = f.runtime.wait(&"hog".into()).await.unwrap();
    assert_eq!(t.state, TerminalState::Failed, "{t:?}");
    assert_eq!(
        t.to_mesos(),
        (TaskState::Failed, Some(Reason::ContainerLimitationMemory)),
        "{t:?}"
    );
}

#[tokio::test]
async fn env_ports_and_labels_are_visible() {
    let Some(f) = fixture("env") else { return };
    let mut spec = f.spec("env/1", &busybox(), Some("env; sleep 1000"));
    spec.host_ports = vec![31000, 31001];
    spec.env.insert("FOO".into(), "bar baz".into());
    spec.labels.insert("team".into(), "infra".into());
    Fixture::docker_info(&mut spec)
        .parameters
        .push(("env".into(), "FROM_PARAM=1".into()));
    let sandbox = spec.sandbox.clone();
    f.runtime.launch(spec).await.unwrap();
    let mut out = String::new();
    for _ in 0..300 {
        out = read(sandbox.join("stdout"));
        if out.contains("FROM_PARAM") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for want in [
        "MESOS_SANDBOX=/mnt/mesos/sandbox",
        "MESOS_TASK_ID=env/1",
        "PORT0=31000",
        "PORT1=31001",
        "PORTS=31000,31001",
        "FOO=bar baz",
        "FROM_PARAM=1",
    ] {
        assert!(
            out.lines().any(|l| l == want),
            "{want} missing from:\n{out}"
        );
    }
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    let name = f.runtime.container_name(&"env/1".into());
    let labels = docker
        .inspect_container(&name, None)
        .await
        .unwrap()
        .config
        .unwrap()
        .labels
        .unwrap();
    assert_eq!(labels.get("team").map(String::as_str), Some("infra"));
    assert_eq!(
        labels.get("mesos.task_id").map(String::as_str),
        Some("env/1")
    );
    let usage = f.runtime.usage(&"env/1".into()).await.unwrap();
    assert!(usage.mem_bytes > 0, "{usage:?}");
    f.runtime
        .kill(&"env/1".into(), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        f.runtime.wait(&"env/1".into()).await.unwrap().state,
        TerminalState::Killed
    );
}

async fn http_get(port: u16) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .ok()?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.ok()?;
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[tokio::test]
async fn bridge_port_mapping_serves_the_page_on_the_host_port() {
    let Some(f) = fixture("httpd") else { return };
    let host_port = free_port();
    let mut spec = f.spec("web", &env("MESOS_TEST_HTTPD_IMAGE"), None);
    spec.host_ports = vec![host_port];
    let d = Fixture::docker_info(&mut spec);
    d.network = Network::Bridge;
    d.port_mappings.push(PortMapping {
        container_port: 80,
        host_port,
        protocol: Protocol::Tcp,
    });
    f.runtime.launch(spec).await.unwrap();
    let mut last = None;
    for _ in 0..100 {
        last = http_get(host_port).await;
        if last
            .as_deref()
            .is_some_and(|r| r.contains("mesos-test-httpd"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let reply = last.expect("no HTTP answer on the host port");
    assert!(
        reply.starts_with("HTTP/1.") && reply.contains(" 200 "),
        "{reply}"
    );
    assert!(reply.contains("mesos-test-httpd"), "{reply}");
    f.runtime
        .kill(&"web".into(), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        f.runtime.wait(&"web".into()).await.unwrap().state,
        TerminalState::Killed
    );
    assert!(f.containers().await.is_empty());
}

#[tokio::test]
async fn host_and_none_networks_run() {
    let Some(f) = fixture("nets") else { return };
    let mut host = f.spec("host", &busybox(), Some("ip link | grep -c LOOPBACK"));
    Fixture::docker_info(&mut host).network = Network::Host;
    let mut none = f.spec("none", &busybox(), Some("ip -o link | wc -l"));
    Fixture::docker_info(&mut none).network = Network::None;
    let none_sb = none.sandbox.clone();
    f.runtime.launch(host).await.unwrap();
    f.runtime.launch(none).await.unwrap();
    assert_eq!(
        f.runtime.wait(&"host".into()).await.unwrap().state,
        TerminalState::Finished
    );
    assert_eq!(
        f.runtime.wait(&"none".into()).await.unwrap().state,
        TerminalState::Finished
    );
    assert_eq!(
        read(none_sb.join("stdout")).trim(),
        "1",
        "NONE must have only loopback"
    );
}

#[tokio::test]
async fn recovery_finds_running_containers_by_label_and_reports_removed_ones() {
    let Some(f) = fixture("recover") else { return };
    let first = DockerRuntime::new(f.config.clone());
    first
        .launch(f.spec("keep", &busybox(), Some("echo before; sleep 1000")))
        .await
        .unwrap();
    first
        .launch(f.spec("gone", &busybox(), Some("sleep 1000")))
        .await
        .unwrap();
    first
        .launch(f.spec("done", &busybox(), Some("exit 7")))
        .await
        .unwrap();
    let gone_name = first.container_name(&"gone".into());
    drop(first);
    // While "the agent is down": one container is removed behind our back, one exits.
    let docker = bollard::Docker::connect_with_local_defaults().unwrap();
    docker
        .remove_container(
            &gone_name,
            Some(bollard::query_parameters::RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let done_name = f.runtime.container_name(&"done".into());
    let mut done_wait = docker.wait_container(&done_name, None);
    let _ = futures::StreamExt::next(&mut done_wait).await;

    let mut found = f.runtime.recover(&f.config.checkpoint_dir).await.unwrap();
    found.sort_by(|a, b| a.task_id.cmp(&b.task_id));
    let ids: Vec<&str> = found.iter().map(|r| r.task_id.as_str()).collect();
    assert_eq!(ids, ["done", "gone", "keep"], "{found:?}");
    let done = found[0].terminated.clone().unwrap();
    assert_eq!(done.status, Some(ExitStatus::Code(7)), "{done:?}");
    let gone = found[1].terminated.clone().unwrap();
    assert_eq!(
        gone.to_mesos(),
        (TaskState::Lost, Some(Reason::AgentRestarted))
    );
    assert!(gone.message.contains(&gone_name), "{}", gone.message);
    assert_eq!(found[2].terminated, None);
    assert_eq!(f.runtime.wait(&"done".into()).await.unwrap(), done);
    assert_eq!(f.runtime.wait(&"gone".into()).await.unwrap(), gone);

    // The recovered one is watched again: a wait is pending until the kill.
    let keep = TaskId::new("keep");
    assert!(f.runtime.wait(&keep).now_or_never().is_none());
    f.runtime.kill(&keep, Duration::ZERO).await.unwrap();
    assert_eq!(
        f.runtime.wait(&keep).await.unwrap().state,
        TerminalState::Killed
    );
    assert!(f.containers().await.is_empty());
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
}

#[tokio::test]
async fn bad_input_gives_typed_errors_and_leaks_no_container() {
    let Some(f) = fixture("bad") else { return };
    // A missing image that cannot be pulled (no registry is reachable from the test machine).
    let spec = f.spec("noimage", "mesos-test/does-not-exist:never", Some("true"));
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::ImageUnavailable { .. }),
        "{err}"
    );
    assert!(
        err.to_string().starts_with("image mesos-test/does-not-exist:never is not present locally and could not be pulled: "),
        "{err}"
    );

    let err = f
        .runtime
        .launch(f.spec("empty", &busybox(), Some(" ")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::Spec(SpecError::EmptyCommand { .. })),
        "{err}"
    );

    let err = "MACVLAN".parse::<Network>().unwrap_err();
    assert_eq!(err, SpecError::UnknownNetworkMode("MACVLAN".into()));

    let mut spec = f.spec("param", &busybox(), Some("true"));
    Fixture::docker_info(&mut spec)
        .parameters
        .push(("pid".into(), "host".into()));
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(
        matches!(
            err,
            RuntimeError::Spec(SpecError::UnsupportedDockerParameter { .. })
        ),
        "{err}"
    );

    std::fs::write(f.dir.join("file"), b"x").unwrap();
    let mut spec = f.spec("unwritable", &busybox(), Some("true"));
    spec.sandbox = f.dir.join("file/sandbox");
    let err = f.runtime.launch(spec).await.unwrap_err();
    assert!(matches!(err, RuntimeError::Sandbox { .. }), "{err}");

    // The engine refuses to start (the host port is taken): the created container is removed.
    let taken = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut spec = f.spec("busyport", &busybox(), Some("sleep 1000"));
    Fixture::docker_info(&mut spec)
        .port_mappings
        .push(PortMapping {
            container_port: 80,
            host_port: port,
            protocol: Protocol::Tcp,
        });
    match f.runtime.launch(spec).await {
        Err(RuntimeError::Docker { op: "start", .. }) => {}
        // A daemon with userland proxy off may accept the binding; then clean up.
        Ok(()) => {
            f.runtime
                .kill(&"busyport".into(), Duration::ZERO)
                .await
                .unwrap();
            f.runtime.wait(&"busyport".into()).await.unwrap();
        }
        Err(e) => panic!("unexpected error: {e}"),
    }

    // An unreachable daemon is an error that says where we looked.
    let mut config = f.config.clone();
    config.endpoint = Some("unix:///nonexistent/docker.sock".into());
    let err = DockerRuntime::new(config)
        .launch(f.spec("nodaemon", &busybox(), Some("true")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RuntimeError::DockerUnreachable { .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains("/nonexistent/docker.sock"),
        "{err}"
    );

    assert!(
        f.containers().await.is_empty(),
        "leaked: {:?}",
        f.containers().await
    );
    assert!(checkpoint_files(&f.config.checkpoint_dir).is_empty());
}
