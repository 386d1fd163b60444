//! proxy: a forwarding proxy that mirrors closes the way a careful proxy
//! does (see `examples/common/proxy.rs`), over TCP or a Unix domain socket
//! on either side (`unix:PATH`, or any argument with a `/`).
//!
//! ```text
//! cargo run --release --example proxy -- LISTEN UPSTREAM
//! cargo run --release --example proxy -- 127.0.0.1:7001 127.0.0.1:7000
//! cargo run --release --example proxy -- 127.0.0.1:7001 /tmp/echo.sock   # TCP in, Unix out
//! cargo run --release --example proxy -- /tmp/proxy.sock 127.0.0.1:7000  # Unix in, TCP out
//! cargo run --release --example proxy -- --demo        # self-check, then exit
//! cargo run --release --example proxy -- --demo-unix   # the same through a Unix upstream
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

use common::proxy::{self, Endpoint, Proxy};
use hangup::Reactor;

fn main() -> std::io::Result<()> {
    common::init_log();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--demo") => return demo(false),
        Some("--demo-unix") => return demo(true),
        _ => {}
    }
    let usage =
        "usage: proxy LISTEN UPSTREAM (e.g. 127.0.0.1:7001 127.0.0.1:7000, or unix:PATH) | --demo | --demo-unix";
    let (Some(listen), Some(upstream)) = (args.first(), args.get(1)) else {
        eprintln!("{usage}");
        std::process::exit(2);
    };
    let parse = |s: &str| -> Endpoint {
        s.parse().unwrap_or_else(|e| {
            eprintln!("{e}; {usage}");
            std::process::exit(2)
        })
    };
    let (listen, upstream) = (parse(listen), parse(upstream));
    let mut reactor: Reactor<Proxy> = Reactor::new()?;
    let (at, _) = proxy::listen_on(&mut reactor, listen, upstream.clone(), true)?;
    let try_it = match &at {
        Endpoint::Tcp(a) => format!("nc {} {}", a.ip(), a.port()),
        Endpoint::Unix(p) => format!("nc -U {}", p.display()),
    };
    println!("proxy on {at} -> {upstream}; try: {try_it}");
    common::shutdown_on_signals(reactor.handle());
    reactor.run()?;
    println!("proxy stopped");
    Ok(())
}

/// Self-check: an echo upstream (TCP, or a Unix socket with `unix`), one
/// client that sends, half-closes and reads everything back through the
/// proxy.
fn demo(unix: bool) -> std::io::Result<()> {
    fn echo_once<S: Read + Write>(mut s: S) {
        let mut all = Vec::new();
        s.read_to_end(&mut all).expect("read");
        s.write_all(&all).expect("echo");
        // Dropping `s` sends the upstream's FIN, which the proxy passes on.
    }
    let upstream_addr: Endpoint = if unix {
        let path =
            std::env::temp_dir().join(format!("hangup-proxy-demo-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let upstream = std::os::unix::net::UnixListener::bind(&path)?;
        std::thread::spawn(move || echo_once(upstream.accept().expect("accept").0));
        Endpoint::Unix(path)
    } else {
        let upstream = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = upstream.local_addr()?;
        std::thread::spawn(move || echo_once(upstream.accept().expect("accept").0));
        Endpoint::Tcp(addr)
    };
    let mut reactor: Reactor<Proxy> = Reactor::new()?;
    let (addr, shared) = proxy::listen(
        &mut reactor,
        "127.0.0.1:0".parse().unwrap(),
        upstream_addr.clone(),
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
    if let Endpoint::Unix(p) = &upstream_addr {
        let _ = std::fs::remove_file(p);
    }
    println!(
        "demo ok; most queued in the proxy: {} B",
        shared.max_queued.get()
    );
    Ok(())
}
