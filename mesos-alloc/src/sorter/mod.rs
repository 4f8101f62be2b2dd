//! Sorters decide whose turn it is: the allocator asks a role sorter for the order of roles
//! and, per role, a framework sorter for the order of that role's frameworks.
//!
//! There is one sorter, [`Sorter`]: a tree of hierarchical clients (`tree`: paths, weights,
//! allocations summed up the tree, the pool total) with the ordering as a policy, chosen by
//! [`SorterKind`] the way Mesos' `--role_sorter` and `--framework_sorter` flags choose:
//!
//! - DRF (`drf`): Dominant Resource Fairness with weights, kept sorted incrementally.
//! - Random (`random`): a seeded, weighted, hierarchical shuffle drawn at each sort.
//!
//! The policy is an enum, not a trait object: the allocator's hot loop asks the order of
//! hundreds of sorters per cycle and dispatches with a branch, not a vtable.

mod drf;
mod random;
mod tree;

use mesos_core::ids::AgentId;
use mesos_core::resources::{Name, ResourceQuantities, Resources};

pub use tree::ClientId;

pub(crate) use tree::PreOrder;
use tree::{Tree, ROOT};

/// Which ordering a sorter uses (Mesos' `--role_sorter` / `--framework_sorter`: `drf` or
/// `random`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SorterKind {
    /// Dominant Resource Fairness (the default).
    #[default]
    Drf,
    /// Weighted random shuffle.
    Random,
}

/// The name this sorter had before the orderings became policies of one type:
/// [`Sorter::new`] gives the DRF policy.
pub type DrfSorter = Sorter;

/// Clients in a tree, returned in the order of a policy (DRF or a seeded weighted shuffle).
///
/// Clients are `/`-separated paths; only scalar resources count toward shares; agents only
/// feed the pool total that shares are measured against.
///
/// ```
/// use mesos_alloc::sorter::Sorter;
/// use mesos_core::ids::AgentId;
/// use mesos_core::resources::Resources;
///
/// let agent = AgentId::new("a1");
/// let mut sorter = Sorter::new();
/// sorter.add_agent(&agent, &Resources::parse("cpus:100;mem:100").unwrap());
/// for client in ["a", "b"] {
///     sorter.add(client);
///     sorter.activate(client);
/// }
/// sorter.allocated("a", &agent, &Resources::parse("cpus:5;mem:5").unwrap());
/// sorter.allocated("b", &agent, &Resources::parse("cpus:6;mem:6").unwrap());
/// assert_eq!(sorter.sort(), vec!["a", "b"]);
///
/// let mut random = Sorter::random(7);
/// for client in ["a", "b", "c"] {
///     random.add(client);
///     random.activate(client);
/// }
/// let mut order = random.sort();
/// order.sort();
/// assert_eq!(order, vec!["a", "b", "c"]);
/// ```
#[derive(Debug)]
pub struct Sorter {
    pub(crate) tree: Tree,
    policy: Policy,
}

/// How a sorter orders its tree.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // One per role; boxing would add a pointer hop per sort.
enum Policy {
    /// The tree's fronts are kept in DRF order (`drf`).
    Drf,
    /// A fresh shuffle per sort, into its own list (`random`).
    Random(random::Shuffle),
}

impl Default for Sorter {
    fn default() -> Self {
        Self::new()
    }
}

impl Sorter {
    /// An empty DRF sorter (Mesos' `DRFSorter`).
    pub fn new() -> Self {
        Self::with_kind(SorterKind::Drf, 0)
    }

    /// An empty random sorter whose shuffles are drawn from `seed`.
    pub fn random(seed: u64) -> Self {
        Self::with_kind(SorterKind::Random, seed)
    }

    /// An empty sorter of the given kind (`seed` is only used by the random policy).
    pub fn with_kind(kind: SorterKind, seed: u64) -> Self {
        let policy = match kind {
            SorterKind::Drf => Policy::Drf,
            SorterKind::Random => Policy::Random(random::Shuffle::new(seed)),
        };
        Sorter {
            tree: Tree::new(),
            policy,
        }
    }

    /// The policy in use.
    pub fn kind(&self) -> SorterKind {
        match self.policy {
            Policy::Drf => SorterKind::Drf,
            Policy::Random(_) => SorterKind::Random,
        }
    }

    /// Adds an inactive client; `a/b` creates the internal node `a` if needed. Adding a
    /// client that exists does nothing. Returns the client's handle.
    pub fn add(&mut self, client: &str) -> ClientId {
        self.tree.add(client)
    }

    /// Removes a client and its allocation; an unknown client is ignored.
    pub fn remove(&mut self, client: &str) {
        self.tree.remove(client);
    }

    /// Makes a client eligible to be returned by [`Sorter::sort`].
    pub fn activate(&mut self, client: &str) {
        self.tree.activate(client);
    }

    /// Hides a client from [`Sorter::sort`]; its allocation stays counted.
    pub fn deactivate(&mut self, client: &str) {
        self.tree.deactivate(client);
    }

    /// True when `client` was added and is active.
    pub fn is_active(&self, client: &str) -> bool {
        self.tree.is_active(client)
    }

    /// Sets the weight of the subtree at `path` (the client `path` itself, or the internal node
    /// `path` with everything below it). Applies to nodes created later too.
    pub fn update_weight(&mut self, path: &str, weight: f64) {
        self.tree.update_weight(path, weight);
    }

    /// Adds an agent's scalar resources to the pool that shares are measured against.
    pub fn add_agent(&mut self, agent: &AgentId, total: &Resources) {
        self.tree.add_agent(agent, total);
    }

    /// Removes everything [`Sorter::add_agent`] added for this agent.
    pub fn remove_agent(&mut self, agent: &AgentId) {
        self.tree.remove_agent(agent);
    }

    /// Records resources allocated to a client on an agent (counts one allocation).
    pub fn allocated(&mut self, client: &str, _agent: &AgentId, resources: &Resources) {
        if let Some(id) = self.tree.client_id(client) {
            self.change(id, &tree::scalar_quantities(resources), 1, true);
        }
    }

    /// Records resources taken back from a client (the allocation count stays).
    pub fn unallocated(&mut self, client: &str, _agent: &AgentId, resources: &Resources) {
        if let Some(id) = self.tree.client_id(client) {
            self.change(id, &tree::scalar_quantities(resources), -1, false);
        }
    }

    /// Replaces part of a client's allocation (`old` by `new`), e.g. after a RESERVE.
    pub fn update(&mut self, client: &str, _agent: &AgentId, old: &Resources, new: &Resources) {
        if let Some(id) = self.tree.client_id(client) {
            let delta = tree::delta(old, new);
            // Applied without counting an allocation.
            self.change(id, &delta, 1, false);
        }
    }

    /// The active clients in the policy's order (a fresh shuffle for the random policy).
    pub fn sort(&mut self) -> Vec<String> {
        self.prepare();
        let tree = &self.tree;
        self.order().filter_map(|c| tree.client_path(c)).collect()
    }

    /// True when `client` was added (internal nodes are not clients).
    pub fn contains(&self, client: &str) -> bool {
        self.tree.contains(client)
    }

    /// The number of clients, active or not.
    pub fn count(&self) -> usize {
        self.tree.count()
    }

    /// The client's current dominant share (weight applied), `None` for an unknown client.
    pub fn share(&self, client: &str) -> Option<f64> {
        self.tree.client_node(client).map(|n| self.tree.share(n))
    }

    /// The scalar quantities allocated to a client (or, for `""`, to everyone).
    pub fn allocation(&self, client: &str) -> Option<ResourceQuantities> {
        let node = if client.is_empty() {
            ROOT
        } else {
            self.tree.client_node(client)?
        };
        let mut q = ResourceQuantities::new();
        for (n, v) in self.tree.allocation_of(node) {
            q.add(&n, v);
        }
        Some(q)
    }

    /// The client's handle, for [`Sorter::sorted_ids`].
    pub fn client_id(&self, client: &str) -> Option<ClientId> {
        self.tree.client_id(client)
    }

    /// The active clients in the policy's order as handles, without building strings.
    pub fn sorted_ids(&mut self) -> impl Iterator<Item = ClientId> + '_ {
        self.prepare();
        self.order()
    }

    /// Replaces the pool total (the allocator keeps one cluster total for all its sorters).
    pub(crate) fn set_total(&mut self, q: &[(Name, i64)]) {
        self.tree.set_total(q);
    }

    /// Records an allocation given as scalar quantities, by handle.
    pub(crate) fn change(&mut self, client: ClientId, q: &[(Name, i64)], sign: i64, count: bool) {
        self.tree.change(client, q, sign, count);
        if let Policy::Random(_) = self.policy {
            // The order ignores allocations: nothing to re-place.
            self.tree.stale.clear();
        }
    }

    /// Notes that `client` was seen at position `pos` of the order, a hint for re-placing it
    /// (DRF only; see `drf::hint`).
    pub(crate) fn hint(&mut self, client: ClientId, pos: usize) {
        if let Policy::Drf = self.policy {
            drf::hint(&mut self.tree, client, pos);
        }
    }

    /// The DRF key of the top-level node holding `client` (see `drf::top_key`); `None` for
    /// the random policy.
    pub(crate) fn top_key(&self, client: ClientId) -> Option<(f64, u64)> {
        match self.policy {
            Policy::Drf => drf::top_key(&self.tree, client),
            Policy::Random(_) => None,
        }
    }

    /// Prepares the order (DRF fix-up or a fresh shuffle); then [`Sorter::order`] reads it.
    pub(crate) fn prepare(&mut self) {
        match &mut self.policy {
            Policy::Drf => drf::fix_order(&mut self.tree),
            Policy::Random(s) => s.shuffle(&mut self.tree),
        }
    }

    /// The order prepared by the last [`Sorter::prepare`].
    pub(crate) fn order(&self) -> Order<'_> {
        match &self.policy {
            Policy::Drf => Order::Drf(PreOrder::new(&self.tree)),
            Policy::Random(s) => Order::Random(s.order.iter()),
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
