//! echo: the smallest hangup server, over TCP or a Unix domain socket.
//!
//! Run it, then talk to it from another terminal:
//!
//! ```text
//! cargo run --example echo                         # listens on 127.0.0.1:7000
//! nc 127.0.0.1 7000                                # type lines; Ctrl-D sends a FIN
//! cargo run --example echo -- 7001                 # another port
//! cargo run --example echo -- --unix /tmp/echo.sock
//! nc -U /tmp/echo.sock                             # or: socat - UNIX-CONNECT:/tmp/echo.sock
//! cargo run --example echo -- --demo               # self-check: one client, then exit
//! cargo run --example echo -- --unix /tmp/e.sock --demo
//! ```
//!
//! TLS (feature `tls`), with a self-signed certificate made at start, or
//! one given as PEM files:
//!
//! ```text
//! cargo run --example echo --features tls -- --tls
//! openssl s_client -connect 127.0.0.1:7000        # type lines; Ctrl-D sends close_notify
//! curl -k --http0.9 https://127.0.0.1:7000/       # curl's request comes back as the answer
//! cargo run --example echo --features tls -- --tls --cert cert.pem --key key.pem
//! ```
//!
//! Socket activation (feature `activation`): started by systemd (or
//! `systemd-socket-activate -l 7000 -l /tmp/echo.sock target/debug/examples/echo`),
//! it serves the listeners it was given, TCP and Unix alike, and tells the
//! manager READY=1:
//!
//! ```text
//! cargo build --example echo --features activation
//! ```
//!
//! Every close is printed with its reason: try Ctrl-D (FIN), Ctrl-C on `nc`
//! (FIN), or a reset (`python3 -c` with SO_LINGER 0). Ctrl-C here closes
//! every connection (`Shutdown`) and removes the socket file.

mod common;

use std::io::{Read, Write};
use std::path::PathBuf;

use hangup::{CloseReason, Conn, Handler, Peer, Reactor, UnixListenOptions};

struct Echo {
    peer: Peer,
}

impl Handler for Echo {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        println!(
            "{} connected as {:?}{}",
            self.peer,
            conn.id(),
            tls_facts(conn)
        );
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }

    fn on_close(&mut self, reason: CloseReason) {
        println!("{} closed: {reason} ({})", self.peer, reason.name());
    }
}

const USAGE: &str = "usage: echo [PORT | --unix PATH] [--tls [--cert PEM --key PEM]] [--demo]";

/// Where the demo client goes.
enum At {
    Tcp(std::net::SocketAddr),
    Unix(PathBuf),
    Activated,
}

fn main() -> std::io::Result<()> {
    common::init_log();
    let args = common::Args::parse(7000, USAGE);
    let (port, unix, demo) = (args.port, args.unix.clone(), args.demo);
    if args.tls {
        return tls::serve(args);
    }
    let mut reactor = Reactor::new()?;
    let at = if activated(&mut reactor)? {
        At::Activated
    } else if let Some(path) = unix {
        // A socket file left by a crash is replaced; a live one never.
        let opts = UnixListenOptions::new().replace_stale(true);
        reactor.listen_unix_with(&path, opts, |peer| Echo { peer })?;
        println!("echo listening on {}; try: nc -U {0}", path.display());
        At::Unix(path)
    } else {
        let addr = reactor.listen(([127, 0, 0, 1], port).into(), |addr| Echo {
            peer: Peer::Tcp(addr),
        })?;
        println!(
            "echo listening on {addr}; try: nc {} {}",
            addr.ip(),
            addr.port()
        );
        At::Tcp(addr)
    };
    if !demo {
        // Ctrl-C or SIGTERM: every open connection closes with `Shutdown`.
        common::shutdown_on_signals(reactor.handle());
        return reactor.run();
    }
    let handle = reactor.handle();
    let client = std::thread::spawn(move || -> std::io::Result<()> {
        let back = match at {
            At::Tcp(addr) => round_trip(std::net::TcpStream::connect(addr)?)?,
            At::Unix(path) => round_trip(std::os::unix::net::UnixStream::connect(path)?)?,
            At::Activated => "hello, echo".into(),
        };
        println!("client got back {back:?}");
        assert_eq!(back, "hello, echo");
        handle.shutdown();
        Ok(())
    });
    reactor.run()?;
    client.join().expect("client thread")
}

/// Says hello, half-closes, reads the answer to the end.
fn round_trip<S: Read + Write + HalfClose>(mut c: S) -> std::io::Result<String> {
    c.write_all(b"hello, echo")?;
    c.half_close()?;
    let mut back = String::new();
    c.read_to_string(&mut back)?;
    Ok(back)
}

trait HalfClose {
    fn half_close(&self) -> std::io::Result<()>;
}

impl HalfClose for std::net::TcpStream {
    fn half_close(&self) -> std::io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl HalfClose for std::os::unix::net::UnixStream {
    fn half_close(&self) -> std::io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

/// Serves the listeners systemd passed, if any, and says READY=1.
#[cfg(feature = "activation")]
fn activated(reactor: &mut Reactor<Echo>) -> std::io::Result<bool> {
    let served = reactor.listen_activated(|peer| Echo { peer })?;
    if served.is_empty() {
        return Ok(false);
    }
    println!("echo serving what it was given: {}", served.join(", "));
    hangup::activation::notify_ready()?;
    Ok(true)
}

#[cfg(not(feature = "activation"))]
fn activated(_: &mut Reactor<Echo>) -> std::io::Result<bool> {
    Ok(false)
}

/// The negotiated TLS facts, for the connect line.
#[cfg(feature = "tls")]
fn tls_facts(conn: &Conn<'_>) -> String {
    conn.tls().map_or_else(String::new, |t| {
        let version = t
            .protocol_version()
            .map_or("?".into(), |v| format!("{v:?}"));
        let suite = t
            .negotiated_cipher_suite()
            .map_or("?".into(), |s| format!("{:?}", s.suite()));
        let name = match t {
            rustls::Connection::Server(s) => s.server_name().unwrap_or("-").to_string(),
            rustls::Connection::Client(_) => "-".into(),
        };
        format!(" over {version}, {suite}, server name {name}")
    })
}

#[cfg(not(feature = "tls"))]
fn tls_facts(_: &Conn<'_>) -> String {
    String::new()
}

#[cfg(feature = "tls")]
mod tls {
    use super::*;

    /// `--tls`: echo over TLS, on a port or a Unix path.
    pub fn serve(args: common::Args) -> std::io::Result<()> {
        let pem = args.cert.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        let config = common::tls::server_config(pem)?;
        let mut reactor = Reactor::new()?;
        match &args.unix {
            Some(path) => {
                reactor.listen_unix_tls(path, config, |peer| Echo { peer })?;
                println!(
                    "echo (TLS) on {}; try: openssl s_client -unix {0}",
                    path.display()
                );
            }
            None => {
                let addr = reactor.listen_tls(([127, 0, 0, 1], args.port).into(), config, |a| {
                    Echo { peer: Peer::Tcp(a) }
                })?;
                println!(
                    "echo (TLS) on {addr}; try: openssl s_client -connect {addr}, or curl -k --http0.9 https://{addr}/"
                );
            }
        }
        common::shutdown_on_signals(reactor.handle());
        reactor.run()
    }
}

#[cfg(not(feature = "tls"))]
mod tls {
    /// `--tls` without the feature: say how to build it.
    pub fn serve(_: super::common::Args) -> std::io::Result<()> {
        eprintln!(
            "echo: --tls needs the tls feature: cargo run --example echo --features tls -- --tls"
        );
        std::process::exit(2)
    }
}
