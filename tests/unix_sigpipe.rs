//! No SIGPIPE reaches a host program that did not ignore it: this test
//! process puts SIGPIPE back to its default action (terminate), as a C host
//! embedding a Rust library would have it, then writes to a Unix-domain
//! peer that is gone, and to a TCP one. It must live to report `Reset`.
//! (A test binary of its own: the signal disposition is per process.)

mod util;

use std::sync::mpsc::channel;
use std::time::Duration;

use hangup::{CloseReason, Conn, Handler, Reactor};
use util::*;

/// Pauses reading at once (so the peer's EOF is not seen), then writes
/// from a timer once the peer is gone.
struct LateWriter {
    tx: std::sync::mpsc::Sender<CloseReason>,
    opened: std::sync::mpsc::Sender<()>,
}

impl Handler for LateWriter {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        conn.pause_reading();
        conn.set_timer(Duration::from_millis(200));
        let _ = self.opened.send(());
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        conn.write(b"is anybody there?");
        conn.write(&[0u8; 4096]);
    }
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(reason);
    }
}

#[test]
fn writing_to_a_gone_peer_raises_no_sigpipe() {
    init();
    // SAFETY: signal(2) with SIG_DFL installs no handler code; nothing else
    // in this process depends on SIGPIPE's disposition.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let dir = TempDir::new("sigpipe");
    let path = dir.join("s.sock");
    let (tx, rx) = channel();
    let (opened_tx, opened) = channel();
    let (addr_tx, addr_rx) = channel();
    let p = path.clone();
    let (htx, hrx) = channel();
    let t = std::thread::spawn(move || {
        let mut r = Reactor::new().unwrap();
        let (tx2, o2) = (tx.clone(), opened_tx.clone());
        r.listen_unix(&p, move |_| LateWriter {
            tx: tx2.clone(),
            opened: o2.clone(),
        })
        .unwrap();
        let addr = r
            .listen("127.0.0.1:0".parse().unwrap(), move |_| LateWriter {
                tx: tx.clone(),
                opened: opened_tx.clone(),
            })
            .unwrap();
        addr_tx.send(addr).unwrap();
        htx.send(r.handle()).unwrap();
        r.run().unwrap();
    });
    let handle = hrx.recv_timeout(WAIT).unwrap();
    let addr = addr_rx.recv_timeout(WAIT).unwrap();

    let c = connect_unix(&path);
    opened.recv_timeout(WAIT).unwrap();
    drop(c);
    let reason = rx.recv_timeout(WAIT).expect("alive to hear the close");
    assert!(matches!(reason, CloseReason::Reset), "unix: {reason}");

    // TCP: the peer's FIN, then our write draws its RST, then EPIPE.
    let c = connect(addr);
    opened.recv_timeout(WAIT).unwrap();
    drop(c);
    let reason = rx.recv_timeout(WAIT).expect("alive to hear the close");
    assert!(matches!(reason, CloseReason::Reset), "tcp: {reason}");

    handle.shutdown();
    t.join().unwrap();
}
