//! closewatch's Unix-domain rows: the same Handler over AF_UNIX, where an
//! orderly close is EOF, a peer that leaves our data unread makes our read
//! fail with ECONNRESET, and a write to a peer that is gone fails with EPIPE
//! (never a SIGPIPE: hangup sends with MSG_NOSIGNAL).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, Handler, Reactor};

use super::{Row, Table};

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Eof,
    Unread,
    Epipe,
    Abort,
}

const MODES: [Mode; 4] = [Mode::Eof, Mode::Unread, Mode::Epipe, Mode::Abort];

struct Watch {
    mode: Mode,
    tx: Sender<(Mode, CloseReason, Instant, usize, String)>,
    bytes_in: usize,
}

impl Handler for Watch {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        match self.mode {
            Mode::Unread => conn.write(&[b'u'; 4096]),
            Mode::Epipe => {
                // Not reading, the peer's EOF goes unseen: the write from
                // the timer is what meets the closed peer.
                conn.pause_reading();
                conn.set_timer(Duration::from_millis(100));
            }
            _ => {}
        }
    }

    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.bytes_in += data.len();
        if self.mode == Mode::Abort {
            conn.abort();
        }
    }

    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        conn.write(b"anyone there?");
    }

    fn on_close(&mut self, _: CloseReason) {}

    fn on_close_with(&mut self, reason: CloseReason, ctx: &mut hangup::Ctx<'_, Self>) {
        let note = ctx
            .record()
            .map(|r| format!("{:?}, {}", r.side, r.phase))
            .unwrap_or_default();
        let _ = self
            .tx
            .send((self.mode, reason, Instant::now(), self.bytes_in, note));
    }
}

/// Appends the Unix rows to `table`.
pub fn rows(table: &mut Table) {
    let dir = std::env::temp_dir().join(format!("closewatch-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path_of = |m: Mode| dir.join(format!("{m:?}.sock").to_lowercase());
    let (tx, rx) = channel();
    let (ready_tx, ready_rx) = channel();
    let paths: Vec<(Mode, PathBuf)> = MODES.iter().map(|&m| (m, path_of(m))).collect();
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        let mut reactor = Reactor::with_config(Config::default().close_records(true))?;
        for (mode, path) in paths {
            let tx = tx.clone();
            reactor.listen_unix(&path, move |_| Watch {
                mode,
                tx: tx.clone(),
                bytes_in: 0,
            })?;
        }
        ready_tx.send(reactor.handle()).unwrap();
        reactor.run()
    });
    let Ok(handle) = ready_rx.recv_timeout(Duration::from_secs(10)) else {
        table.push(Row::skipped(
            "unix: all rows",
            "the Unix reactor did not start",
        ));
        return;
    };
    for mode in MODES {
        table.push(drive(mode, &path_of(mode), &rx));
    }
    handle.shutdown();
    let _ = server.join();
    let _ = std::fs::remove_dir_all(&dir);
}

fn drive(
    mode: Mode,
    path: &std::path::Path,
    rx: &Receiver<(Mode, CloseReason, Instant, usize, String)>,
) -> Row {
    let mut c = UnixStream::connect(path).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    std::thread::sleep(Duration::from_millis(20)); // let the server accept
    let (scenario, want, t, mut note) = match mode {
        Mode::Eof => {
            c.write_all(b"all of it, then EOF").unwrap();
            let t = Instant::now();
            drop(c);
            ("unix: client closed (EOF)", "PeerClosed", t, String::new())
        }
        Mode::Unread => {
            // The server's 4 KiB sit unread in our receive queue.
            std::thread::sleep(Duration::from_millis(20));
            let t = Instant::now();
            drop(c);
            (
                "unix: client closed, server's data unread",
                "Reset",
                t,
                String::new(),
            )
        }
        Mode::Epipe => {
            let t = Instant::now();
            drop(c);
            (
                "unix: server writes after the client left",
                "Reset",
                t,
                "EPIPE, no SIGPIPE; ".into(),
            )
        }
        Mode::Abort => {
            let t = Instant::now();
            c.write_all(b"abort please").unwrap();
            let mut b = [0u8; 1];
            let seen = match c.read(&mut b) {
                Err(e) => e.to_string(),
                Ok(0) => "EOF (AF_UNIX has no reset to send)".into(),
                Ok(n) => format!("read {n}"),
            };
            (
                "unix: server abort()",
                "Local",
                t,
                format!("client saw {seen}; "),
            )
        }
    };
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok((m, reason, at, bytes_in, rec)) => {
            note += &rec;
            if bytes_in > 0 {
                note += &format!("; {bytes_in} B delivered first");
            }
            Row {
                scenario: scenario.into(),
                reason: reason.name().into(),
                errno: reason.raw_os_error().map_or("-".into(), |e| e.to_string()),
                ms: format!("{:.2}", at.duration_since(t).as_secs_f64() * 1e3),
                ok: m == mode && reason.name() == want,
                note,
            }
        }
        Err(_) => Row {
            scenario: scenario.into(),
            reason: "(none within 20 s)".into(),
            errno: "-".into(),
            ms: "-".into(),
            ok: false,
            note,
        },
    }
}
