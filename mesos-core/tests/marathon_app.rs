//! App definitions: defaults, normalisation, the seed's example and the 422 body.

use mesos_core::marathon::{AppDefinition, NetworkMode, UnreachableStrategy};
use proptest::prelude::*;
use serde_json::{json, Value};

fn nginxgmg() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/examples/nginxgmg.json"
    ))
    .unwrap_or_else(|_| {
        // The shared directory is outside the repository; keep the test runnable without it.
        r#"{"id":"nginxgmg","cpus":0.2,"mem":20.0,"instances": 1,
            "constraints": [["hostname", "UNIQUE",""]],
            "container": {"type":"DOCKER","docker": {"image": "daocloud.io/nginx","network": "BRIDGE",
            "portMappings": [{"containerPort": 80, "hostPort": 0,"servicePort": 0, "protocol": "tcp" }]}}}"#
            .to_string()
    });
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_seed_example_is_accepted_and_normalised() {
    let app = AppDefinition::from_json(&nginxgmg()).unwrap();
    assert_eq!(app.id.to_string(), "/nginxgmg");
    assert_eq!((app.cpus, app.mem, app.instances), (0.2, 20.0, 1));
    assert_eq!(app.network_mode(), NetworkMode::ContainerBridge);
    let j = app.to_json();
    assert_eq!(j["constraints"], json!([["hostname", "UNIQUE"]]));
    assert_eq!(j["networks"], json!([{"mode": "container/bridge"}]));
    assert_eq!(j["cpus"], json!(0.2));
    assert_eq!(j["mem"], json!(20.0));
    assert_eq!(
        j["container"]["portMappings"],
        json!([{"containerPort": 80, "hostPort": 0, "servicePort": 0, "protocol": "tcp", "labels": {}}])
    );
    assert!(j["container"]["docker"].get("network").is_none());
    assert!(j["container"]["docker"].get("portMappings").is_none());
    assert_eq!(
        j["container"]["docker"]["image"],
        json!("daocloud.io/nginx")
    );
    assert_eq!(j["portDefinitions"], json!([]));
    assert_eq!(j["requirePorts"], json!(false));
    assert_eq!(j["backoffSeconds"], json!(1));
    assert_eq!(j["backoffFactor"], json!(1.15));
    assert_eq!(j["maxLaunchDelaySeconds"], json!(300));
    assert_eq!(
        j["upgradeStrategy"],
        json!({"minimumHealthCapacity": 1.0, "maximumOverCapacity": 1.0})
    );
    assert_eq!(
        j["unreachableStrategy"],
        json!({"inactiveAfterSeconds": 0, "expungeAfterSeconds": 0})
    );
    assert_eq!(j["killSelection"], json!("YOUNGEST_FIRST"));
    // The canonical form reads back to the same app (state is stored as JSON).
    let back: AppDefinition = serde_json::from_value(j).unwrap();
    assert_eq!(back, app);
}

#[test]
fn defaults_for_a_command_app() {
    let app = AppDefinition::from_json(&json!({"id": "/a/b", "cmd": "sleep 1"})).unwrap();
    assert_eq!(
        (app.cpus, app.mem, app.disk, app.gpus, app.instances),
        (1.0, 128.0, 0.0, 0, 1)
    );
    let j = app.to_json();
    assert_eq!(
        j["portDefinitions"],
        json!([{"port": 0, "protocol": "tcp", "name": "default"}])
    );
    assert_eq!(j["networks"], json!([{"mode": "host"}]));
    assert_eq!(j["role"], json!("*"));
    let none =
        AppDefinition::from_json(&json!({"id": "x", "cmd": "y", "portDefinitions": []})).unwrap();
    assert!(none.port_definitions.is_empty());
    let back: AppDefinition = serde_json::from_value(none.to_json()).unwrap();
    assert!(back.port_definitions.is_empty());
    let legacy =
        AppDefinition::from_json(&json!({"id": "x", "cmd": "y", "ports": [80, 0]})).unwrap();
    assert_eq!(legacy.service_ports(), vec![80, 0]);
}

#[test]
fn every_violation_is_listed_with_its_path() {
    let err = AppDefinition::from_json(&json!({
        "id": "Bad_Id",
        "cpus": -1,
        "mem": "lots",
        "instances": 0.1,
        "constraints": [["hostname", "UNIQUE", "x"], ["rack", "GROUP_BY", "a"], ["a"]],
        "upgradeStrategy": {"minimumHealthCapacity": 1.5},
        "backoffFactor": 0.5,
        "container": {"type": "DOCKER", "docker": {"image": "", "portMappings": [{"containerPort": 1, "protocol": "TCP"}]},
                      "portMappings": []},
        "unreachableStrategy": {"inactiveAfterSeconds": 10, "expungeAfterSeconds": 5},
        "healthChecks": [{"protocol": "HTTP", "portIndex": 3}]
    }))
    .unwrap_err();
    let body = err.to_json();
    assert_eq!(body["message"], json!("Object is not valid"));
    for p in [
        "/id",
        "/cpus",
        "/mem",
        "/instances",
        "/constraints(0)",
        "/constraints(1)",
        "/constraints(2)",
        "/upgradeStrategy/minimumHealthCapacity",
        "/backoffFactor",
        "/container",
        "/container/docker/image",
        "/unreachableStrategy",
        "/healthChecks(0)",
    ] {
        assert!(!err.errors_at(p).is_empty(), "no error at {p}: {body}");
    }
    assert_eq!(
        err.errors_at("/constraints(0)"),
        ["UNIQUE does not accept a value"]
    );
    assert_eq!(
        err.errors_at("/constraints(1)"),
        ["GROUP BY must define an integer value or else no value at all"]
    );
    assert_eq!(err.errors_at("/instances"), ["error.expected.int"]);
    assert_eq!(err.errors_at("/cpus"), ["got -1.0, expected 0.0 or more"]);
    assert_eq!(err.errors_at("/mem"), ["error.expected.jsnumber"]);
    assert_eq!(
        err.errors_at("/upgradeStrategy/minimumHealthCapacity"),
        ["got 1.5, expected between 0.0 and 1.0"]
    );
    assert_eq!(
        err.errors_at("/container"),
        ["cannot specify both portMappings and docker.portMappings"]
    );
    assert_eq!(
        err.errors_at("/unreachableStrategy"),
        ["inactiveAfterSeconds (10) must be less or equal to expungeAfterSeconds, which is 5"]
    );
}

#[test]
fn cmd_args_container_rule() {
    let msg = "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.";
    let e = AppDefinition::from_json(&json!({"id": "x"})).unwrap_err();
    assert_eq!(e.errors_at("/"), [msg]);
    let e = AppDefinition::from_json(&json!({"id": "x", "cmd": "a", "args": ["b"]})).unwrap_err();
    assert_eq!(e.errors_at("/"), [msg]);
    AppDefinition::from_json(&json!({"id": "x", "args": ["b"]})).unwrap();
    let e = AppDefinition::from_json(&json!({"id": "x", "cmd": ""})).unwrap_err();
    assert_eq!(e.errors_at("/cmd"), ["must not be an empty string"]);
}

#[test]
fn network_rules() {
    let e = AppDefinition::from_json(&json!({"id": "x", "cmd": "a",
        "networks": [{"mode": "host"}],
        "container": {"docker": {"image": "i", "network": "HOST"}}}))
    .unwrap_err();
    assert_eq!(
        e.errors_at("/"),
        ["must not specify both container.docker.network and networks"]
    );
    let e = AppDefinition::from_json(&json!({"id": "x", "cmd": "a",
        "networks": [{"mode": "container/bridge"}],
        "portDefinitions": [{"port": 0}],
        "container": {"docker": {"image": "i"}}}))
    .unwrap_err();
    assert_eq!(
        e.errors_at("/portDefinitions"),
        ["portDefinitions are only allowed with host-networking"]
    );
    let e = AppDefinition::from_json(&json!({"id": "x", "cmd": "a",
        "portDefinitions": [{"port": 80}, {"port": 80}, {"port": 0}, {"port": 0}]}))
    .unwrap_err();
    assert_eq!(e.errors_at("/portDefinitions"), ["Ports must be unique."]);
    let unreachable = AppDefinition::from_json(
        &json!({"id": "x", "cmd": "a", "unreachableStrategy": "disabled"}),
    )
    .unwrap();
    assert_eq!(
        unreachable.unreachable_strategy,
        UnreachableStrategy::Disabled
    );
}

#[test]
fn health_check_defaults() {
    let app = AppDefinition::from_json(&json!({"id": "x", "cmd": "a",
        "healthChecks": [{"protocol": "HTTP", "path": "/h"}, {"protocol": "COMMAND", "command": {"value": "true"}}]}))
    .unwrap();
    let h = &app.health_checks[0];
    assert_eq!(h.port_index, Some(0));
    assert_eq!(
        (
            h.grace_period_seconds,
            h.interval_seconds,
            h.timeout_seconds,
            h.max_consecutive_failures
        ),
        (300, 60, 20, 3)
    );
    assert_eq!(app.health_checks[1].port_index, None);
}

#[test]
fn ids() {
    for (id, ok) in [
        ("/numbered9", true),
        ("a b", false),
        ("/test/.", false),
        ("/trailing/", true),
    ] {
        let r = AppDefinition::from_json(&json!({"id": id, "cmd": "x"}));
        assert_eq!(r.is_ok(), ok, "{id}");
    }
    let e = AppDefinition::from_json(&json!({"id": "/test/tasks", "cmd": "x"})).unwrap_err();
    assert_eq!(
        e.errors_at("/id"),
        ["must not end with any of the following reserved keywords: restart, tasks, versions, ., .."]
    );
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z0-9 ./_-]{0,12}".prop_map(Value::from),
        prop::sample::select(vec![
            "id",
            "cmd",
            "BRIDGE",
            "HOST",
            "DOCKER",
            "MESOS",
            "UNIQUE",
            "GROUP_BY",
            "hostname",
            "tcp",
            "container/bridge",
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        let keys = prop::sample::select(vec![
            "id",
            "cmd",
            "args",
            "cpus",
            "mem",
            "instances",
            "constraints",
            "container",
            "docker",
            "network",
            "networks",
            "portMappings",
            "portDefinitions",
            "ports",
            "hostPort",
            "servicePort",
            "healthChecks",
            "upgradeStrategy",
            "unreachableStrategy",
            "env",
            "labels",
            "image",
            "type",
            "mode",
            "portIndex",
            "dependencies",
            "requirePorts",
            "protocol",
        ]);
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys, inner, 0..6).prop_map(|m| Value::Object(
                m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
            )),
        ]
    })
}

proptest! {
    /// Nothing panics on arbitrary JSON; what is accepted is valid and round-trips.
    #[test]
    fn arbitrary_json_never_panics(j in arb_json()) {
        if let Ok(app) = AppDefinition::from_json(&j) {
            prop_assert!(app.validate().is_ok());
            let back = AppDefinition::from_json(&app.to_json());
            prop_assert!(back.is_ok(), "{:?}", back);
        } else if let Err(e) = AppDefinition::from_json(&j) {
            prop_assert!(!e.details.is_empty());
        }
    }
}

#[test]
fn wrong_types_anywhere_are_violations_not_panics() {
    let keys = [
        "id",
        "cmd",
        "args",
        "user",
        "env",
        "instances",
        "cpus",
        "mem",
        "disk",
        "gpus",
        "executor",
        "constraints",
        "fetch",
        "uris",
        "backoffSeconds",
        "backoffFactor",
        "maxLaunchDelaySeconds",
        "container",
        "healthChecks",
        "readinessChecks",
        "dependencies",
        "upgradeStrategy",
        "labels",
        "acceptedResourceRoles",
        "role",
        "requirePorts",
        "portDefinitions",
        "ports",
        "networks",
        "killSelection",
        "unreachableStrategy",
        "taskKillGracePeriodSeconds",
        "version",
    ];
    let values = [
        json!(1),
        json!(-1),
        json!(1.5),
        json!("s"),
        json!([]),
        json!([1, "x", null, {}]),
        json!({}),
        json!({"a": 1, "image": 2, "docker": 3, "portMappings": 4, "network": 5}),
        json!(true),
        json!(1e300),
    ];
    for k in keys {
        for v in &values {
            let mut j = json!({"id": "/x", "cmd": "run"});
            j[k] = v.clone();
            match AppDefinition::from_json(&j) {
                Ok(app) => assert!(app.validate().is_ok(), "{k}={v}"),
                Err(e) => assert!(!e.details.is_empty(), "{k}={v}"),
            }
        }
    }
    // Not an object at all.
    for top in [json!(null), json!(1), json!("x"), json!([])] {
        let e = AppDefinition::from_json(&top).unwrap_err();
        assert_eq!(e.errors_at("/"), ["error.expected.jsobject"]);
    }
}

/// Every (nested) position of a JSON value, as pointers.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => m
            .iter()
            .for_each(|(k, x)| pointers(x, format!("{at}/{k}"), out)),
        Value::Array(a) => a
            .iter()
            .enumerate()
            .for_each(|(i, x)| pointers(x, format!("{at}/{i}"), out)),
        _ => {}
    }
}

proptest! {
    /// The seed app with any one position replaced by arbitrary JSON: never a panic; an
    /// accepted result is valid and round-trips; a refusal lists at least one path.
    #[test]
    fn the_seed_app_with_one_position_replaced(which in any::<prop::sample::Index>(), junk in arb_json()) {
        let base = nginxgmg();
        let mut all = Vec::new();
        pointers(&base, String::new(), &mut all);
        let at = &all[which.index(all.len())];
        let mut j = base.clone();
        if let Some(slot) = j.pointer_mut(at) {
            *slot = junk;
        }
        match AppDefinition::from_json(&j) {
            Ok(app) => {
                prop_assert!(app.validate().is_ok());
                let back = AppDefinition::from_json(&app.to_json());
                prop_assert!(back.is_ok(), "{:?}", back);
                prop_assert_eq!(back.unwrap(), app);
            }
            Err(e) => prop_assert!(!e.details.is_empty()),
        }
    }
}
