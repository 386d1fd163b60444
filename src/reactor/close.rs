//! Closing a connection: the socket goes (a reset when output was left or
//! an abort asked for), the counts and the close record are made, and the
//! handler hears `on_close` exactly once.

use std::os::fd::AsFd;
use std::time::Duration;

use super::{guarded, open_spare, Reactor};

use crate::close::CloseReason;
use crate::conn::{ConnId, Core, Flag};
use crate::counters::{CloseKind, Side};
use crate::handler::Handler;
use crate::record::{CloseDetail, CloseRecord, LifecycleEvent};
use crate::sys;

impl<H: Handler> Reactor<H> {
    /// Ends every open connection with `Shutdown` (unless it already had a cause).
    pub(super) fn close_all(&mut self) {
        for id in self.table.cores.ids() {
            if let Some(core) = self.table.cores.get_mut(id) {
                core.st.fail(CloseReason::Shutdown);
            }
            self.finish(id);
        }
    }

    /// The close record's detail, if records are on.
    #[cold]
    fn close_detail(&mut self, id: ConnId, reason: &CloseReason) -> Option<CloseDetail> {
        let rec = *self.table.recs.as_ref()?.get(id.index())?;
        let mut history = rec.history;
        if matches!(reason, CloseReason::Backpressure) {
            history.push(LifecycleEvent::Backpressure);
        }
        let now = self.env.clock.now();
        let detected_after = match (Side::of(reason), self.polled_at) {
            (Side::Peer, Some(at)) if rec.timer_late == 0 => Some(at.elapsed()),
            _ => None,
        };
        Some(CloseDetail {
            lifetime: Duration::from_millis(now.saturating_sub(rec.opened)),
            bytes_in: rec.bytes_in,
            bytes_out: rec.bytes_out,
            history,
            detected_after,
            timer_late: (rec.timer_late > 0)
                .then(|| Duration::from_millis(u64::from(rec.timer_late - 1))),
        })
    }

    /// Closes the socket and calls `on_close`, exactly once.
    pub(super) fn finish(&mut self, id: ConnId) {
        let Some(core) = self.table.cores.remove(id) else {
            return;
        };
        #[cfg(feature = "tls")]
        self.table.tls_finish(id, &core);
        let Core {
            stream,
            peer,
            mut st,
            out,
        } = core;
        // Also clears a fired mark: a timer of this connection that came due
        // in a batch still being delivered must not reach whoever takes
        // the slot next.
        if !self.wheel.is_idle() {
            self.wheel.cancel(id.index());
        }
        if !self.table.timers.is_idle() {
            self.table.timers.cancel(id.index());
        }
        // A reset when asked for, and whenever output we queued was never
        // sent: the peer must not take partial data for all of it.
        let unsent_bytes = out.as_ref().map_or(0, |o| o.pending()) as u64;
        drop(out);
        let unsent = unsent_bytes > 0;
        let phase = st.end_phase();
        // Before the descriptor closes: what the kernel knew, if asked.
        let tcp = !peer.is_unix();
        let tcp_info = if tcp && (st.has(Flag::TCP_INFO) || self.env.config.tcp_info_at_close) {
            sys::tcp_info(stream.as_fd())
                .map_err(|e| log::debug!("conn {id}: TCP_INFO: {e}"))
                .ok()
        } else {
            None
        };
        // AF_UNIX has no reset to send: its peer sees ECONNRESET only if
        // data it sent stays unread here, which closing leaves as it is.
        if tcp && (st.has(Flag::ABORTIVE) || unsent) {
            if let Err(e) = sys::set_abortive(&stream.sock_ref()) {
                log::debug!("conn {id}: SO_LINGER 0 failed: {e}");
            }
        }
        let reason = st.take_reason();
        log::debug!("conn {id}: closed ({reason}) peer {peer}");
        if let Some(drain) = self.drain.as_mut() {
            drain.count(&reason);
        }
        // Closing the descriptor removes it from epoll: no deregister call.
        drop(stream);
        if self.spare_fd.is_none() && !self.listeners.is_empty() {
            // The spare was lost to a race for the descriptor it gave back:
            // the one just freed replaces it.
            self.spare_fd = open_spare().ok();
        }
        let kind = CloseKind::of(&reason);
        self.counters.count_close(&reason, kind, unsent);
        let handler = self.handlers.get_mut(id.index()).and_then(Option::take);
        if let Some(mut handler) = handler {
            let detail = if self.table.recs.is_some() {
                self.close_detail(id, &reason)
            } else {
                None
            };
            if let Some(d) = detail.and_then(|d| d.detected_after.or(d.timer_late)) {
                self.env.handle.record_latency(kind, d);
            }
            let record = CloseRecord {
                id,
                peer,
                kind,
                errno: reason.raw_os_error(),
                side: Side::of(&reason),
                phase,
                unsent: unsent_bytes,
                detail,
                tcp_info,
            };
            let stopping = self.is_stopping();
            let mut ctx = self.ctx(stopping);
            ctx.record = Some(&record);
            guarded("on_close", id, || handler.on_close_with(reason, &mut ctx));
            self.after_callbacks_if_any();
        }
    }
}
