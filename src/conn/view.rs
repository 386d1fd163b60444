//! [`Conn`]: the view of a connection a handler gets during a callback, and
//! what each of its methods does in each phase of the connection's life.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use super::{idle_ms, ticks, Core, Env, Flag, Phase, Table};
// For the intra-doc links only.
#[cfg(doc)]
use crate::close::CloseReason;
#[cfg(doc)]
use crate::config::Config;
use crate::conn::ConnId;
use crate::handle::Handle;
use crate::record::LifecycleEvent as Event;
use crate::transport::{Peer, PeerCred};

/// A handler's view of a connection during a callback: its own, or another
/// one of the same reactor reached with [`Conn::other`].
///
/// It borrows the reactor's connections; everything it does takes effect at
/// once (a write goes to the socket if nothing is queued) or when the callback
/// returns (registration changes, timers, the close).
///
/// # Phases
///
/// An outbound connection is **connecting** until the connect completes
/// (then `on_open`) or fails. A connection is **open** until
/// [`close`](Conn::close) (then **closing**: flushing queued output, sending
/// our FIN, waiting for the peer's), or until [`abort`](Conn::abort) or a
/// failure (then **closed**: the socket is closed and `on_close` called when
/// the callback returns). Every method is defined in every phase. A handler
/// sees its own connection connecting or closing only through
/// [`Conn::other`] or for the rest of the callback that closed it. In short:
///
/// | method | connecting | open | closing | closed |
/// |---|---|---|---|---|
/// | [`write`](Conn::write) | queued until connected | sends or queues | ignored | ignored |
/// | [`close`](Conn::close) | abandons the connect | starts the close | ignored | ignored |
/// | [`shutdown_write`](Conn::shutdown_write) | FIN once connected and flushed | FIN after queued output | ignored | ignored |
/// | [`abort`](Conn::abort) | abandons the connect | reset | reset, queued output dropped | ignored |
/// | [`pause_reading`](Conn::pause_reading), [`resume_reading`](Conn::resume_reading) | as named | as named | ignored | ignored |
/// | [`set_idle_timeout`](Conn::set_idle_timeout), [`set_deadline`](Conn::set_deadline), [`clear_deadline`](Conn::clear_deadline) | ignored: the connect timeout governs | as named | ignored: the close timeout governs | ignored |
/// | [`set_timer`](Conn::set_timer), [`cancel_timer`](Conn::cancel_timer) | armed; fires only if open by then | as named | armed; never fires | ignored |
/// | [`set_idle`](Conn::set_idle) | as named | as named (a drain closes it) | ignored | ignored |
/// | getters, [`handle`](Conn::handle), [`other`](Conn::other) | answer | answer | answer | answer |
///
/// # Examples
///
/// A line protocol that answers each line, gives a client 30 s to finish,
/// and stops reading while an answer waits in the queue:
///
/// ```
/// use std::time::Duration;
/// use hangup::{CloseReason, Conn, Handler};
///
/// struct Lines;
/// impl Handler for Lines {
///     fn on_open(&mut self, conn: &mut Conn<'_>) {
///         conn.set_idle_timeout(Some(Duration::from_secs(5)));
///         conn.set_deadline(Duration::from_secs(30));
///     }
///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
///         if data.starts_with(b"quit") {
///             conn.write(b"bye\n");
///             conn.close(); // "bye" is flushed before our FIN
///             return;
///         }
///         conn.write(data);
///         if conn.pending_output() > 64 * 1024 {
///             conn.pause_reading(); // resumed in on_drained
///         }
///     }
///     fn on_drained(&mut self, conn: &mut Conn<'_>) {
///         conn.resume_reading();
///     }
///     fn on_close(&mut self, reason: CloseReason) {
///         log::info!("closed: {reason}");
///     }
/// }
/// # let mut reactor = hangup::Reactor::new()?;
/// # reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Lines)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Conn<'a> {
    pub(crate) id: ConnId,
    pub(crate) table: &'a mut Table,
    pub(crate) env: &'a Env,
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let core = self.peek();
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("peer", &core.peer)
            .field("phase", &core.st.phase())
            .field("pending", &core.pending())
            .finish()
    }
}

impl Conn<'_> {
    /// This connection's data. The reactor never removes a connection
    /// while a `Conn` for it exists.
    #[inline]
    fn core(&mut self) -> &mut Core {
        self.table.cores.live_mut(self.id)
    }

    #[inline]
    fn peek(&self) -> &Core {
        self.table.cores.live(self.id)
    }

    /// This connection's id: `Copy + Eq + Hash + Debug`, never reused while a
    /// stale event could reach it. Any phase.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's TCP address: as `accept` reported it, or the address an
    /// outbound connection was opened to. For a Unix-domain connection,
    /// which has no such address, `0.0.0.0:0` (unspecified): see
    /// [`peer`](Conn::peer). Any phase.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peek().peer.addr_or_unspecified()
    }

    /// Who the peer is: [`Peer::Tcp`] with its address, or [`Peer::Unix`].
    /// Any phase.
    pub fn peer(&self) -> Peer {
        self.peek().peer
    }

    /// The Unix-domain peer's credentials (`SO_PEERCRED`: pid, uid, gid,
    /// fixed when it connected), read from the kernel now: nothing is read
    /// or kept for connections that do not ask. Any phase.
    ///
    /// # Errors
    ///
    /// `ErrorKind::Unsupported` for a TCP connection, or where the OS has no
    /// `SO_PEERCRED` (Linux and Android have it); otherwise the error
    /// `getsockopt(2)` gave.
    pub fn peer_cred(&self) -> std::io::Result<PeerCred> {
        let core = self.peek();
        if !core.peer.is_unix() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::Unsupported,
                "peer credentials exist only for Unix-domain connections",
            ));
        }
        crate::transport::unix::peer_cred(&core.stream)
    }

    /// Sends `data`, without blocking.
    ///
    /// With nothing queued, `data` goes straight to the socket; what the
    /// kernel does not take is queued and flushed on writable events, and
    /// [`Handler::on_drained`](crate::Handler::on_drained) is called when the
    /// queue empties. When queued output passes
    /// [`Config::max_write_buffer`], the connection closes with
    /// [`CloseReason::Backpressure`] and the peer gets a reset. A write error
    /// (the peer reset) ends the connection when the callback returns.
    ///
    /// Connecting: queued, sent once connected. Open: as above. After
    /// [`shutdown_write`](Conn::shutdown_write), closing or closed: ignored
    /// (output after our FIN was asked for could not go before it).
    pub fn write(&mut self, data: &[u8]) {
        let (id, max) = (self.id, self.env.config.max_write_buffer);
        #[cfg(feature = "tls")]
        if self.peek().st.has(Flag::TLS) {
            let before = self.table.bytes_out;
            self.table.tls_write(id, data, max);
            if self.table.recs.is_some() {
                let sent = self.table.bytes_out - before;
                self.table.count_sent(id, sent);
            }
            return;
        }
        let Table {
            cores, bytes_out, ..
        } = &mut *self.table;
        let before = *bytes_out;
        let core = cores.live_mut(id);
        core.write(data, max, id, bytes_out);
        if self.table.recs.is_some() {
            let sent = self.table.bytes_out - before;
            self.table.count_sent(id, sent);
        }
    }

    /// A TLS connection's close_notify, before our FIN: once, and only on an
    /// open connection whose handshake is done.
    #[cfg(feature = "tls")]
    fn close_notify(&mut self) {
        let st = &self.peek().st;
        if st.has(Flag::TLS) && st.is_open() && !st.has_any(Flag::FIN_PENDING, Flag::WRITE_CLOSED) {
            self.table.tls_close_notify(self.id);
        }
    }

    /// A TLS connection's negotiated facts (feature `tls`): the server name
    /// the client sent, the ALPN protocol, the protocol version, the cipher
    /// suite, the peer's certificates, as rustls keeps them. `None` for a
    /// plain connection. Any phase (while the handshake runs, what is known
    /// so far).
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<&rustls::Connection> {
        self.table.tls_session(self.id).map(|s| &s.conn)
    }

    /// Bytes queued and not yet taken by the kernel. Any phase.
    pub fn pending_output(&self) -> usize {
        self.peek().pending()
    }

    /// Closes gracefully: flushes queued output, sends a FIN, then reads and
    /// discards input until the peer's FIN (or
    /// [`Config::close_timeout`]) before closing the socket, so that the
    /// kernel does not answer late input with a reset that would destroy
    /// output still in flight. After the peer's FIN there is nothing to
    /// wait for: the socket closes once the output is out. Under
    /// [`LingeringClose::WhenUnread`](crate::LingeringClose::WhenUnread) the
    /// wait is also skipped when the last read found the socket empty (see
    /// its risk). No more `on_data` after this; `on_close`
    /// follows when the socket is closed, with [`CloseReason::Local`] unless
    /// an earlier cause (such as the peer's FIN) was seen.
    ///
    /// Output queued before `close` is either all handed to the kernel before
    /// our FIN, or the close is reported as a failure and the peer gets a
    /// reset: [`CloseReason::FlushTimeout`] when the peer took none of it for
    /// [`Config::close_timeout`], or the error a write hit. Never a clean EOF
    /// after partial data.
    ///
    /// Connecting: the connect is abandoned (`on_close` with `Local`, no
    /// `on_open`). Open: starts the close. Closing or closed: ignored (the
    /// close already under way keeps its timeout).
    #[inline]
    pub fn close(&mut self) {
        let env = self.env;
        #[cfg(feature = "tls")]
        self.close_notify();
        self.core().close(env);
        self.table.note(self.id, Event::Close);
    }

    /// Half-closes this side: flushes queued output, then sends our FIN;
    /// reading goes on as long as the peer sends. `on_close` comes when the
    /// peer closes too ([`CloseReason::PeerClosed`], after `on_read_closed`)
    /// or on an error; idle timeouts and deadlines still apply. A proxy
    /// passes a client's FIN on with it.
    ///
    /// Connecting: our FIN follows once connected and flushed. Open: as
    /// above; if the peer's FIN was already seen, this is [`close`](Conn::close).
    /// Closing or closed, or called twice: ignored.
    pub fn shutdown_write(&mut self) {
        let env = self.env;
        #[cfg(feature = "tls")]
        self.close_notify();
        self.core().shutdown_write(env);
        self.table.note(self.id, Event::ShutdownWrite);
    }

    /// Whether our FIN was sent or asked for ([`shutdown_write`](Conn::shutdown_write)).
    /// Any phase.
    pub fn is_write_closed(&self) -> bool {
        self.peek()
            .st
            .has_any(Flag::FIN_PENDING, Flag::WRITE_CLOSED)
    }

    /// Closes abortively: queued output is dropped and the peer gets a reset
    /// (SO_LINGER 0) when the callback returns; `on_close` gets
    /// [`CloseReason::Local`] unless an earlier cause was seen.
    ///
    /// Connecting: the connect is abandoned. Open or closing: as above (while
    /// closing, this gives up on the flush). Closed: ignored.
    pub fn abort(&mut self) {
        self.core().abort();
        self.table.note(self.id, Event::Abort);
    }

    /// Stops reading from this connection until
    /// [`resume_reading`](Conn::resume_reading); the kernel's buffer fills and
    /// TCP flow control slows the peer. A reset or a dead peer is still
    /// reported while paused; a FIN is reported after reading resumes and the
    /// bytes before it were delivered.
    ///
    /// Connecting or open: as above. Closing or closed: ignored (a closing
    /// connection reads and discards input, so that the kernel does not
    /// answer it with a reset).
    ///
    /// # Examples
    ///
    /// Stop reading a peer whose answers pile up, until they drain:
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// use hangup::{CloseReason, Conn, Handler};
    ///
    /// struct Paced;
    /// impl Handler for Paced {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
    ///         conn.write(data);
    ///         if conn.pending_output() > 1 << 20 {
    ///             conn.pause_reading();
    ///         }
    ///     }
    ///     fn on_drained(&mut self, conn: &mut Conn<'_>) {
    ///         conn.resume_reading();
    ///     }
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    /// ```
    pub fn pause_reading(&mut self) {
        self.core().st.pause();
    }

    /// Resumes reading after [`pause_reading`](Conn::pause_reading).
    ///
    /// Ignored unless the connection is connecting or open.
    pub fn resume_reading(&mut self) {
        self.core().st.resume();
    }

    /// Whether reading is paused. Any phase.
    pub fn is_reading_paused(&self) -> bool {
        self.peek().st.has(Flag::PAUSED)
    }

    /// Whether the peer's FIN was seen (it will send nothing more). Any phase.
    pub fn is_read_closed(&self) -> bool {
        self.peek().st.has(Flag::PEER_FIN)
    }

    /// Marks the connection idle (between requests: nothing in progress that
    /// a close would cut) or busy. Only the protocol knows; the reactor uses
    /// it during a drain ([`Handle::drain`]): an idle connection is closed
    /// at once, gracefully, with [`CloseReason::Drained`], and a busy one
    /// that becomes idle is closed then. Outside a drain it changes nothing.
    ///
    /// Mark a connection idle only when no request can be in flight: a
    /// connection just accepted, whose first request may be on its way, is
    /// not idle (closing it would leave that request unanswered: the race
    /// nginx's keep-alive close had, nginx PR #437). `tests/restart.rs`
    /// counted one such dropped request per few restarts until its protocol
    /// stopped marking new connections idle.
    ///
    /// Connecting or open: as above. Closing or closed: ignored.
    ///
    /// # Examples
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// use hangup::{CloseReason, Conn, Handler};
    ///
    /// /// Answers each line; idle once a line was answered.
    /// struct Lines;
    /// impl Handler for Lines {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
    ///         conn.set_idle(false);
    ///         conn.write(data);
    ///         if data.ends_with(b"\n") {
    ///             conn.set_idle(true); // a drain may close it now
    ///         }
    ///     }
    ///     fn on_drain(&mut self, conn: &mut Conn<'_>) {
    ///         conn.write(b"server going away\n");
    ///     }
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    /// ```
    pub fn set_idle(&mut self, idle: bool) {
        let env = self.env;
        let core = self.core();
        core.st.set_idle(idle);
        if idle && env.draining.get() && core.st.is_open() {
            core.drain_close(env);
        }
    }

    /// Whether the handler marked the connection idle
    /// ([`set_idle`](Conn::set_idle)). Any phase.
    pub fn is_idle(&self) -> bool {
        self.peek().st.has(Flag::IDLE)
    }

    /// Whether the connection is open: connected, and not closing or closed.
    /// Any phase.
    pub fn is_open(&self) -> bool {
        self.peek().st.is_open()
    }

    /// Overrides [`Config::idle_timeout`] for this connection; the timer
    /// restarts now. `None` turns it off. Zero counts as `None`; more than
    /// `u32::MAX` ms (49.7 days) counts as `u32::MAX` ms.
    ///
    /// Open: as above. Connecting, closing or closed: ignored (the connect or
    /// close timeout governs).
    ///
    /// # Examples
    ///
    /// A short idle timeout until the peer logs in, a long one after:
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// use std::time::Duration;
    /// use hangup::{CloseReason, Conn, Handler};
    ///
    /// struct Login { done: bool }
    /// impl Handler for Login {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         conn.set_idle_timeout(Some(Duration::from_secs(5)));
    ///     }
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
    ///         if !self.done && data.starts_with(b"LOGIN ") {
    ///             self.done = true;
    ///             conn.set_idle_timeout(Some(Duration::from_secs(600)));
    ///         }
    ///     }
    ///     fn on_close(&mut self, reason: CloseReason) {
    ///         // CloseReason::Idle if the peer went quiet for too long.
    ///         let _ = reason;
    ///     }
    /// }
    /// ```
    pub fn set_idle_timeout(&mut self, t: Option<Duration>) {
        let clock = &self.env.clock;
        let ms = idle_ms(t);
        self.table
            .cores
            .get_mut(self.id)
            .expect("a Conn names a live connection")
            .st
            .set_idle_timeout(ms, || clock.now());
    }

    /// Sets a one-shot deadline `after` from this call, replacing any earlier one.
    /// Bytes arriving do not extend it. When it passes, the connection closes
    /// with [`CloseReason::Deadline`]. This is what stops a slowloris peer
    /// that trickles bytes to dodge an idle timeout.
    ///
    /// Open: as above. Connecting, closing or closed: ignored: a connect or
    /// a close in progress is bounded by [`Config::connect_timeout`] or
    /// [`Config::close_timeout`] alone, so a deadline can neither cut it
    /// short nor stretch it.
    ///
    /// # Examples
    ///
    /// A peer must send its whole request within 10 s, however it trickles:
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// use std::time::Duration;
    /// use hangup::{CloseReason, Conn, Handler};
    ///
    /// struct Request { got: Vec<u8> }
    /// impl Handler for Request {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         conn.set_deadline(Duration::from_secs(10));
    ///     }
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
    ///         self.got.extend_from_slice(data);
    ///         if self.got.ends_with(b"\r\n\r\n") {
    ///             conn.clear_deadline(); // the request is complete
    ///             conn.write(b"HTTP/1.1 204 No Content\r\n\r\n");
    ///         }
    ///     }
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    /// ```
    pub fn set_deadline(&mut self, after: Duration) {
        let at = self.env.clock.deadline(ticks(after));
        self.core().st.set_deadline(at);
    }

    /// Removes the deadline, if one is set.
    ///
    /// Open: as above. Otherwise ignored: it never removes a connect or
    /// close timeout.
    pub fn clear_deadline(&mut self) {
        self.core().st.clear_deadline();
    }

    /// Asks for [`Handler::on_timer`](crate::Handler::on_timer) once, `after`
    /// from this call (to the millisecond, never early, however long the
    /// callback ran before it), replacing an earlier timer of this
    /// connection, even one that is due in this very turn. For heartbeats, retries, protocol timeouts:
    /// it closes nothing by itself. Arming, re-arming and cancelling are
    /// O(1) on the reactor's timer wheel, with no allocation once the wheel
    /// has room for this connection's slot.
    ///
    /// Open: as above. Connecting or closing: armed, but the callback comes
    /// only if the connection is open when the timer fires. Closed: ignored;
    /// a connection's timer is cancelled when it closes.
    pub fn set_timer(&mut self, after: Duration) {
        if self.peek().st.phase() == Phase::Done {
            return;
        }
        let at = self.env.clock.deadline(ticks(after));
        self.table.timers.schedule(self.id.index(), at);
    }

    /// Cancels the timer set with [`set_timer`](Conn::set_timer), if any,
    /// even one that fell due in this turn and was not delivered yet (an
    /// earlier `on_timer` of the same turn cancelling another's). Any phase.
    pub fn cancel_timer(&mut self) {
        if !self.table.timers.is_idle() {
            self.table.timers.cancel(self.id.index());
        }
    }

    /// Asks for a `TCP_INFO` snapshot (rtt, retransmits, unacknowledged
    /// and unsent data, ...) taken just before this connection's descriptor
    /// closes, in its [`CloseRecord`](crate::CloseRecord). One
    /// `getsockopt` at close; nothing is read unless asked for (here or with
    /// [`Config::tcp_info_at_close`]). Linux only; elsewhere the record has
    /// none. Any phase but closed.
    pub fn capture_tcp_info(&mut self) {
        self.core().st.set(Flag::TCP_INFO, true);
    }

    /// Another connection of this reactor, by id, to write to, close, abort,
    /// half-close, pause or resume within this callback: no thread, no lock,
    /// and no copy beyond the one into that connection's output queue (a
    /// write goes straight to its socket when nothing is queued there).
    /// `None` if `id` names no open connection of this reactor (it closed,
    /// or belongs to another reactor).
    ///
    /// What the callback does to it takes effect as for its own connection;
    /// the reactor brings that connection's registration and timers up to
    /// date, and closes it if it ended, when the callback returns. Its
    /// handler is not called from here: its `on_close`, if it ended, comes
    /// after this callback. Any phase.
    ///
    /// # Examples
    ///
    /// Flow control across a pair (as in `examples/proxy.rs`):
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// use hangup::{CloseReason, Conn, ConnId, Handler};
    ///
    /// const MARK: usize = 256 * 1024;
    ///
    /// /// Forwards what it reads to its partner connection.
    /// struct Pipe { partner: ConnId }
    /// impl Handler for Pipe {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
    ///         let Some(mut to) = conn.other(self.partner) else { return conn.close() };
    ///         to.write(data);
    ///         if to.pending_output() > MARK {
    ///             // The partner's peer is slow: stop reading ours until it drains.
    ///             conn.pause_reading();
    ///         }
    ///     }
    ///     fn on_drained(&mut self, conn: &mut Conn<'_>) {
    ///         // Our queue emptied: the partner may read again.
    ///         if let Some(mut from) = conn.other(self.partner) {
    ///             from.resume_reading();
    ///         }
    ///     }
    ///     fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
    ///         // Pass the FIN on; the other direction keeps flowing.
    ///         if let Some(mut to) = conn.other(self.partner) {
    ///             to.shutdown_write();
    ///         }
    ///     }
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    /// ```
    pub fn other(&mut self, id: ConnId) -> Option<Conn<'_>> {
        if id == self.id {
            return Some(Conn {
                id,
                table: &mut *self.table,
                env: self.env,
            });
        }
        self.table.reach(id, self.env)
    }

    /// A [`Handle`] to the reactor, to reach other connections (by
    /// [`ConnId`]) from other threads, or to shut down. Any phase.
    pub fn handle(&self) -> Handle {
        self.env.handle.clone()
    }
}
