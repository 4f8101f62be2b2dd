//! The `marathon` daemon: Marathon's v2 REST API as a real framework on a Mesos master.
//!
//! - [`config`]: flags and `MARATHON_*` environment.
//! - [`store`]: durable state behind [`store::KvStore`] (redb now, ZooKeeper later).
//! - [`events`]: the `/v2/events` bus (bounded per reader).
//! - [`probes`]: Marathon-side HTTP/HTTPS/TCP health probes.
//! - [`render`]: `/v2/info`, `/metrics`, timestamps.
//! - [`api`]: the REST routes.
//! - [`daemon`]: the loop tying the master connection ([`crate::scheduler_client`]), the store
//!   and the API together.
//!
//! Scheduling decisions belong to `mesos_core::marathon::scheduler`; the shell only carries
//! them out.

pub mod api;
pub mod config;
pub mod daemon;
pub mod events;
pub mod probes;
pub mod render;
pub mod store;

pub use config::MarathonFlags;
pub use daemon::{run, LocalMarathon, MarathonError};
