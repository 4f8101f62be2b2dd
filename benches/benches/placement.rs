//! Marathon placement throughput: 1,000 apps x 100 instances on 5,000 agents with attributes.
//!
//! Apps mix `hostname:UNIQUE`, `rack:GROUP_BY`, `hostname:MAX_PER:2`, `rack:LIKE` and no
//! constraint (200 each); every instance needs 1 cpu, 256 MiB and one dynamic host port. Agents
//! have 32 cpus, 128 GiB, ports 31000-32000 and attributes `rack` (50 racks), `zone` (5) and a
//! scalar `level`. One iteration builds a fresh placer (not timed), then offers every agent in turn,
//! again with what is left, until all 100,000 instances are placed. Throughput is placements.
//!
//! A second id, `placement/explain_1000_apps_x_1000_offers`, measures the rejection path: no app
//! fits, so each of 1,000 offers is checked by all 1,000 apps, each recording why.
//!
//! Run: `cargo bench -p benches --bench placement`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mesos_core::attributes::Attributes;
use mesos_core::constraints::{AgentView, Constraint};
use mesos_core::ids::{AgentId, OfferId};
use mesos_core::marathon::{AppDefinition, Offer, PathId, PlacementConfig, Placer, PortDefinition};
use mesos_core::resources::Resources;
use mesos_core::time::Time;

const APPS: usize = 1000;
const INSTANCES: u32 = 100;
const AGENTS: usize = 5000;

fn apps() -> Vec<AppDefinition> {
    (0..APPS)
        .map(|i| {
            let constraint = match i % 5 {
                0 => Some(("hostname", "UNIQUE", None)),
                1 => Some(("rack", "GROUP_BY", None)),
                2 => Some(("hostname", "MAX_PER", Some("2"))),
                3 => Some(("rack", "LIKE", Some("r[0-3]?[0-9]"))),
                _ => None,
            };
            AppDefinition {
                id: PathId::parse(&format!("/bench/app{i}"), &PathId::root()).expect("valid id"),
                cmd: Some("sleep 1000".to_string()),
                cpus: 1.0,
                mem: 256.0,
                instances: INSTANCES,
                constraints: constraint
                    .map(|(f, o, v)| Constraint::new(f, o, v).expect("valid constraint"))
                    .into_iter()
                    .collect(),
                port_definitions: vec![PortDefinition {
                    port: 0,
                    protocol: "tcp".to_string(),
                    name: None,
                    labels: Default::default(),
                }],
                ..AppDefinition::default()
            }
        })
        .collect()
}

struct Agent {
    id: AgentId,
    view: AgentView,
    cpus: f64,
    mem: f64,
    ports: Vec<(u64, u64)>,
}

fn agents() -> Vec<Agent> {
    (0..AGENTS)
        .map(|i| {
            let attrs = format!(
                "rack:r{};zone:z{};level:{}",
                i % 50,
                i % 5,
                (i % 10) as f64 / 10.0
            );
            Agent {
                id: AgentId::new(format!("agent-{i}")),
                view: AgentView::new(format!("host-{i}.example"))
                    .with_attributes(Attributes::parse(&attrs).expect("valid attributes")),
                cpus: 32.0,
                mem: 131072.0,
                ports: vec![(31000, 32000)],
            }
        })
        .collect()
}

fn offer_of(a: &Agent, n: u64) -> Offer {
    let ports: Vec<String> = a.ports.iter().map(|(b, e)| format!("{b}-{e}")).collect();
    Offer {
        id: OfferId::new(format!("offer-{n}")),
        agent_id: a.id.clone(),
        agent: a.view.clone(),
        resources: Resources::parse(&format!(
            "cpus:{};mem:{};ports:[{}]",
            a.cpus,
            a.mem,
            ports.join(",")
        ))
        .expect("valid offer"),
    }
}

fn placer(apps: &[AppDefinition]) -> Placer {
    let mut p = Placer::seeded(PlacementConfig::default(), 42);
    for a in apps {
        p.upsert_app(a);
        p.set_waiting(&a.id, a.instances);
    }
    p
}

/// Offers every agent until nothing waits; returns the placements made.
fn run(p: &mut Placer, agents: &mut [Agent], first_round: &[Offer]) -> usize {
    let mut placed = 0;
    let mut n = 0u64;
    for round in 0..10 {
        let mut progress = 0;
        for (i, agent) in agents.iter_mut().enumerate() {
            let offer = if round == 0 {
                first_round[i].clone()
            } else {
                n += 1;
                offer_of(agent, n)
            };
            let out = p.place(&offer, Time::ZERO);
            for l in &out.launches {
                agent.cpus -= l.cpus;
                agent.mem -= l.mem;
                for port in l.ports() {
                    let port = u64::from(port);
                    let mut next = Vec::new();
                    for (b, e) in agent.ports.drain(..) {
                        if port < b || port > e {
                            next.push((b, e));
                        } else {
                            if b < port {
                                next.push((b, port - 1));
                            }
                            if port < e {
                                next.push((port + 1, e));
                            }
                        }
                    }
                    agent.ports = next;
                }
            }
            progress += out.launches.len();
        }
        placed += progress;
        if progress == 0 || placed == APPS * INSTANCES as usize {
            break;
        }
    }
    placed
}

/// This thread's user + system CPU time in clock ticks, where `/proc` offers it.
fn thread_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let after = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // After the command name: state is field 3 overall, utime 14 and stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn bench(c: &mut Criterion) {
    let apps = apps();
    let base_agents = agents();
    let first_round: Vec<Offer> = base_agents
        .iter()
        .enumerate()
        .map(|(i, a)| offer_of(a, i as u64))
        .collect();
    // Sanity outside the timing: everything gets placed. The same runs report this thread's CPU
    // time, which other processes on a shared machine do not inflate (criterion reports wall
    // time).
    let mut ticks = Some(0);
    const CPU_RUNS: u64 = 5;
    for _ in 0..CPU_RUNS {
        let mut p = placer(&apps);
        let mut ag = agents();
        let before = thread_cpu_ticks();
        let placed = run(&mut p, &mut ag, &first_round);
        ticks = match (ticks, before, thread_cpu_ticks()) {
            (Some(t), Some(b), Some(a)) => Some(t + a.saturating_sub(b)),
            _ => None,
        };
        assert_eq!(placed, APPS * INSTANCES as usize, "all instances placed");
    }
    if let Some(t) = ticks.filter(|t| *t > 0) {
        // Linux reports CPU time in clock ticks of 10 ms.
        let secs = t as f64 / 100.0 / CPU_RUNS as f64;
        eprintln!(
            "placement/1000x100_on_5000: {:.1} ms CPU per iteration, {:.0} placements per CPU-second",
            secs * 1000.0,
            (APPS * INSTANCES as usize) as f64 / secs
        );
    }
    let mut g = c.benchmark_group("placement");
    g.sample_size(10);
    g.throughput(Throughput::Elements((APPS * INSTANCES as usize) as u64));
    g.bench_function("1000x100_on_5000", |b| {
        b.iter_batched(
            || (placer(&apps), agents()),
            |(mut p, mut ag)| black_box(run(&mut p, &mut ag, &first_round)),
            BatchSize::LargeInput,
        )
    });
    g.finish();

    // The price of explanations: nothing fits (every app needs 64 cpus), so every offer is
    // checked by every app and each records its reason. Throughput is rejections.
    let mut big = apps.clone();
    for a in &mut big {
        a.cpus = 64.0;
    }
    let offers: Vec<Offer> = first_round.iter().take(1000).cloned().collect();
    let mut g = c.benchmark_group("placement");
    g.sample_size(10);
    g.throughput(Throughput::Elements((APPS * offers.len()) as u64));
    g.bench_function("explain_1000_apps_x_1000_offers", |b| {
        b.iter_batched(
            || placer(&big),
            |mut p| {
                for o in &offers {
                    let _ = black_box(p.place(o, Time::ZERO));
                }
                p
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
