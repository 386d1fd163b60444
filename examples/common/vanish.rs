//! closewatch's vanished-peer rows: a client in its own network namespace,
//! joined to the server's by a veth pair, whose link goes down. Needs root
//! and iproute2; otherwise the rows say why they were skipped.

use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use hangup::{CloseReason, Config, Conn, ConnId, Handler, Keepalive, Reactor};

use super::{Row, Table};

#[path = "../../tests/util/netns.rs"]
mod netns;

struct Watch {
    tx: std::sync::mpsc::Sender<Result<ConnId, (CloseReason, Instant)>>,
}

impl Handler for Watch {
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = self.tx.send(Ok(conn.id()));
    }
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, reason: CloseReason) {
        let _ = self.tx.send(Err((reason, Instant::now())));
    }
}

pub fn rows(table: &mut Table) {
    let keepalive = Keepalive::new(Duration::from_secs(1))
        .interval(Duration::from_secs(1))
        .retries(3);
    let a = std::thread::spawn(move || {
        scenario(
            "peer vanished, idle; keepalive 1s/1s/3",
            Config::default().keepalive(Some(keepalive)),
            false,
        )
    });
    let b = std::thread::spawn(|| {
        scenario(
            "peer vanished, unacked output; user timeout 3s",
            Config::default().user_timeout(Some(Duration::from_secs(3))),
            true,
        )
    });
    table.push(a.join().expect("vanish row"));
    table.push(b.join().expect("vanish row"));
}

fn scenario(name: &str, config: Config, write_after_down: bool) -> Row {
    let pair = match netns::NetPair::new() {
        Ok(p) => p,
        Err(why) => return Row::skipped(name, &why),
    };
    let (tx, rx) = channel();
    let (atx, arx) = channel();
    let sns = pair.server_ns.clone();
    let at = SocketAddr::new(pair.server_ip, 0);
    let server = std::thread::spawn(move || -> std::io::Result<()> {
        netns::enter(&sns);
        let mut reactor = Reactor::with_config(config)?;
        let addr = reactor.listen(at, move |_| Watch { tx: tx.clone() })?;
        atx.send((addr, reactor.handle())).unwrap();
        reactor.run()
    });
    let (addr, handle) = arx.recv_timeout(Duration::from_secs(10)).expect("reactor");
    let cns = pair.client_ns.clone();
    let client = std::thread::spawn(move || {
        netns::enter(&cns);
        TcpStream::connect(addr)
    })
    .join()
    .unwrap()
    .expect("connect across the veth pair");
    let id = match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(id)) => id,
        _ => panic!("no on_open"),
    };
    std::thread::sleep(Duration::from_millis(100));
    pair.client_link_down();
    let t = Instant::now();
    if write_after_down {
        handle.write(id, vec![b'o'; 4096]);
    }
    let row = match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(Err((reason, at))) => Row {
            scenario: name.into(),
            reason: reason.name().into(),
            errno: reason.raw_os_error().map_or("-".into(), |e| e.to_string()),
            ms: format!("{:.0}", at.duration_since(t).as_secs_f64() * 1e3),
            ok: matches!(reason, CloseReason::TimedOut),
            note: "time from link down".into(),
        },
        _ => Row {
            scenario: name.into(),
            reason: "(none within 30 s)".into(),
            errno: "-".into(),
            ms: "-".into(),
            ok: false,
            note: String::new(),
        },
    };
    handle.shutdown();
    let _ = server.join();
    drop(client);
    drop(pair);
    row
}
