//! Outbound connections: [`Reactor::connect`], the [`Connector`] handlers
//! use, and what the reactor does when a connect completes or fails.

use std::io;
use std::net::SocketAddr;

use mio::event::Event;
use mio::Interest;

use super::dispatch::{deliver, write_ready};
use super::Reactor;
use crate::close::{classify_connect, reason_from_error, CloseReason, ConnectOutcome};
use crate::conn::{ConnId, Flag, Phase};
use crate::connect::Connector;
use crate::handler::Handler;
use crate::sys;

impl<H: Handler> Reactor<H> {
    /// Starts a non-blocking connect to `addr`; returns the new
    /// connection's id at once. Once connected, `handler` gets `on_open`; if
    /// the connect fails it gets only `on_close(CloseReason::ConnectFailed(e))`
    /// with the error the OS gave (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH,
    /// EADDRNOTAVAIL, the kernel's SYN timeout) or `ErrorKind::TimedOut` when
    /// [`Config::connect_timeout`](crate::Config::connect_timeout) passes. An error that `connect(2)` returns
    /// at once is reported the same way, on the next turn. Output written
    /// before the connect completes is queued and sent once connected.
    ///
    /// To connect from inside a callback (a proxy opening its upstream), use
    /// a [`Connector`] from [`Reactor::connector`].
    ///
    /// Outbound connections count in [`connection_count`](Reactor::connection_count)
    /// but not against [`Config::max_connections`](crate::Config::max_connections), and get the same socket
    /// options (keepalive, user timeout, nodelay) as accepted ones.
    ///
    /// # Errors
    ///
    /// - no socket could be made (out of descriptors);
    /// - `ErrorKind::NotConnected`: the reactor has stopped (after
    ///   [`Handle::shutdown`](crate::Handle::shutdown), or a drain ended).
    ///
    /// Either way `handler` is dropped without a callback.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use hangup::{CloseReason, Conn, Handler, Reactor};
    ///
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         conn.write(b"hello\n");
    ///         conn.close();
    ///     }
    ///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    ///     fn on_close(&mut self, reason: CloseReason) {
    ///         println!("closed: {reason}");
    ///     }
    /// }
    ///
    /// let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    /// let mut reactor = Reactor::new()?;
    /// reactor.connect(server.local_addr()?, Hello)?;
    /// let (_peer, _) = server.accept()?;
    /// while reactor.closed_count() == 0 {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?;
    /// # if reactor.connection_count() == 1 { drop(_peer); break; }
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect(&mut self, addr: SocketAddr, handler: H) -> io::Result<ConnId> {
        self.start_connect(handler, |table, env| table.start_connect(addr, env))
    }

    /// Starts a non-blocking connect to the Unix domain socket at `path` (a
    /// path that begins with a NUL byte is a Linux abstract name), with the
    /// contract of [`connect`](Reactor::connect): `on_open` once connected,
    /// or only `on_close(CloseReason::ConnectFailed(e))`: no such path
    /// (`ENOENT`), nobody listening (`ECONNREFUSED`), or the listener's
    /// backlog full (`EAGAIN`: a Unix connect does not wait for room).
    /// [`Config::connect_timeout`](crate::Config::connect_timeout) applies;
    /// keepalive and the user timeout do not.
    ///
    /// # Errors
    ///
    /// As [`connect`](Reactor::connect).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use hangup::{CloseReason, Conn, Handler, Reactor};
    ///
    /// struct Hello;
    /// impl Handler for Hello {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) {
    ///         assert!(conn.peer().is_unix());
    ///         conn.write(b"hello\n");
    ///         conn.close();
    ///     }
    ///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    ///     fn on_close(&mut self, reason: CloseReason) {
    ///         println!("closed: {reason}");
    ///     }
    /// }
    ///
    /// let dir = std::env::temp_dir().join(format!("hangup-connect-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let server = std::os::unix::net::UnixListener::bind(dir.join("s.sock"))?;
    /// let mut reactor = Reactor::new()?;
    /// reactor.connect_unix(dir.join("s.sock"), Hello)?;
    /// let (mut peer, _) = server.accept()?;
    /// let mut got = String::new();
    /// while got.is_empty() {
    ///     reactor.run_once(Some(Duration::from_millis(10)))?;
    ///     peer.set_nonblocking(true)?;
    ///     let _ = std::io::Read::read_to_string(&mut peer, &mut got);
    /// }
    /// assert_eq!(got, "hello\n");
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn connect_unix(
        &mut self,
        path: impl AsRef<std::path::Path>,
        handler: H,
    ) -> io::Result<ConnId> {
        let path = path.as_ref();
        self.start_connect(handler, |table, env| table.start_connect_unix(path, env))
    }

    /// Opens a TLS connection to `addr` (feature `tls`): the TCP connect,
    /// then the handshake with `config`, `name` sent as the server name and
    /// checked against the server's certificate. `handler` gets `on_open`
    /// once the handshake is done; otherwise only `on_close`:
    /// `ConnectFailed` if the TCP connect failed, or
    /// [`TlsHandshakeFailed`](crate::CloseReason::TlsHandshakeFailed)
    /// (a certificate rustls rejected, no shared protocol, ...),
    /// [`TlsAlert`](crate::CloseReason::TlsAlert) (the server refused us),
    /// [`TlsHandshakeTimeout`](crate::CloseReason::TlsHandshakeTimeout).
    /// Output written before that is sent once the handshake is done.
    ///
    /// # Errors
    ///
    /// As [`connect`](Reactor::connect); and `InvalidInput` when rustls
    /// cannot start a client with `config` (no socket is made then).
    #[cfg(feature = "tls")]
    pub fn connect_tls(
        &mut self,
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        handler: H,
    ) -> io::Result<ConnId> {
        self.start_connect(handler, |table, env| {
            table.start_connect_tls(crate::transport::Target::Tcp(addr), config, name, env)
        })
    }

    /// [`connect_tls`](Reactor::connect_tls) over a Unix domain socket at
    /// `path` (feature `tls`).
    ///
    /// # Errors
    ///
    /// As [`connect_tls`](Reactor::connect_tls).
    #[cfg(feature = "tls")]
    pub fn connect_unix_tls(
        &mut self,
        path: impl AsRef<std::path::Path>,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        handler: H,
    ) -> io::Result<ConnId> {
        let path = path.as_ref();
        self.start_connect(handler, |table, env| {
            table.start_connect_tls(crate::transport::Target::Unix(path), config, name, env)
        })
    }

    pub(super) fn start_connect(
        &mut self,
        handler: H,
        start: impl FnOnce(&mut crate::conn::Table, &crate::conn::Env) -> io::Result<ConnId>,
    ) -> io::Result<ConnId> {
        if self.shut_down {
            return Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "Reactor::connect: the reactor has stopped",
            ));
        }
        let id = start(&mut self.table, &self.env)?;
        self.connects.waiting.borrow_mut().push((id, handler));
        self.after_callbacks();
        Ok(id)
    }

    /// A [`Connector`] for this reactor: `Clone`, not `Send`; hand it to the
    /// handlers that open connections from inside their callbacks.
    pub fn connector(&self) -> Connector<H> {
        Connector {
            inner: self.connects.clone(),
        }
    }

    /// An event on a connecting socket. Returns true once connected (after
    /// `on_open` and a first flush), for the caller to read what came with it.
    pub(super) fn connect_event(&mut self, id: ConnId, event: &Event) -> bool {
        if !(event.is_writable()
            || event.is_error()
            || event.is_read_closed()
            || event.is_write_closed())
        {
            return false;
        }
        let (handlers, table, env) = (&mut self.handlers, &mut self.table, &self.env);
        let Some(core) = table.cores.get_mut(id) else {
            return false;
        };
        let so_error = core.stream.take_error();
        // getpeername only when the wake-up is not proof (an error or
        // hang-up flag without writable, or a platform that wakes early).
        let proven = sys::WRITABLE_PROVES_CONNECT && event.is_writable();
        match classify_connect(so_error, proven, || core.stream.is_connected()) {
            ConnectOutcome::Pending => false,
            ConnectOutcome::Failed(e) => {
                log::debug!("conn {id}: connect to {} failed: {e}", core.peer);
                core.st.fail(CloseReason::ConnectFailed(e));
                false
            }
            outcome @ (ConnectOutcome::Connected | ConnectOutcome::ConnectedThenFailed(_)) => {
                log::trace!("conn {id}: connected to {}", core.peer);
                #[cfg(feature = "tls")]
                if table.tls.get(id.index()).is_some_and(Option::is_some) {
                    // A TLS connect: the handshake starts now; on_open
                    // when it is done.
                    self.counters.connected += 1;
                    return self.start_client_handshake(id, outcome);
                }
                core.st.connected(env.clock.now());
                self.counters.connected += 1;
                table.note(id, crate::record::LifecycleEvent::Opened);
                deliver(handlers, table, env, id, "on_open", |h, c| h.on_open(c));
                if let ConnectOutcome::ConnectedThenFailed(e) = outcome {
                    log::debug!("conn {id}: connected, then {e}");
                    if let Some(core) = table.cores.get_mut(id) {
                        core.st.fail(reason_from_error(e));
                    }
                }
                if table.cores.get(id).is_some_and(|c| c.out.is_some()) {
                    write_ready(handlers, table, env, id);
                } else if let Some(core) = table.cores.get_mut(id) {
                    // A FIN asked for while connecting, with nothing queued.
                    let action = core.st.drained();
                    core.act(action);
                }
                self.opened_and_alive(id)
            }
        }
    }

    /// The end of an outbound connection's opening (its connect, or its TLS
    /// handshake): opened during a drain, it hears of it too. Whether it is
    /// still alive, for the caller to read what came with it.
    pub(super) fn opened_and_alive(&mut self, id: ConnId) -> bool {
        if self.env.draining.get() {
            self.tell_drain(id);
        }
        self.table
            .cores
            .get(id)
            .is_some_and(|c| c.st.phase() != Phase::Done)
    }

    /// Gives an outbound connection its handler and registers its socket.
    /// One that already failed is finished on the next turn, so that every
    /// failure reaches `on_close` by the same path.
    pub(super) fn attach(&mut self, id: ConnId, handler: H) {
        self.put_handler(id, handler);
        self.counters.connects_started += 1;
        if let Some(drain) = self.drain.as_mut() {
            // Told of the drain once connected (`connect_event`).
            drain.report.joined += 1;
        }
        let Some(core) = self.table.cores.get_mut(id) else {
            return;
        };
        if core.st.phase() != Phase::Done {
            let interest = Interest::READABLE | Interest::WRITABLE;
            match self
                .poll
                .registry()
                .register(&mut core.stream, id.token(), interest)
            {
                Ok(()) => core.st.set(Flag::WRITABLE_INTEREST, true),
                Err(e) => core.st.fail(CloseReason::ConnectFailed(e)),
            }
        }
        if core.st.phase() == Phase::Done {
            core.st.set(Flag::QUEUED, true);
            self.ready.push_back(id);
        } else {
            self.settle(id);
        }
    }
}
