//! The promises an outside battery found broken (issue 13), each driven
//! from this thread with `run_once`, so that every interleaving is the one
//! the battery found: nothing here depends on scheduling.
//!
//! 1. a connect's timeout counts from the call, not from the last turn;
//! 2. a handler timer counts from the call, not from the start of the callback;
//! 3. a timer cancelled or re-armed by an earlier `on_timer` of the same
//!    turn does not fire (or fires at its new time);
//! 4. a drain serves the clients already in the listener's backlog;
//! 5. an error our call gets because the peer already reset is `Reset`;
//! 6. an id of one reactor names nothing in another;
//! 7. a group whose start fails stops the workers it started;
//!
//! and: a `Handle` outliving its reactor queues nothing; a drain ended by a
//! shutdown reports done; a connect whose handshake completed and was then
//! reset is `on_open` then `Reset`, every time.

mod util;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hangup::{Balance, CloseReason, Config, Conn, ConnId, Group, Handler, Reactor};

/// What a [`Probe`] saw, with when.
#[derive(Debug, Clone)]
#[allow(dead_code)] // every field shows in a failure's Debug output
enum Seen {
    Open(ConnId),
    Data(ConnId, Vec<u8>),
    Timer(ConnId, Instant),
    /// The id, if `on_open` told it (a failed connect has none).
    Close(Option<ConnId>, CloseReason, Instant),
}

type Log = Rc<RefCell<Vec<Seen>>>;
type Hook = Rc<dyn Fn(&mut Conn<'_>, &Log)>;

/// A handler that logs every callback and runs the test's hooks.
#[derive(Clone)]
struct Probe {
    id: Option<ConnId>,
    log: Log,
    on_open: Option<Hook>,
    on_data: Option<Hook>,
    on_timer: Option<Hook>,
}

impl Probe {
    fn new(log: &Log) -> Probe {
        Probe {
            id: None,
            log: log.clone(),
            on_open: None,
            on_data: None,
            on_timer: None,
        }
    }
}

impl Handler for Probe {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.id = Some(conn.id());
        self.log.borrow_mut().push(Seen::Open(conn.id()));
        if let Some(h) = self.on_open.clone() {
            h(conn, &self.log);
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.log
            .borrow_mut()
            .push(Seen::Data(conn.id(), data.to_vec()));
        if let Some(h) = self.on_data.clone() {
            h(conn, &self.log);
        }
    }
    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        self.log
            .borrow_mut()
            .push(Seen::Timer(conn.id(), Instant::now()));
        if let Some(h) = self.on_timer.clone() {
            h(conn, &self.log);
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        self.log
            .borrow_mut()
            .push(Seen::Close(self.id, reason, Instant::now()));
    }
}

/// Drives `r` until `done` or 10 s.
#[track_caller]
fn drive<H: Handler>(r: &mut Reactor<H>, what: &str, mut done: impl FnMut(&Reactor<H>) -> bool) {
    let end = Instant::now() + util::WAIT;
    while !done(r) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        r.run_once(Some(Duration::from_millis(5))).unwrap();
    }
}

fn closes(log: &Log) -> Vec<(Option<ConnId>, CloseReason, Instant)> {
    log.borrow()
        .iter()
        .filter_map(|s| match s {
            Seen::Close(id, r, at) => Some((*id, r.clone(), *at)),
            _ => None,
        })
        .collect()
}

fn timers(log: &Log) -> Vec<(ConnId, Instant)> {
    log.borrow()
        .iter()
        .filter_map(|s| match s {
            Seen::Timer(id, at) => Some((*id, *at)),
            _ => None,
        })
        .collect()
}

fn opened(log: &Log) -> Vec<ConnId> {
    log.borrow()
        .iter()
        .filter_map(|s| match s {
            Seen::Open(id) => Some(*id),
            _ => None,
        })
        .collect()
}

fn listening(log: &Log, probe: Probe) -> (Reactor<Probe>, SocketAddr) {
    let _ = log;
    let mut r = Reactor::new().unwrap();
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| probe.clone())
        .unwrap();
    (r, addr)
}

#[test]
fn connect_timeout_counts_from_the_call_not_the_last_turn() {
    util::init();
    let (addr, _hole) = util::blackhole();
    let config = Config::default().connect_timeout(Some(Duration::from_millis(300)));
    let mut r = Reactor::with_config(config).unwrap();
    let log = Log::default();
    // A first connect puts a timer in the wheel, so the turn reads the clock.
    r.connect(addr, Probe::new(&Log::default())).unwrap();
    r.run_once(Some(Duration::ZERO)).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // the program's own work
    let called = Instant::now();
    r.connect(addr, Probe::new(&log)).unwrap();
    drive(&mut r, "the connect to time out", |_| {
        !closes(&log).is_empty()
    });
    let (_, reason, at) = closes(&log).pop().unwrap();
    let took = at - called;
    println!("connect_timeout 300 ms, called 200 ms after a turn: ConnectFailed after {took:?}");
    assert!(
        matches!(&reason, CloseReason::ConnectFailed(e) if e.kind() == io::ErrorKind::TimedOut),
        "{reason:?}"
    );
    assert!(took >= Duration::from_millis(300), "early: {took:?}");
}

#[test]
fn handler_timer_counts_from_the_call_not_the_start_of_the_callback() {
    util::init();
    let log = Log::default();
    let called = Rc::new(RefCell::new(None));
    let mut probe = Probe::new(&log);
    let c = called.clone();
    probe.on_data = Some(Rc::new(move |conn, _| {
        conn.set_timer(Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(30)); // the handler's work
        *c.borrow_mut() = Some(Instant::now());
        conn.set_timer(Duration::from_millis(10));
    }));
    let (mut r, addr) = listening(&log, probe);
    let mut client = util::connect(addr);
    client.write_all(b"go").unwrap();
    drive(&mut r, "on_timer", |_| !timers(&log).is_empty());
    let (_, fired) = timers(&log)[0];
    let after = fired - called.borrow().unwrap();
    println!(
        "set_timer(10 ms) after 30 ms of work in the callback: on_timer {after:?} after the call"
    );
    assert!(after >= Duration::from_millis(10), "early: {after:?}");
}

/// Two connections whose timers fall due in the same turn; the first
/// `on_timer` does `what` to the other's timer.
fn two_timers_due_together(what: fn(&mut Conn<'_>)) -> (Log, Vec<(ConnId, Instant)>, Instant) {
    util::init();
    let log = Log::default();
    let ids: Rc<RefCell<Vec<ConnId>>> = Rc::default();
    let mut probe = Probe::new(&log);
    let i = ids.clone();
    probe.on_open = Some(Rc::new(move |conn, _| {
        i.borrow_mut().push(conn.id());
        conn.set_timer(Duration::from_millis(20));
    }));
    let i = ids.clone();
    let first_done = Rc::new(RefCell::new(None::<Instant>));
    let f = first_done.clone();
    probe.on_timer = Some(Rc::new(move |conn, _| {
        if f.borrow().is_some() {
            return;
        }
        let me = conn.id();
        for &other in i.borrow().iter().filter(|&&o| o != me) {
            if let Some(mut o) = conn.other(other) {
                what(&mut o);
            }
        }
        *f.borrow_mut() = Some(Instant::now());
    }));
    let (mut r, addr) = listening(&log, probe);
    let _a = util::connect(addr);
    let _b = util::connect(addr);
    drive(&mut r, "both opened", |_| ids.borrow().len() == 2);
    // Both timers are due by the next turn.
    std::thread::sleep(Duration::from_millis(60));
    r.run_once(Some(Duration::ZERO)).unwrap();
    let in_that_turn = timers(&log);
    let end = Instant::now() + Duration::from_millis(1_500);
    while Instant::now() < end {
        r.run_once(Some(Duration::from_millis(20))).unwrap();
    }
    let first = first_done.borrow().expect("a timer fired");
    let _ = in_that_turn;
    let fired = timers(&log);
    (log, fired, first)
}

#[test]
fn timer_cancelled_by_an_earlier_on_timer_of_the_same_turn_does_not_fire() {
    let (_, fired, _) = two_timers_due_together(|other| other.cancel_timer());
    println!(
        "two timers due in one turn, the first cancels the second: {} fired",
        fired.len()
    );
    assert_eq!(fired.len(), 1, "the cancelled one fired: {fired:?}");
}

#[test]
fn timer_re_armed_by_an_earlier_on_timer_of_the_same_turn_fires_at_its_new_time() {
    let (_, fired, first) =
        two_timers_due_together(|other| other.set_timer(Duration::from_secs(1)));
    assert_eq!(fired.len(), 2, "{fired:?}");
    let after = fired[1].1 - first;
    println!("the first re-arms the second for 1 s: it fired {after:?} after the call");
    assert!(after >= Duration::from_secs(1), "early: {after:?}");
}

#[test]
fn drain_serves_clients_already_in_the_backlog() {
    util::init();
    let log = Log::default();
    let mut probe = Probe::new(&log);
    probe.on_data = Some(Rc::new(|conn, _| {
        conn.write(b"answer\n");
        conn.set_idle(true); // answered: a drain may close it now
    }));
    let (mut r, addr) = listening(&log, probe);
    r.run_once(Some(Duration::ZERO)).unwrap();
    // The handshake completes in the kernel; the reactor has not accepted.
    let mut client = util::connect(addr);
    client.write_all(b"request\n").unwrap();
    r.handle().drain(Duration::from_secs(1));
    drive(&mut r, "the drain to end", |r| r.is_shutdown());
    let mut got = Vec::new();
    let read = client.read_to_end(&mut got);
    println!(
        "client in the backlog when the drain began: read {:?} then {:?}; report {:?}",
        String::from_utf8_lossy(&got),
        read.as_ref().map(|_| "EOF").map_err(|e| e.kind()),
        r.drain_report()
    );
    assert!(read.is_ok(), "the client was reset: {read:?}");
    assert_eq!(got, b"answer\n");
    let report = r.drain_report().unwrap();
    assert_eq!(
        (report.open_at_start, report.closed_idle),
        (1, 1),
        "{report:?}"
    );
}

#[test]
fn our_call_after_the_peers_reset_reports_the_reset() {
    util::init();
    let log = Log::default();
    let (mut r, addr) = listening(&log, Probe::new(&log));
    let client = util::connect(addr);
    drive(&mut r, "the accept", |_| !opened(&log).is_empty());
    let id = opened(&log)[0];
    util::reset(client);
    std::thread::sleep(Duration::from_millis(50)); // the RST arrives, unread
                                                   // Commands run before the turn polls: shutdown_write meets the reset first.
    r.handle().shutdown_write(id);
    drive(&mut r, "the close", |r| r.closed_count() == 1);
    let (_, reason, _) = closes(&log).pop().unwrap();
    println!("peer reset, then our shutdown_write: on_close({reason:?})");
    assert_eq!(reason, CloseReason::Reset);
}

#[test]
fn an_id_of_one_reactor_names_nothing_in_another() {
    util::init();
    let log_a = Log::default();
    let log_b = Log::default();
    let (mut a, addr_a) = listening(&log_a, Probe::new(&log_a));
    let foreign: Rc<RefCell<Option<ConnId>>> = Rc::default();
    let reached = Rc::new(RefCell::new(None::<bool>));
    let mut probe_b = Probe::new(&log_b);
    let (f, got) = (foreign.clone(), reached.clone());
    probe_b.on_data = Some(Rc::new(move |conn, _| {
        let id = f.borrow().expect("a's id");
        let other = conn.other(id);
        *got.borrow_mut() = Some(other.is_some());
        if let Some(mut o) = other {
            o.write(b"crossed\n");
        }
    }));
    let (mut b, addr_b) = listening(&log_b, probe_b);
    let _client_a = util::connect(addr_a);
    let mut client_b = util::connect(addr_b);
    drive(&mut a, "a's accept", |_| !opened(&log_a).is_empty());
    drive(&mut b, "b's accept", |_| !opened(&log_b).is_empty());
    let id_a = opened(&log_a)[0];
    let id_b = opened(&log_b)[0];
    println!("a's connection {id_a:?}, b's {id_b:?}");
    *foreign.borrow_mut() = Some(id_a);
    client_b.write_all(b"x").unwrap();
    drive(&mut b, "b's on_data", |_| reached.borrow().is_some());
    assert_eq!(
        *reached.borrow(),
        Some(false),
        "Conn::other gave b's connection for a's id"
    );
    // Through b's Handle too.
    b.handle().write(id_a, b"crossed\n".to_vec());
    b.handle().close(id_a);
    for _ in 0..20 {
        b.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    client_b.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let got = client_b.read(&mut buf);
    assert!(
        matches!(&got, Err(e) if e.kind() == io::ErrorKind::WouldBlock),
        "b's client got {got:?}"
    );
    assert_eq!(b.connection_count(), 1, "a's id closed b's connection");
}

#[test]
fn a_group_that_fails_to_start_stops_the_workers_it_started() {
    util::init();
    // A port that is free now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let started = Group::start(addr, Config::default(), 2, Balance::Shared, |i| {
        if i == 1 {
            panic!("worker 1's maker fails (on purpose)");
        }
        |_peer| Quiet
    });
    let err = started.expect_err("start fails");
    println!("Group::start: {err}");
    // Worker 0's listener is gone with it: nothing answers there.
    let got = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(
        matches!(&got, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused),
        "worker 0 still serves: {got:?}"
    );
}

struct Quiet;
impl Handler for Quiet {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {}
}

#[test]
fn a_handle_outliving_its_reactor_queues_nothing() {
    util::init();
    let log = Log::default();
    let (r, _) = listening(&log, Probe::new(&log));
    let h = r.handle();
    let id = {
        let mut r2 = Reactor::<Quiet>::new().unwrap();
        let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        r2.connect(server.local_addr().unwrap(), Quiet).unwrap()
    };
    drop(r);
    let before = util::rss_kib();
    for _ in 0..200 {
        h.write(id, vec![7u8; 1 << 20]);
    }
    let grew = util::rss_kib().saturating_sub(before);
    println!("200 x 1 MiB written through a handle of a dropped reactor: RSS +{grew} KiB, is_shutdown {}", h.is_shutdown());
    assert!(
        h.is_shutdown(),
        "the handle does not say its reactor is gone"
    );
    assert!(grew < 20 * 1024, "queued: RSS grew {grew} KiB");
}

#[test]
fn a_drain_ended_by_a_shutdown_reports_done() {
    util::init();
    let log = Log::default();
    let (mut r, addr) = listening(&log, Probe::new(&log));
    let _client = util::connect(addr);
    drive(&mut r, "the accept", |_| !opened(&log).is_empty());
    r.handle().drain(Duration::from_secs(10));
    r.run_once(Some(Duration::ZERO)).unwrap();
    r.handle().shutdown();
    r.run_once(Some(Duration::ZERO)).unwrap();
    let report = r.drain_report().unwrap();
    println!(
        "drain, then shutdown: {report:?}, {} open",
        r.connection_count()
    );
    assert_eq!(r.connection_count(), 0);
    assert!(report.done, "{report:?}");
    assert_eq!(report.forced, 1);
}

#[test]
fn a_connect_accepted_then_reset_is_open_then_reset_every_time() {
    util::init();
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = server.local_addr().unwrap();
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for round in 0..20 {
        let log = Log::default();
        let mut r = Reactor::new().unwrap();
        r.connect(addr, Probe::new(&log)).unwrap();
        let (peer, _) = server.accept().unwrap();
        util::reset(peer);
        if round % 2 == 0 {
            // The reset is there before the reactor first looks.
            std::thread::sleep(Duration::from_millis(20));
        }
        drive(&mut r, "the close", |r| r.closed_count() == 1);
        let opened = !opened(&log).is_empty();
        let (_, reason, _) = closes(&log).pop().unwrap();
        *outcomes
            .entry(format!("on_open {opened}, {}", reason.name()))
            .or_default() += 1;
    }
    println!("accepted then reset, 20 connects: {outcomes:?}");
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    assert_eq!(
        outcomes.get("on_open true, Reset"),
        Some(&20),
        "{outcomes:?}"
    );
}
