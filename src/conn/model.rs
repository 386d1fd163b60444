//! Model-based test of the connection state machine.
//!
//! Random sequences of handler calls (write, close, shutdown_write, abort,
//! pause, resume, set/clear deadline, set_idle_timeout) and socket events
//! (connected, connect failed, data, EOF, read and write errors, writable,
//! time passing, a panic, a shutdown), on accepted and outbound connections,
//! drive the
//! real [`State`] exactly as the reactor and [`Conn`](super::Conn) do, and a
//! small reference model beside it. After every step:
//!
//! - the phases agree, and so do the armed timers;
//! - once Done, nothing changes it again and no timer is armed;
//! - while closing, the close timeout is armed, at the time `close()` set;
//! - our FIN goes out only with nothing queued, and at most once;
//!
//! and when the connection ends (once):
//!
//! - the reported reason is the first cause observed (a panic always wins; a
//!   failure while flushing replaces `Local`/`PeerClosed`);
//! - output still queued means a reset, never a clean close; so a clean
//!   `Local` means every byte queued before `close()` went out before our FIN.
//!
//! `HANGUP_MODEL_SEED` replays a run; `HANGUP_MODEL_CASES` sets how many
//! sequences (default 20,000). A failure prints the seed and the sequence,
//! shrunk to the steps that matter.

use std::io;

use super::state::{Action, Flag, Phase, State};
use crate::close::{reason_from_error, CloseReason};

mod reference;
use reference::{Model, Start};

/// `Config::close_timeout`, in ticks.
const CLOSE: u64 = 100;
/// `Config::connect_timeout`, in ticks (as the reactor arms it).
const CONNECT: u64 = 150;
/// `Config::max_write_buffer`.
const MAX_WB: usize = 1_000;

#[derive(Clone, Copy, Debug)]
enum Call {
    Write(usize),
    Close,
    ShutdownWrite,
    Abort,
    Pause,
    Resume,
    SetDeadline(u64),
    ClearDeadline,
    SetIdle(u32),
}

#[derive(Clone, Debug)]
enum Step {
    /// A callback (or `Handle` commands) making these calls in a row.
    Calls(Vec<Call>),
    Connected,
    ConnectFailed(io::ErrorKind),
    Data,
    /// A read found the socket empty, under `LingeringClose::WhenUnread`.
    Drained,
    Eof,
    ReadError(io::ErrorKind),
    WriteError(io::ErrorKind),
    Writable(usize),
    Advance(u64),
    Panic,
    Shutdown,
}

const ERRORS: [io::ErrorKind; 5] = [
    io::ErrorKind::ConnectionReset,
    io::ErrorKind::BrokenPipe,
    io::ErrorKind::TimedOut,
    io::ErrorKind::HostUnreachable,
    io::ErrorKind::PermissionDenied,
];

fn gen_call(rng: &mut fastrand::Rng) -> Call {
    match rng.u8(0..18) {
        0..=4 => Call::Write(rng.usize(1..=400)),
        5..=7 => Call::Close,
        16 | 17 => Call::ShutdownWrite,
        8 => Call::Abort,
        9 => Call::Pause,
        10 => Call::Resume,
        11 | 12 => Call::SetDeadline(rng.u64(0..=300)),
        13 => Call::ClearDeadline,
        _ => Call::SetIdle(rng.u32(0..=200)),
    }
}

fn gen_step(rng: &mut fastrand::Rng) -> Step {
    match rng.u8(0..23) {
        20 | 21 => Step::Connected,
        22 => Step::ConnectFailed(ERRORS[rng.usize(..ERRORS.len())]),
        0..=6 => Step::Calls((0..rng.usize(1..=4)).map(|_| gen_call(rng)).collect()),
        7 => Step::Data,
        8 => {
            if rng.bool() {
                Step::Drained
            } else {
                Step::Data
            }
        }
        9 => Step::Eof,
        10 => Step::ReadError(ERRORS[rng.usize(..ERRORS.len())]),
        11 => Step::WriteError(ERRORS[rng.usize(..ERRORS.len())]),
        12..=14 => Step::Writable(rng.usize(1..=600)),
        15..=17 => Step::Advance(rng.u64(1..=120)),
        18 => Step::Panic,
        _ => Step::Shutdown,
    }
}

/// The real state plus what the reactor keeps beside it.
struct Real {
    st: State,
    /// `Core::out`'s pending bytes.
    pending: usize,
}

struct Run {
    now: u64,
    real: Real,
    model: Model,
    finished: bool,
    fins: u32,
}

type Check = Result<(), String>;

fn ensure(cond: bool, what: impl FnOnce() -> String) -> Check {
    if cond {
        Ok(())
    } else {
        Err(what())
    }
}

impl Run {
    fn new(start: Start) -> Run {
        let st = match start {
            Start::Open => State::new(0),
            Start::Connecting => State::connecting(0, CONNECT),
            Start::Handshaking => {
                let mut st = State::connecting(0, CONNECT);
                st.set(Flag::TLS, true);
                st
            }
        };
        Run {
            now: 0,
            real: Real { st, pending: 0 },
            model: Model::new(start),
            finished: false,
            fins: 0,
        }
    }

    /// Our FIN goes out (`Action::ShutdownWrite`): nothing may be queued,
    /// and it goes once.
    fn act(&mut self, action: Action) -> Check {
        if action == Action::ShutdownWrite {
            self.fins += 1;
            ensure(self.real.pending == 0, || {
                format!("FIN sent with {} bytes queued", self.real.pending)
            })?;
            ensure(self.fins == 1, || "FIN sent twice".into())?;
        }
        Ok(())
    }

    fn call(&mut self, call: Call) -> Check {
        let (now, r, m) = (self.now, &mut self.real, &mut self.model);
        match call {
            Call::Write(n) => {
                // Core::write: the kernel takes nothing here.
                if r.st.accepts_writes() {
                    r.pending += n;
                    if r.pending > MAX_WB {
                        r.st.fail(CloseReason::Backpressure);
                    }
                }
                if m.accepts_writes() {
                    m.pending += n;
                    if m.pending > MAX_WB {
                        m.end(CloseReason::Backpressure);
                    }
                }
            }
            Call::Close => {
                // Core::close
                let action = r.st.request_close(r.pending > 0, || now + CLOSE);
                self.act(action)?;
                self.model.close(now);
            }
            Call::ShutdownWrite => {
                // Core::shutdown_write
                let action = r.st.request_shutdown_write(r.pending > 0, || now + CLOSE);
                self.act(action)?;
                let m = &mut self.model;
                match m.phase {
                    Phase::Connecting if !m.write_closed => m.fin_pending = true,
                    Phase::Open if !m.fin_pending && !m.write_closed => {
                        if m.peer_fin {
                            m.close(now);
                        } else if m.pending > 0 {
                            m.fin_pending = true;
                        } else {
                            m.write_closed = true;
                        }
                    }
                    _ => {}
                }
            }
            Call::Abort => {
                // Conn::abort
                r.st.request_abort();
                if r.st.has(Flag::ABORTIVE) {
                    r.pending = 0;
                }
                if m.phase != Phase::Done {
                    m.first(CloseReason::Local);
                    m.abortive = true;
                    m.pending = 0;
                    m.phase = Phase::Done;
                }
            }
            Call::Pause => {
                r.st.pause();
                if matches!(m.phase, Phase::Open | Phase::Connecting) {
                    m.paused = true;
                    m.input_drained = false;
                }
            }
            Call::Resume => {
                r.st.resume();
                if matches!(m.phase, Phase::Open | Phase::Connecting) {
                    m.paused = false;
                }
            }
            Call::SetDeadline(after) => {
                r.st.set_deadline(now + after + 1);
                if m.phase == Phase::Open {
                    m.deadline = now + after + 1;
                }
            }
            Call::ClearDeadline => {
                r.st.clear_deadline();
                if m.phase == Phase::Open {
                    m.deadline = 0;
                }
            }
            Call::SetIdle(ms) => {
                r.st.set_idle_timeout(ms, || now);
                if m.phase == Phase::Open {
                    m.idle_ms = ms;
                    m.idle_at = if ms == 0 { 0 } else { now + u64::from(ms) + 1 };
                }
            }
        }
        Ok(())
    }

    fn event(&mut self, step: &Step) -> Check {
        let now = self.now;
        match *step {
            Step::Calls(_) => unreachable!(),
            Step::Connected => {
                // connect_event: connected, on_open, then a first flush (or a
                // FIN asked for while connecting, with nothing queued).
                let connected = self.real.st.connected(now);
                if connected && self.real.pending == 0 {
                    let action = self.real.st.drained();
                    self.act(action)?;
                }
                let m = &mut self.model;
                if m.phase == Phase::Connecting {
                    m.phase = Phase::Open;
                    m.connect_at = 0;
                    if m.pending == 0 {
                        m.drained();
                    }
                }
            }
            Step::ConnectFailed(kind) => {
                // What the connect (or the TLS handshake) failed with.
                let failed = |tls: bool| {
                    if tls {
                        CloseReason::TlsHandshakeFailed(kind.into())
                    } else {
                        CloseReason::ConnectFailed(kind.into())
                    }
                };
                if self.real.st.phase() == Phase::Connecting {
                    let tls = self.real.st.has(Flag::TLS);
                    self.real.st.fail(failed(tls));
                }
                if self.model.phase == Phase::Connecting {
                    let tls = self.model.tls;
                    self.model.end(failed(tls));
                }
            }
            Step::Data => {
                // conn_event: a readable event means input is unread again;
                // read_ready: read while may_read; deliver (and re-arm idle) while open.
                let r = &mut self.real;
                r.st.set(Flag::INPUT_DRAINED, false);
                self.model.input_drained = false;
                if r.st.may_read() && r.st.is_open() {
                    r.st.heard_from_peer(now);
                }
                let m = &mut self.model;
                if m.readable() && m.phase == Phase::Open && m.idle_ms != 0 {
                    m.idle_at = now + u64::from(m.idle_ms) + 1;
                }
            }
            Step::Drained => {
                // read_ready under WhenUnread: a short read or WouldBlock.
                if self.real.st.may_read() {
                    self.real.st.set(Flag::INPUT_DRAINED, true);
                }
                if self.model.readable() {
                    self.model.input_drained = true;
                }
            }
            Step::Eof => {
                // read_ready: on_read_closed (its calls are separate steps),
                // then both directions done if this side half-closed.
                let r = &mut self.real;
                if r.st.may_read() && r.st.eof() {
                    let action = r.st.after_read_closed(r.pending > 0, || now + CLOSE);
                    self.act(action)?;
                }
                let m = &mut self.model;
                if m.readable() {
                    m.peer_fin = true;
                    m.first(CloseReason::PeerClosed);
                    match m.phase {
                        Phase::Draining => m.phase = Phase::Done,
                        Phase::Open if m.fin_pending || m.write_closed => m.close(now),
                        _ => {}
                    }
                }
            }
            Step::ReadError(kind) => {
                let r = &mut self.real;
                if r.st.may_read() {
                    r.st.fail(reason_from_error(kind.into()));
                }
                if self.model.readable() {
                    self.model.end(reason_from_error(kind.into()));
                }
            }
            Step::WriteError(kind) => {
                // Core::flush hitting an error: the queue is dropped.
                let r = &mut self.real;
                let flushing = |p: Phase| matches!(p, Phase::Open | Phase::Flushing);
                if r.pending > 0 && flushing(r.st.phase()) {
                    r.pending = 0;
                    r.st.fail(reason_from_error(kind.into()));
                }
                let m = &mut self.model;
                if m.pending > 0 && flushing(m.phase) {
                    m.pending = 0;
                    m.end(reason_from_error(kind.into()));
                }
            }
            Step::Writable(k) => {
                // write_ready (a connecting socket is not flushed)
                let r = &mut self.real;
                let phase = r.st.phase();
                if r.pending > 0 && matches!(phase, Phase::Open | Phase::Flushing) {
                    r.pending -= k.min(r.pending);
                    if r.pending == 0 {
                        let action = if phase == Phase::Flushing {
                            r.st.flushed()
                        } else {
                            r.st.drained()
                        };
                        self.act(action)?;
                    }
                }
                let m = &mut self.model;
                if m.pending > 0 && matches!(m.phase, Phase::Open | Phase::Flushing) {
                    m.pending -= k.min(m.pending);
                    if m.pending == 0 {
                        match m.phase {
                            Phase::Flushing if m.peer_fin || m.input_drained => {
                                m.phase = Phase::Done
                            }
                            Phase::Flushing => m.phase = Phase::Draining,
                            _ => m.drained(),
                        }
                    }
                }
            }
            Step::Advance(dt) => {
                self.now += dt;
                let now = self.now;
                // The wheel may fire early (lazy re-arm): expire must cope.
                self.real.st.expire(now);
                let m = &mut self.model;
                let due = |t: u64| t != 0 && t <= now;
                match m.phase {
                    Phase::Connecting if due(m.connect_at) && m.tls => {
                        m.end(CloseReason::TlsHandshakeTimeout)
                    }
                    Phase::Connecting if due(m.connect_at) => m.end(CloseReason::ConnectFailed(
                        io::Error::from(io::ErrorKind::TimedOut),
                    )),
                    Phase::Flushing if due(m.close_at) => {
                        m.abortive = true;
                        m.end(CloseReason::FlushTimeout);
                    }
                    Phase::Draining if due(m.close_at) => m.phase = Phase::Done,
                    Phase::Open if due(m.deadline) => m.end(CloseReason::Deadline),
                    Phase::Open if due(m.idle_at) => m.end(CloseReason::Idle),
                    _ => {}
                }
            }
            Step::Panic => {
                // deliver: only an open connection gets callbacks.
                if self.real.st.is_open() {
                    self.real.st.fail(CloseReason::Panicked);
                }
                if self.model.phase == Phase::Open {
                    self.model.end(CloseReason::Panicked);
                }
            }
            Step::Shutdown => {
                self.real.st.fail(CloseReason::Shutdown);
                self.model.end(CloseReason::Shutdown);
            }
        }
        Ok(())
    }

    /// After every step.
    fn invariants(&self, was_done: bool) -> Check {
        let (st, m) = (&self.real.st, &self.model);
        ensure(st.phase() == m.phase, || {
            format!("phase {} but the model says {}", st.phase(), m.phase)
        })?;
        ensure(!was_done || st.phase() == Phase::Done, || {
            "left Done".to_string()
        })?;
        ensure(self.real.pending == m.pending, || {
            format!(
                "{} bytes queued but the model says {}",
                self.real.pending, m.pending
            )
        })?;
        ensure(st.next_timer() == m.next_timer(), || {
            format!(
                "timer at {} but the model says {}",
                st.next_timer(),
                m.next_timer()
            )
        })?;
        match st.phase() {
            Phase::Flushing | Phase::Draining => ensure(
                st.next_timer() != 0 && st.next_timer() == m.close_at,
                || format!("closing without its close timeout ({})", st.next_timer()),
            ),
            Phase::Done => ensure(st.next_timer() == 0, || "timer armed after Done".into()),
            Phase::Connecting => ensure(st.next_timer() == CONNECT, || {
                format!(
                    "connecting without its connect timeout ({})",
                    st.next_timer()
                )
            }),
            Phase::Open => Ok(()),
        }?;
        ensure(
            st.has_any(Flag::FIN_PENDING, Flag::WRITE_CLOSED) == (m.fin_pending || m.write_closed)
                || st.phase() != Phase::Open,
            || "half-close state differs from the model".into(),
        )
    }

    /// The reactor's `finish`: once, when Done.
    fn finish(&mut self) -> Check {
        ensure(!self.finished, || "finished twice".into())?;
        self.finished = true;
        let abortive = self.real.st.has(Flag::ABORTIVE) || self.real.pending > 0;
        let reason = self.real.st.take_reason();
        let want = self.model.cause.take().unwrap_or(CloseReason::Local);
        ensure(reason.name() == want.name(), || {
            format!("reported {reason:?}, the first cause was {want:?}")
        })?;
        let model_abortive = self.model.abortive || self.model.pending > 0;
        ensure(abortive == model_abortive, || {
            format!("reset: {abortive}, the model says {model_abortive}")
        })?;
        // Output never vanishes behind a clean close.
        ensure(abortive || self.real.pending == 0, || {
            format!("clean close with {} bytes unsent", self.real.pending)
        })?;
        if matches!(reason, CloseReason::Local) && !abortive {
            ensure(self.model.pending == 0, || {
                "a clean Local with output lost".into()
            })?;
        }
        Ok(())
    }
}

/// Runs `steps`; returns the failure and how many steps it took.
fn run(start: Start, steps: &[Step]) -> Result<(), (usize, String)> {
    let mut r = Run::new(start);
    for (i, step) in steps.iter().enumerate() {
        let fail = |e: String| (i, e);
        if let Step::Calls(calls) = step {
            for &c in calls {
                let was_done = r.real.st.phase() == Phase::Done;
                r.call(c).map_err(fail)?;
                r.invariants(was_done).map_err(fail)?;
            }
        } else {
            r.event(step).map_err(fail)?;
            r.invariants(false).map_err(fail)?;
        }
        if r.real.st.phase() == Phase::Done {
            return r.finish().map_err(fail);
        }
    }
    // Still open: a shutdown ends it.
    r.event(&Step::Shutdown)
        .and_then(|()| r.invariants(false))
        .and_then(|()| r.finish())
        .map_err(|e| (steps.len(), e))
}

/// Drops steps (and calls within steps) while the run still fails.
fn shrink(start: Start, mut steps: Vec<Step>) -> Vec<Step> {
    loop {
        let mut smaller = false;
        let mut i = 0;
        while i < steps.len() {
            let mut t = steps.clone();
            t.remove(i);
            if run(start, &t).is_err() {
                steps = t;
                smaller = true;
                continue;
            }
            if let Step::Calls(calls) = &steps[i] {
                for j in 0..calls.len() {
                    let mut c = calls.clone();
                    c.remove(j);
                    let mut t = steps.clone();
                    t[i] = Step::Calls(c);
                    if run(start, &t).is_err() {
                        steps = t;
                        smaller = true;
                        break;
                    }
                }
            }
            i += 1;
        }
        if !smaller {
            return steps;
        }
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

#[test]
fn model_random_sequences_keep_every_invariant() {
    let seed = env_u64("HANGUP_MODEL_SEED").unwrap_or_else(|| fastrand::u64(..));
    let cases = env_u64("HANGUP_MODEL_CASES").unwrap_or(20_000);
    println!("model: {cases} sequences, HANGUP_MODEL_SEED={seed}");
    let mut ends = std::collections::BTreeMap::<&str, usize>::new();
    let mut steps_run = 0usize;
    for case in 0..cases {
        let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(case));
        let start = match rng.u8(0..6) {
            0 | 1 => Start::Connecting,
            2 => Start::Handshaking,
            _ => Start::Open,
        };
        let steps: Vec<Step> = (0..rng.usize(1..=40)).map(|_| gen_step(&mut rng)).collect();
        if let Err((at, e)) = run(start, &steps) {
            let small = shrink(start, steps.clone());
            let (at_small, e_small) = run(start, &small).expect_err("still fails");
            panic!(
                "HANGUP_MODEL_SEED={seed} case {case} (start: {start:?}): step {at}: {e}\n\
                 shrunk to {} steps (fails at step {at_small}: {e_small}):\n{small:#?}",
                small.len()
            );
        }
        steps_run += steps.len();
        // Tally how sequences ended, so a change in coverage shows.
        let mut r = Run::new(start);
        for step in &steps {
            match step {
                Step::Calls(calls) => {
                    for &c in calls {
                        let _ = r.call(c);
                    }
                }
                s => {
                    let _ = r.event(s);
                }
            }
            if r.real.st.phase() == Phase::Done {
                break;
            }
        }
        let name = if r.real.st.phase() == Phase::Done {
            r.real.st.take_reason().name()
        } else {
            "(open: Shutdown)"
        };
        *ends.entry(name).or_default() += 1;
    }
    println!("model: {steps_run} steps, endings: {ends:?}");
    for reason in [
        "PeerClosed",
        "Reset",
        "TimedOut",
        "Idle",
        "Deadline",
        "Local",
        "Backpressure",
        "FlushTimeout",
        "Shutdown",
        "Panicked",
        "Error",
        "ConnectFailed",
        "TlsHandshakeFailed",
        "TlsHandshakeTimeout",
    ] {
        assert!(
            cases < 1_000 || ends.contains_key(reason),
            "no sequence ended with {reason}: the generator lost coverage"
        );
    }
}

#[test]
fn model_catches_a_close_timeout_removed_after_close() {
    // The outside battery's first defect, as a sequence: it must pass now.
    let steps = vec![
        Step::Calls(vec![Call::Close, Call::ClearDeadline]),
        Step::Advance(CLOSE + 1),
    ];
    run(Start::Open, &steps).unwrap();
}
