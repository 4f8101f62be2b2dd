//! Port assignment, from the reference's vectors (PortsMatcherTest, AssignDynamicServiceLogicTest).

use std::collections::BTreeSet;

use mesos_core::marathon::{
    assign_service_ports, port_env, AppDefinition, PortRangeExhausted, PortRequests, PortShortage,
    SERVICE_PORT_RANGE,
};
use mesos_core::resources::{Range, Ranges};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

fn app(j: Value) -> AppDefinition {
    let mut j = j;
    j["id"] = json!("/a");
    if j.get("container").is_none() {
        j["cmd"] = json!("x");
    }
    AppDefinition::from_json(&j).unwrap()
}

fn bridge(mappings: Value) -> AppDefinition {
    app(
        json!({"container": {"docker": {"image": "i", "network": "BRIDGE", "portMappings": mappings}}}),
    )
}

fn ranges(rs: &[(u64, u64)]) -> Ranges {
    Ranges::new(rs.iter().map(|(b, e)| Range::new(*b, *e)))
}

fn assign(
    a: &AppDefinition,
    offered: &Ranges,
    seed: u64,
) -> Result<Vec<Option<u32>>, PortShortage> {
    PortRequests::of(a).assign(offered, &mut ChaCha8Rng::seed_from_u64(seed))
}

fn in_offer(ports: &[Option<u32>], offered: &Ranges) {
    let ps: Vec<u32> = ports.iter().flatten().copied().collect();
    let set: BTreeSet<u32> = ps.iter().copied().collect();
    assert_eq!(set.len(), ps.len(), "distinct: {ps:?}");
    for p in ps {
        assert!(offered.contains_value(u64::from(p)), "{p} not in {offered}");
    }
}

#[test]
fn ports_matcher_vectors() {
    let a = app(json!({"ports": [80, 81]}));
    let o = ranges(&[(31000, 32000)]);
    let p = assign(&a, &o, 1).unwrap();
    assert_eq!(p.len(), 2);
    in_offer(&p, &o);

    let a = app(json!({"ports": [80, 81, 82, 83, 84]}));
    let o = ranges(&[(30000, 30003), (31000, 31000)]);
    let p = assign(&a, &o, 2).unwrap();
    assert_eq!(p.len(), 5);
    in_offer(&p, &o);

    let a = app(json!({"ports": [80, 81, 82, 83, 100], "requirePorts": true}));
    let p = assign(&a, &ranges(&[(80, 83), (100, 100)]), 3).unwrap();
    assert_eq!(p, [80, 81, 82, 83, 100].map(Some));

    let a = app(json!({"ports": [100, 80], "requirePorts": true}));
    assert_eq!(
        assign(&a, &ranges(&[(70, 200)]), 4).unwrap(),
        [Some(100), Some(80)]
    );

    let a = app(json!({"portDefinitions": []}));
    assert_eq!(
        assign(&a, &Ranges::default(), 5).unwrap(),
        Vec::<Option<u32>>::new()
    );

    let a = app(json!({"ports": [80, 81, 82]}));
    assert_eq!(
        assign(&a, &ranges(&[(31000, 31001)]), 6),
        Err(PortShortage::NotEnoughPorts {
            needed: 3,
            available: 2
        })
    );

    let a = app(json!({"ports": [80, 81, 82], "requirePorts": true}));
    assert_eq!(
        assign(&a, &ranges(&[(31000, 32000)]), 7),
        Err(PortShortage::FixedPortNotOffered { port: 80 })
    );

    let a = bridge(json!([{"containerPort": 80, "hostPort": 0}]));
    assert_eq!(
        assign(&a, &ranges(&[(31000, 31000)]), 8).unwrap(),
        [Some(31000)]
    );
    assert!(assign(&a, &Ranges::default(), 9).is_err());

    let a = bridge(json!([{"containerPort": 80, "hostPort": 8080}]));
    assert_eq!(
        assign(&a, &ranges(&[(31000, 32000)]), 10),
        Err(PortShortage::FixedPortNotOffered { port: 8080 })
    );
    let a = bridge(json!([{"containerPort": 80, "hostPort": 31200}]));
    assert_eq!(
        assign(&a, &ranges(&[(31000, 32000)]), 11).unwrap(),
        [Some(31200)]
    );

    // Container networking without hostPort: no host port at all.
    let a = app(json!({"networks": [{"mode": "container", "name": "n"}],
        "container": {"type": "MESOS", "portMappings": [{"containerPort": 80}]}}));
    assert_eq!(assign(&a, &Ranges::default(), 12).unwrap(), [None]);
}

#[test]
fn dynamic_ports_never_take_the_apps_fixed_ports() {
    let a = bridge(
        json!([{"containerPort": 80, "hostPort": 0}, {"containerPort": 81, "hostPort": 31000}]),
    );
    let o = ranges(&[(31000, 31001)]);
    for seed in 0..20 {
        assert_eq!(assign(&a, &o, seed).unwrap(), [Some(31001), Some(31000)]);
    }
}

#[test]
fn dynamic_ports_start_at_random_and_run_consecutively() {
    let a = app(json!({"ports": [0, 0, 0]}));
    let o = ranges(&[(31000, 32000)]);
    let mut firsts = BTreeSet::new();
    for seed in 0..10 {
        let p: Vec<u32> = assign(&a, &o, seed)
            .unwrap()
            .into_iter()
            .flatten()
            .collect();
        firsts.insert(p[0]);
        if p[0] <= 31998 {
            assert_eq!(p, [p[0], p[0] + 1, p[0] + 2]);
        }
    }
    assert!(firsts.len() > 1, "the start is random: {firsts:?}");
    // Same seed, same ports.
    assert_eq!(assign(&a, &o, 42), assign(&a, &o, 42));
}

#[test]
fn service_ports_vectors() {
    let r = 10..=20;
    let mut a = app(json!({"ports": [0, 1]}));
    assign_service_ports(&mut a, None, &BTreeSet::new(), r.clone()).unwrap();
    let sp = a.service_ports();
    assert!(sp.contains(&1) && !sp.contains(&0));

    let prev = app(json!({"ports": [10, 11]}));
    let mut a = app(json!({"ports": [10, 0, 11]}));
    let used = BTreeSet::from([10, 11]);
    assign_service_ports(&mut a, Some(&prev), &used, r.clone()).unwrap();
    assert_eq!(a.service_ports(), vec![10, 12, 11]);

    let mut a = app(json!({"ports": [0, 10]}));
    assign_service_ports(&mut a, None, &BTreeSet::new(), r.clone()).unwrap();
    let sp = a.service_ports();
    assert!(sp[0] != sp[1] && !sp.contains(&0));

    let mut a = app(json!({"ports": [0, 0, 0]}));
    assign_service_ports(&mut a, Some(&prev), &used, r.clone()).unwrap();
    let sp: BTreeSet<u32> = a.service_ports().into_iter().collect();
    assert_eq!(sp.len(), 3);
    assert!(
        sp.contains(&10) && sp.contains(&11),
        "reuses the previous version's ports: {sp:?}"
    );

    let mut first = app(json!({"ports": [0, 0, 0]}));
    assign_service_ports(&mut first, None, &BTreeSet::new(), 10..=14).unwrap();
    let used: BTreeSet<u32> = first.service_ports().into_iter().collect();
    let mut second = app(json!({"ports": [0, 0, 0]}));
    let err = assign_service_ports(&mut second, None, &used, 10..=14).unwrap_err();
    assert_eq!(err, PortRangeExhausted { min: 10, max: 14 });
    assert_eq!(
        err.to_string(),
        "All ports in the range [10-14) are already in use"
    );

    // A fresh cluster: the seed app gets 10000, the next app 10001.
    let mut n = bridge(json!([{"containerPort": 80, "hostPort": 0, "servicePort": 0}]));
    assign_service_ports(&mut n, None, &BTreeSet::new(), SERVICE_PORT_RANGE).unwrap();
    assert_eq!(n.service_ports(), vec![10000]);
    assert_eq!(
        n.to_json()["container"]["portMappings"][0]["servicePort"],
        json!(10000)
    );
    let mut m = app(json!({}));
    assign_service_ports(&mut m, None, &BTreeSet::from([10000]), SERVICE_PORT_RANGE).unwrap();
    assert_eq!(m.service_ports(), vec![10001]);
}

#[test]
fn task_environment() {
    let a = bridge(json!([
        {"containerPort": 80, "hostPort": 0, "name": "http"},
        {"containerPort": 443, "hostPort": 0}
    ]));
    let env = port_env(&a, &[Some(31001), Some(31002)]);
    assert_eq!(env["PORT0"], "31001");
    assert_eq!(env["PORT1"], "31002");
    assert_eq!(env["PORT_80"], "31001");
    assert_eq!(env["PORT_443"], "31002");
    assert_eq!(env["PORT_HTTP"], "31001");
    assert_eq!(env["PORT"], "31001");
    assert_eq!(env["PORTS"], "31001,31002");
    let h = app(json!({}));
    let env = port_env(&h, &[Some(31500)]);
    assert_eq!(env["PORT0"], "31500");
    assert_eq!(env["PORT_DEFAULT"], "31500");
    assert!(!env.contains_key("PORT_0"));
}

proptest! {
    /// Assigned ports are offered, distinct, and the dynamic ones are not the app's fixed ports.
    #[test]
    fn assigned_ports_are_offered_and_distinct(
        spans in prop::collection::vec((31000u64..31100, 0u64..5), 1..4),
        fixed in prop::option::of(31000u32..31110),
        dynamic in 0usize..5,
        seed in any::<u64>(),
    ) {
        let offered = Ranges::new(spans.iter().map(|(b, l)| Range::new(*b, b + l)));
        let mut mappings: Vec<Value> = (0..dynamic).map(|i| json!({"containerPort": 80 + i, "hostPort": 0})).collect();
        if let Some(f) = fixed {
            mappings.push(json!({"containerPort": 99, "hostPort": f}));
        }
        let a = bridge(Value::Array(mappings));
        match assign(&a, &offered, seed) {
            Ok(p) => {
                in_offer(&p, &offered);
                if let Some(f) = fixed {
                    prop_assert_eq!(p.last().copied().flatten(), Some(f));
                    prop_assert!(!p[..dynamic].contains(&Some(f)));
                }
            }
            Err(PortShortage::FixedPortNotOffered { port }) => {
                prop_assert_eq!(Some(port), fixed);
                prop_assert!(!offered.contains_value(u64::from(port)));
            }
            Err(PortShortage::NotEnoughPorts { needed, available }) => {
                prop_assert_eq!(needed as usize, dynamic);
                prop_assert!(available < needed as u64);
            }
        }
    }
}
