//! Accepting: the listeners (made, adopted, handed out), accepting from
//! them, and what the reactor does when descriptors run out (EMFILE).

use std::io;
use std::net::SocketAddr;
use std::path::Path;

use mio::{Interest, Token};

use super::{
    guarded, open_spare, peer_factory, tcp_factory, Factory, Listener, Reactor, ACCEPT_RETRY,
};
use crate::close::CloseReason;
use crate::conn::{ticks, Conn, Core, State, LISTENER_BIT};
use crate::error::{named, NotTcp};
use crate::handler::Handler;
use crate::record::LifecycleEvent;
use crate::sys;
use crate::transport::{self, unix, ListenAddr, Peer, Stream, UnixListenOptions};

impl<H: Handler> Reactor<H> {
    /// Binds `addr`, listens, and makes a handler with `factory` for every
    /// peer accepted there. Returns the bound address (port 0 resolves to the
    /// real port). May be called more than once, for several addresses.
    ///
    /// # Errors
    ///
    /// Binding or listening failed (address in use, permission denied, ...),
    /// or no descriptor was left to hold in reserve for turning peers away
    /// when descriptors run out (EMFILE): the error keeps its kind and its
    /// message names `addr`.
    pub fn listen<F>(&mut self, addr: SocketAddr, factory: F) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> H + 'static,
    {
        let named = |e: io::Error| named(format!("listen on {addr}"), e);
        self.hold_spare(&addr.to_string())?;
        let sock = sys::bind_listener(addr, self.env.config.listen_backlog).map_err(named)?;
        self.add_tcp_listener(sock, tcp_factory(factory))
    }

    /// Adopts a listener that is already bound and listening: one passed by
    /// systemd socket activation, or handed over by the process this one
    /// replaces (see [`take_listeners`](Reactor::take_listeners)). It is set
    /// non-blocking here, so a blocking listener can never hang the loop.
    /// Returns its address.
    ///
    /// # Errors
    ///
    /// Setting it non-blocking, reading its address or registering it
    /// failed, or no spare descriptor could be held in reserve (as for
    /// [`listen`](Reactor::listen)).
    ///
    /// A listener that is not a TCP socket (a Unix-domain listener turned
    /// into a `TcpListener` through its descriptor) is `InvalidInput`: the
    /// message says what it is and what to call instead, and the listener
    /// is not lost: [`NotTcp`] inside the error gives it back.
    ///
    /// # Examples
    ///
    /// ```
    /// use hangup::{CloseReason, Conn, Handler, Reactor};
    /// # struct Quiet;
    /// # impl Handler for Quiet {
    /// #     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    /// #     fn on_close(&mut self, _: CloseReason) {}
    /// # }
    /// let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?; // blocking
    /// let mut reactor = Reactor::new()?;
    /// let addr = reactor.listen_std(std_listener, |_| Quiet)?;
    /// let _client = std::net::TcpStream::connect(addr)?;
    /// reactor.run_once(Some(std::time::Duration::from_millis(100)))?; // does not block in accept
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_std<F>(
        &mut self,
        listener: std::net::TcpListener,
        factory: F,
    ) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> H + 'static,
    {
        self.listen_std_with(listener, tcp_factory(factory))
    }

    /// [`listen_std`](Reactor::listen_std) with a factory taking a [`Peer`].
    pub(crate) fn listen_std_with(
        &mut self,
        listener: std::net::TcpListener,
        factory: Factory<H>,
    ) -> io::Result<SocketAddr> {
        let listener = NotTcp::check(listener)?;
        let at = listener
            .local_addr()
            .map_or_else(|_| "an adopted listener".to_string(), |a| a.to_string());
        let named = |e: io::Error| named(format!("listen on {at}"), e);
        listener.set_nonblocking(true).map_err(named)?;
        self.hold_spare(&at)?;
        self.add_tcp_listener(mio::net::TcpListener::from_std(listener), factory)
    }

    /// Binds a Unix domain socket at `path`, listens, and makes a handler
    /// with `factory` for every peer accepted there (given [`Peer::Unix`]).
    /// A path that begins with a NUL byte (`"\0name"`) is a Linux abstract
    /// name: no file is made.
    ///
    /// The socket file is removed when the listener goes away (the reactor
    /// is dropped, or a drain closes it), if the path still names the file
    /// this call made (same device and inode): a successor that has bound
    /// the path since keeps its socket. A file already at the path is never
    /// replaced: see [`listen_unix_with`](Reactor::listen_unix_with).
    ///
    /// Every close rule of TCP holds, with these differences: keepalive and
    /// [`Config::user_timeout`](crate::Config::user_timeout) do not apply (a
    /// hung peer process is found only by an idle timeout), so a Unix
    /// connection never ends `TimedOut`; and AF_UNIX has no reset to send,
    /// so a close with output left unsent (or [`Conn::abort`](crate::Conn::abort))
    /// reports its failure here while the peer sees an end of stream, or
    /// `ECONNRESET` if data it sent was left unread.
    ///
    /// # Errors
    ///
    /// The path is in use (`AddrInUse`: a live listener answers there, a
    /// stale socket file is in the way, or the file is not a socket), or
    /// binding failed otherwise; every message names the path.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use hangup::{CloseReason, Conn, Handler, Reactor};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) { conn.write(data) }
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    ///
    /// let dir = std::env::temp_dir().join(format!("hangup-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("echo.sock");
    /// let mut reactor = Reactor::new()?;
    /// reactor.listen_unix(&path, |_peer| Echo)?;
    ///
    /// let mut client = std::os::unix::net::UnixStream::connect(&path)?;
    /// client.write_all(b"hi")?;
    /// client.set_nonblocking(true)?; // this thread also drives the reactor
    /// let mut got = Vec::new();
    /// while got.len() < 2 {
    ///     reactor.run_once(Some(std::time::Duration::from_millis(10)))?;
    ///     let mut buf = [0u8; 16];
    ///     if let Ok(n) = client.read(&mut buf) {
    ///         got.extend_from_slice(&buf[..n]);
    ///     }
    /// }
    /// assert_eq!(got, b"hi");
    /// drop(reactor); // removes the socket file
    /// assert!(!path.exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_unix<F>(&mut self, path: impl AsRef<Path>, factory: F) -> io::Result<()>
    where
        F: FnMut(Peer) -> H + 'static,
    {
        self.listen_unix_with(path, UnixListenOptions::new(), factory)
    }

    /// [`listen_unix`](Reactor::listen_unix), with options: replacing a stale
    /// socket file, the file's permissions.
    ///
    /// # Errors
    ///
    /// As [`listen_unix`](Reactor::listen_unix).
    pub fn listen_unix_with<F>(
        &mut self,
        path: impl AsRef<Path>,
        options: UnixListenOptions,
        factory: F,
    ) -> io::Result<()>
    where
        F: FnMut(Peer) -> H + 'static,
    {
        let path = path.as_ref();
        self.hold_spare(&format!("unix:{}", unix::display(path)))?;
        let sock = unix::bind(path, options, self.env.config.listen_backlog)?;
        self.listen_unix_adopted(sock, peer_factory(factory))
    }

    /// Listens on a Unix listener made here (a group's worker).
    pub(crate) fn listen_unix_adopted(
        &mut self,
        sock: unix::UnixListener,
        factory: Factory<H>,
    ) -> io::Result<()> {
        let at = sock.name();
        self.hold_spare(&format!("unix:{at}"))?;
        self.add_listener(
            transport::Listener::Unix(sock),
            ListenAddr::Unix(at),
            factory,
        )
    }

    /// Binds `addr` and serves TLS there with `config` (feature `tls`): each
    /// accepted peer gets a handler from `factory` at once, and
    /// [`Handler::on_open`] once its handshake is done; the handler sees
    /// plaintext in `on_data` and writes plaintext with
    /// [`Conn::write`](crate::Conn::write). A handshake that fails or does
    /// not finish within [`Config::handshake_timeout`](crate::Config::handshake_timeout)
    /// ends with `on_close` alone ([`CloseReason::TlsHandshakeFailed`](crate::CloseReason::TlsHandshakeFailed),
    /// [`TlsAlert`](crate::CloseReason::TlsAlert),
    /// [`TlsHandshakeTimeout`](crate::CloseReason::TlsHandshakeTimeout)).
    /// [`Conn::close`](crate::Conn::close) sends close_notify, then the FIN;
    /// [`Conn::abort`](crate::Conn::abort) sends no close_notify. Returns the
    /// bound address.
    ///
    /// # Errors
    ///
    /// As [`listen`](Reactor::listen).
    #[cfg(feature = "tls")]
    pub fn listen_tls<F>(
        &mut self,
        addr: SocketAddr,
        config: std::sync::Arc<rustls::ServerConfig>,
        factory: F,
    ) -> io::Result<SocketAddr>
    where
        F: FnMut(SocketAddr) -> H + 'static,
    {
        let bound = self.listen(addr, factory)?;
        if let Some(l) = self.listeners.last_mut() {
            l.tls = Some(config);
        }
        Ok(bound)
    }

    /// [`listen_tls`](Reactor::listen_tls) on a Unix domain socket at `path`
    /// (bound as [`listen_unix`](Reactor::listen_unix) binds it).
    ///
    /// # Errors
    ///
    /// As [`listen_unix`](Reactor::listen_unix).
    #[cfg(feature = "tls")]
    pub fn listen_unix_tls<F>(
        &mut self,
        path: impl AsRef<Path>,
        config: std::sync::Arc<rustls::ServerConfig>,
        factory: F,
    ) -> io::Result<()>
    where
        F: FnMut(Peer) -> H + 'static,
    {
        self.listen_unix(path, factory)?;
        if let Some(l) = self.listeners.last_mut() {
            l.tls = Some(config);
        }
        Ok(())
    }

    /// Adopts a Unix-domain listener that is already bound and listening
    /// (socket activation, or a restart's hand-over): set non-blocking here.
    /// Its socket file is not this reactor's and is never removed.
    ///
    /// # Errors
    ///
    /// As [`listen_std`](Reactor::listen_std).
    pub fn listen_unix_std<F>(
        &mut self,
        listener: std::os::unix::net::UnixListener,
        factory: F,
    ) -> io::Result<()>
    where
        F: FnMut(Peer) -> H + 'static,
    {
        let sock = unix::UnixListener::adopt(listener)?;
        self.listen_unix_adopted(sock, peer_factory(factory))
    }

    /// Hands out this reactor's TCP listening sockets without closing them,
    /// and stops accepting on them (Unix-domain ones stay: see
    /// [`take_unix_listeners`](Reactor::take_unix_listeners)): for a restart, a new process receives them
    /// (for example over a Unix socket with `SCM_RIGHTS`, or inherited across
    /// `exec`) and adopts them with [`listen_std`](Reactor::listen_std),
    /// while this one drains ([`Handle::drain`](crate::Handle::drain)). Clients that connect in
    /// between wait in the kernel's backlog for the new owner; none is
    /// refused or reset. They are returned blocking, as std makes them.
    pub fn take_listeners(&mut self) -> Vec<std::net::TcpListener> {
        self.take_where(|l| l.is_tcp())
            .into_iter()
            .filter_map(|l| match l {
                transport::Listener::Tcp(l) => Some(std::net::TcpListener::from(l)),
                transport::Listener::Unix(_) => None,
            })
            .collect()
    }

    /// Hands out this reactor's Unix-domain listening sockets, as
    /// [`take_listeners`](Reactor::take_listeners) does TCP ones: their
    /// socket files stay where they are, for the new owner
    /// ([`listen_unix_std`](Reactor::listen_unix_std)).
    pub fn take_unix_listeners(&mut self) -> Vec<std::os::unix::net::UnixListener> {
        self.take_where(|l| !l.is_tcp())
            .into_iter()
            .filter_map(|l| match l {
                transport::Listener::Unix(l) => Some(l.into_std()),
                transport::Listener::Tcp(_) => None,
            })
            .collect()
    }

    /// Takes the listeners `pick` chooses out of the loop, blocking again.
    /// Those left are registered again under their new positions.
    fn take_where(
        &mut self,
        pick: impl Fn(&transport::Listener) -> bool,
    ) -> Vec<transport::Listener> {
        let mut out = Vec::new();
        let mut kept = Vec::new();
        for mut l in self.listeners.drain(..) {
            if let Err(e) = self.poll.registry().deregister(&mut l.sock) {
                log::warn!("deregistering the listener on {}: {e}", l.addr);
            }
            if pick(&l.sock) {
                if let Err(e) = l.sock.sock_ref().set_nonblocking(false) {
                    log::warn!("making the listener on {} blocking: {e}", l.addr);
                }
                out.push(l.sock);
            } else {
                kept.push(l);
            }
        }
        for l in kept {
            #[cfg(feature = "tls")]
            let tls = l.tls;
            let (sock, addr, factory) = (l.sock, l.addr, l.factory);
            if let Err(e) = self.add_listener(sock, addr.clone(), factory) {
                log::error!("listening on {addr} again: {e}");
                continue;
            }
            #[cfg(feature = "tls")]
            if let Some(l) = self.listeners.last_mut() {
                l.tls = tls;
            }
        }
        out
    }

    /// Takes the spare descriptor for the EMFILE turn-away, if not held yet.
    fn hold_spare(&mut self, at: &str) -> io::Result<()> {
        if self.spare_fd.is_none() {
            // Without it, peers that arrive while descriptors are exhausted
            // would wait unanswered in the backlog (see `out_of_descriptors`).
            self.spare_fd = Some(open_spare().map_err(|e| {
                named(
                    format!("listen on {at}: no descriptor to hold in reserve for turning peers away when descriptors run out"),
                    e,
                )
            })?);
        }
        Ok(())
    }

    fn add_tcp_listener(
        &mut self,
        sock: mio::net::TcpListener,
        factory: Factory<H>,
    ) -> io::Result<SocketAddr> {
        let bound = sock.local_addr()?;
        self.add_listener(
            transport::Listener::Tcp(sock),
            ListenAddr::Tcp(bound),
            factory,
        )?;
        Ok(bound)
    }

    fn add_listener(
        &mut self,
        mut sock: transport::Listener,
        addr: ListenAddr,
        factory: Factory<H>,
    ) -> io::Result<()> {
        let named = |e: io::Error| named(format!("listen on {addr}"), e);
        let token = Token(LISTENER_BIT | self.listeners.len());
        self.poll
            .registry()
            .register(&mut sock, token, Interest::READABLE)
            .map_err(named)?;
        log::debug!("listening on {addr}");
        self.listeners.push(Listener {
            sock,
            addr,
            factory,
            #[cfg(feature = "tls")]
            tls: None,
        });
        Ok(())
    }

    #[inline]
    pub(super) fn accept_all(&mut self) {
        self.accept_retry_at = None;
        for li in 0..self.listeners.len() {
            self.accept_from(li);
        }
    }

    fn accept_from(&mut self, li: usize) {
        loop {
            let (stream, peer) = match self.listeners[li].sock.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sys::is_resource_exhausted(&e) => {
                    if self.out_of_descriptors(li, &e) {
                        continue;
                    }
                    return;
                }
                Err(e) if is_peer_gone_before_accept(&e) => continue,
                Err(e) => {
                    log::error!("accept on {}: {e}", self.listeners[li].addr);
                    // Try again later rather than spin on a broken listener.
                    self.accept_later();
                    return;
                }
            };
            if self.table.cores.len() >= self.env.config.max_connections {
                log::debug!("turning {peer} away: max_connections reached");
                self.counters.rejected_limit += 1;
                drop(stream);
                continue;
            }
            self.open(Some(li), stream, peer);
        }
    }

    /// A connection handed off by a group's acceptor: opened with the
    /// adopt factory, or turned away (full, draining, shut down).
    pub(super) fn adopt(&mut self, stream: std::net::TcpStream, peer: SocketAddr) {
        self.adopted_unpublished += 1;
        if self.adopt_factory.is_none() || self.shut_down {
            self.counters.rejected_other += 1;
            return;
        }
        if self.table.cores.len() >= self.env.config.max_connections {
            log::debug!("turning {peer} away: max_connections reached");
            self.counters.rejected_limit += 1;
            return;
        }
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("turning {peer} away: {e}");
            self.counters.rejected_other += 1;
            return;
        }
        self.open(None, Stream::from_fd(stream.into()), Peer::Tcp(peer));
    }

    /// EMFILE/ENFILE: give back the spare descriptor, accept one pending
    /// peer with it and close it (so it is answered, not left hanging in the
    /// backlog), then take the spare again. Returns true if the caller should
    /// try a normal accept again: each pending peer gets a real accept
    /// attempt first, so none is turned away once descriptors are back.
    ///
    /// The spare is taken when the first listener is made ([`Reactor::listen`]
    /// fails if it cannot be), so a listening reactor always starts with one.
    /// It can be lost only if another thread takes the descriptor in the
    /// instant between giving it back and taking it again; then it is taken
    /// again as soon as any connection closes, and accepting retries every
    /// 100 ms instead of spinning.
    fn out_of_descriptors(&mut self, li: usize, e: &io::Error) -> bool {
        let addr = self.listeners[li].addr.clone();
        let Some(spare) = self.spare_fd.take() else {
            self.spare_fd = open_spare().ok();
            log::warn!("accept on {addr}: {e}; retrying in {ACCEPT_RETRY:?}");
            self.accept_later();
            return false;
        };
        drop(spare);
        let turned_away = loop {
            match self.listeners[li].sock.accept() {
                Ok((s, peer)) => {
                    drop(s);
                    break Some(peer);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break None,
            }
        };
        self.spare_fd = open_spare().ok();
        if let Some(peer) = turned_away {
            self.counters.rejected_descriptors += 1;
            log::warn!("accept on {addr}: {e}; turned {peer} away");
        }
        if self.spare_fd.is_none() {
            self.accept_later();
            return false;
        }
        turned_away.is_some()
    }

    /// Accepts again after [`ACCEPT_RETRY`] instead of spinning.
    pub(super) fn accept_later(&mut self) {
        self.accept_retry_at = Some(self.env.clock.deadline(ticks(ACCEPT_RETRY)));
    }

    /// Opens an accepted connection with listener `li`'s factory, or the
    /// adopt factory for `None`: options, registration, handler, `on_open`.
    #[inline(always)]
    fn open(&mut self, li: Option<usize>, stream: Stream, peer: Peer) {
        if self.socket_options && !peer.is_unix() {
            if let Err(e) = sys::apply_socket_options(&stream.sock_ref(), &self.env.config) {
                log::warn!("turning {peer} away: setting socket options failed: {e}");
                self.counters.rejected_other += 1;
                return;
            }
        }
        #[cfg(feature = "tls")]
        let session = match self.tls_session_for(li) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("turning {peer} away: no TLS session: {e}");
                self.counters.rejected_other += 1;
                return;
            }
        };
        #[cfg(feature = "tls")]
        let handshaking = session.is_some();
        #[cfg(not(feature = "tls"))]
        let handshaking = false;
        let st = if handshaking {
            #[cfg(feature = "tls")]
            let st = self.handshaking_state();
            #[cfg(not(feature = "tls"))]
            let st = State::new(0);
            st
        } else {
            let idle_ms = self.env.idle_ms;
            let mut st = State::new(idle_ms);
            if idle_ms != 0 {
                st.heard_from_peer(self.env.clock.now());
            }
            st
        };
        // In the table first: the slot gives the id (and the token) at once.
        let (id, core) = self.table.cores.insert(Core {
            stream,
            peer,
            st,
            out: None,
        });
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut core.stream, id.token(), Interest::READABLE)
        {
            log::warn!("turning {peer} away: register failed: {e}");
            self.counters.rejected_other += 1;
            self.table.cores.remove(id);
            return;
        }
        let factory = match li {
            Some(li) => &mut self.listeners[li].factory,
            None => self.adopt_factory.as_mut().expect("checked by adopt"),
        };
        let Some(mut handler) = guarded("the factory", id, || factory(&peer)) else {
            self.counters.rejected_factory += 1;
            // Closing the socket also takes it out of epoll.
            self.table.cores.remove(id);
            return;
        };
        #[cfg(feature = "tls")]
        if let Some(session) = session {
            self.table.tls_put(id, session);
        }
        self.counters.accepted += 1;
        if self.table.recs.is_some() {
            let now = self.env.clock.now();
            self.table.start_rec(id, now, !handshaking);
        }
        log::trace!("conn {id}: open from {peer}");
        if !handshaking {
            // on_open before the handler joins the others: no lookup for it,
            // and the connection is known to be open.
            let mut conn = Conn {
                id,
                table: &mut self.table,
                env: &self.env,
            };
            if guarded("on_open", id, || handler.on_open(&mut conn)).is_none() {
                self.table.cores.live_mut(id).st.fail(CloseReason::Panicked);
                self.table.note(id, LifecycleEvent::Panicked);
            }
        }
        self.put_handler(id, handler);
        self.after_live(id);
        if self.drain.is_some() {
            // Taken in while a drain settles its listeners, or handed off by
            // a group's acceptor from its backlog: served, and told of it.
            self.joined_drain(id);
        }
    }
}

fn is_peer_gone_before_accept(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::PermissionDenied
    )
}
