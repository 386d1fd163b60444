//! Limits and bad input: max_connections, invalid configs, failed listens.

mod util;

use std::io::{ErrorKind, Read};
use std::time::Duration;

use hangup::{CloseReason, Config, Conn, Handler, Keepalive, Reactor};
use util::*;

struct Nop;
impl Handler for Nop {
    fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    fn on_close(&mut self, _: CloseReason) {}
}

#[test]
fn max_connections_turns_peers_away_without_a_handler() {
    let server = Server::start(Config::default().max_connections(2), Script::default());
    let a = connect(server.addr);
    let b = connect(server.addr);
    server.opened();
    server.opened();
    let mut c = connect(server.addr);
    let mut buf = [0u8; 1];
    // Closed at once: EOF (or a reset, had it sent data).
    assert!(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    drop(a);
    assert_eq!(server.closed().1.name, "PeerClosed");
    // Room again: the next peer is served.
    let _d = connect(server.addr);
    server.opened();
    drop(b);
    assert_eq!(server.closed().1.name, "PeerClosed");
    let reactor = server.stop();
    assert_eq!(reactor.rejected, 1);
    assert_eq!(reactor.closed, 3);
}

#[test]
fn invalid_config_is_invalid_input_naming_the_setting() {
    let cases: Vec<(Config, &str)> = vec![
        (Config::default().max_connections(0), "max_connections"),
        (Config::default().max_write_buffer(0), "max_write_buffer"),
        (
            Config::default().idle_timeout(Some(Duration::ZERO)),
            "idle_timeout",
        ),
        (
            Config::default().user_timeout(Some(Duration::ZERO)),
            "user_timeout",
        ),
        (
            Config::default().keepalive(Some(Keepalive::new(Duration::from_millis(100)))),
            "keepalive idle",
        ),
    ];
    for (config, name) in cases {
        let err = Reactor::<Nop>::with_config(config).expect_err(name);
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{name}");
        assert!(err.to_string().contains(name), "{err} names {name}");
    }
}

#[test]
fn failed_listen_names_the_address() {
    let mut r1 = Reactor::new().unwrap();
    let addr = r1.listen("127.0.0.1:0".parse().unwrap(), |_| Nop).unwrap();
    let mut r2 = Reactor::new().unwrap();
    let err = r2.listen(addr, |_| Nop).expect_err("address in use");
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
    // The OS error stays reachable: EADDRINUSE, told apart from EMFILE.
    #[cfg(target_os = "linux")]
    assert_eq!(hangup::raw_os_error(&err), Some(98), "{err:?}");
    let source = std::error::Error::source(err.get_ref().expect("a payload"));
    assert!(source
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .is_some());
    // An address this machine does not have.
    let err = r2
        .listen("192.0.2.1:80".parse().unwrap(), |_| Nop)
        .expect_err("not local");
    assert!(err.to_string().contains("192.0.2.1:80"), "{err}");
}

/// Sizes past what the allocator or the OS takes are `InvalidInput` naming the
/// setting, never a panic ("capacity overflow") when the reactor is made.
#[test]
fn huge_sizes_are_invalid_input_not_a_panic() {
    for (config, setting) in [
        (
            Config::default()
                .read_buffer_size(usize::MAX)
                .read_budget(usize::MAX),
            "read_buffer_size",
        ),
        (
            Config::default().events_capacity(usize::MAX),
            "events_capacity",
        ),
        (
            Config::default().max_connections(usize::MAX),
            "max_connections",
        ),
    ] {
        let made = std::panic::catch_unwind(|| Reactor::<Nop>::with_config(config));
        let e = made
            .unwrap_or_else(|_| panic!("{setting}: with_config panicked"))
            .expect_err(setting);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains(setting), "{e} names {setting}");
        println!("{e}");
    }
}

/// Linux takes `TCP_USER_TIMEOUT` as a signed int: 2^31 ms and above used to
/// pass validation and then turn every peer away with EINVAL.
#[test]
fn user_timeout_past_i32_max_ms_is_invalid_input() {
    for ms in [1u64 << 31, u64::from(u32::MAX)] {
        let config = Config::default().user_timeout(Some(Duration::from_millis(ms)));
        let e = Reactor::<Nop>::with_config(config).expect_err("rejected");
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("user_timeout"), "{e}");
        assert!(e.to_string().contains("2147483647"), "{e} gives the bound");
    }
    // The largest valid value is served: a peer is accepted and echoed.
    let config = Config::default().user_timeout(Some(Duration::from_millis(i32::MAX as u64)));
    let script = Script {
        echo: true,
        ..Script::default()
    };
    let server = Server::start(config, script);
    let mut c = connect(server.addr);
    send(&mut c, b"hi");
    let mut got = [0u8; 2];
    c.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"hi");
}
