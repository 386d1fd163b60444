//! Peers that vanish: no FIN, no reset. Two network namespaces joined by a
//! veth pair; the client's link goes down. Needs root and iproute2; prints
//! why when it skips (and fails instead under HANGUP_REQUIRE_NETNS=1).

mod util;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hangup::{Config, Keepalive};
use util::netns::{enter, skip, NetPair};
use util::*;

enum Expect {
    TimedOutWithin(Duration),
    StillOpenAfter(Duration),
}

/// Connects a client across the veth pair, takes its link down, optionally
/// has the server write (so output is unacknowledged), and checks `expect`.
fn vanish(test: &str, config: Config, write_after_down: bool, expect: Expect) {
    let pair = match NetPair::new() {
        Ok(p) => p,
        Err(why) => return skip(test, &why),
    };
    let sns = pair.server_ns.clone();
    let server = Server::start_with(
        SocketAddr::new(pair.server_ip, 0),
        config,
        Script::default(),
        move || enter(&sns),
    );
    let cns = pair.client_ns.clone();
    let addr = server.addr;
    let client: TcpStream = std::thread::spawn(move || {
        enter(&cns);
        TcpStream::connect(addr).expect("connect across the veth pair")
    })
    .join()
    .unwrap();
    let id = server.opened();
    // Let the handshake's last ACK settle.
    std::thread::sleep(Duration::from_millis(100));
    pair.client_link_down();
    let down = Instant::now();
    if write_after_down {
        server.handle.write(id, vec![b'o'; 4096]);
    }
    match expect {
        Expect::TimedOutWithin(bound) => {
            let (closed, c) = server.closed_within(bound);
            let took = c.at.duration_since(down);
            println!(
                "{test}: {} (errno {:?}) {:.2} s after the link went down",
                c.name,
                c.errno,
                took.as_secs_f64()
            );
            assert_eq!(closed, id);
            assert_eq!(c.name, "TimedOut", "{c:?}");
            assert_eq!(c.errno, Some(110));
        }
        Expect::StillOpenAfter(d) => {
            server.no_close_within(d);
            println!(
                "{test}: still open {:.1} s after the link went down",
                down.elapsed().as_secs_f64()
            );
        }
    }
    drop(client);
    drop(server);
    drop(pair);
}

fn keepalive_1_1_3() -> Keepalive {
    Keepalive::new(Duration::from_secs(1))
        .interval(Duration::from_secs(1))
        .retries(3)
}

#[test]
fn idle_peer_vanishes_keepalive_finds_it() {
    // Worst case idle + interval * retries = 4 s; allow generous slack.
    vanish(
        "idle_peer_vanishes_keepalive_finds_it",
        Config::default().keepalive(Some(keepalive_1_1_3())),
        false,
        Expect::TimedOutWithin(Duration::from_secs(15)),
    );
}

#[test]
fn peer_vanishes_with_unacked_output_user_timeout_finds_it() {
    vanish(
        "peer_vanishes_with_unacked_output_user_timeout_finds_it",
        Config::default().user_timeout(Some(Duration::from_secs(3))),
        true,
        Expect::TimedOutWithin(Duration::from_secs(15)),
    );
}

#[test]
fn peer_vanishes_with_unacked_output_keepalive_alone_does_not() {
    // The kernel sends no keepalive probes while output is unacknowledged:
    // this is why `Config::user_timeout` exists.
    vanish(
        "peer_vanishes_with_unacked_output_keepalive_alone_does_not",
        Config::default().keepalive(Some(keepalive_1_1_3())),
        true,
        Expect::StillOpenAfter(Duration::from_secs(10)),
    );
}
