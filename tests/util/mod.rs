//! Helpers shared by the integration tests: a server thread running a
//! reactor, a recording handler, bounded waits, and socket tricks.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub mod logging;
pub mod netns;
#[cfg(feature = "tls")]
pub mod tls;
pub mod tun;

pub use logging::init;

use hangup::{CloseReason, Config, Conn, ConnId, Handle, Handler, Reactor};

/// The bound for every wait in a test. Generous: CI machines are slow.
pub const WAIT: Duration = Duration::from_secs(10);

/// What a recording handler saw.
#[derive(Debug)]
pub enum Ev {
    Open(ConnId, SocketAddr),
    Data(ConnId, usize),
    ReadClosed(ConnId),
    Drained(ConnId),
    Close(ConnId, Closed),
}

/// An `on_close` as recorded.
#[derive(Debug, Clone)]
pub struct Closed {
    pub name: &'static str,
    pub errno: Option<i32>,
    pub text: String,
    pub at: Instant,
    /// Bytes delivered to `on_data` before it.
    pub bytes: usize,
}

impl Closed {
    pub fn of(reason: &CloseReason, bytes: usize) -> Closed {
        Closed {
            name: reason.name(),
            errno: reason.raw_os_error(),
            text: reason.to_string(),
            at: Instant::now(),
            bytes,
        }
    }
}

/// A handler that records every callback and does what `Script` says.
pub struct Rec {
    pub id: Option<ConnId>,
    pub tx: Sender<Ev>,
    pub bytes: usize,
    pub script: Script,
}

/// What a [`Rec`] does besides recording.
#[derive(Clone, Default)]
pub struct Script {
    /// Echo data back.
    pub echo: bool,
    /// Write this many bytes in `on_open`.
    pub write_on_open: usize,
    /// Call `close()` right after `write_on_open`.
    pub close_on_open: bool,
    /// On the peer's FIN, answer with this and close (instead of the default).
    pub answer_half_close: Option<Vec<u8>>,
    /// Panic when data contains this byte.
    pub panic_on: Option<u8>,
    /// Abort when data contains this byte.
    pub abort_on: Option<u8>,
    /// Close gracefully when data contains this byte.
    pub close_on: Option<u8>,
    /// On the first data, write this many bytes and close (the server
    /// closes first, as an HTTP/1.0 server does).
    pub reply_close: Option<usize>,
    /// Pause reading after the first data.
    pub pause_after_first: bool,
    /// Idle timeout override set in `on_open`.
    pub idle: Option<Duration>,
    /// Deadline set in `on_open`.
    pub deadline: Option<Duration>,
    /// Called last in `on_open`, after everything above.
    pub then: Option<fn(&mut Conn<'_>)>,
}

impl Handler for Rec {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        self.id = Some(conn.id());
        let _ = self.tx.send(Ev::Open(conn.id(), conn.peer_addr()));
        if let Some(t) = self.script.idle {
            conn.set_idle_timeout(Some(t));
        }
        if let Some(t) = self.script.deadline {
            conn.set_deadline(t);
        }
        if self.script.write_on_open > 0 {
            let chunk = vec![b'x'; 64 * 1024];
            let mut left = self.script.write_on_open;
            while left > 0 {
                let n = left.min(chunk.len());
                conn.write(&chunk[..n]);
                left -= n;
            }
        }
        if self.script.close_on_open {
            conn.close();
        }
        if let Some(f) = self.script.then {
            f(conn);
        }
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.bytes += data.len();
        let _ = self.tx.send(Ev::Data(conn.id(), data.len()));
        if self.script.panic_on.is_some_and(|b| data.contains(&b)) {
            panic!("scripted panic");
        }
        if self.script.abort_on.is_some_and(|b| data.contains(&b)) {
            conn.abort();
            return;
        }
        if self.script.close_on.is_some_and(|b| data.contains(&b)) {
            conn.close();
            return;
        }
        if let Some(n) = self.script.reply_close {
            let chunk = vec![b'y'; 64 * 1024];
            let mut left = n;
            while left > 0 {
                let k = left.min(chunk.len());
                conn.write(&chunk[..k]);
                left -= k;
            }
            conn.close();
            return;
        }
        if self.script.echo {
            conn.write(data);
        }
        if self.script.pause_after_first {
            conn.pause_reading();
        }
    }

    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Ev::ReadClosed(conn.id()));
        if let Some(answer) = &self.script.answer_half_close {
            conn.write(answer);
        }
        conn.close();
    }

    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Ev::Drained(conn.id()));
    }

    fn on_close(&mut self, reason: CloseReason) {
        let id = self.id.expect("on_close after on_open");
        let _ = self.tx.send(Ev::Close(id, Closed::of(&reason, self.bytes)));
    }
}

/// A stopped reactor's counters.
#[derive(Debug)]
pub struct Stats {
    pub connections: usize,
    pub rejected: u64,
    pub closed: u64,
    pub shut_down: bool,
}

/// A reactor running on its own thread.
pub struct Server {
    pub addr: SocketAddr,
    pub handle: Handle,
    pub rx: Receiver<Ev>,
    thread: Option<JoinHandle<io::Result<Stats>>>,
}

impl Server {
    /// Starts a reactor with `config`, listening on 127.0.0.1:0, making a
    /// [`Rec`] with `script` per connection.
    pub fn start(config: Config, script: Script) -> Server {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config, script)
    }

    pub fn start_on(at: SocketAddr, config: Config, script: Script) -> Server {
        Self::start_with(at, config, script, || {})
    }

    /// Like `start_on`, running `before` on the server thread first (for
    /// example to enter a network namespace).
    pub fn start_with(
        at: SocketAddr,
        config: Config,
        script: Script,
        before: impl FnOnce() + Send + 'static,
    ) -> Server {
        Self::start_at(Some(at), None, config, script, before)
    }

    /// Starts a reactor listening on the Unix domain socket `path` (its
    /// `addr` is then `0.0.0.0:0`).
    pub fn start_unix(path: &std::path::Path, config: Config, script: Script) -> Server {
        Self::start_at(None, Some(path.to_path_buf()), config, script, || {})
    }

    fn start_at(
        at: Option<SocketAddr>,
        path: Option<std::path::PathBuf>,
        config: Config,
        script: Script,
        before: impl FnOnce() + Send + 'static,
    ) -> Server {
        init();
        let (tx, rx) = channel();
        let (ready_tx, ready_rx) = channel();
        let thread = std::thread::spawn(move || {
            before();
            let mut reactor = Reactor::with_config(config)?;
            let tx2 = tx.clone();
            let make = move || Rec {
                id: None,
                tx: tx2.clone(),
                bytes: 0,
                script: script.clone(),
            };
            let addr = match (at, path) {
                (Some(at), _) => reactor.listen(at, move |_peer| make())?,
                (None, Some(path)) => {
                    reactor.listen_unix(path, move |_peer| make())?;
                    SocketAddr::from(([0, 0, 0, 0], 0))
                }
                (None, None) => unreachable!("start_at: nowhere to listen"),
            };
            ready_tx.send((addr, reactor.handle())).unwrap();
            drop(tx);
            reactor.run()?;
            Ok(Stats {
                connections: reactor.connection_count(),
                rejected: reactor.rejected_count(),
                closed: reactor.closed_count(),
                shut_down: reactor.is_shutdown(),
            })
        });
        let (addr, handle) = ready_rx.recv_timeout(WAIT).expect("server started");
        Server {
            addr,
            handle,
            rx,
            thread: Some(thread),
        }
    }

    /// Waits for the next event.
    #[track_caller]
    pub fn next(&self) -> Ev {
        match self.rx.recv_timeout(WAIT) {
            Ok(ev) => ev,
            Err(RecvTimeoutError::Timeout) => panic!("no event within {WAIT:?}"),
            Err(e) => panic!("server gone: {e}"),
        }
    }

    /// Waits for the next `on_open`.
    #[track_caller]
    pub fn opened(&self) -> ConnId {
        loop {
            if let Ev::Open(id, _) = self.next() {
                return id;
            }
        }
    }

    /// Waits for the next `on_close`, returning it and the events before it.
    #[track_caller]
    pub fn closed(&self) -> (ConnId, Closed) {
        loop {
            if let Ev::Close(id, c) = self.next() {
                return (id, c);
            }
        }
    }

    /// Waits up to `d` for the next `on_close`.
    #[track_caller]
    pub fn closed_within(&self, d: Duration) -> (ConnId, Closed) {
        let end = Instant::now() + d;
        loop {
            let left = end
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("no close within {d:?}"));
            match self.rx.recv_timeout(left) {
                Ok(Ev::Close(id, c)) => return (id, c),
                Ok(_) => {}
                Err(_) => panic!("no close within {d:?}"),
            }
        }
    }

    /// Asserts no `on_close` arrives within `d`.
    #[track_caller]
    pub fn no_close_within(&self, d: Duration) {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match self.rx.recv_timeout(left) {
                Ok(Ev::Close(id, c)) => panic!("unexpected close of {id:?}: {c:?}"),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    /// Shuts the reactor down and returns its counters.
    pub fn stop(mut self) -> Stats {
        self.handle.shutdown();
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("server thread panicked")
            .expect("server failed")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.handle.shutdown();
            let _ = t.join();
        }
    }
}

/// A client connection with bounded reads.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Makes the next close of `s` send an RST.
pub fn set_linger_zero(s: &TcpStream) {
    socket2::SockRef::from(s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
}

/// Closes `s` with an RST.
pub fn reset(s: TcpStream) {
    set_linger_zero(&s);
    drop(s);
}

/// Reads until EOF (bounded by the read timeout); returns the bytes.
pub fn read_to_end(s: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    s.read_to_end(&mut v)?;
    Ok(v)
}

/// Writes all of `data`.
pub fn send(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).expect("client write");
}

/// Raises the soft RLIMIT_NOFILE to `want` (root may raise the hard limit
/// too; others stop at it). Returns the soft limit now in force.
pub fn raise_nofile(want: u64) -> u64 {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().unwrap_or((0, 0));
    if soft < want && Resource::NOFILE.set(want, hard.max(want)).is_err() {
        let _ = Resource::NOFILE.set(want.min(hard), hard);
    }
    Resource::NOFILE.get().map_or(0, |(soft, _)| soft)
}

/// Lowers the soft RLIMIT_NOFILE to at most `max` (always allowed).
pub fn lower_nofile(max: u64) {
    use rlimit::Resource;
    let (soft, hard) = Resource::NOFILE.get().expect("getrlimit");
    if soft > max {
        Resource::NOFILE.set(max, hard).expect("setrlimit");
    }
}

/// Polls `cond` every 5 ms until it holds or `WAIT` passes.
#[track_caller]
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How many descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

/// This process's resident memory in KiB (from /proc/self/statm).
pub fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4
}

/// A listening address that drops every SYN (its accept queue is full), so
/// a connect to it neither succeeds nor fails until a timeout. Keep the
/// guard alive as long as the address is used.
pub fn blackhole() -> (SocketAddr, Blackhole) {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.listen(0).unwrap();
    let addr = sock.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    while fillers.len() < 16 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(s) => fillers.push(s),
            Err(_) => break, // the queue is full
        }
    }
    (
        addr,
        Blackhole {
            _sock: sock,
            _fillers: fillers,
        },
    )
}

/// Keeps a [`blackhole`] address dropping SYNs.
pub struct Blackhole {
    _sock: socket2::Socket,
    _fillers: Vec<TcpStream>,
}

impl Blackhole {
    /// How many connections fill its accept queue.
    pub fn fillers(&self) -> usize {
        self._fillers.len()
    }
}

/// A number from the environment (a count, a seed), if set and valid.
pub fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The seed a randomized test runs with: `name` from the environment (to
/// replay a run), else a fresh one. The test prints it.
pub fn seed(name: &str) -> u64 {
    env_u64(name).unwrap_or_else(|| fastrand::u64(..))
}

/// A directory of its own under the system's temp dir, removed on drop:
/// where a test's Unix socket files live.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("hangup-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn join(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A Unix-domain client with bounded reads and writes.
pub fn connect_unix(path: &std::path::Path) -> std::os::unix::net::UnixStream {
    let s = std::os::unix::net::UnixStream::connect(path).expect("connect_unix");
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}
