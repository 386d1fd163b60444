//! The model test's reference: what a connection's state should do, written
//! plainly, beside the real [`State`](crate::conn::State) it is checked
//! against (`model.rs` drives both and compares them).

use super::{CLOSE, CONNECT};
use crate::close::CloseReason;
use crate::conn::Phase;

/// How a sequence's connection starts: open (accepted), connecting (an
/// outbound connect), or handshaking (TLS: the handshake under way, the
/// handshake timeout armed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Start {
    Open,
    Connecting,
    Handshaking,
}

/// The reference model: what should happen, written plainly.
#[derive(Debug)]
pub(super) struct Model {
    pub(super) phase: Phase,
    pub(super) pending: usize,
    pub(super) peer_fin: bool,
    pub(super) paused: bool,
    pub(super) deadline: u64,
    pub(super) idle_ms: u32,
    pub(super) idle_at: u64,
    pub(super) close_at: u64,
    pub(super) connect_at: u64,
    pub(super) fin_pending: bool,
    pub(super) write_closed: bool,
    pub(super) cause: Option<CloseReason>,
    pub(super) abortive: bool,
    /// A TLS handshake (not a TCP connect) is what Connecting waits for.
    pub(super) tls: bool,
    /// `LingeringClose::WhenUnread`: the last read found the socket empty
    /// and no input came since; a close need not wait for the peer's FIN.
    pub(super) input_drained: bool,
}

impl Model {
    pub(super) fn new(start: Start) -> Model {
        let connecting = start != Start::Open;
        Model {
            tls: start == Start::Handshaking,
            phase: if connecting {
                Phase::Connecting
            } else {
                Phase::Open
            },
            connect_at: if connecting { CONNECT } else { 0 },
            fin_pending: false,
            write_closed: false,
            pending: 0,
            peer_fin: false,
            paused: false,
            deadline: 0,
            idle_ms: 0,
            idle_at: 0,
            close_at: 0,
            cause: None,
            abortive: false,
            input_drained: false,
        }
    }

    pub(super) fn first(&mut self, r: CloseReason) {
        if self.cause.is_none() {
            self.cause = Some(r);
        }
    }

    pub(super) fn end(&mut self, r: CloseReason) {
        let panicked = matches!(self.cause, Some(CloseReason::Panicked));
        match self.phase {
            Phase::Done => {}
            _ if matches!(r, CloseReason::Panicked) => self.cause = Some(r),
            Phase::Flushing if !panicked => self.cause = Some(r),
            _ => self.first(r),
        }
        self.phase = Phase::Done;
    }

    pub(super) fn readable(&self) -> bool {
        match self.phase {
            Phase::Open => !self.paused && !self.peer_fin,
            Phase::Flushing | Phase::Draining => !self.peer_fin,
            Phase::Connecting | Phase::Done => false,
        }
    }

    pub(super) fn accepts_writes(&self) -> bool {
        matches!(self.phase, Phase::Open | Phase::Connecting)
            && !self.fin_pending
            && !self.write_closed
    }

    /// `close()`, as specified.
    pub(super) fn close(&mut self, now: u64) {
        match self.phase {
            Phase::Connecting => {
                self.first(CloseReason::Local);
                self.phase = Phase::Done;
            }
            Phase::Open => {
                self.first(CloseReason::Local);
                self.paused = false;
                self.fin_pending = false;
                self.idle_at = 0;
                self.deadline = 0;
                if self.pending == 0 && (self.peer_fin || self.input_drained) {
                    self.phase = Phase::Done;
                } else {
                    self.close_at = now + CLOSE;
                    self.phase = if self.pending > 0 {
                        Phase::Flushing
                    } else {
                        Phase::Draining
                    };
                }
            }
            _ => {}
        }
    }

    /// Everything queued went out while open: a FIN asked for goes now.
    pub(super) fn drained(&mut self) {
        if self.phase == Phase::Open && self.fin_pending {
            self.fin_pending = false;
            self.write_closed = true;
        }
    }

    pub(super) fn next_timer(&self) -> u64 {
        match self.phase {
            Phase::Open => [self.idle_at, self.deadline]
                .into_iter()
                .filter(|&t| t != 0)
                .min()
                .unwrap_or(0),
            Phase::Flushing | Phase::Draining => self.close_at,
            Phase::Connecting => self.connect_at,
            Phase::Done => 0,
        }
    }
}
