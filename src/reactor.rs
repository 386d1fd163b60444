//! [`Reactor`]: the event loop. Connects, reads, writes, dispatches, and the
//! only caller of `Poll::poll`; accepting is in `accept.rs`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use mio::event::Event;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::close::{reason_from_error, CloseReason};
use crate::config::Config;
use crate::conn::{Conn, ConnId, Env, Flag, Phase, Table};
use crate::connect::Queue;
use crate::counters::{CloseKind, Counters, Side};
#[cfg(doc)]
use crate::ctx::Ctx;
use crate::ctx::Timers;
use crate::handle::{Command, Handle, Stats};
use crate::handler::Handler;
use crate::record::{CloseDetail, CloseRecord, LifecycleEvent};
use crate::sys;
use crate::timer::Wheel;

mod accept;
mod dispatch;
mod drain;
#[cfg(test)]
mod model;
mod outbound;
mod tasks;

use dispatch::{deliver, read_ready, write_ready};

pub use drain::DrainReport;
pub(crate) use drain::LISTENER_SETTLE;

const WAKER: Token = Token(usize::MAX);
/// Connection slots reserved up front (at most): virtual memory, resident
/// only as used.
const MAX_RESERVED_SLOTS: usize = 65_536;
/// How long to wait before accepting again when descriptors ran out and no
/// spare descriptor could turn peers away.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

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
                &self.listeners.iter().map(|l| l.addr).collect::<Vec<_>>(),
            )
            .field("config", &self.env.config)
            .field("shut_down", &self.shut_down)
            .finish_non_exhaustive()
    }
}

/// Calls `f`, catching a panic. `None` if it panicked.
fn guarded<R>(what: &str, id: impl fmt::Display, f: impl FnOnce() -> R) -> Option<R> {
    match panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
                .unwrap_or("non-string payload");
            log::error!("{id}: panicked in {what}: {msg}");
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

    /// Publishes the counts for [`Handle::stats`], then lets the hand-offs
    /// adopted this turn leave the pending count: a group's acceptor, which
    /// balances on open + pending, never sees them in neither.
    fn publish(&mut self) {
        self.env.handle.publish(&self.counters());
        if self.adopted_unpublished != 0 {
            self.env.handle.adopted(self.adopted_unpublished);
            self.adopted_unpublished = 0;
        }
    }

    /// The counts ([`connection_count`](Reactor::connection_count),
    /// [`closed_count`](Reactor::closed_count),
    /// [`rejected_count`](Reactor::rejected_count)); [`Handle::stats`] gives
    /// the same from any thread, as of the last turn.
    pub fn stats(&self) -> Stats {
        Stats {
            connections: self.table.cores.len() as u64,
            closed: self.counters.closed,
            rejected: self.counters.rejected(),
        }
    }

    /// Close-detection latency per kind, if
    /// [`Config::close_latency`] is on ([`Handle::latency`]).
    pub fn latency(&self) -> Option<crate::Latency> {
        self.env.handle.latency()
    }

    /// Everything this reactor counted since it was made ([`Counters`]);
    /// [`Handle::counters`] gives the same from any thread, as of the last
    /// turn.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.open = self.table.cores.len() as u64;
        c.bytes_in = self.table.bytes_in;
        c.bytes_out = self.table.bytes_out;
        c
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

    /// Connections open now (accepted and outbound, connecting included).
    pub fn connection_count(&self) -> usize {
        self.table.cores.len()
    }

    /// Peers turned away at accept (past `max_connections`, out of
    /// descriptors, or a factory that panicked), since the reactor was made.
    pub fn rejected_count(&self) -> u64 {
        self.counters.rejected()
    }

    /// Connections closed (that saw `on_close`) since the reactor was made.
    pub fn closed_count(&self) -> u64 {
        self.counters.closed
    }

    /// The addresses listened on.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
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

    /// Ends every open connection with `Shutdown` (unless it already had a cause).
    fn close_all(&mut self) {
        for id in self.table.cores.ids() {
            if let Some(core) = self.table.cores.get_mut(id) {
                core.st.fail(CloseReason::Shutdown);
            }
            self.finish(id);
        }
    }

    // ---- connection events ----

    fn conn_event(&mut self, id: ConnId, event: &Event) {
        let Some(core) = self.table.cores.get_mut(id) else {
            log::trace!("stale event for {id}");
            return;
        };
        let hangup = event.is_read_closed() || event.is_error();
        if hangup {
            core.st.set(Flag::HUP_HINT, true);
        }
        if core.st.phase() == Phase::Connecting && !self.connect_event(id, event) {
            self.after(id);
            return;
        }
        let (handlers, table, env) = (&mut self.handlers, &mut self.table, &self.env);
        let Some(core) = table.cores.get_mut(id) else {
            return;
        };
        if event.is_writable() && core.out.is_some() {
            write_ready(handlers, table, env, id);
        }
        let Some(core) = table.cores.get_mut(id) else {
            return;
        };
        if core.st.may_read() {
            if event.is_readable() || hangup {
                read_ready(handlers, table, &mut self.read_buf, env, id);
            }
        } else if core.st.phase() != Phase::Done && (event.is_error() || event.is_write_closed()) {
            // Not reading (paused, or after the peer's FIN): the error flag is
            // only a hint, SO_ERROR says what happened.
            match core.stream.take_error() {
                Ok(Some(e)) | Err(e) => core.st.fail(reason_from_error(e)),
                Ok(None) => {}
            }
        }
        self.after(id);
    }

    /// Connections that stopped reading early (budget, or resumed), and
    /// connects that failed at once, get their turn. Only those queued
    /// before this call: new ones wait a turn.
    fn run_ready(&mut self) {
        for _ in 0..self.ready.len() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(core) = self.table.cores.get_mut(id) else {
                continue;
            };
            core.st.set(Flag::QUEUED, false);
            if core.st.may_read() {
                read_ready(
                    &mut self.handlers,
                    &mut self.table,
                    &mut self.read_buf,
                    &self.env,
                    id,
                );
            }
            self.settle(id);
            self.after_callbacks();
        }
    }

    fn run_timers(&mut self) {
        let now = self.env.clock.tick();
        let mut expired = std::mem::take(&mut self.expired);
        self.wheel.advance(now, &mut expired);
        for key in expired.drain(..) {
            if !self.wheel.take_fired(key) {
                continue;
            }
            let Some(id) = self.table.cores.id_at(key) else {
                continue;
            };
            let core = self.table.cores.get_mut(id).expect("live id");
            let due = core.st.next_timer();
            if core.st.expire(now) {
                log::debug!("conn {id}: timer fired");
                if let Some(r) = self.table.recs.as_mut().and_then(|r| r.get_mut(key)) {
                    r.timer_late = (now.saturating_sub(due) + 1).min(u64::from(u32::MAX)) as u32;
                    r.history.push(LifecycleEvent::TimerFired);
                }
            }
            self.settle(id);
        }
        self.expired = expired;
    }

    /// The handlers' own timers ([`Conn::set_timer`]).
    fn run_handler_timers(&mut self) {
        let now = self.env.clock.tick();
        let mut expired = std::mem::take(&mut self.expired);
        self.table.timers.advance(now, &mut expired);
        for key in expired.drain(..) {
            // Checked again at delivery: an earlier `on_timer` of this batch
            // may have cancelled or re-armed it, or closed its connection.
            if !self.table.timers.take_fired(key) {
                continue;
            }
            let Some(id) = self.table.cores.id_at(key) else {
                continue;
            };
            deliver(
                &mut self.handlers,
                &mut self.table,
                &self.env,
                id,
                "on_timer",
                |h, c| h.on_timer(c),
            );
            self.after(id);
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

    // ---- bookkeeping ----

    /// After an event or callback touched connection `id`: finish it if
    /// done, bring it up to date if not quiet, and do what the callbacks
    /// left (other connections they touched, connects they started).
    #[inline]
    fn after(&mut self, id: ConnId) {
        if let Some(core) = self.table.cores.get(id) {
            if core.st.phase() == Phase::Done {
                self.finish(id);
            } else if !core.st.is_quiet() {
                self.settle(id);
            }
        }
        if !self.table.touched.is_empty() || !self.table.started.is_empty() {
            self.after_callbacks();
        }
    }

    /// Attaches the handlers of connects started in callbacks, and settles
    /// the connections callbacks reached with [`Conn::other`].
    fn after_callbacks(&mut self) {
        loop {
            if !self.table.started.is_empty() {
                self.table.started.clear();
                let waiting = std::mem::take(&mut *self.connects.waiting.borrow_mut());
                for (id, handler) in waiting {
                    self.attach(id, handler);
                }
            }
            let Some(id) = self.table.touched.pop() else {
                return;
            };
            self.settle(id);
        }
    }

    #[inline]
    fn put_handler(&mut self, id: ConnId, handler: H) {
        let i = id.index();
        let len = self.handlers.len();
        if i < len {
            self.handlers[i] = Some(handler);
        } else {
            // The slab hands out a new slot only after all freed ones, so
            // this is a push; a gap is filled in case it is not.
            if i > len {
                self.handlers.resize_with(i, || None);
            }
            self.handlers.push(Some(handler));
        }
    }

    /// After anything touched a connection: finish it if done, otherwise
    /// bring its registration, ready-list entry and timer up to date.
    fn settle(&mut self, id: ConnId) {
        let Some(core) = self.table.cores.get_mut(id) else {
            return;
        };
        let st = &mut core.st;
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
                if let Err(e) = self
                    .poll
                    .registry()
                    .reregister(&mut core.stream, token, interest)
                {
                    core.st.fail(CloseReason::Error(e));
                    self.finish(id);
                    return;
                }
                core.st.set(Flag::WRITABLE_INTEREST, true);
            }
        }
        let st = &mut core.st;
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

    /// The close record's detail, if records are on.
    #[cold]
    fn close_detail(&mut self, id: ConnId, reason: &CloseReason) -> Option<CloseDetail> {
        let rec = *self.table.recs.as_ref()?.get(id.index())?;
        let mut history = rec.history;
        if matches!(reason, CloseReason::Backpressure) {
            history.push(LifecycleEvent::Backpressure);
        }
        let now = self.env.clock.now();
        let detected_after = match (Side::of(reason), self.polled_at) {
            (Side::Peer, Some(at)) if rec.timer_late == 0 => Some(at.elapsed()),
            _ => None,
        };
        Some(CloseDetail {
            lifetime: Duration::from_millis(now.saturating_sub(rec.opened)),
            bytes_in: rec.bytes_in,
            bytes_out: rec.bytes_out,
            history,
            detected_after,
            timer_late: (rec.timer_late > 0)
                .then(|| Duration::from_millis(u64::from(rec.timer_late - 1))),
        })
    }

    /// Closes the socket and calls `on_close`, exactly once.
    fn finish(&mut self, id: ConnId) {
        let Some(mut core) = self.table.cores.remove(id) else {
            return;
        };
        // Also clears a fired mark: a timer of this connection that came due
        // in a batch still being delivered must not reach whoever takes
        // the slot next.
        if !self.wheel.is_idle() {
            self.wheel.cancel(id.index());
        }
        if !self.table.timers.is_idle() {
            self.table.timers.cancel(id.index());
        }
        // A reset when asked for, and whenever output we queued was never
        // sent: the peer must not take partial data for all of it.
        let unsent_bytes = core.pending() as u64;
        let unsent = unsent_bytes > 0;
        let phase = core.st.end_phase();
        let core_peer = core.peer;
        // Before the descriptor closes: what the kernel knew, if asked.
        let tcp_info = if core.st.has(Flag::TCP_INFO) || self.env.config.tcp_info_at_close {
            sys::tcp_info(&core.stream)
                .map_err(|e| log::debug!("conn {id}: TCP_INFO: {e}"))
                .ok()
        } else {
            None
        };
        if core.st.has(Flag::ABORTIVE) || unsent {
            if let Err(e) = sys::set_abortive(&core.stream) {
                log::debug!("conn {id}: SO_LINGER 0 failed: {e}");
            }
        }
        let reason = core.st.take_reason();
        log::debug!("conn {id}: closed ({reason}) peer {}", core.peer);
        if let Some(drain) = self.drain.as_mut() {
            drain.count(&reason);
        }
        // Closing the descriptor removes it from epoll: no deregister call.
        drop(core);
        if self.spare_fd.is_none() && !self.listeners.is_empty() {
            // The spare was lost to a race for the descriptor it gave back:
            // the one just freed replaces it.
            self.spare_fd = open_spare().ok();
        }
        self.counters.count_close(&reason, unsent);
        let handler = self.handlers.get_mut(id.index()).and_then(Option::take);
        if let Some(mut handler) = handler {
            let detail = if self.table.recs.is_some() {
                self.close_detail(id, &reason)
            } else {
                None
            };
            if let Some(d) = detail.and_then(|d| d.detected_after.or(d.timer_late)) {
                self.env.handle.record_latency(CloseKind::of(&reason), d);
            }
            let record = CloseRecord {
                id,
                peer: core_peer,
                kind: CloseKind::of(&reason),
                errno: reason.raw_os_error(),
                side: Side::of(&reason),
                phase,
                unsent: unsent_bytes,
                detail,
                tcp_info,
            };
            let stopping = self.is_stopping();
            let mut ctx = self.ctx(stopping);
            ctx.record = Some(&record);
            guarded("on_close", id, || handler.on_close_with(reason, &mut ctx));
            if !self.table.touched.is_empty() || !self.table.started.is_empty() {
                self.after_callbacks();
            }
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

#[cfg(test)]
mod clock_tests {
    use std::io::Write;
    use std::time::Duration;

    use crate::{CloseReason, Config, Conn, Handler, Reactor};

    struct Nop;
    impl Handler for Nop {
        fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
        fn on_close(&mut self, _: CloseReason) {}
    }

    /// Clock reads while 20 peers send a byte and reset.
    fn clock_reads_for_closes(config: Config) -> u64 {
        let mut r = Reactor::<Nop>::with_config(config).unwrap();
        let addr = r.listen("127.0.0.1:0".parse().unwrap(), |_| Nop).unwrap();
        let peers: Vec<_> = (0..20)
            .map(|_| std::net::TcpStream::connect(addr).unwrap())
            .collect();
        while r.connection_count() < 20 {
            r.run_once(Some(Duration::from_millis(5))).unwrap();
        }
        let before = r.env.clock.reads.get();
        for mut p in peers {
            p.write_all(b"x").unwrap();
            socket2::SockRef::from(&p)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
        }
        while r.connection_count() > 0 {
            r.run_once(None).unwrap();
        }
        r.env.clock.reads.get() - before
    }

    #[test]
    fn with_latency_off_no_clock_is_read_on_the_close_path() {
        assert_eq!(clock_reads_for_closes(Config::default()), 0);
        let on = clock_reads_for_closes(Config::default().close_latency(true));
        assert!(on >= 20, "latency on reads the clock at each close: {on}");
    }
}

#[cfg(test)]
mod size_tests {
    /// What an idle connection costs in the reactor's tables, for an 8-byte
    /// handler (BENCHMARKS.md, footprint): its core in the slab plus its
    /// handler slot. A regression here shows up in RSS.
    #[test]
    fn per_connection_bytes_for_8_byte_handler_are_small() {
        struct H8(#[allow(dead_code)] u64);
        impl crate::Handler for H8 {
            fn on_data(&mut self, _: &mut crate::Conn<'_>, _: &[u8]) {}
            fn on_close(&mut self, _: crate::CloseReason) {}
        }
        /// The shape of `slab::Entry<Core>`.
        #[allow(dead_code)]
        enum SlabEntry<T> {
            Vacant(usize),
            Occupied(T),
        }
        let core = std::mem::size_of::<SlabEntry<crate::conn::Core>>();
        let handler = std::mem::size_of::<Option<H8>>();
        let generation = std::mem::size_of::<u32>();
        let size = core + handler;
        println!(
            "per connection: core {core} B + handler {handler} B (+ {generation} B generation)"
        );
        assert!(
            size <= 104,
            "core {core} + handler {handler} = {size} bytes"
        );
    }
}
