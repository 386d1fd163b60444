//! Errors hangup wraps to say where they happened (`listen on ADDR: ...`),
//! keeping the original reachable.

use std::error::Error;
use std::fmt;
use std::io;

/// An `io::Error` with what was being done (`listen on 127.0.0.1:80`).
#[derive(Debug)]
struct Named {
    context: String,
    source: io::Error,
}

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.context, self.source)
    }
}

impl Error for Named {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.source)
    }
}

/// `e`, its message prefixed with `context`, its kind kept, and the
/// original as the payload's [`source`](Error::source): [`raw_os_error`]
/// finds its errno.
pub(crate) fn named(context: impl fmt::Display, e: io::Error) -> io::Error {
    io::Error::new(
        e.kind(),
        Named {
            context: context.to_string(),
            source: e,
        },
    )
}

/// What [`Reactor::listen_std`](crate::Reactor::listen_std) returns, inside
/// its `InvalidInput` error, when the listener it was given is not a TCP
/// socket: it says what the listener is and what to call instead, and gives
/// the listener back ([`into_fd`](NotTcp::into_fd)), so nothing is lost.
///
/// # Examples
///
/// ```
/// use std::os::fd::OwnedFd;
/// use hangup::{CloseReason, Conn, Handler, NotTcp, Reactor};
/// # struct Quiet;
/// # impl Handler for Quiet {
/// #     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
/// #     fn on_close(&mut self, _: CloseReason) {}
/// # }
/// let dir = std::env::temp_dir().join(format!("hangup-nottcp-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let unix = std::os::unix::net::UnixListener::bind(dir.join("s.sock"))?;
/// // Safe code can dress any socket as a TcpListener:
/// let dressed = std::net::TcpListener::from(OwnedFd::from(unix));
/// let mut reactor = Reactor::new()?;
/// let err = reactor.listen_std(dressed, |_| Quiet).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// assert!(err.to_string().contains("listen_unix_std"), "{err}");
/// // The listener is not lost: adopt it as what it is.
/// let back = err.into_inner().unwrap().downcast::<NotTcp>().unwrap().into_fd();
/// reactor.listen_unix_std(std::os::unix::net::UnixListener::from(back), |_| Quiet)?;
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct NotTcp {
    what: String,
    fd: std::os::fd::OwnedFd,
}

impl NotTcp {
    /// The listener, as it was given.
    pub fn into_fd(self) -> std::os::fd::OwnedFd {
        self.fd
    }

    /// `l` if it is a TCP socket (IPv4 or IPv6, stream); else the error.
    pub(crate) fn check(l: std::net::TcpListener) -> io::Result<std::net::TcpListener> {
        let sock = socket2::SockRef::from(&l);
        let what = match (sock.domain(), sock.r#type()) {
            (Ok(d), Ok(t))
                if (d == socket2::Domain::IPV4 || d == socket2::Domain::IPV6)
                    && t == socket2::Type::STREAM =>
            {
                return Ok(l)
            }
            (Ok(socket2::Domain::UNIX), _) => {
                let at = sock
                    .local_addr()
                    .ok()
                    .and_then(|a| {
                        a.as_pathname()
                            .map(|p| format!(" bound to {}", p.display()))
                    })
                    .unwrap_or_default();
                format!(
                    "listen_std takes a TCP listener, and got a Unix-domain socket{at}; \
                     adopt it with Reactor::listen_unix_std (it is inside this error: NotTcp::into_fd)"
                )
            }
            (Ok(d), Ok(t)) => format!(
                "listen_std takes a TCP listener, and got a socket of domain {d:?}, type {t:?} \
                 (it is inside this error: NotTcp::into_fd)"
            ),
            (Err(e), _) | (_, Err(e)) => format!(
                "listen_std takes a TCP listener, and got a descriptor that is not a socket ({e}) \
                 (it is inside this error: NotTcp::into_fd)"
            ),
        };
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            NotTcp { what, fd: l.into() },
        ))
    }
}

impl fmt::Display for NotTcp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl Error for NotTcp {}

/// The OS error code of `e`, or of the `io::Error` it wraps: hangup names
/// the address in the errors it returns (`listen on 127.0.0.1:80:
/// Address already in use`), which makes `e.raw_os_error()` itself `None`;
/// the kind is kept as it was.
///
/// # Examples
///
/// ```
/// use hangup::{CloseReason, Conn, Handler, Reactor};
///
/// struct Quiet;
/// impl Handler for Quiet {
///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
///     fn on_close(&mut self, _: CloseReason) {}
/// }
///
/// let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut reactor = Reactor::<Quiet>::new()?;
/// let err = reactor.listen(taken.local_addr()?, |_| Quiet).unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
/// assert!(err.to_string().starts_with("listen on 127.0.0.1:"));
/// # #[cfg(target_os = "linux")]
/// assert_eq!(hangup::raw_os_error(&err), Some(98)); // EADDRINUSE
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn raw_os_error(e: &io::Error) -> Option<i32> {
    if let Some(code) = e.raw_os_error() {
        return Some(code);
    }
    let mut cause = e.get_ref()?.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<io::Error>() {
            if let Some(code) = raw_os_error(io) {
                return Some(code);
            }
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_keeps_kind_message_and_errno() {
        let e = named("listen on 127.0.0.1:80", io::Error::from_raw_os_error(98));
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().starts_with("listen on 127.0.0.1:80: "), "{e}");
        assert_eq!(e.raw_os_error(), None);
        assert_eq!(raw_os_error(&e), Some(98));
        let twice = named("outer", e);
        assert_eq!(raw_os_error(&twice), Some(98));
        assert_eq!(raw_os_error(&io::Error::other("no errno")), None);
    }
}
