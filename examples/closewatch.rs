//! closewatch: every way a TCP (or Unix-domain) connection can end, as
//! hangup reports it.
//!
//! Run it:
//!
//! ```text
//! cargo run --release --example closewatch
//! cargo run --release --example closewatch --features tls   # with the TLS rows
//! cargo run --release --example closewatch -- --serve 127.0.0.1:7009 [--for SECS]
//! ```
//!
//! With `--serve`, it is a real echo server (idle timeout 2 s) that redraws,
//! once a second, its closes by reason and by side with counts and
//! close-detection latency p50/p99/max; talk to it with `nc`, Python,
//! `wrk`, and watch. `--for SECS` prints the final table and exits after
//! SECS.
//!
//! It starts a reactor on 127.0.0.1 with one listener per scenario, drives a
//! real client socket through each scenario, and prints a table: what the
//! client did, the `CloseReason` reported, its errno, and the time from the
//! client's action to `on_close`. Rows over Unix domain sockets follow (EOF,
//! a reset when the client leaves our data unread, EPIPE on a write to a
//! client that left, an abort), then rows for the outbound side: connects
//! that are refused or time out, an upstream that resets, and a half-close
//! passed through the proxy of `examples/proxy.rs`. Run as root, it also builds two network
//! namespaces joined by a veth pair and makes a peer vanish (link down) to
//! show keepalive and `TCP_USER_TIMEOUT` at work; otherwise those rows say
//! why they were skipped. Set `RUST_LOG=hangup=debug` to see the library's logs.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};

const MIB: usize = 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Orderly,
    Reset,
    HalfClose,
    LocalClose,
    Abort,
    Backpressure,
    Panic,
    Idle,
    Deadline,
    Shutdown,
}

/// What a handler reports at `on_close`.
struct Report {
    reason: CloseReason,
    at: Instant,
    bytes_in: usize,
    /// Who ended it, in which phase, and its history.
    record: Option<hangup::CloseRecord>,
}

struct Watch {
    mode: Mode,
    tx: Sender<(Mode, Report)>,
    bytes_in: usize,
}

impl Handler for Watch {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        match self.mode {
            Mode::LocalClose => {
                let chunk = vec![b'x'; MIB];
                for _ in 0..8 {
                    conn.write(&chunk);
                }
                conn.close();
            }
            Mode::Backpressure => {
                let chunk = vec![b'x'; MIB];
                for _ in 0..64 {
                    conn.write(&chunk);
                }
            }
            Mode::Idle => conn.set_idle_timeout(Some(Duration::from_millis(300))),
            Mode::Deadline => conn.set_deadline(Duration::from_millis(500)),
            _ => {}
        }
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.bytes_in += data.len();
        match self.mode {
            Mode::Abort => conn.abort(),
            Mode::Panic => panic!("closewatch: a handler bug"),
            Mode::HalfClose => conn.write(data),
            _ => {}
        }
    }

    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        if self.mode == Mode::HalfClose {
            conn.write(b" -- answered after your FIN");
        }
        conn.close();
    }

    fn on_close(&mut self, reason: CloseReason) {
        let report = Report {
            reason,
            at: Instant::now(),
            bytes_in: self.bytes_in,
            record: None,
        };
        let _ = self.tx.send((self.mode, report));
    }

    fn on_close_with(&mut self, reason: CloseReason, ctx: &mut hangup::Ctx<'_, Self>) {
        let report = Report {
            reason,
            at: Instant::now(),
            bytes_in: self.bytes_in,
            record: ctx.record().copied(),
        };
        let _ = self.tx.send((self.mode, report));
    }
}

const MODES: [Mode; 10] = [
    Mode::Orderly,
    Mode::Reset,
    Mode::HalfClose,
    Mode::LocalClose,
    Mode::Abort,
    Mode::Backpressure,
    Mode::Panic,
    Mode::Idle,
    Mode::Deadline,
    Mode::Shutdown,
];

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--serve") {
        common::init_log();
        let usage = "usage: closewatch [--serve ADDR [--for SECS]]";
        let addr = args.get(1).and_then(|a| a.parse().ok()).expect(usage);
        let for_secs = match args.get(2).map(String::as_str) {
            Some("--for") => Some(args.get(3).and_then(|s| s.parse().ok()).expect(usage)),
            _ => None,
        };
        return common::live::serve(addr, for_secs);
    }
    // The Panic row's handler panics on purpose, and the reactor logs what it
    // caught at ERROR: not shown unless asked for (RUST_LOG=hangup=debug),
    // so that a first run does not open with an error it meant to cause.
    common::init_log_with_default("error,hangup::reactor=off");
    // Panics in the Panic scenario are caught by the reactor; keep the default
    // hook's message short.
    std::panic::set_hook(Box::new(|info| {
        log::debug!("panic: {info}");
    }));

    let (tx, rx) = channel();
    let (addr_tx, addr_rx) = channel();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let config = Config::default()
            .max_write_buffer(16 * MIB)
            .close_records(true);
        let mut reactor = Reactor::with_config(config)?;
        let mut addrs = Vec::new();
        for mode in MODES {
            let tx = tx.clone();
            let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), move |_| Watch {
                mode,
                tx: tx.clone(),
                bytes_in: 0,
            })?;
            addrs.push((mode, addr));
        }
        addr_tx.send((addrs, reactor.handle())).unwrap();
        reactor.run()
    });
    let (addrs, handle) = addr_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reactor started");
    let addr_of = |m: Mode| addrs.iter().find(|(mode, _)| *mode == m).unwrap().1;

    let mut table = common::Table::new();
    for mode in MODES {
        let addr = addr_of(mode);
        let row = match mode {
            Mode::Shutdown => {
                let _client = connect(addr);
                std::thread::sleep(Duration::from_millis(50));
                let t = Instant::now();
                handle.shutdown();
                finish(
                    &rx,
                    mode,
                    t,
                    "reactor shut down with the connection open",
                    "Shutdown",
                )
            }
            _ => drive(mode, addr, &rx),
        };
        table.push(row);
    }
    server.join().expect("reactor thread")?;

    common::unix::rows(&mut table);
    #[cfg(feature = "tls")]
    common::tls_rows::rows(&mut table);
    #[cfg(not(feature = "tls"))]
    table.push(common::Row::skipped(
        "tls: all rows",
        "built without the tls feature (cargo run --example closewatch --features tls)",
    ));
    common::outbound::rows(&mut table);
    common::vanish::rows(&mut table);
    table.print();
    if table.all_ok() {
        println!("\nevery row reported the reason it should.");
        Ok(())
    } else {
        println!("\nsome rows did NOT report the reason they should.");
        std::process::exit(1);
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

/// Runs the client side of one scenario and waits for the server's report.
fn drive(mode: Mode, addr: SocketAddr, rx: &Receiver<(Mode, Report)>) -> common::Row {
    let t_connect = Instant::now();
    let mut c = connect(addr);
    std::thread::sleep(Duration::from_millis(20)); // let the server accept
    match mode {
        Mode::Orderly => {
            let t = Instant::now();
            c.shutdown(Shutdown::Write).unwrap();
            finish(rx, mode, t, "client closed (FIN)", "PeerClosed")
        }
        Mode::Reset => {
            c.write_all(b"some bytes, then an RST").unwrap();
            std::thread::sleep(Duration::from_millis(20));
            let t = Instant::now();
            socket2::SockRef::from(&c)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(c);
            finish(rx, mode, t, "client reset (SO_LINGER 0)", "Reset")
        }
        Mode::HalfClose => {
            c.write_all(b"hello").unwrap();
            let t = Instant::now();
            c.shutdown(Shutdown::Write).unwrap();
            let mut answer = String::new();
            c.read_to_string(&mut answer).unwrap();
            let mut row = finish(
                rx,
                mode,
                t,
                "client half-closed; server answered",
                "PeerClosed",
            );
            row.note = format!("client got {:?}", answer);
            row
        }
        Mode::LocalClose => {
            c.write_all(&[b'u'; 4096]).unwrap(); // input the server never reads
            let t = Instant::now();
            let mut got = 0usize;
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match c.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) => {
                        got = usize::MAX;
                        eprintln!("client read failed: {e}");
                        break;
                    }
                }
            }
            drop(c);
            let mut row = finish(rx, mode, t, "server close() with 8 MiB queued", "Local");
            row.ok &= got == 8 * MIB;
            row.note = format!("client read {} of 8 MiB, then EOF", got / MIB);
            row
        }
        Mode::Abort => {
            let t = Instant::now();
            c.write_all(b"abort please").unwrap();
            let mut b = [0u8; 1];
            let seen = match c.read(&mut b) {
                Err(e) => e.to_string(),
                Ok(n) => format!("read {n}"),
            };
            let mut row = finish(rx, mode, t, "server abort()", "Local");
            row.note = format!("client saw: {seen}");
            row
        }
        Mode::Backpressure => {
            let t = t_connect;
            let row = finish(
                rx,
                mode,
                t,
                "client connects, never reads 64 MiB",
                "Backpressure",
            );
            drop(c);
            row
        }
        Mode::Panic => {
            let t = Instant::now();
            c.write_all(b"boom").unwrap();
            finish(rx, mode, t, "handler panicked in on_data", "Panicked")
        }
        Mode::Idle => {
            let t = t_connect;
            let mut row = finish(
                rx,
                mode,
                t,
                "client connects, stays silent; idle 300 ms",
                "Idle",
            );
            row.note = "timer: 300 ms".into();
            row
        }
        Mode::Deadline => {
            // Slowloris: a byte every 100 ms, which an idle timeout would allow.
            let t = t_connect;
            let trickler = std::thread::spawn(move || {
                for _ in 0..20 {
                    if c.write_all(b".").is_err() {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            });
            let mut row = finish(
                rx,
                mode,
                t,
                "client trickles 1 B/100 ms; deadline 500 ms",
                "Deadline",
            );
            row.note = "timer: 500 ms".into();
            let _ = trickler.join();
            row
        }
        Mode::Shutdown => unreachable!(),
    }
}

fn finish(
    rx: &Receiver<(Mode, Report)>,
    mode: Mode,
    t: Instant,
    scenario: &str,
    want: &str,
) -> common::Row {
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok((m, r)) => common::Row {
            scenario: scenario.to_string(),
            reason: r.reason.name().to_string(),
            errno: r
                .reason
                .raw_os_error()
                .map_or("-".into(), |e| e.to_string()),
            ms: format!("{:.2}", r.at.duration_since(t).as_secs_f64() * 1e3),
            ok: m == mode && r.reason.name() == want,
            note: {
                let mut note = String::new();
                if let Some(rec) = &r.record {
                    note += &format!("{:?}, {}", rec.side, rec.phase);
                    if let Some(d) = &rec.detail {
                        note += &format!(" [{}]", d.history);
                    }
                }
                if r.bytes_in > 0 {
                    note += &format!("; {} B delivered first", r.bytes_in);
                }
                note
            },
        },
        Err(_) => common::Row {
            scenario: scenario.to_string(),
            reason: "(none within 20 s)".into(),
            errno: "-".into(),
            ms: "-".into(),
            ok: false,
            note: String::new(),
        },
    }
}
