//! 5,000 Unix-domain connections closed together, half by EOF and half by
//! a reset (the peer closes with our data unread): each reported exactly
//! once, with the right reason, after every byte the peer sent.

mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::time::Instant;

use hangup::Config;
use util::*;

const N: usize = 5_000;
const GREETING: usize = 16;

#[test]
fn five_thousand_concurrent_unix_closes_each_reported_once() {
    let limit = raise_nofile(2 * N as u64 + 500);
    assert!(
        limit >= 2 * N as u64 + 100,
        "RLIMIT_NOFILE is {limit}; this test needs {} descriptors",
        2 * N + 100
    );
    let dir = TempDir::new("unix-many");
    let path = dir.join("s.sock");
    let script = Script {
        write_on_open: GREETING,
        ..Script::default()
    };
    let server = Server::start_unix(&path, Config::default(), script);
    let mut clients = Vec::with_capacity(N);
    for _ in 0..N {
        clients.push(connect_unix(&path));
    }
    let mut opened = 0;
    while opened < N {
        if let Ev::Open(..) = server.next() {
            opened += 1;
        }
    }
    // An even client reads the greeting and closes: EOF. An odd one sends
    // a byte and closes with the greeting unread: the server's read fails
    // with ECONNRESET, after the byte.
    for (i, c) in clients.iter_mut().enumerate() {
        if i % 2 == 0 {
            let mut g = [0u8; GREETING];
            c.read_exact(&mut g).unwrap();
        } else {
            c.write_all(b"r").unwrap();
            let mut buf = [std::mem::MaybeUninit::<u8>::uninit(); GREETING];
            wait_until("the greeting at the client", || {
                socket2::SockRef::from(&*c)
                    .peek(&mut buf)
                    .is_ok_and(|n| n >= GREETING)
            });
        }
    }
    let start = Instant::now();
    drop(clients);
    let mut seen = HashMap::new();
    let mut last = start;
    while seen.len() < N {
        let (id, c) = server.closed();
        match (c.name, c.bytes) {
            ("PeerClosed", 0) | ("Reset", 1) => {}
            other => panic!("{id:?}: {other:?} ({c:?})"),
        }
        assert!(seen.insert(id, c.name).is_none(), "{id:?} reported twice");
        last = c.at;
    }
    let took = last.duration_since(start);
    server.no_close_within(std::time::Duration::from_millis(200));
    let stats = server.stop();
    assert_eq!(stats.closed, N as u64, "no close left for the shutdown");
    assert_eq!(stats.connections, 0);
    let eofs = seen.values().filter(|n| **n == "PeerClosed").count();
    assert_eq!(eofs, N / 2, "half by EOF");
    println!(
        "{N} Unix closes ({eofs} EOF, {} reset) detected in {:.1} ms ({:.2} us per close)",
        N - eofs,
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / N as f64
    );
}
