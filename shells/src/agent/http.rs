//! The agent's own HTTP endpoints: `GET /state` (also `/slave(1)/state` and `/state.json`),
//! `GET /health`, `GET /metrics/snapshot`, and upstream's sandbox file endpoints `GET /files/browse`, `/files/read` and
//! `/files/download`, limited to the agent's sandboxes (`<work_dir>/slaves/...`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, oneshot};

use super::daemon::Input;

/// Largest chunk `/files/read` returns at once (upstream pages the same way).
const MAX_READ: u64 = 1 << 20;

#[derive(Clone)]
struct AppState {
    inputs: mpsc::Sender<Input>,
    /// The canonical `<work_dir>/slaves`; files outside it are not served.
    sandboxes: Arc<PathBuf>,
}

/// The router: `/state` asks the agent task for a snapshot; the file endpoints read the disk.
pub fn router(inputs: mpsc::Sender<Input>, work_dir: &Path) -> Router {
    let state = AppState {
        inputs,
        sandboxes: Arc::new(work_dir.join("slaves")),
    };
    Router::new()
        .route("/state", get(agent_state))
        .route("/state.json", get(agent_state))
        .route("/slave(1)/state", get(agent_state))
        .route("/slave(1)/state.json", get(agent_state))
        .route("/health", get(health))
        .route("/metrics/snapshot", get(metrics))
        .route("/files/browse", get(browse))
        .route("/files/browse.json", get(browse))
        .route("/files/read", get(read))
        .route("/files/read.json", get(read))
        .route("/files/download", get(download))
        .route("/files/download.json", get(download))
        .with_state(state)
}

async fn agent_state(State(st): State<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if st.inputs.send(Input::State(tx)).await.is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(v) => Json(v).into_response(),
        Err(_) => unavailable(),
    }
}

async fn metrics(State(st): State<AppState>) -> Response {
    let (tx, rx) = oneshot::channel();
    if st.inputs.send(Input::Metrics(tx)).await.is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(v) => Json(v).into_response(),
        Err(_) => unavailable(),
    }
}

fn unavailable() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the agent is shutting down",
    )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

async fn health() -> StatusCode {
    StatusCode::OK
}

#[derive(Deserialize)]
struct FileQuery {
    path: Option<String>,
    offset: Option<i64>,
    length: Option<i64>,
}

/// Resolves `path` and checks that it lies in a sandbox.
async fn resolve(st: &AppState, path: Option<&str>) -> Result<PathBuf, Response> {
    let Some(path) = path.filter(|p| !p.is_empty()) else {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "query parameter `path` is required",
        ));
    };
    let not_found = || error(StatusCode::NOT_FOUND, format!("no such file: {path}"));
    let real = tokio::fs::canonicalize(path)
        .await
        .map_err(|_| not_found())?;
    let root = tokio::fs::canonicalize(st.sandboxes.as_path())
        .await
        .map_err(|_| not_found())?;
    if !real.starts_with(&root) {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!("{path} is outside the agent's sandboxes"),
        ));
    }
    Ok(real)
}

async fn browse(State(st): State<AppState>, Query(q): Query<FileQuery>) -> Response {
    let dir = match resolve(&st, q.path.as_deref()).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let mut rd = match tokio::fs::read_dir(&dir).await {
        Ok(rd) => rd,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot list {dir:?}: {e}")),
    };
    let mut out = Vec::new();
    while let Ok(Some(e)) = rd.next_entry().await {
        let Ok(meta) = e.metadata().await else {
            continue;
        };
        use std::os::unix::fs::MetadataExt as _;
        out.push(json!({
            "path": e.path().display().to_string(),
            "size": meta.len(),
            "mtime": meta.mtime(),
            "mode": format_mode(meta.mode(), meta.is_dir()),
            "nlink": meta.nlink(),
            "uid": meta.uid().to_string(),
            "gid": meta.gid().to_string(),
        }));
    }
    out.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
    Json(out).into_response()
}

fn format_mode(mode: u32, dir: bool) -> String {
    let mut s = String::with_capacity(10);
    s.push(if dir { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        s.push(if bits & 4 != 0 { 'r' } else { '-' });
        s.push(if bits & 2 != 0 { 'w' } else { '-' });
        s.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    s
}

/// `{"data": <text>, "offset": n}`; `offset=-1` (or absent with no length) returns the size.
async fn read(State(st): State<AppState>, Query(q): Query<FileQuery>) -> Response {
    let file = match resolve(&st, q.path.as_deref()).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut f = match tokio::fs::File::open(&file).await {
        Ok(f) => f,
        Err(e) => return error(StatusCode::NOT_FOUND, format!("cannot open {file:?}: {e}")),
    };
    let size = match f.metadata().await {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return error(StatusCode::BAD_REQUEST, format!("{file:?} is a directory")),
        Err(e) => return error(StatusCode::NOT_FOUND, format!("cannot stat {file:?}: {e}")),
    };
    let offset = q.offset.unwrap_or(-1);
    if offset < 0 {
        return Json(json!({"data": "", "offset": size})).into_response();
    }
    let offset = (offset as u64).min(size);
    let length = match q.length {
        Some(l) if l < 0 => {
            return error(
                StatusCode::BAD_REQUEST,
                "query parameter `length` must not be negative",
            )
        }
        Some(l) => (l as u64).min(MAX_READ),
        None => MAX_READ,
    };
    let mut buf = Vec::new();
    if f.seek(std::io::SeekFrom::Start(offset)).await.is_err() {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "seek failed");
    }
    if let Err(e) = f.take(length).read_to_end(&mut buf).await {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot read {file:?}: {e}"),
        );
    }
    Json(json!({"data": String::from_utf8_lossy(&buf), "offset": offset})).into_response()
}

async fn download(State(st): State<AppState>, Query(q): Query<FileQuery>) -> Response {
    let file = match resolve(&st, q.path.as_deref()).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match tokio::fs::read(&file).await {
        Ok(bytes) => {
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{}\"", name.replace('"', "")),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => error(StatusCode::NOT_FOUND, format!("cannot read {file:?}: {e}")),
    }
}
