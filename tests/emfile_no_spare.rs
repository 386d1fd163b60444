//! Out of descriptors, with a reactor that was made when it could not open
//! its spare descriptor: pending peers must still be answered (turned away),
//! not left waiting in the backlog for as long as the exhaustion lasts.
//! Its own test binary: it exhausts the whole process's descriptors.

mod util;

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};
use util::*;

struct Nop;
impl Handler for Nop {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {}
}

fn hoard_all(hoard: &mut Vec<File>) {
    loop {
        match File::open("/dev/null") {
            Ok(f) => hoard.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(24), "EMFILE: {e}");
                return;
            }
        }
        assert!(hoard.len() < 4096, "RLIMIT_NOFILE was not lowered");
    }
}

#[test]
fn peers_are_answered_even_when_the_spare_could_not_be_made() {
    init();
    lower_nofile(256);
    let mut hoard = Vec::new();
    hoard_all(&mut hoard);
    // Two descriptors free: the poll and its waker, nothing for a spare.
    hoard.truncate(hoard.len() - 2);
    let mut reactor = Reactor::<Nop>::with_config(Config::default()).expect("reactor");
    // Descriptors come back for a while: the reactor listens.
    hoard.truncate(hoard.len() - 20);
    let addr = reactor
        .listen("127.0.0.1:0".parse().unwrap(), |_| Nop)
        .expect("listen");
    // Exhausted again, but for the client's own socket.
    hoard_all(&mut hoard);
    hoard.pop();
    let mut client = std::net::TcpStream::connect(addr).expect("connect");
    client.set_nonblocking(true).unwrap();
    let t0 = Instant::now();
    let mut b = [0u8; 1];
    let answer = loop {
        reactor
            .run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
        match client.read(&mut b) {
            Ok(0) => break "EOF",
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break "reset",
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            other => panic!("unexpected {other:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(3),
            "the peer was left hanging for 3 s"
        );
    };
    println!("peer answered ({answer}) after {:?}", t0.elapsed());
    assert_eq!(reactor.rejected_count(), 1);
    drop(hoard);
}
