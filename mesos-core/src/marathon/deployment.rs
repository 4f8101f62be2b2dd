//! Deployment plans: from the current apps to the target apps, as ordered steps.
//!
//! Marathon (`DeploymentPlan.apply`) stops removed apps first, then "starts" new apps at zero
//! instances, then scales or restarts the changed apps grouped by dependency depth: apps without
//! dependencies first, then those whose longest dependency chain is one longer, and so on. The
//! actions of one step run in parallel; a step starts when the previous one finished. A
//! dependency cycle cannot be ordered, so it is a validation error that names the cycle.
//!
//! [`propose_scaling`] picks the instances to kill on scale-down and [`RollingRestart`] paces a
//! restart between `minimumHealthCapacity` and `maximumOverCapacity`.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};

use super::app::{AppDefinition, KillSelection, UpgradeStrategy};
use super::path::PathId;
use crate::constraints::{select_instances_to_kill, AgentView};
use crate::task::TaskState;
use crate::time::Time;

/// One action of a step (`{"action":"ScaleApplication","app":"/x"}` on the wire).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action")]
pub enum DeploymentAction {
    /// A new app, created with zero instances.
    StartApplication {
        /// The app.
        app: PathId,
    },
    /// A removed app: kill all its instances.
    StopApplication {
        /// The app.
        app: PathId,
    },
    /// Scale to the target's `instances`.
    ScaleApplication {
        /// The app.
        app: PathId,
        /// Target instances.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instances: Option<u32>,
    },
    /// Replace every instance with the new version (rolling).
    RestartApplication {
        /// The app.
        app: PathId,
    },
}

impl DeploymentAction {
    /// The app acted on.
    pub fn app(&self) -> &PathId {
        match self {
            DeploymentAction::StartApplication { app }
            | DeploymentAction::StopApplication { app }
            | DeploymentAction::ScaleApplication { app, .. }
            | DeploymentAction::RestartApplication { app } => app,
        }
    }

    /// Marathon's action name.
    pub fn name(&self) -> &'static str {
        match self {
            DeploymentAction::StartApplication { .. } => "StartApplication",
            DeploymentAction::StopApplication { .. } => "StopApplication",
            DeploymentAction::ScaleApplication { .. } => "ScaleApplication",
            DeploymentAction::RestartApplication { .. } => "RestartApplication",
        }
    }
}

/// Actions that run in parallel.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentStep {
    /// The actions.
    pub actions: Vec<DeploymentAction>,
}

/// A plan could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The dependencies form a cycle.
    #[error("Dependency graph has cyclic dependencies: {}", render_cycle(.cycle))]
    Cycle {
        /// The apps on the cycle, in dependency order, the first repeated at the end.
        cycle: Vec<PathId>,
    },
}

fn render_cycle(cycle: &[PathId]) -> String {
    cycle
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" -> ")
}

/// Ordered steps from the current apps to the target apps.
///
/// ```
/// use std::collections::BTreeMap;
/// use mesos_core::marathon::{AppDefinition, DeploymentPlan};
/// let app = AppDefinition::from_json(&serde_json::json!({"id": "x", "cmd": "y", "instances": 2})).unwrap();
/// let target = BTreeMap::from([(app.id.clone(), app)]);
/// let plan = DeploymentPlan::new(&BTreeMap::new(), &target).unwrap();
/// assert_eq!(
///     serde_json::to_value(&plan.steps).unwrap(),
///     serde_json::json!([{"actions":[{"action":"StartApplication","app":"/x"}]},
///                        {"actions":[{"action":"ScaleApplication","app":"/x","instances":2}]}]));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct DeploymentPlan {
    /// The steps, in order; empty steps are dropped.
    pub steps: Vec<DeploymentStep>,
}

impl DeploymentPlan {
    /// Plans the change from `original` to `target` (apps by id).
    pub fn new(
        original: &BTreeMap<PathId, AppDefinition>,
        target: &BTreeMap<PathId, AppDefinition>,
    ) -> Result<DeploymentPlan, PlanError> {
        let order = dependency_depths(target)?;
        let mut steps = Vec::new();
        let stops: Vec<DeploymentAction> = original
            .keys()
            .filter(|id| !target.contains_key(*id))
            .map(|id| DeploymentAction::StopApplication { app: id.clone() })
            .collect();
        steps.push(DeploymentStep { actions: stops });
        let starts: Vec<DeploymentAction> = target
            .keys()
            .filter(|id| !original.contains_key(*id))
            .map(|id| DeploymentAction::StartApplication { app: id.clone() })
            .collect();
        steps.push(DeploymentStep { actions: starts });
        let mut by_depth: BTreeMap<usize, Vec<DeploymentAction>> = BTreeMap::new();
        for (id, app) in target {
            let action = match original.get(id) {
                None => Some(DeploymentAction::ScaleApplication {
                    app: id.clone(),
                    instances: Some(app.instances),
                }),
                Some(old) if old.same_config(app) || app.instances == 0 => (old.instances
                    != app.instances
                    || (app.instances == 0 && !old.same_config(app)))
                .then(|| DeploymentAction::ScaleApplication {
                    app: id.clone(),
                    instances: Some(app.instances),
                }),
                Some(_) => Some(DeploymentAction::RestartApplication { app: id.clone() }),
            };
            if let Some(a) = action {
                let depth = order.get(id).copied().unwrap_or(1);
                by_depth.entry(depth).or_default().push(a);
            }
        }
        steps.extend(
            by_depth
                .into_values()
                .map(|actions| DeploymentStep { actions }),
        );
        steps.retain(|s| !s.actions.is_empty());
        Ok(DeploymentPlan { steps })
    }

    /// A plan that restarts one app (`POST /v2/apps/{id}/restart`).
    pub fn restart(app: &PathId) -> DeploymentPlan {
        DeploymentPlan {
            steps: vec![DeploymentStep {
                actions: vec![DeploymentAction::RestartApplication { app: app.clone() }],
            }],
        }
    }

    /// The apps any step touches.
    pub fn affected_apps(&self) -> BTreeSet<PathId> {
        self.steps
            .iter()
            .flat_map(|s| s.actions.iter().map(|a| a.app().clone()))
            .collect()
    }
}

/// Each target app's dependency depth: 1 without dependencies, else 1 + the deepest dependency.
/// A dependency on a group means every app inside it; dependencies on nothing are ignored.
pub fn dependency_depths(
    apps: &BTreeMap<PathId, AppDefinition>,
) -> Result<BTreeMap<PathId, usize>, PlanError> {
    let mut graph: DiGraph<&PathId, ()> = DiGraph::new();
    let nodes: HashMap<&PathId, NodeIndex> =
        apps.keys().map(|id| (id, graph.add_node(id))).collect();
    for (id, app) in apps {
        for dep in &app.dependencies {
            for (other, n) in &nodes {
                if *other == dep || other.is_child_of(dep) {
                    graph.update_edge(nodes[id], *n, ());
                }
            }
        }
    }
    let sorted = match toposort(&graph, None) {
        Ok(s) => s,
        Err(_) => {
            return Err(PlanError::Cycle {
                cycle: find_cycle(&graph),
            })
        }
    };
    // Edges point at dependencies, so dependencies come later in `sorted`.
    let mut depth: HashMap<NodeIndex, usize> = HashMap::new();
    for n in sorted.iter().rev() {
        let d = graph
            .neighbors(*n)
            .map(|m| depth.get(&m).copied().unwrap_or(1))
            .max()
            .map_or(1, |d| d + 1);
        depth.insert(*n, d);
    }
    Ok(nodes
        .iter()
        .map(|(id, n)| ((*id).clone(), depth.get(n).copied().unwrap_or(1)))
        .collect())
}

fn find_cycle(graph: &DiGraph<&PathId, ()>) -> Vec<PathId> {
    let sccs = tarjan_scc(graph);
    let Some(scc) = sccs
        .into_iter()
        .filter(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
        .min_by_key(|c| c.iter().map(|n| graph[*n].clone()).min())
    else {
        return Vec::new();
    };
    let members: BTreeSet<NodeIndex> = scc.iter().copied().collect();
    // Start at the smallest id for a stable message, then follow edges inside the component.
    let Some(start) = scc.iter().copied().min_by_key(|n| graph[*n].clone()) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut seen = BTreeSet::from([start]);
    let mut cur = start;
    loop {
        let mut next: Vec<NodeIndex> = graph
            .neighbors(cur)
            .filter(|m| members.contains(m))
            .collect();
        next.sort_by_key(|m| graph[*m].clone());
        let Some(m) = next
            .iter()
            .copied()
            .find(|m| *m == start || !seen.contains(m))
        else {
            break;
        };
        path.push(m);
        if m == start || !seen.insert(m) {
            break;
        }
        cur = m;
    }
    if path.last() != Some(&start) {
        // Close the loop at the first repeated node.
        if let Some(&last) = path.last() {
            if let Some(i) = path.iter().position(|n| *n == last) {
                path = path[i..].to_vec();
            }
        }
    }
    path.into_iter().map(|n| graph[n].clone()).collect()
}

/// An instance as scale-down sees it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceView {
    /// The instance (or task) id.
    pub id: String,
    /// The Mesos state of its task; `None` while not launched yet.
    pub state: Option<TaskState>,
    /// When it entered that state (staged, started, became active).
    pub since: Time,
    /// Where it runs.
    pub agent: AgentView,
}

/// Marathon's kill preference by state: unreachable, staging, starting, running, then the rest.
/// Instances not launched yet go first of all: killing them costs nothing.
pub fn kill_weight(state: Option<TaskState>) -> u8 {
    match state {
        None => 0,
        Some(TaskState::Unreachable) => 1,
        Some(TaskState::Staging) => 2,
        Some(TaskState::Starting) => 3,
        Some(TaskState::Running) => 4,
        Some(_) => 5,
    }
}

/// Sorts instances into kill order: by [`kill_weight`], then youngest (or oldest) first.
pub fn sort_for_kill(instances: &mut [InstanceView], selection: KillSelection) {
    instances.sort_by(|a, b| {
        kill_weight(a.state)
            .cmp(&kill_weight(b.state))
            .then_with(|| match selection {
                KillSelection::YoungestFirst => b.since.cmp(&a.since),
                KillSelection::OldestFirst => a.since.cmp(&b.since),
            })
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// What a scale step must do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScalingProposition {
    /// Instance ids to kill, in order.
    pub to_kill: Vec<String>,
    /// New instances to queue.
    pub to_start: u32,
}

/// Scale `running` (instances that count: goal running, not unreachable-inactive) to
/// `scale_to`, killing `sentenced` first, then instances chosen to keep GROUP_BY groups even,
/// then by kill order (`ScalingProposition.propose`).
///
/// ```
/// use mesos_core::constraints::AgentView;
/// use mesos_core::marathon::{propose_scaling, InstanceView, KillSelection};
/// use mesos_core::task::TaskState;
/// use mesos_core::time::Time;
/// let i = |id: &str, s: TaskState, t: u64| InstanceView {
///     id: id.into(), state: Some(s), since: Time::from_secs(t), agent: AgentView::new("h") };
/// let running = [i("old", TaskState::Running, 1), i("new", TaskState::Running, 9), i("st", TaskState::Staging, 5)];
/// let p = propose_scaling(&running, &[], &[], 1, KillSelection::YoungestFirst);
/// assert_eq!(p.to_kill, ["st", "new"]);
/// assert_eq!(p.to_start, 0);
/// ```
pub fn propose_scaling(
    running: &[InstanceView],
    sentenced: &[String],
    constraints: &[crate::constraints::Constraint],
    scale_to: u32,
    selection: KillSelection,
) -> ScalingProposition {
    let count = running.len();
    let mut sentenced: Vec<&String> = sentenced
        .iter()
        .filter(|s| running.iter().any(|r| &r.id == *s))
        .collect();
    let mut seen = BTreeSet::new();
    sentenced.retain(|s| seen.insert(*s));
    let decommission = count.saturating_sub(scale_to as usize).max(sentenced.len());
    let mut to_kill: Vec<String> = sentenced.iter().map(|s| (*s).clone()).collect();
    let mut rest: Vec<InstanceView> = running
        .iter()
        .filter(|r| !sentenced.contains(&&r.id))
        .cloned()
        .collect();
    sort_for_kill(&mut rest, selection);
    let agents: Vec<&AgentView> = rest.iter().map(|r| &r.agent).collect();
    for i in select_instances_to_kill(constraints, &agents, decommission - to_kill.len()) {
        to_kill.push(rest[i].id.clone());
    }
    let remaining = count - to_kill.len();
    ScalingProposition {
        to_kill,
        to_start: (scale_to as usize).saturating_sub(remaining) as u32,
    }
}

/// What a rolling restart should do now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartActions {
    /// Old instances to kill now (unhealthy ones first).
    pub kill_old: u32,
    /// New instances to launch now.
    pub start_new: u32,
}

/// Paces a rolling restart (`TaskReplaceActor`): never fewer than `minimumHealthCapacity` of
/// the instances healthy, never more than `1 + maximumOverCapacity` of them alive (instances
/// being killed count until they are gone).
///
/// Drive it with the events the daemon sees: [`RollingRestart::new_healthy`] when a new-version
/// instance becomes healthy (and ready), [`RollingRestart::old_terminated`] when an old one is
/// gone; after each, take [`RollingRestart::poll`]'s actions.
///
/// ```
/// use mesos_core::marathon::{RollingRestart, UpgradeStrategy};
/// // 3 healthy instances, {min 0.5, max 0}: kill 1 old; start 1 new once it is gone.
/// let s = UpgradeStrategy { minimum_health_capacity: 0.5, maximum_over_capacity: 0.0 };
/// let mut r = RollingRestart::new(3, 3, 0, s, false);
/// assert_eq!((r.min_healthy(), r.max_capacity()), (2, 3));
/// let a = r.poll();
/// assert_eq!((a.kill_old, a.start_new), (1, 0));
/// r.old_terminated();
/// assert_eq!(r.poll().start_new, 1);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollingRestart {
    target: u32,
    min_healthy: u32,
    max_capacity: u32,
    /// Old instances alive and not yet told to die, healthy ones.
    old_healthy: u32,
    /// Old instances alive and not yet told to die, unhealthy ones.
    old_unhealthy: u32,
    /// Old instances told to die, not gone yet.
    old_killing: u32,
    /// New instances launched, not healthy yet.
    new_pending: u32,
    /// New instances healthy.
    new_healthy: u32,
    /// Kills decided but not yet handed out by `poll`.
    kill_queue: u32,
}

impl RollingRestart {
    /// Starts a restart to `target` instances from `old_healthy` + `old_unhealthy` old ones.
    /// `resident` apps (local volumes) cannot start a replacement before the old one is gone.
    pub fn new(
        target: u32,
        old_healthy: u32,
        old_unhealthy: u32,
        strategy: UpgradeStrategy,
        resident: bool,
    ) -> RollingRestart {
        let n = f64::from(target);
        let min_healthy = (n * strategy.minimum_health_capacity.clamp(0.0, 1.0)).ceil() as u32;
        let mut max_capacity =
            (n * (1.0 + strategy.maximum_over_capacity.clamp(0.0, 1.0))).floor() as u32;
        let mut kill_now = old_healthy.saturating_sub(min_healthy);
        if min_healthy == max_capacity && max_capacity <= old_healthy {
            if resident {
                kill_now = old_healthy - min_healthy + 1;
            } else {
                max_capacity += 1;
            }
        }
        let old = old_healthy + old_unhealthy;
        if target < old {
            kill_now = kill_now.max(old - target);
        }
        // Unhealthy old instances go first; they do not count as healthy anyway.
        let kill_now = kill_now.max(old_unhealthy).min(old);
        RollingRestart {
            target,
            min_healthy,
            max_capacity,
            old_healthy,
            old_unhealthy,
            old_killing: 0,
            new_pending: 0,
            new_healthy: 0,
            kill_queue: kill_now,
        }
    }

    /// `ceil(instances × minimumHealthCapacity)`.
    pub fn min_healthy(&self) -> u32 {
        self.min_healthy
    }

    /// `floor(instances × (1 + maximumOverCapacity))`, plus one when that equals the minimum.
    pub fn max_capacity(&self) -> u32 {
        self.max_capacity
    }

    /// Instances alive now (old ones being killed included).
    pub fn alive(&self) -> u32 {
        self.old_healthy
            + self.old_unhealthy
            + self.old_killing
            + self.new_pending
            + self.new_healthy
    }

    /// Healthy instances now (old and new).
    pub fn healthy(&self) -> u32 {
        self.old_healthy + self.new_healthy
    }

    /// The kills and launches to do now.
    pub fn poll(&mut self) -> RestartActions {
        let kill = self.kill_queue.min(self.old_healthy + self.old_unhealthy);
        self.kill_queue = 0;
        let from_unhealthy = kill.min(self.old_unhealthy);
        self.old_unhealthy -= from_unhealthy;
        self.old_healthy -= kill - from_unhealthy;
        self.old_killing += kill;
        let started = self.new_pending + self.new_healthy;
        let room = self.max_capacity.saturating_sub(self.alive());
        let start = self.target.saturating_sub(started).min(room);
        self.new_pending += start;
        RestartActions {
            kill_old: kill,
            start_new: start,
        }
    }

    /// A new instance became healthy (and ready): one more old instance may go.
    pub fn new_healthy(&mut self) {
        if self.new_pending == 0 {
            return;
        }
        self.new_pending -= 1;
        self.new_healthy += 1;
        if self.old_healthy + self.old_unhealthy > self.kill_queue {
            self.kill_queue += 1;
        }
    }

    /// A new instance failed before becoming healthy: it will be replaced.
    pub fn new_failed(&mut self) {
        self.new_pending = self.new_pending.saturating_sub(1);
    }

    /// An old instance being killed is gone.
    pub fn old_terminated(&mut self) {
        self.old_killing = self.old_killing.saturating_sub(1);
    }

    /// Done: all new instances healthy, no old instance left.
    pub fn is_done(&self) -> bool {
        self.new_healthy >= self.target
            && self.old_healthy + self.old_unhealthy + self.old_killing == 0
    }
}
