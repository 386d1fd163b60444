//! [`Handle`]: reaches a reactor from anywhere, through a `mio::Waker`.

use std::any::{Any, TypeId};
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::counters::{Counters, Published};
use crate::id::ConnId;
use crate::latency::{Latency, Recorder};

const NO_DRAIN: u64 = u64::MAX;

#[derive(Debug)]
pub(crate) enum Command {
    Write(ConnId, Vec<u8>),
    Close(ConnId),
    Abort(ConnId),
    ShutdownWrite(ConnId),
    /// A connection accepted elsewhere (a group's hand-off acceptor).
    Adopt(std::net::TcpStream, std::net::SocketAddr),
    /// A task of the reactor's handler type ([`Handle::run`]), boxed as `Any`.
    Task(Box<dyn Any + Send>),
}

/// A reactor's counts, published once per turn: readable from any thread
/// with [`Handle::stats`], and from the reactor with
/// [`Reactor::stats`](crate::Reactor::stats).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections open ([`Reactor::connection_count`](crate::Reactor::connection_count)).
    pub connections: u64,
    /// Connections closed so far ([`Reactor::closed_count`](crate::Reactor::closed_count)).
    pub closed: u64,
    /// Peers turned away so far ([`Reactor::rejected_count`](crate::Reactor::rejected_count)).
    pub rejected: u64,
}

pub(crate) struct Shared {
    waker: mio::Waker,
    shutdown: AtomicBool,
    /// The grace period of a drain asked for, in ms; `NO_DRAIN` if none.
    drain_ms: AtomicU64,
    /// The counts of the last turn (`Stats`).
    /// The reactor's counters, published once per turn.
    counters: Published,
    /// Connections handed off and not yet adopted.
    handed_off: AtomicU64,
    /// Commands are queued or shutdown was asked for: the loop must look.
    /// Checked with one load per turn, so an idle turn takes no lock.
    attention: AtomicBool,
    /// The loop is in (or about to enter) poll: a new command must wake it.
    polling: AtomicBool,
    /// A wake is already on its way.
    woken: AtomicBool,
    queue: Mutex<Vec<Command>>,
    /// Close-detection latency, when measured.
    latency: Option<Recorder>,
    /// The reactor's handler type: tasks are closures over a `Ctx` of it.
    handler_type: (TypeId, &'static str),
    /// The reactor has stopped (shut down, drained, or dropped): commands
    /// are dropped, not queued. Changed and read under `queue`'s lock.
    stopped: AtomicBool,
    /// Threads that may still hand connections to this reactor (a group's
    /// hand-off acceptor): a drain does not end while one may.
    feeders: AtomicU64,
}

/// Reaches a [`Reactor`](crate::Reactor) from any thread, or from a handler.
/// `Clone + Send + Sync`.
///
/// Commands are queued and carried out by the reactor's thread in the order
/// given; the loop is woken only when it is blocked in poll, and only once
/// per batch.
///
/// # Examples
///
/// ```
/// use hangup::{CloseReason, Conn, Handler, Reactor};
///
/// struct Quiet;
/// impl Handler for Quiet {
///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
///     fn on_close(&mut self, _: CloseReason) {}
/// }
///
/// let mut reactor = Reactor::new()?;
/// reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Quiet)?;
/// let handle = reactor.handle();
/// let t = std::thread::spawn(move || handle.shutdown());
/// reactor.run()?; // returns once shutdown() is called
/// t.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("shutdown", &self.is_shutdown())
            .finish_non_exhaustive()
    }
}

impl Handle {
    pub(crate) fn new(
        waker: mio::Waker,
        handler_type: (TypeId, &'static str),
        latency: bool,
    ) -> Handle {
        Handle {
            shared: Arc::new(Shared {
                waker,
                shutdown: AtomicBool::new(false),
                drain_ms: AtomicU64::new(NO_DRAIN),
                counters: Published::new(),
                handed_off: AtomicU64::new(0),
                attention: AtomicBool::new(false),
                polling: AtomicBool::new(false),
                woken: AtomicBool::new(false),
                queue: Mutex::new(Vec::new()),
                handler_type,
                latency: latency.then(Recorder::new),
                stopped: AtomicBool::new(false),
                feeders: AtomicU64::new(0),
            }),
        }
    }

    /// Asks the reactor to shut down; from any thread. Wakes the loop.
    /// [`Reactor::run`](crate::Reactor::run) then closes every connection
    /// with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown) and returns.
    ///
    /// Shutdown is immediate: output still queued in the reactor (not yet
    /// taken by the kernel) is dropped, and listeners are closed. To let
    /// connections finish, [`close`](Handle::close) them first and run the
    /// loop until [`Reactor::connection_count`](crate::Reactor::connection_count)
    /// is 0.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        self.shared.attention.store(true, Ordering::SeqCst);
        if let Err(e) = self.shared.waker.wake() {
            log::error!("waking the reactor for shutdown failed: {e}");
        }
    }

    /// Drains the reactor; from any thread. Wakes the loop, which then:
    ///
    /// 1. stops taking new clients, without resetting one the kernel had
    ///    already accepted: its listeners drop new SYNs from now on (Linux: a
    ///    socket filter), the clients already in their backlogs are accepted
    ///    and served like the rest, and the listeners close 250 ms later (or
    ///    at the deadline, if sooner), after the handshakes that were in
    ///    flight have landed. A client whose SYN was dropped retries about
    ///    1 s later and is refused: it waits that long, and is never taken
    ///    in only to be reset. (Elsewhere the backlog is accepted and the
    ///    listeners close at once.) A listener handed on with
    ///    [`Reactor::take_listeners`](crate::Reactor::take_listeners) is not
    ///    touched. A listener shared with other reactors (a [`Group`](crate::Group)
    ///    in [`Balance::Shared`](crate::Balance::Shared)) stops taking new
    ///    clients in all of them: drain them together, with
    ///    [`GroupHandle::drain`](crate::GroupHandle::drain);
    /// 2. calls [`Handler::on_drain`](crate::Handler::on_drain) once for every
    ///    open connection, where a protocol can say goodbye;
    /// 3. closes every connection its handler marks idle
    ///    ([`Conn::set_idle`](crate::Conn::set_idle)), at once or as soon as
    ///    it becomes idle, with the lingering close (our FIN, then its input
    ///    read until the peer's FIN, so a request in flight is not answered
    ///    with a reset): [`CloseReason::Drained`](crate::CloseReason::Drained);
    /// 4. lets the others finish by themselves until `grace` has passed, then
    ///    closes the rest with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown);
    /// 5. returns from [`Reactor::run`](crate::Reactor::run) once no
    ///    connection is left. [`Reactor::drain_report`](crate::Reactor::drain_report)
    ///    says how many closed idle, finished by themselves, or were forced.
    ///
    /// The deadline is mandatory: a drain without one never ends when a
    /// client keeps its connection. The first call's `grace` counts; later
    /// calls change nothing. [`shutdown`](Handle::shutdown) during a drain
    /// ends it at once.
    pub fn drain(&self, grace: Duration) {
        let ms = u64::try_from(grace.as_millis()).unwrap_or(NO_DRAIN - 1);
        let _ = self.shared.drain_ms.compare_exchange(
            NO_DRAIN,
            ms.min(NO_DRAIN - 1),
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.shared.attention.store(true, Ordering::SeqCst);
        if let Err(e) = self.shared.waker.wake() {
            log::error!("waking the reactor for a drain failed: {e}");
        }
    }

    /// The grace period of a drain asked for, if any.
    pub(crate) fn drain_requested(&self) -> Option<Duration> {
        match self.shared.drain_ms.load(Ordering::SeqCst) {
            NO_DRAIN => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Whether [`shutdown`](Handle::shutdown) was called, or the reactor
    /// has stopped (a drain ended, or the reactor was dropped). Once true,
    /// the handle's commands do nothing: nothing is queued.
    pub fn is_shutdown(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    /// The reactor stopped (it shut down, a drain ended, or it was dropped):
    /// from now on commands are dropped. Returns those still queued, for the
    /// reactor to settle (a task still runs, its connects refused).
    pub(crate) fn stopped(&self) -> Vec<Command> {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        self.shared.stopped.store(true, Ordering::SeqCst);
        std::mem::take(&mut *q)
    }

    /// Queues a task ([`Handle::run`], in `ctx.rs`, where the handler type
    /// is known) for a reactor whose handlers are of type `handler`.
    pub(crate) fn push_task(
        &self,
        handler: (TypeId, &'static str),
        task: Box<dyn Any + Send>,
    ) -> io::Result<()> {
        let (id, name) = self.shared.handler_type;
        if handler.0 != id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "Handle::run: the reactor's handlers are {name}, not {}",
                    handler.1
                ),
            ));
        }
        if self.push(Command::Task(task)) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "Handle::run: the reactor has stopped",
            ))
        }
    }

    /// A thread that hands connections to this reactor starts.
    pub(crate) fn add_feeder(&self) {
        self.shared.feeders.fetch_add(1, Ordering::SeqCst);
    }

    /// A thread that handed connections to this reactor is done: wakes
    /// the loop, whose drain may now end.
    pub(crate) fn feeder_done(&self) {
        self.shared.feeders.fetch_sub(1, Ordering::SeqCst);
        self.shared.attention.store(true, Ordering::SeqCst);
        if let Err(e) = self.shared.waker.wake() {
            log::debug!("waking the reactor failed: {e}");
        }
    }

    /// Whether a thread may still hand connections to this reactor.
    pub(crate) fn has_feeders(&self) -> bool {
        self.shared.feeders.load(Ordering::SeqCst) != 0
    }

    /// Queues `data` for connection `id`, as [`Conn::write`](crate::Conn::write)
    /// would. Ignored if `id` is closed or another reactor's, and once the
    /// reactor has stopped ([`is_shutdown`](Handle::is_shutdown)): nothing is
    /// queued then.
    pub fn write(&self, id: ConnId, data: Vec<u8>) {
        let _ = self.push(Command::Write(id, data));
    }

    /// Closes connection `id` gracefully, as [`Conn::close`](crate::Conn::close)
    /// would ([`CloseReason::Local`](crate::CloseReason::Local)). Ignored if
    /// `id` is closed or another reactor's, and once the reactor has stopped
    /// ([`is_shutdown`](Handle::is_shutdown)).
    pub fn close(&self, id: ConnId) {
        let _ = self.push(Command::Close(id));
    }

    /// Resets connection `id`, as [`Conn::abort`](crate::Conn::abort) would.
    /// Ignored if `id` is closed or another reactor's, and once the reactor
    /// has stopped ([`is_shutdown`](Handle::is_shutdown)).
    pub fn abort(&self, id: ConnId) {
        let _ = self.push(Command::Abort(id));
    }

    /// The reactor's counts as of its last turn; from any thread.
    pub fn stats(&self) -> Stats {
        let c = self.counters();
        Stats {
            connections: c.open,
            closed: c.closed,
            rejected: c.rejected(),
        }
    }

    /// Everything the reactor counted ([`Counters`]), as of its last turn;
    /// from any thread, without a lock. Each snapshot is whole: all of it
    /// from the same turn.
    pub fn counters(&self) -> Counters {
        self.shared.counters.load()
    }

    /// Close-detection latency per kind, if
    /// [`Config::close_latency`](crate::Config::close_latency) is on; from
    /// any thread, up to date (each close adds to it at once).
    pub fn latency(&self) -> Option<Latency> {
        self.shared.latency.as_ref().map(Recorder::snapshot)
    }

    pub(crate) fn record_latency(&self, kind: crate::CloseKind, d: Duration) {
        if let Some(r) = &self.shared.latency {
            r.record(kind, d);
        }
    }

    /// Publishes the counts (the reactor, at the end of a turn).
    pub(crate) fn publish(&self, c: &Counters) {
        self.shared.counters.store(c);
    }

    /// Gives the reactor a connection accepted elsewhere (a group's
    /// hand-off acceptor); it makes a handler with the factory given to
    /// `Reactor::adopt_with`.
    pub(crate) fn hand_off(&self, stream: std::net::TcpStream, peer: std::net::SocketAddr) {
        self.shared.handed_off.fetch_add(1, Ordering::SeqCst);
        let _ = self.push(Command::Adopt(stream, peer));
    }

    /// Hand-offs not yet adopted.
    pub(crate) fn handed_off_pending(&self) -> u64 {
        self.shared.handed_off.load(Ordering::SeqCst)
    }

    /// `n` hand-offs were adopted (or refused).
    pub(crate) fn adopted(&self, n: u64) {
        self.shared.handed_off.fetch_sub(n, Ordering::SeqCst);
    }

    /// Half-closes connection `id`, as
    /// [`Conn::shutdown_write`](crate::Conn::shutdown_write) would. Ignored
    /// if `id` is closed or another reactor's, and once the reactor has
    /// stopped ([`is_shutdown`](Handle::is_shutdown)).
    pub fn shutdown_write(&self, id: ConnId) {
        let _ = self.push(Command::ShutdownWrite(id));
    }

    /// Queues `cmd` and wakes the loop; false (and `cmd` dropped) if the
    /// reactor has stopped.
    fn push(&self, cmd: Command) -> bool {
        {
            let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            if self.shared.stopped.load(Ordering::SeqCst) {
                drop(q);
                log::debug!("the reactor has stopped: a command was dropped");
                if let Command::Adopt(..) = cmd {
                    self.adopted(1);
                }
                return false;
            }
            q.push(cmd);
        }
        // Dekker-style: we store `attention` then load `polling`; the loop
        // stores `polling` then loads `attention`. With SeqCst on all four,
        // at least one side sees the other: no command waits for a wake-up
        // that never comes.
        self.shared.attention.store(true, Ordering::SeqCst);
        if self.shared.polling.load(Ordering::SeqCst)
            && !self.shared.woken.swap(true, Ordering::SeqCst)
        {
            if let Err(e) = self.shared.waker.wake() {
                log::error!("waking the reactor failed: {e}");
            }
        }
        true
    }

    /// Whether commands or a shutdown wait for the loop. One atomic load.
    pub(crate) fn needs_attention(&self) -> bool {
        self.shared.attention.load(Ordering::Acquire)
    }

    /// Moves queued commands into `into` (which must be empty), clearing
    /// the attention flag first so that a later push sets it again.
    pub(crate) fn take_commands(&self, into: &mut Vec<Command>) {
        self.shared.attention.store(false, Ordering::SeqCst);
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::swap(&mut *q, into);
        if self.is_shutdown() || self.drain_requested().is_some() {
            // Keep the flag up: shutdown and drain are checked every turn.
            self.shared.attention.store(true, Ordering::SeqCst);
        }
    }

    /// The loop is about to poll. Returns false if it must not block
    /// (something arrived in the meantime).
    pub(crate) fn about_to_poll(&self) -> bool {
        self.shared.polling.store(true, Ordering::SeqCst);
        if self.shared.attention.load(Ordering::SeqCst) {
            self.shared.polling.store(false, Ordering::SeqCst);
            return false;
        }
        true
    }

    /// The loop came back from poll.
    pub(crate) fn polled(&self) {
        self.shared.polling.store(false, Ordering::SeqCst);
        self.shared.woken.store(false, Ordering::Relaxed);
    }
}
