//! The peer's orderly FIN: `PeerClosed`, with every byte before it delivered.

mod util;

use std::io::{Read, Write};
use std::net::Shutdown;

use hangup::Config;
use util::*;

#[test]
fn fin_is_peer_closed() {
    let server = Server::start(Config::default(), Script::default());
    let client = connect(server.addr);
    let id = server.opened();
    client.shutdown(Shutdown::Write).unwrap();
    let (closed_id, c) = server.closed();
    assert_eq!(closed_id, id);
    assert_eq!(c.name, "PeerClosed");
    assert_eq!(c.errno, None);
    assert_eq!(c.text, "closed by peer");
    let r = server.stop();
    assert_eq!(r.connections, 0);
}

#[test]
fn data_then_fin_is_delivered_before_close() {
    let server = Server::start(Config::default(), Script::default());
    for size in [1usize, 10, 1000, 100_000, 1_000_000] {
        let mut client = connect(server.addr);
        send(&mut client, &vec![7u8; size]);
        client.shutdown(Shutdown::Write).unwrap();
        let mut data = 0;
        let mut saw_read_closed = false;
        loop {
            match server.next() {
                Ev::Data(_, n) => {
                    assert!(!saw_read_closed, "data after on_read_closed");
                    data += n
                }
                Ev::ReadClosed(_) => saw_read_closed = true,
                Ev::Close(_, c) => {
                    assert_eq!(c.name, "PeerClosed", "size {size}");
                    assert_eq!(c.bytes, size, "size {size}");
                    break;
                }
                _ => {}
            }
        }
        assert_eq!(data, size);
        assert!(saw_read_closed);
    }
}

#[test]
fn small_data_followed_at_once_by_fin_is_reported() {
    // A short read is taken to mean "drained"; the hang-up flag must still
    // lead to the EOF. Repeat to catch either arrival order.
    let server = Server::start(Config::default(), Script::default());
    for i in 0..300 {
        let mut client = connect(server.addr);
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        drop(client); // FIN right behind the data
        let (_, c) = server.closed();
        assert_eq!(c.name, "PeerClosed", "round {i}");
        assert_eq!(c.bytes, 18, "round {i}");
    }
}

#[test]
fn half_closed_peer_is_answered() {
    let script = Script {
        answer_half_close: Some(b"goodbye".to_vec()),
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let mut client = connect(server.addr);
    send(&mut client, b"request");
    client.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"goodbye");
    let (_, c) = server.closed();
    assert_eq!(c.name, "PeerClosed", "the FIN came first");
    assert_eq!(c.bytes, 7);
}

#[test]
fn echo_round_trip() {
    let script = Script {
        echo: true,
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let mut client = connect(server.addr);
    for i in 0..100u32 {
        let msg = format!("message {i}\n");
        send(&mut client, msg.as_bytes());
        let mut got = vec![0u8; msg.len()];
        client.read_exact(&mut got).unwrap();
        assert_eq!(got, msg.as_bytes());
    }
    drop(client);
    assert_eq!(server.closed().1.name, "PeerClosed");
}
