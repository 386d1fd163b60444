//! The forwarding proxy of `examples/proxy.rs` holds bounded memory while a
//! fast client sends 256 MiB to an upstream that reads slowly. Its own test
//! binary, so that the process's peak RSS is this test's alone.

#[path = "util/proxied.rs"]
mod proxied;
#[path = "../examples/common/proxy.rs"]
mod proxy;
mod util;

use std::io::{self, Read};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use proxied::*;
use util::WAIT;

#[test]
fn proxy_memory_is_bounded_behind_a_slow_reader() {
    let size = 256 * MIB;
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = start(upstream.local_addr().unwrap());
    // A slow upstream: 256 KiB every 2 ms, about 128 MiB/s at most.
    let up = std::thread::spawn(move || -> io::Result<usize> {
        let (mut s, _) = upstream.accept()?;
        s.set_read_timeout(Some(WAIT))?;
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        loop {
            let k = s.read(&mut buf)?;
            if k == 0 {
                return Ok(n);
            }
            n += k;
            std::thread::sleep(Duration::from_millis(2));
        }
    });
    let peak_before = peak_rss_kib();
    let client = TcpStream::connect(proxy.addr).unwrap();
    let t0 = Instant::now();
    send_then_fin(client.try_clone().unwrap(), 1, size).unwrap();
    let got = up.join().unwrap().unwrap();
    let took = t0.elapsed();
    let peak_after = peak_rss_kib();
    drop(client);
    let (max_queued, _) = proxy.stop();
    println!(
        "proxy: {} MiB to a slow reader in {took:.2?}; most queued for one connection {} KiB \
         (mark {} KiB); process peak RSS {peak_before} KiB before, {peak_after} KiB after",
        size / MIB,
        max_queued / 1024,
        proxy::MARK / 1024
    );
    assert_eq!(got, size);
    assert!(
        max_queued <= proxy::MARK + 64 * 1024,
        "queued {max_queued} B: past the mark plus one read"
    );
    assert!(
        peak_after < peak_before + 16 * 1024,
        "peak RSS grew from {peak_before} KiB to {peak_after} KiB while 256 MiB passed"
    );
}

/// The process's peak resident memory (VmHWM), in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
