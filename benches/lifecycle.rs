//! A server and a client in separate processes, for counting what one
//! connection's life costs the server: syscalls (`strace -c`) and user-space
//! instructions (`valgrind --tool=callgrind`). `benches/cost.sh` runs it.
//!
//! ```text
//! lifecycle server <impl> <N> <dir>        # accept N, wait for N closes, exit
//! lifecycle client <N> <fin|rst> <dir>     # connect N, wait, close all at once
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
            let mut s = make(&imp, false);
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
        _ => eprintln!("lifecycle: run by benches/cost.sh; nothing to do alone"),
    }
}
