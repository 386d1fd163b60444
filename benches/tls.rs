//! hangup's TLS against tokio-rustls: the same rustls and the same `ring`
//! provider, the same client, in interleaved rounds of one run.
//!
//! ```text
//! cargo bench -p hangup-benches --features tls --bench tls
//! HANGUP_ROUNDS=9 cargo bench -p hangup-benches --features tls --bench tls
//! ```
//!
//! - churn: 1,000 connections, 16 at a time: TCP connect, TLS 1.3
//!   handshake, 1 byte, close_notify; the server answers 1 byte and its
//!   own close_notify. Connections per second, as the client sees them.
//! - bulk: one connection sends 128 MiB; the server reads it all, then
//!   answers 1 byte. MiB per second.
//! - memory: 2,000 idle TLS connections (handshake done), the server's
//!   resident set before and after, per connection (server in its own
//!   process, client in another).
//!
//! Each server runs on one thread: hangup's `Reactor` with `listen_tls`, and
//! a tokio `current_thread` runtime with a `TlsAcceptor` task per connection
//! (as tokio-rustls' README writes it). The client is tokio-rustls in a
//! child process, the same for both.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Conn, Handler, Reactor};
use hangup_benches::{median, rounds};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CHURN: usize = 1_000;
const IN_FLIGHT: usize = 16;
const BULK: usize = 128 << 20;
const IDLE: usize = 2_000;

fn certified() -> (Vec<u8>, Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    (ck.cert.der().to_vec(), ck.signing_key.serialize_der())
}

fn server_config(cert: &[u8], key: &[u8]) -> Arc<rustls::ServerConfig> {
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(key.to_vec().into());
    Arc::new(
        rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(vec![cert.to_vec().into()], key)
            .unwrap(),
    )
}

// ---------------------------------------------------------------- servers

/// Reads to the peer's close_notify, then answers 1 byte and closes.
struct Sink;

impl Handler for Sink {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        conn.write(b"k");
        conn.close();
    }
    fn on_close(&mut self, _: CloseReason) {}
}

/// Starts a server of `imp` on its own thread; its address and a stopper.
fn start(imp: &str, config: Arc<rustls::ServerConfig>) -> (SocketAddr, Box<dyn FnOnce()>) {
    match imp {
        "hangup" => {
            let (tx, rx) = std::sync::mpsc::channel();
            let t = std::thread::spawn(move || {
                let mut r = Reactor::new().unwrap();
                let addr = r
                    .listen_tls("127.0.0.1:0".parse().unwrap(), config, |_| Sink)
                    .unwrap();
                tx.send((addr, r.handle())).unwrap();
                r.run().unwrap();
            });
            let (addr, handle) = rx.recv().unwrap();
            (
                addr,
                Box::new(move || {
                    handle.shutdown();
                    t.join().unwrap();
                }),
            )
        }
        _ => {
            let (tx, rx) = std::sync::mpsc::channel();
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
            let t = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    tx.send((l.local_addr().unwrap(), ())).unwrap();
                    let acceptor = tokio_rustls::TlsAcceptor::from(config);
                    let serve = async {
                        loop {
                            let (s, _) = l.accept().await.unwrap();
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let Ok(mut t) = acceptor.accept(s).await else {
                                    return;
                                };
                                let mut buf = vec![0u8; 16 * 1024];
                                loop {
                                    match t.read(&mut buf).await {
                                        Ok(0) | Err(_) => break,
                                        Ok(_) => {}
                                    }
                                }
                                let _ = t.write_all(b"k").await;
                                let _ = t.shutdown().await;
                            });
                        }
                    };
                    tokio::select! {
                        _ = serve => {}
                        _ = stop_rx => {}
                    }
                });
            });
            let (addr, ()) = rx.recv().unwrap();
            (
                addr,
                Box::new(move || {
                    let _ = stop_tx.send(());
                    t.join().unwrap();
                }),
            )
        }
    }
}

// ---------------------------------------------------------------- client

fn client_config(cert: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.to_vec().into()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn one(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    payload: &[u8],
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut t = connector.connect(name, s).await.unwrap();
    if !payload.is_empty() {
        t.write_all(payload).await.unwrap();
    }
    t
}

async fn finish(mut t: tokio_rustls::client::TlsStream<tokio::net::TcpStream>) {
    t.shutdown().await.unwrap();
    let mut back = Vec::new();
    let _ = t.read_to_end(&mut back).await;
    assert_eq!(back, b"k");
}

/// The child process: `client MODE ADDR CERTFILE`; prints its elapsed
/// seconds (churn, bulk), or "ready" and holds (hold).
fn client(mode: &str, addr: SocketAddr, cert_file: &str) {
    let _ = rlimit::increase_nofile_limit(20_000);
    let cert = std::fs::read(cert_file).unwrap();
    let connector = tokio_rustls::TlsConnector::from(client_config(&cert));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        match mode {
            "churn" => {
                let t0 = Instant::now();
                let sem = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT));
                let mut tasks = Vec::with_capacity(CHURN);
                for _ in 0..CHURN {
                    let permit = sem.clone().acquire_owned().await.unwrap();
                    let c = connector.clone();
                    tasks.push(tokio::spawn(async move {
                        let t = one(&c, addr, b"x").await;
                        finish(t).await;
                        drop(permit);
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
                println!("{}", t0.elapsed().as_secs_f64());
            }
            "bulk" => {
                let chunk = vec![7u8; 1 << 20];
                let t0 = Instant::now();
                let mut t = one(&connector, addr, &[]).await;
                for _ in 0..BULK / chunk.len() {
                    t.write_all(&chunk).await.unwrap();
                }
                finish(t).await;
                println!("{}", t0.elapsed().as_secs_f64());
            }
            "hold" => {
                let mut held = Vec::with_capacity(IDLE);
                for _ in 0..IDLE {
                    held.push(one(&connector, addr, &[]).await);
                }
                println!("ready");
                tokio::time::sleep(Duration::from_secs(120)).await;
            }
            other => panic!("unknown client mode {other}"),
        }
    });
}

fn run_client(mode: &str, addr: SocketAddr, cert_file: &str) -> f64 {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["client", mode, &addr.to_string(), cert_file])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

// ---------------------------------------------------------------- memory

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// The child process: `memserver IMP CERTFILE KEYFILE`: a server of `imp`
/// here, a holding client in another process; prints the bytes per
/// connection.
fn memserver(imp: &str, cert_file: &str, key_file: &str) {
    let _ = rlimit::increase_nofile_limit(20_000);
    let cert = std::fs::read(cert_file).unwrap();
    let key = std::fs::read(key_file).unwrap();
    let (addr, stop) = start(imp, server_config(&cert, &key));
    // Warm up: a few connections through, so that first-use allocations
    // are not counted.
    for _ in 0..3 {
        run_client("churn-small", addr, cert_file);
    }
    let before = rss_bytes();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["client", "hold", &addr.to_string(), cert_file])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_bytes();
    let _ = child.kill();
    let _ = child.wait();
    stop();
    println!("{}", (after.saturating_sub(before)) as f64 / IDLE as f64);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("client") if args[2] == "churn-small" => {
            // A short warm-up run: a few connections.
            let cert = std::fs::read(&args[4]).unwrap();
            let connector = tokio_rustls::TlsConnector::from(client_config(&cert));
            let addr: SocketAddr = args[3].parse().unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                for _ in 0..8 {
                    let t = one(&connector, addr, b"x").await;
                    finish(t).await;
                }
            });
            println!("0");
            return;
        }
        Some("client") => return client(&args[2], args[3].parse().unwrap(), &args[4]),
        Some("memserver") => return memserver(&args[2], &args[3], &args[4]),
        Some("--test") | Some("--list") => return,
        _ => {}
    }
    let rounds = rounds(5);
    let dir = std::env::temp_dir().join(format!("hangup-bench-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = certified();
    let cert_file = dir.join("cert.der");
    let key_file = dir.join("key.der");
    std::fs::write(&cert_file, &cert).unwrap();
    std::fs::write(&key_file, &key).unwrap();
    let cert_arg = cert_file.to_str().unwrap();
    let config = server_config(&cert, &key);
    let impls = ["hangup", "tokio-rustls"];
    let servers: Vec<(SocketAddr, Box<dyn FnOnce()>)> =
        impls.iter().map(|i| start(i, config.clone())).collect();
    let mut churn = vec![Vec::new(); impls.len()];
    let mut bulk = vec![Vec::new(); impls.len()];
    for round in 0..rounds {
        for k in 0..impls.len() {
            let i = (k + round) % impls.len();
            let addr = servers[i].0;
            churn[i].push(CHURN as f64 / run_client("churn", addr, cert_arg));
            bulk[i].push((BULK >> 20) as f64 / run_client("bulk", addr, cert_arg));
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }
    for (_, stop) in servers {
        stop();
    }
    let mut mem = Vec::new();
    for imp in impls {
        let out = Command::new(std::env::current_exe().unwrap())
            .args(["memserver", imp, cert_arg, key_file.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        mem.push(
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<f64>()
                .unwrap(),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    let c: Vec<f64> = churn.iter_mut().map(|v| median(v)).collect();
    let b: Vec<f64> = bulk.iter_mut().map(|v| median(v)).collect();
    println!("Median of {rounds} interleaved rounds; the same tokio-rustls client for both.\n");
    println!("| measure | hangup | tokio-rustls | hangup vs tokio-rustls |");
    println!("|---|---|---|---|");
    println!(
        "| churn: handshake + 1 B + close, {CHURN} conns, {IN_FLIGHT} in flight | {:.0} conn/s | {:.0} conn/s | {:.3} |",
        c[0], c[1], c[0] / c[1]
    );
    println!(
        "| bulk: {} MiB on one connection | {:.0} MiB/s | {:.0} MiB/s | {:.3} |",
        BULK >> 20,
        b[0],
        b[1],
        b[0] / b[1]
    );
    println!(
        "| memory per idle TLS connection ({IDLE}) | {:.0} B | {:.0} B | {:.3} |",
        mem[0],
        mem[1],
        mem[0] / mem[1]
    );
}
