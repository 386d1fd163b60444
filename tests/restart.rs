//! `examples/restart.rs` restarted three times (SIGHUP) while clients connect,
//! echo a line and close, continuously: no connection may be refused, reset
//! or left unanswered. Uses the example binary `cargo test` builds.

mod util;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use util::WAIT;

/// The example binary, beside this test's own (target/<profile>/examples).
fn example_binary() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    dir.join("examples").join("restart")
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    unanswered: AtomicU64,
    /// What the first failures saw.
    seen: std::sync::Mutex<Vec<String>>,
}

impl Counts {
    fn failed(&self, what: &AtomicU64, why: String) {
        what.fetch_add(1, Ordering::Relaxed);
        let mut seen = self.seen.lock().unwrap();
        if seen.len() < 10 {
            seen.push(why);
        }
    }
}

/// One client: connect, echo a line, close.
fn one(addr: SocketAddr, n: u64, counts: &Counts) {
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            return counts.failed(&counts.refused, format!("connect: {e}"));
        }
        Err(e) => return counts.failed(&counts.unanswered, format!("connect: {e}")),
    };
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let line = format!("ping {n}\n");
    if let Err(e) = s.write_all(line.as_bytes()) {
        return counts.failed(&counts.reset, format!("write: {e}"));
    }
    let mut got = vec![0u8; line.len()];
    match s.read_exact(&mut got) {
        Ok(()) if got == line.as_bytes() => {
            counts.ok.fetch_add(1, Ordering::Relaxed);
        }
        Ok(()) => counts.failed(&counts.unanswered, format!("wrong echo {got:?}")),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
            counts.failed(&counts.reset, format!("read: {e}"))
        }
        Err(e) => counts.failed(&counts.unanswered, format!("read: {e}")),
    }
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn three_restarts_refuse_reset_and_drop_no_client() {
    let bin = example_binary();
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds the examples; run it from the workspace",
        bin.display()
    );
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut first = Command::new(&bin)
        .arg(addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // Every generation prints its line on the stdout it inherits.
    let (tx, rx) = mpsc::channel();
    let out = first.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let pid_of = |line: String| -> u32 {
        assert!(
            line.starts_with(&format!("listening on {addr} (pid ")),
            "{line}"
        );
        line.trim_end_matches(')')
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let mut pids = vec![pid_of(rx.recv_timeout(WAIT).expect("first generation"))];

    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|k| {
            let (counts, stop) = (counts.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = k;
                let end = Instant::now() + Duration::from_secs(60);
                while !stop.load(Ordering::Relaxed) && Instant::now() < end {
                    one(addr, n, &counts);
                    n += 4;
                }
            })
        })
        .collect();

    let t0 = Instant::now();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(400));
        let current = *pids.last().unwrap();
        kill_process(Pid::from_raw(current as i32).unwrap(), Signal::HUP).unwrap();
        let next = pid_of(rx.recv_timeout(WAIT).expect("a successor"));
        assert_ne!(next, current);
        pids.push(next);
    }
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let took = t0.elapsed();
    // The last generation drains and exits on SIGTERM; the others already did.
    kill_process(
        Pid::from_raw(*pids.last().unwrap() as i32).unwrap(),
        Signal::TERM,
    )
    .unwrap();
    let end = Instant::now() + WAIT;
    while pids.iter().any(|&p| alive(p)) && Instant::now() < end {
        let _ = first.try_wait();
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = first.wait();
    let (ok, refused, reset, unanswered) = (
        counts.ok.load(Ordering::Relaxed),
        counts.refused.load(Ordering::Relaxed),
        counts.reset.load(Ordering::Relaxed),
        counts.unanswered.load(Ordering::Relaxed),
    );
    println!(
        "restart: 3 restarts (pids {pids:?}) in {took:.2?}: {ok} connections echoed; \
         refused {refused}, reset {reset}, unanswered {unanswered}"
    );
    println!("failures seen: {:?}", counts.seen.lock().unwrap());
    assert!(pids.iter().all(|&p| !alive(p)), "every generation exited");
    assert_eq!((refused, reset, unanswered), (0, 0, 0));
    assert!(ok > 100, "clients kept connecting: {ok}");
}
