//! Drain under load: 1,000 clients in the middle of request/response
//! exchanges (each request sent in two pieces, a pause between) when a
//! drain with a 1 s grace begins. Every client must either finish and see a
//! clean close (EOF between responses, never inside one) or, reconnecting
//! after that, be refused at connect: none sees a reset or a truncated
//! response, and the drain forces no connection. 200 more clients connect
//! once each, from 20 ms before the drain to 20 ms after: refused, or
//! served to a clean close (those the kernel had already taken into the
//! backlog), never reset.
//!
//! `HANGUP_DRAIN_LOAD_CLIENTS` sets the count (default 1,000).

mod util;

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hangup::{Balance, CloseReason, Config, Conn, DrainReport, Group, Handler, Reactor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::*;

/// The response to every request: big enough to need more than one write.
const RESPONSE: usize = 24 * 1024;
const GRACE: Duration = Duration::from_secs(1);
/// Clients that connect around the moment the drain begins.
const LATE: usize = 200;

/// Answers each request line with `RESPONSE` bytes; idle between requests.
struct Server {
    line: Vec<u8>,
}

impl Handler for Server {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.set_idle(false);
        self.line.extend_from_slice(data);
        while let Some(end) = self.line.iter().position(|&b| b == b'\n') {
            self.line.drain(..=end);
            conn.write(&vec![b'r'; RESPONSE]);
        }
        if self.line.is_empty() {
            // Between requests: a drain may close it (after the response).
            conn.set_idle(true);
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = reason;
    }
}

#[derive(Debug, Default)]
struct Seen {
    exchanges: u64,
    /// A clean EOF between responses.
    clean: bool,
    refused_reconnect: bool,
    served_reconnect: bool,
    problem: Option<String>,
}

async fn exchange(s: &mut tokio::net::TcpStream, buf: &mut [u8]) -> io::Result<Option<()>> {
    s.write_all(b"GET /").await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    s.write_all(b"thing\n").await?;
    let mut got = 0;
    while got < RESPONSE {
        let n = s.read(&mut buf[..RESPONSE - got]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None); // closed between responses: clean
            }
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("truncated: {got} of {RESPONSE} B"),
            ));
        }
        got += n;
    }
    Ok(Some(()))
}

/// A client that arrives around the drain's start: it connects once
/// (refused, or served to a clean close) after `delay`.
async fn late_client(addr: SocketAddr, delay: Duration) -> Seen {
    tokio::time::sleep(delay).await;
    let mut seen = Seen::default();
    let mut buf = vec![0u8; RESPONSE];
    let mut s = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
            seen.refused_reconnect = true;
            return seen;
        }
        Err(e) => {
            seen.problem = Some(format!("late connect: {e}"));
            return seen;
        }
    };
    loop {
        match tokio::time::timeout(WAIT, exchange(&mut s, &mut buf)).await {
            Ok(Ok(Some(()))) => seen.exchanges += 1,
            Ok(Ok(None)) => {
                seen.clean = true;
                seen.served_reconnect = true;
                return seen;
            }
            Ok(Err(e)) => {
                seen.problem = Some(format!(
                    "late client, after {} exchanges: {e}",
                    seen.exchanges
                ));
                return seen;
            }
            Err(_) => {
                seen.problem = Some("late client: an exchange took longer than WAIT".into());
                return seen;
            }
        }
    }
}

async fn client(addr: SocketAddr, draining: Arc<AtomicBool>) -> Seen {
    let mut seen = Seen::default();
    let mut buf = vec![0u8; RESPONSE];
    let mut s = match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => {
            seen.problem = Some(format!("first connect: {e}"));
            return seen;
        }
    };
    loop {
        match tokio::time::timeout(WAIT, exchange(&mut s, &mut buf)).await {
            Err(_) => {
                seen.problem = Some("an exchange took longer than WAIT".into());
                return seen;
            }
            Ok(Ok(Some(()))) => seen.exchanges += 1,
            Ok(Ok(None)) => {
                seen.clean = true;
                break;
            }
            Ok(Err(e)) => {
                seen.problem = Some(format!("after {} exchanges: {e}", seen.exchanges));
                return seen;
            }
        }
        if seen.exchanges > 10_000 {
            seen.problem = Some("never closed".into());
            return seen;
        }
    }
    if !draining.load(Ordering::SeqCst) {
        seen.problem = Some("closed before the drain".into());
        return seen;
    }
    drop(s);
    // Reconnecting after the drain began: refused, or (had it reached a
    // backlog) served.
    match tokio::net::TcpStream::connect(addr).await {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => seen.refused_reconnect = true,
        Err(e) => seen.problem = Some(format!("reconnect: {e}")),
        Ok(mut s) => match exchange(&mut s, &mut buf).await {
            Ok(_) => seen.served_reconnect = true,
            Err(e) => seen.problem = Some(format!("reconnect accepted, then {e}")),
        },
    }
    seen
}

/// The server under test: where it listens, how to drain it, and how to
/// wait for its drain reports.
struct Target {
    addr: SocketAddr,
    drain: Box<dyn FnOnce(Duration) + Send>,
    join: Box<dyn FnOnce() -> Vec<DrainReport>>,
}

fn config(clients: usize) -> Config {
    Config::default()
        .max_connections(4 * clients)
        .listen_backlog(4096)
}

fn one_reactor(clients: usize) -> Target {
    let (tx, rx) = std::sync::mpsc::channel();
    let server = std::thread::spawn(move || {
        let mut r = Reactor::with_config(config(clients)).unwrap();
        let addr = r
            .listen("127.0.0.1:0".parse().unwrap(), |_| Server {
                line: Vec::new(),
            })
            .unwrap();
        tx.send((addr, r.handle())).unwrap();
        r.run().unwrap();
        r.drain_report()
    });
    let (addr, handle) = rx.recv_timeout(WAIT).unwrap();
    Target {
        addr,
        drain: Box::new(move |grace| handle.drain(grace)),
        join: Box::new(move || vec![server.join().unwrap().expect("a drain report")]),
    }
}

fn group(clients: usize, balance: Balance) -> Target {
    let g = Group::start(
        "127.0.0.1:0".parse().unwrap(),
        config(clients),
        2,
        balance,
        |_| |_| Server { line: Vec::new() },
    )
    .unwrap();
    let handle = g.handle();
    Target {
        addr: g.local_addr(),
        drain: Box::new(move |grace| handle.drain(grace)),
        join: Box::new(move || {
            g.join_reports()
                .unwrap()
                .into_iter()
                .map(|r| r.expect("a drain report"))
                .collect()
        }),
    }
}

#[test]
fn drain_under_load_serves_or_refuses_never_resets() {
    drain_under_load("one reactor", one_reactor);
}

#[test]
fn drain_under_load_on_a_group_serves_or_refuses_never_resets() {
    for balance in [Balance::ReusePort, Balance::Shared, Balance::HandOff] {
        drain_under_load(&format!("group of 2, {balance:?}"), |n| group(n, balance));
    }
}

fn drain_under_load(what: &str, start: impl FnOnce(usize) -> Target) {
    init();
    let clients: usize = env_u64("HANGUP_DRAIN_LOAD_CLIENTS").map_or(1_000, |n| n as usize);
    raise_nofile(4 * clients as u64 + 100);
    let Target { addr, drain, join } = start(clients);
    let draining = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    let (seen, late): (Vec<Seen>, Vec<Seen>) = rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|_| tokio::spawn(client(addr, draining.clone())))
            .collect();
        // Latecomers, arriving from 20 ms before the drain to 20 ms after,
        // on a runtime of their own (the busy one would make them late).
        let late = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let tasks: Vec<_> = (0..LATE)
                    .map(|i| {
                        let us = 480_000 + (i as u64 * 40_000) / LATE as u64;
                        tokio::spawn(late_client(addr, Duration::from_micros(us)))
                    })
                    .collect();
                let mut l = Vec::new();
                for t in tasks {
                    l.push(t.await.unwrap());
                }
                l
            })
        });
        // Let every client get going, then drain mid-exchange.
        tokio::time::sleep(Duration::from_millis(500)).await;
        draining.store(true, Ordering::SeqCst);
        drain(GRACE);
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.unwrap());
        }
        (v, late.join().unwrap())
    });
    let took = t0.elapsed();
    let reports = join();
    let report = reports
        .iter()
        .fold(DrainReport::default(), |a, r| DrainReport {
            open_at_start: a.open_at_start + r.open_at_start,
            joined: a.joined + r.joined,
            closed_idle: a.closed_idle + r.closed_idle,
            finished: a.finished + r.finished,
            forced: a.forced + r.forced,
            done: reports.iter().all(|r| r.done),
        });
    let problems: Vec<&String> = seen
        .iter()
        .chain(&late)
        .filter_map(|s| s.problem.as_ref())
        .collect();
    let late_refused = late.iter().filter(|s| s.refused_reconnect).count();
    let late_served = late.iter().filter(|s| s.served_reconnect).count();
    let exchanges: u64 = seen.iter().map(|s| s.exchanges).sum();
    let clean = seen.iter().filter(|s| s.clean).count();
    let refused = seen.iter().filter(|s| s.refused_reconnect).count();
    let served = seen.iter().filter(|s| s.served_reconnect).count();
    println!(
        "drain under load, {what}: {clients} clients, {exchanges} exchanges, drain after 500 ms with {GRACE:?} grace; \
         {clean} clean closes, {refused} reconnects refused, {served} reconnects served; \
         {LATE} latecomers: {late_refused} refused, {late_served} served to a clean close; {} problems; \
         {report:?}; all done in {took:.2?}",
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{} problems, first: {:?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
    assert_eq!(clean, clients, "every client saw a clean close");
    assert_eq!(refused + served, clients);
    assert_eq!(late_refused + late_served, LATE);
    assert_eq!(report.forced, 0, "{report:?}");
    assert_eq!(
        report.open_at_start + report.joined,
        report.closed_idle + report.finished + report.forced,
        "every connection counted once: {report:?}"
    );
    assert!(report.done);
}
