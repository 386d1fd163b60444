//! Accepting: the listeners' side of the reactor, and what it does when
//! descriptors run out (EMFILE).

use std::io;
use std::net::SocketAddr;

use mio::net::TcpStream;
use mio::Interest;

use super::{deliver, guarded, open_spare, Reactor, ACCEPT_RETRY};
use crate::conn::{ticks, Core, State};
use crate::handler::Handler;
use crate::sys;

impl<H: Handler> Reactor<H> {
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
                self.rejected += 1;
                drop(stream);
                continue;
            }
            self.open(Some(li), stream, peer);
        }
    }

    /// A connection handed off by a group's acceptor: opened with the
    /// adopt factory, or turned away (full, draining, shut down).
    pub(super) fn adopt(&mut self, stream: std::net::TcpStream, peer: SocketAddr) {
        self.env.handle.adopted();
        if self.adopt_factory.is_none() || self.shut_down || self.drain.is_some() {
            self.rejected += 1;
            return;
        }
        if self.table.cores.len() >= self.env.config.max_connections {
            log::debug!("turning {peer} away: max_connections reached");
            self.rejected += 1;
            return;
        }
        if let Err(e) = stream.set_nonblocking(true) {
            log::warn!("turning {peer} away: {e}");
            self.rejected += 1;
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
            self.rejected += 1;
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
        self.accept_retry_at = Some(self.env.clock.now() + ticks(ACCEPT_RETRY));
    }

    /// Opens an accepted connection with listener `li`'s factory, or the
    /// adopt factory for `None`.
    fn open(&mut self, li: Option<usize>, mut stream: TcpStream, peer: SocketAddr) {
        if self.socket_options {
            if let Err(e) = sys::apply_socket_options(&stream, &self.env.config) {
                log::warn!("turning {peer} away: setting socket options failed: {e}");
                self.rejected += 1;
                return;
            }
        }
        let id = self.table.cores.next_id();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, id.token(), Interest::READABLE)
        {
            log::warn!("turning {peer} away: register failed: {e}");
            self.rejected += 1;
            return;
        }
        let factory = match li {
            Some(li) => &mut self.listeners[li].factory,
            None => self.adopt_factory.as_mut().expect("checked by adopt"),
        };
        let Some(handler) = guarded("the factory", id, || factory(peer)) else {
            self.rejected += 1;
            return;
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
