//! Thin daemons over `mesos-core`: HTTP, storage and container runtimes wired to the state machines.
//!
//! - [`master`]: the `mesos-master` daemon (v1 scheduler API, `/master/state`, metrics, web UI).
//! - [`agent`]: the `mesos-agent` daemon (registers, runs tasks through `mesos-runtime`).
//! - [`marathon`]: the `marathon` daemon (v2 REST API as a framework on a master).
//! - [`local`]: `mesos-local`, a master and N agents in one process.
//! - [`scheduler_client`]: a v1 scheduler API client (Marathon uses it; so can any Rust framework).
//! - [`recordio`]: Mesos' RecordIO framing, shared by both ends of every event stream.
//!
//! No scheduling decision lives here: the shells decode requests, feed the core state machines
//! with the current time, and carry out what they output.

pub mod agent;
pub mod cli;
pub mod local;
pub mod marathon;
pub mod master;
pub mod recordio;
pub mod scheduler_client;
