//! Deployment plans, scaling, rolling restarts, backoff and health counting (reference §5, §1.3).

use std::collections::BTreeMap;
use std::time::Duration;

use mesos_core::constraints::{AgentView, Constraint};
use mesos_core::marathon::{
    propose_scaling, AppDefinition, DeploymentAction, DeploymentPlan, Health, HealthAction,
    HealthCheck, InstanceView, KillSelection, LaunchBackoff, PathId, PlanError, ProbeOutcome,
    RollingRestart, UpgradeStrategy,
};
use mesos_core::task::TaskState;
use mesos_core::time::Time;
use proptest::prelude::*;
use serde_json::{json, Value};

fn app(j: Value) -> AppDefinition {
    let mut j = j;
    if j.get("cmd").is_none() {
        j["cmd"] = json!("run");
    }
    AppDefinition::from_json(&j).unwrap()
}

fn apps(list: Vec<AppDefinition>) -> BTreeMap<PathId, AppDefinition> {
    list.into_iter().map(|a| (a.id.clone(), a)).collect()
}

fn steps(plan: &DeploymentPlan) -> Vec<Vec<(String, String)>> {
    plan.steps
        .iter()
        .map(|s| {
            s.actions
                .iter()
                .map(|a| (a.name().to_string(), a.app().to_string()))
                .collect()
        })
        .collect()
}

fn p(s: &str) -> (String, String) {
    let (a, b) = s.split_once(' ').unwrap();
    (a.to_string(), b.to_string())
}

#[test]
fn new_app_is_started_then_scaled() {
    let plan = DeploymentPlan::new(
        &BTreeMap::new(),
        &apps(vec![app(json!({"id": "/x", "instances": 3}))]),
    )
    .unwrap();
    assert_eq!(
        steps(&plan),
        vec![
            vec![p("StartApplication /x")],
            vec![p("ScaleApplication /x")]
        ]
    );
    let j = serde_json::to_value(&plan.steps).unwrap();
    assert_eq!(
        j[0],
        json!({"actions": [{"action": "StartApplication", "app": "/x"}]})
    );
    assert_eq!(j[1]["actions"][0]["action"], json!("ScaleApplication"));
}

#[test]
fn independent_new_apps_take_two_steps() {
    let target = apps(
        (0..4)
            .map(|i| app(json!({"id": format!("/a{i}")})))
            .collect(),
    );
    let plan = DeploymentPlan::new(&BTreeMap::new(), &target).unwrap();
    assert_eq!(plan.steps.len(), 2);
    assert_eq!(plan.steps[0].actions.len(), 4);
    assert_eq!(plan.steps[1].actions.len(), 4);
    assert_eq!(plan.affected_apps().len(), 4);
}

#[test]
fn dependencies_order_restarts() {
    let mongo = app(json!({"id": "/test/database/mongo"}));
    let srv = app(json!({"id": "/test/service/srv1", "dependencies": ["/test/database/mongo"]}));
    let original = apps(vec![mongo.clone(), srv.clone()]);
    let mut mongo2 = mongo.clone();
    mongo2.cmd = Some("run2".into());
    let mut srv2 = srv.clone();
    srv2.mem = 256.0;
    let plan = DeploymentPlan::new(&original, &apps(vec![mongo2, srv2])).unwrap();
    assert_eq!(
        steps(&plan),
        vec![
            vec![p("RestartApplication /test/database/mongo")],
            vec![p("RestartApplication /test/service/srv1")]
        ]
    );
    // A dependency on a group means every app in it.
    let web = app(json!({"id": "/web", "dependencies": ["/test"]}));
    let plan = DeploymentPlan::new(
        &BTreeMap::new(),
        &apps(vec![mongo.clone(), srv.clone(), web]),
    )
    .unwrap();
    let s = steps(&plan);
    assert_eq!(s.len(), 4, "{s:?}");
    assert_eq!(s[1], vec![p("ScaleApplication /test/database/mongo")]);
    assert_eq!(s[2], vec![p("ScaleApplication /test/service/srv1")]);
    assert_eq!(s[3], vec![p("ScaleApplication /web")]);
}

#[test]
fn scale_only_and_stop_and_unchanged() {
    let a = app(json!({"id": "/a", "instances": 2}));
    let b = app(json!({"id": "/b"}));
    let c = app(json!({"id": "/c"}));
    let mut a2 = a.clone();
    a2.instances = 5;
    let mut c2 = c.clone();
    c2.cmd = Some("other".into());
    c2.instances = 0;
    let plan = DeploymentPlan::new(&apps(vec![a, b.clone(), c]), &apps(vec![a2, c2])).unwrap();
    assert_eq!(
        steps(&plan),
        vec![
            vec![p("StopApplication /b")],
            vec![p("ScaleApplication /a"), p("ScaleApplication /c")]
        ]
    );
    let same = DeploymentPlan::new(&apps(vec![b.clone()]), &apps(vec![b])).unwrap();
    assert!(same.steps.is_empty());
    match &plan.steps[1].actions[0] {
        DeploymentAction::ScaleApplication { instances, .. } => assert_eq!(*instances, Some(5)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_cycle_is_an_error_naming_it() {
    let a = app(json!({"id": "/a", "dependencies": ["/b"]}));
    let b = app(json!({"id": "/b", "dependencies": ["/c"]}));
    let c = app(json!({"id": "/c", "dependencies": ["/a"]}));
    let d = app(json!({"id": "/d"}));
    let err = DeploymentPlan::new(&BTreeMap::new(), &apps(vec![a, b, c, d])).unwrap_err();
    let PlanError::Cycle { cycle } = &err;
    assert_eq!(cycle.len(), 4);
    assert_eq!(
        err.to_string(),
        "Dependency graph has cyclic dependencies: /a -> /b -> /c -> /a"
    );
}

fn inst(id: &str, state: TaskState, since: u64, rack: &str) -> InstanceView {
    InstanceView {
        id: id.into(),
        state: Some(state),
        since: Time::from_secs(since),
        agent: AgentView::new(format!("h-{id}")).with_text_attribute("rack", rack),
    }
}

#[test]
fn scaling_proposition_vector() {
    // 4 running, i2 sentenced, GROUP_BY picks i3, scale to 1 -> [i2, i3, i4], start 0.
    let running = [
        inst("i1", TaskState::Running, 1, "a"),
        inst("i2", TaskState::Running, 4, "a"),
        inst("i3", TaskState::Running, 3, "b"),
        inst("i4", TaskState::Running, 2, "b"),
    ];
    let g = Constraint::from_json(&json!(["rack", "GROUP_BY"])).unwrap();
    let prop = propose_scaling(
        &running,
        &["i2".to_string()],
        &[g],
        1,
        KillSelection::YoungestFirst,
    );
    assert_eq!(prop.to_kill, ["i2", "i3", "i4"]);
    assert_eq!(prop.to_start, 0);
    // Duplicates and unknown ids in the sentence are ignored.
    let prop = propose_scaling(
        &running[..1],
        &["i1".into(), "i1".into(), "zz".into()],
        &[],
        0,
        KillSelection::YoungestFirst,
    );
    assert_eq!(prop.to_kill, ["i1"]);
    // Scale up.
    let prop = propose_scaling(&running, &[], &[], 6, KillSelection::YoungestFirst);
    assert!(prop.to_kill.is_empty());
    assert_eq!(prop.to_start, 2);
    // Sentenced with scale-up: kill and replace.
    let prop = propose_scaling(
        &running,
        &["i1".into()],
        &[],
        4,
        KillSelection::YoungestFirst,
    );
    assert_eq!(
        (prop.to_kill.clone(), prop.to_start),
        (vec!["i1".to_string()], 1)
    );
}

#[test]
fn kill_order_is_unreachable_staging_starting_running_youngest_first() {
    let running = [
        inst("run-old", TaskState::Running, 1, "a"),
        inst("run-new", TaskState::Running, 9, "a"),
        inst("starting", TaskState::Starting, 5, "a"),
        inst("staging", TaskState::Staging, 5, "a"),
        inst("unreachable", TaskState::Unreachable, 5, "a"),
    ];
    let prop = propose_scaling(&running, &[], &[], 0, KillSelection::YoungestFirst);
    assert_eq!(
        prop.to_kill,
        ["unreachable", "staging", "starting", "run-new", "run-old"]
    );
    let prop = propose_scaling(&running, &[], &[], 1, KillSelection::OldestFirst);
    assert_eq!(
        prop.to_kill,
        ["unreachable", "staging", "starting", "run-old"]
    );
}

fn strategy(min: f64, max: f64) -> UpgradeStrategy {
    UpgradeStrategy {
        minimum_health_capacity: min,
        maximum_over_capacity: max,
    }
}

#[test]
fn restart_vectors() {
    // {0.5, 0}: kill 1 old; start 1 once it is gone; each new healthy -> kill 1, start 1.
    let mut r = RollingRestart::new(3, 3, 0, strategy(0.5, 0.0), false);
    let a = r.poll();
    assert_eq!((a.kill_old, a.start_new), (1, 0));
    r.old_terminated();
    assert_eq!(r.poll().start_new, 1);
    r.new_healthy();
    let a = r.poll();
    assert_eq!((a.kill_old, a.start_new), (1, 0));
    r.old_terminated();
    assert_eq!(r.poll().start_new, 1);

    // {1.0, 0}: minHealthy = maxCap = 3 -> maxCap 4: kill 0, start 1.
    let mut r = RollingRestart::new(3, 3, 0, strategy(1.0, 0.0), false);
    assert_eq!(r.max_capacity(), 4);
    let a = r.poll();
    assert_eq!((a.kill_old, a.start_new), (0, 1));
    r.new_healthy();
    let a = r.poll();
    assert_eq!((a.kill_old, a.start_new), (1, 0));
    r.old_terminated();
    assert_eq!(r.poll().start_new, 1);

    // {0, 1}, 5 instances: kill all 5 at once, start 5.
    let mut r = RollingRestart::new(5, 5, 0, strategy(0.0, 1.0), false);
    let a = r.poll();
    assert_eq!((a.kill_old, a.start_new), (5, 5));

    // Default {1, 1}: start n new, kill old as new ones become healthy.
    let mut r = RollingRestart::new(3, 3, 0, UpgradeStrategy::default(), false);
    assert_eq!(r.max_capacity(), 6);
    let a = r.poll();
    assert_eq!((a.kill_old, a.start_new), (0, 3));
    for _ in 0..3 {
        r.new_healthy();
        assert_eq!(r.poll().kill_old, 1);
        r.old_terminated();
    }
    assert!(r.is_done());

    // Resident apps free a slot by killing first.
    let mut r = RollingRestart::new(3, 3, 0, strategy(1.0, 0.0), true);
    assert_eq!(r.poll().kill_old, 1);
}

proptest! {
    /// A rolling restart never drops below the healthy minimum, never exceeds the capacity
    /// maximum, and finishes.
    #[test]
    fn rolling_restart_stays_within_bounds(
        n in 1u32..10,
        min in 0.0f64..=1.0,
        max in 0.0f64..=1.0,
        choices in prop::collection::vec(any::<bool>(), 0..200),
    ) {
        let mut r = RollingRestart::new(n, n, 0, strategy(min, max), false);
        let mut pending = 0u32; // launched, not healthy
        let mut killing = 0u32;
        let mut choices = choices.into_iter();
        for _ in 0..500 {
            let a = r.poll();
            pending += a.start_new;
            killing += a.kill_old;
            prop_assert!(r.healthy() >= r.min_healthy(), "healthy {} < min {}", r.healthy(), r.min_healthy());
            prop_assert!(r.alive() <= r.max_capacity(), "alive {} > max {}", r.alive(), r.max_capacity());
            if r.is_done() {
                break;
            }
            let heal = choices.next().unwrap_or(pending > 0);
            if (heal && pending > 0) || killing == 0 {
                prop_assert!(pending > 0, "stuck: nothing pending, nothing being killed");
                pending -= 1;
                r.new_healthy();
            } else {
                killing -= 1;
                r.old_terminated();
            }
        }
        prop_assert!(r.is_done());
    }
}

#[test]
fn backoff_vectors() {
    let mut b = LaunchBackoff::new(Duration::from_secs(1), 1.15, Duration::from_secs(300));
    let mut seen = Vec::new();
    for i in 0..4 {
        b.failed(Time::from_secs(i));
        seen.push(b.delay().unwrap().as_secs_f64());
    }
    for (got, want) in seen.iter().zip([1.0, 1.15, 1.3225, 1.520875]) {
        assert!((got - want).abs() < 1e-6, "{seen:?}");
    }
    for i in 0..100 {
        b.failed(Time::from_secs(10 + i));
    }
    assert_eq!(b.delay(), Some(Duration::from_secs(300)));

    let mut b = LaunchBackoff::new(Duration::from_secs(10), 2.0, Duration::from_secs(3600));
    let mut seen = Vec::new();
    for i in 0..10 {
        b.failed(Time::from_secs(i));
        seen.push(b.delay().unwrap().as_secs());
    }
    assert_eq!(seen, [10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600]);
}

#[test]
fn backoff_states_reference_and_reset() {
    let a = app(json!({"id": "/a"}));
    let mut b = LaunchBackoff::for_app(&a);
    b.observe(Time::from_secs(100), TaskState::Killed);
    assert_eq!(b.delay(), None);
    b.observe(Time::from_secs(100), TaskState::Finished);
    assert_eq!(b.launch_allowed_at(), Time::from_secs(101));
    assert!(!b.may_launch(Time::from_secs(100)));
    assert_eq!(b.time_left(Time::from_secs(100)), Duration::from_secs(1));
    b.observe(Time::from_secs(200), TaskState::Running);
    assert_eq!(b.launch_allowed_at(), Time::from_secs(201));
    b.expire(Time::from_secs(499));
    assert!(b.delay().is_some());
    b.expire(Time::from_secs(500));
    assert_eq!(b.delay(), None);
    b.failed(Time::from_secs(600));
    b.reset();
    assert!(b.may_launch(Time::from_secs(600)));
}

#[test]
fn health_counting() {
    let hc = HealthCheck {
        grace_period_seconds: 30,
        max_consecutive_failures: 3,
        ..HealthCheck::default()
    };
    let bad = || ProbeOutcome::Unhealthy {
        cause: "refused".into(),
    };
    let t = Time::from_secs;
    let started = Some(t(100));
    let mut h = Health::default();
    // Not running yet: ignored.
    assert_eq!(
        h.record(&hc, t(50), None, true, bad()),
        HealthAction::Ignored
    );
    // Within the grace period, no success yet: ignored.
    assert_eq!(
        h.record(&hc, t(120), started, true, bad()),
        HealthAction::Ignored
    );
    assert_eq!(h.consecutive_failures, 0);
    // A success ends the grace period early.
    assert_eq!(
        h.record(&hc, t(121), started, true, ProbeOutcome::Healthy),
        HealthAction::None
    );
    assert!(h.is_healthy());
    assert_eq!(
        h.record(&hc, t(122), started, true, bad()),
        HealthAction::None
    );
    assert_eq!(
        h.record(&hc, t(123), started, true, bad()),
        HealthAction::None
    );
    assert!(!h.is_healthy());
    // A success resets the count.
    h.record(&hc, t(124), started, true, ProbeOutcome::Healthy);
    assert_eq!(h.consecutive_failures, 0);
    h.record(&hc, t(125), started, true, bad());
    h.record(&hc, t(126), started, true, bad());
    assert_eq!(
        h.record(&hc, t(127), started, true, bad()),
        HealthAction::Kill
    );
    assert_eq!(h.last_failure_cause.as_deref(), Some("refused"));
    // Unreachable instances are not killed.
    assert_eq!(
        h.record(&hc, t(128), started, false, bad()),
        HealthAction::None
    );
    // 0 never kills.
    let never = HealthCheck {
        max_consecutive_failures: 0,
        grace_period_seconds: 0,
        ..HealthCheck::default()
    };
    let mut h = Health::default();
    for i in 0..10 {
        assert_eq!(
            h.record(&never, t(200 + i), started, true, bad()),
            HealthAction::None
        );
    }
    // HTTP classification.
    assert_eq!(hc.http_outcome(200), Some(ProbeOutcome::Healthy));
    assert_eq!(hc.http_outcome(399), Some(ProbeOutcome::Healthy));
    assert!(matches!(
        hc.http_outcome(400),
        Some(ProbeOutcome::Unhealthy { .. })
    ));
    assert!(matches!(
        hc.http_outcome(101),
        Some(ProbeOutcome::Unhealthy { .. })
    ));
    let ignore = HealthCheck {
        ignore_http1xx: true,
        ..HealthCheck::default()
    };
    assert_eq!(ignore.http_outcome(101), None);
}

proptest! {
    /// Apps act only after the apps they depend on; stops come first, starts second.
    #[test]
    fn plans_respect_dependencies(
        deps in prop::collection::vec(prop::collection::vec(any::<prop::sample::Index>(), 0..3), 1..9),
        existing in prop::collection::vec(any::<bool>(), 9),
        changed in prop::collection::vec(0u8..3, 9),
        removed in 0usize..3,
    ) {
        // App i may depend only on apps with a lower index: acyclic by construction.
        let n = deps.len();
        let id = |i: usize| format!("/app{i}");
        let mut target = Vec::new();
        let mut original = Vec::new();
        for (i, ds) in deps.iter().enumerate() {
            let d: Vec<String> = if i == 0 { vec![] } else { ds.iter().map(|x| id(x.index(i))).collect() };
            let a = app(json!({"id": id(i), "dependencies": d, "instances": 2}));
            if existing[i] {
                let mut old = a.clone();
                match changed[i] {
                    0 => {}
                    1 => old.instances = 1,
                    _ => old.cmd = Some("old".into()),
                }
                original.push(old);
            }
            target.push(a);
        }
        for r in 0..removed {
            original.push(app(json!({"id": format!("/gone{r}")})));
        }
        let plan = DeploymentPlan::new(&apps(original), &apps(target.clone())).unwrap();
        let step_of = |name: &str, app: &str| plan.steps.iter().position(|s| s.actions.iter().any(|a| a.name() == name && a.app().to_string() == app));
        let mut main_phase = BTreeMap::new();
        for (k, s) in plan.steps.iter().enumerate() {
            for a in &s.actions {
                match a {
                    DeploymentAction::StopApplication { .. } => prop_assert_eq!(k, 0),
                    DeploymentAction::StartApplication { .. } => prop_assert!(k <= 1),
                    other => { main_phase.insert(other.app().to_string(), k); }
                }
            }
        }
        for (i, a) in target.iter().enumerate() {
            for d in &a.dependencies {
                if let (Some(ka), Some(kd)) = (main_phase.get(&id(i)), main_phase.get(&d.to_string())) {
                    prop_assert!(ka > kd, "{} (step {}) before its dependency {} (step {})", id(i), ka, d, kd);
                }
            }
            if !existing[i] {
                prop_assert!(step_of("StartApplication", &id(i)).is_some());
            }
        }
        prop_assert!(n >= 1);
    }

    /// A cycle is refused, and the named cycle follows real dependency edges.
    #[test]
    fn cycles_are_named_along_real_edges(len in 2usize..6, extra in 0usize..4) {
        let id = |i: usize| format!("/c{i}");
        let mut list: Vec<AppDefinition> = (0..len)
            .map(|i| app(json!({"id": id(i), "dependencies": [id((i + 1) % len)]})))
            .collect();
        for e in 0..extra {
            list.push(app(json!({"id": format!("/free{e}"), "dependencies": [id(0)]})));
        }
        let err = DeploymentPlan::new(&BTreeMap::new(), &apps(list.clone())).unwrap_err();
        let PlanError::Cycle { cycle } = err;
        prop_assert_eq!(cycle.first(), cycle.last());
        prop_assert_eq!(cycle.len(), len + 1);
        let by_id: BTreeMap<String, &AppDefinition> = list.iter().map(|a| (a.id.to_string(), a)).collect();
        for w in cycle.windows(2) {
            prop_assert!(by_id[&w[0].to_string()].dependencies.contains(&w[1]));
        }
    }
}
