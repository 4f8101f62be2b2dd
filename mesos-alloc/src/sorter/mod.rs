//! Sorters decide whose turn it is: the allocator asks a role sorter for the order of roles
//! and, per role, a framework sorter for the order of that role's frameworks.
//!
//! - [`DrfSorter`]: Dominant Resource Fairness with weights over hierarchical clients.
//! - [`RandomSorter`]: a seeded, weighted, hierarchical shuffle.
//!
//! Both implement [`Sorter`]; [`SorterKind`] selects one the way Mesos' `--role_sorter` and
//! `--framework_sorter` flags do.

mod drf;
mod random;
mod tree;

use mesos_core::ids::AgentId;
use mesos_core::resources::{Name, Resources};

pub use drf::DrfSorter;
pub use random::RandomSorter;
pub use tree::ClientId;

pub(crate) use tree::PreOrder;

/// What the allocator needs from a sorter. Clients are `/`-separated paths; only scalar
/// resources count; agents only feed the pool total.
pub trait Sorter {
    /// Adds an inactive client.
    fn add(&mut self, client: &str);
    /// Removes a client and its allocation.
    fn remove(&mut self, client: &str);
    /// Lets a client be returned by [`Sorter::sort`].
    fn activate(&mut self, client: &str);
    /// Hides a client from [`Sorter::sort`], keeping its allocation.
    fn deactivate(&mut self, client: &str);
    /// Sets the weight of the subtree at `path`.
    fn update_weight(&mut self, path: &str, weight: f64);
    /// Adds an agent's resources to the pool.
    fn add_agent(&mut self, agent: &AgentId, total: &Resources);
    /// Removes an agent's resources from the pool.
    fn remove_agent(&mut self, agent: &AgentId);
    /// Records an allocation to a client.
    fn allocated(&mut self, client: &str, agent: &AgentId, resources: &Resources);
    /// Records resources taken back from a client.
    fn unallocated(&mut self, client: &str, agent: &AgentId, resources: &Resources);
    /// Replaces `old` by `new` in a client's allocation.
    fn update(&mut self, client: &str, agent: &AgentId, old: &Resources, new: &Resources);
    /// The active clients in the sorter's order.
    fn sort(&mut self) -> Vec<String>;
    /// True when `client` was added.
    fn contains(&self, client: &str) -> bool;
    /// The number of clients, active or not.
    fn count(&self) -> usize;
}

/// Which sorter to use (Mesos' `--role_sorter` / `--framework_sorter`: `drf` or `random`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SorterKind {
    /// Dominant Resource Fairness (the default).
    #[default]
    Drf,
    /// Weighted random shuffle.
    Random,
}

/// A sorter of either kind, dispatched without a vtable on the allocator's hot path.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One per role; boxing would add a pointer hop per sort.
pub(crate) enum AnySorter {
    Drf(DrfSorter),
    Random(RandomSorter),
}

impl AnySorter {
    pub(crate) fn new(kind: SorterKind, seed: u64) -> Self {
        match kind {
            SorterKind::Drf => AnySorter::Drf(DrfSorter::new()),
            SorterKind::Random => AnySorter::Random(RandomSorter::new(seed)),
        }
    }

    fn tree(&self) -> &tree::Tree {
        match self {
            AnySorter::Drf(s) => &s.tree,
            AnySorter::Random(s) => &s.tree,
        }
    }

    fn tree_mut(&mut self) -> &mut tree::Tree {
        match self {
            AnySorter::Drf(s) => &mut s.tree,
            AnySorter::Random(s) => &mut s.tree,
        }
    }

    pub(crate) fn add(&mut self, client: &str) -> ClientId {
        self.tree_mut().add(client)
    }
    pub(crate) fn remove(&mut self, client: &str) {
        self.tree_mut().remove(client);
    }
    pub(crate) fn activate(&mut self, client: &str) {
        self.tree_mut().activate(client);
    }
    pub(crate) fn deactivate(&mut self, client: &str) {
        self.tree_mut().deactivate(client);
    }
    pub(crate) fn is_active(&self, client: &str) -> bool {
        self.tree().is_active(client)
    }
    pub(crate) fn update_weight(&mut self, path: &str, weight: f64) {
        self.tree_mut().update_weight(path, weight);
    }
    pub(crate) fn set_total(&mut self, q: &[(Name, i64)]) {
        self.tree_mut().set_total(q);
    }
    /// See [`DrfSorter::hint`]; the random sorter has no use for it.
    pub(crate) fn hint(&mut self, client: ClientId, pos: usize) {
        if let AnySorter::Drf(s) = self {
            s.hint(client, pos);
        }
    }

    pub(crate) fn change(&mut self, client: ClientId, q: &[(Name, i64)], sign: i64, count: bool) {
        match self {
            AnySorter::Drf(s) => s.change(client, q, sign, count),
            AnySorter::Random(s) => s.change(client, q, sign, count),
        }
    }
    pub(crate) fn sort_paths(&mut self) -> Vec<String> {
        match self {
            AnySorter::Drf(s) => s.sort(),
            AnySorter::Random(s) => s.sort(),
        }
    }

    /// See [`DrfSorter::top_key`]; `None` for the random sorter.
    pub(crate) fn top_key(&self, client: ClientId) -> Option<(f64, u64)> {
        match self {
            AnySorter::Drf(s) => s.top_key(client),
            AnySorter::Random(_) => None,
        }
    }

    /// Prepares the order (DRF fix-up or a fresh shuffle); then [`AnySorter::order`] reads it.
    pub(crate) fn prepare(&mut self) {
        match self {
            AnySorter::Drf(s) => s.fix_order(),
            AnySorter::Random(s) => s.shuffle(),
        }
    }

    /// The order prepared by the last [`AnySorter::prepare`].
    pub(crate) fn order(&self) -> Order<'_> {
        match self {
            AnySorter::Drf(s) => Order::Drf(PreOrder::new(&s.tree)),
            AnySorter::Random(s) => Order::Random(s.order.iter()),
        }
    }
}

/// An iterator over client handles in sorted order.
pub(crate) enum Order<'a> {
    Drf(PreOrder<'a>),
    Random(std::slice::Iter<'a, ClientId>),
}

impl Iterator for Order<'_> {
    type Item = ClientId;
    fn next(&mut self) -> Option<ClientId> {
        match self {
            Order::Drf(i) => i.next(),
            Order::Random(i) => i.next().copied(),
        }
    }
}
