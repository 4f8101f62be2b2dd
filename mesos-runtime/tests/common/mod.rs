//! Helpers shared by the runtime integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("mesos-rt-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether skipping is forbidden (`MESOS_TEST_STRICT=1`, set under CI and `scripts/test
/// --strict`): then a test that cannot run fails instead of passing without checking anything.
pub fn strict() -> bool {
    std::env::var("MESOS_TEST_STRICT").is_ok_and(|v| v == "1")
}

/// Skips the calling test with `reason` (prints the skip line), or fails it in strict mode.
pub fn skip(reason: &str) {
    assert!(!strict(), "MESOS_TEST_STRICT is set but {reason}");
    println!("skipped: {reason}");
}

/// The value of an environment variable gating a test; `None` prints the skip line (and fails
/// the test in strict mode, see [`skip`]).
pub fn gate(var: &str) -> Option<()> {
    if std::env::var(var).map(|v| v == "1").unwrap_or(false) {
        Some(())
    } else {
        skip(&format!("{var} is not set"));
        None
    }
}

/// Reads a sandbox file (empty if missing).
pub fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Files left in a checkpoint directory.
pub fn checkpoint_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|it| it.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}
