//! A forwarding proxy as a hangup handler, shared by `examples/proxy.rs`
//! and `tests/proxy.rs`: TCP or a Unix domain socket on either side.
//!
//! Each accepted client opens its upstream from `on_open` (a [`Connector`]),
//! and the two connections of a pair reach each other by id
//! ([`Conn::other`]) within the callback: bytes go from one socket's read to
//! the other's `write` with no copy but into its queue when the kernel is
//! full. Closes are mirrored the way a careful proxy does it:
//!
//! - a FIN becomes a FIN (`shutdown_write`), and the other direction keeps
//!   flowing; the pair closes once both directions are done;
//! - a reset (or a peer that vanished) becomes a reset (`abort`);
//! - an upstream that cannot be reached closes the client, and the log names
//!   why (refused, unreachable, timed out);
//! - any other end closes the partner gracefully.
//!
//! Flow control in both directions: when a partner's queue passes [`MARK`],
//! this side stops reading until the partner's `on_drained`, so a fast
//! sender behind a slow reader holds about `MARK` plus one read in the proxy.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;

use hangup::{CloseReason, Conn, ConnId, Connector, Handle, Handler, Reactor};

/// Where the proxy listens, or its upstream: a TCP address, or a Unix
/// domain socket's path (`unix:PATH`, or any argument with a `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(SocketAddr),
    Unix(std::path::PathBuf),
}

impl std::str::FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Endpoint, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            return Ok(Endpoint::Unix(p.into()));
        }
        match s.parse() {
            Ok(a) => Ok(Endpoint::Tcp(a)),
            Err(_) if s.contains('/') => Ok(Endpoint::Unix(s.into())),
            Err(e) => Err(format!("{s}: {e} (a TCP address, or unix:PATH)")),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp(a) => a.fmt(f),
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

impl From<SocketAddr> for Endpoint {
    fn from(a: SocketAddr) -> Endpoint {
        Endpoint::Tcp(a)
    }
}

/// Pause reading when the partner has this much queued.
pub const MARK: usize = 256 * 1024;

/// What the proxy's handlers share (one reactor, one thread).
pub struct Shared {
    pub upstream: Endpoint,
    pub connector: Connector<Proxy>,
    /// Print one line per close (the example), or stay quiet (tests).
    pub verbose: bool,
    /// The most output ever queued for one connection: the memory the
    /// proxy holds beyond the kernel's buffers.
    pub max_queued: Cell<usize>,
    /// Pairs whose upstream could not be reached.
    pub connect_failures: Cell<u64>,
    /// Every close: which side, and its reason's name.
    pub closes: RefCell<Vec<(Role, &'static str)>>,
}

impl Shared {
    /// What the handlers of a proxy to `upstream` share.
    pub fn new(reactor: &Reactor<Proxy>, upstream: Endpoint, verbose: bool) -> Rc<Shared> {
        Rc::new(Shared {
            upstream,
            connector: reactor.connector(),
            verbose,
            max_queued: Cell::new(0),
            connect_failures: Cell::new(0),
            closes: RefCell::new(Vec::new()),
        })
    }
}

/// Which end of a pair a handler serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Upstream,
}

pub struct Proxy {
    role: Role,
    shared: Rc<Shared>,
    partner: Option<ConnId>,
    handle: Option<Handle>,
    peer: Option<hangup::Peer>,
}

impl Proxy {
    /// The handler of an accepted client (on any listener: TCP, Unix, TLS).
    pub fn client(shared: Rc<Shared>) -> Proxy {
        Proxy::new(Role::Client, shared, None)
    }

    fn new(role: Role, shared: Rc<Shared>, partner: Option<ConnId>) -> Proxy {
        Proxy {
            role,
            shared,
            partner,
            handle: None,
            peer: None,
        }
    }
}

/// Makes a reactor's TCP listener a proxy to `upstream`; returns what the
/// handlers share.
pub fn listen(
    reactor: &mut Reactor<Proxy>,
    at: SocketAddr,
    upstream: impl Into<Endpoint>,
    verbose: bool,
) -> std::io::Result<(SocketAddr, Rc<Shared>)> {
    let (at, shared) = listen_on(reactor, Endpoint::Tcp(at), upstream.into(), verbose)?;
    match at {
        Endpoint::Tcp(a) => Ok((a, shared)),
        Endpoint::Unix(_) => unreachable!("listened on TCP"),
    }
}

/// Makes a reactor listen on `at` (TCP or a Unix path) as a proxy to
/// `upstream` (either); returns where it listens and what the handlers share.
pub fn listen_on(
    reactor: &mut Reactor<Proxy>,
    at: Endpoint,
    upstream: Endpoint,
    verbose: bool,
) -> std::io::Result<(Endpoint, Rc<Shared>)> {
    let shared = Shared::new(reactor, upstream, verbose);
    let s = shared.clone();
    let make = move || Proxy::new(Role::Client, s.clone(), None);
    let at = match at {
        Endpoint::Tcp(a) => Endpoint::Tcp(reactor.listen(a, move |_| make())?),
        Endpoint::Unix(p) => {
            let opts = hangup::UnixListenOptions::new().replace_stale(true);
            reactor.listen_unix_with(&p, opts, move |_| make())?;
            Endpoint::Unix(p)
        }
    };
    Ok((at, shared))
}

impl Handler for Proxy {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.handle = Some(conn.handle());
        self.peer = Some(conn.peer());
        if self.role == Role::Upstream {
            return;
        }
        let mut upstream = Proxy::new(Role::Upstream, self.shared.clone(), Some(conn.id()));
        // Set now: a connect that fails never sees on_open, and must still
        // close its client.
        upstream.handle = Some(conn.handle());
        let started = match &self.shared.upstream {
            Endpoint::Tcp(a) => self.shared.connector.connect(conn, *a, upstream),
            Endpoint::Unix(p) => self.shared.connector.connect_unix(conn, p, upstream),
        };
        match started {
            Ok(id) => self.partner = Some(id),
            Err(e) => {
                log::warn!("no socket for the upstream: {e}");
                conn.close();
            }
        }
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let Some(mut to) = self.partner.and_then(|p| conn.other(p)) else {
            // The partner is gone; its on_close told us how to end.
            return;
        };
        to.write(data);
        let queued = to.pending_output();
        if queued > self.shared.max_queued.get() {
            self.shared.max_queued.set(queued);
        }
        if queued > MARK {
            conn.pause_reading();
        }
    }

    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        if let Some(mut from) = self.partner.and_then(|p| conn.other(p)) {
            from.resume_reading();
        }
    }

    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        // A FIN becomes a FIN; the other direction keeps flowing. Once both
        // are done the reactor closes each side (PeerClosed).
        match self.partner.and_then(|p| conn.other(p)) {
            Some(mut to) => to.shutdown_write(),
            None => conn.close(),
        }
    }

    fn on_close(&mut self, reason: CloseReason) {
        self.shared
            .closes
            .borrow_mut()
            .push((self.role, reason.name()));
        if self.shared.verbose {
            println!(
                "{:?} {} closed: {reason}",
                self.role,
                self.peer.map_or("-".into(), |p| p.to_string())
            );
        }
        let (Some(partner), Some(handle)) = (self.partner, &self.handle) else {
            if let CloseReason::ConnectFailed(e) = &reason {
                // Only the upstream can fail to connect, and it has a partner.
                log::warn!("upstream {}: {e}", self.shared.upstream);
            }
            return;
        };
        match &reason {
            CloseReason::PeerClosed => {}
            CloseReason::Reset | CloseReason::TimedOut => handle.abort(partner),
            // Reset after the handshake, before we saw it complete.
            CloseReason::ConnectFailed(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                handle.abort(partner)
            }
            CloseReason::ConnectFailed(e) => {
                self.shared
                    .connect_failures
                    .set(self.shared.connect_failures.get() + 1);
                let why = match e.kind() {
                    std::io::ErrorKind::ConnectionRefused => "refused",
                    std::io::ErrorKind::TimedOut => "timed out",
                    std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable => "unreachable",
                    _ => "failed",
                };
                log::warn!(
                    "upstream {} {why} ({e}): closing client {partner}",
                    self.shared.upstream
                );
                handle.close(partner);
            }
            _ => handle.close(partner),
        }
    }
}
