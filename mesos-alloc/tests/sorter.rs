//! The sorter's DRF and random policies against the behaviour of Mesos' sorter tests
//! (`src/tests/sorter_tests.cpp`), written from the reference's semantics.

use mesos_alloc::sorter::{DrfSorter, Sorter, SorterKind};
use mesos_core::ids::AgentId;
use mesos_core::resources::Resources;
use proptest::prelude::*;

fn res(text: &str) -> Resources {
    Resources::parse(text).unwrap()
}

fn agent() -> AgentId {
    AgentId::new("agent")
}

fn active(sorter: &mut DrfSorter, clients: &[&str]) {
    for c in clients {
        sorter.add(c);
        sorter.activate(c);
    }
}

#[test]
fn drf_orders_by_dominant_share_and_tracks_the_pool() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["a"]);
    s.allocated("a", &agent(), &res("cpus:5;mem:5"));
    active(&mut s, &["b"]);
    s.allocated("b", &agent(), &res("cpus:6;mem:6"));
    assert_eq!(s.sort(), ["a", "b"]);

    active(&mut s, &["c", "d"]);
    s.allocated("c", &agent(), &res("cpus:1;mem:1"));
    s.allocated("d", &agent(), &res("cpus:3;mem:1"));
    assert_eq!(s.sort(), ["c", "d", "a", "b"]);

    s.remove("a");
    s.unallocated("b", &agent(), &res("cpus:4;mem:4"));
    // b = .02, c = .01, d = .03
    assert_eq!(s.sort(), ["c", "b", "d"]);

    active(&mut s, &["e"]);
    s.allocated("e", &agent(), &res("cpus:1;mem:5"));
    // Shrink the pool to cpus:50;mem:100.
    s.remove_agent(&agent());
    s.add_agent(&agent(), &res("cpus:50;mem:100"));
    // b = .04, c = .02, d = .06, e = .05
    assert_eq!(s.sort(), ["c", "b", "e", "d"]);

    s.add_agent(&AgentId::new("other"), &res("mem:100"));
    active(&mut s, &["f"]);
    s.allocated("f", &agent(), &res("cpus:5;mem:1"));
    s.allocated("c", &agent(), &res("mem:15"));
    // b = .04, c = .08, d = .06, e = .025, f = .1
    assert_eq!(s.sort(), ["e", "b", "d", "c", "f"]);

    assert!(s.contains("b"));
    assert!(!s.contains("a"));
    assert_eq!(s.count(), 5);

    s.deactivate("d");
    assert!(s.contains("d"));
    assert_eq!(s.sort(), ["e", "b", "c", "f"]);
    assert_eq!(s.count(), 5);
    s.activate("d");
    assert_eq!(s.sort(), ["e", "b", "d", "c", "f"]);
}

#[test]
fn weighted_drf_divides_shares_by_weight() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["a"]);
    s.allocated("a", &agent(), &res("cpus:5;mem:5"));
    s.update_weight("b", 2.0);
    active(&mut s, &["b"]);
    s.allocated("b", &agent(), &res("cpus:6;mem:6"));
    // a = .05, b = .03
    assert_eq!(s.sort(), ["b", "a"]);

    active(&mut s, &["c"]);
    s.allocated("c", &agent(), &res("cpus:4;mem:4"));
    assert_eq!(s.sort(), ["b", "c", "a"]);

    s.update_weight("d", 10.0);
    active(&mut s, &["d"]);
    s.allocated("d", &agent(), &res("cpus:10;mem:20"));
    // d = .02
    assert_eq!(s.sort(), ["d", "b", "c", "a"]);

    s.remove("b");
    assert_eq!(s.sort(), ["d", "c", "a"]);

    s.allocated("d", &agent(), &res("cpus:10;mem:25"));
    // d = .045
    assert_eq!(s.sort(), ["c", "d", "a"]);

    s.update_weight("e", 0.1);
    active(&mut s, &["e"]);
    s.allocated("e", &agent(), &res("cpus:1;mem:1"));
    // e = .1
    assert_eq!(s.sort(), ["c", "d", "a", "e"]);

    s.remove("a");
    assert_eq!(s.sort(), ["c", "d", "e"]);
}

#[test]
fn equal_shares_fall_back_to_allocation_count_then_path() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["a", "b", "c", "d"]);
    s.allocated("a", &agent(), &res("cpus:2"));
    s.allocated("b", &agent(), &res("cpus:1"));
    s.allocated("b", &agent(), &res("cpus:1"));
    s.allocated("c", &agent(), &res("cpus:1"));
    s.allocated("c", &agent(), &res("cpus:1"));
    s.allocated("d", &agent(), &res("cpus:2"));
    // All at .02: a and d have one allocation each, b and c two.
    assert_eq!(s.sort(), ["a", "d", "b", "c"]);

    // The count survives unallocation and deactivation.
    s.unallocated("a", &agent(), &res("cpus:2"));
    s.allocated("a", &agent(), &res("cpus:2"));
    s.deactivate("a");
    s.activate("a");
    assert_eq!(s.sort(), ["d", "a", "b", "c"]);
}

#[test]
fn shares_are_compared_in_f64_as_upstream_computes_them() {
    // Exactly, 0.15 / 3 == 0.10 / 2; in f64 the first is smaller. With equal counts, the
    // path would put `x` first; the f64 share puts `y` first.
    let (fifteen, ten) = (std::hint::black_box(15.0f64), std::hint::black_box(10.0f64));
    assert!((fifteen / 100.0) / 3.0 < (ten / 100.0) / 2.0);
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:1000"));
    s.update_weight("x", 2.0);
    s.update_weight("y", 3.0);
    active(&mut s, &["x", "y"]);
    s.allocated("x", &agent(), &res("cpus:10"));
    s.allocated("y", &agent(), &res("cpus:15"));
    assert_eq!(s.sort(), ["y", "x"]);
}

#[test]
fn only_scalars_count_toward_shares() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:10;mem:100;ports:[1-1000]"));
    active(&mut s, &["a", "b"]);
    s.allocated("a", &agent(), &res("cpus:1;ports:[1-1000]"));
    s.allocated("b", &agent(), &res("cpus:2"));
    assert_eq!(s.sort(), ["a", "b"]);
}

#[test]
fn hierarchical_clients_sort_level_by_level() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["a", "b/c", "b/d"]);
    s.allocated("a", &agent(), &res("cpus:5;mem:5"));
    s.allocated("b/c", &agent(), &res("cpus:6;mem:6"));
    s.allocated("b/d", &agent(), &res("cpus:4;mem:4"));
    // a = .05 beats b = .10; inside b, d = .04 beats c = .06.
    assert_eq!(s.sort(), ["a", "b/d", "b/c"]);
    assert!(!s.contains("b"));
    assert_eq!(s.count(), 3);

    s.allocated("b/d", &agent(), &res("cpus:10;mem:10"));
    assert_eq!(s.sort(), ["a", "b/c", "b/d"]);

    // A deep, narrow branch still competes through its top node.
    active(&mut s, &["e/f/g/h"]);
    s.allocated("e/f/g/h", &agent(), &res("cpus:1"));
    assert_eq!(s.sort(), ["e/f/g/h", "a", "b/c", "b/d"]);

    // A subtree whose only client is inactive contributes nothing.
    s.deactivate("e/f/g/h");
    assert_eq!(s.sort(), ["a", "b/c", "b/d"]);
}

#[test]
fn adding_a_child_to_a_leaf_creates_the_virtual_leaf() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["a", "b"]);
    s.allocated("a", &agent(), &res("cpus:10;mem:10"));
    s.allocated("b", &agent(), &res("cpus:6;mem:6"));
    assert_eq!(s.sort(), ["b", "a"]);

    // `a` becomes internal; client `a` moves to `a/.` with its allocation.
    active(&mut s, &["a/c"]);
    s.allocated("a/c", &agent(), &res("cpus:5;mem:5"));
    // b = .06 < a subtree = .15; inside a: a/c = .05 < a/. = .10
    assert_eq!(s.sort(), ["b", "a/c", "a"]);
    assert!(s.contains("a"));
    assert!(s.contains("a/c"));
    assert_eq!(s.count(), 3);

    // The weight of `a` covers its subtree; `a/.` keeps weight 1 inside it.
    s.update_weight("a", 3.0);
    // a subtree = .15 / 3 = .05 < b = .06
    assert_eq!(s.sort(), ["a/c", "a", "b"]);

    // Removing the child collapses `a` back into a leaf that keeps its allocation.
    s.remove("a/c");
    assert_eq!(s.count(), 2);
    // a = .10 / 3 < b = .06? .0333 < .06: a first.
    assert_eq!(s.sort(), ["a", "b"]);
    s.update_weight("a", 1.0);
    assert_eq!(s.sort(), ["b", "a"]);
}

#[test]
fn adding_a_child_to_an_inactive_leaf_keeps_the_client_inactive() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["a", "b"]);
    s.deactivate("a");
    active(&mut s, &["a/c"]);
    assert_eq!(s.sort(), ["a/c", "b"]);
    s.activate("a");
    assert_eq!(s.sort(), ["a", "a/c", "b"]);
}

#[test]
fn adding_a_client_at_an_internal_node_creates_the_virtual_leaf() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["x/y", "x/z", "w"]);
    s.allocated("x/y", &agent(), &res("cpus:2"));
    s.allocated("x/z", &agent(), &res("cpus:3"));
    s.allocated("w", &agent(), &res("cpus:4"));
    assert_eq!(s.sort(), ["w", "x/y", "x/z"]);
    active(&mut s, &["x"]);
    // x/. has nothing allocated: it comes first inside x.
    assert_eq!(s.sort(), ["w", "x", "x/y", "x/z"]);
    s.allocated("x", &agent(), &res("cpus:10"));
    // x subtree = .15 now; w = .04 first; inside x: y .02, z .03, x/. .10
    assert_eq!(s.sort(), ["w", "x/y", "x/z", "x"]);
    // Removing the internal client removes only `x/.`.
    s.remove("x");
    assert!(!s.contains("x"));
    assert_eq!(s.sort(), ["w", "x/y", "x/z"]);
    assert_eq!(s.allocation("").unwrap().get("cpus").millis(), 9000);
}

#[test]
fn weights_apply_to_whole_subtrees() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:100;mem:100"));
    active(&mut s, &["a/x", "a/y", "b/z"]);
    s.allocated("a/x", &agent(), &res("cpus:10"));
    s.allocated("a/y", &agent(), &res("cpus:10"));
    s.allocated("b/z", &agent(), &res("cpus:15"));
    assert_eq!(s.sort(), ["b/z", "a/x", "a/y"]);
    // a subtree .20 / 2 = .10 < b .15
    s.update_weight("a", 2.0);
    assert_eq!(s.sort(), ["a/x", "a/y", "b/z"]);
    // A weight on a leaf inside the subtree orders within it.
    s.update_weight("a/y", 4.0);
    assert_eq!(s.sort(), ["a/y", "a/x", "b/z"]);
}

#[test]
fn update_replaces_quantities_without_counting_an_allocation() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:10;mem:100"));
    active(&mut s, &["a", "b"]);
    s.allocated("a", &agent(), &res("cpus:2;mem:1"));
    s.allocated("b", &agent(), &res("cpus:1;mem:2"));
    assert_eq!(s.sort(), ["b", "a"]);
    s.update("a", &agent(), &res("cpus:2;mem:1"), &res("cpus:0.5;mem:1"));
    assert_eq!(s.sort(), ["a", "b"]);
    assert_eq!(s.allocation("a").unwrap().get("cpus").millis(), 500);
}

#[test]
fn inactive_clients_are_never_returned() {
    let mut s = DrfSorter::new();
    s.add_agent(&agent(), &res("cpus:10"));
    s.add("a");
    s.add("b/c");
    assert!(s.sort().is_empty());
    s.activate("b/c");
    assert_eq!(s.sort(), ["b/c"]);
    // Unknown clients are ignored, not a panic.
    s.activate("nope");
    s.remove("nope");
    s.allocated("nope", &agent(), &res("cpus:1"));
    assert_eq!(s.count(), 2);
}

#[test]
fn random_sorter_is_seeded_returns_only_active_clients_and_follows_weights() {
    let mut a = Sorter::random(42);
    let mut b = Sorter::random(42);
    for s in [&mut a, &mut b] {
        for c in ["r1", "r2", "r3/x", "r3/y", "r4"] {
            s.add(c);
            s.activate(c);
        }
        s.deactivate("r4");
    }
    for _ in 0..20 {
        let order = a.sort();
        assert_eq!(order, b.sort());
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, ["r1", "r2", "r3/x", "r3/y"]);
        // Hierarchical: r3's clients stay together.
        let i = order.iter().position(|c| c == "r3/x").unwrap();
        let j = order.iter().position(|c| c == "r3/y").unwrap();
        assert_eq!(i.abs_diff(j), 1);
    }
    // A heavy client comes first far more often than a light one.
    let mut s = Sorter::random(7);
    for c in ["heavy", "light"] {
        s.add(c);
        s.activate(c);
    }
    s.update_weight("heavy", 9.0);
    let first_heavy = (0..2000).filter(|_| s.sort()[0] == "heavy").count();
    // P(heavy first) = 9 / 10.
    assert!((1700..1900).contains(&first_heavy), "{first_heavy}");
}

#[test]
fn both_policies_share_the_tree_api() {
    for kind in [SorterKind::Drf, SorterKind::Random] {
        let mut s = Sorter::with_kind(kind, 1);
        assert_eq!(s.kind(), kind);
        s.add_agent(&agent(), &res("cpus:10"));
        s.add("a");
        s.activate("a");
        s.allocated("a", &agent(), &res("cpus:1"));
        assert_eq!(s.sort(), ["a"]);
        assert!(s.contains("a"));
        assert_eq!(s.count(), 1);
        assert_eq!(s.share("a"), Some(0.1));
        s.deactivate("a");
        assert!(s.sort().is_empty());
    }
}

// ---- Incremental order == order computed from scratch -------------------------------------

const PATHS: [&str; 7] = ["a", "b", "c/d", "c/e", "c", "f/g/h", "f/i"];

#[derive(Clone, Debug)]
enum Op {
    Activate(usize),
    Deactivate(usize),
    Allocate(usize, u32, u32),
    Unallocate(usize, u32, u32),
    Weight(usize, u8),
    AgentChange(u32),
    Sort,
}

fn op() -> impl Strategy<Value = Op> {
    let c = 0..PATHS.len();
    prop_oneof![
        c.clone().prop_map(Op::Activate),
        c.clone().prop_map(Op::Deactivate),
        (c.clone(), 0..20u32, 0..20u32).prop_map(|(c, x, y)| Op::Allocate(c, x, y)),
        (c.clone(), 0..20u32, 0..20u32).prop_map(|(c, x, y)| Op::Unallocate(c, x, y)),
        (0..9usize, 1..5u8).prop_map(|(c, w)| Op::Weight(c, w)),
        (1..50u32).prop_map(Op::AgentChange),
        Just(Op::Sort),
    ]
}

#[derive(Clone, Default)]
struct Model {
    active: [bool; 7],
    alloc: [(i64, i64); 7],
    count: [u64; 7],
    weights: std::collections::BTreeMap<String, f64>,
    total: (i64, i64),
}

impl Model {
    /// Every node path and what lies below it, computed from scratch.
    fn order(&self) -> Vec<String> {
        let mut out = Vec::new();
        self.visit("", &mut out);
        out
    }

    fn under(&self, prefix: &str) -> Vec<usize> {
        (0..PATHS.len())
            .filter(|&i| PATHS[i] == prefix || PATHS[i].starts_with(&format!("{prefix}/")))
            .collect()
    }

    fn share(&self, clients: &[usize], weight: f64) -> f64 {
        let (c, m) = clients.iter().fold((0, 0), |(c, m), &i| {
            (c + self.alloc[i].0, m + self.alloc[i].1)
        });
        let mut share = 0.0f64;
        for (a, t) in [(c, self.total.0), (m, self.total.1)] {
            if t > 0 {
                let s = (a as f64 / 1000.0) / (t as f64 / 1000.0);
                if share < s {
                    share = s;
                }
            }
        }
        share / weight
    }

    fn visit(&self, node: &str, out: &mut Vec<String>) {
        let mut children: Vec<String> = Vec::new();
        for p in PATHS {
            let rest = if node.is_empty() {
                Some(p)
            } else {
                p.strip_prefix(&format!("{node}/"))
            };
            if let Some(rest) = rest {
                let name = rest.split('/').next().unwrap().to_string();
                if !children.contains(&name) {
                    children.push(name);
                }
            }
        }
        let is_client = PATHS.contains(&node);
        if is_client && !children.is_empty() {
            children.push(".".to_string());
        }
        let mut keyed = Vec::new();
        for name in children {
            let (path, clients, weight, leaf_client) = if name == "." {
                let i = PATHS.iter().position(|p| *p == node).unwrap();
                (format!("{node}/."), vec![i], 1.0, Some(i))
            } else {
                let path = if node.is_empty() {
                    name.clone()
                } else {
                    format!("{node}/{name}")
                };
                let clients = self.under(&path);
                let w = self.weights.get(&path).copied().unwrap_or(1.0);
                let leaf = if clients.len() == 1 && PATHS[clients[0]] == path {
                    Some(clients[0])
                } else {
                    None
                };
                (path, clients, w, leaf)
            };
            if let Some(i) = leaf_client {
                if !self.active[i] {
                    continue;
                }
            }
            let share = self.share(&clients, weight);
            let count: u64 = clients.iter().map(|&i| self.count[i]).sum();
            keyed.push((share, count, name, path, leaf_client));
        }
        keyed.sort_by(|a, b| {
            a.0.partial_cmp(&b.0)
                .unwrap()
                .then(a.1.cmp(&b.1))
                .then(a.2.cmp(&b.2))
        });
        for (_, _, _, path, leaf) in keyed {
            match leaf {
                Some(i) => out.push(PATHS[i].to_string()),
                None => self.visit(&path, out),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn incremental_drf_order_matches_a_full_recomputation(ops in proptest::collection::vec(op(), 1..80)) {
        let mut s = DrfSorter::new();
        let mut m = Model { total: (100_000, 100_000), ..Model::default() };
        s.add_agent(&agent(), &res("cpus:100;mem:100"));
        for p in PATHS {
            s.add(p);
        }
        let weight_paths = ["a", "b", "c", "c/d", "c/e", "f", "f/g", "f/g/h", "f/i"];
        for op in ops {
            match op {
                Op::Activate(i) => { s.activate(PATHS[i]); m.active[i] = true; }
                Op::Deactivate(i) => { s.deactivate(PATHS[i]); m.active[i] = false; }
                Op::Allocate(i, c, mem) => {
                    let r = res(&format!("cpus:{c};mem:{mem}"));
                    s.allocated(PATHS[i], &agent(), &r);
                    m.alloc[i].0 += i64::from(c) * 1000;
                    m.alloc[i].1 += i64::from(mem) * 1000;
                    m.count[i] += 1;
                }
                Op::Unallocate(i, c, mem) => {
                    let c = i64::from(c) * 1000;
                    let mem = i64::from(mem) * 1000;
                    let c = c.min(m.alloc[i].0);
                    let mem = mem.min(m.alloc[i].1);
                    let r = res(&format!("cpus:{};mem:{}", c as f64 / 1000.0, mem as f64 / 1000.0));
                    s.unallocated(PATHS[i], &agent(), &r);
                    m.alloc[i].0 -= c;
                    m.alloc[i].1 -= mem;
                }
                Op::Weight(p, w) => {
                    s.update_weight(weight_paths[p], f64::from(w));
                    m.weights.insert(weight_paths[p].to_string(), f64::from(w));
                }
                Op::AgentChange(extra) => {
                    s.add_agent(&AgentId::new(format!("x{extra}")), &res(&format!("cpus:{extra}")));
                    m.total.0 += i64::from(extra) * 1000;
                }
                Op::Sort => {
                    prop_assert_eq!(s.sort(), m.order());
                }
            }
        }
        prop_assert_eq!(s.sort(), m.order());
    }
}

// ---- Structure under random adds and removes ------------------------------------------

const TREE_PATHS: [&str; 9] = [
    "a", "a/b", "a/b/c", "a/d", "e", "e/f/g", "h", "a/b/c/x", "e/f",
];

#[derive(Clone, Debug)]
enum TreeOp {
    Add(usize),
    Remove(usize),
    Activate(usize),
    Deactivate(usize),
    Allocate(usize, u32),
    Unallocate(usize, u32),
}

fn tree_op() -> impl Strategy<Value = TreeOp> {
    let p = 0..TREE_PATHS.len();
    prop_oneof![
        2 => p.clone().prop_map(TreeOp::Add),
        1 => p.clone().prop_map(TreeOp::Remove),
        2 => p.clone().prop_map(TreeOp::Activate),
        1 => p.clone().prop_map(TreeOp::Deactivate),
        2 => (p.clone(), 1..10u32).prop_map(|(p, c)| TreeOp::Allocate(p, c)),
        1 => (p, 1..10u32).prop_map(|(p, c)| TreeOp::Unallocate(p, c)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Virtual leaves appear and collapse as clients come and go; through all of it `sort`
    /// returns exactly the active clients, once each, and `count`/`contains` agree.
    #[test]
    fn sort_returns_exactly_the_active_clients(ops in proptest::collection::vec(tree_op(), 1..60)) {
        let mut s = DrfSorter::new();
        s.add_agent(&agent(), &res("cpus:100;mem:100"));
        let mut present = std::collections::BTreeMap::<&str, bool>::new();
        for op in ops {
            match op {
                TreeOp::Add(i) => {
                    s.add(TREE_PATHS[i]);
                    present.entry(TREE_PATHS[i]).or_insert(false);
                }
                TreeOp::Remove(i) => {
                    s.remove(TREE_PATHS[i]);
                    present.remove(TREE_PATHS[i]);
                }
                TreeOp::Activate(i) => {
                    s.activate(TREE_PATHS[i]);
                    if let Some(a) = present.get_mut(TREE_PATHS[i]) {
                        *a = true;
                    }
                }
                TreeOp::Deactivate(i) => {
                    s.deactivate(TREE_PATHS[i]);
                    if let Some(a) = present.get_mut(TREE_PATHS[i]) {
                        *a = false;
                    }
                }
                TreeOp::Allocate(i, c) => s.allocated(TREE_PATHS[i], &agent(), &res(&format!("cpus:{c}"))),
                TreeOp::Unallocate(i, c) => s.unallocated(TREE_PATHS[i], &agent(), &res(&format!("cpus:{c}"))),
            }
            let mut sorted = s.sort();
            sorted.sort();
            let active: Vec<String> = present.iter().filter(|(_, a)| **a).map(|(p, _)| p.to_string()).collect();
            prop_assert_eq!(sorted, active);
            prop_assert_eq!(s.count(), present.len());
            for p in TREE_PATHS {
                prop_assert_eq!(s.contains(p), present.contains_key(p));
            }
        }
    }
}
