//! [`ConnId`] and the layout of a connection's `mio::Token`: what every
//! other module names a connection by. A leaf: it imports nothing of the
//! crate.

use std::fmt;

/// Identifies one connection of one reactor: the reactor, a slot index and
/// a generation.
///
/// Slots are reused, generations are not (until a slot has been reused 2^31
/// times): an id of a closed connection never names the connection that took
/// its slot, so a stale event or a late [`Handle::close`](crate::Handle::close) misses harmlessly.
/// Nor does an id name a connection of another reactor: each reactor has a
/// number of its own (unique in the process until 2^32 reactors were made),
/// and an id given to another reactor's [`Conn::other`](crate::Conn::other),
/// [`Handle`](crate::Handle) or [`GroupHandle`](crate::GroupHandle) finds
/// nothing there.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    /// The reactor's number (see `Slots`).
    pub(crate) reactor: u32,
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId(r{}:{}v{})", self.reactor, self.index, self.gen)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}v{}", self.index, self.gen)
    }
}

/// Bits of a `mio::Token` given to the slot index; the rest (but the top bit)
/// carry the generation. The top bit marks listeners.
pub(crate) const INDEX_BITS: u32 = usize::BITS / 2;
const GEN_BITS: u32 = usize::BITS / 2 - 1;
pub(crate) const GEN_MASK: u32 = ((1u64 << GEN_BITS) - 1) as u32;
pub(crate) const LISTENER_BIT: usize = 1 << (usize::BITS - 1);
/// How many slots ids can name: the index must fit its bits in a token and
/// stay below `u32::MAX`.
pub(crate) const MAX_SLOTS: usize = ((1u64 << INDEX_BITS) - 1) as usize;

impl ConnId {
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) fn token(self) -> mio::Token {
        mio::Token(self.index as usize | ((self.gen as usize) << INDEX_BITS))
    }
}
