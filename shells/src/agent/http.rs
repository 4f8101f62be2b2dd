//! The agent's own HTTP endpoints: `GET /state` (also `/slave(1)/state` and `/state.json`) and
//! `GET /health`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use tokio::sync::{mpsc, oneshot};

use super::daemon::Input;

/// The router, asking the agent task for each snapshot.
pub fn router(inputs: mpsc::Sender<Input>) -> Router {
    Router::new()
        .route("/state", get(state))
        .route("/state.json", get(state))
        .route("/slave(1)/state", get(state))
        .route("/slave(1)/state.json", get(state))
        .route("/health", get(health))
        .with_state(inputs)
}

async fn state(State(inputs): State<mpsc::Sender<Input>>) -> Response {
    let (tx, rx) = oneshot::channel();
    if inputs.send(Input::State(tx)).await.is_err() {
        return unavailable();
    }
    match rx.await {
        Ok(v) => Json(v).into_response(),
        Err(_) => unavailable(),
    }
}

fn unavailable() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"error": "the agent is shutting down"})),
    )
        .into_response()
}

async fn health() -> StatusCode {
    StatusCode::OK
}
