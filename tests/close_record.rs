//! The close record (`Ctx::record` in `on_close_with`): for a scripted mix
//! of endings, the exact side, phase, bytes, unsent output and history, in
//! order; and the one-line `Display`.

mod util;

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

use hangup::{
    CloseKind, CloseReason, CloseRecord, Config, Conn, Ctx, EndPhase, Handler, Reactor, Side,
};

type Records = Rc<RefCell<Vec<CloseRecord>>>;

/// Echoes; `^` half-closes; `x` closes with 8 MiB queued; `i` marks idle.
struct Rec {
    records: Records,
}

impl Handler for Rec {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        match data.first() {
            Some(b'^') => conn.shutdown_write(),
            Some(b'x') => {
                conn.write(&vec![0u8; 8 << 20]);
                conn.close();
            }
            Some(b'i') => conn.set_idle(true),
            _ => conn.write(data),
        }
    }
    fn on_close(&mut self, _: CloseReason) {}
    fn on_close_with(&mut self, _: CloseReason, ctx: &mut Ctx<'_, Self>) {
        let record = *ctx.record().expect("a record at close");
        println!("{record}");
        self.records.borrow_mut().push(record);
    }
}

fn drive(r: &mut Reactor<Rec>, what: &str, mut done: impl FnMut(&Reactor<Rec>) -> bool) {
    let end = Instant::now() + util::WAIT;
    while !done(r) {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        r.run_once(Some(Duration::from_millis(5))).unwrap();
    }
}

fn history(r: &CloseRecord) -> String {
    r.detail.expect("records on").history.to_string()
}

#[test]
fn each_ending_gives_its_exact_record() {
    util::init();
    let records = Records::default();
    let config = Config::default()
        .close_records(true)
        .max_write_buffer(16 << 20)
        .close_timeout(Duration::from_millis(200))
        .idle_timeout(Some(Duration::from_millis(400)));
    let mut r = Reactor::with_config(config).unwrap();
    let rc = records.clone();
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Rec {
            records: rc.clone(),
        })
        .unwrap();
    let done = |n: usize| move |r: &Reactor<Rec>| r.closed_count() as usize >= n;

    // 1. five bytes echoed, then the peer's FIN.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"hello").unwrap();
    let mut back = [0u8; 5];
    c.set_nonblocking(true).unwrap();
    drive(&mut r, "the echo", |_| c.peek(&mut back).unwrap_or(0) == 5);
    c.read_exact(&mut back).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    drive(&mut r, "close 1", done(1));
    // 2. a reset.
    let c = TcpStream::connect(addr).unwrap();
    drive(&mut r, "accept 2", |r| r.counters().accepted == 2);
    util::reset(c);
    drive(&mut r, "close 2", done(2));
    // 3. we half-close, then the peer's FIN.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"^").unwrap();
    c.set_nonblocking(false).unwrap();
    let mut rest = Vec::new();
    let reader = std::thread::spawn(move || {
        c.read_to_end(&mut rest).unwrap();
        c.shutdown(std::net::Shutdown::Write).unwrap();
        rest.len()
    });
    drive(&mut r, "close 3", done(3));
    assert_eq!(reader.join().unwrap(), 0);
    // 4. output the peer never reads: the flush is cut by the close timeout.
    let mut stuck = TcpStream::connect(addr).unwrap();
    stuck.write_all(b"x").unwrap();
    drive(&mut r, "close 4", done(4));
    // 5. silent: the idle timeout.
    let _silent = TcpStream::connect(addr).unwrap();
    drive(&mut r, "close 5", done(5));
    // 6. an outbound connect refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    r.connect(
        closed,
        Rec {
            records: records.clone(),
        },
    )
    .unwrap();
    drive(&mut r, "close 6", done(6));
    // 7. marked idle, then a drain closes it.
    let mut idle = TcpStream::connect(addr).unwrap();
    idle.write_all(b"i").unwrap();
    drive(&mut r, "accept 7", |r| {
        r.counters().bytes_in == 5 + 1 + 1 + 1
    });
    r.handle().drain(Duration::from_secs(2));
    drop(idle);
    drive(&mut r, "close 7", done(7));

    let recs = records.borrow();
    let by = |k: CloseKind| {
        *recs
            .iter()
            .find(|r| r.kind == k)
            .unwrap_or_else(|| panic!("no {k:?}"))
    };
    let fin = by(CloseKind::PeerClosed);
    assert_eq!(
        (fin.side, fin.phase),
        (Side::Peer, EndPhase::PeerHalfClosed)
    );
    let d = fin.detail.unwrap();
    assert_eq!((d.bytes_in, d.bytes_out, fin.unsent), (5, 5, 0));
    assert_eq!(history(&fin), "open peer-fin close");
    assert!(d.detected_after.is_some());

    let rst = by(CloseKind::Reset);
    assert_eq!((rst.side, rst.phase), (Side::Peer, EndPhase::Open));
    assert_eq!(history(&rst), "open peer-reset");
    assert_eq!(rst.errno, Some(104));

    let half = recs[2];
    assert_eq!(half.kind, CloseKind::PeerClosed);
    assert_eq!(half.phase, EndPhase::PeerHalfClosed);
    assert_eq!(history(&half), "open shutdown-write peer-fin close");

    let flush = by(CloseKind::FlushTimeout);
    assert_eq!((flush.side, flush.phase), (Side::Timer, EndPhase::Flushing));
    assert!(flush.unsent > 0, "{flush:?}");
    assert_eq!(history(&flush), "open close timer");
    assert!(flush.detail.unwrap().timer_late.is_some());

    let idle = by(CloseKind::Idle);
    assert_eq!((idle.side, idle.phase), (Side::Timer, EndPhase::Open));
    assert_eq!(history(&idle), "open timer");
    let lifetime = idle.detail.unwrap().lifetime;
    assert!(lifetime >= Duration::from_millis(400), "{lifetime:?}");

    let refused = by(CloseKind::ConnectFailed);
    assert_eq!(
        (refused.side, refused.phase),
        (Side::Peer, EndPhase::Connecting)
    );
    assert_eq!(history(&refused), "");

    let drained = by(CloseKind::Drained);
    assert_eq!(
        (drained.side, drained.phase),
        (Side::Reactor, EndPhase::WaitingForPeerFin)
    );
    assert!(
        history(&drained).starts_with("open drain"),
        "{}",
        history(&drained)
    );

    let line = fin.to_string();
    assert!(
        line.contains("ended by peer while peer half-closed: closed by peer after")
            && line.contains("in 5 B out 5 B (0 B unsent)")
            && line.ends_with("[open peer-fin close]"),
        "{line}"
    );
}

#[test]
fn without_close_records_the_record_still_tells_who_and_when() {
    util::init();
    let records = Records::default();
    let mut r = Reactor::new().unwrap();
    let rc = records.clone();
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Rec {
            records: rc.clone(),
        })
        .unwrap();
    let c = TcpStream::connect(addr).unwrap();
    drive(&mut r, "accept", |r| r.counters().accepted == 1);
    util::reset(c);
    drive(&mut r, "close", |r| r.closed_count() == 1);
    let rec = records.borrow()[0];
    assert_eq!(
        (rec.kind, rec.side, rec.phase),
        (CloseKind::Reset, Side::Peer, EndPhase::Open)
    );
    assert!(rec.detail.is_none());
    assert!(
        rec.to_string()
            .ends_with("reset by peer (errno 104) (0 B unsent)"),
        "{rec}"
    );
}

#[test]
fn latency_percentiles_are_within_a_bucket_of_each_close_measured() {
    util::init();
    let records = Records::default();
    let mut r = Reactor::with_config(Config::default().close_latency(true)).unwrap();
    let rc = records.clone();
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Rec {
            records: rc.clone(),
        })
        .unwrap();
    const N: usize = 300;
    let peers: Vec<TcpStream> = (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();
    drive(&mut r, "accepts", |r| r.counters().accepted == N as u64);
    for p in peers {
        util::reset(p);
    }
    drive(&mut r, "closes", |r| r.closed_count() == N as u64);
    let mut measured: Vec<Duration> = records
        .borrow()
        .iter()
        .map(|rec| rec.detail.unwrap().detected_after.expect("a socket close"))
        .collect();
    measured.sort();
    let exact = |p: f64| measured[((N as f64 * p).ceil() as usize).clamp(1, N) - 1];
    let lat = r.latency().expect("measured");
    assert_eq!(lat.count(CloseKind::Reset), N as u64);
    for p in [0.5, 0.99] {
        let got = lat.percentile(CloseKind::Reset, p).unwrap();
        let truth = exact(p);
        println!("p{}: histogram {got:?}, measured {truth:?}", p * 100.0);
        // The bucket's upper bound: at or above the truth, under twice it (+1 µs).
        let us = Duration::from_micros(1);
        assert!(
            got + us >= truth && got <= truth * 2 + us,
            "p{p}: {got:?} vs {truth:?}"
        );
    }
    assert_eq!(
        lat.max(CloseKind::Reset),
        Some(Duration::from_micros(measured[N - 1].as_micros() as u64))
    );
    // The handle reads the same from another thread.
    assert_eq!(r.handle().latency().unwrap(), lat);
}

/// Captures TCP_INFO in `on_open` (per connection), and writes 8 MiB and
/// closes on `x`.
struct Info {
    records: Records,
}

impl Handler for Info {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.capture_tcp_info();
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        if data.first() == Some(&b'x') {
            conn.write(&vec![0u8; 8 << 20]);
            conn.close();
        } else {
            conn.write(data);
        }
    }
    fn on_close(&mut self, _: CloseReason) {}
    fn on_close_with(&mut self, _: CloseReason, ctx: &mut Ctx<'_, Self>) {
        let record = *ctx.record().expect("a record");
        println!("{record}");
        self.records.borrow_mut().push(record);
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_tcp_info_snapshot_is_taken_before_the_descriptor_closes_when_asked() {
    util::init();
    let records = Records::default();
    let config = Config::default()
        .max_write_buffer(16 << 20)
        .close_timeout(Duration::from_millis(200));
    let mut r = Reactor::with_config(config).unwrap();
    let rc = records.clone();
    let addr = r
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Info {
            records: rc.clone(),
        })
        .unwrap();
    // An echo, then the peer's FIN.
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"hi").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    c.set_nonblocking(true).unwrap();
    let end = Instant::now() + util::WAIT;
    while r.closed_count() < 1 {
        assert!(Instant::now() < end);
        r.run_once(Some(Duration::from_millis(5))).unwrap();
        let _ = c.read_to_end(&mut got);
    }
    // Output the peer never reads: cut by the close timeout.
    let mut stuck = TcpStream::connect(addr).unwrap();
    socket2::SockRef::from(&stuck)
        .set_recv_buffer_size(4096)
        .unwrap();
    stuck.write_all(b"x").unwrap();
    drive_info(&mut r, 2);
    let recs = records.borrow();
    let fin = recs[0].tcp_info.expect("asked for");
    println!("FIN: {fin:?}");
    assert!(
        fin.rtt > Duration::ZERO && fin.rtt < Duration::from_millis(100),
        "{fin:?}"
    );
    assert_eq!(fin.notsent_bytes, 0);
    let cut = recs[1].tcp_info.expect("asked for");
    println!("cut flush: {cut:?}");
    assert!(
        cut.notsent_bytes > 0 || cut.unacked > 0,
        "data still in flight: {cut:?}"
    );
    assert!(recs[1].to_string().contains(", rtt "), "{}", recs[1]);
    drop(recs);
    // Not asked for: none.
    let mut plain = Reactor::with_config(Config::default()).unwrap();
    let rc = records.clone();
    let addr = plain
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Rec {
            records: rc.clone(),
        })
        .unwrap();
    drop(TcpStream::connect(addr).unwrap());
    let end = Instant::now() + util::WAIT;
    while plain.closed_count() < 1 {
        assert!(Instant::now() < end);
        plain.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    assert!(records.borrow()[2].tcp_info.is_none());
}

fn drive_info(r: &mut Reactor<Info>, n: u64) {
    let end = Instant::now() + util::WAIT;
    while r.closed_count() < n {
        assert!(Instant::now() < end, "closes");
        r.run_once(Some(Duration::from_millis(5))).unwrap();
    }
}
