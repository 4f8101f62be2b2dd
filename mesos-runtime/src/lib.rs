//! The `ContainerRuntime` trait and its adapters: plain processes (Mesos' own containerizer),
//! Docker (through the Engine API) and LXC (through the `lxc-*` tools).
//!
//! The agent builds a [`ContainerSpec`] from each task, calls [`ContainerRuntime::launch`], waits
//! with [`ContainerRuntime::wait`] and turns the [`Termination`] into a status update with
//! [`Termination::to_mesos`]. Containers outlive the runtime object and the agent process; a new
//! runtime finds them with [`ContainerRuntime::recover`].
//!
//! Modules:
//! - [`spec`]: what to run; validated before anything touches the machine.
//! - [`runtime`]: the trait, usage and recovery results.
//! - [`termination`]: how a container ended, and the mapping to Mesos states and reasons.
//! - [`error`]: [`SpecError`] for bad specs, [`RuntimeError`] for everything else.
//! - [`journal`]: the append-only line journal under the runtimes' and the agent's
//!   checkpoints, with its durability and damage policies explicit.
//! - [`process`], [`docker`], [`lxc`]: the three runtimes.
//!
//! Internals: `supervisor` (spawn, watch and signal one host process per container, shared by
//! the process and LXC runtimes), `spawn` (start a process inside its cgroups without forking
//! the agent), `cgroups`, `checkpoint` (the runtimes' journal, Docker's per-container files),
//! `table` (live containers and their termination channels), `sandbox`, `procfs`, `naming`.

mod cgroups;
mod checkpoint;
pub mod docker;
pub mod error;
pub mod journal;
pub mod lxc;
mod naming;
pub mod process;
mod procfs;
pub mod runtime;
mod sandbox;
mod spawn;
pub mod spec;
mod supervisor;
mod table;
pub mod termination;

pub use docker::{DockerConfig, DockerRuntime};
pub use error::{RuntimeError, SpecError};
pub use journal::{Damage, Durability, JournalError, LineJournal};
pub use lxc::{LxcConfig, LxcRuntime};
pub use process::{ProcessConfig, ProcessRuntime};
pub use runtime::{ContainerRuntime, Recovered, ResourceUsage};
pub use sandbox::{spread_subdirectories, CONTAINER_SANDBOX};
pub use spec::{
    CommandSpec, ContainerInfo, ContainerSpec, DockerInfo, Limits, LxcInfo, LxcRootfs, Network,
    PortMapping, Protocol, Volume, VolumeMode,
};
pub use termination::{ExitStatus, TerminalState, Termination, TerminationReason};
