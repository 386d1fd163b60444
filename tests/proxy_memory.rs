//! The forwarding proxy of `examples/proxy.rs` holds bounded memory while a
//! fast client sends 256 MiB to an upstream that reads slowly. Its own test
//! binary, so that the process's peak RSS is this test's alone.

#[path = "../examples/common/proxy.rs"]
mod proxy;
mod util;

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hangup::{Handle, Reactor};
use util::{init, WAIT};

const MIB: usize = 1024 * 1024;

struct Running {
    addr: SocketAddr,
    handle: Handle,
    /// (most output queued for one connection, upstream connect failures)
    thread: JoinHandle<(usize, u64)>,
}

fn start(upstream: SocketAddr) -> Running {
    init();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut reactor: Reactor<proxy::Proxy> = Reactor::new().unwrap();
        let (addr, shared) = proxy::listen(
            &mut reactor,
            "127.0.0.1:0".parse().unwrap(),
            upstream,
            false,
        )
        .unwrap();
        tx.send((addr, reactor.handle())).unwrap();
        reactor.run().unwrap();
        (shared.max_queued.get(), shared.connect_failures.get())
    });
    let (addr, handle) = rx.recv_timeout(WAIT).unwrap();
    Running {
        addr,
        handle,
        thread,
    }
}

impl Running {
    fn stop(self) -> (usize, u64) {
        self.handle.shutdown();
        self.thread.join().unwrap()
    }
}

/// Byte `i` of a stream tagged `tag`.
fn pattern(tag: u8, i: usize) -> u8 {
    (i % 251) as u8 ^ tag
}

/// Writes `n` bytes of `tag`'s pattern, then a FIN.
fn send_then_fin(mut s: TcpStream, tag: u8, n: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < n {
        let k = buf.len().min(n - sent);
        for (j, b) in buf[..k].iter_mut().enumerate() {
            *b = pattern(tag, sent + j);
        }
        s.write_all(&buf[..k])?;
        sent += k;
    }
    s.shutdown(std::net::Shutdown::Write)
}

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
