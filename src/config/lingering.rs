//! [`LingeringClose`]: whether a graceful close waits for the peer's FIN.

/// Whether a graceful [`Conn::close`](crate::Conn::close) waits for the
/// peer's FIN before closing the socket: the policy nginx's
/// `lingering_close` sets. See [`Config::lingering_close`](crate::Config::lingering_close).
///
/// Why wait at all: when a socket is closed with input unread, or input
/// arrives after it is closed, the kernel answers with a reset, and a reset
/// makes the peer's kernel throw away whatever it had received and not yet
/// handed to the peer's program, such as the tail of our reply. Sending our
/// FIN first (`shutdown`) and reading until the peer's FIN closes that
/// window; it costs a `shutdown`, one more read, and holding the descriptor
/// for a round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum LingeringClose {
    /// Always: after the output, send our FIN and read (discarding) until
    /// the peer's FIN or [`Config::close_timeout`](crate::Config::close_timeout); only then close the
    /// socket. No output is lost to a reset, whatever the peer sends. As
    /// nginx's `lingering_close always`. The default.
    #[default]
    Always,
    /// Only when input may be unread: if the connection's last read found
    /// the socket empty (a short read, or `WouldBlock`) and no readable event
    /// came since, the socket is closed as soon as the output is handed to
    /// the kernel, which sends it and then our FIN; otherwise as
    /// [`Always`](LingeringClose::Always). After the peer's FIN the wait is
    /// skipped under either policy. A drain's closes always linger. As
    /// nginx's `lingering_close on`, which lingers only when the client may
    /// send more, with the socket's state in place of nginx's knowledge of
    /// HTTP.
    ///
    /// **What it risks:** input the peer sends after that last read (a
    /// pipelined request, a late byte, one already in flight) reaches a
    /// closed socket and is answered with a reset, which can destroy output
    /// of ours the peer had not read yet; and a reset or loss after the
    /// close is not reported (`on_close` has already said `Local`). Use it
    /// where the protocol says the peer sends nothing after the request it
    /// is answered for (HTTP with `Connection: close` after a whole request,
    /// a one-shot RPC). It saves the `shutdown`, a read and the round trip:
    /// 5 syscalls per accepted connection the server closes first,
    /// against 7 (BENCHMARKS.md, "Closing first").
    ///
    /// There is no counterpart of nginx's `lingering_close off` (never
    /// wait): closing a socket with input unread makes the kernel send a
    /// reset at once, which destroys whatever output is still in flight,
    /// every time rather than by a race.
    WhenUnread,
}
