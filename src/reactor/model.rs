//! Model-based test of the reactor around the state machine: handler timers
//! (set, cancel, re-armed in the same turn, by the connection itself or
//! another), the clock moving between turns and within callbacks, outbound
//! connects with their timeout, and drains with `set_idle`. The reactor is
//! real, with real loopback sockets; only its clock is driven by hand, so
//! that time moves exactly where a step says.
//!
//! Every callback is logged with the clock's time; after each run the log is
//! checked against a plain model:
//!
//! - `on_timer` comes only for a timer armed and neither cancelled, re-armed
//!   to later, nor ended by a close; never before its time (counted from the
//!   call that armed it); at most once per arming; and every timer still
//!   armed on an open connection at the end has fired;
//! - a connect's timeout ends it no earlier than the timeout after the call;
//! - a drain closes as `Drained` only connections marked idle, and forces
//!   the rest (`Shutdown`) no earlier than its grace after the call;
//! - every handler gets exactly one `on_close`, and nothing after it.
//!
//! `HANGUP_REACTOR_MODEL_SEED` replays a run; `HANGUP_REACTOR_MODEL_CASES`
//! sets how many (default 300).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use crate::{CloseReason, Config, Conn, ConnId, Handler, Reactor};

/// Accepted connections per run.
const K: usize = 4;
/// `Config::connect_timeout`, ms.
const CONNECT_MS: u64 = 150;

#[derive(Clone, Copy, Debug)]
enum Op {
    /// The callback works this long (the clock moves).
    Work(u64),
    SetTimer(usize, u64),
    Cancel(usize),
    SetIdle(usize),
    Close(usize),
}

#[derive(Clone, Debug)]
enum Step {
    /// The clock moves between turns.
    Advance(u64),
    Turn,
    /// Connection `j`'s `on_data` runs these ops.
    Callback(usize, Vec<Op>),
    /// Connection `j`'s next `on_timer` runs these ops.
    React(usize, Vec<Op>),
    /// An outbound connect to an address that drops SYNs (true) or refuses.
    Connect(bool),
    Drain(u64),
}

/// What happened, in order, with the clock's time.
#[derive(Clone, Debug)]
enum Ev {
    Open(usize),
    /// Armed at `due` (call time + duration).
    Arm(usize, u64),
    Cancel(usize),
    Idle(usize),
    CloseCall(usize),
    Timer(usize, u64),
    Closed(usize, CloseReason, u64),
    ConnectCall(usize, u64, bool),
    DrainCall(u64, u64),
}

#[derive(Default)]
struct Shared {
    clock: Rc<Cell<u64>>,
    log: RefCell<Vec<Ev>>,
    ids: RefCell<HashMap<usize, ConnId>>,
    scripts: RefCell<HashMap<usize, Vec<Op>>>,
    reactions: RefCell<HashMap<usize, Vec<Op>>>,
    next: Cell<usize>,
}

impl Shared {
    fn now(&self) -> u64 {
        self.clock.get()
    }
    fn push(&self, e: Ev) {
        self.log.borrow_mut().push(e);
    }
}

struct P {
    idx: usize,
    sh: Rc<Shared>,
}

impl P {
    fn run(&self, conn: &mut Conn<'_>, ops: Vec<Op>) {
        let sh = &self.sh;
        for op in ops {
            if let Op::Work(ms) = op {
                sh.clock.set(sh.now() + ms);
                continue;
            }
            let (Op::SetTimer(j, _) | Op::Cancel(j) | Op::SetIdle(j) | Op::Close(j)) = op else {
                unreachable!()
            };
            let Some(&target) = sh.ids.borrow().get(&j) else {
                continue;
            };
            if j == self.idx {
                apply(sh, j, op, conn);
            } else if let Some(mut other) = conn.other(target) {
                apply(sh, j, op, &mut other);
            }
        }
    }
}

/// Does one op to connection `j`, logging it.
fn apply(sh: &Shared, j: usize, op: Op, c: &mut Conn<'_>) {
    match op {
        Op::SetTimer(_, d) => {
            sh.push(Ev::Arm(j, sh.now() + d));
            c.set_timer(Duration::from_millis(d));
        }
        Op::Cancel(_) => {
            c.cancel_timer();
            sh.push(Ev::Cancel(j));
        }
        Op::SetIdle(_) => {
            sh.push(Ev::Idle(j));
            c.set_idle(true);
        }
        Op::Close(_) => {
            sh.push(Ev::CloseCall(j));
            c.close();
        }
        Op::Work(_) => {}
    }
}

impl Handler for P {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.sh.ids.borrow_mut().insert(self.idx, conn.id());
        self.sh.push(Ev::Open(self.idx));
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, _: &[u8]) {
        let ops = self.sh.scripts.borrow_mut().remove(&self.idx);
        if let Some(ops) = ops {
            self.run(conn, ops);
        }
    }
    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        self.sh.push(Ev::Timer(self.idx, self.sh.now()));
        let ops = self.sh.reactions.borrow_mut().remove(&self.idx);
        if let Some(ops) = ops {
            self.run(conn, ops);
        }
    }
    fn on_drain(&mut self, _: &mut Conn<'_>) {}
    fn on_close(&mut self, reason: CloseReason) {
        self.sh.push(Ev::Closed(self.idx, reason, self.sh.now()));
    }
}

fn gen_op(rng: &mut fastrand::Rng) -> Op {
    let j = rng.usize(0..K);
    match rng.u8(0..20) {
        0..=3 => Op::Work(rng.u64(0..=40)),
        4..=10 => Op::SetTimer(j, rng.u64(0..=80)),
        11..=15 => Op::Cancel(j),
        16..=18 => Op::SetIdle(j),
        _ => Op::Close(j),
    }
}

fn gen_steps(rng: &mut fastrand::Rng) -> Vec<Step> {
    let mut steps = Vec::new();
    for _ in 0..rng.usize(5..=40) {
        let ops = |rng: &mut fastrand::Rng, n| (0..rng.usize(1..=n)).map(|_| gen_op(rng)).collect();
        let step = match rng.u8(0..30) {
            0..=6 => Step::Advance(rng.u64(1..=60)),
            7..=12 => Step::Turn,
            13..=19 => Step::Callback(rng.usize(0..K), ops(rng, 4)),
            20..=24 => Step::React(rng.usize(0..K), ops(rng, 3)),
            25 | 26 => Step::Connect(true),
            27 | 28 => Step::Connect(false),
            _ => Step::Drain(rng.u64(0..=200)),
        };
        let drain = matches!(step, Step::Drain(_));
        steps.push(step);
        if drain {
            break;
        }
    }
    steps
}

struct World {
    hole: SocketAddr,
    refused: SocketAddr,
    _hole: (socket2::Socket, Vec<TcpStream>),
}

fn world() -> World {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let hole = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    while fillers.len() < 16 {
        match TcpStream::connect_timeout(&hole, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    World {
        hole,
        refused,
        _hole: (sock, fillers),
    }
}

/// Runs `steps` on a fresh reactor; returns the log.
fn execute(w: &World, steps: &[Step]) -> Vec<Ev> {
    let sh = Rc::new(Shared::default());
    sh.clock.set(1_000);
    let config = Config::default().connect_timeout(Some(Duration::from_millis(CONNECT_MS)));
    let mut r = Reactor::with_manual_clock(config, sh.clock.clone()).unwrap();
    let factory_sh = sh.clone();
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| {
            let idx = factory_sh.next.get();
            factory_sh.next.set(idx + 1);
            P {
                idx,
                sh: factory_sh.clone(),
            }
        })
        .unwrap();
    let mut clients: Vec<TcpStream> = (0..K).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for _ in 0..10_000 {
        if sh.ids.borrow().len() == K {
            break;
        }
        r.run_once(Some(Duration::from_millis(1))).unwrap();
    }
    assert_eq!(sh.ids.borrow().len(), K, "accepted");
    let is_closed = |sh: &Shared, j: usize| {
        sh.log
            .borrow()
            .iter()
            .any(|e| matches!(e, Ev::Closed(i, ..) | Ev::CloseCall(i) if *i == j))
    };
    for step in steps {
        match step {
            Step::Advance(ms) => sh.clock.set(sh.now() + ms),
            Step::Turn => r.run_once(Some(Duration::ZERO)).unwrap(),
            Step::Callback(j, ops) => {
                if is_closed(&sh, *j) || r.is_shutdown() {
                    continue;
                }
                sh.scripts.borrow_mut().insert(*j, ops.clone());
                if clients[*j].write_all(b"x").is_err() {
                    continue;
                }
                for i in 0..2_000 {
                    if !sh.scripts.borrow().contains_key(j) || is_closed(&sh, *j) {
                        break;
                    }
                    if i > 0 {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                    r.run_once(Some(Duration::ZERO)).unwrap();
                }
                sh.scripts.borrow_mut().remove(j);
            }
            Step::React(j, ops) => {
                sh.reactions.borrow_mut().insert(*j, ops.clone());
            }
            Step::Connect(hole) => {
                let idx = sh.next.get();
                sh.next.set(idx + 1);
                sh.push(Ev::ConnectCall(idx, sh.now(), *hole));
                let to = if *hole { w.hole } else { w.refused };
                r.connect(
                    to,
                    P {
                        idx,
                        sh: sh.clone(),
                    },
                )
                .unwrap();
            }
            Step::Drain(grace) => {
                sh.push(Ev::DrainCall(sh.now(), *grace));
                r.handle().drain(Duration::from_millis(*grace));
                r.run_once(Some(Duration::ZERO)).unwrap();
            }
        }
    }
    // Let every timer that is armed come due, in steps, then stop.
    for _ in 0..30 {
        sh.clock.set(sh.now() + 25);
        for _ in 0..3 {
            r.run_once(Some(Duration::ZERO)).unwrap();
        }
    }
    sh.push(Ev::DrainCall(u64::MAX, 0)); // marks the end: no liveness past it
    let end = sh.now();
    sh.log.borrow_mut().push(Ev::Timer(usize::MAX, end));
    drop(r);
    clients.clear();
    let log = sh.log.borrow().clone();
    log
}

/// Checks the log against the model. `Err` names the first event that
/// breaks it.
fn check(log: &[Ev]) -> Result<(), String> {
    #[derive(Default, Clone)]
    struct C {
        open: bool,
        closing: bool,
        closed: bool,
        idle: bool,
        armed: Option<u64>,
        connect_due: Option<u64>,
        outbound: bool,
    }
    let mut cs: HashMap<usize, C> = HashMap::new();
    let mut drain_due: Option<u64> = None;
    let mut end = None;
    for (i, e) in log.iter().enumerate() {
        let at = |what: String| format!("event {i} {e:?}: {what}");
        match e {
            Ev::Open(j) => {
                let c = cs.entry(*j).or_default();
                if c.open || c.closed {
                    return Err(at("opened twice or after close".into()));
                }
                c.open = true;
                c.connect_due = None;
            }
            Ev::Arm(j, due) => {
                let c = cs.entry(*j).or_default();
                c.armed = (c.open && !c.closing && !c.closed).then_some(*due);
            }
            Ev::Cancel(j) => cs.entry(*j).or_default().armed = None,
            Ev::Idle(j) => cs.entry(*j).or_default().idle = true,
            Ev::CloseCall(j) => {
                let c = cs.entry(*j).or_default();
                c.closing = true;
                c.armed = None;
            }
            Ev::Timer(usize::MAX, now) => end = Some(*now),
            Ev::Timer(j, now) => {
                let c = cs.entry(*j).or_default();
                if !c.open || c.closing || c.closed {
                    return Err(at("on_timer on a connection not open".into()));
                }
                match c.armed.take() {
                    None => {
                        return Err(at(
                            "on_timer with no timer armed (cancelled, or already fired)".into(),
                        ))
                    }
                    Some(due) if *now < due => {
                        return Err(at(format!("on_timer {} ms early (due {due})", due - now)))
                    }
                    Some(_) => {}
                }
            }
            Ev::ConnectCall(j, now, hole) => {
                let c = cs.entry(*j).or_default();
                c.outbound = true;
                if *hole {
                    c.connect_due = Some(now + CONNECT_MS);
                }
            }
            Ev::DrainCall(now, grace) => {
                if *now != u64::MAX && drain_due.is_none() {
                    drain_due = Some(now + grace);
                }
            }
            Ev::Closed(j, reason, now) => {
                let c = cs.entry(*j).or_default();
                if c.closed {
                    return Err(at("on_close twice".into()));
                }
                match reason {
                    CloseReason::ConnectFailed(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        match c.connect_due {
                            Some(due) if *now < due => {
                                return Err(at(format!("connect timed out {} ms early", due - now)))
                            }
                            None => return Err(at("connect timeout without a connect".into())),
                            _ => {}
                        }
                    }
                    CloseReason::Drained if !c.idle => {
                        return Err(at("Drained, but never marked idle".into()))
                    }
                    CloseReason::Shutdown if end.is_none() => match drain_due {
                        Some(due) if *now < due => {
                            return Err(at(format!(
                                "forced {} ms before the drain's deadline",
                                due - now
                            )))
                        }
                        None => return Err(at("Shutdown without a drain".into())),
                        _ => {}
                    },
                    _ => {}
                }
                c.closed = true;
                c.armed = None;
            }
        }
        // Nothing after on_close (the end marker aside).
        if let Ev::Timer(j, _) | Ev::Arm(j, _) = e {
            if *j != usize::MAX && cs.get(j).is_some_and(|c| c.closed) && matches!(e, Ev::Timer(..))
            {
                return Err(at("a callback after on_close".into()));
            }
        }
        if let Some(end) = end {
            // Liveness, checked once the clock passed every due time.
            if let Some((j, due)) = cs
                .iter()
                .filter(|(_, c)| c.open && !c.closing && !c.closed)
                .find_map(|(j, c)| c.armed.filter(|&d| d < end).map(|d| (*j, d)))
            {
                return Err(format!(
                    "conn {j}: timer due at {due} never fired (clock at {end})"
                ));
            }
        }
    }
    for (j, c) in &cs {
        if (c.open || c.outbound) && !c.closed {
            return Err(format!("conn {j}: no on_close"));
        }
    }
    Ok(())
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn reactor_model_timers_connects_and_drains_keep_time_and_delivery() {
    let seed = env_u64("HANGUP_REACTOR_MODEL_SEED").unwrap_or_else(|| fastrand::u64(..));
    let cases = env_u64("HANGUP_REACTOR_MODEL_CASES").unwrap_or(300);
    let w = world();
    let mut counts = HashMap::<&str, usize>::new();
    for case in 0..cases {
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(case));
        let steps = gen_steps(&mut rng);
        let log = execute(&w, &steps);
        for e in &log {
            let name = match e {
                Ev::Timer(usize::MAX, _) => continue,
                Ev::Timer(..) => "on_timer",
                Ev::Arm(..) => "set_timer",
                Ev::Cancel(..) => "cancel_timer",
                Ev::Closed(_, r, _) => r.name(),
                Ev::DrainCall(u64::MAX, _) => continue,
                Ev::DrainCall(..) => "drain",
                Ev::ConnectCall(..) => "connect",
                _ => continue,
            };
            *counts.entry(name).or_default() += 1;
        }
        if let Err(e) = check(&log) {
            panic!(
                "HANGUP_REACTOR_MODEL_SEED={seed} case {case}: {e}\nsteps: {steps:#?}\nlog: {log:#?}"
            );
        }
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort();
    println!("reactor model: {cases} runs, HANGUP_REACTOR_MODEL_SEED={seed}: {counts:?}");
    let has = |n: &str| counts.iter().any(|(k, v)| *k == n && *v > 0);
    if cases >= 100 {
        for n in [
            "on_timer",
            "cancel_timer",
            "ConnectFailed",
            "Drained",
            "Shutdown",
            "drain",
        ] {
            assert!(has(n), "no run saw {n}: the generator lost coverage");
        }
    }
}
