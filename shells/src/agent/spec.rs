//! From a v1 `TaskInfo` to the runtime's [`ContainerSpec`]: command, environment, limits, ports,
//! sandbox and the container settings (`TaskInfo.container` in v1 JSON).
//!
//! Container JSON accepted (v1 field names):
//! - absent, or `{"type":"MESOS"}` without an image: a plain process (the `mesos` containerizer);
//! - `{"type":"DOCKER","docker":{"image","network":"BRIDGE|HOST|NONE","port_mappings":[{"host_port",
//!   "container_port","protocol"}],"privileged","parameters":[{"key","value"}],"force_pull_image"},
//!   "volumes":[{"container_path","host_path","mode":"RW|RO"}]}`;
//! - `{"type":"LXC","lxc":{"template":"busybox"} | {"rootfs":"/path"},"network":"NONE|HOST|BRIDGE"}`
//!   (ours: Mesos has no LXC containerizer).

use std::collections::BTreeMap;
use std::path::PathBuf;

use mesos_core::ids::AgentId;
use mesos_core::master::{FrameworkRef, TaskInfo};
use mesos_runtime::{
    CommandSpec, ContainerInfo, ContainerSpec, DockerInfo, Limits, LxcInfo, LxcRootfs, Network,
    PortMapping, Protocol, Volume, VolumeMode,
};
use serde_json::Value as Json;

pub use mesos_core::agent::{executors_dir, sandbox_path};

/// Everything besides the task that goes into the spec.
pub struct SpecContext<'a> {
    /// This agent.
    pub agent_id: &'a AgentId,
    /// The task's framework.
    pub framework: &'a FrameworkRef,
    /// The sandbox on the host.
    pub sandbox: PathBuf,
    /// Whether tasks may run as their framework's user (the agent runs as root).
    pub switch_user: bool,
}

/// Builds the spec of `task`, or says what is wrong with it (the message of its TASK_FAILED).
pub fn task_spec(task: &TaskInfo, ctx: &SpecContext<'_>) -> Result<ContainerSpec, String> {
    if task.executor.is_some() {
        return Err(
            "custom executors are not supported by this agent; use a command task".to_string(),
        );
    }
    let container = container_info(task.container.as_ref())?;
    let command = match &task.command {
        None => None,
        Some(c) if c.is_shell() => match c.value.as_deref() {
            Some(v) if !v.trim().is_empty() => Some(CommandSpec::Shell(v.to_string())),
            _ => None,
        },
        Some(c) => {
            let mut argv = c.arguments.clone();
            match c.value.as_deref() {
                // `value` is the program; `arguments` is argv including argv[0] (as in Mesos).
                Some(v) if !v.is_empty() => {
                    if argv.is_empty() {
                        argv.push(v.to_string());
                    } else {
                        argv[0] = v.to_string();
                    }
                }
                _ => {}
            }
            (!argv.is_empty()).then_some(CommandSpec::Argv(argv))
        }
    };
    if command.is_none() && !matches!(container, ContainerInfo::Docker(_)) {
        return Err(format!(
            "task {} has no command (command.value is required without a docker image)",
            task.task_id
        ));
    }

    let mut env = BTreeMap::new();
    env.insert(
        "MESOS_FRAMEWORK_ID".to_string(),
        ctx.framework.id.as_str().to_string(),
    );
    env.insert(
        "MESOS_AGENT_ID".to_string(),
        ctx.agent_id.as_str().to_string(),
    );
    env.insert(
        "MESOS_SLAVE_ID".to_string(),
        ctx.agent_id.as_str().to_string(),
    );
    env.insert(
        "MESOS_EXECUTOR_ID".to_string(),
        task.task_id.as_str().to_string(),
    );
    if let Some(vars) = task.command.as_ref().and_then(|c| c.environment.as_ref()) {
        for v in &vars.variables {
            env.insert(v.name.clone(), v.value.clone());
        }
    }

    let cpus = task.resources.cpus();
    let mem = task.resources.mem();
    let limits = Limits {
        cpus: (cpus > 0.0).then_some(cpus),
        mem_mb: (mem > 0.0).then_some(mem),
    };
    let host_ports: Vec<u16> = task
        .resources
        .ports()
        .values()
        .map(|p| u16::try_from(p).map_err(|_| format!("port {p} is out of range")))
        .collect::<Result<_, _>>()?;

    let user = if ctx.switch_user {
        task.command
            .as_ref()
            .and_then(|c| c.user.clone())
            .or_else(|| Some(ctx.framework.info.user.clone()))
            .filter(|u| !u.trim().is_empty())
    } else {
        None
    };

    Ok(ContainerSpec {
        task_id: task.task_id.clone(),
        command,
        env,
        limits,
        sandbox: ctx.sandbox.clone(),
        host_ports,
        container,
        user,
        labels: labels(task.labels.as_ref()),
    })
}

/// `{"labels":[{"key","value"}]}` as a map.
fn labels(labels: Option<&Json>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(list) = labels
        .and_then(|l| l.get("labels"))
        .and_then(Json::as_array)
    else {
        return out;
    };
    for l in list {
        if let Some(k) = l.get("key").and_then(Json::as_str) {
            let v = l.get("value").and_then(Json::as_str).unwrap_or("");
            out.insert(k.to_string(), v.to_string());
        }
    }
    out
}

fn str_field<'a>(obj: &'a Json, field: &str, at: &str) -> Result<Option<&'a str>, String> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) => Ok(Some(s)),
        Some(other) => Err(format!("{at}.{field} must be a string, got {other}")),
    }
}

fn bool_field(obj: &Json, field: &str, at: &str) -> Result<bool, String> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(false),
        Some(Json::Bool(b)) => Ok(*b),
        Some(other) => Err(format!("{at}.{field} must be a boolean, got {other}")),
    }
}

fn port_field(obj: &Json, field: &str, at: &str) -> Result<u16, String> {
    match obj.get(field) {
        None | Some(Json::Null) => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| format!("{at}.{field} must be a port number (0-65535), got {v}")),
    }
}

fn network(value: Option<&str>, default: Network, at: &str) -> Result<Network, String> {
    match value {
        None => Ok(default),
        Some("USER") => Err(format!(
            "{at}: USER networks are not supported (use BRIDGE, HOST or NONE)"
        )),
        Some(s) => s.parse().map_err(|e| format!("{at}: {e}")),
    }
}

/// Reads `TaskInfo.container`.
pub fn container_info(container: Option<&Json>) -> Result<ContainerInfo, String> {
    let Some(c) = container else {
        return Ok(ContainerInfo::Mesos);
    };
    if c.is_null() {
        return Ok(ContainerInfo::Mesos);
    }
    if !c.is_object() {
        return Err(format!("container must be an object, got {c}"));
    }
    let kind = str_field(c, "type", "container")?
        .unwrap_or("MESOS")
        .to_ascii_uppercase();
    match kind.as_str() {
        "MESOS" => {
            if c.get("mesos")
                .and_then(|m| m.get("image"))
                .is_some_and(|i| !i.is_null())
            {
                return Err("container.mesos.image: container images for the mesos containerizer are not supported; use type DOCKER".into());
            }
            Ok(ContainerInfo::Mesos)
        }
        "DOCKER" => {
            let Some(d) = c.get("docker").filter(|d| d.is_object()) else {
                return Err("container.docker is required with type DOCKER".into());
            };
            let image = str_field(d, "image", "container.docker")?.unwrap_or("");
            if image.trim().is_empty() {
                return Err("container.docker.image is required".into());
            }
            let mut info = DockerInfo::new(image);
            info.network = network(
                str_field(d, "network", "container.docker")?,
                Network::Host,
                "container.docker.network",
            )?;
            info.privileged = bool_field(d, "privileged", "container.docker")?;
            info.force_pull_image = bool_field(d, "force_pull_image", "container.docker")?;
            if let Some(pms) = d.get("port_mappings").filter(|v| !v.is_null()) {
                let list = pms
                    .as_array()
                    .ok_or("container.docker.port_mappings must be an array")?;
                for (i, pm) in list.iter().enumerate() {
                    let at = format!("container.docker.port_mappings[{i}]");
                    let protocol = match str_field(pm, "protocol", &at)? {
                        None => Protocol::Tcp,
                        Some(p) => p
                            .parse::<Protocol>()
                            .map_err(|e| format!("{at}.protocol: {e}"))?,
                    };
                    info.port_mappings.push(PortMapping {
                        host_port: port_field(pm, "host_port", &at)?,
                        container_port: port_field(pm, "container_port", &at)?,
                        protocol,
                    });
                }
            }
            if let Some(ps) = d.get("parameters").filter(|v| !v.is_null()) {
                let list = ps
                    .as_array()
                    .ok_or("container.docker.parameters must be an array")?;
                for (i, p) in list.iter().enumerate() {
                    let at = format!("container.docker.parameters[{i}]");
                    let key =
                        str_field(p, "key", &at)?.ok_or_else(|| format!("{at}.key is required"))?;
                    let value = str_field(p, "value", &at)?.unwrap_or("");
                    info.parameters.push((key.to_string(), value.to_string()));
                }
            }
            if let Some(vs) = c.get("volumes").filter(|v| !v.is_null()) {
                let list = vs.as_array().ok_or("container.volumes must be an array")?;
                for (i, v) in list.iter().enumerate() {
                    let at = format!("container.volumes[{i}]");
                    let container_path = str_field(v, "container_path", &at)?
                        .ok_or_else(|| format!("{at}.container_path is required"))?;
                    let host_path = str_field(v, "host_path", &at)?.ok_or_else(|| {
                        format!("{at}.host_path is required (image and secret volumes are not supported)")
                    })?;
                    let mode = match str_field(v, "mode", &at)?.map(str::to_ascii_uppercase) {
                        None => VolumeMode::Rw,
                        Some(m) if m == "RW" => VolumeMode::Rw,
                        Some(m) if m == "RO" => VolumeMode::Ro,
                        Some(m) => return Err(format!("{at}.mode `{m}` is not RW or RO")),
                    };
                    info.volumes.push(Volume {
                        container_path: container_path.to_string(),
                        host_path: PathBuf::from(host_path),
                        mode,
                    });
                }
            }
            Ok(ContainerInfo::Docker(info))
        }
        "LXC" => {
            let l = c.get("lxc").cloned().unwrap_or(Json::Null);
            let rootfs = match (
                str_field(&l, "template", "container.lxc")?,
                str_field(&l, "rootfs", "container.lxc")?,
            ) {
                (Some(_), Some(_)) => {
                    return Err("container.lxc: give either template or rootfs, not both".into())
                }
                (Some(t), None) => LxcRootfs::Template(t.to_string()),
                (None, Some(p)) => LxcRootfs::Path(PathBuf::from(p)),
                (None, None) => LxcRootfs::Template("busybox".into()),
            };
            let network = network(
                str_field(&l, "network", "container.lxc")?,
                Network::None,
                "container.lxc.network",
            )?;
            Ok(ContainerInfo::Lxc(LxcInfo { rootfs, network }))
        }
        other => Err(format!(
            "container.type `{other}` is not supported (MESOS, DOCKER or LXC)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesos_core::ids::{FrameworkId, TaskId};
    use mesos_core::master::{CommandInfo, Environment, FrameworkInfo, Variable};
    use mesos_core::resources::Resources;
    use serde_json::json;

    fn task(container: Option<Json>) -> TaskInfo {
        TaskInfo {
            name: "t".into(),
            task_id: TaskId::new("t1"),
            agent_id: AgentId::new("a"),
            resources: Resources::parse("cpus:0.5;mem:64;ports:[31000-31001]").unwrap(),
            command: Some(CommandInfo {
                value: Some("echo $PORT0".into()),
                environment: Some(Environment {
                    variables: vec![Variable {
                        name: "FOO".into(),
                        value: "bar".into(),
                    }],
                }),
                ..Default::default()
            }),
            executor: None,
            container,
            health_check: None,
            kill_policy: None,
            labels: Some(json!({"labels":[{"key":"k","value":"v"}]})),
            discovery: None,
            data: None,
        }
    }

    fn ctx(fw: &FrameworkRef) -> SpecContext<'_> {
        static AGENT: std::sync::OnceLock<AgentId> = std::sync::OnceLock::new();
        SpecContext {
            agent_id: AGENT.get_or_init(|| AgentId::new("a")),
            framework: fw,
            sandbox: PathBuf::from("/tmp/sb"),
            switch_user: false,
        }
    }

    fn fw() -> FrameworkRef {
        FrameworkRef {
            id: FrameworkId::new("f"),
            info: FrameworkInfo {
                user: "nobody".into(),
                ..Default::default()
            },
        }
    }

    #[test]
    fn command_task_gets_env_limits_and_ports() {
        let f = fw();
        let s = task_spec(&task(None), &ctx(&f)).unwrap();
        assert_eq!(s.command, Some(CommandSpec::Shell("echo $PORT0".into())));
        assert_eq!(s.env["FOO"], "bar");
        assert_eq!(s.env["MESOS_FRAMEWORK_ID"], "f");
        assert_eq!(s.env["MESOS_AGENT_ID"], "a");
        assert_eq!(s.host_ports, vec![31000, 31001]);
        assert_eq!(s.limits.cpus, Some(0.5));
        assert_eq!(s.limits.mem_mb, Some(64.0));
        assert_eq!(s.labels["k"], "v");
        assert_eq!(s.container, ContainerInfo::Mesos);
        assert_eq!(s.user, None);
        let mut c = ctx(&f);
        c.switch_user = true;
        assert_eq!(
            task_spec(&task(None), &c).unwrap().user.as_deref(),
            Some("nobody")
        );
    }

    #[test]
    fn argv_commands_use_value_as_program() {
        let f = fw();
        let mut t = task(None);
        t.command = Some(CommandInfo {
            shell: Some(false),
            value: Some("/bin/echo".into()),
            arguments: vec!["echo".into(), "hi".into()],
            ..Default::default()
        });
        let s = task_spec(&t, &ctx(&f)).unwrap();
        assert_eq!(
            s.command,
            Some(CommandSpec::Argv(vec!["/bin/echo".into(), "hi".into()]))
        );
        t.command = None;
        assert!(task_spec(&t, &ctx(&f)).unwrap_err().contains("no command"));
    }

    #[test]
    fn docker_json_is_read_with_v1_names() {
        let c = json!({"type":"DOCKER","docker":{"image":"busybox","network":"BRIDGE",
            "port_mappings":[{"host_port":31000,"container_port":80,"protocol":"tcp"}],
            "parameters":[{"key":"label","value":"a=b"}],"force_pull_image":true},
            "volumes":[{"container_path":"/data","host_path":"/tmp","mode":"RO"}]});
        let ContainerInfo::Docker(d) = container_info(Some(&c)).unwrap() else {
            panic!("expected docker")
        };
        assert_eq!(d.image, "busybox");
        assert_eq!(d.network, Network::Bridge);
        assert_eq!(d.port_mappings[0].host_port, 31000);
        assert_eq!(d.port_mappings[0].container_port, 80);
        assert_eq!(d.parameters, vec![("label".to_string(), "a=b".to_string())]);
        assert!(d.force_pull_image);
        assert_eq!(d.volumes[0].mode, VolumeMode::Ro);
    }

    #[test]
    fn bad_container_specs_say_what_is_wrong() {
        let cases = [
            (json!({"type":"DOCKER"}), "container.docker is required"),
            (
                json!({"type":"DOCKER","docker":{"image":""}}),
                "image is required",
            ),
            (
                json!({"type":"DOCKER","docker":{"image":"x","network":"OVERLAY"}}),
                "OVERLAY",
            ),
            (
                json!({"type":"DOCKER","docker":{"image":"x","port_mappings":[{"host_port":"a"}]}}),
                "port_mappings[0].host_port",
            ),
            (json!({"type":"RKT"}), "`RKT` is not supported"),
            (
                json!({"type":"MESOS","mesos":{"image":{"type":"DOCKER"}}}),
                "mesos.image",
            ),
            (json!("DOCKER"), "must be an object"),
        ];
        for (c, want) in cases {
            let err = container_info(Some(&c)).unwrap_err();
            assert!(err.contains(want), "{c}: {err}");
        }
        assert_eq!(
            container_info(Some(&json!({"type":"MESOS"}))).unwrap(),
            ContainerInfo::Mesos
        );
    }

    #[test]
    fn sandbox_path_is_mesos_layout_and_safe() {
        let f = fw();
        let mut t = task(None);
        t.task_id = TaskId::new("../x/y");
        let p = sandbox_path(std::path::Path::new("/w"), &AgentId::new("a"), &f, &t, "c1");
        assert_eq!(
            p,
            PathBuf::from("/w/slaves/a/frameworks/f/executors/.._x_y/runs/c1")
        );
    }
}
