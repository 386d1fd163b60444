//! Graceful drain: listeners close at once, idle connections close without a
//! reset, busy ones finish, the rest are forced at the deadline, and `run`
//! returns within grace + 1 s. Also: adopting a blocking std listener, and
//! handing listeners out without closing them.

mod util;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Conn, Handler, Reactor};
use util::{init, WAIT};

/// A line protocol: answers "ok <line>" for each full line, idle between
/// lines; says goodbye when a drain begins.
struct Lines {
    pending: Vec<u8>,
    tx: std::sync::mpsc::Sender<&'static str>,
}

impl Handler for Lines {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.set_idle(true);
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.pending.extend_from_slice(data);
        while let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=i).collect();
            conn.write(b"ok ");
            conn.write(&line);
        }
        // Idle only between lines: a half-sent line is a request in progress.
        conn.set_idle(self.pending.is_empty());
    }
    fn on_drain(&mut self, conn: &mut Conn<'_>) {
        conn.write(b"bye\n");
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(reason.name());
    }
}

fn read_line(r: &mut BufReader<TcpStream>) -> String {
    let mut s = String::new();
    r.read_line(&mut s).unwrap();
    s
}

#[test]
fn drain_closes_idle_at_once_lets_busy_finish_and_forces_the_rest() {
    init();
    let (tx, rx) = std::sync::mpsc::channel();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // A Reactor stays on the thread that made it: it is not Send.
    let server = std::thread::spawn(move || {
        let mut reactor = Reactor::new().unwrap();
        let addr = reactor
            .listen("127.0.0.1:0".parse().unwrap(), move |_| Lines {
                pending: Vec::new(),
                tx: tx.clone(),
            })
            .unwrap();
        ready_tx.send((addr, reactor.handle())).unwrap();
        reactor.run().unwrap();
        reactor.drain_report().expect("a drain happened")
    });
    let (addr, handle) = ready_rx.recv_timeout(WAIT).unwrap();
    let connect = || {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        BufReader::new(s)
    };
    // Two idle (a request answered), two busy (half a line sent), one stuck.
    let mut idle: Vec<_> = (0..2).map(|_| connect()).collect();
    for c in &mut idle {
        c.get_mut().write_all(b"hello\n").unwrap();
        assert_eq!(read_line(c), "ok hello\n");
    }
    let mut busy: Vec<_> = (0..2).map(|_| connect()).collect();
    for c in &mut busy {
        c.get_mut().write_all(b"half a ").unwrap();
    }
    let mut stuck = connect();
    stuck.get_mut().write_all(b"never finished").unwrap();
    std::thread::sleep(Duration::from_millis(50));

    let grace = Duration::from_millis(600);
    let t0 = Instant::now();
    handle.drain(grace);

    // Idle connections: goodbye, then a clean EOF (no reset), at once.
    for c in &mut idle {
        assert_eq!(read_line(c), "bye\n");
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("a FIN, not a reset");
        assert!(rest.is_empty());
    }
    let idle_closed_after = t0.elapsed();
    // A new client is refused: its SYN is dropped while the listener settles,
    // and its retry (about 1 s later) meets the closed listener.
    let newcomer = std::thread::spawn(move || {
        let t = Instant::now();
        (TcpStream::connect(addr), t.elapsed())
    });
    // Busy connections finish their request and are answered, then closed
    // (idle again) by the drain.
    for c in &mut busy {
        assert_eq!(read_line(c), "bye\n");
        c.get_mut().write_all(b"line\n").unwrap();
        assert_eq!(read_line(c), "ok half a line\n");
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).expect("a FIN, not a reset");
    }
    // The stuck one is closed at the deadline.
    assert_eq!(read_line(&mut stuck), "bye\n");
    let mut rest = Vec::new();
    let _ = stuck.read_to_end(&mut rest);
    let report = server.join().unwrap();
    let took = t0.elapsed();
    let (refused, refused_after) = newcomer.join().unwrap();
    println!("a client arriving during the drain: {refused:?} after {refused_after:?}");
    assert!(
        matches!(&refused, Err(e) if e.kind() == io::ErrorKind::ConnectionRefused),
        "new clients are refused during a drain: {refused:?}"
    );
    assert!(refused_after < Duration::from_secs(4), "{refused_after:?}");
    let reasons: Vec<_> = rx.try_iter().collect();
    println!(
        "drain, grace {grace:?}: idle closed after {idle_closed_after:?}, run returned after {took:?}; \
         {report:?}; reasons {reasons:?}"
    );
    assert!(
        idle_closed_after < Duration::from_millis(300),
        "{idle_closed_after:?}"
    );
    assert!(took >= grace, "forced only at the deadline: {took:?}");
    assert!(took < grace + Duration::from_secs(1), "{took:?}");
    assert_eq!(report.open_at_start, 5);
    assert_eq!(
        (report.closed_idle, report.finished, report.forced),
        (4, 0, 1),
        "the busy ones closed idle after finishing their request"
    );
    assert!(report.done);
    assert_eq!(reasons.iter().filter(|&&r| r == "Drained").count(), 4);
    assert_eq!(reasons.iter().filter(|&&r| r == "Shutdown").count(), 1);
}

#[test]
fn drain_with_nothing_open_returns_at_once() {
    init();
    let (tx, _rx) = std::sync::mpsc::channel();
    let mut reactor = Reactor::new().unwrap();
    reactor
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Lines {
            pending: Vec::new(),
            tx: tx.clone(),
        })
        .unwrap();
    reactor.handle().drain(Duration::from_secs(30));
    let t0 = Instant::now();
    reactor.run().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(reactor.drain_report().map(|r| r.done), Some(true));
}

struct Echo;
impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }
    fn on_close(&mut self, _: CloseReason) {}
}

#[test]
fn adopted_blocking_listener_does_not_hang_the_loop() {
    init();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut reactor = Reactor::new().unwrap();
    let addr = reactor.listen_std(std_listener, |_| Echo).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"ping").unwrap();
    c.set_nonblocking(true).unwrap();
    let end = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < 4 {
        // Each turn returns: accept ends in WouldBlock, not in a blocked call.
        let t = Instant::now();
        reactor.run_once(Some(Duration::from_millis(10))).unwrap();
        assert!(t.elapsed() < Duration::from_secs(1), "a turn blocked");
        let mut b = [0u8; 8];
        if let Ok(n) = c.read(&mut b) {
            got.extend_from_slice(&b[..n]);
        }
        assert!(Instant::now() < end);
    }
    assert_eq!(got, b"ping");
}

#[test]
fn take_listeners_hands_them_over_without_refusing_anyone() {
    init();
    let mut old = Reactor::new().unwrap();
    let addr: SocketAddr = old
        .listen("127.0.0.1:0".parse().unwrap(), |_| Echo)
        .unwrap();
    let listeners = old.take_listeners();
    assert_eq!(listeners.len(), 1);
    assert!(old.local_addrs().is_empty());
    // A client arriving now waits in the backlog: not refused.
    let mut c = TcpStream::connect(addr).expect("not refused during the hand-over");
    c.write_all(b"still there").unwrap();
    drop(old); // the old reactor goes; the socket lives on in `listeners`
    let mut new = Reactor::new().unwrap();
    let l = listeners.into_iter().next().unwrap();
    assert_eq!(new.listen_std(l, |_| Echo).unwrap(), addr);
    c.set_nonblocking(true).unwrap();
    let end = Instant::now() + WAIT;
    let mut got = Vec::new();
    while got.len() < 11 {
        new.run_once(Some(Duration::from_millis(10))).unwrap();
        let mut b = [0u8; 16];
        if let Ok(n) = c.read(&mut b) {
            got.extend_from_slice(&b[..n]);
        }
        assert!(Instant::now() < end, "the new reactor never answered");
    }
    assert_eq!(got, b"still there");
}
