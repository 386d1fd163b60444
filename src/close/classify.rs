//! The pure functions that decide why a connection ended: what a read, a
//! call's error, or a connecting socket's wake-up means. Nothing here touches
//! a socket, so they are unit-tested with errors built from `io::ErrorKind`s
//! and errnos.

use std::io;

use super::{CloseReason, ECONNRESET, ETIMEDOUT};

/// What a writable (or error) event on a connecting socket means.
#[derive(Debug)]
pub(crate) enum ConnectOutcome {
    /// Connected.
    Connected,
    /// Not yet: a spurious event.
    Pending,
    /// The connect failed with this error.
    Failed(io::Error),
    /// The handshake completed, then the connection died before we looked:
    /// `SO_ERROR` holds ECONNRESET (or EPIPE, a reset after the peer's FIN),
    /// which the kernel sets only on an established connection (a reset
    /// answering our SYN is ECONNREFUSED). Reported as connected, then
    /// closed for that error: `on_open`, then `on_close(Reset)`, the same
    /// as when the reset is read a moment later.
    ConnectedThenFailed(io::Error),
}

/// Decides what `SO_ERROR` and `getpeername` say about a non-blocking
/// connect, as mio documents it: an error in `SO_ERROR` is the connect's
/// failure; otherwise, if the wake-up itself proves the connect ended
/// (`proven`: a writable event where the OS wakes writers only then, see
/// `sys::WRITABLE_PROVES_CONNECT`), it is connected; if not, `peer_addr`
/// (`getpeername`, called only then) succeeding means connected, and
/// `NotConnected` (ENOTCONN) or EINPROGRESS means not yet. Pure.
pub(crate) fn classify_connect<T>(
    so_error: io::Result<Option<io::Error>>,
    proven: bool,
    peer_addr: impl FnOnce() -> io::Result<T>,
) -> ConnectOutcome {
    match so_error {
        Ok(Some(e))
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
            ) =>
        {
            ConnectOutcome::ConnectedThenFailed(e)
        }
        Ok(Some(e)) | Err(e) => ConnectOutcome::Failed(e),
        Ok(None) if proven => ConnectOutcome::Connected,
        Ok(None) => match peer_addr() {
            Ok(_) => ConnectOutcome::Connected,
            Err(e)
                if e.kind() == io::ErrorKind::NotConnected
                    || e.kind() == io::ErrorKind::WouldBlock
                    || e.raw_os_error() == crate::sys::EINPROGRESS =>
            {
                ConnectOutcome::Pending
            }
            Err(e) => ConnectOutcome::Failed(e),
        },
    }
}

/// What one `read` result means for the connection.
#[derive(Debug)]
pub(crate) enum ReadOutcome {
    /// `n > 0` bytes arrived.
    Data(usize),
    /// The read returned 0: the peer's FIN.
    Eof,
    /// Nothing more to read for now.
    WouldBlock,
    /// A signal interrupted the read; retry it.
    Interrupted,
    /// The peer's reset (ECONNRESET): the commonest way a read fails, told
    /// apart from [`Closed`](ReadOutcome::Closed) without looking further.
    PeerReset,
    /// The connection is dead, for this reason.
    Closed(CloseReason),
}

/// Decides what a read result means. Pure: the read itself happens elsewhere.
#[inline]
pub(crate) fn classify_read(result: io::Result<usize>) -> ReadOutcome {
    match result {
        Ok(0) => ReadOutcome::Eof,
        Ok(n) => ReadOutcome::Data(n),
        // (`is_some`: where the errno is unknown, nothing takes this path.)
        Err(e) if ECONNRESET.is_some() && e.raw_os_error() == ECONNRESET => ReadOutcome::PeerReset,
        Err(e) => match e.kind() {
            io::ErrorKind::WouldBlock => ReadOutcome::WouldBlock,
            io::ErrorKind::Interrupted => ReadOutcome::Interrupted,
            _ => ReadOutcome::Closed(reason_from_error(e)),
        },
    }
}

/// Maps an error from a socket call (read, write, `SO_ERROR`) to a [`CloseReason`].
///
/// EHOSTUNREACH and ENETUNREACH count as [`CloseReason::TimedOut`]: on an
/// established connection the kernel reports them in place of ETIMEDOUT when
/// its retransmissions (or keepalive probes) gave up and the last thing it
/// learned was that the path to the peer is gone (neighbour discovery failed,
/// or an ICMP unreachable arrived). Either way the peer vanished.
pub(crate) fn reason_from_error(e: io::Error) -> CloseReason {
    match e.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::ConnectionAborted => {
            if e.raw_os_error() != ECONNRESET {
                log::debug!("{e} counted as a reset");
            }
            CloseReason::Reset
        }
        io::ErrorKind::TimedOut
        | io::ErrorKind::HostUnreachable
        | io::ErrorKind::NetworkUnreachable => {
            if e.raw_os_error() != ETIMEDOUT {
                log::debug!("{e} counted as timed out: the path to the peer is gone");
            }
            CloseReason::TimedOut
        }
        _ => CloseReason::Error(e),
    }
}

/// Maps an error that a call of ours (write, `shutdown`) got on an open
/// connection. ENOTCONN and EPIPE there mean the connection was already
/// dead when we called: the peer's reset (or a keepalive timeout) arrived
/// before we read it. `pending` gives the error the kernel still holds for
/// the socket (`SO_ERROR`), which names what happened; without one, the
/// connection was torn down by the peer: a reset. Pure.
pub(crate) fn reason_from_call_error(
    e: io::Error,
    pending: impl FnOnce() -> Option<io::Error>,
) -> CloseReason {
    match e.kind() {
        io::ErrorKind::NotConnected | io::ErrorKind::BrokenPipe => match pending() {
            Some(first) => reason_from_error(first),
            None => CloseReason::Reset,
        },
        _ => reason_from_error(e),
    }
}

/// Whether to read again after a read that returned `n` bytes into a buffer of
/// `buf_len`, having read `total` bytes this turn.
///
/// On Linux a short read (`n < buf_len`) means the socket's receive queue was
/// drained (epoll(7)); a new edge will come when more arrives. The exception is
/// a hang-up hint on the event (FIN or error already queued): then one more
/// read collects the EOF or the error now instead of never.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum AfterData {
    /// Read again.
    Continue,
    /// The socket is drained; wait for the next edge.
    Drained,
    /// The per-turn budget is used up; come back next turn.
    Yield,
}

pub(crate) fn after_data(
    n: usize,
    buf_len: usize,
    total: usize,
    budget: usize,
    hup_hint: bool,
) -> AfterData {
    if total >= budget {
        AfterData::Yield
    } else if n < buf_len && !hup_hint && crate::sys::SHORT_READ_DRAINS {
        AfterData::Drained
    } else {
        AfterData::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(kind: io::ErrorKind) -> io::Error {
        io::Error::from(kind)
    }

    fn connect_outcome(
        so_error: Option<io::ErrorKind>,
        peer: io::Result<std::net::SocketAddr>,
    ) -> ConnectOutcome {
        classify_connect(Ok(so_error.map(err)), false, || peer)
    }

    #[test]
    fn a_proven_wake_up_needs_no_getpeername() {
        let never = || -> io::Result<()> { panic!("getpeername called") };
        assert!(matches!(
            classify_connect(Ok(None), true, never),
            ConnectOutcome::Connected
        ));
        // SO_ERROR still decides first.
        let refused = Ok(Some(err(io::ErrorKind::ConnectionRefused)));
        assert!(matches!(
            classify_connect(refused, true, never),
            ConnectOutcome::Failed(_)
        ));
        // Not proven (an error or hang-up flag alone): getpeername tells.
        let pending: io::Result<()> = Err(err(io::ErrorKind::NotConnected));
        assert!(matches!(
            classify_connect(Ok(None), false, || pending),
            ConnectOutcome::Pending
        ));
    }

    #[test]
    fn connect_refused_is_a_failed_connect() {
        let refused = Some(io::ErrorKind::ConnectionRefused);
        let got = connect_outcome(refused, Err(err(io::ErrorKind::NotConnected)));
        assert!(
            matches!(got, ConnectOutcome::Failed(e) if e.kind() == io::ErrorKind::ConnectionRefused)
        );
    }

    #[test]
    fn connect_reset_after_the_handshake_is_connected_then_reset() {
        // ECONNRESET in SO_ERROR: only an established connection gets it.
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::BrokenPipe] {
            let got = connect_outcome(Some(kind), Err(err(io::ErrorKind::NotConnected)));
            assert!(
                matches!(got, ConnectOutcome::ConnectedThenFailed(_)),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn connect_without_error_is_connected_or_not_yet() {
        let addr = "127.0.0.1:1".parse().unwrap();
        assert!(matches!(
            connect_outcome(None, Ok(addr)),
            ConnectOutcome::Connected
        ));
        let pending = connect_outcome(None, Err(err(io::ErrorKind::NotConnected)));
        assert!(matches!(pending, ConnectOutcome::Pending));
    }

    #[test]
    fn call_error_after_the_peer_reset_is_the_reset() {
        let enotconn = || io::Error::from_raw_os_error(107);
        let r = reason_from_call_error(enotconn(), || None);
        assert_eq!(r, CloseReason::Reset);
        let r = reason_from_call_error(enotconn(), || Some(err(io::ErrorKind::ConnectionReset)));
        assert_eq!(r, CloseReason::Reset);
        let r = reason_from_call_error(enotconn(), || Some(err(io::ErrorKind::TimedOut)));
        assert_eq!(
            r,
            CloseReason::TimedOut,
            "the error the kernel held names it"
        );
        let r = reason_from_call_error(err(io::ErrorKind::BrokenPipe), || None);
        assert_eq!(r, CloseReason::Reset);
        let r = reason_from_call_error(err(io::ErrorKind::PermissionDenied), || None);
        assert!(matches!(r, CloseReason::Error(_)), "others as before");
    }

    #[test]
    fn read_zero_is_eof() {
        assert!(matches!(classify_read(Ok(0)), ReadOutcome::Eof));
    }

    #[test]
    fn read_data() {
        assert!(matches!(classify_read(Ok(7)), ReadOutcome::Data(7)));
    }

    #[test]
    fn read_would_block_and_interrupted() {
        assert!(matches!(
            classify_read(Err(err(io::ErrorKind::WouldBlock))),
            ReadOutcome::WouldBlock
        ));
        assert!(matches!(
            classify_read(Err(err(io::ErrorKind::Interrupted))),
            ReadOutcome::Interrupted
        ));
    }

    #[test]
    fn error_table() {
        use io::ErrorKind::*;
        let table: &[(io::ErrorKind, &str)] = &[
            (ConnectionReset, "Reset"),
            (BrokenPipe, "Reset"),
            (ConnectionAborted, "Reset"),
            (TimedOut, "TimedOut"),
            (HostUnreachable, "TimedOut"),
            (NetworkUnreachable, "TimedOut"),
            (PermissionDenied, "Error"),
            (InvalidData, "Error"),
            (OutOfMemory, "Error"),
        ];
        for (kind, want) in table {
            let got = reason_from_error(err(*kind));
            assert_eq!(got.name(), *want, "{kind:?}");
            match classify_read(Err(err(*kind))) {
                ReadOutcome::Closed(r) => assert_eq!(r.name(), *want),
                other => panic!("{kind:?} gave {other:?}"),
            }
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn econnreset_on_a_read_is_the_peers_reset_at_once() {
        let got = classify_read(Err(io::Error::from_raw_os_error(104)));
        assert!(matches!(got, ReadOutcome::PeerReset), "{got:?}");
        // Another errno of the same kind goes the general way, to the same name.
        match classify_read(Err(io::Error::from_raw_os_error(32))) {
            ReadOutcome::Closed(r) => assert_eq!(r.name(), "Reset"),
            other => panic!("EPIPE gave {other:?}"),
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn errno_table_linux() {
        let table: &[(i32, &str)] = &[
            (104, "Reset"),    // ECONNRESET
            (32, "Reset"),     // EPIPE
            (103, "Reset"),    // ECONNABORTED
            (110, "TimedOut"), // ETIMEDOUT
            (113, "TimedOut"), // EHOSTUNREACH
            (101, "TimedOut"), // ENETUNREACH
            (5, "Error"),      // EIO
        ];
        for (errno, want) in table {
            let r = reason_from_error(io::Error::from_raw_os_error(*errno));
            assert_eq!(r.name(), *want, "errno {errno}");
        }
        let r = reason_from_error(io::Error::from_raw_os_error(5));
        assert_eq!(r.raw_os_error(), Some(5), "Error keeps its errno");
        assert_eq!(CloseReason::Reset.raw_os_error(), Some(104));
        assert_eq!(CloseReason::TimedOut.raw_os_error(), Some(110));
        assert_eq!(CloseReason::Idle.raw_os_error(), None);
    }

    #[test]
    fn short_read_drains_unless_hangup_hint() {
        let drained = if crate::sys::SHORT_READ_DRAINS {
            AfterData::Drained
        } else {
            AfterData::Continue
        };
        assert_eq!(after_data(10, 100, 10, 1000, false), drained);
        assert_eq!(after_data(10, 100, 10, 1000, true), AfterData::Continue);
        assert_eq!(after_data(100, 100, 100, 1000, false), AfterData::Continue);
        assert_eq!(after_data(100, 100, 1000, 1000, false), AfterData::Yield);
        assert_eq!(after_data(10, 100, 1000, 1000, true), AfterData::Yield);
    }
}
