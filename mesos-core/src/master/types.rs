//! The master's domain values: what frameworks and agents send it and what it sends them.
//!
//! Values whose shape *is* the v1 message (framework info, task info, command info) carry serde
//! with the v1 field names, so the shells can embed them in their wire types as they are.
//! Calls, events and agent messages are plain enums: the shells translate JSON to and from them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::attributes::Attributes;
use crate::ids::{AgentId, ExecutorId, FrameworkId, OfferId, TaskId};
use crate::protocol::AgentCommand;
use crate::resources::Resources;
use crate::task::{StatusUuid, TaskState, TaskStatus};
use crate::time::Time;

/// A framework capability (`{"type": "MULTI_ROLE"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// The capability's name, e.g. `MULTI_ROLE`, `PARTITION_AWARE`, `TASK_KILLING_STATE`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// `FrameworkInfo` (v1 field names; unknown fields are ignored).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FrameworkInfo {
    /// The OS user tasks run as.
    #[serde(default)]
    pub user: String,
    /// A human name.
    #[serde(default)]
    pub name: String,
    /// Set when resubscribing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<FrameworkId>,
    /// Seconds the master keeps the framework after its scheduler disconnects (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover_timeout: Option<f64>,
    /// Whether agents checkpoint its tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<bool>,
    /// The single role of a framework without MULTI_ROLE (deprecated field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The roles of a MULTI_ROLE framework.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Where the scheduler runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// The principal it authenticates as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Its web UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webui_url: Option<String>,
    /// Its capabilities.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<Capability>,
    /// Labels, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Json>,
    /// Per-role offer filters (`min_allocatable_resources`), passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offer_filters: Option<Json>,
}

impl FrameworkInfo {
    /// True when the framework declared `capability`.
    pub fn has_capability(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c.kind == capability)
    }

    /// The roles it receives offers for: `roles` with MULTI_ROLE, else `role` (default `*`).
    pub fn effective_roles(&self) -> Vec<String> {
        if self.has_capability("MULTI_ROLE") {
            self.roles.clone()
        } else {
            vec![self.role.clone().unwrap_or_else(|| "*".to_string())]
        }
    }

    /// True with the PARTITION_AWARE capability (UNREACHABLE/GONE instead of LOST).
    pub fn partition_aware(&self) -> bool {
        self.has_capability("PARTITION_AWARE")
    }

    /// The failover timeout (0 when unset or invalid).
    pub fn failover(&self) -> Duration {
        self.failover_timeout
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| Duration::from_secs_f64(s.min(1e9)))
            .unwrap_or(Duration::ZERO)
    }
}

/// An environment variable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Its name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: String,
}

/// `Environment`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// The variables.
    #[serde(default)]
    pub variables: Vec<Variable>,
}

/// `CommandInfo`: what a command task runs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CommandInfo {
    /// Run `value` through `/bin/sh -c` (default true), or exec `value` with `arguments`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    /// The shell command, or the program when `shell` is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// argv when `shell` is false.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// Extra environment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    /// The user to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// URIs to fetch, passed through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<Json>,
}

impl CommandInfo {
    /// `shell`, defaulting to true as the proto does.
    pub fn is_shell(&self) -> bool {
        self.shell.unwrap_or(true)
    }
}

/// `TaskInfo`: a task a framework launches.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    /// A human name.
    #[serde(default)]
    pub name: String,
    /// The framework-chosen id.
    pub task_id: TaskId,
    /// The agent of the offer it is launched from.
    pub agent_id: AgentId,
    /// What it uses.
    #[serde(default)]
    pub resources: Resources,
    /// A command task's command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<CommandInfo>,
    /// A custom executor (passed through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executor: Option<Json>,
    /// Container settings (Docker image, network, port mappings...), passed through to the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<Json>,
    /// Health check, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<Json>,
    /// Kill policy (`grace_period`), passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_policy: Option<Json>,
    /// Labels, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Json>,
    /// Discovery info, passed through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<Json>,
    /// Opaque data (base64).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

/// `Filters` of ACCEPT and DECLINE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    /// How long not to offer the declined resources again (default 5 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_seconds: Option<f64>,
}

/// An offer operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Operation {
    /// LAUNCH: start tasks.
    Launch(Vec<TaskInfo>),
    /// Any other operation (RESERVE, CREATE, LAUNCH_GROUP...): not supported yet, by name.
    Unsupported(String),
    /// A LAUNCH task whose description could not be read (e.g. negative `cpus`): like
    /// upstream, the call is accepted and the task gets TASK_ERROR with `reason`.
    InvalidTask {
        /// The task's id, as given.
        task_id: TaskId,
        /// Its agent, if given and readable.
        agent_id: Option<AgentId>,
        /// What is wrong with it.
        reason: String,
    },
}

/// A scheduler call other than SUBSCRIBE (which has its own entry point).
#[derive(Clone, Debug, PartialEq)]
// Messages are short-lived and moved, not stored in bulk: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum Call {
    /// Remove the framework and kill its tasks.
    Teardown,
    /// Use offers: run the operations, give back the rest with the filters.
    Accept {
        /// The offers used (all on one agent).
        offer_ids: Vec<OfferId>,
        /// What to do with them.
        operations: Vec<Operation>,
        /// How long not to re-offer what was not used.
        filters: Option<Filters>,
    },
    /// Give offers back.
    Decline {
        /// The offers.
        offer_ids: Vec<OfferId>,
        /// How long not to re-offer them.
        filters: Option<Filters>,
    },
    /// Clear filters and offer again in these roles (all when empty).
    Revive {
        /// The roles.
        roles: Vec<String>,
    },
    /// Stop offers in these roles (all when empty).
    Suppress {
        /// The roles.
        roles: Vec<String>,
    },
    /// Kill a task.
    Kill {
        /// The task.
        task_id: TaskId,
        /// Its agent, if the scheduler knows it.
        agent_id: Option<AgentId>,
    },
    /// Shut an executor down.
    Shutdown {
        /// The executor.
        executor_id: ExecutorId,
        /// Its agent.
        agent_id: AgentId,
    },
    /// Acknowledge a reliable status update.
    Acknowledge {
        /// The task's agent.
        agent_id: AgentId,
        /// The task.
        task_id: TaskId,
        /// The update's uuid.
        uuid: StatusUuid,
    },
    /// Ask for the latest state of tasks (all of the framework's when empty).
    Reconcile {
        /// `(task, agent if known)`.
        tasks: Vec<(TaskId, Option<AgentId>)>,
    },
    /// Send data to an executor.
    Message {
        /// The agent.
        agent_id: AgentId,
        /// The executor.
        executor_id: ExecutorId,
        /// The data (base64).
        data: String,
    },
    /// A resource request (only logged, as upstream).
    Request,
    /// Replace the framework's info and suppressed roles.
    UpdateFramework {
        /// The new info.
        framework_info: FrameworkInfo,
        /// Roles not to offer for.
        suppressed_roles: Vec<String>,
    },
}

impl Call {
    /// The v1 call type name.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Teardown => "TEARDOWN",
            Call::Accept { .. } => "ACCEPT",
            Call::Decline { .. } => "DECLINE",
            Call::Revive { .. } => "REVIVE",
            Call::Suppress { .. } => "SUPPRESS",
            Call::Kill { .. } => "KILL",
            Call::Shutdown { .. } => "SHUTDOWN",
            Call::Acknowledge { .. } => "ACKNOWLEDGE",
            Call::Reconcile { .. } => "RECONCILE",
            Call::Message { .. } => "MESSAGE",
            Call::Request => "REQUEST",
            Call::UpdateFramework { .. } => "UPDATE_FRAMEWORK",
        }
    }
}

/// Where an agent (or the master) can be reached.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Address {
    /// The hostname.
    pub hostname: String,
    /// The IP address in text form.
    pub ip: String,
    /// The port.
    pub port: u16,
}

/// What the master says about itself (`MasterInfo`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MasterInfo {
    /// The master's id (a UUID drawn from its seed).
    pub id: String,
    /// Its address.
    pub address: Address,
    /// Its version (dotted integers; pymesos parses it).
    pub version: String,
}

/// One offer sent to a framework.
#[derive(Clone, Debug, PartialEq)]
pub struct Offer {
    /// The offer's id.
    pub id: OfferId,
    /// The framework it is for.
    pub framework_id: FrameworkId,
    /// The agent the resources are on.
    pub agent_id: AgentId,
    /// The agent's hostname.
    pub hostname: String,
    /// The agent's address (the offer's `url`).
    pub agent_address: Address,
    /// The role the resources are allocated to.
    pub role: String,
    /// The resources, allocated to `role`.
    pub resources: Resources,
    /// The agent's attributes.
    pub attributes: Attributes,
    /// The framework's executors on that agent.
    pub executor_ids: Vec<ExecutorId>,
}

/// An event for a framework's subscription stream.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The first event of a subscription.
    Subscribed {
        /// The framework's id.
        framework_id: FrameworkId,
        /// How often the stream carries heartbeats.
        heartbeat_interval: Duration,
        /// The master.
        master_info: MasterInfo,
    },
    /// New offers.
    Offers(Vec<Offer>),
    /// An offer is no longer valid.
    Rescind(OfferId),
    /// A task status update.
    Update(TaskStatus),
    /// Data from an executor.
    Message {
        /// The agent.
        agent_id: AgentId,
        /// The executor.
        executor_id: ExecutorId,
        /// The data (base64).
        data: String,
    },
    /// An agent was lost, or an executor exited.
    Failure {
        /// The agent.
        agent_id: Option<AgentId>,
        /// The executor.
        executor_id: Option<ExecutorId>,
        /// The executor's exit status.
        status: Option<i32>,
    },
    /// The master refuses the framework; the stream ends after this.
    Error(String),
}

/// A durable fact the master asks its shell to store, so a restarted master can recover.
///
/// Stored as JSON with a `"version"` field beside the `"type"` tag (see [`Record::VERSION`]):
/// a record written before the field existed reads as version 1; one from a newer format is
/// refused with an error naming both versions rather than misread.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
// `remote = "Self"`: the derives become `Record::serialize`/`Record::deserialize` functions,
// wrapped by the trait impls below that add and check the version.
#[serde(remote = "Self", tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
// Messages are short-lived and moved, not stored in bulk: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum Record {
    /// An agent was admitted.
    AgentAdmitted {
        /// Its id.
        id: AgentId,
        /// Its hostname.
        hostname: String,
        /// Its address.
        address: Address,
    },
    /// An agent was removed for good.
    AgentRemoved {
        /// Its id.
        id: AgentId,
    },
    /// A framework subscribed (or changed its info).
    FrameworkAdded {
        /// Its id.
        id: FrameworkId,
        /// Its info.
        info: FrameworkInfo,
    },
    /// A framework was removed (teardown or failover timeout).
    FrameworkRemoved {
        /// Its id.
        id: FrameworkId,
    },
    /// The next id counters, so ids are never reused after a restart.
    Counters {
        /// Next framework number.
        next_framework: u64,
        /// Next agent number.
        next_agent: u64,
    },
}

impl Record {
    /// The format version written now. Bump it when a variant's meaning or fields change in a
    /// way old code cannot read, and teach [`Record`]'s `Deserialize` to read the old form.
    pub const VERSION: u32 = 1;
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut json =
            Record::serialize(self, serde_json::value::Serializer).map_err(S::Error::custom)?;
        if let Json::Object(map) = &mut json {
            map.insert("version".into(), Json::from(Record::VERSION));
        }
        json.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Record {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut json = Json::deserialize(deserializer)?;
        let version = match json.as_object_mut().and_then(|m| m.remove("version")) {
            None => 1,
            Some(v) => v
                .as_u64()
                .and_then(|v| u32::try_from(v).ok())
                .ok_or_else(|| D::Error::custom(format!("record version `{v}` is not a number")))?,
        };
        if version == 0 || version > Record::VERSION {
            return Err(D::Error::custom(format!(
                "record version {version} is not supported (this master reads 1 to {})",
                Record::VERSION
            )));
        }
        Record::deserialize(json).map_err(D::Error::custom)
    }
}

/// Something the shell must carry out, drained with [`super::Master::poll_output`].
#[derive(Clone, Debug, PartialEq)]
// Messages are short-lived and moved, not stored in bulk: boxing would only add allocations.
#[allow(clippy::large_enum_variant)]
pub enum Output {
    /// Send an event on the framework's current subscription stream.
    Framework(FrameworkId, Event),
    /// End the framework's stream `stream_id` (teardown, removal, or replaced by a new subscription).
    CloseStream {
        /// The framework.
        framework_id: FrameworkId,
        /// Which stream.
        stream_id: String,
    },
    /// Send a command to an agent.
    Agent(AgentId, AgentCommand),
    /// Store a durable record.
    Persist(Record),
}

/// The answer to a successful SUBSCRIBE: the shell opens the stream under `stream_id`; the
/// SUBSCRIBED event is already queued as output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscription {
    /// The framework's id (new or given back).
    pub framework_id: FrameworkId,
    /// The `Mesos-Stream-Id`.
    pub stream_id: String,
}

/// Why a call was refused; each maps to an HTTP status in the shell.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// 400: the framework id is unknown.
    #[error("framework `{0}` is not known to this master")]
    UnknownFramework(FrameworkId),
    /// 403: the framework is known but has no open subscription.
    #[error("framework `{0}` is not subscribed")]
    NotSubscribed(FrameworkId),
    /// 400: the stream id does not match the framework's subscription.
    #[error("the request's stream id `{given}` does not match the subscription of framework `{framework}`")]
    StreamMismatch {
        /// The framework.
        framework: FrameworkId,
        /// The stream id the request carried.
        given: String,
    },
    /// 400: the call is malformed.
    #[error("invalid {call} call: {reason}")]
    Invalid {
        /// The call type.
        call: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// 403: the framework was removed (torn down or failed over for too long).
    #[error("framework `{0}` has been removed")]
    Removed(FrameworkId),
}

/// Why an agent registration or message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// The agent id is unknown (it must register again).
    #[error("agent `{0}` is not registered with this master")]
    UnknownAgent(AgentId),
    /// The agent was removed (marked gone).
    #[error("agent `{0}` has been removed and may not reregister")]
    Removed(AgentId),
    /// The registration is malformed.
    #[error("invalid agent registration: {0}")]
    Invalid(String),
}

/// Configuration of the master state machine (Mesos' master flags that affect decisions).
#[derive(Clone, Debug)]
pub struct MasterConfig {
    /// Seed for the master id, stream ids and offer ids' randomness.
    pub seed: u64,
    /// The master's address, as it announces itself.
    pub address: Address,
    /// The version it reports.
    pub version: String,
    /// Heartbeat interval of subscription streams (15 s).
    pub heartbeat_interval: Duration,
    /// How long an unanswered offer lives before it is rescinded (`None`: forever).
    pub offer_timeout: Option<Duration>,
    /// The agent ping interval (15 s).
    pub agent_ping_timeout: Duration,
    /// Missed pings before an agent is unreachable (5).
    pub max_agent_ping_timeouts: u32,
    /// How long recovered agents have to reregister after a master restart (10 min).
    pub agent_reregister_timeout: Duration,
    /// Completed tasks kept per framework for `/master/state` (1000).
    pub max_completed_tasks_per_framework: usize,
    /// Completed frameworks kept (50).
    pub max_completed_frameworks: usize,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            seed: 0,
            address: Address {
                hostname: "localhost".into(),
                ip: "127.0.0.1".into(),
                port: 5050,
            },
            version: "1.11.0".into(),
            heartbeat_interval: Duration::from_secs(15),
            offer_timeout: Some(Duration::from_secs(60)),
            agent_ping_timeout: Duration::from_secs(15),
            max_agent_ping_timeouts: 5,
            agent_reregister_timeout: Duration::from_secs(600),
            max_completed_tasks_per_framework: 1000,
            max_completed_frameworks: 50,
        }
    }
}

/// A time a task changed state, for `/master/state`'s `statuses`.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusEntry {
    /// The state.
    pub state: TaskState,
    /// When.
    pub timestamp: Time,
}
