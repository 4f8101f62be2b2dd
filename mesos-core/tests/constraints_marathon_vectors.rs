//! Scenarios from Marathon's released constraint tests (v1.10.26 `ConstraintsTest`), restated.

use mesos_core::attributes::Attributes;
use mesos_core::constraints::{select_instances_to_kill, AgentView, Constraint};
use serde_json::json;

fn c(field: &str, op: &str, value: &str) -> Constraint {
    Constraint::from_json(&json!([field, op, value])).unwrap()
}

fn on(host: &str, attrs: &str) -> AgentView {
    let a = AgentView::new(host);
    if attrs.is_empty() {
        a
    } else {
        a.with_attributes(Attributes::parse(attrs).unwrap())
    }
}

#[test]
fn unique_host() {
    let placed = [on("host1", ""), on("host2", ""), on("host3", "")];
    assert!(c("hostname", "CLUSTER", "").is_satisfied(&on("foohost", ""), &[]));
    assert!(!c("hostname", "CLUSTER", "right.com").is_satisfied(&on("wrong.com", ""), &[]));
    let u = c("hostname", "UNIQUE", "");
    assert!(u.is_satisfied(&on("host2", ""), &[]));
    assert!(u.is_satisfied(&on("host4", ""), &placed));
    assert!(!u.is_satisfied(&on("host2", ""), &placed));
}

#[test]
fn generic_property_constraints() {
    let r1 = || on("x", "rackid:rack-1");
    let r2 = on("x", "rackid:rack-2");
    let offer1 = on("foohost", "foo:bar;rackid:rack-1");
    let offer2 = on("foohost", "foo:bar;rackid:rack-2");
    let offer3 = on("foohost", "foo:bar;rackid:rack-3");
    let cluster = c("rackid", "CLUSTER", "");
    assert!(cluster.is_satisfied(&offer1, &[]));
    assert!(cluster.is_satisfied(&offer1, &[r1(), r1()]));
    assert!(!cluster.is_satisfied(&offer2, &[r1(), r1()]));
    assert!(!cluster.is_satisfied(&on("foohost", ""), &[]));
    let unique = c("rackid", "UNIQUE", "");
    assert!(unique.is_satisfied(&offer1, &[]));
    assert!(unique.is_satisfied(&offer3, &[r1(), r2.clone()]));
    assert!(!unique.is_satisfied(&offer1, &[r1(), r2]));
    assert!(!unique.is_satisfied(&on("foohost", ""), &[]));
}

#[test]
fn like_and_unlike() {
    let jdk7 = on("foohost", "jdk:7");
    assert!(c("jdk", "LIKE", "7").is_satisfied(&jdk7, &[]));
    assert!(!c("jdk", "LIKE", "6").is_satisfied(&jdk7, &[]));
    let jdk6 = on("foohost", "jdk:6");
    assert!(c("jdk", "UNLIKE", "7").is_satisfied(&jdk6, &[]));
    assert!(!c("jdk", "UNLIKE", "7").is_satisfied(&jdk7, &[]));
    assert!(c("jdk", "UNLIKE", "7").is_satisfied(&on("foohost", ""), &[]));
}

#[test]
fn rack_group_by() {
    let r = |v: &str| on("x", &format!("rackid:{v}"));
    let offer1 = on("foohost", "foo:bar;rackid:rack-1");
    let offer2 = on("foohost", "foo:bar;rackid:rack-2");
    let g2 = c("rackid", "GROUP_BY", "2");
    assert!(g2.is_satisfied(&offer1, &[]));
    assert!(!g2.is_satisfied(&offer1, &[r("rack-1")]));
    assert!(g2.is_satisfied(&offer2, &[r("rack-1")]));
    assert!(g2.is_satisfied(&offer1, &[r("rack-1"), r("rack-2")]));
    assert!(!g2.is_satisfied(&offer1, &[r("rack-1"), r("rack-1"), r("rack-2")]));
    assert!(!g2.is_satisfied(&on("foohost", ""), &[]));

    let g3 = c("rackid", "GROUP_BY", "3");
    let offer3 = on("foohost", "foo:bar;rackid:rack-3");
    let (a, b, cc) = (r("rack-1"), r("rack-2"), r("rack-3"));
    assert!(g3.is_satisfied(&offer1, &[]));
    assert!(g3.is_satisfied(&offer2, std::slice::from_ref(&a)));
    assert!(g3.is_satisfied(&offer3, &[a.clone(), b.clone()]));
    assert!(g3.is_satisfied(&offer1, &[a.clone(), b.clone(), cc.clone()]));
    assert!(g3.is_satisfied(&offer2, &[a.clone(), b.clone(), cc.clone(), a.clone()]));
    assert!(!g3.is_satisfied(&offer2, &[a.clone(), b.clone(), cc, a, b]));
}

#[test]
fn group_by_scalar_values_compare_formatted() {
    // Placed on `rackid:1.0`, offered `rackid:1`: the same group.
    let r = |v: &str| on("x", &format!("rackid:{v}"));
    let g3 = c("rackid", "GROUP_BY", "3");
    let (i1, i2, i3) = (r("1.0"), r("2.0"), r("3.0"));
    let (o1, o2, o3) = (
        on("f", "foo:bar;rackid:1"),
        on("f", "foo:bar;rackid:2"),
        on("f", "foo:bar;rackid:3"),
    );
    assert!(g3.is_satisfied(&o1, &[]));
    assert!(g3.is_satisfied(&o2, std::slice::from_ref(&i1)));
    assert!(g3.is_satisfied(&o3, &[i1.clone(), i2.clone()]));
    assert!(g3.is_satisfied(&o1, &[i1.clone(), i2.clone(), i3.clone()]));
    assert!(g3.is_satisfied(&o2, &[i1.clone(), i2.clone(), i3.clone(), i1.clone()]));
    assert!(!g3.is_satisfied(&o2, &[i1.clone(), i2.clone(), i3, i1, i2]));
}

#[test]
fn hostname_group_by() {
    let g = c("hostname", "GROUP_BY", "2");
    let h = |n: &str| on(n, "");
    let mut placed = Vec::new();
    assert!(g.is_satisfied(&h("host1"), &placed));
    placed.push(h("host1"));
    assert!(!g.is_satisfied(&h("host1"), &placed));
    assert!(g.is_satisfied(&h("host2"), &placed));
    placed.push(h("host2"));
    assert!(g.is_satisfied(&h("host1"), &placed));
    placed.push(h("host1"));
    assert!(!g.is_satisfied(&h("host1"), &placed));
    assert!(g.is_satisfied(&h("host3"), &placed));
    placed.push(h("host3"));
    assert!(!g.is_satisfied(&h("host1"), &placed));
    assert!(g.is_satisfied(&h("host3"), &placed));
    assert!(g.is_satisfied(&h("host2"), &placed));
}

#[test]
fn is_compares_scalars_within_three_decimals() {
    let one = on("host", "number:1.0");
    assert!(c("hostname", "IS", "righthost.com").is_satisfied(&on("righthost.com", ""), &[]));
    assert!(c("number", "IS", "1.0").is_satisfied(&on("host", "number:1"), &[]));
    assert!(c("number", "IS", "1").is_satisfied(&one, &[]));
    assert!(c("number", "IS", "1.0001").is_satisfied(&one, &[]));
    assert!(c("number", "IS", "1.0005").is_satisfied(&one, &[]));
    assert!(!c("number", "IS", "1.00051").is_satisfied(&one, &[]));
    assert!(!c("number", "IS", "1.001").is_satisfied(&one, &[]));
}

#[test]
fn scale_down_vectors() {
    let g = c("hostname", "GROUP_BY", "");
    // 20 instances evenly on 2 hosts, kill 10: 5 from each.
    let even: Vec<AgentView> = (0..20).map(|i| on(&format!("{}", i % 2), "")).collect();
    let refs: Vec<&AgentView> = even.iter().collect();
    let k = select_instances_to_kill(std::slice::from_ref(&g), &refs, 10);
    assert_eq!(k.len(), 10);
    assert_eq!(k.iter().filter(|i| even[**i].hostname() == "0").count(), 5);
    // 20 on host 1 and 10 on host 2, kill 10: all from host 1.
    let uneven: Vec<AgentView> = (0..30)
        .map(|i| on(if i < 20 { "1" } else { "2" }, ""))
        .collect();
    let refs: Vec<&AgentView> = uneven.iter().collect();
    let k = select_instances_to_kill(std::slice::from_ref(&g), &refs, 10);
    assert!(k.iter().all(|i| uneven[*i].hostname() == "1"));
    // Two GROUP_BYs, 40 instances evenly over rack x color, kill 20: 10 of each value.
    let both = [c("rack", "GROUP_BY", ""), c("color", "GROUP_BY", "")];
    let mut agents = Vec::new();
    for (rack, color) in [
        ("rack-1", "blue"),
        ("rack-1", "green"),
        ("rack-2", "blue"),
        ("rack-2", "green"),
    ] {
        for _ in 0..10 {
            agents.push(on("h", &format!("rack:{rack};color:{color}")));
        }
    }
    let refs: Vec<&AgentView> = agents.iter().collect();
    let k = select_instances_to_kill(&both, &refs, 20);
    assert_eq!(k.len(), 20);
    for (field, value) in [
        ("rack", "rack-1"),
        ("rack", "rack-2"),
        ("color", "blue"),
        ("color", "green"),
    ] {
        let n = k
            .iter()
            .filter(|i| agents[**i].attribute(field) == Some(value))
            .count();
        assert_eq!(n, 10, "{field}={value}");
    }
}
