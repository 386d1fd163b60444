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

/// Identifies one connection of one reactor: a slot index plus a generation.
///
/// Slots are reused, generations are not (until a slot has been reused 2^31
/// times): an id of a closed connection never names the connection that took
/// its slot, so a stale event or a late [`Handle::close`] misses harmlessly.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    index: u32,
    gen: u32,
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({}v{})", self.index, self.gen)
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}v{}", self.index, self.gen)
    }
}

/// Bits of a `mio::Token` given to the slot index; the rest (but the top bit)
/// carry the generation. The top bit marks listeners.
const INDEX_BITS: u32 = usize::BITS / 2;
const GEN_BITS: u32 = usize::BITS / 2 - 1;
const GEN_MASK: u32 = ((1u64 << GEN_BITS) - 1) as u32;
pub(crate) const LISTENER_BIT: usize = 1 << (usize::BITS - 1);

impl ConnId {
    pub(crate) fn index(self) -> usize {
        self.index as usize
    }

    pub(crate) fn token(self) -> mio::Token {
        mio::Token(self.index as usize | ((self.gen as usize) << INDEX_BITS))
    }

    /// The id a connection token names; `None` for listener and waker tokens.
    pub(crate) fn from_token(t: mio::Token) -> Option<ConnId> {
        if t.0 & LISTENER_BIT != 0 {
            return None;
        }
        Some(ConnId {
            index: (t.0 & ((1usize << INDEX_BITS) - 1)) as u32,
            gen: (t.0 >> INDEX_BITS) as u32,
        })
    }
}

/// A slab whose keys carry a generation. `get` with a stale id finds nothing.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    slab: slab::Slab<T>,
    gens: Vec<u32>,
}

impl<T> Slots<T> {
    /// Reserves `cap` slots: virtual memory only, pages become resident as
    /// slots are used, and a burst of connections never reallocates.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        Slots {
            slab: slab::Slab::with_capacity(cap),
            gens: Vec::with_capacity(cap),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    /// The id the next `insert` will get.
    pub(crate) fn next_id(&self) -> ConnId {
        let index = self.slab.vacant_key();
        let gen = self.gens.get(index).copied().unwrap_or(0);
        ConnId {
            index: index as u32,
            gen,
        }
    }

    #[inline]
    pub(crate) fn insert(&mut self, value: T) -> (ConnId, &mut T) {
        let entry = self.slab.vacant_entry();
        let index = entry.key();
        assert!(
            (index as u64) < (1u64 << INDEX_BITS.min(32)) - 1,
            "too many connection slots"
        );
        if index == self.gens.len() {
            self.gens.push(0);
        }
        let id = ConnId {
            index: index as u32,
            gen: self.gens[index],
        };
        (id, entry.insert(value))
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        if self.gens.get(id.index as usize) != Some(&id.gen) {
            return None;
        }
        self.slab.get_mut(id.index as usize)
    }

    /// The live id at slot `index`, if any.
    pub(crate) fn id_at(&self, index: usize) -> Option<ConnId> {
        if self.slab.contains(index) {
            Some(ConnId {
                index: index as u32,
                gen: self.gens[index],
            })
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<T> {
        let g = self.gens.get_mut(id.index as usize)?;
        if *g != id.gen {
            return None;
        }
        let value = self.slab.try_remove(id.index as usize)?;
        *g = (*g + 1) & GEN_MASK;
        Some(value)
    }

    pub(crate) fn ids(&self) -> Vec<ConnId> {
        self.slab
            .iter()
            .map(|(k, _)| ConnId {
                index: k as u32,
                gen: self.gens[k],
            })
            .collect()
    }
}

/// Where a connection is in its life. Transitions are logged at trace level
/// as `conn #3v0: Open => Flushing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Reading and writing; callbacks are delivered.
    Open,
    /// `close()` was called with output still queued: flushing it, discarding input.
    Flushing,
    /// Our FIN is sent: discarding input until the peer's FIN or the close timeout,
    /// so the kernel does not answer unread input with a reset.
    Draining,
    /// Finished: the reactor closes the socket and calls `on_close`.
    Done,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// What the reactor must do to the socket after a transition.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    None,
    /// `shutdown(Write)`: send our FIN, keep reading.
    ShutdownWrite,
}

/// One-bit facts about a connection, packed in a byte (see [`State`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flag(u8);

impl Flag {
    /// A read returned 0.
    pub(crate) const PEER_FIN: Flag = Flag(1);
    /// The last event carried a hang-up or error flag: read on after a short read.
    pub(crate) const HUP_HINT: Flag = Flag(1 << 1);
    /// The handler paused reading.
    pub(crate) const PAUSED: Flag = Flag(1 << 2);
    /// Reading stopped early (budget, or paused with data left): read again
    /// from the ready list.
    pub(crate) const MORE_TO_READ: Flag = Flag(1 << 3);
    /// In the reactor's ready list.
    pub(crate) const QUEUED: Flag = Flag(1 << 4);
    /// Registered for writable events.
    pub(crate) const WRITABLE_INTEREST: Flag = Flag(1 << 5);
    /// A write would block: register for writable events.
    pub(crate) const WANT_WRITABLE: Flag = Flag(1 << 6);
    /// Close with SO_LINGER 0 (RST).
    pub(crate) const ABORTIVE: Flag = Flag(1 << 7);
}

/// The pure part of a connection: its phase, why it is closing, its hints
/// and its timers (ticks; 0 = unset). No sockets here. Kept small: it is
/// most of what an idle connection costs.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) phase: Phase,
    flags: u8,
    /// The first cause observed.
    pub(crate) cause: Option<CloseReason>,
    /// Idle timeout in ms; 0 = none.
    pub(crate) idle_ms: u32,
    /// When the idle timer fires (while open).
    pub(crate) idle_at: u64,
    /// While open: the handler's deadline. While closing: the close timeout.
    pub(crate) deadline_at: u64,
}

impl State {
    pub(crate) fn new(idle_ms: u32) -> State {
        State {
            phase: Phase::Open,
            flags: 0,
            cause: None,
            idle_ms,
            idle_at: 0,
            deadline_at: 0,
        }
    }

    #[inline]
    pub(crate) fn has(&self, f: Flag) -> bool {
        self.flags & f.0 != 0
    }

    #[inline]
    pub(crate) fn has_any(&self, a: Flag, b: Flag) -> bool {
        self.flags & (a.0 | b.0) != 0
    }

    #[inline]
    pub(crate) fn set(&mut self, f: Flag, on: bool) {
        if on {
            self.flags |= f.0;
        } else {
            self.flags &= !f.0;
        }
    }

    pub(crate) fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            log::trace!("state={}=>{}", self.phase, phase);
            self.phase = phase;
        }
    }

    /// Records `reason` unless an earlier cause is known (first cause wins).
    /// A panic is always recorded: it says the handler is broken.
    #[inline]
    pub(crate) fn note_cause(&mut self, reason: CloseReason) {
        if self.cause.is_none() || matches!(reason, CloseReason::Panicked) {
            self.cause = Some(reason);
        }
    }

    /// The connection is dead or must end now: no flush, no drain.
    pub(crate) fn fail(&mut self, reason: CloseReason) {
        self.note_cause(reason);
        self.set_phase(Phase::Done);
    }

    /// Whether callbacks may still be delivered.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether the socket should be read: input is delivered while open and
    /// discarded while closing; nothing is read after the peer's FIN.
    #[inline]
    pub(crate) fn may_read(&self) -> bool {
        match self.phase {
            Phase::Open => !self.has(Flag::PAUSED) && !self.has(Flag::PEER_FIN),
            Phase::Flushing | Phase::Draining => !self.has(Flag::PEER_FIN),
            Phase::Done => false,
        }
    }

    /// A graceful close was asked for (`Conn::close`). The close timeout
    /// starts now and replaces the idle timer and any deadline. `now` is only
    /// asked for when a timer is needed (not after the peer's FIN with
    /// nothing queued, the common case).
    pub(crate) fn request_close(
        &mut self,
        has_pending: bool,
        close_deadline: impl FnOnce() -> u64,
    ) -> Action {
        self.note_cause(CloseReason::Local);
        if self.phase != Phase::Open {
            return Action::None;
        }
        self.set(Flag::PAUSED, false);
        self.idle_at = 0;
        if !has_pending && self.has(Flag::PEER_FIN) {
            self.deadline_at = 0;
            self.set_phase(Phase::Done);
            return Action::None;
        }
        self.deadline_at = close_deadline();
        if has_pending {
            self.set_phase(Phase::Flushing);
            Action::None
        } else {
            self.flushed()
        }
    }

    /// An abortive close was asked for (`Conn::abort`).
    pub(crate) fn request_abort(&mut self) {
        self.note_cause(CloseReason::Local);
        if self.phase != Phase::Done {
            self.set(Flag::ABORTIVE, true);
            self.set_phase(Phase::Done);
        }
    }

    /// All queued output was written while closing.
    pub(crate) fn flushed(&mut self) -> Action {
        if self.has(Flag::PEER_FIN) {
            // Nothing unread can follow a FIN: close(2) sends ours cleanly.
            self.set_phase(Phase::Done);
            Action::None
        } else {
            self.set_phase(Phase::Draining);
            Action::ShutdownWrite
        }
    }

    /// A read returned 0. Returns true when the handler should hear of it
    /// (`on_read_closed`).
    #[inline]
    pub(crate) fn eof(&mut self) -> bool {
        self.set(Flag::PEER_FIN, true);
        self.set(Flag::HUP_HINT, false);
        self.note_cause(CloseReason::PeerClosed);
        match self.phase {
            Phase::Open => true,
            Phase::Flushing => false,
            Phase::Draining => {
                self.set_phase(Phase::Done);
                false
            }
            Phase::Done => false,
        }
    }

    /// The earliest timer that matters in this phase, in ticks; 0 if none.
    pub(crate) fn next_timer(&self) -> u64 {
        match self.phase {
            Phase::Open => match (self.idle_at, self.deadline_at) {
                (0, d) => d,
                (i, 0) => i,
                (i, d) => i.min(d),
            },
            Phase::Flushing | Phase::Draining => self.deadline_at,
            Phase::Done => 0,
        }
    }

    /// Fires the timers due at `now`. Returns true if the connection must end.
    pub(crate) fn expire(&mut self, now: u64) -> bool {
        let due = |t: u64| t != 0 && t <= now;
        match self.phase {
            Phase::Flushing | Phase::Draining if due(self.deadline_at) => {
                log::debug!("close timeout passed in {}", self.phase);
                self.set_phase(Phase::Done);
                true
            }
            Phase::Open if due(self.deadline_at) => {
                self.fail(CloseReason::Deadline);
                true
            }
            Phase::Open if due(self.idle_at) => {
                self.fail(CloseReason::Idle);
                true
            }
            _ => false,
        }
    }

    /// Bytes arrived at `now`: push the idle timer back. No syscall, no
    /// allocation: the timer wheel is told only if the time moved earlier.
    pub(crate) fn heard_from_peer(&mut self, now: u64) {
        if self.idle_ms != 0 {
            self.idle_at = now + u64::from(self.idle_ms) + 1;
        }
    }
}

/// Converts a duration to whole ticks (milliseconds), rounding up.
pub(crate) fn ticks(d: Duration) -> u64 {
    let ms = d.as_millis();
    let ms = if d > Duration::from_millis(ms as u64) {
        ms + 1
    } else {
        ms
    };
    u64::try_from(ms).unwrap_or(u64::MAX / 4).min(u64::MAX / 4)
}

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
            .field("phase", &self.core.st.phase)
            .field("pending", &self.core.pending())
            .finish()
    }
}

impl Conn<'_> {
    /// This connection's id: `Copy + Eq + Hash + Debug`, never reused while a
    /// stale event could reach it.
    pub fn id(&self) -> ConnId {
        self.id
    }

    /// The peer's address, as `accept` reported it.
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
    /// [`CloseReason::Backpressure`] and the output is dropped. After `close`,
    /// `abort` or a failure, writes are ignored. A write error (the peer
    /// reset) ends the connection when the callback returns.
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
            self.core.out = None;
            self.core.st.fail(CloseReason::Backpressure);
            return;
        }
        self.core.st.set(Flag::WANT_WRITABLE, true);
    }

    /// Bytes queued and not yet taken by the kernel.
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
    /// (SO_LINGER 0) when the callback returns.
    pub fn abort(&mut self) {
        self.core.out = None;
        self.core.st.request_abort();
    }

    /// Stops reading from this connection until
    /// [`resume_reading`](Conn::resume_reading); the kernel's buffer fills and
    /// TCP flow control slows the peer. A reset or a dead peer is still
    /// reported while paused; a FIN is reported after reading resumes and the
    /// bytes before it were delivered.
    pub fn pause_reading(&mut self) {
        self.core.st.set(Flag::PAUSED, true);
    }

    /// Resumes reading after [`pause_reading`](Conn::pause_reading).
    pub fn resume_reading(&mut self) {
        if self.core.st.has(Flag::PAUSED) {
            self.core.st.set(Flag::PAUSED, false);
            self.core.st.set(Flag::MORE_TO_READ, true);
        }
    }

    /// Whether reading is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.core.st.has(Flag::PAUSED)
    }

    /// Whether the peer's FIN was seen (it will send nothing more).
    pub fn is_read_closed(&self) -> bool {
        self.core.st.has(Flag::PEER_FIN)
    }

    /// Overrides [`Config::idle_timeout`] for this connection; the timer
    /// restarts now. `None` turns it off. Zero counts as `None`.
    pub fn set_idle_timeout(&mut self, t: Option<Duration>) {
        self.core.st.idle_ms = idle_ms(t);
        self.core.st.idle_at = 0;
        self.core.st.heard_from_peer(self.env.clock.now());
    }

    /// Sets a one-shot deadline `after` from now, replacing any earlier one.
    /// Bytes arriving do not extend it. When it passes, the connection closes
    /// with [`CloseReason::Deadline`]. This is what stops a slowloris peer
    /// that trickles bytes to dodge an idle timeout.
    pub fn set_deadline(&mut self, after: Duration) {
        self.core.st.deadline_at = self.env.clock.now() + ticks(after) + 1;
    }

    /// Removes the deadline, if one is set.
    pub fn clear_deadline(&mut self) {
        self.core.st.deadline_at = 0;
    }

    /// A [`Handle`] to the reactor, to reach other connections (by
    /// [`ConnId`]) or to shut down.
    pub fn handle(&self) -> Handle {
        self.env.handle.clone()
    }
}

#[cfg(test)]
mod tests;
