//! A group of reactors with 2 workers: connections spread over both under
//! each balance mode (the split for 1,000 connections is printed), counts
//! and exactly-once across workers, a handle from another thread reaching a
//! connection on each worker, shutdown from 8 threads at once.

mod util;

use std::collections::HashMap;
use std::io::Read;
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hangup::{Balance, CloseReason, Config, Conn, Group, GroupConnId, Handler};
use util::{init, raise_nofile, wait_until, WAIT};

/// Records its connection (worker, id) on open and its reason on close.
struct Tracked {
    worker: usize,
    me: Option<GroupConnId>,
    log: Arc<Mutex<Log>>,
}

#[derive(Default)]
struct Log {
    opened: Vec<GroupConnId>,
    closes: HashMap<GroupConnId, Vec<&'static str>>,
}

impl Handler for Tracked {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let me = GroupConnId {
            worker: self.worker,
            id: conn.id(),
        };
        self.me = Some(me);
        self.log.lock().unwrap().opened.push(me);
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, reason: CloseReason) {
        if let Some(me) = self.me {
            self.log
                .lock()
                .unwrap()
                .closes
                .entry(me)
                .or_default()
                .push(reason.name());
        }
    }
}

fn start(balance: Balance, log: &Arc<Mutex<Log>>) -> Group {
    init();
    let log = log.clone();
    Group::start(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        2,
        balance,
        move |worker| {
            move |_peer| Tracked {
                worker,
                me: None,
                log: log.clone(),
            }
        },
    )
    .expect("group")
}

#[test]
fn each_balance_mode_spreads_1000_connections_over_both_workers() {
    raise_nofile(8192);
    for balance in [Balance::ReusePort, Balance::Shared, Balance::HandOff] {
        let log = Arc::new(Mutex::new(Log::default()));
        let group = start(balance, &log);
        let handle = group.handle();
        let clients: Vec<TcpStream> = (0..1_000)
            .map(|_| TcpStream::connect(group.local_addr()).unwrap())
            .collect();
        wait_until("1,000 open", || handle.stats().connections == 1_000);
        let split: Vec<u64> = handle
            .worker_stats()
            .iter()
            .map(|s| s.connections)
            .collect();
        println!("{balance:?}: 1,000 connections split {split:?}");
        drop(clients);
        wait_until("1,000 closed", || handle.stats().closed == 1_000);
        let total = handle.stats();
        handle.shutdown();
        group.join().unwrap();
        let log = log.lock().unwrap();
        assert_eq!(log.opened.len(), 1_000);
        assert!(
            log.closes.values().all(|r| r == &["PeerClosed"]),
            "exactly one close each, PeerClosed"
        );
        assert_eq!(log.closes.len(), 1_000);
        assert_eq!(
            (total.connections, total.closed, total.rejected),
            (0, 1_000, 0)
        );
        assert!(
            split.iter().all(|&n| n > 0),
            "{balance:?} left a worker idle: {split:?}"
        );
        if balance == Balance::HandOff {
            assert!(
                split.iter().all(|&n| n >= 400),
                "hand-off balances to the fewest open: {split:?}"
            );
        }
    }
}

#[test]
fn a_handle_from_another_thread_writes_to_a_connection_on_each_worker() {
    let log = Arc::new(Mutex::new(Log::default()));
    let group = start(Balance::HandOff, &log);
    let handle = group.handle();
    let mut clients: Vec<TcpStream> = (0..4)
        .map(|_| {
            let c = TcpStream::connect(group.local_addr()).unwrap();
            c.set_read_timeout(Some(WAIT)).unwrap();
            c
        })
        .collect();
    wait_until("4 open", || log.lock().unwrap().opened.len() == 4);
    let opened = log.lock().unwrap().opened.clone();
    let workers: std::collections::HashSet<usize> = opened.iter().map(|g| g.worker).collect();
    assert_eq!(workers.len(), 2, "both workers own connections");
    let h = handle.clone();
    std::thread::spawn(move || {
        for g in opened {
            h.write(g, format!("w{}", g.worker).into_bytes());
        }
    })
    .join()
    .unwrap();
    let mut got = Vec::new();
    for c in &mut clients {
        let mut b = [0u8; 2];
        c.read_exact(&mut b).unwrap();
        got.push(String::from_utf8_lossy(&b).to_string());
    }
    got.sort();
    println!("clients got {got:?}");
    assert_eq!(got.iter().filter(|s| *s == "w0").count(), 2);
    assert_eq!(got.iter().filter(|s| *s == "w1").count(), 2);
    handle.shutdown();
    group.join().unwrap();
}

#[test]
fn shutdown_from_8_threads_at_once_closes_each_connection_once() {
    let log = Arc::new(Mutex::new(Log::default()));
    let group = start(Balance::Shared, &log);
    let handle = group.handle();
    let clients: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(group.local_addr()).unwrap())
        .collect();
    wait_until("100 open", || handle.stats().connections == 100);
    let t0 = Instant::now();
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let h = handle.clone();
            std::thread::spawn(move || h.shutdown())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    group.join().unwrap();
    assert!(t0.elapsed() < Duration::from_secs(5));
    let log = log.lock().unwrap();
    assert_eq!(log.closes.len(), 100);
    assert!(log.closes.values().all(|r| r == &["Shutdown"]));
    drop(clients);
}

#[test]
fn drain_broadcast_returns_every_worker_within_grace() {
    let log = Arc::new(Mutex::new(Log::default()));
    let group = start(Balance::ReusePort, &log);
    let handle = group.handle();
    // Connections that never finish: forced at the deadline on both workers.
    let clients: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(group.local_addr()).unwrap())
        .collect();
    wait_until("20 open", || handle.stats().connections == 20);
    let t0 = Instant::now();
    let grace = Duration::from_millis(300);
    handle.drain(grace);
    let reports = group.join_reports().unwrap();
    let took = t0.elapsed();
    println!(
        "group drain, grace {grace:?}: every worker returned after {took:?}; reports {reports:?}"
    );
    let forced: u64 = reports
        .iter()
        .map(|r| r.expect("each worker drained").forced)
        .sum();
    assert_eq!(
        forced, 20,
        "all 20 forced at the deadline, counted across workers"
    );
    assert!(
        took >= grace && took < grace + Duration::from_secs(1),
        "{took:?}"
    );
    let log = log.lock().unwrap();
    assert_eq!(log.closes.len(), 20);
    assert!(
        log.closes.values().all(|r| r == &["Shutdown"]),
        "forced at the deadline"
    );
    drop(clients);
}

#[cfg(all(feature = "pin", target_os = "linux"))]
#[test]
fn pinned_workers_serve() {
    init();
    let group = Group::start_pinned(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        2,
        Balance::ReusePort,
        |_| |_| Echo,
    )
    .unwrap();
    let mut c = TcpStream::connect(group.local_addr()).unwrap();
    c.set_read_timeout(Some(WAIT)).unwrap();
    std::io::Write::write_all(&mut c, b"hi").unwrap();
    let mut b = [0u8; 2];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"hi");
    group.handle().shutdown();
    group.join().unwrap();
}

#[cfg(all(feature = "pin", target_os = "linux"))]
struct Echo;
#[cfg(all(feature = "pin", target_os = "linux"))]
impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }
    fn on_close(&mut self, _: CloseReason) {}
}
