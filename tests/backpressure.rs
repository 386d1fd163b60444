//! A peer that stops reading: `Backpressure` once queued output passes the limit.

mod util;

use std::io::Write;

use hangup::Config;
use util::*;

#[test]
fn write_burst_past_limit_is_backpressure() {
    let config = Config::default().max_write_buffer(1024 * 1024);
    let script = Script {
        write_on_open: 64 * 1024 * 1024,
        ..Script::default()
    };
    let server = Server::start(config, script);
    let _client = connect(server.addr); // never reads
    let (_, c) = server.closed();
    assert_eq!(c.name, "Backpressure");
    assert_eq!(c.errno, None);
}

#[test]
fn echo_to_peer_that_never_reads_is_backpressure() {
    let config = Config::default().max_write_buffer(256 * 1024);
    let script = Script {
        echo: true,
        ..Script::default()
    };
    let server = Server::start(config, script);
    let mut client = connect(server.addr);
    client.set_nonblocking(true).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let end = std::time::Instant::now() + WAIT;
    let mut closed = None;
    while closed.is_none() && std::time::Instant::now() < end {
        match client.write(&chunk) {
            Ok(_) => {}
            Err(_) => std::thread::sleep(std::time::Duration::from_millis(2)),
        }
        if let Ok(Ev::Close(_, c)) = server.rx.try_recv() {
            closed = Some(c);
        }
    }
    let c = closed.unwrap_or_else(|| server.closed().1);
    assert_eq!(c.name, "Backpressure");
}
