//! TLS through the same Handler (feature `tls`), against clients nobody here
//! wrote: Python's `ssl` (on OpenSSL) and `openssl s_client`. Each way a TLS
//! connection ends, with the reason hangup reports and what the client saw.
#![cfg(feature = "tls")]

mod util;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor, TlsAlert};
use util::*;

/// A server config with a fresh self-signed certificate for "localhost".
fn server_config() -> Arc<rustls::ServerConfig> {
    util::tls::certified().0
}

#[allow(dead_code)] // the payloads are for the failure messages
#[derive(Debug)]
enum Seen {
    Open(String),
    Data(usize),
    Close(CloseReason, usize, Instant),
}

#[derive(Clone, Copy, Default)]
struct Script {
    echo: bool,
    write_on_open: usize,
    close_on_open: bool,
    abort_on_open: bool,
}

struct Tls {
    tx: Sender<Seen>,
    script: Script,
    bytes: usize,
}

impl Handler for Tls {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let facts = conn
            .tls()
            .map(|t| format!("{:?}", t.protocol_version()))
            .unwrap_or_default();
        let _ = self.tx.send(Seen::Open(facts));
        if self.script.write_on_open > 0 {
            conn.write(&vec![b'x'; self.script.write_on_open]);
        }
        if self.script.close_on_open {
            conn.close();
        }
        if self.script.abort_on_open {
            conn.abort();
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.bytes += data.len();
        let _ = self.tx.send(Seen::Data(data.len()));
        if self.script.echo {
            conn.write(data);
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self
            .tx
            .send(Seen::Close(reason, self.bytes, Instant::now()));
    }
}

struct TlsServer {
    addr: SocketAddr,
    rx: Receiver<Seen>,
    handle: hangup::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsServer {
    fn start(config: Config, script: Script) -> TlsServer {
        init();
        let (tx, rx) = channel();
        let (ready_tx, ready_rx) = channel();
        let tls = server_config();
        let thread = std::thread::spawn(move || {
            let mut r = Reactor::with_config(config).unwrap();
            let addr = r
                .listen_tls("127.0.0.1:0".parse().unwrap(), tls, move |_| Tls {
                    tx: tx.clone(),
                    script,
                    bytes: 0,
                })
                .unwrap();
            ready_tx.send((addr, r.handle())).unwrap();
            r.run().unwrap();
        });
        let (addr, handle) = ready_rx.recv_timeout(WAIT).unwrap();
        TlsServer {
            addr,
            rx,
            handle,
            thread: Some(thread),
        }
    }

    /// Waits for the close; returns it, the bytes before it, and whether
    /// `on_open` came first.
    fn closed(&self) -> (CloseReason, usize, bool, Instant) {
        let mut opened = false;
        loop {
            match self.rx.recv_timeout(WAIT).expect("an event") {
                Seen::Open(_) => opened = true,
                Seen::Data(_) => {}
                Seen::Close(r, n, at) => return (r, n, opened, at),
            }
        }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.handle.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Runs the Python client; its output.
fn python(mode: &str, addr: SocketAddr, arg: &str) -> Option<String> {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/util/tls_client.py");
    let out = match Command::new("python3")
        .args([script, mode, "127.0.0.1", &addr.port().to_string(), arg])
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            println!("SKIPPED: python3 not available ({e})");
            return None;
        }
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("python {mode}: {text}");
    assert!(out.status.success(), "the client failed: {text}");
    Some(text)
}

#[test]
fn close_notify_after_all_data_is_peer_closed() {
    let s = TlsServer::start(
        Config::default(),
        Script {
            echo: true,
            ..Script::default()
        },
    );
    let Some(out) = python("echo-close-notify", s.addr, "100000") else {
        return;
    };
    assert!(out.contains("echoed 100000 same"), "{out}");
    assert!(
        out.contains("unwrapped"),
        "our close_notify answered hers: {out}"
    );
    let (reason, bytes, opened, _) = s.closed();
    assert!(opened);
    assert_eq!(reason, CloseReason::PeerClosed, "{reason}");
    assert_eq!(bytes, 100_000, "every byte before on_close");
}

#[test]
fn a_fin_without_close_notify_is_a_truncation_between_records() {
    let s = TlsServer::start(Config::default(), Script::default());
    let Some(_) = python("truncate", s.addr, "5000") else {
        return;
    };
    let (reason, bytes, opened, _) = s.closed();
    assert!(opened);
    assert_eq!(
        reason,
        CloseReason::TlsTruncated {
            at_record_boundary: true
        },
        "{reason}"
    );
    assert_eq!(bytes, 5000, "the bytes before the FIN were delivered");
}

#[test]
fn a_stream_cut_inside_a_record_is_a_truncation_inside_it() {
    let s = TlsServer::start(Config::default(), Script::default());
    let Some(_) = python("truncate-mid", s.addr, "0") else {
        return;
    };
    let (reason, _, opened, _) = s.closed();
    assert!(opened);
    assert_eq!(
        reason,
        CloseReason::TlsTruncated {
            at_record_boundary: false
        },
        "{reason}"
    );
}

#[test]
fn a_client_that_rejects_our_certificate_sends_an_alert() {
    let s = TlsServer::start(Config::default(), Script::default());
    let Some(out) = python("reject-cert", s.addr, "0") else {
        return;
    };
    assert!(out.contains("verify failed"), "{out}");
    let (reason, _, opened, _) = s.closed();
    assert!(!opened, "no on_open for a handshake that failed");
    assert_eq!(
        reason,
        CloseReason::TlsAlert(TlsAlert { code: 48 }),
        "{reason}"
    );
    assert_eq!(
        reason.to_string(),
        "TLS alert from the peer: unknown_ca (48)"
    );
}

#[test]
fn a_plaintext_client_is_a_failed_handshake() {
    let s = TlsServer::start(Config::default(), Script::default());
    let Some(_) = python("plaintext", s.addr, "0") else {
        return;
    };
    let (reason, _, opened, _) = s.closed();
    assert!(!opened);
    match &reason {
        CloseReason::TlsHandshakeFailed(e) => {
            let inner = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            assert!(inner.is_some(), "rustls' error inside: {e:?}");
        }
        other => panic!("{other}"),
    }
}

#[test]
fn a_silent_client_meets_the_handshake_timeout() {
    let config = Config::default().handshake_timeout(Some(Duration::from_millis(300)));
    let s = TlsServer::start(config, Script::default());
    let t = Instant::now();
    let Some(out) = python("silent", s.addr, "2") else {
        return;
    };
    let (reason, _, opened, at) = s.closed();
    assert!(!opened);
    assert_eq!(reason, CloseReason::TlsHandshakeTimeout, "{reason}");
    let took = at.duration_since(t);
    assert!(took >= Duration::from_millis(300), "not early: {took:?}");
    assert!(out.contains("silent closed"), "{out}");
}

#[test]
fn our_close_sends_all_output_then_close_notify() {
    let s = TlsServer::start(
        Config::default(),
        Script {
            write_on_open: 1 << 20,
            close_on_open: true,
            ..Script::default()
        },
    );
    let Some(out) = python("read-all", s.addr, "0") else {
        return;
    };
    assert!(out.contains("end close_notify"), "{out}");
    assert!(out.contains(&format!("got {}", 1 << 20)), "{out}");
    let (reason, _, opened, _) = s.closed();
    assert!(opened);
    assert_eq!(reason, CloseReason::Local, "{reason}");
}

#[test]
fn abort_sends_no_close_notify() {
    let s = TlsServer::start(
        Config::default(),
        Script {
            abort_on_open: true,
            ..Script::default()
        },
    );
    let Some(out) = python("read-all", s.addr, "0") else {
        return;
    };
    assert!(!out.contains("end close_notify"), "{out}");
    assert!(
        out.contains("end eof") || out.contains("end reset"),
        "{out}"
    );
    let (reason, _, opened, _) = s.closed();
    assert!(opened);
    assert_eq!(reason, CloseReason::Local, "{reason}");
}

#[test]
fn openssl_s_client_echoes_and_closes_with_close_notify() {
    let s = TlsServer::start(
        Config::default(),
        Script {
            echo: true,
            ..Script::default()
        },
    );
    // -brief, not -quiet: -quiet ignores stdin's EOF, where s_client
    // otherwise sends its close_notify and ends.
    let child = Command::new("timeout")
        .args([
            "20",
            "openssl",
            "s_client",
            "-brief",
            "-connect",
            &s.addr.to_string(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("SKIPPED: openssl not available");
        return;
    };
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello through s_client\n").unwrap();
    // Let the echo come back before stdin's EOF ends the session.
    std::thread::sleep(Duration::from_millis(500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("s_client: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("hello through s_client"), "{stdout}");
    let (reason, bytes, opened, _) = s.closed();
    assert!(opened);
    assert_eq!(bytes, 23);
    assert_eq!(reason, CloseReason::PeerClosed, "{reason}");
}

/// An outbound TLS connection: says hello on open, closes once it is back.
struct Client {
    tx: Sender<Seen>,
    got: usize,
}

impl Handler for Client {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let facts = conn
            .tls()
            .map(|t| format!("{:?}", t.protocol_version()))
            .unwrap_or_default();
        let _ = self.tx.send(Seen::Open(facts));
        conn.write(b"hello, python");
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.got += data.len();
        if self.got >= 13 {
            conn.close();
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(Seen::Close(reason, self.got, Instant::now()));
    }
}

/// Starts `tests/util/tls_server.py` with a fresh certificate; its port,
/// the certificate, and the running process.
fn python_server(
    dir: &TempDir,
) -> Option<(
    u16,
    rustls::pki_types::CertificateDer<'static>,
    std::process::Child,
)> {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(dir.join("cert.pem"), ck.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), ck.signing_key.serialize_pem()).unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/util/tls_server.py");
    let portfile = dir.join("port");
    let child = Command::new("python3")
        .arg(script)
        .arg(dir.join("cert.pem"))
        .arg(dir.join("key.pem"))
        .arg(&portfile)
        .stdout(std::process::Stdio::piped())
        .spawn();
    let Ok(child) = child else {
        println!("SKIPPED: python3 not available");
        return None;
    };
    wait_until("the python server's port", || portfile.exists());
    let port = std::fs::read_to_string(&portfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    Some((port, ck.cert.der().clone(), child))
}

fn run_client(
    port: u16,
    config: Arc<rustls::ClientConfig>,
) -> (Vec<Seen>, std::thread::JoinHandle<()>) {
    let (tx, rx) = channel();
    let t = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        r.connect_tls(
            SocketAddr::from(([127, 0, 0, 1], port)),
            config,
            name,
            Client { tx, got: 0 },
        )
        .unwrap();
        while r.closed_count() == 0 {
            r.run_once(Some(Duration::from_millis(50))).unwrap();
        }
    });
    let mut seen = Vec::new();
    loop {
        let ev = rx.recv_timeout(WAIT).expect("a client event");
        let done = matches!(ev, Seen::Close(..));
        seen.push(ev);
        if done {
            return (seen, t);
        }
    }
}

#[test]
fn connect_tls_to_a_python_server_echoes_and_closes_with_close_notify() {
    init();
    let dir = TempDir::new("tls-client");
    let Some((port, cert, child)) = python_server(&dir) else {
        return;
    };
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let config = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let (seen, t) = run_client(port, config);
    t.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let server = String::from_utf8_lossy(&out.stdout);
    println!("client saw {seen:?}\nserver: {server}");
    assert!(
        matches!(&seen[0], Seen::Open(v) if v.contains("TLSv1_3")),
        "{seen:?}"
    );
    assert!(
        matches!(seen.last(), Some(Seen::Close(CloseReason::Local, 13, _))),
        "{seen:?}"
    );
    assert!(server.contains("echoed 13"), "{server}");
    assert!(server.contains("client sent close_notify"), "{server}");
}

#[test]
fn connect_tls_to_a_server_we_do_not_trust_fails_the_handshake() {
    init();
    let dir = TempDir::new("tls-untrusted");
    let Some((port, _, child)) = python_server(&dir) else {
        return;
    };
    let config = Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth(),
    );
    let (seen, t) = run_client(port, config);
    t.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let server = String::from_utf8_lossy(&out.stdout);
    println!("client saw {seen:?}\nserver: {server}");
    assert_eq!(seen.len(), 1, "no on_open: {seen:?}");
    match &seen[0] {
        Seen::Close(CloseReason::TlsHandshakeFailed(e), _, _) => {
            let inner = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
            assert!(
                matches!(inner, Some(rustls::Error::InvalidCertificate(_))),
                "{e:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(server.contains("handshake failed"), "{server}");
}

#[path = "../examples/common/proxy.rs"]
mod proxy;

#[test]
fn a_proxy_from_tls_clients_to_a_plaintext_upstream() {
    init();
    // The upstream: plain TCP, echoes as it reads, closes after the EOF.
    let up = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = up.local_addr().unwrap();
    let upstream = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let (mut s, _) = up.accept().unwrap();
        let mut buf = [0u8; 65536];
        let mut total = 0;
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    total += n;
                    s.write_all(&buf[..n]).unwrap();
                }
            }
        }
        total
    });
    let (tx, rx) = channel();
    let config = server_config();
    let t = std::thread::spawn(move || {
        let mut r: Reactor<proxy::Proxy> = Reactor::new().unwrap();
        // The proxy's handlers, on a TLS listener: TLS ends here.
        let shared = proxy::Shared::new(&r, proxy::Endpoint::Tcp(up_addr), false);
        let addr = r
            .listen_tls("127.0.0.1:0".parse().unwrap(), config, move |_| {
                proxy::Proxy::client(shared.clone())
            })
            .unwrap();
        tx.send((addr, r.handle())).unwrap();
        r.run().unwrap();
    });
    let (addr, handle) = rx.recv_timeout(WAIT).unwrap();
    let Some(out) = python("echo-close-notify", addr, "200000") else {
        handle.shutdown();
        return;
    };
    assert!(out.contains("echoed 200000 same"), "{out}");
    assert!(
        out.contains("unwrapped"),
        "the upstream's EOF came back as close_notify: {out}"
    );
    assert_eq!(upstream.join().unwrap(), 200_000);
    handle.shutdown();
    t.join().unwrap();
}

#[test]
fn tls_over_a_unix_socket_with_openssl_s_client() {
    init();
    let dir = TempDir::new("tls-unix");
    let path = dir.join("tls.sock");
    let (tx, rx) = channel();
    let config = server_config();
    let p = path.clone();
    let (htx, hrx) = channel();
    let t = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        r.listen_unix_tls(&p, config, move |_| Tls {
            tx: tx.clone(),
            script: Script {
                echo: true,
                ..Script::default()
            },
            bytes: 0,
        })
        .unwrap();
        htx.send(r.handle()).unwrap();
        r.run().unwrap();
    });
    let handle = hrx.recv_timeout(WAIT).unwrap();
    let child = Command::new("timeout")
        .args(["20", "openssl", "s_client", "-brief", "-unix"])
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn();
    let Ok(mut child) = child else {
        println!("SKIPPED: openssl not available");
        handle.shutdown();
        return;
    };
    use std::io::Write;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"hello over a unix socket\n").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hello over a unix socket"), "{stdout}");
    let mut opened = false;
    let reason = loop {
        match rx.recv_timeout(WAIT).unwrap() {
            Seen::Open(_) => opened = true,
            Seen::Data(_) => {}
            Seen::Close(r, _, _) => break r,
        }
    };
    assert!(opened);
    assert_eq!(reason, CloseReason::PeerClosed, "{reason}");
    handle.shutdown();
    t.join().unwrap();
}

/// Pauses reading on its first data, resumes from a timer; counts bytes;
/// marks itself idle for a drain; closes when asked by the test's script.
struct Paced {
    tx: Sender<Seen>,
    bytes: usize,
    write_on_open: usize,
}

impl Handler for Paced {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Seen::Open(String::new()));
        conn.set_idle(true);
        if self.write_on_open > 0 {
            conn.write(&vec![b'w'; self.write_on_open]);
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        if self.bytes == 0 {
            conn.pause_reading();
            conn.set_timer(Duration::from_millis(200));
        }
        self.bytes += data.len();
    }
    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        conn.resume_reading();
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self
            .tx
            .send(Seen::Close(reason, self.bytes, Instant::now()));
    }
}

fn paced_server(
    config: Config,
    write_on_open: usize,
) -> (
    SocketAddr,
    Receiver<Seen>,
    hangup::Handle,
    std::thread::JoinHandle<()>,
) {
    init();
    let (tx, rx) = channel();
    let (htx, hrx) = channel();
    let tls = server_config();
    let t = std::thread::spawn(move || {
        let mut r = Reactor::with_config(config).unwrap();
        let addr = r
            .listen_tls("127.0.0.1:0".parse().unwrap(), tls, move |_| Paced {
                tx: tx.clone(),
                bytes: 0,
                write_on_open,
            })
            .unwrap();
        htx.send((addr, r.handle())).unwrap();
        r.run().unwrap();
    });
    let (addr, handle) = hrx.recv_timeout(WAIT).unwrap();
    (addr, rx, handle, t)
}

fn close_of(rx: &Receiver<Seen>) -> (CloseReason, usize) {
    loop {
        if let Seen::Close(r, n, _) = rx.recv_timeout(WAIT).expect("a close") {
            return (r, n);
        }
    }
}

#[test]
fn pause_and_resume_over_tls_deliver_every_byte() {
    let (addr, rx, handle, t) = paced_server(Config::default(), 0);
    let Some(out) = python("send-close", addr, "2000000") else {
        handle.shutdown();
        return;
    };
    assert!(out.contains("unwrapped"), "{out}");
    let (reason, bytes) = close_of(&rx);
    assert_eq!(reason, CloseReason::PeerClosed, "{reason}");
    assert_eq!(bytes, 2_000_000, "every byte, paused and resumed");
    handle.shutdown();
    t.join().unwrap();
}

#[test]
fn idle_timeout_and_backpressure_over_tls() {
    let config = Config::default().idle_timeout(Some(Duration::from_millis(300)));
    let (addr, rx, handle, t) = paced_server(config, 0);
    let Some(out) = python("wait", addr, "1") else {
        handle.shutdown();
        return;
    };
    let (reason, _) = close_of(&rx);
    assert_eq!(reason, CloseReason::Idle, "{reason}");
    // A close of ours (not an abort, nothing unsent) ends the TLS session
    // cleanly, as on TCP a FIN does.
    assert!(out.contains("end close_notify"), "{out}");
    handle.shutdown();
    t.join().unwrap();

    let config = Config::default().max_write_buffer(256 * 1024);
    let (addr, rx, handle, t) = paced_server(config, 16 << 20);
    let Some(_) = python("wait", addr, "1") else {
        handle.shutdown();
        return;
    };
    let (reason, _) = close_of(&rx);
    assert_eq!(reason, CloseReason::Backpressure, "{reason}");
    handle.shutdown();
    t.join().unwrap();
}

#[test]
fn a_drain_closes_an_idle_tls_connection_with_close_notify() {
    let (addr, rx, handle, t) = paced_server(Config::default(), 0);
    let h = handle.clone();
    let drainer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        h.drain(Duration::from_secs(5));
    });
    let Some(out) = python("wait", addr, "1") else {
        handle.shutdown();
        return;
    };
    assert!(out.contains("end close_notify"), "{out}");
    let (reason, _) = close_of(&rx);
    assert_eq!(reason, CloseReason::Drained, "{reason}");
    drainer.join().unwrap();
    t.join().unwrap();
}
