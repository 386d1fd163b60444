//! TLS connections in the loop (feature `tls`): a TLS listener's accepted
//! connection starts its handshake, and opens (`on_open`) when it is done.

use super::dispatch::deliver;
use super::Reactor;
use crate::conn::{ConnId, Flag, State};
use crate::handler::Handler;
use crate::record::LifecycleEvent;
use crate::transport::tls::{Handshake, TlsSession};

impl<H: Handler> Reactor<H> {
    /// A TLS session for a connection accepted on listener `li`, if that
    /// listener serves TLS; `Err` if rustls could not make one.
    pub(super) fn tls_session_for(
        &self,
        li: Option<usize>,
    ) -> Result<Option<TlsSession>, rustls::Error> {
        let Some(config) = li.and_then(|li| self.listeners[li].tls.as_ref()) else {
            return Ok(None);
        };
        let conn = rustls::ServerConnection::new(config.clone())?;
        Ok(Some(TlsSession::new(conn.into())))
    }

    /// The state of a connection that starts with a TLS handshake: not open
    /// to its handler yet, the handshake timeout armed.
    pub(super) fn handshaking_state(&self) -> State {
        let mut st = State::connecting(self.env.idle_ms, 0);
        st.start_handshake(self.env.clock.deadline_unless_off(self.env.handshake_ticks));
        st
    }

    /// An outbound TLS connection's TCP connect completed (`outcome`): its
    /// handshake starts (the ClientHello goes out). A reset already waiting
    /// fails the handshake. Returns what [`tls_handshake_event`] does.
    pub(super) fn start_client_handshake(
        &mut self,
        id: ConnId,
        outcome: crate::close::ConnectOutcome,
    ) -> bool {
        let deadline = self.env.clock.deadline_unless_off(self.env.handshake_ticks);
        let Some(core) = self.table.cores.get_mut(id) else {
            return false;
        };
        core.st.start_handshake(deadline);
        if let crate::close::ConnectOutcome::ConnectedThenFailed(e) = outcome {
            core.st
                .fail(crate::close::CloseReason::TlsHandshakeFailed(e));
            return false;
        }
        self.tls_handshake_event(id)
    }

    /// An event on a connection whose TLS handshake is under way. Returns
    /// true once the handshake is done and `on_open` was delivered, for the
    /// caller to read what came with it.
    pub(super) fn tls_handshake_event(&mut self, id: ConnId) -> bool {
        match self.table.tls_handshake(id) {
            Handshake::Pending => false,
            Handshake::Failed(reason) => {
                log::debug!("conn {id}: TLS handshake: {reason}");
                if let Some(core) = self.table.cores.get_mut(id) {
                    core.st.fail(reason);
                }
                false
            }
            Handshake::Done => {
                let (handlers, table, env) = (&mut self.handlers, &mut self.table, &self.env);
                let Some(core) = table.cores.get_mut(id) else {
                    return false;
                };
                log::trace!("conn {id}: TLS handshake done");
                core.st.connected(env.clock.now());
                // Application data may have come with the handshake's end.
                core.st.set(Flag::MORE_TO_READ, true);
                table.note(id, LifecycleEvent::Opened);
                deliver(handlers, table, env, id, "on_open", |h, c| h.on_open(c));
                self.opened_and_alive(id)
            }
        }
    }
}
