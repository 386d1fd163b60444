//! Limits and bad input: max_connections, invalid configs, failed listens.

mod util;

use std::io::{ErrorKind, Read};
use std::time::Duration;

use hangup::{CloseReason, Config, Conn, Handler, Keepalive, Reactor};
use util::*;

struct Nop;
impl Handler for Nop {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {}
}

#[test]
fn max_connections_turns_peers_away_without_a_handler() {
    let server = Server::start(Config::default().max_connections(2), Script::default());
    let a = connect(server.addr);
    let b = connect(server.addr);
    server.opened();
    server.opened();
    let mut c = connect(server.addr);
    let mut buf = [0u8; 1];
    // Closed at once: EOF (or a reset, had it sent data).
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    drop(a);
    assert_eq!(server.closed().1.name, "PeerClosed");
    // Room again: the next peer is served.
    let _d = connect(server.addr);
    server.opened();
    drop(b);
    assert_eq!(server.closed().1.name, "PeerClosed");
    let reactor = server.stop();
    assert_eq!(reactor.rejected, 1);
    assert_eq!(reactor.closed, 3);
}

#[test]
fn invalid_config_is_invalid_input_naming_the_setting() {
    let cases: Vec<(Config, &str)> = vec![
        (Config::default().max_connections(0), "max_connections"),
        (Config::default().max_write_buffer(0), "max_write_buffer"),
        (
            Config::default().idle_timeout(Some(Duration::ZERO)),
            "idle_timeout",
        ),
        (
            Config::default().user_timeout(Some(Duration::ZERO)),
            "user_timeout",
        ),
        (
            Config::default().keepalive(Some(Keepalive::new(Duration::from_millis(100)))),
            "keepalive idle",
        ),
    ];
    for (config, name) in cases {
        let err = Reactor::<Nop>::with_config(config).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}");
        assert!(err.to_string().contains(name), "{err} names {name}");
    }
}

#[test]
fn failed_listen_names_the_address() {
    let mut r1 = Reactor::new().unwrap();
    let addr = r1.listen("127.0.0.1:0".parse().unwrap(), |_| Nop).unwrap();
    let mut r2 = Reactor::new().unwrap();
    let err = r2.listen(addr, |_| Nop).expect_err("address in use");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // An address this machine does not have.
    let err = r2
        .listen("192.0.2.1:80".parse().unwrap(), |_| Nop)
        .expect_err("not local");
    assert!(err.to_string().contains("192.0.2.1:80"), "{err}");
}
