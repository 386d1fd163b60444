//! proxy: hangup's forwarding proxy (`examples/common/proxy.rs`) against a
//! tokio proxy written with `copy_bidirectional`, side by side in the same
//! run, in interleaved rounds (median reported).
//!
//! - throughput: 256 MiB in 64 KiB chunks, client -> proxy -> upstream that
//!   reads and discards; time from connect to the upstream's EOF;
//! - exchanges: 1,000 request/response round trips of 64 B on one
//!   connection, through the proxy to an echoing upstream;
//! - memory per pair: RSS added by 1,000 idle pairs held open through the
//!   proxy (the client and upstream sockets live in this process too, but
//!   hold no user-space buffers).
//!
//! ```text
//! cargo bench --bench proxy                    # 7 rounds
//! HANGUP_ROUNDS=15 cargo bench --bench proxy
//! ```
//!
//! Each proxy runs on its own thread (a hangup `Reactor`, a tokio
//! `current_thread` runtime); clients and upstreams are std threads.

#[path = "../examples/common/proxy.rs"]
mod proxy;

use hangup_benches::{median, rounds};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
const BULK: usize = 256 * MIB;
const EXCHANGES: usize = 1_000;
const PAIRS: usize = 1_000;

/// A running proxy: where it listens, and how to stop it.
struct Running {
    addr: SocketAddr,
    stop: Box<dyn FnOnce()>,
}

fn hangup_proxy(upstream: SocketAddr) -> Running {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut reactor: hangup::Reactor<proxy::Proxy> =
            hangup::Reactor::with_config(hangup::Config::default().max_connections(4 * PAIRS))
                .unwrap();
        let (addr, _shared) = proxy::listen(
            &mut reactor,
            "127.0.0.1:0".parse().unwrap(),
            upstream,
            false,
        )
        .unwrap();
        tx.send((addr, reactor.handle())).unwrap();
        reactor.run().unwrap();
    });
    let (addr, handle) = rx.recv().unwrap();
    Running {
        addr,
        stop: Box::new(move || {
            handle.shutdown();
            thread.join().unwrap();
        }),
    }
}

fn tokio_proxy(upstream: SocketAddr) -> Running {
    let (tx, rx) = mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let l = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        tx.send(l.local_addr().unwrap()).unwrap();
        rt.spawn(async move {
            loop {
                let (mut client, _) = l.accept().await.unwrap();
                tokio::spawn(async move {
                    let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
                });
            }
        });
        // Runs the tasks until told to stop; dropping the runtime ends them.
        let _ = rt.block_on(stop_rx);
    });
    let addr = rx.recv().unwrap();
    Running {
        addr,
        stop: Box::new(move || {
            let _ = stop_tx.send(());
            thread.join().unwrap();
        }),
    }
}

fn start(which: &str, upstream: SocketAddr) -> Running {
    match which {
        "hangup" => hangup_proxy(upstream),
        _ => tokio_proxy(upstream),
    }
}

/// 256 MiB through the proxy to a discarding upstream.
fn throughput(which: &str) -> Duration {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = start(which, up.local_addr().unwrap());
    let sink = std::thread::spawn(move || {
        let (mut s, _) = up.accept().unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let mut n = 0;
        loop {
            match s.read(&mut buf).unwrap() {
                0 => return n,
                k => n += k,
            }
        }
    });
    let t0 = Instant::now();
    let mut c = TcpStream::connect(p.addr).unwrap();
    let chunk = vec![7u8; 64 * 1024];
    for _ in 0..BULK / chunk.len() {
        c.write_all(&chunk).unwrap();
    }
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let got = sink.join().unwrap();
    let took = t0.elapsed();
    assert_eq!(got, BULK);
    drop(c);
    (p.stop)();
    took
}

/// 1,000 round trips of 64 B through the proxy to an echoing upstream.
fn exchanges(which: &str) -> Duration {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = start(which, up.local_addr().unwrap());
    let echo = std::thread::spawn(move || {
        let (mut s, _) = up.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut buf = [0u8; 64];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(k) => s.write_all(&buf[..k]).unwrap(),
            }
        }
    });
    let mut c = TcpStream::connect(p.addr).unwrap();
    c.set_nodelay(true).unwrap();
    let msg = [1u8; 64];
    let mut back = [0u8; 64];
    // One exchange first: the upstream connect is not what is measured.
    c.write_all(&msg).unwrap();
    c.read_exact(&mut back).unwrap();
    let t0 = Instant::now();
    for _ in 0..EXCHANGES {
        c.write_all(&msg).unwrap();
        c.read_exact(&mut back).unwrap();
    }
    let took = t0.elapsed();
    drop(c);
    echo.join().unwrap();
    (p.stop)();
    took
}

fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse::<u64>().ok())
        .unwrap_or(0)
        * 4
}

/// RSS added per pair by `PAIRS` idle pairs held open through the proxy.
fn memory_per_pair(which: &str) -> f64 {
    let up = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    let p = start(which, up_addr);
    let holder = std::thread::spawn(move || {
        let mut held = Vec::with_capacity(PAIRS);
        while held.len() < PAIRS {
            held.push(up.accept().unwrap().0);
        }
        held
    });
    // Warm the proxy up with one pair, then measure.
    let warm = TcpStream::connect(p.addr).unwrap();
    let mut clients = Vec::with_capacity(PAIRS);
    std::thread::sleep(Duration::from_millis(50));
    let before = rss_kib();
    for _ in 0..PAIRS - 1 {
        clients.push(TcpStream::connect(p.addr).unwrap());
    }
    let upstreams = holder.join().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let after = rss_kib();
    drop((warm, clients, upstreams));
    (p.stop)();
    (after.saturating_sub(before) * 1024) as f64 / (PAIRS - 1) as f64
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` runs it once, small.
    let quick = std::env::args().any(|a| a == "--test" || a == "--list");
    if quick {
        return;
    }
    let _ = rlimit::increase_nofile_limit(16_384);
    let rounds = rounds(7);
    let impls = ["hangup", "tokio"];
    let mut tp = [Vec::new(), Vec::new()];
    let mut ex = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for k in 0..2 {
            let i = (round + k) % 2; // rotate who goes first
            tp[i].push(throughput(impls[i]).as_secs_f64());
            ex[i].push(exchanges(impls[i]).as_secs_f64());
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    // Memory last, once each: it is not timing-sensitive.
    let mem = [memory_per_pair("hangup"), memory_per_pair("tokio")];
    let tp_mibs: Vec<f64> = tp
        .iter_mut()
        .map(|v| (BULK / MIB) as f64 / median(v))
        .collect();
    let ex_ms: Vec<f64> = ex.iter_mut().map(|v| median(v) * 1e3).collect();
    println!("proxy, median of {rounds} interleaved rounds:\n");
    println!("| case | hangup proxy | tokio copy_bidirectional | hangup / tokio |");
    println!("|---|---|---|---|");
    println!(
        "| throughput, 256 MiB in 64 KiB chunks | {:.0} MiB/s | {:.0} MiB/s | {:.3} |",
        tp_mibs[0],
        tp_mibs[1],
        tp_mibs[0] / tp_mibs[1]
    );
    println!(
        "| 1,000 exchanges of 64 B | {:.1} ms ({:.1} µs each) | {:.1} ms ({:.1} µs each) | {:.3} |",
        ex_ms[0],
        ex_ms[0] * 1e3 / EXCHANGES as f64,
        ex_ms[1],
        ex_ms[1] * 1e3 / EXCHANGES as f64,
        ex_ms[0] / ex_ms[1]
    );
    println!(
        "| RSS per idle proxied pair (1,000 pairs) | {:.0} B | {:.0} B | {:.3} |",
        mem[0],
        mem[1],
        mem[0] / mem[1]
    );
}
