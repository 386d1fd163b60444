//! closewatch --serve: a real echo server (idle timeout 2 s, so vanished
//! and silent peers show up) that redraws once a second a table of its
//! closes by reason and by side, with counts and close-detection latency.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use hangup::{CloseKind, CloseReason, Config, Conn, Counters, Handler, Latency, Reactor, Side};

struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }
    fn on_close(&mut self, _: CloseReason) {}
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
}

/// The table of closes, as printed each second.
pub fn table(addr: SocketAddr, c: &Counters, l: Option<&Latency>, up: Duration) -> String {
    let mut out = format!(
        "closewatch --serve {addr}: up {:.0} s; open {}, accepted {}, turned away {}, closed {}, \
         unsent at close {}; bytes in {} out {}\n\n",
        up.as_secs_f64(),
        c.open,
        c.accepted,
        c.rejected(),
        c.closed,
        c.closed_unsent,
        c.bytes_in,
        c.bytes_out
    );
    out += &format!(
        "{:<14} {:>8}  {:>10} {:>10} {:>10}   (detection latency, ms)\n",
        "reason", "closes", "p50", "p99", "max"
    );
    for k in CloseKind::ALL {
        let n = c.closed_by(k);
        if n == 0 {
            continue;
        }
        let (p50, p99, max) = match l {
            Some(l) => (l.percentile(k, 0.5), l.percentile(k, 0.99), l.max(k)),
            None => (None, None, None),
        };
        out += &format!(
            "{:<14} {:>8}  {:>10} {:>10} {:>10}\n",
            format!("{k:?}"),
            n,
            ms(p50),
            ms(p99),
            ms(max)
        );
    }
    out += "\nby side:";
    for s in Side::ALL {
        out += &format!("  {s:?} {}", c.closed_by_side(s));
    }
    out.push('\n');
    out
}

/// Serves on `addr`; redraws once a second; after `for_secs`, prints the
/// final table and returns.
pub fn serve(addr: SocketAddr, for_secs: Option<u64>) -> std::io::Result<()> {
    let config = Config::default()
        .idle_timeout(Some(Duration::from_secs(2)))
        .close_latency(true);
    let mut reactor = Reactor::with_config(config)?;
    let bound = reactor.listen(addr, |_| Echo)?;
    eprintln!(
        "closewatch: echo on {bound} (idle timeout 2 s); try: nc {} {}",
        bound.ip(),
        bound.port()
    );
    let started = Instant::now();
    let tty = std::io::stdout().is_terminal();
    reactor.set_periodic(Duration::from_secs(1), move |ctx| {
        let t = table(
            bound,
            &ctx.counters(),
            ctx.latency().as_ref(),
            started.elapsed(),
        );
        if tty {
            print!("\x1b[2J\x1b[H{t}");
        } else {
            println!("{t}");
        }
        if for_secs.is_some_and(|s| started.elapsed() >= Duration::from_secs(s)) {
            ctx.handle().shutdown();
        }
    });
    super::shutdown_on_signals(reactor.handle());
    reactor.run()?;
    let final_table = table(
        bound,
        &reactor.counters(),
        reactor.latency().as_ref(),
        started.elapsed(),
    );
    println!("final:\n{final_table}");
    Ok(())
}
