//! Why a connection ended: [`CloseReason`] and [`TlsAlert`]. The pure
//! functions that decide it from what the OS said are in `classify.rs`.

use std::fmt;
use std::io;

mod classify;

pub(crate) use classify::{
    after_data, classify_connect, classify_read, reason_from_call_error, reason_from_error,
    AfterData, ConnectOutcome, ReadOutcome,
};

/// Why a connection ended.
///
/// The first cause observed wins: once a peer's FIN was seen, a later close of
/// this side still reports [`PeerClosed`](CloseReason::PeerClosed).
/// `Display` gives a short lowercase phrase; [`raw_os_error`](CloseReason::raw_os_error)
/// the errno, if the OS gave one.
///
/// # Examples
///
/// ```
/// use hangup::CloseReason;
///
/// let reason = CloseReason::from_error(std::io::Error::from_raw_os_error(104));
/// assert!(matches!(reason, CloseReason::Reset));
/// assert_eq!(reason.to_string(), "reset by peer");
/// assert!(reason.is_peer_gone());
/// ```
///
/// It is `Clone`, `PartialEq` (an `io::Error` payload compares by kind and
/// errno) and a `std::error::Error`, so it can be stored, compared in tests,
/// and returned with `?`.
#[non_exhaustive]
#[derive(Debug)]
pub enum CloseReason {
    /// A read returned 0: the peer's orderly FIN, after all of its data was delivered.
    PeerClosed,
    /// The peer aborted the connection: ECONNRESET, EPIPE or ECONNABORTED (an RST).
    Reset,
    /// The kernel gave up on the peer: keepalive probes or `TCP_USER_TIMEOUT` ran out
    /// (ETIMEDOUT), or retransmissions ended in EHOSTUNREACH/ENETUNREACH because the
    /// path to the peer died. The peer vanished.
    TimedOut,
    /// Nothing arrived from the peer within the idle timeout.
    Idle,
    /// A deadline set with [`Conn::set_deadline`](crate::Conn::set_deadline) passed.
    Deadline,
    /// This side closed it: [`Conn::close`](crate::Conn::close),
    /// [`Conn::abort`](crate::Conn::abort), [`Handle::close`](crate::Handle::close)
    /// or [`Handle::abort`](crate::Handle::abort).
    Local,
    /// The peer stopped reading and pending output passed
    /// [`Config::max_write_buffer`](crate::Config::max_write_buffer).
    Backpressure,
    /// [`Conn::close`](crate::Conn::close) could not flush the output queued
    /// before it within [`Config::close_timeout`](crate::Config::close_timeout):
    /// the peer stopped reading. The rest was dropped and the peer was sent a
    /// reset, so that neither side mistakes the partial data for all of it.
    FlushTimeout,
    /// The reactor shut down (or was dropped) with the connection still open,
    /// or a drain's grace period ran out before it finished.
    Shutdown,
    /// A drain ([`Handle::drain`](crate::Handle::drain)) closed it gracefully
    /// because its handler marked it idle ([`Conn::set_idle`](crate::Conn::set_idle)):
    /// a FIN, then its input read until the peer's FIN, so that a request
    /// crossing the close is not answered with a reset.
    Drained,
    /// A callback of this connection's handler panicked; the reactor carried on.
    Panicked,
    /// Any other error, with the errno kept (see [`raw_os_error`](CloseReason::raw_os_error)).
    Error(io::Error),
    /// An outbound connect ([`Reactor::connect`](crate::Reactor::connect),
    /// [`Connector::connect`](crate::Connector::connect)) failed; the handler
    /// got no `on_open`. The error is what the OS said: `ConnectionRefused`
    /// (ECONNREFUSED: an RST answered our SYN), `TimedOut` (ETIMEDOUT: the
    /// kernel's SYN retries ran out, about 127 s on Linux; or hangup's own
    /// [`Config::connect_timeout`](crate::Config::connect_timeout), whose
    /// error has no errno), `HostUnreachable`/`NetworkUnreachable`
    /// (EHOSTUNREACH, ENETUNREACH), `AddrNotAvailable` (EADDRNOTAVAIL: no
    /// local port left), and so on.
    ConnectFailed(io::Error),
    /// TLS: the stream ended (the peer's FIN) without the peer's
    /// close_notify: the data may have been cut short (a truncation).
    /// `at_record_boundary` tells whether the end fell between two TLS
    /// records (many HTTP clients end this way after a complete message)
    /// or inside one (the stream was surely cut). Every byte received
    /// before was delivered. Over TLS, [`PeerClosed`](CloseReason::PeerClosed)
    /// means the peer's close_notify arrived after all its data.
    TlsTruncated {
        /// The end fell between two records, not inside one.
        at_record_boundary: bool,
    },
    /// TLS: the peer sent a fatal alert (during the handshake or after it).
    TlsAlert(TlsAlert),
    /// TLS: the handshake failed on this side: the error rustls gave (a bad
    /// certificate, no shared protocol version or cipher suite, no ALPN
    /// match, a peer that is not speaking TLS, ...), as an `io::Error` of
    /// kind `InvalidData` whose [`get_ref`](io::Error::get_ref) downcasts
    /// to `rustls::Error`; or the peer closed or reset the connection
    /// during the handshake (the `io::Error` the read gave). No `on_open`
    /// came before it.
    TlsHandshakeFailed(io::Error),
    /// TLS: the handshake did not finish within
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout)
    /// (the defence against a slowloris peer over TLS). No `on_open` came
    /// before it.
    TlsHandshakeTimeout,
}

/// A TLS alert the peer sent ([`CloseReason::TlsAlert`]): its code, as in
/// the TLS registry (RFC 8446, 6), and its name.
///
/// ```
/// use hangup::TlsAlert;
/// let a = TlsAlert { code: 48 };
/// assert_eq!(a.name(), "unknown_ca");
/// assert_eq!(a.to_string(), "unknown_ca (48)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TlsAlert {
    /// The alert's code (`AlertDescription`): 40 `handshake_failure`,
    /// 42 `bad_certificate`, 48 `unknown_ca`, 70 `protocol_version`, 120
    /// `no_application_protocol`, ...
    pub code: u8,
}

impl TlsAlert {
    /// The alert's name in the TLS registry; `"unknown"` for a code not in it.
    pub fn name(&self) -> &'static str {
        match self.code {
            0 => "close_notify",
            10 => "unexpected_message",
            20 => "bad_record_mac",
            21 => "decryption_failed",
            22 => "record_overflow",
            30 => "decompression_failure",
            40 => "handshake_failure",
            41 => "no_certificate",
            42 => "bad_certificate",
            43 => "unsupported_certificate",
            44 => "certificate_revoked",
            45 => "certificate_expired",
            46 => "certificate_unknown",
            47 => "illegal_parameter",
            48 => "unknown_ca",
            49 => "access_denied",
            50 => "decode_error",
            51 => "decrypt_error",
            60 => "export_restriction",
            70 => "protocol_version",
            71 => "insufficient_security",
            80 => "internal_error",
            86 => "inappropriate_fallback",
            90 => "user_canceled",
            100 => "no_renegotiation",
            109 => "missing_extension",
            110 => "unsupported_extension",
            111 => "certificate_unobtainable",
            112 => "unrecognized_name",
            113 => "bad_certificate_status_response",
            114 => "bad_certificate_hash_value",
            115 => "unknown_psk_identity",
            116 => "certificate_required",
            120 => "no_application_protocol",
            121 => "encrypted_client_hello_required",
            _ => "unknown",
        }
    }
}

impl fmt::Display for TlsAlert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.code)
    }
}

/// errno values named in the docs, per platform; `None` where it has none.
const ETIMEDOUT: Option<i32> = crate::sys::ETIMEDOUT;
const ECONNRESET: Option<i32> = crate::sys::ECONNRESET;

impl CloseReason {
    /// Maps an I/O error from a socket to the reason it means.
    ///
    /// | error | reason |
    /// |---|---|
    /// | `ConnectionReset`, `BrokenPipe`, `ConnectionAborted` | [`Reset`](CloseReason::Reset) |
    /// | `TimedOut`, `HostUnreachable`, `NetworkUnreachable` | [`TimedOut`](CloseReason::TimedOut) |
    /// | anything else | [`Error`](CloseReason::Error), errno kept |
    pub fn from_error(e: io::Error) -> CloseReason {
        reason_from_error(e)
    }

    /// The errno behind this reason, if any.
    ///
    /// On Linux and Android, [`Reset`](CloseReason::Reset) gives ECONNRESET
    /// (104) and [`TimedOut`](CloseReason::TimedOut) ETIMEDOUT (110): the
    /// errno that names the class (an EPIPE or EHOSTUNREACH that led to it is
    /// logged at debug level). On other platforms those two give `None`, as
    /// their errno values differ. [`Error`](CloseReason::Error) and
    /// [`ConnectFailed`](CloseReason::ConnectFailed) give their own errno on
    /// every platform (`None` for `connect_timeout`, which no errno caused).
    /// Reasons that no errno caused give `None`.
    #[inline]
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            CloseReason::Reset => ECONNRESET,
            CloseReason::TimedOut => ETIMEDOUT,
            CloseReason::Error(e)
            | CloseReason::ConnectFailed(e)
            | CloseReason::TlsHandshakeFailed(e) => e.raw_os_error(),
            _ => None,
        }
    }

    /// True when the peer, or the path to it, ended the connection:
    /// [`PeerClosed`](CloseReason::PeerClosed), [`Reset`](CloseReason::Reset) or
    /// [`TimedOut`](CloseReason::TimedOut).
    pub fn is_peer_gone(&self) -> bool {
        matches!(
            self,
            CloseReason::PeerClosed
                | CloseReason::Reset
                | CloseReason::TimedOut
                | CloseReason::TlsTruncated { .. }
                | CloseReason::TlsAlert(_)
        )
    }

    /// The `io::Error` behind [`Error`](CloseReason::Error) and
    /// [`ConnectFailed`](CloseReason::ConnectFailed); `None` for the others.
    pub fn io_error(&self) -> Option<&io::Error> {
        match self {
            CloseReason::Error(e)
            | CloseReason::ConnectFailed(e)
            | CloseReason::TlsHandshakeFailed(e) => Some(e),
            _ => None,
        }
    }

    /// A short stable name for the variant, e.g. `"Reset"`, for tables and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "PeerClosed",
            CloseReason::Reset => "Reset",
            CloseReason::TimedOut => "TimedOut",
            CloseReason::Idle => "Idle",
            CloseReason::Deadline => "Deadline",
            CloseReason::Local => "Local",
            CloseReason::Backpressure => "Backpressure",
            CloseReason::FlushTimeout => "FlushTimeout",
            CloseReason::Shutdown => "Shutdown",
            CloseReason::Drained => "Drained",
            CloseReason::Panicked => "Panicked",
            CloseReason::Error(_) => "Error",
            CloseReason::ConnectFailed(_) => "ConnectFailed",
            CloseReason::TlsTruncated { .. } => "TlsTruncated",
            CloseReason::TlsAlert(_) => "TlsAlert",
            CloseReason::TlsHandshakeFailed(_) => "TlsHandshakeFailed",
            CloseReason::TlsHandshakeTimeout => "TlsHandshakeTimeout",
        }
    }
}

/// A copy of `e`: the same kind, errno and message (`io::Error` is not
/// `Clone`; a custom payload other than the message is not kept).
fn copy_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

/// Clones every variant; the `io::Error` of [`Error`](CloseReason::Error)
/// and [`ConnectFailed`](CloseReason::ConnectFailed) is copied with its kind,
/// errno and message (`io::Error` itself is not `Clone`).
impl Clone for CloseReason {
    fn clone(&self) -> Self {
        match self {
            CloseReason::PeerClosed => CloseReason::PeerClosed,
            CloseReason::Reset => CloseReason::Reset,
            CloseReason::TimedOut => CloseReason::TimedOut,
            CloseReason::Idle => CloseReason::Idle,
            CloseReason::Deadline => CloseReason::Deadline,
            CloseReason::Local => CloseReason::Local,
            CloseReason::Backpressure => CloseReason::Backpressure,
            CloseReason::FlushTimeout => CloseReason::FlushTimeout,
            CloseReason::Shutdown => CloseReason::Shutdown,
            CloseReason::Drained => CloseReason::Drained,
            CloseReason::Panicked => CloseReason::Panicked,
            CloseReason::Error(e) => CloseReason::Error(copy_error(e)),
            CloseReason::ConnectFailed(e) => CloseReason::ConnectFailed(copy_error(e)),
            CloseReason::TlsTruncated { at_record_boundary } => CloseReason::TlsTruncated {
                at_record_boundary: *at_record_boundary,
            },
            CloseReason::TlsAlert(a) => CloseReason::TlsAlert(*a),
            CloseReason::TlsHandshakeFailed(e) => CloseReason::TlsHandshakeFailed(copy_error(e)),
            CloseReason::TlsHandshakeTimeout => CloseReason::TlsHandshakeTimeout,
        }
    }
}

/// Two reasons are equal when they are the same variant and, for
/// [`Error`](CloseReason::Error) and [`ConnectFailed`](CloseReason::ConnectFailed),
/// their errors have the same `kind()` and `raw_os_error()` (the message is
/// not compared: `io::Error` has no equality of its own).
///
/// ```
/// use std::io;
/// use hangup::CloseReason;
///
/// let refused = CloseReason::ConnectFailed(io::Error::from_raw_os_error(111));
/// assert_eq!(refused, refused.clone());
/// assert_ne!(refused, CloseReason::ConnectFailed(io::ErrorKind::TimedOut.into()));
/// assert_eq!(CloseReason::Reset, CloseReason::Reset);
/// ```
impl PartialEq for CloseReason {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (CloseReason::Error(a), CloseReason::Error(b))
            | (CloseReason::ConnectFailed(a), CloseReason::ConnectFailed(b))
            | (CloseReason::TlsHandshakeFailed(a), CloseReason::TlsHandshakeFailed(b)) => {
                a.kind() == b.kind() && a.raw_os_error() == b.raw_os_error()
            }
            (
                CloseReason::TlsTruncated {
                    at_record_boundary: a,
                },
                CloseReason::TlsTruncated {
                    at_record_boundary: b,
                },
            ) => a == b,
            (CloseReason::TlsAlert(a), CloseReason::TlsAlert(b)) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }
}

/// So that a reason can travel as an error: `?` into `Box<dyn Error>`, or a
/// crate's own error type. [`source`](std::error::Error::source) is the
/// `io::Error` of `Error` and `ConnectFailed`.
impl std::error::Error for CloseReason {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_error().map(|e| e as _)
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::PeerClosed => f.write_str("closed by peer"),
            CloseReason::Reset => f.write_str("reset by peer"),
            CloseReason::TimedOut => f.write_str("timed out"),
            CloseReason::Idle => f.write_str("idle timeout"),
            CloseReason::Deadline => f.write_str("deadline passed"),
            CloseReason::Local => f.write_str("closed locally"),
            CloseReason::Backpressure => f.write_str("write buffer full"),
            CloseReason::FlushTimeout => f.write_str("close timed out with output unsent"),
            CloseReason::Shutdown => f.write_str("reactor shut down"),
            CloseReason::Drained => f.write_str("closed idle by a drain"),
            CloseReason::Panicked => f.write_str("handler panicked"),
            CloseReason::Error(e) => write!(f, "error: {e}"),
            CloseReason::ConnectFailed(e) => write!(f, "connect failed: {e}"),
            CloseReason::TlsTruncated {
                at_record_boundary: true,
            } => f.write_str("TLS stream ended without close_notify, between records"),
            CloseReason::TlsTruncated {
                at_record_boundary: false,
            } => f.write_str("TLS stream cut inside a record"),
            CloseReason::TlsAlert(a) => write!(f, "TLS alert from the peer: {a}"),
            CloseReason::TlsHandshakeFailed(e) => write!(f, "TLS handshake failed: {e}"),
            CloseReason::TlsHandshakeTimeout => f.write_str("TLS handshake timed out"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_short_lowercase() {
        for r in [
            CloseReason::PeerClosed,
            CloseReason::Reset,
            CloseReason::TimedOut,
            CloseReason::Idle,
            CloseReason::Deadline,
            CloseReason::Local,
            CloseReason::Backpressure,
            CloseReason::Shutdown,
            CloseReason::Panicked,
        ] {
            let s = r.to_string();
            assert!(!s.is_empty() && s.len() < 24, "{s}");
            assert_eq!(s, s.to_lowercase());
        }
    }
}
