//! Timer storm: 100,000 random `set_timer` / `cancel_timer` / re-arm calls
//! over 1,000 connections, made from inside `on_timer` callbacks (to the
//! connection itself and, through `Conn::other`, to others, so that many
//! fall in the batch being delivered), with some callbacks working a few
//! milliseconds and some connections closed on the way. Checked against a
//! model, with the real clock: every timer armed fires once, never before
//! its time counted from the call that armed it, never after it was
//! cancelled or re-armed to later, and never after `on_close` (nor between
//! `close()` and it).
//!
//! Connection 0 paces the storm: its timer re-arms itself every
//! millisecond, each time making 40 calls, until the calls are spent; no
//! other call touches it.
//!
//! `HANGUP_TIMER_STORM_SEED` replays the random choices (timing is real);
//! `HANGUP_TIMER_STORM_CALLS` sets the number of calls (default 100,000).

mod util;

use std::cell::RefCell;
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, ConnId, Handler, Reactor};
use util::*;

const CONNS: usize = 1_000;

#[derive(Default)]
struct Slot {
    id: Option<ConnId>,
    /// When the armed timer is due: the call's time plus its duration.
    due: Option<Instant>,
    closing: bool,
    closed: bool,
}

#[derive(Default)]
struct World {
    slots: Vec<Slot>,
    calls: u64,
    budget: u64,
    fires: u64,
    /// How late the fires were, in µs (for the figures).
    late_us: Vec<u64>,
    problems: Vec<String>,
    rng: Option<fastrand::Rng>,
    closes_asked: u64,
}

impl World {
    fn rng(&mut self) -> &mut fastrand::Rng {
        self.rng.as_mut().unwrap()
    }
}

struct Storm {
    me: usize,
    w: Rc<RefCell<World>>,
}

impl Storm {
    /// A few random calls, to this connection or others.
    fn calls(&self, conn: &mut Conn<'_>, n: usize) {
        for _ in 0..n {
            let mut w = self.w.borrow_mut();
            if w.calls >= w.budget {
                return;
            }
            w.calls += 1;
            // Connection 0 is the pacer: no call targets it but its own.
            let target = if w.rng().u8(0..4) == 0 && self.me != 0 {
                self.me
            } else {
                w.rng().usize(1..CONNS)
            };
            let Some(id) = w.slots[target].id else {
                continue;
            };
            let what = w.rng().u8(0..100);
            let after = Duration::from_millis(w.rng().u64(0..=40));
            let work = w.rng().u8(0..200) == 0;
            drop(w);
            if work {
                std::thread::sleep(Duration::from_millis(3)); // a callback that works
            }
            if target == self.me {
                self.call(conn, target, what, after);
            } else if let Some(mut other) = conn.other(id) {
                self.call(&mut other, target, what, after);
            }
        }
    }

    /// One call to connection `target` (`c`), recorded in the model.
    fn call(&self, c: &mut Conn<'_>, target: usize, what: u8, after: Duration) {
        let mut w = self.w.borrow_mut();
        match what {
            0..=59 => {
                let s = &mut w.slots[target];
                let due = Instant::now() + after;
                c.set_timer(after);
                if !s.closing && !s.closed {
                    s.due = Some(due);
                }
            }
            60..=97 => {
                c.cancel_timer();
                w.slots[target].due = None;
            }
            _ => {
                w.closes_asked += 1;
                w.slots[target].closing = true;
                w.slots[target].due = None;
                c.close();
            }
        }
    }
}

impl Handler for Storm {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.w.borrow_mut().slots[self.me].id = Some(conn.id());
        conn.set_timer(Duration::from_millis(5));
        self.w.borrow_mut().slots[self.me].due = Some(Instant::now() + Duration::from_millis(5));
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        let now = Instant::now();
        {
            let mut w = self.w.borrow_mut();
            w.fires += 1;
            let me = self.me;
            let s = &mut w.slots[me];
            let problem = if s.closed {
                Some("on_timer after on_close".to_string())
            } else if s.closing {
                Some("on_timer after close()".to_string())
            } else {
                match s.due.take() {
                    None => {
                        Some("on_timer with no timer armed (cancelled, or fired already)".into())
                    }
                    Some(due) if now < due => Some(format!("on_timer {:?} early", due - now)),
                    Some(due) => {
                        let late = (now - due).as_micros() as u64;
                        w.late_us.push(late);
                        None
                    }
                }
            };
            if let Some(p) = problem {
                w.problems.push(format!("conn {me}: {p}"));
            }
        }
        let n = if self.me == 0 {
            40
        } else {
            self.w.borrow_mut().rng().usize(1..=6)
        };
        self.calls(conn, n);
        // The pacer keeps the storm going until the calls are spent.
        let mut w = self.w.borrow_mut();
        if self.me == 0 && w.calls < w.budget {
            let after = Duration::from_millis(1);
            w.slots[0].due = Some(Instant::now() + after);
            conn.set_timer(after);
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        let mut w = self.w.borrow_mut();
        if w.slots[self.me].closed {
            w.problems.push(format!("conn {}: on_close twice", self.me));
        }
        let s = &mut w.slots[self.me];
        s.closed = true;
        s.due = None;
        if !matches!(reason, CloseReason::Local | CloseReason::Shutdown) {
            w.problems.push(format!("conn {}: {reason:?}", self.me));
        }
    }
}

#[test]
fn timer_storm_each_timer_once_never_early_never_after_cancel_or_close() {
    init();
    let seed = seed("HANGUP_TIMER_STORM_SEED");
    let budget: u64 = env_u64("HANGUP_TIMER_STORM_CALLS").unwrap_or(100_000);
    println!(
        "timer storm: {budget} calls over {CONNS} connections, HANGUP_TIMER_STORM_SEED={seed}"
    );
    raise_nofile(4 * CONNS as u64);
    let w = Rc::new(RefCell::new(World {
        slots: (0..CONNS).map(|_| Slot::default()).collect(),
        budget,
        rng: Some(fastrand::Rng::with_seed(seed)),
        ..World::default()
    }));
    let config = Config::default()
        .max_connections(4 * CONNS)
        .close_timeout(Duration::from_millis(200));
    let mut r = Reactor::with_config(config).unwrap();
    let next = Rc::new(RefCell::new(0usize));
    let (fw, fnext) = (w.clone(), next.clone());
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| {
            let me = *fnext.borrow();
            *fnext.borrow_mut() += 1;
            Storm { me, w: fw.clone() }
        })
        .unwrap();
    let mut clients = Vec::with_capacity(CONNS);
    for _ in 0..CONNS {
        clients.push(TcpStream::connect(addr).unwrap());
        r.run_once(Some(Duration::ZERO)).unwrap();
    }
    let t0 = Instant::now();
    let deadline = t0 + Duration::from_secs(60);
    // The storm: until the calls are spent and every armed timer has fired.
    loop {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
        let w = w.borrow();
        let armed = w.slots.iter().filter(|s| s.due.is_some()).count();
        if w.calls >= budget && armed == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "storm not over in 60 s: {armed} armed, {} calls",
            w.calls
        );
    }
    let took = t0.elapsed();
    drop(r);
    drop(clients);
    let w = w.borrow();
    let mut late = w.late_us.clone();
    late.sort_unstable();
    let pct = |p: f64| late[((late.len() - 1) as f64 * p) as usize];
    println!(
        "timer storm: {} calls in {took:.2?}: {} fires, {} closes asked; late by p50 {} us, p99 {} us, max {} us; {} problems",
        w.calls,
        w.fires,
        w.closes_asked,
        pct(0.5),
        pct(0.99),
        late.last().unwrap(),
        w.problems.len()
    );
    assert_eq!(w.calls, budget);
    assert!(
        w.problems.is_empty(),
        "HANGUP_TIMER_STORM_SEED={seed}: {} problems, first: {:?}",
        w.problems.len(),
        &w.problems[..w.problems.len().min(10)]
    );
}
