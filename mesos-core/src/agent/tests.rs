//! The agent's decisions on a virtual clock. A [`Shell`] plays the daemon: it keeps the
//! checkpoint "on disk" as bytes, answers `Prepare`, and writes every output as one line of a
//! log that the tests compare exactly.

use super::*;
use crate::master::FrameworkInfo;
use crate::task::StatusUuid;

const T0: Time = Time::from_secs(1_000);

fn settings() -> Settings {
    Settings {
        work_dir: PathBuf::from("/w"),
        instance: "inst".into(),
        grace: Duration::from_secs(3),
        kill_tasks_on_shutdown: false,
        max_completed: 10,
        gc_delay: Duration::from_secs(3600),
        containerizers: vec!["mesos".into()],
    }
}

fn framework(capabilities: &[&str]) -> FrameworkRef {
    let caps: Vec<_> = capabilities
        .iter()
        .map(|c| serde_json::json!({ "type": c }))
        .collect();
    FrameworkRef {
        id: FrameworkId::new("fw"),
        info: serde_json::from_value(
            serde_json::json!({"name": "f", "user": "u", "capabilities": caps}),
        )
        .unwrap_or_else(|_| FrameworkInfo::default()),
    }
}

fn task(id: &str) -> TaskInfo {
    serde_json::from_value(serde_json::json!({
        "name": id, "task_id": {"value": id}, "agent_id": {"value": "S1"},
        "command": {"value": "sleep 100"},
        "health_check": {"type": "TCP", "tcp": {"port": 1}},
    }))
    .unwrap()
}

fn key(id: &str) -> TaskKey {
    (FrameworkId::new("fw"), TaskId::new(id))
}

/// The daemon's side, in memory.
struct Shell {
    agent: Agent,
    now: Time,
    log: Vec<String>,
    /// `agent.json` and the journal.
    meta: Vec<u8>,
    journal: Vec<u8>,
    writes: u64,
    /// Updates sent and not yet acknowledged by the test, by task: (uuid, state).
    sent: Vec<(TaskId, StatusUuid, TaskState)>,
    policy: Option<HealthPolicy>,
}

impl Shell {
    fn new(agent: Agent, now: Time) -> Self {
        Shell {
            agent,
            now,
            log: Vec::new(),
            meta: Vec::new(),
            journal: Vec::new(),
            writes: 0,
            sent: Vec::new(),
            policy: Some(HealthPolicy {
                delay: Duration::from_secs(1),
                grace_period: Duration::from_secs(2),
                consecutive_failures: 3,
            }),
        }
    }

    fn at(&self) -> String {
        format!("+{:.1}s", (self.now - T0).as_secs_f64())
    }

    /// Drains the outputs, logging each; checkpoint writes complete at once.
    fn drain(&mut self) {
        while let Some(out) = self.agent.poll_output() {
            let line = match out {
                Output::Prepare { key } => {
                    let policy = self.policy;
                    self.agent.handle_prepared(
                        self.now,
                        &key,
                        Ok(Prepared {
                            runtime: "mesos".into(),
                            health: policy,
                        }),
                    );
                    format!("prepare {}", key.1)
                }
                Output::Launch { key, runtime, .. } => format!("launch {} on {runtime}", key.1),
                Output::Wait { key, runtime, .. } => format!("wait {} on {runtime}", key.1),
                Output::Kill { key, grace, .. } => format!("kill {} grace {grace:?}", key.1),
                Output::StopOrphan {
                    runtime_task_id,
                    running,
                    ..
                } => format!("stop orphan {runtime_task_id} running={running}"),
                Output::StartHealthChecks { key, .. } => format!("start checks {}", key.1),
                Output::StopHealthChecks { key } => format!("stop checks {}", key.1),
                Output::Send(id, AgentMessage::StatusUpdate { status, .. }) => {
                    self.sent
                        .push((status.task_id.clone(), status.uuid.unwrap(), status.state));
                    let mut l = format!("send {id} {} {}", status.task_id, status.state);
                    if let Some(h) = status.healthy {
                        l += &format!(" healthy={h}");
                    }
                    if let Some(r) = status.reason {
                        l += &format!(" {r:?}");
                    }
                    if let Some(m) = status.message {
                        l += &format!(" \"{m}\"");
                    }
                    l
                }
                Output::Send(id, other) => format!("send {id} {other:?}"),
                Output::DiscardUnsent => "discard unsent".into(),
                Output::Checkpoint(w) => {
                    let n = w.bytes().iter().filter(|b| **b == b'\n').count();
                    let line = match &w {
                        Write::Meta(b) => {
                            self.meta = b.clone();
                            "write meta".to_string()
                        }
                        Write::Append(b) => {
                            self.journal.extend_from_slice(b);
                            format!("append {n} lines")
                        }
                        Write::Replace(b) => {
                            self.journal = b.clone();
                            format!("snapshot {n} lines")
                        }
                    };
                    self.writes += 1;
                    line
                }
                Output::DeleteSandbox(p) => format!("delete {}", p.display()),
            };
            let at = self.at();
            self.log.push(format!("{at} {line}"));
            if !self.agent.writing() {
                continue;
            }
            // The writer is done at once (the core still sees one write at a time).
            if self.agent.poll_output_pending() == 0 {
                let writes = self.writes;
                self.agent.handle_writes(self.now, writes, false, false);
            }
        }
    }

    /// Lets 100 ms pass (the timers that fall due in them fire), then applies an input.
    fn input(&mut self, what: &str, f: impl FnOnce(&mut Agent, Time)) {
        self.tick();
        let at = self.at();
        self.log.push(format!("{at} < {what}"));
        f(&mut self.agent, self.now);
        self.drain();
    }

    /// Moves the clock to the next timeout (if it comes before `until`) and handles it.
    fn run_until(&mut self, until: Time) {
        while let Some(due) = self.agent.poll_timeout().filter(|t| *t <= until) {
            self.now = due.max(self.now);
            let now = self.now;
            self.agent.handle_timeout(now);
            self.drain();
        }
        self.now = until;
    }

    fn tick(&mut self) {
        self.run_until(self.now + Duration::from_millis(100));
    }

    fn ack(&mut self, task: &str, state: TaskState) {
        self.tick();
        let i = self
            .sent
            .iter()
            .rposition(|(t, _, s)| t.as_str() == task && *s == state)
            .unwrap_or_else(|| panic!("{task} {state} was not sent:\n{}", self.log.join("\n")));
        let (_, uuid, _) = self.sent[i];
        self.input(&format!("ack {task} {state}"), |a, now| {
            a.handle_command(
                now,
                AgentCommand::Acknowledge {
                    framework_id: FrameworkId::new("fw"),
                    task_id: TaskId::new(task),
                    uuid,
                },
            )
        });
    }

    /// The agent as a restart would rebuild it from this shell's checkpoint.
    fn restarted(&self, now: Time) -> Agent {
        let meta: serde_json::Value = serde_json::from_slice(&self.meta).unwrap();
        let id = meta["agent_id"]["value"].as_str().map(AgentId::new);
        let mut replay = Replay::default();
        for line in self
            .journal
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
        {
            replay.apply(line).unwrap();
        }
        Agent::new(
            settings(),
            2,
            Some(replay.into_restored(id, "inst".into(), now)),
        )
    }
}

impl Agent {
    /// Outputs queued (without advancing).
    fn poll_output_pending(&self) -> usize {
        self.outputs.len()
    }
}

fn registered(shell: &mut Shell) {
    shell.input("registered S1", |a, now| {
        a.handle_registered(now, AgentId::new("S1"))
    });
    shell.input("stream opened", |a, now| a.handle_stream_opened(now));
}

/// The acceptance scenario: a task launched, health-checked failing three times, killed, its
/// updates retried until acknowledged, the agent restarted from its journal mid-way.
#[test]
fn a_failing_task_is_killed_and_its_updates_survive_a_restart() {
    let mut s = Shell::new(Agent::new(settings(), 1, None), T0);
    registered(&mut s);
    s.input("RUN_TASK t1", |a, now| {
        a.handle_command(
            now,
            AgentCommand::RunTask {
                framework: framework(&[]),
                task: task("t1"),
            },
        )
    });
    s.ack("t1", TaskState::Starting);
    s.input("launched t1", |a, now| {
        let c = a.task(&key("t1")).unwrap().container_id.clone();
        a.handle_launched(now, &key("t1"), &c, Ok(()))
    });
    s.ack("t1", TaskState::Running);
    // Checks: the first fails inside the grace period (ignored), then three in a row.
    for n in 1..=4 {
        s.now += Duration::from_secs(2);
        s.input(&format!("health check {n} failed"), |a, now| {
            let c = a.task(&key("t1")).unwrap().container_id.clone();
            a.handle_health(now, &key("t1"), &c, Err("refused".into()))
        });
    }
    s.now += Duration::from_secs(1);
    s.input("t1 ended (killed)", |a, now| {
        let c = a.task(&key("t1")).unwrap().container_id.clone();
        a.handle_terminated(
            now,
            &key("t1"),
            &c,
            Ok(Ended {
                state: TaskState::Killed,
                reason: None,
                message: "killed by signal 15".into(),
            }),
        )
    });
    // The first health update is acknowledged; TASK_KILLED is not, and is retried.
    s.ack("t1", TaskState::Running);
    s.run_until(T0 + Duration::from_secs(45));

    // The agent restarts: the journal holds t1 and its unacknowledged TASK_KILLED.
    let now = s.now;
    s.log.push(format!("{} < restart", s.at()));
    let mut agent = s.restarted(now);
    agent.recover(now, BTreeMap::new());
    let mut r = Shell::new(agent, now);
    r.log = std::mem::take(&mut s.log);
    r.drain();
    registered(&mut r);
    r.run_until(now + Duration::from_secs(25));
    r.ack("t1", TaskState::Killed);
    r.run_until(now + Duration::from_secs(3700));

    let expected = [
        "+0.1s < registered S1",
        "+0.1s discard unsent",
        "+0.1s snapshot 0 lines",
        "+0.1s write meta",
        "+0.2s < stream opened",
        "+0.3s < RUN_TASK t1",
        "+0.3s prepare t1",
        "+0.3s launch t1 on mesos",
        "+0.3s append 1 lines",
        "+0.3s send S1 t1 TASK_STARTING",
        "+0.5s < ack t1 TASK_STARTING",
        "+0.5s append 1 lines",
        "+0.6s < launched t1",
        "+0.6s start checks t1",
        "+0.6s append 1 lines",
        "+0.6s send S1 t1 TASK_RUNNING",
        "+0.8s < ack t1 TASK_RUNNING",
        "+0.8s append 1 lines",
        "+2.9s < health check 1 failed",
        "+5.0s < health check 2 failed",
        "+5.0s append 1 lines",
        r#"+5.0s send S1 t1 TASK_RUNNING healthy=false TaskHealthCheckStatusUpdated "refused""#,
        "+7.1s < health check 3 failed",
        "+9.2s < health check 4 failed",
        "+9.2s kill t1 grace 3s",
        "+10.3s < t1 ended (killed)",
        "+10.3s stop checks t1",
        "+10.3s append 1 lines",
        "+10.5s < ack t1 TASK_RUNNING",
        "+10.5s append 1 lines",
        r#"+10.5s send S1 t1 TASK_KILLED healthy=false "killed after 3 consecutive failed health checks: refused (killed by signal 15)""#,
        r#"+20.5s send S1 t1 TASK_KILLED healthy=false "killed after 3 consecutive failed health checks: refused (killed by signal 15)""#,
        r#"+40.5s send S1 t1 TASK_KILLED healthy=false "killed after 3 consecutive failed health checks: refused (killed by signal 15)""#,
        "+45.0s < restart",
        "+45.0s snapshot 1 lines",
        "+45.0s write meta",
        "+45.1s < registered S1",
        "+45.1s discard unsent",
        "+45.1s write meta",
        r#"+45.1s send S1 t1 TASK_KILLED healthy=false "killed after 3 consecutive failed health checks: refused (killed by signal 15)""#,
        "+45.2s < stream opened",
        r#"+65.1s send S1 t1 TASK_KILLED healthy=false "killed after 3 consecutive failed health checks: refused (killed by signal 15)""#,
        "+70.2s < ack t1 TASK_KILLED",
        "+70.2s append 1 lines",
        "+3670.2s delete /w/slaves/S1/frameworks/fw/executors/t1/runs/b1ea6bd8650342dce553583617e08e42",
    ];
    let log = r.log.join("\n");
    assert_eq!(log, expected.join("\n"), "\n{log}");
}

fn run(s: &mut Shell, id: &str, fw: FrameworkRef) {
    let t = task(id);
    s.input(&format!("RUN_TASK {id}"), |a, now| {
        a.handle_command(
            now,
            AgentCommand::RunTask {
                framework: fw,
                task: t,
            },
        )
    });
}

fn kill(s: &mut Shell, id: &str) {
    s.input(&format!("KILL {id}"), |a, now| {
        a.handle_command(
            now,
            AgentCommand::KillTask {
                framework_id: FrameworkId::new("fw"),
                task_id: TaskId::new(id),
            },
        )
    });
}

/// The log from the line that starts with `from` on, without checkpoint writes.
fn log_from(s: &Shell, from: &str) -> Vec<String> {
    let start = s.log.iter().position(|l| l.contains(from)).unwrap_or(0);
    s.log[start..]
        .iter()
        .filter(|l| !l.contains("append") && !l.contains("snapshot") && !l.contains("meta"))
        .cloned()
        .collect()
}

#[test]
fn duplicates_early_runs_and_kills_of_unknown_tasks() {
    let mut s = Shell::new(Agent::new(settings(), 1, None), T0);
    run(&mut s, "early", framework(&[]));
    registered(&mut s);
    run(&mut s, "t1", framework(&[]));
    run(&mut s, "t1", framework(&[]));
    kill(&mut s, "nope");
    assert_eq!(
        log_from(&s, "RUN_TASK early"),
        [
            "+0.1s < RUN_TASK early",
            "+0.2s < registered S1",
            "+0.2s discard unsent",
            "+0.3s < stream opened",
            "+0.4s < RUN_TASK t1",
            "+0.4s prepare t1",
            "+0.4s launch t1 on mesos",
            "+0.4s send S1 t1 TASK_STARTING",
            "+0.5s < RUN_TASK t1",
            "+0.6s < KILL nope",
            r#"+0.6s send S1 nope TASK_LOST TaskUnknown "Cannot kill task: it is not known to this agent""#,
        ]
    );
}

#[test]
fn bad_tasks_fail_without_starting_and_kills_during_launch_wait_for_it() {
    let mut s = Shell::new(Agent::new(settings(), 1, None), T0);
    registered(&mut s);
    // A spec the shell cannot build, and a containerizer this agent does not run.
    s.policy = None;
    let t = task("bad");
    s.input("RUN_TASK bad", |a, now| {
        a.handle_command(
            now,
            AgentCommand::RunTask {
                framework: framework(&[]),
                task: t,
            },
        );
        let k = key("bad");
        a.handle_prepared(now, &k, Err("no command".into()));
    });
    let t = task("dock");
    s.input("RUN_TASK dock", |a, now| {
        a.handle_command(
            now,
            AgentCommand::RunTask {
                framework: framework(&[]),
                task: t,
            },
        );
        let k = key("dock");
        let p = Prepared {
            runtime: "docker".into(),
            health: None,
        };
        a.handle_prepared(now, &k, Ok(p));
    });
    // With TASK_KILLING_STATE, a kill during the launch reports KILLING and kills once
    // launched.
    run(&mut s, "t1", framework(&["TASK_KILLING_STATE"]));
    kill(&mut s, "t1");
    s.input("launched t1", |a, now| {
        let c = a.task(&key("t1")).unwrap().container_id.clone();
        a.handle_launched(now, &key("t1"), &c, Ok(()))
    });
    let log = log_from(&s, "RUN_TASK bad");
    assert_eq!(
        log,
        [
            "+0.3s < RUN_TASK bad",
            "+0.3s prepare bad",
            r#"+0.3s send S1 bad TASK_FAILED ContainerLaunchFailed "Failed to launch container: no command""#,
            "+0.4s < RUN_TASK dock",
            "+0.4s prepare dock",
            r#"+0.4s send S1 dock TASK_FAILED ContainerLaunchFailed "Failed to launch container: the docker containerizer is not enabled on this agent (--containerizers=mesos)""#,
            "+0.5s < RUN_TASK t1",
            "+0.5s prepare t1",
            "+0.5s launch t1 on mesos",
            "+0.5s send S1 t1 TASK_STARTING",
            "+0.6s < KILL t1",
            "+0.7s < launched t1",
            "+0.7s kill t1 grace 3s",
        ]
    );
}

#[test]
fn a_shut_down_framework_is_killed_and_its_updates_acknowledged_locally() {
    let mut s = Shell::new(Agent::new(settings(), 1, None), T0);
    registered(&mut s);
    run(&mut s, "t1", framework(&[]));
    s.input("launched t1", |a, now| {
        let c = a.task(&key("t1")).unwrap().container_id.clone();
        a.handle_launched(now, &key("t1"), &c, Ok(()))
    });
    s.input("SHUTDOWN_FRAMEWORK", |a, now| {
        a.handle_command(
            now,
            AgentCommand::ShutdownFramework {
                framework_id: FrameworkId::new("fw"),
            },
        )
    });
    s.input("t1 ended", |a, now| {
        let c = a.task(&key("t1")).unwrap().container_id.clone();
        let e = Ended {
            state: TaskState::Killed,
            reason: None,
            message: "killed".into(),
        };
        a.handle_terminated(now, &key("t1"), &c, Ok(e))
    });
    s.run_until(T0 + Duration::from_secs(3601));
    assert_eq!(
        log_from(&s, "launched t1"),
        [
            "+0.4s < launched t1",
            "+0.4s start checks t1",
            "+0.5s < SHUTDOWN_FRAMEWORK",
            "+0.5s kill t1 grace 3s",
            "+0.6s < t1 ended",
            "+0.6s stop checks t1",
            "+3600.6s delete /w/slaves/S1/frameworks/fw/executors/t1/runs/b1ea6bd8650342dce553583617e08e42",
        ]
    );
    assert_eq!(s.agent.pending_streams(), 0);
    assert_eq!(s.agent.completed().count(), 1);
}

#[test]
fn a_restart_adopts_survivors_reports_the_vanished_and_stops_orphans() {
    let mut s = Shell::new(Agent::new(settings(), 1, None), T0);
    registered(&mut s);
    for id in ["kept", "gone"] {
        run(&mut s, id, framework(&[]));
        s.input(&format!("launched {id}"), |a, now| {
            let c = a.task(&key(id)).unwrap().container_id.clone();
            a.handle_launched(now, &key(id), &c, Ok(()))
        });
    }
    run(&mut s, "half", framework(&[]));
    s.tick();
    let now = s.now;
    let kept = s.agent.task(&key("kept")).unwrap().runtime_task_id();
    let mut agent = s.restarted(now);
    agent.set_health_policy(&key("kept"), s.policy);
    let found = BTreeMap::from([
        (("mesos".to_string(), kept), true),
        (("mesos".to_string(), TaskId::new("stray")), false),
    ]);
    let mut r = Shell::new(agent, now);
    r.input("recover", |a, now| a.recover(now, found));
    r.input("registered S1", |a, now| {
        a.handle_registered(now, AgentId::new("S1"))
    });
    let log: Vec<String> = log_from(&r, "recover")
        .into_iter()
        .filter(|l| !l.contains("discard"))
        .collect();
    let states: Vec<_> = r
        .agent
        .tasks()
        .map(|t| (t.record.task.task_id.as_str(), t.record.state))
        .collect();
    assert_eq!(
        states,
        [
            ("gone", TaskState::Lost),
            ("half", TaskState::Failed),
            ("kept", TaskState::Running)
        ]
    );
    let pending: Vec<_> = r
        .agent
        .updates
        .pending(&FrameworkId::new("fw"), &TaskId::new("gone"))
        .iter()
        .map(|s| (s.state, s.reason))
        .collect();
    assert_eq!(
        pending,
        [
            (TaskState::Starting, None),
            (TaskState::Running, None),
            (TaskState::Lost, Some(Reason::AgentRestarted))
        ]
    );
    assert_eq!(
        log,
        [
            "+0.9s < recover",
            "+0.9s wait kept on mesos",
            "+0.9s start checks kept",
            "+0.9s stop orphan stray running=false",
            "+1.0s < registered S1",
            // Each stream's head goes first; the recovery's verdicts queue behind them.
            "+1.0s send S1 gone TASK_STARTING",
            "+1.0s send S1 half TASK_STARTING",
            "+1.0s send S1 kept TASK_STARTING",
        ]
    );
}

#[test]
fn one_write_at_a_time_and_a_failed_append_is_redone_as_a_snapshot() {
    let mut a = Agent::new(settings(), 1, None);
    a.handle_registered(T0, AgentId::new("S1"));
    let drain = |a: &mut Agent| std::iter::from_fn(|| a.poll_output()).collect::<Vec<_>>();
    let out = drain(&mut a);
    assert!(
        matches!(
            out[..],
            [
                Output::DiscardUnsent,
                Output::Checkpoint(Write::Replace(_)),
                Output::Checkpoint(Write::Meta(_))
            ]
        ),
        "{out:?}"
    );
    let t1 = T0 + Duration::from_secs(1);
    a.handle_command(
        t1,
        AgentCommand::RunTask {
            framework: framework(&[]),
            task: task("t1"),
        },
    );
    let out = drain(&mut a);
    assert!(matches!(out[..], [Output::Prepare { .. }]), "{out:?}");
    // Nothing more is written while two writes are in flight.
    a.handle_prepared(
        t1,
        &key("t1"),
        Ok(Prepared {
            runtime: "mesos".into(),
            health: None,
        }),
    );
    let out = drain(&mut a);
    assert!(matches!(out[..], [Output::Launch { .. }]), "{out:?}");
    assert!(a.writing());
    // Both done: the task's lines go out; they fail, so the update is not sent and the next
    // write is a snapshot, after which it is.
    a.handle_writes(t1, 2, false, false);
    let out = drain(&mut a);
    assert!(
        matches!(out[..], [Output::Checkpoint(Write::Append(_))]),
        "{out:?}"
    );
    // (Writes start at most every MIN_CHECKPOINT_INTERVAL.)
    let t2 = t1 + Duration::from_millis(5);
    a.handle_writes(t2, 3, true, false);
    assert!(drain(&mut a).is_empty());
    assert_eq!(a.poll_timeout(), Some(t1 + MIN_CHECKPOINT_INTERVAL));
    a.handle_timeout(t1 + MIN_CHECKPOINT_INTERVAL);
    let out = drain(&mut a);
    assert!(
        matches!(out[..], [Output::Checkpoint(Write::Replace(_))]),
        "{out:?}"
    );
    assert!(drain(&mut a).is_empty());
    a.handle_writes(t1, 4, false, false);
    let out = drain(&mut a);
    assert!(
        matches!(&out[..], [Output::Send(_, AgentMessage::StatusUpdate { status, .. })] if status.state == TaskState::Starting),
        "{out:?}"
    );
}

#[test]
fn found_sandboxes_are_deleted_when_their_delay_is_over() {
    let mut a = Agent::new(settings(), 1, None);
    let run_dir =
        |n: &str| PathBuf::from(format!("/w/slaves/S0/frameworks/f/executors/{n}/runs/c"));
    a.handle_found_sandboxes(
        T0,
        vec![
            (run_dir("old"), Duration::from_secs(3000)),
            (run_dir("new"), Duration::ZERO),
            (PathBuf::from("/elsewhere/runs/c"), Duration::ZERO),
        ],
    );
    while a.poll_output().is_some() {}
    assert_eq!(a.poll_timeout(), Some(T0 + Duration::from_secs(600)));
    a.handle_timeout(T0 + Duration::from_secs(600));
    let out: Vec<_> = std::iter::from_fn(|| a.poll_output())
        .filter(|o| matches!(o, Output::DeleteSandbox(_)))
        .collect();
    assert_eq!(out, [Output::DeleteSandbox(run_dir("old"))]);
    assert_eq!(a.poll_timeout(), Some(T0 + Duration::from_secs(3600)));
}
