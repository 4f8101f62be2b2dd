//! Property tests: random operation sequences against the allocator's safety properties.
//!
//! - an agent is never offered more than it has available;
//! - a resource is never in two outstanding offers (or an offer and a running task);
//! - a filtered framework is not offered the filtered resources before the filter expires;
//! - quota guarantees are met whenever the cluster can meet them.

use std::time::Duration;

use mesos_alloc::{AllocatorConfig, HierarchicalAllocator};
use mesos_core::allocator::{AgentSpec, Allocation, Allocator, FrameworkSpec, Quota};
use mesos_core::ids::{AgentId, FrameworkId};
use mesos_core::resources::{ResourceQuantities, Resources};
use mesos_core::time::Time;
use proptest::prelude::*;

const AGENTS: [&str; 5] = [
    "cpus:4;mem:1024;ports:[31000-31009]",
    "cpus:2;mem:2048;cpus(r1):1;mem(r1):128",
    "cpus:1;mem:512;disk:100",
    "cpus:8;mem:256;ports:[1-3,7-9]",
    "cpus:3;mem:3072;cpus(q):1",
];
/// (framework, roles). f0 is the quota role's only framework and never refuses.
const FRAMEWORKS: [(&str, &[&str]); 4] = [
    ("f0", &["q"]),
    ("f1", &["r1"]),
    ("f2", &["r1/sub", "r2"]),
    ("f3", &["r2"]),
];

#[derive(Clone, Debug)]
enum Op {
    AddAgent(usize),
    RemoveAgent(usize),
    Allocate(u16),
    Decline {
        offer: usize,
        refuse_ms: Option<u32>,
    },
    Accept(usize),
    Finish(usize),
    Suppress(usize),
    Revive(usize),
    Deactivate(usize),
    Activate(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0..AGENTS.len()).prop_map(Op::AddAgent),
        1 => (0..AGENTS.len()).prop_map(Op::RemoveAgent),
        3 => (0..3000u16).prop_map(Op::Allocate),
        3 => (0..8usize, proptest::option::of(0..8000u32))
            .prop_map(|(offer, refuse_ms)| Op::Decline { offer, refuse_ms }),
        2 => (0..8usize).prop_map(Op::Accept),
        1 => (0..8usize).prop_map(Op::Finish),
        1 => (1..FRAMEWORKS.len()).prop_map(Op::Suppress),
        1 => (1..FRAMEWORKS.len()).prop_map(Op::Revive),
        1 => (1..FRAMEWORKS.len()).prop_map(Op::Deactivate),
        1 => (1..FRAMEWORKS.len()).prop_map(Op::Activate),
    ]
}

struct Filter {
    framework: FrameworkId,
    agent: AgentId,
    role: String,
    refused: Resources,
    expires: Time,
}

#[derive(Default)]
struct Model {
    agents: Vec<Option<Resources>>,
    offers: Vec<Allocation>,
    running: Vec<Allocation>,
    filters: Vec<Filter>,
}

fn quantity_sum(items: &[&Resources]) -> ResourceQuantities {
    let mut q = ResourceQuantities::new();
    for r in items {
        q.add_all(&r.quantities());
    }
    q
}

fn check_agents(a: &HierarchicalAllocator, m: &Model) -> Result<(), TestCaseError> {
    for (i, total) in m.agents.iter().enumerate() {
        let Some(total) = total else { continue };
        let id = AgentId::new(format!("a{i}"));
        let held: Vec<&Resources> = m
            .offers
            .iter()
            .chain(&m.running)
            .filter(|o| o.agent == id)
            .map(|o| &o.resources)
            .collect();
        let mut sum = Resources::new();
        for r in &held {
            sum += r.unallocate();
        }
        // Never more than the agent has, and never the same resource twice: the merged
        // sum fits, and so do the summed quantities (overlapping port ranges would merge
        // into fewer values than their count).
        prop_assert!(total.contains(&sum), "agent {i}: {sum} not within {total}");
        prop_assert!(
            total.quantities().contains(&quantity_sum(&held)),
            "agent {i}: double offer"
        );
        let available = a.available(&id).unwrap().clone();
        prop_assert_eq!(
            &(available + &sum),
            total,
            "agent {}: available + held != total",
            i
        );
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let config = AllocatorConfig {
        min_allocatable: Vec::new(),
        seed: 3,
        ..AllocatorConfig::default()
    };
    let mut a = HierarchicalAllocator::new(config);
    let guarantee = ResourceQuantities::parse("cpus:3;mem:600").unwrap();
    a.set_quota(
        "q",
        Quota {
            guarantees: guarantee.clone(),
            limits: ResourceQuantities::new(),
        },
    )
    .unwrap();
    let mut now = Time::from_secs(100);
    for (id, roles) in FRAMEWORKS {
        let spec = FrameworkSpec {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..FrameworkSpec::default()
        };
        a.add_framework(now, &FrameworkId::new(id), spec, &[], true)
            .unwrap();
    }
    let mut m = Model {
        agents: vec![None; AGENTS.len()],
        ..Model::default()
    };
    for op in ops {
        match op {
            Op::AddAgent(i) => {
                if m.agents[i].is_none() {
                    let total = Resources::parse(AGENTS[i]).unwrap();
                    let spec = AgentSpec {
                        total: total.clone(),
                        ..AgentSpec::default()
                    };
                    a.add_agent(&AgentId::new(format!("a{i}")), spec, &[])
                        .unwrap();
                    m.agents[i] = Some(total);
                }
            }
            Op::RemoveAgent(i) => {
                if m.agents[i].take().is_some() {
                    let id = AgentId::new(format!("a{i}"));
                    a.remove_agent(&id).unwrap();
                    m.offers.retain(|o| o.agent != id);
                    m.running.retain(|o| o.agent != id);
                    m.filters.retain(|f| f.agent != id);
                }
            }
            Op::Allocate(ms) => {
                now += Duration::from_millis(u64::from(ms));
                let runs = a.allocation_runs();
                let offers = a.allocate(now);
                let ran = a.allocation_runs() > runs;
                for o in &offers {
                    let unalloc = o.resources.unallocate();
                    for f in &m.filters {
                        let filtered = f.framework == o.framework
                            && f.agent == o.agent
                            && *f.role == *o.role
                            && f.expires > now
                            && f.refused.contains(&unalloc);
                        prop_assert!(!filtered, "filtered offer {:?}", o);
                    }
                    prop_assert!(!o.resources.is_empty());
                    prop_assert!(o
                        .resources
                        .iter()
                        .all(|r| r.allocation_role.as_deref() == Some(&*o.role)));
                }
                m.offers.extend(offers);
                check_agents(&a, &m)?;
                // Quota: the guarantee is met, or no active agent has unreserved resources
                // of a name still short.
                let held: Vec<&Resources> = m
                    .offers
                    .iter()
                    .chain(&m.running)
                    .filter(|o| &*o.role == "q")
                    .map(|o| &o.resources)
                    .collect();
                let mut consumed = ResourceQuantities::new();
                for r in &held {
                    consumed.add_all(&r.unallocate().unreserved().scalar_quantities());
                }
                for (i, total) in m.agents.iter().enumerate() {
                    if total.is_none() {
                        continue;
                    }
                    if let Some(r) = total.as_ref() {
                        consumed.add_all(&r.reserved_to("q").scalar_quantities());
                    }
                    let _ = i;
                }
                let mut short = guarantee.clone();
                short.subtract(&consumed);
                // (Only right after a cycle: recovered resources wait for the next one.)
                for (name, _) in short.iter().filter(|_| ran) {
                    for i in 0..AGENTS.len() {
                        let id = AgentId::new(format!("a{i}"));
                        if m.agents[i].is_none() || !a.last_cycle_covered(&id) {
                            continue;
                        }
                        let avail = a.available(&id).unwrap();
                        let free = avail.unreserved().scalar_value(name);
                        prop_assert!(
                            free.is_none(),
                            "quota short of {} while agent a{} has {:?} unreserved",
                            name,
                            i,
                            free
                        );
                    }
                }
            }
            Op::Decline { offer, refuse_ms } => {
                if m.offers.is_empty() {
                    continue;
                }
                let o = m.offers.remove(offer % m.offers.len());
                let refuse = if o.framework.as_str() == "f0" {
                    None
                } else {
                    refuse_ms.map(|ms| Duration::from_millis(u64::from(ms)))
                };
                a.recover_resources(now, &o.framework, &o.agent, &o.resources, refuse)
                    .unwrap();
                if let Some(d) = refuse.filter(|d| !d.is_zero()) {
                    m.filters.push(Filter {
                        framework: o.framework.clone(),
                        agent: o.agent.clone(),
                        role: o.role.to_string(),
                        refused: o.resources.unallocate(),
                        expires: now + d.max(Duration::from_secs(1)),
                    });
                }
            }
            Op::Accept(i) => {
                if !m.offers.is_empty() {
                    let o = m.offers.remove(i % m.offers.len());
                    m.running.push(o);
                }
            }
            Op::Finish(i) => {
                if !m.running.is_empty() {
                    let o = m.running.remove(i % m.running.len());
                    a.recover_resources(now, &o.framework, &o.agent, &o.resources, None)
                        .unwrap();
                }
            }
            Op::Suppress(f) => a.suppress(&FrameworkId::new(FRAMEWORKS[f].0), &[]).unwrap(),
            Op::Revive(f) => {
                let id = FrameworkId::new(FRAMEWORKS[f].0);
                a.revive(now, &id, &[]).unwrap();
                m.filters.retain(|x| x.framework != id);
            }
            Op::Deactivate(f) => {
                let id = FrameworkId::new(FRAMEWORKS[f].0);
                a.deactivate_framework(&id).unwrap();
                m.filters.retain(|x| x.framework != id);
            }
            Op::Activate(f) => a
                .activate_framework(&FrameworkId::new(FRAMEWORKS[f].0))
                .unwrap(),
        }
        check_agents(&a, &m)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn allocator_safety_properties_hold(ops in proptest::collection::vec(op(), 1..120)) {
        run(ops)?;
    }
}
