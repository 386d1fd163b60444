//! A hierarchical timing wheel for per-connection deadlines. Pure: time is a
//! tick count (milliseconds since the reactor started) passed in by the caller.
//!
//! Every operation on one key is O(1): `schedule` links the key into a slot
//! (unlinking it first if it was elsewhere), `cancel` unlinks it. The links are
//! intrusive, indexed by the connection's slot key, so nothing allocates once
//! the link table has grown to the largest key. `advance` visits only slots
//! that hold entries (an occupancy bitmap per level), so connections whose
//! timers are not due cost nothing.
//!
//! The reactor schedules each connection once, at its earliest deadline, and
//! re-arms lazily: moving a deadline later (an idle timer on every read) only
//! stores the new time in the connection; when the old slot fires, the
//! reactor sees nothing is due yet and schedules it again. This is the same
//! trade as quinn-proto's `TimerTable` and the Linux kernel's timer wheel.
//!
//! Delivery is checked again: `advance` marks each key it returns as fired,
//! and the caller delivers a key only if [`Wheel::take_fired`] says it is
//! still so. A key cancelled or scheduled again by an earlier delivery of the
//! same batch (one handler's `on_timer` cancelling or re-arming another's) is
//! no longer fired, and is skipped.

const BITS: u32 = 6;
const SLOTS: usize = 1 << BITS; // 64 slots per level
const MASK: u64 = SLOTS as u64 - 1;
const LEVELS: usize = 5; // 64^5 ms ≈ 12.4 days before entries are clamped
const SPAN: u64 = 1 << (BITS as u64 * LEVELS as u64);
const NIL: u32 = u32::MAX;
/// `Link::slot` of a key that came due in an `advance` and waits for its
/// delivery ([`Wheel::take_fired`]).
const FIRED: u32 = u32::MAX - 1;

#[derive(Clone, Copy, Debug)]
struct Link {
    prev: u32,
    next: u32,
    /// The tick this entry is due (may lie past the wheel's span).
    at: u64,
    /// (level << BITS) | slot while linked; `FIRED` when due and not yet
    /// delivered; `NIL` otherwise.
    slot: u32,
}

const UNLINKED: Link = Link {
    prev: NIL,
    next: NIL,
    at: 0,
    slot: NIL,
};

#[derive(Debug)]
pub(crate) struct Wheel {
    /// The last tick processed.
    now: u64,
    heads: [[u32; SLOTS]; LEVELS],
    occupied: [u64; LEVELS],
    links: Vec<Link>,
    len: usize,
    /// Keys marked fired and not yet taken or cleared.
    fired: usize,
}

impl Wheel {
    pub(crate) fn new() -> Wheel {
        Wheel {
            now: 0,
            heads: [[NIL; SLOTS]; LEVELS],
            occupied: [0; LEVELS],
            links: Vec::new(),
            len: 0,
            fired: 0,
        }
    }

    /// Number of scheduled keys.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is scheduled and nothing fired waits for delivery:
    /// then `cancel` has nothing to do.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.len == 0 && self.fired == 0
    }

    /// The tick `key` is scheduled for, if it is.
    pub(crate) fn scheduled(&self, key: usize) -> Option<u64> {
        match self.links.get(key) {
            Some(l) if l.slot != NIL && l.slot != FIRED => Some(l.at),
            _ => None,
        }
    }

    fn is_linked(&self, key: usize) -> bool {
        self.links
            .get(key)
            .is_some_and(|l| l.slot != NIL && l.slot != FIRED)
    }

    /// Whether `key` came due in the last `advance` and was neither
    /// cancelled nor scheduled again since; clears the mark. The caller
    /// delivers the key only if this is true.
    pub(crate) fn take_fired(&mut self, key: usize) -> bool {
        match self.links.get_mut(key) {
            Some(l) if l.slot == FIRED => {
                l.slot = NIL;
                self.fired -= 1;
                true
            }
            _ => false,
        }
    }

    /// Schedules `key` at tick `at`, replacing any earlier schedule. An `at`
    /// in the past fires on the next `advance`.
    pub(crate) fn schedule(&mut self, key: usize, at: u64) {
        assert!(key < NIL as usize, "timer key out of range");
        if key >= self.links.len() {
            self.links.resize(key + 1, UNLINKED);
        }
        if self.is_linked(key) {
            self.unlink(key);
        } else if self.links[key].slot == FIRED {
            self.fired -= 1;
        }
        self.links[key].at = at;
        self.link(key);
    }

    /// Removes `key`'s schedule, if any, and its fired mark if it came due
    /// but was not delivered yet.
    pub(crate) fn cancel(&mut self, key: usize) {
        if self.is_linked(key) {
            self.unlink(key);
        } else if let Some(l) = self.links.get_mut(key) {
            if l.slot == FIRED {
                l.slot = NIL;
                self.fired -= 1;
            }
        }
    }

    /// The earliest tick at which `advance` has work to do, if any: a lower
    /// bound for the next expiry, suitable as a poll timeout.
    pub(crate) fn next_tick(&self) -> Option<u64> {
        self.next_slot().map(|(t, _)| t)
    }

    /// The next slot to process: its tick and level. Lower levels always
    /// come due before higher ones, so the first occupied level has it.
    fn next_slot(&self) -> Option<(u64, usize)> {
        (0..LEVELS).find_map(|level| self.next_in_level(level).map(|t| (t, level)))
    }

    /// Advances to tick `now`, pushing every key due at or before it into
    /// `expired` (unlinked, marked fired: see [`Wheel::take_fired`]). Keys whose slot came up but whose time has not
    /// are moved to a finer slot.
    pub(crate) fn advance(&mut self, now: u64, expired: &mut Vec<usize>) {
        while let Some((t, level)) = self.next_slot() {
            if t > now {
                break;
            }
            self.now = self.now.max(t);
            self.process(t, level, expired);
        }
        self.now = self.now.max(now);
    }

    fn next_in_level(&self, level: usize) -> Option<u64> {
        let bits = self.occupied[level];
        if bits == 0 {
            return None;
        }
        let shift = BITS as u64 * level as u64;
        let now_slot = (self.now >> shift) & MASK;
        // Slots are visited in rotation order starting at the current one.
        let rotated = bits.rotate_right(now_slot as u32);
        let offset = rotated.trailing_zeros() as u64;
        let slot = (now_slot + offset) & MASK;
        let level_span = 1u64 << (shift + BITS as u64);
        let base = self.now & !(level_span - 1);
        let mut t = base + (slot << shift);
        if t < self.now & !((1u64 << shift) - 1) {
            // The slot lies in the next rotation of this level.
            t += level_span;
        }
        Some(t.max(self.now))
    }

    /// Drains the slot of `level` due at `t`: entries due fire, the others
    /// move to a finer slot.
    fn process(&mut self, t: u64, level: usize, expired: &mut Vec<usize>) {
        let shift = BITS as u64 * level as u64;
        let slot = ((t >> shift) & MASK) as usize;
        let mut key = self.heads[level][slot];
        self.heads[level][slot] = NIL;
        self.occupied[level] &= !(1u64 << slot);
        while key != NIL {
            let k = key as usize;
            key = self.links[k].next;
            self.links[k] = Link {
                slot: NIL,
                prev: NIL,
                next: NIL,
                ..self.links[k]
            };
            self.len -= 1;
            if self.links[k].at <= t {
                self.links[k].slot = FIRED;
                self.fired += 1;
                expired.push(k);
            } else {
                self.link(k);
            }
        }
    }

    fn link(&mut self, key: usize) {
        let at = self.links[key].at.max(self.now + 1);
        // The level is set by the highest bit group in which `at` and `now`
        // differ; entries past the span wait in the last slot of the top
        // level of this rotation and are re-linked when it comes up.
        let place = if (at ^ self.now) >= SPAN {
            // At the very last tick of a rotation, wait for the next tick.
            (self.now | (SPAN - 1)).max(self.now + 1)
        } else {
            at
        };
        let diff = (place ^ self.now) | MASK;
        // `now + 1` across a rotation boundary lands in level 0's slot 0,
        // which `next_in_level` reads as the next rotation.
        let level = ((63 - diff.leading_zeros()) / BITS) as usize;
        let level = if level >= LEVELS { 0 } else { level };
        let shift = BITS as u64 * level as u64;
        let slot = ((place >> shift) & MASK) as usize;
        let head = self.heads[level][slot];
        self.links[key].prev = NIL;
        self.links[key].next = head;
        self.links[key].slot = ((level as u32) << BITS) | slot as u32;
        if head != NIL {
            self.links[head as usize].prev = key as u32;
        }
        self.heads[level][slot] = key as u32;
        self.occupied[level] |= 1u64 << slot;
        self.len += 1;
    }

    fn unlink(&mut self, key: usize) {
        let Link {
            prev, next, slot, ..
        } = self.links[key];
        let level = (slot >> BITS) as usize;
        let s = (slot & MASK as u32) as usize;
        if prev == NIL {
            self.heads[level][s] = next;
            if next == NIL {
                self.occupied[level] &= !(1u64 << s);
            }
        } else {
            self.links[prev as usize].next = next;
        }
        if next != NIL {
            self.links[next as usize].prev = prev;
        }
        self.links[key].slot = NIL;
        self.links[key].prev = NIL;
        self.links[key].next = NIL;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fire(w: &mut Wheel, now: u64) -> Vec<usize> {
        let mut v = Vec::new();
        w.advance(now, &mut v);
        v.sort();
        v
    }

    #[test]
    fn empty_wheel_has_no_next_tick() {
        let mut w = Wheel::new();
        assert_eq!(w.next_tick(), None);
        assert!(fire(&mut w, 1_000_000).is_empty());
    }

    #[test]
    fn fires_at_its_tick_never_early() {
        for at in [
            1u64, 5, 63, 64, 65, 100, 4095, 4096, 4097, 300_000, 70_000_000,
        ] {
            let mut w = Wheel::new();
            w.schedule(3, at);
            assert!(w.next_tick().unwrap() <= at, "{at}");
            assert!(fire(&mut w, at - 1).is_empty(), "{at} fired early");
            assert_eq!(fire(&mut w, at), vec![3], "{at}");
            assert_eq!(w.len(), 0);
            assert_eq!(w.scheduled(3), None);
        }
    }

    #[test]
    fn stepping_one_tick_at_a_time_fires_exactly_once() {
        let mut w = Wheel::new();
        let times: Vec<u64> = (0..200).map(|i| 1 + i * 37 % 5000).collect();
        for (k, &t) in times.iter().enumerate() {
            w.schedule(k, t);
        }
        let mut seen = vec![0u32; times.len()];
        for now in 0..=5001 {
            for k in fire(&mut w, now) {
                assert_eq!(times[k], now, "key {k}");
                seen[k] += 1;
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }

    #[test]
    fn reschedule_and_cancel_are_exact() {
        let mut w = Wheel::new();
        w.schedule(1, 100);
        w.schedule(2, 100);
        w.schedule(1, 50); // earlier
        w.schedule(2, 5000); // later
        w.schedule(3, 70);
        w.cancel(3);
        w.cancel(3); // twice is harmless
        assert_eq!(w.len(), 2);
        assert_eq!(fire(&mut w, 60), vec![1]);
        assert_eq!(fire(&mut w, 4999), Vec::<usize>::new());
        assert_eq!(fire(&mut w, 5000), vec![2]);
    }

    #[test]
    fn fired_keys_cancelled_or_rescheduled_before_delivery_are_skipped() {
        let mut w = Wheel::new();
        for k in 0..4 {
            w.schedule(k, 10);
        }
        let batch = fire(&mut w, 10);
        assert_eq!(batch, vec![0, 1, 2, 3]);
        // Delivering 0 cancels 1 and re-arms 2 for later.
        assert!(w.take_fired(0));
        w.cancel(1);
        w.schedule(2, 1_010);
        assert!(!w.take_fired(1), "cancelled after it came due");
        assert!(!w.take_fired(2), "re-armed after it came due");
        assert!(w.take_fired(3));
        assert!(!w.take_fired(3), "delivered once");
        assert_eq!(w.len(), 1);
        assert_eq!(w.scheduled(2), Some(1_010));
        assert!(
            fire(&mut w, 1_009).is_empty(),
            "the re-armed one is not early"
        );
        assert_eq!(fire(&mut w, 1_010), vec![2]);
        assert!(!w.is_idle(), "a fired key waits for its delivery");
        assert!(w.take_fired(2));
        assert!(w.is_idle());
    }

    #[test]
    fn past_due_fires_on_next_advance() {
        let mut w = Wheel::new();
        assert!(fire(&mut w, 1000).is_empty());
        w.schedule(0, 10);
        assert_eq!(fire(&mut w, 1001), vec![0]);
    }

    #[test]
    fn big_jump_fires_everything_due() {
        let mut w = Wheel::new();
        for k in 0..1000 {
            w.schedule(k, 1 + (k as u64) * 1000);
        }
        let got = fire(&mut w, 500_000);
        assert_eq!(got, (0..500).collect::<Vec<_>>());
        assert_eq!(w.len(), 500);
    }

    #[test]
    fn next_tick_is_lower_bound_of_earliest() {
        let mut w = Wheel::new();
        fire(&mut w, 12_345);
        w.schedule(9, 12_345 + 10_000);
        w.schedule(8, 12_345 + 300);
        let next = w.next_tick().unwrap();
        assert!(next <= 12_345 + 300 && next > 12_345);
        // Advancing to each next_tick eventually fires key 8 at its time.
        loop {
            let now = w.next_tick().unwrap();
            let f = fire(&mut w, now);
            if !f.is_empty() {
                assert_eq!(f, vec![8]);
                assert_eq!(now, 12_345 + 300);
                break;
            }
        }
    }

    #[test]
    fn far_future_is_clamped_and_still_exact() {
        let mut w = Wheel::new();
        let far = SPAN * 3 + 17;
        w.schedule(0, far);
        let mut now = 0;
        let mut polls = 0;
        while w.len() > 0 {
            now = w.next_tick().unwrap();
            let f = fire(&mut w, now);
            polls += 1;
            if !f.is_empty() {
                break;
            }
        }
        assert_eq!(now, far);
        assert!(polls < 40, "{polls}");
    }

    #[test]
    fn clamped_entry_at_rotation_end_does_not_spin() {
        let mut w = Wheel::new();
        let end = SPAN - 1;
        fire(&mut w, end);
        w.schedule(0, end + SPAN * 2);
        let mut steps = 0;
        loop {
            let t = w.next_tick().unwrap();
            if !fire(&mut w, t).is_empty() {
                break;
            }
            steps += 1;
            assert!(steps < 100, "spinning at {}", w.now);
        }
        assert_eq!(w.now, end + SPAN * 2);
    }
}
