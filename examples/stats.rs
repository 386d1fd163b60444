//! stats: an echo server that prints its counts once a second from a
//! reactor timer: connections open, closed, turned away, and closes per
//! second.
//!
//! ```text
//! cargo run --example stats                 # listens on 127.0.0.1:7003
//! nc 127.0.0.1 7003                         # open and close a few
//! cargo run --example stats -- --demo       # self-check: 50 clients, three lines, exit
//! ```

mod common;

use std::time::Duration;

use hangup::{CloseReason, Conn, Handler, Reactor};

struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }
    fn on_close(&mut self, _: CloseReason) {}
}

fn main() -> std::io::Result<()> {
    common::init_log();
    let demo = std::env::args().nth(1).as_deref() == Some("--demo");
    let (port, every) = if demo { (0, 100) } else { (7003, 1_000) };
    let mut reactor = Reactor::new()?;
    let addr = reactor.listen(([127, 0, 0, 1], port).into(), |_| Echo)?;
    println!(
        "stats: echo on {addr}; try: nc {} {}",
        addr.ip(),
        addr.port()
    );
    let mut last_closed = 0;
    let mut lines = 0;
    reactor.set_periodic(Duration::from_millis(every), move |ctx| {
        let s = ctx.stats();
        let per_second = (s.closed - last_closed) * 1_000 / every;
        println!(
            "open {:>5}  closed {:>7}  turned away {:>4}  closes/s {per_second}",
            s.connections, s.closed, s.rejected
        );
        last_closed = s.closed;
        lines += 1;
        if demo && lines == 3 {
            assert_eq!(s.closed, 50, "every demo client was counted");
            println!("demo ok");
            ctx.handle().shutdown();
        }
    });
    if demo {
        for _ in 0..50 {
            drop(std::net::TcpStream::connect(addr)?); // a FIN at once
        }
    } else {
        common::shutdown_on_signals(reactor.handle());
    }
    reactor.run()
}
