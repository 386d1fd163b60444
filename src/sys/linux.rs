//! Linux and Android: `TCP_USER_TIMEOUT` and keepalive probe counts exist.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

use crate::config::Keepalive;

pub(crate) const ETIMEDOUT: Option<i32> = Some(110);
pub(crate) const ECONNRESET: Option<i32> = Some(104);
pub(crate) const ENOBUFS: Option<i32> = Some(105);
pub(crate) const EINPROGRESS: Option<i32> = Some(115);
pub(crate) const ECONNREFUSED: Option<i32> = Some(111);

/// `send(2)` flags for every write: a write to a closed peer is `EPIPE`,
/// never a `SIGPIPE` (AF_UNIX sockets would raise it).
pub(crate) const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL;

/// epoll(7): with edge-triggered readiness, a read that returns fewer bytes
/// than asked means the receive queue was drained.
pub(crate) const SHORT_READ_DRAINS: bool = true;

/// A writable event on a connecting socket comes only once the connect has
/// ended (tcp_poll reports no `EPOLLOUT` in `SYN_SENT`; an AF_UNIX connect
/// that waits does the same): with `SO_ERROR` empty, it is connected, and
/// no `getpeername` is needed to tell it from a spurious wake-up. tokio
/// relies on the same.
pub(crate) const WRITABLE_PROVES_CONNECT: bool = true;

/// A non-blocking, close-on-exec stream socket in one `socket(2)` call
/// (`SOCK_NONBLOCK | SOCK_CLOEXEC`), not `socket` then two `fcntl`.
pub(crate) fn stream_socket(domain: socket2::Domain) -> io::Result<socket2::Socket> {
    socket2::Socket::new(domain, socket2::Type::STREAM.nonblocking(), None)
}

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

/// Makes a listener drop every new SYN (a classic BPF socket filter on the
/// TCP flags: SYN without ACK), so that no new handshake completes on it
/// while the ones already in its backlog are accepted. A client whose SYN
/// is dropped retransmits it (after about 1 s), and once the listener is
/// closed the retransmission is answered with a reset: it is refused,
/// never taken into a backlog that closing would reset.
pub(crate) fn stop_new_handshakes(sock: &SockRef<'_>) -> io::Result<()> {
    use socket2::SockFilter;
    // The filter sees the TCP header at offset 0.
    const LD_B_ABS: u16 = 0x30; // A = byte at k
    const AND_K: u16 = 0x54; // A &= k
    const JEQ_K: u16 = 0x15; // A == k ? jt : jf
    const RET_K: u16 = 0x06; // keep k bytes (0: drop)
    const SYN: u32 = 0x02;
    const ACK: u32 = 0x10;
    let program = [
        SockFilter::new(LD_B_ABS, 0, 0, 13), // the flags byte
        SockFilter::new(AND_K, 0, 0, SYN | ACK),
        SockFilter::new(JEQ_K, 0, 1, SYN), // SYN alone: drop; else keep
        SockFilter::new(RET_K, 0, 0, 0),
        SockFilter::new(RET_K, 0, 0, u32::MAX),
    ];
    sock.attach_filter(&program)
}

/// Plain old data that `getsockopt(2)` may fill: integers only, so all-zero
/// bytes are a valid value.
trait Pod: Copy {}
impl Pod for libc::tcp_info {}
impl Pod for libc::ucred {}

/// `getsockopt(fd, level, name)` into a `T`.
#[allow(unsafe_code)]
fn getsockopt<T: Pod>(fd: std::os::fd::BorrowedFd<'_>, level: i32, name: i32) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    // SAFETY: T is plain old data (the Pod trait, implemented only for
    // integer-only C structs), so all-zero is a valid value; getsockopt
    // writes at most `len` bytes into it, and `fd` is a live descriptor
    // borrowed for the call.
    let mut value: T = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

/// `getsockopt(SO_PEERCRED)`: the Unix-domain peer's pid, uid and gid.
pub(crate) fn peer_cred(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<(i32, u32, u32)> {
    let c: libc::ucred = getsockopt(fd, libc::SOL_SOCKET, libc::SO_PEERCRED)?;
    Ok((c.pid, c.uid, c.gid))
}

/// `getsockopt(TCP_INFO)`: what the kernel knows of a connection.
pub(crate) fn tcp_info(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<crate::TcpInfo> {
    let info: libc::tcp_info = getsockopt(fd, libc::SOL_TCP, libc::TCP_INFO)?;
    let us = |v: u32| Duration::from_micros(u64::from(v));
    Ok(crate::TcpInfo {
        state: info.tcpi_state,
        rtt: us(info.tcpi_rtt),
        rttvar: us(info.tcpi_rttvar),
        retransmits: info.tcpi_retransmits,
        total_retrans: info.tcpi_total_retrans,
        lost: info.tcpi_lost,
        unacked: info.tcpi_unacked,
        notsent_bytes: info.tcpi_notsent_bytes,
        last_data_recv: Duration::from_millis(u64::from(info.tcpi_last_data_recv)),
    })
}
