//! Software prefetch for the allocation cycle.
//!
//! A cycle serves agents in a random order, so every agent's memory is a cache miss, and the
//! cycle only goes fast when those misses overlap. Plain loads issued ahead of use do not keep
//! them overlapping: each offer clones a few `Arc`s (ids, role, resource list), and on x86 a
//! locked increment waits until every earlier load has completed, so the next agents' misses
//! would be taken one after the other. Prefetch instructions are not ordered by locked
//! instructions: they stay in flight while the current agent is served.
//!
//! A prefetch is only a hint. It never faults and changes nothing the program can observe, so
//! a stale or wrong address costs a wasted memory access at worst. Other architectures go
//! without (stable Rust has no portable prefetch).

/// Asks for the cache line holding `p` (any address; nothing is read through it).
#[inline(always)]
pub(crate) fn line<T: ?Sized>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: PREFETCHT0 is a hint: it does not fault whatever the address and has no effect
    // visible to the program. SSE, which provides it, is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Asks for every cache line of the `bytes` bytes starting at `p`.
#[inline(always)]
pub(crate) fn lines<T>(p: *const T, bytes: usize) {
    let p = p.cast::<u8>();
    let skew = p as usize % 64;
    let start = p.wrapping_sub(skew);
    let mut off = 0;
    while off < skew + bytes {
        line(start.wrapping_add(off));
        off += 64;
    }
}

/// Asks for the reference counts of the `Arc` whose data starts at `data` (`Arc::as_ptr`):
/// what a clone writes. They sit just before the data in the same allocation.
#[inline(always)]
pub(crate) fn arc_counts<T: ?Sized>(data: *const T) {
    line(
        data.cast::<u8>()
            .wrapping_sub(2 * std::mem::size_of::<usize>()),
    );
}

#[cfg(test)]
mod tests {
    /// Prefetching never reads: any address, even null or dangling, is fine.
    #[test]
    fn any_address_is_a_valid_hint() {
        let v = vec![7u64; 100];
        super::lines(v.as_ptr(), 800);
        super::line(std::ptr::null::<u8>());
        super::arc_counts(std::ptr::null::<u8>());
        super::lines(std::ptr::dangling::<u64>(), 128);
        assert_eq!(v[99], 7);
    }
}
