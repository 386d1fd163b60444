//! Connections: [`ConnId`], the generational slot allocator, the pure
//! per-connection state machine, and the borrowed [`Conn`] view handlers get.

use std::fmt;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;

use crate::close::{reason_from_error, CloseReason};
use crate::config::Config;
use crate::handle::Handle;

mod slots;
mod state;

pub use slots::ConnId;
pub(crate) use slots::{Slots, LISTENER_BIT, MAX_SLOTS};
pub(crate) use state::{ticks, Action, Flag, Phase, State};

/// Queued output: a buffer and how much of it was written.
#[derive(Debug, Default)]
pub(crate) struct OutBuf {
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
}

impl OutBuf {
    pub(crate) fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// A connection's socket-side data: what a [`Conn`] borrows.
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) stream: TcpStream,
    pub(crate) peer: SocketAddr,
    pub(crate) st: State,
    /// `None` while nothing is queued: idle connections hold no buffer.
    pub(crate) out: Option<Box<OutBuf>>,
}

impl Core {
    pub(crate) fn pending(&self) -> usize {
        self.out.as_ref().map_or(0, |o| o.pending())
    }

    /// Writes queued output until done or the socket is full. Returns true
    /// when nothing is left queued.
    pub(crate) fn flush(&mut self) -> bool {
        let Some(out) = self.out.as_mut() else {
            return true;
        };
        while out.pos < out.buf.len() {
            match self.stream.write(&out.buf[out.pos..]) {
                Ok(n) => out.pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.out = None;
                    self.st.fail(reason_from_error(e));
                    return true;
                }
            }
        }
        self.out = None;
        true
    }

    /// Carries out an [`Action`] from the state machine.
    pub(crate) fn act(&mut self, action: Action) {
        if action == Action::ShutdownWrite {
            if let Err(e) = self.stream.shutdown(std::net::Shutdown::Write) {
                self.st.fail(reason_from_error(e));
            }
        }
    }
}

/// The reactor's clock in ticks (milliseconds since it started). Read from
/// the OS at most once per turn, and only when something needs the time.
#[derive(Debug)]
pub(crate) struct Clock {
    origin: std::time::Instant,
    cached: std::cell::Cell<u64>,
}

impl Clock {
    const UNKNOWN: u64 = u64::MAX;

    pub(crate) fn new() -> Clock {
        Clock {
            origin: std::time::Instant::now(),
            cached: std::cell::Cell::new(Self::UNKNOWN),
        }
    }

    /// The current tick, read once per turn.
    pub(crate) fn now(&self) -> u64 {
        let t = self.cached.get();
        if t != Self::UNKNOWN {
            return t;
        }
        let t = self.origin.elapsed().as_millis() as u64;
        self.cached.set(t);
        t
    }

    /// A new turn: the next `now` reads the OS clock again.
    pub(crate) fn invalidate(&self) {
        self.cached.set(Self::UNKNOWN);
    }
}

/// What a [`Conn`] needs from the reactor besides its own connection: the
/// configuration (with the durations the hot path needs already in ticks),
/// the clock and the handle. Owned by the reactor, borrowed by every `Conn`.
#[derive(Debug)]
pub(crate) struct Env {
    pub(crate) config: Config,
    /// `config.close_timeout` in ticks.
    pub(crate) close_ticks: u64,
    /// `config.idle_timeout` in ms; 0 = none.
    pub(crate) idle_ms: u32,
    pub(crate) clock: Clock,
    pub(crate) handle: Handle,
}

impl Env {
    pub(crate) fn new(config: Config, handle: Handle) -> Env {
        Env {
            close_ticks: ticks(config.close_timeout),
            idle_ms: idle_ms(config.idle_timeout),
            config,
            clock: Clock::new(),
            handle,
        }
    }
}

/// An idle timeout in whole ms for [`State::idle_ms`]; `None` and zero are 0 (off).
pub(crate) fn idle_ms(t: Option<Duration>) -> u32 {
    t.map_or(0, |d| ticks(d).min(u64::from(u32::MAX)) as u32)
}

/// A handler's view of its connection during a callback.
///
/// It borrows the connection's state; everything it does takes effect at
/// once (a write goes to the socket if nothing is queued) or when the callback
/// returns (registration changes, timers, the close).
///
/// # Phases
///
/// A connection is **open** until [`close`](Conn::close) (then **closing**:
/// flushing queued output, sending our FIN, waiting for the peer's), or until
/// [`abort`](Conn::abort) or a failure (then **closed**: the socket is closed
/// and `on_close` called when the callback returns). Every method is defined
/// in every phase; a `Conn` can be in the closing or closed phase only for
/// the rest of the callback that closed it, and [`Handle`] commands reach a
/// closing connection too. In short:
///
/// | method | open | closing | closed |
/// |---|---|---|---|
/// | [`write`](Conn::write) | sends or queues | ignored | ignored |
/// | [`close`](Conn::close) | starts the close | ignored | ignored |
/// | [`abort`](Conn::abort) | reset | reset, queued output dropped | ignored |
/// | [`pause_reading`](Conn::pause_reading), [`resume_reading`](Conn::resume_reading) | as named | ignored | ignored |
/// | [`set_idle_timeout`](Conn::set_idle_timeout), [`set_deadline`](Conn::set_deadline), [`clear_deadline`](Conn::clear_deadline) | as named | ignored: the close timeout governs | ignored |
/// | getters, [`handle`](Conn::handle) | answer | answer | answer |
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
    pub(crate) core: &'a mut Core,
    pub(crate) env: &'a Env,
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Conn")
            .field("id", &self.id)
            .field("peer", &self.core.peer)
            .field("phase", &self.core.st.phase())
            .field("pending", &self.core.pending())
            .finish()
    }
}

impl Conn<'_> {
    /// This connection's id: `Copy + Eq + Hash + Debug`, never reused while a
    /// stale event could reach it. Any phase.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address, as `accept` reported it. Any phase.
    pub fn peer_addr(&self) -> SocketAddr {
        self.core.peer
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
    /// Open: as above. Closing or closed: ignored (output after `close` could
    /// not go before the FIN that `close` promised).
    pub fn write(&mut self, data: &[u8]) {
        if !self.core.st.is_open() || data.is_empty() {
            return;
        }
        let mut data = data;
        if self.core.out.is_none() {
            loop {
                match self.core.stream.write(data) {
                    Ok(n) if n == data.len() => return,
                    Ok(n) => {
                        data = &data[n..];
                        // The kernel took part: it is most likely full now.
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        self.core.st.fail(reason_from_error(e));
                        return;
                    }
                }
            }
        }
        let out = self.core.out.get_or_insert_with(Default::default);
        if out.pos > 0 && out.pos >= out.buf.len() / 2 {
            out.buf.drain(..out.pos);
            out.pos = 0;
        }
        out.buf.extend_from_slice(data);
        if out.pending() > self.env.config.max_write_buffer {
            log::debug!(
                "conn {}: {} bytes queued, past max_write_buffer",
                self.id,
                out.pending()
            );
            // The output stays queued until the socket is closed: the peer
            // gets a reset, not a clean EOF after partial data.
            self.core.st.fail(CloseReason::Backpressure);
            return;
        }
        self.core.st.set(Flag::WANT_WRITABLE, true);
    }

    /// Bytes queued and not yet taken by the kernel. Any phase.
    pub fn pending_output(&self) -> usize {
        self.core.pending()
    }

    /// Closes gracefully: flushes queued output, sends a FIN, then reads and
    /// discards input until the peer's FIN (or
    /// [`Config::close_timeout`]) before closing the socket, so that the
    /// kernel does not answer late input with a reset that would destroy
    /// output still in flight. No more `on_data` after this; `on_close`
    /// follows when the socket is closed, with [`CloseReason::Local`] unless
    /// an earlier cause (such as the peer's FIN) was seen.
    ///
    /// Output queued before `close` is either all handed to the kernel before
    /// our FIN, or the close is reported as a failure and the peer gets a
    /// reset: [`CloseReason::FlushTimeout`] when the peer took none of it for
    /// [`Config::close_timeout`], or the error a write hit. Never a clean EOF
    /// after partial data.
    ///
    /// Open: starts the close. Closing or closed: ignored (the close already
    /// under way keeps its timeout).
    #[inline]
    pub fn close(&mut self) {
        let has_pending = self.core.pending() > 0;
        let env = self.env;
        let action = self
            .core
            .st
            .request_close(has_pending, || env.clock.now() + env.close_ticks);
        // Queued output already asked for writable events when it was queued.
        self.core.act(action);
    }

    /// Closes abortively: queued output is dropped and the peer gets a reset
    /// (SO_LINGER 0) when the callback returns; `on_close` gets
    /// [`CloseReason::Local`] unless an earlier cause was seen.
    ///
    /// Open or closing: as above (while closing, this gives up on the flush).
    /// Closed: ignored.
    pub fn abort(&mut self) {
        self.core.st.request_abort();
        if self.core.st.has(Flag::ABORTIVE) {
            // Only an abort that took effect drops the queue: after a
            // failure, queued output must still make the close a reset.
            self.core.out = None;
        }
    }

    /// Stops reading from this connection until
    /// [`resume_reading`](Conn::resume_reading); the kernel's buffer fills and
    /// TCP flow control slows the peer. A reset or a dead peer is still
    /// reported while paused; a FIN is reported after reading resumes and the
    /// bytes before it were delivered.
    ///
    /// Open: as above. Closing or closed: ignored (a closing connection reads
    /// and discards input, so that the kernel does not answer it with a reset).
    pub fn pause_reading(&mut self) {
        self.core.st.pause();
    }

    /// Resumes reading after [`pause_reading`](Conn::pause_reading).
    ///
    /// Ignored unless the connection is open.
    pub fn resume_reading(&mut self) {
        self.core.st.resume();
    }

    /// Whether reading is paused. Any phase.
    pub fn is_reading_paused(&self) -> bool {
        self.core.st.has(Flag::PAUSED)
    }

    /// Whether the peer's FIN was seen (it will send nothing more). Any phase.
    pub fn is_read_closed(&self) -> bool {
        self.core.st.has(Flag::PEER_FIN)
    }

    /// Overrides [`Config::idle_timeout`] for this connection; the timer
    /// restarts now. `None` turns it off. Zero counts as `None`; more than
    /// `u32::MAX` ms (49.7 days) counts as `u32::MAX` ms.
    ///
    /// Open: as above. Closing or closed: ignored (the close timeout governs).
    pub fn set_idle_timeout(&mut self, t: Option<Duration>) {
        let clock = &self.env.clock;
        self.core.st.set_idle_timeout(idle_ms(t), || clock.now());
    }

    /// Sets a one-shot deadline `after` from now, replacing any earlier one.
    /// Bytes arriving do not extend it. When it passes, the connection closes
    /// with [`CloseReason::Deadline`]. This is what stops a slowloris peer
    /// that trickles bytes to dodge an idle timeout.
    ///
    /// Ignored once the connection is closing or closed: a close in progress
    /// is bounded by [`Config::close_timeout`] alone, so a deadline can
    /// neither cut its flush short nor stretch it.
    pub fn set_deadline(&mut self, after: Duration) {
        let at = self.env.clock.now() + ticks(after) + 1;
        self.core.st.set_deadline(at);
    }

    /// Removes the deadline, if one is set.
    ///
    /// Ignored once the connection is closing or closed: it never removes
    /// the close timeout.
    pub fn clear_deadline(&mut self) {
        self.core.st.clear_deadline();
    }

    /// A [`Handle`] to the reactor, to reach other connections (by
    /// [`ConnId`]) or to shut down. Any phase.
    pub fn handle(&self) -> Handle {
        self.env.handle.clone()
    }
}

#[cfg(test)]
mod model;
#[cfg(test)]
mod tests;
