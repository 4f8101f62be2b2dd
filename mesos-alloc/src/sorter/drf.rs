//! The DRF sorter: clients in order of dominant share, then allocation count, then path.
//!
//! Upstream re-sorts the whole tree whenever it is dirty, and since Mesos 1.7 keeps it sorted
//! on `allocated` by bubbling the changed nodes among their siblings, one swap at a time.
//! Here every change (allocated, unallocated, update) only queues the changed nodes; the next
//! [`DrfSorter::sort`] moves each queued node from its old place to its new one by binary
//! search, and re-sorts everything only when the pool total, a weight or the tree's shape
//! changed. The order is exactly the one a full sort gives, because the key is total
//! (paths are unique) and every other sibling kept its key.

use std::cmp::Ordering;

use mesos_core::ids::AgentId;
use mesos_core::resources::{Name, ResourceQuantities, Resources};

use super::tree::{ClientId, Kind, PreOrder, Tree, ROOT};
use super::Sorter;

/// Dominant Resource Fairness over a hierarchy of clients (Mesos' `DRFSorter`).
///
/// ```
/// use mesos_alloc::sorter::DrfSorter;
/// use mesos_core::ids::AgentId;
/// use mesos_core::resources::Resources;
///
/// let agent = AgentId::new("a1");
/// let mut sorter = DrfSorter::new();
/// sorter.add_agent(&agent, &Resources::parse("cpus:100;mem:100").unwrap());
/// for client in ["a", "b"] {
///     sorter.add(client);
///     sorter.activate(client);
/// }
/// sorter.allocated("a", &agent, &Resources::parse("cpus:5;mem:5").unwrap());
/// sorter.allocated("b", &agent, &Resources::parse("cpus:6;mem:6").unwrap());
/// assert_eq!(sorter.sort(), vec!["a", "b"]);
/// ```
#[derive(Debug, Default)]
pub struct DrfSorter {
    pub(crate) tree: Tree,
}

/// Upstream's `compareDRF`: lower share, then fewer allocations, then smaller path.
/// (The path comparison is on the name's rank among siblings: siblings share the parent's
/// path, so their paths order as their names do.)
fn cmp_key(a: (f64, u64, u32), b: (f64, u64, u32)) -> Ordering {
    if a.0 < b.0 {
        return Ordering::Less;
    }
    if a.0 > b.0 {
        return Ordering::Greater;
    }
    a.1.cmp(&b.1).then(a.2.cmp(&b.2))
}

impl DrfSorter {
    /// An empty sorter.
    pub fn new() -> Self {
        DrfSorter { tree: Tree::new() }
    }

    /// Adds an inactive client; `a/b` creates the internal node `a` if needed. Adding a
    /// client that exists does nothing.
    pub fn add(&mut self, client: &str) {
        self.tree.add(client);
    }

    /// Removes a client and its allocation; an unknown client is ignored.
    pub fn remove(&mut self, client: &str) {
        self.tree.remove(client);
    }

    /// Makes a client eligible to be returned by [`DrfSorter::sort`].
    pub fn activate(&mut self, client: &str) {
        self.tree.activate(client);
    }

    /// Hides a client from [`DrfSorter::sort`]; its allocation stays counted.
    pub fn deactivate(&mut self, client: &str) {
        self.tree.deactivate(client);
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

    /// Removes everything [`DrfSorter::add_agent`] added for this agent.
    pub fn remove_agent(&mut self, agent: &AgentId) {
        self.tree.remove_agent(agent);
    }

    /// Records resources allocated to a client on an agent (counts one allocation).
    pub fn allocated(&mut self, client: &str, _agent: &AgentId, resources: &Resources) {
        self.tree.allocated(client, resources);
    }

    /// Records resources taken back from a client (the allocation count stays).
    pub fn unallocated(&mut self, client: &str, _agent: &AgentId, resources: &Resources) {
        self.tree.unallocated(client, resources);
    }

    /// Replaces part of a client's allocation (`old` by `new`), e.g. after a RESERVE.
    pub fn update(&mut self, client: &str, _agent: &AgentId, old: &Resources, new: &Resources) {
        self.tree.update(client, old, new);
    }

    /// The active clients in DRF order.
    pub fn sort(&mut self) -> Vec<String> {
        self.fix_order();
        let tree = &self.tree;
        PreOrder::new(tree)
            .filter_map(|c| tree.client_path(c))
            .collect()
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

    /// The client's handle, for [`DrfSorter::sorted_ids`].
    pub fn client_id(&self, client: &str) -> Option<ClientId> {
        self.tree.client_id(client)
    }

    /// The active clients in DRF order as handles, without building strings.
    pub fn sorted_ids(&mut self) -> impl Iterator<Item = ClientId> + '_ {
        self.fix_order();
        PreOrder::new(&self.tree)
    }

    /// The sort key (share, allocation count) under which the top-level node holding
    /// `client` is placed among the root's children, as of the last sort.
    pub(crate) fn top_key(&self, client: ClientId) -> Option<(f64, u64)> {
        let mut n = *self.tree.client_node.get(client.index())?;
        if n == u32::MAX {
            return None;
        }
        while self.tree.nodes[n as usize].parent != ROOT {
            n = self.tree.nodes[n as usize].parent;
        }
        let key = self.tree.keys[n as usize];
        Some((key.share, key.count))
    }

    /// Notes that `client` was seen at position `pos` of the sorted order (a hint for its
    /// next re-placement; in a flat tree that is its place among the root's children).
    pub(crate) fn hint(&mut self, client: ClientId, pos: usize) {
        if let Some(&n) = self.tree.client_node.get(client.index()) {
            if let (Some(node), Ok(pos)) = (self.tree.nodes.get_mut(n as usize), u32::try_from(pos))
            {
                node.hint = pos;
            }
        }
    }

    /// Records an allocation given as scalar quantities, by handle.
    pub(crate) fn change(&mut self, client: ClientId, q: &[(Name, i64)], sign: i64, count: bool) {
        self.tree.change(client, q, sign, count);
    }

    /// Brings the tree into DRF order: a full re-sort when dirty, otherwise re-places the
    /// nodes whose allocation changed since the last sort.
    pub(crate) fn fix_order(&mut self) {
        if self.tree.dirty {
            for &n in &self.tree.stale {
                self.tree.nodes[n as usize].stale = false;
            }
            self.tree.stale.clear();
            self.sort_subtree(ROOT);
            self.tree.dirty = false;
            return;
        }
        if self.tree.stale.is_empty() {
            return;
        }
        let stale = std::mem::take(&mut self.tree.stale);
        for &n in &stale {
            let node = &mut self.tree.nodes[n as usize];
            if !node.stale {
                continue;
            }
            node.stale = false;
            if !node.live || node.kind == Kind::InactiveLeaf {
                continue;
            }
            self.replace(n);
        }
        let mut stale = stale;
        stale.clear();
        self.tree.stale = stale;
    }

    fn key(&self, n: u32) -> (f64, u64, u32) {
        let k = self.tree.keys[n as usize];
        (k.share, k.count, k.rank)
    }

    /// Ranks a node's children by name (after its set of children changed).
    fn rank_children(&mut self, node: u32) {
        if !self.tree.nodes[node as usize].ranks_stale {
            return;
        }
        let mut children = self.tree.nodes[node as usize].children.to_vec();
        let nodes = &self.tree.nodes;
        children.sort_by(|&a, &b| nodes[a as usize].name.cmp(&nodes[b as usize].name));
        for (rank, c) in children.into_iter().enumerate() {
            self.tree.keys[c as usize].rank = rank as u32;
        }
        self.tree.nodes[node as usize].ranks_stale = false;
    }

    /// Moves one node of a sorted front to where its new key belongs.
    fn replace(&mut self, n: u32) {
        let parent = self.tree.nodes[n as usize].parent;
        let front_len = self.tree.nodes[parent as usize].n_front as usize;
        let old = self.key(n);
        let hint = std::mem::replace(&mut self.tree.nodes[n as usize].hint, u32::MAX) as usize;
        let front = &self.tree.nodes[parent as usize].children[..front_len];
        let pos = if front.get(hint) == Some(&n) {
            hint
        } else {
            match front.binary_search_by(|&c| cmp_key(self.key(c), old)) {
                Ok(p) if front[p] == n => p,
                _ => match front.iter().position(|&c| c == n) {
                    Some(p) => p,
                    None => return,
                },
            }
        };
        let share = self.tree.share(n);
        let count = self.tree.nodes[n as usize].count;
        let key = &mut self.tree.keys[n as usize];
        key.share = share;
        key.count = count;
        let new = self.key(n);
        let front = &self.tree.nodes[parent as usize].children[..front_len];
        // Where `n` goes among the others (its own slot excluded).
        let left = &front[..pos];
        let right = &front[pos + 1..];
        let target = if pos > 0 && cmp_key(new, self.key(left[pos - 1])) == Ordering::Less {
            left.partition_point(|&c| cmp_key(self.key(c), new) == Ordering::Less)
        } else if !right.is_empty() && cmp_key(self.key(right[0]), new) == Ordering::Less {
            pos + right.partition_point(|&c| cmp_key(self.key(c), new) == Ordering::Less)
        } else {
            pos
        };
        self.tree.nodes[parent as usize]
            .children
            .move_to(pos, target);
    }

    fn sort_subtree(&mut self, node: u32) {
        self.rank_children(node);
        let front_len = self.tree.nodes[node as usize].n_front as usize;
        let mut front: Vec<u32> = self.tree.nodes[node as usize].children[..front_len].to_vec();
        for &c in &front {
            let share = self.tree.share(c);
            let count = self.tree.nodes[c as usize].count;
            let key = &mut self.tree.keys[c as usize];
            key.share = share;
            key.count = count;
        }
        front.sort_by(|&a, &b| cmp_key(self.key(a), self.key(b)));
        self.tree.nodes[node as usize].children[..front_len].copy_from_slice(&front);
        for c in front {
            if self.tree.nodes[c as usize].kind == Kind::Internal {
                self.sort_subtree(c);
            }
        }
    }
}

impl Sorter for DrfSorter {
    fn add(&mut self, client: &str) {
        DrfSorter::add(self, client)
    }
    fn remove(&mut self, client: &str) {
        DrfSorter::remove(self, client)
    }
    fn activate(&mut self, client: &str) {
        DrfSorter::activate(self, client)
    }
    fn deactivate(&mut self, client: &str) {
        DrfSorter::deactivate(self, client)
    }
    fn update_weight(&mut self, path: &str, weight: f64) {
        DrfSorter::update_weight(self, path, weight)
    }
    fn add_agent(&mut self, agent: &AgentId, total: &Resources) {
        DrfSorter::add_agent(self, agent, total)
    }
    fn remove_agent(&mut self, agent: &AgentId) {
        DrfSorter::remove_agent(self, agent)
    }
    fn allocated(&mut self, client: &str, agent: &AgentId, resources: &Resources) {
        DrfSorter::allocated(self, client, agent, resources)
    }
    fn unallocated(&mut self, client: &str, agent: &AgentId, resources: &Resources) {
        DrfSorter::unallocated(self, client, agent, resources)
    }
    fn update(&mut self, client: &str, agent: &AgentId, old: &Resources, new: &Resources) {
        DrfSorter::update(self, client, agent, old, new)
    }
    fn sort(&mut self) -> Vec<String> {
        DrfSorter::sort(self)
    }
    fn contains(&self, client: &str) -> bool {
        DrfSorter::contains(self, client)
    }
    fn count(&self) -> usize {
        DrfSorter::count(self)
    }
}
