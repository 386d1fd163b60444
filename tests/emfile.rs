//! Out of descriptors at accept (EMFILE): peers are turned away, not left
//! hanging, the loop does not spin, and service resumes when descriptors
//! come back. Its own test binary: it exhausts the whole process's descriptors.

mod util;

use std::fs::File;
use std::io::Read;
use std::time::Duration;

use hangup::Config;
use util::*;

#[test]
fn out_of_descriptors_turns_peers_away_then_recovers() {
    // Whatever this machine allows, exhaust a small table: fast and bounded.
    lower_nofile(1024);
    let script = Script {
        echo: true,
        ..Script::default()
    };
    let server = Server::start(Config::default(), script);
    // Fill the descriptor table.
    let mut hoard = Vec::new();
    loop {
        match File::open("/dev/null") {
            Ok(f) => hoard.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(24), "EMFILE: {e}");
                break;
            }
        }
        assert!(hoard.len() < 1024, "RLIMIT_NOFILE was not lowered");
    }
    // One descriptor for the client's socket; none for the server's accept.
    hoard.pop();
    let mut turned_away = std::net::TcpStream::connect(server.addr).expect("connect");
    turned_away
        .set_read_timeout(Some(WAIT))
        .expect("set timeout");
    let mut b = [0u8; 1];
    match turned_away.read(&mut b) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("peer should be turned away, got {other:?}"),
    }
    drop(turned_away);
    // Descriptors come back: service resumes.
    hoard.truncate(hoard.len().saturating_sub(100));
    let mut client = connect(server.addr);
    send(&mut client, b"ping");
    let mut got = [0u8; 4];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    drop(hoard);
    drop(client);
    loop {
        match server.next() {
            Ev::Close(_, c) => {
                assert_eq!(c.name, "PeerClosed");
                break;
            }
            Ev::Open(..) | Ev::Data(..) | Ev::ReadClosed(..) | Ev::Drained(..) => {}
        }
    }
    server.no_close_within(Duration::from_millis(100));
    let stats = server.stop();
    assert_eq!(stats.rejected, 1, "the one peer was turned away");
    assert_eq!(stats.closed, 1, "no handler was made for it");
}
