//! How the reactor reads time: one rule, written down once.
//!
//! Time is a tick count: whole milliseconds since the reactor was made.
//!
//! - **Arming reads the clock.** Every deadline that a call arms (a
//!   connect's timeout, `Conn::set_timer`, `set_deadline`, the idle timer
//!   re-armed by bytes from the peer, `close`'s timeout, a drain's grace)
//!   counts from [`Clock::now`], which reads the OS clock at the call. A call
//!   made after a callback's long work, or between two turns, counts from
//!   when it was made, never from a time cached before.
//! - **Firing may use the turn's tick.** Deciding what is due compares
//!   deadlines with [`Clock::tick`], read once per turn after `poll` returns
//!   (or later, by an arming read). The tick is never ahead of the true time,
//!   so a timer checked against it can only fire late, never early.
//! - **Rounding never makes a timer early:** a deadline `d` after a call at
//!   tick `t` is armed at `t + ceil(d) + 1`; the call was made before tick
//!   `t + 1`, so the tick it fires at lies at least `d` after the call.
//!
//! Reading the OS clock costs about 20 ns (vDSO); the path of a connection
//! with no timer armed reads it not at all.

use std::cell::Cell;
use std::time::Instant;

/// The reactor's clock ([module docs](self)).
#[derive(Debug)]
pub(crate) struct Clock {
    origin: Instant,
    /// The latest tick read; `UNKNOWN` at the start of a turn.
    cached: Cell<u64>,
    /// Tests drive time by hand.
    #[cfg(test)]
    manual: Option<std::rc::Rc<Cell<u64>>>,
    /// How many times the clock was read (tests).
    #[cfg(test)]
    pub(crate) reads: Cell<u64>,
}

impl Clock {
    const UNKNOWN: u64 = u64::MAX;

    pub(crate) fn new() -> Clock {
        Clock {
            origin: Instant::now(),
            cached: Cell::new(Self::UNKNOWN),
            #[cfg(test)]
            manual: None,
            #[cfg(test)]
            reads: Cell::new(0),
        }
    }

    /// A clock whose time is whatever the test puts in `ms`.
    #[cfg(test)]
    pub(crate) fn manual(ms: std::rc::Rc<Cell<u64>>) -> Clock {
        Clock {
            manual: Some(ms),
            ..Clock::new()
        }
    }

    fn read(&self) -> u64 {
        #[cfg(test)]
        {
            self.reads.set(self.reads.get() + 1);
            if let Some(ms) = &self.manual {
                return ms.get();
            }
        }
        self.origin.elapsed().as_millis() as u64
    }

    /// The time now, read from the OS: what every deadline a call arms
    /// counts from.
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        let t = self.read();
        self.cached.set(t);
        t
    }

    /// This turn's tick, for deciding what is due: read from the OS at most
    /// once per turn, never ahead of the true time.
    #[inline]
    pub(crate) fn tick(&self) -> u64 {
        let t = self.cached.get();
        if t != Self::UNKNOWN {
            return t;
        }
        self.now()
    }

    /// A new turn: the next `tick` reads the OS clock again.
    #[inline]
    pub(crate) fn new_turn(&self) {
        self.cached.set(Self::UNKNOWN);
    }

    /// The tick at which a deadline `after` ticks from now falls due.
    #[inline]
    pub(crate) fn deadline(&self, after: u64) -> u64 {
        self.now().saturating_add(after).saturating_add(1)
    }

    /// [`deadline`](Clock::deadline) for a timeout that may be off: 0 (no
    /// timeout) stays 0, without reading the clock.
    #[inline]
    pub(crate) fn deadline_unless_off(&self, after: u64) -> u64 {
        if after == 0 {
            0
        } else {
            self.deadline(after)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn arming_reads_the_clock_again_after_the_turn_started() {
        let ms = Rc::new(Cell::new(1_000));
        let clock = Clock::manual(ms.clone());
        clock.new_turn();
        assert_eq!(clock.tick(), 1_000);
        ms.set(1_200); // 200 ms of the program's own work
        assert_eq!(clock.deadline(300), 1_501, "counts from the call");
        assert_eq!(clock.tick(), 1_200, "an arming read moves the tick on");
    }

    #[test]
    fn tick_is_read_once_per_turn() {
        let ms = Rc::new(Cell::new(5));
        let clock = Clock::manual(ms.clone());
        clock.new_turn();
        assert_eq!(clock.tick(), 5);
        ms.set(9);
        assert_eq!(clock.tick(), 5, "cached within the turn");
        clock.new_turn();
        assert_eq!(clock.tick(), 9);
    }
}
