//! Task states, status updates, and the agent-side status-update streams.
//!
//! - [`TaskState`] and [`Reason`] are the v1 enums, with Mesos' terminal classification.
//! - [`TaskStatus`] is the v1 `TaskStatus` message as it travels in UPDATE events.
//! - [`TaskStateMachine`] refuses to leave a terminal state, which is the only transition rule Mesos
//!   itself enforces (it does not validate a transition table).
//! - [`StatusUpdateManager`] is the agent's reliable delivery of updates: one ordered stream per
//!   task, only the head in flight, retried with backoff until acknowledged.

mod state;
mod status;
mod stream;

pub use state::{Reason, Source, TaskState, TaskStateMachine, TransitionError};
pub use status::{StatusUuid, TaskStatus};
pub use stream::{
    AckOutcome, StatusForward, StatusUpdateError, StatusUpdateManager, UpdateOutcome,
    RETRY_BACKOFF, RETRY_INTERVAL_MAX, RETRY_INTERVAL_MIN,
};
