//! The agent's reliable delivery of status updates (Mesos' `TaskStatusUpdateManager`), sans-IO.
//!
//! Each task has one ordered stream. Only its head is in flight: it is forwarded at once, then
//! again after 10 s, 20 s, 40 s ... (at most every 10 min) until the master acknowledges its uuid.
//! Then the next update becomes the head. Duplicate updates (a uuid already seen) and acks that
//! do not match the head are ignored, so at-least-once delivery with acks gives exactly-once
//! delivery in order. Once the terminal update is acknowledged the stream closes.
//!
//! Drain order after every input: [`StatusUpdateManager::poll_output`] until `None`, then arm a
//! timer for [`StatusUpdateManager::poll_timeout`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{StatusUuid, TaskStatus};
use crate::backoff::Backoff;
use crate::ids::{FrameworkId, TaskId};
use crate::time::Time;

/// First retry interval of an unacknowledged update.
pub const RETRY_INTERVAL_MIN: Duration = Duration::from_secs(10);
/// Largest retry interval.
pub const RETRY_INTERVAL_MAX: Duration = Duration::from_secs(600);
/// The retry policy of an unacknowledged head: from [`RETRY_INTERVAL_MIN`], doubling, up to
/// [`RETRY_INTERVAL_MAX`] (upstream's status-update retry, no jitter).
pub const RETRY_BACKOFF: Backoff = Backoff::new(RETRY_INTERVAL_MIN, 2.0, RETRY_INTERVAL_MAX);

/// An update to send to the master now.
#[derive(Clone, Debug, PartialEq)]
pub struct StatusForward {
    /// The framework the task belongs to.
    pub framework: FrameworkId,
    /// The update.
    pub status: TaskStatus,
    /// True when this is a retry of an update already sent.
    pub retry: bool,
}

/// What became of an update handed to [`StatusUpdateManager::update`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// Queued (and forwarded at once if it became the head).
    Queued,
    /// Its uuid was seen before: ignored.
    Duplicate,
}

/// What became of an acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckOutcome {
    /// It acknowledged the head; the next update (if any) is now in flight.
    Acknowledged,
    /// It acknowledged the terminal update; the stream is closed.
    StreamClosed,
    /// It was for an update already acknowledged: ignored.
    Duplicate,
    /// It matched no update in flight (stale or unknown uuid): ignored.
    Unexpected,
    /// No stream exists for that task.
    UnknownStream,
}

/// An update the manager refuses.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusUpdateError {
    /// Reliable updates need a uuid to be acknowledged by.
    #[error("status update for task `{task}` has no uuid")]
    MissingUuid {
        /// The task.
        task: TaskId,
    },
    /// The stream already has its terminal update.
    #[error("status update {state} for task `{task}` arrives after its terminal update")]
    AfterTerminal {
        /// The task.
        task: TaskId,
        /// The refused update's state.
        state: String,
    },
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Stream {
    pending: VecDeque<TaskStatus>,
    /// Every uuid ever received on this stream (to drop duplicates).
    received: BTreeSet<StatusUuid>,
    /// Acknowledged uuids (to tell duplicate acks from stale ones).
    acknowledged: BTreeSet<StatusUuid>,
    /// When the head is due for its next send, and the interval after that.
    next_send: Option<Time>,
    interval: Duration,
    terminal_received: bool,
}

/// All of an agent's status-update streams. Serialisable, so the agent can checkpoint it.
///
/// ```
/// use mesos_core::ids::{FrameworkId, TaskId};
/// use mesos_core::task::*;
/// use mesos_core::time::Time;
///
/// let mut m = StatusUpdateManager::new();
/// let fw = FrameworkId::new("f");
/// let st = TaskStatus::new(TaskId::new("t"), TaskState::Running).with_uuid(StatusUuid::from_u128(1));
/// m.update(Time::ZERO, fw.clone(), st).unwrap();
/// assert_eq!(m.poll_output().unwrap().status.state, TaskState::Running);
/// assert_eq!(m.poll_timeout(), Some(Time::from_secs(10)));
/// let ack = m.acknowledge(Time::from_secs(1), &fw, &TaskId::new("t"), StatusUuid::from_u128(1));
/// assert_eq!(ack, AckOutcome::Acknowledged);
/// assert_eq!(m.poll_timeout(), None);
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StatusUpdateManager {
    #[serde(with = "stream_list")]
    streams: BTreeMap<(FrameworkId, TaskId), Stream>,
    #[serde(skip)]
    outputs: VecDeque<StatusForward>,
    /// (due, framework, task) for every stream whose head is waiting to be (re)sent.
    #[serde(skip)]
    timers: BTreeSet<(Time, FrameworkId, TaskId)>,
}

impl StatusUpdateManager {
    /// No streams.
    pub fn new() -> Self {
        Self::default()
    }

    /// Queues a reliable update. If it becomes the head of its stream it is forwarded now.
    pub fn update(
        &mut self,
        now: Time,
        framework: FrameworkId,
        status: TaskStatus,
    ) -> Result<UpdateOutcome, StatusUpdateError> {
        let Some(uuid) = status.uuid else {
            return Err(StatusUpdateError::MissingUuid {
                task: status.task_id,
            });
        };
        let key = (framework, status.task_id.clone());
        let stream = self.streams.entry(key.clone()).or_default();
        if stream.received.contains(&uuid) {
            return Ok(UpdateOutcome::Duplicate);
        }
        if stream.terminal_received {
            return Err(StatusUpdateError::AfterTerminal {
                task: status.task_id,
                state: status.state.to_string(),
            });
        }
        stream.received.insert(uuid);
        stream.terminal_received = status.state.is_terminal();
        stream.pending.push_back(status);
        if stream.pending.len() == 1 {
            Self::send_head(
                &mut self.outputs,
                &mut self.timers,
                &key,
                stream,
                now,
                false,
            );
        }
        Ok(UpdateOutcome::Queued)
    }

    /// Handles the master's acknowledgement of `uuid` for a task.
    pub fn acknowledge(
        &mut self,
        now: Time,
        framework: &FrameworkId,
        task: &TaskId,
        uuid: StatusUuid,
    ) -> AckOutcome {
        let key = (framework.clone(), task.clone());
        let Some(stream) = self.streams.get_mut(&key) else {
            return AckOutcome::UnknownStream;
        };
        if stream.acknowledged.contains(&uuid) {
            return AckOutcome::Duplicate;
        }
        if stream.pending.front().and_then(|s| s.uuid) != Some(uuid) {
            return AckOutcome::Unexpected;
        }
        if let Some(due) = stream.next_send.take() {
            self.timers.remove(&(due, key.0.clone(), key.1.clone()));
        }
        let acked = stream.pending.pop_front();
        stream.acknowledged.insert(uuid);
        if acked.is_some_and(|s| s.state.is_terminal()) {
            self.streams.remove(&key);
            return AckOutcome::StreamClosed;
        }
        if !stream.pending.is_empty() {
            Self::send_head(
                &mut self.outputs,
                &mut self.timers,
                &key,
                stream,
                now,
                false,
            );
        }
        AckOutcome::Acknowledged
    }

    fn send_head(
        outputs: &mut VecDeque<StatusForward>,
        timers: &mut BTreeSet<(Time, FrameworkId, TaskId)>,
        key: &(FrameworkId, TaskId),
        stream: &mut Stream,
        now: Time,
        retry: bool,
    ) {
        let Some(head) = stream.pending.front() else {
            return;
        };
        outputs.push_back(StatusForward {
            framework: key.0.clone(),
            status: head.clone(),
            retry,
        });
        stream.interval = if retry {
            RETRY_BACKOFF.after(stream.interval)
        } else {
            RETRY_BACKOFF.first()
        };
        let due = now + stream.interval;
        stream.next_send = Some(due);
        timers.insert((due, key.0.clone(), key.1.clone()));
    }

    /// The earliest time a head update is due to be resent.
    pub fn poll_timeout(&self) -> Option<Time> {
        self.timers.first().map(|(t, _, _)| *t)
    }

    /// Resends every head whose retry is due at `now`, doubling its interval.
    pub fn handle_timeout(&mut self, now: Time) {
        while let Some((due, fw, task)) = self.timers.first().cloned() {
            if due > now {
                break;
            }
            self.timers.remove(&(due, fw.clone(), task.clone()));
            let key = (fw, task);
            if let Some(stream) = self.streams.get_mut(&key) {
                stream.next_send = None;
                Self::send_head(&mut self.outputs, &mut self.timers, &key, stream, now, true);
            }
        }
    }

    /// The next update to send to the master.
    pub fn poll_output(&mut self) -> Option<StatusForward> {
        self.outputs.pop_front()
    }

    /// After a restart (deserialised from a checkpoint): forwards every head again at `now`,
    /// since the master may never have received them.
    pub fn resume(&mut self, now: Time) {
        self.timers.clear();
        for (key, stream) in &mut self.streams {
            stream.next_send = None;
            Self::send_head(&mut self.outputs, &mut self.timers, key, stream, now, true);
        }
    }

    /// Re-sends every head now (e.g. after the agent reregistered with a new master),
    /// keeping each stream's backoff.
    pub fn flush(&mut self, now: Time) {
        self.resume(now);
    }

    /// The updates not yet acknowledged for a task, head first.
    pub fn pending(&self, framework: &FrameworkId, task: &TaskId) -> Vec<&TaskStatus> {
        self.streams
            .get(&(framework.clone(), task.clone()))
            .map(|s| s.pending.iter().collect())
            .unwrap_or_default()
    }

    /// The latest state queued for a task, if its stream is open.
    pub fn latest(&self, framework: &FrameworkId, task: &TaskId) -> Option<&TaskStatus> {
        self.streams
            .get(&(framework.clone(), task.clone()))
            .and_then(|s| s.pending.back())
    }

    /// Drops every stream of a framework (it was shut down: nobody will acknowledge them).
    /// Returns how many streams were dropped.
    pub fn remove_framework(&mut self, framework: &FrameworkId) -> usize {
        let keys: Vec<(FrameworkId, TaskId)> = self
            .streams
            .keys()
            .filter(|(f, _)| f == framework)
            .cloned()
            .collect();
        for key in &keys {
            if let Some(due) = self.streams.remove(key).and_then(|s| s.next_send) {
                self.timers.remove(&(due, key.0.clone(), key.1.clone()));
            }
        }
        self.outputs.retain(|o| &o.framework != framework);
        keys.len()
    }

    /// Number of open streams.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }
}

/// Streams as a list of `{framework, task, stream}`: JSON maps need string keys.
mod stream_list {
    use super::*;
    use serde::{Deserializer, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Entry {
        framework: FrameworkId,
        task: TaskId,
        stream: Stream,
    }

    pub fn serialize<S: Serializer>(
        streams: &BTreeMap<(FrameworkId, TaskId), Stream>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let list: Vec<Entry> = streams
            .iter()
            .map(|((f, t), st)| Entry {
                framework: f.clone(),
                task: t.clone(),
                stream: st.clone(),
            })
            .collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<(FrameworkId, TaskId), Stream>, D::Error> {
        let list = Vec::<Entry>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|e| ((e.framework, e.task), e.stream))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::TaskState;

    fn st(task: &str, state: TaskState, uuid: u128) -> TaskStatus {
        TaskStatus::new(TaskId::new(task), state).with_uuid(StatusUuid::from_u128(uuid))
    }

    fn drain(m: &mut StatusUpdateManager) -> Vec<StatusForward> {
        std::iter::from_fn(|| m.poll_output()).collect()
    }

    #[test]
    fn only_the_head_is_in_flight_and_retries_back_off() {
        let mut m = StatusUpdateManager::new();
        let fw = FrameworkId::new("f");
        m.update(Time::ZERO, fw.clone(), st("t", TaskState::Running, 1))
            .unwrap();
        m.update(Time::ZERO, fw.clone(), st("t", TaskState::Finished, 2))
            .unwrap();
        let out = drain(&mut m);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status.state, TaskState::Running);

        let mut t = Time::ZERO;
        let mut gaps = Vec::new();
        for _ in 0..8 {
            let next = m.poll_timeout().unwrap();
            gaps.push((next - t).as_secs());
            t = next;
            m.handle_timeout(t);
            let out = drain(&mut m);
            assert_eq!(out.len(), 1);
            assert!(out[0].retry);
        }
        assert_eq!(gaps, vec![10, 20, 40, 80, 160, 320, 600, 600]);

        assert_eq!(
            m.acknowledge(t, &fw, &TaskId::new("t"), StatusUuid::from_u128(1)),
            AckOutcome::Acknowledged
        );
        let out = drain(&mut m);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].status.state, TaskState::Finished);
        assert!(!out[0].retry);
        assert_eq!(m.poll_timeout(), Some(t + RETRY_INTERVAL_MIN));
    }

    #[test]
    fn duplicates_and_stale_acks_are_ignored() {
        let mut m = StatusUpdateManager::new();
        let fw = FrameworkId::new("f");
        let task = TaskId::new("t");
        m.update(Time::ZERO, fw.clone(), st("t", TaskState::Running, 1))
            .unwrap();
        assert_eq!(
            m.update(Time::ZERO, fw.clone(), st("t", TaskState::Running, 1))
                .unwrap(),
            UpdateOutcome::Duplicate
        );
        m.update(Time::ZERO, fw.clone(), st("t", TaskState::Finished, 2))
            .unwrap();
        assert_eq!(
            m.acknowledge(Time::ZERO, &fw, &task, StatusUuid::from_u128(2)),
            AckOutcome::Unexpected
        );
        assert_eq!(
            m.acknowledge(Time::ZERO, &fw, &task, StatusUuid::from_u128(1)),
            AckOutcome::Acknowledged
        );
        assert_eq!(
            m.acknowledge(Time::ZERO, &fw, &task, StatusUuid::from_u128(1)),
            AckOutcome::Duplicate
        );
        assert_eq!(
            m.acknowledge(Time::ZERO, &fw, &task, StatusUuid::from_u128(2)),
            AckOutcome::StreamClosed
        );
        assert_eq!(m.stream_count(), 0);
        assert_eq!(m.poll_timeout(), None);
        assert_eq!(
            m.acknowledge(Time::ZERO, &fw, &task, StatusUuid::from_u128(2)),
            AckOutcome::UnknownStream
        );
    }

    #[test]
    fn refuses_updates_without_uuid_or_after_terminal() {
        let mut m = StatusUpdateManager::new();
        let fw = FrameworkId::new("f");
        let err = m.update(
            Time::ZERO,
            fw.clone(),
            TaskStatus::new(TaskId::new("t"), TaskState::Running),
        );
        assert!(matches!(err, Err(StatusUpdateError::MissingUuid { .. })));
        m.update(Time::ZERO, fw.clone(), st("t", TaskState::Failed, 1))
            .unwrap();
        let err = m
            .update(Time::ZERO, fw, st("t", TaskState::Running, 2))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "status update TASK_RUNNING for task `t` arrives after its terminal update"
        );
    }

    #[test]
    fn removing_a_framework_drops_its_streams_and_timers() {
        let mut m = StatusUpdateManager::new();
        let (a, b) = (FrameworkId::new("a"), FrameworkId::new("b"));
        m.update(Time::ZERO, a.clone(), st("t1", TaskState::Running, 1))
            .unwrap();
        m.update(Time::ZERO, a.clone(), st("t2", TaskState::Running, 2))
            .unwrap();
        m.update(Time::ZERO, b.clone(), st("t1", TaskState::Running, 3))
            .unwrap();
        assert_eq!(m.remove_framework(&a), 2);
        let out = drain(&mut m);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].framework, b);
        assert_eq!(m.stream_count(), 1);
        m.handle_timeout(Time::from_secs(10));
        assert!(drain(&mut m).iter().all(|f| f.framework == b));
    }

    #[test]
    fn checkpoint_and_resume_resends_heads() {
        let mut m = StatusUpdateManager::new();
        let fw = FrameworkId::new("f");
        m.update(Time::ZERO, fw.clone(), st("a", TaskState::Running, 1))
            .unwrap();
        m.update(Time::ZERO, fw.clone(), st("b", TaskState::Running, 2))
            .unwrap();
        drain(&mut m);
        let json = serde_json::to_string(&m).unwrap();
        let mut back: StatusUpdateManager = serde_json::from_str(&json).unwrap();
        assert_eq!(back.poll_timeout(), None);
        back.resume(Time::from_secs(100));
        assert_eq!(drain(&mut back).len(), 2);
        assert!(back.poll_timeout().is_some());
        assert_eq!(
            back.acknowledge(
                Time::from_secs(101),
                &fw,
                &TaskId::new("a"),
                StatusUuid::from_u128(1)
            ),
            AckOutcome::Acknowledged
        );
    }
}
