//! A connection's close cause, kept small: the [`CloseReason`] without
//! its payload in a byte, and its `io::Error` (if any) beside it. The plain
//! causes are decoded inline; the TLS ones out of line (`#[cold]`), off the
//! plain close path.

use std::fmt;
use std::io;

use crate::close::CloseReason;

/// [`CloseReason`] without its payload, in a byte; the `io::Error` of
/// `Error` and `ConnectFailed` is kept beside it. Keeps [`State`](super::State) small.
pub(super) const NO_CAUSE: u8 = 0;

fn cause_code(r: &CloseReason) -> u8 {
    match r {
        CloseReason::PeerClosed => 1,
        CloseReason::Reset => 2,
        CloseReason::TimedOut => 3,
        CloseReason::Idle => 4,
        CloseReason::Deadline => 5,
        CloseReason::Local => 6,
        CloseReason::Backpressure => 7,
        CloseReason::FlushTimeout => 8,
        CloseReason::Shutdown => 9,
        CloseReason::Panicked => 10,
        CloseReason::Error(_) => 11,
        CloseReason::ConnectFailed(_) => 12,
        CloseReason::Drained => 13,
        CloseReason::TlsTruncated {
            at_record_boundary: true,
        } => 14,
        CloseReason::TlsTruncated {
            at_record_boundary: false,
        } => 15,
        CloseReason::TlsAlert(_) => 16,
        CloseReason::TlsHandshakeFailed(_) => 17,
        CloseReason::TlsHandshakeTimeout => 18,
    }
}

/// A TLS alert's code, kept in the `io::Error` slot of the state (its
/// cause byte says it is an alert).
#[derive(Debug)]
struct AlertCode(u8);

impl fmt::Display for AlertCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TLS alert {}", self.0)
    }
}

impl std::error::Error for AlertCode {}

pub(super) fn split_cause(r: CloseReason) -> (u8, Option<io::Error>) {
    let code = cause_code(&r);
    match r {
        CloseReason::Error(e)
        | CloseReason::ConnectFailed(e)
        | CloseReason::TlsHandshakeFailed(e) => (code, Some(e)),
        CloseReason::TlsAlert(a) => (code, Some(alert_error(a.code))),
        _ => (code, None),
    }
}

#[inline]
pub(super) fn join_cause(code: u8, err: Option<io::Error>) -> Option<CloseReason> {
    let lost = || io::Error::other("cause lost");
    Some(match code {
        1 => CloseReason::PeerClosed,
        2 => CloseReason::Reset,
        3 => CloseReason::TimedOut,
        4 => CloseReason::Idle,
        5 => CloseReason::Deadline,
        6 => CloseReason::Local,
        7 => CloseReason::Backpressure,
        8 => CloseReason::FlushTimeout,
        9 => CloseReason::Shutdown,
        10 => CloseReason::Panicked,
        11 => CloseReason::Error(err.unwrap_or_else(lost)),
        12 => CloseReason::ConnectFailed(err.unwrap_or_else(lost)),
        13 => CloseReason::Drained,
        _ => return join_tls_cause(code, err),
    })
}

/// A TLS alert's code as the `io::Error` the state keeps. Out of the way of
/// the plain close path.
#[cold]
fn alert_error(code: u8) -> io::Error {
    io::Error::other(AlertCode(code))
}

/// [`join_cause`] for the TLS causes (codes 14 to 18). Out of the way of
/// the plain close path.
#[cold]
fn join_tls_cause(code: u8, err: Option<io::Error>) -> Option<CloseReason> {
    let lost = || io::Error::other("cause lost");
    Some(match code {
        14 => CloseReason::TlsTruncated {
            at_record_boundary: true,
        },
        15 => CloseReason::TlsTruncated {
            at_record_boundary: false,
        },
        16 => {
            let code = err
                .as_ref()
                .and_then(|e| e.get_ref())
                .and_then(|e| e.downcast_ref::<AlertCode>())
                .map_or(0, |a| a.0);
            CloseReason::TlsAlert(crate::close::TlsAlert { code })
        }
        17 => CloseReason::TlsHandshakeFailed(err.unwrap_or_else(lost)),
        18 => CloseReason::TlsHandshakeTimeout,
        _ => return None,
    })
}

pub(super) const PEER_CLOSED: u8 = 1;
pub(super) const RESET: u8 = 2;
pub(super) const LOCAL: u8 = 6;
pub(super) const PANICKED: u8 = 10;
pub(super) const DRAINED: u8 = 13;
