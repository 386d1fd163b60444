//! The transport seam: what differs between the kinds of stream a
//! connection can be lives here, and only here. Today that is TCP and Unix
//! domain sockets; the state machine, dispatch, the timers and drain see one
//! [`Stream`] and one [`Peer`], whatever the kind.
//!
//! Both kinds are one descriptor, read with `recv(2)` and written with
//! `send(2)` (`MSG_NOSIGNAL` where the OS has it, so that a write to a closed
//! peer is `EPIPE`, never a `SIGPIPE` for a host program that did not ignore
//! it). What differs is small and named here: which socket options apply
//! (keepalive, `TCP_USER_TIMEOUT`, `TCP_INFO`, an abortive `SO_LINGER`: TCP
//! only), how a peer is named ([`Peer`]), and how a listener is bound and
//! accepts ([`Listener`]). The kind is the connection's [`Peer`], so the
//! per-connection table grows by nothing.

use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use socket2::{SockRef, Socket};

use crate::sys;

#[cfg(feature = "tls")]
pub(crate) mod tls;
pub(crate) mod unix;

pub use unix::{PeerCred, UnixListenOptions};

/// Who is at the other end of a connection, by transport: what a listener's
/// factory is given and [`Conn::peer`](crate::Conn::peer) returns.
///
/// A Unix-domain peer carries no address: a client's socket is almost always
/// unnamed. Its credentials are read when asked
/// ([`Conn::peer_cred`](crate::Conn::peer_cred)).
///
/// # Examples
///
/// ```
/// use hangup::Peer;
/// let p = Peer::Tcp("127.0.0.1:9000".parse().unwrap());
/// assert_eq!(p.tcp_addr(), Some("127.0.0.1:9000".parse().unwrap()));
/// assert_eq!(p.to_string(), "127.0.0.1:9000");
/// assert_eq!(Peer::Unix.tcp_addr(), None);
/// assert_eq!(Peer::Unix.to_string(), "unix peer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Peer {
    /// A TCP peer, at this address (as `accept` reported it, or the address
    /// an outbound connect went to).
    Tcp(SocketAddr),
    /// A Unix-domain peer (accepted from a [`listen_unix`](crate::Reactor::listen_unix)
    /// listener, or connected to with [`connect_unix`](crate::Reactor::connect_unix)).
    Unix,
}

impl Peer {
    /// The TCP peer's address; `None` for a Unix-domain peer.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        match *self {
            Peer::Tcp(a) => Some(a),
            Peer::Unix => None,
        }
    }

    /// Whether this is a Unix-domain peer.
    #[inline]
    pub fn is_unix(&self) -> bool {
        matches!(self, Peer::Unix)
    }

    /// What [`Conn::peer_addr`](crate::Conn::peer_addr) returns: the TCP
    /// address, or `0.0.0.0:0` (unspecified) for a Unix-domain peer.
    pub(crate) fn addr_or_unspecified(&self) -> SocketAddr {
        self.tcp_addr()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)))
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(a) => a.fmt(f),
            Peer::Unix => f.write_str("unix peer"),
        }
    }
}

/// Where an outbound connection goes.
#[cfg(feature = "tls")]
#[derive(Debug, Clone, Copy)]
pub(crate) enum Target<'a> {
    Tcp(SocketAddr),
    Unix(&'a std::path::Path),
}

/// A connection's socket, whatever its kind: one descriptor.
#[derive(Debug)]
pub(crate) struct Stream(Socket);

impl Stream {
    /// A connected, non-blocking stream socket.
    #[inline]
    pub(crate) fn from_fd(fd: OwnedFd) -> Stream {
        Stream(Socket::from(fd))
    }

    #[inline]
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        (&self.0).read(buf)
    }

    #[inline]
    pub(crate) fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.0.send_with_flags(buf, sys::SEND_FLAGS)
    }

    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        self.0.shutdown(std::net::Shutdown::Write)
    }

    /// `SO_ERROR`, cleared by reading it.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        self.0.take_error()
    }

    /// Whether the socket has a peer (`getpeername`): tells a connect that
    /// completed from a wake-up before it did.
    pub(crate) fn is_connected(&self) -> io::Result<()> {
        self.0.peer_addr().map(|_| ())
    }

    pub(crate) fn sock_ref(&self) -> SockRef<'_> {
        SockRef::from(&self.0)
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl mio::event::Source for Stream {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).register(registry, token, interest)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).reregister(registry, token, interest)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.0.as_raw_fd()).deregister(registry)
    }
}

/// A listening socket, whatever its kind.
#[derive(Debug)]
pub(crate) enum Listener {
    Tcp(mio::net::TcpListener),
    Unix(unix::UnixListener),
}

/// Where a listener listens: what logs and errors name.
#[derive(Debug, Clone)]
pub(crate) enum ListenAddr {
    Tcp(SocketAddr),
    Unix(String),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => a.fmt(f),
            ListenAddr::Unix(p) => write!(f, "unix:{p}"),
        }
    }
}

impl Listener {
    /// Accepts one pending peer: a non-blocking, close-on-exec stream.
    #[inline]
    pub(crate) fn accept(&self) -> io::Result<(Stream, Peer)> {
        match self {
            Listener::Tcp(l) => {
                let (s, a) = l.accept()?;
                Ok((Stream::from_fd(s.into()), Peer::Tcp(a)))
            }
            Listener::Unix(l) => Ok((Stream::from_fd(l.accept()?), Peer::Unix)),
        }
    }

    pub(crate) fn sock_ref(&self) -> SockRef<'_> {
        match self {
            Listener::Tcp(l) => SockRef::from(l),
            Listener::Unix(l) => l.sock_ref(),
        }
    }

    /// A drain begins: no new peer may reach this listener, while those
    /// already queued are still accepted. TCP: new SYNs are dropped (Linux),
    /// so a client retries and meets a closed listener, refused. Unix: the
    /// socket file is removed if it is ours, so a client's connect finds no
    /// such path (an abstract name or an adopted listener stays reachable
    /// until it closes, after a last accept).
    pub(crate) fn stop_new_peers(&mut self) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => sys::stop_new_handshakes(&SockRef::from(&*l)),
            Listener::Unix(l) => {
                l.unlink();
                Ok(())
            }
        }
    }

    pub(crate) fn is_tcp(&self) -> bool {
        matches!(self, Listener::Tcp(_))
    }
}

impl mio::event::Source for Listener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.register(registry, token, interest),
            Listener::Unix(l) => l.register(registry, token, interest),
        }
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.reregister(registry, token, interest),
            Listener::Unix(l) => l.reregister(registry, token, interest),
        }
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.deregister(registry),
            Listener::Unix(l) => l.deregister(registry),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_no_bigger_than_a_socket_address() {
        // The kind rides in the address's spare discriminant values.
        assert_eq!(
            std::mem::size_of::<Peer>(),
            std::mem::size_of::<SocketAddr>()
        );
        assert_eq!(std::mem::size_of::<Stream>(), 4);
    }

    #[test]
    fn a_unix_peer_has_an_unspecified_address() {
        assert_eq!(
            Peer::Unix.addr_or_unspecified(),
            SocketAddr::from(([0, 0, 0, 0], 0))
        );
        assert!(Peer::Unix.is_unix());
        let a: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(Peer::Tcp(a).addr_or_unspecified(), a);
        assert!(!Peer::Tcp(a).is_unix());
    }
}
