//! Resident memory per idle connection, for hangup, raw mio and tokio.
//!
//! ```text
//! cargo bench --bench footprint
//! ```
//!
//! For each implementation, a server process accepts 10,000 connections from
//! a client process and reports its resident set (`/proc/self/statm`) before
//! and after; the difference over 10,000 is the user-space memory each idle
//! connection costs (socket buffers live in the kernel and are not counted).
//! The handler is 8 bytes (a pointer to a shared counter).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};

use common::*;

const N: usize = 10_000;

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn server(imp: &str, n: usize) {
    raise_nofile();
    let mut s = make(imp, false);
    // Warm up the allocator and the runtime with a few connections.
    let warm = open_clients(&mut *s, 16, false);
    drop(warm);
    s.run_until_closed(16);
    s.settle();
    let before = rss_bytes();
    println!("addr {}", s.addr());
    s.accept_until(n);
    for _ in 0..3 {
        s.settle();
    }
    let after = rss_bytes();
    println!("rss {before} {after}");
}

fn client(addr: &str, n: usize) {
    raise_nofile();
    let conns: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
    // Hold them until the parent kills us.
    std::thread::sleep(std::time::Duration::from_secs(120));
    drop(conns);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("server") => return server(&args[2], args[3].parse().unwrap()),
        Some("client") => return client(&args[2], args[3].parse().unwrap()),
        _ => {}
    }
    let exe = std::env::current_exe().unwrap();
    println!("Resident memory per idle connection, {N} connections, client in another process.\n");
    println!("| implementation | RSS before | RSS after | per connection |");
    println!("|---|---|---|---|");
    for imp in IMPLS {
        let mut srv = Command::new(&exe)
            .args(["server", imp, &N.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(srv.stdout.take().unwrap()).lines();
        let addr_line = lines.next().unwrap().unwrap();
        let addr = addr_line.strip_prefix("addr ").unwrap().to_string();
        let mut cli = Command::new(&exe)
            .args(["client", &addr, &N.to_string()])
            .spawn()
            .unwrap();
        let rss_line = lines.next().unwrap().unwrap();
        let v: Vec<u64> = rss_line
            .strip_prefix("rss ")
            .unwrap()
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        srv.wait().unwrap();
        let _ = cli.kill();
        let _ = cli.wait();
        println!(
            "| {imp} | {:.1} MiB | {:.1} MiB | {:.0} B |",
            v[0] as f64 / 1048576.0,
            v[1] as f64 / 1048576.0,
            (v[1] as f64 - v[0] as f64) / N as f64
        );
    }
}
