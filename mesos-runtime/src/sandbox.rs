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

/// ext4's "top of a directory hierarchy" inode flag (`chattr +T`, `FS_TOPDIR_FL`).
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Tells the file system that the subdirectories of `dir` are unrelated to each other, so that
/// it may place each one where it likes best (ext2/3/4's Orlov allocator then puts each new
/// subdirectory, and the files created in it, in a lightly used block group instead of next to
/// its siblings).
///
/// The agent sets it on each framework's `executors` directory: every task's sandbox starts
/// there. On ext4 without a journal, a new inode skips every inode of its block group deleted in
/// the last minutes, reading each one's inode block; a block group where thousands of sandboxes
/// were just removed then makes each new sandbox directory and file cost a scan of them
/// (measured here: about 1 ms for a sandbox's 3 directories and 2 files, 0.1-0.3 ms with the
/// flag). A no-op error on file systems without the flag, which callers may ignore.
#[allow(unsafe_code)]
pub fn spread_subdirectories(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let d = File::open(dir)?;
    let mut flags: libc::c_int = 0;
    // SAFETY: FS_IOC_GETFLAGS writes one int through the pointer, which points to `flags`; the
    // descriptor is open for the duration of the call.
    if unsafe { libc::ioctl(d.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    if flags & FS_TOPDIR_FL != 0 {
        return Ok(());
    }
    flags |= FS_TOPDIR_FL;
    // SAFETY: FS_IOC_SETFLAGS reads one int through the pointer, which points to `flags`.
    if unsafe { libc::ioctl(d.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
    fn spreading_subdirectories_is_idempotent_or_unsupported() {
        let dir = std::env::temp_dir().join(format!("mesos-rt-spread-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        match spread_subdirectories(&dir) {
            Ok(()) => {
                spread_subdirectories(&dir).unwrap();
                // What `chattr +T` would show, where e2fsprogs is installed.
                if let Ok(out) = std::process::Command::new("lsattr")
                    .arg("-d")
                    .arg(&dir)
                    .output()
                {
                    let text = String::from_utf8_lossy(&out.stdout);
                    let attrs = text.split_whitespace().next().unwrap_or_default();
                    assert!(attrs.contains('T'), "{text}");
                }
            }
            // tmpfs and others have no such flag.
            Err(e) => assert!(
                matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTTY | libc::EOPNOTSUPP | libc::EINVAL)
                ),
                "{e}"
            ),
        }
        assert!(spread_subdirectories(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
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
