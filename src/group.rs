//! [`Group`]: one [`Reactor`] per thread, sharing one address, with the
//! balance chosen explicitly ([`Balance`]).

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::config::Config;
use crate::handle::Handle;
use crate::handler::Handler;
use crate::id::ConnId;
use crate::reactor::{tcp_factory, DrainReport, Reactor};
use crate::transport::{Peer, UnixListenOptions};

mod handle;
mod handoff;

pub use handle::GroupHandle;
use handle::{RUN, STOP_DRAIN};
use handoff::acceptor;

/// How a [`Group`] spreads connections over its workers.
///
/// | mode | how | use it when |
/// |---|---|---|
/// | [`ReusePort`](Balance::ReusePort) | one listener per worker (`SO_REUSEPORT`); the kernel hashes each connection's 4-tuple to one | many short connections from many clients: no shared state, no wake-ups of idle workers. Not load-aware: a slow worker keeps its share, and few distinct clients hash unevenly |
/// | [`Shared`](Balance::Shared) | one listener registered in every worker | a simple default for moderate rates: whichever worker is free accepts, but every worker wakes for every connection (the thundering herd; mio cannot set `EPOLLEXCLUSIVE`) |
/// | [`HandOff`](Balance::HandOff) | one acceptor thread gives each connection to the worker with the fewest open | few, long-lived connections that must be spread exactly (as seastar and Envoy's `exact_balance`); costs a hand-off per connection |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// One `SO_REUSEPORT` listener per worker (Linux, and where the OS
    /// balances reuseport sockets).
    ReusePort,
    /// One listener, registered in every worker.
    Shared,
    /// One acceptor hands each connection to the least-loaded worker.
    HandOff,
}

/// A connection of a [`Group`]: which worker owns it, and its id there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GroupConnId {
    /// The worker's index, `0..workers`.
    pub worker: usize,
    /// The connection's id in that worker's reactor.
    pub id: ConnId,
}

/// Several reactors, one per thread, serving one address: the way to use
/// every core. Start it with [`Group::start`] (or, with the `pin` feature on
/// Linux, `Group::start_pinned`, each worker pinned to a CPU); reach it with its
/// [`GroupHandle`]; [`Group::join`] waits for the workers.
///
/// Handlers need not be `Send`: each worker calls the `Send + Clone` maker on
/// its own thread, with its index, to build the factory it uses there.
/// `max_connections` holds per worker; under [`Balance::ReusePort`] a full
/// worker keeps accepting and closing at once (the kernel keeps queuing
/// connections to its listener, so pausing would strand them).
///
/// Outbound connections a handler opens ([`Connector`](crate::Connector))
/// belong to the worker that opened them.
///
/// # Examples
///
/// ```
/// use std::io::{Read, Write};
/// use hangup::{Balance, CloseReason, Config, Conn, Group, Handler};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) { conn.write(data) }
///     fn on_close(&mut self, _: CloseReason) {}
/// }
///
/// let group = Group::start(
///     "127.0.0.1:0".parse().unwrap(),
///     Config::default(),
///     2,
///     Balance::Shared,
///     |_worker| |_peer| Echo,
/// )?;
/// let mut c = std::net::TcpStream::connect(group.local_addr())?;
/// c.write_all(b"hi")?;
/// let mut back = [0u8; 2];
/// c.read_exact(&mut back)?;
/// assert_eq!(&back, b"hi");
/// group.handle().shutdown();
/// group.join()?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct Group {
    addr: SocketAddr,
    handle: GroupHandle,
    threads: Vec<JoinHandle<io::Result<Option<DrainReport>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("addr", &self.addr)
            .field("workers", &self.handle.workers())
            .finish_non_exhaustive()
    }
}

/// What the main thread gives a worker to listen on.
enum Feed {
    Listener(TcpListener),
    Unix(crate::transport::unix::UnixListener),
    HandOff,
}

impl Group {
    /// Starts `workers` reactors (0: one per available core), each on its
    /// own thread with `config`, serving `addr` balanced by `balance`.
    /// `maker(i)` runs on worker `i`'s thread and returns its factory.
    /// Returns once every worker listens.
    ///
    /// # Errors
    ///
    /// Binding failed (the message names the address), `config` is invalid
    /// (`InvalidInput`), a thread could not be spawned, or a worker could not
    /// make its reactor.
    pub fn start<M, F, H>(
        addr: SocketAddr,
        config: Config,
        workers: usize,
        balance: Balance,
        maker: M,
    ) -> io::Result<Group>
    where
        M: FnOnce(usize) -> F + Send + Clone + 'static,
        F: FnMut(SocketAddr) -> H + 'static,
        H: Handler + 'static,
    {
        config.validate()?;
        let workers = worker_count(workers);
        let named = |e: io::Error| crate::error::named(format!("listen on {addr}"), e);
        let backlog = config.listen_backlog;
        let mut feeds = Vec::with_capacity(workers);
        let mut handoff_listener = None;
        let mut bound = addr;
        match balance {
            Balance::ReusePort => {
                for _ in 0..workers {
                    let l = crate::sys::bind_listener_reuseport(bound, backlog).map_err(named)?;
                    bound = l.local_addr().map_err(named)?;
                    feeds.push(Feed::Listener(l));
                }
            }
            Balance::Shared => {
                let l = crate::sys::bind_listener(addr, backlog).map_err(named)?;
                let l = TcpListener::from(l);
                bound = l.local_addr().map_err(named)?;
                for _ in 1..workers {
                    feeds.push(Feed::Listener(l.try_clone().map_err(named)?));
                }
                feeds.push(Feed::Listener(l));
            }
            Balance::HandOff => {
                let l = crate::sys::bind_listener(addr, backlog).map_err(named)?;
                let l = TcpListener::from(l);
                bound = l.local_addr().map_err(named)?;
                l.set_nonblocking(false).map_err(named)?;
                handoff_listener = Some(l);
                feeds.extend((0..workers).map(|_| Feed::HandOff));
            }
        }
        let group = launch(feeds, handoff_listener, config, move |i| {
            tcp_factory(maker(i))
        })?;
        log::debug!("group of {workers} workers on {bound}, {balance:?}");
        Ok(Group {
            addr: bound,
            ..group
        })
    }

    /// Starts `workers` reactors serving the Unix domain socket at `path`
    /// (bound as [`Reactor::listen_unix_with`] binds it, the socket file
    /// removed when the group ends or drains), one listener registered in
    /// every worker: [`Balance::Shared`] is the one mode that applies.
    /// `ReusePort` does not (Linux 6.12.9 and later refuse `SO_REUSEPORT`
    /// on AF_UNIX), nor does `HandOff` (its acceptor hands off TCP streams).
    /// [`local_addr`](Group::local_addr) is `0.0.0.0:0` for such a group.
    ///
    /// # Errors
    ///
    /// `InvalidInput` for a `balance` other than `Shared` (the message says
    /// why), and as [`start`](Group::start) and
    /// [`Reactor::listen_unix`] otherwise.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// use hangup::{Balance, CloseReason, Config, Conn, Group, Handler, UnixListenOptions};
    ///
    /// struct Echo;
    /// impl Handler for Echo {
    ///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) { conn.write(data) }
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    ///
    /// let dir = std::env::temp_dir().join(format!("hangup-group-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("echo.sock");
    /// let group = Group::start_unix(
    ///     &path,
    ///     UnixListenOptions::new(),
    ///     Config::default(),
    ///     2,
    ///     Balance::Shared,
    ///     |_worker| |_peer| Echo,
    /// )?;
    /// let mut c = std::os::unix::net::UnixStream::connect(&path)?;
    /// c.write_all(b"hi")?;
    /// let mut back = [0u8; 2];
    /// c.read_exact(&mut back)?;
    /// assert_eq!(&back, b"hi");
    /// group.handle().shutdown();
    /// group.join()?;
    /// assert!(!path.exists());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn start_unix<M, F, H>(
        path: impl AsRef<std::path::Path>,
        options: UnixListenOptions,
        config: Config,
        workers: usize,
        balance: Balance,
        maker: M,
    ) -> io::Result<Group>
    where
        M: FnOnce(usize) -> F + Send + Clone + 'static,
        F: FnMut(Peer) -> H + 'static,
        H: Handler + 'static,
    {
        config.validate()?;
        let path = path.as_ref();
        let at = crate::transport::unix::display(path);
        if balance != Balance::Shared {
            let why = match balance {
                Balance::ReusePort => "Linux refuses SO_REUSEPORT on Unix domain sockets",
                _ => "the hand-off acceptor hands off TCP connections only",
            };
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "Group::start_unix on unix:{at}: balance {balance:?} does not apply ({why}); \
                     use Balance::Shared"
                ),
            ));
        }
        let workers = worker_count(workers);
        let named = |e: io::Error| crate::error::named(format!("listen on unix:{at}"), e);
        let owner = crate::transport::unix::bind(path, options, config.listen_backlog)?;
        let mut feeds = Vec::with_capacity(workers);
        for _ in 1..workers {
            feeds.push(Feed::Unix(owner.try_clone_adopted().map_err(named)?));
        }
        // Worker 0 holds the socket file: removed when its listener goes.
        feeds.insert(0, Feed::Unix(owner));
        let group = launch(feeds, None, config, move |i| {
            crate::reactor::peer_factory(maker(i))
        })?;
        log::debug!("group of {workers} workers on unix:{at}, {balance:?}");
        Ok(group)
    }
}

fn worker_count(workers: usize) -> usize {
    if workers == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        workers
    }
}

/// Starts one worker per feed (and the hand-off acceptor, if there is a
/// listener for it); returns once every worker listens, or stops and joins
/// every worker it started.
fn launch<M, H>(
    feeds: Vec<Feed>,
    handoff_listener: Option<TcpListener>,
    config: Config,
    maker: M,
) -> io::Result<Group>
where
    M: FnOnce(usize) -> crate::reactor::Factory<H> + Send + Clone + 'static,
    H: Handler + 'static,
{
    let workers = feeds.len();
    let mut threads = Vec::with_capacity(workers);
    let mut handles = Vec::with_capacity(workers);
    for (i, feed) in feeds.into_iter().enumerate() {
        let (tx, rx) = std::sync::mpsc::channel();
        let maker = maker.clone();
        let config = config.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("hangup-worker-{i}"))
            .spawn(move || worker(i, config, feed, maker, tx));
        let thread = match spawned {
            Ok(t) => t,
            Err(e) => {
                stop_started(&handles, threads);
                return Err(e);
            }
        };
        let failed = match rx.recv() {
            Ok(Ok(h)) => {
                handles.push(h);
                threads.push(thread);
                continue;
            }
            Ok(Err(e)) => e,
            Err(_) => io::Error::other(format!("worker {i} ended at start")),
        };
        // Nothing started may outlive a start that failed: the workers
        // already running stop (their listeners close) and are joined.
        let _ = thread.join();
        stop_started(&handles, threads);
        return Err(failed);
    }
    let handle = GroupHandle {
        workers: Arc::new(handles),
        acceptor_stop: Arc::new(AtomicU8::new(RUN)),
        next_connect: Arc::new(AtomicUsize::new(0)),
    };
    let acceptor = match handoff_listener {
        Some(l) => {
            for w in handle.workers.iter() {
                w.add_feeder();
            }
            let h = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("hangup-acceptor".into())
                .spawn(move || acceptor(l, h));
            match spawned {
                Ok(t) => Some(t),
                Err(e) => {
                    for w in handle.workers.iter() {
                        w.feeder_done();
                    }
                    stop_started(&handle.workers, threads);
                    return Err(e);
                }
            }
        }
        None => None,
    };
    Ok(Group {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        handle,
        threads,
        acceptor,
    })
}

impl Group {
    /// Like [`start`](Group::start), with worker `i` pinned to the `i`-th CPU
    /// this process may run on (wrapping around), set on the worker's own
    /// thread before its reactor is made. Linux only, with the `pin`
    /// feature.
    ///
    /// # Errors
    ///
    /// As [`start`](Group::start), and the CPU affinity could not be read or
    /// set (the error names the worker and CPU).
    #[cfg(all(feature = "pin", target_os = "linux"))]
    pub fn start_pinned<M, F, H>(
        addr: SocketAddr,
        config: Config,
        workers: usize,
        balance: Balance,
        maker: M,
    ) -> io::Result<Group>
    where
        M: FnOnce(usize) -> F + Send + Clone + 'static,
        F: FnMut(SocketAddr) -> H + 'static,
        H: Handler + 'static,
    {
        use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
        let allowed = sched_getaffinity(None).map_err(io::Error::from)?;
        let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
            .filter(|&c| allowed.is_set(c))
            .collect();
        if cpus.is_empty() {
            return Err(io::Error::other("no CPU in this process's affinity mask"));
        }
        Group::start(addr, config, workers, balance, move |i| {
            let cpu = cpus[i % cpus.len()];
            let mut set = CpuSet::new();
            set.set(cpu);
            match sched_setaffinity(None, &set) {
                Ok(()) => log::debug!("worker {i} pinned to CPU {cpu}"),
                Err(e) => log::warn!("worker {i}: pinning to CPU {cpu} failed: {e}"),
            }
            maker(i)
        })
    }

    /// The address the group serves (port 0 resolved).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle to every worker.
    pub fn handle(&self) -> GroupHandle {
        self.handle.clone()
    }

    /// Waits until every worker has returned (after [`GroupHandle::shutdown`]
    /// or a finished [`GroupHandle::drain`]).
    ///
    /// # Errors
    ///
    /// The first error a worker's loop returned; a worker that panicked.
    pub fn join(self) -> io::Result<()> {
        self.join_reports().map(|_| ())
    }

    /// Like [`join`](Group::join), returning each worker's
    /// [`DrainReport`] (`None` for a worker that did not drain): how many
    /// connections closed idle, finished by themselves, or were forced.
    ///
    /// # Errors
    ///
    /// As [`join`](Group::join).
    pub fn join_reports(mut self) -> io::Result<Vec<Option<DrainReport>>> {
        // As a drain: whatever waits in the acceptor's backlog is served.
        let _ = self.handle.acceptor_stop.compare_exchange(
            RUN,
            STOP_DRAIN,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        let mut reports = Vec::with_capacity(self.threads.len());
        let mut first = None;
        for t in self.threads.drain(..) {
            match t
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("a worker panicked")))
            {
                Ok(r) => reports.push(r),
                Err(e) => {
                    reports.push(None);
                    first.get_or_insert(e);
                }
            }
        }
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        match first {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }
}

fn worker<M, H>(
    i: usize,
    config: Config,
    feed: Feed,
    maker: M,
    ready: std::sync::mpsc::Sender<io::Result<Handle>>,
) -> io::Result<Option<DrainReport>>
where
    M: FnOnce(usize) -> crate::reactor::Factory<H>,
    H: Handler + 'static,
{
    let start = || -> io::Result<Reactor<H>> {
        let mut reactor = Reactor::with_config(config)?;
        let factory = maker(i);
        match feed {
            Feed::Listener(l) => {
                reactor.listen_std_with(l, factory)?;
            }
            Feed::Unix(l) => reactor.listen_unix_adopted(l, factory)?,
            Feed::HandOff => reactor.adopt_with(factory),
        }
        Ok(reactor)
    };
    let mut reactor = match start() {
        Ok(r) => {
            let _ = ready.send(Ok(r.handle()));
            r
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return Ok(None);
        }
    };
    reactor.run()?;
    Ok(reactor.drain_report())
}

/// Stops the workers a failed [`Group::start`] had started, and joins them.
fn stop_started<T>(handles: &[Handle], threads: Vec<JoinHandle<T>>) {
    for h in handles {
        h.shutdown();
    }
    for t in threads {
        let _ = t.join();
    }
}
