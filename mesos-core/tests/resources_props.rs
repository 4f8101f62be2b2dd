//! Property tests of the resource model (issue: foundation).

use mesos_core::resources::{Range, Ranges, Resource, Resources, Scalar, Set, Value};
use proptest::prelude::*;

/// One entry; every name keeps one type so generated values never conflict.
fn entry() -> impl Strategy<Value = Resource> {
    let role = prop_oneof![Just("*"), Just("r1"), Just("a/b")];
    let scalar = (
        prop_oneof![Just("cpus"), Just("mem"), Just("gpus"), Just("foo")],
        1i64..10_000_000,
    )
        .prop_map(|(n, m)| Resource::new(n, Value::Scalar(Scalar::from_millis(m))));
    let ranges = proptest::collection::vec((0u64..5000, 0u64..50), 1..4).prop_map(|v| {
        Resource::ranges(
            "ports",
            Ranges::new(v.into_iter().map(|(b, len)| Range::new(b, b + len))),
        )
    });
    let set = proptest::collection::vec(
        prop_oneof![Just("a"), Just("b"), Just("c"), Just("d")],
        1..4,
    )
    .prop_map(|v| Resource::set("disks", Set::new(v)));
    (prop_oneof![scalar, ranges, set], role).prop_map(|(r, role)| r.reserved_to(role))
}

fn resources() -> impl Strategy<Value = Resources> {
    proptest::collection::vec(entry(), 0..8).prop_map(|v| v.into_iter().collect())
}

/// `b` with every range value and set item that `a` holds removed (same identity), so that
/// `a + b` loses nothing of `b` and `(a + b) - b` can give `a` back. (With overlapping ranges or
/// sets, addition is a union and the property does not hold in Mesos either.)
fn disjoint_from(a: &Resources, b: Resources) -> Resources {
    b.into_iter()
        .map(|mut e| {
            let same: Vec<Resource> = a.iter().filter(|x| x.addable(&e)).cloned().collect();
            for x in &same {
                match (&mut e.value, &x.value) {
                    (Value::Ranges(r), Value::Ranges(xr)) => r.subtract(xr),
                    (Value::Set(s), Value::Set(xs)) => s.subtract(xs),
                    _ => {}
                }
            }
            e
        })
        .collect()
}

fn is_normalised(r: &Ranges) -> bool {
    r.ranges()
        .windows(2)
        .all(|w| w[0].end.saturating_add(1) < w[1].begin)
        && r.ranges().iter().all(|x| x.begin <= x.end)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn add_then_subtract_gives_back(a in resources(), b in resources()) {
        let b = disjoint_from(&a, b);
        prop_assert_eq!((&a + &b) - &b, a);
    }

    #[test]
    fn sum_contains_each_part(a in resources(), b in resources()) {
        let sum = &a + &b;
        prop_assert!(sum.contains(&a));
        prop_assert!(sum.contains(&b));
    }

    #[test]
    fn display_parses_back(a in resources()) {
        let text = a.to_string();
        let back = Resources::parse(&text);
        prop_assert!(back.is_ok(), "{} -> {:?}", text, back);
        prop_assert_eq!(back.unwrap_or_default(), a);
    }

    #[test]
    fn json_parses_back(a in resources()) {
        let json = serde_json::to_string(&a).unwrap_or_default();
        let back: Resources = serde_json::from_str(&json).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, a);
    }

    #[test]
    fn ranges_stay_normalised(ops in proptest::collection::vec((any::<bool>(), 0u64..300, 0u64..40), 0..40)) {
        let mut r = Ranges::default();
        for (add, b, len) in ops {
            let x = Ranges::single(b, b + len);
            if add { r.add(&x) } else { r.subtract(&x) }
            prop_assert!(is_normalised(&r), "{}", r);
        }
    }

    #[test]
    fn subtraction_never_grows(a in resources(), b in resources()) {
        let diff = &a - &b;
        prop_assert!(a.contains(&diff));
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(s in ".{0,64}") {
        let _ = Resources::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_resource_like_text(s in "[a-z()*:;\\[\\]{}0-9.,/ -]{0,40}") {
        if let Ok(r) = Resources::parse(&s) {
            // Whatever parses prints to something that parses to the same value.
            prop_assert_eq!(Resources::parse(&r.to_string()).ok(), Some(r));
        }
    }
}
