//! Firing what is due this turn: the connections' timers (connect, idle,
//! deadline, close timeouts), the handlers' own ([`Conn::set_timer`](crate::Conn::set_timer)),
//! and the reactor's ([`Reactor::set_timer`]). Each batch is checked again
//! at delivery, against what earlier callbacks of the same batch did.

use super::dispatch::deliver;
use super::{guarded, Reactor};
use crate::ctx::{next_period, Callback};
use crate::handler::Handler;
use crate::record::LifecycleEvent;

impl<H: Handler> Reactor<H> {
    /// The connections' own timers: connect, idle, deadline, close
    /// timeouts. Each is checked again at delivery.
    pub(super) fn run_timers(&mut self) {
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
    pub(super) fn run_handler_timers(&mut self) {
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

    /// Fires the reactor timers due this turn, each checked again at
    /// delivery (an earlier one may have cancelled it).
    pub(super) fn run_reactor_timers(&mut self) {
        let now = self.env.clock.tick();
        let mut expired = std::mem::take(&mut self.expired);
        self.timers.wheel.advance(now, &mut expired);
        for key in expired.drain(..) {
            if !self.timers.wheel.take_fired(key) {
                continue;
            }
            let Some(id) = self.timers.id_at(key) else {
                continue;
            };
            let Some(entry) = self.timers.get_mut(id) else {
                continue;
            };
            let (period, due) = (entry.period, entry.due);
            let callback = if period == 0 {
                self.timers.remove(id).and_then(|e| e.callback)
            } else {
                entry.callback.take()
            };
            let stopping = self.is_stopping();
            match callback {
                Some(Callback::Once(f)) => {
                    let mut ctx = self.ctx(stopping);
                    guarded("a reactor timer", id, || f(&mut ctx));
                }
                Some(Callback::Every(mut f)) => {
                    let mut ctx = self.ctx(stopping);
                    let ok = guarded("a periodic reactor timer", id, || f(&mut ctx));
                    // Re-armed unless it was cancelled (from inside, too)
                    // or panicked.
                    match (ok, self.timers.get_mut(id)) {
                        (Some(()), Some(entry)) => {
                            let next = next_period(due, period, self.env.clock.tick());
                            entry.callback = Some(Callback::Every(f));
                            entry.due = next;
                            self.timers.schedule(id, next);
                        }
                        (None, Some(_)) => {
                            self.timers.cancel(id);
                        }
                        _ => {}
                    }
                }
                None => {}
            }
            self.after_callbacks();
        }
        self.expired = expired;
    }
}
