//! Linux and Android: `TCP_USER_TIMEOUT` and keepalive probe counts exist.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::config::Keepalive;

pub(crate) const ETIMEDOUT: Option<i32> = Some(110);
pub(crate) const ECONNRESET: Option<i32> = Some(104);
pub(crate) const ENOBUFS: Option<i32> = Some(105);
pub(crate) const EINPROGRESS: Option<i32> = Some(115);

/// epoll(7): with edge-triggered readiness, a read that returns fewer bytes
/// than asked means the receive queue was drained.
pub(crate) const SHORT_READ_DRAINS: bool = true;

pub(crate) fn set_user_timeout(sock: &SockRef<'_>, t: Option<Duration>) -> io::Result<()> {
    sock.set_tcp_user_timeout(t)
}

pub(crate) fn set_keepalive(sock: &SockRef<'_>, k: &Keepalive) -> io::Result<()> {
    let params = TcpKeepalive::new()
        .with_time(k.get_idle())
        .with_interval(k.get_interval())
        .with_retries(k.get_retries());
    sock.set_tcp_keepalive(&params)
}
