//! Read-only views of the master rendered to JSON inside the driver: `/master/state` (the §7
//! shape of the reference), `/metrics/snapshot`, and the v1 operator API's GET_* calls.

use std::collections::BTreeMap;

use mesos_core::allocator::Allocator;
use mesos_core::master::{Agent, Framework, Master, Task};
use mesos_core::resources::{Resources, Value};
use mesos_core::task::TaskState;
use mesos_core::time::Time;
use serde_json::{json, Map, Value as Json};

use super::v1::{master_info_json, ResourceStyle};

/// What to render.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// `/master/state`.
    State,
    /// `/metrics/snapshot`.
    Metrics,
    /// Operator GET_STATE.
    GetState,
    /// Operator GET_AGENTS.
    GetAgents,
    /// Operator GET_FRAMEWORKS.
    GetFrameworks,
    /// Operator GET_TASKS.
    GetTasks,
    /// Operator GET_MASTER.
    GetMaster,
}

/// What the driver adds to the master's own state.
pub struct RenderContext<'a> {
    /// Now.
    pub now: Time,
    /// The flags, for `/master/state`.
    pub flags: &'a [(String, String)],
    /// Subscribers dropped for being too slow.
    pub dropped_slow_subscribers: u64,
    /// Open subscription streams.
    pub framework_streams: usize,
}

/// Renders `query`.
pub fn render<A: Allocator>(m: &Master<A>, ctx: &RenderContext<'_>, query: Query) -> Json {
    match query {
        Query::State => state(m, ctx),
        Query::Metrics => metrics(m, ctx),
        Query::GetState => json!({
            "type": "GET_STATE",
            "get_state": {
                "get_tasks": get_tasks(m),
                "get_executors": {"executors": [], "orphan_executors": []},
                "get_frameworks": get_frameworks(m),
                "get_agents": get_agents(m),
            }
        }),
        Query::GetAgents => json!({"type": "GET_AGENTS", "get_agents": get_agents(m)}),
        Query::GetFrameworks => {
            json!({"type": "GET_FRAMEWORKS", "get_frameworks": get_frameworks(m)})
        }
        Query::GetTasks => json!({"type": "GET_TASKS", "get_tasks": get_tasks(m)}),
        Query::GetMaster => json!({
            "type": "GET_MASTER",
            "get_master": {
                "master_info": master_info_json(m.info()),
                "start_time": m.start_time().as_secs_f64(),
                "elected_time": m.start_time().as_secs_f64(),
            }
        }),
    }
}

/// Resources as `/master/state` writes them: `{"cpus":..,"gpus":0,"mem":..,"disk":..,"ports":"[..]"}`.
pub fn resources_object(r: &Resources) -> Json {
    let mut scalars: BTreeMap<String, f64> = BTreeMap::new();
    let mut others: BTreeMap<String, Value> = BTreeMap::new();
    for name in ["cpus", "gpus", "mem", "disk"] {
        scalars.insert(name.to_string(), 0.0);
    }
    for res in r.iter() {
        let name = res.name.as_str().to_string();
        match &res.value {
            Value::Scalar(s) => *scalars.entry(name).or_default() += s.as_f64(),
            Value::Ranges(rs) => match others.get_mut(&name) {
                Some(Value::Ranges(acc)) => acc.add(rs),
                _ => {
                    others.insert(name, Value::Ranges(rs.clone()));
                }
            },
            Value::Set(s) => {
                others.entry(name).or_insert_with(|| Value::Set(s.clone()));
            }
        }
    }
    let mut m = Map::new();
    for (k, v) in scalars {
        // Mesos keeps three decimals; round away binary noise from summing.
        m.insert(k, json!((v * 1000.0).round() / 1000.0));
    }
    for (k, v) in others {
        let text = match v {
            Value::Ranges(rs) => rs.to_string(),
            Value::Set(s) => s.to_string(),
            Value::Scalar(s) => s.as_f64().to_string(),
        };
        m.insert(k, json!(text));
    }
    Json::Object(m)
}

fn secs(t: Time) -> Json {
    json!(t.as_secs_f64())
}

fn nanos(t: Time) -> Json {
    json!({"nanoseconds": t.as_nanos()})
}

fn agent_pid(a: &Agent) -> String {
    format!("slave(1)@{}:{}", a.address.ip, a.address.port)
}

fn task_state_json(t: &Task) -> Json {
    let info = &t.info;
    let mut m = Map::new();
    m.insert("id".into(), json!(info.task_id.as_str()));
    m.insert("name".into(), json!(info.name));
    m.insert("framework_id".into(), json!(t.framework_id.as_str()));
    m.insert("executor_id".into(), json!(""));
    m.insert("slave_id".into(), json!(info.agent_id.as_str()));
    m.insert("state".into(), json!(t.state.state().as_str()));
    m.insert("resources".into(), resources_object(&info.resources));
    m.insert("role".into(), json!(t.role));
    let statuses: Vec<Json> = t
        .statuses
        .iter()
        .map(|s| json!({"state": s.state.as_str(), "timestamp": s.timestamp.as_secs_f64()}))
        .collect();
    m.insert("statuses".into(), Json::Array(statuses));
    if let Some(c) = &info.container {
        m.insert("container".into(), c.clone());
    }
    if let Some(d) = &info.discovery {
        m.insert("discovery".into(), d.clone());
    }
    if let Some(l) = &info.labels {
        m.insert("labels".into(), l.clone());
    }
    if let Some(h) = &info.health_check {
        m.insert("health_check".into(), h.clone());
    }
    Json::Object(m)
}

fn framework_used(f: &Framework) -> Resources {
    f.tasks
        .values()
        .filter(|t| !t.released)
        .map(|t| &t.info.resources)
        .sum()
}

fn framework_offered<A: Allocator>(m: &Master<A>, f: &Framework) -> Resources {
    m.offers()
        .filter(|o| o.offer.framework_id == f.id)
        .map(|o| &o.offer.resources)
        .sum()
}

fn framework_state_json<A: Allocator>(m: &Master<A>, f: &Framework) -> Json {
    let used = framework_used(f);
    let offered = framework_offered(m, f);
    let mut total = used.clone();
    total += &offered;
    let info = &f.info;
    let (tasks, unreachable): (Vec<&Task>, Vec<&Task>) = f
        .tasks
        .values()
        .map(|t| &**t)
        .partition(|t| t.state.state() != TaskState::Unreachable);
    let style = ResourceStyle::of(info);
    let offers: Vec<Json> = m
        .offers()
        .filter(|o| o.offer.framework_id == f.id)
        .map(|o| {
            json!({
                "id": o.offer.id.as_str(),
                "framework_id": f.id.as_str(),
                "allocation_info": {"role": o.offer.role},
                "slave_id": o.offer.agent_id.as_str(),
                "resources": resources_object(&o.offer.resources),
                "resources_full": style.resources(&o.offer.resources),
            })
        })
        .collect();
    let mut j = Map::new();
    j.insert("id".into(), json!(f.id.as_str()));
    j.insert("name".into(), json!(info.name));
    j.insert("used_resources".into(), resources_object(&used));
    j.insert("offered_resources".into(), resources_object(&offered));
    j.insert(
        "capabilities".into(),
        json!(info
            .capabilities
            .iter()
            .map(|c| c.kind.clone())
            .collect::<Vec<_>>()),
    );
    j.insert(
        "hostname".into(),
        json!(info.hostname.clone().unwrap_or_default()),
    );
    j.insert(
        "webui_url".into(),
        json!(info.webui_url.clone().unwrap_or_default()),
    );
    j.insert("active".into(), json!(f.active));
    j.insert("connected".into(), json!(f.connected));
    j.insert("recovered".into(), json!(f.recovered));
    j.insert("user".into(), json!(info.user));
    j.insert(
        "failover_timeout".into(),
        json!(info.failover_timeout.unwrap_or(0.0)),
    );
    j.insert("checkpoint".into(), json!(info.checkpoint.unwrap_or(false)));
    j.insert("registered_time".into(), secs(f.registered_time));
    j.insert(
        "unregistered_time".into(),
        json!(f.unregistered_time.map_or(0.0, Time::as_secs_f64)),
    );
    if let Some(t) = f.reregistered_time {
        j.insert("reregistered_time".into(), secs(t));
    }
    if let Some(p) = &info.principal {
        j.insert("principal".into(), json!(p));
    }
    j.insert("resources".into(), resources_object(&total));
    if info.has_capability("MULTI_ROLE") {
        j.insert("roles".into(), json!(info.roles));
    } else {
        j.insert(
            "role".into(),
            json!(info.role.clone().unwrap_or_else(|| "*".into())),
        );
    }
    j.insert(
        "tasks".into(),
        Json::Array(tasks.into_iter().map(task_state_json).collect()),
    );
    j.insert(
        "unreachable_tasks".into(),
        Json::Array(unreachable.into_iter().map(task_state_json).collect()),
    );
    j.insert(
        "completed_tasks".into(),
        Json::Array(
            f.completed_tasks
                .iter()
                .map(|t| task_state_json(t))
                .collect(),
        ),
    );
    j.insert("offers".into(), Json::Array(offers));
    j.insert("executors".into(), json!([]));
    if let Some(l) = &info.labels {
        j.insert("labels".into(), l.clone());
    }
    j.insert("offer_constraints".into(), json!({}));
    Json::Object(j)
}

fn agent_state_json<A: Allocator>(m: &Master<A>, a: &Agent) -> Json {
    let used = m.used_on(a);
    let offered = m.offered_on(a);
    let mut reserved: BTreeMap<String, Resources> = BTreeMap::new();
    for r in a.total.iter() {
        if !r.is_unreserved() {
            let mut one = Resources::new();
            one.push(r.clone());
            *reserved
                .entry(r.reservation_role().to_string())
                .or_default() += one;
        }
    }
    let reserved: Map<String, Json> = reserved
        .iter()
        .map(|(k, v)| (k.clone(), resources_object(v)))
        .collect();
    let mut j = Map::new();
    j.insert("id".into(), json!(a.id.as_str()));
    j.insert("hostname".into(), json!(a.hostname));
    j.insert("port".into(), json!(a.address.port));
    j.insert("attributes".into(), a.attributes.to_state_json());
    j.insert("pid".into(), json!(agent_pid(a)));
    j.insert("registered_time".into(), secs(a.registered_time));
    if let Some(t) = a.reregistered_time {
        j.insert("reregistered_time".into(), secs(t));
    }
    j.insert("resources".into(), resources_object(&a.total));
    j.insert("used_resources".into(), resources_object(&used));
    j.insert("offered_resources".into(), resources_object(&offered));
    j.insert("reserved_resources".into(), Json::Object(reserved));
    j.insert(
        "unreserved_resources".into(),
        resources_object(&a.total.unreserved()),
    );
    j.insert("active".into(), json!(a.active));
    j.insert("deactivated".into(), json!(false));
    j.insert("version".into(), json!(a.version));
    j.insert(
        "capabilities".into(),
        json!(["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"]),
    );
    Json::Object(j)
}

fn state<A: Allocator>(m: &Master<A>, ctx: &RenderContext<'_>) -> Json {
    let info = m.info();
    let pid = format!("master@{}:{}", info.address.ip, info.address.port);
    let active = m.agents().filter(|a| a.active).count();
    let inactive = m.agents().filter(|a| !a.active).count();
    let flags: Map<String, Json> = ctx
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "version": info.version,
        "build_date": "",
        "build_time": 0,
        "build_user": "",
        "start_time": secs(m.start_time()),
        "elected_time": secs(m.start_time()),
        "id": info.id,
        "pid": pid,
        "hostname": info.address.hostname,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": active,
        "deactivated_slaves": inactive,
        "unreachable_slaves": m.unreachable_agents().count(),
        "leader": pid,
        "leader_info": {
            "id": info.id,
            "pid": pid,
            "port": info.address.port,
            "hostname": info.address.hostname,
        },
        "flags": flags,
        "slaves": m.agents().map(|a| agent_state_json(m, a)).collect::<Vec<_>>(),
        "recovered_slaves": m.recovered_agents().map(|(id, (host, addr))| json!({
            "id": id.as_str(), "hostname": host, "port": addr.port, "attributes": {},
        })).collect::<Vec<_>>(),
        "frameworks": m.frameworks().map(|f| framework_state_json(m, f)).collect::<Vec<_>>(),
        "completed_frameworks": m.completed_frameworks().map(|f| framework_state_json(m, f)).collect::<Vec<_>>(),
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}

fn count_states<A: Allocator>(m: &Master<A>) -> BTreeMap<TaskState, u64> {
    let mut counts: BTreeMap<TaskState, u64> = BTreeMap::new();
    let all = m.frameworks().chain(m.completed_frameworks());
    for f in all {
        for t in f.tasks.values().chain(f.completed_tasks.iter()) {
            *counts.entry(t.state.state()).or_default() += 1;
        }
    }
    counts
}

/// `/metrics/snapshot`: Mesos' metric names to numbers.
pub fn metrics<A: Allocator>(m: &Master<A>, ctx: &RenderContext<'_>) -> Json {
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    let mut put = |k: &str, v: f64| {
        out.insert(format!("master/{k}"), v);
    };
    let uptime = ctx
        .now
        .saturating_duration_since(m.start_time())
        .as_secs_f64();
    put("uptime_secs", uptime);
    put("elected", 1.0);
    let fws: Vec<&Framework> = m.frameworks().collect();
    put(
        "frameworks_active",
        fws.iter().filter(|f| f.active).count() as f64,
    );
    put(
        "frameworks_inactive",
        fws.iter().filter(|f| !f.active).count() as f64,
    );
    put(
        "frameworks_connected",
        fws.iter().filter(|f| f.connected).count() as f64,
    );
    put(
        "frameworks_disconnected",
        fws.iter().filter(|f| !f.connected).count() as f64,
    );
    let agents: Vec<&Agent> = m.agents().collect();
    let active = agents.iter().filter(|a| a.active).count() as f64;
    put("slaves_active", active);
    put("slaves_connected", active);
    put("slaves_inactive", agents.len() as f64 - active);
    put("slaves_disconnected", agents.len() as f64 - active);
    put("slaves_unreachable", m.unreachable_agents().count() as f64);
    let counts = count_states(m);
    let c = m.counters();
    for state in TaskState::ALL {
        let name = state.as_str().trim_start_matches("TASK_").to_lowercase();
        // As in Mesos: terminal states are counters since start, the others are gauges.
        let n = if state.is_terminal() {
            c.tasks_terminal.get(state).copied().unwrap_or(0)
        } else {
            counts.get(state).copied().unwrap_or(0)
        };
        put(&format!("tasks_{name}"), n as f64);
    }
    put("outstanding_offers", m.offers().count() as f64);
    put("offers_sent", c.offers_sent as f64);
    put("offers_accepted", c.offers_accepted as f64);
    put("offers_declined", c.offers_declined as f64);
    put("offers_rescinded", c.offers_rescinded as f64);
    put("tasks_launched", c.tasks_launched as f64);
    put("valid_status_updates", c.valid_status_updates as f64);
    put("invalid_status_updates", c.invalid_status_updates as f64);
    put("slave_registrations", c.agent_registrations as f64);
    put("slave_reregistrations", c.agent_reregistrations as f64);
    put("slave_unreachable_scheduled", c.agents_unreachable as f64);
    put(
        "dropped_slow_subscribers",
        ctx.dropped_slow_subscribers as f64,
    );
    put("subscription_streams", ctx.framework_streams as f64);
    for (call, n) in &c.calls {
        put(&format!("messages_{}", call.to_lowercase()), *n as f64);
    }
    let mut total = Resources::new();
    let mut used = Resources::new();
    let mut offered = Resources::new();
    for a in &agents {
        total += &a.total;
        used += &m.used_on(a);
        offered += &m.offered_on(a);
    }
    for name in ["cpus", "mem", "disk", "gpus"] {
        let t = total.scalar(name).unwrap_or(0.0);
        let u = used.scalar(name).unwrap_or(0.0);
        let o = offered.scalar(name).unwrap_or(0.0);
        put(&format!("{name}_total"), t);
        put(&format!("{name}_used"), u);
        put(&format!("{name}_offered"), o);
        put(
            &format!("{name}_percent"),
            if t > 0.0 { u / t } else { 0.0 },
        );
    }
    let map: Map<String, Json> = out.into_iter().map(|(k, v)| (k, json!(v))).collect();
    Json::Object(map)
}

/// `/metrics`: the snapshot in Prometheus' text format (`master/cpus_total` -> `master_cpus_total`).
pub fn prometheus(snapshot: &Json) -> String {
    let mut out = String::new();
    if let Json::Object(m) = snapshot {
        for (k, v) in m {
            let name: String = k
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            let value = v.as_f64().unwrap_or(0.0);
            out.push_str(&format!("# TYPE {name} gauge\n{name} {value}\n"));
        }
    }
    out
}

fn v1_resources(r: &Resources) -> Json {
    ResourceStyle {
        refined: true,
        multi_role: true,
    }
    .resources(r)
}

fn get_agents<A: Allocator>(m: &Master<A>) -> Json {
    let agents: Vec<Json> = m
        .agents()
        .map(|a| {
            let mut j = json!({
                "agent_info": {
                    "id": a.id,
                    "hostname": a.hostname,
                    "port": a.address.port,
                    "resources": v1_resources(&a.total),
                    "attributes": a.attributes.to_json(),
                },
                "active": a.active,
                "deactivated": false,
                "version": a.version,
                "pid": agent_pid(a),
                "registered_time": nanos(a.registered_time),
                "total_resources": v1_resources(&a.total),
                "allocated_resources": v1_resources(&m.used_on(a)),
                "offered_resources": v1_resources(&m.offered_on(a)),
                "capabilities": [{"type": "MULTI_ROLE"}, {"type": "HIERARCHICAL_ROLE"}, {"type": "RESERVATION_REFINEMENT"}],
            });
            if let (Some(t), Json::Object(o)) = (a.reregistered_time, &mut j) {
                o.insert("reregistered_time".into(), nanos(t));
            }
            j
        })
        .collect();
    let recovered: Vec<Json> = m
        .recovered_agents()
        .map(|(id, (host, addr))| json!({"id": id, "hostname": host, "port": addr.port}))
        .collect();
    json!({"agents": agents, "recovered_agents": recovered})
}

fn framework_v1<A: Allocator>(m: &Master<A>, f: &Framework) -> Json {
    let mut info = serde_json::to_value(&f.info).unwrap_or_else(|_| json!({}));
    if let Json::Object(o) = &mut info {
        o.insert("id".into(), json!(f.id));
    }
    let mut j = json!({
        "framework_info": info,
        "active": f.active,
        "connected": f.connected,
        "recovered": f.recovered,
        "registered_time": nanos(f.registered_time),
        "allocated_resources": v1_resources(&framework_used(f)),
        "offered_resources": v1_resources(&framework_offered(m, f)),
    });
    if let Json::Object(o) = &mut j {
        if let Some(t) = f.reregistered_time {
            o.insert("reregistered_time".into(), nanos(t));
        }
        if let Some(t) = f.unregistered_time {
            o.insert("unregistered_time".into(), nanos(t));
        }
    }
    j
}

fn get_frameworks<A: Allocator>(m: &Master<A>) -> Json {
    json!({
        "frameworks": m.frameworks().map(|f| framework_v1(m, f)).collect::<Vec<_>>(),
        "completed_frameworks": m.completed_frameworks().map(|f| framework_v1(m, f)).collect::<Vec<_>>(),
    })
}

fn task_v1(t: &Task) -> Json {
    let last = t.statuses.len().saturating_sub(1);
    let statuses: Vec<Json> = t
        .statuses
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut j = json!({
                "task_id": t.info.task_id,
                "state": s.state.as_str(),
                "timestamp": s.timestamp.as_secs_f64(),
                "agent_id": t.info.agent_id,
            });
            if let (true, Some(h), Json::Object(o)) = (i == last, t.healthy, &mut j) {
                o.insert("healthy".into(), json!(h));
            }
            j
        })
        .collect();
    let mut j = json!({
        "name": t.info.name,
        "task_id": t.info.task_id,
        "framework_id": t.framework_id,
        "agent_id": t.info.agent_id,
        "state": t.state.state().as_str(),
        "resources": v1_resources(&t.info.resources),
        "statuses": statuses,
    });
    if let Json::Object(o) = &mut j {
        if let Some(s) = t.status_update_state {
            o.insert("status_update_state".into(), json!(s.as_str()));
        }
        if let Some(u) = t.status_update_uuid {
            o.insert("status_update_uuid".into(), json!(u.to_base64()));
        }
        if let Some(c) = &t.info.container {
            o.insert("container".into(), c.clone());
        }
    }
    j
}

fn get_tasks<A: Allocator>(m: &Master<A>) -> Json {
    let mut tasks = Vec::new();
    let mut unreachable = Vec::new();
    let mut completed = Vec::new();
    for f in m.frameworks().chain(m.completed_frameworks()) {
        for t in f.tasks.values() {
            if t.state.state() == TaskState::Unreachable {
                unreachable.push(task_v1(t));
            } else {
                tasks.push(task_v1(t));
            }
        }
        completed.extend(f.completed_tasks.iter().map(|t| task_v1(t)));
    }
    json!({
        "pending_tasks": [],
        "tasks": tasks,
        "unreachable_tasks": unreachable,
        "completed_tasks": completed,
        "orphan_tasks": [],
    })
}
