//! The v1 scheduler API on the wire: JSON calls into [`mesos_core::master::Call`]s, and
//! [`mesos_core::master::Event`]s into the JSON Mesos sends (nested payloads as in
//! `scheduler.proto`: `offers.offers`, `update.status`, `rescind.offer_id`, `error.message`).

use std::net::Ipv4Addr;

use mesos_core::ids::{AgentId, ExecutorId, FrameworkId, OfferId, TaskId};
use mesos_core::master::{
    Call, Event, Filters, FrameworkInfo, MasterInfo, Offer, Operation, TaskInfo,
};
use mesos_core::resources::{JsonFormat, Resources};
use mesos_core::task::StatusUuid;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

/// A call that could not be understood; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct WireError(pub String);

/// A decoded scheduler call.
#[derive(Debug, Clone)]
pub enum SchedulerCall {
    /// SUBSCRIBE.
    Subscribe {
        /// The top-level `framework_id` (resubscription).
        framework_id: Option<FrameworkId>,
        /// `subscribe.framework_info`.
        info: FrameworkInfo,
        /// `subscribe.suppressed_roles`.
        suppressed_roles: Vec<String>,
    },
    /// Any other call, for a framework.
    Other {
        /// The top-level `framework_id`.
        framework_id: FrameworkId,
        /// The call.
        call: Call,
    },
    /// A call type the master accepts and ignores (inverse offers, operation status...).
    Ignored {
        /// The top-level `framework_id`.
        framework_id: FrameworkId,
        /// The call type.
        kind: String,
    },
}

#[derive(Deserialize)]
struct WireCall {
    #[serde(rename = "type")]
    kind: Option<String>,
    framework_id: Option<Json>,
    #[serde(flatten)]
    rest: Map<String, Json>,
}

fn field<T: DeserializeOwned>(value: Json, name: &str) -> Result<T, WireError> {
    serde_json::from_value(value).map_err(|e| WireError(format!("invalid '{name}': {e}")))
}

fn payload(rest: &mut Map<String, Json>, key: &str) -> Json {
    rest.remove(key).unwrap_or_else(|| Json::Object(Map::new()))
}

fn required_payload(rest: &mut Map<String, Json>, key: &str) -> Result<Json, WireError> {
    rest.remove(key)
        .ok_or_else(|| WireError(format!("expecting '{key}' to be present")))
}

#[derive(Deserialize)]
struct WireSubscribe {
    framework_info: Option<Json>,
    #[serde(default)]
    suppressed_roles: Vec<String>,
}

#[derive(Deserialize)]
struct WireLaunch {
    #[serde(default)]
    task_infos: Vec<Json>,
}

#[derive(Deserialize)]
struct WireOperation {
    #[serde(rename = "type")]
    kind: Option<String>,
    launch: Option<WireLaunch>,
}

#[derive(Deserialize)]
struct WireAccept {
    #[serde(default)]
    offer_ids: Vec<OfferId>,
    #[serde(default)]
    operations: Vec<WireOperation>,
    filters: Option<Filters>,
}

#[derive(Deserialize)]
struct WireDecline {
    #[serde(default)]
    offer_ids: Vec<OfferId>,
    filters: Option<Filters>,
}

#[derive(Deserialize)]
struct WireRoles {
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Deserialize)]
struct WireKill {
    task_id: TaskId,
    agent_id: Option<AgentId>,
}

#[derive(Deserialize)]
struct WireShutdown {
    executor_id: ExecutorId,
    agent_id: AgentId,
}

#[derive(Deserialize)]
struct WireAcknowledge {
    agent_id: AgentId,
    task_id: TaskId,
    uuid: StatusUuid,
}

#[derive(Deserialize)]
struct WireReconcileTask {
    task_id: TaskId,
    agent_id: Option<AgentId>,
}

#[derive(Deserialize)]
struct WireReconcile {
    #[serde(default)]
    tasks: Vec<WireReconcileTask>,
}

#[derive(Deserialize)]
struct WireMessage {
    agent_id: AgentId,
    executor_id: ExecutorId,
    #[serde(default)]
    data: String,
}

#[derive(Deserialize)]
struct WireUpdateFramework {
    framework_info: Json,
    #[serde(default)]
    suppressed_roles: Vec<String>,
}

fn framework_info(value: Json, name: &str) -> Result<FrameworkInfo, WireError> {
    let Json::Object(m) = &value else {
        return Err(WireError(format!("'{name}' must be an object")));
    };
    for required in ["user", "name"] {
        if !m.get(required).is_some_and(Json::is_string) {
            return Err(WireError(format!(
                "'{name}.{required}' is required and must be a string"
            )));
        }
    }
    field(value, name)
}

fn task_info(value: Json, index: usize) -> Result<TaskInfo, WireError> {
    field(
        value,
        &format!("accept.operations.launch.task_infos[{index}]"),
    )
}

/// The hot calls (ACCEPT, DECLINE, ACKNOWLEDGE) decoded straight into typed values, without
/// an intermediate JSON tree: big ACCEPTs would otherwise cost several times their size.
#[derive(Deserialize)]
struct FastCall {
    #[serde(rename = "type")]
    kind: String,
    framework_id: Option<FrameworkId>,
    accept: Option<FastAccept>,
    decline: Option<WireDecline>,
    acknowledge: Option<WireAcknowledge>,
}

#[derive(Deserialize)]
struct FastAccept {
    #[serde(default)]
    offer_ids: Vec<OfferId>,
    #[serde(default)]
    operations: Vec<FastOperation>,
    filters: Option<Filters>,
}

#[derive(Deserialize)]
struct FastOperation {
    #[serde(rename = "type")]
    kind: Option<String>,
    launch: Option<FastLaunch>,
}

#[derive(Deserialize)]
struct FastLaunch {
    #[serde(default)]
    task_infos: Vec<TaskInfo>,
}

fn fast_path(body: &[u8]) -> Option<SchedulerCall> {
    let fast: FastCall = serde_json::from_slice(body).ok()?;
    let framework_id = fast.framework_id?;
    let call = match fast.kind.as_str() {
        "ACCEPT" => {
            let a = fast.accept?;
            let mut operations = Vec::with_capacity(a.operations.len());
            for op in a.operations {
                match (op.kind.as_deref(), op.launch) {
                    (Some("LAUNCH"), Some(l)) => operations.push(Operation::Launch(l.task_infos)),
                    (Some("LAUNCH"), None) | (None, _) => return None,
                    (Some(other), _) => operations.push(Operation::Unsupported(other.to_string())),
                }
            }
            Call::Accept {
                offer_ids: a.offer_ids,
                operations,
                filters: a.filters,
            }
        }
        "DECLINE" => {
            let d = fast.decline?;
            Call::Decline {
                offer_ids: d.offer_ids,
                filters: d.filters,
            }
        }
        "ACKNOWLEDGE" => {
            let a = fast.acknowledge?;
            Call::Acknowledge {
                agent_id: a.agent_id,
                task_id: a.task_id,
                uuid: a.uuid,
            }
        }
        _ => return None,
    };
    Some(SchedulerCall::Other { framework_id, call })
}

/// Parses a scheduler call body.
pub fn parse_call(body: &[u8]) -> Result<SchedulerCall, WireError> {
    if let Some(call) = fast_path(body) {
        return Ok(call);
    }
    let wire: WireCall = serde_json::from_slice(body)
        .map_err(|e| WireError(format!("failed to parse the body into a Call: {e}")))?;
    let mut rest = wire.rest;
    let kind = wire
        .kind
        .ok_or_else(|| WireError("expecting 'type' to be present".into()))?;
    let framework_id: Option<FrameworkId> = match wire.framework_id {
        Some(v) => Some(field(v, "framework_id")?),
        None => None,
    };
    if kind == "SUBSCRIBE" {
        let sub: WireSubscribe = field(required_payload(&mut rest, "subscribe")?, "subscribe")?;
        let info = framework_info(
            sub.framework_info.ok_or_else(|| {
                WireError("expecting 'subscribe.framework_info' to be present".into())
            })?,
            "subscribe.framework_info",
        )?;
        return Ok(SchedulerCall::Subscribe {
            framework_id,
            info,
            suppressed_roles: sub.suppressed_roles,
        });
    }
    const KNOWN: &[&str] = &[
        "TEARDOWN",
        "ACCEPT",
        "DECLINE",
        "REVIVE",
        "SUPPRESS",
        "KILL",
        "SHUTDOWN",
        "ACKNOWLEDGE",
        "RECONCILE",
        "MESSAGE",
        "REQUEST",
        "UPDATE_FRAMEWORK",
        "ACCEPT_INVERSE_OFFERS",
        "DECLINE_INVERSE_OFFERS",
        "ACKNOWLEDGE_OPERATION_STATUS",
        "RECONCILE_OPERATIONS",
    ];
    if !KNOWN.contains(&kind.as_str()) {
        return Err(WireError(format!("unknown call type '{kind}'")));
    }
    let framework_id = framework_id.ok_or_else(|| {
        WireError(format!(
            "expecting 'framework_id' to be present for a {kind} call"
        ))
    })?;
    let call = match kind.as_str() {
        "TEARDOWN" => Call::Teardown,
        "ACCEPT" => {
            let a: WireAccept = field(required_payload(&mut rest, "accept")?, "accept")?;
            let mut operations = Vec::with_capacity(a.operations.len());
            for op in a.operations {
                match op.kind.as_deref() {
                    Some("LAUNCH") => {
                        let launch = op.launch.ok_or_else(|| {
                            WireError("expecting 'accept.operations.launch' for LAUNCH".into())
                        })?;
                        let mut tasks = Vec::with_capacity(launch.task_infos.len());
                        for (i, t) in launch.task_infos.into_iter().enumerate() {
                            // A task that names itself but is otherwise unreadable gets a
                            // TASK_ERROR from the master (as upstream), not a 400 for the call.
                            let id = t
                                .pointer("/task_id/value")
                                .and_then(Json::as_str)
                                .map(str::to_string);
                            let agent = t
                                .pointer("/agent_id/value")
                                .and_then(Json::as_str)
                                .map(str::to_string);
                            match (task_info(t, i), id) {
                                (Ok(task), _) => tasks.push(task),
                                (Err(e), Some(id)) if !id.is_empty() => {
                                    operations.push(Operation::InvalidTask {
                                        task_id: TaskId::new(id),
                                        agent_id: agent.map(AgentId::new),
                                        reason: e.0,
                                    });
                                }
                                (Err(e), _) => return Err(e),
                            }
                        }
                        operations.push(Operation::Launch(tasks));
                    }
                    Some(other) => operations.push(Operation::Unsupported(other.to_string())),
                    None => {
                        return Err(WireError(
                            "expecting 'accept.operations.type' to be present".into(),
                        ))
                    }
                }
            }
            Call::Accept {
                offer_ids: a.offer_ids,
                operations,
                filters: a.filters,
            }
        }
        "DECLINE" => {
            let d: WireDecline = field(required_payload(&mut rest, "decline")?, "decline")?;
            Call::Decline {
                offer_ids: d.offer_ids,
                filters: d.filters,
            }
        }
        "REVIVE" => {
            let r: WireRoles = field(payload(&mut rest, "revive"), "revive")?;
            Call::Revive { roles: r.roles }
        }
        "SUPPRESS" => {
            let r: WireRoles = field(payload(&mut rest, "suppress"), "suppress")?;
            Call::Suppress { roles: r.roles }
        }
        "KILL" => {
            let k: WireKill = field(required_payload(&mut rest, "kill")?, "kill")?;
            Call::Kill {
                task_id: k.task_id,
                agent_id: k.agent_id,
            }
        }
        "SHUTDOWN" => {
            let s: WireShutdown = field(required_payload(&mut rest, "shutdown")?, "shutdown")?;
            Call::Shutdown {
                executor_id: s.executor_id,
                agent_id: s.agent_id,
            }
        }
        "ACKNOWLEDGE" => {
            let a: WireAcknowledge =
                field(required_payload(&mut rest, "acknowledge")?, "acknowledge")?;
            Call::Acknowledge {
                agent_id: a.agent_id,
                task_id: a.task_id,
                uuid: a.uuid,
            }
        }
        "RECONCILE" => {
            let r: WireReconcile = field(payload(&mut rest, "reconcile"), "reconcile")?;
            Call::Reconcile {
                tasks: r
                    .tasks
                    .into_iter()
                    .map(|t| (t.task_id, t.agent_id))
                    .collect(),
            }
        }
        "MESSAGE" => {
            let m: WireMessage = field(required_payload(&mut rest, "message")?, "message")?;
            Call::Message {
                agent_id: m.agent_id,
                executor_id: m.executor_id,
                data: m.data,
            }
        }
        "REQUEST" => Call::Request,
        "UPDATE_FRAMEWORK" => {
            let u: WireUpdateFramework = field(
                required_payload(&mut rest, "update_framework")?,
                "update_framework",
            )?;
            Call::UpdateFramework {
                framework_info: framework_info(
                    u.framework_info,
                    "update_framework.framework_info",
                )?,
                suppressed_roles: u.suppressed_roles,
            }
        }
        "ACCEPT_INVERSE_OFFERS"
        | "DECLINE_INVERSE_OFFERS"
        | "ACKNOWLEDGE_OPERATION_STATUS"
        | "RECONCILE_OPERATIONS" => {
            return Ok(SchedulerCall::Ignored { framework_id, kind });
        }
        other => return Err(WireError(format!("unknown call type '{other}'"))),
    };
    Ok(SchedulerCall::Other { framework_id, call })
}

/// The `ip` field of `MasterInfo`: an IPv4 address as a uint32 in network byte order, read
/// as a little-endian host integer (what Mesos writes).
fn packed_ip(ip: &str) -> u32 {
    ip.parse::<Ipv4Addr>()
        .map(|a| u32::from_le_bytes(a.octets()))
        .unwrap_or(0)
}

/// `MasterInfo` as v1 JSON.
pub fn master_info_json(info: &MasterInfo) -> Json {
    let a = &info.address;
    json!({
        "id": info.id,
        "ip": packed_ip(&a.ip),
        "port": a.port,
        "pid": format!("master@{}:{}", a.ip, a.port),
        "hostname": a.hostname,
        "version": info.version,
        "address": {"hostname": a.hostname, "ip": a.ip, "port": a.port},
        "capabilities": [{"type": "AGENT_UPDATE"}, {"type": "AGENT_DRAINING"}, {"type": "QUOTA_V2"}],
    })
}

/// How a framework wants its resources written.
#[derive(Clone, Copy, Debug, Default)]
pub struct ResourceStyle {
    /// RESERVATION_REFINEMENT: the refined format, else `"role": "*"`.
    pub refined: bool,
    /// MULTI_ROLE: keep `allocation_info`.
    pub multi_role: bool,
}

impl ResourceStyle {
    /// The style a framework's capabilities ask for.
    pub fn of(info: &FrameworkInfo) -> Self {
        ResourceStyle {
            refined: info.has_capability("RESERVATION_REFINEMENT"),
            multi_role: info.has_capability("MULTI_ROLE"),
        }
    }

    /// Resources as this framework sees them.
    pub fn resources(&self, r: &Resources) -> Json {
        let format = if self.refined {
            JsonFormat::Refined
        } else {
            JsonFormat::PreRefinement
        };
        let mut v = r.to_json(format);
        if !self.multi_role {
            if let Json::Array(items) = &mut v {
                for item in items {
                    if let Json::Object(m) = item {
                        m.remove("allocation_info");
                    }
                }
            }
        }
        v
    }
}

fn offer_json(o: &Offer, style: ResourceStyle) -> Json {
    let mut m = Map::new();
    m.insert("id".into(), json!(o.id));
    m.insert("framework_id".into(), json!(o.framework_id));
    m.insert("agent_id".into(), json!(o.agent_id));
    m.insert("hostname".into(), json!(o.hostname));
    m.insert(
        "url".into(),
        json!({
            "scheme": "http",
            "address": {
                "hostname": o.agent_address.hostname,
                "ip": o.agent_address.ip,
                "port": o.agent_address.port,
            },
            "path": "/slave(1)",
        }),
    );
    if style.multi_role {
        m.insert("allocation_info".into(), json!({"role": o.role}));
    }
    m.insert("resources".into(), style.resources(&o.resources));
    m.insert("attributes".into(), o.attributes.to_json());
    m.insert("executor_ids".into(), json!(o.executor_ids));
    Json::Object(m)
}

/// An event as the JSON record of a subscription stream.
pub fn event_json(event: &Event, style: ResourceStyle) -> Json {
    match event {
        Event::Subscribed {
            framework_id,
            heartbeat_interval,
            master_info,
        } => json!({
            "type": "SUBSCRIBED",
            "subscribed": {
                "framework_id": framework_id,
                "heartbeat_interval_seconds": heartbeat_interval.as_secs_f64(),
                "master_info": master_info_json(master_info),
            }
        }),
        Event::Offers(offers) => json!({
            "type": "OFFERS",
            "offers": {"offers": offers.iter().map(|o| offer_json(o, style)).collect::<Vec<_>>()},
        }),
        Event::Rescind(id) => json!({"type": "RESCIND", "rescind": {"offer_id": id}}),
        Event::Update(status) => json!({"type": "UPDATE", "update": {"status": status}}),
        Event::Message {
            agent_id,
            executor_id,
            data,
        } => json!({
            "type": "MESSAGE",
            "message": {"agent_id": agent_id, "executor_id": executor_id, "data": data},
        }),
        Event::Failure {
            agent_id,
            executor_id,
            status,
        } => {
            let mut m = Map::new();
            if let Some(a) = agent_id {
                m.insert("agent_id".into(), json!(a));
            }
            if let Some(e) = executor_id {
                m.insert("executor_id".into(), json!(e));
            }
            if let Some(s) = status {
                m.insert("status".into(), json!(s));
            }
            json!({"type": "FAILURE", "failure": m})
        }
        Event::Error(message) => json!({"type": "ERROR", "error": {"message": message}}),
    }
}

#[derive(serde::Serialize)]
struct UpdateEvent<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    update: UpdateBody<'a>,
}

#[derive(serde::Serialize)]
struct UpdateBody<'a> {
    status: &'a mesos_core::task::TaskStatus,
}

/// An event as the bytes of one JSON record (UPDATE, the most frequent, without a JSON tree).
pub fn event_bytes(event: &Event, style: ResourceStyle) -> serde_json::Result<Vec<u8>> {
    match event {
        Event::Update(status) => serde_json::to_vec(&UpdateEvent {
            kind: "UPDATE",
            update: UpdateBody { status },
        }),
        other => serde_json::to_vec(&event_json(other, style)),
    }
}

/// The HEARTBEAT record.
pub const HEARTBEAT: &str = r#"{"type":"HEARTBEAT"}"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribe_requires_user_and_name() {
        let err =
            parse_call(br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"x"}}}"#)
                .unwrap_err();
        assert!(err.0.contains("framework_info.user"), "{err}");
        let ok = parse_call(
            br#"{"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n", "failover_timeout": 100}}}"#,
        )
        .unwrap();
        assert!(matches!(
            ok,
            SchedulerCall::Subscribe {
                framework_id: None,
                ..
            }
        ));
    }

    #[test]
    fn accept_parses_pymesos_launch() {
        let body = br#"{"type":"ACCEPT","framework_id":{"value":"F"},"accept":{"offer_ids":[{"value":"O"}],
            "operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"t","task_id":{"value":"t1"},
            "agent_id":{"value":"A"},"resources":[{"name":"cpus","type":"SCALAR","role":"*","scalar":{"value":0.1}}],
            "command":{"value":"true"}}]}}],"filters":{"refuse_seconds":1}}}"#;
        let SchedulerCall::Other { framework_id, call } = parse_call(body).unwrap() else {
            panic!("not a framework call");
        };
        assert_eq!(framework_id.as_str(), "F");
        let Call::Accept {
            offer_ids,
            operations,
            filters,
        } = call
        else {
            panic!("not an accept");
        };
        assert_eq!(offer_ids.len(), 1);
        assert_eq!(filters.unwrap().refuse_seconds, Some(1.0));
        let Operation::Launch(tasks) = &operations[0] else {
            panic!("not a launch");
        };
        assert_eq!(tasks[0].task_id.as_str(), "t1");
    }

    #[test]
    fn bad_calls_name_the_field() {
        let e = parse_call(br#"{"type":"KILL","framework_id":{"value":"F"}}"#).unwrap_err();
        assert!(e.0.contains("'kill'"), "{e}");
        let e = parse_call(br#"{"type":"DECLINE"}"#).unwrap_err();
        assert!(e.0.contains("framework_id"), "{e}");
        let e = parse_call(br#"{"type":"NOPE","framework_id":{"value":"F"}}"#).unwrap_err();
        assert!(e.0.contains("NOPE"), "{e}");
        let e = parse_call(b"{").unwrap_err();
        assert!(e.0.contains("Call"), "{e}");
        let e = parse_call(
            br#"{"type":"ACKNOWLEDGE","framework_id":{"value":"F"},"acknowledge":{"agent_id":{"value":"A"},"task_id":{"value":"T"},"uuid":"abc"}}"#,
        )
        .unwrap_err();
        assert!(e.0.contains("acknowledge"), "{e}");
    }

    #[test]
    fn fast_and_slow_paths_agree() {
        let body = br#"{"type":"ACKNOWLEDGE","framework_id":{"value":"F"},"acknowledge":{"agent_id":{"value":"A"},"task_id":{"value":"T"},"uuid":"hLmGMNVuTcGKZ7bP1/AGQQ=="}}"#;
        let fast = fast_path(body).expect("fast path");
        let SchedulerCall::Other { call, .. } = fast else {
            panic!("not a call")
        };
        assert!(matches!(call, Call::Acknowledge { .. }));
        // A malformed hot call falls back to the path with field-naming errors.
        assert!(fast_path(br#"{"type":"ACCEPT","framework_id":{"value":"F"}}"#).is_none());
        let e = parse_call(br#"{"type":"ACCEPT","framework_id":{"value":"F"}}"#).unwrap_err();
        assert!(e.0.contains("'accept'"), "{e}");
    }

    #[test]
    fn update_bytes_match_the_tree_form() {
        use mesos_core::ids::TaskId;
        use mesos_core::task::{TaskState, TaskStatus};
        let e = Event::Update(TaskStatus::new(TaskId::new("t"), TaskState::Running));
        let style = ResourceStyle::default();
        let a: Json = serde_json::from_slice(&event_bytes(&e, style).unwrap()).unwrap();
        assert_eq!(a, event_json(&e, style));
        assert_eq!(a["update"]["status"]["state"], "TASK_RUNNING");
    }

    #[test]
    fn packed_ip_is_network_order() {
        assert_eq!(packed_ip("127.0.0.1"), 16777343);
    }
}
