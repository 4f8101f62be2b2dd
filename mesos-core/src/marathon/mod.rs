//! Marathon's model: app definitions, placement of instances on offers, and deployment plans.
//!
//! Everything here is plain data and pure functions, so the Marathon daemon can drive it from
//! offers and status updates it receives as values, and store it (all state is serde):
//!
//! - [`path`]: app and group ids (`/prod/web`).
//! - [`app`]: [`AppDefinition`] with Marathon's JSON names, defaults, normalisation and
//!   validation into Marathon's 422 body ([`ValidationError`]).
//! - [`health`]: health check definitions and the counting that kills unhealthy instances.

pub mod app;
pub mod health;
pub mod path;
pub mod validation;

pub use app::{
    AppDefinition, Container, ContainerType, Docker, DockerParameter, EnvValue, KillSelection,
    Network, NetworkMode, PortDefinition, PortMapping, UnreachableStrategy, UpgradeStrategy,
};
pub use health::{Health, HealthAction, HealthCheck, HealthCommand, HealthProtocol, ProbeOutcome};
pub use path::PathId;
pub use validation::{ValidationError, Violation};
