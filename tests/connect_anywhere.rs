//! Connecting from every place a program needs: a reactor timer, a
//! handler's close (`on_close_with`), and another thread (`Handle::connect`,
//! `GroupHandle::connect`): 1,000 each, each handler with its one
//! `on_close`. Tasks from 8 threads at once run once each, in order per
//! thread. A connect asked for after the reactor stopped is refused, and
//! one queued when it stopped is reported to its handler, not lost.

mod util;

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hangup::{Balance, CloseReason, Config, Conn, Ctx, Group, Handler, Reactor};

const EACH: usize = 1_000;

#[derive(Default)]
struct Counts {
    made: AtomicUsize,
    opened: AtomicUsize,
    closed: AtomicUsize,
    failed: AtomicUsize,
}

/// A client: the peer closes at once, so each ends `PeerClosed`.
struct Client {
    counts: Arc<Counts>,
    addr: SocketAddr,
    /// Reconnect from `on_close_with` while this many are left.
    chain: usize,
}

impl Client {
    fn new(counts: &Arc<Counts>, addr: SocketAddr, chain: usize) -> Client {
        counts.made.fetch_add(1, Ordering::SeqCst);
        Client {
            counts: counts.clone(),
            addr,
            chain,
        }
    }
}

impl Handler for Client {
    fn on_open(&mut self, _: &mut Conn<'_>) {
        self.counts.opened.fetch_add(1, Ordering::SeqCst);
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, reason: CloseReason) {
        if matches!(reason, CloseReason::ConnectFailed(_)) {
            self.counts.failed.fetch_add(1, Ordering::SeqCst);
        }
        self.counts.closed.fetch_add(1, Ordering::SeqCst);
    }
    fn on_close_with(&mut self, reason: CloseReason, ctx: &mut Ctx<'_, Self>) {
        if self.chain > 0 {
            let next = Client::new(&self.counts, self.addr, self.chain - 1);
            ctx.connect_or_report(self.addr, next);
        }
        self.on_close(reason);
    }
}

/// A peer that accepts and closes at once, until dropped.
struct Peer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<usize>>,
}

impl Peer {
    fn start() -> Peer {
        // A backlog that takes a burst of connects (std's 128 would drop
        // SYNs, and the retries take seconds).
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        sock.bind(&"127.0.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        sock.listen(4096).unwrap();
        let l: TcpListener = sock.into();
        let addr = l.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::SeqCst) {
                if let Ok((c, _)) = l.accept() {
                    drop(c);
                    n += 1;
                }
            }
            n
        });
        Peer {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(self.addr);
        let _ = self.thread.take().map(|t| t.join());
    }
}

fn settle(r: &mut Reactor<Client>, counts: &Counts, want: usize) {
    let end = Instant::now() + Duration::from_secs(30);
    while counts.closed.load(Ordering::SeqCst) < want || r.connection_count() > 0 {
        assert!(
            Instant::now() < end,
            "{} of {want} closed",
            counts.closed.load(Ordering::SeqCst)
        );
        r.run_once(Some(Duration::from_millis(10))).unwrap();
    }
}

#[test]
fn connect_from_a_reactor_timer() {
    util::init();
    let peer = Peer::start();
    let counts = Arc::new(Counts::default());
    let mut r = Reactor::<Client>::new().unwrap();
    let (c, addr) = (counts.clone(), peer.addr);
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    r.set_periodic(Duration::from_millis(1), move |ctx| {
        for _ in 0..20 {
            if s.load(Ordering::SeqCst) == EACH {
                return;
            }
            s.fetch_add(1, Ordering::SeqCst);
            ctx.connect(addr, Client::new(&c, addr, 0))
                .expect("a socket");
        }
    });
    settle(&mut r, &counts, EACH);
    let (made, opened, closed) = (
        counts.made.load(Ordering::SeqCst),
        counts.opened.load(Ordering::SeqCst),
        counts.closed.load(Ordering::SeqCst),
    );
    println!("from a reactor timer: {made} handlers, {opened} opened, {closed} on_close");
    assert_eq!((made, opened, closed), (EACH, EACH, EACH));
}

#[test]
fn connect_from_on_close() {
    util::init();
    let peer = Peer::start();
    let counts = Arc::new(Counts::default());
    let mut r = Reactor::<Client>::new().unwrap();
    // Ten chains of 100 reconnects each.
    for _ in 0..10 {
        r.connect(peer.addr, Client::new(&counts, peer.addr, EACH / 10 - 1))
            .unwrap();
    }
    settle(&mut r, &counts, EACH);
    let (made, opened, closed) = (
        counts.made.load(Ordering::SeqCst),
        counts.opened.load(Ordering::SeqCst),
        counts.closed.load(Ordering::SeqCst),
    );
    println!("from on_close_with: {made} handlers, {opened} opened, {closed} on_close");
    assert_eq!((made, opened, closed), (EACH, EACH, EACH));
}

#[test]
fn connect_from_another_thread_through_a_handle_and_a_group_handle() {
    util::init();
    let peer = Peer::start();
    let counts = Arc::new(Counts::default());
    let mut r = Reactor::<Client>::new().unwrap();
    let h = r.handle();
    let (c, addr) = (counts.clone(), peer.addr);
    let sender = std::thread::spawn(move || {
        for _ in 0..EACH {
            let c = c.clone();
            h.connect(addr, move || Client::new(&c, addr, 0)).unwrap();
        }
    });
    settle(&mut r, &counts, EACH);
    sender.join().unwrap();
    let closed = counts.closed.load(Ordering::SeqCst);
    println!("Handle::connect from another thread: {closed} on_close");
    assert_eq!(counts.made.load(Ordering::SeqCst), EACH);
    assert_eq!(counts.opened.load(Ordering::SeqCst), EACH);
    assert_eq!(closed, EACH);

    // A group: the connects spread over its workers.
    let gcounts = Arc::new(Counts::default());
    let group = Group::start(
        "127.0.0.1:0".parse().unwrap(),
        Config::default(),
        2,
        Balance::ReusePort,
        |_| |_peer| -> Client { unreachable!("nothing connects to the group") },
    )
    .unwrap();
    let gh = group.handle();
    let mut per_worker = [0usize; 2];
    for _ in 0..EACH {
        let c = gcounts.clone();
        let w = gh.connect(addr, move || Client::new(&c, addr, 0)).unwrap();
        per_worker[w] += 1;
    }
    let end = Instant::now() + util::WAIT;
    while gcounts.closed.load(Ordering::SeqCst) < EACH {
        assert!(
            Instant::now() < end,
            "group: {} made, {} opened, {} closed; stats {:?}",
            gcounts.made.load(Ordering::SeqCst),
            gcounts.opened.load(Ordering::SeqCst),
            gcounts.closed.load(Ordering::SeqCst),
            gh.worker_stats()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    gh.shutdown();
    group.join().unwrap();
    println!(
        "GroupHandle::connect: {per_worker:?} per worker, {} on_close",
        gcounts.closed.load(Ordering::SeqCst)
    );
    assert_eq!(gcounts.made.load(Ordering::SeqCst), EACH);
    assert_eq!(gcounts.closed.load(Ordering::SeqCst), EACH);
}

#[test]
fn tasks_from_8_threads_run_once_each_in_order_per_thread() {
    util::init();
    struct Quiet;
    impl Handler for Quiet {
        fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
        fn on_close(&mut self, _: CloseReason) {}
    }
    const PER: usize = 2_000;
    let mut r = Reactor::<Quiet>::new().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let h = r.handle();
            let seen = seen.clone();
            std::thread::spawn(move || {
                for i in 0..PER {
                    let seen = seen.clone();
                    h.run(move |_: &mut Ctx<'_, Quiet>| seen.lock().unwrap().push((t, i)))
                        .unwrap();
                }
            })
        })
        .collect();
    let end = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < 8 * PER {
        assert!(Instant::now() < end);
        r.run_once(Some(Duration::from_millis(10))).unwrap();
    }
    for t in threads {
        t.join().unwrap();
    }
    let seen = seen.lock().unwrap();
    let mut next = [0usize; 8];
    for &(t, i) in seen.iter() {
        assert_eq!(i, next[t], "thread {t}: task {i} out of order or twice");
        next[t] += 1;
    }
    println!(
        "tasks from 8 threads: {} run, each once, in order per thread",
        seen.len()
    );
    assert_eq!(next, [PER; 8]);
    // A task for another handler type is refused at once.
    let wrong = r.handle().run(|_: &mut Ctx<'_, Client>| {});
    assert_eq!(wrong.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn a_connect_after_the_reactor_stopped_is_refused_and_one_queued_is_reported() {
    util::init();
    let peer = Peer::start();
    let counts = Arc::new(Counts::default());
    let mut r = Reactor::<Client>::new().unwrap();
    let h = r.handle();
    // Queued, then the reactor stops before it runs it.
    let c = counts.clone();
    let addr = peer.addr;
    h.connect(addr, move || Client::new(&c, addr, 0)).unwrap();
    h.shutdown();
    r.run().unwrap();
    assert_eq!(
        counts.made.load(Ordering::SeqCst),
        1,
        "the queued connect ran"
    );
    assert_eq!(
        counts.failed.load(Ordering::SeqCst),
        1,
        "and was reported as ConnectFailed"
    );
    assert_eq!(counts.closed.load(Ordering::SeqCst), 1);
    // Asked for after: refused, nothing made.
    let c = counts.clone();
    let late = h.connect(addr, move || Client::new(&c, addr, 0));
    assert_eq!(late.unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    let direct = r.connect(addr, Client::new(&counts, addr, 0));
    assert_eq!(direct.unwrap_err().kind(), std::io::ErrorKind::NotConnected);
    assert_eq!(counts.closed.load(Ordering::SeqCst), 1);
}
