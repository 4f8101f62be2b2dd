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
//!
//! How a scheduler drives it (the daemon in `shells/` does this over the v1 scheduler API; a test
//! or the simulator can do it in-process with the same calls):
//!
//! 1. `POST /v2/apps`: [`AppDefinition::from_json`] (422 body from [`ValidationError::to_json`]),
//!    [`assign_service_ports`] against the service ports in use, then [`DeploymentPlan::new`]
//!    from the current apps to the new set. [`crate::constraints::unsatisfiable`] with the known
//!    agents says at once when the app can never be fully placed.
//! 2. A scale step: [`propose_scaling`] gives the instances to kill and how many to start;
//!    [`Placer::upsert_app`] and [`Placer::set_waiting`] queue the starts. A restart step:
//!    [`RollingRestart`] paces kills and starts as new instances become healthy.
//! 3. Each offer: [`Placer::place`] returns the launches (resources via [`Launch::resources`],
//!    environment via [`port_env`]) and, for the apps that launched nothing, why. Launched
//!    instances count for their app's constraints at once.
//! 4. Each status update: [`Placer::instance_gone`] when an instance stops counting
//!    ([`counts_for_constraints`]), [`LaunchBackoff::observe`] for the launch delay (handed to [`Placer::delay`]), and
//!    [`Health::record`] for each probe result while it runs.
//! 5. `/v2/queue` and "why is my app waiting": [`Placer::summary`] ([`OfferSummary::funnel`],
//!    [`OfferSummary::explain`]) and [`LaunchBackoff::time_left`].
//!
//! Nothing here reads a clock or draws randomness it was not given: times are arguments and the
//! placer's rng is seeded by the caller.

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
    Network, NetworkMode, PortDefinition, PortMapping, UnreachablePhase, UnreachableStrategy,
    UpgradeStrategy,
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
