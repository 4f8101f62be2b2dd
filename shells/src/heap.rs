//! Process-wide settings of the daemons' memory allocator (mimalloc).
//!
//! Every daemon binary calls [`tune`] first thing in `main`; the allocator benchmark does too,
//! so that it times the allocator as it runs in the master.

/// mimalloc's `mi_option_purge_delay`: its place in `mi_option_e` (mimalloc v3, the version
/// `libmimalloc-sys` builds); the crate names no constant for it. The test below checks it.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays mapped before mimalloc hands it back to the OS, in milliseconds.
///
/// The master frees and allocates much the same memory every allocation cycle: the offers of
/// one cycle are dropped before the next cycle builds as many. With mimalloc's default of one
/// second, memory freed between a cluster's rebuilds and cycles was returned and then faulted
/// in (and zeroed) again, breaking transparent huge pages into small ones:
/// `decline/50000x1000` in the full benchmark run measured 22-24 ms per cycle against 18-20 ms
/// with ten seconds (BENCHMARKS.md, Allocator). Ten seconds still gives an idle daemon's
/// memory back.
pub const PURGE_DELAY_MS: i64 = 10_000;

/// Applies the settings above. Call it before the daemon starts its work.
pub fn tune() {
    #[allow(unsafe_code)]
    // SAFETY: `mi_option_set` only stores an integer option (atomically); it has no
    // preconditions and may be called at any time, from any thread.
    unsafe {
        libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS as _);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option index is mimalloc's purge delay: its documented default until it is set
    /// (the environment can override it, which the test command does not do).
    #[test]
    fn the_option_set_is_the_purge_delay() {
        #[allow(unsafe_code)]
        // SAFETY: `mi_option_get` only reads an integer option.
        let get = || unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(get(), 1000, "mimalloc v3's default purge delay");
        }
        tune();
        assert_eq!(i64::from(get()), PURGE_DELAY_MS);
    }
}
