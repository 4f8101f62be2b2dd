//! Property tests of task states and status-update streams (issue: foundation).

use std::collections::{BTreeMap, HashSet};

use mesos_core::ids::{FrameworkId, TaskId};
use mesos_core::task::{
    AckOutcome, StatusUpdateManager, StatusUuid, TaskState, TaskStateMachine, TaskStatus,
};
use mesos_core::time::Time;
use proptest::prelude::*;

fn any_state() -> impl Strategy<Value = TaskState> {
    proptest::sample::select(TaskState::ALL.to_vec())
}

proptest! {
    #[test]
    fn a_task_never_leaves_a_terminal_state(states in proptest::collection::vec(any_state(), 0..30)) {
        let mut t = TaskStateMachine::new();
        let mut terminal: Option<TaskState> = None;
        for s in states {
            let result = t.apply(s);
            match terminal {
                Some(f) => {
                    prop_assert_eq!(t.state(), f);
                    prop_assert!(result.is_err() || s == f);
                }
                None if s != TaskState::Unknown => prop_assert_eq!(t.state(), s),
                None => prop_assert!(result.is_err()),
            }
            if t.state().is_terminal() {
                terminal = Some(t.state());
            }
        }
    }

    /// A lossy, duplicating network between the agent's streams and a master that acks what it
    /// receives: every update reaches the master, the first deliveries come in enqueue order per
    /// task, nothing is forwarded again once acknowledged, and all streams end closed.
    #[test]
    fn streams_deliver_each_update_once_in_order(
        per_task in proptest::collection::vec(1usize..5, 1..4),
        drops in proptest::collection::vec(any::<bool>(), 64),
        dup_acks in proptest::collection::vec(any::<bool>(), 64),
    ) {
        let fw = FrameworkId::new("f");
        let mut m = StatusUpdateManager::new();
        let mut expected: BTreeMap<String, Vec<StatusUuid>> = BTreeMap::new();
        let mut uuid = 0u128;
        let mut now = Time::ZERO;
        for (t, &n) in per_task.iter().enumerate() {
            let task = format!("t{t}");
            for i in 0..n {
                uuid += 1;
                let state = if i + 1 == n { TaskState::Finished } else { TaskState::Running };
                let st = TaskStatus::new(TaskId::new(task.clone()), state).with_uuid(StatusUuid::from_u128(uuid));
                m.update(now, fw.clone(), st).map_err(|e| TestCaseError::fail(e.to_string()))?;
                expected.entry(task.clone()).or_default().push(StatusUuid::from_u128(uuid));
            }
        }
        let mut delivered: BTreeMap<String, Vec<StatusUuid>> = BTreeMap::new();
        let mut acked: HashSet<StatusUuid> = HashSet::new();
        let mut step = 0usize;
        for _ in 0..10_000 {
            while let Some(fwd) = m.poll_output() {
                let u = fwd.status.uuid.ok_or_else(|| TestCaseError::fail("no uuid"))?;
                prop_assert!(!acked.contains(&u), "forwarded after ack");
                step += 1;
                if drops[step % drops.len()] {
                    continue; // lost on the way
                }
                let list = delivered.entry(fwd.status.task_id.to_string()).or_default();
                if list.last() != Some(&u) {
                    list.push(u);
                }
                let out = m.acknowledge(now, &fw, &fwd.status.task_id, u);
                prop_assert!(matches!(out, AckOutcome::Acknowledged | AckOutcome::StreamClosed));
                acked.insert(u);
                if dup_acks[step % dup_acks.len()] {
                    let again = m.acknowledge(now, &fw, &fwd.status.task_id, u);
                    prop_assert!(matches!(again, AckOutcome::Duplicate | AckOutcome::UnknownStream));
                }
            }
            match m.poll_timeout() {
                Some(t) => { now = t; m.handle_timeout(now); }
                None => break,
            }
        }
        prop_assert_eq!(m.stream_count(), 0);
        prop_assert_eq!(delivered, expected);
    }
}
