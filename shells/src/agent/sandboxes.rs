//! The file-system side of sandbox GC: finding the run directories earlier agents left, and
//! deleting one when the agent core says so (which ones and when is the core's choice).

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Every `slaves/<agent>/frameworks/<fw>/executors/<task>/runs/<container>` directory under
/// `work_dir`, with how long ago it was last modified.
pub fn find_runs(work_dir: &Path) -> Vec<(PathBuf, Duration)> {
    let mut level: Vec<PathBuf> = vec![work_dir.join("slaves")];
    for step in ["", "frameworks", "", "executors", "", "runs", ""] {
        let mut next = Vec::new();
        for dir in &level {
            if !step.is_empty() {
                let d = dir.join(step);
                if d.is_dir() {
                    next.push(d);
                }
                continue;
            }
            let Ok(rd) = std::fs::read_dir(dir) else {
                continue;
            };
            next.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        level = next;
    }
    level
        .into_iter()
        .map(|run| {
            let age = std::fs::metadata(&run)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| m.elapsed().ok())
                .unwrap_or_default();
            (run, age)
        })
        .collect()
}

/// Deletes a sandbox, then its `runs/` and executor directory when nothing else is left in
/// them.
pub async fn delete(sandbox: PathBuf) {
    tracing::info!(sandbox = %sandbox.display(), "removing a finished task's sandbox");
    if let Err(e) = tokio::fs::remove_dir_all(&sandbox).await {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(sandbox = %sandbox.display(), error = %e, "cannot remove a sandbox");
        }
    }
    let mut dir = sandbox.parent().map(PathBuf::from);
    for _ in 0..2 {
        let Some(d) = dir else { break };
        if tokio::fs::remove_dir(&d).await.is_err() {
            break;
        }
        dir = d.parent().map(PathBuf::from);
    }
}
