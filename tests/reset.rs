//! The peer's RST: `Reset` (ECONNRESET), with bytes before it delivered.

mod util;

use std::time::Duration;

use hangup::Config;
use util::*;

#[test]
fn rst_is_reset() {
    let server = Server::start(Config::default(), Script::default());
    let client = connect(server.addr);
    let id = server.opened();
    reset(client);
    let (closed_id, c) = server.closed();
    assert_eq!(closed_id, id);
    assert_eq!(c.name, "Reset");
    assert_eq!(c.errno, Some(104));
    assert_eq!(c.text, "reset by peer");
}

#[test]
fn data_then_rst_is_delivered_before_close() {
    let server = Server::start(Config::default(), Script::default());
    for size in [1usize, 5000, 200_000] {
        let mut client = connect(server.addr);
        server.opened();
        send(&mut client, &vec![1u8; size]);
        // Let the bytes land in the server's receive queue before the RST.
        std::thread::sleep(Duration::from_millis(20));
        reset(client);
        let (_, c) = server.closed();
        assert_eq!(c.name, "Reset", "size {size}");
        assert_eq!(c.bytes, size, "size {size}");
    }
}

#[test]
fn write_to_reset_peer_is_reset() {
    // The server writes after the peer reset: EPIPE/ECONNRESET, still `Reset`.
    let script = Script {
        echo: true,
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let mut client = connect(server.addr);
    send(&mut client, b"x");
    reset(client);
    let (_, c) = server.closed();
    assert_eq!(c.name, "Reset");
}
