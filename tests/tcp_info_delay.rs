//! TCP_INFO in the close record across a link with a known delay: two
//! network namespaces joined through TUN devices and a forwarder in this
//! process that holds every packet back 25 ms (this kernel has no netem),
//! so the round trip is 50 ms. The record's rtt must say so.

mod util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{channel, Sender};
use std::time::Duration;

use hangup::{CloseReason, CloseRecord, Config, Conn, Ctx, Handler, Reactor};

const DELAY: Duration = Duration::from_millis(25);

struct Echo {
    tx: Sender<CloseRecord>,
}

impl Handler for Echo {
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data)
    }
    fn on_close(&mut self, _: CloseReason) {}
    fn on_close_with(&mut self, _: CloseReason, ctx: &mut Ctx<'_, Self>) {
        let _ = self.tx.send(*ctx.record().expect("a record"));
        ctx.handle().shutdown();
    }
}

#[test]
fn tcp_info_rtt_across_a_delayed_link_is_within_bounds_of_the_delay() {
    util::init();
    let link = match util::tun::DelayLink::new(DELAY) {
        Ok(l) => l,
        Err(why) => return util::netns::skip("tcp_info_rtt_across_a_delayed_link", &why),
    };
    let (rec_tx, rec_rx) = channel();
    let (addr_tx, addr_rx) = channel::<SocketAddr>();
    let server_ns = link.server_ns.clone();
    let server = std::thread::spawn(move || {
        util::netns::enter(&server_ns);
        let config = Config::default().tcp_info_at_close(true);
        let mut r = Reactor::with_config(config).unwrap();
        let addr = r
            .listen("10.78.0.1:0".parse().unwrap(), move |_| Echo {
                tx: rec_tx.clone(),
            })
            .unwrap();
        addr_tx.send(addr).unwrap();
        r.run().unwrap();
    });
    let addr = addr_rx.recv_timeout(util::WAIT).unwrap();
    let client_ns = link.client_ns.clone();
    let client = std::thread::spawn(move || -> Duration {
        util::netns::enter(&client_ns);
        let mut s = TcpStream::connect_timeout(&addr, util::WAIT).expect("connect across the link");
        s.set_read_timeout(Some(util::WAIT)).unwrap();
        let t = std::time::Instant::now();
        for _ in 0..10 {
            s.write_all(b"ping").unwrap();
            let mut b = [0u8; 4];
            s.read_exact(&mut b).unwrap();
        }
        let per_exchange = t.elapsed() / 10;
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        per_exchange
    });
    let exchange = client.join().unwrap();
    let record = rec_rx.recv_timeout(util::WAIT).expect("a close");
    server.join().unwrap();
    let info = record.tcp_info.expect("asked for, on Linux");
    println!(
        "delay {DELAY:?} each way: an exchange took {exchange:?}; TCP_INFO rtt {:?} (rttvar {:?}); {record}",
        info.rtt, info.rttvar
    );
    let round_trip = DELAY * 2;
    assert!(
        info.rtt >= round_trip * 3 / 4 && info.rtt <= round_trip * 4,
        "rtt {:?} for a {round_trip:?} round trip",
        info.rtt
    );
}
