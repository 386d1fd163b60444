//! The pure per-connection state machine: phases, causes, timers. No
//! sockets, no clock: time comes in as ticks.

use std::fmt;
use std::io;
use std::time::Duration;

use super::cause::{
    join_cause, split_cause, DRAINED, LOCAL, NO_CAUSE, PANICKED, PEER_CLOSED, RESET,
};
use crate::close::CloseReason;
use crate::record::EndPhase;

/// Where a connection is in its life. Transitions are logged at trace level
/// as `state=Open=>Flushing`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// An outbound connect is under way: output is queued, nothing is read,
    /// no callback yet; the connect timeout is armed.
    Connecting,
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

/// One-bit facts about a connection (see [`State`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Flag(u16);

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
    /// `shutdown_write` was asked for with output queued: our FIN follows
    /// the flush.
    pub(crate) const FIN_PENDING: Flag = Flag(1 << 8);
    /// Our FIN is sent (`shutdown_write`): nothing more is written.
    pub(crate) const WRITE_CLOSED: Flag = Flag(1 << 9);
    /// The handler marked the connection idle (`Conn::set_idle`): a drain
    /// may close it.
    pub(crate) const IDLE: Flag = Flag(1 << 10);
    /// Read TCP_INFO just before the descriptor closes (the close record).
    pub(crate) const TCP_INFO: Flag = Flag(1 << 11);
    /// The last read found the socket empty (a short read or `WouldBlock`)
    /// and no readable event came since, and the reactor's
    /// [`LingeringClose`](crate::LingeringClose) allows skipping the wait for
    /// the peer's FIN: a close may then end as soon as its output is
    /// handed to the kernel. Only the reactor's read path sets it; a
    /// readable event, a pause and a drain's close clear it.
    pub(crate) const INPUT_DRAINED: Flag = Flag(1 << 14);
    /// A TLS connection: while Connecting, its handshake is under way.
    pub(crate) const TLS: Flag = Flag(1 << 15);
}

/// Bits 12-13 of the flags: the phase a connection ended in (set as it
/// becomes Done; see [`State::end_phase`]): 0 open, 1 connecting,
/// 2 flushing, 3 waiting for the peer's FIN.
const END_SHIFT: u16 = 12;

/// Flags only the state machine itself may change: they record what the
/// handler asked for and what the peer did, and decide the phase.
const OWN_FLAGS: u16 = Flag::PEER_FIN.0
    | Flag::PAUSED.0
    | Flag::ABORTIVE.0
    | Flag::FIN_PENDING.0
    | Flag::WRITE_CLOSED.0
    | Flag::IDLE.0;

/// The pure part of a connection: its phase, why it is closing, its hints
/// and its timers (ticks; 0 = unset). No sockets here. Kept small: it is
/// most of what an idle connection costs.
///
/// The fields are private: every change goes through a method that knows
/// the phase, so a call meant for an open connection (a deadline, an idle
/// timeout, pausing) cannot disturb a connect or a close in progress. What
/// each method does in each phase:
///
/// | method | Connecting | Open | Flushing, Draining | Done |
/// |---|---|---|---|---|
/// | `set_deadline`, `clear_deadline`, `set_idle_timeout` | ignored: the connect timeout governs | as named | ignored: the close timeout governs | ignored |
/// | `pause`, `resume` | as named | as named | ignored: input is discarded | ignored |
/// | `request_close` | Done (the connect is abandoned) | starts the close, arms the close timeout | ignored | ignored |
/// | `request_shutdown_write` | FIN once connected and flushed | FIN now, or after the flush | ignored | ignored |
/// | `request_abort` | Done, abortive | Done, abortive | Done, abortive | ignored |
/// | `fail` | Done | Done | Done; in Flushing the failure replaces the cause | a panic is recorded |
#[derive(Debug)]
pub(crate) struct State {
    /// While connecting: the connect timeout. While open: the handler's
    /// deadline. While closing: the close timeout, which only
    /// `request_close` sets.
    deadline_at: u64,
    /// When the idle timer fires (while open).
    idle_at: u64,
    /// The payload of the first cause, for `Error` and `ConnectFailed`.
    err: Option<io::Error>,
    /// Idle timeout in ms; 0 = none.
    idle_ms: u32,
    flags: u16,
    phase: Phase,
    /// The first cause observed (`cause::cause_code`); `NO_CAUSE` if none yet.
    cause: u8,
}

impl State {
    #[inline]
    pub(crate) fn new(idle_ms: u32) -> State {
        State {
            deadline_at: 0,
            idle_at: 0,
            err: None,
            idle_ms,
            flags: 0,
            phase: Phase::Open,
            cause: NO_CAUSE,
        }
    }

    /// An outbound connection whose connect is under way; `deadline` is the
    /// connect timeout's tick (0 = none).
    pub(crate) fn connecting(idle_ms: u32, deadline: u64) -> State {
        State {
            deadline_at: deadline,
            phase: Phase::Connecting,
            ..State::new(idle_ms)
        }
    }

    #[inline]
    pub(crate) fn phase(&self) -> Phase {
        self.phase
    }

    #[inline]
    pub(crate) fn has(&self, f: Flag) -> bool {
        self.flags & f.0 != 0
    }

    #[inline]
    pub(crate) fn has_any(&self, a: Flag, b: Flag) -> bool {
        self.flags & (a.0 | b.0) != 0
    }

    /// An event came: a hang-up or error flag sets the hint; a readable
    /// one means input is unread until a read finds the socket empty again.
    #[inline]
    pub(crate) fn note_event(&mut self, hangup: bool, readable: bool) {
        if hangup {
            self.flags |= Flag::HUP_HINT.0;
        }
        if readable {
            self.flags &= !Flag::INPUT_DRAINED.0;
        }
    }

    /// Sets or clears one of the reactor's bookkeeping flags (hints,
    /// registration, ready list). The flags that decide the phase change
    /// only through the transitions below.
    #[inline]
    pub(crate) fn set(&mut self, f: Flag, on: bool) {
        debug_assert!(f.0 & OWN_FLAGS == 0, "{f:?} changes only by a transition");
        self.put(f, on);
    }

    #[inline]
    fn put(&mut self, f: Flag, on: bool) {
        if on {
            self.flags |= f.0;
        } else {
            self.flags &= !f.0;
        }
    }

    #[inline]
    fn set_phase(&mut self, phase: Phase) {
        if self.phase != phase {
            if log::log_enabled!(log::Level::Trace) {
                log_transition(self.phase, phase);
            }
            if phase == Phase::Done {
                // Keep the phase it ended in, for the close record.
                let code = match self.phase {
                    Phase::Open => 0,
                    Phase::Connecting => 1,
                    Phase::Flushing => 2,
                    Phase::Draining | Phase::Done => 3,
                };
                self.flags |= code << END_SHIFT;
            }
            self.phase = phase;
        }
        if phase == Phase::Done {
            // No timer outlives the connection.
            self.idle_at = 0;
            self.deadline_at = 0;
        }
    }

    fn replace_cause(&mut self, reason: CloseReason) {
        let (code, err) = split_cause(reason);
        self.cause = code;
        self.err = err;
    }

    /// Records a cause without payload, by its code, unless an earlier cause
    /// is known (first cause wins). The hot path's `note_cause`.
    #[inline]
    fn note_code(&mut self, code: u8) {
        if self.cause == NO_CAUSE {
            self.cause = code;
        }
    }

    /// Records `reason` unless an earlier cause is known (first cause wins).
    /// A panic is always recorded: it says the handler is broken.
    #[inline]
    fn note_cause(&mut self, reason: CloseReason) {
        if self.cause == NO_CAUSE || matches!(reason, CloseReason::Panicked) {
            self.replace_cause(reason);
        }
    }

    /// The reason to report, once Done: the cause, or `Local` if none was
    /// recorded.
    #[inline]
    pub(crate) fn take_reason(&mut self) -> CloseReason {
        debug_assert_eq!(self.phase, Phase::Done);
        let code = std::mem::replace(&mut self.cause, NO_CAUSE);
        join_cause(code, self.err.take()).unwrap_or(CloseReason::Local)
    }

    /// The name of the cause recorded so far, if any.
    #[cfg(test)]
    pub(crate) fn cause_name(&self) -> Option<&'static str> {
        let err = self.err.as_ref().map(|e| io::Error::from(e.kind()));
        join_cause(self.cause, err).map(|r| r.name())
    }

    /// The connection is dead or must end now: no flush, no drain.
    ///
    /// First cause wins, with two exceptions: a panic always wins, and a
    /// failure while flushing (a write error, the close timeout, a shutdown)
    /// replaces `Local` or `PeerClosed`: output queued before `close()` was
    /// lost, and that is what ended the connection.
    #[inline]
    pub(crate) fn fail(&mut self, reason: CloseReason) {
        match self.phase {
            Phase::Done => {
                if matches!(reason, CloseReason::Panicked) {
                    self.replace_cause(reason);
                }
                return;
            }
            Phase::Flushing if self.cause != PANICKED => self.replace_cause(reason),
            _ => self.note_cause(reason),
        }
        self.set_phase(Phase::Done);
    }

    /// A read found the peer's reset: [`fail`](State::fail) with
    /// [`CloseReason::Reset`], without making and taking apart a reason (the
    /// commonest failure, on the read path).
    #[inline]
    pub(crate) fn peer_reset(&mut self) {
        match self.phase {
            Phase::Done => return,
            Phase::Flushing if self.cause != PANICKED => {
                self.cause = RESET;
                self.err = None;
            }
            _ => self.note_code(RESET),
        }
        self.set_phase(Phase::Done);
    }

    /// The phase the connection ended in (once Done): connecting, open
    /// (with who had half-closed), flushing, or waiting for the peer's FIN.
    #[inline]
    pub(crate) fn end_phase(&self) -> EndPhase {
        match (self.flags >> END_SHIFT) & 0x3 {
            1 => EndPhase::Connecting,
            2 => EndPhase::Flushing,
            3 => EndPhase::WaitingForPeerFin,
            _ if self.has(Flag::PEER_FIN) => EndPhase::PeerHalfClosed,
            _ if self.has_any(Flag::WRITE_CLOSED, Flag::FIN_PENDING) => EndPhase::WeHalfClosed,
            _ => EndPhase::Open,
        }
    }

    /// Whether callbacks may still be delivered.
    #[inline]
    pub(crate) fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Whether `Conn::write` takes output: while connecting (queued until
    /// connected) and open, until our FIN was asked for.
    #[inline]
    pub(crate) fn accepts_writes(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Connecting)
            && !self.has_any(Flag::FIN_PENDING, Flag::WRITE_CLOSED)
    }

    /// Whether the socket should be read: input is delivered while open and
    /// discarded while closing; nothing is read after the peer's FIN.
    #[inline]
    pub(crate) fn may_read(&self) -> bool {
        match self.phase {
            Phase::Open => !self.has(Flag::PAUSED) && !self.has(Flag::PEER_FIN),
            Phase::Flushing | Phase::Draining => !self.has(Flag::PEER_FIN),
            Phase::Connecting | Phase::Done => false,
        }
    }

    /// Whether the connection needs no bookkeeping after what just happened:
    /// open, nothing to register, nothing queued to read, no timer. The
    /// common case.
    #[inline]
    pub(crate) fn is_quiet(&self) -> bool {
        self.phase == Phase::Open
            && !self.has_any(Flag::WANT_WRITABLE, Flag::MORE_TO_READ)
            && self.idle_at == 0
            && self.deadline_at == 0
    }

    /// The connect completed: open, with the idle timer running from `now`.
    /// Ignored unless connecting.
    pub(crate) fn connected(&mut self, now: u64) -> bool {
        if self.phase != Phase::Connecting {
            return false;
        }
        self.deadline_at = 0;
        self.set_phase(Phase::Open);
        self.heard_from_peer(now);
        true
    }

    /// An outbound TLS connection's TCP connect completed: its handshake
    /// starts, still Connecting (no `on_open` yet), under the handshake
    /// timeout `deadline` (0: none) in place of the connect timeout.
    /// Ignored unless connecting.
    #[cfg(feature = "tls")]
    pub(crate) fn start_handshake(&mut self, deadline: u64) {
        if self.phase == Phase::Connecting {
            self.put(Flag::TLS, true);
            self.deadline_at = deadline;
        }
    }

    /// A graceful close was asked for (`Conn::close`). The close timeout
    /// starts now and replaces the idle timer and any deadline. `now` is only
    /// asked for when a timer is needed (not after the peer's FIN with
    /// nothing queued, the common case). While connecting, the connect is
    /// abandoned. Ignored otherwise.
    #[inline]
    pub(crate) fn request_close(
        &mut self,
        has_pending: bool,
        close_deadline: impl FnOnce() -> u64,
    ) -> Action {
        match self.phase {
            Phase::Open => {}
            Phase::Connecting => {
                self.note_code(LOCAL);
                self.set_phase(Phase::Done);
                return Action::None;
            }
            _ => return Action::None,
        }
        self.note_code(LOCAL);
        self.put(Flag::PAUSED, false);
        self.put(Flag::FIN_PENDING, false);
        self.idle_at = 0;
        if !has_pending && self.has(Flag::PEER_FIN) {
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

    /// A drain closes an idle connection: as `request_close`, with the
    /// cause `Drained` unless an earlier one is known. Ignored unless open.
    pub(crate) fn request_drain_close(
        &mut self,
        has_pending: bool,
        close_deadline: impl FnOnce() -> u64,
    ) -> Action {
        if self.phase != Phase::Open {
            return Action::None;
        }
        self.note_code(DRAINED);
        // A drain's close always lingers: its FIN may cross a request the
        // peer is sending right now (DESIGN-NOTES, nginx PR #437).
        self.put(Flag::INPUT_DRAINED, false);
        self.request_close(has_pending, close_deadline)
    }

    /// `Conn::set_idle`: whether the protocol is between requests. Ignored
    /// unless open or connecting.
    pub(crate) fn set_idle(&mut self, idle: bool) {
        if matches!(self.phase, Phase::Open | Phase::Connecting) {
            self.put(Flag::IDLE, idle);
        }
    }

    /// Half-close of this side was asked for (`Conn::shutdown_write`): our
    /// FIN now if nothing is queued, else after the flush (or, while
    /// connecting, once connected and flushed); reading goes on. If the
    /// peer's FIN was already seen, both directions are done: a close.
    pub(crate) fn request_shutdown_write(
        &mut self,
        has_pending: bool,
        close_deadline: impl FnOnce() -> u64,
    ) -> Action {
        match self.phase {
            Phase::Connecting if !self.has(Flag::WRITE_CLOSED) => {
                self.put(Flag::FIN_PENDING, true);
                Action::None
            }
            Phase::Open if !self.has_any(Flag::FIN_PENDING, Flag::WRITE_CLOSED) => {
                if self.has(Flag::PEER_FIN) {
                    return self.request_close(has_pending, close_deadline);
                }
                if has_pending {
                    self.put(Flag::FIN_PENDING, true);
                    Action::None
                } else {
                    self.put(Flag::WRITE_CLOSED, true);
                    Action::ShutdownWrite
                }
            }
            _ => Action::None,
        }
    }

    /// Everything queued was written while open: a pending FIN goes now.
    #[inline]
    pub(crate) fn drained(&mut self) -> Action {
        if self.phase == Phase::Open && self.has(Flag::FIN_PENDING) {
            self.put(Flag::FIN_PENDING, false);
            self.put(Flag::WRITE_CLOSED, true);
            Action::ShutdownWrite
        } else {
            Action::None
        }
    }

    /// After `on_read_closed`: if this side half-closed too, both directions
    /// are done and the connection closes (as `close()` would: a queued
    /// output is flushed first).
    #[inline]
    pub(crate) fn after_read_closed(
        &mut self,
        has_pending: bool,
        close_deadline: impl FnOnce() -> u64,
    ) -> Action {
        if self.phase == Phase::Open
            && self.has(Flag::PEER_FIN)
            && self.has_any(Flag::FIN_PENDING, Flag::WRITE_CLOSED)
        {
            self.request_close(has_pending, close_deadline)
        } else {
            Action::None
        }
    }

    /// An abortive close was asked for (`Conn::abort`): queued output is
    /// dropped on purpose and the peer gets a reset. Ignored once Done.
    pub(crate) fn request_abort(&mut self) {
        if self.phase != Phase::Done {
            self.note_code(LOCAL);
            self.put(Flag::ABORTIVE, true);
            self.set_phase(Phase::Done);
        }
    }

    /// All queued output was written while closing.
    #[inline]
    pub(crate) fn flushed(&mut self) -> Action {
        if self.has_any(Flag::PEER_FIN, Flag::INPUT_DRAINED) {
            // Nothing unread can follow a FIN: close(2) sends ours cleanly.
            // Nor, as far as anything here can know, when the last read
            // found the socket empty and the policy allows not waiting
            // (LingeringClose::WhenUnread): close(2) sends the output,
            // then our FIN, unless input arrives after all.
            self.set_phase(Phase::Done);
            Action::None
        } else {
            self.set_phase(Phase::Draining);
            if self.has(Flag::WRITE_CLOSED) {
                Action::None
            } else {
                Action::ShutdownWrite
            }
        }
    }

    /// A read returned 0. Returns true when the handler should hear of it
    /// (`on_read_closed`).
    #[inline]
    pub(crate) fn eof(&mut self) -> bool {
        self.put(Flag::PEER_FIN, true);
        self.put(Flag::HUP_HINT, false);
        self.note_code(PEER_CLOSED);
        match self.phase {
            Phase::Open => true,
            Phase::Connecting | Phase::Flushing => false,
            Phase::Draining => {
                self.set_phase(Phase::Done);
                false
            }
            Phase::Done => false,
        }
    }

    /// The earliest timer that matters in this phase, in ticks; 0 if none.
    #[inline]
    pub(crate) fn next_timer(&self) -> u64 {
        match self.phase {
            Phase::Open => match (self.idle_at, self.deadline_at) {
                (0, d) => d,
                (i, 0) => i,
                (i, d) => i.min(d),
            },
            Phase::Connecting | Phase::Flushing | Phase::Draining => self.deadline_at,
            Phase::Done => 0,
        }
    }

    /// Fires the timers due at `now`. Returns true if the connection must end.
    ///
    /// The connect timeout ends a connect as
    /// [`CloseReason::ConnectFailed`] with `ErrorKind::TimedOut`; for a TLS
    /// connection whose handshake is under way, the handshake timeout ends
    /// it as [`CloseReason::TlsHandshakeTimeout`]. The close
    /// timeout in Draining ends the connection as closed (our FIN and all
    /// output went out). In Flushing, output is still queued: the peer gets a
    /// reset rather than a clean EOF after partial data, and the reason is
    /// [`CloseReason::FlushTimeout`].
    pub(crate) fn expire(&mut self, now: u64) -> bool {
        let due = |t: u64| t != 0 && t <= now;
        match self.phase {
            Phase::Connecting if due(self.deadline_at) && self.has(Flag::TLS) => {
                self.fail(CloseReason::TlsHandshakeTimeout);
                true
            }
            Phase::Connecting if due(self.deadline_at) => {
                self.fail(CloseReason::ConnectFailed(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "connect_timeout passed",
                )));
                true
            }
            Phase::Flushing if due(self.deadline_at) => {
                log::debug!("close timeout passed with output queued");
                self.put(Flag::ABORTIVE, true);
                self.fail(CloseReason::FlushTimeout);
                true
            }
            Phase::Draining if due(self.deadline_at) => {
                log::debug!("close timeout passed waiting for the peer's FIN");
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

    /// Whether bytes from the peer re-arm an idle timer (so the caller reads
    /// the clock only then).
    #[inline]
    pub(crate) fn has_idle_timeout(&self) -> bool {
        self.idle_ms != 0 && self.phase == Phase::Open
    }

    /// Bytes arrived at `now`: push the idle timer back. No syscall, no
    /// allocation: the timer wheel is told only if the time moved earlier.
    #[inline]
    pub(crate) fn heard_from_peer(&mut self, now: u64) {
        if self.has_idle_timeout() {
            self.idle_at = now + u64::from(self.idle_ms) + 1;
        }
    }

    /// `Conn::set_idle_timeout`: a new idle timeout (ms, 0 = none), running
    /// from `now`. Ignored unless open.
    pub(crate) fn set_idle_timeout(&mut self, ms: u32, now: impl FnOnce() -> u64) {
        if self.phase == Phase::Open {
            self.idle_ms = ms;
            self.idle_at = 0;
            if ms != 0 {
                self.heard_from_peer(now());
            }
        }
    }

    /// `Conn::set_deadline`: the connection ends at `at` with `Deadline`.
    /// Ignored unless open: a connect or a close in progress keeps its
    /// timeout.
    pub(crate) fn set_deadline(&mut self, at: u64) {
        if self.phase == Phase::Open {
            self.deadline_at = at;
        }
    }

    /// `Conn::clear_deadline`. Ignored unless open.
    pub(crate) fn clear_deadline(&mut self) {
        if self.phase == Phase::Open {
            self.deadline_at = 0;
        }
    }

    /// `Conn::pause_reading`. Ignored unless open or connecting: while
    /// closing, input is read and discarded so that the kernel does not
    /// answer it with a reset.
    pub(crate) fn pause(&mut self) {
        if matches!(self.phase, Phase::Open | Phase::Connecting) {
            self.put(Flag::PAUSED, true);
            // Input may come while nothing reads it.
            self.put(Flag::INPUT_DRAINED, false);
        }
    }

    /// `Conn::resume_reading`. Ignored unless open or connecting, and paused.
    pub(crate) fn resume(&mut self) {
        if matches!(self.phase, Phase::Open | Phase::Connecting) && self.has(Flag::PAUSED) {
            self.put(Flag::PAUSED, false);
            self.put(Flag::MORE_TO_READ, true);
        }
    }
}

/// `state=Open=>Flushing`, at trace level: out of the way of the
/// transitions themselves.
#[cold]
#[inline(never)]
fn log_transition(from: Phase, to: Phase) {
    log::trace!("state={from}=>{to}");
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
