//! Shutting down: every open connection gets `Shutdown`, exactly once.

mod util;

use std::collections::HashSet;
use std::io::Read;
use std::sync::mpsc::channel;
use std::time::Duration;

use hangup::{Config, Reactor};
use util::*;

#[test]
fn shutdown_from_another_thread_closes_all() {
    let server = Server::start(Config::default(), Script::default());
    let mut clients: Vec<_> = (0..10).map(|_| connect(server.addr)).collect();
    let ids: HashSet<_> = (0..10).map(|_| server.opened()).collect();
    let h = server.handle.clone();
    std::thread::spawn(move || h.shutdown()).join().unwrap();
    let mut closed = HashSet::new();
    for _ in 0..10 {
        let (id, c) = server.closed();
        assert_eq!(c.name, "Shutdown");
        assert!(closed.insert(id), "{id:?} reported twice");
    }
    assert_eq!(closed, ids);
    let stats = server.stop();
    assert_eq!(stats.connections, 0);
    assert!(stats.shut_down);
    for c in &mut clients {
        let mut b = [0u8; 1];
        assert_eq!(c.read(&mut b).unwrap(), 0, "peer sees the close");
    }
}

#[test]
fn dropping_the_reactor_reports_shutdown() {
    init();
    let (tx, rx) = channel();
    let mut reactor = Reactor::new().unwrap();
    let tx2 = tx.clone();
    let addr = reactor
        .listen("127.0.0.1:0".parse().unwrap(), move |_| Rec {
            id: None,
            tx: tx2.clone(),
            bytes: 0,
            script: Script::default(),
        })
        .unwrap();
    let _clients: Vec<_> = (0..3).map(|_| connect(addr)).collect();
    wait_until("3 connections", || {
        reactor.run_once(Some(Duration::from_millis(10))).unwrap();
        reactor.connection_count() == 3
    });
    drop(reactor);
    let mut shut = 0;
    while let Ok(ev) = rx.recv_timeout(Duration::from_millis(100)) {
        if let Ev::Close(_, c) = ev {
            assert_eq!(c.name, "Shutdown");
            shut += 1;
        }
    }
    assert_eq!(shut, 3);
}

#[test]
fn run_once_after_shutdown_returns_at_once() {
    let mut reactor: Reactor<Rec> = Reactor::new().unwrap();
    reactor.handle().shutdown();
    let t = std::time::Instant::now();
    reactor.run_once(Some(Duration::from_secs(5))).unwrap();
    reactor.run().unwrap();
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(reactor.is_shutdown());
}
