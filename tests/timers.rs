//! Idle timeouts, deadlines and paused reading, on loopback.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};
use util::*;

#[test]
fn silent_peer_is_closed_after_idle_timeout() {
    let idle = Duration::from_millis(300);
    let server = Server::start(
        Config::default().idle_timeout(Some(idle)),
        Script::default(),
    );
    let start = Instant::now();
    let _client = connect(server.addr);
    let (_, c) = server.closed();
    let took = c.at.duration_since(start);
    assert_eq!(c.name, "Idle");
    assert!(took >= idle, "fired early: {took:?}");
    assert!(took < idle + Duration::from_secs(3), "late: {took:?}");
}

#[test]
fn chatty_peer_is_kept_then_closed_when_it_stops() {
    let idle = Duration::from_millis(300);
    let server = Server::start(
        Config::default().idle_timeout(Some(idle)),
        Script::default(),
    );
    let mut client = connect(server.addr);
    server.opened();
    // A byte every 100 ms for 1.2 s: four times the idle timeout, never idle.
    let end = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < end {
        send(&mut client, b".");
        std::thread::sleep(Duration::from_millis(100));
        while let Ok(ev) = server.rx.try_recv() {
            assert!(!matches!(ev, Ev::Close(..)), "chatty peer closed: {ev:?}");
        }
    }
    let stopped = Instant::now();
    let (_, c) = server.closed();
    assert_eq!(c.name, "Idle");
    assert!(c.at.duration_since(stopped) < idle + Duration::from_secs(3));
    assert!(c.bytes >= 10);
}

#[test]
fn per_connection_idle_override() {
    let script = Script {
        idle: Some(Duration::from_millis(200)),
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let start = Instant::now();
    let _client = connect(server.addr);
    let (_, c) = server.closed();
    assert_eq!(c.name, "Idle");
    assert!(c.at.duration_since(start) >= Duration::from_millis(200));
}

#[test]
fn trickling_peer_is_closed_at_its_deadline() {
    // Slowloris: one byte every 100 ms keeps an idle timer of 300 ms happy,
    // but not a deadline of 1 s.
    let deadline = Duration::from_secs(1);
    let script = Script {
        deadline: Some(deadline),
        ..Script::default()
    };
    let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
    let server = Server::start(config, script);
    let start = Instant::now();
    let mut client = connect(server.addr);
    let trickle = std::thread::spawn(move || {
        for _ in 0..40 {
            if client.write_all(b".").is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (_, c) = server.closed();
    let took = c.at.duration_since(start);
    assert_eq!(c.name, "Deadline");
    assert_eq!(c.text, "deadline passed");
    assert!(took >= deadline, "fired early: {took:?}");
    assert!(took < deadline + Duration::from_secs(3), "late: {took:?}");
    assert!(c.bytes >= 5, "the trickle was delivered: {}", c.bytes);
    trickle.join().unwrap();
}

#[test]
fn reset_while_paused_is_reported_promptly() {
    let script = Script {
        pause_after_first: true,
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let mut client = connect(server.addr);
    send(&mut client, b"first");
    loop {
        if let Ev::Data(..) = server.next() {
            break;
        }
    }
    send(&mut client, b"unread while paused");
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    reset(client);
    let (_, c) = server.closed();
    assert_eq!(c.name, "Reset");
    assert!(c.at.duration_since(t) < Duration::from_secs(2));
    assert_eq!(c.bytes, 5, "nothing read while paused");
}

/// Pauses after the request, writes a large answer, resumes when it drained.
struct Pacer {
    tx: std::sync::mpsc::Sender<(usize, Option<&'static str>)>,
    bytes: usize,
}

impl Handler for Pacer {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.bytes += data.len();
        let _ = self.tx.send((self.bytes, None));
        if !conn.is_reading_paused() && self.bytes == data.len() {
            conn.pause_reading();
            conn.write(&vec![b'a'; 32 * 1024 * 1024]);
        }
    }
    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        conn.resume_reading();
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send((self.bytes, Some(reason.name())));
    }
}

#[test]
fn fin_while_paused_is_reported_after_resume_with_all_bytes() {
    init();
    let (tx, rx) = std::sync::mpsc::channel();
    let (atx, arx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let config = Config::default().max_write_buffer(64 * 1024 * 1024);
        let mut r = Reactor::with_config(config).unwrap();
        let tx2 = tx.clone();
        let addr = r
            .listen("127.0.0.1:0".parse().unwrap(), move |_| Pacer {
                tx: tx2.clone(),
                bytes: 0,
            })
            .unwrap();
        atx.send((addr, r.handle())).unwrap();
        drop(tx);
        r.run().unwrap();
    });
    let (addr, handle) = arx.recv().unwrap();
    let mut client = connect(addr);
    client.write_all(b"request").unwrap();
    std::thread::sleep(Duration::from_millis(50));
    client.write_all(b" and the tail").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    // Not reading: the server's answer stays queued, its reading paused.
    let quiet_until = Instant::now() + Duration::from_millis(300);
    while let Some(left) = quiet_until.checked_duration_since(Instant::now()) {
        if let Ok((_, Some(reason))) = rx.recv_timeout(left) {
            panic!("closed ({reason}) while paused");
        }
    }
    let mut answer = Vec::new();
    client.read_to_end(&mut answer).unwrap();
    assert_eq!(answer.len(), 32 * 1024 * 1024);
    let (bytes, reason) = loop {
        if let (b, Some(r)) = rx.recv_timeout(WAIT).expect("close reported") {
            break (b, r);
        }
    };
    assert_eq!(reason, "PeerClosed");
    assert_eq!(bytes, "request and the tail".len());
    handle.shutdown();
    server.join().unwrap();
}
