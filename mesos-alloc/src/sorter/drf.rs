//! The DRF policy: clients in order of dominant share, then allocation count, then path.
//!
//! Upstream re-sorts the whole tree whenever it is dirty, and since Mesos 1.7 keeps it sorted
//! on `allocated` by bubbling the changed nodes among their siblings, one swap at a time.
//! Here every change (allocated, unallocated, update) only queues the changed nodes; the next
//! [`fix_order`] moves each queued node from its old place to its new one by binary search,
//! and re-sorts everything only when the pool total, a weight or the tree's shape changed.
//! The order is exactly the one a full sort gives, because the key is total (paths are
//! unique) and every other sibling kept its key.

use std::cmp::Ordering;

use super::tree::{ClientId, Kind, Tree, ROOT};

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

/// The sort key (share, allocation count) under which the top-level node holding `client`
/// is placed among the root's children, as of the last sort.
pub(super) fn top_key(tree: &Tree, client: ClientId) -> Option<(f64, u64)> {
    let mut n = *tree.client_node.get(client.index())?;
    if n == u32::MAX {
        return None;
    }
    while tree.nodes[n as usize].parent != ROOT {
        n = tree.nodes[n as usize].parent;
    }
    let key = tree.keys[n as usize];
    Some((key.share, key.count))
}

/// Notes that `client` was seen at position `pos` of the sorted order (a hint for its next
/// re-placement; in a flat tree that is its place among the root's children).
pub(super) fn hint(tree: &mut Tree, client: ClientId, pos: usize) {
    if let Some(&n) = tree.client_node.get(client.index()) {
        if let (Some(node), Ok(pos)) = (tree.nodes.get_mut(n as usize), u32::try_from(pos)) {
            node.hint = pos;
        }
    }
}

/// Brings the tree into DRF order: a full re-sort when dirty, otherwise re-places the nodes
/// whose allocation changed since the last sort.
pub(super) fn fix_order(tree: &mut Tree) {
    if tree.dirty {
        for &n in &tree.stale {
            tree.nodes[n as usize].stale = false;
        }
        tree.stale.clear();
        sort_subtree(tree, ROOT);
        tree.dirty = false;
        return;
    }
    if tree.stale.is_empty() {
        return;
    }
    let mut stale = std::mem::take(&mut tree.stale);
    for &n in &stale {
        let node = &mut tree.nodes[n as usize];
        if !node.stale {
            continue;
        }
        node.stale = false;
        if !node.live || node.kind == Kind::InactiveLeaf {
            continue;
        }
        replace(tree, n);
    }
    stale.clear();
    tree.stale = stale;
}

fn key(tree: &Tree, n: u32) -> (f64, u64, u32) {
    let k = tree.keys[n as usize];
    (k.share, k.count, k.rank)
}

/// Ranks a node's children by name (after its set of children changed).
fn rank_children(tree: &mut Tree, node: u32) {
    if !tree.nodes[node as usize].ranks_stale {
        return;
    }
    let mut children = tree.nodes[node as usize].children.to_vec();
    let nodes = &tree.nodes;
    children.sort_by(|&a, &b| nodes[a as usize].name.cmp(&nodes[b as usize].name));
    for (rank, c) in children.into_iter().enumerate() {
        tree.keys[c as usize].rank = rank as u32;
    }
    tree.nodes[node as usize].ranks_stale = false;
}

/// Moves one node of a sorted front to where its new key belongs.
fn replace(tree: &mut Tree, n: u32) {
    let parent = tree.nodes[n as usize].parent;
    let front_len = tree.nodes[parent as usize].n_front as usize;
    let old = key(tree, n);
    let hint = std::mem::replace(&mut tree.nodes[n as usize].hint, u32::MAX) as usize;
    let front = &tree.nodes[parent as usize].children[..front_len];
    let pos = if front.get(hint) == Some(&n) {
        hint
    } else {
        match front.binary_search_by(|&c| cmp_key(key(tree, c), old)) {
            Ok(p) if front[p] == n => p,
            _ => match front.iter().position(|&c| c == n) {
                Some(p) => p,
                None => return,
            },
        }
    };
    let share = tree.share(n);
    let count = tree.nodes[n as usize].count;
    let k = &mut tree.keys[n as usize];
    k.share = share;
    k.count = count;
    let new = key(tree, n);
    let front = &tree.nodes[parent as usize].children[..front_len];
    // Where `n` goes among the others (its own slot excluded).
    let left = &front[..pos];
    let right = &front[pos + 1..];
    let target = if pos > 0 && cmp_key(new, key(tree, left[pos - 1])) == Ordering::Less {
        left.partition_point(|&c| cmp_key(key(tree, c), new) == Ordering::Less)
    } else if !right.is_empty() && cmp_key(key(tree, right[0]), new) == Ordering::Less {
        pos + right.partition_point(|&c| cmp_key(key(tree, c), new) == Ordering::Less)
    } else {
        pos
    };
    tree.nodes[parent as usize].children.move_to(pos, target);
}

fn sort_subtree(tree: &mut Tree, node: u32) {
    rank_children(tree, node);
    let front_len = tree.nodes[node as usize].n_front as usize;
    let mut front: Vec<u32> = tree.nodes[node as usize].children[..front_len].to_vec();
    for &c in &front {
        let share = tree.share(c);
        let count = tree.nodes[c as usize].count;
        let k = &mut tree.keys[c as usize];
        k.share = share;
        k.count = count;
    }
    front.sort_by(|&a, &b| cmp_key(key(tree, a), key(tree, b)));
    tree.nodes[node as usize].children[..front_len].copy_from_slice(&front);
    for c in front {
        if tree.nodes[c as usize].kind == Kind::Internal {
            sort_subtree(tree, c);
        }
    }
}
