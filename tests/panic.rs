//! A panicking handler closes only its own connection (`Panicked`).

mod util;

use std::io::Read;

use hangup::Config;
use util::*;

#[test]
fn panic_closes_only_that_connection() {
    let script = Script {
        echo: true,
        panic_on: Some(b'P'),
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let mut good = connect(server.addr);
    let good_id = server.opened();
    let mut bad = connect(server.addr);
    let bad_id = server.opened();
    send(&mut bad, b"P");
    let (id, c) = server.closed();
    assert_eq!(id, bad_id);
    assert_eq!(c.name, "Panicked");
    assert_eq!(c.text, "handler panicked");
    let mut b = [0u8; 1];
    assert!(
        matches!(bad.read(&mut b), Ok(0) | Err(_)),
        "bad peer is closed"
    );
    // The reactor carries on.
    send(&mut good, b"still here");
    let mut got = [0u8; 10];
    good.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still here");
    drop(good);
    let (id, c) = server.closed();
    assert_eq!(id, good_id);
    assert_eq!(c.name, "PeerClosed");
}
