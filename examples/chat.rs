//! chat: lines from one client are broadcast to all the others; joins and
//! leaves are announced, with the reason a client left.
//!
//! Run it, then connect several clients:
//!
//! ```text
//! cargo run --example chat             # listens on 127.0.0.1:7004
//! cargo run --example chat -- 7005     # another port
//! nc 127.0.0.1 7004                    # in two or three terminals
//! cargo run --example chat -- --demo   # self-check: three clients, then exit
//! ```
//!
//! How a handler reaches other connections, with no unsafe and no globals:
//! all handlers share the room through an `Rc<RefCell<Room>>` (the reactor
//! runs on one thread), and write to other connections with
//! [`hangup::Handle::write`], which queues the bytes for the reactor to send.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::Duration;

use hangup::{CloseReason, Conn, ConnId, Handle, Handler, Reactor};

struct Room {
    members: BTreeMap<ConnId, String>,
    handle: Handle,
}

impl Room {
    fn broadcast(&self, from: Option<ConnId>, line: &str) {
        for &id in self.members.keys() {
            if Some(id) != from {
                self.handle.write(id, line.as_bytes().to_vec());
            }
        }
    }
}

struct Member {
    room: Rc<RefCell<Room>>,
    id: Option<ConnId>,
    name: String,
    partial: Vec<u8>,
}

impl Handler for Member {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let id = conn.id();
        self.id = Some(id);
        let mut room = self.room.borrow_mut();
        conn.write(format!("welcome, {}; {} here\n", self.name, room.members.len()).as_bytes());
        room.broadcast(None, &format!("* {} joined\n", self.name));
        room.members.insert(id, self.name.clone());
    }

    fn on_data(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.partial.extend_from_slice(data);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line);
            let msg = format!("{}: {}\n", self.name, text.trim_end());
            self.room.borrow().broadcast(self.id, &msg);
        }
        if self.partial.len() > 4096 {
            self.partial.clear(); // a line too long is dropped
        }
    }

    fn on_close(&mut self, reason: CloseReason) {
        let mut room = self.room.borrow_mut();
        if let Some(id) = self.id {
            room.members.remove(&id);
        }
        room.broadcast(None, &format!("* {} left ({reason})\n", self.name));
    }
}

fn main() -> std::io::Result<()> {
    common::init_log();
    let arg = std::env::args().nth(1);
    let demo = arg.as_deref() == Some("--demo");
    let mut reactor = Reactor::new()?;
    let room = Rc::new(RefCell::new(Room {
        members: BTreeMap::new(),
        handle: reactor.handle(),
    }));
    let port: u16 = match arg.as_deref() {
        Some("--demo") => 0,
        Some(p) => p.parse().expect("usage: chat [PORT | --demo]"),
        None => 7004,
    };
    let addr = reactor.listen(([127, 0, 0, 1], port).into(), move |peer: SocketAddr| {
        Member {
            room: room.clone(),
            id: None,
            name: format!("guest{}", peer.port()),
            partial: Vec::new(),
        }
    })?;
    println!(
        "chat listening on {addr}; try: nc {} {}",
        addr.ip(),
        addr.port()
    );
    if !demo {
        // Ctrl-C or SIGTERM: every open connection closes with `Shutdown`.
        common::shutdown_on_signals(reactor.handle());
        return reactor.run();
    }
    let handle = reactor.handle();
    let clients = std::thread::spawn(move || demo_clients(addr, handle));
    reactor.run()?;
    clients.join().expect("demo thread")
}

/// Three clients: b and c hear a's line; c hears b leave.
fn demo_clients(addr: SocketAddr, handle: Handle) -> std::io::Result<()> {
    let open = || -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let r = BufReader::new(s.try_clone()?);
        Ok((s, r))
    };
    let line = |r: &mut BufReader<TcpStream>| -> std::io::Result<String> {
        let mut l = String::new();
        r.read_line(&mut l)?;
        Ok(l)
    };
    let (mut a, mut ra) = open()?;
    print!("a: {}", line(&mut ra)?);
    let (b, mut rb) = open()?;
    print!("b: {}", line(&mut rb)?);
    print!("a: {}", line(&mut ra)?);
    let (c, mut rc) = open()?;
    print!("c: {}", line(&mut rc)?);
    print!("a: {}", line(&mut ra)?);
    print!("b: {}", line(&mut rb)?);
    a.write_all(b"hello room\n")?;
    let heard_b = line(&mut rb)?;
    let heard_c = line(&mut rc)?;
    print!("b: {heard_b}c: {heard_c}");
    assert!(heard_b.ends_with("hello room\n") && heard_c.ends_with("hello room\n"));
    drop(rb);
    drop(b);
    let left = line(&mut rc)?;
    print!("c: {left}");
    assert!(left.contains("left (closed by peer)"), "{left}");
    drop(c);
    handle.shutdown();
    Ok(())
}
