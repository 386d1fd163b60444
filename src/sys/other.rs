//! Other platforms: documented fallbacks.
//!
//! - `TCP_USER_TIMEOUT` does not exist: [`Config::user_timeout`](crate::Config::user_timeout)
//!   is a no-op.
//! - Keepalive idle and interval are set where socket2 can; the probe count
//!   where the OS has it, else the system default applies.
//! - A short read is not taken to mean the socket is drained: the reactor
//!   reads until `WouldBlock`.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::config::Keepalive;

pub(crate) const ETIMEDOUT: Option<i32> = None;
pub(crate) const ECONNRESET: Option<i32> = None;
pub(crate) const ENOBUFS: Option<i32> = None;
pub(crate) const EINPROGRESS: Option<i32> = None;
pub(crate) const ECONNREFUSED: Option<i32> = None;
/// No `MSG_NOSIGNAL` here: a host program that writes to Unix sockets on
/// these systems should ignore `SIGPIPE` (Rust programs do by default).
pub(crate) const SEND_FLAGS: i32 = 0;
pub(crate) const SHORT_READ_DRAINS: bool = false;

/// mio documents that a connecting socket may be woken before its connect
/// ends: `getpeername` tells.
pub(crate) const WRITABLE_PROVES_CONNECT: bool = false;

/// A non-blocking stream socket (close-on-exec where socket2 can).
pub(crate) fn stream_socket(domain: socket2::Domain) -> io::Result<socket2::Socket> {
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

pub(crate) fn set_user_timeout(_sock: &SockRef<'_>, _t: Option<Duration>) -> io::Result<()> {
    Ok(())
}

pub(crate) fn set_keepalive(sock: &SockRef<'_>, k: &Keepalive) -> io::Result<()> {
    #[allow(unused_mut)]
    let mut params = TcpKeepalive::new().with_time(k.get_idle());
    #[cfg(any(
        target_os = "freebsd",
        target_os = "macos",
        target_os = "ios",
        target_os = "netbsd",
        target_os = "windows"
    ))]
    {
        params = params.with_interval(k.get_interval());
    }
    #[cfg(any(
        target_os = "freebsd",
        target_os = "macos",
        target_os = "ios",
        target_os = "netbsd"
    ))]
    {
        params = params.with_retries(k.get_retries());
    }
    sock.set_tcp_keepalive(&params)
}

/// No socket filters here: a drain accepts the backlog and closes the
/// listener, and a client completing its handshake in that instant may be
/// reset.
pub(crate) fn stop_new_handshakes(_sock: &SockRef<'_>) -> io::Result<()> {
    Ok(())
}

/// TCP_INFO is read on Linux only.
pub(crate) fn tcp_info(_fd: std::os::fd::BorrowedFd<'_>) -> io::Result<crate::TcpInfo> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "TCP_INFO is read on Linux only",
    ))
}

/// SO_PEERCRED is read on Linux only.
pub(crate) fn peer_cred(_fd: std::os::fd::BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "peer credentials are read on Linux only",
    ))
}
