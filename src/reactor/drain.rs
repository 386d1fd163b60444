//! Graceful drain ([`Handle::drain`](crate::Handle::drain)): listeners close
//! at once, handlers hear `on_drain`, idle connections close gracefully,
//! the rest are forced at the deadline, and `run` returns.

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

#[derive(Debug)]
pub(super) struct Drain {
    deadline: u64,
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

    pub(super) fn deadline(&self) -> u64 {
        self.deadline
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
        // listeners' backlogs: take them in first, so that they are served
        // (and hear of the drain like the rest). Closing a listener resets
        // whatever is left in its backlog.
        if !self.listeners.is_empty() {
            self.accept_all();
        }
        let open = self.table.cores.len();
        log::debug!("draining {open} connections, grace {grace:?}");
        // New clients are refused at once, not left waiting in a backlog.
        self.listeners.clear();
        self.accept_retry_at = None;
        self.env.draining.set(true);
        self.drain = Some(Drain {
            deadline: self.env.clock.deadline(ticks(grace)),
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

    /// `on_drain`, then the drain closes the connection if it is idle.
    pub(super) fn tell_drain(&mut self, id: ConnId) {
        deliver(
            &mut self.handlers,
            &mut self.table,
            &self.env,
            id,
            "on_drain",
            |h, c| h.on_drain(c),
        );
        if let Some(core) = self.table.cores.get_mut(id) {
            if core.st.is_open() && core.st.has(Flag::IDLE) {
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
        if !drain.forcing && self.env.clock.tick() >= drain.deadline {
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
            && !self.env.handle.has_feeders()
            && self.env.handle.handed_off_pending() == 0
        {
            if let Some(drain) = self.drain.as_mut() {
                drain.report.done = true;
                log::debug!("drained: {:?}", drain.report);
            }
            self.shut_down = true;
            self.env.handle.stopped();
        }
    }

    /// A shutdown during a drain counts what it closes as forced.
    pub(super) fn force_drain(&mut self) {
        if let Some(drain) = self.drain.as_mut() {
            drain.forcing = true;
        }
    }
}
