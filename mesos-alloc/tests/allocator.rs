//! The hierarchical allocator against the behaviour of Mesos' allocator tests
//! (`src/tests/hierarchical_allocator_tests.cpp`), written from the reference's semantics.

use std::time::Duration;

use mesos_alloc::sorter::SorterKind;
use mesos_alloc::{AllocatorConfig, HierarchicalAllocator};
use mesos_core::allocator::{
    AgentSpec, Allocation, Allocator, AllocatorError, FrameworkSpec, Quota,
};
use mesos_core::ids::{AgentId, FrameworkId};
use mesos_core::resources::{ResourceQuantities, Resources};
use mesos_core::time::Time;

fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

fn agent_spec(text: &str) -> AgentSpec {
    AgentSpec {
        hostname: "host".into(),
        total: res(text),
        ..AgentSpec::default()
    }
}

fn fw_spec(roles: &[&str]) -> FrameworkSpec {
    FrameworkSpec {
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..FrameworkSpec::default()
    }
}

fn t(secs: f64) -> Time {
    Time::from_secs_f64(1000.0 + secs)
}

fn aid(s: &str) -> AgentId {
    AgentId::new(s)
}

fn fid(s: &str) -> FrameworkId {
    FrameworkId::new(s)
}

fn new_alloc() -> HierarchicalAllocator {
    HierarchicalAllocator::new(AllocatorConfig::default())
}

fn add_fw(a: &mut HierarchicalAllocator, id: &str, roles: &[&str]) {
    a.add_framework(t(0.0), &fid(id), fw_spec(roles), &[], true)
        .unwrap();
}

fn add_agent(a: &mut HierarchicalAllocator, id: &str, text: &str) {
    a.add_agent(&aid(id), agent_spec(text), &[]).unwrap();
}

fn decline(a: &mut HierarchicalAllocator, now: Time, o: &Allocation, refuse: Option<Duration>) {
    a.recover_resources(now, &o.framework, &o.agent, &o.resources, refuse)
        .unwrap();
}

/// The single offer of a cycle.
fn one(offers: Vec<Allocation>) -> Allocation {
    assert_eq!(offers.len(), 1, "{offers:#?}");
    offers.into_iter().next().unwrap()
}

#[test]
fn unreserved_drf_offers_each_new_agent_to_the_lowest_share() {
    let mut a = new_alloc();
    add_agent(&mut a, "s1", "cpus:2;mem:1024;disk:0");
    add_fw(&mut a, "f1", &["role1"]);
    // s1 goes to f1, the only framework.
    assert_eq!(a.agent_info(&aid("s1")).map(|(h, _)| h), Some("host"));
    let o = one(a.allocate(t(0.0)));
    assert_eq!((o.framework.as_str(), &*o.role), ("f1", "role1"));
    assert_eq!(o.resources, res("cpus:2;mem:1024").allocate("role1"));

    add_fw(&mut a, "f2", &["role2"]);
    add_agent(&mut a, "s2", "cpus:1;mem:512;disk:0");
    // role2 has share 0 < role1's.
    let o = one(a.allocate(t(0.0)));
    assert_eq!((o.framework.as_str(), o.agent.as_str()), ("f2", "s2"));

    add_agent(&mut a, "s3", "cpus:3;mem:2048;disk:0");
    // Totals cpus:6 mem:3584: role1 = 2/6 = .33, role2 = 1/6 = .17.
    let o = one(a.allocate(t(0.0)));
    assert_eq!((o.framework.as_str(), o.agent.as_str()), ("f2", "s3"));

    add_fw(&mut a, "f3", &["role1"]);
    add_agent(&mut a, "s4", "cpus:4;mem:4096;disk:0");
    // role1 = .2 < role2 = .4 (cpus 4/10); inside role1, f3 has nothing.
    let o = one(a.allocate(t(0.0)));
    assert_eq!((o.framework.as_str(), o.agent.as_str()), ("f3", "s4"));
}

#[test]
fn reserved_resources_go_only_to_their_role_and_its_subroles() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["role1"]);
    add_fw(&mut a, "f2", &["role2"]);
    add_fw(&mut a, "f3", &["role1/sub"]);
    add_agent(&mut a, "s1", "cpus(role1):2;mem(role1):1024");
    let o = one(a.allocate(t(0.0)));
    assert!(["f1", "f3"].contains(&o.framework.as_str()), "{o:?}");
    assert_eq!(
        o.resources,
        res("cpus(role1):2;mem(role1):1024").allocate(&o.role)
    );
    decline(&mut a, t(0.0), &o, None);
    a.suppress(&fid("f1"), &[]).unwrap();
    a.suppress(&fid("f3"), &[]).unwrap();
    // Nobody else may have them.
    assert!(a.allocate(t(1.0)).is_empty());
    a.revive(t(1.0), &fid("f3"), &[]).unwrap();
    let o = one(a.allocate(t(1.0)));
    assert_eq!((o.framework.as_str(), &*o.role), ("f3", "role1/sub"));
}

#[test]
fn reserved_and_unreserved_resources_are_offered_together_coarse_grained() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["role1"]);
    add_agent(
        &mut a,
        "s1",
        "cpus:2;mem:512;cpus(role1):1;mem(role1):256;ports:[31000-32000]",
    );
    let o = one(a.allocate(t(0.0)));
    assert_eq!(
        o.resources,
        res("cpus:2;mem:512;cpus(role1):1;mem(role1):256;ports:[31000-32000]").allocate("role1")
    );
    assert!(a.available(&aid("s1")).unwrap().is_empty());
}

#[test]
fn frameworks_with_the_same_share_split_agents_evenly() {
    let mut a = new_alloc();
    for i in 0..2 {
        add_fw(&mut a, &format!("f{i}"), &["r"]);
    }
    for i in 0..10 {
        add_agent(&mut a, &format!("s{i}"), "cpus:1;mem:512");
    }
    let offers = a.allocate(t(0.0));
    assert_eq!(offers.len(), 10);
    let f0 = offers
        .iter()
        .filter(|o| o.framework.as_str() == "f0")
        .count();
    assert_eq!(f0, 5);
}

#[test]
fn declined_resources_are_filtered_until_the_filter_expires() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    let o = one(a.allocate(t(0.0)));
    decline(&mut a, t(0.0), &o, Some(Duration::from_secs(5)));
    assert!(a.is_filtered(t(0.5), &fid("f1"), &aid("s1"), "r"));
    for s in 1..5 {
        assert!(a.allocate(t(s as f64)).is_empty(), "offered at {s}s");
    }
    let o = one(a.allocate(t(5.0)));
    assert_eq!(o.agent.as_str(), "s1");
    assert_eq!(a.filter_count(), 0);
}

#[test]
fn filters_last_at_least_one_allocation_interval_and_zero_means_none() {
    let config = AllocatorConfig {
        allocation_interval: Duration::from_millis(500),
        ..AllocatorConfig::default()
    };
    let mut a = HierarchicalAllocator::new(config);
    add_fw(&mut a, "f1", &["r"]);
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    let o = one(a.allocate(t(0.0)));
    // 0.1 s is shorter than the interval: the filter lasts 0.5 s.
    decline(&mut a, t(0.0), &o, Some(Duration::from_millis(100)));
    assert!(a.allocate(t(0.1)).is_empty());
    assert!(a.allocate(t(0.49)).is_empty());
    let o = one(a.allocate(t(0.5)));
    // refuse_seconds = 0: no filter at all.
    decline(&mut a, t(0.5), &o, Some(Duration::ZERO));
    assert_eq!(a.filter_count(), 0);
    let o = one(a.allocate(t(1.0)));
    // Huge values are capped at 365 days.
    decline(&mut a, t(1.0), &o, Some(Duration::from_secs(u64::MAX / 4)));
    let year = 365.0 * 24.0 * 3600.0;
    assert!(a.allocate(t(1.0 + year - 1.0)).is_empty());
    assert_eq!(one(a.allocate(t(1.0 + year))).agent.as_str(), "s1");
}

#[test]
fn a_filter_only_blocks_offers_it_contains() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["other"]);
    a.suppress(&fid("f2"), &[]).unwrap();
    add_agent(&mut a, "s1", "cpus:2;mem:1024");
    let o = one(a.allocate(t(0.0)));
    // Accept half, decline the other half for a long time.
    let half = res("cpus:1;mem:512").allocate("r");
    decline(
        &mut a,
        t(0.0),
        &Allocation {
            resources: half.clone(),
            ..o.clone()
        },
        Some(Duration::from_secs(100)),
    );
    assert!(a.allocate(t(1.0)).is_empty());
    // The task finishes: the agent now has more than was refused, so the filter lets it pass.
    decline(
        &mut a,
        t(1.5),
        &Allocation {
            resources: half,
            ..o
        },
        None,
    );
    let o = one(a.allocate(t(2.0)));
    assert_eq!(o.resources, res("cpus:2;mem:1024").allocate("r"));
}

#[test]
fn offers_below_the_minimum_are_not_made() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_agent(&mut a, "tiny", "cpus:0.005;mem:16");
    assert!(a.allocate(t(0.0)).is_empty());
    // Either minimum is enough: cpus >= 0.01 or mem >= 32.
    add_agent(&mut a, "cpu_only", "cpus:0.01;mem:1");
    add_agent(&mut a, "mem_only", "cpus:0.001;mem:32");
    let mut got: Vec<String> = a
        .allocate(t(1.0))
        .iter()
        .map(|o| o.agent.to_string())
        .collect();
    got.sort();
    assert_eq!(got, ["cpu_only", "mem_only"]);

    // A framework's own minimum replaces the global one.
    let mut spec = fw_spec(&["r2"]);
    spec.min_allocatable = vec![(
        "r2".into(),
        vec![ResourceQuantities::parse("cpus:4").unwrap()],
    )];
    a.add_framework(t(2.0), &fid("f2"), spec, &[], true)
        .unwrap();
    a.suppress(&fid("f1"), &[]).unwrap();
    add_agent(&mut a, "small", "cpus:2;mem:4096");
    assert!(a.allocate(t(2.0)).is_empty());
    add_agent(&mut a, "big", "cpus:4;mem:64");
    let o = one(a.allocate(t(3.0)));
    assert_eq!((o.framework.as_str(), o.agent.as_str()), ("f2", "big"));
}

#[test]
fn suppressed_frameworks_get_nothing_until_revived() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    let o = one(a.allocate(t(0.0)));
    // Declined without a filter: only the suppression can keep the agent from f1.
    decline(&mut a, t(0.0), &o, None);
    a.suppress(&fid("f1"), &[]).unwrap();
    // A cycle is due (the periodic one) and runs over s1, which has everything available.
    assert!(a.poll_timeout().is_some_and(|due| due <= t(10.0)));
    let runs = a.allocation_runs();
    assert!(a.allocate(t(10.0)).is_empty());
    assert_eq!(a.allocation_runs(), runs + 1, "no cycle ran");
    assert!(a.last_cycle_covered(&aid("s1")));
    assert_eq!(a.available(&aid("s1")), Some(res("cpus:1;mem:512")));
    // Revive asks for a cycle.
    a.revive(t(11.0), &fid("f1"), &[]).unwrap();
    assert_eq!(a.poll_timeout(), Some(t(11.0)));
    assert_eq!(one(a.allocate(t(11.0))).agent.as_str(), "s1");
}

#[test]
fn revive_clears_filters() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    let o = one(a.allocate(t(0.0)));
    decline(&mut a, t(0.0), &o, Some(Duration::from_secs(1000)));
    assert!(a.allocate(t(5.0)).is_empty());
    a.revive(t(6.0), &fid("f1"), &[]).unwrap();
    assert_eq!(one(a.allocate(t(6.0))).agent.as_str(), "s1");
}

#[test]
fn suppress_and_revive_per_role() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r1", "r2"]);
    a.suppress(&fid("f1"), &["r1".into()]).unwrap();
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    let o = one(a.allocate(t(0.0)));
    assert_eq!(&*o.role, "r2");
    decline(&mut a, t(0.0), &o, None);
    a.suppress(&fid("f1"), &["r2".into()]).unwrap();
    let runs = a.allocation_runs();
    assert!(a.allocate(t(1.0)).is_empty());
    assert_eq!(a.allocation_runs(), runs + 1, "no cycle ran");
    a.revive(t(1.0), &fid("f1"), &["r1".into()]).unwrap();
    assert_eq!(&*one(a.allocate(t(1.0))).role, "r1");
}

#[test]
fn deactivated_frameworks_get_nothing_and_lose_their_filters() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    let o = one(a.allocate(t(0.0)));
    decline(&mut a, t(0.0), &o, Some(Duration::from_secs(1000)));
    a.deactivate_framework(&fid("f1")).unwrap();
    assert_eq!(a.filter_count(), 0);
    assert!(a.allocate(t(5.0)).is_empty());
    a.activate_framework(&fid("f1")).unwrap();
    assert_eq!(one(a.allocate(t(6.0))).agent.as_str(), "s1");
}

#[test]
fn inactive_agents_are_not_offered() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_agent(&mut a, "s1", "cpus:1;mem:512");
    a.set_agent_active(&aid("s1"), false).unwrap();
    assert!(a.allocate(t(0.0)).is_empty());
    a.set_agent_active(&aid("s1"), true).unwrap();
    assert_eq!(one(a.allocate(t(0.5))).agent.as_str(), "s1");
}

#[test]
fn quota_guarantee_is_met_before_fair_share() {
    let mut a = new_alloc();
    add_fw(&mut a, "fq", &["quota"]);
    add_fw(&mut a, "fn", &["noquota"]);
    a.set_quota(
        "quota",
        Quota {
            guarantees: ResourceQuantities::parse("cpus:2;mem:1024").unwrap(),
            limits: ResourceQuantities::default(),
        },
    )
    .unwrap();
    // The quota role already holds more than the non-quota role, so DRF alone would favour
    // `noquota`; the guarantee still comes first.
    add_agent(&mut a, "s0", "cpus:1;mem:512");
    let o = one(a.allocate(t(0.0)));
    assert_eq!(o.framework.as_str(), "fq");
    for i in 1..4 {
        add_agent(&mut a, &format!("s{i}"), "cpus:1;mem:512");
    }
    let offers = a.allocate(t(1.0));
    let quota_cpus: f64 = offers
        .iter()
        .filter(|o| &*o.role == "quota")
        .map(|o| o.resources.cpus())
        .sum();
    // One more cpu meets the guarantee (2 cpus); the rest goes to the non-quota role, which
    // may not take the headroom the guarantee needs.
    assert_eq!(quota_cpus, 1.0, "{offers:#?}");
    let other: f64 = offers
        .iter()
        .filter(|o| &*o.role == "noquota")
        .map(|o| o.resources.cpus())
        .sum();
    assert_eq!(other, 2.0);
}

#[test]
fn quota_headroom_is_kept_for_unmet_guarantees() {
    let mut a = new_alloc();
    add_fw(&mut a, "fn", &["noquota"]);
    // The guarantee exists but its role has no framework: the headroom must stay free.
    a.set_quota(
        "quota",
        Quota {
            guarantees: ResourceQuantities::parse("cpus:2;mem:1024").unwrap(),
            limits: ResourceQuantities::default(),
        },
    )
    .unwrap();
    for i in 0..3 {
        add_agent(&mut a, &format!("s{i}"), "cpus:1;mem:512");
    }
    let offers = a.allocate(t(0.0));
    let cpus: f64 = offers.iter().map(|o| o.resources.cpus()).sum();
    assert_eq!(cpus, 1.0, "{offers:#?}");
}

#[test]
fn quota_limit_caps_a_role() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["capped"]);
    a.set_quota(
        "capped",
        Quota {
            guarantees: ResourceQuantities::default(),
            limits: ResourceQuantities::parse("cpus:3;mem:1024").unwrap(),
        },
    )
    .unwrap();
    for i in 0..3 {
        add_agent(&mut a, &format!("s{i}"), "cpus:2;mem:256");
    }
    let offers = a.allocate(t(0.0));
    let cpus: f64 = offers.iter().map(|o| o.resources.cpus()).sum();
    let mem: f64 = offers.iter().map(|o| o.resources.mem()).sum();
    assert_eq!(cpus, 3.0, "{offers:#?}");
    assert!(mem <= 1024.0);
    // Nested roles count toward their top-level role's limit.
    add_fw(&mut a, "f2", &["capped/child"]);
    assert!(a.allocate(t(1.0)).iter().all(|o| o.resources.cpus() == 0.0));
}

#[test]
fn weights_skew_the_fair_share() {
    let mut a = new_alloc();
    a.set_weight("heavy", 2.0).unwrap();
    add_fw(&mut a, "fh", &["heavy"]);
    add_fw(&mut a, "fl", &["light"]);
    for i in 0..30 {
        add_agent(&mut a, &format!("s{i}"), "cpus:1;mem:512");
    }
    let offers = a.allocate(t(0.0));
    let heavy = offers.iter().filter(|o| &*o.role == "heavy").count();
    assert_eq!((heavy, offers.len() - heavy), (20, 10));
}

#[test]
fn events_request_one_coalesced_cycle_and_the_periodic_cycle_follows() {
    let mut a = new_alloc();
    assert_eq!(a.poll_timeout(), Some(Time::ZERO));
    assert!(a.allocate(t(0.0)).is_empty());
    assert_eq!(a.allocation_runs(), 1);
    assert_eq!(a.poll_timeout(), Some(t(1.0)));
    // Not due: nothing runs.
    assert!(a.allocate(t(0.5)).is_empty());
    assert_eq!(a.allocation_runs(), 1);
    add_fw(&mut a, "f1", &["r"]);
    for i in 0..5 {
        add_agent(&mut a, &format!("s{i}"), "cpus:1;mem:512");
    }
    assert_eq!(a.poll_timeout(), Some(t(0.0)));
    assert_eq!(a.allocate(t(0.6)).len(), 5);
    assert_eq!(a.allocation_runs(), 2);
    assert!(a.allocate(t(0.7)).is_empty());
    assert_eq!(a.allocation_runs(), 2);
    assert!(a.allocate(t(1.0)).is_empty());
    assert_eq!(a.allocation_runs(), 3);
}

#[test]
fn gpu_agents_only_go_to_gpu_capable_frameworks() {
    let mut a = new_alloc();
    add_fw(&mut a, "plain", &["r"]);
    add_agent(&mut a, "gpu", "cpus:1;mem:512;gpus:1");
    assert!(a.allocate(t(0.0)).is_empty());
    let mut spec = fw_spec(&["r"]);
    spec.gpu_capable = true;
    a.add_framework(t(1.0), &fid("gpufw"), spec, &[], true)
        .unwrap();
    assert_eq!(one(a.allocate(t(1.0))).framework.as_str(), "gpufw");
}

#[test]
fn used_resources_count_at_registration() {
    let mut a = new_alloc();
    add_agent(&mut a, "s1", "cpus:4;mem:1024");
    a.add_framework(
        t(0.0),
        &fid("f1"),
        fw_spec(&["r"]),
        &[(aid("s1"), res("cpus:3;mem:512").allocate("r"))],
        true,
    )
    .unwrap();
    assert_eq!(a.available(&aid("s1")).unwrap(), res("cpus:1;mem:512"));
    let o = one(a.allocate(t(0.0)));
    assert_eq!(o.resources, res("cpus:1;mem:512").allocate("r"));
    // The master recovers the used part when the task ends.
    a.recover_resources(
        t(1.0),
        &fid("f1"),
        &aid("s1"),
        &res("cpus:3;mem:512").allocate("r"),
        None,
    )
    .unwrap();
    assert_eq!(a.available(&aid("s1")).unwrap(), res("cpus:3;mem:512"));
}

#[test]
fn random_sorters_are_selectable_and_deterministic() {
    let run = || {
        let config = AllocatorConfig {
            role_sorter: SorterKind::Random,
            framework_sorter: SorterKind::Random,
            seed: 99,
            ..AllocatorConfig::default()
        };
        let mut a = HierarchicalAllocator::new(config);
        for i in 0..4 {
            add_fw(&mut a, &format!("f{i}"), &[&format!("r{}", i % 2)]);
        }
        for i in 0..20 {
            add_agent(&mut a, &format!("s{i}"), "cpus:1;mem:512");
        }
        a.allocate(t(0.0))
            .into_iter()
            .map(|o| (o.framework.to_string(), o.agent.to_string()))
            .collect::<Vec<_>>()
    };
    let first = run();
    assert_eq!(first.len(), 20);
    assert_eq!(first, run());
}

// ---- Bad input: a typed error and no change -----------------------------------------------

fn snapshot(a: &HierarchicalAllocator) -> String {
    let mut agents: Vec<String> = ["s1", "s2"]
        .iter()
        .map(|s| format!("{:?} {:?}", a.available(&aid(s)), a.allocated_on(&aid(s))))
        .collect();
    agents.push(format!("{:?}", a.roles()));
    agents.push(format!(
        "{} {} {}",
        a.agent_count(),
        a.framework_count(),
        a.filter_count()
    ));
    agents.push(format!("{:?} {:?}", a.quota("q"), a.poll_timeout()));
    agents.join("\n")
}

#[test]
fn bad_input_gives_typed_errors_and_leaves_state_unchanged() {
    let mut a = new_alloc();
    add_agent(&mut a, "s1", "cpus:2;mem:1024");
    add_fw(&mut a, "f1", &["r"]);
    let o = one(a.allocate(t(0.0)));
    let before = snapshot(&a);
    let unknown_fw = fid("nope");
    let unknown_agent = aid("nope");

    assert_eq!(
        a.add_framework(t(1.0), &fid("f1"), fw_spec(&["r"]), &[], true),
        Err(AllocatorError::DuplicateFramework(fid("f1")))
    );
    assert!(matches!(
        a.add_framework(t(1.0), &fid("f2"), fw_spec(&["bad//role"]), &[], true),
        Err(AllocatorError::InvalidRole { .. })
    ));
    let mut spec = fw_spec(&["r"]);
    spec.suppressed_roles = vec!["other".into()];
    assert_eq!(
        a.add_framework(t(1.0), &fid("f2"), spec, &[], true),
        Err(AllocatorError::UnknownRole("other".into()))
    );
    assert_eq!(
        a.add_framework(
            t(1.0),
            &fid("f2"),
            fw_spec(&["r"]),
            &[(unknown_agent.clone(), res("cpus:1"))],
            true
        ),
        Err(AllocatorError::UnknownAgent(unknown_agent.clone()))
    );
    assert!(matches!(
        a.add_framework(
            t(1.0),
            &fid("f2"),
            fw_spec(&["r"]),
            &[(aid("s1"), res("cpus:1"))],
            true
        ),
        Err(AllocatorError::ExceedsAgent { .. })
    ));
    assert_eq!(
        a.update_framework(&unknown_fw, fw_spec(&["r"])),
        Err(AllocatorError::UnknownFramework(unknown_fw.clone()))
    );
    assert_eq!(
        a.remove_framework(&unknown_fw),
        Err(AllocatorError::UnknownFramework(unknown_fw.clone()))
    );
    assert_eq!(
        a.activate_framework(&unknown_fw),
        Err(AllocatorError::UnknownFramework(unknown_fw.clone()))
    );
    assert_eq!(
        a.deactivate_framework(&unknown_fw),
        Err(AllocatorError::UnknownFramework(unknown_fw.clone()))
    );
    assert_eq!(
        a.add_agent(&aid("s1"), agent_spec("cpus:1"), &[]),
        Err(AllocatorError::DuplicateAgent(aid("s1")))
    );
    assert_eq!(
        a.add_agent(
            &aid("s2"),
            agent_spec("cpus:1"),
            &[(unknown_fw.clone(), res("cpus:1"))]
        ),
        Err(AllocatorError::UnknownFramework(unknown_fw.clone()))
    );
    assert!(matches!(
        a.add_agent(
            &aid("s2"),
            agent_spec("cpus:1"),
            &[(fid("f1"), res("cpus:2"))]
        ),
        Err(AllocatorError::ExceedsAgent { .. })
    ));
    assert!(matches!(
        a.add_agent(
            &aid("s2"),
            agent_spec("cpus:1"),
            &[(fid("f1"), res("cpus:1").allocate("a//b"))]
        ),
        Err(AllocatorError::InvalidRole { .. })
    ));
    assert_eq!(
        a.remove_agent(&unknown_agent),
        Err(AllocatorError::UnknownAgent(unknown_agent.clone()))
    );
    assert_eq!(
        a.set_agent_active(&unknown_agent, false),
        Err(AllocatorError::UnknownAgent(unknown_agent.clone()))
    );
    assert_eq!(
        a.recover_resources(t(1.0), &unknown_fw, &aid("s1"), &o.resources, None),
        Err(AllocatorError::UnknownFramework(unknown_fw.clone()))
    );
    assert_eq!(
        a.recover_resources(t(1.0), &fid("f1"), &unknown_agent, &o.resources, None),
        Err(AllocatorError::UnknownAgent(unknown_agent.clone()))
    );
    // More than was offered.
    assert!(matches!(
        a.recover_resources(
            t(1.0),
            &fid("f1"),
            &aid("s1"),
            &res("cpus:3").allocate("r"),
            Some(Duration::from_secs(5))
        ),
        Err(AllocatorError::ExceedsAgent { .. })
    ));
    assert_eq!(
        a.suppress(&fid("f1"), &["r".into(), "other".into()]),
        Err(AllocatorError::UnknownRole("other".into()))
    );
    assert_eq!(
        a.revive(t(1.0), &fid("f1"), &["other".into()]),
        Err(AllocatorError::UnknownRole("other".into()))
    );
    for w in [-1.0, 0.0, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                a.set_weight("r", w),
                Err(AllocatorError::InvalidWeight { .. })
            ),
            "{w}"
        );
    }
    assert!(matches!(
        a.set_weight("/r", 2.0),
        Err(AllocatorError::InvalidRole { .. })
    ));
    let above = Quota {
        guarantees: ResourceQuantities::parse("cpus:4").unwrap(),
        limits: ResourceQuantities::parse("cpus:2").unwrap(),
    };
    let err = a.set_quota("q", above).unwrap_err();
    assert!(matches!(err, AllocatorError::InvalidQuota { .. }));
    assert!(err.to_string().contains("cpus:4"), "{err}");
    assert!(matches!(
        a.set_quota("q/nested", Quota::default()),
        Err(AllocatorError::InvalidQuota { .. })
    ));
    assert_eq!(snapshot(&a), before);
    // And the allocator still works.
    decline(&mut a, t(1.0), &o, None);
    assert_eq!(one(a.allocate(t(1.0))).agent.as_str(), "s1");
}

#[test]
fn the_quota_stage_serves_roles_in_drf_order() {
    let mut a = new_alloc();
    for role in ["a", "b", "c"] {
        a.set_quota(
            role,
            Quota {
                guarantees: ResourceQuantities::parse("cpus:2").unwrap(),
                limits: ResourceQuantities::default(),
            },
        )
        .unwrap();
    }
    add_agent(&mut a, "s0", "cpus:1;mem:100");
    a.add_framework(
        t(0.0),
        &fid("fa"),
        fw_spec(&["a"]),
        &[(aid("s0"), res("cpus:1;mem:100").allocate("a"))],
        true,
    )
    .unwrap();
    add_fw(&mut a, "fb", &["b"]);
    add_fw(&mut a, "fc", &["c"]);
    a.allocate(t(0.0));
    add_agent(&mut a, "s1", "cpus:1;mem:100");
    add_agent(&mut a, "s2", "cpus:1;mem:100");
    // Shares: a = 1/3, b = c = 0. The first agent goes to b (share 0, `b` < `c`); b then ties
    // with a on share and count, but c (share 0) comes first for the second agent.
    let mut roles: Vec<String> = a
        .allocate(t(1.0))
        .into_iter()
        .map(|o| o.role.to_string())
        .collect();
    roles.sort();
    assert_eq!(roles, ["b", "c"]);
}

#[test]
fn bags_round_trip_reserved_and_custom_resources() {
    // Reservations, custom scalars, sets and non-ports ranges all live in a Bag's remainder.
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    let total = "cpus:1;mem:64;cpus(r):2;gpus:0;foo:3;disks:{d1,d2};vlans:[5-9];ports:[1-2,7-8]";
    add_agent(&mut a, "s1", total);
    assert_eq!(a.total(&aid("s1")).unwrap(), res(total));
    let o = one(a.allocate(t(0.0)));
    assert_eq!(o.resources, res(total).allocate("r"));
    assert!(a.available(&aid("s1")).unwrap().is_empty());
    let part = res("cpus(r):1;foo:1;disks:{d2};ports:[7-8]").allocate("r");
    a.recover_resources(t(0.0), &fid("f1"), &aid("s1"), &part, None)
        .unwrap();
    assert_eq!(
        a.available(&aid("s1")).unwrap(),
        res("cpus(r):1;foo:1;disks:{d2};ports:[7-8]")
    );
    assert_eq!(a.total(&aid("s1")).unwrap(), res(total));
}

#[test]
fn resources_handed_back_without_a_role_are_matched_to_the_role_holding_them() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r1", "r2"]);
    a.suppress(&fid("f1"), &["r1".into()]).unwrap();
    add_agent(&mut a, "s1", "cpus:2;mem:1024");
    let o = one(a.allocate(t(0.0)));
    assert_eq!(&*o.role, "r2");
    // A task's resources as a framework might send them: no allocation role.
    a.recover_resources(t(1.0), &fid("f1"), &aid("s1"), &res("cpus:1;mem:512"), None)
        .unwrap();
    assert_eq!(a.available(&aid("s1")).unwrap(), res("cpus:1;mem:512"));
    // More than it holds in any role is refused, and nothing changes.
    assert!(matches!(
        a.recover_resources(t(1.0), &fid("f1"), &aid("s1"), &res("cpus:2"), None),
        Err(AllocatorError::ExceedsAgent { .. })
    ));
    assert_eq!(a.available(&aid("s1")).unwrap(), res("cpus:1;mem:512"));
}

/// Every entry of an offer is allocated to the offer's role.
fn assert_tagged(o: &Allocation) {
    for e in &o.resources {
        assert_eq!(e.allocation_role.as_deref(), Some(&*o.role), "{o:?}");
    }
}

#[test]
fn a_declined_offer_is_offered_again_as_the_same_list() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    add_agent(&mut a, "s1", "cpus:4;mem:1024;ports:[31000-31009]");
    let o1 = one(a.allocate(t(1.0)));
    decline(&mut a, t(1.0), &o1, Some(Duration::from_secs(100)));
    let o2 = one(a.allocate(t(2.0)));
    assert_ne!(o2.framework, o1.framework);
    assert_eq!(o2.resources, o1.resources);
    assert!(o2.resources.ptr_eq(&o1.resources), "the list is reused");
    assert_tagged(&o2);
}

#[test]
fn what_comes_back_changed_is_offered_as_it_is_now() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    add_fw(&mut a, "f2", &["r"]);
    add_agent(&mut a, "s1", "cpus:4;mem:1024;ports:[31000-31009]");
    let o1 = one(a.allocate(t(1.0)));
    // f1 keeps a task's worth and declines the rest.
    let kept = res("cpus:1;mem:256;ports:[31000-31000]").allocate("r");
    let rest = &o1.resources - &kept;
    a.recover_resources(
        t(1.0),
        &o1.framework,
        &o1.agent,
        &rest,
        Some(Duration::from_secs(100)),
    )
    .unwrap();
    let o2 = one(a.allocate(t(2.0)));
    assert_eq!(o2.resources, rest);
    assert!(!o2.resources.ptr_eq(&o1.resources));
    // The task ends: its resources join what is offered next, not the old list.
    decline(&mut a, t(2.0), &o2, None);
    a.recover_resources(t(3.0), &o1.framework, &o1.agent, &kept, None)
        .unwrap();
    let o3 = one(a.allocate(t(3.0)));
    assert_eq!(o3.resources, o1.resources);
    assert!(!o3.resources.ptr_eq(&o1.resources));
    assert_tagged(&o3);
}

#[test]
fn a_reused_list_is_only_offered_in_its_own_role() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["a"]);
    add_agent(&mut a, "s1", "cpus:4;mem:1024");
    let o1 = one(a.allocate(t(1.0)));
    assert_eq!(&*o1.role, "a");
    decline(&mut a, t(1.0), &o1, None);
    // Role `a` goes away with its only framework; `b` may take its place in the allocator.
    a.remove_framework(&fid("f1")).unwrap();
    add_fw(&mut a, "f2", &["b"]);
    let o2 = one(a.allocate(t(2.0)));
    assert_eq!(&*o2.role, "b");
    assert_tagged(&o2);
    assert_eq!(o2.resources.unallocate(), o1.resources.unallocate());
}

#[test]
fn agents_with_the_same_available_resources_share_one_offer_list() {
    let mut a = new_alloc();
    add_fw(&mut a, "f1", &["r"]);
    for s in ["s1", "s2"] {
        add_agent(&mut a, s, "cpus:4;mem:1024;ports:[31000-31009]");
    }
    add_agent(&mut a, "s3", "cpus:4;mem:1024;ports:[31000-31008]");
    let offers = a.allocate(t(1.0));
    assert_eq!(offers.len(), 3);
    let on = |s: &str| offers.iter().find(|o| o.agent == aid(s)).unwrap();
    assert!(on("s1").resources.ptr_eq(&on("s2").resources));
    assert!(!on("s3").resources.ptr_eq(&on("s1").resources));
    assert_eq!(
        on("s3").resources,
        res("cpus:4;mem:1024;ports:[31000-31008]").allocate("r")
    );
    for o in &offers {
        assert_tagged(o);
        assert_eq!(o.resources.unallocate(), a.total(&o.agent).unwrap());
    }
}
