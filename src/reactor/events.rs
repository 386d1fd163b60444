//! One connection's event: what the reactor does with it (read, write, the
//! connect's end) and the bookkeeping after anything touched a connection
//! (finish it, or bring its registration, ready-list entry and timer up to
//! date).

use mio::event::Event;
use mio::Interest;

use super::dispatch::{read_ready, write_ready};
use super::Reactor;
use crate::close::{reason_from_error, CloseReason};
use crate::conn::{ConnId, Flag, Phase};
use crate::handler::Handler;

impl<H: Handler> Reactor<H> {
    // ---- connection events ----

    pub(super) fn conn_event(&mut self, id: ConnId, event: &Event) {
        let Some(core) = self.table.cores.get_mut(id) else {
            log::trace!("stale event for {id}");
            return;
        };
        let hangup = event.is_read_closed() || event.is_error();
        let readable = event.is_readable();
        // Input came: unread until a read finds the socket empty again.
        core.st.note_event(hangup, readable);
        if core.st.phase() != Phase::Open || (event.is_writable() && core.out.is_some()) {
            return self.conn_event_rest(id, event, hangup);
        }
        // Open, nothing to write: the common case, with one lookup.
        if core.st.may_read() {
            if readable || hangup {
                self.read_now(id);
            }
        } else if event.is_error() || event.is_write_closed() {
            Self::take_socket_error(core);
        }
        self.after_live(id);
    }

    /// Reads connection `id` (current, and allowed to read) until drained.
    #[inline]
    pub(super) fn read_now(&mut self, id: ConnId) {
        read_ready(
            &mut self.handlers,
            &mut self.table,
            &mut self.read_buf,
            &self.env,
            id,
        );
    }

    /// Not reading (paused, or after the peer's FIN): the error flag is only
    /// a hint, `SO_ERROR` says what happened.
    pub(super) fn take_socket_error(core: &mut crate::conn::Core) {
        match core.stream.take_error() {
            Ok(Some(e)) | Err(e) => core.st.fail(reason_from_error(e)),
            Ok(None) => {}
        }
    }

    /// An event on a connection that is connecting, closing, or has output
    /// to flush.
    #[inline(never)]
    pub(super) fn conn_event_rest(&mut self, id: ConnId, event: &Event, hangup: bool) {
        let core = self.table.cores.live_mut(id);
        if core.st.phase() == Phase::Connecting {
            #[cfg(feature = "tls")]
            let opened = if core.st.has(Flag::TLS) {
                self.tls_handshake_event(id)
            } else {
                self.connect_event(id, event)
            };
            #[cfg(not(feature = "tls"))]
            let opened = self.connect_event(id, event);
            if !opened {
                self.after(id);
                return;
            }
        }
        let (handlers, table, env) = (&mut self.handlers, &mut self.table, &self.env);
        let Some(core) = table.cores.get_mut(id) else {
            return;
        };
        if event.is_writable() && core.out.is_some() {
            write_ready(handlers, table, env, id);
        }
        let Some(core) = table.cores.get_mut(id) else {
            return;
        };
        if core.st.may_read() {
            if event.is_readable() || hangup {
                read_ready(handlers, table, &mut self.read_buf, env, id);
            }
        } else if core.st.phase() != Phase::Done && (event.is_error() || event.is_write_closed()) {
            Self::take_socket_error(core);
        }
        self.after(id);
    }

    /// Connections that stopped reading early (budget, or resumed), and
    /// connects that failed at once, get their turn. Only those queued
    /// before this call: new ones wait a turn.
    pub(super) fn run_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(core) = self.table.cores.get_mut(id) else {
                continue;
            };
            core.st.set(Flag::QUEUED, false);
            if core.st.may_read() {
                self.read_now(id);
            }
            self.settle(id);
            self.after_callbacks();
        }
    }

    // ---- bookkeeping ----

    /// After an event or callback touched connection `id`: finish it if
    /// done, bring it up to date if not quiet, and do what the callbacks
    /// left (other connections they touched, connects they started).
    #[inline]
    pub(super) fn after(&mut self, id: ConnId) {
        if self.table.cores.get(id).is_some() {
            self.after_live(id);
        } else {
            self.after_callbacks_if_any();
        }
    }

    /// [`after`](Reactor::after) for a connection known to be current (looked
    /// up in this event; nothing since could end it): no generation check.
    #[inline]
    pub(super) fn after_live(&mut self, id: ConnId) {
        let st = &self.table.cores.live(id).st;
        if st.phase() == Phase::Done {
            self.finish(id);
        } else if !st.is_quiet() {
            self.settle(id);
        }
        self.after_callbacks_if_any();
    }

    #[inline]
    pub(super) fn after_callbacks_if_any(&mut self) {
        if self.table.after_work {
            self.after_callbacks();
        }
    }

    /// Attaches the handlers of connects started in callbacks, and settles
    /// the connections callbacks reached with [`Conn::other`](crate::Conn::other).
    pub(super) fn after_callbacks(&mut self) {
        loop {
            if !self.table.started.is_empty() {
                self.table.started.clear();
                let waiting = std::mem::take(&mut *self.connects.waiting.borrow_mut());
                for (id, handler) in waiting {
                    self.attach(id, handler);
                }
            }
            let Some(id) = self.table.touched.pop() else {
                // A callback in the last settle may have started a connect:
                // it is attached after the next callback.
                self.table.after_work = !self.table.started.is_empty();
                return;
            };
            self.settle(id);
        }
    }

    #[inline]
    pub(super) fn put_handler(&mut self, id: ConnId, handler: H) {
        let i = id.index();
        let len = self.handlers.len();
        if i < len {
            self.handlers[i] = Some(handler);
        } else {
            // The slab hands out a new slot only after all freed ones, so
            // this is a push; a gap is filled in case it is not.
            if i > len {
                self.handlers.resize_with(i, || None);
            }
            self.handlers.push(Some(handler));
        }
    }

    /// After anything touched a connection: finish it if done, otherwise
    /// bring its registration, ready-list entry and timer up to date.
    pub(super) fn settle(&mut self, id: ConnId) {
        let Some(core) = self.table.cores.get_mut(id) else {
            return;
        };
        let st = &mut core.st;
        if st.phase() == Phase::Done {
            self.finish(id);
            return;
        }
        if st.is_quiet() {
            return;
        }
        if st.has(Flag::WANT_WRITABLE) {
            st.set(Flag::WANT_WRITABLE, false);
            if !st.has(Flag::WRITABLE_INTEREST) {
                let interest = Interest::READABLE | Interest::WRITABLE;
                let token = id.token();
                if let Err(e) = self
                    .poll
                    .registry()
                    .reregister(&mut core.stream, token, interest)
                {
                    core.st.fail(CloseReason::Error(e));
                    self.finish(id);
                    return;
                }
                core.st.set(Flag::WRITABLE_INTEREST, true);
            }
        }
        let st = &mut core.st;
        if st.has(Flag::MORE_TO_READ) && !st.has(Flag::QUEUED) && st.may_read() {
            st.set(Flag::MORE_TO_READ, false);
            st.set(Flag::QUEUED, true);
            self.ready.push_back(id);
        }
        // Timers: schedule only when the earliest moved earlier (lazy re-arm).
        let next = st.next_timer();
        if next != 0 {
            match self.wheel.scheduled(id.index()) {
                Some(at) if at <= next => {}
                _ => self.wheel.schedule(id.index(), next),
            }
        }
    }
}
