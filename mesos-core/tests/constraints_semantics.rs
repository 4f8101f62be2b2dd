//! Constraint semantics and validation, written from the reference (marathon.md §2).

use mesos_core::attributes::Attributes;
use mesos_core::constraints::{
    select_instances_to_kill, AgentView, Constraint, ConstraintError, ConstraintTracker,
};
use proptest::prelude::*;
use serde_json::json;

fn c(j: serde_json::Value) -> Constraint {
    Constraint::from_json(&j).unwrap_or_else(|e| panic!("{j}: {e}"))
}

fn err(j: serde_json::Value) -> String {
    Constraint::from_json(&j).unwrap_err().to_string()
}

fn host(h: &str) -> AgentView {
    AgentView::new(h)
}

fn rack(h: &str, r: &str) -> AgentView {
    AgentView::new(h).with_attributes(Attributes::parse(&format!("rack:{r}")).unwrap())
}

#[test]
fn validation_table() {
    let arity = "Each constraint must have either 2 or 3 fields";
    assert_eq!(err(json!(["a"])), arity);
    assert_eq!(err(json!(["a", "UNIQUE", "x", "y"])), arity);
    assert_eq!(err(json!("hostname")), arity);
    assert_eq!(err(json!(["a", 1])), arity);
    assert_eq!(
        err(json!(["", "CLUSTER", "b"])),
        "illegal constraint specification"
    );
    assert_eq!(
        err(json!(["a", "b", "c"])),
        "operator must be one of the following UNIQUE, CLUSTER, GROUP_BY, LIKE, MAX_PER, UNLIKE or IS"
    );
    assert_eq!(
        err(json!(["hostname", "UNIQUE", "x"])),
        "UNIQUE does not accept a value"
    );
    let gb = "GROUP BY must define an integer value or else no value at all";
    assert_eq!(err(json!(["rack", "GROUP_BY", "AbcDZ"])), gb);
    assert_eq!(err(json!(["rack", "GROUP_BY", "1.5"])), gb);
    assert_eq!(
        err(json!(["rack", "MAX_PER"])),
        "MAX_PER requires an integer value"
    );
    assert_eq!(
        err(json!(["rack", "MAX_PER", "x"])),
        "MAX_PER requires an integer value"
    );
    let re = "LIKE and UNLIKE require a non-empty, regular expression value";
    assert_eq!(err(json!(["rack", "LIKE"])), re);
    assert_eq!(err(json!(["rack", "UNLIKE", ""])), re);
    assert_eq!(
        err(json!(["rack", "LIKE", "*"])),
        "is not a valid regular expression"
    );
    assert!(err(json!(["rack", "IS", "[0-9]"]))
        .starts_with("IS only supports Mesos text and float values"));
    assert!(matches!(
        Constraint::from_json(&json!(["rack", "MAX_PER", "x"])),
        Err(ConstraintError::MaxPerNotInteger { value: Some(v) }) if v == "x"
    ));

    for ok in [
        json!(["hostname", "UNIQUE"]),
        json!(["rack-id", "GROUP_BY"]),
        json!(["rack-id", "GROUP_BY", "123"]),
        json!(["rack-id", "MAX_PER", "123"]),
        json!(["attribute", "IS", "value-1.2/3_4"]),
        json!(["rack-id", "LIKE", ".*"]),
        json!(["hostname", "CLUSTER", ""]),
        json!(["foo", "cluster", "bar"]),
    ] {
        c(ok);
    }
}

#[test]
fn empty_value_means_no_value_and_echoes_without_it() {
    let u = c(json!(["hostname", "UNIQUE", ""]));
    assert_eq!(
        serde_json::to_value(&u).unwrap(),
        json!(["hostname", "UNIQUE"])
    );
    assert_eq!(u, c(json!(["hostname", "UNIQUE"])));
    let g = c(json!(["rack", "GROUP_BY", ""]));
    assert_eq!(g.to_json(), json!(["rack", "GROUP_BY"]));
    let back: Constraint = serde_json::from_value(json!(["rack", "MAX_PER", "2"])).unwrap();
    assert_eq!(back.to_json(), json!(["rack", "MAX_PER", "2"]));
}

#[test]
fn unique() {
    let u = c(json!(["hostname", "UNIQUE"]));
    assert!(u.is_satisfied(&host("a"), &[]));
    assert!(u.is_satisfied(&host("a"), &[host("b")]));
    assert!(!u.is_satisfied(&host("a"), &[host("b"), host("a")]));
    let u2 = c(json!(["@hostname", "UNIQUE"]));
    assert!(!u2.is_satisfied(&host("a"), &[host("a")]));
    let r = c(json!(["rack", "UNIQUE"]));
    assert!(!r.is_satisfied(&rack("x", "r1"), &[rack("y", "r1")]));
    assert!(r.is_satisfied(&rack("x", "r1"), &[rack("y", "r2"), host("z")]));
    // Missing on the offer: rejected.
    assert!(!r.is_satisfied(&host("x"), &[]));
}

#[test]
fn cluster() {
    let fixed = c(json!(["rack", "CLUSTER", "r1"]));
    assert!(fixed.is_satisfied(&rack("a", "r1"), &[]));
    assert!(!fixed.is_satisfied(&rack("a", "r2"), &[]));
    assert!(!fixed.is_satisfied(&host("a"), &[]));
    let free = c(json!(["rack", "CLUSTER"]));
    assert!(free.is_satisfied(&rack("a", "r2"), &[]));
    assert!(free.is_satisfied(&rack("a", "r2"), &[rack("b", "r2")]));
    assert!(!free.is_satisfied(&rack("a", "r1"), &[rack("b", "r2")]));
    // The first placed instance decides.
    assert!(!free.is_satisfied(&rack("a", "r1"), &[rack("b", "r2"), rack("c", "r1")]));
    // A first instance without the attribute never equals an offer value.
    assert!(!free.is_satisfied(&rack("a", "r1"), &[host("b")]));
}

#[test]
fn group_by_classic() {
    let g = c(json!(["rack", "GROUP_BY"]));
    // No value: a used group is allowed when it is the smallest, so [r1] + r1 is accepted.
    assert!(g.is_satisfied(&rack("a", "r1"), &[rack("b", "r1")]));
    assert!(g.is_satisfied(&rack("a", "r2"), &[rack("b", "r1")]));
    assert!(!g.is_satisfied(
        &rack("a", "r1"),
        &[rack("b", "r1"), rack("c", "r1"), rack("d", "r2")]
    ));
    assert!(g.is_satisfied(
        &rack("a", "r2"),
        &[rack("b", "r1"), rack("c", "r1"), rack("d", "r2")]
    ));
    let g3 = c(json!(["rack", "GROUP_BY", "3"]));
    // A new group is always allowed.
    assert!(g3.is_satisfied(&rack("a", "r3"), &[rack("b", "r1"), rack("c", "r2")]));
    // A used group only once there are at least 3 groups.
    assert!(!g3.is_satisfied(&rack("a", "r1"), &[rack("b", "r1"), rack("c", "r2")]));
    let three = [rack("b", "r1"), rack("c", "r2"), rack("d", "r3")];
    assert!(g3.is_satisfied(&rack("a", "r1"), &three));
    // Missing on the offer: rejected.
    assert!(!g.is_satisfied(&host("x"), &[]));
    // Placed instances without the attribute form a "none" group that counts for the minimum.
    assert!(g.is_satisfied(&rack("a", "r1"), &[rack("b", "r1"), host("c")]));
    assert!(!g.is_satisfied(
        &rack("a", "r1"),
        &[rack("b", "r1"), rack("d", "r1"), host("c")]
    ));
}

#[test]
fn max_per() {
    let m = c(json!(["rack", "MAX_PER", "2"]));
    assert!(m.is_satisfied(&rack("a", "r1"), &[rack("b", "r1")]));
    assert!(!m.is_satisfied(&rack("a", "r1"), &[rack("b", "r1"), rack("c", "r1")]));
    assert!(m.is_satisfied(&rack("a", "r2"), &[rack("b", "r1"), rack("c", "r1")]));
    assert!(!c(json!(["rack", "MAX_PER", "0"])).is_satisfied(&rack("a", "r1"), &[]));
    assert!(!m.is_satisfied(&host("a"), &[]));
}

#[test]
fn like_and_unlike_match_the_whole_value() {
    let like = c(json!(["rack", "LIKE", "r[0-9]"]));
    assert!(like.is_satisfied(&rack("a", "r1"), &[]));
    assert!(!like.is_satisfied(&rack("a", "r10"), &[]));
    assert!(!like.is_satisfied(&rack("a", "xr1"), &[]));
    assert!(!like.is_satisfied(&host("a"), &[]));
    let alt = c(json!(["hostname", "LIKE", "a|b"]));
    assert!(alt.is_satisfied(&host("a"), &[]));
    assert!(!alt.is_satisfied(&host("ab"), &[]));
    let unlike = c(json!(["rack", "UNLIKE", "r[0-9]"]));
    assert!(!unlike.is_satisfied(&rack("a", "r1"), &[]));
    assert!(unlike.is_satisfied(&rack("a", "r10"), &[]));
    // A missing attribute satisfies UNLIKE only.
    assert!(unlike.is_satisfied(&host("a"), &[]));
}

#[test]
fn is_compares_text_and_formatted_numbers() {
    let a =
        AgentView::new("h").with_attributes(Attributes::parse("level:1.0;kind:ssd;v:0.8").unwrap());
    assert!(c(json!(["level", "IS", "1"])).is_satisfied(&a, &[]));
    assert!(c(json!(["level", "IS", "1.0"])).is_satisfied(&a, &[]));
    assert!(c(json!(["level", "IS", "1.0001"])).is_satisfied(&a, &[]));
    assert!(!c(json!(["level", "IS", "1.1"])).is_satisfied(&a, &[]));
    assert!(c(json!(["v", "IS", "0.80"])).is_satisfied(&a, &[]));
    assert!(c(json!(["kind", "IS", "ssd"])).is_satisfied(&a, &[]));
    assert!(!c(json!(["kind", "IS", "hdd"])).is_satisfied(&a, &[]));
    assert!(!c(json!(["nope", "IS", "ssd"])).is_satisfied(&a, &[]));
}

#[test]
fn region_and_zone() {
    let a = AgentView::new("h").with_domain("eu", "eu-1");
    let b = AgentView::new("g").with_domain("eu", "eu-2");
    let z = c(json!(["@zone", "UNIQUE"]));
    assert!(z.is_satisfied(&b, std::slice::from_ref(&a)));
    assert!(!z.is_satisfied(&a, std::slice::from_ref(&a)));
    let r = c(json!(["@region", "CLUSTER", "eu"]));
    assert!(r.is_satisfied(&a, &[]));
    assert!(!r.is_satisfied(&AgentView::new("x"), &[]));
}

#[test]
fn scalar_attributes_render_with_three_decimals() {
    let a =
        AgentView::new("h").with_attributes(Attributes::parse("x:1.0005;y:1.00051;z:2.0").unwrap());
    assert_eq!(a.attribute("x"), Some("1"));
    assert_eq!(a.attribute("y"), Some("1.001"));
    assert_eq!(a.attribute("z"), Some("2"));
    assert!(c(json!(["z", "CLUSTER", "2"])).is_satisfied(&a, &[]));
    assert!(!c(json!(["z", "CLUSTER", "2.0"])).is_satisfied(&a, &[]));
}

#[test]
fn scale_down_keeps_groups_even() {
    let g = c(json!(["rack", "GROUP_BY"]));
    let agents = [
        rack("1", "a"),
        rack("2", "b"),
        rack("3", "a"),
        rack("4", "a"),
        rack("5", "b"),
        rack("6", "c"),
    ];
    let refs: Vec<&AgentView> = agents.iter().collect();
    // a:3 b:2 c:1 -> kill 3 leaves one per rack.
    let k = select_instances_to_kill(std::slice::from_ref(&g), &refs, 3);
    assert_eq!(k.len(), 3);
    let mut left: Vec<&str> = (0..6)
        .filter(|i| !k.contains(i))
        .map(|i| agents[i].attribute("rack").unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["a", "b", "c"]);
    // Without GROUP_BY the given order decides.
    assert_eq!(select_instances_to_kill(&[], &refs, 2), vec![0, 1]);
    assert_eq!(select_instances_to_kill(&[g], &refs, 10).len(), 6);
}

fn arb_agent() -> impl Strategy<Value = AgentView> {
    (0u8..6, prop::option::of(0u8..3), prop::option::of(0u8..2)).prop_map(|(h, r, z)| {
        let mut a = AgentView::new(format!("h{h}"));
        if let Some(r) = r {
            a = a.with_text_attribute("rack", format!("r{r}"));
        }
        if let Some(z) = z {
            a = a.with_domain("eu", format!("z{z}"));
        }
        a
    })
}

fn arb_constraint() -> impl Strategy<Value = Constraint> {
    prop_oneof![
        Just(json!(["hostname", "UNIQUE"])),
        Just(json!(["rack", "UNIQUE"])),
        Just(json!(["rack", "CLUSTER"])),
        Just(json!(["rack", "CLUSTER", "r1"])),
        Just(json!(["rack", "GROUP_BY"])),
        Just(json!(["rack", "GROUP_BY", "2"])),
        Just(json!(["@zone", "GROUP_BY", "3"])),
        Just(json!(["rack", "MAX_PER", "2"])),
        Just(json!(["rack", "LIKE", "r[01]"])),
        Just(json!(["rack", "UNLIKE", "r0"])),
        Just(json!(["rack", "IS", "r2"])),
    ]
    .prop_map(|j| Constraint::from_json(&j).unwrap())
}

proptest! {
    /// The incremental tracker answers exactly as the reference evaluation, also after removals.
    #[test]
    fn tracker_agrees_with_is_satisfied(
        cs in prop::collection::vec(arb_constraint(), 1..3),
        placed in prop::collection::vec(arb_agent(), 0..8),
        remove in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
        candidate in arb_agent(),
    ) {
        let mut placed = placed;
        // Which of several equal values goes first is unknown to the tracker (it keeps values,
        // not instances), so order-dependent CLUSTER without value is checked without removals.
        let free_cluster = cs.iter().any(|c| c.value().is_none()
            && c.operator() == mesos_core::constraints::Operator::Cluster);
        let remove = if free_cluster { Vec::new() } else { remove };
        let mut t = ConstraintTracker::new(cs.clone());
        for p in &placed {
            t.add(p);
        }
        for r in remove {
            if placed.is_empty() { break; }
            let i = r.index(placed.len());
            let gone = placed.remove(i);
            t.remove(&gone);
        }
        let slow = cs.iter().all(|c| c.is_satisfied(&candidate, &placed));
        prop_assert_eq!(t.allows(&candidate).is_ok(), slow);
    }

    /// Arbitrary JSON never panics the parser.
    #[test]
    fn from_json_never_panics(s in "\\PC{0,40}", n in 0usize..5) {
        let parts: Vec<serde_json::Value> = (0..n).map(|i| json!(format!("{s}{i}"))).collect();
        let _ = Constraint::from_json(&serde_json::Value::Array(parts));
        let _ = Constraint::from_json(&json!(["f", "LIKE", s.clone()]));
        let _ = Constraint::from_json(&json!(["f", "IS", s]));
    }
}

#[test]
fn impossible_placements_are_named_early() {
    use mesos_core::constraints::unsatisfiable;
    let agents: Vec<AgentView> = (0..4)
        .map(|i| rack(&format!("h{i}"), &format!("r{}", i % 2)))
        .collect();
    // UNIQUE hostname: 4 agents.
    let u = c(json!(["hostname", "UNIQUE"]));
    assert!(unsatisfiable(std::slice::from_ref(&u), 4, &agents).is_none());
    let why = unsatisfiable(std::slice::from_ref(&u), 5, &agents).unwrap();
    assert_eq!(why.index, 0);
    assert!(why
        .to_string()
        .starts_with(r#"constraint ["hostname","UNIQUE"] cannot be met"#));
    // MAX_PER over 2 racks.
    let m = c(json!(["rack", "MAX_PER", "2"]));
    assert!(unsatisfiable(std::slice::from_ref(&m), 4, &agents).is_none());
    assert!(unsatisfiable(std::slice::from_ref(&m), 5, &agents).is_some());
    // LIKE that matches nothing; CLUSTER on a value nobody has.
    let like = c(json!(["rack", "LIKE", "x.*"]));
    let why = unsatisfiable(&[u.clone(), like], 1, &agents).unwrap();
    assert_eq!(
        (why.index, why.reason.as_str()),
        (1, "none of the 4 known agents qualifies")
    );
    assert!(unsatisfiable(&[c(json!(["rack", "CLUSTER", "r9"]))], 1, &agents).is_some());
    // Each possible alone, impossible together: UNIQUE hostname only on rack r0 (2 agents).
    let r0 = c(json!(["rack", "IS", "r0"]));
    let why = unsatisfiable(&[r0, u], 3, &agents).unwrap();
    assert_eq!(why.index, 1);
    assert_eq!(
        why.reason,
        "at most 2 instances fit (2 distinct values of hostname), 3 wanted"
    );
    assert!(unsatisfiable(&[], 1000, &agents).is_none());
}

proptest! {
    /// Scale-down with one GROUP_BY leaves the most even spread possible: the largest group left
    /// is as small as any choice of kills could make it.
    #[test]
    fn scale_down_leaves_the_smallest_possible_largest_group(
        racks in prop::collection::vec(0u8..5, 1..30),
        kill in any::<prop::sample::Index>(),
    ) {
        let g = Constraint::from_json(&json!(["rack", "GROUP_BY"])).unwrap();
        let agents: Vec<AgentView> = racks.iter().enumerate().map(|(i, r)| rack(&format!("h{i}"), &format!("r{r}"))).collect();
        let refs: Vec<&AgentView> = agents.iter().collect();
        let k = kill.index(agents.len() + 1);
        let chosen = select_instances_to_kill(std::slice::from_ref(&g), &refs, k);
        prop_assert_eq!(chosen.len(), k);
        let mut counts = std::collections::BTreeMap::<&str, usize>::new();
        let mut initial = std::collections::BTreeMap::<&str, usize>::new();
        for (i, a) in agents.iter().enumerate() {
            *initial.entry(a.attribute("rack").unwrap()).or_default() += 1;
            if !chosen.contains(&i) {
                *counts.entry(a.attribute("rack").unwrap()).or_default() += 1;
            }
        }
        let left = agents.len() - k;
        let best = (0..=agents.len()).find(|m| initial.values().map(|c| (*c).min(*m)).sum::<usize>() >= left).unwrap();
        prop_assert_eq!(counts.values().copied().max().unwrap_or(0), best);
    }
}
