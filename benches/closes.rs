//! Criterion benches: hangup, raw mio and tokio side by side, in one run.
//!
//! ```text
//! cargo bench --bench closes                       # all
//! cargo bench --bench closes -- concurrent_closes  # one group
//! ```
//!
//! - `concurrent_closes/{impl}/{fin,rst}/N`: N connections open, all client
//!   ends closed at once while the server is not polling; the clock runs from
//!   the first poll until the server has reported all N closes.
//! - `churn/{impl}/{1,128}`: connect, FIN, server closes; with 1 or up to 128
//!   in flight. Throughput is connections per second.
//! - `idle_turn/*`: one `run_once(Some(0))` of a hangup reactor with no
//!   connections, 8,000 idle ones, 8,000 idle ones with idle timers, and
//!   1 or 9,000 connections with a handler timer (`Conn::set_timer`) armed.
//! - `classify`: the pure read-result classifier.

mod common;

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use hangup::Config;

use common::*;

fn concurrent_closes(c: &mut Criterion) {
    let limit = raise_nofile();
    let mut g = c.benchmark_group("concurrent_closes");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for reset in [false, true] {
        let kind = if reset { "rst" } else { "fin" };
        for n in [1_000usize, 8_000] {
            if (2 * n as u64 + 200) > limit {
                eprintln!("skipping N={n}: RLIMIT_NOFILE is {limit}");
                continue;
            }
            g.throughput(Throughput::Elements(n as u64));
            for imp in IMPLS {
                let mut server = make(imp, false);
                g.bench_with_input(BenchmarkId::new(format!("{imp}/{kind}"), n), &n, |b, &n| {
                    b.iter_custom(|iters| {
                        (0..iters)
                            .map(|_| concurrent_closes_once(&mut *server, n, reset))
                            .sum()
                    })
                });
            }
        }
    }
    g.finish();
}

fn churn(c: &mut Criterion) {
    raise_nofile();
    let mut g = c.benchmark_group("churn");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    const M: usize = 1_000;
    g.throughput(Throughput::Elements(M as u64));
    for in_flight in [1usize, 128] {
        for imp in IMPLS {
            let mut server = make(imp, false);
            g.bench_with_input(BenchmarkId::new(imp, in_flight), &in_flight, |b, &k| {
                b.iter_custom(|iters| (0..iters).map(|_| churn_once(&mut *server, M, k)).sum())
            });
        }
    }
    g.finish();
}

fn idle_turn(c: &mut Criterion) {
    raise_nofile();
    let mut g = c.benchmark_group("idle_turn");
    let hour = Some(Duration::from_secs(3600));
    // 9,000 at most: clients and server share one process, and 2 x 9,000
    // descriptors stay under this machine's hard limit of 20,000.
    for (name, n, idle, timer) in [
        ("none", 0usize, None, None),
        ("8000_idle", 8_000, None, None),
        ("1_idle_timer", 1, hour, None),
        ("8000_idle_timers", 8_000, hour, None),
        ("1_handler_timer", 1, None, hour),
        ("9000_handler_timers", 9_000, None, hour),
    ] {
        let config = Config::default()
            .listen_backlog(BACKLOG as u32)
            .idle_timeout(idle);
        let mut server = Hangup::with_timer(config, Mode::Quiet, timer);
        let clients = open_clients(&mut server, n, false);
        g.bench_function(name, |b| {
            b.iter(|| server.reactor.run_once(Some(Duration::ZERO)).unwrap())
        });
        drop(clients);
        server.run_until_closed(n);
    }
    g.finish();
}

fn classify(c: &mut Criterion) {
    // The pure classifier through the public mapping (CloseReason::from_error).
    c.bench_function("classify/from_error", |b| {
        b.iter(|| {
            let e = std::io::Error::from_raw_os_error(std::hint::black_box(104));
            std::hint::black_box(hangup::CloseReason::from_error(e))
        })
    });
    let _ = Instant::now();
}

criterion_group!(benches, concurrent_closes, churn, idle_turn, classify);
criterion_main!(benches);
