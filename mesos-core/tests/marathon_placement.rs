//! Placement: several instances per offer, constraints updated between them, explanations.

use std::collections::{BTreeMap, BTreeSet};

use mesos_core::attributes::Attributes;
use mesos_core::constraints::AgentView;
use mesos_core::ids::{AgentId, OfferId};
use mesos_core::marathon::{
    AppDefinition, NoMatch, Offer, OfferSummary, PathId, PlacementConfig, Placer, PortShortage,
    RejectKind, LAST_REASONS_PER_APP,
};
use mesos_core::resources::Resources;
use mesos_core::time::Time;
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

fn app(j: Value) -> AppDefinition {
    let mut j = j;
    if j.get("cmd").is_none() && j.get("container").is_none() {
        j["cmd"] = json!("x");
    }
    AppDefinition::from_json(&j).unwrap()
}

fn offer(n: usize, attrs: &str, res: &str) -> Offer {
    let mut agent = AgentView::new(format!("host{n}"));
    if !attrs.is_empty() {
        agent = agent.with_attributes(Attributes::parse(attrs).unwrap());
    }
    Offer {
        id: OfferId::new(format!("o{n}")),
        agent_id: AgentId::new(format!("a{n}")),
        agent,
        resources: Resources::parse(res).unwrap(),
    }
}

fn placer_with(apps: &[&AppDefinition]) -> Placer {
    let mut p = Placer::new(PlacementConfig::default());
    for a in apps {
        p.upsert_app(a);
        p.set_waiting(&a.id, a.instances);
    }
    p
}

fn rng() -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(3)
}

#[test]
fn several_instances_per_offer_within_resources() {
    let a = app(json!({"id": "a", "cpus": 1, "mem": 100, "instances": 10}));
    let mut p = placer_with(&[&a]);
    let out = p.process_offer(
        &offer(1, "", "cpus:3.5;mem:1000;ports:[31000-31010]"),
        Time::ZERO,
        &mut rng(),
    );
    assert_eq!(out.launches.len(), 3);
    assert_eq!(p.waiting(&a.id), 7);
    let ports: BTreeSet<u32> = out.launches.iter().flat_map(|l| l.ports()).collect();
    assert_eq!(ports.len(), 3);
    let r = out.launches[0].resources("*");
    assert_eq!(r.cpus(), 1.0);
    assert_eq!(r.ports().count(), 1);
}

#[test]
fn unique_and_max_per_are_updated_between_launches_on_one_offer() {
    let u = app(
        json!({"id": "u", "instances": 3, "cpus": 0.1, "mem": 1, "constraints": [["hostname", "UNIQUE"]]}),
    );
    let m = app(
        json!({"id": "m", "instances": 5, "cpus": 0.1, "mem": 1, "constraints": [["rack", "MAX_PER", "2"]]}),
    );
    let mut p = placer_with(&[&u, &m]);
    let out = p.process_offer(
        &offer(1, "rack:r1", "cpus:10;mem:1000;ports:[1-100]"),
        Time::ZERO,
        &mut rng(),
    );
    let per_app = |id: &str| {
        out.launches
            .iter()
            .filter(|l| l.app.to_string() == id)
            .count()
    };
    assert_eq!(per_app("/u"), 1);
    assert_eq!(per_app("/m"), 2);
    let out = p.process_offer(
        &offer(2, "rack:r1", "cpus:10;mem:1000;ports:[1-100]"),
        Time::ZERO,
        &mut rng(),
    );
    assert_eq!(out.launches.len(), 1, "u gets host2; m's rack r1 is full");
    assert!(out
        .rejections
        .iter()
        .any(|(id, why)| id.to_string() == "/m"
            && *why == NoMatch::UnfulfilledConstraint { index: 0 }));
}

#[test]
fn group_by_spreads_over_racks() {
    let g = app(
        json!({"id": "g", "instances": 6, "cpus": 0.1, "mem": 1, "constraints": [["rack", "GROUP_BY", "3"]]}),
    );
    let mut p = placer_with(&[&g]);
    let mut per_rack: BTreeMap<String, u32> = BTreeMap::new();
    let mut r = rng();
    for round in 0..4 {
        for (i, rack) in ["r1", "r2", "r3"].iter().enumerate() {
            let o = offer(
                round * 3 + i,
                &format!("rack:{rack}"),
                "cpus:10;mem:1000;ports:[1-100]",
            );
            for _ in p.process_offer(&o, Time::ZERO, &mut r).launches {
                *per_rack.entry(rack.to_string()).or_default() += 1;
            }
        }
    }
    assert_eq!(per_rack.values().sum::<u32>(), 6);
    assert!(per_rack.values().all(|n| *n == 2), "{per_rack:?}");
}

#[test]
fn every_unused_offer_says_why() {
    let big = app(json!({"id": "big", "cpus": 8, "mem": 64}));
    let mem = app(json!({"id": "mem", "cpus": 0.1, "mem": 4096}));
    let like = app(
        json!({"id": "like", "cpus": 0.1, "mem": 1, "constraints": [["rack", "LIKE", "r[0-9]"]]}),
    );
    let fixed = app(
        json!({"id": "fixed", "cpus": 0.1, "mem": 1, "container": {"docker": {"image": "i", "network": "BRIDGE",
        "portMappings": [{"containerPort": 80, "hostPort": 8080}]}}}),
    );
    let role = app(json!({"id": "role", "cpus": 0.1, "mem": 1, "acceptedResourceRoles": ["prod"]}));
    let mut p = placer_with(&[&big, &mem, &like, &fixed, &role]);
    let o = offer(1, "rack:rx", "cpus:2;mem:1024;ports:[31000-32000]");
    let out = p.process_offer(&o, Time::from_secs(5), &mut rng());
    assert!(out.is_unused());
    let why: BTreeMap<String, NoMatch> = out
        .rejections
        .iter()
        .map(|(id, w)| (id.to_string(), *w))
        .collect();
    assert_eq!(
        why["/big"],
        NoMatch::InsufficientCpus {
            needed: 8.0,
            offered: 2.0
        }
    );
    assert_eq!(
        why["/mem"],
        NoMatch::InsufficientMemory {
            needed: 4096.0,
            offered: 1024.0
        }
    );
    assert_eq!(why["/like"], NoMatch::UnfulfilledConstraint { index: 0 });
    assert_eq!(
        why["/fixed"],
        NoMatch::InsufficientPorts(PortShortage::FixedPortNotOffered { port: 8080 })
    );
    assert_eq!(why["/role"], NoMatch::UnfulfilledRole);
    assert_eq!(
        why["/like"].describe(&like),
        r#"constraint ["rack","LIKE","r[0-9]"] is not satisfied"#
    );
    assert_eq!(why["/big"].describe(&big), "cpus: need 8, offered 2");

    let s: OfferSummary = p.summary(&big.id).unwrap();
    assert_eq!((s.processed_offers, s.unused_offers), (1, 1));
    assert_eq!(s.count(RejectKind::InsufficientCpus), 1);
    assert_eq!(s.last_reason(&AgentId::new("a1")), Some(&why["/big"]));
    assert_eq!(s.last_unused_offer_at, Some(Time::from_secs(5)));
    let funnel = s.funnel();
    assert_eq!(funnel[0].reason, "UnfulfilledRole");
    assert_eq!(
        (
            funnel[2].reason.as_str(),
            funnel[2].processed,
            funnel[2].declined
        ),
        ("InsufficientCpus", 1, 1)
    );
    assert_eq!(funnel[3].processed, 0);
    assert_eq!(
        s.explain(&big),
        "1 offers processed, 1 unused; most often InsufficientCpus (1); last: cpus: need 8, offered 2 (agent a1)"
    );
    // Summaries serialise (they are part of the daemon's state and of /v2/queue).
    let j = serde_json::to_value(&s).unwrap();
    assert_eq!(j["processed_offers"], json!(1));
}

#[test]
fn a_small_offer_gets_a_real_reason_from_every_app() {
    let a = app(json!({"id": "a", "cpus": 2, "mem": 1}));
    let b = app(json!({"id": "b", "cpus": 1, "mem": 512}));
    let mut p = placer_with(&[&a, &b]);
    let out = p.process_offer(
        &offer(1, "", "cpus:0.5;mem:64;ports:[1-10]"),
        Time::ZERO,
        &mut rng(),
    );
    assert_eq!(out.exhausted, 0);
    let kinds: Vec<RejectKind> = out.rejections.iter().map(|(_, w)| w.kind()).collect();
    assert_eq!(
        kinds,
        [RejectKind::InsufficientCpus, RejectKind::InsufficientCpus]
    );
}

#[test]
fn the_per_agent_memory_is_bounded() {
    let big = app(json!({"id": "big", "cpus": 64, "mem": 1}));
    let mut p = placer_with(&[&big]);
    for i in 0..(LAST_REASONS_PER_APP + 10) {
        let out = p.process_offer(&offer(i, "", "cpus:1;mem:10"), Time::ZERO, &mut rng());
        assert!(out.is_unused());
    }
    let s = p.summary(&big.id).unwrap();
    assert_eq!(s.last_reasons().len(), LAST_REASONS_PER_APP);
    assert_eq!(
        s.count(RejectKind::InsufficientCpus),
        (LAST_REASONS_PER_APP + 10) as u64
    );
    assert!(s.last_reason(&AgentId::new("a0")).is_none());
    assert!(s
        .last_reason(&AgentId::new(format!("a{}", LAST_REASONS_PER_APP + 9)))
        .is_some());
    assert_eq!(s.top_reason(), Some(RejectKind::InsufficientCpus));
    let back: OfferSummary = serde_json::from_value(serde_json::to_value(&s).unwrap()).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.last_reasons(), s.last_reasons());
}

#[test]
fn offers_used_up_count_as_exhausted_for_the_rest_of_the_queue() {
    let a = app(json!({"id": "a", "cpus": 1, "mem": 1, "instances": 4}));
    let b = app(json!({"id": "b", "cpus": 1, "mem": 1, "instances": 4}));
    let mut p = placer_with(&[&a, &b]);
    let out = p.process_offer(
        &offer(1, "", "cpus:4;mem:100;ports:[1-100]"),
        Time::ZERO,
        &mut rng(),
    );
    assert_eq!(out.launches.len(), 4);
    assert_eq!(out.exhausted, 1);
    let waiting = p.waiting(&a.id) + p.waiting(&b.id);
    assert_eq!(waiting, 4);
    // The next offer starts with the other app.
    let out2 = p.process_offer(
        &offer(2, "", "cpus:4;mem:100;ports:[1-100]"),
        Time::ZERO,
        &mut rng(),
    );
    assert_ne!(out.launches[0].app, out2.launches[0].app);
    let starved = if p.waiting(&a.id) == 0 { &a.id } else { &b.id };
    assert!(
        p.summary(starved)
            .unwrap()
            .count(RejectKind::OfferExhausted)
            <= 1
    );
}

#[test]
fn instances_placed_elsewhere_count_and_gone_ones_free_the_constraint() {
    let u = app(
        json!({"id": "u", "cpus": 0.1, "mem": 1, "instances": 1, "constraints": [["hostname", "UNIQUE"]]}),
    );
    let mut p = placer_with(&[&u]);
    let o = offer(1, "", "cpus:1;mem:10;ports:[1-10]");
    p.instance_placed(&u.id, &o.agent);
    assert!(p.process_offer(&o, Time::ZERO, &mut rng()).is_unused());
    p.instance_gone(&u.id, &o.agent);
    assert_eq!(
        p.process_offer(&o, Time::ZERO, &mut rng()).launches.len(),
        1
    );
    assert_eq!(p.waiting(&PathId::parse("/u", &PathId::root()).unwrap()), 0);
}

#[test]
fn a_new_version_does_not_count_old_instances_but_a_scale_does() {
    let u = app(
        json!({"id": "u", "cpus": 0.1, "mem": 1, "instances": 1, "constraints": [["hostname", "UNIQUE"]]}),
    );
    let mut p = placer_with(&[&u]);
    let o = offer(1, "", "cpus:1;mem:10;ports:[1-10]");
    assert_eq!(p.place(&o, Time::ZERO).launches.len(), 1);
    // Scale to 2: the first instance still counts, host1 is refused.
    let mut scaled = u.clone();
    scaled.instances = 2;
    p.upsert_app(&scaled);
    p.set_waiting(&u.id, 1);
    assert!(p.place(&o, Time::ZERO).is_unused());
    // Restart with a new command: old instances no longer count.
    let mut v2 = scaled.clone();
    v2.cmd = Some("v2".into());
    p.upsert_app(&v2);
    p.set_waiting(&u.id, 2);
    assert_eq!(p.place(&o, Time::ZERO).launches.len(), 1);
    assert_eq!(p.summary(&u.id).unwrap().unused_offers, 0);
}

#[test]
fn apps_coming_and_going_reuse_their_slots() {
    let mut p = Placer::default();
    for round in 0..50 {
        let a = app(json!({"id": format!("/tmp{round}"), "cpus": 0.1, "mem": 1}));
        p.upsert_app(&a);
        p.set_waiting(&a.id, 1);
        p.remove_app(&a.id);
    }
    let keep = app(json!({"id": "/keep", "cpus": 0.1, "mem": 1}));
    p.upsert_app(&keep);
    p.set_waiting(&keep.id, 1);
    let state = serde_json::to_value(&p).unwrap();
    assert_eq!(state["slots"].as_array().unwrap().len(), 1);
    let out = p.place(&offer(1, "", "cpus:1;mem:10;ports:[1-10]"), Time::ZERO);
    assert_eq!(out.launches.len(), 1);
    assert_eq!(out.launches[0].app, keep.id);
}

#[test]
fn a_backed_off_app_waits_for_its_delay() {
    let a = app(json!({"id": "a", "cpus": 0.1, "mem": 1, "instances": 1}));
    let mut p = placer_with(&[&a]);
    p.delay(&a.id, Time::from_secs(10));
    let o = offer(1, "", "cpus:1;mem:10;ports:[1-10]");
    let out = p.place(&o, Time::from_secs(9));
    assert!(out.is_unused());
    assert!(out.rejections.is_empty(), "a delay is not an offer problem");
    assert_eq!(p.place(&o, Time::from_secs(10)).launches.len(), 1);
}

#[test]
fn reserved_resources_are_used_for_accepted_roles() {
    let a = app(json!({"id": "a", "cpus": 1, "mem": 1, "role": "prod", "instances": 2}));
    let mut p = placer_with(&[&a]);
    let o = offer(
        1,
        "",
        "cpus(prod):1;mem(prod):10;cpus:1;mem:10;ports:[1-10]",
    );
    let out = p.process_offer(&o, Time::ZERO, &mut rng());
    assert_eq!(out.launches.len(), 2);
    assert_eq!(&*out.launches[0].reservation_role, "prod");
    assert_eq!(&*out.launches[1].reservation_role, "*");
    // The port of the first launch comes from the unreserved pool; the offer holds both launches.
    assert_eq!(out.launches[0].port_roles.len(), 1);
    assert_eq!(&*out.launches[0].port_roles[0], "*");
    assert!(out.launches[1].port_roles.is_empty());
    let mut total = Resources::new();
    for l in &out.launches {
        total += &l.resources("prod");
    }
    assert!(
        o.resources.contains(&total.unallocate()),
        "{} vs {}",
        o.resources,
        total
    );
}

#[test]
fn the_placer_state_round_trips_through_json() {
    let u = app(json!({"id": "u", "instances": 3, "cpus": 0.1, "mem": 1,
        "constraints": [["hostname", "UNIQUE"], ["rack", "LIKE", "r.*"]]}));
    let gone = app(json!({"id": "gone", "instances": 1, "cpus": 0.1, "mem": 1}));
    let mut p = Placer::seeded(PlacementConfig::default(), 9);
    for a in [&u, &gone] {
        p.upsert_app(a);
        p.set_waiting(&a.id, a.instances);
    }
    p.remove_app(&gone.id);
    let o1 = offer(1, "rack:r1", "cpus:1;mem:10;ports:[31000-32000]");
    assert_eq!(p.place(&o1, Time::ZERO).launches.len(), 1);
    let saved = serde_json::to_string(&p).unwrap();
    let mut restored: Placer = serde_json::from_str(&saved).unwrap();
    // Same constraint state, same queue, same summaries, same random ports from here on.
    assert!(restored.place(&o1, Time::ZERO).is_unused());
    assert!(p.place(&o1, Time::ZERO).is_unused());
    assert_eq!(restored.summary(&u.id), p.summary(&u.id));
    assert_eq!(restored.waiting(&gone.id), 0);
    let o2 = offer(2, "rack:r2", "cpus:1;mem:10;ports:[31000-32000]");
    let a = p.place(&o2, Time::ZERO);
    let b = restored.place(&o2, Time::ZERO);
    assert_eq!(a.launches, b.launches);
    assert_eq!(restored.waiting(&u.id), 1);
}

// ---- property: no constraint violated, no offer over-committed ----

fn arb_constraints() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(
        prop_oneof![
            Just(json!(["hostname", "UNIQUE"])),
            Just(json!(["rack", "GROUP_BY"])),
            Just(json!(["rack", "GROUP_BY", "2"])),
            Just(json!(["rack", "MAX_PER", "2"])),
            Just(json!(["rack", "CLUSTER"])),
            Just(json!(["rack", "LIKE", "r[01]"])),
            Just(json!(["rack", "UNLIKE", "r0"])),
            Just(json!(["zone", "UNIQUE"])),
        ],
        0..3,
    )
}

fn arb_app(i: usize) -> impl Strategy<Value = AppDefinition> {
    (arb_constraints(), 1u32..8, 1u32..20, 1u32..300, 0usize..3).prop_map(move |(cs, n, cpus, mem, ports)| {
        app(json!({"id": format!("app{i}"), "instances": n, "cpus": cpus as f64 / 10.0, "mem": mem,
            "constraints": cs, "portDefinitions": (0..ports).map(|_| json!({"port": 0})).collect::<Vec<_>>()}))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn placements_respect_constraints_and_offers(
        apps in (arb_app(0), arb_app(1), arb_app(2)),
        agents in prop::collection::vec((0u8..3, prop::option::of(0u8..3), 1u32..40, 1u32..1000, 0u64..6), 1..12),
        seed in any::<u64>(),
    ) {
        let apps = [apps.0, apps.1, apps.2];
        let mut p = placer_with(&apps.iter().collect::<Vec<_>>());
        let mut r = ChaCha8Rng::seed_from_u64(seed);
        let mut placed: BTreeMap<String, Vec<AgentView>> = BTreeMap::new();
        for round in 0..2 {
            for (n, (host, rack, cpus, mem, nports)) in agents.iter().enumerate() {
                let mut agent = AgentView::new(format!("h{host}")).with_text_attribute("zone", format!("z{}", n % 2));
                if let Some(rk) = rack {
                    agent = agent.with_text_attribute("rack", format!("r{rk}"));
                }
                let res = format!("cpus:{};mem:{mem};ports:[31000-{}]", *cpus as f64 / 10.0, 31000 + nports);
                let o = Offer {
                    id: OfferId::new(format!("o{round}-{n}")),
                    agent_id: AgentId::new(format!("a{n}")),
                    agent: agent.clone(),
                    resources: Resources::parse(&res).unwrap(),
                };
                let out = p.process_offer(&o, Time::ZERO, &mut r);
                // Not over-committed.
                let mut total = Resources::new();
                let mut ports = BTreeSet::new();
                for l in &out.launches {
                    total += &l.resources("*");
                    for port in l.ports() {
                        prop_assert!(ports.insert(port), "port {} twice", port);
                    }
                }
                prop_assert!(o.resources.contains(&total.unallocate()), "{} does not hold {}", o.resources, total);
                // Each launch satisfied every constraint given what was placed before it.
                for l in &out.launches {
                    let a = apps.iter().find(|a| a.id == l.app).unwrap();
                    let before = placed.entry(a.id.to_string()).or_default();
                    for c in &a.constraints {
                        prop_assert!(c.is_satisfied(&agent, before), "{} violated on {:?} with {:?}", c, agent, before);
                    }
                    before.push(agent.clone());
                }
            }
        }
        // The queue shrank by exactly what launched.
        for a in &apps {
            let launched = placed.get(&a.id.to_string()).map_or(0, Vec::len) as u32;
            prop_assert_eq!(p.waiting(&a.id), a.instances - launched);
        }
    }
}
