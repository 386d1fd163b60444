//! A TLS connection's side of the table (feature `tls`): its session by
//! slot, and the glue between the session's records and the connection's
//! ordinary output path (`Core::write`, `Core::send_raw`), so that
//! flushing, backpressure, the close timeout and the close record work on
//! TLS bytes as on plain ones.

use super::{ConnId, Core, Flag, Table};
use crate::close::ReadOutcome;
use crate::transport::tls::{Handshake, TlsSession};

/// Reads a TLS connection: plaintext into `buf`; what the session has to
/// send in answer goes out behind the connection's output. Takes the
/// table's fields apart, so that the caller keeps its `core`.
#[inline(never)]
pub(crate) fn tls_read(
    core: &mut Core,
    tls: &mut [Option<Box<TlsSession>>],
    tls_out: &mut Vec<u8>,
    bytes_out: &mut u64,
    id: ConnId,
    buf: &mut [u8],
) -> ReadOutcome {
    let Some(Some(session)) = tls.get_mut(id.index()) else {
        return ReadOutcome::WouldBlock;
    };
    tls_out.clear();
    let outcome = session.read(&core.stream, buf, tls_out);
    core.send_raw(tls_out, bytes_out);
    outcome
}

/// A TLS connection's parts, borrowed apart from the table: its core, its
/// session, the scratch buffer for records (cleared), and the byte count.
struct Parts<'a> {
    core: &'a mut Core,
    session: &'a mut TlsSession,
    out: &'a mut Vec<u8>,
    sent: &'a mut u64,
}

impl Table {
    /// Connection `id`'s [`Parts`], if it is a live TLS connection.
    fn tls_parts(&mut self, id: ConnId) -> Option<Parts<'_>> {
        let Table {
            cores,
            tls,
            tls_out,
            bytes_out,
            ..
        } = self;
        let core = cores.get_mut(id)?;
        let session = tls.get_mut(id.index())?.as_deref_mut()?;
        tls_out.clear();
        Some(Parts {
            core,
            session,
            out: tls_out,
            sent: bytes_out,
        })
    }

    /// Gives connection `id` its TLS session.
    pub(crate) fn tls_put(&mut self, id: ConnId, session: TlsSession) {
        let i = id.index();
        if self.tls.len() <= i {
            self.tls.resize_with(i + 1, || None);
        }
        self.tls[i] = Some(Box::new(session));
    }

    /// Connection `id` closes (its core already out of the table): its
    /// session goes with it. If it ends by a close of ours that sends no
    /// reset (an idle timeout, a deadline, a shutdown), its close_notify
    /// goes out first, straight to the socket, as a FIN does on TCP: if the
    /// handshake was done, nothing is queued, and it was not sent yet. Best
    /// effort: the socket closes next either way. One look at the side
    /// table, whatever the connection.
    pub(crate) fn tls_finish(&mut self, id: ConnId, core: &Core) {
        let Some(session) = self.tls.get_mut(id.index()).and_then(Option::take) else {
            return;
        };
        let mut session = session;
        if core.st.has(Flag::ABORTIVE) || core.pending() > 0 || session.conn.is_handshaking() {
            return;
        }
        self.tls_out.clear();
        session.close_notify(&mut self.tls_out);
        if let Ok(n) = core.stream.write(&self.tls_out) {
            self.bytes_out += n as u64;
        }
    }

    /// Connection `id`'s TLS session, if it is a TLS connection.
    pub(crate) fn tls_session(&self, id: ConnId) -> Option<&TlsSession> {
        self.tls.get(id.index()).and_then(|s| s.as_deref())
    }

    /// Starts an outbound TLS connection: the TCP connect now, the
    /// handshake once it is done. `Err` only when no socket could be made,
    /// or rustls could not start a client (`InvalidInput`).
    pub(crate) fn start_connect_tls(
        &mut self,
        to: crate::transport::Target<'_>,
        config: std::sync::Arc<rustls::ClientConfig>,
        name: rustls::pki_types::ServerName<'static>,
        env: &super::Env,
    ) -> std::io::Result<ConnId> {
        let conn = rustls::ClientConnection::new(config, name).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("connect_tls: rustls could not start a client: {e}"),
            )
        })?;
        let id = match to {
            crate::transport::Target::Tcp(addr) => self.start_connect(addr, env)?,
            crate::transport::Target::Unix(path) => self.start_connect_unix(path, env)?,
        };
        self.tls_put(id, TlsSession::new(conn.into()));
        Ok(id)
    }

    /// Drives the handshake of connection `id` with what its socket has.
    pub(crate) fn tls_handshake(&mut self, id: ConnId) -> Handshake {
        let Some(Parts {
            core,
            session,
            out,
            sent,
        }) = self.tls_parts(id)
        else {
            return Handshake::Pending;
        };
        if core.out.is_some() {
            core.flush(sent);
        }
        let step = session.handshake(&core.stream, out);
        core.send_raw(out, sent);
        step
    }

    /// `Conn::write` on a TLS connection: `data` encrypted, the records
    /// written (or queued) as plain output is.
    pub(crate) fn tls_write(&mut self, id: ConnId, data: &[u8], max_write_buffer: usize) {
        let Some(Parts {
            core,
            session,
            out,
            sent,
        }) = self.tls_parts(id)
        else {
            return;
        };
        if !core.st.accepts_writes() || data.is_empty() {
            return;
        }
        if !core.st.has(Flag::TLS) {
            // The TCP connect is under way: rustls holds it (behind its
            // ClientHello) until the handshake is done.
            session.buffer(data);
            return;
        }
        session.encrypt(data, out);
        if core.st.is_open() {
            core.write(out, max_write_buffer, id, sent);
        } else {
            // Still handshaking: rustls holds the plaintext until the
            // handshake is done; what it made (nothing yet) goes as is.
            core.send_raw(out, sent);
        }
    }

    /// Our close_notify on connection `id`, ahead of its FIN (a close, a
    /// half-close, a drain's close). Not on an abort, nor twice.
    pub(crate) fn tls_close_notify(&mut self, id: ConnId) {
        let Some(Parts {
            core,
            session,
            out,
            sent,
        }) = self.tls_parts(id)
        else {
            return;
        };
        if !core.st.accepts_writes() || !core.st.has(Flag::TLS) {
            return;
        }
        session.close_notify(out);
        core.send_raw(out, sent);
    }
}
