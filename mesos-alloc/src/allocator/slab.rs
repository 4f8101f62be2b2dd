//! The allocator's three tables (agents, frameworks, roles): records in slots that are reused,
//! named by typed handles.
//!
//! Records refer to each other by slot number (`u32`), which keeps the hot records small (an
//! agent's allocations are `(framework slot, role slot, resources)`). A slot is only named
//! while its record is live: the id index, the filters and the allocations that name a slot
//! are cleared before the slot is freed (`remove_framework`, `remove_agent`, `untrack`). The
//! typed handles ([`AgentSlot`], [`FwSlot`], [`RoleSlot`]) keep the three kinds apart where
//! records are looked up, and [`Slab::live`] is the one place where a handle that outlived its
//! record (a bug, never input) is reported.

use std::marker::PhantomData;

/// A typed slot number.
pub(crate) trait Handle: Copy {
    /// What the slot holds, for the stale-handle panic.
    const WHAT: &'static str;
    fn new(raw: u32) -> Self;
    fn raw(self) -> u32;
}

macro_rules! handle {
    ($name:ident, $what:literal) => {
        #[doc = concat!("The slot of ", $what, " record.")]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub(crate) struct $name(pub(crate) u32);

        impl Handle for $name {
            const WHAT: &'static str = $what;
            #[inline(always)]
            fn new(raw: u32) -> Self {
                $name(raw)
            }
            #[inline(always)]
            fn raw(self) -> u32 {
                self.0
            }
        }
    };
}

handle!(AgentSlot, "an agent");
handle!(FwSlot, "a framework");
handle!(RoleSlot, "a role");

/// Records in reusable slots. Derefs to the slots (`[Option<T>]`) for the cycle's loops, which
/// index by raw slot number (slice methods such as `get` and `iter` are the slots').
#[derive(Debug)]
pub(crate) struct Slab<H, T> {
    slots: Vec<Option<T>>,
    free: Vec<u32>,
    _handle: PhantomData<H>,
}

impl<H, T> Default for Slab<H, T> {
    fn default() -> Self {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            _handle: PhantomData,
        }
    }
}

impl<H: Handle, T> Slab<H, T> {
    /// Stores `record` in a free slot (the last freed first) or a new one.
    pub(crate) fn insert(&mut self, record: T) -> H {
        match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(record);
                H::new(s)
            }
            None => {
                self.slots.push(Some(record));
                H::new((self.slots.len() - 1) as u32)
            }
        }
    }

    /// Frees the slot, returning its record.
    pub(crate) fn remove(&mut self, h: H) -> Option<T> {
        let record = self.slots.get_mut(h.raw() as usize)?.take()?;
        self.free.push(h.raw());
        Some(record)
    }

    /// The record, `None` for a free or unknown slot.
    pub(crate) fn lookup(&self, h: H) -> Option<&T> {
        self.slots.get(h.raw() as usize)?.as_ref()
    }

    /// The record of a handle that must be live (see the module documentation).
    #[inline]
    pub(crate) fn live(&self, h: H) -> &T {
        match self.slots.get(h.raw() as usize) {
            Some(Some(record)) => record,
            _ => stale(H::WHAT, h.raw()),
        }
    }

    /// The record of a handle that must be live, to change.
    #[inline]
    pub(crate) fn live_mut(&mut self, h: H) -> &mut T {
        match self.slots.get_mut(h.raw() as usize) {
            Some(Some(record)) => record,
            _ => stale(H::WHAT, h.raw()),
        }
    }
}

impl<H, T> std::ops::Deref for Slab<H, T> {
    type Target = [Option<T>];
    fn deref(&self) -> &[Option<T>] {
        &self.slots
    }
}

impl<H, T> std::ops::DerefMut for Slab<H, T> {
    fn deref_mut(&mut self) -> &mut [Option<T>] {
        &mut self.slots
    }
}

#[cold]
#[inline(never)]
fn stale(what: &str, slot: u32) -> ! {
    panic!("{what} slot {slot} is named but not live: a record outlived its removal")
}

#[cfg(test)]
mod tests {
    use super::{FwSlot, Slab};

    #[test]
    fn freed_slots_are_reused_and_not_live() {
        let mut s: Slab<FwSlot, &str> = Slab::default();
        let a = s.insert("a");
        let b = s.insert("b");
        assert_eq!(s.remove(a), Some("a"));
        assert_eq!(s.lookup(a), None);
        assert_eq!(s.remove(a), None);
        let c = s.insert("c");
        assert_eq!(c, a);
        assert_eq!(*s.live(b), "b");
        assert_eq!(*s.live(c), "c");
    }

    #[test]
    #[should_panic(expected = "a framework slot 1 is named but not live")]
    fn a_stale_handle_is_reported() {
        let mut s: Slab<FwSlot, u8> = Slab::default();
        s.insert(1);
        let h = s.insert(2);
        s.remove(h);
        s.live(h);
    }
}
