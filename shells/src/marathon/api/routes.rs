//! Routing of the marathon port. One handler reads the method and the path segments (after
//! collapsing empty segments, so `/v2/apps//x` is `/v2/apps/x`) and answers like Marathon.
//!
//! Until the scheduler core (`mesos_core::marathon::scheduler`) is wired in, this Marathon holds
//! no apps: reads answer for an empty Marathon (which is true), app definitions are validated
//! by the core's model (so bad input gets Marathon's 422/400 bodies), and a valid change is
//! refused with 503 saying why.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use mesos_core::marathon::{AppDefinition, PathId};
use serde_json::{json, Value as Json};

use super::errors::{json_response, parse_json, read_body, ApiError};
use super::query::Query;
use crate::marathon::daemon::Shared;
use crate::marathon::events::sse_stream;
use crate::marathon::render::{info_json, metrics_text, now_iso, InfoInput};

const INDEX_HTML: &str = include_str!("../ui/index.html");
const APP_JS: &str = include_str!("../ui/app.js");
const APP_CSS: &str = include_str!("../ui/app.css");

/// The router of the marathon port.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(dispatch).with_state(shared)
}

fn text(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn ok(body: Json) -> Response {
    json_response(StatusCode::OK, &body)
}

/// Refusal of a change while the scheduler core is not part of this build.
fn no_core() -> ApiError {
    ApiError::message(
        StatusCode::SERVICE_UNAVAILABLE,
        "This Marathon has no scheduler core yet (mesos_core::marathon::scheduler is not merged): apps cannot be created or changed",
    )
}

fn app_id(segments: &[&str]) -> Result<PathId, ApiError> {
    let raw = format!("/{}", segments.join("/"));
    PathId::parse(&raw, &PathId::root()).map_err(|errors| {
        ApiError::invalid(json!({"message": "Object is not valid",
            "details": [{"path": "/id", "errors": errors}]}))
    })
}

fn empty_root_group() -> Json {
    json!({"id": "/", "apps": [], "groups": [], "pods": [], "dependencies": [], "version": now_iso()})
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let connect = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .cloned();
    shared
        .counters
        .http_requests
        .fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let query = Query::parse(parts.uri.query());
    let path = parts.uri.path().to_string();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let remote = connect.map(|c| c.0.to_string()).unwrap_or_default();
    let accept = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    match handle(
        &shared,
        &parts.method,
        &segments,
        &query,
        &accept,
        remote,
        body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn handle(
    shared: &Shared,
    method: &Method,
    segments: &[&str],
    query: &Query,
    accept: &str,
    remote: String,
    body: Body,
) -> Result<Response, ApiError> {
    let m = method.clone();
    match (m, segments) {
        (Method::GET, []) => Ok(text(StatusCode::OK, "text/html; charset=utf-8", INDEX_HTML)),
        (Method::GET, ["ui", "app.js"]) => {
            Ok(text(StatusCode::OK, "application/javascript", APP_JS))
        }
        (Method::GET, ["ui", "app.css"]) => Ok(text(StatusCode::OK, "text/css", APP_CSS)),
        (Method::GET, ["ping"]) => {
            if accept.contains("application/json") && !accept.contains("text/plain") {
                Ok(json_response(StatusCode::OK, &json!("pong")))
            } else {
                Ok(text(StatusCode::OK, "text/plain", "pong"))
            }
        }
        (Method::GET, ["metrics"]) => {
            let c = &shared.counters;
            let metrics = [
                (
                    "marathon_mesos_offers_incoming",
                    "Offers received from Mesos",
                    c.offers_received.load(Ordering::Relaxed) as f64,
                ),
                (
                    "marathon_mesos_offers_declined",
                    "Offers declined",
                    c.offers_declined.load(Ordering::Relaxed) as f64,
                ),
                (
                    "marathon_mesos_task_updates",
                    "Task status updates received",
                    c.status_updates.load(Ordering::Relaxed) as f64,
                ),
                (
                    "marathon_mesos_subscriptions",
                    "Subscriptions opened with the master",
                    c.subscriptions.load(Ordering::Relaxed) as f64,
                ),
                (
                    "marathon_http_requests",
                    "HTTP requests served",
                    c.http_requests.load(Ordering::Relaxed) as f64,
                ),
                (
                    "marathon_mesos_connected",
                    "1 while subscribed to the master",
                    if shared.connected.load(Ordering::Relaxed) {
                        1.0
                    } else {
                        0.0
                    },
                ),
                (
                    "marathon_http_event_streams_active",
                    "Readers of /v2/events",
                    shared.bus.readers() as f64,
                ),
                ("marathon_apps_active", "Apps", 0.0),
                ("marathon_instances_running", "Running instances", 0.0),
                ("marathon_deployments_active", "Running deployments", 0.0),
            ];
            Ok(text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                metrics_text(&metrics),
            ))
        }
        (Method::GET, ["v2", "info"]) => {
            let fid = shared.framework_id();
            Ok(ok(info_json(&InfoInput {
                flags: &shared.flags,
                leader: &shared.leader,
                framework_id: fid.as_deref(),
                master: shared.master.base(),
                http_port: shared.http_port,
            })))
        }
        (Method::GET, ["v2", "leader"]) => Ok(ok(json!({"leader": shared.leader}))),
        (Method::DELETE, ["v2", "leader"]) => Ok(ok(json!({"message": "Leadership abdicated"}))),
        (Method::GET, ["v2", "events"]) => {
            let filter = query.all("event_type");
            Ok(sse_stream(&shared.bus, filter, remote, now_iso()).into_response())
        }
        // Apps.
        (Method::GET, ["v2", "apps"]) => {
            for e in query.all("embed") {
                if !e.starts_with("app.") && !e.starts_with("apps.") {
                    return Err(ApiError::bad_request(format!(
                        "Unknown embed parameter '{e}'"
                    )));
                }
            }
            Ok(ok(json!({"apps": []})))
        }
        (Method::POST, ["v2", "apps"]) => {
            query.flag("force", false)?;
            let bytes = read_body(body).await?;
            let value = parse_json(&bytes)?;
            let app =
                AppDefinition::from_json(&value).map_err(|e| ApiError::invalid(e.to_json()))?;
            tracing::debug!(id = %app.id, "valid app refused: no scheduler core");
            Err(no_core())
        }
        (Method::PUT | Method::PATCH, ["v2", "apps"]) => {
            query.flag("force", false)?;
            let bytes = read_body(body).await?;
            let value = parse_json(&bytes)?;
            if !value.is_array() {
                return Err(ApiError::invalid(json!({"message": "Invalid JSON",
                    "details": [{"path": "", "errors": ["error.expected.jsarray"]}]})));
            }
            Err(no_core())
        }
        (Method::GET, ["v2", "apps", rest @ ..]) if !rest.is_empty() => {
            let (id_segs, tail) = split_app_tail(rest);
            if id_segs.last() == Some(&"*") {
                let g = app_id(&id_segs[..id_segs.len() - 1])?;
                return Err(ApiError::not_found(format!("Group '{g}' does not exist")));
            }
            let id = app_id(id_segs)?;
            match tail {
                Tail::None | Tail::Tasks | Tail::Versions | Tail::Version(_) => {
                    Err(ApiError::not_found(format!("App '{id}' does not exist")))
                }
                _ => Err(ApiError::not_found(format!("App '{id}' does not exist"))),
            }
        }
        (Method::PUT | Method::PATCH, ["v2", "apps", rest @ ..]) if !rest.is_empty() => {
            query.flag("force", false)?;
            query.flag("partialUpdate", true)?;
            let id = app_id(rest)?;
            let bytes = read_body(body).await?;
            let mut value = parse_json(&bytes)?;
            if let Json::Object(m) = &mut value {
                m.entry("id").or_insert_with(|| json!(id.to_string()));
            }
            if *method == Method::PATCH {
                return Err(ApiError::not_found(format!("App '{id}' does not exist")));
            }
            if value.get("instances").is_some() && value.as_object().is_some_and(|m| m.len() <= 2) {
                // A scale of an app that does not exist is a create without cmd: validated.
            }
            AppDefinition::from_json(&value).map_err(|e| ApiError::invalid(e.to_json()))?;
            Err(no_core())
        }
        (Method::DELETE, ["v2", "apps", rest @ ..]) if !rest.is_empty() => {
            query.flag("force", true)?;
            let (id_segs, tail) = split_app_tail(rest);
            if let Tail::Tasks | Tail::Task(_) = tail {
                let scale = query.flag("scale", false)?;
                let wipe = query.flag("wipe", false)?;
                if scale && wipe {
                    return Err(ApiError::bad_request(
                        "You cannot use scale and wipe at the same time.",
                    ));
                }
            }
            let id = app_id(id_segs)?;
            Err(ApiError::not_found(format!("App '{id}' does not exist")))
        }
        (Method::POST, ["v2", "apps", rest @ ..])
            if rest.len() >= 2 && rest.last() == Some(&"restart") =>
        {
            query.flag("force", false)?;
            let id = app_id(&rest[..rest.len() - 1])?;
            Err(ApiError::not_found(format!("App '{id}' does not exist")))
        }
        // Tasks.
        (Method::GET, ["v2", "tasks"]) => {
            for s in query.all("status") {
                if !matches!(
                    s.as_str(),
                    "running" | "staging" | "staged" | "killing" | "starting"
                ) {
                    return Err(ApiError::bad_request(format!("Unknown status '{s}'")));
                }
            }
            if accept.contains("text/plain") && !accept.contains("json") {
                return Ok(text(StatusCode::OK, "text/plain", ""));
            }
            Ok(ok(json!({"tasks": []})))
        }
        (Method::POST, ["v2", "tasks", "delete"]) => {
            let scale = query.flag("scale", false)?;
            let wipe = query.flag("wipe", false)?;
            query.flag("force", false)?;
            if scale && wipe {
                return Err(ApiError::bad_request(
                    "You cannot use scale and wipe at the same time.",
                ));
            }
            let bytes = read_body(body).await?;
            let value = parse_json(&bytes)?;
            let ids = value.get("ids").and_then(Json::as_array).ok_or_else(|| {
                ApiError::invalid(json!({"message": "Invalid JSON",
                    "details": [{"path": "/ids", "errors": ["error.path.missing"]}]}))
            })?;
            for id in ids {
                let Some(id) = id.as_str() else {
                    return Err(ApiError::invalid(json!({"message": "Invalid JSON",
                        "details": [{"path": "/ids", "errors": ["error.expected.jsstring"]}]})));
                };
                if !id.contains('.') {
                    return Err(ApiError::bad_request(format!("Invalid task id '{id}'")));
                }
            }
            if scale {
                return Err(no_core());
            }
            Ok(ok(json!({"tasks": []})))
        }
        // Deployments.
        (Method::GET, ["v2", "deployments"]) => Ok(ok(json!([]))),
        (Method::DELETE, ["v2", "deployments", id]) => {
            query.flag("force", false)?;
            Err(ApiError::not_found(format!(
                "DeploymentPlan {id} does not exist"
            )))
        }
        // Groups.
        (Method::GET, ["v2", "groups"]) => Ok(ok(empty_root_group())),
        (Method::GET, ["v2", "groups", rest @ ..]) => {
            let segs: Vec<&str> = rest
                .iter()
                .copied()
                .filter(|s| !matches!(*s, "versions"))
                .collect();
            let id = app_id(&segs)?;
            if id.is_root() {
                return Ok(ok(empty_root_group()));
            }
            Err(ApiError::not_found(format!("Group '{id}' does not exist")))
        }
        (Method::POST | Method::PUT, ["v2", "groups", ..]) => {
            query.flag("force", false)?;
            query.flag("dryRun", false)?;
            let bytes = read_body(body).await?;
            let value = parse_json(&bytes)?;
            if !value.is_object() {
                return Err(ApiError::invalid(json!({"message": "Invalid JSON",
                    "details": [{"path": "", "errors": ["error.expected.jsobject"]}]})));
            }
            Err(no_core())
        }
        (Method::DELETE, ["v2", "groups", rest @ ..]) => {
            query.flag("force", false)?;
            let id = app_id(rest)?;
            if id.is_root() {
                return Err(no_core());
            }
            Err(ApiError::not_found(format!("Group '{id}' does not exist")))
        }
        // Queue.
        (Method::GET, ["v2", "queue"]) => Ok(ok(json!({"queue": []}))),
        (Method::DELETE, ["v2", "queue", rest @ ..]) if rest.last() == Some(&"delay") => {
            let id = app_id(&rest[..rest.len() - 1])?;
            Err(ApiError::not_found(format!(
                "Application {id} not found in tasks queue."
            )))
        }
        // Pods are not supported: an empty list and 404s, as for a Marathon without pods.
        (Method::GET, ["v2", "pods"]) => Ok(ok(json!([]))),
        (_, ["v2", "pods", rest @ ..]) => {
            let id = app_id(rest)?;
            Err(ApiError::not_found(format!("Pod '{id}' does not exist")))
        }
        (_, ["v2", ..]) | (_, ["ping" | "metrics"]) => Err(ApiError::message(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not supported on /{}", segments.join("/")),
        )),
        _ => Err(ApiError::not_found(format!(
            "No resource at /{}",
            segments.join("/")
        ))),
    }
}

/// What follows an app id in `/v2/apps/<id>/...`.
#[derive(Debug, PartialEq, Eq)]
enum Tail<'a> {
    None,
    Tasks,
    Task(&'a str),
    Versions,
    Version(&'a str),
    Restart,
}

/// Splits `/v2/apps/<id...>/<tail>`: the reserved words `tasks`, `versions`, `restart` cannot end
/// an app id, so the first of them starts the tail.
fn split_app_tail<'a, 'b>(rest: &'b [&'a str]) -> (&'b [&'a str], Tail<'a>) {
    for (i, s) in rest.iter().enumerate() {
        let tail = &rest[i + 1..];
        let t = match (*s, tail) {
            ("tasks", []) => Tail::Tasks,
            ("tasks", [t]) => Tail::Task(t),
            ("versions", []) => Tail::Versions,
            ("versions", [v]) => Tail::Version(v),
            ("restart", []) => Tail::Restart,
            _ => continue,
        };
        return (&rest[..i], t);
    }
    (rest, Tail::None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_tails() {
        assert_eq!(split_app_tail(&["a", "b"]), (&["a", "b"][..], Tail::None));
        assert_eq!(split_app_tail(&["a", "tasks"]), (&["a"][..], Tail::Tasks));
        assert_eq!(
            split_app_tail(&["g", "a", "tasks", "a.1"]),
            (&["g", "a"][..], Tail::Task("a.1"))
        );
        assert_eq!(
            split_app_tail(&["a", "versions", "v"]),
            (&["a"][..], Tail::Version("v"))
        );
        assert_eq!(
            split_app_tail(&["a", "restart"]),
            (&["a"][..], Tail::Restart)
        );
    }
}
