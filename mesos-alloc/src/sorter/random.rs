//! The random sorter (Mesos' `--role_sorter=random`): a weighted shuffle, done level by level.
//!
//! At every internal node each child that can be returned (an active leaf, or an internal node
//! with an active leaf below it) draws `-(u ^ (1 / weight))` with `u` uniform in `[0, 1)`, and
//! children are visited in ascending key order, so a child of weight `w` comes first with
//! probability proportional to `w`. Allocations are tracked (for introspection) but never
//! influence the order. The randomness comes from a seed, so a run can be replayed.

use mesos_core::ids::AgentId;
use mesos_core::resources::{Name, Resources};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::tree::{ClientId, Kind, Tree, ROOT};
use super::Sorter;

/// A weighted hierarchical shuffle over the same client tree as [`super::DrfSorter`].
///
/// ```
/// use mesos_alloc::sorter::RandomSorter;
/// let mut sorter = RandomSorter::new(7);
/// for client in ["a", "b", "c"] {
///     sorter.add(client);
///     sorter.activate(client);
/// }
/// let mut order = sorter.sort();
/// order.sort();
/// assert_eq!(order, vec!["a", "b", "c"]);
/// ```
#[derive(Debug)]
pub struct RandomSorter {
    pub(crate) tree: Tree,
    rng: ChaCha8Rng,
    pub(crate) order: Vec<ClientId>,
    keys: Vec<(f64, u32)>,
}

impl RandomSorter {
    /// An empty sorter whose shuffles are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        RandomSorter {
            tree: Tree::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Adds an inactive client (see [`super::DrfSorter::add`]).
    pub fn add(&mut self, client: &str) {
        self.tree.add(client);
    }

    /// Removes a client.
    pub fn remove(&mut self, client: &str) {
        self.tree.remove(client);
    }

    /// Makes a client eligible for [`RandomSorter::sort`].
    pub fn activate(&mut self, client: &str) {
        self.tree.activate(client);
    }

    /// Hides a client from [`RandomSorter::sort`].
    pub fn deactivate(&mut self, client: &str) {
        self.tree.deactivate(client);
    }

    /// Sets the weight of a subtree.
    pub fn update_weight(&mut self, path: &str, weight: f64) {
        self.tree.update_weight(path, weight);
    }

    /// Adds an agent's scalars to the pool.
    pub fn add_agent(&mut self, agent: &AgentId, total: &Resources) {
        self.tree.add_agent(agent, total);
    }

    /// Removes an agent from the pool.
    pub fn remove_agent(&mut self, agent: &AgentId) {
        self.tree.remove_agent(agent);
    }

    /// Records an allocation (ignored by the order).
    pub fn allocated(&mut self, client: &str, _agent: &AgentId, resources: &Resources) {
        self.tree.allocated(client, resources);
    }

    /// Records resources taken back.
    pub fn unallocated(&mut self, client: &str, _agent: &AgentId, resources: &Resources) {
        self.tree.unallocated(client, resources);
    }

    /// Replaces part of an allocation.
    pub fn update(&mut self, client: &str, _agent: &AgentId, old: &Resources, new: &Resources) {
        self.tree.update(client, old, new);
    }

    /// A fresh weighted shuffle of the active clients.
    pub fn sort(&mut self) -> Vec<String> {
        self.shuffle();
        self.order
            .iter()
            .filter_map(|&c| self.tree.client_path(c))
            .collect()
    }

    /// True when `client` was added.
    pub fn contains(&self, client: &str) -> bool {
        self.tree.contains(client)
    }

    /// The number of clients, active or not.
    pub fn count(&self) -> usize {
        self.tree.count()
    }

    pub(crate) fn change(&mut self, client: ClientId, q: &[(Name, i64)], sign: i64, count: bool) {
        self.tree.change(client, q, sign, count);
        // The order ignores allocations: nothing to re-place.
        self.tree.stale.clear();
    }

    /// Draws a new order into `self.order`.
    pub(crate) fn shuffle(&mut self) {
        self.order.clear();
        for n in std::mem::take(&mut self.tree.stale) {
            self.tree.nodes[n as usize].stale = false;
        }
        self.tree.dirty = false;
        self.shuffle_node(ROOT);
    }

    fn has_active(&self, node: u32) -> bool {
        let n = &self.tree.nodes[node as usize];
        n.children[..n.n_front as usize]
            .iter()
            .any(|&c| match self.tree.nodes[c as usize].kind {
                Kind::ActiveLeaf => true,
                Kind::Internal => self.has_active(c),
                Kind::InactiveLeaf => false,
            })
    }

    fn shuffle_node(&mut self, node: u32) {
        let start = self.keys.len();
        let n_front = self.tree.nodes[node as usize].n_front as usize;
        for i in 0..n_front {
            let c = self.tree.nodes[node as usize].children[i];
            let takes_part = match self.tree.nodes[c as usize].kind {
                Kind::ActiveLeaf => true,
                Kind::Internal => self.has_active(c),
                Kind::InactiveLeaf => false,
            };
            if takes_part {
                let u: f64 = self.rng.gen();
                let w = self.tree.nodes[c as usize].weight;
                self.keys.push((-(u.powf(1.0 / w)), c));
            }
        }
        self.keys[start..].sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mine: Vec<u32> = self.keys[start..].iter().map(|k| k.1).collect();
        self.keys.truncate(start);
        for c in mine {
            let child = &self.tree.nodes[c as usize];
            if child.kind == Kind::ActiveLeaf {
                self.order.push(ClientId(child.client));
            } else {
                self.shuffle_node(c);
            }
        }
    }
}

impl Sorter for RandomSorter {
    fn add(&mut self, client: &str) {
        RandomSorter::add(self, client)
    }
    fn remove(&mut self, client: &str) {
        RandomSorter::remove(self, client)
    }
    fn activate(&mut self, client: &str) {
        RandomSorter::activate(self, client)
    }
    fn deactivate(&mut self, client: &str) {
        RandomSorter::deactivate(self, client)
    }
    fn update_weight(&mut self, path: &str, weight: f64) {
        RandomSorter::update_weight(self, path, weight)
    }
    fn add_agent(&mut self, agent: &AgentId, total: &Resources) {
        RandomSorter::add_agent(self, agent, total)
    }
    fn remove_agent(&mut self, agent: &AgentId) {
        RandomSorter::remove_agent(self, agent)
    }
    fn allocated(&mut self, client: &str, agent: &AgentId, resources: &Resources) {
        RandomSorter::allocated(self, client, agent, resources)
    }
    fn unallocated(&mut self, client: &str, agent: &AgentId, resources: &Resources) {
        RandomSorter::unallocated(self, client, agent, resources)
    }
    fn update(&mut self, client: &str, agent: &AgentId, old: &Resources, new: &Resources) {
        RandomSorter::update(self, client, agent, old, new)
    }
    fn sort(&mut self) -> Vec<String> {
        RandomSorter::sort(self)
    }
    fn contains(&self, client: &str) -> bool {
        RandomSorter::contains(self, client)
    }
    fn count(&self) -> usize {
        RandomSorter::count(self)
    }
}
