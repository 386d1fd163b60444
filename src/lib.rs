//! **hangup** answers the question every server has to answer: *did my peer
//! go away, and why?*
//!
//! A [`Reactor`] accepts and opens TCP and Unix-domain connections, registers them with
//! `mio` in a slab, reads each readable socket until it is drained, and calls
//! your [`Handler`]. Every handler the reactor takes gets exactly one
//! [`Handler::on_close`], with a [`CloseReason`] that says what the operating
//! system said: an orderly FIN, a reset, a timeout when keepalive or
//! `TCP_USER_TIMEOUT` gave up on a vanished peer, a connect that failed, an
//! idle timeout, a deadline, or a close of your own.
//!
//! # Example
//!
//! ```
//! use std::io::Write;
//! use std::time::Duration;
//! use hangup::{CloseReason, Conn, Handler, Reactor};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) { conn.write(data) }
//!     fn on_close(&mut self, reason: CloseReason) { println!("closed: {reason}") }
//! }
//!
//! let mut reactor = Reactor::new()?;
//! let addr = reactor.listen("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
//!
//! // A client says hello and leaves.
//! let mut client = std::net::TcpStream::connect(addr)?;
//! client.write_all(b"hello")?;
//! drop(client);
//!
//! // Drive the loop until the close is seen (`run()` would loop for ever).
//! while reactor.closed_count() == 0 {
//!     reactor.run_once(Some(Duration::from_millis(100)))?;
//! }
//! assert_eq!(reactor.connection_count(), 0);
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! # How closes are detected
//!
//! Event flags (`EPOLLRDHUP`, `EPOLLHUP`, `EPOLLERR`) are hints; the result of
//! the read (or `SO_ERROR`, when reading is paused) decides.
//!
//! | [`CloseReason`] | what the OS said | platform |
//! |---|---|---|
//! | `PeerClosed` | `read` returned 0 (the peer's FIN), after all its bytes went to `on_data` | all |
//! | `Reset` | `ECONNRESET`, `EPIPE`, `ECONNABORTED` from a read or write; `raw_os_error()` is 104 on Linux, `None` elsewhere | all |
//! | `TimedOut` | `ETIMEDOUT` (keepalive probes or `TCP_USER_TIMEOUT` ran out), or `EHOSTUNREACH`/`ENETUNREACH` as the final error of a dead path; `raw_os_error()` is 110 on Linux, `None` elsewhere | keepalive: all; user timeout: Linux, Android |
//! | `Idle` | nothing arrived within [`Config::idle_timeout`] or [`Conn::set_idle_timeout`] | all |
//! | `Deadline` | a [`Conn::set_deadline`] passed | all |
//! | `Local` | [`Conn::close`], [`Conn::abort`], [`Handle::close`], [`Handle::abort`] | all |
//! | `Backpressure` | queued output passed [`Config::max_write_buffer`] | all |
//! | `FlushTimeout` | [`Conn::close`] could not flush queued output within [`Config::close_timeout`]; the peer got a reset | all |
//! | `Shutdown` | [`Handle::shutdown`], the `Reactor` was dropped, or a drain's grace ran out | all |
//! | `Drained` | a drain ([`Handle::drain`]) closed it because its handler marked it idle | all |
//! | `Panicked` | a callback of the handler panicked (needs `panic = "unwind"`) | all |
//! | `Error(e)` | any other errno, kept in `e` | all |
//! | `ConnectFailed(e)` | an outbound connect failed: `SO_ERROR` or `connect(2)` gave `ECONNREFUSED`, `ETIMEDOUT`, `EHOSTUNREACH`, …; or [`Config::connect_timeout`] passed | all |
//! | `TlsTruncated { at_record_boundary }` | TLS: the peer's FIN came without its close_notify (between records, or inside one) | feature `tls` |
//! | `TlsAlert(a)` | TLS: the peer sent a fatal alert (`a.code`, `a.name()`) | feature `tls` |
//! | `TlsHandshakeFailed(e)` | TLS: the handshake failed on this side (rustls' error inside `e`), or the peer left during it | feature `tls` |
//! | `TlsHandshakeTimeout` | TLS: the handshake did not finish within [`Config::handshake_timeout`] | feature `tls` |
//!
//! Over TLS, `PeerClosed` means the peer's close_notify arrived, after all of
//! its data.
//!
//! Output queued before [`Conn::close`] is never silently lost: either all of
//! it goes out before our FIN, or the peer gets a reset and `on_close` a
//! failure (`FlushTimeout`, or the error a write hit). Whenever a connection
//! ends with output still queued (an idle timeout, a deadline, backpressure,
//! a panic, a shutdown), the peer gets a reset rather than a clean EOF after
//! partial data.
//!
//! The first cause observed wins (a panic always wins): once the peer's FIN
//! was seen, a later close of this side still reports `PeerClosed`. If a peer
//! that never reads trips both `max_write_buffer` and the user timeout,
//! whichever is observed first is reported: `Backpressure` as soon as a write
//! queues past the limit, `TimedOut` if the kernel gives up first.
//!
//! A peer that vanishes (power loss, cable cut) sends nothing: only
//! [`Config::keepalive`] (while idle), [`Config::user_timeout`] (while this
//! side has unacknowledged output) or an idle timeout finds it. See
//! [`Keepalive`] and [`Config::user_timeout`] for the worst-case times.
//!
//! # Outbound connections, proxies, timers
//!
//! [`Reactor::connect`] opens a connection without blocking (one
//! `socket(2)` call, non-blocking from the start): a writable event, then
//! `SO_ERROR`, says how the connect ended (and `getpeername`, where the
//! wake-up alone does not prove it: not on Linux for a writable event); the
//! handler gets [`Handler::on_open`] once it is established, or only
//! `on_close(ConnectFailed(e))`. An error that `connect(2)` returns at once
//! arrives the same way, on the next turn. From inside a callback, a
//! [`Connector`] opens connections with a handler of the reactor's own type,
//! and [`Conn::other`] reaches another connection by [`ConnId`] to write to,
//! close, abort, half-close ([`Conn::shutdown_write`]), pause or resume it.
//! `examples/proxy.rs` is a forwarding proxy built from these, and
//! [`Conn::set_timer`] gives a handler callbacks of its own.
//!
//! # Unix domain sockets
//!
//! [`Reactor::listen_unix`] and [`Reactor::connect_unix`] serve and open Unix
//! domain sockets through the same [`Handler`], and every close rule above
//! holds: EOF is `PeerClosed` after every byte; a peer that closes with our
//! data unread, or a write to a peer that is gone (`EPIPE`; writes use
//! `MSG_NOSIGNAL`, so no `SIGPIPE` reaches a host program that did not
//! ignore it), is `Reset`; never `TimedOut`: keepalive and
//! [`Config::user_timeout`] do not apply and are skipped without an error,
//! so a hung peer process is found by an idle timeout. AF_UNIX has no reset
//! to send, so an abort (or a close with output left unsent) reports its
//! failure here while the peer sees an end of stream.
//!
//! The factory and [`Conn::peer`] give a [`Peer`]; [`Conn::peer_addr`] is
//! `0.0.0.0:0` for a Unix peer, and [`Conn::peer_cred`] reads its
//! credentials when asked. The socket file is never taken from a live
//! listener, replaced only when stale and asked to
//! ([`UnixListenOptions::replace_stale`]), never touched if it is not a
//! socket, and removed when its listener goes only if it is still the file
//! the listener made. With the `activation` feature, `Reactor::listen_activated`
//! serves the listeners systemd passes.
//!
//! The socket kind is one seam (`src/transport.rs`): a connection holds one
//! descriptor and its [`Peer`], and the state machine, dispatch, timers and
//! drain are the same code for both kinds.
//!
//! # Time
//!
//! Every deadline a call arms counts from when the call was made: a
//! connect's [`Config::connect_timeout`], [`Conn::set_timer`],
//! [`Conn::set_deadline`], an idle timeout pushed back by bytes from the
//! peer, [`Conn::close`]'s [`Config::close_timeout`], a drain's grace. The
//! reactor reads the clock (milliseconds, monotonic) at such a call, so a
//! call made after a long callback, or between two turns of
//! [`Reactor::run_once`], is not cut short by time that passed before it.
//! Deciding what is due uses the time read once per turn, which is never
//! ahead of the true time: nothing fires early. A timer fires late by at
//! most the length of the turn it falls due in, plus up to 1 ms of rounding.
//!
//! Callbacks are checked again when they are delivered: an
//! [`on_timer`](Handler::on_timer) due in the same turn as another is not
//! delivered if that other's callback cancelled it, re-armed it for later,
//! or closed its connection, and nothing reaches a connection after its
//! `on_close`.
//!
//! # Counted, and told whole
//!
//! Every reactor keeps [`Counters`] (accepted, connects, turned away by
//! cause, closes by [`CloseKind`] and by [`Side`], output unsent, open,
//! bytes), readable from any thread without a lock ([`Handle::counters`],
//! [`GroupHandle::counters`]). At a close, [`Ctx::record`] in
//! [`Handler::on_close_with`] gives a [`CloseRecord`]: who ended it, in
//! which [`EndPhase`], output unsent; with [`Config::close_records`] the
//! lifetime, bytes, the ordered [`History`] and how long the close took to
//! notice; with [`Config::tcp_info_at_close`] (or
//! [`Conn::capture_tcp_info`]) a [`TcpInfo`] snapshot. [`Config::close_latency`]
//! keeps a [`Latency`] histogram per kind.
//!
//! # Cost
//!
//! With the default [`Config`], a connection's life costs the syscalls a bare
//! mio loop makes: `accept4`, `epoll_ctl(ADD)`, the reads, `close`. There is
//! one read buffer for the whole reactor, idle connections hold no buffer,
//! and closing does not deregister (closing the descriptor does that).
//! Timers live in a hierarchical wheel: arming, re-arming and cancelling are
//! O(1), and an idle timer re-armed on every read costs a store.
//!
//! # Platform support
//!
//! Linux is the platform hangup is tested on (and Android shares its code).
//! It builds wherever mio does; there:
//!
//! - [`Config::user_timeout`] is a **no-op on every platform but Linux and
//!   Android** (macOS, the BSDs, Windows have no `TCP_USER_TIMEOUT`): a peer
//!   that vanishes while this side has output in flight is then found only
//!   by the OS's retransmission limit or an idle timeout;
//! - the keepalive probe count applies where the OS can set it;
//! - `raw_os_error()` of `Reset` and `TimedOut` is `None` (their errno values
//!   differ by platform); `Error` and `ConnectFailed` keep theirs;
//! - reads go on until `WouldBlock` (on Linux a short read is known to drain
//!   the socket, which saves a syscall).
//!
//! # Threading
//!
//! A [`Reactor`] lives on the thread that runs it and is not `Send`: its
//! handlers and factories need not be `Send` either, and callbacks run on
//! that thread, one at a time. A [`Conn`] exists only during a callback. To
//! reach the reactor from elsewhere, use a [`Handle`] (`Clone + Send +
//! Sync`): [`Handle::shutdown`], and `write`/`close`/`abort`/`shutdown_write`
//! by [`ConnId`] (`Copy + Send`), carried out by the reactor's thread in
//! order. A [`Connector`] is `Clone` but not `Send`: it opens connections from
//! inside callbacks of its own reactor. To use several cores, start a
//! [`Group`]: one reactor per thread, with the [`Balance`] you choose.
//!
//! # Stopping on Ctrl-C
//!
//! [`Handle::shutdown`] is safe to call from a signal-waiting thread; the
//! examples do it with the `signal-hook` crate:
//!
//! ```no_run
//! # use hangup::{CloseReason, Conn, Handler, Reactor};
//! # struct Echo;
//! # impl Handler for Echo {
//! #     fn on_data(&mut self, c: &mut Conn<'_>, d: &[u8]) { c.write(d) }
//! #     fn on_close(&mut self, _: CloseReason) {}
//! # }
//! # fn main() -> std::io::Result<()> {
//! let mut reactor = Reactor::new()?;
//! reactor.listen("127.0.0.1:7000".parse().unwrap(), |_| Echo)?;
//! let handle = reactor.handle();
//! let mut signals = signal_hook::iterator::Signals::new([
//!     signal_hook::consts::SIGINT,
//!     signal_hook::consts::SIGTERM,
//! ])?;
//! std::thread::spawn(move || {
//!     if signals.forever().next().is_some() {
//!         handle.shutdown(); // open connections get on_close(Shutdown)
//!     }
//! });
//! reactor.run()
//! # }
//! ```
//!
//! # What hangup does not do (yet)
//!
//! - A [`Group`] does not move a connection between workers once it is
//!   accepted (pinning workers to CPUs needs the `pin` feature).
//! - Passing listeners to another process for a restart (`SCM_RIGHTS`, or
//!   inheritance across `exec`) is up to the program: the reactor hands them
//!   out ([`Reactor::take_listeners`]) and adopts them ([`Reactor::listen_std`]).
//! - No UDP.
//! - TLS (feature `tls`) has no per-listener SNI selection of its own yet
//!   (rustls' `ResolvesServerCert` in the `ServerConfig` does it).
//! - `TCP_INFO` in the close record is read on Linux only.
//! - No DNS: [`Reactor::connect`] takes a `SocketAddr`.
//!
//! # Features
//!
//! - `metrics` (off by default): `hangup::export_metrics` publishes a reactor's
//!   [`Counters`] and [`Latency`] through the `metrics` facade every period,
//!   from a reactor timer (never a facade call per event). It adds the
//!   `metrics` crate.
//! - `tls` (off by default): `Reactor::listen_tls`, `listen_unix_tls`,
//!   `connect_tls`, `connect_unix_tls`, `Connector::connect_tls`,
//!   `Conn::tls`: TLS through the same [`Handler`], on rustls with the
//!   `ring` provider (it builds with a C compiler alone), with typed TLS
//!   endings. Off, nothing of it is compiled.
//! - `activation` (off by default): `hangup::activation` and
//!   `Reactor::listen_activated`, systemd socket activation for TCP and Unix
//!   listeners, and `READY=1`. It adds the `listenfd` and `sd-notify` crates.
//! - `pin` (off by default; Linux): `Group::start_pinned`, a [`Group`] whose
//!   workers are each pinned to a CPU. It adds the `rustix` crate, for a safe
//!   `sched_setaffinity(2)`; nothing else changes.
//!
//! # Minimum Supported Rust Version
//!
//! The library builds with Rust 1.83 or newer. That is the newest of: the
//! newest std API it uses (`io::ErrorKind::HostUnreachable` and
//! `NetworkUnreachable`, stable in 1.83), and its dependencies' own
//! `rust-version` (mio 1.71, log 1.71, socket2 1.70, slab 1.51). Only one
//! toolchain is installed where hangup is built and tested (1.95), so the
//! claim is derived that way, not checked by a build on 1.83.
//!
//! The MSRV covers the library only. Its tests, examples and benches need a
//! newer toolchain: tokio 1.85, criterion's clap 1.85 (edition 2024).
//! Raising the MSRV is not a breaking change.
// One function uses `unsafe`: reading TCP_INFO (src/sys/linux.rs), which no
// safe wrapper offers. Everything else is safe code.
#![deny(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations)]
#![doc(test(attr(deny(warnings))))]

// Modules, from the leaves up; each imports only those on its own line or
// above (the one exception: the `Handler` trait and `Ctx`, its context,
// name each other):
//   id, clock, timer, error, config
//   sys (config); close (sys); transport (close, sys, error)
//   counters (close); latency (counters); record (id, counters)
//   handle (id, counters, latency)
//   conn (all of the above); connect (conn, transport)
//   handler, ctx (conn, connect, handle, ...)
//   reactor; then group, export, activation (reactor)
#[cfg(feature = "activation")]
pub mod activation;
mod clock;
mod close;
mod config;
mod conn;
mod connect;
mod counters;
mod ctx;
mod error;
#[cfg(feature = "metrics")]
mod export;
mod group;
mod handle;
mod handler;
mod id;
mod latency;
mod reactor;
mod record;
mod sys;
mod timer;
mod transport;

pub use close::{CloseReason, TlsAlert};
pub use config::{Config, Keepalive, LingeringClose};
pub use conn::Conn;
pub use connect::Connector;
pub use counters::{CloseKind, Counters, Side};
pub use ctx::{Ctx, TimerId};
pub use error::{raw_os_error, NotTcp};
#[cfg(feature = "metrics")]
pub use export::{export_metrics, publish as publish_metrics};
pub use group::{Balance, Group, GroupConnId, GroupHandle};
pub use handle::{Handle, Stats};
pub use handler::Handler;
pub use id::ConnId;
pub use latency::Latency;
pub use reactor::{DrainReport, Reactor};
pub use record::{CloseDetail, CloseRecord, EndPhase, History, LifecycleEvent, TcpInfo};
pub use transport::{Peer, PeerCred, UnixListenOptions};
