//! Placement: which waiting instances launch on an offer, and why an offer was not used.
//!
//! The daemon hands each offer to [`Placer::process_offer`] as a plain value. The placer walks the
//! apps that have instances waiting, starting one further along the queue at every offer so no
//! app always comes first, and for each app launches as many instances as fit (up to
//! `max_instances_per_offer`), updating the constraint state between them, so two
//! `hostname:UNIQUE` instances never come out of one offer.
//!
//! Each app's check is a funnel in Marathon's order (`NoOfferMatchReason`): role, constraints,
//! cpus, memory, disk, gpus, ports. The first stage that refuses is the reason, recorded with the
//! numbers (which constraint, what was needed and offered, which port). Every app keeps a bounded
//! [`OfferSummary`]: offers processed and unused, counts per reason, and the last reason per agent
//! (the most recent agents only). That is the answer to "why is my app still waiting?".
//!
//! Once launches have left an offer unable to hold even the smallest waiting instance, the apps
//! not yet visited are not checked one by one: each only counts the offer as [`RejectKind::OfferExhausted`]. This
//! keeps an offer's cost proportional to what it launches, not to the length of the queue.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::app::AppDefinition;
use super::path::PathId;
use super::ports::{remove_value, slice_contains, PortRequests, PortShortage};
use crate::constraints::{AgentView, ConstraintTracker};
use crate::ids::{AgentId, OfferId};
use crate::resources::{Name, Range, Ranges, Resource, Resources, Scalar, Value};
use crate::time::Time;

/// An offer as placement sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Offer {
    /// The offer.
    pub id: OfferId,
    /// Its agent.
    pub agent_id: AgentId,
    /// The agent's hostname, attributes and domain.
    pub agent: AgentView,
    /// The offered resources.
    #[serde(with = "resources_json")]
    pub resources: Resources,
}

mod resources_json {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::resources::{JsonFormat, Resources};

    pub(super) fn serialize<S: Serializer>(r: &Resources, s: S) -> Result<S::Ok, S::Error> {
        serde::Serialize::serialize(&r.to_json(JsonFormat::Refined), s)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Resources, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Resources::from_json(&v.to_string()).map_err(serde::de::Error::custom)
    }
}

/// Reason kinds, in Marathon's funnel order, with Marathon's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum RejectKind {
    /// No offered resources of a role the app accepts.
    UnfulfilledRole,
    /// A constraint refused the agent.
    UnfulfilledConstraint,
    /// Not enough cpus.
    InsufficientCpus,
    /// Not enough memory.
    InsufficientMemory,
    /// Not enough disk.
    InsufficientDisk,
    /// Not enough gpus.
    InsufficientGpus,
    /// A fixed host port is not offered, or too few ports are.
    InsufficientPorts,
    /// Earlier launches left less of the offer than the smallest waiting instance needs.
    OfferExhausted,
}

impl RejectKind {
    /// Every kind in funnel order.
    pub const ALL: [RejectKind; 8] = [
        RejectKind::UnfulfilledRole,
        RejectKind::UnfulfilledConstraint,
        RejectKind::InsufficientCpus,
        RejectKind::InsufficientMemory,
        RejectKind::InsufficientDisk,
        RejectKind::InsufficientGpus,
        RejectKind::InsufficientPorts,
        RejectKind::OfferExhausted,
    ];

    /// Marathon's name (`InsufficientCpus`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::UnfulfilledRole => "UnfulfilledRole",
            RejectKind::UnfulfilledConstraint => "UnfulfilledConstraint",
            RejectKind::InsufficientCpus => "InsufficientCpus",
            RejectKind::InsufficientMemory => "InsufficientMemory",
            RejectKind::InsufficientDisk => "InsufficientDisk",
            RejectKind::InsufficientGpus => "InsufficientGpus",
            RejectKind::InsufficientPorts => "InsufficientPorts",
            RejectKind::OfferExhausted => "OfferExhausted",
        }
    }
}

/// Why an app did not launch on an offer, with the numbers.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum NoMatch {
    /// None of the offered resources has a role the app accepts.
    UnfulfilledRole,
    /// The app's constraint at this index refused the agent.
    UnfulfilledConstraint {
        /// Index into the app's `constraints`.
        index: usize,
    },
    /// Not enough cpus.
    InsufficientCpus {
        /// Per instance.
        needed: f64,
        /// Left in the offer.
        offered: f64,
    },
    /// Not enough memory (MiB).
    InsufficientMemory {
        /// Per instance.
        needed: f64,
        /// Left in the offer.
        offered: f64,
    },
    /// Not enough disk (MiB).
    InsufficientDisk {
        /// Per instance.
        needed: f64,
        /// Left in the offer.
        offered: f64,
    },
    /// Not enough gpus.
    InsufficientGpus {
        /// Per instance.
        needed: f64,
        /// Left in the offer.
        offered: f64,
    },
    /// The ports do not fit.
    InsufficientPorts(PortShortage),
    /// Used up by earlier launches.
    OfferExhausted,
}

impl NoMatch {
    /// The reason's kind.
    pub fn kind(&self) -> RejectKind {
        match self {
            NoMatch::UnfulfilledRole => RejectKind::UnfulfilledRole,
            NoMatch::UnfulfilledConstraint { .. } => RejectKind::UnfulfilledConstraint,
            NoMatch::InsufficientCpus { .. } => RejectKind::InsufficientCpus,
            NoMatch::InsufficientMemory { .. } => RejectKind::InsufficientMemory,
            NoMatch::InsufficientDisk { .. } => RejectKind::InsufficientDisk,
            NoMatch::InsufficientGpus { .. } => RejectKind::InsufficientGpus,
            NoMatch::InsufficientPorts(_) => RejectKind::InsufficientPorts,
            NoMatch::OfferExhausted => RejectKind::OfferExhausted,
        }
    }

    /// A sentence for people, naming the constraint of `app` when there is one.
    pub fn describe(&self, app: &AppDefinition) -> String {
        match self {
            NoMatch::UnfulfilledRole => format!(
                "no offered resources for the accepted roles {:?}",
                app_roles(app)
            ),
            NoMatch::UnfulfilledConstraint { index } => match app.constraints.get(*index) {
                Some(c) => format!("constraint {c} is not satisfied"),
                None => "a constraint is not satisfied".to_string(),
            },
            NoMatch::InsufficientCpus { needed, offered } => {
                format!("cpus: need {needed}, offered {offered}")
            }
            NoMatch::InsufficientMemory { needed, offered } => {
                format!("mem: need {needed}, offered {offered}")
            }
            NoMatch::InsufficientDisk { needed, offered } => {
                format!("disk: need {needed}, offered {offered}")
            }
            NoMatch::InsufficientGpus { needed, offered } => {
                format!("gpus: need {needed}, offered {offered}")
            }
            NoMatch::InsufficientPorts(p) => format!("ports: {p}"),
            NoMatch::OfferExhausted => "offer used up by earlier launches".to_string(),
        }
    }
}

/// A bounded account of the offers an app has seen (`/v2/queue` `processedOffersSummary`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferSummary {
    /// Offers the app was checked against.
    pub processed_offers: u64,
    /// Of those, offers it launched nothing on.
    pub unused_offers: u64,
    /// When an offer was last unused.
    pub last_unused_offer_at: Option<Time>,
    /// When an offer was last used.
    pub last_used_offer_at: Option<Time>,
    /// Rejections per kind, indexed like [`RejectKind::ALL`].
    counts: [u64; 8],
    /// The last reason per agent, for the most recent agents.
    last_per_agent: LastReasons,
}

/// The last reason per agent for the [`LAST_REASONS_PER_APP`] most recently seen agents.
///
/// A small array scanned by a precomputed hash of the agent id: the placer hashes an offer's
/// agent once and every app that rejects the offer records with that hash, so recording costs a
/// scan of 64 integers, with no hashing, allocation or reference counting unless the agent is new
/// to this app. The oldest entry (lowest sequence number) makes room.
#[derive(Clone, Debug, Default)]
struct LastReasons {
    seq: u64,
    /// (agent hash, sequence number of the last record, agent, reason)
    entries: Vec<(u64, u64, AgentId, NoMatch)>,
}

/// A stable hash of an agent id (the same in every process, so restored state finds its
/// entries).
fn agent_hash(agent: &AgentId) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    agent.as_str().hash(&mut h);
    h.finish()
}

impl LastReasons {
    fn record(&mut self, agent: &AgentId, hash: u64, why: NoMatch) {
        self.seq += 1;
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.0 == hash && e.2 == *agent)
        {
            e.1 = self.seq;
            e.3 = why;
            return;
        }
        let entry = (hash, self.seq, agent.clone(), why);
        if self.entries.len() < LAST_REASONS_PER_APP {
            self.entries.push(entry);
        } else if let Some(oldest) = self.entries.iter_mut().min_by_key(|e| e.1) {
            *oldest = entry;
        }
    }

    fn get(&self, agent: &AgentId) -> Option<&NoMatch> {
        let hash = agent_hash(agent);
        self.entries
            .iter()
            .find(|e| e.0 == hash && e.2 == *agent)
            .map(|e| &e.3)
    }

    /// Entries, oldest first.
    fn entries(&self) -> Vec<(AgentId, NoMatch)> {
        let mut v: Vec<&(u64, u64, AgentId, NoMatch)> = self.entries.iter().collect();
        v.sort_by_key(|e| e.1);
        v.into_iter().map(|e| (e.2.clone(), e.3)).collect()
    }
}

impl PartialEq for LastReasons {
    fn eq(&self, other: &Self) -> bool {
        self.entries() == other.entries()
    }
}

impl Serialize for LastReasons {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.entries().serialize(s)
    }
}

impl<'de> Deserialize<'de> for LastReasons {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let entries = Vec::<(AgentId, NoMatch)>::deserialize(d)?;
        let mut out = LastReasons::default();
        for (a, why) in entries {
            let hash = agent_hash(&a);
            out.record(&a, hash, why);
        }
        Ok(out)
    }
}

/// How many agents an [`OfferSummary`] remembers a last reason for.
pub const LAST_REASONS_PER_APP: usize = 64;

/// Whether an instance whose task is in `state` counts for its app's constraints: placed and
/// alive (staging, starting, running, killing). Lost, unreachable and finished ones do not; nor
/// do instances of an older version (the caller checks the version).
pub fn counts_for_constraints(state: crate::task::TaskState) -> bool {
    use crate::task::TaskState;
    matches!(
        state,
        TaskState::Staging | TaskState::Starting | TaskState::Running | TaskState::Killing
    )
}

/// One line of the reject funnel: of `processed` offers reaching this stage, `declined` stopped.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunnelStage {
    /// Marathon's reason name.
    pub reason: String,
    /// Offers refused at this stage.
    pub declined: u64,
    /// Offers that reached this stage.
    pub processed: u64,
}

impl OfferSummary {
    fn record(&mut self, now: Time, agent: &AgentId, hash: u64, why: NoMatch) {
        self.processed_offers += 1;
        self.unused_offers += 1;
        self.last_unused_offer_at = Some(now);
        self.counts[why.kind() as usize] += 1;
        self.last_per_agent.record(agent, hash, why);
    }

    fn used(&mut self, now: Time) {
        self.processed_offers += 1;
        self.last_used_offer_at = Some(now);
    }

    /// Rejections of `kind`.
    pub fn count(&self, kind: RejectKind) -> u64 {
        self.counts[kind as usize]
    }

    /// Non-zero rejection counts by kind.
    pub fn counts(&self) -> BTreeMap<RejectKind, u64> {
        RejectKind::ALL
            .iter()
            .filter(|k| self.counts[**k as usize] > 0)
            .map(|k| (*k, self.counts[*k as usize]))
            .collect()
    }

    /// The last reason recorded for `agent`, if it is among the remembered agents.
    pub fn last_reason(&self, agent: &AgentId) -> Option<&NoMatch> {
        self.last_per_agent.get(agent)
    }

    /// The remembered agents and their last reasons, most recent last.
    pub fn last_reasons(&self) -> Vec<(AgentId, NoMatch)> {
        self.last_per_agent.entries()
    }

    /// The most frequent reason so far.
    pub fn top_reason(&self) -> Option<RejectKind> {
        RejectKind::ALL
            .iter()
            .copied()
            .filter(|k| self.counts[*k as usize] > 0)
            .max_by_key(|k| (self.counts[*k as usize], std::cmp::Reverse(*k)))
    }

    /// A sentence answering "why is this app still waiting?", e.g. `12 offers processed, 12
    /// unused; most often InsufficientCpus (12); last: cpus: need 8, offered 2 (agent a1)`.
    pub fn explain(&self, app: &AppDefinition) -> String {
        let mut out = format!(
            "{} offers processed, {} unused",
            self.processed_offers, self.unused_offers
        );
        if let Some(top) = self.top_reason() {
            out.push_str(&format!(
                "; most often {} ({})",
                top.as_str(),
                self.count(top)
            ));
        }
        if let Some((agent, why)) = self.last_per_agent.entries().last() {
            out.push_str(&format!("; last: {} (agent {agent})", why.describe(app)));
        }
        out
    }

    /// Marathon's `rejectSummaryLastOffers`: per stage, offers reaching it and refused there.
    pub fn funnel(&self) -> Vec<FunnelStage> {
        let mut processed = self.unused_offers;
        RejectKind::ALL
            .iter()
            .map(|k| {
                let declined = self.counts[*k as usize];
                let stage = FunnelStage {
                    reason: k.as_str().to_string(),
                    declined,
                    processed,
                };
                processed = processed.saturating_sub(declined);
                stage
            })
            .collect()
    }
}

/// What one launched instance takes from its offer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Launch {
    /// The app.
    pub app: PathId,
    /// The offer used.
    pub offer_id: OfferId,
    /// The agent.
    pub agent_id: AgentId,
    /// The reservation role the resources come from (`*` = unreserved).
    pub reservation_role: Arc<str>,
    /// Cpus.
    pub cpus: f64,
    /// Memory (MiB).
    pub mem: f64,
    /// Disk (MiB).
    pub disk: f64,
    /// Gpus.
    pub gpus: f64,
    /// The host port per port mapping/definition (`None` = no host port).
    pub host_ports: Vec<Option<u32>>,
    /// The reservation role of each port of [`Launch::ports`], in that order; empty when every
    /// port comes from `reservation_role` (the common case, kept allocation-free).
    pub port_roles: Vec<Arc<str>>,
}

impl Launch {
    /// The host ports taken, in order.
    pub fn ports(&self) -> Vec<u32> {
        self.host_ports.iter().flatten().copied().collect()
    }

    /// The resources for the launch operation, allocated to `allocation_role`.
    pub fn resources(&self, allocation_role: &str) -> Resources {
        let mut out = Resources::new();
        let reserved = &*self.reservation_role != "*";
        let mut add = |r: Resource| {
            let r = if reserved {
                r.reserved_to(&self.reservation_role)
            } else {
                r
            };
            out.push(r.allocated_to(allocation_role));
        };
        for (name, v) in [
            ("cpus", self.cpus),
            ("mem", self.mem),
            ("disk", self.disk),
            ("gpus", self.gpus),
        ] {
            if v > 0.0 {
                add(Resource::scalar(name, v));
            }
        }
        for (i, port) in self.ports().into_iter().enumerate() {
            let role = self.port_roles.get(i).unwrap_or(&self.reservation_role);
            let r = Resource::ranges("ports", Ranges::single(u64::from(port), u64::from(port)));
            let r = if &**role != "*" {
                r.reserved_to(role)
            } else {
                r
            };
            out.push(r.allocated_to(allocation_role));
        }
        out
    }
}

/// The outcome of one offer. The launches are already counted as placed, so dropping this
/// without launching them would leave the placer believing in instances that do not exist.
#[must_use = "the launches are counted as placed; launch them (or report them gone)"]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OfferOutcome {
    /// Instances to launch, in order.
    pub launches: Vec<Launch>,
    /// Apps that were checked and launched nothing, with why.
    pub rejections: Vec<(PathId, NoMatch)>,
    /// Apps not checked because the offer was used up first.
    pub exhausted: u32,
}

impl OfferOutcome {
    /// True when nothing launches (the offer should be declined).
    pub fn is_unused(&self) -> bool {
        self.launches.is_empty()
    }
}

/// Placement settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlacementConfig {
    /// Launches per offer and app at most (Marathon's `--max_instances_per_offer`).
    pub max_instances_per_offer: u32,
}

impl Default for PlacementConfig {
    fn default() -> Self {
        PlacementConfig {
            max_instances_per_offer: 100,
        }
    }
}

/// The per-instance needs of one app version, compiled once.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Needs {
    #[serde(with = "millis")]
    cpus: Scalar,
    #[serde(with = "millis")]
    mem: Scalar,
    #[serde(with = "millis")]
    disk: Scalar,
    #[serde(with = "millis")]
    gpus: Scalar,
    ports: PortRequests,
    /// Accepted reservation roles.
    roles: Vec<String>,
}

fn app_roles(app: &AppDefinition) -> Vec<String> {
    if app.accepted_resource_roles.is_empty() {
        let mut v = vec!["*".to_string()];
        if app.role != "*" {
            v.push(app.role.clone());
        }
        v
    } else {
        app.accepted_resource_roles.clone()
    }
}

fn scalar(v: f64) -> Scalar {
    Scalar::from_f64(v).unwrap_or(Scalar::ZERO)
}

impl Needs {
    fn of(app: &AppDefinition) -> Needs {
        Needs {
            cpus: scalar(app.cpus),
            mem: scalar(app.mem),
            disk: scalar(app.disk),
            gpus: Scalar::from_units(i64::from(app.gpus)),
            ports: PortRequests::of(app),
            roles: app_roles(app),
        }
    }
}

/// Offered resources of one reservation role.
#[derive(Clone, Debug)]
struct Pool {
    role: Arc<str>,
    cpus: Scalar,
    mem: Scalar,
    disk: Scalar,
    gpus: Scalar,
    /// Sorted, disjoint; taken ports are removed in place.
    ports: Vec<Range>,
}

fn pools(resources: &Resources) -> Vec<Pool> {
    let mut out: Vec<Pool> = Vec::new();
    for r in resources.iter() {
        let role = r.reservation_role();
        let i = match out.iter().position(|p| &*p.role == role) {
            Some(i) => i,
            None => {
                out.push(Pool {
                    role: Arc::from(role),
                    cpus: Scalar::ZERO,
                    mem: Scalar::ZERO,
                    disk: Scalar::ZERO,
                    gpus: Scalar::ZERO,
                    ports: Vec::new(),
                });
                out.len() - 1
            }
        };
        let p = &mut out[i];
        match (&r.name, &r.value) {
            (Name::Cpus, Value::Scalar(s)) => p.cpus += *s,
            (Name::Mem, Value::Scalar(s)) => p.mem += *s,
            (Name::Disk, Value::Scalar(s)) => p.disk += *s,
            (Name::Gpus, Value::Scalar(s)) => p.gpus += *s,
            (Name::Ports, Value::Ranges(rs)) => {
                if p.ports.is_empty() {
                    p.ports = rs.ranges().to_vec();
                } else {
                    let mut all = Ranges::new(p.ports.iter().copied());
                    all.add(rs);
                    p.ports = all.ranges().to_vec();
                }
            }
            _ => {}
        }
    }
    // Reserved resources first: they are there for this role, so use them before shared ones.
    out.sort_by_key(|p| &*p.role == "*");
    out
}

impl Pool {
    fn check(&self, n: &Needs) -> Result<(), NoMatch> {
        let short = |needed: Scalar, offered: Scalar| needed > offered;
        if short(n.cpus, self.cpus) {
            return Err(NoMatch::InsufficientCpus {
                needed: n.cpus.as_f64(),
                offered: self.cpus.as_f64(),
            });
        }
        if short(n.mem, self.mem) {
            return Err(NoMatch::InsufficientMemory {
                needed: n.mem.as_f64(),
                offered: self.mem.as_f64(),
            });
        }
        if short(n.disk, self.disk) {
            return Err(NoMatch::InsufficientDisk {
                needed: n.disk.as_f64(),
                offered: self.disk.as_f64(),
            });
        }
        if short(n.gpus, self.gpus) {
            return Err(NoMatch::InsufficientGpus {
                needed: n.gpus.as_f64(),
                offered: self.gpus.as_f64(),
            });
        }
        Ok(())
    }
}

/// Scalars stored as their exact thousandths.
mod millis {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::resources::Scalar;

    pub(super) fn serialize<S: Serializer>(v: &Scalar, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(v.millis())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
        i64::deserialize(d).map(Scalar::from_millis)
    }
}

/// One app in the placer.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Slot {
    id: PathId,
    /// The definition placed, to tell a new version (config change) from a scale.
    app: AppDefinition,
    needs: Needs,
    tracker: ConstraintTracker,
    waiting: u32,
    summary: OfferSummary,
    /// The app was removed; the slot only keeps indices stable.
    #[serde(default)]
    removed: bool,
    /// Launch backoff: no launches before this time (offers are not even checked, as in
    /// Marathon; `/v2/queue` shows the delay instead of offer reasons).
    #[serde(default)]
    delayed_until: Time,
}

/// The placement state of every app: what waits, where counted instances sit, and why offers
/// were not used. See the module documentation.
///
/// ```
/// use mesos_core::constraints::AgentView;
/// use mesos_core::ids::{AgentId, OfferId};
/// use mesos_core::marathon::{AppDefinition, Offer, Placer, RejectKind};
/// use mesos_core::resources::Resources;
/// use mesos_core::time::Time;
/// use rand::SeedableRng;
///
/// let app = AppDefinition::from_json(&serde_json::json!({
///     "id": "web", "cmd": "x", "cpus": 1, "mem": 64, "instances": 3,
///     "constraints": [["hostname", "UNIQUE"]]})).unwrap();
/// let mut placer = Placer::default();
/// placer.upsert_app(&app);
/// placer.set_waiting(&app.id, 3);
/// let offer = Offer {
///     id: OfferId::new("o1"), agent_id: AgentId::new("a1"), agent: AgentView::new("h1"),
///     resources: Resources::parse("cpus:4;mem:1024;ports:[31000-32000]").unwrap(),
/// };
/// let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
/// let out = placer.process_offer(&offer, Time::ZERO, &mut rng);
/// assert_eq!(out.launches.len(), 1); // UNIQUE: one per host
/// let again = placer.process_offer(&offer, Time::ZERO, &mut rng);
/// assert!(again.is_unused());
/// let summary = placer.summary(&app.id).unwrap();
/// assert_eq!(summary.count(RejectKind::UnfulfilledConstraint), 1);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "PlacerState", from = "PlacerState")]
pub struct Placer {
    config: PlacementConfig,
    /// The placer's own rng for [`Placer::place`], seeded by the caller.
    rng: ChaCha8Rng,
    slots: Vec<Slot>,
    index: HashMap<PathId, usize>,
    /// Slots with instances waiting, in queue order.
    queue: Vec<usize>,
    cursor: usize,
    /// Per slot: offers it did not see because earlier launches used them up, and the last time.
    exhausted: Vec<(u64, Time)>,
    /// The smallest cpus and mem of the waiting apps, until the queue changes.
    min_cache: Option<(Scalar, Scalar)>,
}

/// What a [`Placer`] stores: everything but lookups and caches, and its rng as seed, stream and
/// position, so a restored placer continues the same random sequence.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PlacerState {
    config: PlacementConfig,
    rng_seed: [u8; 32],
    rng_stream: u64,
    rng_word_pos: u128,
    slots: Vec<Slot>,
    queue: Vec<usize>,
    cursor: usize,
    exhausted: Vec<(u64, Time)>,
}

impl From<Placer> for PlacerState {
    fn from(p: Placer) -> Self {
        PlacerState {
            config: p.config,
            rng_seed: p.rng.get_seed(),
            rng_stream: p.rng.get_stream(),
            rng_word_pos: p.rng.get_word_pos(),
            slots: p.slots,
            queue: p.queue,
            cursor: p.cursor,
            exhausted: p.exhausted,
        }
    }
}

impl From<PlacerState> for Placer {
    fn from(s: PlacerState) -> Self {
        let mut rng = ChaCha8Rng::from_seed(s.rng_seed);
        rng.set_stream(s.rng_stream);
        rng.set_word_pos(s.rng_word_pos);
        let mut index = HashMap::new();
        let mut exhausted = s.exhausted;
        exhausted.resize(s.slots.len(), (0, Time::ZERO));
        for (i, slot) in s.slots.iter().enumerate() {
            if !slot.removed {
                index.insert(slot.id.clone(), i);
            }
        }
        let live: Vec<usize> = index.values().copied().collect();
        let queue = s
            .queue
            .into_iter()
            .filter(|q| live.contains(q) && s.slots[*q].waiting > 0)
            .collect();
        Placer {
            config: s.config,
            rng,
            slots: s.slots,
            index,
            queue,
            cursor: s.cursor,
            exhausted,
            min_cache: None,
        }
    }
}

impl Default for Placer {
    fn default() -> Self {
        Placer::seeded(PlacementConfig::default(), 0)
    }
}

impl Placer {
    /// An empty placer whose own rng (for [`Placer::place`]) starts from seed 0.
    pub fn new(config: PlacementConfig) -> Self {
        Placer::seeded(config, 0)
    }

    /// An empty placer whose own rng (for [`Placer::place`]) starts from `seed`; the daemon
    /// logs the seed so a run can be replayed.
    pub fn seeded(config: PlacementConfig, seed: u64) -> Self {
        Placer {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            slots: Vec::new(),
            index: HashMap::new(),
            queue: Vec::new(),
            cursor: 0,
            exhausted: Vec::new(),
            min_cache: None,
        }
    }

    /// [`Placer::process_offer`] with the placer's own seeded rng.
    pub fn place(&mut self, offer: &Offer, now: Time) -> OfferOutcome {
        let mut rng = self.rng.clone();
        let out = self.process_offer(offer, now, &mut rng);
        self.rng = rng;
        out
    }

    /// Adds an app, or replaces its definition. A new version (any change but `instances`)
    /// starts with nothing counted and a fresh summary: instances of older versions do not count
    /// for constraints, as in Marathon, so a `hostname:UNIQUE` restart can place a new instance
    /// next to an old one (#1425). A scale keeps both.
    pub fn upsert_app(&mut self, app: &AppDefinition) {
        let needs = Needs::of(app);
        match self.index.get(&app.id) {
            Some(&i) => {
                let slot = &mut self.slots[i];
                if !slot.app.same_config(app) {
                    slot.tracker = ConstraintTracker::new(app.constraints.clone());
                    slot.summary = OfferSummary::default();
                    self.exhausted[i] = (0, Time::ZERO);
                }
                slot.app = app.clone();
                slot.needs = needs;
            }
            None => {
                let slot = Slot {
                    id: app.id.clone(),
                    app: app.clone(),
                    needs,
                    tracker: ConstraintTracker::new(app.constraints.clone()),
                    waiting: 0,
                    summary: OfferSummary::default(),
                    removed: false,
                    delayed_until: Time::ZERO,
                };
                // Reuse a removed app's slot, so apps coming and going do not grow the placer.
                let i = match self.slots.iter().position(|s| s.removed) {
                    Some(i) => {
                        self.slots[i] = slot;
                        self.exhausted[i] = (0, Time::ZERO);
                        i
                    }
                    None => {
                        self.slots.push(slot);
                        self.exhausted.push((0, Time::ZERO));
                        self.slots.len() - 1
                    }
                };
                self.index.insert(app.id.clone(), i);
            }
        }
        self.min_cache = None;
    }

    /// Forgets an app.
    pub fn remove_app(&mut self, id: &PathId) {
        if let Some(i) = self.index.remove(id) {
            // Keep indices stable: the slot stays, empty, not queued, marked removed.
            self.slots[i].waiting = 0;
            self.slots[i].removed = true;
            self.queue.retain(|&q| q != i);
            self.min_cache = None;
        }
    }

    /// Sets how many instances of `id` wait for an offer (0 leaves the queue).
    pub fn set_waiting(&mut self, id: &PathId, count: u32) {
        let Some(&i) = self.index.get(id) else {
            return;
        };
        let was = self.slots[i].waiting;
        self.slots[i].waiting = count;
        if was == 0 && count > 0 {
            self.queue.push(i);
            self.min_cache = None;
        } else if was > 0 && count == 0 {
            self.queue.retain(|&q| q != i);
            self.min_cache = None;
        }
    }

    /// Holds back launches of `id` until `until` (from [`super::LaunchBackoff::launch_allowed_at`];
    /// `Time::ZERO` lifts the delay).
    pub fn delay(&mut self, id: &PathId, until: Time) {
        if let Some(&i) = self.index.get(id) {
            self.slots[i].delayed_until = until;
        }
    }

    /// Instances of `id` still waiting.
    pub fn waiting(&self, id: &PathId) -> u32 {
        self.index.get(id).map_or(0, |&i| self.slots[i].waiting)
    }

    /// An instance of `id` (current version) now counts on `agent` for constraints.
    pub fn instance_placed(&mut self, id: &PathId, agent: &AgentView) {
        if let Some(&i) = self.index.get(id) {
            self.slots[i].tracker.add(agent);
        }
    }

    /// An instance of `id` on `agent` no longer counts (terminal, lost, or old version).
    pub fn instance_gone(&mut self, id: &PathId, agent: &AgentView) {
        if let Some(&i) = self.index.get(id) {
            self.slots[i].tracker.remove(agent);
        }
    }

    /// Why `id` is waiting, as far as offers tell.
    pub fn summary(&self, id: &PathId) -> Option<OfferSummary> {
        let &i = self.index.get(id)?;
        let mut s = self.slots[i].summary.clone();
        let (n, at) = self.exhausted[i];
        if n > 0 {
            s.processed_offers += n;
            s.unused_offers += n;
            s.counts[RejectKind::OfferExhausted as usize] += n;
            s.last_unused_offer_at = s.last_unused_offer_at.max(Some(at));
        }
        Some(s)
    }

    /// Clears the summary of `id` (e.g. when a new version is deployed).
    pub fn reset_summary(&mut self, id: &PathId) {
        if let Some(&i) = self.index.get(id) {
            self.slots[i].summary = OfferSummary::default();
            self.exhausted[i] = (0, Time::ZERO);
        }
    }

    /// Decides which waiting instances launch on `offer`. Launched instances leave the queue
    /// and count for their app's constraints at once.
    pub fn process_offer(&mut self, offer: &Offer, now: Time, rng: &mut impl Rng) -> OfferOutcome {
        let mut out = OfferOutcome::default();
        if self.queue.is_empty() {
            return out;
        }
        let mut pools = pools(&offer.resources);
        let n = self.queue.len();
        let start = self.cursor % n;
        self.cursor = self.cursor.wrapping_add(1);
        let (min_cpus, min_mem) = self.queue_minimum();
        let at = OfferAt {
            offer,
            agent: agent_hash(&offer.agent_id),
            now,
        };
        let mut finished = false;
        for k in 0..n {
            let i = self.queue[(start + k) % n];
            self.place_app(i, &at, &mut pools, rng, &mut out);
            finished |= self.slots[i].waiting == 0;
            let exhausted = pools.iter().all(|p| p.cpus < min_cpus || p.mem < min_mem);
            if exhausted
                && !out.launches.is_empty()
                && (min_cpus > Scalar::ZERO || min_mem > Scalar::ZERO)
            {
                // Dense counters: touching every remaining slot would cost more than placing.
                for k2 in k + 1..n {
                    let e = &mut self.exhausted[self.queue[(start + k2) % n]];
                    e.0 += 1;
                    e.1 = now;
                }
                out.exhausted = (n - k - 1) as u32;
                break;
            }
        }
        if finished {
            let slots = &self.slots;
            self.queue.retain(|&q| slots[q].waiting > 0);
            self.min_cache = None;
        }
        out
    }

    /// The smallest cpus and mem any waiting app needs (below both, nobody fits); cached until
    /// the queue changes.
    fn queue_minimum(&mut self) -> (Scalar, Scalar) {
        if let Some(m) = self.min_cache {
            return m;
        }
        let mut m: Option<(Scalar, Scalar)> = None;
        for &i in &self.queue {
            let needs = &self.slots[i].needs;
            m = Some(match m {
                None => (needs.cpus, needs.mem),
                Some((c, mm)) => (c.min(needs.cpus), mm.min(needs.mem)),
            });
        }
        let m = m.unwrap_or((Scalar::ZERO, Scalar::ZERO));
        self.min_cache = Some(m);
        m
    }

    /// Launches instances of slot `i` on the offer while they fit; returns how many.
    fn place_app(
        &mut self,
        i: usize,
        at: &OfferAt<'_>,
        pools: &mut [Pool],
        rng: &mut impl Rng,
        out: &mut OfferOutcome,
    ) -> u32 {
        let OfferAt { offer, agent, now } = *at;
        let max = self.config.max_instances_per_offer;
        let slot = &mut self.slots[i];
        if slot.delayed_until > now {
            return 0;
        }
        let mut launched = 0;
        while slot.waiting > 0 && launched < max {
            match check(slot, offer, pools) {
                Ok((p, source)) => {
                    let host_ports = match slot.needs.ports.assign_in(source.ranges(pools), rng) {
                        Ok(hp) => hp,
                        Err(e) => {
                            // `check` passed, so this cannot happen; report rather than panic.
                            let why = NoMatch::InsufficientPorts(e);
                            out.rejections.push((slot.id.clone(), why));
                            slot.summary.record(now, &offer.agent_id, agent, why);
                            break;
                        }
                    };
                    let mut port_roles: Vec<Arc<str>> = Vec::new();
                    for (k, port) in host_ports.iter().flatten().enumerate() {
                        let port = u64::from(*port);
                        let role = match pools.iter_mut().find(|q| slice_contains(&q.ports, port)) {
                            Some(q) => {
                                remove_value(&mut q.ports, port);
                                q.role.clone()
                            }
                            None => Arc::from("*"),
                        };
                        if port_roles.is_empty() && role != pools[p].role {
                            // First port of another role: spell out the roles so far.
                            port_roles.extend((0..k).map(|_| pools[p].role.clone()));
                        }
                        if !port_roles.is_empty() || role != pools[p].role {
                            port_roles.push(role);
                        }
                    }
                    let pool = &mut pools[p];
                    pool.cpus -= slot.needs.cpus;
                    pool.mem -= slot.needs.mem;
                    pool.disk -= slot.needs.disk;
                    pool.gpus -= slot.needs.gpus;
                    slot.tracker.add(&offer.agent);
                    slot.waiting -= 1;
                    launched += 1;
                    out.launches.push(Launch {
                        app: slot.id.clone(),
                        offer_id: offer.id.clone(),
                        agent_id: offer.agent_id.clone(),
                        reservation_role: pool.role.clone(),
                        cpus: slot.needs.cpus.as_f64(),
                        mem: slot.needs.mem.as_f64(),
                        disk: slot.needs.disk.as_f64(),
                        gpus: slot.needs.gpus.as_f64(),
                        host_ports,
                        port_roles,
                    });
                }
                Err(why) => {
                    if launched == 0 {
                        out.rejections.push((slot.id.clone(), why));
                        slot.summary.record(now, &offer.agent_id, agent, why);
                    }
                    break;
                }
            }
        }
        if launched > 0 {
            slot.summary.used(now);
        }
        launched
    }
}

/// The offer being processed, its agent's hash (computed once for all apps) and the time.
#[derive(Clone, Copy)]
struct OfferAt<'a> {
    offer: &'a Offer,
    agent: u64,
    now: Time,
}

/// Where the ports of one launch come from.
enum PortSource {
    /// The app needs no host port.
    None,
    /// All accepted ports sit in one pool.
    Pool(usize),
    /// Accepted ports of several roles, merged (sorted, disjoint).
    Union(Vec<Range>),
}

impl PortSource {
    fn ranges<'a>(&'a self, pools: &'a [Pool]) -> &'a [Range] {
        match self {
            PortSource::None => &[],
            PortSource::Pool(i) => &pools[*i].ports,
            PortSource::Union(r) => r,
        }
    }
}

/// The funnel for one more instance of `slot`: the pool to take scalars from and where the
/// ports come from, or the first refusal.
fn check(slot: &mut Slot, offer: &Offer, pools: &[Pool]) -> Result<(usize, PortSource), NoMatch> {
    let roles = &slot.needs.roles;
    let accepted = |p: &Pool| roles.iter().any(|r| **r == *p.role);
    if !pools.iter().any(accepted) {
        return Err(NoMatch::UnfulfilledRole);
    }
    if let Some(index) = slot.tracker.first_refusing(&offer.agent) {
        return Err(NoMatch::UnfulfilledConstraint { index });
    }
    let mut first_err = None;
    let mut chosen = None;
    for (p, pool) in pools.iter().enumerate() {
        if !accepted(pool) {
            continue;
        }
        match pool.check(&slot.needs) {
            Ok(()) => {
                chosen = Some(p);
                break;
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    let Some(p) = chosen else {
        return Err(first_err.unwrap_or(NoMatch::UnfulfilledRole));
    };
    if slot.needs.ports.is_empty() {
        return Ok((p, PortSource::None));
    }
    let mut with_ports = pools
        .iter()
        .enumerate()
        .filter(|(_, q)| accepted(q) && !q.ports.is_empty());
    let source = match (with_ports.next(), with_ports.next()) {
        (None, _) => PortSource::Union(Vec::new()),
        (Some((i, _)), None) => PortSource::Pool(i),
        (Some(_), Some(_)) => {
            let all = Ranges::new(
                pools
                    .iter()
                    .filter(|q| accepted(q))
                    .flat_map(|q| q.ports.iter().copied()),
            );
            PortSource::Union(all.ranges().to_vec())
        }
    };
    slot.needs
        .ports
        .check_in(source.ranges(pools))
        .map_err(NoMatch::InsufficientPorts)?;
    Ok((p, source))
}
