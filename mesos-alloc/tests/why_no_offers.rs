//! `HierarchicalAllocator::why_no_offers`: each check's rejections counted per framework, role
//! and reason, every agent a cycle looks at counted once.

use std::time::Duration;

use mesos_alloc::{AllocatorConfig, HierarchicalAllocator, Reject};
use mesos_core::allocator::{AgentSpec, Allocator, FrameworkSpec, Quota};
use mesos_core::ids::{AgentId, FrameworkId};
use mesos_core::resources::{ResourceQuantities, Resources};
use mesos_core::time::Time;

fn t(secs: f64) -> Time {
    Time::from_secs_f64(1000.0 + secs)
}

fn add_agent(a: &mut HierarchicalAllocator, id: &str, text: &str) {
    let spec = AgentSpec {
        hostname: id.into(),
        total: Resources::parse(text).unwrap(),
        ..AgentSpec::default()
    };
    a.add_agent(&AgentId::new(id), spec, &[]).unwrap();
}

fn add_fw(a: &mut HierarchicalAllocator, id: &str, role: &str) {
    let spec = FrameworkSpec {
        roles: vec![role.into()],
        ..FrameworkSpec::default()
    };
    a.add_framework(t(0.0), &FrameworkId::new(id), spec, &[], true)
        .unwrap();
}

/// The non-zero reasons of (framework, role), and (agents, offered).
fn counts(a: &HierarchicalAllocator, fw: &str, role: &str) -> (u64, u64, Vec<(Reject, u64)>) {
    let why = a.why_no_offers();
    let e = why
        .get(&FrameworkId::new(fw), role)
        .unwrap_or_else(|| panic!("no entry for {fw} in {role}: {why:#?}"));
    let rejected: Vec<(Reject, u64)> = e.rejected.iter().filter(|(_, n)| *n > 0).collect();
    // Without quota every agent looked at is an offer or one reason.
    assert_eq!(e.offered + e.rejected.total(), e.agents, "{e:#?}");
    (e.agents, e.offered, rejected)
}

#[test]
fn each_check_counts_its_rejections() {
    let mut a = HierarchicalAllocator::new(AllocatorConfig::default());
    add_fw(&mut a, "f1", "r");
    add_agent(&mut a, "gpu", "cpus:1;mem:512;gpus:1");
    add_agent(&mut a, "tiny", "cpus:0.001;mem:1");
    add_agent(&mut a, "declined", "cpus:1;mem:512");
    add_agent(&mut a, "kept", "cpus:2;mem:1024");
    add_agent(&mut a, "drained", "cpus:1;mem:512");
    a.set_agent_active(&AgentId::new("drained"), false).unwrap();

    let offers = a.allocate(t(0.0));
    assert_eq!(offers.len(), 2, "{offers:#?}");
    assert_eq!(
        counts(&a, "f1", "r"),
        (
            5,
            2,
            vec![
                (Reject::AgentDraining, 1),
                (Reject::GpuAgent, 1),
                (Reject::BelowMinAllocatable, 1)
            ]
        )
    );
    let declined = offers
        .iter()
        .find(|o| o.agent.as_str() == "declined")
        .unwrap();
    a.recover_resources(
        t(0.0),
        &declined.framework,
        &declined.agent,
        &declined.resources,
        Some(Duration::from_secs(1000)),
    )
    .unwrap();

    // The periodic cycle: the offer kept out leaves "kept" exhausted; "gpu" and "tiny" have
    // not changed since found unofferable, so they are skipped as unchanged.
    assert!(a.allocate(t(1.0)).is_empty());
    let both = counts(&a, "f1", "r");
    assert_eq!(
        both,
        (
            10,
            2,
            vec![
                (Reject::AgentDraining, 2),
                (Reject::Exhausted, 1),
                (Reject::Unchanged, 2),
                (Reject::GpuAgent, 1),
                (Reject::BelowMinAllocatable, 1),
                (Reject::Filtered, 1),
            ]
        )
    );
    let why = a.why_no_offers();
    assert_eq!((why.first_cycle, why.last_cycle), (1, 2));
}

#[test]
fn the_window_covers_only_the_last_cycles() {
    let mut a = HierarchicalAllocator::new(AllocatorConfig {
        explain_cycles: 1,
        ..AllocatorConfig::default()
    });
    add_fw(&mut a, "f1", "r");
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    assert_eq!(a.allocate(t(0.0)).len(), 1);
    assert!(a.allocate(t(1.0)).is_empty());
    let why = a.why_no_offers();
    assert_eq!((why.first_cycle, why.last_cycle), (2, 2));
    assert_eq!(counts(&a, "f1", "r"), (1, 0, vec![(Reject::Exhausted, 1)]));
}

#[test]
fn fair_share_suppressed_and_quota_limit() {
    let mut a = HierarchicalAllocator::new(AllocatorConfig::default());
    add_fw(&mut a, "f1", "a");
    add_fw(&mut a, "f2", "a");
    add_fw(&mut a, "f3", "b");
    a.suppress(&FrameworkId::new("f3"), &[]).unwrap();
    add_fw(&mut a, "f4", "q");
    a.set_quota(
        "q",
        Quota {
            guarantees: ResourceQuantities::default(),
            limits: ResourceQuantities::parse("cpus:0.5;mem:128").unwrap(),
        },
    )
    .unwrap();
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    let offers = a.allocate(t(0.0));
    // All shares are zero: role names break the tie, so role a takes the agent, and whoever
    // of f1 and f2 comes first in it.
    let winner = offers
        .iter()
        .find(|o| &*o.role == "a")
        .map(|o| o.framework.as_str().to_string());
    let (_, f4_offered, f4_why) = counts(&a, "f4", "q");
    match winner.as_deref() {
        Some(w) => {
            let loser = if w == "f1" { "f2" } else { "f1" };
            assert_eq!(counts(&a, w, "a"), (1, 1, vec![]));
            assert_eq!(counts(&a, loser, "a"), (1, 0, vec![(Reject::FairShare, 1)]));
        }
        None => panic!("role a got nothing: {offers:#?}"),
    }
    assert_eq!(counts(&a, "f3", "b"), (1, 0, vec![(Reject::Suppressed, 1)]));
    // q sorts after a (equal shares, then names): what a left is nothing.
    assert_eq!((f4_offered, f4_why), (0, vec![(Reject::FairShare, 1)]));

    // A second agent: role a's frameworks now have a share, q none, so q goes first and
    // gets what its limits allow; a third agent finds q at its limit.
    add_agent(&mut a, "s2", "cpus:1;mem:512");
    let offers = a.allocate(t(0.5));
    let q_offer = offers.iter().find(|o| &*o.role == "q").expect("q offered");
    assert_eq!(q_offer.resources.cpus(), 0.5);
    add_agent(&mut a, "s3", "cpus:1;mem:512");
    a.allocate(t(0.7));
    let why = a.why_no_offers();
    let f4 = why.get(&FrameworkId::new("f4"), "q").unwrap();
    assert_eq!(f4.rejected.get(Reject::QuotaLimit), 1, "{f4:#?}");
}
