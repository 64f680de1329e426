//! Locks in the hub, on virtual time: requests answered and fanned out, one holder at a time,
//! renewals, releases, TTL expiry, a holder that leaves or dies, fencing of stale publishes,
//! joiners and polls seeing the current locks, and refusals.
//!
//! The harness's `MemoryLog` is the store (the authority); the virtual clock starts at Unix
//! time 1_700_000_000_000, which the rendered tokens and `until`s are shown relative to.

use super::*;

fn lock(id: &str, ttl_ms: u64) -> String {
    format!(r#"{{"type":"lock","room":"r","id":"{id}","name":"title","ttl_ms":{ttl_ms}}}"#)
}

fn renew(id: &str, token: u64, ttl_ms: u64) -> String {
    format!(
        r#"{{"type":"lock","room":"r","id":"{id}","name":"title","ttl_ms":{ttl_ms},"token":{token}}}"#
    )
}

fn unlock(id: &str, token: u64) -> String {
    format!(r#"{{"type":"unlock","room":"r","id":"{id}","name":"title","token":{token}}}"#)
}

fn fenced(id: &str, token: u64) -> String {
    format!(
        r#"{{"type":"publish","room":"r","id":"{id}","body":0,"if_lock":{{"name":"title","token":{token}}}}}"#
    )
}

/// A token as the harness's clock makes it: the grant's time in ms.
const T0: u64 = 1_700_000_000_000;

#[test]
fn one_holder_at_a_time_with_renewals_releases_and_growing_tokens() {
    let mut h = two_members();
    h.send(1, &lock("L1", 1000));
    assert_eq!(
        h.take(1),
        ["lock r granted title t+0 by ana@n-1 until+1000 re L1"]
    );
    assert_eq!(
        h.take(2),
        ["lock r granted title t+0 by ana@n-1 until+1000"]
    );
    h.send(2, &lock("L2", 1000));
    assert_eq!(h.take(2), ["nack r L2 lock_held"]);
    h.advance(Duration::from_millis(400));
    h.send(1, &renew("L3", T0, 1000));
    assert_eq!(
        h.take(1),
        ["lock r renewed title t+0 by ana@n-1 until+1400 re L3"]
    );
    assert_eq!(
        h.take(2),
        ["lock r renewed title t+0 by ana@n-1 until+1400"]
    );
    // Another user can neither renew nor release it, even stating the right token.
    h.send(2, &renew("L4", T0, 1000));
    h.send(2, &unlock("L5", T0));
    assert_eq!(h.take(2), ["nack r L4 lock_lost", "nack r L5 lock_lost"]);
    h.send(1, &unlock("L6", T0));
    assert_eq!(
        h.take(1),
        ["lock r released title t+0 by ana@n-1 until+400 re L6"]
    );
    assert_eq!(
        h.take(2),
        ["lock r released title t+0 by ana@n-1 until+400"]
    );
    h.send(2, &lock("L7", 1000));
    assert_eq!(
        h.take(2),
        ["lock r granted title t+400 by ben@n-2 until+1400 re L7"]
    );
    // The old holder's stale token is refused: renewals and fenced publishes alike.
    h.send(1, &renew("L8", T0, 1000));
    h.send(1, &fenced("f1", T0));
    assert_eq!(
        h.take(1),
        [
            "lock r granted title t+400 by ben@n-2 until+1400",
            "nack r L8 lock_lost",
            "nack r f1 lock_lost"
        ]
    );
    h.send(2, &fenced("f2", T0 + 400));
    assert_eq!(h.take(2), ["event r #1 f2 by ben 0", "ack r f2 #1"]);
}

/// The expiry timers pending for locks.
fn lock_timers(h: &Harness) -> usize {
    (h.hub.timers.iter())
        .filter(|timer| matches!(timer.0.1, Timer::LockExpiry(..)))
        .count()
}

#[test]
fn a_grant_renewed_many_times_keeps_one_expiry_timer_and_expires_once() {
    let mut h = two_members();
    h.send(1, &lock("L1", 1000));
    h.take(1);
    h.take(2);
    // Renewed every 400 ms: each renewal moves `until` past the timer armed before it.
    for round in 0..50u64 {
        h.advance(Duration::from_millis(400));
        h.send(1, &renew(&format!("R{round}"), T0, 1000));
        assert_eq!(h.take(2).len(), 1, "renewal {round} told");
        assert!(
            lock_timers(&h) <= 2,
            "after {} renewals, {} expiry timers pending",
            round + 1,
            lock_timers(&h)
        );
    }
    h.take(1);
    // The last renewal (at +20 s) runs to +21 s: it expires then, once, and no timer is left.
    h.advance(Duration::from_millis(999));
    assert_eq!(h.take(2), Vec::<String>::new());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.take(2),
        ["lock r expired title t+0 by ana@n-1 until+21000"]
    );
    assert_eq!(lock_timers(&h), 0);
}

/// A renewal that moves `until` sooner (a holder that dropped: the grace period) is honoured
/// at the sooner instant, though a timer for the later one is pending.
#[test]
fn a_grant_moved_sooner_expires_at_the_sooner_until() {
    let mut h = two_members();
    h.send(1, &lock("L1", 60_000));
    h.take(1);
    h.take(2);
    h.disconnect(1);
    assert_eq!(
        h.take(2),
        ["lock r renewed title t+0 by ana@n-1 until+5000"]
    );
    h.advance(Duration::from_millis(4999));
    assert_eq!(h.take(2), Vec::<String>::new());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.take(2),
        [
            "presence r v3 -ana",
            "lock r expired title t+0 by ana@n-1 until+5000"
        ]
    );
    h.advance(Duration::from_secs(60));
    assert_eq!(h.take(2), Vec::<String>::new());
    assert_eq!(lock_timers(&h), 0);
}
#[test]
fn a_grant_expires_at_its_until_and_its_fenced_publishes_are_refused_after() {
    let mut h = two_members();
    h.send(1, &lock("L1", 1000));
    h.take(1);
    h.take(2);
    h.advance(Duration::from_millis(999));
    assert_eq!(h.take(2), Vec::<String>::new());
    h.advance(Duration::from_millis(1));
    assert_eq!(
        h.take(1),
        ["lock r expired title t+0 by ana@n-1 until+1000"]
    );
    assert_eq!(
        h.take(2),
        ["lock r expired title t+0 by ana@n-1 until+1000"]
    );
    h.send(1, &fenced("f1", T0));
    assert_eq!(h.take(1), ["nack r f1 lock_lost"]);
    // Expired means free: anyone takes it, with a larger token.
    h.send(2, &lock("L2", 1000));
    assert_eq!(
        h.take(2),
        ["lock r granted title t+1000 by ben@n-2 until+2000 re L2"]
    );
}

#[test]
fn leaving_releases_at_once_and_a_dropped_holder_keeps_it_for_the_grace_period() {
    let mut h = two_members();
    h.send(1, &lock("L1", 60_000));
    h.take(1);
    h.take(2);
    h.send(1, r#"{"type":"leave","room":"r"}"#);
    assert_eq!(
        h.take(2),
        [
            "presence r v3 -ana",
            "lock r released title t+0 by ana@n-1 until+0"
        ]
    );

    // Dropped: the grant is cut to the presence grace period (5 s), then expires.
    h.send(2, &lock("L2", 60_000));
    assert_eq!(
        h.take(2),
        ["lock r granted title t+1 by ben@n-2 until+60000 re L2"]
    );
    h.connect(3, "cy");
    h.send(3, &join("r"));
    assert_eq!(
        h.take(3),
        [
            "welcome cy",
            "joined r head=0 [ben(1) cy(1)] typing=[] lock title@n-2"
        ]
    );
    h.disconnect(2);
    assert_eq!(
        h.take(3),
        ["lock r renewed title t+1 by ben@n-2 until+5000"]
    );
    h.advance(Duration::from_secs(5));
    assert_eq!(
        h.take(3),
        [
            "presence r v5 -ben",
            "lock r expired title t+1 by ben@n-2 until+5000"
        ]
    );
}

#[test]
fn a_dropped_holder_that_reconnects_within_the_grace_keeps_its_grant_by_renewing_it() {
    let mut h = two_members();
    h.send(1, &lock("L1", 60_000));
    h.take(1);
    h.take(2);
    h.disconnect(1);
    assert_eq!(
        h.take(2),
        ["lock r renewed title t+0 by ana@n-1 until+5000"]
    );
    h.advance(Duration::from_secs(2));
    h.connect(3, "ana");
    h.send(3, &join("r"));
    h.send(3, &renew("L2", T0, 60_000));
    assert_eq!(
        h.take(3),
        [
            "welcome ana",
            "joined r head=0 [ana(1) ben(1)] typing=[] lock title@n-1",
            "lock r renewed title t+0 by ana@n-3 until+62000 re L2"
        ]
    );
    h.advance(Duration::from_secs(10));
    h.send(3, &fenced("f1", T0));
    assert_eq!(
        h.take(3)[1],
        "ack r f1 #1",
        "the grant lives on, held by the new connection"
    );
}

#[test]
fn polls_see_the_locks_with_a_version_that_names_the_set() {
    let mut h = two_members();
    let room = RoomName::parse("r").unwrap();
    let before = h.hub.room_view(&room, 1).unwrap().locks;
    assert_eq!((before.version, before.locks.as_text()), (0, "[]"));
    h.send(1, &lock("L1", 1000));
    let held = h.hub.room_view(&room, 1).unwrap().locks;
    let grants = wire::LockInfo::list(&held.locks).unwrap();
    assert_eq!(grants.len(), 1);
    assert_ne!(held.version, 0);
    assert_eq!(
        held.version,
        lock_version(&grants),
        "the same set, the same version"
    );
    h.advance(Duration::from_millis(1000));
    assert_eq!(h.hub.room_view(&room, 1).unwrap().locks.version, 0);
}

#[test]
fn bad_lock_requests_are_refused_with_a_clear_code() {
    let mut h = two_members();
    h.send(1, &lock("L1", 0));
    h.send(1, &lock("L2", 3_600_001));
    h.send(
        1,
        r#"{"type":"lock","room":"elsewhere","id":"L3","name":"title","ttl_ms":10}"#,
    );
    assert_eq!(
        h.take(1),
        [
            "nack r L1 bad_frame",
            "nack r L2 bad_frame",
            "nack elsewhere L3 not_joined"
        ]
    );
    h.connect_as(
        3,
        crate::identity::Identity::new("cy", None, &[("*", RoomRight::Read)]),
    );
    h.send(3, &join("r"));
    h.take(3);
    h.send(3, &lock("L4", 1000));
    assert_eq!(h.take(3), ["nack r L4 forbidden"]);
    h.hub.handle_drain(Duration::from_secs(1));
    h.pump();
    h.take(1);
    h.send(1, &lock("L5", 1000));
    assert_eq!(h.take(1), ["nack r L5 draining retry=1000"]);
}

/// Lock requests count against the publish rate; one over it is refused with when to ask again.
#[test]
fn lock_requests_over_the_publish_rate_are_told_when_to_retry() {
    let mut h = two_members_with(HubConfig {
        publish_rate: 10.0,
        publish_burst: 2.0,
        ..HubConfig::default()
    });
    h.send(1, &lock("L1", 1000));
    h.send(1, &unlock("L2", T0));
    h.send(1, &lock("L3", 1000));
    assert_eq!(
        h.take(1),
        [
            "lock r granted title t+0 by ana@n-1 until+1000 re L1",
            "lock r released title t+0 by ana@n-1 until+0 re L2",
            "nack r L3 rate_limited retry=100"
        ]
    );
}

/// Every lock frame carries the room's whole list, so a room holds at most so many locks: a
/// request for another is refused with `too_many_locks`, while the held ones may still be
/// renewed and asked for again, and a release makes room.
#[test]
fn a_room_holds_at_most_so_many_locks() {
    let mut h = two_members_with(HubConfig {
        max_locks_per_room: 2,
        ..HubConfig::default()
    });
    let named = |id: &str, name: &str| {
        format!(r#"{{"type":"lock","room":"r","id":"{id}","name":"{name}","ttl_ms":1000}}"#)
    };
    h.send(1, &named("L1", "a"));
    h.send(2, &named("L2", "b"));
    h.send(2, &named("L3", "c"));
    h.send(1, &named("L4", "a"));
    h.send(2, &named("L5", "a"));
    assert_eq!(
        h.take(1)[2..],
        ["lock r renewed a t+0 by ana@n-1 until+1000 re L4"]
    );
    let nacks: Vec<String> = (h.take(2).into_iter())
        .filter(|f| f.starts_with("nack"))
        .collect();
    assert_eq!(nacks, ["nack r L3 too_many_locks", "nack r L5 lock_held"]);
    h.send(
        1,
        &format!(r#"{{"type":"unlock","room":"r","id":"L6","name":"a","token":{T0}}}"#),
    );
    h.send(2, &named("L7", "c"));
    assert!(h.take(2).iter().any(|f| f.starts_with("lock r granted c")));

    // Acquires the store has not answered yet count too, so a burst cannot pass the cap.
    let mut h = two_members_with(HubConfig {
        max_locks_per_room: 2,
        ..HubConfig::default()
    });
    h.locks = Some(VecDeque::new());
    h.send(1, &named("L8", "d"));
    h.send(1, &named("L9", "e"));
    h.send(1, &named("L10", "f"));
    assert_eq!(h.take(1), ["nack r L10 too_many_locks"], "d and e asked");
    h.run_locks();
    let granted = h.take(1).iter().filter(|f| f.contains(" granted ")).count();
    assert_eq!(granted, 2);
}

#[test]
fn a_rooms_view_forgets_ended_grants_a_minute_after_they_end() {
    let mut h = two_members();
    let named = |id: &str, name: &str| {
        format!(r#"{{"type":"lock","room":"r","id":"{id}","name":"{name}","ttl_ms":1000}}"#)
    };
    for n in 0..5 {
        h.send(1, &named(&format!("L{n}"), &format!("once-{n}")));
        let token = T0 + n;
        let unlock = format!(
            r#"{{"type":"unlock","room":"r","id":"U{n}","name":"once-{n}","token":{token}}}"#
        );
        h.advance(Duration::from_millis(1));
        h.send(1, &unlock);
    }
    h.send(2, &named("L5", "kept"));
    let view = |h: &Harness| h.hub.rooms[&RoomName::parse("r").unwrap()].locks.len();
    assert_eq!(
        view(&h),
        6,
        "ended grants stay a while (a late word must not revive them)"
    );
    assert!(h.take(1).iter().all(|f| !f.starts_with("nack")));
    for _ in 0..7 {
        h.advance(Duration::from_secs(9));
        h.send(1, r#"{"type":"ping"}"#);
        h.send(2, r#"{"type":"ping"}"#);
    }
    h.send(2, &named("L6", "kept"));
    assert_eq!(view(&h), 1, "then only the held one is left");
}
