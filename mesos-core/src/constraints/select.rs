//! Which instances to kill on scale-down so that GROUP_BY groups stay even.
//!
//! Marathon (`Constraints.selectInstancesToKill`) removes instances from the largest group of the
//! most unbalanced GROUP_BY distribution first; users complained loudly when scale-down ignored
//! the spread (#555). We do the same at every step, and when the groups are even we still take
//! from a largest group, so killing two of `{a: 2, b: 2}` leaves `{a: 1, b: 1}`.

use std::collections::HashMap;

use super::{AgentView, Constraint, Operator};

/// Picks `count` of `candidates` to kill (fewer when there are fewer), as indices into
/// `candidates` in the order chosen. `candidates` must already be in the preferred kill order
/// (unreachable, staging, starting, running; youngest first): among equally good choices the
/// earliest wins, and without GROUP_BY constraints the first `count` are returned.
///
/// ```
/// use mesos_core::constraints::{select_instances_to_kill, AgentView, Constraint};
/// let c = Constraint::from_json(&serde_json::json!(["rack", "GROUP_BY"])).unwrap();
/// let on = |r: &str| AgentView::new("h").with_text_attribute("rack", r);
/// let agents = [on("a"), on("a"), on("a"), on("b")];
/// let refs: Vec<&AgentView> = agents.iter().collect();
/// assert_eq!(select_instances_to_kill(&[c], &refs, 2), vec![0, 1]);
/// ```
pub fn select_instances_to_kill(
    constraints: &[Constraint],
    candidates: &[&AgentView],
    count: usize,
) -> Vec<usize> {
    let count = count.min(candidates.len());
    let group_by: Vec<&Constraint> = constraints
        .iter()
        .filter(|c| c.operator() == Operator::GroupBy)
        .collect();
    if group_by.is_empty() {
        return (0..count).collect();
    }
    let mut alive = vec![true; candidates.len()];
    // Per GROUP_BY constraint: group sizes by value (None = agent lacks the field).
    let mut sizes: Vec<HashMap<Option<&str>, usize>> = group_by
        .iter()
        .map(|c| {
            let mut m = HashMap::new();
            for a in candidates {
                *m.entry(a.value(c.field())).or_insert(0) += 1;
            }
            m
        })
        .collect();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        // The most unbalanced distribution (first on ties).
        let (d, _) = sizes
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let max = m.values().copied().max().unwrap_or(0);
                let min = m.values().copied().filter(|n| *n > 0).min().unwrap_or(0);
                (i, max - min)
            })
            .fold((0, 0), |best, x| if x.1 > best.1 { x } else { best });
        let max = sizes[d].values().copied().max().unwrap_or(0);
        let field = group_by[d].field();
        let pick = (0..candidates.len())
            .find(|&i| alive[i] && sizes[d].get(&candidates[i].value(field)) == Some(&max));
        let Some(i) = pick else {
            break;
        };
        alive[i] = false;
        for (c, m) in group_by.iter().zip(sizes.iter_mut()) {
            if let Some(n) = m.get_mut(&candidates[i].value(c.field())) {
                *n -= 1;
            }
        }
        out.push(i);
    }
    out
}
