//! Allocators on `mesos-core` types: the DRF and random sorters and the hierarchical allocator.
//!
//! Like the rest of the core this crate is sans-IO: nothing here reads a clock, sleeps or
//! draws randomness it was not given. Time comes in as [`mesos_core::time::Time`] arguments and
//! randomness as a seed in [`AllocatorConfig`], so the same inputs always give the same offers
//! (the trace simulator replays on exactly this code).
//!
//! - [`sorter`]: who goes first ([`sorter::DrfSorter`], [`sorter::RandomSorter`]).
//! - [`HierarchicalAllocator`]: Mesos' hierarchical allocator (quota stage, then fair share),
//!   implementing [`mesos_core::allocator::Allocator`].

mod hash;
pub mod sorter;

mod allocator;

pub use allocator::{AllocatorConfig, HierarchicalAllocator, RoleInfo, DEFAULT_REFUSE, MAX_REFUSE};
