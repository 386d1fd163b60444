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
//! cargo run --example chat -- --unix /tmp/chat.sock
//! nc -U /tmp/chat.sock                 # or: socat - UNIX-CONNECT:/tmp/chat.sock
//! cargo run --example chat -- --unix /tmp/c.sock --demo
//! ```
//!
//! How a handler reaches other connections, with no unsafe and no globals:
//! all handlers share the room through an `Rc<RefCell<Room>>` (the reactor
//! runs on one thread), and write to other connections with
//! [`hangup::Handle::write`], which queues the bytes for the reactor to send.

mod common;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use hangup::{CloseReason, Conn, ConnId, Handle, Handler, Peer, Reactor, UnixListenOptions};

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

const USAGE: &str = "usage: chat [PORT | --unix PATH] [--demo]";

fn main() -> std::io::Result<()> {
    common::init_log();
    let common::Args {
        port, unix, demo, ..
    } = common::Args::parse(7004, USAGE);
    let mut reactor = Reactor::new()?;
    let room = Rc::new(RefCell::new(Room {
        members: BTreeMap::new(),
        handle: reactor.handle(),
    }));
    let mut guests = 0u32;
    let join = move |peer: Peer| {
        let name = match peer {
            Peer::Tcp(addr) => format!("guest{}", addr.port()),
            _ => {
                guests += 1;
                format!("local{guests}")
            }
        };
        Member {
            room: room.clone(),
            id: None,
            name,
            partial: Vec::new(),
        }
    };
    let connect: Box<dyn Fn() -> std::io::Result<Client> + Send> = match unix {
        Some(path) => {
            let opts = UnixListenOptions::new().replace_stale(true);
            reactor.listen_unix_with(&path, opts, join)?;
            println!("chat listening on {}; try: nc -U {0}", path.display());
            Box::new(move || Ok(Client::Unix(UnixStream::connect(&path)?)))
        }
        None => {
            let mut join = join;
            let addr =
                reactor.listen(([127, 0, 0, 1], port).into(), move |a| join(Peer::Tcp(a)))?;
            println!(
                "chat listening on {addr}; try: nc {} {}",
                addr.ip(),
                addr.port()
            );
            Box::new(move || Ok(Client::Tcp(TcpStream::connect(addr)?)))
        }
    };
    if !demo {
        // Ctrl-C or SIGTERM: every open connection closes with `Shutdown`.
        common::shutdown_on_signals(reactor.handle());
        return reactor.run();
    }
    let handle = reactor.handle();
    let clients = std::thread::spawn(move || demo_clients(connect, handle));
    reactor.run()?;
    clients.join().expect("demo thread")
}

/// A demo client, over TCP or a Unix socket.
enum Client {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Client {
    fn try_clone(&self) -> std::io::Result<Client> {
        Ok(match self {
            Client::Tcp(s) => Client::Tcp(s.try_clone()?),
            Client::Unix(s) => Client::Unix(s.try_clone()?),
        })
    }

    fn set_read_timeout(&self, t: Option<Duration>) -> std::io::Result<()> {
        match self {
            Client::Tcp(s) => s.set_read_timeout(t),
            Client::Unix(s) => s.set_read_timeout(t),
        }
    }
}

impl Read for Client {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Client::Tcp(s) => s.read(buf),
            Client::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Client {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Client::Tcp(s) => s.write(buf),
            Client::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Three clients: b and c hear a's line; c hears b leave.
fn demo_clients(
    connect: Box<dyn Fn() -> std::io::Result<Client> + Send>,
    handle: Handle,
) -> std::io::Result<()> {
    let open = || -> std::io::Result<(Client, BufReader<Client>)> {
        let s = connect()?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let r = BufReader::new(s.try_clone()?);
        Ok((s, r))
    };
    let line = |r: &mut BufReader<Client>| -> std::io::Result<String> {
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
