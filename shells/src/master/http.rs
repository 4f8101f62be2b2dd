//! The master's HTTP routes: decode, hand to the driver, encode. No decision is made here.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use mesos_core::ids::AgentId;
use mesos_core::master::{AgentError, AgentMessage, AgentRegistration, Call, CallError};
use serde_json::{json, Value as Json};

use super::driver::{DriverGone, MasterHandle, MAX_BATCH_MESSAGES};
use super::render::{self, Query};
use super::v1::{self, SchedulerCall};
use super::{ServerInfo, VERSION};

/// The web UI page.
const WEBUI: &str = include_str!("../../assets/master.html");

/// Largest request body accepted (an ACCEPT with many tasks, a batch of agent messages); a
/// larger one is answered 413.
const MAX_BODY: usize = 16 * 1024 * 1024;

#[derive(Clone)]
struct AppState {
    master: MasterHandle,
    info: Arc<ServerInfo>,
}

/// All routes.
pub(super) fn router(master: MasterHandle, info: Arc<ServerInfo>) -> Router {
    let state = AppState { master, info };
    Router::new()
        .route("/api/v1/scheduler", any(scheduler))
        .route("/master/api/v1/scheduler", any(scheduler))
        .route("/api/v1", any(operator))
        .route("/master/api/v1", any(operator))
        .route("/version", get(version))
        .route("/master/version", get(version))
        .route("/master/state", get(state_json))
        .route("/state", get(state_json))
        .route("/master/health", get(health))
        .route("/health", get(health))
        .route("/master/redirect", get(redirect))
        .route("/redirect", get(redirect))
        .route("/metrics/snapshot", get(metrics_snapshot))
        .route("/metrics", get(metrics_prometheus))
        .route("/internal/agent/register", post(agent_register))
        .route("/internal/agent/{agent_id}/stream", post(agent_stream))
        .route("/internal/agent/{agent_id}/message", post(agent_message))
        .route("/internal/agent/{agent_id}/messages", post(agent_messages))
        .route("/", get(webui))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

fn json_error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": message.into()}))).into_response()
}

fn unavailable(_: DriverGone) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "the master is shutting down",
    )
}

fn accepted() -> Response {
    Response::builder()
        .status(StatusCode::ACCEPTED)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::ACCEPTED.into_response())
}

fn call_error(e: &CallError) -> Response {
    let status = match e {
        CallError::UnknownFramework(_)
        | CallError::StreamMismatch { .. }
        | CallError::Invalid { .. } => StatusCode::BAD_REQUEST,
        CallError::NotSubscribed(_) | CallError::Removed(_) => StatusCode::FORBIDDEN,
    };
    error(status, e.to_string())
}

/// Checks `Content-Type`: 400 when missing, 415 unless JSON (the error response, if any).
fn check_content_type(headers: &HeaderMap) -> Option<Response> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "Expecting 'Content-Type' to be present",
        ));
    };
    let ct = ct.to_str().unwrap_or("");
    let media = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "application/json" {
        None
    } else {
        Some(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Expecting 'Content-Type' of application/json (application/x-protobuf is not supported by this master); got '{ct}'"
            ),
        ))
    }
}

/// True when `Accept` (absent means anything) allows JSON.
fn accepts_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT) else {
        return true;
    };
    let Ok(accept) = accept.to_str() else {
        return false;
    };
    accept.split(',').any(|part| {
        let media = part
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let q_zero = part
            .split(';')
            .skip(1)
            .any(|p| p.trim().replace(' ', "") == "q=0");
        !q_zero && matches!(media.as_str(), "application/json" | "application/*" | "*/*")
    })
}

async fn scheduler(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return Response::builder()
            .status(StatusCode::METHOD_NOT_ALLOWED)
            .header(header::ALLOW, "POST")
            .body(Body::from(format!("Expecting 'POST', received '{method}'")))
            .unwrap_or_else(|_| StatusCode::METHOD_NOT_ALLOWED.into_response());
    }
    if let Some(r) = check_content_type(&headers) {
        return r;
    }
    let call = match v1::parse_call(&body) {
        Ok(c) => c,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.0),
    };
    let stream_header = headers
        .get("mesos-stream-id")
        .map(|v| v.to_str().unwrap_or("").to_string());
    match call {
        SchedulerCall::Subscribe {
            framework_id,
            info,
            suppressed_roles,
        } => {
            if !accepts_json(&headers) {
                return error(
                    StatusCode::NOT_ACCEPTABLE,
                    "Expecting 'Accept' to allow application/json",
                );
            }
            if stream_header.is_some() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Subscribe calls should not include the 'Mesos-Stream-Id' header",
                );
            }
            let sub = match st
                .master
                .subscribe(framework_id, info, suppressed_roles)
                .await
            {
                Err(gone) => return unavailable(gone),
                Ok(Err(e)) => return call_error(&e),
                Ok(Ok(sub)) => sub,
            };
            let mut resp = Response::new(Body::from_stream(sub.body));
            *resp.status_mut() = StatusCode::OK;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Ok(v) = HeaderValue::from_str(&sub.stream_id) {
                h.insert("mesos-stream-id", v);
            }
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            resp
        }
        SchedulerCall::Other { framework_id, call } => {
            let Some(stream_id) = stream_header else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
                );
            };
            let update_framework = matches!(call, Call::UpdateFramework { .. });
            match st.master.call(framework_id, stream_id, call).await {
                Err(gone) => unavailable(gone),
                Ok(Err(e)) => call_error(&e),
                Ok(Ok(())) if update_framework => Response::builder()
                    .status(StatusCode::OK)
                    .header(header::CONTENT_LENGTH, "0")
                    .body(Body::empty())
                    .unwrap_or_else(|_| StatusCode::OK.into_response()),
                Ok(Ok(())) => accepted(),
            }
        }
        SchedulerCall::Ignored { framework_id, kind } => {
            let Some(stream_id) = stream_header else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
                );
            };
            tracing::debug!(framework = %framework_id, call = %kind, "call accepted and ignored");
            match st.master.check_subscription(framework_id, stream_id).await {
                Err(gone) => unavailable(gone),
                Ok(Err(e)) => call_error(&e),
                Ok(Ok(())) => accepted(),
            }
        }
    }
}

async fn version() -> Response {
    axum::Json(json!({
        "version": VERSION,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "implementation": "mesos-rs",
    }))
    .into_response()
}

async fn health() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::OK.into_response())
}

async fn redirect(State(st): State<AppState>) -> Response {
    let location = format!("//{}:{}", st.info.hostname, st.info.port);
    Response::builder()
        .status(StatusCode::TEMPORARY_REDIRECT)
        .header(header::LOCATION, location)
        .header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::TEMPORARY_REDIRECT.into_response())
}

async fn query(st: &AppState, q: Query) -> Result<Json, Box<Response>> {
    st.master
        .query(q)
        .await
        .map_err(|gone| Box::new(unavailable(gone)))
}

async fn state_json(State(st): State<AppState>) -> Response {
    match query(&st, Query::State).await {
        Ok(mut j) => {
            if let (Some(c), Json::Object(m)) = (&st.info.cluster, &mut j) {
                m.insert("cluster".into(), json!(c));
            }
            axum::Json(j).into_response()
        }
        Err(r) => *r,
    }
}

async fn metrics_snapshot(State(st): State<AppState>) -> Response {
    match query(&st, Query::Metrics).await {
        Ok(j) => axum::Json(j).into_response(),
        Err(r) => *r,
    }
}

async fn metrics_prometheus(State(st): State<AppState>) -> Response {
    match query(&st, Query::Metrics).await {
        Ok(j) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            render::prometheus(&j),
        )
            .into_response(),
        Err(r) => *r,
    }
}

async fn operator(
    State(st): State<AppState>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::POST {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("Expecting 'POST', received '{method}'"),
        );
    }
    if let Some(r) = check_content_type(&headers) {
        return r;
    }
    if !accepts_json(&headers) {
        return error(
            StatusCode::NOT_ACCEPTABLE,
            "Expecting 'Accept' to allow application/json",
        );
    }
    let call: Json = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Failed to parse body into Call: {e}"),
            )
        }
    };
    let Some(kind) = call.get("type").and_then(Json::as_str) else {
        return error(StatusCode::BAD_REQUEST, "Expecting 'type' to be present");
    };
    let q = match kind {
        "GET_HEALTH" => {
            return axum::Json(json!({"type": "GET_HEALTH", "get_health": {"healthy": true}}))
                .into_response()
        }
        "GET_VERSION" => {
            return axum::Json(json!({
                "type": "GET_VERSION",
                "get_version": {"version_info": {"version": VERSION}},
            }))
            .into_response()
        }
        "GET_STATE" => Query::GetState,
        "GET_AGENTS" => Query::GetAgents,
        "GET_FRAMEWORKS" => Query::GetFrameworks,
        "GET_TASKS" => Query::GetTasks,
        "GET_MASTER" => Query::GetMaster,
        "GET_METRICS" => Query::Metrics,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("Unsupported operator call type '{other}'"),
            )
        }
    };
    match query(&st, q).await {
        Ok(j) if q == Query::Metrics => {
            let metrics: Vec<Json> = j
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect()
                })
                .unwrap_or_default();
            axum::Json(json!({"type": "GET_METRICS", "get_metrics": {"metrics": metrics}}))
                .into_response()
        }
        Ok(j) => axum::Json(j).into_response(),
        Err(r) => *r,
    }
}

fn agent_status(e: &AgentError) -> StatusCode {
    match e {
        AgentError::Invalid(_) => StatusCode::BAD_REQUEST,
        AgentError::Removed(_) => StatusCode::FORBIDDEN,
        AgentError::UnknownAgent(_) => StatusCode::NOT_FOUND,
    }
}

fn agent_error(e: &AgentError) -> Response {
    json_error(agent_status(e), e.to_string())
}

async fn agent_register(State(st): State<AppState>, body: Bytes) -> Response {
    let reg: AgentRegistration = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("invalid agent registration: {e}"),
            )
        }
    };
    match st.master.register_agent(reg).await {
        Err(gone) => unavailable(gone),
        Ok(Err(e)) => agent_error(&e),
        Ok(Ok(id)) => axum::Json(json!({
            "agent_id": id,
            "total_ping_timeout_seconds": st.info.total_ping_timeout_secs,
            "max_batch_messages": MAX_BATCH_MESSAGES,
        }))
        .into_response(),
    }
}

async fn agent_stream(State(st): State<AppState>, Path(agent_id): Path<String>) -> Response {
    match st.master.open_agent_stream(AgentId::new(agent_id)).await {
        Err(gone) => unavailable(gone),
        Ok(Err(e)) => agent_error(&e),
        Ok(Ok(body)) => {
            let mut resp = Response::new(Body::from_stream(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
    }
}

async fn agent_message(
    State(st): State<AppState>,
    Path(agent_id): Path<String>,
    body: Bytes,
) -> Response {
    let message: AgentMessage = match serde_json::from_slice(&body) {
        Ok(m) => m,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("invalid agent message: {e}"),
            )
        }
    };
    match st
        .master
        .agent_message(AgentId::new(agent_id), message)
        .await
    {
        Err(gone) => unavailable(gone),
        Ok(Err(e)) => agent_error(&e),
        Ok(Ok(())) => accepted(),
    }
}

/// `POST /internal/agent/{id}/messages`: a JSON array of agent messages, handled in order in
/// one pass through the driver (one request and one answer for a burst of status updates).
async fn agent_messages(
    State(st): State<AppState>,
    Path(agent_id): Path<String>,
    body: Bytes,
) -> Response {
    let messages = match decode_batch(&body) {
        Ok(m) => m,
        Err(e) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                format!("invalid agent message batch: {e}"),
            )
        }
    };
    if messages.is_empty() {
        return accepted();
    }
    match st
        .master
        .agent_messages(AgentId::new(agent_id), messages)
        .await
    {
        Err(gone) => unavailable(gone),
        Ok(Err(e)) => json_error(agent_status(&e.error), e.to_string()),
        Ok(Ok(())) => accepted(),
    }
}

/// Reads a batch of agent messages: a JSON array of at most [`MAX_BATCH_MESSAGES`] messages.
/// An error names the first unreadable message by its index.
pub(super) fn decode_batch(body: &[u8]) -> Result<Vec<AgentMessage>, serde_json::Error> {
    use serde::de::{Deserializer as _, Error as _, SeqAccess, Visitor};

    struct Batch;
    impl<'de> Visitor<'de> for Batch {
        type Value = Vec<AgentMessage>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "an array of at most {MAX_BATCH_MESSAGES} agent messages")
        }

        fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
            loop {
                if out.len() == MAX_BATCH_MESSAGES {
                    // One more element means too many; the end of the array is fine.
                    return match seq.next_element::<serde::de::IgnoredAny>()? {
                        None => Ok(out),
                        Some(_) => Err(S::Error::custom(format!(
                            "more than {MAX_BATCH_MESSAGES} messages in one batch"
                        ))),
                    };
                }
                match seq.next_element::<AgentMessage>() {
                    Ok(Some(m)) => out.push(m),
                    Ok(None) => return Ok(out),
                    Err(e) => return Err(S::Error::custom(format!("message {}: {e}", out.len()))),
                }
            }
        }
    }

    let mut de = serde_json::Deserializer::from_slice(body);
    let out = (&mut de).deserialize_seq(Batch)?;
    de.end()?;
    Ok(out)
}

async fn webui() -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], WEBUI).into_response()
}
