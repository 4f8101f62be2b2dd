//! Marathon's model: app definitions, placement of instances on offers, and deployment plans.
//!
//! Everything here is plain data and pure functions, so the Marathon daemon can drive it from
//! offers and status updates it receives as values, and store it (all state is serde):
//!
//! - [`path`]: app and group ids (`/prod/web`).
//! - [`app`]: [`AppDefinition`] with Marathon's JSON names, defaults, normalisation and
//!   validation into Marathon's 422 body ([`ValidationError`]).
//! - [`ports`]: host ports from offers, service ports, the `PORT*` environment.
//! - [`placement`]: which waiting instances launch on an offer, and why offers go unused.
//! - [`deployment`]: plans in dependency order, scale-down selection, rolling restarts.
//! - [`backoff`]: the launch delay after failures.
//! - [`health`]: health check definitions and the counting that kills unhealthy instances.

pub mod app;
pub mod backoff;
pub mod deployment;
pub mod health;
pub mod path;
pub mod placement;
pub mod ports;
pub mod validation;

pub use app::{
    AppDefinition, Container, ContainerType, Docker, DockerParameter, EnvValue, KillSelection,
    Network, NetworkMode, PortDefinition, PortMapping, UnreachableStrategy, UpgradeStrategy,
};
pub use backoff::{advances_backoff, increases_backoff, LaunchBackoff};
pub use deployment::{
    dependency_depths, kill_weight, propose_scaling, sort_for_kill, DeploymentAction,
    DeploymentPlan, DeploymentStep, InstanceView, PlanError, RestartActions, RollingRestart,
    ScalingProposition,
};
pub use health::{Health, HealthAction, HealthCheck, HealthCommand, HealthProtocol, ProbeOutcome};
pub use path::PathId;
pub use placement::{
    counts_for_constraints, FunnelStage, Launch, NoMatch, Offer, OfferOutcome, OfferSummary,
    PlacementConfig, Placer, RejectKind, LAST_REASONS_PER_APP,
};
pub use ports::{
    assign_service_ports, port_env, HostPortRequest, PortRangeExhausted, PortRequests,
    PortShortage, SERVICE_PORT_RANGE,
};
pub use validation::{ValidationError, Violation};
