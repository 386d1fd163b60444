//! TLS over a connection's [`Stream`] (feature `tls`): rustls' sans-IO
//! connection, driven by the reactor. Ciphertext is read from the socket
//! straight into rustls; plaintext comes out into the reactor's read buffer
//! for `on_data`; what rustls has to send (handshake messages, encrypted
//! output, alerts, close_notify) is taken out as bytes for the connection's
//! ordinary output path, so flushing, backpressure and the close timeout
//! work on TLS bytes as on plain ones.
//!
//! How a TLS stream ends, as rustls tells it and as hangup reports it:
//!
//! | what happened | rustls | [`CloseReason`] |
//! |---|---|---|
//! | close_notify, after all data | `reader().read()` is `Ok(0)` | `PeerClosed` |
//! | TCP EOF without close_notify | `reader().read()` is `UnexpectedEof` | `TlsTruncated { at_record_boundary }` |
//! | a fatal alert from the peer | `Error::AlertReceived` | `TlsAlert` |
//! | our side rejected the handshake | any other `Error` while handshaking | `TlsHandshakeFailed` |
//! | an error after the handshake | any other `Error` | `Error` (kind `InvalidData`) |
//!
//! Where the end fell (between records or inside one) is told by following
//! the record headers of the ciphertext read ([`RecordBoundary`]), which
//! rustls does not expose.
//!
//! A close_notify followed at once by a reset (as Envoy sends on a reset
//! close) is reported in the order it is read: `PeerClosed` if the
//! close_notify was read first; `Reset` if the reset came before it was
//! read, since Linux drops what was unread when a reset arrives. The first
//! cause seen wins either way, so it is one or the other, never both.
//!
//! rustls' "received plaintext buffer full" is backpressure, never an
//! error: the plaintext waiting is delivered first, and ciphertext is read
//! again after it; a handler that pauses reading stops both.

use std::io::{self, Read, Write};

use rustls::Connection;

use super::Stream;
use crate::close::{reason_from_error, CloseReason, ReadOutcome, TlsAlert};

/// Follows the TLS record framing of a byte stream: each record is a
/// 5-byte header (type, version, 16-bit length) and that many bytes. Pure.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordBoundary {
    /// Header bytes seen of the current record (0 to 5).
    header: u8,
    /// The length field as read so far.
    len: u16,
    /// Body bytes of the current record still to come.
    left: u16,
}

impl RecordBoundary {
    /// Takes in bytes as they were read from the peer.
    pub(crate) fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.left > 0 {
                let n = bytes.len().min(usize::from(self.left));
                self.left -= n as u16;
                bytes = &bytes[n..];
                continue;
            }
            // In a header: byte 3 and 4 are the length.
            match self.header {
                3 => self.len = u16::from(bytes[0]) << 8,
                4 => self.len |= u16::from(bytes[0]),
                _ => {}
            }
            self.header += 1;
            bytes = &bytes[1..];
            if self.header == 5 {
                self.header = 0;
                self.left = self.len;
                self.len = 0;
            }
        }
    }

    /// Whether the bytes so far end exactly between two records.
    pub(crate) fn at_boundary(&self) -> bool {
        self.header == 0 && self.left == 0
    }
}

/// The socket as rustls reads it, noting the record framing on the way.
///
/// rustls asks for at most 4 KiB at a time; a `recv` of each would make
/// bulk TLS cost a syscall per 4 KiB. So the socket is read in pieces of up
/// to [`READ_AHEAD`] into the session's `ahead` buffer, handed to rustls
/// from there, and the buffer is given back once it is empty and the socket
/// would block: an idle connection holds none.
struct Source<'a> {
    stream: &'a Stream,
    boundary: &'a mut RecordBoundary,
    ahead: &'a mut ReadAhead,
}

/// Ciphertext read from the socket and not yet handed to rustls.
#[derive(Debug, Default)]
struct ReadAhead {
    buf: Vec<u8>,
    pos: usize,
}

/// How much ciphertext one `recv` takes at most.
const READ_AHEAD: usize = 64 * 1024;

impl Read for Source<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let ahead = &mut *self.ahead;
        if ahead.pos == ahead.buf.len() {
            ahead.buf.resize(READ_AHEAD, 0);
            ahead.pos = 0;
            match self.stream.read(&mut ahead.buf) {
                Ok(0) => {
                    ahead.buf = Vec::new();
                    return Ok(0);
                }
                Ok(n) => ahead.buf.truncate(n),
                Err(e) => {
                    // Nothing is left over: give the memory back.
                    ahead.buf = Vec::new();
                    return Err(e);
                }
            }
        }
        let n = buf.len().min(ahead.buf.len() - ahead.pos);
        buf[..n].copy_from_slice(&ahead.buf[ahead.pos..ahead.pos + n]);
        ahead.pos += n;
        self.boundary.feed(&buf[..n]);
        Ok(n)
    }
}

/// One connection's TLS state.
pub(crate) struct TlsSession {
    pub(crate) conn: Connection,
    boundary: RecordBoundary,
    ahead: ReadAhead,
    /// The peer's FIN was read.
    eof: bool,
}

impl std::fmt::Debug for TlsSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSession")
            .field("handshaking", &self.conn.is_handshaking())
            .field("eof", &self.eof)
            .finish_non_exhaustive()
    }
}

/// Where a handshake stands after the bytes that were there.
#[derive(Debug)]
pub(crate) enum Handshake {
    /// More bytes are needed.
    Pending,
    /// Done: the connection is open (application data may follow).
    Done,
    /// It failed, for this reason.
    Failed(CloseReason),
}

impl TlsSession {
    pub(crate) fn new(mut conn: Connection) -> TlsSession {
        // hangup bounds the connection's output itself (max_write_buffer,
        // on the ciphertext): rustls' own limit would make writes partial.
        conn.set_buffer_limit(None);
        TlsSession {
            conn,
            boundary: RecordBoundary::default(),
            ahead: ReadAhead::default(),
            eof: false,
        }
    }

    /// Reads what the socket has for the handshake and processes it.
    /// What rustls has to send is appended to `out`.
    pub(crate) fn handshake(&mut self, stream: &Stream, out: &mut Vec<u8>) -> Handshake {
        let step = loop {
            let mut src = Source {
                stream,
                boundary: &mut self.boundary,
                ahead: &mut self.ahead,
            };
            match self.conn.read_tls(&mut src) {
                Ok(0) => {
                    break Handshake::Failed(CloseReason::TlsHandshakeFailed(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    )))
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    break if self.conn.is_handshaking() {
                        Handshake::Pending
                    } else {
                        Handshake::Done
                    };
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Handshake::Failed(CloseReason::TlsHandshakeFailed(e)),
            }
            if let Err(e) = self.conn.process_new_packets() {
                break Handshake::Failed(reason_of(e, true));
            }
            if !self.conn.is_handshaking() {
                break Handshake::Done;
            }
        };
        self.take_output(out);
        step
    }

    /// One step of reading an open connection: plaintext already decrypted
    /// first, else more ciphertext from the socket. What rustls has to send
    /// in answer (an alert, a key update) is appended to `out`.
    pub(crate) fn read(
        &mut self,
        stream: &Stream,
        buf: &mut [u8],
        out: &mut Vec<u8>,
    ) -> ReadOutcome {
        let outcome = self.read_step(stream, buf);
        if self.conn.wants_write() {
            self.take_output(out);
        }
        outcome
    }

    fn read_step(&mut self, stream: &Stream, buf: &mut [u8]) -> ReadOutcome {
        loop {
            match self.conn.reader().read(buf) {
                Ok(0) => return ReadOutcome::Eof,
                Ok(n) => return ReadOutcome::Data(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    return ReadOutcome::Closed(CloseReason::TlsTruncated {
                        at_record_boundary: self.boundary.at_boundary(),
                    })
                }
                Err(e) => return ReadOutcome::Closed(CloseReason::Error(e)),
            }
            if self.eof {
                // rustls answers Ok(0) or UnexpectedEof once it saw the EOF.
                return ReadOutcome::Closed(CloseReason::TlsTruncated {
                    at_record_boundary: self.boundary.at_boundary(),
                });
            }
            let mut src = Source {
                stream,
                boundary: &mut self.boundary,
                ahead: &mut self.ahead,
            };
            match self.conn.read_tls(&mut src) {
                Ok(0) => self.eof = true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return ReadOutcome::WouldBlock,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // "received plaintext buffer full": the plaintext is taken
                // first at the top of the loop, so this is only a pause.
                Err(e) if e.kind() == io::ErrorKind::Other && !self.conn.wants_read() => continue,
                Err(e) => return ReadOutcome::Closed(reason_from_error(e)),
            }
            if let Err(e) = self.conn.process_new_packets() {
                return ReadOutcome::Closed(reason_of(e, false));
            }
        }
    }

    /// Encrypts `data` (buffered by rustls while the handshake runs) and
    /// appends the records to `out`.
    pub(crate) fn encrypt(&mut self, data: &[u8], out: &mut Vec<u8>) {
        // With no buffer limit, rustls takes it all.
        let _ = self.conn.writer().write_all(data);
        self.take_output(out);
    }

    /// Holds `data` to send once the handshake is done (before the TCP
    /// connect completes, nothing may be sent yet).
    pub(crate) fn buffer(&mut self, data: &[u8]) {
        let _ = self.conn.writer().write_all(data);
    }

    /// Our close_notify, appended to `out`.
    pub(crate) fn close_notify(&mut self, out: &mut Vec<u8>) {
        self.conn.send_close_notify();
        self.take_output(out);
    }

    /// Everything rustls has to send, appended to `out`.
    pub(crate) fn take_output(&mut self, out: &mut Vec<u8>) {
        while self.conn.wants_write() {
            if self.conn.write_tls(out).is_err() {
                break;
            }
        }
    }
}

/// What a rustls error ends a connection as. Pure.
pub(crate) fn reason_of(e: rustls::Error, handshaking: bool) -> CloseReason {
    match e {
        rustls::Error::AlertReceived(desc) => CloseReason::TlsAlert(TlsAlert {
            code: u8::from(desc),
        }),
        e if handshaking => {
            CloseReason::TlsHandshakeFailed(io::Error::new(io::ErrorKind::InvalidData, e))
        }
        e => CloseReason::Error(io::Error::new(io::ErrorKind::InvalidData, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_boundaries_are_followed_across_reads() {
        let mut b = RecordBoundary::default();
        assert!(b.at_boundary());
        // A record of 3 bytes, fed a byte at a time.
        let rec = [23u8, 3, 3, 0, 3, 1, 2, 3];
        for (i, byte) in rec.iter().enumerate() {
            b.feed(std::slice::from_ref(byte));
            assert_eq!(b.at_boundary(), i == rec.len() - 1, "after byte {i}");
        }
        // Two records in one read, then half a header.
        let mut two = rec.to_vec();
        two.extend_from_slice(&[23, 3, 3, 1, 0]);
        two.extend(std::iter::repeat_n(0u8, 256));
        b.feed(&two);
        assert!(b.at_boundary());
        b.feed(&[23, 3]);
        assert!(!b.at_boundary());
        b.feed(&[3, 0, 0]); // an empty record
        assert!(b.at_boundary());
    }

    #[test]
    fn rustls_errors_become_typed_reasons() {
        use rustls::AlertDescription;
        let alert = reason_of(
            rustls::Error::AlertReceived(AlertDescription::UnknownCA),
            true,
        );
        assert_eq!(alert, CloseReason::TlsAlert(TlsAlert { code: 48 }));
        let alert_later = reason_of(
            rustls::Error::AlertReceived(AlertDescription::BadRecordMac),
            false,
        );
        assert_eq!(alert_later, CloseReason::TlsAlert(TlsAlert { code: 20 }));
        let hs = reason_of(rustls::Error::NoApplicationProtocol, true);
        match hs {
            CloseReason::TlsHandshakeFailed(e) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                let inner = e.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>());
                assert_eq!(inner, Some(&rustls::Error::NoApplicationProtocol));
            }
            other => panic!("{other:?}"),
        }
        let after = reason_of(rustls::Error::DecryptError, false);
        assert!(matches!(after, CloseReason::Error(e) if e.kind() == io::ErrorKind::InvalidData));
    }
}
