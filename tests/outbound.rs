//! Outbound connections: `Reactor::connect` and `Connector`, every way a
//! connect ends, half-close of this side, and the handlers' own timers.
//! The reactor runs on the test thread (`run_once`), the peers are plain
//! std sockets on loopback.

mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, ConnId, Connector, Handler, Reactor};
use util::{init, set_linger_zero, WAIT};

#[derive(Debug)]
enum Ev {
    Open(ConnId),
    Data(Vec<u8>),
    ReadClosed,
    Timer(Instant),
    Close(&'static str, Option<io::ErrorKind>),
}

#[derive(Clone, Default)]
struct Script {
    hello: Option<&'static [u8]>,
    close_on_open: bool,
    shutdown_on_open: bool,
    /// On the peer's FIN: keep answering instead of closing.
    keep_half_open: bool,
    timer: Option<Duration>,
    close_after_timer_set: bool,
    idle: Option<Duration>,
    deadline: Option<Duration>,
    /// Bytes written in `on_open` (to a peer that does not read).
    flood: usize,
    panic_on_data: bool,
}

struct Out {
    tx: Sender<Ev>,
    script: Script,
}

impl Handler for Out {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Ev::Open(conn.id()));
        if let Some(h) = self.script.hello {
            conn.write(h);
        }
        if let Some(t) = self.script.timer {
            conn.set_timer(t);
        }
        if let Some(t) = self.script.idle {
            conn.set_idle_timeout(Some(t));
        }
        if let Some(t) = self.script.deadline {
            conn.set_deadline(t);
        }
        let chunk = [b'f'; 64 * 1024];
        for _ in 0..self.script.flood / chunk.len() {
            conn.write(&chunk);
        }
        if self.script.close_on_open || self.script.close_after_timer_set {
            conn.close();
        }
        if self.script.shutdown_on_open {
            conn.shutdown_write();
        }
    }
    fn on_data(&mut self, _: &mut Conn<'_>, data: &[u8]) {
        let _ = self.tx.send(Ev::Data(data.to_vec()));
        if self.script.panic_on_data {
            panic!("outbound test: scripted panic");
        }
    }
    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Ev::ReadClosed);
        if !self.script.keep_half_open {
            conn.close();
        }
    }
    fn on_timer(&mut self, _: &mut Conn<'_>) {
        let _ = self.tx.send(Ev::Timer(Instant::now()));
    }
    fn on_close(&mut self, reason: CloseReason) {
        let kind = match &reason {
            CloseReason::ConnectFailed(e) | CloseReason::Error(e) => Some(e.kind()),
            _ => None,
        };
        let _ = self.tx.send(Ev::Close(reason.name(), kind));
    }
}

fn reactor(config: Config) -> (Reactor<Out>, Sender<Ev>, Receiver<Ev>) {
    init();
    let (tx, rx) = channel();
    (Reactor::with_config(config).expect("reactor"), tx, rx)
}

/// Runs the reactor until `rx` yields an event, bounded by `WAIT`.
#[track_caller]
fn next(r: &mut Reactor<Out>, rx: &Receiver<Ev>) -> Ev {
    let end = Instant::now() + WAIT;
    loop {
        if let Ok(ev) = rx.try_recv() {
            return ev;
        }
        assert!(Instant::now() < end, "no event within {WAIT:?}");
        r.run_once(Some(Duration::from_millis(5)))
            .expect("run_once");
    }
}

/// Runs the reactor until `on_close`; returns it and every event before it.
#[track_caller]
fn until_close(
    r: &mut Reactor<Out>,
    rx: &Receiver<Ev>,
) -> (Vec<Ev>, (&'static str, Option<io::ErrorKind>)) {
    let mut before = Vec::new();
    loop {
        match next(r, rx) {
            Ev::Close(name, kind) => return (before, (name, kind)),
            ev => before.push(ev),
        }
    }
}

/// Asserts nothing more arrives for `d`.
#[track_caller]
fn quiet_for(r: &mut Reactor<Out>, rx: &Receiver<Ev>, d: Duration) {
    let end = Instant::now() + d;
    while Instant::now() < end {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
        if let Ok(ev) = rx.try_recv() {
            panic!("unexpected {ev:?}");
        }
    }
}

/// Drives the reactor on this thread while `peer` reads up to our FIN;
/// returns what it read. Bounded by `WAIT`; `peer` is left blocking.
#[track_caller]
fn read_to_eof_while_running(r: &mut Reactor<Out>, peer: &mut TcpStream) -> Vec<u8> {
    peer.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    let end = Instant::now() + WAIT;
    loop {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
        let mut b = [0u8; 64];
        match peer.read(&mut b) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&b[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("{e}"),
        }
        assert!(Instant::now() < end, "no FIN within {WAIT:?}");
    }
    peer.set_nonblocking(false).unwrap();
    got
}

fn listener() -> (TcpListener, SocketAddr) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = l.local_addr().unwrap();
    (l, a)
}

fn accept(l: &TcpListener) -> TcpStream {
    let (s, _) = l.accept().unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

// ---- connect succeeds, then each way the outbound side ends ----

#[test]
fn connected_then_peer_fin_is_peer_closed_with_all_bytes() {
    let (mut r, tx, rx) = reactor(Config::default());
    let (l, addr) = listener();
    let script = Script {
        hello: Some(b"ping"),
        ..Script::default()
    };
    let id = r.connect(addr, Out { tx, script }).unwrap();
    let mut peer = accept(&l);
    assert!(matches!(next(&mut r, &rx), Ev::Open(got) if got == id));
    let mut got = [0u8; 4];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    peer.write_all(b"pong").unwrap();
    drop(peer);
    let (before, reason) = until_close(&mut r, &rx);
    let data: Vec<u8> = before
        .iter()
        .filter_map(|e| match e {
            Ev::Data(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(data, b"pong");
    assert!(before.iter().any(|e| matches!(e, Ev::ReadClosed)));
    assert_eq!(reason, ("PeerClosed", None));
    assert_eq!(r.connection_count(), 0);
}

#[test]
fn connected_then_peer_reset_is_reset() {
    let (mut r, tx, rx) = reactor(Config::default());
    let (l, addr) = listener();
    r.connect(
        addr,
        Out {
            tx,
            script: Script::default(),
        },
    )
    .unwrap();
    let peer = accept(&l);
    assert!(matches!(next(&mut r, &rx), Ev::Open(_)));
    set_linger_zero(&peer);
    drop(peer);
    assert_eq!(until_close(&mut r, &rx).1, ("Reset", None));
}

#[test]
fn connected_then_local_close_delivers_output_then_fin() {
    let (mut r, tx, rx) = reactor(Config::default());
    let (l, addr) = listener();
    let script = Script {
        hello: Some(b"bye"),
        close_on_open: true,
        ..Script::default()
    };
    r.connect(addr, Out { tx, script }).unwrap();
    let mut peer = accept(&l);
    assert!(matches!(next(&mut r, &rx), Ev::Open(_)));
    let got = read_to_eof_while_running(&mut r, &mut peer);
    assert_eq!(got, b"bye");
    drop(peer);
    assert_eq!(until_close(&mut r, &rx).1, ("Local", None));
}

#[test]
fn connected_then_idle_deadline_backpressure_panic_are_reported() {
    let ms = Duration::from_millis;
    let cases = [
        (
            "Idle",
            Script {
                idle: Some(ms(100)),
                ..Script::default()
            },
        ),
        (
            "Deadline",
            Script {
                deadline: Some(ms(100)),
                ..Script::default()
            },
        ),
        (
            "Backpressure",
            Script {
                flood: 16 * 1024 * 1024,
                ..Script::default()
            },
        ),
        (
            "Panicked",
            Script {
                panic_on_data: true,
                ..Script::default()
            },
        ),
    ];
    for (want, script) in cases {
        let config = Config::default().max_write_buffer(256 * 1024);
        let (mut r, tx, rx) = reactor(config);
        let (l, addr) = listener();
        let panics = script.panic_on_data;
        r.connect(addr, Out { tx, script }).unwrap();
        let mut peer = accept(&l); // never reads
        assert!(matches!(next(&mut r, &rx), Ev::Open(_)), "{want}");
        if panics {
            peer.write_all(b"boom").unwrap();
        }
        let (_, reason) = until_close(&mut r, &rx);
        assert_eq!(reason, (want, None), "outbound side");
        quiet_for(&mut r, &rx, Duration::from_millis(20));
        assert_eq!(r.connection_count(), 0);
    }
}

// ---- connects that fail: exactly one on_close, no on_open ----

#[test]
fn refused_is_connect_failed_without_open() {
    let (mut r, tx, rx) = reactor(Config::default());
    let (l, addr) = listener();
    drop(l); // nothing listens there now
    r.connect(
        addr,
        Out {
            tx,
            script: Script::default(),
        },
    )
    .unwrap();
    let (before, reason) = until_close(&mut r, &rx);
    assert!(before.is_empty(), "no on_open: {before:?}");
    assert_eq!(
        reason,
        ("ConnectFailed", Some(io::ErrorKind::ConnectionRefused))
    );
    quiet_for(&mut r, &rx, Duration::from_millis(50));
    assert_eq!((r.connection_count(), r.closed_count()), (0, 1));
}

#[test]
fn connect_timeout_against_a_full_backlog_is_connect_failed_timed_out() {
    // A listener whose accept queue is full drops further SYNs: the connect
    // neither succeeds nor fails until our timeout.
    let (addr, hole) = util::blackhole();
    let config = Config::default().connect_timeout(Some(Duration::from_millis(300)));
    let (mut r, tx, rx) = reactor(config);
    let t0 = Instant::now();
    r.connect(
        addr,
        Out {
            tx,
            script: Script::default(),
        },
    )
    .unwrap();
    let (before, reason) = until_close(&mut r, &rx);
    let took = t0.elapsed();
    println!(
        "connect_timeout 300 ms: ConnectFailed after {took:?} ({} peers fill the backlog)",
        hole.fillers()
    );
    assert!(before.is_empty(), "no on_open: {before:?}");
    assert_eq!(reason, ("ConnectFailed", Some(io::ErrorKind::TimedOut)));
    assert!(took >= Duration::from_millis(290), "{took:?}");
    assert!(took < Duration::from_secs(3), "{took:?}");
}

#[test]
fn error_from_connect_itself_arrives_on_the_next_turn() {
    // connect(2) to a link-local IPv6 address with no interface fails at
    // once with EINVAL, before any packet is sent.
    let (mut r, tx, rx) = reactor(Config::default());
    let addr: SocketAddr = "[fe80::1]:9".parse().unwrap();
    r.connect(
        addr,
        Out {
            tx,
            script: Script::default(),
        },
    )
    .expect("a socket was made: the failure comes through on_close");
    assert!(rx.try_recv().is_err(), "no callback from inside connect()");
    assert_eq!(r.connection_count(), 1);
    r.run_once(Some(Duration::ZERO)).unwrap();
    match rx.try_recv() {
        Ok(Ev::Close("ConnectFailed", Some(kind))) => assert_eq!(kind, io::ErrorKind::InvalidInput),
        other => panic!("wanted ConnectFailed on the next turn, got {other:?}"),
    }
    assert_eq!(r.connection_count(), 0);
}

#[test]
fn shutdown_before_connect_completes_is_one_close() {
    // The connect is under way (not yet seen complete) when the reactor shuts down.
    let (l, addr) = listener();
    let (mut r, tx, rx) = reactor(Config::default());
    r.connect(
        addr,
        Out {
            tx,
            script: Script::default(),
        },
    )
    .unwrap();
    r.handle().shutdown();
    r.run_once(Some(Duration::ZERO)).unwrap();
    let evs: Vec<Ev> = rx.try_iter().collect();
    assert_eq!(evs.len(), 1, "{evs:?}");
    assert!(
        matches!(
            evs[0],
            Ev::Close("Shutdown", None) | Ev::Close("PeerClosed", None)
        ),
        "{evs:?}"
    );
    drop(l);
}

// ---- a connect issued from inside a callback ----

enum Side {
    Client {
        connector: Connector<Side>,
        upstream: SocketAddr,
        tx: Sender<&'static str>,
    },
    Upstream {
        tx: Sender<&'static str>,
    },
}

impl Handler for Side {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        match self {
            Side::Client {
                connector,
                upstream,
                tx,
            } => {
                let up = connector
                    .connect(conn, *upstream, Side::Upstream { tx: tx.clone() })
                    .expect("socket");
                // Reachable at once: written while connecting, sent once connected.
                conn.other(up)
                    .expect("the new connection")
                    .write(b"via on_open\n");
                let _ = tx.send("client open");
            }
            Side::Upstream { tx } => {
                let _ = tx.send("upstream open");
            }
        }
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {
        let tx = match self {
            Side::Client { tx, .. } | Side::Upstream { tx } => tx,
        };
        let _ = tx.send("close");
    }
}

#[test]
fn connect_from_inside_on_open() {
    init();
    let (up, up_addr) = listener();
    let (tx, rx) = channel();
    let mut r = Reactor::new().unwrap();
    let connector = r.connector();
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Side::Client {
            connector: connector.clone(),
            upstream: up_addr,
            tx: tx.clone(),
        })
        .unwrap();
    let client = TcpStream::connect(addr).unwrap();
    let end = Instant::now() + WAIT;
    while r.connection_count() < 2 {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
        assert!(Instant::now() < end);
    }
    let mut from_proxy = accept(&up);
    from_proxy.set_nonblocking(true).unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"\n") {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
        let mut b = [0u8; 64];
        if let Ok(n) = from_proxy.read(&mut b) {
            got.extend_from_slice(&b[..n]);
        }
        assert!(Instant::now() < end, "nothing reached the upstream");
    }
    assert_eq!(got, b"via on_open\n");
    let seen: Vec<_> = rx.try_iter().collect();
    assert_eq!(seen, ["client open", "upstream open"]);
    drop((client, from_proxy));
    while r.connection_count() > 0 {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
        assert!(Instant::now() < end);
    }
    assert_eq!(rx.try_iter().filter(|&s| s == "close").count(), 2);
}

// ---- half-close of this side ----

#[test]
fn shutdown_write_sends_fin_and_keeps_reading() {
    let (mut r, tx, rx) = reactor(Config::default());
    let (l, addr) = listener();
    let script = Script {
        hello: Some(b"request"),
        shutdown_on_open: true,
        keep_half_open: true,
        ..Script::default()
    };
    r.connect(addr, Out { tx, script }).unwrap();
    let mut peer = accept(&l);
    assert!(matches!(next(&mut r, &rx), Ev::Open(_)));
    // The peer reads our request, then our FIN...
    let got = read_to_eof_while_running(&mut r, &mut peer);
    assert_eq!(got, b"request");
    // ...and keeps sending: every byte still arrives.
    let reply = vec![b'r'; 256 * 1024];
    let writer = std::thread::spawn(move || {
        peer.write_all(&reply).unwrap();
        // Then the peer closes too.
    });
    let (before, reason) = until_close(&mut r, &rx);
    writer.join().unwrap();
    let n: usize = before
        .iter()
        .map(|e| match e {
            Ev::Data(d) => d.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(n, 256 * 1024);
    assert!(before.iter().any(|e| matches!(e, Ev::ReadClosed)));
    assert_eq!(reason, ("PeerClosed", None), "both directions done");
}

// ---- the handlers' own timers ----

#[test]
fn timer_fires_once_not_early() {
    let (mut r, tx, rx) = reactor(Config::default());
    let (l, addr) = listener();
    let after = Duration::from_millis(100);
    let script = Script {
        timer: Some(after),
        ..Script::default()
    };
    r.connect(addr, Out { tx, script }).unwrap();
    let peer = accept(&l);
    assert!(matches!(next(&mut r, &rx), Ev::Open(_)));
    let set = Instant::now();
    let Ev::Timer(at) = next(&mut r, &rx) else {
        panic!("wanted on_timer")
    };
    let late = at.duration_since(set).saturating_sub(after);
    println!(
        "timer {after:?}: fired {:?} after set_timer (late by {late:?})",
        at.duration_since(set)
    );
    assert!(
        at.duration_since(set) + Duration::from_millis(1) >= after,
        "early"
    );
    assert!(late < Duration::from_millis(50), "late by {late:?}");
    quiet_for(&mut r, &rx, Duration::from_millis(200));
    drop(peer);
    assert_eq!(until_close(&mut r, &rx).1, ("PeerClosed", None));
}

#[test]
fn timer_is_cancelled_when_the_connection_closes() {
    let (mut r, tx, rx) = reactor(Config::default());
    let (l, addr) = listener();
    let script = Script {
        timer: Some(Duration::from_millis(50)),
        close_after_timer_set: true,
        ..Script::default()
    };
    r.connect(addr, Out { tx, script }).unwrap();
    let peer = accept(&l);
    assert!(matches!(next(&mut r, &rx), Ev::Open(_)));
    drop(peer);
    assert_eq!(until_close(&mut r, &rx).1, ("Local", None));
    quiet_for(&mut r, &rx, Duration::from_millis(150));
}
