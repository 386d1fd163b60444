//! Connections: the generational slot allocator, the pure
//! per-connection state machine, the table of every connection's socket-side
//! data, and the borrowed [`Conn`] view handlers get.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::clock::Clock;
use crate::close::{reason_from_call_error, CloseReason};
use crate::config::Config;
use crate::handle::Handle;
use crate::record::{LifecycleEvent as Event, Rec};
use crate::timer::Wheel;
use crate::transport::{Peer, Stream};

mod cause;
mod slots;
mod state;
#[cfg(feature = "tls")]
mod tls;
mod view;

#[cfg(feature = "tls")]
pub(crate) use tls::tls_read;

pub use crate::id::ConnId;
pub(crate) use crate::id::LISTENER_BIT;
pub(crate) use slots::Slots;
pub(crate) use state::{ticks, Action, Flag, Phase, State};
pub use view::Conn;

/// Queued output: a buffer and how much of it was written.
#[derive(Debug, Default)]
pub(crate) struct OutBuf {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
}

impl OutBuf {
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// A connection's socket-side data: what a [`Conn`] borrows.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) stream: Stream,
    /// Who the peer is; also the connection's kind (the transport seam).
    pub(crate) peer: Peer,
    pub(crate) st: State,
    /// `None` while nothing is queued: idle connections hold no buffer.
    pub(crate) out: Option<Box<OutBuf>>,
}

impl Core {
    #[inline]
    pub(crate) fn pending(&self) -> usize {
        self.out.as_ref().map_or(0, |o| o.pending())
    }

    /// Writes queued output until done or the socket is full. Returns true
    /// when nothing is left queued.
    pub(crate) fn flush(&mut self, sent: &mut u64) -> bool {
        let Some(out) = self.out.as_mut() else {
            return true;
        };
        while out.pos < out.buf.len() {
            match self.stream.write(&out.buf[out.pos..]) {
                Ok(n) => {
                    out.pos += n;
                    *sent += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.out = None;
                    self.call_failed(e);
                    return true;
                }
            }
        }
        self.out = None;
        true
    }

    /// A write or `shutdown` of ours failed: the connection ends, for the
    /// reason the kernel holds if the peer's reset came first.
    fn call_failed(&mut self, e: io::Error) {
        let stream = &self.stream;
        let reason = reason_from_call_error(e, || stream.take_error().ok().flatten());
        self.st.fail(reason);
    }

    /// Carries out an [`Action`] from the state machine.
    #[inline]
    pub(crate) fn act(&mut self, action: Action) {
        if action == Action::ShutdownWrite {
            if let Err(e) = self.stream.shutdown_write() {
                self.call_failed(e);
            }
        }
    }

    /// Writes `data` (not empty) straight to the socket, nothing being
    /// queued. Returns what the kernel did not take: empty if it took all; the
    /// rest after a partial write, which most likely filled it (no second
    /// call just to hear `WouldBlock`). `None` if the write failed: the
    /// connection ends.
    #[inline]
    fn write_now<'d>(&mut self, data: &'d [u8], sent: &mut u64) -> Option<&'d [u8]> {
        loop {
            match self.stream.write(data) {
                Ok(n) => {
                    *sent += n as u64;
                    return Some(&data[n..]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(data),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.call_failed(e);
                    return None;
                }
            }
        }
    }

    /// `Conn::write`: straight to the socket when nothing is queued and the
    /// connection is open, else queued (one copy).
    pub(crate) fn write(
        &mut self,
        data: &[u8],
        max_write_buffer: usize,
        id: ConnId,
        sent: &mut u64,
    ) {
        if !self.st.accepts_writes() || data.is_empty() {
            return;
        }
        let mut data = data;
        if self.out.is_none() && self.st.is_open() {
            match self.write_now(data, sent) {
                Some(rest) if !rest.is_empty() => data = rest,
                _ => return,
            }
        }
        let out = self.out.get_or_insert_with(Default::default);
        if out.pos > 0 && out.pos >= out.buf.len() / 2 {
            out.buf.drain(..out.pos);
            out.pos = 0;
        }
        out.buf.extend_from_slice(data);
        if out.pending() > max_write_buffer {
            log::debug!(
                "conn {id}: {} bytes queued, past max_write_buffer",
                out.pending()
            );
            // The output stays queued until the socket is closed: the peer
            // gets a reset, not a clean EOF after partial data.
            self.st.fail(CloseReason::Backpressure);
            return;
        }
        self.st.set(Flag::WANT_WRITABLE, true);
    }

    /// Sends bytes the transport made (TLS records: a handshake message, an
    /// alert), in any phase but Done: straight to the socket when nothing
    /// is queued, else queued behind what is.
    #[cfg(feature = "tls")]
    pub(crate) fn send_raw(&mut self, data: &[u8], sent: &mut u64) {
        if data.is_empty() || self.st.phase() == Phase::Done {
            return;
        }
        let mut data = data;
        if self.out.is_none() {
            match self.write_now(data, sent) {
                Some(rest) if !rest.is_empty() => data = rest,
                _ => return,
            }
        }
        let out = self.out.get_or_insert_with(Default::default);
        out.buf.extend_from_slice(data);
        self.st.set(Flag::WANT_WRITABLE, true);
    }

    /// `Conn::close`.
    #[inline]
    pub(crate) fn close(&mut self, env: &Env) {
        let has_pending = self.pending() > 0;
        let action = self
            .st
            .request_close(has_pending, || env.clock.deadline(env.close_ticks));
        // Queued output already asked for writable events when it was queued.
        self.act(action);
    }

    /// `Conn::shutdown_write`.
    pub(crate) fn shutdown_write(&mut self, env: &Env) {
        let has_pending = self.pending() > 0;
        let action = self
            .st
            .request_shutdown_write(has_pending, || env.clock.deadline(env.close_ticks));
        self.act(action);
    }

    /// A drain closes this idle connection (`Drained`).
    pub(crate) fn drain_close(&mut self, env: &Env) {
        let has_pending = self.pending() > 0;
        let action = self
            .st
            .request_drain_close(has_pending, || env.clock.deadline(env.close_ticks));
        self.act(action);
    }

    /// `Conn::abort`.
    pub(crate) fn abort(&mut self) {
        self.st.request_abort();
        if self.st.has(Flag::ABORTIVE) {
            // Only an abort that took effect drops the queue: after a
            // failure, queued output must still make the close a reset.
            self.out = None;
        }
    }
}

/// What a [`Conn`] needs from the reactor besides the connections: the
/// configuration (with the durations the hot path needs already in ticks),
/// the clock and the handle. Owned by the reactor, borrowed by every `Conn`.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) config: Config,
    /// `config.close_timeout` in ticks.
    pub(crate) close_ticks: u64,
    /// `config.connect_timeout` in ticks; 0 = none.
    pub(crate) connect_ticks: u64,
    /// `config.handshake_timeout` in ticks; 0 = none.
    #[cfg(feature = "tls")]
    pub(crate) handshake_ticks: u64,
    /// `config.idle_timeout` in ms; 0 = none.
    pub(crate) idle_ms: u32,
    pub(crate) clock: Clock,
    pub(crate) handle: Handle,
    /// Names this reactor: a [`Connector`](crate::Connector) holds a clone,
    /// so it can tell a `Conn` of its own reactor from another's.
    pub(crate) identity: std::rc::Rc<()>,
    /// A drain is under way: connections marked idle are closed.
    pub(crate) draining: std::cell::Cell<bool>,
    /// `config.lingering_close` is `WhenUnread`: the read path marks a
    /// connection whose last read found the socket empty.
    pub(crate) skip_linger: bool,
}

impl Env {
    pub(crate) fn new(config: Config, handle: Handle) -> Env {
        Env {
            close_ticks: ticks(config.close_timeout),
            connect_ticks: config.connect_timeout.map_or(0, ticks),
            #[cfg(feature = "tls")]
            handshake_ticks: config.handshake_timeout.map_or(0, ticks),
            idle_ms: idle_ms(config.idle_timeout),
            skip_linger: config.lingering_close == crate::config::LingeringClose::WhenUnread,
            config,
            clock: Clock::new(),
            handle,
            identity: std::rc::Rc::new(()),
            draining: std::cell::Cell::new(false),
        }
    }
}

/// An idle timeout in whole ms for [`State`]; `None` and zero are 0 (off).
pub(crate) fn idle_ms(t: Option<Duration>) -> u32 {
    t.map_or(0, |d| ticks(d).min(u64::from(u32::MAX)) as u32)
}

/// Every connection's socket-side data, and what callbacks leave for the
/// reactor to do after them. Not generic over the handler type, so a
/// [`Conn`] can borrow all of it: that is how a handler reaches another
/// connection by its [`ConnId`].
#[derive(Debug)]
pub(crate) struct Table {
    pub(crate) cores: Slots<Core>,
    /// Connections a callback reached through [`Conn::other`]: their
    /// registration, timers and ready-list entries are brought up to date
    /// after the callback.
    pub(crate) touched: Vec<ConnId>,
    /// Outbound connects started during a callback: their handlers wait in
    /// the [`Connector`](crate::Connector)'s queue and are attached after it.
    pub(crate) started: Vec<ConnId>,
    /// `touched` or `started` may have entries: what the reactor tests after
    /// every callback, one flag where two lists would be two tests.
    pub(crate) after_work: bool,
    /// The handlers' own timers ([`Conn::set_timer`]), keyed by slot.
    pub(crate) timers: Wheel,
    /// Bytes read from peers, and taken by the kernel from our output,
    /// since the reactor was made (for its counters).
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// Per slot, what the close record's detail needs
    /// ([`Config::close_records`]); `None` when off.
    pub(crate) recs: Option<Vec<Rec>>,
    /// Per slot, the TLS state of TLS connections ([`Flag::TLS`]).
    #[cfg(feature = "tls")]
    pub(crate) tls: Vec<Option<Box<crate::transport::tls::TlsSession>>>,
    /// Where TLS records are made before they join a connection's output.
    #[cfg(feature = "tls")]
    pub(crate) tls_out: Vec<u8>,
}

impl Table {
    pub(crate) fn with_capacity(cap: usize) -> Table {
        Table {
            cores: Slots::with_capacity(cap),
            touched: Vec::new(),
            started: Vec::new(),
            after_work: false,
            timers: Wheel::new(),
            bytes_in: 0,
            bytes_out: 0,
            recs: None,
            #[cfg(feature = "tls")]
            tls: Vec::new(),
            #[cfg(feature = "tls")]
            tls_out: Vec::new(),
        }
    }

    /// Connection `id`, named from outside the callback that asks
    /// ([`Conn::other`], [`Ctx::conn`](crate::Ctx::conn)): `None` if it is
    /// closed or another reactor's. Noted, so that the reactor brings it up
    /// to date after the callback.
    pub(crate) fn reach<'t>(&'t mut self, id: ConnId, env: &'t Env) -> Option<Conn<'t>> {
        self.cores.get_foreign(id)?;
        self.touched.push(id);
        self.after_work = true;
        Some(Conn {
            id,
            table: self,
            env,
        })
    }

    /// Starts the record of connection `id` (records on), opened at `now`.
    pub(crate) fn start_rec(&mut self, id: ConnId, now: u64, opened: bool) {
        if let Some(recs) = self.recs.as_mut() {
            let i = id.index();
            if recs.len() <= i {
                recs.resize(i + 1, Rec::default());
            }
            let mut rec = Rec {
                opened: now,
                ..Rec::default()
            };
            if opened {
                rec.history.push(Event::Opened);
            }
            recs[i] = rec;
        }
    }

    /// Notes a lifecycle event of connection `id` (records on).
    #[inline(always)]
    pub(crate) fn note(&mut self, id: ConnId, e: Event) {
        if self.recs.is_some() {
            self.note_slow(id, e);
        }
    }

    #[cold]
    fn note_slow(&mut self, id: ConnId, e: Event) {
        if let Some(r) = self.recs.as_mut().and_then(|r| r.get_mut(id.index())) {
            r.history.push(e);
        }
    }

    /// Counts bytes of our output the kernel took for connection `id`
    /// (records on).
    #[inline]
    pub(crate) fn count_sent(&mut self, id: ConnId, sent: u64) {
        if let Some(r) = self.recs.as_mut().and_then(|r| r.get_mut(id.index())) {
            r.bytes_out += sent;
        }
    }

    /// Starts an outbound connect: a new connection in the Connecting phase
    /// (or already Done, if `connect(2)` failed at once). `Err` only when no
    /// socket could be made.
    pub(crate) fn start_connect(&mut self, addr: SocketAddr, env: &Env) -> io::Result<ConnId> {
        let (sock, failed) = crate::sys::start_connect(addr, &env.config)?;
        let stream = Stream::from_fd(sock.into());
        Ok(self.start(stream, failed, Peer::Tcp(addr), &addr.to_string(), env))
    }

    /// [`start_connect`](Table::start_connect) to a Unix-domain path.
    pub(crate) fn start_connect_unix(
        &mut self,
        path: &std::path::Path,
        env: &Env,
    ) -> io::Result<ConnId> {
        let (stream, failed) = crate::transport::unix::start_connect(path)?;
        let to = format!("unix:{}", crate::transport::unix::display(path));
        Ok(self.start(stream, failed, Peer::Unix, &to, env))
    }

    fn start(
        &mut self,
        stream: Stream,
        failed: Option<io::Error>,
        peer: Peer,
        to: &str,
        env: &Env,
    ) -> ConnId {
        let deadline = env.clock.deadline_unless_off(env.connect_ticks);
        let mut st = State::connecting(env.idle_ms, deadline);
        if let Some(e) = failed {
            log::debug!("connect to {to} failed at once: {e}");
            st.fail(CloseReason::ConnectFailed(e));
        }
        let (id, _) = self.cores.insert(Core {
            stream,
            peer,
            st,
            out: None,
        });
        if self.recs.is_some() {
            self.start_rec(id, env.clock.now(), false);
        }
        log::trace!("conn {id}: connecting to {to}");
        self.started.push(id);
        self.after_work = true;
        id
    }
}

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;
