//! The reactor's own callbacks: reactor timers ([`Reactor::set_timer`],
//! [`Reactor::set_periodic`]), tasks sent from other threads
//! ([`Handle::run`](crate::Handle::run)), and the [`Ctx`] they get.

use std::any::Any;
use std::time::Duration;

use super::{guarded, Reactor};
use crate::ctx::{Ctx, Task, TimerId};
use crate::handle::Command;
use crate::handler::Handler;

impl<H: Handler> Reactor<H> {
    /// Calls `f` once, `after` from this call (never early), on the
    /// reactor's thread, with a [`Ctx`] to act from: open connections,
    /// reach any connection by id, set more timers, read the counts.
    /// Cancel it with [`cancel_timer`](Reactor::cancel_timer). A timer set
    /// after the reactor stopped never fires.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use hangup::{CloseReason, Conn, Handler, Reactor};
    ///
    /// struct Quiet;
    /// impl Handler for Quiet {
    ///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    ///
    /// let mut reactor = Reactor::<Quiet>::new()?;
    /// reactor.set_periodic(Duration::from_millis(10), |ctx| {
    ///     println!("{:?}", ctx.stats());
    /// });
    /// reactor.set_timer(Duration::from_millis(35), |ctx| ctx.handle().shutdown());
    /// reactor.run()?; // three lines of stats, then it stops
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_timer(
        &mut self,
        after: Duration,
        f: impl FnOnce(&mut Ctx<'_, H>) + 'static,
    ) -> TimerId {
        self.timers.once(&self.env, after, f)
    }

    /// Calls `f` every `period`, the first time `period` from this call,
    /// until cancelled; see [`Ctx::set_periodic`] for how the period holds
    /// under load.
    pub fn set_periodic(
        &mut self,
        period: Duration,
        f: impl FnMut(&mut Ctx<'_, H>) + 'static,
    ) -> TimerId {
        self.timers.every(&self.env, period, f)
    }

    /// Cancels a reactor timer; see [`Ctx::cancel_timer`].
    pub fn cancel_timer(&mut self, id: TimerId) -> bool {
        self.timers.cancel(id)
    }

    /// A context over this reactor's parts, for one callback.
    pub(super) fn ctx(&mut self, stopping: bool) -> Ctx<'_, H> {
        let stats = self.stats();
        Ctx {
            table: &mut self.table,
            env: &self.env,
            connects: &self.connects,
            timers: &mut self.timers,
            stats,
            stopping,
            record: None,
        }
    }

    /// Runs a task sent through [`Handle::run`](crate::Handle::run).
    pub(super) fn run_task(&mut self, task: Box<dyn Any + Send>) {
        match task.downcast::<Task<H>>() {
            Ok(task) => {
                let stopping = self.is_stopping();
                let mut ctx = self.ctx(stopping);
                guarded("a task", "reactor", || task(&mut ctx));
                self.after_callbacks();
            }
            Err(_) => log::error!("a task for another handler type was dropped"),
        }
    }

    /// The reactor stopped (shut down, drained, dropped): its timers go,
    /// its handles queue nothing from now on, and the tasks still queued
    /// run with connects refused (a connect asked for through a `Handle`
    /// is refused, not lost).
    pub(super) fn stopped(&mut self) {
        self.timers.clear();
        for cmd in self.env.handle.stopped() {
            match cmd {
                Command::Task(task) => self.run_task(task),
                Command::Adopt(..) => self.env.handle.adopted(1),
                _ => {}
            }
        }
    }
}
