//! The sans-IO core of a Mesos and Marathon re-implementation.
//!
//! Nothing in this crate performs I/O, reads a clock, sleeps, spawns threads or draws randomness
//! it was not handed. Time comes in as [`time::Time`] values and randomness as seeds, so the same
//! inputs always give the same outputs: the daemons in `shells/`, the allocator benchmarks and the
//! trace simulator all drive the very same code.
//!
//! Modules, lowest first:
//! - [`ids`]: the framework, agent, offer, task and executor identifiers.
//! - [`resources`]: Mesos' resource model (scalars in fixed point, ranges, sets, reservations).
//! - [`attributes`]: agent attributes as Mesos types them.
//! - [`time`]: the timestamp type every state machine takes as input.
//! - [`backoff`]: the one exponential backoff policy (retries, reconnects, launch delays).
//! - [`task`]: task states, status updates and the agent-side status-update streams.
//! - [`constraints`]: Marathon placement constraints.
//! - [`agent`]: the agent's state machine (task lifecycle, update streams, health verdicts,
//!   checkpoint and sandbox GC decisions).
//! - [`marathon`]: Marathon's app model, placement and deployment planning.
//! - [`master`]: the Mesos master state machine.
//! - [`protocol`]: the master <-> agent messages.

pub mod agent;
pub mod allocator;
pub mod attributes;
pub mod backoff;
pub mod constraints;
pub mod ids;
pub mod marathon;
pub mod master;
pub mod protocol;
pub mod resources;
pub mod task;
pub mod time;
