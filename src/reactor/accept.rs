//! Accepting: the listeners (made, adopted, handed out), accepting from
//! them, and what the reactor does when descriptors run out (EMFILE).

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use mio::{Interest, Token};

use super::{deliver, guarded, open_spare, Factory, Listener, Reactor, ACCEPT_RETRY};
use crate::conn::{ticks, ConnId, Core, State, LISTENER_BIT};
use crate::error::named;
use crate::handler::Handler;
use crate::sys;

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
        self.add_listener(sock, Box::new(factory))
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
        let at = listener
            .local_addr()
            .map_or_else(|_| "an adopted listener".to_string(), |a| a.to_string());
        let named = |e: io::Error| named(format!("listen on {at}"), e);
        listener.set_nonblocking(true).map_err(named)?;
        self.hold_spare(&at)?;
        self.add_listener(mio::net::TcpListener::from_std(listener), Box::new(factory))
    }

    /// Hands out this reactor's listening sockets without closing them, and
    /// stops accepting on them: for a restart, a new process receives them
    /// (for example over a Unix socket with `SCM_RIGHTS`, or inherited across
    /// `exec`) and adopts them with [`listen_std`](Reactor::listen_std),
    /// while this one drains ([`Handle::drain`](crate::Handle::drain)). Clients that connect in
    /// between wait in the kernel's backlog for the new owner; none is
    /// refused or reset. They are returned blocking, as std makes them.
    pub fn take_listeners(&mut self) -> Vec<std::net::TcpListener> {
        let mut out = Vec::with_capacity(self.listeners.len());
        for mut l in self.listeners.drain(..) {
            if let Err(e) = self.poll.registry().deregister(&mut l.sock) {
                log::warn!("deregistering the listener on {}: {e}", l.addr);
            }
            let std_listener = std::net::TcpListener::from(l.sock);
            if let Err(e) = std_listener.set_nonblocking(false) {
                log::warn!("making the listener on {} blocking: {e}", l.addr);
            }
            out.push(std_listener);
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

    fn add_listener(
        &mut self,
        mut sock: TcpListener,
        factory: Factory<H>,
    ) -> io::Result<SocketAddr> {
        let bound = sock.local_addr()?;
        let named = |e: io::Error| named(format!("listen on {bound}"), e);
        let token = Token(LISTENER_BIT | self.listeners.len());
        self.poll
            .registry()
            .register(&mut sock, token, Interest::READABLE)
            .map_err(named)?;
        log::debug!("listening on {bound}");
        self.listeners.push(Listener {
            sock,
            addr: bound,
            factory,
        });
        Ok(bound)
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
        self.open(None, TcpStream::from_std(stream), peer);
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
        let addr = self.listeners[li].addr;
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
    /// adopt factory for `None`.
    /// Opens an accepted connection: options, registration, handler,
    /// `on_open`. Its id, unless it was turned away.
    fn open(
        &mut self,
        li: Option<usize>,
        mut stream: TcpStream,
        peer: SocketAddr,
    ) -> Option<ConnId> {
        if self.socket_options {
            if let Err(e) = sys::apply_socket_options(&stream, &self.env.config) {
                log::warn!("turning {peer} away: setting socket options failed: {e}");
                self.counters.rejected_other += 1;
                return None;
            }
        }
        let id = self.table.cores.next_id();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, id.token(), Interest::READABLE)
        {
            log::warn!("turning {peer} away: register failed: {e}");
            self.counters.rejected_other += 1;
            return None;
        }
        let factory = match li {
            Some(li) => &mut self.listeners[li].factory,
            None => self.adopt_factory.as_mut().expect("checked by adopt"),
        };
        let Some(handler) = guarded("the factory", id, || factory(peer)) else {
            self.counters.rejected_factory += 1;
            return None;
        };
        let idle_ms = self.env.idle_ms;
        let mut st = State::new(idle_ms);
        if idle_ms != 0 {
            st.heard_from_peer(self.env.clock.now());
        }
        let core = Core {
            stream,
            peer,
            st,
            out: None,
        };
        let (got, _) = self.table.cores.insert(core);
        debug_assert_eq!(got, id);
        self.counters.accepted += 1;
        if self.table.recs.is_some() {
            let now = self.env.clock.now();
            self.table.start_rec(id, now, true);
        }
        self.put_handler(id, handler);
        log::trace!("conn {id}: open from {peer}");
        deliver(
            &mut self.handlers,
            &mut self.table,
            &self.env,
            id,
            "on_open",
            |h, c| h.on_open(c),
        );
        self.after(id);
        if self.drain.is_some() {
            // Taken in while a drain settles its listeners, or handed off by
            // a group's acceptor from its backlog: served, and told of it.
            self.joined_drain(id);
        }
        Some(id)
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
