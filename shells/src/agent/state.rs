//! What the agent shows of itself: `/state` and `/metrics/snapshot`, read from the agent core.

use std::collections::BTreeMap;

use mesos_core::agent::{Agent as Core, TaskRecord};
use mesos_core::ids::FrameworkId;
use mesos_core::master::FrameworkRef;
use mesos_core::resources::{Resources, Value};
use mesos_core::task::TaskState;
use serde_json::{json, Value as Json};

use super::daemon::{Identity, VERSION};

fn resources_state_json(r: &Resources) -> Json {
    let mut m = serde_json::Map::new();
    for res in r.iter() {
        let v = match &res.value {
            Value::Scalar(s) => json!(s.as_f64()),
            other => json!(other.to_string()),
        };
        m.insert(res.name.as_str().to_string(), v);
    }
    Json::Object(m)
}

/// `/state`, in upstream's shape.
pub fn state_json(core: &Core, identity: &Identity) -> Json {
    let id = core.id();
    let task_json = |r: &TaskRecord| {
        json!({
            "id": r.task.task_id.as_str(),
            "name": r.task.name,
            "framework_id": r.framework.id.as_str(),
            "executor_id": r.task.task_id.as_str(),
            "slave_id": id.map(|i| i.as_str()),
            "agent_id": id.map(|i| i.as_str()),
            "state": r.state.as_str(),
            "resources": resources_state_json(&r.task.resources),
            "container_id": r.container_id,
            "containerizer": r.runtime,
            "sandbox": r.sandbox.display().to_string(),
        })
    };
    // Upstream's shape: each command task has its own executor (same id), whose
    // `directory` is the sandbox.
    let executor_json = |r: &TaskRecord, running: bool| {
        let task = task_json(r);
        json!({
            "id": r.task.task_id.as_str(),
            "name": format!("Command Executor (Task: {})", r.task.task_id),
            "source": r.task.task_id.as_str(),
            "framework_id": r.framework.id.as_str(),
            "container": r.container_id,
            "directory": r.sandbox.display().to_string(),
            "resources": resources_state_json(&r.task.resources),
            "tasks": if running { vec![task.clone()] } else { vec![] },
            "queued_tasks": [],
            "completed_tasks": if running { vec![] } else { vec![task] },
        })
    };
    #[derive(Default)]
    struct Fw {
        info: Option<FrameworkRef>,
        tasks: Vec<Json>,
        completed_tasks: Vec<Json>,
        executors: Vec<Json>,
        completed_executors: Vec<Json>,
    }
    let mut frameworks: BTreeMap<FrameworkId, Fw> = BTreeMap::new();
    for t in core.tasks() {
        let r = t.record;
        let f = frameworks.entry(r.framework.id.clone()).or_default();
        f.info.get_or_insert_with(|| r.framework.clone());
        f.tasks.push(task_json(r));
        f.executors.push(executor_json(r, !t.terminated));
    }
    for r in core.completed() {
        let f = frameworks.entry(r.framework.id.clone()).or_default();
        f.info.get_or_insert_with(|| r.framework.clone());
        f.completed_tasks.push(task_json(r));
        f.completed_executors.push(executor_json(r, false));
    }
    let frameworks: Vec<Json> = frameworks
        .into_iter()
        .map(|(id, f)| {
            let info = f.info.map(|r| r.info).unwrap_or_default();
            json!({
                "id": id.as_str(),
                "name": info.name,
                "user": info.user,
                "role": info.role.clone().unwrap_or_else(|| "*".into()),
                "tasks": f.tasks,
                "completed_tasks": f.completed_tasks,
                "executors": f.executors,
                "completed_executors": f.completed_executors,
            })
        })
        .collect();
    let a = &identity.address;
    json!({
        "id": id.map(|i| i.as_str()),
        "pid": format!("slave(1)@{}:{}", a.ip, a.port),
        "hostname": identity.hostname,
        "version": VERSION,
        "resources": resources_state_json(&identity.resources),
        "attributes": identity.attributes.to_state_json(),
        "master_hostname": identity.master,
        "registered": core.is_registered(),
        "connected": core.is_connected(),
        "flags": identity.flags,
        "frameworks": frameworks,
        "completed_frameworks": [],
        "pending_status_updates": core.pending_streams(),
    })
}

/// Upstream's agent metrics (`slave/...`), as far as this agent knows them.
pub fn metrics_json(core: &Core, identity: &Identity, uptime_secs: f64) -> Json {
    let mut m = serde_json::Map::new();
    let count = |state: TaskState| core.tasks().filter(|t| t.record.state == state).count() as f64;
    for (name, state) in [
        ("staging", TaskState::Staging),
        ("starting", TaskState::Starting),
        ("running", TaskState::Running),
        ("killing", TaskState::Killing),
    ] {
        m.insert(format!("slave/tasks_{name}"), json!(count(state)));
    }
    for (name, state) in [
        ("finished", TaskState::Finished),
        ("failed", TaskState::Failed),
        ("killed", TaskState::Killed),
        ("lost", TaskState::Lost),
        ("gone", TaskState::Gone),
        ("dropped", TaskState::Dropped),
    ] {
        let n = core.terminal_counts().get(&state).copied().unwrap_or(0);
        m.insert(format!("slave/tasks_{name}"), json!(n as f64));
    }
    let live = core.tasks().filter(|t| !t.terminated).count() as f64;
    m.insert("slave/executors_running".into(), json!(live));
    let used: Resources = core
        .tasks()
        .filter(|t| !t.terminated)
        .map(|t| t.record.task.resources.clone())
        .sum();
    let total = &identity.resources;
    for (name, t, u) in [
        ("cpus", total.cpus(), used.cpus()),
        ("mem", total.mem(), used.mem()),
        ("disk", total.disk(), used.disk()),
    ] {
        m.insert(format!("slave/{name}_total"), json!(t));
        m.insert(format!("slave/{name}_used"), json!(u));
        let percent = if t > 0.0 { u / t } else { 0.0 };
        m.insert(format!("slave/{name}_percent"), json!(percent));
    }
    let registered = if core.is_registered() { 1.0 } else { 0.0 };
    m.insert("slave/registered".into(), json!(registered));
    m.insert("slave/uptime_secs".into(), json!(uptime_secs));
    m.insert(
        "slave/valid_status_updates".into(),
        json!(core.updates_sent() as f64),
    );
    m.insert(
        "slave/status_update_acknowledgements".into(),
        json!(core.acks_received() as f64),
    );
    m.insert(
        "slave/pending_status_update_streams".into(),
        json!(core.pending_streams() as f64),
    );
    Json::Object(m)
}
