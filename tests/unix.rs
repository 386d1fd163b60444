//! Unix domain sockets through the same Handler: every close rule of TCP on
//! real AF_UNIX sockets in a temp dir, the socket file's life (stale, in
//! use, not a socket, ours or not), abstract names, the peer's credentials,
//! and a TCP-to-Unix proxy.

mod util;

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::rc::Rc;
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};

use hangup::{
    CloseReason, Config, Conn, ConnId, Connector, Handler, Peer, PeerCred, Reactor,
    UnixListenOptions,
};
use util::*;

/// Waits until the client has `n` bytes to read, without taking them.
fn wait_readable(c: &UnixStream, n: usize) {
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); n];
    wait_until("data at the client", || {
        socket2::SockRef::from(c)
            .peek(&mut buf)
            .is_ok_and(|got| got >= n)
    });
}

#[test]
fn eof_after_every_byte_is_peer_closed() {
    let dir = TempDir::new("unix-eof");
    let path = dir.join("s.sock");
    let server = Server::start_unix(&path, Config::default(), Script::default());
    let mut c = connect_unix(&path);
    let data = vec![7u8; 300_000];
    c.write_all(&data).unwrap();
    drop(c);
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "PeerClosed", "{closed:?}");
    assert_eq!(closed.bytes, data.len(), "every byte before on_close");
    server.stop();
}

#[test]
fn a_peer_closing_with_our_data_unread_is_a_reset() {
    let dir = TempDir::new("unix-unread");
    let path = dir.join("s.sock");
    let script = Script {
        write_on_open: 1000,
        ..Script::default()
    };
    let server = Server::start_unix(&path, Config::default(), script);
    let c = connect_unix(&path);
    wait_readable(&c, 1000);
    drop(c); // 1000 bytes of ours unread in its receive queue
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "Reset", "{closed:?}");
    assert_eq!(closed.errno, Some(104), "ECONNRESET: {closed:?}");
    server.stop();
}

#[test]
fn graceful_close_delivers_everything_then_eof() {
    let dir = TempDir::new("unix-graceful");
    let path = dir.join("s.sock");
    let script = Script {
        write_on_open: 1 << 20,
        close_on_open: true,
        ..Script::default()
    };
    let server = Server::start_unix(&path, Config::default(), script);
    let mut c = connect_unix(&path);
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), 1 << 20, "all queued output, then EOF");
    drop(c);
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "Local", "{closed:?}");
    server.stop();
}

#[test]
fn half_close_reads_on_until_the_peer_closes() {
    let dir = TempDir::new("unix-half");
    let path = dir.join("s.sock");
    let script = Script {
        then: Some(|c: &mut Conn<'_>| {
            c.write(b"bye");
            c.shutdown_write();
        }),
        ..Script::default()
    };
    let server = Server::start_unix(&path, Config::default(), script);
    let mut c = connect_unix(&path);
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"bye");
    c.write_all(b"more").unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "PeerClosed", "{closed:?}");
    assert_eq!(closed.bytes, 4, "read on after our half-close");
    server.stop();
}

#[test]
fn a_peer_that_stops_reading_is_backpressure() {
    let dir = TempDir::new("unix-bp");
    let path = dir.join("s.sock");
    let script = Script {
        write_on_open: 8 << 20,
        ..Script::default()
    };
    let config = Config::default().max_write_buffer(256 * 1024);
    let server = Server::start_unix(&path, config, script);
    let _c = connect_unix(&path);
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "Backpressure", "{closed:?}");
    server.stop();
}

#[test]
fn idle_timeout_and_deadline_end_unix_connections() {
    let dir = TempDir::new("unix-idle");
    let path = dir.join("s.sock");
    let config = Config::default().idle_timeout(Some(Duration::from_millis(200)));
    let server = Server::start_unix(&path, config, Script::default());
    let _c = connect_unix(&path);
    let t = Instant::now();
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "Idle", "{closed:?}");
    assert!(
        t.elapsed() >= Duration::from_millis(190),
        "{:?}",
        t.elapsed()
    );
    server.stop();

    let path = dir.join("d.sock");
    let script = Script {
        deadline: Some(Duration::from_millis(200)),
        ..Script::default()
    };
    let server = Server::start_unix(&path, Config::default(), script);
    let mut c = connect_unix(&path);
    c.write_all(b"trickle").unwrap();
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "Deadline", "{closed:?}");
    server.stop();
}

/// What the hand-written handlers below report.
#[allow(dead_code)] // the ids are for the failure messages
#[derive(Debug)]
enum Seen {
    Open(ConnId, Peer, Option<PeerCred>),
    Data(ConnId, Vec<u8>),
    Close(CloseReason),
    Listening(std::net::SocketAddr),
}

/// Pauses reading on its first data, resumes 150 ms later from a timer;
/// with `write_late`, pauses at once and writes from the timer instead.
struct Timed {
    tx: Sender<Seen>,
    write_late: bool,
    paused_once: bool,
}

impl Handler for Timed {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Seen::Open(conn.id(), conn.peer(), None));
        if self.write_late {
            conn.pause_reading();
            conn.set_timer(Duration::from_millis(150));
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let _ = self.tx.send(Seen::Data(conn.id(), data.to_vec()));
        if !self.paused_once {
            self.paused_once = true;
            conn.pause_reading();
            conn.set_timer(Duration::from_millis(150));
        }
    }
    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        if self.write_late {
            conn.write(b"too late");
        } else {
            conn.resume_reading();
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(Seen::Close(reason));
    }
}

fn run_reactor<H: Handler>(
    setup: impl FnOnce(&mut Reactor<H>) + Send + 'static,
) -> (hangup::Handle, std::thread::JoinHandle<()>) {
    init();
    let (tx, rx) = channel();
    let t = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        setup(&mut r);
        tx.send(r.handle()).unwrap();
        r.run().unwrap();
    });
    (rx.recv_timeout(WAIT).unwrap(), t)
}

fn recv(rx: &std::sync::mpsc::Receiver<Seen>) -> Seen {
    rx.recv_timeout(WAIT).expect("an event within WAIT")
}

#[test]
fn pause_resume_and_timers_work_as_on_tcp() {
    let dir = TempDir::new("unix-pause");
    let path = dir.join("s.sock");
    let (tx, rx) = channel();
    let p = path.clone();
    let (handle, t) = run_reactor(move |r| {
        r.listen_unix(&p, move |_| Timed {
            tx: tx.clone(),
            write_late: false,
            paused_once: false,
        })
        .unwrap();
    });
    let mut c = connect_unix(&path);
    assert!(matches!(recv(&rx), Seen::Open(_, Peer::Unix, _)));
    c.write_all(b"a").unwrap();
    let Seen::Data(_, first) = recv(&rx) else {
        panic!("data first")
    };
    assert_eq!(first, b"a");
    let paused_at = Instant::now();
    c.write_all(b"bcd").unwrap();
    drop(c);
    let mut rest = Vec::new();
    loop {
        match recv(&rx) {
            Seen::Data(_, d) => {
                assert!(paused_at.elapsed() >= Duration::from_millis(140));
                rest.extend(d);
            }
            Seen::Close(reason) => {
                assert!(matches!(reason, CloseReason::PeerClosed), "{reason}");
                break;
            }
            Seen::Open(..) | Seen::Listening(_) => panic!("one connection"),
        }
    }
    assert_eq!(rest, b"bcd", "every byte after resuming, then the EOF");
    handle.shutdown();
    t.join().unwrap();
}

/// A write to a peer that is gone is `EPIPE` on AF_UNIX: a `Reset`. (That
/// no SIGPIPE is raised is shown in `tests/unix_sigpipe.rs`, in a process
/// that does not ignore it.)
#[test]
fn a_write_to_a_closed_peer_is_a_reset() {
    let dir = TempDir::new("unix-epipe");
    let path = dir.join("s.sock");
    let (tx, rx) = channel();
    let p = path.clone();
    let (handle, t) = run_reactor(move |r| {
        r.listen_unix(&p, move |_| Timed {
            tx: tx.clone(),
            write_late: true,
            paused_once: true,
        })
        .unwrap();
    });
    let c = connect_unix(&path);
    assert!(matches!(recv(&rx), Seen::Open(..)));
    drop(c);
    let Seen::Close(reason) = recv(&rx) else {
        panic!("close")
    };
    assert!(matches!(reason, CloseReason::Reset), "{reason}");
    handle.shutdown();
    t.join().unwrap();
}

/// Tells every other connection what one said ([`Conn::other`]), and
/// reports each one's credentials.
struct Relay {
    tx: Sender<Seen>,
    all: Rc<RefCell<Vec<ConnId>>>,
}

impl Handler for Relay {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.all.borrow_mut().push(conn.id());
        let _ = self
            .tx
            .send(Seen::Open(conn.id(), conn.peer(), conn.peer_cred().ok()));
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let me = conn.id();
        for id in self.all.borrow().iter().copied().filter(|&i| i != me) {
            if let Some(mut o) = conn.other(id) {
                o.write(data);
            }
        }
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(Seen::Close(reason));
    }
}

#[test]
fn other_connections_and_the_peers_credentials() {
    let dir = TempDir::new("unix-relay");
    let path = dir.join("s.sock");
    let (tx, rx) = channel();
    let p = path.clone();
    let (handle, t) = run_reactor(move |r| {
        let all = Rc::new(RefCell::new(Vec::new()));
        r.listen_unix(&p, move |peer| {
            assert_eq!(peer, Peer::Unix);
            Relay {
                tx: tx.clone(),
                all: all.clone(),
            }
        })
        .unwrap();
        // A TCP connection has no credentials to read.
        r.listen("127.0.0.1:0".parse().unwrap(), |_| {
            unreachable!("no TCP client")
        })
        .unwrap();
    });
    let mut a = connect_unix(&path);
    let mut b = connect_unix(&path);
    for _ in 0..2 {
        let Seen::Open(_, peer, cred) = recv(&rx) else {
            panic!("open")
        };
        assert_eq!(peer, Peer::Unix);
        let cred = cred.expect("SO_PEERCRED");
        assert_eq!(cred.pid, std::process::id() as i32);
        assert_eq!(cred.uid, rustix::process::geteuid().as_raw());
        assert_eq!(cred.gid, rustix::process::getegid().as_raw());
    }
    a.write_all(b"hi from a").unwrap();
    let mut got = [0u8; 9];
    b.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi from a");
    drop((a, b));
    handle.shutdown();
    t.join().unwrap();
}

#[test]
fn peer_cred_of_a_tcp_connection_is_unsupported() {
    let (tx, rx) = channel();
    let (handle, t) = run_reactor(move |r| {
        let tx2 = tx.clone();
        let addr = r
            .listen("127.0.0.1:0".parse().unwrap(), move |_| Relay {
                tx: tx2.clone(),
                all: Rc::default(),
            })
            .unwrap();
        tx.send(Seen::Listening(addr)).unwrap();
    });
    let Seen::Listening(addr) = recv(&rx) else {
        panic!("address")
    };
    let _c = connect(addr);
    let Seen::Open(_, peer, cred) = recv(&rx) else {
        panic!("open")
    };
    assert!(matches!(peer, Peer::Tcp(_)));
    assert!(cred.is_none());
    handle.shutdown();
    t.join().unwrap();
}

#[test]
fn a_drain_removes_the_path_first_and_serves_who_is_connected() {
    let dir = TempDir::new("unix-drain");
    let path = dir.join("s.sock");
    let script = Script {
        echo: true,
        ..Script::default()
    };
    let server = Server::start_unix(&path, Config::default(), script);
    let mut c = connect_unix(&path);
    server.opened();
    server.handle.drain(Duration::from_secs(5));
    wait_until("the socket file removed", || !path.exists());
    let late = UnixStream::connect(&path).unwrap_err();
    assert_eq!(late.kind(), ErrorKind::NotFound, "{late}");
    c.write_all(b"still served").unwrap();
    let mut got = [0u8; 12];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"still served");
    drop(c);
    let (_, closed) = server.closed();
    assert_eq!(closed.name, "PeerClosed");
    server.stop();
}

struct Quiet;
impl Handler for Quiet {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {}
}

fn listen_err(path: &Path, opts: UnixListenOptions) -> std::io::Error {
    let mut r = Reactor::<Quiet>::new().unwrap();
    r.listen_unix_with(path, opts, |_| Quiet).unwrap_err()
}

#[test]
fn the_socket_file_stale_in_use_not_a_socket() {
    let dir = TempDir::new("unix-file");
    // Stale: std never removes its file; nobody listens on it now.
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let e = listen_err(&stale, UnixListenOptions::new());
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert!(e.to_string().contains("stale"), "{e}");
    assert!(e.to_string().contains(&*stale.to_string_lossy()), "{e}");
    let mut r = Reactor::<Quiet>::new().unwrap();
    r.listen_unix_with(&stale, UnixListenOptions::new().replace_stale(true), |_| {
        Quiet
    })
    .expect("a stale file is replaced when asked");
    UnixStream::connect(&stale).expect("the new listener answers");
    drop(r);
    assert!(!stale.exists(), "ours, removed with the listener");

    // In use: a live listener's file is never replaced.
    let live = dir.join("live.sock");
    let owner = UnixListener::bind(&live).unwrap();
    let e = listen_err(&live, UnixListenOptions::new().replace_stale(true));
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert!(e.to_string().contains("live listener"), "{e}");
    let _c = UnixStream::connect(&live).unwrap();
    owner.accept().expect("the owner still has its socket");

    // Not a socket: never touched.
    let file = dir.join("notes.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let e = listen_err(&file, UnixListenOptions::new().replace_stale(true));
    assert_eq!(e.kind(), ErrorKind::AddrInUse);
    assert!(e.to_string().contains("not a socket"), "{e}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");

    // Permissions, when asked.
    let modal = dir.join("modal.sock");
    let mut r = Reactor::<Quiet>::new().unwrap();
    r.listen_unix_with(&modal, UnixListenOptions::new().mode(0o600), |_| Quiet)
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&modal).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // No such directory: the error names the path.
    let e = listen_err(&dir.join("no/such/dir.sock"), UnixListenOptions::new());
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("no/such/dir.sock"), "{e}");
}

#[test]
fn the_socket_file_is_removed_only_while_it_is_ours() {
    let dir = TempDir::new("unix-ours");
    let path = dir.join("s.sock");
    let mut r = Reactor::<Quiet>::new().unwrap();
    r.listen_unix(&path, |_| Quiet).unwrap();
    // A successor takes the path over (as a restart that removed the file
    // and bound anew would).
    std::fs::remove_file(&path).unwrap();
    let successor = UnixListener::bind(&path).unwrap();
    drop(r);
    assert!(path.exists(), "the successor's file stays");
    let _c = UnixStream::connect(&path).unwrap();
    successor.accept().unwrap();
    drop(successor);

    // An adopted listener's file is not ours either.
    std::fs::remove_file(&path).unwrap();
    let adopted = UnixListener::bind(&path).unwrap();
    let mut r = Reactor::<Quiet>::new().unwrap();
    r.listen_unix_std(adopted, |_| Quiet).unwrap();
    drop(r);
    assert!(path.exists(), "an adopted listener's file stays");

    // Handed over for a restart: the file stays for the new owner.
    std::fs::remove_file(&path).unwrap();
    let mut r = Reactor::<Quiet>::new().unwrap();
    r.listen_unix(&path, |_| Quiet).unwrap();
    let taken = r.take_unix_listeners();
    assert_eq!(taken.len(), 1);
    drop(r);
    assert!(path.exists(), "handed over, not removed");
    let _c = UnixStream::connect(&path).unwrap();
    taken[0].accept().expect("the new owner accepts");
}

#[cfg(target_os = "linux")]
#[test]
fn abstract_names_listen_and_connect() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("hangup-test-{}", std::process::id());
    let (tx, rx) = channel();
    let at = format!("\0{name}");
    let (handle, t) = run_reactor(move |r| {
        r.listen_unix(&at, move |_| Relay {
            tx: tx.clone(),
            all: Rc::default(),
        })
        .unwrap();
    });
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _c = UnixStream::connect_addr(&addr).unwrap();
    assert!(matches!(recv(&rx), Seen::Open(_, Peer::Unix, Some(_))));
    handle.shutdown();
    t.join().unwrap();
    assert!(
        UnixStream::connect_addr(&addr).is_err(),
        "gone with the reactor"
    );
}

/// An outbound Unix connection: sends a line on open, reports its end.
struct Outbound {
    tx: Sender<Seen>,
}

impl Handler for Outbound {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Seen::Open(conn.id(), conn.peer(), None));
        conn.write(b"ping\n");
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let _ = self.tx.send(Seen::Data(conn.id(), data.to_vec()));
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(Seen::Close(reason));
    }
}

#[test]
fn connect_unix_opens_or_fails_with_the_errno() {
    let dir = TempDir::new("unix-connect");
    let path = dir.join("up.sock");
    let up = UnixListener::bind(&path).unwrap();
    let stale = dir.join("stale.sock");
    drop(UnixListener::bind(&stale).unwrap());
    let (tx, rx) = channel();
    let (p, s, missing) = (path.clone(), stale.clone(), dir.join("missing.sock"));
    let (handle, t) = run_reactor(move |r| {
        r.connect_unix(&p, Outbound { tx: tx.clone() }).unwrap();
        r.connect_unix(&s, Outbound { tx: tx.clone() }).unwrap();
        r.connect_unix(&missing, Outbound { tx }).unwrap();
    });
    let (mut server_side, _) = up.accept().unwrap();
    server_side.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = [0u8; 5];
    server_side.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"ping\n");
    let mut errnos = Vec::new();
    let mut opened = 0;
    while errnos.len() < 2 || opened < 1 {
        match recv(&rx) {
            Seen::Open(_, peer, _) => {
                assert_eq!(peer, Peer::Unix);
                opened += 1;
            }
            Seen::Close(CloseReason::ConnectFailed(e)) => errnos.push(e.raw_os_error()),
            Seen::Close(other) => panic!("unexpected close {other}"),
            Seen::Data(..) | Seen::Listening(_) => {}
        }
    }
    errnos.sort();
    assert_eq!(errnos, [Some(2), Some(111)], "ENOENT and ECONNREFUSED");
    server_side.write_all(b"pong").unwrap();
    assert!(matches!(recv(&rx), Seen::Data(_, d) if d == b"pong"));
    drop(server_side);
    assert!(matches!(recv(&rx), Seen::Close(CloseReason::PeerClosed)));
    handle.shutdown();
    t.join().unwrap();
}

/// A TCP client's bytes go to a Unix upstream and back.
enum Proxy {
    Client {
        connector: Connector<Proxy>,
        upstream: std::path::PathBuf,
        other: Option<ConnId>,
    },
    Upstream {
        client: ConnId,
    },
}

impl Handler for Proxy {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        if let Proxy::Client {
            connector,
            upstream,
            other,
        } = self
        {
            let client = conn.id();
            let id = connector
                .connect_unix(conn, upstream.as_path(), Proxy::Upstream { client })
                .unwrap();
            *other = Some(id);
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let to = match self {
            Proxy::Client { other, .. } => other.expect("connected"),
            Proxy::Upstream { client } => *client,
        };
        if let Some(mut o) = conn.other(to) {
            o.write(data);
        }
    }
    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        let to = match self {
            Proxy::Client { other, .. } => other.expect("connected"),
            Proxy::Upstream { client } => *client,
        };
        if let Some(mut o) = conn.other(to) {
            o.shutdown_write();
        }
    }
    fn on_close(&mut self, _: CloseReason) {}
}

#[test]
fn a_proxy_from_tcp_to_a_unix_upstream() {
    let dir = TempDir::new("unix-proxy");
    let upstream = dir.join("up.sock");
    let up = UnixListener::bind(&upstream).unwrap();
    let echo = std::thread::spawn(move || {
        let (mut s, _) = up.accept().unwrap();
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        s.write_all(&all).unwrap();
    });
    let (tx, rx) = channel();
    let (handle, t) = run_reactor(move |r: &mut Reactor<Proxy>| {
        let connector = r.connector();
        let addr = r
            .listen("127.0.0.1:0".parse().unwrap(), move |_| Proxy::Client {
                connector: connector.clone(),
                upstream: upstream.clone(),
                other: None,
            })
            .unwrap();
        tx.send(addr).unwrap();
    });
    let addr = rx.recv_timeout(WAIT).unwrap();
    let mut c = connect(addr);
    let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
    c.write_all(&data).unwrap();
    c.shutdown(std::net::Shutdown::Write).unwrap();
    let got = read_to_end(&mut c).unwrap();
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the bytes came back through the Unix upstream");
    echo.join().unwrap();
    handle.shutdown();
    t.join().unwrap();
}

#[test]
fn listen_std_with_a_unix_listener_says_so_and_gives_it_back() {
    use std::os::fd::OwnedFd;
    let dir = TempDir::new("unix-std");
    let path = dir.join("s.sock");
    let unix = UnixListener::bind(&path).unwrap();
    let dressed = std::net::TcpListener::from(OwnedFd::from(unix));
    let mut r = Reactor::<Quiet>::new().unwrap();
    let e = r.listen_std(dressed, |_| Quiet).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let text = e.to_string();
    assert!(text.contains("Unix-domain"), "{text}");
    assert!(text.contains(&*path.to_string_lossy()), "{text}");
    assert!(text.contains("listen_unix_std"), "{text}");
    let fd = e
        .into_inner()
        .unwrap()
        .downcast::<hangup::NotTcp>()
        .unwrap()
        .into_fd();
    r.listen_unix_std(UnixListener::from(fd), |_| Quiet)
        .expect("the same listener, adopted as what it is");
    let _c = UnixStream::connect(&path).expect("still listening");
}

struct Echo;
impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }
    fn on_close(&mut self, _: CloseReason) {}
}

#[test]
fn a_group_serves_a_unix_path_shared_and_says_which_modes_do_not_apply() {
    use hangup::{Balance, Group};
    init();
    let dir = TempDir::new("unix-group");
    let path = dir.join("g.sock");
    for balance in [Balance::ReusePort, Balance::HandOff] {
        let e = Group::start_unix(
            &path,
            UnixListenOptions::new(),
            Config::default(),
            2,
            balance,
            |_| |_| Echo,
        )
        .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("Balance::Shared"), "{e}");
        assert!(!path.exists(), "nothing bound");
    }
    let group = Group::start_unix(
        &path,
        UnixListenOptions::new(),
        Config::default(),
        2,
        Balance::Shared,
        |_| |_| Echo,
    )
    .unwrap();
    let mut clients: Vec<UnixStream> = (0..50).map(|_| connect_unix(&path)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        let msg = format!("{i:04}");
        c.write_all(msg.as_bytes()).unwrap();
        let mut back = [0u8; 4];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, msg.as_bytes());
    }
    let h = group.handle();
    wait_until("50 connections open over the workers", || {
        (0..2).map(|w| h.worker(w).stats().connections).sum::<u64>() == 50
    });
    drop(clients);
    h.drain(Duration::from_secs(2));
    group.join().unwrap();
    assert!(!path.exists(), "the socket file went with the group");
}

#[test]
fn handle_connect_unix_from_another_thread() {
    let dir = TempDir::new("unix-handle");
    let path = dir.join("up.sock");
    let up = UnixListener::bind(&path).unwrap();
    let (tx, rx) = channel();
    let (handle, t) = run_reactor(|_: &mut Reactor<Outbound>| {});
    let tx2 = tx.clone();
    handle
        .connect_unix(&path, move || Outbound { tx: tx2 })
        .unwrap();
    handle
        .connect_unix(dir.join("missing.sock"), move || Outbound { tx })
        .unwrap();
    let (mut s, _) = up.accept().unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut line = [0u8; 5];
    s.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"ping\n");
    let mut saw_open = false;
    let mut saw_enoent = false;
    while !(saw_open && saw_enoent) {
        match recv(&rx) {
            Seen::Open(_, Peer::Unix, _) => saw_open = true,
            Seen::Close(CloseReason::ConnectFailed(e)) => {
                assert_eq!(e.raw_os_error(), Some(2), "{e}");
                saw_enoent = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    handle.shutdown();
    t.join().unwrap();
}
