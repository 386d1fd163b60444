//! Unix domain sockets: binding a listener path without stealing a live
//! daemon's or touching what is not a socket, removing the socket file only
//! while it is still ours, Linux abstract names, connecting, and the peer's
//! credentials.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use mio::{Interest, Registry, Token};
use socket2::{Domain, SockAddr, SockRef, Socket};

use super::Stream;
use crate::sys;

/// How [`Reactor::listen_unix_with`](crate::Reactor::listen_unix_with) binds
/// its path.
///
/// # Examples
///
/// ```
/// use hangup::UnixListenOptions;
/// let opts = UnixListenOptions::new().replace_stale(true).mode(0o660);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnixListenOptions {
    replace_stale: bool,
    mode: Option<u32>,
}

impl UnixListenOptions {
    /// The defaults: a socket file already at the path is an error, even a
    /// stale one; permissions as the umask leaves them.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces a *stale* socket file at the path (one that no listener
    /// answers, left by a process that crashed). A live listener's socket is
    /// never replaced, and a file that is not a socket never touched.
    pub fn replace_stale(mut self, yes: bool) -> Self {
        self.replace_stale = yes;
        self
    }

    /// Sets the socket file's permission bits after binding (for example
    /// `0o660`: connecting needs write permission on the file).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }
}

/// A Unix-domain peer's credentials (`SO_PEERCRED`), as the kernel recorded
/// them when the peer connected (or, for a connection of ours, when the
/// listener was made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerCred {
    /// The peer's process id, at connect time (it may have exited since,
    /// and the number be reused).
    pub pid: i32,
    /// The peer's effective user id.
    pub uid: u32,
    /// The peer's effective group id.
    pub gid: u32,
}

/// A Linux abstract name (`\0name`): no file, nothing to remove.
fn is_abstract(path: &Path) -> bool {
    path.as_os_str()
        .as_encoded_bytes()
        .first()
        .is_some_and(|b| *b == 0)
}

/// How a path reads in logs and errors (an abstract name as `@name`).
pub(crate) fn display(path: &Path) -> String {
    if is_abstract(path) {
        let bytes = &path.as_os_str().as_encoded_bytes()[1..];
        format!("@{}", String::from_utf8_lossy(bytes))
    } else {
        path.display().to_string()
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_name(a: &std::os::unix::net::SocketAddr) -> Option<String> {
    #[cfg(target_os = "android")]
    use std::os::android::net::SocketAddrExt;
    #[cfg(target_os = "linux")]
    use std::os::linux::net::SocketAddrExt;
    a.as_abstract_name()
        .map(|n| format!("@{}", String::from_utf8_lossy(n)))
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_name(_: &std::os::unix::net::SocketAddr) -> Option<String> {
    None
}

/// A listening Unix socket, and its socket file while it is ours.
pub(crate) struct UnixListener {
    sock: mio::net::UnixListener,
    file: Option<SocketFile>,
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("fd", &self.sock.as_raw_fd())
            .field("file", &self.file)
            .finish()
    }
}

impl UnixListener {
    #[inline]
    pub(crate) fn accept(&self) -> io::Result<OwnedFd> {
        Ok(self.sock.accept()?.0.into())
    }

    pub(crate) fn sock_ref(&self) -> SockRef<'_> {
        SockRef::from(&self.sock)
    }

    /// How logs and errors name it: its path, `@name` for an abstract one.
    pub(crate) fn name(&self) -> String {
        if let Some(f) = &self.file {
            return f.path.display().to_string();
        }
        match self.sock.local_addr() {
            Ok(a) => match a.as_pathname() {
                Some(p) => p.display().to_string(),
                None => abstract_name(&a).unwrap_or_else(|| "an unnamed socket".into()),
            },
            Err(_) => "an adopted listener".into(),
        }
    }

    /// Adopts a listener bound elsewhere: its file (if any) is not ours and
    /// is never removed.
    pub(crate) fn adopt(l: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        let at = l
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
            .unwrap_or_else(|| "an adopted listener".into());
        l.set_nonblocking(true)
            .map_err(|e| crate::error::named(format!("listen on unix:{at}"), e))?;
        Ok(UnixListener {
            sock: mio::net::UnixListener::from_std(l),
            file: None,
        })
    }

    /// Another listener on the same socket (a duplicated descriptor), which
    /// does not own the socket file: for the workers of a group.
    pub(crate) fn try_clone_adopted(&self) -> io::Result<UnixListener> {
        let fd = self.sock.as_fd().try_clone_to_owned()?;
        Ok(UnixListener {
            sock: mio::net::UnixListener::from(fd),
            file: None,
        })
    }

    /// Gives the listener up for another owner (a restart): the socket file
    /// stays where it is.
    pub(crate) fn into_std(mut self) -> std::os::unix::net::UnixListener {
        if let Some(f) = self.file.as_mut() {
            f.keep = true;
        }
        let fd: OwnedFd = self.sock.into();
        std::os::unix::net::UnixListener::from(fd)
    }

    /// Removes the socket file now if it is still ours, so that no new
    /// client can reach this listener by its path (they get `ENOENT`, or
    /// `ECONNREFUSED`, never a reset); a drain does this first. Returns
    /// whether it did.
    pub(crate) fn unlink(&mut self) -> bool {
        self.file.take().is_some_and(|f| f.remove())
    }

    pub(crate) fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        registry.register(&mut self.sock, token, interest)
    }

    pub(crate) fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interest: Interest,
    ) -> io::Result<()> {
        registry.reregister(&mut self.sock, token, interest)
    }

    pub(crate) fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        registry.deregister(&mut self.sock)
    }
}

/// The socket file a listener of ours created: removed when the listener
/// goes away, if the path still names the same file (device and inode), so
/// a successor that bound the path since keeps its socket.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
    /// Handed over to another owner: leave it.
    keep: bool,
}

impl SocketFile {
    fn remove(mut self) -> bool {
        self.keep = true;
        self.remove_if_ours()
    }

    fn remove_if_ours(&self) -> bool {
        match std::fs::symlink_metadata(&self.path) {
            Ok(m) if is_ours(&m, self.dev, self.ino) => match std::fs::remove_file(&self.path) {
                Ok(()) => {
                    log::debug!("removed the socket file {}", self.path.display());
                    true
                }
                Err(e) => {
                    log::warn!("removing the socket file {}: {e}", self.path.display());
                    false
                }
            },
            Ok(_) => {
                log::debug!(
                    "not removing {}: it is not the socket file this listener made",
                    self.path.display()
                );
                false
            }
            Err(_) => false,
        }
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if !self.keep {
            self.remove_if_ours();
        }
    }
}

fn is_ours(m: &std::fs::Metadata, dev: u64, ino: u64) -> bool {
    m.file_type().is_socket() && m.dev() == dev && m.ino() == ino
}

/// What is at a path that `bind` found in use.
#[derive(Debug)]
pub(crate) enum Existing {
    /// Not a socket: never touched.
    NotSocket,
    /// A socket a listener answers on.
    Live,
    /// A socket nobody answers on (left by a crash).
    Stale,
    /// Gone since `bind` failed: bind again.
    Gone,
    /// Could not tell (the probe failed otherwise).
    Unknown(io::Error),
}

/// What `listen_unix` does about what it found: `Ok(())` to remove the
/// stale file and bind again, or the error to return.
pub(crate) fn decide(at: &str, existing: Existing, replace_stale: bool) -> io::Result<bool> {
    let in_use = |msg: String| Err(io::Error::new(io::ErrorKind::AddrInUse, msg));
    match existing {
        Existing::Gone => Ok(false),
        Existing::Stale if replace_stale => Ok(true),
        Existing::Stale => in_use(format!(
            "listen on unix:{at}: a stale socket file is in the way (no listener answers on it); \
             UnixListenOptions::replace_stale(true) replaces it"
        )),
        Existing::Live => in_use(format!(
            "listen on unix:{at}: the path is in use: a live listener answers on it"
        )),
        Existing::NotSocket => in_use(format!(
            "listen on unix:{at}: the path exists and is not a socket; it is left alone"
        )),
        Existing::Unknown(e) => Err(io::Error::new(
            e.kind(),
            format!("listen on unix:{at}: the path is in use, and probing it failed: {e}"),
        )),
    }
}

/// Looks at what is at `path`: its type, then a connect to it.
fn probe(path: &Path) -> Existing {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Existing::Gone,
        Err(e) => return Existing::Unknown(e),
        Ok(m) if !m.file_type().is_socket() => return Existing::NotSocket,
        Ok(_) => {}
    }
    let outcome = SockAddr::unix(path).and_then(|addr| {
        let s = new_socket()?;
        s.connect(&addr)
    });
    match outcome {
        Ok(()) => Existing::Live,
        Err(e) if e.raw_os_error() == sys::ECONNREFUSED => Existing::Stale,
        // A full backlog (EAGAIN) or a connect in progress: someone listens.
        Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.raw_os_error() == sys::EINPROGRESS => {
            Existing::Live
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Existing::Gone,
        Err(e) => Existing::Unknown(e),
    }
}

/// A non-blocking, close-on-exec Unix stream socket.
fn new_socket() -> io::Result<Socket> {
    crate::sys::stream_socket(Domain::UNIX)
}

/// Binds and listens on `path` (or an abstract name, `\0name`), as
/// [`UnixListenOptions`] says. Errors name the path.
pub(crate) fn bind(path: &Path, opts: UnixListenOptions, backlog: u32) -> io::Result<UnixListener> {
    let at = display(path);
    let named = |e: io::Error| crate::error::named(format!("listen on unix:{at}"), e);
    let addr = SockAddr::unix(path).map_err(named)?;
    let sock = new_socket().map_err(named)?;
    let mut tries = 0;
    loop {
        match sock.bind(&addr) {
            Ok(()) => break,
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && !is_abstract(path) && tries < 3 => {
                tries += 1;
                if decide(&at, probe(path), opts.replace_stale)? {
                    log::info!("replacing the stale socket file {at}");
                    match std::fs::remove_file(path) {
                        Ok(()) => {}
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        Err(e) => return Err(named(e)),
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::AddrInUse && is_abstract(path) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("listen on unix:{at}: the abstract name is in use: {e}"),
                ));
            }
            Err(e) => return Err(named(e)),
        }
    }
    // From here the file is ours: removed again if anything below fails.
    let file = if is_abstract(path) {
        None
    } else {
        let m = std::fs::symlink_metadata(path).map_err(named)?;
        Some(SocketFile {
            path: path.to_path_buf(),
            dev: m.dev(),
            ino: m.ino(),
            keep: false,
        })
    };
    if let Some(mode) = opts.mode {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(named)?;
    }
    sock.listen(backlog.min(i32::MAX as u32) as i32)
        .map_err(named)?;
    let fd: OwnedFd = sock.into();
    Ok(UnixListener {
        sock: mio::net::UnixListener::from(fd),
        file,
    })
}

/// Starts a non-blocking connect to `path`, as `sys::start_connect` does for
/// TCP: `Err` only when no socket could be made; a failure `connect(2)`
/// reports at once (no such path, refused, a full backlog: `EAGAIN`) comes
/// back beside the stream.
pub(crate) fn start_connect(path: &Path) -> io::Result<(Stream, Option<io::Error>)> {
    let sock = new_socket()?;
    let failed = match SockAddr::unix(path) {
        Err(e) => Some(e),
        Ok(addr) => match sock.connect(&addr) {
            Ok(()) => None,
            Err(e) if e.raw_os_error() == sys::EINPROGRESS => None,
            Err(e) => Some(e),
        },
    };
    Ok((Stream::from_fd(sock.into()), failed))
}

/// `SO_PEERCRED` of a Unix-domain stream.
pub(crate) fn peer_cred(stream: &Stream) -> io::Result<PeerCred> {
    use std::os::fd::AsFd;
    let (pid, uid, gid) = sys::peer_cred(stream.as_fd())?;
    Ok(PeerCred { pid, uid, gid })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_stale_socket_is_replaced_and_only_when_asked() {
        assert!(decide("p", Existing::Stale, true).unwrap());
        assert!(!decide("p", Existing::Gone, false).unwrap());
        let e = decide("/run/x.sock", Existing::Stale, false).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
        assert!(e.to_string().contains("/run/x.sock"), "{e}");
        assert!(e.to_string().contains("replace_stale"), "{e}");
        for (existing, word) in [
            (Existing::Live, "live listener"),
            (Existing::NotSocket, "not a socket"),
        ] {
            let e = decide("/run/x.sock", existing, true).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::AddrInUse);
            assert!(e.to_string().contains(word), "{e}");
        }
        let e = decide(
            "p",
            Existing::Unknown(io::Error::from(io::ErrorKind::PermissionDenied)),
            true,
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn abstract_names_read_with_an_at_sign() {
        assert!(is_abstract(Path::new("\0hangup")));
        assert!(!is_abstract(Path::new("/tmp/hangup.sock")));
        assert_eq!(display(Path::new("\0hangup")), "@hangup");
        assert_eq!(display(Path::new("/tmp/a.sock")), "/tmp/a.sock");
    }
}
