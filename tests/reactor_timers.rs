//! The reactor's own timers (`Reactor::set_timer`, `set_periodic`,
//! `Ctx::*`): a storm of 10,000 random one-shot and periodic set/cancel
//! calls, each timer checked with the real clock: fires on time, never
//! early, never after it was cancelled, one-shots once; periodic timers keep
//! their period. And: none fires after the reactor stopped.
//!
//! `HANGUP_REACTOR_TIMERS_SEED` replays the random choices.

mod util;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Conn, Ctx, Handler, Reactor, TimerId};

struct Quiet;
impl Handler for Quiet {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {}
}

#[derive(Default)]
struct Model {
    /// One-shots: when due (call + duration), and whether cancelled.
    once: HashMap<TimerId, (Instant, bool)>,
    /// Periodic: (armed at, period, fire times, cancelled).
    every: HashMap<TimerId, (Instant, Duration, Vec<Instant>, bool)>,
    fired_once: usize,
    calls: usize,
    problems: Vec<String>,
}

type M = Rc<RefCell<Model>>;

fn set_once(ctx: &mut Ctx<'_, Quiet>, m: &M, after: Duration) {
    let due = Instant::now() + after;
    let m2 = m.clone();
    let cell = Rc::new(RefCell::new(None::<TimerId>));
    let me = cell.clone();
    let id = ctx.set_timer(after, move |_| {
        let now = Instant::now();
        let id = me.borrow().expect("id");
        let mut m = m2.borrow_mut();
        m.fired_once += 1;
        let problem = match m.once.remove(&id) {
            None => Some(format!("{id:?} fired twice")),
            Some((_, true)) => Some(format!("{id:?} fired after cancel")),
            Some((due, false)) if now < due => Some(format!("{id:?} {:?} early", due - now)),
            Some(_) => None,
        };
        m.problems.extend(problem);
    });
    *cell.borrow_mut() = Some(id);
    m.borrow_mut().once.insert(id, (due, false));
}

fn set_every(ctx: &mut Ctx<'_, Quiet>, m: &M, period: Duration) {
    let armed = Instant::now();
    let m2 = m.clone();
    let cell = Rc::new(RefCell::new(None::<TimerId>));
    let me = cell.clone();
    let id = ctx.set_periodic(period, move |_| {
        let now = Instant::now();
        let id = me.borrow().expect("id");
        let mut m = m2.borrow_mut();
        let Some((armed, period, fires, cancelled)) = m.every.get_mut(&id) else {
            return;
        };
        let n = fires.len() as u32 + 1;
        let earliest = *armed + *period * n;
        let problem = if *cancelled {
            Some(format!("{id:?} fired after cancel"))
        } else if now < earliest {
            Some(format!("{id:?} fire {n} {:?} early", earliest - now))
        } else {
            None
        };
        fires.push(now);
        m.problems.extend(problem);
    });
    *cell.borrow_mut() = Some(id);
    m.borrow_mut()
        .every
        .insert(id, (armed, period, Vec::new(), false));
}

#[test]
fn reactor_timers_storm_on_time_never_early_never_after_cancel() {
    util::init();
    let seed = std::env::var("HANGUP_REACTOR_TIMERS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    const CALLS: usize = 10_000;
    println!("reactor timers: {CALLS} calls, HANGUP_REACTOR_TIMERS_SEED={seed}");
    let m: M = Rc::default();
    let rng = Rc::new(RefCell::new(fastrand::Rng::with_seed(seed)));
    let mut r = Reactor::<Quiet>::new().unwrap();
    let (m2, rng2) = (m.clone(), rng.clone());
    // The pacer: every millisecond, a few random calls.
    let pacer = r.set_periodic(Duration::from_millis(1), move |ctx| {
        for _ in 0..5 {
            if m2.borrow().calls >= CALLS {
                return;
            }
            m2.borrow_mut().calls += 1;
            let what = rng2.borrow_mut().u8(0..10);
            match what {
                0..=4 => {
                    let d = Duration::from_millis(rng2.borrow_mut().u64(0..=50));
                    set_once(ctx, &m2, d);
                }
                5 => {
                    let p = Duration::from_millis(rng2.borrow_mut().u64(10..=30));
                    set_every(ctx, &m2, p);
                }
                _ => {
                    // Cancel a random armed timer, one-shot or periodic.
                    let mut m = m2.borrow_mut();
                    let pick_once = rng2.borrow_mut().u8(0..20) != 0;
                    let ids: Vec<TimerId> = if pick_once {
                        m.once
                            .iter()
                            .filter(|(_, v)| !v.1)
                            .map(|(k, _)| *k)
                            .collect()
                    } else {
                        m.every
                            .iter()
                            .filter(|(_, v)| !v.3)
                            .map(|(k, _)| *k)
                            .collect()
                    };
                    if ids.is_empty() {
                        continue;
                    }
                    let id = ids[rng2.borrow_mut().usize(..ids.len())];
                    if pick_once {
                        m.once.get_mut(&id).unwrap().1 = true;
                    } else {
                        m.every.get_mut(&id).unwrap().3 = true;
                    }
                    drop(m);
                    assert!(ctx.cancel_timer(id), "{id:?} was armed");
                }
            }
        }
    });
    let t0 = Instant::now();
    while m.borrow().calls < CALLS {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "storm not over in 60 s"
        );
        r.run_once(Some(Duration::from_millis(50))).unwrap();
    }
    r.cancel_timer(pacer);
    // Every one-shot still armed comes due within 51 ms; periodic ones keep going.
    let end = Instant::now() + Duration::from_millis(300);
    while Instant::now() < end {
        r.run_once(Some(Duration::from_millis(20))).unwrap();
    }
    let m = m.borrow();
    let unfired: Vec<_> = m.once.iter().filter(|(_, v)| !v.1).collect();
    // Periodic: the mean interval of each timer that fired often enough.
    let mut worst = Duration::ZERO;
    let mut periodic = 0;
    for (armed, period, fires, _) in m.every.values() {
        if fires.len() < 5 {
            continue;
        }
        periodic += 1;
        let n = fires.len() as u32;
        // Fire k (from 1) is due k periods after the call, to the 1 ms tick:
        // how far the last one lies from its due time says if the period held.
        let last = *fires.last().unwrap();
        let due = *armed + *period * n;
        worst = worst.max(last.saturating_duration_since(due));
    }
    println!(
        "reactor timers: {} calls in {:.2?}: {} one-shots fired, {} unfired, {} periodic timers checked, \
         last fire at most {:?} after its due time; {} problems",
        m.calls,
        t0.elapsed(),
        m.fired_once,
        unfired.len(),
        periodic,
        worst,
        m.problems.len()
    );
    assert!(
        m.problems.is_empty(),
        "HANGUP_REACTOR_TIMERS_SEED={seed}: {:?}",
        &m.problems[..m.problems.len().min(10)]
    );
    assert!(
        unfired.is_empty(),
        "one-shots never fired: {}",
        unfired.len()
    );
    assert!(
        periodic > 50,
        "too few periodic timers to judge: {periodic}"
    );
    assert!(
        worst < Duration::from_millis(50),
        "a periodic timer fell behind by {worst:?}"
    );
}

#[test]
fn no_reactor_timer_fires_after_the_reactor_stopped() {
    util::init();
    let fired = Rc::new(RefCell::new(0));
    let mut r = Reactor::<Quiet>::new().unwrap();
    for d in [0u64, 5, 20] {
        let f = fired.clone();
        r.set_timer(Duration::from_millis(d), move |_| *f.borrow_mut() += 1);
    }
    let f = fired.clone();
    r.set_periodic(Duration::from_millis(1), move |_| *f.borrow_mut() += 100);
    r.handle().shutdown();
    r.run().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    for _ in 0..5 {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    assert_eq!(*fired.borrow(), 0, "a timer fired after shutdown");
}
