use super::*;

// Fixtures, named after the state they build.

fn state_open() -> State {
    State::new(0)
}

fn state_flushing() -> State {
    let mut s = state_open();
    assert_eq!(s.request_close(true, || 150), Action::None);
    assert_eq!(s.phase(), Phase::Flushing);
    s
}

fn state_draining() -> State {
    let mut s = state_open();
    assert_eq!(s.request_close(false, || 150), Action::ShutdownWrite);
    assert_eq!(s.phase(), Phase::Draining);
    s
}

fn name(s: &State) -> &'static str {
    s.cause_name().unwrap_or("none")
}

// Tests for the slot allocator.

#[test]
fn slots_stale_id_misses_reused_slot() {
    let mut slots = Slots::with_capacity(0);
    let (a, _) = slots.insert("a");
    assert_eq!(slots.remove(a), Some("a"));
    let (b, _) = slots.insert("b");
    assert_eq!(a.index(), b.index(), "the slot is reused");
    assert_ne!(a, b, "with a new generation");
    assert_eq!(slots.get_mut(a), None, "a stale event for `a` misses `b`");
    assert_eq!(slots.remove(a), None);
    assert_eq!(slots.get_mut(b), Some(&mut "b"));
}

#[test]
fn slots_token_round_trip() {
    let mut slots = Slots::with_capacity(0);
    for _ in 0..5 {
        let (id, _) = slots.insert(());
        slots.remove(id);
    }
    let (id, _) = slots.insert(());
    assert_eq!(slots.id_from_token(id.token()), Some(id));
    assert_eq!(slots.id_from_token(mio::Token(LISTENER_BIT | 3)), None);
    assert_eq!(slots.id_from_token(mio::Token(usize::MAX)), None);
}

#[test]
fn slots_id_of_another_reactor_finds_nothing() {
    let mut a = Slots::with_capacity(0);
    let mut b = Slots::with_capacity(0);
    let (ida, _) = a.insert("a");
    let (idb, _) = b.insert("b");
    assert_eq!(ida.index(), idb.index(), "same slot, same generation");
    assert_ne!(ida, idb);
    assert!(!b.owns(ida));
    assert_eq!(b.get_foreign(ida), None);
    assert_eq!(b.get_foreign(idb), Some(&"b"));
    assert_eq!(a.get_foreign(ida), Some(&"a"));
}

#[test]
fn slots_stale_event_in_same_batch() {
    // An event batch holds tokens for a connection closed earlier in the
    // batch, whose slot an accept (also earlier in the batch) reused.
    let mut slots = Slots::with_capacity(0);
    let (old, _) = slots.insert(1);
    let batch = [old.token(), old.token()];
    slots.remove(old);
    let (new, _) = slots.insert(2);
    for t in batch {
        let id = slots.id_from_token(t).unwrap();
        assert!(slots.get_mut(id).is_none());
    }
    assert_eq!(slots.get_mut(new), Some(&mut 2));
}

// Tests for the Open state.

#[test]
fn open_eof_tells_handler_and_notes_peer_closed() {
    let mut s = state_open();
    assert!(s.eof());
    assert_eq!(s.phase(), Phase::Open, "the handler decides");
    assert_eq!(name(&s), "PeerClosed");
    assert!(!s.may_read(), "nothing is read after a FIN");
}

#[test]
fn open_close_without_pending_sends_fin() {
    let mut s = state_draining();
    assert_eq!(name(&s), "Local");
    assert_eq!(s.next_timer(), 150);
    assert!(s.may_read(), "input is drained");
    assert!(!s.eof(), "handler hears nothing more");
    assert_eq!(s.phase(), Phase::Done);
    assert_eq!(name(&s), "Local", "first cause wins");
}

#[test]
fn open_close_after_fin_is_peer_closed_and_done() {
    let mut s = state_open();
    s.eof();
    assert_eq!(s.request_close(false, || 50), Action::None);
    assert_eq!(s.phase(), Phase::Done);
    assert_eq!(name(&s), "PeerClosed");
}

#[test]
fn open_abort_is_local_and_abortive() {
    let mut s = state_open();
    s.request_abort();
    assert_eq!(s.phase(), Phase::Done);
    assert!(s.has(Flag::ABORTIVE));
    assert_eq!(name(&s), "Local");
}

#[test]
fn open_fail_first_cause_wins() {
    let mut s = state_open();
    s.fail(CloseReason::Reset);
    s.fail(CloseReason::Backpressure);
    assert_eq!(name(&s), "Reset");
}

#[test]
fn open_panic_always_recorded() {
    let mut s = state_open();
    s.eof();
    s.fail(CloseReason::Panicked);
    assert_eq!(name(&s), "Panicked");
}

#[test]
fn open_paused_does_not_read() {
    let mut s = state_open();
    s.pause();
    assert!(!s.may_read());
}

#[test]
fn open_idle_timer_rearms_and_fires() {
    let mut s = State::new(1000);
    s.heard_from_peer(10);
    assert_eq!(s.next_timer(), 1011);
    s.heard_from_peer(500);
    assert_eq!(s.next_timer(), 1501);
    assert!(!s.expire(1011), "re-armed: not due");
    assert!(s.expire(1501));
    assert_eq!(name(&s), "Idle");
}

#[test]
fn open_deadline_not_extended_by_data() {
    let mut s = State::new(1000);
    s.set_deadline(300);
    for now in (0..300).step_by(100) {
        s.heard_from_peer(now);
        assert!(!s.expire(now));
    }
    assert!(s.expire(300));
    assert_eq!(name(&s), "Deadline");
}

// Tests for the Flushing state.

#[test]
fn flushing_flushed_sends_fin_then_drains() {
    let mut s = state_flushing();
    assert_eq!(s.flushed(), Action::ShutdownWrite);
    assert_eq!(s.phase(), Phase::Draining);
    assert_eq!(s.next_timer(), 150, "the close timeout runs from close()");
}

#[test]
fn flushing_eof_keeps_flushing_then_done() {
    let mut s = state_flushing();
    assert!(!s.eof());
    assert_eq!(s.phase(), Phase::Flushing);
    assert_eq!(s.flushed(), Action::None);
    assert_eq!(s.phase(), Phase::Done);
    assert_eq!(name(&s), "Local");
}

#[test]
fn flushing_close_timeout_is_a_failure_and_a_reset() {
    let mut s = state_flushing();
    assert!(!s.expire(149));
    assert!(s.expire(150));
    assert_eq!(s.phase(), Phase::Done);
    assert!(s.has(Flag::ABORTIVE), "the peer must not see a clean EOF");
    assert_eq!(name(&s), "FlushTimeout", "output was lost: not Local");
}

#[test]
fn flushing_after_peer_fin_timeout_is_still_a_failure() {
    let mut s = state_open();
    s.eof();
    s.request_close(true, || 150);
    assert_eq!(s.phase(), Phase::Flushing);
    assert!(s.expire(150));
    assert_eq!(name(&s), "FlushTimeout");
}

#[test]
fn flushing_write_error_replaces_local() {
    let mut s = state_flushing();
    s.fail(CloseReason::Reset);
    assert_eq!(name(&s), "Reset");
}

#[test]
fn flushing_ignores_deadline_idle_and_pause() {
    let mut s = state_flushing();
    s.clear_deadline();
    assert_eq!(s.next_timer(), 150, "the close timeout stays");
    s.set_deadline(1);
    assert_eq!(s.next_timer(), 150, "and is not cut short");
    s.set_idle_timeout(5, || 0);
    assert_eq!(s.next_timer(), 150);
    s.pause();
    assert!(!s.has(Flag::PAUSED));
    assert!(s.may_read(), "input is still drained");
}

#[test]
fn draining_ignores_deadline_calls() {
    let mut s = state_draining();
    s.clear_deadline();
    s.set_deadline(1);
    assert_eq!(s.next_timer(), 150);
    assert!(s.expire(150));
    assert_eq!(name(&s), "Local", "output went out before our FIN");
    assert!(!s.has(Flag::ABORTIVE));
}

// Tests for the Done state.

#[test]
fn done_has_no_timer_and_ignores_calls() {
    let mut s = state_open();
    s.set_deadline(100);
    s.request_abort();
    assert_eq!(s.next_timer(), 0);
    s.set_deadline(5);
    s.set_idle_timeout(5, || 0);
    s.resume();
    assert_eq!(s.request_close(true, || 9), Action::None);
    s.fail(CloseReason::Reset);
    assert_eq!(s.next_timer(), 0);
    assert_eq!(s.phase(), Phase::Done);
    assert_eq!(name(&s), "Local");
}

#[test]
fn flushing_idle_does_not_fire() {
    let mut s = State::new(10);
    s.heard_from_peer(0);
    s.request_close(true, || 1000);
    assert!(!s.expire(500));
    assert_eq!(s.phase(), Phase::Flushing);
    assert_eq!(s.next_timer(), 1000, "only the close timeout is armed");
}

#[test]
fn flushing_replaces_open_deadline_with_close_timeout() {
    let mut s = state_open();
    s.set_deadline(20);
    s.request_close(true, || 1010);
    assert!(!s.expire(20), "the open deadline no longer applies");
    assert_eq!(s.next_timer(), 1010);
    assert_eq!(name(&s), "Local");
}

#[test]
fn state_is_small() {
    // Most of what an idle connection costs; see BENCHMARKS.md (footprint).
    assert!(
        std::mem::size_of::<State>() <= 40,
        "{}",
        std::mem::size_of::<State>()
    );
}

// Tests for the Draining state.

#[test]
fn draining_close_again_is_noop() {
    let mut s = state_draining();
    assert_eq!(s.request_close(false, || 50), Action::None);
    assert_eq!(s.phase(), Phase::Draining);
}

#[test]
fn draining_error_ends_it_keeping_local() {
    let mut s = state_draining();
    s.fail(CloseReason::Reset);
    assert_eq!(s.phase(), Phase::Done);
    assert_eq!(name(&s), "Local");
}

// Tests for ticks.

#[test]
fn ticks_round_up() {
    assert_eq!(ticks(Duration::from_millis(5)), 5);
    assert_eq!(ticks(Duration::from_micros(5001)), 6);
    assert_eq!(ticks(Duration::ZERO), 0);
    assert!(ticks(Duration::MAX) > 1 << 40);
}

// Tests for LingeringClose::WhenUnread: the INPUT_DRAINED flag.

/// An open connection whose last read found the socket empty, as the read
/// path marks it under `WhenUnread`.
fn state_open_drained() -> State {
    let mut s = state_open();
    s.set(Flag::INPUT_DRAINED, true);
    s
}

#[test]
fn close_after_a_drained_read_skips_the_wait_for_the_fin() {
    let mut s = state_open_drained();
    assert_eq!(s.request_close(false, || 150), Action::None, "no shutdown");
    assert_eq!(s.phase(), Phase::Done);
    assert_eq!(name(&s), "Local");
    assert_eq!(s.end_phase(), crate::record::EndPhase::Open);
    assert_eq!(s.next_timer(), 0, "no close timeout left armed");
}

#[test]
fn close_after_a_drained_read_still_flushes_first() {
    let mut s = state_open_drained();
    assert_eq!(s.request_close(true, || 150), Action::None);
    assert_eq!(s.phase(), Phase::Flushing, "queued output goes out first");
    assert_eq!(s.next_timer(), 150, "under the close timeout");
    assert_eq!(s.flushed(), Action::None, "then no shutdown, no wait");
    assert_eq!(s.phase(), Phase::Done);
    assert_eq!(s.end_phase(), crate::record::EndPhase::Flushing);
}

#[test]
fn input_that_came_since_makes_close_linger() {
    let mut s = state_open_drained();
    s.note_event(false, true); // a readable event
    assert_eq!(s.request_close(false, || 150), Action::ShutdownWrite);
    assert_eq!(s.phase(), Phase::Draining);
    assert_eq!(
        s.end_phase(),
        crate::record::EndPhase::Open,
        "not ended yet"
    );
}

#[test]
fn a_hang_up_event_alone_keeps_the_drained_mark() {
    // EPOLLRDHUP without EPOLLIN: no input came, the FIN read follows.
    let mut s = state_open_drained();
    s.note_event(true, false);
    assert!(s.has(Flag::INPUT_DRAINED));
    assert!(s.has(Flag::HUP_HINT));
}

#[test]
fn pausing_forgets_that_input_was_drained() {
    let mut s = state_open_drained();
    s.pause();
    s.resume();
    assert_eq!(s.request_close(false, || 150), Action::ShutdownWrite);
    assert_eq!(s.phase(), Phase::Draining);
}

#[test]
fn a_drain_always_lingers() {
    // Its FIN may cross a request the peer is sending (nginx PR #437).
    let mut s = state_open_drained();
    assert_eq!(s.request_drain_close(false, || 150), Action::ShutdownWrite);
    assert_eq!(s.phase(), Phase::Draining);
    assert_eq!(name(&s), "Drained");
}

#[test]
fn end_phases_fit_two_bits_beside_the_flag() {
    // Bits 12-13 hold the end phase; bit 14 (INPUT_DRAINED) is apart.
    use crate::record::EndPhase;
    let mut s = state_flushing();
    s.set(Flag::INPUT_DRAINED, false);
    s.fail(CloseReason::Shutdown);
    assert_eq!(s.end_phase(), EndPhase::Flushing);
    let mut s = state_draining();
    s.set(Flag::INPUT_DRAINED, true);
    assert!(!s.eof());
    assert_eq!(s.end_phase(), EndPhase::WaitingForPeerFin);
    let mut s = State::connecting(0, 100);
    s.fail(CloseReason::Shutdown);
    assert_eq!(s.end_phase(), EndPhase::Connecting);
}

#[test]
fn peer_reset_is_fail_with_reset_in_every_phase() {
    // The read path's shortcut must decide exactly as fail(Reset) does.
    type Start = (&'static str, fn() -> State);
    let starts: [Start; 6] = [
        ("open", state_open),
        ("flushing", state_flushing),
        ("draining", state_draining),
        ("connecting", || State::connecting(0, 100)),
        ("done", || {
            let mut s = state_open();
            s.fail(CloseReason::Idle);
            s
        }),
        ("flushing after a panic", || {
            let mut s = state_flushing();
            s.fail(CloseReason::Panicked);
            s
        }),
    ];
    for (what, make) in starts {
        let (mut a, mut b) = (make(), make());
        a.fail(CloseReason::Reset);
        b.peer_reset();
        assert_eq!(a.phase(), b.phase(), "{what}");
        assert_eq!(name(&a), name(&b), "{what}");
        assert_eq!(a.end_phase(), b.end_phase(), "{what}");
        assert_eq!(a.next_timer(), b.next_timer(), "{what}");
    }
}
