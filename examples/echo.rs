//! echo: the smallest hangup server.
//!
//! Run it, then talk to it from another terminal:
//!
//! ```text
//! cargo run --example echo            # listens on 127.0.0.1:7000
//! nc 127.0.0.1 7000                   # type lines; Ctrl-D sends a FIN
//! cargo run --example echo -- 7001    # another port
//! cargo run --example echo -- --demo  # self-check: one client, then exit
//! ```
//!
//! Every close is printed with its reason: try Ctrl-D (FIN), Ctrl-C on `nc`
//! (FIN), or a reset (`python3 -c` with SO_LINGER 0).

mod common;

use std::io::{Read, Write};

use hangup::{CloseReason, Conn, Handler, Reactor};

struct Echo {
    peer: std::net::SocketAddr,
}

impl Handler for Echo {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        println!("{} connected as {:?}", self.peer, conn.id());
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }

    fn on_close(&mut self, reason: CloseReason) {
        println!("{} closed: {reason} ({})", self.peer, reason.name());
    }
}

fn main() -> std::io::Result<()> {
    common::init_log();
    let arg = std::env::args().nth(1);
    let demo = arg.as_deref() == Some("--demo");
    let port: u16 = match arg.as_deref() {
        Some("--demo") => 0,
        Some(p) => p.parse().expect("usage: echo [PORT | --demo]"),
        None => 7000,
    };
    let mut reactor = Reactor::new()?;
    let addr = reactor.listen(([127, 0, 0, 1], port).into(), |peer| Echo { peer })?;
    println!(
        "echo listening on {addr}; try: nc {} {}",
        addr.ip(),
        addr.port()
    );
    if !demo {
        // Ctrl-C or SIGTERM: every open connection closes with `Shutdown`.
        common::shutdown_on_signals(reactor.handle());
        return reactor.run();
    }
    let handle = reactor.handle();
    let client = std::thread::spawn(move || -> std::io::Result<()> {
        let mut c = std::net::TcpStream::connect(addr)?;
        c.write_all(b"hello, echo")?;
        c.shutdown(std::net::Shutdown::Write)?;
        let mut back = String::new();
        c.read_to_string(&mut back)?;
        println!("client got back {back:?}");
        assert_eq!(back, "hello, echo");
        handle.shutdown();
        Ok(())
    });
    reactor.run()?;
    client.join().expect("client thread")
}
