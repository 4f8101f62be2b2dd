//! The v1 scheduler API from the framework's side: [`Call`]s into the JSON a master reads, and
//! the JSON records of a subscription stream into [`Event`]s (the reverse of `master::v1`).

use mesos_core::ids::{AgentId, ExecutorId, FrameworkId, OfferId};
use mesos_core::master::{Address, Call, Event, FrameworkInfo, MasterInfo, Offer, Operation};
use mesos_core::resources::Resources;
use mesos_core::task::TaskStatus;
use serde::Deserialize;
use serde_json::{json, Map, Value as Json};

/// A stream record that could not be understood; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scheduler event: {0}")]
pub struct EventError(pub String);

/// One record of a subscription stream.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// An event for the framework.
    Event(Event),
    /// HEARTBEAT: the master is alive.
    Heartbeat,
    /// A type this client does not handle (inverse offers, operation status...), by name.
    Ignored(String),
}

/// The SUBSCRIBE call; `framework_id` set when resubscribing (it goes to both places Mesos
/// wants it: the top level and `framework_info.id`).
pub fn subscribe_json(info: &FrameworkInfo, framework_id: Option<&FrameworkId>) -> Json {
    let mut info = info.clone();
    info.id = framework_id.cloned();
    let mut m = Map::new();
    if let Some(id) = framework_id {
        m.insert("framework_id".into(), json!(id));
    }
    m.insert("type".into(), json!("SUBSCRIBE"));
    m.insert("subscribe".into(), json!({ "framework_info": info }));
    Json::Object(m)
}

fn operation_json(op: &Operation) -> Json {
    match op {
        Operation::Launch(tasks) => json!({"type": "LAUNCH", "launch": {"task_infos": tasks}}),
        Operation::Unsupported(kind) => json!({ "type": kind }),
        Operation::InvalidTask { task_id, .. } => {
            // Not something a framework builds; sent as an empty launch naming the task so the
            // master answers with TASK_ERROR rather than dropping it silently.
            json!({"type": "LAUNCH", "launch": {"task_infos": [{"task_id": task_id}]}})
        }
    }
}

/// A call other than SUBSCRIBE as the JSON body of `POST /api/v1/scheduler`.
pub fn call_json(framework_id: &FrameworkId, call: &Call) -> Json {
    let body = match call {
        Call::Teardown => None,
        Call::Accept {
            offer_ids,
            operations,
            filters,
        } => {
            let mut m = Map::new();
            m.insert("offer_ids".into(), json!(offer_ids));
            m.insert(
                "operations".into(),
                Json::Array(operations.iter().map(operation_json).collect()),
            );
            if let Some(f) = filters {
                m.insert("filters".into(), json!(f));
            }
            Some(("accept", Json::Object(m)))
        }
        Call::Decline { offer_ids, filters } => {
            let mut m = Map::new();
            m.insert("offer_ids".into(), json!(offer_ids));
            if let Some(f) = filters {
                m.insert("filters".into(), json!(f));
            }
            Some(("decline", Json::Object(m)))
        }
        Call::Revive { roles } => Some(("revive", json!({ "roles": roles }))),
        Call::Suppress { roles } => Some(("suppress", json!({ "roles": roles }))),
        Call::Kill { task_id, agent_id } => {
            let mut m = Map::new();
            m.insert("task_id".into(), json!(task_id));
            if let Some(a) = agent_id {
                m.insert("agent_id".into(), json!(a));
            }
            Some(("kill", Json::Object(m)))
        }
        Call::Shutdown {
            executor_id,
            agent_id,
        } => Some((
            "shutdown",
            json!({"executor_id": executor_id, "agent_id": agent_id}),
        )),
        Call::Acknowledge {
            agent_id,
            task_id,
            uuid,
        } => Some((
            "acknowledge",
            json!({"agent_id": agent_id, "task_id": task_id, "uuid": uuid}),
        )),
        Call::Reconcile { tasks } => {
            let tasks: Vec<Json> = tasks
                .iter()
                .map(|(t, a)| match a {
                    Some(a) => json!({"task_id": t, "agent_id": a}),
                    None => json!({ "task_id": t }),
                })
                .collect();
            Some(("reconcile", json!({ "tasks": tasks })))
        }
        Call::Message {
            agent_id,
            executor_id,
            data,
        } => Some((
            "message",
            json!({"agent_id": agent_id, "executor_id": executor_id, "data": data}),
        )),
        Call::Request => Some(("request", json!({ "requests": [] }))),
        Call::UpdateFramework {
            framework_info,
            suppressed_roles,
        } => Some((
            "update_framework",
            json!({"framework_info": framework_info, "suppressed_roles": suppressed_roles}),
        )),
    };
    let mut m = Map::new();
    m.insert("framework_id".into(), json!(framework_id));
    m.insert("type".into(), json!(call.name()));
    if let Some((key, value)) = body {
        m.insert(key.into(), value);
    }
    Json::Object(m)
}

#[derive(Deserialize)]
struct WireRecord {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(flatten)]
    rest: Map<String, Json>,
}

#[derive(Deserialize)]
struct WireAddress {
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    ip: String,
    #[serde(default)]
    port: u16,
}

#[derive(Deserialize)]
struct WireMasterInfo {
    #[serde(default)]
    id: String,
    #[serde(default)]
    hostname: String,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    version: String,
    address: Option<WireAddress>,
}

#[derive(Deserialize)]
struct WireSubscribed {
    framework_id: FrameworkId,
    heartbeat_interval_seconds: Option<f64>,
    master_info: Option<WireMasterInfo>,
}

#[derive(Deserialize)]
struct WireRole {
    role: Option<String>,
}

#[derive(Deserialize)]
struct WireUrl {
    address: Option<WireAddress>,
}

#[derive(Deserialize)]
struct WireOffer {
    id: OfferId,
    framework_id: FrameworkId,
    agent_id: AgentId,
    #[serde(default)]
    hostname: String,
    url: Option<WireUrl>,
    allocation_info: Option<WireRole>,
    #[serde(default)]
    resources: Json,
    #[serde(default)]
    attributes: Option<mesos_core::attributes::Attributes>,
    #[serde(default)]
    executor_ids: Vec<ExecutorId>,
}

#[derive(Deserialize)]
struct WireOffers {
    #[serde(default)]
    offers: Vec<WireOffer>,
}

fn payload<T: serde::de::DeserializeOwned>(
    rest: &mut Map<String, Json>,
    key: &str,
) -> Result<T, EventError> {
    let v = rest
        .remove(key)
        .ok_or_else(|| EventError(format!("expecting '{key}' to be present")))?;
    serde_json::from_value(v).map_err(|e| EventError(format!("invalid '{key}': {e}")))
}

fn offer(o: WireOffer) -> Result<Offer, EventError> {
    // The role: MULTI_ROLE offers carry allocation_info; pre-refinement resources carry
    // `role`; refined ones the last reservation's role or `*`.
    let role_from_resources = o
        .resources
        .as_array()
        .and_then(|items| items.first())
        .and_then(|r| {
            r.get("allocation_info")
                .and_then(|a| a.get("role"))
                .or_else(|| r.get("role"))
                .and_then(Json::as_str)
                .map(str::to_string)
        });
    let role = o
        .allocation_info
        .and_then(|a| a.role)
        .or(role_from_resources)
        .unwrap_or_else(|| "*".to_string());
    let text = serde_json::to_string(&o.resources)
        .map_err(|e| EventError(format!("offer {}: resources: {e}", o.id)))?;
    let resources = Resources::from_json(&text)
        .map_err(|e| EventError(format!("offer {}: invalid resources: {e}", o.id)))?;
    let address = o.url.and_then(|u| u.address).unwrap_or(WireAddress {
        hostname: o.hostname.clone(),
        ip: String::new(),
        port: 0,
    });
    Ok(Offer {
        id: o.id,
        framework_id: o.framework_id,
        agent_id: o.agent_id,
        hostname: o.hostname,
        agent_address: Address {
            hostname: address.hostname,
            ip: address.ip,
            port: address.port,
        },
        role,
        resources,
        attributes: o.attributes.unwrap_or_default(),
        executor_ids: o.executor_ids,
    })
}

/// Parses one record of a subscription stream.
pub fn parse_event(record: &[u8]) -> Result<StreamEvent, EventError> {
    let wire: WireRecord =
        serde_json::from_slice(record).map_err(|e| EventError(format!("not a JSON event: {e}")))?;
    let mut rest = wire.rest;
    let kind = wire
        .kind
        .ok_or_else(|| EventError("expecting 'type' to be present".into()))?;
    let event = match kind.as_str() {
        "HEARTBEAT" => return Ok(StreamEvent::Heartbeat),
        "SUBSCRIBED" => {
            let s: WireSubscribed = payload(&mut rest, "subscribed")?;
            let mi = s.master_info;
            let master_info = match mi {
                Some(mi) => {
                    let address = mi.address.unwrap_or(WireAddress {
                        hostname: mi.hostname.clone(),
                        ip: String::new(),
                        port: mi.port,
                    });
                    MasterInfo {
                        id: mi.id,
                        address: Address {
                            hostname: address.hostname,
                            ip: address.ip,
                            port: address.port,
                        },
                        version: mi.version,
                    }
                }
                None => MasterInfo::default(),
            };
            let secs = s
                .heartbeat_interval_seconds
                .filter(|s| s.is_finite() && *s > 0.0)
                .unwrap_or(15.0)
                .min(86_400.0);
            Event::Subscribed {
                framework_id: s.framework_id,
                heartbeat_interval: std::time::Duration::from_secs_f64(secs),
                master_info,
            }
        }
        "OFFERS" => {
            let o: WireOffers = payload(&mut rest, "offers")?;
            Event::Offers(o.offers.into_iter().map(offer).collect::<Result<_, _>>()?)
        }
        "RESCIND" => {
            #[derive(Deserialize)]
            struct R {
                offer_id: OfferId,
            }
            let r: R = payload(&mut rest, "rescind")?;
            Event::Rescind(r.offer_id)
        }
        "UPDATE" => {
            #[derive(Deserialize)]
            struct U {
                status: TaskStatus,
            }
            let u: U = payload(&mut rest, "update")?;
            Event::Update(u.status)
        }
        "MESSAGE" => {
            #[derive(Deserialize)]
            struct M {
                agent_id: AgentId,
                executor_id: ExecutorId,
                #[serde(default)]
                data: String,
            }
            let m: M = payload(&mut rest, "message")?;
            Event::Message {
                agent_id: m.agent_id,
                executor_id: m.executor_id,
                data: m.data,
            }
        }
        "FAILURE" => {
            #[derive(Deserialize)]
            struct F {
                agent_id: Option<AgentId>,
                executor_id: Option<ExecutorId>,
                status: Option<i32>,
            }
            let f: F = payload(&mut rest, "failure")?;
            Event::Failure {
                agent_id: f.agent_id,
                executor_id: f.executor_id,
                status: f.status,
            }
        }
        "ERROR" => {
            #[derive(Deserialize)]
            struct E {
                #[serde(default)]
                message: String,
            }
            let e: E = payload(&mut rest, "error")?;
            Event::Error(e.message)
        }
        other => return Ok(StreamEvent::Ignored(other.to_string())),
    };
    Ok(StreamEvent::Event(event))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::master::v1;
    use mesos_core::ids::TaskId;
    use mesos_core::task::TaskState;

    #[test]
    fn calls_round_trip_through_the_master_parser() {
        let fw = FrameworkId::new("F-0000");
        let calls = vec![
            Call::Decline {
                offer_ids: vec![OfferId::new("O1")],
                filters: Some(mesos_core::master::Filters {
                    refuse_seconds: Some(5.0),
                }),
            },
            Call::Kill {
                task_id: TaskId::new("t"),
                agent_id: Some(AgentId::new("S0")),
            },
            Call::Revive {
                roles: vec!["*".into()],
            },
            Call::Suppress { roles: vec![] },
            Call::Reconcile {
                tasks: vec![(TaskId::new("t"), None)],
            },
            Call::Teardown,
        ];
        for call in calls {
            let body = serde_json::to_vec(&call_json(&fw, &call)).unwrap();
            let parsed = v1::parse_call(&body).unwrap();
            let v1::SchedulerCall::Other {
                framework_id,
                call: back,
            } = parsed
            else {
                panic!("not a framework call");
            };
            assert_eq!(framework_id, fw);
            assert_eq!(back, call);
        }
    }

    #[test]
    fn subscribe_carries_the_id_twice() {
        let info = FrameworkInfo {
            user: "root".into(),
            name: "marathon".into(),
            ..Default::default()
        };
        let id = FrameworkId::new("F-1");
        let body = serde_json::to_vec(&subscribe_json(&info, Some(&id))).unwrap();
        let v1::SchedulerCall::Subscribe {
            framework_id, info, ..
        } = v1::parse_call(&body).unwrap()
        else {
            panic!("not a subscribe");
        };
        assert_eq!(framework_id, Some(id.clone()));
        assert_eq!(info.id, Some(id));
    }

    #[test]
    fn events_round_trip_from_the_master_writer() {
        let style = v1::ResourceStyle::default();
        let status = TaskStatus::new(TaskId::new("t"), TaskState::Running);
        let e = Event::Update(status.clone());
        let bytes = v1::event_bytes(&e, style).unwrap();
        assert_eq!(parse_event(&bytes).unwrap(), StreamEvent::Event(e));
        let offer = Offer {
            id: OfferId::new("O1"),
            framework_id: FrameworkId::new("F"),
            agent_id: AgentId::new("S0"),
            hostname: "h".into(),
            agent_address: Address {
                hostname: "h".into(),
                ip: "127.0.0.1".into(),
                port: 5051,
            },
            role: "*".into(),
            resources: Resources::parse("cpus:2;mem:1024;ports:[31000-31010]").unwrap(),
            attributes: Default::default(),
            executor_ids: vec![],
        };
        let e = Event::Offers(vec![offer]);
        let bytes = v1::event_bytes(&e, style).unwrap();
        let StreamEvent::Event(Event::Offers(back)) = parse_event(&bytes).unwrap() else {
            panic!("not offers");
        };
        assert_eq!(
            back[0].resources,
            Resources::parse("cpus:2;mem:1024;ports:[31000-31010]").unwrap()
        );
        assert_eq!(back[0].agent_address.port, 5051);
        assert_eq!(
            parse_event(br#"{"type":"HEARTBEAT"}"#).unwrap(),
            StreamEvent::Heartbeat
        );
        assert!(parse_event(br#"{"type":"UPDATE"}"#)
            .unwrap_err()
            .0
            .contains("update"));
        assert_eq!(
            parse_event(br#"{"type":"ERROR","error":{"message":"no"}}"#).unwrap(),
            StreamEvent::Event(Event::Error("no".into()))
        );
    }
}
