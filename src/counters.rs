//! [`Counters`]: what a reactor counted since it was made, always on,
//! readable from any thread while it runs ([`Handle::counters`](crate::Handle::counters)),
//! per worker and summed for a [`Group`](crate::Group). The reactor counts in
//! plain integers and publishes once per turn through a sequence lock: no
//! lock and no atomic operation on the path of an event, and every snapshot
//! a reader gets is whole (taken between two turns).

use std::sync::atomic::{fence, AtomicU64, Ordering};

use crate::close::CloseReason;

/// Which [`CloseReason`] a connection ended with, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CloseKind {
    /// [`CloseReason::PeerClosed`]
    PeerClosed,
    /// [`CloseReason::Reset`]
    Reset,
    /// [`CloseReason::TimedOut`]
    TimedOut,
    /// [`CloseReason::Idle`]
    Idle,
    /// [`CloseReason::Deadline`]
    Deadline,
    /// [`CloseReason::Local`]
    Local,
    /// [`CloseReason::Backpressure`]
    Backpressure,
    /// [`CloseReason::FlushTimeout`]
    FlushTimeout,
    /// [`CloseReason::Shutdown`]
    Shutdown,
    /// [`CloseReason::Drained`]
    Drained,
    /// [`CloseReason::Panicked`]
    Panicked,
    /// [`CloseReason::Error`]
    Error,
    /// [`CloseReason::ConnectFailed`]
    ConnectFailed,
    /// [`CloseReason::TlsTruncated`]
    TlsTruncated,
    /// [`CloseReason::TlsAlert`]
    TlsAlert,
    /// [`CloseReason::TlsHandshakeFailed`]
    TlsHandshakeFailed,
    /// [`CloseReason::TlsHandshakeTimeout`]
    TlsHandshakeTimeout,
}

impl CloseKind {
    /// Every kind, in the order of [`Counters::closed_by`]'s table.
    pub const ALL: [CloseKind; KINDS] = [
        CloseKind::PeerClosed,
        CloseKind::Reset,
        CloseKind::TimedOut,
        CloseKind::Idle,
        CloseKind::Deadline,
        CloseKind::Local,
        CloseKind::Backpressure,
        CloseKind::FlushTimeout,
        CloseKind::Shutdown,
        CloseKind::Drained,
        CloseKind::Panicked,
        CloseKind::Error,
        CloseKind::ConnectFailed,
        CloseKind::TlsTruncated,
        CloseKind::TlsAlert,
        CloseKind::TlsHandshakeFailed,
        CloseKind::TlsHandshakeTimeout,
    ];

    /// The kind of `reason`.
    #[inline]
    pub fn of(reason: &CloseReason) -> CloseKind {
        match reason {
            CloseReason::PeerClosed => CloseKind::PeerClosed,
            CloseReason::Reset => CloseKind::Reset,
            CloseReason::TimedOut => CloseKind::TimedOut,
            CloseReason::Idle => CloseKind::Idle,
            CloseReason::Deadline => CloseKind::Deadline,
            CloseReason::Local => CloseKind::Local,
            CloseReason::Backpressure => CloseKind::Backpressure,
            CloseReason::FlushTimeout => CloseKind::FlushTimeout,
            CloseReason::Shutdown => CloseKind::Shutdown,
            CloseReason::Drained => CloseKind::Drained,
            CloseReason::Panicked => CloseKind::Panicked,
            CloseReason::Error(_) => CloseKind::Error,
            CloseReason::ConnectFailed(_) => CloseKind::ConnectFailed,
            CloseReason::TlsTruncated { .. } => CloseKind::TlsTruncated,
            CloseReason::TlsAlert(_) => CloseKind::TlsAlert,
            CloseReason::TlsHandshakeFailed(_) => CloseKind::TlsHandshakeFailed,
            CloseReason::TlsHandshakeTimeout => CloseKind::TlsHandshakeTimeout,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Who ended a connection first: the side its [`CloseReason`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// The peer or the network: its FIN, its reset, a refused connect, an
    /// errno from the socket, or a peer the kernel gave up on (`TimedOut`).
    Peer,
    /// This side's handler: `close`, `abort` (from a callback or a
    /// `Handle`), or a panic.
    Handler,
    /// A timer ran out: idle, deadline, close timeout, connect timeout.
    Timer,
    /// The reactor: a shutdown, a drain, a limit (`max_write_buffer`).
    Reactor,
}

impl Side {
    /// Every side, in the order of [`Counters::closed_by_side`]'s table.
    pub const ALL: [Side; 4] = [Side::Peer, Side::Handler, Side::Timer, Side::Reactor];

    /// The side `reason` names. A `ConnectFailed` is the timer's when
    /// [`Config::connect_timeout`](crate::Config::connect_timeout) passed
    /// (kind `TimedOut`, no errno), the peer's otherwise. Pure.
    #[inline]
    pub fn of(reason: &CloseReason) -> Side {
        match reason {
            CloseReason::PeerClosed
            | CloseReason::Reset
            | CloseReason::TimedOut
            | CloseReason::Error(_)
            | CloseReason::TlsTruncated { .. }
            | CloseReason::TlsAlert(_)
            | CloseReason::TlsHandshakeFailed(_) => Side::Peer,
            CloseReason::TlsHandshakeTimeout => Side::Timer,
            CloseReason::ConnectFailed(e) => {
                if e.kind() == std::io::ErrorKind::TimedOut && e.raw_os_error().is_none() {
                    Side::Timer
                } else {
                    Side::Peer
                }
            }
            CloseReason::Idle | CloseReason::Deadline | CloseReason::FlushTimeout => Side::Timer,
            CloseReason::Local | CloseReason::Panicked => Side::Handler,
            CloseReason::Backpressure | CloseReason::Shutdown | CloseReason::Drained => {
                Side::Reactor
            }
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// [`Side::of`] for each kind but `ConnectFailed` (which depends on its
/// error), in the order of [`CloseKind::ALL`].
const SIDE_OF_KIND: [Side; KINDS] = [
    Side::Peer,    // PeerClosed
    Side::Peer,    // Reset
    Side::Peer,    // TimedOut
    Side::Timer,   // Idle
    Side::Timer,   // Deadline
    Side::Handler, // Local
    Side::Reactor, // Backpressure
    Side::Timer,   // FlushTimeout
    Side::Reactor, // Shutdown
    Side::Reactor, // Drained
    Side::Handler, // Panicked
    Side::Peer,    // Error
    Side::Peer,    // ConnectFailed: see Side::of
    Side::Peer,    // TlsTruncated
    Side::Peer,    // TlsAlert
    Side::Peer,    // TlsHandshakeFailed
    Side::Timer,   // TlsHandshakeTimeout
];

/// How many kinds of close there are ([`CloseKind::ALL`]).
const KINDS: usize = 17;

/// What a reactor counted since it was made. From any thread:
/// [`Handle::counters`](crate::Handle::counters) (as of the reactor's last
/// turn), [`GroupHandle::counters`](crate::GroupHandle::counters) (summed
/// over the workers); on the reactor's thread: [`Reactor::counters`](crate::Reactor::counters).
///
/// Every snapshot is whole, taken between two turns, so at every read
/// `open == accepted + connects_started - closed`, and `closed` is the sum
/// of [`closed_by`](Counters::closed_by) over every kind (and of
/// [`closed_by_side`](Counters::closed_by_side) over every side). Counts
/// never go back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections accepted and given a handler (from listeners, and from a
    /// group's hand-off acceptor).
    pub accepted: u64,
    /// Outbound connects started (their handler taken).
    pub connects_started: u64,
    /// Outbound connects that connected (`on_open`).
    pub connected: u64,
    /// Outbound connects that failed (`ConnectFailed`).
    pub connect_failed: u64,
    /// Peers turned away at accept because `max_connections` was reached.
    pub rejected_limit: u64,
    /// Peers turned away at accept because descriptors ran out.
    pub rejected_descriptors: u64,
    /// Peers turned away because the factory panicked.
    pub rejected_factory: u64,
    /// Peers turned away for another reason (a socket option or the
    /// registration failed, or a hand-off arrived at a stopped reactor).
    pub rejected_other: u64,
    /// Connections closed (each saw its `on_close`).
    pub closed: u64,
    /// Connections closed with output still queued that never reached the
    /// kernel (the peer got a reset).
    pub closed_unsent: u64,
    /// Connections open now (connecting ones included).
    pub open: u64,
    /// Bytes read from peers (delivered to `on_data`, or discarded while
    /// closing).
    pub bytes_in: u64,
    /// Bytes the kernel took from this side's output.
    pub bytes_out: u64,
    by_kind: [u64; KINDS],
    by_side: [u64; 4],
}

impl Counters {
    /// Connections closed with a reason of this kind.
    pub fn closed_by(&self, kind: CloseKind) -> u64 {
        self.by_kind[kind.index()]
    }

    /// Connections closed by this side first.
    pub fn closed_by_side(&self, side: Side) -> u64 {
        self.by_side[side.index()]
    }

    /// All peers turned away at accept.
    #[inline]
    pub fn rejected(&self) -> u64 {
        self.rejected_limit
            + self.rejected_descriptors
            + self.rejected_factory
            + self.rejected_other
    }

    /// Counts one close.
    #[inline]
    pub(crate) fn count_close(&mut self, reason: &CloseReason, kind: CloseKind, unsent: bool) {
        self.closed += 1;
        self.by_kind[kind.index()] += 1;
        let side = if kind == CloseKind::ConnectFailed {
            self.connect_failed += 1;
            Side::of(reason)
        } else {
            SIDE_OF_KIND[kind.index()]
        };
        self.by_side[side.index()] += 1;
        self.closed_unsent += u64::from(unsent);
    }

    /// `self` plus `other`, field by field (a group's sum).
    pub fn add(&self, other: &Counters) -> Counters {
        let mut sum = *self;
        let a = sum.to_array();
        let b = other.to_array();
        let mut out = [0u64; FIELDS];
        for i in 0..FIELDS {
            out[i] = a[i] + b[i];
        }
        sum = Counters::from_array(&out);
        sum
    }

    fn to_array(self) -> [u64; FIELDS] {
        let mut a = [0u64; FIELDS];
        a[..13].copy_from_slice(&[
            self.accepted,
            self.connects_started,
            self.connected,
            self.connect_failed,
            self.rejected_limit,
            self.rejected_descriptors,
            self.rejected_factory,
            self.rejected_other,
            self.closed,
            self.closed_unsent,
            self.open,
            self.bytes_in,
            self.bytes_out,
        ]);
        a[13..13 + KINDS].copy_from_slice(&self.by_kind);
        a[13 + KINDS..FIELDS].copy_from_slice(&self.by_side);
        a
    }

    fn from_array(a: &[u64; FIELDS]) -> Counters {
        let mut by_kind = [0u64; KINDS];
        by_kind.copy_from_slice(&a[13..13 + KINDS]);
        let mut by_side = [0u64; 4];
        by_side.copy_from_slice(&a[13 + KINDS..FIELDS]);
        Counters {
            accepted: a[0],
            connects_started: a[1],
            connected: a[2],
            connect_failed: a[3],
            rejected_limit: a[4],
            rejected_descriptors: a[5],
            rejected_factory: a[6],
            rejected_other: a[7],
            closed: a[8],
            closed_unsent: a[9],
            open: a[10],
            bytes_in: a[11],
            bytes_out: a[12],
            by_kind,
            by_side,
        }
    }
}

const FIELDS: usize = 13 + KINDS + 4;

/// Counters published for other threads: a sequence lock over atomics.
/// The one writer (the reactor, once per turn) makes the sequence odd,
/// stores, and makes it even; a reader retries until it read the same even
/// sequence before and after.
#[derive(Debug)]
pub(crate) struct Published {
    seq: AtomicU64,
    vals: [AtomicU64; FIELDS],
}

impl Published {
    pub(crate) fn new() -> Published {
        Published {
            seq: AtomicU64::new(0),
            vals: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// The reactor's thread only.
    pub(crate) fn store(&self, c: &Counters) {
        let s = self.seq.load(Ordering::Relaxed);
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        for (slot, v) in self.vals.iter().zip(c.to_array()) {
            slot.store(v, Ordering::Relaxed);
        }
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }

    pub(crate) fn load(&self) -> Counters {
        loop {
            let s1 = self.seq.load(Ordering::Acquire);
            if s1 & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let mut a = [0u64; FIELDS];
            for (v, slot) in a.iter_mut().zip(&self.vals) {
                *v = slot.load(Ordering::Relaxed);
            }
            fence(Ordering::Acquire);
            if self.seq.load(Ordering::Relaxed) == s1 {
                return Counters::from_array(&a);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn the_side_table_agrees_with_side_of() {
        let reasons = [
            CloseReason::PeerClosed,
            CloseReason::Reset,
            CloseReason::TimedOut,
            CloseReason::Idle,
            CloseReason::Deadline,
            CloseReason::Local,
            CloseReason::Backpressure,
            CloseReason::FlushTimeout,
            CloseReason::Shutdown,
            CloseReason::Drained,
            CloseReason::Panicked,
            CloseReason::Error(io::Error::from_raw_os_error(5)),
        ];
        for r in &reasons {
            let k = CloseKind::of(r);
            assert_eq!(CloseKind::ALL[k.index()], k);
            assert_eq!(SIDE_OF_KIND[k.index()], Side::of(r), "{r:?}");
        }
    }

    #[test]
    fn sides_of_reasons() {
        assert_eq!(Side::of(&CloseReason::Reset), Side::Peer);
        assert_eq!(Side::of(&CloseReason::Idle), Side::Timer);
        assert_eq!(Side::of(&CloseReason::Local), Side::Handler);
        assert_eq!(Side::of(&CloseReason::Drained), Side::Reactor);
        let timeout = io::Error::new(io::ErrorKind::TimedOut, "connect_timeout passed");
        assert_eq!(Side::of(&CloseReason::ConnectFailed(timeout)), Side::Timer);
        let refused = io::Error::from_raw_os_error(111);
        assert_eq!(Side::of(&CloseReason::ConnectFailed(refused)), Side::Peer);
    }

    #[test]
    fn closes_sum_by_kind_and_by_side() {
        let mut c = Counters::default();
        c.count_close(&CloseReason::Reset, CloseKind::Reset, false);
        c.count_close(&CloseReason::Local, CloseKind::Local, true);
        c.count_close(
            &CloseReason::ConnectFailed(io::Error::from_raw_os_error(111)),
            CloseKind::ConnectFailed,
            false,
        );
        assert_eq!(c.closed, 3);
        assert_eq!(
            CloseKind::ALL.iter().map(|&k| c.closed_by(k)).sum::<u64>(),
            3
        );
        assert_eq!(
            Side::ALL.iter().map(|&s| c.closed_by_side(s)).sum::<u64>(),
            3
        );
        assert_eq!((c.closed_unsent, c.connect_failed), (1, 1));
        let twice = c.add(&c);
        assert_eq!(twice.closed_by(CloseKind::Reset), 2);
        assert_eq!(twice.closed, 6);
    }

    #[test]
    fn published_round_trips() {
        let p = Published::new();
        let mut c = Counters {
            accepted: 5,
            bytes_out: 1 << 40,
            ..Counters::default()
        };
        c.count_close(&CloseReason::Drained, CloseKind::Drained, false);
        p.store(&c);
        assert_eq!(p.load(), c);
    }
}
