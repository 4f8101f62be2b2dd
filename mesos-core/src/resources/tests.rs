//! Unit tests written from Mesos' resource semantics (reference §1).

use super::*;

fn r(s: &str) -> Resources {
    Resources::parse(s).unwrap()
}

fn err(s: &str) -> String {
    Resources::parse(s).unwrap_err().to_string()
}

#[test]
fn parses_and_prints_the_text_form() {
    let res = r("cpus:45.55;ports:[10000-20000, 30000-50000];disks:{sda1}");
    assert_eq!(
        res.to_string(),
        "cpus:45.55; ports:[10000-20000, 30000-50000]; disks:{sda1}"
    );
    assert_eq!(res.scalar("cpus"), Some(45.55));
    assert_eq!(res.scalar("mem"), None);
    assert_eq!(Resources::new().to_string(), "{}");
}

#[test]
fn white_space_is_ignored_in_values_and_trimmed_in_names() {
    assert_eq!(
        r(" cpus : 2 ; ports : [ 1 - 2 , 4 - 5 ] ;"),
        r("cpus:2;ports:[1-2,4-5]")
    );
    assert_eq!(r("cpus:1;;mem:2"), r("mem:2;cpus:1"));
}

#[test]
fn same_identity_merges() {
    assert_eq!(r("cpus:1;cpus:2").to_string(), "cpus:3");
    assert_eq!(r("ports:[1-2];ports:[3-4]").to_string(), "ports:[1-4]");
    assert_eq!(r("cpus:1;cpus(role1):2").len(), 2);
}

#[test]
fn roles_and_reservations() {
    let res = r("cpus(role1):2;mem:10;cpus(*):1");
    assert_eq!(res.to_string(), "cpus(role1):2; mem:10; cpus:1");
    assert_eq!(res.scalar("cpus"), Some(3.0));
    assert_eq!(res.unreserved(), r("mem:10;cpus:1"));
    assert_eq!(res.reserved_to("role1"), r("cpus(role1):2"));
    assert_eq!(res.to_unreserved(), r("cpus:3;mem:10"));
    let with_default = Resources::parse_with_role("cpus:1;mem(*):5", "eng").unwrap();
    assert_eq!(with_default.to_string(), "cpus(eng):1; mem:5");
}

#[test]
fn allocatable_to_sub_roles_only() {
    let res = r("cpus(a/bx):1;mem:5");
    assert_eq!(res.allocatable_to("a/bx/c"), res);
    assert_eq!(res.allocatable_to("a/b"), r("mem:5"));
    assert_eq!(res.allocatable_to("a/bx"), res);
    assert_eq!(res.allocatable_to("a/bxy"), r("mem:5"));
}

#[test]
fn allocated_resources_do_not_mix_with_unallocated() {
    let a = r("cpus:2").allocate("web");
    assert_eq!(a.to_string(), "cpus(allocated: web):2");
    assert!(!r("cpus:4").contains(&a));
    assert_eq!((a.clone() + r("cpus:1")).len(), 2);
    assert_eq!(a.unallocate(), r("cpus:2"));
    assert_eq!(Resources::parse(&a.to_string()).unwrap(), a);
}

#[test]
fn addition_and_subtraction() {
    let a = r("cpus:1;mem:5;ports:[1-10];disks:{a,b}");
    let b = r("cpus:0.5;mem:10;ports:[3-4];disks:{b}");
    assert_eq!(
        (&a + &b).to_string(),
        "cpus:1.5; mem:15; ports:[1-10]; disks:{a, b}"
    );
    assert_eq!(
        (&a - &b).to_string(),
        "cpus:0.5; ports:[1-2, 5-10]; disks:{a}"
    );
    let mut c = a.clone();
    c -= &a;
    assert!(c.is_empty());
    c += a.clone();
    assert_eq!(c, a);
}

#[test]
fn subtracting_more_than_present_drops_the_entry() {
    assert_eq!(r("cpus:1;mem:5") - r("cpus:2"), r("mem:5"));
    assert_eq!(r("cpus:1") - r("cpus(r):1"), r("cpus:1"));
    assert_eq!(r("ports:[1-2]") - r("ports:[5-6]"), r("ports:[1-2]"));
}

#[test]
fn containment() {
    let total = r("cpus:4;mem:1024;ports:[31000-32000]");
    assert!(total.contains(&r("cpus:4;ports:[31000-31000,31500-31600]")));
    assert!(!total.contains(&r("cpus:4.001")));
    assert!(!total.contains(&r("gpus:1")));
    assert!(!total.contains(&r("ports:[30999-31000]")));
    assert!(!total.contains(&r("cpus(r):1")));
    assert!(total.contains(&Resources::new()));
    assert!(r("disks:{a,b,c}").contains(&r("disks:{c,a}")));
}

#[test]
fn equality_is_semantic() {
    assert_eq!(r("cpus:1;mem:2"), r("mem:2;cpus:1"));
    assert_eq!(r("disks:{a,b}"), r("disks:{b,a}"));
    assert_eq!(r("ports:[1-5,6-9]"), r("ports:[1-9]"));
    assert_ne!(r("cpus:1"), r("cpus:1;mem:1"));
    assert_ne!(r("cpus:1"), r("cpus(r):1"));
}

#[test]
fn precision_is_three_decimals_rounded_half_away_from_zero() {
    assert_eq!(r("cpus:0.0005").to_string(), "cpus:0.001");
    assert_eq!(r("cpus:1.2345").to_string(), "cpus:1.235");
    assert_eq!(r("cpus:1.2344").to_string(), "cpus:1.234");
    assert_eq!(r("cpus:2.000").to_string(), "cpus:2");
    let mut total = Resources::new();
    for _ in 0..10 {
        total += r("cpus:0.1");
    }
    assert_eq!(total, r("cpus:1"));
    assert_eq!(total.scalar("cpus"), Some(1.0));
    assert_eq!(r("cpus:0"), Resources::new());
}

#[test]
fn errors_name_the_fragment_and_why() {
    assert_eq!(err("cpus:abc"), "invalid scalar value `abc` for `cpus`");
    assert_eq!(
        err("cpus:0.00001"),
        "scalar value `0.00001` for `cpus` is too small: the smallest non-zero amount is 0.001"
    );
    assert_eq!(err("cpus:-1"), "negative scalar value `-1` for `cpus`");
    assert_eq!(err("cpus:inf"), "invalid scalar value `inf` for `cpus`");
    assert_eq!(
        err("cpus:1e30"),
        "scalar value `1e30` for `cpus` is too large"
    );
    assert_eq!(err("cpus"), "expected `name:value` but got `cpus`");
    assert_eq!(err("cpus:1:2"), "expected `name:value` but got `cpus:1:2`");
    assert_eq!(err(":5"), "expected `name:value` but got `:5`");
    assert_eq!(err(" (r):5"), "empty resource name in `(r):5`");
    assert_eq!(
        err("ports:[5-3]"),
        "invalid ranges `[5-3]` for `ports`: range 5-3 is inverted"
    );
    assert_eq!(
        err("ports:[1-2-3]"),
        "invalid ranges `[1-2-3]` for `ports`: expected pairs `begin-end`"
    );
    assert_eq!(
        err("ports:[a-b]"),
        "invalid ranges `[a-b]` for `ports`: `a` is not a non-negative integer"
    );
    assert_eq!(
        err("ports:[1-2"),
        "invalid ranges `[1-2` for `ports`: missing closing `]`"
    );
    assert_eq!(
        err("disks:{a,a}"),
        "invalid set `{a,a}` for `disks`: duplicate item `a`"
    );
    assert_eq!(err("cpus(r:1"), "expected `name:value` but got `cpus(r:1`");
    assert_eq!(
        err("cpus(r):1:2"),
        "expected `name:value` but got `cpus(r):1:2`"
    );
    assert_eq!(err("cpus(r;1"), "expected `name:value` but got `cpus(r`");
    assert_eq!(
        err("cpus(/r):1"),
        "invalid role `/r`: a role must not start or end with `/`"
    );
    assert_eq!(
        err("cpus(a//b):1"),
        "invalid role `a//b`: a role must not contain `//`"
    );
    assert_eq!(
        err("cpus(a/../b):1"),
        "invalid role `a/../b`: a role component must not be `.` or `..`"
    );
    assert_eq!(
        err("cpus(-a):1"),
        "invalid role `-a`: a role component must not start with `-`"
    );
    assert_eq!(
        err("cpus(a)(b):1"),
        "malformed role in `cpus(a)(b):1`: more than one role"
    );
    assert_eq!(
        err("cpus:1;cpus:[1-2]"),
        "resource `cpus` appears both as SCALAR and as RANGES"
    );
}

#[test]
fn v1_json_round_trip_and_formats() {
    let res = r("cpus:45.55;ports:[10000-20000];pandas:{lun_lun,yang_yang};mem(eng):5");
    let json = serde_json::to_value(&res).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {"name":"cpus","type":"SCALAR","scalar":{"value":45.55}},
            {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":10000,"end":20000}]}},
            {"name":"pandas","type":"SET","set":{"item":["lun_lun","yang_yang"]}},
            {"name":"mem","type":"SCALAR","scalar":{"value":5.0},"reservations":[{"type":"STATIC","role":"eng"}]}
        ])
    );
    let back: Resources = serde_json::from_value(json).unwrap();
    assert_eq!(back, res);
    let old = res.allocate("eng").to_json(JsonFormat::PreRefinement);
    assert_eq!(old[0]["role"], "*");
    assert_eq!(old[3]["role"], "eng");
    assert_eq!(old[3]["allocation_info"]["role"], "eng");
    let from_old: Resources = serde_json::from_value(old).unwrap();
    assert_eq!(from_old, res.allocate("eng"));
    assert_eq!(
        Resources::parse(&serde_json::to_string(&res).unwrap()).unwrap(),
        res
    );
}

#[test]
fn v1_json_errors() {
    let bad = |j: &str| Resources::from_json(j).unwrap_err().to_string();
    assert!(bad(r#"[{"name":"cpus","type":"SCALAR"}]"#).contains("type SCALAR without `scalar`"));
    assert!(
        bad(r#"[{"name":"cpus","type":"TEXT","text":{"value":"x"}}]"#)
            .contains("unknown type `TEXT`")
    );
    assert!(bad(r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":-1}}]"#).contains("negative"));
    assert!(
        bad(r#"[{"name":"p","type":"RANGES","ranges":{"range":[{"begin":5,"end":1}]}}]"#)
            .contains("inverted")
    );
    assert!(bad(r#"[{"name":"","type":"SCALAR","scalar":{"value":1}}]"#)
        .contains("empty resource name"));
    assert!(
        bad(r#"[{"name":"cpus","type":"SCALAR","scalar":{"value":1},"role":"a//b"}]"#)
            .contains("invalid role")
    );
    assert!(bad("[1]").contains("invalid resources JSON"));
}

#[test]
fn quantities() {
    let res = r("cpus:1;cpus(r):2;mem:5;ports:[1-10];disks:{a,b}");
    assert_eq!(res.scalar_quantities().to_string(), "cpus:3; mem:5");
    assert_eq!(
        res.quantities().to_string(),
        "cpus:3; disks:2; mem:5; ports:10"
    );
    let mut q = ResourceQuantities::parse("cpus:1;mem:10;gpus:0").unwrap();
    assert_eq!(q.to_string(), "cpus:1; mem:10");
    q.subtract(&ResourceQuantities::parse("cpus:5;disk:3").unwrap());
    assert_eq!(q.to_string(), "mem:10");
    assert!(q.contains(&ResourceQuantities::parse("mem:10").unwrap()));
    assert!(!q.contains(&ResourceQuantities::parse("mem:10.001").unwrap()));
    assert!(ResourceQuantities::parse("cpus:-1").is_err());
}

#[test]
fn clones_share_their_list_until_one_changes() {
    let a = r("cpus:2;mem:512;ports:[1-10]");
    let mut b = a.clone();
    assert!(b.ptr_eq(&a));
    b -= &r("ports:[1-1]");
    assert!(!b.ptr_eq(&a));
    assert_eq!(
        a,
        r("cpus:2;mem:512;ports:[1-10]"),
        "the original is unchanged"
    );
    assert_eq!(b, r("cpus:2;mem:512;ports:[2-10]"));
    // Subtracting what is not there changes nothing and copies nothing.
    let mut c = a.clone();
    c -= &r("gpus:1");
    assert!(c.ptr_eq(&a));
    // Adding to nothing takes the other list as it is.
    let mut d = Resources::new();
    d += a.clone();
    assert!(d.ptr_eq(&a));
    // Emptied values are empty, and empty values share nothing.
    let mut e = a.clone();
    e -= &a;
    assert!(e.is_empty() && !e.ptr_eq(&Resources::new()));
    assert_eq!(a.clone().into_iter().count(), 3);
}
