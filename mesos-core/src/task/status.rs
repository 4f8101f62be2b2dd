//! The v1 `TaskStatus` message.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Reason, Source, TaskState};
use crate::ids::{AgentId, ExecutorId, TaskId};
use crate::time::Time;

/// The 16-byte id of a reliable status update; base64 in JSON. Master-generated updates have none.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusUuid(pub [u8; 16]);

impl StatusUuid {
    /// From 128 bits (callers draw them from a seeded rng or a counter).
    pub fn from_u128(v: u128) -> Self {
        StatusUuid(v.to_be_bytes())
    }

    /// Base64 as in v1 JSON (24 characters).
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Reads the base64 form; the bytes must be exactly 16.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = BASE64
            .decode(text)
            .map_err(|e| format!("uuid `{text}` is not base64: {e}"))?;
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|b: Vec<u8>| format!("uuid `{text}` has {} bytes, expected 16", b.len()))?;
        Ok(StatusUuid(arr))
    }
}

/// The canonical hyphenated hex form.
impl fmt::Display for StatusUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StatusUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StatusUuid({self})")
    }
}

impl Serialize for StatusUuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for StatusUuid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        StatusUuid::from_base64(&s).map_err(D::Error::custom)
    }
}

mod secs {
    //! `Time` as Mesos' float seconds.
    use super::*;

    pub fn serialize<S: Serializer>(t: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_f64(t.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(Time::from_secs_f64))
    }
}

mod nanos_object {
    //! `Time` as `{"nanoseconds": n}` (v1 `TimeInfo`).
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct TimeInfo {
        nanoseconds: i64,
    }

    pub fn serialize<S: Serializer>(t: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => TimeInfo {
                nanoseconds: i64::try_from(t.as_nanos()).unwrap_or(i64::MAX),
            }
            .serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Time>, D::Error> {
        Ok(Option::<TimeInfo>::deserialize(d)?
            .map(|t| Time::from_nanos(u64::try_from(t.nanoseconds).unwrap_or(0))))
    }
}

/// A task's status as carried by UPDATE events and agent messages (v1 JSON field names).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskStatus {
    /// The task.
    pub task_id: TaskId,
    /// Its state.
    pub state: TaskState,
    /// A human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Who produced the update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    /// Opaque data from the executor (base64 text as on the wire).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// The agent running the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<AgentId>,
    /// The executor running the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor_id: Option<ExecutorId>,
    /// When the update was produced (float seconds in JSON).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "secs")]
    pub timestamp: Option<Time>,
    /// The id of a reliable update; it must be acknowledged. None for master-generated updates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<StatusUuid>,
    /// The task's health, when it has a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
    /// When the agent became unreachable (`{"nanoseconds": n}`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "nanos_object"
    )]
    pub unreachable_time: Option<Time>,
    /// Container details (network addresses...), passed through as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_status: Option<serde_json::Value>,
}

impl TaskStatus {
    /// A status with only the task and the state set.
    pub fn new(task_id: TaskId, state: TaskState) -> Self {
        TaskStatus {
            task_id,
            state,
            message: None,
            source: None,
            reason: None,
            data: None,
            agent_id: None,
            executor_id: None,
            timestamp: None,
            uuid: None,
            healthy: None,
            unreachable_time: None,
            container_status: None,
        }
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the source.
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: Reason) -> Self {
        self.reason = Some(reason);
        self
    }

    /// Sets the agent.
    pub fn with_agent(mut self, agent: AgentId) -> Self {
        self.agent_id = Some(agent);
        self
    }

    /// Sets the timestamp.
    pub fn with_timestamp(mut self, at: Time) -> Self {
        self.timestamp = Some(at);
        self
    }

    /// Sets the uuid, making the update reliable.
    pub fn with_uuid(mut self, uuid: StatusUuid) -> Self {
        self.uuid = Some(uuid);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn master_update_json_matches_mesos() {
        let s = TaskStatus::new(TaskId::new("my-task-1"), TaskState::Lost)
            .with_source(Source::Master)
            .with_reason(Reason::AgentRemoved)
            .with_message("health check timed out")
            .with_agent(AgentId::new("m-S0"))
            .with_timestamp(Time::from_secs(1_727_740_100));
        let mut s = s;
        s.unreachable_time = Some(Time::from_secs(1_727_740_100));
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"task_id":{"value":"my-task-1"},"state":"TASK_LOST","source":"SOURCE_MASTER",
                   "reason":"REASON_AGENT_REMOVED","message":"health check timed out",
                   "agent_id":{"value":"m-S0"},"timestamp":1727740100.0,
                   "unreachable_time":{"nanoseconds":1727740100000000000_i64}})
        );
    }

    #[test]
    fn executor_update_round_trips_with_uuid() {
        let v = json!({"task_id":{"value":"t"},"state":"TASK_RUNNING","source":"SOURCE_EXECUTOR",
                       "uuid":"hLmGMNVuTcGKZ7bP1/AGQQ==","timestamp":1727740000.123});
        let s: TaskStatus = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(s.state, TaskState::Running);
        assert_eq!(s.uuid.unwrap().to_base64(), "hLmGMNVuTcGKZ7bP1/AGQQ==");
        assert_eq!(serde_json::to_value(&s).unwrap()["uuid"], v["uuid"]);
    }

    #[test]
    fn bad_uuid_is_a_clear_error() {
        let v = json!({"task_id":{"value":"t"},"state":"TASK_RUNNING","uuid":"AAAA"});
        let err = serde_json::from_value::<TaskStatus>(v)
            .unwrap_err()
            .to_string();
        assert!(err.contains("has 3 bytes, expected 16"), "{err}");
        let v = json!({"task_id":{"value":"t"},"state":"TASK_RUNNINGG"});
        assert!(serde_json::from_value::<TaskStatus>(v).is_err());
    }

    #[test]
    fn uuid_displays_as_hyphenated_hex() {
        let u = StatusUuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(u.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
    }
}
