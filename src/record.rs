//! The close record: what a handler learns at close besides the reason
//! ([`Ctx::record`](crate::Ctx::record) in
//! [`Handler::on_close_with`](crate::Handler::on_close_with)): who ended it,
//! in which phase, output left unsent, and, with
//! [`Config::close_records`](crate::Config::close_records), the lifetime,
//! the bytes each way, an ordered history of lifecycle events, and how long
//! the close took to notice.

use std::fmt;
use std::time::Duration;

use crate::counters::{CloseKind, Side};
use crate::id::ConnId;

/// The phase a connection ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndPhase {
    /// An outbound connect was under way.
    Connecting,
    /// Open, both directions.
    Open,
    /// Open, the peer had sent its FIN (this side could still write).
    PeerHalfClosed,
    /// Open, this side had sent its FIN (`shutdown_write`), reading on.
    WeHalfClosed,
    /// Closing: flushing output queued before `close()`.
    Flushing,
    /// Closing: our FIN sent, waiting for the peer's.
    WaitingForPeerFin,
}

impl fmt::Display for EndPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndPhase::Connecting => "connecting",
            EndPhase::Open => "open",
            EndPhase::PeerHalfClosed => "peer half-closed",
            EndPhase::WeHalfClosed => "we half-closed",
            EndPhase::Flushing => "flushing our output",
            EndPhase::WaitingForPeerFin => "waiting for the peer's FIN",
        })
    }
}

/// One lifecycle event in a connection's [`History`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum LifecycleEvent {
    /// Opened: accepted, or connected.
    Opened = 1,
    /// The peer's FIN was read.
    PeerFin,
    /// A read or write met the peer's reset.
    PeerReset,
    /// A socket call failed otherwise (timed out, unreachable, another errno).
    SocketError,
    /// Our `close()`.
    Close,
    /// Our `abort()`.
    Abort,
    /// Our `shutdown_write()`.
    ShutdownWrite,
    /// Output queued at close went out in full.
    Flushed,
    /// A timer fired: idle, deadline, close or connect timeout.
    TimerFired,
    /// A drain began while it was open.
    DrainAsked,
    /// Queued output passed `max_write_buffer`.
    Backpressure,
    /// A callback panicked.
    Panicked,
}

impl LifecycleEvent {
    fn from_code(c: u64) -> Option<LifecycleEvent> {
        use LifecycleEvent::*;
        Some(match c {
            1 => Opened,
            2 => PeerFin,
            3 => PeerReset,
            4 => SocketError,
            5 => Close,
            6 => Abort,
            7 => ShutdownWrite,
            8 => Flushed,
            9 => TimerFired,
            10 => DrainAsked,
            11 => Backpressure,
            12 => Panicked,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        use LifecycleEvent::*;
        match self {
            Opened => "open",
            PeerFin => "peer-fin",
            PeerReset => "peer-reset",
            SocketError => "socket-error",
            Close => "close",
            Abort => "abort",
            ShutdownWrite => "shutdown-write",
            Flushed => "flushed",
            TimerFired => "timer",
            DrainAsked => "drain",
            Backpressure => "backpressure",
            Panicked => "panic",
        }
    }
}

/// A connection's first 4 and last 4 lifecycle events, in order, packed in
/// 8 bytes (no allocation), and how many there were in all.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct History {
    /// 8 slots of 4 bits: slots 0-3 the first events, 4-7 the last.
    packed: u32,
    count: u32,
}

impl History {
    /// Appends `e`: kept among the first four, or among the last four.
    pub(crate) fn push(&mut self, e: LifecycleEvent) {
        let code = e as u32;
        if self.count < 8 {
            self.packed |= code << (4 * self.count);
        } else {
            // Slots 4-7 roll: drop slot 4, shift 5-7 down, append at 7.
            let first = self.packed & 0xFFFF;
            let last = (self.packed >> 20) & 0xFFF;
            self.packed = first | (last << 16) | (code << 28);
        }
        self.count = self.count.saturating_add(1);
    }

    /// How many events there were (more than 8: the middle ones are not kept).
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no event was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The events kept, in order: all of them if 8 or fewer, else the first
    /// 4 and the last 4.
    pub fn events(&self) -> impl Iterator<Item = LifecycleEvent> + '_ {
        let kept = self.count.min(8);
        (0..kept).filter_map(move |i| {
            LifecycleEvent::from_code(u64::from((self.packed >> (4 * i)) & 0xF))
        })
    }
}

impl fmt::Debug for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for History {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.events().enumerate() {
            if i > 0 {
                f.write_str(if i == 4 && self.count > 8 {
                    " .. "
                } else {
                    " "
                })?;
            }
            f.write_str(e.name())?;
        }
        Ok(())
    }
}

/// What the kernel knew of a connection just before its descriptor
/// closed (`TCP_INFO`; Linux), when asked for
/// ([`Config::tcp_info_at_close`](crate::Config::tcp_info_at_close),
/// [`Conn::capture_tcp_info`](crate::Conn::capture_tcp_info)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// The TCP state (`TCP_ESTABLISHED` = 1, `TCP_CLOSE_WAIT` = 8, ...).
    pub state: u8,
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// Its variation.
    pub rttvar: Duration,
    /// Retransmissions of the current segment (unrecovered timeouts).
    pub retransmits: u8,
    /// Segments retransmitted over the connection's life.
    pub total_retrans: u32,
    /// Segments thought lost.
    pub lost: u32,
    /// Segments sent and not yet acknowledged.
    pub unacked: u32,
    /// Bytes queued in the kernel and not yet sent.
    pub notsent_bytes: u32,
    /// Time since the last data was received.
    pub last_data_recv: Duration,
}

/// What [`Config::close_records`](crate::Config::close_records) adds to a
/// [`CloseRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseDetail {
    /// From accept, or from the connect call, to the close.
    pub lifetime: Duration,
    /// Bytes read from the peer.
    pub bytes_in: u64,
    /// Bytes the kernel took from our output.
    pub bytes_out: u64,
    /// The lifecycle events, in order.
    pub history: History,
    /// For a close seen from a socket event: from the return of the poll
    /// that carried it to this callback.
    pub detected_after: Option<Duration>,
    /// For a close a timer made: how late the timer fired (to the
    /// millisecond).
    pub timer_late: Option<Duration>,
}

/// A connection's end, told whole ([`Ctx::record`](crate::Ctx::record)).
/// `Display` gives one log line an operator can read:
///
/// ```text
/// conn #12v0 127.0.0.1:5432 ended by peer while open: reset by peer after 2.1 s, in 1.2 KiB out 3.0 MiB (0 unsent) [open peer-reset]
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseRecord {
    /// The connection.
    pub id: ConnId,
    /// Its peer (for an outbound TCP connect, the address connected to).
    pub peer: crate::Peer,
    /// The kind of its [`CloseReason`](crate::CloseReason).
    pub kind: CloseKind,
    /// The reason's errno, if any (Linux's numbering).
    pub errno: Option<i32>,
    /// Who ended it first.
    pub side: Side,
    /// The phase it ended in.
    pub phase: EndPhase,
    /// Bytes queued that never reached the kernel (the peer got a reset).
    pub unsent: u64,
    /// With [`Config::close_records`](crate::Config::close_records).
    pub detail: Option<CloseDetail>,
    /// When asked for, and where the OS has it (Linux).
    pub tcp_info: Option<TcpInfo>,
}

fn side_name(s: Side) -> &'static str {
    match s {
        Side::Peer => "peer",
        Side::Handler => "handler",
        Side::Timer => "timer",
        Side::Reactor => "reactor",
    }
}

fn kind_phrase(k: CloseKind) -> &'static str {
    match k {
        CloseKind::PeerClosed => "closed by peer",
        CloseKind::Reset => "reset by peer",
        CloseKind::TimedOut => "timed out",
        CloseKind::Idle => "idle timeout",
        CloseKind::Deadline => "deadline passed",
        CloseKind::Local => "closed locally",
        CloseKind::Backpressure => "write buffer full",
        CloseKind::FlushTimeout => "close timed out with output unsent",
        CloseKind::Shutdown => "reactor shut down",
        CloseKind::Drained => "closed idle by a drain",
        CloseKind::Panicked => "handler panicked",
        CloseKind::Error => "error",
        CloseKind::ConnectFailed => "connect failed",
        CloseKind::TlsTruncated => "TLS stream ended without close_notify",
        CloseKind::TlsAlert => "TLS alert from the peer",
        CloseKind::TlsHandshakeFailed => "TLS handshake failed",
        CloseKind::TlsHandshakeTimeout => "TLS handshake timed out",
    }
}

/// Bytes as an operator reads them: 512 B, 1.2 KiB, 3.0 MiB.
fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f < K {
        format!("{n} B")
    } else if f < K * K {
        format!("{:.1} KiB", f / K)
    } else if f < K * K * K {
        format!("{:.1} MiB", f / K / K)
    } else {
        format!("{:.1} GiB", f / K / K / K)
    }
}

fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 {
        format!("{s:.1} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

impl fmt::Display for CloseRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conn {} {} ended by {} while {}: {}",
            self.id,
            self.peer,
            side_name(self.side),
            self.phase,
            kind_phrase(self.kind)
        )?;
        if let Some(e) = self.errno {
            write!(f, " (errno {e})")?;
        }
        match &self.detail {
            Some(d) => {
                write!(
                    f,
                    " after {}, in {} out {} ({} unsent)",
                    duration(d.lifetime),
                    bytes(d.bytes_in),
                    bytes(d.bytes_out),
                    bytes(self.unsent)
                )?;
                if let Some(t) = d.detected_after {
                    write!(f, ", told {} after the poll", duration(t))?;
                }
                if let Some(t) = d.timer_late {
                    write!(f, ", timer {} late", duration(t))?;
                }
                write!(f, " [{}]", d.history)?;
            }
            None => write!(f, " ({} unsent)", bytes(self.unsent))?,
        }
        if let Some(t) = &self.tcp_info {
            write!(
                f,
                ", rtt {} retrans {} unacked {} notsent {}",
                duration(t.rtt),
                t.total_retrans,
                t.unacked,
                bytes(u64::from(t.notsent_bytes))
            )?;
        }
        Ok(())
    }
}

/// What the reactor keeps per connection when records are on.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Rec {
    /// Tick it opened (or its connect started).
    pub(crate) opened: u64,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) history: History,
    /// How late its timer fired, if a timer ended it (ms + 1; 0 = none).
    pub(crate) timer_late: u32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use LifecycleEvent as Event;

    #[test]
    fn history_keeps_the_first_four_and_the_last_four_in_order() {
        let mut h = History::default();
        for e in [Event::Opened, Event::PeerFin, Event::Close] {
            h.push(e);
        }
        assert_eq!(h.to_string(), "open peer-fin close");
        let mut h = History::default();
        let all = [
            Event::Opened,
            Event::ShutdownWrite,
            Event::TimerFired,
            Event::DrainAsked,
            Event::Backpressure,
            Event::Close,
            Event::Flushed,
            Event::PeerFin,
            Event::PeerReset,
            Event::Abort,
        ];
        for e in all {
            h.push(e);
        }
        assert_eq!(h.len(), 10);
        let kept: Vec<Event> = h.events().collect();
        assert_eq!(kept, [&all[..4], &all[6..]].concat());
        assert_eq!(
            h.to_string(),
            "open shutdown-write timer drain .. flushed peer-fin peer-reset abort"
        );
    }

    #[test]
    fn bytes_read_as_an_operator_reads_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1229), "1.2 KiB");
        assert_eq!(bytes(3 * 1024 * 1024), "3.0 MiB");
    }
}
