//! Graceful drain ([`Handle::drain`](crate::Handle::drain)): listeners stop
//! taking new clients (their backlog is served), handlers hear `on_drain`,
//! idle connections close gracefully, the rest are forced at the deadline,
//! and `run` returns.

use std::time::Duration;

use super::{deliver, Reactor};
use crate::close::CloseReason;
use crate::conn::{ticks, ConnId, Flag};
use crate::handler::Handler;

/// How a drain ended its connections ([`Reactor::drain_report`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Open when the drain began.
    pub open_at_start: u64,
    /// Joined while the drain was under way: clients a group's hand-off
    /// acceptor took from its backlog as the drain began, and outbound
    /// connects started during it. Once done, `open_at_start + joined`
    /// equals `closed_idle + finished + forced`.
    pub joined: u64,
    /// Closed by the drain because their handler marked them idle
    /// ([`CloseReason::Drained`]).
    pub closed_idle: u64,
    /// Ended by themselves (the peer or the handler closed them, or they
    /// failed) before the deadline.
    pub finished: u64,
    /// Still open at the deadline, and closed then ([`CloseReason::Shutdown`]).
    pub forced: u64,
    /// Whether the drain is over: no connection left.
    pub done: bool,
}

/// How long a draining listener, refusing new SYNs, stays open to take in
/// the handshakes that were in flight when the drain began. One round trip
/// is enough; this covers all but the slowest paths, and stays under the
/// 1 s after which a client whose SYN was dropped sends it again.
pub(crate) const LISTENER_SETTLE: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub(super) struct Drain {
    deadline: u64,
    /// When the listeners close (new SYNs are refused from the start).
    listeners_close_at: u64,
    forcing: bool,
    pub(super) report: DrainReport,
}

impl Drain {
    /// Counts one connection the drain saw end, by its reason.
    pub(super) fn count(&mut self, reason: &CloseReason) {
        match reason {
            CloseReason::Drained => self.report.closed_idle += 1,
            CloseReason::Shutdown if self.forcing => self.report.forced += 1,
            _ => self.report.finished += 1,
        }
    }

    /// The next time the drain has something to do (poll no longer).
    pub(super) fn next_tick(&self, listening: bool) -> u64 {
        if listening {
            self.deadline.min(self.listeners_close_at)
        } else {
            self.deadline
        }
    }
}

impl<H: Handler> Reactor<H> {
    /// What the drain did so far, once [`Handle::drain`](crate::Handle::drain)
    /// was called; `None` before.
    pub fn drain_report(&self) -> Option<DrainReport> {
        self.drain.as_ref().map(|d| d.report)
    }

    /// Starts the drain asked for through the handle, once.
    pub(super) fn check_drain(&mut self) {
        if self.drain.is_some() || self.shut_down {
            return;
        }
        let Some(grace) = self.env.handle.drain_requested() else {
            return;
        };
        self.start_drain(grace);
    }

    fn start_drain(&mut self, grace: Duration) {
        // Clients whose handshake the kernel already completed wait in the
        // listeners' backlogs, and closing a listener resets them. So: new
        // SYNs are dropped from now on (Linux), the backlog is taken in and
        // served like the rest, and the listeners stay open, taking in the
        // handshakes that were in flight, until `LISTENER_SETTLE` has
        // passed. A client whose SYN was dropped retries after about 1 s and
        // meets a closed listener: it is refused, never reset.
        for l in &mut self.listeners {
            if let Err(e) = l.sock.stop_new_peers() {
                log::debug!("drain: stopping new handshakes on {}: {e}", l.addr);
            }
        }
        if !self.listeners.is_empty() {
            self.accept_all();
        }
        let open = self.table.cores.len();
        log::debug!("draining {open} connections, grace {grace:?}");
        self.accept_retry_at = None;
        self.env.draining.set(true);
        let deadline = self.env.clock.deadline(ticks(grace));
        self.drain = Some(Drain {
            deadline,
            listeners_close_at: deadline.min(self.env.clock.deadline(ticks(LISTENER_SETTLE))),
            forcing: false,
            report: DrainReport {
                open_at_start: open as u64,
                ..DrainReport::default()
            },
        });
        for id in self.table.cores.ids() {
            self.tell_drain(id);
        }
        self.drain_tick();
    }

    /// A connection opened while a drain is under way (from a listener
    /// settling, a group's hand-off, an outbound connect): counted, and told.
    pub(super) fn joined_drain(&mut self, id: ConnId) {
        if let Some(drain) = self.drain.as_mut() {
            drain.report.joined += 1;
            self.tell_drain(id);
        }
    }

    /// `on_drain`, then the drain closes the connection if it is idle.
    pub(super) fn tell_drain(&mut self, id: ConnId) {
        self.table
            .note(id, crate::record::LifecycleEvent::DrainAsked);
        deliver(
            &mut self.handlers,
            &mut self.table,
            &self.env,
            id,
            "on_drain",
            |h, c| h.on_drain(c),
        );
        let idle = self
            .table
            .cores
            .get(id)
            .is_some_and(|c| c.st.is_open() && c.st.has(Flag::IDLE));
        if idle {
            #[cfg(feature = "tls")]
            self.table.tls_close_notify(id);
            if let Some(core) = self.table.cores.get_mut(id) {
                core.drain_close(&self.env);
            }
        }
        self.after(id);
    }

    /// Every turn of a drain: force the rest at the deadline; stop when no
    /// connection is left.
    pub(super) fn drain_tick(&mut self) {
        let Some(drain) = self.drain.as_mut() else {
            return;
        };
        let now = self.env.clock.tick();
        if !self.listeners.is_empty() && now >= drain.listeners_close_at {
            // The handshakes in flight when the drain began have landed.
            self.accept_all();
            log::debug!("drain: closing {} listeners", self.listeners.len());
            self.listeners.clear();
        }
        let Some(drain) = self.drain.as_mut() else {
            return;
        };
        if !drain.forcing && now >= drain.deadline {
            drain.forcing = true;
            log::debug!(
                "drain deadline: closing {} connections",
                self.table.cores.len()
            );
            for id in self.table.cores.ids() {
                if let Some(core) = self.table.cores.get_mut(id) {
                    core.st.fail(CloseReason::Shutdown);
                }
                self.finish(id);
            }
        }
        // Over when no connection is left and none can still arrive from a
        // group's hand-off acceptor.
        if self.table.cores.len() == 0
            && self.listeners.is_empty()
            && !self.env.handle.has_feeders()
            && self.env.handle.handed_off_pending() == self.adopted_unpublished
        {
            if let Some(drain) = self.drain.as_mut() {
                drain.report.done = true;
                log::debug!("drained: {:?}", drain.report);
            }
            self.shut_down = true;
            self.stopped();
        }
    }

    /// Whether the reactor is stopping: shut down, or a drain past its
    /// deadline. Connects from callbacks are refused then.
    pub(super) fn is_stopping(&self) -> bool {
        self.shut_down || self.drain.as_ref().is_some_and(|d| d.forcing)
    }

    /// A shutdown during a drain counts what it closes as forced.
    pub(super) fn force_drain(&mut self) {
        if let Some(drain) = self.drain.as_mut() {
            drain.forcing = true;
        }
    }
}
