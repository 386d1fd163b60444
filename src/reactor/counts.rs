//! What the reactor counted ([`Counters`], [`Stats`], [`Latency`]), read on
//! its thread, and published once per turn for its handles.

use super::Reactor;
use crate::counters::Counters;
use crate::handle::Stats;
use crate::handler::Handler;
use crate::latency::Latency;
#[cfg(doc)]
use crate::{Config, Handle};

impl<H: Handler> Reactor<H> {
    /// Publishes the counts for [`Handle::stats`], then lets the hand-offs
    /// adopted this turn leave the pending count: a group's acceptor, which
    /// balances on open + pending, never sees them in neither.
    pub(super) fn publish(&mut self) {
        self.env.handle.publish(&self.counters());
        if self.adopted_unpublished != 0 {
            self.env.handle.adopted(self.adopted_unpublished);
            self.adopted_unpublished = 0;
        }
    }

    /// The counts ([`connection_count`](Reactor::connection_count),
    /// [`closed_count`](Reactor::closed_count),
    /// [`rejected_count`](Reactor::rejected_count)); [`Handle::stats`] gives
    /// the same from any thread, as of the last turn.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.table.cores.len() as u64,
            closed: self.counters.closed,
            rejected: self.counters.rejected(),
        }
    }

    /// Close-detection latency per kind, if
    /// [`Config::close_latency`] is on ([`Handle::latency`]).
    pub fn latency(&self) -> Option<Latency> {
        self.env.handle.latency()
    }

    /// Everything this reactor counted since it was made ([`Counters`]);
    /// [`Handle::counters`] gives the same from any thread, as of the last
    /// turn.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.open = self.table.cores.len() as u64;
        c.bytes_in = self.table.bytes_in;
        c.bytes_out = self.table.bytes_out;
        c
    }

    /// Connections open now (accepted and outbound, connecting included).
    pub fn connection_count(&self) -> usize {
        self.table.cores.len()
    }

    /// Peers turned away at accept (past `max_connections`, out of
    /// descriptors, or a factory that panicked), since the reactor was made.
    pub fn rejected_count(&self) -> u64 {
        self.counters.rejected()
    }

    /// Connections closed (that saw `on_close`) since the reactor was made.
    pub fn closed_count(&self) -> u64 {
        self.counters.closed
    }
}
