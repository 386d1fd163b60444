//! proxy: a TCP forwarding proxy that mirrors closes the way a careful proxy
//! does (see `examples/common/proxy.rs`).
//!
//! ```text
//! cargo run --release --example proxy -- LISTEN UPSTREAM
//! cargo run --release --example proxy -- 127.0.0.1:7001 127.0.0.1:7000
//! cargo run --release --example proxy -- --demo   # self-check, then exit
//! ```
//!
//! Try it with the echo example as the upstream:
//!
//! ```text
//! cargo run --example echo                         # upstream on 127.0.0.1:7000
//! cargo run --release --example proxy -- 127.0.0.1:7001 127.0.0.1:7000
//! nc 127.0.0.1 7001                                # type lines; Ctrl-D: FIN passed on
//! ```
//!
//! Each close prints a line with its reason; stop the echo server and connect
//! again to see the upstream refused. Ctrl-C (or SIGTERM) shuts the proxy
//! down: open pairs close with `Shutdown`. `RUST_LOG=hangup=debug` shows the
//! library's log.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;

use common::proxy::{self, Proxy};
use hangup::Reactor;

fn main() -> std::io::Result<()> {
    common::init_log();
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--demo") {
        return demo();
    }
    let usage = "usage: proxy LISTEN UPSTREAM (e.g. 127.0.0.1:7001 127.0.0.1:7000) | --demo";
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let parse = |s: &str| -> SocketAddr {
        s.parse().unwrap_or_else(|e| {
            eprintln!("{s}: {e}; {usage}");
            std::process::exit(2)
        })
    };
    let (listen, upstream) = (parse(listen), parse(upstream));
    let mut reactor: Reactor<Proxy> = Reactor::new()?;
    let (addr, _) = proxy::listen(&mut reactor, listen, upstream, true)?;
    println!(
        "proxy on {addr} -> {upstream}; try: nc {} {}",
        addr.ip(),
        addr.port()
    );
    common::shutdown_on_signals(reactor.handle());
    reactor.run()?;
    println!("proxy stopped");
    Ok(())
}

/// Self-check: an echo upstream, one client that sends, half-closes and
/// reads everything back through the proxy.
fn demo() -> std::io::Result<()> {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
    let upstream_addr = upstream.local_addr()?;
    std::thread::spawn(move || {
        let (mut s, _) = upstream.accept().expect("accept");
        let mut all = Vec::new();
        s.read_to_end(&mut all).expect("read");
        s.write_all(&all).expect("echo");
        // Dropping `s` sends the upstream's FIN, which the proxy passes on.
    });
    let mut reactor: Reactor<Proxy> = Reactor::new()?;
    let (addr, shared) = proxy::listen(
        &mut reactor,
        "127.0.0.1:0".parse().unwrap(),
        upstream_addr,
        true,
    )?;
    println!("proxy on {addr} -> {upstream_addr} (demo)");
    let handle = reactor.handle();
    let client = std::thread::spawn(move || -> std::io::Result<()> {
        let mut c = std::net::TcpStream::connect(addr)?;
        let msg = vec![b'x'; 1 << 20];
        c.write_all(&msg)?;
        c.shutdown(std::net::Shutdown::Write)?;
        let mut back = Vec::new();
        c.read_to_end(&mut back)?;
        println!(
            "client sent {} B, got {} B back, then the upstream's FIN",
            msg.len(),
            back.len()
        );
        assert_eq!(back, msg);
        handle.shutdown();
        Ok(())
    });
    reactor.run()?;
    client.join().expect("client thread")?;
    println!(
        "demo ok; most queued in the proxy: {} B",
        shared.max_queued.get()
    );
    Ok(())
}
