//! Code shared by the examples.
#![allow(dead_code)]

pub mod live;
pub mod outbound;
pub mod proxy;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tls")]
pub mod tls_rows;
pub mod unix;
pub mod vanish;

#[path = "../../tests/util/logging.rs"]
mod logging;

/// Prints the library's `log` records to stderr, filtered by `RUST_LOG`.
#[allow(unused_imports)]
pub use logging::init as init_log;
#[allow(unused_imports)]
pub use logging::init_with_default as init_log_with_default;

/// What echo and chat are told: `[PORT | --unix PATH] [--tls [--cert PEM --key PEM]] [--demo]`.
pub struct Args {
    /// The TCP port (0 with `--demo`: any free one).
    pub port: u16,
    /// `--unix PATH`: listen on a Unix domain socket instead.
    pub unix: Option<std::path::PathBuf>,
    /// `--demo`: a self-check, then exit.
    pub demo: bool,
    /// `--tls`: serve TLS (feature `tls`).
    pub tls: bool,
    /// `--cert PEM --key PEM`: the certificate chain and key (else a
    /// self-signed one for "localhost" is made at start).
    pub cert: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

impl Args {
    /// Parses the command line; `usage` on a bad one.
    pub fn parse(default_port: u16, usage: &str) -> Args {
        let mut args = std::env::args().skip(1);
        let mut out = Args {
            port: default_port,
            unix: None,
            demo: false,
            tls: false,
            cert: None,
        };
        let mut cert = None;
        let mut key = None;
        while let Some(a) = args.next() {
            match a.as_str() {
                "--tls" => out.tls = true,
                "--cert" => cert = Some(args.next().expect(usage).into()),
                "--key" => key = Some(args.next().expect(usage).into()),
                "--demo" => {
                    out.demo = true;
                    out.port = 0;
                }
                "--unix" => out.unix = Some(args.next().expect(usage).into()),
                p => out.port = p.parse().expect(usage),
            }
        }
        out.cert = cert.zip(key);
        out
    }
}

/// One row of closewatch's table.
pub struct Row {
    pub scenario: String,
    pub reason: String,
    pub errno: String,
    pub ms: String,
    pub ok: bool,
    pub note: String,
}

impl Row {
    pub fn skipped(scenario: &str, why: &str) -> Row {
        Row {
            scenario: scenario.into(),
            reason: "skipped".into(),
            errno: "-".into(),
            ms: "-".into(),
            ok: true,
            note: why.into(),
        }
    }
}

#[derive(Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub fn new() -> Table {
        Table::default()
    }

    pub fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub fn all_ok(&self) -> bool {
        self.rows.iter().all(|r| r.ok)
    }

    pub fn print(&self) {
        let w = self
            .rows
            .iter()
            .map(|r| r.scenario.len())
            .max()
            .unwrap_or(8)
            .max(8);
        let rw = self
            .rows
            .iter()
            .map(|r| r.reason.len())
            .max()
            .unwrap_or(6)
            .max(13);
        println!(
            "{:<w$}  {:<rw$} {:>5} {:>10}  {:<3}  note",
            "scenario", "reason", "errno", "ms", "ok"
        );
        println!("{}", "-".repeat(w + rw + 27));
        for r in &self.rows {
            println!(
                "{:<w$}  {:<rw$} {:>5} {:>10}  {:<3}  {}",
                r.scenario,
                r.reason,
                r.errno,
                r.ms,
                if r.ok { "yes" } else { "NO" },
                r.note
            );
        }
    }
}

/// Shuts the reactor down on Ctrl-C (SIGINT) or SIGTERM, from a thread that
/// waits for the signal (signal-hook): open connections then get `on_close`
/// with `Shutdown`, and `run` returns.
pub fn shutdown_on_signals(handle: hangup::Handle) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM]).expect("signal handler");
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            eprintln!("signal {sig}: shutting down");
            handle.shutdown();
        }
    });
}
