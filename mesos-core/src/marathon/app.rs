//! The app definition (`POST /v2/apps` body) with Marathon's field names, defaults,
//! normalisation and validation.
//!
//! [`AppDefinition::from_json`] reads a request in one pass: it accepts both the legacy form
//! (`container.docker.network`, `docker.portMappings`, `ports`) and the canonical one
//! (`networks`, `container.portMappings`, `portDefinitions`), normalises to the canonical one,
//! applies the defaults, and validates. Every problem, type errors included, ends up in one
//! [`ValidationError`] with its JSON path, the way Marathon's 422 lists them.
//!
//! Deliberate differences from Marathon >= 1.5 (see `constraints`): an empty constraint value is
//! "no value" (`["hostname","UNIQUE",""]` is accepted and echoed without the `""`); `cmd` must be
//! non-empty (Marathon's check is `length > 1`, which refuses one-letter commands by accident).
//!
//! ```
//! use mesos_core::marathon::AppDefinition;
//! let app = AppDefinition::from_json(&serde_json::json!({"id": "web", "cmd": "sleep 100"})).unwrap();
//! assert_eq!(app.id.to_string(), "/web");
//! assert_eq!((app.cpus, app.mem, app.instances), (1.0, 128.0, 1));
//! assert_eq!(app.port_definitions.len(), 1); // host networking gets one dynamic port
//! let bad = AppDefinition::from_json(&serde_json::json!({"id": "Web", "cpus": -1})).unwrap_err();
//! assert_eq!(bad.paths(), vec!["/id", "/", "/cpus"]);
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Value as Json};

use super::health::HealthCheck;
use super::path::PathId;
use super::validation::{Reader, ValidationError};
use crate::constraints::Constraint;
use crate::time::Time;

/// Which containerizer runs the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContainerType {
    /// The Docker containerizer.
    Docker,
    /// The Mesos (universal) containerizer.
    Mesos,
}

/// A `docker.parameters` entry (`--key=value` for `docker run`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerParameter {
    /// The option name.
    pub key: String,
    /// The option value.
    pub value: String,
}

/// `container.docker`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Docker {
    /// The image (required for DOCKER containers).
    pub image: String,
    /// Pull the image even when present.
    pub force_pull_image: bool,
    /// Run privileged.
    pub privileged: bool,
    /// Extra `docker run` options.
    pub parameters: Vec<DockerParameter>,
}

/// One `container.portMappings` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PortMapping {
    /// The port inside the container; 0 means "the host port assigned".
    pub container_port: u32,
    /// The host port: `None` = no host port, `Some(0)` = any offered port, else that port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u32>,
    /// The service (load-balancer) port; 0 is replaced at deploy time from 10000-20000.
    pub service_port: u32,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    /// Optional name, unique in the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Networks the mapping applies to (container networking).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_names: Vec<String>,
}

/// `container`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// DOCKER (the legacy default) or MESOS.
    #[serde(rename = "type")]
    pub kind: ContainerType,
    /// Docker settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
    /// Port mappings (bridge and container networking).
    #[serde(default)]
    pub port_mappings: Vec<PortMapping>,
    /// Volumes, kept as given.
    #[serde(default)]
    pub volumes: Vec<Json>,
}

/// A network mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum NetworkMode {
    /// The agent's network namespace.
    #[serde(rename = "host")]
    Host,
    /// Docker's bridge.
    #[serde(rename = "container/bridge")]
    ContainerBridge,
    /// A named container (CNI / user) network.
    #[serde(rename = "container")]
    Container,
}

/// One `networks` entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// The mode.
    pub mode: NetworkMode,
    /// The network name (container mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One `portDefinitions` entry (host networking).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortDefinition {
    /// The service port (0 = assigned at deploy time); also the host port with `requirePorts`.
    pub port: u32,
    /// `tcp`, `udp` or `udp,tcp`.
    pub protocol: String,
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `upgradeStrategy`: how far a rolling restart may dip below and rise above `instances`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpgradeStrategy {
    /// Fraction of `instances` that must stay healthy (1.0).
    pub minimum_health_capacity: f64,
    /// Fraction of `instances` that may run in addition (1.0).
    pub maximum_over_capacity: f64,
}

impl Default for UpgradeStrategy {
    fn default() -> Self {
        UpgradeStrategy {
            minimum_health_capacity: 1.0,
            maximum_over_capacity: 1.0,
        }
    }
}

/// `unreachableStrategy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnreachableStrategy {
    /// `"disabled"`: unreachable instances are never replaced.
    Disabled,
    /// Replace after `inactive_after_seconds`, forget after `expunge_after_seconds`.
    Enabled {
        /// Seconds until an unreachable instance is replaced.
        inactive_after_seconds: u64,
        /// Seconds until its record is expunged.
        expunge_after_seconds: u64,
    },
}

impl Default for UnreachableStrategy {
    fn default() -> Self {
        UnreachableStrategy::Enabled {
            inactive_after_seconds: 0,
            expunge_after_seconds: 0,
        }
    }
}

/// Where an instance on an unreachable agent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnreachablePhase {
    /// Still counted as placed; wait.
    Unreachable,
    /// `inactiveAfterSeconds` passed: no longer counted, a replacement is due.
    Inactive,
    /// `expungeAfterSeconds` passed: forget it, and kill its task if it ever comes back.
    Expunge,
}

impl UnreachableStrategy {
    /// The phase at `now` of an instance unreachable since `since`. With the strategy disabled
    /// (resident apps) it stays [`UnreachablePhase::Unreachable`] for ever.
    ///
    /// ```
    /// use mesos_core::marathon::{UnreachablePhase, UnreachableStrategy};
    /// use mesos_core::time::Time;
    /// let s = UnreachableStrategy::Enabled { inactive_after_seconds: 60, expunge_after_seconds: 600 };
    /// let t = Time::from_secs;
    /// assert_eq!(s.phase(t(0), t(59)), UnreachablePhase::Unreachable);
    /// assert_eq!(s.phase(t(0), t(60)), UnreachablePhase::Inactive);
    /// assert_eq!(s.phase(t(0), t(600)), UnreachablePhase::Expunge);
    /// // The default (0, 0) replaces and forgets at once.
    /// assert_eq!(UnreachableStrategy::default().phase(t(5), t(5)), UnreachablePhase::Expunge);
    /// ```
    pub fn phase(&self, since: Time, now: Time) -> UnreachablePhase {
        match *self {
            UnreachableStrategy::Disabled => UnreachablePhase::Unreachable,
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => {
                let elapsed = now.saturating_duration_since(since);
                if elapsed >= Duration::from_secs(expunge_after_seconds) {
                    UnreachablePhase::Expunge
                } else if elapsed >= Duration::from_secs(inactive_after_seconds) {
                    UnreachablePhase::Inactive
                } else {
                    UnreachablePhase::Unreachable
                }
            }
        }
    }

    /// When the next phase begins for an instance unreachable since `since` (`None` once
    /// expunged, or when disabled): the daemon's timer for this instance.
    pub fn next_deadline(&self, since: Time, now: Time) -> Option<Time> {
        match (*self, self.phase(since, now)) {
            (UnreachableStrategy::Disabled, _) | (_, UnreachablePhase::Expunge) => None,
            (
                UnreachableStrategy::Enabled {
                    inactive_after_seconds,
                    ..
                },
                UnreachablePhase::Unreachable,
            ) => Some(since + Duration::from_secs(inactive_after_seconds)),
            (
                UnreachableStrategy::Enabled {
                    expunge_after_seconds,
                    ..
                },
                UnreachablePhase::Inactive,
            ) => Some(since + Duration::from_secs(expunge_after_seconds)),
        }
    }
}

impl Serialize for UnreachableStrategy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            UnreachableStrategy::Disabled => s.serialize_str("disabled"),
            UnreachableStrategy::Enabled {
                inactive_after_seconds,
                expunge_after_seconds,
            } => json!({"inactiveAfterSeconds": inactive_after_seconds,
                        "expungeAfterSeconds": expunge_after_seconds})
            .serialize(s),
        }
    }
}

/// Which instances go first on scale-down, after the condition order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KillSelection {
    /// Newest first (the default).
    #[default]
    YoungestFirst,
    /// Oldest first.
    OldestFirst,
}

/// An environment value: text or a secret reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EnvValue {
    /// Plain text.
    Value(String),
    /// `{"secret": "name"}`.
    Secret {
        /// The secret's name in `secrets`.
        secret: String,
    },
}

/// An app definition in canonical form (what `GET /v2/apps/{id}` shows of the definition).
///
/// Fields are public so the daemon can apply updates; call [`AppDefinition::validate`] again
/// after changing them.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppDefinition {
    /// Absolute id.
    pub id: PathId,
    /// Shell command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cmd: Option<String>,
    /// Exec-form command.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub args: Option<Vec<String>>,
    /// Unix user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment.
    pub env: BTreeMap<String, EnvValue>,
    /// Number of instances.
    pub instances: u32,
    /// CPUs per instance.
    pub cpus: f64,
    /// Memory per instance (MiB).
    pub mem: f64,
    /// Disk per instance (MiB).
    pub disk: f64,
    /// GPUs per instance.
    pub gpus: u32,
    /// Executor (`""` = command executor).
    pub executor: String,
    /// Placement constraints (all must hold).
    pub constraints: Vec<Constraint>,
    /// URIs to fetch, kept as given.
    pub fetch: Vec<Json>,
    /// First launch delay after a failure, seconds.
    pub backoff_seconds: u64,
    /// Multiplier per further failure.
    pub backoff_factor: f64,
    /// Upper bound of the launch delay, seconds.
    pub max_launch_delay_seconds: u64,
    /// The container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<Container>,
    /// Health checks.
    pub health_checks: Vec<HealthCheck>,
    /// Readiness checks, kept as given.
    pub readiness_checks: Vec<Json>,
    /// Apps (or groups) to deploy first.
    pub dependencies: Vec<PathId>,
    /// Rolling-restart bounds.
    pub upgrade_strategy: UpgradeStrategy,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Roles whose resources may be used (empty = unreserved and the app's role).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_resource_roles: Vec<String>,
    /// The role the app launches under.
    pub role: String,
    /// Host networking: use the port definitions' numbers as host ports.
    pub require_ports: bool,
    /// Host-networking ports (empty for other modes).
    pub port_definitions: Vec<PortDefinition>,
    /// Networks.
    pub networks: Vec<Network>,
    /// Scale-down preference.
    pub kill_selection: KillSelection,
    /// Unreachable handling.
    pub unreachable_strategy: UnreachableStrategy,
    /// Seconds between SIGTERM and SIGKILL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_kill_grace_period_seconds: Option<u64>,
    /// Version timestamp (`2017-01-01T00:00:00.000Z`), set by the daemon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl Default for AppDefinition {
    fn default() -> Self {
        AppDefinition {
            id: PathId::root(),
            cmd: None,
            args: None,
            user: None,
            env: BTreeMap::new(),
            instances: 1,
            cpus: 1.0,
            mem: 128.0,
            disk: 0.0,
            gpus: 0,
            executor: String::new(),
            constraints: Vec::new(),
            fetch: Vec::new(),
            backoff_seconds: 1,
            backoff_factor: 1.15,
            max_launch_delay_seconds: 300,
            container: None,
            health_checks: Vec::new(),
            readiness_checks: Vec::new(),
            dependencies: Vec::new(),
            upgrade_strategy: UpgradeStrategy::default(),
            labels: BTreeMap::new(),
            accepted_resource_roles: Vec::new(),
            role: "*".to_string(),
            require_ports: false,
            port_definitions: Vec::new(),
            networks: vec![Network {
                mode: NetworkMode::Host,
                name: None,
                labels: BTreeMap::new(),
            }],
            kill_selection: KillSelection::YoungestFirst,
            unreachable_strategy: UnreachableStrategy::default(),
            task_kill_grace_period_seconds: None,
            version: None,
        }
    }
}

const PROTOCOLS: [&str; 3] = ["tcp", "udp", "udp,tcp"];

impl AppDefinition {
    /// Reads, normalises and validates a request body; relative ids are taken against `/`.
    pub fn from_json(json: &Json) -> Result<AppDefinition, ValidationError> {
        AppDefinition::from_json_in(json, &PathId::root())
    }

    /// Like [`AppDefinition::from_json`], with relative ids (and dependencies) resolved against
    /// `base` (the enclosing group for `/v2/groups`).
    pub fn from_json_in(json: &Json, base: &PathId) -> Result<AppDefinition, ValidationError> {
        let mut errors = ValidationError::default();
        if !json.is_object() {
            errors.push("/", "error.expected.jsobject");
            return Err(errors);
        }
        let app = read_app(json, base, &mut errors);
        app.check(&mut errors);
        errors.into_result().map(|()| app)
    }

    /// Re-validates an app (e.g. after the daemon applied an update).
    pub fn validate(&self) -> Result<(), ValidationError> {
        let mut errors = ValidationError::default();
        if self.id.is_root() {
            errors.push("/id", "Path must contain at least one path element");
        }
        self.check(&mut errors);
        errors.into_result()
    }

    /// The JSON form (canonical).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    /// The network mode that decides how ports work: the first network's.
    pub fn network_mode(&self) -> NetworkMode {
        self.networks.first().map_or(NetworkMode::Host, |n| n.mode)
    }

    /// The container's port mappings (empty without a container).
    pub fn port_mappings(&self) -> &[PortMapping] {
        self.container
            .as_ref()
            .map_or(&[][..], |c| c.port_mappings.as_slice())
    }

    /// The service ports: `portDefinitions[].port` with host networking, else
    /// `portMappings[].servicePort`.
    pub fn service_ports(&self) -> Vec<u32> {
        if self.network_mode() == NetworkMode::Host {
            self.port_definitions.iter().map(|p| p.port).collect()
        } else {
            self.port_mappings()
                .iter()
                .map(|p| p.service_port)
                .collect()
        }
    }

    /// True when everything but `instances` (and `version`) is the same: a change between two
    /// such definitions is a scale, anything else a restart (`isUpgrade` in Marathon).
    pub fn same_config(&self, other: &AppDefinition) -> bool {
        let strip = |a: &AppDefinition| AppDefinition {
            instances: 0,
            version: None,
            ..a.clone()
        };
        strip(self) == strip(other)
    }

    fn check(&self, e: &mut ValidationError) {
        let both = self.cmd.is_some() && self.args.is_some();
        let none = self.cmd.is_none() && self.args.is_none() && self.container.is_none();
        if both || none {
            e.push(
                "/",
                "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.",
            );
        }
        if self.cmd.as_deref() == Some("") {
            e.push("/cmd", "must not be an empty string");
        }
        for (key, v) in [("cpus", self.cpus), ("mem", self.mem), ("disk", self.disk)] {
            if v.is_nan() || v < 0.0 || v.is_infinite() {
                e.push(
                    format!("/{key}"),
                    format!("got {}, expected 0.0 or more", java_double(v)),
                );
            }
        }
        if let Some(c) = &self.container {
            if c.kind == ContainerType::Docker {
                match &c.docker {
                    None => e.push("/container/docker", "must not be empty"),
                    Some(d) if d.image.is_empty() => {
                        e.push("/container/docker/image", "must not be empty")
                    }
                    Some(_) => {}
                }
            }
            let mut names = BTreeSet::new();
            for (i, pm) in c.port_mappings.iter().enumerate() {
                let at = format!("/container/portMappings({i})");
                if !PROTOCOLS.contains(&pm.protocol.as_str()) {
                    e.push(format!("{at}/protocol"), "is not one of (tcp,udp,udp,tcp)");
                }
                for (k, p) in [
                    ("containerPort", Some(pm.container_port)),
                    ("hostPort", pm.host_port),
                    ("servicePort", Some(pm.service_port)),
                ] {
                    if p.is_some_and(|p| p > 65535) {
                        e.push(
                            format!("{at}/{k}"),
                            "got a port above 65535, expected between 0 and 65535",
                        );
                    }
                }
                if let Some(n) = &pm.name {
                    if !names.insert(n) {
                        e.push("/container/portMappings", "Port names must be unique.");
                    }
                }
            }
        }
        let host = self.network_mode() == NetworkMode::Host;
        if !host && !self.port_definitions.is_empty() {
            e.push(
                "/portDefinitions",
                "portDefinitions are only allowed with host-networking",
            );
        }
        if host && !self.port_mappings().is_empty() {
            e.push(
                "/container/portMappings",
                "portMappings are not allowed with host-networking",
            );
        }
        let mut seen = BTreeSet::new();
        let mut names = BTreeSet::new();
        for (i, pd) in self.port_definitions.iter().enumerate() {
            if pd.port != 0 && !seen.insert(pd.port) {
                e.push("/portDefinitions", "Ports must be unique.");
            }
            if let Some(n) = &pd.name {
                if !names.insert(n) {
                    e.push("/portDefinitions", "Port names must be unique.");
                }
            }
            if !PROTOCOLS.contains(&pd.protocol.as_str()) {
                e.push(
                    format!("/portDefinitions({i})/protocol"),
                    "is not one of (tcp,udp,udp,tcp)",
                );
            }
            if pd.port > 65535 {
                e.push(
                    format!("/portDefinitions({i})/port"),
                    "got a port above 65535, expected between 0 and 65535",
                );
            }
        }
        let u = self.upgrade_strategy;
        for (k, v) in [
            ("minimumHealthCapacity", u.minimum_health_capacity),
            ("maximumOverCapacity", u.maximum_over_capacity),
        ] {
            if !(0.0..=1.0).contains(&v) {
                e.push(
                    format!("/upgradeStrategy/{k}"),
                    format!("got {}, expected between 0.0 and 1.0", java_double(v)),
                );
            }
        }
        if self.backoff_factor.is_nan()
            || self.backoff_factor < 1.0
            || self.backoff_factor.is_infinite()
        {
            e.push(
                "/backoffFactor",
                format!(
                    "got {}, expected 1.0 or more",
                    java_double(self.backoff_factor)
                ),
            );
        }
        let ports = if host {
            self.port_definitions.len()
        } else {
            self.port_mappings().len()
        };
        for (i, hc) in self.health_checks.iter().enumerate() {
            if hc.port_index.is_some_and(|p| p as usize >= ports) {
                e.push(
                    format!("/healthChecks({i})"),
                    "Health check port indices must address an element of the ports array or container port mappings.",
                );
            }
        }
        if let UnreachableStrategy::Enabled {
            inactive_after_seconds: i,
            expunge_after_seconds: x,
        } = self.unreachable_strategy
        {
            if i > x {
                e.push(
                    "/unreachableStrategy",
                    format!("inactiveAfterSeconds ({i}) must be less or equal to expungeAfterSeconds, which is {x}"),
                );
            }
        }
        if self.dependencies.contains(&self.id) {
            e.push("/dependencies", "Dependency graph has cyclic dependencies.");
        }
    }
}

/// A double as Java prints it in messages (`-1.0`, `0.5`), so ours read like Marathon's.
fn java_double(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        v.to_string()
    }
}

fn protocol_or_default(r: &mut Reader<'_, '_>) -> String {
    r.str("protocol").unwrap_or("tcp").to_string()
}

fn read_port(r: &mut Reader<'_, '_>, key: &str) -> Option<u32> {
    let n = r.i64(key)?;
    match u32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            let at = r.path(key);
            r.errors()
                .push(at, format!("got {n}, expected between 0 and 65535"));
            None
        }
    }
}

fn read_port_mappings(
    list: &[Json],
    base: &str,
    bridge: bool,
    e: &mut ValidationError,
) -> Vec<PortMapping> {
    list.iter()
        .enumerate()
        .map(|(i, pm)| {
            let mut r = Reader::new(pm, &format!("{base}({i})"), e);
            let mut host_port = read_port(&mut r, "hostPort");
            if host_port.is_none() && bridge {
                // BRIDGE mode always maps a host port; absent means "any".
                host_port = Some(0);
            }
            PortMapping {
                container_port: read_port(&mut r, "containerPort").unwrap_or(0),
                host_port,
                service_port: read_port(&mut r, "servicePort").unwrap_or(0),
                protocol: protocol_or_default(&mut r),
                name: r.str("name").map(str::to_string),
                labels: r.string_map("labels").unwrap_or_default(),
                network_names: r.strings("networkNames").unwrap_or_default(),
            }
        })
        .collect()
}

fn read_app(json: &Json, base: &PathId, e: &mut ValidationError) -> AppDefinition {
    let mut app = AppDefinition::default();
    let mut r = Reader::new(json, "", e);
    match r.str("id") {
        Some(id) => match PathId::parse(id, base) {
            Ok(p) => app.id = p,
            Err(msgs) => msgs.into_iter().for_each(|m| r.errors().push("/id", m)),
        },
        None if !r.has("id") => r.errors().push("/id", "error.path.missing"),
        None => {}
    }
    app.cmd = r.str("cmd").map(str::to_string);
    app.args = r.strings("args");
    app.user = r.str("user").map(str::to_string);
    if let Some(env) = r.object("env").and_then(Json::as_object) {
        for (k, v) in env {
            let value = match v {
                Json::String(s) => Some(EnvValue::Value(s.clone())),
                Json::Object(o) => {
                    o.get("secret")
                        .and_then(Json::as_str)
                        .map(|s| EnvValue::Secret {
                            secret: s.to_string(),
                        })
                }
                _ => None,
            };
            match value {
                Some(v) => {
                    app.env.insert(k.clone(), v);
                }
                None => r
                    .errors()
                    .push(format!("/env/{k}"), "error.expected.jsstring"),
            }
        }
    }
    if let Some(n) = r.i64("instances") {
        match u32::try_from(n) {
            Ok(n) => app.instances = n,
            Err(_) => r
                .errors()
                .push("/instances", format!("got {n}, expected 0 or more")),
        }
    }
    for (key, slot) in [
        ("cpus", &mut app.cpus),
        ("mem", &mut app.mem),
        ("disk", &mut app.disk),
    ] {
        if let Some(v) = r.f64(key) {
            *slot = v;
        }
    }
    if let Some(n) = r.i64("gpus") {
        match u32::try_from(n) {
            Ok(n) => app.gpus = n,
            Err(_) => r
                .errors()
                .push("/gpus", format!("got {n}, expected 0 or more")),
        }
    }
    if let Some(x) = r.str("executor") {
        app.executor = x.to_string();
    }
    if let Some(list) = r.array("constraints") {
        for (i, c) in list.iter().enumerate() {
            match Constraint::from_json(c) {
                Ok(c) => {
                    if !app.constraints.contains(&c) {
                        app.constraints.push(c);
                    }
                }
                Err(err) => r
                    .errors()
                    .push(format!("/constraints({i})"), err.to_string()),
            }
        }
    }
    if let Some(f) = r.array("fetch") {
        app.fetch = f.clone();
    } else if let Some(uris) = r.strings("uris") {
        app.fetch = uris.into_iter().map(|u| json!({"uri": u})).collect();
    }
    for (key, slot) in [
        ("backoffSeconds", &mut app.backoff_seconds),
        ("maxLaunchDelaySeconds", &mut app.max_launch_delay_seconds),
    ] {
        if let Some(n) = r.i64(key) {
            match u64::try_from(n) {
                Ok(n) => *slot = n,
                Err(_) => r
                    .errors()
                    .push(format!("/{key}"), format!("got {n}, expected 0 or more")),
            }
        }
    }
    if let Some(f) = r.f64("backoffFactor") {
        app.backoff_factor = f;
    }
    if let Some(n) = r.i64("taskKillGracePeriodSeconds") {
        app.task_kill_grace_period_seconds = u64::try_from(n).ok();
    }
    app.version = r.str("version").map(str::to_string);
    if let Some(role) = r.str("role") {
        app.role = role.to_string();
    }
    app.accepted_resource_roles = r.strings("acceptedResourceRoles").unwrap_or_default();
    app.labels = r.string_map("labels").unwrap_or_default();
    if let Some(ks) = r.str("killSelection") {
        match ks {
            "YOUNGEST_FIRST" => app.kill_selection = KillSelection::YoungestFirst,
            "OLDEST_FIRST" => app.kill_selection = KillSelection::OldestFirst,
            _ => r.errors().push(
                "/killSelection",
                "is not one of (YOUNGEST_FIRST, OLDEST_FIRST)",
            ),
        }
    }
    if let Some(us) = r.object("upgradeStrategy") {
        let mut ur = Reader::new(us, "/upgradeStrategy", r.errors());
        if let Some(v) = ur.f64("minimumHealthCapacity") {
            app.upgrade_strategy.minimum_health_capacity = v;
        }
        if let Some(v) = ur.f64("maximumOverCapacity") {
            app.upgrade_strategy.maximum_over_capacity = v;
        }
    }
    match r.raw("unreachableStrategy") {
        Some(Json::String(s)) if s == "disabled" => {
            app.unreachable_strategy = UnreachableStrategy::Disabled
        }
        Some(v @ Json::Object(_)) => {
            let mut ur = Reader::new(v, "/unreachableStrategy", r.errors());
            let mut get = |k: &str| {
                let n = ur.i64(k)?;
                u64::try_from(n).ok()
            };
            app.unreachable_strategy = UnreachableStrategy::Enabled {
                inactive_after_seconds: get("inactiveAfterSeconds").unwrap_or(0),
                expunge_after_seconds: get("expungeAfterSeconds").unwrap_or(0),
            };
        }
        Some(_) => r
            .errors()
            .push("/unreachableStrategy", "error.expected.jsobject"),
        None => {}
    }
    if let Some(deps) = r.strings("dependencies") {
        for (i, d) in deps.iter().enumerate() {
            match PathId::parse(d, base) {
                Ok(p) => app.dependencies.push(p),
                Err(msgs) => msgs
                    .into_iter()
                    .for_each(|m| r.errors().push(format!("/dependencies({i})"), m)),
            }
        }
    }
    if let Some(rc) = r.array("readinessChecks") {
        app.readiness_checks = rc.clone();
        if rc.len() > 1 {
            r.errors()
                .push("/readinessChecks", "must have at most 1 element");
        }
    }

    // Networks: canonical `networks`, or legacy `container.docker.network`.
    let container_json = r.object("container");
    let docker_json = container_json
        .and_then(|c| c.get("docker"))
        .filter(|d| d.is_object());
    let legacy_network = docker_json
        .and_then(|d| d.get("network"))
        .and_then(Json::as_str);
    if let Some(list) = r.array("networks") {
        app.networks.clear();
        for (i, n) in list.iter().enumerate() {
            let mut nr = Reader::new(n, &format!("/networks({i})"), r.errors());
            let mode = match nr.str("mode").unwrap_or("container") {
                "host" => NetworkMode::Host,
                "container/bridge" => NetworkMode::ContainerBridge,
                "container" => NetworkMode::Container,
                _ => {
                    let at = nr.path("mode");
                    nr.errors()
                        .push(at, "is not one of (host, container/bridge, container)");
                    NetworkMode::Host
                }
            };
            app.networks.push(Network {
                mode,
                name: nr.str("name").map(str::to_string),
                labels: nr.string_map("labels").unwrap_or_default(),
            });
        }
        if app.networks.is_empty() {
            app.networks = AppDefinition::default().networks;
        }
        if legacy_network.is_some() {
            r.errors().push(
                "/",
                "must not specify both container.docker.network and networks",
            );
        }
    } else if let Some(net) = legacy_network {
        let mode = match net {
            "BRIDGE" => Some(NetworkMode::ContainerBridge),
            "HOST" | "NONE" => Some(NetworkMode::Host),
            "USER" => Some(NetworkMode::Container),
            _ => None,
        };
        match mode {
            Some(mode) => {
                app.networks = vec![Network {
                    mode,
                    name: None,
                    labels: BTreeMap::new(),
                }]
            }
            None => r.errors().push(
                "/container/docker/network",
                "is not one of (BRIDGE, HOST, USER, NONE)",
            ),
        }
    }
    let bridge = app.network_mode() == NetworkMode::ContainerBridge;

    if let Some(cj) = container_json {
        let mut cr = Reader::new(cj, "/container", r.errors());
        let kind = match cr.str("type").unwrap_or("DOCKER") {
            "MESOS" => ContainerType::Mesos,
            "DOCKER" => ContainerType::Docker,
            _ => {
                cr.errors()
                    .push("/container/type", "is not one of (DOCKER, MESOS)");
                ContainerType::Docker
            }
        };
        let mut docker = None;
        let mut legacy_mappings = None;
        if let Some(dj) = cr.object("docker") {
            let mut dr = Reader::new(dj, "/container/docker", cr.errors());
            let mut parameters = Vec::new();
            if let Some(ps) = dr.array("parameters") {
                for (i, p) in ps.iter().enumerate() {
                    let mut pr = Reader::new(
                        p,
                        &format!("/container/docker/parameters({i})"),
                        dr.errors(),
                    );
                    parameters.push(DockerParameter {
                        key: pr.str("key").unwrap_or_default().to_string(),
                        value: pr.str("value").unwrap_or_default().to_string(),
                    });
                }
            }
            docker = Some(Docker {
                image: dr.str("image").unwrap_or_default().to_string(),
                force_pull_image: dr.bool("forcePullImage").unwrap_or(false),
                privileged: dr.bool("privileged").unwrap_or(false),
                parameters,
            });
            legacy_mappings = dr.array("portMappings");
        }
        let canonical_mappings = cr.array("portMappings");
        let port_mappings = match (canonical_mappings, legacy_mappings) {
            (Some(_), Some(_)) => {
                cr.errors().push(
                    "/container",
                    "cannot specify both portMappings and docker.portMappings",
                );
                Vec::new()
            }
            (Some(list), None) => {
                read_port_mappings(list, "/container/portMappings", bridge, cr.errors())
            }
            (None, Some(list)) => {
                read_port_mappings(list, "/container/docker/portMappings", bridge, cr.errors())
            }
            (None, None) => Vec::new(),
        };
        let volumes = cr.array("volumes").cloned().unwrap_or_default();
        app.container = Some(Container {
            kind,
            docker,
            port_mappings,
            volumes,
        });
    }

    // Ports: `portDefinitions`, or legacy `ports`, or the default single dynamic port.
    let host = app.network_mode() == NetworkMode::Host;
    if let Some(list) = r.array("portDefinitions") {
        for (i, pd) in list.iter().enumerate() {
            let mut pr = Reader::new(pd, &format!("/portDefinitions({i})"), r.errors());
            app.port_definitions.push(PortDefinition {
                port: read_port(&mut pr, "port").unwrap_or(0),
                protocol: protocol_or_default(&mut pr),
                name: pr.str("name").map(str::to_string),
                labels: pr.string_map("labels").unwrap_or_default(),
            });
        }
        if r.has("ports") {
            r.errors()
                .push("/", "cannot specify both ports and port definitions");
        }
    } else if let Some(list) = r.array("ports") {
        let mut seen = BTreeSet::new();
        for (i, p) in list.iter().enumerate() {
            match p.as_u64().and_then(|p| u32::try_from(p).ok()) {
                Some(port) => {
                    if port != 0 && !seen.insert(port) {
                        r.errors().push("/ports", "ports must be unique");
                    }
                    app.port_definitions.push(PortDefinition {
                        port,
                        protocol: "tcp".to_string(),
                        name: None,
                        labels: BTreeMap::new(),
                    });
                }
                None => r
                    .errors()
                    .push(format!("/ports({i})"), "error.expected.int"),
            }
        }
    } else if host {
        app.port_definitions.push(PortDefinition {
            port: 0,
            protocol: "tcp".to_string(),
            name: Some("default".to_string()),
            labels: BTreeMap::new(),
        });
    }
    if !host && r.raw("portDefinitions").is_none() {
        // Legacy `ports` next to BRIDGE are ignored by Marathon's normalisation.
        app.port_definitions.clear();
    }
    app.require_ports = host && r.bool("requirePorts").unwrap_or(false);

    if let Some(list) = r.array("healthChecks") {
        for (i, hc) in list.iter().enumerate() {
            app.health_checks.push(HealthCheck::read(
                hc,
                &format!("/healthChecks({i})"),
                r.errors(),
            ));
        }
    }
    app
}

impl<'de> Deserialize<'de> for AppDefinition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        AppDefinition::from_json(&json).map_err(serde::de::Error::custom)
    }
}
