//! Scenario tests of the master state machine, driven with a deliberately simple allocator double
//! (the real DRF allocator is tested in `mesos-alloc`; here only the master's bookkeeping matters).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::allocator::{AgentSpec, Allocation, Quota};
use crate::task::{Reason, Source, TaskStatus};

/// Offers each agent's whole free pool to the first active framework that is not filtering it.
#[derive(Default)]
struct FirstFit {
    agents: BTreeMap<AgentId, (Resources, Resources, bool)>, // total, used, active
    frameworks: BTreeMap<FrameworkId, (Vec<String>, bool)>,  // roles, active
    filters: Vec<(FrameworkId, AgentId, Time)>,
    due: Option<Time>,
    now_hint: Time,
}

impl FirstFit {
    fn request(&mut self) {
        self.due = Some(self.now_hint);
    }
}

impl Allocator for FirstFit {
    fn add_framework(
        &mut self,
        now: Time,
        fw: &FrameworkId,
        spec: FrameworkSpec,
        used: &[(AgentId, Resources)],
        active: bool,
    ) -> Result<(), AllocatorError> {
        self.now_hint = now;
        for (a, r) in used {
            if let Some(e) = self.agents.get_mut(a) {
                e.1 += r;
            }
        }
        self.frameworks.insert(fw.clone(), (spec.roles, active));
        if active {
            self.request();
        }
        Ok(())
    }
    fn update_framework(
        &mut self,
        fw: &FrameworkId,
        spec: FrameworkSpec,
    ) -> Result<(), AllocatorError> {
        let f = self
            .frameworks
            .get_mut(fw)
            .ok_or_else(|| AllocatorError::UnknownFramework(fw.clone()))?;
        f.0 = spec.roles;
        Ok(())
    }
    fn remove_framework(&mut self, fw: &FrameworkId) -> Result<(), AllocatorError> {
        self.frameworks
            .remove(fw)
            .map(|_| ())
            .ok_or_else(|| AllocatorError::UnknownFramework(fw.clone()))
    }
    fn activate_framework(&mut self, fw: &FrameworkId) -> Result<(), AllocatorError> {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.1 = true;
        }
        self.request();
        Ok(())
    }
    fn deactivate_framework(&mut self, fw: &FrameworkId) -> Result<(), AllocatorError> {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.1 = false;
        }
        self.filters.retain(|(f, _, _)| f != fw);
        Ok(())
    }
    fn add_agent(
        &mut self,
        agent: &AgentId,
        spec: AgentSpec,
        used: &[(FrameworkId, Resources)],
    ) -> Result<(), AllocatorError> {
        let used: Resources = used.iter().map(|(_, r)| r.clone()).sum();
        self.agents
            .insert(agent.clone(), (spec.total, used.unallocate(), true));
        self.request();
        Ok(())
    }
    fn remove_agent(&mut self, agent: &AgentId) -> Result<(), AllocatorError> {
        self.agents.remove(agent);
        Ok(())
    }
    fn set_agent_active(&mut self, agent: &AgentId, active: bool) -> Result<(), AllocatorError> {
        if let Some(a) = self.agents.get_mut(agent) {
            a.2 = active;
        }
        Ok(())
    }
    fn recover_resources(
        &mut self,
        now: Time,
        fw: &FrameworkId,
        agent: &AgentId,
        resources: &Resources,
        refuse: Option<Duration>,
    ) -> Result<(), AllocatorError> {
        self.now_hint = now;
        if let Some(a) = self.agents.get_mut(agent) {
            a.1 -= &resources.unallocate();
        }
        if let Some(d) = refuse.filter(|d| !d.is_zero()) {
            self.filters.push((fw.clone(), agent.clone(), now + d));
        }
        Ok(())
    }
    fn suppress(&mut self, fw: &FrameworkId, _roles: &[String]) -> Result<(), AllocatorError> {
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.1 = false;
        }
        Ok(())
    }
    fn revive(
        &mut self,
        now: Time,
        fw: &FrameworkId,
        _roles: &[String],
    ) -> Result<(), AllocatorError> {
        self.now_hint = now;
        self.filters.retain(|(f, _, _)| f != fw);
        if let Some(f) = self.frameworks.get_mut(fw) {
            f.1 = true;
        }
        self.request();
        Ok(())
    }
    fn set_weight(&mut self, _role: &str, _weight: f64) -> Result<(), AllocatorError> {
        Ok(())
    }
    fn set_quota(&mut self, _role: &str, _quota: Quota) -> Result<(), AllocatorError> {
        Ok(())
    }
    fn poll_timeout(&self) -> Option<Time> {
        self.due
    }
    fn allocate(&mut self, now: Time) -> Vec<Allocation> {
        self.due = None;
        self.filters.retain(|(_, _, until)| *until > now);
        let mut out = Vec::new();
        for (agent, (total, used, active)) in self.agents.iter_mut() {
            let free = total.clone() - &*used;
            if free.is_empty() || !*active {
                continue;
            }
            let pick = self.frameworks.iter().find(|(fw, (_, active))| {
                *active && !self.filters.iter().any(|(f, a, _)| f == *fw && a == agent)
            });
            if let Some((fw, (roles, _))) = pick {
                let role = roles.first().cloned().unwrap_or_else(|| "*".into());
                *used += &free;
                out.push(Allocation {
                    framework: fw.clone(),
                    role: Arc::from(role.as_str()),
                    agent: agent.clone(),
                    resources: free.allocate(&role),
                });
            }
        }
        out
    }
}

struct Harness {
    m: Master<FirstFit>,
    now: Time,
    out: Vec<Output>,
}

impl Harness {
    fn new() -> Self {
        let config = MasterConfig {
            seed: 7,
            offer_timeout: Some(Duration::from_secs(30)),
            ..MasterConfig::default()
        };
        Harness {
            m: Master::new(config, FirstFit::default(), Time::from_secs(1000)),
            now: Time::from_secs(1000),
            out: Vec::new(),
        }
    }

    fn drain(&mut self) -> Vec<Output> {
        let mut v = Vec::new();
        while let Some(o) = self.m.poll_output() {
            v.push(o);
        }
        self.out.extend(v.clone());
        v
    }

    fn tick(&mut self, secs: u64) -> Vec<Output> {
        self.now += Duration::from_secs(secs);
        self.m.handle_timeout(self.now);
        self.drain()
    }

    fn subscribe(&mut self, name: &str, capabilities: &[&str], failover: f64) -> Subscription {
        let info = FrameworkInfo {
            user: "root".into(),
            name: name.into(),
            failover_timeout: Some(failover),
            capabilities: capabilities
                .iter()
                .map(|c| Capability {
                    kind: c.to_string(),
                })
                .collect(),
            ..FrameworkInfo::default()
        };
        let s = self.m.subscribe(self.now, None, info, vec![]).unwrap();
        self.drain();
        s
    }

    fn agent(&mut self, host: &str, resources: &str) -> AgentId {
        let id = self
            .m
            .register_agent(self.now, registration(None, host, resources, vec![]))
            .unwrap();
        self.drain();
        id
    }

    /// The agent reports a reliable status update for one of its tasks.
    fn report(
        &mut self,
        agent: &AgentId,
        fw: &FrameworkId,
        task: &str,
        state: TaskState,
        uuid: u128,
    ) {
        self.m
            .handle_agent(self.now, agent, update_msg(fw, task, state, uuid))
            .unwrap();
    }

    fn call(&mut self, s: &Subscription, call: Call) -> Vec<Output> {
        self.m
            .handle_call(self.now, &s.framework_id, &s.stream_id, call)
            .unwrap();
        self.drain()
    }
}

fn registration(
    id: Option<AgentId>,
    host: &str,
    resources: &str,
    tasks: Vec<ReportedTask>,
) -> AgentRegistration {
    AgentRegistration {
        id,
        hostname: host.into(),
        address: Address {
            hostname: host.into(),
            ip: "127.0.0.1".into(),
            port: 5051,
        },
        resources: Resources::parse(resources).unwrap(),
        attributes: Default::default(),
        tasks,
        version: "1.11.0".into(),
    }
}

fn offers_of(out: &[Output]) -> Vec<Offer> {
    out.iter()
        .filter_map(|o| match o {
            Output::Framework(_, Event::Offers(v)) => Some(v.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn updates_of(out: &[Output]) -> Vec<TaskStatus> {
    out.iter()
        .filter_map(|o| match o {
            Output::Framework(_, Event::Update(s)) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

fn task(id: &str, agent: &AgentId, resources: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId::new(id),
        agent_id: agent.clone(),
        resources: Resources::parse(resources).unwrap(),
        command: Some(CommandInfo {
            value: Some("sleep 10".into()),
            ..CommandInfo::default()
        }),
        executor: None,
        container: None,
        health_check: None,
        kill_policy: None,
        labels: None,
        discovery: None,
        data: None,
    }
}

fn launch(h: &mut Harness, s: &Subscription, offer: &Offer, tasks: Vec<TaskInfo>) -> Vec<Output> {
    h.call(
        s,
        Call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![Operation::Launch(tasks)],
            filters: Some(Filters {
                refuse_seconds: Some(1.0),
            }),
        },
    )
}

fn update_msg(fw: &FrameworkId, task: &str, state: TaskState, uuid: u128) -> AgentMessage {
    AgentMessage::StatusUpdate {
        framework_id: fw.clone(),
        status: TaskStatus::new(TaskId::new(task), state)
            .with_source(Source::Executor)
            .with_uuid(StatusUuid::from_u128(uuid)),
    }
}

#[test]
fn subscribe_assigns_ids_from_the_master_id_and_persists() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 100.0);
    let master_id = h.m.info().id.clone();
    assert_eq!(master_id.len(), 36);
    assert_eq!(s.framework_id.as_str(), format!("{master_id}-0000"));
    let first = h.out.iter().find(|o| matches!(o, Output::Framework(..)));
    assert!(matches!(
        first,
        Some(Output::Framework(_, Event::Subscribed { .. }))
    ));
    assert!(h
        .out
        .iter()
        .any(|o| matches!(o, Output::Persist(Record::FrameworkAdded { .. }))));
    let s2 = h.subscribe("fw2", &[], 100.0);
    assert!(s2.framework_id.as_str().ends_with("-0001"));
    assert_ne!(s.stream_id, s2.stream_id);
}

#[test]
fn subscribe_validates_its_input() {
    let mut h = Harness::new();
    let err =
        h.m.subscribe(h.now, None, FrameworkInfo::default(), vec![])
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid SUBSCRIBE call: 'framework_info.name' must be set"
    );
    let info = FrameworkInfo {
        name: "x".into(),
        id: Some(FrameworkId::new("a")),
        ..Default::default()
    };
    let err =
        h.m.subscribe(h.now, Some(FrameworkId::new("b")), info, vec![])
            .unwrap_err();
    assert!(err.to_string().contains("differs"), "{err}");
    let info = FrameworkInfo {
        name: "x".into(),
        role: Some("a//b".into()),
        ..Default::default()
    };
    assert!(h
        .m
        .subscribe(h.now, None, info, vec![])
        .unwrap_err()
        .to_string()
        .contains("invalid role"));
    let info = FrameworkInfo {
        name: "x".into(),
        roles: vec!["a".into()],
        ..Default::default()
    };
    assert!(h
        .m
        .subscribe(h.now, None, info, vec![])
        .unwrap_err()
        .to_string()
        .contains("MULTI_ROLE"));
    assert_eq!(h.m.frameworks().count(), 0);
}

#[test]
fn offers_launch_and_status_updates_flow() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 100.0);
    let agent = h.agent("host1", "cpus:4;mem:1024;ports:[31000-32000]");
    let out = h.tick(1);
    let offers = offers_of(&out);
    assert_eq!(offers.len(), 1);
    let offer = &offers[0];
    assert_eq!(offer.agent_id, agent);
    assert_eq!(
        offer.resources,
        Resources::parse("cpus:4;mem:1024;ports:[31000-32000]")
            .unwrap()
            .allocate("*")
    );
    assert!(offer.id.as_str().starts_with(&h.m.info().id));

    // Launch one task without allocation info: the master injects the offer's role.
    let out = launch(
        &mut h,
        &s,
        offer,
        vec![task("t1", &agent, "cpus:1;mem:128")],
    );
    let run = out.iter().find_map(|o| match o {
        Output::Agent(a, AgentCommand::RunTask { task, framework }) => {
            Some((a.clone(), task.clone(), framework.clone()))
        }
        _ => None,
    });
    let (to, t, fref) = run.expect("RunTask sent");
    assert_eq!(to, agent);
    assert_eq!(fref.id, s.framework_id);
    assert_eq!(
        t.resources,
        Resources::parse("cpus:1;mem:128").unwrap().allocate("*")
    );
    assert_eq!(h.m.offers().count(), 0);

    // The agent reports RUNNING: forwarded with the agent id.
    h.report(&agent, &s.framework_id, "t1", TaskState::Running, 1);
    let ups = updates_of(&h.drain());
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].agent_id.as_ref(), Some(&agent));
    assert_eq!(ups[0].uuid, Some(StatusUuid::from_u128(1)));
    let out = h.call(
        &s,
        Call::Acknowledge {
            agent_id: agent.clone(),
            task_id: TaskId::new("t1"),
            uuid: StatusUuid::from_u128(1),
        },
    );
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Agent(_, AgentCommand::Acknowledge { .. }))));

    // FINISHED releases resources at once; the ACK moves the task to completed.
    let used_before = h.m.used_on(h.m.agent(&agent).unwrap());
    assert_eq!(
        used_before,
        Resources::parse("cpus:1;mem:128").unwrap().allocate("*")
    );
    h.report(&agent, &s.framework_id, "t1", TaskState::Finished, 2);
    h.drain();
    assert!(h.m.used_on(h.m.agent(&agent).unwrap()).is_empty());
    assert_eq!(h.m.framework(&s.framework_id).unwrap().tasks.len(), 1);
    h.call(
        &s,
        Call::Acknowledge {
            agent_id: agent.clone(),
            task_id: TaskId::new("t1"),
            uuid: StatusUuid::from_u128(2),
        },
    );
    let f = h.m.framework(&s.framework_id).unwrap();
    assert!(f.tasks.is_empty());
    assert_eq!(f.completed_tasks.len(), 1);
    assert_eq!(f.completed_tasks[0].state.state(), TaskState::Finished);
}

#[test]
fn invalid_tasks_get_task_error_without_uuid() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 100.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    let mut no_command = task("t4", &agent, "cpus:0.1");
    no_command.command = None;
    let out = launch(
        &mut h,
        &s,
        &offer,
        vec![
            task("t1", &agent, "cpus:1;mem:128"),
            task("t1", &agent, "cpus:0.5"),
            task("t2", &agent, "cpus:5"),
            task("t3", &AgentId::new("other"), "cpus:0.1"),
            no_command,
        ],
    );
    let ups = updates_of(&out);
    assert_eq!(ups.len(), 4, "{ups:?}");
    for u in &ups {
        assert_eq!(u.state, TaskState::Error);
        assert_eq!(u.uuid, None);
        assert_eq!(u.source, Some(Source::Master));
        assert_eq!(u.reason, Some(Reason::TaskInvalid));
    }
    assert_eq!(ups[0].message.as_deref(), Some("Task has duplicate ID: t1"));
    assert!(ups[1]
        .message
        .as_deref()
        .unwrap()
        .starts_with("Task uses more resources cpus(allocated: *):5"));
    assert!(ups[2]
        .message
        .as_deref()
        .unwrap()
        .contains("but the offers are for agent"));
    assert!(ups[3]
        .message
        .as_deref()
        .unwrap()
        .contains("CommandInfo or ExecutorInfo"));
    assert_eq!(h.m.framework(&s.framework_id).unwrap().tasks.len(), 1);
}

#[test]
fn accepting_an_unknown_offer_drops_the_tasks() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &["PARTITION_AWARE"], 100.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    h.tick(1);
    let out = h.call(
        &s,
        Call::Accept {
            offer_ids: vec![OfferId::new("nope")],
            operations: vec![Operation::Launch(vec![task("t1", &agent, "cpus:1")])],
            filters: None,
        },
    );
    let ups = updates_of(&out);
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].state, TaskState::Dropped);
    assert_eq!(ups[0].reason, Some(Reason::InvalidOffers));
    assert_eq!(
        ups[0].message.as_deref(),
        Some("Offer nope is no longer valid")
    );
}

#[test]
fn decline_filters_then_reoffers() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 100.0);
    h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    h.call(
        &s,
        Call::Decline {
            offer_ids: vec![offer.id.clone()],
            filters: Some(Filters {
                refuse_seconds: Some(10.0),
            }),
        },
    );
    assert_eq!(h.m.counters().offers_declined, 1);
    h.m.allocator_mut().request();
    assert!(offers_of(&h.tick(5)).is_empty());
    h.m.allocator_mut().request();
    assert_eq!(offers_of(&h.tick(6)).len(), 1);
}

#[test]
fn offers_time_out_and_are_rescinded() {
    let mut h = Harness::new();
    h.subscribe("fw", &[], 100.0);
    h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    let out = h.tick(29);
    assert!(!out
        .iter()
        .any(|o| matches!(o, Output::Framework(_, Event::Rescind(_)))));
    let out = h.tick(1);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Framework(_, Event::Rescind(id)) if id == &offer.id)));
    assert_eq!(h.m.counters().offers_rescinded, 1);
}

#[test]
fn explicit_reconciliation_follows_the_table() {
    let mut h = Harness::new();
    let plain = h.subscribe("plain", &[], 100.0);
    let aware = h.subscribe("aware", &["PARTITION_AWARE"], 100.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let ask = |tid: &str, a: Option<&AgentId>| (TaskId::new(tid), a.cloned());
    let out = h.call(
        &aware,
        Call::Reconcile {
            tasks: vec![
                ask("x", Some(&agent)),
                ask("y", Some(&AgentId::new("nobody"))),
                ask("z", None),
            ],
        },
    );
    let states: Vec<TaskState> = updates_of(&out).iter().map(|u| u.state).collect();
    assert_eq!(
        states,
        vec![TaskState::Gone, TaskState::Unknown, TaskState::Unknown]
    );
    let out = h.call(
        &plain,
        Call::Reconcile {
            tasks: vec![ask("x", Some(&agent))],
        },
    );
    let u = updates_of(&out);
    assert_eq!(u[0].state, TaskState::Lost);
    assert_eq!(u[0].reason, Some(Reason::Reconciliation));
    assert_eq!(u[0].uuid, None);
}

#[test]
fn implicit_reconciliation_reports_known_tasks() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 100.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(
        &mut h,
        &s,
        &offer,
        vec![task("a", &agent, "cpus:1"), task("b", &agent, "cpus:0.5")],
    );
    h.report(&agent, &s.framework_id, "a", TaskState::Running, 9);
    h.drain();
    let out = h.call(&s, Call::Reconcile { tasks: vec![] });
    let mut got: Vec<(String, TaskState)> = updates_of(&out)
        .iter()
        .map(|u| (u.task_id.to_string(), u.state))
        .collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a".into(), TaskState::Running),
            ("b".into(), TaskState::Staging)
        ]
    );
    assert!(updates_of(&out)
        .iter()
        .all(|u| u.message.as_deref() == Some("Reconciliation: Latest task state")));
}

#[test]
fn silent_agents_become_unreachable_and_come_back() {
    let mut h = Harness::new();
    let plain = h.subscribe("plain", &[], 1000.0);
    let aware = h.subscribe("aware", &["PARTITION_AWARE"], 1000.0);
    let agent = h.agent("host1", "cpus:4;mem:1024");
    // FirstFit offers the whole agent to the first framework; launch for both through two rounds.
    let o1 = offers_of(&h.tick(1)).remove(0);
    let first = if o1.framework_id == plain.framework_id {
        plain.clone()
    } else {
        aware.clone()
    };
    let second = if first.framework_id == plain.framework_id {
        aware.clone()
    } else {
        plain.clone()
    };
    launch(&mut h, &first, &o1, vec![task("t-first", &agent, "cpus:1")]);
    h.report(
        &agent,
        &first.framework_id,
        "t-first",
        TaskState::Running,
        1,
    );
    h.m.allocator_mut()
        .frameworks
        .get_mut(&first.framework_id)
        .unwrap()
        .1 = false;
    h.m.allocator_mut().request();
    let o2 = offers_of(&h.tick(1)).remove(0);
    assert_eq!(o2.framework_id, second.framework_id);
    launch(
        &mut h,
        &second,
        &o2,
        vec![task("t-second", &agent, "cpus:1")],
    );
    h.report(
        &agent,
        &second.framework_id,
        "t-second",
        TaskState::Running,
        2,
    );
    h.drain();

    // Pings go out every 15 s; with no answer the agent is unreachable after 5 missed pings.
    let mut pings = 0;
    let mut gone = Vec::new();
    for _ in 0..10 {
        let out = h.tick(15);
        pings += out
            .iter()
            .filter(|o| matches!(o, Output::Agent(_, AgentCommand::Ping)))
            .count();
        if !updates_of(&out).is_empty() {
            gone = out;
            break;
        }
    }
    assert_eq!(pings, 4);
    let ups = updates_of(&gone);
    let state_of = |t: &str| {
        ups.iter()
            .find(|u| u.task_id.as_str() == t)
            .map(|u| u.state)
    };
    let (pa_task, plain_task) = if first.framework_id == aware.framework_id {
        ("t-first", "t-second")
    } else {
        ("t-second", "t-first")
    };
    assert_eq!(state_of(pa_task), Some(TaskState::Unreachable));
    assert_eq!(state_of(plain_task), Some(TaskState::Lost));
    assert!(ups
        .iter()
        .all(|u| u.reason == Some(Reason::AgentRemoved) && u.uuid.is_none()));
    assert!(gone.iter().any(|o| matches!(o, Output::Framework(_, Event::Failure { agent_id: Some(a), .. }) if a == &agent)));
    assert!(h.m.agent(&agent).is_none());
    assert_eq!(
        h.m.handle_agent(h.now, &agent, AgentMessage::Pong),
        Err(AgentError::UnknownAgent(agent.clone()))
    );

    // The agent comes back with its partition-aware task still running.
    let info = h.m.framework(&aware.framework_id).unwrap().info.clone();
    let t = h.m.framework(&aware.framework_id).unwrap().tasks[&TaskId::new(pa_task)]
        .info
        .clone();
    let reported = ReportedTask {
        framework: FrameworkRef {
            id: aware.framework_id.clone(),
            info,
        },
        task: t,
        state: TaskState::Running,
    };
    let id =
        h.m.register_agent(
            h.now,
            registration(
                Some(agent.clone()),
                "host1",
                "cpus:4;mem:1024",
                vec![reported],
            ),
        )
        .unwrap();
    assert_eq!(id, agent);
    let ups = updates_of(&h.drain());
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].state, TaskState::Running);
    assert_eq!(ups[0].reason, Some(Reason::AgentReregistered));
    assert_eq!(
        h.m.used_on(h.m.agent(&agent).unwrap()),
        Resources::parse("cpus:1").unwrap().allocate("*")
    );
}

#[test]
fn answering_pings_keeps_an_agent() {
    let mut h = Harness::new();
    h.subscribe("fw", &[], 100.0);
    let agent = h.agent("host1", "cpus:1;mem:64");
    for _ in 0..20 {
        h.tick(15);
        h.m.handle_agent(h.now, &agent, AgentMessage::Pong).unwrap();
    }
    assert!(h.m.agent(&agent).is_some());
}

#[test]
fn disconnected_frameworks_are_removed_after_failover_timeout() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 60.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(&mut h, &s, &offer, vec![task("t1", &agent, "cpus:1")]);
    h.m.disconnect_framework(h.now, &s.framework_id, &s.stream_id);
    h.drain();
    let err =
        h.m.handle_call(
            h.now,
            &s.framework_id,
            &s.stream_id,
            Call::Revive { roles: vec![] },
        )
        .unwrap_err();
    assert_eq!(err, CallError::NotSubscribed(s.framework_id.clone()));
    h.tick(59);
    assert!(h.m.framework(&s.framework_id).is_some());
    let out = h.tick(1);
    assert!(h.m.framework(&s.framework_id).is_none());
    assert!(out.iter().any(
        |o| matches!(o, Output::Agent(a, AgentCommand::ShutdownFramework { .. }) if a == &agent)
    ));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Persist(Record::FrameworkRemoved { .. }))));
    let done = h.m.completed_frameworks().next().unwrap();
    assert_eq!(done.completed_tasks[0].state.state(), TaskState::Killed);
    assert!(h.m.used_on(h.m.agent(&agent).unwrap()).is_empty());
    // A removed framework may not come back.
    let info = FrameworkInfo {
        name: "fw".into(),
        id: Some(s.framework_id.clone()),
        ..Default::default()
    };
    assert_eq!(
        h.m.subscribe(h.now, None, info, vec![]).unwrap_err(),
        CallError::Removed(s.framework_id.clone())
    );
}

#[test]
fn resubscribing_within_failover_keeps_tasks_and_replaces_the_stream() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 60.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(&mut h, &s, &offer, vec![task("t1", &agent, "cpus:1")]);
    let info = FrameworkInfo {
        name: "fw".into(),
        failover_timeout: Some(60.0),
        ..Default::default()
    };
    let s2 =
        h.m.subscribe(h.now, Some(s.framework_id.clone()), info, vec![])
            .unwrap();
    let out = h.drain();
    assert_eq!(s2.framework_id, s.framework_id);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::CloseStream { stream_id, .. } if stream_id == &s.stream_id)));
    let err =
        h.m.handle_call(h.now, &s.framework_id, &s.stream_id, Call::Request)
            .unwrap_err();
    assert!(matches!(err, CallError::StreamMismatch { .. }));
    h.m.handle_call(h.now, &s.framework_id, &s2.stream_id, Call::Request)
        .unwrap();
    assert_eq!(h.m.framework(&s.framework_id).unwrap().tasks.len(), 1);
    // The old stream closing later does not disconnect the new subscription.
    h.m.disconnect_framework(h.now, &s.framework_id, &s.stream_id);
    assert!(h.m.framework(&s.framework_id).unwrap().connected);
}

#[test]
fn teardown_kills_tasks_and_closes_the_stream() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 60.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(&mut h, &s, &offer, vec![task("t1", &agent, "cpus:1")]);
    let out = h.call(&s, Call::Teardown);
    assert!(out.iter().any(|o| matches!(o, Output::CloseStream { .. })));
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Agent(_, AgentCommand::ShutdownFramework { .. }))));
    assert_eq!(
        h.m.handle_call(h.now, &s.framework_id, &s.stream_id, Call::Request)
            .unwrap_err(),
        CallError::Removed(s.framework_id.clone())
    );
    // Late updates for the removed framework are acknowledged on its behalf.
    h.report(&agent, &s.framework_id, "t1", TaskState::Killed, 5);
    let out = h.drain();
    assert!(matches!(
        &out[..],
        [Output::Agent(_, AgentCommand::Acknowledge { .. })]
    ));
}

#[test]
fn calls_from_strangers_are_refused() {
    let mut h = Harness::new();
    let err =
        h.m.handle_call(h.now, &FrameworkId::new("nobody"), "x", Call::Request)
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "framework `nobody` is not known to this master"
    );
    let s = h.subscribe("fw", &[], 60.0);
    let err =
        h.m.handle_call(h.now, &s.framework_id, "wrong", Call::Request)
            .unwrap_err();
    assert!(err.to_string().contains("does not match"));
    let err =
        h.m.handle_call(
            h.now,
            &s.framework_id,
            &s.stream_id,
            Call::Revive {
                roles: vec!["other".into()],
            },
        )
        .unwrap_err();
    assert!(err
        .to_string()
        .contains("role `other` is not one of the framework's roles"));
}

#[test]
fn kill_of_unknown_task_reconciles_and_known_task_goes_to_agent() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 60.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let out = h.call(
        &s,
        Call::Kill {
            task_id: TaskId::new("ghost"),
            agent_id: None,
        },
    );
    assert_eq!(updates_of(&out)[0].state, TaskState::Lost);
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(&mut h, &s, &offer, vec![task("t1", &agent, "cpus:1")]);
    let out = h.call(
        &s,
        Call::Kill {
            task_id: TaskId::new("t1"),
            agent_id: None,
        },
    );
    assert!(matches!(&out[..], [Output::Agent(a, AgentCommand::KillTask { .. })] if a == &agent));
}

#[test]
fn agent_registration_is_validated() {
    let mut h = Harness::new();
    let err =
        h.m.register_agent(h.now, registration(None, "", "cpus:1", vec![]))
            .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid agent registration: hostname must not be empty"
    );
    let mut reg = registration(None, "h", "cpus:1", vec![]);
    reg.resources = Resources::new();
    assert!(h.m.register_agent(h.now, reg).is_err());
    assert_eq!(h.m.agents().count(), 0);
}

#[test]
fn a_restarted_master_recovers_from_its_records() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 600.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(&mut h, &s, &offer, vec![task("t1", &agent, "cpus:1")]);
    h.report(&agent, &s.framework_id, "t1", TaskState::Running, 1);
    h.drain();
    let records: Vec<Record> = h
        .out
        .iter()
        .filter_map(|o| match o {
            Output::Persist(r) => Some(r.clone()),
            _ => None,
        })
        .collect();
    let task_info = h.m.framework(&s.framework_id).unwrap().tasks[&TaskId::new("t1")]
        .info
        .clone();
    let fw_info = h.m.framework(&s.framework_id).unwrap().info.clone();

    let config = MasterConfig {
        seed: 8,
        ..MasterConfig::default()
    };
    let mut m2 = Master::recover(config, FirstFit::default(), h.now, &records);
    assert_eq!(m2.recovered_agents().count(), 1);
    let f = m2.framework(&s.framework_id).unwrap();
    assert!(f.recovered && !f.connected);
    // Explicit reconciliation for a recovering agent gets no answer yet.
    let s2 = m2
        .subscribe(h.now, Some(s.framework_id.clone()), fw_info.clone(), vec![])
        .unwrap();
    while m2.poll_output().is_some() {}
    m2.handle_call(
        h.now,
        &s.framework_id,
        &s2.stream_id,
        Call::Reconcile {
            tasks: vec![(TaskId::new("t1"), Some(agent.clone()))],
        },
    )
    .unwrap();
    assert!(std::iter::from_fn(|| m2.poll_output())
        .all(|o| !matches!(o, Output::Framework(_, Event::Update(_)))));
    // The agent reregisters with its task: the task is back, with its resources in use.
    let reported = ReportedTask {
        framework: FrameworkRef {
            id: s.framework_id.clone(),
            info: fw_info,
        },
        task: task_info,
        state: TaskState::Running,
    };
    m2.register_agent(
        h.now,
        registration(
            Some(agent.clone()),
            "host1",
            "cpus:2;mem:256",
            vec![reported],
        ),
    )
    .unwrap();
    assert_eq!(m2.recovered_agents().count(), 0);
    let t = &m2.framework(&s.framework_id).unwrap().tasks[&TaskId::new("t1")];
    assert_eq!(t.state.state(), TaskState::Running);
    assert_eq!(
        m2.used_on(m2.agent(&agent).unwrap()),
        Resources::parse("cpus:1").unwrap().allocate("*")
    );
    // New ids do not collide with the old run's.
    let s3 = m2
        .subscribe(
            h.now,
            None,
            FrameworkInfo {
                name: "new".into(),
                ..Default::default()
            },
            vec![],
        )
        .unwrap();
    assert!(s3.framework_id.as_str().ends_with("-0001"));
}

#[test]
fn same_seed_same_outputs() {
    let run = || {
        let mut h = Harness::new();
        let s = h.subscribe("fw", &[], 60.0);
        let agent = h.agent("host1", "cpus:2;mem:256");
        let offer = offers_of(&h.tick(1)).remove(0);
        launch(&mut h, &s, &offer, vec![task("t1", &agent, "cpus:1")]);
        format!("{:?}", h.out)
    };
    assert_eq!(run(), run());
}

#[test]
fn a_lost_task_that_comes_back_with_its_agent_is_listed_once() {
    let mut h = Harness::new();
    let s = h.subscribe("plain", &[], 1000.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(&mut h, &s, &offer, vec![task("t1", &agent, "cpus:1")]);
    h.report(&agent, &s.framework_id, "t1", TaskState::Running, 1);
    h.drain();
    for _ in 0..6 {
        h.tick(15);
    }
    let f = h.m.framework(&s.framework_id).unwrap();
    assert!(f.tasks.is_empty());
    assert_eq!(f.completed_tasks.len(), 1);
    assert_eq!(
        h.m.counters().tasks_terminal.get(&TaskState::Lost),
        Some(&1)
    );

    let info = f.info.clone();
    let t = f.completed_tasks[0].info.clone();
    let reported = ReportedTask {
        framework: FrameworkRef {
            id: s.framework_id.clone(),
            info,
        },
        task: t,
        state: TaskState::Running,
    };
    h.m.register_agent(
        h.now,
        registration(
            Some(agent.clone()),
            "host1",
            "cpus:2;mem:256",
            vec![reported],
        ),
    )
    .unwrap();
    let ups = updates_of(&h.drain());
    assert_eq!(ups.len(), 1);
    assert_eq!(ups[0].state, TaskState::Running);
    let f = h.m.framework(&s.framework_id).unwrap();
    assert_eq!(f.tasks.len(), 1);
    assert!(
        f.completed_tasks.is_empty(),
        "listed twice: {:?}",
        f.completed_tasks
    );
    let statuses: Vec<TaskState> = f.tasks[&TaskId::new("t1")]
        .statuses
        .iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        statuses,
        vec![
            TaskState::Staging,
            TaskState::Running,
            TaskState::Lost,
            TaskState::Running
        ]
    );
    assert_eq!(h.m.counters().tasks_revived, 1);
    assert_eq!(
        h.m.used_on(h.m.agent(&agent).unwrap()),
        Resources::parse("cpus:1").unwrap().allocate("*")
    );
}

#[test]
fn terminal_states_are_counted_once_per_task() {
    let mut h = Harness::new();
    let s = h.subscribe("fw", &[], 100.0);
    let agent = h.agent("host1", "cpus:2;mem:256");
    let offer = offers_of(&h.tick(1)).remove(0);
    launch(
        &mut h,
        &s,
        &offer,
        vec![task("a", &agent, "cpus:1"), task("b", &agent, "cpus:0.5")],
    );
    h.report(&agent, &s.framework_id, "a", TaskState::Finished, 1);
    // A retried (duplicate) terminal update does not count again.
    h.report(&agent, &s.framework_id, "a", TaskState::Finished, 1);
    h.report(&agent, &s.framework_id, "b", TaskState::Failed, 2);
    let c = &h.m.counters().tasks_terminal;
    assert_eq!(c.get(&TaskState::Finished), Some(&1));
    assert_eq!(c.get(&TaskState::Failed), Some(&1));
    assert_eq!(c.get(&TaskState::Lost), None);
}

#[test]
fn reregistration_keeps_the_hostname_and_may_only_add_resources() {
    let mut h = Harness::new();
    let agent = h.agent("host1", "cpus:2;mem:256");
    let err =
        h.m.register_agent(
            h.now,
            registration(Some(agent.clone()), "evil", "cpus:999", vec![]),
        )
        .unwrap_err();
    assert!(
        err.to_string().contains("cannot reregister as `evil`"),
        "{err}"
    );
    let err =
        h.m.register_agent(
            h.now,
            registration(Some(agent.clone()), "host1", "cpus:1;mem:256", vec![]),
        )
        .unwrap_err();
    assert!(err.to_string().contains("may only add resources"), "{err}");
    assert_eq!(
        h.m.agent(&agent).unwrap().total,
        Resources::parse("cpus:2;mem:256").unwrap()
    );
    h.m.register_agent(
        h.now,
        registration(Some(agent.clone()), "host1", "cpus:4;mem:256", vec![]),
    )
    .unwrap();
    assert_eq!(
        h.m.agent(&agent).unwrap().total,
        Resources::parse("cpus:4;mem:256").unwrap()
    );
}

#[test]
fn one_subscription_check_for_every_call() {
    let mut h = Harness::new();
    let s = h.subscribe("checked", &[], 60.0);
    let fw = s.framework_id.clone();
    assert_eq!(h.m.check_subscription(&fw, &s.stream_id), Ok(()));
    assert!(matches!(
        h.m.check_subscription(&fw, "other"),
        Err(CallError::StreamMismatch { .. })
    ));
    // The stream closed: its calls are refused, by the check and by handle_call alike.
    h.m.disconnect_framework(h.now, &fw, &s.stream_id);
    h.drain();
    assert_eq!(
        h.m.check_subscription(&fw, &s.stream_id),
        Err(CallError::NotSubscribed(fw.clone()))
    );
    assert_eq!(
        h.m.handle_call(h.now, &fw, &s.stream_id, Call::Request),
        Err(CallError::NotSubscribed(fw.clone()))
    );
    // Removed: the same answer from both.
    let s = h.subscribe("gone", &[], 60.0);
    h.call(&s, Call::Teardown);
    let gone = s.framework_id.clone();
    assert_eq!(
        h.m.check_subscription(&gone, &s.stream_id),
        Err(CallError::Removed(gone.clone()))
    );
    assert_eq!(
        h.m.handle_call(h.now, &gone, &s.stream_id, Call::Request),
        Err(CallError::Removed(gone.clone()))
    );
    let unknown = FrameworkId::new("nobody");
    assert_eq!(
        h.m.check_subscription(&unknown, "x"),
        Err(CallError::UnknownFramework(unknown))
    );
}
