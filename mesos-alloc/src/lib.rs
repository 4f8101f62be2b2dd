//! Allocators on `mesos-core` types: the DRF and random sorters and the hierarchical allocator.
//!
//! Like the rest of the core this crate is sans-IO: nothing here reads a clock, sleeps or
//! draws randomness it was not given. Time comes in as [`mesos_core::time::Time`] arguments and
//! randomness as a seed in [`AllocatorConfig`], so the same inputs always give the same offers
//! (the trace simulator replays on exactly this code).
//!
//! - [`sorter`]: who goes first ([`sorter::Sorter`], with a DRF or a seeded random policy).
//! - [`HierarchicalAllocator`]: Mesos' hierarchical allocator (quota stage, then fair share),
//!   implementing [`mesos_core::allocator::Allocator`].
//!
//! Driving it (see `examples/embed.rs`): feed events through the `Allocator` trait methods
//! (`add_agent`, `add_framework`, `recover_resources` with the framework's `refuse_seconds`,
//! `suppress`/`revive`, `set_weight`, `set_quota`); ask [`Allocator::poll_timeout`](mesos_core::allocator::Allocator::poll_timeout)
//! when the next cycle is due and call [`Allocator::allocate`](mesos_core::allocator::Allocator::allocate) with the current
//! time then. Every method that can fail returns a typed
//! [`mesos_core::allocator::AllocatorError`] and changes nothing when it does. Getters
//! (`available`, `allocated_on`, `roles`, `role_order`, `filter_count`, `allocation_runs`) are
//! for `/metrics`, `/roles` and tests.
//!
//! Architecture invariants: the sorters know clients and quantities, never agents' resources
//! (the allocator keeps those, in a compact form, `Bag`); an offer is always a subset of its
//! agent's available resources at the time, and the allocator's own bookkeeping
//! (available + everything offered or allocated = total) is what the property tests check.

mod hash;
mod prefetch;
pub mod sorter;

mod allocator;

pub use allocator::{
    AllocatorConfig, Explanation, HierarchicalAllocator, Reject, Rejections, RoleInfo, WhyNoOffers,
    DEFAULT_REFUSE, MAX_REFUSE,
};
