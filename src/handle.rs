//! [`Handle`]: reaches a reactor from anywhere, through a `mio::Waker`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::conn::ConnId;

#[derive(Debug)]
pub(crate) enum Command {
    Write(ConnId, Vec<u8>),
    Close(ConnId),
    Abort(ConnId),
}

#[derive(Debug, Default)]
struct Queue {
    cmds: Vec<Command>,
    /// The loop is blocked in poll (or about to be): a new command must wake it.
    polling: bool,
    /// A wake is already on its way.
    woken: bool,
}

pub(crate) struct Shared {
    waker: mio::Waker,
    shutdown: AtomicBool,
    queue: Mutex<Queue>,
}

/// Reaches a [`Reactor`](crate::Reactor) from any thread, or from a handler.
/// `Clone + Send + Sync`.
///
/// Commands are queued and carried out by the reactor's thread in the order
/// given; the loop is woken only when it is blocked in poll, and only once
/// per batch.
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
/// let mut reactor = Reactor::new()?;
/// reactor.listen("127.0.0.1:0".parse().unwrap(), |_| Quiet)?;
/// let handle = reactor.handle();
/// let t = std::thread::spawn(move || handle.shutdown());
/// reactor.run()?; // returns once shutdown() is called
/// t.join().unwrap();
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("shutdown", &self.is_shutdown())
            .finish_non_exhaustive()
    }
}

impl Handle {
    pub(crate) fn new(waker: mio::Waker) -> Handle {
        Handle {
            shared: Arc::new(Shared {
                waker,
                shutdown: AtomicBool::new(false),
                queue: Mutex::new(Queue::default()),
            }),
        }
    }

    /// Asks the reactor to shut down; from any thread. Wakes the loop.
    /// [`Reactor::run`](crate::Reactor::run) then closes every connection
    /// with [`CloseReason::Shutdown`](crate::CloseReason::Shutdown) and returns.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        if let Err(e) = self.shared.waker.wake() {
            log::error!("waking the reactor for shutdown failed: {e}");
        }
    }

    /// Whether [`shutdown`](Handle::shutdown) was called.
    pub fn is_shutdown(&self) -> bool {
        self.shared.shutdown.load(Ordering::SeqCst)
    }

    /// Queues `data` for connection `id`, as [`Conn::write`](crate::Conn::write)
    /// would. Ignored if `id` is closed.
    pub fn write(&self, id: ConnId, data: Vec<u8>) {
        self.push(Command::Write(id, data));
    }

    /// Closes connection `id` gracefully, as [`Conn::close`](crate::Conn::close)
    /// would ([`CloseReason::Local`](crate::CloseReason::Local)). Ignored if
    /// `id` is closed.
    pub fn close(&self, id: ConnId) {
        self.push(Command::Close(id));
    }

    /// Resets connection `id`, as [`Conn::abort`](crate::Conn::abort) would.
    pub fn abort(&self, id: ConnId) {
        self.push(Command::Abort(id));
    }

    fn push(&self, cmd: Command) {
        let wake = {
            let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
            q.cmds.push(cmd);
            let wake = q.polling && !q.woken;
            if wake {
                q.woken = true;
            }
            wake
        };
        if wake {
            if let Err(e) = self.shared.waker.wake() {
                log::error!("waking the reactor failed: {e}");
            }
        }
    }

    /// Moves queued commands into `into`. When none are queued, marks the
    /// loop as about to poll (if `then_poll`), so the next command wakes it.
    pub(crate) fn take_commands(&self, into: &mut Vec<Command>, then_poll: bool) {
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.cmds.is_empty() {
            if then_poll {
                q.polling = true;
                q.woken = false;
            }
        } else {
            std::mem::swap(&mut q.cmds, into);
        }
    }

    /// The loop came back from poll.
    pub(crate) fn polled(&self) {
        let mut q = self.shared.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.polling = false;
    }
}
