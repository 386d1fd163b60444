//! The floor: the least a handler framework over mio does per connection
//! while keeping the promises hangup makes on the path a peer closes, and
//! nothing else. It is here to measure, not to use: `benches/cost.sh`
//! counts its instructions beside raw mio's and hangup's, so that hangup's
//! cost can be split into what the promises cost (this, minus raw mio) and
//! what hangup's features add on the same path (hangup, minus this).
//!
//! Kept, as hangup keeps them:
//! - a handler per connection, made by a boxed factory, generic over its
//!   type (no `dyn` calls to it);
//! - `on_open`, `on_data`, `on_read_closed` (closing by default) and
//!   `on_close(reason)`, each under `catch_unwind`: a panic closes that
//!   connection with `Panicked`, and `on_close` still comes, exactly once;
//! - a typed reason from what the OS said (`Ok(0)`, ECONNRESET, another
//!   errno), first cause wins;
//! - ids with a generation, checked on every event, so a stale event never
//!   reaches the connection that took the slot;
//! - counts of accepted connections and of closes by reason.
//!
//! Left out (what hangup adds): the `Conn` view over the whole table
//! (`Conn::other`), queued output and its flush, closing first (the close
//! timeout, half-close, lingering), timers (idle, deadline, the handler's
//! own), pausing and the read budget, drains, EMFILE turn-away and
//! `max_connections`, socket options, close records and `TCP_INFO`, TLS and
//! Unix sockets, outbound connects, and the handle's commands.
//!
//! It serves the `Quiet` mode only: a write here would need the queue it
//! leaves out.

use std::cell::Cell;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

use hangup::CloseReason;

use super::{mio_listening, Server, LISTENER};

/// The floor's handler trait: hangup's callbacks, with a smaller view.
pub trait FloorHandler {
    fn on_open(&mut self, conn: &mut FloorConn<'_>) {
        let _ = conn;
    }
    fn on_data(&mut self, conn: &mut FloorConn<'_>, data: &[u8]);
    fn on_read_closed(&mut self, conn: &mut FloorConn<'_>) {
        conn.close()
    }
    fn on_close(&mut self, reason: CloseReason);
}

/// What a callback may do to its connection: close it.
pub struct FloorConn<'a> {
    cause: &'a mut Option<CloseReason>,
}

impl FloorConn<'_> {
    /// Closes the connection after the callback (first cause wins).
    pub fn close(&mut self) {
        self.cause.get_or_insert(CloseReason::Local);
    }
}

struct Slot<H> {
    stream: mio::net::TcpStream,
    handler: H,
    /// Set once the connection must end: the first cause.
    cause: Option<CloseReason>,
    /// The peer's FIN was read.
    peer_fin: bool,
}

/// Bits of the token that hold the slot index; the generation is above.
const INDEX_BITS: u32 = 32;

#[derive(Default)]
struct Counts {
    accepted: u64,
    /// By reason: peer closed, reset, other error, local, panicked.
    closed: [u64; 5],
}

pub struct Floor<H> {
    poll: mio::Poll,
    events: mio::Events,
    listener: mio::net::TcpListener,
    slots: slab::Slab<Slot<H>>,
    gens: Vec<u32>,
    factory: Box<dyn FnMut(SocketAddr) -> H>,
    buf: Vec<u8>,
    addr: SocketAddr,
    counts: Counts,
}

/// Calls `f`; `None` if it panicked.
#[inline]
fn guarded<R>(f: impl FnOnce() -> R) -> Option<R> {
    catch_unwind(AssertUnwindSafe(f)).ok()
}

impl<H: FloorHandler> Floor<H> {
    pub fn new(factory: impl FnMut(SocketAddr) -> H + 'static) -> Floor<H> {
        let (poll, listener, addr) = mio_listening();
        Floor {
            poll,
            events: mio::Events::with_capacity(1024),
            listener,
            slots: slab::Slab::with_capacity(1 << 16),
            gens: Vec::with_capacity(1 << 16),
            factory: Box::new(factory),
            buf: vec![0; 64 * 1024],
            addr,
            counts: Counts::default(),
        }
    }

    pub fn open_count(&self) -> usize {
        self.slots.len()
    }

    pub fn turn(&mut self, timeout: Option<Duration>) {
        let mut events = std::mem::replace(&mut self.events, mio::Events::with_capacity(0));
        self.poll.poll(&mut events, timeout).unwrap();
        let mut accept = false;
        for ev in events.iter() {
            let token = ev.token();
            if token == LISTENER {
                accept = true;
                continue;
            }
            let index = token.0 & ((1 << INDEX_BITS) - 1);
            let gen = (token.0 >> INDEX_BITS) as u32;
            if self.gens.get(index) != Some(&gen) || !self.slots.contains(index) {
                continue; // stale
            }
            self.read(index);
            if self.slots[index].cause.is_some() {
                self.finish(index);
            }
        }
        self.events = events;
        if accept {
            self.accept_all();
        }
    }

    fn accept_all(&mut self) {
        loop {
            let (stream, peer) = match self.listener.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("accept: {e}"),
            };
            let Some(handler) = guarded(|| (self.factory)(peer)) else {
                continue;
            };
            let entry = self.slots.vacant_entry();
            let index = entry.key();
            if index == self.gens.len() {
                self.gens.push(0);
            }
            let token = mio::Token(index | ((self.gens[index] as usize) << INDEX_BITS));
            let slot = entry.insert(Slot {
                stream,
                handler,
                cause: None,
                peer_fin: false,
            });
            if self
                .poll
                .registry()
                .register(&mut slot.stream, token, mio::Interest::READABLE)
                .is_err()
            {
                self.slots.remove(index);
                continue;
            }
            self.counts.accepted += 1;
            let Slot { handler, cause, .. } = &mut *slot;
            let mut conn = FloorConn { cause };
            if guarded(|| handler.on_open(&mut conn)).is_none() {
                *cause = Some(CloseReason::Panicked);
            }
            if slot.cause.is_some() {
                self.finish(index);
            }
        }
    }

    /// Reads until `WouldBlock`, the peer's FIN, or an error.
    fn read(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        while slot.cause.is_none() && !slot.peer_fin {
            match slot.stream.read(&mut self.buf) {
                Ok(0) => {
                    slot.peer_fin = true;
                    let Slot { handler, cause, .. } = &mut *slot;
                    let mut conn = FloorConn { cause };
                    if guarded(|| handler.on_read_closed(&mut conn)).is_none() {
                        *cause = Some(CloseReason::Panicked);
                    }
                    // The peer closed first: that is the reason, whatever
                    // the handler did after (unless it panicked).
                    if matches!(slot.cause, Some(CloseReason::Local)) {
                        slot.cause = Some(CloseReason::PeerClosed);
                    }
                }
                Ok(n) => {
                    let Slot { handler, cause, .. } = &mut *slot;
                    let mut conn = FloorConn { cause };
                    let data = &self.buf[..n];
                    if guarded(|| handler.on_data(&mut conn, data)).is_none() {
                        *cause = Some(CloseReason::Panicked);
                    }
                }
                // One look at the error's kind, as hangup's read path does.
                Err(e) => match e.kind() {
                    io::ErrorKind::WouldBlock => return,
                    io::ErrorKind::Interrupted => {}
                    io::ErrorKind::ConnectionReset => slot.cause = Some(CloseReason::Reset),
                    _ => slot.cause = Some(CloseReason::Error(e)),
                },
            }
        }
    }

    /// Closes the socket, counts, and calls `on_close` exactly once.
    fn finish(&mut self, index: usize) {
        let slot = self.slots.remove(index);
        self.gens[index] = self.gens[index].wrapping_add(1);
        let Slot {
            stream,
            mut handler,
            cause,
            ..
        } = slot;
        drop(stream);
        let reason = cause.unwrap_or(CloseReason::Local);
        let kind = match reason {
            CloseReason::PeerClosed => 0,
            CloseReason::Reset => 1,
            CloseReason::Local => 3,
            CloseReason::Panicked => 4,
            _ => 2,
        };
        self.counts.closed[kind] += 1;
        let _ = guarded(|| handler.on_close(reason));
    }
}

/// The bench's handler for the floor: as `Count`, 8 bytes.
pub struct FloorCount {
    closed: Rc<Cell<usize>>,
}

impl FloorHandler for FloorCount {
    fn on_data(&mut self, _conn: &mut FloorConn<'_>, _data: &[u8]) {}
    fn on_close(&mut self, _reason: CloseReason) {
        self.closed.set(self.closed.get() + 1);
    }
}

pub struct FloorServer {
    floor: Floor<FloorCount>,
    closed: Rc<Cell<usize>>,
}

impl FloorServer {
    pub fn new() -> FloorServer {
        let closed = Rc::new(Cell::new(0));
        let c = closed.clone();
        FloorServer {
            floor: Floor::new(move |_| FloorCount { closed: c.clone() }),
            closed,
        }
    }
}

impl Server for FloorServer {
    fn addr(&self) -> SocketAddr {
        self.floor.addr
    }
    fn accept_until(&mut self, n: usize) {
        while self.floor.open_count() < n {
            self.floor.turn(Some(Duration::from_millis(100)));
        }
    }
    fn run_until_closed(&mut self, total: usize) {
        while self.closed.get() < total {
            self.floor.turn(None);
        }
    }
    fn closed(&self) -> usize {
        self.closed.get()
    }
    fn settle(&mut self) {
        self.floor.turn(Some(Duration::from_millis(10)));
    }
}
