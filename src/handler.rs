//! The [`Handler`] trait and its calling contract.

use crate::close::CloseReason;
use crate::conn::Conn;
use crate::ctx::Ctx;

/// One value per connection: made by the listener's factory when a peer is
/// accepted, or given to [`Reactor::connect`](crate::Reactor::connect) /
/// [`Connector::connect`](crate::Connector::connect) for an outbound one.
///
/// # Calling contract
///
/// **Every handler the reactor takes gets exactly one `on_close`**, and it
/// is the last call it gets. For every connection the reactor calls, in this
/// order and on the thread that runs the reactor:
///
/// 1. `on_open`, once, after the connection is registered (accepted) or
///    established (outbound);
/// 2. any number of `on_data` (bytes in order, never empty), `on_drained`,
///    `on_timer`, and at most one `on_read_closed` (after the last `on_data`);
/// 3. `on_close`, **exactly once**, and nothing after it.
///
/// An outbound connect that fails gets only `on_close` with
/// [`CloseReason::ConnectFailed`] (no `on_open`), as does one the reactor
/// shuts down before it connected (with `Shutdown`).
///
/// After [`Conn::close`] or [`Conn::abort`] no more `on_data`,
/// `on_read_closed`, `on_drained` or `on_timer` come; `on_close` follows when
/// the socket is closed. If the factory panics, the peer is turned away and
/// no handler exists, so no callback is made.
///
/// # Panics
///
/// A panic in a callback is caught: that connection alone closes, `on_close`
/// gets [`CloseReason::Panicked`], and the reactor carries on. This needs
/// `panic = "unwind"` (the default); with `panic = "abort"` the process ends.
///
/// # Examples
///
/// ```
/// use hangup::{CloseReason, Conn, Handler};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
///         conn.write(data)
///     }
///     fn on_close(&mut self, reason: CloseReason) {
///         log::info!("closed: {reason}")
///     }
/// }
///
/// let mut reactor = hangup::Reactor::new()?;
/// reactor.listen("127.0.0.1:0".parse().unwrap(), |_peer| Echo)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub trait Handler: 'static {
    /// Once, after the connection is registered with the reactor.
    fn on_open(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// Bytes from the peer, in order. `data` borrows the reactor's read buffer.
    fn on_data(&mut self, conn: &mut Conn<'_>, data: &[u8]);

    /// The peer shut down its sending side (a read returned 0) after all of its
    /// data was delivered. Default: `conn.close()`, and `on_close` then gets
    /// [`CloseReason::PeerClosed`]. Override to keep answering a half-closed peer.
    fn on_read_closed(&mut self, conn: &mut Conn<'_>) {
        conn.close()
    }

    /// Output that was queued because the socket was full has all been taken
    /// by the kernel. Use it to pace a large transfer. Default: nothing.
    ///
    /// # Examples
    ///
    /// Send a large file in 256 KiB steps, holding at most one step in memory:
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// use hangup::{CloseReason, Conn, Handler};
    ///
    /// struct Download { left: usize }
    /// impl Download {
    ///     fn send_some(&mut self, conn: &mut Conn<'_>) {
    ///         // Write until the kernel stops taking it; on_drained resumes.
    ///         while self.left > 0 && conn.pending_output() == 0 {
    ///             let n = self.left.min(256 * 1024);
    ///             conn.write(&vec![b'x'; n]);
    ///             self.left -= n;
    ///         }
    ///         if self.left == 0 {
    ///             conn.close(); // flushed before our FIN
    ///         }
    ///     }
    /// }
    /// impl Handler for Download {
    ///     fn on_open(&mut self, conn: &mut Conn<'_>) { self.send_some(conn) }
    ///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    ///     fn on_drained(&mut self, conn: &mut Conn<'_>) { self.send_some(conn) }
    ///     fn on_close(&mut self, _: CloseReason) {}
    /// }
    /// ```
    fn on_drained(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// A drain began ([`Handle::drain`](crate::Handle::drain)): once per
    /// connection open at that moment (or opened, outbound, during it). The
    /// place for a protocol to say goodbye, or to mark the connection idle
    /// ([`Conn::set_idle`]) so that the reactor closes it now. Default:
    /// nothing; a connection already marked idle is closed after this call,
    /// the others finish by themselves or are closed at the drain's deadline.
    fn on_drain(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// The timer set with [`Conn::set_timer`] is due. Once per `set_timer`,
    /// never before its time; only while the connection is open; never
    /// after [`Conn::cancel_timer`] or a later `set_timer`, even when
    /// another connection's `on_timer` earlier in the same turn made that
    /// call. Default: nothing.
    fn on_timer(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// Exactly once per handler the reactor took (every connection that saw
    /// `on_open`, and every outbound connect, failed or not), and the last
    /// call it gets.
    fn on_close(&mut self, reason: CloseReason);

    /// The close, with a context to act from: reconnect
    /// ([`Ctx::connect`]), pass the end on to another connection
    /// ([`Ctx::conn`]), set a reactor timer (a backoff). The reactor calls
    /// this one; its default calls [`on_close`](Handler::on_close), so a
    /// handler overrides one or the other. Still exactly once, and the last
    /// call.
    ///
    /// While the reactor stops (shutdown, or a drain's deadline) connects
    /// from here are refused ([`Ctx::is_stopping`]).
    ///
    /// # Examples
    ///
    /// A client that reconnects after a failure, 100 ms later:
    ///
    /// ```
    /// # #![allow(dead_code)]
    /// use std::net::SocketAddr;
    /// use std::time::Duration;
    /// use hangup::{CloseReason, Conn, Ctx, Handler};
    ///
    /// struct Client { addr: SocketAddr }
    /// impl Handler for Client {
    ///     fn on_data(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    ///     fn on_close(&mut self, _: CloseReason) {}
    ///     fn on_close_with(&mut self, reason: CloseReason, ctx: &mut Ctx<'_, Self>) {
    ///         println!("closed: {reason}; again in 100 ms");
    ///         let addr = self.addr;
    ///         ctx.set_timer(Duration::from_millis(100), move |ctx| {
    ///             ctx.connect_or_report(addr, Client { addr });
    ///         });
    ///     }
    /// }
    /// ```
    fn on_close_with(&mut self, reason: CloseReason, ctx: &mut Ctx<'_, Self>)
    where
        Self: Sized,
    {
        let _ = ctx;
        self.on_close(reason);
    }
}
