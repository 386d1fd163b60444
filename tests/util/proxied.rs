//! What the proxy tests share (included with `#[path]` by tests/proxy.rs
//! and tests/proxy_memory.rs, which also include the proxy itself as
//! `crate::proxy`): a proxy reactor on its own thread, and patterned streams.
#![allow(dead_code)]

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::JoinHandle;

use hangup::{Handle, Reactor};

use crate::proxy;
use crate::util::{init, WAIT};

pub const MIB: usize = 1024 * 1024;

pub struct Running {
    pub addr: SocketAddr,
    pub handle: Handle,
    /// (most output queued for one connection, upstream connect failures)
    thread: JoinHandle<(usize, u64)>,
}

pub fn start(upstream: SocketAddr) -> Running {
    init();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut reactor: Reactor<proxy::Proxy> = Reactor::new().unwrap();
        let (addr, shared) = proxy::listen(
            &mut reactor,
            "127.0.0.1:0".parse().unwrap(),
            upstream,
            false,
        )
        .unwrap();
        tx.send((addr, reactor.handle())).unwrap();
        reactor.run().unwrap();
        (shared.max_queued.get(), shared.connect_failures.get())
    });
    let (addr, handle) = rx.recv_timeout(WAIT).unwrap();
    Running {
        addr,
        handle,
        thread,
    }
}

impl Running {
    pub fn stop(self) -> (usize, u64) {
        self.handle.shutdown();
        self.thread.join().unwrap()
    }
}

/// Byte `i` of a stream tagged `tag`.
pub fn pattern(tag: u8, i: usize) -> u8 {
    (i % 251) as u8 ^ tag
}

/// Writes `n` bytes of `tag`'s pattern, then a FIN.
pub fn send_then_fin(mut s: TcpStream, tag: u8, n: usize) -> io::Result<()> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut sent = 0;
    while sent < n {
        let k = buf.len().min(n - sent);
        for (j, b) in buf[..k].iter_mut().enumerate() {
            *b = pattern(tag, sent + j);
        }
        s.write_all(&buf[..k])?;
        sent += k;
    }
    s.shutdown(std::net::Shutdown::Write)
}
