//! group: `concurrent_closes` (FIN) on a hangup `Group` of 1 and 2 workers
//! against tokio's multi-thread runtime with 1 and 2 workers, in the same
//! run, in interleaved rounds (median reported).
//!
//! N connections are opened and accepted (not timed). Then every worker is
//! held inside a callback (a control connection per worker whose handler,
//! or task, waits on a barrier), so that no worker polls while the client
//! closes all N; the clock runs from the release until all N closes are
//! reported. The hangup group uses `Balance::HandOff`, so each worker holds
//! exactly N / workers (the split is printed).
//!
//! ```text
//! cargo bench --bench group                  # 5 rounds, N = 8,000
//! HANGUP_ROUNDS=9 cargo bench --bench group
//! ```

use hangup_benches::{median, rounds};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hangup::{Balance, CloseReason, Config, Conn, Group, Handler};

const N: usize = 8_000;

/// What a run's handlers share.
#[derive(Clone)]
struct Gate {
    workers: usize,
    /// (workers parked, released)
    park: Arc<(Mutex<(usize, bool)>, Condvar)>,
    closes: Arc<AtomicUsize>,
    /// Set when the N-th close is counted; the bench sleeps on it (a
    /// spinning bench would take a core from the workers).
    all_closed: Arc<(Mutex<bool>, Condvar)>,
}

impl Gate {
    fn new(workers: usize) -> Gate {
        Gate {
            workers,
            park: Arc::new((Mutex::new((0, false)), Condvar::new())),
            closes: Arc::new(AtomicUsize::new(0)),
            all_closed: Arc::new((Mutex::new(false), Condvar::new())),
        }
    }

    fn closed_one(&self) {
        if self.closes.fetch_add(1, Ordering::Relaxed) + 1 == N {
            let (m, cv) = &*self.all_closed;
            *m.lock().unwrap() = true;
            cv.notify_all();
        }
    }
    /// A worker holds here (inside a callback) until released.
    fn hold(&self) {
        let (m, cv) = &*self.park;
        let mut st = m.lock().unwrap();
        st.0 += 1;
        cv.notify_all();
        while !st.1 {
            st = cv.wait(st).unwrap();
        }
    }

    /// The bench: waits until every worker is parked (false if that does
    /// not happen within 10 s: a worker could not be reached).
    fn all_parked(&self) -> bool {
        let (m, cv) = &*self.park;
        let st = m.lock().unwrap();
        let (st, timeout) = cv
            .wait_timeout_while(st, Duration::from_secs(10), |st| st.0 < self.workers)
            .unwrap();
        drop(st);
        !timeout.timed_out()
    }

    fn release(&self) {
        let (m, cv) = &*self.park;
        m.lock().unwrap().1 = true;
        cv.notify_all();
    }
}

struct Count {
    gate: Gate,
    control: bool,
}

impl Handler for Count {
    fn on_data(&mut self, _: &mut Conn<'_>, data: &[u8]) {
        if data == b"P" {
            self.control = true;
            self.gate.hold();
        }
    }
    fn on_close(&mut self, _: CloseReason) {
        if !self.control {
            self.gate.closed_one();
        }
    }
}

/// Opens `workers` control connections, then N; returns them.
fn open(addr: SocketAddr, workers: usize) -> (Vec<TcpStream>, Vec<TcpStream>) {
    let controls: Vec<TcpStream> = (0..workers)
        .map(|_| {
            let c = TcpStream::connect(addr).unwrap();
            c.set_nodelay(true).unwrap();
            // Let the hand-off place it before the next one.
            std::thread::sleep(Duration::from_millis(20));
            c
        })
        .collect();
    let clients = (0..N).map(|_| TcpStream::connect(addr).unwrap()).collect();
    (controls, clients)
}

/// Parks every worker, closes all N, releases, and times until N closes.
/// `None` if not every worker could be parked (the run does not count).
fn close_all(gate: &Gate, controls: &mut [TcpStream], clients: Vec<TcpStream>) -> Option<Duration> {
    for c in controls.iter_mut() {
        c.write_all(b"P").unwrap();
    }
    let parked = gate.all_parked();
    drop(clients); // N FINs while no worker polls
    let t0 = Instant::now();
    gate.release();
    if !parked {
        eprintln!("  a worker was never parked (its control task was not run): run dropped");
        return None;
    }
    let (m, cv) = &*gate.all_closed;
    let mut done = m.lock().unwrap();
    while !*done {
        done = cv.wait(done).unwrap();
    }
    Some(t0.elapsed())
}

fn hangup_run(workers: usize) -> (Option<Duration>, Vec<u64>) {
    let gate = Gate::new(workers);
    let g = gate.clone();
    let config = Config::default()
        .listen_backlog(4096)
        .max_connections(2 * N);
    let group = Group::start(
        "127.0.0.1:0".parse().unwrap(),
        config,
        workers,
        Balance::HandOff,
        move |_| {
            let g = g.clone();
            move |_| Count {
                gate: g.clone(),
                control: false,
            }
        },
    )
    .unwrap();
    let handle = group.handle();
    let (mut controls, clients) = open(group.local_addr(), workers);
    while handle.stats().connections < (N + workers) as u64 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let split = handle
        .worker_stats()
        .iter()
        .map(|s| s.connections - 1)
        .collect();
    let took = close_all(&gate, &mut controls, clients);
    handle.shutdown();
    group.join().unwrap();
    (took, split)
}

fn tokio_run(workers: usize) -> Option<Duration> {
    let gate = Gate::new(workers);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = l.local_addr().unwrap();
    let opened = Arc::new(AtomicUsize::new(0));
    let (g, o) = (gate.clone(), opened.clone());
    rt.spawn(async move {
        loop {
            let (mut s, _) = l.accept().await.unwrap();
            o.fetch_add(1, Ordering::Relaxed);
            let g = g.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut buf = [0u8; 1024];
                loop {
                    match s.read(&mut buf).await {
                        Ok(1) if buf[0] == b'P' => g.hold(), // blocks this worker thread
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                g.closed_one();
            });
        }
    });
    let (mut controls, clients) = open(addr, workers);
    while opened.load(Ordering::Relaxed) < N + workers {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50)); // every task has polled once
    let took = close_all(&gate, &mut controls, clients);
    drop(controls);
    rt.shutdown_timeout(Duration::from_secs(1));
    took
}

fn main() {
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let _ = rlimit::increase_nofile_limit(20_000);
    let rounds = rounds(5);
    let names = [
        "hangup 1 worker",
        "hangup 2 workers",
        "tokio 1 worker",
        "tokio 2 workers",
    ];
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); 4];
    let mut splits = Vec::new();
    for round in 0..rounds {
        for k in 0..4 {
            let i = (round + k) % 4;
            eprintln!("round {}: {}", round + 1, names[i]);
            let t = match i {
                0 => hangup_run(1).0,
                1 => {
                    let (t, split) = hangup_run(2);
                    splits.push(split);
                    t
                }
                2 => tokio_run(1),
                _ => tokio_run(2),
            };
            if let Some(t) = t {
                times[i].push(t.as_secs_f64() * 1e3);
            }
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    let m: Vec<f64> = times.iter_mut().map(|v| median(v)).collect();
    println!("concurrent_closes FIN, N = {N}, median of {rounds} interleaved rounds:\n");
    println!("| implementation | time | per close | vs its 1-worker time |");
    println!("|---|---|---|---|");
    for (i, name) in names.iter().enumerate() {
        let base = if i < 2 { m[0] } else { m[2] };
        println!(
            "| {name} | {:.2} ms | {:.2} µs | {:.3} |",
            m[i],
            m[i] * 1e3 / N as f64,
            m[i] / base
        );
    }
    println!(
        "\nhangup 2 workers vs tokio 2 workers: {:.3}; split of N over the 2 hangup workers per round: {splits:?}",
        m[1] / m[3]
    );
}
