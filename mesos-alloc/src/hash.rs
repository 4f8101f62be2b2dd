//! A small multiplicative hasher for the allocator's integer-keyed maps.
//!
//! The hot loops look up filters and allocations by dense `u32` indices, where SipHash costs
//! several times more than the lookup itself. It is also used for the id and role maps: std's
//! `RandomState` seeds itself from the operating system, and this crate draws no randomness
//! it was not given (every map here is only looked up, or iterated where order does not
//! matter, so results never depend on a hasher).

// The one place std's hash maps may be named (`clippy.toml` forbids them elsewhere): with
// `BuildHasherDefault<FxHasher>` they are never seeded from the OS.
#[allow(clippy::disallowed_types)]
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// FxHash-style hasher (rustc's): rotate, xor, multiply.
#[derive(Default, Clone, Copy)]
pub(crate) struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.mix(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.mix(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.mix(n as u64);
    }
}

/// A `HashMap` with [`FxHasher`].
#[allow(clippy::disallowed_types)]
pub(crate) type FxHashMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// A `HashSet` with [`FxHasher`].
#[allow(clippy::disallowed_types)]
pub(crate) type FxHashSet<K> = HashSet<K, BuildHasherDefault<FxHasher>>;
