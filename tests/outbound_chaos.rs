//! Outbound chaos: thousands of outbound connects, each ended a way chosen
//! at random from a printed seed (refused; timed out against a full
//! backlog; accepted then reset; the peer's data then FIN; our close; our
//! abort; our `shutdown_write` then the peer's FIN), checked from both
//! sides: one `on_close` each with the reason the way asks for, no
//! `on_open` for a failed connect, no connect timeout early, every byte
//! where it should be, and descriptors back to the count before.
//!
//! `HANGUP_OUTBOUND_CHAOS_SEED` replays a run; `HANGUP_OUTBOUND_CHAOS_CONNS`
//! sets the count (default 5,000).

mod util;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use util::*;

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// What we write before close, abort or shutdown_write.
const PAYLOAD: usize = 48 * 1024;
/// What the peer writes before its FIN.
const DATA: usize = 40 * 1024;
const IN_FLIGHT: usize = 200;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Way {
    Refused,
    ConnectTimeout,
    AcceptedThenReset,
    DataThenFin,
    OurClose,
    OurAbort,
    ShutdownWriteThenPeerFin,
}

const WAYS: [Way; 7] = [
    Way::Refused,
    Way::ConnectTimeout,
    Way::AcceptedThenReset,
    Way::DataThenFin,
    Way::OurClose,
    Way::OurAbort,
    Way::ShutdownWriteThenPeerFin,
];

impl Way {
    /// (on_open, reason name, io error kind) the handler must see.
    fn expected(self) -> (bool, &'static str, Option<io::ErrorKind>) {
        match self {
            Way::Refused => (
                false,
                "ConnectFailed",
                Some(io::ErrorKind::ConnectionRefused),
            ),
            Way::ConnectTimeout => (false, "ConnectFailed", Some(io::ErrorKind::TimedOut)),
            Way::AcceptedThenReset => (true, "Reset", None),
            Way::DataThenFin => (true, "PeerClosed", None),
            Way::OurClose | Way::OurAbort => (true, "Local", None),
            Way::ShutdownWriteThenPeerFin => (true, "PeerClosed", None),
        }
    }
}

#[derive(Debug)]
struct Ended {
    way: Way,
    opened: bool,
    got: usize,
    reason: CloseReason,
    after: Duration,
}

struct Out {
    way: Way,
    started: Instant,
    opened: bool,
    got: usize,
    tx: Sender<Ended>,
}

impl Handler for Out {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.opened = true;
        let payload = vec![b'o'; PAYLOAD];
        match self.way {
            Way::OurClose => {
                conn.write(&payload);
                conn.close();
            }
            Way::OurAbort => {
                conn.write(&payload);
                conn.abort();
            }
            Way::ShutdownWriteThenPeerFin => {
                conn.write(&payload);
                conn.shutdown_write();
            }
            _ => {}
        }
    }
    fn on_data(&mut self, _: &mut Conn<'_>, data: &[u8]) {
        self.got += data.len();
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(Ended {
            way: self.way,
            opened: self.opened,
            got: self.got,
            reason,
            after: self.started.elapsed(),
        });
    }
}

/// What a peer saw: its listener's way, bytes read, and how reading ended.
#[derive(Debug)]
struct PeerSaw {
    way: Way,
    read: usize,
    end: String,
}

async fn read_all(s: &mut tokio::net::TcpStream) -> (usize, String) {
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

async fn peer(way: Way, mut s: tokio::net::TcpStream) -> PeerSaw {
    let mut saw = PeerSaw {
        way,
        read: 0,
        end: String::new(),
    };
    match way {
        Way::AcceptedThenReset => {
            let _ = socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO));
            saw.end = "reset sent".into();
        }
        Way::DataThenFin => {
            let data = vec![b'p'; DATA];
            if let Err(e) = s.write_all(&data).await {
                saw.end = format!("write: {e}");
                return saw;
            }
            let _ = s.shutdown().await;
            (saw.read, saw.end) = read_all(&mut s).await;
        }
        Way::ShutdownWriteThenPeerFin => {
            (saw.read, saw.end) = read_all(&mut s).await;
            let _ = s.shutdown().await;
        }
        _ => (saw.read, saw.end) = read_all(&mut s).await,
    }
    saw
}

#[test]
fn outbound_chaos_every_ending_once_with_its_reason() {
    init();
    let seed = seed("HANGUP_OUTBOUND_CHAOS_SEED");
    let conns: usize = env_u64("HANGUP_OUTBOUND_CHAOS_CONNS").map_or(5_000, |n| n as usize);
    println!("outbound chaos: {conns} connects, HANGUP_OUTBOUND_CHAOS_SEED={seed}");
    raise_nofile(4096);

    // The peers: one listener per way that needs one, served by tokio.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (peer_tx, peer_rx) = channel::<PeerSaw>();
    let mut listen_at = BTreeMap::new();
    for way in [
        Way::AcceptedThenReset,
        Way::DataThenFin,
        Way::OurClose,
        Way::OurAbort,
        Way::ShutdownWriteThenPeerFin,
    ] {
        let l = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        listen_at.insert(way, l.local_addr().unwrap());
        let tx = peer_tx.clone();
        rt.spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tx.send(peer(way, s).await);
                });
            }
        });
    }
    let (hole, _hole) = blackhole();
    // Bound, not listening: a SYN gets a reset, and no connect of ours can
    // take the port as its own (which could connect to itself).
    let closed_port =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    closed_port
        .bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    let refused = closed_port.local_addr().unwrap().as_socket().unwrap();
    listen_at.insert(Way::Refused, refused);
    listen_at.insert(Way::ConnectTimeout, hole);

    let config = Config::default()
        .connect_timeout(Some(CONNECT_TIMEOUT))
        .close_timeout(Duration::from_secs(2));
    let mut r = Reactor::with_config(config).unwrap();
    let fds_before = open_fds();
    let (tx, rx) = channel::<Ended>();
    let mut rng = fastrand::Rng::with_seed(seed);
    let plan: Vec<Way> = (0..conns).map(|_| WAYS[rng.usize(..WAYS.len())]).collect();
    let t0 = Instant::now();
    let mut started = 0;
    let mut ended = Vec::with_capacity(conns);
    let deadline = t0 + Duration::from_secs(120);
    while ended.len() < conns {
        assert!(
            Instant::now() < deadline,
            "{} of {conns} ended in 120 s",
            ended.len()
        );
        while started < conns && started - ended.len() < IN_FLIGHT {
            let way = plan[started];
            let h = Out {
                way,
                started: Instant::now(),
                opened: false,
                got: 0,
                tx: tx.clone(),
            };
            r.connect(listen_at[&way], h).expect("a socket");
            started += 1;
        }
        r.run_once(Some(Duration::from_millis(10))).unwrap();
        ended.extend(rx.try_iter());
    }
    let took = t0.elapsed();
    assert_eq!(r.connection_count(), 0);
    // Every peer that accepted reports how its side ended.
    let accepted = plan
        .iter()
        .filter(|w| !matches!(w, Way::Refused | Way::ConnectTimeout))
        .count();
    let mut peers = Vec::with_capacity(accepted);
    while peers.len() < accepted {
        match peer_rx.recv_timeout(WAIT) {
            Ok(p) => peers.push(p),
            Err(_) => panic!("{} of {accepted} peers reported", peers.len()),
        }
    }
    wait_until("descriptors back", || open_fds() == fds_before);
    let fds_after = open_fds();
    drop(r);

    let mut problems = Vec::new();
    let mut tally = BTreeMap::<(Way, String), usize>::new();
    let mut earliest_timeout = Duration::MAX;
    for e in &ended {
        let (opened, name, kind) = e.way.expected();
        *tally
            .entry((e.way, e.reason.name().to_string()))
            .or_default() += 1;
        let got_kind = e.reason.io_error().map(|x| x.kind());
        if e.opened != opened || e.reason.name() != name || (kind.is_some() && got_kind != kind) {
            problems.push(format!("{:?}: on_open {} {:?}", e.way, e.opened, e.reason));
        }
        if e.way == Way::ConnectTimeout {
            earliest_timeout = earliest_timeout.min(e.after);
            if e.after < CONNECT_TIMEOUT {
                problems.push(format!("connect timed out early: {:?}", e.after));
            }
        }
        if e.way == Way::DataThenFin && e.got != DATA {
            problems.push(format!(
                "DataThenFin: got {} of {DATA} B before on_close",
                e.got
            ));
        }
    }
    for p in &peers {
        let ok = match p.way {
            Way::OurClose | Way::ShutdownWriteThenPeerFin => p.read == PAYLOAD && p.end == "eof",
            Way::OurAbort => p.end == "reset",
            Way::DataThenFin => p.end == "eof",
            Way::AcceptedThenReset => true,
            Way::Refused | Way::ConnectTimeout => false,
        };
        if !ok {
            problems.push(format!(
                "peer of {:?} read {} B then {}",
                p.way, p.read, p.end
            ));
        }
    }
    println!(
        "outbound chaos: {conns} connects in {took:.2?}, {} on_close, {} peers; \
         earliest connect timeout {earliest_timeout:?} (asked {CONNECT_TIMEOUT:?}); \
         descriptors {} -> {}",
        ended.len(),
        peers.len(),
        fds_before,
        fds_after
    );
    for ((way, reason), n) in &tally {
        println!("  {way:?}: {reason} x {n}");
    }
    assert_eq!(ended.len(), conns, "one on_close per connect");
    assert!(
        problems.is_empty(),
        "HANGUP_OUTBOUND_CHAOS_SEED={seed}: {} problems, first: {:?}",
        problems.len(),
        &problems[..problems.len().min(10)]
    );
}
