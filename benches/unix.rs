//! `concurrent_closes` over Unix domain sockets: hangup's `listen_unix` and
//! a raw mio Unix loop (a `Poll`, a `Slab` of `UnixStream`s, reads until
//! `WouldBlock`, drop on `Ok(0)` or error), in interleaved rounds of the
//! same run; the table gives the median and the ratio to raw mio.
//!
//! - EOF: N clients close at once; each server sees EOF.
//! - reset: each server writes a 1-byte greeting on accept, and the clients
//!   close with it unread, so each server's read fails with ECONNRESET.
//!
//! ```text
//! cargo bench --bench unix                  # 9 rounds
//! HANGUP_ROUNDS=21 cargo bench --bench unix
//! ```

use hangup_benches::{median, rounds};
use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};

const BACKLOG: u32 = 4096;

trait Server {
    fn accept_until(&mut self, n: usize);
    fn run_until_closed(&mut self, total: usize);
    fn closed(&self) -> usize;
}

// ---------------------------------------------------------------- hangup

struct Count {
    closed: Rc<Cell<usize>>,
    greet: bool,
}

impl Handler for Count {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        if self.greet {
            conn.write(b"g");
        }
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {
        self.closed.set(self.closed.get() + 1);
    }
}

struct Hangup {
    reactor: Reactor<Count>,
    closed: Rc<Cell<usize>>,
}

impl Hangup {
    fn new(path: &Path, greet: bool) -> Hangup {
        let config = Config::default()
            .listen_backlog(BACKLOG)
            .max_connections(1 << 20);
        let mut reactor = Reactor::with_config(config).unwrap();
        let closed = Rc::new(Cell::new(0));
        let c = closed.clone();
        reactor
            .listen_unix(path, move |_| Count {
                closed: c.clone(),
                greet,
            })
            .unwrap();
        Hangup { reactor, closed }
    }
}

impl Server for Hangup {
    fn accept_until(&mut self, n: usize) {
        while self.reactor.connection_count() < n {
            self.reactor
                .run_once(Some(Duration::from_millis(100)))
                .unwrap();
        }
    }
    fn run_until_closed(&mut self, total: usize) {
        while self.closed.get() < total {
            self.reactor.run_once(None).unwrap();
        }
    }
    fn closed(&self) -> usize {
        self.closed.get()
    }
}

// ---------------------------------------------------------------- raw mio

struct RawMio {
    poll: mio::Poll,
    events: mio::Events,
    listener: mio::net::UnixListener,
    conns: slab::Slab<mio::net::UnixStream>,
    buf: Vec<u8>,
    closed: usize,
    greet: bool,
}

const LISTENER: mio::Token = mio::Token(usize::MAX);

impl RawMio {
    fn new(path: &Path, greet: bool) -> RawMio {
        let poll = mio::Poll::new().unwrap();
        let s = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
        s.bind(&socket2::SockAddr::unix(path).unwrap()).unwrap();
        s.listen(BACKLOG as i32).unwrap();
        s.set_nonblocking(true).unwrap();
        let mut listener = mio::net::UnixListener::from_std(s.into());
        poll.registry()
            .register(&mut listener, LISTENER, mio::Interest::READABLE)
            .unwrap();
        RawMio {
            poll,
            events: mio::Events::with_capacity(1024),
            listener,
            conns: slab::Slab::new(),
            buf: vec![0; 64 * 1024],
            closed: 0,
            greet,
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
                            if self.greet {
                                let _ = s.write(b"g");
                            }
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
                    Ok(_) => {}
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
}

// ---------------------------------------------------------------- the run

/// Time for `server` to report `n` closes that happened while it was not
/// polling. Opening the connections is not timed.
fn concurrent_closes_once(server: &mut dyn Server, path: &Path, n: usize) -> Duration {
    let p = path.to_path_buf();
    let t = std::thread::spawn(move || {
        (0..n)
            .map(|_| UnixStream::connect(&p).expect("connect"))
            .collect::<Vec<_>>()
    });
    server.accept_until(n);
    let clients = t.join().unwrap();
    let target = server.closed() + n;
    drop(clients);
    let t = Instant::now();
    server.run_until_closed(target);
    t.elapsed()
}

fn main() {
    let rounds = rounds(9);
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    let dir: PathBuf =
        std::env::temp_dir().join(format!("hangup-bench-unix-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut table = Vec::new();
    for greet in [false, true] {
        let mut servers: Vec<(&str, Box<dyn Server>, PathBuf)> = Vec::new();
        for name in ["hangup", "mio"] {
            let path = dir.join(format!("{name}-{greet}.sock"));
            let s: Box<dyn Server> = match name {
                "hangup" => Box::new(Hangup::new(&path, greet)),
                _ => Box::new(RawMio::new(&path, greet)),
            };
            servers.push((name, s, path));
        }
        for n in [1_000usize, 2_000, 4_000, 8_000] {
            if 2 * n as u64 + 200 > limit {
                continue;
            }
            for (_, s, p) in servers.iter_mut() {
                concurrent_closes_once(&mut **s, p, n); // warm-up
            }
            let mut samples: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for round in 0..rounds {
                let count = servers.len();
                for k in 0..count {
                    let (name, s, p) = &mut servers[(k + round) % count];
                    let t = concurrent_closes_once(&mut **s, p, n).as_secs_f64();
                    samples.entry(name).or_default().push(t);
                }
            }
            let h = median(samples.get_mut("hangup").unwrap());
            let m = median(samples.get_mut("mio").unwrap());
            let kind = if greet { "reset" } else { "EOF" };
            eprintln!("{kind} N={n} done");
            table.push(format!(
                "| unix concurrent_closes {kind} N={n} | {:.2} ms ({:.2} µs/close) | {:.2} ms ({:.2} µs/close) | {:.3} |",
                h * 1e3,
                h * 1e6 / n as f64,
                m * 1e3,
                m * 1e6 / n as f64,
                h / m
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("Median of {rounds} interleaved rounds; ratio = hangup's time / raw mio's (lower is better).\n");
    println!("| case | hangup | raw mio | hangup vs mio |");
    println!("|---|---|---|---|");
    for row in table {
        println!("{row}");
    }
}
