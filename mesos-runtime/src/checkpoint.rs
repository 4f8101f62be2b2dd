//! Checkpoints, so a restarted agent knows what it launched.
//!
//! A record is written before `launch` returns and dropped once `wait` has handed the
//! termination out, so a container that vanished while the agent was down still has a record
//! and is reported, not forgotten. Two stores:
//!
//! - [`Journal`] (the process and LXC runtimes): one [`LineJournal`] per runtime, one line per
//!   launch (`put`) and per collected container (`del`), rewritten when it has grown to several times what it
//!   describes and removed when nothing is left in it. Launching thousands of tasks then costs
//!   no file (inode) per task: on ext4 without a journal each new inode skips the ones deleted
//!   in the last minutes, reading their inode blocks, so a create-and-delete per task made every
//!   later file creation slower.
//! - [`Checkpoints`] (Docker): one small JSON file per container, written to a temporary name and
//!   renamed, so a crash never leaves half a record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;
use crate::journal::{Damage, Durability, JournalError, LineJournal};
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

/// The journal's file name in its directory.
const JOURNAL_FILE: &str = "journal";

/// A journal is rewritten once it has this many lines more than its live records times four.
const COMPACT_SLACK: usize = 1024;

/// One line of the journal (`launched`/`gone` in journals of earlier versions).
#[derive(Serialize, Deserialize)]
enum Entry {
    /// A container was launched (or adopted at recovery).
    #[serde(rename = "put", alias = "launched")]
    Put(Record),
    /// Its termination was collected: forget it.
    #[serde(rename = "del", alias = "gone")]
    Del(String),
}

/// The launch journal of one runtime, in its checkpoint directory (see the module docs).
///
/// A [`LineJournal`] with [`Durability::Process`] and [`Damage::SkipBadLines`]: lines are
/// appended with one `write` each to a file opened in append mode, so a crash of the agent
/// never tears one; nothing is `fsync`ed (the records survive the agent process, which is what
/// recovery is for, not a power loss); and a line that does not parse (a torn tail after a
/// power loss) is logged and skipped rather than keeping the agent from starting.
pub(crate) struct Journal {
    dir: PathBuf,
    /// `None` until first used: then the file's records (and legacy per-container files) are
    /// loaded, so no append or rewrite can lose what an earlier agent wrote.
    state: Mutex<Option<JournalState>>,
}

struct JournalState {
    file: LineJournal,
    live: BTreeMap<String, Record>,
    /// Lines in the file.
    lines: usize,
}

fn journal_error(e: JournalError) -> RuntimeError {
    match e {
        JournalError::Io { path, source } => RuntimeError::Checkpoint { path, source },
        JournalError::Corrupt { path, reason, .. } => RuntimeError::Checkpoint {
            path,
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
        },
    }
}

fn lock_state(m: &Mutex<Option<JournalState>>) -> MutexGuard<'_, Option<JournalState>> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Journal {
    pub(crate) fn new(dir: impl Into<PathBuf>) -> Self {
        Journal {
            dir: dir.into(),
            state: Mutex::new(None),
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.join(JOURNAL_FILE)
    }

    fn err(&self, path: PathBuf) -> impl Fn(std::io::Error) -> RuntimeError {
        move |source| RuntimeError::Checkpoint {
            path: path.clone(),
            source,
        }
    }

    /// Reads the journal and any per-container files an older agent left (which are folded
    /// into a rewritten journal, then deleted).
    fn load(&self) -> Result<JournalState, RuntimeError> {
        let file = LineJournal::new(self.path(), Durability::Process, Damage::SkipBadLines);
        let mut live = BTreeMap::new();
        let lines = file
            .read(|line| {
                match serde_json::from_slice::<Entry>(line).map_err(|e| e.to_string())? {
                    Entry::Put(r) => {
                        live.insert(r.task_id.clone(), r);
                    }
                    Entry::Del(id) => {
                        live.remove(&id);
                    }
                }
                Ok(())
            })
            .map_err(journal_error)?
            .unwrap_or(0);
        let mut state = JournalState { file, live, lines };
        let legacy = Checkpoints::read_all(&self.dir)?;
        if !legacy.is_empty() {
            for r in legacy.iter().cloned() {
                state.live.entry(r.task_id.clone()).or_insert(r);
            }
            self.rewrite(&mut state)?;
            let files = Checkpoints::new(&self.dir);
            for r in legacy {
                let _ = std::fs::remove_file(files.path(&r.task_id));
            }
        }
        Ok(state)
    }

    /// The loaded state (loading it on first use).
    fn with_state<T>(
        &self,
        f: impl FnOnce(&mut JournalState) -> Result<T, RuntimeError>,
    ) -> Result<T, RuntimeError> {
        let mut guard = lock_state(&self.state);
        if guard.is_none() {
            *guard = Some(self.load()?);
        }
        match guard.as_mut() {
            Some(state) => f(state),
            None => Err(self.err(self.path())(std::io::Error::other(
                "journal not loaded",
            ))),
        }
    }

    fn append(&self, state: &mut JournalState, entry: &Entry) -> Result<(), RuntimeError> {
        let mut line = serde_json::to_vec(entry).map_err(|e| self.err(self.path())(e.into()))?;
        line.push(b'\n');
        state.file.append(&line).map_err(journal_error)?;
        state.lines += 1;
        Ok(())
    }

    /// Replaces the file by one line per live record; with no live record the file is
    /// removed.
    fn rewrite(&self, state: &mut JournalState) -> Result<(), RuntimeError> {
        if state.live.is_empty() {
            state.file.remove().map_err(journal_error)?;
            state.lines = 0;
            return Ok(());
        }
        let err = self.err(self.path());
        let mut bytes = Vec::new();
        for r in state.live.values() {
            // Serialising a borrowed record as `Entry::Put` without cloning it.
            bytes.extend_from_slice(b"{\"put\":");
            serde_json::to_writer(&mut bytes, r).map_err(|e| err(e.into()))?;
            bytes.extend_from_slice(b"}\n");
        }
        state.file.replace(&bytes).map_err(journal_error)?;
        state.lines = state.live.len();
        Ok(())
    }

    /// Records a launched container; on error nothing was recorded.
    pub(crate) fn add(&self, record: &Record) -> Result<(), RuntimeError> {
        self.with_state(|state| {
            self.append(state, &Entry::Put(record.clone()))?;
            state.live.insert(record.task_id.clone(), record.clone());
            Ok(())
        })
    }

    /// Forgets a collected container. Errors are logged: the worst outcome is a record that a
    /// later recovery reports as vanished.
    pub(crate) fn remove(&self, task_id: &str) {
        let result = self.with_state(|state| {
            if state.live.remove(task_id).is_none() {
                return Ok(());
            }
            if state.live.is_empty() || state.lines >= state.live.len() * 4 + COMPACT_SLACK {
                self.rewrite(state)
            } else {
                self.append(state, &Entry::Del(task_id.to_string()))
            }
        });
        if let Err(e) = result {
            tracing::warn!(task = task_id, error = %e, "could not drop the container's checkpoint");
        }
    }

    /// The live records, sorted by task id.
    pub(crate) fn records(&self) -> Result<Vec<Record>, RuntimeError> {
        self.with_state(|state| Ok(state.live.values().cloned().collect()))
    }

    /// The directory it lives in.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    /// An empty directory of this test process under the temp dir.
    fn fresh_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mesos-rt-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn record(id: &str, pid: i32) -> Record {
        Record {
            task_id: id.into(),
            sandbox: format!("/tmp/{id}").into(),
            pid: Some(pid),
            start_time: Some(99),
            name: None,
            cgroup: Some("c".into()),
            mem_limit: Some(1 << 20),
            cpus: Some(0.5),
        }
    }

    #[test]
    fn the_journal_replays_launches_and_gones_and_vanishes_when_empty() {
        let dir = fresh_dir("journal");
        let j = Journal::new(&dir);
        j.add(&record("a/1", 1)).unwrap();
        j.add(&record("b", 2)).unwrap();
        j.add(&record("c", 3)).unwrap();
        j.remove("b");
        j.remove("not-there");
        // A torn last line (a power loss mid-write) is skipped, the rest is kept.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(dir.join(JOURNAL_FILE))
            .unwrap();
        // Lines of an earlier version (`launched`/`gone`) still read.
        let old = serde_json::to_vec(&record("e", 5)).unwrap();
        f.write_all(b"{\"launched\":").unwrap();
        f.write_all(&old).unwrap();
        f.write_all(b"}\n{\"gone\":\"c\"}\n").unwrap();
        f.write_all(b"{\"launched\":{\"task_id\":\"d\"").unwrap();
        drop(f);
        let again = Journal::new(&dir);
        assert_eq!(
            again.records().unwrap(),
            vec![record("a/1", 1), record("e", 5)]
        );
        again.remove("a/1");
        again.remove("e");
        assert!(
            !dir.join(JOURNAL_FILE).exists(),
            "an empty journal leaves no file"
        );
        assert!(Journal::new(&dir).records().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_journal_is_rewritten_when_it_grows_and_keeps_what_is_live() {
        let dir = fresh_dir("jgrow");
        let j = Journal::new(&dir);
        j.add(&record("keep", 7)).unwrap();
        for i in 0..COMPACT_SLACK {
            let id = format!("t{i}");
            j.add(&record(&id, 100)).unwrap();
            j.remove(&id);
        }
        let lines = std::fs::read_to_string(dir.join(JOURNAL_FILE))
            .unwrap()
            .lines()
            .count();
        assert!(lines < COMPACT_SLACK, "{lines} lines: never rewritten");
        assert_eq!(
            Journal::new(&dir).records().unwrap(),
            vec![record("keep", 7)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn per_container_files_of_an_older_agent_are_folded_into_the_journal() {
        let dir = fresh_dir("jlegacy");
        let old = Checkpoints::new(&dir);
        old.write(&record("old", 5)).unwrap();
        let j = Journal::new(&dir);
        j.add(&record("new", 6)).unwrap();
        assert!(!old.path("old").exists(), "the legacy file is folded in");
        assert_eq!(
            Journal::new(&dir).records().unwrap(),
            vec![record("new", 6), record("old", 5)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn records_round_trip_and_bad_files_are_skipped() {
        let dir = fresh_dir("ckpt");
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
