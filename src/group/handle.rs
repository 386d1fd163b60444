//! [`GroupHandle`]: every worker of a [`Group`](super::Group), reached from any thread.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::GroupConnId;
use crate::counters::Counters;
use crate::ctx::Ctx;
use crate::handle::{Handle, Stats};
use crate::handler::Handler;

/// The hand-off acceptor runs.
pub(super) const RUN: u8 = 0;
/// A drain: the acceptor hands off the clients already in its backlog, then stops.
pub(super) const STOP_DRAIN: u8 = 1;
/// A shutdown: the acceptor stops at once.
pub(super) const STOP_NOW: u8 = 2;

/// Reaches every worker of a [`Group`](super::Group) from any thread: `Clone + Send + Sync`.
#[derive(Clone, Debug)]
pub struct GroupHandle {
    pub(super) workers: Arc<Vec<Handle>>,
    /// Tells the hand-off acceptor to stop: [`RUN`], [`STOP_DRAIN`] (hand
    /// off what is in the backlog first) or [`STOP_NOW`].
    pub(super) acceptor_stop: Arc<AtomicU8>,
    /// The worker the next [`GroupHandle::connect`] goes to (round robin).
    pub(super) next_connect: Arc<AtomicUsize>,
}

impl GroupHandle {
    /// The handle of worker `i`'s reactor.
    ///
    /// # Panics
    ///
    /// If `i` is not below the number of workers.
    #[track_caller]
    pub fn worker(&self, i: usize) -> &Handle {
        &self.workers[i]
    }

    /// How many workers the group has.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Queues `data` for `conn` on the worker that owns it
    /// ([`Handle::write`]). Ignored if it is closed or the worker is unknown.
    pub fn write(&self, conn: GroupConnId, data: Vec<u8>) {
        if let Some(h) = self.workers.get(conn.worker) {
            h.write(conn.id, data);
        }
    }

    /// Closes `conn` gracefully on the worker that owns it ([`Handle::close`]).
    pub fn close(&self, conn: GroupConnId) {
        if let Some(h) = self.workers.get(conn.worker) {
            h.close(conn.id);
        }
    }

    /// Runs `f` on worker `worker`'s thread ([`Handle::run`]).
    ///
    /// # Errors
    ///
    /// As [`Handle::run`]; `ErrorKind::InvalidInput` also for a worker that
    /// does not exist.
    pub fn run<H: Handler>(
        &self,
        worker: usize,
        f: impl FnOnce(&mut Ctx<'_, H>) + Send + 'static,
    ) -> io::Result<()> {
        match self.workers.get(worker) {
            Some(h) => h.run(f),
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "GroupHandle::run: no worker {worker} (the group has {})",
                    self.workers.len()
                ),
            )),
        }
    }

    /// Opens a connection from any thread ([`Handle::connect`]), on the
    /// workers in turn; returns the index of the worker that got it.
    ///
    /// # Errors
    ///
    /// As [`Handle::connect`].
    pub fn connect<H: Handler>(
        &self,
        addr: SocketAddr,
        make: impl FnOnce() -> H + Send + 'static,
    ) -> io::Result<usize> {
        let worker = self.next_connect.fetch_add(1, Ordering::Relaxed) % self.workers.len();
        self.workers[worker].connect(addr, make)?;
        Ok(worker)
    }

    /// Resets `conn` on the worker that owns it ([`Handle::abort`]).
    pub fn abort(&self, conn: GroupConnId) {
        if let Some(h) = self.workers.get(conn.worker) {
            h.abort(conn.id);
        }
    }

    /// Shuts every worker down ([`Handle::shutdown`]); from any thread, any
    /// number of times.
    pub fn shutdown(&self) {
        self.acceptor_stop.store(STOP_NOW, Ordering::SeqCst);
        for h in self.workers.iter() {
            h.shutdown();
        }
    }

    /// Drains every worker ([`Handle::drain`]). A hand-off acceptor does as
    /// a worker's listener does: it drops new SYNs, hands off its backlog
    /// and the handshakes in flight for 250 ms, then closes; the workers'
    /// drains end only after that.
    pub fn drain(&self, grace: Duration) {
        let _ = self.acceptor_stop.compare_exchange(
            RUN,
            STOP_DRAIN,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        for h in self.workers.iter() {
            h.drain(grace);
        }
    }

    /// The workers' close-detection latency, merged, if measured.
    pub fn latency(&self) -> Option<crate::Latency> {
        let mut all: Option<crate::Latency> = None;
        for w in self.workers.iter() {
            if let Some(l) = w.latency() {
                match all.as_mut() {
                    Some(a) => a.merge(&l),
                    None => all = Some(l),
                }
            }
        }
        all
    }

    /// Each worker's [`Counters`], as of its last turn.
    pub fn worker_counters(&self) -> Vec<Counters> {
        self.workers.iter().map(Handle::counters).collect()
    }

    /// The group's [`Counters`]: the workers' summed. Each worker's part is
    /// whole; the parts may be from turns a moment apart.
    pub fn counters(&self) -> Counters {
        self.worker_counters()
            .iter()
            .fold(Counters::default(), |a, b| a.add(b))
    }

    /// Each worker's counts, as of its last turn.
    pub fn worker_stats(&self) -> Vec<Stats> {
        self.workers.iter().map(Handle::stats).collect()
    }

    /// The whole group's counts: the workers' added up.
    pub fn stats(&self) -> Stats {
        self.worker_stats()
            .into_iter()
            .fold(Stats::default(), |a, b| Stats {
                connections: a.connections + b.connections,
                closed: a.closed + b.closed,
                rejected: a.rejected + b.rejected,
            })
    }
}
