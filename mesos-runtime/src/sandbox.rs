//! The task's sandbox directory and the environment every task sees.

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid};

use crate::error::RuntimeError;
use crate::spec::ContainerSpec;

/// Where a container sees its sandbox when the runtime mounts it (Docker, LXC), as in Mesos.
pub const CONTAINER_SANDBOX: &str = "/mnt/mesos/sandbox";

/// The sandbox's output files, created (truncated) before launch.
pub(crate) struct Outputs {
    pub stdout: File,
    pub stderr: File,
}

/// Creates the sandbox and its `stdout`/`stderr` files; hands them to `owner` if given.
pub(crate) fn prepare(sandbox: &Path, owner: Option<(Uid, Gid)>) -> Result<Outputs, RuntimeError> {
    let err = |path: PathBuf| move |source| RuntimeError::Sandbox { path, source };
    std::fs::create_dir_all(sandbox).map_err(err(sandbox.to_path_buf()))?;
    let stdout_path = sandbox.join("stdout");
    let stderr_path = sandbox.join("stderr");
    let stdout = File::create(&stdout_path).map_err(err(stdout_path.clone()))?;
    let stderr = File::create(&stderr_path).map_err(err(stderr_path.clone()))?;
    if let Some((uid, gid)) = owner {
        for p in [sandbox, &stdout_path, &stderr_path] {
            nix::unistd::chown(p, Some(uid), Some(gid)).map_err(|e| RuntimeError::Sandbox {
                path: p.to_path_buf(),
                source: e.into(),
            })?;
        }
    }
    Ok(Outputs { stdout, stderr })
}

/// The environment of a task: `MESOS_SANDBOX` (as the task sees it), `MESOS_DIRECTORY`,
/// `MESOS_TASK_ID`, Marathon's `PORT0..PORTn`, `PORT` and `PORTS`, then the spec's own env,
/// which wins on a clash.
pub(crate) fn task_env(spec: &ContainerSpec, sandbox_inside: &str) -> Vec<(String, String)> {
    let mut env = vec![
        ("MESOS_SANDBOX".to_string(), sandbox_inside.to_string()),
        ("MESOS_DIRECTORY".to_string(), sandbox_inside.to_string()),
        (
            "MESOS_TASK_ID".to_string(),
            spec.task_id.as_str().to_string(),
        ),
    ];
    for (i, p) in spec.host_ports.iter().enumerate() {
        env.push((format!("PORT{i}"), p.to_string()));
    }
    if let Some(p) = spec.host_ports.first() {
        env.push(("PORT".into(), p.to_string()));
        let all: Vec<String> = spec.host_ports.iter().map(|p| p.to_string()).collect();
        env.push(("PORTS".into(), all.join(",")));
    }
    env.retain(|(k, _)| !spec.env.contains_key(k));
    env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_has_mesos_vars_ports_and_spec_overrides() {
        let mut spec = ContainerSpec::shell("t-9", "true", "/s");
        spec.host_ports = vec![31000, 31001];
        spec.env.insert("PORT".into(), "8080".into());
        spec.env.insert("FOO".into(), "bar".into());
        let env = task_env(&spec, "/mnt/mesos/sandbox");
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MESOS_SANDBOX"), Some("/mnt/mesos/sandbox"));
        assert_eq!(get("MESOS_TASK_ID"), Some("t-9"));
        assert_eq!(get("PORT0"), Some("31000"));
        assert_eq!(get("PORT1"), Some("31001"));
        assert_eq!(get("PORTS"), Some("31000,31001"));
        assert_eq!(get("PORT"), Some("8080"));
        assert_eq!(get("FOO"), Some("bar"));
        assert_eq!(env.iter().filter(|(k, _)| k == "PORT").count(), 1);
    }

    #[test]
    fn an_unwritable_sandbox_is_a_typed_error_naming_the_path() {
        let file = std::env::temp_dir().join(format!("mesos-rt-notdir-{}", std::process::id()));
        std::fs::write(&file, b"x").unwrap();
        let Err(err) = prepare(&file.join("sandbox"), None) else {
            panic!("expected an error")
        };
        assert!(matches!(err, RuntimeError::Sandbox { .. }), "{err}");
        assert!(err.to_string().contains("mesos-rt-notdir"), "{err}");
        std::fs::remove_file(&file).unwrap();
    }
}
