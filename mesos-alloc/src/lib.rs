//! Allocators on `mesos-core` types: the DRF sorter and the hierarchical allocator.
