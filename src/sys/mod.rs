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

pub(crate) use imp::{
    peer_cred, stream_socket, ECONNREFUSED, ECONNRESET, EINPROGRESS, ETIMEDOUT, SEND_FLAGS,
    SHORT_READ_DRAINS, WRITABLE_PROVES_CONNECT,
};

/// Stops new handshakes on a listener about to close, where the OS can
/// (Linux: a socket filter dropping SYNs); a no-op elsewhere.
pub(crate) fn stop_new_handshakes(listener: &SockRef<'_>) -> io::Result<()> {
    imp::stop_new_handshakes(listener)
}

/// `getsockopt(TCP_INFO)` of a connection (Linux; `Unsupported` elsewhere).
pub(crate) fn tcp_info(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<crate::TcpInfo> {
    imp::tcp_info(fd)
}

/// Whether `config` sets any per-connection socket option.
pub(crate) fn has_socket_options(config: &Config) -> bool {
    config.nodelay || config.keepalive.is_some() || config.user_timeout.is_some()
}

/// Applies the per-connection socket options of `config` to a TCP stream.
/// The reactor skips the call when [`has_socket_options`] is false, so the
/// default `Config` makes no syscall at all.
pub(crate) fn apply_socket_options(sock: &SockRef<'_>, config: &Config) -> io::Result<()> {
    if config.nodelay {
        sock.set_tcp_nodelay(true)?;
    }
    if let Some(k) = &config.keepalive {
        imp::set_keepalive(sock, k)?;
    }
    if let Some(t) = config.user_timeout {
        imp::set_user_timeout(sock, Some(t))?;
    }
    Ok(())
}

/// Makes the next close of a TCP socket send an RST (SO_LINGER with a zero timeout).
pub(crate) fn set_abortive(sock: &SockRef<'_>) -> io::Result<()> {
    sock.set_linger(Some(std::time::Duration::ZERO))
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

/// Starts a non-blocking connect to `addr` on a new socket
/// (close-on-exec, non-blocking), with `config`'s socket options. `Err` only
/// when no socket could be made; an error that `connect(2)` (or setting an
/// option) reports at once comes back beside the socket, to be reported
/// through the connection like any later failure.
pub(crate) fn start_connect(
    addr: std::net::SocketAddr,
    config: &Config,
) -> io::Result<(socket2::Socket, Option<io::Error>)> {
    let sock = stream_socket(socket2::Domain::for_address(addr))?;
    if has_socket_options(config) {
        if let Err(e) = apply_socket_options(&SockRef::from(&sock), config) {
            return Ok((sock, Some(e)));
        }
    }
    let failed = match sock.connect(&addr.into()) {
        Ok(()) => None,
        Err(e) if e.raw_os_error() == imp::EINPROGRESS || e.kind() == io::ErrorKind::WouldBlock => {
            None
        }
        Err(e) => Some(e),
    };
    Ok((sock, failed))
}

/// Binds and listens with `SO_REUSEPORT` (and `SO_REUSEADDR`), so that
/// several sockets share `addr` and the kernel spreads connections over
/// them; for a group's [`Balance::ReusePort`](crate::Balance::ReusePort).
pub(crate) fn bind_listener_reuseport(
    addr: std::net::SocketAddr,
    backlog: u32,
) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    sock.set_reuse_address(true)?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    sock.set_reuse_port(true)?;
    sock.bind(&addr.into())?;
    sock.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(sock.into())
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Keepalive;
    use std::time::Duration;

    /// An accepted (server-side) mio stream on loopback, and its client.
    fn accepted() -> (mio::net::TcpStream, std::net::TcpStream) {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (mio::net::TcpStream::from_std(s), c)
    }

    /// `round_trip!(name, config, |sock| getter == expected)`: applies
    /// `config` to an accepted stream and reads the option back.
    macro_rules! round_trip {
        ($name:ident, $config:expr, |$sock:ident| $check:expr) => {
            #[test]
            fn $name() {
                let (stream, _client) = accepted();
                let config: Config = $config;
                assert!(has_socket_options(&config));
                apply_socket_options(&SockRef::from(&stream), &config).unwrap();
                let $sock = SockRef::from(&stream);
                assert!($check);
            }
        };
    }

    round_trip!(nodelay, Config::default().nodelay(true), |s| s
        .tcp_nodelay()
        .unwrap());

    round_trip!(
        keepalive_idle_interval,
        Config::default().keepalive(Some(
            Keepalive::new(Duration::from_secs(7)).interval(Duration::from_secs(3))
        )),
        |s| s.keepalive().unwrap()
            && s.tcp_keepalive_time().unwrap() == Duration::from_secs(7)
            && s.tcp_keepalive_interval().unwrap() == Duration::from_secs(3)
    );

    #[cfg(any(target_os = "linux", target_os = "android"))]
    round_trip!(
        keepalive_retries,
        Config::default().keepalive(Some(Keepalive::new(Duration::from_secs(1)).retries(5))),
        |s| s.tcp_keepalive_retries().unwrap() == 5
    );

    #[cfg(any(target_os = "linux", target_os = "android"))]
    round_trip!(
        user_timeout,
        Config::default().user_timeout(Some(Duration::from_millis(3500))),
        |s| s.tcp_user_timeout().unwrap() == Some(Duration::from_millis(3500))
    );

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn a_listener_that_stopped_new_handshakes_keeps_its_backlog() {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let mut before = std::net::TcpStream::connect(addr).unwrap();
        stop_new_handshakes(&SockRef::from(&l)).unwrap();
        let l = mio::net::TcpListener::from_std(l);
        // A new client's SYN is dropped: its connect neither completes nor fails.
        let late = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300));
        assert!(
            matches!(&late, Err(e) if e.kind() == io::ErrorKind::TimedOut),
            "{late:?}"
        );
        // The one in the backlog is accepted and talks as usual.
        let (mut s, _) = l.accept().unwrap();
        before.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        s.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        // Closing the listener answers the dropped client's retry with a reset.
        drop(l);
        let refused = std::net::TcpStream::connect(addr);
        assert!(
            matches!(&refused, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused),
            "{refused:?}"
        );
    }

    #[test]
    fn default_config_sets_nothing() {
        assert!(!has_socket_options(&Config::default()));
    }
}
