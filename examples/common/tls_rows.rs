//! closewatch's TLS rows (feature `tls`): how a TLS connection ends, as
//! hangup reports it. The clients are rustls clients driven by hand over
//! blocking sockets, so each can end the way its row says: close_notify,
//! a FIN without it, an alert, plaintext, silence.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};

use super::{Row, Table};

struct Watch {
    tx: Sender<(CloseReason, Instant, usize)>,
    bytes_in: usize,
}

impl Handler for Watch {
    fn on_data(&mut self, _: &mut Conn<'_>, data: &[u8]) {
        self.bytes_in += data.len();
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send((reason, Instant::now(), self.bytes_in));
    }
}

/// A rustls client over `sock`: handshake done, or the error.
fn handshake(
    sock: &mut TcpStream,
    roots: rustls::RootCertStore,
) -> Result<rustls::ClientConnection, rustls::Error> {
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut c = rustls::ClientConnection::new(Arc::new(config), name)?;
    while c.is_handshaking() {
        if let Err(e) = c.complete_io(sock) {
            // Send the alert rustls made, as a client that gives up does.
            let _ = c.write_tls(sock);
            return Err(e
                .into_inner()
                .and_then(|e| e.downcast::<rustls::Error>().ok())
                .map_or(rustls::Error::General("io".into()), |e| *e));
        }
    }
    Ok(c)
}

/// Appends the TLS rows to `table`.
pub fn rows(table: &mut Table) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let server = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let (tx, rx) = channel();
    let (ready_tx, ready_rx) = channel();
    let t = std::thread::spawn(move || -> std::io::Result<()> {
        let config = Config::default().handshake_timeout(Some(Duration::from_millis(300)));
        let mut r = Reactor::with_config(config)?;
        let addr = r.listen_tls(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(server),
            move |_| Watch {
                tx: tx.clone(),
                bytes_in: 0,
            },
        )?;
        ready_tx.send((addr, r.handle())).unwrap();
        r.run()
    });
    let Ok((addr, handle)) = ready_rx.recv_timeout(Duration::from_secs(10)) else {
        table.push(Row::skipped(
            "tls: all rows",
            "the TLS reactor did not start",
        ));
        return;
    };
    let connect = || {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s
    };

    // close_notify after the data.
    let mut s = connect();
    let mut c = handshake(&mut s, roots.clone()).expect("handshake");
    c.writer()
        .write_all(b"all of it, then close_notify")
        .unwrap();
    let t0 = Instant::now();
    c.send_close_notify();
    while c.wants_write() {
        c.write_tls(&mut s).unwrap();
    }
    table.push(finish(
        &rx,
        t0,
        "tls: client sent close_notify",
        "PeerClosed",
        "",
    ));
    drop(s);

    // A FIN without close_notify, between records.
    let mut s = connect();
    let mut c = handshake(&mut s, roots.clone()).expect("handshake");
    c.writer()
        .write_all(b"then a FIN, no close_notify")
        .unwrap();
    while c.wants_write() {
        c.write_tls(&mut s).unwrap();
    }
    let t0 = Instant::now();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    table.push(finish(
        &rx,
        t0,
        "tls: client FIN without close_notify",
        "TlsTruncated",
        "",
    ));
    drop(s);

    // The client rejects our certificate: an alert.
    let mut s = connect();
    let t0 = Instant::now();
    let err = handshake(&mut s, rustls::RootCertStore::empty()).err();
    let note = err.map_or("client: handshake done?".into(), |e| {
        format!("client: {e}; ")
    });
    table.push(finish(
        &rx,
        t0,
        "tls: client rejects our certificate",
        "TlsAlert",
        &note,
    ));
    drop(s);

    // Not TLS at all.
    let mut s = connect();
    let t0 = Instant::now();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut b = [0u8; 64];
    let _ = s.read(&mut b);
    table.push(finish(
        &rx,
        t0,
        "tls: plaintext client on the TLS port",
        "TlsHandshakeFailed",
        "",
    ));
    drop(s);

    // Silence: the handshake timeout.
    let s = connect();
    let t0 = Instant::now();
    table.push(finish(
        &rx,
        t0,
        "tls: client silent; handshake timeout 300 ms",
        "TlsHandshakeTimeout",
        "",
    ));
    drop(s);

    handle.shutdown();
    let _ = t.join();
}

fn finish(
    rx: &Receiver<(CloseReason, Instant, usize)>,
    t: Instant,
    scenario: &str,
    want: &str,
    note: &str,
) -> Row {
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok((reason, at, bytes_in)) => {
            let mut note = format!("{note}{reason}");
            if bytes_in > 0 {
                note += &format!("; {bytes_in} B delivered first");
            }
            Row {
                scenario: scenario.into(),
                reason: reason.name().into(),
                errno: reason.raw_os_error().map_or("-".into(), |e| e.to_string()),
                ms: format!("{:.2}", at.duration_since(t).as_secs_f64() * 1e3),
                ok: reason.name() == want,
                note,
            }
        }
        Err(_) => Row {
            scenario: scenario.into(),
            reason: "(none within 20 s)".into(),
            errno: "-".into(),
            ms: "-".into(),
            ok: false,
            note: note.into(),
        },
    }
}
