//! Catching placements that can never complete, before any offer is wasted on them.
//!
//! `hostname:UNIQUE` with more instances than agents never converges and blocks later
//! deployments (Marathon #4110); a LIKE that matches no agent waits forever without a word. Given
//! the agents the daemon knows, [`unsatisfiable`] says which constraint makes the app impossible
//! and why, so the queue can show it at once.

use std::collections::BTreeSet;

use super::{AgentView, Constraint, Operator};

/// Why an app's constraints can never hold for all its instances on the known agents.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("constraint {constraint} cannot be met: {reason}")]
pub struct Unsatisfiable {
    /// Index of the constraint in the app's list.
    pub index: usize,
    /// The constraint, as JSON text.
    pub constraint: String,
    /// What makes it impossible, with the numbers.
    pub reason: String,
}

/// Whether a single agent can ever host an instance under `c`, whatever else is placed.
fn admits(c: &Constraint, agent: &AgentView) -> bool {
    let Some(v) = agent.value(c.field()) else {
        return c.operator() == Operator::Unlike;
    };
    match c.operator() {
        Operator::Like => c.matches(v),
        Operator::Unlike => !c.matches(v),
        Operator::Is => c.is_value() == Some(v),
        Operator::Cluster => c.value().is_none_or(|want| want == v),
        Operator::MaxPer => c.number() > 0,
        Operator::Unique | Operator::GroupBy => true,
    }
}

/// The first reason `instances` instances with `constraints` can never all be placed on
/// `agents`, or `None` when they might (resources aside).
///
/// ```
/// use mesos_core::constraints::{unsatisfiable, AgentView, Constraint};
/// let unique = Constraint::from_json(&serde_json::json!(["hostname", "UNIQUE"])).unwrap();
/// let agents = [AgentView::new("a"), AgentView::new("b")];
/// let why = unsatisfiable(&[unique.clone()], 3, &agents).unwrap();
/// assert_eq!(why.reason, "at most 2 instances fit (2 distinct values of hostname), 3 wanted");
/// assert!(unsatisfiable(&[unique], 2, &agents).is_none());
/// ```
pub fn unsatisfiable(
    constraints: &[Constraint],
    instances: u32,
    agents: &[AgentView],
) -> Option<Unsatisfiable> {
    if instances == 0 {
        return None;
    }
    let fail = |i: usize, reason: String| {
        Some(Unsatisfiable {
            index: i,
            constraint: constraints[i].to_string(),
            reason,
        })
    };
    for (i, c) in constraints.iter().enumerate() {
        if !agents.iter().any(|a| admits(c, a)) {
            return fail(
                i,
                format!("none of the {} known agents qualifies", agents.len()),
            );
        }
    }
    let eligible: Vec<&AgentView> = agents
        .iter()
        .filter(|a| constraints.iter().all(|c| admits(c, a)))
        .collect();
    if eligible.is_empty() {
        return fail(
            0,
            format!(
                "no known agent meets all {} constraints together",
                constraints.len()
            ),
        );
    }
    for (i, c) in constraints.iter().enumerate() {
        let per_value = match c.operator() {
            Operator::Unique => 1,
            Operator::MaxPer => u64::try_from(c.number()).unwrap_or(0),
            Operator::Cluster => u64::from(instances),
            _ => continue,
        };
        let values: BTreeSet<&str> = eligible.iter().filter_map(|a| a.value(c.field())).collect();
        let fit = if c.operator() == Operator::Cluster {
            // All instances share one value: fine as long as one value exists.
            if values.is_empty() {
                0
            } else {
                u64::from(instances)
            }
        } else {
            per_value.saturating_mul(values.len() as u64)
        };
        if fit < u64::from(instances) {
            return fail(
                i,
                format!(
                    "at most {fit} instances fit ({} distinct values of {}), {instances} wanted",
                    values.len(),
                    c.field_name()
                ),
            );
        }
    }
    None
}
