//! 5,000 connections closed together, half by FIN and half by reset: each
//! reported exactly once, with the right reason.

mod util;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use hangup::Config;
use util::*;

const N: usize = 5_000;

#[test]
fn five_thousand_concurrent_closes_each_reported_once() {
    let limit = raise_nofile(2 * N as u64 + 500);
    assert!(
        limit >= 2 * N as u64 + 100,
        "RLIMIT_NOFILE is {limit}; this test needs {} descriptors",
        2 * N + 100
    );
    let server = Server::start(Config::default(), Script::default());
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        clients.push(connect(server.addr));
    }
    let mut peer_of = HashMap::new();
    while peer_of.len() < N {
        if let Ev::Open(id, peer) = server.next() {
            peer_of.insert(id, peer);
        }
    }
    // The client with an even index closes with a FIN, an odd one with an RST.
    let mut expected: HashMap<SocketAddr, &str> = HashMap::new();
    for (i, c) in clients.iter().enumerate() {
        let want = if i % 2 == 0 { "PeerClosed" } else { "Reset" };
        expected.insert(c.local_addr().unwrap(), want);
        if i % 2 == 1 {
            set_linger_zero(c);
        }
    }
    let start = Instant::now();
    drop(clients);
    let mut seen = HashMap::new();
    let mut last = start;
    while seen.len() < N {
        let (id, c) = server.closed();
        let peer = peer_of[&id];
        assert_eq!(c.name, expected[&peer], "{id:?} from {peer}");
        assert!(seen.insert(id, c.name).is_none(), "{id:?} reported twice");
        last = c.at;
    }
    let took = last.duration_since(start);
    server.no_close_within(std::time::Duration::from_millis(200));
    let stats = server.stop();
    assert_eq!(
        stats.closed, N as u64,
        "no Shutdown closes: all were already closed"
    );
    assert_eq!(stats.connections, 0);
    let fins = seen.values().filter(|n| **n == "PeerClosed").count();
    println!(
        "{N} closes ({fins} FIN, {} RST) detected in {:.1} ms ({:.2} us per close)",
        N - fins,
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / N as f64
    );
}
