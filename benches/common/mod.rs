//! The three servers the benches compare, each written the way its users
//! would write it, plus client helpers.
//!
//! - `Hangup`: a `Reactor` with a handler of 8 bytes (an `Rc` counter).
//! - `RawMio`: a `Poll`, a `Slab` of `TcpStream`s, edge-triggered reads until
//!   `WouldBlock` into one buffer, drop on `Ok(0)` or error.
//! - `Tokio`: a `current_thread` runtime, one task per connection reading
//!   into a `[0u8; 1024]` until `Ok(0)` or error (as in tokio's README).
#![allow(dead_code)]

use std::cell::Cell;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hangup::{CloseReason, Config, Conn, Handler, Reactor};

mod floor;
pub use floor::FloorServer;

pub const IMPLS: [&str; 3] = ["hangup", "mio", "tokio"];

/// A server under test. Single-threaded; driven by the caller.
pub trait Server {
    fn addr(&self) -> SocketAddr;
    /// Runs until `n` connections are open (clients connect from elsewhere).
    fn accept_until(&mut self, n: usize);
    /// Runs until `total` closes have been reported since it was made.
    fn run_until_closed(&mut self, total: usize);
    fn closed(&self) -> usize;
    /// Runs briefly so that everything accepted is fully set up.
    fn settle(&mut self);
}

/// What a server does with what it reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// Reads and discards.
    Quiet,
    /// Writes back what it read.
    Echo,
    /// Writes back what it read, then closes: the server closes first
    /// (an HTTP/1.0 server, `Connection: close`). hangup with `Conn::close`,
    /// raw mio and tokio with a plain write then close.
    ReplyClose,
}

pub fn make(name: &str, echo: bool) -> Box<dyn Server> {
    make_mode(name, if echo { Mode::Echo } else { Mode::Quiet })
}

pub fn make_mode(name: &str, mode: Mode) -> Box<dyn Server> {
    let echo = mode;
    match name {
        "hangup" => Box::new(Hangup::new(echo)),
        // With close-detection latency measured (issue 14's opt-in).
        "hangup+latency" => Box::new(Hangup::with_config(
            Config::default()
                .listen_backlog(BACKLOG as u32)
                .close_latency(true),
            echo,
        )),
        // Closing first without the wait for the peer's FIN when the last
        // read found the socket empty (issue 18's opt-in).
        "hangup+when-unread" => Box::new(Hangup::with_config(
            Config::default()
                .listen_backlog(BACKLOG as u32)
                .lingering_close(hangup::LingeringClose::WhenUnread),
            echo,
        )),
        "mio" => Box::new(RawMio::new(echo)),
        "tokio" => Box::new(Tokio::new(echo)),
        // The least a handler framework keeping hangup's promises does
        // (floor.rs): reads and discards only.
        "floor" => {
            assert_eq!(echo, Mode::Quiet, "the floor serves the Quiet mode only");
            Box::new(FloorServer::new())
        }
        other => panic!("unknown implementation {other}"),
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A listener with a backlog big enough for a burst of connects.
fn std_listener(backlog: i32) -> std::net::TcpListener {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_reuse_address(true).unwrap();
    s.bind(&local().into()).unwrap();
    s.listen(backlog).unwrap();
    s.set_nonblocking(true).unwrap();
    s.into()
}

pub const BACKLOG: i32 = 4096;

// ---------------------------------------------------------------- hangup

/// What all handlers of one server share.
pub struct Shared {
    closed: Cell<usize>,
    echo: Mode,
    /// A handler timer (`Conn::set_timer`) each connection arms in `on_open`.
    timer: Option<Duration>,
}

/// The handler: 8 bytes, a pointer to the shared counter.
pub struct Count {
    shared: Rc<Shared>,
}

const _: () = assert!(std::mem::size_of::<Count>() == 8);

impl Handler for Count {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        if let Some(t) = self.shared.timer {
            conn.set_timer(t);
        }
    }
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        match self.shared.echo {
            Mode::Quiet => {}
            Mode::Echo => conn.write(data),
            Mode::ReplyClose => {
                conn.write(data);
                conn.close();
            }
        }
    }
    fn on_close(&mut self, _reason: CloseReason) {
        self.shared.closed.set(self.shared.closed.get() + 1);
    }
}

pub struct Hangup {
    pub reactor: Reactor<Count>,
    addr: SocketAddr,
    shared: Rc<Shared>,
}

impl Hangup {
    pub fn new(echo: Mode) -> Hangup {
        Self::with_config(Config::default().listen_backlog(BACKLOG as u32), echo)
    }

    pub fn with_config(config: Config, echo: Mode) -> Hangup {
        Self::with_timer(config, echo, None)
    }

    /// Like `with_config`; every connection also arms a handler timer.
    pub fn with_timer(config: Config, echo: Mode, timer: Option<Duration>) -> Hangup {
        let mut reactor = Reactor::with_config(config.max_connections(1 << 20)).unwrap();
        let shared = Rc::new(Shared {
            closed: Cell::new(0),
            echo,
            timer,
        });
        let s = shared.clone();
        let addr = reactor
            .listen(local(), move |_| Count { shared: s.clone() })
            .unwrap();
        Hangup {
            reactor,
            addr,
            shared,
        }
    }
}

impl Server for Hangup {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn accept_until(&mut self, n: usize) {
        while self.reactor.connection_count() < n {
            self.reactor
                .run_once(Some(Duration::from_millis(100)))
                .unwrap();
        }
    }
    fn run_until_closed(&mut self, total: usize) {
        while self.shared.closed.get() < total {
            self.reactor.run_once(None).unwrap();
        }
    }
    fn closed(&self) -> usize {
        self.shared.closed.get()
    }
    fn settle(&mut self) {
        self.reactor
            .run_once(Some(Duration::from_millis(10)))
            .unwrap();
    }
}

// ---------------------------------------------------------------- raw mio

pub struct RawMio {
    poll: mio::Poll,
    events: mio::Events,
    listener: mio::net::TcpListener,
    conns: slab::Slab<mio::net::TcpStream>,
    buf: Vec<u8>,
    addr: SocketAddr,
    closed: usize,
    echo: Mode,
}

const LISTENER: mio::Token = mio::Token(usize::MAX);

/// A `Poll` with a listener on loopback registered under [`LISTENER`], and
/// the listener's address: how the mio loops here (raw mio, the floor) start.
fn mio_listening() -> (mio::Poll, mio::net::TcpListener, SocketAddr) {
    let poll = mio::Poll::new().unwrap();
    let mut listener = mio::net::TcpListener::from_std(std_listener(BACKLOG));
    let addr = listener.local_addr().unwrap();
    poll.registry()
        .register(&mut listener, LISTENER, mio::Interest::READABLE)
        .unwrap();
    (poll, listener, addr)
}

impl RawMio {
    pub fn new(echo: Mode) -> RawMio {
        let (poll, listener, addr) = mio_listening();
        RawMio {
            poll,
            events: mio::Events::with_capacity(1024),
            listener,
            conns: slab::Slab::new(),
            buf: vec![0; 64 * 1024],
            addr,
            closed: 0,
            echo,
        }
    }

    fn turn(&mut self, timeout: Option<Duration>) {
        self.poll.poll(&mut self.events, timeout).unwrap();
        for ev in self.events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match self.listener.accept() {
                        Ok((mut s, _)) => {
                            let e = self.conns.vacant_entry();
                            self.poll
                                .registry()
                                .register(&mut s, mio::Token(e.key()), mio::Interest::READABLE)
                                .unwrap();
                            e.insert(s);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => panic!("accept: {e}"),
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(s) = self.conns.get_mut(key) else {
                continue;
            };
            let done = loop {
                match s.read(&mut self.buf) {
                    Ok(0) => break true,
                    Ok(n) => match self.echo {
                        Mode::Quiet => {}
                        Mode::Echo => {
                            let _ = s.write(&self.buf[..n]);
                        }
                        Mode::ReplyClose => {
                            // A plain write, then close.
                            let _ = s.write(&self.buf[..n]);
                            break true;
                        }
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break true,
                }
            };
            if done {
                self.conns.remove(key);
                self.closed += 1;
            }
        }
    }
}

impl Server for RawMio {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn accept_until(&mut self, n: usize) {
        while self.conns.len() < n {
            self.turn(Some(Duration::from_millis(100)));
        }
    }
    fn run_until_closed(&mut self, total: usize) {
        while self.closed < total {
            self.turn(None);
        }
    }
    fn closed(&self) -> usize {
        self.closed
    }
    fn settle(&mut self) {
        self.turn(Some(Duration::from_millis(10)));
    }
}

// ---------------------------------------------------------------- tokio

pub struct Tokio {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    open: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    notify: Arc<tokio::sync::Notify>,
}

impl Tokio {
    pub fn new(echo: Mode) -> Tokio {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .unwrap();
        let std = std_listener(BACKLOG);
        let addr = std.local_addr().unwrap();
        let open = Arc::new(AtomicUsize::new(0));
        let closed = Arc::new(AtomicUsize::new(0));
        let target = Arc::new(AtomicUsize::new(usize::MAX));
        let notify = Arc::new(tokio::sync::Notify::new());
        {
            let _g = rt.enter();
            let listener = tokio::net::TcpListener::from_std(std).unwrap();
            let (open, closed, target, notify) =
                (open.clone(), closed.clone(), target.clone(), notify.clone());
            // The accept loop, as a tokio user writes it: runs whenever the
            // runtime does.
            rt.spawn(async move {
                loop {
                    let (s, _) = listener.accept().await.unwrap();
                    open.fetch_add(1, Ordering::Relaxed);
                    let (c, t, n) = (closed.clone(), target.clone(), notify.clone());
                    tokio::spawn(tokio_conn(s, c, t, n, echo));
                }
            });
        }
        Tokio {
            rt,
            addr,
            open,
            closed,
            target,
            notify,
        }
    }
}

async fn tokio_conn(
    mut s: tokio::net::TcpStream,
    closed: Arc<AtomicUsize>,
    target: Arc<AtomicUsize>,
    notify: Arc<tokio::sync::Notify>,
    echo: Mode,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => match echo {
                Mode::Quiet => {}
                Mode::Echo => {
                    if s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                Mode::ReplyClose => {
                    // A plain write, then close.
                    let _ = s.write_all(&buf[..n]).await;
                    break;
                }
            },
        }
    }
    drop(s);
    if closed.fetch_add(1, Ordering::Relaxed) + 1 >= target.load(Ordering::Relaxed) {
        notify.notify_one();
    }
}

impl Server for Tokio {
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn accept_until(&mut self, n: usize) {
        let (open, closed) = (self.open.clone(), self.closed.clone());
        self.rt.block_on(async move {
            while open.load(Ordering::Relaxed) - closed.load(Ordering::Relaxed) < n {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        });
    }
    fn run_until_closed(&mut self, total: usize) {
        self.target.store(total, Ordering::Relaxed);
        let (closed, notify) = (self.closed.clone(), self.notify.clone());
        self.rt.block_on(async move {
            while closed.load(Ordering::Relaxed) < total {
                notify.notified().await;
            }
        });
        self.target.store(usize::MAX, Ordering::Relaxed);
    }
    fn closed(&self) -> usize {
        self.closed.load(Ordering::Relaxed)
    }
    fn settle(&mut self) {
        self.rt
            .block_on(async { tokio::time::sleep(Duration::from_millis(10)).await });
    }
}

// ---------------------------------------------------------------- clients

/// Raises the soft RLIMIT_NOFILE as far as allowed; returns it.
pub fn raise_nofile() -> u64 {
    // The soft limit up to the hard one (rlimit: no unsafe here).
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// Connects `n` clients from another thread while `server` accepts them.
/// With `reset`, each client will close with an RST.
pub fn open_clients(server: &mut dyn Server, n: usize, reset: bool) -> Vec<TcpStream> {
    let addr = server.addr();
    let t = std::thread::spawn(move || {
        (0..n)
            .map(|_| {
                let s = TcpStream::connect(addr).expect("connect");
                if reset {
                    socket2::SockRef::from(&s)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                }
                s
            })
            .collect::<Vec<_>>()
    });
    server.accept_until(n);
    t.join().unwrap()
}

/// Runs `m` connection lifecycles against `addr` with at most `in_flight`
/// at once: connect, send our FIN, wait for the server's FIN, close. On its
/// own thread, with its own mio loop; returns when all `m` are done.
pub fn churn_client(addr: SocketAddr, m: usize, in_flight: usize) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut poll = mio::Poll::new().unwrap();
        let mut events = mio::Events::with_capacity(1024);
        let mut conns: slab::Slab<(mio::net::TcpStream, bool)> = slab::Slab::new();
        let (mut started, mut done) = (0usize, 0usize);
        let mut buf = [0u8; 64];
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while done < m {
            while conns.len() < in_flight && started < m {
                let mut s = mio::net::TcpStream::connect(addr).unwrap();
                let e = conns.vacant_entry();
                poll.registry()
                    .register(
                        &mut s,
                        mio::Token(e.key()),
                        mio::Interest::READABLE | mio::Interest::WRITABLE,
                    )
                    .unwrap();
                e.insert((s, false));
                started += 1;
            }
            assert!(std::time::Instant::now() < deadline, "churn client stuck");
            poll.poll(&mut events, Some(Duration::from_secs(1)))
                .unwrap();
            for ev in events.iter() {
                let key = ev.token().0;
                let Some((s, fin_sent)) = conns.get_mut(key) else {
                    continue;
                };
                if ev.is_writable() && !*fin_sent {
                    // Connected: send our FIN.
                    if s.peer_addr().is_ok() {
                        let _ = s.shutdown(std::net::Shutdown::Write);
                        *fin_sent = true;
                    }
                }
                if *fin_sent {
                    let finished = loop {
                        match s.read(&mut buf) {
                            Ok(0) => break true,
                            Ok(_) => {}
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break false,
                            Err(_) => break true,
                        }
                    };
                    if finished {
                        conns.remove(key);
                        done += 1;
                    }
                }
            }
        }
    })
}

/// Time for the server to see `m` lifecycles from `churn_client`.
pub fn churn_once(server: &mut dyn Server, m: usize, in_flight: usize) -> Duration {
    let target = server.closed() + m;
    let client = churn_client(server.addr(), m, in_flight);
    let t = std::time::Instant::now();
    server.run_until_closed(target);
    let took = t.elapsed();
    client.join().unwrap();
    took
}

/// Time for the server to report `n` closes that happened while it was not
/// polling. Opening the connections is not timed.
pub fn concurrent_closes_once(server: &mut dyn Server, n: usize, reset: bool) -> Duration {
    let clients = open_clients(server, n, reset);
    let target = server.closed() + n;
    drop(clients); // every FIN/RST is queued at the server before the clock starts
    let t = std::time::Instant::now();
    server.run_until_closed(target);
    t.elapsed()
}
