//! Embedding the allocator: build a small cluster, register frameworks, run cycles on a
//! virtual clock, accept some offers, decline the rest, and print what happens.
//!
//! Run with `cargo run -p mesos-alloc --example embed`.

use std::time::Duration;

use mesos_alloc::{AllocatorConfig, HierarchicalAllocator};
use mesos_core::allocator::{AgentSpec, Allocator, AllocatorError, FrameworkSpec, Quota};
use mesos_core::ids::{AgentId, FrameworkId};
use mesos_core::resources::{ResourceQuantities, Resources};
use mesos_core::time::Time;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Everything random (agent order) comes from this seed: same seed, same offers.
    let mut alloc = HierarchicalAllocator::new(AllocatorConfig {
        seed: 42,
        ..AllocatorConfig::default()
    });

    // Four agents; one has cpus and mem statically reserved to `analytics`.
    for (id, resources) in [
        (
            "agent-1",
            "cpus:8;mem:16384;disk:100000;ports:[31000-32000]",
        ),
        (
            "agent-2",
            "cpus:8;mem:16384;disk:100000;ports:[31000-32000]",
        ),
        (
            "agent-3",
            "cpus:4;mem:8192;cpus(analytics):4;mem(analytics):8192",
        ),
        ("agent-4", "cpus:16;mem:65536"),
    ] {
        let spec = AgentSpec {
            hostname: format!("{id}.example"),
            total: Resources::parse(resources)?,
            ..AgentSpec::default()
        };
        alloc.add_agent(&AgentId::new(id), spec, &[])?;
    }

    // Roles: `web` weighs twice as much as `analytics`; `analytics` is guaranteed 8 cpus.
    alloc.set_weight("web", 2.0)?;
    alloc.set_quota(
        "analytics",
        Quota {
            guarantees: ResourceQuantities::parse("cpus:8;mem:8192")?,
            limits: ResourceQuantities::default(),
        },
    )?;

    let mut now = Time::from_secs(1_700_000_000);
    for (id, role) in [
        ("marathon", "web"),
        ("spark", "analytics"),
        ("jenkins", "ci"),
    ] {
        let spec = FrameworkSpec {
            roles: vec![role.to_string()],
            ..FrameworkSpec::default()
        };
        alloc.add_framework(now, &FrameworkId::new(id), spec, &[], true)?;
    }

    // Bad input is a typed error, and the allocator is unchanged.
    match alloc.set_weight("web", -1.0) {
        Err(e @ AllocatorError::InvalidWeight { .. }) => println!("rejected: {e}"),
        other => println!("unexpected: {other:?}"),
    }

    for round in 0..4 {
        // A shell would sleep until `poll_timeout()`; here time is just a number.
        if let Some(due) = alloc.poll_timeout() {
            now = now.max(due);
        }
        let offers = alloc.allocate(now);
        println!("cycle {round} at {now}: {} offers", offers.len());
        for offer in offers {
            println!(
                "  {:<8} ({:<9}) on {}: {}",
                offer.framework, offer.role, offer.agent, offer.resources
            );
            if offer.framework.as_str() == "jenkins" {
                // Jenkins has nothing to run: decline for 10 s.
                alloc.recover_resources(
                    now,
                    &offer.framework,
                    &offer.agent,
                    &offer.resources,
                    Some(Duration::from_secs(10)),
                )?;
            } else {
                // Launch a 1-cpu task and hand the rest back with the default 5 s filter.
                let task = Resources::parse("cpus:1;mem:512")?.allocate(&offer.role);
                let mut rest = offer.resources.clone();
                if rest.contains(&task) {
                    rest -= &task;
                }
                alloc.recover_resources(
                    now,
                    &offer.framework,
                    &offer.agent,
                    &rest,
                    Some(Duration::from_secs(5)),
                )?;
            }
        }
        now += Duration::from_secs(1);
    }

    for (role, info) in alloc.roles() {
        println!(
            "role {role}: weight {}, {} framework(s), holds {}",
            info.weight, info.frameworks, info.allocated
        );
    }
    Ok(())
}
