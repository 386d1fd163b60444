//! reconnect: a client that stays connected. Whenever its connection ends
//! (refused, reset, closed by the server), it says why and connects again
//! after a backoff (100 ms, doubling to 5 s, back to 100 ms once connected).
//!
//! ```text
//! cargo run --example echo                  # a server on 127.0.0.1:7000
//! cargo run --example reconnect             # connects to it; stop/start echo to watch
//! cargo run --example reconnect -- 127.0.0.1:7001
//! cargo run --example reconnect -- --demo   # self-check against a server that comes and goes
//! ```

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use hangup::{CloseReason, Conn, Ctx, Handler, Reactor};

struct Client {
    addr: SocketAddr,
    backoff: Duration,
}

impl Handler for Client {
    fn on_open(&mut self, _: &mut Conn<'_>) {
        println!("connected to {}", self.addr);
        self.backoff = Duration::from_millis(100);
    }
    fn on_data(&mut self, _: &mut Conn<'_>, data: &[u8]) {
        print!("{}", String::from_utf8_lossy(data));
    }
    fn on_close(&mut self, _: CloseReason) {}
    fn on_close_with(&mut self, reason: CloseReason, ctx: &mut Ctx<'_, Self>) {
        println!("{reason}; again in {:?}", self.backoff);
        let next = Client {
            addr: self.addr,
            backoff: (self.backoff * 2).min(Duration::from_secs(5)),
        };
        ctx.set_timer(self.backoff, move |ctx| {
            ctx.connect_or_report(next.addr, next);
        });
    }
}

fn main() -> std::io::Result<()> {
    common::init_log();
    let arg = std::env::args().nth(1);
    if arg.as_deref() == Some("--demo") {
        return demo();
    }
    let addr = arg
        .as_deref()
        .unwrap_or("127.0.0.1:7000")
        .parse()
        .expect("usage: reconnect [ADDR | --demo]");
    let mut reactor = Reactor::new()?;
    reactor.connect(
        addr,
        Client {
            addr,
            backoff: Duration::from_millis(100),
        },
    )?;
    common::shutdown_on_signals(reactor.handle()); // Ctrl-C: Shutdown, and no reconnect
    reactor.run()
}

/// A server that greets and hangs up three times, then goes away: the
/// client must connect three times and be refused after that.
fn demo() -> std::io::Result<()> {
    let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = server.local_addr()?;
    std::thread::spawn(move || {
        for _ in 0..3 {
            let (mut s, _) = server.accept().expect("accept");
            std::io::Write::write_all(&mut s, b"hello, and goodbye\n").expect("write");
        }
    });
    let mut reactor = Reactor::new()?;
    reactor.connect(
        addr,
        Client {
            addr,
            backoff: Duration::from_millis(100),
        },
    )?;
    let stop = reactor.handle();
    reactor.set_timer(Duration::from_millis(1_500), move |ctx| {
        let s = ctx.stats();
        println!(
            "demo: {} connections made, {} ended",
            s.closed + s.connections,
            s.closed
        );
        assert!(
            s.closed >= 4,
            "three served and at least one refused: {s:?}"
        );
        println!("demo ok");
        stop.shutdown();
    });
    reactor.run()
}
