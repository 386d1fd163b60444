//! The hand-off acceptor of [`Balance::HandOff`](super::Balance::HandOff):
//! one thread accepts and gives each connection to the worker with the
//! fewest open.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::handle::{GroupHandle, RUN, STOP_DRAIN};

/// Gives a connection to the worker with the fewest open.
fn hand_off(group: &GroupHandle, stream: std::net::TcpStream, peer: SocketAddr) {
    let target = group
        .workers
        .iter()
        .enumerate()
        .min_by_key(|(_, h)| {
            // Pending first: a worker publishes its open count before it
            // lowers its pending count, so read in the other order the sum
            // can only be too high for a moment, never too low.
            let pending = h.handed_off_pending();
            pending + h.stats().connections
        })
        .map_or(0, |(i, _)| i);
    group.workers[target].hand_off(stream, peer);
}

/// The hand-off acceptor: accepts on its own thread and gives each
/// connection to the worker with the fewest open. On a drain, the clients
/// already in its backlog are handed off before it stops (closing the
/// listener would reset them); the workers' drains end only after that.
pub(super) fn acceptor(l: TcpListener, group: GroupHandle) {
    // accept(2) honours SO_RCVTIMEO on Linux: wake up to see a stop.
    let _ = socket2::SockRef::from(&l).set_read_timeout(Some(Duration::from_millis(50)));
    accept_while(&l, &group, RUN, None);
    if group.acceptor_stop.load(Ordering::SeqCst) == STOP_DRAIN {
        // As a reactor's drain does: no new handshake from now on, the
        // backlog and the handshakes in flight handed off, then the close.
        if let Err(e) = crate::sys::stop_new_handshakes(&socket2::SockRef::from(&l)) {
            log::debug!("hand-off acceptor: stopping new handshakes: {e}");
        }
        let until = Instant::now() + crate::reactor::LISTENER_SETTLE;
        let handed = accept_while(&l, &group, STOP_DRAIN, Some(until));
        log::debug!("hand-off acceptor: {handed} clients handed off as the drain began");
    }
    drop(l);
    for w in group.workers.iter() {
        w.feeder_done();
    }
}

/// Accepts and hands off while the acceptor's stop flag stays `phase` (and
/// `until` has not passed); returns how many it handed off. An accept error
/// other than a time-out is retried while running, and ends a drain's
/// last accepts.
fn accept_while(l: &TcpListener, group: &GroupHandle, phase: u8, until: Option<Instant>) -> u64 {
    let mut handed = 0;
    while group.acceptor_stop.load(Ordering::SeqCst) == phase
        && until.is_none_or(|u| Instant::now() < u)
    {
        match l.accept() {
            Ok((stream, peer)) => {
                hand_off(group, stream, peer);
                handed += 1;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) if phase == RUN => {
                log::warn!("hand-off acceptor: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => {
                log::debug!("hand-off acceptor, taking in its backlog: {e}");
                break;
            }
        }
    }
    handed
}
