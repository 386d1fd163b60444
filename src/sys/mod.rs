//! The portable face of the OS-specific code: every backend provides the same
//! items (as mio's `src/sys/mod.rs` lists them).
//!
//! - `ETIMEDOUT`, `ECONNRESET`: the errno that names each close class, if known.
//! - `SHORT_READ_DRAINS`: whether a short read means the receive queue is empty.
//! - `set_user_timeout(&SockRef, Option<Duration>)`: `TCP_USER_TIMEOUT` or a no-op.
//! - `set_keepalive(&SockRef, &Keepalive)`: keepalive with retries where settable.

use std::io;

use socket2::SockRef;

use crate::config::Config;

#[cfg(any(target_os = "linux", target_os = "android"))]
#[path = "linux.rs"]
mod imp;

#[cfg(not(any(target_os = "linux", target_os = "android")))]
#[path = "other.rs"]
mod imp;

pub(crate) use imp::{ECONNRESET, ETIMEDOUT, SHORT_READ_DRAINS};

/// Whether `config` sets any per-connection socket option.
pub(crate) fn has_socket_options(config: &Config) -> bool {
    config.nodelay || config.keepalive.is_some() || config.user_timeout.is_some()
}

/// Applies the per-connection socket options of `config` to an accepted
/// stream. The reactor skips the call when [`has_socket_options`] is false,
/// so the default `Config` makes no syscall at all.
pub(crate) fn apply_socket_options(
    stream: &mio::net::TcpStream,
    config: &Config,
) -> io::Result<()> {
    let sock = SockRef::from(stream);
    if config.nodelay {
        sock.set_tcp_nodelay(true)?;
    }
    if let Some(k) = &config.keepalive {
        imp::set_keepalive(&sock, k)?;
    }
    if let Some(t) = config.user_timeout {
        imp::set_user_timeout(&sock, Some(t))?;
    }
    Ok(())
}

/// Makes the next close of `stream` send an RST (SO_LINGER with a zero timeout).
pub(crate) fn set_abortive(stream: &mio::net::TcpStream) -> io::Result<()> {
    SockRef::from(stream).set_linger(Some(std::time::Duration::ZERO))
}

/// The pending socket error (`SO_ERROR`), taken and cleared.
pub(crate) fn take_error(stream: &mio::net::TcpStream) -> io::Result<Option<io::Error>> {
    stream.take_error()
}

/// True for accept errors that mean "out of descriptors or memory": the
/// pending peer stays in the backlog until a descriptor is free.
pub(crate) fn is_resource_exhausted(e: &io::Error) -> bool {
    // EMFILE = 24 and ENFILE = 23 on Linux, the BSDs and macOS; ENOBUFS/ENOMEM
    // show up as OutOfMemory or their raw codes.
    matches!(e.raw_os_error(), Some(23) | Some(24))
        || e.kind() == io::ErrorKind::OutOfMemory
        || e.raw_os_error() == imp::ENOBUFS
}

/// Binds and listens as mio's `TcpListener::bind` does (`SO_REUSEADDR` on
/// Unix, non-blocking, close-on-exec), with the given backlog.
pub(crate) fn bind_listener(
    addr: std::net::SocketAddr,
    backlog: u32,
) -> io::Result<mio::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    #[cfg(unix)]
    sock.set_reuse_address(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog.min(i32::MAX as u32) as i32)?;
    sock.set_nonblocking(true)?;
    Ok(mio::net::TcpListener::from_std(sock.into()))
}
