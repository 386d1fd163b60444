//! A server and a client in separate processes, for counting what one
//! connection's life costs the server: syscalls (`strace -c`) and user-space
//! instructions (`valgrind --tool=callgrind`). `benches/cost.sh` runs it.
//!
//! ```text
//! lifecycle server <impl> <N> <dir> [reply] # accept N, wait for N closes, exit
//! lifecycle client <N> <fin|rst|req> <dir> # connect N, wait, close all at once
//! lifecycle connector <impl> <N>           # open N outbound, the peer closes them
//! lifecycle echo-server <impl> <dir>       # echo one connection until it closes
//! lifecycle echo-client <K> <size> <dir>   # K request/response round trips
//! ```
//!
//! The server writes its address to `<dir>/addr`, blocks on the FIFO
//! `<dir>/go` until the client has connected all N (so the burst is accepted
//! in one pass, the same way for every implementation), and touches
//! `<dir>/ready` once all N are open; the client then closes them all and
//! writes to the FIFO `<dir>/closed`, which the server waits on before it
//! polls again, so the closes are handled as one burst. Run by `cargo bench`
//! with no arguments it does nothing.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn wait_for(p: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(600);
    loop {
        if let Ok(s) = std::fs::read_to_string(p) {
            if !s.is_empty() {
                return s;
            }
        }
        assert!(
            Instant::now() < end,
            "timed out waiting for {}",
            p.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Blocks until another process writes a line to the FIFO at `p`: a fixed
/// number of syscalls, no polling.
fn block_on_fifo(p: &Path) {
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(std::fs::File::open(p).unwrap()),
        &mut line,
    )
    .unwrap();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args[i].clone();
    match args.get(1).map(String::as_str) {
        Some("server") => {
            raise_nofile();
            let (imp, n, dir) = (arg(2), arg(3).parse().unwrap(), PathBuf::from(arg(4)));
            // With `reply` the server answers each request and closes first.
            let mode = match args.get(5).map(String::as_str) {
                Some("reply") => Mode::ReplyClose,
                _ => Mode::Quiet,
            };
            let mut s = make_mode(&imp, mode);
            std::fs::write(dir.join("addr"), s.addr().to_string()).unwrap();
            // Block (no polling, a fixed number of syscalls) until the client
            // has connected all N: the burst is then accepted in one pass.
            block_on_fifo(&dir.join("go"));
            s.accept_until(n);
            std::fs::write(dir.join("ready"), "1").unwrap();
            // Not polling while the client closes: every FIN/RST is queued
            // before the first poll, the same way for every implementation.
            block_on_fifo(&dir.join("closed"));
            s.run_until_closed(n);
        }
        Some("client") => {
            raise_nofile();
            let (n, kind, dir) = (arg(2).parse().unwrap(), arg(3), PathBuf::from(arg(4)));
            let addr = wait_for(&dir.join("addr"));
            let conns: Vec<TcpStream> = (0..n)
                .map(|_| TcpStream::connect(addr.trim()).unwrap())
                .collect();
            std::fs::write(dir.join("go"), "go\n").unwrap();
            wait_for(&dir.join("ready"));
            if kind == "rst" {
                for c in &conns {
                    socket2::SockRef::from(c)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                }
            }
            if kind == "req" {
                // One request each; the server answers and closes first.
                // Every request is sent before the server polls again; each
                // answer is then read to the server's FIN before ours.
                for mut c in &conns {
                    c.write_all(b"r").unwrap();
                }
                std::fs::write(dir.join("closed"), "closed\n").unwrap();
                let mut buf = [0u8; 16];
                for mut c in &conns {
                    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                    let mut got = 0;
                    loop {
                        match c.read(&mut buf) {
                            Ok(0) => break,
                            Ok(n) => got += n,
                            Err(e) => panic!("reading the answer: {e}"),
                        }
                    }
                    assert_eq!(got, 1, "the answer, whole, then the server's FIN");
                }
                drop(conns);
                return;
            }
            drop(conns);
            std::fs::write(dir.join("closed"), "closed\n").unwrap();
        }
        Some("echo-server") => {
            let (imp, dir) = (arg(2), PathBuf::from(arg(3)));
            let mut s = make(&imp, true);
            std::fs::write(dir.join("addr"), s.addr().to_string()).unwrap();
            s.run_until_closed(1);
        }
        Some("echo-client") => {
            let (k, size, dir): (usize, usize, _) = (
                arg(2).parse().unwrap(),
                arg(3).parse().unwrap(),
                PathBuf::from(arg(4)),
            );
            let addr = wait_for(&dir.join("addr"));
            let mut c = TcpStream::connect(addr.trim()).unwrap();
            c.set_nodelay(true).unwrap();
            let req = vec![b'r'; size];
            let mut resp = vec![0u8; size];
            for _ in 0..k {
                c.write_all(&req).unwrap();
                c.read_exact(&mut resp).unwrap();
            }
        }
        Some("connector") => {
            raise_nofile();
            let (imp, n): (String, usize) = (arg(2), arg(3).parse().unwrap());
            connector(&imp, n);
        }
        _ => eprintln!("lifecycle: run by benches/cost.sh; nothing to do alone"),
    }
}

/// Opens `n` outbound connections to a listener on another thread, which
/// accepts them all and then closes them: the syscalls of an outbound
/// connect, counted on this (the main) thread only (`strace` without `-f`).
fn connector(imp: &str, n: usize) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let conns: Vec<TcpStream> = (0..n).map(|_| listener.accept().unwrap().0).collect();
        drop(conns);
    });
    match imp {
        "hangup" => {
            let closed = std::rc::Rc::new(std::cell::Cell::new(0usize));
            struct Out(std::rc::Rc<std::cell::Cell<usize>>);
            impl hangup::Handler for Out {
                fn on_data(&mut self, _: &mut hangup::Conn<'_>, _: &[u8]) {}
                fn on_close(&mut self, _: hangup::CloseReason) {
                    self.0.set(self.0.get() + 1);
                }
            }
            let mut r = hangup::Reactor::new().unwrap();
            for _ in 0..n {
                r.connect(addr, Out(closed.clone())).unwrap();
            }
            while closed.get() < n {
                r.run_once(None).unwrap();
            }
        }
        "tokio" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
                .unwrap();
            rt.block_on(async move {
                let mut tasks = tokio::task::JoinSet::new();
                for _ in 0..n {
                    tasks.spawn(async move {
                        use tokio::io::AsyncReadExt;
                        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                        let mut buf = [0u8; 64];
                        while s.read(&mut buf).await.unwrap_or(0) > 0 {}
                    });
                }
                while tasks.join_next().await.is_some() {}
            });
        }
        other => panic!("unknown connector {other}"),
    }
    peer.join().unwrap();
}
