//! Dispatch: calling a handler with a `Conn` view, reading a socket until
//! it is drained, writing queued output. Free functions over the reactor's
//! fields, so that a callback can borrow the whole connection table while
//! the reactor holds its handler.

use super::guarded;
use crate::close::{after_data, classify_read, AfterData, CloseReason, ReadOutcome};
use crate::conn::{Conn, ConnId, Env, Flag, Phase, Table};
use crate::handler::Handler;
use crate::record::LifecycleEvent as Event;

/// Calls a handler callback with a `Conn` view, if the connection is open.
/// A panic closes the connection with `Panicked`.
#[inline]
pub(super) fn deliver<H: Handler>(
    handlers: &mut [Option<H>],
    table: &mut Table,
    env: &Env,
    id: ConnId,
    what: &str,
    f: impl FnOnce(&mut H, &mut Conn<'_>),
) {
    if table.cores.get(id).is_some_and(|c| c.st.is_open()) {
        deliver_open(handlers, table, env, id, what, f);
    }
}

/// [`deliver`] for a connection the caller knows is current and open (it
/// looked it up in this event, and nothing since could end it): no lookup.
#[inline]
pub(super) fn deliver_open<H: Handler>(
    handlers: &mut [Option<H>],
    table: &mut Table,
    env: &Env,
    id: ConnId,
    what: &str,
    f: impl FnOnce(&mut H, &mut Conn<'_>),
) {
    debug_assert!(table.cores.get(id).is_some_and(|c| c.st.is_open()));
    let Some(handler) = handlers.get_mut(id.index()).and_then(Option::as_mut) else {
        return;
    };
    let mut conn = Conn { id, table, env };
    if guarded(what, id, || f(handler, &mut conn)).is_none() {
        table.cores.live_mut(id).st.fail(CloseReason::Panicked);
        table.note(id, Event::Panicked);
    }
}

/// Writes queued output after a writable event.
pub(super) fn write_ready<H: Handler>(
    handlers: &mut [Option<H>],
    table: &mut Table,
    env: &Env,
    id: ConnId,
) {
    let Some(core) = table.cores.get_mut(id) else {
        return;
    };
    let before = table.bytes_out;
    let done = core.flush(&mut table.bytes_out);
    if let Some(r) = table.recs.as_mut().and_then(|r| r.get_mut(id.index())) {
        r.bytes_out += table.bytes_out - before;
    }
    if !done {
        return;
    }
    match core.st.phase() {
        Phase::Open => {
            let action = core.st.drained();
            core.act(action);
            deliver(handlers, table, env, id, "on_drained", |h, c| {
                h.on_drained(c)
            });
        }
        Phase::Flushing => {
            let action = core.st.flushed();
            core.act(action);
            table.note(id, Event::Flushed);
        }
        Phase::Connecting | Phase::Draining | Phase::Done => {}
    }
}

/// Reads until the socket is drained, the per-turn budget is spent, or the
/// connection ends, delivering each chunk to `on_data`.
#[inline(always)]
pub(super) fn read_ready<H: Handler>(
    handlers: &mut [Option<H>],
    table: &mut Table,
    buf: &mut [u8],
    env: &Env,
    id: ConnId,
) {
    let budget = env.config.read_budget;
    let mut total = 0usize;
    loop {
        // The caller looked the connection up; callbacks remove none.
        let core = table.cores.live_mut(id);
        if !core.st.may_read() {
            if core.st.has(Flag::PAUSED) {
                // Data may be left in the kernel: read it on resume.
                core.st.set(Flag::MORE_TO_READ, true);
            }
            return;
        }
        #[cfg(feature = "tls")]
        let tls = core.st.has(Flag::TLS);
        #[cfg(not(feature = "tls"))]
        let tls = false;
        #[cfg(feature = "tls")]
        let outcome = if tls {
            crate::conn::tls_read(
                core,
                &mut table.tls,
                &mut table.tls_out,
                &mut table.bytes_out,
                id,
                buf,
            )
        } else {
            classify_read(core.stream.read(buf))
        };
        #[cfg(not(feature = "tls"))]
        let outcome = classify_read(core.stream.read(buf));
        match outcome {
            ReadOutcome::Data(n) => {
                total += n;
                table.bytes_in += n as u64;
                if let Some(recs) = table.recs.as_mut() {
                    if let Some(r) = recs.get_mut(id.index()) {
                        r.bytes_in += n as u64;
                    }
                }
                let hint = core.st.has(Flag::HUP_HINT);
                // A short read drained the socket (Linux); a TLS read's
                // length says nothing of it: read on until `WouldBlock`.
                let asked = if tls { n } else { buf.len() };
                if env.skip_linger {
                    core.st.set(
                        Flag::INPUT_DRAINED,
                        crate::sys::SHORT_READ_DRAINS && n < asked && !hint,
                    );
                }
                if core.st.is_open() {
                    if core.st.has_idle_timeout() {
                        core.st.heard_from_peer(env.clock.now());
                    }
                    let data = &buf[..n];
                    deliver_open(handlers, table, env, id, "on_data", |h, c| {
                        h.on_data(c, data)
                    });
                }
                match after_data(n, asked, total, budget, hint) {
                    AfterData::Continue => {}
                    AfterData::Drained => return,
                    AfterData::Yield => {
                        table.cores.live_mut(id).st.set(Flag::MORE_TO_READ, true);
                        return;
                    }
                }
            }
            ReadOutcome::Eof => {
                let seen = core.st.eof();
                table.note(id, Event::PeerFin);
                if seen {
                    // `seen`: it was open.
                    deliver_open(handlers, table, env, id, "on_read_closed", |h, c| {
                        h.on_read_closed(c)
                    });
                    let core = table.cores.live_mut(id);
                    // Both directions done if this side half-closed too
                    // (nothing to do if the handler closed already).
                    if core.st.is_open() {
                        let has_pending = core.pending() > 0;
                        let action = core
                            .st
                            .after_read_closed(has_pending, || env.clock.deadline(env.close_ticks));
                        core.act(action);
                    }
                }
                return;
            }
            ReadOutcome::WouldBlock => {
                core.st.set(Flag::HUP_HINT, false);
                if env.skip_linger {
                    core.st.set(Flag::INPUT_DRAINED, true);
                }
                return;
            }
            ReadOutcome::Interrupted => {}
            ReadOutcome::PeerReset => {
                core.st.peer_reset();
                table.note(id, Event::PeerReset);
                return;
            }
            ReadOutcome::Closed(reason) => {
                let e = if reason == CloseReason::Reset {
                    Event::PeerReset
                } else {
                    Event::SocketError
                };
                core.st.fail(reason);
                table.note(id, e);
                return;
            }
        }
    }
}
