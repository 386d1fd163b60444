//! restart: an echo server that restarts without dropping a client.
//!
//! ```text
//! cargo run --release --example restart -- 127.0.0.1:7002
//! nc 127.0.0.1 7002                 # type lines; they come back
//! kill -HUP <pid>                   # a new generation takes over
//! ```
//!
//! Each generation prints `listening on ADDR (pid N)` once on stdout. On
//! SIGHUP it starts its successor (the same program), hands it the listening
//! socket over a Unix socket (`SCM_RIGHTS`, with rustix's safe `sendmsg`),
//! waits until the successor listens, and then drains: connections whose
//! last line was answered close at once with a FIN, the others are answered
//! first, and whatever is left after 5 s is closed. Clients that connect meanwhile wait
//! in the kernel's backlog for the successor: none is refused or reset.
//! Ctrl-C or SIGTERM drains and exits. Other messages go to stderr.

mod common;

use std::io::{self, IoSlice, IoSliceMut, Read, Write};
use std::mem::MaybeUninit;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Conn, Handler, Reactor};
use rustix::net::{
    recvmsg, sendmsg, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// Where a successor finds the Unix socket its predecessor waits on.
const HANDOVER_ENV: &str = "HANGUP_RESTART_FROM";
const GRACE: Duration = Duration::from_secs(5);
const HANDOVER_WAIT: Duration = Duration::from_secs(10);

/// Echoes; idle (closable by a drain) once a line was answered and nothing
/// more arrived. A fresh connection is not idle: its first line may be in
/// flight, and closing it then would leave that line unanswered (the race
/// nginx's keep-alive close had).
#[derive(Default)]
struct Echo;

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data);
        conn.set_idle(data.ends_with(b"\n"));
    }
    fn on_close(&mut self, reason: CloseReason) {
        log::debug!("closed: {reason}");
    }
}

fn main() -> io::Result<()> {
    common::init_log();
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7002".into())
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("usage: restart [ADDR] ({e})");
            std::process::exit(2)
        });
    // Signals first: a SIGHUP must never find the default action (exit).
    let hup = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())?;

    let mut reactor: Reactor<Echo> = Reactor::new()?;
    let bound = match std::env::var_os(HANDOVER_ENV) {
        Some(path) => take_over(&mut reactor, path.as_ref())?,
        None => reactor.listen(addr, |_| Echo)?,
    };
    println!("listening on {bound} (pid {})", std::process::id());
    io::stdout().flush()?;

    let mut draining = false;
    while !reactor.is_shutdown() {
        reactor.run_once(Some(Duration::from_millis(50)))?;
        if hup.swap(false, Ordering::SeqCst) && !draining {
            match hand_over(&mut reactor) {
                Ok(()) => {
                    reactor.handle().drain(GRACE);
                    draining = true;
                }
                Err(e) => eprintln!("restart failed, serving on: {e}"),
            }
        }
        if stop.swap(false, Ordering::SeqCst) && !draining {
            reactor.handle().drain(GRACE);
            draining = true;
        }
    }
    eprintln!(
        "pid {} done: {:?}",
        std::process::id(),
        reactor.drain_report()
    );
    Ok(())
}

/// Starts the successor and hands it our listening sockets. On failure our
/// listeners are adopted again and we go on serving.
fn hand_over(reactor: &mut Reactor<Echo>) -> io::Result<()> {
    let path = std::env::temp_dir().join(format!("hangup-restart-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let unix = UnixListener::bind(&path)?;
    unix.set_nonblocking(true)?;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(std::env::args().skip(1))
        .env(HANDOVER_ENV, &path)
        .spawn()?;
    let end = Instant::now() + HANDOVER_WAIT;
    let stream = loop {
        match unix.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < end => {
                // Keep serving while the successor starts.
                reactor.run_once(Some(Duration::from_millis(10)))?;
            }
            Err(e) => {
                let _ = child.kill();
                let _ = std::fs::remove_file(&path);
                return Err(e);
            }
        }
    };
    let _ = std::fs::remove_file(&path);
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(HANDOVER_WAIT))?;
    let listeners = reactor.take_listeners();
    let sent = send_listeners(&stream, &listeners).and_then(|()| {
        let mut ok = [0u8; 2];
        (&stream).read_exact(&mut ok)?;
        if &ok == b"ok" {
            Ok(())
        } else {
            Err(io::Error::other("the successor did not confirm"))
        }
    });
    if let Err(e) = sent {
        for l in listeners {
            reactor.listen_std(l, |_| Echo)?;
        }
        let _ = child.kill();
        return Err(e);
    }
    // The successor holds the sockets now; ours close with `listeners`.
    eprintln!(
        "pid {}: handed over to pid {}",
        std::process::id(),
        child.id()
    );
    Ok(())
}

fn send_listeners(stream: &UnixStream, listeners: &[TcpListener]) -> io::Result<()> {
    let fds: Vec<_> = listeners.iter().map(|l| l.as_fd()).collect();
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(io::Error::other("control buffer too small"));
    }
    let count = [fds.len() as u8];
    sendmsg(
        stream,
        &[IoSlice::new(&count)],
        &mut control,
        SendFlags::empty(),
    )?;
    Ok(())
}

/// The successor's side: receive the listeners and adopt them.
fn take_over(reactor: &mut Reactor<Echo>, path: &std::path::Path) -> io::Result<SocketAddr> {
    let stream = UnixStream::connect(path)?;
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(16))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut count = [0u8; 1];
    recvmsg(
        &stream,
        &mut [IoSliceMut::new(&mut count)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )?;
    let mut bound = None;
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            for fd in fds {
                let l = TcpListener::from(fd);
                bound = Some(reactor.listen_std(l, |_| Echo)?);
            }
        }
    }
    let bound = bound.ok_or_else(|| io::Error::other("no listener received"))?;
    (&stream).write_all(b"ok")?;
    Ok(bound)
}
