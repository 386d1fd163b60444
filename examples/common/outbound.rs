//! closewatch's rows for the outbound side: connects that fail, an upstream
//! that resets, and a half-close passed through the proxy. Each row runs a
//! reactor on this thread with `run_once`, against std sockets on loopback.

use std::cell::Cell;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};

use super::proxy::{self, Proxy, Role};
use super::{Row, Table};

struct Out {
    tx: Sender<(CloseReason, Instant)>,
    opened: Rc<Cell<bool>>,
}

impl Out {
    fn new(tx: Sender<(CloseReason, Instant)>) -> Out {
        Out {
            tx,
            opened: Rc::default(),
        }
    }
}

impl Handler for Out {
    fn on_open(&mut self, _: &mut Conn<'_>) {
        self.opened.set(true);
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send((reason, Instant::now()));
    }
}

pub fn rows(table: &mut Table) {
    table.push(refused());
    table.push(timed_out());
    table.push(upstream_reset());
    table.push(half_close_through_proxy());
}

fn row(scenario: &str, want: &str, got: Option<(CloseReason, Instant)>, t: Instant) -> Row {
    match got {
        Some((reason, at)) => Row {
            scenario: scenario.into(),
            reason: reason.name().into(),
            errno: reason.raw_os_error().map_or("-".into(), |e| e.to_string()),
            ms: format!("{:.2}", at.duration_since(t).as_secs_f64() * 1e3),
            ok: reason.name() == want,
            note: match &reason {
                CloseReason::ConnectFailed(e) => format!("{:?}: {e}", e.kind()),
                _ => String::new(),
            },
        },
        None => Row {
            scenario: scenario.into(),
            reason: "(none within 10 s)".into(),
            errno: "-".into(),
            ms: "-".into(),
            ok: false,
            note: String::new(),
        },
    }
}

/// Runs `r` until `rx` yields, at most 10 s.
fn wait<H: Handler>(
    r: &mut Reactor<H>,
    rx: &Receiver<(CloseReason, Instant)>,
) -> Option<(CloseReason, Instant)> {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        r.run_once(Some(Duration::from_millis(5))).ok()?;
        if let Ok(got) = rx.try_recv() {
            return Some(got);
        }
    }
    None
}

fn refused() -> Row {
    let name = "connect refused";
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (tx, rx) = channel();
    let mut r = Reactor::new().unwrap();
    let t = Instant::now();
    r.connect(addr, Out::new(tx)).unwrap();
    row(name, "ConnectFailed", wait(&mut r, &rx), t)
}

fn timed_out() -> Row {
    let name = "connect timed out; connect_timeout 300 ms";
    // A listener whose accept queue is full drops further SYNs.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    while fillers.len() < 16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break,
        }
    }
    let (tx, rx) = channel();
    let config = Config::default().connect_timeout(Some(Duration::from_millis(300)));
    let mut r = Reactor::with_config(config).unwrap();
    let t = Instant::now();
    r.connect(addr, Out::new(tx)).unwrap();
    let mut row = row(name, "ConnectFailed", wait(&mut r, &rx), t);
    row.note = format!("{} (listener's backlog full)", row.note);
    row
}

fn upstream_reset() -> Row {
    let name = "outbound: upstream reset (SO_LINGER 0)";
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let (tx, rx) = channel();
    let mut r = Reactor::new().unwrap();
    let out = Out::new(tx);
    let opened = out.opened.clone();
    r.connect(l.local_addr().unwrap(), out).unwrap();
    let (peer, _) = l.accept().unwrap();
    // Reset only once the reactor saw the connect complete (on_open).
    let end = Instant::now() + Duration::from_secs(10);
    while !opened.get() && Instant::now() < end {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    let t = Instant::now();
    socket2::SockRef::from(&peer)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(peer);
    row(name, "Reset", wait(&mut r, &rx), t)
}

fn half_close_through_proxy() -> Row {
    let name = "half-close passed through the proxy";
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let up_addr = upstream.local_addr().unwrap();
    let up = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = upstream.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut got = Vec::new();
        s.read_to_end(&mut got)?; // ends only if the client's FIN came through
        s.write_all(b"answer after your FIN")?;
        Ok(got.len())
    });
    let mut r: Reactor<Proxy> = Reactor::new().unwrap();
    let (addr, shared) =
        proxy::listen(&mut r, "127.0.0.1:0".parse().unwrap(), up_addr, false).unwrap();
    let client = std::thread::spawn(move || -> std::io::Result<String> {
        let mut c = TcpStream::connect(addr)?;
        c.set_read_timeout(Some(Duration::from_secs(10)))?;
        c.write_all(b"request")?;
        c.shutdown(Shutdown::Write)?;
        let mut answer = String::new();
        c.read_to_string(&mut answer)?;
        Ok(answer)
    });
    let t = Instant::now();
    let end = t + Duration::from_secs(10);
    while shared.closes.borrow().len() < 2 && Instant::now() < end {
        r.run_once(Some(Duration::from_millis(5))).unwrap();
    }
    let at = Instant::now();
    let answer = client.join().unwrap().unwrap_or_default();
    let upstream_got = up.join().unwrap().unwrap_or(0);
    let closes = shared.closes.borrow().clone();
    let client_reason = closes
        .iter()
        .find(|(role, _)| *role == Role::Client)
        .map(|c| c.1);
    Row {
        scenario: name.into(),
        reason: client_reason.unwrap_or("(none)").into(),
        errno: "-".into(),
        ms: format!("{:.2}", at.duration_since(t).as_secs_f64() * 1e3),
        ok: closes.len() == 2
            && closes.iter().all(|(_, reason)| *reason == "PeerClosed")
            && answer == "answer after your FIN"
            && upstream_got == 7,
        note: format!("upstream read {upstream_got} B then EOF; client got {answer:?} then EOF"),
    }
}
