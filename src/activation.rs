//! systemd socket activation (feature `activation`): the service manager
//! binds the listeners and passes them to the process it starts, as
//! descriptors from 3 on, with `LISTEN_FDS` (how many), `LISTEN_PID` (for
//! which process) and `LISTEN_FDNAMES` (their names, from `FileDescriptorName=`
//! or the socket unit's name). [`listeners`] takes them, TCP and Unix alike;
//! [`Reactor::listen_activated`] serves them all; [`notify_ready`] tells the
//! manager the service is up (`Type=notify`).
//!
//! The descriptors are checked and turned into listeners by the `listenfd`
//! crate; `READY=1` is sent by the `sd-notify` crate.

use std::io;

use crate::handler::Handler;
use crate::reactor::Reactor;
use crate::transport::Peer;

/// A listener passed by the service manager.
#[derive(Debug)]
pub struct Activated {
    /// Its name in `LISTEN_FDNAMES`, if the manager gave names.
    pub name: Option<String>,
    /// The listener, blocking as it came.
    pub listener: ActivatedListener,
}

/// The kinds of listener [`listeners`] takes.
#[derive(Debug)]
pub enum ActivatedListener {
    /// A TCP listener (IPv4 or IPv6).
    Tcp(std::net::TcpListener),
    /// A Unix-domain stream listener.
    Unix(std::os::unix::net::UnixListener),
}

/// Takes the listeners the service manager passed to this process: none
/// when `LISTEN_FDS` is not set, or `LISTEN_PID` names another process.
/// `LISTEN_FDS` and `LISTEN_PID` are removed from the environment, so that
/// children do not take them too.
///
/// # Errors
///
/// A passed descriptor is neither a TCP nor a Unix-domain stream listener
/// (`InvalidInput`, naming its position and name).
pub fn listeners() -> io::Result<Vec<Activated>> {
    // Read before listenfd removes the other variables.
    let names: Vec<String> = std::env::var("LISTEN_FDNAMES")
        .map(|v| v.split(':').map(str::to_owned).collect())
        .unwrap_or_default();
    let mut fds = listenfd::ListenFd::from_env();
    let mut out = Vec::with_capacity(fds.len());
    for i in 0..fds.len() {
        let name = names.get(i).cloned();
        // Passed across exec, they are not close-on-exec: made so here, so
        // that programs this one starts do not hold them.
        let listener = if let Ok(Some(l)) = fds.take_tcp_listener(i) {
            socket2::SockRef::from(&l).set_cloexec(true)?;
            ActivatedListener::Tcp(l)
        } else if let Ok(Some(l)) = fds.take_unix_listener(i) {
            socket2::SockRef::from(&l).set_cloexec(true)?;
            ActivatedListener::Unix(l)
        } else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "socket activation: descriptor {} ({}) is neither a TCP nor a Unix-domain stream listener",
                    3 + i,
                    name.as_deref().unwrap_or("unnamed")
                ),
            ));
        };
        out.push(Activated { name, listener });
    }
    Ok(out)
}

/// Tells the service manager the service is ready (`READY=1` on
/// `NOTIFY_SOCKET`); does nothing when no manager asked for it (the
/// variable is not set).
///
/// # Errors
///
/// Sending the notification failed.
pub fn notify_ready() -> io::Result<()> {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return Ok(());
    }
    sd_notify::notify(&[sd_notify::NotifyState::Ready])
}

impl<H: Handler> Reactor<H> {
    /// Serves every listener the service manager passed ([`listeners`]),
    /// each with a clone of `factory`. Returns how each is named in logs
    /// (its address or path, and its `LISTEN_FDNAMES` name): empty when the
    /// process was not socket-activated, so a program can fall back to
    /// binding its own.
    ///
    /// # Errors
    ///
    /// As [`listeners`], and as [`listen_std`](Reactor::listen_std) or
    /// [`listen_unix_std`](Reactor::listen_unix_std) for each.
    ///
    /// # Examples
    ///
    /// ```
    /// use hangup::{CloseReason, Conn, Handler, Reactor};
    /// # struct Echo;
    /// # impl Handler for Echo {
    /// #     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) { conn.write(data) }
    /// #     fn on_close(&mut self, _: CloseReason) {}
    /// # }
    /// let mut reactor = Reactor::new()?;
    /// let served = reactor.listen_activated(|_peer| Echo)?;
    /// if served.is_empty() {
    ///     reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Echo)?;
    /// }
    /// hangup::activation::notify_ready()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn listen_activated<F>(&mut self, factory: F) -> io::Result<Vec<String>>
    where
        F: FnMut(Peer) -> H + Clone + 'static,
    {
        let mut served = Vec::new();
        for a in listeners()? {
            let name = a.name.map_or_else(String::new, |n| format!(" ({n})"));
            match a.listener {
                ActivatedListener::Tcp(l) => {
                    let mut f = factory.clone();
                    let addr = self.listen_std(l, move |addr| f(Peer::Tcp(addr)))?;
                    served.push(format!("{addr}{name}"));
                }
                ActivatedListener::Unix(l) => {
                    let at = l
                        .local_addr()
                        .ok()
                        .and_then(|a| a.as_pathname().map(|p| p.display().to_string()))
                        .unwrap_or_else(|| "unnamed".into());
                    self.listen_unix_std(l, factory.clone())?;
                    served.push(format!("unix:{at}{name}"));
                }
            }
        }
        log::info!("socket activation: serving {served:?}");
        Ok(served)
    }
}
