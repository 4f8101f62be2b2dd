//! The client tree under every sorter policy: hierarchical client paths, weights per subtree,
//! allocations summed up the tree, and the pool total that shares are measured against.
//!
//! Layout follows Mesos' sorter (`sorter/drf/sorter.cpp`): the root is an internal node with
//! path `""`; a client `a/b` is a leaf under internal node `a`; when a client is also the
//! prefix of another client, its node becomes internal and the client moves to a virtual
//! child named `.`. Each internal node keeps its children partitioned: active leaves and
//! internal nodes first (the *front*), inactive leaves last. The DRF policy keeps the front
//! sorted; the random policy ignores its order.
//!
//! Nodes live in an arena indexed by `u32` and clients get stable [`ClientId`]s, so the
//! allocator's hot loop handles integers, never strings.

use mesos_core::ids::AgentId;
use mesos_core::resources::{Name, Resources, Scalar, Value};

use crate::hash::FxHashMap;

pub(crate) const ROOT: u32 = 0;
const NONE: u32 = u32::MAX;

/// A client's handle inside one sorter, stable from `add` to `remove`. Handles of removed
/// clients are reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(pub(crate) u32);

impl ClientId {
    /// The handle as a dense index (handles are allocated from 0 upwards).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    ActiveLeaf,
    InactiveLeaf,
    Internal,
}

#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) name: Box<str>,
    pub(crate) path: Box<str>,
    pub(crate) kind: Kind,
    pub(crate) parent: u32,
    /// Front (`..n_front`): active leaves and internal nodes; back: inactive leaves.
    pub(crate) children: Children,
    pub(crate) n_front: u32,
    pub(crate) weight: f64,
    /// Number of `allocated` calls on this node or below (never decremented, as upstream).
    pub(crate) count: u64,
    /// Allocated scalar quantities in thousandths, indexed by the tree's name slots.
    pub(crate) alloc: Vec<i64>,
    pub(crate) client: u32,
    /// The children changed since their ranks were computed.
    pub(crate) ranks_stale: bool,
    /// Where the node probably sits among its siblings (a caller saw it there while
    /// iterating), sparing the search when it is re-placed; checked before use.
    pub(crate) hint: u32,
    /// Queued for re-placement at the next sort.
    pub(crate) stale: bool,
    pub(crate) live: bool,
}

impl Node {
    fn is_leaf(&self) -> bool {
        self.kind != Kind::Internal
    }
}

/// A node's children in order: a vector whose start can move, so that moving a child from
/// near the front to near the back (the DRF sorter's common case: the client just served
/// goes behind every client it now exceeds) shifts the few children outside the move
/// instead of all those inside it.
#[derive(Debug, Default)]
pub(crate) struct Children {
    /// The children are `buf[head..]`; `buf[..head]` is spare room left by moves.
    buf: Vec<u32>,
    head: usize,
}

impl std::ops::Deref for Children {
    type Target = [u32];
    fn deref(&self) -> &[u32] {
        &self.buf[self.head..]
    }
}

impl std::ops::DerefMut for Children {
    fn deref_mut(&mut self) -> &mut [u32] {
        &mut self.buf[self.head..]
    }
}

impl Children {
    pub(crate) fn new() -> Self {
        Children::default()
    }

    pub(crate) fn insert(&mut self, i: usize, child: u32) {
        if i == 0 && self.head > 0 {
            self.head -= 1;
            self.buf[self.head] = child;
        } else {
            self.buf.insert(self.head + i, child);
        }
    }

    pub(crate) fn push(&mut self, child: u32) {
        self.buf.push(child);
    }

    pub(crate) fn remove(&mut self, i: usize) -> u32 {
        self.buf.remove(self.head + i)
    }

    /// Moves the child at `from` to index `to`, the others keeping their order.
    pub(crate) fn move_to(&mut self, from: usize, to: usize) {
        if to < from {
            self[to..=from].rotate_right(1);
            return;
        }
        if to == from {
            return;
        }
        let len = self.len();
        // Either rotate `from..=to` (`to - from` values move), or shift the `from` values
        // before it one step into the spare room at the start and the `len - 1 - to` values
        // after `to` one step towards the end.
        if from + (len - 1 - to) >= to - from {
            self[from..=to].rotate_left(1);
            return;
        }
        let child = self[from];
        let h = self.head;
        self.buf.copy_within(h..h + from, h + 1);
        self.head += 1;
        self.buf.insert(self.head + to, child);
        // Give the spare room back once it is as large as the list (amortised: one shift of
        // the list per `len` moves).
        if self.head >= self.len().max(16) {
            self.buf.drain(..self.head);
            self.head = 0;
        }
    }
}

/// Scalar quantities keyed by name, the only thing shares look at.
pub(crate) type Quantities = Vec<(Name, i64)>;

/// The scalar quantities of `resources`, merged by name (ranges and sets are ignored, as in
/// upstream's shares).
pub(crate) fn scalar_quantities(resources: &Resources) -> Quantities {
    let mut out: Quantities = Vec::with_capacity(4);
    for r in resources {
        if let Value::Scalar(s) = &r.value {
            match out.iter_mut().find(|(n, _)| *n == r.name) {
                Some((_, v)) => *v += s.millis(),
                None => out.push((r.name.clone(), s.millis())),
            }
        }
    }
    out
}

/// `new - old` per scalar name (what an update changes in an allocation).
pub(crate) fn delta(old: &Resources, new: &Resources) -> Quantities {
    let mut delta = scalar_quantities(new);
    for (n, v) in scalar_quantities(old) {
        match delta.iter_mut().find(|(m, _)| *m == n) {
            Some((_, w)) => *w -= v,
            None => delta.push((n, -v)),
        }
    }
    delta
}

/// The sorter's tree. See the module documentation.
#[derive(Debug)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node>,
    free_nodes: Vec<u32>,
    /// Client id -> leaf node (`NONE` for a free id).
    pub(crate) client_node: Vec<u32>,
    free_clients: Vec<u32>,
    client_by_path: FxHashMap<Box<str>, u32>,
    node_by_path: FxHashMap<Box<str>, u32>,
    weights: FxHashMap<String, f64>,
    /// Resource names seen so far; slot `i` of every `alloc` vector is `names[i]`.
    names: Vec<Name>,
    total: Vec<i64>,
    /// `total` as Mesos' doubles, cached for share computation.
    pub(crate) total_f: Vec<f64>,
    agents: FxHashMap<AgentId, Quantities>,
    /// Every share must be recomputed at the next sort (the pool or the structure changed).
    pub(crate) dirty: bool,
    /// Nodes whose allocation changed since the last sort, to be re-placed one by one.
    pub(crate) stale: Vec<u32>,
    /// Per node, the DRF key it was last placed under among its siblings. Kept apart from
    /// the nodes so the binary searches of a re-placement read one dense array.
    pub(crate) keys: Vec<SortKey>,
}

/// Where a node sits among its siblings: (share, allocation count, name rank). Siblings
/// share their parent's path, so ranking names orders their paths.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct SortKey {
    pub(crate) share: f64,
    pub(crate) count: u64,
    pub(crate) rank: u32,
}

impl Default for Tree {
    fn default() -> Self {
        Self::new()
    }
}

impl Tree {
    pub(crate) fn new() -> Self {
        let root = Node {
            name: "".into(),
            path: "".into(),
            kind: Kind::Internal,
            parent: NONE,
            children: Children::new(),
            n_front: 0,
            weight: 1.0,
            count: 0,
            alloc: Vec::new(),
            client: NONE,
            ranks_stale: false,
            hint: NONE,
            stale: false,
            live: true,
        };
        Tree {
            nodes: vec![root],
            free_nodes: Vec::new(),
            client_node: Vec::new(),
            free_clients: Vec::new(),
            client_by_path: FxHashMap::default(),
            node_by_path: FxHashMap::default(),
            weights: FxHashMap::default(),
            names: Vec::new(),
            total: Vec::new(),
            total_f: Vec::new(),
            agents: FxHashMap::default(),
            dirty: false,
            stale: Vec::new(),
            keys: vec![SortKey::default()],
        }
    }

    fn new_node(&mut self, name: &str, kind: Kind, parent: u32) -> u32 {
        let parent_path = &self.nodes[parent as usize].path;
        let path: Box<str> = if parent == ROOT {
            name.into()
        } else {
            format!("{parent_path}/{name}").into()
        };
        // The virtual leaf `a/.` never carries a weight: `a`'s weight is its subtree's.
        let weight = if name == "." {
            1.0
        } else {
            self.weights.get(&*path).copied().unwrap_or(1.0)
        };
        let node = Node {
            name: name.into(),
            path: path.clone(),
            kind,
            parent,
            children: Children::new(),
            n_front: 0,
            weight,
            count: 0,
            alloc: Vec::new(),
            client: NONE,
            ranks_stale: false,
            hint: NONE,
            stale: false,
            live: true,
        };
        let idx = match self.free_nodes.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                self.keys[i as usize] = SortKey::default();
                i
            }
            None => {
                self.nodes.push(node);
                self.keys.push(SortKey::default());
                (self.nodes.len() - 1) as u32
            }
        };
        self.node_by_path.insert(path, idx);
        idx
    }

    fn free_node(&mut self, idx: u32) {
        let node = &mut self.nodes[idx as usize];
        node.live = false;
        node.stale = false;
        node.children = Children::new();
        node.alloc = Vec::new();
        let path = std::mem::take(&mut node.path);
        self.node_by_path.remove(&path);
        self.free_nodes.push(idx);
    }

    fn add_child(&mut self, parent: u32, child: u32) {
        let front = self.nodes[child as usize].kind != Kind::InactiveLeaf;
        let p = &mut self.nodes[parent as usize];
        p.ranks_stale = true;
        if front {
            p.children.insert(0, child);
            p.n_front += 1;
        } else {
            p.children.push(child);
        }
    }

    fn remove_child(&mut self, parent: u32, child: u32) {
        let p = &mut self.nodes[parent as usize];
        if let Some(pos) = p.children.iter().position(|&c| c == child) {
            if (pos as u32) < p.n_front {
                p.n_front -= 1;
            }
            p.children.remove(pos);
        }
    }

    fn set_client(&mut self, node: u32, client: u32) {
        self.nodes[node as usize].client = client;
        if client != NONE {
            self.client_node[client as usize] = node;
        }
    }

    /// Adds an inactive client at `path` (like `mkdir -p`). A client that exists is left alone.
    pub(crate) fn add(&mut self, path: &str) -> ClientId {
        if let Some(&c) = self.client_by_path.get(path) {
            return ClientId(c);
        }
        let tokens: Vec<&str> = path.split('/').collect();
        let mut cur = ROOT;
        let mut i = 0;
        loop {
            if i == tokens.len() {
                // The path names an internal node: the client becomes its `.` leaf.
                let virt = self.new_node(".", Kind::InactiveLeaf, cur);
                self.add_child(cur, virt);
                cur = virt;
                break;
            }
            if cur != ROOT && self.nodes[cur as usize].is_leaf() {
                // A leaf gets a child: it turns internal and its client moves to `.`.
                let old_kind = self.nodes[cur as usize].kind;
                let parent = self.nodes[cur as usize].parent;
                self.remove_child(parent, cur);
                self.nodes[cur as usize].kind = Kind::Internal;
                self.add_child(parent, cur);
                let virt = self.new_node(".", old_kind, cur);
                let (alloc, count) = {
                    let n = &self.nodes[cur as usize];
                    (n.alloc.clone(), n.count)
                };
                self.nodes[virt as usize].alloc = alloc;
                self.nodes[virt as usize].count = count;
                let client = self.nodes[cur as usize].client;
                self.nodes[cur as usize].client = NONE;
                self.set_client(virt, client);
                self.add_child(cur, virt);
                break;
            }
            let prefix = tokens[..=i].join("/");
            match self.node_by_path.get(prefix.as_str()) {
                Some(&child) => {
                    cur = child;
                    i += 1;
                }
                None => break,
            }
        }
        while i < tokens.len() {
            let kind = if i + 1 == tokens.len() {
                Kind::InactiveLeaf
            } else {
                Kind::Internal
            };
            let child = self.new_node(tokens[i], kind, cur);
            self.add_child(cur, child);
            cur = child;
            i += 1;
        }
        let id = match self.free_clients.pop() {
            Some(c) => c,
            None => {
                self.client_node.push(NONE);
                (self.client_node.len() - 1) as u32
            }
        };
        self.set_client(cur, id);
        self.client_by_path.insert(path.into(), id);
        self.dirty = true;
        ClientId(id)
    }

    /// Removes a client; its allocation leaves its ancestors, empty internal nodes go, and a
    /// node left with only its `.` child turns back into a leaf.
    pub(crate) fn remove(&mut self, path: &str) -> bool {
        let Some(id) = self.client_by_path.remove(path) else {
            return false;
        };
        let leaf = self.client_node[id as usize];
        self.client_node[id as usize] = NONE;
        self.free_clients.push(id);
        let leaf_alloc = self.nodes[leaf as usize].alloc.clone();
        let mut cur = leaf;
        while cur != ROOT {
            let parent = self.nodes[cur as usize].parent;
            sub_into(&mut self.nodes[parent as usize].alloc, &leaf_alloc);
            let n_children = self.nodes[cur as usize].children.len();
            if n_children == 0 {
                self.remove_child(parent, cur);
                self.free_node(cur);
            } else if n_children == 1 {
                let child = self.nodes[cur as usize].children[0];
                if &*self.nodes[child as usize].name == "." {
                    let kind = self.nodes[child as usize].kind;
                    let client = self.nodes[child as usize].client;
                    self.remove_child(cur, child);
                    self.free_node(child);
                    self.remove_child(parent, cur);
                    self.nodes[cur as usize].kind = kind;
                    self.add_child(parent, cur);
                    self.set_client(cur, client);
                }
            }
            cur = parent;
        }
        self.dirty = true;
        true
    }

    pub(crate) fn client_node(&self, path: &str) -> Option<u32> {
        self.client_by_path
            .get(path)
            .map(|&c| self.client_node[c as usize])
    }

    pub(crate) fn client_id(&self, path: &str) -> Option<ClientId> {
        self.client_by_path.get(path).map(|&c| ClientId(c))
    }

    /// The client path of a client id.
    pub(crate) fn client_path(&self, id: ClientId) -> Option<String> {
        let node = *self.client_node.get(id.index())?;
        if node == NONE {
            return None;
        }
        Some(self.node_client_path(node))
    }

    pub(crate) fn node_client_path(&self, node: u32) -> String {
        let n = &self.nodes[node as usize];
        if &*n.name == "." {
            self.nodes[n.parent as usize].path.to_string()
        } else {
            n.path.to_string()
        }
    }

    pub(crate) fn activate(&mut self, path: &str) {
        let Some(node) = self.client_node(path) else {
            return;
        };
        if self.nodes[node as usize].kind == Kind::InactiveLeaf {
            let parent = self.nodes[node as usize].parent;
            self.remove_child(parent, node);
            self.nodes[node as usize].kind = Kind::ActiveLeaf;
            self.add_child(parent, node);
            self.dirty = true;
        }
    }

    pub(crate) fn deactivate(&mut self, path: &str) {
        let Some(node) = self.client_node(path) else {
            return;
        };
        if self.nodes[node as usize].kind == Kind::ActiveLeaf {
            let parent = self.nodes[node as usize].parent;
            self.remove_child(parent, node);
            self.nodes[node as usize].kind = Kind::InactiveLeaf;
            self.add_child(parent, node);
        }
    }

    pub(crate) fn is_active(&self, path: &str) -> bool {
        self.client_node(path)
            .is_some_and(|n| self.nodes[n as usize].kind == Kind::ActiveLeaf)
    }

    /// Sets the weight of the subtree `path`, now or when it appears.
    pub(crate) fn update_weight(&mut self, path: &str, weight: f64) {
        self.weights.insert(path.to_string(), weight);
        if let Some(&node) = self.node_by_path.get(path) {
            self.nodes[node as usize].weight = weight;
        }
        self.dirty = true;
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        self.client_by_path.contains_key(path)
    }

    pub(crate) fn count(&self) -> usize {
        self.client_by_path.len()
    }

    fn slot(&mut self, name: &Name) -> usize {
        match self.names.iter().position(|n| n == name) {
            Some(i) => i,
            None => {
                self.names.push(name.clone());
                self.total.push(0);
                self.total_f.push(0.0);
                self.names.len() - 1
            }
        }
    }

    fn slots_of(&mut self, q: &[(Name, i64)]) -> Vec<(usize, i64)> {
        q.iter().map(|(n, v)| (self.slot(n), *v)).collect()
    }

    fn refresh_total_f(&mut self) {
        for (f, t) in self.total_f.iter_mut().zip(&self.total) {
            *f = Scalar::from_millis(*t).as_f64();
        }
    }

    pub(crate) fn add_agent(&mut self, agent: &AgentId, resources: &Resources) {
        let q = scalar_quantities(resources);
        for (slot, v) in self.slots_of(&q) {
            self.total[slot] += v;
        }
        let entry = self.agents.entry(agent.clone()).or_default();
        for (n, v) in q {
            match entry.iter_mut().find(|(m, _)| *m == n) {
                Some((_, w)) => *w += v,
                None => entry.push((n, v)),
            }
        }
        self.refresh_total_f();
        self.dirty = true;
    }

    pub(crate) fn remove_agent(&mut self, agent: &AgentId) {
        if let Some(q) = self.agents.remove(agent) {
            for (slot, v) in self.slots_of(&q) {
                self.total[slot] -= v;
            }
            self.refresh_total_f();
            self.dirty = true;
        }
    }

    /// Replaces the pool total (the allocator keeps one cluster total for all its sorters).
    pub(crate) fn set_total(&mut self, q: &[(Name, i64)]) {
        for t in &mut self.total {
            *t = 0;
        }
        for (slot, v) in self.slots_of(q) {
            self.total[slot] += v;
        }
        self.refresh_total_f();
        self.dirty = true;
    }

    /// Adds (`sign = 1`, counting one allocation) or subtracts (`sign = -1`) quantities along
    /// the path from the client to the root, queueing changed nodes for re-placement.
    pub(crate) fn change(&mut self, client: ClientId, q: &[(Name, i64)], sign: i64, count: bool) {
        let Some(&leaf) = self.client_node.get(client.index()) else {
            return;
        };
        if leaf == NONE {
            return;
        }
        let mut slots = [(0usize, 0i64); 8];
        let mut n = 0;
        let spill;
        let slots: &[(usize, i64)] = if q.len() <= slots.len() {
            for (name, v) in q {
                slots[n] = (self.slot(name), *v * sign);
                n += 1;
            }
            &slots[..n]
        } else {
            spill = self
                .slots_of(q)
                .into_iter()
                .map(|(s, v)| (s, v * sign))
                .collect::<Vec<_>>();
            &spill
        };
        let mut cur = leaf;
        loop {
            let node = &mut self.nodes[cur as usize];
            for &(slot, v) in slots {
                if node.alloc.len() <= slot {
                    node.alloc.resize(slot + 1, 0);
                }
                node.alloc[slot] = (node.alloc[slot] + v).max(0);
            }
            if count {
                node.count += 1;
            }
            if cur == ROOT {
                break;
            }
            if !node.stale && node.kind != Kind::InactiveLeaf {
                node.stale = true;
                self.stale.push(cur);
            }
            cur = node.parent;
        }
    }

    /// A node's allocation as quantities.
    pub(crate) fn allocation_of(&self, node: u32) -> Vec<(Name, Scalar)> {
        let n = &self.nodes[node as usize];
        self.names
            .iter()
            .zip(n.alloc.iter())
            .filter(|(_, v)| **v > 0)
            .map(|(name, v)| (name.clone(), Scalar::from_millis(*v)))
            .collect()
    }

    /// Upstream's dominant share: the largest `allocated / total` over the pool's scalars
    /// (in f64, each side as Mesos' doubles), divided by the node's weight.
    pub(crate) fn share(&self, node: u32) -> f64 {
        let n = &self.nodes[node as usize];
        let mut share = 0.0f64;
        for (slot, &a) in n.alloc.iter().enumerate() {
            let total = self.total_f[slot];
            if total > 0.0 && a > 0 {
                let s = Scalar::from_millis(a).as_f64() / total;
                if share < s {
                    share = s;
                }
            }
        }
        share / n.weight
    }
}

fn sub_into(into: &mut Vec<i64>, what: &[i64]) {
    if into.len() < what.len() {
        into.resize(what.len(), 0);
    }
    for (a, b) in into.iter_mut().zip(what) {
        *a = (*a - *b).max(0);
    }
}

/// Pre-order walk over active leaves, stopping at each node's first inactive leaf.
/// The walk's stack lives inline for trees up to 16 levels deep, so sorting allocates nothing.
pub(crate) struct PreOrder<'a> {
    tree: &'a Tree,
    inline: [(u32, u32); 16],
    len: usize,
    spill: Vec<(u32, u32)>,
}

impl<'a> PreOrder<'a> {
    pub(crate) fn new(tree: &'a Tree) -> Self {
        let mut inline = [(0, 0); 16];
        inline[0] = (ROOT, 0);
        PreOrder {
            tree,
            inline,
            len: 1,
            spill: Vec::new(),
        }
    }

    fn push(&mut self, node: u32) {
        if self.len < self.inline.len() {
            self.inline[self.len] = (node, 0);
            self.len += 1;
        } else {
            self.spill.push((node, 0));
        }
    }

    fn top(&mut self) -> Option<&mut (u32, u32)> {
        if let Some(t) = self.spill.last_mut() {
            return Some(t);
        }
        if self.len == 0 {
            None
        } else {
            Some(&mut self.inline[self.len - 1])
        }
    }

    fn pop(&mut self) {
        if self.spill.pop().is_none() {
            self.len -= 1;
        }
    }
}

impl Iterator for PreOrder<'_> {
    type Item = ClientId;

    fn next(&mut self) -> Option<ClientId> {
        loop {
            let tree = self.tree;
            let (node, idx) = self.top()?;
            let n = &tree.nodes[*node as usize];
            if *idx >= n.n_front {
                self.pop();
                continue;
            }
            let child = n.children[*idx as usize];
            *idx += 1;
            let c = &tree.nodes[child as usize];
            match c.kind {
                Kind::ActiveLeaf => return Some(ClientId(c.client)),
                Kind::Internal => self.push(child),
                Kind::InactiveLeaf => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Children;
    use proptest::prelude::*;

    #[derive(Clone, Debug)]
    enum Op {
        Move(usize, usize),
        InsertFront,
        Insert(usize),
        Push,
        Remove(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0usize..64, 0usize..64).prop_map(|(a, b)| Op::Move(a, b)),
            // The common move: the front to near the back.
            6 => (0usize..4).prop_map(|b| Op::Move(0, usize::MAX - b)),
            1 => Just(Op::InsertFront),
            1 => (0usize..64).prop_map(Op::Insert),
            1 => Just(Op::Push),
            1 => (0usize..64).prop_map(Op::Remove),
        ]
    }

    proptest! {
        /// Children behave as a plain vector whatever the moves do with the spare room.
        #[test]
        fn children_match_a_vector(
            n in 0usize..40,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let mut c = Children::new();
            let mut v: Vec<u32> = Vec::new();
            for i in 0..n as u32 {
                c.push(i);
                v.push(i);
            }
            let mut next = n as u32;
            for op in ops {
                let len = v.len();
                match op {
                    Op::Move(a, b) if len > 0 => {
                        let (from, to) = (a % len, (b % len).min(len - 1));
                        let to = if b >= usize::MAX - 4 { len - 1 - (usize::MAX - b).min(len - 1) } else { to };
                        c.move_to(from, to);
                        let x = v.remove(from);
                        v.insert(to, x);
                    }
                    Op::Move(..) => {}
                    Op::InsertFront => {
                        c.insert(0, next);
                        v.insert(0, next);
                        next += 1;
                    }
                    Op::Insert(i) => {
                        let i = i % (len + 1);
                        c.insert(i, next);
                        v.insert(i, next);
                        next += 1;
                    }
                    Op::Push => {
                        c.push(next);
                        v.push(next);
                        next += 1;
                    }
                    Op::Remove(i) if len > 0 => {
                        prop_assert_eq!(c.remove(i % len), v.remove(i % len));
                    }
                    Op::Remove(_) => {}
                }
                prop_assert_eq!(&c[..], &v[..]);
            }
        }
    }
}
