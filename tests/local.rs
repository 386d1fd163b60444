//! This side closes: `Local`, and queued output still reaches the peer.

mod util;

use std::io::{ErrorKind, Read, Write};
use std::time::Duration;

use hangup::Config;
use util::*;

const MIB: usize = 1024 * 1024;

#[test]
fn graceful_close_delivers_8_mib_to_peer_that_sent_unread_input() {
    let config = Config::default().max_write_buffer(16 * MIB);
    let script = Script {
        write_on_open: 8 * MIB,
        close_on_open: true,
        ..Script::default()
    };
    let server = Server::start(config, script);
    let mut client = connect(server.addr);
    // Input the handler never reads: it arrives after close().
    send(&mut client, &vec![b'u'; 64 * 1024]);
    std::thread::sleep(Duration::from_millis(100));
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    let mut sent_more = false;
    loop {
        let n = client.read(&mut buf).expect("no reset may reach the peer");
        if n == 0 {
            break;
        }
        assert!(buf[..n].iter().all(|&b| b == b'x'));
        total += n;
        if total > 4 * MIB && !sent_more {
            // More unread input, while the server is still flushing.
            client.write_all(&vec![b'v'; 64 * 1024]).unwrap();
            sent_more = true;
        }
    }
    assert_eq!(total, 8 * MIB);
    drop(client);
    let (_, c) = server.closed();
    assert_eq!(c.name, "Local");
    assert_eq!(c.bytes, 0, "no on_data after close()");
}

#[test]
fn close_then_fin_from_peer_finishes_promptly() {
    let script = Script {
        close_on: Some(b'q'),
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let mut client = connect(server.addr);
    send(&mut client, b"q");
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    let t = std::time::Instant::now();
    drop(client);
    let (_, c) = server.closed();
    assert_eq!(c.name, "Local");
    assert!(c.at.duration_since(t) < Duration::from_secs(2));
}

#[test]
fn abort_resets_the_peer() {
    let script = Script {
        write_on_open: 10_000,
        abort_on: Some(b'!'),
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    let mut client = connect(server.addr);
    let mut first = vec![0u8; 10_000];
    client.read_exact(&mut first).unwrap();
    send(&mut client, b"!");
    let mut buf = [0u8; 16];
    let err = client.read(&mut buf).expect_err("reset");
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    let (_, c) = server.closed();
    assert_eq!(c.name, "Local");
}

#[test]
fn handle_close_and_write_from_another_thread() {
    let server = Server::start(Config::default(), Script::default());
    let mut client = connect(server.addr);
    let id = server.opened();
    let h = server.handle.clone();
    std::thread::spawn(move || {
        h.write(id, b"from afar".to_vec());
        h.close(id);
        h.close(id); // twice is harmless
    })
    .join()
    .unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"from afar");
    drop(client);
    let (closed, c) = server.closed();
    assert_eq!(closed, id);
    assert_eq!(c.name, "Local");
}
