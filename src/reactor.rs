//! [`Reactor`]: the event loop, and the only caller of `Poll::poll`. What
//! it does with one connection's event is in `events.rs`, accepting in
//! `accept.rs`, calling handlers in `dispatch.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

#[cfg(doc)]
use crate::close::CloseReason;
use crate::config::Config;
use crate::conn::{Conn, ConnId, Env, Table};
use crate::connect::Queue;
use crate::counters::Counters;
#[cfg(doc)]
use crate::ctx::Ctx;
use crate::ctx::Timers;
use crate::handle::{Command, Handle};
use crate::handler::Handler;
use crate::sys;
use crate::timer::Wheel;
use crate::transport::{self, ListenAddr, Peer};

mod accept;
mod close;
mod counts;
mod dispatch;
mod drain;
mod events;
#[cfg(test)]
mod model;
mod outbound;
mod tasks;
#[cfg(test)]
mod tests;
mod timers;
#[cfg(feature = "tls")]
mod tls;

use dispatch::deliver;

pub use drain::DrainReport;
pub(crate) use drain::LISTENER_SETTLE;

const WAKER: Token = Token(usize::MAX);
/// Connection slots reserved up front (at most): virtual memory, resident
/// only as used.
const MAX_RESERVED_SLOTS: usize = 65_536;
/// How long to wait before accepting again when descriptors ran out and no
/// spare descriptor could turn peers away.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Makes a handler for an accepted peer. Takes the peer by reference: the
/// accept path passes a pointer rather than a copy of the address.
pub(crate) type Factory<H> = Box<dyn FnMut(&Peer) -> H>;

/// A TCP listener's factory, from one taking the peer's address.
pub(crate) fn tcp_factory<H, F: FnMut(SocketAddr) -> H + 'static>(mut f: F) -> Factory<H> {
    Box::new(move |p: &Peer| f(p.addr_or_unspecified()))
}

/// A Unix-domain listener's factory, from one taking a [`Peer`].
pub(crate) fn peer_factory<H, F: FnMut(Peer) -> H + 'static>(mut f: F) -> Factory<H> {
    Box::new(move |p: &Peer| f(*p))
}

struct Listener<H> {
    sock: transport::Listener,
    addr: ListenAddr,
    factory: Factory<H>,
    /// Serves TLS with this configuration (feature `tls`).
    #[cfg(feature = "tls")]
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// The event loop: owns a `mio::Poll`, its `Events`, a slab of connections,
/// one read buffer, and the timers.
///
/// Every accepted connection gets a [`Handler`] from the listener's factory
/// and exactly one [`Handler::on_close`] with the [`CloseReason`] the OS gave.
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
///     fn on_close(&mut self, reason: CloseReason) { println!("closed: {reason}") }
/// }
///
/// let mut reactor = Reactor::new()?;
/// let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
///
/// let mut client = std::net::TcpStream::connect(addr)?;
/// client.write_all(b"hello")?;
/// client.set_nonblocking(true)?; // this thread also drives the reactor
/// let mut got = [0u8; 5];
/// while client.peek(&mut got).unwrap_or(0) < 5 {
///     reactor.run_once(Some(std::time::Duration::from_millis(10)))?;
/// }
/// client.read_exact(&mut got)?;
/// assert_eq!(&got, b"hello");
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Reactor<H: Handler> {
    poll: Poll,
    events: Option<Events>,
    /// Every connection's socket-side data; `Conn`s borrow it.
    table: Table,
    /// Handlers, by slot index: apart from the table, so that a callback can
    /// hold its own handler and the whole table at once.
    handlers: Vec<Option<H>>,
    listeners: Vec<Listener<H>>,
    read_buf: Box<[u8]>,
    env: Env,
    wheel: Wheel,
    expired: Vec<usize>,
    ready: VecDeque<ConnId>,
    commands: Vec<Command>,
    /// Handlers of outbound connects waiting to be attached.
    connects: Rc<Queue<H>>,
    /// The reactor's own timers ([`Reactor::set_timer`], [`Ctx::set_timer`]).
    timers: Timers<H>,
    /// Whether accepted sockets get any option set (else no syscall at all).
    socket_options: bool,
    spare_fd: Option<std::fs::File>,
    accept_retry_at: Option<u64>,
    /// A drain under way (`Handle::drain`).
    drain: Option<drain::Drain>,
    /// Makes handlers for connections handed off by a group's acceptor.
    adopt_factory: Option<Factory<H>>,
    /// What this reactor counted ([`Reactor::counters`]); the byte counts
    /// live in the table, where `Conn` writes.
    counters: Counters,
    /// When the last poll returned (close records on only).
    polled_at: Option<std::time::Instant>,
    /// Hand-offs adopted (or refused) since the counts were last published.
    adopted_unpublished: u64,
    shut_down: bool,
}

impl<H: Handler> fmt::Debug for Reactor<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &self.table.cores.len())
            .field(
                "listeners",
                &self
                    .listeners
                    .iter()
                    .map(|l| l.addr.to_string())
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.env.config)
            .field("shut_down", &self.shut_down)
            .finish_non_exhaustive()
    }
}

/// Calls `f`, catching a panic. `None` if it panicked.
#[inline]
fn guarded<R>(what: &str, id: impl fmt::Display, f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(p) => {
            report_panic(what, &id, p);
            None
        }
    }
}

/// Logs a handler's panic: out of the way of the calls that did not panic.
#[cold]
#[inline(never)]
fn report_panic(what: &str, id: &dyn fmt::Display, p: Box<dyn std::any::Any + Send>) {
    let msg = p
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
        .unwrap_or("non-string payload");
    log::error!("{id}: panicked in {what}: {msg}");
}

impl<H: Handler> Reactor<H> {
    /// A reactor with [`Config::default`].
    ///
    /// # Errors
    ///
    /// Creating the `mio::Poll` or its waker failed (out of descriptors).
    pub fn new() -> io::Result<Self> {
        Self::with_config(Config::default())
    }

    /// A reactor with `config`.
    ///
    /// # Errors
    ///
    /// - `io::ErrorKind::InvalidInput` naming the setting and its bound, if
    ///   `config` is invalid (see [`Config::validate`]);
    /// - `io::ErrorKind::OutOfMemory` if the read buffer could not be
    ///   allocated;
    /// - creating the `mio::Poll` or its waker failed.
    pub fn with_config(config: Config) -> io::Result<Self> {
        config.validate()?;
        let read_buf = alloc_read_buffer(config.read_buffer_size)?;
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let spare_fd = open_spare().ok();
        let reserved = config.max_connections.min(MAX_RESERVED_SLOTS);
        let records = config.close_records || config.close_latency;
        let handler_type = (std::any::TypeId::of::<H>(), std::any::type_name::<H>());
        let latency = config.close_latency;
        let env = Env::new(config, Handle::new(waker, handler_type, latency));
        Ok(Reactor {
            events: Some(Events::with_capacity(env.config.events_capacity)),
            poll,
            table: {
                let mut t = Table::with_capacity(reserved);
                if records {
                    t.recs = Some(Vec::new());
                }
                t
            },
            polled_at: None,
            handlers: Vec::with_capacity(reserved),
            socket_options: sys::has_socket_options(&env.config),
            listeners: Vec::new(),
            read_buf,
            connects: Rc::new(Queue {
                reactor: env.identity.clone(),
                waiting: RefCell::new(Vec::new()),
            }),
            env,
            timers: Timers::new(),
            wheel: Wheel::new(),
            expired: Vec::new(),
            ready: VecDeque::new(),
            commands: Vec::new(),
            spare_fd,
            accept_retry_at: None,
            drain: None,
            adopt_factory: None,
            counters: Counters::default(),
            adopted_unpublished: 0,
            shut_down: false,
        })
    }

    /// A [`Handle`] to this reactor: `Clone + Send + Sync`.
    pub fn handle(&self) -> Handle {
        self.env.handle.clone()
    }

    /// Runs until [`Handle::shutdown`]; every open connection gets
    /// `on_close(CloseReason::Shutdown)` before it returns.
    ///
    /// # Errors
    ///
    /// Polling failed (other than by a signal). Connections stay open; calling
    /// `run` again continues.
    pub fn run(&mut self) -> io::Result<()> {
        while !self.shut_down {
            self.run_once(None)?;
        }
        Ok(())
    }

    /// One turn of the loop: waits at most `timeout` for events (less if a
    /// timer is due sooner) and dispatches them. After [`Handle::shutdown`],
    /// closes every connection with [`CloseReason::Shutdown`] and returns
    /// without waiting.
    ///
    /// # Errors
    ///
    /// Polling failed (other than by a signal).
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        if self.env.handle.needs_attention() {
            if self.check_shutdown() {
                self.publish();
                return Ok(());
            }
            self.check_drain();
            self.run_commands();
        }
        if self.shut_down {
            return Ok(());
        }
        // A caller may pause between turns: never compute the timeout from a
        // tick read before the pause.
        self.env.clock.new_turn();
        let mut timeout = self.poll_timeout(timeout);
        if !self.env.handle.about_to_poll() {
            timeout = Some(Duration::ZERO);
        }
        let mut events = self.events.take().expect("events present between turns");
        let polled = self.poll.poll(&mut events, timeout);
        self.env.handle.polled();
        if self.table.recs.is_some() {
            self.polled_at = Some(std::time::Instant::now());
        }
        if let Err(e) = polled {
            self.events = Some(events);
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        self.env.clock.new_turn();
        let mut accept = false;
        for event in events.iter() {
            let token = event.token();
            if token == WAKER {
                continue;
            }
            match self.table.cores.id_from_token(token) {
                Some(id) => self.conn_event(id, event),
                None => accept = true,
            }
        }
        self.events = Some(events);
        if accept
            || self
                .accept_retry_at
                .is_some_and(|t| t <= self.env.clock.tick())
        {
            self.accept_all();
        }
        if !self.ready.is_empty() {
            self.run_ready();
        }
        if self.wheel.len() != 0 {
            self.run_timers();
        }
        if self.table.timers.len() != 0 {
            self.run_handler_timers();
        }
        if self.timers.wheel.len() != 0 {
            self.run_reactor_timers();
        }
        if self.env.handle.needs_attention() {
            self.run_commands();
            if !self.check_shutdown() {
                self.check_drain();
            }
        }
        if self.drain.is_some() {
            self.drain_tick();
        }
        self.publish();
        Ok(())
    }

    /// A reactor whose clock reads `ms` (tests drive time by hand).
    #[cfg(test)]
    pub(crate) fn with_manual_clock(
        config: Config,
        ms: std::rc::Rc<std::cell::Cell<u64>>,
    ) -> io::Result<Self> {
        let mut r = Self::with_config(config)?;
        r.env.clock = crate::clock::Clock::manual(ms);
        Ok(r)
    }

    /// Makes handlers with `factory` for connections handed to this reactor
    /// (a group's hand-off acceptor).
    pub(crate) fn adopt_with(&mut self, factory: Factory<H>) {
        self.adopt_factory = Some(factory);
    }

    /// The TCP addresses listened on (Unix-domain listeners are not
    /// among them).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| match l.addr {
                ListenAddr::Tcp(a) => Some(a),
                ListenAddr::Unix(_) => None,
            })
            .collect()
    }

    /// This reactor's configuration.
    pub fn config(&self) -> &Config {
        &self.env.config
    }

    /// Whether the reactor has stopped: after [`Handle::shutdown`], or once
    /// a drain ended. The same as [`Handle::is_shutdown`], spelled the same.
    pub fn is_shutdown(&self) -> bool {
        self.shut_down
    }

    /// The former spelling of [`is_shutdown`](Reactor::is_shutdown).
    #[deprecated(since = "0.2.0", note = "spelled `is_shutdown`, as on `Handle`")]
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    fn poll_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [
            self.wheel.next_tick(),
            self.table.timers.next_tick(),
            self.timers.wheel.next_tick(),
            self.accept_retry_at,
            self.drain
                .as_ref()
                .map(|d| d.next_tick(!self.listeners.is_empty())),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(tick) = next else {
            return timeout;
        };
        // Whole ticks: the loop may wake up to a tick late, never early
        // (the wheel checks again and sleeps on if nothing is due).
        let now = self.env.clock.now();
        let wait = Duration::from_millis(tick.saturating_sub(now));
        Some(timeout.map_or(wait, |t| t.min(wait)))
    }

    fn check_shutdown(&mut self) -> bool {
        if self.shut_down {
            return true;
        }
        if !self.env.handle.is_shutdown() {
            return false;
        }
        log::debug!(
            "shutting down with {} connections open",
            self.table.cores.len()
        );
        self.shut_down = true;
        self.listeners.clear();
        self.force_drain();
        self.close_all();
        if let Some(drain) = self.drain.as_mut() {
            // Nothing is left: the drain is over too.
            drain.report.done = true;
        }
        self.stopped();
        true
    }

    fn run_commands(&mut self) {
        loop {
            self.env.handle.take_commands(&mut self.commands);
            if self.commands.is_empty() {
                return;
            }
            let mut cmds = std::mem::take(&mut self.commands);
            for cmd in cmds.drain(..) {
                let id = match &cmd {
                    Command::Adopt(..) => {
                        if let Command::Adopt(stream, peer) = cmd {
                            self.adopt(stream, peer);
                        }
                        continue;
                    }
                    Command::Task(..) => {
                        if let Command::Task(task) = cmd {
                            self.run_task(task);
                        }
                        continue;
                    }
                    Command::Write(id, _)
                    | Command::Close(id)
                    | Command::Abort(id)
                    | Command::ShutdownWrite(id) => *id,
                };
                if self.table.cores.get_foreign(id).is_none() {
                    continue;
                }
                let mut conn = Conn {
                    id,
                    table: &mut self.table,
                    env: &self.env,
                };
                match cmd {
                    Command::Write(_, data) => conn.write(&data),
                    Command::Close(_) => conn.close(),
                    Command::Abort(_) => conn.abort(),
                    Command::ShutdownWrite(_) => conn.shutdown_write(),
                    Command::Adopt(..) | Command::Task(..) => unreachable!("handled above"),
                }
                self.settle(id);
            }
            self.commands = cmds;
        }
    }
}

impl<H: Handler> Drop for Reactor<H> {
    /// Every connection still open gets `on_close(CloseReason::Shutdown)`.
    fn drop(&mut self) {
        // Handles that outlive the reactor say so and queue nothing.
        self.shut_down = true;
        self.stopped();
        if self.table.cores.len() > 0 {
            self.close_all();
        }
    }
}

/// The reactor's one read buffer, allocated fallibly: a size the allocator
/// refuses is an error, not an abort.
fn alloc_read_buffer(size: usize) -> io::Result<Box<[u8]>> {
    let mut buf = Vec::new();
    buf.try_reserve_exact(size).map_err(|e| {
        io::Error::new(
            io::ErrorKind::OutOfMemory,
            format!("read_buffer_size {size}: {e}"),
        )
    })?;
    buf.resize(size, 0);
    Ok(buf.into_boxed_slice())
}

/// A descriptor held in reserve to turn peers away when descriptors run out.
fn open_spare() -> io::Result<std::fs::File> {
    std::fs::File::open(if cfg!(windows) { "NUL" } else { "/dev/null" })
}
