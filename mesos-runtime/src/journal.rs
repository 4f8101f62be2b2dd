//! One append-only line journal, the file under both of the agent's checkpoints: the
//! runtimes' launch journal and the agent's task journal. Each line is one change (a `put` of
//! a record or a `del` of a key, in whatever JSON the owner chooses); reading folds the lines in
//! order, and the owner replaces the file with a snapshot (one `put` per live record) when it
//! has grown well past what it describes.
//!
//! What a journal promises is explicit, set by its owner:
//! - [`Durability`]: whether an append and a snapshot reach the disk before they return
//!   ([`Durability::Fsync`]: the agent's task journal, whose updates are only forwarded once on
//!   disk) or only the kernel ([`Durability::Process`]: the runtimes' journal, which must outlive
//!   the agent process, not a power loss).
//! - [`Damage`]: what a line that does not parse means. A crash in the middle of an append can
//!   only tear the *last* line, so [`Damage::TornTail`] ignores a bad last line and refuses a bad
//!   line anywhere else as corruption; [`Damage::SkipBadLines`] logs and skips every bad line.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Whether writes reach the disk before they return (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Written to the kernel only: survives the process, not a power loss. No fsync.
    Process,
    /// Each append ends in an `fdatasync`; a snapshot is written to a temporary file, fsynced,
    /// renamed, and the directory fsynced.
    Fsync,
}

/// What a line that does not parse means (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// Only the last line may be bad (a torn append): it is ignored. A bad line before it is
    /// corruption: reading fails.
    TornTail,
    /// Bad lines are logged and skipped wherever they are.
    SkipBadLines,
}

/// A journal that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The file could not be read or written.
    #[error("journal {path:?}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A line other than the last does not parse (under [`Damage::TornTail`]).
    #[error("journal {path:?} is corrupt at line {line}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The line number (from 1).
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// An append-only line journal in one file (see the module docs).
#[derive(Debug)]
pub struct LineJournal {
    path: PathBuf,
    durability: Durability,
    damage: Damage,
    /// The append handle, opened on the first append after a replace.
    file: Option<File>,
}

impl LineJournal {
    /// The journal in `path` with its policies. Nothing is opened yet.
    pub fn new(path: impl Into<PathBuf>, durability: Durability, damage: Damage) -> Self {
        LineJournal {
            path: path.into(),
            durability,
            damage,
            file: None,
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self) -> impl Fn(std::io::Error) -> JournalError + '_ {
        move |source| JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Hands every line (without its newline, empty lines left out) to `apply`, in order, and
    /// returns how many it took; `None` when the file does not exist. A line `apply` refuses
    /// is handled as the [`Damage`] policy says.
    pub fn read(
        &self,
        mut apply: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<Option<usize>, JournalError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.io()(e)),
        };
        let mut taken = 0;
        let lines: Vec<&[u8]> = bytes.split(|b| *b == b'\n').collect();
        let last_line = lines.iter().rposition(|l| !l.is_empty());
        for (n, line) in lines.iter().enumerate() {
            if line.is_empty() {
                continue;
            }
            let Err(reason) = apply(line) else {
                taken += 1;
                continue;
            };
            let last = Some(n) == last_line;
            match self.damage {
                Damage::SkipBadLines => {
                    tracing::error!(path = %self.path.display(), line = n + 1, error = %reason,
                        "unreadable journal line; skipped");
                }
                // A crash in the middle of an append leaves a partial last line: what it was
                // about to record is lost, as if the crash came a moment earlier.
                Damage::TornTail if last => {
                    tracing::warn!(path = %self.path.display(), line = n + 1, error = %reason,
                        "ignoring a torn last line of the journal");
                }
                Damage::TornTail => {
                    return Err(JournalError::Corrupt {
                        path: self.path.clone(),
                        line: n + 1,
                        reason,
                    })
                }
            }
        }
        Ok(Some(taken))
    }

    /// Appends `lines` (whole lines, each ending in `\n`) with one write.
    pub fn append(&mut self, lines: &[u8]) -> Result<(), JournalError> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir).map_err(self.io())?;
            }
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
                .map_err(self.io())?;
            self.file = Some(f);
        }
        let durability = self.durability;
        let Some(f) = self.file.as_mut() else {
            return Ok(());
        };
        let result = f.write_all(lines).and_then(|()| match durability {
            Durability::Fsync => f.sync_data(),
            Durability::Process => Ok(()),
        });
        if result.is_err() {
            // Reopened on the next append: the handle may be past a partial write.
            self.file = None;
        }
        result.map_err(self.io())
    }

    /// Replaces the whole journal with `lines` (a snapshot): a temporary file renamed over it,
    /// so a crash leaves either the old journal or the new one.
    pub fn replace(&mut self, lines: &[u8]) -> Result<(), JournalError> {
        self.file = None;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(self.io())?;
        let mut tmp = self.path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        {
            let mut f = File::create(&tmp).map_err(self.io())?;
            f.write_all(lines).map_err(self.io())?;
            if self.durability == Durability::Fsync {
                f.sync_all().map_err(self.io())?;
            }
        }
        std::fs::rename(&tmp, &self.path).map_err(self.io())?;
        if self.durability == Durability::Fsync {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    }

    /// Removes the journal (nothing is left in it); a missing file is fine.
    pub fn remove(&mut self) -> Result<(), JournalError> {
        self.file = None;
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io()(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("mesos-lj-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir.join("j")
    }

    /// Lines are JSON numbers here; `read` collects them.
    fn numbers(j: &LineJournal) -> Result<Option<Vec<u64>>, JournalError> {
        let mut out = Vec::new();
        let n = j.read(|l| {
            let v = serde_json::from_slice::<u64>(l).map_err(|e| e.to_string())?;
            out.push(v);
            Ok(())
        })?;
        Ok(n.map(|_| out))
    }

    #[test]
    fn appends_and_snapshots_read_back_in_order() {
        for durability in [Durability::Process, Durability::Fsync] {
            let p = fresh(&format!("rw{durability:?}"));
            let mut j = LineJournal::new(&p, durability, Damage::TornTail);
            assert!(numbers(&j).unwrap().is_none());
            j.append(b"1\n2\n").unwrap();
            j.append(b"3\n").unwrap();
            assert_eq!(numbers(&j).unwrap(), Some(vec![1, 2, 3]));
            j.replace(b"7\n").unwrap();
            j.append(b"8\n").unwrap();
            assert_eq!(numbers(&j).unwrap(), Some(vec![7, 8]));
            j.remove().unwrap();
            j.remove().unwrap();
            assert!(numbers(&j).unwrap().is_none());
            let _ = std::fs::remove_dir_all(p.parent().unwrap());
        }
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_corrupt_middle_line_refused() {
        let p = fresh("torn");
        let mut j = LineJournal::new(&p, Durability::Fsync, Damage::TornTail);
        j.append(b"1\n2\n").unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&p)
            .unwrap()
            .write_all(b"{\"pu")
            .unwrap();
        assert_eq!(numbers(&j).unwrap(), Some(vec![1, 2]));
        std::fs::write(&p, b"1\n{\"pu\n2\n").unwrap();
        let err = numbers(&j).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 2, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("corrupt at line 2"), "{err}");
        // Skipping is the other policy: the same file reads with the bad line left out.
        let skip = LineJournal::new(&p, Durability::Process, Damage::SkipBadLines);
        assert_eq!(numbers(&skip).unwrap(), Some(vec![1, 2]));
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }
}
