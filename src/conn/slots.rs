//! The generational slot allocator behind [`ConnId`].

use std::sync::atomic::{AtomicU32, Ordering};

use crate::id::{ConnId, GEN_MASK, INDEX_BITS, LISTENER_BIT, MAX_SLOTS};

/// Numbers reactors, so that an id names its own reactor's connection only.
static NEXT_REACTOR: AtomicU32 = AtomicU32::new(1);

/// A slab whose keys carry a generation. `get` with a stale id finds nothing.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slab: slab::Slab<T>,
    gens: Vec<u32>,
    /// The reactor these slots belong to: part of every id they give.
    reactor: u32,
}

impl<T> Slots<T> {
    /// Reserves `cap` slots: virtual memory only, pages become resident as
    /// slots are used, and a burst of connections never reallocates.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Slots {
            slab: slab::Slab::with_capacity(cap),
            gens: Vec::with_capacity(cap),
            reactor: NEXT_REACTOR.fetch_add(1, Ordering::Relaxed),
        }
    }

    /// The id a connection token of this reactor names; `None` for listener
    /// and waker tokens.
    #[inline]
    pub(crate) fn id_from_token(&self, t: mio::Token) -> Option<ConnId> {
        if t.0 & LISTENER_BIT != 0 {
            return None;
        }
        Some(ConnId {
            reactor: self.reactor,
            index: (t.0 & ((1usize << INDEX_BITS) - 1)) as u32,
            gen: (t.0 >> INDEX_BITS) as u32,
        })
    }

    /// Whether `id` was made by these slots (this reactor). Checked where an
    /// id from outside comes in (`Conn::other`, `Handle` commands); every id
    /// the reactor uses inside (tokens, its lists) is its own, so the lookups
    /// below check only the generation.
    #[inline]
    pub(crate) fn owns(&self, id: ConnId) -> bool {
        id.reactor == self.reactor
    }

    /// Whether `id`'s generation is the slot's current one: not stale.
    #[inline]
    fn is_current(&self, id: ConnId) -> bool {
        self.gens.get(id.index as usize) == Some(&id.gen)
    }

    /// The connection `id` names, if `id` is this reactor's and current:
    /// for ids that come from outside.
    #[inline]
    pub(crate) fn get_foreign(&self, id: ConnId) -> Option<&T> {
        if self.owns(id) {
            self.get(id)
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> (ConnId, &mut T) {
        let entry = self.slab.vacant_entry();
        let index = entry.key();
        assert!(index < MAX_SLOTS, "too many connection slots");
        if index == self.gens.len() {
            self.gens.push(0);
        }
        let id = ConnId {
            reactor: self.reactor,
            index: index as u32,
            gen: self.gens[index],
        };
        (id, entry.insert(value))
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        if !self.is_current(id) {
            return None;
        }
        self.slab.get_mut(id.index as usize)
    }

    #[inline]
    pub(crate) fn get(&self, id: ConnId) -> Option<&T> {
        if !self.is_current(id) {
            return None;
        }
        self.slab.get(id.index as usize)
    }

    /// The connection `id` names, known to be current: the reactor looked it
    /// up (generation checked) earlier in the same event or callback, and
    /// nothing removes a connection until that returns (only the reactor's
    /// `finish` does, outside every callback). Skips the generation check
    /// (kept in debug builds).
    #[inline]
    pub(crate) fn live_mut(&mut self, id: ConnId) -> &mut T {
        debug_assert!(self.is_current(id), "{id:?} is not current");
        self.slab
            .get_mut(id.index as usize)
            .expect("a connection looked up in this event is still there")
    }

    /// [`live_mut`](Slots::live_mut), shared.
    #[inline]
    pub(crate) fn live(&self, id: ConnId) -> &T {
        debug_assert!(self.is_current(id), "{id:?} is not current");
        self.slab
            .get(id.index as usize)
            .expect("a connection looked up in this event is still there")
    }

    /// The live id at slot `index`, if any.
    pub(crate) fn id_at(&self, index: usize) -> Option<ConnId> {
        if self.slab.contains(index) {
            Some(ConnId {
                reactor: self.reactor,
                index: index as u32,
                gen: self.gens[index],
            })
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<T> {
        let g = self.gens.get_mut(id.index as usize)?;
        if *g != id.gen {
            return None;
        }
        let value = self.slab.try_remove(id.index as usize)?;
        *g = (*g + 1) & GEN_MASK;
        Some(value)
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.slab
            .iter()
            .map(|(k, _)| ConnId {
                reactor: self.reactor,
                index: k as u32,
                gen: self.gens[k],
            })
            .collect()
    }
}
