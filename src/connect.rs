//! [`Connector`]: opens outbound connections from inside callbacks.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use crate::conn::{Conn, ConnId};

/// Opens outbound connections from inside a handler's callbacks, with a
/// handler of the reactor's own type.
///
/// Get one with [`Reactor::connector`](crate::Reactor::connector) and hand
/// clones to the handlers that need it (through the listener's factory, or
/// the handler given to [`Reactor::connect`](crate::Reactor::connect)). It is
/// `Clone` but not `Send`: it belongs to the reactor's thread. No thread, no
/// lock, no global: the new connection's socket is made at once and its
/// handler is handed to the reactor when the callback returns.
///
/// Handlers that play two roles (a proxy's client side and upstream side)
/// are usually an enum.
///
/// # Examples
///
/// A handler that, once a client is accepted, opens a connection to an
/// upstream and tells it the client's address:
///
/// ```
/// use std::net::SocketAddr;
/// use hangup::{CloseReason, Conn, Connector, Handler, Reactor};
///
/// enum Side {
///     Client { connector: Connector<Side>, upstream: SocketAddr },
///     Upstream { greeting: String },
/// }
///
/// impl Handler for Side {
///     fn on_open(&mut self, conn: &mut Conn<'_>) {
///         match self {
///             Side::Client { connector, upstream } => {
///                 let greeting = format!("client {}\n", conn.peer_addr());
///                 if let Err(e) = connector.connect(conn, *upstream, Side::Upstream { greeting }) {
///                     log::warn!("no socket for the upstream: {e}");
///                     conn.close();
///                 }
///             }
///             Side::Upstream { greeting } => conn.write(greeting.as_bytes()),
///         }
///     }
///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
///     fn on_close(&mut self, reason: CloseReason) {
///         log::info!("closed: {reason}");
///     }
/// }
///
/// let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let upstream_addr = upstream.local_addr()?;
/// let mut reactor = Reactor::new()?;
/// let connector = reactor.connector();
/// let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), move |_| Side::Client {
///     connector: connector.clone(),
///     upstream: upstream_addr,
/// })?;
/// let _client = std::net::TcpStream::connect(addr)?;
/// while reactor.connection_count() < 2 {
///     reactor.run_once(Some(std::time::Duration::from_millis(10)))?;
/// }
/// // The upstream was opened from inside on_open.
/// let (mut from_proxy, _) = upstream.accept()?;
/// # use std::io::Read;
/// # from_proxy.set_nonblocking(true)?;
/// # let mut got = Vec::new();
/// # while !got.ends_with(b"\n") {
/// #     reactor.run_once(Some(std::time::Duration::from_millis(10)))?;
/// #     let mut b = [0u8; 64];
/// #     if let Ok(n) = from_proxy.read(&mut b) { got.extend_from_slice(&b[..n]); }
/// # }
/// # assert!(got.starts_with(b"client 127.0.0.1:"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Connector<H> {
    pub(crate) inner: Rc<Queue<H>>,
}

/// Handlers of connects started during a callback, waiting for the reactor.
pub(crate) struct Queue<H> {
    /// The reactor's identity ([`Env::identity`](crate::conn::Env)).
    pub(crate) reactor: Rc<()>,
    pub(crate) waiting: RefCell<Vec<(ConnId, H)>>,
}

impl<H> Clone for Connector<H> {
    fn clone(&self) -> Self {
        Connector {
            inner: self.inner.clone(),
        }
    }
}

impl<H> fmt::Debug for Connector<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connector").finish_non_exhaustive()
    }
}

impl<H> Connector<H> {
    /// Starts a connect with `start` on `via`'s reactor and queues
    /// `handler` for it; `what` names the method in the error for a `Conn`
    /// of another reactor.
    fn start(
        &self,
        via: &mut Conn<'_>,
        what: &str,
        handler: H,
        start: impl FnOnce(&mut crate::conn::Table, &crate::conn::Env) -> io::Result<ConnId>,
    ) -> io::Result<ConnId> {
        if !Rc::ptr_eq(&self.inner.reactor, &via.env.identity) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("Connector::{what}: the Conn belongs to another reactor"),
            ));
        }
        let id = start(via.table, via.env)?;
        self.inner.waiting.borrow_mut().push((id, handler));
        Ok(id)
    }

    /// Starts a non-blocking connect to `addr` from inside a callback; `via`
    /// is the callback's `Conn` (any connection of the same reactor). Returns
    /// the new connection's id at once, so the caller can reach it with
    /// [`Conn::other`] in the same callback (writes are queued until it is
    /// connected).
    ///
    /// `handler` gets `on_open` once connected, or only
    /// `on_close(CloseReason::ConnectFailed(e))` if the connect fails,
    /// including an error `connect(2)` returns at once (reported on the next
    /// turn, through the same path) and
    /// [`Config::connect_timeout`](crate::Config::connect_timeout).
    ///
    /// # Errors
    ///
    /// - no socket could be made (out of descriptors): `handler` is dropped
    ///   without a callback;
    /// - `via` belongs to another reactor: `ErrorKind::InvalidInput`.
    pub fn connect(&self, via: &mut Conn<'_>, addr: SocketAddr, handler: H) -> io::Result<ConnId> {
        self.start(via, "connect", handler, |t, env| t.start_connect(addr, env))
    }

    /// [`connect`](Connector::connect) over TLS (feature `tls`; see
    /// [`Reactor::connect_tls`](crate::Reactor::connect_tls)).
    ///
    /// # Errors
    ///
    /// As [`connect`](Connector::connect); and `InvalidInput` when rustls
    /// cannot start a client with `config`.
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        &self,
        via: &mut Conn<'_>,
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        handler: H,
    ) -> io::Result<ConnId> {
        self.start(via, "connect_tls", handler, |t, env| {
            t.start_connect_tls(crate::transport::Target::Tcp(addr), config, name, env)
        })
    }

    /// [`connect_tls`](Connector::connect_tls) over a Unix domain socket at
    /// `path` (feature `tls`).
    ///
    /// # Errors
    ///
    /// As [`connect_tls`](Connector::connect_tls).
    #[cfg(feature = "tls")]
    pub fn connect_unix_tls(
        &self,
        via: &mut Conn<'_>,
        path: impl AsRef<std::path::Path>,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        handler: H,
    ) -> io::Result<ConnId> {
        let path = path.as_ref();
        self.start(via, "connect_unix_tls", handler, |t, env| {
            t.start_connect_tls(crate::transport::Target::Unix(path), config, name, env)
        })
    }

    /// [`connect`](Connector::connect) to a Unix domain socket at `path`
    /// (see [`Reactor::connect_unix`](crate::Reactor::connect_unix)).
    ///
    /// # Errors
    ///
    /// As [`connect`](Connector::connect).
    pub fn connect_unix(
        &self,
        via: &mut Conn<'_>,
        path: impl AsRef<std::path::Path>,
        handler: H,
    ) -> io::Result<ConnId> {
        let path = path.as_ref();
        self.start(via, "connect_unix", handler, |t, env| {
            t.start_connect_unix(path, env)
        })
    }
}
