//! [`Reactor`]: the event loop. Accepts, reads, writes, dispatches, and the
//! only caller of `Poll::poll`.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::time::Duration;

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::close::{
    after_data, classify_read, reason_from_error, AfterData, CloseReason, ReadOutcome,
};
use crate::config::Config;
use crate::conn::{ticks, Conn, ConnId, Core, Env, Flag, Phase, Slots, State, LISTENER_BIT};
use crate::handle::{Command, Handle};
use crate::handler::Handler;
use crate::sys;
use crate::timer::Wheel;

const WAKER: Token = Token(usize::MAX);
/// Connection slots reserved up front (at most): virtual memory, resident
/// only as used.
const MAX_RESERVED_SLOTS: usize = 65_536;
/// How long to wait before accepting again when descriptors ran out and no
/// spare descriptor could turn peers away.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

struct Entry<H> {
    core: Core,
    handler: H,
}

type Factory<H> = Box<dyn FnMut(SocketAddr) -> H>;

struct Listener<H> {
    sock: TcpListener,
    addr: SocketAddr,
    factory: Factory<H>,
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
    conns: Slots<Entry<H>>,
    listeners: Vec<Listener<H>>,
    read_buf: Box<[u8]>,
    env: Env,
    wheel: Wheel,
    expired: Vec<usize>,
    ready: VecDeque<ConnId>,
    commands: Vec<Command>,
    /// Whether accepted sockets get any option set (else no syscall at all).
    socket_options: bool,
    spare_fd: Option<std::fs::File>,
    accept_retry_at: Option<u64>,
    rejected: u64,
    closed: u64,
    shut_down: bool,
}

impl<H: Handler> fmt::Debug for Reactor<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("connections", &self.conns.len())
            .field(
                "listeners",
                &self.listeners.iter().map(|l| l.addr).collect::<Vec<_>>(),
            )
            .field("config", &self.env.config)
            .field("shut_down", &self.shut_down)
            .finish_non_exhaustive()
    }
}

/// Calls `f`, catching a panic. `None` if it panicked.
fn guarded<R>(what: &str, id: ConnId, f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
                .unwrap_or("non-string payload");
            log::error!("conn {id}: handler panicked in {what}: {msg}");
            None
        }
    }
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
    /// - `io::ErrorKind::InvalidInput` naming the setting, if `config` is
    ///   invalid (see [`Config::validate`]);
    /// - creating the `mio::Poll` or its waker failed.
    pub fn with_config(config: Config) -> io::Result<Self> {
        config.validate()?;
        let read_buf = alloc_read_buffer(config.read_buffer_size)?;
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), WAKER)?;
        let spare_fd = open_spare().ok();
        Ok(Reactor {
            events: Some(Events::with_capacity(config.events_capacity)),
            poll,
            conns: Slots::with_capacity(config.max_connections.min(MAX_RESERVED_SLOTS)),
            socket_options: sys::has_socket_options(&config),
            listeners: Vec::new(),
            read_buf,
            env: Env::new(config, Handle::new(waker)),
            wheel: Wheel::new(),
            expired: Vec::new(),
            ready: VecDeque::new(),
            commands: Vec::new(),
            spare_fd,
            accept_retry_at: None,
            rejected: 0,
            closed: 0,
            shut_down: false,
        })
    }

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
        let named = |e: io::Error| io::Error::new(e.kind(), format!("listen on {addr}: {e}"));
        if self.spare_fd.is_none() {
            // Without it, peers that arrive while descriptors are exhausted
            // would wait unanswered in the backlog (see `out_of_descriptors`).
            self.spare_fd = Some(open_spare().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("listen on {addr}: no descriptor to hold in reserve for turning peers away when descriptors run out: {e}"),
                )
            })?);
        }
        let mut sock = sys::bind_listener(addr, self.env.config.listen_backlog).map_err(named)?;
        let bound = sock.local_addr().map_err(named)?;
        let token = Token(LISTENER_BIT | self.listeners.len());
        self.poll
            .registry()
            .register(&mut sock, token, Interest::READABLE)
            .map_err(named)?;
        log::debug!("listening on {bound}");
        self.listeners.push(Listener {
            sock,
            addr: bound,
            factory: Box::new(factory),
        });
        Ok(bound)
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
                return Ok(());
            }
            self.run_commands();
        }
        // A caller may pause between turns: never compute the timeout from a
        // tick read before the pause.
        self.env.clock.invalidate();
        let mut timeout = self.poll_timeout(timeout);
        if !self.env.handle.about_to_poll() {
            timeout = Some(Duration::ZERO);
        }
        let mut events = self.events.take().expect("events present between turns");
        let polled = self.poll.poll(&mut events, timeout);
        self.env.handle.polled();
        if let Err(e) = polled {
            self.events = Some(events);
            if e.kind() == io::ErrorKind::Interrupted {
                return Ok(());
            }
            return Err(e);
        }
        self.env.clock.invalidate();
        let mut accept = false;
        for event in events.iter() {
            let token = event.token();
            if token == WAKER {
                continue;
            }
            match ConnId::from_token(token) {
                Some(id) => self.conn_event(id, event),
                None => accept = true,
            }
        }
        self.events = Some(events);
        if accept
            || self
                .accept_retry_at
                .is_some_and(|t| t <= self.env.clock.now())
        {
            self.accept_all();
        }
        if !self.ready.is_empty() {
            self.run_ready();
        }
        if self.wheel.len() != 0 {
            self.run_timers();
        }
        if self.env.handle.needs_attention() {
            self.run_commands();
            self.check_shutdown();
        }
        Ok(())
    }

    /// Connections open now.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Peers turned away at accept (past `max_connections`, out of
    /// descriptors, or a factory that panicked), since the reactor was made.
    pub fn rejected_count(&self) -> u64 {
        self.rejected
    }

    /// Connections closed (that saw `on_close`) since the reactor was made.
    pub fn closed_count(&self) -> u64 {
        self.closed
    }

    /// The addresses listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    /// This reactor's configuration.
    pub fn config(&self) -> &Config {
        &self.env.config
    }

    /// Whether the reactor has shut down (after [`Handle::shutdown`]).
    pub fn is_shut_down(&self) -> bool {
        self.shut_down
    }

    fn poll_timeout(&self, timeout: Option<Duration>) -> Option<Duration> {
        if !self.ready.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [self.wheel.next_tick(), self.accept_retry_at]
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
        log::debug!("shutting down with {} connections open", self.conns.len());
        self.shut_down = true;
        self.listeners.clear();
        self.close_all();
        true
    }

    /// Ends every open connection with `Shutdown` (unless it already had a cause).
    fn close_all(&mut self) {
        for id in self.conns.ids() {
            if let Some(e) = self.conns.get_mut(id) {
                e.core.st.fail(CloseReason::Shutdown);
            }
            self.finish(id);
        }
    }

    // ---- accepting ----

    fn accept_all(&mut self) {
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
            if self.conns.len() >= self.env.config.max_connections {
                log::debug!("turning {peer} away: max_connections reached");
                self.rejected += 1;
                drop(stream);
                continue;
            }
            self.open(li, stream, peer);
        }
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
    fn accept_later(&mut self) {
        self.accept_retry_at = Some(self.env.clock.now() + ticks(ACCEPT_RETRY));
    }

    fn open(&mut self, li: usize, mut stream: TcpStream, peer: SocketAddr) {
        if self.socket_options {
            if let Err(e) = sys::apply_socket_options(&stream, &self.env.config) {
                log::warn!("turning {peer} away: setting socket options failed: {e}");
                self.rejected += 1;
                return;
            }
        }
        let id = self.conns.next_id();
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut stream, id.token(), Interest::READABLE)
        {
            log::warn!("turning {peer} away: register failed: {e}");
            self.rejected += 1;
            return;
        }
        let factory = &mut self.listeners[li].factory;
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
        let (got, entry) = self.conns.insert(Entry { core, handler });
        debug_assert_eq!(got, id);
        log::trace!("conn {id}: open from {peer}");
        deliver(entry, &self.env, id, "on_open", |h, c| h.on_open(c));
        if !entry.core.st.is_quiet() {
            self.settle(id);
        }
    }

    // ---- connection events ----

    fn conn_event(&mut self, id: ConnId, event: &Event) {
        let Some(entry) = self.conns.get_mut(id) else {
            log::trace!("stale event for {id}");
            return;
        };
        let hangup = event.is_read_closed() || event.is_error();
        if hangup {
            entry.core.st.set(Flag::HUP_HINT, true);
        }
        if event.is_writable() && entry.core.out.is_some() {
            write_ready(entry, id, &self.env);
        }
        if entry.core.st.may_read() {
            if event.is_readable() || hangup {
                read_ready(entry, id, &mut self.read_buf, &self.env);
            }
        } else if entry.core.st.phase() != Phase::Done
            && (event.is_error() || event.is_write_closed())
        {
            // Not reading (paused, or after the peer's FIN): the error flag is
            // only a hint, SO_ERROR says what happened.
            match entry.core.stream.take_error() {
                Ok(Some(e)) | Err(e) => entry.core.st.fail(reason_from_error(e)),
                Ok(None) => {}
            }
        }
        if entry.core.st.phase() == Phase::Done {
            self.finish(id);
        } else if !entry.core.st.is_quiet() {
            self.settle(id);
        }
    }

    /// Connections that stopped reading early (budget, or resumed) get their
    /// turn. Only those queued before this call: new ones wait a turn.
    fn run_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(entry) = self.conns.get_mut(id) else {
                continue;
            };
            entry.core.st.set(Flag::QUEUED, false);
            if entry.core.st.may_read() {
                read_ready(entry, id, &mut self.read_buf, &self.env);
            }
            self.settle(id);
        }
    }

    fn run_timers(&mut self) {
        let now = self.env.clock.now();
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.advance(now, &mut expired);
        for key in expired.drain(..) {
            let Some(id) = self.conns.id_at(key) else {
                continue;
            };
            let entry = self.conns.get_mut(id).expect("live id");
            if entry.core.st.expire(now) {
                log::debug!("conn {id}: timer fired");
            }
            self.settle(id);
        }
        self.expired = expired;
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
                    Command::Write(id, _) | Command::Close(id) | Command::Abort(id) => *id,
                };
                self.callback_with(id, |c| match cmd {
                    Command::Write(_, data) => c.write(&data),
                    Command::Close(_) => c.close(),
                    Command::Abort(_) => c.abort(),
                });
                self.settle(id);
            }
            self.commands = cmds;
        }
    }

    // ---- callbacks and bookkeeping ----

    /// Like `deliver`, for the reactor's own use of a `Conn` (commands).
    fn callback_with(&mut self, id: ConnId, f: impl FnOnce(&mut Conn<'_>)) {
        if let Some(entry) = self.conns.get_mut(id) {
            let mut conn = Conn {
                id,
                core: &mut entry.core,
                env: &self.env,
            };
            f(&mut conn);
        }
    }

    /// After anything touched a connection: finish it if done, otherwise
    /// bring its registration, ready-list entry and timer up to date.
    fn settle(&mut self, id: ConnId) {
        let Some(entry) = self.conns.get_mut(id) else {
            return;
        };
        let st = &mut entry.core.st;
        if st.phase() == Phase::Done {
            self.finish(id);
            return;
        }
        if st.is_quiet() {
            return;
        }
        if st.has(Flag::WANT_WRITABLE) {
            st.set(Flag::WANT_WRITABLE, false);
            if !st.has(Flag::WRITABLE_INTEREST) {
                let interest = Interest::READABLE | Interest::WRITABLE;
                let token = id.token();
                if let Err(e) =
                    self.poll
                        .registry()
                        .reregister(&mut entry.core.stream, token, interest)
                {
                    entry.core.st.fail(CloseReason::Error(e));
                    self.finish(id);
                    return;
                }
                entry.core.st.set(Flag::WRITABLE_INTEREST, true);
            }
        }
        let st = &mut entry.core.st;
        if st.has(Flag::MORE_TO_READ) && !st.has(Flag::QUEUED) && st.may_read() {
            st.set(Flag::MORE_TO_READ, false);
            st.set(Flag::QUEUED, true);
            self.ready.push_back(id);
        }
        // Timers: schedule only when the earliest moved earlier (lazy re-arm).
        let next = st.next_timer();
        if next != 0 {
            match self.wheel.scheduled(id.index()) {
                Some(at) if at <= next => {}
                _ => self.wheel.schedule(id.index(), next),
            }
        }
    }

    /// Closes the socket and calls `on_close`, exactly once.
    fn finish(&mut self, id: ConnId) {
        let Some(mut entry) = self.conns.remove(id) else {
            return;
        };
        if self.wheel.len() != 0 {
            self.wheel.cancel(id.index());
        }
        let core = &mut entry.core;
        // A reset when asked for, and whenever output we queued was never
        // sent: the peer must not take partial data for all of it.
        if core.st.has(Flag::ABORTIVE) || core.pending() > 0 {
            if let Err(e) = sys::set_abortive(&core.stream) {
                log::debug!("conn {id}: SO_LINGER 0 failed: {e}");
            }
        }
        let reason = core.st.take_reason();
        log::debug!("conn {id}: closed ({reason}) peer {}", core.peer);
        // Closing the descriptor removes it from epoll: no deregister call.
        let Entry { core, mut handler } = entry;
        drop(core);
        if self.spare_fd.is_none() && !self.listeners.is_empty() {
            // The spare was lost to a race for the descriptor it gave back:
            // the one just freed replaces it.
            self.spare_fd = open_spare().ok();
        }
        self.closed += 1;
        guarded("on_close", id, || handler.on_close(reason));
    }
}

impl<H: Handler> Drop for Reactor<H> {
    /// Every connection still open gets `on_close(CloseReason::Shutdown)`.
    fn drop(&mut self) {
        if self.conns.len() > 0 {
            self.close_all();
        }
    }
}

/// Calls a handler callback with a `Conn` view, if the connection is open.
/// A panic closes the connection with `Panicked`.
#[inline]
fn deliver<H: Handler>(
    entry: &mut Entry<H>,
    env: &Env,
    id: ConnId,
    what: &str,
    f: impl FnOnce(&mut H, &mut Conn<'_>),
) {
    if !entry.core.st.is_open() {
        return;
    }
    let Entry { core, handler } = entry;
    let mut conn = Conn { id, core, env };
    if guarded(what, id, || f(handler, &mut conn)).is_none() {
        entry.core.st.fail(CloseReason::Panicked);
    }
}

/// Writes queued output after a writable event.
fn write_ready<H: Handler>(entry: &mut Entry<H>, id: ConnId, env: &Env) {
    if !entry.core.flush() {
        return;
    }
    match entry.core.st.phase() {
        Phase::Open => deliver(entry, env, id, "on_drained", |h, c| h.on_drained(c)),
        Phase::Flushing => {
            let action = entry.core.st.flushed();
            entry.core.act(action);
        }
        Phase::Draining | Phase::Done => {}
    }
}

/// Reads until the socket is drained, the per-turn budget is spent, or the
/// connection ends, delivering each chunk to `on_data`.
fn read_ready<H: Handler>(entry: &mut Entry<H>, id: ConnId, buf: &mut [u8], env: &Env) {
    let budget = env.config.read_budget;
    let mut total = 0usize;
    loop {
        if !entry.core.st.may_read() {
            if entry.core.st.has(Flag::PAUSED) {
                // Data may be left in the kernel: read it on resume.
                entry.core.st.set(Flag::MORE_TO_READ, true);
            }
            return;
        }
        let result = entry.core.stream.read(buf);
        match classify_read(result) {
            ReadOutcome::Data(n) => {
                total += n;
                let st = &mut entry.core.st;
                let hint = st.has(Flag::HUP_HINT);
                if st.is_open() {
                    if st.has_idle_timeout() {
                        st.heard_from_peer(env.clock.now());
                    }
                    let data = &buf[..n];
                    deliver(entry, env, id, "on_data", |h, c| h.on_data(c, data));
                }
                match after_data(n, buf.len(), total, budget, hint) {
                    AfterData::Continue => {}
                    AfterData::Drained => return,
                    AfterData::Yield => {
                        entry.core.st.set(Flag::MORE_TO_READ, true);
                        return;
                    }
                }
            }
            ReadOutcome::Eof => {
                if entry.core.st.eof() {
                    deliver(entry, env, id, "on_read_closed", |h, c| h.on_read_closed(c));
                }
                return;
            }
            ReadOutcome::WouldBlock => {
                entry.core.st.set(Flag::HUP_HINT, false);
                return;
            }
            ReadOutcome::Interrupted => {}
            ReadOutcome::Closed(reason) => {
                entry.core.st.fail(reason);
                return;
            }
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

#[cfg(test)]
mod size_tests {
    /// What an idle connection costs in the slab, for an 8-byte handler
    /// (BENCHMARKS.md, footprint). A regression here shows up in RSS.
    #[test]
    fn entry_for_8_byte_handler_is_small() {
        struct H8(#[allow(dead_code)] u64);
        impl crate::Handler for H8 {
            fn on_data(&mut self, _: &mut crate::Conn<'_>, _: &[u8]) {}
            fn on_close(&mut self, _: crate::CloseReason) {}
        }
        let size = std::mem::size_of::<super::Entry<H8>>();
        assert!(size <= 104, "Entry<H8> is {size} bytes");
    }
}
