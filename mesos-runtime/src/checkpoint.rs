//! Checkpoints: one small JSON file per container, so a restarted agent knows what it launched.
//!
//! Written before `launch` returns and deleted once `wait` has handed the termination out, so a
//! container that vanished while the agent was down still has a record and is reported, not
//! forgotten. Files are written to a temporary name and renamed, so a crash never leaves half a
//! record.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::naming::safe_name;

/// What a runtime needs to find one container again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The task id, verbatim.
    pub task_id: String,
    /// The sandbox on the host.
    pub sandbox: PathBuf,
    /// The supervised process (the task itself, or `lxc-execute`).
    #[serde(default)]
    pub pid: Option<i32>,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    #[serde(default)]
    pub start_time: Option<u64>,
    /// The engine's container name (Docker, LXC).
    #[serde(default)]
    pub name: Option<String>,
    /// The cgroup leaf name, when the container has one of ours.
    #[serde(default)]
    pub cgroup: Option<String>,
    /// The memory limit in bytes, to explain an OOM kill after recovery.
    #[serde(default)]
    pub mem_limit: Option<u64>,
    /// The cpu limit, for usage reports.
    #[serde(default)]
    pub cpus: Option<f64>,
}

/// The checkpoint directory of one runtime.
#[derive(Clone, Debug)]
pub(crate) struct Checkpoints {
    dir: PathBuf,
}

impl Checkpoints {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Checkpoints { dir: dir.into() }
    }

    pub(crate) fn path(&self, task_id: &str) -> PathBuf {
        self.dir.join(format!("{}.json", safe_name(task_id)))
    }

    /// Writes (or replaces) the record atomically.
    pub(crate) fn write(&self, record: &Record) -> Result<PathBuf, RuntimeError> {
        let path = self.path(&record.task_id);
        let err = |source| RuntimeError::Checkpoint {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(err)?;
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| err(e.into()))?;
        std::fs::write(&tmp, bytes).map_err(err)?;
        std::fs::rename(&tmp, &path).map_err(err)?;
        Ok(path)
    }

    /// All records in `dir`. A record that does not parse is logged and kept on disk for an
    /// operator to look at; it is not returned.
    pub(crate) fn read_all(dir: &Path) -> Result<Vec<Record>, RuntimeError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(RuntimeError::Checkpoint {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        let mut records = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| RuntimeError::Checkpoint {
                path: dir.to_path_buf(),
                source,
            })?;
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let parsed = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Record>(&b).map_err(|e| e.to_string()));
            match parsed {
                Ok(r) => records.push(r),
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "unreadable checkpoint; left in place")
                }
            }
        }
        records.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_bad_files_are_skipped() {
        let dir = std::env::temp_dir().join(format!("mesos-rt-ckpt-{}", std::process::id()));
        let cps = Checkpoints::new(&dir);
        let rec = Record {
            task_id: "a/b".into(),
            sandbox: "/tmp/x".into(),
            pid: Some(7),
            start_time: Some(99),
            name: None,
            cgroup: Some("c".into()),
            mem_limit: None,
            cpus: Some(0.5),
        };
        cps.write(&rec).unwrap();
        std::fs::write(dir.join("junk.json"), b"{not json").unwrap();
        assert_eq!(Checkpoints::read_all(&dir).unwrap(), vec![rec]);
        std::fs::remove_file(cps.path("a/b")).unwrap();
        assert!(Checkpoints::read_all(&dir).unwrap().is_empty());
        assert!(dir.join("junk.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(Checkpoints::read_all(&dir).unwrap().is_empty());
    }
}
