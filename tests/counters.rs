//! The reactor's counters (`Counters`): exact for a scripted mix of
//! endings, and, read from another thread during 10,000 connections,
//! whole at every read (`open == accepted + connects_started - closed`) and
//! never going back.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use hangup::{CloseKind, CloseReason, Config, Conn, Counters, Handler, Reactor, Side};

/// Echoes; on `x` closes with 1 MiB queued for a peer that never reads; on
/// `a` aborts.
struct Mix;
impl Handler for Mix {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        match data.first() {
            Some(b'x') => {
                conn.write(&vec![0u8; 8 << 20]);
                conn.close();
            }
            Some(b'a') => conn.abort(),
            _ => conn.write(data),
        }
    }
    fn on_close(&mut self, _: CloseReason) {}
}

fn drive(r: &mut Reactor<Mix>, what: &str, mut done: impl FnMut(&Reactor<Mix>) -> bool) {
    let end = Instant::now() + util::WAIT;
    while !done(r) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        r.run_once(Some(Duration::from_millis(5))).unwrap();
    }
}

#[test]
fn counters_are_exact_for_a_scripted_mix() {
    util::init();
    let config = Config::default()
        .max_connections(6)
        .max_write_buffer(16 << 20)
        .idle_timeout(Some(Duration::from_millis(300)))
        .close_timeout(Duration::from_millis(200))
        .connect_timeout(Some(Duration::from_millis(200)));
    let mut r = Reactor::with_config(config).unwrap();
    let addr = r.listen("127.0.0.1:0".parse().unwrap(), |_| Mix).unwrap();
    let h = r.handle();
    // 1. echo 5 bytes, then FIN.
    let mut fin = TcpStream::connect(addr).unwrap();
    fin.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    fin.set_nonblocking(true).unwrap();
    drive(&mut r, "the echo", |_| {
        fin.peek(&mut back).unwrap_or(0) == 5
    });
    fin.read_exact(&mut back).unwrap();
    fin.shutdown(std::net::Shutdown::Write).unwrap();
    // 2. a reset.
    let rst = TcpStream::connect(addr).unwrap();
    drive(&mut r, "two accepted", |r| r.counters().accepted == 2);
    util::reset(rst);
    // 3. our close with output the peer never reads: FlushTimeout, unsent.
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck.write_all(b"x").unwrap();
    // 4. our abort.
    let mut aborted = TcpStream::connect(addr).unwrap();
    aborted.write_all(b"a").unwrap();
    // 5. silent until the idle timeout.
    let _idle = TcpStream::connect(addr).unwrap();
    drive(&mut r, "five accepted", |r| r.counters().accepted == 5);
    // 6. an outbound connect refused, one that connects and is closed by a handle.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    r.connect(closed_port, Mix).unwrap();
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let out = r.connect(up.local_addr().unwrap(), Mix).unwrap();
    let (_peer, _) = up.accept().unwrap();
    drive(&mut r, "the outbound connect", |r| {
        r.counters().connected == 1
    });
    drive(&mut r, "the first closes", |r| r.counters().closed >= 3);
    h.close(out);
    drive(&mut r, "every close", |r| r.connection_count() == 0);
    let c = r.counters();
    println!("{c:#?}");
    let by_kind: Vec<(CloseKind, u64)> = CloseKind::ALL
        .iter()
        .map(|&k| (k, c.closed_by(k)))
        .filter(|&(_, n)| n > 0)
        .collect();
    println!("closed by kind: {by_kind:?}");
    assert_eq!(c.accepted, 5);
    assert_eq!(
        (c.connects_started, c.connected, c.connect_failed),
        (2, 1, 1)
    );
    assert_eq!(c.closed, 7);
    assert_eq!(c.open, 0);
    assert_eq!(c.closed_by(CloseKind::PeerClosed), 1);
    assert_eq!(c.closed_by(CloseKind::Reset), 1);
    assert_eq!(c.closed_by(CloseKind::FlushTimeout), 1);
    assert_eq!(
        c.closed_by(CloseKind::Local),
        2,
        "the abort and the handle's close"
    );
    assert_eq!(c.closed_by(CloseKind::Idle), 1);
    assert_eq!(c.closed_by(CloseKind::ConnectFailed), 1);
    assert_eq!(c.closed_by_side(Side::Peer), 3, "FIN, reset, refused");
    assert_eq!(c.closed_by_side(Side::Timer), 2, "flush timeout, idle");
    assert_eq!(c.closed_by_side(Side::Handler), 2);
    assert_eq!(c.closed_unsent, 1);
    assert_eq!(
        CloseKind::ALL.iter().map(|&k| c.closed_by(k)).sum::<u64>(),
        c.closed
    );
    assert_eq!(
        Side::ALL.iter().map(|&s| c.closed_by_side(s)).sum::<u64>(),
        c.closed
    );
    assert_eq!(c.bytes_in, 5 + 1 + 1, "hello, x, a");
    assert!(
        c.bytes_out >= 5 && c.bytes_out < 5 + (8 << 20),
        "{}",
        c.bytes_out
    );
    assert_eq!(c.rejected(), 0);
    // The same through the handle, as of the last turn.
    r.run_once(Some(Duration::ZERO)).unwrap();
    assert_eq!(h.counters(), r.counters());
}

#[test]
fn a_full_reactor_counts_whom_it_turned_away() {
    util::init();
    let mut r = Reactor::with_config(Config::default().max_connections(2)).unwrap();
    let addr = r.listen("127.0.0.1:0".parse().unwrap(), |_| Mix).unwrap();
    let _held: Vec<TcpStream> = (0..5).map(|_| TcpStream::connect(addr).unwrap()).collect();
    drive(&mut r, "the turned away", |r| {
        r.counters().rejected_limit == 3
    });
    let c = r.counters();
    assert_eq!((c.accepted, c.open, c.rejected()), (2, 2, 3));
}

#[test]
fn snapshots_from_another_thread_are_whole_and_never_go_back() {
    util::init();
    util::raise_nofile(4096);
    const N: u64 = 10_000;
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        let addr = r.listen("127.0.0.1:0".parse().unwrap(), |_| Mix).unwrap();
        tx.send((addr, r.handle())).unwrap();
        r.run().unwrap();
        r.counters()
    });
    let (addr, h) = rx.recv().unwrap();
    let reader_h = h.clone();
    let reader = std::thread::spawn(move || {
        let mut last = Counters::default();
        let mut reads = 0u64;
        let mut problems = Vec::new();
        while last.closed < N {
            let c = reader_h.counters();
            reads += 1;
            if c.open != c.accepted + c.connects_started - c.closed {
                problems.push(format!("not whole: {c:?}"));
            }
            if c.closed < last.closed || c.accepted < last.accepted || c.bytes_in < last.bytes_in {
                problems.push(format!("went back: {last:?} -> {c:?}"));
            }
            last = c;
        }
        (reads, problems)
    });
    for i in 0..N {
        let mut s = TcpStream::connect(addr).unwrap();
        if i % 2 == 0 {
            s.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
        }
    }
    let (reads, problems) = reader.join().unwrap();
    h.shutdown();
    let c = server.join().unwrap();
    println!(
        "{N} connections: {reads} snapshots read from another thread, {} problems; {c:?}",
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{:?}",
        &problems[..problems.len().min(5)]
    );
    assert_eq!(c.accepted, N);
    assert_eq!(c.bytes_in, N / 2 * 4);
}
