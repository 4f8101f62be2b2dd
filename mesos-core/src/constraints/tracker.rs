//! Incremental constraint state for one app: counts per value instead of a list of placed agents.
//!
//! [`Constraint::is_satisfied`] scans the placed agents on every call, which is fine for a test
//! but not for placing 100,000 instances a second. A [`ConstraintTracker`] keeps, per constraint,
//! how many counted instances sit on each value, so each check is a hash lookup (GROUP_BY also
//! scans its groups, of which there are few). It answers exactly as `is_satisfied` would for the
//! same placed set; a property test in `tests/constraints_*.rs` holds it to that.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::{group_by_allows, AgentView, Constraint, Operator};

/// Counts of counted instances per value of one constraint's field.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Counts {
    per_value: HashMap<Box<str>, u64>,
    /// Instances whose agent lacks the field (Marathon's "none" group).
    missing: u64,
    /// CLUSTER without value: values in placement order, to know the first one.
    order: Vec<Option<Box<str>>>,
}

/// The constraint state of one app, updated as instances are placed and go away.
///
/// ```
/// use mesos_core::constraints::{AgentView, Constraint, ConstraintTracker};
/// let c = Constraint::from_json(&serde_json::json!(["hostname", "UNIQUE"])).unwrap();
/// let mut t = ConstraintTracker::new(vec![c]);
/// let a = AgentView::new("a");
/// assert!(t.allows(&a).is_ok());
/// t.add(&a);
/// assert_eq!(t.allows(&a).unwrap_err().to_string(), r#"["hostname","UNIQUE"]"#);
/// t.remove(&a);
/// assert!(t.allows(&a).is_ok());
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ConstraintTracker {
    constraints: Vec<Constraint>,
    counts: Vec<Counts>,
    /// LIKE/UNLIKE results per value, per constraint (bounded; regexes are the slow part).
    /// A cache: not stored, rebuilt on use.
    #[serde(skip)]
    regex_cache: Vec<HashMap<Box<str>, bool>>,
    placed: u64,
}

const REGEX_CACHE_MAX: usize = 4096;

impl ConstraintTracker {
    /// A tracker with nothing placed.
    pub fn new(constraints: Vec<Constraint>) -> Self {
        let n = constraints.len();
        ConstraintTracker {
            constraints,
            counts: vec![Counts::default(); n],
            regex_cache: vec![HashMap::new(); n],
            placed: 0,
        }
    }

    /// The constraints tracked.
    pub fn constraints(&self) -> &[Constraint] {
        &self.constraints
    }

    /// How many instances are counted.
    pub fn placed(&self) -> u64 {
        self.placed
    }

    /// Counts one more instance on `agent`.
    pub fn add(&mut self, agent: &AgentView) {
        self.placed += 1;
        for (c, counts) in self.constraints.iter().zip(self.counts.iter_mut()) {
            let v = agent.value(c.field());
            match v {
                Some(v) => match counts.per_value.get_mut(v) {
                    Some(n) => *n += 1,
                    None => {
                        counts.per_value.insert(v.into(), 1);
                    }
                },
                None => counts.missing += 1,
            }
            if c.operator() == Operator::Cluster && c.value().is_none() {
                counts.order.push(v.map(Into::into));
            }
        }
    }

    /// Stops counting one instance on `agent` (it was never counted: no effect).
    pub fn remove(&mut self, agent: &AgentView) {
        let mut found = false;
        for (c, counts) in self.constraints.iter().zip(self.counts.iter_mut()) {
            let v = agent.value(c.field());
            match v {
                Some(v) => {
                    if let Some(n) = counts.per_value.get_mut(v) {
                        found = true;
                        *n -= 1;
                        if *n == 0 {
                            counts.per_value.remove(v);
                        }
                    }
                }
                None if counts.missing > 0 => {
                    found = true;
                    counts.missing -= 1;
                }
                None => {}
            }
            if let Some(i) = counts.order.iter().position(|o| o.as_deref() == v) {
                counts.order.remove(i);
            }
        }
        if found || self.constraints.is_empty() {
            self.placed = self.placed.saturating_sub(1);
        }
    }

    /// `Ok` when every constraint accepts one more instance on `candidate`, else the first
    /// constraint that refuses.
    pub fn allows(&mut self, candidate: &AgentView) -> Result<(), &Constraint> {
        match self.first_refusing(candidate) {
            Some(i) => Err(&self.constraints[i]),
            None => Ok(()),
        }
    }

    /// The index of the first constraint that refuses one more instance on `candidate`.
    pub fn first_refusing(&mut self, candidate: &AgentView) -> Option<usize> {
        (0..self.constraints.len()).find(|&i| !self.check(i, candidate))
    }

    fn check(&mut self, i: usize, candidate: &AgentView) -> bool {
        let c = &self.constraints[i];
        let Some(v) = candidate.value(c.field()) else {
            return c.operator() == Operator::Unlike;
        };
        let counts = &self.counts[i];
        match c.operator() {
            Operator::Unique => !counts.per_value.contains_key(v),
            Operator::Cluster => match c.value() {
                Some(want) => v == want,
                None => counts.order.first().is_none_or(|f| f.as_deref() == Some(v)),
            },
            Operator::GroupBy => {
                let groups = counts.per_value.len() + usize::from(counts.missing > 0);
                group_by_allows(
                    c.number(),
                    v,
                    groups,
                    |v| counts.per_value.get(v).copied(),
                    || {
                        let m = counts.per_value.values().copied().min();
                        match (m, counts.missing) {
                            (m, 0) => m,
                            (Some(m), x) => Some(m.min(x)),
                            (None, x) => Some(x),
                        }
                    },
                )
            }
            Operator::MaxPer => {
                let n = counts.per_value.get(v).copied().unwrap_or(0);
                i64::try_from(n).unwrap_or(i64::MAX) < c.number()
            }
            Operator::Like | Operator::Unlike => {
                let like = c.operator() == Operator::Like;
                if self.regex_cache.len() <= i {
                    self.regex_cache
                        .resize_with(self.constraints.len(), HashMap::new);
                }
                let cache = &mut self.regex_cache[i];
                let m = match cache.get(v) {
                    Some(m) => *m,
                    None => {
                        let m = c.matches(v);
                        if cache.len() >= REGEX_CACHE_MAX {
                            cache.clear();
                        }
                        cache.insert(v.into(), m);
                        m
                    }
                };
                m == like
            }
            Operator::Is => c.is_value() == Some(v),
        }
    }
}
