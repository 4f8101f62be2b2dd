//! The random policy (Mesos' `--role_sorter=random`): a weighted shuffle, done level by level.
//!
//! At every internal node each child that can be returned (an active leaf, or an internal node
//! with an active leaf below it) draws `-(u ^ (1 / weight))` with `u` uniform in `[0, 1)`, and
//! children are visited in ascending key order, so a child of weight `w` comes first with
//! probability proportional to `w`. Allocations are tracked (for introspection) but never
//! influence the order. The randomness comes from a seed, so a run can be replayed.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::tree::{ClientId, Kind, Tree, ROOT};

/// The shuffle's generator and the order it drew last.
#[derive(Debug)]
pub(super) struct Shuffle {
    rng: ChaCha8Rng,
    /// The order drawn by the last [`Shuffle::shuffle`].
    pub(super) order: Vec<ClientId>,
    keys: Vec<(f64, u32)>,
}

impl Shuffle {
    pub(super) fn new(seed: u64) -> Self {
        Shuffle {
            rng: ChaCha8Rng::seed_from_u64(seed),
            order: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Draws a new order of the tree's active clients into `self.order`.
    pub(super) fn shuffle(&mut self, tree: &mut Tree) {
        self.order.clear();
        for n in std::mem::take(&mut tree.stale) {
            tree.nodes[n as usize].stale = false;
        }
        tree.dirty = false;
        self.shuffle_node(tree, ROOT);
    }

    fn shuffle_node(&mut self, tree: &Tree, node: u32) {
        let start = self.keys.len();
        let n_front = tree.nodes[node as usize].n_front as usize;
        for i in 0..n_front {
            let c = tree.nodes[node as usize].children[i];
            if takes_part(tree, c) {
                let u: f64 = self.rng.gen();
                let w = tree.nodes[c as usize].weight;
                self.keys.push((-(u.powf(1.0 / w)), c));
            }
        }
        self.keys[start..].sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mine: Vec<u32> = self.keys[start..].iter().map(|k| k.1).collect();
        self.keys.truncate(start);
        for c in mine {
            let child = &tree.nodes[c as usize];
            if child.kind == Kind::ActiveLeaf {
                self.order.push(ClientId(child.client));
            } else {
                self.shuffle_node(tree, c);
            }
        }
    }
}

/// True when the node can be returned: an active leaf, or an internal node with one below.
fn takes_part(tree: &Tree, node: u32) -> bool {
    match tree.nodes[node as usize].kind {
        Kind::ActiveLeaf => true,
        Kind::InactiveLeaf => false,
        Kind::Internal => {
            let n = &tree.nodes[node as usize];
            n.children[..n.n_front as usize]
                .iter()
                .any(|&c| takes_part(tree, c))
        }
    }
}
