//! Chaos: many connections, each ended a different way chosen at random from
//! a printed seed, checked from both sides. Covers every `CloseReason` that
//! loopback can produce (`TimedOut` needs a vanished peer: tests/vanish.rs;
//! `Error` needs an errno no loopback peer causes).
//!
//! `HANGUP_CHAOS_SEED` replays a run; `HANGUP_CHAOS_CONNS` sets the count
//! (default 10,000). Its own binary: it silences the handler's scripted panics.

mod util;

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use util::*;

const CLOSE_TIMEOUT: Duration = Duration::from_millis(300);
/// Past what loopback buffers in the kernel (a few MiB each side).
const MAX_WB: usize = 16 * 1024 * 1024;
/// What the server writes before `close()` (under `MAX_WB`).
const QUEUED: usize = 256 * 1024;
/// What the server answers a half-closed peer.
const ANSWER: usize = 100 * 1024;
/// What the server writes to a peer that never reads: past `MAX_WB` plus
/// what the kernel takes.
const FLOOD: usize = 32 * 1024 * 1024;
/// What the server queues before `close()` for a peer that never reads:
/// more than the kernel takes, less than `MAX_WB`.
const UNREAD: usize = 12 * 1024 * 1024;
const TIMER: Duration = Duration::from_millis(100);
const IN_FLIGHT: usize = 200;

/// How a connection ends, and the reason the server must report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Kind {
    /// The client sends data, then its FIN.
    Fin,
    /// The client sends data, then resets.
    Rst,
    /// The server pauses reading; the client sends data it never reads, then resets.
    RstUnread,
    /// The client sends data and half-closes; the server answers, then closes.
    HalfClose,
    /// The server queues output and closes; the client reads it all.
    CloseQueued,
    /// The server aborts.
    Abort,
    /// The client stays silent past the server's idle timeout.
    Idle,
    /// The client stays silent past the server's deadline.
    Deadline,
    /// The server floods a client that never reads, past `max_write_buffer`.
    Backpressure,
    /// The server queues output and closes; the client never reads.
    FlushTimeout,
    /// The handler panics.
    Panic,
    /// The connection is still open when the reactor shuts down.
    Shutdown,
}

const KINDS: [(Kind, u32); 12] = [
    (Kind::Fin, 16),
    (Kind::Rst, 10),
    (Kind::RstUnread, 8),
    (Kind::HalfClose, 10),
    (Kind::CloseQueued, 8),
    (Kind::Abort, 8),
    (Kind::Idle, 6),
    (Kind::Deadline, 6),
    (Kind::Backpressure, 1),
    (Kind::FlushTimeout, 1),
    (Kind::Panic, 8),
    (Kind::Shutdown, 4),
];

impl Kind {
    fn from_u8(b: u8) -> Kind {
        KINDS[b as usize].0
    }
    fn to_u8(self) -> u8 {
        KINDS.iter().position(|&(k, _)| k == self).unwrap() as u8
    }
    fn pick(rng: &mut fastrand::Rng) -> Kind {
        let total: u32 = KINDS.iter().map(|&(_, w)| w).sum();
        let mut x = rng.u32(..total);
        for &(k, w) in &KINDS {
            if x < w {
                return k;
            }
            x -= w;
        }
        unreachable!()
    }
    fn reason(self) -> &'static str {
        match self {
            Kind::Fin | Kind::HalfClose => "PeerClosed",
            Kind::Rst | Kind::RstUnread => "Reset",
            Kind::CloseQueued | Kind::Abort => "Local",
            Kind::Idle => "Idle",
            Kind::Deadline => "Deadline",
            Kind::Backpressure => "Backpressure",
            Kind::FlushTimeout => "FlushTimeout",
            Kind::Panic => "Panicked",
            Kind::Shutdown => "Shutdown",
        }
    }
}

/// What the server saw of one connection.
#[derive(Debug, Default)]
struct Seen {
    kind: Option<Kind>,
    closes: Vec<&'static str>,
    bytes: usize,
    after_close: usize,
}

#[derive(Default)]
struct Log {
    by_tag: HashMap<u64, Seen>,
    untagged_closes: Vec<&'static str>,
}

struct Chaos {
    log: Arc<Mutex<Log>>,
    header: Vec<u8>,
    tag: Option<u64>,
    kind: Option<Kind>,
    bytes: usize,
    closed: bool,
}

impl Chaos {
    fn after_close(&self) {
        if self.closed {
            if let Some(tag) = self.tag {
                self.log
                    .lock()
                    .unwrap()
                    .by_tag
                    .entry(tag)
                    .or_default()
                    .after_close += 1;
            }
        }
    }
}

impl Handler for Chaos {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.after_close();
        let mut data = data;
        if self.tag.is_none() {
            let need = 9 - self.header.len();
            let take = need.min(data.len());
            self.header.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.header.len() < 9 {
                return;
            }
            let tag = u64::from_le_bytes(self.header[..8].try_into().unwrap());
            let kind = Kind::from_u8(self.header[8]);
            self.tag = Some(tag);
            self.kind = Some(kind);
            self.log.lock().unwrap().by_tag.entry(tag).or_default().kind = Some(kind);
            if kind != Kind::Abort {
                conn.write(b"!");
            }
            match kind {
                Kind::RstUnread => conn.pause_reading(),
                Kind::CloseQueued => {
                    conn.write(&vec![b'q'; QUEUED]);
                    conn.close();
                }
                Kind::Abort => conn.abort(),
                Kind::Idle => conn.set_idle_timeout(Some(TIMER)),
                Kind::Deadline => conn.set_deadline(TIMER),
                Kind::Backpressure => {
                    let chunk = vec![b'b'; 64 * 1024];
                    for _ in 0..FLOOD / chunk.len() {
                        conn.write(&chunk);
                    }
                }
                Kind::FlushTimeout => {
                    conn.write(&vec![b'f'; UNREAD]);
                    conn.close();
                }
                Kind::Panic => panic!("chaos: scripted panic"),
                _ => {}
            }
        }
        self.bytes += data.len();
    }

    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        self.after_close();
        if self.kind == Some(Kind::HalfClose) {
            conn.write(&vec![b'a'; ANSWER]);
        }
        conn.close();
    }

    fn on_close(&mut self, reason: CloseReason) {
        self.after_close();
        self.closed = true;
        let mut log = self.log.lock().unwrap();
        match self.tag {
            Some(tag) => {
                let seen = log.by_tag.entry(tag).or_default();
                seen.closes.push(reason.name());
                seen.bytes = self.bytes;
            }
            None => log.untagged_closes.push(reason.name()),
        }
    }
}

/// What the client saw of one connection.
#[derive(Debug)]
struct Outcome {
    tag: u64,
    kind: Kind,
    sent: usize,
    problem: Option<String>,
}

fn reset_on_drop(s: &TcpStream) {
    socket2::SockRef::from(s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// Reads until EOF or an error: (bytes, "eof" or "reset" or the error).
async fn read_all(s: &mut TcpStream) -> (usize, String) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0;
    loop {
        match tokio::time::timeout(WAIT, s.read(&mut buf)).await {
            Err(_) => return (total, "no end within WAIT".into()),
            Ok(Ok(0)) => return (total, "eof".into()),
            Ok(Ok(n)) => total += n,
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => {
                return (total, "reset".into())
            }
            Ok(Err(e)) => return (total, e.to_string()),
        }
    }
}

async fn client(
    addr: SocketAddr,
    tag: u64,
    kind: Kind,
    payload: usize,
    held: Arc<Mutex<Vec<TcpStream>>>,
) -> io::Result<Outcome> {
    let sock = TcpSocket::new_v4()?;
    if matches!(kind, Kind::Backpressure | Kind::FlushTimeout) {
        // A small window: the kernel takes little of what the server queues.
        sock.set_recv_buffer_size(4096)?;
    }
    let mut s = sock.connect(addr).await?;
    let mut header = tag.to_le_bytes().to_vec();
    header.push(kind.to_u8());
    s.write_all(&header).await?;
    let mut out = Outcome {
        tag,
        kind,
        sent: 0,
        problem: None,
    };
    if kind != Kind::Abort {
        let mut ack = [0u8; 1];
        s.read_exact(&mut ack).await?;
    }
    let body = vec![(tag & 0x7f) as u8; payload];
    let mut expect = |got: (usize, String), bytes: usize, end: &str| {
        if got.0 != bytes || got.1 != end {
            out.problem = Some(format!("read {got:?}, wanted ({bytes}, {end})"));
        }
    };
    match kind {
        Kind::Fin => {
            s.write_all(&body).await?;
            out.sent = payload;
            s.shutdown().await?;
            expect(read_all(&mut s).await, 0, "eof");
        }
        Kind::Rst | Kind::RstUnread => {
            s.write_all(&body).await?;
            reset_on_drop(&s);
        }
        Kind::HalfClose => {
            s.write_all(&body).await?;
            out.sent = payload;
            s.shutdown().await?;
            expect(read_all(&mut s).await, ANSWER, "eof");
        }
        Kind::CloseQueued => expect(read_all(&mut s).await, QUEUED, "eof"),
        Kind::Abort => expect(read_all(&mut s).await, 0, "reset"),
        Kind::Idle | Kind::Deadline => expect(read_all(&mut s).await, 0, "eof"),
        Kind::Backpressure | Kind::FlushTimeout => {
            // Never read until the server has given up.
            tokio::time::sleep(CLOSE_TIMEOUT * 3).await;
            let (n, end) = read_all(&mut s).await;
            if end != "reset" {
                out.problem = Some(format!(
                    "read {n} B then {end}: a cut-short output must end in a reset"
                ));
            }
        }
        Kind::Panic => {
            let (_, end) = read_all(&mut s).await;
            if end != "eof" && end != "reset" {
                out.problem = Some(end);
            }
        }
        Kind::Shutdown => held.lock().unwrap().push(s),
    }
    Ok(out)
}

#[test]
fn chaos_every_ending_exactly_once_nothing_lost() {
    init();
    let seed = seed("HANGUP_CHAOS_SEED");
    let conns: u64 = env_u64("HANGUP_CHAOS_CONNS").unwrap_or(10_000);
    println!("chaos: {conns} connections, HANGUP_CHAOS_SEED={seed}");
    raise_nofile(8192);
    // The scripted panics are expected: keep them off stderr.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let scripted = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.starts_with("chaos: "));
        if !scripted {
            default_hook(info);
        }
    }));
    let fds_before = open_fds();

    let log = Arc::new(Mutex::new(Log::default()));
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server_log = log.clone();
    let server = std::thread::spawn(move || -> io::Result<(usize, u64, u64)> {
        let config = Config::default()
            .max_connections(20_000)
            .max_write_buffer(MAX_WB)
            .close_timeout(CLOSE_TIMEOUT);
        let mut reactor = Reactor::with_config(config)?;
        let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), move |_| Chaos {
            log: server_log.clone(),
            header: Vec::new(),
            tag: None,
            kind: None,
            bytes: 0,
            closed: false,
        })?;
        addr_tx.send((addr, reactor.handle())).unwrap();
        reactor.run()?;
        Ok((
            reactor.connection_count(),
            reactor.closed_count(),
            reactor.rejected_count(),
        ))
    });
    let (addr, handle) = addr_rx.recv_timeout(WAIT).expect("server started");

    let mut rng = fastrand::Rng::with_seed(seed);
    let plan: Vec<(u64, Kind, usize)> = (0..conns)
        .map(|tag| (tag, Kind::pick(&mut rng), rng.usize(0..=32 * 1024)))
        .collect();
    let t0 = Instant::now();
    let held = Arc::new(Mutex::new(Vec::new()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let outcomes: Vec<Outcome> = rt.block_on(async {
        let limit = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
        let mut tasks = Vec::new();
        for &(tag, kind, payload) in &plan {
            let permit = limit.clone().acquire_owned().await.unwrap();
            let held = held.clone();
            tasks.push(tokio::spawn(async move {
                let out =
                    tokio::time::timeout(WAIT * 3, client(addr, tag, kind, payload, held)).await;
                drop(permit);
                match out {
                    Ok(Ok(o)) => o,
                    Ok(Err(e)) => Outcome {
                        tag,
                        kind,
                        sent: 0,
                        problem: Some(format!("client error: {e}")),
                    },
                    Err(_) => Outcome {
                        tag,
                        kind,
                        sent: 0,
                        problem: Some("client timed out".into()),
                    },
                }
            }));
        }
        let mut v = Vec::new();
        for t in tasks {
            v.push(t.await.unwrap());
        }
        v
    });
    // Everything but the held connections has ended: shut down, then the
    // held ones must see the server's FIN.
    handle.shutdown();
    // The handle keeps the reactor's waker (an eventfd) alive.
    drop(handle);
    let (open_after, closed, rejected) = server.join().unwrap().expect("server");
    let held: Vec<TcpStream> = std::mem::take(&mut *held.lock().unwrap());
    let held_eofs = rt.block_on(async {
        let mut eofs = 0;
        for mut s in held {
            if read_all(&mut s).await.1 == "eof" {
                eofs += 1;
            }
        }
        eofs
    });
    drop(rt);
    let took = t0.elapsed();

    // Tally.
    let log = log.lock().unwrap();
    let (mut duplicates, mut missing, mut mismatches, mut lost, mut after_close) = (0, 0, 0, 0, 0);
    let mut by_kind = BTreeMap::<Kind, usize>::new();
    let mut problems = Vec::new();
    for o in &outcomes {
        *by_kind.entry(o.kind).or_default() += 1;
        if let Some(p) = &o.problem {
            problems.push(format!("tag {} {:?}: {p}", o.tag, o.kind));
        }
        let Some(seen) = log.by_tag.get(&o.tag) else {
            missing += 1;
            problems.push(format!(
                "tag {} {:?}: never seen by the server",
                o.tag, o.kind
            ));
            continue;
        };
        after_close += seen.after_close;
        match seen.closes.len() {
            0 => {
                missing += 1;
                problems.push(format!("tag {} {:?}: no on_close", o.tag, o.kind));
            }
            1 => {}
            _ => duplicates += 1,
        }
        if let Some(&reason) = seen.closes.first() {
            if reason != o.kind.reason() {
                mismatches += 1;
                problems.push(format!(
                    "tag {} {:?}: reported {reason}, wanted {}",
                    o.tag,
                    o.kind,
                    o.kind.reason()
                ));
            }
        }
        if matches!(o.kind, Kind::Fin | Kind::HalfClose) && seen.bytes != o.sent {
            lost += o.sent.abs_diff(seen.bytes);
            problems.push(format!(
                "tag {} {:?}: server got {} of {} bytes",
                o.tag, o.kind, seen.bytes, o.sent
            ));
        }
    }
    let shutdown_conns = by_kind.get(&Kind::Shutdown).copied().unwrap_or(0);
    let fds_after = open_fds();
    if fds_after != fds_before {
        for e in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
            println!(
                "  fd {:?} -> {:?}",
                e.file_name(),
                std::fs::read_link(e.path())
            );
        }
    }
    println!("chaos: {conns} connections in {took:.2?}; by ending: {by_kind:?}");
    println!(
        "chaos: duplicates {duplicates}, missing {missing}, callbacks after on_close {after_close}, \
         reason mismatches {mismatches}, bytes lost {lost}, untagged closes {}, client problems {}",
        log.untagged_closes.len(),
        outcomes.iter().filter(|o| o.problem.is_some()).count()
    );
    println!(
        "chaos: connection_count after {open_after}, closed {closed}, rejected {rejected}; \
         held peers that saw the shutdown FIN {held_eofs} of {shutdown_conns}; descriptors {fds_before} before, {fds_after} after"
    );
    for p in problems.iter().take(20) {
        println!("  {p}");
    }
    assert!(
        problems.is_empty(),
        "{} problems (first 20 above), HANGUP_CHAOS_SEED={seed}",
        problems.len()
    );
    assert_eq!(
        (duplicates, missing, after_close, mismatches, lost),
        (0, 0, 0, 0, 0)
    );
    assert!(log.untagged_closes.is_empty(), "{:?}", log.untagged_closes);
    assert_eq!(open_after, 0);
    assert_eq!(closed, conns);
    assert_eq!(rejected, 0);
    assert_eq!(held_eofs, shutdown_conns);
    assert_eq!(
        fds_after, fds_before,
        "descriptors back to the count before"
    );
    if conns >= 1_000 {
        for &(k, _) in &KINDS {
            assert!(by_kind.contains_key(&k), "no connection ended as {k:?}");
        }
    }
}
