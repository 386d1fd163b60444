//! Closing first, under each `LingeringClose` policy, on real sockets: the
//! server answers a request and closes; the client reads the answer.
//!
//! - `Always` (the default) waits for the client's FIN before the socket
//!   is closed and `on_close` is called.
//! - `WhenUnread` closes as soon as the answer is handed to the kernel when
//!   the request was read to the end of what had arrived, and the client
//!   still gets every byte and a clean EOF; with input left unread it
//!   lingers as `Always` does, so no reset destroys the answer.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use hangup::{Config, LingeringClose};
use util::*;

/// Reads until EOF; returns the byte count, or the error that ended it.
fn read_to_eof(c: &mut TcpStream) -> Result<usize, std::io::Error> {
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    loop {
        match c.read(&mut buf) {
            Ok(0) => return Ok(got),
            Ok(n) => got += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

fn config(policy: LingeringClose) -> Config {
    // A close timeout far longer than any wait below: a close that waits
    // for the client's FIN cannot end on its own during the test.
    Config::default()
        .lingering_close(policy)
        .close_timeout(Duration::from_secs(60))
}

#[test]
fn the_default_waits_for_the_peers_fin() {
    assert_eq!(
        Config::default().get_lingering_close(),
        LingeringClose::Always
    );
    let script = Script {
        reply_close: Some(1000),
        ..Script::default()
    };
    let server = Server::start(config(LingeringClose::Always), script);
    let mut client = connect(server.addr);
    client.write_all(b"request").unwrap();
    assert_eq!(read_to_eof(&mut client).unwrap(), 1000);
    // Our FIN came, but the socket stays open until the client's.
    server.no_close_within(Duration::from_millis(300));
    client.shutdown(Shutdown::Write).unwrap();
    let (_, c) = server.closed();
    assert_eq!(c.name, "Local");
}

#[test]
fn when_unread_closes_once_the_answer_is_handed_over() {
    let script = Script {
        reply_close: Some(1000),
        ..Script::default()
    };
    let server = Server::start(config(LingeringClose::WhenUnread), script);
    let mut client = connect(server.addr);
    client.write_all(b"request").unwrap();
    // Closed (and reported) without the client's FIN: the client keeps its
    // socket open throughout.
    let (_, c) = server.closed_within(Duration::from_secs(10));
    assert_eq!(c.name, "Local");
    assert_eq!(
        read_to_eof(&mut client).unwrap(),
        1000,
        "every byte, then EOF"
    );
}

#[test]
fn when_unread_loses_nothing_of_a_large_answer() {
    // 4 MiB: far more than the socket buffers hold, so the close waits in
    // Flushing for the client to read, then closes without the FIN wait.
    const SIZE: usize = 4 << 20;
    let script = Script {
        reply_close: Some(SIZE),
        ..Script::default()
    };
    let server = Server::start(config(LingeringClose::WhenUnread), script);
    for _ in 0..5 {
        let mut client = connect(server.addr);
        client.write_all(b"request").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(read_to_eof(&mut client).unwrap(), SIZE);
        let (_, c) = server.closed_within(Duration::from_secs(10));
        assert_eq!(c.name, "Local");
        drop(client);
    }
}

#[test]
fn when_unread_lingers_with_input_left_unread() {
    // Reads of 64 bytes: the first read of a 10,000-byte request fills the
    // buffer, so the socket is not known to be empty when the handler
    // closes. The close must linger: the client gets the whole answer and
    // an EOF, never a reset, and on_close waits for the client's FIN.
    let script = Script {
        reply_close: Some(100_000),
        ..Script::default()
    };
    let server = Server::start(
        config(LingeringClose::WhenUnread).read_buffer_size(64),
        script,
    );
    for _ in 0..20 {
        let mut client = connect(server.addr);
        client.write_all(&[b'r'; 10_000]).unwrap();
        match read_to_eof(&mut client) {
            Ok(n) => assert_eq!(n, 100_000),
            Err(e) => {
                panic!("the answer was cut by {e}: input left unread was answered with a reset")
            }
        }
        server.no_close_within(Duration::from_millis(100));
        client.shutdown(Shutdown::Write).unwrap();
        let (_, c) = server.closed();
        assert_eq!(c.name, "Local");
    }
}

#[test]
fn when_unread_after_the_peers_fin_closes_at_once_under_either_policy() {
    for policy in [LingeringClose::Always, LingeringClose::WhenUnread] {
        let script = Script {
            answer_half_close: Some(vec![b'a'; 500]),
            ..Script::default()
        };
        let server = Server::start(config(policy), script);
        let mut client = connect(server.addr);
        client.write_all(b"request").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_eof(&mut client).unwrap(), 500);
        let (_, c) = server.closed_within(Duration::from_secs(10));
        assert_eq!(c.name, "PeerClosed", "{policy:?}");
    }
}
