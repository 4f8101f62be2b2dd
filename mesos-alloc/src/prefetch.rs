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
    let skew = p as usize % LINE;
    let start = p.wrapping_sub(skew);
    for off in line_offsets(skew, bytes) {
        line(start.wrapping_add(off));
    }
}

/// Cache line size on the machines we tune for (x86_64).
const LINE: usize = 64;

/// The offsets, from the start of the line holding the first byte (`skew` bytes before it),
/// of the lines that hold the `bytes` bytes: one per line, none past the last byte, none
/// at all for an empty range.
#[inline(always)]
fn line_offsets(skew: usize, bytes: usize) -> std::iter::StepBy<std::ops::Range<usize>> {
    let end = if bytes == 0 { 0 } else { skew + bytes };
    (0..end).step_by(LINE)
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
    use super::{line_offsets, LINE};

    /// `lines` asks for exactly the lines a byte range touches: every byte's line once, no
    /// line outside the range, each request at a line start. Checked against a byte-by-byte
    /// count for every skew and for lengths across several lines.
    #[test]
    fn lines_cover_exactly_the_lines_of_the_range() {
        for addr in 0..3 * LINE {
            for bytes in 0..4 * LINE + 3 {
                let skew = addr % LINE;
                let start = addr - skew;
                let asked: Vec<usize> = line_offsets(skew, bytes).map(|o| start + o).collect();
                let mut expected: Vec<usize> =
                    (addr..addr + bytes).map(|b| b / LINE * LINE).collect();
                expected.dedup();
                assert_eq!(asked, expected, "addr {addr}, {bytes} bytes");
            }
        }
    }
}
