//! Which instances to kill on scale-down so that GROUP_BY groups stay even.
//!
//! Marathon (`Constraints.selectInstancesToKill`) removes instances so that every GROUP_BY
//! distribution becomes more even; users complained loudly when scale-down ignored the spread
//! (#555). We pick, one at a time, the instance whose groups are the largest summed over all
//! GROUP_BY constraints, so with one constraint it comes from a largest group, and when the groups
//! are even we still take from a largest one: killing two of `{a: 2, b: 2}` leaves `{a: 1, b: 1}`.

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
    // Per GROUP_BY constraint: each candidate's group, and the group sizes.
    let mut group_of: Vec<Vec<usize>> = Vec::with_capacity(group_by.len());
    let mut sizes: Vec<Vec<usize>> = Vec::with_capacity(group_by.len());
    for c in &group_by {
        let mut ids: HashMap<Option<&str>, usize> = HashMap::new();
        let mut of = Vec::with_capacity(candidates.len());
        let mut size = Vec::new();
        for a in candidates {
            let next = ids.len();
            let g = *ids.entry(a.value(c.field())).or_insert(next);
            if g == size.len() {
                size.push(0);
            }
            size[g] += 1;
            of.push(g);
        }
        group_of.push(of);
        sizes.push(size);
    }
    let mut alive = vec![true; candidates.len()];
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        // The candidate whose groups are the largest overall: with one GROUP_BY, one from a
        // largest group; with several, one that evens them all out together (two GROUP_BYs
        // over rack and color lose as many of each rack and of each color). Ties: kill order.
        let mut best: Option<(usize, usize)> = None;
        for i in (0..candidates.len()).filter(|i| alive[*i]) {
            let score: usize = (0..group_by.len()).map(|d| sizes[d][group_of[d][i]]).sum();
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((i, score));
            }
        }
        let Some((i, _)) = best else {
            break;
        };
        alive[i] = false;
        for d in 0..group_by.len() {
            sizes[d][group_of[d][i]] -= 1;
        }
        out.push(i);
    }
    out
}
