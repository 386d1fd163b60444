//! [`Config`]: the reactor's settings, and their validation. The types of
//! two of them, [`Keepalive`] and [`LingeringClose`], have files of their own.

use std::io;
use std::time::Duration;

mod keepalive;
mod lingering;

pub use keepalive::Keepalive;
pub use lingering::LingeringClose;

/// The reactor's settings. `Default` plus chained setters, each taking and
/// returning `Self`; [`Reactor::with_config`](crate::Reactor::with_config)
/// validates them.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use hangup::{Config, Keepalive};
///
/// let config = Config::default()
///     .max_connections(10_000)
///     .idle_timeout(Some(Duration::from_secs(60)))
///     .keepalive(Some(Keepalive::new(Duration::from_secs(10)).interval(Duration::from_secs(2)).retries(3)))
///     .user_timeout(Some(Duration::from_secs(20)));
/// assert_eq!(config.get_max_connections(), 10_000);
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) max_connections: usize,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_write_buffer: usize,
    pub(crate) keepalive: Option<Keepalive>,
    pub(crate) user_timeout: Option<Duration>,
    pub(crate) read_buffer_size: usize,
    pub(crate) read_budget: usize,
    pub(crate) close_timeout: Duration,
    pub(crate) events_capacity: usize,
    pub(crate) nodelay: bool,
    pub(crate) listen_backlog: u32,
    pub(crate) connect_timeout: Option<Duration>,
    pub(crate) handshake_timeout: Option<Duration>,
    pub(crate) close_records: bool,
    pub(crate) close_latency: bool,
    pub(crate) tcp_info_at_close: bool,
    pub(crate) lingering_close: LingeringClose,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 16_384,
            idle_timeout: None,
            max_write_buffer: 4 * 1024 * 1024,
            keepalive: None,
            user_timeout: None,
            read_buffer_size: 64 * 1024,
            read_budget: 256 * 1024,
            close_timeout: Duration::from_secs(10),
            events_capacity: 1024,
            nodelay: false,
            listen_backlog: 1024,
            connect_timeout: Some(Duration::from_secs(30)),
            handshake_timeout: Some(Duration::from_secs(10)),
            close_records: false,
            close_latency: false,
            tcp_info_at_close: false,
            lingering_close: LingeringClose::Always,
        }
    }
}

impl Config {
    /// Keep per connection what the close record's
    /// [`detail`](crate::CloseRecord::detail) tells: lifetime, bytes each
    /// way, the history of lifecycle events, how long the close took to
    /// notice, how late a timer fired. Default: off. On, it costs 40 bytes
    /// per connection slot and a clock read per turn and per close; off,
    /// nothing. The rest of the record (who, phase, unsent) is always there.
    pub fn close_records(mut self, on: bool) -> Self {
        self.close_records = on;
        self
    }

    /// Measure close-detection latency into a histogram per
    /// [`CloseKind`](crate::CloseKind) ([`Handle::latency`](crate::Handle::latency)):
    /// for a close seen from a socket event, from the poll's return to
    /// `on_close`; for a close a timer made, how late it fired. Turns
    /// [`close_records`](Config::close_records) on too (the same
    /// bookkeeping). Default: off; off, no clock is read on the close path.
    pub fn close_latency(mut self, on: bool) -> Self {
        self.close_latency = on;
        self
    }

    /// Take a `TCP_INFO` snapshot of every connection just before its
    /// descriptor closes, for its [`CloseRecord`](crate::CloseRecord)
    /// (per connection: [`Conn::capture_tcp_info`](crate::Conn::capture_tcp_info)).
    /// One `getsockopt` per close. Default: off. Linux only; TCP only (a
    /// Unix-domain connection's record has none).
    pub fn tcp_info_at_close(mut self, on: bool) -> Self {
        self.tcp_info_at_close = on;
        self
    }

    /// Whether [`tcp_info_at_close`](Config::tcp_info_at_close) is on.
    pub fn get_tcp_info_at_close(&self) -> bool {
        self.tcp_info_at_close
    }

    /// Whether [`close_latency`](Config::close_latency) is on.
    pub fn get_close_latency(&self) -> bool {
        self.close_latency
    }

    /// Whether [`close_records`](Config::close_records) is on.
    pub fn get_close_records(&self) -> bool {
        self.close_records
    }

    /// The most connections open at once; `n >= 1`. Default: 16,384.
    ///
    /// Peers accepted past it are closed at once, without a handler being
    /// made, and counted in [`Reactor::rejected_count`](crate::Reactor::rejected_count).
    /// The reactor reserves this many connection slots up front (at most
    /// 65,536): virtual memory that becomes resident only as slots are used,
    /// so a burst of connections never reallocates the table. At most
    /// [`Config::MAX_CONNECTIONS`].
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = n;
        self
    }

    /// Close a connection with [`CloseReason::Idle`](crate::CloseReason::Idle)
    /// when nothing arrived from the peer for this long. Default: `None`.
    /// Nonzero, at most `u32::MAX` ms (49.7 days).
    ///
    /// Any byte from the peer re-arms the timer; writing does not. A handler
    /// can override it per connection with
    /// [`Conn::set_idle_timeout`](crate::Conn::set_idle_timeout).
    /// Timers have millisecond resolution and never fire early; worst case,
    /// the close comes `t` plus about 2 ms after the last byte (measured:
    /// 300.6 ms for 300 ms). Re-arming on every read costs a store, no
    /// syscall and no allocation.
    ///
    /// # Notes
    ///
    /// With `None` and no [`keepalive`](Config::keepalive), a peer that
    /// vanishes without a FIN or a reset while this side only reads is never
    /// detected: the connection looks open forever.
    pub fn idle_timeout(mut self, t: Option<Duration>) -> Self {
        self.idle_timeout = t;
        self
    }

    /// The most bytes of output queued for one connection; past it the
    /// connection closes with [`CloseReason::Backpressure`](crate::CloseReason::Backpressure).
    /// `bytes >= 1`. Default: 4 MiB.
    ///
    /// Only output the kernel would not take counts; a peer that reads keeps
    /// this near zero. At most `isize::MAX`.
    pub fn max_write_buffer(mut self, bytes: usize) -> Self {
        self.max_write_buffer = bytes;
        self
    }

    /// TCP keepalive on every connection, accepted and outbound. Default:
    /// `None` (off).
    ///
    /// A peer that vanished while the connection was idle is reported as
    /// [`CloseReason::TimedOut`](crate::CloseReason::TimedOut) about
    /// `idle + interval * retries` after it went silent (the
    /// [`Keepalive::worst_case`]; measured: 3.99 s for 1 s / 1 s / 3).
    ///
    /// # Notes
    ///
    /// The kernel sends keepalive probes only while nothing is in flight. If
    /// this side has unacknowledged output when the peer vanishes, the kernel
    /// retransmits instead, and keepalive never starts: the connection is found
    /// dead only when retransmissions give up (about 15 minutes on Linux with
    /// the default `tcp_retries2`). Set [`user_timeout`](Config::user_timeout)
    /// to bound that case.
    ///
    /// TCP only: Unix-domain connections have no keepalive, and are left
    /// alone (no error); an idle timeout finds a hung local peer.
    pub fn keepalive(mut self, k: Option<Keepalive>) -> Self {
        self.keepalive = k;
        self
    }

    /// `TCP_USER_TIMEOUT` on every connection (accepted and outbound), where the OS has it
    /// (Linux, Android; a no-op elsewhere). Default: `None`.
    ///
    /// When output stays unacknowledged for this long, the kernel gives up and
    /// the connection closes with [`CloseReason::TimedOut`](crate::CloseReason::TimedOut).
    /// This is what finds a peer that vanished while this side was sending,
    /// which keepalive cannot. With keepalive also set, Linux uses it to bound
    /// the probing too. Must be nonzero, whole milliseconds, at most
    /// `i32::MAX` ms (2,147,483,647 ms, about 24.8 days: Linux takes a signed
    /// int and rejects more with EINVAL).
    ///
    /// # Notes
    ///
    /// Worst case: the kernel checks the timeout when a retransmission (or
    /// probe) timer fires, so detection comes up to one backoff interval
    /// after `t`. Measured in hangup's namespace test (peer's link down, 4 KiB
    /// unacknowledged): 4.4 s for `t` = 3 s. Without it, Linux gives up only
    /// after `tcp_retries2` retransmissions, about 15 minutes.
    ///
    /// TCP only: Unix-domain connections are left alone (no error).
    pub fn user_timeout(mut self, t: Option<Duration>) -> Self {
        self.user_timeout = t;
        self
    }

    /// Size of the reactor's one read buffer, shared by all connections.
    /// 64 bytes to [`Config::MAX_READ_BUFFER`]. Default: 64 KiB.
    ///
    /// Allocated once, when the reactor is made: an allocation that fails is
    /// an error from [`Reactor::with_config`](crate::Reactor::with_config),
    /// not an abort.
    pub fn read_buffer_size(mut self, bytes: usize) -> Self {
        self.read_buffer_size = bytes;
        self
    }

    /// The most bytes read from one connection in one turn of the loop before
    /// the others get theirs (fairness). At least the read buffer size.
    /// Default: 256 KiB.
    pub fn read_budget(mut self, bytes: usize) -> Self {
        self.read_budget = bytes;
        self
    }

    /// How long a graceful [`Conn::close`](crate::Conn::close) may take to
    /// flush its output and see the peer's FIN before the socket is closed
    /// anyway. Nonzero. Default: 10 s.
    pub fn close_timeout(mut self, t: Duration) -> Self {
        self.close_timeout = t;
        self
    }

    /// Whether a graceful close waits for the peer's FIN
    /// ([`LingeringClose`]). Default: [`LingeringClose::Always`], which never
    /// lets a reset destroy output. [`LingeringClose::WhenUnread`] skips
    /// the wait when the last read found the socket empty: fewer syscalls
    /// and an earlier free descriptor when the server closes first, at the
    /// risk its docs describe.
    ///
    /// # Examples
    ///
    /// ```
    /// use hangup::{Config, LingeringClose};
    ///
    /// // An HTTP/1.0-style server: one request, one reply, then close.
    /// let config = Config::default().lingering_close(LingeringClose::WhenUnread);
    /// assert_eq!(config.get_lingering_close(), LingeringClose::WhenUnread);
    /// ```
    pub fn lingering_close(mut self, policy: LingeringClose) -> Self {
        self.lingering_close = policy;
        self
    }

    /// How many readiness events one poll may return. 1 to
    /// [`Config::MAX_EVENTS`]. Default: 1024.
    pub fn events_capacity(mut self, n: usize) -> Self {
        self.events_capacity = n;
        self
    }

    /// Set `TCP_NODELAY` on accepted connections. Default: `false` (one
    /// syscall fewer per connection). TCP only.
    pub fn nodelay(mut self, on: bool) -> Self {
        self.nodelay = on;
        self
    }

    /// The listen backlog of sockets made by
    /// [`Reactor::listen`](crate::Reactor::listen); `n >= 1`. Default: 1024
    /// (as mio's `TcpListener::bind`); at most `i32::MAX`. The kernel caps it at
    /// `net.core.somaxconn`.
    pub fn listen_backlog(mut self, n: u32) -> Self {
        self.listen_backlog = n;
        self
    }

    /// How long an outbound connect ([`Reactor::connect`](crate::Reactor::connect),
    /// [`Connector::connect`](crate::Connector::connect)) may take before it
    /// fails with [`CloseReason::ConnectFailed`](crate::CloseReason::ConnectFailed)
    /// and `ErrorKind::TimedOut`. Default: 30 s (as Netty; Envoy uses 5 s).
    /// Nonzero, at most `u32::MAX` ms.
    ///
    /// # Notes
    ///
    /// With `None`, a peer that never answers our SYN is given up on only
    /// when the kernel's SYN retries run out: about 127 s on Linux with the
    /// default `net.ipv4.tcp_syn_retries = 6`. A timeout longer than that
    /// never fires.
    pub fn connect_timeout(mut self, t: Option<Duration>) -> Self {
        self.connect_timeout = t;
        self
    }

    /// How long a TLS handshake may take, from the accept (or the TCP
    /// connect) to the handshake's end, before the connection ends with
    /// [`CloseReason::TlsHandshakeTimeout`](crate::CloseReason::TlsHandshakeTimeout).
    /// Default: 10 s (as Netty). It is what stops a peer that opens a TLS
    /// connection and then trickles its handshake, or sends nothing. Nonzero,
    /// at most `u32::MAX` ms; `None`: no limit. Plain connections ignore it.
    pub fn handshake_timeout(mut self, t: Option<Duration>) -> Self {
        self.handshake_timeout = t;
        self
    }

    /// The configured [`handshake_timeout`](Config::handshake_timeout).
    pub fn get_handshake_timeout(&self) -> Option<Duration> {
        self.handshake_timeout
    }

    /// The configured [`max_connections`](Config::max_connections).
    pub fn get_max_connections(&self) -> usize {
        self.max_connections
    }

    /// The configured [`idle_timeout`](Config::idle_timeout).
    pub fn get_idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The configured [`max_write_buffer`](Config::max_write_buffer).
    pub fn get_max_write_buffer(&self) -> usize {
        self.max_write_buffer
    }

    /// The configured [`keepalive`](Config::keepalive).
    pub fn get_keepalive(&self) -> Option<&Keepalive> {
        self.keepalive.as_ref()
    }

    /// The configured [`user_timeout`](Config::user_timeout).
    pub fn get_user_timeout(&self) -> Option<Duration> {
        self.user_timeout
    }

    /// The configured [`read_buffer_size`](Config::read_buffer_size).
    pub fn get_read_buffer_size(&self) -> usize {
        self.read_buffer_size
    }

    /// The configured [`read_budget`](Config::read_budget).
    pub fn get_read_budget(&self) -> usize {
        self.read_budget
    }

    /// The configured [`lingering_close`](Config::lingering_close).
    pub fn get_lingering_close(&self) -> LingeringClose {
        self.lingering_close
    }

    /// The configured [`close_timeout`](Config::close_timeout).
    pub fn get_close_timeout(&self) -> Duration {
        self.close_timeout
    }

    /// The configured [`events_capacity`](Config::events_capacity).
    pub fn get_events_capacity(&self) -> usize {
        self.events_capacity
    }

    /// The configured [`nodelay`](Config::nodelay).
    pub fn get_nodelay(&self) -> bool {
        self.nodelay
    }

    /// The configured [`listen_backlog`](Config::listen_backlog).
    pub fn get_listen_backlog(&self) -> u32 {
        self.listen_backlog
    }

    /// The configured [`connect_timeout`](Config::connect_timeout).
    pub fn get_connect_timeout(&self) -> Option<Duration> {
        self.connect_timeout
    }

    /// Checks every setting against what the reactor, the allocator and the
    /// OS accept.
    ///
    /// # Errors
    ///
    /// `io::ErrorKind::InvalidInput`, with a message naming the setting and
    /// its bound, when:
    /// - `max_connections` is 0 or past [`MAX_CONNECTIONS`](Config::MAX_CONNECTIONS)
    ///   (what a connection id can index);
    /// - `max_write_buffer` is 0 or past `isize::MAX` (the most a `Vec` holds);
    /// - `events_capacity` is 0 or past [`MAX_EVENTS`](Config::MAX_EVENTS)
    ///   (`epoll_wait` rejects more);
    /// - `listen_backlog` is 0 or past `i32::MAX`;
    /// - `read_buffer_size` is below 64 or past [`MAX_READ_BUFFER`](Config::MAX_READ_BUFFER)
    ///   (the most one `read` returns on Linux), or `read_budget` is below it;
    /// - `idle_timeout` is `Some(0)` or past `u32::MAX` ms (49.7 days);
    /// - `close_timeout` is 0;
    /// - `connect_timeout` is `Some(0)` or past `u32::MAX` ms;
    /// - `handshake_timeout` is `Some(0)` or past `u32::MAX` ms;
    /// - a keepalive time is below one second, not whole seconds, or past the
    ///   kernel's maximum (32,767 s), or `retries` is 0 or past 127;
    /// - `user_timeout` is zero, not whole milliseconds, or past `i32::MAX` ms
    ///   (Linux takes a signed int: about 24.8 days).
    pub fn validate(&self) -> io::Result<()> {
        if self.max_connections == 0 || self.max_connections > Self::MAX_CONNECTIONS {
            return Err(invalid(&format!(
                "max_connections must be 1 to {}",
                Self::MAX_CONNECTIONS
            )));
        }
        if self.max_write_buffer == 0 || self.max_write_buffer > isize::MAX as usize {
            return Err(invalid(&format!(
                "max_write_buffer must be 1 to {} bytes",
                isize::MAX
            )));
        }
        if self.listen_backlog == 0 || self.listen_backlog > i32::MAX as u32 {
            return Err(invalid(&format!(
                "listen_backlog must be 1 to {}",
                i32::MAX
            )));
        }
        if self.events_capacity == 0 || self.events_capacity > Self::MAX_EVENTS {
            return Err(invalid(&format!(
                "events_capacity must be 1 to {}",
                Self::MAX_EVENTS
            )));
        }
        if self.read_buffer_size < 64 || self.read_buffer_size > Self::MAX_READ_BUFFER {
            return Err(invalid(&format!(
                "read_buffer_size must be 64 to {} bytes",
                Self::MAX_READ_BUFFER
            )));
        }
        if self.read_budget < self.read_buffer_size {
            return Err(invalid(&format!(
                "read_budget must be at least read_buffer_size ({} bytes)",
                self.read_buffer_size
            )));
        }
        if let Some(t) = self.idle_timeout {
            if t.is_zero() {
                return Err(invalid(
                    "idle_timeout must be nonzero (use None to disable it)",
                ));
            }
            if t.as_millis() > u128::from(u32::MAX) {
                return Err(invalid(&format!(
                    "idle_timeout must be at most {} ms",
                    u32::MAX
                )));
            }
        }
        if let Some(t) = self.connect_timeout {
            if t.is_zero() || t.as_millis() > u128::from(u32::MAX) {
                return Err(invalid(&format!(
                    "connect_timeout must be 1 to {} ms (use None to leave it to the kernel)",
                    u32::MAX
                )));
            }
        }
        if let Some(t) = self.handshake_timeout {
            if t.is_zero() || t.as_millis() > u128::from(u32::MAX) {
                return Err(invalid(&format!(
                    "handshake_timeout must be 1 to {} ms (use None for no limit)",
                    u32::MAX
                )));
            }
        }
        if self.close_timeout.is_zero() {
            return Err(invalid("close_timeout must be nonzero"));
        }
        if let Some(k) = &self.keepalive {
            k.validate()?;
        }
        if let Some(t) = self.user_timeout {
            validate_user_timeout(t)?;
        }
        Ok(())
    }

    /// The largest [`max_connections`](Config::max_connections): what a
    /// [`ConnId`](crate::ConnId) can index on this platform.
    pub const MAX_CONNECTIONS: usize = crate::id::MAX_SLOTS;

    /// The largest [`events_capacity`](Config::events_capacity): Linux's
    /// `epoll_wait` rejects more than `INT_MAX / sizeof(struct epoll_event)`.
    pub const MAX_EVENTS: usize = i32::MAX as usize / 12;

    /// The largest [`read_buffer_size`](Config::read_buffer_size): one `read`
    /// on Linux returns at most `0x7ffff000` bytes, so a larger buffer is
    /// never filled.
    pub const MAX_READ_BUFFER: usize = 0x7fff_f000;
}

pub(crate) fn validate_user_timeout(t: Duration) -> io::Result<()> {
    if t.is_zero() {
        return Err(invalid(
            "user_timeout must be nonzero (zero means the kernel default; use None)",
        ));
    }
    if t.subsec_nanos() % 1_000_000 != 0 {
        return Err(invalid("user_timeout must be whole milliseconds"));
    }
    if t.as_millis() > i32::MAX as u128 {
        return Err(invalid(&format!(
            "user_timeout must be at most {} ms (Linux takes a signed int)",
            i32::MAX
        )));
    }
    Ok(())
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("invalid Config: {msg}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejects(c: Config, setting: &str) {
        let e = c.validate().expect_err(setting);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(setting), "{e} should name {setting}");
    }

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn invalid_settings_are_named() {
        let d = Config::default;
        let s = Duration::from_secs;
        rejects(d().max_connections(0), "max_connections");
        rejects(d().max_write_buffer(0), "max_write_buffer");
        rejects(d().events_capacity(0), "events_capacity");
        rejects(d().listen_backlog(0), "listen_backlog");
        rejects(d().read_buffer_size(10), "read_buffer_size");
        rejects(d().read_budget(100), "read_budget");
        rejects(d().idle_timeout(Some(Duration::ZERO)), "idle_timeout");
        rejects(d().close_timeout(Duration::ZERO), "close_timeout");
        rejects(d().user_timeout(Some(Duration::ZERO)), "user_timeout");
        rejects(
            d().user_timeout(Some(Duration::from_micros(1500))),
            "user_timeout",
        );
        rejects(d().user_timeout(Some(s(5_000_000))), "user_timeout");
        rejects(
            d().user_timeout(Some(Duration::from_millis(1 << 31))),
            "user_timeout must be at most 2147483647 ms",
        );
        rejects(
            d().idle_timeout(Some(Duration::from_millis(1 << 32))),
            "idle_timeout must be at most 4294967295 ms",
        );
        rejects(
            d().read_buffer_size(Config::MAX_READ_BUFFER + 1),
            "read_buffer_size must be 64 to 2147479552 bytes",
        );
        rejects(
            d().events_capacity(Config::MAX_EVENTS + 1),
            "events_capacity must be 1 to 178956970",
        );
        rejects(
            d().max_connections(usize::MAX),
            "max_connections must be 1 to",
        );
        d().user_timeout(Some(Duration::from_millis(i32::MAX as u64)))
            .validate()
            .unwrap();
        rejects(
            d().keepalive(Some(Keepalive::new(Duration::from_millis(500)))),
            "keepalive idle",
        );
        rejects(
            d().keepalive(Some(Keepalive::new(Duration::from_millis(1500)))),
            "keepalive idle",
        );
        rejects(
            d().keepalive(Some(Keepalive::new(s(40_000)))),
            "keepalive idle",
        );
        rejects(
            d().keepalive(Some(
                Keepalive::new(s(1)).interval(Duration::from_millis(10)),
            )),
            "keepalive interval",
        );
        rejects(
            d().keepalive(Some(Keepalive::new(s(1)).retries(0))),
            "keepalive retries",
        );
        rejects(
            d().keepalive(Some(Keepalive::new(s(1)).retries(128))),
            "keepalive retries",
        );
    }

    #[test]
    fn every_setting_reads_back() {
        let s = Duration::from_secs;
        let k = Keepalive::new(s(9)).interval(s(2)).retries(4);
        let c = Config::default()
            .max_connections(7)
            .idle_timeout(Some(s(3)))
            .max_write_buffer(1234)
            .keepalive(Some(k))
            .user_timeout(Some(s(5)))
            .read_buffer_size(4096)
            .read_budget(8192)
            .close_timeout(s(6))
            .events_capacity(99)
            .nodelay(true)
            .listen_backlog(17)
            .connect_timeout(None)
            .close_records(true)
            .close_latency(true)
            .tcp_info_at_close(true);
        c.validate().unwrap();
        assert_eq!(c.get_max_connections(), 7);
        assert_eq!(c.get_idle_timeout(), Some(s(3)));
        assert_eq!(c.get_max_write_buffer(), 1234);
        assert_eq!(c.get_keepalive(), Some(&k));
        assert_eq!(c.get_user_timeout(), Some(s(5)));
        assert_eq!(c.get_read_buffer_size(), 4096);
        assert_eq!(c.get_read_budget(), 8192);
        assert_eq!(c.get_close_timeout(), s(6));
        assert_eq!(c.get_events_capacity(), 99);
        assert!(c.get_nodelay());
        assert_eq!(c.get_listen_backlog(), 17);
        assert_eq!(c.get_connect_timeout(), None);
        assert!(c.get_close_records());
        assert!(c.get_close_latency());
        assert!(c.get_tcp_info_at_close());
    }

    #[test]
    fn valid_dead_peer_policy() {
        let k = Keepalive::new(Duration::from_secs(1))
            .interval(Duration::from_secs(1))
            .retries(3);
        Config::default()
            .keepalive(Some(k))
            .user_timeout(Some(Duration::from_millis(3000)))
            .validate()
            .unwrap();
        assert_eq!(k.worst_case(), Duration::from_secs(4));
    }
}
