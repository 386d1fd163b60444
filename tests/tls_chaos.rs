//! 5,000 TLS connections ended at random, seven ways: close_notify,
//! truncation (a FIN without close_notify), reset, an alert (the client
//! rejects our certificate), our close, our abort, and the handshake
//! timeout. Each must get one `on_close` with the reason its ending
//! implies, and on the endings after which nothing can be lost, every byte
//! the client sent reached `on_data` first. The clients are rustls clients
//! on blocking sockets, on 8 threads; `HANGUP_TLS_CHAOS_CONNS` sets the
//! count, `HANGUP_TLS_CHAOS_SEED` replays a run.
#![cfg(feature = "tls")]

mod util;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor, TlsAlert};
use util::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Ending {
    CloseNotify,
    Truncate,
    Reset,
    Alert,
    OurClose,
    Abort,
    Silent,
}

const ENDINGS: [Ending; 7] = [
    Ending::CloseNotify,
    Ending::Truncate,
    Ending::Reset,
    Ending::Alert,
    Ending::OurClose,
    Ending::Abort,
    Ending::Silent,
];

struct Server {
    peer: SocketAddr,
    bytes: usize,
    tx: Sender<(SocketAddr, CloseReason, usize)>,
}

impl Handler for Server {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.bytes += data.len();
        if data.contains(&b'C') {
            conn.close();
        } else if data.contains(&b'A') {
            conn.abort();
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send((self.peer, reason, self.bytes));
    }
}

/// A connection from a loopback address of its own (127.1.x.y), so that
/// its address names it for the whole test: ports are reused once a
/// connection is gone, addresses are not.
fn connect_from(i: usize, addr: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let local = SocketAddr::from(([127, 1, (i >> 8) as u8, (i & 255) as u8], 0));
    s.bind(&local.into()).unwrap();
    s.connect(&addr.into()).unwrap();
    s.into()
}

/// Runs client `i` through `ending`; returns its local address and the
/// bytes it sent.
fn client(
    i: usize,
    addr: SocketAddr,
    ending: Ending,
    len: usize,
    trusted: &Arc<rustls::ClientConfig>,
    untrusted: &Arc<rustls::ClientConfig>,
) -> (SocketAddr, usize) {
    let mut s = connect_from(i, addr);
    s.set_read_timeout(Some(WAIT)).unwrap();
    let local = s.local_addr().unwrap();
    let config = if ending == Ending::Alert {
        untrusted
    } else {
        trusted
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(config.clone(), name).unwrap();
    while c.is_handshaking() {
        if c.complete_io(&mut s).is_err() {
            // The alert rustls made goes out; then we leave.
            let _ = c.write_tls(&mut s);
            assert_eq!(ending, Ending::Alert, "handshake failed for {ending:?}");
            return (local, 0);
        }
    }
    let mut payload = vec![b'x'; len];
    match ending {
        Ending::OurClose => payload.push(b'C'),
        Ending::Abort => payload.push(b'A'),
        _ => {}
    }
    c.writer().write_all(&payload).unwrap();
    if ending == Ending::CloseNotify {
        c.send_close_notify();
    }
    while c.wants_write() {
        c.write_tls(&mut s).unwrap();
    }
    match ending {
        Ending::Truncate => {
            let _ = s.shutdown(std::net::Shutdown::Write);
        }
        Ending::Reset => {
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            return (local, payload.len());
        }
        _ => {}
    }
    // Read to the end (the server's close_notify, its FIN or its reset).
    let mut buf = [0u8; 4096];
    loop {
        match c.read_tls(&mut s) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if c.process_new_packets().is_err() {
                    break;
                }
                let _ = c.reader().read(&mut buf);
            }
        }
    }
    (local, payload.len())
}

#[test]
fn five_thousand_tls_connections_ended_at_random() {
    init();
    let n = env_u64("HANGUP_TLS_CHAOS_CONNS").unwrap_or(5_000) as usize;
    let seed = seed("HANGUP_TLS_CHAOS_SEED");
    println!("HANGUP_TLS_CHAOS_SEED={seed}");
    raise_nofile(4 * n as u64 + 500);
    let (server, roots) = util::tls::certified();
    let trusted = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let untrusted = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    );
    let (tx, rx) = channel();
    let (htx, hrx) = channel();
    let t = std::thread::spawn(move || {
        let config = Config::default()
            .handshake_timeout(Some(Duration::from_millis(500)))
            .listen_backlog(4096);
        let mut r = Reactor::with_config(config).unwrap();
        let addr = r
            .listen_tls("127.0.0.1:0".parse().unwrap(), server, move |peer| Server {
                peer,
                bytes: 0,
                tx: tx.clone(),
            })
            .unwrap();
        htx.send((addr, r.handle())).unwrap();
        r.run().unwrap();
    });
    let (addr, handle) = hrx.recv_timeout(WAIT).unwrap();
    let mut rng = fastrand::Rng::with_seed(seed);
    let plan: Vec<(usize, Ending, usize)> = (0..n)
        .map(|i| (i, ENDINGS[rng.usize(..ENDINGS.len())], rng.usize(..20_000)))
        .collect();
    let start = Instant::now();
    // The silent ones first, all at once: they meet the handshake timeout
    // together while the others run.
    let silent: Vec<TcpStream> = plan
        .iter()
        .filter(|(_, e, _)| *e == Ending::Silent)
        .map(|(i, _, _)| connect_from(*i, addr))
        .collect();
    let mut expected: HashMap<SocketAddr, (Ending, usize)> = silent
        .iter()
        .map(|s| (s.local_addr().unwrap(), (Ending::Silent, 0)))
        .collect();
    let active: Vec<(usize, Ending, usize)> = plan
        .into_iter()
        .filter(|(_, e, _)| *e != Ending::Silent)
        .collect();
    let threads = 8;
    let chunks: Vec<Vec<(usize, Ending, usize)>> = (0..threads)
        .map(|k| active.iter().skip(k).step_by(threads).copied().collect())
        .collect();
    let workers: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let (tr, un) = (trusted.clone(), untrusted.clone());
            std::thread::spawn(move || {
                chunk
                    .into_iter()
                    .map(|(i, e, len)| {
                        let (local, sent) = client(i, addr, e, len, &tr, &un);
                        (local, (e, sent))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for w in workers {
        expected.extend(w.join().unwrap());
    }
    let mut seen: HashMap<SocketAddr, (CloseReason, usize)> = HashMap::new();
    let mut problems = Vec::new();
    while seen.len() < expected.len() {
        let (peer, reason, bytes) = rx
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("only {} of {} closes", seen.len(), expected.len()));
        if let Some(prev) = seen.insert(peer, (reason.clone(), bytes)) {
            problems.push(format!("{peer}: on_close twice: {prev:?} then {reason}"));
        }
    }
    let took = start.elapsed();
    drop(silent);
    let mut by_ending: HashMap<String, usize> = HashMap::new();
    for (peer, (ending, sent)) in &expected {
        let Some((reason, bytes)) = seen.get(peer) else {
            problems.push(format!("{peer} ({ending:?}): no on_close"));
            continue;
        };
        let ok = match ending {
            Ending::CloseNotify => *reason == CloseReason::PeerClosed && bytes == sent,
            Ending::Truncate => {
                *reason
                    == CloseReason::TlsTruncated {
                        at_record_boundary: true,
                    }
                    && bytes == sent
            }
            Ending::Reset => *reason == CloseReason::Reset,
            Ending::Alert => *reason == CloseReason::TlsAlert(TlsAlert { code: 48 }),
            Ending::OurClose | Ending::Abort => *reason == CloseReason::Local && bytes == sent,
            Ending::Silent => *reason == CloseReason::TlsHandshakeTimeout,
        };
        if !ok {
            problems.push(format!(
                "{peer} ({ending:?}, sent {sent}): {reason} after {bytes} B"
            ));
        }
        *by_ending.entry(format!("{ending:?}")).or_default() += 1;
    }
    handle.shutdown();
    t.join().unwrap();
    let mut counts: Vec<_> = by_ending.into_iter().collect();
    counts.sort();
    println!(
        "{} TLS connections in {:.1} s: {counts:?}; {} problems",
        expected.len(),
        took.as_secs_f64(),
        problems.len()
    );
    assert!(
        problems.is_empty(),
        "{:#?}",
        &problems[..problems.len().min(20)]
    );
}
