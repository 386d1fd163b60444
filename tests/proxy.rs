//! The forwarding proxy of `examples/proxy.rs` on loopback: bytes exact in
//! both directions with each FIN passed on, resets mirrored, an unreachable
//! upstream closing the client, and bounded memory behind a slow reader.

#[path = "util/proxied.rs"]
mod proxied;
#[path = "../examples/common/proxy.rs"]
mod proxy;
mod util;

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use proxied::*;
use util::{set_linger_zero, WAIT};

/// Reads to EOF, checking `tag`'s pattern; returns (bytes, bytes wrong).
fn read_checked(s: &mut TcpStream, tag: u8) -> io::Result<(usize, usize)> {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut n, mut wrong) = (0, 0);
    loop {
        let k = s.read(&mut buf)?;
        if k == 0 {
            return Ok((n, wrong));
        }
        wrong += buf[..k]
            .iter()
            .enumerate()
            .filter(|&(j, &b)| b != pattern(tag, n + j))
            .count();
        n += k;
    }
}

#[test]
fn proxy_carries_64_mib_each_way_exactly_with_fin_passed_both_ways() {
    let size = 64 * MIB;
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = start(upstream.local_addr().unwrap());
    let t0 = Instant::now();
    let up = std::thread::spawn(move || -> io::Result<(usize, usize)> {
        let (s, _) = upstream.accept()?;
        s.set_read_timeout(Some(WAIT))?;
        let w = s.try_clone()?;
        let writer = std::thread::spawn(move || send_then_fin(w, 2, size));
        let mut r = s;
        let got = read_checked(&mut r, 1)?;
        writer.join().unwrap()?;
        Ok(got)
    });
    let client = TcpStream::connect(proxy.addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let w = client.try_clone().unwrap();
    let writer = std::thread::spawn(move || send_then_fin(w, 1, size));
    let mut r = client;
    let (to_client, wrong_at_client) = read_checked(&mut r, 2).expect("client read to EOF");
    writer.join().unwrap().unwrap();
    let (to_upstream, wrong_at_upstream) = up.join().unwrap().expect("upstream read to EOF");
    let took = t0.elapsed();
    println!(
        "proxy: {} MiB each way in {took:.2?} ({:.0} MiB/s each way); wrong bytes {wrong_at_client} + {wrong_at_upstream}",
        size / MIB,
        (size / MIB) as f64 / took.as_secs_f64()
    );
    assert_eq!(
        (to_client, to_upstream),
        (size, size),
        "byte-exact both ways, each ending in EOF"
    );
    assert_eq!((wrong_at_client, wrong_at_upstream), (0, 0));
    // Both directions done: the pair closed by itself.
    drop(r);
    let (max_queued, failures) = proxy.stop();
    assert_eq!(failures, 0);
    println!("most queued for one connection: {max_queued} B");
}

#[test]
fn proxy_mirrors_a_client_reset_to_the_upstream() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = start(upstream.local_addr().unwrap());
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client.write_all(b"hello").unwrap();
    let (mut up, _) = upstream.accept().unwrap();
    up.set_read_timeout(Some(WAIT)).unwrap();
    let mut got = [0u8; 5];
    up.read_exact(&mut got).unwrap();
    set_linger_zero(&client);
    drop(client);
    let end = loop {
        let mut b = [0u8; 16];
        match up.read(&mut b) {
            Ok(0) => break "EOF",
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => break "reset",
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(end, "reset", "a reset becomes a reset");
    proxy.stop();
}

#[test]
fn proxy_mirrors_an_upstream_reset_to_the_client() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = start(upstream.local_addr().unwrap());
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let (mut up, _) = upstream.accept().unwrap();
    // Established through the proxy (it forwarded a byte), then reset.
    client.write_all(b"!").unwrap();
    up.set_read_timeout(Some(WAIT)).unwrap();
    up.read_exact(&mut [0u8; 1]).unwrap();
    set_linger_zero(&up);
    drop(up);
    let mut b = [0u8; 16];
    let err = client.read(&mut b).expect_err("a reset, not an EOF");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    proxy.stop();
}

#[test]
fn proxy_closes_the_client_when_the_upstream_refuses() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = upstream.local_addr().unwrap();
    drop(upstream);
    let proxy = start(addr);
    let mut client = TcpStream::connect(proxy.addr).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    let t0 = Instant::now();
    let mut b = [0u8; 16];
    assert_eq!(client.read(&mut b).unwrap(), 0, "the client is closed");
    println!(
        "client saw EOF {:?} after it read (the upstream refused)",
        t0.elapsed()
    );
    let (_, failures) = proxy.stop();
    assert_eq!(failures, 1);
}
