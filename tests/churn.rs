//! Descriptor-reuse churn: connections open and close (half by FIN, half by
//! reset) as fast as loopback allows, so the kernel hands the same descriptor
//! numbers, and the reactor the same slots, to new connections while events
//! for the old ones may still be in flight. Every payload carries its own
//! connection's tag: a byte delivered to the wrong connection is counted.
//!
//! `churn_20000_connections_no_byte_misdelivered` runs in `cargo test`;
//! `soak_churn_rss_flat` runs for 30 s (`HANGUP_SOAK_SECS`) and is ignored by
//! default: `.ci/run` runs it with `cargo test --release --test churn -- --ignored`.

mod util;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handle, Handler, Reactor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use util::*;

const IN_FLIGHT: usize = 64;

#[derive(Default)]
struct Shared {
    misdelivered: AtomicU64,
    /// `on_close` calls, and those on a handler that had one already.
    closes: AtomicU64,
    double_closes: AtomicU64,
    /// Closes per tag; `None` in the soak, whose memory must stay flat.
    by_tag: Option<Mutex<HashMap<u64, u32>>>,
}

/// Echoes, after checking that every byte is its own connection's.
struct Tagged {
    shared: Arc<Shared>,
    header: Vec<u8>,
    tag: Option<[u8; 8]>,
    pos: usize,
    closed: bool,
}

impl Handler for Tagged {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let mut rest = data;
        if self.tag.is_none() {
            let take = (8 - self.header.len()).min(rest.len());
            self.header.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.header.len() == 8 {
                self.tag = Some(self.header[..].try_into().unwrap());
            }
        }
        if let Some(tag) = self.tag {
            let wrong = rest
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b != tag[(self.pos + i) % 8])
                .count();
            if wrong > 0 {
                self.shared
                    .misdelivered
                    .fetch_add(wrong as u64, Ordering::Relaxed);
            }
            self.pos += rest.len();
        }
        conn.write(data);
    }

    fn on_close(&mut self, _: CloseReason) {
        if self.closed {
            self.shared.double_closes.fetch_add(1, Ordering::Relaxed);
        }
        self.closed = true;
        self.shared.closes.fetch_add(1, Ordering::Relaxed);
        if let (Some(tag), Some(by_tag)) = (self.tag, &self.shared.by_tag) {
            *by_tag
                .lock()
                .unwrap()
                .entry(u64::from_le_bytes(tag))
                .or_default() += 1;
        }
    }
}

struct Server {
    addr: SocketAddr,
    handle: Handle,
    shared: Arc<Shared>,
    thread: std::thread::JoinHandle<io::Result<(usize, u64)>>,
}

fn start(per_tag: bool) -> Server {
    init();
    let shared = Arc::new(Shared {
        by_tag: per_tag.then(Mutex::default),
        ..Shared::default()
    });
    let (tx, rx) = std::sync::mpsc::channel();
    let s = shared.clone();
    let thread = std::thread::spawn(move || {
        let mut reactor = Reactor::with_config(Config::default())?;
        let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), move |_| Tagged {
            shared: s.clone(),
            header: Vec::new(),
            tag: None,
            pos: 0,
            closed: false,
        })?;
        tx.send((addr, reactor.handle())).unwrap();
        reactor.run()?;
        Ok((reactor.connection_count(), reactor.closed_count()))
    });
    let (addr, handle) = rx.recv_timeout(WAIT).expect("server started");
    Server {
        addr,
        handle,
        shared,
        thread,
    }
}

/// One connection: send the tag and a tagged payload, read the echo, check
/// it, and close by FIN or reset. Returns bytes misdelivered to this client.
async fn one(addr: SocketAddr, tag: u64, words: usize, reset: bool) -> io::Result<u64> {
    let mut s = TcpStream::connect(addr).await?;
    let t = tag.to_le_bytes();
    let msg: Vec<u8> = (0..=words).flat_map(|_| t).collect();
    s.write_all(&msg).await?;
    let mut echo = vec![0u8; msg.len()];
    s.read_exact(&mut echo).await?;
    let wrong = echo.iter().zip(&msg).filter(|(a, b)| a != b).count() as u64;
    if reset {
        socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO))?;
    } else {
        s.shutdown().await?;
        let mut b = [0u8; 1];
        // The server closes after our FIN: wait for its FIN.
        let _ = tokio::time::timeout(WAIT, s.read(&mut b)).await;
    }
    Ok(wrong)
}

#[derive(Debug, Default)]
struct Churned {
    conns: u64,
    client_misdelivered: u64,
    errors: u64,
}

/// Churns until `count` connections are done or `until` passes.
fn churn(
    addr: SocketAddr,
    seed: u64,
    count: u64,
    until: Instant,
    mut tick: impl FnMut(u64),
) -> Churned {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let mut rng = fastrand::Rng::with_seed(seed);
        let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let done = Arc::new(Mutex::new(Churned::default()));
        let mut tag = 0u64;
        while tag < count && Instant::now() < until {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let (words, reset) = (rng.usize(0..64), rng.bool());
            let done = done.clone();
            tokio::spawn(async move {
                let r = tokio::time::timeout(WAIT, one(addr, tag, words, reset)).await;
                let mut d = done.lock().unwrap();
                d.conns += 1;
                match r {
                    Ok(Ok(wrong)) => d.client_misdelivered += wrong,
                    _ => d.errors += 1,
                }
                drop(permit);
            });
            tag += 1;
            if tag % 1000 == 0 {
                tick(tag);
            }
        }
        // Wait for the last ones.
        let _all = limit.acquire_many(IN_FLIGHT as u32).await.unwrap();
        let churned = std::mem::take(&mut *done.lock().unwrap());
        churned
    })
}

/// Waits for the server to close every connection, stops it, and returns
/// (duplicate closes, misdelivered bytes at the server).
fn finish(server: Server, churned: &Churned) -> (u64, u64) {
    // Connections closed by our FIN or reset finish on the server shortly after.
    let sh = &server.shared;
    let end = Instant::now() + WAIT;
    while sh.closes.load(Ordering::Relaxed) < churned.conns && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.handle.shutdown();
    let (open, closed) = server.thread.join().unwrap().expect("server");
    let mut duplicates = sh.double_closes.load(Ordering::Relaxed);
    if let Some(by_tag) = &sh.by_tag {
        let by_tag = by_tag.lock().unwrap();
        duplicates += by_tag.values().filter(|&&n| n > 1).count() as u64;
        assert_eq!(by_tag.len() as u64, churned.conns, "every tag closed");
    }
    assert_eq!(open, 0);
    assert_eq!(closed, churned.conns, "every connection closed once");
    assert_eq!(sh.closes.load(Ordering::Relaxed), churned.conns);
    (duplicates, sh.misdelivered.load(Ordering::Relaxed))
}

#[test]
fn churn_20000_connections_no_byte_misdelivered() {
    raise_nofile(4096);
    let seed = fastrand::u64(..);
    let fds_before = open_fds();
    let server = start(true);
    let t0 = Instant::now();
    let churned = churn(
        server.addr,
        seed,
        20_000,
        t0 + Duration::from_secs(120),
        |_| {},
    );
    let took = t0.elapsed();
    let (duplicates, server_wrong) = finish(server, &churned);
    println!(
        "churn: {} connections in {took:.2?} ({:.0}/s), seed {seed}: misdelivered {} at the server, \
         {} at the clients; duplicates {duplicates}; client errors {}; descriptors {fds_before} before, {} after",
        churned.conns,
        churned.conns as f64 / took.as_secs_f64(),
        server_wrong,
        churned.client_misdelivered,
        churned.errors,
        open_fds(),
    );
    assert_eq!(churned.conns, 20_000);
    assert_eq!((server_wrong, churned.client_misdelivered), (0, 0));
    assert_eq!(duplicates, 0);
    assert_eq!(churned.errors, 0);
    assert_eq!(open_fds(), fds_before);
}

#[test]
#[ignore = "30 s soak; .ci/run runs it (cargo test --release --test churn -- --ignored)"]
fn soak_churn_rss_flat() {
    raise_nofile(4096);
    let secs: u64 = std::env::var("HANGUP_SOAK_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let warmup = Duration::from_secs(secs / 6).max(Duration::from_secs(1));
    let seed = fastrand::u64(..);
    let server = start(false);
    let t0 = Instant::now();
    let mut warm_rss = None;
    let mut samples = Vec::new();
    let churned = churn(
        server.addr,
        seed,
        u64::MAX,
        t0 + Duration::from_secs(secs),
        |n| {
            if t0.elapsed() >= warmup {
                let rss = rss_kib();
                warm_rss.get_or_insert((n, rss));
                samples.push(rss);
            }
        },
    );
    let end_rss = rss_kib();
    let (duplicates, server_wrong) = finish(server, &churned);
    let (warm_at, warm) = warm_rss.expect("warm-up sample");
    let peak = samples.iter().copied().max().unwrap_or(end_rss);
    let growth = (end_rss as f64 - warm as f64) / warm as f64 * 100.0;
    println!(
        "soak: {} connections in {:.1?} ({:.0}/s), seed {seed}; RSS {warm} KiB after warm-up \
         ({warm_at} connections), {end_rss} KiB at the end, peak {peak} KiB: growth {growth:+.2}%; \
         misdelivered {}, duplicates {duplicates}, client errors {}",
        churned.conns,
        t0.elapsed(),
        churned.conns as f64 / t0.elapsed().as_secs_f64(),
        server_wrong + churned.client_misdelivered,
        churned.errors,
    );
    assert!(growth <= 5.0, "RSS grew {growth:.2}% after warm-up");
    assert_eq!(server_wrong + churned.client_misdelivered, 0);
    assert_eq!(duplicates, 0);
    assert_eq!(churned.errors, 0);
}
