//! [`Ctx`]: what a callback of the reactor's own (a reactor timer, a task
//! sent from another thread, a handler's close) can do: open connections,
//! reach any connection by id, set and cancel reactor timers, read the
//! counts. And [`TimerId`], the reactor timers' ids, and their table.

use std::any::TypeId;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::close::CloseReason;
use crate::conn::{ticks, Conn, ConnId, Env, Slots, Table};
use crate::connect::Queue;
use crate::counters::Counters;
use crate::handle::{Handle, Stats};
use crate::handler::Handler;
use crate::latency::Latency;
use crate::record::CloseRecord;
use crate::timer::Wheel;

/// A reactor timer's id ([`Ctx::set_timer`], [`Reactor::set_timer`](crate::Reactor::set_timer)):
/// `Copy`, never reused while the timer could still fire, and never taken for
/// another reactor's timer.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimerId(ConnId);

impl fmt::Debug for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TimerId({})", self.0)
    }
}

impl fmt::Display for TimerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "timer {}", self.0)
    }
}

/// A closure sent to run on the reactor's thread ([`Handle::run`]).
pub(crate) type Task<H> = Box<dyn FnOnce(&mut Ctx<'_, H>) + Send>;

/// The methods of [`Handle`] that run code on the reactor's thread with a
/// [`Ctx`]: here, beside `Ctx`, so that `handle.rs` needs neither it nor
/// the handler's type.
impl Handle {
    /// Runs `f` on the reactor's thread, with a [`Ctx`]: from any thread,
    /// in order with this handle's other commands (`write`, `close`, ...),
    /// and with the commands of other threads in the order they were
    /// queued. `H` is the reactor's handler type.
    ///
    /// A task queued before the reactor stopped still runs (its connects
    /// are refused, and [`Ctx::connect_or_report`] reports that to the
    /// handler); one asked for after is refused here.
    ///
    /// # Errors
    ///
    /// - `ErrorKind::NotConnected`: the reactor has stopped
    ///   ([`is_shutdown`](Handle::is_shutdown)); `f` is dropped;
    /// - `ErrorKind::InvalidInput`: the reactor's handlers are not of type
    ///   `H`.
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
    /// let mut reactor = Reactor::<Quiet>::new()?;
    /// let handle = reactor.handle();
    /// std::thread::spawn(move || {
    ///     handle
    ///         .run(|ctx: &mut hangup::Ctx<'_, Quiet>| {
    ///             println!("{} open", ctx.stats().connections);
    ///             ctx.handle().shutdown();
    ///         })
    ///         .unwrap();
    /// });
    /// reactor.run()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn run<H: Handler>(
        &self,
        f: impl FnOnce(&mut Ctx<'_, H>) + Send + 'static,
    ) -> io::Result<()> {
        let task: Task<H> = Box::new(f);
        self.push_task(
            (TypeId::of::<H>(), std::any::type_name::<H>()),
            Box::new(task),
        )
    }

    /// Opens a connection from any thread: on the reactor's thread, `make`
    /// builds the handler and the connect starts, with the contract of
    /// [`Reactor::connect`](crate::Reactor::connect): `on_open` once
    /// connected, or only `on_close(ConnectFailed(e))`, also when no socket
    /// could be made or the reactor stopped before it got to it.
    ///
    /// # Errors
    ///
    /// As [`run`](Handle::run): the reactor has stopped (nothing was made),
    /// or its handlers are not of type `H`.
    pub fn connect<H: Handler>(
        &self,
        addr: std::net::SocketAddr,
        make: impl FnOnce() -> H + Send + 'static,
    ) -> io::Result<()> {
        self.run(move |ctx: &mut Ctx<'_, H>| {
            ctx.connect_or_report(addr, make());
        })
    }

    /// [`connect`](Handle::connect) to the Unix domain socket at `path`
    /// (see [`Reactor::connect_unix`](crate::Reactor::connect_unix)), with
    /// the same contract.
    ///
    /// # Errors
    ///
    /// As [`connect`](Handle::connect).
    pub fn connect_unix<H: Handler>(
        &self,
        path: impl Into<std::path::PathBuf>,
        make: impl FnOnce() -> H + Send + 'static,
    ) -> io::Result<()> {
        let path = path.into();
        self.run(move |ctx: &mut Ctx<'_, H>| {
            ctx.connect_unix_or_report(&path, make());
        })
    }
}

type OnceFn<H> = Box<dyn FnOnce(&mut Ctx<'_, H>)>;
type EveryFn<H> = Box<dyn FnMut(&mut Ctx<'_, H>)>;

/// A one-shot or periodic reactor timer's callback.
pub(crate) enum Callback<H: Handler> {
    Once(OnceFn<H>),
    Every(EveryFn<H>),
}

pub(crate) struct Entry<H: Handler> {
    /// `None` while it runs.
    pub(crate) callback: Option<Callback<H>>,
    /// Ticks between fires; 0 for a one-shot timer.
    pub(crate) period: u64,
    /// When it is due next.
    pub(crate) due: u64,
}

/// The reactor's own timers: a wheel of their own (so that a turn with none
/// armed costs one length check) and their callbacks.
pub(crate) struct Timers<H: Handler> {
    pub(crate) wheel: Wheel,
    pub(crate) entries: Slots<Entry<H>>,
}

impl<H: Handler> fmt::Debug for Timers<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timers")
            .field("armed", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Timers<H> {
    pub(crate) fn new() -> Timers<H> {
        Timers {
            wheel: Wheel::new(),
            entries: Slots::with_capacity(0),
        }
    }

    pub(crate) fn add(
        &mut self,
        env: &Env,
        after: Duration,
        period: u64,
        callback: Callback<H>,
    ) -> TimerId {
        let due = env.clock.deadline(ticks(after));
        let (id, _) = self.entries.insert(Entry {
            callback: Some(callback),
            period,
            due,
        });
        self.wheel.schedule(id.index(), due);
        TimerId(id)
    }

    /// A one-shot timer `after` from now.
    pub(crate) fn once(
        &mut self,
        env: &Env,
        after: Duration,
        f: impl FnOnce(&mut Ctx<'_, H>) + 'static,
    ) -> TimerId {
        self.add(env, after, 0, Callback::Once(Box::new(f)))
    }

    /// A periodic timer (at least 1 ms), the first fire `period` from now.
    pub(crate) fn every(
        &mut self,
        env: &Env,
        period: Duration,
        f: impl FnMut(&mut Ctx<'_, H>) + 'static,
    ) -> TimerId {
        let p = ticks(period).max(1);
        self.add(env, period, p, Callback::Every(Box::new(f)))
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> bool {
        if !self.entries.owns(id.0) || self.entries.remove(id.0).is_none() {
            return false;
        }
        self.wheel.cancel(id.0.index());
        true
    }

    /// Drops every timer: none fires after the reactor stopped.
    pub(crate) fn clear(&mut self) {
        for id in self.entries.ids() {
            self.entries.remove(id);
            self.wheel.cancel(id.index());
        }
    }

    pub(crate) fn id_at(&self, key: usize) -> Option<TimerId> {
        self.entries.id_at(key).map(TimerId)
    }

    pub(crate) fn get_mut(&mut self, id: TimerId) -> Option<&mut Entry<H>> {
        self.entries.get_mut(id.0)
    }

    pub(crate) fn remove(&mut self, id: TimerId) -> Option<Entry<H>> {
        self.entries.remove(id.0)
    }

    pub(crate) fn schedule(&mut self, id: TimerId, due: u64) {
        self.wheel.schedule(id.0.index(), due);
    }
}

/// The next time a periodic timer due at `due` fires, after it fired at
/// `now`: one period on, or, if the program fell behind by more than a
/// period, the first multiple of the period after `now` (missed fires are
/// skipped, not bunched). Pure.
pub(crate) fn next_period(due: u64, period: u64, now: u64) -> u64 {
    let next = due + period;
    if next > now {
        next
    } else {
        let behind = now - due;
        due + (behind / period + 1) * period
    }
}

/// What a callback of the reactor's own can do, on the reactor's thread:
/// a reactor timer ([`Reactor::set_timer`](crate::Reactor::set_timer)), a
/// task from another thread ([`Handle::run`]), or a handler's close
/// ([`Handler::on_close_with`]).
///
/// - [`connect`](Ctx::connect) opens a connection (a reconnect, a health
///   check);
/// - [`conn`](Ctx::conn) reaches any connection of this reactor by id, as
///   [`Conn::other`] does;
/// - [`set_timer`](Ctx::set_timer), [`set_periodic`](Ctx::set_periodic) and
///   [`cancel_timer`](Ctx::cancel_timer) manage reactor timers;
/// - [`stats`](Ctx::stats) and [`handle`](Ctx::handle) as on the reactor.
pub struct Ctx<'a, H: Handler> {
    pub(crate) table: &'a mut Table,
    pub(crate) env: &'a Env,
    pub(crate) connects: &'a Queue<H>,
    pub(crate) timers: &'a mut Timers<H>,
    pub(crate) stats: Stats,
    /// The reactor is stopping (shut down, or a drain forcing its end):
    /// connects are refused.
    pub(crate) stopping: bool,
    /// During a close: its record.
    pub(crate) record: Option<&'a CloseRecord>,
}

impl<H: Handler> fmt::Debug for Ctx<'_, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx")
            .field("stats", &self.stats)
            .field("stopping", &self.stopping)
            .finish_non_exhaustive()
    }
}

impl<H: Handler> Ctx<'_, H> {
    /// Starts a non-blocking connect, as [`Reactor::connect`](crate::Reactor::connect):
    /// `handler` gets `on_open` once connected, or only
    /// `on_close(ConnectFailed(e))`.
    ///
    /// # Errors
    ///
    /// - no socket could be made (out of descriptors);
    /// - the reactor is stopping (after [`Handle::shutdown`], while it drops,
    ///   or once a drain's deadline passed): `ErrorKind::NotConnected`.
    ///
    /// Either way `handler` is dropped without a callback. To have a
    /// failure reported to the handler instead, use
    /// [`connect_or_report`](Ctx::connect_or_report).
    pub fn connect(&mut self, addr: SocketAddr, handler: H) -> io::Result<ConnId> {
        if self.stopping {
            return Err(stopped());
        }
        let id = self.table.start_connect(addr, self.env)?;
        self.connects.waiting.borrow_mut().push((id, handler));
        Ok(id)
    }

    /// As [`connect`](Ctx::connect), but a connect that cannot start is
    /// reported to `handler` as `on_close(ConnectFailed(e))` (without
    /// `on_open`), so that every handler given here gets its `on_close`.
    /// The id, if the connect started.
    pub fn connect_or_report(&mut self, addr: SocketAddr, handler: H) -> Option<ConnId> {
        self.start_or_report(handler, &addr.to_string(), |t, env| {
            t.start_connect(addr, env)
        })
    }

    /// [`connect_or_report`](Ctx::connect_or_report) to a Unix domain socket
    /// at `path`.
    pub fn connect_unix_or_report(
        &mut self,
        path: impl AsRef<std::path::Path>,
        handler: H,
    ) -> Option<ConnId> {
        let path = path.as_ref();
        let to = format!("unix:{}", path.display());
        self.start_or_report(handler, &to, |t, env| t.start_connect_unix(path, env))
    }

    fn start_or_report(
        &mut self,
        mut handler: H,
        to: &str,
        start: impl FnOnce(&mut Table, &Env) -> io::Result<ConnId>,
    ) -> Option<ConnId> {
        let started = if self.stopping {
            Err(stopped())
        } else {
            start(self.table, self.env)
        };
        match started {
            Ok(id) => {
                self.connects.waiting.borrow_mut().push((id, handler));
                Some(id)
            }
            Err(e) => {
                log::debug!("connect to {to} refused: {e}");
                handler.on_close(CloseReason::ConnectFailed(e));
                None
            }
        }
    }

    /// [`connect`](Ctx::connect) to a Unix domain socket at `path` (see
    /// [`Reactor::connect_unix`](crate::Reactor::connect_unix)).
    ///
    /// # Errors
    ///
    /// As [`connect`](Ctx::connect).
    pub fn connect_unix(
        &mut self,
        path: impl AsRef<std::path::Path>,
        handler: H,
    ) -> io::Result<ConnId> {
        if self.stopping {
            return Err(stopped());
        }
        let id = self.table.start_connect_unix(path.as_ref(), self.env)?;
        self.connects.waiting.borrow_mut().push((id, handler));
        Ok(id)
    }

    /// Connection `id` of this reactor, to write to, close, abort,
    /// half-close, pause or resume; `None` if it is closed or another
    /// reactor's.
    pub fn conn(&mut self, id: ConnId) -> Option<Conn<'_>> {
        self.table.reach(id, self.env)
    }

    /// Calls `f` once, `after` from this call (never early), on the
    /// reactor's thread, with a `Ctx`.
    pub fn set_timer(
        &mut self,
        after: Duration,
        f: impl FnOnce(&mut Ctx<'_, H>) + 'static,
    ) -> TimerId {
        self.timers.once(self.env, after, f)
    }

    /// Calls `f` every `period` (the first time `period` from this call),
    /// until [`cancel_timer`](Ctx::cancel_timer). Each fire is due one
    /// period after the last one was due, so the period holds under load
    /// (to the wheel's 1 ms tick); fires missed while the reactor was busy
    /// for longer than a period are skipped, not bunched. A `period` under
    /// 1 ms counts as 1 ms.
    pub fn set_periodic(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut Ctx<'_, H>) + 'static,
    ) -> TimerId {
        self.timers.every(self.env, period, f)
    }

    /// Cancels a reactor timer: it does not fire after this call, even if
    /// it is due in this very turn. Whether it was armed (false if it had
    /// fired, was cancelled, or is another reactor's). A periodic timer may
    /// cancel itself from its own callback.
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// The reactor's counts, as of this callback's start.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The reactor's [`Counters`], as of its last turn.
    pub fn counters(&self) -> Counters {
        self.env.handle.counters()
    }

    /// Close-detection latency, if measured ([`Handle::latency`]).
    pub fn latency(&self) -> Option<Latency> {
        self.env.handle.latency()
    }

    /// A [`Handle`] to this reactor.
    pub fn handle(&self) -> Handle {
        self.env.handle.clone()
    }

    /// During [`Handler::on_close_with`]: the close told whole ([`CloseRecord`]:
    /// who ended it, in which phase, output unsent, and with
    /// [`Config::close_records`](crate::Config::close_records) the lifetime,
    /// bytes, history and latency). `None` in other callbacks.
    pub fn record(&self) -> Option<&CloseRecord> {
        self.record
    }

    /// Whether the reactor is stopping: connects are refused.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }
}

fn stopped() -> io::Error {
    io::Error::new(
        io::ErrorKind::NotConnected,
        "the reactor is stopping: connect refused",
    )
}

#[cfg(test)]
mod tests {
    use super::next_period;

    #[test]
    fn periodic_keeps_its_period_and_skips_what_it_missed() {
        assert_eq!(next_period(100, 10, 100), 110, "on time");
        assert_eq!(
            next_period(100, 10, 104),
            110,
            "a little late: the period holds"
        );
        assert_eq!(
            next_period(100, 10, 110),
            120,
            "a whole period late: skip one"
        );
        assert_eq!(
            next_period(100, 10, 135),
            140,
            "three behind: skip to the next"
        );
        assert_eq!(next_period(100, 1, 100), 101);
    }
}
