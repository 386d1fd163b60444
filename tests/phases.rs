//! Methods meant for an open connection, called after `close()`: they must not
//! change what the close relies on (its timeout, its flush). Regression tests
//! for two defects an outside battery found.

mod util;

use std::io::Read;
use std::time::{Duration, Instant};

use hangup::Config;
use util::*;

const MIB: usize = 1024 * 1024;

/// `clear_deadline()` after `close()` used to remove the close timeout: a peer
/// that read our FIN and never sent its own kept the connection (and its
/// descriptor) for ever.
#[test]
fn clear_deadline_after_close_keeps_close_timeout() {
    let config = Config::default().close_timeout(Duration::from_millis(300));
    let script = Script {
        close_on_open: true,
        then: Some(|c| c.clear_deadline()),
        ..Script::default()
    };
    let server = Server::start(config, script);
    let mut client = connect(server.addr);
    let t0 = Instant::now();
    let mut b = [0u8; 1];
    assert_eq!(client.read(&mut b).unwrap(), 0, "our FIN arrives");
    // The client keeps its side open and sends nothing.
    let (_, c) = server.closed_within(Duration::from_secs(5));
    let took = t0.elapsed();
    println!("closed {took:?} after close(), close_timeout 300 ms");
    assert_eq!(c.name, "Local");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    drop(client);
}

/// `set_deadline()` after `close()` used to cut the flush short: the peer got
/// part of the output and then a clean EOF, and the close was reported `Local`.
#[test]
fn set_deadline_after_close_does_not_cut_the_flush() {
    let size = 5 * MIB;
    let config = Config::default().max_write_buffer(16 * MIB);
    let script = Script {
        write_on_open: size,
        close_on_open: true,
        then: Some(|c| c.set_deadline(Duration::from_millis(1))),
        ..Script::default()
    };
    let server = Server::start(config, script);
    let mut client = connect(server.addr);
    // Let the 1 ms deadline pass while the output waits in the server.
    std::thread::sleep(Duration::from_millis(100));
    let got = read_to_end(&mut client).expect("no reset");
    println!("peer read {} of {} bytes", got.len(), size);
    assert_eq!(got.len(), size, "every byte queued before close() arrives");
    drop(client);
    let (_, c) = server.closed();
    assert_eq!(c.name, "Local");
}

/// Whatever is called after `close()`, the close timeout still bounds it, and
/// a flush it cuts short is reported as a failure and a reset, never a clean EOF.
#[test]
fn flush_cut_by_close_timeout_is_a_reset_not_a_clean_eof() {
    let size = 8 * MIB;
    let config = Config::default()
        .max_write_buffer(16 * MIB)
        .close_timeout(Duration::from_millis(200));
    let script = Script {
        write_on_open: size,
        close_on_open: true,
        then: Some(|c| {
            c.clear_deadline();
            c.set_idle_timeout(None);
            c.pause_reading();
        }),
        ..Script::default()
    };
    let server = Server::start(config, script);
    let mut client = connect(server.addr);
    // Never read until the close timeout passed.
    let (_, c) = server.closed_within(Duration::from_secs(5));
    assert_eq!(c.name, "FlushTimeout");
    let mut total = 0;
    let mut buf = vec![0u8; 256 * 1024];
    let end = loop {
        match client.read(&mut buf) {
            Ok(0) => break "clean EOF",
            Ok(n) => total += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("{e}"),
        }
    };
    println!("peer read {total} of {size} bytes, then {end}");
    assert!(total < size);
    assert_eq!(
        end, "reset",
        "a cut-short flush must not end in a clean EOF"
    );
}
